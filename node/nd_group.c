/*
 * nd_group.c — role origin: who is the head, in which order the chain runs,
 * and its epoch (issue 22).
 *
 * Without ZooKeeper the chain is node.origins as configured, head first,
 * epoch 0, forever: a dead head stays the head until it restarts.
 *
 * With ZooKeeper (node.zookeeper), the host's session (common/fd_zk.h) makes
 * this origin a member of `origins/members` (an ephemeral-sequential znode
 * tagged id@addr:port: membership, the others' addresses, and the election:
 * the oldest live member is elected) and watches `origins/chain`, one znode
 * holding "epoch E" and the chain's order. Only the elected member changes
 * it, by a conditional update (the version it read): when the chain's head
 * is not itself, it writes epoch E+1 with itself first and the old order
 * after it (the old head goes to the end: restarted, it rejoins as the
 * tail). Every origin applies the order and the epoch it reads; a higher
 * epoch read anywhere (the znode, or a chain message) is never given back.
 *
 * Fencing: every chain message (AppendChanges, Replicate) carries the
 * sender's epoch, and an origin refuses one older than its own, and every
 * chain message at all until it has read the chain znode once. A head that
 * was deposed while it was paused (its session expired) and wakes up still
 * sends with its old epoch: its successors refuse, so nothing it orders
 * reaches min_durable_origins and nothing is acknowledged or committed.
 * Its own view says it does not lead as soon as its session is gone or
 * disconnected (fd_zk_view's leader), so it also stops taking changes.
 *
 * A newly elected head orders nothing before it compared its logs with the
 * next origin's (the link's catch-up: records the next holds that it lacks
 * are taken back; the chain's order means the next holds no record the
 * head does not, so this is only the records in flight), and writers that
 * retry a change it already holds get that change's place, not a second
 * copy (nd_dedup.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "fd_zk.h"
#include "nd_origin_int.h"

#define CHAIN_ZNODE "origins/chain"

/* "epoch E\nchain a,b,c\nhead_since H\n" (H: the epoch its head was elected
 * in, at most E): an id is 1..FD_NAME_LEN_MAX printable bytes,
 * none of " ,@/~", each once. */
static bool id_ok(const char *id, size_t len) {
  if (!len || len > FD_NAME_LEN_MAX) return false;
  for (size_t i = 0; i < len; i++)
    if (id[i] <= ' ' || id[i] > '~' || strchr(",@/~", id[i])) return false;
  return true;
}

int nd_chain_parse(const char *text, nd_chain_view_t *c) {
  memset(c, 0, sizeof(*c));
  if (strncmp(text, "epoch ", 6) != 0 || text[6] < '1' || text[6] > '9') return -EINVAL;
  char *end;
  errno = 0;
  c->epoch = strtoull(text + 6, &end, 10);
  if (errno || !c->epoch || strncmp(end, "\nchain ", 7) != 0) return -EINVAL;
  const char *l = end + 7;
  for (;;) {
    size_t len = strcspn(l, ",\n");
    if (!id_ok(l, len) || c->n == ND_ORIGINS_MAX) return -EINVAL;
    memcpy(c->ids[c->n], l, len);
    c->ids[c->n][len] = 0;
    for (uint32_t i = 0; i < c->n; i++)
      if (!strcmp(c->ids[i], c->ids[c->n])) return -EINVAL;
    c->n++;
    l += len;
    if (*l != ',') break;
    l++;
  }
  if (strncmp(l, "\nhead_since ", 12) != 0 || l[12] < '1' || l[12] > '9') return -EINVAL;
  errno = 0;
  c->head_since = strtoull(l + 12, &end, 10);
  if (errno || c->head_since > c->epoch) return -EINVAL;
  return (end[0] == '\n' && end[1] == 0) || end[0] == 0 ? 0 : -EINVAL;
}

int nd_chain_format(const nd_chain_view_t *c, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "epoch %" PRIu64 "\nchain ", c->epoch);
  for (uint32_t i = 0; i < c->n && n > 0 && (size_t)n < cap; i++)
    n += snprintf(buf + n, cap - (size_t)n, "%s%s", i ? "," : "", c->ids[i]);
  if (n > 0 && (size_t)n < cap)
    n += snprintf(buf + n, cap - (size_t)n, "\nhead_since %" PRIu64 "\n", c->head_since);
  return n > 0 && (size_t)n < cap ? n : -EMSGSIZE;
}

