/*
 * nd_engine.c — fdnode's serving engines: `threads` engines per node, one
 * io_uring each, shared nothing on the data path (Seastar / TigerBeetle).
 *
 * Engine 0 is the thread that calls nd_node_run: it keeps everything it
 * does with one engine (fdsched, orders, downloads, verification, storage
 * writes, serving, cut-through forwarding to the children connected to it).
 * Engines 1..threads-1 are serving engines, each on its own thread with its
 * own nd_node_t context, rpc engine, ring, buffer pool and sending streams:
 * they listen on the node's port with SO_REUSEPORT (the kernel spreads the
 * children's connections among the engines) and answer GetManifest,
 * FetchStripe, RepairPull and Ping with nd_serve.c's code as it is, reading
 * each chunk O_DIRECT through their own ring, CRC32C checked.
 *
 * What a serving engine knows of a version engine 0 has open comes from the
 * shared table (nd_shared.c): its manifest and which chunks are durable.
 * Engine 0 publishes a version on its first loop turn after opening it,
 * sets a chunk's bit as soon as storage reports it durable, and then wakes
 * every serving engine with one IORING_OP_MSG_RING message (at most one in
 * flight per engine), so a child waiting on a serving engine is served as
 * soon as the chunk lands. A complete version engine 0 does not have open is
 * opened by the serving engine itself from its files (manifest checked
 * against the trusted admin key), since a complete version is never written
 * again.
 *
 * Role origin runs one engine whatever `threads` says: connections are
 * spread by the kernel by address hash, and Origin calls (Publish, Missing,
 * Replicate, Gc) must reach engine 0, which holds the chain; handing such a
 * connection over between engines is not built.
 *
 * Never: takes a lock, shares a ring, pool or connection between threads,
 * or lets a serving engine touch the store (engine 0's alone).
 *
 * Memory: nd_engines_start allocates every engine's context; nd_engines_stop
 * stops and joins the threads (each frees what it made on its thread);
 * nd_engines_destroy frees the rest, after engine 0's ring has drained.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_error.h"
#include "nd_int.h"

typedef struct nd_shard {
  struct nd_engines *all;
  uint32_t idx; /* 1.. */
  pthread_t thread;
  bool joined;
  nd_node_t *n; /* this engine's context (engine, ring, pool, streams, versions) */
  _Atomic int state; /* 0 starting, 1 serving, -errno: failed to start */
  _Atomic bool stop;
  _Atomic bool wake_pending;
  rpc_msg_t wake;
  _Atomic uint64_t tx_bytes; /* what this engine sent, for engine 0's heartbeat */
} nd_shard_t;

struct nd_engines {
  nd_node_t *n0;
  nd_shared_t *table;
  uint32_t count; /* serving engines (threads - 1) */
  nd_shard_t *shards;
  nd_shared_ver_t *published[ND_SHARED_VERS_MAX];
  bool dirty;      /* bits set or a version completed since the last wakeup */
  bool stopped;
  uint64_t synced_ms;
};

uint32_t nd_engines_wanted(const nd_config_t *cfg) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  uint32_t want = cfg->threads ? cfg->threads : (uint32_t)(cores > 0 ? cores : 1);
  if (want > ND_ENGINES_MAX) want = ND_ENGINES_MAX;
  if (!strcmp(cfg->role, "origin")) want = 1; /* see the header comment */
  return want;
}

/* ---- a serving engine's versions ------------------------------------------------- */

static void sver_release(nd_ver_t *v) {
  if (v->fd >= 0) close(v->fd);
  if (v->shared) {
    nd_shared_release(v->shared);
  } else {
    st_manifest_free((st_manifest_t *)v->m);
    free(v->menc);
  }
  memset(v, 0, sizeof(*v));
  v->fd = -1;
}

static nd_ver_t *sver_slot(nd_node_t *n) {
  nd_ver_t *best = NULL;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &n->vers[i];
    if (!v->used) return v;
    if (v->users) continue;
    if (!best || v->last_used_ms < best->last_used_ms) best = v;
  }
  if (best) sver_release(best);
  return best;
}

static void ver_path(const nd_node_t *n, const char *name, uint64_t version, const char *sfx,
                     char *path, size_t len) {
  snprintf(path, len, "%s/%s/v%" PRIu64 "%s", n->cfg.data_dir, name, version, sfx);
}

