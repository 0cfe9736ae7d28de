/* harness.h — shared by tests/rpc: a server engine on its own thread, a
 * client engine on the test's thread, and a loop to pump it until a condition. */
#ifndef RPC_TEST_HARNESS_H
#define RPC_TEST_HARNESS_H

#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc.h"

__attribute__((unused)) static const uint8_t test_key[] = "fdist-test-cluster-key-0123456789";
__attribute__((unused)) static const uint8_t wrong_key[] = "not-the-cluster-key-abcdefghijklm";

typedef struct test_server {
  pthread_t thread;
  rpc_engine_opts_t opts;
  void (*setup)(struct test_server *s); /* registers handlers, on the server thread */
  void *ctx;
  rpc_engine_t *e;
  fd_pool_t *pool;
  uint32_t pool_bufs;
  size_t pool_buf_size;
  _Atomic uint16_t port; /* set once listening */
  _Atomic int failed;
  rpc_stats_t stats; /* copied when the thread exits */
  bool registered;   /* rpc_engine_pool_registered, likewise */
} test_server_t;

static inline void *test_server_main(void *arg) {
  test_server_t *s = arg;
  if (s->pool_bufs) {
    s->pool = fd_pool_create(s->pool_bufs, s->pool_buf_size);
    s->opts.bulk_pool = s->pool;
  }
  s->e = rpc_engine_create(&s->opts);
  if (!s->e) {
    atomic_store(&s->failed, errno ? errno : EIO);
    return NULL;
  }
  if (s->setup) s->setup(s);
  uint16_t port = 0;
  if (rpc_listen(s->e, "127.0.0.1", 0, &port) < 0) {
    atomic_store(&s->failed, EIO);
    rpc_engine_destroy(s->e);
    return NULL;
  }
  atomic_store(&s->port, port);
  rpc_engine_run(s->e);
  rpc_engine_get_stats(s->e, &s->stats);
  s->registered = rpc_engine_pool_registered(s->e);
  rpc_engine_destroy(s->e);
  if (s->pool) {
    assert_int_equal(fd_pool_available(s->pool), fd_pool_count(s->pool));
    fd_pool_destroy(s->pool);
  }
  return NULL;
}

static inline rpc_engine_opts_t test_opts(void) {
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = test_key;
  o.cluster_key_len = sizeof(test_key) - 1;
  return o;
}

/* Starts s (fill opts, setup, pool_* first); returns its port. */
static inline uint16_t test_server_start(test_server_t *s) {
  atomic_store(&s->port, 0);
  assert_int_equal(pthread_create(&s->thread, NULL, test_server_main, s), 0);
  uint64_t until = fd_now_ms() + 5000;
  while (atomic_load(&s->port) == 0 && atomic_load(&s->failed) == 0 && fd_now_ms() < until)
    usleep(1000);
  assert_int_equal(atomic_load(&s->failed), 0);
  assert_int_not_equal(atomic_load(&s->port), 0);
  return atomic_load(&s->port);
}

static inline void test_server_stop(test_server_t *s) {
  rpc_engine_stop(s->e);
  pthread_join(s->thread, NULL);
}

/* Pumps e until *flag is set or timeout_ms passes; returns *flag. */
static inline bool pump_until(rpc_engine_t *e, const volatile bool *flag, uint32_t timeout_ms) {
  uint64_t until = fd_now_ms() + timeout_ms;
  while (!*flag && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  return *flag;
}

static inline void pump_for(rpc_engine_t *e, uint32_t ms) {
  uint64_t until = fd_now_ms() + ms;
  while (fd_now_ms() < until) rpc_engine_run_once(e, 5);
}

/* A client connection that records its fate. */
typedef struct test_conn {
  rpc_conn_t *c;
  bool ready, closed;
  int err;
} test_conn_t;

static inline void tc_ready(rpc_conn_t *c, void *arg) {
  (void)c;
  ((test_conn_t *)arg)->ready = true;
}
static inline void tc_closed(rpc_conn_t *c, int err, void *arg) {
  (void)c;
  test_conn_t *t = arg;
  t->closed = true;
  t->err = err;
  t->c = NULL;
}
__attribute__((unused)) static const rpc_conn_cbs_t tc_cbs = {tc_ready, tc_closed};

static inline void test_connect(rpc_engine_t *e, uint16_t port, test_conn_t *t) {
  memset(t, 0, sizeof(*t));
  t->c = rpc_connect(e, "127.0.0.1", port, &tc_cbs, t);
  assert_non_null(t->c);
}

/* A client call that records what came back. */
typedef struct test_call {
  rpc_call_t *call;
  bool done;
  rpc_code_t code;
  char message[128];
  uint32_t msgs;
  uint64_t last_u64;
  uint32_t data_frames;
  uint64_t data_bytes;
  uint32_t data_crc;
} test_call_t;

static inline void tcall_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  test_call_t *t = arg;
  t->msgs++;
  if (m->descriptor == &node__ping_reply__descriptor) t->last_u64 = ((const Node__PingReply *)m)->nonce;
  if (m->descriptor == &node__chunk_header__descriptor)
    t->last_u64 = ((const Node__ChunkHeader *)m)->index;
  if (m->descriptor == &origin__publish_reply__descriptor)
    t->last_u64 = ((const Origin__PublishReply *)m)->version;
}
static inline void tcall_data(rpc_call_t *call, void *buf, uint32_t len, void *arg);
static inline void tcall_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  test_call_t *t = arg;
  t->done = true;
  t->code = code;
  snprintf(t->message, sizeof(t->message), "%s", msg);
  t->call = NULL;
}
__attribute__((unused)) static fd_pool_t *tcall_pool; /* the client engine's bulk pool, when a test has one */
static inline void tcall_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  test_call_t *t = arg;
  t->data_frames++;
  t->data_bytes += len;
  t->data_crc = fd_crc32c(t->data_crc, buf, len);
  fd_pool_put(tcall_pool, buf);
  rpc_call_data_done(call, len);
}
__attribute__((unused)) static const rpc_call_cbs_t tcall_cbs = {tcall_msg, tcall_data, NULL, tcall_done};

