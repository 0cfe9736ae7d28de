/*
 * nd_repair.c — what the node does about damage: it reports bad chunks and
 * refused manifests to fdsched, and re-fetches each bad chunk of a complete
 * version in place.
 *
 * Reports. Scrub marks a rotten chunk bad in storage (no longer present, so
 * never served) and calls nd_repair_bad; a refused manifest comes from
 * nd_repair_rejected. Each becomes a report in a bounded queue
 * (ND_REPORTS_MAX; a full queue drops the new report and counts it). Every
 * heartbeat carries the oldest ND_REPORTS_PER_HB of them, and they leave the
 * queue only when a heartbeat carrying them succeeded, so fdsched hears each
 * at least once while the node lives. A chunk is reported bad once per
 * version handle (scrub finds it again on every pass until it is repaired),
 * and reported again as repaired once rewritten.
 *
 * Re-fetch. A complete version with bad chunks is held open (a `users`
 * reference, so neither the LRU of open versions nor GC drops the mark)
 * until every bad chunk is repaired, or until the keep rule no longer keeps
 * the version. One RepairPull at a time asks a peer for up to
 * ND_REPAIR_CHUNKS_PER_PULL bad chunks. Peers are tried in this order: the
 * repair peers of fdsched's latest order for the file, the stripe parents of
 * that order, then the origins (node.origins, self excluded); a peer that
 * cannot be reached, does not hold the version, or sends a copy that fails
 * verification is skipped for the next after ND_RETRY_MS, and once every
 * peer was tried the round starts again after ND_REPAIR_ROUND_MS. Each
 * chunk received goes to st_chunk_repair (CRC32C, SHA-256 against the
 * manifest, O_DIRECT write in v<N> at its offset, fdatasync, then the mark
 * is cleared and the chunk is served and reused again); its receive credit
 * is returned only then, so the stream window bounds the buffers held.
 *
 * Memory: one nd_repair_t, allocated on first use with a context per pool
 * buffer, freed by nd_repair_destroy; nothing is allocated per chunk. The
 * per-version "reported" bitmap is allocated when a version gets its first
 * bad chunk.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "nd_int.h"

typedef enum nd_report_kind { ND_REPORT_BAD, ND_REPORT_REPAIRED, ND_REPORT_REJECTED } nd_report_kind_t;

typedef struct nd_report {
  nd_report_kind_t kind;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint32_t index;
  char reason[48];
} nd_report_t;

typedef struct nd_rpeer {
  char addr[64];
  uint16_t port;
} nd_rpeer_t;

/* What the latest order for a file says about where its chunks are. */
typedef struct nd_rorder {
  bool used;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  nd_rpeer_t peer[ND_REPAIR_PEERS_MAX]; /* repair peers, then stripe parents */
  uint32_t peers;
} nd_rorder_t;

/* A complete version with bad chunks, held open until they are repaired. */
typedef struct nd_rver {
  nd_ver_t *ver;
  uint8_t *reported; /* bit per chunk: reported bad, not repaired yet */
} nd_rver_t;

/* A pool buffer holding a received chunk on its way into storage. */
typedef struct nd_rbuf {
  struct nd_repair *r;
  nd_rver_t *rv;
  uint32_t gen, index, len;
} nd_rbuf_t;

