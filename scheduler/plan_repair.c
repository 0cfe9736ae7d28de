/* plan_repair.c — keeping a plan whole while nodes die, join and return.
 *
 * Removing a batch of dead nodes works stripe by stripe. Every dead node is
 * first cut from its parent; then the dead are visited from the top of the
 * tree down (by their depth before the failure), so that when a node's
 * orphans look for a new parent every dead ancestor above them has already
 * been repaired. For each dead node, its best orphan in the same zone (then
 * the same region) — interior in this stripe, most children — takes its
 * place under its nearest live former ancestor: a dead region or zone head is
 * replaced from inside its region or zone, and the cross-region edge it hung
 * from is reused, not duplicated. Every other orphan goes through the spare
 * search (plan_find_parent), which never picks one of its descendants.
 *
 * Draining a node is the same removal with the node kept: its children in
 * every stripe are re-parented exactly as a dead node's orphans, then the
 * node itself, with no child slot left, is placed again as a leaf (it keeps
 * downloading). Undraining gives its slots back; children reach it through
 * later repairs and joins, and through the next build. Demoting a straggler
 * is a drain when it has children, and only the loss of its slots when it
 * is a leaf (which is left where it is); its recovery is an undrain.
 *
 * A node that joins late, or comes back, attaches as a leaf; when no node has
 * a free slot in some stripe it splices itself between a leaf and the leaf's
 * parent, using one of its own slots. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "plan_int.h"

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Higher is a better replacement for dead d in stripe s. */
static int64_t replacement_rank(const sch_plan_t *p, uint32_t s, uint32_t d, uint32_t c) {
  const sch_node_t *nd = sch_members_node(p->m, d), *nc = sch_members_node(p->m, c);
  int64_t rank = 0;
  /* An heir that neither carries a subtree nor has a free slot would take
   * the place and feed nobody: the stripe would end there. */
  if (P_NCHILD(p, s, c) == 0 && p->used[c] >= p->cap[c]) return -1;
  if (nc->zone == nd->zone) rank += 1 << 30;
  else if (nc->region == nd->region) rank += 1 << 29;
  else return -1;
  if (p->primary[c] == (int8_t)s) rank += 1 << 20;
  rank += (int64_t)P_NCHILD(p, s, c) << 10;
  rank += p->cap[c];
  return rank;
}

/* Phase 1 for dead d in stripe s: cut its children loose and let its best
 * orphan take its place under target (its nearest live former ancestor).
 * Other-zone orphans (zone heads fed by a dead region head) are kept close
 * to the new head: it sheds a same-zone child to make room for each. Writes
 * the orphans still to place into out; returns how many. */
static uint32_t repair_replace(sch_plan_t *p, uint32_t s, uint32_t d, int32_t target,
                               uint32_t *out) {
  uint32_t orphans[SCH_FANOUT_MAX];
  uint32_t n = 0;
  while (p->first_child[IX(p, s, d)] >= 0) {
    uint32_t c = (uint32_t)p->first_child[IX(p, s, d)];
    plan_detach(p, s, c);
    if (p->in_plan[c]) {
      FD_ASSERT(n < SCH_FANOUT_MAX);
      orphans[n++] = c;
    }
  }
  int32_t repl = -1;
  int64_t repl_rank = -1;
  for (uint32_t i = 0; i < n; i++) {
    int64_t rank = replacement_rank(p, s, d, orphans[i]);
    if (rank > repl_rank) repl_rank = rank, repl = (int32_t)i;
  }
  if (repl < 0 || target < 0 || !p->in_plan[target] || p->used[target] >= p->cap[target] ||
      !plan_reachable(p, s, target, (int32_t)orphans[repl], NULL)) {
    memcpy(out, orphans, n * sizeof(uint32_t));
    return n;
  }
  uint32_t heir = orphans[repl];
  plan_attach(p, s, heir, target);
  orphans[repl] = orphans[--n];
  uint32_t heir_zone = sch_members_node(p->m, heir)->zone;
  uint32_t left = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t c = orphans[i];
    bool zone_head = sch_members_node(p->m, c)->zone != heir_zone;
    if (zone_head && p->used[heir] >= p->cap[heir]) {
      /* Shed the same-zone child with the smallest subtree top. */
      int32_t shed = SCH_NONE;
      for (int32_t y = p->first_child[IX(p, s, heir)]; y >= 0; y = p->next_sib[IX(p, s, y)])
        if (sch_members_node(p->m, (uint32_t)y)->zone == heir_zone &&
            (shed < 0 || P_NCHILD(p, s, y) < P_NCHILD(p, s, shed)))
          shed = y;
      if (shed >= 0) {
        plan_detach(p, s, (uint32_t)shed);
        out[left++] = (uint32_t)shed;
      }
    }
    if (zone_head && p->used[heir] < p->cap[heir]) plan_attach(p, s, c, (int32_t)heir);
    else out[left++] = c;
  }
  return left;
}

