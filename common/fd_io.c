/* fd_io.c — mutating file-system calls, each reported to an optional hook. */
#include "fd_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h> /* FICLONERANGE */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_ring.h"

static void report(const fd_io_hook_t *h, fd_io_event_t ev) { h->done(h->arg, &ev); }

int fd_io_openat(const fd_io_hook_t *h, int dir_fd, const char *name, int flags, mode_t mode) {
  int fd = openat(dir_fd, name, flags, mode);
  int rc = fd < 0 ? -errno : fd;
  if (h && (flags & (O_CREAT | O_TRUNC)))
    report(h, (fd_io_event_t){.op = FD_IO_OPEN, .res = rc, .dir_fd = dir_fd, .name = name,
                              .flags = flags});
  return rc;
}

ssize_t fd_io_pwrite(const fd_io_hook_t *h, int fd, const void *buf, size_t len, uint64_t off) {
  ssize_t n = pwrite(fd, buf, len, (off_t)off);
  ssize_t rc = n < 0 ? -errno : n;
  if (h) {
    struct iovec iov = {(void *)buf, len};
    report(h, (fd_io_event_t){.op = FD_IO_WRITE, .res = (int)rc, .fd = fd, .offset = off,
                              .iov = &iov, .iovcnt = 1});
  }
  return rc;
}

/* A write at the file position moved it past what it wrote. */
static void report_positioned(const fd_io_hook_t *h, int fd, const struct iovec *iov, int iovcnt,
                              ssize_t rc) {
  off_t end = rc > 0 ? lseek(fd, 0, SEEK_CUR) : 0;
  report(h, (fd_io_event_t){.op = FD_IO_WRITE, .res = (int)rc, .fd = fd,
                            .offset = rc > 0 && end >= rc ? (uint64_t)(end - rc) : 0, .iov = iov,
                            .iovcnt = iovcnt});
}

ssize_t fd_io_write(const fd_io_hook_t *h, int fd, const void *buf, size_t len) {
  ssize_t n = write(fd, buf, len);
  ssize_t rc = n < 0 ? -errno : n;
  if (h) {
    struct iovec iov = {(void *)buf, len};
    report_positioned(h, fd, &iov, 1, rc);
  }
  return rc;
}

ssize_t fd_io_writev(const fd_io_hook_t *h, int fd, const struct iovec *iov, int iovcnt) {
  ssize_t n = writev(fd, iov, iovcnt);
  ssize_t rc = n < 0 ? -errno : n;
  if (h) report_positioned(h, fd, iov, iovcnt, rc);
  return rc;
}

int fd_io_ftruncate(const fd_io_hook_t *h, int fd, uint64_t len) {
  int rc = ftruncate(fd, (off_t)len) == 0 ? 0 : -errno;
  if (h) report(h, (fd_io_event_t){.op = FD_IO_TRUNCATE, .res = rc, .fd = fd, .len = len});
  return rc;
}

int fd_io_fallocate(const fd_io_hook_t *h, int fd, uint64_t off, uint64_t len) {
  int rc = -posix_fallocate(fd, (off_t)off, (off_t)len);
  if (h)
    report(h, (fd_io_event_t){.op = FD_IO_FALLOCATE, .res = rc, .fd = fd, .offset = off, .len = len});
  return rc;
}

int fd_io_clone_range(const fd_io_hook_t *h, int dst_fd, uint64_t dst_off, int src_fd,
                      uint64_t src_off, uint64_t len) {
  struct file_clone_range r = {.src_fd = src_fd, .src_offset = src_off, .src_length = len,
                               .dest_offset = dst_off};
  int rc = ioctl(dst_fd, FICLONERANGE, &r) == 0 ? 0 : -errno;
  if (h)
    report(h, (fd_io_event_t){.op = FD_IO_CLONE, .res = rc, .fd = dst_fd, .offset = dst_off,
                              .len = len, .src_fd = src_fd, .src_offset = src_off});
  return rc;
}

ssize_t fd_io_copy_range(const fd_io_hook_t *h, int dst_fd, uint64_t dst_off, int src_fd,
                         uint64_t src_off, uint64_t len) {
  loff_t in = (loff_t)src_off, out = (loff_t)dst_off;
  ssize_t n = copy_file_range(src_fd, &in, dst_fd, &out, (size_t)FD_MIN(len, 1ull << 30), 0);
  ssize_t rc = n < 0 ? -errno : n;
  if (h)
    report(h, (fd_io_event_t){.op = FD_IO_COPY, .res = (int)rc, .fd = dst_fd, .offset = dst_off,
                              .len = len, .src_fd = src_fd, .src_offset = src_off});
  return rc;
}

int fd_io_fdatasync(const fd_io_hook_t *h, int fd) {
  int rc = fdatasync(fd) == 0 ? 0 : -errno;
  if (h) report(h, (fd_io_event_t){.op = FD_IO_FDATASYNC, .res = rc, .fd = fd});
  return rc;
}

int fd_io_fsync(const fd_io_hook_t *h, int fd) {
  int rc = fsync(fd) == 0 ? 0 : -errno;
  if (h) report(h, (fd_io_event_t){.op = FD_IO_FSYNC, .res = rc, .fd = fd});
  return rc;
}

