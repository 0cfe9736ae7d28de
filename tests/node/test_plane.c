/* The chunk plane (nd_plane.h) with real engines, stores and a loopback stream, and faults injected below storage: a rejected chunk, a failed write, a full pool, a cancelled stream. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_log.h"
#include "nd_plane_int.h" /* white-box: receiving sinks and buffer holders */

#define CHUNK (64u * 1024u)
#define CHUNKS 24u
#define POOL 32u
#define WINDOW 4u

static const uint8_t key[] = "fdist-test-cluster-key-0123456789";

/* One side: an engine, its pool, a store with a fault hook, a plane. */
typedef struct side {
  char dir[128];
  fd_pool_t *pool;
  rpc_engine_t *e;
  st_store_t *store;
  nd_plane_t *p;
  uint16_t port;
  /* fault: the first `fail_writes` chunk writes of chunk `fail_chunk` fail with -EIO */
  uint32_t fail_chunk, fail_writes;
  uint32_t fail_syncs; /* ... and the first `fail_syncs` fdatasyncs of chunk writes */
  uint32_t durable; /* chunk_durable hook calls */
} side_t;

typedef struct env {
  side_t a, b; /* a serves, b receives */
  fd_ed25519_key_t admin;
  uint8_t data[CHUNKS * CHUNK];
  uint8_t *menc;
  size_t menc_len;
} env_t;

static int fault(void *arg, st_io_kind_t kind, uint32_t chunk) {
  side_t *s = arg;
  if (kind == ST_IO_WRITE && chunk == s->fail_chunk && s->fail_writes) {
    s->fail_writes--;
    return -EIO;
  }
  if (kind == ST_IO_SYNC && s->fail_syncs) {
    s->fail_syncs--;
    return -EIO;
  }
  return 0;
}

static void on_durable(void *arg, nd_ver_t *v, uint32_t index) {
  (void)v;
  (void)index;
  ((side_t *)arg)->durable++;
}

static int side_init(side_t *s, const fd_ed25519_key_t *admin) {
  memset(s, 0, sizeof(*s));
  s->fail_chunk = UINT32_MAX;
  snprintf(s->dir, sizeof(s->dir), "/var/tmp/fd-plane-test-XXXXXX");
  if (!mkdtemp(s->dir)) return -errno;
  s->pool = fd_pool_create(POOL, CHUNK);
  if (!s->pool) return -ENOMEM;
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = key;
  o.cluster_key_len = sizeof(key) - 1;
  o.admin_pub = admin->pub;
  o.bulk_pool = s->pool;
  o.payload_max = 1024 * 1024;
  o.stream_window_bytes = WINDOW * CHUNK;
  o.conn_window_bytes = WINDOW * CHUNK;
  s->e = rpc_engine_create(&o);
  if (!s->e) return errno == ENOSYS || errno == EPERM ? 77 : -errno;
  st_config_t sc;
  st_config_defaults(&sc);
  sc.data_dir = s->dir;
  sc.ring = rpc_engine_ring(s->e);
  sc.pool = s->pool;
  sc.pool_registered = rpc_engine_pool_registered(s->e);
  sc.queue_depth = 8;
  sc.have_trusted_key = true;
  memcpy(sc.trusted_pub, admin->pub, FD_ED25519_PUB_LEN);
  sc.fault = fault;
  sc.fault_arg = s;
  int rc = st_store_open(&sc, &s->store);
  if (rc) return rc;
  nd_plane_opts_t po = {.e = s->e, .ring = rpc_engine_ring(s->e), .pool = s->pool,
                        .store = s->store, .data_dir = s->dir, .window_chunks = WINDOW,
                        .keep_versions = 2, .hooks = {on_durable, NULL, s}};
  if (!(s->p = nd_plane_create(&po))) return -ENOMEM;
  if ((rc = nd_plane_serve(s->p))) return rc;
  return rpc_listen(s->e, "127.0.0.1", 0, &s->port);
}

