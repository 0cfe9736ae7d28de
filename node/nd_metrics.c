/* nd_metrics.c — fdnode's /metrics: per-file gauges published by engine 0,
 * and the render the HTTP thread runs (see nd_metrics.h). */
#include "nd_metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"

/* One file's gauges; name is immutable once used is set (release). */
typedef struct nd_mfile {
  _Atomic bool used;
  char name[FD_NAME_LEN_MAX + 1];
  fd_counter_t current; /* the version `current` names (0: none) */
  fd_counter_t version; /* the newest version open here: being fetched, or just completed */
  fd_counter_t held;    /* its chunks durable here */
  fd_counter_t total;   /* its chunk count */
} nd_mfile_t;

struct nd_metrics {
  char id[FD_NAME_LEN_MAX + 1], role[16], region[FD_NAME_LEN_MAX + 1], zone[FD_NAME_LEN_MAX + 1];
  nd_plane_t *plane;
  st_store_t *store;
  const nd_origin_t *og;
  const nd_engines_t *engines;
  const fd_rate_t *upload, *download;
  nd_mfile_t files[ND_FILES_MAX];
  uint32_t nfiles; /* engine 0's count of used slots */
  uint64_t published_ms;
  fd_metrics_server_t *srv;
};

/* ---- engine 0: the per-file gauges ------------------------------------------------ */

static nd_mfile_t *file_slot(nd_metrics_t *m, const char *name) {
  for (uint32_t i = 0; i < m->nfiles; i++)
    if (!strcmp(m->files[i].name, name)) return &m->files[i];
  if (m->nfiles == ND_FILES_MAX) return NULL; /* more files than a node downloads at once */
  nd_mfile_t *f = &m->files[m->nfiles++];
  snprintf(f->name, sizeof(f->name), "%s", name);
  atomic_store_explicit(&f->used, true, memory_order_release);
  return f;
}

void nd_metrics_tick(nd_metrics_t *m) {
  if (!m) return;
  uint64_t now = fd_now_ms();
  if (now - m->published_ms < ND_METRICS_PUBLISH_MS) return;
  m->published_ms = now;
  /* The newest version open of each file: what is being fetched (or was
   * just completed) and how much of it is here. */
  uint64_t best[ND_FILES_MAX] = {0}, held[ND_FILES_MAX] = {0}, total[ND_FILES_MAX] = {0};
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    const nd_ver_t *v = nd_plane_ver_at(m->plane, i);
    if (!v || v->aborted || !v->m) continue;
    nd_mfile_t *f = file_slot(m, v->name);
    if (!f) continue;
    uint32_t k = (uint32_t)(f - m->files);
    if (v->version < best[k]) continue;
    best[k] = v->version;
    total[k] = v->m->chunk_count;
    held[k] =
        v->complete || !v->sv ? v->m->chunk_count : v->m->chunk_count - st_version_missing(v->sv);
  }
  for (uint32_t k = 0; k < m->nfiles; k++) {
    nd_mfile_t *f = &m->files[k];
    uint64_t cur = 0;
    if (st_current(m->store, f->name, &cur) != 0) cur = 0;
    fd_counter_set(&f->current, cur);
    if (!best[k]) continue; /* closed since: the last figures stand */
    fd_counter_set(&f->version, best[k]);
    fd_counter_set(&f->held, held[k]);
    fd_counter_set(&f->total, total[k]);
  }
}

/* ---- the HTTP thread: render ------------------------------------------------------ */

/* Sums a counter over engine 0's plane and every serving engine's (one not
 * serving, or not started, counts nothing). */
#define PLANES_SUM(m, expr)                                                                        \
  ({                                                                                               \
    uint64_t sum_ = fd_counter_get(&nd_plane_metrics((m)->plane)->expr);                           \
    for (uint32_t e_ = 0; e_ < ND_ENGINES_MAX; e_++) {                                             \
      const nd_plane_metrics_t *pm_ = nd_engines_plane_metrics((m)->engines, e_);                  \
      if (pm_) sum_ += fd_counter_get(&pm_->expr);                                                 \
    }                                                                                              \
    sum_;                                                                                          \
  })

