/*
 * nd_sched.h — fdnode's link to fdsched (prefix nd_sched_), beside the
 * chunk plane, below the roles.
 *
 * Owns the node's membership: RegisterNode, a Heartbeat every heartbeat_ms,
 * the WatchOrders stream (orders pushed at once, and repeated on heartbeat
 * replies), and the queue of reports (bad chunks, repaired chunks, refused
 * manifests) that ride on heartbeats until one carrying them succeeds. It
 * offers RegisterVersion to the origin role. A lost connection is made again
 * after ND_RETRY_MS and the node registers again. Given several fdsched
 * addresses it follows the leader: a standby's refusal names it, and a
 * broken or silent link moves on to the next address. Orders from a
 * deposed leader (an election sequence below the highest seen) are ignored.
 *
 * Knows no role: orders go to, and the versions held come from, the
 * callbacks the host gives it. Without a scheduler address it is idle
 * (reports are still queued, bounded, and dropped with the node).
 *
 * Memory: nd_sched_create copies the options' strings; nd_sched_destroy
 * (after the engine, which ends its calls) frees it.
 */
#ifndef ND_SCHED_H
#define ND_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "fd_limits.h"
#include "rpc.h"

/* ---- reports to fdsched ------------------------------------------------------- */

typedef enum nd_report_kind {
  ND_REPORT_BAD,      /* a chunk of a complete version is rotten */
  ND_REPORT_REPAIRED, /* ... and was rewritten with a good copy */
  ND_REPORT_REJECTED  /* a manifest was refused (bad signature, malformed) */
} nd_report_kind_t;

typedef struct nd_report {
  nd_report_kind_t kind;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint32_t index;
  char reason[48];
} nd_report_t;

/* A bounded queue, oldest first: a full queue drops the new report and
 * counts it. Each heartbeat carries the oldest ND_REPORTS_PER_HB, which
 * leave the queue only when that heartbeat succeeded, so fdsched hears each
 * at least once while the node lives. */
typedef struct nd_reports {
  nd_report_t q[ND_REPORTS_MAX];
  uint32_t head, len, sent; /* the first `sent` ride on the heartbeat in flight */
  uint64_t dropped;
  Sched__BadChunk bc[ND_REPORTS_PER_HB];
  Sched__BadChunk *bcp[ND_REPORTS_PER_HB];
  Sched__RejectedManifest rm[ND_REPORTS_PER_HB];
  Sched__RejectedManifest *rmp[ND_REPORTS_PER_HB];
} nd_reports_t;

void nd_reports_add(nd_reports_t *r, nd_report_kind_t kind, const char *name, uint64_t version,
                    uint32_t index, const char *reason);
/* Puts the oldest reports on req (pointing into r until nd_reports_done). */
void nd_reports_fill(nd_reports_t *r, Sched__HeartbeatRequest *req);
/* The heartbeat that carried them ended: ok drops them, else they go again. */
void nd_reports_done(nd_reports_t *r, bool ok);

/* ---- send stalls --------------------------------------------------------------------- */

/* Where the node's sends waited so far, every engine's (cumulative ns): what
 * a heartbeat carries (HeartbeatRequest blocked_*, credit_*, child_stalls)
 * and /metrics shows. */
typedef struct nd_stalls {
  uint64_t window_ns;     /* a child's credit (rpc_block_cause_t WINDOW) */
  uint64_t pool_ns;       /* a pool buffer to read a chunk into */
  uint64_t socket_ns;     /* this node's own socket */
  uint64_t upload_cap_ns; /* upload_bps_max */
  uint64_t credit_write_ns, credit_sync_ns; /* as a receiver: chunks' credit, by stage */
  uint32_t n_child;
  struct {
    const char *id; /* borrowed: immutable while the node lives */
    uint64_t blocked_ns;
  } child[ND_CHILD_STALLS_MAX];
} nd_stalls_t;

/* ---- the link --------------------------------------------------------------------- */

typedef struct nd_sched nd_sched_t;

typedef struct nd_sched_cbs {
  /* an order, pushed on WatchOrders or repeated on a heartbeat reply */
  void (*order)(void *arg, const Sched__Order *o);
  /* the versions this node holds or fetches, for a heartbeat: fills at most
   * max entries of out (strings borrowed until the next call), returns the
   * count */
  size_t (*held)(void *arg, Sched__VersionHeld *out, size_t max);
  /* fdsched's list of live origins (Register and Heartbeat replies) */
  void (*origins)(void *arg, Sched__Peer *const *peers, size_t count);
  /* bytes received and sent so far, every engine's */
  void (*counters)(void *arg, uint64_t *rx_bytes, uint64_t *tx_bytes);
  /* the send stalls so far, every engine's */
  void (*stalls)(void *arg, nd_stalls_t *out);
  void *arg;
} nd_sched_cbs_t;

typedef struct nd_sched_opts {
  rpc_engine_t *e;
  /* fdsched's "addr:port", or several comma-separated (a leader and its
   * standbys, in any order); NULL or "": no scheduler */
  const char *schedulers;
  const char *id, *region, *zone;
  const char *listen_addr; /* where this node serves (told to fdsched) */
  uint16_t listen_port;
  uint64_t nic_bps;
  uint64_t upload_bps_max, download_bps_max; /* 0: none */
  bool origin;
  uint32_t heartbeat_ms;
  nd_sched_cbs_t cbs;
} nd_sched_opts_t;

/* NULL with errno (ENOMEM). */
nd_sched_t *nd_sched_create(const nd_sched_opts_t *o);
void nd_sched_destroy(nd_sched_t *s);
/* One loop turn: connect, register, heartbeat when due. */
void nd_sched_tick(nd_sched_t *s);
/* The next heartbeat goes now (a download completed: fdsched learns at once). */
void nd_sched_poke(nd_sched_t *s);
/* The node is stopping: no reconnects, no warnings for calls that end. */
void nd_sched_stop(nd_sched_t *s);
bool nd_sched_configured(const nd_sched_t *s);
const char *nd_sched_node_id(const nd_sched_t *s); /* this node's id (the options' copy) */
nd_reports_t *nd_sched_reports(nd_sched_t *s);

/* RegisterVersion of an encoded manifest, with the origins that hold it (or,
 * PENDING, receive it) and its state; the call's on_done hears the answer.
 * NULL with errno ENOTCONN when fdsched is not connected. */
rpc_call_t *nd_sched_register_version(nd_sched_t *s, const uint8_t *menc, size_t menc_len,
                                      char **origins, size_t origins_n, Sched__VersionState state,
                                      const rpc_call_cbs_t *cbs, void *arg);

#endif /* ND_SCHED_H */
