/* nd_plane.c — the chunk plane's life: create, the loop turn, destroy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nd_plane_int.h"

nd_plane_t *nd_plane_create(const nd_plane_opts_t *o) {
  FD_ASSERT(o->e && o->ring && o->pool && (o->store || o->src));
  nd_plane_t *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->e = o->e;
  p->ring = o->ring;
  p->pool = o->pool;
  p->store = o->store;
  p->src = o->store ? &nd_store_source : o->src;
  p->src_arg = o->store ? (void *)p : o->src_arg;
  snprintf(p->data_dir, sizeof(p->data_dir), "%s", o->data_dir ? o->data_dir : "");
  p->window_chunks = o->window_chunks ? o->window_chunks : ND_WINDOW_CHUNKS_DEFAULT;
  p->keep_versions = o->keep_versions ? o->keep_versions : FD_VERSIONS_KEPT_DEFAULT;
  p->hooks = o->hooks;
  p->upload = o->upload;
  p->download = o->download;
  for (uint32_t i = 0; i < ND_PEER_CLASSES; i++) {
    atomic_init(&p->m.rx_bytes[i], 0);
    atomic_init(&p->m.tx_bytes[i], 0);
  }
  atomic_init(&p->m.chunks_verified, 0);
  atomic_init(&p->m.chunks_rejected, 0);
  atomic_init(&p->m.blocked_window_ns, 0);
  atomic_init(&p->m.blocked_pool_ns, 0);
  atomic_init(&p->m.blocked_socket_ns, 0);
  atomic_init(&p->m.credit_write_ns, 0);
  atomic_init(&p->m.credit_sync_ns, 0);
  atomic_init(&p->m.child_other_ns, 0);
  for (uint32_t i = 0; i < ND_CHILD_STALLS_MAX; i++) {
    atomic_init(&p->m.child[i].used, false);
    atomic_init(&p->m.child[i].blocked_ns, 0);
  }
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    p->vers[i].fd = -1;
    p->vers[i].p = p;
  }
  uint32_t count = fd_pool_count(p->pool);
  p->bufm = calloc(count, sizeof(*p->bufm));
  p->puts = calloc(2 * (size_t)count, sizeof(*p->puts)); /* nd_put_t */
  p->backlog = calloc(count, sizeof(*p->backlog));
  if (!p->bufm || !p->puts || !p->backlog) {
    free(p->bufm);
    free(p->puts);
    free(p->backlog);
    free(p);
    errno = ENOMEM;
    return NULL;
  }
  for (uint32_t i = 0; i < 2 * count; i++) {
    p->puts[i].next_free = p->put_free;
    p->put_free = &p->puts[i];
  }
  return p;
}

void nd_plane_destroy(nd_plane_t *p) {
  if (!p) return;
  nd_vers_close_all(p);
  nd_tx_free_all(p);
  free(p->bufm);
  free(p->puts);
  free(p->backlog);
  free(p);
}

void nd_plane_describe(const nd_plane_t *p, char *buf, size_t len) {
  snprintf(buf, len, "pool %u/%u free, backlog %u, receiving sinks %u, storage in flight %u",
           fd_pool_available(p->pool), fd_pool_count(p->pool), p->backlog_n, p->rx_sinks,
           p->store ? st_store_inflight(p->store) : 0);
}

void nd_plane_tick(nd_plane_t *p) {
  nd_backlog_run(p);
  nd_credit_run(p);
  nd_tx_tick(p);
  /* The rpc engine's own counters are single-threaded: copied into the
   * plane's atomics at most every ND_METRICS_PUBLISH_MS. */
  uint64_t now = fd_now_ns();
  if (now - p->m_published_ns >= (uint64_t)ND_METRICS_PUBLISH_MS * 1000000u) {
    p->m_published_ns = now;
    rpc_stats_t st;
    rpc_engine_get_stats(p->e, &st);
    fd_counter_set(&p->m.blocked_window_ns, st.blocked_window_ns);
    fd_counter_set(&p->m.blocked_socket_ns, st.blocked_socket_ns);
    for (uint32_t i = 0; i < ND_TX_MAX; i++)
      if (p->txs[i].used) nd_tx_stall_count(&p->txs[i]);
  }
}

const nd_plane_metrics_t *nd_plane_metrics(const nd_plane_t *p) { return &p->m; }

const char *nd_peer_class_name(nd_peer_class_t l) {
  static const char *const names[ND_PEER_CLASSES] = {
      "unknown", "same_zone", "cross_zone", "cross_region", "origin", "publish"};
  return (unsigned)l < ND_PEER_CLASSES ? names[l] : "unknown";
}

nd_peer_class_t nd_peer_class_from_wire(uint32_t v) {
  return v <= ND_PEER_ORIGIN ? (nd_peer_class_t)v : ND_PEER_UNKNOWN;
}

bool nd_plane_idle(const nd_plane_t *p) {
  if (p->backlog_n) return false;
  if (p->store && st_store_inflight(p->store)) return false;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++)
    if (p->vers[i].completing || p->vers[i].delta_running) return false;
  return true;
}

uint64_t nd_plane_tx_bytes(const nd_plane_t *p) { return p->tx_bytes; }
uint64_t nd_plane_rx_bytes(const nd_plane_t *p) { return p->rx_bytes; }
