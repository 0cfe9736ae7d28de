/*
 * fd_limits.h — every limit in fdist, in one place.
 *
 * Queue depths, frame sizes, chunk sizes, connections, pools: each bound the
 * code relies on is a named constant here, related to the others by static
 * assertions, so that a reader can see the whole envelope of the system on one
 * page (after TigerBeetle's constants.zig and SQLite's sqliteLimit.h).
 * Run-time configuration may lower a limit, never raise it past these.
 */
#ifndef FD_LIMITS_H
#define FD_LIMITS_H

#include <assert.h>
#include <stdint.h>

/* Disk: O_DIRECT needs offsets, lengths and buffers aligned to the logical
 * block size; 4096 covers every device fdist targets. */
#define FD_DIRECT_ALIGN 4096u

/* Chunks: a power of two between 64 KiB and 64 MiB, 4 MiB by default. */
#define FD_CHUNK_SIZE_MIN (64u * 1024u)
#define FD_CHUNK_SIZE_MAX (64u * 1024u * 1024u)
#define FD_CHUNK_SIZE_DEFAULT (4u * 1024u * 1024u)

/* Files: up to 1 TiB; at the smallest chunk size that is 2^24 chunks. */
#define FD_FILE_SIZE_MAX (1ull << 40)
#define FD_CHUNKS_MAX (FD_FILE_SIZE_MAX / FD_CHUNK_SIZE_MIN)
#define FD_NAME_LEN_MAX 128u   /* file names, node ids, regions, zones */
#define FD_PATH_LEN_MAX 4096u
#define FD_VERSIONS_KEPT_DEFAULT 2u

/* io_uring: entries per ring, and in-flight disk operations per store. */
#define FD_RING_ENTRIES_DEFAULT 256u
#define FD_RING_ENTRIES_MAX 4096u
#define FD_QUEUE_DEPTH_DEFAULT 16u
#define FD_QUEUE_DEPTH_MAX 256u

/* Wire: a frame's payload is at most 16 MiB (enough for a 4 MiB chunk in one
 * data frame and for a manifest of a 10 GB file) unless configured lower. */
#define FD_FRAME_PAYLOAD_MAX_DEFAULT (16u * 1024u * 1024u)
#define FD_FRAME_PAYLOAD_MAX (64u * 1024u * 1024u)
#define FD_CONNECTIONS_MAX 16384u
#define FD_STREAMS_PER_CONNECTION_MAX 1024u

/* Cluster: nodes the scheduler tracks, stripes per version. */
#define FD_NODES_MAX 16384u
#define FD_STRIPES_MAX 64u
#define FD_STRIPES_DEFAULT 4u
#define FD_ORIGINS_DEFAULT 3u
#define FD_HEARTBEAT_MS_DEFAULT 1000u
#define FD_SUSPECT_MISSES_DEFAULT 3u
#define FD_DEAD_MISSES_DEFAULT 5u

/* Crypto sizes. */
#define FD_SHA256_LEN 32u
#define FD_ED25519_PUB_LEN 32u
#define FD_ED25519_SIG_LEN 64u
#define FD_HMAC_KEY_LEN_MAX 64u

/* Buffer pools: one per core, sized at start-up. */
#define FD_POOL_BUFFERS_MAX 4096u

/* ---- storage: limits owned by storage/ ---- */
/* Versions pinned at once as delta sources, per store. */
#define FD_STORE_PINS_MAX 32u
/* Newest complete versions a delta searches for reusable chunks. */
#define FD_STORE_DELTA_SOURCES_MAX 4u
/* Complete versions of one file that listing and GC look at. */
#define FD_STORE_VERSIONS_SCAN_MAX 1024u
/* A delta or scrub that could not get a buffer or slot looks again after this. */
#define FD_STORE_RETRY_NS 1000000u
/* Hashing threads of st_manifest_build (one per online core, at most this). */
#define FD_MANIFEST_BUILD_THREADS_MAX 8u
static_assert(FD_STORE_DELTA_SOURCES_MAX <= FD_STORE_PINS_MAX, "a delta's sources fit the pins");
static_assert(FD_STORE_DELTA_SOURCES_MAX <= FD_STORE_VERSIONS_SCAN_MAX, "sources are listed");


/* ---- rpc: limits owned by rpc/ ---- */
/* Per engine: connections, calls, and the provided-buffer ring that
 * multishot recv lands bytes in. */
#define RPC_CONNS_DEFAULT 1024u
#define RPC_STREAMS_PER_CONN_DEFAULT 128u
#define RPC_CALLS_PER_ENGINE_MAX 16384u
#define RPC_RX_BUFS 1024u              /* provided buffers per engine (power of two) */
#define RPC_RX_BUF_SIZE (16u * 1024u)  /* bytes each: control frames; bulk is received direct */
/* Per connection: queued outgoing control bytes (frames other than bulk),
 * and the contiguous buffer a control frame split across recvs is joined in. */
