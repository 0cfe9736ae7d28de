/*
 * nd_tx.c — the sender: one per call that carries chunks away from this
 * engine (a child's FetchStripe or RepairPull, an origin's Replicate).
 *
 * A sender holds a bitmap of the chunks it still owes. A chunk this engine
 * already holds durably is read O_DIRECT into a pool buffer (CRC32C checked)
 * and sent from it; a chunk still on its way here is sent the moment it
 * arrives and passes verification, from the very buffer it arrived in
 * (nd_forward: cut-through, no copy). A child that cannot keep up is simply
 * served later from disk. Every queue is bounded (ND_TX_Q, ND_TX_READS), and
 * a sender takes a buffer only while every receiving sink keeps a full
 * window (nd_plane_may_hold). How the stream is framed (headers, its end) is
 * the sender's ops, so the plane carries any role's stream.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_plane_int.h"

static bool want_get(const nd_tx_t *tx, uint32_t i) { return tx->want[i / 8] >> (i % 8) & 1; }

static void want_clear(nd_tx_t *tx, uint32_t i) {
  if (!want_get(tx, i)) return;
  tx->want[i / 8] &= (uint8_t) ~(1u << (i % 8));
  tx->want_count--;
}

void nd_tx_want(nd_tx_t *tx, uint32_t i) {
  FD_ASSERT(i < tx->ver->m->chunk_count);
  if (want_get(tx, i)) return;
  tx->want[i / 8] |= (uint8_t)(1u << (i % 8));
  tx->want_count++;
}

uint32_t nd_tx_wanted(const nd_tx_t *tx) { return tx->want_count; }
void *nd_tx_owner(const nd_tx_t *tx) { return tx->owner; }
rpc_call_t *nd_tx_call(const nd_tx_t *tx) { return tx->call; }
const nd_ver_t *nd_tx_ver(const nd_tx_t *tx) { return tx->ver; }
void nd_tx_attach(nd_tx_t *tx, rpc_call_t *call) { tx->call = call; }
void nd_tx_set_peer_class(nd_tx_t *tx, nd_peer_class_t link) {
  tx->link = link < ND_PEER_CLASSES ? link : ND_PEER_UNKNOWN;
}

void nd_tx_set_peer_id(nd_tx_t *tx, const char *id) {
  tx->child = NULL;
  tx->child_other = false;
  if (!id || !id[0]) return;
  nd_plane_metrics_t *m = &tx->p->m;
  for (uint32_t i = 0; i < ND_CHILD_STALLS_MAX; i++) {
    nd_child_stall_t *c = &m->child[i];
    if (!atomic_load_explicit(&c->used, memory_order_relaxed)) { /* the first free: claimed */
      snprintf(c->id, sizeof(c->id), "%s", id);
      atomic_store_explicit(&c->used, true, memory_order_release);
      tx->child = c;
      return;
    }
    if (!strcmp(c->id, id)) {
      tx->child = c;
      return;
    }
  }
  tx->child_other = true; /* more children than slots: counted together */
}

/* The receiver's credit held the sends back since the last count: counted
 * for that child (from the metrics publish of the tick, and when the call
 * goes). */
void nd_tx_stall_count(nd_tx_t *tx) {
  if (!tx->call || (!tx->child && !tx->child_other)) return;
  uint64_t total = rpc_call_blocked_total_ns(tx->call, RPC_BLOCK_WINDOW);
  if (total <= tx->window_seen_ns) return;
  uint64_t d = total - tx->window_seen_ns;
  tx->window_seen_ns = total;
  fd_counter_add(tx->child ? &tx->child->blocked_ns : &tx->p->m.child_other_ns, d);
}

/* A wait for a pool buffer is over (or the stream is): its time is counted. */
static void pool_wait_end(nd_tx_t *tx) {
  if (!tx->pool_wait_since_ns) return;
  fd_counter_add(&tx->p->m.blocked_pool_ns, fd_now_ns() - tx->pool_wait_since_ns);
  tx->pool_wait_since_ns = 0;
}

