/*
 * rpc.h — fdist's gRPC-like RPC layer on io_uring.
 *
 * Owns: the wire frame, the cluster-key handshake (with the admin and writer
 * roles a client may prove on top), protobuf-c service
 * dispatch, calls (unary, server-streaming, client-streaming) with deadlines,
 * cancellation and status codes, bulk DATA frames landed in registered
 * aligned buffers, flow control, and the per-thread io_uring engine that
 * drives all of it (storage/ queues its disk ops on the same ring).
 *
 * Guarantees: every length and index from the wire is checked; a peer that
 * breaks the protocol (bad frame, unknown method, undecodable message, window
 * overrun, stall mid-frame, flood) loses its connection only, with a log line
 * and a counter, and every call on it ends with RPC_UNAVAILABLE. Each call ends
 * exactly once (on_done on clients, on_close on servers). Nothing is buffered
 * without bound: sends beyond the stream or connection window return -EAGAIN
 * and the caller waits for on_writable.
 *
 * Never: blocks inside the loop, takes a lock, interprets chunk bytes, or
 * allocates on the data path: decoding uses a per-engine arena reset after
 * every callback, per-connection buffers are allocated when a connection
 * opens, DATA lands in the caller's bulk pool. Only control messages over
 * RPC_LARGE_MSG (a manifest, a node list) are packed into, or joined in, a
 * heap buffer of their size.
 *
 * Threads: an engine belongs to the thread that created it; every function
 * taking an engine, connection or call must run on that thread, except
 * rpc_engine_stop and rpc_engine_post's target argument.
 *
 * Memory: the caller owns the engine (rpc_engine_destroy), the bulk pool it
 * passes in, and any rpc_msg_t it posts. Connections and calls are owned by
 * the engine: a client call pointer is valid until on_done returns, a server
 * call pointer until on_close returns. Decoded messages handed to callbacks
 * live only during the callback: copy what you keep.
 */
#ifndef RPC_H
#define RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_cert.h"
#include "fd_hash.h"
#include "fd_limits.h"
#include "fd_pool.h"
#include "fd_ring.h"
#include "node.pb-c.h"
#include "origin.pb-c.h"
#include "rpc.pb-c.h"
#include "scheduler.pb-c.h"

/* ---- the wire frame (docs/ARCHITECTURE.md, "The wire frame") ---- */

#define RPC_MAGIC 0x54534446u /* "FDST" read as a little-endian u32 */
#define RPC_VERSION 1u

typedef enum rpc_frame_type {
  RPC_FRAME_REQUEST = 1,   /* client -> server: a request message (first one opens the stream) */
  RPC_FRAME_RESPONSE = 2,  /* server -> client: a response message, or the final status */
  RPC_FRAME_DATA = 3,      /* bulk bytes of a stream, either direction */
  RPC_FRAME_CANCEL = 4,    /* client -> server: abandon the stream */
  RPC_FRAME_PING = 5,      /* keepalive; answered with PING|ACK */
  RPC_FRAME_GOAWAY = 6,    /* the sender is closing; payload fdrpc.GoAway */
  RPC_FRAME_HANDSHAKE = 7, /* stream 0, method id = step 1..4 */
  RPC_FRAME_WINDOW = 8,    /* payload: u32 LE bytes of credit returned (stream 0: connection) */
} rpc_frame_type_t;

#define RPC_FLAG_END 0x1u    /* last frame of this side of the stream */
#define RPC_FLAG_OPEN 0x2u   /* REQUEST: opens the stream; payload starts with rpc_open_t */
#define RPC_FLAG_NOMSG 0x4u  /* REQUEST: no message follows (client-streaming open or close) */
#define RPC_FLAG_STATUS 0x8u /* RESPONSE: payload is fdrpc.Status, ends the call */
#define RPC_FLAG_ACK 0x10u   /* PING: reply */
#define RPC_FLAGS_KNOWN 0x1fu

#define RPC_FRAME_HEADER_LEN 24u
#define RPC_OPEN_LEN 8u /* u32 LE timeout_ms, u32 LE reserved (0) */

