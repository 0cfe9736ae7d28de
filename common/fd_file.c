/* fd_file.c — small files written whole: temp file, then rename. */
#include "fd_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "fd_limits.h"

int fd_file_replace(const char *path, const void *data, size_t len) {
  char tmp[FD_PATH_LEN_MAX + 8];
  int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  if (n < 0 || (size_t)n >= sizeof(tmp)) return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  ssize_t w = write(fd, data, len);
  int err = w < 0 ? -errno : (size_t)w == len ? 0 : -EIO;
  if (close(fd) < 0 && !err) err = -errno;
  if (!err && rename(tmp, path) < 0) err = -errno;
  if (err) unlink(tmp);
  return err;
}

int fd_port_file_write(const char *path, uint16_t port) {
  char text[16];
  int len = snprintf(text, sizeof(text), "%u\n", port);
  return fd_file_replace(path, text, (size_t)len);
}
