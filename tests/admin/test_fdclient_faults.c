/* libfdclient when things go wrong: the head refusing (each status; those that may pass on another attempt sent again until the deadline), dying mid-stream (changes sent again, none applied twice), gone (outcome unknown at the deadline), never answering (deadlines), too many streams, fdc_close with changes in flight. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_origin.h"
#include "fd_log.h"
#include "fd_time.h"
#include "fdclient.h"

typedef struct fx {
  char dir[64], cluster[96], admin[96], origins[64];
  fake_origin_t f;
} fx_t;

static int setup_with(void **state, uint32_t streams_max, uint32_t window_bytes) {
  fx_t *x = calloc(1, sizeof(*x));
  snprintf(x->dir, sizeof(x->dir), "/tmp/fdclient-faults.XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  x->f.streams_max = streams_max;
  x->f.window_bytes = window_bytes;
  fake_start(&x->f);
  fake_write_keys(&x->f, x->dir);
  snprintf(x->cluster, sizeof(x->cluster), "%s/cluster.key", x->dir);
  snprintf(x->admin, sizeof(x->admin), "%s/admin.pem", x->dir);
  snprintf(x->origins, sizeof(x->origins), "127.0.0.1:%u", atomic_load(&x->f.port));
  *state = x;
  return 0;
}

static int setup(void **state) { return setup_with(state, 0, 0); }
static int setup_16_streams(void **state) { return setup_with(state, 16, 0); }
static int setup_small_window(void **state) { return setup_with(state, 0, 2u << 20); }

static int teardown(void **state) {
  fx_t *x = *state;
  fake_stop(&x->f);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", x->dir);
  assert_int_equal(system(cmd), 0);
  free(x);
  return 0;
}

static fdc_t *open_client(const fx_t *x, uint32_t inflight, uint32_t timeout_ms) {
  fdc_opts_t o = {0};
  o.origins = x->origins;
  o.cluster_key_file = x->cluster;
  o.key_file = x->admin;
  o.inflight_max = inflight;
  o.timeout_ms = timeout_ms;
  o.bump_timeout_ms = timeout_ms;
  fdc_t *c = NULL;
  char why[512];
  int rc = fdc_open(&o, &c, why, sizeof(why));
  if (rc) fprintf(stderr, "fdc_open: %s: %s\n", fdc_strerror(rc), why);
  assert_int_equal(rc, 0);
  return c;
}

typedef struct outcome {
  int calls, err;
  bool had_seq;
  char message[256];
} outcome_t;

typedef struct ctx {
  fdc_t *c;
  outcome_t *out;
} ctx_t;

typedef struct arg {
  ctx_t *ctx;
  uint32_t i;
} arg_t;

static void on_done(void *p, int err, const fdc_seq_t *seq) {
  arg_t *a = p;
  outcome_t *o = &a->ctx->out[a->i];
  o->calls++;
  o->err = err;
  o->had_seq = seq != NULL;
  snprintf(o->message, sizeof(o->message), "%s", fdc_last_error(a->ctx->c));
}

/* ---- the head refuses ---- */

