/* test_store.c — chunk puts, bitmap persistence across reopen, completion, and every put/begin error path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "st_test_util.h"

#define CS (64u * 1024u)
#define SIZE (10u * CS + 1234u) /* 11 chunks, the last one short */

static uint8_t data[SIZE];

static int setup(void **state) {
  st_env_t *e = calloc(1, sizeof(*e));
  int rc = st_env_init(e, CS, 8);
  assert_int_equal(rc, 0);
  st_fill(data, SIZE, 42);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  st_env_t *e = *state;
  st_env_fini(e);
  free(e);
  return 0;
}

static st_version_t *begin(st_env_t *e, uint64_t version) {
  uint8_t *enc;
  size_t len;
  assert_int_equal(st_make_manifest(e, "FileA", version, data, SIZE, CS, &enc, &len), 0);
  st_version_t *v = NULL;
  assert_int_equal(st_version_begin(e->store, enc, len, &v), 0);
  free(enc);
  return v;
}

static void test_bitmap_persists_and_completes(void **state) {
  st_env_t *e = *state;
  st_version_t *v = begin(e, 1);
  assert_int_equal(st_version_missing(v), 11);
  for (uint32_t i = 0; i < 11; i += 2) assert_int_equal(st_put_wait(e, v, data, i), 0);
  assert_int_equal(st_version_missing(v), 5);
  assert_int_equal(st_store_stats(e->store)->chunks_written, 6);
  /* Not complete yet: refused, nothing moves. */
  st_wait_t w = {0};
  assert_int_equal(st_version_complete(v, st_wait_cb, &w), -EAGAIN);
  /* Once the bitmap write has landed, the file already holds the bits
   * (before any close-time flush): chunks 0 2 4 6 8 10. */
  while (st_store_inflight(e->store)) fd_ring_run_once(&e->ring, 1, 0);
  char bpath[600];
  snprintf(bpath, sizeof(bpath), "%s/FileA/v1.bitmap", e->cfg.data_dir);
  FILE *f = fopen(bpath, "rb");
  assert_non_null(f);
  uint8_t disk[2];
  assert_int_equal(fseek(f, 64, SEEK_SET), 0);
  assert_int_equal(fread(disk, 1, 2, f), 2);
  fclose(f);
  assert_int_equal(disk[0], 0x55);
  assert_int_equal(disk[1], 0x05);
  st_close_wait(e, v);
  assert_int_equal(st_env_reopen(e), 0);
  v = begin(e, 1);
  assert_int_equal(st_version_missing(v), 5);
  for (uint32_t i = 0; i < 11; i++) assert_int_equal(st_version_has(v, i), i % 2 == 0);
  /* A chunk already present is not written again. */
  uint8_t *buf = fd_pool_get(e->pool);
  memcpy(buf, data, CS);
  assert_int_equal(st_chunk_put(v, 0, buf, CS, st_wait_cb, &w), -EALREADY);
  fd_pool_put(e->pool, buf);
  for (uint32_t i = 1; i < 11; i += 2) assert_int_equal(st_put_wait(e, v, data, i), 0);
  assert_int_equal(st_version_missing(v), 0);
  assert_int_equal(st_complete_wait(e, v), 0);
  assert_true(st_version_is_complete(v));
  assert_int_equal(st_version_complete(v, st_wait_cb, &w), -EALREADY);
  st_close_wait(e, v);
  /* v1 exact, bitmap and partial gone, current -> v1. */
  assert_true(st_file_equals(e, "FileA", "v1", data, SIZE));
  assert_true(st_file_equals(e, "FileA", "current", data, SIZE));
  char path[600];
  struct stat st;
  snprintf(path, sizeof(path), "%s/FileA/v1.partial", e->cfg.data_dir);
  assert_int_not_equal(stat(path, &st), 0);
  snprintf(path, sizeof(path), "%s/FileA/v1.bitmap", e->cfg.data_dir);
  assert_int_not_equal(stat(path, &st), 0);
  uint64_t cur;
  assert_int_equal(st_current(e->store, "FileA", &cur), 0);
  assert_int_equal(cur, 1);
  /* Begin on a complete version opens it as complete. */
  v = begin(e, 1);
  assert_true(st_version_is_complete(v));
  assert_int_equal(st_version_missing(v), 0);
  /* And it reads back verified. */
  buf = fd_pool_get(e->pool);
  w = (st_wait_t){0};
  assert_int_equal(st_chunk_read(v, 10, buf, st_wait_cb, &w), 0);
  assert_int_equal(st_run_until(&e->ring, &w.done), 0);
  assert_int_equal(w.res, 1234);
  assert_memory_equal(buf, data + 10 * CS, 1234);
  assert_int_equal(st_chunk_read(v, 11, buf, st_wait_cb, &w), -ERANGE);
  fd_pool_put(e->pool, buf);
  st_close_wait(e, v);
}

