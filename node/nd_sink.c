/*
 * nd_sink.c — the receive sink and the pool buffers' reference counts.
 *
 * One sink per receiving call (a stripe download, a publish, a replicate, a
 * repair pull; the same code for each): a ChunkHeader names the chunk, the
 * next DATA frame is its bytes, in a pool buffer the rpc engine landed them
 * in. Storage verifies the chunk (CRC32C, then SHA-256 against the signed
 * manifest) before it queues the write; only then is the chunk forwarded to
 * the children that want it, from the very buffer (nd_forward). The call's
 * credit for the frame goes back once storage is done with the chunk
 * (written and fdatasync'd), so a peer within its window never finds the
 * pool empty. A chunk that finds no storage slot waits in the plane's
 * backlog, in arrival order.
 *
 * A buffer is free once every holder let go: the sink until storage is
 * done, each send to a child until the kernel no longer reads it.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fd_error.h"
#include "nd_plane_int.h"

void nd_buf_ref(nd_plane_t *p, void *buf) { p->bufm[fd_pool_index(p->pool, buf)].refs++; }

void nd_buf_unref(nd_plane_t *p, void *buf) {
  nd_bufm_t *b = &p->bufm[fd_pool_index(p->pool, buf)];
  FD_ASSERT(b->refs > 0);
  if (--b->refs == 0) {
    b->sink = NULL;
    fd_pool_put(p->pool, buf);
  }
}

/* The call's credit for len bytes stored: now, or once the download cap's
 * bucket is out of debt (nd_credit_run, from the tick). Every frame is
 * charged as it lands (nd_sink_data), the first windows included, so the
 * debt they leave is repaid before more credit goes out and the long-run
 * rate is the cap. Held-back credit is what slows the sender: it cannot
 * send past its window. */
static void credit(nd_plane_t *p, nd_sink_t *s, uint32_t len) {
  if (!s->owing && (!fd_rate_capped(p->download) || fd_rate_ready(p->download, fd_now_ns()))) {
    rpc_call_data_done(s->call, len);
    return;
  }
  s->owed += len;
  if (s->owing) return;
  s->owing = true;
  s->owing_next = NULL;
  if (p->owing_tail) p->owing_tail->owing_next = s;
  else p->owing_head = s;
  p->owing_tail = s;
}

static void owing_unlink(nd_plane_t *p, nd_sink_t *s) {
  nd_sink_t **pp = &p->owing_head, *prev = NULL;
  while (*pp && *pp != s) {
    prev = *pp;
    pp = &(*pp)->owing_next;
  }
  if (!*pp) return;
  *pp = s->owing_next;
  if (p->owing_tail == s) p->owing_tail = prev;
  s->owing = false;
  s->owed = 0;
}

void nd_credit_run(nd_plane_t *p) {
  if (!p->owing_head) return;
  uint64_t now = fd_now_ns();
  while (p->owing_head && fd_rate_ready(p->download, now)) {
    nd_sink_t *s = p->owing_head;
    uint32_t owed = s->owed;
    owing_unlink(p, s);
    if (s->call) rpc_call_data_done(s->call, owed);
  }
}

static void put_finish(nd_plane_t *p, nd_bufm_t *b, void *buf, int res) {
  nd_sink_t *s = b->sink;
  nd_ver_t *v = b->ver;
  uint32_t index = b->chunk;
  s->puts--;
  if (res == 0) {
    s->rx_bytes += b->len;
    p->rx_bytes += b->len;
    fd_counter_add(&p->m.rx_bytes[s->link < ND_PEER_CLASSES ? s->link : ND_PEER_UNKNOWN], b->len);
    fd_counter_add(&p->m.chunks_verified, 1);
    if (p->hooks.chunk_durable) p->hooks.chunk_durable(p->hooks.arg, v, index);
  } else if (res != -EALREADY) {
    if (res == -EBADMSG) fd_counter_add(&p->m.chunks_rejected, 1);
    fd_log_warn("chunk %u of %s v%" PRIu64 " not %s: %s", index, v->name, v->version,
                s->repair ? "repaired" : "stored", fd_strerror(res));
    if (!s->err) s->err = res;
  }
  if (s->call && s->gen == b->gen) {
    /* How long the chunk held its sender's credit, by stage (stored ones). */
    if (res == 0 && b->written_ns) {
      uint64_t now = fd_now_ns();
      fd_counter_add(&p->m.credit_write_ns, b->written_ns - b->arrived_ns);
      fd_counter_add(&p->m.credit_sync_ns, now - b->written_ns);
    }
    credit(p, s, b->len);
  }
  b->ver = NULL;
  nd_ver_put(v);
  nd_buf_unref(p, buf);
  if (s->on_chunk) s->on_chunk(s->owner, s, index, res);
}

