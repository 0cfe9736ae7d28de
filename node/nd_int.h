/* nd_int.h — fdnode internals, shared by the files of node/ only. */
#ifndef ND_INT_H
#define ND_INT_H

#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>

#include "fd_assert.h"
#include "fd_hash.h"
#include "fd_log.h"
#include "fd_pool.h"
#include "fd_time.h"
#include "node.h"
#include "rpc.h"
#include "storage.h"

#define ND_VERS_MAX 8u        /* versions open at once (served or received) */
#define ND_TX_MAX 128u        /* chunk-sending streams at once */
#define ND_TX_Q 4u            /* chunks queued per sending stream */
#define ND_TX_READS 2u        /* disk reads in flight per sending stream */
#define ND_PUBS_MAX 8u        /* publish / replicate receptions at once */
#define ND_ORIGINS_MAX 8u
#define ND_RETRY_MS 200u      /* a failed fetch, manifest or connect waits this long */
#define ND_PARENT_WAIT_MS 20u /* ... but a parent that has not opened the version yet only this */
#define ND_STREAM_TIMEOUT_MS (6u * 3600u * 1000u)
#define ND_DRAIN_MS 10000u    /* SIGTERM: longest wait for disk writes */
#define ND_ORIGIN_METHOD_MISSING 3u
#define ND_CHAIN_ATTEMPTS 2u  /* tries of one origin before it is dropped from the chain */
#define ND_POOL_RESERVE 12u   /* pool buffers disk reads for children never take */
#define ND_WINDOW_CHUNKS_DEFAULT 4u /* receive window: chunks in flight per stream (see nd_engine_opts) */
/* scrub reports and repair (nd_repair.c) */
#define ND_REPORTS_MAX 64u            /* reports to fdsched waiting for a heartbeat */
#define ND_REPORTS_PER_HB 16u         /* reports one heartbeat carries */
#define ND_REPAIR_ORDERS 4u           /* files whose latest order (peers) is remembered */
#define ND_REPAIR_PEERS_MAX 16u       /* repair peers + stripe parents kept per order */
#define ND_REPAIR_CHUNKS_PER_PULL 64u /* bad chunks asked for in one RepairPull */
#define ND_REPAIR_WAIT_MAX 64u        /* received copies waiting for a storage slot */
#define ND_REPAIR_ROUND_MS 1000u      /* every peer tried: wait before the next round */
#define ND_REPAIR_CALL_MS 10000u      /* deadline of one RepairPull */

typedef struct nd_repair nd_repair_t; /* nd_repair.c */

typedef struct nd_ver {
  bool used;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint8_t digest[FD_SHA256_LEN];
  st_version_t *sv;
  const st_manifest_t *m;
  uint8_t *menc; /* the signed manifest as received (malloc) */
  size_t menc_len;
  int fd;        /* O_DIRECT, for serving chunks already durable */
  bool complete;
  bool completing;
  bool aborted;  /* its publish failed: not served */
  bool delta_running;
  uint32_t users;
  uint64_t last_used_ms;
  rpc_call_t *missing_call; /* a Missing call waiting on the delta */
  uint64_t bytes_reused;
  uint64_t scrubbed_ms; /* when its last scrub started (0: never) */
  struct nd_shared_ver *shared; /* its entry in the serving engines' table (nd_engine.c) */
} nd_ver_t;

/* A receiver of chunks on one call (a stripe download, a publish, a
 * replicate): header, then one DATA frame per chunk, into storage. */
typedef struct nd_sink {
  rpc_call_t *call;
  uint32_t gen;  /* bumped when the call ends: late puts skip its credit */
  nd_ver_t *ver;
  uint32_t puts; /* handed to storage (or waiting for a slot), not done */
  bool has_hdr;
  uint32_t hdr_index, hdr_len;
  bool forward;  /* cut-through to children */
  int err;
  uint64_t rx_bytes;
} nd_sink_t;

/* Per pool buffer: who holds it. */
typedef struct nd_bufm {
  uint32_t refs;
  nd_sink_t *sink;
  nd_ver_t *ver; /* held (users) while storage has the chunk */
  uint32_t gen;
  uint32_t chunk, len;
  nd_node_t *n;
  uint32_t idx;
} nd_bufm_t;

typedef enum nd_tx_kind { ND_TX_FETCH, ND_TX_REPL } nd_tx_kind_t;

typedef struct nd_tx_item {
  uint8_t *buf;
  uint32_t index, len;
  bool hdr_sent;
} nd_tx_item_t;

typedef struct nd_read {
  fd_op_t op;
  struct nd_tx *tx;
  uint8_t *buf;
  uint32_t index, len, got;
  bool busy;
} nd_read_t;

/* A sender of chunks on one call: a child's FetchStripe / RepairPull (server
 * side) or a Replicate stream (client side). */
