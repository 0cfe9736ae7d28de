/*
 * nd_shared.h — the table of versions engine 0 shares with the serving
 * engines (prefix nd_shared_): lock-free, one writer (engine 0), many
 * readers. nd_shared.c says what it guarantees. Plain data over storage's
 * manifests; the bottom of node/.
 */
#ifndef ND_SHARED_H
#define ND_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

typedef struct nd_shared nd_shared_t;
typedef struct nd_shared_ver nd_shared_ver_t;

nd_shared_t *nd_shared_create(void);
void nd_shared_destroy(nd_shared_t *t); /* no reader left */
/* engine 0: a slot for the version of this encoded manifest (copied);
 * 0, -ENOSPC (every slot in use), or a decode error */
int nd_shared_publish(nd_shared_t *t, const uint8_t *menc, size_t menc_len, nd_shared_ver_t **out);
bool nd_shared_set(nd_shared_ver_t *s, uint32_t index); /* true: newly set */
bool nd_shared_complete(nd_shared_ver_t *s);            /* true: newly complete */
void nd_shared_retire(nd_shared_ver_t *s);
uint32_t nd_shared_reap(nd_shared_t *t); /* frees unread retired slots; returns those left */
/* serving engines */
nd_shared_ver_t *nd_shared_acquire(nd_shared_t *t, const char *name, uint64_t version);
void nd_shared_release(nd_shared_ver_t *s);
bool nd_shared_retired(const nd_shared_ver_t *s);
bool nd_shared_is_complete(const nd_shared_ver_t *s);
bool nd_shared_has(const nd_shared_ver_t *s, uint32_t index);
const st_manifest_t *nd_shared_manifest(const nd_shared_ver_t *s);
const uint8_t *nd_shared_menc(const nd_shared_ver_t *s, size_t *len);
const uint8_t *nd_shared_digest(const nd_shared_ver_t *s);

#endif /* ND_SHARED_H */
