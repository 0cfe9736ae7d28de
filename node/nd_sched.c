/*
 * nd_sched.c — membership with fdsched: RegisterNode, a Heartbeat every
 * heartbeat_ms carrying what this node holds, the WatchOrders stream (orders
 * pushed at once), orders repeated on heartbeat replies, and, on the origin
 * head, RegisterVersion after a publish. A lost connection is re-made after
 * ND_RETRY_MS and the node registers again.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fd_error.h"
#include "nd_int.h"

static void sched_reset(nd_sched_t *s) {
  s->conn = NULL;
  s->ready = s->registered = false;
  s->watch = s->hb = s->reg = NULL;
  s->retry_at_ms = fd_now_ms() + ND_RETRY_MS;
}

static void on_order_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_node_t *n = arg;
  if (m->descriptor == &sched__order__descriptor && !n->origin)
    nd_order(n, (const Sched__Order *)m);
}

static void on_watch_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_node_t *n = arg;
  n->sched.watch = NULL;
  if (!n->stop) fd_log_warn("WatchOrders ended: %s %s", rpc_code_name(code), msg ? msg : "");
  n->sched.registered = false; /* register again, then watch again */
}

static void on_hb_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_node_t *n = arg;
  if (m->descriptor != &sched__heartbeat_reply__descriptor) return;
  const Sched__HeartbeatReply *r = (const Sched__HeartbeatReply *)m;
  nd_origins_learn(n, r->origins, r->n_origins);
  if (n->origin) return;
  for (size_t i = 0; i < r->n_orders; i++) nd_order(n, r->orders[i]);
}

static void on_hb_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_node_t *n = arg;
  n->sched.hb = NULL;
  nd_repair_hb_done(n, code == RPC_OK);
  if (code != RPC_OK) {
    fd_log_warn("heartbeat: %s %s", rpc_code_name(code), msg ? msg : "");
    if (code == RPC_NOT_FOUND || code == RPC_FAILED_PRECONDITION) n->sched.registered = false;
  }
}

static void on_reg_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  nd_node_t *n = arg;
  if (m->descriptor != &sched__register_reply__descriptor) return;
  const Sched__RegisterReply *r = (const Sched__RegisterReply *)m;
  n->sched.epoch = r->epoch;
  nd_origins_learn(n, r->origins, r->n_origins);
  if (r->heartbeat_ms) n->sched.heartbeat_ms = r->heartbeat_ms;
  n->sched.registered = true;
}

static void on_reg_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_node_t *n = arg;
  n->sched.reg = NULL;
  if (code != RPC_OK || !n->sched.registered) {
    fd_log_warn("register with fdsched: %s %s", rpc_code_name(code), msg ? msg : "");
    n->sched.registered = false;
    n->sched.retry_at_ms = fd_now_ms() + ND_RETRY_MS;
    return;
  }
  fd_log_info("registered with fdsched (epoch %" PRIu64 ")", n->sched.epoch);
  Sched__WatchOrdersRequest w = SCHED__WATCH_ORDERS_REQUEST__INIT;
  w.node_id = n->cfg.id;
  w.epoch = n->sched.epoch;
  rpc_call_cbs_t cbs = {on_order_msg, NULL, NULL, on_watch_done};
  n->sched.watch = rpc_start_sched_watch_orders(n->sched.conn, &w, RPC_TIMEOUT_MS_MAX, &cbs, n);
  n->sched.next_hb_ms = 0;
}

static void sched_ready(rpc_conn_t *conn, void *arg) {
  (void)conn;
  nd_node_t *n = arg;
  n->sched.ready = true;
}

static void sched_closed(rpc_conn_t *conn, int err, void *arg) {
  nd_node_t *n = arg;
  if (n->sched.conn != conn) return;
  if (!n->stop) fd_log_warn("fdsched connection lost: %s", fd_strerror(err));
  sched_reset(&n->sched);
}

