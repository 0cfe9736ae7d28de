/*
 * nd_commit.c — role origin (the head): what fdsched hears of a publish.
 * PENDING when it begins (the nodes start fetching), ABORTED when it fails,
 * and COMMITTED, with exactly the origins that hold it durably, once the
 * chain answered. A commit fdsched does not confirm (it is away, or the
 * call fails) is kept, holding its version, and retried every
 * ND_COMMIT_RETRY_MS until it does; fdadmin is answered either way, since
 * the origins hold the version. A refusal (ALREADY_EXISTS,
 * FAILED_PRECONDITION) is final.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "fd_error.h"
#include "nd_origin_int.h"

static void on_state_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)arg;
  if (code != RPC_OK)
    fd_log_warn("RegisterVersion (pending/aborted): %s %s", rpc_code_name(code), msg ? msg : "");
}

void nd_commit_state(nd_origin_t *og, const nd_ver_t *v, bool aborted) {
  const nd_origins_t *os = og->origins;
  char *ids[ND_ORIGINS_MAX];
  for (uint32_t i = 0; i < os->n; i++) ids[i] = (char *)os->o[i].id;
  static const rpc_call_cbs_t cbs = {NULL, NULL, NULL, on_state_done};
  Sched__VersionState st =
      aborted ? SCHED__VERSION_STATE__VERSION_ABORTED : SCHED__VERSION_STATE__VERSION_PENDING;
  if (!nd_sched_register_version(og->sched, v->menc, v->menc_len, ids, os->n, st, &cbs, og))
    fd_log_warn("%s v%" PRIu64 ": cannot tell fdsched the publish %s: %s", v->name, v->version,
                aborted ? "failed" : "began", fd_strerror(-errno));
}

/* ---- commits fdsched did not confirm: retried until it does ------------------------ */

static void remember(nd_origin_t *og, nd_ver_t *v) {
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    nd_uncommitted_t *u = &og->uncommitted[i];
    if (u->ver == v) return;
    if (u->ver) continue;
    *u = (nd_uncommitted_t){.og = og, .ver = v};
    nd_ver_get(v);
    return;
  }
  fd_log_error("%s v%" PRIu64 ": too many unconfirmed commits; this one is not retried", v->name,
               v->version);
}

static void on_retry_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_uncommitted_t *u = arg;
  u->busy = false;
  if (!u->ver) return; /* released at destroy */
  if (code != RPC_OK) {
    fd_log_warn("%s v%" PRIu64 ": commit with fdsched: %s %s (retried)", u->ver->name,
                u->ver->version, rpc_code_name(code), msg ? msg : "");
    return;
  }
  fd_log_info("%s v%" PRIu64 " committed with fdsched (retry)", u->ver->name, u->ver->version);
  nd_ver_put(u->ver);
  u->ver = NULL;
}

void nd_commit_retry(nd_origin_t *og) {
  uint64_t now = fd_now_ms();
  if (now < og->commit_retry_ms) return;
  og->commit_retry_ms = now + ND_COMMIT_RETRY_MS;
  const nd_origins_t *os = og->origins;
  char *ids[ND_ORIGINS_MAX];
  for (uint32_t i = 0; i < os->n; i++) ids[i] = (char *)os->o[i].id;
  static const rpc_call_cbs_t cbs = {NULL, NULL, NULL, on_retry_done};
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    nd_uncommitted_t *u = &og->uncommitted[i];
    if (!u->ver || u->busy) continue;
    u->busy = nd_sched_register_version(og->sched, u->ver->menc, u->ver->menc_len, ids, os->n,
                                        SCHED__VERSION_STATE__VERSION_COMMITTED, &cbs,
                                        u) != NULL;
  }
}

void nd_commit_release(nd_origin_t *og) {
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    nd_uncommitted_t *u = &og->uncommitted[i];
    if (u->ver) nd_ver_put(u->ver);
    u->ver = NULL;
  }
}

/* ---- a commit --------------------------------------------------------------------- */

typedef struct nd_commit_job {
  nd_origin_t *og;
  nd_ver_t *v; /* held until the answer */
  void (*done)(void *arg, int err);
  void *arg;
} nd_commit_job_t;

static void on_commit_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_commit_job_t *j = arg;
  nd_ver_t *v = j->v;
  int err = code == RPC_OK ? 0 : -EIO;
  if (err) {
    fd_log_warn("RegisterVersion: %s %s", rpc_code_name(code), msg ? msg : "");
    if (code != RPC_ALREADY_EXISTS && code != RPC_FAILED_PRECONDITION) remember(j->og, v);
  } else {
    fd_log_info("%s v%" PRIu64 " committed with fdsched", v->name, v->version);
  }
  nd_ver_put(v);
  void (*done)(void *, int) = j->done;
  void *darg = j->arg;
  free(j); /* once per version */
  done(darg, err);
}

void nd_commit(nd_origin_t *og, nd_ver_t *v, char **ids, uint32_t n,
               void (*done)(void *arg, int err), void *arg) {
  if (!nd_sched_configured(og->sched)) {
    done(arg, 0); /* without fdsched the origins holding it is all there is */
    return;
  }
  nd_commit_job_t *j = malloc(sizeof(*j));
  if (!j) {
    remember(og, v);
    done(arg, -ENOMEM);
    return;
  }
  *j = (nd_commit_job_t){og, v, done, arg};
  nd_ver_get(v);
  static const rpc_call_cbs_t cbs = {NULL, NULL, NULL, on_commit_done};
  if (!nd_sched_register_version(og->sched, v->menc, v->menc_len, ids, n,
                                 SCHED__VERSION_STATE__VERSION_COMMITTED, &cbs, j)) {
    int err = -errno;
    remember(og, v);
    nd_ver_put(v);
    free(j);
    done(arg, err);
  }
}

static void pub_commit_done(void *arg, int err) { nd_pub_committed(arg, err); }

void nd_commit_version(nd_pub_t *p) {
  nd_chain_t *c = &p->chain;
  char *ids[ND_ORIGINS_MAX];
  for (uint32_t i = 0; i < c->held_n; i++) ids[i] = c->held[i];
  nd_commit(p->og, p->sink.ver, ids, c->held_n, pub_commit_done, p);
}
