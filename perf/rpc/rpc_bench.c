/*
 * rpc_bench — benchmarks of the rpc layer over loopback (not a test).
 *
 *   rpc_bench unary  --clients N --seconds S   ping-pong calls/s, p50/p99 latency
 *   rpc_bench stream --seconds S [--send zc|copy]   one-hop bulk throughput
 *   rpc_bench relay  --seconds S [--send zc|copy]   A -> B -> C, B forwards from
 *                                                    the buffer it received into
 *   rpc_bench splice --seconds S                     raw TCP A -> B -> C, B splices
 *                                                    socket -> pipe -> socket
 *
 * Each prints "RESULT <name> <value> <unit>" lines; perf/rpc/run.sh puts them
 * beside iperf3 measured in the same run. Every engine runs on its own thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "fd_pool.h"
#include "fd_time.h"
#include "rpc.h"

static const uint8_t key[] = "fdist-bench-cluster-key-01234567";
static uint32_t chunk_bytes = 4u << 20;
static uint32_t seconds = 3;
static uint32_t nclients = 1;
static rpc_bulk_send_t send_mode = RPC_BULK_SEND_AUTO;

static rpc_engine_opts_t opts(fd_pool_t *pool) {
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = key;
  o.cluster_key_len = sizeof(key) - 1;
  o.bulk_pool = pool;
  o.bulk_send = send_mode;
  o.conns_max = 256;
  return o;
}

/* ---- a server engine on its own thread ---- */

typedef struct server {
  pthread_t thread;
  void (*setup)(struct server *s);
  fd_pool_t *pool;
  uint32_t pool_bufs;
  rpc_engine_t *e;
  _Atomic uint16_t port;
  void *ctx;
} server_t;

static void *server_main(void *arg) {
  server_t *s = arg;
  if (s->pool_bufs) s->pool = fd_pool_create(s->pool_bufs, chunk_bytes);
  rpc_engine_opts_t o = opts(s->pool);
  s->e = rpc_engine_create(&o);
  FD_ASSERT(s->e);
  s->setup(s);
  uint16_t port = 0;
  FD_ASSERT(rpc_listen(s->e, "127.0.0.1", 0, &port) == 0);
  atomic_store(&s->port, port);
  rpc_engine_run(s->e);
  rpc_engine_destroy(s->e);
  if (s->pool) fd_pool_destroy(s->pool);
  return NULL;
}

static uint16_t server_start(server_t *s) {
  FD_ASSERT(pthread_create(&s->thread, NULL, server_main, s) == 0);
  while (!atomic_load(&s->port)) usleep(1000);
  return atomic_load(&s->port);
}

static void server_stop(server_t *s) {
  rpc_engine_stop(s->e);
  pthread_join(s->thread, NULL);
}

typedef struct waiter {
  bool ready, done, closed;
  rpc_code_t code;
} waiter_t;

static void w_ready(rpc_conn_t *c, void *arg) {
  (void)c;
  ((waiter_t *)arg)->ready = true;
}
static void w_closed(rpc_conn_t *c, int err, void *arg) {
  (void)c;
  (void)err;
  ((waiter_t *)arg)->closed = true;
}
static const rpc_conn_cbs_t wcbs = {w_ready, w_closed};

static rpc_conn_t *connect_ready(rpc_engine_t *e, uint16_t port, waiter_t *w) {
  rpc_conn_t *c = rpc_connect(e, "127.0.0.1", port, &wcbs, w);
  FD_ASSERT(c);
  while (!w->ready && !w->closed) rpc_engine_run_once(e, 10);
  FD_ASSERT(w->ready);
  return c;
}

/* ---- unary ping-pong ---- */

static int h_ping(rpc_call_t *call, const Node__PingRequest *req, void *ctx) {
  (void)ctx;
  Node__PingReply r = NODE__PING_REPLY__INIT;
  r.nonce = req->nonce;
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static void setup_ping(server_t *s) { FD_ASSERT(rpc_serve_node_ping(s->e, h_ping, NULL) == 0); }

#define LAT_MAX (4u << 20)
static uint32_t *lat_us;
static uint64_t lat_n, calls_done;
static bool stopping;

typedef struct pinger {
  rpc_conn_t *c;
  uint64_t t0;
  waiter_t w;
} pinger_t;

static void ping_start(pinger_t *p);

static void ping_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  pinger_t *p = arg;
  if (code != RPC_OK) {
    fprintf(stderr, "ping failed: %s %s\n", rpc_code_name(code), msg);
    exit(1);
  }
  uint64_t us = (fd_now_ns() - p->t0) / 1000;
  if (lat_n < LAT_MAX) lat_us[lat_n++] = (uint32_t)FD_MIN(us, (uint64_t)UINT32_MAX);
  calls_done++;
  if (!stopping) ping_start(p);
}

