/*
 * adm_status.c — the read commands (status, versions, nodes) and the two
 * small admin write gc (drain and undrain are in adm_drain.c).
 *
 * status: the scheduler's Status — per file's newest version: nodes complete,
 * in progress and failed, overall and per region and zone, bytes held,
 * throughput and ETA, all computed by fdsched from node reports — plus
 * ListVersions (every registered version) and ListNodes (members per region
 * and zone by state). fdadmin only formats them.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "fd_error.h"
#include "fd_time.h"


static volatile sig_atomic_t stop_watch;
static void on_sigint(int sig) {
  (void)sig;
  stop_watch = 1;
}

static rpc_code_t sched_call(adm_client_t *cl, uint32_t method, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  char msg[256];
  rpc_code_t code = adm_call(cl, RPC_SVC_SCHED, &sched__scheduler__descriptor, method, req,
                             0, reply, msg, sizeof(msg));
  if (code != RPC_OK)
    fprintf(stderr, "fdadmin: %s: %s %s\n", sched__scheduler__descriptor.methods[method].name,
            rpc_code_name(code), msg);
  return code;
}

/* ---- status ---- */

typedef struct zone_count {
  char region[64], zone[64];
  uint32_t alive, suspect, dead, draining;
} zone_count_t;

static void print_zone_members(const Sched__ListNodesReply *n, bool json) {
  static zone_count_t zones[ADM_ZONES_SHOWN];
  uint32_t nzones = 0;
  for (size_t i = 0; i < n->n_nodes; i++) {
    const Sched__NodeEntry *e = n->nodes[i];
    const char *r = e->node ? e->node->region : "?", *z = e->node ? e->node->zone : "?";
    uint32_t k = 0;
    while (k < nzones && (strcmp(zones[k].region, r) || strcmp(zones[k].zone, z))) k++;
    if (k == nzones) {
      if (nzones == ADM_ZONES_SHOWN) continue;
      memset(&zones[k], 0, sizeof(zones[k]));
      snprintf(zones[k].region, sizeof(zones[k].region), "%s", r);
      snprintf(zones[k].zone, sizeof(zones[k].zone), "%s", z);
      nzones++;
    }
    if (!strcmp(e->state, "alive")) zones[k].alive++;
    else if (!strcmp(e->state, "suspect")) zones[k].suspect++;
    else if (!strcmp(e->state, "dead")) zones[k].dead++;
    else zones[k].draining++;
  }
  if (json) {
    printf(",\"members\":[");
    for (uint32_t k = 0; k < nzones; k++) {
      printf("%s{\"region\":", k ? "," : "");
      adm_json_str(zones[k].region);
      printf(",\"zone\":");
      adm_json_str(zones[k].zone);
      printf(",\"alive\":%u,\"suspect\":%u,\"dead\":%u,\"draining\":%u}", zones[k].alive,
             zones[k].suspect, zones[k].dead, zones[k].draining);
    }
    printf("]");
    return;
  }
  printf("members     %-10s %-10s %6s %8s %5s %9s\n", "REGION", "ZONE", "ALIVE", "SUSPECT", "DEAD",
         "DRAINING");
  for (uint32_t k = 0; k < nzones; k++)
    printf("            %-10s %-10s %6u %8u %5u %9u\n", zones[k].region, zones[k].zone,
           zones[k].alive, zones[k].suspect, zones[k].dead, zones[k].draining);
}

