/* test_membership.c — register, heartbeat, suspect/dead on an explicit clock, drain, leave, errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scheduler.h"

static sch_node_info_t info(const char *id, const char *region, const char *zone) {
  return (sch_node_info_t){.id = id, .region = region, .zone = zone, .address = "10.0.0.1:7000",
                           .nic_bps = 10000000000ull, .free_disk_bytes = 1ull << 40};
}

static void test_register_and_find(void **state) {
  (void)state;
  sch_members_config_t cfg;
  sch_members_config_default(&cfg);
  sch_members_t *m = sch_members_create(&cfg);
  assert_non_null(m);
  uint32_t a, b, c;
  sch_node_info_t ia = info("a", "eu", "z1"), ib = info("b", "eu", "z2"), ic = info("c", "us", "z1");
  assert_int_equal(sch_members_register(m, &ia, 0, &a), 0);
  assert_int_equal(sch_members_register(m, &ib, 0, &b), 0);
  assert_int_equal(sch_members_register(m, &ic, 0, &c), 0);
  assert_int_equal(sch_members_count(m), 3);
  assert_int_equal(sch_members_find(m, "b"), (int)b);
  assert_int_equal(sch_members_find(m, "nope"), -ENOENT);
  assert_int_equal(sch_members_region_count(m), 2);
  /* "z1" in eu and "z1" in us are different zones. */
  assert_int_equal(sch_members_zone_count(m), 3);
  assert_int_not_equal(sch_members_node(m, a)->zone, sch_members_node(m, c)->zone);
  assert_string_equal(sch_members_region_name(m, sch_members_node(m, c)->region), "us");
  assert_int_equal(sch_members_zone_region(m, sch_members_node(m, c)->zone),
                   sch_members_node(m, c)->region);
  /* Re-registering keeps the slot; moving zones is refused. */
  uint32_t again;
  assert_int_equal(sch_members_register(m, &ia, 5, &again), 0);
  assert_int_equal(again, a);
  sch_node_info_t moved = info("a", "eu", "z2");
  assert_int_equal(sch_members_register(m, &moved, 5, &again), -EEXIST);
  sch_members_destroy(m);
}

static void test_register_errors(void **state) {
  (void)state;
  sch_members_config_t cfg;
  sch_members_config_default(&cfg);
  sch_members_t *m = sch_members_create(&cfg);
  sch_node_info_t bad = info("", "eu", "z");
  assert_int_equal(sch_members_register(m, &bad, 0, NULL), -EINVAL);
  char longid[FD_NAME_LEN_MAX + 2];
  memset(longid, 'x', sizeof(longid) - 1);
  longid[sizeof(longid) - 1] = 0;
  bad = info(longid, "eu", "z");
  assert_int_equal(sch_members_register(m, &bad, 0, NULL), -EMSGSIZE);
  bad = info("n", "eu", "z");
  bad.nic_bps = 0;
  assert_int_equal(sch_members_register(m, &bad, 0, NULL), -EINVAL);
  cfg.dead_misses = cfg.suspect_misses;
  assert_null(sch_members_create(&cfg));
  sch_members_destroy(m);
}

static void test_table_full(void **state) {
  (void)state;
  sch_members_config_t cfg;
  sch_members_config_default(&cfg);
  sch_members_t *m = sch_members_create(&cfg);
  char id[32];
  for (uint32_t i = 0; i < FD_NODES_MAX; i++) {
    snprintf(id, sizeof(id), "n%u", i);
    sch_node_info_t ni = info(id, "r", "z");
    assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
  }
  sch_node_info_t extra = info("one-too-many", "r", "z");
  assert_int_equal(sch_members_register(m, &extra, 0, NULL), -ENOSPC);
  /* Every id is still found through the hash table. */
  for (uint32_t i = 0; i < FD_NODES_MAX; i += 97) {
    snprintf(id, sizeof(id), "n%u", i);
    assert_int_equal(sch_members_find(m, id), (int)i);
  }
  sch_members_destroy(m);
}

