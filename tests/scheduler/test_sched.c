/* test_sched.c — the core end to end on an explicit clock: publish, heartbeats, deaths, return to the newest version, late join, leave, drain and undrain, restart, stragglers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scheduler.h"

#define NODES 600u
#define HB 1000u

static char dir[256];

static int setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof(dir), "%s/fd-sched-XXXXXX", tmp ? tmp : "/tmp");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  const char *names[] = {"log", "checkpoint", "log.tmp", "checkpoint.tmp"};
  char path[300];
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
  return rmdir(dir);
}

static sch_db_t *open_db(uint64_t now) {
  int err;
  sch_store_t *st = sch_store_open_dir(dir, &err);
  assert_non_null(st);
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_db_t *db = sch_db_open(st, &mc, now, &err);
  assert_non_null(db);
  return db;
}

static uint8_t manifest[1000];
static const char *origins[] = {"origin0", "origin1", "origin2"};

static sch_version_info_t version(uint64_t v) {
  memset(manifest, (int)v, sizeof(manifest));
  return (sch_version_info_t){.file = "big.img", .version = v, .size_bytes = 1ull << 30,
                              .chunk_size_bytes = FD_CHUNK_SIZE_DEFAULT, .manifest = manifest,
                              .manifest_len = sizeof(manifest), .origin_count = 3,
                              .origins = origins};
}

static void everyone_placed(const sch_sched_t *s, uint32_t expect_nodes) {
  const char *file;
  uint64_t v;
  const sch_plan_t *p = sch_sched_plan_at(s, 0, &file, &v);
  assert_non_null(p);
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  assert_int_equal(st.nodes, expect_nodes);
  assert_int_equal(st.unplaced, 0);
}

static void beat_all_but(sch_sched_t *s, sch_db_t *db, uint64_t now, const bool *silent) {
  sch_members_t *m = sch_db_members(db);
  for (uint32_t i = 0; i < sch_members_count(m); i++) {
    if (silent && silent[i]) continue;
    const sch_node_t *n = sch_members_node(m, i);
    if (n->state == SCH_NODE_LEFT || n->state == SCH_NODE_DEAD) continue;
    assert_int_equal(sch_sched_heartbeat(s, n->id, now, "big.img", 1, 0), 0);
  }
}

/* Registers origin0..2 (region r0, a zone each) and node3..node<n-1>,
 * spread over `spread` regions x `spread` zones, all on 10 Gbit/s NICs. */
static void register_fleet(sch_sched_t *s, uint32_t n, uint32_t spread) {
  char id[32], region[16], zone[16];
  for (uint32_t i = 0; i < n; i++) {
    bool origin = i < 3;
    snprintf(id, sizeof(id), origin ? "origin%u" : "node%u", i);
    snprintf(region, sizeof(region), "r%u", origin ? 0 : i % spread);
    snprintf(zone, sizeof(zone), "z%u", origin ? i : (i / spread) % spread);
    sch_node_info_t ni = {.id = id, .region = region, .zone = zone, .address = "h:1",
                          .nic_bps = 10000000000ull, .free_disk_bytes = 1ull << 40,
                          .origin = origin};
    assert_int_equal(sch_sched_register(s, &ni, 0, NULL), 0);
  }
}

