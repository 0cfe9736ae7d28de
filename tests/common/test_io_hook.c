/* test_io_hook.c — fd_io wrappers and the ring report every disk change to the hook, with its result; a NULL hook reports nothing. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_io.h"
#include "fd_ring.h"

#define SEEN_MAX 32

typedef struct seen {
  fd_io_op_t op;
  int res;
  uint64_t offset, len;
  char name[32], name2[32];
  char bytes[32];
  bool queued;
  uint64_t id;
} seen_t;

typedef struct log {
  seen_t ev[SEEN_MAX];
  int n;
  int reaped_known; /* reaped ids that were queued */
  int reaped_other;
} log_t;

static seen_t *add(log_t *l, const fd_io_event_t *ev) {
  assert_true(l->n < SEEN_MAX);
  seen_t *s = &l->ev[l->n++];
  *s = (seen_t){.op = ev->op, .res = ev->res, .offset = ev->offset, .len = ev->len};
  if (ev->name) snprintf(s->name, sizeof(s->name), "%s", ev->name);
  if (ev->name2) snprintf(s->name2, sizeof(s->name2), "%s", ev->name2);
  if (ev->op == FD_IO_SYMLINK) snprintf(s->name2, sizeof(s->name2), "%s", ev->target);
  size_t k = 0;
  for (int i = 0; i < ev->iovcnt; i++)
    for (size_t j = 0; j < ev->iov[i].iov_len && k + 1 < sizeof(s->bytes); j++)
      s->bytes[k++] = ((const char *)ev->iov[i].iov_base)[j];
  return s;
}

static void on_done(void *arg, const fd_io_event_t *ev) { add(arg, ev); }

static void on_queued(void *arg, uint64_t id, const fd_io_event_t *ev) {
  seen_t *s = add(arg, ev);
  s->queued = true;
  s->id = id;
}

static void on_reaped(void *arg, uint64_t id, int res) {
  log_t *l = arg;
  for (int i = 0; i < l->n; i++) {
    if (l->ev[i].queued && l->ev[i].id == id) {
      l->ev[i].res = res;
      l->reaped_known++;
      return;
    }
  }
  l->reaped_other++;
}

static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/var/tmp/fd-io-hook-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd);
}