static void stalls_add(nd_stalls_t *out, const nd_plane_metrics_t *pm) {
  out->window_ns += fd_counter_get(&pm->blocked_window_ns);
  out->socket_ns += fd_counter_get(&pm->blocked_socket_ns);
  out->pool_ns += fd_counter_get(&pm->blocked_pool_ns);
  out->credit_write_ns += fd_counter_get(&pm->credit_write_ns);
  out->credit_sync_ns += fd_counter_get(&pm->credit_sync_ns);
  for (uint32_t i = 0; i < ND_CHILD_STALLS_MAX; i++) {
    const nd_child_stall_t *c = &pm->child[i];
    if (!atomic_load_explicit((_Atomic bool *)&c->used, memory_order_acquire)) break;
    uint32_t k = 0;
    while (k < out->n_child && strcmp(out->child[k].id, c->id)) k++;
    if (k == out->n_child) {
      if (k == ND_CHILD_STALLS_MAX) continue;
      out->child[k].id = c->id;
      out->child[k].blocked_ns = 0;
      out->n_child++;
    }
    out->child[k].blocked_ns += fd_counter_get(&c->blocked_ns);
  }
}

void nd_stalls_collect(const nd_plane_t *plane, const nd_engines_t *engines,
                       const fd_rate_t *upload, nd_stalls_t *out) {
  memset(out, 0, sizeof(*out));
  stalls_add(out, nd_plane_metrics(plane));
  for (uint32_t e = 0; engines && e < ND_ENGINES_MAX; e++) {
    const nd_plane_metrics_t *pm = nd_engines_plane_metrics(engines, e);
    if (pm) stalls_add(out, pm);
  }
  out->upload_cap_ns = fd_rate_waited_ns(upload, fd_now_ns());
}

static void render_plane(const nd_metrics_t *m, fd_mw_t *w) {
  fd_mw_family(w, "fdist_node_received_bytes_total", FD_METRIC_COUNTER,
               "Chunk bytes received, verified and stored, by the sender's link class "
               "(same_zone, cross_zone, cross_region, origin, publish, unknown).");
  for (uint32_t l = 0; l < ND_PEER_CLASSES; l++) {
    fd_label_t lb[] = {{"role", m->role}, {"link", nd_peer_class_name((nd_peer_class_t)l)}};
    fd_mw_u64(w, "fdist_node_received_bytes_total", lb, 2, PLANES_SUM(m, rx_bytes[l]));
  }
  fd_mw_family(w, "fdist_node_sent_bytes_total", FD_METRIC_COUNTER,
               "Chunk bytes sent to children, repair pullers and the next origin, by the "
               "receiver's link class.");
  for (uint32_t l = 0; l < ND_PEER_CLASSES; l++) {
    fd_label_t lb[] = {{"role", m->role}, {"link", nd_peer_class_name((nd_peer_class_t)l)}};
    fd_mw_u64(w, "fdist_node_sent_bytes_total", lb, 2, PLANES_SUM(m, tx_bytes[l]));
  }
  fd_mw_family(w, "fdist_node_chunks_verified_total", FD_METRIC_COUNTER,
               "Chunks received whose CRC32C and SHA-256 matched the signed manifest, stored.");
  fd_mw_u64(w, "fdist_node_chunks_verified_total", NULL, 0, PLANES_SUM(m, chunks_verified));
  fd_mw_family(w, "fdist_node_chunks_rejected_total", FD_METRIC_COUNTER,
               "Chunks received whose CRC32C or SHA-256 did not match: dropped.");
  fd_mw_u64(w, "fdist_node_chunks_rejected_total", NULL, 0, PLANES_SUM(m, chunks_rejected));
  fd_mw_family(w, "fdist_node_send_blocked_seconds_total", FD_METRIC_COUNTER,
               "Time sends were held back, by cause: peer_window (the receiver's flow-control "
               "window was full, everything sent), socket (this node's own bytes not sent yet: "
               "the link or TCP), pool (no pool buffer to read a chunk into), upload_cap "
               "(this node's upload_bps_max).");
  nd_stalls_t *st = malloc(sizeof(*st)); /* the HTTP thread: off the engines' path */
  if (!st) return;
  nd_stalls_collect(m->plane, m->engines, m->upload, st);
  static const char *const causes[] = {"peer_window", "socket", "pool", "upload_cap"};
  const uint64_t blocked[] = {st->window_ns, st->socket_ns, st->pool_ns, st->upload_cap_ns};
  for (size_t i = 0; i < FD_ARRAY_LEN(causes); i++) {
    fd_label_t lb[] = {{"cause", causes[i]}};
    fd_mw_f64(w, "fdist_node_send_blocked_seconds_total", lb, 1, (double)blocked[i] / 1e9);
  }
  fd_mw_family(w, "fdist_node_child_blocked_seconds_total", FD_METRIC_COUNTER,
               "Time sends to one child waited for its credit (peer_window), by its node id.");
  for (uint32_t i = 0; i < st->n_child; i++) {
    fd_label_t lb[] = {{"child", st->child[i].id}};
    fd_mw_f64(w, "fdist_node_child_blocked_seconds_total", lb, 1,
              (double)st->child[i].blocked_ns / 1e9);
  }
  fd_mw_family(w, "fdist_node_credit_held_seconds_total", FD_METRIC_COUNTER,
               "Chunks stored here, summed: how long each held its sender's credit, by stage: "
               "write (arrival to its write's completion), sync (from there to its fdatasync, "
               "while the credit was still held).");
  fd_label_t sw[] = {{"stage", "write"}}, ss[] = {{"stage", "sync"}};
  fd_mw_f64(w, "fdist_node_credit_held_seconds_total", sw, 1, (double)st->credit_write_ns / 1e9);
  fd_mw_f64(w, "fdist_node_credit_held_seconds_total", ss, 1, (double)st->credit_sync_ns / 1e9);
  free(st);
  uint64_t now = fd_now_ns();
  fd_mw_family(w, "fdist_node_receive_capped_seconds_total", FD_METRIC_COUNTER,
               "Time received chunks' credit was held back by this node's download_bps_max.");
  fd_mw_f64(w, "fdist_node_receive_capped_seconds_total", NULL, 0,
            (double)fd_rate_waited_ns(m->download, now) / 1e9);
  fd_mw_family(w, "fdist_node_rate_cap_bits_per_second", FD_METRIC_GAUGE,
               "The node's rate caps by direction (upload_bps_max, download_bps_max; 0: none).");
  fd_label_t cu[] = {{"direction", "upload"}}, cd[] = {{"direction", "download"}};
  fd_mw_u64(w, "fdist_node_rate_cap_bits_per_second", cu, 1, m->upload ? m->upload->bytes_per_s * 8 : 0);
  fd_mw_u64(w, "fdist_node_rate_cap_bits_per_second", cd, 1,
            m->download ? m->download->bytes_per_s * 8 : 0);
}

