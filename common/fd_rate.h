/*
 * fd_rate.h — a token bucket for byte rates (a node's upload or download
 * cap), shared by the engines of one process without a lock.
 *
 * The bucket holds at most `burst` bytes of tokens and refills at the rate.
 * fd_rate_take lets a transfer go while the bucket is not in debt and
 * charges it in full, so one chunk larger than what is left runs the bucket
 * into debt that later refills repay: over any long stretch the bytes let
 * through are rate x time + burst, whatever the transfers' sizes, and no
 * single transfer is ever split or refused for good.
 *
 * Every field is updated with atomics (relaxed: the bucket orders nothing
 * else), so serving engines on other threads may take from the same bucket.
 * A rate of 0 means no cap: fd_rate_take always says yes.
 */
#ifndef FD_RATE_H
#define FD_RATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct fd_rate {
  uint64_t bytes_per_s; /* 0: unlimited */
  int64_t burst;        /* tokens held at most, bytes */
  _Atomic int64_t tokens;
  _Atomic uint64_t refilled_ns; /* tokens were last added up to this time */
  _Atomic uint64_t waited_ns;   /* time takers were refused, summed (metrics) */
  _Atomic uint64_t refused_since_ns; /* the bucket refused since (0: it does not) */
} fd_rate_t;

/* bits_per_s 0: no cap. burst_bytes 0: the default (a tenth of a second of
 * the rate, at least FD_RATE_BURST_MIN). Starts full. */
void fd_rate_init(fd_rate_t *r, uint64_t bits_per_s, uint64_t burst_bytes, uint64_t now_ns);

static inline bool fd_rate_capped(const fd_rate_t *r) { return r && r->bytes_per_s != 0; }

/* True when len bytes may go now (and charges them); false while the bucket
 * is in debt (the caller tries again later: fd_rate_wait_ns says when). */
bool fd_rate_take(fd_rate_t *r, uint64_t len, uint64_t now_ns);

/* Charges len bytes that already moved (may run the bucket into debt). */
void fd_rate_charge(fd_rate_t *r, uint64_t len, uint64_t now_ns);

/* True when the bucket is out of debt (what was charged is repaid); false
 * starts the waiting clock as a refused take does. */
bool fd_rate_ready(fd_rate_t *r, uint64_t now_ns);

/* Time until the bucket is out of debt, 0 when a take would succeed now. */
uint64_t fd_rate_wait_ns(fd_rate_t *r, uint64_t now_ns);

/* Time takers were refused, in total (a refusal starts the clock, the next
 * successful take stops it). */
uint64_t fd_rate_waited_ns(const fd_rate_t *r, uint64_t now_ns);

#endif /* FD_RATE_H */
