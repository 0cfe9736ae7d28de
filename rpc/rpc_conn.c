/* rpc_conn.c — one TCP connection: multishot accept, connect, multishot recv
 * into provided buffers with the frame parser, DATA payloads landed in bulk
 * pool buffers (copied from what the multishot recv already took, the rest
 * received directly), the send queue (control bytes, then bulk buffers sent
 * zero-copy), stall checks and closing. A conn's slot is reused only after
 * every operation naming it has completed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc_int.h"

#define CONN_OF(op) (((rpc_conn_op_t *)(op))->conn)

static void op_done(rpc_conn_t *c) {
  FD_ASSERT(c->ops > 0);
  c->ops--;
  if (c->state == RPC_CONN_CLOSING && c->ops == 0 && !c->finalize_queued) {
    c->finalize_queued = true;
    c->reap_next = c->e->reap;
    c->e->reap = c;
  }
}

static void mark_dirty(rpc_conn_t *c) {
  if (c->dirty_queued) return;
  c->dirty_queued = true;
  c->dirty_next = c->e->dirty;
  c->e->dirty = c;
}

/* ---- open, close ---- */

static void on_recv(fd_op_t *op, int res, uint32_t flags);
static void on_direct(fd_op_t *op, int res, uint32_t flags);
static void on_send(fd_op_t *op, int res, uint32_t flags);
static void on_bulk(fd_op_t *op, int res, uint32_t flags);
static void on_connect(fd_op_t *op, int res, uint32_t flags);

static void set_name(rpc_conn_t *c) {
  /* Loopback delivery copies zero-copy pages anyway, and the notification
   * costs extra: there a plain send is faster (measured in perf/rpc). */
  bool loopback = (ntohl(c->peer.sin_addr.s_addr) >> 24) == 127;
  c->bulk_zc = c->e->bulk_send == RPC_BULK_SEND_ZC ||
               (c->e->bulk_send == RPC_BULK_SEND_AUTO && !loopback);
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &c->peer.sin_addr, ip, sizeof(ip));
  snprintf(c->name, sizeof(c->name), "%s:%u", ip, ntohs(c->peer.sin_port));
}

rpc_conn_t *rpc_conn_open(rpc_engine_t *e, int fd, bool is_client) {
  if (e->conn_free_top == 0) return NULL;
  rpc_conn_t *c = &e->conns[e->conn_free[e->conn_free_top - 1]];
  uint32_t index = c->index;
  memset(c, 0, sizeof(*c));
  c->index = index;
  c->e = e;
  c->fd = fd;
  c->is_client = is_client;
  c->out = malloc(RPC_OUTBUF_BYTES);
  c->inbuf = malloc(RPC_INBUF_INLINE);
  c->inbuf_cap = RPC_INBUF_INLINE;
  c->streams_cap = 1;
  while (c->streams_cap < 2 * e->streams_max) c->streams_cap <<= 1;
  c->streams = calloc(c->streams_cap, sizeof(*c->streams));
  if (!c->out || !c->inbuf || !c->streams) {
    free(c->out);
    free(c->inbuf);
    free(c->streams);
    c->fd = -1;
    return NULL;
  }
  e->conn_free_top--;
  c->recv_op = (rpc_conn_op_t){{on_recv}, c};
  c->direct_op = (rpc_conn_op_t){{on_direct}, c};
  c->send_op = (rpc_conn_op_t){{on_send}, c};
  c->connect_op = (rpc_conn_op_t){{on_connect}, c};
  for (uint32_t i = 0; i < RPC_BULK_SENDS_MAX; i++) {
    c->bulk[i].op.complete = on_bulk;
    c->bulk[i].conn = c;
  }
  c->next_stream_id = 1;
  c->opened_ns = c->last_rx_ns = fd_now_ns();
  c->state = is_client ? RPC_CONN_CONNECTING : RPC_CONN_HANDSHAKE;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->live_next = e->live;
  if (e->live) e->live->live_prev = c;
  e->live = c;
  return c;
}

static void release_bulk(rpc_conn_t *c, rpc_bulk_t *b) {
  b->done = true;
  if (b->done_fn) b->done_fn((void *)b->buf, b->done_arg);
  b->done_fn = NULL;
  while (c->bulk_head < c->bulk_send && c->bulk[c->bulk_head % RPC_BULK_SENDS_MAX].done)
    c->bulk_head++;
}

