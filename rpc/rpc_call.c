/* rpc_call.c — calls on a connection: dispatch through the protoc-c service
 * descriptors (method id = service << 16 | method index), the stream table,
 * flow-control windows both ways, deadlines, cancellation, status. Every call
 * ends exactly once: on_done on the client, on_close (on_done) on the server.
 *
 * Window accounting: the payload bytes of REQUEST, RESPONSE (not the status)
 * and DATA frames count against the peer's stream and connection windows. A
 * receiver credits bytes back (WINDOW frames) once consumed: messages when
 * their callback returns, DATA when the application calls data_done. */
#include <errno.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc_int.h"

#define TICK_BATCH 64u

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* ---- the slab and the per-connection stream table ---- */

int rpc_calls_init(rpc_engine_t *e) {
  uint64_t n = (uint64_t)e->conns_max * e->streams_max;
  e->calls_max = (uint32_t)FD_MIN(n, (uint64_t)RPC_CALLS_PER_ENGINE_MAX);
  e->call_slab = calloc(e->calls_max, sizeof(*e->call_slab));
  if (!e->call_slab) return -ENOMEM;
  for (uint32_t i = e->calls_max; i-- > 0;) {
    e->call_slab[i].free_next = e->call_free;
    e->call_free = &e->call_slab[i];
  }
  return 0;
}

void rpc_calls_deinit(rpc_engine_t *e) { free(e->call_slab); }

static uint32_t slot_of(const rpc_conn_t *c, uint32_t id) {
  return (id * 2654435761u) & (c->streams_cap - 1);
}

static rpc_call_t *find(const rpc_conn_t *c, uint32_t id) {
  for (uint32_t i = slot_of(c, id), n = 0; n < c->streams_cap; i = (i + 1) & (c->streams_cap - 1), n++) {
    rpc_call_t *k = c->streams[i];
    if (!k) return NULL;
    if (k->id == id) return k;
  }
  return NULL;
}

static void table_remove(rpc_conn_t *c, rpc_call_t *call) {
  uint32_t mask = c->streams_cap - 1, i = slot_of(c, call->id);
  while (c->streams[i] != call) i = (i + 1) & mask;
  c->streams[i] = NULL;
  /* Backward-shift deletion keeps every probe chain unbroken. */
  for (uint32_t j = (i + 1) & mask; c->streams[j]; j = (j + 1) & mask) {
    uint32_t home = slot_of(c, c->streams[j]->id);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      c->streams[i] = c->streams[j];
      c->streams[j] = NULL;
      i = j;
    }
  }
}

static rpc_call_t *call_alloc(rpc_conn_t *c, uint32_t id, bool is_client) {
  rpc_engine_t *e = c->e;
  if (c->nstreams >= e->streams_max || !e->call_free) return NULL;
  rpc_call_t *call = e->call_free;
  e->call_free = call->free_next;
  uint32_t gen = call->gen;
  memset(call, 0, sizeof(*call));
  call->gen = gen + 1;
  call->conn = c;
  call->id = id;
  call->is_client = is_client;
  call->state = RPC_CALL_OPEN;
  call->tx_credit = c->peer_stream_window;
  uint32_t i = slot_of(c, id);
  while (c->streams[i]) i = (i + 1) & (c->streams_cap - 1);
  c->streams[i] = call;
  c->nstreams++;
  call->next = c->calls;
  if (c->calls) c->calls->prev = call;
  c->calls = call;
  return call;
}

static void call_unblocked(rpc_call_t *call, uint64_t now);

