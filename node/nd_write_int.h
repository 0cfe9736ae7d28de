/* nd_write_int.h — the origin role's write path (issue 21), for nd_wlog.c,
 * nd_writes.c, nd_link.c and nd_merge.c only; nd_origin_int.h includes it.
 *
 * Every origin keeps, per file with changes, the changelog of the version
 * being built (nd_wlog_t): the head assigns each change its index and
 * offset, appends it to its own log and to its outbox, the records the
 * downstream link (nd_link.c) sends to the next origin as AppendChanges
 * batches; the next origin does the same with what it receives. An index is
 * durable here once the log's fdatasync covered it (durable_local), and
 * durable in the chain once the next origin's acknowledgement covered it too
 * (durable_chain: the next origin answers only when it and everything after
 * it hold the batch). The head answers a writer when durable_chain passes
 * the change and at least min_durable_origins hold it. */
#ifndef ND_WRITE_INT_H
#define ND_WRITE_INT_H

/* included by nd_origin_int.h, after nd_chain_t */

/* A record of the outbox: a change ordered, not yet acknowledged by the
 * next origin. Its bytes are in the outbox's byte ring. */
typedef struct nd_orec {
  uint64_t index, offset;
  uint64_t client_id, client_seq;
  uint64_t data_off; /* in the byte ring (monotonic; modulo its size) */
  uint32_t len;
  bool bump;
  uint64_t created_s;  /* bump: the merged manifest's creation time */
  uint32_t chunk_size; /* bump: the merged version's chunk size */
  uint64_t epoch;      /* the chain's epoch whose head ordered it */
} nd_orec_t;

/* Where each writer's change went, by (client_id, client_seq): a change a
 * writer sends again (its head died, or its connection did, before the
 * answer) is answered with its first place instead of being ordered twice.
 * Every origin fills it from the records it takes (any may become head) and
 * from its logs at a restart. Two generations of ND_DEDUP_GEN_MAX changes
 * each: the older is dropped when the newer fills, so a retry is recognised
 * for at least ND_DEDUP_GEN_MAX changes after its first copy was ordered. */
typedef struct nd_dedup_ent {
  uint64_t client_id, client_seq; /* client_id 0: a free slot */
  uint64_t version, index, offset;
} nd_dedup_ent_t;
typedef struct nd_dedup {
  nd_dedup_ent_t *t[2]; /* open addressing, 2 x ND_DEDUP_GEN_MAX slots each */
  uint32_t n[2];
  uint32_t cur;
} nd_dedup_t;
void nd_dedup_put(nd_dedup_t *d, uint64_t client_id, uint64_t client_seq, uint64_t version,
                  uint64_t index, uint64_t offset);
const nd_dedup_ent_t *nd_dedup_get(const nd_dedup_t *d, uint64_t client_id, uint64_t client_seq);
void nd_dedup_free(nd_dedup_t *d);

/* A writer's call waiting for its change to be acknowledged (head). */
typedef struct nd_wwait {
  rpc_call_t *call;
  uint64_t index, offset;
  uint64_t arrived_ns; /* fd_now_ns when the head took the change (metrics) */
  bool retry;          /* a change held already, sent again (nd_dedup) */
} nd_wwait_t;

/* A writer's change the head took but could not order yet (its log had no
 * room): ordered, in arrival order, as room comes (head). */
typedef struct nd_wqueued {
  struct nd_wqueued *next;
  rpc_call_t *call; /* NULL: the writer went away before it was ordered */
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t offset;
  bool append;
  uint64_t client_id, client_seq;
  uint32_t len;
  uint64_t arrived_ns; /* fd_now_ns when the head took it */
  uint8_t data[]; /* len bytes */
} nd_wqueued_t;

/* An AppendChanges call from the origin before, waiting (not the head). */
typedef struct nd_cwait {
  rpc_call_t *call;
  uint64_t end; /* answered once durable_chain >= end */
  bool bump;    /* ... and the merge of this log finished */
} nd_cwait_t;

typedef enum nd_merge_state {
  ND_MERGE_NONE, ND_MERGE_WAIT, ND_MERGE_RUNNING, ND_MERGE_COMPLETING, ND_MERGE_DONE,
  ND_MERGE_FAILED
} nd_merge_state_t;

