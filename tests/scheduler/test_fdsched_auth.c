/* fdsched refuses a client without the cluster key, Drain without the admin role, and manifests not signed by the admin key. */
#include "fdsched_util.h"

#include <arpa/inet.h>
#include <sys/socket.h>

/* ---- a client that does not check the server: it runs the handshake by
 * hand and sends a proof made with key, so the server has to refuse it ---- */

static bool send_frame(int fd, uint32_t step, const void *payload, uint32_t len) {
  uint8_t h[RPC_FRAME_HEADER_LEN];
  rpc_frame_header_t fh = {RPC_VERSION, RPC_FRAME_HANDSHAKE, 0, 0, step, len};
  rpc_frame_encode(&fh, h);
  return send(fd, h, sizeof(h), MSG_NOSIGNAL) == (ssize_t)sizeof(h) &&
         send(fd, payload, len, MSG_NOSIGNAL) == (ssize_t)len;
}

static bool recv_all(int fd, uint8_t *p, size_t len) {
  while (len) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

/* 0 when one frame arrived (header in *h, payload in buf), -EIO on EOF/reset. */
static int recv_frame(int fd, rpc_frame_header_t *h, uint8_t *buf, uint32_t cap) {
  uint8_t hb[RPC_FRAME_HEADER_LEN];
  if (!recv_all(fd, hb, sizeof(hb))) return -EIO;
  if (rpc_frame_decode(hb, sizeof(hb), FD_FRAME_PAYLOAD_MAX, h) < 0) return -EPROTO;
  if (h->payload_len > cap) return -EMSGSIZE;
  if (h->payload_len && !recv_all(fd, buf, h->payload_len)) return -EIO;
  return 0;
}

/* Returns 0 when the server welcomed us, -EKEYREJECTED when it refused. */
static int raw_handshake(uint16_t port, const uint8_t *key, size_t key_len) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  uint8_t nc[RPC_NONCE_LEN], buf[512], mac[FD_SHA256_LEN];
  fd_random_bytes(nc, sizeof(nc));
  Fdrpc__Hello hello = FDRPC__HELLO__INIT;
  hello.version = RPC_VERSION;
  hello.nonce.data = nc;
  hello.nonce.len = sizeof(nc);
  hello.stream_window = RPC_STREAM_WINDOW_DEFAULT;
  hello.conn_window = RPC_CONN_WINDOW_DEFAULT;
  assert_true(send_frame(fd, 1, buf, (uint32_t)protobuf_c_message_pack(&hello.base, buf)));
  rpc_frame_header_t fh;
  assert_int_equal(recv_frame(fd, &fh, buf, sizeof(buf)), 0);
  assert_int_equal(fh.method_id, 2);
  Fdrpc__HelloReply *r = fdrpc__hello_reply__unpack(NULL, fh.payload_len, buf);
  assert_non_null(r);
  assert_int_equal(r->nonce.len, RPC_NONCE_LEN);
  rpc_auth_proof(key, key_len, false, nc, r->nonce.data, mac);
  fdrpc__hello_reply__free_unpacked(r, NULL);
  Fdrpc__Proof proof = FDRPC__PROOF__INIT;
  proof.proof.data = mac;
  proof.proof.len = sizeof(mac);
  assert_true(send_frame(fd, 3, buf, (uint32_t)protobuf_c_message_pack(&proof.base, buf)));
  int rc = -EKEYREJECTED;
  if (recv_frame(fd, &fh, buf, sizeof(buf)) == 0 && fh.type == RPC_FRAME_HANDSHAKE &&
      fh.method_id == 4)
    rc = 0;
  /* Refused: the server closes (a GOAWAY may come first). */
  for (int i = 0; rc != 0 && i < 16 && recv_frame(fd, &fh, buf, sizeof(buf)) == 0; i++) {
  }
  close(fd);
  return rc;
}

static void test_wrong_cluster_key(void **state) {
  fdt_sched_t *s = *state;
  fdt_setup(s);
  fdt_start(s);
  uint8_t wrong[32];
  memcpy(wrong, s->key, sizeof(wrong));
  wrong[7] ^= 0x40;
  rpc_engine_t *e = fdt_engine(wrong, sizeof(wrong), NULL);
  fdt_conn_t tc;
  assert_false(fdt_connect(e, s->port, &tc)); /* our client notices the server's proof fails */
  assert_true(tc.closed);
  rpc_engine_destroy(e);
  /* A client that skips that check and answers with the wrong key is refused
   * by the server; the right key is welcomed on the same path. */
  assert_int_equal(raw_handshake(s->port, wrong, sizeof(wrong)), -EKEYREJECTED);
  assert_int_equal(raw_handshake(s->port, s->key, sizeof(s->key)), 0);

  /* The right key still works, and the refused client left nothing behind. */
  e = fdt_engine(s->key, sizeof(s->key), NULL);
  assert_true(fdt_connect(e, s->port, &tc));
  assert_int_equal(fdt_register(e, tc.c, "node-1", "r1", "z1", 9101, false), RPC_OK);
  rpc_conn_close(tc.c);
  rpc_engine_destroy(e);
  int st = fdt_stop(s, SIGTERM);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  FILE *f = fopen(s->log, "r");
  assert_non_null(f);
  char line[1024];
  bool logged = false;
  while (fgets(line, sizeof(line), f))
    if (strstr(line, "1 auth failures")) logged = true;
  fclose(f);
  assert_true(logged); /* counted, and reported at exit */
}

