/* rpc_tx.c — sending on a connection: control frames are packed into a
 * bounded per-connection buffer (large messages are packed aside), DATA
 * buffers are sent from where they lie (SEND_ZC or plain SEND, never a
 * userspace copy) in stream order behind their headers; one send in flight
 * per connection, short sends resumed. Also the connection-level credit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc_int.h"

void rpc_conn_mark_dirty(rpc_conn_t *c) {
  if (c->dirty_queued) return;
  c->dirty_queued = true;
  c->dirty_next = c->e->dirty;
  c->e->dirty = c;
}

static void release_bulk(rpc_conn_t *c, rpc_bulk_t *b) {
  b->done = true;
  if (b->done_fn) b->done_fn((void *)b->buf, b->done_arg);
  b->done_fn = NULL;
  while (c->bulk_head < c->bulk_send && c->bulk[c->bulk_head % RPC_BULK_SENDS_MAX].done)
    c->bulk_head++;
}

/* ---- send ---- */

static void compact(rpc_conn_t *c) {
  if (c->sending || c->out_head == 0) return;
  memmove(c->out, c->out + c->out_head, c->out_tail - c->out_head);
  c->out_base += c->out_head;
  c->out_tail -= c->out_head;
  c->out_head = 0;
}

bool rpc_conn_can_queue(const rpc_conn_t *c, uint32_t bytes) {
  uint32_t used = c->sending ? c->out_tail : c->out_tail - c->out_head;
  return used + bytes + RPC_OUT_RESERVE <= RPC_OUTBUF_BYTES &&
         c->bulk_tail - c->bulk_head < RPC_BULK_SENDS_MAX;
}

static int reserve_out(rpc_conn_t *c, uint32_t need, bool reserve) {
  uint32_t limit = RPC_OUTBUF_BYTES - (reserve ? 0 : RPC_OUT_RESERVE);
  if (c->out_tail + need > limit) compact(c);
  if (c->out_tail + need > limit) return -EAGAIN;
  return 0;
}

static void free_large(void *buf, void *arg) {
  (void)arg;
  free(buf);
}

static int push_bulk(rpc_conn_t *c, const void *buf, uint32_t len, rpc_data_done_fn done,
                     void *arg) {
  rpc_bulk_t *b = &c->bulk[c->bulk_tail % RPC_BULK_SENDS_MAX];
  rpc_engine_t *e = c->e;
  b->pos = c->out_base + c->out_tail;
  b->buf = buf;
  b->len = len;
  b->sent = 0;
  b->notifs = 0;
  b->submitted = false;
  b->done = false;
  b->done_fn = done;
  b->done_arg = arg;
  b->fixed = false;
  if (e->pool_registered) {
    const struct iovec *iov = fd_pool_iovecs(e->pool);
    const uint8_t *lo = iov[0].iov_base;
    const uint8_t *hi = lo + fd_pool_buf_size(e->pool) * fd_pool_count(e->pool);
    b->fixed = (const uint8_t *)buf >= lo && (const uint8_t *)buf + len <= hi;
  }
  c->bulk_tail++;
  rpc_conn_mark_dirty(c);
  return 0;
}

