/* sim.c — fan-out of one file to N nodes, simulated at flow level over the
 * trees the real planner builds (scheduler.h, linked, not copied), with and
 * without nodes dying mid-transfer (re-parented by the real planner), and
 * over a single chain and a flat star from the origin for reference, all in
 * one run. Prints fan-out time T, efficiency (S/B)/T and bytes per link
 * class. See flow.h for the network model. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_config.h"
#include "fd_time.h"
#include "flow.h"
#include "scheduler.h"

typedef struct opts {
  uint32_t nodes, regions, zones, stripes;
  uint64_t size_bytes, chunk_bytes;
  double nic_gbps, cross_region_gbps, cross_zone_gbps;
  double fail_fraction, detect_ms;
  uint64_t seed;
  bool run_plan, run_fail, run_chain, run_star;
} opts_t;

static uint64_t rng;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double rnd01(void) { return (double)(rnd() >> 11) / (double)(1ull << 53); }

static void usage(FILE *f) {
  fprintf(f,
          "usage: sim [options]\n"
          "Flow-level simulation of one file's fan-out over the real planner's trees.\n"
          "  --nodes N              nodes including 3 origins (default 10000)\n"
          "  --regions R --zones Z  regions, zones per region (default 3 and 3)\n"
          "  --stripes K            stripes (default 4)\n"
          "  --size BYTES           file size S, K/M/G/T suffixes are powers of 1024\n"
          "                         (default 10000000000, i.e. 10 GB)\n"
          "  --chunk BYTES          chunk size (default 4M)\n"
          "  --nic-gbps B           per-node full-duplex NIC (default 10)\n"
          "  --cross-region-gbps C  capacity of each ordered region pair (default 100)\n"
          "  --cross-zone-gbps C    capacity of each ordered zone pair (default 400)\n"
          "  --fail F               fraction of nodes killed mid-transfer (default 0.01)\n"
          "  --detect-ms D          from a death to the planner's re-parent (default 50)\n"
          "  --runs LIST            any of plan,fail,chain,star (default all four)\n"
          "  --seed N               topology and failure seed (default 1)\n");
}

static sch_members_t *make_members(const opts_t *o) {
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  sch_members_t *m = sch_members_create(&mc);
  if (!m) return NULL;
  uint64_t save = rng;
  rng = o->seed; /* the same topology for every run */
  char id[32], region[16], zone[16];
  for (uint32_t i = 0; i < o->nodes; i++) {
    bool origin = i < 3;
    uint32_t r = origin ? 0 : (uint32_t)(rnd() % o->regions);
    uint32_t z = origin ? i % o->zones : (uint32_t)(rnd() % o->zones);
    snprintf(id, sizeof(id), "%s%u", origin ? "origin" : "node", i);
    snprintf(region, sizeof(region), "r%u", r);
    snprintf(zone, sizeof(zone), "z%u", z);
    sch_node_info_t ni = {.id = id, .region = region, .zone = zone, .address = "sim:0",
                          .nic_bps = (uint64_t)(o->nic_gbps * 1e9), .free_disk_bytes = 1ull << 40,
                          .origin = origin};
    if (sch_members_register(m, &ni, 0, NULL)) {
      sch_members_destroy(m);
      return NULL;
    }
  }
  rng = save; /* failures draw from their own stream */
  return m;
}

static flow_t *make_flow(const opts_t *o, const sch_members_t *m, uint32_t stripes) {
  uint32_t n = o->nodes;
  uint16_t *region = malloc(n * sizeof(uint16_t)), *zone = malloc(n * sizeof(uint16_t));
  bool *origin = malloc(n);
  for (uint32_t i = 0; i < n; i++) {
    const sch_node_t *nd = sch_members_node(m, i);
    region[i] = nd->region;
    zone[i] = nd->zone;
    origin[i] = nd->origin;
  }
  flow_params_t prm = {.nodes = n,
                       .stripes = stripes,
                       .regions = sch_members_region_count(m),
                       .zones = sch_members_zone_count(m),
                       .size_bytes = o->size_bytes,
                       .chunk_bytes = o->chunk_bytes,
                       .nic_Bps = o->nic_gbps * 1e9 / 8,
                       .cross_region_Bps = o->cross_region_gbps * 1e9 / 8,
                       .cross_zone_Bps = o->cross_zone_gbps * 1e9 / 8};
  flow_t *f = flow_create(&prm, region, zone, origin);
  free(region);
  free(zone);
  free(origin);
  return f;
}

