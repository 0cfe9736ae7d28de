/*
 * nd_dl.c — role node: one download per file, each carrying out the newest
 * order for its file (nd_dl.h).
 *
 * For an order naming a version newer than the one in hand: fetch the
 * manifest (GetManifest from a stripe's parent, trying each parent in turn),
 * check it is the one the order names (SHA-256 digest) and that the trusted
 * admin key signed it (storage rejects it otherwise: logged, reported to
 * fdsched, never stored), reuse local chunks (the delta), then fetch every
 * stripe (nd_stripe.c). An order that changes a stripe's parent cancels
 * that stream and resumes from the new parent. With every chunk durable the
 * version completes, `current` switches, GC runs, and the next heartbeat
 * reports it. A pending version (its publish still under way) is fetched
 * and verified but made current only once an order says it is committed; an
 * aborted one is dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_dl_int.h"

nd_dls_t *nd_dls_create(nd_plane_t *p, rpc_engine_t *e, nd_sched_t *sched) {
  nd_dls_t *all = calloc(1, sizeof(*all));
  if (!all) return NULL;
  all->p = p;
  all->e = e;
  all->sched = sched;
  for (uint32_t k = 0; k < ND_FILES_MAX; k++) all->dl[k].all = all;
  return all;
}

void nd_dls_destroy(nd_dls_t *all) { free(all); }

/* Lets go of everything in flight (streams, manifest call, the version). */
static void dl_abandon(nd_dl_t *d) {
  for (uint32_t i = 0; i < d->stripes_n; i++) nd_stripe_drop(&d->s[i]);
  if (d->mcall) rpc_call_cancel(d->mcall);
  rpc_conn_t *mc = d->mconn;
  d->mconn = NULL;
  if (mc) rpc_conn_close(mc);
  if (d->ver) {
    nd_ver_put(d->ver);
    d->ver = NULL;
  }
  d->state = ND_DL_IDLE;
}

void nd_dls_stop(nd_dls_t *all) {
  for (uint32_t k = 0; k < ND_FILES_MAX; k++)
    if (all->dl[k].used) dl_abandon(&all->dl[k]);
}

static bool dl_busy(const nd_dl_t *d) {
  for (uint32_t i = 0; i < FD_STRIPES_MAX; i++)
    if (d->s[i].sink.puts) return true;
  return false;
}

static nd_dl_t *dl_find(nd_dls_t *all, const char *name) {
  for (uint32_t k = 0; k < ND_FILES_MAX; k++)
    if (all->dl[k].used && !strcmp(all->dl[k].name, name)) return &all->dl[k];
  return NULL;
}

/* The download of name: its own, else a free one, else the least recently
 * ordered one that is idle, done or failed and has nothing in storage. */
static nd_dl_t *dl_for(nd_dls_t *all, const char *name) {
  nd_dl_t *d = dl_find(all, name);
  if (d) return d;
  nd_dl_t *free_dl = NULL, *old = NULL;
  for (uint32_t k = 0; k < ND_FILES_MAX; k++) {
    d = &all->dl[k];
    if (!d->used) {
      if (!free_dl) free_dl = d;
      continue;
    }
    bool settled = d->state == ND_DL_IDLE || d->state == ND_DL_DONE || d->state == ND_DL_FAILED;
    if (settled && !dl_busy(d) && (!old || d->ordered_ms < old->ordered_ms)) old = d;
  }
  d = free_dl ? free_dl : old;
  if (!d) return NULL;
  if (d->used) {
    fd_log_info("%s: its download slot goes to %s", d->name, name);
    dl_abandon(d);
  }
  d->used = true;
  d->state = ND_DL_IDLE;
  snprintf(d->name, sizeof(d->name), "%s", name);
  return d;
}

/* The publish of the version being fetched failed: drop it. Its partial
 * stays on disk until a new manifest of that number replaces it. */
static void dl_aborted(nd_dl_t *d) {
  fd_log_warn("%s v%" PRIu64 ": its publish was aborted; dropped", d->name, d->version);
  dl_abandon(d);
  nd_ver_abort(d->all->p, d->name, d->version);
}

/* True when the order names the same manifest as the download (or either
 * does not say). */
