/*
 * scheduler.h — the fdsched library: membership, the version registry, its
 * durable store, the planner of striped, topology-aware distribution trees,
 * and the core (sch_sched_*) that keeps one plan per file in step with
 * membership. The fdsched daemon (rpc, INI config, admin calls) is built on
 * this and lives elsewhere.
 *
 * What it owns: the table of nodes (who is alive, where, with what NIC), the
 * registered versions with their signed manifests (as opaque bytes plus
 * digest) and the origins holding each, the operation log and checkpoints
 * that make those durable, and for each planned version one tree per stripe
 * saying which node receives which chunks from whom.
 *
 * What it guarantees: every call is deterministic given its inputs and the
 * explicit clock passed in (now_ms); nothing here reads a clock or spawns a
 * thread. A heartbeat is O(1) (a hash lookup). A change made through sch_db_*
 * is durable (appended and fsync'd) before the call returns 0. A plan never
 * gives a node more children than its NIC carries, never makes a node its
 * own ancestor, and as built enters each region and each zone once per
 * stripe. Repairs look for a parent in the same zone, then the same region,
 * then anywhere, so they add cross-zone edges before cross-region ones (the
 * property tests check regions are still entered once after the failures
 * they inject).
 *
 * What it never does: carry file data, talk to the network, or interpret a
 * manifest (the nodes verify its signature; fdsched stores its bytes).
 *
 * Memory: every object is created and destroyed by the caller through its
 * _create/_destroy (or _open/_close) pair; pointers returned by lookups stay
 * valid until the next call that changes the same object.
 */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fd_io.h"
#include "fd_limits.h"

/* ------------------------------------------------------------------------
 * Membership
 * ------------------------------------------------------------------------ */

typedef enum sch_node_state {
  SCH_NODE_ALIVE = 0,
  SCH_NODE_SUSPECT,  /* missed suspect_misses heartbeats; still planned */
  SCH_NODE_DEAD,     /* missed dead_misses heartbeats, or declared dead */
  SCH_NODE_DRAINING, /* asked to move away: a leaf only (it keeps downloading),
                      * no node's parent, until undrained */
  SCH_NODE_LEFT,     /* left for good; must register again */
} sch_node_state_t;

/* What a node says about itself when it registers. Strings are copied. */
typedef struct sch_node_info {
  const char *id;      /* unique, 1..FD_NAME_LEN_MAX bytes */
  const char *region;  /* 1..FD_NAME_LEN_MAX bytes */
  const char *zone;    /* zone name inside its region */
  const char *address; /* host:port, < SCH_ADDRESS_LEN_MAX bytes */
  uint64_t nic_bps;    /* full-duplex NIC capacity, bits per second */
  uint64_t upload_bps_max;   /* the node's own upload cap, bits/s (0: none) */
  uint64_t download_bps_max; /* ... download cap (reported, not planned by) */
  uint64_t free_disk_bytes;
  bool origin;         /* a member of the origin group (holds every version) */
} sch_node_info_t;

/* One row of the node table; read-only to callers. */
typedef struct sch_node {
  char id[FD_NAME_LEN_MAX + 1];
  char address[SCH_ADDRESS_LEN_MAX];
  uint16_t region;     /* index into the region table */
  uint16_t zone;       /* global index into the zone table (region, zone) */
  bool origin;
  sch_node_state_t state;
  uint64_t nic_bps;
  uint64_t upload_bps_max, download_bps_max; /* 0: none */
  uint64_t free_disk_bytes;
  uint64_t last_heartbeat_ms;
  uint64_t progress_version;  /* newest version the node reported working on */
  uint64_t progress_chunks;   /* chunks of it the node holds */
  uint32_t incarnation;       /* bumped each time the node comes back from dead */
  bool drained;               /* drained by the operator until undrained: SCH_NODE_DRAINING
                               * whenever it is alive (through deaths and registrations) */
  bool slow;                  /* judged a straggler by its measured download rate
                               * (sch_strag): a leaf only, like a drained node, until it
                               * recovers. Volatile: not logged, judged again after a restart */
} sch_node_t;