/* One file's changelog for the version being built, on this origin. */
typedef struct nd_wlog {
  bool used;
  nd_origin_t *og;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;        /* the log builds v<version> from v<version - 1> */
  st_log_t *log;
  uint64_t next;           /* the next index to order (head) or to receive */
  uint64_t durable_local;  /* every index below: fdatasync'd here */
  uint64_t durable_chain;  /* every index below: durable here and on every origin after */
  uint64_t acked;          /* every index below: the next origin said it and those after hold it */
  uint32_t chain_held;     /* origins holding [0, durable_chain): this one + those after */
  uint64_t size;           /* the file's size as of the last change (appends go there) */
  uint64_t last_epoch;     /* the epoch of the newest record taken */
  uint64_t changes, bytes; /* ordered into this log */
  uint64_t began_ms;
  bool closed;             /* its bump is ordered: nothing more comes into it */
  uint64_t bump_index;
  uint32_t chunk_size;     /* of the merged version */
  uint64_t created_s;
  /* the outbox: records ordered here, not yet acknowledged by the next origin */
  nd_orec_t *rec;          /* ND_OUTBOX_RECORDS */
  uint64_t rec_head, rec_tail; /* indexes (monotonic) of the oldest and the next record */
  uint64_t sent;           /* records below this index were sent to the next origin */
  uint8_t *ring;           /* ND_OUTBOX_BYTES */
  uint64_t ring_head, ring_tail;
  /* waiting callers */
  nd_wwait_t *ww;          /* head: writers, index order (ND_WRITES_INFLIGHT_MAX) */
  uint32_t ww_head, ww_len;
  nd_cwait_t cw[ND_CHANGE_CALLS_MAX]; /* the origin before's calls, in order */
  uint32_t cw_head, cw_len;
  rpc_call_t *bump_calls[ND_BUMP_WAITERS_MAX]; /* head: Bump calls answered at the commit */
  uint32_t bump_calls_n;
  /* the merge into v<version> */
  nd_merge_state_t merge;
  int merge_err;
  uint64_t merge_retry_ms;
  uint8_t digest[FD_SHA256_LEN];
  bool chain_merged;       /* the next origin's acknowledgement of the bump arrived */
  bool bump_resent;        /* its bump record went alone to a new next origin */
  char merged_origin[ND_ORIGINS_MAX][FD_NAME_LEN_MAX + 1]; /* ... and the digests it listed */
  uint8_t merged_digest[ND_ORIGINS_MAX][FD_SHA256_LEN];
  uint32_t merged_n;
  bool bump_wanted;        /* head: a Bump call waits for this log's bump to be ordered */
  struct nd_mjob *job;     /* the merge's worker (nd_merge.c) */
} nd_wlog_t;

/* The link to the next origin that answers (nd_link.c). */
typedef struct nd_batch {
  bool used;
  struct nd_link *l;
  nd_wlog_t *w;
  uint64_t start, end;     /* the indexes it carries */
  bool bump;
  bool backfill;           /* sent by a catch-up from this origin's log on disk */
  bool acked;
  st_log_pos_t bf_pos;     /* back-fill: where its records were read from, to go back to */
  rpc_call_t *call;
} nd_batch_t;

typedef enum nd_link_state {
  ND_LINK_DOWN,       /* no next origin */
  ND_LINK_CONNECTING, /* connecting, then the handshake */
  ND_LINK_CATCHUP,    /* bringing the next origin up to date (nd_catchup.c) */
  ND_LINK_LIVE        /* it takes every change: acknowledgements wait for it */
} nd_link_state_t;

/* One name's catch-up step in flight. */
typedef enum nd_cu_step { ND_CU_IDLE, ND_CU_STATE, ND_CU_COPY, ND_CU_ADOPT, ND_CU_BACKFILL } nd_cu_step_t;

typedef struct nd_link {
  nd_origin_t *og;
  uint32_t to;                 /* index in origins, UINT32_MAX: none */
  rpc_conn_t *conn;
  nd_link_state_t state;
  bool stopping;
  uint64_t probe_at_ms;        /* LIVE to a later origin: when to try an earlier one again */
  rpc_conn_t *probe;           /* ... the try */
  uint32_t probe_to;
  /* catch-up: every file this origin holds, one at a time */
  char (*names)[FD_NAME_LEN_MAX + 1]; /* ND_CATCHUP_NAMES_MAX */
  uint32_t names_n, name_i;
  nd_cu_step_t step;
  uint64_t step_at_ms;         /* a step that must wait (a merge on this side) starts then */
  rpc_call_t *cu_call;         /* LogState or LogRead */
  nd_chain_t copy;             /* a complete version copied across */
  nd_ver_t *copy_ver;
  nd_wlog_t *cu_w;             /* the log being adopted or back-filled */
  st_log_iter_t *bf_it;        /* back-fill: this origin's log read from disk */
  uint64_t bf_next, bf_end;
  uint64_t bf_from;            /* where the back-fill began (the next origin's end then) */
  st_log_pos_t bf_pos;         /* where the batch being read began in the log */
  uint64_t cu_durable;         /* adopt: what the next origin holds durably (LogState) */
  bool cu_full;                /* adopt: this origin's outbox had no room; asked again later */
  uint64_t retry_at_ms;
  uint64_t pause_until_ms;     /* the next origin had no room: sends wait until then */
  bool caught_up_once;         /* a catch-up ended since this origin started */
  uint64_t skip_until_ms[ND_ORIGINS_MAX]; /* origins left out until then */
  nd_batch_t batches[ND_LINK_BATCHES_MAX];
  uint32_t inflight;
  char held[ND_ORIGINS_MAX][FD_NAME_LEN_MAX + 1]; /* the origins the next one named: it first */
  uint32_t held_n;
} nd_link_t;

