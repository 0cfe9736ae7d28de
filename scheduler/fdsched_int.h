/*
 * fdsched_int.h — the fdsched daemon's private state, shared by fdsched.c
 * (config, start-up, the loop, the membership timer, shutdown),
 * fdsched_svc.c (the Scheduler service handlers and order pushes) and
 * fdsched_status.c (ListVersions, ListNodes, Status with per-version
 * progress).
 *
 * The daemon is single-threaded by design: one rpc engine (one io_uring)
 * runs every connection, handler and timer, so the sch_* library, which
 * takes no locks, is only ever touched from that thread. A heartbeat costs a
 * hash lookup and one reply; the planner's work happens on registration,
 * publish and death, not per heartbeat.
 *
 * Memory: everything is allocated once at start-up (fdsched_create) and
 * freed by fdsched_destroy; handlers build replies in those buffers.
 */
#ifndef FDSCHED_INT_H
#define FDSCHED_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "fd_cert.h"
#include "fd_hash.h"
#include "fd_limits.h"
#include "fd_metrics.h"
#include "fd_zk.h"
#include "rpc.h"
#include "scheduler.h"

typedef struct fdsched_config {
  char listen[SCH_ADDRESS_LEN_MAX];   /* host:port; port 0 = ephemeral */
  char data_dir[FD_PATH_LEN_MAX];     /* the op log and checkpoints */
  char cluster_key[FD_PATH_LEN_MAX];  /* file with 64 hex digits */
  char admin_public_key[FD_PATH_LEN_MAX]; /* Ed25519 public key (PEM or hex) */
  char revocations_file[FD_PATH_LEN_MAX]; /* optional: the admin's revocation list */
  char port_file[FD_PATH_LEN_MAX];    /* optional: the bound port is written here */
  char log_level[16];
  uint32_t heartbeat_ms;
  uint32_t suspect_misses;
  uint32_t dead_misses;
  uint32_t stripes;
  uint32_t connections_max;
  bool stream_loss_is_death; /* a node whose WatchOrders connection drops is dead now */
  uint64_t checkpoint_every_ops;
  char metrics_listen[SCH_ADDRESS_LEN_MAX]; /* /metrics on "a.b.c.d:port"; empty: off */
  char metrics_port_file[FD_PATH_LEN_MAX];  /* optional: its bound port is written here */
  char zookeeper[1024];                     /* "h:p,h:p,..."; empty: one fdsched, no standby */
  char zookeeper_root[FD_ZK_PATH_MAX / 2];  /* every znode of fdist under it */
  uint32_t zookeeper_session_ms;
  char advertise[SCH_ADDRESS_LEN_MAX];      /* where peers reach us; empty: listen + bound port */
} fdsched_config_t;

/* High availability (fdsched_ha.c). Without ZooKeeper zk is NULL and
 * leading is always true. */
typedef struct fdsched_ha {
  fd_zk_t *zk;
  bool leading;         /* serve, plan, push: elected and the takeover done */
  uint64_t seq;         /* our election sequence while leading (orders carry it); 0 without */
  char advertise[SCH_ADDRESS_LEN_MAX];
  char self[FD_ZK_TAG_MAX]; /* our candidate's tag, "fdsched@<advertise>" */
  fd_zk_conn_t conn;
  uint64_t members_gen;
  char leader[SCH_ADDRESS_LEN_MAX]; /* the leader's address as last listed; "" none */
  char standby[FD_ZK_MEMBERS_MAX][SCH_ADDRESS_LEN_MAX];
  char *standby_ptr[FD_ZK_MEMBERS_MAX];
  uint32_t standbys;
  char refusal[SCH_ADDRESS_LEN_MAX + 96]; /* what a call gets while we do not lead */
  uint32_t stall_ms;     /* a loop turn longer than this makes us confirm the session */
  uint64_t turn_ms;      /* fd_now_ms of the loop's last look at the election */
  uint64_t confirmed_ms; /* leadership last confirmed */
  uint64_t lost_ms;      /* when this fdsched last saw a leader (or started) */
  uint8_t *buf;          /* SCH_ZK_RECORD_LEN_MAX: one version record */
} fdsched_ha_t;

/* One node's open WatchOrders stream (indexed by slot). */
typedef struct fdsched_watch {
  struct fdsched *d;
  uint32_t slot;
  rpc_call_t *call; /* NULL: no stream open */
  bool pending;     /* a push met a full window: resend on_writable */
} fdsched_watch_t;

