/* test_store_enospc.c — a full disk under the log: -ENOSPC, no partial record left, the old checkpoint kept (tiny tmpfs; skips without mount rights). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scheduler.h"

static char mnt[256];
static bool mounted;

static int visit_count(void *arg, bool is_checkpoint, const uint8_t *data, size_t len) {
  uint64_t *n = arg;
  if (is_checkpoint) {
    if (len != 8) return -EINVAL;
    memcpy(n, data, 8); /* the checkpoint holds how many records it covers */
    return 0;
  }
  uint64_t i;
  if (len < 8) return -EINVAL;
  memcpy(&i, data, 8);
  if (i != *n) return -EINVAL; /* in order, none missing, none repeated */
  (*n)++;
  return 0;
}

static void test_full_disk(void **state) {
  (void)state;
  int err;
  sch_store_t *st = sch_store_open_dir(mnt, &err);
  assert_non_null(st);
  static uint8_t rec[3000];
  uint64_t acked = 0;
  int rc = 0;
  /* Checkpoint early, so that a failing checkpoint later must keep it. */
  for (; acked < 5; acked++) {
    memcpy(rec, &acked, 8);
    struct iovec iov = {rec, sizeof(rec)};
    assert_int_equal(sch_store_append(st, &iov, 1), 0);
  }
  assert_int_equal(sch_store_checkpoint(st, &acked, 8), 0);
  for (int i = 0; i < 1000; i++) {
    memcpy(rec, &acked, 8);
    struct iovec iov = {rec, sizeof(rec)};
    rc = sch_store_append(st, &iov, 1);
    if (rc) break;
    acked++;
  }
  assert_int_equal(rc, -ENOSPC);
  /* A checkpoint too big for what is left fails and keeps the old one. */
  uint8_t *big = calloc(1, 256 * 1024);
  assert_int_equal(sch_store_checkpoint(st, big, 256 * 1024), -ENOSPC);
  free(big);
  sch_store_close(st);
  /* Reopen: nothing torn, every acknowledged record there. */
  st = sch_store_open_dir(mnt, &err);
  assert_non_null(st);
  assert_int_equal(sch_store_dir_truncated_bytes(st), 0);
  uint64_t n = 0;
  assert_int_equal(sch_store_replay(st, visit_count, &n), 0);
  assert_int_equal(n, acked);
  sch_store_close(st);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(mnt, sizeof(mnt), "%s/fd-enospc-XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(mnt)) return 1;
  if (mount("fd-enospc", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") != 0) {
    fprintf(stderr, "test_store_enospc: cannot mount a tmpfs (%s): skipped\n", strerror(errno));
    rmdir(mnt);
    return 77;
  }
  mounted = true;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_full_disk)};
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  if (mounted && umount2(mnt, MNT_DETACH) != 0) fprintf(stderr, "umount %s failed\n", mnt);
  rmdir(mnt);
  return rc;
}
