/*
 * nd_catchup.c — role origin: an origin that joins (or rejoins) the chain
 * after this one is brought up to date before it takes changes.
 *
 * For every file this origin holds, one at a time: ask where the next
 * origin stands (LogState); copy it every complete version it lacks, in
 * order (the chain's version copy: Missing, then Replicate of what it
 * lacks); then for the log taking changes, send it the records it lacks
 * from this origin's log on disk (back-fill), or, when it holds records this
 * origin does not (this one restarted after ordering them and before its
 * own fdatasync: never acknowledged, but ordered), take them from it
 * (LogRead) so no index is ordered twice. A file whose log is merging here
 * waits until the merge is done (the version is then copied whole). Only
 * then is the link live: acknowledgements wait for the next origin again.
 *
 * Also here: LogRead, which serves a log's records from disk.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_origin_int.h"

/* Up to one batch of a log's records in [from, end), read from disk and
 * unpacked into cs (the caller frees them); *next is the index after the
 * last one taken (from when none). 1: more may follow; 0: the log ended;
 * -EBADMSG; or the reader's -errno. */
static int read_batch(st_log_iter_t *it, uint64_t from, uint64_t end, Origin__Change **cs,
                      uint32_t *n, uint64_t *next) {
  uint64_t bytes = 0;
  int rc = 1;
  *n = 0;
  while (*n < ND_CHANGE_BATCH_MAX && bytes < ND_CHANGE_BATCH_BYTES && from < end) {
    uint64_t seq;
    const void *payload;
    uint32_t len;
    rc = st_log_iter_next(it, &seq, &payload, &len);
    if (rc != 1) break;
    if (seq < from) continue;
    Origin__Change *c = origin__change__unpack(NULL, len, payload);
    if (!c) {
      rc = -EBADMSG;
      break;
    }
    cs[(*n)++] = c;
    bytes += c->data.len;
    from = seq + 1;
  }
  *next = from;
  return rc;
}

/* ---- LogRead: a log's records, from disk ------------------------------------------ */

typedef struct nd_lread {
  rpc_call_t *call;
  char path[FD_PATH_LEN_MAX + 256];
  st_log_iter_t *it; /* NULL: opened again (from the start) at the next pump */
  uint64_t from;     /* the first index not sent yet */
} nd_lread_t;

static void lread_free(nd_lread_t *r) {
  if (r->it) st_log_iter_close(r->it);
  free(r);
}

/* Sends replies until the log ends (finish) or the window is full (the
 * next on_writable goes on). */
static void lread_pump(nd_lread_t *r) {
  if (!r->it) {
    int rc = st_log_iter_open(r->path, &r->it);
    if (rc) {
      rpc_call_finish(r->call, rpc_code_from_errno(rc), fd_strerror(rc));
      return;
    }
  }
  for (;;) {
    Origin__Change *cs[ND_CHANGE_BATCH_MAX];
    uint32_t n;
    uint64_t next;
    int rc = read_batch(r->it, r->from, UINT64_MAX, cs, &n, &next);
    int sent = 0;
    if (n) {
      Origin__LogReadReply rep = ORIGIN__LOG_READ_REPLY__INIT;
      rep.n_changes = n;
      rep.changes = cs;
      sent = rpc_call_send(r->call, &rep.base);
      if (!sent) r->from = next;
      for (uint32_t i = 0; i < n; i++) origin__change__free_unpacked(cs[i], NULL);
    }
    if (sent == -EAGAIN) {
      /* the iterator moved past what was not sent: start it again from the file */
      st_log_iter_close(r->it);
      r->it = NULL;
      return;
    }
    if (sent || rc < 0) {
      rpc_call_finish(r->call, RPC_DATA_LOSS, sent ? fd_strerror(sent) : fd_strerror(rc));
      return;
    }
    if (rc == 0) {
      rpc_call_finish(r->call, RPC_OK, NULL);
      return;
    }
  }
}

static void lread_writable(rpc_call_t *call, void *arg) {
  (void)call;
  lread_pump(arg);
}

static void lread_gone(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  lread_free(arg);
}

