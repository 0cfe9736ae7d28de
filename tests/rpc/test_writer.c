/* Writer role: a certified writer key gets role writer; expired, revoked, wrong-role, forged certificates and a signature by another key are refused at the handshake (and counted); a writer revoked while connected is cut off; the admin path is unchanged. */
#include "harness.h"

#define ROLE_NONE 99
static fd_ed25519_key_t admin, other_admin, writer, other;
static fd_cert_revlist_t revoked; /* the server's; touched only on its thread once it runs */
static _Atomic int seen_role = ROLE_NONE;
static uint64_t revoke_on_nonce = 0x5e5e; /* a ping with this nonce revokes `writer` */
static rpc_engine_t *server_engine;

static int h_ping_role(rpc_call_t *call, const Node__PingRequest *req, void *ctx) {
  (void)ctx;
  atomic_store(&seen_role, (int)rpc_call_role(call));
  assert_true(rpc_call_is_admin(call) == (rpc_call_role(call) == RPC_ROLE_ADMIN));
  if (req->nonce == revoke_on_nonce) {
    assert_int_equal(fd_cert_revlist_add(&revoked, fd_ed25519_key_id(writer.pub)), 0);
    /* the engine's own thread: the list is ours to change, then recheck */
    assert_int_equal(rpc_engine_recheck_writers(server_engine), 1);
  }
  return h_ping(call, req, ctx);
}

static int h_drain(rpc_call_t *call, const Sched__DrainRequest *req, void *ctx) {
  (void)req;
  (void)ctx;
  return rpc_call_finish(call, RPC_OK, NULL);
}

static void setup(test_server_t *s) {
  server_engine = s->e;
  assert_int_equal(rpc_serve_node_ping(s->e, h_ping_role, NULL), 0);
  assert_int_equal(rpc_serve_sched_drain(s->e, h_drain, NULL), 0);
}

static size_t cert_of(const fd_ed25519_key_t *key, fd_cert_role_t role, int64_t from_s, int64_t to_s,
                      const fd_ed25519_key_t *signer, uint8_t out[FD_CERT_LEN_MAX]) {
  uint64_t now = fd_wall_s();
  fd_cert_t c = {.role = role, .not_before_unix_s = (uint64_t)((int64_t)now + from_s),
                 .not_after_unix_s = (uint64_t)((int64_t)now + to_s)};
  snprintf(c.subject, sizeof(c.subject), "writer-1");
  memcpy(c.pub, key->pub, FD_ED25519_PUB_LEN);
  assert_int_equal(fd_cert_sign(&c, signer), 0);
  size_t len;
  assert_int_equal(fd_cert_encode(&c, out, FD_CERT_LEN_MAX, &len), 0);
  return len;
}

/* A client engine claiming the writer role with key and cert. */
static rpc_engine_t *writer_engine(const fd_ed25519_key_t *key, const uint8_t *cert, size_t len) {
  rpc_engine_opts_t o = test_opts();
  o.writer_key = key;
  o.writer_cert = cert;
  o.writer_cert_len = len;
  return rpc_engine_create(&o);
}

