/*
 * fd_zk.c — see fd_zk.h. Two threads touch a handle: the owner (fd_zk_*
 * calls) and libzookeeper_mt's completion thread (the static callbacks
 * below). Everything they share sits under z->mu; the zhandle itself is
 * opened and closed by the owner only, and every asynchronous request
 * carries the handle's generation so that a completion of a closed session
 * changes nothing.
 */
#include "fd_zk.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zookeeper/zookeeper.h>

#include "fd_error.h"
#include "fd_log.h"

typedef struct zk_ctx zk_ctx_t;

struct fd_zk {
  pthread_mutex_t mu;
  /* every request's context not yet back from the library: a request
   * zookeeper_close never completes would leak its context otherwise */
  pthread_mutex_t ctx_mu;
  zk_ctx_t *ctxs;
  zhandle_t *zh; /* owner's; read by callbacks under mu */
  uint32_t gen;  /* bumped at every zookeeper_init */
  char hosts[1024];
  char root[FD_ZK_PATH_MAX];
  char who[64];
  uint32_t session_ms;

  /* session */
  fd_zk_conn_t conn;
  uint64_t conn_gen, logged_gen;
  uint64_t session_id;
  uint32_t sessions;
  uint32_t negotiated_ms;

  /* election (join) or listing (follow) */
  char elect_dir[FD_ZK_PATH_MAX];
  char tag[FD_ZK_TAG_MAX];
  bool follow;  /* list only */
  bool creating, joined;
  char my_name[FD_ZK_TAG_MAX + 48];
  bool list_dirty, listing;
  uint32_t members_n;
  fd_zk_member_t members[FD_ZK_MEMBERS_MAX];
  char names[FD_ZK_MEMBERS_MAX][FD_ZK_TAG_MAX + 48];
  uint64_t members_gen;

  /* the watched znode */
  char watch_path[FD_ZK_PATH_MAX];
  bool watch_dirty, reading;
  int node_state; /* -EAGAIN, -ENOENT or 0 */
  int32_t node_version;
  uint32_t node_len;
  uint8_t node[FD_ZK_NODE_MAX];
  uint64_t node_gen;

  /* the conditional update */
  int cas_rc; /* -EINPROGRESS while in flight; 1: none asked */
  int32_t cas_version;
};

struct zk_ctx {
  fd_zk_t *z;
  uint32_t gen;
  zk_ctx_t *prev, *next; /* in z->ctxs */
};

const char *fd_zk_conn_name(fd_zk_conn_t c) {
  switch (c) {
  case FD_ZK_CONNECTING: return "connecting";
  case FD_ZK_CONNECTED: return "connected";
  case FD_ZK_EXPIRED: return "expired";
  }
  return "?";
}

static int full_path(const fd_zk_t *z, const char *rel, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s%s%s", z->root, rel[0] == '/' ? "" : "/", rel);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static zk_ctx_t *ctx_new(fd_zk_t *z) {
  zk_ctx_t *c = malloc(sizeof(*c));
  if (!c) return NULL;
  *c = (zk_ctx_t){z, z->gen, NULL, NULL};
  pthread_mutex_lock(&z->ctx_mu);
  c->next = z->ctxs;
  if (z->ctxs) z->ctxs->prev = c;
  z->ctxs = c;
  pthread_mutex_unlock(&z->ctx_mu);
  return c;
}

static void ctx_free(zk_ctx_t *c) {
  if (!c) return;
  fd_zk_t *z = c->z;
  pthread_mutex_lock(&z->ctx_mu);
  if (c->prev) c->prev->next = c->next;
  else z->ctxs = c->next;
  if (c->next) c->next->prev = c->prev;
  pthread_mutex_unlock(&z->ctx_mu);
  free(c);
}

/* Locks z when the completion belongs to its current session; frees c. */
static fd_zk_t *ctx_take(const void *data) {
  zk_ctx_t *c = (zk_ctx_t *)data;
  fd_zk_t *z = c->z;
  uint32_t gen = c->gen;
  ctx_free(c);
  pthread_mutex_lock(&z->mu);
  if (gen == z->gen) return z;
  pthread_mutex_unlock(&z->mu);
  return NULL;
}

