/* nd_plane_int.h — the chunk plane's own state, shared by its files only
 * (nd_plane.c, nd_ver.c, nd_sink.c, nd_tx.c, nd_serve.c). */
#ifndef ND_PLANE_INT_H
#define ND_PLANE_INT_H

#include "fd_assert.h"
#include "nd_plane.h"

/* Per pool buffer: who holds it (a put until its chunk is written, each
 * send to a child until the kernel no longer reads it). */
typedef struct nd_bufm {
  uint32_t refs;
  nd_plane_t *p;
  uint32_t idx;
} nd_bufm_t;

/* A received chunk on its way into storage, from its DATA frame to its
 * fdatasync (nd_sink.c). It holds its buffer only until the chunk is written,
 * so there are at most two pool counts of them: one per buffer, and the
 * written ones storage lets wait for their fdatasync (st_chunk_put_written). */
typedef struct nd_put {
  nd_plane_t *p;
  nd_sink_t *sink;
  nd_ver_t *ver;  /* held (users) until storage is done with the chunk */
  uint8_t *buf;   /* the pool buffer, until the write is over (then NULL) */
  uint32_t gen;   /* the sink's when the frame came: its call's credit */
  uint32_t chunk, len;
  bool credited;  /* the sender's credit went back (at the write) */
  uint64_t arrived_ns, written_ns; /* the credit's stages (nd_plane_metrics_t.credit_*) */
  struct nd_put *next_free;
} nd_put_t;

typedef struct nd_tx_item {
  uint8_t *buf;
  uint32_t index, len;
  bool hdr_sent;
} nd_tx_item_t;

typedef struct nd_read {
  fd_op_t op;
  nd_tx_t *tx;
  uint8_t *buf;
  uint32_t index, len, got;
  bool busy;
} nd_read_t;

struct nd_tx {
  bool used;
  nd_plane_t *p;
  const nd_tx_ops_t *ops;
  void *owner;
  rpc_call_t *call;
  bool ended;    /* ops->end done */
  nd_ver_t *ver;
  uint8_t *want; /* bit per chunk: still to send and not queued */
  uint32_t want_count, scan;
  nd_tx_item_t q[ND_TX_Q];
  uint32_t q_head, q_len;
  nd_read_t reads[ND_TX_READS];
  uint32_t reads_busy;
  uint64_t tx_bytes;
  nd_peer_class_t link;
  uint64_t pool_wait_since_ns; /* a chunk to read waits for a pool buffer since (0: not) */
  nd_child_stall_t *child;     /* the receiver's slot (nd_tx_set_peer_id), or NULL */
  bool child_other;            /* it has an id but the slots are full: child_other_ns */
  uint64_t window_seen_ns;     /* of the call's window waits, what is counted already */
};

struct nd_plane {
  rpc_engine_t *e;
  fd_ring_t *ring;
  fd_pool_t *pool;
  st_store_t *store; /* engine 0 */
  const nd_source_t *src;
  void *src_arg;
  char data_dir[FD_PATH_LEN_MAX];
  uint32_t window_chunks;
  uint32_t keep_versions;
  nd_plane_hooks_t hooks;
  nd_ver_t vers[ND_VERS_MAX];
  nd_tx_t txs[ND_TX_MAX];
  nd_bufm_t *bufm;   /* one per pool buffer */
  nd_put_t *puts;    /* two per pool buffer (nd_put_t) */
  nd_put_t *put_free;
  nd_put_t **backlog; /* puts waiting for a storage slot, in arrival order (each holds a buffer) */
  uint32_t backlog_n;
  uint32_t rx_sinks; /* sinks with a call: each may fill a window of buffers */
  fd_rate_t *upload, *download; /* the node's caps; NULL: none */
  nd_sink_t *owing_head, *owing_tail; /* sinks whose credit the download cap holds */
  uint64_t tx_bytes, rx_bytes;
  nd_plane_metrics_t m;
  uint64_t m_published_ns; /* the rpc engine's figures were copied into m then */
};

/* nd_ver.c */
extern const nd_source_t nd_store_source; /* engine 0: arg is the plane */
void nd_vers_close_all(nd_plane_t *p);

/* nd_sink.c */
void nd_credit_run(nd_plane_t *p); /* returns held-back credit the download cap allows now */
void nd_buf_ref(nd_plane_t *p, void *buf);
void nd_buf_unref(nd_plane_t *p, void *buf);
void nd_backlog_run(nd_plane_t *p);

/* nd_tx.c */
/* A verified chunk that just arrived goes out to the senders that want it,
 * from the buffer it is in. */
void nd_forward(nd_plane_t *p, nd_ver_t *v, uint32_t index, uint8_t *buf, uint32_t len);
void nd_tx_tick(nd_plane_t *p);
void nd_tx_stall_count(nd_tx_t *tx); /* the receiver's window waits, into its child slot */
void nd_tx_free_all(nd_plane_t *p); /* the want bitmaps, at destroy */

#endif /* ND_PLANE_INT_H */
