/* plan_build.c — building a version's stripe trees from scratch.
 *
 * 1. Every live node is in the plan; origins sit at the root of every stripe.
 *    A draining node is in it with no child slot: a leaf of every stripe.
 * 2. Each zone's nodes are sorted by capacity (largest first) and each is
 *    given the stripe it will be interior in (SplitStream): the stripe whose
 *    in-zone demand (nodes to feed, plus the other zone heads when this zone
 *    heads the region for that stripe) is least covered so far. Once every
 *    stripe's demand is covered the remaining nodes are pure leaves, the
 *    spare capacity re-parenting draws on.
 * 3. For each stripe and region the head zone rotates with the stripe, so
 *    different stripes enter a region through different nodes. The zone head
 *    of the head zone is the region head: it hangs off an origin (in its own
 *    region if one has a free slot — the only cross-region edge) and feeds
 *    the other zone heads of its region (the only cross-zone edges).
 * 4. Inside a zone the stripe's tree is filled breadth-first, interior nodes
 *    of that stripe first, so depth grows as log base fan-out of the zone
 *    size; a node the interior nodes cannot cover goes to the spare search.
 * 5. A fleet whose every region has fewer nodes than stripes cannot give
 *    each stripe an interior node per region, and the hierarchy then relays
 *    stripes through nodes interior in others (deeper trees, some uploads
 *    of a whole S). Such a fleet is also planned as one group, steps 2 and
 *    4 over all its nodes (each stripe's interior node hangs off an origin
 *    and feeds everyone), and that plan is kept when it places as many,
 *    loads the busiest uploader less, or is shallower.
 * Build allocates its sort keys (it is not on a hot path); everything else
 * lives in the plan's arrays. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "plan_int.h"

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static bool eligible(const sch_node_t *n) {
  return n->state == SCH_NODE_ALIVE || n->state == SCH_NODE_SUSPECT;
}

/* In the plan: the eligible, and draining nodes as leaves (no child slots). */
static bool plannable(const sch_node_t *n) { return eligible(n) || n->state == SCH_NODE_DRAINING; }

/* Non-empty zones of region r, in zone-index order. */
static uint32_t region_zones(const sch_plan_t *p, uint32_t r, const uint32_t *zstart,
                             uint16_t *out) {
  uint32_t n = 0, zones = sch_members_zone_count(p->m);
  for (uint32_t z = 0; z < zones; z++)
    if (sch_members_zone_region(p->m, z) == r && zstart[z + 1] > zstart[z]) out[n++] = (uint16_t)z;
  return n;
}

static void assign_primaries(sch_plan_t *p, const int32_t *zl, uint32_t n_z, uint32_t zi,
                             uint32_t nz, uint32_t r) {
  int64_t deficit[FD_STRIPES_MAX];
  for (uint32_t s = 0; s < p->k; s++) {
    deficit[s] = (int64_t)n_z - 1;
    if ((s + r) % nz == zi) deficit[s] += nz - 1; /* this zone heads the region for s */
  }
  for (uint32_t i = 0; i < n_z; i++) {
    uint32_t x = (uint32_t)zl[i];
    int32_t best = -1;
    for (uint32_t j = 0; j < p->k && p->cap[x] > 0; j++) {
      uint32_t s = (j + zi) % p->k;
      if (deficit[s] > 0 && (best < 0 || deficit[s] > deficit[best])) best = (int32_t)s;
    }
    p->primary[x] = (int8_t)best;
    if (best >= 0) deficit[best] -= p->cap[x];
  }
}

/* The node of list (n of them) meant to be interior in stripe s, else
 * list[0]: the stripe's head in that group. */
static int32_t stripe_head(const sch_plan_t *p, const int32_t *list, uint32_t n, uint32_t s) {
  for (uint32_t i = 0; i < n; i++)
    if (p->primary[list[i]] == (int8_t)s) return list[i];
  return list[0];
}

static int32_t pick_origin(const sch_plan_t *p, uint32_t region) {
  int32_t best = SCH_NONE;
  uint32_t best_free = 0;
  bool best_local = false;
  for (uint32_t i = 0; i < p->origin_count; i++) {
    uint32_t o = p->origins[i];
    if (!p->in_plan[o] || p->used[o] >= p->cap[o]) continue;
    uint32_t free_slots = (uint32_t)(p->cap[o] - p->used[o]);
    bool local = sch_members_node(p->m, o)->region == region;
    if (best < 0 || (local && !best_local) || (local == best_local && free_slots > best_free)) {
      best = (int32_t)o;
      best_free = free_slots;
      best_local = local;
    }
  }
  return best;
}

