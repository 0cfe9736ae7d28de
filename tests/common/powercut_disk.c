/* powercut_disk.c — the model disk: the recorder's log replayed as durable
 * state plus pending changes, a power cut that resolves what was pending,
 * and the result written out as a real directory tree (model in powercut.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "powercut_int.h"

#define PC_SECTOR 512u

typedef struct pc_dirent {
  const char *name; /* the log's */
  uint32_t node;
} pc_dirent_t;

typedef struct pc_map {
  pc_dirent_t *e;
  uint32_t n, cap;
} pc_map_t;

typedef struct pc_bytes {
  uint8_t *p;
  uint64_t size, cap;
} pc_bytes_t;

/* One node's state: a directory's maps or a file's bytes, and its pending
 * log entries in completion order. */
typedef struct pc_state {
  pc_map_t durable, latest;
  pc_bytes_t data;
  uint32_t *pending;
  uint32_t npending, cap_pending;
} pc_state_t;

struct pc_disk {
  const pc_rec_t *r;
  pc_state_t *st;
  uint32_t nst;
  uint32_t pos; /* entries replayed */
};

/* Resolution of one cut: all (no cut: everything applied) or at random. */
typedef struct pc_resolve {
  bool all;
  uint64_t rng;
  FILE *trace;
  pc_cut_stats_t *stats;
  uint32_t *extra; /* in flight at the cut */
  uint32_t nextra;
} pc_resolve_t;

/* ---- directory maps ---------------------------------------------------------- */

static int map_find(const pc_map_t *m, const char *name) {
  for (uint32_t i = 0; i < m->n; i++)
    if (strcmp(m->e[i].name, name) == 0) return (int)i;
  return -1;
}

static void map_set(pc_map_t *m, const char *name, uint32_t node) {
  int i = map_find(m, name);
  if (i >= 0) {
    m->e[i].node = node;
    return;
  }
  m->e = pc_grow(m->e, &m->cap, m->n + 1, sizeof(*m->e));
  m->e[m->n++] = (pc_dirent_t){name, node};
}

static void map_del(pc_map_t *m, const char *name) {
  int i = map_find(m, name);
  if (i < 0) return;
  memmove(&m->e[i], &m->e[i + 1], (m->n - (uint32_t)i - 1) * sizeof(*m->e));
  m->n--;
}

static void map_copy(pc_map_t *dst, const pc_map_t *src) {
  dst->n = 0;
  if (src->n == 0) return;
  dst->e = pc_grow(dst->e, &dst->cap, src->n, sizeof(*dst->e));
  memcpy(dst->e, src->e, (size_t)src->n * sizeof(*src->e));
  dst->n = src->n;
}

static void map_apply(pc_map_t *m, const pc_entry_t *e) {
  switch (e->kind) {
    case PC_LINK:
      map_set(m, e->name, e->child);
      break;
    case PC_UNLINK:
      map_del(m, e->name);
      break;
    case PC_RENAME: {
      int i = map_find(m, e->name);
      if (i < 0) return;
      uint32_t node = m->e[i].node;
      map_del(m, e->name);
      map_set(m, e->name2, node);
      break;
    }
    default:
      FD_ASSERT(!"not a directory operation");
  }
}

/* ---- file bytes ----------------------------------------------------------------- */

static void bytes_resize(pc_bytes_t *b, uint64_t size) {
  if (size > b->cap) {
    uint64_t c = b->cap ? b->cap : 4096;
    while (c < size) c *= 2;
    b->p = realloc(b->p, c);
    FD_ASSERT(b->p != NULL);
    b->cap = c;
  }
  if (size > b->size) memset(b->p + b->size, 0, size - b->size);
  b->size = size;
}

static void bytes_write(pc_bytes_t *b, uint64_t off, const uint8_t *p, uint64_t len) {
  if (len == 0) return;
  if (off + len > b->size) bytes_resize(b, off + len);
  memcpy(b->p + off, p, len);
}

static void bytes_apply(pc_bytes_t *b, const pc_entry_t *e) {
  switch (e->kind) {
    case PC_WRITE:
      bytes_write(b, e->off, e->data, e->len);
      break;
    case PC_TRUNC:
      bytes_resize(b, e->len);
      break;
    case PC_EXTEND:
      if (e->len > b->size) bytes_resize(b, e->len);
      break;
    default:
      FD_ASSERT(!"not a file operation");
  }
}

/* ---- replay ------------------------------------------------------------------------ */

static pc_state_t *state(pc_disk_t *d, uint32_t node) {
  FD_ASSERT(node < d->r->nnodes);
  d->st = pc_grow(d->st, &d->nst, node + 1, sizeof(*d->st));
  return &d->st[node];
}

static bool is_dirop(pc_kind_t k) { return k == PC_LINK || k == PC_UNLINK || k == PC_RENAME; }
static bool is_fileop(pc_kind_t k) { return k == PC_WRITE || k == PC_TRUNC || k == PC_EXTEND; }