/* An orphan carrying a subtree should not sink to the bottom, where the
 * spare slots are: it takes the place of a leaf under a node at most
 * max_depth deep (same zone first, then same region; with anywhere, then
 * every zone and the origins too), and the leaf — which carries nobody —
 * goes to a spare slot instead. */
static bool displace(sch_plan_t *p, uint32_t s, uint32_t c, uint32_t max_depth, bool anywhere,
                     uint32_t *leaf) {
  const sch_node_t *nc = sch_members_node(p->m, c);
  uint32_t zones = sch_members_zone_count(p->m);
  for (uint32_t pass = 0; pass < (anywhere ? 3u : 2u); pass++) {
    int32_t best_x = SCH_NONE, best_l = SCH_NONE;
    uint32_t best_depth = UINT32_MAX;
    for (uint32_t z = 0; z <= zones; z++) {
      int32_t first;
      if (z == zones) { /* the origins, last and only when anywhere */
        if (pass < 2) continue;
        first = SCH_NONE;
      } else {
        if (pass == 0 && z != nc->zone) continue;
        if (pass == 1 && sch_members_zone_region(p->m, z) != nc->region) continue;
        first = p->zone_first[z];
      }
      uint32_t oi = 0;
      for (int32_t x = z == zones ? (p->origin_count ? (int32_t)p->origins[0] : SCH_NONE) : first;
           x >= 0;
           x = z == zones ? (++oi < p->origin_count ? (int32_t)p->origins[oi] : SCH_NONE)
                          : p->zone_next[x]) {
        uint32_t depth;
        if (!p->in_plan[x] || P_NCHILD(p, s, x) == 0) continue;
        if (!plan_reachable(p, s, x, (int32_t)c, &depth) || depth > max_depth ||
            depth >= best_depth)
          continue;
        for (int32_t y = p->first_child[IX(p, s, x)]; y >= 0; y = p->next_sib[IX(p, s, y)])
          if (P_NCHILD(p, s, y) == 0 &&
              (pass == 2 || sch_members_node(p->m, (uint32_t)y)->zone == z)) {
            best_x = x, best_l = y, best_depth = depth;
            break;
          }
      }
    }
    if (best_x >= 0) {
      plan_detach(p, s, (uint32_t)best_l);
      plan_attach(p, s, c, best_x);
      *leaf = (uint32_t)best_l;
      return true;
    }
  }
  return false;
}

/* Takes the nodes in slots out of every stripe and re-parents their orphans
 * (phase 1: heirs, phase 2: spare slots). With keep (a drain) they stay in
 * the plan with no child slot, and each is then placed again as a leaf — at
 * the back of the queue, after the orphans they fed — an origin at the root. */