static void side_fini(side_t *s) {
  /* bounded: after a failed assert the plane may never go idle */
  for (uint64_t until = fd_now_ms() + 5000; !nd_plane_idle(s->p) && fd_now_ms() < until;)
    rpc_engine_run_once(s->e, 1);
  rpc_engine_destroy(s->e);
  nd_plane_destroy(s->p);
  st_store_close(s->store);
  assert_int_equal(fd_pool_available(s->pool), fd_pool_count(s->pool)); /* nothing leaked */
  fd_pool_destroy(s->pool);
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", s->dir);
}

/* Runs both engines (one thread) until *flag is true or ms pass. */
static bool run_until(env_t *env, const bool *flag, uint32_t ms) {
  uint64_t until = fd_now_ms() + ms;
  while (!(flag && *flag) && fd_now_ms() < until) {
    rpc_engine_run_once(env->a.e, 1);
    nd_plane_tick(env->a.p);
    rpc_engine_run_once(env->b.e, 1);
    nd_plane_tick(env->b.p);
  }
  return flag && *flag;
}

static int setup(void **state) {
  env_t *env = calloc(1, sizeof(*env));
  assert_non_null(env);
  assert_int_equal(fd_ed25519_generate(&env->admin), 0);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < sizeof(env->data); i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    env->data[i] = (uint8_t)x;
  }
  st_manifest_t *m;
  assert_int_equal(st_manifest_new("f.img", 1, 0, sizeof(env->data), CHUNK, &m), 0);
  for (uint32_t i = 0; i < m->chunk_count; i++)
    st_manifest_set_chunk(m, i, env->data + (size_t)i * CHUNK, CHUNK);
  assert_int_equal(st_manifest_sign(m, &env->admin), 0);
  assert_int_equal(st_manifest_encode(m, &env->menc, &env->menc_len), 0);
  st_manifest_free(m);
  int rc = side_init(&env->a, &env->admin);
  if (rc == 77) {
    free(env);
    exit(77); /* no io_uring here: skipped */
  }
  assert_int_equal(rc, 0);
  assert_int_equal(side_init(&env->b, &env->admin), 0);
  *state = env;
  return 0;
}

static int teardown(void **state) {
  env_t *env = *state;
  side_fini(&env->a);
  side_fini(&env->b);
  free(env->menc);
  free(env);
  return 0;
}

/* ---- a sink fed by hand ---------------------------------------------------------- */

typedef struct seen {
  uint32_t calls;
  int last;
  uint32_t last_index;
} seen_t;

static void on_chunk(void *owner, nd_sink_t *s, uint32_t index, int res) {
  (void)s;
  seen_t *seen = owner;
  seen->calls++;
  seen->last = res;
  seen->last_index = index;
}

/* Hands chunk i to the sink as a stream would: header, then one DATA frame
 * in a pool buffer; flip corrupts a byte. */
static void feed(side_t *s, nd_sink_t *k, const uint8_t *data, uint32_t i, bool flip) {
  Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
  h.index = i;
  h.length = CHUNK;
  nd_sink_header(k, &h);
  uint8_t *buf = fd_pool_get(s->pool);
  assert_non_null(buf);
  memcpy(buf, data + (size_t)i * CHUNK, CHUNK);
  if (flip) buf[100] ^= 1;
  nd_sink_data(k, NULL, buf, CHUNK);
}

/* A sink of side s into v, heard by seen, fed by hand (no call). */
static void sink_open(side_t *s, nd_sink_t *k, nd_ver_t *v, seen_t *seen) {
  nd_sink_init(k, s->p, on_chunk, seen);
  k->ver = v;
  nd_sink_start(k, NULL);
}

static nd_ver_t *begin(env_t *env, side_t *s) {
  nd_ver_t *v = NULL;
  assert_int_equal(nd_ver_begin(s->p, env->menc, env->menc_len, &v), 0);
  nd_ver_get(v);
  return v;
}

