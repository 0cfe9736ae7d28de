/* plan_int.h — the planner's internals, shared by plan.c, plan_build.c and
 * plan_repair.c only (not part of the module's public interface). */
#ifndef SCH_PLAN_INT_H
#define SCH_PLAN_INT_H

#include "scheduler.h"

/* The NIC a plan assumes when deriving its per-stream rate. */
#define PLAN_DEFAULT_NIC_BPS 10000000000ull

struct sch_plan {
  const sch_members_t *m;
  uint32_t k;
  uint64_t stream_bps;
  bool stream_bps_auto; /* derived from the members at each build */
  /* per node slot */
  uint8_t *in_plan;  /* placed in this plan and not removed */
  uint8_t *listed;   /* linked into its zone list (or the origin list) */
  uint8_t *complete; /* reported the whole version (repair source) */
  uint8_t *changed;  /* in changed_list */
  uint16_t *cap;     /* child slots */
  uint16_t *used;    /* children over all stripes */
  uint8_t *interior; /* stripes in which it has children */
  int8_t *primary;   /* the stripe it is meant to be interior in, or -1 */
  int32_t *zone_next;
  int32_t zone_first[SCH_ZONES_MAX];
  uint32_t origins[SCH_ORIGIN_NODES_MAX];
  uint32_t origin_count;
  /* The version's origin chain, head first (member slots): every origin but
   * the last live one forwards the publish to the next, a full stream set
   * (k slots) of its upload that seeding the trees cannot use. */
  uint32_t chain[SCH_ORIGINS_MAX];
  uint32_t chain_n;
  bool chain_on; /* the current build honours the chain (off: it left nodes unplaced) */
  uint32_t *changed_list;
  uint32_t changed_head, changed_count;
  int32_t *scratch; /* 4 * FD_NODES_MAX + k * FD_NODES_MAX ints for build and repair */
  /* per stripe, per node slot: index s * FD_NODES_MAX + slot */
  int32_t *parent;
  int32_t *first_child;
  int32_t *next_sib;
  int32_t *prev_sib;
  uint16_t *nchild;
};

#define IX(p, s, n) ((size_t)(s) * FD_NODES_MAX + (size_t)(n))
#define P_PARENT(p, s, n) ((p)->parent[IX(p, s, n)])
#define P_NCHILD(p, s, n) ((p)->nchild[IX(p, s, n)])

void plan_reset(sch_plan_t *p);
void plan_mark_changed(sch_plan_t *p, int32_t n);
uint16_t plan_node_cap(const sch_plan_t *p, uint32_t slot);
/* False for an origin outside the version's chain (down during its
 * publish): it does not hold the version and is left out of the plan. */
bool plan_origin_holds(const sch_plan_t *p, uint32_t slot);
/* Links a node into its zone list or the origin list; -ENOSPC when there
 * are already SCH_ORIGIN_NODES_MAX origins. */
int plan_enlist(sch_plan_t *p, uint32_t slot);
void plan_attach(sch_plan_t *p, uint32_t s, uint32_t child, int32_t parent);
void plan_detach(sch_plan_t *p, uint32_t s, uint32_t child);
bool plan_reachable(const sch_plan_t *p, uint32_t s, int32_t x, int32_t avoid, uint32_t *depth);
/* A parent with a free slot for child in stripe s: same zone, same region,
 * origins, anywhere; never child's descendant; SCH_NONE if there is none. */
int32_t plan_find_parent(const sch_plan_t *p, uint32_t s, uint32_t child);

#endif /* SCH_PLAN_INT_H */
