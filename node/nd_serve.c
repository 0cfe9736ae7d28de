/*
 * nd_serve.c — sending chunks: a child's FetchStripe or RepairPull (server
 * side) and an origin's Replicate (client side) share one sender (nd_tx_t).
 *
 * A sender holds a bitmap of the chunks it still owes. A chunk this node
 * already holds durably is read O_DIRECT into a pool buffer (CRC32C checked)
 * and sent from it; a chunk still on its way here is sent the moment it
 * arrives and passes verification, from the very buffer it arrived in
 * (nd_forward: cut-through, no copy). A child that cannot keep up is simply
 * served later from disk. Every queue is bounded (ND_TX_Q, ND_TX_READS).
 *
 * have_bitmap of FetchStripe: bit j (byte j / 8, LSB first) stands for chunk
 * stripe + j * stripes, i.e. the j-th chunk of the stripe.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_int.h"

static bool want_get(const nd_tx_t *tx, uint32_t i) { return tx->want[i / 8] >> (i % 8) & 1; }
static void want_clear(nd_tx_t *tx, uint32_t i) {
  if (!want_get(tx, i)) return;
  tx->want[i / 8] &= (uint8_t) ~(1u << (i % 8));
  tx->want_count--;
}
static void want_set(nd_tx_t *tx, uint32_t i) {
  if (want_get(tx, i)) return;
  tx->want[i / 8] |= (uint8_t)(1u << (i % 8));
  tx->want_count++;
}

nd_tx_t *nd_tx_new(nd_node_t *n, nd_tx_kind_t kind, rpc_call_t *call, nd_ver_t *ver) {
  for (uint32_t i = 0; i < ND_TX_MAX; i++) {
    nd_tx_t *tx = &n->txs[i];
    if (tx->used || tx->reads_busy) continue;
    uint8_t *want = tx->want;
    size_t bytes = (ver->m->chunk_count + 7) / 8;
    want = realloc(want, bytes ? bytes : 1); /* once per stream, never per chunk */
    if (!want) return NULL;
    memset(want, 0, bytes);
    memset(tx, 0, sizeof(*tx));
    *tx = (nd_tx_t){.used = true, .n = n, .kind = kind, .call = call, .ver = ver, .want = want};
    ver->users++;
    return tx;
  }
  return NULL;
}

static void tx_release(nd_tx_t *tx) {
  nd_node_t *n = tx->n;
  while (tx->q_len) {
    nd_tx_item_t *it = &tx->q[tx->q_head];
    nd_buf_unref(n, it->buf);
    tx->q_head = (tx->q_head + 1) % ND_TX_Q;
    tx->q_len--;
  }
  if (tx->ver) {
    nd_ver_put(n, tx->ver);
    tx->ver = NULL;
  }
  tx->used = false; /* the slot is reused once reads_busy drops to 0 */
}

void nd_tx_call_gone(nd_tx_t *tx) {
  tx->call_gone = true;
  tx->call = NULL;
  tx_release(tx);
}

static void tx_push(nd_tx_t *tx, uint8_t *buf, uint32_t index, uint32_t len) {
  FD_ASSERT(tx->q_len < ND_TX_Q);
  tx->q[(tx->q_head + tx->q_len) % ND_TX_Q] = (nd_tx_item_t){buf, index, len, false};
  tx->q_len++;
}

static void on_read(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  nd_read_t *r = (nd_read_t *)op;
  nd_tx_t *tx = r->tx;
  nd_node_t *n = tx->n;
  if (res > 0) {
    r->got += (uint32_t)res;
    if (r->got < r->len && tx->used && tx->ver) {
      struct io_uring_sqe *sqe = fd_ring_sqe(n->ring, &r->op);
      uint64_t off = (uint64_t)r->index * tx->ver->m->chunk_size_bytes + r->got;
      io_uring_prep_read_fixed(sqe, tx->ver->fd, r->buf + r->got,
                               FD_ALIGN_UP(r->len, FD_DIRECT_ALIGN) - r->got, off,
                               (int)fd_pool_index(n->pool, r->buf));
      return;
    }
  }
  r->busy = false;
  tx->reads_busy--;
  if (!tx->used || !tx->ver) {
    nd_buf_unref(n, r->buf);
    return;
  }
  if (r->got < r->len || fd_crc32c(0, r->buf, r->len) != tx->ver->m->chunk_crc32c[r->index]) {
    fd_log_error("%s v%" PRIu64 " chunk %u: local read failed (%s); not served", tx->ver->name,
                 tx->ver->version, r->index, res < 0 ? fd_strerror(res) : "bad CRC32C");
    /* rot found by a reader: marked, reported and re-fetched like scrub's */
    if (tx->ver->complete && st_chunk_mark_bad(tx->ver->sv, r->index) == 0)
      nd_repair_bad(n, tx->ver->name, tx->ver->version, r->index);
    nd_buf_unref(n, r->buf);
    if (tx->kind == ND_TX_FETCH && tx->call) rpc_call_finish(tx->call, RPC_DATA_LOSS, "bad local chunk");
    else if (tx->call) rpc_call_cancel(tx->call);
    return;
  }
  tx_push(tx, r->buf, r->index, r->len);
  nd_tx_pump(tx);
}