/* A chunk failing SHA-256 is refused before anything is written: the owner
 * hears -EBADMSG, the chunk stays missing, the buffer goes back. */
static void test_rejected_chunk(void **state) {
  env_t *env = *state;
  side_t *b = &env->b;
  nd_ver_t *v = begin(env, b);
  seen_t seen = {0};
  nd_sink_t k;
  sink_open(b, &k, v, &seen);
  uint32_t avail = fd_pool_available(b->pool);
  feed(b, &k, env->data, 3, true);
  assert_int_equal(seen.calls, 1);
  assert_int_equal(seen.last, -EBADMSG);
  assert_int_equal(k.err, -EBADMSG);
  assert_int_equal(k.puts, 0);
  assert_false(nd_ver_has(b->p, v, 3));
  assert_int_equal(fd_pool_available(b->pool), avail);
  assert_int_equal(b->durable, 0);
  /* the good copy after it is taken */
  feed(b, &k, env->data, 3, false);
  while (k.puts) rpc_engine_run_once(b->e, 1);
  assert_int_equal(seen.last, 0);
  assert_true(nd_ver_has(b->p, v, 3));
  assert_int_equal(b->durable, 1);
  assert_int_equal(k.rx_bytes, CHUNK);
  nd_sink_end(&k);
  nd_ver_put(v);
}

/* A chunk's buffer (and its sender's credit) goes back once it is written,
 * before its fdatasync; it is held (its bit, the durable hook, the owner's
 * callback) only after that fdatasync, and not at all when the fdatasync
 * fails. */
static void test_written_before_held(void **state) {
  env_t *env = *state;
  side_t *b = &env->b;
  nd_ver_t *v = begin(env, b);
  seen_t seen = {0};
  nd_sink_t k;
  sink_open(b, &k, v, &seen);
  uint32_t avail = fd_pool_available(b->pool);
  for (int pass = 0; pass < 2; pass++) {
    b->fail_syncs = pass == 0; /* first the fdatasync fails, then it does not */
    feed(b, &k, env->data, 7, false);
    assert_int_equal(fd_pool_available(b->pool), avail - 1);
    /* The turn that completes the write gives the buffer back; the
     * fdatasync it queues completes on a later turn. */
    for (uint64_t until = fd_now_ms() + 5000;
         fd_pool_available(b->pool) < avail && fd_now_ms() < until;)
      rpc_engine_run_once(b->e, 1);
    assert_int_equal(fd_pool_available(b->pool), avail);
    assert_int_equal(k.puts, 1);
    assert_int_equal(seen.calls, (uint32_t)pass);
    assert_false(nd_ver_has(b->p, v, 7));
    assert_int_equal(b->durable, 0);
    while (k.puts) rpc_engine_run_once(b->e, 1);
    assert_int_equal(seen.calls, (uint32_t)pass + 1);
    assert_int_equal(seen.last, pass == 0 ? -EIO : 0);
    assert_int_equal(nd_ver_has(b->p, v, 7), pass == 1);
    assert_int_equal(b->durable, (uint32_t)pass);
  }
  nd_sink_end(&k);
  nd_ver_put(v);
}

/* A write the disk fails: the owner hears -EIO, the bit is not set, the
 * buffer goes back; the same chunk again (the disk healthy) lands. */
static void test_failed_write(void **state) {
  env_t *env = *state;
  side_t *b = &env->b;
  nd_ver_t *v = begin(env, b);
  seen_t seen = {0};
  nd_sink_t k;
  sink_open(b, &k, v, &seen);
  uint32_t avail = fd_pool_available(b->pool);
  b->fail_chunk = 5;
  b->fail_writes = 1;
  feed(b, &k, env->data, 5, false);
  while (k.puts) rpc_engine_run_once(b->e, 1);
  assert_int_equal(seen.calls, 1);
  assert_int_equal(seen.last, -EIO);
  assert_int_equal(k.err, -EIO);
  assert_false(nd_ver_has(b->p, v, 5));
  assert_int_equal(fd_pool_available(b->pool), avail);
  assert_int_equal(b->durable, 0);
  feed(b, &k, env->data, 5, false);
  while (k.puts) rpc_engine_run_once(b->e, 1);
  assert_int_equal(seen.last, 0);
  assert_true(nd_ver_has(b->p, v, 5));
  assert_int_equal(fd_pool_available(b->pool), avail);
  nd_sink_end(&k);
  nd_ver_put(v);
}

