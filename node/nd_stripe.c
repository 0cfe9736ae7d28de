/*
 * nd_stripe.c — one stripe of a download: a FetchStripe stream from the
 * parent fdsched names, carrying a bitmap of the stripe's chunks already
 * held, into the download's sink (verified, stored, forwarded to this
 * node's own children as each lands). A stream that ends or fails is opened
 * again (after ND_RETRY_MS, or ND_PARENT_WAIT_MS when the parent has not
 * opened the version yet) with a fresh bitmap until the stripe is whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_dl_int.h"

static_assert(ND_PEER_UNKNOWN == (int)SCHED__LINK_CLASS__LINK_UNKNOWN &&
                  ND_PEER_SAME_ZONE == (int)SCHED__LINK_CLASS__LINK_SAME_ZONE &&
                  ND_PEER_CROSS_ZONE == (int)SCHED__LINK_CLASS__LINK_CROSS_ZONE &&
                  ND_PEER_CROSS_REGION == (int)SCHED__LINK_CLASS__LINK_CROSS_REGION &&
                  ND_PEER_ORIGIN == (int)SCHED__LINK_CLASS__LINK_ORIGIN,
              "peer classes are sched.LinkClass's values (nd_peer_class_from_wire)");

void nd_stripe_init(nd_stripe_t *s, nd_dl_t *d, uint32_t stripe) {
  nd_sink_t sink = s->sink; /* chunks of an earlier version may still be in storage */
  memset(s, 0, sizeof(*s));
  s->sink = sink;
  if (!s->sink.p) nd_sink_init(&s->sink, d->all->p, NULL, s);
  else nd_sink_reset(&s->sink);
  s->dl = d;
  s->stripe = stripe;
}

void nd_stripe_drop(nd_stripe_t *s) {
  if (s->sink.call) rpc_call_cancel(s->sink.call); /* s_done clears it */
  rpc_conn_t *c = s->conn;
  s->conn = NULL;
  s->conn_ready = false;
  if (c) rpc_conn_close(c);
  s->fetching = false;
}

bool nd_stripe_same_parent(const nd_stripe_t *s, const Sched__StripeOrder *so) {
  return !strcmp(s->parent_addr, so->parent_addr) && s->parent_port == so->parent_port;
}

void nd_stripe_set_parent(nd_stripe_t *s, const Sched__StripeOrder *so) {
  snprintf(s->parent_id, sizeof(s->parent_id), "%s", so->parent_id);
  snprintf(s->parent_addr, sizeof(s->parent_addr), "%s", so->parent_addr);
  s->parent_port = (uint16_t)so->parent_port;
  s->link = nd_peer_class_from_wire((uint32_t)so->parent_link);
  s->retry_at_ms = 0;
}

/* Chunks of the stripe still to fetch; fills the have bitmap if given. A
 * chunk the delta is copying locally counts as held: the network brings
 * only the rest, at the same time as the copy (and a copy that fails is
 * fetched by the next stream). */
static uint32_t missing(const nd_stripe_t *s, uint8_t *have, size_t have_len) {
  const nd_dl_t *d = s->dl;
  nd_plane_t *p = d->all->p;
  uint32_t count = 0, j = 0;
  if (have) memset(have, 0, have_len);
  for (uint32_t i = s->stripe; i < d->ver->m->chunk_count; i += d->stripes_n, j++) {
    if (nd_ver_has(p, d->ver, i) || nd_ver_reusing(p, d->ver, i)) {
      if (have && j / 8 < have_len) have[j / 8] |= (uint8_t)(1u << (j % 8));
    } else {
      count++;
    }
  }
  return count;
}

uint32_t nd_stripe_missing(const nd_stripe_t *s) { return missing(s, NULL, 0); }

/* ---- the stream's callbacks ---------------------------------------------------- */

