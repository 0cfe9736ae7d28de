/* test_plan.c — planner properties at 10,000 nodes over 3x3 zones, before and after failures, joins, returns and drains, and small and odd fleets (stragglers: test_plan_strag.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_fixture.h"

static void kill_nodes(cluster_t *c, const uint32_t *slots, uint32_t n, const char *when) {
  for (uint32_t i = 0; i < n; i++) assert_int_equal(sch_members_declare_dead(c->m, slots[i]), 0);
  int lost = sch_plan_remove(c->p, slots, n);
  CHECK(lost == 0, "%s: %d orphans found no parent", when, lost);
  check_plan(c, when);
}

/* Distinct random non-origin nodes. */
static uint32_t pick_random(const cluster_t *c, uint32_t want, uint32_t *out) {
  uint8_t *taken = calloc(c->count, 1);
  uint32_t n = 0;
  while (n < want) {
    uint32_t x = 3 + (uint32_t)(rnd() % (c->count - 3));
    if (taken[x]) continue;
    taken[x] = 1;
    out[n++] = x;
  }
  free(taken);
  return n;
}

static void test_build_invariants(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  check_plan(&c, "built");
  sch_plan_stats_t st;
  sch_plan_stats(c.p, &st);
  /* SplitStream: a node is interior in one stripe; the rare exception is a
   * zone whose demand does not divide into whole fan-outs. */
  CHECK(st.multi_interior <= NODES / 100, "%u nodes interior in several stripes",
        st.multi_interior);
  /* Different stripes enter a region through different heads. */
  for (uint32_t r = 1; r < REGIONS; r++) {
    int32_t heads[STRIPES];
    for (uint32_t s = 0; s < STRIPES; s++) {
      heads[s] = -1;
      for (uint32_t x = 3; x < c.count; x++) {
        int32_t up = sch_plan_parent(c.p, x, s);
        if (sch_members_node(c.m, x)->region == r && up >= 0 &&
            sch_members_node(c.m, (uint32_t)up)->region != r)
          heads[s] = (int32_t)x;
      }
      assert_true(heads[s] >= 0);
      for (uint32_t t = 0; t < s; t++) CHECK(heads[t] != heads[s], "stripes %u and %u share a head", t, s);
    }
  }
  cluster_deinit(&c);
}

static void test_kill_random_1_percent(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  uint32_t *dead = malloc(NODES * sizeof(uint32_t));
  uint32_t n = pick_random(&c, NODES / 100, dead);
  kill_nodes(&c, dead, n, "1% killed");
  free(dead);
  cluster_deinit(&c);
}

static void test_kill_random_10_percent(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  uint32_t *dead = malloc(NODES * sizeof(uint32_t));
  /* In ten waves of 1%, as a failure detector would report them. */
  for (int wave = 0; wave < 10; wave++) {
    uint32_t n = 0;
    while (n < NODES / 100) {
      uint32_t x = 3 + (uint32_t)(rnd() % (c.count - 3));
      if (!sch_plan_contains(c.p, x)) continue;
      bool dup = false;
      for (uint32_t i = 0; i < n; i++) dup |= dead[i] == x;
      if (!dup) dead[n++] = x;
    }
    for (uint32_t i = 0; i < n; i++) assert_int_equal(sch_members_declare_dead(c.m, dead[i]), 0);
    CHECK(sch_plan_remove(c.p, dead, n) == 0, "wave %d left orphans", wave);
  }
  check_plan(&c, "10% killed in waves");
  /* And 10% more in a single batch. */
  uint32_t n = 0;
  while (n < NODES / 10) {
    uint32_t x = 3 + (uint32_t)(rnd() % (c.count - 3));
    if (!sch_plan_contains(c.p, x)) continue;
    bool dup = false;
    for (uint32_t i = 0; i < n; i++) dup |= dead[i] == x;
    if (!dup) dead[n++] = x;
  }
  kill_nodes(&c, dead, n, "10% more killed at once");
  free(dead);
  cluster_deinit(&c);
}

static void test_kill_whole_zone(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  /* A zone of a region without origins, and then one holding an origin's zone
   * peers (the origin itself survives). */
  uint32_t *dead = malloc(NODES * sizeof(uint32_t));
  for (int round = 0; round < 2; round++) {
    uint32_t r = round == 0 ? 1 + (uint32_t)(rnd() % (REGIONS - 1)) : 0;
    char zname[8];
    snprintf(zname, sizeof(zname), "z%u", (uint32_t)(rnd() % ZONES));
    uint32_t n = 0;
    for (uint32_t x = 3; x < c.count; x++) {
      const sch_node_t *nd = sch_members_node(c.m, x);
      if (sch_plan_contains(c.p, x) && nd->region == r &&
          strcmp(sch_members_zone_name(c.m, nd->zone), zname) == 0)
        dead[n++] = x;
    }
    assert_true(n > 0);
    kill_nodes(&c, dead, n, round == 0 ? "a whole zone killed" : "a whole origin-region zone killed");
  }
  free(dead);
  cluster_deinit(&c);
}

