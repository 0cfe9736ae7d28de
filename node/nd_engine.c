/*
 * nd_engine.c — fdnode's serving engines: `threads` engines per node, one
 * io_uring each, shared nothing on the data path (Seastar / TigerBeetle).
 *
 * Engine 0 is the thread that calls nd_node_run: it keeps everything it
 * does with one engine (fdsched, orders, downloads, verification, storage
 * writes, serving, cut-through forwarding to the children connected to it).
 * Engines 1..threads-1 are serving engines, each on its own thread with its
 * own rpc engine, ring, buffer pool and chunk plane: they listen on the
 * node's port with SO_REUSEPORT (the kernel spreads the children's
 * connections among the engines) and answer GetManifest, FetchStripe,
 * RepairPull and Ping with the plane's code as it is, reading each chunk
 * O_DIRECT through their own ring, CRC32C checked.
 *
 * A serving engine's plane reads versions through one narrow interface, the
 * source below (shard_source): what engine 0 has open comes from the shared
 * table (nd_shared.c), its manifest and which chunks are durable. Engine 0
 * publishes a version on its first loop turn after opening it, sets a
 * chunk's bit as soon as storage reports it durable (its plane's
 * chunk_durable hook), and then wakes every serving engine with one
 * IORING_OP_MSG_RING message (at most one in flight per engine), so a child
 * waiting on a serving engine is served as soon as the chunk lands. A
 * complete version engine 0 does not have open is opened by the serving
 * engine itself from its files (manifest checked against the trusted admin
 * key, and the revocation list, which each serving engine re-reads from its
 * file on its own thread like engine 0), since a complete version is never
 * written again.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "nd_engine.h"
#include "nd_shared.h"

typedef struct nd_shard {
  struct nd_engines *all;
  uint32_t idx; /* 1.. */
  pthread_t thread;
  bool joined;
  /* made and used on the engine's own thread */
  rpc_engine_t *e;
  fd_pool_t *pool;
  nd_plane_t *p;
  _Atomic int state; /* 0 starting, 1 serving, -errno: failed to start */
  _Atomic bool stop;
  _Atomic bool wake_pending;
  rpc_msg_t wake;
  _Atomic uint64_t tx_bytes; /* what this engine sent, for engine 0's heartbeat */
  fd_cert_revwatch_t rev;    /* this engine's own copy of the revocation list */
} nd_shard_t;

struct nd_engines {
  /* read-only copies of engine 0's settings, made before any thread starts */
  rpc_engine_opts_t rpc;
  uint8_t cluster_key[FD_HMAC_KEY_LEN_MAX];
  uint8_t admin_pub[FD_ED25519_PUB_LEN];
  char revocations_file[FD_PATH_LEN_MAX];
  uint32_t revocations_period_ms;
  uint32_t pool_buffers;
  uint64_t chunk_buf_bytes;
  uint32_t window_chunks;
  char listen_addr[SCH_ADDRESS_LEN_MAX];
  uint16_t port;
  char data_dir[FD_PATH_LEN_MAX];
  fd_rate_t *upload; /* the node's upload cap: one bucket for every engine */
  /* engine 0's */
  nd_plane_t *p0;
  rpc_engine_t *e0;
  nd_shared_t *table;
  uint32_t count; /* serving engines */
  nd_shard_t *shards;
  nd_shared_ver_t *published[ND_SHARED_VERS_MAX];
  bool dirty;     /* bits set or a version completed since the last wakeup */
  bool stopped;
  uint64_t synced_ms;
};

/* ---- a serving engine's source of versions ---------------------------------------- */

static void ver_path(const nd_shard_t *sh, const char *name, uint64_t version, const char *sfx,
                     char *path, size_t len) {
  snprintf(path, len, "%s/%s/v%" PRIu64 "%s", sh->all->data_dir, name, version, sfx);
}

static int open_direct(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0 && errno == EINVAL) fd = open(path, O_RDONLY | O_CLOEXEC); /* tmpfs */
  return fd < 0 ? -errno : fd;
}

