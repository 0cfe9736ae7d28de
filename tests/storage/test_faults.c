/* test_faults.c — EIO and ENOSPC injected below the store (kernel-completed NOPs): clean errors, nothing damaged, store reopens. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "st_test_util.h"

#define CS (64u * 1024u)
#define SIZE (6u * CS + 777u) /* 7 chunks */

static uint8_t data[SIZE];

/* Fails operations of one kind (and chunk, or any chunk if chunk < 0) with err,
 * `count` times. */
typedef struct fault {
  st_io_kind_t kind;
  int64_t chunk;
  int err;
  int count;
  int skip; /* matching operations let through before the first failure */
  int hits;
} fault_t;

static int inject(void *arg, st_io_kind_t kind, uint32_t chunk) {
  fault_t *f = arg;
  if (f->count <= 0 || kind != f->kind || (f->chunk >= 0 && (uint32_t)f->chunk != chunk)) return 0;
  if (f->skip > 0) {
    f->skip--;
    return 0;
  }
  f->count--;
  f->hits++;
  return f->err;
}

static fault_t g_fault;

static int setup(void **state) {
  st_env_t *e = calloc(1, sizeof(*e));
  assert_int_equal(st_env_init(e, CS, 8), 0);
  /* Re-open with the fault hook installed. */
  e->cfg.fault = inject;
  e->cfg.fault_arg = &g_fault;
  assert_int_equal(st_env_reopen(e), 0);
  g_fault = (fault_t){0};
  st_fill(data, SIZE, 7);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  st_env_t *e = *state;
  st_env_fini(e);
  free(e);
  return 0;
}

static st_version_t *begin(st_env_t *e, uint64_t version, const uint8_t *d) {
  uint8_t *enc;
  size_t len;
  assert_int_equal(st_make_manifest(e, "FileA", version, d, SIZE, CS, &enc, &len), 0);
  st_version_t *v = NULL;
  assert_int_equal(st_version_begin(e->store, enc, len, &v), 0);
  free(enc);
  return v;
}

static void test_write_errors(void **state) {
  st_env_t *e = *state;
  st_version_t *v = begin(e, 1, data);
  g_fault = (fault_t){.kind = ST_IO_WRITE, .chunk = 2, .err = -EIO, .count = 1};
  assert_int_equal(st_put_wait(e, v, data, 1), 0);
  assert_int_equal(st_put_wait(e, v, data, 2), -EIO);
  assert_int_equal(g_fault.hits, 1);
  assert_false(st_version_has(v, 2));
  assert_true(st_version_has(v, 1));
  assert_int_equal(st_store_stats(e->store)->io_errors, 1);
  g_fault = (fault_t){.kind = ST_IO_WRITE, .chunk = -1, .err = -ENOSPC, .count = 1};
  assert_int_equal(st_put_wait(e, v, data, 3), -ENOSPC);
  assert_false(st_version_has(v, 3));
  /* The disk is back: the same chunks go in, the version completes intact. */
  for (uint32_t i = 0; i < 7; i++)
    if (!st_version_has(v, i)) assert_int_equal(st_put_wait(e, v, data, i), 0);
  assert_int_equal(st_complete_wait(e, v), 0);
  st_close_wait(e, v);
  assert_true(st_file_equals(e, "FileA", "current", data, SIZE));
}

static void test_sync_error_fails_the_batch(void **state) {
  st_env_t *e = *state;
  st_version_t *v = begin(e, 1, data);
  /* Three writes in flight share one fdatasync; when it fails, none counts. */
  g_fault = (fault_t){.kind = ST_IO_SYNC, .chunk = -1, .err = -EIO, .count = 1};
  st_wait_t w[3] = {{0}};
  uint8_t *bufs[3];
  for (uint32_t i = 0; i < 3; i++) {
    bufs[i] = fd_pool_get(e->pool);
    memcpy(bufs[i], data + (size_t)i * CS, CS);
    assert_int_equal(st_chunk_put(v, i, bufs[i], CS, st_wait_cb, &w[i]), 0);
  }
  for (uint32_t i = 0; i < 3; i++) assert_int_equal(st_run_until(&e->ring, &w[i].done), 0);
  int failed = 0;
  for (uint32_t i = 0; i < 3; i++) {
    fd_pool_put(e->pool, bufs[i]);
    if (w[i].res == -EIO) {
      failed++;
      assert_false(st_version_has(v, i));
    } else {
      assert_int_equal(w[i].res, 0);
      assert_true(st_version_has(v, i));
    }
  }
  assert_true(failed >= 1);
  assert_int_equal(st_version_missing(v), 7u - (3u - (uint32_t)failed));
  st_close_wait(e, v);
  /* Reopen: exactly the chunks that were reported durable are present. */
  assert_int_equal(st_env_reopen(e), 0);
  v = begin(e, 1, data);
  assert_int_equal(st_version_missing(v), 7u - (3u - (uint32_t)failed));
  st_close_wait(e, v);
}

