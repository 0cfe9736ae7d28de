/* fdsched_metrics.c — fdsched's /metrics: the loop publishes a snapshot of
 * its counters and of the membership census each tick; the HTTP thread
 * (common/fd_metrics.h) renders the snapshot and never touches the sch_
 * tables, which stay single-threaded. */
#include <errno.h>

#include "fd_error.h"
#include "fd_log.h"
#include "fd_metrics.h"
#include "fdsched_int.h"

void fdsched_metrics_publish(fdsched_t *d) {
  fdsched_metrics_t *m = &d->metrics;
  fd_counter_set(&m->registers, d->n.registers);
  fd_counter_set(&m->heartbeats, d->n.heartbeats);
  fd_counter_set(&m->heartbeat_unknown, d->n.heartbeat_unknown);
  fd_counter_set(&m->watches, d->n.watches);
  fd_counter_set(&m->pushes, d->n.pushes);
  fd_counter_set(&m->pushes_deferred, d->n.pushes_deferred);
  fd_counter_set(&m->versions_registered, d->n.versions_registered);
  fd_counter_set(&m->versions_rejected, d->n.versions_rejected);
  fd_counter_set(&m->deaths, d->n.deaths);
  fd_counter_set(&m->stream_deaths, d->n.stream_deaths);
  fd_counter_set(&m->drains, d->n.drains);
  fd_counter_set(&m->bad_chunks_reported, d->n.bad_chunks_reported);
  fd_counter_set(&m->bad_chunks_repaired, d->n.bad_chunks_repaired);
  fd_counter_set(&m->manifests_rejected, d->n.manifests_rejected);
  if (!d->db || !d->sched) return;
  uint32_t census[SCH_NODE_LEFT + 1];
  sch_members_census(sch_db_members(d->db), census);
  for (uint32_t i = 0; i <= SCH_NODE_LEFT; i++)
    fd_counter_set(&m->census[i], census[i]);
  uint32_t plans = sch_sched_plan_count(d->sched);
  uint64_t nodes = 0, unplaced = 0;
  for (uint32_t i = 0; i < plans; i++) {
    const char *file;
    uint64_t version;
    const sch_plan_t *p = sch_sched_plan_at(d->sched, i, &file, &version);
    if (!p) continue;
    sch_plan_stats_t st;
    sch_plan_stats(p, &st);
    nodes += st.nodes;
    unplaced += st.unplaced;
  }
  fd_counter_set(&m->plans, plans);
  fd_counter_set(&m->plan_nodes, nodes);
  fd_counter_set(&m->plan_unplaced, unplaced);
  fd_counter_set(&m->versions, sch_registry_count(sch_db_registry(d->db)));
  uint64_t repairs, lost;
  sch_sched_repairs(d->sched, &repairs, &lost);
  fd_counter_set(&m->plan_repairs, repairs);
  fd_counter_set(&m->orphans_lost, lost);
  sch_sched_strag_stats_t sg;
  sch_sched_stragglers(d->sched, &sg);
  fd_counter_set(&m->strag_demoted, sg.demoted);
  fd_counter_set(&m->strag_recovered, sg.recovered);
  fd_counter_set(&m->strag_moved, sg.children_moved);
  fd_counter_set(&m->strag_kept, sg.kept);
  fd_counter_set(&m->strag_slow, sg.slow_now);
}

static void counter(fd_mw_t *w, const char *name, const char *help, const fd_counter_t *c) {
  fd_mw_family(w, name, FD_METRIC_COUNTER, help);
  fd_mw_u64(w, name, NULL, 0, fd_counter_get(c));
}

static void gauge(fd_mw_t *w, const char *name, const char *help, const fd_counter_t *c) {
  fd_mw_family(w, name, FD_METRIC_GAUGE, help);
  fd_mw_u64(w, name, NULL, 0, fd_counter_get(c));
}

