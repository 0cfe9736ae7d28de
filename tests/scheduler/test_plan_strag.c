/* test_plan_strag.c — stragglers: rates fed to sch_strag on an explicit
 * clock over a 10,000-node plan; a slow interior node is demoted and its
 * children moved, a slow leaf is left alone, a node that recovers is
 * eligible again, and a short blip changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_fixture.h"

/* ---- stragglers: rates fed to sch_strag on an explicit clock ---- */

#define STRAG_BPS GBPS   /* what every node downloads at, unless told otherwise */
#define STRAG_HB_MS 500u /* the heartbeat interval of the simulation */

typedef struct strag_sim {
  cluster_t *c;
  sch_strag_t *t;
  uint64_t *rx, *bps; /* per slot: cumulative bytes, and its download rate now */
  uint32_t *fetch;
  uint64_t *remaining;
  uint32_t n;
  uint64_t now;
  sch_strag_verdict_t seen[64]; /* every verdict, in order */
  uint64_t seen_at[64];
  uint32_t nseen;
} strag_sim_t;

static void sim_init(strag_sim_t *sim, cluster_t *c) {
  memset(sim, 0, sizeof(*sim));
  sim->c = c;
  sim->t = sch_strag_create();
  assert_non_null(sim->t);
  sim->rx = calloc(c->count, sizeof(uint64_t));
  sim->bps = calloc(c->count, sizeof(uint64_t));
  sim->fetch = calloc(c->count, sizeof(uint32_t));
  sim->remaining = calloc(c->count, sizeof(uint64_t));
  for (uint32_t x = 0; x < c->count; x++) {
    sim->bps[x] = STRAG_BPS;
    if (sch_members_node(c->m, x)->origin || !sch_plan_contains(c->p, x)) continue;
    sim->fetch[sim->n] = x;
    sim->remaining[sim->n++] = 10 * GBPS; /* bytes: far from done */
  }
}

static void sim_deinit(strag_sim_t *sim) {
  sch_strag_destroy(sim->t);
  free(sim->rx);
  free(sim->bps);
  free(sim->fetch);
  free(sim->remaining);
}

/* Everyone at STRAG_BPS but slow at slow_bps; slow's children get its
 * stripe at slow's pace (one stripe of k), the rest at full rate. */
static void sim_rates(strag_sim_t *sim, uint32_t slow, uint64_t slow_bps) {
  for (uint32_t x = 0; x < sim->c->count; x++) sim->bps[x] = STRAG_BPS;
  if (slow == UINT32_MAX) return;
  sim->bps[slow] = slow_bps;
  uint32_t kids[SCH_FANOUT_MAX];
  for (uint32_t s = 0; s < STRIPES; s++) {
    uint32_t nk = sch_plan_children(sim->c->p, slow, s, kids, SCH_FANOUT_MAX);
    for (uint32_t i = 0; i < nk; i++)
      sim->bps[kids[i]] = STRAG_BPS - (STRAG_BPS - slow_bps) / STRIPES;
  }
}

/* Runs ms of heartbeats (each node's counter sampled every STRAG_HB_MS) and
 * judgements, applying each verdict as sched.c does. */
static void sim_run(strag_sim_t *sim, uint64_t ms) {
  for (uint64_t end = sim->now + ms; sim->now < end;) {
    sim->now += STRAG_HB_MS;
    for (uint32_t x = 0; x < sim->c->count; x++) {
      sim->rx[x] += sim->bps[x] * STRAG_HB_MS / 8000;
      sch_strag_sample(sim->t, x, sim->now, sim->rx[x]);
    }
    sch_strag_verdict_t v[16];
    uint32_t w = sch_strag_judge(sim->t, sim->c->m, sim->c->p, sim->fetch, sim->remaining,
                                 sim->n, sim->now, v, 16);
    for (uint32_t i = 0; i < w; i++) {
      assert_int_equal(sch_members_set_slow(sim->c->m, v[i].slot, v[i].slow), 0);
      if (v[i].slow)
        CHECK(sch_plan_demote(sim->c->p, v[i].slot) == 0, "demote %u lost nodes", v[i].slot);
      else
        assert_int_equal(sch_plan_undrain(sim->c->p, v[i].slot), 0);
      assert_true(sim->nseen < 64);
      sim->seen_at[sim->nseen] = sim->now;
      sim->seen[sim->nseen++] = v[i];
    }
  }
}

