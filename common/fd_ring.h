/*
 * fd_ring.h — the io_uring convention every fdist module follows.
 *
 * Each in-flight operation is a caller-owned struct that embeds an fd_op_t;
 * its address is the SQE's user_data. When the completion arrives the loop
 * calls op->complete(op, cqe->res, cqe->flags). Completions are collected
 * first and callbacks run after (no recursion into the ring from inside a
 * reap), so a callback may freely queue new operations.
 *
 * rpc/ and storage/ both queue onto the same fd_ring_t, so one per-core loop
 * drives the network and the disk together. A ring belongs to one thread.
 *
 * A crash test can set an io hook (fd_io.h) on a ring: every operation that
 * changes the disk is reported when it is submitted, and every completion
 * when it is collected, before the callbacks of its batch run. Without one
 * (production) that costs a NULL test per submit and per completion.
 */
#ifndef FD_RING_H
#define FD_RING_H

#include <liburing.h>
#include <stdint.h>

#include "fd_io.h"

/* IORING_OP_FTRUNCATE (kernel 6.9), newer than liburing 2.3's header. */
#define FD_IORING_OP_FTRUNCATE 55

typedef struct fd_op fd_op_t;
/* res is cqe->res as it is (bytes, or -errno); flags is cqe->flags
 * (IORING_CQE_F_MORE on a multishot completion that will fire again,
 * IORING_CQE_F_BUFFER with the provided-buffer id, IORING_CQE_F_NOTIF ...). */
typedef void (*fd_op_fn)(fd_op_t *op, int res, uint32_t flags);

struct fd_op {
  fd_op_fn complete;
};

typedef struct fd_ring {
  struct io_uring ring;
  uint32_t inflight; /* operations whose final completion has not arrived */
  const fd_io_hook_t *io_hook; /* tests only; NULL in production */
} fd_ring_t;

/* entries at most FD_RING_ENTRIES_MAX; flags are io_uring_setup flags. */
int fd_ring_init(fd_ring_t *r, unsigned entries, unsigned flags);
void fd_ring_deinit(fd_ring_t *r);

/* Reports r's disk operations to hook from now on (NULL: stop). The hook
 * must outlive its use; set it while nothing is queued and unsubmitted. */
void fd_ring_set_io_hook(fd_ring_t *r, const fd_io_hook_t *hook);

/* An SQE whose completion goes to op (op may be NULL: completion ignored).
 * When the submission queue is full it submits what is queued first, so it
 * never fails while the kernel accepts submissions; returns NULL only if
 * that submit fails. */
struct io_uring_sqe *fd_ring_sqe(fd_ring_t *r, fd_op_t *op);

/* Submits what is queued; returns the number submitted or -errno. */
int fd_ring_submit(fd_ring_t *r);

/* Submits, waits for at least wait_nr completions or timeout_ns (0: no
 * timeout), then runs the callbacks of every completion ready, at most
 * FD_RING_REAP_BATCH. Returns the number of completions handled or -errno
 * (-ETIME when the timeout passed with none). */
int fd_ring_run_once(fd_ring_t *r, unsigned wait_nr, uint64_t timeout_ns);

#define FD_RING_REAP_BATCH 256u

#endif /* FD_RING_H */
