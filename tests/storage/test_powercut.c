/* test_powercut.c — power cuts below the store at >= 1,000 points of chunk ingest, completion and GC, delta copy, delta clone, repair, and a merge (clone and copy) with its completion: `current` stays whole, no bitmap bit outruns its chunk's fdatasync, the store reopens and resumes, and nothing acknowledged is lost.
 *
 * SIGKILL keeps every completed write, so it cannot catch a missing
 * fdatasync. Here the store runs with a recorder as its fd_io hook
 * (tests/common/powercut.h): every change it makes to the disk — the
 * ring's O_DIRECT writes, group fdatasyncs, bitmap writes, the completion
 * chain (ftruncate, fdatasync, rename, directory fsync, symlink, rename,
 * directory fsync), FICLONERANGE, and the synchronous manifest, bitmap,
 * fallocate and GC calls, and a merge's (st_merge_build: the base cloned or
 * copied, the log's writes, fdatasync, manifest and bitmap) — is logged in completion order with its bytes,
 * and every acknowledgement (a completion, a repair) as a marker. Then, for
 * each cut point (every entry of the log while the budget lasts, a random
 * sample after), the model disk replays the log to there and loses power:
 * each write not yet covered by an fdatasync is kept, lost, or torn at
 * 512-byte sectors (a FICLONERANGE counts as a write of the source range's
 * bytes until the fdatasync after it); each directory keeps a random prefix of its namespace
 * operations not yet covered by an fsync of it (a journal commits them in
 * order; drawn per directory, which allows more states than a journal's
 * one prefix); operations in flight at the cut may or may not have
 * happened. The result is written out, and the real store is reopened on
 * it and checked (st_powercut_check.c says what must hold).
 *
 * Each run of a workload is recorded once and cut many times; the model
 * with every change applied must equal the real tree, or the hook missed a
 * change and the test fails. A clone needs a filesystem that shares blocks:
 * powercut_test.sh runs this on a loop-mounted XFS with reflink when it can
 * (elsewhere the clone scenario runs the copy path, and says so).
 *
 * Environment: FDIST_POWERCUT_CUTS (total, default 1000), FDIST_POWERCUT_SEED
 * (default from the clock; printed, and a broken cut prints its own seed,
 * what the cut kept and lost, and keeps its directory: the same seed draws
 * the same workloads and cuts, but io_uring may complete concurrent puts in
 * another order, so the kept tree is the exact reproduction), FDIST_POWERCUT_DIR
 * (runs are recorded there; default /var/tmp), FDIST_POWERCUT_CUT_DIR (cuts
 * are written out and reopened there; default /dev/shm where it takes
 * O_DIRECT, since thousands of reopens and completions would otherwise wait
 * on real fsyncs; the model does not depend on the filesystem). Exit 77
 * where io_uring is not available.
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
#include "st_powercut.h"

static const char *const scenario_name[PCS_SCENARIOS] = {
    "ingest", "complete+gc", "delta copy", "delta clone", "repair", "merge clone", "merge copy"};
/* Shares of the cuts: the merges' logs are short, and new. */
static const uint32_t scenario_weight[PCS_SCENARIOS] = {2, 2, 2, 2, 2, 3, 3};

/* The merge scenarios' log (v1 is 13 chunks, the last 777 bytes): out of
 * order, overlapping, across a chunk boundary, the short last chunk grown,
 * and a write past the end leaving a hole (chunks 13 and 14). */
typedef struct pcs_write {
  uint64_t off;
  uint32_t len;
} pcs_write_t;
static const pcs_write_t merge_log[] = {
    {3 * PCS_CS + 100, 5000}, {3 * PCS_CS + 2000, 100}, {6 * PCS_CS - 10, 20},
    {PCS_SIZE - 77, 1000},    {15 * PCS_CS + 5, 300},   {PCS_CS, 1}};

static void merge_bytes(size_t i, uint8_t *p, uint32_t len) { st_fill(p, len, 100 + i); }

/* ---- workloads -------------------------------------------------------------------- */

