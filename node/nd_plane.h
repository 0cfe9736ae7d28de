/*
 * nd_plane.h — the chunk plane: the bottom layer of fdnode (prefix nd_).
 *
 * Owns, for one engine: the versions open on it (nd_ver_t), who holds each
 * pool buffer (reference counts), the receive sink that takes chunks off a
 * call into storage (nd_sink_t), the sender that puts chunks on a call, from
 * disk or straight from the buffer a chunk arrived in (nd_tx_t), and the
 * answers to children (GetManifest, FetchStripe, RepairPull, Ping).
 *
 * Knows no role: a downloader, the origin chain, repair and the serving
 * engines all use the same sink and sender. What sits above it reaches it
 * through these calls and hears back through callbacks that carry their
 * owner; the plane never calls up by name.
 *
 * Where versions come from is one narrow interface, nd_source_t: engine 0's
 * plane reads and writes the chunk store (nd_plane_create with a store); a
 * serving engine's plane reads what engine 0 holds through the source it is
 * given (nd_engine.c) and never touches the store.
 *
 * Guarantees: a chunk is forwarded, stored or reported only after storage
 * verified its CRC32C and SHA-256 against the signed manifest; a receiver's
 * credit goes back, with its buffer, once storage has written its chunk (a
 * chunk is held only after its fdatasync), so a peer within
 * its window never finds the pool empty; every queue is bounded
 * (fd_limits.h, "node").
 *
 * Never: allocates per chunk, blocks, decides what to fetch from whom.
 *
 * Memory: nd_plane_create takes the engine, ring and pool (the caller's, which
 * outlive the plane) and, on engine 0, the store; nd_plane_destroy frees what
 * the plane made. Single-threaded: everything runs on the engine's thread.
 */
#ifndef ND_PLANE_H
#define ND_PLANE_H

#include <stdbool.h>
#include <stdint.h>

#include "fd_assert.h"
#include "fd_hash.h"
#include "fd_limits.h"
#include "fd_log.h"
#include "fd_metrics.h"
#include "fd_pool.h"
#include "fd_rate.h"
#include "fd_time.h"
#include "rpc.h"
#include "storage.h"

typedef struct nd_plane nd_plane_t;
typedef struct nd_ver nd_ver_t;
typedef struct nd_sink nd_sink_t;
typedef struct nd_tx nd_tx_t;

/* ---- what /metrics shows of a plane ------------------------------------------- */

/* How the peer of a sink or a sender is placed against this node: the
 * values of sched.LinkClass (fdsched computes it from both nodes' region,
 * zone and role and sends it in orders; a child repeats its parent's in
 * FetchStripe), plus the publishing client. The label of bytes in /metrics. */
typedef enum nd_peer_class {
  ND_PEER_UNKNOWN = 0,
  ND_PEER_SAME_ZONE = 1,
  ND_PEER_CROSS_ZONE = 2,
  ND_PEER_CROSS_REGION = 3,
  ND_PEER_ORIGIN = 4,
  ND_PEER_PUBLISH = 5, /* fdadmin's publish into the origin head */
  ND_PEER_CLASSES
} nd_peer_class_t;

const char *nd_peer_class_name(nd_peer_class_t l); /* the label value: "same_zone", ... */
nd_peer_class_t nd_peer_class_from_wire(uint32_t v); /* sched.LinkClass; out of range: unknown */

/* The time sends to one child (FetchStripe, RepairPull: the node id it
 * gave; the origin chain's next origin) waited for its credit. The id is
 * written once, before a release store of `used`, and never changes. */
typedef struct nd_child_stall {
  _Atomic bool used;
  char id[FD_NAME_LEN_MAX + 1];
  fd_counter_t blocked_ns;
} nd_child_stall_t;

/* A plane's counters: written by its engine's thread only (fd_counter_add),
 * read from the metrics thread (fd_counter_get). See common/fd_metrics.h. */
