/*
 * fdsched_svc.c — the Scheduler service: RegisterNode, Heartbeat,
 * WatchOrders, RegisterVersion and Drain, and the pushing of orders.
 *
 * Every change goes through sch_sched_* (and so through the db's log, fsync'd
 * before the handler replies). After each change the planner lists the nodes
 * whose order changed; fdsched_flush_pushes sends those orders at once on the
 * nodes' WatchOrders streams. An order is the whole current state for one
 * file (version, digest, per stripe parent and children), so sending it twice
 * is harmless: a push that meets a full window is simply resent in full when
 * the window opens. Heartbeat replies repeat every current order (routine
 * orders ride on the heartbeat, urgent ones are pushed). Register and
 * Heartbeat replies also list the live origins with their addresses, so an
 * origin may listen on any port (port 0) and still be found by the others.
 *
 * Never: blocks (the db's fsync is the only wait), allocates per call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "fdsched_int.h"
#include "storage.h"

void fdsched_split_addr(const char *address, char *host, uint32_t *port) {
  const char *colon = strrchr(address, ':');
  size_t n = colon ? (size_t)(colon - address) : strlen(address);
  if (n >= SCH_ADDRESS_LEN_MAX) n = SCH_ADDRESS_LEN_MAX - 1;
  memcpy(host, address, n);
  host[n] = '\0';
  *port = colon ? (uint32_t)strtoul(colon + 1, NULL, 10) : 0;
}

const fdsched_meta_t *fdsched_meta(fdsched_t *d, uint32_t plan) {
  const char *file;
  uint64_t version;
  if (plan >= SCH_PLANS_MAX || !sch_sched_plan_at(d->sched, plan, &file, &version)) return NULL;
  fdsched_meta_t *m = &d->meta[plan];
  if (m->valid && m->version == version && strcmp(m->file, file) == 0) return m;
  const sch_version_t *v = sch_registry_find(sch_db_registry(d->db), file, version);
  if (!v) return NULL;
  st_manifest_t *man = NULL;
  int rc = st_manifest_decode(v->manifest, v->manifest_len, &man);
  if (rc == 0) rc = st_manifest_digest(man, m->digest);
  if (rc) {
    fd_log_error("fdsched: the manifest of %s v%llu no longer decodes: %s", file,
                 (unsigned long long)version, fd_strerror(rc));
    st_manifest_free(man);
    m->valid = false;
    return NULL;
  }
  snprintf(m->file, sizeof(m->file), "%s", file);
  m->version = version;
  m->created_s = man->created_unix_s;
  if (!m->registered_ms) m->registered_ms = d->start_ms; /* replayed: timed from our start */
  m->valid = true;
  st_manifest_free(man);
  return m;
}

/* True when slot holds all of the version it is planned for. */
static bool holds_all(fdsched_t *d, const sch_version_t *v, uint32_t slot) {
  const sch_node_t *n = sch_members_node(sch_db_members(d->db), slot);
  if (n && n->origin) return true;
  return sch_registry_held(sch_db_registry(d->db), slot, v->file, v->version) >= v->chunk_count;
}

/* How nodes a and b are placed against each other (their bytes' label in
 * the nodes' /metrics). */
static Sched__LinkClass link_class(const sch_node_t *a, const sch_node_t *b) {
  if (!a || !b) return SCHED__LINK_CLASS__LINK_UNKNOWN;
  if (a->origin || b->origin) return SCHED__LINK_CLASS__LINK_ORIGIN;
  if (a->region != b->region) return SCHED__LINK_CLASS__LINK_CROSS_REGION;
  if (a->zone != b->zone) return SCHED__LINK_CLASS__LINK_CROSS_ZONE;
  return SCHED__LINK_CLASS__LINK_SAME_ZONE;
}

