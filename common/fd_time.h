/* fd_time.h — monotonic clocks for deadlines, timers and rates. */
#ifndef FD_TIME_H
#define FD_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t fd_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t fd_now_ms(void) { return fd_now_ns() / 1000000ull; }

/* Wall-clock seconds since the epoch, for manifests and reports only. */
static inline uint64_t fd_wall_s(void) { return (uint64_t)time(NULL); }

#endif /* FD_TIME_H */