/* st_chunk_put_written: the chunk's write is over, its fdatasync to come. */
static void on_written(void *arg, int res) {
  (void)res;
  ((nd_bufm_t *)arg)->written_ns = fd_now_ns();
}

static void on_put(void *arg, int res) {
  nd_bufm_t *b = arg;
  put_finish(b->p, b, fd_pool_buf(b->p->pool, b->idx), res);
}

/* 0 queued (or finished with an error), -EAGAIN: no storage slot yet. */
static int put_try(nd_plane_t *p, void *buf) {
  nd_bufm_t *b = &p->bufm[fd_pool_index(p->pool, buf)];
  nd_sink_t *s = b->sink;
  int rc = s->repair ? st_chunk_repair(b->ver->sv, b->chunk, buf, b->len, on_put, b)
                     : st_chunk_put_written(b->ver->sv, b->chunk, buf, b->len, on_written, on_put, b);
  if (rc == 0) {
    if (s->forward) nd_forward(p, b->ver, b->chunk, buf, b->len);
    return 0;
  }
  if (rc == -EAGAIN) return rc;
  /* already there: a chunk of a version completed meanwhile, or one a repair
   * of its own is rewriting */
  if (rc == -EINPROGRESS || (!s->repair && rc == -EINVAL && b->ver->complete)) rc = -EALREADY;
  put_finish(p, b, buf, rc);
  return 0;
}

void nd_backlog_run(nd_plane_t *p) {
  uint32_t done = 0;
  while (done < p->backlog_n && put_try(p, fd_pool_buf(p->pool, p->backlog[done])) == 0) done++;
  if (!done) return;
  memmove(p->backlog, p->backlog + done, (p->backlog_n - done) * sizeof(*p->backlog));
  p->backlog_n -= done;
}

void nd_sink_init(nd_sink_t *s, nd_plane_t *p, nd_sink_chunk_fn on_chunk, void *owner) {
  memset(s, 0, sizeof(*s));
  s->p = p;
  s->on_chunk = on_chunk;
  s->owner = owner;
}

void nd_sink_reset(nd_sink_t *s) {
  FD_ASSERT(!s->call);
  uint32_t puts = s->puts, gen = s->gen;
  nd_sink_init(s, s->p, s->on_chunk, s->owner);
  s->puts = puts;
  s->gen = gen + 1;
}

void nd_sink_start(nd_sink_t *s, rpc_call_t *call) {
  if (!s->call) s->p->rx_sinks++;
  s->call = call;
  s->has_hdr = false;
  s->err = 0;
}

void nd_sink_end(nd_sink_t *s) {
  if (s->owing) owing_unlink(s->p, s); /* the call's credit died with it */
  if (s->call) s->p->rx_sinks--;
  s->call = NULL;
  s->gen++;
  s->has_hdr = false;
}

void nd_sink_header(nd_sink_t *s, const Node__ChunkHeader *h) {
  s->has_hdr = true;
  s->hdr_index = (uint32_t)FD_MIN(h->index, UINT32_MAX);
  s->hdr_len = h->length;
}

void nd_sink_data(nd_sink_t *s, rpc_call_t *call, void *buf, uint32_t len) {
  nd_plane_t *p = s->p;
  if (!s->has_hdr || !s->ver || len != s->hdr_len || s->hdr_index >= s->ver->m->chunk_count) {
    fd_log_warn("data frame without a matching chunk header: dropped");
    fd_pool_put(p->pool, buf);
    if (call) rpc_call_data_done(call, len);
    if (!s->err) s->err = -EPROTO;
    return;
  }
  s->has_hdr = false;
  if (fd_rate_capped(p->download)) /* the download cap (credit()) */
    fd_rate_charge(p->download, len, fd_now_ns());
  uint32_t idx = fd_pool_index(p->pool, buf);
  nd_ver_get(s->ver);
  p->bufm[idx] = (nd_bufm_t){.refs = 1, .p = p, .idx = idx, .sink = s, .ver = s->ver,
                             .gen = s->gen, .chunk = s->hdr_index, .len = len,
                             .arrived_ns = fd_now_ns()};
  s->puts++;
  if (p->backlog_n == 0 && put_try(p, buf) == 0) return;
  p->backlog[p->backlog_n++] = idx;
}

bool nd_plane_may_hold(const nd_plane_t *p) {
  uint32_t reserve = FD_MAX(ND_POOL_RESERVE, p->rx_sinks * p->window_chunks + 2);
  return fd_pool_available(p->pool) > reserve;
}

bool nd_plane_may_receive(const nd_plane_t *p) {
  return (p->rx_sinks + 1) * p->window_chunks + ND_POOL_RESERVE <= fd_pool_count(p->pool);
}