typedef struct nd_tx {
  bool used;
  nd_node_t *n;
  nd_tx_kind_t kind;
  rpc_call_t *call;
  bool call_gone;
  bool ended; /* finish / close_send done */
  nd_ver_t *ver;
  uint8_t *want; /* bit per chunk: still to send and not queued */
  uint32_t want_count, scan;
  nd_tx_item_t q[ND_TX_Q];
  uint32_t q_head, q_len;
  nd_read_t reads[ND_TX_READS];
  uint32_t reads_busy;
  struct nd_chain *chain; /* ND_TX_REPL */
  uint64_t tx_bytes;
} nd_tx_t;

/* An origin's chain step: after holding a version, copy it to the next live
 * origin, which does the same, and learn who holds it. */
typedef struct nd_chain {
  bool active;
  nd_node_t *n;
  nd_ver_t *ver;
  uint32_t next;        /* index in the origins list being tried */
  uint32_t attempts;    /* failed tries of origins[next] */
  rpc_conn_t *conn;
  rpc_call_t *call;     /* Missing, then Replicate */
  nd_tx_t *tx;
  char held[ND_ORIGINS_MAX][FD_NAME_LEN_MAX + 1];
  uint32_t held_n;
  bool got_reply;
  bool aborted; /* the publish failed: end, do not try the next origin */
  void (*done)(struct nd_chain *c, int err);
  void *arg;
} nd_chain_t;

/* A publish (head) or replicate (middle, tail) reception. */
typedef struct nd_pub {
  bool used;
  bool is_repl;
  nd_node_t *n;
  nd_sink_t sink;
  rpc_call_t *call;
  bool ended;       /* the client's stream ended */
  bool finishing;   /* completion / chain / register under way */
  bool self_done;   /* this origin holds the version durably */
  bool chain_over;  /* the chain after this origin answered (or failed) */
  int chain_err;
  bool announced;   /* head: fdsched was told the publish began (PENDING) */
  nd_chain_t chain;
  rpc_conn_t *reg_conn;
} nd_pub_t;

/* A warm-up Missing sent to the next origin as soon as this one starts its
 * delta, so the chain's deltas run side by side instead of one after the
 * other (its answer is not used). */
typedef struct nd_warm {
  bool used;
  struct nd_node *n;
  nd_ver_t *ver; /* held (users) until the call ends */
  uint32_t to;   /* index in origins */
  rpc_conn_t *conn;
  rpc_call_t *call;
} nd_warm_t;

typedef struct nd_origin {
  char id[FD_NAME_LEN_MAX + 1];
  char addr[64];
  uint16_t port; /* 0: a bare id whose address fdsched has not told yet */
  bool learned;  /* configured as a bare id: the address comes from fdsched */
} nd_origin_t;

typedef struct nd_stripe {
  uint32_t stripe;
  char parent_id[FD_NAME_LEN_MAX + 1];
  char parent_addr[64];
  uint16_t parent_port;
  rpc_conn_t *conn;
  bool conn_ready;
  nd_sink_t sink;
  bool fetching;
  uint64_t retry_at_ms;
  bool done;
} nd_stripe_t;

typedef enum nd_dl_state {
  ND_DL_IDLE, ND_DL_MANIFEST, ND_DL_DELTA, ND_DL_FETCH, ND_DL_COMPLETING, ND_DL_DONE, ND_DL_FAILED
} nd_dl_state_t;

typedef struct nd_dl {
  nd_dl_state_t state;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint8_t digest[FD_SHA256_LEN];
  bool has_digest;
  nd_ver_t *ver;
  uint32_t stripes_n;
  nd_stripe_t s[FD_STRIPES_MAX];
  /* manifest fetch */
  rpc_conn_t *mconn;
  bool mconn_ready;
  rpc_call_t *mcall;
  uint32_t mtry;
  uint64_t retry_at_ms;
  uint64_t started_ms;
  bool pending;        /* the publish is still under way: do not make it current yet */
  bool waiting_logged;
} nd_dl_t;

struct nd_node;

typedef struct nd_sched {
  char addr[64];
  uint16_t port;
  rpc_conn_t *conn;
  bool ready, registered;
  uint64_t epoch;
  uint32_t heartbeat_ms;
  rpc_call_t *watch, *hb, *reg;
  uint64_t next_hb_ms, retry_at_ms;
  /* origin head: versions whose commit fdsched has not confirmed (retried) */
  struct nd_uncommitted {
    struct nd_node *n;
    nd_ver_t *ver; /* held (users) until fdsched confirms */
    bool busy;     /* a retry is in flight */
  } uncommitted[ND_PUBS_MAX];
  uint64_t commit_retry_ms;
} nd_sched_t;

