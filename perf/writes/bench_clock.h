/* bench_clock.h — the clocks writes_bench and zk_bench both report with:
 * monotonic time (common/fd_time.h) and this process's CPU time. */
#ifndef BENCH_CLOCK_H
#define BENCH_CLOCK_H

#include <sys/resource.h>

#include "fd_time.h"

/* User + system CPU seconds this process has used. */
static inline double bench_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

#endif /* BENCH_CLOCK_H */