static int zk_errno(int rc) {
  switch (rc) {
  case ZOK: return 0;
  case ZNONODE: return -ENOENT;
  case ZNODEEXISTS: return -EEXIST;
  case ZBADVERSION: return -ESTALE;
  case ZCONNECTIONLOSS:
  case ZOPERATIONTIMEOUT:
  case ZSESSIONEXPIRED:
  case ZSESSIONMOVED:
  case ZCLOSING:
  case ZINVALIDSTATE: return -ENOTCONN;
  default: return -EIO;
  }
}

/* ---- session ------------------------------------------------------------------------ */

static void on_session(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  (void)path;
  fd_zk_t *z = ctx;
  if (type != ZOO_SESSION_EVENT) return;
  pthread_mutex_lock(&z->mu);
  if (zh == z->zh) {
    if (state == ZOO_CONNECTED_STATE) {
      const clientid_t *id = zoo_client_id(zh);
      if (id && (uint64_t)id->client_id != z->session_id) {
        z->session_id = (uint64_t)id->client_id;
        z->sessions++;
      }
      z->negotiated_ms = (uint32_t)zoo_recv_timeout(zh);
      z->conn = FD_ZK_CONNECTED;
      z->list_dirty = z->elect_dir[0] != 0;
      z->watch_dirty = z->watch_path[0] != 0;
    } else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
      z->conn = FD_ZK_EXPIRED;
    } else {
      z->conn = FD_ZK_CONNECTING;
    }
    z->conn_gen++;
  }
  pthread_mutex_unlock(&z->mu);
}

/* Opens a session (z->zh NULL). Owner, not under mu. */
static void session_open(fd_zk_t *z) {
  pthread_mutex_lock(&z->mu);
  z->gen++;
  z->conn = FD_ZK_CONNECTING;
  z->conn_gen++;
  z->session_id = 0;
  z->creating = z->joined = z->listing = z->reading = false;
  z->my_name[0] = 0;
  z->members_n = 0;
  z->members_gen++;
  z->list_dirty = z->watch_dirty = false;
  if (z->cas_rc == -EINPROGRESS) z->cas_rc = -ENOTCONN;
  pthread_mutex_unlock(&z->mu);
  zhandle_t *zh = zookeeper_init(z->hosts, on_session, (int)z->session_ms, NULL, z, 0);
  if (!zh) fd_log_error("zookeeper %s: cannot start a session with %s: %s", z->who, z->hosts,
                        fd_strerror(-errno));
  pthread_mutex_lock(&z->mu);
  z->zh = zh;
  pthread_mutex_unlock(&z->mu);
}

fd_zk_t *fd_zk_open(const fd_zk_opts_t *o) {
  if (!o->hosts || !o->hosts[0] || strlen(o->hosts) >= sizeof(((fd_zk_t *)0)->hosts) ||
      !o->root || o->root[0] != '/' || strlen(o->root) >= FD_ZK_PATH_MAX / 2)
    return errno = EINVAL, NULL;
  fd_zk_t *z = calloc(1, sizeof(*z));
  if (!z) return NULL;
  pthread_mutex_init(&z->mu, NULL);
  pthread_mutex_init(&z->ctx_mu, NULL);
  snprintf(z->hosts, sizeof(z->hosts), "%s", o->hosts);
  snprintf(z->root, sizeof(z->root), "%s", o->root);
  size_t rl = strlen(z->root);
  while (rl > 1 && z->root[rl - 1] == '/') z->root[--rl] = 0;
  snprintf(z->who, sizeof(z->who), "%s", o->who ? o->who : "client");
  z->session_ms = o->session_ms ? o->session_ms : 4000;
  z->cas_rc = 1;
  z->node_state = -EAGAIN;
  /* The client library's own log (connection attempts at WARN) would fill
   * the daemon's; errors only. A library-wide setting, the same for every
   * handle. */
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  session_open(z);
  if (!z->zh) {
    int e = errno;
    pthread_mutex_destroy(&z->ctx_mu);
    pthread_mutex_destroy(&z->mu);
    free(z);
    return errno = e ? e : EIO, NULL;
  }
  return z;
}