static void print_progress(const Sched__VersionProgress *p, bool json, bool first) {
  double pct = p->bytes_total ? 100.0 * (double)p->bytes_done / (double)p->bytes_total : 100.0;
  if (json) {
    printf("%s{\"name\":", first ? "" : ",");
    adm_json_str(p->name);
    printf(",\"version\":%" PRIu64 ",\"size_bytes\":%" PRIu64 ",\"chunk_count\":%u"
           ",\"complete\":%u,\"in_progress\":%u,\"failed\":%u,\"bytes_done\":%" PRIu64
           ",\"bytes_total\":%" PRIu64 ",\"throughput_bytes_per_s\":%" PRIu64
           ",\"eta_ms\":%" PRIu64 ",\"elapsed_ms\":%" PRIu64 ",\"publishing\":%s"
           ",\"bad_chunks_reported\":%u,\"bad_chunks_repaired\":%u,\"manifests_rejected\":%u"
           ",\"zones\":[",
           p->version, p->size_bytes, p->chunk_count, p->complete, p->in_progress, p->failed,
           p->bytes_done, p->bytes_total, p->throughput_bytes_per_s, p->eta_ms, p->elapsed_ms,
           p->pending ? "true" : "false", p->bad_chunks_reported, p->bad_chunks_repaired,
           p->manifests_rejected);
    for (size_t z = 0; z < p->n_zones; z++) {
      const Sched__ZoneProgress *zp = p->zones[z];
      printf("%s{\"region\":", z ? "," : "");
      adm_json_str(zp->region);
      printf(",\"zone\":");
      adm_json_str(zp->zone);
      printf(",\"complete\":%u,\"in_progress\":%u,\"failed\":%u}", zp->complete,
             zp->in_progress, zp->failed);
    }
    printf("]}");
    return;
  }
  printf("%s v%" PRIu64 ": %u complete, %u in progress, %u failed; %.1f%% of %" PRIu64
         " bytes; %.1f MiB/s",
         p->name, p->version, p->complete, p->in_progress, p->failed, pct, p->bytes_total,
         (double)p->throughput_bytes_per_s / 1048576.0);
  if (p->eta_ms) printf(", ETA %.1f s", (double)p->eta_ms / 1000.0);
  printf(" (%.1f s since registered%s)\n", (double)p->elapsed_ms / 1000.0,
         p->pending ? "; publish still under way: nodes fetch, none makes it current yet" : "");
  if (p->bad_chunks_reported || p->bad_chunks_repaired || p->manifests_rejected)
    printf("  scrub: bad chunks %u repaired / %u reported; manifests rejected %u\n",
           p->bad_chunks_repaired, p->bad_chunks_reported, p->manifests_rejected);
  printf("  %-10s %-10s %9s %12s %7s\n", "REGION", "ZONE", "COMPLETE", "IN_PROGRESS", "FAILED");
  for (size_t z = 0; z < p->n_zones; z++) {
    const Sched__ZoneProgress *zp = p->zones[z];
    printf("  %-10s %-10s %9u %12u %7u\n", zp->region, zp->zone, zp->complete, zp->in_progress,
           zp->failed);
  }
}

/* One frame: the scheduler's Status (per-version progress, computed by the
 * scheduler from node reports), ListVersions and ListNodes. */