struct nd_node {
  nd_config_t cfg;
  bool origin;
  rpc_engine_t *e;
  fd_ring_t *ring;
  fd_pool_t *pool;
  st_store_t *store;
  uint16_t port;
  char listen_addr[64];
  uint8_t cluster_key[FD_HMAC_KEY_LEN_MAX];
  size_t cluster_key_len;
  fd_ed25519_key_t admin_pub;
  volatile sig_atomic_t stop;
  bool destroying;
  nd_ver_t vers[ND_VERS_MAX];
  nd_tx_t txs[ND_TX_MAX];
  nd_pub_t pubs[ND_PUBS_MAX];
  nd_warm_t warms[ND_PUBS_MAX];
  nd_bufm_t *bufm; /* one per pool buffer */
  uint32_t *backlog; /* pool indices waiting for a storage slot */
  uint32_t backlog_n;
  uint32_t rx_sinks;      /* sinks with a call: each may fill a window of buffers */
  uint32_t window_chunks; /* nd_config_window_chunks */
  nd_origin_t origins[ND_ORIGINS_MAX];
  uint32_t origins_n;
  int self_origin; /* my index in origins, -1 */
  nd_dl_t dl;
  nd_sched_t sched;
  uint64_t tx_bytes, rx_bytes;
  nd_ver_t *scrubbing;
  uint64_t scrub_bad; /* chunks scrub found bad, over the node's life */
  nd_repair_t *repair; /* reports to fdsched and re-fetch of bad chunks */
  struct nd_engines *engines; /* engine 0: the serving engines (NULL: threads = 1) */
  struct nd_shard *shard;     /* a serving engine's context: its engine (NULL on engine 0) */
};

/* nd_core.c */
int nd_parse_hostport(const char *s, char *addr, size_t addr_len, uint16_t *port);
nd_ver_t *nd_ver_find(nd_node_t *n, const char *name, uint64_t version);
/* Begins (or finds) the version of an encoded manifest. */
int nd_ver_begin(nd_node_t *n, const void *menc, size_t len, nd_ver_t **out);
/* Opens a complete local version for serving. */
int nd_ver_open(nd_node_t *n, const char *name, uint64_t version, nd_ver_t **out);
void nd_ver_put(nd_node_t *n, nd_ver_t *v);
/* The publish of name/version failed: stop serving it, and drop it (and its
 * partial on disk) now if nothing uses it. */
void nd_ver_abort(nd_node_t *n, const char *name, uint64_t version);
bool nd_ver_has(const nd_ver_t *v, uint32_t index);
uint64_t nd_newest_complete(nd_node_t *n, const char *name);
void nd_buf_ref(nd_node_t *n, void *buf);
void nd_buf_unref(nd_node_t *n, void *buf);
void nd_buf_sent(void *buf, void *arg); /* rpc_data_done_fn: unref */
/* nd_sink on_data: store the chunk, forward it */
void nd_sink_on_data(nd_node_t *n, nd_sink_t *s, rpc_call_t *call, void *buf, uint32_t len);
void nd_sink_header(nd_sink_t *s, const Node__ChunkHeader *h);
void nd_sink_start(nd_node_t *n, nd_sink_t *s, rpc_call_t *call); /* a call feeds it */
void nd_sink_end(nd_node_t *n, nd_sink_t *s);                      /* the call is over */
/* May a send to a child take (disk read) or keep (cut-through) another pool
 * buffer? Only while the pool keeps every receiving sink a full window, so a
 * peer within its window never finds the pool empty. */
bool nd_tx_may_hold(const nd_node_t *n);
void nd_backlog_run(nd_node_t *n);
void nd_scrub_tick(nd_node_t *n);
/* Keeps the newest `keep` complete versions of name (0: the configured
 * keep_versions) and removes older idle ones; removed count or -errno. */
int nd_gc(nd_node_t *n, const char *name, uint32_t keep);
int nd_version_complete(nd_node_t *n, nd_ver_t *v, st_done_fn done, void *arg);

/* nd_serve.c */
int nd_serve_register(nd_node_t *n);
void nd_forward(nd_node_t *n, nd_ver_t *v, uint32_t index, uint8_t *buf, uint32_t len);
nd_tx_t *nd_tx_new(nd_node_t *n, nd_tx_kind_t kind, rpc_call_t *call, nd_ver_t *ver);
void nd_tx_pump(nd_tx_t *tx);
void nd_tx_call_gone(nd_tx_t *tx);
void nd_tx_tick(nd_node_t *n);

/* nd_fetch.c */
void nd_order(nd_node_t *n, const Sched__Order *o);
void nd_dl_tick(nd_node_t *n);
void nd_dl_stop(nd_node_t *n);