typedef struct rpc_frame_header {
  uint8_t version;
  uint8_t type;
  uint16_t flags;
  uint32_t stream_id;
  uint32_t method_id; /* service << 16 | method index */
  uint32_t payload_len;
} rpc_frame_header_t;

/* Writes the 24-byte header (magic, fields, CRC32C of bytes 0..19). */
void rpc_frame_encode(const rpc_frame_header_t *h, uint8_t out[RPC_FRAME_HEADER_LEN]);
/* Parses and validates len bytes as a header against payload_max.
 * 0; -EAGAIN when len < 24; -EPROTO (bad magic, version, type, flags, CRC,
 * stream 0 where a stream is needed); -EMSGSIZE (payload over payload_max). */
int rpc_frame_decode(const uint8_t *buf, size_t len, uint32_t payload_max,
                     rpc_frame_header_t *out);

#define RPC_METHOD_ID(svc, idx) ((uint32_t)(svc) << 16 | (uint32_t)(idx))
#define RPC_SVC_SCHED 1u
#define RPC_SVC_NODE 2u
#define RPC_SVC_ORIGIN 3u

/* ---- status codes (gRPC numbering) ---- */

typedef enum rpc_code {
  RPC_OK = 0,
  RPC_CANCELLED = 1,
  RPC_UNKNOWN = 2,
  RPC_INVALID_ARGUMENT = 3,
  RPC_DEADLINE_EXCEEDED = 4,
  RPC_NOT_FOUND = 5,
  RPC_ALREADY_EXISTS = 6,
  RPC_PERMISSION_DENIED = 7,
  RPC_RESOURCE_EXHAUSTED = 8,
  RPC_FAILED_PRECONDITION = 9,
  RPC_ABORTED = 10,
  RPC_OUT_OF_RANGE = 11,
  RPC_UNIMPLEMENTED = 12,
  RPC_INTERNAL = 13,
  RPC_UNAVAILABLE = 14,
  RPC_DATA_LOSS = 15,
  RPC_UNAUTHENTICATED = 16,
} rpc_code_t;

const char *rpc_code_name(rpc_code_t code);
/* The status a handler's -errno becomes (-ETIMEDOUT: DEADLINE_EXCEEDED ...). */
rpc_code_t rpc_code_from_errno(int err);

/* ---- the handshake (pure functions; rpc_auth.c) ---- */

#define RPC_NONCE_LEN 32u
/* proof = HMAC-SHA256(key, label | nonce_client | nonce_server), label
 * "fdist-srv" for the server's proof and "fdist-cli" for the client's. */
int rpc_auth_proof(const uint8_t *key, size_t key_len, bool server,
                   const uint8_t nc[RPC_NONCE_LEN], const uint8_t ns[RPC_NONCE_LEN],
                   uint8_t out[FD_SHA256_LEN]);
/* The bytes the admin key signs: "fdist-admin" | nonce_client | nonce_server. */
#define RPC_ADMIN_TRANSCRIPT_LEN (11u + 2u * RPC_NONCE_LEN)
void rpc_auth_admin_transcript(const uint8_t nc[RPC_NONCE_LEN], const uint8_t ns[RPC_NONCE_LEN],
                               uint8_t out[RPC_ADMIN_TRANSCRIPT_LEN]);
/* The bytes a writer key signs: "fdist-writer" | nonce_client | nonce_server
 * (its own label, so neither role's signature passes for the other's). */
#define RPC_WRITER_TRANSCRIPT_LEN (12u + 2u * RPC_NONCE_LEN)
void rpc_auth_writer_transcript(const uint8_t nc[RPC_NONCE_LEN], const uint8_t ns[RPC_NONCE_LEN],
                                uint8_t out[RPC_WRITER_TRANSCRIPT_LEN]);

/* The role a connection proved at the handshake, ordered: each may do what
 * the ones below it may (rpc_call_role(call) >= RPC_ROLE_WRITER lets a
 * writer or the admin through). */
