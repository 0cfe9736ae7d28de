/*
 * nd_publish.c — role origin: the reception of a Publish (the head, from
 * fdadmin, admin role only) or a Replicate (the next origins, from the one
 * before them), through the chunk plane's sink.
 *
 * The moment a reception has begun its version, the head tells fdsched
 * (PENDING: the nodes start fetching, verifying every chunk against the
 * signed manifest, but make nothing current) and every origin opens the
 * chain to the next (nd_chain.c); each chunk goes down the chain as it
 * arrives. An origin answers its sender only once it holds the version
 * durably itself (fdatasync, rename, fsync) AND the rest of the chain has
 * answered; each answer lists the origins that hold the version, so the
 * head's reply, and the origins it commits with fdsched (nd_commit.c), are
 * exactly the ones holding it durably. A reception that fails (the stream
 * breaks, chunks are missing, a disk error) aborts: its chain is cancelled
 * and the head tells fdsched the version is ABORTED.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fd_error.h"
#include "nd_origin_int.h"

static nd_pub_t *pub_new(nd_origin_t *og, rpc_call_t *call, bool repl) {
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    nd_pub_t *p = &og->pubs[i];
    if (p->used || p->sink.puts || p->chain.active) continue;
    nd_sink_t sink = p->sink;
    memset(p, 0, sizeof(*p));
    p->sink = sink;
    nd_sink_reset(&p->sink);
    p->used = true;
    p->is_repl = repl;
    p->og = og;
    p->call = call;
    nd_sink_start(&p->sink, call);
    p->sink.link = repl ? ND_PEER_ORIGIN : ND_PEER_PUBLISH;
    return p;
  }
  return NULL;
}

static void pub_release(nd_pub_t *p) {
  if (p->sink.ver) {
    nd_ver_put(p->sink.ver);
    p->sink.ver = NULL;
  }
  p->used = false;
}

/* The publish failed: its chain stops, and fdsched hears it was aborted. */
static void pub_abort(nd_pub_t *p) {
  nd_chain_abort(&p->chain);
  nd_ver_t *v = p->sink.ver;
  if (!v) return;
  if (p->announced) {
    p->announced = false;
    nd_commit_state(p->og, v, true);
  }
  nd_ver_abort(p->og->p, v->name, v->version);
}

static void pub_answer(nd_pub_t *p, int err) {
  nd_chain_t *c = &p->chain;
  if (p->call) {
    char *ids[ND_ORIGINS_MAX];
    for (uint32_t i = 0; i < c->held_n; i++) ids[i] = c->held[i];
    if (err) {
      rpc_call_finish(p->call, rpc_code_from_errno(err), fd_strerror(err));
    } else if (p->is_repl) {
      Origin__ReplicateReply r = ORIGIN__REPLICATE_REPLY__INIT;
      r.durable = true;
      r.n_origins = c->held_n;
      r.origins = ids;
      rpc_call_send(p->call, &r.base);
      rpc_call_finish(p->call, RPC_OK, NULL);
    } else {
      Origin__PublishReply r = ORIGIN__PUBLISH_REPLY__INIT;
      r.version = p->sink.ver->version;
      r.n_origins = c->held_n;
      r.origins = ids;
      rpc_call_send(p->call, &r.base);
      rpc_call_finish(p->call, RPC_OK, NULL);
    }
  }
  p->finishing = false;
  if (!p->call) pub_release(p);
}

void nd_pub_committed(nd_pub_t *p, int err) {
  if (err)
    fd_log_warn("RegisterVersion with fdsched failed (%s); acknowledging anyway: the origins "
                "hold it", fd_strerror(err));
  pub_answer(p, 0);
}

/* Answers once this origin holds the version and the chain behind it has
 * answered. */
static void pub_maybe_done(nd_pub_t *p) {
  nd_chain_t *c = &p->chain;
  if (!p->self_done || !p->chain_over) return;
  p->self_done = false;
  if (p->chain_err) {
    pub_abort(p);
    pub_answer(p, p->chain_err);
    return;
  }
  char list[ND_ORIGINS_MAX * (FD_NAME_LEN_MAX + 1) + 1] = "";
  size_t ll = 0;
  for (uint32_t i = 0; i < c->held_n && ll < sizeof(list); i++)
    ll += (size_t)snprintf(list + ll, sizeof(list) - ll, "%s%s", i ? "," : "", c->held[i]);
  fd_log_info("%s v%" PRIu64 " held durably by %u origin(s): %s", p->sink.ver->name,
              p->sink.ver->version, c->held_n, list);
  if (!p->is_repl && c->held_n < p->og->min_durable) {
    fd_log_error("%s v%" PRIu64 ": held by %u origin(s), fewer than min_durable_origins %u: "
                 "the publish fails",
                 p->sink.ver->name, p->sink.ver->version, c->held_n, p->og->min_durable);
    char msg[160];
    snprintf(msg, sizeof(msg), "held by %u origin(s), fewer than min_durable_origins %u",
             c->held_n, p->og->min_durable);
    pub_abort(p);
    if (p->call) rpc_call_finish(p->call, RPC_FAILED_PRECONDITION, msg);
    p->finishing = false;
    if (!p->call) pub_release(p);
    return;
  }
  if (!p->is_repl && nd_sched_configured(p->og->sched)) {
    p->announced = false;
    nd_commit_version(p);
    return;
  }
  pub_answer(p, 0);
}

void nd_pub_chain_done(nd_pub_t *p, int err) {
  p->chain_over = true;
  p->chain_err = err;
  pub_maybe_done(p);
}

