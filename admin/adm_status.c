/*
 * adm_status.c — the read commands (status, versions, nodes) and the two
 * small admin write gc (drain and undrain are in adm_drain.c).
 *
 * status: the scheduler's Status — per file's newest version: nodes complete,
 * in progress and failed, overall and per region and zone, bytes held,
 * throughput and ETA, all computed by fdsched from node reports — plus
 * ListVersions (every registered version) and ListNodes (members per region
 * and zone by state). fdadmin only formats them. Then the origin group:
 * each origin given (--origins) and its Origin.Head answer — the head it
 * names, the epoch, the chain, its ZooKeeper session, whether it leads — or
 * why it could not be asked.
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

/* Members per region and zone by state: printed, or (into, not NULL) added
 * to a JSON object as "members". */
static void print_zone_members(const Sched__ListNodesReply *n, json_object *into) {
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
  if (into) {
    json_object *members = adm_json_array();
    for (uint32_t k = 0; k < nzones; k++) {
      json_object *z = adm_json_object();
      adm_json_add_str(z, "region", zones[k].region);
      adm_json_add_str(z, "zone", zones[k].zone);
      adm_json_add_u64(z, "alive", zones[k].alive);
      adm_json_add_u64(z, "suspect", zones[k].suspect);
      adm_json_add_u64(z, "dead", zones[k].dead);
      adm_json_add_u64(z, "draining", zones[k].draining);
      adm_json_push(members, z);
    }
    adm_json_add(into, "members", members);
    return;
  }
  printf("members     %-10s %-10s %6s %8s %5s %9s\n", "REGION", "ZONE", "ALIVE", "SUSPECT", "DEAD",
         "DRAINING");
  for (uint32_t k = 0; k < nzones; k++)
    printf("            %-10s %-10s %6u %8u %5u %9u\n", zones[k].region, zones[k].zone,
           zones[k].alive, zones[k].suspect, zones[k].dead, zones[k].draining);
}