typedef enum rpc_role {
  RPC_ROLE_MEMBER = 0, /* the cluster key only: daemons, read-only clients */
  RPC_ROLE_WRITER = 1, /* a writer key the admin certified (role writer), not revoked */
  RPC_ROLE_ADMIN = 2,  /* the admin key */
} rpc_role_t;
const char *rpc_role_name(rpc_role_t role);

/* ---- the engine ---- */

typedef struct rpc_engine rpc_engine_t;
typedef struct rpc_conn rpc_conn_t;
typedef struct rpc_call rpc_call_t;

/* How DATA buffers are sent; none copies in userspace (docs/ARCHITECTURE.md,
 * "Zero-copy forwarding", has the measurements behind the default). */
typedef enum rpc_bulk_send {
  RPC_BULK_SEND_AUTO = 0, /* ZC to remote peers, plain SEND to loopback ones (default) */
  RPC_BULK_SEND_ZC,       /* IORING_OP_SEND_ZC from the registered pool buffer */
  RPC_BULK_SEND_COPY,     /* IORING_OP_SEND from the same buffer: the kernel copies */
} rpc_bulk_send_t;

typedef struct rpc_engine_opts {
  int cpu;               /* pin the creating thread to this CPU; -1: do not pin */
  unsigned ring_entries; /* 0: FD_RING_ENTRIES_DEFAULT */
  uint32_t payload_max;  /* 0: FD_FRAME_PAYLOAD_MAX_DEFAULT; at most FD_FRAME_PAYLOAD_MAX */
  uint32_t conns_max;    /* 0: RPC_CONNS_DEFAULT */
  uint32_t streams_per_conn_max;  /* 0: RPC_STREAMS_PER_CONN_DEFAULT */
  uint32_t stream_window_bytes;   /* 0: RPC_STREAM_WINDOW_DEFAULT */
  uint32_t conn_window_bytes;     /* 0: RPC_CONN_WINDOW_DEFAULT */
  uint32_t stall_ms;     /* close a peer silent this long mid-frame or mid-handshake; 0: default */
  uint32_t rx_bufs;      /* provided buffers for multishot recv, a power of two; 0: RPC_RX_BUFS */
  const uint8_t *cluster_key; /* required: both sides of every connection hold it */
  size_t cluster_key_len;     /* 16..FD_HMAC_KEY_LEN_MAX */
  const uint8_t *admin_pub;   /* server: trusted admin key; NULL: nobody is admin or writer */
  const fd_ed25519_key_t *admin_key; /* client: private key proving the admin role, or NULL */
  /* Client: a writer key (private) and its certificate (an encoded fd_cert
   * of role writer for that key), proving the writer role; NULL: none. Not
   * with admin_key. Copied; checked at rpc_engine_create (-EINVAL). */
  const fd_ed25519_key_t *writer_key;
  const uint8_t *writer_cert;
  size_t writer_cert_len;
  /* Server: writer keys refused at the handshake (fd_cert_revwatch's list),
   * or NULL. Only read, on the engine's thread: the owner may update it in
   * place between loop turns, then call rpc_engine_recheck_writers. Must
   * outlive the engine. */
  const fd_cert_revlist_t *revocations;
  fd_pool_t *bulk_pool;  /* DATA frames land here; registered with the ring unless that
                            is charged to a locked-memory limit (rpc_engine_pool_registered);
                            NULL: no bulk */
  rpc_bulk_send_t bulk_send;
  bool reuseport;        /* rpc_listen sets SO_REUSEPORT: engines on several threads share
                            one port and the kernel spreads connections among them */
} rpc_engine_opts_t;

typedef struct rpc_stats {
  uint64_t conns_accepted, conns_connected, conns_closed;
  uint64_t auth_failures, protocol_errors, stalls, floods;
  uint64_t calls_started, calls_served, deadlines, cancels;
  uint64_t frames_rx, frames_tx, bytes_rx, bytes_tx, data_frames_rx, data_frames_tx;
  uint64_t rx_copied_bytes; /* DATA bytes copied out of provided buffers (not received direct) */
  uint64_t rx_nobufs;       /* multishot recvs stopped for want of provided buffers, re-armed */
  uint64_t blocked_ns;      /* total time sends were held back, whatever the cause: */
  uint64_t blocked_window_ns; /* ... the peer had not returned credit (its window was full) */
  uint64_t blocked_socket_ns; /* ... this side's bytes had not left it yet (rpc_block_cause_t) */
} rpc_stats_t;