struct nd_repair {
  nd_node_t *n;
  /* reports, oldest first; the first `sent` ride on the heartbeat in flight */
  nd_report_t q[ND_REPORTS_MAX];
  uint32_t q_head, q_len, q_sent;
  Sched__BadChunk bc[ND_REPORTS_PER_HB];
  Sched__BadChunk *bcp[ND_REPORTS_PER_HB];
  Sched__RejectedManifest rm[ND_REPORTS_PER_HB];
  Sched__RejectedManifest *rmp[ND_REPORTS_PER_HB];
  nd_rver_t vers[ND_VERS_MAX];
  nd_rorder_t orders[ND_REPAIR_ORDERS];
  /* the pull under way */
  nd_rver_t *job;
  nd_rpeer_t cand[ND_REPAIR_PEERS_MAX + ND_ORIGINS_MAX];
  uint32_t cand_n, cand_next;
  const nd_ver_t *cand_for; /* the version the candidates were listed for */
  rpc_conn_t *conn;
  bool conn_ready;
  rpc_call_t *call;
  bool called;     /* the pull of this attempt was started */
  uint32_t gen;    /* bumped when a call ends: late repairs skip its credit */
  uint32_t rejects; /* copies of this call that storage refused */
  bool has_hdr;
  uint32_t hdr_index, hdr_len;
  uint64_t chunks[ND_REPAIR_CHUNKS_PER_PULL];
  uint32_t inflight; /* st_chunk_repair calls not done */
  uint32_t wait[ND_REPAIR_WAIT_MAX]; /* pool indices waiting for a storage slot */
  uint32_t wait_n;
  nd_rbuf_t *rb; /* one per pool buffer */
  uint64_t retry_at_ms;
  /* counters over the node's life */
  uint64_t reports_dropped, chunks_repaired, repair_failures;
};

static nd_repair_t *rep(nd_node_t *n) {
  if (n->repair) return n->repair;
  nd_repair_t *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->rb = calloc(fd_pool_count(n->pool), sizeof(*r->rb));
  if (!r->rb) {
    free(r);
    return NULL;
  }
  r->n = n;
  n->repair = r;
  return r;
}

/* ---- reports ------------------------------------------------------------------ */

static void report(nd_repair_t *r, nd_report_kind_t kind, const char *name, uint64_t version,
                   uint32_t index, const char *reason) {
  if (r->q_len == ND_REPORTS_MAX) {
    /* Counted; logged at 1, 2, 4, 8 ... drops so a storm cannot flood the log. */
    r->reports_dropped++;
    if ((r->reports_dropped & (r->reports_dropped - 1)) == 0)
      fd_log_warn("report queue full: %" PRIu64 " report(s) to fdsched dropped", r->reports_dropped);
    return;
  }
  nd_report_t *p = &r->q[(r->q_head + r->q_len) % ND_REPORTS_MAX];
  memset(p, 0, sizeof(*p));
  p->kind = kind;
  snprintf(p->name, sizeof(p->name), "%s", name);
  p->version = version;
  p->index = index;
  if (reason) snprintf(p->reason, sizeof(p->reason), "%s", reason);
  r->q_len++;
}

void nd_repair_hb_fill(nd_node_t *n, Sched__HeartbeatRequest *req) {
  nd_repair_t *r = n->repair;
  if (!r) return;
  uint32_t k = FD_MIN(r->q_len, ND_REPORTS_PER_HB), nb = 0, nr = 0;
  for (uint32_t i = 0; i < k; i++) {
    nd_report_t *p = &r->q[(r->q_head + i) % ND_REPORTS_MAX];
    if (p->kind == ND_REPORT_REJECTED) {
      Sched__RejectedManifest *m = &r->rm[nr];
      sched__rejected_manifest__init(m);
      m->name = p->name;
      m->version = p->version;
      m->reason = p->reason;
      r->rmp[nr++] = m;
    } else {
      Sched__BadChunk *b = &r->bc[nb];
      sched__bad_chunk__init(b);
      b->name = p->name;
      b->version = p->version;
      b->index = p->index;
      b->repaired = p->kind == ND_REPORT_REPAIRED;
      r->bcp[nb++] = b;
    }
  }
  req->n_bad_chunks = nb;
  req->bad_chunks = nb ? r->bcp : NULL;
  req->n_rejected = nr;
  req->rejected = nr ? r->rmp : NULL;
  r->q_sent = k; /* one heartbeat at a time: a new fill replaces an unanswered one */
}

void nd_repair_hb_done(nd_node_t *n, bool ok) {
  nd_repair_t *r = n->repair;
  if (!r) return;
  if (ok) {
    FD_ASSERT(r->q_sent <= r->q_len);
    r->q_head = (r->q_head + r->q_sent) % ND_REPORTS_MAX;
    r->q_len -= r->q_sent;
  }
  r->q_sent = 0;
}

