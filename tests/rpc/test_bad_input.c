/* Bad input: bad magic, oversize frame, unknown method, undecodable protobuf, stall, floods each close only that connection. */
#include "harness.h"

static test_server_t srv;
static uint16_t port;

static void hold_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  (void)call;
  (void)len;
  fd_pool_put(arg, buf); /* never credited back: the window stays shut */
}

static int h_replicate(rpc_call_t *call, const Origin__ReplicatePart *part, void *ctx) {
  (void)part;
  test_server_t *s = ctx;
  rpc_call_cbs_t cbs = {NULL, hold_data, NULL, NULL};
  rpc_call_set_cbs(call, &cbs, s->pool);
  return 0;
}

static void setup(test_server_t *s) {
  assert_int_equal(rpc_serve_node_ping(s->e, h_ping, NULL), 0);
  assert_int_equal(rpc_serve_origin_replicate(s->e, h_replicate, s), 0);
}

static int group_setup(void **state) {
  (void)state;
  memset(&srv, 0, sizeof(srv));
  srv.opts = test_opts();
  srv.opts.payload_max = 64 * 1024;
  srv.opts.stall_ms = 300;
  srv.opts.stream_window_bytes = 64 * 1024;
  srv.opts.conn_window_bytes = 64 * 1024;
  srv.setup = setup;
  srv.pool_bufs = 4;
  srv.pool_buf_size = 64 * 1024;
  port = test_server_start(&srv);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  test_server_stop(&srv);
  return 0;
}

/* The server still serves a well-behaved client. */
static void still_serving(void) {
  rpc_engine_opts_t o = test_opts();
  rpc_engine_t *e = rpc_engine_create(&o);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  assert_int_equal(ping_once(e, tc.c, 42), RPC_OK);
  rpc_engine_destroy(e);
}

