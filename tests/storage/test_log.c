/* test_log.c — the changelog: ordered, group-committed appends on the ring, a full staging buffer, failed writes and fdatasyncs, reopen, torn tails cut at every byte, rot, gaps and bad headers, catch-up reads and the iterator by path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "st_log_int.h"
#include "st_log_test_util.h"

#define NAME "FileA"
#define RECS_MAX 6000u

static stl_ack_t g_ack[RECS_MAX];
static stl_acks_t g_acks;
static uint8_t g_buf[FD_LOG_RECORD_MAX + 1];

/* Fails log operations of one kind with err, count times. */
typedef struct fault {
  st_io_kind_t kind;
  int err, count, hits;
} fault_t;
static fault_t g_fault;

static int inject(void *arg, st_io_kind_t kind, uint32_t chunk) {
  (void)chunk;
  fault_t *f = arg;
  if (f->count <= 0 || kind != f->kind) return 0;
  f->count--;
  f->hits++;
  return f->err;
}

static int setup(void **state) {
  st_env_t *e = calloc(1, sizeof(*e));
  int rc = st_env_init(e, 64u * 1024u, 4);
  if (rc == 77) return -1; /* cmocka: a setup failure; no io_uring here */
  assert_int_equal(rc, 0);
  e->cfg.fault = inject;
  e->cfg.fault_arg = &g_fault;
  assert_int_equal(st_env_reopen(e), 0);
  g_fault = (fault_t){0};
  g_acks = (stl_acks_t){0};
  *state = e;
  return 0;
}

static int teardown(void **state) {
  st_env_t *e = *state;
  st_env_fini(e);
  free(e);
  return 0;
}

static st_log_t *open_log(st_env_t *e) {
  st_log_t *l = NULL;
  assert_int_equal(st_log_open(e->store, NAME, 2, 1, &l), 0);
  return l;
}

static uint32_t len_of(uint64_t seq) { return 8 + (uint32_t)((seq * 37) % 300); }

/* Stages record seq with its payload; -EAGAIN and the rest as append. */
static int append_one(st_log_t *l, uint64_t seq, uint32_t len) {
  stl_payload(seq, g_buf, len);
  g_ack[seq] = (stl_ack_t){&g_acks, seq};
  return st_log_append(l, seq, g_buf, len, stl_ack_cb, &g_ack[seq]);
}

/* Appends records [from, to) (running the ring while the buffer is full). */
static void append_range(st_env_t *e, st_log_t *l, uint64_t from, uint64_t to) {
  for (uint64_t seq = from; seq < to; seq++) {
    int rc;
    while ((rc = append_one(l, seq, len_of(seq))) == -EAGAIN) fd_ring_run_once(&e->ring, 1, 0);
    assert_int_equal(rc, 0);
  }
}

static void log_path(st_env_t *e, char *path, size_t len) {
  assert_int_equal(st_log_path(e->store, NAME, 2, path, len), 0);
}

/* The log at its path holds exactly records [0, n) of len_of's sizes. */
static void assert_contents(st_env_t *e, uint64_t n) {
  char path[512];
  log_path(e, path, sizeof(path));
  st_log_iter_t *it;
  assert_int_equal(st_log_iter_open(path, &it), 0);
  uint64_t ver, base, seq;
  st_log_iter_info(it, &ver, &base);
  assert_int_equal(ver, 2);
  assert_int_equal(base, 1);
  const void *p;
  uint32_t len;
  st_log_pos_t mid = st_log_iter_tell(it);
  for (uint64_t i = 0; i < n; i++) {
    if (i == n / 2) mid = st_log_iter_tell(it);
    assert_int_equal(st_log_iter_next(it, &seq, &p, &len), 1);
    assert_int_equal(seq, i);
    assert_int_equal(len, len_of(i));
    assert_true(stl_payload_is(i, p, len));
  }
  assert_int_equal(st_log_iter_next(it, &seq, &p, &len), 0);
  /* Back to the middle (a refused batch read again): the same records. */
  assert_int_equal(mid.seq, n / 2);
  assert_int_equal(st_log_iter_seek(it, mid), 0);
  for (uint64_t i = n / 2; i < n; i++) {
    assert_int_equal(st_log_iter_next(it, &seq, &p, &len), 1);
    assert_int_equal(seq, i);
    assert_true(stl_payload_is(i, p, len));
  }
  assert_int_equal(st_log_iter_next(it, &seq, &p, &len), 0);
  st_log_pos_t end = st_log_iter_tell(it);
  end.off++; /* past the file */
  assert_int_equal(st_log_iter_seek(it, end), -EINVAL);
  assert_int_equal(st_log_iter_seek(it, (st_log_pos_t){0, 0}), -EINVAL); /* the header */
  st_log_iter_close(it);
}

