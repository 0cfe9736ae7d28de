/* db.c — the durable state: membership registrations and the version
 * registry, changed only through logged operations.
 *
 * Each change is encoded as one operation record, appended to the store
 * (durable when the append returns) and only then applied and acknowledged;
 * replay applies the same records in the same order to the same empty state,
 * so it reaches the same state (an operation that was refused at run time is
 * refused again on replay, and changes nothing either time). Cheap
 * preconditions are checked before logging so that a refused version does
 * not put its manifest in the log. A checkpoint is the whole state written as
 * the operations that would rebuild it, each prefixed by its length.
 *
 * Record layout (little-endian): u8 op, then the op's fields; a string is a
 * u16 length and its bytes, a blob a u32 length and its bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "scheduler.h"

enum { OP_NODE = 1, OP_DRAIN = 2, OP_LEAVE = 3, OP_VERSION = 4, OP_ORIGIN = 5, OP_RETIRE = 6,
       OP_COMMIT = 7, OP_UNDRAIN = 8 };

struct sch_db {
  sch_store_t *store;
  sch_members_t *m;
  sch_registry_t *r;
  uint64_t now_ms; /* replay: nodes come back alive as of this time */
  uint64_t since_ckpt; /* log records after the last checkpoint */
};

/* ---- encoding ---- */

typedef struct buf {
  uint8_t *p;
  size_t len, cap;
  bool oom;
} buf_t;

