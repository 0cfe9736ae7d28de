/*
 * st_log.c — the changelog's handle: open (create durably, or scan and cut
 * a torn tail), appends staged into two buffers and group-committed on the
 * store's ring (one write, then one fdatasync, one batch at a time), catch-up
 * reads of the durable part, close and removal. The contract is in storage.h;
 * the format and the scan are st_log_scan.c's.
 *
 * A batch's life: st_log_append copies the record into buf[stage]; if the
 * log is idle it queues a NOP (the kick) on the ring. When the kick
 * completes (or st_log_flush runs) buf[stage] becomes the batch in flight and
 * the other buffer starts staging: a write at the durable end (short writes
 * re-queued for the rest), then, once it has completed, an fdatasync — so
 * the fdatasync is submitted after the write finished and covers it. When
 * it completes, the durable end moves, every record's done(arg, 0) runs in
 * order, and only then is the next batch cut: records appended from those
 * callbacks join it, rather than a batch of their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "st_internal.h"
#include "st_log_int.h"

typedef struct st_log_cb {
  st_done_fn done;
  void *arg;
} st_log_cb_t;

/* A staging buffer: records framed as they go to disk, and their callbacks. */
typedef struct st_log_buf {
  uint8_t *data;       /* ST_LOG_BATCH_BYTES */
  st_log_cb_t *cbs;    /* ST_LOG_BATCH_RECORDS_MAX */
  uint32_t bytes, nrec;
  uint64_t first_seq;
} st_log_buf_t;

typedef struct st_log_op {
  fd_op_t op;
  st_log_t *l;
} st_log_op_t;

/* Where record seq starts in the file, for every ST_LOG_INDEX_RECORDS
 * records or ST_LOG_INDEX_BYTES bytes. */
typedef struct st_log_mark {
  uint64_t seq, off;
} st_log_mark_t;

struct st_log {
  st_store_t *s;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version, base_version;
  int dir_fd, fd;
  char file[64], tmp[80];

  st_log_buf_t buf[2];
  uint32_t stage;      /* buf[stage] takes appends; buf[stage ^ 1] is the batch when busy */
  bool busy;           /* a batch is being written or synced, or its callbacks run */
  bool kick_queued;
  uint32_t written;    /* bytes of the batch written so far */
  uint32_t ops;        /* on the ring */
  st_log_op_t write_op, sync_op, kick_op;
  uint64_t sync_start_ns; /* when the batch's fdatasync was queued */

  uint64_t next_seq;      /* of the next append */
  uint64_t durable_seq;   /* records below it are durable */
  uint64_t durable_off;   /* the file's durable end: where the next batch goes */
  uint64_t tail_off;      /* where the next staged record will land */
  int err;                /* the error that failed the log */

  st_log_mark_t *marks;
  uint32_t nmarks, cap_marks;
  uint8_t *read_win;      /* st_log_read's window, made at its first use */
  st_log_stats_t stats;
};

static const fd_io_hook_t *io_of(const st_log_t *l) { return l->s->cfg.io_hook; }

/* ---- the index --------------------------------------------------------------- */

static int index_note(st_log_t *l, uint64_t seq, uint64_t off) {
  if (l->nmarks) {
    const st_log_mark_t *last = &l->marks[l->nmarks - 1];
    if (seq - last->seq < ST_LOG_INDEX_RECORDS && off - last->off < ST_LOG_INDEX_BYTES) return 0;
  }
  if (l->nmarks == l->cap_marks) {
    uint32_t cap = l->cap_marks ? l->cap_marks * 2 : 64;
    st_log_mark_t *m = realloc(l->marks, (size_t)cap * sizeof(*m));
    if (!m) return -ENOMEM;
    l->marks = m;
    l->cap_marks = cap;
  }
  l->marks[l->nmarks++] = (st_log_mark_t){seq, off};
  return 0;
}

static int index_on_scan(void *arg, uint64_t seq, uint64_t off) {
  return index_note(arg, seq, off);
}

/* The last mark at or before seq (there is one: the first record's). */
static const st_log_mark_t *index_find(const st_log_t *l, uint64_t seq) {
  FD_ASSERT(l->nmarks > 0 && l->marks[0].seq == 0);
  uint32_t lo = 0, hi = l->nmarks;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (l->marks[mid].seq <= seq) lo = mid;
    else hi = mid;
  }
  return &l->marks[lo];
}

/* ---- the group commit --------------------------------------------------------- */

static void batch_start(st_log_t *l);

