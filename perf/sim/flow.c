/* flow.c — the flow-level fan-out model (see flow.h). Events are chunk
 * completions on edges, kept in an indexed binary heap keyed by finish time;
 * a rate change re-keys the edges it touches. */
#include "flow.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"

typedef struct edge {
  uint32_t parent, child, stripe;
  bool active;
  double left;   /* bytes of the current chunk still to send */
  double rate;   /* bytes per second while active */
  double last;   /* time left was last settled */
  double finish; /* heap key */
  int32_t hpos;  /* position in the heap, -1 when not in it */
  int32_t next_out, prev_out; /* the parent's out-edges */
  int32_t next_pair, prev_pair; /* edges of the same link pair */
  int32_t pair;                 /* -1 intra-zone, else the pair index */
  link_class_t cls;
} edge_t;

struct flow {
  flow_params_t prm;
  uint16_t *region, *zone;
  bool *origin, *alive, *done;
  uint32_t *have;    /* nodes * stripes: chunks of the stripe held (a prefix) */
  uint32_t *in_edge; /* nodes * stripes: edge id + 1, 0 none */
  int32_t *out_first;
  uint32_t *n_up, *n_down;
  uint32_t stripe_chunks[64];
  /* link pairs: regions^2 cross-region pairs, then zones^2 cross-zone pairs */
  uint32_t npairs;
  int32_t *pair_first;
  uint32_t *pair_active;
  edge_t *edges;
  uint32_t edge_cap, edge_count;
  int32_t free_edge;
  int32_t *heap;
  uint32_t heap_len;
  double now, finish;
  bool started; /* before flow_start, edges are only linked */
  uint32_t incomplete;
  double bytes[3];
  uint64_t events;
};

/* ---- heap ---- */

static void heap_swap(flow_t *f, uint32_t a, uint32_t b) {
  int32_t ea = f->heap[a], eb = f->heap[b];
  f->heap[a] = eb, f->heap[b] = ea;
  f->edges[eb].hpos = (int32_t)a, f->edges[ea].hpos = (int32_t)b;
}

static void heap_up(flow_t *f, uint32_t i) {
  while (i > 0) {
    uint32_t up = (i - 1) / 2;
    if (f->edges[f->heap[up]].finish <= f->edges[f->heap[i]].finish) break;
    heap_swap(f, i, up);
    i = up;
  }
}

static void heap_down(flow_t *f, uint32_t i) {
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < f->heap_len && f->edges[f->heap[l]].finish < f->edges[f->heap[m]].finish) m = l;
    if (r < f->heap_len && f->edges[f->heap[r]].finish < f->edges[f->heap[m]].finish) m = r;
    if (m == i) return;
    heap_swap(f, i, m);
    i = m;
  }
}

static void heap_set(flow_t *f, uint32_t e) {
  edge_t *ed = &f->edges[e];
  if (ed->hpos < 0) {
    ed->hpos = (int32_t)f->heap_len;
    f->heap[f->heap_len++] = (int32_t)e;
  }
  heap_up(f, (uint32_t)ed->hpos);
  heap_down(f, (uint32_t)ed->hpos);
}

static void heap_remove(flow_t *f, uint32_t e) {
  int32_t at = f->edges[e].hpos;
  if (at < 0) return;
  uint32_t last = --f->heap_len;
  if ((uint32_t)at != last) {
    heap_swap(f, (uint32_t)at, last);
    f->edges[e].hpos = -1;
    heap_up(f, (uint32_t)at);
    heap_down(f, (uint32_t)at);
  }
  f->edges[e].hpos = -1;
}

/* ---- model ---- */

static uint64_t chunk_size(const flow_t *f, uint32_t s, uint32_t j) {
  uint64_t g = s + (uint64_t)j * f->prm.stripes;
  uint64_t off = g * f->prm.chunk_bytes;
  uint64_t left = f->prm.size_bytes - off;
  return left < f->prm.chunk_bytes ? left : f->prm.chunk_bytes;
}

static double pair_cap(const flow_t *f, const edge_t *e) {
  return e->cls == LINK_CROSS_REGION ? f->prm.cross_region_Bps : f->prm.cross_zone_Bps;
}

