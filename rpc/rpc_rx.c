/* rpc_rx.c — receiving on a connection: multishot recv into the engine's
 * provided buffers feeds the frame parser; a DATA payload lands in a bulk
 * pool buffer, copied from what the multishot recv already took and the rest
 * received straight into it ("direct mode": plain recvs for headers and
 * payloads while bulk flows, back to multishot after a few control frames).
 * Every header is checked by rpc_frame_decode before anything acts on it. */
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

/* ---- receive ---- */

void rpc_conn_arm_recv(rpc_conn_t *c) {
  if (c->state == RPC_CONN_CLOSING || c->recv_armed || c->direct_armed) return;
  struct io_uring_sqe *sqe = fd_ring_sqe(&c->e->ring, &c->recv_op.op);
  FD_ASSERT(sqe);
  io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = RPC_BGID;
  c->recv_armed = true;
  c->recv_cancelled = false;
  c->rearm_wanted = false;
  c->ops++;
}

static int ensure_inbuf(rpc_conn_t *c, uint32_t len) {
  if (c->inbuf_cap >= len) return 0;
  /* A large control message (a manifest): joined in a bigger buffer,
   * bounded by payload_max; not the hot path. */
  uint8_t *nb = realloc(c->inbuf, len);
  if (!nb) return -ENOMEM;
  c->inbuf = nb;
  c->inbuf_cap = len;
  return 0;
}

/* Direct mode: after a DATA frame, plain recvs read each header, then its
 * payload straight into a bulk buffer (or inbuf); after a few control
 * frames in a row the connection goes back to multishot recv. */
static void next_direct(rpc_conn_t *c) {
  if (c->state == RPC_CONN_CLOSING) return;
  uint8_t *dst;
  uint32_t len;
  if (!c->in_payload) {
    if (c->direct_ctl > RPC_DIRECT_CTL_MAX) {
      c->direct = false;
      rpc_conn_arm_recv(c);
      return;
    }
    dst = c->hdr + c->hdr_have;
    len = RPC_FRAME_HEADER_LEN - c->hdr_have;
  } else if (c->cur.type == RPC_FRAME_DATA) {
    if (!c->data_buf) { /* discarding: multishot does it */
      c->direct = false;
      rpc_conn_arm_recv(c);
      return;
    }
    dst = c->data_buf + c->pay_have;
    len = c->cur.payload_len - c->pay_have;
  } else {
    if (ensure_inbuf(c, c->cur.payload_len) < 0) {
      rpc_conn_fail(c, -ENOMEM, "no memory for a large message");
      return;
    }
    dst = c->inbuf + c->pay_have;
    len = c->cur.payload_len - c->pay_have;
  }
  struct io_uring_sqe *sqe = fd_ring_sqe(&c->e->ring, &c->direct_op.op);
  FD_ASSERT(sqe);
  io_uring_prep_recv(sqe, c->fd, dst, len, 0);
  c->direct_armed = true;
  c->ops++;
}

static int dispatch(rpc_conn_t *c, const rpc_frame_header_t *h, const uint8_t *p, uint32_t len) {
  rpc_engine_t *e = c->e;
  int rc = 0;
  e->stats.frames_rx++;
  if (h->type == RPC_FRAME_GOAWAY) {
    Fdrpc__GoAway *ga = (Fdrpc__GoAway *)rpc_eng_unpack(e, &fdrpc__go_away__descriptor, p, len);
    fd_log_info("rpc: %s sent goaway: %s", c->name, ga && ga->message ? ga->message : "?");
    rc = ga && ga->code == RPC_UNAUTHENTICATED ? -EKEYREJECTED : -ECONNRESET;
    rpc_eng_arena_reset(e);
    rpc_conn_fail(c, rc, "peer sent goaway");
    return 0;
  }
  if (c->state == RPC_CONN_HANDSHAKE || h->type == RPC_FRAME_HANDSHAKE) {
    rc = rpc_hs_frame(c, h, p, len);
  } else if (h->type == RPC_FRAME_PING) {
    if (++c->pings_tick > RPC_PINGS_PER_TICK_MAX) {
      e->stats.floods++;
      rpc_conn_fail(c, -EPROTO, "ping flood");
      return 0;
    }
    if (!(h->flags & RPC_FLAG_ACK))
      rc = rpc_conn_queue(c, RPC_FRAME_PING, RPC_FLAG_ACK, 0, 0, p, len, NULL, true);
  } else {
    rc = rpc_call_frame(c, h, p, len);
  }
  rpc_eng_arena_reset(e);
  return rc;
}

