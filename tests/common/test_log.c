/* test_log.c — the one log line format, levels, and error messages. */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_error.h"
#include "fd_log.h"

/* Runs fn with stderr captured into out. */
static void capture(void (*fn)(void), char *out, size_t out_len) {
  char path[] = "/tmp/fd-test-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  ssize_t n = pread(fd, out, out_len - 1, 0);
  assert_true(n >= 0);
  out[n] = '\0';
  close(fd);
  unlink(path);
}

static void log_two(void) {
  fd_log_init("/usr/bin/fdtest", FD_LOG_INFO);
  fd_log_debug("hidden %d", 1);
  fd_log_warn("chunk %d rejected: %s", 7, fd_strerror(-EBADMSG));
}

static void test_log_format(void **state) {
  (void)state;
  char out[1024];
  capture(log_two, out, sizeof(out));
  regex_t re;
  assert_int_equal(regcomp(&re,
                           "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                           "W fdtest\\[[0-9]+\\] test_log\\.c:[0-9]+ chunk 7 rejected: checksum "
                           "mismatch \\(CRC32C or SHA-256\\)\n$",
                           REG_EXTENDED),
                   0);
  assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
  regfree(&re);
}

static void test_level_parse_and_errors(void **state) {
  (void)state;
  fd_log_level_t level;
  assert_int_equal(fd_log_level_parse("warn", &level), 0);
  assert_int_equal(level, FD_LOG_WARN);
  assert_int_equal(fd_log_level_parse("loud", &level), -EINVAL);
  assert_string_equal(fd_strerror(-ENOSPC), "No space left on device");
  assert_string_equal(fd_strerror(-EKEYREJECTED), "signature or authentication check failed");
  assert_string_equal(fd_strerror(0), "success");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_log_format),
      cmocka_unit_test(test_level_parse_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
