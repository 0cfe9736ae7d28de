/* Cancel mid-stream: the client abandons a server stream; the server's call ends CANCELLED and it keeps serving. */
#include "stream_util.h"

static void cancel_on_first(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  tcall_msg(call, m, arg);
  rpc_call_cancel(call);
}

static void test_cancel(void **state) {
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
  rpc_call_cbs_t cbs = tcall_cbs;
  cbs.on_msg = cancel_on_first;
  rpc_call_set_cbs(t.call, &cbs, &t); /* same state, cancel on the first header */
  assert_true(pump_until(e, &t.done, 3000));
  assert_int_equal(t.code, RPC_CANCELLED);
  assert_int_equal(t.msgs, 1);
  uint64_t until = fd_now_ms() + 2000;
  while (atomic_load(&stream_closed_code) < 0 && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  assert_int_equal(atomic_load(&stream_closed_code), RPC_CANCELLED);
  assert_int_equal(ping_once(e, tc.c, 9), RPC_OK);
  rpc_engine_destroy(e);
  test_server_stop(&s);
  assert_int_equal(s.stats.cancels, 1);
  assert_int_equal(s.stats.protocol_errors, 0);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_cancel)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
