/*
 * st_repair.c — bad chunks of a complete version: the mark scrub sets, and
 * the in-place rewrite that clears it.
 *
 * A complete version's bits are all set. Scrub (or the caller, through
 * st_chunk_mark_bad, on a failed serving read) clears the bit of a chunk it
 * found rotten: from then on st_version_has is false for it, so nothing
 * serves it, and st_version_bad counts it. st_chunk_repair takes a good copy
 * of the chunk (from a peer), verifies CRC32C then SHA-256 against the
 * manifest, writes it O_DIRECT at its offset in v<N> through a write
 * descriptor opened on first use, fdatasyncs, and only then sets the bit
 * again. The short last chunk is the exception to O_DIRECT: such a write
 * moves whole 4096-byte blocks and would grow the file past its exact size,
 * so that chunk goes through a buffered descriptor (the fdatasync covers it
 * the same way). A reader of that range sees the old (bad, not served) or
 * the new (verified) bytes; `current` and the file's size never change.
 *
 * The mark lives in memory only: after a restart the next scrub finds the
 * chunk again. Repairs are rare, so each does its own fdatasync rather than
 * join the group commit of st_io.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "st_internal.h"

int st_chunk_mark_bad(st_version_t *v, uint32_t index) {
  if (!v->complete) return -EINVAL;
  if (index >= v->m->chunk_count) return -ERANGE;
  if (st_bit(v->pending, index)) return -EINPROGRESS; /* a repair is writing it */
  if (!st_bit(v->bits, index)) return -EALREADY;
  st_bit_clear(v->bits, index);
  v->bad++;
  return 0;
}

uint32_t st_version_bad(const st_version_t *v) { return v->bad; }

static void repair_finish(st_slot_t *slot, int res) {
  st_version_t *v = slot->v;
  st_store_t *s = v->s;
  uint32_t index = slot->index, len = slot->len;
  st_done_fn done = slot->done;
  void *arg = slot->arg;
  st_slot_put(s, slot);
  st_bit_clear(v->pending, index);
  if (res == 0) {
    FD_ASSERT(v->bad > 0 && !st_bit(v->bits, index));
    st_bit_set(v->bits, index);
    v->bad--;
    s->stats.chunks_repaired++;
    s->stats.bytes_written += len;
    fd_log_info("%s v%" PRIu64 ": chunk %u repaired in place", v->m->name, v->m->version, index);
  } else {
    s->stats.io_errors++;
    fd_log_error("%s v%" PRIu64 ": repair of chunk %u failed: %s", v->m->name, v->m->version,
                 index, strerror(-res));
  }
  done(arg, res);
}

static void queue_repair_write(st_slot_t *slot);

static void on_repair_sync(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_slot_t *slot = (st_slot_t *)op;
  st_op_done(slot->v);
  repair_finish(slot, res < 0 ? res : 0);
}

static void on_repair_write(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_slot_t *slot = (st_slot_t *)op;
  st_version_t *v = slot->v;
  st_op_done(v);
  if (res <= 0) {
    repair_finish(slot, res < 0 ? res : -EIO);
    return;
  }
  slot->io_done += (uint32_t)res;
  if (slot->io_done < slot->io_len) {
    queue_repair_write(slot); /* short write: the rest goes again */
    return;
  }
  slot->op.complete = on_repair_sync;
  struct io_uring_sqe *sqe = st_sqe(v->s, v, &slot->op, ST_IO_SYNC, slot->index);
  if (sqe) io_uring_prep_fsync(sqe, slot->src_fd, IORING_FSYNC_DATASYNC);
}

static void queue_repair_write(st_slot_t *slot) {
  st_version_t *v = slot->v;
  st_store_t *s = v->s;
  uint64_t off = (uint64_t)slot->index * v->m->chunk_size_bytes + slot->io_done;
  uint8_t *p = slot->buf + slot->io_done;
  uint32_t n = slot->io_len - slot->io_done;
  slot->op.complete = on_repair_write;
  struct io_uring_sqe *sqe = st_sqe(s, v, &slot->op, ST_IO_WRITE, slot->index);
  if (!sqe) return; /* a fault was injected in its place */
  if (s->cfg.pool_registered)
    io_uring_prep_write_fixed(sqe, slot->src_fd, p, n, off,
                              (int)fd_pool_index(s->cfg.pool, slot->buf));
  else
    io_uring_prep_write(sqe, slot->src_fd, p, n, off);
}

/* A write descriptor of v<N> (O_DIRECT, or buffered for the short last
 * chunk): one small synchronous open per handle, on its first repair (a
 * control call, like st_version_open); closed with the handle. */
static int repair_fd(st_version_t *v, bool direct) {
  int *fd = direct ? &v->repair_fd : &v->repair_tail_fd;
  if (*fd >= 0) return *fd;
  char full[64];
  snprintf(full, sizeof(full), "v%" PRIu64, v->m->version);
  *fd = openat(v->dir_fd, full, O_WRONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (*fd < 0) {
    int rc = -errno;
    fd_log_error("%s v%" PRIu64 ": cannot open %s for repair: %s", v->m->name, v->m->version,
                 full, strerror(-rc));
    return rc;
  }
  return *fd;
}

int st_chunk_repair(st_version_t *v, uint32_t index, void *buf, uint32_t len, st_done_fn done,
                    void *arg) {
  st_store_t *s = v->s;
  const st_manifest_t *m = v->m;
  if (!v->complete || !done) return -EINVAL;
  if (index >= m->chunk_count) return -ERANGE;
  if (len != st_manifest_chunk_len(m, index)) return -EMSGSIZE;
  if (st_bit(v->pending, index)) return -EINPROGRESS;
  if (st_bit(v->bits, index)) return -EALREADY; /* not marked bad */
  const uint8_t *region = fd_pool_buf(s->cfg.pool, 0);
  const uint8_t *p = buf;
  size_t span = (size_t)fd_pool_count(s->cfg.pool) * fd_pool_buf_size(s->cfg.pool);
  if (p < region || p >= region + span || (size_t)(p - region) % fd_pool_buf_size(s->cfg.pool))
    return -EINVAL;
  /* Verified before anything is written: a wrong copy never touches v<N>. */
  uint32_t crc = fd_crc32c(0, buf, len);
  uint8_t sha[FD_SHA256_LEN];
  fd_sha256_update(s->sha, buf, len);
  fd_sha256_final(s->sha, sha);
  if (crc != m->chunk_crc32c[index] ||
      memcmp(sha, m->chunk_sha256 + (size_t)index * FD_SHA256_LEN, FD_SHA256_LEN) != 0) {
    s->stats.chunks_rejected++;
    fd_log_warn("%s v%" PRIu64 ": repair copy of chunk %u rejected: %s differs from the manifest",
                m->name, m->version, index, crc != m->chunk_crc32c[index] ? "CRC32C" : "SHA-256");
    return -EBADMSG;
  }
  int fd = repair_fd(v, len % FD_DIRECT_ALIGN == 0);
  if (fd < 0) return fd;
  st_slot_t *slot = st_slot_get(s);
  if (!slot) return -EAGAIN;
  *slot = (st_slot_t){.v = v, .kind = ST_SLOT_PUT, .index = index, .buf = buf, .len = len,
                      .io_len = len, .src_fd = fd, .done = done, .arg = arg};
  st_bit_set(v->pending, index);
  queue_repair_write(slot);
  return 0;
}
