/*
 * nd_origin.c — role origin: Missing, Publish (head, admin role), Replicate
 * and the chain.
 *
 * A publish: fdadmin calls Missing(manifest) on the head, which checks that
 * the version is its newest + 1, begins it (signature checked by storage)
 * and reuses every chunk it already holds, then answers with the chunks it
 * lacks; fdadmin streams those on Publish. The moment the head has begun the
 * version it tells fdsched (RegisterVersion, PENDING: the nodes start
 * fetching, and verify every chunk against the signed manifest, but make
 * nothing current) and opens the chain to the next origin (Missing with
 * replicate = true, then Replicate with only what that origin lacks). Every
 * chunk goes down the chain as it arrives (cut-through from the buffer it
 * came in, or read back from disk if the next origin is slower), so the
 * chain costs one pass over the data, not one per origin; each origin does
 * the same to the next. An origin answers its sender only once it holds the
 * version durably itself (fdatasync, rename, fsync) AND the rest of the chain
 * has answered. Each answer lists the origins that hold the version, so the
 * head's reply — and the origins it commits with fdsched (COMMITTED) — are
 * exactly the ones holding it durably. An origin that cannot be reached or
 * fails mid-copy is dropped from the chain and the next one is tried;
 * nothing is acknowledged for an origin that did not say it holds the
 * version. A publish that fails (the client's stream breaks, chunks are
 * missing, a disk error) cancels its chain, and the head tells fdsched the
 * version is ABORTED, so no node ever makes it current.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_int.h"

/* ---- Missing ------------------------------------------------------------------- */

static int reply_missing(nd_node_t *n, rpc_call_t *call, nd_ver_t *v) {
  (void)n;
  Origin__MissingReply r = ORIGIN__MISSING_REPLY__INIT;
  uint32_t cnt = v->complete ? 0 : st_version_missing(v->sv);
  uint32_t *list = cnt ? malloc(cnt * sizeof(uint32_t)) : NULL; /* once per publish */
  if (cnt && !list) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
  uint32_t k = 0;
  for (uint32_t i = 0; i < v->m->chunk_count && k < cnt; i++)
    if (!nd_ver_has(v, i)) list[k++] = i;
  r.version = v->version;
  r.n_chunks = k;
  r.chunks = list;
  r.bytes_reused = v->bytes_reused;
  int rc = rpc_call_send(call, &r.base);
  free(list);
  if (rc) return rc;
  return rpc_call_finish(call, RPC_OK, NULL);
}

static void missing_closed(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)code;
  (void)msg;
  nd_ver_t *v = arg;
  if (v->missing_call == call) v->missing_call = NULL;
}

static void on_delta(void *arg, int res) {
  nd_ver_t *v = arg;
  v->delta_running = false;
  if (res) fd_log_warn("%s v%" PRIu64 " delta: %s", v->name, v->version, fd_strerror(res));
  else fd_log_info("%s v%" PRIu64 ": reused %" PRIu64 " bytes from local versions", v->name,
                   v->version, v->bytes_reused);
  v->users--;
  rpc_call_t *call = v->missing_call;
  v->missing_call = NULL;
  /* the node pointer is not at hand here: reply_missing does not need it */
  if (call) reply_missing(NULL, call, v);
}

/* ---- warm-up: the next origin starts its delta while this one runs its own -- */

static void warm_end(nd_warm_t *w) {
  rpc_conn_t *c = w->conn;
  w->conn = NULL;
  if (c) rpc_conn_close(c);
  if (w->ver) nd_ver_put(w->n, w->ver);
  w->ver = NULL;
  w->used = false;
}

static void warm_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_warm_t *w = arg;
  w->call = NULL;
  if (code != RPC_OK)
    fd_log_debug("warm-up Missing to %s: %s %s", w->n->origins[w->to].id, rpc_code_name(code),
                 msg ? msg : "");
  warm_end(w);
}