/* Runs the callbacks of buffer b with res, in order, and empties it. */
static void buf_done(st_log_buf_t *b, int res) {
  for (uint32_t i = 0; i < b->nrec; i++)
    if (b->cbs[i].done) b->cbs[i].done(b->cbs[i].arg, res);
  b->bytes = b->nrec = 0;
}

static void op_done(st_log_t *l) {
  FD_ASSERT(l->ops > 0 && l->s->inflight > 0);
  l->ops--;
  l->s->inflight--;
}

/* The batch in flight failed with err: so does the log, and every record
 * in flight or staged. The kernel may have dropped the batch's pages and
 * marked them clean, so nothing is retried; st_log_close cuts the file back
 * to its durable end. */
static void log_fail(st_log_t *l, int err) {
  l->err = err;
  l->s->stats.io_errors++;
  st_log_buf_t *batch = &l->buf[l->stage ^ 1], *staged = &l->buf[l->stage];
  fd_log_error("%s v%" PRIu64 ".log: %u records failed at sequence %" PRIu64 " (%u more staged): "
               "%s; the log takes no more appends", l->name, l->version, batch->nrec,
               batch->first_seq, staged->nrec, fd_strerror(err));
  buf_done(batch, err); /* busy still, so no callback can cut a batch */
  buf_done(staged, err);
  l->busy = false;
}

static void queue_write(st_log_t *l) {
  st_log_buf_t *b = &l->buf[l->stage ^ 1];
  struct io_uring_sqe *sqe =
      st_sqe(l->s, NULL, &l->write_op.op, ST_IO_WRITE, (uint32_t)b->first_seq);
  l->ops++;
  if (sqe)
    io_uring_prep_write(sqe, l->fd, b->data + l->written, b->bytes - l->written,
                        l->durable_off + l->written);
}

static void queue_sync(st_log_t *l) {
  st_log_buf_t *b = &l->buf[l->stage ^ 1];
  struct io_uring_sqe *sqe = st_sqe(l->s, NULL, &l->sync_op.op, ST_IO_SYNC, (uint32_t)b->first_seq);
  l->ops++;
  l->sync_start_ns = fd_now_ns();
  if (sqe) io_uring_prep_fsync(sqe, l->fd, IORING_FSYNC_DATASYNC);
}

static void on_write(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_log_t *l = ((st_log_op_t *)op)->l;
  op_done(l);
  if (res <= 0) {
    log_fail(l, res < 0 ? res : -EIO);
    return;
  }
  l->written += (uint32_t)res;
  FD_ASSERT(l->written <= l->buf[l->stage ^ 1].bytes);
  if (l->written < l->buf[l->stage ^ 1].bytes) queue_write(l); /* short: the rest */
  else queue_sync(l);
}

static void on_sync(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_log_t *l = ((st_log_op_t *)op)->l;
  op_done(l);
  fd_hist_observe_ns(&l->s->sync_hist[ST_SYNC_CHANGELOG], fd_now_ns() - l->sync_start_ns);
  if (res < 0) {
    log_fail(l, res);
    return;
  }
  st_log_buf_t *b = &l->buf[l->stage ^ 1];
  l->durable_off += b->bytes;
  l->durable_seq += b->nrec;
  l->stats.records += b->nrec;
  l->stats.bytes += b->bytes;
  l->stats.syncs++;
  buf_done(b, 0); /* busy still: appends from here stage for the next batch */
  l->busy = false;
  batch_start(l);
}

/* Cuts the staged records into a batch, if the log is idle. */
static void batch_start(st_log_t *l) {
  st_log_buf_t *b = &l->buf[l->stage];
  if (l->busy || l->err || b->nrec == 0) return;
  FD_ASSERT(l->tail_off == l->durable_off + b->bytes);
  l->busy = true;
  l->stage ^= 1;
  l->written = 0;
  queue_write(l);
}

static void on_kick(fd_op_t *op, int res, uint32_t flags) {
  (void)res;
  (void)flags;
  st_log_t *l = ((st_log_op_t *)op)->l;
  op_done(l);
  l->kick_queued = false;
  batch_start(l);
}

/* A NOP whose completion cuts the batch: everything appended before the
 * ring's next turn goes in it. Not a disk operation, so not st_sqe's. */