/* Builds slot's order for plan i into b; false if slot is not in it. */
static bool build_order(fdsched_t *d, uint32_t i, uint32_t slot, fdsched_order_buf_t *b) {
  const char *file;
  uint64_t version;
  const sch_plan_t *p = sch_sched_plan_at(d->sched, i, &file, &version);
  const fdsched_meta_t *m = fdsched_meta(d, i);
  if (!p || !m) return false;
  sch_order_t o;
  if (sch_plan_order(p, slot, &o) != 0) return false;
  const sch_members_t *mem = sch_db_members(d->db);
  const sch_node_t *self = sch_members_node(mem, slot);
  const sch_version_t *v = sch_registry_find(sch_db_registry(d->db), file, version);
  sched__order__init(&b->order);
  b->order.name = (char *)file;
  b->order.version = version;
  b->order.manifest_sha256.data = (uint8_t *)m->digest;
  b->order.manifest_sha256.len = FD_SHA256_LEN;
  b->order.state = v && v->pending ? SCHED__VERSION_STATE__VERSION_PENDING
                                   : SCHED__VERSION_STATE__VERSION_COMMITTED;
  b->order.leader_seq = d->ha.seq;
  b->order.stripe_count = o.stripes;
  b->order.n_stripes = o.stripes;
  b->order.stripes = b->stripe_ptr;
  bool parents_hold_all = true, unplaced = false;
  for (uint32_t s = 0; s < o.stripes; s++) {
    Sched__StripeOrder *so = &b->stripe[s];
    sched__stripe_order__init(so);
    b->stripe_ptr[s] = so;
    so->stripe = s;
    if (o.stripe[s].parent >= 0) {
      const sch_node_t *par = sch_members_node(mem, (uint32_t)o.stripe[s].parent);
      so->parent_id = (char *)par->id;
      fdsched_split_addr(par->address, b->parent_host[s], &so->parent_port);
      so->parent_addr = b->parent_host[s];
      so->parent_link = link_class(self, par);
      if (v && !holds_all(d, v, (uint32_t)o.stripe[s].parent)) parents_hold_all = false;
    } else if (o.stripe[s].parent == SCH_NONE) {
      unplaced = true; /* no parent had a free slot: repair is its only source */
    }
    so->n_children = o.stripe[s].child_count;
    so->children = b->children[s];
    for (uint32_t c = 0; c < o.stripe[s].child_count; c++)
      b->children[s][c] = (char *)sch_members_node(mem, o.stripe[s].children[c])->id;
  }
  b->order.n_repair_peers = 0;
  b->order.repair_peers = b->peer_ptr;
  if (v && (parents_hold_all || unplaced) && !holds_all(d, v, slot)) {
    uint32_t peers[SCH_REPAIR_PEERS_MAX];
    uint32_t n = sch_plan_repair_peers(p, slot, peers, SCH_REPAIR_PEERS_MAX);
    if (n > SCH_REPAIR_PEERS_MAX) n = SCH_REPAIR_PEERS_MAX;
    for (uint32_t k = 0; k < n; k++) {
      const sch_node_t *peer = sch_members_node(mem, peers[k]);
      Sched__Peer *pp = &b->peer[k];
      sched__peer__init(pp);
      pp->node_id = (char *)peer->id;
      fdsched_split_addr(peer->address, b->peer_host[k], &pp->port);
      pp->addr = b->peer_host[k];
      pp->link = link_class(self, peer);
      b->peer_ptr[k] = pp;
    }
    b->order.n_repair_peers = n;
  }
  return true;
}

/* Sends every current order of w's node on its stream; false on a full window. */
static bool send_all_orders(fdsched_t *d, fdsched_watch_t *w) {
  for (uint32_t i = 0; i < sch_sched_plan_count(d->sched); i++) {
    if (!build_order(d, i, w->slot, &d->obuf[0])) continue;
    int rc = rpc_call_send(w->call, &d->obuf[0].order.base);
    if (rc == -EAGAIN) {
      w->pending = true;
      d->n.pushes_deferred++;
      return false;
    }
    if (rc) {
      fd_log_warn("fdsched: push to %s failed: %s",
                  sch_members_node(sch_db_members(d->db), w->slot)->id, fd_strerror(rc));
      return false;
    }
    d->n.pushes++;
  }
  w->pending = false;
  return true;
}

void fdsched_flush_pushes(fdsched_t *d) {
  if (!fdsched_ha_leading(d)) return; /* a standby tells nobody anything */
  uint32_t n;
  do {
    n = sch_sched_take_pushes(d->sched, d->pushes, FD_NODES_MAX);
    for (uint32_t k = 0; k < n; k++) {
      fdsched_watch_t *w = &d->watch[d->pushes[k].slot];
      if (!w->call || w->pending) continue; /* pending: on_writable sends it all */
      if (!build_order(d, d->pushes[k].plan, w->slot, &d->obuf[0])) continue;
      int rc = rpc_call_send(w->call, &d->obuf[0].order.base);
      if (rc == -EAGAIN) {
        w->pending = true;
        d->n.pushes_deferred++;
      } else if (rc == 0) {
        d->n.pushes++;
      }
    }
  } while (n == FD_NODES_MAX);
}

