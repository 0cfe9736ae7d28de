/*
 * fdc_change.c — libfdclient's changes: accepting them (a slot, a copy of the
 * data), sending them in call order as unary Origin.Write / Origin.Bump calls
 * on the head's connection, collecting their outcomes from the engine's
 * callbacks, and running the caller's callbacks afterwards (fdc_poll,
 * fdc_wait, the synchronous calls).
 *
 * The engine's callbacks only record: an outcome moves its change to the
 * ended list, and the caller's done runs later, from deliver(), outside the
 * engine (completions collected first, callbacks after; no recursion).
 *
 * Sending again (issue 22): an attempt answered by a lost connection, "not
 * the head", UNAVAILABLE or ABORTED does not end its change before the
 * change's deadline: the change goes back to the queue in call order, and
 * the next engine turn outside the caller's async calls (kick, from pump)
 * finds the head again when needed and sends it with the same client_id and
 * client_seq, which every origin recognises: ordered once at most. A change
 * ends failed only at its deadline, as outcome-unknown when an attempt may
 * have been ordered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_time.h"
#include "fdc_int.h"

/* ---- lists ---- */

static void push(fdc_list_t *l, fdc_change_t *ch) {
  ch->next = NULL;
  if (l->tail) l->tail->next = ch;
  else l->head = ch;
  l->tail = ch;
}

static fdc_change_t *pop(fdc_list_t *l) {
  fdc_change_t *ch = l->head;
  if (ch) {
    l->head = ch->next;
    if (!l->head) l->tail = NULL;
    ch->next = NULL;
  }
  return ch;
}

int fdc_changes_init(fdc_t *c, uint64_t bytes_max) {
  c->slots = calloc(c->inflight_max, sizeof(*c->slots));
  if (!c->slots) return -ENOMEM;
  int rc = fdc_bytes_init(&c->bytes, bytes_max, c->inflight_max);
  if (rc < 0) {
    free(c->slots);
    c->slots = NULL;
    return rc;
  }
  for (uint32_t i = c->inflight_max; i-- > 0;) {
    c->slots[i].c = c;
    c->slots[i].next = c->free_slots;
    c->free_slots = &c->slots[i];
  }
  return 0;
}

void fdc_changes_deinit(fdc_t *c) {
  fdc_bytes_deinit(&c->bytes);
  free(c->slots);
  c->slots = NULL;
}

/* ---- outcomes ---- */

static void end_change(fdc_change_t *ch, int err, const char *message) {
  FD_ASSERT(ch->state == FDC_QUEUED || ch->state == FDC_SENT);
  ch->state = FDC_ENDED;
  ch->call = NULL;
  ch->err = err;
  if (message != ch->message) /* a change failing with its last attempt's message */
    snprintf(ch->message, sizeof(ch->message), "%s",
             err && message && message[0] ? message : (err ? fdc_strerror(err) : ""));
  push(&ch->c->ended, ch);
}

/* A change that failed for good: an attempt that may be in the log makes
 * its outcome unknown, whatever the last attempt said. */
static void end_failed(fdc_change_t *ch, int err, const char *message) {
  if (ch->maybe && !fdc_outcome_unknown(err)) {
    char why[FDC_MESSAGE_LEN_MAX];
    snprintf(why, sizeof(why), "not acknowledged before its deadline, and an earlier attempt may "
             "be in the log (last: %.120s)", message && message[0] ? message : fdc_strerror(err));
    end_change(ch, -ETIMEDOUT, why);
    return;
  }
  end_change(ch, err, message);
}

/* Back to the queue, in call order: sent again by kick. */
static void requeue(fdc_t *c, fdc_change_t *ch) {
  ch->state = FDC_QUEUED;
  fdc_change_t **p = &c->queued.head;
  while (*p && (*p)->order < ch->order) p = &(*p)->next;
  ch->next = *p;
  *p = ch;
  if (!ch->next) c->queued.tail = ch;
}

