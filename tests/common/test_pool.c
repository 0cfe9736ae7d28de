/* test_pool.c — aligned buffer pools: alignment, exhaustion, indices, iovecs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fd_limits.h"
#include "fd_pool.h"

static void test_pool_alignment_and_exhaustion(void **state) {
  (void)state;
  fd_pool_t *pool = fd_pool_create(8, 64u * 1024u);
  assert_non_null(pool);
  void *bufs[8];
  for (int i = 0; i < 8; i++) {
    bufs[i] = fd_pool_get(pool);
    assert_non_null(bufs[i]);
    assert_int_equal((uintptr_t)bufs[i] % FD_DIRECT_ALIGN, 0);
    memset(bufs[i], i, (size_t)64 * 1024); /* whole buffer is ours */
  }
  assert_null(fd_pool_get(pool));
  assert_int_equal(fd_pool_available(pool), 0);
  fd_pool_put(pool, bufs[3]);
  assert_int_equal(fd_pool_available(pool), 1);
  assert_ptr_equal(fd_pool_get(pool), bufs[3]);
  for (int i = 0; i < 8; i++) fd_pool_put(pool, bufs[i]);
  assert_int_equal(fd_pool_available(pool), 8);
  fd_pool_destroy(pool);
}

static void test_pool_indices_match_iovecs(void **state) {
  (void)state;
  fd_pool_t *pool = fd_pool_create(4, 8192);
  assert_non_null(pool);
  const struct iovec *iov = fd_pool_iovecs(pool);
  for (uint32_t i = 0; i < 4; i++) {
    void *b = fd_pool_get(pool);
    uint32_t idx = fd_pool_index(pool, b);
    assert_ptr_equal(iov[idx].iov_base, b);
    assert_int_equal(iov[idx].iov_len, 8192);
    assert_ptr_equal(fd_pool_buf(pool, idx), b);
  }
  assert_int_equal(fd_pool_count(pool), 4);
  assert_int_equal(fd_pool_buf_size(pool), 8192);
  for (uint32_t i = 0; i < 4; i++) fd_pool_put(pool, fd_pool_buf(pool, i));
  fd_pool_destroy(pool);
}

static void test_pool_rejects_bad_sizes(void **state) {
  (void)state;
  assert_null(fd_pool_create(0, 4096));
  assert_null(fd_pool_create(4, 1000));
  assert_null(fd_pool_create(FD_POOL_BUFFERS_MAX + 1, 4096));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_alignment_and_exhaustion),
      cmocka_unit_test(test_pool_indices_match_iovecs),
      cmocka_unit_test(test_pool_rejects_bad_sizes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
