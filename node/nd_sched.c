/*
 * nd_sched.c — fdnode's link to fdsched: RegisterNode, heartbeats carrying
 * what the node holds and its reports, the WatchOrders stream, and
 * RegisterVersion for the origin role (nd_sched.h).
 *
 * Several fdsched (a leader and standbys, [scheduler] zookeeper): the link
 * talks to one at a time. A connection that fails or breaks, a call that
 * times out, or an UNAVAILABLE answer moves it on: to the leader the answer
 * names ("the leader is H:P"), else to the next address of the list; it
 * then registers again by itself. Orders and replies carry the leader's
 * election sequence; one below the highest seen comes from a deposed
 * leader and is ignored (logged), and so is that fdsched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "nd_peers.h"
#include "nd_sched.h"

struct nd_sched {
  rpc_engine_t *e;
  nd_sched_cbs_t cbs;
  /* fdsched's addresses (the configured list) and the one talked to */
  char addrs[SCH_SCHEDULERS_MAX][SCH_ADDRESS_LEN_MAX];
  uint16_t ports[SCH_SCHEDULERS_MAX];
  uint32_t n_addrs, cur;
  char addr[SCH_ADDRESS_LEN_MAX]; /* the current target: addrs[cur] or a named leader */
  uint16_t port;
  uint64_t leader_seq; /* the highest election sequence seen (fencing) */
  uint64_t fenced, fence_logged_ms;
  bool deposed; /* the current fdsched sent something fenced: the tick moves on */
  char id[FD_NAME_LEN_MAX + 1], region[FD_NAME_LEN_MAX + 1], zone[FD_NAME_LEN_MAX + 1];
  char listen_addr[SCH_ADDRESS_LEN_MAX];
  uint16_t listen_port;
  uint64_t nic_bps, upload_bps_max, download_bps_max;
  bool origin;
  uint32_t heartbeat_ms;
  bool stopping;
  rpc_conn_t *conn;
  bool ready, registered;
  uint64_t epoch;
  rpc_call_t *watch, *hb, *reg;
  uint64_t next_hb_ms, retry_at_ms;
  nd_reports_t reports;
  Sched__VersionHeld held[ND_FILES_MAX];
  Sched__VersionHeld *held_ptr[ND_FILES_MAX];
  nd_stalls_t stalls; /* the heartbeat's child_stalls point into these */
  Sched__ChildStall child[ND_CHILD_STALLS_MAX];
  Sched__ChildStall *child_ptr[ND_CHILD_STALLS_MAX];
};

nd_sched_t *nd_sched_create(const nd_sched_opts_t *o) {
  nd_sched_t *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->e = o->e;
  s->cbs = o->cbs;
  int n = nd_schedulers_parse(o->schedulers ? o->schedulers : "", s->addrs, s->ports,
                              SCH_SCHEDULERS_MAX);
  if (n < 0) { /* nd_config_check refuses it first */
    free(s);
    errno = -n;
    return NULL;
  }
  s->n_addrs = (uint32_t)n;
  if (s->n_addrs) {
    snprintf(s->addr, sizeof(s->addr), "%s", s->addrs[0]);
    s->port = s->ports[0];
  }
  snprintf(s->id, sizeof(s->id), "%s", o->id);
  snprintf(s->region, sizeof(s->region), "%s", o->region);
  snprintf(s->zone, sizeof(s->zone), "%s", o->zone);
  snprintf(s->listen_addr, sizeof(s->listen_addr), "%s", o->listen_addr);
  s->listen_port = o->listen_port;
  s->nic_bps = o->nic_bps;
  s->upload_bps_max = o->upload_bps_max;
  s->download_bps_max = o->download_bps_max;
  s->origin = o->origin;
  s->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : FD_HEARTBEAT_MS_DEFAULT;
  return s;
}

void nd_sched_destroy(nd_sched_t *s) { free(s); }

bool nd_sched_configured(const nd_sched_t *s) { return s->addr[0] && s->port; }
const char *nd_sched_node_id(const nd_sched_t *s) { return s->id; }
nd_reports_t *nd_sched_reports(nd_sched_t *s) { return &s->reports; }
void nd_sched_poke(nd_sched_t *s) { s->next_hb_ms = 0; }

void nd_sched_stop(nd_sched_t *s) {
  s->stopping = true;
  if (s->conn) rpc_conn_close(s->conn);
}