void fd_zk_close(fd_zk_t *z) {
  if (!z) return;
  pthread_mutex_lock(&z->mu);
  zhandle_t *zh = z->zh;
  z->gen++; /* completions of the closing session change nothing */
  pthread_mutex_unlock(&z->mu);
  if (zh) zookeeper_close(zh);
  while (z->ctxs) ctx_free(z->ctxs); /* requests the close never completed */
  pthread_mutex_destroy(&z->ctx_mu);
  pthread_mutex_destroy(&z->mu);
  free(z);
}

uint32_t fd_zk_session_ms(fd_zk_t *z) {
  pthread_mutex_lock(&z->mu);
  uint32_t ms = z->negotiated_ms;
  pthread_mutex_unlock(&z->mu);
  return ms;
}

/* ---- paths ---------------------------------------------------------------------------- */

static void on_void_string(int rc, const char *value, const void *data) {
  (void)rc, (void)value;
  fd_zk_t *z = ctx_take(data);
  if (z) pthread_mutex_unlock(&z->mu);
}

/* Asks for every component of full path p (without p itself when !self) to
 * be created; the session's FIFO order puts them before what follows. */
static void ensure_parents(fd_zk_t *z, zhandle_t *zh, const char *p, bool self) {
  char buf[FD_ZK_PATH_MAX];
  size_t n = strlen(p);
  for (size_t i = 1; i <= n; i++) {
    if (i < n && p[i] != '/') continue;
    if (i == n && !self) break;
    memcpy(buf, p, i);
    buf[i] = 0;
    zk_ctx_t *c = ctx_new(z);
    if (!c) return;
    if (zoo_acreate(zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, on_void_string, c) != ZOK) ctx_free(c);
  }
}

static int ensure_parents_sync(zhandle_t *zh, const char *p) {
  char buf[FD_ZK_PATH_MAX];
  size_t n = strlen(p);
  for (size_t i = 1; i < n; i++) {
    if (p[i] != '/') continue;
    memcpy(buf, p, i);
    buf[i] = 0;
    int rc = zoo_create(zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (rc != ZOK && rc != ZNODEEXISTS) return zk_errno(rc);
  }
  return 0;
}

/* ---- the election ------------------------------------------------------------------- */

/* "<tag>~<session hex>-<seq 10 digits>" */
int fd_zk_parse_member(const char *name, fd_zk_member_t *m, uint64_t *session) {
  const char *dash = strrchr(name, '-');
  const char *tilde = strrchr(name, '~');
  if (!dash || !tilde || tilde > dash || tilde == name || (size_t)(tilde - name) >= sizeof(m->tag))
    return -EINVAL;
  if (dash[1] < '0' || dash[1] > '9' || tilde[1] == '-') return -EINVAL;
  if (memchr(name, '~', (size_t)(tilde - name))) return -EINVAL; /* fd_zk_elect refuses such tags */
  char *end;
  errno = 0;
  uint64_t seq = strtoull(dash + 1, &end, 10);
  if (*end || errno) return -EINVAL;
  uint64_t s = strtoull(tilde + 1, &end, 16);
  if (end != dash || errno) return -EINVAL;
  memcpy(m->tag, name, (size_t)(tilde - name));
  m->tag[tilde - name] = 0;
  m->seq = seq;
  *session = s;
  return 0;
}

static void on_child_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  (void)state, (void)path;
  fd_zk_t *z = ctx;
  if (type == ZOO_SESSION_EVENT) return;
  pthread_mutex_lock(&z->mu);
  if (zh == z->zh) z->list_dirty = true;
  pthread_mutex_unlock(&z->mu);
}