/* Why a call's send was held back (rpc_call_send, rpc_call_send_data
 * returning -EAGAIN), judged when it fails and again at every tick while it
 * waits: SOCKET while this connection's own bytes have not left the node (a
 * send of ours still in flight on the ring, the connection's send queue
 * full, or bytes in the kernel's send queue not yet sent: SIOCOUTQNSD), so
 * the link or TCP is the limit; WINDOW otherwise: everything sent, and the
 * peer has not returned the credit (it holds the bytes, or they are on the
 * wire). */
typedef enum rpc_block_cause {
  RPC_BLOCK_WINDOW = 0,
  RPC_BLOCK_SOCKET = 1,
  RPC_BLOCK_CAUSES
} rpc_block_cause_t;

/* Creates an engine on (and for) the calling thread. NULL with errno set. */
rpc_engine_t *rpc_engine_create(const rpc_engine_opts_t *opts);
/* Closes every connection (calls end with UNAVAILABLE) and frees the engine. */
void rpc_engine_destroy(rpc_engine_t *e);
/* The engine's ring, for storage/ to queue disk ops on. */
fd_ring_t *rpc_engine_ring(rpc_engine_t *e);
/* True when bulk_pool is the ring's fixed-buffer table (buffer number =
 * fd_pool_index), so *_fixed ops may use it. False without a pool, or when
 * pinning it would be charged to RLIMIT_MEMLOCK (a finite limit and no
 * CAP_IPC_LOCK: an ordinary user, 8 MiB shared by all their processes on
 * Debian 12): the engine then uses the pool unregistered, sends bulk data
 * copied under RPC_BULK_SEND_AUTO, and falls back from RPC_BULK_SEND_ZC to
 * copied sends on a connection whose zero-copy send the limit refused. */
bool rpc_engine_pool_registered(const rpc_engine_t *e);
/* One loop turn: timers, submit, wait up to timeout_ms (0: do not wait) for a
 * completion, run callbacks. Returns completions handled or -errno. */
int rpc_engine_run_once(rpc_engine_t *e, uint32_t timeout_ms);
/* Runs until rpc_engine_stop. */
int rpc_engine_run(rpc_engine_t *e);
/* Any thread: makes rpc_engine_run return within one tick. */
void rpc_engine_stop(rpc_engine_t *e);
void rpc_engine_get_stats(const rpc_engine_t *e, rpc_stats_t *out);
/* Server: closes every connection whose writer certificate has expired or
 * whose key the revocations list now names (counted as auth_failures), so a
 * revoked writer does not keep the role it proved before. Returns how many
 * were closed. Call after the list changed (and now and then for expiry). */
uint32_t rpc_engine_recheck_writers(rpc_engine_t *e);

/* Cross-engine message through IORING_OP_MSG_RING. The caller owns msg until
 * fn runs on the target engine's thread; fn may free or post it back. If the
 * kernel cannot deliver it (the target ring's CQ overflowed), fn runs on the
 * sender's thread with target NULL, so the sender gets msg back. Call from
 * the sending engine's thread. 0 or -errno. */
typedef struct rpc_msg rpc_msg_t;
typedef void (*rpc_msg_fn)(rpc_engine_t *target, rpc_msg_t *msg);
struct rpc_msg {
  fd_op_t op;   /* private: completes on the target */
  fd_op_t sent; /* private: completes on the sender */
  rpc_engine_t *target;
  rpc_msg_fn fn;
  void *arg;
};
int rpc_engine_post(rpc_engine_t *from, rpc_engine_t *to, rpc_msg_t *msg);

/* ---- servers ---- */

typedef enum rpc_kind { RPC_UNARY, RPC_SERVER_STREAM, RPC_CLIENT_STREAM } rpc_kind_t;