static void test_put_rejects(void **state) {
  st_env_t *e = *state;
  st_version_t *v = begin(e, 1);
  uint8_t *buf = fd_pool_get(e->pool);
  st_wait_t w = {0};
  memcpy(buf, data, CS);
  assert_int_equal(st_chunk_put(v, 11, buf, CS, st_wait_cb, &w), -ERANGE);
  assert_int_equal(st_chunk_put(v, 99999, buf, CS, st_wait_cb, &w), -ERANGE);
  assert_int_equal(st_chunk_put(v, 0, buf, CS - 1, st_wait_cb, &w), -EMSGSIZE);
  assert_int_equal(st_chunk_put(v, 10, buf, CS, st_wait_cb, &w), -EMSGSIZE);
  /* One flipped bit: CRC32C catches it. */
  buf[100] ^= 0x01;
  assert_int_equal(st_chunk_put(v, 0, buf, CS, st_wait_cb, &w), -EBADMSG);
  assert_int_equal(st_store_stats(e->store)->chunks_rejected, 1);
  /* Chunk 1's bytes where chunk 0 goes. */
  memcpy(buf, data + CS, CS);
  assert_int_equal(st_chunk_put(v, 0, buf, CS, st_wait_cb, &w), -EBADMSG);
  assert_int_equal(st_store_stats(e->store)->chunks_rejected, 2);
  /* A buffer that is not from the pool. */
  static uint8_t stray[CS] __attribute__((aligned(4096)));
  memcpy(stray, data, CS);
  assert_int_equal(st_chunk_put(v, 0, stray, CS, st_wait_cb, &w), -EINVAL);
  assert_int_equal(w.calls, 0); /* no callback for a synchronous error */
  assert_int_equal(st_version_missing(v), 11);
  /* Nothing stored was damaged: the chunk goes in fine afterwards. */
  fd_pool_put(e->pool, buf);
  assert_int_equal(st_put_wait(e, v, data, 0), 0);
  st_close_wait(e, v);
}

static void test_sha_checked_after_crc(void **state) {
  st_env_t *e = *state;
  /* A validly signed manifest whose chunk 0 SHA-256 does not match the data
   * while its CRC32C does: only the SHA-256 check can reject the chunk. */
  st_manifest_t *m;
  assert_int_equal(st_manifest_new("FileA", 1, 0, SIZE, CS, &m), 0);
  for (uint32_t i = 0; i < m->chunk_count; i++)
    st_manifest_set_chunk(m, i, data + (size_t)i * CS, st_manifest_chunk_len(m, i));
  m->chunk_sha256[0] ^= 0x80;
  assert_int_equal(st_manifest_sign(m, &e->key), 0);
  uint8_t *enc;
  size_t len;
  assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
  st_manifest_free(m);
  st_version_t *v;
  assert_int_equal(st_version_begin(e->store, enc, len, &v), 0);
  free(enc);
  assert_int_equal(st_put_wait(e, v, data, 0), -EBADMSG);
  assert_int_equal(st_store_stats(e->store)->chunks_rejected, 1);
  assert_int_equal(st_put_wait(e, v, data, 1), 0);
  assert_false(st_version_has(v, 0));
  assert_true(st_version_has(v, 1));
  st_close_wait(e, v);
}