static void on_children(int rc, const struct String_vector *sv, const void *data) {
  fd_zk_t *z = ctx_take(data);
  if (!z) return;
  z->listing = false;
  if (rc != ZOK) {
    z->list_dirty = true; /* again at the next tick while connected */
    if (rc == ZNONODE) z->members_n = 0, z->members_gen++;
    pthread_mutex_unlock(&z->mu);
    return;
  }
  uint32_t n = 0;
  for (int32_t i = 0; sv && i < sv->count && n < FD_ZK_MEMBERS_MAX; i++) {
    fd_zk_member_t m;
    uint64_t session;
    if (fd_zk_parse_member(sv->data[i], &m, &session)) continue; /* not a member's */
    /* a create whose answer the connection lost: ours all the same */
    if (!z->follow && !z->joined && z->creating && session == z->session_id)
      snprintf(z->my_name, sizeof(z->my_name), "%s", sv->data[i]), z->joined = true,
          z->creating = false;
    uint32_t j = n++;
    while (j > 0 && z->members[j - 1].seq > m.seq) {
      z->members[j] = z->members[j - 1];
      memcpy(z->names[j], z->names[j - 1], sizeof(z->names[j]));
      j--;
    }
    z->members[j] = m;
    snprintf(z->names[j], sizeof(z->names[j]), "%s", sv->data[i]);
  }
  z->members_n = n;
  z->members_gen++;
  pthread_mutex_unlock(&z->mu);
}

static void on_created(int rc, const char *value, const void *data) {
  fd_zk_t *z = ctx_take(data);
  if (!z) return;
  if (rc == ZOK && value) {
    const char *slash = strrchr(value, '/');
    snprintf(z->my_name, sizeof(z->my_name), "%s", slash ? slash + 1 : value);
    z->joined = true;
    z->creating = false;
  } else if (!z->joined && rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT) {
    z->creating = false; /* tried again at the next tick */
  }
  /* connection loss: the create may have happened; the next listing finds
   * it by the session id in its name (creating stays set until then) */
  z->list_dirty = true;
  pthread_mutex_unlock(&z->mu);
}

int fd_zk_elect(fd_zk_t *z, const char *dir, const char *tag) {
  if (strchr(tag, '/') || strchr(tag, '~') || strlen(tag) >= FD_ZK_TAG_MAX) return -EINVAL;
  char p[FD_ZK_PATH_MAX];
  int rc = full_path(z, dir, p, sizeof(p));
  if (rc) return rc;
  pthread_mutex_lock(&z->mu);
  snprintf(z->elect_dir, sizeof(z->elect_dir), "%s", p);
  snprintf(z->tag, sizeof(z->tag), "%s", tag);
  z->follow = false;
  z->list_dirty = z->conn == FD_ZK_CONNECTED;
  pthread_mutex_unlock(&z->mu);
  return 0;
}

int fd_zk_follow(fd_zk_t *z, const char *dir) {
  char p[FD_ZK_PATH_MAX];
  int rc = full_path(z, dir, p, sizeof(p));
  if (rc) return rc;
  pthread_mutex_lock(&z->mu);
  snprintf(z->elect_dir, sizeof(z->elect_dir), "%s", p);
  z->follow = true;
  z->list_dirty = z->conn == FD_ZK_CONNECTED;
  pthread_mutex_unlock(&z->mu);
  return 0;
}

/* ---- the watched znode ------------------------------------------------------------------ */

static void on_node_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  (void)state, (void)path;
  fd_zk_t *z = ctx;
  if (type == ZOO_SESSION_EVENT) return;
  pthread_mutex_lock(&z->mu);
  if (zh == z->zh) z->watch_dirty = true;
  pthread_mutex_unlock(&z->mu);
}

static void on_node_data(int rc, const char *value, int len, const struct Stat *st,
                         const void *data) {
  fd_zk_t *z = ctx_take(data);
  if (!z) return;
  z->reading = false;
  if (rc == ZOK && len >= 0 && (size_t)len <= sizeof(z->node)) {
    if (len) memcpy(z->node, value, (size_t)len);
    z->node_len = (uint32_t)len;
    z->node_version = st ? st->version : 0;
    z->node_state = 0;
    z->node_gen++;
  } else if (rc == ZNONODE) {
    z->node_state = -ENOENT;
    z->node_gen++;
  } else {
    if (rc == ZOK) fd_log_error("zookeeper %s: %s is larger than %zu bytes", z->who,
                                z->watch_path, sizeof(z->node));
    z->watch_dirty = true;
  }
  pthread_mutex_unlock(&z->mu);
}