static void test_kill_region_head(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  for (int round = 0; round < 3; round++) {
    uint32_t s = (uint32_t)(rnd() % STRIPES), r = (uint32_t)(rnd() % REGIONS);
    uint32_t head = UINT32_MAX;
    for (uint32_t x = 3; x < c.count; x++) {
      int32_t up = sch_plan_parent(c.p, x, s);
      if (sch_plan_contains(c.p, x) && up >= 0 && sch_members_node(c.m, (uint32_t)up)->origin &&
          sch_members_node(c.m, x)->region == r)
        head = x;
    }
    assert_true(head != UINT32_MAX);
    uint32_t heir_zone = sch_members_node(c.m, head)->zone;
    kill_nodes(&c, &head, 1, "a region head killed");
    /* Replaced from inside: the new head of region r in stripe s is in r, and
     * (the region head having children in its zone) in the same zone. */
    uint32_t heads = 0;
    for (uint32_t x = 3; x < c.count; x++) {
      int32_t up = sch_plan_parent(c.p, x, s);
      if (sch_plan_contains(c.p, x) && up >= 0 && sch_members_node(c.m, (uint32_t)up)->origin &&
          sch_members_node(c.m, x)->region == r) {
        heads++;
        CHECK(sch_members_node(c.m, x)->zone == heir_zone, "new head %u is in another zone", x);
      }
    }
    CHECK(heads == 1, "region %u has %u heads in stripe %u", r, heads, s);
  }
  cluster_deinit(&c);
}

/* A drain moves every child of the node to other parents in every stripe,
 * keeps the node a leaf of every stripe and everyone reached within the depth
 * bound (check_plan); the orders of the node, its old children and their new
 * parents change; new builds keep it a leaf; undrain gives its slots back and
 * the next build makes it interior as before. */
static void test_drain_and_undrain(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  uint32_t *changed = malloc(FD_NODES_MAX * sizeof(uint32_t));
  while (sch_plan_take_changed(c.p, changed, FD_NODES_MAX) == FD_NODES_MAX) {
  }
  uint32_t drained[4];
  uint32_t before[4];
  for (uint32_t i = 0; i < 4; i++) {
    uint32_t x = busiest(&c, i < 2); /* two region heads, then the busiest others */
    assert_true(x != UINT32_MAX);
    drained[i] = x;
    before[i] = child_edges(&c, x);
    CHECK(before[i] > 0, "node %u is interior", x);
    uint32_t old_kids[FD_STRIPES_MAX][SCH_FANOUT_MAX], old_n[FD_STRIPES_MAX];
    for (uint32_t s = 0; s < STRIPES; s++)
      old_n[s] = sch_plan_children(c.p, x, s, old_kids[s], SCH_FANOUT_MAX);
    assert_int_equal(sch_members_drain(c.m, x), 0);
    int lost = sch_plan_drain(c.p, x);
    CHECK(lost == 0, "drain %u: %d without a parent", x, lost);
    CHECK(child_edges(&c, x) == 0, "drained %u still has %u children", x, child_edges(&c, x));
    CHECK(sch_plan_capacity(c.p, x) == 0, "drained %u has child slots", x);
    check_plan(&c, i < 2 ? "a region head drained" : "a busy node drained");
    /* Its old children and the node itself were told. */
    uint8_t *told = calloc(c.count, 1);
    uint32_t n;
    while ((n = sch_plan_take_changed(c.p, changed, FD_NODES_MAX)) > 0)
      for (uint32_t j = 0; j < n; j++) told[changed[j]] = 1;
    CHECK(told[x], "drained %u not told", x);
    for (uint32_t s = 0; s < STRIPES; s++)
      for (uint32_t j = 0; j < old_n[s]; j++)
        CHECK(told[old_kids[s][j]], "old child %u of %u not told", old_kids[s][j], x);
    free(told);
  }
  /* Draining again is refused by membership; the plan call on a node
   * outside the plan is -ENOENT. */
  assert_int_equal(sch_members_drain(c.m, drained[0]), -EALREADY);
  assert_int_equal(sch_plan_drain(c.p, FD_NODES_MAX - 1), -ENOENT);
  assert_int_equal(sch_plan_undrain(c.p, drained[0]), -EINVAL); /* still draining */
  /* A node dying under a drained leaf's new parent: repairs never pick it. */
  uint32_t dead[50];
  uint32_t nd = 0;
  while (nd < 50) {
    uint32_t x = 3 + (uint32_t)(rnd() % (c.count - 3));
    bool skip = sch_members_node(c.m, x)->state != SCH_NODE_ALIVE;
    for (uint32_t j = 0; j < nd; j++) skip |= dead[j] == x;
    if (!skip) dead[nd++] = x;
  }
  kill_nodes(&c, dead, nd, "50 killed around drained nodes");
  for (uint32_t i = 0; i < 4; i++)
    CHECK(child_edges(&c, drained[i]) == 0, "drained %u got children in a repair", drained[i]);
  /* A new build: drained nodes are leaves of every stripe. */
  assert_int_equal(sch_plan_build(c.p), 0);
  check_plan(&c, "rebuilt with 4 drained");
  for (uint32_t i = 0; i < 4; i++)
    CHECK(child_edges(&c, drained[i]) == 0, "drained %u interior after a build", drained[i]);
  /* Undrain: slots back now, interior in the next build. */
  for (uint32_t i = 0; i < 4; i++) {
    assert_int_equal(sch_members_undrain(c.m, drained[i]), 0);
    assert_int_equal(sch_plan_undrain(c.p, drained[i]), 0);
    CHECK(sch_plan_capacity(c.p, drained[i]) == expected_cap(sch_members_node(c.m, drained[i])),
          "undrained %u has its slots back", drained[i]);
  }
  check_plan(&c, "undrained");
  assert_int_equal(sch_plan_build(c.p), 0);
  check_plan(&c, "rebuilt after undrain");
  uint32_t interior = 0;
  for (uint32_t i = 0; i < 4; i++) interior += child_edges(&c, drained[i]) > 0;
  CHECK(interior >= 3, "only %u of 4 undrained nodes interior after a build", interior);
  free(changed);
  cluster_deinit(&c);
}