static void test_core_end_to_end(void **state) {
  (void)state;
  sch_db_t *db = open_db(0);
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_sched_t *s = sch_sched_create(db, &pc);
  assert_non_null(s);
  register_fleet(s, NODES, 3);
  assert_int_equal(sch_sched_plan_count(s), 0);
  sch_version_info_t v1 = version(1);
  assert_int_equal(sch_sched_publish(s, &v1), 0);
  assert_int_equal(sch_sched_plan_count(s), 1);
  everyone_placed(s, NODES);
  sch_push_t *push = malloc(FD_NODES_MAX * sizeof(sch_push_t));
  assert_int_equal(sch_sched_take_pushes(s, push, FD_NODES_MAX), NODES);

  /* Ten nodes fall silent: suspect after 3 intervals, dead (and re-parented
   * around) after 5. */
  bool silent[NODES + 8] = {false};
  for (uint32_t i = 0; i < 10; i++) silent[10 + i * 37] = true;
  uint64_t now = 0;
  for (int t = 1; t <= 5; t++) {
    now = (uint64_t)t * HB;
    beat_all_but(s, db, now, silent);
    int died = sch_sched_tick(s, now);
    assert_int_equal(died, t == 5 ? 10 : 0);
  }
  everyone_placed(s, NODES - 10);
  uint32_t n = sch_sched_take_pushes(s, push, FD_NODES_MAX);
  assert_true(n >= 10 && n < NODES / 2);
  for (uint32_t i = 0; i < n; i++) assert_false(silent[push[i].slot]);

  /* v2 is published while they are dead; one comes back and is brought to v2. */
  sch_version_info_t v2 = version(2);
  assert_int_equal(sch_sched_publish(s, &v2), 0);
  assert_int_equal(sch_sched_plan_count(s), 1);
  const char *file;
  uint64_t ver;
  const sch_plan_t *p = sch_sched_plan_at(s, 0, &file, &ver);
  assert_int_equal(ver, 2);
  assert_false(sch_plan_contains(p, 10));
  assert_int_equal(sch_sched_heartbeat(s, "node10", now + HB, "big.img", 1, 7), 0);
  assert_true(sch_plan_contains(p, 10));
  everyone_placed(s, NODES - 9);
  /* Progress reports become holdings; a complete node becomes a repair peer. */
  assert_int_equal(sch_registry_held(sch_db_registry(db), 10, "big.img", 1), 7);
  assert_int_equal(sch_sched_heartbeat(s, "node11", now + HB, "big.img", 2, 256), 0);
  uint32_t peers[4];
  assert_true(sch_plan_repair_peers(p, 14, peers, 4) >= 1);

  /* A late registrant joins as a leaf; a node that leaves is gone at once. */
  sch_node_info_t late = {.id = "late", .region = "r1", .zone = "z2", .address = "h:2",
                          .nic_bps = 10000000000ull};
  uint32_t late_slot;
  assert_int_equal(sch_sched_register(s, &late, now + HB, &late_slot), 0);
  assert_true(sch_plan_contains(p, late_slot));
  assert_int_equal(sch_sched_leave(s, 100), 0);
  assert_false(sch_plan_contains(p, 100));
  assert_int_equal(sch_sched_declare_dead(s, 101), 0);
  assert_false(sch_plan_contains(p, 101));
  assert_int_equal(sch_sched_drain(s, 102), 0);
  assert_true(sch_plan_contains(p, 102)); /* keeps downloading, as a leaf */
  beat_all_but(s, db, now + HB, NULL); /* every moved child has been told */
  assert_int_equal(sch_sched_dependents(s, 102), 0);
  everyone_placed(s, NODES - 9 + 1 - 2);
  assert_int_equal(sch_sched_heartbeat(s, "nobody", now, NULL, 0, 0), -ENOENT);
  sch_sched_destroy(s);
  sch_db_close(db);

  /* Restart: the newest version's plan is rebuilt from the log. */
  db = open_db(now + 2 * HB);
  s = sch_sched_create(db, &pc);
  assert_non_null(s);
  assert_int_equal(sch_sched_plan_count(s), 1);
  p = sch_sched_plan_at(s, 0, &file, &ver);
  assert_int_equal(ver, 2);
  assert_string_equal(file, "big.img");
  /* Every node but the one that left is back, alive until proven dead. */
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  assert_int_equal(st.nodes, NODES + 1 - 1); /* the late one in, the leaver out */
  assert_int_equal(st.unplaced, 0);
  assert_false(sch_plan_contains(p, 100));
  assert_true(sch_plan_contains(p, 102)); /* draining: a leaf of the new plan */
  assert_int_equal(sch_plan_capacity(p, 102), 0);
  assert_int_equal(sch_sched_dependents(s, 102), 0);
  free(push);
  sch_sched_destroy(s);
  sch_db_close(db);
}