static void report(const opts_t *o, const char *name, flow_t *f, bool complete, double wall_s,
                   const char *extra) {
  double ideal = (double)o->size_bytes * 8 / (o->nic_gbps * 1e9);
  double T = flow_finish_time(f);
  double S = (double)o->size_bytes;
  double xr = flow_bytes(f, LINK_CROSS_REGION), xz = flow_bytes(f, LINK_CROSS_ZONE),
         iz = flow_bytes(f, LINK_INTRA_ZONE);
  printf("%-6s T = %10.3f s  efficiency (S/B)/T = %.4f  S/B = %.3f s%s\n", name,
         complete ? T : INFINITY, complete ? ideal / T : 0.0, ideal,
         complete ? "" : "  (INCOMPLETE)");
  printf("       bytes: cross-region %.3f GB (%.4f x S x (regions-1)), cross-zone %.3f GB,"
         " intra-zone %.3f GB; %llu chunk events in %.1f s wall%s\n",
         xr / 1e9, o->regions > 1 ? xr / (S * (o->regions - 1)) : 0.0, xz / 1e9, iz / 1e9,
         (unsigned long long)flow_events(f), wall_s, extra ? extra : "");
  if (!complete) printf("       %u live nodes never completed\n", flow_incomplete(f));
  fflush(stdout);
}

typedef struct ev {
  double t;
  uint32_t node;
  bool detect;
} ev_t;

static int cmp_ev(const void *a, const void *b) {
  const ev_t *x = a, *y = b;
  return x->t < y->t ? -1 : x->t > y->t;
}

/* The planner's tree, optionally with nodes dying mid-transfer. */
static int run_plan(const opts_t *o, bool failures, double *eff_out, double *xr_ratio_out) {
  sch_members_t *m = make_members(o);
  if (!m) return -ENOMEM;
  sch_plan_config_t pc = {.stripes = o->stripes,
                          .stream_bps = (uint64_t)(o->nic_gbps * 1e9) / o->stripes};
  sch_plan_t *p = sch_plan_create(m, &pc);
  flow_t *f = make_flow(o, m, o->stripes);
  if (!p || !f) {
    flow_destroy(f);
    sch_plan_destroy(p);
    sch_members_destroy(m);
    return -ENOMEM;
  }
  uint64_t t0 = fd_now_ns();
  int rc = sch_plan_build(p);
  if (rc) return rc;
  double build_ms = (double)(fd_now_ns() - t0) / 1e6;
  for (uint32_t x = 0; x < o->nodes; x++)
    for (uint32_t s = 0; s < o->stripes; s++) flow_set_parent(f, x, s, sch_plan_parent(p, x, s));
  static uint32_t changed[FD_NODES_MAX];
  while (sch_plan_take_changed(p, changed, FD_NODES_MAX) == FD_NODES_MAX) {
  }
  uint32_t kills = failures ? (uint32_t)llround(o->fail_fraction * (o->nodes - 3)) : 0;
  ev_t *evs = calloc(2 * (size_t)kills + 1, sizeof(ev_t));
  double ideal = (double)o->size_bytes * 8 / (o->nic_gbps * 1e9);
  uint8_t *picked = calloc(o->nodes, 1);
  for (uint32_t i = 0; i < kills; i++) {
    uint32_t x;
    do x = 3 + (uint32_t)(rnd() % (o->nodes - 3));
    while (picked[x]);
    picked[x] = 1;
    double t = rnd01() * ideal; /* a random moment of the transfer */
    evs[2 * i] = (ev_t){t, x, false};
    evs[2 * i + 1] = (ev_t){t + o->detect_ms / 1e3, x, true};
  }
  qsort(evs, 2 * (size_t)kills, sizeof(ev_t), cmp_ev);
  uint64_t w0 = fd_now_ns();
  double reparent_ms = 0;
  uint32_t lost = 0, pushed = 0;
  flow_start(f);
  for (uint32_t i = 0; i < 2 * kills; i++) {
    flow_run(f, evs[i].t);
    if (!evs[i].detect) {
      flow_kill(f, evs[i].node);
      continue;
    }
    uint64_t r0 = fd_now_ns();
    sch_members_declare_dead(m, evs[i].node);
    int l = sch_plan_remove(p, &evs[i].node, 1);
    reparent_ms += (double)(fd_now_ns() - r0) / 1e6;
    if (l > 0) lost += (uint32_t)l;
    uint32_t n;
    while ((n = sch_plan_take_changed(p, changed, FD_NODES_MAX)) > 0) {
      for (uint32_t j = 0; j < n; j++) {
        uint32_t y = changed[j];
        if (!sch_plan_contains(p, y)) continue;
        pushed++;
        for (uint32_t s = 0; s < o->stripes; s++) flow_set_parent(f, y, s, sch_plan_parent(p, y, s));
      }
      if (n < FD_NODES_MAX) break;
    }
  }
  bool complete = flow_run(f, INFINITY);
  double wall = (double)(fd_now_ns() - w0) / 1e9;
  char extra[256];
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  if (failures)
    snprintf(extra, sizeof(extra),
             "\n       %u nodes killed at random moments, re-parented %.0f ms after each death"
             " (%.2f ms planner time in all, %u orders pushed, %u orphans unplaced)",
             kills, o->detect_ms, reparent_ms, pushed, lost);
  else
    snprintf(extra, sizeof(extra), "\n       plan built in %.2f ms, depth %u, %u nodes interior"
             " in more than one stripe", build_ms, st.depth_max, st.multi_interior);
  report(o, failures ? "fail" : "plan", f, complete, wall, extra);
  double T = flow_finish_time(f);
  *eff_out = complete ? ideal / T : 0;
  *xr_ratio_out = flow_bytes(f, LINK_CROSS_REGION) /
                  ((double)o->size_bytes * (o->regions > 1 ? o->regions - 1 : 1));
  free(picked);
  free(evs);
  flow_destroy(f);
  sch_plan_destroy(p);
  sch_members_destroy(m);
  return 0;
}