static double share(const flow_t *f, const edge_t *e) {
  double r = f->prm.nic_Bps / f->n_up[e->parent];
  double d = f->prm.nic_Bps / f->n_down[e->child];
  if (d < r) r = d;
  if (e->pair >= 0) {
    double p = pair_cap(f, e) / f->pair_active[e->pair];
    if (p < r) r = p;
  }
  return r;
}

static void rekey(flow_t *f, uint32_t e) {
  edge_t *ed = &f->edges[e];
  ed->left -= ed->rate * (f->now - ed->last);
  if (ed->left < 0) ed->left = 0;
  ed->last = f->now;
  ed->rate = share(f, ed);
  ed->finish = f->now + ed->left / ed->rate;
  heap_set(f, e);
}

/* Re-shares every active edge touching e's parent uplink, child downlink and
 * link pair. */
static void reshare_around(flow_t *f, const edge_t *e) {
  uint32_t k = f->prm.stripes;
  for (int32_t x = f->out_first[e->parent]; x >= 0; x = f->edges[x].next_out)
    if (f->edges[x].active) rekey(f, (uint32_t)x);
  for (uint32_t s = 0; s < k; s++) {
    uint32_t in = f->in_edge[(size_t)e->child * k + s];
    if (in && f->edges[in - 1].active) rekey(f, in - 1);
  }
  if (e->pair >= 0)
    for (int32_t x = f->pair_first[e->pair]; x >= 0; x = f->edges[x].next_pair)
      if (f->edges[x].active) rekey(f, (uint32_t)x);
}

static bool can_send(const flow_t *f, const edge_t *e) {
  size_t k = f->prm.stripes;
  uint32_t hc = f->have[e->child * k + e->stripe];
  return f->alive[e->parent] && f->alive[e->child] && hc < f->stripe_chunks[e->stripe] &&
         f->have[e->parent * k + e->stripe] > hc;
}

static void activate(flow_t *f, uint32_t e) {
  edge_t *ed = &f->edges[e];
  if (!f->started || ed->active || !can_send(f, ed)) return;
  ed->active = true;
  f->n_up[ed->parent]++;
  f->n_down[ed->child]++;
  if (ed->pair >= 0) f->pair_active[ed->pair]++;
  ed->left = (double)chunk_size(f, ed->stripe, f->have[(size_t)ed->child * f->prm.stripes + ed->stripe]);
  ed->rate = 0;
  ed->last = f->now;
  reshare_around(f, ed);
}

/* lost: bytes of a partial chunk are counted as sent, then dropped. */
static void deactivate(flow_t *f, uint32_t e, bool lost) {
  edge_t *ed = &f->edges[e];
  if (!ed->active) return;
  if (lost) {
    double remaining = ed->left - ed->rate * (f->now - ed->last);
    uint64_t size = chunk_size(f, ed->stripe, f->have[(size_t)ed->child * f->prm.stripes + ed->stripe]);
    f->bytes[ed->cls] += (double)size - (remaining > 0 ? remaining : 0);
  }
  ed->active = false;
  heap_remove(f, e);
  f->n_up[ed->parent]--;
  f->n_down[ed->child]--;
  if (ed->pair >= 0) f->pair_active[ed->pair]--;
  reshare_around(f, ed);
}