/* What the node can upload: its NIC, or its upload cap when that is lower.
 * The planner sizes child slots and stream rates by it. */
static inline uint64_t sch_node_upload_bps(const sch_node_t *n) {
  return n->upload_bps_max && n->upload_bps_max < n->nic_bps ? n->upload_bps_max : n->nic_bps;
}

typedef struct sch_members_config {
  uint32_t heartbeat_ms;   /* expected interval; FD_HEARTBEAT_MS_DEFAULT */
  uint32_t suspect_misses; /* FD_SUSPECT_MISSES_DEFAULT */
  uint32_t dead_misses;    /* FD_DEAD_MISSES_DEFAULT, > suspect_misses */
} sch_members_config_t;

typedef struct sch_members sch_members_t;

void sch_members_config_default(sch_members_config_t *cfg);
/* NULL on bad configuration or no memory. Tables are sized at creation for
 * FD_NODES_MAX nodes, SCH_REGIONS_MAX regions and SCH_ZONES_MAX zones. */
sch_members_t *sch_members_create(const sch_members_config_t *cfg);
void sch_members_destroy(sch_members_t *m);

/* Registers a node, or updates a known id (which also revives it: a node that
 * registers again after being dead or gone is alive again, with its
 * incarnation bumped when it had been dead or left). *slot_out gets its
 * stable slot number. -EINVAL (empty or bad field), -EMSGSIZE (a name too
 * long), -ENOSPC (FD_NODES_MAX, SCH_REGIONS_MAX or SCH_ZONES_MAX reached),
 * -EEXIST when a known id registers with a different region or zone. */
int sch_members_register(sch_members_t *m, const sch_node_info_t *info, uint64_t now_ms,
                         uint32_t *slot_out);

/* A heartbeat carrying the node's progress. O(1). -ENOENT for an unknown id
 * or one that left (it must register). A dead node that heartbeats is alive
 * again: *returned (may be NULL) is set so that the caller brings it to the
 * newest version. */
int sch_members_heartbeat(sch_members_t *m, const char *id, uint64_t now_ms, uint64_t version,
                          uint64_t chunks, uint32_t *slot_out, bool *returned);

/* Where a node's sends waited, cumulative ms since the node started, as its
 * last heartbeat said (HeartbeatRequest blocked_*, credit_*, child_stalls):
 * volatile, never logged; a restarted fdsched learns it again from the next
 * heartbeat. Children by slot, the SCH_CHILD_STALLS_MAX longest. */
typedef struct sch_child_stall {
  uint32_t slot;
  uint64_t blocked_ms;
} sch_child_stall_t;

typedef struct sch_node_stalls {
  uint64_t blocked_ms; /* a child's credit (peer_window) */
  uint64_t blocked_pool_ms, blocked_socket_ms, blocked_upload_cap_ms;
  uint64_t credit_write_ms, credit_sync_ms; /* as a receiver: its chunks' credit, by stage */
  uint32_t n_child;
  sch_child_stall_t child[SCH_CHILD_STALLS_MAX]; /* longest first */
} sch_node_stalls_t;

/* Adds a child's figure to s, keeping the SCH_CHILD_STALLS_MAX longest,
 * longest first (a shorter one than all of a full list is dropped). */
void sch_stalls_add_child(sch_node_stalls_t *s, uint32_t slot, uint64_t blocked_ms);
/* The node's latest stalls (zero until it reports). -ENOENT for a bad slot. */
int sch_members_set_stalls(sch_members_t *m, uint32_t slot, const sch_node_stalls_t *s);
const sch_node_stalls_t *sch_members_stalls(const sch_members_t *m, uint32_t slot);

/* Advances the failure detector to now_ms: ALIVE -> SUSPECT after
 * suspect_misses missed intervals, -> DEAD after dead_misses. Writes the
 * slots newly declared dead into died (at most died_max; the rest are
 * declared by the next call) and returns how many it wrote. O(nodes). */
uint32_t sch_members_tick(sch_members_t *m, uint64_t now_ms, uint32_t *died, uint32_t died_max);

/* Declares a node dead now (its stream broke, an operator said so). -ENOENT
 * for a bad slot, -EALREADY when it is already dead or gone. */
