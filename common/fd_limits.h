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
#define FD_ORIGINS_MAX 16u        /* origins in one group (chain), everywhere */
#define FD_FILES_MAX 16u          /* files planned, tracked and downloaded at once */
#define FD_REPAIR_PEERS_MAX 8u    /* repair peers one order names */
/* The write path: one change carries at most this many bytes; a changelog
 * record holds one change and its header. */
#define FD_WRITE_BYTES_MAX (1024u * 1024u)
#define FD_LOG_RECORD_MAX (FD_WRITE_BYTES_MAX + 4096u)
/* A signed manifest travels in one frame and is stored as one file. */
#define FD_MANIFEST_LEN_MAX FD_FRAME_PAYLOAD_MAX_DEFAULT
#define FD_HEARTBEAT_MS_DEFAULT 1000u
#define FD_SUSPECT_MISSES_DEFAULT 3u
#define FD_DEAD_MISSES_DEFAULT 5u

/* Crypto sizes. */
#define FD_SHA256_LEN 32u
#define FD_ED25519_PUB_LEN 32u
#define FD_ED25519_SIG_LEN 64u
#define FD_HMAC_KEY_LEN_MAX 64u

/* Certificates and the revocation list (common/fd_cert.h). A certificate is
 * 135 fixed bytes and its subject; a list is 97 fixed bytes and 8 per key. */
#define FD_CERT_SUBJECT_LEN_MAX 64u
#define FD_CERT_LEN_MAX (135u + FD_CERT_SUBJECT_LEN_MAX)
#define FD_CERT_REVOKED_MAX 1024u      /* key ids one revocation list holds */
#define FD_CERT_REVLIST_LEN_MAX (97u + 8u * FD_CERT_REVOKED_MAX)
#define FD_CERT_DAYS_MAX 3660u         /* longest validity fdadmin cert signs */
#define FD_CERT_BACKDATE_S 3600u       /* not_before is this far before signing: clock skew */

/* Metrics (common/fd_metrics.h): the largest /metrics body a daemon renders
 * (the HTTP thread grows its buffer from FD_METRICS_BODY_MIN up to this),
 * the scrapers served at once, and the buckets of one histogram. */
#define FD_METRICS_BODY_MIN (64u * 1024u)
#define FD_METRICS_BODY_MAX (16u * 1024u * 1024u)
#define FD_METRICS_CONNS_MAX 16u
#define FD_METRICS_BUCKETS_MAX 24u
static_assert(FD_METRICS_BODY_MIN <= FD_METRICS_BODY_MAX, "the first buffer fits the limit");

/* Buffer pools: one per core, sized at start-up. */
#define FD_POOL_BUFFERS_MAX 4096u

/* ---- storage: limits owned by storage/ ---- */
/* A manifest's signer certificate (fd_cert), at most. */
#define ST_SIGNER_CERT_LEN_MAX 1024u
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
/* The write path (issue 21). A change's data, at most; a changelog
 * record's payload (a packed Change: the data and a small header), at most;
 * and that record with its 16-byte frame (common/fd_record.h). */
#define FD_WRITE_BYTES_MAX (1024u * 1024u)
#define FD_LOG_RECORD_MAX (FD_WRITE_BYTES_MAX + 4096u)
#define FD_LOG_FRAME_MAX (FD_LOG_RECORD_MAX + 16u)
/* The changelog (st_log.c): each of its two staging buffers (one is written
 * and fdatasync'd while the other fills), and the done callbacks one holds;
 * its read windows are as big. Every ST_LOG_INDEX_RECORDS records or
 * ST_LOG_INDEX_BYTES bytes the open log remembers an offset, so a read from
 * any sequence skims at most that much. */
