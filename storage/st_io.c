/*
 * st_io.c — the chunk data path: verify, O_DIRECT write from the registered
 * pool, group fdatasync, then the bitmap bit; and O_DIRECT chunk reads.
 *
 * Durability order, per version: a write's completion puts its slot on the
 * unsynced list; one fdatasync at a time covers everything on it; when that
 * fdatasync completes the chunks' bits are set, their callbacks run, and the
 * changed byte range of the bitmap is written (buffered: bits only ever go
 * from 0 to 1 for a given manifest, so the file holds either the old or the
 * new value of each byte and both are true). A bit therefore never reaches
 * the bitmap file before its chunk's data is durable.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "fd_time.h"
#include "st_internal.h"

#ifndef IORING_NOP_INJECT_RESULT
#define IORING_NOP_INJECT_RESULT (1u << 0) /* kernel 6.10+ */
#endif

/* ---- slots and SQEs -------------------------------------------------------- */

st_slot_t *st_slot_get(st_store_t *s) {
  st_slot_t *slot = s->free_slots;
  if (!slot) return NULL;
  s->free_slots = slot->next;
  slot->next = NULL;
  return slot;
}

void st_slot_put(st_store_t *s, st_slot_t *slot) {
  slot->v = NULL;
  slot->buf = NULL;
  slot->written = NULL;
  slot->done = NULL;
  slot->next = s->free_slots;
  s->free_slots = slot;
}

/* The ring refuses an SQE only when the caller's loop stopped reaping (the
 * CQ overflowed): a bug in the caller, so asserted. */
struct io_uring_sqe *st_sqe(st_store_t *s, st_version_t *v, fd_op_t *op, st_io_kind_t kind,
                            uint32_t chunk) {
  struct io_uring_sqe *sqe = fd_ring_sqe(s->cfg.ring, op);
  for (int tries = 0; !sqe && tries < 3; tries++) {
    fd_ring_submit(s->cfg.ring);
    sqe = fd_ring_sqe(s->cfg.ring, op);
  }
  FD_ASSERT(sqe != NULL);
  s->inflight++;
  if (v) v->inflight++;
  int fault = s->cfg.fault ? s->cfg.fault(s->cfg.fault_arg, kind, chunk) : 0;
  if (fault < 0) {
    /* The kernel completes this NOP with `fault` as its result. */
    io_uring_prep_nop(sqe);
    sqe->rw_flags = IORING_NOP_INJECT_RESULT;
    sqe->len = (uint32_t)fault;
    io_uring_sqe_set_data(sqe, op);
    return NULL;
  }
  return sqe;
}

void st_op_done(st_version_t *v) {
  st_store_t *s = v->s;
  FD_ASSERT(s->inflight > 0 && v->inflight > 0);
  s->inflight--;
  v->inflight--;
}

/* ---- bitmap ------------------------------------------------------------------ */

static void bitmap_kick(st_version_t *v);

static void on_bitmap_write(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_version_t *v = ((st_vop_t *)op)->v;
  st_op_done(v);
  v->bm_inflight = false;
  if (res < 0) {
    /* The bits stay set in memory and are written again on close; a lost
     * bit only means the chunk is fetched again after a crash. */
    v->s->stats.io_errors++;
    fd_log_warn("%s v%llu: bitmap write failed: %s", v->m->name,
                (unsigned long long)v->m->version, strerror(-res));
    return;
  }
  bitmap_kick(v);
}

static void bitmap_kick(st_version_t *v) {
  if (v->bm_inflight || !v->bm_dirty || v->bitmap_fd < 0) return;
  uint32_t lo = v->dirty_lo, hi = v->dirty_hi;
  v->bm_dirty = false;
  v->bm_inflight = true;
  v->bm_op.op.complete = on_bitmap_write;
  struct io_uring_sqe *sqe = st_sqe(v->s, v, &v->bm_op.op, ST_IO_META, lo * 8u);
  if (sqe) io_uring_prep_write(sqe, v->bitmap_fd, v->bits + lo, hi - lo, ST_BITMAP_HEADER_BYTES + lo);
}

static void bitmap_mark(st_version_t *v, uint32_t index) {
  uint32_t byte = index >> 3;
  if (!v->bm_dirty) {
    v->dirty_lo = byte;
    v->dirty_hi = byte + 1;
    v->bm_dirty = true;
  } else {
    v->dirty_lo = FD_MIN(v->dirty_lo, byte);
    v->dirty_hi = FD_MAX(v->dirty_hi, byte + 1);
  }
}

