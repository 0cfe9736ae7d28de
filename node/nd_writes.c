/*
 * nd_writes.c — role origin, the head: writers' changes put in one order.
 *
 * Write (a write at an offset, or an append, whose offset the head assigns:
 * the file's end as of this change, so concurrent appenders never overwrite
 * each other) and Bump come from the admin role or a writer key the admin
 * certified. The head gives each change the next index of the log building
 * the file's next version, appends it to its own log and its outbox (the
 * link sends it down the chain at once, alongside the local write), and
 * answers the writer once the change is durable here and on every origin
 * after it, and at least min_durable_origins hold it (nd_writes_progress).
 * A bump closes the log with a last record; the merge follows on every
 * origin (nd_merge.c). Thresholds (bump_changes, bump_bytes,
 * bump_interval_s) bump on their own.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fd_error.h"
#include "nd_origin_int.h"

/* ---- answers ------------------------------------------------------------------- */

static void answer_writer(nd_wlog_t *w, const nd_wwait_t *ww) {
  /* Acknowledged (durable on enough origins) whether or not the writer
   * still waits for the answer. */
  if (!ww->retry) { /* a retry's change was counted at its first answer */
    fd_counter_add(&w->og->m.changes_acked, 1);
    fd_hist_observe_ns(&w->og->m.ack_latency, fd_now_ns() - ww->arrived_ns);
  }
  if (!ww->call) return; /* the writer gave up */
  Origin__WriteReply r = ORIGIN__WRITE_REPLY__INIT;
  r.version = w->version;
  r.index = ww->index;
  r.offset = ww->offset;
  if (rpc_call_send(ww->call, &r.base) == 0) rpc_call_finish(ww->call, RPC_OK, NULL);
}

static void answer_upstream(nd_wlog_t *w, const nd_cwait_t *cw) {
  if (!cw->call) return;
  nd_origin_t *og = w->og;
  Origin__ChangeAck a = ORIGIN__CHANGE_ACK__INIT;
  char *ids[ND_ORIGINS_MAX];
  uint32_t n = 0;
  ids[n++] = og->id;
  for (uint32_t i = 0; i < og->link.held_n && n < ND_ORIGINS_MAX && og->has_next; i++)
    ids[n++] = og->link.held[i];
  a.durable = cw->end;
  a.n_origins = n;
  a.origins = ids;
  Origin__MergedDigest md[ND_ORIGINS_MAX], *mp[ND_ORIGINS_MAX];
  if (cw->bump) {
    uint32_t k = 0;
    origin__merged_digest__init(&md[k]);
    md[k].origin = og->id;
    md[k].digest.data = w->digest;
    md[k].digest.len = FD_SHA256_LEN;
    mp[k] = &md[k];
    k++;
    for (uint32_t i = 0; i < w->merged_n && k < ND_ORIGINS_MAX; i++, k++) {
      origin__merged_digest__init(&md[k]);
      md[k].origin = w->merged_origin[i];
      md[k].digest.data = w->merged_digest[i];
      md[k].digest.len = FD_SHA256_LEN;
      mp[k] = &md[k];
    }
    a.n_merged = k;
    a.merged = mp;
  }
  if (rpc_call_send(cw->call, &a.base) == 0) rpc_call_finish(cw->call, RPC_OK, NULL);
}

void nd_writes_progress(nd_wlog_t *w) {
  nd_origin_t *og = w->og;
  if (og->origins->self == 0) {
    if (w->chain_held < og->min_durable) return; /* held for now: more origins, or the deadline */
    while (w->ww_len && w->ww[w->ww_head].index < w->durable_chain) {
      answer_writer(w, &w->ww[w->ww_head]);
      w->ww_head = (w->ww_head + 1) % ND_WRITES_INFLIGHT_MAX;
      w->ww_len--;
    }
    return;
  }
  while (w->cw_len) {
    nd_cwait_t *cw = &w->cw[w->cw_head];
    if (cw->end > w->durable_chain) break;
    /* a bump's batch waits for this origin's merge (retried while it
     * fails) and the answer of those after it */
    if (cw->bump && (w->merge != ND_MERGE_DONE || (og->has_next && !w->chain_merged))) break;
    answer_upstream(w, cw);
    w->cw_head = (w->cw_head + 1) % ND_CHANGE_CALLS_MAX;
    w->cw_len--;
  }
  nd_writes_retire(w);
}

void nd_writes_retire(nd_wlog_t *w) {
  nd_origin_t *og = w->og;
  if (og->origins->self == 0 || !w->used || w->cw_len || nd_link_refers(&og->link, w)) return;
  /* merged here and answered (a resend is answered from the version), or
   * open for a version a catch-up copied whole */
  bool merged = w->closed && w->merge == ND_MERGE_DONE;
  bool superseded = !w->closed && w->version <= nd_newest_complete(og->p, w->name);
  if (!merged && !superseded) return;
  fd_log_debug("%s v%" PRIu64 ": merged and answered: the log is done with here", w->name,
               w->version);
  nd_wlog_retire_merged(w);
}

