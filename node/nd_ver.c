/*
 * nd_ver.c — the chunk plane's open versions: a fixed table of ND_VERS_MAX
 * slots, each filled from the plane's source and evicted least recently
 * used once nothing uses it; on engine 0, the store-backed source and what
 * only the store can do (begin from a manifest, delta, complete, abort, GC).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_error.h"
#include "nd_plane_int.h"

/* ---- the store-backed source (engine 0) ------------------------------------------ */

static int open_data_fd(nd_plane_t *p, nd_ver_t *v) {
  char path[FD_PATH_LEN_MAX + 256];
  snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 "%s", p->data_dir, v->name, v->version,
           v->complete ? "" : ".partial");
  v->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (v->fd < 0 && errno == EINVAL) v->fd = open(path, O_RDONLY | O_CLOEXEC); /* tmpfs */
  return v->fd < 0 ? -errno : 0;
}

/* Fills v from a storage handle; on failure closes sv and leaves v empty. */
static int fill_from_store(nd_plane_t *p, nd_ver_t *v, st_version_t *sv) {
  v->sv = sv;
  v->m = st_version_manifest(sv);
  snprintf(v->name, sizeof(v->name), "%s", v->m->name);
  v->version = v->m->version;
  v->complete = st_version_is_complete(sv);
  st_manifest_digest(v->m, v->digest);
  size_t len = 0;
  int rc = st_manifest_encode(v->m, &v->menc, &len);
  v->menc_len = len;
  if (!rc) rc = open_data_fd(p, v);
  if (rc) {
    st_version_close(sv);
    free(v->menc);
    v->menc = NULL;
    v->sv = NULL;
    v->fd = -1;
  }
  return rc;
}

static int store_open(void *arg, const char *name, uint64_t version, nd_ver_t *v) {
  nd_plane_t *p = arg;
  st_version_t *sv;
  int rc = st_version_open(p->store, name, version, &sv);
  return rc ? rc : fill_from_store(p, v, sv);
}

static void store_close(void *arg, nd_ver_t *v) {
  (void)arg;
  if (v->fd >= 0) close(v->fd);
  if (v->sv) st_version_close(v->sv);
  free(v->menc);
}

static bool store_has(void *arg, const nd_ver_t *v, uint32_t index) {
  (void)arg;
  return st_version_has(v->sv, index); /* false for a chunk scrub marked bad */
}

static uint64_t store_newest(void *arg, const char *name) {
  nd_plane_t *p = arg;
  uint64_t list[FD_STORE_VERSIONS_SCAN_MAX];
  int k = st_versions(p->store, name, list, FD_ARRAY_LEN(list));
  return k > 0 ? list[k - 1] : 0;
}

static int store_mark_bad(void *arg, nd_ver_t *v, uint32_t index) {
  (void)arg;
  if (!v->complete) return -EINVAL; /* an incomplete version's chunk is simply fetched again */
  return st_chunk_mark_bad(v->sv, index);
}

const nd_source_t nd_store_source = {store_open, store_close, store_has, store_newest,
                                     store_mark_bad};

/* ---- the table ------------------------------------------------------------------- */

static bool ver_busy(const nd_ver_t *v) {
  return v->users || v->completing || v->delta_running || (v->sv && st_version_inflight(v->sv));
}

static void ver_drop(nd_plane_t *p, nd_ver_t *v) {
  p->src->close(p->src_arg, v);
  memset(v, 0, sizeof(*v));
  v->fd = -1;
  v->p = p;
}

nd_ver_t *nd_ver_find(nd_plane_t *p, const char *name, uint64_t version) {
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &p->vers[i];
    if (v->used && v->version == version && !strcmp(v->name, name)) return v;
  }
  return NULL;
}

nd_ver_t *nd_plane_ver_at(nd_plane_t *p, uint32_t i) {
  return i < ND_VERS_MAX && p->vers[i].used ? &p->vers[i] : NULL;
}