static const rpc_call_cbs_t ping_cbs = {NULL, NULL, NULL, ping_done};

static void ping_start(pinger_t *p) {
  Node__PingRequest req = NODE__PING_REQUEST__INIT;
  req.nonce = calls_done;
  p->t0 = fd_now_ns();
  FD_ASSERT(rpc_start_node_ping(p->c, &req, 5000, &ping_cbs, p));
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int bench_unary(void) {
  server_t s = {.setup = setup_ping};
  uint16_t port = server_start(&s);
  rpc_engine_opts_t o = opts(NULL);
  rpc_engine_t *e = rpc_engine_create(&o);
  pinger_t *p = calloc(nclients, sizeof(*p));
  lat_us = malloc(LAT_MAX * sizeof(*lat_us));
  for (uint32_t i = 0; i < nclients; i++) p[i].c = connect_ready(e, port, &p[i].w);
  /* Warm up, then measure. */
  for (uint32_t i = 0; i < nclients; i++) ping_start(&p[i]);
  uint64_t warm = fd_now_ms() + 300;
  while (fd_now_ms() < warm) rpc_engine_run_once(e, 1);
  lat_n = calls_done = 0;
  uint64_t t0 = fd_now_ns(), until = fd_now_ms() + (uint64_t)seconds * 1000;
  while (fd_now_ms() < until) rpc_engine_run_once(e, 1);
  uint64_t n = calls_done;
  double el = (double)(fd_now_ns() - t0) / 1e9;
  stopping = true;
  uint64_t drain = fd_now_ms() + 2000;
  while (fd_now_ms() < drain && calls_done < n + nclients) rpc_engine_run_once(e, 1);
  uint64_t m = FD_MIN(lat_n, (uint64_t)LAT_MAX);
  qsort(lat_us, m, sizeof(*lat_us), cmp_u32);
  printf("RESULT unary_c%u_calls_per_s %.0f calls/s\n", nclients, (double)n / el);
  printf("RESULT unary_c%u_p50 %u us\n", nclients, m ? lat_us[m / 2] : 0);
  printf("RESULT unary_c%u_p99 %u us\n", nclients, m ? lat_us[m * 99 / 100] : 0);
  rpc_engine_destroy(e);
  server_stop(&s);
  free(p);
  free(lat_us);
  return 0;
}

/* ---- bulk streaming: a source that streams chunks forever ---- */

typedef struct source {
  server_t *s;
  rpc_call_t *call;
  uint64_t next;
  bool header_sent, over;
} source_t;

static void source_pump(source_t *st);

static void source_buf_back(void *buf, void *arg) {
  source_t *st = arg;
  fd_pool_put(st->s->pool, buf);
  if (!st->over) source_pump(st);
  else if (fd_pool_available(st->s->pool) == fd_pool_count(st->s->pool)) free(st);
}

static void source_pump(source_t *st) {
  for (int i = 0; i < 64 && !st->over; i++) {
    if (!st->header_sent) {
      Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
      h.index = st->next;
      h.length = chunk_bytes;
      if (rpc_call_send(st->call, &h.base) < 0) return;
      st->header_sent = true;
    }
    void *buf = fd_pool_get(st->s->pool);
    if (!buf) return;
    if (rpc_call_send_data(st->call, buf, chunk_bytes, source_buf_back, st) < 0) {
      fd_pool_put(st->s->pool, buf);
      return;
    }
    st->next++;
    st->header_sent = false;
  }
}

static void source_writable(rpc_call_t *call, void *arg) {
  (void)call;
  source_pump(arg);
}

static void source_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  source_t *st = arg;
  st->over = true;
  if (fd_pool_available(st->s->pool) == fd_pool_count(st->s->pool)) free(st);
}

static int h_source(rpc_call_t *call, const Node__FetchStripeRequest *req, void *ctx) {
  (void)req;
  source_t *st = calloc(1, sizeof(*st));
  st->s = ctx;
  st->call = call;
  rpc_call_cbs_t cbs = {NULL, NULL, source_writable, source_done};
  rpc_call_set_cbs(call, &cbs, st);
  source_pump(st);
  return 0;
}

