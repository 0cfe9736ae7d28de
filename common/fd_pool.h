/*
 * fd_pool.h — fixed pools of O_DIRECT-aligned buffers.
 *
 * A pool owns `count` buffers of `buf_size` bytes each, carved from one
 * 4096-aligned jemalloc region at creation and never grown: the data path
 * never allocates. Buffers are numbered 0..count-1 and the pool exposes one
 * iovec per buffer, so a buffer's number is its io_uring fixed-buffer index
 * after io_uring_register_buffers(ring, fd_pool_iovecs(p), fd_pool_count(p)).
 *
 * A pool belongs to one thread (one per core engine); it takes no locks.
 * The creator frees it with fd_pool_destroy after every buffer is back and
 * after unregistering it from any ring.
 */
#ifndef FD_POOL_H
#define FD_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct fd_pool fd_pool_t;

/* buf_size must be a non-zero multiple of FD_DIRECT_ALIGN; count at most
 * FD_POOL_BUFFERS_MAX. NULL on bad arguments or no memory. */
fd_pool_t *fd_pool_create(uint32_t count, size_t buf_size);
void fd_pool_destroy(fd_pool_t *pool);

/* A free buffer, or NULL when all are in use (the caller waits for one to
 * come back: that is its backpressure). */
void *fd_pool_get(fd_pool_t *pool);
void fd_pool_put(fd_pool_t *pool, void *buf);

uint32_t fd_pool_index(const fd_pool_t *pool, const void *buf);
void *fd_pool_buf(const fd_pool_t *pool, uint32_t index);
size_t fd_pool_buf_size(const fd_pool_t *pool);
uint32_t fd_pool_count(const fd_pool_t *pool);
uint32_t fd_pool_available(const fd_pool_t *pool);
const struct iovec *fd_pool_iovecs(const fd_pool_t *pool);

#endif /* FD_POOL_H */