/* Connects with e; true when welcomed, false when the server closed it. */
static bool handshake(rpc_engine_t *e, uint16_t port, test_conn_t *tc) {
  test_connect(e, port, tc);
  uint64_t until = fd_now_ms() + 3000;
  while (!tc->ready && !tc->closed && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  assert_true(tc->ready || tc->closed);
  return tc->ready;
}

/* The client's side of the handshake by hand, claiming the writer role with
 * cert and a signature by signer (and an admin signature too if asked). */
static int raw_writer(uint16_t port, const uint8_t *cert, size_t cert_len,
                      const fd_ed25519_key_t *signer, bool admin_sig_too) {
  int fd = raw_connect(port);
  uint8_t nc[RPC_NONCE_LEN], buf[1024], mac[FD_SHA256_LEN];
  fd_random_bytes(nc, sizeof(nc));
  Fdrpc__Hello h = FDRPC__HELLO__INIT;
  h.version = RPC_VERSION;
  h.nonce.data = nc;
  h.nonce.len = sizeof(nc);
  h.want_writer = true;
  h.stream_window = RPC_STREAM_WINDOW_DEFAULT;
  h.conn_window = RPC_CONN_WINDOW_DEFAULT;
  uint32_t n = (uint32_t)protobuf_c_message_pack(&h.base, buf);
  raw_send_frame(fd, RPC_FRAME_HANDSHAKE, 0, 0, 1, buf, n);
  rpc_frame_header_t fh;
  int rc = -EPROTO;
  if (raw_recv_frame(fd, &fh, buf, sizeof(buf)) < 0 || fh.method_id != 2) goto out;
  Fdrpc__HelloReply *r = fdrpc__hello_reply__unpack(NULL, fh.payload_len, buf);
  if (!r || r->nonce.len != RPC_NONCE_LEN) goto out;
  uint8_t ns[RPC_NONCE_LEN];
  memcpy(ns, r->nonce.data, RPC_NONCE_LEN);
  fdrpc__hello_reply__free_unpacked(r, NULL);
  rpc_auth_proof(test_key, sizeof(test_key) - 1, false, nc, ns, mac);
  uint8_t t[RPC_WRITER_TRANSCRIPT_LEN], sig[FD_ED25519_SIG_LEN], asig[FD_ED25519_SIG_LEN];
  rpc_auth_writer_transcript(nc, ns, t);
  assert_int_equal(fd_ed25519_sign(signer, t, sizeof(t), sig), 0);
  Fdrpc__Proof p = FDRPC__PROOF__INIT;
  p.proof.data = mac;
  p.proof.len = sizeof(mac);
  p.writer_cert.data = (uint8_t *)cert;
  p.writer_cert.len = cert_len;
  p.writer_sig.data = sig;
  p.writer_sig.len = sizeof(sig);
  if (admin_sig_too) {
    uint8_t at[RPC_ADMIN_TRANSCRIPT_LEN];
    rpc_auth_admin_transcript(nc, ns, at);
    assert_int_equal(fd_ed25519_sign(&admin, at, sizeof(at), asig), 0);
    p.admin_sig.data = asig;
    p.admin_sig.len = sizeof(asig);
  }
  n = (uint32_t)protobuf_c_message_pack(&p.base, buf);
  raw_send_frame(fd, RPC_FRAME_HANDSHAKE, 0, 0, 3, buf, n);
  rc = -EKEYREJECTED;
  if (raw_recv_frame(fd, &fh, buf, sizeof(buf)) < 0) goto out;
  if (fh.type != RPC_FRAME_HANDSHAKE || fh.method_id != 4) goto out;
  Fdrpc__Welcome *w = fdrpc__welcome__unpack(NULL, fh.payload_len, buf);
  rc = w && w->writer && !w->admin ? 0 : -EPROTO;
  if (w) fdrpc__welcome__free_unpacked(w, NULL);
out:
  close(fd);
  return rc;
}

static void test_writer(void **state) {
  (void)state;
  assert_int_equal(fd_ed25519_generate(&admin), 0);
  assert_int_equal(fd_ed25519_generate(&other_admin), 0);
  assert_int_equal(fd_ed25519_generate(&writer), 0);
  assert_int_equal(fd_ed25519_generate(&other), 0);
  fd_cert_revlist_init(&revoked);
  revoked.serial = 1;
  assert_int_equal(fd_cert_revlist_add(&revoked, fd_ed25519_key_id(other.pub)), 0);
  test_server_t s = {.opts = test_opts(), .setup = setup};
  s.opts.admin_pub = admin.pub;
  s.opts.revocations = &revoked;
  uint16_t port = test_server_start(&s);
  uint32_t refused = 0;

  /* A valid writer certificate: role writer on both sides; not admin. */
  uint8_t cert[FD_CERT_LEN_MAX];
  size_t len = cert_of(&writer, FD_CERT_ROLE_WRITER, -60, 3600, &admin, cert);
  rpc_engine_t *e = writer_engine(&writer, cert, len);
  assert_non_null(e);
  test_conn_t tc;
  assert_true(handshake(e, port, &tc));
  assert_int_equal(rpc_conn_role(tc.c), RPC_ROLE_WRITER);
  assert_false(rpc_conn_is_admin(tc.c));
  assert_int_equal(ping_once(e, tc.c, 1), RPC_OK);
  assert_int_equal(atomic_load(&seen_role), RPC_ROLE_WRITER);
  Sched__DrainRequest dreq = SCHED__DRAIN_REQUEST__INIT;
  dreq.node_id = (char *)"n1";
  test_call_t t = {0};
  t.call = rpc_start_sched_drain(tc.c, &dreq, 2000, &tcall_cbs, &t);
  assert_true(pump_until(e, &t.done, 3000));
  assert_int_equal(t.code, RPC_PERMISSION_DENIED); /* a writer is not the admin */

  /* Revoked while connected: a member's call makes the server revoke the
   * key on its own thread and recheck; the writer's connection is closed. */
  rpc_engine_opts_t mo = test_opts();
  rpc_engine_t *me = rpc_engine_create(&mo);
  test_conn_t mc;
  assert_true(handshake(me, port, &mc));
  assert_int_equal(rpc_conn_role(mc.c), RPC_ROLE_MEMBER);
  assert_int_equal(ping_once(me, mc.c, revoke_on_nonce), RPC_OK);
  assert_int_equal(atomic_load(&seen_role), RPC_ROLE_MEMBER);
  assert_true(pump_until(e, &tc.closed, 3000));
  refused++;
  rpc_engine_destroy(e);
  /* ... and refused at the next handshake. */
  e = writer_engine(&writer, cert, len);
  assert_false(handshake(e, port, &tc));
  refused++;
  rpc_engine_destroy(e);

  /* Expired, and not valid yet (a fresh key: the first one is revoked now). */
  fd_ed25519_key_t w2;
  assert_int_equal(fd_ed25519_generate(&w2), 0);
  len = cert_of(&w2, FD_CERT_ROLE_WRITER, -7200, -3600, &admin, cert);
  e = writer_engine(&w2, cert, len);
  assert_false(handshake(e, port, &tc));
  refused++;
  rpc_engine_destroy(e);
  len = cert_of(&w2, FD_CERT_ROLE_WRITER, 3600, 7200, &admin, cert);
  e = writer_engine(&w2, cert, len);
  assert_false(handshake(e, port, &tc));
  refused++;
  rpc_engine_destroy(e);

  /* A key the server's list revoked from the start. */
  len = cert_of(&other, FD_CERT_ROLE_WRITER, -60, 3600, &admin, cert);
  e = writer_engine(&other, cert, len);
  assert_false(handshake(e, port, &tc));
  refused++;
  rpc_engine_destroy(e);

  /* Forged: certified by another admin key. */
  len = cert_of(&w2, FD_CERT_ROLE_WRITER, -60, 3600, &other_admin, cert);
  e = writer_engine(&w2, cert, len);
  assert_false(handshake(e, port, &tc));
  refused++;
  rpc_engine_destroy(e);

  /* By hand: a good certificate is welcomed as writer; the wrong role, a
   * signature by a key other than the certified one, a tampered
   * certificate, a malformed one, and both roles at once are refused. */
  len = cert_of(&w2, FD_CERT_ROLE_WRITER, -60, 3600, &admin, cert);
  assert_int_equal(raw_writer(port, cert, len, &w2, false), 0);
  assert_int_not_equal(raw_writer(port, cert, len, &other_admin, false), 0);
  refused++;
  assert_int_not_equal(raw_writer(port, cert, len, &w2, true), 0);
  refused++;
  cert[len - 1] ^= 1;
  assert_int_not_equal(raw_writer(port, cert, len, &w2, false), 0);
  refused++;
  assert_int_not_equal(raw_writer(port, cert, len - 1, &w2, false), 0);
  refused++;
  len = cert_of(&w2, FD_CERT_ROLE_ORIGIN, -60, 3600, &admin, cert);
  assert_int_not_equal(raw_writer(port, cert, len, &w2, false), 0);
  refused++;

  /* The client refuses to claim what it cannot prove: an origin
   * certificate, another key's certificate, the admin role at once. */
  errno = 0;
  assert_null(writer_engine(&w2, cert, len));
  assert_int_equal(errno, EINVAL);
  len = cert_of(&w2, FD_CERT_ROLE_WRITER, -60, 3600, &admin, cert);
  assert_null(writer_engine(&other, cert, len));
  rpc_engine_opts_t bo = test_opts();
  bo.writer_key = &w2;
  bo.writer_cert = cert;
  bo.writer_cert_len = len;
  bo.admin_key = &admin;
  assert_null(rpc_engine_create(&bo));

  /* The admin path is unchanged. */
  rpc_engine_opts_t ao = test_opts();
  ao.admin_key = &admin;
  e = rpc_engine_create(&ao);
  assert_true(handshake(e, port, &tc));
  assert_int_equal(rpc_conn_role(tc.c), RPC_ROLE_ADMIN);
  assert_true(rpc_conn_is_admin(tc.c));
  assert_int_equal(ping_once(e, tc.c, 2), RPC_OK);
  assert_int_equal(atomic_load(&seen_role), RPC_ROLE_ADMIN);
  memset(&t, 0, sizeof(t));
  t.call = rpc_start_sched_drain(tc.c, &dreq, 2000, &tcall_cbs, &t);
  assert_true(pump_until(e, &t.done, 3000));
  assert_int_equal(t.code, RPC_OK);
  rpc_engine_destroy(e);

  rpc_engine_destroy(me);
  test_server_stop(&s);
  assert_int_equal(s.stats.auth_failures, refused);
  assert_string_equal(rpc_role_name(RPC_ROLE_WRITER), "writer");
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_writer)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
