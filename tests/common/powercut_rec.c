/* powercut_rec.c — the recorder: an fd_io hook that turns every change the
 * code under test makes to the disk into a log entry naming model nodes
 * (files are told apart by inode, names by directory), with the bytes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "powercut_int.h"

static char *dup_str(const char *s) {
  char *p = strdup(s ? s : "");
  FD_ASSERT(p != NULL);
  return p;
}

__attribute__((format(printf, 2, 3))) static void fail(pc_rec_t *r, const char *fmt, ...) {
  if (r->err[0]) return; /* the first one is the one to fix */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, sizeof(r->err), fmt, ap);
  va_end(ap);
}

static uint32_t node_new(pc_rec_t *r, pc_type_t type, dev_t dev, ino_t ino, const char *target) {
  r->nodes = pc_grow(r->nodes, &r->cap_nodes, r->nnodes + 1, sizeof(*r->nodes));
  r->nodes[r->nnodes] = (pc_node_t){type, dev, ino, target ? dup_str(target) : NULL};
  return r->nnodes++;
}

/* The newest node with this inode: a number the kernel reused names the new file. */
static uint32_t node_of(const pc_rec_t *r, const struct stat *st) {
  for (uint32_t i = r->nnodes; i-- > 0;)
    if (r->nodes[i].type != PC_SYMLINK && r->nodes[i].dev == st->st_dev &&
        r->nodes[i].ino == st->st_ino)
      return i;
  return PC_NONE;
}

static pc_entry_t *log_add(pc_rec_t *r, pc_kind_t kind, uint32_t queued_at, uint32_t node) {
  r->log = pc_grow(r->log, &r->cap_log, r->nlog + 1, sizeof(*r->log));
  pc_entry_t *e = &r->log[r->nlog];
  *e = (pc_entry_t){.kind = kind, .queued_at = queued_at, .node = node, .child = PC_NONE};
  return e;
}

/* The entry just filled in is part of the log: the latest view follows it. */
static void log_commit(pc_rec_t *r) {
  r->nlog++;
  if (r->latest) pc_disk_advance(r->latest, r->nlog);
}

/* ---- from descriptors and names to nodes --------------------------------------------- */

/* The directory that holds name (relative to dir_fd, or a path), and the
 * last component in *base. */
static uint32_t dir_of(pc_rec_t *r, int dir_fd, const char *name, const char **base) {
  const char *slash = strrchr(name, '/');
  struct stat st;
  int rc;
  if (slash) {
    char parent[PATH_MAX];
    size_t n = (size_t)(slash - name);
    if (n == 0) n = 1; /* "/x" */
    if (n >= sizeof(parent)) return PC_NONE;
    memcpy(parent, name, n);
    parent[n] = 0;
    rc = fstatat(dir_fd, parent, &st, 0);
    *base = slash + 1;
  } else {
    rc = dir_fd == AT_FDCWD ? stat(".", &st) : fstat(dir_fd, &st);
    *base = name;
  }
  uint32_t node = rc == 0 && S_ISDIR(st.st_mode) ? node_of(r, &st) : PC_NONE;
  if (node == PC_NONE) fail(r, "%s: its directory is not under the recorded root", name);
  return node;
}

/* The node of a regular file or directory open as fd; PC_NONE (and no
 * error) for anything else the hook may see (a socket written by the ring). */
static uint32_t node_of_fd(pc_rec_t *r, int fd, bool *is_dir) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) return PC_NONE;
  *is_dir = S_ISDIR(st.st_mode);
  uint32_t node = node_of(r, &st);
  if (node == PC_NONE) fail(r, "fd %d: a file the recorder never saw created", fd);
  return node;
}

static uint8_t *copy_iov(const struct iovec *iov, int iovcnt, uint64_t len) {
  uint8_t *p = malloc(len ? len : 1), *q = p;
  FD_ASSERT(p != NULL);
  for (int i = 0; i < iovcnt && len; i++) {
    size_t n = FD_MIN(len, iov[i].iov_len);
    memcpy(q, iov[i].iov_base, n);
    q += n;
    len -= n;
  }
  return p;
}

