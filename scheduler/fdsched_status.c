/*
 * fdsched_status.c — the read side of the Scheduler service: ListVersions,
 * ListNodes and Status with per-version progress for `fdadmin status`.
 *
 * Progress of a file's newest version counts every registered node that is
 * not an origin and has not left: complete when it reported holding every
 * chunk, failed when it is dead without holding them all, in progress
 * otherwise (draining nodes count only once they report chunks of it).
 * Bytes are chunk bytes the nodes reported held (reused chunks included);
 * throughput is those bytes over the time since the version was registered
 * here (or since this scheduler started, after a restart), and the ETA
 * extrapolates it to every counted node holding the whole version.
 *
 * Replies are built in buffers sized at start-up; nothing is allocated per
 * call. Reads only: no handler here changes state.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fd_time.h"
#include "fdsched_int.h"
#include "storage.h"

static void fill_node_info(fdsched_t *d, uint32_t slot, Sched__NodeInfo *ni, char *host) {
  const sch_members_t *m = sch_db_members(d->db);
  const sch_node_t *n = sch_members_node(m, slot);
  sched__node_info__init(ni);
  ni->node_id = (char *)n->id;
  ni->region = (char *)sch_members_region_name(m, n->region);
  ni->zone = (char *)sch_members_zone_name(m, n->zone);
  fdsched_split_addr(n->address, host, &ni->port);
  ni->addr = host;
  ni->nic_bps = n->nic_bps;
  ni->upload_bps_max = n->upload_bps_max;
  ni->download_bps_max = n->download_bps_max;
  ni->capacity_bytes = n->free_disk_bytes;
  ni->origin = n->origin;
}

static void stalls_to_wire(const sch_node_stalls_t *s, Sched__SendStalls *w) {
  sched__send_stalls__init(w);
  w->blocked_ms = s->blocked_ms;
  w->blocked_pool_ms = s->blocked_pool_ms;
  w->blocked_socket_ms = s->blocked_socket_ms;
  w->blocked_upload_cap_ms = s->blocked_upload_cap_ms;
  w->credit_write_ms = s->credit_write_ms;
  w->credit_sync_ms = s->credit_sync_ms;
}

/* Node entry k of a ListNodes reply: the stalls of its last heartbeat. */
static void fill_stalls(fdsched_t *d, const sch_members_t *m, uint32_t slot, uint32_t k,
                        Sched__NodeEntry *e) {
  const sch_node_stalls_t *s = sch_members_stalls(m, slot);
  stalls_to_wire(s, &d->node_stalls[k]);
  e->stalls = &d->node_stalls[k];
  Sched__ChildStall *c = &d->child_stall[(size_t)k * SCH_CHILD_STALLS_MAX];
  Sched__ChildStall **cp = &d->child_stall_ptr[(size_t)k * SCH_CHILD_STALLS_MAX];
  for (uint32_t i = 0; i < s->n_child; i++) {
    sched__child_stall__init(&c[i]);
    c[i].node_id = (char *)sch_members_node(m, s->child[i].slot)->id;
    c[i].blocked_ms = s->child[i].blocked_ms;
    cp[i] = &c[i];
  }
  e->n_child_stalls = s->n_child;
  e->child_stalls = s->n_child ? cp : NULL;
}