/* ---- the origins' addresses, on Register and Heartbeat replies ---- */

void fdsched_origin_track(fdsched_t *d, uint32_t slot) {
  const sch_node_t *n = sch_members_node(sch_db_members(d->db), slot);
  if (!n || !n->origin) return;
  for (uint32_t i = 0; i < d->origin_slots; i++)
    if (d->origin_slot[i] == slot) return;
  if (d->origin_slots == SCH_ORIGINS_MAX) {
    fd_log_warn("fdsched: origin %s is one more than the %u whose addresses replies carry", n->id,
                SCH_ORIGINS_MAX);
    return;
  }
  d->origin_slot[d->origin_slots++] = slot;
}

/* Fills the live origins (origin set, neither dead nor gone) with the
 * address each registered into d's origin buffers; returns how many. A node
 * whose `origins` entries are bare ids learns their addresses from these. */
static size_t origins_fill(fdsched_t *d) {
  const sch_members_t *mem = sch_db_members(d->db);
  size_t k = 0;
  for (uint32_t i = 0; i < d->origin_slots; i++) {
    const sch_node_t *n = sch_members_node(mem, d->origin_slot[i]);
    if (!n || !n->origin || n->state == SCH_NODE_DEAD || n->state == SCH_NODE_LEFT) continue;
    Sched__Peer *p = &d->origin_peer[k];
    sched__peer__init(p);
    p->node_id = (char *)n->id;
    fdsched_split_addr(n->address, d->origin_host[k], &p->port);
    p->addr = d->origin_host[k];
    d->origin_peer_ptr[k++] = p;
  }
  return k;
}

/* ---- RegisterNode ---- */

static int h_register(rpc_call_t *call, const Sched__RegisterRequest *req, void *ctx) {
  fdsched_t *d = ctx;
  if (!fdsched_ha_leading(d)) return fdsched_ha_refuse(d, call);
  const Sched__NodeInfo *ni = req->node;
  if (!ni || !ni->node_id || !ni->addr || ni->port == 0 || ni->port > 65535)
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "node id, addr and port are required");
  char address[SCH_ADDRESS_LEN_MAX];
  int len = snprintf(address, sizeof(address), "%s:%u", ni->addr, ni->port);
  if (len < 0 || (size_t)len >= sizeof(address)) return -EMSGSIZE;
  sch_node_info_t info = {
      .id = ni->node_id,
      .region = ni->region,
      .zone = ni->zone,
      .address = address,
      .nic_bps = ni->nic_bps,
      .upload_bps_max = ni->upload_bps_max,
      .download_bps_max = ni->download_bps_max,
      .free_disk_bytes = ni->capacity_bytes,
      .origin = ni->origin,
  };
  uint32_t slot;
  int rc = sch_sched_register(d->sched, &info, fd_now_ms(), &slot);
  if (rc) {
    fd_log_warn("fdsched: register %s refused: %s", ni->node_id, fd_strerror(rc));
    return rc;
  }
  d->n.registers++;
  fdsched_origin_track(d, slot);
  fd_log_info("fdsched: %s %s registered (%s/%s, %s)", ni->origin ? "origin" : "node",
              ni->node_id, ni->region, ni->zone, address);
  Sched__RegisterReply rep = SCHED__REGISTER_REPLY__INIT;
  rep.epoch = d->epoch;
  rep.heartbeat_ms = d->cfg.heartbeat_ms;
  rep.leader_seq = d->ha.seq;
  rep.n_origins = origins_fill(d);
  rep.origins = d->origin_peer_ptr;
  rc = rpc_call_send(call, &rep.base);
  if (rc == 0) rc = rpc_call_finish(call, RPC_OK, NULL);
  fdsched_flush_pushes(d);
  return rc;
}

/* ---- Heartbeat ---- */

/* The node's stalls as its heartbeat says them: kept, volatile (children
 * this scheduler does not know are left out). */