/* A node fetching at a quarter of its peers' rate for 3 s is judged slow
 * (and nobody else: its children, slowed in one stripe, are not); its
 * children in every stripe move to other parents, it becomes a leaf with no
 * child slot, and the plan keeps every invariant (check_plan) with no more
 * nodes interior twice than before; a new build keeps it a leaf. */
static void test_straggler_interior_moved(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  uint32_t *changed = malloc(FD_NODES_MAX * sizeof(uint32_t));
  while (sch_plan_take_changed(c.p, changed, FD_NODES_MAX) == FD_NODES_MAX) {
  }
  uint32_t x = busiest(&c, false);
  assert_true(x != UINT32_MAX);
  uint32_t old_kids[FD_STRIPES_MAX][SCH_FANOUT_MAX], old_n[FD_STRIPES_MAX];
  for (uint32_t s = 0; s < STRIPES; s++)
    old_n[s] = sch_plan_children(c.p, x, s, old_kids[s], SCH_FANOUT_MAX);
  CHECK(child_edges(&c, x) > 0, "node %u is interior", x);
  sch_plan_stats_t before, after;
  sch_plan_stats(c.p, &before);
  uint8_t *twice = calloc(c.count, 1); /* interior in two stripes as built (rare) */
  for (uint32_t y = 0; y < c.count; y++) {
    uint32_t in = 0;
    for (uint32_t s = 0; s < STRIPES; s++) in += sch_plan_children(c.p, y, s, NULL, 0) > 0;
    twice[y] = in > 1;
  }

  strag_sim_t sim;
  sim_init(&sim, &c);
  sim_rates(&sim, x, STRAG_BPS / 4);
  sim_run(&sim, 3000);
  CHECK(sim.nseen == 0, "judged after 3 s (%u verdicts)", sim.nseen); /* 1 s to fill, 3 s below */
  sim_run(&sim, 7000);
  CHECK(sim.nseen == 1, "%u verdicts, expected one", sim.nseen);
  const sch_strag_verdict_t *v = &sim.seen[0];
  CHECK(v->slot == x && v->slow, "verdict on %u (slow %d), expected %u slow", v->slot, v->slow, x);
  CHECK(sim.seen_at[0] <= 5000, "judged at %llu ms: not within a few seconds",
        (unsigned long long)sim.seen_at[0]);
  CHECK(v->for_ms >= SCH_STRAG_SLOW_MS, "below for only %llu ms", (unsigned long long)v->for_ms);
  CHECK(v->rate_bps == STRAG_BPS / 4 && v->median_bps == STRAG_BPS && v->peers == sim.n,
        "figures: rate %llu median %llu peers %u", (unsigned long long)v->rate_bps,
        (unsigned long long)v->median_bps, v->peers);

  CHECK(sch_members_node(c.m, x)->slow, "%u marked slow", x);
  CHECK(sch_plan_contains(c.p, x), "%u stays in the plan", x);
  CHECK(child_edges(&c, x) == 0, "slow %u still has %u children", x, child_edges(&c, x));
  CHECK(sch_plan_capacity(c.p, x) == 0, "slow %u has child slots", x);
  check_plan(&c, "an interior straggler demoted");
  sch_plan_stats(c.p, &after);
  CHECK(after.multi_interior <= before.multi_interior, "nodes interior twice: %u, before %u",
        after.multi_interior, before.multi_interior);
  for (uint32_t y = 0; y < c.count; y++) { /* and no node newly so */
    uint32_t in = 0;
    for (uint32_t s = 0; s < STRIPES; s++) in += sch_plan_children(c.p, y, s, NULL, 0) > 0;
    CHECK(in <= 1 || twice[y], "node %u made interior in %u stripes by the demotion", y, in);
  }
  free(twice);
  uint8_t *told = calloc(c.count, 1);
  uint32_t n;
  while ((n = sch_plan_take_changed(c.p, changed, FD_NODES_MAX)) > 0)
    for (uint32_t j = 0; j < n; j++) told[changed[j]] = 1;
  for (uint32_t s = 0; s < STRIPES; s++)
    for (uint32_t j = 0; j < old_n[s]; j++) {
      CHECK(told[old_kids[s][j]], "old child %u of %u not told", old_kids[s][j], x);
      CHECK(sch_plan_parent(c.p, old_kids[s][j], s) != (int32_t)x, "child %u not moved", old_kids[s][j]);
    }
  free(told);
  /* It stays slow (no second verdict) while it stays slow. */
  sim_rates(&sim, x, STRAG_BPS / 4);
  sim_run(&sim, 10000);
  CHECK(sim.nseen == 1, "%u verdicts while it stayed slow", sim.nseen);
  /* New builds and repairs never make it interior. */
  assert_int_equal(sch_plan_build(c.p), 0);
  check_plan(&c, "rebuilt with a straggler");
  CHECK(child_edges(&c, x) == 0, "slow %u interior after a build", x);
  sim_deinit(&sim);
  free(changed);
  cluster_deinit(&c);
}