static void call_release(rpc_call_t *call) {
  rpc_conn_t *c = call->conn;
  rpc_engine_t *e = c->e;
  table_remove(c, call);
  c->nstreams--;
  if (call->prev) call->prev->next = call->next;
  else c->calls = call->next;
  if (call->next) call->next->prev = call->prev;
  /* DATA still held by the application no longer needs stream credit, but
   * the connection's window must not shrink for good. */
  if (call->rx_held) rpc_conn_window_consumed(c, call->rx_held);
  call_unblocked(call, fd_now_ns());
  /* The connection is held back only while some call still waits. */
  bool waiting = false;
  for (rpc_call_t *k = c->calls; k && !waiting; k = k->next) waiting = k->want_writable;
  if (!waiting) c->blocked_since_ns = 0;
  call->state = RPC_CALL_FREE;
  call->gen++;
  call->free_next = e->call_free;
  e->call_free = call;
}

/* Ends a call: client side sends CANCEL unless the server already ended it;
 * server side sends the status when send_status. Then on_done, then free. */
static void call_end(rpc_call_t *call, rpc_code_t code, const char *message, bool tell_peer) {
  if (call->state != RPC_CALL_OPEN) return;
  rpc_conn_t *c = call->conn;
  call->state = RPC_CALL_DONE;
  if (tell_peer && c->state == RPC_CONN_READY) {
    int rc;
    if (call->is_client) {
      rc = rpc_conn_queue(c, RPC_FRAME_CANCEL, 0, call->id, 0, NULL, 0, NULL, true);
    } else {
      Fdrpc__Status st = FDRPC__STATUS__INIT;
      st.code = code;
      st.message = (char *)(message ? message : "");
      rc = rpc_conn_queue(c, RPC_FRAME_RESPONSE, RPC_FLAG_END | RPC_FLAG_STATUS, call->id, 0,
                          NULL, 0, &st.base, true);
    }
    if (rc == -EAGAIN) {
      c->e->stats.floods++;
      rpc_conn_fail(c, -ENOBUFS, "peer does not read its replies");
    }
  }
  if (call->cbs.on_done) call->cbs.on_done(call, code, message ? message : "", call->cbs_arg);
  call_release(call);
}

/* Credits consumed bytes: to the stream while the peer still sends on it,
 * and to the connection. */
static void consumed(rpc_conn_t *c, rpc_call_t *call, uint64_t bytes) {
  if (call && call->state == RPC_CALL_OPEN) {
    call->rx_consumed += bytes;
    /* bytes == 0: the tick flushes whatever is left */
    if (!call->remote_end && call->rx_consumed &&
        (!bytes || call->rx_consumed >= c->e->stream_window / 4)) {
      uint8_t b[4];
      wr32(b, (uint32_t)call->rx_consumed);
      if (rpc_conn_queue(c, RPC_FRAME_WINDOW, 0, call->id, 0, b, 4, NULL, true) == 0) {
        call->rx_unacked -= call->rx_consumed;
        call->rx_consumed = 0;
      }
    }
  }
  rpc_conn_window_consumed(c, bytes);
}

/* Counts a received frame against our windows; a peer past them floods. */
/* Windows bound what a peer may send ahead, so that every DATA frame in
 * flight has a bulk buffer here: they are a few chunk buffers, not raised to
 * the largest message. A frame larger than a window (a writer's change of up
 * to payload_max where chunks are small) goes alone: only when nothing else
 * is in flight on that stream or connection, which both sides can tell (the
 * sender's credit is whole once this side has returned every byte). */
static bool rx_fits(uint64_t unacked, uint32_t window, uint32_t bytes) {
  return unacked + bytes <= window || (bytes > window && unacked == 0);
}

static bool tx_fits(int64_t credit, uint32_t window, uint32_t bytes) {
  return credit >= (int64_t)bytes || (bytes > window && credit >= (int64_t)window);
}

static int count_rx(rpc_conn_t *c, rpc_call_t *call, uint32_t bytes) {
  rpc_engine_t *e = c->e;
  bool ok = rx_fits(c->rx_unacked, e->conn_window, bytes);
  c->rx_unacked += bytes;
  if (!ok) goto flood;
  if (call) {
    ok = rx_fits(call->rx_unacked, e->stream_window, bytes);
    call->rx_unacked += bytes;
    if (!ok) goto flood;
  }
  return 0;
flood:
  e->stats.floods++;
  rpc_conn_fail(c, -EPROTO, "peer sent past its flow-control window");
  return -EPROTO;
}