static void stalls_take(fdsched_t *d, uint32_t slot, const Sched__HeartbeatRequest *req) {
  sch_members_t *m = sch_db_members(d->db);
  sch_node_stalls_t s = {.blocked_ms = req->blocked_ms,
                         .blocked_pool_ms = req->blocked_pool_ms,
                         .blocked_socket_ms = req->blocked_socket_ms,
                         .blocked_upload_cap_ms = req->blocked_upload_cap_ms,
                         .credit_write_ms = req->credit_write_ms,
                         .credit_sync_ms = req->credit_sync_ms};
  for (size_t i = 0; i < req->n_child_stalls; i++) {
    const Sched__ChildStall *c = req->child_stalls[i];
    int child = sch_members_find(m, c->node_id);
    if (child >= 0) sch_stalls_add_child(&s, (uint32_t)child, c->blocked_ms);
  }
  sch_members_set_stalls(m, slot, &s);
}

static int h_heartbeat(rpc_call_t *call, const Sched__HeartbeatRequest *req, void *ctx) {
  fdsched_t *d = ctx;
  if (!fdsched_ha_leading(d)) return fdsched_ha_refuse(d, call);
  if (!req->node_id || !req->node_id[0]) return -EINVAL;
  uint64_t now = fd_now_ms();
  int rc = 0;
  uint32_t reports = 0;
  for (size_t i = 0; i < req->n_versions && rc == 0; i++) {
    const Sched__VersionHeld *vh = req->versions[i];
    const sch_version_t *v = vh->name ? sch_registry_find(sch_db_registry(d->db), vh->name,
                                                          vh->version)
                                      : NULL;
    if (!v) continue; /* a version this scheduler does not know (or no longer plans) */
    uint64_t chunks = vh->complete ? v->chunk_count : vh->chunks_present;
    /* every chunk but not yet current (waiting for the commit): not complete */
    if (!vh->complete && chunks >= v->chunk_count && v->chunk_count) chunks = v->chunk_count - 1;
    rc = sch_sched_heartbeat(d->sched, req->node_id, now, vh->name, vh->version, chunks);
    if (rc == -ERANGE) rc = 0; /* a report we cannot track is not the node's failure */
    reports++;
  }
  if (rc == 0 && reports == 0) rc = sch_sched_heartbeat(d->sched, req->node_id, now, NULL, 0, 0);
  if (rc == -ENOENT) {
    d->n.heartbeat_unknown++;
    return rpc_call_finish(call, RPC_NOT_FOUND, "unknown node: register first");
  }
  if (rc) return rc;
  d->n.heartbeats++;
  sch_sched_traffic(d->sched, req->node_id, now, req->rx_bytes); /* its download rate */
  fdsched_reports_take(d, req);
  int slot = sch_members_find(sch_db_members(d->db), req->node_id);
  if (slot >= 0) stalls_take(d, (uint32_t)slot, req);
  Sched__HeartbeatReply rep = SCHED__HEARTBEAT_REPLY__INIT;
  uint32_t n = 0;
  for (uint32_t i = 0; slot >= 0 && i < sch_sched_plan_count(d->sched); i++)
    if (build_order(d, i, (uint32_t)slot, &d->obuf[n])) {
      d->order_ptr[n] = &d->obuf[n].order;
      n++;
    }
  rep.n_orders = n;
  rep.orders = d->order_ptr;
  rep.leader_seq = d->ha.seq;
  rep.n_origins = origins_fill(d);
  rep.origins = d->origin_peer_ptr;
  rc = rpc_call_send(call, &rep.base);
  if (rc == 0) rc = rpc_call_finish(call, RPC_OK, NULL);
  fdsched_flush_pushes(d); /* a node back from dead was joined to the plans */
  return rc;
}

/* ---- WatchOrders ---- */

static void watch_writable(rpc_call_t *call, void *arg) {
  fdsched_watch_t *w = arg;
  if (w->call == call && w->pending) send_all_orders(w->d, w);
}