static void link_reset(nd_sched_t *s) {
  s->conn = NULL;
  s->ready = s->registered = false;
  s->watch = s->hb = s->reg = NULL;
  s->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
}

/* Moves to another fdsched (only with more than one configured): the one
 * leader names ("H:P"), else the next of the list. The connection is
 * closed; the next tick connects and registers. */
static void switch_sched(nd_sched_t *s, const char *why, const char *leader) {
  if (s->n_addrs < 2 || s->stopping) return;
  char host[SCH_ADDRESS_LEN_MAX];
  uint16_t port = 0;
  if (leader && nd_parse_hostport(leader, host, sizeof(host), &port) == 0 && port) {
    snprintf(s->addr, sizeof(s->addr), "%s", host);
    s->port = port;
    for (uint32_t i = 0; i < s->n_addrs; i++)
      if (s->ports[i] == port && !strcmp(s->addrs[i], host)) s->cur = i;
  } else {
    s->cur = (s->cur + 1) % s->n_addrs;
    snprintf(s->addr, sizeof(s->addr), "%s", s->addrs[s->cur]);
    s->port = s->ports[s->cur];
  }
  fd_log_warn("fdsched: %s; trying %s:%u", why, s->addr, s->port);
  rpc_conn_t *c = s->conn;
  link_reset(s); /* first: the close's callbacks see a link already moved on */
  if (c) rpc_conn_close(c);
}

/* An UNAVAILABLE answer from a standby: "...; the leader is H:P" or "no
 * fdsched leader: ...". */
static void refused(nd_sched_t *s, const char *msg) {
  const char *at = msg ? strstr(msg, "the leader is ") : NULL;
  char leader[SCH_ADDRESS_LEN_MAX] = "";
  if (at) {
    at += strlen("the leader is ");
    size_t n = strcspn(at, " ;,");
    if (n < sizeof(leader)) {
      memcpy(leader, at, n);
      leader[n] = 0;
    }
  }
  char why[SCH_ADDRESS_LEN_MAX + 64];
  snprintf(why, sizeof(why), "%s:%u refused: %s", s->addr, s->port, msg ? msg : "unavailable");
  switch_sched(s, why, leader[0] ? leader : NULL);
}

/* Fencing: true (and logged, at most once a second) when seq is below the
 * highest election sequence seen, i.e. it comes from a deposed leader. */
static bool fenced(nd_sched_t *s, uint64_t seq, const char *what) {
  if (seq >= s->leader_seq) {
    s->leader_seq = seq;
    return false;
  }
  s->fenced++;
  s->deposed = true;
  uint64_t now = fd_now_ms();
  if (now - s->fence_logged_ms >= 1000) {
    s->fence_logged_ms = now;
    fd_log_warn("fdsched %s:%u: %s ignored: leader sequence %llu is below %llu (a deposed "
                "leader; %llu refused so far)",
                s->addr, s->port, what, (unsigned long long)seq,
                (unsigned long long)s->leader_seq, (unsigned long long)s->fenced);
  }
  return true;
}

/* ---- orders --------------------------------------------------------------------- */

static void on_order_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_sched_t *s = arg;
  if (m->descriptor != &sched__order__descriptor || !s->cbs.order) return;
  const Sched__Order *o = (const Sched__Order *)m;
  if (!fenced(s, o->leader_seq, "a pushed order")) s->cbs.order(s->cbs.arg, o);
}

static void on_watch_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  nd_sched_t *s = arg;
  if (s->watch != call) return; /* a stream of a link already moved on */
  s->watch = NULL;
  if (!s->stopping) fd_log_warn("WatchOrders ended: %s %s", rpc_code_name(code), msg ? msg : "");
  s->registered = false; /* register again, then watch again */
}

/* ---- heartbeats ----------------------------------------------------------------- */

static void on_hb_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_sched_t *s = arg;
  if (m->descriptor != &sched__heartbeat_reply__descriptor || !s->cbs.order) return;
  /* (the host's order callback takes no order on an origin) */
  const Sched__HeartbeatReply *r = (const Sched__HeartbeatReply *)m;
  if (fenced(s, r->leader_seq, "a heartbeat reply")) return;
  if (s->cbs.origins) s->cbs.origins(s->cbs.arg, r->origins, r->n_origins);
  for (size_t i = 0; i < r->n_orders; i++)
    if (!fenced(s, r->orders[i]->leader_seq, "an order")) s->cbs.order(s->cbs.arg, r->orders[i]);
}