static bool same_manifest(const nd_dl_t *d, const Sched__Order *o) {
  return !d->has_digest || o->manifest_sha256.len != FD_SHA256_LEN ||
         !memcmp(d->digest, o->manifest_sha256.data, FD_SHA256_LEN);
}

/* The same version again: commit news, and new parents for some stripes. */
static void dl_reorder(nd_dl_t *d, const Sched__Order *o, bool pending) {
  if (d->state == ND_DL_DONE || d->state == ND_DL_FAILED) return;
  if (d->pending && !pending)
    fd_log_info("%s v%" PRIu64 " committed by the origins", d->name, d->version);
  d->pending = pending;
  for (size_t k = 0; k < o->n_stripes; k++) {
    const Sched__StripeOrder *so = o->stripes[k];
    if (so->stripe >= d->stripes_n) continue;
    nd_stripe_t *s = &d->s[so->stripe];
    if (nd_stripe_same_parent(s, so)) continue;
    fd_log_info("%s v%" PRIu64 " stripe %u: re-parent %s -> %s", d->name, d->version, so->stripe,
                s->parent_id, so->parent_id);
    nd_stripe_drop(s);
    nd_stripe_set_parent(s, so);
  }
}

/* A version this node holds complete already: report it done. */
static void dl_held(nd_dl_t *d, uint64_t version) {
  dl_abandon(d);
  nd_ver_t *v;
  if (nd_ver_open(d->all->p, d->name, version, &v) != 0) return; /* asked again next order */
  d->version = version;
  d->chunk_count = v->m->chunk_count;
  d->stripes_n = 0;
  d->state = ND_DL_DONE;
}

static void dl_begin(nd_dl_t *d, const Sched__Order *o, bool pending) {
  uint32_t stripes = o->stripe_count ? o->stripe_count : (uint32_t)o->n_stripes;
  if (stripes == 0 || stripes > FD_STRIPES_MAX) {
    fd_log_warn("%s v%" PRIu64 ": an order for %u stripes ignored", d->name, o->version, stripes);
    return;
  }
  dl_abandon(d);
  d->version = o->version;
  d->has_digest = o->manifest_sha256.len == FD_SHA256_LEN;
  if (d->has_digest) memcpy(d->digest, o->manifest_sha256.data, FD_SHA256_LEN);
  d->stripes_n = stripes;
  for (uint32_t i = 0; i < FD_STRIPES_MAX; i++) nd_stripe_init(&d->s[i], d, i);
  for (size_t k = 0; k < o->n_stripes; k++)
    if (o->stripes[k]->stripe < d->stripes_n)
      nd_stripe_set_parent(&d->s[o->stripes[k]->stripe], o->stripes[k]);
  d->pending = pending;
  d->waiting_logged = false;
  d->state = ND_DL_MANIFEST;
  d->mtry = 0;
  d->retry_at_ms = 0;
  d->started_ms = fd_now_ms();
  char parents[FD_STRIPES_MAX * (FD_NAME_LEN_MAX + 8)];
  size_t pl = 0;
  parents[0] = 0;
  for (uint32_t i = 0; i < d->stripes_n && pl < sizeof(parents); i++)
    pl += (size_t)snprintf(parents + pl, sizeof(parents) - pl, " %u:%s", i, d->s[i].parent_id);
  fd_log_info("order: %s v%" PRIu64 " over %u stripes, parents%s", d->name, d->version,
              d->stripes_n, parents);
}

