/*
 * fdclient.h — the writers' client library, libfdclient (prefix fdc_).
 *
 * A writer changes a file the origin group keeps: a write puts bytes at an
 * offset, an append lets the group's head put them at the file's end, a bump
 * closes the changes so far into the next version (docs/ARCHITECTURE.md,
 * "Writers"). This library is the only thing a writer needs.
 *
 * Owns: one connection to the origin group's head, on an rpc client engine
 * that lives on the caller's thread, and the changes in flight on it. The
 * head is found by asking the origins (Origin.Head: the first that leads),
 * and found again when it moves (issue 22). Each
 * change is one unary Origin.Write (Origin.Bump for a bump); many are in
 * flight at once on the one connection (pipelining), up to inflight_max
 * changes holding up to inflight_bytes_max bytes of data. The data is copied
 * at call time into a byte ring allocated once by fdc_open, and kept until the
 * change's outcome is known.
 *
 * Guarantees:
 *  - A change is reported acknowledged (err 0, with its fdc_seq_t) only on
 *    the head's WriteReply, which the head sends once every live origin, and
 *    at least min_durable_origins of them, holds the change durably. Nothing
 *    else reports success.
 *  - Every change a call accepted (returned 0) ends exactly once: its done
 *    callback (async) runs once, or its synchronous call returns once — also
 *    when no head answers before its deadline (it fails, and is never
 *    reported acknowledged) and in fdc_close (-ECANCELED).
 *  - Each write and append carries this client's random client_id and
 *    client_seq 1, 2, 3... in call order. Every origin remembers a change by
 *    that pair, so a change sent again — to the same head or a new one — is
 *    ordered once at most, and answered with where it first went.
 *  - A change is sent again, until its deadline (timeout_ms from its call;
 *    bump_timeout_ms for a bump), when its outcome is not known yet and
 *    another attempt may settle it: the connection to the head was lost, or
 *    the origin answered "not the head" (FAILED_PRECONDITION; the library
 *    connects to the head it names, else asks the origins), UNAVAILABLE
 *    (the head again, or a new one), or ABORTED (the head will take it
 *    shortly; after FDC_RETRY_MS), or a write's attempt had no answer for
 *    FDC_ATTEMPT_MS (5 s: a head paused or cut off keeps its connection
 *    open; the head is looked for again). Every change whose outcome is unknown is
 *    sent again, with the same client_id and client_seq, in call order;
 *    only at its deadline does it fail — with an outcome-unknown error
 *    (fdc_outcome_unknown) when any attempt may have been ordered. So an
 *    acknowledged change is applied once, and a change in flight when the
 *    head died is either applied once (and acknowledged, if the deadline
 *    allows) or reported failed.
 *  - Changes are sent in call order; a change sent again goes after those
 *    the head had ordered already (its fdc_seq_t says where it went).
 *  - Done callbacks run in the order the outcomes arrive, which is not
 *    necessarily call order: a head acknowledges a durable prefix of its log,
 *    so in practice by index, but the library neither waits for nor reorders
 *    them. Where a change went is its fdc_seq_t, never its callback's turn.
 *  - Callbacks run only inside fdc_poll, fdc_wait, a synchronous call or
 *    fdc_close, after the engine's completions are collected: never
 *    recursively, never from inside an async call.
 *
 * Never: sends a change as a new one (a caller that resends a change that
 * failed makes a new change, with a new client_seq: it may then be applied
 * twice when the first was in the log — fdc_outcome_unknown says which may
 * be), sends a change again after a definite refusal (EACCES, EINVAL, ...),
 * takes a lock, or starts a thread. A bump carries no identity: a bump sent
 * again after its answer was lost closes the log being built then (when the
 * first took, that is the next one: nothing new to merge gives the newest
 * version with changes 0).
 *
 * Threads: an fdc_t belongs to the thread that opened it (asserted); open one
 * per thread. Callbacks may start async changes; they must not call fdc_poll,
 * fdc_wait, a synchronous call or fdc_close (asserted).
 *
 * Memory: fdc_open allocates everything the client uses (the engine, the
 * change slots, the byte ring); fdc_close frees it. Data passed to a call is
 * copied before the call returns; names too. Nothing the library hands out
 * needs freeing: an fdc_seq_t is valid during its callback (copy it), the
 * string from fdc_last_error until the next library call.
 *
 * Errors are negative errno values; what the head answered maps as follows
 * (fdc_last_error gives the head's message, or the library's reason):
 *
 *   refused, not applied (after the retries above, for those retried):
 *     -EACCES      PERMISSION_DENIED, UNAUTHENTICATED: the key lacks the
 *                  writer or admin role
 *     -EINVAL      INVALID_ARGUMENT (e.g. a name the head refuses), or a bad
 *                  argument to the call
 *     -EMSGSIZE    data longer than FDC_WRITE_BYTES_MAX (refused locally)
 *     -ENOENT      NOT_FOUND (e.g. a bump of a name the head does not know)
 *     -EFBIG       OUT_OF_RANGE: the change would end past the largest file
 *     -ENOLINK     FAILED_PRECONDITION: the group cannot hold it durably
 *                  (fewer than min_durable_origins live); the message says.
 *                  Also, at the deadline: no origin would order it ("not
 *                  the head", or UNAVAILABLE "no head: ..." while the head
 *                  waits for ZooKeeper)
 *     -EBUSY       ABORTED (at the deadline: the head kept asking to try
 *                  again, e.g. a newly elected head comparing its logs),
 *                  ALREADY_EXISTS
 *     -ENOBUFS     RESOURCE_EXHAUSTED: the head is full (too many changes or
 *                  streams from this connection); try again later
 *     -EOPNOTSUPP  UNIMPLEMENTED: the head does not serve Write/Bump (an fdnode
 *                  older than the write path)
 *     -ENOTCONN    not sent: no origin head could be reached before its
 *                  deadline (fdc_last_error says what each origin answered)
 *     -EAGAIN      async only: inflight_max changes or inflight_bytes_max
 *                  bytes are in flight; run fdc_poll and call again
 *   outcome unknown (the change may be in the log; fdc_outcome_unknown):
 *     -ETIMEDOUT   DEADLINE_EXCEEDED, or timeout_ms passed without an answer,
 *                  or a refusal at the deadline after an earlier attempt
 *                  whose outcome was lost
 *     -ECONNRESET  UNAVAILABLE at the deadline: the connection to the head
 *                  was lost after the change was sent, or the head said it
 *                  cannot serve
 *     -ECANCELED   fdc_close came before the answer
 *     -EREMOTEIO   INTERNAL, UNKNOWN, DATA_LOSS: the head failed
 *     -EPROTO      an answer the library cannot read
 *   fdc_open only (nothing is sent): -EINVAL (options; a key or certificate
 *   file that is not one), -ENOENT and other errors of reading the files,
 *   -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH... (no origin completed the
 *   handshake), -EKEYREJECTED (an origin refused the handshake: another
 *   cluster key, or a key it does not trust), -ENOMEM. An origin that
 *   completed the handshake while none leads is no error: the changes look
 *   for the head until their deadlines.
 */
