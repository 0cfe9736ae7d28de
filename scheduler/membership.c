/* membership.c — the node table: register, heartbeat, suspect, dead, drain,
 * leave, slow, driven by the caller's clock.
 *
 * Nodes live in a fixed array of FD_NODES_MAX rows; a node keeps its slot for
 * the life of the process (a node that leaves and registers again gets it
 * back), so plans can name nodes by slot. Ids are found through an
 * open-addressing hash table (FNV-1a, linear probing, twice the node count so
 * probes stay short), which makes a heartbeat O(1). Regions and zones are
 * interned into small tables so that plans compare integers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "scheduler.h"

#define HASH_SLOTS (2u * FD_NODES_MAX)
static_assert((HASH_SLOTS & (HASH_SLOTS - 1)) == 0, "hash table size is a power of two");
#define HASH_EMPTY UINT32_MAX

struct sch_members {
  sch_members_config_t cfg;
  uint32_t count;
  sch_node_t nodes[FD_NODES_MAX];
  sch_node_stalls_t stalls[FD_NODES_MAX]; /* volatile: the latest heartbeat's */
  uint32_t hash[HASH_SLOTS]; /* slot numbers, HASH_EMPTY when free */
  uint32_t region_count;
  uint32_t zone_count;
  char region_names[SCH_REGIONS_MAX][FD_NAME_LEN_MAX + 1];
  char zone_names[SCH_ZONES_MAX][FD_NAME_LEN_MAX + 1];
  uint16_t zone_region[SCH_ZONES_MAX];
};

static uint32_t hash_id(const char *id) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
    h ^= *p;
    h *= 16777619u;
  }
  return h;
}

void sch_members_config_default(sch_members_config_t *cfg) {
  cfg->heartbeat_ms = FD_HEARTBEAT_MS_DEFAULT;
  cfg->suspect_misses = FD_SUSPECT_MISSES_DEFAULT;
  cfg->dead_misses = FD_DEAD_MISSES_DEFAULT;
}

sch_members_t *sch_members_create(const sch_members_config_t *cfg) {
  if (!cfg || cfg->heartbeat_ms == 0 || cfg->suspect_misses == 0 ||
      cfg->dead_misses <= cfg->suspect_misses)
    return NULL;
  sch_members_t *m = calloc(1, sizeof(*m));
  if (!m) return NULL;
  m->cfg = *cfg;
  memset(m->hash, 0xff, sizeof(m->hash));
  return m;
}

void sch_members_destroy(sch_members_t *m) { free(m); }

/* The hash slot holding id, or the empty slot where it would go. */
static uint32_t probe(const sch_members_t *m, const char *id) {
  uint32_t h = hash_id(id) & (HASH_SLOTS - 1);
  for (uint32_t i = 0; i < HASH_SLOTS; i++) {
    uint32_t at = (h + i) & (HASH_SLOTS - 1);
    uint32_t slot = m->hash[at];
    if (slot == HASH_EMPTY || strcmp(m->nodes[slot].id, id) == 0) return at;
  }
  FD_ASSERT(!"membership hash table full"); /* impossible: twice FD_NODES_MAX */
  return 0;
}

int sch_members_find(const sch_members_t *m, const char *id) {
  if (!id) return -ENOENT;
  uint32_t slot = m->hash[probe(m, id)];
  return slot == HASH_EMPTY ? -ENOENT : (int)slot;
}

static int name_ok(const char *s, size_t max) {
  if (!s || !*s) return -EINVAL;
  return strlen(s) > max ? -EMSGSIZE : 0;
}

static int intern_region(sch_members_t *m, const char *name, uint16_t *out) {
  for (uint32_t i = 0; i < m->region_count; i++)
    if (strcmp(m->region_names[i], name) == 0) return *out = (uint16_t)i, 0;
  if (m->region_count == SCH_REGIONS_MAX) return -ENOSPC;
  strcpy(m->region_names[m->region_count], name);
  *out = (uint16_t)m->region_count++;
  return 0;
}

static int intern_zone(sch_members_t *m, uint16_t region, const char *name, uint16_t *out) {
  for (uint32_t i = 0; i < m->zone_count; i++)
    if (m->zone_region[i] == region && strcmp(m->zone_names[i], name) == 0)
      return *out = (uint16_t)i, 0;
  if (m->zone_count == SCH_ZONES_MAX) return -ENOSPC;
  strcpy(m->zone_names[m->zone_count], name);
  m->zone_region[m->zone_count] = region;
  *out = (uint16_t)m->zone_count++;
  return 0;
}