static void warm_ready(rpc_conn_t *conn, void *arg) {
  (void)conn;
  nd_warm_t *w = arg;
  Origin__MissingRequest req = ORIGIN__MISSING_REQUEST__INIT;
  req.manifest.data = w->ver->menc;
  req.manifest.len = w->ver->menc_len;
  req.replicate = true;
  rpc_call_cbs_t cbs = {NULL, NULL, NULL, warm_done};
  w->call = rpc_call_start(w->conn, RPC_SVC_ORIGIN, &origin__origin__descriptor,
                           ND_ORIGIN_METHOD_MISSING, RPC_UNARY, &req.base, 60000, &cbs, w);
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
static void warm_next(nd_node_t *n, nd_ver_t *v) {
  if (n->self_origin < 0 || (uint32_t)n->self_origin + 1 >= n->origins_n) return;
  if (!n->origins[n->self_origin + 1].port) return; /* address not known yet */
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    nd_warm_t *w = &n->warms[i];
    if (w->used) continue;
    static const rpc_conn_cbs_t cbs = {warm_ready, warm_closed};
    *w = (nd_warm_t){.used = true, .n = n, .ver = v, .to = (uint32_t)n->self_origin + 1};
    v->users++;
    const nd_origin_t *o = &n->origins[w->to];
    w->conn = rpc_connect(n->e, o->addr, o->port, &cbs, w);
    if (!w->conn) warm_end(w);
    return;
  }
}

static int h_missing(rpc_call_t *call, const ProtobufCMessage *m, void *ctx) {
  nd_node_t *n = ctx;
  const Origin__MissingRequest *req = (const Origin__MissingRequest *)m;
  st_manifest_t *man;
  int rc = st_manifest_decode(req->manifest.data, req->manifest.len, &man);
  if (rc) return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "not a manifest");
  uint64_t newest = nd_newest_complete(n, man->name), version = man->version;
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
  if (!req->replicate && n->self_origin != 0)
    return rpc_call_finish(call, RPC_FAILED_PRECONDITION, "not the chain head");
  nd_ver_t *v;
  rc = nd_ver_begin(n, req->manifest.data, req->manifest.len, &v);
  if (rc == -EKEYREJECTED) {
    fd_log_error("%s v%" PRIu64 ": manifest signature rejected", name, version);
    return rpc_call_finish(call, RPC_PERMISSION_DENIED, "manifest signature rejected");
  }
  if (rc) {
    fd_log_warn("%s v%" PRIu64 ": cannot begin: %s", name, version, fd_strerror(rc));
    return rpc_call_finish(call, rc == -EEXIST ? RPC_ALREADY_EXISTS : rpc_code_from_errno(rc),
                           fd_strerror(rc));
  }
  rpc_call_cbs_t cbs = {NULL, NULL, NULL, missing_closed};
  if (v->delta_running) { /* started by a warm-up: this call waits for it too */
    rpc_call_t *old = v->missing_call;
    v->missing_call = NULL;
    if (old) reply_missing(n, old, v); /* the warm-up's answer is not used */
    v->missing_call = call;
    rpc_call_set_cbs(call, &cbs, v);
    return 0;
  }
  if (v->complete || st_version_missing(v->sv) == 0 || v->bytes_reused)
    return reply_missing(n, call, v);
  v->missing_call = call;
  rpc_call_set_cbs(call, &cbs, v);
  v->delta_running = true;
  v->users++;
  rc = st_version_delta(v->sv, &v->bytes_reused, on_delta, v);
  if (rc) {
    v->delta_running = false;
    v->users--;
    v->missing_call = NULL;
    return reply_missing(n, call, v);
  }
  warm_next(n, v);
  return 0;
}

/* ---- Publish / Replicate reception -------------------------------------------- */

static nd_pub_t *pub_new(nd_node_t *n, rpc_call_t *call, bool repl) {
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    nd_pub_t *p = &n->pubs[i];
    if (p->used || p->sink.puts || p->chain.active) continue;
    uint32_t gen = p->sink.gen;
    memset(p, 0, sizeof(*p));
    p->used = true;
    p->is_repl = repl;
    p->n = n;
    p->call = call;
    p->sink.gen = gen + 1;
    nd_sink_start(n, &p->sink, call);
    return p;
  }
  return NULL;
}

static void pub_release(nd_pub_t *p) {
  if (p->sink.ver) {
    nd_ver_put(p->n, p->sink.ver);
    p->sink.ver = NULL;
  }
  p->used = false;
}

static void pub_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  nd_pub_t *p = arg;
  nd_sink_on_data(p->n, &p->sink, call, buf, len);
}

static void pub_abort(nd_pub_t *p);