flow_t *flow_create(const flow_params_t *prm, const uint16_t *region, const uint16_t *zone,
                    const bool *is_origin) {
  if (prm->nodes == 0 || prm->stripes == 0 || prm->stripes > 64 || prm->chunk_bytes == 0 ||
      prm->size_bytes == 0 || prm->nic_Bps <= 0)
    return NULL;
  flow_t *f = calloc(1, sizeof(*f));
  if (!f) return NULL;
  f->prm = *prm;
  size_t n = prm->nodes, k = prm->stripes;
  f->region = malloc(n * sizeof(uint16_t));
  f->zone = malloc(n * sizeof(uint16_t));
  f->origin = malloc(n);
  f->alive = malloc(n);
  f->done = calloc(n, 1);
  f->have = calloc(n * k, sizeof(uint32_t));
  f->in_edge = calloc(n * k, sizeof(uint32_t));
  f->out_first = malloc(n * sizeof(int32_t));
  f->n_up = calloc(n, sizeof(uint32_t));
  f->n_down = calloc(n, sizeof(uint32_t));
  f->npairs = prm->regions * prm->regions + prm->zones * prm->zones;
  f->pair_first = malloc(f->npairs * sizeof(int32_t));
  f->pair_active = calloc(f->npairs, sizeof(uint32_t));
  f->edge_cap = (uint32_t)(n * k * 4 + 64);
  f->edges = calloc(f->edge_cap, sizeof(edge_t));
  f->heap = malloc(f->edge_cap * sizeof(int32_t));
  if (!f->region || !f->zone || !f->origin || !f->alive || !f->done || !f->have || !f->in_edge ||
      !f->out_first || !f->n_up || !f->n_down || !f->pair_first || !f->pair_active || !f->edges ||
      !f->heap) {
    flow_destroy(f);
    return NULL;
  }
  memcpy(f->region, region, n * sizeof(uint16_t));
  memcpy(f->zone, zone, n * sizeof(uint16_t));
  memcpy(f->origin, is_origin, n);
  memset(f->alive, 1, n);
  for (size_t i = 0; i < n; i++) f->out_first[i] = -1;
  for (uint32_t i = 0; i < f->npairs; i++) f->pair_first[i] = -1;
  f->free_edge = -1;
  uint64_t chunks = (prm->size_bytes + prm->chunk_bytes - 1) / prm->chunk_bytes;
  for (uint32_t s = 0; s < k; s++)
    f->stripe_chunks[s] = (uint32_t)(chunks / k + (s < chunks % k ? 1 : 0));
  for (size_t i = 0; i < n; i++) {
    if (is_origin[i]) {
      for (uint32_t s = 0; s < k; s++) f->have[i * k + s] = f->stripe_chunks[s];
      f->done[i] = 1;
    } else {
      f->incomplete++;
    }
  }
  return f;
}

void flow_destroy(flow_t *f) {
  if (!f) return;
  free(f->region);
  free(f->zone);
  free(f->origin);
  free(f->alive);
  free(f->done);
  free(f->have);
  free(f->in_edge);
  free(f->out_first);
  free(f->n_up);
  free(f->n_down);
  free(f->pair_first);
  free(f->pair_active);
  free(f->edges);
  free(f->heap);
  free(f);
}

static void edge_unlink(flow_t *f, uint32_t e, bool lost) {
  edge_t *ed = &f->edges[e];
  deactivate(f, e, lost);
  if (ed->prev_out >= 0) f->edges[ed->prev_out].next_out = ed->next_out;
  else f->out_first[ed->parent] = ed->next_out;
  if (ed->next_out >= 0) f->edges[ed->next_out].prev_out = ed->prev_out;
  if (ed->pair >= 0) {
    if (ed->prev_pair >= 0) f->edges[ed->prev_pair].next_pair = ed->next_pair;
    else f->pair_first[ed->pair] = ed->next_pair;
    if (ed->next_pair >= 0) f->edges[ed->next_pair].prev_pair = ed->prev_pair;
  }
  f->in_edge[(size_t)ed->child * f->prm.stripes + ed->stripe] = 0;
  ed->next_out = f->free_edge;
  f->free_edge = (int32_t)e;
}

void flow_set_parent(flow_t *f, uint32_t child, uint32_t s, int32_t parent) {
  size_t k = f->prm.stripes;
  uint32_t in = f->in_edge[child * k + s];
  if (in && (int32_t)f->edges[in - 1].parent == parent) return;
  if (in) edge_unlink(f, in - 1, true);
  if (parent < 0 || f->origin[child]) return;
  uint32_t e;
  if (f->free_edge >= 0) {
    e = (uint32_t)f->free_edge;
    f->free_edge = f->edges[e].next_out;
  } else {
    FD_ASSERT(f->edge_count < f->edge_cap);
    e = f->edge_count++;
  }
  edge_t *ed = &f->edges[e];
  memset(ed, 0, sizeof(*ed));
  ed->parent = (uint32_t)parent;
  ed->child = child;
  ed->stripe = s;
  ed->hpos = -1;
  ed->prev_out = -1;
  ed->next_out = f->out_first[parent];
  if (ed->next_out >= 0) f->edges[ed->next_out].prev_out = (int32_t)e;
  f->out_first[parent] = (int32_t)e;
  uint16_t rp = f->region[parent], rc = f->region[child];
  uint16_t zp = f->zone[parent], zc = f->zone[child];
  ed->pair = -1;
  ed->cls = LINK_INTRA_ZONE;
  if (rp != rc) {
    ed->cls = LINK_CROSS_REGION;
    ed->pair = (int32_t)(rp * f->prm.regions + rc);
  } else if (zp != zc) {
    ed->cls = LINK_CROSS_ZONE;
    ed->pair = (int32_t)(f->prm.regions * f->prm.regions + zp * f->prm.zones + zc);
  }
  ed->prev_pair = -1;
  ed->next_pair = -1;
  if (ed->pair >= 0) {
    ed->next_pair = f->pair_first[ed->pair];
    if (ed->next_pair >= 0) f->edges[ed->next_pair].prev_pair = (int32_t)e;
    f->pair_first[ed->pair] = (int32_t)e;
  }
  f->in_edge[child * k + s] = e + 1;
  activate(f, e);
}

