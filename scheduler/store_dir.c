/* store_dir.c — the embedded store: an operation log and a checkpoint in a
 * data directory.
 *
 *   dir/log         records framed as common/fd_record.h says: u32 payload
 *                   length (bit 31 set on every record of an append but its
 *                   first), u32 CRC32C, u64 sequence, payload. The CRC covers
 *                   length, sequence and payload, so a torn length is caught
 *                   as surely as a torn payload.
 *   dir/checkpoint  u32 magic "FDSC", u32 format, u64 last sequence it
 *                   covers, u64 length, u32 CRC32C of those and the payload,
 *                   payload.
 *
 * append writes every record with one writev and fdatasyncs before it
 * returns, so an acknowledged record survives a crash. checkpoint writes
 * dir/checkpoint.tmp, fsyncs it, renames it over dir/checkpoint and fsyncs
 * the directory, then does the same to replace the log by an empty one;
 * records the checkpoint covers (sequence <= its last) are skipped on replay,
 * so a crash between the two renames loses nothing and repeats nothing.
 *
 * Opening makes dir and its log durable names (an fsync of the parent, and
 * of dir: an fdatasync covers a file's bytes, not its name), then reads the
 * whole log once. A record cut short or failing its CRC is damage. An append
 * returns only once its writev is fdatasync'd and the next starts after, so
 * a power cut can damage only the last append — but anywhere in it: its
 * sectors reach the disk in any order, and a lost one reads as zeros. So
 * damage with no whole record beginning a later append after it is that
 * torn tail: the file is truncated there and fsync'd, the cut is logged and
 * counted (rot inside the last acknowledged append looks the same and is cut
 * too: only a later append tells the two apart). Damage with one after it is
 * corruption of acknowledged records, and so is a sequence gap: the open
 * fails with -EBADMSG, and nothing is ever skipped or misread.
 * Single-threaded; one process owns a directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_hash.h"
#include "fd_log.h"
#include "fd_record.h"
#include "scheduler.h"

#define REC_HDR FD_REC_HDR_BYTES
#define CKPT_HDR 28u
#define CKPT_MAGIC 0x43534446u /* "FDSC" little-endian */
#define CKPT_FORMAT 1u
#define APPEND_BATCH_MAX 64u   /* records per writev */
static_assert(SCH_LOG_RECORD_LEN_MAX < FD_REC_CONT,
              "a record's length leaves bit 31 to FD_REC_CONT");

typedef struct dir_store {
  sch_store_t base;
  const fd_io_hook_t *io; /* tests only */
  int dir_fd;
  int log_fd;
  uint64_t next_seq;       /* sequence of the next record appended */
  uint64_t ckpt_seq;       /* last sequence the checkpoint covers */
  uint64_t since_ckpt;     /* records appended or replayed after it */
  uint64_t truncated;      /* bytes cut from a torn tail at open */
  uint8_t *log_data;       /* the log as read at open, for replay; freed after */
  size_t log_len;
} dir_store_t;

static int read_all(int fd, uint8_t **out, size_t *len_out) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  size_t len = (size_t)st.st_size;
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return -ENOMEM;
  size_t off = 0;
  while (off < len) {
    ssize_t n = pread(fd, buf + off, len - off, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int rc = n < 0 && errno ? -errno : -EIO;
      free(buf);
      return rc;
    }
    off += (size_t)n;
  }
  *out = buf;
  *len_out = len;
  return 0;
}