static void watch_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  fdsched_watch_t *w = arg;
  fdsched_t *d = w->d;
  if (w->call != call) return; /* a stream already replaced by a newer one */
  w->call = NULL;
  w->pending = false;
  const sch_node_t *n = sch_members_node(sch_db_members(d->db), w->slot);
  if (d->stopping || code != RPC_UNAVAILABLE || !d->cfg.stream_loss_is_death ||
      !fdsched_ha_leading(d)) {
    fd_log_info("fdsched: %s closed its order stream (%s)", n->id, rpc_code_name(code));
    return;
  }
  /* The connection broke: the node (or its host) is gone. Acting now rather
   * than after dead_misses heartbeats keeps its children's streams near full
   * speed (perf/sim). A node that is in fact alive heartbeats again and is
   * put back into every plan. */
  if (sch_sched_declare_dead(d->sched, w->slot) == 0) {
    d->n.deaths++;
    d->n.stream_deaths++;
    fd_log_warn("fdsched: %s lost its order stream (%s): dead, re-parenting its children", n->id,
                msg && msg[0] ? msg : rpc_code_name(code));
    fdsched_flush_pushes(d);
  }
}

static int h_watch(rpc_call_t *call, const Sched__WatchOrdersRequest *req, void *ctx) {
  fdsched_t *d = ctx;
  if (!fdsched_ha_leading(d)) return fdsched_ha_refuse(d, call);
  if (!req->node_id) return -EINVAL;
  int slot = sch_members_find(sch_db_members(d->db), req->node_id);
  if (slot < 0) return rpc_call_finish(call, RPC_NOT_FOUND, "unknown node: register first");
  fdsched_watch_t *w = &d->watch[slot];
  if (w->call) { /* the node reopened its stream: the old one is stale */
    rpc_call_t *old = w->call;
    w->call = NULL;
    rpc_call_finish(old, RPC_ABORTED, "replaced by a newer WatchOrders");
  }
  w->call = call;
  w->pending = false;
  rpc_call_cbs_t cbs = {NULL, NULL, watch_writable, watch_done};
  rpc_call_set_cbs(call, &cbs, w);
  d->n.watches++;
  send_all_orders(d, w);
  return 0;
}

void fdsched_watch_close_all(fdsched_t *d, const char *why) {
  uint32_t count = d->db ? sch_members_count(sch_db_members(d->db)) : 0;
  for (uint32_t slot = 0; slot < count; slot++) {
    fdsched_watch_t *w = &d->watch[slot];
    if (!w->call) continue;
    rpc_call_t *call = w->call;
    w->call = NULL; /* watch_done: a stream already gone, nobody dies of it */
    w->pending = false;
    rpc_call_finish(call, RPC_UNAVAILABLE, why);
  }
}

/* ---- RegisterVersion ---- */

/* Sends every current order to every open stream (a commit or an abort
 * concerns all the nodes of a plan at once; both are rare). */
static void push_everyone(fdsched_t *d) {
  uint32_t count = sch_members_count(sch_db_members(d->db));
  for (uint32_t slot = 0; slot < count; slot++) {
    fdsched_watch_t *w = &d->watch[slot];
    if (w->call && !w->pending) send_all_orders(d, w);
  }
}

/* Retires a pending version whose publish failed and tells every node to
 * drop what it received of it (an order with state ABORTED, no stripes). */
static int abort_version(fdsched_t *d, const char *file, uint64_t version) {
  char name[FD_NAME_LEN_MAX + 1];
  snprintf(name, sizeof(name), "%s", file); /* file may point into the registry */
  int rc = sch_sched_abort(d->sched, name, version);
  if (rc) return rc == -EALREADY ? 0 : rc;
  fd_log_warn("fdsched: %s v%llu aborted: its publish failed", name, (unsigned long long)version);
  for (uint32_t i = 0; i < SCH_PLANS_MAX; i++)
    d->meta[i].valid = false;
  Sched__Order o = SCHED__ORDER__INIT;
  o.name = name;
  o.version = version;
  o.state = SCHED__VERSION_STATE__VERSION_ABORTED;
  o.leader_seq = d->ha.seq;
  uint32_t count = sch_members_count(sch_db_members(d->db));
  for (uint32_t slot = 0; slot < count; slot++) {
    fdsched_watch_t *w = &d->watch[slot];
    if (w->call && rpc_call_send(w->call, &o.base) == 0) d->n.pushes++;
  }
  push_everyone(d); /* the plan's older version, if any */
  return 0;
}