nd_tx_t *nd_tx_new(nd_plane_t *p, const nd_tx_ops_t *ops, void *owner, rpc_call_t *call,
                   nd_ver_t *ver) {
  for (uint32_t i = 0; i < ND_TX_MAX; i++) {
    nd_tx_t *tx = &p->txs[i];
    if (tx->used || tx->reads_busy) continue; /* a slot is reused once its reads are back */
    size_t bytes = (ver->m->chunk_count + 7) / 8;
    uint8_t *want = realloc(tx->want, bytes ? bytes : 1); /* once per stream, never per chunk */
    if (!want) return NULL;
    memset(want, 0, bytes ? bytes : 1);
    *tx = (nd_tx_t){.used = true, .p = p, .ops = ops, .owner = owner, .call = call, .ver = ver,
                    .want = want};
    nd_ver_get(ver);
    return tx;
  }
  return NULL;
}

static void tx_release(nd_tx_t *tx) {
  nd_plane_t *p = tx->p;
  pool_wait_end(tx);
  while (tx->q_len) {
    nd_buf_unref(p, tx->q[tx->q_head].buf);
    tx->q_head = (tx->q_head + 1) % ND_TX_Q;
    tx->q_len--;
  }
  if (tx->ver) {
    nd_ver_put(tx->ver);
    tx->ver = NULL;
  }
  tx->used = false; /* the slot is reused once reads_busy drops to 0 */
}

void nd_tx_call_gone(nd_tx_t *tx) {
  nd_tx_stall_count(tx); /* the call is still there while its on_done runs */
  tx->call = NULL;
  tx_release(tx);
}

/* rpc_data_done_fn: the kernel no longer reads the buffer */
static void buf_sent(void *buf, void *arg) { nd_buf_unref(arg, buf); }

static void tx_push(nd_tx_t *tx, uint8_t *buf, uint32_t index, uint32_t len) {
  FD_ASSERT(tx->q_len < ND_TX_Q);
  tx->q[(tx->q_head + tx->q_len) % ND_TX_Q] = (nd_tx_item_t){buf, index, len, false};
  tx->q_len++;
}

static void read_queue(nd_tx_t *tx, nd_read_t *r) {
  nd_plane_t *p = tx->p;
  struct io_uring_sqe *sqe = fd_ring_sqe(p->ring, &r->op);
  uint64_t off = (uint64_t)r->index * tx->ver->m->chunk_size_bytes + r->got;
  uint32_t len = FD_ALIGN_UP(r->len, FD_DIRECT_ALIGN) - r->got;
  /* Fixed only where the engine registered the pool (it does not under a
   * locked-memory limit it would be charged to: rpc_engine_pool_registered). */
  if (rpc_engine_pool_registered(p->e))
    io_uring_prep_read_fixed(sqe, tx->ver->fd, r->buf + r->got, len, off,
                             (int)fd_pool_index(p->pool, r->buf));
  else
    io_uring_prep_read(sqe, tx->ver->fd, r->buf + r->got, len, off);
}

static void on_read(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  nd_read_t *r = (nd_read_t *)op;
  nd_tx_t *tx = r->tx;
  nd_plane_t *p = tx->p;
  if (res > 0) {
    r->got += (uint32_t)res;
    if (r->got < r->len && tx->used && tx->ver) { /* short read: the rest */
      read_queue(tx, r);
      return;
    }
  }
  r->busy = false;
  tx->reads_busy--;
  if (!tx->used || !tx->ver) {
    nd_buf_unref(p, r->buf);
    return;
  }
  if (r->got < r->len || fd_crc32c(0, r->buf, r->len) != tx->ver->m->chunk_crc32c[r->index]) {
    fd_log_error("%s v%" PRIu64 " chunk %u: local read failed (%s); not served", tx->ver->name,
                 tx->ver->version, r->index, res < 0 ? fd_strerror(res) : "bad CRC32C");
    nd_ver_chunk_bad(p, tx->ver, r->index); /* rot found by a reader: marked and reported */
    nd_buf_unref(p, r->buf);
    if (tx->call) tx->ops->fail(tx, RPC_DATA_LOSS, "bad local chunk");
    return;
  }
  tx_push(tx, r->buf, r->index, r->len);
  nd_tx_pump(tx);
}