static void finalize(rpc_conn_t *c) {
  rpc_engine_t *e = c->e;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  if (c->data_buf) fd_pool_put(e->pool, c->data_buf);
  c->data_buf = NULL;
  /* Buffers queued and never (fully) sent go back to their owners now that
   * the kernel holds no reference to them. */
  c->bulk_send = c->bulk_tail;
  for (uint32_t i = c->bulk_head; i < c->bulk_tail; i++) {
    rpc_bulk_t *b = &c->bulk[i % RPC_BULK_SENDS_MAX];
    if (!b->done) {
      b->done = true;
      if (b->done_fn) b->done_fn((void *)b->buf, b->done_arg);
    }
  }
  free(c->out);
  free(c->inbuf);
  free(c->streams);
  c->out = c->inbuf = NULL;
  c->streams = NULL;
  if (c->dirty_queued) {
    rpc_conn_t **pp = &e->dirty;
    while (*pp && *pp != c) pp = &(*pp)->dirty_next;
    if (*pp) *pp = c->dirty_next;
    c->dirty_queued = false;
  }
  if (c->live_prev) c->live_prev->live_next = c->live_next;
  else e->live = c->live_next;
  if (c->live_next) c->live_next->live_prev = c->live_prev;
  rpc_conn_cbs_t cbs = c->cbs;
  void *arg = c->cbs_arg;
  int err = c->close_err;
  c->state = RPC_CONN_FREE;
  e->conn_free[e->conn_free_top++] = c->index;
  if (cbs.on_closed) cbs.on_closed(c, err, arg);
}

void rpc_conn_finalize_ready(rpc_engine_t *e) {
  while (e->reap) {
    rpc_conn_t *c = e->reap;
    e->reap = c->reap_next;
    finalize(c);
  }
}

void rpc_conn_fail(rpc_conn_t *c, int err, const char *why) {
  if (c->state == RPC_CONN_CLOSING || c->state == RPC_CONN_FREE) return;
  rpc_engine_t *e = c->e;
  if (err == -ESHUTDOWN || err == -ECONNRESET)
    fd_log_info("rpc: closing %s: %s", c->name, why);
  else
    fd_log_warn("rpc: closing %s: %s (%s)", c->name, why, fd_strerror(err));
  e->stats.conns_closed++;
  /* Best effort GOAWAY when nothing is in flight, so the peer learns why. */
  if (c->fd >= 0 && !c->sending && c->state != RPC_CONN_CONNECTING) {
    Fdrpc__GoAway ga = FDRPC__GO_AWAY__INIT;
    ga.code = err == -EKEYREJECTED || err == -EACCES ? RPC_UNAUTHENTICATED : RPC_UNAVAILABLE;
    ga.message = (char *)why;
    if (rpc_conn_queue(c, RPC_FRAME_GOAWAY, 0, 0, 0, NULL, 0, &ga.base, true) == 0) {
      ssize_t n = send(c->fd, c->out + c->out_head, c->out_tail - c->out_head,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      (void)n;
    }
  }
  c->state = RPC_CONN_CLOSING;
  c->close_err = err;
  rpc_call_conn_gone(c, RPC_UNAVAILABLE, why);
  if (c->fd >= 0) {
    shutdown(c->fd, SHUT_RDWR);
    if (c->recv_armed) {
      struct io_uring_sqe *sqe = fd_ring_sqe(&e->ring, NULL);
      if (sqe) io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&c->recv_op, 0);
    }
  }
  if (c->ops == 0 && !c->finalize_queued) {
    c->finalize_queued = true;
    c->reap_next = e->reap;
    e->reap = c;
  }
}

void rpc_conn_close(rpc_conn_t *c) { rpc_conn_fail(c, -ESHUTDOWN, "closed locally"); }
bool rpc_conn_is_ready(const rpc_conn_t *c) { return c->state == RPC_CONN_READY; }
bool rpc_conn_is_admin(const rpc_conn_t *c) { return c->admin; }
uint64_t rpc_conn_blocked_ns(const rpc_conn_t *c) {
  return c->blocked_since_ns ? fd_now_ns() - c->blocked_since_ns : 0;
}

/* ---- accept and connect ---- */

static void on_accept(fd_op_t *op, int res, uint32_t flags) {
  rpc_engine_t *e = RPC_CONTAINER_OF(op, rpc_engine_t, accept_op);
  if (res >= 0) {
    rpc_conn_t *c = e->destroying ? NULL : rpc_conn_open(e, res, false);
    if (!c) {
      fd_log_warn("rpc: refusing a connection: %u connections open", e->conns_max);
      close(res);
    } else {
      socklen_t len = sizeof(c->peer);
      getpeername(res, (struct sockaddr *)&c->peer, &len);
      set_name(c);
      e->stats.conns_accepted++;
      rpc_conn_arm_recv(c);
    }
  } else if (res != -ECANCELED) {
    fd_log_warn("rpc: accept: %s", fd_strerror(res));
  }
  if (!(flags & IORING_CQE_F_MORE)) {
    e->accept_armed = false;
    if (!e->destroying && res != -ECANCELED) rpc_conn_accept_arm(e); /* e.g. after -EMFILE */
  }
}