/* ---- a real stream: a on its store, b fetching -------------------------------------- */

/* a holds the whole version, complete. */
static nd_ver_t *a_complete(env_t *env) {
  side_t *a = &env->a;
  nd_ver_t *v = begin(env, a);
  nd_sink_t k;
  seen_t seen = {0};
  sink_open(a, &k, v, &seen);
  for (uint32_t i = 0; i < CHUNKS; i++) {
    feed(a, &k, env->data, i, false);
    while (k.puts) rpc_engine_run_once(a->e, 1);
  }
  nd_sink_end(&k);
  int rc;
  while ((rc = nd_ver_complete(a->p, v, NULL, NULL)) == -EAGAIN) /* a bitmap write in flight */
    rpc_engine_run_once(a->e, 1);
  assert_int_equal(rc, 0);
  while (!v->complete) rpc_engine_run_once(a->e, 1);
  return v;
}

typedef struct fetch {
  nd_sink_t sink;
  rpc_conn_t *conn;
  bool ready, done;
  rpc_code_t code;
  uint32_t frames, cancel_after; /* cancel_after 0: never */
  rpc_call_t *call;
} fetch_t;

static void f_ready(rpc_conn_t *c, void *arg) {
  (void)c;
  ((fetch_t *)arg)->ready = true;
}
static void f_closed(rpc_conn_t *c, int err, void *arg) {
  (void)c;
  (void)err;
  (void)arg;
}
static void f_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  fetch_t *f = arg;
  if (m->descriptor == &node__chunk_header__descriptor)
    nd_sink_header(&f->sink, (const Node__ChunkHeader *)m);
}
static void f_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  fetch_t *f = arg;
  nd_sink_data(&f->sink, call, buf, len);
  if (++f->frames == f->cancel_after) rpc_call_cancel(call);
}
static void f_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)msg;
  fetch_t *f = arg;
  f->code = code;
  f->done = true;
  nd_sink_end(&f->sink);
}

/* Opens a FetchStripe of the whole version (one stripe) with b's have bitmap. */
static void fetch_start(env_t *env, fetch_t *f, nd_ver_t *vb) {
  f->ready = f->done = false;
  f->frames = 0;
  if (!f->conn) {
    static const rpc_conn_cbs_t cbs = {f_ready, f_closed};
    f->conn = rpc_connect(env->b.e, "127.0.0.1", env->a.port, &cbs, f);
    assert_non_null(f->conn);
    assert_true(run_until(env, &f->ready, 5000));
  }
  uint8_t have[(CHUNKS + 7) / 8] = {0};
  for (uint32_t i = 0; i < CHUNKS; i++)
    if (nd_ver_has(env->b.p, vb, i)) have[i / 8] |= (uint8_t)(1u << (i % 8));
  Node__FetchStripeRequest req = NODE__FETCH_STRIPE_REQUEST__INIT;
  req.name = (char *)"f.img";
  req.version = 1;
  req.stripe = 0;
  req.stripes = 1;
  req.have_bitmap.data = have;
  req.have_bitmap.len = sizeof(have);
  rpc_call_cbs_t cbs = {f_msg, f_data, NULL, f_done};
  f->call = rpc_start_node_fetch_stripe(f->conn, &req, 30000, &cbs, f);
  assert_non_null(f->call);
  nd_sink_start(&f->sink, f->call);
}

static uint32_t held(env_t *env, nd_ver_t *vb) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < CHUNKS; i++) k += nd_ver_has(env->b.p, vb, i);
  return k;
}

