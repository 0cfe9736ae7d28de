/*
 * nd_merge.c — role origin: a bumped log becomes the next version.
 *
 * Once a log's bump record is durable here and the version before is
 * complete, a worker thread builds the version (storage's st_merge_build:
 * a reflink clone or copy of the base, the log's writes applied in order,
 * only the touched chunks hashed again, the manifest signed with the origin
 * group's key) while the engine goes on; the engine thread then has the
 * store resume and complete it (current switches). Every origin does this
 * on its own, from its own log, and the merge is deterministic (the head
 * chose the creation time and chunk size in the bump record), so the
 * manifests must be byte-identical: each origin answers the bump's batch
 * with its digest and those of the origins after it, and the head commits
 * the version with fdsched only when every digest equals its own. A
 * mismatch is never distributed: it is logged as an error, the Bump calls
 * fail, and changes to that file stop until an operator steps in.
 *
 * Threads: one worker per merge; it touches only its job (nd_mjob_t) and
 * the files of the version it builds; the engine polls its `done` flag.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_origin_int.h"
#include "nd_signer.h"

typedef struct nd_mjob {
  pthread_t thread;
  _Atomic bool done;
  /* in: copies made before the thread starts */
  char data_dir[FD_PATH_LEN_MAX];
  char name[FD_NAME_LEN_MAX + 1];
  char log_path[FD_PATH_LEN_MAX + 256];
  uint64_t version, bump_index, created_s;
  uint32_t chunk_size;
  const nd_signer_t *signer; /* the host's, read-only, outlives every job */
  /* the iterator's state */
  st_log_iter_t *it;
  Origin__Change *cur;
  int iter_err;
  /* out */
  int rc;
  st_merge_result_t res;
} nd_mjob_t;

/* st_merge_build's change source: the log's records, in order, up to the bump. */
static int next_change(void *arg, uint64_t *offset, const uint8_t **data, uint32_t *len) {
  nd_mjob_t *j = arg;
  if (j->cur) origin__change__free_unpacked(j->cur, NULL);
  j->cur = NULL;
  uint64_t seq;
  const void *payload;
  uint32_t plen;
  int rc = st_log_iter_next(j->it, &seq, &payload, &plen);
  if (rc <= 0) return rc < 0 ? rc : -EBADMSG; /* the log ends before its bump: damaged */
  if (seq >= j->bump_index) return 0;
  j->cur = origin__change__unpack(NULL, plen, payload);
  if (!j->cur || j->cur->bump) return -EBADMSG;
  *offset = j->cur->offset;
  *data = j->cur->data.data;
  *len = (uint32_t)j->cur->data.len;
  return 1;
}

static void *merge_main(void *arg) {
  nd_mjob_t *j = arg;
  j->rc = st_log_iter_open(j->log_path, &j->it);
  if (!j->rc) {
    st_merge_opts_t o = {.data_dir = j->data_dir, .name = j->name,
                         .base_version = j->version - 1, .version = j->version,
                         .chunk_size_bytes = j->chunk_size, .created_unix_s = j->created_s,
                         .next = next_change, .next_arg = j,
                         .signer = nd_signer_merge(j->signer)};
    j->rc = st_merge_build(&o, &j->res);
    if (j->cur) origin__change__free_unpacked(j->cur, NULL);
    j->cur = NULL;
    st_log_iter_close(j->it);
  }
  atomic_store_explicit(&j->done, true, memory_order_release);
  return NULL;
}

static int job_start(nd_wlog_t *w) {
  nd_origin_t *og = w->og;
  if (!og->signer) return -ENOKEY;
  nd_mjob_t *j = calloc(1, sizeof(*j));
  if (!j) return -ENOMEM;
  snprintf(j->data_dir, sizeof(j->data_dir), "%s", og->data_dir);
  snprintf(j->name, sizeof(j->name), "%s", w->name);
  snprintf(j->log_path, sizeof(j->log_path), "%s/%s/v%" PRIu64 ".log", og->data_dir, w->name,
           w->version);
  j->version = w->version;
  j->bump_index = w->bump_index;
  j->created_s = w->created_s;
  j->chunk_size = w->chunk_size;
  j->signer = og->signer;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay with the engine's thread */
  int rc = -pthread_create(&j->thread, NULL, merge_main, j);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) {
    free(j);
    return rc;
  }
  w->job = j;
  return 0;
}

static void job_end(nd_wlog_t *w) {
  nd_mjob_t *j = w->job;
  if (!j) return;
  pthread_join(j->thread, NULL);
  free(j->res.manifest);
  free(j);
  w->job = NULL;
}

/* ---- agreement and commit (the head) ---------------------------------------------- */

static void answer_bumps(nd_wlog_t *w, int err, const char *why) {
  for (uint32_t i = 0; i < w->bump_calls_n; i++) {
    rpc_call_t *call = w->bump_calls[i];
    if (!call) continue;
    if (err) {
      rpc_call_finish(call, rpc_code_from_errno(err), why);
      continue;
    }
    Origin__BumpReply r = ORIGIN__BUMP_REPLY__INIT;
    r.version = w->version;
    r.changes = w->changes;
    r.digest.data = w->digest;
    r.digest.len = FD_SHA256_LEN;
    if (rpc_call_send(call, &r.base) == 0) rpc_call_finish(call, RPC_OK, NULL);
  }
  w->bump_calls_n = 0;
}