/* A slow leaf is judged slow but left where it is: no order changes (its
 * own included), it only loses its child slots. */
static void test_straggler_leaf_alone(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  uint32_t leaf = UINT32_MAX;
  for (uint32_t i = 0; i < 100 && leaf == UINT32_MAX; i++) {
    uint32_t x = 3 + (uint32_t)(rnd() % (c.count - 3));
    if (child_edges(&c, x) == 0 && sch_plan_capacity(c.p, x) > 0) leaf = x;
  }
  assert_true(leaf != UINT32_MAX);
  int32_t parents[STRIPES];
  for (uint32_t s = 0; s < STRIPES; s++) parents[s] = sch_plan_parent(c.p, leaf, s);
  uint32_t *changed = malloc(FD_NODES_MAX * sizeof(uint32_t));
  while (sch_plan_take_changed(c.p, changed, FD_NODES_MAX) == FD_NODES_MAX) {
  }
  strag_sim_t sim;
  sim_init(&sim, &c);
  sim_rates(&sim, leaf, STRAG_BPS / 4);
  sim_run(&sim, 10000);
  CHECK(sim.nseen == 1 && sim.seen[0].slot == leaf && sim.seen[0].slow,
        "%u verdicts, expected the leaf %u slow", sim.nseen, leaf);
  for (uint32_t s = 0; s < STRIPES; s++)
    CHECK(sch_plan_parent(c.p, leaf, s) == parents[s], "leaf %u moved in stripe %u", leaf, s);
  CHECK(sch_plan_take_changed(c.p, changed, FD_NODES_MAX) == 0, "orders changed for a slow leaf");
  CHECK(sch_plan_capacity(c.p, leaf) == 0, "slow leaf %u keeps child slots", leaf);
  check_plan(&c, "a slow leaf");
  sim_deinit(&sim);
  free(changed);
  cluster_deinit(&c);
}

/* A demoted node back at its peers' rate is eligible again only after
 * SCH_STRAG_RECOVER_MS without a dip (one dip restarts the count): its
 * child slots come back, and a new build may make it interior. */
