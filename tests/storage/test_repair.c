/* test_repair.c — scrub marks rotten chunks bad; st_chunk_repair rewrites them in place (verified, durable, exact size) and clears the mark. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fd_assert.h"
#include "st_test_util.h"

#define CS (64u * 1024u)
#define CHUNKS 17u
#define SIZE ((CHUNKS - 1u) * CS + 1000u) /* a short last chunk (1000 bytes) */

/* Fails one kind of operation once (below the store, as a disk would). */
typedef struct fault {
  st_io_kind_t kind;
  int err;
  int count;
} fault_t;
static fault_t g_fault;

static int inject(void *arg, st_io_kind_t kind, uint32_t chunk) {
  (void)chunk;
  fault_t *f = arg;
  if (f->count <= 0 || kind != f->kind) return 0;
  f->count--;
  return f->err;
}

static void flip(const st_env_t *e, uint64_t off, const uint8_t *d) {
  char path[600];
  snprintf(path, sizeof(path), "%s/FileR/v1", e->cfg.data_dir);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, (long)off, SEEK_SET);
  fputc(d[off] ^ 0x40, f);
  fclose(f);
}

static int scrub_wait(st_env_t *e, st_version_t *v) {
  st_wait_t w = {0};
  assert_int_equal(st_scrub(v, 0, NULL, st_wait_cb, &w), 0);
  assert_int_equal(st_run_until(&e->ring, &w.done), 0);
  return w.res;
}

/* Repairs chunk i of v from data (or from a damaged copy): the done result,
 * or the synchronous refusal. */
static int repair_wait(st_env_t *e, st_version_t *v, const uint8_t *data, uint32_t i,
                       bool damage) {
  uint32_t len = st_manifest_chunk_len(st_version_manifest(v), i);
  uint8_t *buf = fd_pool_get(e->pool);
  assert_non_null(buf);
  memcpy(buf, data + (size_t)i * CS, len);
  if (damage) buf[len / 2] ^= 1;
  st_wait_t w = {0};
  int rc = st_chunk_repair(v, i, buf, len, st_wait_cb, &w);
  if (rc == 0) {
    assert_int_equal(st_run_until(&e->ring, &w.done), 0);
    assert_int_equal(w.calls, 1);
    rc = w.res;
  }
  fd_pool_put(e->pool, buf);
  return rc;
}

static void test_scrub_marks_and_repair_clears(void **state) {
  (void)state;
  st_env_t e;
  int rc = st_env_init(&e, CS, 8);
  if (rc == 77) skip();
  assert_int_equal(rc, 0);
  uint8_t *d = malloc(SIZE);
  st_fill(d, SIZE, 11);
  assert_int_equal(st_store_all(&e, "FileR", 1, d, SIZE, CS), 0);
  st_version_t *v;
  assert_int_equal(st_version_open(e.store, "FileR", 1, &v), 0);
  assert_int_equal(st_version_bad(v), 0);
  assert_int_equal(scrub_wait(&e, v), 0);

  /* Rot in chunk 5 and in the short last chunk. */
  flip(&e, 5u * CS + 777u, d);
  flip(&e, (CHUNKS - 1u) * CS + 999u, d);
  assert_int_equal(scrub_wait(&e, v), 2);
  assert_int_equal(st_version_bad(v), 2);
  assert_false(st_version_has(v, 5));
  assert_false(st_version_has(v, CHUNKS - 1));
  assert_true(st_version_has(v, 4));
  /* A second pass reports them again but does not count them twice. */
  assert_int_equal(scrub_wait(&e, v), 2);
  assert_int_equal(st_version_bad(v), 2);
  assert_int_equal(st_chunk_mark_bad(v, 5), -EALREADY);

  /* A wrong copy is refused before anything is written. */
  uint64_t rejected = st_store_stats(e.store)->chunks_rejected;
  assert_int_equal(repair_wait(&e, v, d, 5, true), -EBADMSG);
  assert_int_equal(st_store_stats(e.store)->chunks_rejected, rejected + 1);
  assert_int_equal(st_version_bad(v), 2);
  /* A chunk that is not bad is not rewritten; out of range; wrong length. */
  assert_int_equal(repair_wait(&e, v, d, 4, false), -EALREADY);
  uint8_t *buf = fd_pool_get(e.pool);
  st_wait_t w = {0};
  assert_int_equal(st_chunk_repair(v, CHUNKS, buf, CS, st_wait_cb, &w), -ERANGE);
  assert_int_equal(st_chunk_repair(v, 5, buf, CS - 1, st_wait_cb, &w), -EMSGSIZE);
  uint8_t outside[16];
  assert_int_equal(st_chunk_repair(v, 5, outside, CS, st_wait_cb, &w), -EINVAL);
  fd_pool_put(e.pool, buf);
  assert_false(w.done);

  /* The good copies: each is back, durable, the file exactly as published. */
  assert_int_equal(repair_wait(&e, v, d, 5, false), 0);
  assert_true(st_version_has(v, 5));
  assert_int_equal(st_version_bad(v), 1);
  assert_int_equal(repair_wait(&e, v, d, CHUNKS - 1, false), 0);
  assert_int_equal(st_version_bad(v), 0);
  assert_int_equal(st_store_stats(e.store)->chunks_repaired, 2);
  assert_true(st_file_equals(&e, "FileR", "v1", d, SIZE));
  assert_true(st_file_equals(&e, "FileR", "current", d, SIZE));
  assert_int_equal(scrub_wait(&e, v), 0);
  st_close_wait(&e, v);

  /* A fresh handle (a restart) reads the repaired bytes from disk. */
  assert_int_equal(st_env_reopen(&e), 0);
  assert_int_equal(st_version_open(e.store, "FileR", 1, &v), 0);
  assert_int_equal(scrub_wait(&e, v), 0);
  assert_int_equal(st_chunk_mark_bad(v, CHUNKS), -ERANGE);
  st_close_wait(&e, v);
  free(d);
  st_env_fini(&e);
}

