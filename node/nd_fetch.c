/*
 * nd_fetch.c — role node: carry out the newest order.
 *
 * For an order naming a version newer than the one in hand: fetch the
 * manifest (GetManifest from a stripe's parent, trying each parent in turn),
 * check it is the one the order names (SHA-256 digest) and that the trusted
 * admin key signed it (storage rejects it otherwise: logged, reported, never
 * stored), reuse local chunks (storage delta), then open one FetchStripe
 * stream per stripe to the parent the order names, with a bitmap of the
 * stripe's chunks already held. Each chunk is verified and stored, and
 * forwarded to this node's own children as it lands (nd_sink, nd_forward).
 * A stream that ends or fails is re-opened (after ND_RETRY_MS) with a fresh
 * bitmap until the stripe is whole; an order that changes a stripe's parent
 * cancels that stream and resumes from the new parent. With every chunk
 * durable the version completes, `current` switches, GC runs, and the next
 * heartbeat reports it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_int.h"

static void stripe_drop(nd_node_t *n, nd_stripe_t *s) {
  (void)n;
  if (s->sink.call) rpc_call_cancel(s->sink.call); /* on_done clears it */
  rpc_conn_t *c = s->conn;
  s->conn = NULL;
  s->conn_ready = false;
  if (c) rpc_conn_close(c);
  s->fetching = false;
}

static void dl_abandon(nd_node_t *n) {
  nd_dl_t *d = &n->dl;
  for (uint32_t i = 0; i < d->stripes_n; i++) stripe_drop(n, &d->s[i]);
  if (d->mcall) rpc_call_cancel(d->mcall);
  rpc_conn_t *mc = d->mconn;
  d->mconn = NULL;
  if (mc) rpc_conn_close(mc);
  if (d->ver) {
    nd_ver_put(n, d->ver);
    d->ver = NULL;
  }
  d->state = ND_DL_IDLE;
}

void nd_dl_stop(nd_node_t *n) { dl_abandon(n); }

static void set_parents(nd_dl_t *d, const Sched__Order *o, bool resume) {
  for (size_t k = 0; k < o->n_stripes; k++) {
    const Sched__StripeOrder *so = o->stripes[k];
    if (so->stripe >= FD_STRIPES_MAX) continue;
    nd_stripe_t *s = &d->s[so->stripe];
    uint16_t port = (uint16_t)so->parent_port;
    if (resume && !strcmp(s->parent_addr, so->parent_addr) && s->parent_port == port) continue;
    if (resume)
      fd_log_info("stripe %u: re-parent %s -> %s (%s:%u)", so->stripe, s->parent_id,
                  so->parent_id, so->parent_addr, port);
    s->stripe = so->stripe;
    snprintf(s->parent_id, sizeof(s->parent_id), "%s", so->parent_id);
    snprintf(s->parent_addr, sizeof(s->parent_addr), "%s", so->parent_addr);
    s->parent_port = port;
    s->retry_at_ms = 0;
    s->done = false;
    if (resume) s->retry_at_ms = 1; /* marks "re-connect": handled by the caller */
  }
}

/* True when the order names the same manifest as the download (or either
 * does not say). */
static bool same_manifest(const nd_dl_t *d, const Sched__Order *o) {
  return !d->has_digest || o->manifest_sha256.len != FD_SHA256_LEN ||
         !memcmp(d->digest, o->manifest_sha256.data, FD_SHA256_LEN);
}

/* The publish of the version being fetched failed: drop it. Its partial
 * stays on disk until a new manifest of that number replaces it. */
static void dl_aborted(nd_node_t *n) {
  nd_dl_t *d = &n->dl;
  fd_log_warn("%s v%" PRIu64 ": its publish was aborted; dropped", d->name, d->version);
  dl_abandon(n);
  nd_ver_abort(n, d->name, d->version);
}