/* The origins and a third of the nodes miss their heartbeats at once
 * (fdsched's machine stalled, or every process did under load): they are
 * declared dead and the other nodes are orphans with no root to find. When
 * the silent ones beat again, every node is placed with a parent in every
 * stripe: the plan is built anew once an origin is back, rather than
 * leaving the orphans parentless for good. */
static void test_origins_silent_then_back(void **state) {
  (void)state;
  sch_db_t *db = open_db(0);
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_sched_t *s = sch_sched_create(db, &pc);
  assert_non_null(s);
  char id[32];
  const uint32_t nodes = 40;
  register_fleet(s, nodes, 2);
  sch_version_info_t v1 = version(1);
  assert_int_equal(sch_sched_publish(s, &v1), 0);
  everyone_placed(s, nodes);
  /* The origins and a third of the nodes fall silent and are declared dead
   * at once (as it went in the test that found this): every other node is
   * an orphan that finds no root. */
  bool silent[64] = {false};
  uint32_t quiet = 0;
  for (uint32_t i = 0; i < nodes; i++) {
    silent[i] = i < 3 || i % 3 == 0;
    quiet += silent[i];
  }
  uint64_t now = 0;
  int died = 0;
  for (int t = 1; t <= 6; t++) {
    now = (uint64_t)t * HB;
    beat_all_but(s, db, now, silent);
    died += sch_sched_tick(s, now);
  }
  assert_int_equal(died, (int)quiet);
  /* The silent ones beat again (a dead node's heartbeat brings it back). */
  now += HB;
  for (uint32_t i = 0; i < nodes; i++) {
    if (!silent[i]) continue;
    snprintf(id, sizeof(id), i < 3 ? "origin%u" : "node%u", i);
    assert_int_equal(sch_sched_heartbeat(s, id, now, "big.img", 1, 0), 0);
  }
  beat_all_but(s, db, now, silent);
  assert_int_equal(sch_sched_tick(s, now), 0);
  everyone_placed(s, nodes);
  const char *file;
  uint64_t ver;
  const sch_plan_t *p = sch_sched_plan_at(s, 0, &file, &ver);
  for (uint32_t x = 3; x < nodes; x++)
    for (uint32_t st = 0; st < sch_plan_stripes(p); st++)
      assert_true(sch_plan_parent(p, x, st) >= 0);
  sch_sched_destroy(s);
  sch_db_close(db);
}

/* A version registered while its publish runs is pending until committed,
 * both states survive a restart, and an aborted one is retired with the
 * plan going back to the version before it. */