static void pub_closed(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_pub_t *p = arg;
  if (code != RPC_OK)
    fd_log_warn("%s ended: %s %s", p->is_repl ? "replicate" : "publish", rpc_code_name(code),
                msg ? msg : "");
  if (code != RPC_OK && !p->finishing) pub_abort(p); /* broke before every chunk landed */
  nd_sink_end(p->n, &p->sink);
  p->call = NULL;
  if (!p->finishing && !p->sink.puts) pub_release(p); /* else the tick does */
  /* a finishing publish keeps its version until the chain is done */
}

static void pub_answer(nd_pub_t *p, int err) {
  nd_node_t *n = p->n;
  nd_chain_t *c = &p->chain;
  if (p->call) {
    if (err) {
      rpc_call_finish(p->call, rpc_code_from_errno(err), fd_strerror(err));
    } else if (p->is_repl) {
      Origin__ReplicateReply r = ORIGIN__REPLICATE_REPLY__INIT;
      char *ids[ND_ORIGINS_MAX];
      for (uint32_t i = 0; i < c->held_n; i++) ids[i] = c->held[i];
      r.durable = true;
      r.n_origins = c->held_n;
      r.origins = ids;
      rpc_call_send(p->call, &r.base);
      rpc_call_finish(p->call, RPC_OK, NULL);
    } else {
      Origin__PublishReply r = ORIGIN__PUBLISH_REPLY__INIT;
      char *ids[ND_ORIGINS_MAX];
      for (uint32_t i = 0; i < c->held_n; i++) ids[i] = c->held[i];
      r.version = p->sink.ver->version;
      r.n_origins = c->held_n;
      r.origins = ids;
      rpc_call_send(p->call, &r.base);
      rpc_call_finish(p->call, RPC_OK, NULL);
    }
  }
  (void)n;
  p->finishing = false;
  if (!p->call) pub_release(p);
}

void nd_origin_registered(nd_node_t *n, nd_pub_t *p, int err) {
  (void)n;
  if (err) fd_log_warn("RegisterVersion with fdsched failed (%s); acknowledging anyway: the "
                       "origins hold it", fd_strerror(err));
  pub_answer(p, 0);
}

static void chain_start(nd_chain_t *c);

/* The publish failed: its chain stops, and fdsched hears it was aborted. */
static void pub_abort(nd_pub_t *p) {
  nd_chain_t *c = &p->chain;
  if (c->active && !c->aborted) {
    c->aborted = true;
    if (c->call) {
      rpc_call_cancel(c->call); /* its done callback ends the chain */
    } else {
      rpc_conn_t *old = c->conn;
      c->conn = NULL;
      if (old) rpc_conn_close(old);
      c->done(c, -ECANCELED);
    }
  }
  if (p->announced && p->sink.ver) {
    p->announced = false;
    nd_sched_version_state(p->n, p->sink.ver, true);
  }
  if (p->sink.ver) nd_ver_abort(p->n, p->sink.ver->name, p->sink.ver->version);
}

/* Answers once this origin holds the version and the chain behind it has
 * answered. */
static void pub_maybe_done(nd_pub_t *p) {
  nd_node_t *n = p->n;
  nd_chain_t *c = &p->chain;
  if (!p->self_done || !p->chain_over) return;
  p->self_done = false;
  if (p->chain_err) {
    pub_abort(p);
    pub_answer(p, p->chain_err);
    return;
  }
  char list[512] = "";
  for (uint32_t i = 0; i < c->held_n; i++) {
    strncat(list, c->held[i], sizeof(list) - strlen(list) - 2);
    if (i + 1 < c->held_n) strcat(list, ",");
  }
  fd_log_info("%s v%" PRIu64 " held durably by %u origin(s): %s", p->sink.ver->name,
              p->sink.ver->version, c->held_n, list);
  if (!p->is_repl && n->sched.port) {
    p->announced = false;
    nd_sched_register_version(n, p);
    return;
  }
  pub_answer(p, 0);
}

static void chain_done(nd_chain_t *c, int err) {
  nd_pub_t *p = c->arg;
  c->active = false;
  if (c->aborted) return; /* the publish already failed and was answered */
  p->chain_over = true;
  p->chain_err = err;
  pub_maybe_done(p);
}

/* From the first part of a publish or replicate: the copy to the next
 * origin runs alongside the reception. */