static void on_msg(rpc_call_t *call, const ProtobufCMessage *msg, void *arg) {
  (void)call;
  fdc_change_t *ch = arg;
  if (ch->replied) return; /* unary: the first answer counts */
  if (ch->bump) {
    const Origin__BumpReply *r = (const Origin__BumpReply *)msg;
    /* nothing to merge: the newest version, no changes, no digest */
    bool nothing = !r->changes && !r->digest.len;
    if (!nothing && r->digest.len != FDC_DIGEST_LEN) return; /* the OK ends it -EPROTO */
    ch->bumped.version = r->version;
    ch->bumped.changes = r->changes;
    memset(ch->bumped.digest, 0, FDC_DIGEST_LEN);
    if (!nothing) memcpy(ch->bumped.digest, r->digest.data, FDC_DIGEST_LEN);
  } else {
    const Origin__WriteReply *r = (const Origin__WriteReply *)msg;
    ch->seq = (fdc_seq_t){r->version, r->index, r->offset};
  }
  ch->replied = true;
}

static void on_done(rpc_call_t *call, rpc_code_t code, const char *message, void *arg) {
  (void)call;
  fdc_change_t *ch = arg;
  fdc_t *c = ch->c;
  FD_ASSERT(ch->state == FDC_SENT && c->nsent > 0);
  c->nsent--;
  ch->call = NULL;
  int err;
  if (code == RPC_OK) err = ch->replied ? 0 : -EPROTO;
  else if (ch->expired) err = -ETIMEDOUT;
  else err = fdc_err_from_code(code);
  if (err == -EPROTO) message = "the head answered OK without a readable reply";
  if (!err) {
    end_change(ch, 0, NULL);
    return;
  }
  bool maybe = false;
  fdc_retry_t k = ch->expired || c->closing ? FDC_FINAL : fdc_retry_kind(code, message, &maybe);
  if (code == RPC_DEADLINE_EXCEEDED && !ch->expired && !c->closing && !ch->bump &&
      fd_now_ms() >= ch->attempt_end_ms && fd_now_ms() < ch->deadline_ms) {
    /* an attempt unanswered for FDC_ATTEMPT_MS: the head may be gone while
     * its connection stays (paused): look for the head again */
    k = FDC_RETRY_FIND;
    maybe = true;
    message = "no answer from the head in time: looking for the head again";
  }
  ch->maybe |= maybe;
  if (code == RPC_UNAVAILABLE && k == FDC_RETRY_FIND && !maybe)
    err = -ENOLINK; /* "no head": refused, not ordered */
  ch->last_err = err;
  if (k == FDC_FINAL || fd_now_ms() >= ch->deadline_ms) {
    end_failed(ch, err, message);
    return;
  }
  snprintf(ch->message, sizeof(ch->message), "%s", message && message[0] ? message
                                                                           : fdc_strerror(err));
  if (k == FDC_RETRY_FIND) {
    c->drop_conn = true; /* kick closes it; its other changes come back too */
    char named[FDC_ADDR_LEN_MAX];
    if (fdc_head_named(message, named, sizeof(named)))
      snprintf(c->named, sizeof(c->named), "%s", named);
  }
  /* A refusal says "not now": wait a little before the next attempt. A lost
   * connection is found again at once. */
  if (code != RPC_UNAVAILABLE || !maybe) c->retry_at_ms = fd_now_ms() + FDC_RETRY_MS;
  requeue(c, ch);
}

static const rpc_call_cbs_t call_cbs = {on_msg, NULL, NULL, on_done};

/* ---- sending ---- */

static rpc_call_t *start(fdc_t *c, fdc_change_t *ch, uint32_t timeout_ms) {
  if (ch->bump) {
    Origin__BumpRequest r = ORIGIN__BUMP_REQUEST__INIT;
    r.name = ch->name;
    return rpc_call_start(c->conn, RPC_SVC_ORIGIN, &origin__origin__descriptor, c->bump_method,
                          RPC_UNARY, &r.base, timeout_ms, &call_cbs, ch);
  }
  Origin__WriteRequest r = ORIGIN__WRITE_REQUEST__INIT;
  r.name = ch->name;
  r.offset = ch->offset;
  r.data.data = fdc_bytes_at(&c->bytes, ch->pos);
  r.data.len = ch->len;
  r.append = ch->append;
  r.client_id = c->client_id;
  r.client_seq = ch->client_seq;
  return rpc_call_start(c->conn, RPC_SVC_ORIGIN, &origin__origin__descriptor, c->write_method,
                        RPC_UNARY, &r.base, timeout_ms, &call_cbs, ch);
}

/* Ends the queued changes past their deadline: never sent (the head's window
 * stayed full, or no head found), or sent and come back. */