/* ---- one change -------------------------------------------------------------------------- */

static void record_open(pc_rec_t *r, const fd_io_event_t *ev, uint32_t q) {
  const char *base;
  uint32_t dir = dir_of(r, ev->dir_fd, ev->name, &base);
  struct stat st;
  if (dir == PC_NONE || fstat(ev->res, &st) != 0) return;
  uint32_t cur = pc_disk_lookup(r->latest, dir, base);
  if (cur != PC_NONE && r->nodes[cur].dev == st.st_dev && r->nodes[cur].ino == st.st_ino) {
    if (ev->flags & O_TRUNC) {
      log_add(r, PC_TRUNC, q, cur)->len = 0;
      log_commit(r);
    }
    return;
  }
  pc_entry_t *e = log_add(r, PC_LINK, q, dir);
  e->child = node_new(r, PC_FILE, st.st_dev, st.st_ino, NULL);
  e->name = dup_str(base);
  log_commit(r);
}

static void record_namespace(pc_rec_t *r, const fd_io_event_t *ev, uint32_t q) {
  const char *base, *base2 = NULL;
  uint32_t dir = dir_of(r, ev->dir_fd, ev->name, &base);
  if (dir == PC_NONE) return;
  if (ev->op == FD_IO_RENAME) {
    uint32_t dir2 = dir_of(r, ev->dir_fd2, ev->name2, &base2);
    if (dir2 == PC_NONE) return;
    if (dir2 != dir) {
      fail(r, "rename %s -> %s: across directories, which the model does not hold", ev->name,
           ev->name2);
      return;
    }
  }
  if ((ev->op == FD_IO_RENAME || ev->op == FD_IO_UNLINK) &&
      pc_disk_lookup(r->latest, dir, base) == PC_NONE) {
    fail(r, "%s: renamed or unlinked, but the model has no such name", ev->name);
    return;
  }
  uint32_t child = PC_NONE;
  if (ev->op == FD_IO_SYMLINK) {
    child = node_new(r, PC_SYMLINK, 0, 0, ev->target);
  } else if (ev->op == FD_IO_MKDIR) {
    struct stat st;
    if (fstatat(ev->dir_fd, ev->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      fail(r, "%s: made, then gone", ev->name);
      return;
    }
    child = node_new(r, PC_DIR, st.st_dev, st.st_ino, NULL);
  }
  pc_kind_t kind = ev->op == FD_IO_RENAME ? PC_RENAME : ev->op == FD_IO_UNLINK ? PC_UNLINK : PC_LINK;
  pc_entry_t *e = log_add(r, kind, q, dir);
  e->child = child;
  e->name = dup_str(base);
  if (base2) e->name2 = dup_str(base2);
  log_commit(r);
}

static void record_file(pc_rec_t *r, const fd_io_event_t *ev, uint32_t q) {
  bool is_dir = false;
  uint32_t node = node_of_fd(r, ev->fd, &is_dir);
  if (node == PC_NONE) return;
  if (is_dir && ev->op != FD_IO_FSYNC && ev->op != FD_IO_FDATASYNC) {
    fail(r, "fd %d: a directory written to", ev->fd);
    return;
  }
  pc_entry_t *e;
  switch (ev->op) {
    case FD_IO_WRITE:
      if (ev->res == 0) return;
      e = log_add(r, PC_WRITE, q, node);
      e->off = ev->offset;
      e->len = (uint64_t)ev->res;
      e->data = copy_iov(ev->iov, ev->iovcnt, e->len);
      break;
    case FD_IO_TRUNCATE:
      log_add(r, PC_TRUNC, q, node)->len = ev->len;
      break;
    case FD_IO_FALLOCATE:
      if (ev->flags == FALLOC_FL_KEEP_SIZE) return;
      if (ev->flags != 0) {
        fail(r, "fallocate mode %d is not modelled", ev->flags);
        return;
      }
      log_add(r, PC_EXTEND, q, node)->len = ev->offset + ev->len;
      break;
    case FD_IO_CLONE:
    case FD_IO_COPY: {
      /* The shared (or copied) blocks hold the source's bytes: a write of
       * them, read through a buffered descriptor (the source may be open
       * O_DIRECT). A copy moved res bytes, a clone all it was asked. */
      uint64_t len = ev->op == FD_IO_COPY ? (uint64_t)ev->res : ev->len;
      if (len == 0) return;
      uint8_t *data = malloc(len);
      FD_ASSERT(data != NULL);
      char proc[64];
      snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ev->src_fd);
      int src = open(proc, O_RDONLY | O_CLOEXEC);
      ssize_t got = src >= 0 ? pread(src, data, len, (off_t)ev->src_offset) : -1;
      if (src >= 0) close(src);
      if (got != (ssize_t)len) {
        free(data);
        fail(r, "clone or copy of %llu bytes: cannot read them back", (unsigned long long)len);
        return;
      }
      e = log_add(r, PC_WRITE, q, node);
      e->off = ev->offset;
      e->len = len;
      e->data = data;
      break;
    }
    case FD_IO_FDATASYNC:
    case FD_IO_FSYNC:
      log_add(r, PC_SYNC, q, node);
      break;
    default:
      FD_ASSERT(!"not a file operation");
  }
  log_commit(r);
}