/* A complete version from its files: v<N> exists, v<N>.manifest is signed
 * by the trusted key and names it. v->m and v->menc become v's own. */
static int load_from_files(nd_shard_t *sh, const char *name, uint64_t version, nd_ver_t *v) {
  char path[FD_PATH_LEN_MAX + 256];
  struct stat st;
  ver_path(sh, name, version, "", path, sizeof(path));
  if (stat(path, &st) != 0) return -errno;
  ver_path(sh, name, version, ".manifest", path, sizeof(path));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = -EMSGSIZE;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > FD_MANIFEST_LEN_MAX) goto out_close;
  rc = -ENOMEM;
  if (!(buf = malloc((size_t)st.st_size))) goto out_close;
  rc = -EIO;
  if (read(fd, buf, (size_t)st.st_size) != st.st_size) goto out_close;
  st_manifest_t *m;
  if ((rc = st_manifest_decode(buf, (size_t)st.st_size, &m)) != 0) goto out_close;
  if ((rc = st_manifest_verify(m, sh->all->admin_pub, &sh->rev.list)) != 0 ||
      m->version != version ||
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

static void src_close(void *arg, nd_ver_t *v) {
  (void)arg;
  if (v->fd >= 0) close(v->fd);
  if (v->src_ver) {
    nd_shared_release(v->src_ver);
  } else {
    st_manifest_free((st_manifest_t *)v->m);
    free(v->menc);
  }
}

static int src_open(void *arg, const char *name, uint64_t version, nd_ver_t *v) {
  nd_shard_t *sh = arg;
  nd_shared_ver_t *s = nd_shared_acquire(sh->all->table, name, version);
  int rc = 0;
  if (s) {
    v->src_ver = s;
    v->m = nd_shared_manifest(s);
    v->menc = (uint8_t *)nd_shared_menc(s, &v->menc_len); /* borrowed, never freed here */
    memcpy(v->digest, nd_shared_digest(s), FD_SHA256_LEN);
    v->complete = nd_shared_is_complete(s);
  } else if ((rc = load_from_files(sh, name, version, v)) != 0) {
    return rc;
  } else {
    fd_log_info("engine %u: serving %s v%" PRIu64 " from its files", sh->idx, name, version);
  }
  /* Engine 0 may rename v<N>.partial to v<N> at any moment: try both. */
  char path[FD_PATH_LEN_MAX + 256];
  ver_path(sh, name, version, v->complete ? "" : ".partial", path, sizeof(path));
  v->fd = open_direct(path);
  if (v->fd == -ENOENT && !v->complete) {
    ver_path(sh, name, version, "", path, sizeof(path));
    v->fd = open_direct(path);
  }
  if (v->fd < 0) {
    rc = v->fd;
    v->fd = -1;
    src_close(sh, v);
    return rc;
  }
  return 0;
}

static bool src_has(void *arg, const nd_ver_t *v, uint32_t index) {
  (void)arg;
  return v->complete || (v->src_ver && nd_shared_has(v->src_ver, index));
}

/* Newest complete version of name in the data dir (v<N> files), 0: none. */
static uint64_t src_newest(void *arg, const char *name) {
  nd_shard_t *sh = arg;
  if (!st_name_valid(name)) return 0;
  char path[FD_PATH_LEN_MAX + 256];
  snprintf(path, sizeof(path), "%s/%s", sh->all->data_dir, name);
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

/* A serving engine never writes: engine 0's scrub finds the rot again. */
static int src_mark_bad(void *arg, nd_ver_t *v, uint32_t index) {
  (void)arg;
  (void)v;
  (void)index;
  return -ENOTSUP;
}

static const nd_source_t shard_source = {src_open, src_close, src_has, src_newest, src_mark_bad};

/* Lets go of idle versions engine 0 has retired, so their slots can be
 * reused, and of idle versions opened from the files, so a version GC
 * removed does not keep its disk space through our descriptor; a version
 * still streaming keeps its slot until its users end. */
static void shard_release_retired(nd_shard_t *sh) {
  uint64_t now = fd_now_ms();
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = nd_plane_ver_at(sh->p, i);
    if (!v) continue;
    if (v->src_ver && nd_shared_retired(v->src_ver)) nd_ver_close_idle(sh->p, v);
    else if (!v->src_ver && now - v->last_used_ms >= ND_SHARD_IDLE_MS) nd_ver_close_idle(sh->p, v);
    else if (!v->complete && v->src_ver && nd_shared_is_complete(v->src_ver)) v->complete = true;
  }
}

/* ---- a serving engine's thread ------------------------------------------------------ */

static void on_wake(rpc_engine_t *target, rpc_msg_t *msg) {
  nd_shard_t *sh = msg->arg;
  /* seq_cst, before the scan: a bit engine 0 set after seeing this flag
   * clear gets a new message; one set before is seen by the scan */
  atomic_store(&sh->wake_pending, false);
  if (!target || atomic_load(&sh->stop)) return; /* undelivered, or stopping */
  nd_plane_tick(sh->p);
}

static int shard_setup(nd_shard_t *sh) {
  const nd_engines_t *E = sh->all;
  /* Only disk reads for children take buffers here (nothing arrives), so a
   * serving engine needs fewer than engine 0. */
  sh->pool = fd_pool_create(FD_MIN(E->pool_buffers, ND_SHARD_POOL_BUFFERS), E->chunk_buf_bytes);
  if (!sh->pool) return -ENOMEM;
  int rc = fd_cert_revwatch_init(&sh->rev, E->revocations_file, E->admin_pub,
                                 E->revocations_period_ms);
  if (rc) return rc;
  rpc_engine_opts_t o = E->rpc;
  o.bulk_pool = sh->pool;
  o.revocations = &sh->rev.list;
  o.reuseport = true;
  sh->e = rpc_engine_create(&o);
  if (!sh->e) return errno ? -errno : -EIO;
  nd_plane_opts_t po = {.e = sh->e, .ring = rpc_engine_ring(sh->e), .pool = sh->pool,
                        .src = &shard_source, .src_arg = sh, .data_dir = E->data_dir,
                        .window_chunks = E->window_chunks, .upload = E->upload};
  sh->p = nd_plane_create(&po);
  if (!sh->p) return -ENOMEM;
  rc = nd_plane_serve(sh->p);
  if (rc) return rc;
  uint16_t port;
  return rpc_listen(sh->e, E->listen_addr, E->port, &port);
}

static void shard_teardown(nd_shard_t *sh) {
  /* The engine first: it ends every call (streams release their versions
   * and buffers) and drains the ring, disk reads included. */
  if (sh->e) rpc_engine_destroy(sh->e);
  sh->e = NULL;
  nd_plane_destroy(sh->p);
  sh->p = NULL;
  if (sh->pool) fd_pool_destroy(sh->pool);
  sh->pool = NULL;
}

static void *shard_main(void *arg) {
  nd_shard_t *sh = arg;
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
    rc = rpc_engine_run_once(sh->e, ND_LOOP_WAIT_MS);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) {
      /* Not a reason to tear down alone: engine 0 may be posting to this
       * engine; it stays until nd_engines_stop, retrying every loop wait. */
      if (fd_now_ms() - failed_ms >= ND_ENGINE_LOG_MS) {
        fd_log_error("engine %u: %s", sh->idx, fd_strerror(rc));
        failed_ms = fd_now_ms();
      }
      usleep(ND_LOOP_WAIT_MS * 1000);
    }
    /* Streams are pumped by their own completions (reads, window credit)
     * and by engine 0's wakeups; the tick retries what waited for a buffer. */
    uint64_t now = fd_now_ms();
    if (now - ticked_ms >= ND_ENGINE_TICK_MS) {
      ticked_ms = now;
      nd_plane_tick(sh->p);
      shard_release_retired(sh);
      if (fd_cert_revwatch_poll(&sh->rev, now) > 0) rpc_engine_recheck_writers(sh->e);
    }
    uint64_t sent = nd_plane_tx_bytes(sh->p);
    atomic_store_explicit(&sh->tx_bytes, sent, memory_order_relaxed);
    if (sent != logged_bytes && now - logged_ms >= ND_ENGINE_LOG_MS) {
      fd_log_info("engine %u: sent %" PRIu64 " bytes to children so far", sh->idx, sent);
      logged_ms = now;
      logged_bytes = sent;
    }
  }
  rpc_stats_t st;
  rpc_engine_get_stats(sh->e, &st);
  fd_log_info("engine %u stopped: sent %" PRIu64 " bytes to children on %" PRIu64
              " connection(s)", sh->idx, nd_plane_tx_bytes(sh->p), st.conns_accepted);
  shard_teardown(sh);
  return NULL;
}

