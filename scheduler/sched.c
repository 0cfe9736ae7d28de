/* sched.c — the scheduler's core: the durable db plus one plan per file,
 * kept in step with membership.
 *
 * Each file being distributed has one plan, for its newest version; publishing
 * a newer version replaces the plan (nodes move to the new version). Every
 * membership event reaches every plan: a node that registers late or comes
 * back from dead joins each plan as a leaf — so a returning node is brought
 * to the newest version, never to the one it was on — and the nodes the
 * failure detector declares dead, or that leave, are removed with their
 * orphans re-parented; a node drained by the operator has its children
 * re-parented the same way and stays in each plan as a leaf. A node judged
 * a straggler from its heartbeats' byte counters (strag.c) is demoted the
 * same way at the tick that judges it — its children, if any, are moved and
 * it becomes a leaf; a slow leaf keeps its place — and gets its slots back
 * once it has recovered. Whatever changed is collected as pushes for the
 * daemon to send at once. A plan that cannot be built yet (no live origin)
 * is built on the next tick. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "scheduler.h"

typedef struct plan_slot {
  char file[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  sch_plan_t *plan;
  bool built;
} plan_slot_t;

struct sch_sched {
  sch_db_t *db;
  sch_plan_config_t cfg;
  plan_slot_t plans[SCH_PLANS_MAX];
  uint32_t nplans;
  uint32_t *scratch; /* FD_NODES_MAX slots */
  uint64_t plan_repairs, orphans_lost; /* sch_sched_repairs */
  /* Per node slot: the drained node it was moved away from, until the moved
   * node heartbeats (the reply carries its new order, so it has been told)
   * or dies; SCH_MOVED_NONE otherwise. */
  uint32_t *moved_from;
  /* Stragglers: the rates, and per judgement the nodes fetching a plan's
   * version with what each still lacks, and the verdicts. */
  sch_strag_t *strag;
  sch_plan_t *trial; /* scratch: a demotion's plan, built and thrown away first */
  uint32_t *fetch;       /* FD_NODES_MAX */
  uint64_t *remaining;   /* FD_NODES_MAX */
  sch_strag_verdict_t verdicts[SCH_STRAG_VERDICTS_MAX];
  uint64_t strag_judged_ms;
  bool strag_judged;
  sch_sched_strag_stats_t strag_stats;
};

#define SCH_MOVED_NONE UINT32_MAX

static void try_build(sch_sched_t *s, plan_slot_t *ps) {
  if (ps->built) return;
  int rc = sch_plan_build(ps->plan);
  if (rc == 0) ps->built = true;
  else if (rc != -ENOENT) fd_log_warn("sched: cannot plan %s v%llu: %s", ps->file,
                                      (unsigned long long)ps->version, fd_strerror(rc));
  (void)s;
}

/* The slot for file, creating it; NULL when SCH_PLANS_MAX are in use. */
static plan_slot_t *slot_for(sch_sched_t *s, const char *file, bool create) {
  for (uint32_t i = 0; i < s->nplans; i++)
    if (strcmp(s->plans[i].file, file) == 0) return &s->plans[i];
  if (!create || s->nplans == SCH_PLANS_MAX) return NULL;
  plan_slot_t *ps = &s->plans[s->nplans];
  ps->plan = sch_plan_create(sch_db_members(s->db), &s->cfg);
  if (!ps->plan) return NULL;
  strcpy(ps->file, file);
  ps->version = 0;
  ps->built = false;
  s->nplans++;
  return ps;
}

