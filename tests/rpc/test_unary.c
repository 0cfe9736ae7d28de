/* Unary calls over loopback: typed stub and handler, large messages, the admin role. */
#include "harness.h"

static int h_drain(rpc_call_t *call, const Sched__DrainRequest *req, void *ctx) {
  (void)ctx;
  Sched__DrainReply r = SCHED__DRAIN_REPLY__INIT;
  r.accepted = strcmp(req->node_id, "n1") == 0;
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static int h_status(rpc_call_t *call, const Sched__StatusRequest *req, void *ctx) {
  (void)req;
  (void)ctx;
  return rpc_call_finish(call, RPC_NOT_FOUND, "no scheduler here");
}

static void setup(test_server_t *s) {
  assert_int_equal(rpc_serve_node_ping(s->e, h_ping, NULL), 0);
  assert_int_equal(rpc_serve_node_ping(s->e, h_ping, NULL), -EEXIST);
  assert_int_equal(rpc_serve_sched_drain(s->e, h_drain, NULL), 0);
  assert_int_equal(rpc_serve_sched_status(s->e, h_status, NULL), 0);
}

static void test_ping(void **state) {
  (void)state;
  test_server_t s = {.opts = test_opts(), .setup = setup};
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = test_opts();
  rpc_engine_t *e = rpc_engine_create(&o);
  assert_non_null(e);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  assert_false(rpc_conn_is_admin(tc.c));
  for (uint64_t i = 1; i <= 100; i++) assert_int_equal(ping_once(e, tc.c, i), RPC_OK);

  /* A payload over the inline send buffer and the inline receive buffer. */
  static uint8_t big[300 * 1024];
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 7);
  test_call_t t = {0};
  Node__PingRequest req = NODE__PING_REQUEST__INIT;
  req.nonce = 77;
  req.payload.data = big;
  req.payload.len = sizeof(big);
  t.call = rpc_start_node_ping(tc.c, &req, 2000, &tcall_cbs, &t);
  assert_non_null(t.call);
  assert_true(pump_until(e, &t.done, 3000));
  assert_int_equal(t.code, RPC_OK);
  assert_int_equal(t.last_u64, 77);

  /* A status other than OK travels with its message. */
  Sched__StatusRequest sreq = SCHED__STATUS_REQUEST__INIT;
  memset(&t, 0, sizeof(t));
  t.call = rpc_start_sched_status(tc.c, &sreq, 2000, &tcall_cbs, &t);
  assert_true(pump_until(e, &t.done, 3000));
  assert_int_equal(t.code, RPC_NOT_FOUND);
  assert_string_equal(t.message, "no scheduler here");
  assert_int_equal(t.msgs, 0);

  /* Drain needs the admin role: this connection lacks it. */
  Sched__DrainRequest dreq = SCHED__DRAIN_REQUEST__INIT;
  dreq.node_id = (char *)"n1";
  memset(&t, 0, sizeof(t));
  t.call = rpc_start_sched_drain(tc.c, &dreq, 2000, &tcall_cbs, &t);
  assert_true(pump_until(e, &t.done, 3000));
  assert_int_equal(t.code, RPC_PERMISSION_DENIED);

  rpc_conn_close(tc.c);
  assert_true(pump_until(e, &tc.closed, 3000));
  rpc_engine_destroy(e);
  test_server_stop(&s);
  assert_int_equal(s.stats.protocol_errors, 0);
  assert_int_equal(s.stats.calls_served, 103);
}

/* Windows smaller than a message (a node's few small chunk buffers against
 * a writer's change): the message goes alone, once nothing else is in
 * flight, in both directions; while it is in flight another large one
 * waits for the credit to come back whole; nothing counts as a flood. */
static void test_message_larger_than_windows(void **state) {
  (void)state;
  rpc_engine_opts_t so = test_opts();
  so.payload_max = 1u << 20;
  so.stream_window_bytes = so.conn_window_bytes = 64u * 1024u;
  test_server_t s = {.opts = so, .setup = setup};
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = so;
  rpc_engine_t *e = rpc_engine_create(&o);
  assert_non_null(e);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  static uint8_t big[600 * 1024]; /* > both windows, < payload_max */
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 13);
  Node__PingRequest req = NODE__PING_REQUEST__INIT;
  req.payload.data = big;
  req.payload.len = sizeof(big);
  for (uint64_t n = 1; n <= 5; n++) {
    test_call_t t = {0}, t2 = {0};
    req.nonce = n;
    t.call = rpc_start_node_ping(tc.c, &req, 3000, &tcall_cbs, &t);
    assert_non_null(t.call);
    /* a second large one cannot start while the first is unacknowledged */
    req.nonce = 100 + n;
    assert_null(rpc_start_node_ping(tc.c, &req, 3000, &tcall_cbs, &t2));
    assert_int_equal(errno, EAGAIN);
    assert_true(pump_until(e, &t.done, 3000));
    assert_int_equal(t.code, RPC_OK);
    assert_int_equal(t.last_u64, n);
    pump_for(e, 30); /* the credit comes back whole by the next tick */
  }
  for (uint64_t i = 1; i <= 20; i++) assert_int_equal(ping_once(e, tc.c, i), RPC_OK);
  rpc_conn_close(tc.c);
  assert_true(pump_until(e, &tc.closed, 3000));
  rpc_stats_t st;
  rpc_engine_get_stats(e, &st);
  assert_int_equal(st.floods, 0);
  assert_int_equal(st.protocol_errors, 0);
  rpc_engine_destroy(e);
  test_server_stop(&s);
  assert_int_equal(s.stats.floods, 0);
  assert_int_equal(s.stats.protocol_errors, 0);
  assert_int_equal(s.stats.calls_served, 25);
}

static void test_admin(void **state) {
  (void)state;
  fd_ed25519_key_t admin;
  assert_int_equal(fd_ed25519_generate(&admin), 0);
  test_server_t s = {.opts = test_opts(), .setup = setup};
  s.opts.admin_pub = admin.pub;
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = test_opts();
  o.admin_key = &admin;
  rpc_engine_t *e = rpc_engine_create(&o);
  assert_non_null(e);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  assert_true(rpc_conn_is_admin(tc.c));
  Sched__DrainRequest dreq = SCHED__DRAIN_REQUEST__INIT;
  dreq.node_id = (char *)"n1";
  test_call_t t = {0};
  t.call = rpc_start_sched_drain(tc.c, &dreq, 2000, &tcall_cbs, &t);
  assert_true(pump_until(e, &t.done, 3000));
  assert_int_equal(t.code, RPC_OK);
  assert_int_equal(t.msgs, 1);
  rpc_engine_destroy(e);

  /* A different admin key is refused at the handshake. */
  fd_ed25519_key_t other;
  assert_int_equal(fd_ed25519_generate(&other), 0);
  o.admin_key = &other;
  e = rpc_engine_create(&o);
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.closed, 3000));
  assert_false(tc.ready);
  rpc_engine_destroy(e);
  test_server_stop(&s);
  assert_int_equal(s.stats.auth_failures, 1);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_ping),
      cmocka_unit_test(test_message_larger_than_windows), cmocka_unit_test(test_admin)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