/* Makes the first n pending entries of s durable. */
static void make_durable(const pc_disk_t *d, pc_state_t *s, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const pc_entry_t *e = &d->r->log[s->pending[i]];
    if (is_dirop(e->kind))
      map_apply(&s->durable, e);
    else
      bytes_apply(&s->data, e);
  }
  if (n == 0) return;
  memmove(s->pending, s->pending + n, (s->npending - n) * sizeof(*s->pending));
  s->npending -= n;
}

pc_disk_t *pc_disk_new(const pc_rec_t *r) {
  pc_disk_t *d = calloc(1, sizeof(*d));
  FD_ASSERT(d != NULL);
  d->r = r;
  state(d, 0);
  return d;
}

pc_disk_t *pc_disk_create(const pc_rec_t *r) {
  pc_disk_t *d = pc_disk_new(r);
  pc_disk_advance(d, r->begin);
  return d;
}

void pc_disk_destroy(pc_disk_t *d) {
  if (!d) return;
  for (uint32_t i = 0; i < d->nst; i++) {
    free(d->st[i].durable.e);
    free(d->st[i].latest.e);
    free(d->st[i].data.p);
    free(d->st[i].pending);
  }
  free(d->st);
  free(d);
}

void pc_disk_advance(pc_disk_t *d, uint32_t to) {
  FD_ASSERT(to >= d->pos && to <= d->r->nlog);
  for (; d->pos < to; d->pos++) {
    const pc_entry_t *e = &d->r->log[d->pos];
    if (is_dirop(e->kind) || is_fileop(e->kind)) {
      pc_state_t *s = state(d, e->node);
      if (is_dirop(e->kind)) map_apply(&s->latest, e);
      s->pending = pc_grow(s->pending, &s->cap_pending, s->npending + 1, sizeof(*s->pending));
      s->pending[s->npending++] = d->pos;
    } else if (e->kind == PC_SYNC) {
      pc_state_t *s = state(d, e->node);
      uint32_t n = 0;
      while (n < s->npending && s->pending[n] < e->queued_at) n++;
      make_durable(d, s, n);
    } else if (e->kind == PC_SYNC_ALL) {
      for (uint32_t i = 0; i < d->nst; i++) make_durable(d, &d->st[i], d->st[i].npending);
    }
  }
}

uint32_t pc_disk_lookup(const pc_disk_t *d, uint32_t dir, const char *name) {
  if (dir >= d->nst) return PC_NONE;
  const pc_map_t *m = &d->st[dir].latest;
  int i = map_find(m, name);
  return i < 0 ? PC_NONE : m->e[i].node;
}

/* ---- the cut ------------------------------------------------------------------------- */

static uint32_t pick(pc_resolve_t *rs, uint32_t n) { return (uint32_t)(pc_rand(&rs->rng) % n); }

/* node's pending entries, then those of the operations in flight. */
static uint32_t ops_of(const pc_disk_t *d, const pc_resolve_t *rs, uint32_t node, uint32_t *out) {
  uint32_t n = 0;
  if (node < d->nst && d->st[node].npending) {
    memcpy(out, d->st[node].pending, d->st[node].npending * sizeof(*out));
    n = d->st[node].npending;
  }
  for (uint32_t i = 0; i < rs->nextra; i++)
    if (d->r->log[rs->extra[i]].node == node) out[n++] = rs->extra[i];
  return n;
}

static void trace_op(pc_resolve_t *rs, const char *path, const pc_entry_t *e, const char *fate) {
  if (!rs->trace) return;
  switch (e->kind) {
    case PC_LINK:
      fprintf(rs->trace, "  %s/: create %s: %s\n", path, e->name, fate);
      break;
    case PC_UNLINK:
      fprintf(rs->trace, "  %s/: unlink %s: %s\n", path, e->name, fate);
      break;
    case PC_RENAME:
      fprintf(rs->trace, "  %s/: rename %s -> %s: %s\n", path, e->name, e->name2, fate);
      break;
    case PC_WRITE:
      fprintf(rs->trace, "  %s: write %llu bytes at %llu: %s\n", path, (unsigned long long)e->len,
              (unsigned long long)e->off, fate);
      break;
    default:
      fprintf(rs->trace, "  %s: %s to %llu: %s\n", path, e->kind == PC_TRUNC ? "truncate" : "extend",
              (unsigned long long)e->len, fate);
  }
}

/* A pending write lost some of its sectors: each piece between 512-byte
 * boundaries of the file lands or not. */
static void write_torn(pc_resolve_t *rs, pc_bytes_t *b, const pc_entry_t *e, char *fate,
                       size_t fate_len) {
  uint64_t off = e->off, end = e->off + e->len;
  size_t k = (size_t)snprintf(fate, fate_len, "torn, sectors ");
  while (off < end) {
    uint64_t next = FD_MIN(end, (off / PC_SECTOR + 1) * PC_SECTOR);
    bool lands = pick(rs, 2) == 0;
    if (lands) bytes_write(b, off, e->data + (off - e->off), next - off);
    if (k + 2 < fate_len) fate[k++] = lands ? '1' : '0';
    off = next;
  }
  fate[FD_MIN(k, fate_len - 1)] = 0;
}