/* Listens on addr:port (IPv4 dotted, port 0: ephemeral; *bound_port gets it).
 * Accepts with multishot accept. 0 or -errno. */
int rpc_listen(rpc_engine_t *e, const char *addr, uint16_t port, uint16_t *bound_port);

/* A handler runs for each request message; for client-streaming it runs once
 * more with req == NULL at the end of the client's stream. It answers with
 * rpc_call_send / rpc_call_send_data / rpc_call_finish, now or later. A
 * negative return finishes the call with rpc_code_from_errno. */
typedef int (*rpc_handler_fn)(rpc_call_t *call, const ProtobufCMessage *req, void *ctx);
typedef void (*rpc_typed_fn)(void);
typedef struct rpc_method_reg {
  uint16_t service_id;
  const ProtobufCServiceDescriptor *service;
  uint32_t method_index;
  rpc_kind_t kind;
  bool admin_only;
  rpc_handler_fn thunk; /* calls typed (cast back to its own type) */
  rpc_typed_fn typed;
  void *ctx;
} rpc_method_reg_t;
/* 0, -EINVAL (index out of the descriptor), -EEXIST, -ENOSPC. */
int rpc_serve(rpc_engine_t *e, const rpc_method_reg_t *reg);

/* ---- calls, both sides ---- */

typedef struct rpc_call_cbs {
  /* client: each response message; server: unused (the handler gets them) */
  void (*on_msg)(rpc_call_t *call, const ProtobufCMessage *msg, void *arg);
  /* a DATA frame landed in buf (a bulk_pool buffer, now the callee's: give it
   * back with fd_pool_put, or forward it), then call rpc_call_data_done */
  void (*on_data)(rpc_call_t *call, void *buf, uint32_t len, void *arg);
  /* the window reopened after a send returned -EAGAIN */
  void (*on_writable)(rpc_call_t *call, void *arg);
  /* client: the call ended (exactly once); server: the call is gone (on_close) */
  void (*on_done)(rpc_call_t *call, rpc_code_t code, const char *message, void *arg);
} rpc_call_cbs_t;

/* Server: callbacks for a call (call from the handler); arg is the call's
 * state, handed to every callback and returned by rpc_call_arg. */
void rpc_call_set_cbs(rpc_call_t *call, const rpc_call_cbs_t *cbs, void *arg);
void *rpc_call_arg(const rpc_call_t *call);
/* Sends one message (server: a response; client: a client-stream request).
 * 0, -EAGAIN (window full: wait for on_writable), -ECANCELED (call over),
 * -EMSGSIZE, -ENOTCONN. */
int rpc_call_send(rpc_call_t *call, const ProtobufCMessage *msg);
/* Sends buf as one DATA frame, without copying it. done(buf) runs once the
 * kernel no longer reads buf (after the zero-copy notification). Same errors
 * as rpc_call_send; on error done is not called. */
typedef void (*rpc_data_done_fn)(void *buf, void *arg);
int rpc_call_send_data(rpc_call_t *call, const void *buf, uint32_t len, rpc_data_done_fn done,
                       void *done_arg);
/* Returns len bytes of receive credit to the peer after on_data's buffer is
 * consumed (written, forwarded); until then the peer's window stays shut. */
void rpc_call_data_done(rpc_call_t *call, uint32_t len);
/* Server: ends the call with a status (after any messages). 0 or -ECANCELED. */
int rpc_call_finish(rpc_call_t *call, rpc_code_t code, const char *message);
/* Client: ends its stream of requests (client-streaming). */
int rpc_call_close_send(rpc_call_t *call);
/* Client: abandons the call; on_done runs with RPC_CANCELLED. */
void rpc_call_cancel(rpc_call_t *call);
/* Nanoseconds this call's sends have been held back by the peer's window
 * (0 when not blocked): the backpressure the scheduler acts on. */
uint64_t rpc_call_blocked_ns(const rpc_call_t *call);
/* Nanoseconds this call's sends were held back for cause over its life so
 * far, the wait under way included. */