#ifndef FDCLIENT_H
#define FDCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One change's data, at most (common/fd_limits.h: FD_WRITE_BYTES_MAX). */
#define FDC_WRITE_BYTES_MAX (1u << 20)
#define FDC_DIGEST_LEN 32u /* SHA-256 */

typedef struct fdc fdc_t;

typedef struct fdc_opts {
  const char *origins;          /* "host:port,...": the group's origins, in any order
                                   (required): each is asked who heads; the first that
                                   leads (or that names the head) is taken. */
  const char *cluster_key_file; /* 64 hex chars (required) */
  const char *key_file;         /* Ed25519 private key (PEM): a writer's, or the admin's
                                   (required) */
  const char *cert_file;        /* the writer key's certificate, signed by the admin;
                                   NULL: key_file is the admin key */
  uint32_t timeout_ms;          /* each change's deadline from its call; 0: 30 s */
  uint32_t bump_timeout_ms;     /* a bump's (it waits for the merge); 0: 10 min */
  uint32_t connect_timeout_ms;  /* per origin tried; 0: 5 s */
  uint32_t inflight_max;        /* changes in flight at once; 0: 256; at most 1024 */
  uint64_t inflight_bytes_max;  /* their data; 0: 64 MiB; at least FDC_WRITE_BYTES_MAX */
} fdc_opts_t;

/* Where an acknowledged change went: the log building v<version>, its index
 * in that log (from 0, no gaps), and its offset in the file (an append's is
 * the one the head chose). */
typedef struct fdc_seq {
  uint64_t version, index, offset;
} fdc_seq_t;