static void send_register(nd_node_t *n) {
  Sched__NodeInfo info = SCHED__NODE_INFO__INIT;
  info.node_id = n->cfg.id;
  info.region = n->cfg.region;
  info.zone = n->cfg.zone;
  info.addr = n->listen_addr;
  info.port = n->port;
  info.nic_bps = n->cfg.nic_bps;
  info.origin = n->origin;
  Sched__RegisterRequest req = SCHED__REGISTER_REQUEST__INIT;
  req.node = &info;
  rpc_call_cbs_t cbs = {on_reg_msg, NULL, NULL, on_reg_done};
  n->sched.reg = rpc_start_sched_register(n->sched.conn, &req, 5000, &cbs, n);
  if (!n->sched.reg) n->sched.retry_at_ms = fd_now_ms() + ND_RETRY_MS;
}

static void send_heartbeat(nd_node_t *n) {
  Sched__VersionHeld held[2], *hp[2];
  size_t k = 0;
  nd_dl_t *d = &n->dl;
  if (!n->origin && d->state != ND_DL_IDLE && d->ver) {
    Sched__VersionHeld h = SCHED__VERSION_HELD__INIT;
    h.name = d->name;
    h.version = d->version;
    h.complete = d->state == ND_DL_DONE;
    h.chunks_present = d->ver->m->chunk_count -
                       (d->ver->complete ? 0 : st_version_missing(d->ver->sv));
    held[k] = h;
    hp[k] = &held[k];
    k++;
  }
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  req.node_id = n->cfg.id;
  req.epoch = n->sched.epoch;
  req.n_versions = k;
  req.versions = hp;
  req.rx_bytes = n->rx_bytes;
  req.tx_bytes = n->tx_bytes + nd_engines_tx_bytes(n); /* every engine's */
  nd_repair_hb_fill(n, &req);
  rpc_call_cbs_t cbs = {on_hb_msg, NULL, NULL, on_hb_done};
  n->sched.hb = rpc_start_sched_heartbeat(n->sched.conn, &req, 5000, &cbs, n);
}

void nd_sched_tick(nd_node_t *n) {
  nd_sched_t *s = &n->sched;
  uint64_t now = fd_now_ms();
  if (n->stop) return;
  if (!s->conn) {
    if (now < s->retry_at_ms) return;
    static const rpc_conn_cbs_t cbs = {sched_ready, sched_closed};
    s->conn = rpc_connect(n->e, s->addr, s->port, &cbs, n);
    if (!s->conn) s->retry_at_ms = now + ND_RETRY_MS;
    return;
  }
  if (!s->ready) return;
  if (!s->registered) {
    if (!s->reg && now >= s->retry_at_ms) {
      if (s->watch) rpc_call_cancel(s->watch);
      send_register(n);
    }
    return;
  }
  if (!s->hb && now >= s->next_hb_ms) {
    s->next_hb_ms = now + s->heartbeat_ms;
    send_heartbeat(n);
  }
}

/* Ends the heartbeat early when a download completes (the scheduler learns
 * at once instead of at the next period). */
void nd_sched_poke(nd_node_t *n) { n->sched.next_hb_ms = 0; }

/* ---- RegisterVersion (origin head) ------------------------------------------------ */

static void remember_uncommitted(nd_node_t *n, nd_ver_t *v);

static void on_regv_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_pub_t *p = arg;
  nd_node_t *n = p->n;
  int err = code == RPC_OK ? 0 : -EIO;
  if (err) {
    fd_log_warn("RegisterVersion: %s %s", rpc_code_name(code), msg ? msg : "");
    /* a refusal is final; anything else (fdsched away) is retried */
    if (code != RPC_ALREADY_EXISTS && code != RPC_FAILED_PRECONDITION)
      remember_uncommitted(n, p->sink.ver);
  } else {
    fd_log_info("%s v%" PRIu64 " committed with fdsched", p->sink.ver->name, p->sink.ver->version);
  }
  nd_origin_registered(n, p, err);
}

static void on_state_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)arg;
  if (code != RPC_OK)
    fd_log_warn("RegisterVersion (pending/aborted): %s %s", rpc_code_name(code), msg ? msg : "");
}