/* ---- why a send waits (rpc_block_cause_t) ---- */

static rpc_block_cause_t block_cause(const rpc_conn_t *c) {
  /* Completions are collected before callbacks run, so a send still in
   * flight here did not go whole into the socket: its buffer is full. */
  if (c->sending || !rpc_conn_can_queue(c, RPC_FRAME_HEADER_LEN)) return RPC_BLOCK_SOCKET;
  int unsent = 0;
  if (c->fd >= 0 && ioctl(c->fd, SIOCOUTQNSD, &unsent) == 0 && unsent > 0) return RPC_BLOCK_SOCKET;
  return RPC_BLOCK_WINDOW;
}

/* A wait of call's ends (it sent, or it is gone): its time goes to its cause. */
static void call_unblocked(rpc_call_t *call, uint64_t now) {
  if (!call->blocked_since_ns) return;
  uint64_t d = now > call->blocked_since_ns ? now - call->blocked_since_ns : 0;
  rpc_stats_t *st = &call->conn->e->stats;
  call->blocked_total_ns[call->blocked_cause] += d;
  st->blocked_ns += d;
  if (call->blocked_cause == RPC_BLOCK_SOCKET) st->blocked_socket_ns += d;
  else st->blocked_window_ns += d;
  call->blocked_since_ns = 0;
}

/* The call waits (again): judged now; a changed cause starts a new wait. */
static void blocked_as(rpc_call_t *call, uint64_t now) {
  rpc_block_cause_t cause = block_cause(call->conn);
  if (call->blocked_since_ns && call->blocked_cause == cause) return;
  call_unblocked(call, now);
  call->blocked_since_ns = now;
  call->blocked_cause = cause;
}

/* Takes send credit, or records that the call is blocked (and why). */
static int take_credit(rpc_call_t *call, uint32_t bytes) {
  rpc_conn_t *c = call->conn;
  if (!tx_fits(call->tx_credit, c->peer_stream_window, bytes) ||
      !tx_fits(c->tx_credit, c->peer_conn_window, bytes) ||
      !rpc_conn_can_queue(c, RPC_FRAME_HEADER_LEN + (bytes > RPC_LARGE_MSG ? 0 : bytes))) {
    uint64_t now = fd_now_ns();
    blocked_as(call, now);
    if (!c->blocked_since_ns) c->blocked_since_ns = now;
    call->want_writable = true;
    return -EAGAIN;
  }
  call_unblocked(call, fd_now_ns());
  c->blocked_since_ns = 0;
  call->tx_credit -= bytes;
  c->tx_credit -= bytes;
  return 0;
}

static void give_back_credit(rpc_call_t *call, uint32_t bytes) {
  call->tx_credit += bytes;
  call->conn->tx_credit += bytes;
}

/* ---- server side ---- */

int rpc_serve(rpc_engine_t *e, const rpc_method_reg_t *reg) {
  if (!reg->service || !reg->thunk || !reg->typed || reg->service_id == 0 ||
      reg->service_id >= RPC_SVCS_MAX || reg->method_index >= reg->service->n_methods ||
      reg->method_index >= RPC_METHODS_PER_SVC_MAX)
    return -EINVAL;
  rpc_method_reg_t *slot = &e->methods[reg->service_id][reg->method_index];
  if (slot->service) return -EEXIST;
  *slot = *reg;
  return 0;
}

static const rpc_method_reg_t *lookup(rpc_engine_t *e, uint32_t method_id) {
  uint32_t svc = method_id >> 16, idx = method_id & 0xffffu;
  if (svc >= RPC_SVCS_MAX || idx >= RPC_METHODS_PER_SVC_MAX) return NULL;
  const rpc_method_reg_t *r = &e->methods[svc][idx];
  return r->service ? r : NULL;
}