static void record(pc_rec_t *r, const fd_io_event_t *ev, uint32_t queued_at) {
  if (ev->res < 0) return; /* a failed call changed nothing */
  switch (ev->op) {
    case FD_IO_OPEN:
      record_open(r, ev, queued_at);
      break;
    case FD_IO_RENAME:
    case FD_IO_SYMLINK:
    case FD_IO_UNLINK:
    case FD_IO_MKDIR:
      record_namespace(r, ev, queued_at);
      break;
    default:
      record_file(r, ev, queued_at);
  }
}

/* ---- the hook ----------------------------------------------------------------------------- */

static void on_done(void *arg, const fd_io_event_t *ev) {
  pc_rec_t *r = arg;
  record(r, ev, r->nlog);
}

static void on_queued(void *arg, uint64_t id, const fd_io_event_t *ev) {
  pc_rec_t *r = arg;
  r->queued = pc_grow(r->queued, &r->cap_queued, r->nqueued + 1, sizeof(*r->queued));
  pc_queued_t *qd = &r->queued[r->nqueued++];
  *qd = (pc_queued_t){.id = id, .queued_at = r->nlog, .ev = *ev};
  /* The strings and the iovec array are the caller's until the reap; keep
   * copies of the small things, read the bytes when the result is known. */
  qd->ev.name = ev->name ? dup_str(ev->name) : NULL;
  qd->ev.name2 = ev->name2 ? dup_str(ev->name2) : NULL;
  qd->ev.target = ev->target ? dup_str(ev->target) : NULL;
  if (ev->iovcnt > 0) {
    qd->iov = malloc((size_t)ev->iovcnt * sizeof(*qd->iov));
    FD_ASSERT(qd->iov != NULL);
    memcpy(qd->iov, ev->iov, (size_t)ev->iovcnt * sizeof(*qd->iov));
    qd->ev.iov = qd->iov;
  }
}

static void on_reaped(void *arg, uint64_t id, int res) {
  pc_rec_t *r = arg;
  for (uint32_t i = 0; i < r->nqueued; i++) {
    pc_queued_t *qd = &r->queued[i];
    if (qd->id != id) continue;
    qd->ev.res = res;
    record(r, &qd->ev, qd->queued_at);
    free((void *)qd->ev.name);
    free((void *)qd->ev.name2);
    free((void *)qd->ev.target);
    free(qd->iov);
    r->queued[i] = r->queued[--r->nqueued];
    return;
  }
}

/* ---- the snapshot ------------------------------------------------------------------------- */