static void on_hb_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  nd_sched_t *s = arg;
  bool current = s->hb == call;
  if (current) s->hb = NULL;
  nd_reports_done(&s->reports, code == RPC_OK);
  if (code == RPC_OK || !current) return;
  if (!s->stopping) fd_log_warn("heartbeat: %s %s", rpc_code_name(code), msg ? msg : "");
  if (code == RPC_NOT_FOUND || code == RPC_FAILED_PRECONDITION) s->registered = false;
  /* a standby, or a leader that stopped answering (paused, cut off) */
  if (code == RPC_UNAVAILABLE) refused(s, msg);
  else if (code == RPC_DEADLINE_EXCEEDED) switch_sched(s, "heartbeat timed out", NULL);
}

/* The stalls so far, in ms, on req (pointing into s until the next call). */
static void stalls_fill(nd_sched_t *s, Sched__HeartbeatRequest *req) {
  nd_stalls_t *st = &s->stalls;
  memset(st, 0, sizeof(*st));
  s->cbs.stalls(s->cbs.arg, st);
  req->blocked_ms = st->window_ns / 1000000u;
  req->blocked_pool_ms = st->pool_ns / 1000000u;
  req->blocked_socket_ms = st->socket_ns / 1000000u;
  req->blocked_upload_cap_ms = st->upload_cap_ns / 1000000u;
  req->credit_write_ms = st->credit_write_ns / 1000000u;
  req->credit_sync_ms = st->credit_sync_ns / 1000000u;
  FD_ASSERT(st->n_child <= ND_CHILD_STALLS_MAX);
  for (uint32_t i = 0; i < st->n_child; i++) {
    sched__child_stall__init(&s->child[i]);
    s->child[i].node_id = (char *)st->child[i].id;
    s->child[i].blocked_ms = st->child[i].blocked_ns / 1000000u;
    s->child_ptr[i] = &s->child[i];
  }
  req->n_child_stalls = st->n_child;
  req->child_stalls = st->n_child ? s->child_ptr : NULL;
}

static void send_heartbeat(nd_sched_t *s) {
  size_t k = s->cbs.held ? s->cbs.held(s->cbs.arg, s->held, ND_FILES_MAX) : 0;
  FD_ASSERT(k <= ND_FILES_MAX);
  for (size_t i = 0; i < k; i++) s->held_ptr[i] = &s->held[i];
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  req.node_id = s->id;
  req.epoch = s->epoch;
  req.n_versions = k;
  req.versions = k ? s->held_ptr : NULL;
  if (s->cbs.counters) s->cbs.counters(s->cbs.arg, &req.rx_bytes, &req.tx_bytes);
  if (s->cbs.stalls) stalls_fill(s, &req);
  nd_reports_fill(&s->reports, &req);
  rpc_call_cbs_t cbs = {on_hb_msg, NULL, NULL, on_hb_done};
  s->hb = rpc_start_sched_heartbeat(s->conn, &req, ND_SCHED_CALL_MS, &cbs, s);
  if (!s->hb) nd_reports_done(&s->reports, false);
}

/* ---- registration --------------------------------------------------------------- */

static void on_reg_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_sched_t *s = arg;
  if (m->descriptor != &sched__register_reply__descriptor) return;
  const Sched__RegisterReply *r = (const Sched__RegisterReply *)m;
  if (fenced(s, r->leader_seq, "a registration")) return; /* not registered: moves on */
  s->epoch = r->epoch;
  if (r->heartbeat_ms) s->heartbeat_ms = r->heartbeat_ms;
  if (s->cbs.origins) s->cbs.origins(s->cbs.arg, r->origins, r->n_origins);
  s->registered = true;
}