static bool chain_has(const nd_chain_view_t *c, const char *id) {
  for (uint32_t i = 0; i < c->n; i++)
    if (!strcmp(c->ids[i], id)) return true;
  return false;
}

static void chain_add(nd_chain_view_t *c, const char *id) {
  if (c->n < ND_ORIGINS_MAX && !chain_has(c, id))
    snprintf(c->ids[c->n++], sizeof(c->ids[0]), "%s", id);
}

/* The chain the elected origin wants: the live members in election order
 * (itself first: it is elected; so the next in the chain is the next to be
 * elected), then the others in the order the chain had them (a dead head
 * goes behind every live member: restarted, it rejoins as the tail), then
 * every configured origin not listed. */
static void chain_want(const nd_origin_t *og, const nd_chain_view_t *cur, bool have,
                       const fd_zk_view_t *v, nd_chain_view_t *out) {
  memset(out, 0, sizeof(*out));
  out->epoch = (have ? cur->epoch : 0) + 1;
  for (uint32_t i = 0; i < v->members_n; i++) {
    char id[FD_NAME_LEN_MAX + 1];
    const char *at = strchr(v->members[i].tag, '@');
    size_t len = at ? (size_t)(at - v->members[i].tag) : strlen(v->members[i].tag);
    if (!len || len > FD_NAME_LEN_MAX) continue;
    memcpy(id, v->members[i].tag, len);
    id[len] = 0;
    chain_add(out, id);
  }
  for (uint32_t i = 0; have && i < cur->n; i++) chain_add(out, cur->ids[i]);
  for (uint32_t i = 0; i < og->origins->n; i++) chain_add(out, og->origins->o[i].id);
  /* the head's reign goes on through a reorder; a new head begins one */
  out->head_since = have && !strcmp(cur->ids[0], out->ids[0]) ? cur->head_since : out->epoch;
}

static bool chain_same(const nd_chain_view_t *a, const nd_chain_view_t *b) {
  if (a->n != b->n || a->head_since != b->head_since) return false;
  for (uint32_t i = 0; i < a->n; i++)
    if (strcmp(a->ids[i], b->ids[i]) != 0) return false;
  return true;
}

/* Becoming head: the calls of the origin before (there is none now) end;
 * losing it: the writers waiting end (their changes' outcome is unknown to
 * them: they retry on the new head, which knows them) and the queued ones
 * were never ordered. */
static void role_changed(nd_origin_t *og, bool head) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    if (!w->used) continue;
    if (head) {
      while (w->cw_len) {
        nd_cwait_t *cw = &w->cw[w->cw_head];
        if (cw->call) rpc_call_finish(cw->call, RPC_UNAVAILABLE, "this origin is the head now");
        w->cw_head = (w->cw_head + 1) % ND_CHANGE_CALLS_MAX;
        w->cw_len--;
      }
    } else {
      while (w->ww_len) {
        nd_wwait_t *ww = &w->ww[w->ww_head];
        if (ww->call) rpc_call_finish(ww->call, RPC_UNAVAILABLE, "no longer the head");
        w->ww_head = (w->ww_head + 1) % ND_WRITES_INFLIGHT_MAX;
        w->ww_len--;
      }
    }
  }
  if (!head) nd_writes_stop(og);
}