static int h_register_version(rpc_call_t *call, const Sched__RegisterVersionRequest *req,
                              void *ctx) {
  fdsched_t *d = ctx;
  if (!fdsched_ha_leading(d)) return fdsched_ha_refuse(d, call);
  char why[256];
  if (d->ha.zk && fdsched_ha_fits(req->manifest.len, why, sizeof(why)) != 0) {
    d->n.versions_rejected++;
    fd_log_warn("fdsched: RegisterVersion refused: %s", why);
    return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, why);
  }
  st_manifest_t *m = NULL;
  int rc = st_manifest_decode(req->manifest.data, req->manifest.len, &m);
  if (rc) {
    d->n.versions_rejected++;
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "not a manifest");
  }
  char name[FD_NAME_LEN_MAX + 1];
  snprintf(name, sizeof(name), "%s", m->name);
  uint64_t version = m->version;
  if (d->have_admin && (rc = st_manifest_verify(m, d->admin.pub, &d->revoked.list)) != 0) {
    d->n.versions_rejected++;
    fd_log_warn("fdsched: %s v%llu: manifest refused (%s): not signed by the admin key or a "
                "valid origin key it certified",
                m->name, (unsigned long long)m->version, fd_cert_trust_reason(rc));
    st_manifest_free(m);
    snprintf(why, sizeof(why), "manifest signature rejected (%s)", fd_cert_trust_reason(rc));
    return rpc_call_finish(call, RPC_UNAUTHENTICATED, why);
  }
  if (req->n_origins == 0 || req->n_origins > SCH_ORIGINS_MAX) {
    st_manifest_free(m);
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "1..16 origins must hold the version");
  }
  const sch_registry_t *r = sch_db_registry(d->db);
  const sch_version_t *have = sch_registry_find(r, m->name, m->version);
  Sched__VersionState state = req->state;
  if (have && !(have->manifest_len == req->manifest.len &&
                memcmp(have->manifest, req->manifest.data, have->manifest_len) == 0)) {
    if (!have->pending || state == SCHED__VERSION_STATE__VERSION_ABORTED) {
      st_manifest_free(m);
      return rpc_call_finish(call, RPC_ALREADY_EXISTS, "a different manifest holds it");
    }
    /* A publish of this number failed without saying so (its head died):
     * the new manifest replaces the pending one. */
    fd_log_warn("fdsched: %s v%llu: a new manifest replaces the unfinished publish", m->name,
                (unsigned long long)m->version);
    abort_version(d, m->name, m->version);
    have = NULL;
  }
  if (have || state == SCHED__VERSION_STATE__VERSION_ABORTED) {
    /* the head moving a pending version on, or retrying after a lost reply */
    st_manifest_free(m);
    rc = 0;
    if (have && have->pending && state == SCHED__VERSION_STATE__VERSION_COMMITTED) {
      rc = sch_sched_commit(d->sched, name, version, (const char *const *)req->origins,
                            (uint32_t)req->n_origins);
      if (rc == 0) {
        fd_log_info("fdsched: %s v%llu committed (every live origin holds it)", name,
                    (unsigned long long)version);
        push_everyone(d); /* the nodes waiting on it may now make it current */
      }
    } else if (have && have->pending && state == SCHED__VERSION_STATE__VERSION_ABORTED) {
      rc = abort_version(d, name, version);
    }
    if (rc) return rc;
  } else {
    sch_version_info_t info = {
        .file = m->name,
        .version = m->version,
        .size_bytes = m->size_bytes,
        .chunk_size_bytes = m->chunk_size_bytes,
        .manifest = req->manifest.data,
        .manifest_len = req->manifest.len,
        .origin_count = (uint32_t)req->n_origins,
        .origins = (const char *const *)req->origins,
        .pending = state == SCHED__VERSION_STATE__VERSION_PENDING,
    };
    rc = sch_sched_publish(d->sched, &info);
    if (rc == -ERANGE) {
      const sch_version_t *newest = sch_registry_newest(r, m->name);
      snprintf(why, sizeof(why), "%s v%llu is not newer than v%llu", m->name,
               (unsigned long long)m->version,
               (unsigned long long)(newest ? newest->version : 0));
      st_manifest_free(m);
      d->n.versions_rejected++;
      return rpc_call_finish(call, RPC_FAILED_PRECONDITION, why);
    }
    if (rc) {
      fd_log_warn("fdsched: cannot register %s v%llu: %s", m->name,
                  (unsigned long long)m->version, fd_strerror(rc));
      st_manifest_free(m);
      d->n.versions_rejected++;
      return rc;
    }
    d->n.versions_registered++;
    fd_log_info("fdsched: %s v%llu registered%s (%llu bytes, %u chunks, %zu origins)", m->name,
                (unsigned long long)m->version, info.pending ? " while its publish runs" : "",
                (unsigned long long)m->size_bytes, m->chunk_count, req->n_origins);
    st_manifest_free(m);
  }
  /* ZooKeeper holds what the answer acknowledges before it goes (a retry
   * writes it again: the last attempt may have failed here). */
  if ((rc = fdsched_ha_record(d, name, version)) != 0) {
    snprintf(why, sizeof(why), "%s v%llu could not be recorded in ZooKeeper (%s): retry",
             name, (unsigned long long)version, fd_strerror(rc));
    fdsched_flush_pushes(d);
    return rpc_call_finish(call, RPC_UNAVAILABLE, why);
  }
  Sched__RegisterVersionReply rep = SCHED__REGISTER_VERSION_REPLY__INIT;
  rep.version = version;
  if (!have) { /* progress of the new plan is timed from now */
    const char *file;
    uint64_t ver;
    for (uint32_t i = 0; i < sch_sched_plan_count(d->sched); i++) {
      sch_sched_plan_at(d->sched, i, &file, &ver);
      if (ver == version && strcmp(file, name) == 0) {
        d->meta[i].valid = false;
        d->meta[i].registered_ms = fd_now_ms();
      }
    }
  }
  rc = rpc_call_send(call, &rep.base);
  if (rc == 0) rc = rpc_call_finish(call, RPC_OK, NULL);
  fdsched_flush_pushes(d); /* the new plan's orders go out now */
  return rc;
}