static void test_queue_full(void **state) {
  st_env_t *e = *state;
  st_version_t *v = begin(e, 1);
  st_wait_t w[8] = {{0}};
  uint8_t *bufs[8];
  /* queue_depth is 8: the ninth put waits its turn. */
  for (uint32_t i = 0; i < 8; i++) {
    bufs[i] = fd_pool_get(e->pool);
    memcpy(bufs[i], data + (size_t)i * CS, CS);
    assert_int_equal(st_chunk_put(v, i, bufs[i], CS, st_wait_cb, &w[i]), 0);
  }
  assert_int_equal(st_chunk_put(v, 8, bufs[0], CS, st_wait_cb, &w[0]), -EAGAIN);
  /* A chunk with a put in flight is not taken twice. */
  for (uint32_t i = 0; i < 8; i++) assert_int_equal(st_run_until(&e->ring, &w[i].done), 0);
  for (uint32_t i = 0; i < 8; i++) {
    assert_int_equal(w[i].res, 0);
    assert_int_equal(w[i].calls, 1);
    fd_pool_put(e->pool, bufs[i]);
  }
  assert_int_equal(st_version_missing(v), 3);
  while (st_store_inflight(e->store)) fd_ring_run_once(&e->ring, 1, 0);
  st_close_wait(e, v);
}

/* st_chunk_put_written: written runs once the write is over and before the
 * chunk is present; the buffer is the caller's from then on (scribbled over
 * here), and what reaches the disk is still the chunk. */
typedef struct put_w {
  st_version_t *v;
  uint32_t index;
  uint8_t *buf;
  bool written, present_at_written, done_before_written;
  st_wait_t done;
} put_w_t;

static void on_put_written(void *arg, int res) {
  put_w_t *p = arg;
  assert_int_equal(res, 0);
  p->written = true;
  p->present_at_written = st_version_has(p->v, p->index);
  p->done_before_written = p->done.done;
  memset(p->buf, 0xA5, CS); /* ours again */
}

static void on_put_durable(void *arg, int res) { st_wait_cb(&((put_w_t *)arg)->done, res); }

static void test_put_written_before_durable(void **state) {
  st_env_t *e = *state;
  st_version_t *v = begin(e, 1);
  const st_manifest_t *m = st_version_manifest(v);
  for (uint32_t i = 0; i < m->chunk_count; i++) {
    put_w_t p = {.v = v, .index = i, .buf = fd_pool_get(e->pool)};
    uint32_t len = st_manifest_chunk_len(m, i);
    memcpy(p.buf, data + (size_t)i * CS, len);
    assert_int_equal(st_chunk_put_written(v, i, p.buf, len, on_put_written, on_put_durable, &p), 0);
    assert_int_equal(st_run_until(&e->ring, &p.done.done), 0);
    assert_true(p.written);
    assert_false(p.present_at_written);
    assert_false(p.done_before_written);
    assert_int_equal(p.done.res, 0);
    assert_true(st_version_has(v, i));
    fd_pool_put(e->pool, p.buf);
  }
  assert_int_equal(st_complete_wait(e, v), 0);
  st_close_wait(e, v);
  assert_true(st_file_equals(e, "FileA", "v1", data, SIZE));
}