void flow_kill(flow_t *f, uint32_t node) {
  if (!f->alive[node]) return;
  size_t k = f->prm.stripes;
  for (uint32_t s = 0; s < k; s++) {
    uint32_t in = f->in_edge[node * k + s];
    if (in) edge_unlink(f, in - 1, true);
  }
  /* Out-edges stay (the children do not know yet) but go quiet. */
  for (int32_t x = f->out_first[node]; x >= 0; x = f->edges[x].next_out) deactivate(f, (uint32_t)x, true);
  f->alive[node] = 0;
  if (!f->done[node]) f->incomplete--;
}

static void complete_chunk(flow_t *f, uint32_t e) {
  edge_t *ed = &f->edges[e];
  size_t k = f->prm.stripes;
  uint32_t c = ed->child, s = ed->stripe;
  uint32_t *hc = &f->have[c * k + s];
  f->bytes[ed->cls] += (double)chunk_size(f, s, *hc);
  (*hc)++;
  f->events++;
  if (*hc == f->stripe_chunks[s]) {
    bool all = true;
    for (uint32_t t = 0; t < k && all; t++) all = f->have[c * k + t] == f->stripe_chunks[t];
    if (all && !f->done[c]) {
      f->done[c] = 1;
      f->incomplete--;
      if (f->now > f->finish) f->finish = f->now;
    }
  }
  if (can_send(f, ed)) { /* the next chunk, at the same share */
    ed->left = (double)chunk_size(f, s, *hc);
    ed->last = f->now;
    ed->finish = f->now + ed->left / ed->rate;
    heap_set(f, e);
  } else {
    deactivate(f, e, false);
  }
  for (int32_t x = f->out_first[c]; x >= 0; x = f->edges[x].next_out)
    if (f->edges[x].stripe == s && !f->edges[x].active) activate(f, (uint32_t)x);
}

void flow_start(flow_t *f) {
  if (f->started) return;
  f->started = true;
  /* Count every edge that can send, then share once: O(edges), not
   * O(edges x fan-out) as activating them one by one would be. */
  for (uint32_t e = 0; e < f->edge_count; e++) {
    edge_t *ed = &f->edges[e];
    if (ed->child == ed->parent || ed->active || !can_send(f, ed)) continue;
    if (f->in_edge[(size_t)ed->child * f->prm.stripes + ed->stripe] != e + 1) continue; /* freed */
    ed->active = true;
    f->n_up[ed->parent]++;
    f->n_down[ed->child]++;
    if (ed->pair >= 0) f->pair_active[ed->pair]++;
    ed->left = (double)chunk_size(f, ed->stripe, f->have[(size_t)ed->child * f->prm.stripes + ed->stripe]);
    ed->rate = 0;
    ed->last = f->now;
  }
  for (uint32_t e = 0; e < f->edge_count; e++)
    if (f->edges[e].active) rekey(f, e);
}

bool flow_run(flow_t *f, double until) {
  flow_start(f);
  while (f->incomplete > 0 && f->heap_len > 0) {
    uint32_t e = (uint32_t)f->heap[0];
    double t = f->edges[e].finish;
    if (t > until) {
      f->now = until;
      return false;
    }
    f->now = t;
    complete_chunk(f, e);
  }
  if (f->incomplete > 0 && until > f->now && isfinite(until)) f->now = until;
  return f->incomplete == 0;
}

double flow_now(const flow_t *f) { return f->now; }
double flow_finish_time(const flow_t *f) { return f->finish; }
uint32_t flow_incomplete(const flow_t *f) { return f->incomplete; }
double flow_bytes(const flow_t *f, link_class_t c) { return f->bytes[c]; }
uint64_t flow_events(const flow_t *f) { return f->events; }