void nd_dls_order(nd_dls_t *all, const Sched__Order *o) {
  if (!o->name || !st_name_valid(o->name)) return;
  if (o->state == SCHED__VERSION_STATE__VERSION_ABORTED) {
    nd_dl_t *d = dl_find(all, o->name);
    bool undone = d && d->state != ND_DL_IDLE && d->state != ND_DL_DONE &&
                  d->state != ND_DL_FAILED;
    if (undone && o->version == d->version) dl_aborted(d);
    return;
  }
  if (o->n_stripes == 0 || o->n_stripes > FD_STRIPES_MAX) return;
  nd_dl_t *d = dl_for(all, o->name);
  if (!d) {
    uint64_t now = fd_now_ms();
    if (now - all->refused_logged_ms >= ND_COMMIT_RETRY_MS * 10) {
      fd_log_warn("%s: every download slot (%u) is busy; the order waits", o->name, ND_FILES_MAX);
      all->refused_logged_ms = now;
    }
    return; /* fdsched repeats its orders on heartbeats */
  }
  d->ordered_ms = fd_now_ms();
  bool undone = d->state != ND_DL_IDLE && d->state != ND_DL_DONE && d->state != ND_DL_FAILED;
  bool pending = o->state == SCHED__VERSION_STATE__VERSION_PENDING;
  if (d->state != ND_DL_IDLE) {
    if (o->version < d->version) {
      /* fdsched plans the newest version of a file it knows: an older one
       * means the pending one being fetched here was given up. */
      if (!undone || !d->pending) return;
      dl_aborted(d);
    } else if (o->version == d->version && !same_manifest(d, o)) {
      if (d->state == ND_DL_DONE) return; /* a complete version is never replaced */
      fd_log_warn("%s v%" PRIu64 ": a new manifest replaces the one being fetched", d->name,
                  d->version);
      dl_abandon(d);
    } else if (o->version == d->version) {
      dl_reorder(d, o, pending);
      return;
    }
  }
  uint64_t newest = nd_newest_complete(all->p, o->name);
  if (newest >= o->version) {
    if (d->state != ND_DL_DONE || d->version < o->version) dl_held(d, o->version);
    return;
  }
  dl_begin(d, o, pending);
}

/* ---- manifest ------------------------------------------------------------------ */

static void on_delta_done(void *arg, nd_ver_t *v, int res) {
  nd_dl_t *d = arg;
  if (res) fd_log_warn("%s v%" PRIu64 " delta: %s", v->name, v->version, fd_strerror(res));
  if (d->ver != v) return; /* the download moved on */
  fd_log_info("%s v%" PRIu64 ": reused %" PRIu64 " bytes locally in %.3f s, %u chunks still to "
              "fetch",
              d->name, d->version, v->bytes_reused,
              (double)(fd_now_ms() - d->started_ms) / 1000.0, st_version_missing(v->sv));
}

static void got_manifest(nd_dl_t *d, const uint8_t *buf, size_t len) {
  nd_plane_t *p = d->all->p;
  st_manifest_t *m;
  int rc = st_manifest_decode(buf, len, &m);
  if (rc == 0) {
    uint8_t dg[FD_SHA256_LEN];
    st_manifest_digest(m, dg);
    bool other = m->version != d->version || strcmp(m->name, d->name) ||
                 (d->has_digest && memcmp(dg, d->digest, FD_SHA256_LEN));
    st_manifest_free(m);
    if (other) { /* e.g. a parent still holding a failed publish of this number */
      fd_log_warn("%s v%" PRIu64 ": a parent served another manifest than the ordered one; "
                  "asking again", d->name, d->version);
      return; /* the call's end retries, from the next parent */
    }
  }
  nd_ver_t *v = NULL;
  if (rc == 0) rc = nd_ver_begin(p, buf, len, &v);
  if (fd_cert_is_trust_error(rc) || rc == -EBADMSG) {
    const char *why = rc == -EBADMSG ? "malformed" : fd_cert_trust_reason(rc);
    fd_log_error("%s v%" PRIu64 ": manifest rejected (%s): not stored, not fetched", d->name,
                 d->version, why);
    nd_reports_add(nd_sched_reports(d->all->sched), ND_REPORT_REJECTED, d->name, d->version, 0,
                   why);
    d->state = ND_DL_FAILED;
    return;
  }
  if (rc) {
    fd_log_warn("%s v%" PRIu64 ": begin: %s", d->name, d->version, fd_strerror(rc));
    d->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
    return;
  }
  nd_ver_get(v);
  d->ver = v;
  d->chunk_count = v->m->chunk_count;
  for (uint32_t i = 0; i < d->stripes_n; i++) {
    d->s[i].sink.ver = v;
    d->s[i].sink.forward = true;
  }
  if (v->complete || st_version_missing(v->sv) == 0 || v->delta_running) {
    d->state = ND_DL_FETCH;
    return;
  }
  /* The delta copies what this node holds while the stripes fetch the rest
   * (they leave out what it copies: nd_stripe.c), so a small update's time
   * is the longer of the two, not their sum. */
  d->state = ND_DL_FETCH;
  nd_ver_delta(p, v, on_delta_done, d);
}

