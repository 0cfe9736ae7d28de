/* test_rate.c — the token bucket: rate held over time whatever the transfer
 * sizes, bursts bounded, no cap when the rate is 0, and threads sharing one
 * bucket never let through more than the rate allows. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fd_rate.h"

#define MS 1000000ull
#define S (1000 * MS)

static void test_rate_unlimited(void **state) {
  (void)state;
  fd_rate_t r;
  fd_rate_init(&r, 0, 0, 0);
  assert_false(fd_rate_capped(&r));
  for (int i = 0; i < 1000; i++) assert_true(fd_rate_take(&r, 1u << 30, 0));
  assert_int_equal(fd_rate_wait_ns(&r, 0), 0);
  assert_false(fd_rate_capped(NULL));
}

/* Bytes let through in `seconds` of 1 ms steps, each step trying to send
 * chunks of `chunk` bytes until refused. */
static uint64_t drive(fd_rate_t *r, uint64_t chunk, uint64_t seconds, uint64_t *max_step) {
  uint64_t sent = 0;
  *max_step = 0;
  for (uint64_t t = 1; t <= seconds * 1000; t++) {
    uint64_t step = 0;
    while (fd_rate_take(r, chunk, t * MS)) step += chunk;
    sent += step;
    if (step > *max_step) *max_step = step;
  }
  return sent;
}

static void test_rate_holds_whatever_the_chunk(void **state) {
  (void)state;
  const uint64_t chunks[] = {1500, 64u << 10, 1u << 20, 4u << 20};
  for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
    fd_rate_t r;
    fd_rate_init(&r, 100000000ull, 0, 0); /* 100 Mbit/s = 12.5 MB/s */
    uint64_t max_step;
    uint64_t sent = drive(&r, chunks[k], 10, &max_step);
    uint64_t want = 125000000ull; /* 10 s */
    /* at most the rate plus the bucket and one chunk, at least the rate
     * less one chunk of debt */
    assert_true(sent <= want + (uint64_t)r.burst + chunks[k]);
    assert_true(sent + chunks[k] >= want);
    assert_true(max_step <= (uint64_t)r.burst + chunks[k]);
  }
}

static void test_rate_burst_bounded_after_idle(void **state) {
  (void)state;
  fd_rate_t r;
  fd_rate_init(&r, 80000000ull, 1u << 20, 0); /* 10 MB/s, 1 MiB bucket */
  assert_int_equal(r.burst, 1 << 20);
  uint64_t n = 0;
  while (fd_rate_take(&r, 4096, 3600 * S)) n += 4096; /* after an hour idle */
  assert_true(n <= (1u << 20) + 4096);
  assert_true(n >= (1u << 20));
  assert_true(fd_rate_wait_ns(&r, 3600 * S) > 0);
  /* the wait it names is enough */
  uint64_t w = fd_rate_wait_ns(&r, 3600 * S);
  assert_true(fd_rate_take(&r, 4096, 3600 * S + w));
}

static void test_rate_counts_waiting(void **state) {
  (void)state;
  fd_rate_t r;
  fd_rate_init(&r, 8000000ull, 1u << 20, 0); /* 1 MB/s */
  assert_true(fd_rate_take(&r, 2u << 20, 0)); /* 1 MiB of debt */
  assert_false(fd_rate_take(&r, 1, 10 * MS));
  assert_int_equal(fd_rate_waited_ns(&r, 500 * MS), 490 * MS);
  assert_true(fd_rate_take(&r, 1, 2 * S));
  assert_int_equal(fd_rate_waited_ns(&r, 3 * S), 1990 * MS);
}

/* The download side: bytes are charged as they land (they moved already),
 * and credit waits until the debt they left is repaid. */
static void test_rate_charge_then_ready(void **state) {
  (void)state;
  fd_rate_t r;
  fd_rate_init(&r, 8000000ull, 1u << 20, 0); /* 1 MB/s, 1 MiB bucket */
  assert_true(fd_rate_ready(&r, 0));
  fd_rate_charge(&r, 4u << 20, MS); /* a first window of 4 MiB lands at once */
  assert_false(fd_rate_ready(&r, MS));
  assert_false(fd_rate_ready(&r, 3 * S)); /* 3 MiB of debt take ~3.1 s */
  assert_true(fd_rate_ready(&r, 3200 * MS));
  assert_true(fd_rate_waited_ns(&r, 4 * S) >= 3 * S);
  fd_rate_t none;
  fd_rate_init(&none, 0, 0, 0);
  fd_rate_charge(&none, 1u << 30, 0);
  assert_true(fd_rate_ready(&none, 0));
}

typedef struct {
  fd_rate_t *r;
  _Atomic uint64_t *clock_ms;
  uint64_t sent;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  for (;;) {
    uint64_t t = atomic_load(w->clock_ms);
    if (t == UINT64_MAX) return NULL;
    if (fd_rate_take(w->r, 65536, t * MS)) w->sent += 65536;
  }
}

static void test_rate_shared_by_threads(void **state) {
  (void)state;
  fd_rate_t r;
  fd_rate_init(&r, 800000000ull, 0, 0); /* 100 MB/s */
  _Atomic uint64_t clock_ms = 0;
  worker_t w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker_t){&r, &clock_ms, 0};
    assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
  }
  for (uint64_t t = 1; t <= 2000; t++) { /* 2 s of simulated time */
    atomic_store(&clock_ms, t);
    for (volatile int spin = 0; spin < 2000; spin++) {
    }
  }
  atomic_store(&clock_ms, UINT64_MAX);
  uint64_t sent = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    sent += w[i].sent;
  }
  /* never more than rate x time + bucket + one transfer per thread */
  assert_true(sent <= 200000000ull + (uint64_t)r.burst + 4 * 65536);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rate_unlimited),
      cmocka_unit_test(test_rate_holds_whatever_the_chunk),
      cmocka_unit_test(test_rate_burst_bounded_after_idle),
      cmocka_unit_test(test_rate_counts_waiting),
      cmocka_unit_test(test_rate_charge_then_ready),
      cmocka_unit_test(test_rate_shared_by_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
