/* plan.c — the tree store of a plan and its shared primitives: attach,
 * detach, reachability, the spare-capacity search, orders, stats, repair.
 *
 * A plan keeps, for each stripe and each node slot, its parent and its
 * children as an intrusive doubly linked list (first child, previous and next
 * sibling), so attaching, detaching and moving a subtree are O(1) and the
 * whole plan is a handful of flat arrays allocated once at creation for
 * FD_NODES_MAX slots. Upload capacity is counted in child slots across all
 * stripes: a node with NIC B has floor(B / stream_bps) of them. Building the
 * trees is in plan_build.c, repairing them in plan_repair.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "plan_int.h"

void sch_plan_config_default(sch_plan_config_t *cfg) {
  cfg->stripes = FD_STRIPES_DEFAULT;
  cfg->stream_bps = 0;
}

/* The NIC the defaults assume: 10 Gbit/s. */

sch_plan_t *sch_plan_create(const sch_members_t *m, const sch_plan_config_t *cfg) {
  if (!m || !cfg || cfg->stripes == 0 || cfg->stripes > FD_STRIPES_MAX) return NULL;
  sch_plan_t *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->m = m;
  p->k = cfg->stripes;
  p->stream_bps_auto = cfg->stream_bps == 0;
  p->stream_bps = cfg->stream_bps ? cfg->stream_bps : PLAN_DEFAULT_NIC_BPS / cfg->stripes;
  size_t n = FD_NODES_MAX, kn = (size_t)p->k * n;
  p->in_plan = calloc(n, 1);
  p->listed = calloc(n, 1);
  p->complete = calloc(n, 1);
  p->changed = calloc(n, 1);
  p->cap = calloc(n, sizeof(uint16_t));
  p->used = calloc(n, sizeof(uint16_t));
  p->interior = calloc(n, sizeof(uint8_t));
  p->primary = calloc(n, sizeof(int8_t));
  p->zone_next = calloc(n, sizeof(int32_t));
  p->changed_list = calloc(n, sizeof(uint32_t));
  p->scratch = calloc(4 * n + (size_t)p->k * n, sizeof(int32_t));
  p->parent = calloc(kn, sizeof(int32_t));
  p->first_child = calloc(kn, sizeof(int32_t));
  p->next_sib = calloc(kn, sizeof(int32_t));
  p->prev_sib = calloc(kn, sizeof(int32_t));
  p->nchild = calloc(kn, sizeof(uint16_t));
  if (!p->in_plan || !p->listed || !p->complete || !p->changed || !p->cap || !p->used ||
      !p->interior || !p->primary || !p->zone_next || !p->changed_list || !p->scratch ||
      !p->parent || !p->first_child || !p->next_sib || !p->prev_sib || !p->nchild) {
    sch_plan_destroy(p);
    return NULL;
  }
  plan_reset(p);
  return p;
}

void sch_plan_destroy(sch_plan_t *p) {
  if (!p) return;
  free(p->in_plan);
  free(p->listed);
  free(p->complete);
  free(p->changed);
  free(p->cap);
  free(p->used);
  free(p->interior);
  free(p->primary);
  free(p->zone_next);
  free(p->changed_list);
  free(p->scratch);
  free(p->parent);
  free(p->first_child);
  free(p->next_sib);
  free(p->prev_sib);
  free(p->nchild);
  free(p);
}

void plan_reset(sch_plan_t *p) {
  size_t n = FD_NODES_MAX, kn = (size_t)p->k * n;
  memset(p->in_plan, 0, n);
  memset(p->listed, 0, n);
  memset(p->complete, 0, n);
  memset(p->changed, 0, n);
  memset(p->used, 0, n * sizeof(uint16_t));
  memset(p->interior, 0, n);
  memset(p->primary, -1, n);
  memset(p->nchild, 0, kn * sizeof(uint16_t));
  for (size_t i = 0; i < kn; i++) {
    p->parent[i] = SCH_NONE;
    p->first_child[i] = SCH_NONE;
    p->next_sib[i] = SCH_NONE;
    p->prev_sib[i] = SCH_NONE;
  }
  for (uint32_t z = 0; z < SCH_ZONES_MAX; z++) p->zone_first[z] = SCH_NONE;
  p->origin_count = 0;
  p->changed_head = p->changed_count = 0;
}

void plan_mark_changed(sch_plan_t *p, int32_t n) {
  if (n < 0 || p->changed[n]) return;
  p->changed[n] = 1;
  p->changed_list[p->changed_count++] = (uint32_t)n;
}

