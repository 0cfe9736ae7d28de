/* rpc_engine_opts.reuseport: two engines listen on one port with it, and the second is refused without it. */
#include "harness.h"

static rpc_engine_t *engine(bool reuseport) {
  rpc_engine_opts_t o = test_opts();
  o.reuseport = reuseport;
  rpc_engine_t *e = rpc_engine_create(&o);
  assert_non_null(e);
  return e;
}

static void test_shared_port(void **state) {
  (void)state;
  rpc_engine_t *a = engine(true), *b = engine(true);
  uint16_t port = 0, port_b = 0;
  assert_int_equal(rpc_listen(a, "127.0.0.1", 0, &port), 0);
  assert_int_not_equal(port, 0);
  assert_int_equal(rpc_listen(b, "127.0.0.1", port, &port_b), 0);
  assert_int_equal(port_b, port);
  rpc_engine_destroy(b);
  rpc_engine_destroy(a);
}

static void test_refused_without(void **state) {
  (void)state;
  rpc_engine_t *a = engine(false), *b = engine(false), *c = engine(true);
  uint16_t port = 0;
  assert_int_equal(rpc_listen(a, "127.0.0.1", 0, &port), 0);
  assert_int_equal(rpc_listen(b, "127.0.0.1", port, NULL), -EADDRINUSE);
  /* both sockets must ask for it: one that did cannot join one that did not */
  assert_int_equal(rpc_listen(c, "127.0.0.1", port, NULL), -EADDRINUSE);
  rpc_engine_destroy(c);
  rpc_engine_destroy(b);
  rpc_engine_destroy(a);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_port),
      cmocka_unit_test(test_refused_without),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
