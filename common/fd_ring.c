/* fd_ring.c — submit, reap a batch, then run callbacks. */
#include "fd_ring.h"

#include <errno.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_limits.h"

int fd_ring_init(fd_ring_t *r, unsigned entries, unsigned flags) {
  if (entries == 0 || entries > FD_RING_ENTRIES_MAX) return -EINVAL;
  memset(r, 0, sizeof(*r));
  return io_uring_queue_init(entries, &r->ring, flags);
}

void fd_ring_deinit(fd_ring_t *r) { io_uring_queue_exit(&r->ring); }

void fd_ring_set_io_hook(fd_ring_t *r, const fd_io_hook_t *hook) { r->io_hook = hook; }

/* Tells the hook about the SQEs queued since the last submit, which the next
 * io_uring_submit* hands to the kernel: [sqe_head, sqe_tail) of the SQ. */
static void report_queued(fd_ring_t *r) {
  const struct io_uring_sq *sq = &r->ring.sq;
  for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++) {
    const struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
    fd_io_event_t ev;
    struct iovec one;
    if (fd_io_event_from_sqe(sqe, &ev, &one))
      r->io_hook->queued(r->io_hook->arg, sqe->user_data, &ev);
  }
}

static int submit(fd_ring_t *r) {
  if (r->io_hook) report_queued(r);
  return io_uring_submit(&r->ring);
}

struct io_uring_sqe *fd_ring_sqe(fd_ring_t *r, fd_op_t *op) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
  if (!sqe) {
    if (submit(r) < 0) return NULL;
    sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return NULL;
  }
  io_uring_sqe_set_data(sqe, op);
  if (op) r->inflight++;
  return sqe;
}

int fd_ring_submit(fd_ring_t *r) { return submit(r); }

int fd_ring_run_once(fd_ring_t *r, unsigned wait_nr, uint64_t timeout_ns) {
  struct io_uring_cqe *cqe = NULL;
  int rc;
  if (r->io_hook) report_queued(r);
  if (wait_nr == 0) {
    rc = io_uring_submit(&r->ring);
  } else if (timeout_ns) {
    struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000ull),
                                   .tv_nsec = (long long)(timeout_ns % 1000000000ull)};
    rc = io_uring_submit_and_wait_timeout(&r->ring, &cqe, wait_nr, &ts, NULL);
  } else {
    rc = io_uring_submit_and_wait(&r->ring, wait_nr);
  }
  if (rc < 0 && rc != -ETIME && rc != -EINTR) return rc;

  /* Collect first, then call back: a callback may queue more work. */
  struct {
    fd_op_t *op;
    int res;
    uint32_t flags;
  } done[FD_RING_REAP_BATCH];
  unsigned n = 0, head;
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    if (n == FD_RING_REAP_BATCH) break;
    done[n].op = io_uring_cqe_get_data(cqe);
    done[n].res = cqe->res;
    done[n].flags = cqe->flags;
    if (r->io_hook) r->io_hook->reaped(r->io_hook->arg, cqe->user_data, cqe->res);
    n++;
  }
  io_uring_cq_advance(&r->ring, n);
  for (unsigned i = 0; i < n; i++) {
    if (!done[i].op) continue;
    if (!(done[i].flags & IORING_CQE_F_MORE)) {
      FD_ASSERT(r->inflight > 0);
      r->inflight--;
    }
    done[i].op->complete(done[i].op, done[i].res, done[i].flags);
  }
  if (n == 0 && rc == -ETIME) return -ETIME;
  return (int)n;
}
