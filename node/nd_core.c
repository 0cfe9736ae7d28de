/*
 * nd_core.c — the node's life (create, run loop, stop, destroy), its open
 * versions, the pool buffers' reference counts, and the chunk sink that
 * hands received chunks to storage and on to the children.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_error.h"
#include "nd_int.h"

int nd_parse_hostport(const char *s, char *addr, size_t addr_len, uint16_t *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || (size_t)(colon - s) >= addr_len) return -EINVAL;
  char *end;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (*end || p > 65535 || end == colon + 1) return -EINVAL;
  memcpy(addr, s, (size_t)(colon - s));
  addr[colon - s] = 0;
  *port = (uint16_t)p;
  return 0;
}

/* ---- versions ---------------------------------------------------------------- */

nd_ver_t *nd_ver_find(nd_node_t *n, const char *name, uint64_t version) {
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &n->vers[i];
    if (v->used && v->version == version && !strcmp(v->name, name)) return v;
  }
  return NULL;
}

/* A free slot, evicting the least recently used version nobody uses. */
static nd_ver_t *ver_slot(nd_node_t *n) {
  nd_ver_t *best = NULL;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &n->vers[i];
    if (!v->used) return v;
    if (v->users || v->completing || v->delta_running || st_version_inflight(v->sv)) continue;
    if (!best || v->last_used_ms < best->last_used_ms) best = v;
  }
  if (!best) return NULL;
  if (best->fd >= 0) close(best->fd);
  st_version_close(best->sv);
  free(best->menc);
  memset(best, 0, sizeof(*best));
  return best;
}

static int open_data_fd(nd_node_t *n, nd_ver_t *v) {
  char path[FD_PATH_LEN_MAX + 256];
  snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 "%s", n->cfg.data_dir, v->name, v->version,
           v->complete ? "" : ".partial");
  v->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (v->fd < 0 && errno == EINVAL) v->fd = open(path, O_RDONLY | O_CLOEXEC);
  return v->fd < 0 ? -errno : 0;
}

static int ver_fill(nd_node_t *n, nd_ver_t *v, st_version_t *sv) {
  v->used = true;
  v->sv = sv;
  v->m = st_version_manifest(sv);
  snprintf(v->name, sizeof(v->name), "%s", v->m->name);
  v->version = v->m->version;
  v->complete = st_version_is_complete(sv);
  v->last_used_ms = fd_now_ms();
  st_manifest_digest(v->m, v->digest);
  size_t len;
  int rc = st_manifest_encode(v->m, &v->menc, &len);
  v->menc_len = len;
  if (!rc) rc = open_data_fd(n, v);
  if (rc) {
    if (v->fd >= 0) close(v->fd);
    st_version_close(sv);
    free(v->menc);
    memset(v, 0, sizeof(*v));
    v->fd = -1;
  }
  return rc;
}

/* Drops an incomplete version's files so a different manifest can take its
 * number (a publish that failed before it was acknowledged). */
static void discard_partial(nd_node_t *n, const char *name, uint64_t version) {
  static const char *const sfx[] = {".partial", ".bitmap", ".manifest"};
  char path[FD_PATH_LEN_MAX + 256];
  for (size_t i = 0; i < FD_ARRAY_LEN(sfx); i++) {
    snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 "%s", n->cfg.data_dir, name, version, sfx[i]);
    unlink(path);
  }
}

static bool ver_idle(const nd_ver_t *v) {
  return !v->complete && !v->users && !v->completing && !v->delta_running &&
         !st_version_inflight(v->sv);
}

static void ver_drop(nd_ver_t *v) {
  if (v->fd >= 0) close(v->fd);
  st_version_close(v->sv);
  free(v->menc);
  memset(v, 0, sizeof(*v));
  v->fd = -1;
}

void nd_ver_abort(nd_node_t *n, const char *name, uint64_t version) {
  nd_ver_t *v = nd_ver_find(n, name, version);
  if (!v || v->complete) return;
  v->aborted = true; /* never served again; replaced by the next manifest of its number */
  if (!ver_idle(v)) return;
  ver_drop(v);
  discard_partial(n, name, version);
}

