/* registry.c — registered versions and which node holds what.
 *
 * Versions are kept in registration order in a fixed array of
 * SCH_VERSIONS_MAX entries; each owns a copy of its signed manifest (opaque
 * bytes, with its SHA-256 digest computed here) and the names of the origins
 * holding it. Holdings are volatile: each node slot has SCH_HOLDINGS_PER_NODE
 * entries (version id, chunks held) refreshed from its reports, so a restarted
 * scheduler learns them again from the nodes, as GFS relearns chunk
 * locations. Versions are persisted by db.c, not here. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_hash.h"
#include "scheduler.h"

typedef struct holding {
  uint64_t id; /* registry entry id, 0 when unused */
  uint64_t chunks;
} holding_t;

typedef struct entry {
  sch_version_t v;
  uint64_t id;
} entry_t;

struct sch_registry {
  uint32_t count;
  uint64_t next_id;
  entry_t *entries[SCH_VERSIONS_MAX];
  holding_t (*holdings)[SCH_HOLDINGS_PER_NODE]; /* FD_NODES_MAX rows */
};

sch_registry_t *sch_registry_create(void) {
  sch_registry_t *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->holdings = calloc(FD_NODES_MAX, sizeof(*r->holdings));
  if (!r->holdings) {
    free(r);
    return NULL;
  }
  r->next_id = 1;
  return r;
}

static void entry_free(entry_t *e) {
  if (!e) return;
  free(e->v.manifest);
  free(e);
}

void sch_registry_destroy(sch_registry_t *r) {
  if (!r) return;
  for (uint32_t i = 0; i < r->count; i++) entry_free(r->entries[i]);
  free(r->holdings);
  free(r);
}

static entry_t *find_entry(const sch_registry_t *r, const char *file, uint64_t version) {
  if (!file) return NULL;
  for (uint32_t i = 0; i < r->count; i++)
    if (r->entries[i]->v.version == version && strcmp(r->entries[i]->v.file, file) == 0)
      return r->entries[i];
  return NULL;
}

const sch_version_t *sch_registry_find(const sch_registry_t *r, const char *file,
                                       uint64_t version) {
  entry_t *e = find_entry(r, file, version);
  return e ? &e->v : NULL;
}

const sch_version_t *sch_registry_newest(const sch_registry_t *r, const char *file) {
  const sch_version_t *best = NULL;
  for (uint32_t i = 0; i < r->count; i++) {
    const sch_version_t *v = &r->entries[i]->v;
    if (strcmp(v->file, file) == 0 && (!best || v->version > best->version)) best = v;
  }
  return best;
}

static int name_ok(const char *s) {
  if (!s || !*s) return -EINVAL;
  return strlen(s) > FD_NAME_LEN_MAX ? -EMSGSIZE : 0;
}

int sch_registry_add(sch_registry_t *r, const sch_version_info_t *info) {
  if (!info) return -EINVAL;
  int rc = name_ok(info->file);
  if (rc) return rc;
  if (!FD_IS_POW2(info->chunk_size_bytes) || info->chunk_size_bytes < FD_CHUNK_SIZE_MIN ||
      info->chunk_size_bytes > FD_CHUNK_SIZE_MAX || !info->manifest || info->manifest_len == 0 ||
      info->origin_count > SCH_ORIGINS_MAX || (info->origin_count && !info->origins))
    return -EINVAL;
  if (info->manifest_len > SCH_MANIFEST_LEN_MAX) return -EMSGSIZE;
  if (info->size_bytes > FD_FILE_SIZE_MAX) return -ERANGE;
  for (uint32_t i = 0; i < info->origin_count; i++)
    if ((rc = name_ok(info->origins[i]))) return rc;
  if (find_entry(r, info->file, info->version)) return -EEXIST;
  const sch_version_t *newest = sch_registry_newest(r, info->file);
  if (newest && info->version <= newest->version) return -ERANGE;
  if (r->count == SCH_VERSIONS_MAX) return -ENOSPC;
  entry_t *e = calloc(1, sizeof(*e));
  if (!e) return -ENOMEM;
  e->v.manifest = malloc(info->manifest_len);
  if (!e->v.manifest) {
    free(e);
    return -ENOMEM;
  }
  memcpy(e->v.manifest, info->manifest, info->manifest_len);
  e->v.manifest_len = info->manifest_len;
  fd_sha256(info->manifest, info->manifest_len, e->v.manifest_digest);
  strcpy(e->v.file, info->file);
  e->v.version = info->version;
  e->v.size_bytes = info->size_bytes;
  e->v.chunk_size_bytes = info->chunk_size_bytes;
  e->v.chunk_count =
      (uint32_t)((info->size_bytes + info->chunk_size_bytes - 1) / info->chunk_size_bytes);
  e->v.origin_count = info->origin_count;
  for (uint32_t i = 0; i < info->origin_count; i++) strcpy(e->v.origins[i], info->origins[i]);
  e->id = r->next_id++;
  r->entries[r->count++] = e;
  e->v.pending = info->pending;
  return 0;
}

