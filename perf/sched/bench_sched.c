/* bench_sched.c — the scheduler's costs on one core: building a plan for N
 * nodes, re-parenting after one interior node dies, heartbeats per second.
 *
 * Everything goes through the real library (scheduler.h). Each figure is
 * printed with the reference it must be compared with: a plan must be built
 * well inside one heartbeat interval, a re-parent in milliseconds, and one
 * core must absorb N heartbeats per interval (10,000 nodes/s by default). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_time.h"
#include "scheduler.h"

typedef struct opts {
  uint32_t nodes, regions, zones, stripes, rounds;
  double hb_seconds;
  uint64_t seed;
} opts_t;

static uint64_t rng;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: bench_sched [--nodes N] [--regions R] [--zones Z] [--stripes K]\n"
          "                   [--rounds N] [--hb-seconds S] [--seed N]\n"
          "Plan build (ms), one re-parent after an interior death (ms) and heartbeats\n"
          "per second on one core, through the real scheduler library.\n"
          "  --nodes N       nodes including 3 origins (default 10000)\n"
          "  --regions R     regions (default 3); --zones Z zones per region (default 3)\n"
          "  --stripes K     stripes (default 4)\n"
          "  --rounds N      plan builds and re-parents timed (default 20)\n"
          "  --hb-seconds S  how long to drive heartbeats (default 2)\n"
          "  --seed N        topology seed (default 1)\n");
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static sch_members_t *make_cluster(const opts_t *o) {
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_members_t *m = sch_members_create(&mc);
  if (!m) return NULL;
  char id[32], region[16], zone[16];
  for (uint32_t i = 0; i < o->nodes; i++) {
    bool origin = i < 3;
    uint32_t r = origin ? 0 : (uint32_t)(rnd() % o->regions);
    uint32_t z = origin ? i % o->zones : (uint32_t)(rnd() % o->zones);
    snprintf(id, sizeof(id), "%s%u", origin ? "origin" : "node", i);
    snprintf(region, sizeof(region), "r%u", r);
    snprintf(zone, sizeof(zone), "z%u", z);
    sch_node_info_t ni = {.id = id, .region = region, .zone = zone, .address = "10.0.0.1:7000",
                          .nic_bps = 10000000000ull, .free_disk_bytes = 1ull << 40,
                          .origin = origin};
    if (sch_members_register(m, &ni, 0, NULL)) {
      sch_members_destroy(m);
      return NULL;
    }
  }
  return m;
}

int main(int argc, char **argv) {
  opts_t o = {.nodes = 10000, .regions = 3, .zones = 3, .stripes = 4, .rounds = 20,
              .hb_seconds = 2.0, .seed = 1};
  static const struct option longopts[] = {
      {"nodes", required_argument, 0, 'n'},   {"regions", required_argument, 0, 'r'},
      {"zones", required_argument, 0, 'z'},   {"stripes", required_argument, 0, 'k'},
      {"rounds", required_argument, 0, 'R'},  {"hb-seconds", required_argument, 0, 'H'},
      {"seed", required_argument, 0, 's'},    {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case 'n': o.nodes = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'r': o.regions = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'z': o.zones = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'k': o.stripes = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'R': o.rounds = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'H': o.hb_seconds = strtod(optarg, NULL); break;
      case 's': o.seed = strtoull(optarg, NULL, 0); break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (o.nodes < 4 || o.nodes > FD_NODES_MAX || o.regions == 0 || o.zones == 0 ||
      o.stripes == 0 || o.stripes > FD_STRIPES_MAX || o.rounds == 0) {
    usage(stderr);
    return 2;
  }
  rng = o.seed;
  sch_members_t *m = make_cluster(&o);
  if (!m) {
    fprintf(stderr, "bench_sched: cannot build the cluster\n");
    return 1;
  }
  sch_plan_config_t pc;
  sch_plan_config_default(&pc);
  pc.stripes = o.stripes;
  sch_plan_t *p = sch_plan_create(m, &pc);
  double *t = calloc(o.rounds, sizeof(double));
  if (!p || !t) return 1;

  /* 1. Plan build. */
  for (uint32_t i = 0; i < o.rounds; i++) {
    uint64_t t0 = fd_now_ns();
    if (sch_plan_build(p)) return 1;
    t[i] = (double)(fd_now_ns() - t0) / 1e6;
  }
  qsort(t, o.rounds, sizeof(double), cmp_double);
  double build_ms = t[o.rounds / 2];
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  printf("plan build: %u nodes, %u stripes: median %.2f ms (min %.2f, max %.2f) over %u rounds;"
         " depth %u; %.4f of a %u ms heartbeat interval\n",
         o.nodes, o.stripes, build_ms, t[0], t[o.rounds - 1], o.rounds, st.depth_max,
         build_ms / FD_HEARTBEAT_MS_DEFAULT, FD_HEARTBEAT_MS_DEFAULT);

  /* 2. One re-parent after an interior death: kill a node with children in
   * some stripe, one at a time, each on the plan the previous left. */
  static uint32_t changed[FD_NODES_MAX];
  while (sch_plan_take_changed(p, changed, FD_NODES_MAX) == FD_NODES_MAX) {
  } /* the build's orders: not counted below */
  uint32_t done = 0, orphans_total = 0;
  for (uint32_t tries = 0; done < o.rounds && tries < 100 * o.rounds; tries++) {
    uint32_t x = 3 + (uint32_t)(rnd() % (o.nodes - 3));
    if (!sch_plan_contains(p, x)) continue;
    uint32_t kids = 0;
    for (uint32_t s = 0; s < o.stripes; s++) kids += sch_plan_children(p, x, s, NULL, 0);
    if (kids < 2) continue;
    sch_members_declare_dead(m, x);
    uint64_t t0 = fd_now_ns();
    int lost = sch_plan_remove(p, &x, 1);
    t[done++] = (double)(fd_now_ns() - t0) / 1e6;
    if (lost != 0) fprintf(stderr, "bench_sched: %d orphans left without a parent\n", lost);
    orphans_total += kids;
  }
  qsort(t, done, sizeof(double), cmp_double);
  uint32_t nchanged = sch_plan_take_changed(p, changed, FD_NODES_MAX);
  printf("re-parent after one interior death: median %.3f ms (min %.3f, max %.3f) over %u deaths,"
         " %.1f orphans each; %u nodes' orders changed in total\n",
         done ? t[done / 2] : 0.0, done ? t[0] : 0.0, done ? t[done - 1] : 0.0, done,
         done ? (double)orphans_total / done : 0.0, nchanged);

  /* 3. Heartbeats on one core, through the membership code: every node once
   * per interval, the failure detector ticking once per interval. */
  char **ids = calloc(o.nodes, sizeof(char *));
  for (uint32_t i = 0; i < o.nodes; i++) ids[i] = strdup(sch_members_node(m, i)->id);
  uint64_t now_ms = 1000000, beats = 0, tick_ns = 0, ticks = 0;
  uint32_t died[64];
  uint64_t t0 = fd_now_ns(), deadline = t0 + (uint64_t)(o.hb_seconds * 1e9);
  while (fd_now_ns() < deadline) {
    for (uint32_t i = 0; i < o.nodes; i++) {
      uint32_t j = (uint32_t)((i * 7919u) % o.nodes); /* not in slot order */
      if (sch_members_heartbeat(m, ids[j], now_ms, 2, i, NULL, NULL) == 0) beats++;
    }
    now_ms += FD_HEARTBEAT_MS_DEFAULT;
    uint64_t k0 = fd_now_ns();
    while (sch_members_tick(m, now_ms, died, 64) == 64) {
    }
    tick_ns += fd_now_ns() - k0;
    ticks++;
  }
  double secs = (double)(fd_now_ns() - t0) / 1e9;
  double rate = (double)beats / secs;
  printf("heartbeats: %.0f per second on one core (%llu in %.2f s, with %llu detector ticks of"
         " %.3f ms each); %.1fx the %u nodes/s a %u-node cluster sends\n",
         rate, (unsigned long long)beats, secs, (unsigned long long)ticks,
         ticks ? (double)tick_ns / ticks / 1e6 : 0.0, rate / o.nodes, o.nodes, o.nodes);

  /* 4. The same through the scheduler's core, as the daemon will call it:
   * membership, the holdings report and the plan's completion mark. The db
   * lives in a tmpfs dir when there is one (registering 10,000 nodes is
   * 10,000 fdatasyncs; that cost is the log's, not the heartbeat's). */
  char dir[128];
  snprintf(dir, sizeof(dir), "%s/fd-bench-sched-XXXXXX",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  if (!mkdtemp(dir)) return 1;
  int err;
  sch_store_t *store = sch_store_open_dir(dir, &err);
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_db_t *db = store ? sch_db_open(store, &mc, 0, &err) : NULL;
  sch_sched_t *core = db ? sch_sched_create(db, &pc) : NULL;
  if (!core) return 1;
  uint64_t r0 = fd_now_ns();
  for (uint32_t i = 0; i < o.nodes; i++) {
    const sch_node_t *n = sch_members_node(m, i);
    sch_node_info_t ni = {.id = n->id, .region = sch_members_region_name(m, n->region),
                          .zone = sch_members_zone_name(m, n->zone), .address = n->address,
                          .nic_bps = n->nic_bps, .free_disk_bytes = n->free_disk_bytes,
                          .origin = n->origin};
    if (sch_sched_register(core, &ni, 0, NULL)) return 1;
  }
  double reg_s = (double)(fd_now_ns() - r0) / 1e9;
  static uint8_t manifest[4096];
  const char *origin_ids[] = {"origin0"};
  sch_version_info_t vi = {.file = "big.img", .version = 1, .size_bytes = 10000000000ull,
                           .chunk_size_bytes = FD_CHUNK_SIZE_DEFAULT, .manifest = manifest,
                           .manifest_len = sizeof(manifest), .origin_count = 1,
                           .origins = origin_ids};
  uint64_t p0 = fd_now_ns();
  if (sch_sched_publish(core, &vi)) return 1;
  double publish_ms = (double)(fd_now_ns() - p0) / 1e6;
  uint64_t chunks = sch_registry_find(sch_db_registry(db), "big.img", 1)->chunk_count;
  beats = 0;
  now_ms = 1000;
  t0 = fd_now_ns();
  deadline = t0 + (uint64_t)(o.hb_seconds * 1e9);
  while (fd_now_ns() < deadline) {
    for (uint32_t i = 0; i < o.nodes; i++) {
      uint32_t j = (uint32_t)((i * 7919u) % o.nodes);
      if (sch_sched_heartbeat(core, ids[j], now_ms, "big.img", 1, (now_ms / 1000) % (chunks + 1)) == 0)
        beats++;
    }
    now_ms += FD_HEARTBEAT_MS_DEFAULT;
    if (sch_sched_tick(core, now_ms) < 0) return 1;
  }
  secs = (double)(fd_now_ns() - t0) / 1e9;
  double core_rate = (double)beats / secs;
  printf("heartbeats through sch_sched (with holdings and the detector): %.0f per second on one"
         " core; %.1fx the %u nodes/s a %u-node cluster sends. (registering %u nodes: %.2f s,"
         " log in %s; publish and plan: %.2f ms)\n",
         core_rate, core_rate / o.nodes, o.nodes, o.nodes, o.nodes, reg_s, dir, publish_ms);
  sch_sched_destroy(core);
  sch_db_close(db);
  char path[256];
  snprintf(path, sizeof(path), "%s/log", dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/checkpoint", dir);
  unlink(path);
  rmdir(dir);

  for (uint32_t i = 0; i < o.nodes; i++) free(ids[i]);
  free(ids);
  free(t);
  sch_plan_destroy(p);
  sch_members_destroy(m);
  return 0;
}
