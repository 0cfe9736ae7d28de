/* fdsched counts the bad-chunk and rejected-manifest reports nodes send on heartbeats and shows them per version in Status. */
#include "fdsched_util.h"

/* One heartbeat carrying reports; returns its code. */
static rpc_code_t beat(rpc_engine_t *e, rpc_conn_t *c, const char *id, Sched__BadChunk **bad,
                       size_t n_bad, Sched__RejectedManifest **rej, size_t n_rej) {
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  req.node_id = (char *)id;
  req.bad_chunks = bad;
  req.n_bad_chunks = n_bad;
  req.rejected = rej;
  req.n_rejected = n_rej;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_heartbeat(c, &req, 5000, &fdt_call_cbs, &t);
  rpc_code_t code = fdt_wait(e, &t);
  fdt_call_reset(&t);
  return code;
}

static const Sched__VersionProgress *progress_of(const Sched__StatusReply *r, uint64_t version) {
  for (size_t i = 0; i < r->n_progress; i++)
    if (r->progress[i]->version == version && !strcmp(r->progress[i]->name, "bigfile"))
      return r->progress[i];
  fail_msg("no progress for bigfile v%llu", (unsigned long long)version);
  return NULL;
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

static void test_reports(void **state) {
  fdt_sched_t *s = *state;
  fdt_setup(s);
  fdt_start(s);
  rpc_engine_t *e = fdt_engine(s->key, sizeof(s->key), NULL);
  fdt_conn_t tc;
  assert_true(fdt_connect(e, s->port, &tc));
  assert_int_equal(fdt_register(e, tc.c, "origin-a", "r1", "z1", 9001, true), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "n1", "r1", "z1", 9101, false), RPC_OK);
  assert_int_equal(fdt_register(e, tc.c, "n2", "r1", "z1", 9102, false), RPC_OK);
  assert_int_equal(fdt_register_version(e, tc.c, &s->admin, "bigfile", 1, "origin-a"), RPC_OK);

  Sched__StatusReply *r = status(e, tc.c);
  const Sched__VersionProgress *p = progress_of(r, 1);
  assert_int_equal(p->bad_chunks_reported, 0);
  assert_int_equal(p->bad_chunks_repaired, 0);
  assert_int_equal(p->manifests_rejected, 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);

  /* n1 finds chunks 2 and 3 bad, n2 refuses a manifest; later n1 repaired 2. */
  Sched__BadChunk b[3] = {SCHED__BAD_CHUNK__INIT, SCHED__BAD_CHUNK__INIT, SCHED__BAD_CHUNK__INIT};
  Sched__BadChunk *bp[3] = {&b[0], &b[1], &b[2]};
  for (int i = 0; i < 3; i++) {
    b[i].name = (char *)"bigfile";
    b[i].version = 1;
  }
  b[0].index = 2;
  b[1].index = 3;
  b[2].index = 2;
  b[2].repaired = true;
  Sched__RejectedManifest m = SCHED__REJECTED_MANIFEST__INIT;
  Sched__RejectedManifest *mp = &m;
  m.name = (char *)"bigfile";
  m.version = 1;
  m.reason = (char *)"bad signature";
  assert_int_equal(beat(e, tc.c, "n1", bp, 2, NULL, 0), RPC_OK);
  assert_int_equal(beat(e, tc.c, "n2", NULL, 0, &mp, 1), RPC_OK);
  assert_int_equal(beat(e, tc.c, "n1", &bp[2], 1, NULL, 0), RPC_OK);
  /* A report about a version fdsched does not plan is counted, not shown. */
  b[0].version = 7;
  assert_int_equal(beat(e, tc.c, "n1", bp, 1, NULL, 0), RPC_OK);

  r = status(e, tc.c);
  p = progress_of(r, 1);
  assert_int_equal(p->bad_chunks_reported, 2);
  assert_int_equal(p->bad_chunks_repaired, 1);
  assert_int_equal(p->manifests_rejected, 1);
  protobuf_c_message_free_unpacked(&r->base, NULL);

  /* An unknown node's reports are refused with its heartbeat. */
  assert_int_equal(beat(e, tc.c, "stranger", bp, 1, NULL, 0), RPC_NOT_FOUND);
  r = status(e, tc.c);
  assert_int_equal(progress_of(r, 1)->bad_chunks_reported, 2);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  rpc_conn_close(tc.c);
  rpc_engine_destroy(e);
}

int main(void) {
  fdt_log_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reports, fdt_group_setup, fdt_group_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
