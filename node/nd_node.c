/*
 * nd_node.c — the host: fdnode's top layer (node.h). It creates the layers
 * below and wires them together, runs the loop's phases, and takes them
 * down in order.
 *
 *          host           nd_node.c, nd_engine.c (serving engines), nd_config.c
 *   ------------------    -------------------------------------------------
 *   downloader | origin | repair      roles: nd_dl.c + nd_stripe.c,
 *   (per file) | chain  |             nd_origin.c + nd_publish.c + nd_chain.c
 *                                     + nd_commit.c, nd_repair.c + nd_scrub.c
 *   ------------------    -------------------------------------------------
 *   chunk plane | fdsched link        nd_plane.c nd_ver.c nd_sink.c nd_tx.c
 *                                     nd_serve.c | nd_sched.c nd_reports.c
 *
 * Each layer knows only the ones below it; what a lower layer has to say
 * goes up through callbacks that carry their owner, and the host routes
 * them (an order to the downloader and to repair, a rotten chunk to repair,
 * a durable chunk to the serving engines).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "nd_dl.h"
#include "nd_engine.h"
#include "nd_metrics.h"
#include "nd_origin.h"
#include "nd_peers.h"
#include "nd_plane.h"
#include "nd_repair.h"
#include "nd_sched.h"
#include "fd_zk.h"
#include "nd_signer.h"
#include "node.h"

struct nd_node {
  nd_config_t cfg;
  bool is_origin;
  uint8_t cluster_key[FD_HMAC_KEY_LEN_MAX];
  size_t cluster_key_len;
  fd_ed25519_key_t admin_pub;
  fd_cert_revwatch_t rev;  /* the revocation list in force (store, rpc engine 0) */
  nd_signer_t signer;      /* role origin with signing_key_file: handed to the origin role */
  bool has_signer;
  bool signer_refused;     /* its certificate stopped verifying: said once */
  uint64_t trust_checked_ms;
  nd_origins_t origins;
  fd_rate_t upload, download; /* the caps, shared by every engine (fd_rate.h) */
  char listen_addr[SCH_ADDRESS_LEN_MAX];
  uint16_t port;
  volatile sig_atomic_t stop;
  /* below the roles */
  fd_pool_t *pool;
  rpc_engine_t *e;
  st_store_t *store;
  nd_plane_t *plane;
  nd_sched_t *sched;
  /* roles */
  nd_dls_t *dls;     /* role node */
  nd_origin_t *og;   /* role origin */
  fd_zk_t *zk;       /* role origin with node.zookeeper: the head's election (nd_group.c) */
  nd_repair_t *repair;
  /* threads > 1 */
  nd_engines_t *engines;
  nd_metrics_t *metrics; /* metrics_listen: its own thread; stopped before the layers go */
  /* nd_node_stop_on_fd: a read of the signalfd on the ring */
  struct nd_stop_read {
    fd_op_t op;
    nd_node_t *n;
    int fd;
    bool armed;
    struct signalfd_siginfo si;
  } stop_read;
};

/* ---- routing between the layers ------------------------------------------------ */

static void on_chunk_durable(void *arg, nd_ver_t *v, uint32_t index) {
  nd_node_t *n = arg;
  if (n->engines) nd_engines_chunk_durable(n->engines, v, index);
}

static void on_chunk_bad(void *arg, nd_ver_t *v, uint32_t index) {
  nd_node_t *n = arg;
  if (n->repair) nd_repair_bad(n->repair, v, index);
}

static void on_order(void *arg, const Sched__Order *o) {
  nd_node_t *n = arg;
  if (!n->dls) return; /* origins hold every version: they take no orders */
  nd_repair_order(n->repair, o);
  nd_dls_order(n->dls, o);
}

static size_t on_held(void *arg, Sched__VersionHeld *out, size_t max) {
  nd_node_t *n = arg;
  return n->dls ? nd_dls_held(n->dls, out, max) : 0;
}

static void on_origins(void *arg, Sched__Peer *const *peers, size_t count) {
  nd_node_t *n = arg;
  nd_origins_learn(&n->origins, peers, count);
}