static int status_once(adm_client_t *cl, const char *name, bool json, bool clear) {
  Sched__StatusRequest sreq = SCHED__STATUS_REQUEST__INIT;
  Sched__ListNodesRequest nreq = SCHED__LIST_NODES_REQUEST__INIT;
  Sched__ListVersionsRequest vreq = SCHED__LIST_VERSIONS_REQUEST__INIT;
  sreq.name = (char *)(name ? name : "");
  nreq.region = (char *)"";
  vreq.name = (char *)(name ? name : "");
  ProtobufCMessage *sm = NULL, *nm = NULL, *vm = NULL;
  rpc_code_t code = sched_call(cl, 6, &sreq.base, &sm);
  if (code == RPC_OK) code = sched_call(cl, 5, &nreq.base, &nm);
  if (code == RPC_OK) code = sched_call(cl, 4, &vreq.base, &vm);
  if (code != RPC_OK) {
    if (sm) protobuf_c_message_free_unpacked(sm, NULL);
    if (nm) protobuf_c_message_free_unpacked(nm, NULL);
    return adm_exit_for_code(code);
  }
  const Sched__StatusReply *s = (const Sched__StatusReply *)sm;
  const Sched__ListNodesReply *n = (const Sched__ListNodesReply *)nm;
  const Sched__ListVersionsReply *v = (const Sched__ListVersionsReply *)vm;

  if (json) {
    printf("{\"nodes_alive\":%u,\"nodes_suspect\":%u,\"nodes_dead\":%u,\"nodes_draining\":%u"
           ",\"newest_version\":%" PRIu64 ",\"leader\":%s,\"epoch\":%" PRIu64 ",\"progress\":[",
           s->nodes_alive, s->nodes_suspect, s->nodes_dead, s->nodes_draining, s->newest_version,
           s->leader ? "true" : "false", s->epoch);
    for (size_t i = 0; i < s->n_progress; i++) print_progress(s->progress[i], true, i == 0);
    printf("],\"versions\":[");
    for (size_t i = 0; i < v->n_versions; i++) {
      const Sched__VersionEntry *e = v->versions[i];
      printf("%s{\"name\":", i ? "," : "");
      adm_json_str(e->name);
      printf(",\"version\":%" PRIu64 ",\"size_bytes\":%" PRIu64 ",\"nodes_complete\":%u}",
             e->version, e->size_bytes, e->nodes_complete);
    }
    printf("]");
    print_zone_members(n, true);
    printf("}\n");
  } else {
    if (clear) printf("\033[H\033[J");
    printf("nodes: %u alive, %u suspect, %u dead, %u draining; newest version %" PRIu64 "%s\n",
           s->nodes_alive, s->nodes_suspect, s->nodes_dead, s->nodes_draining, s->newest_version,
           s->leader ? "" : " (this scheduler is not the leader)");
    for (size_t i = 0; i < s->n_progress; i++) print_progress(s->progress[i], false, i == 0);
    if (v->n_versions) {
      printf("versions    %-24s %8s %12s %9s\n", "NAME", "VERSION", "SIZE", "COMPLETE");
      for (size_t i = 0; i < v->n_versions; i++) {
        const Sched__VersionEntry *e = v->versions[i];
        printf("            %-24s %8" PRIu64 " %12" PRIu64 " %9u\n", e->name, e->version,
               e->size_bytes, e->nodes_complete);
      }
    }
    print_zone_members(n, false);
  }
  fflush(stdout);
  protobuf_c_message_free_unpacked(sm, NULL);
  protobuf_c_message_free_unpacked(nm, NULL);
  protobuf_c_message_free_unpacked(vm, NULL);
  return ADM_EXIT_OK;
}

int adm_cmd_status(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {{"watch", no_argument, 0, 'w'},
                                           {"interval", required_argument, 0, 'i'},
                                           {"count", required_argument, 0, 'c'},
                                           {"json", no_argument, 0, 'j'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  bool watch = false;
  uint32_t interval = ADM_WATCH_INTERVAL_MS, count = 0;
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'w': watch = true; break;
      case 'i': interval = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'c': count = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'j': cfg->json = true; break;
      case 'h':
        printf("usage: fdadmin [GLOBAL OPTIONS] status [NAME] [--watch [--interval MS] "
               "[--count N]] [--json]\n"
               "  Per file's newest version: nodes complete, in progress and failed, overall\n"
               "  and per region and zone, throughput and ETA; every registered version;\n"
               "  members per region and zone by state.\n"
               "  --watch redraws every --interval ms (default %u) until Ctrl-C or --count\n"
               "  frames; with --json it prints one JSON object per line.\n"
               "Exit: 0 ok, 1 failed, 2 usage, 3 scheduler unreachable/refused.\n",
               ADM_WATCH_INTERVAL_MS);
        return ADM_EXIT_OK;
      default: return ADM_EXIT_USAGE;
    }
  }
  if (argc - optind > 1 || interval < 100) {
    fprintf(stderr, "fdadmin status: at most one NAME; --interval >= 100\n");
    return ADM_EXIT_USAGE;
  }
  const char *name = optind < argc ? argv[optind] : NULL;
  int ex;
  adm_client_t *cl = adm_connect_scheduler(cfg, false, &ex);
  if (!cl) return ex;
  if (!watch) {
    ex = status_once(cl, name, cfg->json, false);
  } else {
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    for (uint32_t frame = 0; !stop_watch && (!count || frame < count); frame++) {
      ex = status_once(cl, name, cfg->json, !cfg->json && isatty(STDOUT_FILENO));
      if (ex != ADM_EXIT_OK) break;
      uint64_t until = fd_now_ms() + interval;
      while (!stop_watch && fd_now_ms() < until)
        if (!adm_client_pump(cl, 20)) break;
    }
  }
  adm_client_destroy(cl);
  return ex;
}

