/* nd_reports.c — the queue of reports to fdsched that ride on heartbeats
 * (nd_sched.h says what it guarantees). */
#include <stdio.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "nd_sched.h"

void nd_reports_add(nd_reports_t *r, nd_report_kind_t kind, const char *name, uint64_t version,
                    uint32_t index, const char *reason) {
  if (r->len == ND_REPORTS_MAX) {
    /* Counted; logged at 1, 2, 4, 8 ... drops so a storm cannot flood the log. */
    r->dropped++;
    if ((r->dropped & (r->dropped - 1)) == 0)
      fd_log_warn("report queue full: %llu report(s) to fdsched dropped",
                  (unsigned long long)r->dropped);
    return;
  }
  nd_report_t *p = &r->q[(r->head + r->len) % ND_REPORTS_MAX];
  memset(p, 0, sizeof(*p));
  p->kind = kind;
  snprintf(p->name, sizeof(p->name), "%s", name);
  p->version = version;
  p->index = index;
  if (reason) snprintf(p->reason, sizeof(p->reason), "%s", reason);
  r->len++;
}

void nd_reports_fill(nd_reports_t *r, Sched__HeartbeatRequest *req) {
  uint32_t k = FD_MIN(r->len, ND_REPORTS_PER_HB), nb = 0, nr = 0;
  for (uint32_t i = 0; i < k; i++) {
    nd_report_t *p = &r->q[(r->head + i) % ND_REPORTS_MAX];
    if (p->kind == ND_REPORT_REJECTED) {
      Sched__RejectedManifest *m = &r->rm[nr];
      sched__rejected_manifest__init(m);
      m->name = p->name;
      m->version = p->version;
      m->reason = p->reason;
      r->rmp[nr++] = m;
    } else {
      Sched__BadChunk *b = &r->bc[nb];
      sched__bad_chunk__init(b);
      b->name = p->name;
      b->version = p->version;
      b->index = p->index;
      b->repaired = p->kind == ND_REPORT_REPAIRED;
      r->bcp[nb++] = b;
    }
  }
  req->n_bad_chunks = nb;
  req->bad_chunks = nb ? r->bcp : NULL;
  req->n_rejected = nr;
  req->rejected = nr ? r->rmp : NULL;
  r->sent = k; /* one heartbeat at a time: a new fill replaces an unanswered one */
}

void nd_reports_done(nd_reports_t *r, bool ok) {
  if (ok) {
    FD_ASSERT(r->sent <= r->len);
    r->head = (r->head + r->sent) % ND_REPORTS_MAX;
    r->len -= r->sent;
  }
  r->sent = 0;
}