static void test_orders_and_changes(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, 2000);
  uint32_t *changed = malloc(FD_NODES_MAX * sizeof(uint32_t));
  /* After a build every node has an order to receive. */
  uint32_t n = sch_plan_take_changed(c.p, changed, FD_NODES_MAX);
  assert_int_equal(n, 2000);
  assert_int_equal(sch_plan_take_changed(c.p, changed, FD_NODES_MAX), 0);
  /* Kill an interior node: its orphans, their new parents and its parents
   * change, nobody else. */
  uint32_t victim = UINT32_MAX;
  for (uint32_t x = 3; x < c.count && victim == UINT32_MAX; x++) {
    uint32_t kids[SCH_FANOUT_MAX];
    for (uint32_t s = 0; s < STRIPES; s++)
      if (sch_plan_children(c.p, x, s, kids, SCH_FANOUT_MAX) >= 3) victim = x;
  }
  assert_true(victim != UINT32_MAX);
  sch_order_t *before = malloc(sizeof(sch_order_t));
  assert_int_equal(sch_plan_order(c.p, victim, before), 0);
  assert_int_equal(sch_members_declare_dead(c.m, victim), 0);
  assert_int_equal(sch_plan_remove(c.p, &victim, 1), 0);
  assert_int_equal(sch_plan_order(c.p, victim, before), -ENOENT);
  n = sch_plan_take_changed(c.p, changed, FD_NODES_MAX);
  assert_true(n >= 3 && n < 40);
  sch_order_t *o = malloc(sizeof(sch_order_t));
  for (uint32_t i = 0; i < n; i++) {
    if (changed[i] == victim) continue;
    assert_int_equal(sch_plan_order(c.p, changed[i], o), 0);
    for (uint32_t s = 0; s < STRIPES; s++) assert_int_not_equal(o->stripe[s].parent, (int32_t)victim);
  }
  /* Unchanged nodes still point where they did. */
  check_plan(&c, "after one interior death");
  free(o);
  free(before);
  free(changed);
  cluster_deinit(&c);
}

static void test_join_and_return(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  uint32_t *dead = malloc(NODES * sizeof(uint32_t));
  uint32_t n = pick_random(&c, 200, dead);
  kill_nodes(&c, dead, n, "200 killed");
  /* They come back (a heartbeat revives them) and join as leaves. */
  for (uint32_t i = 0; i < n; i++) {
    bool returned = false;
    assert_int_equal(sch_members_heartbeat(c.m, sch_members_node(c.m, dead[i])->id, 100, 0, 0,
                                           NULL, &returned),
                     0);
    assert_true(returned);
    assert_int_equal(sch_plan_join(c.p, dead[i]), 0);
    assert_int_equal(sch_plan_join(c.p, dead[i]), -EALREADY);
  }
  check_plan(&c, "200 returned");
  /* 300 new nodes join mid-distribution. */
  char id[32], region[8], zone[8];
  for (uint32_t i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "late%u", i);
    snprintf(region, sizeof(region), "r%u", (uint32_t)(rnd() % REGIONS));
    snprintf(zone, sizeof(zone), "z%u", (uint32_t)(rnd() % ZONES));
    sch_node_info_t ni = {.id = id, .region = region, .zone = zone, .address = "127.0.0.1:2",
                          .nic_bps = 10 * GBPS, .free_disk_bytes = 1};
    uint32_t slot;
    assert_int_equal(sch_members_register(c.m, &ni, 100, &slot), 0);
    assert_int_equal(sch_plan_join(c.p, slot), 0);
    /* A late joiner starts as a leaf unless it had to splice itself in. */
  }
  c.count = sch_members_count(c.m);
  check_plan(&c, "300 joined late");
  /* A dead node cannot join. */
  uint32_t victim = dead[0];
  assert_int_equal(sch_members_declare_dead(c.m, victim), 0);
  assert_int_equal(sch_plan_remove(c.p, &victim, 1), 0);
  assert_int_equal(sch_plan_join(c.p, victim), -EINVAL);
  free(dead);
  cluster_deinit(&c);
}

