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
#include <time.h>
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

static const char *check_cut(const run_t *run, uint32_t at, const char *dir, char *msg, size_t len) {
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

/* ---- the run ----------------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  fd_log_init("test_store_powercut", FD_LOG_ERROR);
  uint64_t cuts = pc_env_u64("FDIST_POWERCUT_CUTS", 1000);
  uint64_t seed = pc_env_u64("FDIST_POWERCUT_SEED", (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid());
  const char *dir = getenv("FDIST_POWERCUT_DIR") ? getenv("FDIST_POWERCUT_DIR") : "/var/tmp";
  const char *cut_dir = getenv("FDIST_POWERCUT_CUT_DIR");
  struct stat sb;
  if (!cut_dir) cut_dir = stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : dir;
  char base[300], cut[320], data[340];
  snprintf(base, sizeof(base), "%s/fd-sch-powercut-XXXXXX", cut_dir);
  if (!mkdtemp(base)) return 1;
  snprintf(cut, sizeof(cut), "%s/cut", base);
  snprintf(data, sizeof(data), "%s/sched", cut);
  printf("test_store_powercut: seed %#" PRIx64 ", %" PRIu64 " cuts; runs in %s, cuts in %s\n", seed,
         cuts, dir, base);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t rng = seed, done = 0, broken = 0, bit = 0, runs = 0;
  bool failed = false;
  while (done < cuts && !failed) {
    run_t run = {0};
    snprintf(run.root, sizeof(run.root), "%s/fd-sch-powercut-run-XXXXXX", dir);
    if (!mkdtemp(run.root)) return 1;
    snprintf(run.dir, sizeof(run.dir), "%s/sched", run.root);
    run.rec = pc_rec_create(run.root);
    uint64_t run_rng = pc_rand(&rng);
    int rc = run.rec ? workload(&run, &run_rng) : -EIO;
    char msg[512], model[340];
    snprintf(model, sizeof(model), "%s/model", base);
    if (rc || pc_rec_error(run.rec) || pc_rec_check_model(run.rec, model, msg, sizeof(msg)) != 0) {
      fprintf(stderr, "test_store_powercut: recording failed: %s\n",
              rc ? strerror(-rc) : pc_rec_error(run.rec) ? pc_rec_error(run.rec) : msg);
      failed = true;
    }
    pc_remove_tree(model);
    uint32_t begin = failed ? 0 : pc_rec_begin(run.rec), end = failed ? 0 : pc_rec_end(run.rec);
    uint32_t n = end - begin + 1, k = (uint32_t)FD_MIN(cuts - done, (uint64_t)n);
    uint32_t *at = malloc(k * sizeof(*at));
    for (uint32_t i = 0; i < k; i++) at[i] = k == n ? begin + i : begin + (uint32_t)(pc_rand(&rng) % n);
    qsort(at, k, sizeof(*at), cmp_u32);
    pc_disk_t *d = failed ? NULL : pc_disk_create(run.rec);
    for (uint32_t i = 0; i < k && !failed; i++) {
      pc_disk_advance(d, at[i]);
      uint64_t cut_seed = pc_rand(&rng);
      pc_cut_stats_t st;
      pc_remove_tree(cut);
      FD_ASSERT(pc_disk_cut(d, cut_seed, cut, NULL, &st) == 0);
      done++;
      bit += st.writes_lost + st.writes_torn + st.dirops_lost > 0;
      const char *err = check_cut(&run, at[i], data, msg, sizeof(msg));
      if (!err) continue;
      fprintf(stderr, "test_store_powercut: BROKEN: run %" PRIu64 ", cut at entry %u of %u..%u, cut "
                      "seed %#" PRIx64 ": %s\n", runs, at[i], begin, end, cut_seed, err);
      if (broken++ < 3) {
        char kept[340];
        snprintf(kept, sizeof(kept), "%s/kept-%" PRIu64 "-%u", base, runs, at[i]);
        fprintf(stderr, "  pending at the cut and what became of it (tree kept in %s):\n", kept);
        pc_disk_cut(d, cut_seed, kept, stderr, NULL);
      }
    }
    pc_disk_destroy(d);
    free(at);
    pc_rec_destroy(run.rec);
    pc_remove_tree(run.root);
    runs++;
  }
  pc_remove_tree(cut);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("test_store_powercut: %" PRIu64 " cuts over %" PRIu64 " recorded runs; %" PRIu64
         " lost or tore something; %" PRIu64 " broke an invariant; seed %#" PRIx64 ", %.1f s\n",
         done, runs, bit, broken, seed,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  if (!broken && !failed) pc_remove_tree(base);
  else printf("test_store_powercut: trees kept in %s\n", base);
  return broken || failed ? 1 : 0;
}
