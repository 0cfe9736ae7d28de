/*
 * st_store.c — the store's directories and version handles: open, begin
 * (create or resume a .partial), close, list, `current`, pins and GC.
 *
 * These are the control calls: they touch directories and small metadata
 * files synchronously, once per version, never per chunk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "st_internal.h"

typedef struct st_bitmap_header {
  char magic[8];
  uint32_t chunk_count;
  uint32_t reserved;
  uint8_t digest[FD_SHA256_LEN];
  uint32_t crc32c; /* of the bytes above */
} st_bitmap_header_t;
static_assert(sizeof(st_bitmap_header_t) <= ST_BITMAP_HEADER_BYTES, "bitmap header fits");

void st_config_defaults(st_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->queue_depth = FD_QUEUE_DEPTH_DEFAULT;
  cfg->versions_kept = FD_VERSIONS_KEPT_DEFAULT;
  cfg->verify = true;
}

int st_store_open(const st_config_t *cfg, st_store_t **out) {
  *out = NULL;
  if (!cfg->data_dir || !cfg->ring || !cfg->pool || cfg->queue_depth == 0 ||
      cfg->queue_depth > FD_QUEUE_DEPTH_MAX || cfg->versions_kept == 0 ||
      strlen(cfg->data_dir) >= FD_PATH_LEN_MAX || cfg->io_hook != cfg->ring->io_hook)
    return -EINVAL;
  int rc = fd_io_mkdir_durable(cfg->io_hook, cfg->data_dir, 0755);
  if (rc) return rc;
  st_store_t *s = calloc(1, sizeof(*s));
  if (!s) return -ENOMEM;
  s->cfg = *cfg;
  snprintf(s->data_dir, sizeof(s->data_dir), "%s", cfg->data_dir);
  s->cfg.data_dir = s->data_dir;
  for (uint32_t k = 0; k < ST_SYNC_KINDS; k++)
    fd_hist_init(&s->sync_hist[k], fd_hist_latency_bounds_ns, fd_hist_latency_bounds_n);
  s->dir_fd = open(s->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  s->slots = calloc(cfg->queue_depth, sizeof(*s->slots));
  uint32_t nsynced = 2 * fd_pool_count(cfg->pool); /* st_synced_t */
  s->synced = calloc(nsynced, sizeof(*s->synced));
  s->sha = fd_sha256_create();
  if (s->dir_fd < 0 || !s->slots || !s->synced || !s->sha) {
    rc = s->dir_fd < 0 ? -errno : -ENOMEM;
    if (s->dir_fd >= 0) close(s->dir_fd);
    if (s->sha) fd_sha256_destroy(s->sha);
    free(s->slots);
    free(s->synced);
    free(s);
    return rc;
  }
  for (uint32_t i = 0; i < cfg->queue_depth; i++) st_slot_put(s, &s->slots[i]);
  for (uint32_t i = 0; i < nsynced; i++) {
    s->synced[i].next = s->free_synced;
    s->free_synced = &s->synced[i];
  }
  struct io_uring_probe *probe = io_uring_get_probe_ring(&cfg->ring->ring);
  if (probe) {
    s->can_ftruncate = io_uring_opcode_supported(probe, FD_IORING_OP_FTRUNCATE);
    io_uring_free_probe(probe);
  }
  *out = s;
  return 0;
}

void st_store_close(st_store_t *s) {
  if (!s) return;
  while (s->versions) st_version_close(s->versions);
  FD_ASSERT(s->inflight == 0);
  close(s->dir_fd);
  free(s->slots);
  free(s->synced);
  fd_sha256_destroy(s->sha);
  free(s);
}

const st_stats_t *st_store_stats(const st_store_t *s) { return &s->stats; }
const fd_hist_t *st_store_sync_hist(const st_store_t *s, st_sync_kind_t kind) {
  FD_ASSERT((unsigned)kind < ST_SYNC_KINDS);
  return &s->sync_hist[kind];
}
uint32_t st_store_inflight(const st_store_t *s) { return s->inflight; }

/* ---- pins ------------------------------------------------------------------- */

int st_pin(st_store_t *s, const char *name, uint64_t version) {
  st_pin_t *free_pin = NULL;
  for (uint32_t i = 0; i < FD_STORE_PINS_MAX; i++) {
    st_pin_t *p = &s->pins[i];
    if (p->count && p->version == version && strcmp(p->name, name) == 0) {
      p->count++;
      return 0;
    }
    if (!p->count && !free_pin) free_pin = p;
  }
  if (!free_pin) return -ENOSPC;
  snprintf(free_pin->name, sizeof(free_pin->name), "%s", name);
  free_pin->version = version;
  free_pin->count = 1;
  return 0;
}

void st_unpin(st_store_t *s, const char *name, uint64_t version) {
  for (uint32_t i = 0; i < FD_STORE_PINS_MAX; i++) {
    st_pin_t *p = &s->pins[i];
    if (p->count && p->version == version && strcmp(p->name, name) == 0) {
      p->count--;
      return;
    }
  }
  FD_ASSERT(!"unpin of a version never pinned");
}

static bool pinned(const st_store_t *s, const char *name, uint64_t version) {
  for (uint32_t i = 0; i < FD_STORE_PINS_MAX; i++) {
    const st_pin_t *p = &s->pins[i];
    if (p->count && p->version == version && strcmp(p->name, name) == 0) return true;
  }
  return false;
}

/* ---- small files ---------------------------------------------------------- */

static int read_small_file(int dir_fd, const char *path, uint8_t **out, size_t *len) {
  int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    rc = -errno;
    goto out_close_fd;
  }
  if ((uint64_t)st.st_size > FD_FRAME_PAYLOAD_MAX) {
    rc = -EMSGSIZE;
    goto out_close_fd;
  }
  uint8_t *buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    rc = -ENOMEM;
    goto out_close_fd;
  }
  ssize_t r = pread(fd, buf, (size_t)st.st_size, 0);
  if (r != st.st_size) {
    rc = r < 0 ? -errno : -EIO;
    free(buf);
    goto out_close_fd;
  }
  *out = buf;
  *len = (size_t)st.st_size;