static void test_straggler_recovers(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  uint32_t x = busiest(&c, false);
  strag_sim_t sim;
  sim_init(&sim, &c);
  sim_rates(&sim, x, STRAG_BPS / 4);
  sim_run(&sim, 6000);
  CHECK(sim.nseen == 1 && sim.seen[0].slow, "%u verdicts, expected one slow", sim.nseen);
  uint32_t cap = expected_cap(sch_members_node(c.m, x));
  /* Back to full rate, as a leaf, for 6 s, then a dip below 75% for 1 s:
   * still slow. */
  sim_rates(&sim, UINT32_MAX, 0);
  sim_run(&sim, 6000);
  sim_rates(&sim, x, STRAG_BPS / 3);
  sim_run(&sim, 1000);
  sim_rates(&sim, UINT32_MAX, 0);
  sim_run(&sim, 9000);
  CHECK(sim.nseen == 1, "recovered before %u ms without a dip", SCH_STRAG_RECOVER_MS);
  CHECK(sch_plan_capacity(c.p, x) == 0, "slots back too early");
  sim_run(&sim, 5000);
  CHECK(sim.nseen == 2 && sim.seen[1].slot == x && !sim.seen[1].slow,
        "%u verdicts, expected %u recovered", sim.nseen, x);
  CHECK(sim.seen[1].for_ms >= SCH_STRAG_RECOVER_MS, "recovered after %llu ms",
        (unsigned long long)sim.seen[1].for_ms);
  CHECK(!sch_members_node(c.m, x)->slow, "%u still marked slow", x);
  CHECK(sch_plan_capacity(c.p, x) == cap, "recovered %u has %u slots, expected %u", x,
        sch_plan_capacity(c.p, x), cap);
  check_plan(&c, "a straggler recovered");
  assert_int_equal(sch_plan_build(c.p), 0);
  check_plan(&c, "rebuilt after a recovery");
  CHECK(sch_plan_capacity(c.p, x) == cap, "slots after a build");
  sim_deinit(&sim);
  cluster_deinit(&c);
}

/* Hysteresis: a node at a quarter of the rate for 2 s (at the start, then
 * mid-way) is never judged; nobody is judged with fewer than
 * SCH_STRAG_PEERS_MIN rates; rates follow the counters (a restart, a node
 * gone silent). */
static void test_straggler_blip(void **state) {
  (void)state;
  seed_rng(__func__);
  cluster_t c;
  cluster_init(&c, NODES);
  uint32_t x = busiest(&c, false);
  strag_sim_t sim;
  sim_init(&sim, &c);
  sim_rates(&sim, x, STRAG_BPS / 4);
  sim_run(&sim, 2000);
  sim_rates(&sim, UINT32_MAX, 0);
  sim_run(&sim, 5000);
  sim_rates(&sim, x, STRAG_BPS / 4);
  sim_run(&sim, 2000);
  sim_rates(&sim, UINT32_MAX, 0);
  sim_run(&sim, 10000);
  CHECK(sim.nseen == 0, "a 2 s blip judged (%u verdicts)", sim.nseen);
  CHECK(child_edges(&c, x) > 0 && !sch_members_node(c.m, x)->slow, "%u demoted by a blip", x);
  /* Two peers: no median, nobody judged however slow. */
  uint32_t two = 2;
  sim_rates(&sim, sim.fetch[0], STRAG_BPS / 10);
  sch_strag_verdict_t v[4];
  for (uint32_t i = 0; i < 20; i++) {
    sim.now += STRAG_HB_MS;
    for (uint32_t j = 0; j < two; j++) {
      uint32_t y = sim.fetch[j];
      sim.rx[y] += sim.bps[y] * STRAG_HB_MS / 8000;
      sch_strag_sample(sim.t, y, sim.now, sim.rx[y]);
    }
    assert_int_equal(
        sch_strag_judge(sim.t, c.m, c.p, sim.fetch, sim.remaining, two, sim.now, v, 4), 0);
  }
  /* Rates: exact over the window; gone after a counter reset or silence. */
  sch_strag_t *t = sch_strag_create();
  uint64_t bps = 0;
  for (uint64_t ms = 0; ms <= 3000; ms += 100) sch_strag_sample(t, 7, ms, ms * 1000); /* 8 Mbit/s */
  assert_true(sch_strag_rate(t, 7, 3000, &bps));
  assert_int_equal(bps, 8000000);
  assert_false(sch_strag_rate(t, 7, 3000 + 2 * SCH_STRAG_WINDOW_MS + 1, &bps)); /* silent */
  sch_strag_sample(t, 7, 3100, 5);                                               /* restarted */
  assert_false(sch_strag_rate(t, 7, 3100, &bps));
  assert_false(sch_strag_rate(t, 8, 3100, &bps)); /* never reported */
  sch_strag_destroy(t);
  sim_deinit(&sim);
  cluster_deinit(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_straggler_interior_moved),
      cmocka_unit_test(test_straggler_leaf_alone),
      cmocka_unit_test(test_straggler_recovers),
      cmocka_unit_test(test_straggler_blip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