/* nd_sched.c */
void nd_sched_tick(nd_node_t *n);
/* Commits p's version with fdsched (COMMITTED, the origins that hold it);
 * nd_origin_registered gets the result. */
void nd_sched_register_version(nd_node_t *n, nd_pub_t *p);
/* Tells fdsched a publish began (PENDING: distribution starts now) or
 * failed (aborted); fire and forget. */
void nd_sched_version_state(nd_node_t *n, const nd_ver_t *v, bool aborted);
/* Retries the commits fdsched did not confirm. */
void nd_sched_commit_retry(nd_node_t *n);
void nd_sched_stop(nd_node_t *n);
void nd_sched_poke(nd_node_t *n);

/* nd_origins.c: the origin list. Parses `origins` into out (at most max
 * entries; *self: this node's index or -1); 0, -EINVAL (a bad entry, an id
 * twice) or -EMSGSIZE (too many). */
int nd_origins_parse(const char *spec, const char *self_id, nd_origin_t *out, uint32_t max,
                     uint32_t *count, int *self);
/* Fills in / updates the addresses of bare-id entries from fdsched's list of
 * live origins (Register and Heartbeat replies); fixed entries never change. */
void nd_origins_learn(nd_node_t *n, Sched__Peer *const *peers, size_t count);

/* nd_origin.c */
int nd_origin_register(nd_node_t *n);
void nd_origin_tick(nd_node_t *n);
void nd_origin_registered(nd_node_t *n, nd_pub_t *p, int err);

/* nd_repair.c: scrub's bad chunks and refused manifests reported to fdsched
 * (on heartbeats, until one carrying them succeeds), and bad chunks of
 * complete versions re-fetched from a peer and rewritten in place. */
void nd_repair_bad(nd_node_t *n, const char *name, uint64_t version, uint32_t index);
void nd_repair_rejected(nd_node_t *n, const char *name, uint64_t version, const char *reason);
void nd_repair_order(nd_node_t *n, const Sched__Order *o); /* remembers where chunks are */
void nd_repair_tick(nd_node_t *n);
void nd_repair_hb_fill(nd_node_t *n, Sched__HeartbeatRequest *req);
void nd_repair_hb_done(nd_node_t *n, bool ok);
void nd_repair_destroy(nd_node_t *n); /* after the engine is gone */
/* ---- several engines (nd_engine.c, nd_shared.c) ---- */
#define ND_ENGINES_MAX 64u          /* engines (threads) per node */
#define ND_SHARED_VERS_MAX (2u * ND_VERS_MAX) /* versions shared with serving engines */
#define ND_SHARD_POOL_BUFFERS 32u   /* a serving engine's chunk buffers (at most pool_buffers) */
#define ND_ENGINE_TICK_MS 10u       /* a serving engine retries its streams this often */
#define ND_SHARD_IDLE_MS 5000u      /* a serving engine closes a version read from files idle this long */
#define ND_ENGINE_SYNC_MS 50u       /* engine 0 re-reads bits the sink did not report */
#define ND_ENGINE_LOG_MS 5000u      /* a serving engine logs what it sent this often */
#define ND_MANIFEST_FILE_MAX (64u << 20)
#define ND_DIR_SCAN_MAX 100000u     /* directory entries read for the newest version */
_Static_assert(ND_SHARD_POOL_BUFFERS > ND_POOL_RESERVE + ND_TX_Q, "a serving engine can read");

typedef struct nd_engines nd_engines_t;
typedef struct nd_shared nd_shared_t;
typedef struct nd_shared_ver nd_shared_ver_t;

/* The rpc engine options every engine of the node uses. */
rpc_engine_opts_t nd_engine_opts(const nd_node_t *n);

/* nd_engine.c — engine 0's side */
uint32_t nd_engines_wanted(const nd_config_t *cfg); /* engines this config runs */
int nd_engines_start(nd_node_t *n0);   /* after engine 0 listens; 0 or -errno */
void nd_engines_tick(nd_node_t *n0);   /* each loop turn: publish, retire, wake */
void nd_engines_chunk_durable(nd_node_t *n0, nd_ver_t *v, uint32_t index);
uint64_t nd_engines_tx_bytes(const nd_node_t *n0); /* sent by the serving engines */
void nd_engines_stop(nd_node_t *n0);   /* stops and joins the serving engines */
void nd_engines_destroy(nd_node_t *n0);
/* nd_engine.c — a serving engine's versions (hooks of nd_core.c) */
int nd_shard_ver_open(nd_node_t *n, const char *name, uint64_t version, nd_ver_t **out);
bool nd_shard_ver_has(const nd_ver_t *v, uint32_t index);
uint64_t nd_shard_newest_complete(nd_node_t *n, const char *name);

/* nd_shared.c */
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

#endif /* ND_INT_H */
