/*
 * nd_chain.c — role origin: the chain. From the first part of a reception,
 * an origin copies the version to the next live origin of the chain: it
 * asks which chunks that origin lacks (Missing with replicate = true, which
 * starts the next origin's delta), then streams exactly those on a
 * Replicate call, through the chunk plane's sender — from the buffer each
 * chunk arrives in (cut-through) or read back from disk if the next origin
 * is slower — so the chain costs one pass over the data, not one per
 * origin. The next origin answers once it and everything after it hold the
 * version durably, naming those origins. An origin that cannot be reached
 * or fails mid-copy is tried again (ND_CHAIN_ATTEMPTS tries in all, the
 * k-th after k x ND_CHAIN_RETRY_MS: a full pool there, or a restart, has
 * time to clear) and then dropped from the chain for this version; the one
 * after it is tried. fdsched is told at the commit which origins hold the
 * version, and plans without the others.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fd_error.h"
#include "nd_origin_int.h"

static void chain_start(nd_chain_t *c);

/* The chain is over for this version: the reception hears it (unless the
 * publish failed first and was answered already). */
static void chain_end(nd_chain_t *c, int err) {
  rpc_conn_t *old = c->conn;
  c->conn = NULL;
  if (old) rpc_conn_close(old);
  c->active = false;
  c->retry_at_ms = 0;
  if (!c->aborted) c->done(c->arg, err);
}

static void chain_next(nd_chain_t *c, const char *why) {
  const nd_origins_t *os = c->og->origins;
  if (c->aborted) {
    chain_end(c, -ECANCELED);
    return;
  }
  rpc_conn_t *old = c->conn;
  c->conn = NULL; /* its on_closed, now or later, is then ignored */
  if (old) rpc_conn_close(old);
  if (c->single && c->attempts + 1 >= ND_CHAIN_ATTEMPTS) {
    fd_log_warn("copy of %s v%" PRIu64 " to origin %s failed: %s", c->ver->name, c->ver->version,
                os->o[c->next].id, why);
    chain_end(c, -EIO);
    return;
  }
  if (c->next < os->n && ++c->attempts < ND_CHAIN_ATTEMPTS) {
    uint32_t wait_ms = c->attempts * ND_CHAIN_RETRY_MS;
    fd_log_warn("copy of %s v%" PRIu64 " to origin %s failed (%s): trying it again in %u ms",
                c->ver->name, c->ver->version, os->o[c->next].id, why, wait_ms);
    c->retry_at_ms = fd_now_ms() + wait_ms; /* nd_chain_tick starts it */
    return;
  }
  c->attempts = 0;
  if (c->next < os->n)
    fd_log_warn("origin %s dropped from the chain for %s v%" PRIu64 ": %s", os->o[c->next].id,
                c->ver->name, c->ver->version, why);
  c->next++;
  chain_start(c);
}

/* ---- the Replicate stream: its framing ------------------------------------------ */

static int repl_header(nd_tx_t *tx, const Node__ChunkHeader *h) {
  Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
  part.part_case = ORIGIN__PUBLISH_PART__PART_CHUNK;
  part.chunk = (Node__ChunkHeader *)h;
  Origin__ReplicatePart rp = ORIGIN__REPLICATE_PART__INIT;
  rp.version = nd_tx_ver(tx)->version;
  rp.part = &part;
  return rpc_call_send(nd_tx_call(tx), &rp.base);
}

static int repl_end(nd_tx_t *tx) { return rpc_call_close_send(nd_tx_call(tx)); }

static void repl_fail(nd_tx_t *tx, rpc_code_t code, const char *why) {
  (void)code;
  (void)why;
  rpc_call_cancel(nd_tx_call(tx)); /* chain_repl_done moves on */
}

static const nd_tx_ops_t repl_ops = {repl_header, repl_end, repl_fail};

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

static void tx_gone(nd_chain_t *c) {
  if (!c->tx) return;
  nd_tx_call_gone(c->tx);
  c->tx = NULL;
}

static void chain_repl_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_chain_t *c = arg;
  c->call = NULL;
  tx_gone(c);
  if (code == RPC_OK && c->got_reply) {
    chain_end(c, 0);
    return;
  }
  chain_next(c, msg && *msg ? msg : rpc_code_name(code));
}

/* ---- Missing, then Replicate ------------------------------------------------------ */

static void chain_missing_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_chain_t *c = arg;
  if (m->descriptor != &origin__missing_reply__descriptor || c->tx) return;
  const Origin__MissingReply *r = (const Origin__MissingReply *)m;
  nd_tx_t *tx = nd_tx_new(c->og->p, &repl_ops, c, NULL, c->ver);
  if (!tx) return; /* the call's end moves on */
  nd_tx_set_peer_class(tx, ND_PEER_ORIGIN);
  nd_tx_set_peer_id(tx, c->og->origins->o[c->next].id);
  for (size_t i = 0; i < r->n_chunks; i++)
    if (r->chunks[i] < c->ver->m->chunk_count) nd_tx_want(tx, (uint32_t)r->chunks[i]);
  c->tx = tx;
}

