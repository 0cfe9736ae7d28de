/*
 * node.h — fdnode, the node daemon (prefix nd_).
 *
 * Owns: one node's process — its config, its rpc engine and chunk store on
 * one io_uring ring, its membership with fdsched (register, heartbeat, the
 * WatchOrders stream), the download of the newest version it is ordered to
 * hold (manifest, signature, delta, one FetchStripe stream per stripe from
 * the parent the order names, re-parenting), serving its children
 * (FetchStripe, RepairPull, GetManifest) with cut-through forwarding, and,
 * with role = origin, the Publish / Missing / Replicate chain.
 *
 * Guarantees: a chunk is stored and forwarded only after storage verified
 * its CRC32C and SHA-256 against a manifest signed by the trusted admin key
 * or by an origin key it certified and has not revoked (revocations_file,
 * re-read within a heartbeat period of changing);
 * an origin acknowledges a publish only after every origin it reports holds
 * the version durably (complete, fsync'd); SIGTERM (nd_node_stop) lets
 * in-flight disk writes finish and closes every version cleanly.
 *
 * Never: decides topology (fdsched does), copies chunk bytes in userspace
 * on the data path, allocates per chunk.
 *
 * Threads: `threads` engines, one io_uring each. Engine 0 runs on the
 * thread that calls nd_node_run and does everything above; engines
 * 1..threads-1 run on threads nd_node_create starts and only serve children
 * (GetManifest, FetchStripe, RepairPull, Ping) on the same port
 * (SO_REUSEPORT), sharing nothing with engine 0 but an atomic table of the
 * versions it holds (nd_engine.c). Role origin runs one engine. Memory:
 * nd_node_create copies the config; nd_node_destroy frees all.
 */
#ifndef NODE_H
#define NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_config.h"
#include "fd_limits.h"

typedef struct nd_config {
  char id[FD_NAME_LEN_MAX + 1];
  char role[16]; /* "node" or "origin" */
  char region[FD_NAME_LEN_MAX + 1];
  char zone[FD_NAME_LEN_MAX + 1];
  char listen[64];    /* "addr:port" */
  char data_dir[FD_PATH_LEN_MAX];
  char scheduler[512]; /* "addr:port[,addr:port...]" (a leader, standbys); empty: none */
  char cluster_key_file[FD_PATH_LEN_MAX];
  char admin_pub_file[FD_PATH_LEN_MAX];
  char revocations_file[FD_PATH_LEN_MAX];  /* optional: the admin's revocation list */
  char signing_key_file[FD_PATH_LEN_MAX];  /* role origin, optional: the group's signing key */
  char signing_cert_file[FD_PATH_LEN_MAX]; /* ... and its certificate (role origin) */
  char origins[1024]; /* "id@addr:port" or "id" (address from fdsched),... head first */
  char port_file[FD_PATH_LEN_MAX]; /* optional: the bound port is written here */
  char zookeeper[512];       /* role origin: "h:p,..." elects the head (issue 22); empty: static chain */
  char zookeeper_root[128];  /* every znode under it */
  uint32_t zookeeper_session_ms;
  char metrics_listen[64];                 /* optional: /metrics on "addr:port"; empty: off */
  char metrics_port_file[FD_PATH_LEN_MAX]; /* optional: its bound port is written here */
  char log_level[16];
  uint32_t threads;   /* engines (0: one per core; role origin runs one), see above */
  uint32_t heartbeat_ms;
  uint32_t keep_versions;
  uint64_t chunk_buf_bytes; /* largest chunk size served; pool buffer size */
  uint32_t pool_buffers;
  uint32_t window_chunks;    /* flow-control window, in chunk buffers */
  uint64_t nic_bps;
  uint64_t upload_bps_max;   /* bits/s this node sends at most, children and chain (0: no cap) */
  uint64_t download_bps_max; /* bits/s it receives at most (0: no cap) */
  uint32_t scrub_interval_s; /* 0: no scrub */
  /* role origin, the write path */
  uint32_t min_durable_origins; /* changes and publishes need this many origins holding them */
  uint64_t bump_changes;        /* a log is merged after this many changes (0: off) */
  uint64_t bump_bytes;          /* ... or this many bytes (0: off) */
  uint32_t bump_interval_s;     /* ... or this long after its first change (0: off) */
  uint64_t write_chunk_bytes;   /* chunk size of a file made by changes alone (0: chunk_buf) */
  uint64_t scrub_rate_bytes; /* bytes/s a scrub reads at most */
} nd_config_t;

void nd_config_defaults(nd_config_t *c);
/* The schema for fd_config_load / fd_config_set, pointing into c. */
size_t nd_config_items(nd_config_t *c, fd_config_item_t *items, size_t max);
/* Checks the loaded values (role, addresses, files). 0 or -EINVAL with err. */
int nd_config_check(const nd_config_t *c, char *err, size_t err_len);
/* The receive window in chunk buffers: window_chunks, or if 0 the default
 * that fits pool_buffers. */
uint32_t nd_config_window_chunks(const nd_config_t *c);

typedef struct nd_node nd_node_t;

/* Opens the store, loads keys, creates the engine and listens. 0 or -errno. */
int nd_node_create(const nd_config_t *cfg, nd_node_t **out);
/* Runs until nd_node_stop, then drains in-flight disk writes. 0 or -errno. */
int nd_node_run(nd_node_t *n);
/* Asks nd_node_run to return (from the node's own thread). */
void nd_node_stop(nd_node_t *n);
/* Stops the node when fd (a signalfd; the caller blocks those signals in
 * every thread and closes fd after nd_node_destroy) becomes readable: the
 * loop reads it through its ring, so no signal handler and no global is
 * needed. 0 or -errno. */
int nd_node_stop_on_fd(nd_node_t *n, int fd);
void nd_node_destroy(nd_node_t *n);
/* The port actually bound (listen port 0 picks one). */
uint16_t nd_node_port(const nd_node_t *n);

#endif /* NODE_H */