static void on_counters(void *arg, uint64_t *rx, uint64_t *tx) {
  nd_node_t *n = arg;
  *rx = nd_plane_rx_bytes(n->plane);
  *tx = nd_plane_tx_bytes(n->plane) + nd_engines_tx_bytes(n->engines);
}

static void on_stalls(void *arg, nd_stalls_t *out) {
  nd_node_t *n = arg;
  nd_stalls_collect(n->plane, n->engines, &n->upload, out);
}

/* ---- create ----------------------------------------------------------------------- */

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

static uint32_t engines_wanted(const nd_config_t *cfg) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  uint32_t want = cfg->threads ? cfg->threads : (uint32_t)(cores > 0 ? cores : 1);
  if (want > ND_ENGINES_MAX) want = ND_ENGINES_MAX;
  if (!strcmp(cfg->role, "origin")) want = 1; /* see nd_engine.c */
  return want;
}

static rpc_engine_opts_t engine_opts(const nd_node_t *n) {
  const nd_config_t *cfg = &n->cfg;
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.ring_entries = ND_RING_ENTRIES;
  /* rpc raises each window to payload_max: keep it at one chunk buffer. */
  o.payload_max = (uint32_t)FD_MAX(cfg->chunk_buf_bytes, ND_PAYLOAD_MIN);
  /* Every DATA frame holds one pool buffer until storage is done with it
   * (written AND fdatasync'd, which is when the sink returns the credit),
   * whatever its length, so the windows bound the buffers a peer can make us
   * hold: window_chunks largest chunks per stream and per connection. One
   * chunk would be stop-and-wait per hop — the sender idles through our
   * write and group fdatasync — so the default keeps 4 in flight; more only
   * queues data in front of each chunk on a slow link (per-hop latency of a
   * cut-through tree). With chunks smaller than chunk_buf more frames fit,
   * so the pool holds more buffers than that; a download stream that still
   * finds the pool empty fails and its stripe is re-fetched ND_RETRY_MS
   * later. */
  uint32_t win = nd_config_window_chunks(cfg);
  o.stream_window_bytes = win * (uint32_t)cfg->chunk_buf_bytes;
  o.conn_window_bytes = win * (uint32_t)cfg->chunk_buf_bytes;
  o.cluster_key = n->cluster_key;
  o.cluster_key_len = n->cluster_key_len;
  o.admin_pub = n->admin_pub.pub;
  o.revocations = &n->rev.list; /* the serving engines each use their own copy */
  o.bulk_pool = n->pool;
  o.reuseport = engines_wanted(cfg) > 1; /* the serving engines share the port */
  /* An origin takes writers' changes as one call each, many in flight on
   * one connection (libfdclient pipelines up to 1024). */
  if (n->is_origin) o.streams_per_conn_max = FD_STREAMS_PER_CONNECTION_MAX;
  return o;
}

static int open_store(nd_node_t *n) {
  const nd_config_t *cfg = &n->cfg;
  st_config_t sc;
  st_config_defaults(&sc);
  sc.data_dir = cfg->data_dir;
  sc.ring = rpc_engine_ring(n->e);
  sc.pool = n->pool;
  sc.pool_registered = rpc_engine_pool_registered(n->e);
  sc.queue_depth = FD_MIN(FD_QUEUE_DEPTH_MAX, cfg->pool_buffers / 2);
  sc.versions_kept = cfg->keep_versions;
  sc.have_trusted_key = true;
  memcpy(sc.trusted_pub, n->admin_pub.pub, FD_ED25519_PUB_LEN);
  sc.revocations = &n->rev.list;
  return st_store_open(&sc, &n->store);
}