static void test_small_and_errors(void **state) {
  (void)state;
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_members_t *m = sch_members_create(&mc);
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_plan_t *p = sch_plan_create(m, &pc);
  assert_int_equal(sch_plan_build(p), -ENOENT); /* no origin */
  pc.stripes = 0;
  assert_null(sch_plan_create(m, &pc));
  char id[16];
  for (uint32_t i = 0; i < 6; i++) {
    snprintf(id, sizeof(id), "n%u", i);
    sch_node_info_t ni = {.id = id, .region = "r", .zone = "z", .address = "a:1",
                          .nic_bps = 10 * GBPS, .origin = i == 0};
    assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
  }
  assert_int_equal(sch_plan_build(p), 0);
  for (uint32_t s = 0; s < 4; s++) {
    assert_int_equal(sch_plan_parent(p, 0, s), SCH_ROOT);
    for (uint32_t x = 1; x < 6; x++) assert_true(sch_plan_parent(p, x, s) >= 0);
  }
  /* Repair peers: complete nodes of the same zone, then the origin. */
  uint32_t peers[8];
  sch_plan_mark_complete(p, 2);
  sch_plan_mark_complete(p, 3);
  uint32_t n = sch_plan_repair_peers(p, 3, peers, 8);
  assert_int_equal(n, 2);
  assert_int_equal(peers[0], 2);
  assert_int_equal(peers[1], 0);
  n = sch_plan_repair_peers(p, 1, peers, 1);
  assert_int_equal(n, 1);
  /* More origins than the plan can hold is refused, not asserted. */
  for (uint32_t i = 0; i < SCH_ORIGIN_NODES_MAX; i++) {
    snprintf(id, sizeof(id), "o%u", i);
    sch_node_info_t ni = {.id = id, .region = "r", .zone = "z", .address = "a:1",
                          .nic_bps = 10 * GBPS, .origin = true};
    assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
  }
  assert_int_equal(sch_plan_build(p), -ENOSPC);
  assert_false(sch_plan_contains(p, 0));
  sch_plan_destroy(p);
  sch_members_destroy(m);
}

/* A small fleet: 3 origins then `nodes` nodes over r0/r1 and `zones` zones,
 * all with NIC nic_bps; origins in region "origin", zone "oz" when
 * origins_apart, else placed like the nodes. Builds the default plan and
 * checks that origins hang off the root and every node has a parent in
 * every stripe; returns the plan (and *mp) for further checks. */
static sch_plan_t *small_fleet_plan(uint32_t nodes, uint32_t zones, uint64_t nic_bps,
                                    bool origins_apart, sch_members_t **mp) {
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_members_t *m = sch_members_create(&mc);
  assert_non_null(m);
  char id[16], zone[16];
  for (uint32_t i = 0; i < 3 + nodes; i++) {
    bool origin = i < 3, apart = origin && origins_apart;
    snprintf(id, sizeof(id), "%s%u", origin ? "o" : "n", i);
    snprintf(zone, sizeof(zone), "z%u", i % zones);
    sch_node_info_t ni = {.id = id, .region = apart ? "origin" : (i % 4 < 2 ? "r0" : "r1"),
                          .zone = apart ? "oz" : zone, .address = "a:1", .nic_bps = nic_bps,
                          .origin = origin};
    assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
  }
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_plan_t *p = sch_plan_create(m, &pc);
  assert_non_null(p);
  assert_int_equal(sch_plan_build(p), 0);
  for (uint32_t x = 0; x < 3 + nodes; x++)
    for (uint32_t s = 0; s < pc.stripes; s++) {
      int32_t parent = sch_plan_parent(p, x, s);
      if (x < 3)
        assert_int_equal(parent, SCH_ROOT);
      else
        assert_true(parent >= 0);
    }
  *mp = m;
  return p;
}

/* A fleet of slow NICs (200 Mbit/s, as in perf/fanout) with the default
 * config: the per-stream rate follows the fleet's NICs, so every node gets
 * child slots and every stripe reaches every node. */
