/* rpc_conn.c — one TCP connection's life: multishot accept, connect,
 * opening (per-connection buffers are allocated here, not per message),
 * stall checks on the tick, and closing: a conn's slot is reused only after
 * every operation naming it has completed (rpc_conn_op_done). Receiving is
 * in rpc_rx.c, sending in rpc_tx.c. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
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


void rpc_conn_op_done(rpc_conn_t *c) {
  FD_ASSERT(c->ops > 0);
  c->ops--;
  if (c->state == RPC_CONN_CLOSING && c->ops == 0 && !c->finalize_queued) {
    c->finalize_queued = true;
    c->reap_next = c->e->reap;
    c->e->reap = c;
  }
}


/* ---- open, close ---- */

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
  c->recv_op = (rpc_conn_op_t){{rpc_rx_on_recv}, c};
  c->direct_op = (rpc_conn_op_t){{rpc_rx_on_direct}, c};
  c->send_op = (rpc_conn_op_t){{rpc_tx_on_send}, c};
  c->connect_op = (rpc_conn_op_t){{on_connect}, c};
  for (uint32_t i = 0; i < RPC_BULK_SENDS_MAX; i++) {
    c->bulk[i].op.complete = rpc_tx_on_bulk;
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
    ga.code = err == -EKEYREJECTED || err == -EKEYEXPIRED || err == -EKEYREVOKED || err == -EACCES
                  ? RPC_UNAUTHENTICATED
                  : RPC_UNAVAILABLE;
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
bool rpc_conn_is_admin(const rpc_conn_t *c) { return c->role == RPC_ROLE_ADMIN; }
rpc_role_t rpc_conn_role(const rpc_conn_t *c) { return c->role; }
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

rpc_conn_t *rpc_conn_adopt(rpc_engine_t *e, int fd, bool skip_handshake) {
  rpc_conn_t *c = rpc_conn_open(e, fd, false);
  if (!c) return NULL;
  snprintf(c->name, sizeof(c->name), "adopted:%d", fd);
  c->bulk_zc = e->bulk_send == RPC_BULK_SEND_ZC;
  if (skip_handshake) {
    c->state = RPC_CONN_READY;
    c->hs_step = 4;
    c->peer_stream_window = e->stream_window;
    c->peer_conn_window = e->conn_window;
    c->tx_credit = e->conn_window;
  }
  rpc_conn_arm_recv(c);
  return c;
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
  if (e->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
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
  rpc_conn_op_done(c);
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