/* The layers above the engine, the store and the listening socket. */
static int make_layers(nd_node_t *n) {
  const nd_config_t *cfg = &n->cfg;
  nd_plane_opts_t po = {.e = n->e, .ring = rpc_engine_ring(n->e), .pool = n->pool,
                        .store = n->store, .data_dir = cfg->data_dir,
                        .window_chunks = nd_config_window_chunks(cfg),
                        .keep_versions = cfg->keep_versions,
                        .upload = &n->upload, .download = &n->download,
                        .hooks = {on_chunk_durable, on_chunk_bad, n}};
  if (!(n->plane = nd_plane_create(&po))) return -ENOMEM;
  int rc = nd_plane_serve(n->plane);
  if (rc) return rc;
  nd_sched_opts_t so = {.e = n->e, .schedulers = cfg->scheduler, .id = cfg->id,
                        .region = cfg->region, .zone = cfg->zone, .listen_addr = n->listen_addr,
                        .listen_port = n->port, .nic_bps = cfg->nic_bps,
                        .upload_bps_max = cfg->upload_bps_max,
                        .download_bps_max = cfg->download_bps_max, .origin = n->is_origin,
                        .heartbeat_ms = cfg->heartbeat_ms,
                        .cbs = {on_order, on_held, on_origins, on_counters, on_stalls, n}};
  if (!(n->sched = nd_sched_create(&so))) return -ENOMEM;
  if (n->is_origin && cfg->zookeeper[0]) {
    fd_zk_opts_t zo = {.hosts = cfg->zookeeper, .root = cfg->zookeeper_root,
                       .session_ms = cfg->zookeeper_session_ms, .who = "origin"};
    char tag[FD_NAME_LEN_MAX + SCH_ADDRESS_LEN_MAX + 8];
    snprintf(tag, sizeof(tag), "%s@%s:%u", cfg->id, n->listen_addr, n->port);
    if (!(n->zk = fd_zk_open(&zo))) {
      fd_log_error("node.zookeeper %s: %s", cfg->zookeeper, fd_strerror(-errno));
      return errno ? -errno : -EINVAL;
    }
    if ((rc = fd_zk_elect(n->zk, "origins/members", tag)) != 0) {
      fd_log_error("node.zookeeper: cannot join the origins' election as %s: %s", tag,
                   fd_strerror(rc));
      return rc;
    }
    fd_log_info("origin %s: the head is elected through ZooKeeper %s (%s)", cfg->id,
                cfg->zookeeper, cfg->zookeeper_root);
  }
  if (n->is_origin) {
    nd_origin_opts_t oo = {.zk = n->zk,.p = n->plane, .e = n->e, .sched = n->sched, .store = n->store,
                           .data_dir = cfg->data_dir, .origins = &n->origins, .id = cfg->id,
                           .signer = n->has_signer ? &n->signer : NULL,
                           .min_durable = cfg->min_durable_origins,
                           .bump_changes = cfg->bump_changes, .bump_bytes = cfg->bump_bytes,
                           .bump_interval_ms = (uint64_t)cfg->bump_interval_s * 1000,
                           .write_chunk_size = (uint32_t)(cfg->write_chunk_bytes
                                                              ? cfg->write_chunk_bytes
                                                              : cfg->chunk_buf_bytes)};
    if (!(n->og = nd_origin_create(&oo))) return errno ? -errno : -ENOMEM;
  } else if (!(n->dls = nd_dls_create(n->plane, n->e, n->sched))) {
    return -ENOMEM;
  }
  nd_repair_opts_t ro = {.p = n->plane, .e = n->e, .sched = n->sched, .origins = &n->origins,
                         .self_addr = n->listen_addr, .self_port = n->port,
                         .keep_versions = cfg->keep_versions,
                         .scrub_interval_s = cfg->scrub_interval_s,
                         .scrub_rate_bytes = cfg->scrub_rate_bytes};
  if (!(n->repair = nd_repair_create(&ro))) return -ENOMEM;
  uint32_t want = engines_wanted(cfg);
  if (cfg->threads > ND_ENGINES_MAX)
    fd_log_warn("node.threads %u: running %u engines, the most a node runs", cfg->threads,
                ND_ENGINES_MAX);
  if (cfg->threads != 1 && n->is_origin)
    fd_log_info("role origin: one engine (Origin calls must reach the engine holding the chain)");
  if (want > 1) {
    nd_engines_opts_t eo = {.count = want - 1, .rpc = engine_opts(n),
                            .pool_buffers = cfg->pool_buffers,
                            .chunk_buf_bytes = cfg->chunk_buf_bytes,
                            .window_chunks = nd_config_window_chunks(cfg),
                            .listen_addr = n->listen_addr, .port = n->port,
                            .data_dir = cfg->data_dir, .admin_pub = n->admin_pub.pub,
                            .revocations_file = cfg->revocations_file,
                            .revocations_period_ms = cfg->heartbeat_ms,
                            .upload = &n->upload, .p0 = n->plane, .e0 = n->e};
    if ((rc = nd_engines_start(&eo, &n->engines)) != 0) {
      fd_log_error("serving engines: %s", fd_strerror(rc));
      return rc;
    }
    fd_log_info("%u engines serve port %u (engine 0 also downloads and stores)", want, n->port);
  }
  return 0;
}