void st_bitmap_flush_sync(st_version_t *v) {
  if (v->bitmap_fd < 0) return;
  const fd_io_hook_t *io = v->s->cfg.io_hook;
  size_t len = ((size_t)v->m->chunk_count + 7) / 8;
  ssize_t w = fd_io_pwrite(io, v->bitmap_fd, v->bits, len, ST_BITMAP_HEADER_BYTES);
  if (w != (ssize_t)len || fd_io_fdatasync(io, v->bitmap_fd) != 0) {
    v->s->stats.io_errors++;
    fd_log_warn("%s v%llu: bitmap flush failed", v->m->name, (unsigned long long)v->m->version);
  }
}

/* ---- group fdatasync ----------------------------------------------------------- */

static void sync_kick(st_version_t *v);

static void finish_put(st_version_t *v, uint32_t index, uint32_t len, bool from_delta, bool early,
                       st_done_fn done, void *arg, int res) {
  st_store_t *s = v->s;
  st_bit_clear(v->pending, index);
  if (early) {
    FD_ASSERT(s->early_n > 0);
    s->early_n--;
  }
  if (res == 0) {
    FD_ASSERT(!st_bit(v->bits, index));
    st_bit_set(v->bits, index);
    FD_ASSERT(v->missing > 0);
    v->missing--;
    bitmap_mark(v, index);
    if (from_delta) {
      s->stats.chunks_reused++;
      s->stats.bytes_reused += len;
      if (v->delta_bytes) *v->delta_bytes += len;
    } else {
      s->stats.chunks_written++;
      s->stats.bytes_written += len;
    }
  }
  if (done) done(arg, res);
}

static void on_sync(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_version_t *v = ((st_vop_t *)op)->v;
  st_op_done(v);
  v->sync_inflight = false;
  fd_hist_observe_ns(&v->s->sync_hist[ST_SYNC_CHUNKS], fd_now_ns() - v->sync_start_ns);
  if (res < 0) {
    v->s->stats.io_errors++;
    fd_log_error("%s v%llu: fdatasync failed: %s", v->m->name, (unsigned long long)v->m->version,
                 strerror(-res));
  }
  st_synced_t *list = v->syncing;
  v->syncing = NULL;
  st_store_t *s = v->s;
  while (list) {
    st_synced_t *next = list->next;
    st_synced_t r = *list;
    list->next = s->free_synced;
    s->free_synced = list;
    finish_put(v, r.index, r.len, r.from_delta, r.early, r.done, r.arg, res < 0 ? res : 0);
    list = next;
  }
  bitmap_kick(v);
  sync_kick(v);
}

static void sync_kick(st_version_t *v) {
  if (v->sync_inflight || !v->unsynced) return;
  v->syncing = v->unsynced;
  v->unsynced = NULL;
  v->sync_inflight = true;
  v->sync_start_ns = fd_now_ns();
  v->s->stats.syncs++;
  v->sync_op.op.complete = on_sync;
  struct io_uring_sqe *sqe = st_sqe(v->s, v, &v->sync_op.op, ST_IO_SYNC, v->syncing->index);
  if (sqe) io_uring_prep_fsync(sqe, v->data_fd, IORING_FSYNC_DATASYNC);
}

/* Chunks made durable outside the write path: a delta clone shares the
 * source's blocks, and st_delta.c has fdatasync'd the file before this. */
void st_mark_cloned(st_version_t *v, uint32_t index, uint32_t len) {
  FD_ASSERT(!st_bit(v->pending, index));
  v->s->stats.chunks_cloned++;
  finish_put(v, index, len, true, false, NULL, NULL, 0);
  bitmap_kick(v);
}

/* ---- writes ------------------------------------------------------------------ */

static void queue_write(st_slot_t *slot) {
  st_version_t *v = slot->v;
  st_store_t *s = v->s;
  uint64_t off = (uint64_t)slot->index * v->m->chunk_size_bytes + slot->io_done;
  uint8_t *p = slot->buf + slot->io_done;
  uint32_t n = slot->io_len - slot->io_done;
  struct io_uring_sqe *sqe = st_sqe(s, v, &slot->op, ST_IO_WRITE, slot->index);
  if (!sqe) return;
  if (s->cfg.pool_registered)
    io_uring_prep_write_fixed(sqe, v->data_fd, p, n, off, (int)fd_pool_index(s->cfg.pool, slot->buf));
  else
    io_uring_prep_write(sqe, v->data_fd, p, n, off);
}

