/*
 * fd_log.h — one log format for every fdist process, on stderr.
 *
 *   2026-11-22T00:10:50.123Z I fdnode[4242] storage.c:88 chunk 7 stored
 *
 * Time in UTC with milliseconds, a level letter (D I W E), the program and
 * pid, the source position, the message. A line is written with one write(2)
 * so lines from concurrent processes never interleave. Logging never fails
 * the caller.
 */
#ifndef FD_LOG_H
#define FD_LOG_H

typedef enum fd_log_level {
  FD_LOG_DEBUG = 0,
  FD_LOG_INFO = 1,
  FD_LOG_WARN = 2,
  FD_LOG_ERROR = 3,
} fd_log_level_t;

/* Names the program in every line; call once from main(). */
void fd_log_init(const char *program, fd_log_level_t min_level);
void fd_log_set_level(fd_log_level_t min_level);
/* Parses "debug", "info", "warn", "error"; returns -EINVAL otherwise. */
int fd_log_level_parse(const char *name, fd_log_level_t *out);

__attribute__((format(printf, 4, 5))) void fd_log_write(fd_log_level_t level, const char *file,
                                                        int line, const char *fmt, ...);

#define fd_log_debug(...) fd_log_write(FD_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define fd_log_info(...) fd_log_write(FD_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define fd_log_warn(...) fd_log_write(FD_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define fd_log_error(...) fd_log_write(FD_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)

#endif /* FD_LOG_H */
