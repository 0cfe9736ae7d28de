/*
 * nd_repair.c — role repair: bad chunks reported and re-fetched in place
 * (nd_repair.h); scrub is in nd_scrub.c.
 *
 * Memory: one nd_repair_t; the per-version "reported" bitmap is allocated
 * when a version gets its first bad chunk; nothing per chunk.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_repair_int.h"

nd_repair_t *nd_repair_create(const nd_repair_opts_t *o) {
  nd_repair_t *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->p = o->p;
  r->e = o->e;
  r->sched = o->sched;
  r->origins = o->origins;
  snprintf(r->self_addr, sizeof(r->self_addr), "%s", o->self_addr ? o->self_addr : "");
  r->self_port = o->self_port;
  r->keep_versions = o->keep_versions ? o->keep_versions : FD_VERSIONS_KEPT_DEFAULT;
  r->scrub_interval_s = o->scrub_interval_s;
  r->scrub_rate_bytes = o->scrub_rate_bytes;
  nd_sink_init(&r->sink, r->p, nd_repair_on_chunk, r);
  r->sink.repair = true;
  return r;
}

void nd_repair_destroy(nd_repair_t *r) {
  if (!r) return;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) free(r->vers[i].reported);
  free(r);
}

void nd_repair_stop(nd_repair_t *r) { r->stopping = true; }

/* ---- bad chunks --------------------------------------------------------------- */

void nd_repair_bad(nd_repair_t *r, nd_ver_t *v, uint32_t index) {
  if (!v->complete || index >= v->m->chunk_count) return;
  nd_rver_t *rv = NULL, *free_rv = NULL;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    if (r->vers[i].ver == v) rv = &r->vers[i];
    else if (!r->vers[i].ver && !free_rv) free_rv = &r->vers[i];
  }
  if (!rv) {
    /* Open versions are at most ND_VERS_MAX, so a free entry exists. */
    FD_ASSERT(free_rv != NULL);
    uint8_t *bits = calloc(1, (v->m->chunk_count + 7) / 8);
    if (!bits) return;
    rv = free_rv;
    rv->ver = v;
    rv->reported = bits;
    nd_ver_get(v); /* held open: the bad mark lives in this handle */
    fd_log_info("%s v%" PRIu64 ": will re-fetch its bad chunks", v->name, v->version);
  }
  if (rv->reported[index / 8] >> (index % 8) & 1) return;
  rv->reported[index / 8] |= (uint8_t)(1u << (index % 8));
  nd_reports_add(nd_sched_reports(r->sched), ND_REPORT_BAD, v->name, v->version, index, NULL);
}

void nd_repair_on_chunk(void *owner, nd_sink_t *s, uint32_t index, int res) {
  nd_repair_t *r = owner;
  nd_ver_t *v = s->ver;
  if (res == -EALREADY) return; /* fine already */
  if (res) {
    r->repair_failures++;
    return;
  }
  r->chunks_repaired++;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++)
    if (r->vers[i].ver == v) r->vers[i].reported[index / 8] &= (uint8_t) ~(1u << (index % 8));
  nd_reports_add(nd_sched_reports(r->sched), ND_REPORT_REPAIRED, v->name, v->version, index,
                 NULL);
  fd_log_info("%s v%" PRIu64 ": chunk %u re-fetched and rewritten; %u bad left", v->name,
              v->version, index, st_version_bad(v->sv));
}

/* ---- orders: where the chunks are ------------------------------------------------ */

static void peer_add(nd_rpeer_t *list, uint32_t *count, uint32_t max, const char *addr,
                     uint32_t port, nd_peer_class_t link) {
  if (!addr || !addr[0] || !port || port > 65535 || *count >= max) return;
  for (uint32_t i = 0; i < *count; i++)
    if (list[i].port == port && !strcmp(list[i].addr, addr)) return;
  snprintf(list[*count].addr, sizeof(list[*count].addr), "%s", addr);
  list[*count].port = (uint16_t)port;
  list[*count].link = link;
  (*count)++;
}

