/*
 * adm_drain.c — `drain NODE` and `undrain NODE` (admin role).
 *
 * drain: fdsched moves every child the node has in any stripe tree of any
 * version being distributed to other parents (the re-parenting it does when
 * a node dies), keeps it a leaf of every plan (it keeps downloading), pushes
 * the changed orders and logs the state durably. fdadmin then waits,
 * asking again (Drain is idempotent), until nothing depends on the node: no
 * child under it in any plan, and every child moved away has heartbeated
 * since (its reply carried the new order) or died. Progress goes to stderr;
 * --no-wait returns after the first call, --timeout bounds the wait.
 * undrain: the node is alive again and may be a parent from the next repair
 * or plan on. Both are idempotent (asking for the state the node is in
 * succeeds), so a rolling upgrade can run again after a failure.
 *
 * Exit codes as every command: 0 done, 1 refused / timed out / unknown
 * node, 2 usage, 3 fdsched unreachable or the admin key refused.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "fd_time.h"

#define DRAIN_METHOD 7u      /* Scheduler.Drain */

static rpc_code_t call(adm_client_t *cl, uint32_t method, const ProtobufCMessage *req,
                       ProtobufCMessage **reply) {
  char msg[256];
  rpc_code_t code = adm_call(cl, RPC_SVC_SCHED, &sched__scheduler__descriptor, method, req, 0,
                             reply, msg, sizeof(msg));
  if (code != RPC_OK)
    fprintf(stderr, "fdadmin: %s: %s %s\n", sched__scheduler__descriptor.methods[method].name,
            rpc_code_name(code), msg);
  return code;
}

/* Asks again (a drain of a drained node changes and logs nothing) for the
 * node's dependents, into *out; an ADM_EXIT_* code. */
static int poll_dependents(adm_client_t *cl, const char *node, uint32_t *out) {
  Sched__DrainRequest req = SCHED__DRAIN_REQUEST__INIT;
  req.node_id = (char *)node;
  ProtobufCMessage *m = NULL;
  rpc_code_t code = call(cl, DRAIN_METHOD, &req.base, &m);
  if (code != RPC_OK) return adm_exit_for_code(code);
  const Sched__DrainReply *r = (const Sched__DrainReply *)m;
  int ex = ADM_EXIT_OK;
  if (!r->accepted) { /* undrained meanwhile, or gone */
    fprintf(stderr, "fdadmin: drain %s: no longer draining (state %s)\n", node,
            r->state ? r->state : "?");
    ex = ADM_EXIT_FAILED;
  }
  *out = r->dependents;
  protobuf_c_message_free_unpacked(m, NULL);
  return ex;
}

/* Prints the outcome; false when the JSON output failed. */
static bool report(const adm_config_t *cfg, const char *verb, const char *node, bool accepted,
                   bool changed, const char *state, uint32_t dependents, uint64_t waited_ms,
                   bool waited) {
  if (cfg->json) {
    json_object *o = adm_json_object();
    adm_json_add_str(o, "node", node);
    adm_json_add_str(o, "command", verb);
    adm_json_add_bool(o, "accepted", accepted);
    adm_json_add_bool(o, "changed", changed);
    adm_json_add_str(o, "state", state);
    adm_json_add_u64(o, "dependents", dependents);
    adm_json_add_bool(o, "waited", waited);
    adm_json_add_u64(o, "waited_ms", waited_ms);
    return adm_json_print(o) == 0;
  }
  if (!accepted)
    printf("%s %s: refused (state %s)\n", verb, node, state);
  else if (waited && dependents == 0)
    printf("%s %s: done, nothing depends on it (state %s, waited %" PRIu64 " ms)\n", verb, node,
           state, waited_ms);
  else if (waited)
    printf("%s %s: timed out, %" PRIu32 " dependents left (state %s)\n", verb, node, dependents,
           state);
  else
    printf("%s %s: accepted%s (state %s, %" PRIu32 " dependents)\n", verb, node,
           changed ? "" : ", already so", state, dependents);
  return true;
}

