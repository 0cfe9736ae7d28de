/*
 * st_complete.c — turning v<N>.partial into v<N> and switching `current`,
 * as a chain of io_uring operations, one step per completion:
 *
 *   1 ftruncate to the exact size (the last chunk was written aligned)
 *   2 fdatasync v<N>.partial
 *   3 rename v<N>.partial -> v<N>
 *   4 fsync <name>/            the rename is durable before anyone sees it
 *   5 unlink current.tmp       (left by an earlier crash; ENOENT is fine)
 *   6 symlink current.tmp -> v<N>
 *   7 rename current.tmp -> current   (atomic switch)
 *   8 fsync <name>/
 *   9 unlink v<N>.bitmap
 *
 * A crash before 3 leaves a .partial with its bitmap all set: reopening
 * resumes and completes again. A crash after 3 leaves v<N>: reopening finds
 * it complete and finishes 5-9 (st_switch_current_sync). `current` never
 * moves backwards: if it already names a newer version, steps 5-8 are
 * skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "st_internal.h"

enum {
  STEP_TRUNCATE = 1,
  STEP_DATASYNC,
  STEP_RENAME,
  STEP_DIRSYNC,
  STEP_UNLINK_TMP,
  STEP_SYMLINK,
  STEP_SWITCH,
  STEP_DIRSYNC2,
  STEP_UNLINK_BITMAP,
  STEP_DONE,
};

static void step(st_version_t *v);

static void finish(st_version_t *v, int res) {
  st_done_fn done = v->complete_done;
  void *arg = v->complete_arg;
  v->complete_step = 0;
  if (res == 0) {
    fd_log_info("%s v%llu complete", v->m->name, (unsigned long long)v->m->version);
  } else {
    v->s->stats.io_errors++;
    fd_log_error("%s v%llu: completing failed: %s", v->m->name, (unsigned long long)v->m->version,
                 strerror(-res));
  }
  done(arg, res);
}

static void on_step(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_version_t *v = ((st_vop_t *)op)->v;
  st_op_done(v);
  if (res < 0 && !((v->complete_step == STEP_UNLINK_TMP || v->complete_step == STEP_UNLINK_BITMAP) &&
                   res == -ENOENT)) {
    if (v->complete_step > STEP_RENAME) {
      /* v<N> exists: the version is complete even if `current` is not
       * switched yet; reopening finishes the switch. */
      v->complete = true;
    }
    finish(v, res);
    return;
  }
  if (v->complete_step == STEP_RENAME) {
    /* The file is v<N> now; keep the handle usable for reads. */
    v->complete = true;
  }
  if (v->complete_step == STEP_UNLINK_BITMAP) {
    close(v->bitmap_fd);
    v->bitmap_fd = -1;
  }
  v->complete_step++;
  step(v);
}

static void step(st_version_t *v) {
  if (v->complete_step == STEP_TRUNCATE) {
    if (v->m->size_bytes % FD_DIRECT_ALIGN == 0) {
      v->complete_step++;
    } else if (!v->s->can_ftruncate) {
      /* Kernel before 6.9: one small synchronous metadata call. */
      int rc = fd_io_ftruncate(v->s->cfg.io_hook, v->data_fd, v->m->size_bytes);
      if (rc) {
        finish(v, rc);
        return;
      }
      v->complete_step++;
    }
  }
  if (v->complete_step == STEP_UNLINK_TMP) {
    uint64_t cur;
    char target[64];
    ssize_t len = readlinkat(v->dir_fd, "current", target, sizeof(target) - 1);
    if (len > 1 && target[0] == 'v') {
      target[len] = 0;
      cur = strtoull(target + 1, NULL, 10);
      if (cur >= v->m->version) v->complete_step = STEP_UNLINK_BITMAP; /* never backwards */
    }
  }
  if (v->complete_step == STEP_DONE) {
    finish(v, 0);
    return;
  }
  struct io_uring_sqe *sqe = st_sqe(v->s, v, &v->complete_op.op, ST_IO_META, 0);
  if (!sqe) return; /* a fault was injected in its place */
  switch (v->complete_step) {
    case STEP_TRUNCATE:
      io_uring_prep_rw(FD_IORING_OP_FTRUNCATE, sqe, v->data_fd, NULL, 0, v->m->size_bytes);
      break;
    case STEP_DATASYNC:
      io_uring_prep_fsync(sqe, v->data_fd, IORING_FSYNC_DATASYNC);
      break;
    case STEP_RENAME:
      io_uring_prep_renameat(sqe, v->dir_fd, v->path_partial, v->dir_fd, v->path_full, 0);
      break;
    case STEP_DIRSYNC:
    case STEP_DIRSYNC2:
      io_uring_prep_fsync(sqe, v->dir_fd, 0);
      break;
    case STEP_UNLINK_TMP:
      io_uring_prep_unlinkat(sqe, v->dir_fd, "current.tmp", 0);
      break;
    case STEP_SYMLINK:
      io_uring_prep_symlinkat(sqe, v->path_full, v->dir_fd, "current.tmp");
      break;
    case STEP_SWITCH:
      io_uring_prep_renameat(sqe, v->dir_fd, "current.tmp", v->dir_fd, "current", 0);
      break;
    case STEP_UNLINK_BITMAP:
      io_uring_prep_unlinkat(sqe, v->dir_fd, v->path_bitmap, 0);
      break;
    default:
      FD_ASSERT(!"bad completion step");
  }
}

int st_version_complete(st_version_t *v, st_done_fn done, void *arg) {
  if (v->complete) return -EALREADY;
  if (v->complete_step) return -EBUSY;
  if (v->missing || v->inflight || v->delta_running || v->scrub_running) return -EAGAIN;
  snprintf(v->path_full, sizeof(v->path_full), "v%" PRIu64, v->m->version);
  snprintf(v->path_partial, sizeof(v->path_partial), "%s.partial", v->path_full);
  snprintf(v->path_bitmap, sizeof(v->path_bitmap), "%s.bitmap", v->path_full);
  v->complete_op.op.complete = on_step;
  v->complete_done = done;
  v->complete_arg = arg;
  v->complete_step = STEP_TRUNCATE;
  step(v);
  return 0;
}
