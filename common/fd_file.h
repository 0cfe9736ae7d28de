/*
 * fd_file.h — small files written whole for other processes to read.
 *
 * fd_file_replace writes a temp file beside the target and renames it over
 * the target, so a reader sees the old file, no file, or the whole new one —
 * never a torn one. Used for the daemons' port files (`port_file`), which
 * scripts poll while the daemon starts. Not durable: no fsync (a port file
 * describes a running process, not data); fd_file_replace_durable is.
 */
#ifndef FD_FILE_H
#define FD_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes len bytes of data to path via "<path>.tmp" and rename. 0 or -errno
 * (-EIO for a short write, -ENAMETOOLONG for a path over FD_PATH_LEN_MAX). */
int fd_file_replace(const char *path, const void *data, size_t len);

/* The port file: the port in decimal and a newline, by fd_file_replace. */
int fd_port_file_write(const char *path, uint16_t port);

/* fd_file_replace made durable, for files that are data (certificates,
 * revocation lists): the temp file is created with mode and fsync'd before
 * the rename, and the directory after it. 0 or -errno. */
int fd_file_replace_durable(const char *path, const void *data, size_t len, unsigned mode);

/* Reads the whole file at path into buf (cap bytes); *len gets its size.
 * 0, -errno of open/read, -EMSGSIZE when it holds more than cap bytes. */
int fd_file_read(const char *path, void *buf, size_t cap, size_t *len);

#endif /* FD_FILE_H */
