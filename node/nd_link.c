/*
 * nd_link.c — role origin: the changes' chain. Each origin keeps one link
 * to the next origin of the chain that answers, and sends it every record
 * its logs order, in index order, as AppendChanges batches (several in
 * flight; a bump record travels alone, since its answer waits for the
 * merge). The next origin appends them to its own log and outbox, sends
 * them on to its own next, and answers once they are durable there and on
 * every origin after it, naming those origins; that answer is what moves
 * this origin's durable_chain.
 *
 * An origin that fails a batch or cannot be reached is left out: the link
 * moves to the one after it (and tries the left-out one again after
 * ND_LINK_RETRY_MS). A new next origin is first asked where each log stands
 * (LogState) and sent what it lacks from the outbox. With no next origin
 * left, durability is this origin's own. How many origins hold the changes
 * is what the head checks against min_durable_origins.
 *
 * Also here: the receiving side (AppendChanges, LogState).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_origin_int.h"

/* ---- the receiving side ----------------------------------------------------------- */

static void cw_gone(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)code;
  (void)msg;
  nd_wlog_t *w = arg;
  for (uint32_t k = 0; k < w->cw_len; k++) {
    nd_cwait_t *cw = &w->cw[(w->cw_head + k) % ND_CHANGE_CALLS_MAX];
    if (cw->call == call) cw->call = NULL;
  }
}

/* A batch of a log this origin merged already (sent again after the chain
 * changed, or to an origin that got the version by a catch-up copy): held,
 * and a bump is answered with the digest of the version it holds. */