/* On the HTTP thread: reads the snapshot only. */
static void render(void *arg, fd_mw_t *w) {
  const fdsched_metrics_t *m = arg;
  fd_mw_family(w, "fdist_sched_nodes", FD_METRIC_GAUGE,
               "Registered nodes by membership state (origins included).");
  for (uint32_t i = 0; i <= SCH_NODE_LEFT; i++) {
    fd_label_t l[] = {{"state", sch_node_state_name((sch_node_state_t)i)}};
    fd_mw_u64(w, "fdist_sched_nodes", l, 1, fd_counter_get(&m->census[i]));
  }
  counter(w, "fdist_sched_registers_total", "RegisterNode calls answered.", &m->registers);
  counter(w, "fdist_sched_heartbeats_total", "Heartbeats answered.", &m->heartbeats);
  counter(w, "fdist_sched_heartbeats_unknown_total",
          "Heartbeats from node ids not registered (told to register).", &m->heartbeat_unknown);
  counter(w, "fdist_sched_watches_total", "WatchOrders streams opened.", &m->watches);
  counter(w, "fdist_sched_pushes_total", "Orders pushed on WatchOrders streams.", &m->pushes);
  counter(w, "fdist_sched_pushes_deferred_total",
          "Order pushes that met a full window and were resent later.", &m->pushes_deferred);
  counter(w, "fdist_sched_versions_registered_total", "Versions registered.",
          &m->versions_registered);
  counter(w, "fdist_sched_versions_rejected_total",
          "RegisterVersion calls refused (signature, order, conflict).", &m->versions_rejected);
  counter(w, "fdist_sched_deaths_total", "Nodes declared dead (detector or stream loss).",
          &m->deaths);
  counter(w, "fdist_sched_stream_deaths_total",
          "Nodes declared dead because their WatchOrders connection broke.", &m->stream_deaths);
  counter(w, "fdist_sched_drains_total", "Drain requests accepted.", &m->drains);
  counter(w, "fdist_sched_plan_repairs_total",
          "Plans re-parented around dead or departed nodes (one per plan per batch of deaths).",
          &m->plan_repairs);
  counter(w, "fdist_sched_orphans_lost_total",
          "Orphans a plan repair found no parent for (repair pulls are their source).",
          &m->orphans_lost);
  counter(w, "fdist_sched_stragglers_demoted_total",
          "Nodes judged slow by their download rate (a leaf only until they recover).",
          &m->strag_demoted);
  counter(w, "fdist_sched_stragglers_recovered_total",
          "Slow nodes judged recovered (eligible as parents again).", &m->strag_recovered);
  counter(w, "fdist_sched_straggler_children_moved_total",
          "(child, stripe) edges moved off nodes judged slow.", &m->strag_moved);
  counter(w, "fdist_sched_stragglers_kept_total",
          "Nodes judged slow but kept interior: no other parent had room for their children.",
          &m->strag_kept);
  gauge(w, "fdist_sched_nodes_slow", "Nodes marked slow now.", &m->strag_slow);
  counter(w, "fdist_sched_bad_chunks_reported_total", "Bad chunks nodes reported (scrub).",
          &m->bad_chunks_reported);
  counter(w, "fdist_sched_bad_chunks_repaired_total", "Bad chunks nodes reported repaired.",
          &m->bad_chunks_repaired);
  counter(w, "fdist_sched_manifests_rejected_total", "Manifests nodes reported refusing.",
          &m->manifests_rejected);
  gauge(w, "fdist_sched_plans", "Distribution plans held (one per file).", &m->plans);
  gauge(w, "fdist_sched_plan_nodes", "Nodes in the plans, summed over plans.", &m->plan_nodes);
  gauge(w, "fdist_sched_plan_unplaced", "(node, stripe) pairs without a parent, over plans.",
        &m->plan_unplaced);
  gauge(w, "fdist_sched_versions", "Versions in the registry.", &m->versions);
}

int fdsched_metrics_start(fdsched_t *d) {
  if (!d->cfg.metrics_listen[0]) return 0;
  fdsched_metrics_publish(d);
  int rc = fd_metrics_server_start(d->cfg.metrics_listen, d->cfg.metrics_port_file, render,
                                   &d->metrics, &d->metrics.srv);
  if (rc) {
    fd_log_error("fdsched: metrics_listen = %s: %s", d->cfg.metrics_listen, fd_strerror(rc));
    return rc;
  }
  fd_log_info("fdsched: /metrics on port %u", fd_metrics_server_port(d->metrics.srv));
  return 0;
}

void fdsched_metrics_stop(fdsched_t *d) {
  fd_metrics_server_stop(d->metrics.srv);
  d->metrics.srv = NULL;
}
