/* fdsched's Register and Heartbeat replies carry every live origin with the address it registered (nodes with bare-id origins learn them there); dead origins leave the list, replayed ones are in it after a restart. */
#include "fdsched_util.h"

/* The origins of one reply, as "id@addr:port" joined by ',' in out. */
static void origins_text(Sched__Peer **peers, size_t n, char *out, size_t len) {
  size_t at = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && at < len; i++)
    at += (size_t)snprintf(out + at, len - at, "%s%s@%s:%u", i ? "," : "", peers[i]->node_id,
                           peers[i]->addr, peers[i]->port);
}

/* RegisterNode; the reply's origins into out. */
static void reg(rpc_engine_t *e, rpc_conn_t *c, const char *id, uint16_t port, bool origin,
                char *out, size_t len) {
  Sched__NodeInfo ni = SCHED__NODE_INFO__INIT;
  ni.node_id = (char *)id;
  ni.region = (char *)"r1";
  ni.zone = (char *)"z1";
  ni.addr = (char *)"127.0.0.1";
  ni.port = port;
  ni.nic_bps = 10000000000ull;
  ni.origin = origin;
  Sched__RegisterRequest req = SCHED__REGISTER_REQUEST__INIT;
  req.node = &ni;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_register(c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__RegisterReply *r = fdt_reply(&t, 0, &sched__register_reply__descriptor);
  origins_text(r->origins, r->n_origins, out, len);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  fdt_call_reset(&t);
}

/* Heartbeat; the reply's origins into out. */
static void hb(rpc_engine_t *e, rpc_conn_t *c, const char *id, char *out, size_t len) {
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  req.node_id = (char *)id;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_heartbeat(c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__HeartbeatReply *r = fdt_reply(&t, 0, &sched__heartbeat_reply__descriptor);
  origins_text(r->origins, r->n_origins, out, len);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  fdt_call_reset(&t);
}

static void test_origins_in_replies(void **state) {
  fdt_sched_t *s = *state;
  fdt_setup(s);
  s->extra[0] = "scheduler.heartbeat_ms=100";
  s->extra[1] = "scheduler.suspect_misses=2";
  s->extra[2] = "scheduler.dead_misses=4";
  s->extra[3] = "scheduler.stream_loss_is_death=false";
  fdt_start(s);
  rpc_engine_t *e = fdt_engine(s->key, sizeof(s->key), NULL);
  fdt_conn_t tc;
  assert_true(fdt_connect(e, s->port, &tc));
  char got[512];

  /* Each reply lists the origins registered so far, nodes never. */
  reg(e, tc.c, "o1", 9001, true, got, sizeof(got));
  assert_string_equal(got, "o1@127.0.0.1:9001");
  reg(e, tc.c, "n1", 9101, false, got, sizeof(got));
  assert_string_equal(got, "o1@127.0.0.1:9001");
  reg(e, tc.c, "o2", 9002, true, got, sizeof(got));
  assert_string_equal(got, "o1@127.0.0.1:9001,o2@127.0.0.1:9002");
  hb(e, tc.c, "n1", got, sizeof(got));
  assert_string_equal(got, "o1@127.0.0.1:9001,o2@127.0.0.1:9002");
  hb(e, tc.c, "o1", got, sizeof(got));
  assert_string_equal(got, "o1@127.0.0.1:9001,o2@127.0.0.1:9002");

  /* An origin back on another port: the new address. */
  reg(e, tc.c, "o2", 9012, true, got, sizeof(got));
  assert_string_equal(got, "o1@127.0.0.1:9001,o2@127.0.0.1:9012");

  /* o1 falls silent: once dead it leaves the list; back, it is in it again. */
  uint64_t until = fd_now_ms() + 5000;
  do {
    usleep(50000);
    hb(e, tc.c, "n1", got, sizeof(got));
    hb(e, tc.c, "o2", got, sizeof(got));
  } while (strcmp(got, "o2@127.0.0.1:9012") != 0 && fd_now_ms() < until);
  assert_string_equal(got, "o2@127.0.0.1:9012");
  hb(e, tc.c, "o1", got, sizeof(got)); /* a heartbeat revives it */
  assert_string_equal(got, "o1@127.0.0.1:9001,o2@127.0.0.1:9012");

  /* Restarted, fdsched knows the replayed origins before they register again. */
  assert_true(WIFEXITED(fdt_stop(s, SIGTERM)));
  fdt_start(s);
  rpc_conn_close(tc.c);
  fdt_pump(e, &tc.closed, 2000);
  assert_true(fdt_connect(e, s->port, &tc));
  reg(e, tc.c, "n2", 9102, false, got, sizeof(got));
  assert_string_equal(got, "o1@127.0.0.1:9001,o2@127.0.0.1:9012");
  rpc_engine_destroy(e);
  assert_true(WIFEXITED(fdt_stop(s, SIGTERM)));
}

int main(void) {
  fdt_log_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_origins_in_replies, fdt_group_setup, fdt_group_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