out_close_fd:
  close(fd);
  return rc;
}

/* 0, -errno, or -ENOSPC for a short write (the disk is full). */
static int pwrite_whole(const fd_io_hook_t *io, int fd, const void *buf, size_t len, uint64_t off) {
  ssize_t w = fd_io_pwrite(io, fd, buf, len, off);
  return w == (ssize_t)len ? 0 : w < 0 ? (int)w : -ENOSPC;
}

/* Writes path durably: a temporary file, fdatasync, rename, fsync of dir. */
int st_write_file_durable(const fd_io_hook_t *io, int dir_fd, const char *path, const void *buf,
                          size_t len) {
  char tmp[FD_NAME_LEN_MAX + 32];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = fd_io_openat(io, dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fd;
  int rc = pwrite_whole(io, fd, buf, len, 0);
  if (!rc) rc = fd_io_fdatasync(io, fd);
  close(fd);
  if (!rc) rc = fd_io_renameat(io, dir_fd, tmp, dir_fd, path);
  if (!rc) rc = fd_io_fsync(io, dir_fd);
  if (rc) fd_io_unlinkat(io, dir_fd, tmp, 0);
  return rc;
}

int st_read_manifest_file(int dir_fd, uint64_t version, st_manifest_t **out) {
  char path[64];
  snprintf(path, sizeof(path), "v%" PRIu64 ".manifest", version);
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = read_small_file(dir_fd, path, &buf, &len);
  if (rc) return rc;
  rc = st_manifest_decode(buf, len, out);
  free(buf);
  return rc;
}

/* ---- current ---------------------------------------------------------------- */

static int read_current(int dir_fd, uint64_t *version) {
  char target[64];
  ssize_t n = readlinkat(dir_fd, "current", target, sizeof(target) - 1);
  if (n < 0) return -errno;
  target[n] = 0;
  char *end;
  if (target[0] != 'v') return -EINVAL;
  *version = strtoull(target + 1, &end, 10);
  return *end ? -EINVAL : 0;
}

int st_current(st_store_t *s, const char *name, uint64_t *version) {
  if (!st_name_valid(name)) return -EINVAL;
  int dir_fd = openat(s->dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return -errno;
  int rc = read_current(dir_fd, version);
  close(dir_fd);
  return rc;
}

/* The synchronous form of the last steps of st_version_complete, used when
 * reopening finds v<N> renamed but `current` not yet switched. */
int st_switch_current_sync(st_version_t *v) {
  const fd_io_hook_t *io = v->s->cfg.io_hook;
  uint64_t cur;
  if (read_current(v->dir_fd, &cur) == 0 && cur >= v->m->version) return 0;
  char target[64];
  snprintf(target, sizeof(target), "v%" PRIu64, v->m->version);
  fd_io_unlinkat(io, v->dir_fd, "current.tmp", 0);
  int rc = fd_io_symlinkat(io, target, v->dir_fd, "current.tmp");
  if (!rc) rc = fd_io_renameat(io, v->dir_fd, "current.tmp", v->dir_fd, "current");
  if (!rc) rc = fd_io_fsync(io, v->dir_fd);
  return rc;
}

/* ---- versions ------------------------------------------------------------- */

static st_version_t *find_open(st_store_t *s, const char *name, uint64_t version) {
  for (st_version_t *v = s->versions; v; v = v->next)
    if (v->m->version == version && strcmp(v->m->name, name) == 0) return v;
  return NULL;
}

static st_version_t *version_alloc(st_store_t *s, st_manifest_t *m) {
  st_version_t *v = calloc(1, sizeof(*v));
  if (!v) return NULL;
  size_t bytes = ((size_t)m->chunk_count + 7) / 8;
  v->bits = calloc(1, bytes);
  v->pending = calloc(1, bytes);
  if (!v->bits || !v->pending) {
    free(v->bits);
    free(v->pending);
    free(v);
    return NULL;
  }
  v->s = s;
  v->m = m;
  v->dir_fd = v->data_fd = v->bitmap_fd = v->repair_fd = v->repair_tail_fd = -1;
  v->sync_op.v = v->bm_op.v = v->complete_op.v = v->scrub_timer.v = v->delta_timer.v = v;
  return v;
}

static void version_free(st_version_t *v) {
  if (v->data_fd >= 0) close(v->data_fd);
  if (v->bitmap_fd >= 0) close(v->bitmap_fd);
  if (v->repair_fd >= 0) close(v->repair_fd);
  if (v->repair_tail_fd >= 0) close(v->repair_tail_fd);
  if (v->dir_fd >= 0) close(v->dir_fd);
  st_manifest_free(v->m);
  free(v->bits);
  free(v->pending);
  free(v->delta_local);
  free(v);
}

static void mark_complete(st_version_t *v) {
  v->complete = true;
  v->missing = 0;
  memset(v->bits, 0xff, ((size_t)v->m->chunk_count + 7) / 8);
}

void st_bitmap_header(uint8_t block[ST_BITMAP_HEADER_BYTES], uint32_t chunk_count,
                      const uint8_t digest[FD_SHA256_LEN]) {
  st_bitmap_header_t h;
  memset(&h, 0, sizeof(h));
  memcpy(h.magic, ST_BITMAP_MAGIC, 8);
  h.chunk_count = chunk_count;
  memcpy(h.digest, digest, FD_SHA256_LEN);
  h.crc32c = fd_crc32c(0, &h, offsetof(st_bitmap_header_t, crc32c));
  memset(block, 0, ST_BITMAP_HEADER_BYTES);
  memcpy(block, &h, sizeof(h));
}

/* Loads v<N>.bitmap if it belongs to this manifest; otherwise starts empty. */
static int open_bitmap(st_version_t *v, const char *path, bool fresh) {
  const st_manifest_t *m = v->m;
  const fd_io_hook_t *io = v->s->cfg.io_hook;
  int fd = fd_io_openat(io, v->dir_fd, path, O_RDWR | O_CREAT | O_CLOEXEC | (fresh ? O_TRUNC : 0),
                        0644);
  if (fd < 0) return fd;
  v->bitmap_fd = fd;
  size_t bytes = ((size_t)m->chunk_count + 7) / 8;
  st_bitmap_header_t h;
  bool valid = false;
  if (!fresh && pread(v->bitmap_fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
      memcmp(h.magic, ST_BITMAP_MAGIC, 8) == 0 && h.chunk_count == m->chunk_count &&
      memcmp(h.digest, v->digest, FD_SHA256_LEN) == 0 &&
      h.crc32c == fd_crc32c(0, &h, offsetof(st_bitmap_header_t, crc32c))) {
    ssize_t r = pread(v->bitmap_fd, v->bits, bytes, ST_BITMAP_HEADER_BYTES);
    valid = r >= 0;
    if (r < (ssize_t)bytes && r >= 0) memset(v->bits + r, 0, bytes - (size_t)r);
    /* Bits past the last chunk are not ours to trust. */
    for (uint32_t i = m->chunk_count; i < bytes * 8; i++) st_bit_clear(v->bits, i);
  }
  if (!valid) {
    memset(v->bits, 0, bytes);
    uint8_t block[ST_BITMAP_HEADER_BYTES];
    st_bitmap_header(block, m->chunk_count, v->digest);
    int rc = fd_io_ftruncate(io, v->bitmap_fd, 0);
    if (!rc) rc = pwrite_whole(io, v->bitmap_fd, block, sizeof(block), 0);
    if (!rc) rc = pwrite_whole(io, v->bitmap_fd, v->bits, bytes, ST_BITMAP_HEADER_BYTES);
    if (rc) return rc;
  }
  v->missing = 0;
  for (uint32_t i = 0; i < m->chunk_count; i++)
    if (!st_bit(v->bits, i)) v->missing++;
  return 0;
}

int st_version_begin(st_store_t *s, const void *manifest, size_t len, st_version_t **out) {
  *out = NULL;
  st_manifest_t *m;
  int rc = st_manifest_decode(manifest, len, &m);
  if (rc) {
    fd_log_warn("rejecting a manifest: %s", strerror(-rc));
    return rc;
  }
  if (s->cfg.have_trusted_key &&
      (rc = st_manifest_verify(m, s->cfg.trusted_pub, s->cfg.revocations)) != 0) {
    st_manifest_free(m);
    return rc;
  }
  if (fd_pool_buf_size(s->cfg.pool) < m->chunk_size_bytes) {
    fd_log_error("pool buffers (%zu bytes) smaller than chunks of %s (%u)",
                 fd_pool_buf_size(s->cfg.pool), m->name, m->chunk_size_bytes);
    st_manifest_free(m);
    return -EINVAL;
  }
  if (find_open(s, m->name, m->version)) {
    st_manifest_free(m);
    return -EBUSY;
  }
  st_version_t *v = version_alloc(s, m);
  if (!v) {
    st_manifest_free(m);
    return -ENOMEM;
  }
  rc = st_manifest_digest(m, v->digest);
  if (rc) goto out_free_v;
  const fd_io_hook_t *io = s->cfg.io_hook;
  rc = fd_io_mkdirat(io, s->dir_fd, m->name, 0755);
  if (rc == 0) {
    fd_io_fsync(io, s->dir_fd);
  } else if (rc != -EEXIST) {
    goto out_free_v;
  }
  v->dir_fd = openat(s->dir_fd, m->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (v->dir_fd < 0) {
    rc = -errno;
    goto out_free_v;
  }
  char full[64], partial[80], bitmap[80], mpath[80];
  snprintf(full, sizeof(full), "v%" PRIu64, m->version);
  snprintf(partial, sizeof(partial), "%s.partial", full);
  snprintf(bitmap, sizeof(bitmap), "%s.bitmap", full);
  snprintf(mpath, sizeof(mpath), "%s.manifest", full);

  /* The manifest on disk, if any, must be this one. */
  bool same_manifest = false;
  st_manifest_t *old;
  if (st_read_manifest_file(v->dir_fd, m->version, &old) == 0) {
    uint8_t d[FD_SHA256_LEN];
    same_manifest = st_manifest_digest(old, d) == 0 && memcmp(d, v->digest, FD_SHA256_LEN) == 0;
    st_manifest_free(old);
  }
  bool have_full = faccessat(v->dir_fd, full, F_OK, 0) == 0;
  if (have_full && !same_manifest) {
    fd_log_error("%s v%llu already exists with a different manifest", m->name,
                 (unsigned long long)m->version);
    rc = -EEXIST;
    goto out_free_v;
  }
  if (have_full) {
    /* Complete (perhaps a crash came after the rename): finish the switch. */
    v->data_fd = openat(v->dir_fd, full, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (v->data_fd < 0) {
      rc = -errno;
      goto out_free_v;
    }
    mark_complete(v);
    if ((rc = st_switch_current_sync(v)) != 0) goto out_free_v;
    fd_io_unlinkat(io, v->dir_fd, bitmap, 0);
    goto out_ok;
  }
  if (!same_manifest) {
    uint8_t *enc;
    size_t enc_len;
    if ((rc = st_manifest_encode(m, &enc, &enc_len)) != 0) goto out_free_v;
    /* A different manifest under the same number: its partial is useless. */
    fd_io_unlinkat(io, v->dir_fd, partial, 0);
    fd_io_unlinkat(io, v->dir_fd, bitmap, 0);
    rc = st_write_file_durable(io, v->dir_fd, mpath, enc, enc_len);
    free(enc);
    if (rc) {
      fd_log_error("%s v%llu: cannot store the manifest: %s", m->name,
                   (unsigned long long)m->version, strerror(-rc));
      goto out_free_v;
    }
  }
  bool fresh = faccessat(v->dir_fd, partial, F_OK, 0) != 0;
  rc = fd_io_openat(io, v->dir_fd, partial, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
  if (rc < 0) {
    fd_log_error("%s v%llu: cannot open %s with O_DIRECT: %s", m->name,
                 (unsigned long long)m->version, partial, strerror(-rc));
    goto out_free_v;
  }
  v->data_fd = rc;
  /* Reserve the space now: a full disk fails here, before any chunk. */
  uint64_t alloc = FD_ALIGN_UP(m->size_bytes, (uint64_t)FD_DIRECT_ALIGN);
  if ((rc = fd_io_fallocate(io, v->data_fd, 0, alloc)) != 0) {
    if (rc == -EOPNOTSUPP || rc == -EINVAL) {
      rc = 0; /* no fallocate here: a full disk shows up at the writes instead */
    } else {
      s->stats.io_errors++;
      fd_log_error("%s v%llu: cannot reserve %llu bytes: %s", m->name,
                   (unsigned long long)m->version, (unsigned long long)alloc, strerror(-rc));
      if (fresh) fd_io_unlinkat(io, v->dir_fd, partial, 0);
      goto out_free_v;
    }
  }
  if ((rc = open_bitmap(v, bitmap, fresh)) != 0) goto out_free_v;
  if (fresh) fd_io_fsync(io, v->dir_fd);
  fd_log_info("%s v%llu: %s, %u of %u chunks missing", m->name, (unsigned long long)m->version,
              fresh ? "started" : "resumed", v->missing, m->chunk_count);
out_ok:
  v->next = s->versions;
  s->versions = v;
  *out = v;
  return 0;
out_free_v:
  version_free(v);
  return rc;
}

int st_version_open(st_store_t *s, const char *name, uint64_t version, st_version_t **out) {
  *out = NULL;
  if (!st_name_valid(name)) return -EINVAL;
  if (find_open(s, name, version)) return -EBUSY;
  int dir_fd = openat(s->dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return -errno;
  st_manifest_t *m;
  int rc = st_read_manifest_file(dir_fd, version, &m);
  if (rc) {
    close(dir_fd);
    return rc;
  }
  st_version_t *v = version_alloc(s, m);
  if (!v) {
    close(dir_fd);
    st_manifest_free(m);
    return -ENOMEM;
  }
  v->dir_fd = dir_fd;
  if ((rc = st_manifest_digest(m, v->digest)) != 0) goto out_free_v;
  char full[64];
  snprintf(full, sizeof(full), "v%" PRIu64, version);
  v->data_fd = openat(dir_fd, full, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (v->data_fd < 0) {
    rc = -errno;
    goto out_free_v;
  }
  mark_complete(v);
  v->next = s->versions;
  s->versions = v;
  *out = v;
  return 0;
out_free_v:
  version_free(v);
  return rc;
}

void st_version_close(st_version_t *v) {
  st_store_t *s = v->s;
  FD_ASSERT(v->inflight == 0);
  st_bitmap_flush_sync(v);
  for (st_version_t **p = &s->versions; *p; p = &(*p)->next) {
    if (*p == v) {
      *p = v->next;
      break;
    }
  }
  version_free(v);
}

const st_manifest_t *st_version_manifest(const st_version_t *v) { return v->m; }
bool st_version_has(const st_version_t *v, uint32_t index) {
  return index < v->m->chunk_count && st_bit(v->bits, index);
}
uint32_t st_version_missing(const st_version_t *v) { return v->missing; }
bool st_version_is_complete(const st_version_t *v) { return v->complete; }
uint32_t st_version_inflight(const st_version_t *v) { return v->inflight; }

/* ---- listing and GC --------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int st_versions(st_store_t *s, const char *name, uint64_t *out, size_t max) {
  if (!st_name_valid(name)) return -EINVAL;
  int dir_fd = openat(s->dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return errno == ENOENT ? 0 : -errno;
  DIR *d = fdopendir(dir_fd);
  if (!d) {
    close(dir_fd);
    return -errno;
  }
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max) {
    if (e->d_name[0] != 'v') continue;
    char *end;
    errno = 0;
    uint64_t ver = strtoull(e->d_name + 1, &end, 10);
    if (errno || *end || end == e->d_name + 1 || ver == 0) continue; /* v<N> only */
    out[n++] = ver;
  }
  closedir(d);
  qsort(out, n, sizeof(*out), cmp_u64);
  return (int)n;
}

int st_gc(st_store_t *s, const char *name) { return st_gc_keep(s, name, s->cfg.versions_kept); }

int st_gc_keep(st_store_t *s, const char *name, uint32_t keep) {
  if (keep == 0) return -EINVAL;
  uint64_t *list = calloc(FD_STORE_VERSIONS_SCAN_MAX, sizeof(*list));
  if (!list) return -ENOMEM;
  int n = st_versions(s, name, list, FD_STORE_VERSIONS_SCAN_MAX);
  if (n <= 0) {
    free(list);
    return n;
  }
  uint64_t cur = 0;
  (void)st_current(s, name, &cur);
  int dir_fd = openat(s->dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    free(list);
    return -errno;
  }
  int removed = 0, rc = 0;
  int keep_from = n - (int)keep;
  for (int i = 0; i < keep_from; i++) {
    uint64_t ver = list[i];
    if (ver == cur || pinned(s, name, ver) || find_open(s, name, ver)) continue;
    char path[80];
    snprintf(path, sizeof(path), "v%" PRIu64, ver);
    if ((rc = fd_io_unlinkat(s->cfg.io_hook, dir_fd, path, 0)) != 0) break;
    snprintf(path, sizeof(path), "v%" PRIu64 ".manifest", ver);
    fd_io_unlinkat(s->cfg.io_hook, dir_fd, path, 0);
    fd_log_info("gc: removed %s v%" PRIu64, name, ver);
    removed++;
  }
  if (removed) fd_io_fsync(s->cfg.io_hook, dir_fd);
  close(dir_fd);
  free(list);
  return rc ? rc : removed;
}
