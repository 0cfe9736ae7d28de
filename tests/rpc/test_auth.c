/* Authentication: a wrong cluster key, a forged proof, or a request before the handshake is refused, logged and counted. */
#include "harness.h"

static void setup(test_server_t *s) { assert_int_equal(rpc_serve_node_ping(s->e, h_ping, NULL), 0); }

static void test_auth(void **state) {
  (void)state;
  test_server_t s = {.opts = test_opts(), .setup = setup};
  uint16_t port = test_server_start(&s);

  /* A client holding another key: the server cannot prove itself to it. */
  rpc_engine_opts_t o = test_opts();
  o.cluster_key = wrong_key;
  o.cluster_key_len = sizeof(wrong_key) - 1;
  rpc_engine_t *e = rpc_engine_create(&o);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.closed, 3000));
  assert_false(tc.ready);
  assert_int_equal(tc.err, -EKEYREJECTED);
  rpc_stats_t cs;
  rpc_engine_get_stats(e, &cs);
  assert_int_equal(cs.auth_failures, 1);
  rpc_engine_destroy(e);

  /* A client that cannot prove the key to the server. */
  int fd = raw_connect(port);
  assert_int_not_equal(raw_handshake(fd, wrong_key, sizeof(wrong_key) - 1, false), 0);
  assert_true(raw_closed_by_peer(fd));
  close(fd);
  fd = raw_connect(port);
  assert_int_not_equal(raw_handshake(fd, test_key, sizeof(test_key) - 1, true), 0);
  close(fd);

  /* A call before any handshake. */
  fd = raw_connect(port);
  uint8_t open[RPC_OPEN_LEN] = {0};
  raw_send_frame(fd, RPC_FRAME_REQUEST, RPC_FLAG_OPEN | RPC_FLAG_END, 1,
                 RPC_METHOD_ID(RPC_SVC_NODE, 3), open, sizeof(open));
  assert_true(raw_closed_by_peer(fd));
  close(fd);

  /* The right key still works, and the raw handshake with it too. */
  o = test_opts();
  e = rpc_engine_create(&o);
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  assert_int_equal(ping_once(e, tc.c, 1), RPC_OK);
  rpc_engine_destroy(e);
  fd = raw_connect(port);
  assert_int_equal(raw_handshake(fd, test_key, sizeof(test_key) - 1, false), 0);
  close(fd);

  test_server_stop(&s);
  assert_int_equal(s.stats.auth_failures, 3);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_auth)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