static int answer_merged(nd_origin_t *og, rpc_call_t *call, const Origin__ChangeBatch *b) {
  Origin__ChangeAck a = ORIGIN__CHANGE_ACK__INIT;
  char *ids[1] = {og->id};
  a.durable = b->changes[b->n_changes - 1]->index + 1;
  a.n_origins = 1;
  a.origins = ids;
  uint8_t digest[FD_SHA256_LEN];
  Origin__MergedDigest md = ORIGIN__MERGED_DIGEST__INIT, *mp[1] = {&md};
  if (b->changes[b->n_changes - 1]->bump) {
    nd_ver_t *v;
    int rc = nd_ver_open(og->p, b->name, b->version, &v);
    if (!rc) rc = st_manifest_digest(v->m, digest);
    if (rc) return rpc_call_finish(call, rpc_code_from_errno(rc), "the merged version");
    md.origin = og->id;
    md.digest.data = digest;
    md.digest.len = FD_SHA256_LEN;
    a.n_merged = 1;
    a.merged = mp;
  }
  int rc = rpc_call_send(call, &a.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static int h_append_changes(rpc_call_t *call, const Origin__ChangeBatch *b, void *ctx) {
  nd_origin_t *og = ctx;
  char msg[160];
  if (!b->name || !st_name_valid(b->name) || !b->n_changes)
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "a batch names a file and holds changes");
  if (og->failed)
    return rpc_call_finish(call, RPC_UNAVAILABLE, "this origin's changelog failed (disk error)");
  if (!nd_group_chain_ok(og, b->epoch, call, "AppendChanges")) return 0;
  if (og->leads) /* a head takes changes from writers only */
    return rpc_call_finish(call, RPC_FAILED_PRECONDITION, "this origin is the head");
  nd_wlog_t *w;
  if (b->version && b->version <= nd_newest_complete(og->p, b->name)) {
    /* A log open here for a version a catch-up copied whole is superseded. */
    nd_wlog_t *old = nd_wlog_find(og, b->name, b->version);
    if (old && !old->closed && !old->cw_len && !nd_link_refers(&og->link, old)) {
      fd_log_info("%s v%" PRIu64 ": the log is superseded by the complete version", b->name,
                  b->version);
      nd_wlog_retire_merged(old); /* the complete version replaces it */
    } else if (old) {
      nd_writes_retire(old); /* merged here: done with, once nothing waits on it */
    }
    return answer_merged(og, call, b);
  }
  int rc = nd_wlog_get(og, b->name, b->version, &w);
  if (rc == -ESTALE) {
    snprintf(msg, sizeof(msg), "behind: newest complete v%" PRIu64 ", asked for the log of v%" PRIu64,
             nd_newest_complete(og->p, b->name), b->version);
    return rpc_call_finish(call, RPC_FAILED_PRECONDITION, msg);
  }
  if (rc) return rpc_call_finish(call, rpc_code_from_errno(rc), fd_strerror(rc));
  if (w->cw_len == ND_CHANGE_CALLS_MAX)
    return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "too many batches in flight");
  uint64_t end = w->next;
  bool bump = false;
  for (size_t i = 0; i < b->n_changes; i++) {
    const Origin__Change *c = b->changes[i];
    if (c->index < w->next) { /* sent again after a link change: held already */
      end = FD_MAX(end, c->index + 1);
      bump |= c->bump; /* its answer still waits for the merge and carries the digest */
      continue;
    }
    if (c->index > w->next && !w->closed) { /* an earlier batch was not taken: no room */
      snprintf(msg, sizeof(msg), "change %" PRIu64 " ahead: the log expects %" PRIu64, c->index,
               w->next);
      return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, msg);
    }
    if (c->index != w->next || w->closed || c->data.len > FD_WRITE_BYTES_MAX ||
        (!c->bump && !c->data.len)) {
      snprintf(msg, sizeof(msg), "change %" PRIu64 " out of order: the log expects %" PRIu64,
               c->index, w->next);
      return rpc_call_finish(call, RPC_FAILED_PRECONDITION, msg);
    }
    nd_orec_t r = {.index = c->index, .offset = c->offset, .client_id = c->client_id,
                   .client_seq = c->client_seq, .len = (uint32_t)c->data.len, .bump = c->bump,
                   .created_s = c->created_unix_s, .chunk_size = c->chunk_size,
                   .epoch = c->epoch};
    rc = nd_wlog_put(w, &r, c->data.data);
    if (rc == -EAGAIN) /* what was taken stays; the sender tries again from there */
      return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "the changelog is full");
    if (rc) return rpc_call_finish(call, rpc_code_from_errno(rc), fd_strerror(rc));
    end = c->index + 1;
    bump |= c->bump;
  }
  w->cw[(w->cw_head + w->cw_len) % ND_CHANGE_CALLS_MAX] =
      (nd_cwait_t){.call = call, .end = end, .bump = bump};
  w->cw_len++;
  static const rpc_call_cbs_t cbs = {NULL, NULL, NULL, cw_gone};
  rpc_call_set_cbs(call, &cbs, w);
  nd_writes_progress(w); /* a batch held already is answered at once */
  return 0;
}