/* Runs the handler; false when the call ended inside it. */
static bool run_handler(rpc_call_t *call, const ProtobufCMessage *m) {
  uint32_t gen = call->gen;
  int rc = call->reg->thunk(call, m, call->reg->ctx);
  bool alive = call->gen == gen && call->state == RPC_CALL_OPEN;
  if (alive && rc < 0) {
    call_end(call, rpc_code_from_errno(rc), fd_strerror(rc), true);
    alive = false;
  }
  return alive;
}

static int bad_msg(rpc_conn_t *c, const char *why) {
  c->e->stats.protocol_errors++;
  rpc_conn_fail(c, -EBADMSG, why);
  return 0;
}

static int server_request(rpc_conn_t *c, const rpc_frame_header_t *h, const uint8_t *p,
                          uint32_t len) {
  rpc_engine_t *e = c->e;
  rpc_call_t *call;
  const uint8_t *msg = p;
  uint32_t msg_len = len;
  if (h->flags & RPC_FLAG_OPEN) {
    if (h->stream_id <= c->last_peer_stream_id) {
      e->stats.protocol_errors++;
      rpc_conn_fail(c, -EPROTO, "stream id reused");
      return 0;
    }
    c->last_peer_stream_id = h->stream_id;
    const rpc_method_reg_t *reg = lookup(e, h->method_id);
    if (!reg) {
      e->stats.protocol_errors++;
      fd_log_warn("rpc: %s called unknown method %u.%u", c->name, h->method_id >> 16,
                  h->method_id & 0xffffu);
      rpc_conn_fail(c, -ERANGE, "unknown method");
      return 0;
    }
    uint32_t timeout_ms = rd32(p);
    if (rd32(p + 4) != 0) return bad_msg(c, "bad call header");
    if (timeout_ms == 0) timeout_ms = RPC_TIMEOUT_MS_DEFAULT;
    if (timeout_ms > RPC_TIMEOUT_MS_MAX) timeout_ms = RPC_TIMEOUT_MS_MAX;
    bool has_msg = !(h->flags & RPC_FLAG_NOMSG);
    if (reg->kind != RPC_CLIENT_STREAM && (!has_msg || !(h->flags & RPC_FLAG_END))) {
      e->stats.protocol_errors++;
      rpc_conn_fail(c, -EPROTO, "call shape does not match the method");
      return 0;
    }
    call = call_alloc(c, h->stream_id, false);
    if (count_rx(c, call, len) < 0) return 0;
    if (!call) {
      /* Too many streams: refuse this one, keep the connection. */
      Fdrpc__Status st = FDRPC__STATUS__INIT;
      st.code = RPC_RESOURCE_EXHAUSTED;
      st.message = (char *)"too many streams";
      rpc_conn_window_consumed(c, len);
      return rpc_conn_queue(c, RPC_FRAME_RESPONSE, RPC_FLAG_END | RPC_FLAG_STATUS, h->stream_id,
                            0, NULL, 0, &st.base, true);
    }
    call->reg = reg;
    call->kind = reg->kind;
    call->rx_desc = reg->service->methods[reg->method_index].input;
    call->tx_desc = reg->service->methods[reg->method_index].output;
    call->deadline_ns = fd_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    e->stats.calls_served++;
    if (reg->admin_only && c->role != RPC_ROLE_ADMIN) {
      consumed(c, call, len);
      call_end(call, RPC_PERMISSION_DENIED, "admin role required", true);
      return 0;
    }
    msg += RPC_OPEN_LEN;
    msg_len -= RPC_OPEN_LEN;
  } else {
    call = find(c, h->stream_id);
    if (!call) {
      if (h->stream_id > c->last_peer_stream_id) {
        e->stats.protocol_errors++;
        rpc_conn_fail(c, -EPROTO, "request on a stream never opened");
        return 0;
      }
      /* The call ended here first (deadline, error): drop what was in flight. */
      c->rx_unacked += len;
      rpc_conn_window_consumed(c, len);
      return 0;
    }
    if (call->kind != RPC_CLIENT_STREAM || call->remote_end) {
      e->stats.protocol_errors++;
      rpc_conn_fail(c, -EPROTO, "request after the end of the client's stream");
      return 0;
    }
    if (count_rx(c, call, len) < 0) return 0;
  }
  bool alive = true;
  if (!(h->flags & RPC_FLAG_NOMSG)) {
    ProtobufCMessage *m = rpc_eng_unpack(e, call->rx_desc, msg, msg_len);
    if (!m) return bad_msg(c, "undecodable request");
    alive = run_handler(call, m);
    rpc_eng_arena_reset(e);
  }
  consumed(c, alive ? call : NULL, len);
  if (alive && (h->flags & RPC_FLAG_END)) {
    call->remote_end = true;
    if (call->kind == RPC_CLIENT_STREAM) run_handler(call, NULL);
  }
  return 0;
}

