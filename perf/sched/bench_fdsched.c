/* bench_fdsched.c — heartbeats per second handled by the real fdsched daemon
 * over loopback.
 *
 * Starts build/scheduler/fdsched (fork/exec) on an ephemeral loopback port
 * with its data dir under --dir, registers --nodes nodes (3 origins across
 * 3 regions x 3 zones) and one version, so every heartbeat reply carries the
 * node's order, then drives heartbeats (each reporting progress on that
 * version) over --conns connections with --inflight calls outstanding on
 * each, for --seconds. Prints registrations/s (each one fdatasync'd in the
 * daemon's log) and heartbeats/s, with the client's and daemon's CPU time so
 * the figure can be read against what one core allows. Not a test. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd_hash.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc.h"
#include "storage.h"

#define CONNS_MAX 64
#define INFLIGHT_MAX 120 /* below the server's streams per connection */

typedef struct opts {
  const char *fdsched, *dir;
  uint32_t nodes, conns, inflight, watchers;
  double seconds;
} opts_t;

/* A node with its own connection and WatchOrders stream, as fdnode keeps one. */
typedef struct watcher {
  rpc_conn_t *conn;
  bool ready, closed;
  rpc_call_t *watch;
  uint64_t version;
  uint64_t got_ns;
} watcher_t;

typedef struct slot {
  rpc_call_t *call;
  bool busy;
} slot_t;

typedef struct client {
  rpc_conn_t *conn;
  bool ready, closed;
  slot_t slot[INFLIGHT_MAX];
} client_t;

static uint64_t g_done, g_failed;
static char (*g_ids)[32];

static void usage(FILE *f) {
  fprintf(f,
          "usage: bench_fdsched --fdsched PATH [--dir DIR] [--nodes N] [--conns C]\n"
          "                     [--inflight I] [--seconds S]\n"
          "Heartbeats per second handled by the real fdsched over loopback.\n"
          "  --fdsched PATH  the daemon binary (build/scheduler/fdsched)\n"
          "  --dir DIR       where its temp dir goes (default /dev/shm: registration\n"
          "                  fsyncs are then cheap; give a disk path to time them)\n"
          "  --nodes N       registered nodes (default 10000)\n"
          "  --conns C       client connections (default 8, at most %d)\n"
          "  --inflight I    heartbeats outstanding per connection (default 64, at most %d)\n"
          "  --seconds S     how long to drive heartbeats (default 3)\n"
          "  --watchers W    nodes with their own connection and WatchOrders stream\n"
          "                  (default 1000): time from RegisterVersion to every one\n"
          "                  of them holding its new order\n",
          CONNS_MAX, INFLIGHT_MAX);
}

static void on_ready(rpc_conn_t *c, void *arg) {
  (void)c;
  ((client_t *)arg)->ready = true;
}
static void on_closed(rpc_conn_t *c, int err, void *arg) {
  (void)c;
  (void)err;
  client_t *cl = arg;
  cl->closed = true;
  cl->conn = NULL;
}
static const rpc_conn_cbs_t conn_cbs = {on_ready, on_closed};

static void on_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  slot_t *s = arg;
  s->busy = false;
  s->call = NULL;
  if (code == RPC_OK) g_done++;
  else if (g_failed++ < 5) fprintf(stderr, "bench_fdsched: call failed: %s %s\n", rpc_code_name(code), msg);
}
static const rpc_call_cbs_t call_cbs = {NULL, NULL, NULL, on_done};

