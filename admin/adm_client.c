/*
 * adm_client.c — a blocking client over rpc/: one engine on fdadmin's only
 * thread, one connection, pumped until the answer (or the deadline) comes.
 * fdadmin does one thing per run, so blocking is the simplest correct shape;
 * the daemons never use this. Also finding the origin head: any origin says
 * who it takes for the head (Origin.Head, issue 22), so the origins given
 * are asked in turn and the one that leads is used.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"

struct adm_client {
  rpc_engine_t *e;
  rpc_conn_t *c;
  bool ready, closed;
  int err;
  uint32_t timeout_ms; /* calls given no deadline of their own */
};

static void on_ready(rpc_conn_t *c, void *arg) {
  (void)c;
  ((adm_client_t *)arg)->ready = true;
}

static void on_closed(rpc_conn_t *c, int err, void *arg) {
  (void)c;
  adm_client_t *cl = arg;
  cl->closed = true;
  cl->err = err ? err : -ECONNRESET;
  cl->c = NULL;
}

static const rpc_conn_cbs_t conn_cbs = {on_ready, on_closed};

adm_client_t *adm_client_connect(const char *addr, const uint8_t cluster_key[32],
                                 const fd_ed25519_key_t *admin_key, uint32_t timeout_ms,
                                 int *err) {
  char host[ADM_ADDR_LEN_MAX];
  uint16_t port;
  *err = adm_addr_parse(addr, host, sizeof(host), &port);
  if (*err) return NULL;
  adm_client_t *cl = calloc(1, sizeof(*cl));
  if (!cl) {
    *err = -ENOMEM;
    return NULL;
  }
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = cluster_key;
  o.cluster_key_len = 32;
  o.admin_key = admin_key;
  o.payload_max = FD_FRAME_PAYLOAD_MAX; /* a publish sends whole chunks as one DATA frame */
  cl->e = rpc_engine_create(&o);
  if (!cl->e) {
    *err = errno ? -errno : -ENOMEM;
    free(cl);
    return NULL;
  }
  cl->timeout_ms = ADM_CALL_TIMEOUT_MS;
  cl->c = rpc_connect(cl->e, host, port, &conn_cbs, cl);
  if (!cl->c) {
    *err = errno ? -errno : -ECONNREFUSED;
    adm_client_destroy(cl);
    return NULL;
  }
  uint64_t until = fd_now_ms() + (timeout_ms ? timeout_ms : ADM_CONNECT_TIMEOUT_MS);
  while (!cl->ready && !cl->closed && fd_now_ms() < until) rpc_engine_run_once(cl->e, 10);
  if (!cl->ready) {
    *err = cl->closed ? cl->err : -ETIMEDOUT;
    adm_client_destroy(cl);
    return NULL;
  }
  *err = 0;
  return cl;
}

void adm_client_destroy(adm_client_t *cl) {
  if (!cl) return;
  if (cl->c) {
    rpc_conn_close(cl->c);
    uint64_t until = fd_now_ms() + ADM_CLOSE_WAIT_MS;
    while (!cl->closed && fd_now_ms() < until) rpc_engine_run_once(cl->e, 5);
  }
  rpc_engine_destroy(cl->e);
  free(cl);
}

rpc_engine_t *adm_client_engine(adm_client_t *cl) { return cl->e; }
rpc_conn_t *adm_client_conn(adm_client_t *cl) { return cl->c; }

bool adm_client_pump(adm_client_t *cl, uint32_t wait_ms) {
  rpc_engine_run_once(cl->e, wait_ms);
  return !cl->closed;
}

/* ---- unary calls ---- */

typedef struct unary {
  const ProtobufCMessageDescriptor *out;
  uint8_t *packed;
  size_t packed_len;
  bool done;
  rpc_code_t code;
  char message[256];
} unary_t;

static void u_msg(rpc_call_t *call, const ProtobufCMessage *msg, void *arg) {
  (void)call;
  unary_t *u = arg;
  if (u->packed) return; /* unary: the first answer counts */
  size_t len = protobuf_c_message_get_packed_size(msg);
  u->packed = malloc(len ? len : 1);
  if (!u->packed) return;
  u->packed_len = protobuf_c_message_pack(msg, u->packed);
}

static void u_done(rpc_call_t *call, rpc_code_t code, const char *message, void *arg) {
  (void)call;
  unary_t *u = arg;
  u->done = true;
  u->code = code;
  snprintf(u->message, sizeof(u->message), "%s", message ? message : "");
}