static void on_write(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_slot_t *slot = (st_slot_t *)op;
  st_version_t *v = slot->v;
  st_op_done(v);
  if (res <= 0) {
    int err = res < 0 ? res : -EIO;
    v->s->stats.io_errors++;
    fd_log_error("%s v%llu: chunk %u write failed: %s", v->m->name,
                 (unsigned long long)v->m->version, slot->index, strerror(-err));
    st_slot_t copy = *slot;
    st_slot_put(v->s, slot);
    finish_put(v, copy.index, copy.len, copy.from_delta, copy.written != NULL, copy.done, copy.arg,
               err);
    return;
  }
  slot->io_done += (uint32_t)res;
  if (slot->io_done < slot->io_len) {
    queue_write(slot); /* short write: the rest goes again */
    return;
  }
  /* The disk operation is over: free the slot, wait for the fdatasync. */
  st_store_t *s = v->s;
  st_synced_t *r = s->free_synced;
  FD_ASSERT(r != NULL); /* two per pool buffer: see st_synced_t */
  s->free_synced = r->next;
  *r = (st_synced_t){.next = v->unsynced, .index = slot->index, .len = slot->len,
                     .from_delta = slot->from_delta, .early = slot->written != NULL,
                     .done = slot->done, .arg = slot->arg};
  v->unsynced = r;
  st_done_fn written = slot->written;
  void *arg = slot->arg;
  st_slot_put(s, slot);
  sync_kick(v);
  if (written) written(arg, 0); /* the buffer is the caller's again */
}

/* CRC32C, then (sha) SHA-256 against the manifest. A local copy skips the
 * SHA-256: its source was matched by SHA-256 in two signed manifests and
 * checked when it was stored; the CRC32C catches what the disk did since. */
static bool chunk_verified(st_version_t *v, uint32_t index, const uint8_t *buf, uint32_t len,
                           bool sha_too) {
  const st_manifest_t *m = v->m;
  uint32_t crc = fd_crc32c(0, buf, len);
  if (crc != m->chunk_crc32c[index]) {
    v->s->stats.chunks_rejected++;
    fd_log_warn("%s v%llu: chunk %u rejected: CRC32C %08x, manifest says %08x", m->name,
                (unsigned long long)m->version, index, crc, m->chunk_crc32c[index]);
    return false;
  }
  if (!sha_too) return true;
  uint8_t sha[FD_SHA256_LEN];
  fd_sha256_update(v->s->sha, buf, len);
  fd_sha256_final(v->s->sha, sha);
  if (memcmp(sha, m->chunk_sha256 + (size_t)index * FD_SHA256_LEN, FD_SHA256_LEN) != 0) {
    v->s->stats.chunks_rejected++;
    fd_log_warn("%s v%llu: chunk %u rejected: SHA-256 differs from the manifest", m->name,
                (unsigned long long)m->version, index);
    return false;
  }
  return true;
}

int st_put_start(st_slot_t *slot) {
  st_version_t *v = slot->v;
  if (v->s->cfg.verify && !chunk_verified(v, slot->index, slot->buf, slot->len, !slot->from_delta))
    return -EBADMSG;
  slot->kind = ST_SLOT_PUT;
  slot->op.complete = on_write;
  slot->io_len = FD_ALIGN_UP(slot->len, FD_DIRECT_ALIGN);
  slot->io_done = 0;
  if (slot->io_len > slot->len) memset(slot->buf + slot->len, 0, slot->io_len - slot->len);
  st_bit_set(v->pending, slot->index);
  queue_write(slot);
  return 0;
}

int st_chunk_put(st_version_t *v, uint32_t index, void *buf, uint32_t len, st_done_fn done,
                 void *arg) {
  return st_chunk_put_written(v, index, buf, len, NULL, done, arg);
}