static int h_log_read(rpc_call_t *call, const Origin__LogReadRequest *req, void *ctx) {
  nd_origin_t *og = ctx;
  if (!req->name || !st_name_valid(req->name) || !req->version)
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "name and version");
  char path[FD_PATH_LEN_MAX + 256];
  snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 ".log", og->data_dir, req->name, req->version);
  nd_lread_t *r = calloc(1, sizeof(*r)); /* once per catch-up */
  if (!r) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
  r->call = call;
  r->from = req->from_index;
  snprintf(r->path, sizeof(r->path), "%s", path);
  int rc = st_log_iter_open(path, &r->it);
  if (rc) {
    lread_free(r);
    return rpc_call_finish(call, rc == -ENOENT ? RPC_NOT_FOUND : rpc_code_from_errno(rc),
                           fd_strerror(rc));
  }
  static const rpc_call_cbs_t cbs = {NULL, NULL, lread_writable, lread_gone};
  rpc_call_set_cbs(call, &cbs, r);
  lread_pump(r);
  return 0;
}

int nd_catchup_register(nd_origin_t *og) {
  return rpc_serve_origin_log_read(og->e, h_log_read, og);
}

/* ---- bringing the next origin up to date ------------------------------------------- */

/* Every file this origin holds: its data dir's file directories, and the
 * files it has logs for. */
static void list_names(nd_link_t *l) {
  nd_origin_t *og = l->og;
  l->names_n = 0;
  DIR *d = opendir(og->data_dir);
  struct dirent *de;
  while (d && (de = readdir(d)) && l->names_n < ND_CATCHUP_NAMES_MAX) {
    size_t len = strlen(de->d_name);
    if (len > FD_NAME_LEN_MAX || !st_name_valid(de->d_name)) continue;
    memcpy(l->names[l->names_n++], de->d_name, len + 1);
  }
  if (d) closedir(d);
  if (l->names_n == ND_CATCHUP_NAMES_MAX)
    fd_log_warn("catch-up: more than %u files; the rest are not compared", ND_CATCHUP_NAMES_MAX);
}

void nd_catchup_begin(nd_link_t *l) {
  if (!l->names) l->names = calloc(ND_CATCHUP_NAMES_MAX, sizeof(*l->names));
  if (!l->names) {
    nd_link_fail(l, "no memory for the catch-up");
    return;
  }
  list_names(l);
  l->name_i = 0;
  l->step = ND_CU_IDLE;
  l->step_at_ms = 0;
  fd_log_info("bringing origin %s up to date (%u file(s) to compare)",
              l->og->origins->o[l->to].id, l->names_n);
}

void nd_catchup_end(nd_link_t *l) {
  if (l->cu_call) rpc_call_cancel(l->cu_call); /* its done callback clears it */
  l->cu_call = NULL;
  if (l->step == ND_CU_COPY) nd_chain_abort(&l->copy);
  if (l->copy_ver) nd_ver_put(l->copy_ver);
  l->copy_ver = NULL;
  if (l->bf_it) st_log_iter_close(l->bf_it);
  l->bf_it = NULL;
  l->cu_w = NULL;
  l->step = ND_CU_IDLE;
}

static void next_name(nd_link_t *l) {
  l->name_i++;
  l->step = ND_CU_IDLE;
}

/* ---- copies of complete versions --- */

static void copy_done(void *arg, int err) {
  nd_link_t *l = arg;
  if (l->copy_ver) nd_ver_put(l->copy_ver);
  l->copy_ver = NULL;
  l->step = ND_CU_IDLE; /* asks LogState again: the next version, or the log */
  if (err) nd_link_fail(l, "a version copy failed");
}

static void copy_start(nd_link_t *l, const char *name, uint64_t version) {
  nd_origin_t *og = l->og;
  nd_ver_t *v;
  int rc = nd_ver_open(og->p, name, version, &v);
  if (rc) {
    fd_log_warn("catch-up: %s v%" PRIu64 " cannot be opened here (%s): skipped", name, version,
                fd_strerror(rc));
    next_name(l);
    return;
  }
  nd_ver_get(v);
  l->copy_ver = v;
  l->step = ND_CU_COPY;
  fd_log_info("catch-up: copying %s v%" PRIu64 " to origin %s", name, version,
              og->origins->o[l->to].id);
  nd_chain_copy(&l->copy, og, v, l->to, copy_done, l);
}

/* ---- a log: records taken from the next origin (adopt) or sent to it ---- */