int pcs_put_missing(pcs_ctx_t *c, st_version_t *v, const uint8_t *data, uint32_t max,
                    uint64_t *rng) {
  const st_manifest_t *m = st_version_manifest(v);
  uint32_t order[PCS_CHUNKS_MAX] = {0}, n = 0;
  FD_ASSERT(m->chunk_count <= PCS_CHUNKS_MAX);
  for (uint32_t i = 0; i < m->chunk_count; i++)
    if (!st_version_has(v, i)) order[n++] = i;
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = (uint32_t)(pc_rand(rng) % i), t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  n = FD_MIN(n, max);
  int rc = 0;
  for (uint32_t next = 0; next < n && !rc;) {
    uint32_t wave = 1 + (uint32_t)(pc_rand(rng) % 6), k = 0;
    st_wait_t w[6] = {{0}};
    uint8_t *bufs[6];
    while (k < wave && next < n) {
      uint32_t i = order[next];
      uint32_t len = st_manifest_chunk_len(m, i);
      bufs[k] = fd_pool_get(c->e.pool);
      memcpy(bufs[k], data + (size_t)i * m->chunk_size_bytes, len);
      rc = st_chunk_put(v, i, bufs[k], len, st_wait_cb, &w[k]);
      if (rc) {
        fd_pool_put(c->e.pool, bufs[k]);
        if (rc == -EAGAIN && k > 0) rc = 0; /* the ring is full: wait for this wave */
        break;
      }
      k++, next++;
    }
    for (uint32_t j = 0; j < k; j++) {
      int r = st_run_until(&c->e.ring, &w[j].done);
      if (!rc) rc = r ? r : w[j].res;
      fd_pool_put(c->e.pool, bufs[j]);
    }
  }
  return rc;
}

int pcs_delta_wait(pcs_ctx_t *c, st_version_t *v) {
  st_wait_t w = {0};
  uint64_t reused;
  int rc = st_version_delta(v, &reused, st_wait_cb, &w);
  if (!rc) rc = st_run_until(&c->e.ring, &w.done);
  return rc ? rc : w.res;
}

typedef struct merge_it {
  size_t next;
  uint8_t buf[8192];
} merge_it_t;

static int merge_next(void *arg, uint64_t *off, const uint8_t **data, uint32_t *len) {
  merge_it_t *it = arg;
  if (it->next == FD_ARRAY_LEN(merge_log)) return 0;
  const pcs_write_t *w = &merge_log[it->next];
  FD_ASSERT(w->len <= sizeof(it->buf));
  merge_bytes(it->next++, it->buf, w->len);
  *off = w->off;
  *data = it->buf;
  *len = w->len;
  return 1;
}

int pcs_merge(pcs_ctx_t *c, const char *data_dir, bool no_clone, const fd_io_hook_t *io,
              bool *cloned) {
  merge_it_t it = {0};
  st_merge_opts_t o = {.data_dir = data_dir, .name = PCS_NAME, .base_version = 1, .version = 2,
                       .created_unix_s = PCS_CREATED, .next = merge_next, .next_arg = &it,
                       .signer = {.key = &c->e.key}, .no_clone = no_clone, .io_hook = io};
  st_merge_result_t r;
  int rc = st_merge_build(&o, &r);
  if (rc) return rc;
  if (cloned) *cloned = r.cloned;
  if (r.manifest_len != c->merged_enc_len || memcmp(r.manifest, c->merged_enc, r.manifest_len))
    rc = -EBADMSG;
  free(r.manifest);
  return rc;
}

/* A done callback that logs a marker when the store acknowledges. */
typedef struct ack {
  st_wait_t w;
  pc_rec_t *rec;
  uint32_t tag;
  uint64_t value;
} ack_t;

static void on_ack(void *arg, int res) {
  ack_t *a = arg;
  if (res == 0) pc_rec_mark(a->rec, a->tag, a->value);
  st_wait_cb(&a->w, res);
}

static int complete_acked(pcs_ctx_t *c, pcs_run_t *run, st_version_t *v) {
  ack_t a = {.rec = run->rec, .tag = PCS_TAG_COMPLETE, .value = run->target};
  int rc;
  while ((rc = st_version_complete(v, on_ack, &a)) == -EAGAIN && st_version_missing(v) == 0)
    fd_ring_run_once(&c->e.ring, 1, 0);
  if (!rc) rc = st_run_until(&c->e.ring, &a.w.done);
  return rc ? rc : a.w.res;
}