typedef struct nd_plane_metrics {
  fd_counter_t rx_bytes[ND_PEER_CLASSES]; /* chunk bytes verified and stored, by sender's class */
  fd_counter_t tx_bytes[ND_PEER_CLASSES]; /* chunk bytes sent, by the receiver's class */
  fd_counter_t chunks_verified;    /* received, CRC32C and SHA-256 matched, stored */
  fd_counter_t chunks_rejected;    /* received, CRC32C or SHA-256 mismatch (-EBADMSG) */
  fd_counter_t blocked_window_ns;  /* sends held back by a peer's flow-control window */
  fd_counter_t blocked_socket_ns;  /* ... by this node's own socket (rpc_block_cause_t) */
  fd_counter_t blocked_pool_ns;    /* sends to children waiting for a pool buffer */
  /* Stored chunks, summed: how long each held its sender's credit from its
   * arrival to its write's completion, and from there on to its fdatasync
   * while the credit was still held (nd_sink.c). */
  fd_counter_t credit_write_ns;
  fd_counter_t credit_sync_ns;
  nd_child_stall_t child[ND_CHILD_STALLS_MAX]; /* first come; full: child_other_ns */
  fd_counter_t child_other_ns;
} nd_plane_metrics_t;

const nd_plane_metrics_t *nd_plane_metrics(const nd_plane_t *p);

/* ---- versions ---------------------------------------------------------------- */

struct nd_ver {
  bool used;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint8_t digest[FD_SHA256_LEN];
  const st_manifest_t *m;
  uint8_t *menc; /* the signed manifest as received */
  size_t menc_len;
  int fd;        /* O_DIRECT, for serving chunks already durable */
  bool complete;
  bool completing;
  bool aborted;  /* its publish failed: not served, dropped once idle */
  bool delta_running;
  uint32_t users;
  uint64_t last_used_ms;
  uint64_t bytes_reused;
  st_version_t *sv; /* engine 0: its storage handle; NULL on a serving engine */
  void *src_ver;    /* the source's own state for it (a serving engine's table entry) */
  void *ext;        /* engine 0: its entry in the serving engines' table (nd_engine.c) */
  /* the delta and the completion under way (nd_ver_delta, nd_ver_complete) */
  void (*delta_done)(void *arg, nd_ver_t *v, int res);
  void *delta_arg;
  st_done_fn complete_done;
  void *complete_arg;
  nd_plane_t *p; /* the plane the slot belongs to */
};

/* Where a plane's versions come from (see the header comment). */
typedef struct nd_source {
  /* Fills v (m, menc, menc_len, digest, complete, fd, src_ver) for a version
   * this plane has not open; 0 or -errno (-ENOENT: not here). */
  int (*open)(void *arg, const char *name, uint64_t version, nd_ver_t *v);
  /* Lets go of what open filled (v is reused after). */
  void (*close)(void *arg, nd_ver_t *v);
  /* Chunk index of v is durable here and may be served. */
  bool (*has)(void *arg, const nd_ver_t *v, uint32_t index);
  /* The newest complete version of name, 0: none. */
  uint64_t (*newest)(void *arg, const char *name);
  /* A reader found chunk index of v rotten: keep it from being served again.
   * 0 when newly marked; -errno otherwise (-ENOTSUP: this source cannot). */
  int (*mark_bad)(void *arg, nd_ver_t *v, uint32_t index);
} nd_source_t;

/* What the plane tells the layer above (each may be NULL). */
typedef struct nd_plane_hooks {
  /* a chunk became durable here (storage acknowledged it) */
  void (*chunk_durable)(void *arg, nd_ver_t *v, uint32_t index);
  /* a reader found a chunk of a complete version rotten and marked it bad */
  void (*chunk_bad)(void *arg, nd_ver_t *v, uint32_t index);
  void *arg;
} nd_plane_hooks_t;

typedef struct nd_plane_opts {
  rpc_engine_t *e;
  fd_ring_t *ring;          /* the engine's */
  fd_pool_t *pool;          /* the engine's bulk pool */
  st_store_t *store;        /* engine 0; NULL: versions come from src */
  const nd_source_t *src;   /* when store is NULL */
  void *src_arg;
  const char *data_dir;     /* where the store keeps its files */
  uint32_t window_chunks;   /* the receive window in chunks, per stream */
  uint32_t keep_versions;   /* GC keeps this many complete versions */
  fd_rate_t *upload;        /* the node's caps (shared by its engines); NULL: none */
  fd_rate_t *download;      /* engine 0 only: it alone receives */
  nd_plane_hooks_t hooks;
} nd_plane_opts_t;

/* NULL with errno (ENOMEM). */
nd_plane_t *nd_plane_create(const nd_plane_opts_t *o);
/* Closes every open version. The engine must be gone (every call ended) and
 * nothing of the store in flight. */