static int h_log_state(rpc_call_t *call, const Origin__LogStateRequest *req, void *ctx) {
  nd_origin_t *og = ctx;
  if (!req->name || !st_name_valid(req->name))
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "name");
  if (!nd_group_chain_ok(og, req->epoch, call, "LogState")) return 0;
  if (req->drop_version) {
    nd_wlog_t *d = nd_wlog_find(og, req->name, req->drop_version);
    if (d && (d->closed || d->cw_len || nd_link_refers(&og->link, d) || og->leads))
      return rpc_call_finish(call, RPC_FAILED_PRECONDITION,
                             "the log to drop is closed or in use here");
    if (d) {
      fd_log_warn("%s v%" PRIu64 ": dropping this origin's log (%" PRIu64
                  " records): the origin before holds fewer, so the rest were ordered by a "
                  "deposed head and never acknowledged; it sends its own again",
                  req->name, d->version, d->next);
      nd_wlog_retire_merged(d);
    }
  }
  Origin__LogStateReply r = ORIGIN__LOG_STATE_REPLY__INIT;
  r.newest_complete = nd_newest_complete(og->p, req->name);
  const nd_wlog_t *w = nd_wlog_newest(og, req->name);
  if (w) {
    r.version = w->version;
    r.next_index = w->durable_local; /* what it holds durably: a sender may count on it */
    r.last_epoch = w->last_epoch;
    r.taken_index = w->next;
  }
  int rc = rpc_call_send(call, &r.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

int nd_link_register(nd_origin_t *og) {
  int rc;
  if ((rc = rpc_serve_origin_append_changes(og->e, h_append_changes, og)) ||
      (rc = rpc_serve_origin_log_state(og->e, h_log_state, og)))
    return rc;
  return 0;
}

/* ---- the sending side ----------------------------------------------------------------- */

bool nd_link_refers(const nd_link_t *l, const nd_wlog_t *w) {
  for (uint32_t k = 0; k < ND_LINK_BATCHES_MAX; k++)
    if (l->batches[k].used && l->batches[k].w == w) return true;
  return false;
}

uint32_t nd_link_live(const nd_origin_t *og) {
  return 1 + (og->link.state == ND_LINK_LIVE ? og->link.held_n : 0);
}

/* Every record not acknowledged goes again to whoever is next, and a bump's
 * answer (the digests merged after this origin) is awaited from it anew. */
static void resend_all(nd_origin_t *og) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    if (!w->used) continue;
    w->sent = w->rec_head;
    w->chain_merged = false;
    w->bump_resent = false;
    w->merged_n = 0;
  }
}

/* A file's logs go down the chain in version order: the next origin opens
 * v<N+1>'s log only once it holds v<N>'s bump. */
static bool older_unsent(const nd_origin_t *og, const nd_wlog_t *w) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    const nd_wlog_t *o = &og->wlogs[i];
    if (o->used && o->version < w->version && o->sent < o->rec_tail && !strcmp(o->name, w->name))
      return true;
  }
  return false;
}

static void batch_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_batch_t *b = arg;
  nd_link_t *l = b->l;
  bool acked = b->acked;
  b->used = false;
  b->call = NULL;
  l->inflight--;
  if (l->stopping) return;
  if (code == RPC_OK && acked) {
    nd_writes_retire(b->w);
    return;
  }
  const char *exp = msg ? strstr(msg, "the log expects ") : NULL;
  uint64_t expects = exp ? strtoull(exp + 16, NULL, 10) : UINT64_MAX;
  if (code == RPC_RESOURCE_EXHAUSTED && l->state != ND_LINK_DOWN &&
      expects < (b->backfill ? l->bf_from : b->w->rec_head)) {
    /* Its log went back behind what this origin can still send it (another
     * origin had it drop its log: the chain's order moved under the
     * catch-up): compare again, from LogState. */
    char why[200];
    snprintf(why, sizeof(why), "AppendChanges %s: %s", b->w->name, msg);
    nd_link_fail(l, why);
    nd_link_forgive(l->og);
    return;
  }
  if (code == RPC_RESOURCE_EXHAUSTED && l->state != ND_LINK_DOWN) {
    /* The next origin took a prefix and had no room for the rest (or for
     * a batch after one it could not take): that part goes again, after a
     * pause. Records it holds already are skipped there. */
    if (b->backfill) nd_catchup_rewind(l, b->start, b->bf_pos);
    else b->w->sent = FD_MAX(b->w->rec_head, FD_MIN(b->w->sent, b->start));
    l->pause_until_ms = fd_now_ms() + ND_LINK_PAUSE_MS;
    return;
  }
  char why[200];
  snprintf(why, sizeof(why), "AppendChanges %s: %s %s", b->w->name, rpc_code_name(code),
           msg ? msg : "");
  nd_link_fail(l, why); /* every log is sent again: none is retired now */
}