static void place(sch_plan_t *p, uint32_t s, uint32_t x, int32_t preferred) {
  if (preferred >= 0 && p->used[preferred] < p->cap[preferred] &&
      plan_reachable(p, s, preferred, (int32_t)x, NULL)) {
    plan_attach(p, s, x, preferred);
    return;
  }
  int32_t parent = plan_find_parent(p, s, x);
  if (parent != SCH_NONE) plan_attach(p, s, x, parent);
}

/* Breadth-first fill of one zone for stripe s; head is already placed. */
static void fill_zone(sch_plan_t *p, uint32_t s, const int32_t *zl, uint32_t n_z, int32_t head,
                      int32_t *L) {
  /* Interior nodes of s, with the pure leaves (the spare capacity) spread
   * evenly among them so that spare slots sit at every depth, not only at
   * the bottom where an orphan's subtree would sink; then everyone else. */
  uint32_t n = 0, n_int = 0, n_pure = 0;
  for (uint32_t i = 0; i < n_z; i++) {
    if (zl[i] == head) continue;
    if (p->primary[zl[i]] == (int8_t)s) n_int++;
    else if (p->primary[zl[i]] < 0) n_pure++;
  }
  L[n++] = head;
  uint32_t ai = 0, bi = 0, taken_int = 0, taken_pure = 0;
  while (taken_int < n_int || taken_pure < n_pure) {
    /* Take a pure leaf when pure leaves are behind their share. */
    bool pure = taken_pure < n_pure &&
                (taken_int == n_int ||
                 (uint64_t)taken_pure * n_int < (uint64_t)taken_int * n_pure);
    if (pure) {
      while (zl[bi] == head || p->primary[zl[bi]] >= 0) bi++;
      L[n++] = zl[bi++];
      taken_pure++;
    } else {
      while (zl[ai] == head || p->primary[zl[ai]] != (int8_t)s) ai++;
      L[n++] = zl[ai++];
      taken_int++;
    }
  }
  for (uint32_t i = 0; i < n_z; i++)
    if (zl[i] != head && p->primary[zl[i]] != (int8_t)s && p->primary[zl[i]] >= 0) L[n++] = zl[i];
  FD_ASSERT(n == n_z);
  uint32_t q = 0;
  for (uint32_t i = 1; i < n; i++) {
    uint32_t x = (uint32_t)L[i];
    while (q < i) {
      int32_t y = L[q];
      /* The head of a zone holding no node meant for s is a leaf of s
       * like its zone-mates, who then find a parent that is (in another
       * zone of the region, or a pure leaf here): small zones stay shallow
       * and no node is interior in two stripes. */
      bool interior_here = p->primary[y] == (int8_t)s || (q == 0 && p->primary[y] < 0);
      if (interior_here && p->used[y] < p->cap[y] && P_PARENT(p, s, y) != SCH_NONE) break;
      q++;
    }
    place(p, s, x, q < i ? L[q] : SCH_NONE);
  }
}

/* Places stripe s's region head of r (under parent, or wherever the spare
 * search finds room when parent is SCH_NONE) and the region's other zone
 * heads under it. False when the region is empty or its head found no place. */
static bool place_region(sch_plan_t *p, uint32_t s, uint32_t r, const uint32_t *zstart,
                         const int32_t *heads, int32_t parent) {
  uint16_t rz[SCH_ZONES_MAX];
  uint32_t zones = sch_members_zone_count(p->m);
  uint32_t nz = region_zones(p, r, zstart, rz);
  if (nz == 0) return false;
  uint32_t hz = rz[(s + r) % nz];
  int32_t rhead = heads[s * zones + hz];
  place(p, s, (uint32_t)rhead, parent);
  if (P_PARENT(p, s, rhead) == SCH_NONE) return false;
  for (uint32_t zi = 0; zi < nz; zi++)
    if (rz[zi] != hz) place(p, s, (uint32_t)heads[s * zones + rz[zi]], rhead);
  return true;
}

static void fill_region(sch_plan_t *p, uint32_t s, uint32_t r, const uint32_t *zstart,
                        const int32_t *zl, const int32_t *heads, int32_t *L) {
  uint16_t rz[SCH_ZONES_MAX];
  uint32_t zones = sch_members_zone_count(p->m);
  uint32_t nz = region_zones(p, r, zstart, rz);
  for (uint32_t zi = 0; zi < nz; zi++) {
    uint32_t z = rz[zi];
    fill_zone(p, s, zl + zstart[z], zstart[z + 1] - zstart[z], heads[s * zones + z], L);
  }
}

/* The automatic per-stream rate: min(10 Gbit/s, the median NIC of the
 * eligible non-origin members, the slowest origin's NIC) over k. It only
 * ever lowers the 10 Gbit/s default, so every origin and a typical node get
 * at least k child slots whatever the fleet's NIC speed. keys has room for
 * every member. */