/* What a bump made: the version the closed log became (committed on every
 * origin), the changes merged into it, and its manifest digest. With no
 * change to merge: the newest version, changes 0, an all-zero digest. */
typedef struct fdc_bumped {
  uint64_t version, changes;
  uint8_t digest[FDC_DIGEST_LEN];
} fdc_bumped_t;

/* An async change's end: err 0 and seq, or err < 0 and seq NULL. */
typedef void (*fdc_done_fn)(void *arg, int err, const fdc_seq_t *seq);

/* Reads the keys, creates the engine and connects to the head: the origins in
 * order are asked Origin.Head, the first that leads is taken (an origin that
 * does not serve Head, an fdnode older than issue 22, is taken as the head
 * when it completes the handshake); heads they name are tried after them.
 * 0 and *out, or -errno and *out NULL, with why (may be NULL) saying what
 * went wrong for each origin. */
int fdc_open(const fdc_opts_t *o, fdc_t **out, char *why, size_t why_len);
/* Ends every change still in flight (-ECANCELED, callbacks run here), closes
 * the connection and frees everything. NULL is a no-op. Call fdc_wait first
 * to let changes in flight finish. */
void fdc_close(fdc_t *c);

/* Synchronous: return once the change ended; 0 and *seq (may be NULL) when
 * acknowledged. They first wait for room when async changes fill the client,
 * and run those changes' callbacks while they wait. When the head is lost,
 * they look for it again (blocking up to connect_timeout_ms per origin tried)
 * and send again the changes whose outcome is unknown. */
int fdc_write(fdc_t *c, const char *name, uint64_t offset, const void *data, size_t len,
              fdc_seq_t *seq);
int fdc_append(fdc_t *c, const char *name, const void *data, size_t len, fdc_seq_t *seq);
/* Waits until every change in flight ended, then closes the log building the
 * next version of name and waits until that version is committed. */
int fdc_bump(fdc_t *c, const char *name, fdc_bumped_t *out);

/* Asynchronous: 0 once the change is accepted (data copied, done will run
 * exactly once from fdc_poll / fdc_wait / a synchronous call / fdc_close), or
 * -errno and done never runs: -EAGAIN when the client is full (it never
 * blocks for room: poll, then call again), -EINVAL, -EMSGSIZE. The change is
 * queued at once and goes out on the wire at the next fdc_poll (or any call
 * that runs the engine); an async call never connects: with the head lost,
 * the next fdc_poll looks for it. */
int fdc_write_async(fdc_t *c, const char *name, uint64_t offset, const void *data, size_t len,
                    fdc_done_fn done, void *arg);
int fdc_append_async(fdc_t *c, const char *name, const void *data, size_t len, fdc_done_fn done,
                     void *arg);

/* Sends what waits, collects answers for up to timeout_ms (returning at the
 * first), then runs the callbacks of every change that ended. Returns how
 * many ran, or -errno. Returns at once when nothing is in flight. When the
 * head is lost it looks for it again first, which may take longer than
 * timeout_ms (connect_timeout_ms per origin tried, at most). */
int fdc_poll(fdc_t *c, uint32_t timeout_ms);
/* Polls until nothing is in flight: 0, or -ETIMEDOUT after timeout_ms (the
 * changes still in flight stay in flight). */
int fdc_wait(fdc_t *c, uint32_t timeout_ms);
/* Changes accepted whose callback has not run yet. */
uint32_t fdc_inflight(const fdc_t *c);
/* This client's random client_id, sent with every write and append (never 0). */
uint64_t fdc_client_id(const fdc_t *c);
/* The head connected to: "ID@ADDR:PORT" as it answered Origin.Head
 * ("ADDR:PORT" for an origin that does not serve Head), or "" while none.
 * Valid until the next library call. */
const char *fdc_head(const fdc_t *c);

/* Why the last change that failed failed: the head's status message, or the
 * library's reason; during a failed change's callback, that change's. "" when
 * none has failed. */
const char *fdc_last_error(const fdc_t *c);
/* Text for an error this library returns; never NULL. */
const char *fdc_strerror(int err);
/* True when a change that failed with err may nonetheless be in the log (its
 * outcome is unknown: deadline, connection lost after sending, ...). */
bool fdc_outcome_unknown(int err);

#ifdef __cplusplus
}
#endif

#endif /* FDCLIENT_H */