int sch_members_register(sch_members_t *m, const sch_node_info_t *info, uint64_t now_ms,
                         uint32_t *slot_out) {
  int rc;
  if (!info || info->nic_bps == 0) return -EINVAL;
  if ((rc = name_ok(info->id, FD_NAME_LEN_MAX)) || (rc = name_ok(info->region, FD_NAME_LEN_MAX)) ||
      (rc = name_ok(info->zone, FD_NAME_LEN_MAX)) ||
      (rc = name_ok(info->address, SCH_ADDRESS_LEN_MAX - 1)))
    return rc;
  uint32_t at = probe(m, info->id);
  uint32_t slot = m->hash[at];
  bool known = slot != HASH_EMPTY;
  /* Refuse before interning, so that a refused call changes nothing. */
  if (!known && m->count == FD_NODES_MAX) return -ENOSPC;
  if (known && (strcmp(m->region_names[m->nodes[slot].region], info->region) != 0 ||
                strcmp(m->zone_names[m->nodes[slot].zone], info->zone) != 0))
    return -EEXIST;
  uint16_t region, zone;
  if ((rc = intern_region(m, info->region, &region))) return rc;
  if ((rc = intern_zone(m, region, info->zone, &zone))) return rc;
  sch_node_t *n;
  if (known) {
    n = &m->nodes[slot];
    if (n->state == SCH_NODE_DEAD || n->state == SCH_NODE_LEFT) n->incarnation++;
  } else {
    slot = m->count++;
    m->hash[at] = slot;
    n = &m->nodes[slot];
    memset(n, 0, sizeof(*n));
    strcpy(n->id, info->id);
    n->region = region;
    n->zone = zone;
  }
  strcpy(n->address, info->address);
  n->origin = info->origin;
  n->nic_bps = info->nic_bps;
  n->upload_bps_max = info->upload_bps_max;
  n->download_bps_max = info->download_bps_max;
  n->free_disk_bytes = info->free_disk_bytes;
  n->state = n->drained ? SCH_NODE_DRAINING : SCH_NODE_ALIVE; /* a drain outlives restarts */
  n->last_heartbeat_ms = now_ms;
  if (slot_out) *slot_out = slot;
  return 0;
}

int sch_members_heartbeat(sch_members_t *m, const char *id, uint64_t now_ms, uint64_t version,
                          uint64_t chunks, uint32_t *slot_out, bool *returned) {
  int slot = sch_members_find(m, id);
  if (slot < 0) return slot;
  sch_node_t *n = &m->nodes[slot];
  if (n->state == SCH_NODE_LEFT) return -ENOENT;
  bool back = n->state == SCH_NODE_DEAD;
  if (back) {
    n->incarnation++;
    fd_log_debug("node %s is back (incarnation %u)", n->id, n->incarnation);
  }
  n->state = n->drained ? SCH_NODE_DRAINING : SCH_NODE_ALIVE;
  if (now_ms > n->last_heartbeat_ms) n->last_heartbeat_ms = now_ms;
  n->progress_version = version;
  n->progress_chunks = chunks;
  if (slot_out) *slot_out = (uint32_t)slot;
  if (returned) *returned = back;
  return 0;
}

void sch_stalls_add_child(sch_node_stalls_t *s, uint32_t slot, uint64_t blocked_ms) {
  FD_ASSERT(s->n_child <= SCH_CHILD_STALLS_MAX);
  uint32_t at = s->n_child;
  while (at > 0 && s->child[at - 1].blocked_ms < blocked_ms) at--;
  if (at == SCH_CHILD_STALLS_MAX) return;
  uint32_t n = s->n_child < SCH_CHILD_STALLS_MAX ? s->n_child + 1 : SCH_CHILD_STALLS_MAX;
  memmove(&s->child[at + 1], &s->child[at], (n - 1 - at) * sizeof(s->child[0]));
  s->child[at] = (sch_child_stall_t){slot, blocked_ms};
  s->n_child = n;
}

int sch_members_set_stalls(sch_members_t *m, uint32_t slot, const sch_node_stalls_t *s) {
  if (slot >= m->count) return -ENOENT;
  FD_ASSERT(s->n_child <= SCH_CHILD_STALLS_MAX);
  m->stalls[slot] = *s;
  return 0;
}

const sch_node_stalls_t *sch_members_stalls(const sch_members_t *m, uint32_t slot) {
  FD_ASSERT(slot < m->count);
  return &m->stalls[slot];
}