static int send_header(nd_tx_t *tx, const nd_tx_item_t *it) {
  Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
  h.index = it->index;
  h.length = it->len;
  h.crc32c = tx->ver->m->chunk_crc32c[it->index];
  if (tx->kind == ND_TX_FETCH) return rpc_call_send(tx->call, &h.base);
  Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
  part.part_case = ORIGIN__PUBLISH_PART__PART_CHUNK;
  part.chunk = &h;
  Origin__ReplicatePart rp = ORIGIN__REPLICATE_PART__INIT;
  rp.version = tx->ver->version;
  rp.part = &part;
  return rpc_call_send(tx->call, &rp.base);
}

void nd_tx_pump(nd_tx_t *tx) {
  nd_node_t *n = tx->n;
  if (!tx->used || !tx->call || tx->ended) return;
  while (tx->q_len) {
    nd_tx_item_t *it = &tx->q[tx->q_head];
    int rc = 0;
    if (!it->hdr_sent) {
      rc = send_header(tx, it);
      if (rc == 0) it->hdr_sent = true;
    }
    if (rc == 0) rc = rpc_call_send_data(tx->call, it->buf, it->len, nd_buf_sent, n);
    if (rc == -EAGAIN) return;
    if (rc < 0) {
      fd_log_warn("send to a child failed: %s", fd_strerror(rc));
      return; /* the call's end releases the stream */
    }
    tx->tx_bytes += it->len;
    n->tx_bytes += it->len;
    tx->q_head = (tx->q_head + 1) % ND_TX_Q; /* the buffer's ref went to the send */
    tx->q_len--;
  }
  for (uint32_t k = 0; tx->want_count && tx->reads_busy < ND_TX_READS &&
                       tx->q_len + tx->reads_busy < ND_TX_Q && k < tx->ver->m->chunk_count;
       k++) {
    uint32_t i = (tx->scan + k) % tx->ver->m->chunk_count;
    if (!want_get(tx, i) || !nd_ver_has(tx->ver, i)) continue;
    /* Disk reads for children leave a reserve for chunks arriving. */
    if (!nd_tx_may_hold(n)) break; /* the tick tries again */
    uint8_t *buf = fd_pool_get(n->pool);
    n->bufm[fd_pool_index(n->pool, buf)] = (nd_bufm_t){.refs = 1, .n = n,
                                                      .idx = fd_pool_index(n->pool, buf)};
    want_clear(tx, i);
    tx->scan = i + 1;
    nd_read_t *r = NULL;
    for (uint32_t j = 0; j < ND_TX_READS; j++)
      if (!tx->reads[j].busy) r = &tx->reads[j];
    FD_ASSERT(r);
    *r = (nd_read_t){.op.complete = on_read, .tx = tx, .buf = buf, .index = i,
                     .len = st_manifest_chunk_len(tx->ver->m, i), .busy = true};
    tx->reads_busy++;
    struct io_uring_sqe *sqe = fd_ring_sqe(n->ring, &r->op);
    io_uring_prep_read_fixed(sqe, tx->ver->fd, buf, FD_ALIGN_UP(r->len, FD_DIRECT_ALIGN),
                             (uint64_t)i * tx->ver->m->chunk_size_bytes,
                             (int)fd_pool_index(n->pool, buf));
  }
  if (!tx->want_count && !tx->q_len && !tx->reads_busy) {
    int rc = tx->kind == ND_TX_FETCH ? rpc_call_finish(tx->call, RPC_OK, NULL)
                                     : rpc_call_close_send(tx->call);
    if (rc != -EAGAIN) tx->ended = true; /* else on_writable or the tick retries */
  }
}

void nd_forward(nd_node_t *n, nd_ver_t *v, uint32_t index, uint8_t *buf, uint32_t len) {
  for (uint32_t i = 0; i < ND_TX_MAX; i++) {
    nd_tx_t *tx = &n->txs[i];
    if (!tx->used || tx->ver != v || !tx->call || tx->ended || !want_get(tx, index)) continue;
    if (tx->q_len + tx->reads_busy >= ND_TX_Q) continue; /* slow child: from disk later */
    if (!nd_tx_may_hold(n)) continue;                    /* pool low: from disk later */
    want_clear(tx, index);
    nd_buf_ref(n, buf);
    tx_push(tx, buf, index, len);
    nd_tx_pump(tx);
  }
}