static void test_sync_calls_reported(void **state) {
  (void)state;
  log_t l = {0};
  fd_io_hook_t hook = {.done = on_done, .arg = &l};
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  assert_true(dfd >= 0);
  int fd = fd_io_openat(&hook, dfd, "a", O_RDWR | O_CREAT | O_APPEND, 0644);
  assert_true(fd >= 0);
  assert_int_equal(fd_io_write(&hook, fd, "hello", 5), 5);
  char ab[] = "ab", cd[] = "cd";
  struct iovec iov[2] = {{ab, 2}, {cd, 2}};
  assert_int_equal(fd_io_writev(&hook, fd, iov, 2), 4);
  assert_int_equal(fd_io_pwrite(&hook, fd, "Z", 1, 0), 1);
  assert_int_equal(fd_io_ftruncate(&hook, fd, 7), 0);
  assert_int_equal(fd_io_fallocate(&hook, fd, 0, 8192), 0);
  assert_int_equal(fd_io_fdatasync(&hook, fd), 0);
  assert_int_equal(fd_io_renameat(&hook, dfd, "a", dfd, "b"), 0);
  assert_int_equal(fd_io_symlinkat(&hook, "b", dfd, "c"), 0);
  assert_int_equal(fd_io_mkdirat(&hook, dfd, "d", 0755), 0);
  assert_int_equal(fd_io_unlinkat(&hook, dfd, "c", 0), 0);
  assert_int_equal(fd_io_fsync(&hook, dfd), 0);
  /* Errors come back as -errno and are reported as such. */
  assert_int_equal(fd_io_unlinkat(&hook, dfd, "nothing", 0), -ENOENT);
  assert_int_equal(fd_io_openat(&hook, dfd, "x/y", O_CREAT | O_WRONLY, 0644), -ENOENT);
  /* A clone is reported whether or not this filesystem shares blocks. */
  int rw = openat(dfd, "b", O_RDWR);
  assert_true(rw >= 0);
  int rc = fd_io_clone_range(&hook, rw, 4096, rw, 0, 4096);
  assert_true(rc == 0 || rc == -EOPNOTSUPP || rc == -EXDEV || rc == -EINVAL);
  close(rw);
  /* Read-only opens and a NULL hook report nothing. */
  int ro = fd_io_openat(&hook, dfd, "b", O_RDONLY, 0);
  assert_true(ro >= 0);
  close(ro);
  assert_int_equal(fd_io_fsync(NULL, dfd), 0);

  static const fd_io_op_t want[] = {FD_IO_OPEN,      FD_IO_WRITE,     FD_IO_WRITE,  FD_IO_WRITE,
                                    FD_IO_TRUNCATE,  FD_IO_FALLOCATE, FD_IO_FDATASYNC,
                                    FD_IO_RENAME,    FD_IO_SYMLINK,   FD_IO_MKDIR,  FD_IO_UNLINK,
                                    FD_IO_FSYNC,     FD_IO_UNLINK,    FD_IO_OPEN,   FD_IO_CLONE};
  assert_int_equal(l.n, (int)(sizeof(want) / sizeof(want[0])));
  for (int i = 0; i < l.n; i++) assert_int_equal(l.ev[i].op, want[i]);
  assert_int_equal(l.ev[0].res, fd);
  assert_string_equal(l.ev[0].name, "a");
  /* Appends name the offset they landed at. */
  assert_string_equal(l.ev[1].bytes, "hello");
  assert_int_equal(l.ev[1].offset, 0);
  assert_string_equal(l.ev[2].bytes, "abcd");
  assert_int_equal(l.ev[2].offset, 5);
  assert_int_equal(l.ev[3].offset, 0);
  assert_int_equal(l.ev[4].len, 7);
  assert_int_equal(l.ev[5].len, 8192);
  assert_string_equal(l.ev[7].name2, "b");
  assert_string_equal(l.ev[8].name2, "b");
  assert_int_equal(l.ev[12].res, -ENOENT);
  assert_int_equal(l.ev[13].res, -ENOENT);
  assert_int_equal(l.ev[14].len, 4096);
  close(fd);
  close(dfd);
}

typedef struct op {
  fd_op_t op;
  int calls, res;
} op_t;

static void on_complete(fd_op_t *o, int res, uint32_t flags) {
  (void)flags;
  ((op_t *)o)->calls++;
  ((op_t *)o)->res = res;
}

static void test_ring_ops_reported(void **state) {
  (void)state;
  fd_ring_t ring;
  int rc = fd_ring_init(&ring, 8, 0);
  if (rc == -ENOSYS || rc == -EPERM) skip();
  assert_int_equal(rc, 0);
  log_t l = {0};
  fd_io_hook_t hook = {.done = on_done, .queued = on_queued, .reaped = on_reaped, .arg = &l};
  fd_ring_set_io_hook(&ring, &hook);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  int fd = openat(dfd, "r", O_RDWR | O_CREAT, 0644);
  assert_true(dfd >= 0 && fd >= 0);
  op_t w = {.op.complete = on_complete}, s = {.op.complete = on_complete},
       n = {.op.complete = on_complete}, m = {.op.complete = on_complete};
  io_uring_prep_write(fd_ring_sqe(&ring, &w.op), fd, "data", 4, 100);
  io_uring_prep_nop(fd_ring_sqe(&ring, &n.op)); /* changes nothing: not reported */
  while (w.calls + n.calls < 2) assert_true(fd_ring_run_once(&ring, 1, 0) >= 0);
  io_uring_prep_fsync(fd_ring_sqe(&ring, &s.op), fd, IORING_FSYNC_DATASYNC);
  io_uring_prep_renameat(fd_ring_sqe(&ring, &m.op), dfd, "r", dfd, "q", 0);
  while (s.calls + m.calls < 2) assert_true(fd_ring_run_once(&ring, 1, 0) >= 0);
  assert_int_equal(w.res, 4);
  assert_int_equal(l.n, 3);
  assert_true(l.ev[0].queued && l.ev[0].op == FD_IO_WRITE && l.ev[0].offset == 100);
  assert_string_equal(l.ev[0].bytes, "data");
  assert_int_equal(l.ev[0].res, 4);
  assert_int_equal(l.ev[0].id, (uint64_t)(uintptr_t)&w.op);
  assert_int_equal(l.ev[1].op, FD_IO_FDATASYNC);
  assert_int_equal(l.ev[2].op, FD_IO_RENAME);
  assert_string_equal(l.ev[2].name2, "q");
  assert_int_equal(l.reaped_known, 3);
  assert_int_equal(l.reaped_other, 1); /* the NOP */
  /* Without the hook the ring reports nothing. */
  fd_ring_set_io_hook(&ring, NULL);
  io_uring_prep_write(fd_ring_sqe(&ring, &w.op), fd, "more", 4, 0);
  while (w.calls < 2) assert_true(fd_ring_run_once(&ring, 1, 0) >= 0);
  assert_int_equal(l.n, 3);
  close(fd);
  close(dfd);
  fd_ring_deinit(&ring);
}

