/* strag.c — stragglers: each node's download rate, measured from the
 * cumulative byte counter its heartbeats carry, and the judgement of which
 * nodes fetching a version are too slow to feed anyone.
 *
 * Rates: each node keeps its last SCH_STRAG_SAMPLES (time, rx bytes)
 * samples, at least SCH_STRAG_SAMPLE_MS apart (a heartbeat sooner than that
 * replaces the newest), so that whatever the heartbeat interval the samples
 * span the window. A node's rate is the bytes between its newest sample and
 * the newest one at least SCH_STRAG_WINDOW_MS older (or the oldest, if it
 * spans at least half the window), over that time. A counter that goes
 * backwards (the node restarted) starts the node's samples afresh.
 *
 * Judgement, per version, over the nodes fetching it (the caller lists them
 * with the bytes each still lacks): a node is below the bar when its rate is
 * under SCH_STRAG_SLOW_PCT % of both the median rate of its peers (those of
 * the nodes that are not slow and received something in the window) and
 * its supply — what its parents deliver: for each stripe, a fetching
 * parent's own rate / k (it forwards what it receives), the median / k for
 * an origin or a parent that holds the version, nothing for a stripe with no
 * parent. The supply keeps a node from being blamed for a slow parent: the
 * children of a straggler are below the median in one stripe of k, never
 * below half of it. A node below the bar for SCH_STRAG_SLOW_MS, with at
 * least that long's worth of work left at the median rate, is judged slow;
 * a slow node at or above SCH_STRAG_RECOVER_PCT % of the median for
 * SCH_STRAG_RECOVER_MS is judged recovered. Any interruption (back above
 * the bar, below the recovery bar, no rate, not fetching) restarts the
 * count, so a blip shorter than SCH_STRAG_SLOW_MS changes nothing. With
 * fewer than SCH_STRAG_PEERS_MIN peers there is no median worth the name and
 * nobody is judged (so the stragglers left at the end of a version are not
 * judged recovered against each other).
 *
 * The slow mark itself lives in the node table (sch_node_t.slow): this file
 * only measures and says who changed; sched.c acts on it. Deterministic:
 * time comes from the caller. Memory: one table of FD_NODES_MAX rows,
 * allocated at create. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "scheduler.h"

typedef struct strag_node {
  uint64_t t_ms[SCH_STRAG_SAMPLES];
  uint64_t rx[SCH_STRAG_SAMPLES];
  uint32_t newest, count; /* ring: newest index, samples held */
  bool below, above;      /* counting time below the bar / above the recovery bar */
  uint64_t since_ms;      /* since when (either) */
  uint64_t defer_until_ms; /* not judged slow before then (sch_strag_defer) */
} strag_node_t;

struct sch_strag {
  strag_node_t *node; /* FD_NODES_MAX */
  int32_t *idx;       /* per slot: its index in the list being judged, or -1 */
  uint64_t *rate;     /* per list index: its rate (UINT64_MAX: none) */
  uint64_t *sorted;   /* the rates, for the median */
};

#define NO_RATE UINT64_MAX

sch_strag_t *sch_strag_create(void) {
  sch_strag_t *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->node = calloc(FD_NODES_MAX, sizeof(*t->node));
  t->idx = malloc(FD_NODES_MAX * sizeof(*t->idx));
  t->rate = malloc(FD_NODES_MAX * sizeof(*t->rate));
  t->sorted = malloc(FD_NODES_MAX * sizeof(*t->sorted));
  if (!t->node || !t->idx || !t->rate || !t->sorted) {
    sch_strag_destroy(t);
    return NULL;
  }
  memset(t->idx, 0xff, FD_NODES_MAX * sizeof(*t->idx)); /* -1 */
  return t;
}

void sch_strag_destroy(sch_strag_t *t) {
  if (!t) return;
  free(t->node);
  free(t->idx);
  free(t->rate);
  free(t->sorted);
  free(t);
}

void sch_strag_forget(sch_strag_t *t, uint32_t slot) {
  if (slot < FD_NODES_MAX) memset(&t->node[slot], 0, sizeof(t->node[slot]));
}

void sch_strag_sample(sch_strag_t *t, uint32_t slot, uint64_t now_ms, uint64_t rx_bytes) {
  if (slot >= FD_NODES_MAX) return;
  strag_node_t *n = &t->node[slot];
  if (n->count && (rx_bytes < n->rx[n->newest] || now_ms < n->t_ms[n->newest]))
    sch_strag_forget(t, slot); /* the node restarted (or the clock went back) */
  uint32_t prev = (n->newest + SCH_STRAG_SAMPLES - 1) % SCH_STRAG_SAMPLES;
  if (n->count < 2 || now_ms - n->t_ms[prev] >= SCH_STRAG_SAMPLE_MS) {
    if (n->count) n->newest = (n->newest + 1) % SCH_STRAG_SAMPLES;
    if (n->count < SCH_STRAG_SAMPLES) n->count++;
  }
  n->t_ms[n->newest] = now_ms;
  n->rx[n->newest] = rx_bytes;
}

void sch_strag_defer(sch_strag_t *t, uint32_t slot, uint64_t until_ms) {
  FD_ASSERT(slot < FD_NODES_MAX);
  t->node[slot].defer_until_ms = until_ms;
  t->node[slot].below = false;
}