static void test_refusals(void **state) {
  fx_t *x = *state;
  enum { DEADLINE_MS = 300 };
  /* retried: the library sends it again until its deadline (issue 22) */
  static const struct {
    rpc_code_t code;
    int err;
    bool unknown, retried;
    const char *msg; /* NULL: "refusal #k (CODE)" */
  } table[] = {
      {RPC_PERMISSION_DENIED, -EACCES, false, false, NULL},
      {RPC_UNAUTHENTICATED, -EACCES, false, false, NULL},
      {RPC_FAILED_PRECONDITION, -ENOLINK, false, false, NULL},
      {RPC_INVALID_ARGUMENT, -EINVAL, false, false, NULL},
      {RPC_NOT_FOUND, -ENOENT, false, false, NULL},
      {RPC_OUT_OF_RANGE, -EFBIG, false, false, NULL},
      {RPC_ABORTED, -EBUSY, false, true, NULL},
      {RPC_ALREADY_EXISTS, -EBUSY, false, false, NULL},
      {RPC_RESOURCE_EXHAUSTED, -ENOBUFS, false, false, NULL},
      {RPC_UNIMPLEMENTED, -EOPNOTSUPP, false, false, NULL},
      {RPC_DEADLINE_EXCEEDED, -ETIMEDOUT, true, false, NULL},
      {RPC_UNAVAILABLE, -ECONNRESET, true, true, NULL},
      {RPC_UNAVAILABLE, -ENOLINK, false, true,
       "no head: origin o1 cannot be sure it leads (ZooKeeper connecting); changes wait for "
       "ZooKeeper's quorum"},
      {RPC_FAILED_PRECONDITION, -ENOLINK, false, true, "not the head; no head is known"},
      {RPC_CANCELLED, -ECANCELED, true, false, NULL},
      {RPC_INTERNAL, -EREMOTEIO, true, false, NULL},
      {RPC_UNKNOWN, -EREMOTEIO, true, false, NULL},
      {RPC_DATA_LOSS, -EREMOTEIO, true, false, NULL},
  };
  fdc_t *c = open_client(x, 0, DEADLINE_MS);
  for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
    x->f.refuse = table[k].code;
    if (table[k].msg) snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "%s", table[k].msg);
    else
      snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "refusal #%zu (%s)", k,
               rpc_code_name(table[k].code));
    uint32_t refused = x->f.refused;
    uint64_t t0 = fd_now_ms();
    fdc_seq_t seq = {7, 7, 7};
    assert_int_equal(fdc_write(c, "f.img", 0, "data", 4, &seq), table[k].err);
    assert_int_equal(seq.version, 7); /* untouched on failure */
    assert_string_equal(fdc_last_error(c), x->f.refuse_msg);
    assert_int_equal(fdc_outcome_unknown(table[k].err), table[k].unknown);
    fdc_bumped_t b = {0};
    assert_int_equal(fdc_bump(c, "f.img", &b), table[k].err);
    assert_int_equal(b.version, 0);
    if (table[k].retried) { /* sent again and again until the deadline */
      assert_true(fd_now_ms() - t0 >= 2 * DEADLINE_MS - 20);
      assert_true(x->f.refused - refused > 4);
    } else {
      assert_int_equal(x->f.refused - refused, 2);
    }
  }
  assert_int_equal(x->f.writes, 0); /* none was applied */

  /* Asynchronously: the callback gets the error, no seq, and the head's
   * message through fdc_last_error. */
  x->f.refuse = RPC_FAILED_PRECONDITION;
  snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "below min_durable_origins: 1 of 2 live");
  outcome_t out[3] = {0};
  ctx_t ctx = {c, out};
  arg_t args[3] = {{&ctx, 0}, {&ctx, 1}, {&ctx, 2}};
  for (uint32_t i = 0; i < 3; i++)
    assert_int_equal(fdc_append_async(c, "f.img", "abc", 3, on_done, &args[i]), 0);
  assert_int_equal(fdc_wait(c, 5000), 0);
  for (uint32_t i = 0; i < 3; i++) {
    assert_int_equal(out[i].calls, 1);
    assert_int_equal(out[i].err, -ENOLINK);
    assert_false(out[i].had_seq);
    assert_string_equal(out[i].message, "below min_durable_origins: 1 of 2 live");
  }
  /* And the head serving again: accepted. */
  x->f.refuse = RPC_OK;
  assert_int_equal(fdc_append(c, "f.img", "abc", 3, NULL), 0);
  fdc_close(c);
}

/* ABORTED for a while ("try again shortly": a newly elected head comparing
 * its logs), then served: acknowledged, without the caller doing anything. */