static int write_all(const fd_io_hook_t *io, int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = fd_io_write(io, fd, p, len);
    if (n == -EINTR) continue;
    if (n < 0) return (int)n;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads dir/checkpoint if there is one; *data NULL when there is none. */
static int load_checkpoint(dir_store_t *ds, uint8_t **data, size_t *len) {
  *data = NULL;
  *len = 0;
  int fd = openat(ds->dir_fd, "checkpoint", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  uint8_t *buf;
  size_t n;
  int rc = read_all(fd, &buf, &n);
  close(fd);
  if (rc) return rc;
  if (n < CKPT_HDR || fd_le32_get(buf) != CKPT_MAGIC || fd_le32_get(buf + 4) != CKPT_FORMAT ||
      fd_le64_get(buf + 16) != n - CKPT_HDR ||
      fd_crc32c(fd_crc32c(0, buf, 24), buf + CKPT_HDR, n - CKPT_HDR) != fd_le32_get(buf + 24)) {
    fd_log_error("store: checkpoint is corrupt (%zu bytes)", n);
    free(buf);
    return -EBADMSG;
  }
  ds->ckpt_seq = fd_le64_get(buf + 8);
  *data = buf;
  *len = n;
  return 0;
}

/* The size of the whole, valid record at off (header included), or 0. */
static size_t record_at(const uint8_t *log, size_t log_len, size_t off) {
  fd_rec_t rec;
  ssize_t n = fd_rec_decode(log + off, log_len - off, SCH_LOG_RECORD_LEN_MAX, &rec);
  return n > 0 ? (size_t)n : 0;
}

/* True when a whole record that begins an append, with a sequence of at
 * least min_seq, starts somewhere after off: proof that an append finished
 * after the one damaged at off. Every byte offset is tried (the damage hid
 * where records start); the flag and the sequence rule out nearly all before
 * a CRC is computed. */
static bool later_append(const uint8_t *log, size_t log_len, size_t off, uint64_t min_seq) {
  for (size_t o = off + 1; o + REC_HDR <= log_len; o++) {
    if (fd_rec_peek_cont(log + o) || fd_rec_peek_seq(log + o) < min_seq) continue;
    if (record_at(log, log_len, o)) return true;
  }
  return false;
}

/* Scans the log read at open; truncates a torn tail. */
static int scan_log(dir_store_t *ds) {
  size_t off = 0;
  uint64_t expect = 0;
  bool have_expect = false;
  while (off < ds->log_len) {
    size_t n = record_at(ds->log_data, ds->log_len, off);
    if (n == 0) {
      size_t left = ds->log_len - off;
      if (later_append(ds->log_data, ds->log_len, off, have_expect ? expect + 1 : 0)) {
        fd_log_error("store: log record at offset %zu is damaged and a later append of the %zu "
                     "bytes after it is whole", off, left);
        return -EBADMSG;
      }
      ds->truncated = left;
      fd_log_warn("store: cutting a torn tail of %zu bytes at offset %zu", left, off);
      int rc = fd_io_ftruncate(ds->io, ds->log_fd, off);
      if (!rc) rc = fd_io_fdatasync(ds->io, ds->log_fd);
      if (rc) return rc;
      ds->log_len = off;
      break;
    }
    uint64_t seq = fd_rec_peek_seq(ds->log_data + off);
    if (have_expect && seq != expect) {
      fd_log_error("store: log sequence %llu where %llu was due", (unsigned long long)seq,
                   (unsigned long long)expect);
      return -EBADMSG;
    }
    have_expect = true;
    expect = seq + 1;
    if (seq > ds->ckpt_seq || ds->ckpt_seq == UINT64_MAX) ds->since_ckpt++;
    off += n;
  }
  uint64_t after_ckpt = ds->ckpt_seq == UINT64_MAX ? 0 : ds->ckpt_seq + 1;
  ds->next_seq = have_expect && expect > after_ckpt ? expect : after_ckpt;
  return 0;
}

static int dir_append(sch_store_t *st, const struct iovec *recs, unsigned count) {
  dir_store_t *ds = (dir_store_t *)st;
  if (ds->log_fd < 0) return -EBADF;
  for (unsigned base = 0; base < count; base += APPEND_BATCH_MAX / 2) {
    unsigned n = count - base < APPEND_BATCH_MAX / 2 ? count - base : APPEND_BATCH_MAX / 2;
    uint8_t hdr[APPEND_BATCH_MAX / 2][REC_HDR];
    struct iovec iov[APPEND_BATCH_MAX];
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) {
      const struct iovec *r = &recs[base + i];
      if (r->iov_len > SCH_LOG_RECORD_LEN_MAX) return -EMSGSIZE;
      fd_rec_header(hdr[i], r->iov_base, (uint32_t)r->iov_len, ds->next_seq + i, i > 0);
      iov[(size_t)2 * i] = (struct iovec){hdr[i], REC_HDR};
      iov[2 * i + 1] = *r;
      total += REC_HDR + r->iov_len;
    }
    off_t start = lseek(ds->log_fd, 0, SEEK_END);
    if (start < 0) return -errno;
    struct iovec *v = iov;
    int vn = (int)(2 * n);
    size_t done = 0;
    while (done < total) {
      ssize_t w = fd_io_writev(ds->io, ds->log_fd, v, vn);
      if (w == -EINTR) continue;
      if (w < 0) {
        /* Leave no partial record behind a failed append. */
        if (fd_io_ftruncate(ds->io, ds->log_fd, (uint64_t)start) < 0)
          fd_log_error("store: cannot undo a failed append");
        return (int)w;
      }
      done += (size_t)w;
      while (vn > 0 && (size_t)w >= v->iov_len) w -= (ssize_t)v->iov_len, v++, vn--;
      if (vn > 0) v->iov_base = (uint8_t *)v->iov_base + w, v->iov_len -= (size_t)w;
    }
    int rc = fd_io_fdatasync(ds->io, ds->log_fd);
    if (rc) {
      fd_log_error("store: fdatasync of the log failed: %s", fd_strerror(rc));
      return rc;
    }
    ds->next_seq += n;
    ds->since_ckpt += n;
  }
  return 0;
}

static int replace_file(const fd_io_hook_t *io, int dir_fd, const char *name, const void *hdr,
                        size_t hdr_len, const void *data, size_t len) {
  char tmp[64];
  snprintf(tmp, sizeof(tmp), "%s.tmp", name);
  int fd = fd_io_openat(io, dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fd;
  int rc = write_all(io, fd, hdr, hdr_len);
  if (!rc) rc = write_all(io, fd, data, len);
  if (!rc) rc = fd_io_fsync(io, fd);
  close(fd);
  if (!rc) rc = fd_io_renameat(io, dir_fd, tmp, dir_fd, name);
  if (!rc) rc = fd_io_fsync(io, dir_fd);
  if (rc) fd_io_unlinkat(io, dir_fd, tmp, 0);
  return rc;
}

static int dir_checkpoint(sch_store_t *st, const void *snap, size_t len) {
  dir_store_t *ds = (dir_store_t *)st;
  if (len > SCH_CHECKPOINT_LEN_MAX) return -EMSGSIZE;
  uint8_t hdr[CKPT_HDR];
  uint64_t last = ds->next_seq == 0 ? UINT64_MAX : ds->next_seq - 1;
  fd_le32_put(hdr, CKPT_MAGIC);
  fd_le32_put(hdr + 4, CKPT_FORMAT);
  fd_le64_put(hdr + 8, last);
  fd_le64_put(hdr + 16, len);
  fd_le32_put(hdr + 24, fd_crc32c(fd_crc32c(0, hdr, 24), snap, len));
  int rc = replace_file(ds->io, ds->dir_fd, "checkpoint", hdr, sizeof(hdr), snap, len);
  if (rc) return rc;
  ds->ckpt_seq = last;
  ds->since_ckpt = 0;
  /* The checkpoint covers every logged record: start an empty log. */
  rc = replace_file(ds->io, ds->dir_fd, "log", "", 0, "", 0);
  if (rc) return rc; /* the old log stays; replay skips what the checkpoint covers */
  int fd = openat(ds->dir_fd, "log", O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) return -errno;
  close(ds->log_fd);
  ds->log_fd = fd;
  return 0;
}

static int dir_replay(sch_store_t *st, sch_store_visit_fn visit, void *arg) {
  dir_store_t *ds = (dir_store_t *)st;
  uint8_t *ckpt;
  size_t ckpt_len;
  uint64_t saved = ds->ckpt_seq;
  int rc = load_checkpoint(ds, &ckpt, &ckpt_len);
  if (rc) return rc;
  if (ckpt) rc = visit(arg, true, ckpt + CKPT_HDR, ckpt_len - CKPT_HDR);
  free(ckpt);
  ds->ckpt_seq = saved;
  if (rc) return rc;
  uint8_t *log;
  size_t log_len;
  if ((rc = read_all(ds->log_fd, &log, &log_len))) return rc;
  for (size_t off = 0; off + REC_HDR <= log_len && !rc;) {
    uint32_t len = fd_rec_peek_len(log + off);
    uint64_t seq = fd_rec_peek_seq(log + off);
    FD_ASSERT(off + REC_HDR + len <= log_len); /* scanned at open */
    if (ds->ckpt_seq == UINT64_MAX || seq > ds->ckpt_seq) rc = visit(arg, false, log + off + REC_HDR, len);
    off += REC_HDR + len;
  }
  free(log);
  return rc;
}

static void dir_close(sch_store_t *st) {
  dir_store_t *ds = (dir_store_t *)st;
  if (ds->log_fd >= 0) close(ds->log_fd);
  if (ds->dir_fd >= 0) close(ds->dir_fd);
  free(ds->log_data);
  free(ds);
}

static const sch_store_ops_t dir_ops = {
    .append = dir_append,
    .checkpoint = dir_checkpoint,
    .replay = dir_replay,
    .close = dir_close,
};

sch_store_t *sch_store_open_dir(const char *dir, int *err) {
  return sch_store_open_dir_with(dir, NULL, err);
}

sch_store_t *sch_store_open_dir_with(const char *dir, const sch_store_dir_options_t *opts,
                                     int *err) {
  int rc;
  dir_store_t *ds = calloc(1, sizeof(*ds));
  if (!ds) {
    *err = -ENOMEM;
    return NULL;
  }
  ds->base.ops = &dir_ops;
  ds->io = opts ? opts->io_hook : NULL;
  ds->log_fd = -1;
  ds->ckpt_seq = UINT64_MAX;
  if ((rc = fd_io_mkdir_durable(ds->io, dir, 0700)) != 0) goto out_free;
  ds->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (ds->dir_fd < 0) {
    rc = -errno;
    goto out_free;
  }
  fd_io_unlinkat(ds->io, ds->dir_fd, "checkpoint.tmp", 0); /* a checkpoint that never finished */
  fd_io_unlinkat(ds->io, ds->dir_fd, "log.tmp", 0);
  rc = fd_io_openat(ds->io, ds->dir_fd, "log", O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (rc < 0) goto out_close;
  ds->log_fd = rc;
  /* A log just made is a name in dir: durable before anything is appended
   * and acknowledged in it (fdatasync of the log does not cover its name). */
  if ((rc = fd_io_fsync(ds->io, ds->dir_fd)) != 0) goto out_close;
  uint8_t *ckpt;
  size_t ckpt_len;
  if ((rc = load_checkpoint(ds, &ckpt, &ckpt_len))) goto out_close;
  free(ckpt);
  if ((rc = read_all(ds->log_fd, &ds->log_data, &ds->log_len))) goto out_close;
  if ((rc = scan_log(ds))) goto out_close;
  free(ds->log_data);
  ds->log_data = NULL;
  return &ds->base;
out_close:
  dir_close(&ds->base);
  *err = rc;
  return NULL;
out_free:
  free(ds);
  *err = rc;
  return NULL;
}

uint64_t sch_store_dir_truncated_bytes(const sch_store_t *st) {
  return ((const dir_store_t *)st)->truncated;
}

uint64_t sch_store_dir_records_since_checkpoint(const sch_store_t *st) {
  return ((const dir_store_t *)st)->since_ckpt;
}
