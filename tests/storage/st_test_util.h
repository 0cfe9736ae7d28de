/* st_test_util.h — a store in a fresh temp dir on a real disk, for the storage unit tests. */
#ifndef ST_TEST_UTIL_H
#define ST_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage.h"

typedef struct st_env {
  char dir[256];
  fd_ring_t ring;
  fd_pool_t *pool;
  st_store_t *store;
  st_config_t cfg;
  fd_ed25519_key_t key;
} st_env_t;

typedef struct st_wait {
  bool done;
  int res;
  int calls;
} st_wait_t;

static inline void st_wait_cb(void *arg, int res) {
  st_wait_t *w = arg;
  w->done = true;
  w->res = res;
  w->calls++;
}

/* 0, or 77 when this machine cannot run io_uring/O_DIRECT tests. */
static inline int st_env_init(st_env_t *e, uint32_t chunk_size, uint32_t pool_count) {
  memset(e, 0, sizeof(*e));
  /* /var/tmp: a real disk (O_DIRECT), unlike a tmpfs /tmp on some hosts;
   * FDIST_STORAGE_TEST_DIR: another (merge_clone_test.sh's XFS). */
  const char *base = getenv("FDIST_STORAGE_TEST_DIR");
  snprintf(e->dir, sizeof(e->dir), "%s/fd-st-test-XXXXXX", base && *base ? base : "/var/tmp");
  if (!mkdtemp(e->dir)) return -errno;
  int rc = fd_ring_init(&e->ring, 64, 0);
  if (rc == -ENOSYS || rc == -EPERM) return 77;
  if (rc) return rc;
  e->pool = fd_pool_create(pool_count, chunk_size);
  if (!e->pool) return -ENOMEM;
  if ((rc = fd_ed25519_generate(&e->key)) != 0) return rc;
  st_config_defaults(&e->cfg);
  char data[300];
  snprintf(data, sizeof(data), "%s/data", e->dir);
  e->cfg.data_dir = strdup(data);
  e->cfg.ring = &e->ring;
  e->cfg.pool = e->pool;
  e->cfg.pool_registered = st_register_pool(&e->ring, e->pool) == 0;
  e->cfg.queue_depth = 8;
  e->cfg.have_trusted_key = true;
  memcpy(e->cfg.trusted_pub, e->key.pub, FD_ED25519_PUB_LEN);
  return st_store_open(&e->cfg, &e->store);
}

static inline int st_env_reopen(st_env_t *e) {
  st_store_close(e->store);
  return st_store_open(&e->cfg, &e->store);
}

static inline void st_env_fini(st_env_t *e) {
  if (e->store) st_store_close(e->store);
  fd_ring_deinit(&e->ring);
  fd_pool_destroy(e->pool);
  free((void *)e->cfg.data_dir);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", e->dir);
}

/* Deterministic pseudo-random bytes. */
static inline void st_fill(uint8_t *p, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (uint8_t)x;
  }
}

/* A signed, encoded manifest for data. */
static inline int st_make_manifest(const st_env_t *e, const char *name, uint64_t version,
                                   const uint8_t *data, uint64_t size, uint32_t chunk_size,
                                   uint8_t **enc, size_t *len) {
  st_manifest_t *m;
  int rc = st_manifest_new(name, version, version - 1, size, chunk_size, &m);
  if (rc) return rc;
  for (uint32_t i = 0; i < m->chunk_count; i++)
    st_manifest_set_chunk(m, i, data + (size_t)i * chunk_size, st_manifest_chunk_len(m, i));
  /* Fixed, so that building the same version twice gives the same digest. */
  m->created_unix_s = 1700000000u + version;
  if (!(rc = st_manifest_sign(m, &e->key))) rc = st_manifest_encode(m, enc, len);
  st_manifest_free(m);
  return rc;
}

/* Puts chunk i of data through the store and waits for it: 0 or -errno. */
static inline int st_put_wait(st_env_t *e, st_version_t *v, const uint8_t *data, uint32_t i) {
  const st_manifest_t *m = st_version_manifest(v);
  uint32_t len = st_manifest_chunk_len(m, i);
  uint8_t *buf = fd_pool_get(e->pool);
  if (!buf) return -ENOBUFS;
  memcpy(buf, data + (size_t)i * m->chunk_size_bytes, len);
  st_wait_t w = {0};
  int rc = st_chunk_put(v, i, buf, len, st_wait_cb, &w);
  if (rc == 0) rc = st_run_until(&e->ring, &w.done);
  if (rc == 0) rc = w.res;
  fd_pool_put(e->pool, buf);
  return rc;
}

/* Lets v's last operations (a bitmap write) land, then closes it. */
static inline void st_close_wait(st_env_t *e, st_version_t *v) {
  while (st_version_inflight(v)) fd_ring_run_once(&e->ring, 1, 0);
  st_version_close(v);
}

/* Completes v and waits. */
static inline int st_complete_wait(st_env_t *e, st_version_t *v) {
  st_wait_t w = {0};
  int rc;
  while ((rc = st_version_complete(v, st_wait_cb, &w)) == -EAGAIN && st_version_missing(v) == 0)
    fd_ring_run_once(&e->ring, 1, 0);
  if (rc == 0) rc = st_run_until(&e->ring, &w.done);
  return rc ? rc : w.res;
}

/* Stores a whole version: begin, every chunk, complete, close. */
static inline int st_store_all(st_env_t *e, const char *name, uint64_t version,
                               const uint8_t *data, uint64_t size, uint32_t chunk_size) {
  uint8_t *enc;
  size_t len;
  int rc = st_make_manifest(e, name, version, data, size, chunk_size, &enc, &len);
  if (rc) return rc;
  st_version_t *v;
  rc = st_version_begin(e->store, enc, len, &v);
  free(enc);
  if (rc) return rc;
  for (uint32_t i = 0; i < st_version_manifest(v)->chunk_count && !rc; i++)
    if (!st_version_has(v, i)) rc = st_put_wait(e, v, data, i);
  if (!rc) rc = st_complete_wait(e, v);
  st_close_wait(e, v);
  return rc;
}

/* Compares the file at data_dir/name/rel with data. */
static inline bool st_file_equals(const st_env_t *e, const char *name, const char *rel,
                                  const uint8_t *data, uint64_t size) {
  char path[600];
  snprintf(path, sizeof(path), "%s/%s/%s", e->cfg.data_dir, name, rel);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  uint8_t *back = malloc(size + 1);
  ssize_t n = read(fd, back, size + 1);
  close(fd);
  bool same = n == (ssize_t)size && memcmp(back, data, size) == 0;
  free(back);
  return same;
}

#endif /* ST_TEST_UTIL_H */