sch_sched_t *sch_sched_create(sch_db_t *db, const sch_plan_config_t *cfg) {
  if (!db || !cfg || cfg->stripes == 0 || cfg->stripes > FD_STRIPES_MAX) return NULL;
  sch_sched_t *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->db = db;
  s->cfg = *cfg;
  s->scratch = malloc(FD_NODES_MAX * sizeof(uint32_t));
  s->moved_from = malloc(FD_NODES_MAX * sizeof(uint32_t));
  s->strag = sch_strag_create();
  s->fetch = malloc(FD_NODES_MAX * sizeof(uint32_t));
  s->remaining = malloc(FD_NODES_MAX * sizeof(uint64_t));
  if (!s->scratch || !s->moved_from || !s->strag || !s->fetch || !s->remaining) {
    sch_sched_destroy(s);
    return NULL;
  }
  memset(s->moved_from, 0xff, FD_NODES_MAX * sizeof(uint32_t)); /* SCH_MOVED_NONE */
  const sch_registry_t *r = sch_db_registry(db);
  for (uint32_t i = 0; i < sch_registry_count(r); i++) {
    const sch_version_t *v = sch_registry_at(r, i);
    if (sch_registry_newest(r, v->file) != v) continue;
    plan_slot_t *ps = slot_for(s, v->file, true);
    if (!ps) {
      sch_sched_destroy(s);
      return NULL;
    }
    sch_plan_set_chain(ps->plan, v->origins, v->origin_count);
    ps->version = v->version;
    try_build(s, ps);
  }
  return s;
}

void sch_sched_destroy(sch_sched_t *s) {
  if (!s) return;
  for (uint32_t i = 0; i < s->nplans; i++) sch_plan_destroy(s->plans[i].plan);
  free(s->scratch);
  free(s->moved_from);
  sch_strag_destroy(s->strag);
  sch_plan_destroy(s->trial);
  free(s->fetch);
  free(s->remaining);
  free(s);
}

static void join_all(sch_sched_t *s, uint32_t slot) {
  for (uint32_t i = 0; i < s->nplans; i++) {
    plan_slot_t *ps = &s->plans[i];
    if (!ps->built) continue;
    int rc = sch_plan_join(ps->plan, slot);
    if (rc && rc != -EALREADY) {
      fd_log_warn("sched: node %u cannot join %s v%llu: %s; planning it again", slot, ps->file,
                  (unsigned long long)ps->version, fd_strerror(rc));
      ps->built = false; /* the next tick's build places it */
    }
  }
}

static void remove_all(sch_sched_t *s, const uint32_t *slots, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) { /* the dead are told nothing more */
    if (slots[i] >= FD_NODES_MAX) continue;
    s->moved_from[slots[i]] = SCH_MOVED_NONE;
    /* one that comes back joins as a leaf and is judged afresh */
    sch_strag_forget(s->strag, slots[i]);
    sch_members_set_slow(sch_db_members(s->db), slots[i], false);
  }
  for (uint32_t i = 0; i < s->nplans; i++) {
    plan_slot_t *ps = &s->plans[i];
    if (!ps->built) continue;
    bool touched = false;
    for (uint32_t j = 0; j < n && !touched; j++) touched = sch_plan_contains(ps->plan, slots[j]);
    int lost = sch_plan_remove(ps->plan, slots, n);
    if (touched) s->plan_repairs++;
    if (lost > 0) s->orphans_lost += (uint64_t)lost;
    if (lost != 0) {
      /* No free slot reached them (or the version's every origin went at
       * once): the plan is built again from the live members at the next
       * tick, as soon as an origin holding the version is among them; each
       * node resumes from its bitmap under its new parents. */
      fd_log_warn("sched: %s v%llu: %d orphans without a parent; planning it again", ps->file,
                  (unsigned long long)ps->version, lost);
      ps->built = false;
    }
  }
}

int sch_sched_register(sch_sched_t *s, const sch_node_info_t *info, uint64_t now_ms,
                       uint32_t *slot_out) {
  uint32_t slot;
  int rc = sch_db_register_node(s->db, info, now_ms, &slot);
  if (rc) return rc;
  if (slot_out) *slot_out = slot;
  for (uint32_t i = 0; i < s->nplans; i++) try_build(s, &s->plans[i]);
  join_all(s, slot);
  return 0;
}