static void expire_queued(fdc_t *c, uint64_t now) {
  fdc_change_t **p = &c->queued.head, *prev = NULL;
  while (*p) {
    fdc_change_t *ch = *p;
    if (now < ch->deadline_ms) {
      prev = ch;
      p = &ch->next;
      continue;
    }
    *p = ch->next;
    if (c->queued.tail == ch) c->queued.tail = prev;
    ch->next = NULL;
    if (ch->last_err) {
      end_failed(ch, ch->last_err, ch->message);
    } else if (fdc_conn_ready(c)) {
      end_change(ch, -ETIMEDOUT, "not sent before its deadline (the head's window stayed full)");
    } else {
      char why[FDC_MESSAGE_LEN_MAX];
      snprintf(why, sizeof(why), "not sent: no origin head before its deadline (%.200s)",
               c->conn_why[0] ? c->conn_why : "no connection");
      end_change(ch, -ENOTCONN, why);
    }
  }
}

/* Starts queued changes in order until the connection's window is full.
 * connect: may run the engine to close a connection that is not the head's
 * and to find the head (not from the async calls: they never block, and may
 * run inside a callback). */
static void kick(fdc_t *c, bool connect) {
  expire_queued(c, fd_now_ms());
  if (!connect && (!fdc_conn_ready(c) || c->drop_conn)) return;
  if (c->drop_conn) { /* its changes in flight come back to the queue now */
    fdc_conn_close(c);
    c->drop_conn = false; /* after: those changes said it again */
  }
  if (!c->queued.head || fd_now_ms() < c->retry_at_ms || c->closing) return;
  if (!fdc_conn_ready(c)) {
    if (c->nsent) return; /* every change on the old connection comes back first */
    int rc = fdc_conn_open(c, c->conn_why, sizeof(c->conn_why));
    if (rc < 0) {
      c->retry_at_ms = fd_now_ms() + FDC_SEARCH_RETRY_MS;
      return;
    }
    c->conn_why[0] = '\0';
  }
  fdc_change_t *ch;
  while ((ch = c->queued.head)) {
    uint64_t now = fd_now_ms();
    if (now >= ch->deadline_ms) { /* the search for the head took its time */
      expire_queued(c, now);
      continue;
    }
    errno = 0;
    uint64_t left = ch->deadline_ms - now;
    uint64_t attempt = ch->bump ? left : FD_MIN(left, FDC_ATTEMPT_MS);
    ch->attempt_end_ms = now + attempt;
    rpc_call_t *call = start(c, ch, (uint32_t)attempt);
    if (!call && errno == EAGAIN) return; /* the window reopens as the head reads */
    pop(&c->queued);
    if (!call) {
      int err = errno == ENOSPC ? -ENOBUFS : errno ? -errno : -EIO;
      end_failed(ch, err, "not sent");
      continue;
    }
    ch->call = call;
    ch->state = FDC_SENT;
    ch->tries++;
    c->nsent++;
  }
}

/* Ends changes the engine has not ended FDC_GRACE_MS past their deadline
 * (the engine does, at the deadline: this bounds the library's loops even
 * should it not). Runs every FDC_SWEEP_MS at most. */
static void sweep(fdc_t *c) {
  uint64_t now = fd_now_ms();
  if (now < c->next_sweep_ms) return;
  c->next_sweep_ms = now + FDC_SWEEP_MS;
  for (uint32_t i = 0; i < c->inflight_max; i++) {
    fdc_change_t *ch = &c->slots[i];
    if (ch->state == FDC_SENT && now > ch->deadline_ms + FDC_GRACE_MS) {
      ch->expired = true;
      rpc_call_cancel(ch->call); /* on_done runs now */
    }
  }
}

/* Runs the engine until some change ended, nothing is in flight, or
 * timeout_ms passed (at least one turn). 0 or the engine's -errno. */
static int pump(fdc_t *c, uint32_t timeout_ms) {
  uint64_t until = fd_now_ms() + timeout_ms;
  for (;;) {
    kick(c, true);
    sweep(c);
    uint64_t now = fd_now_ms();
    bool waiting = !c->ended.head && c->inflight > 0 && now < until;
    int rc = rpc_engine_run_once(c->e, waiting ? (uint32_t)FD_MIN(until - now, FDC_TURN_MS) : 0);
    if (rc < 0) return rc;
    kick(c, true);
    if (c->ended.head || !c->inflight || fd_now_ms() >= until) return 0;
  }
}