static int snap_dir(pc_rec_t *r, const char *path, uint32_t dir) {
  DIR *d = opendir(path);
  if (!d) return -errno;
  int rc = 0;
  struct dirent *de;
  while (!rc && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char child[PATH_MAX];
    snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
    struct stat st;
    if (lstat(child, &st) != 0) {
      rc = -errno;
      break;
    }
    pc_entry_t *e = log_add(r, PC_LINK, r->nlog, dir);
    e->name = dup_str(de->d_name);
    if (S_ISDIR(st.st_mode)) {
      e->child = node_new(r, PC_DIR, st.st_dev, st.st_ino, NULL);
      r->nlog++;
      rc = snap_dir(r, child, e->child);
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = readlink(child, target, sizeof(target) - 1);
      if (n < 0) {
        rc = -errno;
        break;
      }
      target[n] = 0;
      e->child = node_new(r, PC_SYMLINK, 0, 0, target);
      r->nlog++;
    } else if (S_ISREG(st.st_mode)) {
      uint32_t known = node_of(r, &st);
      e->child = known != PC_NONE ? known : node_new(r, PC_FILE, st.st_dev, st.st_ino, NULL);
      uint32_t file = e->child;
      r->nlog++;
      if (known != PC_NONE) continue;
      int fd = open(child, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        rc = -errno;
        break;
      }
      pc_entry_t *w = log_add(r, PC_WRITE, r->nlog, file);
      w->len = (uint64_t)st.st_size;
      w->data = malloc(w->len ? w->len : 1);
      FD_ASSERT(w->data != NULL);
      if (pread(fd, w->data, w->len, 0) != st.st_size) rc = -EIO;
      close(fd);
      r->nlog++;
    } else {
      rc = -ENOTSUP; /* sockets, devices: not a store's */
    }
  }
  closedir(d);
  return rc;
}

pc_rec_t *pc_rec_create(const char *root) {
  pc_rec_t *r = calloc(1, sizeof(*r));
  FD_ASSERT(r != NULL);
  snprintf(r->root, sizeof(r->root), "%s", root);
  r->hook = (fd_io_hook_t){.done = on_done, .queued = on_queued, .reaped = on_reaped, .arg = r};
  struct stat st;
  int rc = stat(root, &st) != 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
  if (!rc) {
    node_new(r, PC_DIR, st.st_dev, st.st_ino, NULL);
    rc = snap_dir(r, root, 0);
  }
  if (rc) {
    fprintf(stderr, "powercut: cannot snapshot %s: %s\n", root, strerror(-rc));
    pc_rec_destroy(r);
    return NULL;
  }
  log_add(r, PC_SYNC_ALL, r->nlog, 0);
  r->nlog++;
  r->begin = r->nlog;
  r->latest = pc_disk_new(r);
  pc_disk_advance(r->latest, r->nlog);
  return r;
}

void pc_rec_destroy(pc_rec_t *r) {
  if (!r) return;
  pc_disk_destroy(r->latest);
  for (uint32_t i = 0; i < r->nlog; i++) {
    free(r->log[i].data);
    free(r->log[i].name);
    free(r->log[i].name2);
  }
  for (uint32_t i = 0; i < r->nnodes; i++) free(r->nodes[i].target);
  for (uint32_t i = 0; i < r->nqueued; i++) {
    free((void *)r->queued[i].ev.name);
    free((void *)r->queued[i].ev.name2);
    free((void *)r->queued[i].ev.target);
    free(r->queued[i].iov);
  }
  free(r->queued);
  free(r->log);
  free(r->nodes);
  free(r);
}

const fd_io_hook_t *pc_rec_hook(pc_rec_t *r) { return &r->hook; }

void pc_rec_mark(pc_rec_t *r, uint32_t tag, uint64_t value) {
  pc_entry_t *e = log_add(r, PC_MARK, r->nlog, 0);
  e->tag = tag;
  e->value = value;
  log_commit(r);
}

uint32_t pc_rec_begin(const pc_rec_t *r) { return r->begin; }
uint32_t pc_rec_end(const pc_rec_t *r) { return r->nlog; }