/* ---- Write ---------------------------------------------------------------------- */

static void wait_gone(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)code;
  (void)msg;
  nd_origin_t *og = arg;
  /* The writer is gone before the answer: forget its call (the change
   * stays ordered: it may be acknowledged to nobody). */
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    for (uint32_t k = 0; w->used && k < w->ww_len; k++) {
      nd_wwait_t *ww = &w->ww[(w->ww_head + k) % ND_WRITES_INFLIGHT_MAX];
      if (ww->call == call) {
        ww->call = NULL;
        return;
      }
    }
  }
}

/* The admin role (writer keys the admin certified come with the rpc
 * handshake's writer role). */
static bool may_write(const rpc_call_t *call) { return rpc_call_role(call) >= RPC_ROLE_WRITER; }

/* Refuses a change the group cannot take now; 0 when it can. */
static int refuse(nd_origin_t *og, rpc_call_t *call, const char *name) {
  char msg[200];
  if (!may_write(call))
    return rpc_call_finish(call, RPC_PERMISSION_DENIED,
                           "changes need the admin role or a writer key the admin certified");
  if (!nd_group_orders(og)) return nd_group_not_head(og, call);
  if (og->stopping) return rpc_call_finish(call, RPC_UNAVAILABLE, "the head is stopping");
  if (!name || !st_name_valid(name)) return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "name");
  if (og->failed)
    return rpc_call_finish(call, RPC_UNAVAILABLE, "this origin's changelog failed (disk error)");
  if (og->halted[0] && !strcmp(og->halted, name))
    return rpc_call_finish(call, RPC_FAILED_PRECONDITION,
                           "changes to this file are stopped: the origins merged its last "
                           "version differently (see the head's log)");
  /* Until this origin first compared its logs with the next one's, that one
   * may hold records this one lost in a crash (ordered, never acknowledged):
   * no index may be ordered twice. That holds from the moment a next origin
   * is known, not only once the comparison began: a change ordered while
   * the link still connects takes an index the next may hold already. Later
   * catch-ups queue the changes. */
  uint32_t live = nd_link_reachable(og);
  if (live >= 2 && !og->link.caught_up_once)
    return rpc_call_finish(call, RPC_ABORTED,
                           "this origin compares its logs with the next origin's before it orders: "
                           "try again shortly");
  /* An elected head orders nothing before it compared its logs with the
   * next origin's (nd_group.c). */
  if (og->zk && !og->link.caught_up_once)
    return rpc_call_finish(call, RPC_ABORTED,
                           "the head is comparing its logs with the next origin's: try again "
                           "shortly");
  /* An origin being joined will hold what is ordered now (the changes wait
   * for it; they are never acknowledged on fewer origins). */
  if (live < og->min_durable && !og->link.caught_up_once) /* just started: peers unknown yet */
    return rpc_call_finish(call, RPC_ABORTED,
                           "the origin group is being formed: try again shortly");
  if (live < og->min_durable) {
    snprintf(msg, sizeof(msg),
             "only %u origin(s) can hold changes durably; min_durable_origins is %u", live,
             og->min_durable);
    return rpc_call_finish(call, RPC_FAILED_PRECONDITION, msg);
  }
  return 1;
}

static void reply_write(rpc_call_t *call, uint64_t version, uint64_t index, uint64_t offset) {
  Origin__WriteReply r = ORIGIN__WRITE_REPLY__INIT;
  r.version = version;
  r.index = index;
  r.offset = offset;
  if (rpc_call_send(call, &r.base) == 0) rpc_call_finish(call, RPC_OK, NULL);
}

/* q is a change this origin holds already (e: where it went; the writer
 * sent it again after losing the answer, to this head or to the one
 * before): answered with that place once it is acknowledged, never ordered
 * again. 0: parked; 1: answered now; -EAGAIN: no room to park it. */