static void on_reg_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  nd_sched_t *s = arg;
  if (s->reg != call) return; /* a link already moved on */
  s->reg = NULL;
  if (code != RPC_OK || !s->registered) {
    if (!s->stopping)
      fd_log_warn("register with fdsched: %s %s", rpc_code_name(code), msg ? msg : "");
    s->registered = false;
    s->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
    if (code == RPC_UNAVAILABLE) refused(s, msg);
    else if (code == RPC_DEADLINE_EXCEEDED) switch_sched(s, "registration timed out", NULL);
    return;
  }
  if (s->n_addrs > 1)
    fd_log_info("registered with fdsched %s:%u (epoch %llu, leader sequence %llu)", s->addr,
                s->port, (unsigned long long)s->epoch, (unsigned long long)s->leader_seq);
  else
    fd_log_info("registered with fdsched (epoch %llu)", (unsigned long long)s->epoch);
  Sched__WatchOrdersRequest w = SCHED__WATCH_ORDERS_REQUEST__INIT;
  w.node_id = s->id;
  w.epoch = s->epoch;
  rpc_call_cbs_t cbs = {on_order_msg, NULL, NULL, on_watch_done};
  s->watch = rpc_start_sched_watch_orders(s->conn, &w, RPC_TIMEOUT_MS_MAX, &cbs, s);
  s->next_hb_ms = 0;
}

static void send_register(nd_sched_t *s) {
  Sched__NodeInfo info = SCHED__NODE_INFO__INIT;
  info.node_id = s->id;
  info.region = s->region;
  info.zone = s->zone;
  info.addr = s->listen_addr;
  info.port = s->listen_port;
  info.nic_bps = s->nic_bps;
  info.upload_bps_max = s->upload_bps_max;
  info.download_bps_max = s->download_bps_max;
  info.origin = s->origin;
  Sched__RegisterRequest req = SCHED__REGISTER_REQUEST__INIT;
  req.node = &info;
  rpc_call_cbs_t cbs = {on_reg_msg, NULL, NULL, on_reg_done};
  s->reg = rpc_start_sched_register(s->conn, &req, ND_SCHED_CALL_MS, &cbs, s);
  if (!s->reg) s->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
}

static void link_ready(rpc_conn_t *conn, void *arg) {
  (void)conn;
  ((nd_sched_t *)arg)->ready = true;
}

static void link_closed(rpc_conn_t *conn, int err, void *arg) {
  nd_sched_t *s = arg;
  if (s->conn != conn) return;
  if (!s->stopping) fd_log_warn("fdsched connection lost: %s", fd_strerror(err));
  link_reset(s);
  if (s->n_addrs > 1 && !s->stopping) { /* the next one, after ND_RETRY_MS */
    s->cur = (s->cur + 1) % s->n_addrs;
    snprintf(s->addr, sizeof(s->addr), "%s", s->addrs[s->cur]);
    s->port = s->ports[s->cur];
  }
}

void nd_sched_tick(nd_sched_t *s) {
  if (s->stopping || !nd_sched_configured(s)) return;
  if (s->deposed) {
    s->deposed = false;
    switch_sched(s, "it is a deposed leader", NULL);
  }
  uint64_t now = fd_now_ms();
  if (!s->conn) {
    if (now < s->retry_at_ms) return;
    static const rpc_conn_cbs_t cbs = {link_ready, link_closed};
    s->conn = rpc_connect(s->e, s->addr, s->port, &cbs, s);
    if (!s->conn) s->retry_at_ms = now + ND_RETRY_MS;
    return;
  }
  if (!s->ready) return;
  if (!s->registered) {
    if (!s->reg && now >= s->retry_at_ms) {
      if (s->watch) rpc_call_cancel(s->watch);
      send_register(s);
    }
    return;
  }
  if (!s->hb && now >= s->next_hb_ms) {
    s->next_hb_ms = now + s->heartbeat_ms;
    send_heartbeat(s);
  }
}

rpc_call_t *nd_sched_register_version(nd_sched_t *s, const uint8_t *menc, size_t menc_len,
                                      char **origins, size_t origins_n, Sched__VersionState state,
                                      const rpc_call_cbs_t *cbs, void *arg) {
  if (!s->conn || !s->ready) {
    errno = ENOTCONN;
    return NULL;
  }
  Sched__RegisterVersionRequest req = SCHED__REGISTER_VERSION_REQUEST__INIT;
  req.manifest.data = (uint8_t *)menc;
  req.manifest.len = menc_len;
  req.n_origins = origins_n;
  req.origins = origins;
  req.state = state;
  return rpc_start_sched_register_version(s->conn, &req, ND_REGISTER_VERSION_CALL_MS, cbs, arg);
}
