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
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    p->vers[i].fd = -1;
    p->vers[i].p = p;
  }
  uint32_t count = fd_pool_count(p->pool);
  p->bufm = calloc(count, sizeof(*p->bufm));
  p->backlog = calloc(count, sizeof(*p->backlog));
  if (!p->bufm || !p->backlog) {
    free(p->bufm);
    free(p->backlog);
    free(p);
    errno = ENOMEM;
    return NULL;
  }
  return p;
}

void nd_plane_destroy(nd_plane_t *p) {
  if (!p) return;
  nd_vers_close_all(p);
  nd_tx_free_all(p);
  free(p->bufm);
  free(p->backlog);
  free(p);
}

void nd_plane_tick(nd_plane_t *p) {
  nd_backlog_run(p);
  nd_tx_tick(p);
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
