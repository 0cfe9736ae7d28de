/* plan_fixture.c — the planner tests' shared cluster and checks (plan_fixture.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plan_fixture.h"

/* ---- seeded randomness: FD_TEST_SEED=<n> repeats a run ---- */

static uint64_t rng_state;
uint64_t the_seed;

uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void seed_rng(const char *test) {
  const char *env = getenv("FD_TEST_SEED");
  the_seed = env ? strtoull(env, NULL, 0) : ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
  rng_state = the_seed;
  /* Printed for every test so that a failure can be repeated exactly. */
  print_message("[   SEED   ] %s: FD_TEST_SEED=%llu\n", test, (unsigned long long)the_seed);
}

void cluster_init(cluster_t *c, uint32_t nodes) {
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  c->m = sch_members_create(&mc);
  assert_non_null(c->m);
  char id[32], region[8], zone[8];
  for (uint32_t i = 0; i < nodes; i++) {
    bool origin = i < 3;
    uint32_t r = origin ? 0 : (uint32_t)(rnd() % REGIONS);
    uint32_t z = origin ? i : (uint32_t)(rnd() % ZONES);
    uint64_t roll = rnd() % 100;
    uint64_t nic = origin ? 10 * GBPS : roll < 85 ? 10 * GBPS : roll < 95 ? 25 * GBPS : 1 * GBPS;
    snprintf(id, sizeof(id), "%s%u", origin ? "origin" : "node", i);
    snprintf(region, sizeof(region), "r%u", r);
    snprintf(zone, sizeof(zone), "z%u", z);
    sch_node_info_t ni = {.id = id, .region = region, .zone = zone, .address = "127.0.0.1:1",
                          .nic_bps = nic, .free_disk_bytes = 1ull << 40, .origin = origin};
    assert_int_equal(sch_members_register(c->m, &ni, 0, NULL), 0);
  }
  c->count = nodes;
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  c->p = sch_plan_create(c->m, &pc);
  assert_non_null(c->p);
  assert_int_equal(sch_plan_build(c->p), 0);
}

void cluster_deinit(cluster_t *c) {
  sch_plan_destroy(c->p);
  sch_members_destroy(c->m);
}

uint32_t expected_cap(const sch_node_t *n) {
  uint64_t cap = n->nic_bps / (10 * GBPS / STRIPES);
  return cap > SCH_FANOUT_MAX ? SCH_FANOUT_MAX : (uint32_t)cap;
}

static uint32_t log_ceil(uint32_t n, uint32_t base) {
  uint32_t l = 0;
  for (uint64_t v = 1; v < n; v *= base) l++;
  return l;
}

