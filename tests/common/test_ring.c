/* test_ring.c — completions reach their op's callback, after the reap. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_ring.h"

typedef struct test_write {
  fd_op_t op;
  int res;
  int calls;
  fd_ring_t *ring;
  int fd;
  char *buf;
  int chained; /* queue a second write from inside the callback */
} test_write_t;

static void on_write(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  test_write_t *w = (test_write_t *)op;
  w->res = res;
  w->calls++;
  if (w->chained-- > 0) {
    struct io_uring_sqe *sqe = fd_ring_sqe(w->ring, &w->op);
    io_uring_prep_write(sqe, w->fd, w->buf, 5, 5);
  }
}

static void test_ring_write_and_chain(void **state) {
  (void)state;
  fd_ring_t ring;
  int rc = fd_ring_init(&ring, 8, 0);
  if (rc == -ENOSYS || rc == -EPERM) skip();
  assert_int_equal(rc, 0);
  char path[] = "/tmp/fd-test-ring-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  char buf[] = "hello";
  test_write_t w = {.op.complete = on_write, .ring = &ring, .fd = fd, .buf = buf, .chained = 1};
  struct io_uring_sqe *sqe = fd_ring_sqe(&ring, &w.op);
  assert_non_null(sqe);
  io_uring_prep_write(sqe, fd, buf, 5, 0);
  assert_int_equal(ring.inflight, 1);
  while (w.calls < 2) assert_true(fd_ring_run_once(&ring, 1, 0) >= 0);
  assert_int_equal(w.res, 5);
  assert_int_equal(ring.inflight, 0);
  char back[11] = {0};
  assert_int_equal(pread(fd, back, 10, 0), 10);
  assert_string_equal(back, "hellohello");
  /* A bad fd: the error comes back as res, untouched. */
  w.chained = 0;
  sqe = fd_ring_sqe(&ring, &w.op);
  io_uring_prep_write(sqe, -1, buf, 5, 0);
  while (w.calls < 3) assert_true(fd_ring_run_once(&ring, 1, 0) >= 0);
  assert_int_equal(w.res, -EBADF);
  /* Nothing in flight: a timed wait returns -ETIME. */
  assert_int_equal(fd_ring_run_once(&ring, 1, 1000000), -ETIME);
  close(fd);
  unlink(path);
  fd_ring_deinit(&ring);
}

static void test_ring_full_sq_flushes(void **state) {
  (void)state;
  fd_ring_t ring;
  int rc = fd_ring_init(&ring, 4, 0);
  if (rc == -ENOSYS || rc == -EPERM) skip();
  assert_int_equal(rc, 0);
  test_write_t ops[16];
  for (int i = 0; i < 16; i++) {
    ops[i] = (test_write_t){.op.complete = on_write};
    struct io_uring_sqe *sqe = fd_ring_sqe(&ring, &ops[i].op);
    assert_non_null(sqe);
    io_uring_prep_nop(sqe);
  }
  int handled = 0;
  while (ring.inflight > 0) {
    rc = fd_ring_run_once(&ring, 1, 0);
    assert_true(rc >= 0);
    handled += rc;
  }
  assert_int_equal(handled, 16);
  for (int i = 0; i < 16; i++) assert_int_equal(ops[i].calls, 1);
  fd_ring_deinit(&ring);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ring_write_and_chain),
      cmocka_unit_test(test_ring_full_sq_flushes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