static void on_node_exists(int rc, const struct Stat *st, const void *data) {
  (void)st;
  fd_zk_t *z = ctx_take(data);
  if (!z) return;
  z->reading = false;
  if (rc == ZNONODE) {
    z->node_state = -ENOENT; /* the exists watch says when it appears */
    z->node_gen++;
  } else {
    z->watch_dirty = true; /* there now (or an error): read it */
  }
  pthread_mutex_unlock(&z->mu);
}

int fd_zk_watch(fd_zk_t *z, const char *path) {
  char p[FD_ZK_PATH_MAX];
  int rc = full_path(z, path, p, sizeof(p));
  if (rc) return rc;
  pthread_mutex_lock(&z->mu);
  snprintf(z->watch_path, sizeof(z->watch_path), "%s", p);
  z->watch_dirty = z->conn == FD_ZK_CONNECTED;
  pthread_mutex_unlock(&z->mu);
  return 0;
}

int fd_zk_node(fd_zk_t *z, void *buf, size_t cap, int32_t *version, uint64_t *gen) {
  pthread_mutex_lock(&z->mu);
  int rc = z->node_state;
  if (rc == 0) {
    memcpy(buf, z->node, z->node_len < cap ? z->node_len : cap);
    rc = (int)z->node_len;
    if (version) *version = z->node_version;
  }
  if (gen) *gen = z->node_gen;
  pthread_mutex_unlock(&z->mu);
  return rc;
}

static void on_cas(int rc, const struct Stat *st, const void *data) {
  fd_zk_t *z = ctx_take(data);
  if (!z) return;
  z->cas_rc = zk_errno(rc);
  if (rc == ZOK && st) z->cas_version = st->version;
  z->watch_dirty = true;
  pthread_mutex_unlock(&z->mu);
}

static void on_cas_create(int rc, const char *value, const void *data) {
  (void)value;
  fd_zk_t *z = ctx_take(data);
  if (!z) return;
  z->cas_rc = zk_errno(rc);
  if (rc == ZOK) z->cas_version = 0;
  z->watch_dirty = true;
  pthread_mutex_unlock(&z->mu);
}

int fd_zk_cas(fd_zk_t *z, const void *data, size_t len, int32_t version) {
  if (len > FD_ZK_NODE_MAX) return -EMSGSIZE;
  pthread_mutex_lock(&z->mu);
  if (!z->watch_path[0]) return pthread_mutex_unlock(&z->mu), -EINVAL;
  if (z->cas_rc == -EINPROGRESS) return pthread_mutex_unlock(&z->mu), -EBUSY;
  if (z->conn != FD_ZK_CONNECTED || !z->zh) return pthread_mutex_unlock(&z->mu), -ENOTCONN;
  zhandle_t *zh = z->zh;
  zk_ctx_t *c = ctx_new(z);
  if (!c) return pthread_mutex_unlock(&z->mu), -ENOMEM;
  char path[FD_ZK_PATH_MAX];
  snprintf(path, sizeof(path), "%s", z->watch_path);
  z->cas_rc = -EINPROGRESS;
  pthread_mutex_unlock(&z->mu); /* see fd_zk_tick */
  int rc;
  if (version < 0) {
    ensure_parents(z, zh, path, false);
    rc = zoo_acreate(zh, path, data, (int)len, &ZOO_OPEN_ACL_UNSAFE, 0, on_cas_create, c);
  } else {
    rc = zoo_aset(zh, path, data, (int)len, version, on_cas, c);
  }
  if (rc == ZOK) return 0;
  ctx_free(c);
  pthread_mutex_lock(&z->mu);
  z->cas_rc = zk_errno(rc);
  pthread_mutex_unlock(&z->mu);
  return zk_errno(rc);
}

int fd_zk_cas_result(fd_zk_t *z, int32_t *new_version) {
  pthread_mutex_lock(&z->mu);
  int rc = z->cas_rc;
  if (rc == 0 && new_version) *new_version = z->cas_version;
  pthread_mutex_unlock(&z->mu);
  return rc;
}

/* ---- the owner's turn ------------------------------------------------------------------ */