int sch_members_declare_dead(sch_members_t *m, uint32_t slot);
/* Drain: a leaf only, in every plan, until undrained — also after it dies
 * and comes back or registers again. -EALREADY when it is already drained,
 * or gone. Undrain: alive again (a dead node stays dead); -EALREADY when it
 * is not drained. Leave: gone (and no longer drained). */
int sch_members_drain(sch_members_t *m, uint32_t slot);
int sch_members_undrain(sch_members_t *m, uint32_t slot);
int sch_members_leave(sch_members_t *m, uint32_t slot);
/* Marks a node slow (a straggler: no child slots in any plan) or not.
 * -ENOENT for a bad slot, -EALREADY when it already is as asked. Leaving
 * clears it. */
int sch_members_set_slow(sch_members_t *m, uint32_t slot, bool slow);

/* Slot of id, or -ENOENT. O(1). */
int sch_members_find(const sch_members_t *m, const char *id);
/* Number of slots in use (registered at some time); slots are 0..count-1. */
uint32_t sch_members_count(const sch_members_t *m);
const sch_node_t *sch_members_node(const sch_members_t *m, uint32_t slot);
uint32_t sch_members_region_count(const sch_members_t *m);
uint32_t sch_members_zone_count(const sch_members_t *m);
const char *sch_members_region_name(const sch_members_t *m, uint32_t region);
const char *sch_members_zone_name(const sch_members_t *m, uint32_t zone);
uint32_t sch_members_zone_region(const sch_members_t *m, uint32_t zone);
/* Nodes in each state, for status. */
void sch_members_census(const sch_members_t *m, uint32_t counts[SCH_NODE_LEFT + 1]);
const char *sch_node_state_name(sch_node_state_t state);

/* ------------------------------------------------------------------------
 * Planner: one tree per stripe for one version
 * ------------------------------------------------------------------------ */

#define SCH_NONE (-1) /* no parent: not in the plan, or not placed */
#define SCH_ROOT (-2) /* the parent of an origin: it holds every chunk */

typedef struct sch_plan_config {
  uint32_t stripes;   /* k; chunk i belongs to stripe i mod k. FD_STRIPES_DEFAULT */
  uint64_t stream_bps; /* rate one child is sent one stripe at; a node with NIC
                        * B gets floor(B / stream_bps) child slots, at most
                        * SCH_FANOUT_MAX. 0: derived at each sch_plan_build
                        * as the median NIC of the eligible non-origin
                        * members divided by stripes (so a node with a
                        * typical NIC feeds `stripes` children of its one
                        * interior stripe), or 10 Gbit/s / stripes with no
                        * such member. */
} sch_plan_config_t;

typedef struct sch_plan sch_plan_t;

/* What a daemon pushes to one node for one version. */
typedef struct sch_order_stripe {
  int32_t parent;   /* slot, SCH_ROOT for an origin, SCH_NONE if unplaced */
  uint32_t child_count;
  uint32_t children[SCH_FANOUT_MAX];
} sch_order_stripe_t;

typedef struct sch_order {
  uint32_t slot;
  uint32_t stripes;
  sch_order_stripe_t stripe[FD_STRIPES_MAX];
} sch_order_t;

typedef struct sch_plan_stats {
  uint32_t nodes;             /* nodes in the plan, origins included */
  uint32_t unplaced;          /* (node, stripe) pairs without a parent */
  uint32_t multi_interior;    /* nodes interior in more than one stripe */
  uint32_t depth_max;         /* over all stripes, an origin at depth 0 */
  uint32_t cross_region_edges[FD_STRIPES_MAX];
  uint32_t cross_zone_edges[FD_STRIPES_MAX]; /* same region, other zone */
} sch_plan_stats_t;

void sch_plan_config_default(sch_plan_config_t *cfg);
/* The plan reads node places and NICs from m, which must outlive it. */
sch_plan_t *sch_plan_create(const sch_members_t *m, const sch_plan_config_t *cfg);
void sch_plan_destroy(sch_plan_t *p);

