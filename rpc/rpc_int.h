/*
 * rpc_int.h — rpc/'s private structures, shared by its .c files only
 * (as sqliteInt.h is to sqlite.h). Nothing outside rpc/ includes this.
 *
 * rpc_engine.c  the ring, provided buffers, the tick, MSG_RING, the arena
 * rpc_conn.c    sockets: accept, connect, stall checks, close
 * rpc_rx.c      receiving: multishot recv, the parser, DATA landing, direct mode
 * rpc_tx.c      sending: the control buffer, bulk sends, connection credit
 * rpc_hs.c      the handshake state machine
 * rpc_call.c    calls: dispatch, streams, flow control, deadlines, the API
 */
#ifndef RPC_INT_H
#define RPC_INT_H

#include <netinet/in.h>
#include <stdatomic.h>

#include "rpc.h"

#define RPC_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define RPC_BGID 7u /* the provided-buffer group of multishot recv */

typedef struct rpc_conn_op {
  fd_op_t op;
  rpc_conn_t *conn;
} rpc_conn_op_t;

typedef struct rpc_bulk {
  fd_op_t op;
  rpc_conn_t *conn;
  uint64_t pos; /* absolute out-stream offset its bytes follow */
  const uint8_t *buf;
  uint32_t len, sent;
  uint32_t notifs; /* zero-copy notifications still due */
  bool fixed;      /* buf is in the registered pool */
  bool submitted;  /* a send of it is in flight */
  bool done;
  rpc_data_done_fn done_fn;
  void *done_arg;
} rpc_bulk_t;

typedef enum rpc_conn_state {
  RPC_CONN_FREE = 0,
  RPC_CONN_CONNECTING,
  RPC_CONN_HANDSHAKE,
  RPC_CONN_READY,
  RPC_CONN_CLOSING,
} rpc_conn_state_t;

struct rpc_conn {
  rpc_engine_t *e;
  uint32_t index;
  int fd;
  rpc_conn_state_t state;
  bool is_client;
  rpc_role_t role;          /* proved (server) or granted (client) at the handshake */
  uint64_t writer_key_id;   /* server, role writer: the certificate's key ... */
  uint64_t writer_not_after;/* ... and its end, for rpc_engine_recheck_writers */
  bool bulk_zc; /* DATA goes out with SEND_ZC (not to loopback peers under AUTO) */
  bool finalize_queued;
  bool dirty_queued; /* on e->dirty: has bytes to flush */
  int close_err;
  rpc_conn_t *dirty_next;
  uint32_t ops; /* in-flight operations that name this conn */
  rpc_conn_t *live_next, *live_prev;
  rpc_conn_t *reap_next;
  struct sockaddr_in peer;
  char name[32]; /* "ip:port" for log lines */
  rpc_conn_cbs_t cbs;
  void *cbs_arg;

  /* handshake */
  uint8_t hs_step; /* last step sent or received */
  uint8_t nc[RPC_NONCE_LEN], ns[RPC_NONCE_LEN];
  uint64_t opened_ns;

  /* receive */
  rpc_conn_op_t recv_op, direct_op, connect_op;
  bool recv_armed;     /* multishot recv in flight */
  bool recv_cancelled; /* cancel requested to switch to a direct recv */
  bool direct_armed;   /* a plain recv (direct mode) in flight */
  bool direct;         /* direct mode: plain recvs, DATA straight into bulk buffers */
  uint32_t direct_ctl; /* control frames in a row while in direct mode */
  bool rearm_wanted; /* re-arm on the next loop turn (-ENOBUFS) */
  uint8_t hdr[RPC_FRAME_HEADER_LEN];
  uint32_t hdr_have;
  bool in_payload;
  rpc_frame_header_t cur;
  uint32_t pay_have;
  uint8_t *inbuf; /* joins a control frame split across receives */
  uint32_t inbuf_cap;
  uint8_t *data_buf; /* DATA frame landing: a bulk pool buffer, or NULL to discard */
  uint64_t last_rx_ns;
  uint32_t pings_tick;