static void chain_missing_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_chain_t *c = arg;
  c->call = NULL;
  if (code != RPC_OK || !c->tx) {
    tx_gone(c);
    chain_next(c, msg && *msg ? msg : rpc_code_name(code));
    return;
  }
  rpc_call_cbs_t cbs = {chain_repl_msg, NULL, chain_repl_writable, chain_repl_done};
  c->call = rpc_start_origin_replicate(c->conn, NULL, ND_STREAM_TIMEOUT_MS, &cbs, c);
  if (!c->call) {
    tx_gone(c);
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
  rp.epoch = c->og->epoch; /* fencing: an origin refuses an older epoch (nd_group.c) */
  rp.part = &part;
  nd_tx_attach(c->tx, c->call);
  if (rpc_call_send(c->call, &rp.base) != 0) {
    rpc_call_cancel(c->call); /* chain_repl_done moves on */
    return;
  }
  fd_log_info("replicating %s v%" PRIu64 " to %s: %u chunks", c->ver->name, c->ver->version,
              c->og->origins->o[c->next].id, nd_tx_wanted(c->tx));
  nd_tx_pump(c->tx);
}

static void chain_ready(rpc_conn_t *conn, void *arg) {
  nd_chain_t *c = arg;
  if (c->conn != conn) return;
  static const rpc_call_cbs_t cbs = {chain_missing_msg, NULL, NULL, chain_missing_done};
  c->call = nd_origin_ask_missing(conn, c->ver, &cbs, c);
  if (!c->call) chain_next(c, "cannot start Missing");
}

static void chain_closed(rpc_conn_t *conn, int err, void *arg) {
  nd_chain_t *c = arg;
  if (c->conn != conn) return;
  c->conn = NULL;
  if (c->active && !c->call && !rpc_conn_is_ready(conn))
    chain_next(c, err ? fd_strerror(err) : "connection closed");
}

void nd_chain_tick(nd_chain_t *c) {
  if (!c->active || !c->retry_at_ms) return;
  if (c->aborted || c->og->stopping) {
    c->retry_at_ms = 0;
    chain_end(c, -ECANCELED);
    return;
  }
  if (fd_now_ms() < c->retry_at_ms) return;
  c->retry_at_ms = 0;
  chain_start(c);
}

static void chain_start(nd_chain_t *c) {
  const nd_origins_t *os = c->og->origins;
  if (c->og->stopping) {
    chain_end(c, -ECANCELED);
    return;
  }
  if (c->next >= os->n) {
    chain_end(c, 0);
    return;
  }
  static const rpc_conn_cbs_t cbs = {chain_ready, chain_closed};
  const nd_peer_t *o = &os->o[c->next];
  if (!o->port) { /* a bare id fdsched has not placed yet: dropped like an unreachable origin */
    c->attempts = ND_CHAIN_ATTEMPTS;
    chain_next(c, "address not known yet (not registered with fdsched)");
    return;
  }
  c->got_reply = false;
  c->conn = rpc_connect(c->og->e, o->addr, o->port, &cbs, c);
  if (!c->conn) chain_next(c, fd_strerror(-errno));
}

static void pub_chain_done(void *arg, int err) { nd_pub_chain_done(arg, err); }

void nd_chain_begin(nd_pub_t *p) {
  nd_chain_t *c = &p->chain;
  memset(c, 0, sizeof(*c));
  c->active = true;
  c->og = p->og;
  c->done = pub_chain_done;
  c->arg = p;
  c->ver = p->sink.ver;
  c->next = (uint32_t)p->og->origins->self + 1;
  snprintf(c->held[0], sizeof(c->held[0]), "%s", p->og->id);
  c->held_n = 1;
  chain_start(c);
}

void nd_chain_copy(nd_chain_t *c, nd_origin_t *og, nd_ver_t *v, uint32_t to,
                   void (*done)(void *arg, int err), void *arg) {
  memset(c, 0, sizeof(*c));
  c->active = true;
  c->single = true;
  c->og = og;
  c->done = done;
  c->arg = arg;
  c->ver = v;
  c->next = to;
  snprintf(c->held[0], sizeof(c->held[0]), "%s", og->id);
  c->held_n = 1;
  chain_start(c);
}

void nd_chain_abort(nd_chain_t *c) {
  if (!c->active || c->aborted) return;
  c->aborted = true;
  if (c->call) {
    rpc_call_cancel(c->call); /* its done callback ends the chain */
  } else {
    chain_end(c, -ECANCELED);
  }
}