void nd_repair_rejected(nd_node_t *n, const char *name, uint64_t version, const char *reason) {
  nd_repair_t *r = rep(n);
  if (r) report(r, ND_REPORT_REJECTED, name, version, 0, reason);
}

void nd_repair_bad(nd_node_t *n, const char *name, uint64_t version, uint32_t index) {
  nd_repair_t *r = rep(n);
  nd_ver_t *v = nd_ver_find(n, name, version);
  if (!r || !v || !v->complete || index >= v->m->chunk_count) return;
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
    v->users++; /* held open: the bad mark lives in this handle */
    fd_log_info("%s v%" PRIu64 ": will re-fetch its bad chunks", name, version);
  }
  if (rv->reported[index / 8] >> (index % 8) & 1) return;
  rv->reported[index / 8] |= (uint8_t)(1u << (index % 8));
  report(r, ND_REPORT_BAD, name, version, index, NULL);
}

/* ---- orders: where the chunks are ------------------------------------------------ */

static void peer_add(nd_rpeer_t *list, uint32_t *count, uint32_t max, const char *addr,
                     uint32_t port) {
  if (!addr || !addr[0] || !port || port > 65535 || *count >= max) return;
  for (uint32_t i = 0; i < *count; i++)
    if (list[i].port == port && !strcmp(list[i].addr, addr)) return;
  snprintf(list[*count].addr, sizeof(list[*count].addr), "%s", addr);
  list[*count].port = (uint16_t)port;
  (*count)++;
}

void nd_repair_order(nd_node_t *n, const Sched__Order *o) {
  if (!o->name || !st_name_valid(o->name)) return;
  nd_repair_t *r = rep(n);
  if (!r) return;
  nd_rorder_t *slot = NULL;
  for (uint32_t i = 0; i < ND_REPAIR_ORDERS && !slot; i++)
    if (r->orders[i].used && !strcmp(r->orders[i].name, o->name)) slot = &r->orders[i];
  for (uint32_t i = 0; i < ND_REPAIR_ORDERS && !slot; i++)
    if (!r->orders[i].used) slot = &r->orders[i];
  if (!slot) slot = &r->orders[0];
  if (slot->used && !strcmp(slot->name, o->name) && o->version < slot->version) return;
  memset(slot, 0, sizeof(*slot));
  slot->used = true;
  snprintf(slot->name, sizeof(slot->name), "%s", o->name);
  slot->version = o->version;
  for (size_t k = 0; k < o->n_repair_peers; k++)
    peer_add(slot->peer, &slot->peers, ND_REPAIR_PEERS_MAX, o->repair_peers[k]->addr,
             o->repair_peers[k]->port);
  for (size_t k = 0; k < o->n_stripes; k++)
    peer_add(slot->peer, &slot->peers, ND_REPAIR_PEERS_MAX, o->stripes[k]->parent_addr,
             o->stripes[k]->parent_port);
}

/* The peers to try for rv, best first; never this node itself. */
static void candidates(nd_repair_t *r, const nd_rver_t *rv) {
  nd_node_t *n = r->n;
  uint32_t max = FD_ARRAY_LEN(r->cand);
  r->cand_n = r->cand_next = 0;
  r->cand_for = rv->ver;
  for (uint32_t i = 0; i < ND_REPAIR_ORDERS; i++) {
    const nd_rorder_t *o = &r->orders[i];
    if (!o->used || strcmp(o->name, rv->ver->name)) continue;
    for (uint32_t k = 0; k < o->peers; k++)
      peer_add(r->cand, &r->cand_n, max, o->peer[k].addr, o->peer[k].port);
  }
  for (uint32_t i = 0; i < n->origins_n; i++)
    if ((int)i != n->self_origin && n->origins[i].port) /* port 0: address not known yet */
      peer_add(r->cand, &r->cand_n, max, n->origins[i].addr, n->origins[i].port);
  for (uint32_t i = 0; i < r->cand_n; i++) {
    if (r->cand[i].port != n->port || strcmp(r->cand[i].addr, n->listen_addr)) continue;
    r->cand[i] = r->cand[--r->cand_n]; /* myself */
    i--;
  }
}

