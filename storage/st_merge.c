/*
 * st_merge.c — a version made on this node from its base and a log of
 * writes (issue 21's bump), for the store to complete.
 *
 *   1 v<N>.partial becomes a copy of v<N-1>: one FICLONERANGE of the whole
 *     file where the filesystem shares blocks (a metadata operation), else
 *     copy_file_range (the kernel copies; nothing passes through here)
 *   2 every write of the log, in order, at its offset (buffered pwrite)
 *   3 fdatasync
 *   4 the chunks a write touched, and those the base does not have (past its
 *     end, or its short last chunk grown), are read back and hashed; every
 *     other chunk's digests are the base manifest's
 *   5 the manifest (created_unix_s and the signer are the caller's), signed,
 *     stored durably as v<N>.manifest, then an all-ones v<N>.bitmap
 *
 * The result is what the store's resume path expects of a version whose
 * every chunk arrived: st_version_begin with that manifest finds its
 * manifest, its .partial and a bitmap with every bit set, and
 * st_version_complete renames it and switches `current`. The store stays
 * the only one that completes versions; this file never touches v<N-1>,
 * `current` or a store's handles.
 *
 * Determinism: the bytes of v<N> are a function of v<N-1> and the writes;
 * the manifest of those bytes, the base version, the chunk size, the
 * caller's time and signer (Ed25519 signatures are deterministic). Nothing
 * here reads the clock, the host or the filesystem's layout into it, so
 * every origin makes the same bytes and the same digest.
 *
 * Crash safety: the bitmap is written last, after the data's fdatasync and
 * the manifest, so a bitmap that says "all present" is never ahead of the
 * data; a crash earlier leaves a .partial the store resets (no bitmap, or
 * one for another manifest) or that the next merge replaces. What a
 * previous attempt left is removed, durably, before anything is made.
 */
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
#include "fd_time.h"
#include "st_internal.h"

typedef struct merge {
  const st_merge_opts_t *o;
  st_merge_result_t *out;
  const fd_io_hook_t *io;
  int dir_fd, base_fd, fd;
  st_manifest_t *base; /* NULL from nothing */
  st_manifest_t *m;
  uint32_t cs;
  uint64_t size;
  uint8_t *touched; /* a bit per chunk a write landed in: FD_FILE_SIZE_MAX / cs bits */
  bool began;       /* v<N>'s files were removed or made: on failure, remove them */
  char partial[64], bitmap[64], manifest[64];
} merge_t;

static int check_opts(const st_merge_opts_t *o) {
  if (!o->data_dir || !o->name || !st_name_valid(o->name)) return -EINVAL;
  if (o->version <= o->base_version) return -EINVAL;
  if (!o->signer.key->has_private) return -EINVAL;
  if ((o->signer.cert == NULL) != (o->signer.cert_len == 0)) return -EINVAL;
  if (o->signer.cert_len > ST_SIGNER_CERT_LEN_MAX) return -EMSGSIZE;
  uint32_t cs = o->chunk_size_bytes;
  if (cs && (!FD_IS_POW2(cs) || cs < FD_CHUNK_SIZE_MIN || cs > FD_CHUNK_SIZE_MAX)) return -EINVAL;
  return 0;
}

/* The base's manifest and file, which must agree; the chunk size. */
static int open_base(merge_t *g) {
  const st_merge_opts_t *o = g->o;
  g->cs = o->chunk_size_bytes ? o->chunk_size_bytes : FD_CHUNK_SIZE_DEFAULT;
  if (o->base_version == 0) return 0;
  int rc = st_read_manifest_file(g->dir_fd, o->base_version, &g->base);
  if (rc) {
    fd_log_error("%s v%" PRIu64 ": no manifest of the base v%" PRIu64 ": %s", o->name, o->version,
                 o->base_version, strerror(-rc));
    return rc;
  }
  if (strcmp(g->base->name, o->name) != 0 || g->base->version != o->base_version) return -EINVAL;
  if (o->chunk_size_bytes && o->chunk_size_bytes != g->base->chunk_size_bytes) return -EINVAL;
  g->cs = g->base->chunk_size_bytes;
  char path[32];
  snprintf(path, sizeof(path), "v%" PRIu64, o->base_version);
  g->base_fd = openat(g->dir_fd, path, O_RDONLY | O_CLOEXEC);
  if (g->base_fd < 0) return -errno;
  struct stat st;
  if (fstat(g->base_fd, &st) != 0) return -errno;
  if ((uint64_t)st.st_size != g->base->size_bytes) {
    fd_log_error("%s v%" PRIu64 " is %lld bytes, its manifest says %" PRIu64, o->name,
                 o->base_version, (long long)st.st_size, g->base->size_bytes);
    return -EIO;
  }
  return 0;
}

/* Removes v<N>.partial, .bitmap and .manifest (and their temporaries), and
 * makes that durable before anything new is made: an old bitmap must never
 * outlive its manifest next to a new .partial. */
