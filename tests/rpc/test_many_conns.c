/* 1,000 concurrent connections to one server engine, each completing a call; and a server short of receive buffers. */
#include <sys/resource.h>

#include "harness.h"

#define N 1000

static void setup(test_server_t *s) { assert_int_equal(rpc_serve_node_ping(s->e, h_ping, NULL), 0); }

static void test_many(void **state) {
  (void)state;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 3 * N) {
    rl.rlim_cur = rl.rlim_max < 3 * N ? rl.rlim_max : 3 * N;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < 2 * N + 64) {
    fprintf(stderr, "RLIMIT_NOFILE %lu too low for %d connections: skipped\n",
            (unsigned long)rl.rlim_cur, N);
    exit(77);
  }
  test_server_t s = {.opts = test_opts(), .setup = setup};
  s.opts.conns_max = N + 16;
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = test_opts();
  o.conns_max = N + 16;
  rpc_engine_t *e = rpc_engine_create(&o);
  assert_non_null(e);
  static test_conn_t tc[N];
  static test_call_t calls[N];
  for (int i = 0; i < N; i++) test_connect(e, port, &tc[i]);
  uint64_t until = fd_now_ms() + 20000;
  int ready = 0;
  while (ready < N && fd_now_ms() < until) {
    rpc_engine_run_once(e, 5);
    ready = 0;
    for (int i = 0; i < N; i++) ready += tc[i].ready;
  }
  assert_int_equal(ready, N);
  /* All connections open at once, a call in flight on each. */
  for (int i = 0; i < N; i++) {
    Node__PingRequest req = NODE__PING_REQUEST__INIT;
    req.nonce = (uint64_t)i + 1;
    calls[i].call = rpc_start_node_ping(tc[i].c, &req, 10000, &tcall_cbs, &calls[i]);
    assert_non_null(calls[i].call);
  }
  int done = 0;
  while (done < N && fd_now_ms() < until) {
    rpc_engine_run_once(e, 5);
    done = 0;
    for (int i = 0; i < N; i++) done += calls[i].done;
  }
  assert_int_equal(done, N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(calls[i].code, RPC_OK);
    assert_int_equal(calls[i].last_u64, (uint64_t)i + 1);
  }
  rpc_stats_t cs;
  rpc_engine_get_stats(e, &cs);
  assert_int_equal(cs.conns_connected, N);
  rpc_engine_destroy(e);
  test_server_stop(&s);
  assert_int_equal(s.stats.conns_accepted, N);
  assert_int_equal(s.stats.calls_served, N);
  assert_int_equal(s.stats.protocol_errors, 0);
}

/* With 4 provided buffers for 64 busy connections, multishot recvs run dry
 * (-ENOBUFS) and are re-armed; every call still completes. */
static void test_short_of_buffers(void **state) {
  (void)state;
  enum { M = 64, ROUNDS = 20 };
  test_server_t s = {.opts = test_opts(), .setup = setup};
  s.opts.rx_bufs = 4;
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = test_opts();
  rpc_engine_t *e = rpc_engine_create(&o);
  static test_conn_t tc[M];
  static test_call_t calls[M];
  for (int i = 0; i < M; i++) test_connect(e, port, &tc[i]);
  uint64_t until = fd_now_ms() + 20000;
  for (int r = 0; r < ROUNDS; r++) {
    int ready = 0;
    while (ready < M && fd_now_ms() < until) {
      rpc_engine_run_once(e, 5);
      ready = 0;
      for (int i = 0; i < M; i++) ready += tc[i].ready;
    }
    assert_int_equal(ready, M);
    for (int i = 0; i < M; i++) {
      memset(&calls[i], 0, sizeof(calls[i]));
      Node__PingRequest req = NODE__PING_REQUEST__INIT;
      req.nonce = (uint64_t)(r * M + i + 1);
      calls[i].call = rpc_start_node_ping(tc[i].c, &req, 10000, &tcall_cbs, &calls[i]);
      assert_non_null(calls[i].call);
    }
    int done = 0;
    while (done < M && fd_now_ms() < until) {
      rpc_engine_run_once(e, 5);
      done = 0;
      for (int i = 0; i < M; i++) done += calls[i].done;
    }
    assert_int_equal(done, M);
    for (int i = 0; i < M; i++) assert_int_equal(calls[i].code, RPC_OK);
  }
  rpc_engine_destroy(e);
  test_server_stop(&s);
  assert_int_equal(s.stats.calls_served, M * ROUNDS);
  assert_true(s.stats.rx_nobufs > 0);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_many),
                                     cmocka_unit_test(test_short_of_buffers)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