/* ---- client side ---- */

static int client_response(rpc_conn_t *c, const rpc_frame_header_t *h, const uint8_t *p,
                           uint32_t len) {
  rpc_engine_t *e = c->e;
  rpc_call_t *call = find(c, h->stream_id);
  if (!call) {
    if (h->stream_id >= c->next_stream_id) {
      e->stats.protocol_errors++;
      rpc_conn_fail(c, -EPROTO, "response on a stream never opened");
      return 0;
    }
    if (!(h->flags & RPC_FLAG_STATUS)) {
      c->rx_unacked += len;
      rpc_conn_window_consumed(c, len); /* cancelled here already */
    }
    return 0;
  }
  if (h->flags & RPC_FLAG_STATUS) {
    Fdrpc__Status *st = (Fdrpc__Status *)rpc_eng_unpack(e, &fdrpc__status__descriptor, p, len);
    if (!st) return bad_msg(c, "undecodable status");
    call->remote_end = true;
    rpc_code_t code = st->code <= RPC_UNAUTHENTICATED ? (rpc_code_t)st->code : RPC_UNKNOWN;
    call_end(call, code, st->message, false);
    return 0;
  }
  if (count_rx(c, call, len) < 0) return 0;
  ProtobufCMessage *m = rpc_eng_unpack(e, call->rx_desc, p, len);
  if (!m) return bad_msg(c, "undecodable response");
  uint32_t gen = call->gen;
  if (call->cbs.on_msg) call->cbs.on_msg(call, m, call->cbs_arg);
  rpc_eng_arena_reset(e);
  consumed(c, call->gen == gen ? call : NULL, len);
  return 0;
}

/* ---- frames of a ready connection ---- */

int rpc_call_frame(rpc_conn_t *c, const rpc_frame_header_t *h, const uint8_t *p, uint32_t len) {
  rpc_engine_t *e = c->e;
  switch (h->type) {
  case RPC_FRAME_REQUEST:
    if (c->is_client) break;
    return server_request(c, h, p, len);
  case RPC_FRAME_RESPONSE:
    if (!c->is_client) break;
    return client_response(c, h, p, len);
  case RPC_FRAME_CANCEL: {
    if (c->is_client) break;
    rpc_call_t *call = find(c, h->stream_id);
    if (call) {
      e->stats.cancels++;
      call_end(call, RPC_CANCELLED, "cancelled by the client", false);
    }
    return 0;
  }
  case RPC_FRAME_WINDOW: {
    uint32_t n = rd32(p);
    if (h->stream_id == 0) {
      c->tx_credit += n;
      if (c->tx_credit > (int64_t)c->peer_conn_window) break;
    } else {
      rpc_call_t *call = find(c, h->stream_id);
      if (!call) return 0;
      call->tx_credit += n;
      if (call->tx_credit > (int64_t)c->peer_stream_window) break;
    }
    rpc_call_writable(c);
    return 0;
  }
  default:
    break;
  }
  e->stats.protocol_errors++;
  rpc_conn_fail(c, -EPROTO, "frame not allowed here");
  return 0;
}