static void test_begin_rejects(void **state) {
  st_env_t *e = *state;
  st_version_t *v;
  const uint8_t junk[] = {1, 2, 3, 4, 5};
  assert_int_equal(st_version_begin(e->store, junk, sizeof(junk), &v), -EBADMSG);
  /* Unsigned manifest. */
  st_manifest_t *m;
  assert_int_equal(st_manifest_new("FileA", 1, 0, SIZE, CS, &m), 0);
  for (uint32_t i = 0; i < m->chunk_count; i++)
    st_manifest_set_chunk(m, i, data + (size_t)i * CS, st_manifest_chunk_len(m, i));
  uint8_t *enc;
  size_t len;
  assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
  assert_int_equal(st_version_begin(e->store, enc, len, &v), -EKEYREJECTED);
  free(enc);
  /* Signed by a key that is not trusted. */
  fd_ed25519_key_t other;
  assert_int_equal(fd_ed25519_generate(&other), 0);
  assert_int_equal(st_manifest_sign(m, &other), 0);
  assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
  assert_int_equal(st_version_begin(e->store, enc, len, &v), -EKEYREJECTED);
  free(enc);
  /* Forged: the trusted key's signature over different content. */
  assert_int_equal(st_manifest_sign(m, &e->key), 0);
  m->chunk_crc32c[3] ^= 1;
  assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
  assert_int_equal(st_version_begin(e->store, enc, len, &v), -EKEYREJECTED);
  free(enc);
  st_manifest_free(m);
  /* Nothing was created for any of them. */
  uint64_t list[4];
  assert_int_equal(st_versions(e->store, "FileA", list, 4), 0);
  /* Opened twice: refused. */
  st_version_t *v1 = begin(e, 1);
  assert_int_equal(st_make_manifest(e, "FileA", 1, data, SIZE, CS, &enc, &len), 0);
  assert_int_equal(st_version_begin(e->store, enc, len, &v), -EBUSY);
  free(enc);
  st_close_wait(e, v1);
  /* A different manifest for a version already complete. */
  assert_int_equal(st_store_all(e, "FileC", 1, data, SIZE, CS), 0);
  assert_int_equal(st_manifest_new("FileC", 1, 0, SIZE, CS, &m), 0);
  for (uint32_t i = 0; i < m->chunk_count; i++)
    st_manifest_set_chunk(m, i, data + (size_t)i * CS, st_manifest_chunk_len(m, i));
  m->created_unix_s = 1; /* same data, different manifest */
  assert_int_equal(st_manifest_sign(m, &e->key), 0);
  assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
  st_manifest_free(m);
  assert_int_equal(st_version_begin(e->store, enc, len, &v), -EEXIST);
  free(enc);
  assert_true(st_file_equals(e, "FileC", "current", data, SIZE));
  /* Chunks larger than the pool's buffers. */
  uint8_t *big = calloc(1, 2 * 128 * 1024);
  assert_int_equal(st_make_manifest(e, "FileB", 1, big, 2 * 128 * 1024, 128 * 1024, &enc, &len), 0);
  assert_int_equal(st_version_begin(e->store, enc, len, &v), -EINVAL);
  free(enc);
  free(big);
}

static void on_io(void *arg, const fd_io_event_t *ev) {
  (void)ev;
  ++*(int *)arg;
}

/* The io hook must be the ring's too: a store reporting only half its disk
 * changes would let a crash test pass that should not. */
static void test_io_hook_must_be_the_rings(void **state) {
  st_env_t *e = *state;
  int seen = 0;
  fd_io_hook_t hook = {.done = on_io, .arg = &seen};
  st_config_t cfg = e->cfg;
  st_store_t *s = NULL;
  cfg.io_hook = &hook;
  assert_int_equal(st_store_open(&cfg, &s), -EINVAL);
  cfg.io_hook = NULL;
  fd_ring_set_io_hook(&e->ring, &hook);
  assert_int_equal(st_store_open(&cfg, &s), -EINVAL);
  cfg.io_hook = &hook;
  assert_int_equal(st_store_open(&cfg, &s), 0);
  st_store_close(s);
  fd_ring_set_io_hook(&e->ring, NULL);
  assert_int_equal(seen, 1); /* the data dir's mkdir: it exists (-EEXIST) */
}

int main(void) {
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) return 77;
  fd_ring_deinit(&probe);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_bitmap_persists_and_completes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_rejects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sha_checked_after_crc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_written_before_durable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_begin_rejects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_io_hook_must_be_the_rings, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
