/*
 * nd_sink.c — the receive sink and the pool buffers' reference counts.
 *
 * One sink per receiving call (a stripe download, a publish, a replicate, a
 * repair pull; the same code for each): a ChunkHeader names the chunk, the
 * next DATA frame is its bytes, in a pool buffer the rpc engine landed them
 * in. Storage verifies the chunk (CRC32C, then SHA-256 against the signed
 * manifest) before it queues the write; only then is the chunk forwarded to
 * the children that want it, from the very buffer (nd_forward). The call's
 * credit for the frame goes back, with the sink's hold on the buffer, once
 * the chunk's O_DIRECT write is over (st_chunk_put_written), so a peer
 * within its window never finds the pool empty and never waits for our
 * fdatasync; the chunk counts as held (its bit, the serving engines, the
 * owner's on_chunk) only once that fdatasync made it durable. A repair's
 * rewrite keeps buffer and credit until it is durable. A chunk that finds
 * no storage slot waits in the plane's backlog, in arrival order.
 *
 * A buffer is free once every holder let go: the put until its chunk is
 * written, each send to a child until the kernel no longer reads it.
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
  if (--b->refs == 0) fd_pool_put(p->pool, buf);
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

static nd_put_t *put_take(nd_plane_t *p) {
  nd_put_t *put = p->put_free;
  FD_ASSERT(put); /* two per pool buffer: see nd_put_t */
  p->put_free = put->next_free;
  return put;
}

static void put_free(nd_plane_t *p, nd_put_t *put) {
  put->next_free = p->put_free;
  p->put_free = put;
}

/* The sender's credit for the chunk goes back (once): at its write for a
 * chunk written to a version being received, else when storage is done. */
static void put_credit(nd_plane_t *p, nd_put_t *put, uint64_t now) {
  nd_sink_t *s = put->sink;
  if (put->credited) return;
  put->credited = true;
  if (!s->call || s->gen != put->gen) return; /* the call ended: its credit with it */
  if (put->written_ns) {
    fd_counter_add(&p->m.credit_write_ns, put->written_ns - put->arrived_ns);
    fd_counter_add(&p->m.credit_sync_ns, now - put->written_ns); /* 0 when credited at the write */
  }
  credit(p, s, put->len);
}

static void put_finish(nd_plane_t *p, nd_put_t *put, int res) {
  nd_sink_t *s = put->sink;
  nd_ver_t *v = put->ver;
  uint32_t index = put->chunk;
  s->puts--;
  if (res == 0) {
    s->rx_bytes += put->len;
    p->rx_bytes += put->len;
    fd_counter_add(&p->m.rx_bytes[s->link < ND_PEER_CLASSES ? s->link : ND_PEER_UNKNOWN], put->len);
    fd_counter_add(&p->m.chunks_verified, 1);
    if (p->hooks.chunk_durable) p->hooks.chunk_durable(p->hooks.arg, v, index);
  } else if (res != -EALREADY) {
    if (res == -EBADMSG) fd_counter_add(&p->m.chunks_rejected, 1);
    fd_log_warn("chunk %u of %s v%" PRIu64 " not %s: %s", index, v->name, v->version,
                s->repair ? "repaired" : "stored", fd_strerror(res));
    if (!s->err) s->err = res;
  }
  put_credit(p, put, fd_now_ns()); /* unless it went back at the write */
  nd_ver_put(v);
  if (put->buf) nd_buf_unref(p, put->buf);
  put_free(p, put);
  if (s->on_chunk) s->on_chunk(s->owner, s, index, res);
}

/* st_chunk_put_written: the chunk is written, its fdatasync to come. The
 * buffer is ours again and goes back to the pool (children still sending
 * from it keep their references), and so does the sender's credit: the
 * sender may fill the window again while the fdatasync runs. Nothing here
 * says the chunk is held: that (the bitmap, the serving engines, the
 * heartbeat's count, a complete version) waits for on_put. */
static void on_written(void *arg, int res) {
  (void)res;
  nd_put_t *put = arg;
  nd_plane_t *p = put->p;
  put->written_ns = fd_now_ns();
  nd_buf_unref(p, put->buf);
  put->buf = NULL;
  put_credit(p, put, put->written_ns);
}

static void on_put(void *arg, int res) {
  nd_put_t *put = arg;
  put_finish(put->p, put, res);
}

/* 0 queued (or finished with an error), -EAGAIN: no storage slot yet. */
static int put_try(nd_plane_t *p, nd_put_t *put) {
  nd_sink_t *s = put->sink;
  int rc = s->repair ? st_chunk_repair(put->ver->sv, put->chunk, put->buf, put->len, on_put, put)
                     : st_chunk_put_written(put->ver->sv, put->chunk, put->buf, put->len,
                                            on_written, on_put, put);
  if (rc == 0) {
    /* (on_written has not run: storage completes nothing inside a call) */
    if (s->forward) nd_forward(p, put->ver, put->chunk, put->buf, put->len);
    return 0;
  }
  if (rc == -EAGAIN) return rc;
  /* already there: a chunk of a version completed meanwhile, or one a repair
   * of its own is rewriting */
  if (rc == -EINPROGRESS || (!s->repair && rc == -EINVAL && put->ver->complete)) rc = -EALREADY;
  put_finish(p, put, rc);
  return 0;
}

void nd_backlog_run(nd_plane_t *p) {
  uint32_t done = 0;
  while (done < p->backlog_n && put_try(p, p->backlog[done]) == 0) done++;
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
  p->bufm[idx] = (nd_bufm_t){.refs = 1, .p = p, .idx = idx};
  nd_ver_get(s->ver);
  nd_put_t *put = put_take(p);
  *put = (nd_put_t){.p = p, .sink = s, .ver = s->ver, .buf = buf, .gen = s->gen,
                    .chunk = s->hdr_index, .len = len, .arrived_ns = fd_now_ns()};
  s->puts++;
  if (p->backlog_n == 0 && put_try(p, put) == 0) return;
  p->backlog[p->backlog_n++] = put;
}

bool nd_plane_may_hold(const nd_plane_t *p) {
  uint32_t reserve = FD_MAX(ND_POOL_RESERVE, p->rx_sinks * p->window_chunks + 2);
  return fd_pool_available(p->pool) > reserve;
}

bool nd_plane_may_receive(const nd_plane_t *p) {
  return (p->rx_sinks + 1) * p->window_chunks + ND_POOL_RESERVE <= fd_pool_count(p->pool);
}
