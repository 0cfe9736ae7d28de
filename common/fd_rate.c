/* fd_rate.c — the lock-free token bucket (fd_rate.h). */
#include "fd_rate.h"

#include "fd_limits.h"

#define NS_PER_S 1000000000ull

void fd_rate_init(fd_rate_t *r, uint64_t bits_per_s, uint64_t burst_bytes, uint64_t now_ns) {
  r->bytes_per_s = bits_per_s / 8;
  if (!burst_bytes) burst_bytes = r->bytes_per_s / 10;
  if (burst_bytes < FD_RATE_BURST_MIN) burst_bytes = FD_RATE_BURST_MIN;
  r->burst = (int64_t)burst_bytes;
  atomic_init(&r->tokens, r->burst);
  atomic_init(&r->refilled_ns, now_ns);
  atomic_init(&r->waited_ns, 0);
  atomic_init(&r->refused_since_ns, 0);
}

/* Adds the tokens earned since the last refill; one thread wins each step
 * of time (the compare-and-swap on refilled_ns), so none is counted twice. */
static void refill(fd_rate_t *r, uint64_t now_ns) {
  uint64_t last = atomic_load_explicit(&r->refilled_ns, memory_order_relaxed);
  if (now_ns <= last) return;
  uint64_t elapsed = now_ns - last;
  /* tokens earned, in whole bytes; the fraction stays for the next refill */
  unsigned __int128 earned = (unsigned __int128)elapsed * r->bytes_per_s / NS_PER_S;
  if (earned == 0) return;
  uint64_t used_ns = (uint64_t)(earned * NS_PER_S / r->bytes_per_s);
  int64_t room = r->burst - atomic_load_explicit(&r->tokens, memory_order_relaxed);
  if (room < 0) room = 0;
  if (earned > (unsigned __int128)room) { /* more than fills it (debt repaid too) */
    earned = (unsigned __int128)room;
    used_ns = elapsed;
  }
  if (!atomic_compare_exchange_strong_explicit(&r->refilled_ns, &last, last + used_ns,
                                               memory_order_relaxed, memory_order_relaxed))
    return; /* another thread refilled this stretch */
  int64_t t = atomic_fetch_add_explicit(&r->tokens, (int64_t)earned, memory_order_relaxed) +
              (int64_t)earned;
  while (t > r->burst && !atomic_compare_exchange_weak_explicit(
                             &r->tokens, &t, r->burst, memory_order_relaxed,
                             memory_order_relaxed)) {
  }
}

bool fd_rate_ready(fd_rate_t *r, uint64_t now_ns) {
  if (!fd_rate_capped(r)) return true;
  refill(r, now_ns);
  if (atomic_load_explicit(&r->tokens, memory_order_relaxed) <= 0) {
    uint64_t zero = 0;
    atomic_compare_exchange_strong_explicit(&r->refused_since_ns, &zero, now_ns,
                                            memory_order_relaxed, memory_order_relaxed);
    return false;
  }
  uint64_t since = atomic_exchange_explicit(&r->refused_since_ns, 0, memory_order_relaxed);
  if (since && now_ns > since)
    atomic_fetch_add_explicit(&r->waited_ns, now_ns - since, memory_order_relaxed);
  return true;
}

void fd_rate_charge(fd_rate_t *r, uint64_t len, uint64_t now_ns) {
  if (!fd_rate_capped(r)) return;
  refill(r, now_ns);
  atomic_fetch_sub_explicit(&r->tokens, (int64_t)len, memory_order_relaxed);
}

bool fd_rate_take(fd_rate_t *r, uint64_t len, uint64_t now_ns) {
  if (!fd_rate_ready(r, now_ns)) return false;
  fd_rate_charge(r, len, now_ns);
  return true;
}

uint64_t fd_rate_wait_ns(fd_rate_t *r, uint64_t now_ns) {
  if (!fd_rate_capped(r)) return 0;
  refill(r, now_ns);
  int64_t t = atomic_load_explicit(&r->tokens, memory_order_relaxed);
  if (t > 0) return 0;
  return (uint64_t)(((unsigned __int128)(uint64_t)(1 - t) * NS_PER_S + r->bytes_per_s - 1) /
                    r->bytes_per_s);
}

uint64_t fd_rate_waited_ns(const fd_rate_t *r, uint64_t now_ns) {
  if (!fd_rate_capped(r)) return 0;
  uint64_t w = atomic_load_explicit(&r->waited_ns, memory_order_relaxed);
  uint64_t since = atomic_load_explicit(&r->refused_since_ns, memory_order_relaxed);
  return w + (since && now_ns > since ? now_ns - since : 0);
}