static int repair_acked(pcs_ctx_t *c, pcs_run_t *run) {
  st_version_t *v;
  int rc = st_version_open(c->e.store, PCS_NAME, 1, &v);
  if (rc) return rc;
  ack_t a[2] = {{.rec = run->rec}, {.rec = run->rec}};
  uint8_t *bufs[2] = {0};
  for (size_t k = 0; k < 2 && !rc; k++) {
    uint32_t i = c->rotten[k], len = st_manifest_chunk_len(st_version_manifest(v), i);
    a[k].tag = PCS_TAG_REPAIRED;
    a[k].value = i;
    if ((rc = st_chunk_mark_bad(v, i)) != 0) break;
    bufs[k] = fd_pool_get(c->e.pool);
    memcpy(bufs[k], c->data[1] + (size_t)i * PCS_CS, len);
    rc = st_chunk_repair(v, i, bufs[k], len, on_ack, &a[k]);
  }
  for (size_t k = 0; k < 2; k++) {
    if (!bufs[k]) continue;
    int r = a[k].w.done ? 0 : st_run_until(&c->e.ring, &a[k].w.done);
    if (!rc) rc = r ? r : a[k].w.res;
    fd_pool_put(c->e.pool, bufs[k]);
  }
  st_close_wait(&c->e, v);
  return rc;
}

static int workload(pcs_ctx_t *c, pcs_run_t *run, uint64_t *rng) {
  if (run->scen == PCS_REPAIR) return repair_acked(c, run);
  int rc;
  if (pcs_is_merge(run->scen)) {
    /* On an origin the merge runs on a worker thread while the engine's
     * store is open, then the engine resumes and completes it. */
    rc = pcs_merge(c, run->cfg.data_dir, run->scen == PCS_MERGE_COPY, run->cfg.io_hook,
                   &run->cloned);
    if (rc) return rc;
    pc_rec_mark(run->rec, PCS_TAG_MERGED, run->target);
  }
  st_version_t *v;
  rc = st_version_begin(c->e.store, run->want_enc, run->want_enc_len, &v);
  if (rc) return rc;
  if (pcs_is_merge(run->scen) && st_version_missing(v) != 0) rc = -EIO;
  if (run->scen == PCS_DELTA_COPY || run->scen == PCS_DELTA_CLONE) rc = pcs_delta_wait(c, v);
  if (!rc && run->scen == PCS_INGEST) {
    /* Half the chunks, then a restart: close (the bitmap flushed and
     * fdatasync'd), reopen, resume from the bitmap. */
    rc = pcs_put_missing(c, v, run->want, PCS_CHUNKS / 2, rng);
    st_close_wait(&c->e, v);
    st_store_close(c->e.store);
    c->e.store = NULL;
    if (!rc) rc = st_store_open(&run->cfg, &c->e.store);
    if (!rc) rc = st_version_begin(c->e.store, run->want_enc, run->want_enc_len, &v);
    if (rc) return rc;
  }
  if (!rc) rc = pcs_put_missing(c, v, run->want, PCS_CHUNKS_MAX, rng);
  if (!rc) rc = complete_acked(c, run, v);
  st_close_wait(&c->e, v);
  if (!rc && run->scen == PCS_COMPLETE_GC) rc = FD_MIN(st_gc_keep(c->e.store, PCS_NAME, 1), 0);
  run->cloned |= st_store_stats(c->e.store)->chunks_cloned > 0;
  return rc;
}

/* Sets up the run's starting state (not recorded: it is durable), then
 * records the workload. */
static int record(pcs_ctx_t *c, pcs_run_t *run, uint64_t seed) {
  snprintf(run->root, sizeof(run->root), "%s/run-XXXXXX", c->base);
  if (!mkdtemp(run->root)) return -errno;
  char data[320];
  snprintf(data, sizeof(data), "%s/data", run->root);
  st_config_t cfg = c->e.cfg;
  cfg.data_dir = data;
  cfg.no_clone = run->scen == PCS_DELTA_COPY;
  int rc = 0;
  run->target = run->scen == PCS_INGEST ? 1 : run->scen == PCS_REPAIR ? 0 : 2;
  bool merge = pcs_is_merge(run->scen);
  run->want = merge ? c->merged : c->data[run->target];
  run->want_size = merge ? c->merged_size : PCS_SIZE;
  run->want_enc = merge ? c->merged_enc : c->enc[run->target];
  run->want_enc_len = merge ? c->merged_enc_len : c->enc_len[run->target];
  if (run->scen != PCS_INGEST) {
    if ((rc = st_store_open(&cfg, &c->e.store)) != 0) return rc;
    rc = st_store_all(&c->e, PCS_NAME, 1, c->data[1], PCS_SIZE, PCS_CS);
    st_store_close(c->e.store);
    c->e.store = NULL;
    if (rc) return rc;
  }
  if (run->scen == PCS_REPAIR) {
    char v1[340];
    snprintf(v1, sizeof(v1), "%s/%s/v1", data, PCS_NAME);
    int fd = open(v1, O_WRONLY);
    for (size_t k = 0; k < 2 && fd >= 0; k++)
      if (pwrite(fd, "rot", 3, (off_t)c->rotten[k] * PCS_CS + 100) != 3) rc = -EIO;
    if (fd < 0 || rc) return fd < 0 ? -errno : rc;
    close(fd);
  }
  run->rec = pc_rec_create(run->root);
  if (!run->rec) return -EIO;
  cfg.io_hook = pc_rec_hook(run->rec);
  fd_ring_set_io_hook(&c->e.ring, cfg.io_hook);
  run->cfg = cfg;
  if ((rc = st_store_open(&cfg, &c->e.store)) == 0) {
    uint64_t rng = seed;
    rc = workload(c, run, &rng);
    st_store_close(c->e.store);
  }
  c->e.store = NULL;
  fd_ring_set_io_hook(&c->e.ring, NULL);
  return rc;
}