/* ---- appends and group commit ------------------------------------------------- */

static st_log_t *g_log;
static uint64_t g_end;

/* Acknowledges, and appends the next record from inside the callback. */
static void refill_cb(void *arg, int res) {
  stl_ack_cb(arg, res);
  uint64_t next = st_log_next_seq(g_log);
  if (res != 0 || next >= g_end) return;
  stl_payload(next, g_buf, len_of(next));
  g_ack[next] = (stl_ack_t){&g_acks, next};
  assert_int_equal(st_log_append(g_log, next, g_buf, len_of(next), refill_cb, &g_ack[next]), 0);
}

static void test_order_and_group_commit(void **state) {
  st_env_t *e = *state;
  st_log_t *l = open_log(e);
  assert_int_equal(st_log_next_seq(l), 0);
  /* 1,000 records staged in one loop turn: one batch, one fdatasync. */
  append_range(e, l, 0, 1000);
  assert_int_equal(st_log_durable_seq(l), 0);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  assert_int_equal(g_acks.ok, 1000);
  assert_false(g_acks.out_of_order);
  assert_int_equal(st_log_stats(l)->syncs, 1);
  assert_int_equal(st_log_durable_seq(l), 1000);
  /* 256 in flight, each acknowledgement appending the next from its
   * callback: those appends stage behind the batch, which is cut after the
   * callbacks, so the 256 go as one batch again. */
  g_log = l;
  g_end = 6000;
  for (uint64_t seq = 1000; seq < 1256; seq++) {
    stl_payload(seq, g_buf, len_of(seq));
    g_ack[seq] = (stl_ack_t){&g_acks, seq};
    assert_int_equal(st_log_append(l, seq, g_buf, len_of(seq), refill_cb, &g_ack[seq]), 0);
  }
  assert_int_equal(stl_drain(&e->ring, l), 0);
  assert_false(g_acks.out_of_order);
  const st_log_stats_t *st = st_log_stats(l);
  printf("  5,000 records with 256 in flight: %" PRIu64 " fdatasyncs\n", st->syncs - 1);
  assert_true(st->syncs - 1 <= 5000 / 250 + 1);
  assert_int_equal(st->records, 6000);
  assert_int_equal(st_log_inflight(l), 0);
  st_log_close(l);
  assert_contents(e, 6000);
}

static void test_double_buffer(void **state) {
  st_env_t *e = *state;
  st_log_t *l = open_log(e);
  /* One record flushed at once is the batch in flight; the next 100 fill
   * the other buffer and go as the second batch. */
  append_range(e, l, 0, 1);
  st_log_flush(l);
  append_range(e, l, 1, 101);
  st_log_flush(l); /* a batch is in flight: nothing to do yet */
  assert_int_equal(st_log_inflight(l), 101 + 2); /* + the write and the kick */
  assert_int_equal(stl_drain(&e->ring, l), 0);
  assert_int_equal(st_log_stats(l)->syncs, 2);
  assert_int_equal(g_acks.ok, 101);
  assert_false(g_acks.out_of_order);
  /* done may be NULL. */
  stl_payload(101, g_buf, len_of(101));
  assert_int_equal(st_log_append(l, 101, g_buf, len_of(101), NULL, NULL), 0);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  assert_int_equal(st_log_durable_seq(l), 102);
  st_log_close(l);
  assert_contents(e, 102);
}

static void test_full_buffer(void **state) {
  st_env_t *e = *state;
  st_log_t *l = open_log(e);
  assert_int_equal(append_one(l, 0, FD_LOG_RECORD_MAX + 1), -EMSGSIZE);
  /* A batch in flight, then the staging buffer fills with the largest
   * records: three fit in ST_LOG_BATCH_BYTES, the fourth must wait. */
  assert_int_equal(append_one(l, 0, 100), 0);
  st_log_flush(l);
  uint64_t seq = 1;
  int rc;
  while ((rc = append_one(l, seq, FD_LOG_RECORD_MAX)) == 0) seq++;
  assert_int_equal(rc, -EAGAIN);
  assert_int_equal(seq - 1, ST_LOG_BATCH_BYTES / FD_LOG_FRAME_MAX);
  /* It goes once a done has run. */
  while (g_acks.ok == 0) fd_ring_run_once(&e->ring, 1, 0);
  assert_int_equal(append_one(l, seq, FD_LOG_RECORD_MAX), 0);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  assert_int_equal(g_acks.ok, seq + 1);
  /* So does a buffer full of callbacks: ST_LOG_BATCH_RECORDS_MAX records. */
  uint64_t first = ++seq;
  assert_int_equal(append_one(l, seq++, 0), 0);
  st_log_flush(l);
  while ((rc = append_one(l, seq, 0)) == 0) seq++;
  assert_int_equal(rc, -EAGAIN);
  assert_int_equal(seq - first - 1, ST_LOG_BATCH_RECORDS_MAX);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  assert_int_equal(g_acks.ok, seq);
  assert_false(g_acks.out_of_order);
  st_log_close(l);
}

