/* fd_file.c — small files written whole: temp file, then rename. */
#include "fd_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
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

int fd_file_replace_durable(const char *path, const void *data, size_t len, unsigned mode) {
  char tmp[FD_PATH_LEN_MAX + 8], dir[FD_PATH_LEN_MAX];
  int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  if (n < 0 || (size_t)n >= sizeof(tmp) || strlen(path) >= sizeof(dir)) return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
  if (fd < 0) return -errno;
  ssize_t w = write(fd, data, len);
  int err = w < 0 ? -errno : (size_t)w == len ? 0 : -EIO;
  if (!err && fsync(fd) < 0) err = -errno;
  if (close(fd) < 0 && !err) err = -errno;
  if (!err && rename(tmp, path) < 0) err = -errno;
  if (err) {
    unlink(tmp);
    return err;
  }
  memcpy(dir, path, strlen(path) + 1);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  if (fsync(dfd) < 0) err = -errno;
  close(dfd);
  return err;
}

int fd_file_read(const char *path, void *buf, size_t cap, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t got = 0;
  int err = 0;
  uint8_t extra;
  for (;;) { /* bounded: each pass reads at least one byte or ends */
    ssize_t r = got < cap ? read(fd, (uint8_t *)buf + got, cap - got) : read(fd, &extra, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = -errno;
      break;
    }
    if (r == 0) break;
    if (got == cap) {
      err = -EMSGSIZE;
      break;
    }
    got += (size_t)r;
  }
  close(fd);
  if (!err) *len = got;
  return err;
}