bool sch_strag_rate(const sch_strag_t *t, uint32_t slot, uint64_t now_ms, uint64_t *bps) {
  if (slot >= FD_NODES_MAX) return false;
  const strag_node_t *n = &t->node[slot];
  if (n->count < 2) return false;
  uint64_t t1 = n->t_ms[n->newest];
  if (now_ms > t1 + 2ull * SCH_STRAG_WINDOW_MS) return false; /* it stopped reporting */
  uint32_t j = n->newest;
  for (uint32_t i = 1; i < n->count; i++) {
    j = (n->newest + SCH_STRAG_SAMPLES - i) % SCH_STRAG_SAMPLES;
    if (t1 - n->t_ms[j] >= SCH_STRAG_WINDOW_MS) break;
  }
  uint64_t dt = t1 - n->t_ms[j];
  if (dt < SCH_STRAG_WINDOW_MS / 2) return false;
  *bps = (n->rx[n->newest] - n->rx[j]) * 8000ull / dt;
  return true;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* What slot's parents deliver in plan p (see the file's comment). */
static uint64_t supply(const sch_strag_t *t, const sch_members_t *m, const sch_plan_t *p,
                       uint32_t slot, uint64_t median) {
  uint32_t k = sch_plan_stripes(p);
  uint64_t sum = 0;
  for (uint32_t s = 0; s < k; s++) {
    int32_t par = sch_plan_parent(p, slot, s);
    if (par == SCH_NONE) continue; /* no parent: not its fault */
    int32_t i = par >= 0 ? t->idx[par] : -1;
    bool fetching = i >= 0 && t->rate[i] != NO_RATE && !sch_members_node(m, (uint32_t)par)->origin;
    sum += (fetching ? t->rate[i] : median) / k;
  }
  return sum;
}

uint32_t sch_strag_judge(sch_strag_t *t, const sch_members_t *m, const sch_plan_t *p,
                         const uint32_t *fetching, const uint64_t *remaining_bytes, uint32_t n,
                         uint64_t now_ms, sch_strag_verdict_t *out, uint32_t max) {
  FD_ASSERT(n <= FD_NODES_MAX);
  uint32_t nr = 0;
  for (uint32_t i = 0; i < n; i++) {
    FD_ASSERT(fetching[i] < FD_NODES_MAX);
    t->idx[fetching[i]] = (int32_t)i;
    uint64_t r;
    t->rate[i] = sch_strag_rate(t, fetching[i], now_ms, &r) ? r : NO_RATE;
    /* The peers: nodes not slow, receiving (not waiting for a commit or a
     * parent) — otherwise, once the healthy nodes are done, the stragglers
     * left would be each other's measure. */
    const sch_node_t *node = sch_members_node(m, fetching[i]);
    if (t->rate[i] != NO_RATE && t->rate[i] > 0 && node && !node->slow)
      t->sorted[nr++] = t->rate[i];
  }
  uint64_t median = 0;
  if (nr >= SCH_STRAG_PEERS_MIN) {
    qsort(t->sorted, nr, sizeof(*t->sorted), cmp_u64);
    median = t->sorted[nr / 2];
  }
  uint32_t w = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t x = fetching[i];
    strag_node_t *sn = &t->node[x];
    const sch_node_t *node = sch_members_node(m, x);
    if (nr < SCH_STRAG_PEERS_MIN || t->rate[i] == NO_RATE || !node) {
      sn->below = sn->above = false; /* nothing to judge by: the count starts again */
      continue;
    }
    uint64_t rate = t->rate[i], sup = supply(t, m, p, x, median);
    bool judged = false;
    if (!node->slow) {
      uint64_t bar = (median < sup ? median : sup) * SCH_STRAG_SLOW_PCT / 100;
      /* Left alone when what it lacks takes less than SCH_STRAG_SLOW_MS at
       * the median: moving its children would not pay. */
      bool work_left = remaining_bytes[i] * 8000ull >= median * SCH_STRAG_SLOW_MS;
      sn->above = false;
      if (rate < bar && work_left && now_ms >= sn->defer_until_ms) {
        if (!sn->below) sn->below = true, sn->since_ms = now_ms;
        judged = now_ms - sn->since_ms >= SCH_STRAG_SLOW_MS;
      } else {
        sn->below = false;
      }
    } else {
      sn->below = false;
      if (rate >= median * SCH_STRAG_RECOVER_PCT / 100) {
        if (!sn->above) sn->above = true, sn->since_ms = now_ms;
        judged = now_ms - sn->since_ms >= SCH_STRAG_RECOVER_MS;
      } else {
        sn->above = false;
      }
    }
    if (!judged || w == max) continue; /* past max: still counting, judged next call */
    out[w++] = (sch_strag_verdict_t){.slot = x,
                                     .slow = !node->slow,
                                     .rate_bps = rate,
                                     .median_bps = median,
                                     .supply_bps = sup,
                                     .peers = nr,
                                     .for_ms = now_ms - sn->since_ms};
    sn->below = sn->above = false; /* judged: the other way starts from nothing */
  }
  for (uint32_t i = 0; i < n; i++)
    t->idx[fetching[i]] = -1;
  return w;
}