void nd_repair_order(nd_repair_t *r, const Sched__Order *o) {
  if (!o->name || !st_name_valid(o->name)) return;
  nd_rorder_t *slot = NULL, *oldest = &r->orders[0];
  for (uint32_t i = 0; i < ND_FILES_MAX && !slot; i++)
    if (r->orders[i].used && !strcmp(r->orders[i].name, o->name)) slot = &r->orders[i];
  for (uint32_t i = 0; i < ND_FILES_MAX && !slot; i++) {
    if (!r->orders[i].used) slot = &r->orders[i];
    else if (r->orders[i].seen_ms < oldest->seen_ms) oldest = &r->orders[i];
  }
  if (!slot) slot = oldest;
  if (slot->used && !strcmp(slot->name, o->name) && o->version < slot->version) return;
  memset(slot, 0, sizeof(*slot));
  slot->used = true;
  slot->seen_ms = fd_now_ms();
  snprintf(slot->name, sizeof(slot->name), "%s", o->name);
  slot->version = o->version;
  uint32_t repair_peers = 0;
  for (size_t k = 0; k < o->n_repair_peers && repair_peers < FD_REPAIR_PEERS_MAX; k++, repair_peers++)
    peer_add(slot->peer, &slot->peers, ND_REPAIR_PEERS_MAX, o->repair_peers[k]->addr,
             o->repair_peers[k]->port, nd_peer_class_from_wire((uint32_t)o->repair_peers[k]->link));
  for (size_t k = 0; k < o->n_stripes; k++)
    peer_add(slot->peer, &slot->peers, ND_REPAIR_PEERS_MAX, o->stripes[k]->parent_addr,
             o->stripes[k]->parent_port,
             nd_peer_class_from_wire((uint32_t)o->stripes[k]->parent_link));
}

/* The peers to try for rv, best first; never this node itself. */
static void candidates(nd_repair_t *r, const nd_rver_t *rv) {
  uint32_t max = FD_ARRAY_LEN(r->cand);
  r->cand_n = r->cand_next = 0;
  r->cand_for = rv->ver;
  for (uint32_t i = 0; i < ND_FILES_MAX; i++) {
    const nd_rorder_t *o = &r->orders[i];
    if (!o->used || strcmp(o->name, rv->ver->name)) continue;
    for (uint32_t k = 0; k < o->peers; k++)
      peer_add(r->cand, &r->cand_n, max, o->peer[k].addr, o->peer[k].port, o->peer[k].link);
  }
  const nd_origins_t *os = r->origins;
  for (uint32_t i = 0; i < os->n; i++) /* peer_add skips port 0: address not known yet */
    if ((int)i != os->self)
      peer_add(r->cand, &r->cand_n, max, os->o[i].addr, os->o[i].port, ND_PEER_ORIGIN);
  for (uint32_t i = 0; i < r->cand_n; i++) {
    if (r->cand[i].port != r->self_port || strcmp(r->cand[i].addr, r->self_addr)) continue;
    r->cand[i] = r->cand[--r->cand_n]; /* myself */
    i--;
  }
}

/* ---- the pull ------------------------------------------------------------------ */

/* The attempt is over: let go of the connection, pick who to ask next. */
static void attempt_end(nd_repair_t *r, bool peer_ok) {
  rpc_conn_t *c = r->conn;
  r->conn = NULL;
  r->conn_ready = false;
  r->called = false;
  r->job = NULL;
  if (c) rpc_conn_close(c);
  uint64_t now = fd_now_ms();
  if (peer_ok) {
    r->retry_at_ms = now; /* same peer again if anything is left */
    return;
  }
  if (++r->cand_next >= r->cand_n) {
    r->cand_n = r->cand_next = 0; /* every peer tried: a new round later */
    r->retry_at_ms = now + ND_REPAIR_ROUND_MS;
  } else {
    r->retry_at_ms = now + ND_RETRY_MS;
  }
}

static void r_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_repair_t *r = arg;
  if (m->descriptor == &node__chunk_header__descriptor)
    nd_sink_header(&r->sink, (const Node__ChunkHeader *)m);
}

static void r_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  nd_repair_t *r = arg;
  nd_sink_data(&r->sink, call, buf, len);
}

static void r_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_repair_t *r = arg;
  bool copies_ok = r->sink.err == 0;
  nd_sink_end(&r->sink);
  if (r->stopping) return;
  if (code != RPC_OK)
    fd_log_warn("repair pull from %s:%u: %s %s", r->cand[r->cand_next].addr,
                r->cand[r->cand_next].port, rpc_code_name(code), msg ? msg : "");
  attempt_end(r, code == RPC_OK && copies_ok);
}