static void put(buf_t *b, const void *src, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
}
static void put_u8(buf_t *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(buf_t *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf_t *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf_t *b, const char *s) {
  uint16_t n = (uint16_t)strlen(s);
  put(b, &n, 2);
  put(b, s, n);
}

typedef struct cur {
  const uint8_t *p;
  size_t left;
  bool bad;
} cur_t;

static const uint8_t *take(cur_t *c, size_t n) {
  if (c->bad || n > c->left) {
    c->bad = true;
    return NULL;
  }
  const uint8_t *at = c->p;
  c->p += n;
  c->left -= n;
  return at;
}
static uint8_t get_u8(cur_t *c) { const uint8_t *p = take(c, 1); return p ? *p : 0; }
static uint32_t get_u32(cur_t *c) {
  uint32_t v = 0;
  const uint8_t *p = take(c, 4);
  if (p) memcpy(&v, p, 4);
  return v;
}
static uint64_t get_u64(cur_t *c) {
  uint64_t v = 0;
  const uint8_t *p = take(c, 8);
  if (p) memcpy(&v, p, 8);
  return v;
}
/* Copies a string into out (cap bytes with the NUL); marks bad when too long. */
static void get_str(cur_t *c, char *out, size_t cap) {
  uint16_t n = 0;
  const uint8_t *p = take(c, 2);
  if (p) memcpy(&n, p, 2);
  if (n >= cap) c->bad = true;
  p = take(c, n);
  if (!p) {
    out[0] = 0;
    return;
  }
  memcpy(out, p, n);
  out[n] = 0;
}

/* A list of origin ids: a count, then each. */
static void put_names(buf_t *b, const char *const *names, uint32_t n) {
  put_u32(b, n);
  for (uint32_t i = 0; i < n; i++) put_str(b, names[i]);
}

typedef char db_name_t[FD_NAME_LEN_MAX + 1];

/* Reads put_names' list into names (ptrs point at them); false when it
 * holds more than SCH_ORIGINS_MAX. */
static bool get_names(cur_t *c, db_name_t *names, const char **ptrs, uint32_t *n) {
  *n = get_u32(c);
  if (*n > SCH_ORIGINS_MAX) return false;
  for (uint32_t i = 0; i < *n; i++) {
    get_str(c, names[i], sizeof(names[i]));
    ptrs[i] = names[i];
  }
  return true;
}

static void enc_node(buf_t *b, const sch_node_info_t *ni) {
  put_u8(b, OP_NODE);
  put_str(b, ni->id);
  put_str(b, ni->region);
  put_str(b, ni->zone);
  put_str(b, ni->address);
  put_u64(b, ni->nic_bps);
  put_u64(b, ni->free_disk_bytes);
  put_u8(b, ni->origin);
  put_u64(b, ni->upload_bps_max); /* absent from records written before the caps */
  put_u64(b, ni->download_bps_max);
}

static void enc_id_op(buf_t *b, uint8_t op, const char *id) {
  put_u8(b, op);
  put_str(b, id);
}

static void enc_version(buf_t *b, const sch_version_info_t *vi) {
  put_u8(b, OP_VERSION);
  put_str(b, vi->file);
  put_u64(b, vi->version);
  put_u64(b, vi->size_bytes);
  put_u32(b, vi->chunk_size_bytes);
  put_u32(b, (uint32_t)vi->manifest_len);
  put(b, vi->manifest, vi->manifest_len);
  put_names(b, vi->origins, vi->origin_count);
  put_u8(b, vi->pending);
}

static void enc_file_op(buf_t *b, uint8_t op, const char *file, uint64_t version,
                        const char *origin) {
  put_u8(b, op);
  put_str(b, file);
  put_u64(b, version);
  if (origin) put_str(b, origin);
}

/* ---- applying ---- */

/* Applies one record. Returns the operation's own result, or -EBADMSG when
 * the record cannot be decoded. */
static int apply(sch_db_t *db, const uint8_t *rec, size_t len) {
  cur_t c = {rec, len, false};
  uint8_t op = get_u8(&c);
  char id[FD_NAME_LEN_MAX + 1], region[FD_NAME_LEN_MAX + 1], zone[FD_NAME_LEN_MAX + 1];
  char address[SCH_ADDRESS_LEN_MAX];
  switch (op) {
    case OP_NODE: {
      get_str(&c, id, sizeof(id));
      get_str(&c, region, sizeof(region));
      get_str(&c, zone, sizeof(zone));
      get_str(&c, address, sizeof(address));
      sch_node_info_t ni = {.id = id, .region = region, .zone = zone, .address = address};
      ni.nic_bps = get_u64(&c);
      ni.free_disk_bytes = get_u64(&c);
      ni.origin = get_u8(&c) != 0;
      if (c.left) { /* the caps: absent from records written before them */
        ni.upload_bps_max = get_u64(&c);
        ni.download_bps_max = get_u64(&c);
      }
      if (c.bad || c.left) return -EBADMSG;
      return sch_members_register(db->m, &ni, db->now_ms, NULL);
    }
    case OP_DRAIN:
    case OP_UNDRAIN:
    case OP_LEAVE: {
      get_str(&c, id, sizeof(id));
      if (c.bad || c.left) return -EBADMSG;
      int slot = sch_members_find(db->m, id);
      if (slot < 0) return slot;
      if (op == OP_DRAIN) return sch_members_drain(db->m, (uint32_t)slot);
      if (op == OP_UNDRAIN) return sch_members_undrain(db->m, (uint32_t)slot);
      return sch_members_leave(db->m, (uint32_t)slot);
    }
    case OP_VERSION: {
      char file[FD_NAME_LEN_MAX + 1];
      db_name_t origins[SCH_ORIGINS_MAX];
      const char *optr[SCH_ORIGINS_MAX];
      get_str(&c, file, sizeof(file));
      sch_version_info_t vi = {.file = file};
      vi.version = get_u64(&c);
      vi.size_bytes = get_u64(&c);
      vi.chunk_size_bytes = get_u32(&c);
      vi.manifest_len = get_u32(&c);
      vi.manifest = take(&c, vi.manifest_len);
      if (!get_names(&c, origins, optr, &vi.origin_count)) return -EBADMSG;
      vi.origins = optr;
      vi.pending = get_u8(&c) != 0;
      if (c.bad || c.left) return -EBADMSG;
      return sch_registry_add(db->r, &vi);
    }
    case OP_ORIGIN:
    case OP_COMMIT:
    case OP_RETIRE: {
      char file[FD_NAME_LEN_MAX + 1];
      get_str(&c, file, sizeof(file));
      uint64_t version = get_u64(&c);
      if (op == OP_ORIGIN) get_str(&c, id, sizeof(id));
      db_name_t holders[SCH_ORIGINS_MAX];
      const char *hptr[SCH_ORIGINS_MAX];
      uint32_t nh = 0; /* the holders: absent from records written before them */
      if (op == OP_COMMIT && c.left && !get_names(&c, holders, hptr, &nh)) return -EBADMSG;
      if (c.bad || c.left) return -EBADMSG;
      if (op == OP_ORIGIN) return sch_registry_add_origin(db->r, file, version, id);
      if (op == OP_COMMIT) return sch_registry_commit(db->r, file, version, hptr, nh);
      return sch_registry_retire(db->r, file, version);
    }
    default:
      return -EBADMSG;
  }
}

static int replay_visit(void *arg, bool is_checkpoint, const uint8_t *data, size_t len) {
  sch_db_t *db = arg;
  if (!is_checkpoint) {
    db->since_ckpt++;
    int rc = apply(db, data, len);
    return rc == -EBADMSG ? rc : 0; /* refused then, refused now */
  }
  cur_t c = {data, len, false};
  while (c.left > 0) {
    uint32_t n = get_u32(&c);
    const uint8_t *rec = take(&c, n);
    if (c.bad) return -EBADMSG;
    int rc = apply(db, rec, n);
    if (rc) {
      fd_log_error("db: checkpoint record refused: %s", fd_strerror(rc));
      return -EBADMSG; /* a checkpoint is a valid state; it cannot refuse itself */
    }
  }
  return 0;
}

sch_db_t *sch_db_open(sch_store_t *store, const sch_members_config_t *cfg, uint64_t now_ms,
                      int *err) {
  sch_db_t *db = calloc(1, sizeof(*db));
  int rc = -ENOMEM;
  if (!db) goto out_store;
  db->store = store;
  db->now_ms = now_ms;
  db->m = sch_members_create(cfg);
  db->r = sch_registry_create();
  if (!db->m || !db->r) {
    rc = db->m ? -ENOMEM : -EINVAL;
    goto out_db;
  }
  if ((rc = sch_store_replay(store, replay_visit, db))) goto out_db;
  return db;
out_db:
  sch_members_destroy(db->m);
  sch_registry_destroy(db->r);
  free(db);
out_store:
  sch_store_close(store);
  *err = rc;
  return NULL;
}

void sch_db_close(sch_db_t *db) {
  if (!db) return;
  sch_store_close(db->store);
  sch_members_destroy(db->m);
  sch_registry_destroy(db->r);
  free(db);
}

sch_members_t *sch_db_members(sch_db_t *db) { return db->m; }
sch_registry_t *sch_db_registry(sch_db_t *db) { return db->r; }

/* Logs the record, then applies it. */
static int commit(sch_db_t *db, buf_t *b) {
  if (b->oom) {
    free(b->p);
    return -ENOMEM;
  }
  struct iovec iov = {b->p, b->len};
  int rc = sch_store_append(db->store, &iov, 1);
  if (rc) {
    fd_log_error("db: cannot log an operation: %s", fd_strerror(rc));
    free(b->p);
    return rc;
  }
  db->since_ckpt++;
  rc = apply(db, b->p, b->len);
  free(b->p);
  return rc;
}

int sch_db_register_node(sch_db_t *db, const sch_node_info_t *info, uint64_t now_ms,
                         uint32_t *slot_out) {
  if (!info || !info->id || !info->region || !info->zone || !info->address) return -EINVAL;
  /* Lengths are checked before logging so that the record always decodes;
   * the rest (-EEXIST, -ENOSPC) is decided by applying it. */
  if (strlen(info->id) > FD_NAME_LEN_MAX || strlen(info->region) > FD_NAME_LEN_MAX ||
      strlen(info->zone) > FD_NAME_LEN_MAX || strlen(info->address) >= SCH_ADDRESS_LEN_MAX)
    return -EMSGSIZE;
  buf_t b = {0};
  enc_node(&b, info);
  db->now_ms = now_ms;
  int rc = commit(db, &b);
  if (!rc && slot_out) *slot_out = (uint32_t)sch_members_find(db->m, info->id);
  return rc;
}

static int id_op(sch_db_t *db, uint8_t op, uint32_t slot) {
  const sch_node_t *n = sch_members_node(db->m, slot);
  if (!n) return -ENOENT;
  /* Refused before logging, as applying it would refuse it. */
  if (n->state == SCH_NODE_LEFT || (op == OP_DRAIN && n->drained) ||
      (op == OP_UNDRAIN && !n->drained))
    return -EALREADY;
  buf_t b = {0};
  enc_id_op(&b, op, n->id);
  return commit(db, &b);
}

int sch_db_drain_node(sch_db_t *db, uint32_t slot) { return id_op(db, OP_DRAIN, slot); }
int sch_db_undrain_node(sch_db_t *db, uint32_t slot) { return id_op(db, OP_UNDRAIN, slot); }
int sch_db_leave_node(sch_db_t *db, uint32_t slot) { return id_op(db, OP_LEAVE, slot); }

int sch_db_add_version(sch_db_t *db, const sch_version_info_t *info) {
  if (!info || !info->file || !info->manifest) return -EINVAL;
  if (strlen(info->file) > FD_NAME_LEN_MAX || info->manifest_len > SCH_MANIFEST_LEN_MAX)
    return -EMSGSIZE;
  if (info->origin_count > SCH_ORIGINS_MAX) return -EINVAL;
  for (uint32_t i = 0; i < info->origin_count; i++)
    if (!info->origins[i] || strlen(info->origins[i]) > FD_NAME_LEN_MAX) return -EINVAL;
  if (sch_registry_find(db->r, info->file, info->version)) return -EEXIST;
  const sch_version_t *newest = sch_registry_newest(db->r, info->file);
  if (newest && info->version <= newest->version) return -ERANGE;
  buf_t b = {0};
  enc_version(&b, info);
  return commit(db, &b);
}

int sch_db_add_origin(sch_db_t *db, const char *file, uint64_t version, const char *origin) {
  if (!file || !origin || strlen(file) > FD_NAME_LEN_MAX || strlen(origin) > FD_NAME_LEN_MAX)
    return -EINVAL;
  if (!sch_registry_find(db->r, file, version)) return -ENOENT;
  buf_t b = {0};
  enc_file_op(&b, OP_ORIGIN, file, version, origin);
  return commit(db, &b);
}

int sch_db_commit_version(sch_db_t *db, const char *file, uint64_t version,
                          const char *const *origins, uint32_t n) {
  const sch_version_t *v = file ? sch_registry_find(db->r, file, version) : NULL;
  if (!v) return -ENOENT;
  if (!v->pending) return -EALREADY;
  if (n > SCH_ORIGINS_MAX) return -EINVAL;
  for (uint32_t i = 0; i < n; i++)
    if (!origins[i] || !origins[i][0] || strlen(origins[i]) > FD_NAME_LEN_MAX) return -EINVAL;
  buf_t b = {0};
  enc_file_op(&b, OP_COMMIT, file, version, NULL);
  put_names(&b, origins, n); /* the holders (absent from records written before them) */
  return commit(db, &b);
}

int sch_db_retire_version(sch_db_t *db, const char *file, uint64_t version) {
  if (!file || !sch_registry_find(db->r, file, version)) return -ENOENT;
  buf_t b = {0};
  enc_file_op(&b, OP_RETIRE, file, version, NULL);
  return commit(db, &b);
}

static void snap_add(buf_t *snap, buf_t *rec) {
  put_u32(snap, (uint32_t)rec->len);
  put(snap, rec->p, rec->len);
  snap->oom |= rec->oom;
  rec->len = 0;
}

int sch_db_checkpoint(sch_db_t *db) {
  buf_t snap = {0}, rec = {0};
  uint32_t count = sch_members_count(db->m);
  for (uint32_t slot = 0; slot < count; slot++) {
    const sch_node_t *n = sch_members_node(db->m, slot);
    sch_node_info_t ni = {.id = n->id,
                          .region = sch_members_region_name(db->m, n->region),
                          .zone = sch_members_zone_name(db->m, n->zone),
                          .address = n->address,
                          .nic_bps = n->nic_bps,
                          .upload_bps_max = n->upload_bps_max,
                          .download_bps_max = n->download_bps_max,
                          .free_disk_bytes = n->free_disk_bytes,
                          .origin = n->origin};
    enc_node(&rec, &ni);
    snap_add(&snap, &rec);
    if (n->drained || n->state == SCH_NODE_LEFT) {
      enc_id_op(&rec, n->drained ? OP_DRAIN : OP_LEAVE, n->id);
      snap_add(&snap, &rec);
    }
  }
  for (uint32_t i = 0; i < sch_registry_count(db->r); i++) {
    const sch_version_t *v = sch_registry_at(db->r, i);
    const char *optr[SCH_ORIGINS_MAX];
    for (uint32_t o = 0; o < v->origin_count; o++) optr[o] = v->origins[o];
    sch_version_info_t vi = {.file = v->file,
                             .version = v->version,
                             .size_bytes = v->size_bytes,
                             .chunk_size_bytes = v->chunk_size_bytes,
                             .manifest = v->manifest,
                             .manifest_len = v->manifest_len,
                             .pending = v->pending,
                             .origin_count = v->origin_count,
                             .origins = optr};
    enc_version(&rec, &vi);
    snap_add(&snap, &rec);
  }
  free(rec.p);
  int rc = snap.oom ? -ENOMEM
                    : sch_store_checkpoint(db->store, snap.p ? snap.p : (uint8_t *)"", snap.len);
  free(snap.p);
  if (rc == 0) db->since_ckpt = 0;
  return rc;
}

int sch_db_maybe_checkpoint(sch_db_t *db, uint64_t every_ops, bool *done) {
  if (done) *done = false;
  if (every_ops == 0) every_ops = SCH_CHECKPOINT_EVERY_OPS_DEFAULT;
  if (db->since_ckpt < every_ops) return 0;
  int rc = sch_db_checkpoint(db);
  if (rc == 0 && done) *done = true;
  return rc;
}

uint64_t sch_db_ops_since_checkpoint(const sch_db_t *db) { return db->since_ckpt; }