int nd_ver_begin(nd_node_t *n, const void *menc, size_t len, nd_ver_t **out) {
  st_manifest_t *m;
  int rc = st_manifest_decode(menc, len, &m);
  if (rc) return rc;
  uint8_t digest[FD_SHA256_LEN];
  st_manifest_digest(m, digest);
  nd_ver_t *v = nd_ver_find(n, m->name, m->version);
  if (v && memcmp(v->digest, digest, FD_SHA256_LEN) && ver_idle(v)) {
    ver_drop(v); /* an abandoned attempt at this number (a publish that failed) */
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
  v = ver_slot(n);
  if (!v) {
    st_manifest_free(m);
    return -EBUSY;
  }
  st_version_t *sv;
  rc = st_version_begin(n->store, menc, len, &sv);
  if (rc == -EEXIST && nd_newest_complete(n, m->name) < m->version) {
    fd_log_warn("%s v%" PRIu64 ": replacing an unfinished version with a new manifest", m->name,
                m->version);
    discard_partial(n, m->name, m->version);
    rc = st_version_begin(n->store, menc, len, &sv);
  }
  st_manifest_free(m);
  if (rc) return rc;
  v->fd = -1;
  if ((rc = ver_fill(n, v, sv)) != 0) return rc;
  *out = v;
  return 0;
}

int nd_ver_open(nd_node_t *n, const char *name, uint64_t version, nd_ver_t **out) {
  nd_ver_t *v = nd_ver_find(n, name, version);
  if (v) {
    v->last_used_ms = fd_now_ms();
    *out = v;
    return 0;
  }
  if (n->shard) return nd_shard_ver_open(n, name, version, out); /* a serving engine */
  if (!st_name_valid(name)) return -EINVAL;
  if (!(v = ver_slot(n))) return -EBUSY;
  st_version_t *sv;
  int rc = st_version_open(n->store, name, version, &sv);
  if (rc) return rc;
  v->fd = -1;
  if ((rc = ver_fill(n, v, sv)) != 0) return rc;
  *out = v;
  return 0;
}

void nd_ver_put(nd_node_t *n, nd_ver_t *v) {
  (void)n;
  FD_ASSERT(v->users > 0);
  v->users--;
  v->last_used_ms = fd_now_ms();
}

bool nd_ver_has(const nd_ver_t *v, uint32_t index) {
  if (!v->sv) return nd_shard_ver_has(v, index); /* a serving engine's view */
  return st_version_has(v->sv, index); /* false for a chunk scrub marked bad */
}

uint64_t nd_newest_complete(nd_node_t *n, const char *name) {
  if (n->shard) return nd_shard_newest_complete(n, name);
  uint64_t list[FD_STORE_VERSIONS_SCAN_MAX];
  int k = st_versions(n->store, name, list, FD_ARRAY_LEN(list));
  return k > 0 ? list[k - 1] : 0;
}

/* GC by the keep rule: idle open handles of versions the rule drops are
 * closed first (storage never removes an open version). */
int nd_gc(nd_node_t *n, const char *name, uint32_t keep) {
  if (keep == 0) keep = n->cfg.keep_versions;
  uint64_t newest = nd_newest_complete(n, name);
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &n->vers[i];
    if (!v->used || strcmp(v->name, name) || !v->complete || v->users || v->completing ||
        v->delta_running || st_version_inflight(v->sv) ||
        v->version + keep > newest)
      continue;
    if (v->fd >= 0) close(v->fd);
    st_version_close(v->sv);
    free(v->menc);
    memset(v, 0, sizeof(*v));
    v->fd = -1;
  }
  int rc = st_gc_keep(n->store, name, keep);
  if (rc > 0) fd_log_info("%s: gc removed %d old version(s)", name, rc);
  return rc;
}

typedef struct complete_ctx {
  nd_node_t *n;
  nd_ver_t *v;
  st_done_fn done;
  void *arg;
} complete_ctx_t;