static void test_aborted_then_served(void **state) {
  fx_t *x = *state;
  fdc_t *c = open_client(x, 0, 5000);
  x->f.refuse = RPC_ABORTED;
  snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "the head is comparing its logs: try "
           "again shortly");
  outcome_t out[4] = {0};
  ctx_t ctx = {c, out};
  arg_t args[4] = {{&ctx, 0}, {&ctx, 1}, {&ctx, 2}, {&ctx, 3}};
  for (uint32_t i = 0; i < 4; i++)
    assert_int_equal(fdc_append_async(c, "f.img", "abcd", 4, on_done, &args[i]), 0);
  while (x->f.refused < 8) assert_true(fdc_poll(c, 20) >= 0);
  assert_int_equal(out[0].calls, 0); /* refused, not ended */
  x->f.refuse = RPC_OK;
  assert_int_equal(fdc_wait(c, 5000), 0);
  for (uint32_t i = 0; i < 4; i++) {
    assert_int_equal(out[i].calls, 1);
    assert_int_equal(out[i].err, 0);
  }
  assert_int_equal(x->f.writes, 4);
  fdc_close(c);
}

/* A real refusal of the fake's, not a scripted one: past its largest file. */
static void test_out_of_range(void **state) {
  fx_t *x = *state;
  fdc_t *c = open_client(x, 0, 0);
  assert_int_equal(fdc_write(c, "f.img", FAKE_FILE_MAX, "x", 1, NULL), -EFBIG);
  assert_string_equal(fdc_last_error(c), "past the fake's file");
  fdc_close(c);
}

/* ---- the head dies ---- */

/* The connection dropped with 90 changes in flight, the 50th applied but
 * not answered: every change is sent again on a new connection, in call
 * order, and each is acknowledged once (the 50th recognised by its
 * client_seq, not applied twice). */
static void test_dies_mid_stream(void **state) {
  fx_t *x = *state;
  enum { FIRST = 10, N = 90, DIE_AT = 50 };
  fdc_t *c = open_client(x, 256, 0);
  outcome_t out[FIRST + N];
  memset(out, 0, sizeof(out));
  ctx_t ctx = {c, out};
  arg_t args[FIRST + N];
  for (uint32_t i = 0; i < FIRST; i++) {
    args[i] = (arg_t){&ctx, i};
    assert_int_equal(fdc_append_async(c, "f.img", "0123456789", 10, on_done, &args[i]), 0);
  }
  assert_int_equal(fdc_wait(c, 5000), 0);
  /* Then the head holds the answers, and drops the connection when it
   * applied the 50th change of its life, with 90 in flight. */
  x->f.hold = FIRST + N - DIE_AT; /* the changes it has not applied, once sent again */
  x->f.die_at = DIE_AT;
  for (uint32_t i = FIRST; i < FIRST + N; i++) {
    args[i] = (arg_t){&ctx, i};
    assert_int_equal(fdc_append_async(c, "f.img", "0123456789", 10, on_done, &args[i]), 0);
  }
  /* sent again: the 40 applied are answered at once (known), the 50 others
   * once they all arrived (hold) */
  assert_int_equal(fdc_wait(c, 10000), 0);
  bool seen[FIRST + N] = {0};
  for (uint32_t i = 0; i < FIRST + N; i++) {
    assert_int_equal(out[i].calls, 1); /* each exactly once */
    assert_int_equal(out[i].err, 0);
    assert_true(out[i].had_seq);
  }
  for (uint32_t i = 0; i < x->f.writes; i++) { /* the fake applied each once */
    assert_int_equal(x->f.log[i].client_id, fdc_client_id(c));
    uint64_t n = x->f.log[i].client_seq;
    assert_true(n >= 1 && n <= FIRST + N);
    assert_false(seen[n - 1]);
    seen[n - 1] = true;
  }
  assert_int_equal(x->f.writes, FIRST + N);
  assert_true(x->f.again >= 1); /* the 50th at least came again */
  assert_int_equal(fdc_inflight(c), 0);
  assert_int_equal(x->f.conns_seen, 2);
  fdc_close(c);
}