static int open_direct(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0 && errno == EINVAL) fd = open(path, O_RDONLY | O_CLOEXEC); /* tmpfs */
  return fd < 0 ? -errno : fd;
}

/* A complete version from its files: v<N> exists, v<N>.manifest is signed
 * by the trusted key and names it. v->m and v->menc become v's own. */
static int sver_load(nd_node_t *n, const char *name, uint64_t version, nd_ver_t *v) {
  char path[FD_PATH_LEN_MAX + 256];
  struct stat st;
  ver_path(n, name, version, "", path, sizeof(path));
  if (stat(path, &st) != 0) return -errno;
  ver_path(n, name, version, ".manifest", path, sizeof(path));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = -EMSGSIZE;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > ND_MANIFEST_FILE_MAX) goto out_close;
  rc = -ENOMEM;
  if (!(buf = malloc((size_t)st.st_size))) goto out_close;
  rc = -EIO;
  if (read(fd, buf, (size_t)st.st_size) != st.st_size) goto out_close;
  st_manifest_t *m;
  if ((rc = st_manifest_decode(buf, (size_t)st.st_size, &m)) != 0) goto out_close;
  if ((rc = st_manifest_verify(m, n->admin_pub.pub)) != 0 || m->version != version ||
      strcmp(m->name, name)) {
    st_manifest_free(m);
    rc = rc ? rc : -EBADMSG;
    goto out_close;
  }
  v->m = m;
  v->menc = buf;
  v->menc_len = (size_t)st.st_size;
  v->complete = true;
  st_manifest_digest(m, v->digest);
  buf = NULL;
out_close:
  free(buf);
  close(fd);
  return rc;
}

int nd_shard_ver_open(nd_node_t *n, const char *name, uint64_t version, nd_ver_t **out) {
  if (!st_name_valid(name) || !version) return -EINVAL;
  nd_ver_t *v = sver_slot(n);
  if (!v) return -EBUSY;
  nd_shared_ver_t *s = nd_shared_acquire(n->shard->all->table, name, version);
  int rc = 0;
  if (s) {
    v->shared = s;
    v->m = nd_shared_manifest(s);
    v->menc = (uint8_t *)nd_shared_menc(s, &v->menc_len); /* borrowed, never freed here */
    memcpy(v->digest, nd_shared_digest(s), FD_SHA256_LEN);
    v->complete = nd_shared_is_complete(s);
  } else if ((rc = sver_load(n, name, version, v)) != 0) {
    memset(v, 0, sizeof(*v));
    v->fd = -1;
    return rc;
  } else {
    fd_log_info("engine %u: serving %s v%" PRIu64 " from its files", n->shard->idx, name, version);
  }
  /* Engine 0 may rename v<N>.partial to v<N> at any moment: try both. */
  char path[FD_PATH_LEN_MAX + 256];
  ver_path(n, name, version, v->complete ? "" : ".partial", path, sizeof(path));
  v->fd = open_direct(path);
  if (v->fd == -ENOENT && !v->complete) {
    ver_path(n, name, version, "", path, sizeof(path));
    v->fd = open_direct(path);
  }
  if (v->fd < 0) {
    rc = v->fd;
    v->fd = -1;
    v->used = true; /* for sver_release */
    sver_release(v);
    return rc;
  }
  v->used = true;
  snprintf(v->name, sizeof(v->name), "%s", name);
  v->version = version;
  v->last_used_ms = fd_now_ms();
  *out = v;
  return 0;
}

bool nd_shard_ver_has(const nd_ver_t *v, uint32_t index) {
  return v->complete || (v->shared && nd_shared_has(v->shared, index));
}

/* Newest complete version of name in the data dir (v<N> files), 0: none. */
uint64_t nd_shard_newest_complete(nd_node_t *n, const char *name) {
  if (!st_name_valid(name)) return 0;
  char path[FD_PATH_LEN_MAX + 256];
  snprintf(path, sizeof(path), "%s/%s", n->cfg.data_dir, name);
  DIR *d = opendir(path);
  if (!d) return 0;
  uint64_t best = 0;
  struct dirent *de;
  for (uint32_t k = 0; k < ND_DIR_SCAN_MAX && (de = readdir(d)); k++) {
    if (de->d_name[0] != 'v') continue;
    char *end;
    unsigned long long ver = strtoull(de->d_name + 1, &end, 10);
    if (end != de->d_name + 1 && !*end && ver > best) best = ver;
  }
  closedir(d);
  return best;
}