uint64_t rpc_call_blocked_total_ns(const rpc_call_t *call, rpc_block_cause_t cause);
bool rpc_call_is_admin(const rpc_call_t *call); /* rpc_call_role(call) == RPC_ROLE_ADMIN */
rpc_role_t rpc_call_role(const rpc_call_t *call);
uint64_t rpc_call_deadline_ns(const rpc_call_t *call); /* fd_now_ns() clock */
rpc_conn_t *rpc_call_conn(const rpc_call_t *call);
rpc_typed_fn rpc_call_typed_fn(const rpc_call_t *call);

/* ---- clients ---- */

typedef struct rpc_conn_cbs {
  void (*on_ready)(rpc_conn_t *conn, void *arg);             /* handshake done */
  void (*on_closed)(rpc_conn_t *conn, int err, void *arg);   /* once; conn gone after */
} rpc_conn_cbs_t;

/* Connects and runs the handshake; NULL with errno. The conn is the engine's;
 * it is valid until on_closed returns. */
rpc_conn_t *rpc_connect(rpc_engine_t *e, const char *addr, uint16_t port,
                        const rpc_conn_cbs_t *cbs, void *arg);
void rpc_conn_close(rpc_conn_t *conn);
bool rpc_conn_is_ready(const rpc_conn_t *conn);
bool rpc_conn_is_admin(const rpc_conn_t *conn);
/* Server: the role the peer proved. Client: the role the server granted. */
rpc_role_t rpc_conn_role(const rpc_conn_t *conn);
/* Nanoseconds the connection's sends have been held back, 0 when not. */
uint64_t rpc_conn_blocked_ns(const rpc_conn_t *conn);

/* Starts a call. req is sent at once (unary, server-streaming) or must be
 * NULL (client-streaming: send with rpc_call_send, end with close_send).
 * timeout_ms 0 means RPC_TIMEOUT_MS_DEFAULT. NULL with errno: ENOTCONN,
 * ENOSPC (too many streams), EMSGSIZE, EINVAL (request type or kind does not
 * match the method), EAGAIN (the connection's window or send buffer is
 * full: try again after completions). */
rpc_call_t *rpc_call_start(rpc_conn_t *conn, uint16_t service_id,
                           const ProtobufCServiceDescriptor *service, uint32_t method_index,
                           rpc_kind_t kind, const ProtobufCMessage *req, uint32_t timeout_ms,
                           const rpc_call_cbs_t *cbs, void *arg);

/* ---- typed registration and stubs, one pair per method ----
 * rpc_serve_<name>(engine, handler, ctx) and
 * rpc_start_<name>(conn, req, timeout_ms, cbs, arg). */