static void derive_stream_bps(sch_plan_t *p, uint64_t *keys, uint32_t count) {
  uint64_t nic = PLAN_DEFAULT_NIC_BPS;
  uint32_t nk = 0;
  for (uint32_t x = 0; x < count; x++) {
    const sch_node_t *n = sch_members_node(p->m, x);
    if (!eligible(n) || n->nic_bps == 0) continue;
    if (n->origin)
      nic = FD_MIN(nic, sch_node_upload_bps(n));
    else
      keys[nk++] = sch_node_upload_bps(n);
  }
  if (nk > 0) {
    qsort(keys, nk, sizeof(*keys), cmp_u64);
    nic = FD_MIN(nic, keys[nk / 2]);
  }
  p->stream_bps = FD_MAX(nic / p->k, 1);
}

/* Enlists every plannable member, sizes its slots, derives the stream rate
 * and hangs the origins at every stripe's root. keys (room for every
 * member + 1) gets the non-origin nodes sorted by zone, then capacity
 * (largest first), then slot; *nk their count. */
static int build_begin(sch_plan_t *p, uint64_t *keys, uint32_t *nk_out) {
  plan_reset(p);
  uint32_t count = sch_members_count(p->m);
  if (p->stream_bps_auto) derive_stream_bps(p, keys, count);
  uint32_t nk = 0;
  for (uint32_t x = 0; x < count; x++) {
    const sch_node_t *n = sch_members_node(p->m, x);
    if (!plannable(n) || (n->origin && !plan_origin_holds(p, x))) continue;
    if (plan_enlist(p, x)) {
      plan_reset(p);
      return -ENOSPC;
    }
    p->in_plan[x] = 1;
    p->cap[x] = plan_node_cap(p, x);
    if (!n->origin)
      keys[nk++] = ((uint64_t)n->zone << 48) | ((uint64_t)(SCH_FANOUT_MAX - p->cap[x]) << 32) | x;
  }
  if (p->origin_count == 0) {
    plan_reset(p);
    return -ENOENT;
  }
  for (uint32_t i = 0; i < p->origin_count; i++)
    for (uint32_t s = 0; s < p->k; s++) plan_attach(p, s, p->origins[i], SCH_ROOT);
  qsort(keys, nk, sizeof(uint64_t), cmp_u64);
  *nk_out = nk;
  return 0;
}

/* Step 5: the fleet as one group. */
static int build_flat(sch_plan_t *p) {
  uint32_t count = sch_members_count(p->m), nk;
  uint64_t *keys = malloc(((size_t)count + 1) * sizeof(uint64_t));
  if (!keys) return -ENOMEM;
  int rc = build_begin(p, keys, &nk);
  if (rc) {
    free(keys);
    return rc;
  }
  /* largest capacity first, whatever the zone */
  for (uint32_t i = 0; i < nk; i++) keys[i] &= ~(0xffffull << 48);
  qsort(keys, nk, sizeof(uint64_t), cmp_u64);
  int32_t *zl = p->scratch, *L = p->scratch + FD_NODES_MAX;
  for (uint32_t i = 0; i < nk; i++) zl[i] = (int32_t)(uint32_t)keys[i];
  free(keys);
  if (nk == 0) return 0;
  assign_primaries(p, zl, nk, 0, 1, 0);
  for (uint32_t s = 0; s < p->k; s++) {
    int32_t head = stripe_head(p, zl, nk, s);
    place(p, s, (uint32_t)head, pick_origin(p, sch_members_node(p->m, (uint32_t)head)->region));
    if (P_PARENT(p, s, head) != SCH_NONE) fill_zone(p, s, zl, nk, head, L);
  }
  return 0;
}

