/* nd_origin_int.h — the origin role's own state, for nd_origin.c,
 * nd_publish.c, nd_chain.c and nd_commit.c only. */
#ifndef ND_ORIGIN_INT_H
#define ND_ORIGIN_INT_H

#include "fd_zk.h"
#include "nd_origin.h"

typedef struct nd_pub nd_pub_t;

/* An origin's chain step: while (and after) receiving a version, copy it to
 * the next live origin, which does the same, and learn who holds it. */
typedef struct nd_chain {
  bool active;
  nd_origin_t *og;
  nd_ver_t *ver;
  uint32_t next;     /* index in the origins list being tried */
  uint32_t attempts; /* failed tries of origins[next] */
  rpc_conn_t *conn;
  rpc_call_t *call;  /* Missing, then Replicate */
  nd_tx_t *tx;
  char held[ND_ORIGINS_MAX][FD_NAME_LEN_MAX + 1];
  uint32_t held_n;
  bool got_reply;
  bool aborted; /* the publish failed: end, do not try the next origin */
  bool single;  /* a catch-up copy to one origin: no other is tried */
  uint64_t retry_at_ms; /* a failed try is repeated then (0: none waiting), by nd_chain_tick */
  void (*done)(void *arg, int err); /* the chain is over (not called once aborted) */
  void *arg;
} nd_chain_t;

/* A publish (head) or replicate (middle, tail) reception. */
struct nd_pub {
  bool used;
  bool is_repl;
  nd_origin_t *og;
  nd_sink_t sink;
  rpc_call_t *call;
  bool ended;       /* the client's stream ended */
  bool finishing;   /* completion / chain / commit under way */
  bool self_done;   /* this origin holds the version durably */
  bool chain_over;  /* the chain after this origin answered (or failed) */
  int chain_err;
  bool announced;   /* head: fdsched was told the publish began (PENDING) */
  nd_chain_t chain;
};

/* A warm-up Missing sent to the next origin as soon as this one starts its
 * delta, so the chain's deltas run side by side instead of one after the
 * other (its answer is not used). */
typedef struct nd_warm {
  bool used;
  nd_origin_t *og;
  nd_ver_t *ver; /* held until the call ends */
  uint32_t to;   /* index in origins */
  rpc_conn_t *conn;
  rpc_call_t *call;
} nd_warm_t;

/* A Missing call waiting for its version's delta. */
typedef struct nd_missing {
  nd_ver_t *ver; /* NULL: free */
  rpc_call_t *call;
} nd_missing_t;

/* A version the head committed but fdsched did not confirm: retried. */
typedef struct nd_uncommitted {
  nd_origin_t *og;
  nd_ver_t *ver; /* held until fdsched confirms */
  bool busy;     /* a retry is in flight */
} nd_uncommitted_t;

#include "nd_write_int.h" /* the write path's state, below */

/* The chain as the chain znode says it (nd_group.c). */
typedef struct nd_chain_view {
  uint64_t epoch;
  uint64_t head_since; /* the epoch its head was elected in (its reign: records of this
                          epoch or later are its own) */
  uint32_t n;
  char ids[ND_ORIGINS_MAX][FD_NAME_LEN_MAX + 1];
} nd_chain_view_t;

struct nd_origin {
  nd_plane_t *p;
  rpc_engine_t *e;
  nd_sched_t *sched;
  st_store_t *store;
  char data_dir[FD_PATH_LEN_MAX];
  nd_origins_t *origins; /* the host's; its order is the chain's (nd_group.c reorders it) */
  char id[FD_NAME_LEN_MAX + 1];
  const struct nd_signer *signer;
  /* the head's election and the chain's epoch (nd_group.c) */
  fd_zk_t *zk;             /* the host's session; NULL: the static chain */
  fd_zk_view_t zk_view;    /* as of the last tick */
  uint64_t epoch;          /* the chain's epoch this origin follows (0: static) */
  bool epoch_known;        /* ZooKeeper: the chain znode was read (chain messages wait for it) */
  bool leads;              /* the head, and may order changes now */
  uint64_t chain_gen, members_gen;
  uint64_t zk_changes;     /* fd_zk_changes when the session was last copied */
  bool claiming;           /* a conditional update of the chain znode in flight */
  uint64_t tick_ms;        /* the last nd_group_tick */
  bool unconfirmed;        /* after a stall: the session is checked before leading again */
  uint64_t refused_n, refused_log_ms; /* refusals of a head that may not order (logged 1/s) */
  nd_chain_view_t claim, chain;
  nd_dedup_t dedup;
  uint32_t min_durable;
  uint64_t bump_changes, bump_bytes, bump_interval_ms;
  uint32_t write_chunk_size;
  nd_origin_metrics_t m;
  /* the write path */
  nd_wlog_t wlogs[ND_WLOGS_MAX];
  nd_link_t link;
  bool has_next;   /* a next origin takes the changes */
  bool failed;     /* a changelog write failed: nothing more is acknowledged */
  char halted[FD_NAME_LEN_MAX + 1]; /* a file whose merge the origins disagree on */
  uint8_t *pack_buf; /* FD_LOG_RECORD_MAX: a record packed for the log */
  nd_wqueued_t *queued, *queued_tail; /* head: changes waiting for room, FIFO */
  uint32_t queued_n;
  uint64_t queued_bytes;
  nd_pub_t pubs[ND_PUBS_MAX];
  nd_warm_t warms[ND_PUBS_MAX];
  nd_missing_t waits[ND_PUBS_MAX];
  nd_uncommitted_t uncommitted[ND_PUBS_MAX];
  uint64_t commit_retry_ms;
  bool stopping;
};