/* ---- engine 0's side ----------------------------------------------------------------- */

int nd_engines_start(const nd_engines_opts_t *o, nd_engines_t **out) {
  FD_ASSERT(o->count >= 1 && o->rpc.cluster_key_len <= FD_HMAC_KEY_LEN_MAX);
  nd_engines_t *E = calloc(1, sizeof(*E));
  if (!E) return -ENOMEM;
  E->rpc = o->rpc;
  memcpy(E->cluster_key, o->rpc.cluster_key, o->rpc.cluster_key_len);
  E->rpc.cluster_key = E->cluster_key;
  memcpy(E->admin_pub, o->admin_pub, FD_ED25519_PUB_LEN);
  E->rpc.admin_pub = E->admin_pub;
  snprintf(E->revocations_file, sizeof(E->revocations_file), "%s",
           o->revocations_file ? o->revocations_file : "");
  E->revocations_period_ms = o->revocations_period_ms;
  E->rpc.revocations = NULL; /* engine 0's list is engine 0's: each engine sets its own */
  E->rpc.admin_key = NULL;
  E->pool_buffers = o->pool_buffers;
  E->chunk_buf_bytes = o->chunk_buf_bytes;
  E->window_chunks = o->window_chunks;
  snprintf(E->listen_addr, sizeof(E->listen_addr), "%s", o->listen_addr);
  E->port = o->port;
  snprintf(E->data_dir, sizeof(E->data_dir), "%s", o->data_dir);
  E->upload = o->upload;
  E->p0 = o->p0;
  E->e0 = o->e0;
  E->count = o->count;
  E->table = nd_shared_create();
  E->shards = calloc(E->count, sizeof(*E->shards));
  if (!E->table || !E->shards) {
    nd_shared_destroy(E->table);
    free(E->shards);
    free(E);
    return -ENOMEM;
  }
  int rc = 0;
  for (uint32_t i = 0; i < E->count && !rc; i++) {
    nd_shard_t *sh = &E->shards[i];
    sh->all = E;
    sh->idx = i + 1;
    sh->joined = true;
    sh->wake.fn = on_wake;
    sh->wake.arg = sh;
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
    nd_engines_stop(E);
    nd_engines_destroy(E);
    return rc;
  }
  *out = E;
  return 0;
}