/* Lets go of idle versions engine 0 has retired, so their slots can be
 * reused, and of idle versions opened from the files, so a version GC
 * removed does not keep its disk space through our descriptor; a version
 * still streaming keeps its slot until its users end. */
static void shard_release_retired(nd_node_t *n) {
  uint64_t now = fd_now_ms();
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &n->vers[i];
    if (v->used && !v->users && v->shared && nd_shared_retired(v->shared)) sver_release(v);
    else if (v->used && !v->users && !v->shared && now - v->last_used_ms >= ND_SHARD_IDLE_MS)
      sver_release(v);
    else if (v->used && !v->complete && v->shared && nd_shared_is_complete(v->shared))
      v->complete = true;
  }
}

/* ---- a serving engine's thread ------------------------------------------------------ */

static void on_wake(rpc_engine_t *target, rpc_msg_t *msg) {
  nd_shard_t *sh = msg->arg;
  /* seq_cst, before the scan: a bit engine 0 set after seeing this flag
   * clear gets a new message; one set before is seen by the scan */
  atomic_store(&sh->wake_pending, false);
  if (!target || atomic_load(&sh->stop)) return; /* undelivered, or stopping */
  nd_tx_tick(sh->n);
}

static int shard_setup(nd_shard_t *sh) {
  nd_node_t *n = sh->n;
  /* Only disk reads for children take buffers here (nothing arrives), so a
   * serving engine needs fewer than engine 0. */
  n->cfg.pool_buffers = FD_MIN(n->cfg.pool_buffers, ND_SHARD_POOL_BUFFERS);
  n->pool = fd_pool_create(n->cfg.pool_buffers, n->cfg.chunk_buf_bytes);
  n->bufm = calloc(n->cfg.pool_buffers, sizeof(*n->bufm));
  if (!n->pool || !n->bufm) return -ENOMEM;
  rpc_engine_opts_t o = nd_engine_opts(n);
  o.reuseport = true;
  n->e = rpc_engine_create(&o);
  if (!n->e) return errno ? -errno : -EIO;
  n->ring = rpc_engine_ring(n->e);
  int rc = nd_serve_register(n);
  if (rc) return rc;
  return rpc_listen(n->e, sh->all->n0->listen_addr, sh->all->n0->port, &n->port);
}

static void shard_teardown(nd_shard_t *sh) {
  nd_node_t *n = sh->n;
  /* The engine first: it ends every call (streams release their versions
   * and buffers) and drains the ring, disk reads included. */
  n->destroying = true;
  if (n->e) rpc_engine_destroy(n->e);
  n->e = NULL;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++)
    if (n->vers[i].used) sver_release(&n->vers[i]);
  for (uint32_t i = 0; i < ND_TX_MAX; i++) {
    free(n->txs[i].want);
    n->txs[i].want = NULL;
  }
  if (n->pool) fd_pool_destroy(n->pool);
  n->pool = NULL;
  free(n->bufm);
  n->bufm = NULL;
}

