/*
 * nd_shared.c — the versions engine 0 shares with the serving engines.
 *
 * Owns: a fixed table of ND_SHARED_VERS_MAX slots, each describing one
 * version engine 0 has open: its name, number and digest, a private copy of
 * the signed manifest (encoded and decoded), whether it is complete, and a
 * bitmap of the chunks durable on disk.
 *
 * Guarantees: only engine 0 writes a slot. A slot's description is
 * immutable while it is PUBLISHED; the bitmap's bits only go from 0 to 1 and
 * each is set with a release store after storage reported the chunk durable
 * (its data fdatasync'd), so a serving engine that reads a bit with an
 * acquire load and then reads the chunk from the file reads durable, verified
 * bytes. A reader announces itself (readers++) and then checks the state, and
 * engine 0 retires a slot (state RETIRED) and frees it only once it sees no
 * reader, both with sequentially consistent atomics: either the reader sees
 * RETIRED and backs off, or engine 0 sees the reader and waits. So a slot in
 * use is never freed, nothing takes a lock, and nothing here waits.
 *
 * Never: allocates outside nd_shared_publish (once per version), or blocks.
 *
 * Memory: nd_shared_create / nd_shared_destroy (engine 0, after every
 * serving engine has stopped). Pointers from nd_shared_manifest /
 * nd_shared_menc stay valid until the reader's nd_shared_release.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "nd_shared.h"

enum { SLOT_FREE = 0, SLOT_FILLING, SLOT_PUBLISHED, SLOT_RETIRED };

struct nd_shared_ver {
  _Atomic uint32_t state;
  _Atomic uint32_t readers;
  /* immutable while PUBLISHED (written by engine 0 in FREE/FILLING only) */
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint8_t digest[FD_SHA256_LEN];
  st_manifest_t *m;
  uint8_t *menc;
  size_t menc_len;
  uint32_t words;
  /* changing, 0 -> 1 only */
  _Atomic uint64_t *bits;
  _Atomic bool complete;
};

struct nd_shared {
  nd_shared_ver_t slots[ND_SHARED_VERS_MAX];
};

nd_shared_t *nd_shared_create(void) { return calloc(1, sizeof(nd_shared_t)); }

static void slot_free(nd_shared_ver_t *s) {
  st_manifest_free(s->m);
  free(s->menc);
  free((void *)s->bits);
  s->m = NULL;
  s->menc = NULL;
  s->bits = NULL;
  atomic_store(&s->state, SLOT_FREE);
}

void nd_shared_destroy(nd_shared_t *t) {
  if (!t) return;
  for (uint32_t i = 0; i < ND_SHARED_VERS_MAX; i++) {
    nd_shared_ver_t *s = &t->slots[i];
    FD_ASSERT(atomic_load(&s->readers) == 0);
    if (atomic_load(&s->state) != SLOT_FREE) slot_free(s);
  }
  free(t);
}

/* ---- engine 0 ------------------------------------------------------------------ */

int nd_shared_publish(nd_shared_t *t, const uint8_t *menc, size_t menc_len,
                      nd_shared_ver_t **out) {
  nd_shared_ver_t *s = NULL;
  for (uint32_t i = 0; i < ND_SHARED_VERS_MAX && !s; i++)
    if (atomic_load(&t->slots[i].state) == SLOT_FREE) s = &t->slots[i];
  if (!s) return -ENOSPC;
  atomic_store(&s->state, SLOT_FILLING); /* a reader arriving now backs off */
  int rc = st_manifest_decode(menc, menc_len, &s->m);
  if (rc) goto out_free;
  rc = -ENOMEM;
  s->words = (s->m->chunk_count + 63) / 64;
  s->bits = calloc(s->words ? s->words : 1, sizeof(*s->bits));
  s->menc = malloc(menc_len);
  if (!s->bits || !s->menc) goto out_free;
  memcpy(s->menc, menc, menc_len);
  s->menc_len = menc_len;
  snprintf(s->name, sizeof(s->name), "%s", s->m->name);
  s->version = s->m->version;
  st_manifest_digest(s->m, s->digest);
  atomic_store(&s->complete, false);
  atomic_store(&s->state, SLOT_PUBLISHED); /* seq_cst: releases the fields above */
  *out = s;
  return 0;
out_free:
  slot_free(s);
  return rc;
}

bool nd_shared_set(nd_shared_ver_t *s, uint32_t index) {
  FD_ASSERT(index < s->m->chunk_count);
  uint64_t bit = 1ull << (index % 64);
  if (atomic_load_explicit(&s->bits[index / 64], memory_order_relaxed) & bit) return false;
  atomic_fetch_or_explicit(&s->bits[index / 64], bit, memory_order_release);
  return true;
}

bool nd_shared_complete(nd_shared_ver_t *s) {
  if (atomic_load_explicit(&s->complete, memory_order_relaxed)) return false;
  atomic_store_explicit(&s->complete, true, memory_order_release);
  return true;
}

void nd_shared_retire(nd_shared_ver_t *s) {
  FD_ASSERT(atomic_load(&s->state) == SLOT_PUBLISHED);
  atomic_store(&s->state, SLOT_RETIRED);
}

uint32_t nd_shared_reap(nd_shared_t *t) {
  uint32_t left = 0;
  for (uint32_t i = 0; i < ND_SHARED_VERS_MAX; i++) {
    nd_shared_ver_t *s = &t->slots[i];
    if (atomic_load(&s->state) != SLOT_RETIRED) continue;
    if (atomic_load(&s->readers) == 0) slot_free(s);
    else left++;
  }
  return left;
}

/* ---- serving engines --------------------------------------------------------------- */

nd_shared_ver_t *nd_shared_acquire(nd_shared_t *t, const char *name, uint64_t version) {
  for (uint32_t i = 0; i < ND_SHARED_VERS_MAX; i++) {
    nd_shared_ver_t *s = &t->slots[i];
    if (atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_PUBLISHED) continue;
    atomic_fetch_add(&s->readers, 1);
    if (atomic_load(&s->state) == SLOT_PUBLISHED && s->version == version &&
        !strcmp(s->name, name))
      return s;
    atomic_fetch_sub(&s->readers, 1);
  }
  return NULL;
}

void nd_shared_release(nd_shared_ver_t *s) {
  uint32_t was = atomic_fetch_sub(&s->readers, 1);
  FD_ASSERT(was > 0);
}

bool nd_shared_retired(const nd_shared_ver_t *s) {
  return atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_PUBLISHED;
}

bool nd_shared_is_complete(const nd_shared_ver_t *s) {
  return atomic_load_explicit(&s->complete, memory_order_acquire);
}

bool nd_shared_has(const nd_shared_ver_t *s, uint32_t index) {
  if (index >= s->m->chunk_count) return false;
  if (atomic_load_explicit(&s->complete, memory_order_acquire)) return true;
  return atomic_load_explicit(&s->bits[index / 64], memory_order_acquire) >> (index % 64) & 1;
}

const st_manifest_t *nd_shared_manifest(const nd_shared_ver_t *s) { return s->m; }

const uint8_t *nd_shared_menc(const nd_shared_ver_t *s, size_t *len) {
  *len = s->menc_len;
  return s->menc;
}

const uint8_t *nd_shared_digest(const nd_shared_ver_t *s) { return s->digest; }