static int remove_ours(merge_t *g) {
  const char *names[] = {g->bitmap, g->manifest, g->partial};
  char tmp[80];
  bool any = false;
  for (size_t i = 0; i < FD_ARRAY_LEN(names); i++) {
    any |= fd_io_unlinkat(g->io, g->dir_fd, names[i], 0) == 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp", names[i]);
    any |= fd_io_unlinkat(g->io, g->dir_fd, tmp, 0) == 0;
  }
  return any ? fd_io_fsync(g->io, g->dir_fd) : 0;
}

/* Step 1: v<N>.partial holds v<N-1>'s bytes (nothing, from nothing). */
static int copy_base(merge_t *g) {
  g->fd = fd_io_openat(g->io, g->dir_fd, g->partial, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (g->fd < 0) return g->fd;
  if (!g->base) return 0;
  uint64_t len = g->base->size_bytes;
  if (!g->o->no_clone) {
    /* The source's end is the range's end, so an unaligned length is fine. */
    int rc = fd_io_clone_range(g->io, g->fd, 0, g->base_fd, 0, len);
    if (rc == 0) {
      g->out->cloned = true;
      return 0;
    }
    if (!st_clone_refused(rc)) return rc;
  }
  for (uint64_t off = 0; off < len;) {
    ssize_t n = fd_io_copy_range(g->io, g->fd, off, g->base_fd, off, len - off);
    if (n <= 0) return n < 0 ? (int)n : -EIO; /* 0: the base shrank under us */
    off += (uint64_t)n;
  }
  return 0;
}

static int pwrite_all(merge_t *g, const uint8_t *p, uint64_t len, uint64_t off) {
  while (len) {
    ssize_t n = fd_io_pwrite(g->io, g->fd, p, len, off);
    if (n < 0 && n != -EINTR) return (int)n;
    if (n == 0) return -ENOSPC;
    if (n < 0) continue;
    p += n;
    off += (uint64_t)n;
    len -= (uint64_t)n;
  }
  return 0;
}

/* Step 2: the log, in order. */
static int apply_writes(merge_t *g) {
  const st_merge_opts_t *o = g->o;
  g->size = g->base ? g->base->size_bytes : 0;
  for (;;) {
    uint64_t off = 0;
    const uint8_t *data = NULL;
    uint32_t len = 0;
    int r = o->next(o->next_arg, &off, &data, &len);
    if (r < 0) {
      fd_log_error("%s v%" PRIu64 ": the log failed after %" PRIu64 " writes: %s", o->name,
                   o->version, g->out->writes, strerror(-r));
      return r;
    }
    if (r == 0) return 0;
    if (off > FD_FILE_SIZE_MAX || len > FD_FILE_SIZE_MAX - off) return -EFBIG;
    g->out->writes++;
    if (len == 0) continue; /* changes nothing, not even the size */
    int rc = pwrite_all(g, data, len, off);
    if (rc) return rc;
    g->out->bytes_written += len;
    for (uint64_t c = off / g->cs; c <= (off + len - 1) / g->cs; c++)
      st_bit_set(g->touched, (uint32_t)c);
    g->size = FD_MAX(g->size, off + len);
  }
}

/* A chunk of v<N> whose bytes are the base's: untouched, and just as long. */
static bool reusable(const merge_t *g, uint32_t i) {
  return g->base && i < g->base->chunk_count && !st_bit(g->touched, i) &&
         st_manifest_chunk_len(g->m, i) == st_manifest_chunk_len(g->base, i);
}

/* Step 4: the digests, hashing only what changed. */
static int digests(merge_t *g) {
  const st_merge_opts_t *o = g->o;
  int rc = st_manifest_new(o->name, o->version, o->base_version, g->size, g->cs, &g->m);
  if (rc) return rc;
  uint32_t n = g->m->chunk_count, k = 0;
  for (uint32_t i = 0; i < n; i++) k += !reusable(g, i);
  uint32_t *list = malloc((k ? k : 1) * sizeof(*list));
  if (!list) return -ENOMEM;
  k = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!reusable(g, i)) {
      list[k++] = i;
      continue;
    }
    memcpy(g->m->chunk_sha256 + (size_t)i * FD_SHA256_LEN,
           g->base->chunk_sha256 + (size_t)i * FD_SHA256_LEN, FD_SHA256_LEN);
    g->m->chunk_crc32c[i] = g->base->chunk_crc32c[i];
  }
  rc = k ? st_manifest_hash_chunks(g->m, g->dir_fd, g->partial, list, k) : 0;
  free(list);
  g->out->chunks_hashed = k;
  g->out->chunks_reused = n - k;
  return rc;
}