  /* send */
  rpc_conn_op_t send_op;
  bool sending;
  uint8_t *out;
  uint32_t out_head, out_tail;
  uint64_t out_base; /* absolute offset of out[0] in the stream of bytes sent */
  rpc_bulk_t bulk[RPC_BULK_SENDS_MAX];
  uint32_t bulk_head, bulk_send, bulk_tail; /* monotonically increasing indices */

  /* flow control: peer's windows as advertised in the handshake */
  uint32_t peer_stream_window, peer_conn_window;
  int64_t tx_credit;     /* connection bytes we may still send */
  uint64_t rx_unacked;   /* connection bytes received and not yet credited back */
  uint64_t rx_consumed;  /* of those, consumed and due to be credited */
  uint64_t blocked_since_ns;

  /* streams */
  rpc_call_t **streams; /* open addressing by stream id */
  uint32_t streams_cap, nstreams;
  uint32_t next_stream_id, last_peer_stream_id;
  rpc_call_t *calls; /* all calls of this conn, for iteration */
};

typedef enum rpc_call_state {
  RPC_CALL_FREE = 0,
  RPC_CALL_OPEN,
  RPC_CALL_DONE,
} rpc_call_state_t;

struct rpc_call {
  rpc_conn_t *conn;
  uint32_t id;
  rpc_call_state_t state;
  uint32_t gen; /* bumped on alloc and free: detects a call ended inside a callback */
  bool is_client;
  bool local_end;  /* we sent END (client: close_send; server: the status) */
  bool remote_end; /* the peer sent END */
  bool want_writable;
  rpc_kind_t kind;
  const rpc_method_reg_t *reg;               /* server */
  const ProtobufCMessageDescriptor *rx_desc; /* what arrives: server input, client output */
  const ProtobufCMessageDescriptor *tx_desc; /* what this side sends */
  uint64_t deadline_ns;
  int64_t tx_credit;   /* stream bytes we may still send */
  uint64_t rx_unacked; /* stream bytes received and not credited */
  uint64_t rx_consumed;
  uint64_t rx_held; /* DATA bytes handed to on_data and not yet data_done */
  uint64_t blocked_since_ns;     /* a send waits since (0: none), for blocked_cause */
  rpc_block_cause_t blocked_cause;
  uint64_t blocked_total_ns[RPC_BLOCK_CAUSES]; /* waits ended, by cause */
  rpc_call_cbs_t cbs;
  void *cbs_arg;
  rpc_call_t *next, *prev; /* conn->calls */
  rpc_call_t *free_next;
};

struct rpc_engine {
  fd_ring_t ring;
  pthread_t owner;
  _Atomic bool stop;
  bool destroying;

  uint32_t payload_max, conns_max, streams_max, stream_window, conn_window, stall_ms;
  uint8_t key[FD_HMAC_KEY_LEN_MAX];
  size_t key_len;
  bool has_admin_pub, has_admin_key, has_writer_key;
  uint8_t admin_pub[FD_ED25519_PUB_LEN];
  fd_ed25519_key_t admin_key;
  fd_ed25519_key_t writer_key;
  uint8_t writer_cert[FD_CERT_LEN_MAX];
  size_t writer_cert_len;
  const fd_cert_revlist_t *revocations;
  fd_pool_t *pool;
  bool pool_registered;
  rpc_bulk_send_t bulk_send;

  /* provided buffers for multishot recv */
  struct io_uring_buf_ring *br;
  uint8_t *rx_bufs;
  uint32_t rx_count; /* provided buffers, a power of two */
  size_t br_bytes;

  rpc_conn_t *conns;
  uint32_t *conn_free;
  uint32_t conn_free_top;
  rpc_conn_t *live; /* conns not FREE */
  rpc_conn_t *reap; /* CLOSING conns to finalize after callbacks */
  rpc_conn_t *dirty; /* conns with bytes queued since the last flush */
  uint32_t rearm_pending; /* conns whose multishot recv ended with -ENOBUFS */

  rpc_call_t *call_slab;
  rpc_call_t *call_free;
  uint32_t calls_max;

  rpc_method_reg_t methods[RPC_SVCS_MAX][RPC_METHODS_PER_SVC_MAX];

  int listen_fd;
  bool reuseport;
  fd_op_t accept_op;
  bool accept_armed;
  struct sockaddr_in accept_addr;
  socklen_t accept_addrlen;