rpc_code_t adm_call(adm_client_t *cl, uint16_t service_id, const ProtobufCServiceDescriptor *svc,
                    uint32_t method_index, const ProtobufCMessage *req, uint32_t timeout_ms,
                    ProtobufCMessage **reply, char *message, size_t message_len) {
  FD_ASSERT(method_index < svc->n_methods);
  *reply = NULL;
  if (message && message_len) message[0] = '\0';
  if (!cl->c) return RPC_UNAVAILABLE;
  if (!timeout_ms) timeout_ms = cl->timeout_ms;
  unary_t u = {.out = svc->methods[method_index].output};
  static const rpc_call_cbs_t cbs = {u_msg, NULL, NULL, u_done};
  rpc_call_t *call = rpc_call_start(cl->c, service_id, svc, method_index, RPC_UNARY, req,
                                    timeout_ms, &cbs, &u);
  if (!call) {
    if (message) snprintf(message, message_len, "%s", fd_strerror(-errno));
    return RPC_UNAVAILABLE;
  }
  /* The engine enforces the deadline; the grace only bounds this loop
   * should the connection die without the call ending. */
  uint64_t until = fd_now_ms() + timeout_ms + ADM_CALL_GRACE_MS;
  while (!u.done && fd_now_ms() < until) rpc_engine_run_once(cl->e, 10);
  if (!u.done) {
    rpc_call_cancel(call);
    free(u.packed);
    if (message) snprintf(message, message_len, "no answer before the deadline");
    return RPC_DEADLINE_EXCEEDED;
  }
  if (message) snprintf(message, message_len, "%s", u.message);
  if (u.code == RPC_OK) {
    if (!u.packed) {
      if (message) snprintf(message, message_len, "the call ended without an answer");
      return RPC_INTERNAL;
    }
    *reply = protobuf_c_message_unpack(u.out, NULL, u.packed_len, u.packed);
    if (!*reply) {
      free(u.packed);
      if (message) snprintf(message, message_len, "undecodable answer");
      return RPC_INTERNAL;
    }
  }
  free(u.packed);
  return u.code;
}

int adm_exit_for_code(rpc_code_t code) {
  switch (code) {
    case RPC_OK: return ADM_EXIT_OK;
    case RPC_UNAVAILABLE:
    case RPC_UNAUTHENTICATED:
    case RPC_PERMISSION_DENIED: return ADM_EXIT_UNREACHABLE;
    case RPC_INVALID_ARGUMENT: return ADM_EXIT_USAGE;
    default: return ADM_EXIT_FAILED;
  }
}

/* ---- connecting with the operator's configuration ---- */

/* The cluster key and (admin) the admin key from the configuration; prints
 * what is wrong and sets *exit_code. 0 or -1. */
static int load_keys(const adm_config_t *cfg, bool admin, uint8_t key[32],
                     fd_ed25519_key_t *akey, int *exit_code) {
  if (!cfg->cluster_key_path[0]) {
    fprintf(stderr, "fdadmin: no cluster key (--cluster-key FILE or cluster_key in the config)\n");
    *exit_code = ADM_EXIT_USAGE;
    return -1;
  }
  int rc = adm_cluster_key_load(cfg->cluster_key_path, key);
  if (rc < 0) {
    fprintf(stderr, "fdadmin: cluster key %s: %s\n", cfg->cluster_key_path,
            rc == -EINVAL ? "not 64 hex characters" : fd_strerror(rc));
    *exit_code = ADM_EXIT_USAGE;
    return -1;
  }
  if (!admin) return 0;
  if (!cfg->admin_key_path[0]) {
    fprintf(stderr, "fdadmin: this command needs the admin key (--admin-key FILE)\n");
    *exit_code = ADM_EXIT_USAGE;
    return -1;
  }
  rc = fd_ed25519_load(cfg->admin_key_path, akey);
  if (rc < 0 || !akey->has_private) {
    fprintf(stderr, "fdadmin: admin key %s: %s\n", cfg->admin_key_path,
            rc < 0 ? fd_strerror(rc) : "not a private key");
    *exit_code = ADM_EXIT_USAGE;
    return -1;
  }
  return 0;
}

adm_client_t *adm_connect_addr(const adm_config_t *cfg, const char *addr, bool admin,
                                   int *err, int *exit_code) {
  uint8_t key[32];
  fd_ed25519_key_t akey;
  memset(&akey, 0, sizeof(akey));
  *err = 0;
  *exit_code = ADM_EXIT_OK;
  if (load_keys(cfg, admin, key, &akey, exit_code) < 0) return NULL;
  adm_client_t *cl = adm_client_connect(addr, key, admin ? &akey : NULL,
                                        ADM_CONNECT_TIMEOUT_MS, err);
  memset(key, 0, sizeof(key));
  memset(&akey, 0, sizeof(akey));
  if (cl) cl->timeout_ms = cfg->timeout_ms;
  return cl;
}