int fd_io_renameat(const fd_io_hook_t *h, int dir_fd, const char *name, int dir_fd2,
                   const char *name2) {
  int rc = renameat(dir_fd, name, dir_fd2, name2) == 0 ? 0 : -errno;
  if (h)
    report(h, (fd_io_event_t){.op = FD_IO_RENAME, .res = rc, .dir_fd = dir_fd, .name = name,
                              .dir_fd2 = dir_fd2, .name2 = name2});
  return rc;
}

int fd_io_symlinkat(const fd_io_hook_t *h, const char *target, int dir_fd, const char *name) {
  int rc = symlinkat(target, dir_fd, name) == 0 ? 0 : -errno;
  if (h)
    report(h, (fd_io_event_t){.op = FD_IO_SYMLINK, .res = rc, .dir_fd = dir_fd, .name = name,
                              .target = target});
  return rc;
}

int fd_io_unlinkat(const fd_io_hook_t *h, int dir_fd, const char *name, int flags) {
  int rc = unlinkat(dir_fd, name, flags) == 0 ? 0 : -errno;
  if (h)
    report(h, (fd_io_event_t){.op = FD_IO_UNLINK, .res = rc, .dir_fd = dir_fd, .name = name,
                              .flags = flags});
  return rc;
}

int fd_io_mkdirat(const fd_io_hook_t *h, int dir_fd, const char *name, mode_t mode) {
  int rc = mkdirat(dir_fd, name, mode) == 0 ? 0 : -errno;
  if (h) report(h, (fd_io_event_t){.op = FD_IO_MKDIR, .res = rc, .dir_fd = dir_fd, .name = name});
  return rc;
}

int fd_io_mkdir_durable(const fd_io_hook_t *h, const char *path, mode_t mode) {
  int rc = fd_io_mkdirat(h, AT_FDCWD, path, mode);
  if (rc) return rc == -EEXIST ? 0 : rc;
  char parent[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof(parent)) return -ENAMETOOLONG;
  memcpy(parent, path, n + 1);
  while (n > 1 && parent[n - 1] == '/') parent[--n] = 0; /* "a/b/" names "a/b" */
  char *slash = strrchr(parent, '/');
  if (!slash) snprintf(parent, sizeof(parent), ".");
  else if (slash == parent) parent[1] = 0; /* "/x": the root */
  else *slash = 0;
  int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  rc = fd_io_fsync(h, fd);
  close(fd);
  return rc;
}

bool fd_io_event_from_sqe(const struct io_uring_sqe *sqe, fd_io_event_t *ev, struct iovec *one) {
  *ev = (fd_io_event_t){.fd = sqe->fd};
  const char *addr = (const char *)(uintptr_t)sqe->addr;
  const char *addr2 = (const char *)(uintptr_t)sqe->addr2;
  switch (sqe->opcode) {
    case IORING_OP_WRITE:
    case IORING_OP_WRITE_FIXED:
      *one = (struct iovec){(void *)addr, sqe->len};
      ev->op = FD_IO_WRITE;
      ev->offset = sqe->off;
      ev->iov = one;
      ev->iovcnt = 1;
      return true;
    case IORING_OP_WRITEV:
      ev->op = FD_IO_WRITE;
      ev->offset = sqe->off;
      ev->iov = (const struct iovec *)(uintptr_t)sqe->addr; /* an iovec array: aligned */
      ev->iovcnt = (int)sqe->len;
      return true;
    case IORING_OP_FSYNC:
      ev->op = (sqe->fsync_flags & IORING_FSYNC_DATASYNC) ? FD_IO_FDATASYNC : FD_IO_FSYNC;
      return true;
    case IORING_OP_FALLOCATE:
      ev->op = FD_IO_FALLOCATE;
      ev->offset = sqe->off;
      ev->len = sqe->addr;
      ev->flags = (int)sqe->len;
      return true;
    case FD_IORING_OP_FTRUNCATE:
      ev->op = FD_IO_TRUNCATE;
      ev->len = sqe->off;
      return true;
    case IORING_OP_RENAMEAT:
      ev->op = FD_IO_RENAME;
      ev->dir_fd = sqe->fd;
      ev->name = addr;
      ev->dir_fd2 = (int)sqe->len;
      ev->name2 = addr2;
      return true;
    case IORING_OP_UNLINKAT:
      ev->op = FD_IO_UNLINK;
      ev->dir_fd = sqe->fd;
      ev->name = addr;
      ev->flags = (int)sqe->unlink_flags;
      return true;
    case IORING_OP_SYMLINKAT:
      ev->op = FD_IO_SYMLINK;
      ev->dir_fd = sqe->fd;
      ev->target = addr;
      ev->name = addr2;
      return true;
    case IORING_OP_MKDIRAT:
      ev->op = FD_IO_MKDIR;
      ev->dir_fd = sqe->fd;
      ev->name = addr;
      return true;
    case IORING_OP_OPENAT:
      if (!(sqe->open_flags & (O_CREAT | O_TRUNC))) return false;
      ev->op = FD_IO_OPEN;
      ev->dir_fd = sqe->fd;
      ev->name = addr;
      ev->flags = (int)sqe->open_flags;
      return true;
    default:
      return false;
  }
}