/* Runs the callbacks of the changes that ended so far (not of those ending
 * meanwhile, so a callback starting changes cannot keep this going); each
 * slot and span is free again before its callback runs. */
static int deliver(fdc_t *c) {
  fdc_list_t list = c->ended;
  c->ended = (fdc_list_t){0};
  int n = 0;
  fdc_change_t *ch;
  while ((ch = pop(&list))) {
    FD_ASSERT(ch->state == FDC_ENDED && c->inflight > 0);
    int err = ch->err;
    fdc_seq_t seq = ch->seq;
    fdc_done_fn done = ch->done;
    void *arg = ch->arg;
    fdc_sync_t *sync = ch->sync;
    if (err) snprintf(c->last_error, sizeof(c->last_error), "%s", ch->message);
    if (sync) {
      sync->ended = true;
      sync->err = err;
      sync->seq = seq;
      sync->bumped = ch->bumped;
    }
    if (ch->len) fdc_bytes_give(&c->bytes, ch->span);
    ch->state = FDC_FREE;
    ch->next = c->free_slots;
    c->free_slots = ch;
    c->inflight--;
    if (!sync && done) {
      c->in_callback = true;
      done(arg, err, err ? NULL : &seq);
      c->in_callback = false;
      n++;
    }
  }
  return n;
}

/* ---- accepting ---- */

typedef struct req {
  const char *name;
  bool bump, append;
  uint64_t offset;
  const void *data;
  size_t len;
  fdc_done_fn done;
  void *arg;
} req_t;

static bool has_room(const fdc_t *c, size_t len) {
  return c->free_slots && (len == 0 || fdc_bytes_fit(&c->bytes, (uint32_t)len));
}

static int check(const req_t *r) {
  size_t name_len = r->name ? strnlen(r->name, FD_NAME_LEN_MAX) : 0;
  if (name_len == 0 || name_len == FD_NAME_LEN_MAX) return -EINVAL;
  if (r->bump) return 0;
  if (r->len == 0 || !r->data) return -EINVAL;
  if (r->len > FD_WRITE_BYTES_MAX) return -EMSGSIZE;
  if (!r->append && r->offset > UINT64_MAX - r->len) return -EINVAL;
  return 0;
}

/* Accepts one change; *out (may be NULL) is its slot. sync: a synchronous
 * call's, which waits for room (running other changes' callbacks). */
static int submit(fdc_t *c, const req_t *r, fdc_sync_t *sync, fdc_change_t **out) {
  bool wait = sync != NULL;
  int rc = check(r);
  if (rc < 0) {
    snprintf(c->last_error, sizeof(c->last_error), "%s", rc == -EMSGSIZE
             ? "a change holds at most 1 MiB" : "bad name, or no data");
    return rc;
  }
  if (c->closing) return -ECANCELED;
  while (!has_room(c, r->len)) {
    if (!wait) return -EAGAIN;
    FD_ASSERT(c->inflight > 0); /* an empty client holds any one change */
    rc = pump(c, FDC_TURN_MS);
    deliver(c);
    if (rc < 0) return rc;
  }
  fdc_change_t *ch = c->free_slots;
  c->free_slots = ch->next;
  ch->state = FDC_QUEUED;
  ch->bump = r->bump;
  ch->append = r->append;
  ch->replied = ch->expired = ch->maybe = false;
  ch->tries = 0;
  ch->last_err = 0;
  ch->order = ++c->next_order;
  ch->offset = r->append ? 0 : r->offset;
  ch->len = (uint32_t)r->len;
  if (ch->len) {
    ch->span = fdc_bytes_take(&c->bytes, ch->len, &ch->pos);
    memcpy(fdc_bytes_at(&c->bytes, ch->pos), r->data, ch->len);
  }
  snprintf(ch->name, sizeof(ch->name), "%s", r->name);
  ch->client_seq = r->bump ? 0 : ++c->next_seq; /* writes are numbered 1, 2, 3... */
  ch->deadline_ms = fd_now_ms() + (r->bump ? c->bump_timeout_ms : c->timeout_ms);
  ch->done = r->done;
  ch->arg = r->arg;
  ch->sync = sync;
  ch->err = 0;
  ch->seq = (fdc_seq_t){0};
  ch->bumped = (fdc_bumped_t){0};
  ch->message[0] = '\0';
  c->inflight++;
  push(&c->queued, ch); /* the newest: the queue stays in call order */
  kick(c, false);
  if (out) *out = ch;
  return 0;
}

