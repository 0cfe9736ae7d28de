/* Deadlines: a call the server never answers ends DEADLINE_EXCEEDED on both sides, and the connection stays usable. */
#include "harness.h"

static _Atomic int hang_closed = -1;

static void hang_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)msg;
  (void)arg;
  atomic_store(&hang_closed, (int)code);
}

/* GetManifest that never answers. */
static int h_hang(rpc_call_t *call, const Node__GetManifestRequest *req, void *ctx) {
  (void)req;
  (void)ctx;
  /* The deadline the client set travelled with the call. */
  uint64_t left = rpc_call_deadline_ns(call) - fd_now_ns();
  assert_true(left > 50ull * 1000000 && left <= 150ull * 1000000);
  rpc_call_cbs_t cbs = {NULL, NULL, NULL, hang_done};
  rpc_call_set_cbs(call, &cbs, NULL);
  return 0;
}

static void setup(test_server_t *s) {
  assert_int_equal(rpc_serve_node_get_manifest(s->e, h_hang, NULL), 0);
  assert_int_equal(rpc_serve_node_ping(s->e, h_ping, NULL), 0);
}

static void test_deadline(void **state) {
  (void)state;
  test_server_t s = {.opts = test_opts(), .setup = setup};
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = test_opts();
  rpc_engine_t *e = rpc_engine_create(&o);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));

  Node__GetManifestRequest req = NODE__GET_MANIFEST_REQUEST__INIT;
  test_call_t t = {0};
  uint64_t t0 = fd_now_ms();
  t.call = rpc_start_node_get_manifest(tc.c, &req, 100, &tcall_cbs, &t);
  assert_non_null(t.call);
  assert_true(pump_until(e, &t.done, 3000));
  uint64_t took = fd_now_ms() - t0;
  assert_int_equal(t.code, RPC_DEADLINE_EXCEEDED);
  assert_true(took >= 100 && took < 1000);
  /* The server learns it too (by the client's cancel or its own deadline). */
  uint64_t until = fd_now_ms() + 2000;
  while (atomic_load(&hang_closed) < 0 && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  int code = atomic_load(&hang_closed);
  assert_true(code == RPC_DEADLINE_EXCEEDED || code == RPC_CANCELLED);

  assert_int_equal(ping_once(e, tc.c, 5), RPC_OK);
  rpc_stats_t cs;
  rpc_engine_get_stats(e, &cs);
  rpc_engine_destroy(e);
  test_server_stop(&s);
  /* Whichever side's tick came first enforced it. */
  assert_true(cs.deadlines + s.stats.deadlines >= 1);
  assert_int_equal(s.stats.protocol_errors, 0);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_deadline)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