#define RPC_METHODS(X)                                                                        \
  X(sched_register, RPC_SVC_SCHED, sched__scheduler__descriptor, 0, Sched__RegisterRequest,  \
    RPC_UNARY, false)                                                                         \
  X(sched_heartbeat, RPC_SVC_SCHED, sched__scheduler__descriptor, 1, Sched__HeartbeatRequest, \
    RPC_UNARY, false)                                                                         \
  X(sched_watch_orders, RPC_SVC_SCHED, sched__scheduler__descriptor, 2,                       \
    Sched__WatchOrdersRequest, RPC_SERVER_STREAM, false)                                      \
  X(sched_register_version, RPC_SVC_SCHED, sched__scheduler__descriptor, 3,                   \
    Sched__RegisterVersionRequest, RPC_UNARY, false)                                          \
  X(sched_list_versions, RPC_SVC_SCHED, sched__scheduler__descriptor, 4,                      \
    Sched__ListVersionsRequest, RPC_UNARY, false)                                             \
  X(sched_list_nodes, RPC_SVC_SCHED, sched__scheduler__descriptor, 5, Sched__ListNodesRequest, \
    RPC_UNARY, false)                                                                         \
  X(sched_status, RPC_SVC_SCHED, sched__scheduler__descriptor, 6, Sched__StatusRequest,       \
    RPC_UNARY, false)                                                                         \
  X(sched_drain, RPC_SVC_SCHED, sched__scheduler__descriptor, 7, Sched__DrainRequest,         \
    RPC_UNARY, true)                                                                          \
  X(node_get_manifest, RPC_SVC_NODE, node__node__descriptor, 0, Node__GetManifestRequest,     \
    RPC_UNARY, false)                                                                         \
  X(node_fetch_stripe, RPC_SVC_NODE, node__node__descriptor, 1, Node__FetchStripeRequest,     \
    RPC_SERVER_STREAM, false)                                                                 \
  X(node_repair_pull, RPC_SVC_NODE, node__node__descriptor, 2, Node__RepairPullRequest,       \
    RPC_SERVER_STREAM, false)                                                                 \
  X(node_ping, RPC_SVC_NODE, node__node__descriptor, 3, Node__PingRequest, RPC_UNARY, false)  \
  X(origin_publish, RPC_SVC_ORIGIN, origin__origin__descriptor, 0, Origin__PublishPart,       \
    RPC_CLIENT_STREAM, true)                                                                  \
  X(origin_replicate, RPC_SVC_ORIGIN, origin__origin__descriptor, 1, Origin__ReplicatePart,   \
    RPC_CLIENT_STREAM, false)                                                                 \
  X(origin_gc, RPC_SVC_ORIGIN, origin__origin__descriptor, 2, Origin__GcRequest, RPC_UNARY,   \
    true)                                                                                     \
  X(origin_missing, RPC_SVC_ORIGIN, origin__origin__descriptor, 3, Origin__MissingRequest,    \
    RPC_UNARY, false)                                                                         \
  X(origin_write, RPC_SVC_ORIGIN, origin__origin__descriptor, 4, Origin__WriteRequest,        \
    RPC_UNARY, false)                                                                         \
  X(origin_bump, RPC_SVC_ORIGIN, origin__origin__descriptor, 5, Origin__BumpRequest,          \
    RPC_UNARY, false)                                                                         \
  X(origin_append_changes, RPC_SVC_ORIGIN, origin__origin__descriptor, 6,                     \
    Origin__ChangeBatch, RPC_UNARY, false)                                                    \
  X(origin_log_state, RPC_SVC_ORIGIN, origin__origin__descriptor, 7, Origin__LogStateRequest, \
    RPC_UNARY, false)                                                                         \
  X(origin_log_read, RPC_SVC_ORIGIN, origin__origin__descriptor, 8, Origin__LogReadRequest,   \
    RPC_SERVER_STREAM, false)                                                                 \
  X(origin_head, RPC_SVC_ORIGIN, origin__origin__descriptor, 9, Origin__HeadRequest,          \
    RPC_UNARY, false)

#define RPC_TYPED_(name, svc, desc, idx, Req, kind, admin)                                    \
  typedef int (*rpc_##name##_fn)(rpc_call_t *call, const Req *req, void *ctx);                \
  static inline int rpc_thunk_##name(rpc_call_t *call, const ProtobufCMessage *m, void *ctx) { \
    rpc_##name##_fn fn = (rpc_##name##_fn)rpc_call_typed_fn(call);                            \
    return fn(call, (const Req *)m, ctx);                                                     \
  }                                                                                           \
  static inline int rpc_serve_##name(rpc_engine_t *e, rpc_##name##_fn fn, void *ctx) {        \
    rpc_method_reg_t reg = {(svc), &(desc), (idx), (kind), (admin), rpc_thunk_##name,         \
                            (rpc_typed_fn)fn, ctx};                                           \
    return rpc_serve(e, &reg);                                                                \
  }                                                                                           \
  static inline rpc_call_t *rpc_start_##name(rpc_conn_t *c, const Req *req,                   \
                                             uint32_t timeout_ms, const rpc_call_cbs_t *cbs,  \
                                             void *arg) {                                     \
    return rpc_call_start(c, (svc), &(desc), (idx), (kind), (const ProtobufCMessage *)req,    \
                          timeout_ms, cbs, arg);                                              \
  }
RPC_METHODS(RPC_TYPED_)
#undef RPC_TYPED_

#endif /* RPC_H */