int nd_node_create(const nd_config_t *cfg, nd_node_t **out) {
  nd_node_t *n = calloc(1, sizeof(*n));
  if (!n) return -ENOMEM;
  n->cfg = *cfg;
  n->is_origin = !strcmp(cfg->role, "origin");
  int rc = load_cluster_key(n);
  if (rc) {
    fd_log_error("cluster key %s: %s", cfg->cluster_key_file, fd_strerror(rc));
    goto out_free;
  }
  if ((rc = fd_ed25519_load(cfg->admin_pub_file, &n->admin_pub)) != 0) {
    fd_log_error("admin public key %s: %s", cfg->admin_pub_file, fd_strerror(rc));
    goto out_free;
  }
  if ((rc = fd_cert_revwatch_init(&n->rev, cfg->revocations_file, n->admin_pub.pub,
                                  cfg->heartbeat_ms)) != 0) {
    fd_log_error("revocations_file %s: %s", cfg->revocations_file, fd_strerror(rc));
    goto out_free;
  }
  if (cfg->signing_key_file[0]) {
    rc = nd_signer_load(&n->signer, cfg->signing_key_file, cfg->signing_cert_file,
                        n->admin_pub.pub, &n->rev.list, fd_wall_s());
    if (rc) goto out_free; /* logged */
    n->has_signer = true;
  }
  if ((rc = nd_origins_parse(&n->origins, cfg->origins, cfg->id)) != 0) {
    fd_log_error("node.origins: %s", fd_strerror(rc));
    goto out_free;
  }
  if (n->is_origin && n->origins.self < 0) {
    fd_log_error("node.origins does not list this origin's id %s", cfg->id);
    rc = -EINVAL;
    goto out_free;
  }
  if (n->is_origin && cfg->min_durable_origins > n->origins.n) {
    fd_log_error("node.min_durable_origins %u is more than the %u origin(s) in node.origins: "
                 "nothing could ever be acknowledged",
                 cfg->min_durable_origins, n->origins.n);
    rc = -EINVAL;
    goto out_free;
  }
  uint16_t port;
  if ((rc = nd_parse_hostport(cfg->listen, n->listen_addr, sizeof(n->listen_addr), &port))) {
    fd_log_error("node.listen %s: %s", cfg->listen, fd_strerror(rc));
    goto out_free;
  }
  if (!(n->pool = fd_pool_create(cfg->pool_buffers, cfg->chunk_buf_bytes))) {
    rc = -ENOMEM;
    goto out_free;
  }
  rpc_engine_opts_t o = engine_opts(n);
  if (!(n->e = rpc_engine_create(&o))) {
    rc = errno ? -errno : -EIO;
    fd_log_error("rpc engine: %s", fd_strerror(rc));
    goto out_free;
  }
  if ((rc = open_store(n)) != 0) {
    fd_log_error("store %s: %s", cfg->data_dir, fd_strerror(rc));
    goto out_destroy;
  }
  /* Nothing is accepted before the first loop turn, so the handlers the
   * layers register after the listen are in place for every call. */
  if ((rc = rpc_listen(n->e, n->listen_addr, port, &n->port)) != 0) {
    fd_log_error("listen %s: %s", cfg->listen, fd_strerror(rc));
    goto out_destroy;
  }
  fd_rate_init(&n->upload, cfg->upload_bps_max, 0, fd_now_ns());
  fd_rate_init(&n->download, cfg->download_bps_max, 0, fd_now_ns());
  if (cfg->upload_bps_max || cfg->download_bps_max)
    fd_log_info("rate caps: upload %" PRIu64 " bit/s, download %" PRIu64 " bit/s (0: none)",
                cfg->upload_bps_max, cfg->download_bps_max);
  if ((rc = make_layers(n)) != 0) {
    fd_log_error("start: %s", fd_strerror(rc));
    goto out_destroy;
  }
  nd_metrics_opts_t mo = {.listen = cfg->metrics_listen, .port_file = cfg->metrics_port_file,
                          .id = cfg->id, .role = cfg->role, .region = cfg->region,
                          .zone = cfg->zone, .plane = n->plane, .store = n->store, .og = n->og,
                          .engines = n->engines, .upload = &n->upload,
                          .download = &n->download};
  if ((rc = nd_metrics_start(&mo, &n->metrics)) != 0) goto out_destroy; /* logged */
  fd_log_info("fdnode %s role %s listening on %s:%u, data %s", cfg->id, cfg->role,
              n->listen_addr, n->port, cfg->data_dir);
  *out = n;
  return 0;
out_destroy:
  nd_node_destroy(n);
  return rc;
out_free:
  if (n->pool) fd_pool_destroy(n->pool);
  nd_signer_wipe(&n->signer);
  free(n);
  return rc;
}