static int write_file(const char *path, const pc_bytes_t *b) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  int rc = 0;
  uint64_t off = 0;
  while (off < b->size && !rc) {
    ssize_t w = pwrite(fd, b->p + off, b->size - off, (off_t)off);
    if (w <= 0) rc = w < 0 ? -errno : -EIO;
    else off += (uint64_t)w;
  }
  close(fd);
  return rc;
}

static int out_file(pc_disk_t *d, pc_resolve_t *rs, uint32_t node, const char *path) {
  pc_bytes_t b = {0};
  const pc_bytes_t *dur = node < d->nst ? &d->st[node].data : &b;
  bytes_resize(&b, dur->size);
  if (dur->size) memcpy(b.p, dur->p, dur->size);
  uint32_t *ops = malloc((d->r->nlog + 1) * sizeof(*ops));
  FD_ASSERT(ops != NULL);
  uint32_t n = ops_of(d, rs, node, ops);
  for (uint32_t i = 0; i < n; i++) {
    const pc_entry_t *e = &d->r->log[ops[i]];
    char fate[600] = "applied";
    if (rs->all) {
      bytes_apply(&b, e);
      continue;
    }
    uint32_t way = e->kind == PC_WRITE ? pick(rs, 3) : pick(rs, 2);
    if (e->kind == PC_WRITE) rs->stats->writes_pending++;
    if (way == 0) {
      bytes_apply(&b, e);
    } else if (way == 1) {
      snprintf(fate, sizeof(fate), "lost");
      if (e->kind == PC_WRITE) rs->stats->writes_lost++;
    } else {
      write_torn(rs, &b, e, fate, sizeof(fate));
      rs->stats->writes_torn++;
    }
    trace_op(rs, path, e, fate);
  }
  free(ops);
  int rc = write_file(path, &b);
  free(b.p);
  return rc;
}

static int out_dir(pc_disk_t *d, pc_resolve_t *rs, uint32_t node, const char *path) {
  if (mkdir(path, 0755) != 0) return -errno;
  pc_map_t m = {0};
  if (node < d->nst) map_copy(&m, &d->st[node].durable);
  uint32_t *ops = malloc((d->r->nlog + 1) * sizeof(*ops));
  FD_ASSERT(ops != NULL);
  uint32_t n = ops_of(d, rs, node, ops);
  uint32_t keep = rs->all ? n : pick(rs, n + 1);
  if (!rs->all) {
    rs->stats->dirops_pending += n;
    rs->stats->dirops_lost += n - keep;
  }
  for (uint32_t i = 0; i < n; i++) {
    const pc_entry_t *e = &d->r->log[ops[i]];
    if (i < keep) map_apply(&m, e);
    if (!rs->all) trace_op(rs, path, e, i < keep ? "applied" : "lost");
  }
  free(ops);
  int rc = 0;
  for (uint32_t i = 0; i < m.n && !rc; i++) {
    char child[PATH_MAX];
    if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, m.e[i].name) >= sizeof(child)) {
      rc = -ENAMETOOLONG;
      break;
    }
    const pc_node_t *c = &d->r->nodes[m.e[i].node];
    if (c->type == PC_DIR)
      rc = out_dir(d, rs, m.e[i].node, child);
    else if (c->type == PC_SYMLINK)
      rc = symlink(c->target, child) == 0 ? 0 : -errno;
    else
      rc = out_file(d, rs, m.e[i].node, child);
  }
  free(m.e);
  return rc;
}

int pc_disk_write_all(pc_disk_t *d, const char *out) {
  pc_cut_stats_t stats = {0};
  pc_resolve_t rs = {.all = true, .stats = &stats};
  return out_dir(d, &rs, 0, out);
}

int pc_disk_cut(pc_disk_t *d, uint64_t seed, const char *out, FILE *trace,
                pc_cut_stats_t *stats) {
  pc_cut_stats_t none = {0};
  pc_resolve_t rs = {.rng = seed, .trace = trace, .stats = stats ? stats : &none};
  *rs.stats = (pc_cut_stats_t){0};
  /* Submitted before the cut, completed after it: may or may not have happened. */
  rs.extra = malloc((d->r->nlog + 1) * sizeof(*rs.extra));
  FD_ASSERT(rs.extra != NULL);
  for (uint32_t i = d->pos; i < d->r->nlog; i++) {
    const pc_entry_t *e = &d->r->log[i];
    if (e->queued_at <= d->pos && (is_dirop(e->kind) || is_fileop(e->kind)))
      rs.extra[rs.nextra++] = i;
  }
  int rc = out_dir(d, &rs, 0, out);
  free(rs.extra);
  return rc;
}