/* ---- failures ------------------------------------------------------------------- */

/* A failed kind (ST_IO_SYNC or ST_IO_WRITE): the batch and everything
 * staged fail, so does the log; close cuts back to the durable end. */
static void fail_one(st_env_t *e, st_io_kind_t kind, int err) {
  st_log_t *l = open_log(e);
  append_range(e, l, 0, 10);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  g_fault = (fault_t){.kind = kind, .err = err, .count = 1};
  append_range(e, l, 10, 20);
  st_log_flush(l);
  append_range(e, l, 20, 25); /* staged behind the failing batch */
  assert_int_equal(stl_drain(&e->ring, l), 0);
  assert_int_equal(g_fault.hits, 1);
  assert_int_equal(g_acks.ok, 10);
  assert_int_equal(g_acks.failed, 15);
  assert_int_equal(g_acks.last_err, err);
  assert_false(g_acks.out_of_order);
  assert_int_equal(st_log_error(l), err);
  assert_int_equal(st_log_durable_seq(l), 10);
  assert_int_equal(append_one(l, 25, 10), err);
  assert_int_equal(st_store_stats(e->store)->io_errors, 1);
  st_log_close(l);
  /* Reopened: exactly the durable records, and appends go on from there. */
  l = open_log(e);
  assert_int_equal(st_log_next_seq(l), 10);
  assert_int_equal(st_log_stats(l)->cut_bytes, 0);
  g_acks.next = 10;
  append_range(e, l, 10, 30);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  st_log_close(l);
  assert_contents(e, 30);
}

static void test_sync_failure(void **state) { fail_one(*state, ST_IO_SYNC, -EIO); }
static void test_write_failure(void **state) { fail_one(*state, ST_IO_WRITE, -ENOSPC); }

/* ---- reopen and its scan -------------------------------------------------------- */

static void test_reopen(void **state) {
  st_env_t *e = *state;
  st_log_t *l = open_log(e);
  append_range(e, l, 0, 100);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  st_log_close(l);
  l = open_log(e);
  assert_int_equal(st_log_next_seq(l), 100);
  assert_int_equal(st_log_durable_seq(l), 100);
  assert_int_equal(st_log_stats(l)->records_at_open, 100);
  append_range(e, l, 100, 150);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  st_log_close(l);
  assert_int_equal(st_env_reopen(e), 0); /* a restarted store too */
  l = open_log(e);
  assert_int_equal(st_log_next_seq(l), 150);
  uint64_t ver, base;
  st_log_info(l, &ver, &base);
  assert_int_equal(ver, 2);
  assert_int_equal(base, 1);
  st_log_close(l);
  assert_contents(e, 150);
  /* Another version or base in the same file's place is refused. */
  assert_int_equal(st_log_open(e->store, NAME, 2, 0, &l), -EBADMSG);
  assert_int_equal(st_log_open(e->store, NAME, 0, 0, &l), -EINVAL);
  assert_int_equal(st_log_open(e->store, NAME, 3, 3, &l), -EINVAL);
  assert_int_equal(st_log_open(e->store, "../x", 3, 2, &l), -EINVAL);
  /* GC: removed, then gone; opening makes a new, empty one. */
  assert_int_equal(st_log_remove(e->store, NAME, 2), 0);
  assert_int_equal(st_log_remove(e->store, NAME, 2), -ENOENT);
  l = open_log(e);
  assert_int_equal(st_log_next_seq(l), 0);
  st_log_close(l);
}

static uint8_t *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  uint8_t *buf = malloc((size_t)st.st_size + 1);
  assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
  close(fd);
  *len = (size_t)st.st_size;
  return buf;
}

static void write_file(const char *path, const uint8_t *buf, size_t len) {
  int fd = open(path, O_WRONLY | O_TRUNC);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
  close(fd);
}

/* Writes records [0, n) as batches of `per` records each; returns the
 * file's bytes and the offset of each record in off[]. */