static void adopt_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  nd_link_t *l = arg;
  if (m->descriptor != &origin__log_read_reply__descriptor || !l->cu_w) return;
  const Origin__LogReadReply *r = (const Origin__LogReadReply *)m;
  nd_wlog_t *w = l->cu_w;
  for (size_t i = 0; i < r->n_changes; i++) {
    const Origin__Change *c = r->changes[i];
    if (c->index < w->next) continue;
    nd_orec_t rec = {.index = c->index, .offset = c->offset, .client_id = c->client_id,
                     .client_seq = c->client_seq, .len = (uint32_t)c->data.len, .bump = c->bump,
                     .created_s = c->created_unix_s, .chunk_size = c->chunk_size,
                     .epoch = c->epoch};
    int rc = c->index == w->next && !w->closed && c->data.len <= FD_WRITE_BYTES_MAX
                 ? nd_wlog_put(w, &rec, c->data.data)
                 : -EPROTO;
    if (rc == -EAGAIN && l->cu_durable > w->rec_head) {
      /* The outbox is full of what was taken: the next origin holds those
       * durably, so they need not wait for it. */
      nd_wlog_acked(w, FD_MIN(w->next, l->cu_durable), 2);
      rc = nd_wlog_put(w, &rec, c->data.data);
    }
    if (rc == -EAGAIN) { /* no room until this origin's own writes are durable: later */
      l->cu_full = true;
      rpc_call_cancel(call);
      return;
    }
    if (rc) {
      fd_log_error("catch-up: %s v%" PRIu64 ": change %" PRIu64 " from origin %s not taken: %s",
                   w->name, w->version, c->index, l->og->origins->o[l->to].id, fd_strerror(rc));
      rpc_call_cancel(call);
      return;
    }
  }
}

static void adopt_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  nd_link_t *l = arg;
  if (l->cu_call == call) l->cu_call = NULL;
  if (l->stopping || l->state != ND_LINK_CATCHUP) return;
  if (l->cu_full) { /* taken up to w->next; the rest after a pause */
    l->cu_full = false;
    l->step = ND_CU_IDLE;
    l->step_at_ms = fd_now_ms() + ND_LINK_PAUSE_MS;
    return;
  }
  if (code != RPC_OK) {
    char why[200];
    snprintf(why, sizeof(why), "LogRead: %s %s", rpc_code_name(code), msg ? msg : "");
    nd_link_fail(l, why);
    return;
  }
  fd_log_info("catch-up: took %s v%" PRIu64 "'s changes up to %" PRIu64 " from origin %s",
              l->cu_w->name, l->cu_w->version, l->cu_w->next, l->og->origins->o[l->to].id);
  l->step = ND_CU_IDLE; /* ask again: now level */
}

static void adopt_start(nd_link_t *l, nd_wlog_t *w) {
  Origin__LogReadRequest req = ORIGIN__LOG_READ_REQUEST__INIT;
  req.name = w->name;
  req.version = w->version;
  req.from_index = w->next;
  static const rpc_call_cbs_t cbs = {adopt_msg, NULL, NULL, adopt_done};
  l->cu_w = w;
  l->cu_full = false;
  l->step = ND_CU_ADOPT;
  l->cu_call = rpc_start_origin_log_read(l->conn, &req, ND_MERGE_TIMEOUT_MS, &cbs, l);
  if (!l->cu_call) nd_link_fail(l, "cannot start LogRead");
}

/* One back-fill batch from this origin's log on disk. */
static void backfill_step(nd_link_t *l) {
  nd_wlog_t *w = l->cu_w;
  if (l->bf_next >= l->bf_end) {
    for (uint32_t k = 0; k < ND_LINK_BATCHES_MAX; k++) /* one not taken is sent again */
      if (l->batches[k].used && l->batches[k].backfill) return;
    if (l->bf_it) st_log_iter_close(l->bf_it);
    l->bf_it = NULL;
    w->sent = FD_MAX(w->sent, l->bf_end);
    next_name(l);
    return;
  }
  if (l->inflight >= ND_LINK_BATCHES_MAX || fd_now_ms() < l->pause_until_ms) return;
  if (!l->bf_it) { /* rewound: read again from the file's start */
    char path[FD_PATH_LEN_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 ".log", l->og->data_dir, w->name, w->version);
    if (st_log_iter_open(path, &l->bf_it)) {
      nd_link_fail(l, "cannot read this origin's log for a back-fill");
      return;
    }
  }
  uint64_t first = l->bf_next;
  l->bf_pos = st_log_iter_tell(l->bf_it); /* a batch refused is read again from here */
  Origin__Change *cs[ND_CHANGE_BATCH_MAX];
  uint32_t n;
  int rc = read_batch(l->bf_it, l->bf_next, l->bf_end, cs, &n, &l->bf_next);
  if (rc != 1 && l->bf_next < l->bf_end) {
    for (uint32_t i = 0; i < n; i++) origin__change__free_unpacked(cs[i], NULL);
    nd_link_fail(l, "this origin's log ends before what it acknowledged");
    return;
  }
  if (n) rc = nd_link_send(l, w, cs, n, false, true);
  for (uint32_t i = 0; i < n; i++) origin__change__free_unpacked(cs[i], NULL);
  if (n && rc == -EAGAIN) nd_catchup_rewind(l, first, l->bf_pos); /* no stream now: next tick */
  else if (n && rc) nd_link_fail(l, "cannot send a back-fill batch");
}