static void on_committed(void *arg, int err) {
  nd_wlog_t *w = arg;
  if (err)
    fd_log_warn("%s v%" PRIu64 ": fdsched did not confirm the commit (%s); retried", w->name,
                w->version, fd_strerror(err));
  fd_log_info("%s v%" PRIu64 " merged from %" PRIu64 " change(s) and committed", w->name,
              w->version, w->changes);
  answer_bumps(w, 0, NULL);
  nd_wlog_retire_merged(w);
}

static void hex(const uint8_t *d, char *out) {
  for (uint32_t i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Every origin's digest equals this one's: commit; else stop, loudly. */
static void head_agree(nd_wlog_t *w) {
  nd_origin_t *og = w->og;
  char mine[17], theirs[17];
  hex(w->digest, mine);
  for (uint32_t i = 0; i < w->merged_n; i++) {
    if (!memcmp(w->merged_digest[i], w->digest, FD_SHA256_LEN)) continue;
    hex(w->merged_digest[i], theirs);
    fd_log_error("%s v%" PRIu64 ": origins disagree on the merged version: %s has %s..., "
                 "origin %s has %s...; NOT distributed; changes to %s are stopped",
                 w->name, w->version, og->id, mine, w->merged_origin[i], theirs, w->name);
    snprintf(og->halted, sizeof(og->halted), "%s", w->name);
    answer_bumps(w, -EIO, "the origins merged the version differently: not distributed");
    return;
  }
  char *ids[ND_ORIGINS_MAX];
  uint32_t n = 0;
  ids[n++] = og->id;
  for (uint32_t i = 0; i < w->merged_n && n < ND_ORIGINS_MAX; i++) ids[n++] = w->merged_origin[i];
  if (n < og->min_durable) {
    /* The chain is being re-formed (an origin left out, or back): the bump
     * record goes again to the next origin, whose answer brings us here. */
    fd_log_warn("%s v%" PRIu64 ": merged on %u origin(s), fewer than min_durable_origins %u: "
                "not committed yet, waiting for the chain",
                w->name, w->version, n, og->min_durable);
    return;
  }
  nd_ver_t *v = nd_ver_find(og->p, w->name, w->version);
  if (!v) {
    answer_bumps(w, -ENOENT, "the merged version is gone");
    nd_wlog_release(w);
    return;
  }
  nd_commit(og, v, ids, n, on_committed, w);
}

void nd_merge_chain_answered(nd_wlog_t *w) {
  if (w->og->origins->self == 0 && w->merge == ND_MERGE_DONE) head_agree(w);
  else nd_writes_progress(w);
}

/* ---- the engine's side ------------------------------------------------------------------ */

static void on_complete(void *arg, int res) {
  nd_wlog_t *w = arg;
  nd_origin_t *og = w->og;
  if (res) {
    /* Retried: the bump's batch and the Bump calls wait (a disk full or a
     * missing key can be put right without losing the log). */
    fd_log_error("%s v%" PRIu64 ": the merge failed: %s; trying again in %u s", w->name,
                 w->version, fd_strerror(res), ND_MERGE_RETRY_MS / 1000);
    w->merge = ND_MERGE_FAILED;
    fd_counter_add(&og->m.merge_failures, 1);
    w->merge_err = res;
    w->merge_retry_ms = fd_now_ms() + ND_MERGE_RETRY_MS;
    return;
  }
  w->merge = ND_MERGE_DONE;
  fd_counter_add(&og->m.merges, 1);
  if (og->origins->self != 0) {
    nd_writes_progress(w); /* the bump's batch is answered with the digest */
    return;
  }
  if (!og->has_next || w->chain_merged) head_agree(w);
}

/* The worker is done: the store takes the version and completes it. */
static void job_finished(nd_wlog_t *w) {
  nd_origin_t *og = w->og;
  nd_mjob_t *j = w->job;
  int rc = j->rc;
  nd_ver_t *v = NULL;
  if (!rc) {
    memcpy(w->digest, j->res.digest, FD_SHA256_LEN);
    fd_log_info("%s v%" PRIu64 ": merged %" PRIu64 " change(s) into %" PRIu64 " bytes", w->name,
                w->version, w->changes, j->res.size_bytes);
    rc = nd_ver_begin(og->p, j->res.manifest, j->res.manifest_len, &v);
  }
  job_end(w);
  if (!rc) {
    rc = nd_ver_complete(og->p, v, on_complete, w);
    if (rc == -EALREADY) {
      on_complete(w, 0);
      return;
    }
  }
  if (rc) {
    on_complete(w, rc);
    return;
  }
  w->merge = ND_MERGE_COMPLETING;
}

void nd_merge_tick(nd_origin_t *og) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    if (!w->used) continue;
    if (!w->closed || w->merge == ND_MERGE_DONE) {
      nd_writes_retire(w); /* not the head: done with, or superseded */
      continue;
    }
    if (w->merge == ND_MERGE_RUNNING) {
      if (atomic_load_explicit(&w->job->done, memory_order_acquire)) job_finished(w);
      continue;
    }
    if (w->merge == ND_MERGE_FAILED && fd_now_ms() >= w->merge_retry_ms) w->merge = ND_MERGE_NONE;
    if (w->merge != ND_MERGE_NONE || w->durable_local <= w->bump_index) continue;
    if (nd_newest_complete(og->p, w->name) + 1 != w->version) continue; /* the base merges first */
    int rc = job_start(w);
    if (rc) {
      on_complete(w, rc);
      continue;
    }
    w->merge = ND_MERGE_RUNNING;
  }
}

void nd_merge_stop(nd_origin_t *og) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++)
    if (og->wlogs[i].job) job_end(&og->wlogs[i]); /* a merge runs to its end */
}