static void queue_kick(st_log_t *l) {
  struct io_uring_sqe *sqe = fd_ring_sqe(l->s->cfg.ring, &l->kick_op.op);
  for (int tries = 0; !sqe && tries < 3; tries++) {
    fd_ring_submit(l->s->cfg.ring);
    sqe = fd_ring_sqe(l->s->cfg.ring, &l->kick_op.op);
  }
  FD_ASSERT(sqe != NULL); /* as st_sqe: only a loop that stopped reaping */
  io_uring_prep_nop(sqe);
  l->kick_queued = true;
  l->ops++;
  l->s->inflight++;
}

int st_log_append(st_log_t *l, uint64_t seq, const void *payload, uint32_t len, st_done_fn done,
                  void *arg) {
  if (len > FD_LOG_RECORD_MAX) return -EMSGSIZE;
  if (l->err) return l->err;
  FD_ASSERT(seq == l->next_seq);
  st_log_buf_t *b = &l->buf[l->stage];
  uint32_t need = FD_REC_HDR_BYTES + len;
  if (b->bytes + need > ST_LOG_BATCH_BYTES || b->nrec == ST_LOG_BATCH_RECORDS_MAX) return -EAGAIN;
  int rc = index_note(l, seq, l->tail_off);
  if (rc) return rc;
  if (b->nrec == 0) b->first_seq = seq;
  fd_rec_header(b->data + b->bytes, payload, len, seq, b->nrec > 0);
  memcpy(b->data + b->bytes + FD_REC_HDR_BYTES, payload, len);
  b->cbs[b->nrec++] = (st_log_cb_t){done, arg};
  b->bytes += need;
  l->tail_off += need;
  l->next_seq++;
  if (!l->busy && !l->kick_queued) queue_kick(l);
  FD_ASSERT(l->busy || l->kick_queued); /* staged records always have a way to disk */
  return 0;
}

void st_log_flush(st_log_t *l) { batch_start(l); }

uint64_t st_log_next_seq(const st_log_t *l) { return l->next_seq; }
uint64_t st_log_durable_seq(const st_log_t *l) { return l->durable_seq; }
int st_log_error(const st_log_t *l) { return l->err; }
const st_log_stats_t *st_log_stats(const st_log_t *l) { return &l->stats; }

uint32_t st_log_inflight(const st_log_t *l) {
  return l->ops + l->buf[l->stage].nrec + (l->busy ? l->buf[l->stage ^ 1].nrec : 0);
}

void st_log_info(const st_log_t *l, uint64_t *version, uint64_t *base_version) {
  *version = l->version;
  *base_version = l->base_version;
}

/* ---- reading ------------------------------------------------------------------ */

int st_log_read(st_log_t *l, uint64_t from_seq, uint32_t max_bytes, st_log_record_fn fn,
                void *arg) {
  if (from_seq > l->durable_seq) return -ERANGE;
  if (from_seq == l->durable_seq) return 0;
  if (!l->read_win && !(l->read_win = malloc(ST_LOG_BATCH_BYTES))) return -ENOMEM;
  const st_log_mark_t *m = index_find(l, from_seq);
  st_log_src_t src;
  st_log_src_file(&src, l->fd, l->durable_off, l->read_win, ST_LOG_BATCH_BYTES);
  uint64_t off = m->off, taken = 0;
  int delivered = 0;
  for (uint64_t seq = m->seq; seq < l->durable_seq; seq++) {
    const uint8_t *p;
    size_t avail;
    int rc = st_log_src_at(&src, off, FD_LOG_FRAME_MAX, &p, &avail);
    fd_rec_t rec;
    ssize_t n = rc ? rc : fd_rec_decode(p, avail, FD_LOG_RECORD_MAX, &rec);
    if (n == 0 || (n > 0 && rec.seq != seq)) n = -EBADMSG;
    if (n < 0) {
      l->s->stats.io_errors++;
      fd_log_error("%s v%" PRIu64 ".log: record %" PRIu64 " at offset %" PRIu64
                   " cannot be read back: %s", l->name, l->version, seq, off, fd_strerror((int)n));
      return (int)n;
    }
    off += (uint64_t)n;
    if (seq < from_seq) continue;
    if (delivered > 0 && taken + (uint64_t)n > max_bytes) break;
    taken += (uint64_t)n;
    delivered++;
    if ((rc = fn(arg, seq, rec.payload, rec.len)) != 0) return rc < 0 ? rc : delivered;
  }
  return delivered;
}

/* ---- open, close, remove ----------------------------------------------------- */