/* ---- Drain and undrain (admin role, enforced by the rpc layer) ----
 * The node's children are moved in the same turn and their orders pushed
 * before the reply, so that what the reply counts as dependents is what
 * the plans say. Asking for the state a node is already in is accepted. */

static int h_drain(rpc_call_t *call, const Sched__DrainRequest *req, void *ctx) {
  fdsched_t *d = ctx;
  if (!fdsched_ha_leading(d)) return fdsched_ha_refuse(d, call);
  if (!req->node_id) return -EINVAL;
  int slot = sch_members_find(sch_db_members(d->db), req->node_id);
  if (slot < 0) return rpc_call_finish(call, RPC_NOT_FOUND, "unknown node");
  int rc = req->undrain ? sch_sched_undrain(d->sched, (uint32_t)slot)
                        : sch_sched_drain(d->sched, (uint32_t)slot);
  if (rc && rc != -EALREADY) return rc;
  fdsched_flush_pushes(d);
  const sch_node_t *n = sch_members_node(sch_db_members(d->db), (uint32_t)slot);
  Sched__DrainReply rep = SCHED__DRAIN_REPLY__INIT;
  rep.changed = rc == 0;
  rep.accepted = req->undrain ? !n->drained && n->state != SCH_NODE_LEFT : n->drained;
  rep.state = (char *)sch_node_state_name(n->state);
  rep.dependents = sch_sched_dependents(d->sched, (uint32_t)slot);
  if (rc == 0) {
    if (!req->undrain) d->n.drains++;
    fd_log_info("fdsched: %s %s (admin), %u dependents left", req->node_id,
                req->undrain ? "undrained" : "draining", rep.dependents);
  }
  rc = rpc_call_send(call, &rep.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

int fdsched_serve(fdsched_t *d) {
  int rc = rpc_serve_sched_register(d->engine, h_register, d);
  if (rc == 0) rc = rpc_serve_sched_heartbeat(d->engine, h_heartbeat, d);
  if (rc == 0) rc = rpc_serve_sched_watch_orders(d->engine, h_watch, d);
  if (rc == 0) rc = rpc_serve_sched_register_version(d->engine, h_register_version, d);
  if (rc == 0) rc = rpc_serve_sched_drain(d->engine, h_drain, d);
  if (rc == 0) rc = fdsched_serve_status(d);
  return rc;
}
