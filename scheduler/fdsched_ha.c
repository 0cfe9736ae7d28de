/*
 * fdsched_ha.c — a standby fdsched that takes over through ZooKeeper
 * ([scheduler] zookeeper; without it this file does nothing and the daemon
 * always leads, as before).
 *
 * Election: every fdsched joins `sched/members` as "fdsched@<advertise>"
 * (common/fd_zk.h: ephemeral-sequential znodes, the lowest sequence leads).
 * Only the leader serves: a standby, or a leader that lost its ZooKeeper
 * connection (quorum lost, or its session expired while it was paused),
 * answers every Scheduler call UNAVAILABLE naming the leader ("not the
 * fdsched leader; the leader is H:P") or saying there is none ("no fdsched
 * leader: ZooKeeper unreachable"), pushes nothing, plans nothing and
 * declares no node dead. The leader's election sequence goes on every order
 * and reply (`leader_seq`), so nodes can fence off a deposed leader that
 * comes back from a pause before it has noticed (nd_sched.c).
 *
 * Durability: each registered version is written to ZooKeeper
 * (`sched/versions/<name>/<version, 20 digits>`, fdsched_ha_record) before
 * RegisterVersion answers OK, and removed when it is retired: a text header
 * (state, the storage digest of the manifest, the origins holding it — after
 * the commit the holders — size, chunk size) and the signed manifest. So an
 * answered commit survives a takeover, and each committed version's digest
 * and origins are registered in ZooKeeper for anyone to read.
 *
 * Takeover: the moment the election says we lead, the versions are read
 * from ZooKeeper, the data dir is replayed again (membership: every node it
 * knows gets a heartbeat grace period), the local registry is made equal to
 * ZooKeeper's file by file (ZooKeeper is the truth for versions), and the
 * plans are built. Holdings come back with the nodes' heartbeats, as GFS
 * relearns chunk locations; nodes this fdsched never saw get NOT_FOUND on
 * their heartbeat and register again. The same happens when a leader gets
 * its lead back after losing ZooKeeper: it cannot know what the others did
 * meanwhile.
 *
 * A pause (SIGSTOP, a VM freeze) stops ZooKeeper's client thread too, so the
 * view a leader holds when it resumes may be stale: after a loop turn longer
 * than a third of the session timeout, fdsched_ha_leading confirms the
 * session with one round trip before anything is answered or planned.
 *
 * Never: blocks the loop but for the rare synchronous ZooKeeper calls (a
 * version's registration, a takeover, the confirmation after a stall).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_error.h"
#include "fd_hash.h"
#include "fd_log.h"
#include "fd_time.h"
#include "fd_zk.h"
#include "fdsched_int.h"
#include "storage.h"

#define HA_MEMBERS_DIR "sched/members"
#define HA_VERSIONS_DIR "sched/versions"
#define HA_TAG_ID "fdsched@"
#define HA_RECORD_MAGIC "fdist-sched-version 1\n"

/* ---- the record -------------------------------------------------------------------- */