/* Builds every stripe's tree over the nodes that are alive or suspect, and
 * the draining ones as leaves with no child slot (not dead or gone). -ENOENT when there is no live origin, -ENOSPC
 * with more than SCH_ORIGIN_NODES_MAX origins, -ENOMEM. A node that
 * finds no parent with spare capacity is left unplaced and counted in the
 * stats; the call still returns 0. */
int sch_plan_build(sch_plan_t *p);
/* The version's origin chain, head first (ids; unknown ones are skipped):
 * an origin that forwards the publish to a later live origin keeps k fewer
 * child slots, so seeding the trees leans on the chain's tail. Takes effect
 * at the next build. */
void sch_plan_set_chain(sch_plan_t *p, const char (*origins)[FD_NAME_LEN_MAX + 1], uint32_t n);

/* Removes dead (or departed) nodes from the plan and re-parents every live orphan in every
 * stripe: a dead head is replaced by its best child in the same zone, which
 * takes its place; the other orphans go to a node with spare capacity — same
 * zone first, then same region, then anywhere — never to one of their own
 * descendants. Orders of every node touched are marked changed. Returns the
 * number of orphans that found no parent (0 is the normal case), or -ENOMEM. */
int sch_plan_remove(sch_plan_t *p, const uint32_t *slots, uint32_t count);

/* Drains a node (its state must already be SCH_NODE_DRAINING for the next
 * build to agree): it gets no child slot, every child it has in any stripe
 * is re-parented as sch_plan_remove re-parents a dead node's orphans, and
 * the node stays in the plan as a leaf of every stripe (it keeps downloading;
 * an origin stays at the root). Orders of every node touched are marked
 * changed. Returns the number of nodes (orphans, or the node itself) left
 * without a parent in some stripe (0 normally), -ENOENT if it is not in the
 * plan, -ENOMEM. */
int sch_plan_drain(sch_plan_t *p, uint32_t slot);
/* Gives an undrained node (no longer SCH_NODE_DRAINING: -EINVAL), or one no
 * longer slow, its child slots back (none while it is still slow or
 * drained), or joins it when it is not in the plan; it is interior again
 * through later repairs and joins, and in the next build. */
int sch_plan_undrain(sch_plan_t *p, uint32_t slot);
/* Demotes a straggler (it must already be marked slow, or drained, so that
 * the next build agrees): it gets no child slot; if it has children in any
 * stripe they are moved as sch_plan_drain moves them (and it is placed
 * again as a leaf); a leaf keeps its place and its order. Returns as
 * sch_plan_drain: the nodes left without a parent (0 normally), -ENOENT if
 * it is not in the plan, -ENOMEM. */
int sch_plan_demote(sch_plan_t *p, uint32_t slot);

/* Adds a node that joined (or came back) after the plan was built: it
 * attaches as a leaf in every stripe, splicing itself above a leaf when no
 * parent has a free slot. -EALREADY if it is in the plan (or is an origin
 * outside the version's chain: it lacks the version), -EINVAL if it is
 * not alive, -ENOSPC if some stripe found no place or the origin list is full. */
int sch_plan_join(sch_plan_t *p, uint32_t slot);

bool sch_plan_contains(const sch_plan_t *p, uint32_t slot);
uint32_t sch_plan_stripes(const sch_plan_t *p);
/* Child slots of a node (its upload capacity in streams). */
uint32_t sch_plan_capacity(const sch_plan_t *p, uint32_t slot);
int32_t sch_plan_parent(const sch_plan_t *p, uint32_t slot, uint32_t stripe);
/* Writes up to max children; returns how many there are. */
uint32_t sch_plan_children(const sch_plan_t *p, uint32_t slot, uint32_t stripe, uint32_t *out,
                           uint32_t max);
/* The order for one node; -ENOENT if it is not in the plan. */
int sch_plan_order(const sch_plan_t *p, uint32_t slot, sch_order_t *out);
/* Slots whose order changed since the last call (each once), up to max;
 * returns how many were written. Call until it returns less than max. */
uint32_t sch_plan_take_changed(sch_plan_t *p, uint32_t *out, uint32_t max);