static void test_slow_nics_placed(void **state) {
  (void)state;
  sch_members_t *m;
  sch_plan_t *p = small_fleet_plan(16, 4, 200000000ull, false, &m);
  for (uint32_t x = 0; x < 3 + 16; x++) assert_int_equal(sch_plan_capacity(p, x), STRIPES);
  sch_plan_destroy(p);
  sch_members_destroy(m);
}

/* Upload caps (fdnode's upload_bps_max) size child slots as a slower NIC
 * would: a node capped at a quarter of the fleet's NIC gets a quarter of
 * the slots, an uncapped one keeps its own, a cap above the NIC changes
 * nothing, and the per-stream rate follows the capped fleet. */
static void test_upload_caps_size_slots(void **state) {
  (void)state;
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_members_t *m = sch_members_create(&mc);
  assert_non_null(m);
  char id[16];
  for (uint32_t i = 0; i < 3 + 12; i++) {
    snprintf(id, sizeof(id), "%s%u", i < 3 ? "o" : "n", i);
    /* n3: capped at a quarter of its NIC; n4: a cap above it; the rest of
     * the nodes at the fleet's 1 Gbit/s both ways */
    uint64_t cap = i == 3 ? 250000000ull : i == 4 ? 40000000000ull : 0;
    sch_node_info_t ni = {.id = id, .region = "r0", .zone = i % 2 ? "a" : "b",
                          .address = "a:1", .nic_bps = 1000000000ull,
                          .upload_bps_max = cap, .origin = i < 3};
    assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
  }
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_plan_t *p = sch_plan_create(m, &pc);
  assert_non_null(p);
  assert_int_equal(sch_plan_build(p), 0);
  assert_int_equal(sch_plan_capacity(p, 3), STRIPES / 4);
  assert_int_equal(sch_plan_capacity(p, 4), STRIPES);
  assert_int_equal(sch_plan_capacity(p, 5), STRIPES);
  assert_int_equal(sch_node_upload_bps(sch_members_node(m, 3)), 250000000ull);
  assert_int_equal(sch_node_upload_bps(sch_members_node(m, 4)), 1000000000ull);
  sch_plan_destroy(p);
  sch_members_destroy(m);
}

/* Origins in a region of their own (as a data centre for the origin group
 * would be): every stripe still reaches every node. */
static void test_origins_own_region(void **state) {
  (void)state;
  sch_members_t *m;
  sch_plan_t *p = small_fleet_plan(12, 2, 10 * GBPS, true, &m);
  sch_plan_destroy(p);
  sch_members_destroy(m);
}

/* The origin chain honoured: with every NIC alike (as in perf/fanout), the
 * head and the middle spend their upload on the chain, so the tail seeds
 * every tree and a second region hangs off nodes of the first; everyone is
 * placed. With the tail dead the middle is the last live origin and seeds. */
static void test_chain_tail_seeds(void **state) {
  (void)state;
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_members_t *m = sch_members_create(&mc);
  assert_non_null(m);
  char id[16], zone[16];
  for (uint32_t i = 0; i < 3 + 8; i++) {
    bool origin = i < 3;
    snprintf(id, sizeof(id), "%s%u", origin ? "o" : "n", i);
    snprintf(zone, sizeof(zone), "z%u", i % 2);
    sch_node_info_t ni = {.id = id, .region = origin ? "origin" : (i % 4 < 2 ? "r0" : "r1"),
                          .zone = origin ? "oz" : zone, .address = "a:1",
                          .nic_bps = 200000000ull, .origin = origin};
    assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
  }
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_plan_t *p = sch_plan_create(m, &pc);
  assert_non_null(p);
  const char chain[3][FD_NAME_LEN_MAX + 1] = {"o0", "o1", "o2"};
  sch_plan_set_chain(p, chain, 3);
  assert_int_equal(sch_plan_build(p), 0);
  uint32_t kids[SCH_FANOUT_MAX];
  for (uint32_t s = 0; s < pc.stripes; s++) {
    assert_int_equal(sch_plan_children(p, 0, s, kids, SCH_FANOUT_MAX), 0);
    assert_int_equal(sch_plan_children(p, 1, s, kids, SCH_FANOUT_MAX), 0);
    assert_true(sch_plan_children(p, 2, s, kids, SCH_FANOUT_MAX) >= 1);
    for (uint32_t x = 3; x < 11; x++) assert_true(sch_plan_parent(p, x, s) >= 0);
  }
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  assert_int_equal(st.unplaced, 0);

  /* The tail dies: the middle is now the chain's end and seeds. */
  assert_int_equal(sch_members_declare_dead(m, 2), 0);
  assert_int_equal(sch_plan_build(p), 0);
  for (uint32_t s = 0; s < pc.stripes; s++) {
    assert_int_equal(sch_plan_children(p, 0, s, kids, SCH_FANOUT_MAX), 0);
    assert_true(sch_plan_children(p, 1, s, kids, SCH_FANOUT_MAX) >= 1);
  }
  sch_plan_stats(p, &st);
  assert_int_equal(st.unplaced, 0);

  /* An origin back from the dead that missed the publish (not in the
   * chain) is left out: it cannot serve the version. */
  assert_int_equal(sch_members_heartbeat(m, "o2", 1, 0, 0, NULL, NULL), 0);
  const char two[2][FD_NAME_LEN_MAX + 1] = {"o0", "o1"};
  sch_plan_set_chain(p, two, 2);
  assert_int_equal(sch_plan_build(p), 0);
  assert_false(sch_plan_contains(p, 2));
  assert_int_equal(sch_plan_join(p, 2), -EALREADY);
  assert_false(sch_plan_contains(p, 2));
  for (uint32_t s = 0; s < pc.stripes; s++) {
    assert_int_equal(sch_plan_children(p, 0, s, kids, SCH_FANOUT_MAX), 0);
    for (uint32_t x = 3; x < 11; x++) assert_true(sch_plan_parent(p, x, s) >= 0);
  }
  sch_plan_destroy(p);
  sch_members_destroy(m);
}