static void s_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_stripe_t *s = arg;
  if (m->descriptor == &node__chunk_header__descriptor)
    nd_sink_header(&s->sink, (const Node__ChunkHeader *)m);
}

static void s_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  nd_stripe_t *s = arg;
  nd_sink_data(&s->sink, call, buf, len);
}

static void s_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_stripe_t *s = arg;
  nd_sink_end(&s->sink);
  s->fetching = false;
  if (code != RPC_OK && code != RPC_CANCELLED)
    fd_log_debug("%s stripe %u from %s: %s %s", s->dl->name, s->stripe, s->parent_id,
                 rpc_code_name(code), msg ? msg : "");
  else
    fd_log_debug("%s stripe %u from %s: %s after %" PRIu64 " bytes in total", s->dl->name,
                 s->stripe, s->parent_id, rpc_code_name(code), s->sink.rx_bytes);
  s->retry_at_ms = fd_now_ms() + (code == RPC_OK          ? 0
                                  : code == RPC_NOT_FOUND ? ND_PARENT_WAIT_MS
                                                          : ND_RETRY_MS);
}

static void s_ready(rpc_conn_t *conn, void *arg) {
  nd_stripe_t *s = arg;
  if (s->conn == conn) s->conn_ready = true;
}

static void s_closed(rpc_conn_t *conn, int err, void *arg) {
  (void)err;
  nd_stripe_t *s = arg;
  if (s->conn != conn) return;
  s->conn = NULL;
  s->conn_ready = false;
  s->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
}

/* Another file's download has a stream open: then a new stream waits until
 * its window fits the pool beside theirs (one file alone always runs). */
static bool may_open(const nd_stripe_t *s) {
  const nd_dls_t *all = s->dl->all;
  for (uint32_t k = 0; k < ND_FILES_MAX; k++) {
    const nd_dl_t *o = &all->dl[k];
    if (o == s->dl || !o->used) continue;
    for (uint32_t i = 0; i < o->stripes_n; i++)
      if (o->s[i].sink.call) return nd_plane_may_receive(all->p);
  }
  return true;
}

void nd_stripe_start(nd_stripe_t *s) {
  nd_dl_t *d = s->dl;
  uint64_t now = fd_now_ms();
  if (s->fetching || s->sink.puts || now < s->retry_at_ms) return;
  if (!s->parent_port) return; /* fdsched has no parent for it yet: its next order */
  if (nd_stripe_missing(s) == 0) return;
  if (!s->conn) {
    if (!may_open(s)) return;
    static const rpc_conn_cbs_t cbs = {s_ready, s_closed};
    s->conn = rpc_connect(d->all->e, s->parent_addr, s->parent_port, &cbs, s);
    if (!s->conn) s->retry_at_ms = now + ND_RETRY_MS;
    return;
  }
  if (!s->conn_ready || !may_open(s)) return;
  size_t have_len = (d->ver->m->chunk_count / d->stripes_n + 8) / 8;
  uint8_t *have = calloc(1, have_len); /* once per stream */
  if (!have) return;
  missing(s, have, have_len);
  Node__FetchStripeRequest req = NODE__FETCH_STRIPE_REQUEST__INIT;
  req.name = d->name;
  req.version = d->version;
  req.stripe = s->stripe;
  req.stripes = d->stripes_n;
  req.have_bitmap.data = have;
  req.have_bitmap.len = have_len;
  req.link = s->link;
  req.node_id = (char *)nd_sched_node_id(d->all->sched);
  rpc_call_cbs_t cbs = {s_msg, s_data, NULL, s_done};
  rpc_call_t *c = rpc_start_node_fetch_stripe(s->conn, &req, ND_STREAM_TIMEOUT_MS, &cbs, s);
  free(have);
  if (!c) {
    s->retry_at_ms = now + ND_RETRY_MS;
    return;
  }
  nd_sink_start(&s->sink, c);
  s->sink.link = s->link;
  s->fetching = true;
}
