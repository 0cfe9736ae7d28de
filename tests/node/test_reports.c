/* fdnode's reports to fdsched (nd_reports, the fdsched link's queue): bounded (overflow dropped), the oldest 16 per heartbeat, removed only when a heartbeat carrying them succeeds; bad, repaired and refused kinds each in their field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "nd_sched.h"

/* One heartbeat's reports: how many rejected manifests, the first's version. */
static size_t fill(nd_reports_t *n, uint64_t *first_version) {
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  nd_reports_fill(n, &req);
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
  static nd_reports_t q;
  nd_reports_t *n = &q;
  uint64_t first = 0;
  /* Nothing reported yet: no state, heartbeats carry nothing. */
  assert_int_equal(fill(n, &first), 0);
  nd_reports_done(n, true);
  /* 70 refusals: the queue keeps the first ND_REPORTS_MAX, drops the rest. */
  for (uint64_t v = 1; v <= ND_REPORTS_MAX + 6; v++) nd_reports_add(n, ND_REPORT_REJECTED, "f.img", v, 0, "bad signature");
  assert_int_equal(fill(n, &first), ND_REPORTS_PER_HB);
  assert_int_equal(first, 1);
  /* A failed heartbeat sends the same reports again. */
  nd_reports_done(n, false);
  assert_int_equal(fill(n, &first), ND_REPORTS_PER_HB);
  assert_int_equal(first, 1);
  nd_reports_done(n, true);
  /* A report arriving while a heartbeat is out joins the queue's tail. */
  assert_int_equal(fill(n, &first), ND_REPORTS_PER_HB);
  assert_int_equal(first, 1 + ND_REPORTS_PER_HB);
  nd_reports_add(n, ND_REPORT_REJECTED, "f.img", ND_REPORTS_MAX + 6 + 1, 0, "bad signature"); /* a free place now */
  nd_reports_done(n, true);
  size_t total = 2 * ND_REPORTS_PER_HB, k;
  bool seen[ND_REPORTS_MAX + 8] = {false};
  while ((k = fill(n, &first)) > 0) {
    total += k;
    for (uint64_t v = first; v < first + k; v++) {
      assert_true(v < FD_ARRAY_LEN(seen));
      seen[v] = true;
    }
    nd_reports_done(n, true);
  }
  assert_int_equal(total, ND_REPORTS_MAX + 1);
  assert_true(seen[ND_REPORTS_MAX]);
  for (uint64_t v = ND_REPORTS_MAX + 1; v <= ND_REPORTS_MAX + 6; v++) assert_false(seen[v]);
  assert_true(seen[ND_REPORTS_MAX + 7]); /* the late one, queued after the drops */
  assert_int_equal(n->dropped, 6);
}

/* Each kind goes in its own field: bad and repaired chunks (with the
 * repaired flag) in bad_chunks, refused manifests in rejected. */
static void test_kinds(void **state) {
  (void)state;
  static nd_reports_t q;
  nd_reports_add(&q, ND_REPORT_BAD, "f.img", 3, 7, NULL);
  nd_reports_add(&q, ND_REPORT_REJECTED, "g.img", 2, 0, "malformed");
  nd_reports_add(&q, ND_REPORT_REPAIRED, "f.img", 3, 7, NULL);
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  nd_reports_fill(&q, &req);
  assert_int_equal(req.n_bad_chunks, 2);
  assert_int_equal(req.n_rejected, 1);
  assert_string_equal(req.bad_chunks[0]->name, "f.img");
  assert_int_equal(req.bad_chunks[0]->index, 7);
  assert_false(req.bad_chunks[0]->repaired);
  assert_true(req.bad_chunks[1]->repaired);
  assert_string_equal(req.rejected[0]->reason, "malformed");
  nd_reports_done(&q, true);
  Sched__HeartbeatRequest again = SCHED__HEARTBEAT_REQUEST__INIT;
  nd_reports_fill(&q, &again);
  assert_int_equal(again.n_bad_chunks + again.n_rejected, 0);
}

int main(void) {
  fd_log_init("test_node_reports", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_queue),
                                     cmocka_unit_test(test_kinds)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
