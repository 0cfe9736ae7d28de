/*
 * fd_metrics.h — Prometheus metrics: counters an engine bumps without locks,
 * the text exposition writer, and the /metrics HTTP server (prefix fd_).
 *
 * Owns: the format of /metrics (Prometheus text exposition 0.0.4: HELP and
 * TYPE lines, samples with escaped labels, histograms as cumulative
 * `_bucket{le=...}`, `_sum` and `_count`) and the HTTP server that serves it
 * (libmicrohttpd from Debian; no HTTP parsing of our own).
 *
 * Threads — why the server runs its own: the daemons' engines are io_uring
 * loops that own their rings; libmicrohttpd's external polling wants its
 * fds in a select/poll/epoll set and MHD_run called between waits, which
 * would put a second event loop and HTTP parsing inside every engine's turn.
 * So the server runs libmicrohttpd's internal polling thread
 * (MHD_USE_INTERNAL_POLLING_THREAD): a scrape never touches an engine's ring
 * and costs the engine nothing, and the engine never waits for a scraper.
 *
 * How the HTTP thread reads an engine's numbers without locks: each engine
 * keeps its counters in its own struct as fd_counter_t (a relaxed atomic
 * uint64_t) with exactly one writer, the engine thread. fd_counter_add is a
 * relaxed load and a relaxed store (no read-modify-write, no lock prefix:
 * a plain `mov` on x86-64); the HTTP thread reads with relaxed loads. A
 * scrape therefore sees each number whole, never torn, and possibly one
 * turn old; numbers of one family may be from slightly different instants,
 * which Prometheus's model (independent monotonic counters) tolerates.
 * Histograms are arrays of such counters; `_count` is rendered as the sum of
 * the buckets so `le="+Inf"` and `_count` always agree.
 *
 * Never: allocates or locks on the engine's side; the HTTP thread allocates
 * its response (grown up to FD_METRICS_BODY_MAX).
 *
 * Memory: fd_metrics_server_start copies nothing of the caller's but the
 * render callback and its argument, which must stay valid (and safe to read
 * from the HTTP thread) until fd_metrics_server_stop returns.
 */
#ifndef FD_METRICS_H
#define FD_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_limits.h"

/* ---- numbers an engine owns ---------------------------------------------------- */

typedef _Atomic uint64_t fd_counter_t;

/* Single writer only (the owning engine's thread). */
static inline void fd_counter_add(fd_counter_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void fd_counter_set(fd_counter_t *c, uint64_t v) {
  atomic_store_explicit(c, v, memory_order_relaxed);
}
/* Any thread. */
static inline uint64_t fd_counter_get(const fd_counter_t *c) {
  return atomic_load_explicit((fd_counter_t *)c, memory_order_relaxed);
}

/* A histogram of durations with fixed upper bounds (nanoseconds, ascending),
 * one writer. Rendered in seconds. */
typedef struct fd_hist {
  const uint64_t *bounds_ns;
  uint32_t n_bounds;                               /* at most FD_METRICS_BUCKETS_MAX */
  fd_counter_t counts[FD_METRICS_BUCKETS_MAX + 1]; /* last: above every bound */
  fd_counter_t sum_ns;
} fd_hist_t;

/* bounds_ns (static storage, ascending) outlives h. */
void fd_hist_init(fd_hist_t *h, const uint64_t *bounds_ns, uint32_t n_bounds);
void fd_hist_observe_ns(fd_hist_t *h, uint64_t ns);
/* Bounds for storage syncs and acknowledgements: 50 us to 10 s. */
extern const uint64_t fd_hist_latency_bounds_ns[];
extern const uint32_t fd_hist_latency_bounds_n;

/* ---- the exposition writer ------------------------------------------------------- */

typedef enum fd_metric_type {
  FD_METRIC_COUNTER,
  FD_METRIC_GAUGE,
  FD_METRIC_HISTOGRAM,
} fd_metric_type_t;

typedef struct fd_label {
  const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, asserted */
  const char *value; /* any UTF-8: escaped */
} fd_label_t;

/* Writes into a caller's buffer; once a write does not fit, overflow is set
 * and the rest is dropped (the caller retries with a larger buffer). */
typedef struct fd_mw {
  char *buf;
  size_t cap, len;
  bool overflow;
} fd_mw_t;

void fd_mw_init(fd_mw_t *w, char *buf, size_t cap);
/* # HELP and # TYPE of a family; name is [a-zA-Z_:][a-zA-Z0-9_:]* (asserted). */
void fd_mw_family(fd_mw_t *w, const char *name, fd_metric_type_t type, const char *help);
void fd_mw_u64(fd_mw_t *w, const char *name, const fd_label_t *labels, size_t n_labels, uint64_t v);
void fd_mw_f64(fd_mw_t *w, const char *name, const fd_label_t *labels, size_t n_labels, double v);
/* name_bucket{...,le="..."} (cumulative, le in seconds), name_sum (seconds),
 * name_count. */
void fd_mw_hist(fd_mw_t *w, const char *name, const fd_label_t *labels, size_t n_labels,
                const fd_hist_t *h);

/* ---- the server ------------------------------------------------------------------- */

/* Renders every metric of the process; runs on the HTTP thread. */
typedef void (*fd_metrics_render_fn)(void *arg, fd_mw_t *w);

typedef struct fd_metrics_server fd_metrics_server_t;

/* Listens on listen ("a.b.c.d:port", port 0: any free one) and serves GET
 * /metrics on its own thread; writes the bound port to port_file (when not
 * NULL or empty) by temp file and rename once listening. 0, -EINVAL (bad
 * address), -EADDRINUSE / -errno (could not listen), -ENOMEM, or the port
 * file's -errno. */
int fd_metrics_server_start(const char *listen, const char *port_file, fd_metrics_render_fn render,
                            void *arg, fd_metrics_server_t **out);
uint16_t fd_metrics_server_port(const fd_metrics_server_t *s);
/* Stops the thread (no render runs after it returns) and frees s; NULL is a no-op. */
void fd_metrics_server_stop(fd_metrics_server_t *s);

#endif /* FD_METRICS_H */