static int cmp_place(const void *a, const void *b, void *arg);

/* Reference topologies: one stripe; a chain through every node (ordered by
 * region and zone, so it crosses each boundary once) or a star from one
 * origin. */
static int run_reference(const opts_t *o, bool chain) {
  sch_members_t *m = make_members(o);
  if (!m) return -ENOMEM;
  flow_t *f = make_flow(o, m, 1);
  if (!f) {
    sch_members_destroy(m);
    return -ENOMEM;
  }
  uint32_t *order = malloc(o->nodes * sizeof(uint32_t));
  uint32_t n = 0;
  for (uint32_t x = 3; x < o->nodes; x++) order[n++] = x;
  qsort_r(order, n, sizeof(uint32_t), cmp_place, m);
  int32_t prev = 0; /* origin 0 */
  for (uint32_t i = 0; i < n; i++) {
    flow_set_parent(f, order[i], 0, prev);
    if (chain) prev = (int32_t)order[i];
  }
  uint64_t w0 = fd_now_ns();
  bool complete = flow_run(f, INFINITY);
  report(o, chain ? "chain" : "star", f, complete, (double)(fd_now_ns() - w0) / 1e9, NULL);
  free(order);
  flow_destroy(f);
  sch_members_destroy(m);
  return 0;
}

static int cmp_place(const void *a, const void *b, void *arg) {
  const sch_members_t *m = arg;
  const sch_node_t *x = sch_members_node(m, *(const uint32_t *)a);
  const sch_node_t *y = sch_members_node(m, *(const uint32_t *)b);
  if (x->region != y->region) return x->region < y->region ? -1 : 1;
  if (x->zone != y->zone) return x->zone < y->zone ? -1 : 1;
  return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static int parse_runs(const char *list, opts_t *o) {
  o->run_plan = o->run_fail = o->run_chain = o->run_star = false;
  char buf[128];
  snprintf(buf, sizeof(buf), "%s", list);
  for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (!strcmp(t, "plan")) o->run_plan = true;
    else if (!strcmp(t, "fail")) o->run_fail = true;
    else if (!strcmp(t, "chain")) o->run_chain = true;
    else if (!strcmp(t, "star")) o->run_star = true;
    else return -EINVAL;
  }
  return 0;
}