static int known_write(nd_origin_t *og, const nd_wqueued_t *q, const nd_dedup_ent_t *e) {
  nd_wlog_t *w = nd_wlog_find(og, q->name, e->version);
  fd_counter_add(&og->m.resent_known, 1);
  fd_log_debug("%s: change %" PRIu64 "/%" PRIu64 " sent again: it is v%" PRIu64 " index %" PRIu64,
               q->name, q->client_id, q->client_seq, e->version, e->index);
  /* Its log is done with (merged into its version) or it is acknowledged. */
  if (!w || (e->index < w->durable_chain && w->chain_held >= og->min_durable)) {
    if (q->call) reply_write(q->call, e->version, e->index, e->offset);
    return 1;
  }
  if (w->ww_len == ND_WRITES_INFLIGHT_MAX) return -EAGAIN;
  /* waiting writers stay in index order: the answers pop a prefix */
  uint32_t k = w->ww_len;
  while (k > 0 && w->ww[(w->ww_head + k - 1) % ND_WRITES_INFLIGHT_MAX].index > e->index) {
    w->ww[(w->ww_head + k) % ND_WRITES_INFLIGHT_MAX] =
        w->ww[(w->ww_head + k - 1) % ND_WRITES_INFLIGHT_MAX];
    k--;
  }
  w->ww[(w->ww_head + k) % ND_WRITES_INFLIGHT_MAX] =
      (nd_wwait_t){.call = q->call, .index = e->index, .offset = e->offset,
                   .arrived_ns = q->arrived_ns, .retry = true};
  w->ww_len++;
  return 0;
}

/* Orders q's change into the log taking changes for its file and parks its
 * call until the change is acknowledged. 0; 1: a change held already,
 * answered at once; -EAGAIN: no room now (the log, its outbox or its
 * waiting calls), q untouched; else the call was finished with the error. */
static int order_write(nd_origin_t *og, const nd_wqueued_t *q) {
  const nd_dedup_ent_t *known = nd_dedup_get(&og->dedup, q->client_id, q->client_seq);
  if (known) return known_write(og, q, known);
  nd_wlog_t *w;
  int rc = nd_wlog_get(og, q->name, 0, &w);
  if (rc == -EBUSY) return -EAGAIN; /* every log slot in use: a merge ends soon */
  if (rc) {
    if (q->call) rpc_call_finish(q->call, rpc_code_from_errno(rc), fd_strerror(rc));
    return rc;
  }
  uint64_t offset = q->append ? w->size : q->offset;
  if (offset > FD_FILE_SIZE_MAX - q->len) {
    if (q->call) rpc_call_finish(q->call, RPC_OUT_OF_RANGE, "past the largest file");
    return -EFBIG;
  }
  if (w->ww_len == ND_WRITES_INFLIGHT_MAX) return -EAGAIN;
  nd_orec_t r = {.index = w->next, .offset = offset, .client_id = q->client_id,
                 .client_seq = q->client_seq, .len = q->len, .epoch = og->epoch};
  rc = nd_wlog_put(w, &r, q->data);
  if (rc == -EAGAIN) return rc;
  if (rc) {
    if (q->call) rpc_call_finish(q->call, rpc_code_from_errno(rc), fd_strerror(rc));
    return rc;
  }
  /* Ordered: from here on it is acknowledged, or its outcome unknown. */
  w->ww[(w->ww_head + w->ww_len) % ND_WRITES_INFLIGHT_MAX] =
      (nd_wwait_t){.call = q->call, .index = r.index, .offset = offset,
                   .arrived_ns = q->arrived_ns};
  w->ww_len++;
  return 0;
}

static void queued_gone(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)code;
  (void)msg;
  nd_origin_t *og = arg;
  for (nd_wqueued_t *q = og->queued; q; q = q->next)
    if (q->call == call) q->call = NULL; /* never ordered: dropped when its turn comes */
}

/* Orders what waits, in arrival order, as far as there is room. */
static void drain_queued(nd_origin_t *og) {
  static const rpc_call_cbs_t cbs = {NULL, NULL, NULL, wait_gone};
  while (og->queued) {
    nd_wqueued_t *q = og->queued;
    int rc = q->call ? order_write(og, q) : 0;
    if (rc == -EAGAIN) return;
    if (rc == 1) rc = -1; /* answered: nothing waits */
    if (!rc && q->call) rpc_call_set_cbs(q->call, &cbs, og);
    og->queued = q->next;
    if (!og->queued) og->queued_tail = NULL;
    og->queued_n--;
    og->queued_bytes -= q->len;
    free(q);
  }
}