static void on_complete(void *arg, int res) {
  complete_ctx_t *c = arg;
  c->v->completing = false;
  if (res == 0) {
    c->v->complete = true;
    fd_log_info("%s v%" PRIu64 " complete, current switched", c->v->name, c->v->version);
    nd_gc(c->n, c->v->name, 0);
  } else {
    fd_log_error("%s v%" PRIu64 " completion failed: %s", c->v->name, c->v->version,
                 fd_strerror(res));
  }
  st_done_fn done = c->done;
  void *darg = c->arg;
  free(c);
  if (done) done(darg, res);
}

/* Completes v (all chunks present). -EAGAIN: operations still in flight. */
int nd_version_complete(nd_node_t *n, nd_ver_t *v, st_done_fn done, void *arg) {
  if (v->complete) return -EALREADY;
  if (v->completing) return -EINPROGRESS;
  complete_ctx_t *c = malloc(sizeof(*c));
  if (!c) return -ENOMEM;
  *c = (complete_ctx_t){n, v, done, arg};
  int rc = st_version_complete(v->sv, on_complete, c);
  if (rc) {
    free(c);
    return rc;
  }
  v->completing = true;
  return 0;
}

/* ---- buffers ----------------------------------------------------------------- */

void nd_buf_ref(nd_node_t *n, void *buf) { n->bufm[fd_pool_index(n->pool, buf)].refs++; }

void nd_buf_unref(nd_node_t *n, void *buf) {
  nd_bufm_t *b = &n->bufm[fd_pool_index(n->pool, buf)];
  FD_ASSERT(b->refs > 0);
  if (--b->refs == 0) {
    b->sink = NULL;
    fd_pool_put(n->pool, buf);
  }
}

void nd_buf_sent(void *buf, void *arg) { nd_buf_unref(arg, buf); }

/* ---- the sink: received chunks into storage ----------------------------------- */

static void put_finish(nd_node_t *n, nd_bufm_t *b, void *buf, int res) {
  nd_sink_t *s = b->sink;
  nd_ver_t *v = b->ver;
  s->puts--;
  if (res == 0) {
    s->rx_bytes += b->len;
    n->rx_bytes += b->len;
    nd_engines_chunk_durable(n, v, b->chunk); /* tell the serving engines */
  } else if (res != -EALREADY) {
    fd_log_warn("chunk %u of %s v%" PRIu64 " not stored: %s", b->chunk, v->name, v->version,
                fd_strerror(res));
    if (!s->err) s->err = res;
  }
  if (s->call && s->gen == b->gen) rpc_call_data_done(s->call, b->len);
  nd_ver_put(n, v);
  nd_buf_unref(n, buf);
}

static void on_put(void *arg, int res) {
  nd_bufm_t *b = arg;
  nd_node_t *n = b->n;
  put_finish(n, b, fd_pool_buf(n->pool, b->idx), res);
}

/* 0 queued (or finished with an error), -EAGAIN: no storage slot yet. */
static int put_try(nd_node_t *n, void *buf) {
  nd_bufm_t *b = &n->bufm[fd_pool_index(n->pool, buf)];
  nd_sink_t *s = b->sink;
  int rc = st_chunk_put(b->ver->sv, b->chunk, buf, b->len, on_put, b);
  if (rc == 0) {
    if (s->forward) nd_forward(n, b->ver, b->chunk, buf, b->len);
    return 0;
  }
  if (rc == -EAGAIN) return rc;
  if (rc == -EINVAL && b->ver->complete) rc = -EALREADY;
  put_finish(n, b, buf, rc);
  return 0;
}

/* Retries, in arrival order, the chunks that waited for a storage slot. */
void nd_backlog_run(nd_node_t *n) {
  uint32_t done = 0;
  while (done < n->backlog_n && put_try(n, fd_pool_buf(n->pool, n->backlog[done])) == 0) done++;
  if (!done) return;
  memmove(n->backlog, n->backlog + done, (n->backlog_n - done) * sizeof(*n->backlog));
  n->backlog_n -= done;
}

void nd_sink_header(nd_sink_t *s, const Node__ChunkHeader *h) {
  s->has_hdr = true;
  s->hdr_index = (uint32_t)h->index;
  s->hdr_len = h->length;
}

