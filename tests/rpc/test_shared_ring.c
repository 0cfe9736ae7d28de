/* One loop drives both: a disk read queued on the engine's ring (as storage/ does) completes beside rpc calls. */
#include <fcntl.h>
#include <stdlib.h>

#include "harness.h"

typedef struct disk_op {
  fd_op_t op; /* first: its address is the SQE's user_data */
  int res;
  bool done;
} disk_op_t;

static void disk_done(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  disk_op_t *d = (disk_op_t *)op;
  d->res = res;
  d->done = true;
}

static void setup(test_server_t *s) { assert_int_equal(rpc_serve_node_ping(s->e, h_ping, NULL), 0); }

static void test_shared(void **state) {
  (void)state;
  char path[] = "/tmp/fd_rpc_ringXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  char text[4096];
  memset(text, 'q', sizeof(text));
  assert_int_equal(write(fd, text, sizeof(text)), (ssize_t)sizeof(text));

  test_server_t s = {.opts = test_opts(), .setup = setup};
  uint16_t port = test_server_start(&s);
  rpc_engine_opts_t o = test_opts();
  rpc_engine_t *e = rpc_engine_create(&o);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));

  /* A ping in flight and a read on the same ring, reaped by the same loop. */
  test_call_t t = {0};
  Node__PingRequest req = NODE__PING_REQUEST__INIT;
  req.nonce = 11;
  t.call = rpc_start_node_ping(tc.c, &req, 2000, &tcall_cbs, &t);
  assert_non_null(t.call);
  char buf[4096];
  disk_op_t d = {.op = {disk_done}};
  struct io_uring_sqe *sqe = fd_ring_sqe(rpc_engine_ring(e), &d.op);
  assert_non_null(sqe);
  io_uring_prep_read(sqe, fd, buf, sizeof(buf), 0);
  uint64_t until = fd_now_ms() + 3000;
  while (!(t.done && d.done) && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  assert_true(d.done);
  assert_int_equal(d.res, (int)sizeof(buf));
  assert_memory_equal(buf, text, sizeof(buf));
  assert_true(t.done);
  assert_int_equal(t.code, RPC_OK);
  rpc_engine_destroy(e);
  test_server_stop(&s);
  close(fd);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_shared)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
