/*
 * fdsched.c — the fdist scheduler daemon: configuration, start-up, the one
 * loop, the membership timer and shutdown.
 *
 *   fdsched --config fdsched.ini [-s section.key=value ...]
 *
 * One thread, one rpc engine (one io_uring): the scheduler is a control
 * plane whose every operation is a table lookup or a small plan repair, and
 * a single thread keeps the sch_* library (which takes no locks) simple and
 * deterministic. The loop turns the engine (connections, handlers, pushes)
 * and, every heartbeat_ms / 4, ticks the failure detector: newly dead nodes
 * are removed from every plan, their orphans re-parented, and the changed
 * orders pushed at once.
 *
 * Durability: every change is in the db's log, fdatasync'd, before its
 * handler replies, so a SIGKILL loses nothing acknowledged. SIGTERM or
 * SIGINT stops the loop; the daemon then writes a checkpoint, closes every
 * connection and the listening socket with the engine, and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_config.h"
#include "fd_error.h"
#include "fd_file.h"
#include "fd_log.h"
#include "fd_time.h"
#include "fdsched_int.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

#define CFG_ITEMS(c)                                                                              \
  {                                                                                               \
    {"scheduler", "listen", FD_CFG_STRING, (c)->listen, sizeof((c)->listen), 0, 0,                \
     "address:port to serve the Scheduler service on (port 0: ephemeral)"},                      \
    {"scheduler", "data_dir", FD_CFG_STRING, (c)->data_dir, sizeof((c)->data_dir), 0, 0,          \
     "directory of the operation log and checkpoints (created if missing)"},                     \
    {"scheduler", "cluster_key", FD_CFG_STRING, (c)->cluster_key, sizeof((c)->cluster_key), 0, 0, \
     "file holding the cluster key, 64 hex digits"},                                             \
    {"scheduler", "admin_public_key", FD_CFG_STRING, (c)->admin_public_key,                       \
     sizeof((c)->admin_public_key), 0, 0,                                                         \
     "Ed25519 admin public key (PEM or hex): admin role, manifest signatures"},                  \
    {"scheduler", "revocations_file", FD_CFG_STRING, (c)->revocations_file,                       \
     sizeof((c)->revocations_file), 0, 0,                                                         \
     "optional: the admin-signed revocation list (fdadmin revoke), re-read when it changes"},   \
    {"scheduler", "port_file", FD_CFG_STRING, (c)->port_file, sizeof((c)->port_file), 0, 0,       \
     "optional: write the bound port here once listening"},                                      \
    {"scheduler", "heartbeat_ms", FD_CFG_U32, &(c)->heartbeat_ms, 0, 10, 600000,                  \
     "interval nodes heartbeat at"},                                                              \
    {"scheduler", "suspect_misses", FD_CFG_U32, &(c)->suspect_misses, 0, 1, 1000,                 \
     "missed heartbeats before a node is suspect"},                                               \
    {"scheduler", "dead_misses", FD_CFG_U32, &(c)->dead_misses, 0, 2, 1000,                       \
     "missed heartbeats before a node is dead (> suspect_misses)"},                              \
    {"scheduler", "stripes", FD_CFG_U32, &(c)->stripes, 0, 1, FD_STRIPES_MAX,                     \
     "stripes per version (chunk i in stripe i mod k)"},                                          \
    {"scheduler", "connections_max", FD_CFG_U32, &(c)->connections_max, 0, 16,                    \
     FD_CONNECTIONS_MAX, "connections served at once"},                                           \
    {"scheduler", "stream_loss_is_death", FD_CFG_BOOL, &(c)->stream_loss_is_death, 0, 0, 0,      \
     "a node whose WatchOrders connection breaks is dead at once"},                              \
    {"scheduler", "checkpoint_every_ops", FD_CFG_U64, &(c)->checkpoint_every_ops, 0, 1, 0,        \
     "log records between checkpoints"},                                                          \
    {"scheduler", "metrics_listen", FD_CFG_STRING, (c)->metrics_listen,                           \
     sizeof((c)->metrics_listen), 0, 0,                                                           \
     "address:port of /metrics, Prometheus text (port 0: ephemeral; empty: off)"},               \
    {"scheduler", "metrics_port_file", FD_CFG_STRING, (c)->metrics_port_file,                     \
     sizeof((c)->metrics_port_file), 0, 0,                                                        \
     "optional: write the bound /metrics port here once listening"},                             \
    {"scheduler", "zookeeper", FD_CFG_STRING, (c)->zookeeper, sizeof((c)->zookeeper), 0, 0,       \
     "h:p,h:p,... of ZooKeeper: stand for election, the leader serves (empty: no standby)"},     \
    {"scheduler", "zookeeper_root", FD_CFG_STRING, (c)->zookeeper_root,                           \
     sizeof((c)->zookeeper_root), 0, 0, "znode every fdist path is under"},                      \
    {"scheduler", "zookeeper_session_ms", FD_CFG_U32, &(c)->zookeeper_session_ms, 0, 1000,        \
     600000, "ZooKeeper session timeout asked for (a dead leader is replaced after it)"},        \
    {"scheduler", "advertise", FD_CFG_STRING, (c)->advertise, sizeof((c)->advertise), 0, 0,       \
     "address:port peers reach this fdsched at (empty: listen's address, the bound port)"},      \
    {"log", "level", FD_CFG_STRING, (c)->log_level, sizeof((c)->log_level), 0, 0,                 \
     "debug, info, warn or error"},                                                               \
  }

static void config_default(fdsched_config_t *c) {
  memset(c, 0, sizeof(*c));
  snprintf(c->listen, sizeof(c->listen), "0.0.0.0:%u", SCH_LISTEN_PORT_DEFAULT);
  snprintf(c->data_dir, sizeof(c->data_dir), "/var/lib/fdist/sched");
  snprintf(c->log_level, sizeof(c->log_level), "info");
  c->heartbeat_ms = FD_HEARTBEAT_MS_DEFAULT;
  c->suspect_misses = FD_SUSPECT_MISSES_DEFAULT;
  c->dead_misses = FD_DEAD_MISSES_DEFAULT;
  c->stripes = FD_STRIPES_DEFAULT;
  c->connections_max = FD_CONNECTIONS_MAX;
  c->stream_loss_is_death = true;
  c->checkpoint_every_ops = SCH_CHECKPOINT_EVERY_OPS_DEFAULT;
  snprintf(c->zookeeper_root, sizeof(c->zookeeper_root), "/fdist");
  c->zookeeper_session_ms = SCH_ZK_SESSION_MS_DEFAULT;
}

static void usage(FILE *out, const fd_config_item_t *items, size_t count) {
  fprintf(out,
          "usage: fdsched --config FILE [-s section.key=value]...\n"
          "       fdsched --help\n\n"
          "The fdist scheduler: membership, versions, distribution plans.\n"
          "SIGTERM or SIGINT: checkpoint and exit 0.\n\n"
          "Configuration keys (current value shown):\n");
  fflush(out);
  fd_config_print(items, count);
}

/* Reads the cluster key file: 64 hex digits, optional trailing whitespace. */
static int load_cluster_key(fdsched_t *d) {
  int fd = open(d->cfg.cluster_key, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  char text[256];
  ssize_t n = read(fd, text, sizeof(text) - 1);
  int err = n < 0 ? -errno : 0;
  close(fd);
  if (err) return err;
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ')) n--;
  text[n] = '\0';
  if (n != 64) return -EINVAL;
  int len = fd_hex_decode(text, d->cluster_key, 32);
  if (len != 32) return -EINVAL;
  d->cluster_key_len = 32;
  return 0;
}

static int alloc_buffers(fdsched_t *d) {
  d->watch = calloc(FD_NODES_MAX, sizeof(*d->watch));
  d->pushes = calloc(FD_NODES_MAX, sizeof(*d->pushes));
  d->obuf = calloc(SCH_PLANS_MAX, sizeof(*d->obuf));
  d->order_ptr = calloc(SCH_PLANS_MAX, sizeof(*d->order_ptr));
  d->scratch = calloc(FD_NODES_MAX, sizeof(*d->scratch));
  d->node_entry = calloc(FD_NODES_MAX, sizeof(*d->node_entry));
  d->node_entry_ptr = calloc(FD_NODES_MAX, sizeof(*d->node_entry_ptr));
  d->node_info = calloc(FD_NODES_MAX, sizeof(*d->node_info));
  d->node_stalls = calloc(FD_NODES_MAX, sizeof(*d->node_stalls));
  d->child_stall = calloc((size_t)FD_NODES_MAX * SCH_CHILD_STALLS_MAX, sizeof(*d->child_stall));
  d->child_stall_ptr =
      calloc((size_t)FD_NODES_MAX * SCH_CHILD_STALLS_MAX, sizeof(*d->child_stall_ptr));
  d->node_host = calloc(FD_NODES_MAX, sizeof(*d->node_host));
  d->version_entry = calloc(SCH_VERSIONS_MAX, sizeof(*d->version_entry));
  d->version_entry_ptr = calloc(SCH_VERSIONS_MAX, sizeof(*d->version_entry_ptr));
  d->zone = calloc((size_t)SCH_PLANS_MAX * SCH_ZONES_MAX, sizeof(*d->zone));
  d->zone_ptr = calloc((size_t)SCH_PLANS_MAX * SCH_ZONES_MAX, sizeof(*d->zone_ptr));
  if (!d->watch || !d->pushes || !d->obuf || !d->order_ptr || !d->scratch || !d->node_entry ||
      !d->node_entry_ptr || !d->node_info || !d->node_stalls || !d->child_stall ||
      !d->child_stall_ptr || !d->node_host || !d->version_entry ||
      !d->version_entry_ptr || !d->zone || !d->zone_ptr)
    return -ENOMEM;
  for (uint32_t i = 0; i < FD_NODES_MAX; i++) {
    d->watch[i].d = d;
    d->watch[i].slot = i;
  }
  return 0;
}

static void free_buffers(fdsched_t *d) {
  free(d->watch);
  free(d->pushes);
  free(d->obuf);
  free(d->order_ptr);
  free(d->scratch);
  free(d->node_entry);
  free(d->node_entry_ptr);
  free(d->node_stalls);
  free(d->child_stall);
  free(d->child_stall_ptr);
  free(d->node_info);
  free(d->node_host);
  free(d->version_entry);
  free(d->version_entry_ptr);
  free(d->zone);
  free(d->zone_ptr);
}

/* Replays the data dir into a new db. */
static int open_db(fdsched_t *d) {
  int rc;
  sch_store_t *store = sch_store_open_dir(d->cfg.data_dir, &rc);
  if (!store) {
    fd_log_error("fdsched: store %s: %s", d->cfg.data_dir, fd_strerror(rc));
    return rc;
  }
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  mc.heartbeat_ms = d->cfg.heartbeat_ms;
  mc.suspect_misses = d->cfg.suspect_misses;
  mc.dead_misses = d->cfg.dead_misses;
  d->db = sch_db_open(store, &mc, fd_now_ms(), &rc);
  if (!d->db) {
    fd_log_error("fdsched: replaying %s: %s", d->cfg.data_dir, fd_strerror(rc));
    return rc;
  }
  return 0;
}

int fdsched_state_reopen(fdsched_t *d) {
  fdsched_watch_close_all(d, "fdsched is taking over");
  sch_sched_destroy(d->sched);
  d->sched = NULL;
  sch_db_close(d->db); /* every change is in the log already */
  d->db = NULL;
  return open_db(d);
}

int fdsched_state_plan(fdsched_t *d) {
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  pc.stripes = d->cfg.stripes;
  if (d->sched) sch_sched_destroy(d->sched);
  d->sched = sch_sched_create(d->db, &pc);
  if (!d->sched) return -ENOMEM;
  memset(d->meta, 0, sizeof(d->meta));
  memset(d->reports, 0, sizeof(d->reports));
  d->origin_slots = 0;
  for (uint32_t slot = 0; slot < sch_members_count(sch_db_members(d->db)); slot++)
    fdsched_origin_track(d, slot); /* replayed members */
  return 0;
}

static int start(fdsched_t *d) {
  int rc = load_cluster_key(d);
  if (rc) {
    fd_log_error("fdsched: cluster key %s: %s (want 64 hex digits)", d->cfg.cluster_key,
                 fd_strerror(rc));
    return rc;
  }
  if (d->cfg.admin_public_key[0]) {
    rc = fd_ed25519_load(d->cfg.admin_public_key, &d->admin);
    if (rc) {
      fd_log_error("fdsched: admin public key %s: %s", d->cfg.admin_public_key, fd_strerror(rc));
      return rc;
    }
    d->have_admin = true;
    rc = fd_cert_revwatch_init(&d->revoked, d->cfg.revocations_file, d->admin.pub,
                               d->cfg.heartbeat_ms);
    if (rc) {
      fd_log_error("fdsched: revocations_file %s: %s", d->cfg.revocations_file, fd_strerror(rc));
      return rc;
    }
  } else if (d->cfg.revocations_file[0]) {
    fd_log_error("fdsched: revocations_file needs admin_public_key (the list is the admin's)");
    return -EINVAL;
  } else {
    fd_log_warn("fdsched: no admin_public_key: nobody can drain, manifests are not checked");
  }
  if (d->cfg.dead_misses <= d->cfg.suspect_misses) {
    fd_log_error("fdsched: dead_misses must exceed suspect_misses");
    return -EINVAL;
  }
  rc = alloc_buffers(d);
  if (rc) return rc;

  if (mkdir(d->cfg.data_dir, 0700) < 0 && errno != EEXIST) {
    rc = -errno;
    fd_log_error("fdsched: data dir %s: %s", d->cfg.data_dir, fd_strerror(rc));
    return rc;
  }
  d->start_ms = fd_now_ms();
  d->epoch = fd_wall_s() * 1000u + d->start_ms % 1000u;
  if ((rc = open_db(d)) != 0 || (rc = fdsched_state_plan(d)) != 0) return rc;
  const sch_registry_t *r = sch_db_registry(d->db);
  fd_log_info("fdsched: replayed %u nodes and %u versions from %s",
              sch_members_count(sch_db_members(d->db)), sch_registry_count(r), d->cfg.data_dir);

  rpc_engine_opts_t eo = {0};
  eo.cpu = -1;
  eo.cluster_key = d->cluster_key;
  eo.cluster_key_len = d->cluster_key_len;
  eo.admin_pub = d->have_admin ? d->admin.pub : NULL;
  eo.revocations = &d->revoked.list;
  eo.conns_max = d->cfg.connections_max;
  d->engine = rpc_engine_create(&eo);
  if (!d->engine) {
    rc = errno ? -errno : -ENOMEM;
    fd_log_error("fdsched: rpc engine: %s", fd_strerror(rc));
    return rc;
  }
  rc = fdsched_serve(d);
  if (rc) return rc;
  char host[SCH_ADDRESS_LEN_MAX];
  uint32_t port;
  fdsched_split_addr(d->cfg.listen, host, &port);
  if (port > 65535 || !strchr(d->cfg.listen, ':')) {
    fd_log_error("fdsched: listen = %s: want address:port", d->cfg.listen);
    return -EINVAL;
  }
  rc = rpc_listen(d->engine, host, (uint16_t)port, &d->port);
  if (rc) {
    fd_log_error("fdsched: listen on %s: %s", d->cfg.listen, fd_strerror(rc));
    return rc;
  }
  if (d->cfg.port_file[0] && (rc = fd_port_file_write(d->cfg.port_file, d->port)) != 0) {
    fd_log_error("fdsched: port file %s: %s", d->cfg.port_file, fd_strerror(rc));
    return rc;
  }
  if ((rc = fdsched_ha_start(d)) != 0) return rc;
  if ((rc = fdsched_metrics_start(d)) != 0) return rc;
  fd_log_info("fdsched: listening on %s:%u (heartbeat %u ms, suspect %u, dead %u, %u stripes)",
              host, d->port, d->cfg.heartbeat_ms, d->cfg.suspect_misses, d->cfg.dead_misses,
              d->cfg.stripes);
  return 0;
}

static void tick(fdsched_t *d) {
  /* Once per heartbeat period: a changed revocation list comes into force
   * (later registrations are checked against it), and writers it revokes or
   * whose certificate expired lose their connections. */
  uint64_t now = fd_now_ms();
  if (d->have_admin && now - d->trust_checked_ms >= d->cfg.heartbeat_ms) {
    d->trust_checked_ms = now;
    fd_cert_revwatch_poll(&d->revoked, now);
    uint32_t closed = rpc_engine_recheck_writers(d->engine);
    if (closed)
      fd_log_warn("fdsched: closed %u writer connection(s): key revoked or expired", closed);
  }
  fdsched_metrics_publish(d);
  /* A standby, or a leader that lost ZooKeeper, plans nothing and declares
   * nobody dead: the nodes' silence is then its own doing. */
  if (!fdsched_ha_leading(d)) return;
  int died = sch_sched_tick(d->sched, fd_now_ms());
  if (died > 0) {
    d->n.deaths += (uint64_t)died;
    fd_log_warn("fdsched: %d node(s) missed %u heartbeats: dead, re-parenting", died,
                d->cfg.dead_misses);
  } else if (died < 0) {
    fd_log_error("fdsched: tick: %s", fd_strerror(died));
  }
  fdsched_flush_pushes(d);
  bool done = false;
  int rc = sch_db_maybe_checkpoint(d->db, d->cfg.checkpoint_every_ops, &done);
  if (rc) fd_log_error("fdsched: checkpoint: %s", fd_strerror(rc));
}

static int run(fdsched_t *d) {
  uint32_t tick_ms = d->cfg.heartbeat_ms / 4;
  if (tick_ms < SCH_TICK_MS_MIN) tick_ms = SCH_TICK_MS_MIN;
  uint64_t last_tick = fd_now_ms(), next_tick = last_tick + tick_ms;
  while (!g_stop && !d->fatal) {
    fdsched_ha_tick(d);
    uint64_t now = fd_now_ms();
    uint32_t wait = next_tick > now ? (uint32_t)(next_tick - now) : 0;
    if (d->ha.zk && wait > SCH_ZK_POLL_MS) wait = SCH_ZK_POLL_MS; /* the election's news */
    int rc = rpc_engine_run_once(d->engine, wait);
    if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN) {
      fd_log_error("fdsched: engine: %s", fd_strerror(rc));
      return rc;
    }
    if (fd_now_ms() >= next_tick) {
      /* After a long turn (a slow fsync), heartbeats that arrived meanwhile
       * are read before the detector runs, so that the scheduler's own stall
       * is not taken for the nodes' silence. Bounded. */
      if (fd_now_ms() - last_tick > 2u * tick_ms)
        for (uint32_t i = 0; i < SCH_STALL_DRAIN_TURNS && rpc_engine_run_once(d->engine, 0) > 0;
             i++) {
        }
      tick(d);
      last_tick = fd_now_ms();
      next_tick = last_tick + tick_ms;
    }
  }
  return d->fatal;
}