void nd_sink_on_data(nd_node_t *n, nd_sink_t *s, rpc_call_t *call, void *buf, uint32_t len) {
  if (!s->has_hdr || !s->ver || len != s->hdr_len || s->hdr_index >= s->ver->m->chunk_count) {
    fd_log_warn("data frame without a matching chunk header: dropped");
    fd_pool_put(n->pool, buf);
    rpc_call_data_done(call, len);
    if (!s->err) s->err = -EPROTO;
    return;
  }
  s->has_hdr = false;
  nd_bufm_t *b = &n->bufm[fd_pool_index(n->pool, buf)];
  s->ver->users++;
  *b = (nd_bufm_t){.refs = 1, .sink = s, .ver = s->ver, .gen = s->gen, .chunk = s->hdr_index, .len = len,
                  .n = n, .idx = fd_pool_index(n->pool, buf)};
  s->puts++;
  if (n->backlog_n == 0 && put_try(n, buf) == 0) return;
  n->backlog[n->backlog_n++] = fd_pool_index(n->pool, buf);
}

void nd_sink_start(nd_node_t *n, nd_sink_t *s, rpc_call_t *call) {
  if (!s->call) n->rx_sinks++;
  s->call = call;
}

void nd_sink_end(nd_node_t *n, nd_sink_t *s) {
  if (s->call) n->rx_sinks--;
  s->call = NULL;
  s->gen++;
  s->has_hdr = false;
}

bool nd_tx_may_hold(const nd_node_t *n) {
  uint32_t reserve = FD_MAX(ND_POOL_RESERVE, n->rx_sinks * n->window_chunks + 2);
  return fd_pool_available(n->pool) > reserve;
}

/* ---- scrub ------------------------------------------------------------------------ */

/* Storage marked the chunk bad (not served, not reused); nd_repair reports
 * it to fdsched and re-fetches it in place. */
static void on_scrub_bad(void *arg, const char *name, uint64_t version, uint32_t index, int err) {
  nd_node_t *n = arg;
  n->scrub_bad++;
  fd_log_error("scrub: %s v%" PRIu64 " chunk %u is bad (%s); it will not be served or reused",
               name, version, index, fd_strerror(err));
  nd_repair_bad(n, name, version, index);
}

static void on_scrub_done(void *arg, int res) {
  nd_node_t *n = arg;
  nd_ver_t *v = n->scrubbing;
  n->scrubbing = NULL;
  if (!v) return;
  if (res < 0) fd_log_warn("scrub of %s v%" PRIu64 ": %s", v->name, v->version, fd_strerror(res));
  else fd_log_info("scrub of %s v%" PRIu64 ": %d bad chunk(s)", v->name, v->version, res);
  nd_ver_put(n, v);
}

void nd_scrub_tick(nd_node_t *n) {
  if (!n->cfg.scrub_interval_s || n->scrubbing) return;
  uint64_t now = fd_now_ms(), every = (uint64_t)n->cfg.scrub_interval_s * 1000;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &n->vers[i];
    if (!v->used || !v->complete) continue;
    if (!v->scrubbed_ms) v->scrubbed_ms = now; /* first scrub one interval after completion */
    if (now - v->scrubbed_ms < every) continue;
    v->scrubbed_ms = now;
    if (st_scrub(v->sv, n->cfg.scrub_rate_bytes, on_scrub_bad, on_scrub_done, n) != 0) continue;
    v->users++;
    n->scrubbing = v;
    return;
  }
}

/* ---- life ----------------------------------------------------------------------- */

static int load_cluster_key(nd_node_t *n) {
  FILE *f = fopen(n->cfg.cluster_key_file, "r");
  if (!f) return -errno;
  char hex[2 * FD_HMAC_KEY_LEN_MAX + 2] = {0};
  size_t got = fread(hex, 1, sizeof(hex) - 1, f);
  fclose(f);
  while (got && (hex[got - 1] == '\n' || hex[got - 1] == '\r' || hex[got - 1] == ' '))
    hex[--got] = 0;
  if (got != 64) return -EINVAL;
  int k = fd_hex_decode(hex, n->cluster_key, sizeof(n->cluster_key));
  if (k != 32) return -EINVAL;
  n->cluster_key_len = 32;
  return 0;
}

