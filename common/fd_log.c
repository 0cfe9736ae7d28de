/* fd_log.c — the single log format, written to stderr one line per write(2). */
#include "fd_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fd_assert.h"

static const char *log_program = "fdist";
static fd_log_level_t log_min_level = FD_LOG_INFO;

void fd_log_init(const char *program, fd_log_level_t min_level) {
  const char *slash = strrchr(program, '/');
  log_program = slash ? slash + 1 : program;
  log_min_level = min_level;
}

void fd_log_set_level(fd_log_level_t min_level) { log_min_level = min_level; }

int fd_log_level_parse(const char *name, fd_log_level_t *out) {
  static const char *const names[] = {"debug", "info", "warn", "error"};
  for (unsigned i = 0; i < FD_ARRAY_LEN(names); i++) {
    if (strcmp(name, names[i]) == 0) {
      *out = (fd_log_level_t)i;
      return 0;
    }
  }
  return -EINVAL;
}

void fd_log_write(fd_log_level_t level, const char *file, int line, const char *fmt, ...) {
  if (level < log_min_level) return;
  int saved_errno = errno;

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;

  char buf[2048];
  int n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c %s[%d] %s:%d ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, "DIWE"[level], log_program, (int)getpid(), base, line);
  if (n < 0) n = 0;
  if ((size_t)n < sizeof(buf)) {
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m > 0) n += m;
  }
  if ((size_t)n >= sizeof(buf) - 1) n = (int)sizeof(buf) - 2; /* truncated */
  buf[n++] = '\n';
  /* One write so concurrent writers' lines stay whole; logging never fails
   * the caller, so a short or failed write is ignored. */
  ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
  (void)w;
  errno = saved_errno;
}

void fd_assert_fail(const char *expr, const char *file, int line, const char *func) {
  fd_log_write(FD_LOG_ERROR, file, line, "assertion failed in %s(): %s", func, expr);
  abort();
}