/* Repair, the safety net: a node still missing chunks of a stripe after its
 * tree finished is told which peers to pull them from — nodes marked
 * complete, same zone first, then same region, then origins. */
void sch_plan_mark_complete(sch_plan_t *p, uint32_t slot);
uint32_t sch_plan_repair_peers(const sch_plan_t *p, uint32_t slot, uint32_t *out, uint32_t max);

void sch_plan_stats(const sch_plan_t *p, sch_plan_stats_t *out);

/* ------------------------------------------------------------------------
 * Stragglers: download rates from the heartbeats' byte counters, and who is
 * too slow to feed anyone (strag.c says how it judges)
 * ------------------------------------------------------------------------ */

typedef struct sch_strag sch_strag_t;

/* One change of a node's standing, with the figures it was judged on. */
typedef struct sch_strag_verdict {
  uint32_t slot;
  bool slow;           /* true: judged slow now; false: recovered */
  uint64_t rate_bps;   /* its download rate over the window */
  uint64_t median_bps; /* the median rate of its peers: the nodes fetching the same
                        * version that are not slow and received bytes in the window */
  uint64_t supply_bps; /* what its parents deliver (strag.c) */
  uint32_t peers;      /* peers the median is taken over */
  uint64_t for_ms;     /* how long it was below the bar (or above the recovery bar) */
} sch_strag_verdict_t;

/* NULL on no memory. Sized for FD_NODES_MAX nodes. */
sch_strag_t *sch_strag_create(void);
void sch_strag_destroy(sch_strag_t *t);
/* A heartbeat's cumulative received bytes (chunk bytes verified and stored). */
void sch_strag_sample(sch_strag_t *t, uint32_t slot, uint64_t now_ms, uint64_t rx_bytes);
/* Drops what is known of slot (it died or left). */
void sch_strag_forget(sch_strag_t *t, uint32_t slot);
/* slot is not judged slow before until_ms (it was, and could not be made a
 * leaf: the plan had no room for its children). */
void sch_strag_defer(sch_strag_t *t, uint32_t slot, uint64_t until_ms);
/* slot's download rate over the last SCH_STRAG_WINDOW_MS, in bits/s; false
 * without enough samples, or when the newest is stale. */
bool sch_strag_rate(const sch_strag_t *t, uint32_t slot, uint64_t now_ms, uint64_t *bps);
/* Judges the nodes fetching plan p's version: fetching[0..n) their slots
 * (no origins), remaining_bytes[i] what fetching[i] still lacks. Writes the
 * nodes whose standing changed (m's slow flag against the measurements) to
 * out, at most max (the rest are judged at the next call), and returns how
 * many. It changes nothing in m or p: the caller applies the verdicts. */
uint32_t sch_strag_judge(sch_strag_t *t, const sch_members_t *m, const sch_plan_t *p,
                         const uint32_t *fetching, const uint64_t *remaining_bytes, uint32_t n,
                         uint64_t now_ms, sch_strag_verdict_t *out, uint32_t max);

/* ------------------------------------------------------------------------
 * Store: where durable changes go (the embedded log, or ZooKeeper later)
 * ------------------------------------------------------------------------ */

typedef struct sch_store sch_store_t;

/* Replay calls this once with the checkpoint (is_checkpoint true), if there
 * is one, then once per logged record after it, in order. A non-zero return
 * stops the replay and is passed through. */
typedef int (*sch_store_visit_fn)(void *arg, bool is_checkpoint, const uint8_t *data,
                                  size_t len);

typedef struct sch_store_ops {
  /* Appends records; they are durable when it returns 0. */
  int (*append)(sch_store_t *st, const struct iovec *recs, unsigned count);
  /* Replaces everything logged so far by one snapshot, atomically. */
  int (*checkpoint)(sch_store_t *st, const void *snapshot, size_t len);
  int (*replay)(sch_store_t *st, sch_store_visit_fn visit, void *arg);
  void (*close)(sch_store_t *st);
} sch_store_ops_t;

struct sch_store {
  const sch_store_ops_t *ops;
};