/* ---- main ------------------------------------------------------------------------------- */

typedef struct cut_arg {
  pcs_ctx_t *c;
  const pcs_run_t *run;
} cut_arg_t;

static const char *check(void *arg, uint32_t at, const char *out, char *msg, size_t len) {
  cut_arg_t *a = arg;
  char data[320];
  snprintf(data, sizeof(data), "%s/data", out);
  return pcs_check_cut(a->c, a->run, at, data, msg, len);
}

static int ctx_init(pcs_ctx_t *c, const pc_opts_t *o) {
  int rc = st_env_init(&c->e, PCS_CS, 16);
  if (rc) return rc;
  st_store_close(c->e.store);
  c->e.store = NULL;
  snprintf(c->base, sizeof(c->base), "%s/fd-st-powercut-XXXXXX", o->dir);
  snprintf(c->cuts, sizeof(c->cuts), "%s/fd-st-powercut-cuts-XXXXXX", o->cut_dir);
  if (!mkdtemp(c->base) || !mkdtemp(c->cuts)) return -errno;
  for (uint64_t v = 1; v <= PCS_VERSIONS; v++) c->data[v] = malloc(PCS_SIZE);
  st_fill(c->data[1], PCS_SIZE, 1);
  /* v2: chunks 2 and 7 and the short last one changed, the rest reusable. */
  memcpy(c->data[2], c->data[1], PCS_SIZE);
  st_fill(c->data[2] + 2 * PCS_CS, PCS_CS, 2);
  st_fill(c->data[2] + 7 * PCS_CS, PCS_CS, 3);
  st_fill(c->data[2] + (PCS_CHUNKS - 1) * PCS_CS, PCS_SIZE - (PCS_CHUNKS - 1) * PCS_CS, 4);
  for (uint64_t v = 1; v <= PCS_VERSIONS && !rc; v++)
    rc = st_make_manifest(&c->e, PCS_NAME, v, c->data[v], PCS_SIZE, PCS_CS, &c->enc[v],
                          &c->enc_len[v]);
  c->rotten[0] = 4;
  c->rotten[1] = PCS_CHUNKS - 1;
  if (rc) return rc;
  /* The merge scenarios' v2: v1 and the log, in memory; its manifest made
   * as the merge must make it, by st_manifest_build of those bytes. */
  for (size_t i = 0; i < FD_ARRAY_LEN(merge_log); i++)
    c->merged_size = FD_MAX(c->merged_size, merge_log[i].off + merge_log[i].len);
  c->merged = calloc(1, c->merged_size);
  memcpy(c->merged, c->data[1], PCS_SIZE);
  for (size_t i = 0; i < FD_ARRAY_LEN(merge_log); i++)
    merge_bytes(i, c->merged + merge_log[i].off, merge_log[i].len);
  char path[300];
  snprintf(path, sizeof(path), "%s/merged", c->base);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(c->merged, 1, c->merged_size, f) != c->merged_size) rc = -EIO;
  if (f) fclose(f);
  st_manifest_t *m = NULL;
  if (!rc) rc = st_manifest_build(path, PCS_NAME, 2, 1, PCS_CS, &m);
  unlink(path);
  if (rc) return rc;
  FD_ASSERT(m->chunk_count <= PCS_CHUNKS_MAX);
  m->created_unix_s = PCS_CREATED;
  if (!(rc = st_manifest_sign(m, &c->e.key))) rc = st_manifest_encode(m, &c->merged_enc, &c->merged_enc_len);
  st_manifest_free(m);
  return rc;
}

