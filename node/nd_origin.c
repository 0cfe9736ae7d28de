/*
 * nd_origin.c — role origin: Missing (with the warm-up of the next origin's
 * delta), Gc, and the role's life. The reception of a publish is in
 * nd_publish.c, the chain in nd_chain.c, the commit in nd_commit.c.
 *
 * A publish: fdadmin calls Missing(manifest) on the head, which checks that
 * the version is its newest + 1, begins it (signature checked by storage)
 * and reuses every chunk it already holds (the delta), then answers with the
 * chunks it lacks; fdadmin streams those on Publish. Each origin of the
 * chain is asked the same by the origin before it (replicate = true).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_origin_int.h"

/* ---- Missing --------------------------------------------------------------------- */

static int reply_missing(nd_origin_t *og, rpc_call_t *call, nd_ver_t *v) {
  Origin__MissingReply r = ORIGIN__MISSING_REPLY__INIT;
  uint32_t cnt = v->complete ? 0 : st_version_missing(v->sv);
  uint32_t *list = cnt ? malloc(cnt * sizeof(uint32_t)) : NULL; /* once per publish */
  if (cnt && !list) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
  uint32_t k = 0;
  for (uint32_t i = 0; i < v->m->chunk_count && k < cnt; i++)
    if (!nd_ver_has(og->p, v, i)) list[k++] = i;
  r.version = v->version;
  r.n_chunks = k;
  r.chunks = list;
  r.bytes_reused = v->bytes_reused;
  int rc = rpc_call_send(call, &r.base);
  free(list);
  if (rc) return rc;
  return rpc_call_finish(call, RPC_OK, NULL);
}

static nd_missing_t *wait_of(nd_origin_t *og, const nd_ver_t *v) {
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++)
    if (og->waits[i].ver == v) return &og->waits[i];
  return NULL;
}

static void missing_closed(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)code;
  (void)msg;
  nd_missing_t *w = arg;
  if (w->call == call) w->call = NULL;
}

/* Makes call wait for v's delta; a call already waiting (a warm-up's) is
 * answered now with what is missing so far (its answer is not used). */
static int wait_delta(nd_origin_t *og, rpc_call_t *call, nd_ver_t *v) {
  nd_missing_t *w = wait_of(og, v);
  if (!w) w = wait_of(og, NULL);
  if (!w) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "too many publishes");
  if (w->ver == v && w->call) {
    rpc_call_t *old = w->call;
    w->call = NULL;
    reply_missing(og, old, v);
  }
  w->ver = v;
  w->call = call;
  rpc_call_cbs_t cbs = {NULL, NULL, NULL, missing_closed};
  rpc_call_set_cbs(call, &cbs, w);
  return 0;
}

static void on_delta(void *arg, nd_ver_t *v, int res) {
  nd_origin_t *og = arg;
  if (res) fd_log_warn("%s v%" PRIu64 " delta: %s", v->name, v->version, fd_strerror(res));
  else fd_log_info("%s v%" PRIu64 ": reused %" PRIu64 " bytes from local versions", v->name,
                   v->version, v->bytes_reused);
  nd_missing_t *w = wait_of(og, v);
  if (!w) return;
  rpc_call_t *call = w->call;
  *w = (nd_missing_t){0};
  if (call) reply_missing(og, call, v);
}

/* ---- warm-up: the next origin starts its delta while this one runs its own -- */

static void warm_end(nd_warm_t *w) {
  rpc_conn_t *c = w->conn;
  w->conn = NULL;
  if (c) rpc_conn_close(c);
  if (w->ver) nd_ver_put(w->ver);
  w->ver = NULL;
  w->used = false;
}

static void warm_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_warm_t *w = arg;
  w->call = NULL;
  if (code != RPC_OK)
    fd_log_debug("warm-up Missing to %s: %s %s", w->og->origins->o[w->to].id,
                 rpc_code_name(code), msg ? msg : "");
  warm_end(w);
}