int sch_sched_heartbeat(sch_sched_t *s, const char *id, uint64_t now_ms, const char *file,
                        uint64_t version, uint64_t chunks) {
  uint32_t slot;
  bool returned = false;
  int rc = sch_members_heartbeat(sch_db_members(s->db), id, now_ms, version, chunks, &slot,
                                 &returned);
  if (rc) return rc;
  s->moved_from[slot] = SCH_MOVED_NONE; /* its reply carries its order as it is now */
  if (returned) join_all(s, slot);
  if (!file) return 0;
  sch_registry_t *r = sch_db_registry(s->db);
  rc = sch_registry_report(r, slot, file, version, chunks);
  if (rc) return rc;
  const sch_version_t *v = sch_registry_find(r, file, version);
  plan_slot_t *ps = slot_for(s, file, false);
  if (ps && ps->version == version && chunks == v->chunk_count)
    sch_plan_mark_complete(ps->plan, slot);
  return 0;
}

int sch_sched_traffic(sch_sched_t *s, const char *id, uint64_t now_ms, uint64_t rx_bytes) {
  int slot = sch_members_find(sch_db_members(s->db), id);
  if (slot < 0) return slot;
  sch_strag_sample(s->strag, (uint32_t)slot, now_ms, rx_bytes);
  return 0;
}

static double mbit(uint64_t bps) { return (double)bps / 1e6; }

static uint32_t unplaced(const sch_plan_t *p) {
  sch_plan_stats_t st;
  sch_plan_stats(p, &st);
  return st.unplaced;
}

/* Whether ps's plan, built again with v->slot a leaf (as a demotion with
 * orphans builds it), places everyone it places now: tried on a scratch
 * plan, so the real one is touched only when it does. */
static bool demotion_places_everyone(sch_sched_t *s, const plan_slot_t *ps) {
  if (!s->trial) s->trial = sch_plan_create(sch_db_members(s->db), &s->cfg);
  if (!s->trial) return false;
  const sch_version_t *v = sch_registry_find(sch_db_registry(s->db), ps->file, ps->version);
  sch_plan_set_chain(s->trial, v ? v->origins : NULL, v ? v->origin_count : 0);
  if (sch_plan_build(s->trial) != 0) return false;
  return unplaced(s->trial) <= unplaced(ps->plan);
}

/* Slot was judged slow: no child slots in any plan, its children moved —
 * unless some plan has no room for them elsewhere. A slow parent still
 * feeds its children; none at all would starve them (as when most of a
 * small fleet is judged slow in turn, or the fleet's upload is short): it
 * keeps its place, every plan untouched, and is judged again after
 * SCH_STRAG_KEEP_MS. */
static void strag_demote(sch_sched_t *s, const plan_slot_t *judged_in,
                         const sch_strag_verdict_t *v, uint64_t now_ms) {
  const sch_node_t *n = sch_members_node(sch_db_members(s->db), v->slot);
  if (sch_members_set_slow(sch_db_members(s->db), v->slot, true)) return;
  const plan_slot_t *starved_in = NULL;
  for (uint32_t i = 0; i < s->nplans && !starved_in; i++) {
    const plan_slot_t *ps = &s->plans[i];
    if (!ps->built || !sch_plan_contains(ps->plan, v->slot)) continue;
    uint32_t kids = 0;
    for (uint32_t st = 0; st < sch_plan_stripes(ps->plan); st++)
      kids += sch_plan_children(ps->plan, v->slot, st, NULL, 0);
    if (kids && !demotion_places_everyone(s, ps)) starved_in = ps;
  }
  if (starved_in) {
    sch_members_set_slow(sch_db_members(s->db), v->slot, false);
    sch_strag_defer(s->strag, v->slot, now_ms + SCH_STRAG_KEEP_MS);
    s->strag_stats.kept++;
    fd_log_warn("sched: %s is slow (fetching %s v%llu: %.1f Mbit/s, the median %.1f) but %s "
                "v%llu has no other parent with room for its children: it keeps its place, "
                "judged again in %u s",
                n->id, judged_in->file, (unsigned long long)judged_in->version, mbit(v->rate_bps),
                mbit(v->median_bps), starved_in->file, (unsigned long long)starved_in->version,
                SCH_STRAG_KEEP_MS / 1000);
    return;
  }
  uint32_t moved = 0;
  for (uint32_t i = 0; i < s->nplans; i++) {
    plan_slot_t *ps = &s->plans[i];
    if (!ps->built || !sch_plan_contains(ps->plan, v->slot)) continue;
    for (uint32_t st = 0; st < sch_plan_stripes(ps->plan); st++)
      moved += sch_plan_children(ps->plan, v->slot, st, NULL, 0);
    int lost = sch_plan_demote(ps->plan, v->slot);
    if (lost != 0) { /* as a drain's (sch_sched_drain): built again, it a leaf */
      fd_log_warn("sched: demoting %s in %s v%llu: %d without a parent (%s); planning it again",
                  n->id, ps->file, (unsigned long long)ps->version, lost,
                  lost < 0 ? fd_strerror(lost) : "unplaced");
      ps->built = false;
    }
  }
  s->strag_stats.demoted++;
  s->strag_stats.children_moved += moved;
  fd_log_warn("sched: %s is slow (fetching %s v%llu): %.1f Mbit/s over the last %.1f s, below "
              "%u%% of the median %.1f Mbit/s of %u nodes and of its parents' supply %.1f Mbit/s "
              "for %.1f s; %u (child, stripe) edges moved to other parents, a leaf until it "
              "recovers",
              n->id, judged_in->file, (unsigned long long)judged_in->version, mbit(v->rate_bps),
              SCH_STRAG_WINDOW_MS / 1000.0, SCH_STRAG_SLOW_PCT, mbit(v->median_bps), v->peers,
              mbit(v->supply_bps), (double)v->for_ms / 1000, moved);
}