static void on_manifest_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_dl_t *d = arg;
  if (m->descriptor != &node__get_manifest_reply__descriptor || d->state != ND_DL_MANIFEST) return;
  const Node__GetManifestReply *r = (const Node__GetManifestReply *)m;
  got_manifest(d, r->manifest.data, r->manifest.len);
}

static void on_manifest_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)msg;
  nd_dl_t *d = arg;
  d->mcall = NULL;
  rpc_conn_t *c = d->mconn;
  d->mconn = NULL;
  if (c) rpc_conn_close(c);
  if (d->state != ND_DL_MANIFEST) return;
  if (code != RPC_OK) fd_log_debug("%s GetManifest: %s", d->name, rpc_code_name(code));
  d->mtry++;
  /* NOT_FOUND: the parent is a hop behind and opens the version the moment
   * its own manifest arrives; asking again soon saves a retry period per
   * tree level. */
  d->retry_at_ms = fd_now_ms() + (code == RPC_NOT_FOUND ? ND_PARENT_WAIT_MS : ND_RETRY_MS);
}

static void mconn_ready(rpc_conn_t *conn, void *arg) {
  nd_dl_t *d = arg;
  if (d->mconn != conn) return;
  Node__GetManifestRequest req = NODE__GET_MANIFEST_REQUEST__INIT;
  req.name = d->name;
  req.version = d->version;
  rpc_call_cbs_t cbs = {on_manifest_msg, NULL, NULL, on_manifest_done};
  d->mcall = rpc_start_node_get_manifest(conn, &req, ND_MANIFEST_CALL_MS, &cbs, d);
  if (!d->mcall) d->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
}

static void mconn_closed(rpc_conn_t *conn, int err, void *arg) {
  (void)err;
  nd_dl_t *d = arg;
  if (d->mconn != conn) return;
  d->mconn = NULL;
  if (!d->mcall && d->state == ND_DL_MANIFEST) {
    d->mtry++;
    d->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
  }
}

/* ---- the loop turn -------------------------------------------------------------- */

static void on_dl_complete(void *arg, int res) {
  nd_dl_t *d = arg;
  if (d->state != ND_DL_COMPLETING) return;
  if (res) {
    d->state = ND_DL_FETCH; /* retried from the tick */
    return;
  }
  d->state = ND_DL_DONE;
  fd_log_info("%s v%" PRIu64 " done in %.3f s", d->name, d->version,
              (double)(fd_now_ms() - d->started_ms) / 1000.0);
  for (uint32_t i = 0; i < d->stripes_n; i++) nd_stripe_drop(&d->s[i]);
  if (d->ver) {
    nd_ver_put(d->ver);
    d->ver = NULL;
  }
  nd_sched_poke(d->all->sched);
}

static void tick_manifest(nd_dl_t *d, uint64_t now) {
  if (d->mconn || d->mcall || now < d->retry_at_ms || !d->stripes_n) return;
  nd_stripe_t *s = &d->s[d->mtry % d->stripes_n];
  for (uint32_t k = 0; k < d->stripes_n && !s->parent_port; k++)
    s = &d->s[++d->mtry % d->stripes_n]; /* a stripe fdsched gave a parent */
  if (!s->parent_port) return;           /* none yet: the next order */
  static const rpc_conn_cbs_t cbs = {mconn_ready, mconn_closed};
  d->mconn = rpc_connect(d->all->e, s->parent_addr, s->parent_port, &cbs, d);
  if (!d->mconn) {
    d->mtry++;
    d->retry_at_ms = now + ND_RETRY_MS;
  }
}

