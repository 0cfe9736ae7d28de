/* test_sim_flow.c — perf/sim's flow model against closed forms: chain pipelining, star sharing, pair capacity, a death mid-chain. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flow.h"

#define MiB (1024.0 * 1024.0)

static flow_t *make(uint32_t nodes, uint32_t stripes, uint64_t size, uint64_t chunk,
                    const uint16_t *region, double pair_Bps) {
  uint16_t zone[64] = {0}, reg[64] = {0};
  bool origin[64] = {true};
  if (region) memcpy(reg, region, nodes * sizeof(uint16_t));
  for (uint32_t i = 0; i < nodes; i++) zone[i] = reg[i]; /* one zone per region */
  flow_params_t prm = {.nodes = nodes, .stripes = stripes, .regions = 2, .zones = 2,
                       .size_bytes = size, .chunk_bytes = chunk, .nic_Bps = 100 * MiB,
                       .cross_region_Bps = pair_Bps, .cross_zone_Bps = pair_Bps};
  flow_t *f = flow_create(&prm, reg, zone, origin);
  assert_non_null(f);
  return f;
}

static void test_chain_pipelines_by_chunks(void **state) {
  (void)state;
  /* 64 chunks of 1 MiB down a chain of 10 nodes at 100 MiB/s: the last node
   * finishes (chunks + hops - 1) chunk times after the start. */
  uint32_t n = 11; /* origin + 10 */
  flow_t *f = make(n, 1, 64 * (uint64_t)MiB, (uint64_t)MiB, NULL, 1e12);
  for (uint32_t i = 1; i < n; i++) flow_set_parent(f, i, 0, (int32_t)i - 1);
  assert_true(flow_run(f, INFINITY));
  double c = 1.0 / 100;
  assert_true(fabs(flow_finish_time(f) - (64 + 10 - 1) * c) < 1e-9);
  assert_true(fabs(flow_bytes(f, LINK_INTRA_ZONE) - 10 * 64 * MiB) < 1);
  assert_int_equal(flow_events(f), 640);
  flow_destroy(f);
}

static void test_star_shares_the_uplink(void **state) {
  (void)state;
  /* 8 children of one origin: each gets 1/8 of its uplink. A last chunk
   * shorter than the others is handled. */
  uint64_t size = 10 * (uint64_t)MiB + 12345;
  flow_t *f = make(9, 2, size, (uint64_t)MiB, NULL, 1e12);
  for (uint32_t i = 1; i < 9; i++)
    for (uint32_t s = 0; s < 2; s++) flow_set_parent(f, i, s, 0);
  assert_true(flow_run(f, INFINITY));
  double expect = 8.0 * (double)size / (100 * MiB);
  assert_true(fabs(flow_finish_time(f) - expect) < 1e-6);
  assert_int_equal(flow_incomplete(f), 0);
  flow_destroy(f);
}

static void test_region_pair_capacity(void **state) {
  (void)state;
  /* Origin in region 0, two children in region 1 behind a pair of 50 MiB/s:
   * each gets 25 MiB/s, not the 50 the origin's uplink would give. */
  uint16_t region[3] = {0, 1, 1};
  flow_t *f = make(3, 1, 16 * (uint64_t)MiB, (uint64_t)MiB, region, 50 * MiB);
  flow_set_parent(f, 1, 0, 0);
  flow_set_parent(f, 2, 0, 0);
  assert_true(flow_run(f, INFINITY));
  assert_true(fabs(flow_finish_time(f) - 16.0 / 25) < 1e-9);
  assert_true(fabs(flow_bytes(f, LINK_CROSS_REGION) - 32 * MiB) < 1);
  flow_destroy(f);
}

static void test_death_mid_chain(void **state) {
  (void)state;
  /* origin -> 1 -> 2; node 1 dies at 0.105 s (10.5 chunks in); node 2 is
   * re-parented to the origin at 0.2 s and resumes from the chunks it has. */
  flow_t *f = make(3, 1, 40 * (uint64_t)MiB, (uint64_t)MiB, NULL, 1e12);
  flow_set_parent(f, 1, 0, 0);
  flow_set_parent(f, 2, 0, 1);
  assert_false(flow_run(f, 0.105));
  flow_kill(f, 1);
  assert_false(flow_run(f, 0.2));
  assert_int_equal(flow_incomplete(f), 1);
  flow_set_parent(f, 2, 0, 0);
  assert_true(flow_run(f, INFINITY));
  /* Node 2 held 9 chunks at the death (chunk 10 was half-way to node 1):
   * 31 more from the origin at full rate after 0.2 s. */
  assert_true(fabs(flow_finish_time(f) - (0.2 + 31 * 0.01)) < 1e-9);
  /* Bytes sent, lost halves included: 10.5 to node 1; 9.5 from node 1 and
   * 31 from the origin to node 2. */
  assert_true(fabs(flow_bytes(f, LINK_INTRA_ZONE) - (10.5 + 9.5 + 31) * MiB) < 1);
  flow_destroy(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_pipelines_by_chunks),
      cmocka_unit_test(test_star_shares_the_uplink),
      cmocka_unit_test(test_region_pair_capacity),
      cmocka_unit_test(test_death_mid_chain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