static void test_pending_commit_abort(void **state) {
  (void)state;
  sch_db_t *db = open_db(0);
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_sched_t *s = sch_sched_create(db, &pc);
  assert_non_null(s);
  char id[32];
  for (uint32_t i = 0; i < 12; i++) {
    snprintf(id, sizeof(id), i < 3 ? "origin%u" : "node%u", i);
    sch_node_info_t ni = {.id = id,
                          .region = "r0",
                          .zone = i % 2 ? "a" : "b",
                          .address = "h:1",
                          .nic_bps = 1000000000ull,
                          .origin = i < 3};
    assert_int_equal(sch_sched_register(s, &ni, 0, NULL), 0);
  }
  const sch_registry_t *r = sch_db_registry(db);
  sch_version_info_t v1 = version(1);
  assert_int_equal(sch_sched_publish(s, &v1), 0);
  assert_false(sch_registry_find(r, "big.img", 1)->pending);
  assert_int_equal(sch_sched_commit(s, "big.img", 1, NULL, 0), -EALREADY);
  assert_int_equal(sch_sched_abort(s, "big.img", 1), -EALREADY); /* never taken back */

  sch_version_info_t v2 = version(2);
  v2.pending = true;
  assert_int_equal(sch_sched_publish(s, &v2), 0);
  assert_true(sch_registry_find(r, "big.img", 2)->pending);
  const char *file;
  uint64_t ver;
  assert_non_null(sch_sched_plan_at(s, 0, &file, &ver));
  assert_int_equal(ver, 2); /* distribution starts while pending */
  sch_sched_destroy(s);
  sch_db_close(db);

  /* Pending survives a restart; the commit is durable too. */
  db = open_db(HB);
  r = sch_db_registry(db);
  s = sch_sched_create(db, &pc);
  assert_true(sch_registry_find(r, "big.img", 2)->pending);
  /* Committed by two of its three origins: origin2 was dropped from the
   * publish's chain and lacks it. It leaves v2's plan (it cannot seed what
   * it does not hold), and every node still has a parent in every stripe. */
  for (uint32_t i = 0; i < 12; i++) { /* alive again after the restart */
    snprintf(id, sizeof(id), i < 3 ? "origin%u" : "node%u", i);
    assert_int_equal(sch_sched_heartbeat(s, id, HB, "big.img", 2, 0), 0);
  }
  const char *holders[] = {"origin0", "origin1"};
  const sch_plan_t *p = sch_sched_plan_at(s, 0, &file, &ver);
  assert_true(sch_plan_contains(p, 2));
  assert_int_equal(sch_sched_commit(s, "big.img", 2, holders, 2), 0);
  assert_false(sch_registry_find(r, "big.img", 2)->pending);
  assert_int_equal(sch_registry_find(r, "big.img", 2)->origin_count, 2);
  p = sch_sched_plan_at(s, 0, &file, &ver);
  assert_int_equal(ver, 2);
  assert_false(sch_plan_contains(p, 2));
  for (uint32_t x = 3; x < 12; x++)
    for (uint32_t st = 0; st < sch_plan_stripes(p); st++) {
      int32_t up = sch_plan_parent(p, x, st);
      assert_true(up >= 0);
      assert_int_not_equal(up, 2);
    }
  assert_int_equal(sch_sched_commit(s, "big.img", 2, NULL, 0), -EALREADY);
  sch_sched_destroy(s);
  sch_db_close(db);
  db = open_db(2 * HB);
  r = sch_db_registry(db);
  s = sch_sched_create(db, &pc);
  assert_false(sch_registry_find(r, "big.img", 2)->pending);
  assert_int_equal(sch_registry_find(r, "big.img", 2)->origin_count, 2); /* durable too */
  assert_string_equal(sch_registry_find(r, "big.img", 2)->origins[1], "origin1");

  /* v3 fails: retired, the plan is v2's again, and v3 may be published anew. */
  sch_version_info_t v3 = version(3);
  v3.pending = true;
  assert_int_equal(sch_sched_publish(s, &v3), 0);
  assert_int_equal(sch_sched_abort(s, "big.img", 3), 0);
  assert_null(sch_registry_find(r, "big.img", 3));
  assert_non_null(sch_sched_plan_at(s, 0, &file, &ver));
  assert_int_equal(ver, 2);
  assert_int_equal(sch_sched_abort(s, "big.img", 3), -ENOENT);
  v3.pending = false;
  assert_int_equal(sch_sched_publish(s, &v3), 0);
  assert_non_null(sch_sched_plan_at(s, 0, &file, &ver));
  assert_int_equal(ver, 3);
  sch_sched_destroy(s);
  sch_db_close(db);
  db = open_db(3 * HB);
  r = sch_db_registry(db);
  assert_non_null(sch_registry_find(r, "big.img", 3));
  assert_false(sch_registry_find(r, "big.img", 3)->pending);
  sch_db_close(db);
}

/* The busiest non-origin node of the only plan. */
static uint32_t busiest(const sch_sched_t *s) {
  const sch_plan_t *p = sch_sched_plan_at(s, 0, NULL, NULL);
  uint32_t best = 0, most = 0;
  for (uint32_t x = 3; x < NODES; x++)
    if (sch_sched_dependents(s, x) > most) best = x, most = sch_sched_dependents(s, x);
  assert_true(sch_plan_contains(p, best));
  return best;
}