#define ST_LOG_BATCH_BYTES (4u * 1024u * 1024u)
#define ST_LOG_BATCH_RECORDS_MAX 4096u
#define ST_LOG_INDEX_RECORDS 1024u
#define ST_LOG_INDEX_BYTES (4u * 1024u * 1024u)
static_assert(FD_LOG_RECORD_MAX > FD_WRITE_BYTES_MAX, "a record holds a whole write");
static_assert(FD_LOG_RECORD_MAX < 0x80000000u, "a record's length leaves bit 31 to FD_REC_CONT");
static_assert(FD_LOG_FRAME_MAX <= FD_FRAME_PAYLOAD_MAX_DEFAULT, "a record fits one frame");
static_assert(ST_LOG_BATCH_BYTES >= FD_LOG_FRAME_MAX, "a staging buffer holds the largest record");
static_assert(ST_LOG_BATCH_BYTES <= 0x7fffffffu, "a batch's write size fits a CQE's result");
static_assert(ST_LOG_BATCH_RECORDS_MAX >= 256u, "256 small changes in flight share one batch");
static_assert(ST_LOG_INDEX_BYTES >= FD_LOG_FRAME_MAX, "an index step spans a record");
static_assert(FD_CERT_LEN_MAX <= ST_SIGNER_CERT_LEN_MAX, "a certificate fits a manifest");


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
static_assert(FD_CERT_LEN_MAX + 256u <= RPC_HANDSHAKE_PAYLOAD_MAX,
              "a writer's proof (cluster proof, certificate, signature) fits a handshake frame");



/* ---- scheduler: limits owned by scheduler/ ---- */
#define SCH_REGIONS_MAX 64u          /* regions the scheduler tracks */
#define SCH_ZONES_MAX 1024u          /* (region, zone) pairs */
#define SCH_ADDRESS_LEN_MAX 256u     /* "host:port" including the NUL */
#define SCH_FANOUT_MAX 64u           /* children of one node in one stripe */
#define SCH_CHILD_STALLS_MAX 8u      /* children whose stalls fdsched keeps per node (the longest) */
#define SCH_ORIGINS_MAX FD_ORIGINS_MAX /* origins holding one version */
#define SCH_ORIGIN_NODES_MAX 64u     /* nodes registered with the origin role */
#define SCH_VERSIONS_MAX 1024u       /* versions registered at once, all files */
#define SCH_MANIFEST_LEN_MAX FD_MANIFEST_LEN_MAX /* a manifest fits one frame */
#define SCH_HOLDINGS_PER_NODE FD_FILES_MAX /* versions a node's report is tracked for */
#define SCH_PLANS_MAX FD_FILES_MAX   /* files planned at once (one plan per file) */
#define SCH_LOG_RECORD_LEN_MAX (SCH_MANIFEST_LEN_MAX + 64u * 1024u) /* one op */
#define SCH_CHECKPOINT_LEN_MAX (1ull << 36) /* a snapshot of the whole state */
#define SCH_CHECKPOINT_EVERY_OPS_DEFAULT 10000u /* log records between checkpoints */
#define SCH_REPAIR_PEERS_MAX FD_REPAIR_PEERS_MAX /* repair peers named in one order */
#define SCH_LISTEN_PORT_DEFAULT 7400u /* fdsched's port when the config names none */
#define SCH_TICK_MS_MIN 10u          /* the daemon's membership timer, at its fastest */
#define SCH_STALL_DRAIN_TURNS 64u    /* engine turns run before a late tick */
/* High availability (fdsched_ha.c): a version's znode holds its manifest
 * and a short text header; ZooKeeper refuses a request over jute.maxbuffer
 * (0xfffff bytes by default), path and framing included, so a record stays
 * 48 KiB under it. A 10 GB file in 4 MiB chunks has a manifest of ~100 KB. */
#define SCH_ZK_RECORD_LEN_MAX (0xfffffu - 48u * 1024u)
#define SCH_ZK_SESSION_MS_DEFAULT 3000u /* the session timeout fdsched asks for */
#define SCH_ZK_POLL_MS 20u           /* the loop looks at the election at least this often */
#define SCH_SCHEDULERS_MAX 8u        /* fdsched addresses a node or fdadmin is given */
static_assert(SCH_ZONES_MAX >= SCH_REGIONS_MAX, "a region has a zone");
static_assert(SCH_ZONES_MAX <= 65535u && SCH_REGIONS_MAX <= 65535u, "16-bit indices");
static_assert(FD_NODES_MAX < (1u << 31), "slots fit an int32_t");
/* Stragglers (scheduler/strag.c): a node fetching a version whose download
 * rate, over the last SCH_STRAG_WINDOW_MS, stays below SCH_STRAG_SLOW_PCT %
 * of both its peers' median and what its parents deliver for
 * SCH_STRAG_SLOW_MS is slow (a leaf only); it is eligible again after
 * SCH_STRAG_RECOVER_MS at or above SCH_STRAG_RECOVER_PCT % of the median. */