void nd_order(nd_node_t *n, const Sched__Order *o) {
  nd_dl_t *d = &n->dl;
  if (!o->name || !st_name_valid(o->name)) return;
  bool undone = d->state != ND_DL_IDLE && d->state != ND_DL_DONE && d->state != ND_DL_FAILED;
  if (o->state == SCHED__VERSION_STATE__VERSION_ABORTED) {
    if (undone && !strcmp(d->name, o->name) && o->version == d->version) dl_aborted(n);
    return;
  }
  if (o->n_stripes == 0 || o->n_stripes > FD_STRIPES_MAX) return;
  bool pending = o->state == SCHED__VERSION_STATE__VERSION_PENDING;
  nd_repair_order(n, o);
  if (d->state != ND_DL_IDLE && !strcmp(d->name, o->name)) {
    if (o->version < d->version) {
      /* fdsched plans the newest version of a file it knows: an older one
       * means the pending one being fetched here was given up. */
      if (!undone || !d->pending) return;
      dl_aborted(n);
    } else if (o->version == d->version && !same_manifest(d, o)) {
      if (d->state == ND_DL_DONE) return; /* a complete version is never replaced */
      fd_log_warn("%s v%" PRIu64 ": a new manifest replaces the one being fetched", d->name,
                  d->version);
      dl_abandon(n);
    } else if (o->version == d->version) {
      if (d->state == ND_DL_DONE || d->state == ND_DL_FAILED) return;
      if (d->pending && !pending)
        fd_log_info("%s v%" PRIu64 " committed by the origins", d->name, d->version);
      d->pending = pending;
      /* re-parent: drop the streams whose parent changed */
      for (size_t k = 0; k < o->n_stripes; k++) {
        const Sched__StripeOrder *so = o->stripes[k];
        if (so->stripe >= d->stripes_n) continue;
        nd_stripe_t *s = &d->s[so->stripe];
        if (!strcmp(s->parent_addr, so->parent_addr) && s->parent_port == so->parent_port)
          continue;
        fd_log_info("%s v%" PRIu64 " stripe %u: re-parent %s -> %s", d->name, d->version,
                    so->stripe, s->parent_id, so->parent_id);
        stripe_drop(n, s);
        snprintf(s->parent_id, sizeof(s->parent_id), "%s", so->parent_id);
        snprintf(s->parent_addr, sizeof(s->parent_addr), "%s", so->parent_addr);
        s->parent_port = (uint16_t)so->parent_port;
        s->retry_at_ms = 0;
      }
      return;
    }
  }
  if (nd_newest_complete(n, o->name) >= o->version) {
    if (d->state == ND_DL_DONE && d->version >= o->version && !strcmp(d->name, o->name)) return;
    dl_abandon(n);
    /* already held: report it done */
    nd_ver_t *v;
    if (nd_ver_open(n, o->name, o->version, &v) == 0) {
      v->users++;
      snprintf(d->name, sizeof(d->name), "%s", o->name);
      d->version = o->version;
      d->ver = v;
      d->stripes_n = 0;
      d->state = ND_DL_DONE;
    }
    return;
  }
  dl_abandon(n);
  for (uint32_t i = 0; i < FD_STRIPES_MAX; i++) {
    /* chunks of the old version may still be in storage: keep the counts */
    nd_sink_t keep = d->s[i].sink;
    memset(&d->s[i], 0, sizeof(d->s[i]));
    d->s[i].sink.puts = keep.puts;
    d->s[i].sink.gen = keep.gen + 1;
  }
  snprintf(d->name, sizeof(d->name), "%s", o->name);
  d->version = o->version;
  d->has_digest = o->manifest_sha256.len == FD_SHA256_LEN;
  if (d->has_digest) memcpy(d->digest, o->manifest_sha256.data, FD_SHA256_LEN);
  d->stripes_n = o->stripe_count ? o->stripe_count : (uint32_t)o->n_stripes;
  d->pending = pending;
  d->waiting_logged = false;
  if (d->stripes_n > FD_STRIPES_MAX) {
    d->state = ND_DL_IDLE;
    return;
  }
  set_parents(d, o, false);
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

/* ---- manifest ------------------------------------------------------------------ */

static nd_node_t *g_node; /* the download's node (one per process; engine 0) */

/* arg is the version whose delta ended: the download may have moved on
 * (an abort, a newer order) and its flag must still drop. */
static void on_delta_done(void *arg, int res) {
  nd_ver_t *v = arg;
  v->delta_running = false;
  if (res) fd_log_warn("delta: %s", fd_strerror(res));
  nd_node_t *n = g_node;
  if (!n) return;
  nd_dl_t *d = &n->dl;
  if (d->ver != v || d->state != ND_DL_DELTA) return;
  fd_log_info("%s v%" PRIu64 ": reused %" PRIu64 " bytes locally, %u chunks to fetch", d->name,
              d->version, d->ver->bytes_reused, st_version_missing(d->ver->sv));
  d->state = ND_DL_FETCH;
}

static void got_manifest(nd_node_t *n, const uint8_t *buf, size_t len) {
  nd_dl_t *d = &n->dl;
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
  if (rc == 0) rc = nd_ver_begin(n, buf, len, &v);
  if (rc == -EKEYREJECTED || rc == -EBADMSG) {
    fd_log_error("%s v%" PRIu64 ": manifest rejected (%s): not stored, not fetched", d->name,
                 d->version, rc == -EKEYREJECTED ? "bad signature" : "malformed");
    nd_repair_rejected(n, d->name, d->version,
                       rc == -EKEYREJECTED ? "bad signature" : "malformed");
    d->state = ND_DL_FAILED;
    return;
  }
  if (rc) {
    fd_log_warn("%s v%" PRIu64 ": begin: %s", d->name, d->version, fd_strerror(rc));
    d->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
    return;
  }
  v->users++;
  d->ver = v;
  for (uint32_t i = 0; i < d->stripes_n; i++) {
    d->s[i].sink.ver = v;
    d->s[i].sink.forward = true;
  }
  if (v->complete || st_version_missing(v->sv) == 0 || v->delta_running) {
    d->state = ND_DL_FETCH;
    return;
  }
  d->state = ND_DL_DELTA;
  v->delta_running = true;
  g_node = n;
  if (st_version_delta(v->sv, &v->bytes_reused, on_delta_done, v) != 0) {
    v->delta_running = false;
    d->state = ND_DL_FETCH;
  }
}

static void on_manifest_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_node_t *n = arg;
  if (m->descriptor != &node__get_manifest_reply__descriptor || n->dl.state != ND_DL_MANIFEST)
    return;
  const Node__GetManifestReply *r = (const Node__GetManifestReply *)m;
  got_manifest(n, r->manifest.data, r->manifest.len);
}