/* The embedded store: dir/log (records framed as length, CRC32C, sequence,
 * payload; fdatasync'd before append returns) and dir/checkpoint (written to
 * a temporary file, fsync'd and renamed). Opening scans the log: a torn tail
 * (damage to the last append, which a power cut may leave with any of its
 * sectors lost) is truncated away, logged and counted; damage followed by a
 * whole later append is corruption, -EBADMSG, and so is a checkpoint that
 * fails its CRC. *err gets -errno on NULL. */
sch_store_t *sch_store_open_dir(const char *dir, int *err);
typedef struct sch_store_dir_options {
  /* Crash tests only (tests/common/powercut.c): told of every change the
   * store makes to the disk (fd_io.h). NULL in production. */
  const fd_io_hook_t *io_hook;
} sch_store_dir_options_t;
/* sch_store_open_dir with options (NULL: the defaults); opts is copied. */
sch_store_t *sch_store_open_dir_with(const char *dir, const sch_store_dir_options_t *opts,
                                     int *err);
/* Bytes cut from a torn tail when the store was opened (0 normally). */
uint64_t sch_store_dir_truncated_bytes(const sch_store_t *st);
/* Records appended since the last checkpoint (for the checkpoint policy). */
uint64_t sch_store_dir_records_since_checkpoint(const sch_store_t *st);

static inline int sch_store_append(sch_store_t *st, const struct iovec *recs, unsigned count) {
  return st->ops->append(st, recs, count);
}
static inline int sch_store_checkpoint(sch_store_t *st, const void *snap, size_t len) {
  return st->ops->checkpoint(st, snap, len);
}
static inline int sch_store_replay(sch_store_t *st, sch_store_visit_fn visit, void *arg) {
  return st->ops->replay(st, visit, arg);
}
static inline void sch_store_close(sch_store_t *st) {
  if (st) st->ops->close(st);
}

/* ------------------------------------------------------------------------
 * Version registry, and the durable database tying it to membership
 * ------------------------------------------------------------------------ */