static void test_copy_range_reported(void **state) {
  (void)state;
  log_t l = {0};
  fd_io_hook_t hook = {.done = on_done, .arg = &l};
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  int src = openat(dfd, "copy-src", O_RDWR | O_CREAT | O_TRUNC, 0644);
  int dst = openat(dfd, "copy-dst", O_RDWR | O_CREAT | O_TRUNC, 0644);
  assert_true(dfd >= 0 && src >= 0 && dst >= 0);
  assert_int_equal(pwrite(src, "0123456789", 10, 0), 10);
  /* Bytes 2..7 of the source at 100 of the destination; then the source's
   * end: 0 bytes, reported too. */
  assert_int_equal(fd_io_copy_range(&hook, dst, 100, src, 2, 6), 6);
  assert_int_equal(fd_io_copy_range(&hook, dst, 0, src, 10, 5), 0);
  assert_int_equal(fd_io_copy_range(&hook, -1, 0, src, 0, 5), -EBADF);
  assert_int_equal(fd_io_copy_range(NULL, dst, 0, src, 0, 2), 2);
  char back[8] = {0};
  assert_int_equal(pread(dst, back, 6, 100), 6);
  assert_string_equal(back, "234567");
  assert_int_equal(l.n, 3);
  for (int i = 0; i < 3; i++) assert_int_equal(l.ev[i].op, FD_IO_COPY);
  assert_int_equal(l.ev[0].res, 6);
  assert_int_equal(l.ev[0].offset, 100);
  assert_int_equal(l.ev[0].len, 6);
  assert_int_equal(l.ev[1].res, 0);
  assert_int_equal(l.ev[2].res, -EBADF);
  close(src);
  close(dst);
  close(dfd);
}

static void test_mkdir_durable(void **state) {
  (void)state;
  log_t l = {0};
  fd_io_hook_t hook = {.done = on_done, .arg = &l};
  char path[128];
  snprintf(path, sizeof(path), "%s/new/", dir);
  /* Made: the parent is fsync'd after, so the name survives a power cut. */
  assert_int_equal(fd_io_mkdir_durable(&hook, path, 0755), 0);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.ev[0].op, FD_IO_MKDIR);
  assert_int_equal(l.ev[1].op, FD_IO_FSYNC);
  assert_int_equal(l.ev[1].res, 0);
  /* There already: nothing else to do. */
  assert_int_equal(fd_io_mkdir_durable(&hook, path, 0755), 0);
  assert_int_equal(l.n, 3);
  assert_int_equal(l.ev[2].res, -EEXIST);
  snprintf(path, sizeof(path), "%s/no/such", dir);
  assert_int_equal(fd_io_mkdir_durable(&hook, path, 0755), -ENOENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sync_calls_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ring_ops_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_copy_range_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mkdir_durable, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