int main(int argc, char **argv) {
  opts_t o = {.nodes = 10000, .regions = 3, .zones = 3, .stripes = 4,
              .size_bytes = 10000000000ull, .chunk_bytes = FD_CHUNK_SIZE_DEFAULT,
              .nic_gbps = 10, .cross_region_gbps = 100, .cross_zone_gbps = 400,
              .fail_fraction = 0.01, .detect_ms = 50, .seed = 1,
              .run_plan = true, .run_fail = true, .run_chain = true, .run_star = true};
  static const struct option longopts[] = {
      {"nodes", required_argument, 0, 'n'},       {"regions", required_argument, 0, 'r'},
      {"zones", required_argument, 0, 'z'},       {"stripes", required_argument, 0, 'k'},
      {"size", required_argument, 0, 'S'},        {"chunk", required_argument, 0, 'c'},
      {"nic-gbps", required_argument, 0, 'B'},    {"cross-region-gbps", required_argument, 0, 'X'},
      {"cross-zone-gbps", required_argument, 0, 'Y'}, {"fail", required_argument, 0, 'f'},
      {"detect-ms", required_argument, 0, 'd'},   {"runs", required_argument, 0, 'u'},
      {"seed", required_argument, 0, 's'},        {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case 'n': o.nodes = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'r': o.regions = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'z': o.zones = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'k': o.stripes = (uint32_t)strtoul(optarg, NULL, 0); break;
      case 'S':
        if (fd_parse_bytes(optarg, &o.size_bytes)) return usage(stderr), 2;
        break;
      case 'c':
        if (fd_parse_bytes(optarg, &o.chunk_bytes)) return usage(stderr), 2;
        break;
      case 'B': o.nic_gbps = strtod(optarg, NULL); break;
      case 'X': o.cross_region_gbps = strtod(optarg, NULL); break;
      case 'Y': o.cross_zone_gbps = strtod(optarg, NULL); break;
      case 'f': o.fail_fraction = strtod(optarg, NULL); break;
      case 'd': o.detect_ms = strtod(optarg, NULL); break;
      case 'u':
        if (parse_runs(optarg, &o)) return usage(stderr), 2;
        break;
      case 's': o.seed = strtoull(optarg, NULL, 0); break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (o.nodes < 4 || o.nodes > FD_NODES_MAX || o.regions == 0 || o.zones == 0 ||
      o.stripes == 0 || o.stripes > FD_STRIPES_MAX || o.size_bytes == 0 || o.chunk_bytes == 0 ||
      o.nic_gbps <= 0 || o.cross_region_gbps <= 0 || o.cross_zone_gbps <= 0 ||
      o.fail_fraction < 0 || o.fail_fraction > 0.5) {
    usage(stderr);
    return 2;
  }
  rng = o.seed ^ 0x5DEECE66Dull; /* failure times and victims */
  printf("sim: %u nodes (3 origins in region 0) over %u regions x %u zones, S = %.3f GB,"
         " chunk %llu KiB, %u stripes, NIC %.1f Gbit/s, cross-region %.0f Gbit/s and cross-zone"
         " %.0f Gbit/s per pair, seed %llu\n",
         o.nodes, o.regions, o.zones, (double)o.size_bytes / 1e9,
         (unsigned long long)(o.chunk_bytes >> 10), o.stripes, o.nic_gbps, o.cross_region_gbps,
         o.cross_zone_gbps, (unsigned long long)o.seed);
  int status = 0;
  double eff, xr;
  if (o.run_plan) {
    if (run_plan(&o, false, &eff, &xr)) return 1;
    bool ok = eff >= 0.9 && xr <= 1.05;
    printf("       target: efficiency >= 0.90 and cross-region <= 1.05 x S x (regions-1): %s\n",
           ok ? "met" : "MISSED");
    status |= !ok;
  }
  if (o.run_fail) {
    if (run_plan(&o, true, &eff, &xr)) return 1;
    bool ok = eff >= 0.85;
    printf("       target: efficiency >= 0.85 with %.1f%% of nodes failing: %s\n",
           o.fail_fraction * 100, ok ? "met" : "MISSED");
    status |= !ok;
  }
  if (o.run_chain && run_reference(&o, true)) return 1;
  if (o.run_star && run_reference(&o, false)) return 1;
  return status;
}
