/*
 * fdc_int.h — libfdclient's insides, shared by its files and nothing else
 * (fdclient.h is the public header; this is to it what sqliteInt.h is to
 * sqlite3.h).
 *
 * A change lives in one slot from its call to its callback: FREE, then
 * QUEUED (accepted, waiting for the connection's window or for a head), SENT
 * (an rpc call in flight), ENDED (outcome known, callback not run yet), then
 * FREE again. A SENT change whose answer says another head may take it (the
 * connection lost, "not the head", UNAVAILABLE, ABORTED) goes back to QUEUED
 * until its deadline: the queue is kept in call order (fdc_change_t.order),
 * so changes sent again go in their original order. Callbacks run in the
 * order outcomes arrived (the ended list). Its data sits in the byte ring
 * from its call until its callback.
 */
#ifndef FDC_INT_H
#define FDC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "fd_hash.h"
#include "fd_limits.h"
#include "fdclient.h"
#include "rpc.h"

/* The public header's copy of a limit (it includes nothing of the tree's). */
_Static_assert(FDC_WRITE_BYTES_MAX == FD_WRITE_BYTES_MAX, /* NOLINT(misc-redundant-expression) */
               "fdclient.h agrees with fd_limits.h");
_Static_assert(FDC_DIGEST_LEN == FD_SHA256_LEN, "a digest is a SHA-256");

/* The library's own bounds (beside common/fd_limits.h's FDC_*, which this
 * file's owners do not edit; move them there when convenient). */
#define FDC_RETRY_MS 50u  /* a change sent again waits this long after a refusal */
#define FDC_SEARCH_RETRY_MS 200u /* a search for the head that found none is run again then */
/* One attempt of a write waits this long for its answer (its deadline
 * permitting): a head that answers nothing (paused, partitioned: its
 * connection stays up) is left, the head looked for again and the change
 * sent again (the head recognises it by client_id/client_seq). Bumps wait
 * for a merge: their attempts run to their deadline. */
#define FDC_ATTEMPT_MS 5000u
#define FDC_HEAD_CANDIDATES_MAX (2u * FDC_ORIGINS_MAX) /* origins given, then heads named */
#define FDC_HEAD_LEN_MAX (FD_NAME_LEN_MAX + FDC_ADDR_LEN_MAX) /* "ID@ADDR:PORT" */
_Static_assert(FDC_RETRY_MS < FDC_TIMEOUT_MS_DEFAULT, "a change can be sent again");

/* ---- the byte ring (fdc_bytes.c) ----
 * Copies of changes' data, taken in call order and given back in any order:
 * a span is reclaimed once it and every span taken before it are given back
 * (outcomes arrive mostly in order, so little waits). A span never wraps; the
 * bytes skipped at the end to keep it whole count as used until then. */
typedef struct fdc_span {
  uint64_t end;
  bool held;
} fdc_span_t;

typedef struct fdc_bytes {
  uint8_t *buf;
  uint64_t cap, head, tail; /* positions grow; buf index = position % cap */
  fdc_span_t *spans;        /* nspans entries, indexed by span id % nspans */
  uint32_t nspans, span_head, span_tail;
} fdc_bytes_t;

int fdc_bytes_init(fdc_bytes_t *b, uint64_t cap, uint32_t nspans);
void fdc_bytes_deinit(fdc_bytes_t *b);
bool fdc_bytes_fit(const fdc_bytes_t *b, uint32_t len);
/* Takes len bytes (fdc_bytes_fit must be true); returns the span id. */
uint32_t fdc_bytes_take(fdc_bytes_t *b, uint32_t len, uint64_t *pos);
void fdc_bytes_give(fdc_bytes_t *b, uint32_t span);
static inline uint8_t *fdc_bytes_at(const fdc_bytes_t *b, uint64_t pos) {
  return b->buf + pos % b->cap;
}

/* ---- changes (fdc_change.c) ---- */

typedef enum fdc_state { FDC_FREE, FDC_QUEUED, FDC_SENT, FDC_ENDED } fdc_state_t;

/* Where a synchronous call waits for its change's outcome (on its stack). */
typedef struct fdc_sync {
  bool ended;
  int err;
  fdc_seq_t seq;
  fdc_bumped_t bumped;
} fdc_sync_t;

