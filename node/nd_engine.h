/*
 * nd_engine.h — fdnode's serving engines (prefix nd_engines_): the host's
 * part that runs `threads` - 1 more io_uring engines, each on its own thread
 * with its own rpc engine, ring, pool and chunk plane, serving children on
 * the node's port (SO_REUSEPORT). nd_engine.c says how.
 */
#ifndef ND_ENGINE_H
#define ND_ENGINE_H

#include "nd_plane.h"

typedef struct nd_engines nd_engines_t;

typedef struct nd_engines_opts {
  uint32_t count;            /* serving engines to start (threads - 1), >= 1 */
  rpc_engine_opts_t rpc;     /* engine 0's rpc options (keys copied; pool set per engine) */
  uint32_t pool_buffers;     /* engine 0's; a serving engine takes at most ND_SHARD_POOL_BUFFERS */
  uint64_t chunk_buf_bytes;
  uint32_t window_chunks;
  const char *listen_addr;   /* engine 0's bound address and port */
  uint16_t port;
  const char *data_dir;
  const uint8_t *admin_pub;  /* manifests read from files must carry its signature */
  const char *revocations_file; /* "" or the list each engine re-reads on its own thread */
  uint32_t revocations_period_ms;
  fd_rate_t *upload;         /* the node's upload cap, shared with engine 0 */
  nd_plane_t *p0;            /* engine 0's plane: what it holds is what the others serve */
  rpc_engine_t *e0;          /* engine 0's engine: it posts the wakeups */
} nd_engines_opts_t;

/* Starts the serving engines (each listening before this returns): 0 or
 * -errno (nothing left running). */
int nd_engines_start(const nd_engines_opts_t *o, nd_engines_t **out);
/* Engine 0, each loop turn: publishes what it opened, retires what it let
 * go, wakes the serving engines when chunks landed. */
void nd_engines_tick(nd_engines_t *E);
/* Engine 0's plane hook: a chunk of v became durable. */
void nd_engines_chunk_durable(void *arg, nd_ver_t *v, uint32_t index);
uint64_t nd_engines_tx_bytes(const nd_engines_t *E); /* sent by the serving engines */
/* Serving engine i's plane counters (any thread; /metrics), or NULL when i
 * is out of range or the engine is not serving. Valid until nd_engines_stop. */
const nd_plane_metrics_t *nd_engines_plane_metrics(const nd_engines_t *E, uint32_t i);
/* Stops and joins the serving engines. */
void nd_engines_stop(nd_engines_t *E);
/* After nd_engines_stop and after engine 0's ring has drained. */
void nd_engines_destroy(nd_engines_t *E);

#endif /* ND_ENGINE_H */