static void *shard_main(void *arg) {
  nd_shard_t *sh = arg;
  nd_node_t *n = sh->n;
  int rc = shard_setup(sh);
  if (rc) {
    fd_log_error("engine %u: %s", sh->idx, fd_strerror(rc));
    shard_teardown(sh);
    atomic_store(&sh->state, rc);
    return NULL;
  }
  atomic_store(&sh->state, 1);
  uint64_t logged_ms = 0, logged_bytes = 0, ticked_ms = 0, failed_ms = 0;
  /* acquire: engine 0's last look at this engine happens before our teardown */
  while (!atomic_load_explicit(&sh->stop, memory_order_acquire)) {
    rc = rpc_engine_run_once(n->e, 10);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) {
      /* Not a reason to tear down alone: engine 0 may be posting to this
       * engine; it stays until nd_engines_stop, retrying every 10 ms. */
      if (fd_now_ms() - failed_ms >= ND_ENGINE_LOG_MS) {
        fd_log_error("engine %u: %s", sh->idx, fd_strerror(rc));
        failed_ms = fd_now_ms();
      }
      usleep(10000);
    }
    /* Streams are pumped by their own completions (reads, window credit)
     * and by engine 0's wakeups; the tick retries what waited for a buffer. */
    uint64_t now = fd_now_ms();
    if (now - ticked_ms >= ND_ENGINE_TICK_MS) {
      ticked_ms = now;
      nd_tx_tick(n);
      shard_release_retired(n);
    }
    atomic_store_explicit(&sh->tx_bytes, n->tx_bytes, memory_order_relaxed);
    if (n->tx_bytes != logged_bytes && now - logged_ms >= ND_ENGINE_LOG_MS) {
      fd_log_info("engine %u: sent %" PRIu64 " bytes to children so far", sh->idx, n->tx_bytes);
      logged_ms = now;
      logged_bytes = n->tx_bytes;
    }
  }
  rpc_stats_t st;
  rpc_engine_get_stats(n->e, &st);
  fd_log_info("engine %u stopped: sent %" PRIu64 " bytes to children on %" PRIu64
              " connection(s)", sh->idx, n->tx_bytes, st.conns_accepted);
  shard_teardown(sh);
  return NULL;
}

/* ---- engine 0's side ----------------------------------------------------------------- */

int nd_engines_start(nd_node_t *n0) {
  uint32_t want = nd_engines_wanted(&n0->cfg);
  if (n0->cfg.threads > ND_ENGINES_MAX)
    fd_log_warn("node.threads %u: running %u engines, the most a node runs", n0->cfg.threads,
                ND_ENGINES_MAX);
  if (n0->cfg.threads != 1 && !strcmp(n0->cfg.role, "origin"))
    fd_log_info("role origin: one engine (Origin calls must reach the engine holding the chain)");
  if (want <= 1) return 0;
  nd_engines_t *E = calloc(1, sizeof(*E));
  if (!E) return -ENOMEM;
  E->n0 = n0;
  E->count = want - 1;
  E->table = nd_shared_create();
  E->shards = calloc(E->count, sizeof(*E->shards));
  if (!E->table || !E->shards) {
    nd_shared_destroy(E->table);
    free(E->shards);
    free(E);
    return -ENOMEM;
  }
  n0->engines = E;
  int rc = 0;
  for (uint32_t i = 0; i < E->count && !rc; i++) {
    nd_shard_t *sh = &E->shards[i];
    sh->all = E;
    sh->idx = i + 1;
    sh->joined = true;
    sh->wake.fn = on_wake;
    sh->wake.arg = sh;
    nd_node_t *n = calloc(1, sizeof(*n));
    if (!n) {
      rc = -ENOMEM;
      break;
    }
    /* Read-only copies of engine 0's settings and keys, made before the
     * thread starts; nothing of n0 is touched from the thread after. */
    n->cfg = n0->cfg;
    n->window_chunks = n0->window_chunks;
    memcpy(n->cluster_key, n0->cluster_key, sizeof(n->cluster_key));
    n->cluster_key_len = n0->cluster_key_len;
    n->admin_pub = n0->admin_pub;
    snprintf(n->listen_addr, sizeof(n->listen_addr), "%s", n0->listen_addr);
    n->self_origin = -1;
    for (uint32_t k = 0; k < ND_VERS_MAX; k++) n->vers[k].fd = -1;
    n->shard = sh;
    sh->n = n;
    /* Signals go to engine 0's thread (fdnode's SIGTERM handler). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = -pthread_create(&sh->thread, NULL, shard_main, sh);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) break;
    sh->joined = false;
    int st;
    while ((st = atomic_load(&sh->state)) == 0) usleep(1000); /* start-up only */
    if (st < 0) rc = st;
  }
  if (rc) {
    nd_engines_stop(n0);
    nd_engines_destroy(n0);
    return rc;
  }
  fd_log_info("%u engines serve port %u (engine 0 also downloads and stores)", want, n0->port);
  return 0;
}

/* Publishes the versions engine 0 opened since the last turn, retires the
 * ones it let go, and brings bits and completion up to date (chunks copied
 * by the delta or found at resume reach storage without nd_sink). */