static void test_failure_detector(void **state) {
  (void)state;
  sch_members_config_t cfg = {.heartbeat_ms = 100, .suspect_misses = 2, .dead_misses = 4};
  sch_members_t *m = sch_members_create(&cfg);
  uint32_t a, b;
  sch_node_info_t ia = info("a", "eu", "z1"), ib = info("b", "eu", "z1");
  assert_int_equal(sch_members_register(m, &ia, 1000, &a), 0);
  assert_int_equal(sch_members_register(m, &ib, 1000, &b), 0);
  uint32_t died[4];
  /* b keeps heartbeating; a falls silent. */
  for (uint64_t t = 1100; t <= 1500; t += 100) {
    assert_int_equal(sch_members_heartbeat(m, "b", t, 7, 10, NULL, NULL), 0);
    uint32_t n = sch_members_tick(m, t, died, 4);
    if (t < 1200) assert_int_equal(sch_members_node(m, a)->state, SCH_NODE_ALIVE);
    if (t >= 1200 && t < 1400) assert_int_equal(sch_members_node(m, a)->state, SCH_NODE_SUSPECT);
    if (t == 1400) {
      assert_int_equal(n, 1);
      assert_int_equal(died[0], a);
    } else {
      assert_int_equal(n, 0);
    }
  }
  assert_int_equal(sch_members_node(m, a)->state, SCH_NODE_DEAD);
  assert_int_equal(sch_members_node(m, b)->state, SCH_NODE_ALIVE);
  assert_int_equal(sch_members_node(m, b)->progress_version, 7);
  /* a comes back: alive again, flagged as returned, incarnation bumped. */
  bool returned = false;
  uint32_t slot;
  assert_int_equal(sch_members_heartbeat(m, "a", 1600, 0, 0, &slot, &returned), 0);
  assert_true(returned);
  assert_int_equal(slot, a);
  assert_int_equal(sch_members_node(m, a)->incarnation, 1);
  assert_int_equal(sch_members_node(m, a)->state, SCH_NODE_ALIVE);
  assert_int_equal(sch_members_heartbeat(m, "a", 1700, 0, 0, NULL, &returned), 0);
  assert_false(returned);
  assert_int_equal(sch_members_heartbeat(m, "zz", 1700, 0, 0, NULL, NULL), -ENOENT);
  sch_members_destroy(m);
}

static void test_tick_bounded_output(void **state) {
  (void)state;
  sch_members_config_t cfg = {.heartbeat_ms = 10, .suspect_misses = 1, .dead_misses = 2};
  sch_members_t *m = sch_members_create(&cfg);
  char id[16];
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof(id), "n%d", i);
    sch_node_info_t ni = info(id, "r", "z");
    assert_int_equal(sch_members_register(m, &ni, 0, NULL), 0);
  }
  uint32_t died[4];
  assert_int_equal(sch_members_tick(m, 100, died, 4), 4);
  assert_int_equal(sch_members_tick(m, 100, died, 4), 4);
  assert_int_equal(sch_members_tick(m, 100, died, 4), 2);
  assert_int_equal(sch_members_tick(m, 100, died, 4), 0);
  uint32_t census[SCH_NODE_LEFT + 1];
  sch_members_census(m, census);
  assert_int_equal(census[SCH_NODE_DEAD], 10);
  sch_members_destroy(m);
}

static void test_drain_and_leave(void **state) {
  (void)state;
  sch_members_config_t cfg;
  sch_members_config_default(&cfg);
  sch_members_t *m = sch_members_create(&cfg);
  uint32_t a;
  sch_node_info_t ia = info("a", "eu", "z1");
  assert_int_equal(sch_members_register(m, &ia, 0, &a), 0);
  assert_int_equal(sch_members_drain(m, a), 0);
  assert_int_equal(sch_members_heartbeat(m, "a", 10, 0, 0, NULL, NULL), 0);
  assert_int_equal(sch_members_node(m, a)->state, SCH_NODE_DRAINING); /* stays draining */
  assert_int_equal(sch_members_drain(m, a), -EALREADY);
  assert_int_equal(sch_members_undrain(m, a), 0);
  assert_int_equal(sch_members_node(m, a)->state, SCH_NODE_ALIVE);
  assert_int_equal(sch_members_undrain(m, a), -EALREADY);
  assert_int_equal(sch_members_undrain(m, 99), -ENOENT);
  assert_int_equal(sch_members_drain(m, a), 0);
  assert_int_equal(sch_members_leave(m, a), 0);
  assert_int_equal(sch_members_leave(m, a), -EALREADY);
  assert_int_equal(sch_members_heartbeat(m, "a", 20, 0, 0, NULL, NULL), -ENOENT);
  assert_int_equal(sch_members_declare_dead(m, a), -EALREADY);
  assert_int_equal(sch_members_declare_dead(m, 99), -ENOENT);
  assert_int_equal(sch_members_drain(m, 99), -ENOENT);
  /* Registering again brings it back. */
  assert_int_equal(sch_members_register(m, &ia, 30, NULL), 0);
  assert_int_equal(sch_members_node(m, a)->state, SCH_NODE_ALIVE);
  assert_int_equal(sch_members_node(m, a)->incarnation, 1);
  assert_int_equal(sch_members_declare_dead(m, a), 0);
  assert_string_equal(sch_node_state_name(sch_members_node(m, a)->state), "dead");
  /* A drain outlives the node's death, its return and its registrations. */
  uint32_t b;
  sch_node_info_t ib = info("b", "eu", "z1");
  assert_int_equal(sch_members_register(m, &ib, 40, &b), 0);
  assert_int_equal(sch_members_drain(m, b), 0);
  assert_int_equal(sch_members_declare_dead(m, b), 0);
  assert_int_equal(sch_members_drain(m, b), -EALREADY);
  bool back = false;
  assert_int_equal(sch_members_heartbeat(m, "b", 50, 0, 0, NULL, &back), 0);
  assert_true(back);
  assert_int_equal(sch_members_node(m, b)->state, SCH_NODE_DRAINING);
  assert_int_equal(sch_members_register(m, &ib, 60, NULL), 0);
  assert_int_equal(sch_members_node(m, b)->state, SCH_NODE_DRAINING);
  assert_int_equal(sch_members_declare_dead(m, b), 0);
  assert_int_equal(sch_members_undrain(m, b), 0); /* undrained while dead: stays dead */
  assert_int_equal(sch_members_node(m, b)->state, SCH_NODE_DEAD);
  assert_int_equal(sch_members_register(m, &ib, 70, NULL), 0);
  assert_int_equal(sch_members_node(m, b)->state, SCH_NODE_ALIVE);
  sch_members_destroy(m);
}

