/* fdsched's Status reports per-version progress (complete / in progress / failed per zone, bytes, ETA); heartbeat replies carry orders and repair peers. */
#include "fdsched_util.h"

#define CHUNK FD_CHUNK_SIZE_MIN
#define CHUNKS 4u

/* A heartbeat reporting chunks of bigfile v1; returns the reply (caller frees). */
static Sched__HeartbeatReply *beat(rpc_engine_t *e, rpc_conn_t *c, const char *id, int64_t chunks) {
  Sched__VersionHeld vh = SCHED__VERSION_HELD__INIT;
  Sched__VersionHeld *vhp = &vh;
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  req.node_id = (char *)id;
  if (chunks >= 0) {
    vh.name = (char *)"bigfile";
    vh.version = 1;
    vh.chunks_present = (uint64_t)chunks;
    vh.complete = chunks == CHUNKS;
    req.n_versions = 1;
    req.versions = &vhp;
  }
  fdt_call_t t = {0};
  t.call = rpc_start_sched_heartbeat(c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__HeartbeatReply *r = fdt_reply(&t, 0, &sched__heartbeat_reply__descriptor);
  fdt_call_reset(&t);
  return r;
}

static Sched__StatusReply *status(rpc_engine_t *e, rpc_conn_t *c) {
  Sched__StatusRequest req = SCHED__STATUS_REQUEST__INIT;
  req.name = (char *)"bigfile";
  fdt_call_t t = {0};
  t.call = rpc_start_sched_status(c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__StatusReply *r = fdt_reply(&t, 0, &sched__status_reply__descriptor);
  fdt_call_reset(&t);
  return r;
}

static const Sched__ZoneProgress *zone(const Sched__VersionProgress *p, const char *region,
                                       const char *z) {
  for (size_t i = 0; i < p->n_zones; i++)
    if (strcmp(p->zones[i]->region, region) == 0 && strcmp(p->zones[i]->zone, z) == 0)
      return p->zones[i];
  fail_msg("no zone %s/%s", region, z);
  return NULL;
}

static void test_progress(void **state) {
  fdt_sched_t *s = *state;
  fdt_setup(s);
  s->extra[0] = "scheduler.heartbeat_ms=100";
  fdt_start(s);
  rpc_engine_t *e = fdt_engine(s->key, sizeof(s->key), NULL);
  fdt_conn_t tc;
  assert_true(fdt_connect(e, s->port, &tc));
  /* Three origins (the default group) so that every stripe finds a slot. */
  assert_int_equal(fdt_register(e, tc.c, "origin-a", "r1", "z1", 9001, true), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "origin-b", "r1", "z2", 9002, true), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "origin-c", "r2", "z1", 9003, true), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "n1", "r1", "z1", 9101, false), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "n2", "r1", "z1", 9102, false), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "n3", "r1", "z2", 9103, false), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "n4", "r2", "z1", 9104, false), RPC_OK);
  assert_int_equal(fdt_register_version(e, tc.c, &s->admin, "bigfile", 1, "origin-a"), RPC_OK);

  /* Routine orders ride on heartbeat replies. */
  Sched__HeartbeatReply *hr = beat(e, tc.c, "n3", -1);
  assert_int_equal(hr->n_orders, 1);
  assert_string_equal(hr->orders[0]->name, "bigfile");
  assert_int_equal(hr->orders[0]->version, 1);
  assert_int_equal(hr->orders[0]->stripe_count, FD_STRIPES_DEFAULT);
  assert_int_equal(hr->orders[0]->n_stripes, FD_STRIPES_DEFAULT);
  for (size_t k = 0; k < hr->orders[0]->n_stripes; k++) {
    const Sched__StripeOrder *so = hr->orders[0]->stripes[k];
    assert_true(so->parent_id && so->parent_id[0]); /* every stripe has a parent */
    assert_string_equal(so->parent_addr, "127.0.0.1");
    assert_true(so->parent_port >= 9001 && so->parent_port <= 9104);
  }
  protobuf_c_message_free_unpacked(&hr->base, NULL);

  /* n4 goes silent and dies; the others report. */
  uint64_t until = fd_now_ms() + 700;
  while (fd_now_ms() < until) {
    protobuf_c_message_free_unpacked(&beat(e, tc.c, "origin-a", -1)->base, NULL);
    protobuf_c_message_free_unpacked(&beat(e, tc.c, "origin-b", -1)->base, NULL);
    protobuf_c_message_free_unpacked(&beat(e, tc.c, "origin-c", -1)->base, NULL);
    protobuf_c_message_free_unpacked(&beat(e, tc.c, "n1", CHUNKS)->base, NULL);
    protobuf_c_message_free_unpacked(&beat(e, tc.c, "n2", 2)->base, NULL);
    protobuf_c_message_free_unpacked(&beat(e, tc.c, "n3", 0)->base, NULL);
    uint64_t next = fd_now_ms() + 50;
    while (fd_now_ms() < next) rpc_engine_run_once(e, 5);
  }
  Sched__StatusReply *r = status(e, tc.c);
  assert_int_equal(r->nodes_alive, 6);
  assert_int_equal(r->nodes_dead, 1);
  assert_int_equal(r->newest_version, 1);
  assert_true(r->leader);
  assert_int_equal(r->n_progress, 1);
  const Sched__VersionProgress *p = r->progress[0];
  assert_string_equal(p->name, "bigfile");
  assert_int_equal(p->version, 1);
  assert_int_equal(p->size_bytes, (uint64_t)CHUNK * CHUNKS);
  assert_int_equal(p->chunk_count, CHUNKS);
  assert_int_equal(p->complete, 1);
  assert_int_equal(p->in_progress, 2);
  assert_int_equal(p->failed, 1);
  assert_int_equal(p->bytes_done, (uint64_t)CHUNK * (CHUNKS + 2));
  assert_int_equal(p->bytes_total, (uint64_t)CHUNK * CHUNKS * 3);
  assert_true(p->elapsed_ms >= 600);
  assert_true(p->throughput_bytes_per_s > 0);
  assert_true(p->eta_ms > 0);
  const Sched__ZoneProgress *z = zone(p, "r1", "z1");
  assert_int_equal(z->complete, 1);
  assert_int_equal(z->in_progress, 1);
  assert_int_equal(z->failed, 0);
  z = zone(p, "r1", "z2");
  assert_int_equal(z->complete, 0);
  assert_int_equal(z->in_progress, 1);
  z = zone(p, "r2", "z1");
  assert_int_equal(z->failed, 1);
  assert_int_equal(z->in_progress + z->complete, 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);

  /* n2 completes; n3, whose parents now hold everything, is told where to
   * pull what it still lacks (repair). */
  protobuf_c_message_free_unpacked(&beat(e, tc.c, "n2", CHUNKS)->base, NULL);
  hr = beat(e, tc.c, "n3", 1);
  assert_int_equal(hr->n_orders, 1);
  assert_true(hr->orders[0]->n_repair_peers > 0);
  for (size_t k = 0; k < hr->orders[0]->n_repair_peers; k++) {
    const char *id = hr->orders[0]->repair_peers[k]->node_id;
    assert_true(strcmp(id, "n1") == 0 || strcmp(id, "n2") == 0 || strncmp(id, "origin-", 7) == 0);
  }
  protobuf_c_message_free_unpacked(&hr->base, NULL);
  hr = beat(e, tc.c, "n1", CHUNKS); /* complete nodes are not given repair peers */
  assert_int_equal(hr->orders[0]->n_repair_peers, 0);
  protobuf_c_message_free_unpacked(&hr->base, NULL);

  r = status(e, tc.c);
  assert_int_equal(r->progress[0]->complete, 2);
  assert_int_equal(r->progress[0]->in_progress, 1);
  protobuf_c_message_free_unpacked(&r->base, NULL);

  /* ListVersions counts the nodes holding the whole version. */
  Sched__ListVersionsRequest lreq = SCHED__LIST_VERSIONS_REQUEST__INIT;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_list_versions(tc.c, &lreq, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__ListVersionsReply *lv = fdt_reply(&t, 0, &sched__list_versions_reply__descriptor);
  assert_int_equal(lv->n_versions, 1);
  assert_int_equal(lv->versions[0]->nodes_complete, 2);
  protobuf_c_message_free_unpacked(&lv->base, NULL);
  fdt_call_reset(&t);
  rpc_conn_close(tc.c);
  rpc_engine_destroy(e);
}

int main(void) {
  fdt_log_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_progress, fdt_group_setup, fdt_group_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