static int evict(sch_plan_t *p, const uint32_t *slots, uint32_t count, bool keep) {
  /* scratch: idx_of[FD_NODES_MAX], dead[FD_NODES_MAX], former[k][FD_NODES_MAX] */
  int32_t *idx_of = p->scratch, *dead = p->scratch + FD_NODES_MAX;
  int32_t *former = p->scratch + (size_t)4 * FD_NODES_MAX;
  uint32_t nd = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t x = slots[i];
    if (x >= FD_NODES_MAX || !p->in_plan[x]) continue;
    p->in_plan[x] = 0;
    idx_of[x] = (int32_t)nd;
    dead[nd++] = (int32_t)x;
  }
  if (nd == 0) return 0;
  uint64_t *keys = malloc(nd * sizeof(uint64_t));
  uint32_t *orphan_buf = malloc((size_t)2 * FD_NODES_MAX * sizeof(uint32_t));
  uint32_t *want = malloc((size_t)2 * FD_NODES_MAX * sizeof(uint32_t)); /* depth the orphan had */
  if (!keys || !orphan_buf || !want) {
    free(keys);
    free(orphan_buf);
    free(want);
    return -ENOMEM;
  }
  uint32_t lost = 0;
  for (uint32_t s = 0; s < p->k; s++) {
    for (uint32_t i = 0; i < nd; i++) {
      uint32_t depth = UINT32_MAX;
      if (!plan_reachable(p, s, dead[i], SCH_NONE, &depth)) depth = UINT32_MAX;
      keys[i] = ((uint64_t)depth << 32) | i;
      former[(size_t)s * FD_NODES_MAX + i] = P_PARENT(p, s, dead[i]);
    }
    for (uint32_t i = 0; i < nd; i++) plan_detach(p, s, (uint32_t)dead[i]);
    qsort(keys, nd, sizeof(uint64_t), cmp_u64);
    /* Phase 1, top down: heirs take the places of the dead. */
    uint32_t pending = 0;
    for (uint32_t j = 0; j < nd; j++) {
      uint32_t i = (uint32_t)keys[j];
      /* The nearest live former ancestor: skip dead ones of this batch. */
      int32_t target = former[(size_t)s * FD_NODES_MAX + i];
      for (uint32_t guard = 0; target >= 0 && !p->in_plan[target] && guard <= nd; guard++) {
        if (idx_of[target] < 0 || idx_of[target] >= (int32_t)nd || dead[idx_of[target]] != target) {
          target = SCH_NONE; /* dead before this batch: no longer in the tree */
          break;
        }
        target = former[(size_t)s * FD_NODES_MAX + (uint32_t)idx_of[target]];
      }
      if (target == SCH_ROOT) target = SCH_NONE;
      FD_ASSERT(pending + 2 * SCH_FANOUT_MAX <= 2 * FD_NODES_MAX);
      uint32_t added = repair_replace(p, s, (uint32_t)dead[i], target, orphan_buf + pending);
      uint32_t depth = (uint32_t)(keys[j] >> 32);
      for (uint32_t a = 0; a < added; a++)
        want[pending + a] = depth == UINT32_MAX ? UINT32_MAX : depth + 1;
      pending += added;
    }
    for (uint32_t i = 0; keep && i < nd; i++) {
      uint32_t x = (uint32_t)dead[i];
      if (sch_members_node(p->m, x)->origin) {
        plan_attach(p, s, x, SCH_ROOT);
      } else if (pending < 2 * FD_NODES_MAX) {
        want[pending] = UINT32_MAX;
        orphan_buf[pending++] = x;
      }
    }
    /* Phase 2: the other orphans take spare slots, in the order found (top
     * down), once every heir is in place. One that finds none waits at the
     * back of the queue: another orphan's subtree, once placed, may have the
     * room. It is lost only when a whole round of the queue made no progress. */
    uint32_t fails_in_row = 0;
    for (uint32_t j = 0; j < pending; j++) {
      uint32_t c = orphan_buf[j], depth = 0;
      int32_t parent = plan_find_parent(p, s, c);
      if (parent >= 0) plan_reachable(p, s, parent, SCH_NONE, &depth);
      uint32_t leaf;
      if (P_NCHILD(p, s, c) > 0 && want[j] != UINT32_MAX && want[j] > 0 &&
          (parent == SCH_NONE || depth + 1 > want[j]) && pending < 2 * FD_NODES_MAX &&
          displace(p, s, c, parent == SCH_NONE ? want[j] - 1 : depth - 1, false, &leaf)) {
        want[pending] = UINT32_MAX;
        orphan_buf[pending++] = leaf;
        fails_in_row = 0;
        continue;
      }
      if (parent == SCH_NONE && p->used[c] < p->cap[c] && pending < 2 * FD_NODES_MAX &&
          displace(p, s, c, UINT32_MAX, true, &leaf)) {
        /* No free slot reachable, but c has one: c takes a leaf's place
         * and the leaf can hang off c. */
        want[pending] = UINT32_MAX;
        orphan_buf[pending++] = leaf;
        fails_in_row = 0;
        continue;
      }
      if (parent == SCH_NONE) {
        if (++fails_in_row <= pending - j && pending < 2 * FD_NODES_MAX) {
          want[pending] = want[j];
          orphan_buf[pending++] = c;
        } else {
          lost++;
        }
        continue;
      }
      fails_in_row = 0;
      plan_attach(p, s, c, parent);
    }
  }
  for (uint32_t i = 0; i < nd; i++) {
    uint32_t x = (uint32_t)dead[i];
    FD_ASSERT(p->used[x] == 0 && p->interior[x] == 0);
    p->primary[x] = -1;
    if (keep) {
      p->in_plan[x] = 1;
      plan_mark_changed(p, (int32_t)x);
    } else {
      p->complete[x] = 0;
    }
  }
  free(keys);
  free(orphan_buf);
  free(want);
  return (int)lost;
}