/* Drain moves the node's children at once and pushes the changed orders;
 * the state and the leaf's place survive a restart (replayed from the log,
 * then from a checkpoint); undrain (OP_UNDRAIN) survives one too, and the
 * plan built after it makes the node interior again. */
static void test_drain_undrain_restart(void **state) {
  (void)state;
  sch_db_t *db = open_db(0);
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_sched_t *s = sch_sched_create(db, &pc);
  register_fleet(s, NODES, 3);
  sch_version_info_t v1 = version(1);
  assert_int_equal(sch_sched_publish(s, &v1), 0);
  sch_push_t *push = malloc(FD_NODES_MAX * sizeof(sch_push_t));
  while (sch_sched_take_pushes(s, push, FD_NODES_MAX) > 0) {
  }
  uint32_t x = busiest(s);
  uint32_t had = sch_sched_dependents(s, x);
  assert_true(had > 0);
  uint32_t kids = 0;
  const sch_plan_t *p0 = sch_sched_plan_at(s, 0, NULL, NULL);
  uint8_t kid[NODES] = {0};
  for (uint32_t st = 0; st < sch_plan_stripes(p0); st++) {
    uint32_t c[SCH_FANOUT_MAX];
    uint32_t n = sch_plan_children(p0, x, st, c, SCH_FANOUT_MAX);
    for (uint32_t j = 0; j < n; j++) kids += !kid[c[j]], kid[c[j]] = 1;
  }
  assert_int_equal(sch_sched_drain(s, x), 0);
  /* No child under it any more, but the moved ones have not been told yet. */
  assert_int_equal(sch_sched_dependents(s, x), kids);
  everyone_placed(s, NODES);
  for (uint32_t y = 0, left = kids; y < NODES; y++) {
    if (!kid[y]) continue;
    assert_int_equal(sch_sched_heartbeat(s, sch_members_node(sch_db_members(db), y)->id, HB / 2,
                                         NULL, 0, 0),
                     0);
    assert_int_equal(sch_sched_dependents(s, x), --left);
  }
  uint32_t n = sch_sched_take_pushes(s, push, FD_NODES_MAX);
  assert_true(n > had); /* the old children, their new parents, the node */
  assert_int_equal(sch_sched_drain(s, x), -EALREADY); /* nothing logged again */
  uint64_t ops = sch_db_ops_since_checkpoint(db);
  assert_int_equal(sch_sched_drain(s, x), -EALREADY);
  assert_int_equal(sch_db_ops_since_checkpoint(db), ops);
  assert_int_equal(sch_sched_undrain(s, 4), -EALREADY); /* not draining */
  sch_sched_destroy(s);
  sch_db_close(db);

  for (int round = 0; round < 2; round++) { /* from the log, then from a checkpoint */
    db = open_db(HB);
    s = sch_sched_create(db, &pc);
    assert_non_null(s);
    assert_int_equal(sch_members_node(sch_db_members(db), x)->state, SCH_NODE_DRAINING);
    const sch_plan_t *p = sch_sched_plan_at(s, 0, NULL, NULL);
    assert_true(sch_plan_contains(p, x));
    assert_int_equal(sch_plan_capacity(p, x), 0);
    assert_int_equal(sch_sched_dependents(s, x), 0);
    everyone_placed(s, NODES);
    if (round == 0) assert_int_equal(sch_db_checkpoint(db), 0);
    sch_sched_destroy(s);
    sch_db_close(db);
  }

  db = open_db(2 * HB);
  s = sch_sched_create(db, &pc);
  assert_int_equal(sch_sched_undrain(s, x), 0);
  assert_int_equal(sch_members_node(sch_db_members(db), x)->state, SCH_NODE_ALIVE);
  assert_true(sch_plan_capacity(sch_sched_plan_at(s, 0, NULL, NULL), x) > 0);
  sch_sched_destroy(s);
  sch_db_close(db);
  db = open_db(3 * HB);
  s = sch_sched_create(db, &pc);
  assert_int_equal(sch_members_node(sch_db_members(db), x)->state, SCH_NODE_ALIVE);
  assert_int_equal(sch_sched_dependents(s, x), had); /* the same build as the first */
  everyone_placed(s, NODES);
  free(push);
  sch_sched_destroy(s);
  sch_db_close(db);
}