static int record_path(const char *file, uint64_t version, char *out, size_t cap) {
  if (strchr(file, '/')) return -EINVAL;
  int n = snprintf(out, cap, HA_VERSIONS_DIR "/%s/%020" PRIu64, file, version);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The header's length: what a manifest of manifest_len adds up to. */
static size_t header_len_max(void) {
  return sizeof(HA_RECORD_MAGIC) + 32 + (FD_NAME_LEN_MAX + 8) + 48 + 32 + 32 + 32 +
         (FD_SHA256_LEN * 2 + 8) + SCH_ORIGINS_MAX * (FD_NAME_LEN_MAX + 1) + 16 + 32;
}

int fdsched_ha_fits(size_t manifest_len, char *why, size_t why_len) {
  if (manifest_len + header_len_max() <= SCH_ZK_RECORD_LEN_MAX) return 0;
  snprintf(why, why_len,
           "a manifest of %zu bytes does not fit a ZooKeeper znode (at most %zu with "
           "[scheduler] zookeeper): use larger chunks",
           manifest_len, (size_t)SCH_ZK_RECORD_LEN_MAX - header_len_max());
  return -EMSGSIZE;
}

/* Encodes v into buf (SCH_ZK_RECORD_LEN_MAX); the length or -errno. */
static int record_encode(const sch_version_t *v, uint8_t *buf) {
  st_manifest_t *m = NULL;
  uint8_t digest[FD_SHA256_LEN];
  int rc = st_manifest_decode(v->manifest, v->manifest_len, &m);
  if (rc == 0) rc = st_manifest_digest(m, digest);
  st_manifest_free(m);
  if (rc) return rc;
  char hex[FD_SHA256_LEN * 2 + 1];
  fd_hex_encode(digest, FD_SHA256_LEN, hex);
  char origins[SCH_ORIGINS_MAX * (FD_NAME_LEN_MAX + 1) + 1] = "";
  size_t ol = 0;
  for (uint32_t i = 0; i < v->origin_count; i++)
    ol += (size_t)snprintf(origins + ol, sizeof(origins) - ol, "%s%s", i ? "," : "",
                           v->origins[i]);
  int n = snprintf((char *)buf, SCH_ZK_RECORD_LEN_MAX,
                   HA_RECORD_MAGIC "name %s\nversion %" PRIu64 "\nstate %s\nsize %" PRIu64
                                   "\nchunk %u\ndigest %s\norigins %s\nmanifest %zu\n",
                   v->file, v->version, v->pending ? "pending" : "committed", v->size_bytes,
                   v->chunk_size_bytes, hex, origins, v->manifest_len);
  if (n < 0 || (size_t)n + v->manifest_len > SCH_ZK_RECORD_LEN_MAX) return -EMSGSIZE;
  memcpy(buf + n, v->manifest, v->manifest_len);
  return n + (int)v->manifest_len;
}

/* One version as read back from ZooKeeper (a takeover's list). */
typedef struct ha_version {
  char file[FD_NAME_LEN_MAX + 1];
  uint64_t version, size_bytes;
  uint32_t chunk_size_bytes;
  bool pending;
  uint32_t origin_count;
  char origins[SCH_ORIGINS_MAX][FD_NAME_LEN_MAX + 1];
  uint8_t *manifest; /* malloc'd */
  size_t manifest_len;
} ha_version_t;

/* The value of "key " on the line at *p (advancing past it); NULL if the
 * line is another key. */
static const char *header_field(const char **p, const char *end, const char *key, char *out,
                                size_t cap) {
  size_t kl = strlen(key);
  const char *nl = memchr(*p, '\n', (size_t)(end - *p));
  if (!nl || (size_t)(nl - *p) < kl + 1 || memcmp(*p, key, kl) || (*p)[kl] != ' ') return NULL;
  size_t n = (size_t)(nl - *p) - kl - 1;
  if (n >= cap) return NULL;
  memcpy(out, *p + kl + 1, n);
  out[n] = 0;
  *p = nl + 1;
  return out;
}

static int record_decode(const uint8_t *buf, size_t len, ha_version_t *hv) {
  const char *p = (const char *)buf, *end = p + len;
  size_t ml = strlen(HA_RECORD_MAGIC);
  if (len < ml || memcmp(p, HA_RECORD_MAGIC, ml)) return -EBADMSG;
  p += ml;
  char v[SCH_ORIGINS_MAX * (FD_NAME_LEN_MAX + 1) + 1], *e;
  memset(hv, 0, sizeof(*hv));
  if (!header_field(&p, end, "name", hv->file, sizeof(hv->file))) return -EBADMSG;
  if (!header_field(&p, end, "version", v, sizeof(v))) return -EBADMSG;
  hv->version = strtoull(v, &e, 10);
  if (!header_field(&p, end, "state", v, sizeof(v))) return -EBADMSG;
  if (strcmp(v, "pending") && strcmp(v, "committed")) return -EBADMSG;
  hv->pending = !strcmp(v, "pending");
  if (!header_field(&p, end, "size", v, sizeof(v))) return -EBADMSG;
  hv->size_bytes = strtoull(v, &e, 10);
  if (!header_field(&p, end, "chunk", v, sizeof(v))) return -EBADMSG;
  hv->chunk_size_bytes = (uint32_t)strtoul(v, &e, 10);
  if (!header_field(&p, end, "digest", v, sizeof(v))) return -EBADMSG; /* for readers */
  if (!header_field(&p, end, "origins", v, sizeof(v))) return -EBADMSG;
  for (char *save = NULL, *tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (hv->origin_count == SCH_ORIGINS_MAX || strlen(tok) > FD_NAME_LEN_MAX) return -EBADMSG;
    strcpy(hv->origins[hv->origin_count++], tok);
  }
  if (!header_field(&p, end, "manifest", v, sizeof(v))) return -EBADMSG;
  hv->manifest_len = strtoull(v, &e, 10);
  if (*e || hv->manifest_len != (size_t)(end - p) || hv->manifest_len == 0) return -EBADMSG;
  hv->manifest = malloc(hv->manifest_len);
  if (!hv->manifest) return -ENOMEM;
  memcpy(hv->manifest, p, hv->manifest_len);
  return 0;
}

int fdsched_ha_record(fdsched_t *d, const char *file, uint64_t version) {
  fdsched_ha_t *ha = &d->ha;
  if (!ha->zk) return 0;
  char path[FD_ZK_PATH_MAX];
  int rc = record_path(file, version, path, sizeof(path));
  if (rc) return rc;
  const sch_version_t *v = sch_registry_find(sch_db_registry(d->db), file, version);
  if (!v) { /* retired (aborted): it leaves ZooKeeper too */
    rc = fd_zk_delete_sync(ha->zk, path);
  } else {
    int len = record_encode(v, ha->buf);
    rc = len < 0 ? len : fd_zk_put_sync(ha->zk, path, ha->buf, (size_t)len);
  }
  if (rc)
    fd_log_error("fdsched: %s v%" PRIu64 ": cannot %s ZooKeeper: %s", file, version,
                 v ? "write it to" : "remove it from", fd_strerror(rc));
  return rc;
}

/* ---- the takeover ----------------------------------------------------------------- */

typedef struct ha_list {
  ha_version_t *v; /* SCH_VERSIONS_MAX */
  uint32_t n;
} ha_list_t;

static void list_free(ha_list_t *l) {
  for (uint32_t i = 0; l->v && i < l->n; i++) free(l->v[i].manifest);
  free(l->v);
}

/* Reads every version under sched/versions, in file then version order. */
static int list_read(fdsched_t *d, ha_list_t *l) {
  fd_zk_t *zk = d->ha.zk;
  l->n = 0;
  l->v = calloc(SCH_VERSIONS_MAX, sizeof(*l->v));
  if (!l->v) return -ENOMEM;
  size_t names_cap = (size_t)SCH_VERSIONS_MAX * (FD_NAME_LEN_MAX + 2);
  char *files = malloc(names_cap), *vers = malloc(names_cap);
  int rc = files && vers ? 0 : -ENOMEM;
  int nf = rc ? rc : fd_zk_children_sync(zk, HA_VERSIONS_DIR, files, names_cap);
  if (nf == -ENOENT) nf = 0; /* nothing registered yet */
  if (nf < 0) rc = nf;
  const char *f = files;
  for (int i = 0; rc == 0 && i < nf; i++, f += strlen(f) + 1) {
    char dir[FD_ZK_PATH_MAX];
    int dl = snprintf(dir, sizeof(dir), HA_VERSIONS_DIR "/%s", f);
    if (dl < 0 || (size_t)dl >= sizeof(dir)) continue; /* not one of ours */
    int nv = fd_zk_children_sync(zk, dir, vers, names_cap);
    if (nv == -ENOENT) continue;
    if (nv < 0) {
      rc = nv;
      break;
    }
    const char *vn = vers;
    for (int j = 0; rc == 0 && j < nv; j++, vn += strlen(vn) + 1) {
      if (l->n == SCH_VERSIONS_MAX) {
        rc = -ENOSPC;
        break;
      }
      char path[FD_ZK_PATH_MAX];
      int pl = snprintf(path, sizeof(path), "%s/%s", dir, vn);
      if (pl < 0 || (size_t)pl >= sizeof(path)) continue;
      int len = fd_zk_get_sync(zk, path, d->ha.buf, SCH_ZK_RECORD_LEN_MAX);
      if (len == -ENOENT) continue;
      if (len < 0) {
        rc = len;
        break;
      }
      ha_version_t *hv = &l->v[l->n];
      int drc = record_decode(d->ha.buf, (size_t)len, hv);
      if (drc) {
        fd_log_error("fdsched: ZooKeeper %s: not a version record (%s); skipped", path,
                     fd_strerror(drc));
        continue;
      }
      l->n++;
    }
  }
  free(files);
  free(vers);
  return rc;
}

static bool same_version(const sch_version_t *v, const ha_version_t *hv) {
  if (v->pending != hv->pending || v->manifest_len != hv->manifest_len ||
      memcmp(v->manifest, hv->manifest, hv->manifest_len) || v->origin_count != hv->origin_count)
    return false;
  for (uint32_t i = 0; i < v->origin_count; i++)
    if (strcmp(v->origins[i], hv->origins[i])) return false;
  return true;
}

/* Makes the db's registry equal to ZooKeeper's list, file by file: a file
 * whose versions differ in any way loses its local ones and takes
 * ZooKeeper's (logged, so a restart replays the same). */
static int merge(fdsched_t *d, const ha_list_t *l) {
  sch_db_t *db = d->db;
  const sch_registry_t *r = sch_db_registry(db);
  int rc = 0;
  /* local files whose versions are not exactly ZooKeeper's */
  for (uint32_t i = 0; i < sch_registry_count(r) && rc == 0;) {
    const sch_version_t *v = sch_registry_at(r, i);
    uint32_t local = 0, remote = 0, same = 0;
    for (uint32_t k = 0; k < sch_registry_count(r); k++)
      local += !strcmp(sch_registry_at(r, k)->file, v->file);
    for (uint32_t k = 0; k < l->n; k++) {
      if (strcmp(l->v[k].file, v->file)) continue;
      remote++;
      const sch_version_t *lv = sch_registry_find(r, v->file, l->v[k].version);
      same += lv && same_version(lv, &l->v[k]);
    }
    if (local == remote && same == remote) {
      i++;
      continue;
    }
    char file[FD_NAME_LEN_MAX + 1];
    snprintf(file, sizeof(file), "%s", v->file);
    fd_log_warn("fdsched: %s: %u local version(s) differ from ZooKeeper's %u: taking ZooKeeper's",
                file, local, remote);
    for (uint32_t k = sch_registry_count(r); k-- > 0 && rc == 0;) {
      const sch_version_t *x = sch_registry_at(r, k);
      if (!strcmp(x->file, file)) rc = sch_db_retire_version(db, file, x->version);
    }
    i = 0; /* the registry moved: start over (bounded: each pass retires a file) */
  }
  /* ZooKeeper's versions the registry lacks (files retired above, or new) */
  for (uint32_t k = 0; k < l->n && rc == 0; k++) {
    const ha_version_t *hv = &l->v[k];
    if (sch_registry_find(r, hv->file, hv->version)) continue;
    const char *optr[SCH_ORIGINS_MAX];
    for (uint32_t o = 0; o < hv->origin_count; o++) optr[o] = hv->origins[o];
    sch_version_info_t vi = {.file = hv->file,
                             .version = hv->version,
                             .size_bytes = hv->size_bytes,
                             .chunk_size_bytes = hv->chunk_size_bytes,
                             .manifest = hv->manifest,
                             .manifest_len = hv->manifest_len,
                             .origin_count = hv->origin_count,
                             .origins = optr,
                             .pending = hv->pending};
    rc = sch_db_add_version(db, &vi);
    if (rc)
      fd_log_error("fdsched: %s v%" PRIu64 " from ZooKeeper refused: %s", hv->file, hv->version,
                   fd_strerror(rc));
  }
  return rc;
}

/* Becomes the leader: reads ZooKeeper, replays the data dir, merges,
 * plans. On failure (ZooKeeper gone meanwhile) stays a standby and the next
 * turn tries again. */
static int take_over(fdsched_t *d, const fd_zk_view_t *v) {
  uint64_t t0 = fd_now_ms();
  ha_list_t l = {0};
  int rc = list_read(d, &l);
  if (rc) {
    fd_log_warn("fdsched: elected, but cannot read the versions from ZooKeeper (%s): retrying",
                fd_strerror(rc));
    list_free(&l);
    return rc;
  }
  uint64_t t_read = fd_now_ms();
  rc = fdsched_state_reopen(d);
  uint64_t t_replay = fd_now_ms();
  if (rc == 0) rc = merge(d, &l);
  if (rc == 0) rc = fdsched_state_plan(d);
  if (rc) {
    fd_log_error("fdsched: taking over failed: %s", fd_strerror(rc));
    list_free(&l);
    d->fatal = rc;
    return rc;
  }
  d->ha.leading = true;
  d->ha.seq = v->members[v->self].seq;
  d->ha.confirmed_ms = fd_now_ms();
  uint64_t t1 = fd_now_ms();
  fd_log_info("fdsched: leading (election seq %" PRIu64 ", session %" PRIx64 "): %u versions "
              "from ZooKeeper (%" PRIu64 " ms), %u nodes from %s (%" PRIu64 " ms), merged and "
              "planned (%" PRIu64 " ms); %" PRIu64 " ms after this fdsched last saw a leader",
              d->ha.seq, v->session_id, l.n, t_read - t0,
              sch_members_count(sch_db_members(d->db)), d->cfg.data_dir, t_replay - t_read,
              t1 - t_replay, t1 - d->ha.lost_ms);
  list_free(&l);
  return 0;
}

/* ---- the election ----------------------------------------------------------------- */

/* The address part of a tag "fdsched@addr:port". */
static const char *tag_addr(const char *tag) {
  const char *at = strchr(tag, '@');
  return at ? at + 1 : tag;
}

static void step_down(fdsched_t *d, const char *why) {
  fdsched_ha_t *ha = &d->ha;
  if (!ha->leading) return;
  ha->leading = false;
  ha->lost_ms = fd_now_ms();
  fd_log_warn("fdsched: no longer the leader (%s): refusing every call", why);
  fdsched_watch_close_all(d, why);
}

/* The refusal and the leader's address from the view. */
static void describe(fdsched_t *d, const fd_zk_view_t *v) {
  fdsched_ha_t *ha = &d->ha;
  ha->leader[0] = 0;
  ha->standbys = 0;
  for (uint32_t i = 0; i < v->members_n; i++) {
    if (i == 0)
      snprintf(ha->leader, sizeof(ha->leader), "%s", tag_addr(v->members[0].tag));
    else
      snprintf(ha->standby[ha->standbys++], sizeof(ha->standby[0]), "%s",
               tag_addr(v->members[i].tag));
  }
  if (v->conn != FD_ZK_CONNECTED)
    snprintf(ha->refusal, sizeof(ha->refusal), "no fdsched leader: ZooKeeper unreachable (%s)",
             fd_zk_conn_name(v->conn));
  else if (v->members_n == 0 || !v->joined)
    snprintf(ha->refusal, sizeof(ha->refusal), "no fdsched leader: the election is being held");
  else if (v->self == 0)
    snprintf(ha->refusal, sizeof(ha->refusal),
             "no fdsched leader: this fdsched (%s) is taking over", ha->advertise);
  else
    snprintf(ha->refusal, sizeof(ha->refusal), "not the fdsched leader; the leader is %s",
             ha->leader);
}

void fdsched_ha_tick(fdsched_t *d) {
  fdsched_ha_t *ha = &d->ha;
  if (!ha->zk) return;
  uint64_t now = fd_now_ms();
  bool stalled = ha->turn_ms && now - ha->turn_ms > ha->stall_ms;
  ha->turn_ms = now;
  fd_zk_tick(ha->zk);
  fd_zk_view_t v;
  fd_zk_view(ha->zk, &v);
  if (v.conn != ha->conn || v.members_gen != ha->members_gen) {
    if (v.conn != ha->conn)
      fd_log_info("fdsched: ZooKeeper %s -> %s", fd_zk_conn_name(ha->conn),
                  fd_zk_conn_name(v.conn));
    ha->conn = v.conn;
    ha->members_gen = v.members_gen;
    describe(d, &v);
    if (v.conn == FD_ZK_CONNECTED && v.joined && !v.leader && v.members_n)
      fd_log_info("fdsched: standby #%d; the leader is %s", v.self, ha->leader);
  }
  if (v.conn == FD_ZK_CONNECTED && v.members_n && !v.leader) ha->lost_ms = now; /* one leads */
  if (ha->leading) {
    if (!v.leader) {
      step_down(d, ha->refusal);
    } else if (v.members[v.self].seq != ha->seq) {
      /* elected again in a new session between two looks: someone may
       * have led meanwhile, so take over afresh */
      step_down(d, "our session expired and was replaced");
    } else if (stalled) {
      fdsched_ha_leading(d); /* confirms with a round trip, or steps down */
    } else {
      ha->confirmed_ms = now;
    }
    return;
  }
  if (v.leader && !d->fatal) take_over(d, &v);
}

bool fdsched_ha_leading(fdsched_t *d) {
  fdsched_ha_t *ha = &d->ha;
  if (!ha->zk) return true;
  if (!ha->leading) return false;
  uint64_t now = fd_now_ms();
  if (now - ha->confirmed_ms <= ha->stall_ms) return true;
  /* The loop stood still (a pause, a slow disk): ZooKeeper's thread stood
   * still with it, so the view may be stale. A round trip that succeeds
   * proves the session alive, and with it our candidate, which no later
   * one can precede. */
  char names[FD_ZK_MEMBERS_MAX * (FD_ZK_TAG_MAX + 48)];
  int rc = fd_zk_children_sync(ha->zk, HA_MEMBERS_DIR, names, sizeof(names));
  fd_zk_view_t v;
  fd_zk_view(ha->zk, &v);
  if (rc < 0 || !v.leader) {
    describe(d, &v);
    step_down(d, rc < 0 ? "the session could not be confirmed after a stall" : ha->refusal);
    return false;
  }
  fd_log_info("fdsched: leadership confirmed after a %" PRIu64 " ms stall",
              now - ha->confirmed_ms);
  ha->confirmed_ms = fd_now_ms();
  return true;
}

int fdsched_ha_refuse(fdsched_t *d, rpc_call_t *call) {
  return rpc_call_finish(call, RPC_UNAVAILABLE, d->ha.refusal);
}

void fdsched_ha_status(fdsched_t *d, Sched__StatusReply *rep) {
  fdsched_ha_t *ha = &d->ha;
  rep->leader = fdsched_ha_leading(d);
  rep->leader_seq = ha->seq;
  if (!ha->zk) {
    rep->zookeeper = (char *)"off";
    rep->leader_addr = ha->advertise;
    return;
  }
  rep->zookeeper = (char *)fd_zk_conn_name(ha->conn);
  rep->leader_addr = ha->leader;
  for (uint32_t i = 0; i < ha->standbys; i++) ha->standby_ptr[i] = ha->standby[i];
  rep->n_standbys = ha->standbys;
  rep->standbys = ha->standby_ptr;
}

int fdsched_ha_start(fdsched_t *d) {
  fdsched_ha_t *ha = &d->ha;
  const fdsched_config_t *c = &d->cfg;
  if (c->advertise[0]) {
    snprintf(ha->advertise, sizeof(ha->advertise), "%s", c->advertise);
  } else {
    char host[SCH_ADDRESS_LEN_MAX];
    uint32_t port;
    fdsched_split_addr(c->listen, host, &port);
    int n = snprintf(ha->advertise, sizeof(ha->advertise), "%s:%u", host, d->port);
    if (n < 0 || (size_t)n >= sizeof(ha->advertise)) return -ENAMETOOLONG;
  }
  if (!c->zookeeper[0]) {
    ha->leading = true;
    return 0;
  }
  if (strncmp(ha->advertise, "0.0.0.0:", 8) == 0)
    fd_log_warn("fdsched: advertising %s: set [scheduler] advertise to an address nodes reach",
                ha->advertise);
  ha->stall_ms = c->zookeeper_session_ms / 3;
  ha->buf = malloc(SCH_ZK_RECORD_LEN_MAX);
  if (!ha->buf) return -ENOMEM;
  fd_zk_opts_t o = {.hosts = c->zookeeper, .root = c->zookeeper_root,
                    .session_ms = c->zookeeper_session_ms, .who = "fdsched"};
  ha->zk = fd_zk_open(&o);
  if (!ha->zk) {
    int rc = errno ? -errno : -ENOMEM;
    fd_log_error("fdsched: ZooKeeper %s: %s", c->zookeeper, fd_strerror(rc));
    return rc;
  }
  int n = snprintf(ha->self, sizeof(ha->self), HA_TAG_ID "%s", ha->advertise);
  if (n < 0 || (size_t)n >= sizeof(ha->self) || strchr(ha->advertise, '/')) {
    fd_log_error("fdsched: advertise = %s: too long, or has a '/'", ha->advertise);
    return -EINVAL;
  }
  int rc = fd_zk_elect(ha->zk, HA_MEMBERS_DIR, ha->self);
  if (rc) {
    fd_log_error("fdsched: joining the election: %s", fd_strerror(rc));
    return rc;
  }
  ha->conn = FD_ZK_CONNECTING;
  snprintf(ha->refusal, sizeof(ha->refusal), "no fdsched leader: ZooKeeper unreachable (%s)",
           fd_zk_conn_name(ha->conn));
  ha->lost_ms = fd_now_ms();
  fd_log_info("fdsched: standing for election as %s under %s%s/" HA_MEMBERS_DIR
              " (session %u ms); serving nothing until elected",
              ha->self, c->zookeeper, c->zookeeper_root, c->zookeeper_session_ms);
  return 0;
}

void fdsched_ha_stop(fdsched_t *d) {
  if (d->ha.zk) fd_zk_close(d->ha.zk);
  d->ha.zk = NULL;
  free(d->ha.buf);
  d->ha.buf = NULL;
}