/* Back to record `from`, read from pos (at or before it) on: a seek, not a
 * read of the log from its start, which made a long back-fill quadratic
 * (each refusal by a next origin short of room read the log again). */
void nd_catchup_rewind(nd_link_t *l, uint64_t from, st_log_pos_t pos) {
  if (l->step != ND_CU_BACKFILL || from >= l->bf_next) return;
  if (l->bf_it && (pos.seq > from || st_log_iter_seek(l->bf_it, pos))) {
    st_log_iter_close(l->bf_it); /* read again from the file's start */
    l->bf_it = NULL;
  }
  l->bf_next = from;
}

static void backfill_start(nd_link_t *l, nd_wlog_t *w, uint64_t from) {
  char path[FD_PATH_LEN_MAX + 256];
  snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 ".log", l->og->data_dir, w->name, w->version);
  int rc = st_log_iter_open(path, &l->bf_it);
  if (rc) {
    nd_link_fail(l, "cannot read this origin's log for a back-fill");
    return;
  }
  l->cu_w = w;
  l->bf_next = from;
  l->bf_from = from;
  l->bf_end = w->rec_head; /* what the outbox no longer holds; the rest is sent from it */
  l->step = ND_CU_BACKFILL;
  fd_log_info("catch-up: sending %s v%" PRIu64 "'s changes %" PRIu64 "..%" PRIu64
              " to origin %s from the log",
              w->name, w->version, from, l->bf_end, l->og->origins->o[l->to].id);
}

/* ---- where the next origin stands ---- */

static void state_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg);
static void state_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg);

/* LogState of name; drop_version: the next origin drops that open log first. */
static void state_ask(nd_link_t *l, const char *name, uint64_t drop_version) {
  Origin__LogStateRequest req = ORIGIN__LOG_STATE_REQUEST__INIT;
  req.name = (char *)name;
  req.drop_version = drop_version;
  req.epoch = l->og->epoch;
  static const rpc_call_cbs_t cbs = {state_msg, NULL, NULL, state_done};
  l->step = ND_CU_STATE;
  l->cu_call = rpc_start_origin_log_state(l->conn, &req, ND_CHANGES_CALL_MS, &cbs, l);
  if (!l->cu_call) nd_link_fail(l, "cannot start LogState");
}

