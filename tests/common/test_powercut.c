/* test_powercut.c — the model disk of the crash tests: unsynced writes are kept, lost or torn, synced ones never lost; names need their directory's fsync and survive as a prefix; an fsync covers only what completed before it was submitted; the model matches the real tree. */
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

#include "powercut.h"

#define SEEDS 200

static char root[64], out[96];
static int dfd = -1;

static int setup(void **state) {
  (void)state;
  snprintf(root, sizeof(root), "/var/tmp/fd-pc-model-XXXXXX");
  if (!mkdtemp(root)) return -1;
  char data[80];
  snprintf(data, sizeof(data), "%s/d", root);
  snprintf(out, sizeof(out), "%s.cut", root);
  if (mkdir(data, 0755) != 0) return -1;
  dfd = open(data, O_RDONLY | O_DIRECTORY);
  return dfd >= 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  close(dfd);
  pc_remove_tree(out);
  return pc_remove_tree(root);
}

/* Cuts at point c with seed and returns the bytes of out/d/name (NULL when
 * it does not exist); *len their count. */
static uint8_t *cut_and_read(pc_disk_t *d, uint64_t seed, const char *name, size_t *len) {
  pc_remove_tree(out);
  assert_int_equal(pc_disk_cut(d, seed, out, NULL, NULL), 0);
  char path[200];
  snprintf(path, sizeof(path), "%s/d/%s", out, name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *buf = calloc(1, 1 << 16);
  *len = fread(buf, 1, 1 << 16, f);
  fclose(f);
  return buf;
}

static bool exists(const char *name) {
  char path[200];
  snprintf(path, sizeof(path), "%s/d/%s", out, name);
  struct stat st;
  return lstat(path, &st) == 0;
}

static void test_unsynced_writes_kept_lost_or_torn(void **state) {
  (void)state;
  /* The file and its name are durable before recording starts. */
  int fd = openat(dfd, "f", O_RDWR | O_CREAT, 0644);
  uint8_t a[2048], b[2048];
  memset(a, 'a', sizeof(a));
  memset(b, 'b', sizeof(b));
  assert_int_equal(pwrite(fd, a, sizeof(a), 0), (ssize_t)sizeof(a));
  pc_rec_t *r = pc_rec_create(root);
  assert_non_null(r);
  const fd_io_hook_t *h = pc_rec_hook(r);
  assert_int_equal(fd_io_pwrite(h, fd, b, 1024, 0), 1024); /* synced next */
  assert_int_equal(fd_io_fdatasync(h, fd), 0);
  uint32_t synced = pc_rec_end(r);
  assert_int_equal(fd_io_pwrite(h, fd, b, sizeof(b), 1024), (ssize_t)sizeof(b)); /* never synced */
  assert_null(pc_rec_error(r));
  pc_disk_t *d = pc_disk_create(r);
  pc_disk_advance(d, synced);
  int kept = 0, lost = 0, torn = 0;
  for (uint64_t s = 1; s <= SEEDS; s++) {
    size_t len;
    uint8_t *got = cut_and_read(d, s, "f", &len);
    assert_non_null(got);
    /* The synced write is there whatever happened to the other one. */
    for (size_t i = 0; i < 1024; i++) assert_int_equal(got[i], 'b');
    /* The unsynced one: whole, absent, or some of its 512-byte sectors. */
    size_t bs = 0;
    for (size_t i = 1024; i < len; i++) {
      if (got[i] == 'b') bs++;
      if (i % 512 == 0 || i == 1024) continue;
      assert_int_equal(got[i], got[i - 1]); /* sectors are atomic */
    }
    if (bs == sizeof(b)) kept++;
    else if (bs == 0) lost++;
    else torn++;
    free(got);
  }
  print_message("unsynced write: kept %d, lost %d, torn %d of %d cuts\n", kept, lost, torn, SEEDS);
  assert_true(kept > 0 && lost > 0 && torn > 0);
  /* After the sync nothing is pending: every cut is the same. */
  pc_disk_advance(d, pc_rec_end(r));
  pc_disk_destroy(d);
  pc_rec_destroy(r);
  close(fd);
}

static void test_names_need_the_directory_fsync(void **state) {
  (void)state;
  pc_rec_t *r = pc_rec_create(root);
  const fd_io_hook_t *h = pc_rec_hook(r);
  int fd = fd_io_openat(h, dfd, "a", O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  assert_int_equal(fd_io_write(h, fd, "x", 1), 1);
  assert_int_equal(fd_io_fdatasync(h, fd), 0); /* the data, not the name */
  close(fd);
  fd = fd_io_openat(h, dfd, "b", O_WRONLY | O_CREAT, 0644);
  close(fd);
  uint32_t before_fsync = pc_rec_end(r);
  assert_int_equal(fd_io_fsync(h, dfd), 0);
  assert_int_equal(fd_io_renameat(h, dfd, "a", dfd, "c"), 0);
  assert_null(pc_rec_error(r));
  pc_disk_t *d = pc_disk_create(r);
  pc_disk_advance(d, before_fsync);
  int none = 0, only_a = 0, both = 0;
  for (uint64_t s = 1; s <= SEEDS; s++) {
    size_t len;
    free(cut_and_read(d, s, "a", &len));
    bool a = exists("a"), b = exists("b");
    assert_false(b && !a); /* a prefix: b was created after a */
    none += !a && !b;
    only_a += a && !b;
    both += a && b;
  }
  assert_true(none > 0 && only_a > 0 && both > 0);
  /* After the fsync both are durable; the rename is atomic: a or c, never both or neither. */
  pc_disk_advance(d, pc_rec_end(r));
  int as = 0, cs = 0;
  for (uint64_t s = 1; s <= SEEDS; s++) {
    size_t len;
    free(cut_and_read(d, s, "a", &len));
    assert_true(exists("b"));
    assert_true(exists("a") != exists("c"));
    as += exists("a");
    cs += exists("c");
  }
  assert_true(as > 0 && cs > 0);
  pc_disk_destroy(d);
  pc_rec_destroy(r);
}

/* The ring's ordering, driven by hand: an fsync covers the writes that had
 * completed when it was submitted, not one that completed while it ran. */
static void test_fsync_covers_what_completed_before_it(void **state) {
  (void)state;
  int fd = openat(dfd, "g", O_RDWR | O_CREAT, 0644);
  assert_true(fd >= 0);
  assert_int_equal(fsync(dfd), 0);
  for (int order = 0; order < 2; order++) {
    pc_rec_t *r = pc_rec_create(root);
    const fd_io_hook_t *h = pc_rec_hook(r);
    struct iovec iov = {(void *)"w", 1};
    fd_io_event_t w = {.op = FD_IO_WRITE, .fd = fd, .offset = (uint64_t)order, .iov = &iov,
                       .iovcnt = 1};
    fd_io_event_t s = {.op = FD_IO_FDATASYNC, .fd = fd};
    assert_int_equal(pwrite(fd, "w", 1, order), 1); /* what the kernel did */
    if (order == 0) { /* write and fsync submitted together: not covered */
      h->queued(h->arg, 1, &w);
      h->queued(h->arg, 2, &s);
      h->reaped(h->arg, 1, 1);
      h->reaped(h->arg, 2, 0);
    } else { /* the fsync submitted after the write completed: covered */
      h->queued(h->arg, 1, &w);
      h->reaped(h->arg, 1, 1);
      h->queued(h->arg, 2, &s);
      h->reaped(h->arg, 2, 0);
    }
    h->reaped(h->arg, 3, 0); /* never queued: ignored */
    assert_null(pc_rec_error(r));
    pc_disk_t *d = pc_disk_create(r);
    pc_disk_advance(d, pc_rec_end(r));
    int lost = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
      size_t len;
      uint8_t *got = cut_and_read(d, seed, "g", &len);
      lost += !(len > (size_t)order && got[order] == 'w');
      free(got);
    }
    if (order == 0) assert_true(lost > 0);
    else assert_int_equal(lost, 0);
    pc_disk_destroy(d);
    pc_rec_destroy(r);
  }
  close(fd);
}

static void test_in_flight_at_the_cut(void **state) {
  (void)state;
  int fd = openat(dfd, "h", O_RDWR | O_CREAT, 0644);
  assert_int_equal(fsync(dfd), 0);
  pc_rec_t *r = pc_rec_create(root);
  const fd_io_hook_t *h = pc_rec_hook(r);
  struct iovec iov = {(void *)"i", 1};
  fd_io_event_t w = {.op = FD_IO_WRITE, .fd = fd, .iov = &iov, .iovcnt = 1};
  assert_int_equal(pwrite(fd, "i", 1, 0), 1);
  h->queued(h->arg, 7, &w);
  uint32_t submitted = pc_rec_end(r);
  pc_rec_mark(r, 1, 1); /* something else completes meanwhile */
  h->reaped(h->arg, 7, 1);
  pc_disk_t *d = pc_disk_create(r);
  pc_disk_advance(d, submitted + 1); /* after the marker, before the write's completion */
  int seen = 0;
  for (uint64_t seed = 1; seed <= SEEDS; seed++) {
    size_t len;
    uint8_t *got = cut_and_read(d, seed, "h", &len);
    seen += len == 1;
    free(got);
  }
  assert_true(seen > 0 && seen < SEEDS);
  uint32_t tag;
  uint64_t value;
  assert_true(pc_rec_marker(r, submitted, &tag, &value));
  assert_int_equal(tag, 1);
  pc_disk_destroy(d);
  pc_rec_destroy(r);
  close(fd);
}

static void test_model_matches_the_real_tree(void **state) {
  (void)state;
  pc_rec_t *r = pc_rec_create(root);
  const fd_io_hook_t *h = pc_rec_hook(r);
  assert_int_equal(fd_io_mkdirat(h, dfd, "sub", 0755), 0);
  int fd = fd_io_openat(h, dfd, "sub/k", O_RDWR | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(fd_io_fallocate(h, fd, 0, 8192), 0);
  assert_int_equal(fd_io_pwrite(h, fd, "abc", 3, 5000), 3);
  assert_int_equal(fd_io_ftruncate(h, fd, 6000), 0);
  assert_int_equal(fd_io_symlinkat(h, "sub/k", dfd, "link"), 0);
  assert_int_equal(fd_io_renameat(h, dfd, "link", dfd, "link2"), 0);
  char msg[512];
  char model[120];
  snprintf(model, sizeof(model), "%s.model", root);
  pc_remove_tree(model);
  assert_int_equal(pc_rec_check_model(r, model, msg, sizeof(msg)), 0);
  /* A change the hook did not see is caught. */
  assert_int_equal(pwrite(fd, "zz", 2, 0), 2);
  pc_remove_tree(model);
  assert_int_equal(pc_rec_check_model(r, model, msg, sizeof(msg)), -1);
  print_message("unreported write: %s\n", msg);
  assert_non_null(strstr(msg, "sub/k"));
  /* And a rename across directories is refused, not modelled wrong. */
  assert_int_equal(fd_io_renameat(h, dfd, "link2", dfd, "sub/link3"), 0);
  assert_non_null(strstr(pc_rec_error(r), "across directories"));
  assert_non_null(pc_rec_error(r));
  pc_remove_tree(model);
  close(fd);
  pc_rec_destroy(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unsynced_writes_kept_lost_or_torn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_names_need_the_directory_fsync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fsync_covers_what_completed_before_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_in_flight_at_the_cut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_model_matches_the_real_tree, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