rpc_call_t *nd_origin_ask_missing(rpc_conn_t *conn, const nd_ver_t *v, const rpc_call_cbs_t *cbs,
                                  void *arg) {
  Origin__MissingRequest req = ORIGIN__MISSING_REQUEST__INIT;
  req.manifest.data = v->menc;
  req.manifest.len = v->menc_len;
  req.replicate = true;
  return rpc_start_origin_missing(conn, &req, ND_MISSING_CALL_MS, cbs, arg);
}

static void warm_ready(rpc_conn_t *conn, void *arg) {
  nd_warm_t *w = arg;
  if (w->conn != conn) return;
  static const rpc_call_cbs_t cbs = {NULL, NULL, NULL, warm_done};
  w->call = nd_origin_ask_missing(conn, w->ver, &cbs, w);
  if (!w->call) warm_end(w);
}

static void warm_closed(rpc_conn_t *conn, int err, void *arg) {
  (void)err;
  nd_warm_t *w = arg;
  if (w->conn != conn) return;
  w->conn = NULL;
  if (!w->call) warm_end(w);
}

/* Best effort: a warm-up that cannot start costs only time. */
static void warm_next(nd_origin_t *og, nd_ver_t *v) {
  const nd_origins_t *os = og->origins;
  if (og->stopping || os->self < 0 || (uint32_t)os->self + 1 >= os->n) return;
  if (!os->o[os->self + 1].port) return; /* address not known yet */
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    nd_warm_t *w = &og->warms[i];
    if (w->used) continue;
    static const rpc_conn_cbs_t cbs = {warm_ready, warm_closed};
    *w = (nd_warm_t){.used = true, .og = og, .ver = v, .to = (uint32_t)os->self + 1};
    nd_ver_get(v);
    const nd_peer_t *o = &os->o[w->to];
    w->conn = rpc_connect(og->e, o->addr, o->port, &cbs, w);
    if (!w->conn) warm_end(w);
    return;
  }
}

static int h_missing(rpc_call_t *call, const Origin__MissingRequest *req, void *ctx) {
  nd_origin_t *og = ctx;
  st_manifest_t *man;
  int rc = st_manifest_decode(req->manifest.data, req->manifest.len, &man);
  if (rc) return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "not a manifest");
  uint64_t newest = nd_newest_complete(og->p, man->name), version = man->version;
  char name[FD_NAME_LEN_MAX + 1];
  snprintf(name, sizeof(name), "%s", man->name);
  st_manifest_free(man);
  if (!req->replicate && version != newest + 1) {
    char msg[128];
    snprintf(msg, sizeof(msg), "version %" PRIu64 " is not newest+1 (newest %" PRIu64 ")",
             version, newest);
    fd_log_warn("%s: publish refused: %s", name, msg);
    return rpc_call_finish(call, RPC_FAILED_PRECONDITION, msg);
  }
  if (!req->replicate && !nd_group_orders(og)) return nd_group_not_head(og, call);
  uint32_t live = nd_link_reachable(og);
  if (!req->replicate && live < og->min_durable) {
    char msg[160];
    snprintf(msg, sizeof(msg),
             "only %u origin(s) can hold it durably; min_durable_origins is %u", live,
             og->min_durable);
    fd_log_warn("%s: publish refused: %s", name, msg);
    return rpc_call_finish(call, RPC_UNAVAILABLE, msg);
  }
  nd_ver_t *v;
  rc = nd_ver_begin(og->p, req->manifest.data, req->manifest.len, &v);
  if (rc == -EKEYREJECTED) {
    fd_log_error("%s v%" PRIu64 ": manifest signature rejected", name, version);
    return rpc_call_finish(call, RPC_PERMISSION_DENIED, "manifest signature rejected");
  }
  if (rc) {
    fd_log_warn("%s v%" PRIu64 ": cannot begin: %s", name, version, fd_strerror(rc));
    return rpc_call_finish(call, rc == -EEXIST ? RPC_ALREADY_EXISTS : rpc_code_from_errno(rc),
                           fd_strerror(rc));
  }
  if (v->delta_running) return wait_delta(og, call, v); /* started by a warm-up */
  if (v->complete || st_version_missing(v->sv) == 0 || v->bytes_reused)
    return reply_missing(og, call, v);
  rc = wait_delta(og, call, v);
  nd_missing_t *w = wait_of(og, v);
  if (rc || !w) return rc; /* answered: no room to wait */
  if (nd_ver_delta(og->p, v, on_delta, og) != 0) {
    *w = (nd_missing_t){0};
    return reply_missing(og, call, v);
  }
  warm_next(og, v);
  return 0;
}