static void batch_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_batch_t *b = arg;
  nd_link_t *l = b->l;
  if (m->descriptor != &origin__change_ack__descriptor) return;
  const Origin__ChangeAck *a = (const Origin__ChangeAck *)m;
  b->acked = true;
  l->held_n = 0;
  for (size_t i = 0; i < a->n_origins && l->held_n < ND_ORIGINS_MAX; i++)
    snprintf(l->held[l->held_n++], sizeof(l->held[0]), "%s", a->origins[i]);
  nd_wlog_t *w = b->w;
  if (b->bump) {
    w->merged_n = 0;
    for (size_t i = 0; i < a->n_merged && w->merged_n < ND_ORIGINS_MAX; i++) {
      const Origin__MergedDigest *d = a->merged[i];
      if (!d->origin || d->digest.len != FD_SHA256_LEN) continue;
      snprintf(w->merged_origin[w->merged_n], sizeof(w->merged_origin[0]), "%s", d->origin);
      memcpy(w->merged_digest[w->merged_n], d->digest.data, FD_SHA256_LEN);
      w->merged_n++;
    }
    w->chain_merged = true;
  }
  if (l->state == ND_LINK_LIVE || (b->backfill && l->state == ND_LINK_CATCHUP))
    nd_wlog_acked(w, a->durable, 1 + (uint32_t)a->n_origins);
  if (b->bump) nd_merge_chain_answered(w);
}

int nd_link_send(nd_link_t *l, nd_wlog_t *w, Origin__Change **cs, uint32_t n, bool bump,
                 bool backfill) {
  nd_batch_t *b = NULL;
  for (uint32_t k = 0; k < ND_LINK_BATCHES_MAX && !b; k++)
    if (!l->batches[k].used) b = &l->batches[k];
  if (!b) return -EAGAIN;
  Origin__ChangeBatch req = ORIGIN__CHANGE_BATCH__INIT;
  req.name = w->name;
  req.version = w->version;
  req.epoch = l->og->epoch; /* fencing (nd_group.c) */
  req.n_changes = n;
  req.changes = cs;
  *b = (nd_batch_t){.used = true, .l = l, .w = w, .start = cs[0]->index,
                    .end = cs[n - 1]->index + 1, .bump = bump, .backfill = backfill,
                    .bf_pos = l->bf_pos};
  static const rpc_call_cbs_t cbs = {batch_msg, NULL, NULL, batch_done};
  /* a bump's answer waits for every origin's merge */
  uint32_t timeout = bump ? ND_MERGE_TIMEOUT_MS : ND_CHANGES_CALL_MS;
  b->call = rpc_start_origin_append_changes(l->conn, &req, timeout, &cbs, b);
  if (!b->call) {
    b->used = false;
    return errno == EAGAIN ? -EAGAIN : -(errno ? errno : EIO);
  }
  l->inflight++;
  return 0;
}