static void on_manifest_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)msg;
  nd_node_t *n = arg;
  nd_dl_t *d = &n->dl;
  d->mcall = NULL;
  rpc_conn_t *c = d->mconn;
  d->mconn = NULL;
  if (c) rpc_conn_close(c);
  if (d->state == ND_DL_MANIFEST) {
    if (code != RPC_OK) fd_log_debug("GetManifest: %s", rpc_code_name(code));
    d->mtry++;
    /* NOT_FOUND: the parent is a hop behind and opens the version the
     * moment its own manifest arrives; asking again soon saves a retry
     * period per tree level. */
    d->retry_at_ms = fd_now_ms() + (code == RPC_NOT_FOUND ? ND_PARENT_WAIT_MS : ND_RETRY_MS);
  }
}

static void mconn_ready(rpc_conn_t *conn, void *arg) {
  nd_node_t *n = arg;
  nd_dl_t *d = &n->dl;
  Node__GetManifestRequest req = NODE__GET_MANIFEST_REQUEST__INIT;
  req.name = d->name;
  req.version = d->version;
  rpc_call_cbs_t cbs = {on_manifest_msg, NULL, NULL, on_manifest_done};
  d->mcall = rpc_start_node_get_manifest(conn, &req, 10000, &cbs, n);
  if (!d->mcall) d->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
}

static void mconn_closed(rpc_conn_t *conn, int err, void *arg) {
  (void)err;
  nd_node_t *n = arg;
  nd_dl_t *d = &n->dl;
  if (d->mconn != conn) return;
  d->mconn = NULL;
  if (!d->mcall && d->state == ND_DL_MANIFEST) {
    d->mtry++;
    d->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
  }
}

/* ---- stripes ---------------------------------------------------------------------- */

static void s_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_stripe_t *s = arg;
  if (m->descriptor == &node__chunk_header__descriptor)
    nd_sink_header(&s->sink, (const Node__ChunkHeader *)m);
}


static void s_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  nd_stripe_t *s = arg;
  nd_sink_on_data(g_node, &s->sink, call, buf, len);
}

static void s_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_stripe_t *s = arg;
  nd_sink_end(g_node, &s->sink);
  s->fetching = false;
  if (code != RPC_OK && code != RPC_CANCELLED)
    fd_log_debug("stripe %u from %s: %s %s", s->stripe, s->parent_id, rpc_code_name(code),
                 msg ? msg : "");
  else
    fd_log_debug("stripe %u from %s: %s after %llu bytes in total", s->stripe, s->parent_id,
                 rpc_code_name(code), (unsigned long long)s->sink.rx_bytes);
  s->retry_at_ms = fd_now_ms() + (code == RPC_OK          ? 0
                                  : code == RPC_NOT_FOUND ? ND_PARENT_WAIT_MS
                                                          : ND_RETRY_MS);
}

static void s_ready(rpc_conn_t *conn, void *arg) {
  (void)conn;
  ((nd_stripe_t *)arg)->conn_ready = true;
}

static void s_closed(rpc_conn_t *conn, int err, void *arg) {
  (void)err;
  nd_stripe_t *s = arg;
  if (s->conn != conn) return;
  s->conn = NULL;
  s->conn_ready = false;
  s->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
}