static void chain_begin(nd_pub_t *p) {
  nd_chain_t *c = &p->chain;
  memset(c, 0, sizeof(*c));
  c->active = true;
  c->n = p->n;
  c->ver = p->sink.ver;
  c->next = (uint32_t)p->n->self_origin + 1;
  snprintf(c->held[0], sizeof(c->held[0]), "%s", p->n->cfg.id);
  c->held_n = 1;
  c->done = chain_done;
  c->arg = p;
  chain_start(c);
}

static void on_pub_complete(void *arg, int res) {
  nd_pub_t *p = arg;
  if (res) {
    pub_abort(p);
    pub_answer(p, res);
    return;
  }
  p->self_done = true;
  pub_maybe_done(p);
}

/* Called from the tick: a stream that ended waits for its puts to land. */
static void pub_try_finish(nd_pub_t *p) {
  if (p->used && !p->call && !p->finishing && !p->sink.puts) {
    pub_release(p);
    return;
  }
  if (!p->used || !p->ended || p->finishing || p->sink.puts) return;
  nd_ver_t *v = p->sink.ver;
  if (!v) return;
  if (p->sink.err && !v->complete && st_version_missing(v->sv)) {
    p->ended = false;
    pub_abort(p);
    if (p->call) rpc_call_finish(p->call, rpc_code_from_errno(p->sink.err), "chunks failed");
    return;
  }
  if (!v->complete && st_version_missing(v->sv)) {
    p->ended = false;
    fd_log_warn("%s v%" PRIu64 ": stream ended with %u chunks missing", v->name, v->version,
                st_version_missing(v->sv));
    pub_abort(p);
    if (p->call) rpc_call_finish(p->call, RPC_FAILED_PRECONDITION, "chunks missing");
    return;
  }
  p->finishing = true;
  if (v->complete) {
    on_pub_complete(p, 0);
    return;
  }
  int rc = nd_version_complete(p->n, v, on_pub_complete, p);
  fd_log_debug("%s v%" PRIu64 ": complete -> %d", v->name, v->version, rc);
  if (rc == -EAGAIN || rc == -EINPROGRESS) {
    p->finishing = false; /* operations in flight: next tick */
    return;
  }
  if (rc) {
    pub_abort(p);
    pub_answer(p, rc);
  }
}

void nd_origin_tick(nd_node_t *n) {
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) pub_try_finish(&n->pubs[i]);
  if (n->self_origin == 0) nd_sched_commit_retry(n);
}

static int pub_part(nd_pub_t *p, const Origin__PublishPart *part) {
  nd_node_t *n = p->n;
  if (!part) return -EPROTO;
  if (part->part_case == ORIGIN__PUBLISH_PART__PART_BEGIN) {
    if (p->sink.ver || !part->begin) return -EPROTO;
    nd_ver_t *v;
    int rc = nd_ver_begin(n, part->begin->manifest.data, part->begin->manifest.len, &v);
    if (rc) return rc;
    if (!p->is_repl && nd_newest_complete(n, v->name) + 1 != v->version && !v->complete)
      return -ESTALE;
    v->users++;
    p->sink.ver = v;
    p->sink.forward = true; /* down the chain, and to nodes already fetching */
    if (!p->is_repl && n->sched.port) {
      p->announced = true;
      nd_sched_version_state(n, v, false);
    }
    chain_begin(p);
    return 0;
  }
  if (part->part_case == ORIGIN__PUBLISH_PART__PART_CHUNK && p->sink.ver && part->chunk) {
    nd_sink_header(&p->sink, part->chunk);
    return 0;
  }
  return -EPROTO;
}

static int h_publish_like(rpc_call_t *call, const Origin__PublishPart *part, nd_node_t *n,
                          bool repl) {
  nd_pub_t *p = rpc_call_arg(call);
  if (!p) {
    p = pub_new(n, call, repl);
    if (!p) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "too many publishes");
    rpc_call_cbs_t cbs = {NULL, pub_data, NULL, pub_closed};
    rpc_call_set_cbs(call, &cbs, p);
  }
  if (!part && !p->ended) {
    if (!p->sink.ver) return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "no begin");
    p->ended = true; /* the tick finishes once every put has landed */
    return 0;
  }
  int rc = pub_part(p, part);
  if (rc == -EKEYREJECTED) {
    fd_log_error("publish: manifest signature rejected");
    return rpc_call_finish(call, RPC_PERMISSION_DENIED, "manifest signature rejected");
  }
  if (rc == -ESTALE) return rpc_call_finish(call, RPC_FAILED_PRECONDITION, "not newest+1");
  return rc;
}