/* Sends what the outbox holds beyond `sent`, in batches. */
static void send_batches(nd_link_t *l) {
  nd_origin_t *og = l->og;
  if (fd_now_ms() < l->pause_until_ms) return;
  for (uint32_t i = 0; i < ND_WLOGS_MAX && l->inflight < ND_LINK_BATCHES_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    if (!w->used || older_unsent(og, w)) continue;
    if (w->closed && w->sent == w->rec_tail && w->rec_head == w->rec_tail && !w->chain_merged &&
        !w->bump_resent && w->merge == ND_MERGE_DONE) {
      /* Merged here, and its records left the outbox while no origin was
       * next: the new next answers its bump record alone with its digest
       * (it has the version, copied by the catch-up, or merges it). */
      Origin__Change c = ORIGIN__CHANGE__INIT, *cp = &c;
      c.index = w->bump_index;
      c.bump = true;
      c.created_unix_s = w->created_s;
      c.chunk_size = w->chunk_size;
      int rc = nd_link_send(l, w, &cp, 1, true, false);
      if (rc == -EAGAIN) return;
      if (rc) {
        nd_link_fail(l, "cannot start AppendChanges");
        return;
      }
      w->bump_resent = true;
      continue;
    }
    while (w->sent < w->rec_tail && l->inflight < ND_LINK_BATCHES_MAX) {
      Origin__Change cs[ND_CHANGE_BATCH_MAX], *cp[ND_CHANGE_BATCH_MAX];
      uint32_t n = 0;
      uint64_t bytes = 0;
      bool bump = false;
      for (uint64_t k = w->sent; k < w->rec_tail && n < ND_CHANGE_BATCH_MAX; k++) {
        const nd_orec_t *r = &w->rec[k % ND_OUTBOX_RECORDS];
        if (r->bump && n) break; /* a bump travels alone: its answer waits for the merge */
        if (n && bytes + r->len > ND_CHANGE_BATCH_BYTES) break;
        Origin__Change *c = &cs[n];
        origin__change__init(c);
        c->index = r->index;
        c->offset = r->offset;
        c->data.data = (uint8_t *)nd_wlog_data(w, r);
        c->data.len = r->len;
        c->bump = r->bump;
        c->client_id = r->client_id;
        c->client_seq = r->client_seq;
        c->created_unix_s = r->created_s;
        c->chunk_size = r->chunk_size;
        c->epoch = r->epoch;
        cp[n++] = c;
        bytes += r->len;
        if (r->bump) {
          bump = true;
          break;
        }
      }
      int rc = nd_link_send(l, w, cp, n, bump, false);
      if (rc == -EAGAIN) return; /* the connection's window is full: the tick tries again */
      if (rc) {
        nd_link_fail(l, "cannot start AppendChanges");
        return;
      }
      w->sent += n;
    }
  }
}

/* ---- the link's life -------------------------------------------------------------------- */

static void link_ready(rpc_conn_t *conn, void *arg) {
  nd_link_t *l = arg;
  if (l->conn != conn) return;
  l->state = ND_LINK_CATCHUP;
  nd_catchup_begin(l);
}

static void link_closed(rpc_conn_t *conn, int err, void *arg) {
  nd_link_t *l = arg;
  if (l->conn != conn) return;
  l->conn = NULL;
  if (!l->stopping) nd_link_fail(l, err ? fd_strerror(err) : "connection closed");
}

void nd_link_live_now(nd_link_t *l) {
  nd_origin_t *og = l->og;
  l->state = ND_LINK_LIVE;
  l->caught_up_once = true;
  /* It holds what it takes; its first answer names those after it too. */
  l->held_n = 1;
  snprintf(l->held[0], sizeof(l->held[0]), "%s", og->origins->o[l->to].id);
  og->has_next = true;
  l->probe_at_ms = fd_now_ms() + ND_LINK_RETRY_MS;
  fd_log_info("origin %s is up to date: changes go on to it", og->origins->o[l->to].id);
}

/* Down, without leaving anyone out (a switch to an earlier origin). */
static void link_reset(nd_link_t *l) {
  nd_origin_t *og = l->og;
  nd_catchup_end(l);
  rpc_conn_t *c = l->conn;
  l->conn = NULL;
  l->state = ND_LINK_DOWN;
  if (c) rpc_conn_close(c); /* ends the batches and catch-up calls in flight */
  l->held_n = 0;
  og->has_next = false;
  l->to = UINT32_MAX;
  resend_all(og);
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++)
    if (og->wlogs[i].used) {
      nd_wlog_alone(&og->wlogs[i]);
      nd_writes_progress(&og->wlogs[i]);
    }
}

void nd_link_rechain(nd_origin_t *og) {
  nd_link_t *l = &og->link;
  if (l->stopping) return;
  if (l->probe) {
    rpc_conn_t *p = l->probe;
    l->probe = NULL;
    rpc_conn_close(p);
  }
  link_reset(l);
}

void nd_link_forgive(nd_origin_t *og) {
  memset(og->link.skip_until_ms, 0, sizeof(og->link.skip_until_ms));
  og->link.retry_at_ms = 0;
}