static int frame_done(rpc_conn_t *c, const uint8_t *p) {
  c->in_payload = false;
  c->hdr_have = 0;
  c->direct_ctl = c->cur.type == RPC_FRAME_DATA ? 0 : c->direct_ctl + 1;
  if (c->cur.type == RPC_FRAME_DATA) {
    uint8_t *buf = c->data_buf;
    c->data_buf = NULL;
    rpc_call_data_end(c, c->cur.stream_id, buf, c->cur.payload_len, c->cur.flags & RPC_FLAG_END);
    return 0;
  }
  return dispatch(c, &c->cur, p, c->cur.payload_len);
}

static int header_done(rpc_conn_t *c, const uint8_t *hdr) {
  rpc_engine_t *e = c->e;
  int rc = rpc_frame_decode(hdr, RPC_FRAME_HEADER_LEN, e->payload_max, &c->cur);
  if (rc < 0) {
    e->stats.protocol_errors++;
    rpc_conn_fail(c, rc, rc == -EMSGSIZE ? "frame over the payload limit" : "malformed frame");
    return rc;
  }
  if (c->state != RPC_CONN_READY) {
    /* Before the peer is authenticated: only small handshake frames, so an
     * unauthenticated peer cannot make us buffer anything large. */
    if ((c->cur.type != RPC_FRAME_HANDSHAKE && c->cur.type != RPC_FRAME_GOAWAY) ||
        c->cur.payload_len > RPC_HANDSHAKE_PAYLOAD_MAX) {
      e->stats.auth_failures++;
      rpc_conn_fail(c, -EACCES, "frame before the handshake finished");
      return -EACCES;
    }
  }
  c->in_payload = true;
  c->pay_have = 0;
  if (c->cur.type == RPC_FRAME_DATA) {
    e->stats.data_frames_rx++;
    if (c->state != RPC_CONN_READY) {
      e->stats.protocol_errors++;
      rpc_conn_fail(c, -EACCES, "data before the handshake");
      return -EACCES;
    }
    rpc_call_t *call = NULL;
    rc = rpc_call_data_begin(c, &c->cur, &call);
    if (rc < 0) return rc; /* the conn is failed already */
  }
  if (c->cur.payload_len == 0) return frame_done(c, NULL);
  return 0;
}

/* Feeds received bytes to the parser. */
static void feed(rpc_conn_t *c, const uint8_t *p, uint32_t n) {
  while (n > 0 && c->state != RPC_CONN_CLOSING) {
    if (!c->in_payload) {
      if (c->hdr_have == 0 && n >= RPC_FRAME_HEADER_LEN) {
        if (header_done(c, p) < 0) return;
        p += RPC_FRAME_HEADER_LEN;
        n -= RPC_FRAME_HEADER_LEN;
        continue;
      }
      uint32_t take = FD_MIN(RPC_FRAME_HEADER_LEN - c->hdr_have, n);
      memcpy(c->hdr + c->hdr_have, p, take);
      c->hdr_have += take;
      p += take;
      n -= take;
      if (c->hdr_have == RPC_FRAME_HEADER_LEN && header_done(c, c->hdr) < 0) return;
      continue;
    }
    uint32_t need = c->cur.payload_len - c->pay_have;
    uint32_t take = FD_MIN(need, n);
    if (c->cur.type == RPC_FRAME_DATA) {
      if (c->data_buf) {
        memcpy(c->data_buf + c->pay_have, p, take);
        c->e->stats.rx_copied_bytes += take;
      }
      c->pay_have += take;
      p += take;
      n -= take;
      if (c->pay_have == c->cur.payload_len) {
        frame_done(c, NULL);
      } else if (c->data_buf && need - take >= RPC_DIRECT_RECV_MIN && c->recv_armed &&
                 !c->recv_cancelled) {
        /* Stop the multishot recv; the tail lands straight in data_buf. */
        struct io_uring_sqe *sqe = fd_ring_sqe(&c->e->ring, NULL);
        FD_ASSERT(sqe);
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&c->recv_op, 0);
        c->recv_cancelled = true;
      }
      continue;
    }
    if (c->pay_have == 0 && take == need) { /* whole payload here: no copy */
      if (frame_done(c, p) < 0 && c->state != RPC_CONN_CLOSING)
        rpc_conn_fail(c, -EPROTO, "bad frame");
      p += take;
      n -= take;
      continue;
    }
    if (ensure_inbuf(c, c->cur.payload_len) < 0) {
      rpc_conn_fail(c, -ENOMEM, "no memory for a large message");
      return;
    }
    memcpy(c->inbuf + c->pay_have, p, take);
    c->pay_have += take;
    p += take;
    n -= take;
    if (c->pay_have == c->cur.payload_len && frame_done(c, c->inbuf) < 0 &&
        c->state != RPC_CONN_CLOSING)
      rpc_conn_fail(c, -EPROTO, "bad frame");
  }
}