int rpc_call_data_begin(rpc_conn_t *c, const rpc_frame_header_t *h, rpc_call_t **out) {
  rpc_engine_t *e = c->e;
  rpc_call_t *call = find(c, h->stream_id);
  *out = NULL;
  c->data_buf = NULL;
  if (!call) {
    uint32_t last = c->is_client ? c->next_stream_id - 1 : c->last_peer_stream_id;
    if (h->stream_id > last) {
      e->stats.protocol_errors++;
      rpc_conn_fail(c, -EPROTO, "data on a stream never opened");
      return -EPROTO;
    }
    c->rx_unacked += h->payload_len; /* ended here first: discard */
    return 0;
  }
  if (!c->is_client && (call->kind != RPC_CLIENT_STREAM || call->remote_end)) {
    e->stats.protocol_errors++;
    rpc_conn_fail(c, -EPROTO, "data outside a client stream");
    return -EPROTO;
  }
  if (!e->pool || h->payload_len > fd_pool_buf_size(e->pool)) {
    e->stats.protocol_errors++;
    rpc_conn_fail(c, -EMSGSIZE, "data frame larger than a bulk buffer");
    return -EMSGSIZE;
  }
  if (count_rx(c, call, h->payload_len) < 0) return -EPROTO;
  if (!call->cbs.on_data) {
    call_end(call, RPC_UNIMPLEMENTED, "no data sink for this call", true);
    return 0;
  }
  c->data_buf = fd_pool_get(e->pool);
  if (!c->data_buf) {
    fd_log_warn("rpc: %s: bulk pool empty, failing stream %u", c->name, h->stream_id);
    call_end(call, RPC_RESOURCE_EXHAUSTED, "bulk buffers exhausted", true);
    return 0;
  }
  *out = call;
  return 0;
}

void rpc_call_data_end(rpc_conn_t *c, uint32_t stream_id, uint8_t *buf, uint32_t len, bool end) {
  rpc_call_t *call = find(c, stream_id);
  if (!buf || !call) {
    if (buf) fd_pool_put(c->e->pool, buf);
    rpc_conn_window_consumed(c, len);
    return;
  }
  call->rx_held += len;
  uint32_t gen = call->gen;
  call->cbs.on_data(call, buf, len, call->cbs_arg);
  if (end && !c->is_client && call->gen == gen && call->state == RPC_CALL_OPEN) {
    call->remote_end = true;
    run_handler(call, NULL);
  }
}

void rpc_call_conn_gone(rpc_conn_t *c, rpc_code_t code, const char *why) {
  /* Restart from the head each time: an on_done may end other calls. */
  for (;;) {
    rpc_call_t *k = c->calls;
    while (k && k->state != RPC_CALL_OPEN) k = k->next;
    if (!k) break;
    call_end(k, code, why, false);
  }
}

void rpc_call_tick(rpc_conn_t *c, uint64_t now) {
  rpc_call_t *expired[TICK_BATCH];
  uint32_t gens[TICK_BATCH], n = 0;
  for (rpc_call_t *call = c->calls; call; call = call->next) {
    if (call->deadline_ns && now >= call->deadline_ns) {
      if (n < TICK_BATCH) {
        gens[n] = call->gen;
        expired[n++] = call;
      }
    } else if (call->rx_consumed && !call->remote_end) {
      consumed(c, call, 0);
    }
    /* A wait's cause changes without a send to notice it (the socket
     * drained, the peer still holds the window): judged again each tick. */
    if (call->blocked_since_ns && call->state == RPC_CALL_OPEN) blocked_as(call, now);
  }
  for (uint32_t i = 0; i < n; i++) {
    rpc_call_t *call = expired[i];
    if (call->gen != gens[i] || call->state != RPC_CALL_OPEN) continue;
    c->e->stats.deadlines++;
    call_end(call, RPC_DEADLINE_EXCEEDED, "deadline exceeded", true);
  }
  rpc_call_writable(c);
}