/* perf/fanout's shape: 8 nodes dealt over 2 regions x 2 zones (2 nodes a
 * zone, fewer than the 4 stripes), origins labelled r0/r1/r0 zone z0, the
 * chain o0 -> o1 -> o2, every NIC alike. A zone holding no node meant for a
 * stripe must not relay it through a node already interior elsewhere: the
 * trees stay 3 deep (tail -> region head -> other region's head -> leaf),
 * every node uploads at most one NIC's worth, and at most one node is
 * interior in two stripes. (Before: depth 5, 7 nodes interior twice.) */
/* 3 origins (chain o0, o1, o2) and 8 nodes in 2 regions x 2 zones of 2,
 * every NIC 10 Gbit/s, planned with `stripes` stripes. */
static sch_plan_t *small_fleet(sch_members_t **mo, uint32_t stripes) {
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_members_t *m = sch_members_create(&mc);
  assert_non_null(m);
  char id[16], zone[16], region[16];
  for (uint32_t i = 0; i < 3 + 8; i++) {
    bool origin = i < 3;
    uint32_t g = (i - 3) % 4;
    snprintf(id, sizeof(id), "%s%u", origin ? "o" : "n", origin ? i : i - 3);
    snprintf(region, sizeof(region), "r%u", origin ? i % 2 : g / 2);
    snprintf(zone, sizeof(zone), "z%u", origin ? 0 : g % 2);
    sch_node_info_t ni = {.id = id,
                          .region = region,
                          .zone = zone,
                          .address = "a:1",
                          .nic_bps = 10 * GBPS,
                          .origin = origin};
    assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
  }
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  pc.stripes = stripes;
  sch_plan_t *p = sch_plan_create(m, &pc);
  assert_non_null(p);
  const char chain[3][FD_NAME_LEN_MAX + 1] = {"o0", "o1", "o2"};
  sch_plan_set_chain(p, chain, 3);
  assert_int_equal(sch_plan_build(p), 0);
  *mo = m;
  return p;
}

/* x's children over the plan's k stripes; *interior: in how many stripes. */
static uint32_t uploads(const sch_plan_t *p, uint32_t x, uint32_t k, uint32_t *interior) {
  uint32_t kids[SCH_FANOUT_MAX], up = 0;
  *interior = 0;
  for (uint32_t s = 0; s < k; s++) {
    uint32_t c = sch_plan_children(p, x, s, kids, SCH_FANOUT_MAX);
    up += c;
    *interior += c > 0;
  }
  return up;
}

static void test_small_zones_shallow(void **state) {
  (void)state;
  sch_members_t *m;
  sch_plan_t *p = small_fleet(&m, 4);
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  assert_int_equal(st.unplaced, 0);
  assert_true(st.depth_max <= 3);
  assert_true(st.multi_interior <= 1);
  for (uint32_t x = 0; x < 3 + 8; x++) {
    uint32_t interior, up = uploads(p, x, 4, &interior);
    assert_true(up <= sch_plan_capacity(p, x));
    if (x < 2) assert_int_equal(up, 0); /* the chain's head and middle */
    if (x >= 3) assert_true(up >= 3);   /* 28 streams over 8 nodes: 3 or 4 each */
  }
  sch_plan_destroy(p);
  sch_members_destroy(m);
}

/* The same fleet with 8 stripes: no region holds a node per stripe, so it is
 * planned as one group (plan_build.c, step 5): each node is interior in one
 * stripe, hangs off the chain's tail in it and feeds the 7 others — every
 * node uploads 7/8 of S and no tree is deeper than 2. (The region
 * hierarchy gave this fleet trees 5 deep and six nodes a whole S to
 * upload.) */