/* What the daemon caches about one plan's version (decoded manifest). */
typedef struct fdsched_meta {
  char file[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint8_t digest[FD_SHA256_LEN]; /* st_manifest_digest */
  uint64_t created_s;
  uint64_t registered_ms; /* when this daemon saw it registered (or started) */
  bool valid;
} fdsched_meta_t;

/* Buffers one Sched__Order is built in (no allocation per order). */
typedef struct fdsched_order_buf {
  Sched__Order order;
  Sched__StripeOrder stripe[FD_STRIPES_MAX];
  Sched__StripeOrder *stripe_ptr[FD_STRIPES_MAX];
  char *children[FD_STRIPES_MAX][SCH_FANOUT_MAX];
  char parent_host[FD_STRIPES_MAX][SCH_ADDRESS_LEN_MAX];
  Sched__Peer peer[SCH_REPAIR_PEERS_MAX];
  Sched__Peer *peer_ptr[SCH_REPAIR_PEERS_MAX];
  char peer_host[SCH_REPAIR_PEERS_MAX][SCH_ADDRESS_LEN_MAX];
} fdsched_order_buf_t;

typedef struct fdsched_counters {
  uint64_t registers, heartbeats, heartbeat_unknown, watches, pushes, pushes_deferred;
  uint64_t versions_registered, versions_rejected, deaths, stream_deaths, drains;
  uint64_t bad_chunks_reported, bad_chunks_repaired, manifests_rejected; /* node reports */
} fdsched_counters_t;

/* What /metrics shows (fdsched_metrics.c): a snapshot of n and of the
 * membership table that the loop publishes each tick (heartbeat_ms / 4)
 * with relaxed stores, read by the HTTP thread with relaxed loads — the
 * sch_ tables are single-threaded, so the HTTP thread never reads them. */
typedef struct fdsched_metrics {
  struct fd_metrics_server *srv;
  fd_counter_t registers, heartbeats, heartbeat_unknown, watches, pushes, pushes_deferred;
  fd_counter_t versions_registered, versions_rejected, deaths, stream_deaths, drains;
  fd_counter_t bad_chunks_reported, bad_chunks_repaired, manifests_rejected;
  fd_counter_t census[SCH_NODE_LEFT + 1];
  fd_counter_t plans, plan_nodes, plan_unplaced, versions;
  fd_counter_t plan_repairs, orphans_lost; /* sch_sched_repairs */
  fd_counter_t strag_demoted, strag_recovered, strag_moved, strag_slow, strag_kept; /* sch_sched_stragglers */
} fdsched_metrics_t;

/* Node reports about one version (fdsched_reports.c). */
#define FDSCHED_REPORT_VERSIONS 16u
typedef struct fdsched_report {
  bool used;
  char file[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint32_t reported, repaired, rejected;
} fdsched_report_t;

typedef struct fdsched {
  fdsched_config_t cfg;
  uint8_t cluster_key[FD_HMAC_KEY_LEN_MAX];
  size_t cluster_key_len;
  fd_ed25519_key_t admin;
  bool have_admin;
  fd_cert_revwatch_t revoked; /* re-read each heartbeat_ms when it changed (needs the admin key) */
  uint64_t trust_checked_ms;  /* fd_now_ms of the last look at it and at the writers */
  rpc_engine_t *engine;
  uint16_t port;
  sch_db_t *db;
  sch_sched_t *sched;
  uint64_t epoch;    /* wall-clock ms at start: tells nodes the scheduler restarted */
  uint64_t start_ms; /* fd_now_ms at start */
  bool stopping;     /* set before the engine is torn down: no deaths from that */
  fdsched_watch_t *watch;        /* FD_NODES_MAX */
  sch_push_t *pushes;            /* FD_NODES_MAX */
  fdsched_meta_t meta[SCH_PLANS_MAX];
  fdsched_order_buf_t *obuf;     /* SCH_PLANS_MAX */
  Sched__Order **order_ptr;      /* SCH_PLANS_MAX */
  uint32_t *scratch;             /* FD_NODES_MAX */
  /* ListNodes / Status reply buffers */
  Sched__NodeEntry *node_entry;  /* FD_NODES_MAX */
  Sched__NodeEntry **node_entry_ptr;
  Sched__NodeInfo *node_info;
  Sched__SendStalls *node_stalls;      /* FD_NODES_MAX */
  Sched__ChildStall *child_stall;      /* FD_NODES_MAX x SCH_CHILD_STALLS_MAX */
  Sched__ChildStall **child_stall_ptr;
  char (*node_host)[SCH_ADDRESS_LEN_MAX];
  Sched__VersionEntry *version_entry; /* SCH_VERSIONS_MAX */
  Sched__VersionEntry **version_entry_ptr;
  Sched__VersionProgress progress[SCH_PLANS_MAX];
  Sched__VersionProgress *progress_ptr[SCH_PLANS_MAX];
  Sched__ZoneProgress *zone;     /* SCH_PLANS_MAX * SCH_ZONES_MAX */
  Sched__ZoneProgress **zone_ptr;
  fdsched_counters_t n;
  fdsched_report_t reports[FDSCHED_REPORT_VERSIONS];
  /* The origins for Register and Heartbeat replies: the slots that ever
   * registered with origin set (the flag and state are checked at each
   * reply), so a reply costs O(origins), not a scan of the node table. */
  uint32_t origin_slot[SCH_ORIGINS_MAX];
  uint32_t origin_slots;
  Sched__Peer origin_peer[SCH_ORIGINS_MAX];
  Sched__Peer *origin_peer_ptr[SCH_ORIGINS_MAX];
  char origin_host[SCH_ORIGINS_MAX][SCH_ADDRESS_LEN_MAX];
  fdsched_metrics_t metrics; /* fdsched_metrics.c */
  fdsched_ha_t ha;           /* fdsched_ha.c */
  int fatal;                 /* set when the state cannot be reopened: the loop exits with it */
} fdsched_t;

/* fdsched.c: the takeover's two steps. reopen closes the planner and the
 * db and replays the data dir again (nodes come back alive with a grace
 * period; holdings are forgotten); plan creates the planner over the db
 * (every file's newest version planned) and forgets what was cached about
 * the old plans. Between the two the db may be changed (fdsched_ha.c's
 * merge). 0 or -errno. */
int fdsched_state_reopen(fdsched_t *d);
int fdsched_state_plan(fdsched_t *d);

/* fdsched_ha.c. start: after listening (the bound port is advertised); 0
 * or -errno. tick: every loop turn (cheap; takes over or steps down).
 * leading: whether to serve now (confirms the session after a loop stall).
 * refuse: finishes call UNAVAILABLE naming the leader. fits: -EMSGSIZE
 * (with why) when a manifest would not fit a znode. record: writes the
 * registry's file/version to ZooKeeper, or removes it when it was retired;
 * 0 without ZooKeeper. status: the HA fields of StatusReply. stop: closes
 * the session (standbys see it go at once). */
int fdsched_ha_start(fdsched_t *d);
void fdsched_ha_tick(fdsched_t *d);
bool fdsched_ha_leading(fdsched_t *d);
int fdsched_ha_refuse(fdsched_t *d, rpc_call_t *call);
int fdsched_ha_fits(size_t manifest_len, char *why, size_t why_len);
int fdsched_ha_record(fdsched_t *d, const char *file, uint64_t version);
void fdsched_ha_status(fdsched_t *d, Sched__StatusReply *rep);
void fdsched_ha_stop(fdsched_t *d);

/* fdsched_svc.c */
int fdsched_serve(fdsched_t *d);
/* Sends every order the planner marked changed to the nodes' open streams. */
void fdsched_flush_pushes(fdsched_t *d);
/* The cached manifest facts of plan i (NULL if the plan is not built or its
 * manifest cannot be decoded). */
const fdsched_meta_t *fdsched_meta(fdsched_t *d, uint32_t plan);
/* Splits "host:port"; host gets at most SCH_ADDRESS_LEN_MAX bytes. */
void fdsched_split_addr(const char *address, char *host, uint32_t *port);
/* Remembers slot as an origin's if its node registered with origin set
 * (at registration, and for every member replayed at start). */
void fdsched_origin_track(fdsched_t *d, uint32_t slot);
/* Ends every open WatchOrders stream UNAVAILABLE with why (no node is
 * declared dead for it): this fdsched stopped leading, or its state is
 * about to be replaced. */
void fdsched_watch_close_all(fdsched_t *d, const char *why);

/* fdsched_status.c */
int fdsched_serve_status(fdsched_t *d);

/* fdsched_reports.c: logs and counts a heartbeat's bad-chunk and
 * rejected-manifest reports; fills a version's figures into its progress. */
void fdsched_reports_take(fdsched_t *d, const Sched__HeartbeatRequest *req);
void fdsched_reports_fill(fdsched_t *d, Sched__VersionProgress *vp);

/* fdsched_metrics.c: /metrics (metrics_listen). start: 0 or -errno (off
 * when metrics_listen is empty); publish: the loop's snapshot, each tick;
 * stop: before the engine and the db are torn down. */
int fdsched_metrics_start(fdsched_t *d);
void fdsched_metrics_publish(fdsched_t *d);
void fdsched_metrics_stop(fdsched_t *d);

#endif /* FDSCHED_INT_H */