void nd_tx_tick(nd_node_t *n) {
  for (uint32_t i = 0; i < ND_TX_MAX; i++)
    if (n->txs[i].used && !n->txs[i].ended) nd_tx_pump(&n->txs[i]);
}

/* ---- server callbacks ---------------------------------------------------------- */

static void tx_writable(rpc_call_t *call, void *arg) {
  (void)call;
  nd_tx_pump(arg);
}

static void tx_closed(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  nd_tx_call_gone(arg);
}

/* The version a child asks for: open here, or (still) being received. */
static nd_ver_t *served_version(nd_node_t *n, const char *name, uint64_t version) {
  nd_ver_t *v = nd_ver_find(n, name, version);
  if (v) return v->aborted ? NULL : v;
  if (nd_ver_open(n, name, version, &v) == 0) return v;
  return NULL;
}

static int h_get_manifest(rpc_call_t *call, const Node__GetManifestRequest *req, void *ctx) {
  nd_node_t *n = ctx;
  uint64_t version = req->version;
  if (!version) version = nd_newest_complete(n, req->name);
  nd_ver_t *v = served_version(n, req->name, version);
  if (!v) return rpc_call_finish(call, RPC_NOT_FOUND, "version not held");
  Node__GetManifestReply r = NODE__GET_MANIFEST_REPLY__INIT;
  r.manifest.data = v->menc;
  r.manifest.len = v->menc_len;
  int rc = rpc_call_send(call, &r.base);
  if (rc) return rc;
  return rpc_call_finish(call, RPC_OK, NULL);
}

static int start_tx(nd_node_t *n, rpc_call_t *call, nd_ver_t *v, nd_tx_t **out) {
  nd_tx_t *tx = nd_tx_new(n, ND_TX_FETCH, call, v);
  if (!tx) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "too many streams");
  rpc_call_cbs_t cbs = {NULL, NULL, tx_writable, tx_closed};
  rpc_call_set_cbs(call, &cbs, tx);
  *out = tx;
  return 0;
}

static int h_fetch_stripe(rpc_call_t *call, const Node__FetchStripeRequest *req, void *ctx) {
  nd_node_t *n = ctx;
  nd_ver_t *v = served_version(n, req->name, req->version);
  if (!v) return rpc_call_finish(call, RPC_UNAVAILABLE, "version not here yet");
  if (req->stripes == 0 || req->stripes > FD_STRIPES_MAX || req->stripe >= req->stripes)
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "bad stripe");
  nd_tx_t *tx = NULL;
  int rc = start_tx(n, call, v, &tx);
  if (rc || !tx) return rc;
  uint32_t j = 0;
  for (uint32_t i = req->stripe; i < v->m->chunk_count; i += req->stripes, j++) {
    bool have = j / 8 < req->have_bitmap.len && (req->have_bitmap.data[j / 8] >> (j % 8) & 1);
    if (!have) want_set(tx, i);
  }
  tx->scan = req->stripe;
  nd_tx_pump(tx);
  return 0;
}

static int h_repair_pull(rpc_call_t *call, const Node__RepairPullRequest *req, void *ctx) {
  nd_node_t *n = ctx;
  nd_ver_t *v = served_version(n, req->name, req->version);
  if (!v) return rpc_call_finish(call, RPC_NOT_FOUND, "version not held");
  for (size_t k = 0; k < req->n_chunks; k++)
    if (req->chunks[k] >= v->m->chunk_count)
      return rpc_call_finish(call, RPC_OUT_OF_RANGE, "chunk index");
  nd_tx_t *tx = NULL;
  int rc = start_tx(n, call, v, &tx);
  if (rc || !tx) return rc;
  for (size_t k = 0; k < req->n_chunks; k++) want_set(tx, (uint32_t)req->chunks[k]);
  nd_tx_pump(tx);
  return 0;
}

static int h_ping(rpc_call_t *call, const Node__PingRequest *req, void *ctx) {
  (void)ctx;
  Node__PingReply r = NODE__PING_REPLY__INIT;
  r.nonce = req->nonce;
  int rc = rpc_call_send(call, &r.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

int nd_serve_register(nd_node_t *n) {
  int rc;
  if ((rc = rpc_serve_node_get_manifest(n->e, h_get_manifest, n)) ||
      (rc = rpc_serve_node_fetch_stripe(n->e, h_fetch_stripe, n)) ||
      (rc = rpc_serve_node_repair_pull(n->e, h_repair_pull, n)) ||
      (rc = rpc_serve_node_ping(n->e, h_ping, n)))
    return rc;
  return 0;
}
