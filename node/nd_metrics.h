/*
 * nd_metrics.h — fdnode's /metrics (prefix nd_metrics_), part of the host.
 *
 * Owns: the HTTP server (common/fd_metrics.h, its own thread) when
 * metrics_listen is set, the per-file gauges engine 0 publishes, and the
 * rendering of every layer's counters: each plane's bytes by link class,
 * chunks verified and rejected and send stalls (nd_plane_metrics_t, one per
 * engine, summed), storage's fdatasync histograms (st_store_sync_hist), and
 * the origin's write path (nd_origin_metrics_t).
 *
 * How numbers cross threads: every engine writes its own counters
 * (fd_counter_t, single writer, relaxed); per-file gauges are slots engine 0
 * fills every ND_METRICS_PUBLISH_MS (a slot's name is written once, before a
 * release store of `used`, and never changes); the HTTP thread only loads.
 * No lock anywhere, and the engines never wait for a scrape.
 *
 * Memory: nd_metrics_create copies the strings; the plane, store, origin
 * role and serving engines it is given must outlive nd_metrics_stop, which
 * must come before any of them is torn down.
 */
#ifndef ND_METRICS_H
#define ND_METRICS_H

#include "nd_engine.h"
#include "nd_origin.h"
#include "nd_plane.h"
#include "nd_sched.h"

typedef struct nd_metrics nd_metrics_t;

typedef struct nd_metrics_opts {
  const char *listen;    /* "a.b.c.d:port"; empty or NULL: no server (create returns NULL, 0) */
  const char *port_file; /* optional */
  const char *id, *role, *region, *zone;
  nd_plane_t *plane; /* engine 0's */
  st_store_t *store;
  const nd_origin_t *og;       /* role origin, else NULL */
  const nd_engines_t *engines; /* may be NULL (one engine) */
  const fd_rate_t *upload, *download; /* the node's caps */
} nd_metrics_opts_t;

/* Where the node's sends waited so far (the heartbeat's figures): every
 * engine's plane (engine 0's plane, engines may be NULL) and the upload
 * cap's bucket (NULL: none). Any thread: it only loads atomics. Children
 * are merged by id over the engines, at most ND_CHILD_STALLS_MAX. */
void nd_stalls_collect(const nd_plane_t *plane, const nd_engines_t *engines,
                       const fd_rate_t *upload, nd_stalls_t *out);

/* Starts serving. 0 with *out NULL when metrics_listen is empty; -errno
 * (logged) when the server cannot start. */
int nd_metrics_start(const nd_metrics_opts_t *o, nd_metrics_t **out);
/* Engine 0's loop turn: refreshes the per-file gauges every
 * ND_METRICS_PUBLISH_MS. NULL is a no-op. */
void nd_metrics_tick(nd_metrics_t *m);
/* Stops the server and frees m; NULL is a no-op. */
void nd_metrics_stop(nd_metrics_t *m);

#endif /* ND_METRICS_H */