static void w_ready(rpc_conn_t *c, void *arg) {
  (void)c;
  ((watcher_t *)arg)->ready = true;
}
static void w_closed(rpc_conn_t *c, int err, void *arg) {
  (void)c;
  (void)err;
  watcher_t *w = arg;
  w->closed = true;
  w->conn = NULL;
}
static const rpc_conn_cbs_t w_conn_cbs = {w_ready, w_closed};
static void w_order(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  watcher_t *w = arg;
  const Sched__Order *o = (const Sched__Order *)m;
  if (o->version > w->version) {
    w->version = o->version;
    w->got_ns = fd_now_ns();
  }
}
static void w_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  ((watcher_t *)arg)->watch = NULL;
}
static const rpc_call_cbs_t w_call_cbs = {w_order, NULL, NULL, w_done};

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double cpu_s(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds used so far by process pid (from /proc). */
static double proc_cpu_s(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static pid_t start_daemon(const opts_t *o, const char *dir, uint16_t *port) {
  char a[6][600];
  snprintf(a[0], sizeof(a[0]), "scheduler.cluster_key=%s/key", dir);
  snprintf(a[1], sizeof(a[1]), "scheduler.admin_public_key=%s/admin.pub", dir);
  snprintf(a[2], sizeof(a[2]), "scheduler.data_dir=%s/data", dir);
  snprintf(a[3], sizeof(a[3]), "scheduler.port_file=%s/port", dir);
  snprintf(a[4], sizeof(a[4]), "scheduler.listen=127.0.0.1:0");
  snprintf(a[5], sizeof(a[5]), "log.level=warn");
  char log[600];
  snprintf(log, sizeof(log), "%s/fdsched.log", dir);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test, even if it crashes */
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(o->fdsched, o->fdsched, "-s", a[0], "-s", a[1], "-s", a[2], "-s", a[3], "-s", a[4],
          "-s", a[5], (char *)NULL);
    _exit(127);
  }
  if (pid < 0) return -1;
  char pf[600];
  snprintf(pf, sizeof(pf), "%s/port", dir);
  uint64_t until = fd_now_ms() + 10000;
  while (fd_now_ms() < until) {
    FILE *f = fopen(pf, "r");
    unsigned p = 0;
    if (f) {
      int got = fscanf(f, "%u", &p);
      fclose(f);
      if (got == 1 && p) {
        *port = (uint16_t)p;
        return pid;
      }
    }
    if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
    usleep(5000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* Runs e until every busy slot of every client is free, or timeout_ms. */
static void drain_calls(rpc_engine_t *e, client_t *cl, uint32_t conns, uint32_t timeout_ms) {
  uint64_t until = fd_now_ms() + timeout_ms;
  for (;;) {
    bool busy = false;
    for (uint32_t c = 0; c < conns; c++)
      for (uint32_t i = 0; i < INFLIGHT_MAX; i++) busy |= cl[c].slot[i].busy;
    if (!busy || fd_now_ms() > until) return;
    rpc_engine_run_once(e, 5);
  }
}

static bool start_register(client_t *cl, slot_t *s, uint32_t n) {
  Sched__NodeInfo ni = SCHED__NODE_INFO__INIT;
  char region[8], zone[8];
  snprintf(region, sizeof(region), "r%u", n % 3);
  snprintf(zone, sizeof(zone), "z%u", (n / 3) % 3);
  ni.node_id = g_ids[n];
  ni.region = region;
  ni.zone = zone;
  ni.addr = (char *)"127.0.0.1";
  ni.port = 10000 + n % 50000;
  ni.nic_bps = 10000000000ull;
  ni.capacity_bytes = 1ull << 40;
  ni.origin = n < 3;
  Sched__RegisterRequest req = SCHED__REGISTER_REQUEST__INIT;
  req.node = &ni;
  s->call = rpc_start_sched_register(cl->conn, &req, 60000, &call_cbs, s);
  s->busy = s->call != NULL;
  return s->busy;
}

static bool start_heartbeat(client_t *cl, slot_t *s, uint32_t n, uint64_t chunks) {
  Sched__VersionHeld vh = SCHED__VERSION_HELD__INIT;
  Sched__VersionHeld *vhp = &vh;
  vh.name = (char *)"bigfile";
  vh.version = 1;
  vh.chunks_present = chunks;
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  req.node_id = g_ids[n];
  req.n_versions = 1;
  req.versions = &vhp;
  s->call = rpc_start_sched_heartbeat(cl->conn, &req, 60000, &call_cbs, s);
  s->busy = s->call != NULL;
  return s->busy;
}

int main(int argc, char **argv) {
  opts_t o = {NULL, "/dev/shm", 10000, 8, 64, 1000, 3.0};
  static const struct option lo[] = {{"fdsched", required_argument, NULL, 'f'},
                                     {"dir", required_argument, NULL, 'd'},
                                     {"nodes", required_argument, NULL, 'n'},
                                     {"conns", required_argument, NULL, 'c'},
                                     {"inflight", required_argument, NULL, 'i'},
                                     {"seconds", required_argument, NULL, 's'},
                                     {"watchers", required_argument, NULL, 'w'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (ch) {
    case 'f': o.fdsched = optarg; break;
    case 'd': o.dir = optarg; break;
    case 'n': o.nodes = (uint32_t)strtoul(optarg, NULL, 10); break;
    case 'c': o.conns = (uint32_t)strtoul(optarg, NULL, 10); break;
    case 'i': o.inflight = (uint32_t)strtoul(optarg, NULL, 10); break;
    case 's': o.seconds = strtod(optarg, NULL); break;
    case 'w': o.watchers = (uint32_t)strtoul(optarg, NULL, 10); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!o.fdsched || o.nodes < 4 || o.nodes > FD_NODES_MAX || o.conns == 0 ||
      o.conns > CONNS_MAX || o.inflight == 0 || o.inflight > INFLIGHT_MAX || o.seconds <= 0 ||
      o.watchers > o.nodes || o.watchers + CONNS_MAX > FD_CONNECTIONS_MAX) {
    usage(stderr);
    return 2;
  }
  fd_log_init("bench_fdsched", FD_LOG_WARN);
  signal(SIGPIPE, SIG_IGN);

  char dir[512];
  snprintf(dir, sizeof(dir), "%s/bench-fdsched-XXXXXX", o.dir);
  if (!mkdtemp(dir)) {
    fprintf(stderr, "bench_fdsched: mkdtemp in %s: %s\n", o.dir, strerror(errno));
    return 1;
  }
  uint8_t key[32];
  char hex[65], path[600];
  fd_random_bytes(key, sizeof(key));
  fd_hex_encode(key, sizeof(key), hex);
  snprintf(path, sizeof(path), "%s/key", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "%s\n", hex);
  fclose(f);
  fd_ed25519_key_t admin;
  char priv[600], pub[600];
  snprintf(priv, sizeof(priv), "%s/admin.pem", dir);
  snprintf(pub, sizeof(pub), "%s/admin.pub", dir);
  fd_ed25519_generate(&admin);
  fd_ed25519_save(&admin, priv, pub);

  int rc = 1;
  uint16_t port = 0;
  pid_t pid = start_daemon(&o, dir, &port);
  if (pid < 0) {
    fprintf(stderr, "bench_fdsched: fdsched did not start (see %s/fdsched.log)\n", dir);
    goto out_rm;
  }
  rpc_engine_opts_t eo = {0};
  eo.cpu = -1;
  eo.cluster_key = key;
  eo.cluster_key_len = sizeof(key);
  eo.conns_max = CONNS_MAX + o.watchers;
  rpc_engine_t *e = rpc_engine_create(&eo);
  client_t *cl = calloc(o.conns, sizeof(*cl));
  watcher_t *wa = calloc(o.watchers ? o.watchers : 1, sizeof(*wa));
  g_ids = calloc(o.nodes, sizeof(*g_ids));
  for (uint32_t n = 0; n < o.nodes; n++) snprintf(g_ids[n], sizeof(g_ids[n]), "node-%05u", n);
  for (uint32_t c = 0; c < o.conns; c++) {
    cl[c].conn = rpc_connect(e, "127.0.0.1", port, &conn_cbs, &cl[c]);
    uint64_t until = fd_now_ms() + 5000;
    while (cl[c].conn && !cl[c].ready && !cl[c].closed && fd_now_ms() < until)
      rpc_engine_run_once(e, 5);
    if (!cl[c].ready) {
      fprintf(stderr, "bench_fdsched: cannot connect\n");
      goto out_stop;
    }
  }

  /* Registrations, pipelined: each is logged and fdatasync'd by the daemon. */
  uint64_t t0 = fd_now_ns();
  uint32_t next = 0;
  while (g_done < o.nodes && g_failed == 0) {
    for (uint32_t c = 0; c < o.conns; c++)
      for (uint32_t i = 0; i < o.inflight && next < o.nodes; i++)
        if (!cl[c].slot[i].busy) start_register(&cl[c], &cl[c].slot[i], next++);
    rpc_engine_run_once(e, 5);
  }
  drain_calls(e, cl, o.conns, 10000);
  double reg_s = (double)(fd_now_ns() - t0) / 1e9;
  if (g_failed) goto out_stop;
  printf("registrations: %u in %.2f s = %.0f per second (each fdatasync'd in %s)\n", o.nodes, reg_s,
         o.nodes / reg_s, o.dir);

  /* Watchers: one connection and one order stream each. */
  for (uint32_t i = 0; i < o.watchers; i++) {
    wa[i].conn = rpc_connect(e, "127.0.0.1", port, &w_conn_cbs, &wa[i]);
    if (!wa[i].conn) {
      fprintf(stderr, "bench_fdsched: connect %u: %s\n", i, strerror(errno));
      goto out_stop;
    }
    if (i % 256 == 255) rpc_engine_run_once(e, 0);
  }
  uint64_t wuntil = fd_now_ms() + 60000;
  uint32_t opened = 0;
  while (opened < o.watchers && fd_now_ms() < wuntil) {
    rpc_engine_run_once(e, 5);
    for (uint32_t i = 0; i < o.watchers; i++)
      if (wa[i].ready && !wa[i].watch && wa[i].conn && !wa[i].closed && wa[i].got_ns == 0) {
        Sched__WatchOrdersRequest wr = SCHED__WATCH_ORDERS_REQUEST__INIT;
        wr.node_id = g_ids[i];
        wa[i].watch = rpc_start_sched_watch_orders(wa[i].conn, &wr, RPC_TIMEOUT_MS_MAX,
                                                   &w_call_cbs, &wa[i]);
        wa[i].got_ns = 1; /* opened */
        opened++;
      }
  }
  if (opened < o.watchers) {
    fprintf(stderr, "bench_fdsched: only %u of %u watchers connected\n", opened, o.watchers);
    goto out_stop;
  }
  for (uint32_t i = 0; i < o.watchers; i++) wa[i].got_ns = 0;
  rpc_engine_run_once(e, 50);

  /* One version, so every heartbeat reply carries the node's order. */
  st_manifest_t *m = NULL;
  uint8_t *man = NULL, *chunk = calloc(1, FD_CHUNK_SIZE_MIN);
  size_t man_len = 0;
  if (st_manifest_new("bigfile", 1, 0, 64ull * FD_CHUNK_SIZE_MIN, FD_CHUNK_SIZE_MIN, &m) != 0)
    goto out_stop;
  for (uint32_t i = 0; i < 64; i++) st_manifest_set_chunk(m, i, chunk, FD_CHUNK_SIZE_MIN);
  free(chunk);
  st_manifest_sign(m, &admin);
  st_manifest_encode(m, &man, &man_len);
  st_manifest_free(m);
  Sched__RegisterVersionRequest vr = SCHED__REGISTER_VERSION_REQUEST__INIT;
  char *origins[3] = {g_ids[0], g_ids[1], g_ids[2]};
  vr.manifest.data = man;
  vr.manifest.len = man_len;
  vr.n_origins = 3;
  vr.origins = origins;
  uint64_t before = g_done;
  t0 = fd_now_ns();
  cl[0].slot[0].call = rpc_start_sched_register_version(cl[0].conn, &vr, 60000, &call_cbs, &cl[0].slot[0]);
  cl[0].slot[0].busy = true;
  drain_calls(e, cl, o.conns, 30000);
  uint64_t acked_ns = fd_now_ns() - t0;
  free(man);
  if (g_done != before + 1) goto out_stop;
  printf("RegisterVersion answered (logged, planned for %u nodes, orders pushed): %.2f ms\n",
         o.nodes, (double)acked_ns / 1e6);
  if (o.watchers) {
    uint64_t until_ns = fd_now_ns() + 30000000000ull;
    uint32_t have = 0;
    while (fd_now_ns() < until_ns) {
      have = 0;
      for (uint32_t i = 0; i < o.watchers; i++) have += wa[i].version == 1;
      if (have == o.watchers) break;
      rpc_engine_run_once(e, 1);
    }
    uint64_t *lat = calloc(o.watchers, sizeof(*lat));
    uint32_t k = 0;
    for (uint32_t i = 0; i < o.watchers; i++)
      if (wa[i].version == 1) lat[k++] = wa[i].got_ns - t0;
    qsort(lat, k, sizeof(*lat), cmp_u64);
    printf("new-version orders pushed on WatchOrders: %u of %u nodes (one connection each) "
           "had theirs after p50 %.2f ms, p99 %.2f ms, last %.2f ms\n",
           k, o.watchers, k ? lat[k / 2] / 1e6 : 0.0, k ? lat[(k * 99) / 100] / 1e6 : 0.0,
           k ? lat[k - 1] / 1e6 : 0.0);
    free(lat);
    if (k != o.watchers) goto out_stop;
  }

  /* Heartbeats. */
  g_done = 0;
  double cpu0 = cpu_s(RUSAGE_SELF), dcpu0 = proc_cpu_s(pid);
  t0 = fd_now_ns();
  uint64_t end = t0 + (uint64_t)(o.seconds * 1e9);
  uint64_t beat = 0;
  while (fd_now_ns() < end && g_failed == 0) {
    for (uint32_t c = 0; c < o.conns; c++)
      for (uint32_t i = 0; i < o.inflight; i++)
        if (!cl[c].slot[i].busy) {
          uint32_t n = (uint32_t)(beat % o.nodes);
          start_heartbeat(&cl[c], &cl[c].slot[i], n, (beat / o.nodes) % 64);
          beat++;
        }
    rpc_engine_run_once(e, 1);
  }
  double hb_s = (double)(fd_now_ns() - t0) / 1e9;
  uint64_t hb = g_done;
  double cpu = cpu_s(RUSAGE_SELF) - cpu0, dcpu = proc_cpu_s(pid) - dcpu0;
  drain_calls(e, cl, o.conns, 10000);
  printf("heartbeats: %llu in %.2f s = %.0f per second handled by fdsched over loopback "
         "(%u conns x %u in flight; each reply carries the node's order)\n",
         (unsigned long long)hb, hb_s, hb / hb_s, o.conns, o.inflight);
  printf("cpu: fdsched %.2f s (%.0f%% of one core; %.0f heartbeats per fdsched cpu-second), "
         "this client %.2f s; %u nodes at 1 heartbeat/s need %u per second\n",
         dcpu, 100.0 * dcpu / hb_s, dcpu > 0 ? hb / dcpu : 0.0, cpu, o.nodes, o.nodes);
  rc = g_failed ? 1 : 0;

out_stop:
  if (e) rpc_engine_destroy(e);
  free(cl);
  free(wa);
  free(g_ids);
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "bench_fdsched: fdsched did not exit 0 on SIGTERM\n");
    rc = 1;
  }
out_rm:
  snprintf(path, sizeof(path), "rm -rf '%s'", dir);
  if (system(path) != 0) fprintf(stderr, "bench_fdsched: cannot remove %s\n", dir);
  return rc;
}