static int h_write(rpc_call_t *call, const Origin__WriteRequest *req, void *ctx) {
  nd_origin_t *og = ctx;
  int rc = refuse(og, call, req->name);
  if (rc != 1) return rc;
  if (req->data.len == 0 || req->data.len > FD_WRITE_BYTES_MAX)
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "a change holds 1 byte to 1 MiB");
  if (!req->append && req->offset > FD_FILE_SIZE_MAX - req->data.len)
    return rpc_call_finish(call, RPC_OUT_OF_RANGE, "past the largest file");
  if (og->queued_n == ND_WRITES_QUEUED_MAX ||
      og->queued_bytes + req->data.len > ND_WRITES_QUEUED_BYTES)
    return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "the head is full: try again");
  /* Every change goes through the queue, so changes are ordered as they
   * arrived even when one had to wait for room. */
  nd_wqueued_t *q = malloc(sizeof(*q) + req->data.len);
  if (!q) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
  *q = (nd_wqueued_t){.call = call, .offset = req->offset, .append = req->append,
                      .client_id = req->client_id, .client_seq = req->client_seq,
                      .len = (uint32_t)req->data.len, .arrived_ns = fd_now_ns()};
  snprintf(q->name, sizeof(q->name), "%s", req->name);
  memcpy(q->data, req->data.data, req->data.len);
  if (og->queued_tail) og->queued_tail->next = q;
  else og->queued = q;
  og->queued_tail = q;
  og->queued_n++;
  og->queued_bytes += q->len;
  static const rpc_call_cbs_t cbs = {NULL, NULL, NULL, queued_gone};
  rpc_call_set_cbs(call, &cbs, og);
  drain_queued(og);
  return 0;
}

void nd_writes_stop(nd_origin_t *og) {
  while (og->queued) {
    nd_wqueued_t *q = og->queued;
    og->queued = q->next;
    if (q->call) rpc_call_finish(q->call, RPC_UNAVAILABLE, "stopping: the change was not ordered");
    free(q);
  }
  og->queued_tail = NULL;
  og->queued_n = 0;
  og->queued_bytes = 0;
}

/* ---- Bump ------------------------------------------------------------------------ */

/* Closes w with its bump record. -EBUSY: the file's previous merge is not
 * finished (at most two logs per file: one merging, one taking changes). */
static int order_bump(nd_wlog_t *w) {
  nd_origin_t *og = w->og;
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *o = &og->wlogs[i];
    if (o != w && o->used && o->closed && !strcmp(o->name, w->name)) return -EBUSY;
  }
  nd_orec_t r = {.index = w->next, .bump = true, .created_s = (uint64_t)time(NULL),
                 .chunk_size = w->chunk_size, .epoch = og->epoch};
  int rc = nd_wlog_put(w, &r, NULL);
  if (rc) return rc;
  fd_log_info("%s v%" PRIu64 ": bump after %" PRIu64 " change(s), %" PRIu64 " byte(s)", w->name,
              w->version, w->changes, w->bytes);
  return 0;
}

static void bump_gone(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)code;
  (void)msg;
  nd_origin_t *og = arg;
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++)
    for (uint32_t k = 0; k < og->wlogs[i].bump_calls_n; k++)
      if (og->wlogs[i].bump_calls[k] == call) og->wlogs[i].bump_calls[k] = NULL;
}

static int h_bump(rpc_call_t *call, const Origin__BumpRequest *req, void *ctx) {
  nd_origin_t *og = ctx;
  int rc = refuse(og, call, req->name);
  if (rc != 1) return rc;
  nd_wlog_t *w = nd_wlog_find(og, req->name, 0);
  if (!w || (!w->changes && !w->closed)) {
    Origin__BumpReply r = ORIGIN__BUMP_REPLY__INIT; /* nothing to merge: the newest stands */
    r.version = nd_newest_complete(og->p, req->name);
    rc = rpc_call_send(call, &r.base);
    return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
  }
  if (w->bump_calls_n == ND_BUMP_WAITERS_MAX)
    return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "too many bumps waiting");
  w->bump_calls[w->bump_calls_n++] = call;
  static const rpc_call_cbs_t cbs = {NULL, NULL, NULL, bump_gone};
  rpc_call_set_cbs(call, &cbs, og);
  if (!w->closed) w->bump_wanted = true; /* the tick orders it (the previous merge may run) */
  return 0;
}

/* ---- the head's tick -------------------------------------------------------------- */

void nd_writes_tick(nd_origin_t *og) {
  if (!nd_group_orders(og)) return; /* a head without its election orders nothing */
  drain_queued(og);
  uint64_t now = fd_now_ms();
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    if (!w->used || w->closed || !w->changes) continue;
    bool due = w->bump_wanted || (og->bump_changes && w->changes >= og->bump_changes) ||
               (og->bump_bytes && w->bytes >= og->bump_bytes) ||
               (og->bump_interval_ms && now - w->began_ms >= og->bump_interval_ms);
    if (!due) continue;
    int rc = order_bump(w);
    if (rc == 0) w->bump_wanted = false;
    else if (rc != -EBUSY && rc != -EAGAIN)
      fd_log_error("%s v%" PRIu64 ": bump: %s", w->name, w->version, fd_strerror(rc));
  }
}

int nd_writes_register(nd_origin_t *og) {
  int rc;
  if ((rc = rpc_serve_origin_write(og->e, h_write, og)) ||
      (rc = rpc_serve_origin_bump(og->e, h_bump, og)))
    return rc;
  return 0;
}