/* ---- Gc ------------------------------------------------------------------------- */

static int h_gc(rpc_call_t *call, const Origin__GcRequest *req, void *ctx) {
  nd_origin_t *og = ctx;
  if (!st_name_valid(req->name)) return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "name");
  /* keep 0 means the origin's configured keep_versions. */
  int rc = nd_gc(og->p, req->name, req->keep);
  if (rc < 0) return rc;
  Origin__GcReply r = ORIGIN__GC_REPLY__INIT;
  r.removed = (uint32_t)rc;
  rc = rpc_call_send(call, &r.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

/* ---- life ---------------------------------------------------------------------- */

nd_origin_t *nd_origin_create(const nd_origin_opts_t *o) {
  FD_ASSERT(o->origins->self >= 0);
  nd_origin_t *og = calloc(1, sizeof(*og));
  if (!og) return NULL;
  fd_hist_init(&og->m.ack_latency, fd_hist_latency_bounds_ns, fd_hist_latency_bounds_n);
  og->p = o->p;
  og->e = o->e;
  og->sched = o->sched;
  og->store = o->store;
  snprintf(og->data_dir, sizeof(og->data_dir), "%s", o->data_dir);
  og->origins = o->origins;
  og->zk = o->zk;
  snprintf(og->id, sizeof(og->id), "%s", o->id);
  og->signer = o->signer;
  og->min_durable = o->min_durable;
  og->bump_changes = o->bump_changes;
  og->bump_bytes = o->bump_bytes;
  og->bump_interval_ms = o->bump_interval_ms;
  og->write_chunk_size = o->write_chunk_size ? o->write_chunk_size : ND_WRITE_CHUNK_DEFAULT;
  og->link.og = og;
  og->link.to = UINT32_MAX;
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) og->wlogs[i].og = og;
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    og->pubs[i].og = og;
    nd_sink_init(&og->pubs[i].sink, og->p, NULL, &og->pubs[i]);
  }
  int rc = -ENOMEM;
  if (!(og->pack_buf = malloc(FD_LOG_RECORD_MAX))) goto out_free;
  if ((rc = nd_pub_register(og)) || (rc = rpc_serve_origin_gc(og->e, h_gc, og)) ||
      (rc = rpc_serve_origin_missing(og->e, h_missing, og)) || (rc = nd_writes_register(og)) ||
      (rc = nd_link_register(og)) || (rc = nd_catchup_register(og)) ||
      (rc = nd_group_register(og)))
    goto out_free;
  nd_wlogs_resume(og);
  return og;
out_free:
  free(og->pack_buf);
  free(og);
  errno = -rc;
  return NULL;
}

void nd_origin_destroy(nd_origin_t *og) {
  if (!og) return;
  nd_merge_stop(og);
  nd_writes_stop(og); /* nothing is queued after a stop; the engine is gone */
  nd_wlogs_close(og);
  if (og->link.bf_it) st_log_iter_close(og->link.bf_it);
  free(og->link.names);
  nd_commit_release(og);
  nd_dedup_free(&og->dedup);
  free(og->pack_buf);
  free(og);
}

void nd_origin_stop(nd_origin_t *og) {
  og->stopping = true;
  og->link.stopping = true;
  nd_writes_stop(og);
}

void nd_origin_tick(nd_origin_t *og) {
  nd_group_tick(og);
  nd_pub_tick(og);
  nd_link_tick(og);
  nd_writes_tick(og);
  nd_merge_tick(og);
  if (og->origins->self == 0) nd_commit_retry(og);
}

const nd_origin_metrics_t *nd_origin_metrics(const nd_origin_t *og) { return &og->m; }
