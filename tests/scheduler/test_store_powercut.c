/* test_store_powercut.c — power cuts below the scheduler's embedded store at >= 1,000 points of log appends (one record and several per call), checkpoints and a torn-tail truncation: it always opens, and replays every acknowledged record once, in order, after the newest acknowledged checkpoint.
 *
 * The store runs with the powercut recorder as its fd_io hook
 * (tests/common/powercut.h): log creation, each append's writev and
 * fdatasync, the checkpoint's temporary file, fsync, rename and directory
 * fsync, the log's replacement, and the truncation of a torn tail at open
 * are logged in order with their bytes; each append or checkpoint that
 * returned 0 is logged as a marker. Each run is then cut at every entry of
 * its log while the budget lasts: the model disk loses power there (writes
 * not covered by an fdatasync kept, lost or torn at 512-byte sectors; each
 * directory's namespace changes not covered by an fsync of it cut to a
 * random prefix, as a journal commits them in order; operations in flight
 * pending too) and is written out, and the real store is reopened on it.
 *
 * After each cut: sch_store_open_dir succeeds; replay gives the checkpoint
 * (if any) and then records in order, each exactly once, with the right
 * bytes, starting right after what the checkpoint covers; every record
 * whose append returned 0 before the cut is covered, and the checkpoint is
 * at least the last one acknowledged; nothing is replayed that was never
 * written. Then a record appended after recovery survives a reopen.
 *
 * Environment: FDIST_POWERCUT_CUTS (default 1000), FDIST_POWERCUT_SEED
 * (default from the clock; printed; a broken cut prints its seed and what it
 * kept and lost, and keeps its tree), FDIST_POWERCUT_DIR (runs; default
 * /var/tmp), FDIST_POWERCUT_CUT_DIR (cuts; default /dev/shm if there).
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
#include "fd_log.h"
#include "powercut.h"
#include "scheduler.h"

enum { TAG_APPENDED = 1, TAG_CHECKPOINT = 2 }; /* value: records covered so far */

#define RECORD_MAX 4096u

/* Record i: its index, then (i & 0xff) repeated; 8 to ~3,000 bytes. */
static size_t make_record(uint64_t i, uint8_t *buf) {
  size_t len = 8 + (size_t)((i * 37) % 3000);
  memcpy(buf, &i, 8);
  memset(buf + 8, (int)(i & 0xff), len - 8);
  return len;
}

/* A checkpoint covering records [0, n): n, then filler that depends on n. */
static size_t make_checkpoint(uint64_t n, uint8_t *buf) {
  size_t len = 8 + (size_t)((n * 53) % 2000);
  memcpy(buf, &n, 8);
  memset(buf + 8, (int)(~n & 0xff), len - 8);
  return len;
}

typedef struct run {
  char root[300], dir[320]; /* dir = root/sched, the store's */
  pc_rec_t *rec;
  uint64_t written;         /* records handed to append */
} run_t;

static int append_some(sch_store_t *st, run_t *run, uint32_t n) {
  static uint8_t bufs[40][RECORD_MAX];
  struct iovec iov[40];
  FD_ASSERT(n <= 40);
  for (uint32_t k = 0; k < n; k++)
    iov[k] = (struct iovec){bufs[k], make_record(run->written + k, bufs[k])};
  run->written += n;
  int rc = sch_store_append(st, iov, n);
  if (rc == 0) pc_rec_mark(run->rec, TAG_APPENDED, run->written);
  return rc;
}

/* Leaves half a record at the log's end, durably, as a crash mid-append
 * would: the next open must cut it away (and that truncation is cut too). */