void rpc_conn_accept_arm(rpc_engine_t *e) {
  struct io_uring_sqe *sqe = fd_ring_sqe(&e->ring, &e->accept_op);
  FD_ASSERT(sqe);
  io_uring_prep_multishot_accept(sqe, e->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  e->accept_armed = true;
}

int rpc_listen(rpc_engine_t *e, const char *addr, uint16_t port, uint16_t *bound_port) {
  if (e->listen_fd >= 0) return -EBUSY;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) return -EINVAL;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t len = sizeof(sa);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  if (bound_port) *bound_port = ntohs(sa.sin_port);
  e->listen_fd = fd;
  e->accept_op.complete = on_accept;
  rpc_conn_accept_arm(e);
  return 0;
}

static void on_connect(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  rpc_conn_t *c = CONN_OF(op);
  if (c->state == RPC_CONN_CONNECTING) {
    if (res < 0) {
      rpc_conn_fail(c, res, "connect failed");
    } else {
      c->state = RPC_CONN_HANDSHAKE;
      c->opened_ns = c->last_rx_ns = fd_now_ns();
      c->e->stats.conns_connected++;
      rpc_conn_arm_recv(c);
      int rc = rpc_hs_start(c);
      if (rc < 0) rpc_conn_fail(c, rc, "handshake start");
    }
  }
  op_done(c);
}

rpc_conn_t *rpc_connect(rpc_engine_t *e, const char *addr, uint16_t port,
                        const rpc_conn_cbs_t *cbs, void *arg) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
    errno = EINVAL;
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return NULL;
  rpc_conn_t *c = rpc_conn_open(e, fd, true);
  if (!c) {
    close(fd);
    errno = ENOSPC;
    return NULL;
  }
  c->peer = sa;
  set_name(c);
  if (cbs) c->cbs = *cbs;
  c->cbs_arg = arg;
  struct io_uring_sqe *sqe = fd_ring_sqe(&e->ring, &c->connect_op.op);
  FD_ASSERT(sqe);
  io_uring_prep_connect(sqe, fd, (struct sockaddr *)&c->peer, sizeof(c->peer));
  c->ops++;
  return c;
}

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

static void on_recv(fd_op_t *op, int res, uint32_t flags) {
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
      } else if (res < 0 && res != -ECANCELED) {
        rpc_conn_fail(c, res, "recv failed");
      } else {
        after_recv_stopped(c);
      }
    }
    op_done(c);
  }
}

static void on_direct(fd_op_t *op, int res, uint32_t flags) {
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
  op_done(c);
}

void rpc_conn_tick(rpc_conn_t *c, uint64_t now) {
  rpc_engine_t *e = c->e;
  c->pings_tick = 0;
  if (c->state == RPC_CONN_CLOSING || c->state == RPC_CONN_FREE) return;
  uint64_t stall_ns = (uint64_t)e->stall_ms * 1000000ull;
  if ((c->state == RPC_CONN_HANDSHAKE || c->state == RPC_CONN_CONNECTING) &&
      now - c->opened_ns > stall_ns) {
    e->stats.stalls++;
    rpc_conn_fail(c, -ETIMEDOUT, "handshake did not finish in time");
    return;
  }
  if ((c->hdr_have > 0 || c->in_payload) && now - c->last_rx_ns > stall_ns) {
    e->stats.stalls++;
    rpc_conn_fail(c, -ETIMEDOUT, "peer stalled mid-frame");
    return;
  }
  if (c->state != RPC_CONN_READY) return;
  if (c->rx_consumed > 0) rpc_conn_window_consumed(c, 0);
  rpc_call_tick(c, now);
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
  mark_dirty(c);
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
  mark_dirty(c);
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
  mark_dirty(c);
  if (c->state == RPC_CONN_READY) rpc_call_writable(c);
}

static void on_send(fd_op_t *op, int res, uint32_t flags) {
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
  op_done(c);
}

static void on_bulk(fd_op_t *op, int res, uint32_t flags) {
  rpc_bulk_t *b = (rpc_bulk_t *)op;
  rpc_conn_t *c = b->conn;
  if (flags & IORING_CQE_F_NOTIF) {
    FD_ASSERT(b->notifs > 0);
    b->notifs--;
    if (b->notifs == 0 && !b->submitted && b->sent == b->len && !b->done) release_bulk(c, b);
    op_done(c);
    return;
  }
  c->sending = false;
  b->submitted = false;
  if (flags & IORING_CQE_F_MORE) b->notifs++; /* its notification is still due */
  if (c->state != RPC_CONN_CLOSING) {
    if (res < 0) {
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
  if (!(flags & IORING_CQE_F_MORE)) op_done(c);
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