/* Stragglers through the core: heartbeats carry progress and byte
 * counters; at a quarter of its peers' rate an interior node is judged
 * slow at a tick within a few seconds, its children are moved (pushed) and
 * counted, and it stays a leaf; a node that holds the whole version is
 * never judged (not fetching), and one that dies is no longer slow. */
static void test_stragglers(void **state) {
  (void)state;
  sch_db_t *db = open_db(0);
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  sch_sched_t *s = sch_sched_create(db, &pc);
  register_fleet(s, NODES, 3);
  sch_version_info_t v1 = version(1);
  assert_int_equal(sch_sched_publish(s, &v1), 0);
  sch_push_t *push = malloc(FD_NODES_MAX * sizeof(sch_push_t));
  while (sch_sched_take_pushes(s, push, FD_NODES_MAX) > 0) {
  }
  const sch_plan_t *p = sch_sched_plan_at(s, 0, NULL, NULL);
  uint32_t x = busiest(s);
  uint32_t kids = sch_sched_dependents(s, x);
  assert_true(kids > 0);
  /* A complete node at a tenth of the rate: it holds the version, so it is
   * not judged. */
  uint32_t done = x == 5 ? 6 : 5;
  const sch_members_t *m = sch_db_members(db);
  const sch_version_t *v = sch_registry_find(sch_db_registry(db), "big.img", 1);
  static uint64_t rx[NODES];
  memset(rx, 0, sizeof(rx));
  uint64_t now = 0, judged_at = 0;
  sch_sched_strag_stats_t st;
  for (int t = 1; t <= 16; t++) { /* 8 s of 500 ms heartbeats */
    now = (uint64_t)t * 500;
    for (uint32_t i = 0; i < NODES; i++) {
      const sch_node_t *n = sch_members_node(m, i);
      uint64_t bps = i == x ? 250000000ull : i == done ? 100000000ull : 1000000000ull;
      rx[i] += bps / 16; /* bytes in 500 ms */
      uint64_t chunks = i == done ? v->chunk_count : 1;
      assert_int_equal(sch_sched_heartbeat(s, n->id, now, "big.img", 1, chunks), 0);
      assert_int_equal(sch_sched_traffic(s, n->id, now, rx[i]), 0);
    }
    assert_int_equal(sch_sched_tick(s, now), 0);
    sch_sched_stragglers(s, &st);
    if (st.demoted && !judged_at) judged_at = now;
  }
  assert_int_equal(st.demoted, 1);
  assert_int_equal(st.slow_now, 1);
  assert_int_equal(st.recovered, 0);
  assert_int_equal(st.children_moved, kids);
  assert_true(judged_at > 0 && judged_at <= 5000);
  assert_true(sch_members_node(m, x)->slow);
  assert_false(sch_members_node(m, done)->slow);
  assert_int_equal(sch_plan_capacity(p, x), 0);
  for (uint32_t k = 0; k < sch_plan_stripes(p); k++)
    assert_int_equal(sch_plan_children(p, x, k, NULL, 0), 0);
  everyone_placed(s, NODES);
  uint32_t n = sch_sched_take_pushes(s, push, FD_NODES_MAX);
  assert_true(n > kids); /* the old children, their new parents, the node */
  assert_int_equal(sch_sched_traffic(s, "nobody", now, 0), -ENOENT);
  /* A node that dies is no longer slow: back, it is judged afresh. */
  assert_int_equal(sch_sched_declare_dead(s, x), 0);
  sch_sched_stragglers(s, &st);
  assert_int_equal(st.slow_now, 0);
  assert_false(sch_members_node(m, x)->slow);
  free(push);
  sch_sched_destroy(s);
  sch_db_close(db);
}

