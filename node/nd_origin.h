/*
 * nd_origin.h — role origin: a member of the origin group (prefix nd_origin_).
 *
 * Owns the group's side of a publish: Missing (which chunks of a new version
 * this origin lacks, after its local delta), the reception of Publish (the
 * head, from fdadmin) and Replicate (the middle and tail, from the origin
 * before them), the chain that copies each version on to the next live
 * origin as it arrives, the answer once every origin behind holds it
 * durably, the commit with fdsched and its retry, and Gc.
 *
 * Guarantees: a version is acknowledged only for the origins that said they
 * hold it durably (fdatasync, rename, fsync); a publish that fails is
 * aborted everywhere (fdsched hears ABORTED, no node makes it current).
 *
 * Built on the chunk plane and the fdsched link; knows no other role. The
 * origins list is the host's and must outlive the role.
 */
#ifndef ND_ORIGIN_H
#define ND_ORIGIN_H

#include "nd_peers.h"
#include "nd_plane.h"
#include "nd_sched.h"

typedef struct nd_origin nd_origin_t;

typedef struct nd_origin_opts {
  nd_plane_t *p;
  rpc_engine_t *e;
  nd_sched_t *sched;
  st_store_t *store;           /* the changelogs are the store's */
  const char *data_dir;
  nd_origins_t *origins;       /* the chain, head first; self is this origin. With zk its
                                  order follows the chain znode (nd_group.c) */
  struct fd_zk *zk;            /* the host's ZooKeeper session, joined to origins/members;
                                  NULL: the static chain */
  const char *id;
  /* The origin group's signing key and its certificate (nd_signer.h), for
   * the versions this origin merges; NULL when node.signing_key_file is not
   * set (changes are then refused). The host's: outlives the role. */
  const struct nd_signer *signer;
  uint32_t min_durable;        /* min_durable_origins */
  uint64_t bump_changes, bump_bytes, bump_interval_ms; /* 0: that threshold is off */
  uint32_t write_chunk_size;   /* chunk size of a file made by changes alone */
} nd_origin_opts_t;

/* NULL with errno. Registers the Origin service's handlers on the engine. */
nd_origin_t *nd_origin_create(const nd_origin_opts_t *o);
/* After the engine is gone (every call ended). */
void nd_origin_destroy(nd_origin_t *og);
/* One loop turn: receptions whose chunks all landed, unconfirmed commits. */
void nd_origin_tick(nd_origin_t *og);
/* Stopping: no new connection to another origin; chains end cancelled. */
void nd_origin_stop(nd_origin_t *og);

/* The write path's figures for /metrics: written on the engine's thread
 * only, read from the metrics thread (common/fd_metrics.h). */
typedef struct nd_origin_metrics {
  fd_counter_t changes_acked; /* head: changes acknowledged to their writer */
  fd_hist_t ack_latency;      /* head: a change's arrival to its acknowledgement */
  fd_counter_t bumps;         /* bump records ordered into a log (here) */
  fd_counter_t merges;        /* logs merged into their version here */
  fd_counter_t merge_failures;
  /* the head's election (nd_group.c) */
  fd_counter_t leads;           /* gauge: 1 while this origin leads the chain */
  fd_counter_t epoch;           /* gauge: the chain's epoch it follows */
  fd_counter_t stale_refused;   /* chain messages of an older epoch refused */
  fd_counter_t resent_known;    /* changes sent again, answered with their first place */
} nd_origin_metrics_t;
const nd_origin_metrics_t *nd_origin_metrics(const nd_origin_t *og);

#endif /* ND_ORIGIN_H */
