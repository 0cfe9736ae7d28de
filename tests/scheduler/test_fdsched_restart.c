/* fdsched restarts (SIGKILL and SIGTERM) keep every version registered through the real RPC, and its nodes. */
#include "fdsched_util.h"

/* ListVersions(name) as a version list; returns how many, fills vers. */
static uint32_t list_versions(rpc_engine_t *e, rpc_conn_t *c, const char *name, uint64_t *vers,
                              uint32_t max) {
  Sched__ListVersionsRequest req = SCHED__LIST_VERSIONS_REQUEST__INIT;
  req.name = (char *)name;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_list_versions(c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__ListVersionsReply *r = fdt_reply(&t, 0, &sched__list_versions_reply__descriptor);
  uint32_t n = 0;
  for (size_t i = 0; i < r->n_versions && n < max; i++) {
    assert_string_equal(r->versions[i]->name, name);
    assert_int_equal(r->versions[i]->size_bytes, 4u * FD_CHUNK_SIZE_MIN);
    assert_true(r->versions[i]->created_s > 0);
    vers[n++] = r->versions[i]->version;
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  fdt_call_reset(&t);
  return n;
}

static uint32_t count_nodes(rpc_engine_t *e, rpc_conn_t *c) {
  Sched__ListNodesRequest req = SCHED__LIST_NODES_REQUEST__INIT;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_list_nodes(c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__ListNodesReply *r = fdt_reply(&t, 0, &sched__list_nodes_reply__descriptor);
  uint32_t n = (uint32_t)r->n_nodes;
  protobuf_c_message_free_unpacked(&r->base, NULL);
  fdt_call_reset(&t);
  return n;
}

static void reconnect(fdt_sched_t *s, rpc_engine_t *e, fdt_conn_t *tc) {
  if (tc->c) rpc_conn_close(tc->c);
  fdt_pump(e, &tc->closed, 2000);
  assert_true(fdt_connect(e, s->port, tc));
}

static void test_restart_keeps_versions(void **state) {
  fdt_sched_t *s = *state;
  fdt_setup(s);
  fdt_start(s);
  rpc_engine_t *e = fdt_engine(s->key, sizeof(s->key), NULL);
  fdt_conn_t tc;
  assert_true(fdt_connect(e, s->port, &tc));
  assert_int_equal(fdt_register(e, tc.c, "origin-a", "r1", "z1", 9001, true), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "node-1", "r1", "z1", 9101, false), RPC_OK);
  for (uint64_t v = 1; v <= 3; v++)
    assert_int_equal(fdt_register_version(e, tc.c, &s->admin, "bigfile", v, "origin-a"), RPC_OK);
  /* A different manifest for a registered version is refused. */
  uint8_t *man;
  size_t len;
  fdt_manifest(&s->admin, "bigfile", 2, 1, &man, &len);
  assert_int_equal(fdt_register_manifest(e, tc.c, man, len, 2, "origin-a"), RPC_ALREADY_EXISTS);
  free(man);
  assert_int_equal(fdt_register_version(e, tc.c, &s->admin, "bigfile", 5, "origin-a"), RPC_OK);
  assert_int_equal(fdt_register_version(e, tc.c, &s->admin, "bigfile", 4, "origin-a"),
                   RPC_FAILED_PRECONDITION);
  uint64_t vers[16];
  assert_int_equal(list_versions(e, tc.c, "bigfile", vers, 16), 4);
  assert_int_equal(vers[3], 5);

  /* SIGKILL: nothing acknowledged may be lost. */
  int st = fdt_stop(s, SIGKILL);
  assert_true(WIFSIGNALED(st));
  fdt_start(s); /* same port (SO_REUSEADDR) */
  reconnect(s, e, &tc);
  assert_int_equal(list_versions(e, tc.c, "bigfile", vers, 16), 4);
  assert_int_equal(vers[0], 1);
  assert_int_equal(vers[1], 2);
  assert_int_equal(vers[2], 3);
  assert_int_equal(vers[3], 5);
  assert_int_equal(count_nodes(e, tc.c), 2);
  /* The replayed node is known: its heartbeat is accepted without a new register. */
  assert_int_equal(fdt_heartbeat(e, tc.c, "node-1"), RPC_OK);
  assert_int_equal(fdt_heartbeat(e, tc.c, "nobody"), RPC_NOT_FOUND);
  /* The same manifest registered twice (the head retrying after a lost reply) is fine. */
  fdt_manifest(&s->admin, "bigfile", 6, 0, &man, &len);
  assert_int_equal(fdt_register_manifest(e, tc.c, man, len, 6, "origin-a"), RPC_OK);
  assert_int_equal(fdt_register_manifest(e, tc.c, man, len, 6, "origin-a"), RPC_OK);
  free(man);

  /* SIGTERM: exit 0 after a checkpoint; everything is still there. */
  st = fdt_stop(s, SIGTERM);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  fdt_start(s);
  reconnect(s, e, &tc);
  assert_int_equal(list_versions(e, tc.c, "bigfile", vers, 16), 5);
  assert_int_equal(vers[4], 6);
  assert_int_equal(count_nodes(e, tc.c), 2);
  assert_int_equal(list_versions(e, tc.c, "otherfile", vers, 16), 0);

  /* A third restart, straight after another SIGKILL, replays checkpoint + log. */
  assert_int_equal(fdt_register_version(e, tc.c, &s->admin, "otherfile", 1, "origin-a"), RPC_OK);
  st = fdt_stop(s, SIGKILL);
  fdt_start(s);
  reconnect(s, e, &tc);
  assert_int_equal(list_versions(e, tc.c, "bigfile", vers, 16), 5);
  assert_int_equal(list_versions(e, tc.c, "otherfile", vers, 16), 1);

  rpc_conn_close(tc.c);
  rpc_engine_destroy(e);
  st = fdt_stop(s, SIGTERM);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
  fdt_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test_setup_teardown(test_restart_keeps_versions, fdt_group_setup, fdt_group_teardown)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