/* nd_wlog.c */
/* The log of name building `version`, or (version 0) the one taking changes. */
nd_wlog_t *nd_wlog_find(nd_origin_t *og, const char *name, uint64_t version);
nd_wlog_t *nd_wlog_newest(nd_origin_t *og, const char *name); /* the highest version's */
/* The log building name's next version: found, or opened (resuming what is
 * on disk) for `version` (0: newest complete + 1). 0 or -errno. */
int nd_wlog_get(nd_origin_t *og, const char *name, uint64_t version, nd_wlog_t **out);
/* Orders one record: appends it to the local log and the outbox. -EAGAIN:
 * no room (the outbox or the log's staging buffer): try again later. */
int nd_wlog_put(nd_wlog_t *w, const nd_orec_t *r, const uint8_t *data);
/* The next origin acknowledged every index below `end`, held by `held`
 * origins counting itself: the outbox lets go of them. */
void nd_wlog_acked(nd_wlog_t *w, uint64_t end, uint32_t held);
/* Without a next origin, the chain's durability is this origin's own; the
 * outbox lets go of what is durable here unless a catch-up is under way. */
void nd_wlog_alone(nd_wlog_t *w);
const uint8_t *nd_wlog_data(const nd_wlog_t *w, const nd_orec_t *r);
/* The epoch of w's record `index` (from the outbox, or read from the log on
 * disk): 0 and *epoch, or -ENOENT / the reader's -errno. */
int nd_wlog_epoch_at(nd_wlog_t *w, uint64_t index, uint64_t *epoch);
void nd_wlog_release(nd_wlog_t *w); /* let go of (the log file stays) */
/* Merged here and done with (committed, or answered upstream): released,
 * and its log file removed. */
void nd_wlog_retire_merged(nd_wlog_t *w);
void nd_wlogs_close(nd_origin_t *og);
/* At start: every log beyond a file's newest complete version, opened in
 * version order, so a closed one merges and an open one takes changes again
 * (and is compared with the next origin's before the head orders any). */
void nd_wlogs_resume(nd_origin_t *og);

/* nd_writes.c */
int nd_writes_register(nd_origin_t *og);
/* durable_chain moved: answer the writers (head) or the origin before. */
void nd_writes_progress(nd_wlog_t *w);
void nd_writes_tick(nd_origin_t *og); /* queued changes; thresholds: bump when due */
void nd_writes_stop(nd_origin_t *og);  /* queued changes end UNAVAILABLE, never ordered */
/* Not the head: a log merged here (or open for a version a catch-up copied
 * whole) is done with, its file removed, once no call waits on it and no
 * batch to the next origin refers to it. */
void nd_writes_retire(nd_wlog_t *w);

/* nd_link.c */
/* The chain's order changed (nd_group.c): the link starts again, to
 * whichever origin is next now, with a catch-up. */
void nd_link_rechain(nd_origin_t *og);
/* ... and nobody is left out any more (the indexes moved, or a retry is due now). */
void nd_link_forgive(nd_origin_t *og);
int nd_link_register(nd_origin_t *og); /* AppendChanges, LogState */
void nd_link_tick(nd_origin_t *og);    /* connect, send batches */
uint32_t nd_link_live(const nd_origin_t *og); /* origins known to hold changes: self + chain */
/* Origins that hold, or are about to hold, what is ordered now: those of a
 * live chain, or 2 while a next origin is being joined (or one is left to
 * try). Below min_durable_origins, changes and publishes are refused. */
uint32_t nd_link_reachable(const nd_origin_t *og);
bool nd_link_refers(const nd_link_t *l, const nd_wlog_t *w); /* a batch in flight is w's */

/* nd_catchup.c */
void nd_catchup_begin(nd_link_t *l);  /* the next origin just answered: bring it up to date */
void nd_catchup_tick(nd_link_t *l);
void nd_catchup_end(nd_link_t *l);    /* the link went down: let go of the steps' state */
int nd_catchup_register(nd_origin_t *og); /* LogRead */
/* nd_link.c, for nd_catchup.c */
int nd_link_send(nd_link_t *l, nd_wlog_t *w, Origin__Change **cs, uint32_t n, bool bump,
                 bool backfill);
/* nd_catchup.c, for nd_link.c: a back-fill batch was not taken (no room
 * there, or no stream here): the back-fill goes on from `from` again. */
void nd_catchup_rewind(nd_link_t *l, uint64_t from, st_log_pos_t pos);
void nd_link_live_now(nd_link_t *l);
void nd_link_fail(nd_link_t *l, const char *why);

/* nd_merge.c */
void nd_merge_tick(nd_origin_t *og);   /* start merges whose bump is durable; finish them */
void nd_merge_stop(nd_origin_t *og);

#endif /* ND_WRITE_INT_H */
