/* fdnode's reports to fdsched: a bounded queue (overflow dropped), the oldest 16 per heartbeat, removed only when a heartbeat carrying them succeeds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nd_int.h" /* white-box: the node's report queue without a daemon */

/* A node with just what nd_repair's reports touch: a pool, no versions. */
static nd_node_t *node_new(void) {
  nd_node_t *n = calloc(1, sizeof(*n));
  assert_non_null(n);
  n->pool = fd_pool_create(24, 64 * 1024);
  assert_non_null(n->pool);
  return n;
}

static void node_free(nd_node_t *n) {
  nd_repair_destroy(n);
  assert_null(n->repair);
  fd_pool_destroy(n->pool);
  free(n);
}

/* One heartbeat's reports: how many rejected manifests, the first's version. */
static size_t fill(nd_node_t *n, uint64_t *first_version) {
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  nd_repair_hb_fill(n, &req);
  assert_int_equal(req.n_bad_chunks, 0);
  if (req.n_rejected) {
    assert_string_equal(req.rejected[0]->name, "f.img");
    assert_string_equal(req.rejected[0]->reason, "bad signature");
    for (size_t i = 1; i < req.n_rejected; i++)
      assert_int_equal(req.rejected[i]->version, req.rejected[i - 1]->version + 1);
    *first_version = req.rejected[0]->version;
  }
  return req.n_rejected;
}

static void test_queue(void **state) {
  (void)state;
  nd_node_t *n = node_new();
  uint64_t first = 0;
  /* Nothing reported yet: no state, heartbeats carry nothing. */
  assert_int_equal(fill(n, &first), 0);
  nd_repair_hb_done(n, true);
  /* 70 refusals: the queue keeps the first ND_REPORTS_MAX, drops the rest. */
  for (uint64_t v = 1; v <= ND_REPORTS_MAX + 6; v++) nd_repair_rejected(n, "f.img", v, "bad signature");
  assert_int_equal(fill(n, &first), ND_REPORTS_PER_HB);
  assert_int_equal(first, 1);
  /* A failed heartbeat sends the same reports again. */
  nd_repair_hb_done(n, false);
  assert_int_equal(fill(n, &first), ND_REPORTS_PER_HB);
  assert_int_equal(first, 1);
  nd_repair_hb_done(n, true);
  /* A report arriving while a heartbeat is out joins the queue's tail. */
  assert_int_equal(fill(n, &first), ND_REPORTS_PER_HB);
  assert_int_equal(first, 1 + ND_REPORTS_PER_HB);
  nd_repair_rejected(n, "f.img", ND_REPORTS_MAX + 6 + 1, "bad signature"); /* a free place now */
  nd_repair_hb_done(n, true);
  size_t total = 2 * ND_REPORTS_PER_HB, k;
  bool seen[ND_REPORTS_MAX + 8] = {false};
  while ((k = fill(n, &first)) > 0) {
    total += k;
    for (uint64_t v = first; v < first + k; v++) {
      assert_true(v < FD_ARRAY_LEN(seen));
      seen[v] = true;
    }
    nd_repair_hb_done(n, true);
  }
  assert_int_equal(total, ND_REPORTS_MAX + 1);
  assert_true(seen[ND_REPORTS_MAX]);
  for (uint64_t v = ND_REPORTS_MAX + 1; v <= ND_REPORTS_MAX + 6; v++) assert_false(seen[v]);
  assert_true(seen[ND_REPORTS_MAX + 7]); /* the late one, queued after the drops */
  node_free(n);
}

/* A bad chunk of a version this node does not have open is not reported
 * (scrub only reports versions it holds open). */
static void test_bad_needs_open_version(void **state) {
  (void)state;
  nd_node_t *n = node_new();
  nd_repair_bad(n, "f.img", 1, 3);
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  nd_repair_hb_fill(n, &req);
  assert_int_equal(req.n_bad_chunks, 0);
  nd_repair_hb_done(n, true);
  node_free(n);
}

int main(void) {
  fd_log_init("test_node_repair_reports", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_queue),
                                     cmocka_unit_test(test_bad_needs_open_version)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