uint16_t nd_node_port(const nd_node_t *n) { return n->port; }

void nd_node_stop(nd_node_t *n) { n->stop = 1; }

static void stop_read_arm(struct nd_stop_read *r);

static void on_stop_read(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  struct nd_stop_read *r = (struct nd_stop_read *)op;
  r->armed = false;
  if (res == (int)sizeof(r->si)) {
    fd_log_info("signal %u: stopping", r->si.ssi_signo);
    r->n->stop = 1;
    return;
  }
  if (res == -ECANCELED) return; /* the node is going */
  if (res == -EINTR || res == -EAGAIN) stop_read_arm(r);
  else fd_log_error("reading the stop signal: %s", fd_strerror(res < 0 ? res : -EIO));
}

static void stop_read_arm(struct nd_stop_read *r) {
  struct io_uring_sqe *sqe = fd_ring_sqe(rpc_engine_ring(r->n->e), &r->op);
  if (!sqe) return;
  io_uring_prep_read(sqe, r->fd, &r->si, sizeof(r->si), 0);
  r->armed = true;
}

int nd_node_stop_on_fd(nd_node_t *n, int fd) {
  struct nd_stop_read *r = &n->stop_read;
  if (r->armed) return -EBUSY;
  *r = (struct nd_stop_read){.op.complete = on_stop_read, .n = n, .fd = fd};
  stop_read_arm(r);
  return r->armed ? 0 : -EIO;
}

/* The pending read would keep the ring from draining: cancel it. */
static void stop_read_cancel(nd_node_t *n) {
  struct nd_stop_read *r = &n->stop_read;
  if (!r->armed) return;
  struct io_uring_sqe *sqe = fd_ring_sqe(rpc_engine_ring(n->e), NULL);
  if (sqe) io_uring_prep_cancel(sqe, &r->op, 0);
  for (uint32_t i = 0; r->armed && i < ND_DRAIN_MS / ND_LOOP_WAIT_MS; i++)
    rpc_engine_run_once(n->e, ND_LOOP_WAIT_MS);
}

/* ---- the loop ------------------------------------------------------------------- */

static void stop_roles(nd_node_t *n) {
  if (n->dls) nd_dls_stop(n->dls);
  if (n->og) nd_origin_stop(n->og);
  if (n->repair) nd_repair_stop(n->repair);
  if (n->sched) nd_sched_stop(n->sched);
}

