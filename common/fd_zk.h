/*
 * fd_zk.h — a daemon's ZooKeeper session (prefix fd_zk_): the control
 * plane's high availability (origin head and fdsched leader elections, the
 * origin chain's epoch, the version registry).
 *
 * Built on libzookeeper_mt, not _st. The single-threaded client exposes its
 * socket and interest set and could sit in the io_uring loop, but then the
 * session's pings go only when the loop turns: an origin busy verifying a
 * 64 MiB chunk, merging, or stalled on a slow fdatasync would miss them and
 * be deposed for being busy, not dead. The multi-threaded client pings from
 * its own I/O thread and runs watchers and completions on its completion
 * thread; this file's callbacks there only copy results into the handle
 * under its mutex. The owner's thread (an engine) never blocks on the
 * network in the asynchronous calls: it reads the latest state with
 * fd_zk_view and fd_zk_node, and drives restarts from fd_zk_tick. The *_sync
 * calls wait for one round trip and refuse at once while disconnected; they
 * are for the rare control steps (a commit's registration, a takeover).
 *
 * The election is the ephemeral-sequential recipe: each candidate creates
 * `<dir>/<tag>-<seq>` (EPHEMERAL | SEQUENCE) and the lowest sequence leads.
 * The tag is the member's identity and address (`id@addr:port`), so one
 * children listing gives the ordered membership, addresses included. Every
 * member watches the children (groups here are a handful of processes, so
 * the herd the predecessor-only variant avoids does not arise, and every
 * member wants the whole list for the chain's order). A session that
 * expires loses its candidate; fd_zk_tick opens a new session and joins
 * again, at the end of the line.
 *
 * A member that is not connected knows nothing: fd_zk_view's `leader` is
 * true only while connected and first in the listing that session read.
 * The session outlives a disconnection by its timeout, and ZooKeeper can
 * elect someone else only once it expired, so a leader that stops acting
 * as leader the moment it is disconnected never overlaps the next one.
 */
#ifndef FD_ZK_H
#define FD_ZK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FD_ZK_MEMBERS_MAX 16
#define FD_ZK_TAG_MAX 160    /* "id@addr:port" */
#define FD_ZK_NODE_MAX 4096  /* a watched znode's data */
#define FD_ZK_PATH_MAX 512

typedef struct fd_zk fd_zk_t;

typedef enum fd_zk_conn {
  FD_ZK_CONNECTING = 0, /* no session yet, or looking for a server */
  FD_ZK_CONNECTED,
  FD_ZK_EXPIRED /* the session is over; fd_zk_tick opens the next */
} fd_zk_conn_t;

const char *fd_zk_conn_name(fd_zk_conn_t c);

typedef struct fd_zk_member {
  char tag[FD_ZK_TAG_MAX];
  uint64_t seq;
} fd_zk_member_t;

typedef struct fd_zk_view {
  fd_zk_conn_t conn;
  uint64_t session_id;  /* 0: none */
  uint32_t sessions;    /* sessions opened so far */
  uint64_t conn_gen;    /* changes at every connect, disconnect and expiry */
  /* the election (fd_zk_elect), as last listed */
  bool joined;          /* our candidate exists in this session */
  uint32_t members_n;   /* in sequence order: [0] leads */
  fd_zk_member_t members[FD_ZK_MEMBERS_MAX];
  int self;             /* our index in members, -1 */
  bool leader;          /* connected, joined and members[0] */
  uint64_t members_gen; /* changes at every new listing */
} fd_zk_view_t;

typedef struct fd_zk_opts {
  const char *hosts;    /* "h:p,h:p,..." */
  const char *root;     /* every path below is under it, e.g. "/fdist"; created */
  uint32_t session_ms;  /* the session timeout asked for */
  const char *who;      /* for the log: "origin o1", "fdsched" */
} fd_zk_opts_t;

/* An election znode's name "<tag>~<session hex>-<seq>" into m and the
 * session that created it: 0 or -EINVAL (what ZooKeeper hands back is
 * checked like any input). */
int fd_zk_parse_member(const char *name, fd_zk_member_t *m, uint64_t *session);

/* Starts connecting (does not wait). NULL with errno. */
fd_zk_t *fd_zk_open(const fd_zk_opts_t *o);
/* Closes the session (its ephemeral znodes go at once). */
void fd_zk_close(fd_zk_t *z);

/* The owner's turn: opens a new session after an expiry, (re)joins the
 * election, (re)reads watched znodes whose watch fired. Cheap. */
void fd_zk_tick(fd_zk_t *z);

void fd_zk_view(fd_zk_t *z, fd_zk_view_t *out);
/* Changes whenever what fd_zk_view or fd_zk_node would return may have
 * changed (a connection event, a new listing, a new read of the watched
 * znode): an owner polling every loop turn copies only then. */
uint64_t fd_zk_changes(fd_zk_t *z);
/* The negotiated session timeout, ms (0 before the first connection). */
uint32_t fd_zk_session_ms(fd_zk_t *z);

/* Joins the election under dir (relative to root; created) as tag (no '/').
 * One election per handle. 0 or -errno. */
int fd_zk_elect(fd_zk_t *z, const char *dir, const char *tag);
/* Lists the candidates of an election this handle does not join (a client
 * finding a leader): watched like the handle's own. One per handle. */
int fd_zk_follow(fd_zk_t *z, const char *dir);

/* Watches one znode's data (relative path; one per handle): fd_zk_node
 * copies what was last read. */
int fd_zk_watch(fd_zk_t *z, const char *path);
/* Copies the watched znode: its data (at most cap bytes; returns the length,
 * -ENOENT when it does not exist, -EAGAIN before it was read) and its
 * version. */
int fd_zk_node(fd_zk_t *z, void *buf, size_t cap, int32_t *version, uint64_t *gen);

/* Conditional update of the watched znode: set if its version is still
 * `version`, or create it when version is -1. Asynchronous: the outcome
 * (0, -EEXIST / -ESTALE: someone else changed it first, -ENOTCONN, -EIO)
 * is read with fd_zk_cas_result, which returns -EINPROGRESS until then. One
 * at a time: -EBUSY while one is in flight. */
int fd_zk_cas(fd_zk_t *z, const void *data, size_t len, int32_t version);
int fd_zk_cas_result(fd_zk_t *z, int32_t *new_version);

/* Synchronous: create-or-set path (relative; parents created) to data. 0,
 * -ENOTCONN (not connected: nothing sent), -EIO. */
int fd_zk_put_sync(fd_zk_t *z, const char *path, const void *data, size_t len);
/* Synchronous read: the data's length (at most cap copied), -ENOENT,
 * -ENOTCONN, -EIO. */
int fd_zk_get_sync(fd_zk_t *z, const char *path, void *buf, size_t cap);
/* Synchronous listing of path's children, sorted by name, written as
 * NUL-separated names into buf; the count, or -ENOENT / -ENOTCONN / -EIO /
 * -EMSGSIZE. */
int fd_zk_children_sync(fd_zk_t *z, const char *path, char *buf, size_t cap);
/* Synchronous delete of path (relative; it must have no children): 0, also
 * when it did not exist; -ENOTCONN, -EIO (-ENOTEMPTY is -EIO). */
int fd_zk_delete_sync(fd_zk_t *z, const char *path);

#endif /* FD_ZK_H */