/* True when slot is an origin that forwards the publish to a later live
 * origin of the chain. */
static bool chain_forwards(const sch_plan_t *p, uint32_t slot) {
  int32_t last_live = -1, rank = -1;
  for (uint32_t i = 0; i < p->chain_n; i++) {
    const sch_node_t *n = sch_members_node(p->m, p->chain[i]);
    if (p->chain[i] == slot) rank = (int32_t)i;
    if (n && (n->state == SCH_NODE_ALIVE || n->state == SCH_NODE_SUSPECT))
      last_live = (int32_t)i;
  }
  return rank >= 0 && rank < last_live;
}

bool plan_origin_holds(const sch_plan_t *p, uint32_t slot) {
  if (p->chain_n == 0) return true; /* not known: every origin holds every version */
  for (uint32_t i = 0; i < p->chain_n; i++)
    if (p->chain[i] == slot) return true;
  return false;
}

uint16_t plan_node_cap(const sch_plan_t *p, uint32_t slot) {
  const sch_node_t *n = sch_members_node(p->m, slot);
  if (n->state == SCH_NODE_DRAINING || n->slow) return 0; /* a leaf only */
  uint64_t c = sch_node_upload_bps(sch_members_node(p->m, slot)) / p->stream_bps;
  if (c > SCH_FANOUT_MAX) c = SCH_FANOUT_MAX;
  if (p->chain_on && chain_forwards(p, slot)) c = c > p->k ? c - p->k : 0;
  return (uint16_t)c;
}

void sch_plan_set_chain(sch_plan_t *p, const char (*origins)[FD_NAME_LEN_MAX + 1], uint32_t n) {
  p->chain_n = 0;
  for (uint32_t i = 0; i < n && i < SCH_ORIGINS_MAX; i++) {
    int slot = sch_members_find(p->m, origins[i]);
    if (slot >= 0) p->chain[p->chain_n++] = (uint32_t)slot;
  }
}

int plan_enlist(sch_plan_t *p, uint32_t slot) {
  if (p->listed[slot]) return 0;
  const sch_node_t *n = sch_members_node(p->m, slot);
  if (n->origin) {
    if (p->origin_count == SCH_ORIGIN_NODES_MAX) return -ENOSPC;
    p->origins[p->origin_count++] = slot;
  } else {
    p->zone_next[slot] = p->zone_first[n->zone];
    p->zone_first[n->zone] = (int32_t)slot;
  }
  p->listed[slot] = 1;
  return 0;
}

void plan_attach(sch_plan_t *p, uint32_t s, uint32_t child, int32_t parent) {
  FD_ASSERT(P_PARENT(p, s, child) == SCH_NONE);
  P_PARENT(p, s, child) = parent;
  plan_mark_changed(p, (int32_t)child);
  if (parent < 0) return;
  FD_ASSERT(p->used[parent] < p->cap[parent]);
  size_t c = IX(p, s, child), pp = IX(p, s, parent);
  p->prev_sib[c] = SCH_NONE;
  p->next_sib[c] = p->first_child[pp];
  if (p->first_child[pp] >= 0) p->prev_sib[IX(p, s, p->first_child[pp])] = (int32_t)child;
  p->first_child[pp] = (int32_t)child;
  if (p->nchild[pp]++ == 0) p->interior[parent]++;
  p->used[parent]++;
  plan_mark_changed(p, parent);
}

void plan_detach(sch_plan_t *p, uint32_t s, uint32_t child) {
  int32_t parent = P_PARENT(p, s, child);
  if (parent == SCH_NONE) return;
  P_PARENT(p, s, child) = SCH_NONE;
  plan_mark_changed(p, (int32_t)child);
  if (parent < 0) return;
  size_t c = IX(p, s, child), pp = IX(p, s, parent);
  int32_t prev = p->prev_sib[c], next = p->next_sib[c];
  if (prev >= 0) p->next_sib[IX(p, s, prev)] = next;
  else p->first_child[pp] = next;
  if (next >= 0) p->prev_sib[IX(p, s, next)] = prev;
  p->prev_sib[c] = p->next_sib[c] = SCH_NONE;
  if (--p->nchild[pp] == 0) p->interior[parent]--;
  p->used[parent]--;
  plan_mark_changed(p, parent);
}

/* Walks up from x: true when it reaches the root without passing avoid (so x
 * is placed and not in avoid's subtree); *depth gets x's depth. */