static int h_list_nodes(rpc_call_t *call, const Sched__ListNodesRequest *req, void *ctx) {
  fdsched_t *d = ctx;
  if (!fdsched_ha_leading(d)) return fdsched_ha_refuse(d, call);
  const sch_members_t *m = sch_db_members(d->db);
  uint64_t now = fd_now_ms();
  Sched__ListNodesReply rep = SCHED__LIST_NODES_REPLY__INIT;
  uint32_t k = 0;
  for (uint32_t slot = 0; slot < sch_members_count(m); slot++) {
    const sch_node_t *n = sch_members_node(m, slot);
    if (req->region && req->region[0] &&
        strcmp(req->region, sch_members_region_name(m, n->region)) != 0)
      continue;
    Sched__NodeEntry *e = &d->node_entry[k];
    sched__node_entry__init(e);
    fill_node_info(d, slot, &d->node_info[k], d->node_host[k]);
    e->node = &d->node_info[k];
    e->state = (char *)sch_node_state_name(n->state);
    e->last_seen_ms = now > n->last_heartbeat_ms ? now - n->last_heartbeat_ms : 0;
    e->dependents = sch_sched_dependents(d->sched, slot);
    fill_stalls(d, m, slot, k, e);
    d->node_entry_ptr[k++] = e;
  }
  rep.n_nodes = k;
  rep.nodes = d->node_entry_ptr;
  int rc = rpc_call_send(call, &rep.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static int h_list_versions(rpc_call_t *call, const Sched__ListVersionsRequest *req, void *ctx) {
  fdsched_t *d = ctx;
  if (!fdsched_ha_leading(d)) return fdsched_ha_refuse(d, call);
  const sch_registry_t *r = sch_db_registry(d->db);
  Sched__ListVersionsReply rep = SCHED__LIST_VERSIONS_REPLY__INIT;
  uint32_t k = 0;
  for (uint32_t i = 0; i < sch_registry_count(r) && k < SCH_VERSIONS_MAX; i++) {
    const sch_version_t *v = sch_registry_at(r, i);
    if (req->name && req->name[0] && strcmp(req->name, v->file) != 0) continue;
    Sched__VersionEntry *e = &d->version_entry[k];
    sched__version_entry__init(e);
    e->name = (char *)v->file;
    e->version = v->version;
    e->size_bytes = v->size_bytes;
    st_manifest_t *man = NULL; /* an admin call: decoding each manifest is fine */
    if (st_manifest_decode(v->manifest, v->manifest_len, &man) == 0) e->created_s = man->created_unix_s;
    st_manifest_free(man);
    e->nodes_complete = sch_registry_holders(r, v->file, v->version, d->scratch, FD_NODES_MAX);
    e->pending = v->pending;
    d->version_entry_ptr[k++] = e;
  }
  rep.n_versions = k;
  rep.versions = d->version_entry_ptr;
  int rc = rpc_call_send(call, &rep.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

/* Fills d->progress[i] for plan i; false when it has no built plan. */
static bool plan_progress(fdsched_t *d, uint32_t i, uint64_t now) {
  const char *file;
  uint64_t version;
  const sch_plan_t *p = sch_sched_plan_at(d->sched, i, &file, &version);
  const sch_registry_t *r = sch_db_registry(d->db);
  const sch_version_t *v = sch_registry_find(r, file, version);
  const fdsched_meta_t *meta = fdsched_meta(d, i);
  if (!v) return false;
  const sch_members_t *m = sch_db_members(d->db);
  uint32_t zones = sch_members_zone_count(m);
  Sched__VersionProgress *vp = &d->progress[i];
  sched__version_progress__init(vp);
  vp->name = (char *)v->file;
  vp->version = v->version;
  vp->size_bytes = v->size_bytes;
  vp->chunk_count = v->chunk_count;
  Sched__ZoneProgress *zp = &d->zone[(size_t)i * SCH_ZONES_MAX];
  Sched__ZoneProgress **zpp = &d->zone_ptr[(size_t)i * SCH_ZONES_MAX];
  for (uint32_t z = 0; z < zones; z++) {
    sched__zone_progress__init(&zp[z]);
    zp[z].region = (char *)sch_members_region_name(m, sch_members_zone_region(m, z));
    zp[z].zone = (char *)sch_members_zone_name(m, z);
    zpp[z] = &zp[z];
  }
  for (uint32_t slot = 0; slot < sch_members_count(m); slot++) {
    const sch_node_t *n = sch_members_node(m, slot);
    if (n->origin || n->state == SCH_NODE_LEFT) continue;
    uint64_t held = sch_registry_held(r, slot, v->file, v->version);
    bool in_plan = p && sch_plan_contains(p, slot);
    Sched__ZoneProgress *z = &zp[n->zone];
    if (held >= v->chunk_count) {
      vp->complete++;
      z->complete++;
      vp->bytes_done += v->size_bytes;
    } else if (n->state == SCH_NODE_DEAD) {
      vp->failed++;
      z->failed++;
    } else if (in_plan || held > 0) {
      vp->in_progress++;
      z->in_progress++;
      uint64_t b = held * v->chunk_size_bytes;
      vp->bytes_done += b < v->size_bytes ? b : v->size_bytes;
    }
  }
  vp->bytes_total = v->size_bytes * (uint64_t)(vp->complete + vp->in_progress);
  uint64_t since = meta && meta->registered_ms ? meta->registered_ms : d->start_ms;
  vp->elapsed_ms = now > since ? now - since : 0;
  vp->pending = v->pending;
  if (vp->elapsed_ms > 0) vp->throughput_bytes_per_s = vp->bytes_done * 1000 / vp->elapsed_ms;
  if (vp->bytes_done < vp->bytes_total && vp->throughput_bytes_per_s > 0)
    vp->eta_ms = (vp->bytes_total - vp->bytes_done) * 1000 / vp->throughput_bytes_per_s;
  vp->n_zones = zones;
  vp->zones = zpp;
  fdsched_reports_fill(d, vp);
  return true;
}

static int h_status(rpc_call_t *call, const Sched__StatusRequest *req, void *ctx) {
  fdsched_t *d = ctx;
  if (!fdsched_ha_leading(d)) return fdsched_ha_refuse(d, call);
  uint32_t census[SCH_NODE_LEFT + 1];
  sch_members_census(sch_db_members(d->db), census);
  Sched__StatusReply rep = SCHED__STATUS_REPLY__INIT;
  rep.nodes_alive = census[SCH_NODE_ALIVE];
  rep.nodes_suspect = census[SCH_NODE_SUSPECT];
  rep.nodes_dead = census[SCH_NODE_DEAD];
  rep.nodes_draining = census[SCH_NODE_DRAINING];
  fdsched_ha_status(d, &rep);
  rep.epoch = d->epoch;
  const sch_registry_t *r = sch_db_registry(d->db);
  for (uint32_t i = 0; i < sch_registry_count(r); i++) {
    const sch_version_t *v = sch_registry_at(r, i);
    if ((!req->name || !req->name[0] || strcmp(req->name, v->file) == 0) &&
        v->version > rep.newest_version)
      rep.newest_version = v->version;
  }
  uint64_t now = fd_now_ms();
  uint32_t k = 0;
  for (uint32_t i = 0; i < sch_sched_plan_count(d->sched); i++) {
    const char *file;
    sch_sched_plan_at(d->sched, i, &file, NULL);
    if (req->name && req->name[0] && strcmp(req->name, file) != 0) continue;
    if (plan_progress(d, i, now)) d->progress_ptr[k++] = &d->progress[i];
  }
  rep.n_progress = k;
  rep.progress = d->progress_ptr;
  /* Every node's stalls summed, but for those dead or gone. */
  const sch_members_t *m = sch_db_members(d->db);
  sch_node_stalls_t sum = {0};
  for (uint32_t slot = 0; slot < sch_members_count(m); slot++) {
    sch_node_state_t st = sch_members_node(m, slot)->state;
    if (st == SCH_NODE_DEAD || st == SCH_NODE_LEFT) continue;
    const sch_node_stalls_t *s = sch_members_stalls(m, slot);
    sum.blocked_ms += s->blocked_ms;
    sum.blocked_pool_ms += s->blocked_pool_ms;
    sum.blocked_socket_ms += s->blocked_socket_ms;
    sum.blocked_upload_cap_ms += s->blocked_upload_cap_ms;
    sum.credit_write_ms += s->credit_write_ms;
    sum.credit_sync_ms += s->credit_sync_ms;
  }
  Sched__SendStalls total;
  stalls_to_wire(&sum, &total);
  rep.stalls = &total;
  int rc = rpc_call_send(call, &rep.base);
  return rc ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

int fdsched_serve_status(fdsched_t *d) {
  int rc = rpc_serve_sched_list_versions(d->engine, h_list_versions, d);
  if (rc == 0) rc = rpc_serve_sched_list_nodes(d->engine, h_list_nodes, d);
  if (rc == 0) rc = rpc_serve_sched_status(d->engine, h_status, d);
  return rc;
}