static int h_publish(rpc_call_t *call, const Origin__PublishPart *part, void *ctx) {
  nd_node_t *n = ctx;
  if (n->self_origin != 0) return rpc_call_finish(call, RPC_FAILED_PRECONDITION, "not the head");
  return h_publish_like(call, part, n, false);
}

static int h_replicate(rpc_call_t *call, const Origin__ReplicatePart *rp, void *ctx) {
  return h_publish_like(call, rp ? rp->part : NULL, ctx, true);
}

static int h_gc(rpc_call_t *call, const Origin__GcRequest *req, void *ctx) {
  nd_node_t *n = ctx;
  if (!st_name_valid(req->name)) return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "name");
  /* keep 0 means the origin's configured keep_versions. */
  int rc = nd_gc(n, req->name, req->keep);
  if (rc < 0) return rc;
  Origin__GcReply r = ORIGIN__GC_REPLY__INIT;
  r.removed = (uint32_t)rc;
  rc = rpc_call_send(call, &r.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

/* ---- the chain: copy a complete version to the next live origin ----------------- */

static void chain_next(nd_chain_t *c, const char *why) {
  nd_node_t *n = c->n;
  if (c->aborted) {
    rpc_conn_t *old = c->conn;
    c->conn = NULL;
    if (old) rpc_conn_close(old);
    c->done(c, -ECANCELED);
    return;
  }
  if (c->next < n->origins_n && ++c->attempts < ND_CHAIN_ATTEMPTS) {
    fd_log_warn("copy of %s v%" PRIu64 " to origin %s failed (%s): trying it again",
                c->ver->name, c->ver->version, n->origins[c->next].id, why);
    rpc_conn_t *old = c->conn;
    c->conn = NULL;
    if (old) rpc_conn_close(old);
    chain_start(c);
    return;
  }
  c->attempts = 0;
  if (c->next < n->origins_n)
    fd_log_warn("origin %s dropped from the chain for %s v%" PRIu64 ": %s",
                n->origins[c->next].id, c->ver->name, c->ver->version, why);
  rpc_conn_t *old = c->conn;
  c->conn = NULL; /* its on_closed, now or later, is then ignored */
  if (old) rpc_conn_close(old);
  c->next++;
  chain_start(c);
}

static void chain_repl_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_chain_t *c = arg;
  if (m->descriptor != &origin__replicate_reply__descriptor) return;
  const Origin__ReplicateReply *r = (const Origin__ReplicateReply *)m;
  if (!r->durable) return;
  for (size_t i = 0; i < r->n_origins && c->held_n < ND_ORIGINS_MAX; i++)
    snprintf(c->held[c->held_n++], sizeof(c->held[0]), "%s", r->origins[i]);
  c->got_reply = true;
}

static void chain_repl_writable(rpc_call_t *call, void *arg) {
  (void)call;
  nd_chain_t *c = arg;
  if (c->tx) nd_tx_pump(c->tx);
}

static void chain_repl_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_chain_t *c = arg;
  c->call = NULL;
  if (c->tx) {
    nd_tx_call_gone(c->tx);
    c->tx = NULL;
  }
  if (code == RPC_OK && c->got_reply) {
    rpc_conn_t *old = c->conn;
    c->conn = NULL;
    if (old) rpc_conn_close(old);
    c->done(c, 0);
    return;
  }
  chain_next(c, msg && *msg ? msg : rpc_code_name(code));
}

static void chain_missing_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_chain_t *c = arg;
  nd_node_t *n = c->n;
  if (m->descriptor != &origin__missing_reply__descriptor) return;
  const Origin__MissingReply *r = (const Origin__MissingReply *)m;
  nd_tx_t *tx = nd_tx_new(n, ND_TX_REPL, NULL, c->ver);
  if (!tx) return;
  for (size_t i = 0; i < r->n_chunks; i++) {
    uint32_t idx = r->chunks[i];
    if (idx < c->ver->m->chunk_count && !(tx->want[idx / 8] >> (idx % 8) & 1)) {
      tx->want[idx / 8] |= (uint8_t)(1u << (idx % 8));
      tx->want_count++;
    }
  }
  c->tx = tx;
  tx->chain = c;
}