static void setup_source(server_t *s) {
  /* Content does not matter to the transport; fill once so pages exist. */
  for (uint32_t i = 0; i < fd_pool_count(s->pool); i++)
    memset(fd_pool_buf(s->pool, i), (int)i, chunk_bytes);
  FD_ASSERT(rpc_serve_node_fetch_stripe(s->e, h_source, s) == 0);
}

/* The sink: counts bytes, gives buffers straight back. */
static fd_pool_t *sink_pool;
static uint64_t sink_bytes;
static bool sink_done;

static void sink_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  (void)arg;
  sink_bytes += len;
  fd_pool_put(sink_pool, buf);
  rpc_call_data_done(call, len);
}
static void sink_end(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)arg;
  if (code != RPC_CANCELLED) fprintf(stderr, "stream ended: %s %s\n", rpc_code_name(code), msg);
  sink_done = true;
}
static const rpc_call_cbs_t sink_cbs = {NULL, sink_data, NULL, sink_end};

static double sink_measure(rpc_engine_t *e, rpc_conn_t *c) {
  Node__FetchStripeRequest req = NODE__FETCH_STRIPE_REQUEST__INIT;
  rpc_call_t *call = rpc_start_node_fetch_stripe(c, &req, (seconds + 10) * 1000, &sink_cbs, NULL);
  FD_ASSERT(call);
  uint64_t warm = fd_now_ms() + 500;
  while (fd_now_ms() < warm && !sink_done) rpc_engine_run_once(e, 1);
  uint64_t b0 = sink_bytes, t0 = fd_now_ns(), until = fd_now_ms() + (uint64_t)seconds * 1000;
  while (fd_now_ms() < until && !sink_done) rpc_engine_run_once(e, 1);
  double gbps = (double)(sink_bytes - b0) * 8 / ((double)(fd_now_ns() - t0));
  if (!sink_done) rpc_call_cancel(call);
  uint64_t drain = fd_now_ms() + 200;
  while (fd_now_ms() < drain) rpc_engine_run_once(e, 1);
  return gbps;
}

static int bench_stream(void) {
  server_t s = {.setup = setup_source, .pool_bufs = 16};
  uint16_t port = server_start(&s);
  sink_pool = fd_pool_create(16, chunk_bytes);
  rpc_engine_opts_t o = opts(sink_pool);
  rpc_engine_t *e = rpc_engine_create(&o);
  waiter_t w = {0};
  rpc_conn_t *c = connect_ready(e, port, &w);
  double gbps = sink_measure(e, c);
  rpc_stats_t st;
  rpc_engine_get_stats(e, &st);
  printf("RESULT stream_gbps %.2f Gbit/s\n", gbps);
  printf("RESULT stream_rx_copied_pct %.1f %%\n",
         st.bytes_rx ? 100.0 * (double)st.rx_copied_bytes / (double)st.bytes_rx : 0.0);
  rpc_engine_destroy(e);
  server_stop(&s);
  fd_pool_destroy(sink_pool);
  return 0;
}

/* ---- the relay B: a server for C that fetches from A and forwards ---- */

#define RELAY_Q 64u
typedef struct relay_item {
  void *buf; /* NULL: a chunk header */
  uint32_t len;
  uint64_t index;
} relay_item_t;

typedef struct relay {
  server_t *s;
  uint16_t a_port;
  rpc_conn_t *a_conn;
  waiter_t a_w;
  rpc_call_t *down; /* C's call on B */
  rpc_call_t *up;   /* B's call to A */
  bool up_over, down_over;
  relay_item_t q[RELAY_Q];
  uint32_t q_head, q_tail;
  uint32_t held; /* buffers forwarded and not yet released by the kernel */
} relay_t;

static relay_t relay;

static void relay_release(void *buf, void *arg) {
  relay_t *r = arg;
  fd_pool_put(r->s->pool, buf);
  r->held--;
  if (!r->up_over) rpc_call_data_done(r->up, chunk_bytes);
}