void fd_zk_tick(fd_zk_t *z) {
  pthread_mutex_lock(&z->mu);
  fd_zk_conn_t conn = z->conn;
  if (z->conn_gen != z->logged_gen) {
    z->logged_gen = z->conn_gen;
    if (conn == FD_ZK_CONNECTED)
      fd_log_info("zookeeper %s: connected, session 0x%" PRIx64 " (timeout %u ms)", z->who,
                  z->session_id, z->negotiated_ms);
    else if (conn == FD_ZK_EXPIRED)
      fd_log_warn("zookeeper %s: session 0x%" PRIx64 " expired", z->who, z->session_id);
    else if (z->session_id)
      fd_log_warn("zookeeper %s: disconnected from %s, session 0x%" PRIx64 " held for now", z->who,
                  z->hosts, z->session_id);
  }
  if (conn == FD_ZK_EXPIRED) {
    zhandle_t *zh = z->zh;
    z->zh = NULL;
    z->gen++;
    pthread_mutex_unlock(&z->mu);
    if (zh) zookeeper_close(zh);
    /* the closed session's requests that never came back */
    pthread_mutex_lock(&z->ctx_mu);
    zk_ctx_t *old = z->ctxs;
    z->ctxs = NULL;
    pthread_mutex_unlock(&z->ctx_mu);
    while (old) {
      zk_ctx_t *next = old->next;
      free(old);
      old = next;
    }
    session_open(z);
    return;
  }
  zhandle_t *zh = z->zh;
  if (conn != FD_ZK_CONNECTED || !zh) {
    pthread_mutex_unlock(&z->mu);
    return;
  }
  /* Decide under the lock, mark the requests as under way, then send them
   * without it: the client library takes locks of its own that its
   * completion thread may hold while a callback waits for z->mu. */
  bool create = z->elect_dir[0] && !z->follow && !z->joined && !z->creating;
  bool list = z->elect_dir[0] && z->list_dirty && !z->listing;
  bool read = z->watch_path[0] && z->watch_dirty && !z->reading;
  bool follow = z->follow;
  char dir[FD_ZK_PATH_MAX], wpath[FD_ZK_PATH_MAX];
  char p[FD_ZK_PATH_MAX + FD_ZK_TAG_MAX + 32];
  snprintf(dir, sizeof(dir), "%s", z->elect_dir);
  snprintf(wpath, sizeof(wpath), "%s", z->watch_path);
  snprintf(p, sizeof(p), "%s/%s~%" PRIx64 "-", z->elect_dir, z->tag, z->session_id);
  if (create) z->creating = true;
  if (list) z->listing = true, z->list_dirty = false;
  if (read) z->reading = true, z->watch_dirty = false;
  zk_ctx_t *cc = create ? ctx_new(z) : NULL, *lc = list ? ctx_new(z) : NULL;
  zk_ctx_t *ec = read ? ctx_new(z) : NULL, *rc = read ? ctx_new(z) : NULL;
  pthread_mutex_unlock(&z->mu);

  bool create_failed = false, list_failed = false, read_failed = false;
  if (create) {
    ensure_parents(z, zh, dir, true);
    if (!cc || zoo_acreate(zh, p, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL | ZOO_SEQUENCE,
                           on_created, cc) != ZOK)
      ctx_free(cc), create_failed = true;
  }
  if (list) {
    if (follow) ensure_parents(z, zh, dir, true);
    if (!lc || zoo_awget_children(zh, dir, on_child_watch, z, on_children, lc) != ZOK)
      ctx_free(lc), list_failed = true;
  }
  if (read) {
    /* exists first: its watch is set whether or not the znode is there */
    if (!ec || !rc || zoo_awexists(zh, wpath, on_node_watch, z, on_node_exists, ec) != ZOK) {
      ctx_free(ec), ctx_free(rc), read_failed = true;
    } else if (zoo_awget(zh, wpath, on_node_watch, z, on_node_data, rc) != ZOK) {
      ctx_free(rc); /* the exists answer marks it dirty again */
    }
  }
  if (create_failed || list_failed || read_failed) {
    pthread_mutex_lock(&z->mu);
    if (create_failed) z->creating = false;
    if (list_failed) z->listing = false, z->list_dirty = true;
    if (read_failed) z->reading = false, z->watch_dirty = true;
    pthread_mutex_unlock(&z->mu);
  }
}