/* A synchronous change: accepted, then the engine runs until it ended. */
static int run_sync(fdc_t *c, const req_t *r, fdc_seq_t *seq, fdc_bumped_t *bumped) {
  FD_ASSERT(c && !c->in_callback);
  fdc_sync_t s = {0};
  fdc_change_t *ch = NULL;
  int rc = submit(c, r, &s, &ch);
  if (rc < 0) return rc;
  while (!s.ended) {
    rc = pump(c, FDC_TURN_MS);
    if (rc < 0 && !s.ended && ch->state != FDC_ENDED) {
      /* The engine failed: end the change here, s must not outlive us. */
      if (ch->state == FDC_SENT) {
        rpc_call_cancel(ch->call);
      } else {
        fdc_change_t *q; /* every queued change ends: nothing will send it */
        while ((q = pop(&c->queued))) end_failed(q, rc, "the client's engine failed");
      }
    }
    deliver(c);
  }
  if (seq && !s.err) *seq = s.seq;
  if (bumped && !s.err) *bumped = s.bumped;
  return s.err;
}

int fdc_write(fdc_t *c, const char *name, uint64_t offset, const void *data, size_t len,
              fdc_seq_t *seq) {
  req_t r = {.name = name, .offset = offset, .data = data, .len = len};
  return run_sync(c, &r, seq, NULL);
}

int fdc_append(fdc_t *c, const char *name, const void *data, size_t len, fdc_seq_t *seq) {
  req_t r = {.name = name, .append = true, .data = data, .len = len};
  return run_sync(c, &r, seq, NULL);
}

int fdc_bump(fdc_t *c, const char *name, fdc_bumped_t *out) {
  FD_ASSERT(c && !c->in_callback);
  /* Every change sent before the bump ends first: the bump then closes a log
   * holding each of them that was acknowledged (or an older one). */
  while (c->inflight) {
    int rc = pump(c, FDC_TURN_MS);
    deliver(c);
    if (rc < 0) return rc;
  }
  req_t r = {.name = name, .bump = true};
  return run_sync(c, &r, NULL, out);
}

int fdc_write_async(fdc_t *c, const char *name, uint64_t offset, const void *data, size_t len,
                    fdc_done_fn done, void *arg) {
  FD_ASSERT(c);
  req_t r = {.name = name, .offset = offset, .data = data, .len = len, .done = done, .arg = arg};
  return submit(c, &r, NULL, NULL);
}

int fdc_append_async(fdc_t *c, const char *name, const void *data, size_t len, fdc_done_fn done,
                     void *arg) {
  FD_ASSERT(c);
  req_t r = {.name = name, .append = true, .data = data, .len = len, .done = done, .arg = arg};
  return submit(c, &r, NULL, NULL);
}

int fdc_poll(fdc_t *c, uint32_t timeout_ms) {
  FD_ASSERT(c && !c->in_callback);
  int rc = pump(c, timeout_ms);
  int n = deliver(c);
  return rc < 0 ? rc : n;
}

int fdc_wait(fdc_t *c, uint32_t timeout_ms) {
  FD_ASSERT(c && !c->in_callback);
  uint64_t until = fd_now_ms() + timeout_ms;
  while (c->inflight) {
    uint64_t now = fd_now_ms();
    if (now >= until) return -ETIMEDOUT;
    int rc = fdc_poll(c, (uint32_t)FD_MIN(until - now, (uint64_t)UINT32_MAX));
    if (rc < 0) return rc;
  }
  return 0;
}

uint32_t fdc_inflight(const fdc_t *c) { return c->inflight; }

void fdc_changes_cancel(fdc_t *c) {
  fdc_change_t *ch;
  while ((ch = pop(&c->queued)))
    end_change(ch, -ECANCELED, ch->tries ? "fdc_close came before it was sent again"
                                         : "not sent: fdc_close came first");
  for (uint32_t i = 0; i < c->inflight_max; i++)
    if (c->slots[i].state == FDC_SENT) rpc_call_cancel(c->slots[i].call); /* on_done now */
  deliver(c);
  FD_ASSERT(c->inflight == 0);
}