/* ---- versions, nodes ---- */

int adm_cmd_versions(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {
      {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 'j') cfg->json = true;
    else if (c == 'h') {
      printf("usage: fdadmin [GLOBAL OPTIONS] versions [NAME] [--json]\n"
             "  Versions the scheduler has registered, with the nodes holding each whole.\n");
      return ADM_EXIT_OK;
    } else return ADM_EXIT_USAGE;
  }
  if (argc - optind > 1) return ADM_EXIT_USAGE;
  int ex;
  adm_client_t *cl = adm_connect_scheduler(cfg, false, &ex);
  if (!cl) return ex;
  Sched__ListVersionsRequest req = SCHED__LIST_VERSIONS_REQUEST__INIT;
  req.name = optind < argc ? argv[optind] : (char *)"";
  ProtobufCMessage *m = NULL;
  rpc_code_t code = sched_call(cl, 4, &req.base, &m);
  if (code == RPC_OK) {
    const Sched__ListVersionsReply *r = (const Sched__ListVersionsReply *)m;
    if (cfg->json) printf("[");
    else printf("%-24s %8s %12s %12s %9s\n", "NAME", "VERSION", "SIZE", "CREATED", "COMPLETE");
    for (size_t i = 0; i < r->n_versions; i++) {
      const Sched__VersionEntry *e = r->versions[i];
      if (cfg->json) {
        printf("%s{\"name\":", i ? "," : "");
        adm_json_str(e->name);
        printf(",\"version\":%" PRIu64 ",\"size_bytes\":%" PRIu64 ",\"created_s\":%" PRIu64
               ",\"nodes_complete\":%u}",
               e->version, e->size_bytes, e->created_s, e->nodes_complete);
      } else {
        printf("%-24s %8" PRIu64 " %12" PRIu64 " %12" PRIu64 " %9u\n", e->name, e->version,
               e->size_bytes, e->created_s, e->nodes_complete);
      }
    }
    if (cfg->json) printf("]\n");
    protobuf_c_message_free_unpacked(m, NULL);
  }
  adm_client_destroy(cl);
  return adm_exit_for_code(code);
}