  fd_op_t tick_op;
  bool tick_armed;
  struct __kernel_timespec tick_ts;
  uint32_t tick_no;

  /* protobuf-c decode arena, reset after each callback */
  uint8_t *arena;
  size_t arena_cap, arena_used;
  ProtobufCAllocator alloc;

  rpc_stats_t stats;
};

/* rpc_engine.c */
void rpc_eng_recycle_rx(rpc_engine_t *e, uint16_t bid);
uint8_t *rpc_eng_rx_buf(rpc_engine_t *e, uint16_t bid);
void rpc_eng_arena_reset(rpc_engine_t *e);
ProtobufCMessage *rpc_eng_unpack(rpc_engine_t *e, const ProtobufCMessageDescriptor *d,
                                 const uint8_t *p, size_t len);

#define CONN_OF(op) (((rpc_conn_op_t *)(op))->conn)

/* rpc_conn.c */
void rpc_conn_op_done(rpc_conn_t *c);
rpc_conn_t *rpc_conn_open(rpc_engine_t *e, int fd, bool is_client);
void rpc_conn_fail(rpc_conn_t *c, int err, const char *why);
void rpc_conn_arm_recv(rpc_conn_t *c);
void rpc_conn_finalize_ready(rpc_engine_t *e);
void rpc_conn_accept_arm(rpc_engine_t *e);
/* White-box tests and fuzzing only: serves fd as an accepted connection,
 * already authenticated when skip_handshake (as if Welcome had been sent). */
rpc_conn_t *rpc_conn_adopt(rpc_engine_t *e, int fd, bool skip_handshake);
void rpc_conn_tick(rpc_conn_t *c, uint64_t now);
/* Queues one frame whose payload is prefix (may be NULL) then msg packed
 * (may be NULL). reserve: may use the control reserve. 0, -EAGAIN, -EMSGSIZE. */
int rpc_conn_queue(rpc_conn_t *c, uint8_t type, uint16_t flags, uint32_t stream_id,
                   uint32_t method_id, const void *prefix, uint32_t prefix_len,
                   const ProtobufCMessage *msg, bool reserve);
/* Queues a DATA frame (header in out, buf sent from where it lies). */
int rpc_conn_queue_bulk(rpc_conn_t *c, uint32_t stream_id, const void *buf, uint32_t len,
                        rpc_data_done_fn done, void *done_arg);
bool rpc_conn_can_queue(const rpc_conn_t *c, uint32_t bytes);
void rpc_conn_flush(rpc_conn_t *c);
void rpc_conn_flush_dirty(rpc_engine_t *e);
void rpc_conn_window_consumed(rpc_conn_t *c, uint64_t bytes);

/* rpc_rx.c */
void rpc_rx_on_recv(fd_op_t *op, int res, uint32_t flags);
void rpc_rx_on_direct(fd_op_t *op, int res, uint32_t flags);

/* rpc_tx.c */
void rpc_conn_mark_dirty(rpc_conn_t *c);
void rpc_tx_on_send(fd_op_t *op, int res, uint32_t flags);
void rpc_tx_on_bulk(fd_op_t *op, int res, uint32_t flags);

/* rpc_hs.c */
int rpc_hs_start(rpc_conn_t *c);
int rpc_hs_frame(rpc_conn_t *c, const rpc_frame_header_t *h, const uint8_t *p, uint32_t len);

/* rpc_call.c */
int rpc_call_frame(rpc_conn_t *c, const rpc_frame_header_t *h, const uint8_t *p, uint32_t len);
/* A DATA frame header arrived: the call it lands for, or NULL to discard. */
int rpc_call_data_begin(rpc_conn_t *c, const rpc_frame_header_t *h, rpc_call_t **out);
void rpc_call_data_end(rpc_conn_t *c, uint32_t stream_id, uint8_t *buf, uint32_t len, bool end);
void rpc_call_conn_gone(rpc_conn_t *c, rpc_code_t code, const char *why);
void rpc_call_tick(rpc_conn_t *c, uint64_t now);
void rpc_call_writable(rpc_conn_t *c);
int rpc_calls_init(rpc_engine_t *e);
void rpc_calls_deinit(rpc_engine_t *e);

#endif /* RPC_INT_H */
