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
 * re-parented the same way and stays in each plan as a leaf. Whatever changed is collected as pushes for the
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
  if (!s->scratch || !s->moved_from) {
    free(s->scratch);
    free(s->moved_from);
    free(s);
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
  for (uint32_t i = 0; i < n; i++) /* the dead are told nothing more */
    if (slots[i] < FD_NODES_MAX) s->moved_from[slots[i]] = SCH_MOVED_NONE;
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

int sch_sched_tick(sch_sched_t *s, uint64_t now_ms) {
  for (uint32_t i = 0; i < s->nplans; i++) try_build(s, &s->plans[i]);
  int total = 0;
  uint32_t n;
  do {
    n = sch_members_tick(sch_db_members(s->db), now_ms, s->scratch, FD_NODES_MAX);
    if (n) remove_all(s, s->scratch, n);
    total += (int)n;
  } while (n == FD_NODES_MAX);
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

void sch_sched_repairs(const sch_sched_t *s, uint64_t *repairs, uint64_t *lost) {
  *repairs = s->plan_repairs;
  *lost = s->orphans_lost;
}