/* A free slot, evicting the least recently used version nobody uses. */
static nd_ver_t *ver_slot(nd_plane_t *p) {
  nd_ver_t *best = NULL;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &p->vers[i];
    if (!v->used) return v;
    if (ver_busy(v)) continue;
    if (!best || v->last_used_ms < best->last_used_ms) best = v;
  }
  if (best) ver_drop(p, best);
  return best;
}

static void ver_in_use(nd_ver_t *v) {
  v->used = true;
  v->last_used_ms = fd_now_ms();
}

int nd_ver_open(nd_plane_t *p, const char *name, uint64_t version, nd_ver_t **out) {
  nd_ver_t *v = nd_ver_find(p, name, version);
  if (v) {
    v->last_used_ms = fd_now_ms();
    *out = v;
    return 0;
  }
  if (!st_name_valid(name) || !version) return -EINVAL;
  if (!(v = ver_slot(p))) return -EBUSY;
  int rc = p->src->open(p->src_arg, name, version, v);
  if (rc) {
    memset(v, 0, sizeof(*v));
    v->fd = -1;
    v->p = p;
    return rc;
  }
  snprintf(v->name, sizeof(v->name), "%s", name);
  v->version = version;
  ver_in_use(v);
  *out = v;
  return 0;
}

void nd_ver_get(nd_ver_t *v) {
  v->users++;
  v->last_used_ms = fd_now_ms();
}

void nd_ver_put(nd_ver_t *v) {
  FD_ASSERT(v->users > 0);
  v->users--;
  v->last_used_ms = fd_now_ms();
}

bool nd_ver_close_idle(nd_plane_t *p, nd_ver_t *v) {
  if (!v->used || ver_busy(v)) return false;
  ver_drop(p, v);
  return true;
}

bool nd_ver_has(nd_plane_t *p, const nd_ver_t *v, uint32_t index) {
  return p->src->has(p->src_arg, v, index);
}

bool nd_ver_reusing(const nd_plane_t *p, const nd_ver_t *v, uint32_t index) {
  return p->store && v->sv && v->delta_running && st_version_reusing(v->sv, index);
}

uint64_t nd_newest_complete(nd_plane_t *p, const char *name) {
  return p->src->newest(p->src_arg, name);
}

void nd_ver_chunk_bad(nd_plane_t *p, nd_ver_t *v, uint32_t index) {
  if (p->src->mark_bad(p->src_arg, v, index) != 0) return;
  if (p->hooks.chunk_bad) p->hooks.chunk_bad(p->hooks.arg, v, index);
}

void nd_vers_close_all(nd_plane_t *p) {
  for (uint32_t i = 0; i < ND_VERS_MAX; i++)
    if (p->vers[i].used) ver_drop(p, &p->vers[i]);
}

/* ---- engine 0: what only the store does ----------------------------------------- */

/* Drops an incomplete version's files so a different manifest can take its
 * number (a publish that failed before it was acknowledged). */
static void discard_partial(nd_plane_t *p, const char *name, uint64_t version) {
  static const char *const sfx[] = {".partial", ".bitmap", ".manifest"};
  char path[FD_PATH_LEN_MAX + 256];
  for (size_t i = 0; i < FD_ARRAY_LEN(sfx); i++) {
    snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 "%s", p->data_dir, name, version, sfx[i]);
    unlink(path);
  }
}

void nd_ver_abort(nd_plane_t *p, const char *name, uint64_t version) {
  FD_ASSERT(p->store);
  nd_ver_t *v = nd_ver_find(p, name, version);
  if (!v || v->complete) return;
  v->aborted = true; /* never served again; replaced by the next manifest of its number */
  if (ver_busy(v)) return;
  ver_drop(p, v);
  discard_partial(p, name, version);
}