static int build(sch_plan_t *p) {
  uint32_t count = sch_members_count(p->m), nk;
  uint32_t zones = sch_members_zone_count(p->m), regions = sch_members_region_count(p->m);
  uint64_t *keys = malloc(((size_t)count + 1) * sizeof(uint64_t));
  int32_t *heads = malloc(((size_t)p->k * (zones + 1)) * sizeof(int32_t));
  int rc = keys && heads ? build_begin(p, keys, &nk) : -ENOMEM;
  if (rc) {
    free(keys);
    free(heads);
    return rc;
  }

  /* zl: non-origin nodes grouped by zone, largest capacity first. */
  int32_t *zl = p->scratch, *L = p->scratch + FD_NODES_MAX;
  uint32_t zstart[SCH_ZONES_MAX + 1];
  memset(zstart, 0, sizeof(zstart));
  for (uint32_t i = 0; i < nk; i++) {
    zl[i] = (int32_t)(uint32_t)keys[i];
    zstart[(keys[i] >> 48) + 1]++;
  }
  for (uint32_t z = 0; z < zones; z++) zstart[z + 1] += zstart[z];
  free(keys);

  uint16_t rz[SCH_ZONES_MAX];
  for (uint32_t r = 0; r < regions; r++) {
    uint32_t nz = region_zones(p, r, zstart, rz);
    for (uint32_t zi = 0; zi < nz; zi++) {
      uint32_t z = rz[zi];
      const int32_t *list = zl + zstart[z];
      uint32_t n_z = zstart[z + 1] - zstart[z];
      assign_primaries(p, list, n_z, zi, nz, r);
      for (uint32_t s = 0; s < p->k; s++) heads[s * zones + z] = stripe_head(p, list, n_z, s);
    }
  }

  /* Region heads hang off an origin with a free slot — regions holding an
   * origin first — and feed their region's zone heads; each such region is then
   * filled. A region left without an origin slot hangs off a node with a
   * free slot in a region already filled (its one cross-region edge), and
   * is filled in turn, until every region is placed. */
  uint8_t *done = calloc((size_t)p->k * regions + 1, 1);
  if (!done) {
    free(heads);
    return -ENOMEM;
  }
  /* Region by region, each stripe in turn, so that every stripe gets an
   * origin slot before any stripe gets a second one. */
  for (uint32_t pass = 0; pass < 2; pass++) {
    for (uint32_t r = 0; r < regions; r++) {
      bool has_origin = false;
      for (uint32_t i = 0; i < p->origin_count; i++)
        has_origin |= sch_members_node(p->m, p->origins[i])->region == r;
      if (has_origin != (pass == 0)) continue;
      for (uint32_t s = 0; s < p->k; s++) {
        int32_t origin = pick_origin(p, r);
        if (origin >= 0 && place_region(p, s, r, zstart, heads, origin)) done[s * regions + r] = 1;
      }
    }
  }
  /* The regions left without an origin slot hang their heads off the
   * placed region heads (spare search) before any region is filled, so
   * that they sit near the root, not under the last leaf of a full region;
   * then every region is filled. */
  for (bool progress = true; progress;) {
    progress = false;
    for (uint32_t s = 0; s < p->k; s++)
      for (uint32_t r = 0; r < regions; r++) {
        if (done[s * regions + r] || !place_region(p, s, r, zstart, heads, SCH_NONE)) continue;
        done[s * regions + r] = 1;
        progress = true;
      }
  }
  for (uint32_t s = 0; s < p->k; s++)
    for (uint32_t r = 0; r < regions; r++)
      if (done[s * regions + r]) fill_region(p, s, r, zstart, zl, heads, L);
  free(done);
  free(heads);
  return 0;
}

/* With the origin chain honoured the forwarding origins may have too few
 * slots left for every region (the trees then hang regions off nodes); if
 * that leaves anyone unplaced the plan is built again without it. */
static int build_chain(sch_plan_t *p, int (*how)(sch_plan_t *)) {
  p->chain_on = p->chain_n > 1;
  int rc = how(p);
  if (rc || !p->chain_on) return rc;
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  if (st.unplaced == 0) return 0;
  p->chain_on = false;
  return how(p);
}

/* What step 5 compares: fewer unplaced, then the busiest non-origin
 * uploader's children, then the depth. */
typedef struct {
  uint32_t unplaced, used_max, depth;
} plan_score_t;

static plan_score_t score(const sch_plan_t *p) {
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  plan_score_t sc = {st.unplaced, 0, st.depth_max};
  uint32_t count = sch_members_count(p->m);
  for (uint32_t x = 0; x < count; x++)
    if (p->in_plan[x] && !sch_members_node(p->m, x)->origin)
      sc.used_max = FD_MAX(sc.used_max, p->used[x]);
  return sc;
}

static bool better(plan_score_t a, plan_score_t b) {
  if (a.unplaced != b.unplaced) return a.unplaced < b.unplaced;
  if (a.used_max != b.used_max) return a.used_max < b.used_max;
  return a.depth < b.depth;
}

/* Step 5 applies: no region has as many plannable nodes as there are
 * stripes (read from the members: it decides which builds run). */
static bool regions_small(const sch_plan_t *p) {
  uint32_t count = sch_members_count(p->m);
  uint32_t n[SCH_REGIONS_MAX] = {0};
  for (uint32_t x = 0; x < count; x++) {
    const sch_node_t *nx = sch_members_node(p->m, x);
    if (plannable(nx) && !nx->origin && ++n[nx->region] >= p->k) return false;
  }
  return true;
}

/* Small fleets try the flat plan first and keep the hierarchy's unless the
 * flat one is better, so a tie (the usual case) costs two builds. */
int sch_plan_build(sch_plan_t *p) {
  if (!regions_small(p)) return build_chain(p, build);
  int rc = build_chain(p, build_flat);
  if (rc) return rc;
  plan_score_t flat = score(p);
  rc = build_chain(p, build);
  if (rc || !better(flat, score(p))) return rc;
  return build_chain(p, build_flat); /* the flat plan again */
}
