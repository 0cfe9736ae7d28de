/* test_log_powercut.c — power cuts below the changelog at >= 1,000 points of its creation, group-committed appends (batches overlapping with staging), closes, reopens and a torn tail cut at open: it always opens, and holds every acknowledged record once, in order, with its bytes, and nothing never appended.
 *
 * The store and its ring run with the powercut recorder as their fd_io hook
 * (tests/common/powercut.h): the log's creation (v2.log.tmp, its header,
 * fdatasync, rename, directory fsync), each batch's ring write and the
 * fdatasync queued after it completed, the scan's ftruncate and fdatasync
 * and the directory fsync of a reopen are logged in order with their
 * bytes; when a batch's callbacks run, the number of records acknowledged
 * so far is logged as a marker. Each run is cut at every entry of its log
 * while the budget lasts (a random sample after): the model disk loses power
 * there — writes not covered by an fdatasync kept, lost or torn at 512-byte
 * sectors, each directory's namespace changes cut to a random prefix,
 * operations in flight pending too — and the real log is opened on it.
 *
 * After each cut: st_log_open succeeds (creating the log if its creation
 * was lost, which only happens before any acknowledgement); its records,
 * read with st_log_read and again by path with the iterator, are 0, 1, 2,
 * ... each once, each with exactly the bytes appended; every record
 * acknowledged before the cut is there, and none past those appended; a
 * cut is never taken for rot (stats.cut_acked); and a record appended
 * after recovery is there after a reopen.
 *
 * Environment: FDIST_POWERCUT_CUTS (default 1000), FDIST_POWERCUT_SEED
 * (default from the clock; printed; a broken cut prints its seed and what it
 * kept and lost, and keeps its tree), FDIST_POWERCUT_DIR (runs; default
 * /var/tmp), FDIST_POWERCUT_CUT_DIR (cuts; default /dev/shm if there).
 * Exit 77 where io_uring is not available.
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
#include "fd_record.h"
#include "powercut.h"
#include "st_log_test_util.h"

#define NAME "FileA"
#define RECS_MAX 4096u
enum { TAG_ACKED = 1 }; /* value: records acknowledged so far */

typedef struct run {
  char root[300], data[320];
  pc_rec_t *rec;
  st_log_t *l;
  uint64_t written;            /* records handed to append */
  uint64_t acked;              /* done(0) ran for these */
  uint32_t len[RECS_MAX];      /* each one's payload length */
  bool bad_ack;
} run_t;

static st_env_t g_env;
static uint8_t g_buf[FD_LOG_RECORD_MAX];

/* ---- the workload ------------------------------------------------------------------ */

static void on_ack(void *arg, int res) {
  run_t *run = arg;
  if (res != 0) {
    run->bad_ack = true; /* nothing fails here */
    return;
  }
  /* durable_seq moved for the whole batch before its callbacks ran: one
   * marker when the last of them has. */
  if (++run->acked == st_log_durable_seq(run->l)) pc_rec_mark(run->rec, TAG_ACKED, run->acked);
}

/* Mostly small records, some spanning many sectors. */
static uint32_t pick_len(uint64_t *rng) {
  uint64_t r = pc_rand(rng) % 100;
  return r < 70 ? 8 + (uint32_t)(pc_rand(rng) % 300)
         : r < 95 ? 8 + (uint32_t)(pc_rand(rng) % 3000)
                  : 20000 + (uint32_t)(pc_rand(rng) % 50000);
}

static int append_wave(run_t *run, uint32_t n, uint64_t *rng) {
  for (uint32_t k = 0; k < n && run->written < RECS_MAX; k++) {
    uint64_t seq = run->written;
    uint32_t len = pick_len(rng);
    stl_payload(seq, g_buf, len);
    int rc;
    while ((rc = st_log_append(run->l, seq, g_buf, len, on_ack, run)) == -EAGAIN)
      fd_ring_run_once(&g_env.ring, 1, 0);
    if (rc) return rc;
    run->len[seq] = len;
    run->written++;
  }
  return 0;
}

/* Leaves half a record at the log's end, durably, as a crash mid-batch
 * would: the next open must cut it (and that cut is cut too). */
static int leave_torn_tail(run_t *run) {
  const fd_io_hook_t *h = pc_rec_hook(run->rec);
  char path[512];
  snprintf(path, sizeof(path), "%s/%s/v2.log", run->data, NAME);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  uint8_t half[600];
  memset(half, 0xee, sizeof(half));
  fd_le32_put(half, 2000); /* promises more than follows */
  int rc = fstat(fd, &st) != 0 ? -errno
           : fd_io_pwrite(h, fd, half, sizeof(half), (uint64_t)st.st_size) == (ssize_t)sizeof(half)
               ? 0 : -EIO;
  if (!rc) rc = fd_io_fdatasync(h, fd);
  close(fd);
  return rc;
}

static int reopen(st_store_t *s, run_t *run, bool torn) {
  int rc = stl_drain(&g_env.ring, run->l);
  st_log_close(run->l);
  run->l = NULL;
  if (!rc && torn) rc = leave_torn_tail(run);
  if (!rc) rc = st_log_open(s, NAME, 2, 1, &run->l);
  if (!rc && st_log_next_seq(run->l) != run->written) rc = -EBADMSG; /* all drained */
  return rc;
}