uint32_t sch_members_tick(sch_members_t *m, uint64_t now_ms, uint32_t *died, uint32_t died_max) {
  uint64_t suspect_after = (uint64_t)m->cfg.suspect_misses * m->cfg.heartbeat_ms;
  uint64_t dead_after = (uint64_t)m->cfg.dead_misses * m->cfg.heartbeat_ms;
  uint32_t written = 0;
  for (uint32_t slot = 0; slot < m->count; slot++) {
    sch_node_t *n = &m->nodes[slot];
    if (n->state == SCH_NODE_DEAD || n->state == SCH_NODE_LEFT) continue;
    uint64_t silent = now_ms > n->last_heartbeat_ms ? now_ms - n->last_heartbeat_ms : 0;
    if (silent >= dead_after) {
      if (written == died_max) continue; /* declared by the next call */
      n->state = SCH_NODE_DEAD;
      died[written++] = slot;
    } else if (silent >= suspect_after && n->state == SCH_NODE_ALIVE) {
      n->state = SCH_NODE_SUSPECT;
    }
  }
  return written;
}

static sch_node_t *node_at(sch_members_t *m, uint32_t slot) {
  return slot < m->count ? &m->nodes[slot] : NULL;
}

int sch_members_declare_dead(sch_members_t *m, uint32_t slot) {
  sch_node_t *n = node_at(m, slot);
  if (!n) return -ENOENT;
  if (n->state == SCH_NODE_DEAD || n->state == SCH_NODE_LEFT) return -EALREADY;
  n->state = SCH_NODE_DEAD;
  return 0;
}

int sch_members_drain(sch_members_t *m, uint32_t slot) {
  sch_node_t *n = node_at(m, slot);
  if (!n) return -ENOENT;
  if (n->state == SCH_NODE_LEFT || n->drained) return -EALREADY;
  n->drained = true;
  if (n->state != SCH_NODE_DEAD) n->state = SCH_NODE_DRAINING; /* dead: when it is back */
  return 0;
}

int sch_members_undrain(sch_members_t *m, uint32_t slot) {
  sch_node_t *n = node_at(m, slot);
  if (!n) return -ENOENT;
  if (!n->drained) return -EALREADY;
  n->drained = false;
  if (n->state == SCH_NODE_DRAINING) n->state = SCH_NODE_ALIVE; /* the detector judges it */
  return 0;
}

int sch_members_leave(sch_members_t *m, uint32_t slot) {
  sch_node_t *n = node_at(m, slot);
  if (!n) return -ENOENT;
  if (n->state == SCH_NODE_LEFT) return -EALREADY;
  n->state = SCH_NODE_LEFT;
  n->drained = false; /* one that registers again starts afresh */
  n->slow = false;
  return 0;
}

int sch_members_set_slow(sch_members_t *m, uint32_t slot, bool slow) {
  sch_node_t *n = node_at(m, slot);
  if (!n) return -ENOENT;
  if (n->slow == slow) return -EALREADY;
  n->slow = slow;
  return 0;
}

uint32_t sch_members_count(const sch_members_t *m) { return m->count; }

const sch_node_t *sch_members_node(const sch_members_t *m, uint32_t slot) {
  return slot < m->count ? &m->nodes[slot] : NULL;
}

uint32_t sch_members_region_count(const sch_members_t *m) { return m->region_count; }
uint32_t sch_members_zone_count(const sch_members_t *m) { return m->zone_count; }

const char *sch_members_region_name(const sch_members_t *m, uint32_t region) {
  return region < m->region_count ? m->region_names[region] : NULL;
}

const char *sch_members_zone_name(const sch_members_t *m, uint32_t zone) {
  return zone < m->zone_count ? m->zone_names[zone] : NULL;
}

uint32_t sch_members_zone_region(const sch_members_t *m, uint32_t zone) {
  FD_ASSERT(zone < m->zone_count);
  return m->zone_region[zone];
}

void sch_members_census(const sch_members_t *m, uint32_t counts[SCH_NODE_LEFT + 1]) {
  memset(counts, 0, sizeof(uint32_t) * (SCH_NODE_LEFT + 1));
  for (uint32_t i = 0; i < m->count; i++) counts[m->nodes[i].state]++;
}

const char *sch_node_state_name(sch_node_state_t state) {
  switch (state) {
    case SCH_NODE_ALIVE: return "alive";
    case SCH_NODE_SUSPECT: return "suspect";
    case SCH_NODE_DEAD: return "dead";
    case SCH_NODE_DRAINING: return "draining";
    case SCH_NODE_LEFT: return "left";
  }
  return "?";
}
