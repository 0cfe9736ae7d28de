/* test_scrub.c — scrub names a chunk with one flipped byte, and keeps its rate limit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fd_time.h"
#include "fd_assert.h"
#include "st_test_util.h"

#define CS (64u * 1024u)
#define SIZE (32u * CS + 10u)

typedef struct bad_list {
  st_wait_t w; /* first: the done callback gets the same pointer */
  uint32_t index[8];
  int err[8];
  int n;
} bad_list_t;

static void on_bad(void *arg, const char *name, uint64_t version, uint32_t index, int err) {
  bad_list_t *b = arg;
  assert_string_equal(name, "FileA");
  assert_int_equal(version, 1);
  if (b->n < 8) {
    b->index[b->n] = index;
    b->err[b->n] = err;
  }
  b->n++;
}

static void test_scrub_finds_flipped_byte(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 8), 0);
  uint8_t *d = malloc(SIZE);
  st_fill(d, SIZE, 5);
  assert_int_equal(st_store_all(&e, "FileA", 1, d, SIZE, CS), 0);
  st_version_t *v;
  assert_int_equal(st_version_open(e.store, "FileA", 1, &v), 0);
  bad_list_t b = {0};
  assert_int_equal(st_scrub(v, 0, on_bad, st_wait_cb, &b), 0);
  assert_int_equal(st_run_until(&e.ring, &b.w.done), 0);
  assert_int_equal(b.w.res, 0);
  assert_int_equal(b.n, 0);
  assert_int_equal(st_store_stats(e.store)->scrub_bytes, SIZE);

  /* One byte flipped in chunk 21, one in the 10-byte last chunk. */
  char path[600];
  snprintf(path, sizeof(path), "%s/FileA/v1", e.cfg.data_dir);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, 21 * CS + 4321, SEEK_SET);
  fputc(d[21 * CS + 4321] ^ 0x10, f);
  fseek(f, 32 * CS + 9, SEEK_SET);
  fputc(d[32 * CS + 9] ^ 0x01, f);
  fclose(f);
  /* Rate-limited to 8 MiB/s: 2 MiB takes at least ~0.25 s. */
  b = (bad_list_t){0};
  uint64_t t0 = fd_now_ns();
  assert_int_equal(st_scrub(v, 8u << 20, on_bad, st_wait_cb, &b), 0);
  assert_int_equal(st_scrub(v, 0, on_bad, st_wait_cb, &b), -EBUSY);
  assert_int_equal(st_run_until(&e.ring, &b.w.done), 0);
  uint64_t took_ms = (fd_now_ns() - t0) / 1000000u;
  assert_true(took_ms >= 200);
  assert_int_equal(b.w.res, 2);
  assert_int_equal(b.n, 2);
  uint32_t lo = FD_MIN(b.index[0], b.index[1]), hi = FD_MAX(b.index[0], b.index[1]);
  assert_int_equal(lo, 21);
  assert_int_equal(hi, 32);
  assert_int_equal(b.err[0], -EBADMSG);
  assert_int_equal(st_store_stats(e.store)->scrub_bad_chunks, 2);
  st_close_wait(&e, v);
  free(d);
  st_env_fini(&e);
}

int main(void) {
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) return 77;
  fd_ring_deinit(&probe);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_scrub_finds_flipped_byte)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
