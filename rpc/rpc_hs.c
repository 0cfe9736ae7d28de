/* rpc_hs.c — the handshake that opens every connection.
 *
 *   1 client -> server  Hello      {version, nc, want_admin, want_writer, windows}
 *   2 server -> client  HelloReply {ns, HMAC(K, "fdist-srv"|nc|ns), windows}
 *   3 client -> server  Proof      {HMAC(K, "fdist-cli"|nc|ns),
 *                                   [Ed25519 admin sig] or [writer cert, writer sig]}
 *   4 server -> client  Welcome    {admin, writer}
 *
 * Both sides prove they hold the cluster key K over both fresh nonces, so a
 * recorded handshake cannot be replayed. A client claiming the admin role
 * signs "fdist-admin"|nc|ns with the admin's Ed25519 key; the server checks
 * it against its trusted admin public key. A client claiming the writer role
 * presents its writer key's certificate and signs "fdist-writer"|nc|ns with
 * that key; the server checks the certificate (signed by its trusted admin
 * key, role writer, valid now, key not revoked) and then the signature with
 * the certified key. Any failure closes the connection and is logged and
 * counted (stats.auth_failures). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fd_log.h"
#include "fd_time.h"
#include "rpc_int.h"

#define WINDOW_MIN (64u * 1024u)

static int queue_hs(rpc_conn_t *c, uint32_t step, const ProtobufCMessage *m) {
  c->hs_step = (uint8_t)step;
  return rpc_conn_queue(c, RPC_FRAME_HANDSHAKE, 0, 0, step, NULL, 0, m, true);
}

static int auth_fail(rpc_conn_t *c, int err, const char *why) {
  c->e->stats.auth_failures++;
  rpc_conn_fail(c, err, why);
  return 0;
}

int rpc_hs_start(rpc_conn_t *c) {
  rpc_engine_t *e = c->e;
  int rc = fd_random_bytes(c->nc, RPC_NONCE_LEN);
  if (rc < 0) return rc;
  Fdrpc__Hello h = FDRPC__HELLO__INIT;
  h.version = RPC_VERSION;
  h.nonce.data = c->nc;
  h.nonce.len = RPC_NONCE_LEN;
  h.want_admin = e->has_admin_key;
  h.want_writer = e->has_writer_key;
  h.stream_window = e->stream_window;
  h.conn_window = e->conn_window;
  return queue_hs(c, 1, &h.base);
}

static bool windows_ok(uint32_t stream, uint32_t conn) {
  return stream >= WINDOW_MIN && conn >= stream;
}

static void become_ready(rpc_conn_t *c) {
  c->state = RPC_CONN_READY;
  c->tx_credit = c->peer_conn_window;
}

/* A writer's claim: its certificate (decodes; the trusted admin key signed
 * it; role writer; valid now; not revoked), then its signature of the
 * nonces with the certified key. 0, or the reason as -errno (logged by
 * fd_cert_verify, or here). */
static int check_writer(rpc_conn_t *c, const Fdrpc__Proof *pr) {
  rpc_engine_t *e = c->e;
  if (!e->has_admin_pub) {
    fd_log_warn("rpc: %s claims the writer role, but this server trusts no admin key", c->name);
    return -EKEYREJECTED;
  }
  fd_cert_t cert;
  if (pr->writer_sig.len != FD_ED25519_SIG_LEN ||
      fd_cert_decode(pr->writer_cert.data, pr->writer_cert.len, &cert) != 0) {
    fd_log_warn("rpc: %s: malformed writer certificate or signature", c->name);
    return -EKEYREJECTED;
  }
  int rc = fd_cert_verify(&cert, FD_CERT_ROLE_WRITER, e->admin_pub, fd_wall_s(), e->revocations);
  if (rc < 0) return rc;
  uint8_t t[RPC_WRITER_TRANSCRIPT_LEN];
  rpc_auth_writer_transcript(c->nc, c->ns, t);
  if (fd_ed25519_verify(cert.pub, t, sizeof(t), pr->writer_sig.data) < 0) {
    fd_log_warn("rpc: %s: writer '%s' (key %016" PRIx64 ") did not sign with its key", c->name,
                cert.subject, cert.key_id);
    return -EKEYREJECTED;
  }
  c->writer_key_id = cert.key_id;
  c->writer_not_after = cert.not_after_unix_s;
  fd_log_info("rpc: %s is writer '%s' (key %016" PRIx64 ")", c->name, cert.subject, cert.key_id);
  return 0;
}