static void render_files(const nd_metrics_t *m, fd_mw_t *w) {
  static const struct {
    const char *name, *help;
    size_t off;
  } g[] = {
      {"fdist_file_current_version", "The version <data>/<file>/current names (0: none).",
       offsetof(nd_mfile_t, current)},
      {"fdist_file_fetch_version",
       "The newest version of the file open here (being fetched, "
       "or complete).",
       offsetof(nd_mfile_t, version)},
      {"fdist_file_chunks_held", "Chunks of fdist_file_fetch_version durable here.",
       offsetof(nd_mfile_t, held)},
      {"fdist_file_chunks_total", "Chunks of fdist_file_fetch_version in all.",
       offsetof(nd_mfile_t, total)},
  };
  for (size_t j = 0; j < FD_ARRAY_LEN(g); j++) {
    fd_mw_family(w, g[j].name, FD_METRIC_GAUGE, g[j].help);
    for (uint32_t k = 0; k < ND_FILES_MAX; k++) {
      const nd_mfile_t *f = &m->files[k];
      if (!atomic_load_explicit((_Atomic bool *)&f->used, memory_order_acquire)) break;
      const fd_counter_t *c = (const fd_counter_t *)(const void *)((const char *)f + g[j].off);
      fd_label_t lb[] = {{"file", f->name}};
      fd_mw_u64(w, g[j].name, lb, 1, fd_counter_get(c));
    }
  }
}