static void chain_apply(nd_origin_t *og, const nd_chain_view_t *c) {
  if (c->epoch < og->epoch) return; /* an older read than what this origin follows */
  bool was_head = og->origins->self == 0 && og->epoch_known;
  bool first = !og->epoch_known;
  uint64_t old = og->epoch;
  const char *ids[ND_ORIGINS_MAX];
  for (uint32_t i = 0; i < c->n; i++) ids[i] = c->ids[i];
  /* The link's state names origins by their index: it ends before the
   * order moves (its calls end naming the origin they were to), and starts
   * again after. The order can move within an epoch this origin already
   * knows: a chain message may have told it the epoch before ZooKeeper's
   * order reached it (nd_group_saw_epoch), and a link kept across that
   * would go on to whoever takes its old index — itself, once. */
  bool epoch_moves = first || c->epoch != og->epoch;
  bool rechain = epoch_moves || nd_origins_reorder_moves(og->origins, ids, c->n);
  if (rechain) nd_link_rechain(og);
  bool moved = nd_origins_reorder(og->origins, ids, c->n);
  if (rechain) nd_link_forgive(og); /* indexes moved: nobody is left out */
  og->epoch = c->epoch;
  og->epoch_known = true;
  og->chain = *c;
  if (!moved && old == c->epoch && !first) return;
  char list[ND_ORIGINS_MAX * (FD_NAME_LEN_MAX + 1) + 1] = "";
  for (uint32_t i = 0, n = 0; i < og->origins->n; i++)
    n += (uint32_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? "," : "",
                            og->origins->o[i].id);
  fd_log_info("origin chain: epoch %" PRIu64 ", %s (head %s; this origin %s)", c->epoch, list,
              og->origins->o[0].id, og->origins->self == 0 ? "leads" : "follows");
  bool head = og->origins->self == 0;
  if (head && !was_head) {
    og->link.caught_up_once = false; /* compare with the next origin before ordering */
    fd_log_info("origin %s is the head from epoch %" PRIu64 ": it orders changes once it has "
                "compared its logs with the next origin's", og->id, c->epoch);
  }
  if (head != was_head && !first) role_changed(og, head);
}

void nd_group_saw_epoch(nd_origin_t *og, uint64_t epoch) {
  if (epoch > og->epoch) {
    fd_log_info("origin chain: epoch %" PRIu64 " seen on a chain message (this origin had %" PRIu64
                "); the order follows from ZooKeeper",
                epoch, og->epoch);
    og->epoch = epoch;
  }
}

static void learn_addresses(nd_origin_t *og, const fd_zk_view_t *v) {
  for (uint32_t i = 0; i < v->members_n; i++) {
    char id[FD_NAME_LEN_MAX + 1], addr[SCH_ADDRESS_LEN_MAX];
    const char *tag = v->members[i].tag, *at = strchr(tag, '@');
    uint16_t port;
    if (!at || (size_t)(at - tag) > FD_NAME_LEN_MAX) continue;
    memcpy(id, tag, (size_t)(at - tag));
    id[at - tag] = 0;
    if (nd_parse_hostport(at + 1, addr, sizeof(addr), &port) == 0)
      nd_origins_set_addr(og->origins, id, addr, port);
  }
}

/* A loop turn that came this long after the one before (a stall: SIGSTOP,
 * a VM pause, swap) may have let the session expire unseen. */
static uint64_t stall_ms(const nd_origin_t *og) {
  uint32_t s = fd_zk_session_ms(og->zk);
  return (s ? s : ND_ZK_SESSION_MS_DEFAULT) / 3;
}

bool nd_group_fresh(const nd_origin_t *og) {
  return !og->zk || (!og->unconfirmed && fd_now_ms() - og->tick_ms < stall_ms(og));
}