static void test_small_fleet_flat(void **state) {
  (void)state;
  sch_members_t *m;
  sch_plan_t *p = small_fleet(&m, 8);
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  assert_int_equal(st.unplaced, 0);
  assert_int_equal(st.depth_max, 2);
  assert_int_equal(st.multi_interior, 1); /* the chain's tail only */
  for (uint32_t x = 0; x < 3 + 8; x++) {
    uint32_t interior, up = uploads(p, x, 8, &interior);
    if (x < 2) assert_int_equal(up, 0); /* the chain's head and middle */
    if (x == 2) assert_int_equal(up, 8); /* the tail: every stripe's interior node */
    if (x >= 3) {
      assert_int_equal(up, 7);
      assert_int_equal(interior, 1);
    }
  }
  sch_plan_destroy(p);
  sch_members_destroy(m);
}

/* Odd shapes: 1-5 regions, 1-4 zones each, 4-400 nodes, 1-4 origins anywhere,
 * NICs of 10-100 Gbit/s, then kills, returns and late joins. Checked from
 * the outside: everyone placed, no cycles, capacities, lists consistent. */
static void check_generic(const sch_members_t *m, const sch_plan_t *p, const char *when, int round) {
  uint32_t count = sch_members_count(m);
  uint32_t kids[SCH_FANOUT_MAX];
  for (uint32_t x = 0; x < count; x++) {
    const sch_node_t *n = sch_members_node(m, x);
    bool alive = n->state == SCH_NODE_ALIVE || n->state == SCH_NODE_SUSPECT;
    CHECK(alive == sch_plan_contains(p, x), "round %d %s: node %u membership/plan mismatch", round,
          when, x);
    if (!alive) continue;
    uint32_t total = 0;
    for (uint32_t s = 0; s < STRIPES; s++) {
      int32_t y = (int32_t)x;
      uint32_t steps = 0;
      while (y >= 0 && steps <= count) y = sch_plan_parent(p, (uint32_t)y, s), steps++;
      if (y != SCH_ROOT && getenv("FD_DEBUG_PLAN")) {
        print_message("node %u origin %d region %u zone %u cap %u\n", x, n->origin, n->region, n->zone, expected_cap(n));
        for (int32_t z = (int32_t)x, st = 0; z >= 0 && st < 20; st++) {
          const sch_node_t *nz = sch_members_node(m, (uint32_t)z);
          print_message("  %d (origin %d r%u z%u state %d inplan %d) -> parent %d\n", z, nz->origin, nz->region, nz->zone, nz->state, sch_plan_contains(p, (uint32_t)z), sch_plan_parent(p, (uint32_t)z, s));
          z = sch_plan_parent(p, (uint32_t)z, s);
        }
      }
      CHECK(y == SCH_ROOT, "round %d %s: node %u stripe %u does not reach the root", round, when,
            x, s);
      uint32_t nk = sch_plan_children(p, x, s, kids, SCH_FANOUT_MAX);
      for (uint32_t i = 0; i < nk; i++)
        CHECK(sch_plan_parent(p, kids[i], s) == (int32_t)x, "round %d %s: list mismatch", round,
              when);
      total += nk;
    }
    CHECK(total <= expected_cap(n), "round %d %s: node %u over capacity", round, when, x);
  }
}

