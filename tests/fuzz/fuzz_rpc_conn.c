/* fuzz_rpc_conn — a whole server connection under fuzzed input: the
 * engine's stream parser (multishot recv, direct mode), the handshake, call
 * dispatch, flow control and closing, over a socketpair.
 *
 * Byte 0: bit 0 starts the connection authenticated (else the fuzzer faces
 * the handshake); bit 1 sends the rest raw; otherwise the rest is a list of
 * records {type, flags, stream (1 byte), method (2 bytes), len (2 bytes),
 * payload} turned into frames with valid CRCs, so the fuzzer reaches the
 * layers behind the header check. Invariants: no fault, no leak, every
 * connection ends, every bulk buffer comes back to the pool. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "rpc_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rpc_engine_t *eng;
static fd_pool_t *pool;
static const uint8_t key[] = "fdist-fuzz-cluster-key-0123456789";

static int h_ping(rpc_call_t *call, const Node__PingRequest *req, void *ctx) {
  (void)ctx;
  Node__PingReply r = NODE__PING_REPLY__INIT;
  r.nonce = req->nonce;
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static void back(void *buf, void *arg) {
  (void)arg;
  fd_pool_put(pool, buf);
}

static int h_fetch(rpc_call_t *call, const Node__FetchStripeRequest *req, void *ctx) {
  (void)ctx;
  Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
  h.index = req->stripe;
  h.length = 4096;
  int rc = rpc_call_send(call, &h.base);
  if (rc < 0) return rc;
  void *buf = fd_pool_get(pool);
  if (buf && rpc_call_send_data(call, buf, 4096, back, NULL) < 0) fd_pool_put(pool, buf);
  return req->stripes ? 0 : rpc_call_finish(call, RPC_OK, NULL); /* stripes: stay open */
}

static void rep_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  (void)arg;
  fd_pool_put(pool, buf);
  rpc_call_data_done(call, len);
}

static int h_replicate(rpc_call_t *call, const Origin__ReplicatePart *part, void *ctx) {
  (void)ctx;
  if (!rpc_call_arg(call)) {
    rpc_call_cbs_t cbs = {NULL, rep_data, NULL, NULL};
    rpc_call_set_cbs(call, &cbs, call);
  }
  if (!part) {
    Origin__ReplicateReply r = ORIGIN__REPLICATE_REPLY__INIT;
    r.durable = true;
    int rc = rpc_call_send(call, &r.base);
    return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
  }
  return part->version == 666 ? -EINVAL : 0;
}

static void init(void) {
  fd_log_init("fuzz_rpc_conn", FD_LOG_ERROR);
  pool = fd_pool_create(8, 65536);
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = key;
  o.cluster_key_len = sizeof(key) - 1;
  o.payload_max = 65536;
  o.stream_window_bytes = 65536;
  o.conn_window_bytes = 131072;
  o.streams_per_conn_max = 8;
  o.conns_max = 4;
  o.bulk_pool = pool;
  o.bulk_send = RPC_BULK_SEND_COPY; /* SEND_ZC does not do AF_UNIX */
  eng = rpc_engine_create(&o);
  FD_ASSERT(eng);
  FD_ASSERT(rpc_serve_node_ping(eng, h_ping, NULL) == 0);
  FD_ASSERT(rpc_serve_node_fetch_stripe(eng, h_fetch, NULL) == 0);
  FD_ASSERT(rpc_serve_origin_replicate(eng, h_replicate, NULL) == 0);
}

static bool gone;
static void on_closed(rpc_conn_t *c, int err, void *arg) {
  (void)c;
  (void)err;
  (void)arg;
  gone = true;
}

static size_t build(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  size_t o = 0;
  while (n >= 7) {
    uint32_t len = (uint32_t)in[5] | (uint32_t)in[6] << 8;
    rpc_frame_header_t h = {RPC_VERSION, in[0], (uint16_t)in[1], in[2],
                            (uint32_t)in[3] << 16 | in[4], len};
    in += 7;
    n -= 7;
    uint32_t have = (uint32_t)FD_MIN((size_t)len, n);
    if (o + RPC_FRAME_HEADER_LEN + have > cap) break;
    rpc_frame_encode(&h, out + o);
    o += RPC_FRAME_HEADER_LEN;
    memcpy(out + o, in, have);
    o += have;
    in += have;
    n -= have;
  }
  return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!eng) init();
  if (size < 1 || size > 300000) return 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return 0;
  int big = 1 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  rpc_conn_t *c = rpc_conn_adopt(eng, sv[1], data[0] & 1);
  FD_ASSERT(c);
  gone = false;
  c->cbs.on_closed = on_closed;
  static uint8_t frames[400000];
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  if (!(data[0] & 2)) {
    n = build(data + 1, size - 1, frames, sizeof(frames));
    p = frames;
  }
  size_t off = 0;
  uint8_t sink[65536];
  for (int i = 0; i < 400 && !gone; i++) {
    if (off < n) {
      ssize_t w = send(sv[0], p + off, n - off, MSG_NOSIGNAL);
      if (w > 0) off += (size_t)w;
    } else if (off == n) {
      shutdown(sv[0], SHUT_WR); /* then the server sees EOF and closes */
      off++;
    }
    while (recv(sv[0], sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
    rpc_engine_run_once(eng, 0);
  }
  if (!gone) rpc_conn_close(c);
  for (int i = 0; i < 100 && !gone; i++) rpc_engine_run_once(eng, 1);
  FD_ASSERT(gone);
  close(sv[0]);
  FD_ASSERT(fd_pool_available(pool) == fd_pool_count(pool));
  return 0;
}