static void read_start(nd_tx_t *tx, uint32_t i) {
  nd_plane_t *p = tx->p;
  uint8_t *buf = fd_pool_get(p->pool);
  FD_ASSERT(buf); /* nd_plane_may_hold said there is one */
  uint32_t idx = fd_pool_index(p->pool, buf);
  p->bufm[idx] = (nd_bufm_t){.refs = 1, .p = p, .idx = idx};
  want_clear(tx, i);
  tx->scan = i + 1;
  nd_read_t *r = NULL;
  for (uint32_t j = 0; j < ND_TX_READS && !r; j++)
    if (!tx->reads[j].busy) r = &tx->reads[j];
  FD_ASSERT(r);
  *r = (nd_read_t){.op.complete = on_read, .tx = tx, .buf = buf, .index = i,
                   .len = st_manifest_chunk_len(tx->ver->m, i), .busy = true};
  tx->reads_busy++;
  read_queue(tx, r);
}

void nd_tx_pump(nd_tx_t *tx) {
  nd_plane_t *p = tx->p;
  if (!tx->used || !tx->call || tx->ended) return;
  while (tx->q_len) {
    nd_tx_item_t *it = &tx->q[tx->q_head];
    int rc = 0;
    /* The upload cap: a chunk goes whole once the bucket is out of debt
     * (the tick and the next completions try again). */
    if (!it->hdr_sent && fd_rate_capped(p->upload) && !fd_rate_take(p->upload, it->len, fd_now_ns()))
      break;
    if (!it->hdr_sent) {
      Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
      h.index = it->index;
      h.length = it->len;
      h.crc32c = tx->ver->m->chunk_crc32c[it->index];
      rc = tx->ops->header(tx, &h);
      if (rc == 0) it->hdr_sent = true;
    }
    if (rc == 0) rc = rpc_call_send_data(tx->call, it->buf, it->len, buf_sent, p);
    if (rc == -EAGAIN) return; /* on_writable pumps again */
    if (rc < 0) {
      fd_log_warn("send to a peer failed: %s", fd_strerror(rc));
      return; /* the call's end releases the stream */
    }
    tx->tx_bytes += it->len;
    p->tx_bytes += it->len;
    fd_counter_add(&p->m.tx_bytes[tx->link], it->len);
    tx->q_head = (tx->q_head + 1) % ND_TX_Q; /* the buffer's ref went to the send */
    tx->q_len--;
  }
  const st_manifest_t *m = tx->ver->m;
  for (uint32_t k = 0; tx->want_count && tx->reads_busy < ND_TX_READS &&
                       tx->q_len + tx->reads_busy < ND_TX_Q && k < m->chunk_count;
       k++) {
    uint32_t i = (tx->scan + k) % m->chunk_count;
    if (!want_get(tx, i) || !nd_ver_has(p, tx->ver, i)) continue;
    if (!nd_plane_may_hold(p)) { /* the tick tries again */
      if (!tx->pool_wait_since_ns) tx->pool_wait_since_ns = fd_now_ns();
      break;
    }
    pool_wait_end(tx);
    read_start(tx, i);
  }
  if (!tx->want_count && !tx->q_len && !tx->reads_busy && tx->ops->end(tx) != -EAGAIN)
    tx->ended = true; /* else on_writable or the tick retries */
}

void nd_forward(nd_plane_t *p, nd_ver_t *v, uint32_t index, uint8_t *buf, uint32_t len) {
  for (uint32_t i = 0; i < ND_TX_MAX; i++) {
    nd_tx_t *tx = &p->txs[i];
    if (!tx->used || tx->ver != v || !tx->call || tx->ended || !want_get(tx, index)) continue;
    if (tx->q_len + tx->reads_busy >= ND_TX_Q) continue; /* slow child: from disk later */
    if (!nd_plane_may_hold(p)) continue;                 /* pool low: from disk later */
    want_clear(tx, index);
    nd_buf_ref(p, buf);
    tx_push(tx, buf, index, len);
    nd_tx_pump(tx);
  }
}

void nd_tx_tick(nd_plane_t *p) {
  for (uint32_t i = 0; i < ND_TX_MAX; i++)
    if (p->txs[i].used && !p->txs[i].ended) nd_tx_pump(&p->txs[i]);
}

void nd_tx_free_all(nd_plane_t *p) {
  for (uint32_t i = 0; i < ND_TX_MAX; i++) {
    free(p->txs[i].want);
    p->txs[i].want = NULL;
  }
}