static adm_client_t *connect_to(const adm_config_t *cfg, const char *what, const char *addr,
                                bool admin, int *exit_code) {
  int err = 0;
  adm_client_t *cl = adm_connect_addr(cfg, addr, admin, &err, exit_code);
  if (!cl && *exit_code == ADM_EXIT_OK) {
    fprintf(stderr, "fdadmin: cannot reach the %s at %s: %s\n", what, addr,
            err == -EINVAL ? "bad address (host:port)" : fd_strerror(err));
    *exit_code = err == -EINVAL ? ADM_EXIT_USAGE : ADM_EXIT_UNREACHABLE;
  }
  return cl;
}

/* The leader's address in a standby's refusal ("...; the leader is H:P"),
 * into out; false when it names none. */
static bool named_leader(const char *msg, char *out, size_t cap) {
  const char *at = strstr(msg, "the leader is ");
  if (!at) return false;
  at += strlen("the leader is ");
  size_t n = strcspn(at, " ;,");
  if (n == 0 || n >= cap) return false;
  memcpy(out, at, n);
  out[n] = 0;
  return true;
}

adm_client_t *adm_connect_scheduler(const adm_config_t *cfg, bool admin, int *exit_code) {
  if (!cfg->scheduler[0]) {
    fprintf(stderr, "fdadmin: no scheduler address (--scheduler HOST:PORT or the config)\n");
    *exit_code = ADM_EXIT_USAGE;
    return NULL;
  }
  if (!strchr(cfg->scheduler, ','))
    return connect_to(cfg, "scheduler", cfg->scheduler, admin, exit_code);
  /* A leader and its standbys: each in turn (or the leader a standby
   * names), until one answers Status, which only the leader does. */
  char named[ADM_ADDR_LEN_MAX] = "", addr[ADM_ADDR_LEN_MAX];
  unsigned next = 0;
  *exit_code = ADM_EXIT_UNREACHABLE;
  for (unsigned tries = 0; tries < 2 * SCH_SCHEDULERS_MAX; tries++) {
    if (named[0]) {
      snprintf(addr, sizeof(addr), "%s", named);
      named[0] = 0;
    } else if (adm_list_item(cfg->scheduler, next++, addr, sizeof(addr)) < 0) {
      break;
    }
    int ex = 0;
    adm_client_t *cl = connect_to(cfg, "scheduler", addr, admin, &ex);
    if (!cl) {
      if (ex == ADM_EXIT_USAGE) {
        *exit_code = ex;
        return NULL;
      }
      continue;
    }
    Sched__StatusRequest req = SCHED__STATUS_REQUEST__INIT;
    req.name = (char *)"";
    ProtobufCMessage *m = NULL;
    char msg[256];
    rpc_code_t code = adm_call(cl, RPC_SVC_SCHED, &sched__scheduler__descriptor, 6, &req.base,
                               0, &m, msg, sizeof(msg));
    if (code == RPC_OK) {
      protobuf_c_message_free_unpacked(m, NULL);
      return cl;
    }
    adm_client_destroy(cl);
    fprintf(stderr, "fdadmin: scheduler %s: %s %s\n", addr, rpc_code_name(code), msg);
    if (named_leader(msg, named, sizeof(named)) && !strcmp(named, addr)) named[0] = 0;
  }
  fprintf(stderr, "fdadmin: no fdsched leader among %s\n", cfg->scheduler);
  return NULL;
}

adm_client_t *adm_connect_origin(const adm_config_t *cfg, unsigned index, bool admin,
                                 int *exit_code) {
  char addr[ADM_ADDR_LEN_MAX];
  if (adm_list_item(cfg->origins, index, addr, sizeof(addr)) < 0) {
    fprintf(stderr, "fdadmin: no origin address #%u (--origins HOST:PORT,... or the config)\n",
            index + 1);
    *exit_code = ADM_EXIT_USAGE;
    return NULL;
  }
  return connect_to(cfg, "origin", addr, admin, exit_code);
}

rpc_code_t adm_origin_head(adm_client_t *cl, Origin__HeadReply **out, char *message,
                           size_t message_len) {
  Origin__HeadRequest req = ORIGIN__HEAD_REQUEST__INIT;
  ProtobufCMessage *m = NULL;
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(&origin__origin__descriptor, "Head");
  FD_ASSERT(md);
  rpc_code_t code = adm_call(cl, RPC_SVC_ORIGIN, &origin__origin__descriptor,
                             (uint32_t)(md - origin__origin__descriptor.methods), &req.base,
                             ADM_CONNECT_TIMEOUT_MS, &m, message, message_len);
  *out = (Origin__HeadReply *)m;
  return code;
}

/* "ID@ADDR:PORT" -> "ADDR:PORT"; false when it is not one. */
static bool head_addr(const char *head, char *addr, size_t addr_len) {
  const char *at = head ? strchr(head, '@') : NULL;
  if (!at || at == head || !at[1] || strlen(at + 1) >= addr_len) return false;
  char host[ADM_ADDR_LEN_MAX];
  uint16_t port;
  if (adm_addr_parse(at + 1, host, sizeof(host), &port) < 0) return false;
  snprintf(addr, addr_len, "%s", at + 1);
  return true;
}