int sch_registry_add_origin(sch_registry_t *r, const char *file, uint64_t version,
                            const char *origin) {
  int rc = name_ok(origin);
  if (rc) return rc;
  entry_t *e = find_entry(r, file, version);
  if (!e) return -ENOENT;
  for (uint32_t i = 0; i < e->v.origin_count; i++)
    if (strcmp(e->v.origins[i], origin) == 0) return -EALREADY;
  if (e->v.origin_count == SCH_ORIGINS_MAX) return -ENOSPC;
  strcpy(e->v.origins[e->v.origin_count++], origin);
  return 0;
}

int sch_registry_commit(sch_registry_t *r, const char *file, uint64_t version,
                        const char *const *origins, uint32_t n) {
  entry_t *e = find_entry(r, file, version);
  if (!e) return -ENOENT;
  if (!e->v.pending) return -EALREADY;
  if (n > SCH_ORIGINS_MAX) return -EINVAL;
  for (uint32_t i = 0; i < n; i++) {
    int rc = name_ok(origins[i]);
    if (rc) return rc;
  }
  e->v.pending = false;
  if (n) { /* the origins that hold it, as the head found at the end */
    for (uint32_t i = 0; i < n; i++) strcpy(e->v.origins[i], origins[i]);
    e->v.origin_count = n;
  }
  return 0;
}

int sch_registry_retire(sch_registry_t *r, const char *file, uint64_t version) {
  for (uint32_t i = 0; i < r->count; i++) {
    entry_t *e = r->entries[i];
    if (e->v.version != version || strcmp(e->v.file, file) != 0) continue;
    for (uint32_t n = 0; n < FD_NODES_MAX; n++)
      for (uint32_t h = 0; h < SCH_HOLDINGS_PER_NODE; h++)
        if (r->holdings[n][h].id == e->id) r->holdings[n][h] = (holding_t){0, 0};
    entry_free(e);
    memmove(&r->entries[i], &r->entries[i + 1], (r->count - i - 1) * sizeof(entry_t *));
    r->count--;
    return 0;
  }
  return -ENOENT;
}

uint32_t sch_registry_count(const sch_registry_t *r) { return r->count; }

const sch_version_t *sch_registry_at(const sch_registry_t *r, uint32_t index) {
  return index < r->count ? &r->entries[index]->v : NULL;
}

int sch_registry_report(sch_registry_t *r, uint32_t slot, const char *file, uint64_t version,
                        uint64_t chunks) {
  entry_t *e = find_entry(r, file, version);
  if (!e) return -ENOENT;
  if (slot >= FD_NODES_MAX || chunks > e->v.chunk_count) return -ERANGE;
  holding_t *row = r->holdings[slot];
  uint32_t pick = 0;
  for (uint32_t h = 0; h < SCH_HOLDINGS_PER_NODE; h++) {
    if (row[h].id == e->id) {
      pick = h;
      break;
    }
    if (row[h].id < row[pick].id) pick = h; /* the oldest (or a free) entry goes */
  }
  row[pick] = (holding_t){e->id, chunks};
  return 0;
}

uint64_t sch_registry_held(const sch_registry_t *r, uint32_t slot, const char *file,
                           uint64_t version) {
  entry_t *e = find_entry(r, file, version);
  if (!e || slot >= FD_NODES_MAX) return 0;
  for (uint32_t h = 0; h < SCH_HOLDINGS_PER_NODE; h++)
    if (r->holdings[slot][h].id == e->id) return r->holdings[slot][h].chunks;
  return 0;
}

uint64_t sch_registry_held_v(const sch_registry_t *r, const sch_version_t *v, uint32_t slot) {
  if (!v || slot >= FD_NODES_MAX) return 0;
  const entry_t *e = (const entry_t *)(const void *)((const char *)v - offsetof(entry_t, v));
  for (uint32_t h = 0; h < SCH_HOLDINGS_PER_NODE; h++)
    if (r->holdings[slot][h].id == e->id) return r->holdings[slot][h].chunks;
  return 0;
}

uint32_t sch_registry_holders(const sch_registry_t *r, const char *file, uint64_t version,
                              uint32_t *out, uint32_t max) {
  entry_t *e = find_entry(r, file, version);
  if (!e) return 0;
  uint32_t n = 0;
  for (uint32_t slot = 0; slot < FD_NODES_MAX; slot++)
    for (uint32_t h = 0; h < SCH_HOLDINGS_PER_NODE; h++)
      if (r->holdings[slot][h].id == e->id && r->holdings[slot][h].chunks == e->v.chunk_count) {
        if (n < max) out[n] = slot;
        n++;
      }
  return n;
}