static void tick_fetch(nd_dl_t *d) {
  nd_plane_t *p = d->all->p;
  if (d->ver->complete) {
    d->state = ND_DL_COMPLETING;
    on_dl_complete(d, 0);
    return;
  }
  if (st_version_missing(d->ver->sv) != 0) {
    for (uint32_t i = 0; i < d->stripes_n; i++) nd_stripe_start(&d->s[i]);
    return;
  }
  if (dl_busy(d) || d->ver->delta_running) return; /* the delta's end, then complete */
  if (d->pending) { /* every chunk verified and written: current once committed */
    if (!d->waiting_logged)
      fd_log_info("%s v%" PRIu64 ": every chunk held after %.3f s; waiting for the origins to "
                  "commit it",
                  d->name, d->version, (double)(fd_now_ms() - d->started_ms) / 1000.0);
    d->waiting_logged = true;
    return;
  }
  int rc = nd_ver_complete(p, d->ver, on_dl_complete, d);
  if (rc == 0) d->state = ND_DL_COMPLETING;
  else if (rc == -EALREADY) {
    d->state = ND_DL_COMPLETING;
    on_dl_complete(d, 0);
  }
}

static const char *dl_state_name(nd_dl_state_t st) {
  static const char *const names[] = {"idle", "manifest", "fetch",
                                      "completing", "done", "failed"};
  return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* A download under way that moved nothing for ND_DL_STALL_LOG_MS says, once
 * per such period, where each stripe stands: what an operator (or a test's
 * log) needs to tell a slow parent from one that is gone or a stuck stream. */
static void dl_watch(nd_dl_t *d, uint64_t now) {
  bool active = d->state != ND_DL_IDLE && d->state != ND_DL_DONE && d->state != ND_DL_FAILED &&
                !(d->state == ND_DL_FETCH && d->pending && d->waiting_logged);
  uint32_t missing = d->ver ? st_version_missing(d->ver->sv) : UINT32_MAX;
  if (!active || missing != d->watch_missing || !d->watch_ms) {
    d->watch_missing = missing;
    d->watch_ms = now;
    return;
  }
  if (now - d->watch_ms < ND_DL_STALL_LOG_MS || now - d->stall_logged_ms < ND_DL_STALL_LOG_MS)
    return;
  d->stall_logged_ms = now;
  char plane[160];
  nd_plane_describe(d->all->p, plane, sizeof(plane));
  fd_log_warn("%s v%" PRIu64 ": no progress for %.1f s in state %s, %d chunks missing; %s",
              d->name, d->version, (double)(now - d->watch_ms) / 1000.0,
              dl_state_name(d->state), missing == UINT32_MAX ? -1 : (int)missing, plane);
  for (uint32_t i = 0; i < d->stripes_n; i++) {
    const nd_stripe_t *s = &d->s[i];
    fd_log_warn("  stripe %u from %s (%s:%u): %u missing, conn %s, stream %s, "
                "storage puts %u, retry in %" PRId64 " ms",
                i, s->parent_id, s->parent_addr, s->parent_port,
                d->ver ? nd_stripe_missing(s) : 0,
                !s->conn ? "none" : s->conn_ready ? "ready" : "connecting",
                s->fetching ? (s->sink.call ? "open" : "open, no call") : "none", s->sink.puts,
                (int64_t)s->retry_at_ms - (int64_t)now);
  }
}

void nd_dls_tick(nd_dls_t *all) {
  uint64_t now = fd_now_ms();
  for (uint32_t k = 0; k < ND_FILES_MAX; k++) {
    nd_dl_t *d = &all->dl[k];
    if (!d->used) continue;
    dl_watch(d, now);
    if (d->state == ND_DL_MANIFEST) tick_manifest(d, now);
    else if (d->state == ND_DL_FETCH) tick_fetch(d);
  }
}

size_t nd_dls_held(nd_dls_t *all, Sched__VersionHeld *out, size_t max) {
  size_t k = 0;
  for (uint32_t i = 0; i < ND_FILES_MAX && k < max; i++) {
    nd_dl_t *d = &all->dl[i];
    if (!d->used || d->state == ND_DL_IDLE || (!d->ver && d->state != ND_DL_DONE)) continue;
    Sched__VersionHeld h = SCHED__VERSION_HELD__INIT;
    h.name = d->name;
    h.version = d->version;
    h.complete = d->state == ND_DL_DONE;
    h.chunks_present = h.complete || d->ver->complete
                           ? d->chunk_count
                           : d->chunk_count - st_version_missing(d->ver->sv);
    out[k++] = h;
  }
  return k;
}