/* A version still being received has no bad marks: it has missing chunks. */
static void test_mark_needs_complete(void **state) {
  (void)state;
  st_env_t e;
  int rc = st_env_init(&e, CS, 8);
  if (rc == 77) skip();
  assert_int_equal(rc, 0);
  uint8_t *d = malloc(SIZE);
  st_fill(d, SIZE, 12);
  uint8_t *enc;
  size_t len;
  assert_int_equal(st_make_manifest(&e, "FileR", 1, d, SIZE, CS, &enc, &len), 0);
  st_version_t *v;
  assert_int_equal(st_version_begin(e.store, enc, len, &v), 0);
  free(enc);
  assert_int_equal(st_put_wait(&e, v, d, 0), 0);
  assert_int_equal(st_chunk_mark_bad(v, 0), -EINVAL);
  uint8_t *buf = fd_pool_get(e.pool);
  memcpy(buf, d, CS);
  st_wait_t w = {0};
  assert_int_equal(st_chunk_repair(v, 0, buf, CS, st_wait_cb, &w), -EINVAL);
  fd_pool_put(e.pool, buf);
  st_close_wait(&e, v);
  free(d);
  st_env_fini(&e);
}

/* A write or fdatasync that fails leaves the chunk marked bad (never a
 * chunk counted good that is not durable); the next attempt succeeds. */
static void test_repair_io_errors(void **state) {
  (void)state;
  st_env_t e;
  int rc = st_env_init(&e, CS, 8);
  if (rc == 77) skip();
  assert_int_equal(rc, 0);
  e.cfg.fault = inject;
  e.cfg.fault_arg = &g_fault;
  assert_int_equal(st_env_reopen(&e), 0);
  g_fault = (fault_t){0};
  uint8_t *d = malloc(SIZE);
  st_fill(d, SIZE, 13);
  assert_int_equal(st_store_all(&e, "FileR", 1, d, SIZE, CS), 0);
  st_version_t *v;
  assert_int_equal(st_version_open(e.store, "FileR", 1, &v), 0);
  flip(&e, 3u * CS + 1u, d);
  assert_int_equal(scrub_wait(&e, v), 1);
  uint64_t io_errors = st_store_stats(e.store)->io_errors;

  g_fault = (fault_t){.kind = ST_IO_WRITE, .err = -EIO, .count = 1};
  assert_int_equal(repair_wait(&e, v, d, 3, false), -EIO);
  assert_int_equal(st_version_bad(v), 1);
  assert_false(st_version_has(v, 3));
  g_fault = (fault_t){.kind = ST_IO_SYNC, .err = -EIO, .count = 1};
  assert_int_equal(repair_wait(&e, v, d, 3, false), -EIO);
  assert_int_equal(st_version_bad(v), 1);
  assert_false(st_version_has(v, 3));
  assert_int_equal(st_store_stats(e.store)->io_errors, io_errors + 2);

  assert_int_equal(repair_wait(&e, v, d, 3, false), 0);
  assert_int_equal(st_version_bad(v), 0);
  assert_true(st_file_equals(&e, "FileR", "v1", d, SIZE));
  st_close_wait(&e, v);
  free(d);
  st_env_fini(&e);
}

int main(void) {
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) return 77;
  fd_ring_deinit(&probe);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_scrub_marks_and_repair_clears),
                                     cmocka_unit_test(test_mark_needs_complete),
                                     cmocka_unit_test(test_repair_io_errors)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