void nd_plane_destroy(nd_plane_t *p);
/* Answers GetManifest, FetchStripe, RepairPull and Ping on the engine. */
int nd_plane_serve(nd_plane_t *p);
/* One loop turn: chunks waiting for a storage slot, senders waiting for a
 * buffer. */
void nd_plane_tick(nd_plane_t *p);
/* Nothing of the plane's is in flight on the store (sinks, completions). */
bool nd_plane_idle(const nd_plane_t *p);
/* One line for a stall report: pool buffers free, the storage backlog, sinks. */
void nd_plane_describe(const nd_plane_t *p, char *buf, size_t len);
uint64_t nd_plane_tx_bytes(const nd_plane_t *p); /* sent to children */
uint64_t nd_plane_rx_bytes(const nd_plane_t *p); /* received and stored */
/* Open version slot i (0..ND_VERS_MAX-1), or NULL when the slot is free. */
nd_ver_t *nd_plane_ver_at(nd_plane_t *p, uint32_t i);

nd_ver_t *nd_ver_find(nd_plane_t *p, const char *name, uint64_t version);
/* Opens a version (from the source) for serving or reading; 0, -EBUSY (every
 * slot in use), -ENOENT, -EINVAL (name). */
int nd_ver_open(nd_plane_t *p, const char *name, uint64_t version, nd_ver_t **out);
/* Engine 0: begins (or finds) the version of an encoded, signed manifest:
 * 0, -EKEYREJECTED (signature), -EBADMSG, -EEXIST (another manifest holds
 * that number), -EBUSY, -ENOSPC, -EIO. */
int nd_ver_begin(nd_plane_t *p, const void *menc, size_t len, nd_ver_t **out);
/* A user's reference: a used version is never evicted. */
void nd_ver_get(nd_ver_t *v);
void nd_ver_put(nd_ver_t *v);
/* Closes v now if nothing uses it or has it in flight; true when closed. */
bool nd_ver_close_idle(nd_plane_t *p, nd_ver_t *v);
bool nd_ver_has(nd_plane_t *p, const nd_ver_t *v, uint32_t index);
/* Whether the delta under way still means to copy chunk `index` locally (a
 * download does not ask its parents for it; st_version_reusing). */
bool nd_ver_reusing(const nd_plane_t *p, const nd_ver_t *v, uint32_t index);
uint64_t nd_newest_complete(nd_plane_t *p, const char *name);
/* Engine 0: the publish of name/version failed; it is served no more and
 * dropped (with its partial on disk) once nothing uses it. */
void nd_ver_abort(nd_plane_t *p, const char *name, uint64_t version);
/* Engine 0: reuses local chunks for v (storage's delta: copy or clone), then
 * done(arg, v, res). 0 when started (v is held until done), -EALREADY when a
 * delta of v is already running, or storage's -errno. */
int nd_ver_delta(nd_plane_t *p, nd_ver_t *v, void (*done)(void *arg, nd_ver_t *v, int res),
                 void *arg);
/* Engine 0: completes v (every chunk durable): rename, current switched, GC.
 * 0 (done runs later), -EALREADY (complete), -EINPROGRESS, -EAGAIN
 * (operations in flight: try again next turn). */
int nd_ver_complete(nd_plane_t *p, nd_ver_t *v, st_done_fn done, void *arg);
/* Engine 0: keeps the newest `keep` complete versions of name (0: the
 * configured keep_versions), removing older idle ones; count or -errno. */
int nd_gc(nd_plane_t *p, const char *name, uint32_t keep);
/* Engine 0: chunk index of v was found rotten: marked bad (not served, not
 * reused) and handed to hooks.chunk_bad. */
void nd_ver_chunk_bad(nd_plane_t *p, nd_ver_t *v, uint32_t index);

/* ---- the receive sink ------------------------------------------------------------ */

/* A sink's owner hears of every chunk storage finished with: res 0 (stored),
 * -EALREADY (already held), or the error (the chunk stays missing). */
typedef void (*nd_sink_chunk_fn)(void *owner, nd_sink_t *s, uint32_t index, int res);