typedef struct sch_version {
  char file[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint64_t size_bytes;
  uint32_t chunk_size_bytes;
  uint32_t chunk_count;
  uint8_t manifest_digest[FD_SHA256_LEN]; /* SHA-256 of the manifest bytes */
  uint8_t *manifest;                      /* signed manifest, opaque; owned */
  size_t manifest_len;
  uint32_t origin_count;
  char origins[SCH_ORIGINS_MAX][FD_NAME_LEN_MAX + 1];
  bool pending; /* registered while its publish runs; not yet committed */
} sch_version_t;

/* What the origin head registers. manifest is copied. */
typedef struct sch_version_info {
  const char *file;
  uint64_t version;
  uint64_t size_bytes;
  uint32_t chunk_size_bytes;
  const uint8_t *manifest;
  size_t manifest_len;
  uint32_t origin_count;
  const char *const *origins;
  bool pending; /* the publish is still under way (sch_sched_commit ends it) */
} sch_version_info_t;

typedef struct sch_registry sch_registry_t;

sch_registry_t *sch_registry_create(void);
void sch_registry_destroy(sch_registry_t *r);
/* -EEXIST (same file and version), -EINVAL, -EMSGSIZE (manifest or name too
 * long), -ENOSPC (SCH_VERSIONS_MAX), -ERANGE (version not newer than the
 * file's newest, or a chunk count over FD_CHUNKS_MAX). */
int sch_registry_add(sch_registry_t *r, const sch_version_info_t *info);
int sch_registry_add_origin(sch_registry_t *r, const char *file, uint64_t version,
                            const char *origin);
int sch_registry_retire(sch_registry_t *r, const char *file, uint64_t version);
/* Marks a pending version committed, held by origins[0..n) (n 0: the origins
 * it was registered with); -EALREADY if it was not pending. */
int sch_registry_commit(sch_registry_t *r, const char *file, uint64_t version,
                        const char *const *origins, uint32_t n);
const sch_version_t *sch_registry_find(const sch_registry_t *r, const char *file,
                                       uint64_t version);
const sch_version_t *sch_registry_newest(const sch_registry_t *r, const char *file);
uint32_t sch_registry_count(const sch_registry_t *r);
const sch_version_t *sch_registry_at(const sch_registry_t *r, uint32_t index);

/* Volatile holdings, rebuilt from node reports after a restart: node slot
 * holds chunks of file/version (complete when chunks == chunk_count).
 * -ENOENT unknown version, -ERANGE bad slot or chunk count. */
int sch_registry_report(sch_registry_t *r, uint32_t slot, const char *file, uint64_t version,
                        uint64_t chunks);
/* Slots holding the whole version, up to max; returns how many there are. */
uint32_t sch_registry_holders(const sch_registry_t *r, const char *file, uint64_t version,
                              uint32_t *out, uint32_t max);
/* Chunks of file/version node slot reported; 0 if none. */
uint64_t sch_registry_held(const sch_registry_t *r, uint32_t slot, const char *file,
                           uint64_t version);
/* The same for v, a version this registry returned (no lookup by name: for
 * scans over every node). */
uint64_t sch_registry_held_v(const sch_registry_t *r, const sch_version_t *v, uint32_t slot);

/* The durable database: membership registrations and the registry, each
 * change logged through the store before it is applied and acknowledged. */
typedef struct sch_db sch_db_t;

/* Replays the store into fresh members and registry. Nodes replayed come
 * back alive with last heartbeat now_ms (a grace period: they are declared
 * dead if they do not heartbeat). The db owns the store from here. NULL with
 * *err on failure (the store is then closed). */
sch_db_t *sch_db_open(sch_store_t *store, const sch_members_config_t *cfg, uint64_t now_ms,
                      int *err);
void sch_db_close(sch_db_t *db);
sch_members_t *sch_db_members(sch_db_t *db);
sch_registry_t *sch_db_registry(sch_db_t *db);

int sch_db_register_node(sch_db_t *db, const sch_node_info_t *info, uint64_t now_ms,
                         uint32_t *slot_out);
int sch_db_drain_node(sch_db_t *db, uint32_t slot);
int sch_db_undrain_node(sch_db_t *db, uint32_t slot);
int sch_db_leave_node(sch_db_t *db, uint32_t slot);
int sch_db_add_version(sch_db_t *db, const sch_version_info_t *info);
int sch_db_add_origin(sch_db_t *db, const char *file, uint64_t version, const char *origin);
int sch_db_retire_version(sch_db_t *db, const char *file, uint64_t version);
int sch_db_commit_version(sch_db_t *db, const char *file, uint64_t version,
                          const char *const *origins, uint32_t n);
/* Writes a checkpoint of the whole state and empties the log. */
int sch_db_checkpoint(sch_db_t *db);
/* The periodic policy: checkpoints when every_ops records (0: the default,
 * SCH_CHECKPOINT_EVERY_OPS_DEFAULT) were logged since the last checkpoint,
 * counting those replayed at open. *done (may be NULL) says whether it did. */
int sch_db_maybe_checkpoint(sch_db_t *db, uint64_t every_ops, bool *done);
/* Log records since the last checkpoint. */
uint64_t sch_db_ops_since_checkpoint(const sch_db_t *db);

/* ------------------------------------------------------------------------
 * The scheduler's core: the db plus one plan per file (its newest version),
 * kept in step with membership. This is what the fdsched daemon drives from
 * its rpc handlers and its timer; it does no I/O besides the db's log.
 * ------------------------------------------------------------------------ */

typedef struct sch_sched sch_sched_t;

/* A node whose order for file/version changed and should be pushed now. */
typedef struct sch_push {
  uint32_t slot;
  uint32_t plan; /* index for sch_sched_plan_at */
} sch_push_t;

/* db stays the caller's; plans are built for every file's newest version
 * already registered. NULL on bad configuration or no memory. */
sch_sched_t *sch_sched_create(sch_db_t *db, const sch_plan_config_t *cfg);
void sch_sched_destroy(sch_sched_t *s);

/* Registers (durably) and, when the node is alive, adds it to every plan as
 * a late joiner. Errors as sch_db_register_node. */
int sch_sched_register(sch_sched_t *s, const sch_node_info_t *info, uint64_t now_ms,
                       uint32_t *slot_out);
/* A heartbeat with progress on file/version (file may be NULL). A node that
 * comes back from dead is put back into every file's newest plan — it is
 * brought to the newest version, not the one it was on. */
int sch_sched_heartbeat(sch_sched_t *s, const char *id, uint64_t now_ms, const char *file,
                        uint64_t version, uint64_t chunks);
/* A heartbeat's byte counters: rx_bytes, the node's cumulative received
 * chunk bytes, feeds its download rate (sch_strag). -ENOENT: unknown id. */
int sch_sched_traffic(sch_sched_t *s, const char *id, uint64_t now_ms, uint64_t rx_bytes);
/* Runs the failure detector and repairs every plan around the newly dead;
 * then (at most every SCH_STRAG_JUDGE_MS) judges the nodes fetching each
 * plan's version by their rates: a node judged slow is marked so and
 * demoted in every plan (sch_plan_demote: its children moved, a leaf from
 * then on, in new builds and repairs too), one judged recovered gets its
 * child slots back; each is logged. A node that dies is no longer slow.
 * Returns how many nodes died, or -errno. */
int sch_sched_tick(sch_sched_t *s, uint64_t now_ms);
/* Registers a version durably and replaces its file's plan by a new one. */
int sch_sched_publish(sch_sched_t *s, const sch_version_info_t *info);
/* The pending version's publish succeeded (durable before it returns), with
 * origins[0..n) holding it (n 0: those it was registered with). An origin
 * the publish left out (dropped from the chain) is taken out of the plan,
 * which is built again: it cannot seed what it lacks. */
int sch_sched_commit(sch_sched_t *s, const char *file, uint64_t version,
                     const char *const *origins, uint32_t n);
/* The pending version's publish failed: it is retired, and the file's plan
 * goes back to the newest version left (or to none). */
int sch_sched_abort(sch_sched_t *s, const char *file, uint64_t version);
/* A death known before the detector's timeout (the node's stream broke). */
int sch_sched_declare_dead(sch_sched_t *s, uint32_t slot);
/* Drains a node durably and moves every child it has in every plan to
 * other parents at once (the pushes say to whom); it stays a leaf. -EALREADY
 * when it is already drained (nothing logged) or gone. */
int sch_sched_drain(sch_sched_t *s, uint32_t slot);
/* Not drained any more (durably), with its child slots back in every plan.
 * -EALREADY when it is not drained. */
int sch_sched_undrain(sch_sched_t *s, uint32_t slot);
/* How many still depend on slot: its (child, stripe) edges over every built
 * plan, plus, for a drained node, the children it had that were moved away
 * and have not heartbeated since (the heartbeat's reply carries their new
 * order, so until then one may still fetch from it) nor died. */
uint32_t sch_sched_dependents(const sch_sched_t *s, uint32_t slot);
int sch_sched_leave(sch_sched_t *s, uint32_t slot); /* leaves every plan now */

uint32_t sch_sched_plan_count(const sch_sched_t *s);
/* The plan at index i, and its file and version. */
const sch_plan_t *sch_sched_plan_at(const sch_sched_t *s, uint32_t i, const char **file,
                                    uint64_t *version);
/* Plan repairs since creation: plans re-parented around dead or departed
 * nodes (one per plan per batch of deaths), and orphans left without a
 * parent by them. */
void sch_sched_repairs(const sch_sched_t *s, uint64_t *repairs, uint64_t *lost);
/* Straggler decisions since creation. */
typedef struct sch_sched_strag_stats {
  uint64_t demoted;        /* nodes judged slow */
  uint64_t recovered;      /* slow nodes judged recovered */
  uint64_t children_moved; /* (child, stripe) edges moved off nodes judged slow */
  uint64_t kept;           /* judged slow, kept interior: no other parent had room */
  uint64_t slow_now;       /* nodes marked slow now (a scan of the node table) */
} sch_sched_strag_stats_t;
void sch_sched_stragglers(const sch_sched_t *s, sch_sched_strag_stats_t *out);
/* Orders to push: nodes whose order changed, over all plans, up to max. */
uint32_t sch_sched_take_pushes(sch_sched_t *s, sch_push_t *out, uint32_t max);

#endif /* SCHEDULER_H */