static void chain_missing_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_chain_t *c = arg;
  nd_node_t *n = c->n;
  c->call = NULL;
  if (code != RPC_OK || !c->tx) {
    if (c->tx) nd_tx_call_gone(c->tx), c->tx = NULL;
    chain_next(c, msg && *msg ? msg : rpc_code_name(code));
    return;
  }
  rpc_call_cbs_t cbs = {chain_repl_msg, NULL, chain_repl_writable, chain_repl_done};
  c->call = rpc_start_origin_replicate(c->conn, NULL, ND_STREAM_TIMEOUT_MS, &cbs, c);
  if (!c->call) {
    nd_tx_call_gone(c->tx);
    c->tx = NULL;
    chain_next(c, "cannot start Replicate");
    return;
  }
  Origin__PublishBegin b = ORIGIN__PUBLISH_BEGIN__INIT;
  b.name = c->ver->name;
  b.manifest.data = c->ver->menc;
  b.manifest.len = c->ver->menc_len;
  Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
  part.part_case = ORIGIN__PUBLISH_PART__PART_BEGIN;
  part.begin = &b;
  Origin__ReplicatePart rp = ORIGIN__REPLICATE_PART__INIT;
  rp.version = c->ver->version;
  rp.part = &part;
  c->tx->call = c->call;
  if (rpc_call_send(c->call, &rp.base) != 0) {
    rpc_call_cancel(c->call); /* chain_repl_done moves on */
    return;
  }
  fd_log_info("replicating %s v%" PRIu64 " to %s: %u chunks", c->ver->name, c->ver->version,
              n->origins[c->next].id, c->tx->want_count);
  nd_tx_pump(c->tx);
}

static void chain_ready(rpc_conn_t *conn, void *arg) {
  nd_chain_t *c = arg;
  Origin__MissingRequest req = ORIGIN__MISSING_REQUEST__INIT;
  req.manifest.data = c->ver->menc;
  req.manifest.len = c->ver->menc_len;
  req.replicate = true;
  rpc_call_cbs_t cbs = {chain_missing_msg, NULL, NULL, chain_missing_done};
  c->call = rpc_call_start(conn, RPC_SVC_ORIGIN, &origin__origin__descriptor,
                           ND_ORIGIN_METHOD_MISSING, RPC_UNARY, &req.base, 60000, &cbs, c);
  if (!c->call) chain_next(c, "cannot start Missing");
}

static void chain_closed(rpc_conn_t *conn, int err, void *arg) {
  nd_chain_t *c = arg;
  if (c->conn != conn) return;
  c->conn = NULL;
  if (c->active && !c->call && !rpc_conn_is_ready(conn))
    chain_next(c, err ? fd_strerror(err) : "connection closed");
}

static void chain_start(nd_chain_t *c) {
  nd_node_t *n = c->n;
  if (c->next >= n->origins_n) {
    c->done(c, 0);
    return;
  }
  static const rpc_conn_cbs_t cbs = {chain_ready, chain_closed};
  nd_origin_t *o = &n->origins[c->next];
  if (!o->port) { /* a bare id fdsched has not placed yet: dropped like an unreachable origin */
    c->attempts = ND_CHAIN_ATTEMPTS;
    chain_next(c, "address not known yet (not registered with fdsched)");
    return;
  }
  c->got_reply = false;
  c->conn = rpc_connect(n->e, o->addr, o->port, &cbs, c);
  if (!c->conn) chain_next(c, fd_strerror(-errno));
}

/* Missing is served through the generic registration (rpc.h's typed table
 * predates it); the thunk is the handler itself, typed is only a tag. */
static void missing_tag(void) {}

int nd_origin_register(nd_node_t *n) {
  rpc_method_reg_t reg = {RPC_SVC_ORIGIN, &origin__origin__descriptor, ND_ORIGIN_METHOD_MISSING,
                          RPC_UNARY, false, h_missing, missing_tag, n};
  int rc;
  if ((rc = rpc_serve_origin_publish(n->e, h_publish, n)) ||
      (rc = rpc_serve_origin_replicate(n->e, h_replicate, n)) ||
      (rc = rpc_serve_origin_gc(n->e, h_gc, n)) || (rc = rpc_serve(n->e, &reg)))
    return rc;
  return 0;
}