/* A slow node that is the only one with upload to spare keeps its place:
 * demoting it would leave its children without a parent (the origins'
 * slots cannot cover them), and a slow parent beats none. It is not judged
 * again for SCH_STRAG_KEEP_MS, then is (and kept again). */
static void test_straggler_kept_without_room(void **state) {
  (void)state;
  sch_db_t *db = open_db(0);
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  pc.stream_bps = 100000000ull; /* slots: NIC / 100 Mbit/s */
  sch_sched_t *s = sch_sched_create(db, &pc);
  enum { OTHERS = 20, ALL = 3 + 1 + OTHERS };
  char id[32];
  for (uint32_t i = 0; i < ALL; i++) {
    bool origin = i < 3;
    snprintf(id, sizeof(id), origin ? "origin%u" : "node%u", i);
    /* origins 10 slots each, node3 64 (the cap), the others none */
    uint64_t nic = origin ? 1000000000ull : i == 3 ? 10000000000ull : 50000000ull;
    sch_node_info_t ni = {.id = id, .region = "r0", .zone = "z0", .address = "h:1",
                          .nic_bps = nic, .free_disk_bytes = 1ull << 40, .origin = origin};
    assert_int_equal(sch_sched_register(s, &ni, 0, NULL), 0);
  }
  sch_version_info_t v1 = version(1);
  assert_int_equal(sch_sched_publish(s, &v1), 0);
  everyone_placed(s, ALL);
  sch_push_t *push = malloc(FD_NODES_MAX * sizeof(sch_push_t));
  while (sch_sched_take_pushes(s, push, FD_NODES_MAX) > 0) {
  }
  const uint32_t x = 3;
  const uint32_t kids = sch_sched_dependents(s, x);
  assert_true(kids > 0);
  const sch_members_t *m = sch_db_members(db);
  static uint64_t rx[ALL];
  memset(rx, 0, sizeof(rx));
  sch_sched_strag_stats_t st;
  uint64_t kept_at[2] = {0, 0};
  for (int t = 1; t <= 90; t++) { /* 45 s of 500 ms heartbeats */
    uint64_t now = (uint64_t)t * 500;
    for (uint32_t i = 0; i < ALL; i++) {
      const sch_node_t *n = sch_members_node(m, i);
      rx[i] += (i == x ? 250000000ull : 1000000000ull) / 16;
      assert_int_equal(sch_sched_heartbeat(s, n->id, now, "big.img", 1, 1), 0);
      assert_int_equal(sch_sched_traffic(s, n->id, now, rx[i]), 0);
    }
    assert_int_equal(sch_sched_tick(s, now), 0);
    sch_sched_stragglers(s, &st);
    if (st.kept >= 1 && !kept_at[0]) kept_at[0] = now;
    if (st.kept >= 2 && !kept_at[1]) kept_at[1] = now;
    assert_false(sch_members_node(m, x)->slow); /* never left a leaf */
    everyone_placed(s, ALL);
  }
  assert_int_equal(st.demoted, 0);
  assert_int_equal(st.children_moved, 0);
  assert_true(kept_at[0] > 0 && kept_at[0] <= 5000);
  /* judged again only after SCH_STRAG_KEEP_MS (and SCH_STRAG_SLOW_MS below the bar) */
  assert_true(kept_at[1] >= kept_at[0] + SCH_STRAG_KEEP_MS + SCH_STRAG_SLOW_MS);
  assert_int_equal(sch_sched_dependents(s, x), kids); /* the plan was never touched */
  assert_int_equal(sch_sched_take_pushes(s, push, FD_NODES_MAX), 0); /* no order changed */
  free(push);
  sch_sched_destroy(s);
  sch_db_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_core_end_to_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_origins_silent_then_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_commit_abort, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drain_undrain_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stragglers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_straggler_kept_without_room, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