/* Records runs of scenario s and cuts them until budget cuts are made;
 * false when a recording failed (the workload, or the hook missed a change). */
static bool scenario(pcs_ctx_t *c, pcs_scenario_t s, uint64_t budget, uint64_t *rng,
                     pc_tally_t *t) {
  char work[300], label[64];
  snprintf(work, sizeof(work), "%s/%d", c->cuts, (int)s);
  if (mkdir(work, 0755) != 0) return false;
  uint64_t runs = 0;
  uint32_t lo = UINT32_MAX, hi = 0;
  bool cloned = false, ok = true;
  while (budget > 0 && ok) {
    pcs_run_t run = {.scen = s};
    char msg[512], model[340];
    snprintf(model, sizeof(model), "%s/model", work);
    int rc = record(c, &run, pc_rand(rng));
    const char *err = rc ? strerror(-rc) : pc_rec_error(run.rec);
    if (!err && pc_rec_check_model(run.rec, model, msg, sizeof(msg)) != 0) err = msg;
    if (err) {
      fprintf(stderr, "test_storage_powercut: %s: recording failed (the workload, or the hook "
                      "missed a change): %s\n", scenario_name[s], err);
      ok = false;
    } else {
      snprintf(label, sizeof(label), "test_storage_powercut: %s run %" PRIu64, scenario_name[s], runs);
      cut_arg_t arg = {c, &run};
      budget -= pc_cut_run(run.rec, budget, rng, work, label, check, &arg, t);
      uint32_t n = pc_rec_end(run.rec) - pc_rec_begin(run.rec);
      lo = FD_MIN(lo, n);
      hi = FD_MAX(hi, n);
      cloned |= run.cloned;
      runs++;
    }
    pc_remove_tree(model);
    pc_rec_destroy(run.rec);
    if (ok) pc_remove_tree(run.root);
  }
  printf("  %-12s %5" PRIu64 " cuts over %" PRIu64 " recorded runs of %u..%u entries; %" PRIu64
         " lost or tore something; %" PRIu64 " broke an invariant\n", scenario_name[s], t->cuts,
         runs, runs ? lo : 0, hi, t->lost, t->broken);
  if ((s == PCS_DELTA_CLONE || s == PCS_MERGE_CLONE) && ok && !cloned)
    printf("  (%s: the filesystem refused FICLONERANGE, so this scenario ran the copy path; "
           "powercut_test.sh runs it on XFS with reflink)\n", scenario_name[s]);
  return ok;
}

int main(void) {
  fd_log_init("test_storage_powercut", FD_LOG_ERROR);
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) {
    printf("skip: no io_uring here\n");
    return 77;
  }
  fd_ring_deinit(&probe);
  pc_opts_t o;
  pc_opts_read(&o);
  static pcs_ctx_t c;
  int rc = ctx_init(&c, &o);
  if (rc) {
    fprintf(stderr, "test_storage_powercut: setup failed: %s\n", strerror(rc < 0 ? -rc : rc));
    return rc == 77 ? 77 : 1;
  }
  printf("test_storage_powercut: seed %#" PRIx64 ", %" PRIu64 " cuts; runs in %s, cuts in %s\n",
         o.seed, o.cuts, c.base, c.cuts);
  double t0 = pc_seconds();
  uint64_t rng = o.seed, cuts = 0, broken = 0;
  bool ok = true;
  uint32_t weights = 0, before = 0;
  for (int s = 0; s < PCS_SCENARIOS; s++) weights += scenario_weight[s];
  for (int s = 0; s < PCS_SCENARIOS && ok; s++) {
    pc_tally_t t = {0};
    /* Scenario s's share of the cuts; the shares add up to o.cuts. */
    uint64_t from = o.cuts * before / weights;
    before += scenario_weight[s];
    ok = scenario(&c, (pcs_scenario_t)s, o.cuts * before / weights - from, &rng, &t);
    cuts += t.cuts;
    broken += t.broken;
  }
  printf("test_storage_powercut: %" PRIu64 " cuts, %" PRIu64 " broke an invariant, seed %#" PRIx64
         ", %.1f s\n", cuts, broken, o.seed, pc_seconds() - t0);
  if (!broken && ok) {
    pc_remove_tree(c.base);
    pc_remove_tree(c.cuts);
  } else {
    printf("test_storage_powercut: trees kept in %s and %s\n", c.base, c.cuts);
  }
  st_env_fini(&c.e);
  return broken || !ok ? 1 : 0;
}