/* 0, or the -errno; a short write is a full disk. */
static int pwrite_whole(const fd_io_hook_t *io, int fd, const void *buf, size_t len, uint64_t off) {
  ssize_t w = fd_io_pwrite(io, fd, buf, len, off);
  return w == (ssize_t)len ? 0 : w < 0 ? (int)w : -ENOSPC;
}

/* The log did not exist: make it whole under a temporary name, then give it
 * its own, durably. */
static int log_create(st_log_t *l) {
  const fd_io_hook_t *io = io_of(l);
  fd_io_unlinkat(io, l->dir_fd, l->tmp, 0); /* one a crash left */
  int fd = fd_io_openat(io, l->dir_fd, l->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return fd;
  l->fd = fd;
  uint8_t hdr[ST_LOG_HEADER_BYTES];
  st_log_header_encode(hdr, l->name, l->version, l->base_version);
  int rc = pwrite_whole(io, fd, hdr, sizeof(hdr), 0);
  if (!rc) rc = fd_io_fdatasync(io, fd);
  if (!rc) rc = fd_io_renameat(io, l->dir_fd, l->tmp, l->dir_fd, l->file);
  if (!rc) rc = fd_io_fsync(io, l->dir_fd);
  if (rc) {
    fd_io_unlinkat(io, l->dir_fd, l->tmp, 0);
    return rc;
  }
  l->durable_off = ST_LOG_HEADER_BYTES;
  fd_log_info("%s v%" PRIu64 ".log: created (base v%" PRIu64 ")", l->name, l->version,
              l->base_version);
  return 0;
}

/* The log exists: scan it, cut a damaged tail, make it all durable. */
static int log_recover(st_log_t *l) {
  const fd_io_hook_t *io = io_of(l);
  struct stat st;
  if (fstat(l->fd, &st) != 0) return -errno;
  st_log_src_t src;
  st_log_scan_t scan;
  st_log_src_file(&src, l->fd, (uint64_t)st.st_size, l->buf[0].data, ST_LOG_BATCH_BYTES);
  int rc = st_log_scan(&src, &scan, index_on_scan, l);
  if (rc == -EBADMSG && scan.gap)
    fd_log_error("%s v%" PRIu64 ".log: record %" PRIu64 " is whole but carries another sequence "
                 "(a gap): not opened", l->name, l->version, scan.records);
  else if (rc == -EBADMSG)
    fd_log_error("%s v%" PRIu64 ".log: not a changelog header (short, damaged or another "
                 "format): not opened", l->name, l->version);
  if (rc == 0 && !st_log_header_is(&scan.hdr, l->name, l->version, l->base_version)) {
    fd_log_error("%s v%" PRIu64 ".log: the header names %.*s v%" PRIu64 " from v%" PRIu64,
                 l->name, l->version, (int)ST_LOG_NAME_SHOWN, scan.hdr.name, scan.hdr.version,
                 scan.hdr.base_version);
    rc = -EBADMSG;
  }
  if (rc) return rc;
  if (scan.cut_bytes) {
    if (scan.cut_acked)
      fd_log_error("%s v%" PRIu64 ".log: record %" PRIu64 " at offset %" PRIu64 " is damaged "
                   "and a later batch after it is whole: cutting %" PRIu64 " records (%" PRIu64
                   " bytes) that were acknowledged; catch them up from another origin",
                   l->name, l->version, scan.records, scan.end, scan.cut_records, scan.cut_bytes);
    else
      fd_log_warn("%s v%" PRIu64 ".log: cutting a torn tail of %" PRIu64 " records (%" PRIu64
                  " bytes) at record %" PRIu64, l->name, l->version, scan.cut_records,
                  scan.cut_bytes, scan.records);
    if ((rc = fd_io_ftruncate(io, l->fd, scan.end)) != 0) return rc;
  }
  /* What the scan found may be written and never synced (a process that
   * died): durable before anything after it is acknowledged. */
  if ((rc = fd_io_fdatasync(io, l->fd)) != 0) return rc;
  if ((rc = fd_io_fsync(io, l->dir_fd)) != 0) return rc;
  l->durable_off = scan.end;
  l->next_seq = l->durable_seq = scan.records;
  l->stats.records_at_open = scan.records;
  l->stats.cut_bytes = scan.cut_bytes;
  l->stats.cut_records = scan.cut_records;
  l->stats.cut_acked = scan.cut_acked;
  fd_log_info("%s v%" PRIu64 ".log: opened with %" PRIu64 " records", l->name, l->version,
              scan.records);
  return 0;
}

static void log_free(st_log_t *l) {
  if (l->fd >= 0) close(l->fd);
  if (l->dir_fd >= 0) close(l->dir_fd);
  for (int i = 0; i < 2; i++) {
    free(l->buf[i].data);
    free(l->buf[i].cbs);
  }
  free(l->marks);
  free(l->read_win);
  free(l);
}

/* <name>/ made durably if it is not there, and opened. */
static int open_name_dir(st_store_t *s, const char *name) {
  const fd_io_hook_t *io = s->cfg.io_hook;
  int rc = fd_io_mkdirat(io, s->dir_fd, name, 0755);
  if (rc == 0) rc = fd_io_fsync(io, s->dir_fd);
  if (rc && rc != -EEXIST) return rc;
  int fd = openat(s->dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int st_log_open(st_store_t *s, const char *name, uint64_t version, uint64_t base_version,
                st_log_t **out) {
  *out = NULL;
  if (!st_name_valid(name) || version == 0 || base_version >= version) return -EINVAL;
  st_log_t *l = calloc(1, sizeof(*l));
  if (!l) return -ENOMEM;
  l->s = s;
  l->fd = l->dir_fd = -1;
  snprintf(l->name, sizeof(l->name), "%s", name);
  l->version = version;
  l->base_version = base_version;
  snprintf(l->file, sizeof(l->file), "v%" PRIu64 ".log", version);
  snprintf(l->tmp, sizeof(l->tmp), "%s.tmp", l->file);
  l->write_op = (st_log_op_t){.op.complete = on_write, .l = l};
  l->sync_op = (st_log_op_t){.op.complete = on_sync, .l = l};
  l->kick_op = (st_log_op_t){.op.complete = on_kick, .l = l};
  int rc = 0;
  for (int i = 0; i < 2 && !rc; i++) {
    l->buf[i].data = malloc(ST_LOG_BATCH_BYTES);
    l->buf[i].cbs = malloc(ST_LOG_BATCH_RECORDS_MAX * sizeof(*l->buf[i].cbs));
    if (!l->buf[i].data || !l->buf[i].cbs) rc = -ENOMEM;
  }
  if (!rc && (rc = open_name_dir(s, name)) >= 0) {
    l->dir_fd = rc;
    l->fd = openat(l->dir_fd, l->file, O_RDWR | O_CLOEXEC);
    rc = l->fd >= 0 ? log_recover(l) : errno == ENOENT ? log_create(l) : -errno;
  }
  if (rc) {
    log_free(l);
    return rc;
  }
  l->tail_off = l->durable_off;
  *out = l;
  return 0;
}

void st_log_close(st_log_t *l) {
  if (!l) return;
  FD_ASSERT(st_log_inflight(l) == 0);
  if (l->err) {
    /* Pages of the failed batch may sit in the page cache, clean and never
     * on disk: cut them, so that a reopen reads only what was durable. */
    const fd_io_hook_t *io = io_of(l);
    int rc = fd_io_ftruncate(io, l->fd, l->durable_off);
    if (!rc) rc = fd_io_fdatasync(io, l->fd);
    if (rc)
      fd_log_error("%s v%" PRIu64 ".log: cannot cut the failed log back to its durable end (%"
                   PRIu64 " bytes): %s", l->name, l->version, l->durable_off, fd_strerror(rc));
  }
  log_free(l);
}

int st_log_path(const st_store_t *s, const char *name, uint64_t version, char *buf, size_t len) {
  if (!st_name_valid(name)) return -EINVAL;
  int n = snprintf(buf, len, "%s/%s/v%" PRIu64 ".log", s->data_dir, name, version);
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int st_log_remove(st_store_t *s, const char *name, uint64_t version) {
  if (!st_name_valid(name) || version == 0) return -EINVAL;
  const fd_io_hook_t *io = s->cfg.io_hook;
  int dir_fd = openat(s->dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return -errno;
  char file[64], tmp[80];
  snprintf(file, sizeof(file), "v%" PRIu64 ".log", version);
  snprintf(tmp, sizeof(tmp), "%s.tmp", file);
  int rc = fd_io_unlinkat(io, dir_fd, file, 0);
  bool tmp_gone = fd_io_unlinkat(io, dir_fd, tmp, 0) == 0;
  if (!rc || tmp_gone) {
    int sync_rc = fd_io_fsync(io, dir_fd);
    if (!rc) rc = sync_rc;
  }
  if (!rc) fd_log_info("%s v%" PRIu64 ".log: removed", name, version);
  close(dir_fd);
  return rc;
}