int rpc_conn_queue(rpc_conn_t *c, uint8_t type, uint16_t flags, uint32_t stream_id,
                   uint32_t method_id, const void *prefix, uint32_t prefix_len,
                   const ProtobufCMessage *msg, bool reserve) {
  if (c->state == RPC_CONN_CLOSING || c->state == RPC_CONN_FREE || c->state == RPC_CONN_CONNECTING)
    return -ENOTCONN;
  size_t msg_len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
  if (msg_len + prefix_len > c->e->payload_max) return -EMSGSIZE;
  uint32_t payload = (uint32_t)msg_len + prefix_len;
  rpc_frame_header_t h = {RPC_VERSION, type, flags, stream_id, method_id, payload};
  if (RPC_FRAME_HEADER_LEN + payload > RPC_LARGE_MSG) {
    /* Packed aside and sent from where it lies, like a DATA buffer. */
    if (c->bulk_tail - c->bulk_head >= RPC_BULK_SENDS_MAX) return -EAGAIN;
    int rc = reserve_out(c, RPC_FRAME_HEADER_LEN, reserve);
    if (rc < 0) return rc;
    uint8_t *big = malloc(payload);
    if (!big) return -ENOMEM;
    if (prefix_len) memcpy(big, prefix, prefix_len);
    if (msg) protobuf_c_message_pack(msg, big + prefix_len);
    rpc_frame_encode(&h, c->out + c->out_tail);
    c->out_tail += RPC_FRAME_HEADER_LEN;
    c->e->stats.frames_tx++;
    return push_bulk(c, big, payload, free_large, NULL);
  }
  int rc = reserve_out(c, RPC_FRAME_HEADER_LEN + payload, reserve);
  if (rc < 0) return rc;
  uint8_t *o = c->out + c->out_tail;
  rpc_frame_encode(&h, o);
  if (prefix_len) memcpy(o + RPC_FRAME_HEADER_LEN, prefix, prefix_len);
  if (msg) protobuf_c_message_pack(msg, o + RPC_FRAME_HEADER_LEN + prefix_len);
  c->out_tail += RPC_FRAME_HEADER_LEN + payload;
  c->e->stats.frames_tx++;
  rpc_conn_mark_dirty(c);
  return 0;
}

int rpc_conn_queue_bulk(rpc_conn_t *c, uint32_t stream_id, const void *buf, uint32_t len,
                        rpc_data_done_fn done, void *done_arg) {
  if (c->state != RPC_CONN_READY) return -ENOTCONN;
  if (c->bulk_tail - c->bulk_head >= RPC_BULK_SENDS_MAX) return -EAGAIN;
  int rc = reserve_out(c, RPC_FRAME_HEADER_LEN, false);
  if (rc < 0) return rc;
  rpc_frame_header_t h = {RPC_VERSION, RPC_FRAME_DATA, 0, stream_id, 0, len};
  rpc_frame_encode(&h, c->out + c->out_tail);
  c->out_tail += RPC_FRAME_HEADER_LEN;
  c->e->stats.frames_tx++;
  c->e->stats.data_frames_tx++;
  return push_bulk(c, buf, len, done, done_arg);
}

void rpc_conn_flush(rpc_conn_t *c) {
  if (c->sending || c->state == RPC_CONN_CLOSING || c->state == RPC_CONN_FREE ||
      c->state == RPC_CONN_CONNECTING)
    return;
  rpc_engine_t *e = c->e;
  rpc_bulk_t *b = c->bulk_send < c->bulk_tail ? &c->bulk[c->bulk_send % RPC_BULK_SENDS_MAX] : NULL;
  uint64_t head_abs = c->out_base + c->out_head;
  if (b && b->pos == head_abs) {
    struct io_uring_sqe *sqe = fd_ring_sqe(&e->ring, &b->op);
    FD_ASSERT(sqe);
    const uint8_t *p = b->buf + b->sent;
    uint32_t n = b->len - b->sent;
    if (!c->bulk_zc) {
      io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL);
    } else if (b->fixed) {
      const uint8_t *lo = fd_pool_iovecs(e->pool)[0].iov_base;
      unsigned idx = (unsigned)((size_t)(p - lo) / fd_pool_buf_size(e->pool));
      io_uring_prep_send_zc_fixed(sqe, c->fd, p, n, MSG_NOSIGNAL, 0, idx);
    } else {
      io_uring_prep_send_zc(sqe, c->fd, p, n, MSG_NOSIGNAL, 0);
    }
    b->submitted = true;
    c->sending = true;
    c->ops++;
    return;
  }
  if (c->out_head == c->out_tail) return;
  uint32_t end = c->out_tail;
  if (b) end = (uint32_t)FD_MIN((uint64_t)end, b->pos - c->out_base);
  struct io_uring_sqe *sqe = fd_ring_sqe(&e->ring, &c->send_op.op);
  FD_ASSERT(sqe);
  io_uring_prep_send(sqe, c->fd, c->out + c->out_head, end - c->out_head, MSG_NOSIGNAL);
  c->sending = true;
  c->ops++;
}