/* Publishes the versions engine 0 opened since the last turn, retires the
 * ones it let go, and brings bits and completion up to date (chunks copied
 * by the delta or found at resume reach storage without the sink). */
static void engines_sync(nd_engines_t *E) {
  for (uint32_t pi = 0; pi < ND_SHARED_VERS_MAX; pi++) {
    nd_shared_ver_t *s = E->published[pi];
    if (!s) continue;
    bool held = false;
    for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
      nd_ver_t *v = nd_plane_ver_at(E->p0, i);
      if (!v || v->ext != s) continue;
      if (v->aborted) v->ext = NULL; /* an aborted publish: served no more */
      else held = true;
    }
    if (held) continue;
    nd_shared_retire(s);
    E->published[pi] = NULL;
  }
  nd_shared_reap(E->table);
  uint64_t now = fd_now_ms();
  bool resync = now - E->synced_ms >= ND_ENGINE_SYNC_MS;
  if (resync) E->synced_ms = now;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = nd_plane_ver_at(E->p0, i);
    if (!v || !v->sv || v->aborted) continue;
    bool fresh = false;
    if (!v->ext) {
      uint32_t pi = 0;
      while (pi < ND_SHARED_VERS_MAX && E->published[pi]) pi++;
      if (pi == ND_SHARED_VERS_MAX ||
          nd_shared_publish(E->table, v->menc, v->menc_len, &E->published[pi]) != 0)
        continue; /* table full of retired slots still read: next turn */
      v->ext = E->published[pi];
      fresh = true;
    }
    if (v->complete) {
      E->dirty |= nd_shared_complete(v->ext);
    } else if (fresh || resync) {
      for (uint32_t c = 0; c < v->m->chunk_count; c++)
        if (st_version_has(v->sv, c)) E->dirty |= nd_shared_set(v->ext, c);
    }
  }
}