/* A node's stalls are kept as its heartbeat said them, with the longest
 * SCH_CHILD_STALLS_MAX children, longest first. */
static void test_stalls_keep_longest_children(void **state) {
  (void)state;
  sch_node_stalls_t s = {0};
  sch_stalls_add_child(&s, 1, 10);
  sch_stalls_add_child(&s, 2, 30);
  sch_stalls_add_child(&s, 3, 20);
  assert_int_equal(s.n_child, 3);
  assert_int_equal(s.child[0].slot, 2);
  assert_int_equal(s.child[1].slot, 3);
  assert_int_equal(s.child[2].slot, 1);
  for (uint32_t i = 0; i < 2 * SCH_CHILD_STALLS_MAX; i++) sch_stalls_add_child(&s, 100 + i, 5);
  assert_int_equal(s.n_child, SCH_CHILD_STALLS_MAX);
  assert_int_equal(s.child[0].blocked_ms, 30); /* the long ones stay */
  sch_stalls_add_child(&s, 7, 1);              /* shorter than a full list: dropped */
  for (uint32_t i = 0; i < s.n_child; i++) assert_int_not_equal(s.child[i].slot, 7);
  sch_stalls_add_child(&s, 8, 1000); /* the longest: first, the shortest goes */
  assert_int_equal(s.n_child, SCH_CHILD_STALLS_MAX);
  assert_int_equal(s.child[0].slot, 8);
  for (uint32_t i = 1; i < s.n_child; i++) assert_true(s.child[i - 1].blocked_ms >= s.child[i].blocked_ms);

  sch_members_config_t cfg;
  sch_members_config_default(&cfg);
  sch_members_t *m = sch_members_create(&cfg);
  uint32_t a;
  sch_node_info_t ia = info("a", "eu", "z1");
  assert_int_equal(sch_members_register(m, &ia, 0, &a), 0);
  assert_int_equal(sch_members_stalls(m, a)->blocked_ms, 0); /* nothing reported yet */
  s.blocked_ms = 1234;
  s.credit_sync_ms = 56;
  assert_int_equal(sch_members_set_stalls(m, a, &s), 0);
  assert_int_equal(sch_members_stalls(m, a)->blocked_ms, 1234);
  assert_int_equal(sch_members_stalls(m, a)->credit_sync_ms, 56);
  assert_int_equal(sch_members_stalls(m, a)->n_child, SCH_CHILD_STALLS_MAX);
  assert_int_equal(sch_members_set_stalls(m, a + 1, &s), -ENOENT);
  sch_members_destroy(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_and_find),  cmocka_unit_test(test_register_errors),
      cmocka_unit_test(test_table_full),         cmocka_unit_test(test_failure_detector),
      cmocka_unit_test(test_tick_bounded_output), cmocka_unit_test(test_drain_and_leave),
      cmocka_unit_test(test_stalls_keep_longest_children),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
