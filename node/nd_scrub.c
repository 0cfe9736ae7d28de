/*
 * nd_scrub.c — role repair: scrub. Every scrub_interval_s, each complete
 * version open on this engine is re-read at scrub_rate (one scrub at a
 * time, the first one interval after the version was first seen). Storage
 * marks a rotten chunk bad (no longer present: not served, not reused) and
 * nd_repair_bad reports it and fetches a good copy.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fd_error.h"
#include "nd_repair_int.h"

static void on_scrub_bad(void *arg, const char *name, uint64_t version, uint32_t index, int err) {
  nd_repair_t *r = arg;
  r->scrub_bad++;
  fd_log_error("scrub: %s v%" PRIu64 " chunk %u is bad (%s); it will not be served or reused",
               name, version, index, fd_strerror(err));
  nd_ver_t *v = nd_ver_find(r->p, name, version);
  if (v) nd_repair_bad(r, v, index);
}

static void on_scrub_done(void *arg, int res) {
  nd_repair_t *r = arg;
  nd_ver_t *v = r->scrubbing;
  r->scrubbing = NULL;
  if (!v) return;
  if (res < 0) fd_log_warn("scrub of %s v%" PRIu64 ": %s", v->name, v->version, fd_strerror(res));
  else fd_log_info("scrub of %s v%" PRIu64 ": %d bad chunk(s)", v->name, v->version, res);
  nd_ver_put(v);
}

void nd_scrub_tick(nd_repair_t *r) {
  if (!r->scrub_interval_s || r->scrubbing) return;
  uint64_t now = fd_now_ms(), every = (uint64_t)r->scrub_interval_s * 1000;
  for (uint32_t i = 0; i < ND_VERS_MAX; i++) {
    nd_ver_t *v = nd_plane_ver_at(r->p, i);
    if (!v || !v->complete || !v->sv) continue;
    nd_scrubbed_t *s = &r->scrubbed[i];
    if (s->version != v->version || strcmp(s->name, v->name)) { /* the slot holds another */
      snprintf(s->name, sizeof(s->name), "%s", v->name);
      s->version = v->version;
      s->at_ms = now; /* first scrub one interval from now */
    }
    if (now - s->at_ms < every) continue;
    s->at_ms = now;
    if (st_scrub(v->sv, r->scrub_rate_bytes, on_scrub_bad, on_scrub_done, r) != 0) continue;
    nd_ver_get(v);
    r->scrubbing = v;
    return;
  }
}

bool nd_repair_scrubbing(const nd_repair_t *r) { return r->scrubbing != NULL; }