bool plan_reachable(const sch_plan_t *p, uint32_t s, int32_t x, int32_t avoid, uint32_t *depth) {
  uint32_t d = 0;
  for (uint32_t steps = 0; steps <= FD_NODES_MAX; steps++) {
    if (x == avoid) return false;
    int32_t up = P_PARENT(p, s, x);
    if (up == SCH_ROOT) {
      if (depth) *depth = d;
      return true;
    }
    if (up == SCH_NONE) return false;
    x = up;
    d++;
  }
  FD_ASSERT(!"cycle in a stripe tree");
  return false;
}

/* How well candidate serves as a parent in stripe s: 0 keeps every node
 * interior in one stripe (it already is interior in s, or is an origin),
 * 1 uses a node interior nowhere and meant for no stripe (a pure leaf),
 * 2 makes it interior in a second stripe (it is interior in, or meant for,
 * another one: its upload is spoken for). */
static uint32_t parent_class(const sch_plan_t *p, uint32_t s, uint32_t cand) {
  if (sch_members_node(p->m, cand)->origin) return 0;
  if (P_NCHILD(p, s, cand) > 0 || p->primary[cand] == (int8_t)s) return 0;
  return p->interior[cand] == 0 && p->primary[cand] < 0 ? 1 : 2;
}

typedef struct best {
  int32_t slot;
  uint32_t cls, depth;
} best_t;

static void consider(const sch_plan_t *p, uint32_t s, uint32_t child, uint32_t cand, best_t *b) {
  if (cand == child || !p->in_plan[cand] || p->used[cand] >= p->cap[cand]) return;
  /* Classes 0 and 1 both keep the node interior in one stripe: between them
   * the shallower parent wins; class 2 only when nothing else is there. */
  uint32_t cls = parent_class(p, s, cand), tier = cls == 2;
  if (b->slot >= 0 && tier > (b->cls == 2)) return;
  uint32_t depth;
  if (!plan_reachable(p, s, (int32_t)cand, (int32_t)child, &depth)) return;
  uint64_t key = ((uint64_t)tier << 40) | ((uint64_t)depth << 8) | cls;
  uint64_t best = ((uint64_t)(b->cls == 2) << 40) | ((uint64_t)b->depth << 8) | b->cls;
  if (b->slot < 0 || key < best) *b = (best_t){(int32_t)cand, cls, depth};
}

static void scan_zone(const sch_plan_t *p, uint32_t s, uint32_t child, uint32_t zone, best_t *b) {
  for (int32_t x = p->zone_first[zone]; x >= 0; x = p->zone_next[x]) consider(p, s, child, (uint32_t)x, b);
}

int32_t plan_find_parent(const sch_plan_t *p, uint32_t s, uint32_t child) {
  const sch_node_t *c = sch_members_node(p->m, child);
  best_t b = {SCH_NONE, 0, 0};
  scan_zone(p, s, child, c->zone, &b); /* same zone first, */
  if (b.slot >= 0 && b.cls != 2) return b.slot; /* unless that doubles a node's upload */
  uint32_t zones = sch_members_zone_count(p->m);
  for (uint32_t z = 0; z < zones; z++) /* then the same region */
    if (z != c->zone && sch_members_zone_region(p->m, z) == c->region) scan_zone(p, s, child, z, &b);
  for (uint32_t i = 0; i < p->origin_count; i++) /* origins in the region */
    if (sch_members_node(p->m, p->origins[i])->region == c->region)
      consider(p, s, child, p->origins[i], &b);
  if (b.slot >= 0) return b.slot;
  for (uint32_t i = 0; i < p->origin_count; i++) consider(p, s, child, p->origins[i], &b);
  if (b.slot >= 0) return b.slot;
  for (uint32_t z = 0; z < zones; z++) /* anywhere */
    if (sch_members_zone_region(p->m, z) != c->region) scan_zone(p, s, child, z, &b);
  return b.slot;
}

/* ---- queries ---- */

bool sch_plan_contains(const sch_plan_t *p, uint32_t slot) {
  return slot < FD_NODES_MAX && p->in_plan[slot];
}

uint32_t sch_plan_stripes(const sch_plan_t *p) { return p->k; }

uint32_t sch_plan_capacity(const sch_plan_t *p, uint32_t slot) {
  return slot < FD_NODES_MAX ? p->cap[slot] : 0;
}

