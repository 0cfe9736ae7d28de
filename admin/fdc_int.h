/*
 * fdc_int.h — libfdclient's insides, shared by its files and nothing else
 * (fdclient.h is the public header; this is to it what sqliteInt.h is to
 * sqlite3.h).
 *
 * A change lives in one slot from its call to its callback: FREE, then
 * QUEUED (accepted, waiting for the connection's window), SENT (an rpc call
 * in flight), ENDED (outcome known, callback not run yet), then FREE again.
 * Queued and ended changes are on FIFO lists, so changes are sent in call
 * order and callbacks run in the order outcomes arrived. Its data sits in the
 * byte ring from its call until its callback.
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
  uint32_t len;  /* data bytes (0: a bump) */
  uint32_t span; /* in the byte ring, when len > 0 */
  uint64_t pos;
  uint64_t offset, client_seq, deadline_ms;
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
  uint32_t write_method, bump_method; /* Origin's method indexes */
  /* the connection (fdc_conn.c) */
  rpc_engine_t *e;
  rpc_conn_t *conn; /* the head's, or one being tried; NULL once closed */
  bool ready;
  int conn_err;     /* why conn closed */
  uint32_t head;    /* index in origins of the connected head */
  /* changes (fdc_change.c) */
  fdc_change_t *slots; /* inflight_max */
  fdc_change_t *free_slots;
  fdc_list_t queued, ended;
  uint32_t inflight; /* accepted, callback not run */
  uint64_t next_seq;
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

/* Connects to the head unless connected: the origins in order, the first that
 * completes the handshake. 0 or -errno, with why filled. Runs the engine. */
int fdc_conn_open(fdc_t *c, char *why, size_t why_len);
bool fdc_conn_ready(const fdc_t *c);
/* Closes the connection and waits (briefly) for it to go. */
void fdc_conn_close(fdc_t *c);
/* The -errno a status from the head becomes (fdclient.h's table). */
int fdc_err_from_code(rpc_code_t code);

#endif /* FDC_INT_H */