static void test_bad_magic(void **state) {
  (void)state;
  int fd = raw_connect(port);
  uint8_t junk[RPC_FRAME_HEADER_LEN];
  memcpy(junk, "GET / HTTP/1.1\r\nHost: x\r\nAccept", sizeof(junk));
  assert_int_equal(send(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
  assert_true(raw_closed_by_peer(fd));
  close(fd);
  still_serving();
}

static void test_oversize(void **state) {
  (void)state;
  int fd = raw_connect(port);
  assert_int_equal(raw_handshake(fd, test_key, sizeof(test_key) - 1, false), 0);
  uint8_t h[RPC_FRAME_HEADER_LEN];
  rpc_frame_header_t fh = {RPC_VERSION, RPC_FRAME_REQUEST, RPC_FLAG_OPEN | RPC_FLAG_END, 1,
                           RPC_METHOD_ID(RPC_SVC_NODE, 3), 64 * 1024 + 1};
  rpc_frame_encode(&fh, h);
  assert_int_equal(send(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
  assert_true(raw_closed_by_peer(fd));
  close(fd);
  /* Before authentication even a frame under the limit is too big. */
  fd = raw_connect(port);
  rpc_frame_header_t big = {RPC_VERSION, RPC_FRAME_HANDSHAKE, 0, 0, 1, 60000};
  rpc_frame_encode(&big, h);
  assert_int_equal(send(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
  assert_true(raw_closed_by_peer(fd));
  close(fd);
  still_serving();
}

static void unknown_method(uint32_t method_id) {
  int fd = raw_connect(port);
  assert_int_equal(raw_handshake(fd, test_key, sizeof(test_key) - 1, false), 0);
  uint8_t open[RPC_OPEN_LEN] = {100};
  raw_send_frame(fd, RPC_FRAME_REQUEST, RPC_FLAG_OPEN | RPC_FLAG_END, 1, method_id, open,
                 sizeof(open));
  assert_true(raw_closed_by_peer(fd));
  close(fd);
}

static void test_unknown_method(void **state) {
  (void)state;
  unknown_method(RPC_METHOD_ID(9, 0));            /* no such service */
  unknown_method(RPC_METHOD_ID(RPC_SVC_NODE, 40)); /* index past the descriptor */
  unknown_method(RPC_METHOD_ID(RPC_SVC_NODE, 0));  /* a method nobody registered */
  still_serving();
}

static void test_undecodable(void **state) {
  (void)state;
  int fd = raw_connect(port);
  assert_int_equal(raw_handshake(fd, test_key, sizeof(test_key) - 1, false), 0);
  uint8_t p[RPC_OPEN_LEN + 6] = {100, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
  raw_send_frame(fd, RPC_FRAME_REQUEST, RPC_FLAG_OPEN | RPC_FLAG_END, 1,
                 RPC_METHOD_ID(RPC_SVC_NODE, 3), p, sizeof(p));
  assert_true(raw_closed_by_peer(fd));
  close(fd);
  still_serving();
}

static void test_stall(void **state) {
  (void)state;
  uint64_t before = srv.e ? 0 : 0;
  (void)before;
  /* Silent in the handshake. */
  int fd = raw_connect(port);
  uint64_t t0 = fd_now_ms();
  assert_true(raw_closed_by_peer(fd));
  assert_true(fd_now_ms() - t0 >= 250);
  close(fd);
  /* Half a header, then nothing. */
  fd = raw_connect(port);
  assert_int_equal(raw_handshake(fd, test_key, sizeof(test_key) - 1, false), 0);
  uint8_t h[RPC_FRAME_HEADER_LEN];
  rpc_frame_header_t fh = {RPC_VERSION, RPC_FRAME_PING, 0, 0, 0, 8};
  rpc_frame_encode(&fh, h);
  assert_int_equal(send(fd, h, 10, 0), 10);
  t0 = fd_now_ms();
  assert_true(raw_closed_by_peer(fd));
  assert_true(fd_now_ms() - t0 >= 250);
  close(fd);
  still_serving();
}

static void test_ping_flood(void **state) {
  (void)state;
  int fd = raw_connect(port);
  assert_int_equal(raw_handshake(fd, test_key, sizeof(test_key) - 1, false), 0);
  uint8_t burst[200 * (RPC_FRAME_HEADER_LEN + 8)];
  for (int i = 0; i < 200; i++) {
    rpc_frame_header_t fh = {RPC_VERSION, RPC_FRAME_PING, 0, 0, 0, 8};
    uint8_t *f = burst + i * (RPC_FRAME_HEADER_LEN + 8);
    rpc_frame_encode(&fh, f);
    memset(f + RPC_FRAME_HEADER_LEN, i, 8);
  }
  assert_int_equal(send(fd, burst, sizeof(burst), MSG_NOSIGNAL), (ssize_t)sizeof(burst));
  assert_true(raw_closed_by_peer(fd));
  close(fd);
  still_serving();
}

static void test_window_flood(void **state) {
  (void)state;
  int fd = raw_connect(port);
  assert_int_equal(raw_handshake(fd, test_key, sizeof(test_key) - 1, false), 0);
  uint8_t open[RPC_OPEN_LEN] = {0};
  raw_send_frame(fd, RPC_FRAME_REQUEST, RPC_FLAG_OPEN | RPC_FLAG_NOMSG, 1,
                 RPC_METHOD_ID(RPC_SVC_ORIGIN, 1), open, sizeof(open));
  uint8_t part[2] = {0x08, 0x01}; /* ReplicatePart{version: 1} */
  raw_send_frame(fd, RPC_FRAME_REQUEST, 0, 1, 0, part, sizeof(part));
  /* The server's window is 64 KiB per stream and it never credits: the
   * second DATA frame is past it. */
  static uint8_t chunk[60 * 1024];
  raw_send_frame(fd, RPC_FRAME_DATA, 0, 1, 0, chunk, sizeof(chunk));
  raw_send_frame(fd, RPC_FRAME_DATA, 0, 1, 0, chunk, sizeof(chunk));
  assert_true(raw_closed_by_peer(fd));
  close(fd);
  still_serving();
}

static void test_counters(void **state) {
  (void)state;
  /* Read on the server thread's behalf after the fact: stop and check. */
  test_server_stop(&srv);
  assert_true(srv.stats.protocol_errors >= 6); /* magic, oversize, 3 methods, protobuf */
  assert_int_equal(srv.stats.stalls, 2);
  assert_int_equal(srv.stats.floods, 2);
  port = test_server_start(&srv); /* for the group teardown */
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_magic),   cmocka_unit_test(test_oversize),
      cmocka_unit_test(test_unknown_method), cmocka_unit_test(test_undecodable),
      cmocka_unit_test(test_stall),       cmocka_unit_test(test_ping_flood),
      cmocka_unit_test(test_window_flood), cmocka_unit_test(test_counters)};
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