/* With a's pool at its reserve, a sender takes no buffer for a disk read:
 * the child waits (nothing fails); once buffers come back the stream runs
 * to the end, and every buffer and version reference is given back. */
static void test_full_pool(void **state) {
  env_t *env = *state;
  side_t *a = &env->a;
  nd_ver_t *va = a_complete(env);
  nd_ver_t *vb = begin(env, &env->b);
  /* take a's buffers until a sender may not */
  void *taken[POOL];
  uint32_t n = 0;
  while (nd_plane_may_hold(a->p)) taken[n++] = fd_pool_get(a->pool);
  assert_true(n > 0);
  fetch_t f = {0};
  nd_sink_init(&f.sink, env->b.p, NULL, NULL);
  f.sink.ver = vb;
  f.sink.forward = true;
  fetch_start(env, &f, vb);
  run_until(env, NULL, 300);
  assert_false(f.done);
  assert_int_equal(f.frames, 0);       /* nothing sent from a full pool */
  assert_int_equal(held(env, vb), 0);
  while (n) fd_pool_put(a->pool, taken[--n]);
  assert_true(run_until(env, &f.done, 10000));
  assert_int_equal(f.code, RPC_OK);
  while (f.sink.puts) run_until(env, NULL, 5);
  assert_int_equal(held(env, vb), CHUNKS);
  assert_int_equal(f.sink.rx_bytes, (uint64_t)CHUNKS * CHUNK);
  run_until(env, NULL, 50); /* the server side's end */
  assert_int_equal(va->users, 1); /* ours: the sender let go */
  assert_int_equal(fd_pool_available(a->pool), fd_pool_count(a->pool));
  rpc_conn_close(f.conn);
  nd_ver_put(va);
  nd_ver_put(vb);
}

/* A stream cancelled mid-way: the child keeps every chunk that landed (each
 * durable), the parent's sender lets go of its buffers and its version, and
 * a new stream with the child's have bitmap sends only what is missing. */
static void test_cancelled_stream(void **state) {
  env_t *env = *state;
  side_t *a = &env->a;
  nd_ver_t *va = a_complete(env);
  nd_ver_t *vb = begin(env, &env->b);
  fetch_t f = {0};
  nd_sink_init(&f.sink, env->b.p, NULL, NULL);
  f.sink.ver = vb;
  f.cancel_after = 3;
  fetch_start(env, &f, vb);
  assert_true(run_until(env, &f.done, 10000));
  assert_int_equal(f.code, RPC_CANCELLED);
  assert_int_equal(env->b.p->rx_sinks, 0);
  while (f.sink.puts) run_until(env, NULL, 5);
  uint32_t got = held(env, vb);
  assert_int_equal(got, 3); /* frames that landed before the cancel are kept */
  assert_int_equal(env->b.durable, got);
  run_until(env, NULL, 100); /* the cancel reaches a */
  assert_int_equal(va->users, 1);
  assert_int_equal(fd_pool_available(a->pool), fd_pool_count(a->pool));
  uint64_t before = f.sink.rx_bytes;
  f.cancel_after = 0;
  fetch_start(env, &f, vb);
  assert_true(run_until(env, &f.done, 10000));
  assert_int_equal(f.code, RPC_OK);
  while (f.sink.puts) run_until(env, NULL, 5);
  assert_int_equal(held(env, vb), CHUNKS);
  assert_int_equal(f.sink.rx_bytes - before, (uint64_t)(CHUNKS - got) * CHUNK);
  assert_int_equal(f.frames, CHUNKS - got);
  rpc_conn_close(f.conn);
  nd_ver_put(va);
  nd_ver_put(vb);
}

int main(void) {
  fd_log_init("test_node_plane", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_rejected_chunk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_write, setup, teardown),
      cmocka_unit_test_setup_teardown(test_written_before_held, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_pool, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancelled_stream, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