static void test_random_shapes(void **state) {
  (void)state;
  seed_rng(__func__);
  for (int round = 0; round < 60; round++) {
    sch_members_config_t mc;
    sch_members_config_default(&mc);
    sch_members_t *m = sch_members_create(&mc);
    uint32_t regions = 1 + (uint32_t)(rnd() % 5), zones = 1 + (uint32_t)(rnd() % 4);
    uint32_t nodes = 4 + (uint32_t)(rnd() % 397), origins = 1 + (uint32_t)(rnd() % 4);
    char id[32], region[8], zone[8];
    for (uint32_t i = 0; i < nodes; i++) {
      snprintf(id, sizeof(id), "n%u", i);
      snprintf(region, sizeof(region), "r%u", (uint32_t)(rnd() % regions));
      snprintf(zone, sizeof(zone), "z%u", (uint32_t)(rnd() % zones));
      sch_node_info_t ni = {.id = id, .region = region, .zone = zone, .address = "a:1",
                            .nic_bps = (10 + rnd() % 91) * GBPS, .origin = i < origins};
      assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
    }
    sch_plan_config_t pc;
    sch_plan_config_default(&pc);
    sch_plan_t *p = sch_plan_create(m, &pc);
    assert_int_equal(sch_plan_build(p), 0);
    if (getenv("FD_DEBUG_PLAN")) {
      print_message("round %d: %u regions x %u zones, %u nodes, %u origins\n", round, regions,
                    zones, nodes, origins);
      for (uint32_t x = 0; x < nodes && x < 12; x++) {
        const sch_node_t *n = sch_members_node(m, x);
        print_message(" node %u origin %d r%u z%u cap %u parents %d %d %d %d\n", x, n->origin, n->region, n->zone, expected_cap(n), sch_plan_parent(p, x, 0), sch_plan_parent(p, x, 1), sch_plan_parent(p, x, 2), sch_plan_parent(p, x, 3));
      }
    }
    check_generic(m, p, "built", round);
    /* Kill up to a third of the non-origins in two batches. */
    uint32_t dead[400], nd = 0;
    for (int batch = 0; batch < 2; batch++) {
      uint32_t want = (uint32_t)(rnd() % (nodes / 6 + 1)), n = 0;
      for (uint32_t tries = 0; n < want && tries < 10 * nodes; tries++) {
        uint32_t x = origins + (uint32_t)(rnd() % (nodes - origins + (nodes == origins)));
        if (x >= nodes || !sch_plan_contains(p, x) || sch_members_node(m, x)->state == SCH_NODE_DEAD)
          continue;
        assert_int_equal(sch_members_declare_dead(m, x), 0);
        dead[nd + n++] = x;
      }
      int lost = sch_plan_remove(p, dead + nd, n);
      if (lost && getenv("FD_DEBUG_PLAN")) {
        print_message("round %d batch %d: %u killed, %d lost\n", round, batch, n, lost);
        for (uint32_t s = 0; s < STRIPES; s++) {
          uint32_t unreach = 0, freeslots = 0, freeslots_unreach = 0;
          for (uint32_t x = 0; x < nodes; x++) {
            if (!sch_plan_contains(p, x)) continue;
            int32_t y = (int32_t)x;
            uint32_t st = 0;
            while (y >= 0 && st++ <= nodes) y = sch_plan_parent(p, (uint32_t)y, s);
            uint32_t used = 0;
            for (uint32_t t = 0; t < STRIPES; t++) used += sch_plan_children(p, x, t, NULL, 0);
            uint32_t fr = expected_cap(sch_members_node(m, x)) - used;
            if (y != SCH_ROOT) unreach++, freeslots_unreach += fr;
            else freeslots += fr;
            if (y != SCH_ROOT && sch_plan_parent(p, x, s) == SCH_NONE)
              print_message("  stripe %u: node %u (r%u z%u origin %d) has no parent; subtree free?\n", s, x,
                            sch_members_node(m, x)->region, sch_members_node(m, x)->zone, sch_members_node(m, x)->origin);
          }
          print_message(" stripe %u: %u unreachable, free slots reachable %u unreachable %u\n", s, unreach, freeslots, freeslots_unreach);
        }
      }
      CHECK(lost == 0, "round %d: orphans left", round);
      nd += n;
      check_generic(m, p, "after kills", round);
    }
    /* Half of them come back; a few new ones join. */
    for (uint32_t i = 0; i < nd; i += 2) {
      assert_int_equal(sch_members_heartbeat(m, sch_members_node(m, dead[i])->id, 5, 0, 0, NULL,
                                             NULL),
                       0);
      assert_int_equal(sch_plan_join(p, dead[i]), 0);
    }
    for (uint32_t i = 0; i < 5; i++) {
      snprintf(id, sizeof(id), "late%u", i);
      snprintf(region, sizeof(region), "r%u", (uint32_t)(rnd() % (regions + 1)));
      snprintf(zone, sizeof(zone), "z%u", (uint32_t)(rnd() % (zones + 1)));
      sch_node_info_t ni = {.id = id, .region = region, .zone = zone, .address = "a:1",
                            .nic_bps = 10 * GBPS};
      uint32_t slot;
      assert_int_equal(sch_members_register(m, &ni, 5, &slot), 0);
      CHECK(sch_plan_join(p, slot) == 0, "round %d: late joiner %u found no place", round, i);
    }
    check_generic(m, p, "after returns and joins", round);
    sch_plan_destroy(p);
    sch_members_destroy(m);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_invariants),      cmocka_unit_test(test_kill_random_1_percent),
      cmocka_unit_test(test_kill_random_10_percent), cmocka_unit_test(test_kill_whole_zone),
      cmocka_unit_test(test_kill_region_head),       cmocka_unit_test(test_orders_and_changes),
      cmocka_unit_test(test_join_and_return),        cmocka_unit_test(test_small_and_errors),
      cmocka_unit_test(test_random_shapes),
      cmocka_unit_test(test_slow_nics_placed),
      cmocka_unit_test(test_upload_caps_size_slots),
      cmocka_unit_test(test_origins_own_region),
      cmocka_unit_test(test_chain_tail_seeds),
      cmocka_unit_test(test_small_zones_shallow),
      cmocka_unit_test(test_small_fleet_flat),
      cmocka_unit_test(test_drain_and_undrain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
