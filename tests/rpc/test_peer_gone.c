/* Peer gone mid-stream: a vanished server ends the client's calls UNAVAILABLE; a vanished client ends the server's call, which keeps serving. */
#include "stream_util.h"

static void test_server_gone(void **state) {
  (void)state;
  test_server_t s = {.opts = test_opts(), .setup = setup_fetch, .pool_bufs = 2, .pool_buf_size = 65536};
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = test_opts();
  rpc_engine_t *e = rpc_engine_create(&o);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  test_call_t t;
  assert_non_null(start_fetch(tc.c, 1000, 65536, true, 5000, &t));
  bool got_one = false;
  uint64_t until = fd_now_ms() + 3000;
  while (!(got_one = t.msgs > 0) && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  assert_true(got_one);
  test_server_stop(&s); /* the server process's engine goes away mid-stream */
  assert_true(pump_until(e, &t.done, 3000));
  assert_int_equal(t.code, RPC_UNAVAILABLE);
  assert_true(pump_until(e, &tc.closed, 3000));
  rpc_engine_destroy(e);
}

static void test_client_gone(void **state) {
  (void)state;
  test_server_t s = {.opts = test_opts(), .setup = setup_fetch, .pool_bufs = 2, .pool_buf_size = 65536};
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = test_opts();
  rpc_engine_t *e = rpc_engine_create(&o);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  test_call_t t;
  assert_non_null(start_fetch(tc.c, 1000, 65536, true, 5000, &t));
  uint64_t until = fd_now_ms() + 3000;
  while (t.msgs == 0 && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  assert_int_equal(t.msgs, 1);
  rpc_engine_destroy(e); /* the client vanishes mid-stream */
  until = fd_now_ms() + 3000;
  while (atomic_load(&stream_closed_code) < 0 && fd_now_ms() < until) usleep(1000);
  assert_int_equal(atomic_load(&stream_closed_code), RPC_UNAVAILABLE);

  e = rpc_engine_create(&o);
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  assert_int_equal(ping_once(e, tc.c, 3), RPC_OK);
  rpc_engine_destroy(e);
  test_server_stop(&s);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_server_gone),
                                     cmocka_unit_test(test_client_gone)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