static void after_recv_stopped(rpc_conn_t *c) {
  if (c->state == RPC_CONN_CLOSING) return;
  /* Cancelled for a DATA frame: continue in direct mode, even when that frame
   * was completed from what the multishot recv had already taken. */
  if (c->recv_cancelled ||
      (c->in_payload && c->cur.type == RPC_FRAME_DATA && c->data_buf &&
       c->pay_have < c->cur.payload_len)) {
    c->direct = true;
    c->direct_ctl = 0;
    next_direct(c);
  } else {
    rpc_conn_arm_recv(c);
  }
}

void rpc_rx_on_recv(fd_op_t *op, int res, uint32_t flags) {
  rpc_conn_t *c = CONN_OF(op);
  rpc_engine_t *e = c->e;
  if (flags & IORING_CQE_F_BUFFER) {
    uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
    if (res > 0 && c->state != RPC_CONN_CLOSING) {
      c->last_rx_ns = fd_now_ns();
      e->stats.bytes_rx += (uint64_t)res;
      feed(c, rpc_eng_rx_buf(e, bid), (uint32_t)res);
    }
    rpc_eng_recycle_rx(e, bid);
  }
  if (!(flags & IORING_CQE_F_MORE)) {
    c->recv_armed = false;
    if (c->state != RPC_CONN_CLOSING) {
      if (res == 0) {
        rpc_conn_fail(c, -ECONNRESET, "peer closed the connection");
      } else if (res == -ENOBUFS) {
        c->rearm_wanted = true; /* buffers come back as others are parsed */
        c->e->rearm_pending++;
        c->e->stats.rx_nobufs++;
      } else if (res < 0 && res != -ECANCELED) {
        rpc_conn_fail(c, res, "recv failed");
      } else {
        after_recv_stopped(c);
      }
    }
    rpc_conn_op_done(c);
  }
}

void rpc_rx_on_direct(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  rpc_conn_t *c = CONN_OF(op);
  c->direct_armed = false;
  if (c->state != RPC_CONN_CLOSING) {
    if (res <= 0) {
      rpc_conn_fail(c, res ? res : -ECONNRESET,
                    c->in_payload || c->hdr_have ? "peer gone mid-frame"
                                                 : "peer closed the connection");
    } else {
      c->last_rx_ns = fd_now_ns();
      c->e->stats.bytes_rx += (uint64_t)res;
      if (!c->in_payload) {
        c->hdr_have += (uint32_t)res;
        if (c->hdr_have == RPC_FRAME_HEADER_LEN) header_done(c, c->hdr);
      } else {
        c->pay_have += (uint32_t)res;
        if (c->pay_have == c->cur.payload_len &&
            frame_done(c, c->cur.type == RPC_FRAME_DATA ? NULL : c->inbuf) < 0 &&
            c->state != RPC_CONN_CLOSING)
          rpc_conn_fail(c, -EPROTO, "bad frame");
      }
      next_direct(c);
    }
  }
  rpc_conn_op_done(c);
}
