/* plan_fixture.h — what the planner's unit tests share (test_plan.c,
 * test_plan_strag.c): seeded randomness, CHECK, a 10,000-node cluster over
 * 3 regions x 3 zones and the plan's invariants checked from the outside. */
#ifndef PLAN_FIXTURE_H
#define PLAN_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "scheduler.h"

#define NODES 10000u
#define REGIONS 3u
#define ZONES 3u
#define STRIPES 4u
#define GBPS 1000000000ull

/* ---- seeded randomness: FD_TEST_SEED=<n> repeats a run ---- */

extern uint64_t the_seed;
uint64_t rnd(void);
/* Seeds rnd() from FD_TEST_SEED or the clock and prints the seed. */
void seed_rng(const char *test);

#define CHECK(cond, ...)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      print_message("check failed (seed %llu): ", (unsigned long long)the_seed); \
      print_message(__VA_ARGS__);                                                 \
      print_message("\n");                                                        \
      fail_msg("%s", #cond);                                                      \
    }                                                                             \
  } while (0)

/* ---- a cluster: 3 origins in region 0 (one per zone), the rest spread ---- */

typedef struct cluster {
  sch_members_t *m;
  sch_plan_t *p;
  uint32_t count;
} cluster_t;

/* nodes members (3 origins first), NICs drawn from rnd(), and a built plan. */
void cluster_init(cluster_t *c, uint32_t nodes);
void cluster_deinit(cluster_t *c);
/* The child slots a node of that NIC gets with STRIPES stripes. */
uint32_t expected_cap(const sch_node_t *n);
/* Checks every invariant from the outside, through the public API only. */
void check_plan(const cluster_t *c, const char *when);
/* Children over every stripe, or 0. */
uint32_t child_edges(const cluster_t *c, uint32_t x);
/* The node with the most children that is not an origin; with head, a
 * region head of some stripe (hung off an origin). */
uint32_t busiest(const cluster_t *c, bool head);

#endif /* PLAN_FIXTURE_H */