int32_t sch_plan_parent(const sch_plan_t *p, uint32_t slot, uint32_t stripe) {
  if (slot >= FD_NODES_MAX || stripe >= p->k || !p->in_plan[slot]) return SCH_NONE;
  return P_PARENT(p, stripe, slot);
}

uint32_t sch_plan_children(const sch_plan_t *p, uint32_t slot, uint32_t stripe, uint32_t *out,
                           uint32_t max) {
  if (slot >= FD_NODES_MAX || stripe >= p->k) return 0;
  uint32_t n = 0;
  for (int32_t c = p->first_child[IX(p, stripe, slot)]; c >= 0; c = p->next_sib[IX(p, stripe, c)]) {
    if (n < max) out[n] = (uint32_t)c;
    n++;
  }
  return n;
}

int sch_plan_order(const sch_plan_t *p, uint32_t slot, sch_order_t *out) {
  if (slot >= FD_NODES_MAX || !p->in_plan[slot]) return -ENOENT;
  out->slot = slot;
  out->stripes = p->k;
  for (uint32_t s = 0; s < p->k; s++) {
    out->stripe[s].parent = P_PARENT(p, s, slot);
    out->stripe[s].child_count =
        sch_plan_children(p, slot, s, out->stripe[s].children, SCH_FANOUT_MAX);
    FD_ASSERT(out->stripe[s].child_count <= SCH_FANOUT_MAX);
  }
  return 0;
}

uint32_t sch_plan_take_changed(sch_plan_t *p, uint32_t *out, uint32_t max) {
  uint32_t n = 0;
  while (n < max && p->changed_head < p->changed_count) {
    uint32_t slot = p->changed_list[p->changed_head++];
    p->changed[slot] = 0;
    out[n++] = slot;
  }
  if (p->changed_head == p->changed_count) p->changed_head = p->changed_count = 0;
  return n;
}

void sch_plan_mark_complete(sch_plan_t *p, uint32_t slot) {
  if (slot < FD_NODES_MAX) p->complete[slot] = 1;
}

static void repair_add(const sch_plan_t *p, uint32_t self, uint32_t x, uint32_t *out, uint32_t max,
                       uint32_t *n) {
  if (x != self && p->in_plan[x] && p->complete[x] && *n < max &&
      sch_members_node(p->m, x)->state != SCH_NODE_DRAINING) /* nobody depends on it */
    out[(*n)++] = x;
}

uint32_t sch_plan_repair_peers(const sch_plan_t *p, uint32_t slot, uint32_t *out, uint32_t max) {
  if (slot >= sch_members_count(p->m)) return 0;
  const sch_node_t *me = sch_members_node(p->m, slot);
  uint32_t n = 0;
  for (int32_t x = p->zone_first[me->zone]; x >= 0 && n < max; x = p->zone_next[x])
    repair_add(p, slot, (uint32_t)x, out, max, &n);
  uint32_t zones = sch_members_zone_count(p->m);
  for (uint32_t z = 0; z < zones && n < max; z++) {
    if (z == me->zone || sch_members_zone_region(p->m, z) != me->region) continue;
    for (int32_t x = p->zone_first[z]; x >= 0 && n < max; x = p->zone_next[x])
      repair_add(p, slot, (uint32_t)x, out, max, &n);
  }
  for (uint32_t i = 0; i < p->origin_count && n < max; i++)
    if (p->in_plan[p->origins[i]]) out[n++] = p->origins[i]; /* origins hold every version */
  return n;
}

void sch_plan_stats(const sch_plan_t *p, sch_plan_stats_t *out) {
  memset(out, 0, sizeof(*out));
  uint32_t count = sch_members_count(p->m);
  for (uint32_t x = 0; x < count; x++) {
    if (!p->in_plan[x]) continue;
    out->nodes++;
    if (p->interior[x] > 1) out->multi_interior++;
    const sch_node_t *nx = sch_members_node(p->m, x);
    for (uint32_t s = 0; s < p->k; s++) {
      int32_t up = P_PARENT(p, s, x);
      uint32_t depth;
      if (up == SCH_NONE || !plan_reachable(p, s, (int32_t)x, SCH_NONE, &depth)) {
        out->unplaced++;
        continue;
      }
      if (depth > out->depth_max) out->depth_max = depth;
      if (up < 0) continue;
      const sch_node_t *np = sch_members_node(p->m, (uint32_t)up);
      if (np->region != nx->region) out->cross_region_edges[s]++;
      else if (np->zone != nx->zone) out->cross_zone_edges[s]++;
    }
  }
}