static void strag_recover(sch_sched_t *s, const plan_slot_t *judged_in,
                          const sch_strag_verdict_t *v) {
  const sch_node_t *n = sch_members_node(sch_db_members(s->db), v->slot);
  if (sch_members_set_slow(sch_db_members(s->db), v->slot, false)) return;
  s->strag_stats.recovered++;
  for (uint32_t i = 0; i < s->nplans; i++) {
    plan_slot_t *ps = &s->plans[i];
    if (ps->built && sch_plan_contains(ps->plan, v->slot))
      sch_plan_undrain(ps->plan, v->slot); /* -EINVAL: drained as well, still a leaf */
  }
  fd_log_info("sched: %s recovered (fetching %s v%llu): %.1f Mbit/s, at least %u%% of the "
              "median %.1f Mbit/s of %u nodes for %.1f s; it may feed others again",
              n->id, judged_in->file, (unsigned long long)judged_in->version, mbit(v->rate_bps),
              SCH_STRAG_RECOVER_PCT, mbit(v->median_bps), v->peers, (double)v->for_ms / 1000);
}

/* Judges the nodes fetching each plan's version, at most every
 * SCH_STRAG_JUDGE_MS, and applies the verdicts. */
static void strag_tick(sch_sched_t *s, uint64_t now_ms) {
  if (s->strag_judged && now_ms - s->strag_judged_ms < SCH_STRAG_JUDGE_MS) return;
  s->strag_judged = true;
  s->strag_judged_ms = now_ms;
  const sch_members_t *m = sch_db_members(s->db);
  const sch_registry_t *r = sch_db_registry(s->db);
  uint32_t count = sch_members_count(m);
  for (uint32_t i = 0; i < s->nplans; i++) {
    plan_slot_t *ps = &s->plans[i];
    if (!ps->built) continue;
    const sch_version_t *v = sch_registry_find(r, ps->file, ps->version);
    if (!v) continue;
    uint32_t n = 0;
    for (uint32_t x = 0; x < count; x++) {
      const sch_node_t *node = sch_members_node(m, x);
      if (node->origin || !sch_plan_contains(ps->plan, x)) continue;
      uint64_t held = sch_registry_held_v(r, v, x);
      if (held >= v->chunk_count) continue; /* holds it: not fetching */
      s->fetch[n] = x;
      s->remaining[n++] = (v->chunk_count - held) * (uint64_t)v->chunk_size_bytes;
    }
    uint32_t w = sch_strag_judge(s->strag, m, ps->plan, s->fetch, s->remaining, n, now_ms,
                                 s->verdicts, SCH_STRAG_VERDICTS_MAX);
    for (uint32_t j = 0; j < w; j++) {
      if (s->verdicts[j].slow) strag_demote(s, ps, &s->verdicts[j], now_ms);
      else strag_recover(s, ps, &s->verdicts[j]);
    }
  }
}