static uint8_t *make_log(st_env_t *e, uint64_t n, uint64_t per, uint64_t *off, size_t *len) {
  st_log_t *l = open_log(e);
  uint64_t at = ST_LOG_HEADER_BYTES;
  for (uint64_t seq = 0; seq < n; seq += per) {
    uint64_t to = FD_MIN(n, seq + per);
    for (uint64_t k = seq; k < to; k++) off[k] = at, at += FD_REC_HDR_BYTES + len_of(k);
    append_range(e, l, seq, to);
    assert_int_equal(stl_drain(&e->ring, l), 0);
  }
  off[n] = at;
  assert_int_equal(st_log_stats(l)->syncs, (n + per - 1) / per);
  st_log_close(l);
  char path[512];
  log_path(e, path, sizeof(path));
  uint8_t *file = read_file(path, len);
  assert_int_equal(*len, at);
  return file;
}

/* Opens the log as written into its place; checks what the scan kept. */
static void reopen_expect(st_env_t *e, const uint8_t *file, size_t len, uint64_t records,
                          uint64_t cut_records, bool cut_acked) {
  char path[512];
  log_path(e, path, sizeof(path));
  write_file(path, file, len);
  st_log_t *l = open_log(e);
  st_log_stats_t st = *st_log_stats(l);
  assert_int_equal(st_log_next_seq(l), records);
  assert_int_equal(st.cut_records, cut_records);
  assert_int_equal(st.cut_acked, cut_acked);
  st_log_close(l);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal((uint64_t)sb.st_size + st.cut_bytes, len);
  assert_contents(e, records);
}

static void test_torn_tail_every_byte(void **state) {
  st_env_t *e = *state;
  uint64_t off[11];
  size_t len;
  uint8_t *file = make_log(e, 10, 4, off, &len);
  uint8_t *copy = malloc(len);
  /* The last record cut short at every byte: cut away, the rest kept. */
  for (uint64_t at = off[9]; at < off[10]; at++)
    reopen_expect(e, file, at, 9, at > off[9] ? 1 : 0, false);
  /* Each of its bytes changed: its CRC32C fails, and it is cut. */
  for (uint64_t at = off[9]; at < off[10]; at++) {
    memcpy(copy, file, len);
    copy[at] ^= 0x5a;
    reopen_expect(e, copy, len, 9, 1, false);
  }
  free(copy);
  free(file);
}

static void test_rot_mid_log(void **state) {
  st_env_t *e = *state;
  uint64_t off[31];
  size_t len;
  /* Three batches of ten. */
  uint8_t *file = make_log(e, 30, 10, off, &len);
  /* A byte of record 5 rots (a payload byte, then its length): 5..29 are
   * cut, and batches 2 and 3 after it prove they had been acknowledged. */
  uint64_t where[2] = {off[5] + FD_REC_HDR_BYTES + 3, off[5]};
  for (int k = 0; k < 2; k++) {
    file[where[k]] ^= 0x01;
    reopen_expect(e, file, len, 5, 25, true);
    file[where[k]] ^= 0x01;
  }
  /* Rot in the last batch passes for a torn tail: nothing after proves it. */
  file[off[25] + FD_REC_HDR_BYTES] ^= 0x80;
  reopen_expect(e, file, len, 25, 5, false);
  free(file);
}