void rpc_conn_flush_dirty(rpc_engine_t *e) {
  while (e->dirty) {
    rpc_conn_t *c = e->dirty;
    e->dirty = c->dirty_next;
    c->dirty_queued = false;
    rpc_conn_flush(c);
  }
}

static void after_send(rpc_conn_t *c) {
  if (c->state != RPC_CONN_READY && c->state != RPC_CONN_HANDSHAKE) return;
  rpc_conn_mark_dirty(c);
  if (c->state == RPC_CONN_READY) rpc_call_writable(c);
}

void rpc_tx_on_send(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  rpc_conn_t *c = CONN_OF(op);
  c->sending = false;
  if (c->state != RPC_CONN_CLOSING) {
    if (res < 0) {
      rpc_conn_fail(c, res, "send failed");
    } else {
      c->e->stats.bytes_tx += (uint64_t)res;
      c->out_head += (uint32_t)res;
      if (c->out_head == c->out_tail) {
        c->out_base += c->out_tail;
        c->out_head = c->out_tail = 0;
      }
      after_send(c);
    }
  }
  rpc_conn_op_done(c);
}

void rpc_tx_on_bulk(fd_op_t *op, int res, uint32_t flags) {
  rpc_bulk_t *b = (rpc_bulk_t *)op;
  rpc_conn_t *c = b->conn;
  if (flags & IORING_CQE_F_NOTIF) {
    FD_ASSERT(b->notifs > 0);
    b->notifs--;
    if (b->notifs == 0 && !b->submitted && b->sent == b->len && !b->done) release_bulk(c, b);
    rpc_conn_op_done(c);
    return;
  }
  c->sending = false;
  b->submitted = false;
  if (flags & IORING_CQE_F_MORE) b->notifs++; /* its notification is still due */
  if (c->state != RPC_CONN_CLOSING) {
    if (res == -ENOMEM && c->bulk_zc) {
      /* Zero-copy pins the pages it sends, charged to RLIMIT_MEMLOCK unless
       * the process has CAP_IPC_LOCK (an ordinary user has 8 MiB in all):
       * over it, this connection's DATA goes out copied, from b->sent on. */
      fd_log_warn("rpc: %s: zero-copy send over the locked-memory limit (ulimit -l): "
                  "plain sends from now on",
                  c->name);
      c->bulk_zc = false;
      after_send(c);
    } else if (res < 0) {
      rpc_conn_fail(c, res, "bulk send failed");
    } else {
      c->e->stats.bytes_tx += (uint64_t)res;
      b->sent += (uint32_t)res;
      if (b->sent == b->len) {
        c->bulk_send++;
        if (b->notifs == 0) release_bulk(c, b);
      }
      after_send(c);
    }
  }
  if (!(flags & IORING_CQE_F_MORE)) rpc_conn_op_done(c);
}

void rpc_conn_window_consumed(rpc_conn_t *c, uint64_t bytes) {
  c->rx_consumed += bytes;
  if (c->state != RPC_CONN_READY || c->rx_consumed == 0) return;
  /* Credit goes back in batches of a quarter window, and at each tick. */
  if (bytes && c->rx_consumed < c->e->conn_window / 4) return;
  uint8_t b[4];
  uint32_t n = (uint32_t)FD_MIN(c->rx_consumed, (uint64_t)UINT32_MAX);
  b[0] = (uint8_t)n;
  b[1] = (uint8_t)(n >> 8);
  b[2] = (uint8_t)(n >> 16);
  b[3] = (uint8_t)(n >> 24);
  if (rpc_conn_queue(c, RPC_FRAME_WINDOW, 0, 0, 0, b, 4, NULL, true) == 0) {
    c->rx_consumed -= n;
    c->rx_unacked -= n;
  }
}