static void relay_pump(relay_t *r) {
  while (r->q_head != r->q_tail && !r->down_over) {
    relay_item_t *it = &r->q[r->q_head % RELAY_Q];
    int rc;
    if (!it->buf) {
      Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
      h.index = it->index;
      h.length = it->len;
      rc = rpc_call_send(r->down, &h.base);
    } else {
      /* Forwarded from the very buffer it was received into. */
      rc = rpc_call_send_data(r->down, it->buf, it->len, relay_release, r);
      if (rc == 0) r->held++;
    }
    if (rc == -EAGAIN) return;
    FD_ASSERT(rc == 0);
    r->q_head++;
  }
}

static void up_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  relay_t *r = arg;
  const Node__ChunkHeader *h = (const Node__ChunkHeader *)m;
  FD_ASSERT(r->q_tail - r->q_head < RELAY_Q);
  r->q[r->q_tail % RELAY_Q].buf = NULL;
  r->q[r->q_tail % RELAY_Q].index = h->index;
  r->q[r->q_tail % RELAY_Q].len = h->length;
  r->q_tail++;
  relay_pump(r);
}

static void up_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  (void)call;
  relay_t *r = arg;
  FD_ASSERT(r->q_tail - r->q_head < RELAY_Q);
  r->q[r->q_tail % RELAY_Q].buf = buf;
  r->q[r->q_tail % RELAY_Q].len = len;
  r->q_tail++;
  relay_pump(r);
}

static void up_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  relay_t *r = arg;
  r->up_over = true;
  if (!r->down_over) rpc_call_finish(r->down, code, msg);
}

static const rpc_call_cbs_t up_cbs = {up_msg, up_data, NULL, up_done};

static void down_writable(rpc_call_t *call, void *arg) {
  (void)call;
  relay_pump(arg);
}

static void down_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  relay_t *r = arg;
  r->down_over = true;
  while (r->q_head != r->q_tail) { /* never forwarded: back to the pool */
    relay_item_t *it = &r->q[r->q_head++ % RELAY_Q];
    if (it->buf) {
      fd_pool_put(r->s->pool, it->buf);
      if (!r->up_over) rpc_call_data_done(r->up, it->len);
    }
  }
  if (!r->up_over) rpc_call_cancel(r->up);
}

static int h_relay(rpc_call_t *call, const Node__FetchStripeRequest *req, void *ctx) {
  relay_t *r = ctx;
  r->down = call;
  r->down_over = r->up_over = false;
  rpc_call_cbs_t cbs = {NULL, NULL, down_writable, down_done};
  rpc_call_set_cbs(call, &cbs, r);
  r->up = rpc_start_node_fetch_stripe(r->a_conn, req, (seconds + 10) * 1000, &up_cbs, r);
  return r->up ? 0 : -errno;
}

static void setup_relay(server_t *s) {
  relay.s = s;
  rpc_engine_t *e = s->e;
  relay.a_conn = connect_ready(e, relay.a_port, &relay.a_w);
  FD_ASSERT(rpc_serve_node_fetch_stripe(e, h_relay, &relay) == 0);
}

static int bench_relay(void) {
  server_t a = {.setup = setup_source, .pool_bufs = 16};
  relay.a_port = server_start(&a);
  server_t b = {.setup = setup_relay, .pool_bufs = 16};
  uint16_t b_port = server_start(&b);
  sink_pool = fd_pool_create(16, chunk_bytes);
  rpc_engine_opts_t o = opts(sink_pool);
  rpc_engine_t *e = rpc_engine_create(&o);
  waiter_t w = {0};
  rpc_conn_t *c = connect_ready(e, b_port, &w);
  double gbps = sink_measure(e, c);
  printf("RESULT relay_gbps %.2f Gbit/s\n", gbps);
  rpc_engine_destroy(e);
  server_stop(&b);
  server_stop(&a);
  fd_pool_destroy(sink_pool);
  return 0;
}

/* ---- the splice alternative: raw TCP A -> B -> C, B never sees the bytes ---- */