rpc_engine_opts_t nd_engine_opts(const nd_node_t *n) {
  const nd_config_t *cfg = &n->cfg;
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.ring_entries = 1024;
  /* rpc raises each window to payload_max: keep it at one chunk buffer. */
  o.payload_max = (uint32_t)FD_MAX(cfg->chunk_buf_bytes, 1024u * 1024u);
  /* Every DATA frame holds one pool buffer until storage is done with it
   * (written AND fdatasync'd, which is when put_finish returns the credit),
   * whatever its length, so the windows bound the buffers a peer can make us
   * hold: window_chunks largest chunks per stream and per connection. One
   * chunk would be stop-and-wait per hop — the sender idles through our
   * write and group fdatasync — so the default keeps 4 in flight; more only
   * queues data in front of each chunk on a slow link (per-hop latency of a
   * cut-through tree). With chunks smaller than chunk_buf more frames fit,
   * so the pool holds more buffers than that; a download stream that still
   * finds the pool empty fails and its stripe is re-fetched ND_RETRY_MS
   * later. */
  uint32_t win = n->window_chunks;
  o.stream_window_bytes = win * (uint32_t)cfg->chunk_buf_bytes;
  o.conn_window_bytes = win * (uint32_t)cfg->chunk_buf_bytes;
  o.cluster_key = n->cluster_key;
  o.cluster_key_len = n->cluster_key_len;
  o.admin_pub = n->admin_pub.pub;
  o.bulk_pool = n->pool;
  o.reuseport = nd_engines_wanted(cfg) > 1; /* the serving engines share the port */
  return o;
}

int nd_node_create(const nd_config_t *cfg, nd_node_t **out) {
  nd_node_t *n = calloc(1, sizeof(*n));
  if (!n) return -ENOMEM;
  n->cfg = *cfg;
  n->window_chunks = nd_config_window_chunks(cfg);
  n->origin = !strcmp(cfg->role, "origin");
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) n->vers[i].fd = -1;
  int rc = load_cluster_key(n);
  if (rc) {
    fd_log_error("cluster key %s: %s", cfg->cluster_key_file, fd_strerror(rc));
    goto out_free;
  }
  if ((rc = fd_ed25519_load(cfg->admin_pub_file, &n->admin_pub)) != 0) {
    fd_log_error("admin public key %s: %s", cfg->admin_pub_file, fd_strerror(rc));
    goto out_free;
  }
  if ((rc = nd_origins_parse(cfg->origins, cfg->id, n->origins, ND_ORIGINS_MAX, &n->origins_n,
                             &n->self_origin)) != 0) {
    fd_log_error("node.origins: %s", fd_strerror(rc));
    goto out_free;
  }
  if (n->origin && n->self_origin < 0) {
    fd_log_error("node.origins does not list this origin's id %s", cfg->id);
    rc = -EINVAL;
    goto out_free;
  }
  n->pool = fd_pool_create(cfg->pool_buffers, cfg->chunk_buf_bytes);
  n->bufm = calloc(cfg->pool_buffers, sizeof(*n->bufm));
  n->backlog = calloc(cfg->pool_buffers, sizeof(*n->backlog));
  if (!n->pool || !n->bufm || !n->backlog) {
    rc = -ENOMEM;
    goto out_free;
  }
  rpc_engine_opts_t o = nd_engine_opts(n);
  n->e = rpc_engine_create(&o);
  if (!n->e) {
    rc = errno ? -errno : -EIO;
    fd_log_error("rpc engine: %s", fd_strerror(rc));
    goto out_free;
  }
  n->ring = rpc_engine_ring(n->e);
  st_config_t sc;
  st_config_defaults(&sc);
  sc.data_dir = cfg->data_dir;
  sc.ring = n->ring;
  sc.pool = n->pool;
  sc.pool_registered = true;
  sc.queue_depth = FD_MIN(FD_QUEUE_DEPTH_MAX, cfg->pool_buffers / 2);
  sc.versions_kept = cfg->keep_versions;
  sc.have_trusted_key = true;
  memcpy(sc.trusted_pub, n->admin_pub.pub, FD_ED25519_PUB_LEN);
  if ((rc = st_store_open(&sc, &n->store)) != 0) {
    fd_log_error("store %s: %s", cfg->data_dir, fd_strerror(rc));
    goto out_engine;
  }
  uint16_t port;
  if ((rc = nd_parse_hostport(cfg->listen, n->listen_addr, sizeof(n->listen_addr), &port)) ||
      (rc = nd_serve_register(n)) || (n->origin && (rc = nd_origin_register(n))) ||
      (rc = rpc_listen(n->e, n->listen_addr, port, &n->port))) {
    fd_log_error("listen %s: %s", cfg->listen, fd_strerror(rc));
    goto out_store;
  }
  if ((rc = nd_engines_start(n)) != 0) {
    fd_log_error("serving engines: %s", fd_strerror(rc));
    goto out_store;
  }
  if (cfg->scheduler[0])
    nd_parse_hostport(cfg->scheduler, n->sched.addr, sizeof(n->sched.addr), &n->sched.port);
  n->sched.heartbeat_ms = cfg->heartbeat_ms;
  fd_log_info("fdnode %s role %s listening on %s:%u, data %s", cfg->id, cfg->role,
              n->listen_addr, n->port, cfg->data_dir);
  *out = n;
  return 0;