__attribute__((format(printf, 3, 4))) static void add_why(char *why, size_t why_len,
                                                          const char *fmt, ...) {
  size_t used = strnlen(why, why_len);
  if (used + 1 >= why_len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why + used, why_len - used, fmt, ap);
  va_end(ap);
}

adm_client_t *adm_connect_head(const adm_config_t *cfg, bool admin, int *exit_code) {
  /* the origins given, in their order, then heads they name */
  char cand[2 * ADM_ORIGINS_MAX][ADM_ADDR_LEN_MAX];
  unsigned n = 0;
  while (n < ADM_ORIGINS_MAX && adm_list_item(cfg->origins, n, cand[n], sizeof(cand[n])) == 0) n++;
  if (!n) {
    fprintf(stderr, "fdadmin: no origin addresses (--origins HOST:PORT,... or the config)\n");
    *exit_code = ADM_EXIT_USAGE;
    return NULL;
  }
  unsigned given = n;
  char why[2048] = "";
  bool answered = false;
  int first_reached = -1;
  for (unsigned i = 0; i < n; i++) {
    int err;
    adm_client_t *cl = adm_connect_addr(cfg, cand[i], admin, &err, exit_code);
    if (!cl) {
      if (*exit_code != ADM_EXIT_OK) return NULL; /* the keys: printed */
      add_why(why, sizeof(why), "%s%s: unreachable (%s)", i ? "; " : "", cand[i],
              err == -EINVAL ? "bad address (host:port)" : fd_strerror(err));
      continue;
    }
    if (first_reached < 0 && i < given) first_reached = (int)i;
    Origin__HeadReply *r = NULL;
    char msg[256];
    rpc_code_t code = adm_origin_head(cl, &r, msg, sizeof(msg));
    if (code == RPC_OK && r->leads) {
      fd_log_info("the origin head is %s@%s (epoch %" PRIu64 ")", r->id, cand[i], r->epoch);
      protobuf_c_message_free_unpacked(&r->base, NULL);
      return cl;
    }
    if (code == RPC_OK) {
      answered = true;
      bool no_zk = r->zookeeper[0] && strcmp(r->zookeeper, "connected") != 0;
      add_why(why, sizeof(why), "%s%s: %s does not lead (%s%s%s%s%s)", i ? "; " : "", cand[i],
              r->id, no_zk ? "its ZooKeeper session is " : "", no_zk ? r->zookeeper : "",
              no_zk ? "; " : "", r->head[0] ? "the head is " : "it knows no head", r->head);
      char named[ADM_ADDR_LEN_MAX];
      bool known = false;
      if (head_addr(r->head, named, sizeof(named)) && n < 2 * ADM_ORIGINS_MAX) {
        for (unsigned k = 0; k < n; k++) known |= !strcmp(cand[k], named);
        if (!known) snprintf(cand[n++], ADM_ADDR_LEN_MAX, "%s", named);
      }
      protobuf_c_message_free_unpacked(&r->base, NULL);
    } else {
      add_why(why, sizeof(why), "%s%s: Head: %s %s", i ? "; " : "", cand[i], rpc_code_name(code),
              msg);
    }
    adm_client_destroy(cl);
  }
  /* No origin serves Head (an fdnode older than issue 22 closes the
   * connection on it): the rule before, the first reachable is the head. */
  if (!answered && first_reached >= 0)
    return connect_to(cfg, "origin", cand[first_reached], admin, exit_code);
  fprintf(stderr, "fdadmin: no origin leads: %s\n", why);
  *exit_code = ADM_EXIT_UNREACHABLE;
  return NULL;
}

int adm_newest_version(adm_client_t *sched, const char *name, uint64_t *version) {
  Sched__ListVersionsRequest req = SCHED__LIST_VERSIONS_REQUEST__INIT;
  req.name = (char *)name;
  ProtobufCMessage *m = NULL;
  char msg[256];
  rpc_code_t code = adm_call(sched, RPC_SVC_SCHED, &sched__scheduler__descriptor, 4, &req.base,
                             0, &m, msg, sizeof(msg));
  if (code != RPC_OK) {
    fprintf(stderr, "fdadmin: ListVersions: %s %s\n", rpc_code_name(code), msg);
    return adm_exit_for_code(code);
  }
  const Sched__ListVersionsReply *r = (const Sched__ListVersionsReply *)m;
  *version = 0;
  for (size_t i = 0; i < r->n_versions; i++)
    if (!strcmp(r->versions[i]->name, name) && r->versions[i]->version > *version)
      *version = r->versions[i]->version;
  protobuf_c_message_free_unpacked(m, NULL);
  return ADM_EXIT_OK;
}