int adm_cmd_nodes(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {{"region", required_argument, 0, 'r'},
                                           {"json", no_argument, 0, 'j'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  const char *region = "";
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 'r') region = optarg;
    else if (c == 'j') cfg->json = true;
    else if (c == 'h') {
      printf("usage: fdadmin [GLOBAL OPTIONS] nodes [--region R] [--json]\n"
             "  Every node the scheduler knows: id, region, zone, address, state, last seen.\n");
      return ADM_EXIT_OK;
    } else return ADM_EXIT_USAGE;
  }
  if (optind != argc) return ADM_EXIT_USAGE;
  int ex;
  adm_client_t *cl = adm_connect_scheduler(cfg, false, &ex);
  if (!cl) return ex;
  Sched__ListNodesRequest req = SCHED__LIST_NODES_REQUEST__INIT;
  req.region = (char *)region;
  ProtobufCMessage *m = NULL;
  rpc_code_t code = sched_call(cl, 5, &req.base, &m);
  if (code == RPC_OK) {
    const Sched__ListNodesReply *r = (const Sched__ListNodesReply *)m;
    if (cfg->json) printf("[");
    else
      printf("%-20s %-10s %-10s %-22s %-9s %10s\n", "NODE", "REGION", "ZONE", "ADDRESS", "STATE",
             "SEEN_MS");
    for (size_t i = 0; i < r->n_nodes; i++) {
      const Sched__NodeEntry *e = r->nodes[i];
      const Sched__NodeInfo *ni = e->node;
      char addr[ADM_ADDR_LEN_MAX];
      snprintf(addr, sizeof(addr), "%s:%u", ni ? ni->addr : "?", ni ? ni->port : 0);
      if (cfg->json) {
        printf("%s{\"node_id\":", i ? "," : "");
        adm_json_str(ni ? ni->node_id : "");
        printf(",\"region\":");
        adm_json_str(ni ? ni->region : "");
        printf(",\"zone\":");
        adm_json_str(ni ? ni->zone : "");
        printf(",\"address\":");
        adm_json_str(addr);
        printf(",\"state\":");
        adm_json_str(e->state);
        printf(",\"last_seen_ms\":%" PRIu64 ",\"dependents\":%" PRIu32 "}", e->last_seen_ms,
               e->dependents);
      } else {
        printf("%-20s %-10s %-10s %-22s %-9s %10" PRIu64 "\n", ni ? ni->node_id : "?",
               ni ? ni->region : "?", ni ? ni->zone : "?", addr, e->state, e->last_seen_ms);
      }
    }
    if (cfg->json) printf("]\n");
    protobuf_c_message_free_unpacked(m, NULL);
  }
  adm_client_destroy(cl);
  return adm_exit_for_code(code);
}

/* ---- gc (drain and undrain: adm_drain.c) ---- */

int adm_cmd_gc(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {
      {"keep", required_argument, 0, 'k'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  uint32_t keep = FD_VERSIONS_KEPT_DEFAULT;
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 'k') keep = (uint32_t)strtoul(optarg, NULL, 10);
    else if (c == 'h') {
      printf("usage: fdadmin [GLOBAL OPTIONS] gc NAME [--keep K]\n"
             "  Asks every origin to keep the newest K (default %u) complete versions of\n"
             "  NAME and remove older ones. Needs the admin key.\n",
             FD_VERSIONS_KEPT_DEFAULT);
      return ADM_EXIT_OK;
    } else return ADM_EXIT_USAGE;
  }
  if (optind + 1 != argc || keep == 0) {
    fprintf(stderr, "usage: fdadmin gc NAME [--keep K>=1]\n");
    return ADM_EXIT_USAGE;
  }
  int worst = ADM_EXIT_OK;
  char addr[ADM_ADDR_LEN_MAX];
  for (unsigned i = 0; i < ADM_ORIGINS_MAX && adm_list_item(cfg->origins, i, addr, sizeof(addr)) == 0;
       i++) {
    int ex;
    adm_client_t *cl = adm_connect_origin(cfg, i, true, &ex);
    if (!cl) {
      if (ex > worst) worst = ex;
      continue;
    }
    Origin__GcRequest req = ORIGIN__GC_REQUEST__INIT;
    req.name = argv[optind];
    req.keep = keep;
    ProtobufCMessage *m = NULL;
    char msg[256];
    rpc_code_t code = adm_call(cl, RPC_SVC_ORIGIN, &origin__origin__descriptor, 2, &req.base,
                               0, &m, msg, sizeof(msg));
    if (code == RPC_OK) {
      printf("gc %s on %s: %u removed\n", argv[optind], addr, ((const Origin__GcReply *)m)->removed);
      protobuf_c_message_free_unpacked(m, NULL);
    } else {
      fprintf(stderr, "fdadmin: gc on %s: %s %s\n", addr, rpc_code_name(code), msg);
      ex = adm_exit_for_code(code);
      if (ex > worst) worst = ex;
    }
    adm_client_destroy(cl);
  }
  if (!cfg->origins[0]) {
    fprintf(stderr, "fdadmin gc: no origins (--origins HOST:PORT,...)\n");
    return ADM_EXIT_USAGE;
  }
  return worst;
}
