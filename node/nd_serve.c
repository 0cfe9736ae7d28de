/*
 * nd_serve.c — the plane's answers to children: GetManifest, FetchStripe,
 * RepairPull and Ping, on whatever engine the plane runs on.
 *
 * have_bitmap of FetchStripe: bit j (byte j / 8, LSB first) stands for chunk
 * stripe + j * stripes, i.e. the j-th chunk of the stripe.
 */
#include <errno.h>
#include <inttypes.h>

#include "fd_error.h"
#include "nd_plane_int.h"

/* ---- a child's stream: its framing -------------------------------------------- */

static int fetch_header(nd_tx_t *tx, const Node__ChunkHeader *h) {
  return rpc_call_send(nd_tx_call(tx), &h->base);
}

static int fetch_end(nd_tx_t *tx) { return rpc_call_finish(nd_tx_call(tx), RPC_OK, NULL); }

static void fetch_fail(nd_tx_t *tx, rpc_code_t code, const char *why) {
  rpc_call_finish(nd_tx_call(tx), code, why);
}

static const nd_tx_ops_t fetch_ops = {fetch_header, fetch_end, fetch_fail};

static void tx_writable(rpc_call_t *call, void *arg) {
  (void)call;
  nd_tx_pump(arg);
}

static void tx_closed(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  nd_tx_call_gone(arg);
}

/* ---- handlers -------------------------------------------------------------------- */

/* The version a child asks for: open here, or (still) being received. */
static nd_ver_t *served_version(nd_plane_t *p, const char *name, uint64_t version) {
  nd_ver_t *v = nd_ver_find(p, name, version);
  if (v) return v->aborted ? NULL : v;
  if (nd_ver_open(p, name, version, &v) == 0) return v;
  return NULL;
}

static int h_get_manifest(rpc_call_t *call, const Node__GetManifestRequest *req, void *ctx) {
  nd_plane_t *p = ctx;
  uint64_t version = req->version;
  if (!version) version = nd_newest_complete(p, req->name);
  nd_ver_t *v = served_version(p, req->name, version);
  if (!v) return rpc_call_finish(call, RPC_NOT_FOUND, "version not held");
  Node__GetManifestReply r = NODE__GET_MANIFEST_REPLY__INIT;
  r.manifest.data = v->menc;
  r.manifest.len = v->menc_len;
  int rc = rpc_call_send(call, &r.base);
  if (rc) return rc;
  return rpc_call_finish(call, RPC_OK, NULL);
}

static int start_tx(nd_plane_t *p, rpc_call_t *call, nd_ver_t *v, nd_tx_t **out) {
  nd_tx_t *tx = nd_tx_new(p, &fetch_ops, NULL, call, v);
  if (!tx) return rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "too many streams");
  rpc_call_cbs_t cbs = {NULL, NULL, tx_writable, tx_closed};
  rpc_call_set_cbs(call, &cbs, tx);
  *out = tx;
  return 0;
}

static int h_fetch_stripe(rpc_call_t *call, const Node__FetchStripeRequest *req, void *ctx) {
  nd_plane_t *p = ctx;
  nd_ver_t *v = served_version(p, req->name, req->version);
  if (!v) return rpc_call_finish(call, RPC_UNAVAILABLE, "version not here yet");
  if (req->stripes == 0 || req->stripes > FD_STRIPES_MAX || req->stripe >= req->stripes)
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "bad stripe");
  nd_tx_t *tx = NULL;
  int rc = start_tx(p, call, v, &tx);
  if (rc || !tx) return rc;
  uint32_t j = 0;
  for (uint32_t i = req->stripe; i < v->m->chunk_count; i += req->stripes, j++) {
    bool have = j / 8 < req->have_bitmap.len && (req->have_bitmap.data[j / 8] >> (j % 8) & 1);
    if (!have) nd_tx_want(tx, i);
  }
  tx->scan = req->stripe;
  nd_tx_set_peer_class(tx, nd_peer_class_from_wire(req->link));
  nd_tx_set_peer_id(tx, req->node_id);
  nd_tx_pump(tx);
  return 0;
}

static int h_repair_pull(rpc_call_t *call, const Node__RepairPullRequest *req, void *ctx) {
  nd_plane_t *p = ctx;
  nd_ver_t *v = served_version(p, req->name, req->version);
  if (!v) return rpc_call_finish(call, RPC_NOT_FOUND, "version not held");
  for (size_t k = 0; k < req->n_chunks; k++)
    if (req->chunks[k] >= v->m->chunk_count)
      return rpc_call_finish(call, RPC_OUT_OF_RANGE, "chunk index");
  nd_tx_t *tx = NULL;
  int rc = start_tx(p, call, v, &tx);
  if (rc || !tx) return rc;
  nd_tx_set_peer_class(tx, nd_peer_class_from_wire(req->link));
  nd_tx_set_peer_id(tx, req->node_id);
  for (size_t k = 0; k < req->n_chunks; k++) nd_tx_want(tx, (uint32_t)req->chunks[k]);
  nd_tx_pump(tx);
  return 0;
}

static int h_ping(rpc_call_t *call, const Node__PingRequest *req, void *ctx) {
  (void)ctx;
  Node__PingReply r = NODE__PING_REPLY__INIT;
  r.nonce = req->nonce;
  int rc = rpc_call_send(call, &r.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

int nd_plane_serve(nd_plane_t *p) {
  int rc;
  if ((rc = rpc_serve_node_get_manifest(p->e, h_get_manifest, p)) ||
      (rc = rpc_serve_node_fetch_stripe(p->e, h_fetch_stripe, p)) ||
      (rc = rpc_serve_node_repair_pull(p->e, h_repair_pull, p)) ||
      (rc = rpc_serve_node_ping(p->e, h_ping, p)))
    return rc;
  return 0;
}