#define SCH_STRAG_WINDOW_MS 2000u    /* the sliding window a rate is measured over */
#define SCH_STRAG_SAMPLES 16u        /* (time, rx bytes) kept per node */
#define SCH_STRAG_SAMPLE_MS (SCH_STRAG_WINDOW_MS / 8u) /* least spacing of kept samples */
#define SCH_STRAG_SLOW_MS 3000u      /* below the bar this long: slow */
#define SCH_STRAG_RECOVER_MS 10000u  /* back above the recovery bar this long: eligible */
#define SCH_STRAG_SLOW_PCT 50u       /* the bar, % of the median and of the parents' supply */
#define SCH_STRAG_RECOVER_PCT 75u    /* the recovery bar, % of the median */
#define SCH_STRAG_PEERS_MIN 3u       /* fewer nodes fetching a version: nobody is judged */
#define SCH_STRAG_JUDGE_MS 250u      /* judged at most this often */
#define SCH_STRAG_KEEP_MS 30000u     /* slow, but no one had room for its children: judged again after */
#define SCH_STRAG_VERDICTS_MAX 64u   /* changes of standing applied per plan per judgement */
static_assert(SCH_STRAG_SAMPLES * SCH_STRAG_SAMPLE_MS >= 2u * SCH_STRAG_WINDOW_MS,
              "the samples kept span the window");
static_assert(SCH_STRAG_RECOVER_MS > SCH_STRAG_SLOW_MS && SCH_STRAG_RECOVER_PCT > SCH_STRAG_SLOW_PCT,
              "hysteresis: recovering takes longer and more than falling behind");
static_assert(SCH_STRAG_SLOW_MS >= SCH_STRAG_WINDOW_MS, "a blip shorter than the window is not slow");



/* ---- node: limits owned by node/ ---- */
/* Tables, each fixed at start-up. */
#define ND_FILES_MAX FD_FILES_MAX      /* downloaders (role node): one per file */
#define ND_VERS_MAX (2u * ND_FILES_MAX) /* versions open at once (served or received) */
#define ND_TX_MAX 128u                 /* chunk-sending streams at once */
#define ND_TX_Q 4u                     /* chunks queued per sending stream */
#define ND_TX_READS 2u                 /* disk reads in flight per sending stream */
#define ND_PUBS_MAX 8u                 /* publish / replicate receptions at once (origin) */
#define ND_ORIGINS_MAX FD_ORIGINS_MAX  /* the origin chain a node knows */
#define ND_ENGINES_MAX 64u             /* engines (threads) per node */
#define ND_SHARED_VERS_MAX (2u * ND_VERS_MAX) /* versions engine 0 shares with serving engines */
/* Buffers: the pool's default and smallest size, the share disk reads for
 * children never take, and the receive window (chunks in flight per stream). */
