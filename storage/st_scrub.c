/*
 * st_scrub.c — re-reading a complete version to find rot, at a bounded rate.
 *
 * Reads go through the ring (O_DIRECT, pool buffers, at most queue_depth at
 * a time); each chunk's CRC32C is compared with the manifest and every bad
 * or unreadable chunk is marked bad (st_repair.c: no longer present, so not
 * served) and reported through the caller's callback (fdnode tells the
 * scheduler and re-fetches it, st_chunk_repair). The rate is kept by an io_uring timeout
 * whenever the bytes issued run ahead of rate * elapsed time, so scrubbing
 * never blocks the ring and never floods the disk.
 */
#include <errno.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "fd_time.h"
#include "st_internal.h"

static void pump(st_version_t *v);

static void finish_if_done(st_version_t *v) {
  if (!v->scrub_running || v->scrub_next < v->m->chunk_count || v->scrub_inflight ||
      v->scrub_timer_armed)
    return;
  v->scrub_running = false;
  fd_log_info("%s v%llu: scrub done, %u bad chunk(s)", v->m->name,
              (unsigned long long)v->m->version, v->scrub_bad);
  v->scrub_done(v->scrub_arg, (int)v->scrub_bad);
}

static void on_timer(fd_op_t *op, int res, uint32_t flags) {
  (void)res;
  (void)flags;
  st_version_t *v = ((st_vop_t *)op)->v;
  st_op_done(v);
  v->scrub_timer_armed = false;
  pump(v);
  finish_if_done(v);
}

static void arm_timer(st_version_t *v, uint64_t ns) {
  if (v->scrub_timer_armed) return;
  v->scrub_timer_armed = true;
  v->scrub_ts.tv_sec = (long long)(ns / 1000000000ull);
  v->scrub_ts.tv_nsec = (long long)(ns % 1000000000ull);
  v->scrub_timer.op.complete = on_timer;
  struct io_uring_sqe *sqe = fd_ring_sqe(v->s->cfg.ring, &v->scrub_timer.op);
  FD_ASSERT(sqe != NULL);
  v->s->inflight++;
  v->inflight++;
  io_uring_prep_timeout(sqe, &v->scrub_ts, 0, 0);
}

static void report_bad(st_version_t *v, uint32_t index, int err) {
  if (st_bit(v->pending, index)) return; /* being repaired: the read raced the write */
  st_chunk_mark_bad(v, index);
  v->scrub_bad++;
  v->s->stats.scrub_bad_chunks++;
  fd_log_error("%s v%llu: scrub: chunk %u is bad: %s", v->m->name,
               (unsigned long long)v->m->version, index, strerror(-err));
  if (v->scrub_bad_fn) v->scrub_bad_fn(v->scrub_arg, v->m->name, v->m->version, index, err);
}

static void on_read(fd_op_t *op, int res, uint32_t flags) {
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
    s->stats.scrub_bytes += slot->len;
    if (fd_crc32c(0, slot->buf, slot->len) != v->m->chunk_crc32c[slot->index])
      report_bad(v, slot->index, -EBADMSG);
  } else {
    s->stats.io_errors++;
    report_bad(v, slot->index, res < 0 ? res : -EIO);
  }
  fd_pool_put(s->cfg.pool, slot->buf);
  st_slot_put(s, slot);
  v->scrub_inflight--;
  pump(v);
  finish_if_done(v);
}

static void pump(st_version_t *v) {
  st_store_t *s = v->s;
  while (v->scrub_next < v->m->chunk_count) {
    if (v->scrub_rate) {
      uint64_t elapsed = fd_now_ns() - v->scrub_start_ns;
      /* Bytes allowed so far; 128-bit to keep rate * ns from overflowing. */
      uint64_t allowed = (uint64_t)((unsigned __int128)v->scrub_rate * elapsed / 1000000000u);
      if (v->scrub_issued > allowed) {
        uint64_t ahead = v->scrub_issued - allowed;
        arm_timer(v, (uint64_t)((unsigned __int128)ahead * 1000000000u / v->scrub_rate) + 1);
        return;
      }
    }
    st_slot_t *slot = st_slot_get(s);
    if (!slot) break;
    uint8_t *buf = fd_pool_get(s->cfg.pool);
    if (!buf) {
      st_slot_put(s, slot);
      break;
    }
    uint32_t index = v->scrub_next++;
    uint32_t len = st_manifest_chunk_len(v->m, index);
    *slot = (st_slot_t){.op.complete = on_read, .v = v, .kind = ST_SLOT_SCRUB, .index = index,
                        .buf = buf, .len = len, .io_len = FD_ALIGN_UP(len, FD_DIRECT_ALIGN)};
    v->scrub_inflight++;
    v->scrub_issued += len;
    st_queue_read(slot, v->data_fd, (uint64_t)index * v->m->chunk_size_bytes);
  }
  /* No slot or buffer and nothing of ours in flight: look again soon. */
  if (v->scrub_next < v->m->chunk_count && v->scrub_inflight == 0) arm_timer(v, FD_STORE_RETRY_NS);
}

int st_scrub(st_version_t *v, uint64_t rate_bytes_per_s, st_bad_chunk_fn bad, st_done_fn done,
             void *arg) {
  if (!v->complete || !done) return -EINVAL;
  if (v->scrub_running) return -EBUSY;
  v->scrub_running = true;
  v->scrub_next = v->scrub_inflight = v->scrub_bad = 0;
  v->scrub_rate = rate_bytes_per_s;
  v->scrub_start_ns = fd_now_ns();
  v->scrub_issued = 0;
  v->scrub_bad_fn = bad;
  v->scrub_done = done;
  v->scrub_arg = arg;
  pump(v);
  return 0;
}