void nd_engines_chunk_durable(void *arg, nd_ver_t *v, uint32_t index) {
  nd_engines_t *E = arg;
  if (E && v->ext && nd_shared_set(v->ext, index)) E->dirty = true;
}

void nd_engines_tick(nd_engines_t *E) {
  if (!E || E->stopped) return;
  engines_sync(E);
  if (!E->dirty) return;
  E->dirty = false;
  for (uint32_t i = 0; i < E->count; i++) {
    nd_shard_t *sh = &E->shards[i];
    if (atomic_exchange(&sh->wake_pending, true)) continue; /* one already on its way */
    if (rpc_engine_post(E->e0, sh->e, &sh->wake) != 0) atomic_store(&sh->wake_pending, false);
  }
}

const nd_plane_metrics_t *nd_engines_plane_metrics(const nd_engines_t *E, uint32_t i) {
  if (!E || i >= E->count) return NULL;
  const nd_shard_t *sh = &E->shards[i];
  /* state 1 is stored (seq_cst) after the plane was made: its pointer is seen */
  if (atomic_load((_Atomic int *)&sh->state) != 1) return NULL;
  return nd_plane_metrics(sh->p);
}

uint64_t nd_engines_tx_bytes(const nd_engines_t *E) {
  uint64_t sum = 0;
  for (uint32_t i = 0; E && i < E->count; i++)
    sum += atomic_load_explicit(&E->shards[i].tx_bytes, memory_order_relaxed);
  return sum;
}

void nd_engines_stop(nd_engines_t *E) {
  if (!E || E->stopped) return;
  E->stopped = true;
  fd_ring_submit(rpc_engine_ring(E->e0)); /* wakeups queued this turn reach their rings */
  for (uint32_t i = 0; i < E->count; i++) atomic_store(&E->shards[i].stop, true);
  for (uint32_t i = 0; i < E->count; i++) {
    nd_shard_t *sh = &E->shards[i];
    if (!sh->joined) pthread_join(sh->thread, NULL);
    sh->joined = true;
  }
  fd_log_info("engine 0 stopped: sent %" PRIu64 " bytes to children, the serving engines %" PRIu64,
              nd_plane_tx_bytes(E->p0), nd_engines_tx_bytes(E));
}

void nd_engines_destroy(nd_engines_t *E) {
  if (!E) return;
  FD_ASSERT(E->stopped);
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = nd_plane_ver_at(E->p0, i);
    if (v) v->ext = NULL;
  }
  for (uint32_t pi = 0; pi < ND_SHARED_VERS_MAX; pi++)
    if (E->published[pi]) nd_shared_retire(E->published[pi]);
  nd_shared_destroy(E->table);
  free(E->shards);
  free(E);
}