static void render(void *arg, fd_mw_t *w) {
  const nd_metrics_t *m = arg;
  fd_mw_family(w, "fdist_node_info", FD_METRIC_GAUGE, "This fdnode: id, role, region, zone.");
  fd_label_t info[] = {{"id", m->id}, {"role", m->role}, {"region", m->region}, {"zone", m->zone}};
  fd_mw_u64(w, "fdist_node_info", info, 4, 1);
  render_plane(m, w);
  render_files(m, w);
  fd_mw_family(w, "fdist_storage_fdatasync_seconds", FD_METRIC_HISTOGRAM,
               "fdatasync latency on the store's ring, by what it made durable "
               "(chunks: a group of chunk writes; changelog: a batch of changes).");
  static const char *const kinds[ST_SYNC_KINDS] = {"chunks", "changelog"};
  for (uint32_t k = 0; k < ST_SYNC_KINDS; k++) {
    fd_label_t lb[] = {{"kind", kinds[k]}};
    fd_mw_hist(w, "fdist_storage_fdatasync_seconds", lb, 1,
               st_store_sync_hist(m->store, (st_sync_kind_t)k));
  }
  if (!m->og) return;
  const nd_origin_metrics_t *om = nd_origin_metrics(m->og);
  fd_mw_family(w, "fdist_write_changes_acked_total", FD_METRIC_COUNTER,
               "Changes the origin head acknowledged (durable on enough origins).");
  fd_mw_u64(w, "fdist_write_changes_acked_total", NULL, 0, fd_counter_get(&om->changes_acked));
  fd_mw_family(w, "fdist_write_ack_seconds", FD_METRIC_HISTOGRAM,
               "Origin head: a change's arrival to its acknowledgement.");
  fd_mw_hist(w, "fdist_write_ack_seconds", NULL, 0, &om->ack_latency);
  fd_mw_family(w, "fdist_write_bumps_total", FD_METRIC_COUNTER,
               "Bump records ordered into a changelog on this origin.");
  fd_mw_u64(w, "fdist_write_bumps_total", NULL, 0, fd_counter_get(&om->bumps));
  fd_mw_family(w, "fdist_write_merges_total", FD_METRIC_COUNTER,
               "Changelogs merged into their version on this origin.");
  fd_mw_u64(w, "fdist_write_merges_total", NULL, 0, fd_counter_get(&om->merges));
  fd_mw_family(w, "fdist_write_merge_failures_total", FD_METRIC_COUNTER,
               "Merges that failed here (each is retried).");
  fd_mw_u64(w, "fdist_write_merge_failures_total", NULL, 0, fd_counter_get(&om->merge_failures));
  fd_mw_family(w, "fdist_origin_leads", FD_METRIC_GAUGE,
               "1 while this origin leads the chain (the head, elected and connected).");
  fd_mw_u64(w, "fdist_origin_leads", NULL, 0, fd_counter_get(&om->leads));
  fd_mw_family(w, "fdist_origin_chain_epoch", FD_METRIC_GAUGE,
               "The origin chain's epoch this origin follows (0: a static chain).");
  fd_mw_u64(w, "fdist_origin_chain_epoch", NULL, 0, fd_counter_get(&om->epoch));
  fd_mw_family(w, "fdist_origin_stale_epoch_refused_total", FD_METRIC_COUNTER,
               "Chain messages refused for an epoch older than this origin's (fencing).");
  fd_mw_u64(w, "fdist_origin_stale_epoch_refused_total", NULL, 0,
            fd_counter_get(&om->stale_refused));
  fd_mw_family(w, "fdist_write_changes_resent_total", FD_METRIC_COUNTER,
               "Writers' changes sent again that the head held already (answered, not ordered twice).");
  fd_mw_u64(w, "fdist_write_changes_resent_total", NULL, 0, fd_counter_get(&om->resent_known));
}

/* ---- life ------------------------------------------------------------------------- */

int nd_metrics_start(const nd_metrics_opts_t *o, nd_metrics_t **out) {
  *out = NULL;
  if (!o->listen || !o->listen[0]) return 0;
  FD_ASSERT(o->plane && o->store);
  nd_metrics_t *m = calloc(1, sizeof(*m));
  if (!m) return -ENOMEM;
  snprintf(m->id, sizeof(m->id), "%s", o->id ? o->id : "");
  snprintf(m->role, sizeof(m->role), "%s", o->role ? o->role : "");
  snprintf(m->region, sizeof(m->region), "%s", o->region ? o->region : "");
  snprintf(m->zone, sizeof(m->zone), "%s", o->zone ? o->zone : "");
  m->plane = o->plane;
  m->store = o->store;
  m->og = o->og;
  m->engines = o->engines;
  m->upload = o->upload;
  m->download = o->download;
  for (uint32_t i = 0; i < ND_FILES_MAX; i++)
    atomic_init(&m->files[i].used, false);
  m->published_ms = fd_now_ms() - ND_METRICS_PUBLISH_MS;
  nd_metrics_tick(m);
  int rc = fd_metrics_server_start(o->listen, o->port_file, render, m, &m->srv);
  if (rc) {
    fd_log_error("metrics_listen %s: %s", o->listen, fd_strerror(rc));
    free(m);
    return rc;
  }
  fd_log_info("/metrics on port %u", fd_metrics_server_port(m->srv));
  *out = m;
  return 0;
}

void nd_metrics_stop(nd_metrics_t *m) {
  if (!m) return;
  fd_metrics_server_stop(m->srv);
  free(m);
}