/* Once per heartbeat period: a changed revocation list comes into force
 * (the store and engine 0 read it in place), writers it revokes or whose
 * certificate expired lose their connections, and an origin whose own
 * signing certificate no longer verifies says so, once. */
static void trust_tick(nd_node_t *n) {
  uint64_t now = fd_now_ms();
  if (now - n->trust_checked_ms < n->cfg.heartbeat_ms) return;
  n->trust_checked_ms = now;
  fd_cert_revwatch_poll(&n->rev, now);
  uint32_t closed = rpc_engine_recheck_writers(n->e);
  if (closed) fd_log_warn("closed %u writer connection(s): key revoked or expired", closed);
  if (!n->has_signer) return;
  int rc = nd_signer_check(&n->signer, n->admin_pub.pub, &n->rev.list, fd_wall_s());
  if (rc && !n->signer_refused)
    fd_log_error("the origin group's signing key %016" PRIx64 " is refused now (%s): versions "
                 "it signs will be refused everywhere; install a new key and certificate",
                 n->signer.cert.key_id, fd_strerror(rc));
  n->signer_refused = rc != 0;
}

static bool busy(const nd_node_t *n) {
  return (n->plane && !nd_plane_idle(n->plane)) || (n->repair && nd_repair_scrubbing(n->repair)) ||
         (n->store && st_store_inflight(n->store));
}

int nd_node_run(nd_node_t *n) {
  while (!n->stop) {
    int rc = rpc_engine_run_once(n->e, ND_LOOP_WAIT_MS);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) {
      fd_log_error("engine: %s", fd_strerror(rc));
      return rc;
    }
    nd_plane_tick(n->plane);
    nd_engines_tick(n->engines);
    nd_repair_tick(n->repair);
    nd_sched_tick(n->sched);
    if (n->zk) fd_zk_tick(n->zk);
    if (n->dls) nd_dls_tick(n->dls);
    else nd_origin_tick(n->og);
    trust_tick(n);
    nd_metrics_tick(n->metrics);
  }
  fd_log_info("stopping: letting in-flight writes finish");
  nd_metrics_stop(n->metrics); /* it reads the serving engines' planes */
  n->metrics = NULL;
  nd_engines_stop(n->engines);
  stop_roles(n);
  /* The election passes at once: this origin's member znode goes with its
   * session (the origin role calls ZooKeeper no more after its stop). */
  fd_zk_close(n->zk);
  n->zk = NULL;
  uint64_t until = fd_now_ms() + ND_DRAIN_MS;
  while (fd_now_ms() < until && busy(n)) {
    nd_plane_tick(n->plane);
    rpc_engine_run_once(n->e, ND_LOOP_WAIT_MS);
  }
  return 0;
}

/* ---- destroy ---------------------------------------------------------------------- */

void nd_node_destroy(nd_node_t *n) {
  if (!n) return;
  nd_metrics_stop(n->metrics); /* when nd_node_run did not */
  n->metrics = NULL;
  nd_engines_stop(n->engines); /* when nd_node_run did not */
  stop_roles(n);
  /* The store's operations finish while the ring still runs (a scrub cannot
   * be cancelled: it ends at its configured rate); then the engine, whose
   * teardown ends every call (their callbacks only release buffers and
   * versions); then the layers, top down. */
  while (busy(n)) {
    if (n->plane) nd_plane_tick(n->plane);
    int rc = rpc_engine_run_once(n->e, ND_LOOP_WAIT_MS);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) break;
  }
  fd_zk_close(n->zk);
  n->zk = NULL;
  stop_read_cancel(n);
  rpc_engine_destroy(n->e);
  nd_dls_destroy(n->dls);
  nd_origin_destroy(n->og);
  nd_repair_destroy(n->repair);
  nd_engines_destroy(n->engines);
  nd_plane_destroy(n->plane);
  st_store_close(n->store);
  if (n->sched) nd_sched_destroy(n->sched);
  fd_pool_destroy(n->pool);
  nd_signer_wipe(&n->signer);
  free(n);
}