/* Chunks of the stripe still missing; fills the have bitmap. */
static uint32_t stripe_missing(const nd_dl_t *d, const nd_stripe_t *s, uint8_t *have,
                               size_t have_len) {
  uint32_t missing = 0, j = 0;
  if (have) memset(have, 0, have_len);
  for (uint32_t i = s->stripe; i < d->ver->m->chunk_count; i += d->stripes_n, j++) {
    if (nd_ver_has(d->ver, i)) {
      if (have && j / 8 < have_len) have[j / 8] |= (uint8_t)(1u << (j % 8));
    } else {
      missing++;
    }
  }
  return missing;
}

static void stripe_start(nd_node_t *n, nd_stripe_t *s) {
  nd_dl_t *d = &n->dl;
  uint64_t now = fd_now_ms();
  if (s->fetching || s->sink.puts || now < s->retry_at_ms) return;
  if (stripe_missing(d, s, NULL, 0) == 0) {
    s->done = true;
    return;
  }
  if (!s->conn) {
    static const rpc_conn_cbs_t cbs = {s_ready, s_closed};
    s->conn = rpc_connect(n->e, s->parent_addr, s->parent_port, &cbs, s);
    if (!s->conn) s->retry_at_ms = now + ND_RETRY_MS;
    return;
  }
  if (!s->conn_ready) return;
  size_t have_len = (d->ver->m->chunk_count / d->stripes_n + 8) / 8;
  uint8_t *have = calloc(1, have_len); /* once per stream */
  if (!have) return;
  stripe_missing(d, s, have, have_len);
  Node__FetchStripeRequest req = NODE__FETCH_STRIPE_REQUEST__INIT;
  req.name = d->name;
  req.version = d->version;
  req.stripe = s->stripe;
  req.stripes = d->stripes_n;
  req.have_bitmap.data = have;
  req.have_bitmap.len = have_len;
  rpc_call_cbs_t cbs = {s_msg, s_data, NULL, s_done};
  rpc_call_t *c = rpc_start_node_fetch_stripe(s->conn, &req, ND_STREAM_TIMEOUT_MS, &cbs, s);
  free(have);
  if (!c) {
    s->retry_at_ms = now + ND_RETRY_MS;
    return;
  }
  nd_sink_start(g_node, &s->sink, c);
  s->sink.has_hdr = false;
  s->fetching = true;
}

static void on_dl_complete(void *arg, int res) {
  nd_node_t *n = arg;
  nd_dl_t *d = &n->dl;
  if (d->state != ND_DL_COMPLETING) return;
  if (res) {
    d->state = ND_DL_FETCH; /* retried from the tick */
    return;
  }
  d->state = ND_DL_DONE;
  fd_log_info("%s v%" PRIu64 " done in %.3f s", d->name, d->version,
              (double)(fd_now_ms() - d->started_ms) / 1000.0);
  for (uint32_t i = 0; i < d->stripes_n; i++) {
    rpc_conn_t *c = d->s[i].conn;
    d->s[i].conn = NULL;
    if (c) rpc_conn_close(c);
  }
  nd_sched_poke(n);
}

void nd_dl_tick(nd_node_t *n) {
  nd_dl_t *d = &n->dl;
  g_node = n;
  uint64_t now = fd_now_ms();
  switch (d->state) {
    case ND_DL_MANIFEST: {
      if (d->mconn || d->mcall || now < d->retry_at_ms) return;
      nd_stripe_t *s = &d->s[d->mtry % d->stripes_n];
      static const rpc_conn_cbs_t cbs = {mconn_ready, mconn_closed};
      d->mconn = rpc_connect(n->e, s->parent_addr, s->parent_port, &cbs, n);
      if (!d->mconn) {
        d->mtry++;
        d->retry_at_ms = now + ND_RETRY_MS;
      }
      return;
    }
    case ND_DL_FETCH: {
      if (st_version_missing(d->ver->sv) == 0 && !d->ver->complete) {
        for (uint32_t i = 0; i < d->stripes_n; i++)
          if (d->s[i].sink.puts) return;
      if (d->pending) { /* every chunk verified and written: current once committed */
        if (!d->waiting_logged)
          fd_log_info("%s v%" PRIu64 ": every chunk held after %.3f s; waiting for the "
                      "origins to commit it",
                      d->name, d->version, (double)(fd_now_ms() - d->started_ms) / 1000.0);
        d->waiting_logged = true;
        return;
      }
        int rc = nd_version_complete(n, d->ver, on_dl_complete, n);
        if (rc == 0) d->state = ND_DL_COMPLETING;
        else if (rc == -EALREADY) on_dl_complete(n, 0);
        return;
      }
      if (d->ver->complete) {
        d->state = ND_DL_COMPLETING;
        on_dl_complete(n, 0);
        return;
      }
      for (uint32_t i = 0; i < d->stripes_n; i++) stripe_start(n, &d->s[i]);
      return;
    }
    default:
      return;
  }
}