void rpc_call_writable(rpc_conn_t *c) {
  rpc_call_t *ready[TICK_BATCH];
  uint32_t gens[TICK_BATCH], n = 0;
  for (rpc_call_t *call = c->calls; call && n < TICK_BATCH; call = call->next) {
    if (call->want_writable && call->tx_credit > 0 && c->tx_credit > 0 &&
        rpc_conn_can_queue(c, RPC_FRAME_HEADER_LEN)) {
      gens[n] = call->gen;
      ready[n++] = call;
    }
  }
  for (uint32_t i = 0; i < n; i++) {
    rpc_call_t *call = ready[i];
    if (call->gen != gens[i] || call->state != RPC_CALL_OPEN) continue;
    call->want_writable = false;
    if (call->cbs.on_writable) call->cbs.on_writable(call, call->cbs_arg);
  }
}

/* ---- the API ---- */

rpc_call_t *rpc_call_start(rpc_conn_t *c, uint16_t service_id,
                           const ProtobufCServiceDescriptor *service, uint32_t method_index,
                           rpc_kind_t kind, const ProtobufCMessage *req, uint32_t timeout_ms,
                           const rpc_call_cbs_t *cbs, void *arg) {
  if (c->state != RPC_CONN_READY) {
    errno = ENOTCONN;
    return NULL;
  }
  if (method_index >= service->n_methods || (kind == RPC_CLIENT_STREAM) != (req == NULL) ||
      (req && req->descriptor != service->methods[method_index].input) ||
      c->next_stream_id == UINT32_MAX) {
    errno = EINVAL;
    return NULL;
  }
  if (timeout_ms == 0) timeout_ms = RPC_TIMEOUT_MS_DEFAULT;
  if (timeout_ms > RPC_TIMEOUT_MS_MAX) timeout_ms = RPC_TIMEOUT_MS_MAX;
  size_t msg_len = req ? protobuf_c_message_get_packed_size(req) : 0;
  if (msg_len + RPC_OPEN_LEN > c->e->payload_max) {
    errno = EMSGSIZE;
    return NULL;
  }
  uint32_t payload = (uint32_t)msg_len + RPC_OPEN_LEN;
  if (!tx_fits(c->tx_credit, c->peer_conn_window, payload)) { /* a new stream's credit is whole */
    errno = EAGAIN;
    return NULL;
  }
  rpc_call_t *call = call_alloc(c, c->next_stream_id, true);
  if (!call) {
    errno = ENOSPC;
    return NULL;
  }
  uint8_t open[RPC_OPEN_LEN];
  wr32(open, timeout_ms);
  wr32(open + 4, 0);
  uint16_t flags = RPC_FLAG_OPEN | (req ? RPC_FLAG_END : RPC_FLAG_NOMSG);
  int rc = rpc_conn_queue(c, RPC_FRAME_REQUEST, flags, call->id,
                          RPC_METHOD_ID(service_id, method_index), open, RPC_OPEN_LEN, req, false);
  if (rc < 0) {
    call_release(call);
    errno = -rc;
    return NULL;
  }
  c->next_stream_id++;
  call->tx_credit -= payload;
  c->tx_credit -= payload;
  call->kind = kind;
  call->local_end = req != NULL;
  call->rx_desc = service->methods[method_index].output;
  call->tx_desc = service->methods[method_index].input;
  call->deadline_ns = fd_now_ns() + (uint64_t)timeout_ms * 1000000ull;
  if (cbs) call->cbs = *cbs;
  call->cbs_arg = arg;
  c->e->stats.calls_started++;
  return call;
}

void rpc_call_set_cbs(rpc_call_t *call, const rpc_call_cbs_t *cbs, void *arg) {
  call->cbs = *cbs;
  call->cbs_arg = arg;
}

void *rpc_call_arg(const rpc_call_t *call) { return call->cbs_arg; }

static int can_send(const rpc_call_t *call) {
  if (call->state != RPC_CALL_OPEN || call->local_end) return -ECANCELED;
  if (call->conn->state != RPC_CONN_READY) return -ENOTCONN;
  if (call->is_client && call->kind != RPC_CLIENT_STREAM) return -EINVAL;
  return 0;
}