static int drain_or_undrain(adm_config_t *cfg, int argc, char **argv, bool undrain) {
  const char *verb = undrain ? "undrain" : "drain";
  static const struct option longopts[] = {{"no-wait", no_argument, 0, 'n'},
                                            {"timeout", required_argument, 0, 't'},
                                            {"help", no_argument, 0, 'h'},
                                            {0, 0, 0, 0}};
  bool wait = !undrain;
  uint64_t timeout_s = ADM_DRAIN_TIMEOUT_S_DEFAULT;
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 'n' && !undrain) {
      wait = false;
    } else if (c == 't' && !undrain) {
      char *end;
      errno = 0;
      timeout_s = strtoull(optarg, &end, 10);
      if (errno || *end || end == optarg || timeout_s == 0 || timeout_s > ADM_DRAIN_TIMEOUT_S_MAX) {
        fprintf(stderr, "fdadmin drain: --timeout takes seconds, 1..%u\n",
                ADM_DRAIN_TIMEOUT_S_MAX);
        return ADM_EXIT_USAGE;
      }
    } else if (c == 'h') {
      if (undrain)
        printf("usage: fdadmin [GLOBAL OPTIONS] undrain NODE\n"
               "  Makes a drained NODE alive again: it may be a parent from the next repair\n"
               "  or plan on. Succeeds when NODE is not draining. Needs the admin key.\n");
      else
        printf("usage: fdadmin [GLOBAL OPTIONS] drain NODE [--no-wait] [--timeout SEC]\n"
               "  Asks the scheduler to move every child NODE has in any stripe tree of\n"
               "  every version being distributed to other parents and keep it a leaf (it\n"
               "  keeps downloading), then waits until nothing depends on it, printing\n"
               "  progress on stderr. Succeeds when NODE is already draining.\n"
               "  --no-wait      return once the scheduler accepted the drain\n"
               "  --timeout SEC  give up waiting after SEC seconds (default %u): exit 1\n"
               "  Needs the admin key. Undo with `fdadmin undrain NODE`.\n",
               ADM_DRAIN_TIMEOUT_S_DEFAULT);
      return ADM_EXIT_OK;
    } else {
      return ADM_EXIT_USAGE;
    }
  }
  if (optind + 1 != argc || argv[optind][0] == '-') {
    fprintf(stderr, undrain ? "usage: fdadmin undrain NODE\n"
                            : "usage: fdadmin drain NODE [--no-wait] [--timeout SEC]\n");
    return ADM_EXIT_USAGE;
  }
  const char *node = argv[optind];
  int ex;
  adm_client_t *cl = adm_connect_scheduler(cfg, true, &ex);
  if (!cl) return ex;
  Sched__DrainRequest req = SCHED__DRAIN_REQUEST__INIT;
  req.node_id = (char *)node;
  req.undrain = undrain;
  ProtobufCMessage *m = NULL;
  rpc_code_t code = call(cl, DRAIN_METHOD, &req.base, &m);
  if (code != RPC_OK) {
    adm_client_destroy(cl);
    return adm_exit_for_code(code);
  }
  const Sched__DrainReply *r = (const Sched__DrainReply *)m;
  bool accepted = r->accepted, changed = r->changed;
  char state[32];
  snprintf(state, sizeof(state), "%s", r->state ? r->state : "?");
  uint32_t dependents = r->dependents;
  protobuf_c_message_free_unpacked(m, NULL);
  ex = accepted ? ADM_EXIT_OK : ADM_EXIT_FAILED;
  uint64_t start = fd_now_ms(), waited_ms = 0;
  if (accepted && wait) {
    uint64_t deadline = start + timeout_s * 1000u;
    uint32_t shown = UINT32_MAX;
    while (dependents > 0) {
      if (dependents != shown && !cfg->json)
        fprintf(stderr, "drain %s: %" PRIu32 " dependents left\n", node, dependents);
      shown = dependents;
      if (fd_now_ms() >= deadline) break;
      usleep(ADM_DRAIN_POLL_MS * 1000u);
      ex = poll_dependents(cl, node, &dependents);
      if (ex != ADM_EXIT_OK) break;
    }
    waited_ms = fd_now_ms() - start;
    if (ex == ADM_EXIT_OK && dependents > 0) ex = ADM_EXIT_FAILED; /* timed out */
  }
  if ((ex == ADM_EXIT_OK || ex == ADM_EXIT_FAILED) &&
      !report(cfg, verb, node, accepted, changed, state, dependents, waited_ms, accepted && wait))
    ex = ADM_EXIT_FAILED;
  adm_client_destroy(cl);
  return ex;
}

int adm_cmd_drain(adm_config_t *cfg, int argc, char **argv) {
  return drain_or_undrain(cfg, argc, argv, false);
}

int adm_cmd_undrain(adm_config_t *cfg, int argc, char **argv) {
  return drain_or_undrain(cfg, argc, argv, true);
}