typedef struct fdc_change {
  fdc_t *c;
  struct fdc_change *next; /* on the free, queued or ended list */
  fdc_state_t state;
  bool bump, append;
  bool replied;  /* the reply message came (before the OK status) */
  bool expired;  /* ended by the library's sweep, past its deadline */
  bool maybe;    /* an attempt's outcome was lost: it may be in the log */
  uint32_t tries; /* times sent */
  int last_err;  /* the last attempt's error (0: none failed yet) */
  uint64_t order; /* call order, bumps included: the queue's order */
  uint32_t len;  /* data bytes (0: a bump) */
  uint32_t span; /* in the byte ring, when len > 0 */
  uint64_t pos;
  uint64_t offset, client_seq, deadline_ms;
  uint64_t attempt_end_ms; /* this attempt times out then (FDC_ATTEMPT_MS; bumps: the deadline) */
  rpc_call_t *call; /* while SENT */
  fdc_done_fn done; /* async */
  void *arg;
  fdc_sync_t *sync; /* sync */
  int err;
  fdc_seq_t seq;
  fdc_bumped_t bumped;
  char name[FD_NAME_LEN_MAX];
  char message[FDC_MESSAGE_LEN_MAX];
} fdc_change_t;

typedef struct fdc_list {
  fdc_change_t *head, *tail;
} fdc_list_t;

struct fdc {
  /* from the options, fixed */
  char origins[FDC_ORIGINS_MAX][FDC_ADDR_LEN_MAX];
  uint32_t norigins;
  uint8_t cluster_key[32];
  fd_ed25519_key_t key;
  uint8_t cert[FDC_CERT_LEN_MAX];
  size_t cert_len;
  bool writer; /* key + cert: the writer role; else the admin role */
  uint32_t timeout_ms, bump_timeout_ms, connect_timeout_ms, inflight_max;
  uint64_t client_id;
  uint32_t write_method, bump_method, head_method; /* Origin's method indexes */
  /* the connection (fdc_conn.c) */
  rpc_engine_t *e;
  rpc_conn_t *conn; /* the head's, or one being tried; NULL once closed */
  bool ready;
  int conn_err;     /* why conn closed */
  char head[FDC_HEAD_LEN_MAX]; /* the connected head, "ID@ADDR:PORT" ("" none) */
  char named[FDC_ADDR_LEN_MAX]; /* "ADDR:PORT" an origin named as the head: tried first */
  bool drop_conn;   /* an answer said this is not (or no longer) the head */
  char conn_why[FDC_MESSAGE_LEN_MAX]; /* why the last search for the head failed */
  /* changes (fdc_change.c) */
  fdc_change_t *slots; /* inflight_max */
  fdc_change_t *free_slots;
  fdc_list_t queued, ended;
  uint32_t inflight; /* accepted, callback not run */
  uint32_t nsent;    /* SENT: rpc calls in flight */
  uint64_t next_seq, next_order;
  uint64_t retry_at_ms; /* queued changes wait until then (after a refusal) */
  uint64_t next_sweep_ms;
  fdc_bytes_t bytes;
  bool in_callback, closing;
  char last_error[FDC_MESSAGE_LEN_MAX];
};

int fdc_changes_init(fdc_t *c, uint64_t bytes_max);
/* Ends every change in flight with -ECANCELED and runs the callbacks. */
void fdc_changes_cancel(fdc_t *c);
void fdc_changes_deinit(fdc_t *c);

/* ---- the connection (fdc_conn.c) ---- */

/* Connects to the head unless connected: the origin last named as the head
 * first, then the origins in the order given, then heads they name; each is
 * asked Origin.Head and the first that leads is taken (one that does not
 * serve Head, an older fdnode, is taken as the head: the old rule). 0; or
 * -ENOLINK: some origin completed the handshake, none leads; or the first
 * origin's -errno (-EKEYREJECTED when one refused the handshake). why says
 * what each origin answered. Runs the engine (blocks, at most
 * connect_timeout_ms per origin tried). */
int fdc_conn_open(fdc_t *c, char *why, size_t why_len);
bool fdc_conn_ready(const fdc_t *c);
/* Closes the connection and waits (briefly) for it to go. */
void fdc_conn_close(fdc_t *c);
/* The -errno a status from the head becomes (fdclient.h's table). */
int fdc_err_from_code(rpc_code_t code);

/* What a failed attempt lets the library do (issue 22). */
typedef enum fdc_retry {
  FDC_FINAL,      /* the outcome: report it */
  FDC_RETRY_SAME, /* ABORTED: the head will take it shortly; send it again there */
  FDC_RETRY_FIND, /* not the head, UNAVAILABLE, connection lost: find the head again */
} fdc_retry_t;
/* The retry an attempt's status allows; *maybe (not NULL) is set when the
 * attempt may have been ordered (UNAVAILABLE other than "no head": the
 * connection lost after sending). */
fdc_retry_t fdc_retry_kind(rpc_code_t code, const char *message, bool *maybe);
/* "... the head is ID@ADDR:PORT" (a refusal's message): true and ADDR:PORT
 * in addr when it names a head whose address is IPv4:port. */
bool fdc_head_named(const char *message, char *addr, size_t addr_len);

#endif /* FDC_INT_H */