static void shutdown_all(fdsched_t *d) {
  d->stopping = true;
  fdsched_metrics_stop(d);
  fdsched_ha_stop(d); /* the standbys take over at once */
  if (d->db) {
    int rc = sch_db_checkpoint(d->db);
    if (rc) fd_log_error("fdsched: final checkpoint: %s", fd_strerror(rc));
  }
  if (d->engine) {
    rpc_stats_t st;
    rpc_engine_get_stats(d->engine, &st);
    fd_log_info("fdsched: stopping: %llu registers, %llu heartbeats, %llu pushes (%llu deferred), "
                "%llu deaths (%llu by stream loss), %llu auth failures",
                (unsigned long long)d->n.registers, (unsigned long long)d->n.heartbeats,
                (unsigned long long)d->n.pushes, (unsigned long long)d->n.pushes_deferred,
                (unsigned long long)d->n.deaths, (unsigned long long)d->n.stream_deaths,
                (unsigned long long)st.auth_failures);
    rpc_engine_destroy(d->engine);
  }
  sch_sched_destroy(d->sched);
  sch_db_close(d->db);
  free_buffers(d);
}

int main(int argc, char **argv) {
  static fdsched_t d; /* large (reply buffers); zeroed */
  config_default(&d.cfg);
  fd_config_item_t items[] = CFG_ITEMS(&d.cfg);
  const size_t nitems = sizeof(items) / sizeof(items[0]);
  fd_log_init("fdsched", FD_LOG_INFO);

  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"set", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL;
  const char *sets[64];
  size_t nsets = 0;
  int c;
  while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 's':
      if (nsets == sizeof(sets) / sizeof(sets[0])) {
        fprintf(stderr, "fdsched: too many -s overrides\n");
        return 2;
      }
      sets[nsets++] = optarg;
      break;
    case 'h': usage(stdout, items, nitems); return 0;
    default: usage(stderr, items, nitems); return 2;
    }
  }
  if (optind != argc) {
    usage(stderr, items, nitems);
    return 2;
  }
  char err[512];
  if (config && fd_config_load(config, items, nitems, err, sizeof(err)) != 0) {
    fprintf(stderr, "fdsched: %s\n", err[0] ? err : config);
    return 2;
  }
  for (size_t i = 0; i < nsets; i++)
    if (fd_config_set(items, nitems, sets[i], err, sizeof(err)) != 0) {
      fprintf(stderr, "fdsched: -s %s: %s\n", sets[i], err);
      return 2;
    }
  fd_log_level_t level;
  if (fd_log_level_parse(d.cfg.log_level, &level) != 0) {
    fprintf(stderr, "fdsched: log.level = %s: want debug, info, warn or error\n",
            d.cfg.log_level);
    return 2;
  }
  fd_log_set_level(level);
  if (!d.cfg.cluster_key[0]) {
    fprintf(stderr, "fdsched: scheduler.cluster_key is required\n");
    return 2;
  }

  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int rc = start(&d);
  if (rc == 0) rc = run(&d);
  shutdown_all(&d);
  if (rc) {
    fd_log_error("fdsched: exiting: %s", fd_strerror(rc));
    return 1;
  }
  fd_log_info("fdsched: stopped");
  return 0;
}