int sch_plan_remove(sch_plan_t *p, const uint32_t *slots, uint32_t count) {
  return evict(p, slots, count, false);
}

int sch_plan_drain(sch_plan_t *p, uint32_t slot) {
  if (slot >= FD_NODES_MAX || !p->in_plan[slot]) return -ENOENT;
  p->cap[slot] = 0; /* from here on no search picks it as a parent */
  return evict(p, &slot, 1, true);
}

int sch_plan_demote(sch_plan_t *p, uint32_t slot) {
  if (slot >= FD_NODES_MAX || !p->in_plan[slot]) return -ENOENT;
  FD_ASSERT(plan_node_cap(p, slot) == 0); /* the next build must agree */
  if (p->used[slot] > 0) return sch_plan_drain(p, slot);
  p->cap[slot] = 0; /* a leaf stays where it is */
  return 0;
}

int sch_plan_undrain(sch_plan_t *p, uint32_t slot) {
  const sch_node_t *n = sch_members_node(p->m, slot);
  if (!n) return -ENOENT;
  if (n->state == SCH_NODE_DRAINING) return -EINVAL;
  if (!p->in_plan[slot]) /* dead or gone: it joins when it is back */
    return n->state == SCH_NODE_ALIVE || n->state == SCH_NODE_SUSPECT ? sch_plan_join(p, slot) : 0;
  p->cap[slot] = plan_node_cap(p, slot);
  return 0;
}

static bool splice(sch_plan_t *p, uint32_t s, uint32_t j) {
  if (p->used[j] >= p->cap[j]) return false;
  const sch_node_t *nj = sch_members_node(p->m, j);
  uint32_t zones = sch_members_zone_count(p->m);
  for (uint32_t pass = 0; pass < 2; pass++) {
    for (uint32_t z = 0; z < zones; z++) {
      if (pass == 0 ? z != nj->zone : sch_members_zone_region(p->m, z) != nj->region) continue;
      for (int32_t x = p->zone_first[z]; x >= 0; x = p->zone_next[x]) {
        if ((uint32_t)x == j || !p->in_plan[x] || P_NCHILD(p, s, x) > 0) continue;
        int32_t up = P_PARENT(p, s, x);
        if (up < 0 || !plan_reachable(p, s, x, (int32_t)j, NULL)) continue;
        plan_detach(p, s, (uint32_t)x);
        plan_attach(p, s, j, up);
        plan_attach(p, s, (uint32_t)x, (int32_t)j);
        return true;
      }
    }
  }
  return false;
}

int sch_plan_join(sch_plan_t *p, uint32_t slot) {
  const sch_node_t *n = sch_members_node(p->m, slot);
  if (!n) return -ENOENT;
  if (p->in_plan[slot]) return -EALREADY;
  if (n->state != SCH_NODE_ALIVE && n->state != SCH_NODE_SUSPECT && n->state != SCH_NODE_DRAINING)
    return -EINVAL;
  if (n->origin && !plan_origin_holds(p, slot)) return -EALREADY; /* lacks the version */
  if (plan_enlist(p, slot)) return -ENOSPC;
  p->in_plan[slot] = 1;
  p->cap[slot] = plan_node_cap(p, slot);
  p->primary[slot] = -1;
  p->complete[slot] = 0;
  if (n->origin) {
    for (uint32_t s = 0; s < p->k; s++) plan_attach(p, s, slot, SCH_ROOT);
    return 0;
  }
  int rc = 0;
  for (uint32_t s = 0; s < p->k; s++) {
    int32_t parent = plan_find_parent(p, s, slot);
    if (parent != SCH_NONE) plan_attach(p, s, slot, parent);
    else if (!splice(p, s, slot)) rc = -ENOSPC;
  }
  return rc;
}