void nd_group_tick(nd_origin_t *og) {
  if (!og->zk) {
    og->leads = og->origins->self == 0;
    fd_counter_set(&og->m.leads, og->leads);
    return;
  }
  uint64_t now = fd_now_ms();
  if (og->tick_ms && now - og->tick_ms >= stall_ms(og) && !og->unconfirmed) {
    fd_log_warn("origin %s: the loop stalled %" PRIu64 " ms: its ZooKeeper session is "
                "confirmed before it orders anything again", og->id, now - og->tick_ms);
    og->unconfirmed = true;
  }
  og->tick_ms = now;
  bool was_unconfirmed = og->unconfirmed;
  if (og->unconfirmed) {
    /* one round trip: answered only while the session (and so the
     * election's member znode) lives; refused at once when disconnected */
    char probe[16];
    int rc = fd_zk_get_sync(og->zk, "origins/chain", probe, sizeof(probe));
    if (rc >= 0 || rc == -ENOENT || rc == -EMSGSIZE) {
      og->unconfirmed = false;
      fd_log_info("origin %s: ZooKeeper session confirmed after the stall", og->id);
    }
  }
  /* Every loop turn comes here: the session's state is copied only when
   * it changed (or a claim waits for its answer). */
  uint64_t changes = fd_zk_changes(og->zk);
  if (changes == og->zk_changes && !og->claiming && was_unconfirmed == og->unconfirmed) return;
  og->zk_changes = changes;
  fd_zk_view_t *v = &og->zk_view;
  fd_zk_view(og->zk, v);
  if (v->members_gen != og->members_gen) {
    og->members_gen = v->members_gen;
    learn_addresses(og, v);
  }
  char buf[FD_ZK_NODE_MAX + 1];
  int32_t zver = -1;
  uint64_t gen = 0;
  int n = fd_zk_node(og->zk, buf, FD_ZK_NODE_MAX, &zver, &gen);
  nd_chain_view_t cur;
  bool have = false;
  if (n >= 0) {
    buf[n] = 0;
    if (nd_chain_parse(buf, &cur) == 0) have = true;
    else if (gen != og->chain_gen) fd_log_error("origin chain: cannot read %s: \"%s\"", CHAIN_ZNODE, buf);
  }
  if (gen != og->chain_gen) {
    og->chain_gen = gen;
    if (have) chain_apply(og, &cur);
    else if (n == -ENOENT && !og->epoch_known) og->epoch_known = true; /* none yet: epoch 0 */
  }
  if (og->claiming) {
    int32_t nv;
    int rc = fd_zk_cas_result(og->zk, &nv);
    if (rc != -EINPROGRESS) {
      og->claiming = false;
      if (rc == 0) chain_apply(og, &og->claim);
      else
        fd_log_warn("origin chain: claiming epoch %" PRIu64 " failed (%s): read again",
                    og->claim.epoch, fd_strerror(rc));
    }
  } else if (v->leader && og->epoch_known && !og->stopping && v->self == 0 &&
             ((n == -ENOENT && !og->epoch) || (have && cur.epoch >= og->epoch)) &&
             (chain_want(og, &cur, have, v, &og->claim), !have || !chain_same(&og->claim, &cur))) {
    /* (a read older than this origin's own claim claims nothing) */
    char text[FD_ZK_NODE_MAX];
    int len = nd_chain_format(&og->claim, text, sizeof(text));
    int rc = len < 0 ? len : fd_zk_cas(og->zk, text, (size_t)len, have ? zver : -1);
    if (rc == 0) {
      og->claiming = true;
      fd_log_info("origin chain: elected; writing epoch %" PRIu64
                  " (the chain's head was %s; the live members' order changed)",
                  og->claim.epoch, have ? cur.ids[0] : "none");
    }
  }
  bool leads = v->leader && !og->unconfirmed && og->epoch_known && og->chain.n && !strcmp(og->chain.ids[0], og->id) &&
               og->chain.epoch == og->epoch && og->origins->self == 0;
  if (leads != og->leads) {
    if (leads) fd_log_info("origin %s leads the chain (epoch %" PRIu64 ")", og->id, og->epoch);
    else
      fd_log_warn("origin %s stops leading: %s", og->id,
                  v->conn != FD_ZK_CONNECTED ? "ZooKeeper unreachable" : "no longer elected");
    og->leads = leads;
  }
  fd_counter_set(&og->m.leads, og->leads);
  fd_counter_set(&og->m.epoch, og->epoch);
}

bool nd_group_chain_ok(nd_origin_t *og, uint64_t epoch, rpc_call_t *call, const char *what) {
  char msg[200];
  if (og->zk && !og->epoch_known) {
    rpc_call_finish(call, RPC_UNAVAILABLE, "this origin has not read the chain's epoch yet");
    return false;
  }
  if (epoch < og->epoch) {
    snprintf(msg, sizeof(msg), "stale epoch %" PRIu64 ": the chain is at epoch %" PRIu64
             " (the sender is no longer its head's chain)", epoch, og->epoch);
    fd_log_warn("%s refused: %s", what, msg);
    fd_counter_add(&og->m.stale_refused, 1);
    rpc_call_finish(call, RPC_FAILED_PRECONDITION, msg);
    return false;
  }
  nd_group_saw_epoch(og, epoch);
  return true;
}