static void test_complete_error_keeps_old_current(void **state) {
  st_env_t *e = *state;
  assert_int_equal(st_store_all(e, "FileA", 1, data, SIZE, CS), 0);
  static uint8_t d[10][SIZE];
  /* Fail the k-th metadata step of the completion sequence, for every k. */
  for (int k = 0; k < 9; k++) {
    uint64_t ver = 2 + (uint64_t)k;
    memcpy(d[k], data, SIZE);
    d[k][k * 100] ^= 0xff;
    st_version_t *v = begin(e, ver, d[k]);
    for (uint32_t i = 0; i < 7; i++) assert_int_equal(st_put_wait(e, v, d[k], i), 0);
    while (st_version_inflight(v)) fd_ring_run_once(&e->ring, 1, 0);
    g_fault = (fault_t){.kind = ST_IO_META, .chunk = -1, .err = -EIO, .count = 1, .skip = k};
    st_wait_t w = {0};
    assert_int_equal(st_version_complete(v, st_wait_cb, &w), 0);
    assert_int_equal(st_run_until(&e->ring, &w.done), 0);
    assert_int_equal(g_fault.hits, 1);
    assert_int_equal(w.res, -EIO);
    /* `current` names a whole version: the previous one, or (failure after
     * the switch) this one, never a torn file. */
    uint64_t cur;
    assert_int_equal(st_current(e->store, "FileA", &cur), 0);
    assert_true(cur == ver - 1 || cur == ver);
    const uint8_t *want = cur == 1 ? data : d[cur - 2];
    assert_true(st_file_equals(e, "FileA", "current", want, SIZE));
    /* Begin again (as after a restart): it finishes the job. */
    st_close_wait(e, v);
    v = begin(e, ver, d[k]);
    if (!st_version_is_complete(v)) assert_int_equal(st_complete_wait(e, v), 0);
    st_close_wait(e, v);
    assert_int_equal(st_current(e->store, "FileA", &cur), 0);
    assert_int_equal(cur, ver);
    assert_true(st_file_equals(e, "FileA", "current", d[k], SIZE));
  }
  assert_true(st_file_equals(e, "FileA", "v1", data, SIZE));
}

static void test_read_error(void **state) {
  st_env_t *e = *state;
  assert_int_equal(st_store_all(e, "FileA", 1, data, SIZE, CS), 0);
  st_version_t *v;
  assert_int_equal(st_version_open(e->store, "FileA", 1, &v), 0);
  g_fault = (fault_t){.kind = ST_IO_READ, .chunk = 4, .err = -EIO, .count = 1};
  uint8_t *buf = fd_pool_get(e->pool);
  st_wait_t w = {0};
  assert_int_equal(st_chunk_read(v, 4, buf, st_wait_cb, &w), 0);
  assert_int_equal(st_run_until(&e->ring, &w.done), 0);
  assert_int_equal(w.res, -EIO);
  w = (st_wait_t){0};
  assert_int_equal(st_chunk_read(v, 4, buf, st_wait_cb, &w), 0);
  assert_int_equal(st_run_until(&e->ring, &w.done), 0);
  assert_int_equal(w.res, CS);
  assert_memory_equal(buf, data + 4 * CS, CS);
  fd_pool_put(e->pool, buf);
  st_close_wait(e, v);
  assert_int_equal(st_version_open(e->store, "FileA", 9, &v), -ENOENT);
}

int main(void) {
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) return 77;
  fd_ring_deinit(&probe);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_error_fails_the_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_complete_error_keeps_old_current, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_error, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