uint32_t rpc_engine_recheck_writers(rpc_engine_t *e) {
  uint32_t closed = 0;
  uint64_t now = fd_wall_s();
  for (rpc_conn_t *c = e->live; c; c = c->live_next) {
    if (c->is_client || c->role != RPC_ROLE_WRITER || c->state != RPC_CONN_READY) continue;
    int err = fd_cert_revlist_has(e->revocations, c->writer_key_id) ? -EKEYREVOKED
              : now > c->writer_not_after                           ? -EKEYEXPIRED
                                                                    : 0;
    if (!err) continue;
    e->stats.auth_failures++;
    rpc_conn_fail(c, err,
                  err == -EKEYREVOKED ? "writer key revoked" : "writer certificate expired");
    closed++;
  }
  return closed;
}

int rpc_hs_frame(rpc_conn_t *c, const rpc_frame_header_t *hd, const uint8_t *p, uint32_t len) {
  rpc_engine_t *e = c->e;
  if (hd->type != RPC_FRAME_HANDSHAKE || c->state != RPC_CONN_HANDSHAKE)
    return auth_fail(c, -EACCES, "frame before the handshake finished");
  uint8_t mac[FD_SHA256_LEN];
  uint32_t step = hd->method_id;
  if (!c->is_client && step == 1 && c->hs_step == 0) {
    Fdrpc__Hello *h = (Fdrpc__Hello *)rpc_eng_unpack(e, &fdrpc__hello__descriptor, p, len);
    if (!h || h->version != RPC_VERSION || h->nonce.len != RPC_NONCE_LEN ||
        !windows_ok(h->stream_window, h->conn_window))
      return auth_fail(c, -EPROTO, "bad hello");
    memcpy(c->nc, h->nonce.data, RPC_NONCE_LEN);
    c->peer_stream_window = h->stream_window;
    c->peer_conn_window = h->conn_window;
    int rc = fd_random_bytes(c->ns, RPC_NONCE_LEN);
    if (rc < 0) return rc;
    rc = rpc_auth_proof(e->key, e->key_len, true, c->nc, c->ns, mac);
    if (rc < 0) return rc;
    Fdrpc__HelloReply r = FDRPC__HELLO_REPLY__INIT;
    r.nonce.data = c->ns;
    r.nonce.len = RPC_NONCE_LEN;
    r.proof.data = mac;
    r.proof.len = sizeof(mac);
    r.stream_window = e->stream_window;
    r.conn_window = e->conn_window;
    return queue_hs(c, 2, &r.base);
  }
  if (c->is_client && step == 2 && c->hs_step == 1) {
    Fdrpc__HelloReply *r =
        (Fdrpc__HelloReply *)rpc_eng_unpack(e, &fdrpc__hello_reply__descriptor, p, len);
    if (!r || r->nonce.len != RPC_NONCE_LEN || r->proof.len != FD_SHA256_LEN ||
        !windows_ok(r->stream_window, r->conn_window))
      return auth_fail(c, -EPROTO, "bad hello reply");
    memcpy(c->ns, r->nonce.data, RPC_NONCE_LEN);
    int rc = rpc_auth_proof(e->key, e->key_len, true, c->nc, c->ns, mac);
    if (rc < 0) return rc;
    if (!fd_ct_equal(mac, r->proof.data, FD_SHA256_LEN))
      return auth_fail(c, -EKEYREJECTED, "server failed to prove the cluster key");
    c->peer_stream_window = r->stream_window;
    c->peer_conn_window = r->conn_window;
    rc = rpc_auth_proof(e->key, e->key_len, false, c->nc, c->ns, mac);
    if (rc < 0) return rc;
    Fdrpc__Proof pr = FDRPC__PROOF__INIT;
    pr.proof.data = mac;
    pr.proof.len = sizeof(mac);
    uint8_t sig[FD_ED25519_SIG_LEN];
    if (e->has_admin_key) {
      uint8_t t[RPC_ADMIN_TRANSCRIPT_LEN];
      rpc_auth_admin_transcript(c->nc, c->ns, t);
      rc = fd_ed25519_sign(&e->admin_key, t, sizeof(t), sig);
      if (rc < 0) return rc;
      pr.admin_sig.data = sig;
      pr.admin_sig.len = sizeof(sig);
    } else if (e->has_writer_key) {
      uint8_t t[RPC_WRITER_TRANSCRIPT_LEN];
      rpc_auth_writer_transcript(c->nc, c->ns, t);
      rc = fd_ed25519_sign(&e->writer_key, t, sizeof(t), sig);
      if (rc < 0) return rc;
      pr.writer_sig.data = sig;
      pr.writer_sig.len = sizeof(sig);
      pr.writer_cert.data = e->writer_cert;
      pr.writer_cert.len = e->writer_cert_len;
    }
    return queue_hs(c, 3, &pr.base);
  }
  if (!c->is_client && step == 3 && c->hs_step == 2) {
    Fdrpc__Proof *pr = (Fdrpc__Proof *)rpc_eng_unpack(e, &fdrpc__proof__descriptor, p, len);
    if (!pr || pr->proof.len != FD_SHA256_LEN) return auth_fail(c, -EPROTO, "bad proof");
    int rc = rpc_auth_proof(e->key, e->key_len, false, c->nc, c->ns, mac);
    if (rc < 0) return rc;
    if (!fd_ct_equal(mac, pr->proof.data, FD_SHA256_LEN))
      return auth_fail(c, -EKEYREJECTED, "client failed to prove the cluster key");
    bool writer_claim = pr->writer_cert.len || pr->writer_sig.len;
    if (pr->admin_sig.len && writer_claim)
      return auth_fail(c, -EPROTO, "client claimed both the admin and the writer role");
    if (pr->admin_sig.len) {
      uint8_t t[RPC_ADMIN_TRANSCRIPT_LEN];
      rpc_auth_admin_transcript(c->nc, c->ns, t);
      if (!e->has_admin_pub || pr->admin_sig.len != FD_ED25519_SIG_LEN ||
          fd_ed25519_verify(e->admin_pub, t, sizeof(t), pr->admin_sig.data) < 0)
        return auth_fail(c, -EKEYREJECTED, "client failed to prove the admin role");
      c->role = RPC_ROLE_ADMIN;
    } else if (writer_claim) {
      rc = check_writer(c, pr);
      if (rc < 0) return auth_fail(c, rc, "client failed to prove the writer role");
      c->role = RPC_ROLE_WRITER;
    }
    Fdrpc__Welcome w = FDRPC__WELCOME__INIT;
    w.admin = c->role == RPC_ROLE_ADMIN;
    w.writer = c->role == RPC_ROLE_WRITER;
    rc = queue_hs(c, 4, &w.base);
    if (rc < 0) return rc;
    become_ready(c);
    fd_log_debug("rpc: %s authenticated (%s)", c->name, rpc_role_name(c->role));
    return 0;
  }
  if (c->is_client && step == 4 && c->hs_step == 3) {
    Fdrpc__Welcome *w = (Fdrpc__Welcome *)rpc_eng_unpack(e, &fdrpc__welcome__descriptor, p, len);
    if (!w) return auth_fail(c, -EPROTO, "bad welcome");
    c->role = w->admin ? RPC_ROLE_ADMIN : w->writer ? RPC_ROLE_WRITER : RPC_ROLE_MEMBER;
    become_ready(c);
    if (c->cbs.on_ready) c->cbs.on_ready(c, c->cbs_arg);
    return 0;
  }
  return auth_fail(c, -EPROTO, "handshake out of order");
}