#define RPC_OUTBUF_BYTES (256u * 1024u)
#define RPC_INBUF_INLINE (16u * 1024u)
#define RPC_OUT_RESERVE 4096u          /* of those, kept free for status and control frames */
#define RPC_LARGE_MSG 16384u           /* frames bigger than this are packed aside, sent like DATA */
#define RPC_BULK_SENDS_MAX 64u         /* DATA frames (and large messages) queued per connection */
/* Flow control: bytes sent and not yet credited back. */
#define RPC_STREAM_WINDOW_DEFAULT (16u * 1024u * 1024u)
#define RPC_CONN_WINDOW_DEFAULT (64u * 1024u * 1024u)
/* Timers: one io_uring timeout per engine ticks deadlines and stall checks. */
#define RPC_TICK_MS 10u
#define RPC_STALL_MS_DEFAULT 10000u    /* silent mid-frame or mid-handshake: closed */
#define RPC_TIMEOUT_MS_DEFAULT 30000u  /* a call's deadline when the caller gives none */
#define RPC_TIMEOUT_MS_MAX (24u * 3600u * 1000u)
#define RPC_PINGS_PER_TICK_MAX 64u     /* more is a flood */
#define RPC_HANDSHAKE_PAYLOAD_MAX 1024u /* any frame before authentication */
#define RPC_DIRECT_RECV_MIN (64u * 1024u) /* DATA tails at least this big skip the copy */
#define RPC_DIRECT_CTL_MAX 4u          /* control frames in a row that end direct receiving */
/* Dispatch table: services by id, methods by index. */
#define RPC_SVCS_MAX 16u
#define RPC_METHODS_PER_SVC_MAX 32u
static_assert((RPC_RX_BUFS & (RPC_RX_BUFS - 1)) == 0, "buffer ring size is a power of two");
static_assert(RPC_STREAMS_PER_CONN_DEFAULT <= FD_STREAMS_PER_CONNECTION_MAX, "streams in range");
static_assert(RPC_CONNS_DEFAULT <= FD_CONNECTIONS_MAX, "connections in range");
static_assert(RPC_STREAM_WINDOW_DEFAULT <= RPC_CONN_WINDOW_DEFAULT, "stream fits connection");
static_assert(RPC_STREAM_WINDOW_DEFAULT >= FD_CHUNK_SIZE_DEFAULT, "a chunk fits a window");
static_assert(RPC_INBUF_INLINE <= RPC_OUTBUF_BYTES, "inline rx within tx");
static_assert(RPC_LARGE_MSG + RPC_OUT_RESERVE < RPC_OUTBUF_BYTES, "a small message fits out");



/* ---- scheduler: limits owned by scheduler/ ---- */
#define SCH_REGIONS_MAX 64u          /* regions the scheduler tracks */
#define SCH_ZONES_MAX 1024u          /* (region, zone) pairs */
#define SCH_ADDRESS_LEN_MAX 256u     /* "host:port" including the NUL */
#define SCH_FANOUT_MAX 64u           /* children of one node in one stripe */
#define SCH_ORIGINS_MAX 16u          /* origins holding one version */
#define SCH_ORIGIN_NODES_MAX 64u     /* nodes registered with the origin role */
#define SCH_VERSIONS_MAX 1024u       /* versions registered at once, all files */
#define SCH_MANIFEST_LEN_MAX FD_FRAME_PAYLOAD_MAX_DEFAULT /* a manifest fits one frame */
#define SCH_HOLDINGS_PER_NODE 4u     /* versions a node's report is tracked for */
#define SCH_PLANS_MAX 16u            /* files planned at once (one plan per file) */
#define SCH_LOG_RECORD_LEN_MAX (SCH_MANIFEST_LEN_MAX + 64u * 1024u) /* one op */
#define SCH_CHECKPOINT_LEN_MAX (1ull << 36) /* a snapshot of the whole state */
#define SCH_CHECKPOINT_EVERY_OPS_DEFAULT 10000u /* log records between checkpoints */
#define SCH_REPAIR_PEERS_MAX 8u      /* repair peers named in one order */
#define SCH_LISTEN_PORT_DEFAULT 7400u /* fdsched's port when the config names none */
#define SCH_TICK_MS_MIN 10u          /* the daemon's membership timer, at its fastest */
#define SCH_STALL_DRAIN_TURNS 64u    /* engine turns run before a late tick */
static_assert(SCH_ZONES_MAX >= SCH_REGIONS_MAX, "a region has a zone");
static_assert(SCH_ZONES_MAX <= 65535u && SCH_REGIONS_MAX <= 65535u, "16-bit indices");
static_assert(FD_NODES_MAX < (1u << 31), "slots fit an int32_t");



/* ---- node: limits owned by node/ ---- */



static_assert((FD_CHUNK_SIZE_MIN & (FD_CHUNK_SIZE_MIN - 1)) == 0, "chunk min is a power of two");
static_assert((FD_CHUNK_SIZE_MAX & (FD_CHUNK_SIZE_MAX - 1)) == 0, "chunk max is a power of two");
static_assert(FD_CHUNK_SIZE_MIN % FD_DIRECT_ALIGN == 0, "chunks are O_DIRECT aligned");
static_assert(FD_CHUNK_SIZE_DEFAULT >= FD_CHUNK_SIZE_MIN &&
                  FD_CHUNK_SIZE_DEFAULT <= FD_CHUNK_SIZE_MAX, "default chunk in range");
static_assert(FD_FRAME_PAYLOAD_MAX_DEFAULT >= FD_CHUNK_SIZE_DEFAULT,
              "a default chunk fits one data frame");
static_assert(FD_FRAME_PAYLOAD_MAX_DEFAULT <= FD_FRAME_PAYLOAD_MAX, "default within max");
static_assert(FD_QUEUE_DEPTH_MAX <= FD_RING_ENTRIES_MAX, "queue fits the ring");
static_assert(FD_DEAD_MISSES_DEFAULT > FD_SUSPECT_MISSES_DEFAULT, "suspect before dead");
static_assert(FD_STRIPES_DEFAULT <= FD_STRIPES_MAX, "stripes in range");

#endif /* FD_LIMITS_H */