static int leave_torn_tail(run_t *run) {
  const fd_io_hook_t *h = pc_rec_hook(run->rec);
  int dir_fd = open(run->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int fd = fd_io_openat(h, dir_fd, "log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  close(dir_fd);
  if (fd < 0) return fd;
  uint8_t half[600];
  memset(half, 0xee, sizeof(half));
  uint32_t len = 2000; /* promises more than follows */
  memcpy(half, &len, 4);
  int rc = fd_io_write(h, fd, half, sizeof(half)) == (ssize_t)sizeof(half) ? 0 : -EIO;
  if (!rc) rc = fd_io_fdatasync(h, fd);
  close(fd);
  return rc;
}

static int workload(run_t *run, uint64_t *rng) {
  sch_store_dir_options_t opts = {.io_hook = pc_rec_hook(run->rec)};
  int rc = 0;
  sch_store_t *st = sch_store_open_dir_with(run->dir, &opts, &rc);
  uint32_t steps = 30 + (uint32_t)(pc_rand(rng) % 20), torn_at = 5 + (uint32_t)(pc_rand(rng) % 20);
  for (uint32_t i = 0; i < steps && st && !rc; i++) {
    uint32_t what = (uint32_t)(pc_rand(rng) % 10);
    if (i == torn_at) {
      sch_store_close(st);
      rc = leave_torn_tail(run);
      st = rc ? NULL : sch_store_open_dir_with(run->dir, &opts, &rc);
    } else if (what == 0) {
      static uint8_t snap[RECORD_MAX];
      rc = sch_store_checkpoint(st, snap, make_checkpoint(run->written, snap));
      if (rc == 0) pc_rec_mark(run->rec, TAG_CHECKPOINT, run->written);
    } else {
      /* Mostly one record per call, as sch_db appends; sometimes several
       * in one writev, and once in a while more than one writev holds. */
      uint32_t n = what < 6 ? 1 : what < 9 ? 2 + (uint32_t)(pc_rand(rng) % 4) : 33 + (uint32_t)(pc_rand(rng) % 7);
      rc = append_some(st, run, n);
    }
  }
  sch_store_close(st);
  return rc;
}

/* ---- what must hold after a cut ------------------------------------------------------ */

typedef struct seen {
  bool have_ckpt, bad;
  uint64_t ckpt;   /* records the checkpoint covers */
  uint64_t next;   /* the index the next record must have */
  char why[200];
} seen_t;

static int visit(void *arg, bool is_checkpoint, const uint8_t *data, size_t len) {
  seen_t *s = arg;
  static uint8_t want[RECORD_MAX];
  uint64_t i = UINT64_MAX;
  if (len >= 8) memcpy(&i, data, 8);
  if (is_checkpoint) {
    if (len < 8 || make_checkpoint(i, want) != len || memcmp(want, data, len) != 0) {
      snprintf(s->why, sizeof(s->why), "the checkpoint (%zu bytes) is not one that was written", len);
      return s->bad = true, -EBADMSG;
    }
    s->have_ckpt = true;
    s->ckpt = s->next = i;
    return 0;
  }
  if (len < 8 || i != s->next || make_record(i, want) != len || memcmp(want, data, len) != 0) {
    snprintf(s->why, sizeof(s->why), "replayed record %" PRIu64 " (%zu bytes) where %" PRIu64
             " was due", i, len, s->next);
    return s->bad = true, -EBADMSG;
  }
  s->next++;
  return 0;
}

static const char *replay(const char *dir, seen_t *s, char *msg, size_t len) {
  int err = 0;
  sch_store_t *st = sch_store_open_dir(dir, &err);
  if (!st) return pc_say(msg, len, "the store does not open: %s", strerror(-err));
  *s = (seen_t){0};
  int rc = sch_store_replay(st, visit, s);
  sch_store_close(st);
  if (s->bad) return pc_say(msg, len, "%s", s->why);
  if (rc) return pc_say(msg, len, "replay: %s", strerror(-rc));
  return NULL;
}

static const char *check_cut(void *arg, uint32_t at, const char *dir, char *msg, size_t len) {
  const run_t *run = arg;
  uint64_t acked = 0, ckpt_acked = 0;
  bool have_ckpt_acked = false;
  for (uint32_t i = pc_rec_begin(run->rec); i < at; i++) {
    uint32_t tag;
    uint64_t value;
    if (!pc_rec_marker(run->rec, i, &tag, &value)) continue;
    if (tag == TAG_APPENDED) acked = value;
    if (tag == TAG_CHECKPOINT) ckpt_acked = value, have_ckpt_acked = true;
  }
  seen_t s;
  const char *err = replay(dir, &s, msg, len);
  if (err) return err;
  if (s.next < acked)
    return pc_say(msg, len, "records %" PRIu64 "..%" PRIu64 " were acknowledged and are lost",
                    s.next, acked - 1);
  if (have_ckpt_acked && (!s.have_ckpt || s.ckpt < ckpt_acked))
    return pc_say(msg, len, "the checkpoint of %" PRIu64 " records was acknowledged; %s",
                    ckpt_acked, s.have_ckpt ? "an older one is there" : "none is there");
  if (s.next > run->written)
    return pc_say(msg, len, "record %" PRIu64 " replayed, never written", s.next - 1);
  /* After recovery the store works: one more record survives a reopen. */
  int rc = 0;
  sch_store_t *st = sch_store_open_dir(dir, &rc);
  uint8_t buf[RECORD_MAX];
  struct iovec iov = {buf, make_record(s.next, buf)};
  if (st) rc = sch_store_append(st, &iov, 1);
  sch_store_close(st);
  if (rc) return pc_say(msg, len, "appending after recovery: %s", strerror(-rc));
  seen_t after;
  if ((err = replay(dir, &after, msg, len)) != NULL) return err;
  if (after.next != s.next + 1 || after.ckpt != s.ckpt)
    return pc_say(msg, len, "the record appended after recovery is not replayed once");
  return NULL;
}

/* ---- main ------------------------------------------------------------------------------- */

static const char *check(void *arg, uint32_t at, const char *out, char *msg, size_t len) {
  char dir[320];
  snprintf(dir, sizeof(dir), "%s/sched", out);
  return check_cut(arg, at, dir, msg, len);
}

int main(void) {
  fd_log_init("test_store_powercut", FD_LOG_ERROR);
  pc_opts_t o;
  pc_opts_read(&o);
  char work[300];
  snprintf(work, sizeof(work), "%s/fd-sch-powercut-XXXXXX", o.cut_dir);
  if (!mkdtemp(work)) return 1;
  printf("test_store_powercut: seed %#" PRIx64 ", %" PRIu64 " cuts; runs in %s, cuts in %s\n",
         o.seed, o.cuts, o.dir, work);
  double t0 = pc_seconds();
  uint64_t rng = o.seed, runs = 0;
  pc_tally_t t = {0};
  bool ok = true;
  while (t.cuts < o.cuts && ok) {
    run_t run = {0};
    snprintf(run.root, sizeof(run.root), "%s/fd-sch-powercut-run-XXXXXX", o.dir);
    if (!mkdtemp(run.root)) return 1;
    snprintf(run.dir, sizeof(run.dir), "%s/sched", run.root);
    run.rec = pc_rec_create(run.root);
    uint64_t run_rng = pc_rand(&rng);
    int rc = run.rec ? workload(&run, &run_rng) : -EIO;
    char msg[512], model[320], label[64];
    snprintf(model, sizeof(model), "%s/model", work);
    const char *err = rc ? strerror(-rc) : pc_rec_error(run.rec);
    if (!err && pc_rec_check_model(run.rec, model, msg, sizeof(msg)) != 0) err = msg;
    if (err) {
      fprintf(stderr, "test_store_powercut: recording failed (the workload, or the hook missed a "
                      "change): %s\n", err);
      ok = false;
    } else {
      snprintf(label, sizeof(label), "test_store_powercut: run %" PRIu64, runs++);
      pc_cut_run(run.rec, o.cuts - t.cuts, &rng, work, label, check, &run, &t);
    }
    pc_remove_tree(model);
    pc_rec_destroy(run.rec);
    pc_remove_tree(run.root);
  }
  printf("test_store_powercut: %" PRIu64 " cuts over %" PRIu64 " recorded runs; %" PRIu64
         " lost or tore something; %" PRIu64 " broke an invariant; seed %#" PRIx64 ", %.1f s\n",
         t.cuts, runs, t.lost, t.broken, o.seed, pc_seconds() - t0);
  if (!t.broken && ok) pc_remove_tree(work);
  else printf("test_store_powercut: trees kept in %s\n", work);
  return t.broken || !ok ? 1 : 0;
}