static int workload(st_store_t *s, run_t *run, uint64_t *rng) {
  int rc = st_log_open(s, NAME, 2, 1, &run->l);
  uint32_t steps = 12 + (uint32_t)(pc_rand(rng) % 12);
  uint32_t torn_at = 3 + (uint32_t)(pc_rand(rng) % 8), reopen_at = (uint32_t)(pc_rand(rng) % steps);
  for (uint32_t i = 0; i < steps && !rc; i++) {
    if (i == torn_at || i == reopen_at) {
      rc = reopen(s, run, i == torn_at);
      continue;
    }
    /* A wave of appends; then the batch goes now or at the kick; then the
     * ring runs a few turns (batches overlap the next wave's staging) or
     * until everything is acknowledged. */
    uint32_t n = 1 + (uint32_t)(pc_rand(rng) % 30);
    if ((rc = append_wave(run, n, rng)) != 0) break;
    if (pc_rand(rng) % 3 == 0) st_log_flush(run->l);
    if (pc_rand(rng) % 2) {
      for (uint32_t t = (uint32_t)(pc_rand(rng) % 4); t > 0 && st_log_inflight(run->l); t--)
        fd_ring_run_once(&g_env.ring, 1, 0);
    } else {
      rc = stl_drain(&g_env.ring, run->l);
    }
  }
  if (run->l) {
    int r = stl_drain(&g_env.ring, run->l);
    if (!rc) rc = r;
    st_log_close(run->l);
    run->l = NULL;
  }
  return rc ? rc : run->bad_ack ? -EIO : 0;
}

static int record(run_t *run, const pc_opts_t *o, uint64_t seed) {
  snprintf(run->root, sizeof(run->root), "%s/fd-st-log-powercut-run-XXXXXX", o->dir);
  if (!mkdtemp(run->root)) return -errno;
  snprintf(run->data, sizeof(run->data), "%s/data", run->root);
  if (mkdir(run->data, 0755) != 0) return -errno;
  run->rec = pc_rec_create(run->root);
  if (!run->rec) return -EIO;
  st_config_t cfg = g_env.cfg;
  cfg.data_dir = run->data;
  cfg.io_hook = pc_rec_hook(run->rec);
  fd_ring_set_io_hook(&g_env.ring, cfg.io_hook);
  st_store_t *s;
  int rc = st_store_open(&cfg, &s);
  if (!rc) {
    uint64_t rng = seed;
    rc = workload(s, run, &rng);
    st_store_close(s);
  }
  fd_ring_set_io_hook(&g_env.ring, NULL);
  return rc;
}

/* ---- what must hold after a cut -------------------------------------------------- */

typedef struct seen {
  const run_t *run;
  uint64_t n;
  bool bad;
} seen_t;

static int on_record(void *arg, uint64_t seq, const void *payload, uint32_t len) {
  seen_t *s = arg;
  if (seq != s->n || seq >= s->run->written || len != s->run->len[seq] ||
      !stl_payload_is(seq, payload, len))
    s->bad = true;
  s->n++;
  return s->bad ? 1 : 0;
}

/* The records by path: how many match, in order, before the end. */
static uint64_t count_by_path(const run_t *run, st_store_t *s) {
  char path[512];
  st_log_iter_t *it;
  if (st_log_path(s, NAME, 2, path, sizeof(path)) != 0 || st_log_iter_open(path, &it) != 0)
    return 0;
  seen_t sn = {.run = run};
  uint64_t seq;
  const void *p;
  uint32_t len;
  int rc;
  while ((rc = st_log_iter_next(it, &seq, &p, &len)) == 1 && !on_record(&sn, seq, p, len)) {}
  st_log_iter_close(it);
  return rc == 0 && !sn.bad ? sn.n : UINT64_MAX;
}

