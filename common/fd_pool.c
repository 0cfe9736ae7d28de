/* fd_pool.c — a stack of free buffer numbers over one aligned region. */
#include "fd_pool.h"

#include <jemalloc/jemalloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_limits.h"

struct fd_pool {
  uint8_t *region;
  size_t buf_size;
  uint32_t count;
  uint32_t free_top;   /* number of entries in free_stack */
  uint32_t *free_stack; /* buffer numbers not in use */
  bool *in_use;         /* catches double puts: a bug, so asserted */
  struct iovec *iovecs;
};

fd_pool_t *fd_pool_create(uint32_t count, size_t buf_size) {
  if (count == 0 || count > FD_POOL_BUFFERS_MAX || buf_size == 0 ||
      buf_size % FD_DIRECT_ALIGN != 0)
    return NULL;
  fd_pool_t *pool = calloc(1, sizeof(*pool));
  if (!pool) return NULL;
  pool->buf_size = buf_size;
  pool->count = count;
  pool->region = mallocx(buf_size * count, MALLOCX_ALIGN(FD_DIRECT_ALIGN));
  pool->free_stack = calloc(count, sizeof(*pool->free_stack));
  pool->in_use = calloc(count, sizeof(*pool->in_use));
  pool->iovecs = calloc(count, sizeof(*pool->iovecs));
  if (!pool->region || !pool->free_stack || !pool->in_use || !pool->iovecs) {
    fd_pool_destroy(pool);
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    pool->free_stack[i] = count - 1 - i; /* hand out buffer 0 first */
    pool->iovecs[i].iov_base = pool->region + (size_t)i * buf_size;
    pool->iovecs[i].iov_len = buf_size;
  }
  pool->free_top = count;
  return pool;
}

void fd_pool_destroy(fd_pool_t *pool) {
  if (!pool) return;
  if (pool->region) dallocx(pool->region, MALLOCX_ALIGN(FD_DIRECT_ALIGN));
  free(pool->free_stack);
  free(pool->in_use);
  free(pool->iovecs);
  free(pool);
}

void *fd_pool_get(fd_pool_t *pool) {
  if (pool->free_top == 0) return NULL;
  uint32_t index = pool->free_stack[--pool->free_top];
  FD_ASSERT(!pool->in_use[index]);
  pool->in_use[index] = true;
  return pool->region + (size_t)index * pool->buf_size;
}

void fd_pool_put(fd_pool_t *pool, void *buf) {
  uint32_t index = fd_pool_index(pool, buf);
  FD_ASSERT(pool->in_use[index]);
  pool->in_use[index] = false;
  FD_ASSERT(pool->free_top < pool->count);
  pool->free_stack[pool->free_top++] = index;
}

uint32_t fd_pool_index(const fd_pool_t *pool, const void *buf) {
  const uint8_t *p = buf;
  FD_ASSERT(p >= pool->region && p < pool->region + (size_t)pool->count * pool->buf_size);
  size_t offset = (size_t)(p - pool->region);
  FD_ASSERT(offset % pool->buf_size == 0);
  return (uint32_t)(offset / pool->buf_size);
}

void *fd_pool_buf(const fd_pool_t *pool, uint32_t index) {
  FD_ASSERT(index < pool->count);
  return pool->region + (size_t)index * pool->buf_size;
}

size_t fd_pool_buf_size(const fd_pool_t *pool) { return pool->buf_size; }
uint32_t fd_pool_count(const fd_pool_t *pool) { return pool->count; }
uint32_t fd_pool_available(const fd_pool_t *pool) { return pool->free_top; }
const struct iovec *fd_pool_iovecs(const fd_pool_t *pool) { return pool->iovecs; }