/* The engines copy their rpc figures into /metrics at most this often. */
#define ND_METRICS_PUBLISH_MS 100u
#define ND_POOL_BUFFERS_DEFAULT 80u
#define ND_POOL_BUFFERS_MIN 24u
#define ND_POOL_RESERVE 12u
#define ND_WINDOW_CHUNKS_DEFAULT 4u
#define ND_WINDOW_CHUNKS_MAX 64u
#define ND_SHARD_POOL_BUFFERS 32u      /* a serving engine's chunk buffers (at most pool_buffers) */
#define ND_RING_ENTRIES 1024u          /* each engine's io_uring */
#define ND_PAYLOAD_MIN (2u * 1024u * 1024u) /* frames up to this whatever chunk_buf (a change) */
#define ND_NIC_BPS_DEFAULT 10000000000ull      /* nic_bps when the config names none */
#define ND_SCRUB_RATE_DEFAULT (64ull << 20)    /* scrub_rate, bytes per second */
#define ND_CONFIG_ITEMS_MAX 64u        /* [node] settings */
#define ND_CONFIG_SETS_MAX 128u        /* -s overrides on fdnode's command line */
/* Reports to fdsched and repair. */
#define ND_REPORTS_MAX 64u             /* reports waiting for a heartbeat */
#define ND_REPORTS_PER_HB 16u          /* reports one heartbeat carries */
#define ND_CHILD_STALLS_MAX 64u        /* children whose send stalls an engine counts one by one */
#define ND_REPAIR_PARENTS_MAX 8u       /* stripe parents of an order kept as repair peers */
#define ND_REPAIR_PEERS_MAX (FD_REPAIR_PEERS_MAX + ND_REPAIR_PARENTS_MAX) /* per file */
#define ND_REPAIR_CANDIDATES_MAX (ND_REPAIR_PEERS_MAX + ND_ORIGINS_MAX)
#define ND_REPAIR_CHUNKS_PER_PULL 64u  /* bad chunks asked for in one RepairPull */
#define ND_SCRUB_TRACKED_MAX ND_VERS_MAX /* versions whose last scrub is remembered */
#define ND_DIR_SCAN_MAX 100000u        /* directory entries read for the newest version */
/* Time. */
#define ND_LOOP_WAIT_MS 10u            /* the loop's longest wait for completions */
#define ND_RETRY_MS 200u               /* a failed fetch, manifest or connect waits this long */
#define ND_PARENT_WAIT_MS 20u          /* ... a parent that has not opened the version: this */
#define ND_STREAM_TIMEOUT_MS (6u * 3600u * 1000u) /* a stripe, publish or replicate stream */
#define ND_MANIFEST_CALL_MS 10000u     /* GetManifest */
#define ND_MISSING_CALL_MS 60000u      /* Missing (an origin's delta may run first) */
#define ND_SCHED_CALL_MS 5000u         /* Register, Heartbeat */
#define ND_REGISTER_VERSION_CALL_MS 10000u
#define FD_RATE_BURST_MIN (256u << 10) /* a rate cap's bucket holds at least this */
#define ND_DL_STALL_LOG_MS 15000u      /* a download moving nothing this long logs each stripe */
#define ND_COMMIT_RETRY_MS 1000u       /* an unconfirmed commit is retried this often */
#define ND_CHAIN_ATTEMPTS 4u           /* tries of one origin before it leaves the chain */
#define ND_CHAIN_RETRY_MS 500u         /* ... the k-th retry waits k times this */
#define ND_REPAIR_ROUND_MS 1000u       /* every peer tried: wait before the next round */
#define ND_REPAIR_CALL_MS 10000u       /* deadline of one RepairPull */
#define ND_DRAIN_MS 10000u             /* SIGTERM: longest wait for disk writes */
#define ND_ENGINE_TICK_MS 10u          /* a serving engine retries its streams this often */
#define ND_ENGINE_SYNC_MS 50u          /* engine 0 re-reads bits the sink did not report */
#define ND_ENGINE_LOG_MS 5000u         /* a serving engine logs what it sent this often */
#define ND_SHARD_IDLE_MS 5000u         /* a serving engine closes a version read from files */
/* The write path (role origin). */
#define ND_WLOGS_MAX (2u * ND_FILES_MAX) /* changelogs open: per file one merging, one taking changes */
#define ND_ZK_SESSION_MS_DEFAULT 3000u /* an origin's ZooKeeper session: a dead head's successor after ~this */
#define ND_DEDUP_GEN_MAX (1u << 16)   /* changes a head recognises when retried: two generations of this */
#define ND_WRITES_INFLIGHT_MAX 4096u   /* head: writers' changes waiting for their answer, per log */
#define ND_WRITES_QUEUED_MAX 4096u     /* head: changes waiting for room in a log (all files) */
#define ND_WRITES_QUEUED_BYTES (64u << 20) /* ... and their bytes */
#define ND_OUTBOX_RECORDS 16384u       /* changes ordered, not yet acknowledged by the next origin */
#define ND_OUTBOX_BYTES (32u << 20)    /* ... and their bytes */
#define ND_LINK_BATCHES_MAX 32u        /* AppendChanges calls in flight to the next origin */
#define ND_CHANGE_CALLS_MAX ND_LINK_BATCHES_MAX /* ... and waiting here, per log */
#define ND_CHANGE_BATCH_MAX 512u       /* changes in one AppendChanges */
#define ND_CHANGE_BATCH_BYTES (1024u * 1024u) /* its data, the first change aside */
#define ND_BUMP_WAITERS_MAX 16u        /* Bump calls waiting on one log */
#define ND_CHANGES_CALL_MS 10000u      /* an AppendChanges answer (a slower next origin is left out) */
#define ND_MERGE_TIMEOUT_MS (30u * 60u * 1000u) /* a bump's answer: every origin's merge */
#define ND_LINK_PAUSE_MS 20u           /* the next origin's log had no room: sends wait this long */
#define ND_LINK_RETRY_MS 2000u         /* an origin left out of the chain is tried again after */
#define ND_CATCHUP_NAMES_MAX 1024u     /* files compared when an origin is brought up to date */
#define ND_MERGE_RETRY_MS 5000u        /* a merge that failed (disk, key) is tried again after */
#define ND_WRITE_CHUNK_DEFAULT FD_CHUNK_SIZE_DEFAULT /* chunk size of a file made by changes */
#define ND_MIN_DURABLE_DEFAULT 2u      /* min_durable_origins */
#define ND_BUMP_CHANGES_DEFAULT 100000u
#define ND_BUMP_BYTES_DEFAULT (1ull << 30)
#define ND_BUMP_INTERVAL_S_DEFAULT 60u
static_assert(ND_VERS_MAX >= ND_FILES_MAX + ND_PUBS_MAX, "every download and publish has a version");
static_assert(ND_PAYLOAD_MIN >= FD_LOG_RECORD_MAX + ND_CHANGE_BATCH_BYTES / 2, "a change fits a frame");
static_assert(ND_PAYLOAD_MIN >= 2u * ND_CHANGE_BATCH_BYTES, "a batch fits a frame");
static_assert(ND_OUTBOX_BYTES >= 2u * ND_LINK_BATCHES_MAX * FD_WRITE_BYTES_MAX / 2u,
              "the outbox holds the batches in flight");