/* The next origin failed: leave it out for a while, try the one after it. */
void nd_link_fail(nd_link_t *l, const char *why) {
  const nd_origins_t *os = l->og->origins;
  if (l->to < os->n) {
    fd_log_warn("origin %s left out of the changes' chain: %s", os->o[l->to].id, why);
    l->skip_until_ms[l->to] = fd_now_ms() + ND_LINK_RETRY_MS;
  }
  link_reset(l);
}

static void probe_ready(rpc_conn_t *conn, void *arg) {
  nd_link_t *l = arg;
  if (l->probe != conn) return;
  l->probe = NULL;
  rpc_conn_close(conn);
  if (l->state != ND_LINK_LIVE || l->probe_to >= l->to) return;
  fd_log_info("origin %s is back: the chain goes through it again",
              l->og->origins->o[l->probe_to].id);
  link_reset(l); /* the next tick connects to it */
}

static void probe_closed(rpc_conn_t *conn, int err, void *arg) {
  (void)err;
  nd_link_t *l = arg;
  if (l->probe != conn) return;
  l->probe = NULL;
  l->skip_until_ms[l->probe_to] = fd_now_ms() + ND_LINK_RETRY_MS;
}

/* The first origin after this one that is not left out, or UINT32_MAX. */
static uint32_t next_origin(const nd_link_t *l, uint64_t now) {
  const nd_origins_t *os = l->og->origins;
  for (uint32_t i = (uint32_t)os->self + 1; i < os->n; i++)
    if (os->o[i].port && now >= l->skip_until_ms[i]) return i;
  return UINT32_MAX;
}

uint32_t nd_link_reachable(const nd_origin_t *og) {
  const nd_link_t *l = &og->link;
  switch (l->state) {
    case ND_LINK_LIVE: return nd_link_live(og);
    case ND_LINK_CONNECTING:
    case ND_LINK_CATCHUP: return 2;
    default: return next_origin(l, fd_now_ms()) != UINT32_MAX ? 2 : 1;
  }
}

void nd_link_tick(nd_origin_t *og) {
  nd_link_t *l = &og->link;
  if (l->stopping) return;
  if (og->zk && !og->epoch_known) return; /* the chain's order is not known yet */
  uint64_t now = fd_now_ms();
  if (l->state == ND_LINK_DOWN) {
    uint32_t to = next_origin(l, now);
    if (to == UINT32_MAX || now < l->retry_at_ms) return;
    static const rpc_conn_cbs_t cbs = {link_ready, link_closed};
    const nd_peer_t *o = &og->origins->o[to];
    l->to = to;
    l->retry_at_ms = now + ND_RETRY_MS;
    l->conn = rpc_connect(og->e, o->addr, o->port, &cbs, l);
    if (l->conn) l->state = ND_LINK_CONNECTING;
    return;
  }
  if (l->state != ND_LINK_DOWN && (int64_t)l->to <= og->origins->self) {
    /* The next is always after this origin in the order; a link that names
     * an earlier one (or itself) would close the chain into a cycle. */
    fd_log_warn("origin link: its next (index %u) is not after this origin (%d): starting again",
                l->to, og->origins->self);
    link_reset(l);
    return;
  }
  if (l->state == ND_LINK_CATCHUP) {
    nd_catchup_tick(l);
    return;
  }
  if (l->state != ND_LINK_LIVE) return;
  send_batches(l);
  /* An earlier origin of the chain that was left out may be back: once a
   * probe connection to it succeeds, the chain goes through it again (it is
   * brought up to date first). */
  if (now >= l->probe_at_ms && !l->probe) {
    l->probe_at_ms = now + ND_LINK_RETRY_MS;
    uint32_t first = next_origin(l, now);
    if (first < l->to) {
      static const rpc_conn_cbs_t cbs = {probe_ready, probe_closed};
      l->probe_to = first;
      l->probe = rpc_connect(og->e, og->origins->o[first].addr, og->origins->o[first].port, &cbs, l);
    }
  }
}