int nd_ver_begin(nd_plane_t *p, const void *menc, size_t len, nd_ver_t **out) {
  FD_ASSERT(p->store);
  st_manifest_t *m;
  int rc = st_manifest_decode(menc, len, &m);
  if (rc) return rc;
  uint8_t digest[FD_SHA256_LEN];
  st_manifest_digest(m, digest);
  nd_ver_t *v = nd_ver_find(p, m->name, m->version);
  if (v && memcmp(v->digest, digest, FD_SHA256_LEN) && !v->complete && !ver_busy(v)) {
    ver_drop(p, v); /* an abandoned attempt at this number (a publish that failed) */
    v = NULL;
  }
  if (v) {
    bool same = !memcmp(v->digest, digest, FD_SHA256_LEN);
    st_manifest_free(m);
    if (!same) return -EEXIST;
    v->aborted = false; /* the same manifest again: a retried publish */
    v->last_used_ms = fd_now_ms();
    *out = v;
    return 0;
  }
  v = ver_slot(p);
  if (!v) {
    st_manifest_free(m);
    return -EBUSY;
  }
  st_version_t *sv;
  rc = st_version_begin(p->store, menc, len, &sv);
  if (rc == -EEXIST && nd_newest_complete(p, m->name) < m->version) {
    fd_log_warn("%s v%" PRIu64 ": replacing an unfinished version with a new manifest", m->name,
                m->version);
    discard_partial(p, m->name, m->version);
    rc = st_version_begin(p->store, menc, len, &sv);
  }
  st_manifest_free(m);
  if (rc) return rc;
  if ((rc = fill_from_store(p, v, sv)) != 0) return rc;
  ver_in_use(v);
  *out = v;
  return 0;
}

static void on_delta(void *arg, int res) {
  nd_ver_t *v = arg;
  v->delta_running = false;
  void (*done)(void *, nd_ver_t *, int) = v->delta_done;
  void *darg = v->delta_arg;
  v->delta_done = NULL;
  v->delta_arg = NULL;
  nd_ver_put(v);
  if (done) done(darg, v, res);
}

int nd_ver_delta(nd_plane_t *p, nd_ver_t *v, void (*done)(void *arg, nd_ver_t *v, int res),
                 void *arg) {
  FD_ASSERT(p->store);
  if (v->delta_running) return -EALREADY;
  v->delta_running = true;
  v->delta_done = done;
  v->delta_arg = arg;
  nd_ver_get(v);
  int rc = st_version_delta(v->sv, &v->bytes_reused, on_delta, v);
  if (rc) {
    v->delta_running = false;
    v->delta_done = NULL;
    nd_ver_put(v);
  }
  return rc;
}

/* GC by the keep rule: idle open handles of versions the rule drops are
 * closed first (storage never removes an open version). */
int nd_gc(nd_plane_t *p, const char *name, uint32_t keep) {
  FD_ASSERT(p->store);
  if (keep == 0) keep = p->keep_versions;
  uint64_t newest = nd_newest_complete(p, name);
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &p->vers[i];
    if (!v->used || strcmp(v->name, name) || !v->complete || ver_busy(v) ||
        v->version + keep > newest)
      continue;
    ver_drop(p, v);
  }
  int rc = st_gc_keep(p->store, name, keep);
  if (rc > 0) fd_log_info("%s: gc removed %d old version(s)", name, rc);
  return rc;
}

static void on_complete(void *arg, int res) {
  nd_ver_t *v = arg;
  v->completing = false;
  if (res == 0) {
    v->complete = true;
    fd_log_info("%s v%" PRIu64 " complete, current switched", v->name, v->version);
    nd_gc(v->p, v->name, 0);
  } else {
    fd_log_error("%s v%" PRIu64 " completion failed: %s", v->name, v->version, fd_strerror(res));
  }
  st_done_fn done = v->complete_done;
  void *darg = v->complete_arg;
  v->complete_done = NULL;
  v->complete_arg = NULL;
  if (done) done(darg, res);
}

int nd_ver_complete(nd_plane_t *p, nd_ver_t *v, st_done_fn done, void *arg) {
  FD_ASSERT(p->store);
  if (v->complete) return -EALREADY;
  if (v->completing) return -EINPROGRESS;
  v->complete_done = done;
  v->complete_arg = arg;
  int rc = st_version_complete(v->sv, on_complete, v);
  if (rc) {
    v->complete_done = NULL;
    v->complete_arg = NULL;
    return rc;
  }
  v->completing = true;
  return 0;
}