int rpc_call_send(rpc_call_t *call, const ProtobufCMessage *msg) {
  int rc = can_send(call);
  if (rc < 0) return rc;
  if (msg->descriptor != call->tx_desc) return -EINVAL;
  size_t len = protobuf_c_message_get_packed_size(msg);
  if (len > call->conn->e->payload_max) return -EMSGSIZE;
  rc = take_credit(call, (uint32_t)len);
  if (rc < 0) return rc;
  rc = rpc_conn_queue(call->conn, call->is_client ? RPC_FRAME_REQUEST : RPC_FRAME_RESPONSE, 0,
                      call->id, 0, NULL, 0, msg, false);
  if (rc < 0) {
    give_back_credit(call, (uint32_t)len);
    if (rc == -EAGAIN) call->want_writable = true;
  }
  return rc;
}

int rpc_call_send_data(rpc_call_t *call, const void *buf, uint32_t len, rpc_data_done_fn done,
                       void *done_arg) {
  int rc = can_send(call);
  if (rc < 0) return rc;
  if (len == 0 || len > call->conn->e->payload_max) return -EMSGSIZE;
  rc = take_credit(call, len);
  if (rc < 0) return rc;
  rc = rpc_conn_queue_bulk(call->conn, call->id, buf, len, done, done_arg);
  if (rc < 0) {
    give_back_credit(call, len);
    if (rc == -EAGAIN) call->want_writable = true;
  }
  return rc;
}

void rpc_call_data_done(rpc_call_t *call, uint32_t len) {
  FD_ASSERT(call->state == RPC_CALL_OPEN && len <= call->rx_held);
  call->rx_held -= len;
  consumed(call->conn, call, len);
}

int rpc_call_finish(rpc_call_t *call, rpc_code_t code, const char *message) {
  FD_ASSERT(!call->is_client);
  if (call->state != RPC_CALL_OPEN) return -ECANCELED;
  call_end(call, code, message, true);
  return 0;
}

int rpc_call_close_send(rpc_call_t *call) {
  FD_ASSERT(call->is_client);
  int rc = can_send(call);
  if (rc < 0) return rc;
  rc = rpc_conn_queue(call->conn, RPC_FRAME_REQUEST, RPC_FLAG_END | RPC_FLAG_NOMSG, call->id, 0,
                      NULL, 0, NULL, true);
  if (rc == 0) call->local_end = true;
  return rc;
}

void rpc_call_cancel(rpc_call_t *call) {
  FD_ASSERT(call->is_client);
  if (call->state != RPC_CALL_OPEN) return;
  call->conn->e->stats.cancels++;
  call_end(call, RPC_CANCELLED, "cancelled", true);
}

uint64_t rpc_call_blocked_ns(const rpc_call_t *call) {
  return call->blocked_since_ns ? fd_now_ns() - call->blocked_since_ns : 0;
}

uint64_t rpc_call_blocked_total_ns(const rpc_call_t *call, rpc_block_cause_t cause) {
  FD_ASSERT((unsigned)cause < RPC_BLOCK_CAUSES);
  uint64_t t = call->blocked_total_ns[cause];
  if (call->blocked_since_ns && call->blocked_cause == cause) t += rpc_call_blocked_ns(call);
  return t;
}
bool rpc_call_is_admin(const rpc_call_t *call) { return call->conn->role == RPC_ROLE_ADMIN; }
rpc_role_t rpc_call_role(const rpc_call_t *call) { return call->conn->role; }
uint64_t rpc_call_deadline_ns(const rpc_call_t *call) { return call->deadline_ns; }
rpc_conn_t *rpc_call_conn(const rpc_call_t *call) { return call->conn; }
rpc_typed_fn rpc_call_typed_fn(const rpc_call_t *call) { return call->reg ? call->reg->typed : NULL; }