/* A receiver of chunks on one call at a time (a stripe download, a publish,
 * a replicate, a repair pull): a header, then the chunk in one DATA frame,
 * verified and into storage; forwarded to children once verified. The
 * struct is the owner's and must outlive every chunk it handed storage
 * (puts == 0). */
struct nd_sink {
  nd_plane_t *p;
  nd_sink_chunk_fn on_chunk; /* may be NULL */
  void *owner;
  rpc_call_t *call;
  uint32_t gen;  /* bumped when the call ends: late puts skip its credit */
  nd_ver_t *ver; /* the version chunks go into (the owner's reference) */
  uint32_t puts; /* handed to storage (or waiting for a slot), not done */
  bool has_hdr;
  uint32_t hdr_index, hdr_len;
  bool forward;  /* verified chunks go on to children (cut-through) */
  bool repair;   /* rewrite bad chunks of a complete version in place */
  int err;       /* first chunk error since the last nd_sink_start */
  uint64_t rx_bytes;
  nd_peer_class_t link; /* the sender's (metrics); the owner sets it after nd_sink_start */
  /* credit the download cap holds back: returned by nd_plane_tick, oldest
   * sink first, as the bucket refills (nd_sink.c) */
  uint32_t owed;
  bool owing;
  nd_sink_t *owing_next;
};

void nd_sink_init(nd_sink_t *s, nd_plane_t *p, nd_sink_chunk_fn on_chunk, void *owner);
/* For a new version: keeps the count of puts still in flight (and moves the
 * generation on), clears the rest but the plane and owner. */
void nd_sink_reset(nd_sink_t *s);
void nd_sink_start(nd_sink_t *s, rpc_call_t *call); /* a call feeds it */
void nd_sink_header(nd_sink_t *s, const Node__ChunkHeader *h);
/* An on_data callback's frame: buf (a pool buffer) is the sink's now. */
void nd_sink_data(nd_sink_t *s, rpc_call_t *call, void *buf, uint32_t len);
void nd_sink_end(nd_sink_t *s); /* the call is over */

/* May a send to a child take (disk read) or keep (cut-through) another pool
 * buffer? Only while the pool keeps every receiving sink a full window. */
bool nd_plane_may_hold(const nd_plane_t *p);
/* May one more sink start receiving (its window fits the pool beside the
 * windows of the sinks receiving already and the reserve)? */
bool nd_plane_may_receive(const nd_plane_t *p);

/* ---- the sender ------------------------------------------------------------------- */

/* How a sender frames its stream: a child's FetchStripe / RepairPull (the
 * plane's own) or an origin's Replicate (the origin role's). */
typedef struct nd_tx_ops {
  int (*header)(nd_tx_t *tx, const Node__ChunkHeader *h); /* 0, -EAGAIN, -errno */
  int (*end)(nd_tx_t *tx);                                /* all sent: 0 or -EAGAIN */
  void (*fail)(nd_tx_t *tx, rpc_code_t code, const char *why); /* e.g. a rotten chunk */
} nd_tx_ops_t;

/* A sender of chunks on one call; NULL when every slot is in use (or no
 * memory). Holds ver (users) until the call is gone. call may be NULL and
 * attached later (nd_tx_attach). */
nd_tx_t *nd_tx_new(nd_plane_t *p, const nd_tx_ops_t *ops, void *owner, rpc_call_t *call,
                   nd_ver_t *ver);
void *nd_tx_owner(const nd_tx_t *tx);
rpc_call_t *nd_tx_call(const nd_tx_t *tx);
const nd_ver_t *nd_tx_ver(const nd_tx_t *tx);
void nd_tx_attach(nd_tx_t *tx, rpc_call_t *call);
void nd_tx_set_peer_class(nd_tx_t *tx, nd_peer_class_t link); /* the receiver's (metrics) */
/* The receiver's node id: the time its credit held the sends back is
 * counted for it (nd_plane_metrics_t.child). Empty or NULL: not per child. */
void nd_tx_set_peer_id(nd_tx_t *tx, const char *id);
void nd_tx_want(nd_tx_t *tx, uint32_t index); /* chunk index is still to send */
uint32_t nd_tx_wanted(const nd_tx_t *tx);     /* chunks still to send, not queued */
void nd_tx_pump(nd_tx_t *tx);                  /* send what can go now */
void nd_tx_call_gone(nd_tx_t *tx);             /* the call ended: the slot is freed */

#endif /* ND_PLANE_H */