/* A raw TCP socket to the server (blocking, with a receive timeout). */
static inline int raw_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  struct timeval tv = {.tv_sec = 3};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

/* Reads until EOF or reset; true when the server closed the connection. */
static inline bool raw_closed_by_peer(int fd) {
  uint8_t buf[4096];
  for (int i = 0; i < 1000; i++) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
  return false;
}

static inline void raw_send_frame(int fd, uint8_t type, uint16_t flags, uint32_t stream, uint32_t method,
                           const void *payload, uint32_t len) {
  uint8_t h[RPC_FRAME_HEADER_LEN];
  rpc_frame_header_t fh = {RPC_VERSION, type, flags, stream, method, len};
  rpc_frame_encode(&fh, h);
  assert_int_equal(send(fd, h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
  if (len) assert_int_equal(send(fd, payload, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* recv of exactly len bytes; io_uring task work can interrupt a blocking
 * recv on a thread that had a ring (EINTR), so retry. */
static inline bool recv_all(int fd, uint8_t *p, size_t len) {
  while (len) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

/* Reads one whole frame; its payload goes to buf (cap bytes). */
static inline int raw_recv_frame(int fd, rpc_frame_header_t *h, uint8_t *buf, uint32_t cap) {
  uint8_t hb[RPC_FRAME_HEADER_LEN];
  if (!recv_all(fd, hb, sizeof(hb))) return -EIO;
  int rc = rpc_frame_decode(hb, sizeof(hb), FD_FRAME_PAYLOAD_MAX, h);
  if (rc < 0) return rc;
  if (h->payload_len > cap) return -EMSGSIZE;
  if (h->payload_len && !recv_all(fd, buf, h->payload_len)) return -EIO;
  return 0;
}

/* Runs the client side of the handshake by hand with key; returns 0 when
 * the server welcomed us. */
static inline int raw_handshake(int fd, const uint8_t *key, size_t key_len, bool bogus_proof) {
  uint8_t nc[RPC_NONCE_LEN], buf[512], mac[FD_SHA256_LEN];
  fd_random_bytes(nc, sizeof(nc));
  Fdrpc__Hello h = FDRPC__HELLO__INIT;
  h.version = RPC_VERSION;
  h.nonce.data = nc;
  h.nonce.len = sizeof(nc);
  h.stream_window = RPC_STREAM_WINDOW_DEFAULT;
  h.conn_window = RPC_CONN_WINDOW_DEFAULT;
  uint32_t n = (uint32_t)protobuf_c_message_pack(&h.base, buf);
  raw_send_frame(fd, RPC_FRAME_HANDSHAKE, 0, 0, 1, buf, n);
  rpc_frame_header_t fh;
  if (raw_recv_frame(fd, &fh, buf, sizeof(buf)) < 0 || fh.method_id != 2) return -EPROTO;
  Fdrpc__HelloReply *r = fdrpc__hello_reply__unpack(NULL, fh.payload_len, buf);
  if (!r || r->nonce.len != RPC_NONCE_LEN) return -EPROTO;
  rpc_auth_proof(key, key_len, false, nc, r->nonce.data, mac);
  fdrpc__hello_reply__free_unpacked(r, NULL);
  if (bogus_proof) mac[0] ^= 1;
  Fdrpc__Proof p = FDRPC__PROOF__INIT;
  p.proof.data = mac;
  p.proof.len = sizeof(mac);
  n = (uint32_t)protobuf_c_message_pack(&p.base, buf);
  raw_send_frame(fd, RPC_FRAME_HANDSHAKE, 0, 0, 3, buf, n);
  if (raw_recv_frame(fd, &fh, buf, sizeof(buf)) < 0) return -ECONNRESET;
  return fh.type == RPC_FRAME_HANDSHAKE && fh.method_id == 4 ? 0 : -EKEYREJECTED;
}

/* Ping handler: echoes nonce and payload. */
static inline int h_ping(rpc_call_t *call, const Node__PingRequest *req, void *ctx) {
  (void)ctx;
  Node__PingReply r = NODE__PING_REPLY__INIT;
  r.nonce = req->nonce;
  r.payload = req->payload;
  int rc = rpc_call_send(call, &r.base);
  if (rc < 0) return rc;
  return rpc_call_finish(call, RPC_OK, NULL);
}

/* One ping from the client engine; returns the call's code. */
static inline rpc_code_t ping_once(rpc_engine_t *e, rpc_conn_t *c, uint64_t nonce) {
  test_call_t t = {0};
  Node__PingRequest req = NODE__PING_REQUEST__INIT;
  req.nonce = nonce;
  t.call = rpc_start_node_ping(c, &req, 2000, &tcall_cbs, &t);
  if (!t.call) return RPC_UNAVAILABLE;
  assert_true(pump_until(e, &t.done, 3000));
  if (t.code == RPC_OK) {
    assert_int_equal(t.msgs, 1);
    assert_int_equal(t.last_u64, nonce);
  }
  return t.code;
}

static inline void test_log_quiet(void) { fd_log_init("test_rpc", FD_LOG_ERROR); }

#endif /* RPC_TEST_HARNESS_H */