/* One version's progress: printed, or (into, not NULL) pushed to a JSON array. */
static void print_progress(const Sched__VersionProgress *p, json_object *into) {
  double pct = p->bytes_total ? 100.0 * (double)p->bytes_done / (double)p->bytes_total : 100.0;
  if (into) {
    json_object *o = adm_json_object();
    adm_json_add_str(o, "name", p->name);
    adm_json_add_u64(o, "version", p->version);
    adm_json_add_u64(o, "size_bytes", p->size_bytes);
    adm_json_add_u64(o, "chunk_count", p->chunk_count);
    adm_json_add_u64(o, "complete", p->complete);
    adm_json_add_u64(o, "in_progress", p->in_progress);
    adm_json_add_u64(o, "failed", p->failed);
    adm_json_add_u64(o, "bytes_done", p->bytes_done);
    adm_json_add_u64(o, "bytes_total", p->bytes_total);
    adm_json_add_u64(o, "throughput_bytes_per_s", p->throughput_bytes_per_s);
    adm_json_add_u64(o, "eta_ms", p->eta_ms);
    adm_json_add_u64(o, "elapsed_ms", p->elapsed_ms);
    adm_json_add_bool(o, "publishing", p->pending);
    adm_json_add_u64(o, "bad_chunks_reported", p->bad_chunks_reported);
    adm_json_add_u64(o, "bad_chunks_repaired", p->bad_chunks_repaired);
    adm_json_add_u64(o, "manifests_rejected", p->manifests_rejected);
    json_object *zones = adm_json_array();
    for (size_t z = 0; z < p->n_zones; z++) {
      const Sched__ZoneProgress *zp = p->zones[z];
      json_object *zo = adm_json_object();
      adm_json_add_str(zo, "region", zp->region);
      adm_json_add_str(zo, "zone", zp->zone);
      adm_json_add_u64(zo, "complete", zp->complete);
      adm_json_add_u64(zo, "in_progress", zp->in_progress);
      adm_json_add_u64(zo, "failed", zp->failed);
      adm_json_push(zones, zo);
    }
    adm_json_add(o, "zones", zones);
    adm_json_push(into, o);
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

/* ---- send stalls (the nodes' heartbeats, kept by fdsched) ---- */

/* Keys as the HeartbeatRequest fields (blocked_ms: a child's credit). */
static json_object *stalls_json(const Sched__SendStalls *s) {
  static const Sched__SendStalls zero = SCHED__SEND_STALLS__INIT;
  if (!s) s = &zero;
  json_object *o = adm_json_object();
  adm_json_add_u64(o, "blocked_ms", s->blocked_ms);
  adm_json_add_u64(o, "blocked_pool_ms", s->blocked_pool_ms);
  adm_json_add_u64(o, "blocked_socket_ms", s->blocked_socket_ms);
  adm_json_add_u64(o, "blocked_upload_cap_ms", s->blocked_upload_cap_ms);
  adm_json_add_u64(o, "credit_write_ms", s->credit_write_ms);
  adm_json_add_u64(o, "credit_sync_ms", s->credit_sync_ms);
  return o;
}

static void stalls_print(const char *lead, const Sched__SendStalls *s) {
  static const Sched__SendStalls zero = SCHED__SEND_STALLS__INIT;
  if (!s) s = &zero;
  printf("%ssends blocked (ms): peer_window %" PRIu64 ", socket %" PRIu64 ", pool %" PRIu64
         ", upload_cap %" PRIu64 "; credit held as receiver: write %" PRIu64 ", sync %" PRIu64
         "\n",
         lead, s->blocked_ms, s->blocked_socket_ms, s->blocked_pool_ms, s->blocked_upload_cap_ms,
         s->credit_write_ms, s->credit_sync_ms);
}

/* ---- the origin group (issue 22) ---- */

/* Every origin given, asked Origin.Head: printed, or (into, not NULL) added
 * to a JSON object as "origins". An origin that cannot be asked is shown so,
 * not an error of the command. */
static void print_origins(const adm_config_t *cfg, json_object *into) {
  json_object *list = into ? adm_json_array() : NULL;
  char addr[ADM_ADDR_LEN_MAX];
  bool admin = cfg->admin_key_path[0] != '\0';
  if (!into)
    printf("origins     %-22s %-12s %-5s %-28s %6s %-11s %s\n", "ADDRESS", "ID", "LEADS", "HEAD",
           "EPOCH", "ZOOKEEPER", "CHAIN");
  for (unsigned i = 0;
       i < ADM_ORIGINS_MAX && adm_list_item(cfg->origins, i, addr, sizeof(addr)) == 0; i++) {
    int ex = ADM_EXIT_OK;
    char msg[256] = "";
    Origin__HeadReply *r = NULL;
    int err = 0; /* an unreachable origin is part of the status, not an error */
    adm_client_t *cl = adm_connect_addr(cfg, addr, admin, &err, &ex);
    rpc_code_t code = RPC_UNAVAILABLE;
    if (cl) code = adm_origin_head(cl, &r, msg, sizeof(msg));
    else snprintf(msg, sizeof(msg), "unreachable: %s", fd_strerror(err));
    if (cl && code != RPC_OK && !msg[0]) snprintf(msg, sizeof(msg), "%s", rpc_code_name(code));
    char chain[ADM_ORIGINS_MAX * (FD_NAME_LEN_MAX + 1)] = "";
    for (size_t k = 0; r && k < r->n_chain; k++) {
      size_t used = strlen(chain);
      snprintf(chain + used, sizeof(chain) - used, "%s%s", k ? "," : "", r->chain[k]);
    }
    if (into) {
      json_object *o = adm_json_object();
      adm_json_add_str(o, "address", addr);
      adm_json_add_bool(o, "reachable", r != NULL);
      if (r) {
        adm_json_add_str(o, "id", r->id);
        adm_json_add_str(o, "head", r->head);
        adm_json_add_u64(o, "epoch", r->epoch);
        json_object *ids = adm_json_array();
        for (size_t k = 0; k < r->n_chain; k++)
          adm_json_push(ids, json_object_new_string(r->chain[k]));
        adm_json_add(o, "chain", ids);
        adm_json_add_str(o, "zookeeper", r->zookeeper);
        adm_json_add_bool(o, "leads", r->leads);
      } else {
        adm_json_add_str(o, "error", msg);
      }
      adm_json_push(list, o);
    } else if (r) {
      printf("            %-22s %-12s %-5s %-28s %6" PRIu64 " %-11s %s\n", addr, r->id,
             r->leads ? "yes" : "no", r->head[0] ? r->head : "(none known)", r->epoch,
             r->zookeeper[0] ? r->zookeeper : "-", chain);
    } else {
      printf("            %-22s %s\n", addr, msg);
    }
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    adm_client_destroy(cl);
  }
  if (into) adm_json_add(into, "origins", list);
}

/* One frame: the scheduler's Status (per-version progress, computed by the
 * scheduler from node reports), ListVersions and ListNodes; then the origin
 * group, when origins are given. */
static int status_once(const adm_config_t *cfg, adm_client_t *cl, const char *name, bool json,
                       bool clear) {
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

  int ex = ADM_EXIT_OK;
  if (json) {
    json_object *o = adm_json_object();
    adm_json_add_u64(o, "nodes_alive", s->nodes_alive);
    adm_json_add_u64(o, "nodes_suspect", s->nodes_suspect);
    adm_json_add_u64(o, "nodes_dead", s->nodes_dead);
    adm_json_add_u64(o, "nodes_draining", s->nodes_draining);
    adm_json_add_u64(o, "newest_version", s->newest_version);
    adm_json_add_bool(o, "leader", s->leader);
    adm_json_add_u64(o, "epoch", s->epoch);
    adm_json_add_str(o, "zookeeper", s->zookeeper);
    adm_json_add_str(o, "leader_addr", s->leader_addr);
    adm_json_add_u64(o, "leader_seq", s->leader_seq);
    json_object *standbys = adm_json_array();
    for (size_t i = 0; i < s->n_standbys; i++)
      adm_json_push(standbys, json_object_new_string(s->standbys[i]));
    adm_json_add(o, "standbys", standbys);
    adm_json_add(o, "stalls", stalls_json(s->stalls));
    json_object *progress = adm_json_array();
    for (size_t i = 0; i < s->n_progress; i++) print_progress(s->progress[i], progress);
    adm_json_add(o, "progress", progress);
    json_object *versions = adm_json_array();
    for (size_t i = 0; i < v->n_versions; i++) {
      const Sched__VersionEntry *e = v->versions[i];
      json_object *vo = adm_json_object();
      adm_json_add_str(vo, "name", e->name);
      adm_json_add_u64(vo, "version", e->version);
      adm_json_add_u64(vo, "size_bytes", e->size_bytes);
      adm_json_add_u64(vo, "nodes_complete", e->nodes_complete);
      adm_json_push(versions, vo);
    }
    adm_json_add(o, "versions", versions);
    print_zone_members(n, o);
    if (cfg->origins[0]) print_origins(cfg, o);
    if (adm_json_print(o)) ex = ADM_EXIT_FAILED;
  } else {
    if (clear) printf("\033[H\033[J");
    printf("nodes: %u alive, %u suspect, %u dead, %u draining; newest version %" PRIu64 "%s\n",
           s->nodes_alive, s->nodes_suspect, s->nodes_dead, s->nodes_draining, s->newest_version,
           s->leader ? "" : " (this scheduler is not the leader)");
    if (s->zookeeper && s->zookeeper[0] && strcmp(s->zookeeper, "off") != 0) {
      printf("fdsched: leader %s (election seq %" PRIu64 "), ZooKeeper %s; standbys:",
             s->leader_addr, s->leader_seq, s->zookeeper);
      for (size_t i = 0; i < s->n_standbys; i++) printf(" %s", s->standbys[i]);
      printf("%s\n", s->n_standbys ? "" : " none");
    }
    stalls_print("all live nodes' ", s->stalls);
    for (size_t i = 0; i < s->n_progress; i++) print_progress(s->progress[i], NULL);
    if (v->n_versions) {
      printf("versions    %-24s %8s %12s %9s\n", "NAME", "VERSION", "SIZE", "COMPLETE");
      for (size_t i = 0; i < v->n_versions; i++) {
        const Sched__VersionEntry *e = v->versions[i];
        printf("            %-24s %8" PRIu64 " %12" PRIu64 " %9u\n", e->name, e->version,
               e->size_bytes, e->nodes_complete);
      }
    }
    print_zone_members(n, NULL);
    if (cfg->origins[0]) print_origins(cfg, NULL);
  }
  fflush(stdout);
  protobuf_c_message_free_unpacked(sm, NULL);
  protobuf_c_message_free_unpacked(nm, NULL);
  protobuf_c_message_free_unpacked(vm, NULL);
  return ex;
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
               "  members per region and zone by state; with --origins, each origin's\n"
               "  answer to who heads the origin group (head, epoch, chain, ZooKeeper).\n"
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
    ex = status_once(cfg, cl, name, cfg->json, false);
  } else {
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    for (uint32_t frame = 0; !stop_watch && (!count || frame < count); frame++) {
      ex = status_once(cfg, cl, name, cfg->json, !cfg->json && isatty(STDOUT_FILENO));
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
    json_object *list = cfg->json ? adm_json_array() : NULL;
    if (!cfg->json)
      printf("%-24s %8s %12s %12s %9s\n", "NAME", "VERSION", "SIZE", "CREATED", "COMPLETE");
    for (size_t i = 0; i < r->n_versions; i++) {
      const Sched__VersionEntry *e = r->versions[i];
      if (cfg->json) {
        json_object *o = adm_json_object();
        adm_json_add_str(o, "name", e->name);
        adm_json_add_u64(o, "version", e->version);
        adm_json_add_u64(o, "size_bytes", e->size_bytes);
        adm_json_add_u64(o, "created_s", e->created_s);
        adm_json_add_u64(o, "nodes_complete", e->nodes_complete);
        adm_json_push(list, o);
      } else {
        printf("%-24s %8" PRIu64 " %12" PRIu64 " %12" PRIu64 " %9u\n", e->name, e->version,
               e->size_bytes, e->created_s, e->nodes_complete);
      }
    }
    if (cfg->json && adm_json_print(list)) code = RPC_INTERNAL;
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
             "  Every node the scheduler knows: id, region, zone, address, state, last seen,\n"
             "  and where its sends waited (cumulative ms, its last heartbeat): for a child's\n"
             "  credit (WINDOW), its socket, a pool buffer, its upload cap; and as a receiver\n"
             "  how long its chunks held their senders' credit in write and in fdatasync.\n");
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
    json_object *list = cfg->json ? adm_json_array() : NULL;
    if (!cfg->json)
      printf("%-20s %-10s %-10s %-22s %-9s %10s %10s %10s %8s %10s %10s %10s\n", "NODE", "REGION",
             "ZONE", "ADDRESS", "STATE", "SEEN_MS", "WINDOW_MS", "SOCKET_MS", "POOL_MS",
             "UPCAP_MS", "WRITE_MS", "SYNC_MS");
    Sched__SendStalls sum = SCHED__SEND_STALLS__INIT;
    for (size_t i = 0; i < r->n_nodes; i++) {
      const Sched__NodeEntry *e = r->nodes[i];
      const Sched__NodeInfo *ni = e->node;
      char addr[ADM_ADDR_LEN_MAX];
      snprintf(addr, sizeof(addr), "%s:%u", ni ? ni->addr : "?", ni ? ni->port : 0);
      if (cfg->json) {
        json_object *o = adm_json_object();
        adm_json_add_str(o, "node_id", ni ? ni->node_id : "");
        adm_json_add_str(o, "region", ni ? ni->region : "");
        adm_json_add_str(o, "zone", ni ? ni->zone : "");
        adm_json_add_str(o, "address", addr);
        adm_json_add_str(o, "state", e->state);
        adm_json_add_u64(o, "last_seen_ms", e->last_seen_ms);
        adm_json_add_u64(o, "dependents", e->dependents);
        adm_json_add(o, "stalls", stalls_json(e->stalls));
        json_object *children = adm_json_array();
        for (size_t k = 0; k < e->n_child_stalls; k++) {
          json_object *co = adm_json_object();
          adm_json_add_str(co, "node_id", e->child_stalls[k]->node_id);
          adm_json_add_u64(co, "blocked_ms", e->child_stalls[k]->blocked_ms);
          adm_json_push(children, co);
        }
        adm_json_add(o, "child_stalls", children);
        adm_json_push(list, o);
      } else {
        static const Sched__SendStalls zero = SCHED__SEND_STALLS__INIT;
        const Sched__SendStalls *st = e->stalls ? e->stalls : &zero;
        printf("%-20s %-10s %-10s %-22s %-9s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64
               " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
               ni ? ni->node_id : "?", ni ? ni->region : "?", ni ? ni->zone : "?", addr, e->state,
               e->last_seen_ms, st->blocked_ms, st->blocked_socket_ms, st->blocked_pool_ms,
               st->blocked_upload_cap_ms, st->credit_write_ms, st->credit_sync_ms);
        sum.blocked_ms += st->blocked_ms;
        sum.blocked_socket_ms += st->blocked_socket_ms;
        sum.blocked_pool_ms += st->blocked_pool_ms;
        sum.blocked_upload_cap_ms += st->blocked_upload_cap_ms;
        sum.credit_write_ms += st->credit_write_ms;
        sum.credit_sync_ms += st->credit_sync_ms;
      }
    }
    if (!cfg->json) stalls_print("total: ", &sum);
    if (cfg->json && adm_json_print(list)) code = RPC_INTERNAL;
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