/* ---- the pull ------------------------------------------------------------------ */

static void buf_release(nd_repair_t *r, uint32_t idx) {
  nd_rbuf_t *b = &r->rb[idx];
  if (r->call && b->gen == r->gen) rpc_call_data_done(r->call, b->len);
  fd_pool_put(r->n->pool, fd_pool_buf(r->n->pool, idx));
}

static void on_repaired(void *arg, int res) {
  nd_rbuf_t *b = arg;
  nd_repair_t *r = b->r;
  nd_ver_t *v = b->rv->ver;
  r->inflight--;
  if (res == 0) {
    r->chunks_repaired++;
    b->rv->reported[b->index / 8] &= (uint8_t) ~(1u << (b->index % 8));
    report(r, ND_REPORT_REPAIRED, v->name, v->version, b->index, NULL);
    fd_log_info("%s v%" PRIu64 ": chunk %u re-fetched and rewritten; %u bad left", v->name,
                v->version, b->index, st_version_bad(v->sv));
  } else {
    r->repair_failures++;
  }
  buf_release(r, (uint32_t)(b - r->rb));
}

/* 0 when storage took the chunk or refused it, -EAGAIN: no slot yet. */
static int put_try(nd_repair_t *r, uint32_t idx) {
  nd_rbuf_t *b = &r->rb[idx];
  void *buf = fd_pool_buf(r->n->pool, idx);
  int rc = st_chunk_repair(b->rv->ver->sv, b->index, buf, b->len, on_repaired, b);
  if (rc == 0) {
    r->inflight++;
    return 0;
  }
  if (rc == -EAGAIN) return rc;
  if (rc != -EALREADY && rc != -EINPROGRESS) {
    r->repair_failures++;
    r->rejects++;
    fd_log_warn("%s v%" PRIu64 ": repair copy of chunk %u not used: %s", b->rv->ver->name,
                b->rv->ver->version, b->index, fd_strerror(rc));
  }
  buf_release(r, idx);
  return 0;
}

static void wait_run(nd_repair_t *r) {
  uint32_t done = 0;
  while (done < r->wait_n && put_try(r, r->wait[done]) == 0) done++;
  if (!done) return;
  memmove(r->wait, r->wait + done, (r->wait_n - done) * sizeof(*r->wait));
  r->wait_n -= done;
}

static void r_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_repair_t *r = arg;
  if (m->descriptor != &node__chunk_header__descriptor) return;
  const Node__ChunkHeader *h = (const Node__ChunkHeader *)m;
  r->has_hdr = true;
  r->hdr_index = (uint32_t)FD_MIN(h->index, UINT32_MAX);
  r->hdr_len = h->length;
}

static void r_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  nd_repair_t *r = arg;
  uint32_t idx = fd_pool_index(r->n->pool, buf);
  nd_rbuf_t *b = &r->rb[idx];
  *b = (nd_rbuf_t){.r = r, .rv = r->job, .gen = r->gen, .index = r->hdr_index, .len = len};
  if (!r->has_hdr || !r->job || len != r->hdr_len || r->hdr_index >= r->job->ver->m->chunk_count) {
    fd_log_warn("repair: data frame without a matching chunk header: dropped");
    r->rejects++;
    fd_pool_put(r->n->pool, buf);
    rpc_call_data_done(call, len);
    return;
  }
  r->has_hdr = false;
  if (r->wait_n == 0 && put_try(r, idx) == 0) return;
  if (r->wait_n == ND_REPAIR_WAIT_MAX) { /* cannot happen within the window; stay safe */
    buf_release(r, idx);
    return;
  }
  r->wait[r->wait_n++] = idx;
}

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