static const char *check_log(const run_t *run, st_store_t *s, uint64_t acked, char *msg,
                             size_t len) {
  st_log_t *l;
  int rc = st_log_open(s, NAME, 2, 1, &l);
  if (rc) return pc_say(msg, len, "st_log_open: %s", strerror(-rc));
  uint64_t n = st_log_next_seq(l);
  const st_log_stats_t *st = st_log_stats(l);
  seen_t sn = {.run = run};
  rc = st_log_read(l, 0, UINT32_MAX, on_record, &sn);
  const char *err = NULL;
  if (st->cut_acked)
    err = pc_say(msg, len, "the open took the cut of %" PRIu64 " records for rot", st->cut_records);
  else if (rc < 0 || sn.bad || sn.n != n)
    err = pc_say(msg, len, "reading the %" PRIu64 " records back: %d, record %" PRIu64 " is not "
                 "the one appended", n, rc, sn.n);
  else if (n < acked)
    err = pc_say(msg, len, "records %" PRIu64 "..%" PRIu64 " were acknowledged and are lost", n,
                 acked - 1);
  else if (n > run->written)
    err = pc_say(msg, len, "%" PRIu64 " records, %" PRIu64 " were appended", n, run->written);
  else if (count_by_path(run, s) != n)
    err = pc_say(msg, len, "the iterator does not read the %" PRIu64 " records", n);
  if (err) {
    st_log_close(l);
    return err;
  }
  /* After recovery the log works: one more record survives a reopen. */
  stl_ack_t a = {0};
  stl_acks_t acks = {.next = n};
  a.acks = &acks;
  a.seq = n;
  stl_payload(n, g_buf, 64);
  const char *step = "append";
  rc = st_log_append(l, n, g_buf, 64, stl_ack_cb, &a);
  if (!rc) step = "drain", rc = stl_drain(&g_env.ring, l);
  st_log_close(l);
  if (!rc && acks.ok != 1) step = "acknowledgement", rc = acks.last_err ? acks.last_err : -EIO;
  if (!rc) step = "reopen", rc = st_log_open(s, NAME, 2, 1, &l);
  if (rc) return pc_say(msg, len, "appending after recovery: %s: %s", step, strerror(-rc));
  uint64_t after = st_log_next_seq(l);
  st_log_close(l);
  return after == n + 1 ? NULL
                        : pc_say(msg, len, "the record appended after recovery is not there");
}

static const char *check(void *arg, uint32_t at, const char *out, char *msg, size_t len) {
  const run_t *run = arg;
  uint64_t acked = 0;
  for (uint32_t i = pc_rec_begin(run->rec); i < at; i++) {
    uint32_t tag;
    uint64_t value;
    if (pc_rec_marker(run->rec, i, &tag, &value) && tag == TAG_ACKED) acked = value;
  }
  st_config_t cfg = g_env.cfg;
  char data[320];
  snprintf(data, sizeof(data), "%s/data", out);
  cfg.data_dir = data;
  st_store_t *s;
  int rc = st_store_open(&cfg, &s);
  if (rc) return pc_say(msg, len, "st_store_open: %s", strerror(-rc));
  const char *err = check_log(run, s, acked, msg, len);
  st_store_close(s);
  return err;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(void) {
  fd_log_init("test_storage_log_powercut", FD_LOG_ERROR);
  pc_opts_t o;
  pc_opts_read(&o);
  int rc = st_env_init(&g_env, 64u * 1024u, 4);
  if (rc == 77) {
    printf("skip: no io_uring here\n");
    return 77;
  }
  if (rc) {
    fprintf(stderr, "setup: %s\n", strerror(-rc));
    return 1;
  }
  st_store_close(g_env.store);
  g_env.store = NULL;
  char work[300];
  snprintf(work, sizeof(work), "%s/fd-st-log-powercut-XXXXXX", o.cut_dir);
  if (!mkdtemp(work)) return 1;
  printf("test_storage_log_powercut: seed %#" PRIx64 ", %" PRIu64 " cuts; runs in %s, cuts in %s\n",
         o.seed, o.cuts, o.dir, work);
  double t0 = pc_seconds();
  uint64_t rng = o.seed, runs = 0, records = 0;
  uint32_t lo = UINT32_MAX, hi = 0;
  pc_tally_t t = {0};
  bool ok = true;
  static run_t run;
  while (t.cuts < o.cuts && ok) {
    memset(&run, 0, sizeof(run));
    rc = record(&run, &o, pc_rand(&rng));
    char msg[512], model[320], label[64];
    snprintf(model, sizeof(model), "%s/model", work);
    const char *err = rc ? strerror(-rc) : run.rec ? pc_rec_error(run.rec) : "no recorder";
    if (!err && pc_rec_check_model(run.rec, model, msg, sizeof(msg)) != 0) err = msg;
    if (err) {
      fprintf(stderr, "test_storage_log_powercut: recording failed (the workload, or the hook "
                      "missed a change): %s\n", err);
      ok = false;
    } else {
      snprintf(label, sizeof(label), "test_storage_log_powercut: run %" PRIu64, runs++);
      pc_cut_run(run.rec, o.cuts - t.cuts, &rng, work, label, check, &run, &t);
      uint32_t n = pc_rec_end(run.rec) - pc_rec_begin(run.rec);
      lo = FD_MIN(lo, n);
      hi = FD_MAX(hi, n);
      records += run.written;
    }
    pc_remove_tree(model);
    pc_rec_destroy(run.rec);
    pc_remove_tree(run.root);
  }
  printf("test_storage_log_powercut: %" PRIu64 " cuts over %" PRIu64 " recorded runs of %u..%u "
         "entries (%" PRIu64 " records appended); %" PRIu64 " lost or tore something; %" PRIu64
         " broke an invariant; seed %#" PRIx64 ", %.1f s\n", t.cuts, runs, runs ? lo : 0, hi,
         records, t.lost, t.broken, o.seed, pc_seconds() - t0);
  if (!t.broken && ok) pc_remove_tree(work);
  else printf("test_storage_log_powercut: trees kept in %s\n", work);
  st_env_fini(&g_env);
  return t.broken || !ok ? 1 : 0;
}