int st_chunk_put_written(st_version_t *v, uint32_t index, void *buf, uint32_t len,
                         st_done_fn written, st_done_fn done, void *arg) {
  st_store_t *s = v->s;
  const st_manifest_t *m = v->m;
  if (v->complete || v->complete_step) return -EINVAL;
  if (index >= m->chunk_count) {
    fd_log_warn("%s v%llu: chunk %u out of range (%u chunks)", m->name,
                (unsigned long long)m->version, index, m->chunk_count);
    return -ERANGE;
  }
  if (len != st_manifest_chunk_len(m, index)) {
    fd_log_warn("%s v%llu: chunk %u is %u bytes, manifest says %u", m->name,
                (unsigned long long)m->version, index, len, st_manifest_chunk_len(m, index));
    return -EMSGSIZE;
  }
  if (st_bit(v->bits, index) || st_bit(v->pending, index)) return -EALREADY;
  const uint8_t *region = fd_pool_buf(s->cfg.pool, 0);
  const uint8_t *p = buf;
  size_t span = (size_t)fd_pool_count(s->cfg.pool) * fd_pool_buf_size(s->cfg.pool);
  if (p < region || p >= region + span || (size_t)(p - region) % fd_pool_buf_size(s->cfg.pool))
    return -EINVAL;
  /* Puts that give their buffer back early are bounded apart (st_synced_t). */
  if (written && s->early_n >= fd_pool_count(s->cfg.pool)) return -EAGAIN;
  st_slot_t *slot = st_slot_get(s);
  if (!slot) return -EAGAIN;
  *slot = (st_slot_t){.v = v, .index = index, .buf = buf, .len = len, .written = written,
                      .done = done, .arg = arg};
  int rc = st_put_start(slot);
  if (rc) st_slot_put(s, slot);
  else if (written) s->early_n++;
  return rc;
}

/* ---- reads ------------------------------------------------------------------- */

void st_queue_read(st_slot_t *slot, int fd, uint64_t offset) {
  st_version_t *v = slot->v;
  st_store_t *s = v->s;
  struct io_uring_sqe *sqe = st_sqe(s, v, &slot->op, ST_IO_READ, slot->index);
  if (!sqe) return;
  uint8_t *p = slot->buf + slot->io_done;
  uint32_t n = slot->io_len - slot->io_done;
  offset += slot->io_done;
  if (s->cfg.pool_registered)
    io_uring_prep_read_fixed(sqe, fd, p, n, offset, (int)fd_pool_index(s->cfg.pool, slot->buf));
  else
    io_uring_prep_read(sqe, fd, p, n, offset);
}

static void on_chunk_read(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_slot_t *slot = (st_slot_t *)op;
  st_version_t *v = slot->v;
  st_store_t *s = v->s;
  st_op_done(v);
  if (res > 0) {
    slot->io_done += (uint32_t)res;
    if (slot->io_done < slot->len) {
      st_queue_read(slot, v->data_fd, (uint64_t)slot->index * v->m->chunk_size_bytes);
      return;
    }
    res = (int)slot->len;
    if (s->cfg.verify && fd_crc32c(0, slot->buf, slot->len) != v->m->chunk_crc32c[slot->index]) {
      s->stats.chunks_rejected++;
      fd_log_warn("%s v%llu: stored chunk %u fails its CRC32C", v->m->name,
                  (unsigned long long)v->m->version, slot->index);
      res = -EBADMSG;
    }
  } else {
    if (res == 0) res = -EIO; /* the file is shorter than its manifest */
    s->stats.io_errors++;
    fd_log_error("%s v%llu: chunk %u read failed: %s", v->m->name,
                 (unsigned long long)v->m->version, slot->index, strerror(-res));
  }
  st_done_fn done = slot->done;
  void *arg = slot->arg;
  st_slot_put(s, slot);
  done(arg, res);
}

int st_chunk_read(st_version_t *v, uint32_t index, void *buf, st_done_fn done, void *arg) {
  if (!v->complete) return -EINVAL;
  if (index >= v->m->chunk_count) return -ERANGE;
  st_slot_t *slot = st_slot_get(v->s);
  if (!slot) return -EAGAIN;
  uint32_t len = st_manifest_chunk_len(v->m, index);
  *slot = (st_slot_t){.op.complete = on_chunk_read, .v = v, .kind = ST_SLOT_READ, .index = index,
                      .buf = buf, .len = len, .io_len = FD_ALIGN_UP(len, FD_DIRECT_ALIGN),
                      .done = done, .arg = arg};
  st_queue_read(slot, v->data_fd, (uint64_t)index * v->m->chunk_size_bytes);
  return 0;
}

/* ---- helpers for tools ------------------------------------------------------- */

int st_register_pool(fd_ring_t *ring, fd_pool_t *pool) {
  return io_uring_register_buffers(&ring->ring, fd_pool_iovecs(pool), fd_pool_count(pool));
}

int st_run_until(fd_ring_t *ring, const bool *done) {
  while (!*done) {
    if (ring->inflight == 0) return -EDEADLK; /* nothing can ever set *done */
    int rc = fd_ring_run_once(ring, 1, 0);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) return rc;
  }
  return 0;
}