static_assert(ND_OUTBOX_RECORDS >= ND_WRITES_INFLIGHT_MAX, "every waiting change is in the outbox");
static_assert(ND_SHARD_POOL_BUFFERS > ND_POOL_RESERVE + ND_TX_Q, "a serving engine can read");
static_assert(ND_RING_ENTRIES <= FD_RING_ENTRIES_MAX, "ring size in range");
static_assert(ND_PAYLOAD_MIN <= FD_FRAME_PAYLOAD_MAX, "payload in range");
static_assert(ND_POOL_BUFFERS_MIN > ND_POOL_RESERVE + ND_TX_Q, "a node can read and receive");
static_assert(ND_POOL_BUFFERS_DEFAULT >= ND_POOL_RESERVE + 4u * ND_WINDOW_CHUNKS_DEFAULT,
              "the default pool holds a default window");
static_assert(ND_POOL_BUFFERS_DEFAULT <= FD_POOL_BUFFERS_MAX, "default pool in range");
static_assert(ND_STREAM_TIMEOUT_MS <= RPC_TIMEOUT_MS_MAX, "stream deadline in rpc's range");
static_assert(ND_MISSING_CALL_MS <= RPC_TIMEOUT_MS_MAX, "Missing deadline in rpc's range");
static_assert(ND_REPORTS_PER_HB <= ND_REPORTS_MAX, "a heartbeat's reports fit the queue");
static_assert(ND_REPAIR_PEERS_MAX >= FD_REPAIR_PEERS_MAX, "every repair peer of an order is kept");
static_assert(ND_ORIGINS_MAX == SCH_ORIGINS_MAX, "node and scheduler agree on the origins");
static_assert(ND_FILES_MAX <= SCH_HOLDINGS_PER_NODE, "fdsched tracks every file a node reports");

/* ---- admin: limits owned by admin/ ---- */
#define ADM_ADDR_LEN_MAX SCH_ADDRESS_LEN_MAX /* "host:port" of fdsched or an origin */
#define ADM_PATH_LEN_MAX FD_PATH_LEN_MAX
#define ADM_ORIGINS_MAX FD_ORIGINS_MAX
#define ADM_CONNECT_TIMEOUT_MS 5000u
#define ADM_CALL_TIMEOUT_MS 30000u
#define ADM_CALL_GRACE_MS 1000u        /* waited past a call's deadline for its end */
#define ADM_PUBLISH_BUFS 8u            /* chunk buffers in flight while publishing */
#define ADM_PUBLISH_ACK_TIMEOUT_MS (10u * 60u * 1000u) /* head's answer after the last chunk */
#define ADM_PUBLISH_RATE_MIN_MIBPS 10u /* a publish's deadline allows this slow a stream */
#define ADM_PUBLISH_END_GRACE_MS 2000u /* waited past the publish deadline, and for the drain */
#define ADM_WATCH_INTERVAL_MS 1000u
#define ADM_PROGRESS_MS 200u           /* a publish's progress bar redraws this often at most */
#define ADM_CLOSE_WAIT_MS 200u         /* waited for a connection's close at exit */
#define ADM_JSON_DEPTH_MAX 8u           /* deepest --json document fdadmin builds */
#define ADM_ZONES_SHOWN 256u
#define ADM_DRAIN_POLL_MS 200u          /* drain polls the node's dependents this often */
#define ADM_DRAIN_TIMEOUT_S_DEFAULT 600u /* drain gives up waiting after this */
#define ADM_DRAIN_TIMEOUT_S_MAX 86400u
static_assert(ADM_ORIGINS_MAX == ND_ORIGINS_MAX, "fdadmin knows every origin of a chain");
static_assert(ADM_PUBLISH_ACK_TIMEOUT_MS <= RPC_TIMEOUT_MS_MAX, "publish deadline in range");



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