/* nd_group.c */
/* The chain znode's text ("epoch E" and "chain a,b,c" lines) into c: 0 or
 * -EINVAL (every id 1..FD_NAME_LEN_MAX bytes, epoch above 0, at most
 * ND_ORIGINS_MAX ids). text is NUL-terminated. */
int nd_chain_parse(const char *text, nd_chain_view_t *c);
/* ... and back: the length written (with its NUL not counted) or -EMSGSIZE. */
int nd_chain_format(const nd_chain_view_t *c, char *buf, size_t cap);
int nd_group_register(nd_origin_t *og); /* Head; the chain znode's watch */
void nd_group_tick(nd_origin_t *og);
/* A chain message (what) of the given epoch may be taken: true; else the
 * call was finished with the refusal (and it is logged). */
bool nd_group_chain_ok(nd_origin_t *og, uint64_t epoch, rpc_call_t *call, const char *what);
void nd_group_saw_epoch(nd_origin_t *og, uint64_t epoch);
/* Finishes call with "not the head; the head is ..." (or, a head that
 * cannot be sure it leads, the reason). */
int nd_group_not_head(nd_origin_t *og, rpc_call_t *call);
/* False from a stall of the loop (the session may have expired unseen)
 * until the next tick confirmed the session; always true without zk. */
bool nd_group_fresh(const nd_origin_t *og);
/* May order now: leads, and fresh. */
static inline bool nd_group_orders(const nd_origin_t *og) { return og->leads && nd_group_fresh(og); }

/* nd_origin.c */
/* Asks the origin at the other end of conn which chunks of v it lacks
 * (Missing with replicate = true, which starts its delta). NULL with errno. */
rpc_call_t *nd_origin_ask_missing(rpc_conn_t *conn, const nd_ver_t *v, const rpc_call_cbs_t *cbs,
                                  void *arg);

/* nd_merge.c, for nd_link.c: the next origin answered a bump's batch */
void nd_merge_chain_answered(nd_wlog_t *w);

/* nd_publish.c */
int nd_pub_register(nd_origin_t *og); /* Publish and Replicate handlers */
void nd_pub_tick(nd_origin_t *og);
/* This origin and the chain behind it are done with p's version (err 0:
 * every origin in p->chain.held holds it): answer, commit, or abort. */
void nd_pub_chain_done(nd_pub_t *p, int err);
/* fdsched answered the head's commit (or could not be asked): answer fdadmin. */
void nd_pub_committed(nd_pub_t *p, int err);

/* nd_chain.c */
void nd_chain_begin(nd_pub_t *p);  /* from the first part of a reception */
void nd_chain_abort(nd_chain_t *c); /* the publish failed */
void nd_chain_tick(nd_chain_t *c);  /* starts a try that waited its turn */
/* Copies the complete version v to origins[to] alone (catch-up), then
 * done(arg, 0 or -errno). v is held by the caller until done. */
void nd_chain_copy(nd_chain_t *c, nd_origin_t *og, nd_ver_t *v, uint32_t to,
                   void (*done)(void *arg, int err), void *arg);

/* nd_commit.c */
/* Tells fdsched a publish began (PENDING) or failed (aborted); fire and forget. */
void nd_commit_state(nd_origin_t *og, const nd_ver_t *v, bool aborted);
/* Commits v with fdsched (COMMITTED, held by the origins ids); then
 * done(arg, 0 or -errno). A commit fdsched does not confirm is retried (v
 * held) until it does; done hears the first answer either way. */
void nd_commit(nd_origin_t *og, nd_ver_t *v, char **ids, uint32_t n,
               void (*done)(void *arg, int err), void *arg);
/* Commits p's version (the origins that hold it); then nd_pub_committed. */
void nd_commit_version(nd_pub_t *p);
void nd_commit_retry(nd_origin_t *og); /* retries the commits fdsched did not confirm */
void nd_commit_release(nd_origin_t *og); /* at destroy */

#endif /* ND_ORIGIN_INT_H */