static void r_ready(rpc_conn_t *conn, void *arg) {
  nd_repair_t *r = arg;
  if (r->conn == conn) r->conn_ready = true;
}

static void r_closed(rpc_conn_t *conn, int err, void *arg) {
  (void)err;
  nd_repair_t *r = arg;
  if (r->conn != conn || r->stopping) return;
  r->conn = NULL;
  if (!r->sink.call) attempt_end(r, false);
}

static void pull_start(nd_repair_t *r) {
  nd_ver_t *v = r->job->ver;
  uint32_t k = 0;
  for (uint32_t i = 0; i < v->m->chunk_count && k < ND_REPAIR_CHUNKS_PER_PULL; i++)
    if (!st_version_has(v->sv, i)) r->chunks[k++] = i;
  r->called = true;
  if (k == 0) {
    attempt_end(r, true);
    return;
  }
  Node__RepairPullRequest req = NODE__REPAIR_PULL_REQUEST__INIT;
  req.name = v->name;
  req.version = v->version;
  req.chunks = r->chunks;
  req.n_chunks = k;
  req.link = r->cand[r->cand_next].link;
  req.node_id = (char *)nd_sched_node_id(r->sched);
  rpc_call_cbs_t cbs = {r_msg, r_data, NULL, r_done};
  rpc_call_t *call = rpc_start_node_repair_pull(r->conn, &req, ND_REPAIR_CALL_MS, &cbs, r);
  if (!call) {
    attempt_end(r, false);
    return;
  }
  r->sink.ver = v;
  nd_sink_start(&r->sink, call);
  r->sink.link = r->cand[r->cand_next].link;
  fd_log_info("%s v%" PRIu64 ": asking %s:%u for %u bad chunk(s)", v->name, v->version,
              r->cand[r->cand_next].addr, r->cand[r->cand_next].port, k);
}

/* Lets go of versions with nothing left to repair (or that the keep rule
 * no longer keeps); returns the first that still needs work. */
static nd_rver_t *next_job(nd_repair_t *r) {
  nd_rver_t *found = NULL;
  bool busy = r->sink.puts > 0;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_rver_t *rv = &r->vers[i];
    if (!rv->ver) continue;
    bool drop = st_version_bad(rv->ver->sv) == 0;
    if (!drop && !found &&
        rv->ver->version + r->keep_versions <= nd_newest_complete(r->p, rv->ver->name)) {
      fd_log_warn("%s v%" PRIu64 ": no longer kept; %u bad chunk(s) left unrepaired",
                  rv->ver->name, rv->ver->version, st_version_bad(rv->ver->sv));
      drop = true;
    }
    if (drop && !busy) {
      nd_ver_put(rv->ver);
      free(rv->reported);
      memset(rv, 0, sizeof(*rv));
    } else if (!drop && !found) {
      found = rv;
    }
  }
  return found;
}

static void pull_tick(nd_repair_t *r) {
  if (r->job) {
    if (r->conn && r->conn_ready && !r->called) pull_start(r);
    return;
  }
  uint64_t now = fd_now_ms();
  if (now < r->retry_at_ms || r->sink.puts) return;
  nd_rver_t *rv = next_job(r);
  if (!rv) return;
  if (r->cand_n == 0 || r->cand_for != rv->ver) candidates(r, rv);
  if (r->cand_n == 0) {
    fd_log_warn("%s v%" PRIu64 ": %u bad chunk(s) and no peer to fetch them from",
                rv->ver->name, rv->ver->version, st_version_bad(rv->ver->sv));
    r->retry_at_ms = now + ND_REPAIR_ROUND_MS;
    return;
  }
  static const rpc_conn_cbs_t cbs = {r_ready, r_closed};
  const nd_rpeer_t *p = &r->cand[r->cand_next];
  r->job = rv;
  r->conn = rpc_connect(r->e, p->addr, p->port, &cbs, r);
  if (!r->conn) attempt_end(r, false);
}

void nd_repair_tick(nd_repair_t *r) {
  if (r->stopping) return;
  nd_scrub_tick(r);
  pull_tick(r);
}