static rpc_call_t *start_regv(nd_node_t *n, const nd_ver_t *v, char **ids, uint32_t ids_n,
                              Sched__VersionState state, const rpc_call_cbs_t *cbs, void *arg) {
  nd_sched_t *s = &n->sched;
  if (!s->conn || !s->ready) {
    errno = ENOTCONN;
    return NULL;
  }
  Sched__RegisterVersionRequest req = SCHED__REGISTER_VERSION_REQUEST__INIT;
  req.manifest.data = v->menc;
  req.manifest.len = v->menc_len;
  req.n_origins = ids_n;
  req.origins = ids;
  req.state = state;
  return rpc_start_sched_register_version(s->conn, &req, 10000, cbs, arg);
}

void nd_sched_version_state(nd_node_t *n, const nd_ver_t *v, bool aborted) {
  char *ids[ND_ORIGINS_MAX];
  for (uint32_t i = 0; i < n->origins_n; i++)
    ids[i] = n->origins[i].id;
  rpc_call_cbs_t cbs = {NULL, NULL, NULL, on_state_done};
  Sched__VersionState st =
      aborted ? SCHED__VERSION_STATE__VERSION_ABORTED : SCHED__VERSION_STATE__VERSION_PENDING;
  if (!start_regv(n, v, ids, n->origins_n, st, &cbs, n))
    fd_log_warn("%s v%" PRIu64 ": cannot tell fdsched the publish %s: %s", v->name, v->version,
                aborted ? "failed" : "began", fd_strerror(-errno));
}

/* ---- commits fdsched did not confirm: retried until it does ---- */

static void on_retry_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  struct nd_uncommitted *u = arg;
  u->busy = false;
  if (code != RPC_OK) {
    fd_log_warn("%s v%" PRIu64 ": commit with fdsched: %s %s (retried)", u->ver->name,
                u->ver->version, rpc_code_name(code), msg ? msg : "");
    return;
  }
  fd_log_info("%s v%" PRIu64 " committed with fdsched (retry)", u->ver->name, u->ver->version);
  nd_ver_put(u->n, u->ver);
  u->ver = NULL;
}

static void remember_uncommitted(nd_node_t *n, nd_ver_t *v) {
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    struct nd_uncommitted *u = &n->sched.uncommitted[i];
    if (u->ver == v) return;
    if (u->ver) continue;
    *u = (struct nd_uncommitted){.n = n, .ver = v};
    v->users++;
    return;
  }
  fd_log_error("%s v%" PRIu64 ": too many unconfirmed commits; this one is not retried", v->name,
               v->version);
}

void nd_sched_commit_retry(nd_node_t *n) {
  uint64_t now = fd_now_ms();
  if (now < n->sched.commit_retry_ms || !n->sched.ready) return;
  n->sched.commit_retry_ms = now + 1000;
  char *ids[ND_ORIGINS_MAX];
  for (uint32_t i = 0; i < n->origins_n; i++)
    ids[i] = n->origins[i].id;
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    struct nd_uncommitted *u = &n->sched.uncommitted[i];
    if (!u->ver || u->busy) continue;
    rpc_call_cbs_t cbs = {NULL, NULL, NULL, on_retry_done};
    u->busy = start_regv(n, u->ver, ids, n->origins_n, SCHED__VERSION_STATE__VERSION_COMMITTED,
                         &cbs, u) != NULL;
  }
}

void nd_sched_register_version(nd_node_t *n, nd_pub_t *p) {
  char *ids[ND_ORIGINS_MAX];
  for (uint32_t i = 0; i < p->chain.held_n; i++)
    ids[i] = p->chain.held[i];
  rpc_call_cbs_t cbs = {NULL, NULL, NULL, on_regv_done};
  if (!start_regv(n, p->sink.ver, ids, p->chain.held_n, SCHED__VERSION_STATE__VERSION_COMMITTED,
                  &cbs, p)) {
    int err = -errno;
    remember_uncommitted(n, p->sink.ver);
    nd_origin_registered(n, p, err);
  }
}

void nd_sched_stop(nd_node_t *n) {
  if (n->sched.conn) rpc_conn_close(n->sched.conn);
}
