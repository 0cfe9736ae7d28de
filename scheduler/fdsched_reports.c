/*
 * fdsched_reports.c — what nodes report on their heartbeats about damage:
 * bad chunks their scrub found, the same chunks once re-fetched and
 * rewritten, and manifests they refused. fdsched logs each report, counts
 * it overall (fdsched_counters_t) and per version in a small fixed table,
 * and Status shows the per-version figures (bad chunks repaired / reported,
 * manifests rejected).
 *
 * The figures are volatile (not in the op log): they describe what happened
 * since this fdsched started. Delivery is at least once, so a report whose
 * heartbeat reply was lost may be counted twice. The table holds
 * FDSCHED_REPORT_VERSIONS versions; a new one replaces the lowest-numbered
 * entry. Nothing is allocated: the table lives in fdsched_t.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fd_log.h"
#include "fdsched_int.h"

/* The entry of (file, version), made if missing (evicting the oldest). */
static fdsched_report_t *entry(fdsched_t *d, const char *file, uint64_t version, bool make) {
  fdsched_report_t *oldest = NULL;
  for (uint32_t i = 0; i < FDSCHED_REPORT_VERSIONS; i++) {
    fdsched_report_t *r = &d->reports[i];
    if (r->used && r->version == version && !strcmp(r->file, file)) return r;
    if (!oldest || !r->used || (oldest->used && r->version < oldest->version)) oldest = r;
  }
  if (!make || !oldest) return NULL;
  memset(oldest, 0, sizeof(*oldest));
  oldest->used = true;
  snprintf(oldest->file, sizeof(oldest->file), "%s", file);
  oldest->version = version;
  return oldest;
}

void fdsched_reports_take(fdsched_t *d, const Sched__HeartbeatRequest *req) {
  for (size_t i = 0; i < req->n_bad_chunks; i++) {
    const Sched__BadChunk *b = req->bad_chunks[i];
    if (!b->name || !b->name[0]) continue;
    fdsched_report_t *r = entry(d, b->name, b->version, true);
    if (b->repaired) {
      d->n.bad_chunks_repaired++;
      if (r) r->repaired++;
      fd_log_info("node %s repaired chunk %" PRIu64 " of %s v%" PRIu64, req->node_id, b->index,
                  b->name, b->version);
    } else {
      d->n.bad_chunks_reported++;
      if (r) r->reported++;
      fd_log_warn("node %s reports chunk %" PRIu64 " of %s v%" PRIu64 " bad (scrub)",
                  req->node_id, b->index, b->name, b->version);
    }
  }
  for (size_t i = 0; i < req->n_rejected; i++) {
    const Sched__RejectedManifest *m = req->rejected[i];
    if (!m->name || !m->name[0]) continue;
    fdsched_report_t *r = entry(d, m->name, m->version, true);
    d->n.manifests_rejected++;
    if (r) r->rejected++;
    fd_log_warn("node %s rejected the manifest of %s v%" PRIu64 ": %s", req->node_id, m->name,
                m->version, m->reason ? m->reason : "");
  }
}

void fdsched_reports_fill(fdsched_t *d, Sched__VersionProgress *vp) {
  const fdsched_report_t *r = entry(d, vp->name, vp->version, false);
  if (!r) return;
  vp->bad_chunks_reported = r->reported;
  vp->bad_chunks_repaired = r->repaired;
  vp->manifests_rejected = r->rejected;
}