void check_plan(const cluster_t *c, const char *when) {
  const sch_plan_t *p = c->p;
  uint32_t count = sch_members_count(c->m);
  uint32_t *kids = malloc(SCH_FANOUT_MAX * sizeof(uint32_t));
  uint32_t *nchild = calloc(count, sizeof(uint32_t));
  uint32_t live = 0;
  for (uint32_t x = 0; x < count; x++) {
    const sch_node_t *n = sch_members_node(c->m, x);
    bool alive = n->state == SCH_NODE_ALIVE || n->state == SCH_NODE_SUSPECT ||
                 n->state == SCH_NODE_DRAINING; /* draining: a leaf */
    CHECK(alive == sch_plan_contains(p, x), "%s: node %u alive=%d but in plan=%d", when, x, alive,
          sch_plan_contains(p, x));
    live += alive;
  }
  /* Built trees are about log_k N deep (6-7 at 10,000); after 20% of the
   * nodes died, repairs have been seen at 9. */
  uint32_t depth_bound = 4 + log_ceil(live, STRIPES);
  for (uint32_t s = 0; s < STRIPES; s++) {
    bool reached[REGIONS] = {false};
    memset(nchild, 0, count * sizeof(uint32_t));
    uint32_t cross_region = 0;
    for (uint32_t x = 0; x < count; x++) {
      if (!sch_plan_contains(p, x)) continue;
      const sch_node_t *n = sch_members_node(c->m, x);
      int32_t up = sch_plan_parent(p, x, s);
      if (n->origin) {
        CHECK(up == SCH_ROOT, "%s: origin %u has parent %d in stripe %u", when, x, up, s);
        continue;
      }
      reached[n->region] = true;
      CHECK(up >= 0, "%s: live node %u has no parent in stripe %u", when, x, s);
      CHECK(sch_plan_contains(p, (uint32_t)up), "%s: node %u's parent %d is not live", when, x, up);
      nchild[up]++;
      if (sch_members_node(c->m, (uint32_t)up)->region != n->region) cross_region++;
      /* Reaches the root, without a cycle, within the depth bound. */
      uint32_t depth = 0;
      int32_t y = (int32_t)x;
      while (y >= 0 && depth <= count) {
        y = sch_plan_parent(p, (uint32_t)y, s);
        depth++;
      }
      CHECK(y == SCH_ROOT, "%s: node %u does not reach the root in stripe %u (cycle or gap)", when,
            x, s);
      CHECK(depth - 1 <= depth_bound, "%s: node %u at depth %u > bound %u in stripe %u", when, x,
            depth - 1, depth_bound, s);
    }
    /* Children lists agree with parents. */
    for (uint32_t x = 0; x < count; x++) {
      if (!sch_plan_contains(p, x)) continue;
      uint32_t n = sch_plan_children(p, x, s, kids, SCH_FANOUT_MAX);
      CHECK(n == nchild[x], "%s: node %u lists %u children, %u point at it", when, x, n, nchild[x]);
      for (uint32_t i = 0; i < n && i < SCH_FANOUT_MAX; i++)
        CHECK(sch_plan_parent(p, kids[i], s) == (int32_t)x, "%s: child list mismatch", when);
    }
    /* Origins are all in region 0: each other region reached is entered once. */
    uint32_t expect = 0;
    for (uint32_t r = 1; r < REGIONS; r++) expect += reached[r];
    CHECK(cross_region == expect, "%s: stripe %u has %u cross-region edges, expected %u", when, s,
          cross_region, expect);
  }
  /* Upload within capacity: children over all stripes. */
  for (uint32_t x = 0; x < count; x++) {
    if (!sch_plan_contains(p, x)) continue;
    uint32_t total = 0;
    for (uint32_t s = 0; s < STRIPES; s++) total += sch_plan_children(p, x, s, kids, 0);
    const sch_node_t *nx = sch_members_node(c->m, x);
    uint32_t cap = nx->state == SCH_NODE_DRAINING || nx->slow ? 0 : expected_cap(nx);
    CHECK(total <= cap, "%s: node %u has %u children, capacity %u", when, x, total, cap);
    CHECK(sch_plan_capacity(p, x) == cap, "%s: capacity mismatch", when);
  }
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  CHECK(st.unplaced == 0, "%s: %u unplaced", when, st.unplaced);
  print_message("[   INFO   ] %s: %u nodes, depth max %u (bound %u), multi-interior %u, "
                "cross-zone edges per stripe %u %u %u %u\n",
                when, st.nodes, st.depth_max, depth_bound, st.multi_interior,
                st.cross_zone_edges[0], st.cross_zone_edges[1], st.cross_zone_edges[2],
                st.cross_zone_edges[3]);
  free(kids);
  free(nchild);
}

uint32_t child_edges(const cluster_t *c, uint32_t x) {
  uint32_t total = 0;
  for (uint32_t s = 0; s < STRIPES; s++) total += sch_plan_children(c->p, x, s, NULL, 0);
  return total;
}

uint32_t busiest(const cluster_t *c, bool head) {
  uint32_t best = UINT32_MAX, most = 0;
  for (uint32_t x = 3; x < c->count; x++) {
    if (!sch_plan_contains(c->p, x) || sch_members_node(c->m, x)->state != SCH_NODE_ALIVE) continue;
    bool is_head = false;
    for (uint32_t s = 0; s < STRIPES; s++) {
      int32_t up = sch_plan_parent(c->p, x, s);
      is_head |= up >= 0 && sch_members_node(c->m, (uint32_t)up)->origin;
    }
    uint32_t n = child_edges(c, x);
    if ((!head || is_head) && n > most) best = x, most = n;
  }
  return best;
}