static void test_bad_files(void **state) {
  st_env_t *e = *state;
  uint64_t off[6];
  size_t len;
  uint8_t *file = make_log(e, 5, 5, off, &len);
  char path[512];
  log_path(e, path, sizeof(path));
  st_log_t *l;
  /* A sequence gap: record 2 claims sequence 3 (with a good CRC). */
  uint8_t *copy = malloc(len);
  memcpy(copy, file, len);
  fd_rec_header(copy + off[2], copy + off[2] + FD_REC_HDR_BYTES, len_of(2), 3, true);
  write_file(path, copy, len);
  assert_int_equal(st_log_open(e->store, NAME, 2, 1, &l), -EBADMSG);
  /* Damage in the header, or a header cut short. */
  for (size_t at = 0; at < ST_LOG_HEADER_BYTES; at += 7) {
    memcpy(copy, file, len);
    copy[at] ^= 0x10;
    write_file(path, copy, len);
    assert_int_equal(st_log_open(e->store, NAME, 2, 1, &l), -EBADMSG);
  }
  write_file(path, file, ST_LOG_HEADER_BYTES - 1);
  assert_int_equal(st_log_open(e->store, NAME, 2, 1, &l), -EBADMSG);
  st_log_iter_t *it;
  assert_int_equal(st_log_iter_open(path, &it), -EBADMSG);
  /* Another name's log (same length), well formed. */
  uint8_t hdr[ST_LOG_HEADER_BYTES];
  st_log_header_encode(hdr, "FileB", 2, 1);
  memcpy(copy, file, len);
  memcpy(copy, hdr, sizeof(hdr));
  write_file(path, copy, len);
  assert_int_equal(st_log_open(e->store, NAME, 2, 1, &l), -EBADMSG);
  /* The iterator stops at damage with -EBADMSG, and stays there. */
  memcpy(copy, file, len);
  copy[off[3] + 20] ^= 1;
  write_file(path, copy, len);
  assert_int_equal(st_log_iter_open(path, &it), 0);
  uint64_t seq;
  const void *p;
  uint32_t n;
  st_log_pos_t first = st_log_iter_tell(it);
  for (int i = 0; i < 3; i++) assert_int_equal(st_log_iter_next(it, &seq, &p, &n), 1);
  assert_int_equal(st_log_iter_next(it, &seq, &p, &n), -EBADMSG);
  assert_int_equal(st_log_iter_next(it, &seq, &p, &n), -EBADMSG);
  /* A seek back clears the error; the damage is found again in its place. */
  assert_int_equal(st_log_iter_seek(it, first), 0);
  for (int i = 0; i < 3; i++) assert_int_equal(st_log_iter_next(it, &seq, &p, &n), 1);
  assert_int_equal(seq, 2);
  assert_int_equal(st_log_iter_next(it, &seq, &p, &n), -EBADMSG);
  st_log_iter_close(it);
  assert_int_equal(st_log_iter_open("/nonexistent/v2.log", &it), -ENOENT);
  free(copy);
  free(file);
}

/* ---- catch-up reads ------------------------------------------------------------- */

typedef struct got {
  uint64_t first, n, stop_after;
  bool bad;
} got_t;

static int on_record(void *arg, uint64_t seq, const void *payload, uint32_t len) {
  got_t *g = arg;
  if (seq != g->first + g->n || len != len_of(seq) || !stl_payload_is(seq, payload, len))
    g->bad = true;
  g->n++;
  return g->stop_after && g->n == g->stop_after ? 1 : 0;
}

static void test_read(void **state) {
  st_env_t *e = *state;
  st_log_t *l = open_log(e);
  assert_int_equal(st_log_read(l, 0, 1000, on_record, NULL), 0); /* nothing durable */
  assert_int_equal(st_log_read(l, 1, 1000, on_record, NULL), -ERANGE);
  uint64_t n = 5000; /* past several index marks */
  append_range(e, l, 0, n);
  assert_int_equal(stl_drain(&e->ring, l), 0);
  uint64_t froms[] = {0, 1, 1023, 1024, 1025, 4321, 4999};
  for (size_t i = 0; i < FD_ARRAY_LEN(froms); i++) {
    got_t g = {.first = froms[i]};
    int rc = st_log_read(l, froms[i], UINT32_MAX, on_record, &g);
    assert_int_equal(rc, (int)(n - froms[i]));
    assert_int_equal(g.n, n - froms[i]);
    assert_false(g.bad);
  }
  /* max_bytes: records up to it (frames counted), at least one. */
  got_t g = {.first = 10};
  uint32_t two = 2 * FD_REC_HDR_BYTES + len_of(10) + len_of(11);
  assert_int_equal(st_log_read(l, 10, two, on_record, &g), 2);
  g = (got_t){.first = 10};
  assert_int_equal(st_log_read(l, 10, 1, on_record, &g), 1);
  /* fn stops it. */
  g = (got_t){.first = 20, .stop_after = 3};
  assert_int_equal(st_log_read(l, 20, UINT32_MAX, on_record, &g), 3);
  assert_false(g.bad);
  assert_int_equal(st_log_read(l, n, 1000, on_record, &g), 0);
  assert_int_equal(st_log_read(l, n + 1, 1000, on_record, &g), -ERANGE);
  /* Rot under an open log: the read says so rather than deliver it. */
  char path[512];
  log_path(e, path, sizeof(path));
  int fd = open(path, O_WRONLY);
  uint8_t x = 0xff;
  assert_int_equal(pwrite(fd, &x, 1, 70), 1); /* inside record 0 */
  close(fd);
  g = (got_t){.first = 0};
  assert_int_equal(st_log_read(l, 0, UINT32_MAX, on_record, &g), -EBADMSG);
  st_log_close(l);
}

int main(void) {
  fd_log_init("test_storage_log", FD_LOG_ERROR);
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) return 77;
  fd_ring_deinit(&probe);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_order_and_group_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_double_buffer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_buffer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_torn_tail_every_byte, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rot_mid_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
