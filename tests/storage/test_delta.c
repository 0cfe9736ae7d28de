/* test_delta.c — a version with 1% of its chunks changed needs only those chunks; the rest is copied locally and verified. */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fd_assert.h"
#include "st_test_util.h"

#define CS (64u * 1024u)
#define CHUNKS 400u
#define SIZE ((uint64_t)CHUNKS * CS - 5000u) /* last chunk short */

/* v1 (seeded) stored complete as version 1; v2 = v1 with one byte of each
 * changed chunk flipped, begun as version 2 (its manifest signed). */
static st_version_t *begin_v2(st_env_t *e, uint8_t *v1, uint8_t *v2, int seed,
                              const uint32_t *changed, size_t n) {
  st_fill(v1, SIZE, seed);
  memcpy(v2, v1, SIZE);
  for (size_t i = 0; i < n; i++) v2[(uint64_t)changed[i] * CS + 17] ^= 0x5a;
  assert_int_equal(st_store_all(e, "FileA", 1, v1, SIZE, CS), 0);
  uint8_t *enc;
  size_t len;
  assert_int_equal(st_make_manifest(e, "FileA", 2, v2, SIZE, CS, &enc, &len), 0);
  st_version_t *v;
  assert_int_equal(st_version_begin(e->store, enc, len, &v), 0);
  free(enc);
  return v;
}

static void test_one_percent_changed(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 16), 0);
  uint8_t *v1 = malloc(SIZE), *v2 = malloc(SIZE);
  /* 1% of the chunks (4 of 400) change, one of them the short last one. */
  static const uint32_t changed[4] = {3, 150, 251, CHUNKS - 1};
  st_version_t *v = begin_v2(&e, v1, v2, 11, changed, 4);
  st_wait_t w = {0};
  uint64_t reused = 0;
  assert_int_equal(st_version_delta(v, &reused, st_wait_cb, &w), 0);
  assert_int_equal(st_version_delta(v, &reused, st_wait_cb, &w), -EBUSY);
  assert_int_equal(st_run_until(&e.ring, &w.done), 0);
  assert_int_equal(w.res, 0);
  /* Exactly the changed chunks are left for the network. */
  assert_int_equal(st_version_missing(v), 4u);
  for (size_t i = 0; i < 4u; i++) assert_false(st_version_has(v, changed[i]));
  assert_int_equal(reused, SIZE - 3 * CS - (SIZE - (uint64_t)(CHUNKS - 1) * CS));
  assert_int_equal(st_store_stats(e.store)->chunks_reused, CHUNKS - 4u);
  uint64_t written_before = st_store_stats(e.store)->bytes_written;
  for (size_t i = 0; i < 4u; i++)
    assert_int_equal(st_put_wait(&e, v, v2, changed[i]), 0);
  assert_int_equal(st_complete_wait(&e, v), 0);
  st_close_wait(&e, v);
  assert_true(st_file_equals(&e, "FileA", "current", v2, SIZE));
  /* Only the changed chunks' bytes came from outside. */
  assert_int_equal(st_store_stats(e.store)->bytes_written - written_before,
                   3 * CS + (SIZE - (uint64_t)(CHUNKS - 1) * CS));

  /* A rotten source chunk is not reused: it fails verification and stays
   * missing, so it is fetched instead. (A clone is not read again, so this is
   * the copy path's promise: clones are off for it, whatever the filesystem.) */
  e.cfg.no_clone = true;
  assert_int_equal(st_env_reopen(&e), 0);
  char path[600];
  snprintf(path, sizeof(path), "%s/FileA/v2", e.cfg.data_dir);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, 10 * CS + 99, SEEK_SET);
  fputc(v2[10 * CS + 99] ^ 1, f);
  fclose(f);
  uint8_t *enc;
  size_t len;
  assert_int_equal(st_make_manifest(&e, "FileA", 3, v2, SIZE, CS, &enc, &len), 0);
  assert_int_equal(st_version_begin(e.store, enc, len, &v), 0);
  free(enc);
  w = (st_wait_t){0};
  assert_int_equal(st_version_delta(v, &reused, st_wait_cb, &w), 0);
  assert_int_equal(st_run_until(&e.ring, &w.done), 0);
  /* Chunk 10 is rotten in v2 but intact in v1: whichever source the index
   * picked, the chunk is either copied good or left missing (and counted as
   * rejected), never stored bad. */
  assert_true(st_version_missing(v) <= 1);
  if (st_version_missing(v) == 1) {
    assert_false(st_version_has(v, 10));
    assert_true(st_store_stats(e.store)->chunks_rejected >= 1);
  }
  for (uint32_t i = 0; i < CHUNKS; i++)
    if (!st_version_has(v, i)) assert_int_equal(st_put_wait(&e, v, v2, i), 0);
  assert_int_equal(st_complete_wait(&e, v), 0);
  st_close_wait(&e, v);
  assert_true(st_file_equals(&e, "FileA", "v3", v2, SIZE));
  free(v1);
  free(v2);
  st_env_fini(&e);
}

/* The network's chunks are fetched while the delta copies: st_version_reusing
 * names exactly what the copy still means to bring, the changed chunks stored
 * meanwhile land beside the copy, and the version completes whole. */
static void test_fetch_while_copying(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 16), 0);
  uint8_t *v1 = malloc(SIZE), *v2 = malloc(SIZE);
  static const uint32_t changed[3] = {0, 199, CHUNKS - 1};
  st_version_t *v = begin_v2(&e, v1, v2, 12, changed, 3);
  for (uint32_t i = 0; i < CHUNKS; i++) assert_false(st_version_reusing(v, i)); /* no delta yet */
  st_wait_t w = {0};
  assert_int_equal(st_version_delta(v, NULL, st_wait_cb, &w), 0);
  /* Started, nothing completed yet: every unchanged chunk is the copy's. */
  for (uint32_t i = 0, k = 0; i < CHUNKS; i++) {
    bool is_changed = k < 3u && changed[k] == i;
    if (is_changed) k++;
    assert_int_equal(st_version_reusing(v, i), !is_changed);
  }
  /* The changed chunks arrive while the copy runs. */
  for (size_t i = 0; i < 3u; i++) {
    int rc;
    while ((rc = st_put_wait(&e, v, v2, changed[i])) == -EAGAIN || rc == -ENOBUFS)
      fd_ring_run_once(&e.ring, 1, 0); /* the copy holds every slot or buffer: one completes */
    assert_int_equal(rc, 0);
  }
  assert_false(w.done); /* the copy was still under way */
  assert_int_equal(st_run_until(&e.ring, &w.done), 0);
  assert_int_equal(w.res, 0);
  for (uint32_t i = 0; i < CHUNKS; i++) assert_false(st_version_reusing(v, i));
  assert_int_equal(st_version_missing(v), 0u);
  assert_int_equal(st_complete_wait(&e, v), 0);
  st_close_wait(&e, v);
  assert_true(st_file_equals(&e, "FileA", "current", v2, SIZE));
  free(v1);
  free(v2);
  st_env_fini(&e);
}

int main(void) {
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) return 77;
  fd_ring_deinit(&probe);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_one_percent_changed),
                                     cmocka_unit_test(test_fetch_while_copying)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
