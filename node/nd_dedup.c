/* nd_dedup.c — role origin: where writers' changes went, by their
 * (client_id, client_seq) (nd_write_int.h, nd_dedup_t). */
#include <stdlib.h>

#include "nd_origin_int.h"

#define SLOTS (2u * ND_DEDUP_GEN_MAX) /* load at most one half */

static uint32_t slot_of(uint64_t id, uint64_t seq) {
  uint64_t h = (id ^ (seq * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
  return (uint32_t)(h >> 32) & (SLOTS - 1);
}

static const nd_dedup_ent_t *find(const nd_dedup_ent_t *t, uint64_t id, uint64_t seq) {
  if (!t) return NULL;
  for (uint32_t i = slot_of(id, seq);; i = (i + 1) & (SLOTS - 1)) {
    if (!t[i].client_id) return NULL;
    if (t[i].client_id == id && t[i].client_seq == seq) return &t[i];
  }
}

void nd_dedup_put(nd_dedup_t *d, uint64_t client_id, uint64_t client_seq, uint64_t version,
                  uint64_t index, uint64_t offset) {
  if (!client_id) return;
  if (d->n[d->cur] == ND_DEDUP_GEN_MAX) { /* the newer is full: the older goes */
    d->cur ^= 1;
    free(d->t[d->cur]);
    d->t[d->cur] = NULL;
    d->n[d->cur] = 0;
  }
  nd_dedup_ent_t *t = d->t[d->cur];
  if (!t && !(t = d->t[d->cur] = calloc(SLOTS, sizeof(*t)))) return; /* recognised no more */
  uint32_t i = slot_of(client_id, client_seq);
  while (t[i].client_id && !(t[i].client_id == client_id && t[i].client_seq == client_seq))
    i = (i + 1) & (SLOTS - 1);
  if (!t[i].client_id) d->n[d->cur]++;
  t[i] = (nd_dedup_ent_t){client_id, client_seq, version, index, offset};
}

const nd_dedup_ent_t *nd_dedup_get(const nd_dedup_t *d, uint64_t client_id, uint64_t client_seq) {
  if (!client_id) return NULL;
  const nd_dedup_ent_t *e = find(d->t[d->cur], client_id, client_seq);
  return e ? e : find(d->t[d->cur ^ 1], client_id, client_seq);
}

void nd_dedup_free(nd_dedup_t *d) {
  free(d->t[0]);
  free(d->t[1]);
  *d = (nd_dedup_t){0};
}