static const char *state_of(rpc_engine_t *e, rpc_conn_t *c, const char *id) {
  static char state[32];
  Sched__ListNodesRequest req = SCHED__LIST_NODES_REQUEST__INIT;
  req.region = (char *)"r1";
  fdt_call_t t = {0};
  t.call = rpc_start_sched_list_nodes(c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__ListNodesReply *r = fdt_reply(&t, 0, &sched__list_nodes_reply__descriptor);
  state[0] = '\0';
  for (size_t i = 0; i < r->n_nodes; i++)
    if (strcmp(r->nodes[i]->node->node_id, id) == 0)
      snprintf(state, sizeof(state), "%s", r->nodes[i]->state);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  fdt_call_reset(&t);
  return state;
}

static rpc_code_t drain(rpc_engine_t *e, rpc_conn_t *c, const char *id, bool *accepted) {
  Sched__DrainRequest req = SCHED__DRAIN_REQUEST__INIT;
  req.node_id = (char *)id;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_drain(c, &req, 5000, &fdt_call_cbs, &t);
  rpc_code_t code = fdt_wait(e, &t);
  if (code == RPC_OK) {
    Sched__DrainReply *r = fdt_reply(&t, 0, &sched__drain_reply__descriptor);
    *accepted = r->accepted;
    protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  fdt_call_reset(&t);
  return code;
}

static void test_drain_needs_admin(void **state) {
  fdt_sched_t *s = *state;
  fdt_setup(s);
  fdt_start(s);
  rpc_engine_t *e = fdt_engine(s->key, sizeof(s->key), NULL);
  fdt_conn_t tc;
  assert_true(fdt_connect(e, s->port, &tc));
  assert_false(rpc_conn_is_admin(tc.c));
  assert_int_equal(fdt_register(e, tc.c, "node-1", "r1", "z1", 9101, false), RPC_OK);
  bool accepted = false;
  assert_int_equal(drain(e, tc.c, "node-1", &accepted), RPC_PERMISSION_DENIED);
  assert_string_equal(state_of(e, tc.c, "node-1"), "alive");
  rpc_conn_close(tc.c);
  rpc_engine_destroy(e);

  /* A client holding a different Ed25519 key cannot claim the role either. */
  fd_ed25519_key_t other;
  assert_int_equal(fd_ed25519_generate(&other), 0);
  e = fdt_engine(s->key, sizeof(s->key), &other);
  bool admin_refused = !fdt_connect(e, s->port, &tc) || !rpc_conn_is_admin(tc.c);
  if (tc.c && rpc_conn_is_ready(tc.c)) {
    assert_int_not_equal(drain(e, tc.c, "node-1", &accepted), RPC_OK);
    rpc_conn_close(tc.c);
  }
  assert_true(admin_refused);
  rpc_engine_destroy(e);

  /* The admin key's holder drains it. */
  e = fdt_engine(s->key, sizeof(s->key), &s->admin);
  assert_true(fdt_connect(e, s->port, &tc));
  assert_true(rpc_conn_is_admin(tc.c));
  assert_int_equal(drain(e, tc.c, "node-1", &accepted), RPC_OK);
  assert_true(accepted);
  assert_string_equal(state_of(e, tc.c, "node-1"), "draining");
  assert_int_equal(drain(e, tc.c, "nobody", &accepted), RPC_NOT_FOUND);
  rpc_conn_close(tc.c);
  rpc_engine_destroy(e);
}

static void test_manifest_signature(void **state) {
  fdt_sched_t *s = *state;
  fdt_setup(s);
  fdt_start(s);
  rpc_engine_t *e = fdt_engine(s->key, sizeof(s->key), NULL);
  fdt_conn_t tc;
  assert_true(fdt_connect(e, s->port, &tc));
  assert_int_equal(fdt_register(e, tc.c, "origin-a", "r1", "z1", 9001, true), RPC_OK);
  fd_ed25519_key_t forger;
  assert_int_equal(fd_ed25519_generate(&forger), 0);
  assert_int_equal(fdt_register_version(e, tc.c, &forger, "bigfile", 1, "origin-a"),
                   RPC_UNAUTHENTICATED);
  /* Bytes that are not a manifest. */
  uint8_t junk[64];
  memset(junk, 0x5a, sizeof(junk));
  assert_int_equal(fdt_register_manifest(e, tc.c, junk, sizeof(junk), 1, "origin-a"),
                   RPC_INVALID_ARGUMENT);
  /* A good manifest without any origin holding it. */
  uint8_t *man;
  size_t len;
  fdt_manifest(&s->admin, "bigfile", 1, 0, &man, &len);
  Sched__RegisterVersionRequest req = SCHED__REGISTER_VERSION_REQUEST__INIT;
  req.manifest.data = man;
  req.manifest.len = len;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_register_version(tc.c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_INVALID_ARGUMENT);
  fdt_call_reset(&t);
  free(man);
  /* Nothing was registered by any of those; the real one is. */
  Sched__StatusRequest sreq = SCHED__STATUS_REQUEST__INIT;
  t.call = rpc_start_sched_status(tc.c, &sreq, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__StatusReply *r = fdt_reply(&t, 0, &sched__status_reply__descriptor);
  assert_int_equal(r->newest_version, 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  fdt_call_reset(&t);
  assert_int_equal(fdt_register_version(e, tc.c, &s->admin, "bigfile", 1, "origin-a"), RPC_OK);
  rpc_conn_close(tc.c);
  rpc_engine_destroy(e);
}

int main(void) {
  fdt_log_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_wrong_cluster_key, fdt_group_setup, fdt_group_teardown),
      cmocka_unit_test_setup_teardown(test_drain_needs_admin, fdt_group_setup, fdt_group_teardown),
      cmocka_unit_test_setup_teardown(test_manifest_signature, fdt_group_setup,
                                      fdt_group_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
