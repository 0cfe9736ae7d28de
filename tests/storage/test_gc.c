/* test_gc.c — GC keeps the newest K versions and never removes `current`, a delta source, an open version or a .partial. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "st_test_util.h"

#define CS (64u * 1024u)
#define SIZE (4u * CS)

static uint8_t data[6][SIZE];

static bool exists(const st_env_t *e, const char *rel) {
  char path[600];
  struct stat st;
  snprintf(path, sizeof(path), "%s/FileA/%s", e->cfg.data_dir, rel);
  return stat(path, &st) == 0;
}

static void test_gc_rules(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 8), 0);
  for (int i = 0; i < 6; i++) st_fill(data[i], SIZE, (uint64_t)i + 1);
  for (uint64_t v = 1; v <= 4; v++)
    assert_int_equal(st_store_all(&e, "FileA", v, data[v - 1], SIZE, CS), 0);
  uint64_t list[8];
  assert_int_equal(st_versions(e.store, "FileA", list, 8), 4);
  assert_int_equal(list[0], 1);
  assert_int_equal(list[3], 4);

  /* Keep 2 (the default): v1 and v2 go, with their manifests. */
  assert_int_equal(st_gc(e.store, "FileA"), 2);
  assert_false(exists(&e, "v1"));
  assert_false(exists(&e, "v1.manifest"));
  assert_false(exists(&e, "v2"));
  assert_true(exists(&e, "v3"));
  assert_true(exists(&e, "v4"));
  assert_int_equal(st_gc(e.store, "FileA"), 0);

  /* `current` pointed back at v3 (an operator's rollback): with keep 1 it
   * stays. */
  char path[600];
  snprintf(path, sizeof(path), "%s/FileA/current", e.cfg.data_dir);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(symlink("v3", path), 0);
  e.cfg.versions_kept = 1;
  assert_int_equal(st_env_reopen(&e), 0);
  assert_int_equal(st_gc(e.store, "FileA"), 0);
  assert_true(exists(&e, "v3"));
  assert_int_equal(unlink(path), 0);
  assert_int_equal(symlink("v4", path), 0);

  /* An open version (being served or scrubbed) stays. */
  st_version_t *open3;
  assert_int_equal(st_version_open(e.store, "FileA", 3, &open3), 0);
  assert_int_equal(st_gc(e.store, "FileA"), 0);
  assert_true(exists(&e, "v3"));
  st_close_wait(&e, open3);

  /* A version in progress (v5.partial) is not touched, and a version read
   * as a delta source is pinned while the copy runs. */
  uint8_t *enc;
  size_t len;
  memcpy(data[4], data[2], SIZE); /* v5 = v3's content: all of it reusable */
  assert_int_equal(st_make_manifest(&e, "FileA", 5, data[4], SIZE, CS, &enc, &len), 0);
  st_version_t *v5;
  assert_int_equal(st_version_begin(e.store, enc, len, &v5), 0);
  free(enc);
  st_wait_t w = {0};
  uint64_t reused = 0;
  assert_int_equal(st_version_delta(v5, &reused, st_wait_cb, &w), 0);
  assert_int_equal(st_gc(e.store, "FileA"), 0); /* v3: pinned; v4: current */
  assert_true(exists(&e, "v3"));
  assert_true(exists(&e, "v5.partial"));
  assert_int_equal(st_run_until(&e.ring, &w.done), 0);
  assert_int_equal(reused, SIZE);
  /* The delta finished: v3 is neither pinned nor current nor newest. */
  assert_int_equal(st_gc(e.store, "FileA"), 1);
  assert_false(exists(&e, "v3"));
  assert_true(exists(&e, "v5.partial"));
  assert_true(exists(&e, "v4"));
  assert_int_equal(st_complete_wait(&e, v5), 0);
  st_close_wait(&e, v5);
  assert_int_equal(st_gc(e.store, "FileA"), 1);
  assert_false(exists(&e, "v4"));
  assert_true(st_file_equals(&e, "FileA", "current", data[2], SIZE));
  assert_int_equal(st_gc(e.store, "NoSuchFile"), 0);
  assert_int_equal(st_gc(e.store, "../x"), -EINVAL);
  st_env_fini(&e);
}

/* An explicit keep overrides the configured one (fdadmin gc --keep K). */
static void test_gc_keep_explicit(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 8), 0);
  for (int i = 0; i < 4; i++) st_fill(data[i], SIZE, (uint64_t)i + 11);
  for (uint64_t v = 1; v <= 4; v++)
    assert_int_equal(st_store_all(&e, "FileA", v, data[v - 1], SIZE, CS), 0);
  assert_int_equal(st_gc_keep(e.store, "FileA", 0), -EINVAL);
  assert_int_equal(st_gc_keep(e.store, "FileA", 3), 1); /* v1 goes */
  assert_false(exists(&e, "v1"));
  assert_true(exists(&e, "v2"));
  assert_int_equal(st_gc_keep(e.store, "FileA", 1), 2); /* v2, v3 go; v4 is current */
  assert_false(exists(&e, "v2"));
  assert_false(exists(&e, "v3"));
  assert_true(st_file_equals(&e, "FileA", "current", data[3], SIZE));
  st_env_fini(&e);
}

int main(void) {
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) return 77;
  fd_ring_deinit(&probe);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_gc_rules),
                                     cmocka_unit_test(test_gc_keep_explicit)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