static void state_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_link_t *l = arg;
  if (m->descriptor != &origin__log_state_reply__descriptor) return;
  const Origin__LogStateReply *r = (const Origin__LogStateReply *)m;
  nd_origin_t *og = l->og;
  const char *name = l->names[l->name_i];
  l->step = ND_CU_IDLE;
  uint64_t mine = nd_newest_complete(og->p, name);
  if (r->newest_complete < mine) {
    copy_start(l, name, r->newest_complete + 1);
    return;
  }
  nd_wlog_t *w = nd_wlog_find(og, name, 0);
  if (!w && r->version && r->version == mine + 1 && r->newest_complete == mine) {
    /* It builds the log this origin builds next: open (resume) ours to
     * compare, so records it holds that this one lost are taken back
     * before this one orders anything at their indexes. */
    int rc = nd_wlog_get(og, name, r->version, &w);
    if (rc) {
      fd_log_error("catch-up: %s v%" PRIu64 ": cannot open this origin's log: %s", name,
                   r->version, fd_strerror(rc));
      nd_link_fail(l, "this origin's log cannot be opened");
      return;
    }
  }
  if (!w || r->newest_complete > mine) { /* nothing to send, or it is ahead of this one */
    next_name(l);
    return;
  }
  uint64_t theirs = r->version == w->version ? r->next_index
                    : r->newest_complete + 1 == w->version ? 0
                                                           : UINT64_MAX;
  if (theirs == UINT64_MAX) {
    next_name(l);
    return;
  }
  if (theirs > w->next) {
    /* It holds records this origin lacks. Without ZooKeeper (one head,
     * forever) they were ordered by this chain's head and this origin lost
     * them in a crash: taken back. With it, only a head that has ordered
     * nothing yet in its epoch takes them back (the chain's order gives it
     * every record a live successor holds); any other origin's successor
     * ahead of it is a deposed head rejoining, whose extra records no head
     * acknowledged: it drops its log and is sent this one's. */
    if (!og->zk || (og->origins->self == 0 && !l->caught_up_once) ||
        r->last_epoch >= og->chain.head_since) {
      l->cu_durable = theirs;
      adopt_start(l, w);
      return;
    }
    fd_log_warn("catch-up: %s v%" PRIu64 ": origin %s holds records up to %" PRIu64
                " of epoch %" PRIu64 ", before the head's election (epoch %" PRIu64
                "): a deposed head's, never acknowledged; it drops them",
                name, w->version, og->origins->o[l->to].id, theirs, r->last_epoch,
                og->chain.head_since);
    state_ask(l, name, w->version);
    return;
  }
  /* With ZooKeeper its records must be this origin's: the same index
   * ordered in the same epoch is the same record (no two heads share an
   * epoch), and a log holding a record also holds every one before it that
   * this origin holds. A head deposed while it was ordering rejoins with
   * records of its own at indexes the next head ordered others at: its log
   * is dropped and sent anew. */
  if (og->zk && r->taken_index && r->taken_index <= w->next) {
    uint64_t ours = 0;
    int erc = nd_wlog_epoch_at(w, r->taken_index - 1, &ours);
    if (erc || ours != r->last_epoch) {
      fd_log_warn("catch-up: %s v%" PRIu64 ": origin %s's record %" PRIu64 " is of epoch %" PRIu64
                  ", this origin's of %" PRIu64 "%s: its log diverged (a deposed head's records); "
                  "it drops it and is sent this one's",
                  name, w->version, og->origins->o[l->to].id, r->taken_index - 1, r->last_epoch,
                  ours, erc ? " (not found here)" : "");
      state_ask(l, name, w->version);
      return;
    }
  }
  /* It holds [0, theirs) durably already (this origin restarted, or it
   * got them from the origin before it): acknowledged by both, so changes
   * waiting on them need nothing more to be sent. */
  if (theirs) nd_wlog_acked(w, theirs, 2);
  w->sent = FD_MAX(theirs, w->rec_head); /* the outbox sends the rest once live */
  if (theirs < w->rec_head) {
    backfill_start(l, w, theirs);
    return;
  }
  next_name(l);
}

static void state_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  nd_link_t *l = arg;
  if (l->cu_call != call) return; /* its answer started the next step's call already */
  l->cu_call = NULL;
  if (code == RPC_OK || l->stopping || l->state != ND_LINK_CATCHUP) return;
  char why[200];
  snprintf(why, sizeof(why), "LogState: %s %s", rpc_code_name(code), msg ? msg : "");
  nd_link_fail(l, why);
}

/* A file whose log is merging here waits for the merge (then its version
 * is copied whole; the log's records sent again are answered as held). */
static bool merging(nd_origin_t *og, const char *name) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    const nd_wlog_t *w = &og->wlogs[i];
    if (w->used && w->closed && w->merge != ND_MERGE_DONE && !strcmp(w->name, name)) return true;
  }
  return false;
}

void nd_catchup_tick(nd_link_t *l) {
  nd_origin_t *og = l->og;
  nd_chain_tick(&l->copy);
  if (l->step == ND_CU_BACKFILL) {
    backfill_step(l);
    return;
  }
  if (l->step != ND_CU_IDLE || l->cu_call) return;
  if (l->name_i >= l->names_n) {
    nd_link_live_now(l);
    return;
  }
  const char *name = l->names[l->name_i];
  uint64_t now = fd_now_ms();
  if (now < l->step_at_ms) return;
  if (merging(og, name)) {
    l->step_at_ms = now + ND_RETRY_MS;
    return;
  }
  state_ask(l, name, 0);
}