/* Step 5: signed, encoded, stored; then the bitmap that says it is whole. */
static int store_manifest(merge_t *g) {
  const st_merge_opts_t *o = g->o;
  st_manifest_t *m = g->m;
  m->created_unix_s = o->created_unix_s;
  if (o->signer.cert_len) {
    if (!(m->signer_cert = malloc(o->signer.cert_len))) return -ENOMEM;
    memcpy(m->signer_cert, o->signer.cert, o->signer.cert_len);
    m->signer_cert_len = o->signer.cert_len;
  }
  int rc = st_manifest_sign(m, o->signer.key);
  if (!rc) rc = st_manifest_digest(m, g->out->digest);
  if (!rc) rc = st_manifest_encode(m, &g->out->manifest, &g->out->manifest_len);
  if (!rc) rc = st_write_file_durable(g->io, g->dir_fd, g->manifest, g->out->manifest,
                                      g->out->manifest_len);
  if (rc) return rc;
  size_t bytes = ((size_t)m->chunk_count + 7) / 8;
  uint8_t *bm = malloc(ST_BITMAP_HEADER_BYTES + bytes);
  if (!bm) return -ENOMEM;
  st_bitmap_header(bm, m->chunk_count, g->out->digest);
  memset(bm + ST_BITMAP_HEADER_BYTES, 0, bytes);
  for (uint32_t i = 0; i < m->chunk_count; i++) st_bit_set(bm + ST_BITMAP_HEADER_BYTES, i);
  rc = st_write_file_durable(g->io, g->dir_fd, g->bitmap, bm, ST_BITMAP_HEADER_BYTES + bytes);
  free(bm);
  return rc;
}

/* The name's directory, made (durably) when the file starts from nothing. */
static int open_dir(merge_t *g) {
  int data_fd = open(g->o->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (data_fd < 0) return -errno;
  int rc = 0;
  if (g->o->base_version == 0) {
    rc = fd_io_mkdirat(g->io, data_fd, g->o->name, 0755);
    rc = rc == 0 ? fd_io_fsync(g->io, data_fd) : rc == -EEXIST ? 0 : rc;
  }
  if (!rc) {
    g->dir_fd = openat(data_fd, g->o->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g->dir_fd < 0) rc = -errno;
  }
  close(data_fd);
  return rc;
}

static int build(merge_t *g) {
  const st_merge_opts_t *o = g->o;
  st_merge_result_t *out = g->out;
  int rc = open_dir(g);
  if (rc) return rc;
  char full[32];
  snprintf(full, sizeof(full), "v%" PRIu64, o->version);
  snprintf(g->partial, sizeof(g->partial), "%s.partial", full);
  snprintf(g->bitmap, sizeof(g->bitmap), "%s.bitmap", full);
  snprintf(g->manifest, sizeof(g->manifest), "%s.manifest", full);
  if (faccessat(g->dir_fd, full, F_OK, 0) == 0) return -EEXIST; /* complete: never again */
  if ((rc = open_base(g)) != 0) return rc;
  g->touched = calloc(1, (size_t)(FD_FILE_SIZE_MAX / g->cs + 7) / 8);
  if (!g->touched) return -ENOMEM;
  g->began = true;
  if ((rc = remove_ours(g)) != 0) return rc;
  uint64_t t0 = fd_now_ns();
  if ((rc = copy_base(g)) != 0) return rc;
  uint64_t t1 = fd_now_ns();
  out->copy_ns = t1 - t0;
  if ((rc = apply_writes(g)) != 0) return rc;
  if (g->size == 0) return -ENODATA; /* a version is at least one byte */
  if ((rc = fd_io_fdatasync(g->io, g->fd)) != 0) return rc;
  uint64_t t2 = fd_now_ns();
  out->apply_ns = t2 - t1;
  if ((rc = digests(g)) != 0) return rc;
  out->hash_ns = fd_now_ns() - t2;
  out->size_bytes = g->size;
  return store_manifest(g);
}

int st_merge_build(const st_merge_opts_t *o, st_merge_result_t *out) {
  FD_ASSERT(o && out && o->next && o->signer.key);
  *out = (st_merge_result_t){0};
  int rc = check_opts(o);
  if (rc) return rc;
  uint64_t t0 = fd_now_ns();
  merge_t g = {.o = o, .out = out, .io = o->io_hook, .dir_fd = -1, .base_fd = -1, .fd = -1};
  rc = build(&g);
  if (g.fd >= 0) close(g.fd);
  if (rc) {
    fd_log_error("%s v%" PRIu64 ": merge from v%" PRIu64 " failed: %s", o->name, o->version,
                 o->base_version, strerror(-rc));
  }
  if (rc && g.began) {
    /* Whatever was made goes; what was there before (v<N-1>, current) was
     * never touched. */
    remove_ours(&g);
  }
  if (g.base_fd >= 0) close(g.base_fd);
  if (g.dir_fd >= 0) close(g.dir_fd);
  st_manifest_free(g.base);
  st_manifest_free(g.m);
  free(g.touched);
  out->total_ns = fd_now_ns() - t0;
  if (rc) {
    free(out->manifest);
    out->manifest = NULL;
    out->manifest_len = 0;
    return rc;
  }
  fd_log_info("%s v%" PRIu64 " merged from v%" PRIu64 ": %" PRIu64 " writes (%" PRIu64
              " bytes), %u chunks hashed, %u reused, base %s in %.1f ms, total %.1f ms",
              o->name, o->version, o->base_version, out->writes, out->bytes_written,
              out->chunks_hashed, out->chunks_reused, out->cloned ? "cloned" : "copied",
              (double)out->copy_ns / 1e6, (double)out->total_ns / 1e6);
  return 0;
}