static int listen_any(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  socklen_t len = sizeof(sa);
  FD_ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 4) == 0);
  getsockname(fd, (struct sockaddr *)&sa, &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

static int dial(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  FD_ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
  return fd;
}

static _Atomic bool splice_stop;

static void *splice_source(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint8_t *buf = malloc(chunk_bytes);
  memset(buf, 7, chunk_bytes);
  while (!atomic_load(&splice_stop))
    if (send(fd, buf, chunk_bytes, MSG_NOSIGNAL) <= 0) break;
  free(buf);
  close(fd);
  return NULL;
}

/* B: io_uring SPLICE socket -> pipe, then pipe -> socket, linked. */
static void *splice_relay(void *arg) {
  int *fds = arg; /* in, out */
  int p[2];
  FD_ASSERT(pipe(p) == 0);
  fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
  struct io_uring ring;
  FD_ASSERT(io_uring_queue_init(8, &ring, 0) == 0);
  while (!atomic_load(&splice_stop)) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    FD_ASSERT(sqe);
    io_uring_prep_splice(sqe, fds[0], -1, p[1], -1, 1 << 20, SPLICE_F_MOVE);
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe *cqe;
    io_uring_wait_cqe(&ring, &cqe);
    int n = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (n <= 0) break;
    while (n > 0) {
      sqe = io_uring_get_sqe(&ring);
      FD_ASSERT(sqe);
      io_uring_prep_splice(sqe, p[0], -1, fds[1], -1, (unsigned)n, SPLICE_F_MOVE);
      io_uring_submit_and_wait(&ring, 1);
      io_uring_wait_cqe(&ring, &cqe);
      int m = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      if (m <= 0) goto out;
      n -= m;
    }
  }
out:
  io_uring_queue_exit(&ring);
  close(p[0]);
  close(p[1]);
  close(fds[1]);
  return NULL;
}

static int bench_splice(void) {
  uint16_t pb, pc;
  int lb = listen_any(&pb), lc = listen_any(&pc);
  int a_out = dial(pb), b_in = accept(lb, NULL, NULL);
  int b_out = dial(pc), c_in = accept(lc, NULL, NULL);
  int fds[2] = {b_in, b_out};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, splice_source, (void *)(intptr_t)a_out);
  pthread_create(&tb, NULL, splice_relay, fds);
  uint8_t *buf = malloc(chunk_bytes);
  uint64_t bytes = 0, warm = fd_now_ms() + 500, t0 = 0, b0 = 0;
  uint64_t until = warm + (uint64_t)seconds * 1000;
  bool measuring = false;
  while (fd_now_ms() < until) {
    ssize_t n = recv(c_in, buf, chunk_bytes, 0);
    if (n <= 0) break;
    bytes += (uint64_t)n;
    if (!measuring && fd_now_ms() >= warm) {
      measuring = true;
      t0 = fd_now_ns();
      b0 = bytes;
    }
  }
  double gbps = (double)(bytes - b0) * 8 / (double)(fd_now_ns() - t0);
  atomic_store(&splice_stop, true);
  shutdown(c_in, SHUT_RDWR);
  shutdown(b_in, SHUT_RDWR);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  printf("RESULT splice_relay_gbps %.2f Gbit/s\n", gbps);
  close(c_in);
  close(b_in);
  close(lb);
  close(lc);
  free(buf);
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: rpc_bench unary|stream|relay|splice [--clients N] [--seconds S]\n"
          "                 [--chunk BYTES] [--send zc|copy]\n"
          "  unary   ping-pong calls/s and p50/p99 latency with N concurrent clients\n"
          "  stream  one-hop bulk throughput (chunk headers + DATA frames)\n"
          "  relay   A -> B -> C, B forwarding each chunk from its receive buffer\n"
          "  splice  raw TCP A -> B -> C, B splicing socket -> pipe -> socket\n"
          "  --send  how bulk buffers are sent: auto (default: copy on loopback),\n"
          "          zc (IORING_OP_SEND_ZC) or copy (IORING_OP_SEND); never a userspace copy\n");
}

int main(int argc, char **argv) {
  fd_log_init("rpc_bench", FD_LOG_WARN);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--clients")) nclients = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--seconds")) seconds = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--chunk")) chunk_bytes = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--send"))
      send_mode = !strcmp(argv[i + 1], "zc")     ? RPC_BULK_SEND_ZC
                  : !strcmp(argv[i + 1], "copy") ? RPC_BULK_SEND_COPY
                                                 : RPC_BULK_SEND_AUTO;
    else {
      usage(stderr);
      return 2;
    }
  }
  if (!nclients || !seconds || chunk_bytes % FD_DIRECT_ALIGN || !chunk_bytes) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "unary")) return bench_unary();
  if (!strcmp(argv[1], "stream")) return bench_stream();
  if (!strcmp(argv[1], "relay")) return bench_relay();
  if (!strcmp(argv[1], "splice")) return bench_splice();
  usage(stderr);
  return 2;
}