bool pc_rec_marker(const pc_rec_t *r, uint32_t i, uint32_t *tag, uint64_t *value) {
  if (i >= r->nlog || r->log[i].kind != PC_MARK) return false;
  *tag = r->log[i].tag;
  *value = r->log[i].value;
  return true;
}

const char *pc_rec_error(const pc_rec_t *r) { return r->err[0] ? r->err : NULL; }

/* ---- the model against the real tree --------------------------------------------------------- */

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in path (without . and ..); *n of them. NULL on error. */
static char **list_dir(const char *path, size_t *n) {
  DIR *d = opendir(path);
  if (!d) return NULL;
  char **names = NULL;
  size_t cap = 0;
  *n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      char **more = realloc(names, cap * sizeof(*names));
      FD_ASSERT(more != NULL);
      names = more;
    }
    names[(*n)++] = dup_str(de->d_name);
  }
  closedir(d);
  if (!names) return calloc(1, sizeof(*names));
  qsort(names, *n, sizeof(*names), cmp_names);
  return names;
}

static bool same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  bool same = fa && fb;
  while (same) {
    int ca = fgetc(fa), cb = fgetc(fb);
    if (ca != cb) same = false;
    if (ca == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

static bool same_tree(const char *a, const char *b, char *msg, size_t len) {
  size_t na, nb;
  char **la = list_dir(a, &na), **lb = list_dir(b, &nb);
  bool same = la && lb;
  if (!same) snprintf(msg, len, "cannot list %s or %s", a, b);
  for (size_t i = 0, j = 0; same && (i < na || j < nb);) {
    int c = i == na ? 1 : j == nb ? -1 : strcmp(la[i], lb[j]);
    if (c != 0) {
      snprintf(msg, len, "%s/%s is only in %s", c < 0 ? a : b, c < 0 ? la[i] : lb[j],
               c < 0 ? "the real tree" : "the model");
      same = false;
      break;
    }
    char pa[PATH_MAX], pb[PATH_MAX];
    snprintf(pa, sizeof(pa), "%s/%s", a, la[i]);
    snprintf(pb, sizeof(pb), "%s/%s", b, lb[j]);
    struct stat sa, sb;
    if (lstat(pa, &sa) != 0 || lstat(pb, &sb) != 0 ||
        (sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
      snprintf(msg, len, "%s: not the same kind of file in the model", pa);
      same = false;
    } else if (S_ISDIR(sa.st_mode)) {
      same = same_tree(pa, pb, msg, len);
    } else if (S_ISLNK(sa.st_mode)) {
      char ta[PATH_MAX] = {0}, tb[PATH_MAX] = {0};
      same = readlink(pa, ta, sizeof(ta) - 1) >= 0 && readlink(pb, tb, sizeof(tb) - 1) >= 0 &&
             strcmp(ta, tb) == 0;
      if (!same) snprintf(msg, len, "%s: points at %s, in the model at %s", pa, ta, tb);
    } else if (sa.st_size != sb.st_size || !same_file(pa, pb)) {
      snprintf(msg, len, "%s: %lld bytes, in the model %lld, or other bytes", pa,
               (long long)sa.st_size, (long long)sb.st_size);
      same = false;
    }
    i++, j++;
  }
  for (size_t i = 0; la && i < na; i++) free(la[i]);
  for (size_t j = 0; lb && j < nb; j++) free(lb[j]);
  free(la);
  free(lb);
  return same;
}

int pc_rec_check_model(pc_rec_t *r, const char *out, char *msg, size_t len) {
  if (r->nqueued) {
    snprintf(msg, len, "%u io_uring operations still in flight", r->nqueued);
    return -1;
  }
  int rc = pc_disk_write_all(r->latest, out);
  if (rc) {
    snprintf(msg, len, "cannot write the model into %s: %s", out, strerror(-rc));
    return -1;
  }
  return same_tree(r->root, out, msg, len) ? 0 : -1;
}