int sch_sched_tick(sch_sched_t *s, uint64_t now_ms) {
  for (uint32_t i = 0; i < s->nplans; i++) try_build(s, &s->plans[i]);
  int total = 0;
  uint32_t n;
  do {
    n = sch_members_tick(sch_db_members(s->db), now_ms, s->scratch, FD_NODES_MAX);
    if (n) remove_all(s, s->scratch, n);
    total += (int)n;
  } while (n == FD_NODES_MAX);
  strag_tick(s, now_ms);
  return total;
}

int sch_sched_publish(sch_sched_t *s, const sch_version_info_t *info) {
  if (!info || !info->file) return -EINVAL;
  if (!slot_for(s, info->file, false) && s->nplans == SCH_PLANS_MAX) return -ENOSPC;
  int rc = sch_db_add_version(s->db, info);
  if (rc) return rc;
  plan_slot_t *ps = slot_for(s, info->file, true);
  if (!ps) return -ENOMEM; /* the version is registered; its plan comes on restart */
  ps->version = info->version;
  ps->built = false;
  const sch_version_t *v = sch_registry_find(sch_db_registry(s->db), info->file, info->version);
  if (v) sch_plan_set_chain(ps->plan, v->origins, v->origin_count);
  try_build(s, ps);
  return 0;
}

int sch_sched_commit(sch_sched_t *s, const char *file, uint64_t version,
                     const char *const *origins, uint32_t n) {
  const sch_version_t *v = file ? sch_registry_find(sch_db_registry(s->db), file, version) : NULL;
  bool same = true; /* the holders are the origins it was registered with */
  if (v && n) {
    same = n == v->origin_count;
    for (uint32_t i = 0; i < n && same; i++) {
      bool found = false;
      for (uint32_t j = 0; j < v->origin_count && !found; j++)
        found = origins[i] && !strcmp(origins[i], v->origins[j]);
      same = found;
    }
  }
  int rc = sch_db_commit_version(s->db, file, version, origins, n);
  if (rc) return rc;
  plan_slot_t *ps = slot_for(s, file, false);
  v = sch_registry_find(sch_db_registry(s->db), file, version);
  if (same || !ps || !v || ps->version != version) return 0;
  fd_log_warn("sched: %s v%llu committed by %u of the origins it was registered with; "
              "planning it again without the others",
              file, (unsigned long long)version, n);
  sch_plan_set_chain(ps->plan, v->origins, v->origin_count);
  ps->built = false; /* without the origins that do not hold it */
  try_build(s, ps);
  return 0;
}

int sch_sched_abort(sch_sched_t *s, const char *file, uint64_t version) {
  const sch_version_t *v = sch_registry_find(sch_db_registry(s->db), file, version);
  if (!v) return -ENOENT;
  if (!v->pending) return -EALREADY; /* a committed version is never taken back */
  int rc = sch_db_retire_version(s->db, file, version);
  if (rc) return rc;
  plan_slot_t *ps = slot_for(s, file, false);
  if (ps && ps->version == version) {
    const sch_version_t *prev = sch_registry_newest(sch_db_registry(s->db), file);
    ps->version = prev ? prev->version : 0; /* 0: no version, the plan is never built */
    ps->built = false;
    if (prev) sch_plan_set_chain(ps->plan, prev->origins, prev->origin_count);
    if (prev) try_build(s, ps);
  }
  return 0;
}

int sch_sched_declare_dead(sch_sched_t *s, uint32_t slot) {
  int rc = sch_members_declare_dead(sch_db_members(s->db), slot);
  if (rc == 0) remove_all(s, &slot, 1);
  return rc;
}