/* ---- the writers' client: limits owned by admin/fdclient.h (prefix fdc_) ---- */
/* One change's data is FD_WRITE_BYTES_MAX (storage's section: the changelog
 * holds it too). A Write request's frame: the data, the name and the other
 * fields. An origin must accept frames this big (its payload_max) or
 * writers cannot reach it. */
#define FDC_REQUEST_LEN_MAX (FD_WRITE_BYTES_MAX + 4096u)
#define FDC_INFLIGHT_DEFAULT 256u       /* changes in flight per client (one stream each) */
#define FDC_INFLIGHT_MAX FD_STREAMS_PER_CONNECTION_MAX
#define FDC_INFLIGHT_BYTES_DEFAULT (64ull * FD_WRITE_BYTES_MAX) /* their data, held until each ends */
#define FDC_INFLIGHT_BYTES_MAX (1ull << 32)
#define FDC_TIMEOUT_MS_DEFAULT 30000u   /* a change's deadline, from its call */
#define FDC_BUMP_TIMEOUT_MS_DEFAULT (10u * 60u * 1000u) /* a bump waits for the merge */
#define FDC_CONNECT_TIMEOUT_MS_DEFAULT 5000u /* per origin tried */
#define FDC_ORIGINS_MAX FD_ORIGINS_MAX  /* origins in fdc_opts_t.origins */
#define FDC_ADDR_LEN_MAX 256u           /* "host:port" including the NUL */
#define FDC_CERT_LEN_MAX ST_SIGNER_CERT_LEN_MAX /* a writer's certificate file */
#define FDC_MESSAGE_LEN_MAX 256u        /* a server's status message kept per change */
#define FDC_RX_BUFS 64u                 /* the client engine's provided buffers (replies are small) */
#define FDC_TURN_MS 10u                 /* longest wait of one engine turn inside a library call */
#define FDC_SWEEP_MS 100u               /* changes past their deadline are looked for this often */
#define FDC_GRACE_MS 1000u              /* waited past a deadline before the library ends a change */
#define FDC_CLOSE_WAIT_MS 200u          /* fdc_close waits this long for the connection's close */
#define ADM_WRITE_PROGRESS_MIN_BYTES (64ull * FD_WRITE_BYTES_MAX) /* shorter inputs draw no bar */
static_assert(FD_WRITE_BYTES_MAX <= FD_CHUNK_SIZE_DEFAULT, "a change is at most a default chunk");
static_assert(FDC_REQUEST_LEN_MAX <= FD_FRAME_PAYLOAD_MAX_DEFAULT, "a change fits a default frame");
static_assert(FDC_REQUEST_LEN_MAX <= RPC_STREAM_WINDOW_DEFAULT, "a change fits a stream window");
static_assert(FDC_REQUEST_LEN_MAX - FD_WRITE_BYTES_MAX > FD_NAME_LEN_MAX + 64u,
              "the request's other fields fit beside the data");
static_assert(FDC_INFLIGHT_DEFAULT <= FDC_INFLIGHT_MAX, "default in flight in range");
static_assert(FDC_INFLIGHT_BYTES_DEFAULT >= FD_WRITE_BYTES_MAX &&
                  FDC_INFLIGHT_BYTES_DEFAULT <= FDC_INFLIGHT_BYTES_MAX,
              "the default byte budget holds one change");
static_assert(FDC_ADDR_LEN_MAX == SCH_ADDRESS_LEN_MAX, "an origin address is a scheduler address");
static_assert(FDC_RX_BUFS <= RPC_RX_BUFS && (FDC_RX_BUFS & (FDC_RX_BUFS - 1)) == 0,
              "the client's buffer ring is a power of two in range");
static_assert(FDC_TIMEOUT_MS_DEFAULT <= RPC_TIMEOUT_MS_MAX &&
                  FDC_BUMP_TIMEOUT_MS_DEFAULT <= RPC_TIMEOUT_MS_MAX,
              "client deadlines in rpc's range");

#endif /* FD_LIMITS_H */
