/* Client-streaming calls: Publish with the admin role, chunk headers then DATA frames from the client, one reply. */
#include "stream_util.h"

typedef struct pub_state {
  test_server_t *s;
  uint32_t chunks, crc;
  uint64_t bytes;
} pub_state_t;

static void pub_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  pub_state_t *p = arg;
  p->bytes += len;
  p->crc = fd_crc32c(p->crc, buf, len);
  fd_pool_put(p->s->pool, buf); /* a real origin writes it to disk first */
  rpc_call_data_done(call, len);
}

static void pub_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  free(arg);
}

static int h_publish(rpc_call_t *call, const Origin__PublishPart *part, void *ctx) {
  pub_state_t *p = rpc_call_arg(call);
  if (!p) {
    if (!part || part->part_case != ORIGIN__PUBLISH_PART__PART_BEGIN) return -EINVAL;
    if (strcmp(part->begin->name, "big.img") != 0) return -EINVAL;
    p = calloc(1, sizeof(*p));
    p->s = ctx;
    rpc_call_cbs_t cbs = {NULL, pub_data, NULL, pub_done};
    rpc_call_set_cbs(call, &cbs, p);
    return 0;
  }
  if (part) {
    if (part->part_case != ORIGIN__PUBLISH_PART__PART_CHUNK) return -EINVAL;
    p->chunks++;
    return 0;
  }
  /* The end of the client's stream: answer once. */
  Origin__PublishReply r = ORIGIN__PUBLISH_REPLY__INIT;
  r.version = p->crc; /* echoes what arrived, for the test to check */
  int rc = rpc_call_send(call, &r.base);
  if (rc < 0) return rc;
  return rpc_call_finish(call, RPC_OK, NULL);
}

static void setup(test_server_t *s) {
  assert_int_equal(rpc_serve_origin_publish(s->e, h_publish, s), 0);
}

/* The client side of a publish, resumed from on_writable. */
typedef struct pub_client {
  test_call_t t;
  fd_pool_t *pool;
  uint32_t next, count, len;
  bool header_sent, closed;
} pub_client_t;

static void client_buf_back(void *buf, void *arg) { fd_pool_put(((pub_client_t *)arg)->pool, buf); }

static void pub_pump(pub_client_t *pc) {
  while (pc->next < pc->count) {
    if (!pc->header_sent) {
      Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
      h.index = pc->next;
      h.length = pc->len;
      Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
      part.part_case = ORIGIN__PUBLISH_PART__PART_CHUNK;
      part.chunk = &h;
      int rc = rpc_call_send(pc->t.call, &part.base);
      if (rc == -EAGAIN) return;
      assert_int_equal(rc, 0);
      pc->header_sent = true;
    }
    uint8_t *buf = fd_pool_get(pc->pool);
    if (!buf) return;
    fill_chunk(buf, pc->next, pc->len);
    int rc = rpc_call_send_data(pc->t.call, buf, pc->len, client_buf_back, pc);
    if (rc == -EAGAIN) {
      fd_pool_put(pc->pool, buf);
      return;
    }
    assert_int_equal(rc, 0);
    pc->next++;
    pc->header_sent = false;
  }
  if (!pc->closed) {
    assert_int_equal(rpc_call_close_send(pc->t.call), 0);
    pc->closed = true;
  }
}

static void pub_writable(rpc_call_t *call, void *arg) {
  (void)call;
  pub_pump(arg);
}

static void test_publish(void **state) {
  (void)state;
  const uint32_t chunks = 12, len = 512 * 1024;
  fd_ed25519_key_t admin;
  assert_int_equal(fd_ed25519_generate(&admin), 0);
  test_server_t s = {.opts = test_opts(), .setup = setup, .pool_bufs = 4, .pool_buf_size = len};
  s.opts.admin_pub = admin.pub;
  s.opts.payload_max = len;
  s.opts.stream_window_bytes = len;
  s.opts.conn_window_bytes = len;
  uint16_t port = test_server_start(&s);

  pub_client_t pc = {.count = chunks, .len = len};
  pc.pool = fd_pool_create(8, len);
  rpc_engine_opts_t o = test_opts();
  o.admin_key = &admin;
  o.bulk_pool = pc.pool;
  rpc_engine_t *e = rpc_engine_create(&o);
  assert_non_null(e);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));

  /* A client-streaming call starts without a request. */
  Origin__PublishPart bad = ORIGIN__PUBLISH_PART__INIT;
  assert_null(rpc_start_origin_publish(tc.c, &bad, 1000, &tcall_cbs, &pc.t));
  assert_int_equal(errno, EINVAL);

  rpc_call_cbs_t cbs = tcall_cbs;
  cbs.on_writable = pub_writable;
  pc.t.call = rpc_start_origin_publish(tc.c, NULL, 10000, &cbs, &pc.t);
  assert_non_null(pc.t.call);
  /* test_call_t is first in pub_client_t: the callbacks share the pointer. */
  Origin__PublishBegin begin = ORIGIN__PUBLISH_BEGIN__INIT;
  begin.name = (char *)"big.img";
  Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
  part.part_case = ORIGIN__PUBLISH_PART__PART_BEGIN;
  part.begin = &begin;
  assert_int_equal(rpc_call_send(pc.t.call, &part.base), 0);
  pub_pump(&pc);
  assert_true(pump_until(e, &pc.t.done, 10000));
  assert_int_equal(pc.t.code, RPC_OK);
  assert_int_equal(pc.next, chunks);
  assert_int_equal(pc.t.msgs, 1);
  assert_int_equal(pc.t.last_u64, expected_crc(chunks, len));
  rpc_stats_t cs;
  rpc_engine_get_stats(e, &cs);
  assert_true(cs.blocked_ns > 0); /* the server's one-chunk window held us back */

  /* Without the admin role the same call is refused. */
  rpc_engine_destroy(e);
  assert_int_equal(fd_pool_available(pc.pool), 8);
  o.admin_key = NULL;
  e = rpc_engine_create(&o);
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  memset(&pc.t, 0, sizeof(pc.t));
  pc.t.call = rpc_start_origin_publish(tc.c, NULL, 2000, &tcall_cbs, &pc.t);
  assert_true(pump_until(e, &pc.t.done, 3000));
  assert_int_equal(pc.t.code, RPC_PERMISSION_DENIED);
  rpc_engine_destroy(e);
  fd_pool_destroy(pc.pool);
  test_server_stop(&s);
  assert_int_equal(s.stats.protocol_errors, 0);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_publish)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
