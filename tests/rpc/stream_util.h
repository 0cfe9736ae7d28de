/* stream_util.h — a FetchStripe server that streams chunk headers, each
 * followed by its bytes as DATA frames from bulk pool buffers, resuming on
 * on_writable and on returned buffers: the shape of a parent node. */
#ifndef RPC_TEST_STREAM_UTIL_H
#define RPC_TEST_STREAM_UTIL_H

#include "harness.h"

static inline uint8_t pattern(uint32_t chunk, uint32_t j) { return (uint8_t)(chunk * 31u + j * 7u + (j >> 9)); }

static inline void fill_chunk(uint8_t *buf, uint32_t chunk, uint32_t len) {
  for (uint32_t j = 0; j < len; j++) buf[j] = pattern(chunk, j);
}

static inline uint32_t expected_crc(uint32_t chunks, uint32_t len) {
  uint8_t *b = malloc(len);
  uint32_t crc = 0;
  for (uint32_t i = 0; i < chunks; i++) {
    fill_chunk(b, i, len);
    crc = fd_crc32c(crc, b, len);
  }
  free(b);
  return crc;
}

typedef struct fetch_stream {
  test_server_t *s;
  rpc_call_t *call;
  uint32_t next, count, len;
  bool header_sent;
  bool slow; /* send one header, then hold the stream open */
  rpc_code_t closed_code;
} fetch_stream_t;

/* The server's one active stream (tests run one at a time) and its fate. */
static fetch_stream_t *active_stream;
static _Atomic int stream_closed_code = -1;
static _Atomic uint64_t stream_blocked_seen;

static inline void stream_pump(fetch_stream_t *st);

static inline void buf_back(void *buf, void *arg) {
  test_server_t *s = arg;
  fd_pool_put(s->pool, buf);
  if (active_stream) stream_pump(active_stream);
}

static inline void stream_pump(fetch_stream_t *st) {
  while (st->next < st->count) {
    if (!st->header_sent) {
      Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
      h.index = st->next;
      h.length = st->len;
      int rc = rpc_call_send(st->call, &h.base);
      if (rc == -EAGAIN) return;
      assert_int_equal(rc, 0);
      st->header_sent = true;
      if (st->slow) return;
    }
    uint8_t *buf = fd_pool_get(st->s->pool);
    if (!buf) return; /* buf_back resumes */
    fill_chunk(buf, st->next, st->len);
    int rc = rpc_call_send_data(st->call, buf, st->len, buf_back, st->s);
    if (rc == -EAGAIN) {
      uint64_t b = rpc_call_blocked_ns(st->call);
      if (b > atomic_load(&stream_blocked_seen)) atomic_store(&stream_blocked_seen, b);
      fd_pool_put(st->s->pool, buf);
      return;
    }
    assert_int_equal(rc, 0);
    st->next++;
    st->header_sent = false;
  }
  rpc_call_finish(st->call, RPC_OK, NULL);
}

static inline void stream_writable(rpc_call_t *call, void *arg) {
  (void)call;
  stream_pump(arg);
}

static inline void stream_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)msg;
  fetch_stream_t *st = arg;
  atomic_store(&stream_closed_code, (int)code);
  if (active_stream == st) active_stream = NULL;
  free(st);
}

/* FetchStripe(stripe = chunk count, stripes = chunk length, version = 1: slow). */
static inline int h_fetch(rpc_call_t *call, const Node__FetchStripeRequest *req, void *ctx) {
  fetch_stream_t *st = calloc(1, sizeof(*st));
  st->s = ctx;
  st->call = call;
  st->count = req->stripe;
  st->len = req->stripes;
  st->slow = req->version == 1;
  active_stream = st;
  rpc_call_cbs_t cbs = {NULL, NULL, stream_writable, stream_done};
  rpc_call_set_cbs(call, &cbs, st);
  stream_pump(st);
  return 0;
}

static inline void setup_fetch(test_server_t *s) {
  active_stream = NULL;
  atomic_store(&stream_closed_code, -1);
  assert_int_equal(rpc_serve_node_fetch_stripe(s->e, h_fetch, s), 0);
  assert_int_equal(rpc_serve_node_ping(s->e, h_ping, NULL), 0);
}

static inline rpc_call_t *start_fetch(rpc_conn_t *c, uint32_t chunks, uint32_t len, bool slow,
                                      uint32_t timeout_ms, test_call_t *t) {
  Node__FetchStripeRequest req = NODE__FETCH_STRIPE_REQUEST__INIT;
  req.name = (char *)"f";
  req.stripe = chunks;
  req.stripes = len;
  req.version = slow ? 1 : 0;
  memset(t, 0, sizeof(*t));
  t->call = rpc_start_node_fetch_stripe(c, &req, timeout_ms, &tcall_cbs, t);
  return t->call;
}

#endif