uint64_t fd_zk_changes(fd_zk_t *z) {
  pthread_mutex_lock(&z->mu);
  uint64_t c = z->conn_gen + z->members_gen + z->node_gen; /* each only grows */
  pthread_mutex_unlock(&z->mu);
  return c;
}

void fd_zk_view(fd_zk_t *z, fd_zk_view_t *out) {
  pthread_mutex_lock(&z->mu);
  out->conn = z->conn;
  out->session_id = z->session_id;
  out->sessions = z->sessions;
  out->conn_gen = z->conn_gen;
  out->joined = z->joined;
  out->members_n = z->members_n;
  memcpy(out->members, z->members, sizeof(out->members[0]) * z->members_n);
  out->self = -1;
  for (uint32_t i = 0; z->joined && i < z->members_n; i++)
    if (!strcmp(z->names[i], z->my_name)) out->self = (int)i;
  out->leader = z->conn == FD_ZK_CONNECTED && out->self == 0;
  out->members_gen = z->members_gen;
  pthread_mutex_unlock(&z->mu);
}

/* ---- synchronous calls ---------------------------------------------------------------- */

static zhandle_t *connected(fd_zk_t *z) {
  pthread_mutex_lock(&z->mu);
  zhandle_t *zh = z->conn == FD_ZK_CONNECTED ? z->zh : NULL;
  pthread_mutex_unlock(&z->mu);
  return zh;
}

int fd_zk_put_sync(fd_zk_t *z, const char *path, const void *data, size_t len) {
  char p[FD_ZK_PATH_MAX];
  int rc = full_path(z, path, p, sizeof(p));
  if (rc) return rc;
  zhandle_t *zh = connected(z);
  if (!zh) return -ENOTCONN;
  if ((rc = ensure_parents_sync(zh, p)) != 0) return rc;
  int zrc = zoo_create(zh, p, data, (int)len, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  if (zrc == ZNODEEXISTS) zrc = zoo_set(zh, p, data, (int)len, -1);
  return zk_errno(zrc);
}

int fd_zk_get_sync(fd_zk_t *z, const char *path, void *buf, size_t cap) {
  char p[FD_ZK_PATH_MAX];
  int rc = full_path(z, path, p, sizeof(p));
  if (rc) return rc;
  zhandle_t *zh = connected(z);
  if (!zh) return -ENOTCONN;
  struct Stat st;
  int len = (int)(cap > INT32_MAX ? INT32_MAX : cap);
  int zrc = zoo_get(zh, p, 0, buf, &len, &st);
  if (zrc != ZOK) return zk_errno(zrc);
  return len < 0 ? 0 : (st.dataLength > len ? -EMSGSIZE : len);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int fd_zk_children_sync(fd_zk_t *z, const char *path, char *buf, size_t cap) {
  char p[FD_ZK_PATH_MAX];
  int rc = full_path(z, path, p, sizeof(p));
  if (rc) return rc;
  zhandle_t *zh = connected(z);
  if (!zh) return -ENOTCONN;
  struct String_vector sv = {0};
  int zrc = zoo_get_children(zh, p, 0, &sv);
  if (zrc != ZOK) return zk_errno(zrc);
  qsort(sv.data, (size_t)sv.count, sizeof(char *), cmp_str);
  size_t off = 0;
  int n = 0;
  for (int32_t i = 0; i < sv.count; i++) {
    size_t l = strlen(sv.data[i]) + 1;
    if (off + l > cap) {
      n = -EMSGSIZE;
      break;
    }
    memcpy(buf + off, sv.data[i], l);
    off += l;
    n++;
  }
  deallocate_String_vector(&sv);
  return n;
}

int fd_zk_delete_sync(fd_zk_t *z, const char *path) {
  char p[FD_ZK_PATH_MAX];
  int rc = full_path(z, path, p, sizeof(p));
  if (rc) return rc;
  zhandle_t *zh = connected(z);
  if (!zh) return -ENOTCONN;
  int zrc = zoo_delete(zh, p, -1);
  return zrc == ZNONODE ? 0 : zk_errno(zrc);
}