out_store:
  st_store_close(n->store);
out_engine:
  rpc_engine_destroy(n->e);
out_free:
  if (n->pool) fd_pool_destroy(n->pool);
  free(n->bufm);
  free(n->backlog);
  free(n);
  return rc;
}

uint16_t nd_node_port(const nd_node_t *n) { return n->port; }

void nd_node_stop(nd_node_t *n) { n->stop = 1; }

int nd_node_run(nd_node_t *n) {
  while (!n->stop) {
    int rc = rpc_engine_run_once(n->e, 10);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) {
      fd_log_error("engine: %s", fd_strerror(rc));
      return rc;
    }
    nd_backlog_run(n);
    nd_tx_tick(n);
    nd_engines_tick(n);
    nd_scrub_tick(n);
    nd_repair_tick(n);
    if (n->sched.port) nd_sched_tick(n);
    if (!n->origin) nd_dl_tick(n);
    else nd_origin_tick(n);
  }
  fd_log_info("stopping: letting in-flight writes finish");
  nd_engines_stop(n);
  nd_dl_stop(n);
  uint64_t until = fd_now_ms() + ND_DRAIN_MS;
  while (fd_now_ms() < until) {
    nd_backlog_run(n);
    bool busy = n->backlog_n > 0 || st_store_inflight(n->store) > 0;
    for (uint32_t i = 0; i < ND_VERS_MAX; i++) busy |= n->vers[i].completing;
    busy |= n->scrubbing != NULL;
    if (!busy) break;
    rpc_engine_run_once(n->e, 10);
  }
  return 0;
}

void nd_node_destroy(nd_node_t *n) {
  if (!n) return;
  nd_engines_stop(n); /* when nd_node_run did not */
  /* The store goes first, while the ring still runs; then the engine, whose
   * teardown ends every call (their callbacks only release buffers). */
  /* a scrub cannot be cancelled: it ends at its configured rate */
  while ((n->scrubbing || st_store_inflight(n->store)) &&
         fd_ring_run_once(n->ring, 1, 100000000) >= -ETIME) {
  }
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &n->vers[i];
    if (!v->used) continue;
    if (v->fd >= 0) close(v->fd);
    st_version_close(v->sv);
    v->sv = NULL;
  }
  st_store_close(n->store);
  n->store = NULL;
  n->destroying = true;
  rpc_engine_destroy(n->e);
  nd_repair_destroy(n);
  nd_engines_destroy(n);
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) free(n->vers[i].menc);
  for (uint32_t i = 0; i < ND_TX_MAX; i++) free(n->txs[i].want);
  fd_pool_destroy(n->pool);
  free(n->bufm);
  free(n->backlog);
  free(n);
}