int sch_sched_drain(sch_sched_t *s, uint32_t slot) {
  int rc = sch_db_drain_node(s->db, slot);
  if (rc) return rc;
  for (uint32_t i = 0; i < s->nplans; i++) {
    plan_slot_t *ps = &s->plans[i];
    if (!ps->built || !sch_plan_contains(ps->plan, slot)) continue;
    for (uint32_t st = 0; st < sch_plan_stripes(ps->plan); st++) {
      uint32_t n = sch_plan_children(ps->plan, slot, st, s->scratch, FD_NODES_MAX);
      for (uint32_t j = 0; j < n && j < FD_NODES_MAX; j++) s->moved_from[s->scratch[j]] = slot;
    }
    int lost = sch_plan_drain(ps->plan, slot);
    if (lost != 0) {
      /* as for a death's orphans (remove_all): built again at the next
       * tick, the drained node a leaf, rather than leaving any parentless */
      fd_log_warn("sched: draining %u in %s v%llu: %d without a parent (%s); planning it again",
                  slot, ps->file, (unsigned long long)ps->version, lost,
                  lost < 0 ? fd_strerror(lost) : "unplaced");
      ps->built = false;
    }
  }
  return 0;
}

int sch_sched_undrain(sch_sched_t *s, uint32_t slot) {
  int rc = sch_db_undrain_node(s->db, slot);
  if (rc) return rc;
  for (uint32_t x = 0; x < FD_NODES_MAX; x++)
    if (s->moved_from[x] == slot) s->moved_from[x] = SCH_MOVED_NONE;
  for (uint32_t i = 0; i < s->nplans; i++) {
    plan_slot_t *ps = &s->plans[i];
    if (!ps->built) continue;
    int urc = sch_plan_undrain(ps->plan, slot);
    if (urc && urc != -EALREADY)
      fd_log_warn("sched: undraining %u in %s v%llu: %s", slot, ps->file,
                  (unsigned long long)ps->version, fd_strerror(urc));
  }
  return 0;
}

uint32_t sch_sched_dependents(const sch_sched_t *s, uint32_t slot) {
  uint32_t n = 0;
  const sch_node_t *node = sch_members_node(sch_db_members(s->db), slot);
  if (node && node->drained) { /* only a drain moves nodes away: O(members) for those */
    uint32_t count = sch_members_count(sch_db_members(s->db));
    for (uint32_t x = 0; x < count; x++) n += s->moved_from[x] == slot;
  }
  for (uint32_t i = 0; i < s->nplans; i++) {
    const plan_slot_t *ps = &s->plans[i];
    if (!ps->built) continue;
    for (uint32_t st = 0; st < sch_plan_stripes(ps->plan); st++)
      n += sch_plan_children(ps->plan, slot, st, NULL, 0);
  }
  return n;
}

int sch_sched_leave(sch_sched_t *s, uint32_t slot) {
  int rc = sch_db_leave_node(s->db, slot);
  if (rc == 0) remove_all(s, &slot, 1);
  return rc;
}

uint32_t sch_sched_plan_count(const sch_sched_t *s) { return s->nplans; }

const sch_plan_t *sch_sched_plan_at(const sch_sched_t *s, uint32_t i, const char **file,
                                    uint64_t *version) {
  if (i >= s->nplans) return NULL;
  if (file) *file = s->plans[i].file;
  if (version) *version = s->plans[i].version;
  return s->plans[i].built ? s->plans[i].plan : NULL;
}

uint32_t sch_sched_take_pushes(sch_sched_t *s, sch_push_t *out, uint32_t max) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < s->nplans && n < max; i++) {
    if (!s->plans[i].built) continue;
    uint32_t want = max - n < FD_NODES_MAX ? max - n : FD_NODES_MAX;
    uint32_t got = sch_plan_take_changed(s->plans[i].plan, s->scratch, want);
    for (uint32_t j = 0; j < got; j++) /* the dead get no orders */
      if (sch_plan_contains(s->plans[i].plan, s->scratch[j])) out[n++] = (sch_push_t){s->scratch[j], i};
  }
  return n;
}

void sch_sched_stragglers(const sch_sched_t *s, sch_sched_strag_stats_t *out) {
  *out = s->strag_stats;
  const sch_members_t *m = sch_db_members(s->db);
  out->slow_now = 0;
  for (uint32_t x = 0; x < sch_members_count(m); x++)
    out->slow_now += sch_members_node(m, x)->slow;
}

void sch_sched_repairs(const sch_sched_t *s, uint64_t *repairs, uint64_t *lost) {
  *repairs = s->plan_repairs;
  *lost = s->orphans_lost;
}
