/*
 * fd_io.h — the file-system calls that change what is on disk, each with an
 * optional observer (prefix fd_io_).
 *
 * storage/ and the scheduler's embedded store make every mutating call
 * through these wrappers: creating opens, writes, truncates, fallocate,
 * clones, in-kernel copies, fdatasync and fsync, rename, symlink, unlink, mkdir. Each is the
 * system call, returning 0, a byte count or a descriptor, or -errno (never
 * errno), and — only when a hook is given — a report of the call and its
 * result after it returned. The crash tests pass a recorder as the hook
 * (tests/common/powercut.c): it sees, in order, everything the code under
 * test did to the disk, from below, and replays it onto a model disk that
 * can lose power. In production the hook is NULL: one branch per call.
 *
 * fd_ring reports the io_uring operations it carries through the same hook
 * (fd_ring_set_io_hook): `queued` when an operation is submitted, `reaped`
 * with its result when its completion is collected, before any callback of
 * that batch runs. Read-only calls (open without O_CREAT or O_TRUNC, read,
 * stat, readlink) are not wrapped: they change nothing a crash could lose.
 *
 * Never: allocates, keeps state, or reports a call made without a hook.
 */
#ifndef FD_IO_H
#define FD_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct io_uring_sqe;

typedef enum fd_io_op {
  FD_IO_OPEN,      /* dir_fd/name, flags (O_CREAT or O_TRUNC); res is the new fd */
  FD_IO_WRITE,     /* fd, offset, iov/iovcnt; res is the bytes written */
  FD_IO_TRUNCATE,  /* fd, len is the new size */
  FD_IO_FALLOCATE, /* fd, offset, len, flags is the fallocate mode */
  FD_IO_CLONE,     /* fd at offset gets len bytes of src_fd at src_offset, shared */
  FD_IO_FDATASYNC, /* fd */
  FD_IO_FSYNC,     /* fd (a file or a directory) */
  FD_IO_RENAME,    /* dir_fd/name -> dir_fd2/name2 */
  FD_IO_SYMLINK,   /* dir_fd/name -> target */
  FD_IO_UNLINK,    /* dir_fd/name, flags (AT_REMOVEDIR) */
  FD_IO_MKDIR,     /* dir_fd/name */
  FD_IO_COPY,      /* fd at offset gets res bytes of src_fd at src_offset, copied (len asked) */
} fd_io_op_t;

/* One call. Pointers are the caller's and valid only during the report
 * (for an io_uring operation: until it is reaped). */
typedef struct fd_io_event {
  fd_io_op_t op;
  int res; /* what the call returned: >= 0, or -errno (unset when queued) */
  int fd, dir_fd, dir_fd2, src_fd, flags;
  const char *name, *name2, *target;
  uint64_t offset, len, src_offset;
  const struct iovec *iov;
  int iovcnt;
} fd_io_event_t;

typedef struct fd_io_hook {
  /* A synchronous call returned. */
  void (*done)(void *arg, const fd_io_event_t *ev);
  /* An io_uring operation was submitted (id is its user_data)... */
  void (*queued)(void *arg, uint64_t id, const fd_io_event_t *ev);
  /* ...and any completion was collected (ids never queued are ignored). */
  void (*reaped)(void *arg, uint64_t id, int res);
  void *arg;
} fd_io_hook_t;

/* The wrappers. h may be NULL. */
int fd_io_openat(const fd_io_hook_t *h, int dir_fd, const char *name, int flags, mode_t mode);
ssize_t fd_io_pwrite(const fd_io_hook_t *h, int fd, const void *buf, size_t len, uint64_t off);
/* At the file position (or the end, O_APPEND); the report names the offset. */
ssize_t fd_io_write(const fd_io_hook_t *h, int fd, const void *buf, size_t len);
ssize_t fd_io_writev(const fd_io_hook_t *h, int fd, const struct iovec *iov, int iovcnt);
int fd_io_ftruncate(const fd_io_hook_t *h, int fd, uint64_t len);
/* posix_fallocate: 0 or -errno (-EOPNOTSUPP where the filesystem cannot). */
int fd_io_fallocate(const fd_io_hook_t *h, int fd, uint64_t off, uint64_t len);
/* FICLONERANGE: dst_fd's [dst_off, +len) shares src_fd's [src_off, +len). */
int fd_io_clone_range(const fd_io_hook_t *h, int dst_fd, uint64_t dst_off, int src_fd,
                      uint64_t src_off, uint64_t len);
/* copy_file_range: up to len bytes of src_fd at src_off to dst_fd at
 * dst_off, in the kernel (no copy through user space; a filesystem that
 * shares blocks may share them). One call: the bytes copied, which may be
 * fewer than len (0 at the source's end), or -errno. len above 1 GiB is
 * cut to 1 GiB, so the count fits the report's res. */
ssize_t fd_io_copy_range(const fd_io_hook_t *h, int dst_fd, uint64_t dst_off, int src_fd,
                         uint64_t src_off, uint64_t len);
int fd_io_fdatasync(const fd_io_hook_t *h, int fd);
int fd_io_fsync(const fd_io_hook_t *h, int fd);
int fd_io_renameat(const fd_io_hook_t *h, int dir_fd, const char *name, int dir_fd2,
                   const char *name2);
int fd_io_symlinkat(const fd_io_hook_t *h, const char *target, int dir_fd, const char *name);
int fd_io_unlinkat(const fd_io_hook_t *h, int dir_fd, const char *name, int flags);
int fd_io_mkdirat(const fd_io_hook_t *h, int dir_fd, const char *name, mode_t mode);
/* Makes directory path unless it exists, and then fsyncs its parent, so that
 * a power cut cannot take the new directory (and all put in it) away. 0 when
 * it exists or was made durably, or -errno. */
int fd_io_mkdir_durable(const fd_io_hook_t *h, const char *path, mode_t mode);

/* For fd_ring: describes a submitted SQE that changes the disk (write,
 * write_fixed, writev, fsync, fallocate, ftruncate, renameat, unlinkat,
 * symlinkat, mkdirat, openat with O_CREAT or O_TRUNC); false for any other
 * opcode. one holds the iovec of a single-buffer write. */
bool fd_io_event_from_sqe(const struct io_uring_sqe *sqe, fd_io_event_t *ev, struct iovec *one);

#endif /* FD_IO_H */