static void on_pub_complete(void *arg, int res) {
  nd_pub_t *p = arg;
  if (res) {
    pub_abort(p);
    pub_answer(p, res);
    return;
  }
  p->self_done = true;
  pub_maybe_done(p);
}

/* From the tick: a stream that ended waits for its chunks to land. */
static void pub_try_finish(nd_pub_t *p) {
  if (p->used && !p->call && !p->finishing && !p->sink.puts) {
    pub_release(p);
    return;
  }
  if (!p->used || !p->ended || p->finishing || p->sink.puts) return;
  nd_ver_t *v = p->sink.ver;
  if (!v) return;
  uint32_t missing = v->complete ? 0 : st_version_missing(v->sv);
  if (missing) {
    p->ended = false;
    if (p->sink.err) {
      pub_abort(p);
      if (p->call) rpc_call_finish(p->call, rpc_code_from_errno(p->sink.err), "chunks failed");
      return;
    }
    fd_log_warn("%s v%" PRIu64 ": stream ended with %u chunks missing", v->name, v->version,
                missing);
    pub_abort(p);
    if (p->call) rpc_call_finish(p->call, RPC_FAILED_PRECONDITION, "chunks missing");
    return;
  }
  p->finishing = true;
  if (v->complete) {
    on_pub_complete(p, 0);
    return;
  }
  int rc = nd_ver_complete(p->og->p, v, on_pub_complete, p);
  if (rc == -EAGAIN || rc == -EINPROGRESS) {
    p->finishing = false; /* operations in flight: next tick */
    return;
  }
  if (rc) {
    pub_abort(p);
    pub_answer(p, rc);
  }
}

void nd_pub_tick(nd_origin_t *og) {
  for (uint32_t i = 0; i < ND_PUBS_MAX; i++) {
    nd_chain_tick(&og->pubs[i].chain);
    pub_try_finish(&og->pubs[i]);
  }
}

/* ---- the stream ------------------------------------------------------------------ */

static void pub_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  nd_pub_t *p = arg;
  nd_sink_data(&p->sink, call, buf, len);
}

static void pub_closed(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  nd_pub_t *p = arg;
  if (code != RPC_OK)
    fd_log_warn("%s ended: %s %s", p->is_repl ? "replicate" : "publish", rpc_code_name(code),
                msg ? msg : "");
  if (code != RPC_OK && !p->finishing) pub_abort(p); /* broke before every chunk landed */
  nd_sink_end(&p->sink);
  p->call = NULL;
  /* a finishing publish keeps its version until the chain is done; else the
   * tick lets go once its chunks have landed */
  if (!p->finishing && !p->sink.puts) pub_release(p);
}

static int pub_part(nd_pub_t *p, const Origin__PublishPart *part) {
  nd_origin_t *og = p->og;
  if (!part) return -EPROTO;
  if (part->part_case == ORIGIN__PUBLISH_PART__PART_BEGIN) {
    if (p->sink.ver || !part->begin) return -EPROTO;
    nd_ver_t *v;
    int rc = nd_ver_begin(og->p, part->begin->manifest.data, part->begin->manifest.len, &v);
    if (rc) return rc;
    if (!p->is_repl && nd_newest_complete(og->p, v->name) + 1 != v->version && !v->complete)
      return -ESTALE;
    nd_ver_get(v);
    p->sink.ver = v;
    p->sink.forward = true; /* down the chain, and to nodes already fetching */
    if (!p->is_repl && nd_sched_configured(og->sched)) {
      p->announced = true;
      nd_commit_state(og, v, false);
    }
    nd_chain_begin(p);
    return 0;
  }
  if (part->part_case == ORIGIN__PUBLISH_PART__PART_CHUNK && p->sink.ver && part->chunk) {
    nd_sink_header(&p->sink, part->chunk);
    return 0;
  }
  return -EPROTO;
}

static int h_publish_like(rpc_call_t *call, const Origin__PublishPart *part, nd_origin_t *og,
                          bool repl) {
  nd_pub_t *p = rpc_call_arg(call);
  if (!p) {
    p = pub_new(og, call, repl);
    if (!p) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "too many publishes");
    rpc_call_cbs_t cbs = {NULL, pub_data, NULL, pub_closed};
    rpc_call_set_cbs(call, &cbs, p);
  }
  if (!part && !p->ended) {
    if (!p->sink.ver) return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "no begin");
    p->ended = true; /* the tick finishes once every chunk has landed */
    return 0;
  }
  int rc = pub_part(p, part);
  if (rc == -EKEYREJECTED) {
    fd_log_error("publish: manifest signature rejected");
    return rpc_call_finish(call, RPC_PERMISSION_DENIED, "manifest signature rejected");
  }
  if (rc == -ESTALE) return rpc_call_finish(call, RPC_FAILED_PRECONDITION, "not newest+1");
  return rc;
}

static int h_publish(rpc_call_t *call, const Origin__PublishPart *part, void *ctx) {
  nd_origin_t *og = ctx;
  if (!rpc_call_arg(call) && !nd_group_orders(og)) return nd_group_not_head(og, call);
  return h_publish_like(call, part, og, false);
}

static int h_replicate(rpc_call_t *call, const Origin__ReplicatePart *rp, void *ctx) {
  nd_origin_t *og = ctx;
  if (!rpc_call_arg(call) && !nd_group_chain_ok(og, rp ? rp->epoch : 0, call, "Replicate"))
    return 0;
  return h_publish_like(call, rp ? rp->part : NULL, ctx, true);
}

int nd_pub_register(nd_origin_t *og) {
  int rc;
  if ((rc = rpc_serve_origin_publish(og->e, h_publish, og)) ||
      (rc = rpc_serve_origin_replicate(og->e, h_replicate, og)))
    return rc;
  return 0;
}
