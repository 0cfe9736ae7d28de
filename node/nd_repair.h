/*
 * nd_repair.h — role repair: what the node does about damage (prefix
 * nd_repair_).
 *
 * Owns scrub (each complete version open here is re-read every
 * scrub_interval_s at scrub_rate; a rotten chunk is marked bad in storage:
 * no longer present, never served or reused) and the repair of bad chunks:
 * each is reported to fdsched (on heartbeats, through the link's report
 * queue), and re-fetched from a peer and rewritten in place, after which it
 * is reported repaired. Peers are tried in this order: the repair peers of
 * fdsched's latest order for the file, that order's stripe parents, then
 * the origins (self excluded).
 *
 * A complete version with bad chunks is held open (a user reference, so
 * neither eviction nor GC drops the mark, which lives in the open handle)
 * until every bad chunk is repaired, or until the keep rule no longer keeps
 * the version. One RepairPull at a time asks a peer for up to
 * ND_REPAIR_CHUNKS_PER_PULL bad chunks, through the chunk plane's sink in
 * repair mode (each copy verified before it is written); a peer that cannot
 * be reached, does not hold the version, or sends a copy that fails
 * verification is skipped for the next after ND_RETRY_MS, and once every
 * peer was tried the round starts again after ND_REPAIR_ROUND_MS.
 *
 * Built on the chunk plane and the fdsched link; knows no other role.
 */
#ifndef ND_REPAIR_H
#define ND_REPAIR_H

#include "nd_peers.h"
#include "nd_plane.h"
#include "nd_sched.h"

typedef struct nd_repair nd_repair_t;

typedef struct nd_repair_opts {
  nd_plane_t *p;
  rpc_engine_t *e;
  nd_sched_t *sched;
  const nd_origins_t *origins; /* the host's, outlives the role */
  const char *self_addr;       /* this node's address, never a peer */
  uint16_t self_port;
  uint32_t keep_versions;
  uint32_t scrub_interval_s;   /* 0: no scrub */
  uint64_t scrub_rate_bytes;   /* bytes per second a scrub reads at most */
} nd_repair_opts_t;

/* NULL with errno (ENOMEM). */
nd_repair_t *nd_repair_create(const nd_repair_opts_t *o);
/* After the engine is gone (every call ended) and no scrub runs. */
void nd_repair_destroy(nd_repair_t *r);
/* Chunk index of the complete version v is bad (scrub, or a reader found it
 * rotten and marked it): report it and fetch a good copy. */
void nd_repair_bad(nd_repair_t *r, nd_ver_t *v, uint32_t index);
/* An order from fdsched: where the chunks of its file are. */
void nd_repair_order(nd_repair_t *r, const Sched__Order *o);
/* One loop turn: scrub when due, the pull under way. */
void nd_repair_tick(nd_repair_t *r);
/* Stopping: no new scrub or pull; calls that end are not followed up. */
void nd_repair_stop(nd_repair_t *r);
/* A scrub is running (it cannot be cancelled: it ends at its rate). */
bool nd_repair_scrubbing(const nd_repair_t *r);

#endif /* ND_REPAIR_H */