static void engines_sync(nd_engines_t *E) {
  nd_node_t *n0 = E->n0;
  for (uint32_t p = 0; p < ND_SHARED_VERS_MAX; p++) {
    nd_shared_ver_t *s = E->published[p];
    if (!s) continue;
    bool held = false;
    for (uint32_t i = 0; i < ND_VERS_MAX && !held; i++)
      held = n0->vers[i].used && n0->vers[i].shared == s && !n0->vers[i].aborted;
    if (held) continue;
    for (uint32_t i = 0; i < ND_VERS_MAX; i++) /* an aborted publish: served no more */
      if (n0->vers[i].shared == s) n0->vers[i].shared = NULL;
    nd_shared_retire(s);
    E->published[p] = NULL;
  }
  nd_shared_reap(E->table);
  uint64_t now = fd_now_ms();
  bool resync = now - E->synced_ms >= ND_ENGINE_SYNC_MS;
  if (resync) E->synced_ms = now;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = &n0->vers[i];
    if (!v->used || !v->sv || v->aborted) continue;
    bool fresh = false;
    if (!v->shared) {
      uint32_t p = 0;
      while (p < ND_SHARED_VERS_MAX && E->published[p]) p++;
      if (p == ND_SHARED_VERS_MAX || nd_shared_publish(E->table, v->menc, v->menc_len,
                                                       &E->published[p]) != 0)
        continue; /* table full of retired slots still read: next turn */
      v->shared = E->published[p];
      fresh = true;
    }
    if (v->complete) {
      E->dirty |= nd_shared_complete(v->shared);
    } else if (fresh || resync) {
      for (uint32_t c = 0; c < v->m->chunk_count; c++)
        if (st_version_has(v->sv, c)) E->dirty |= nd_shared_set(v->shared, c);
    }
  }
}

void nd_engines_chunk_durable(nd_node_t *n0, nd_ver_t *v, uint32_t index) {
  if (n0->engines && v->shared && nd_shared_set(v->shared, index)) n0->engines->dirty = true;
}

void nd_engines_tick(nd_node_t *n0) {
  nd_engines_t *E = n0->engines;
  if (!E || E->stopped) return;
  engines_sync(E);
  if (!E->dirty) return;
  E->dirty = false;
  for (uint32_t i = 0; i < E->count; i++) {
    nd_shard_t *sh = &E->shards[i];
    if (atomic_exchange(&sh->wake_pending, true)) continue; /* one already on its way */
    if (rpc_engine_post(n0->e, sh->n->e, &sh->wake) != 0) atomic_store(&sh->wake_pending, false);
  }
}

uint64_t nd_engines_tx_bytes(const nd_node_t *n0) {
  const nd_engines_t *E = n0->engines;
  uint64_t sum = 0;
  for (uint32_t i = 0; E && i < E->count; i++)
    sum += atomic_load_explicit(&E->shards[i].tx_bytes, memory_order_relaxed);
  return sum;
}

void nd_engines_stop(nd_node_t *n0) {
  nd_engines_t *E = n0->engines;
  if (!E || E->stopped) return;
  E->stopped = true;
  fd_ring_submit(n0->ring); /* wakeups queued this turn reach their rings while they exist */
  for (uint32_t i = 0; i < E->count; i++) atomic_store(&E->shards[i].stop, true);
  for (uint32_t i = 0; i < E->count; i++) {
    nd_shard_t *sh = &E->shards[i];
    if (!sh->joined) pthread_join(sh->thread, NULL);
    sh->joined = true;
  }
  fd_log_info("engine 0 stopped: sent %" PRIu64 " bytes to children, the serving engines %" PRIu64,
              n0->tx_bytes, nd_engines_tx_bytes(n0));
}

/* After nd_engines_stop and after engine 0's ring has drained (a wake
 * message's send completion names its shard). */
void nd_engines_destroy(nd_node_t *n0) {
  nd_engines_t *E = n0->engines;
  if (!E) return;
  FD_ASSERT(E->stopped);
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) n0->vers[i].shared = NULL;
  for (uint32_t p = 0; p < ND_SHARED_VERS_MAX; p++)
    if (E->published[p]) nd_shared_retire(E->published[p]);
  for (uint32_t i = 0; i < E->count; i++) free(E->shards[i].n);
  nd_shared_destroy(E->table);
  free(E->shards);
  free(E);
  n0->engines = NULL;
}