/* The head's process goes with changes in flight, and nobody else leads:
 * they are sent again until their deadline, then fail as outcome-unknown;
 * a change made then is never sent (-ENOTCONN) and says why. */
static void test_origin_gone(void **state) {
  fx_t *x = *state;
  enum { N = 20 };
  x->f.silent = true;
  fdc_t *c = open_client(x, 0, 500);
  outcome_t out[N];
  memset(out, 0, sizeof(out));
  ctx_t ctx = {c, out};
  arg_t args[N];
  for (uint32_t i = 0; i < N; i++) {
    args[i] = (arg_t){&ctx, i};
    assert_int_equal(fdc_append_async(c, "f.img", "x", 1, on_done, &args[i]), 0);
  }
  assert_true(fdc_poll(c, 50) >= 0); /* sent; the fake holds them */
  fake_stop(&x->f);                   /* the process goes: its engine, its listener */
  assert_int_equal(fdc_wait(c, 10000), 0);
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(out[i].calls, 1);
    assert_int_equal(out[i].err, -ECONNRESET);
    assert_true(fdc_outcome_unknown(out[i].err));
  }
  /* Nobody to send to: not sent, and why. */
  uint64_t t0 = fd_now_ms();
  assert_int_equal(fdc_append(c, "f.img", "x", 1, NULL), -ENOTCONN);
  assert_true(fd_now_ms() - t0 >= 480); /* looked for a head until its deadline */
  assert_non_null(strstr(fdc_last_error(c), x->origins));
  assert_non_null(strstr(fdc_last_error(c), "not sent"));
  assert_false(fdc_outcome_unknown(-ENOTCONN));
  assert_int_equal(fdc_append_async(c, "f.img", "x", 1, on_done, &args[0]), 0);
  assert_int_equal(fdc_wait(c, 5000), 0);
  assert_int_equal(out[0].calls, 2);
  assert_int_equal(out[0].err, -ENOTCONN);
  fdc_close(c);
}

/* ---- deadlines ---- */

static void test_deadline(void **state) {
  fx_t *x = *state;
  x->f.silent = true;
  fdc_t *c = open_client(x, 0, 300);
  uint64_t t0 = fd_now_ms();
  assert_int_equal(fdc_write(c, "f.img", 0, "late", 4, NULL), -ETIMEDOUT);
  uint64_t took = fd_now_ms() - t0;
  assert_true(took >= 290);
  assert_true(took < 300 + FDC_GRACE_MS / 2); /* the engine's deadline, not the sweep's */
  assert_true(fdc_outcome_unknown(-ETIMEDOUT));

  outcome_t out[3] = {0};
  ctx_t ctx = {c, out};
  arg_t args[3] = {{&ctx, 0}, {&ctx, 1}, {&ctx, 2}};
  for (uint32_t i = 0; i < 3; i++)
    assert_int_equal(fdc_append_async(c, "f.img", "late", 4, on_done, &args[i]), 0);
  /* fdc_wait shorter than the changes' deadline: they stay in flight. */
  assert_int_equal(fdc_wait(c, 50), -ETIMEDOUT);
  assert_int_equal(fdc_inflight(c), 3);
  assert_int_equal(out[0].calls, 0);
  assert_int_equal(fdc_wait(c, 5000), 0);
  for (uint32_t i = 0; i < 3; i++) {
    assert_int_equal(out[i].calls, 1);
    assert_int_equal(out[i].err, -ETIMEDOUT);
  }
  fdc_close(c);
}

/* Changes queued behind a full window (the head's is 2 MiB: one 1 MiB change
 * at a time): when the connection goes, they are sent on the next one (the
 * first again, recognised: applied once); when their deadline passes first,
 * they end -ETIMEDOUT without being sent. */