static void r_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_repair_t *r = arg;
  r->call = NULL;
  r->gen++;
  r->has_hdr = false;
  if (r->n->destroying) return;
  if (code != RPC_OK)
    fd_log_warn("repair pull from %s:%u: %s %s", r->cand[r->cand_next].addr,
                r->cand[r->cand_next].port, rpc_code_name(code), msg ? msg : "");
  attempt_end(r, code == RPC_OK && r->rejects == 0);
}

static void r_ready(rpc_conn_t *conn, void *arg) {
  nd_repair_t *r = arg;
  if (r->conn == conn) r->conn_ready = true;
}

static void r_closed(rpc_conn_t *conn, int err, void *arg) {
  (void)err;
  nd_repair_t *r = arg;
  if (r->conn != conn || r->n->destroying) return;
  r->conn = NULL;
  if (!r->call) attempt_end(r, false);
}

static void pull_start(nd_repair_t *r) {
  const nd_ver_t *v = r->job->ver;
  uint32_t k = 0;
  for (uint32_t i = 0; i < v->m->chunk_count && k < ND_REPAIR_CHUNKS_PER_PULL; i++)
    if (!st_version_has(v->sv, i)) r->chunks[k++] = i;
  r->called = true;
  if (k == 0) {
    attempt_end(r, true);
    return;
  }
  Node__RepairPullRequest req = NODE__REPAIR_PULL_REQUEST__INIT;
  req.name = (char *)v->name;
  req.version = v->version;
  req.chunks = r->chunks;
  req.n_chunks = k;
  r->rejects = 0;
  r->has_hdr = false;
  rpc_call_cbs_t cbs = {r_msg, r_data, NULL, r_done};
  r->call = rpc_start_node_repair_pull(r->conn, &req, ND_REPAIR_CALL_MS, &cbs, r);
  if (!r->call) {
    attempt_end(r, false);
    return;
  }
  fd_log_info("%s v%" PRIu64 ": asking %s:%u for %u bad chunk(s)", v->name, v->version,
              r->cand[r->cand_next].addr, r->cand[r->cand_next].port, k);
}

/* Lets go of versions with nothing left to repair (or that the keep rule
 * no longer keeps); returns the first that still needs work. */
static nd_rver_t *next_job(nd_repair_t *r) {
  nd_node_t *n = r->n;
  nd_rver_t *found = NULL;
  bool busy = r->inflight || r->wait_n;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_rver_t *rv = &r->vers[i];
    if (!rv->ver) continue;
    bool drop = st_version_bad(rv->ver->sv) == 0;
    if (!drop && !found &&
        rv->ver->version + n->cfg.keep_versions <= nd_newest_complete(n, rv->ver->name)) {
      fd_log_warn("%s v%" PRIu64 ": no longer kept; %u bad chunk(s) left unrepaired",
                  rv->ver->name, rv->ver->version, st_version_bad(rv->ver->sv));
      drop = true;
    }
    if (drop && !busy) {
      nd_ver_put(n, rv->ver);
      free(rv->reported);
      memset(rv, 0, sizeof(*rv));
    } else if (!drop && !found) {
      found = rv;
    }
  }
  return found;
}

void nd_repair_tick(nd_node_t *n) {
  nd_repair_t *r = n->repair;
  if (!r || n->stop) return;
  wait_run(r);
  if (r->job) {
    if (r->conn && r->conn_ready && !r->called) pull_start(r);
    return;
  }
  uint64_t now = fd_now_ms();
  if (now < r->retry_at_ms || r->inflight || r->wait_n) return;
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
  r->conn = rpc_connect(n->e, p->addr, p->port, &cbs, r);
  if (!r->conn) attempt_end(r, false);
}

void nd_repair_destroy(nd_node_t *n) {
  nd_repair_t *r = n->repair;
  if (!r) return;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) free(r->vers[i].reported);
  free(r->rb);
  free(r);
  n->repair = NULL;
}