/* A head that may not order says so in its log too, at most once a second
 * (with how many it refused since). */
static void refused_log(nd_origin_t *og, const char *why) {
  og->refused_n++;
  uint64_t now = fd_now_ms();
  if (now < og->refused_log_ms) return;
  og->refused_log_ms = now + 1000;
  fd_log_warn("origin %s refused %" PRIu64 " change(s) or publish(es): %s", og->id, og->refused_n,
              why);
  og->refused_n = 0;
}

int nd_group_not_head(nd_origin_t *og, rpc_call_t *call) {
  char msg[FD_NAME_LEN_MAX + SCH_ADDRESS_LEN_MAX + 160];
  const nd_origins_t *os = og->origins;
  if (os->self == 0 && og->leads && !nd_group_fresh(og)) {
    refused_log(og, "its loop stalled, its ZooKeeper session is not confirmed yet");
    return rpc_call_finish(call, RPC_UNAVAILABLE,
                           "the head's loop stalled: its ZooKeeper session is being confirmed; "
                           "try again shortly");
  }
  if (os->self == 0 && og->zk && !og->leads) {
    snprintf(msg, sizeof(msg),
             "no head: origin %s cannot be sure it leads (ZooKeeper %s); changes wait for "
             "ZooKeeper's quorum",
             og->id, fd_zk_conn_name(og->zk_view.conn));
    refused_log(og, msg);
    return rpc_call_finish(call, RPC_UNAVAILABLE, msg);
  }
  if (os->self != 0 && os->o[0].port)
    snprintf(msg, sizeof(msg), "not the head; the head is %s@%s:%u", os->o[0].id, os->o[0].addr,
             os->o[0].port);
  else
    snprintf(msg, sizeof(msg), "not the head; no head is known");
  return rpc_call_finish(call, RPC_FAILED_PRECONDITION, msg);
}

static int h_head(rpc_call_t *call, const Origin__HeadRequest *req, void *ctx) {
  (void)req;
  nd_origin_t *og = ctx;
  const nd_origins_t *os = og->origins;
  Origin__HeadReply r = ORIGIN__HEAD_REPLY__INIT;
  char head[FD_NAME_LEN_MAX + SCH_ADDRESS_LEN_MAX + 8] = "";
  if (os->o[0].port)
    snprintf(head, sizeof(head), "%s@%s:%u", os->o[0].id, os->o[0].addr, os->o[0].port);
  char *ids[ND_ORIGINS_MAX];
  for (uint32_t i = 0; i < os->n; i++) ids[i] = (char *)os->o[i].id;
  r.id = og->id;
  r.head = head;
  r.epoch = og->epoch;
  r.n_chain = os->n;
  r.chain = ids;
  r.zookeeper = og->zk ? (char *)fd_zk_conn_name(og->zk_view.conn) : (char *)"";
  r.leads = og->leads;
  int rc = rpc_call_send(call, &r.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

int nd_group_register(nd_origin_t *og) {
  if (og->zk) {
    int rc = fd_zk_watch(og->zk, CHAIN_ZNODE);
    if (rc) return rc;
  } else {
    og->epoch_known = true; /* epoch 0, the static chain */
  }
  return rpc_serve_origin_head(og->e, h_head, og);
}

/* For tests/node/test_origins.c, which knows no origin internals. */
int nd_chain_parse_for_test(const char *text, uint64_t *epoch, uint32_t *n, char ids[][16]);
int nd_chain_parse_for_test(const char *text, uint64_t *epoch, uint32_t *n, char ids[][16]) {
  nd_chain_view_t c;
  int rc = nd_chain_parse(text, &c);
  if (rc) return rc;
  *epoch = c.epoch;
  *n = c.n;
  for (uint32_t i = 0; i < c.n && i < 8; i++) snprintf(ids[i], 16, "%.15s", c.ids[i]);
  return 0;
}