static void test_queued_not_sent(void **state) {
  fx_t *x = *state;
  enum { N = 3 };
  uint8_t *mib = calloc(1, FDC_WRITE_BYTES_MAX);
  outcome_t out[N];
  ctx_t ctx;
  arg_t args[N];

  x->f.die_at = 1; /* the first change's arrival drops the connection */
  fdc_t *c = open_client(x, 0, 0);
  memset(out, 0, sizeof(out));
  ctx = (ctx_t){c, out};
  for (uint32_t i = 0; i < N; i++) {
    args[i] = (arg_t){&ctx, i};
    assert_int_equal(fdc_write_async(c, "f.img", 0, mib, FDC_WRITE_BYTES_MAX, on_done, &args[i]),
                     0);
  }
  assert_int_equal(fdc_wait(c, 5000), 0);
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(out[i].calls, 1);
    assert_int_equal(out[i].err, 0);
  }
  assert_int_equal(x->f.writes, N); /* the first applied once, though sent twice */
  assert_int_equal(x->f.again, 1);
  fdc_close(c);

  x->f.die_at = 0;
  x->f.arrivals = 0;
  x->f.stall_ms = 800; /* the head reads nothing for 0.8 s: the window stays shut */
  c = open_client(x, 0, 300);
  memset(out, 0, sizeof(out));
  ctx = (ctx_t){c, out};
  for (uint32_t i = 0; i < 2; i++) {
    args[i] = (arg_t){&ctx, i};
    assert_int_equal(fdc_write_async(c, "f.img", 0, mib, FDC_WRITE_BYTES_MAX, on_done, &args[i]),
                     0);
  }
  assert_int_equal(fdc_wait(c, 5000), 0);
  assert_int_equal(out[0].err, -ETIMEDOUT);
  assert_int_equal(out[1].err, -ETIMEDOUT);
  assert_non_null(strstr(out[1].message, "not sent before its deadline"));
  fdc_close(c);
  free(mib);
}

/* The head takes 16 streams per connection, the client sends 64: the rest
 * are refused at once (RESOURCE_EXHAUSTED), not applied. */
static void test_too_many_streams(void **state) {
  fx_t *x = *state;
  enum { N = 64 };
  x->f.silent = true;
  fdc_t *c = open_client(x, N, 500);
  outcome_t out[N];
  memset(out, 0, sizeof(out));
  ctx_t ctx = {c, out};
  arg_t args[N];
  for (uint32_t i = 0; i < N; i++) {
    args[i] = (arg_t){&ctx, i};
    assert_int_equal(fdc_append_async(c, "f.img", "s", 1, on_done, &args[i]), 0);
  }
  assert_int_equal(fdc_wait(c, 5000), 0);
  uint32_t busy = 0, late = 0;
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(out[i].calls, 1);
    if (out[i].err == -ENOBUFS) busy++;
    else if (out[i].err == -ETIMEDOUT) late++;
  }
  assert_int_equal(late, 16);
  assert_int_equal(busy, N - 16);
  assert_int_equal(x->f.writes, 16);
  fdc_close(c);
}

/* ---- closing with changes in flight ---- */

static void test_close_cancels(void **state) {
  fx_t *x = *state;
  enum { N = 5 };
  x->f.silent = true;
  fdc_t *c = open_client(x, 0, 0);
  outcome_t out[N];
  memset(out, 0, sizeof(out));
  ctx_t ctx = {c, out};
  arg_t args[N];
  for (uint32_t i = 0; i < N; i++) {
    args[i] = (arg_t){&ctx, i};
    assert_int_equal(fdc_append_async(c, "f.img", "x", 1, on_done, &args[i]), 0);
  }
  assert_true(fdc_poll(c, 20) >= 0);
  fdc_close(c);
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(out[i].calls, 1);
    assert_int_equal(out[i].err, -ECANCELED);
  }
}

int main(void) {
  fd_log_init("test_fdclient_faults", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_aborted_then_served, setup, teardown),
      cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dies_mid_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_origin_gone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queued_not_sent, setup_small_window, teardown),
      cmocka_unit_test_setup_teardown(test_too_many_streams, setup_16_streams, teardown),
      cmocka_unit_test_setup_teardown(test_close_cancels, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
