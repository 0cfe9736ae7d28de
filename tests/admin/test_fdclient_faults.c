/* libfdclient when things go wrong: the head refusing (each status), dying mid-stream, never answering (deadlines), too many streams, fdc_close with changes in flight. */
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
  static const struct {
    rpc_code_t code;
    int err;
    bool unknown;
  } table[] = {
      {RPC_PERMISSION_DENIED, -EACCES, false},  {RPC_UNAUTHENTICATED, -EACCES, false},
      {RPC_FAILED_PRECONDITION, -ENOLINK, false}, {RPC_INVALID_ARGUMENT, -EINVAL, false},
      {RPC_NOT_FOUND, -ENOENT, false},          {RPC_OUT_OF_RANGE, -EFBIG, false},
      {RPC_ABORTED, -EBUSY, false},             {RPC_ALREADY_EXISTS, -EBUSY, false},
      {RPC_RESOURCE_EXHAUSTED, -ENOBUFS, false}, {RPC_UNIMPLEMENTED, -EOPNOTSUPP, false},
      {RPC_DEADLINE_EXCEEDED, -ETIMEDOUT, true}, {RPC_UNAVAILABLE, -ECONNRESET, true},
      {RPC_CANCELLED, -ECANCELED, true},        {RPC_INTERNAL, -EREMOTEIO, true},
      {RPC_UNKNOWN, -EREMOTEIO, true},          {RPC_DATA_LOSS, -EREMOTEIO, true},
  };
  fdc_t *c = open_client(x, 0, 0);
  for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
    x->f.refuse = table[k].code;
    snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "refusal #%zu (%s)", k,
             rpc_code_name(table[k].code));
    fdc_seq_t seq = {7, 7, 7};
    assert_int_equal(fdc_write(c, "f.img", 0, "data", 4, &seq), table[k].err);
    assert_int_equal(seq.version, 7); /* untouched on failure */
    assert_string_equal(fdc_last_error(c), x->f.refuse_msg);
    assert_int_equal(fdc_outcome_unknown(table[k].err), table[k].unknown);
    fdc_bumped_t b = {0};
    assert_int_equal(fdc_bump(c, "f.img", &b), table[k].err);
    assert_int_equal(b.version, 0);
  }
  assert_int_equal(x->f.refused, 2 * (sizeof(table) / sizeof(table[0])));
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

/* A real refusal of the fake's, not a scripted one: past its largest file. */
static void test_out_of_range(void **state) {
  fx_t *x = *state;
  fdc_t *c = open_client(x, 0, 0);
  assert_int_equal(fdc_write(c, "f.img", FAKE_FILE_MAX, "x", 1, NULL), -EFBIG);
  assert_string_equal(fdc_last_error(c), "past the fake's file");
  fdc_close(c);
}

/* ---- the head dies ---- */

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
  /* Then the head takes changes without answering, and drops the connection
   * when the 50th (of its life) arrives, with 90 in flight. */
  x->f.silent = true;
  x->f.die_at = DIE_AT;
  for (uint32_t i = FIRST; i < FIRST + N; i++) {
    args[i] = (arg_t){&ctx, i};
    assert_int_equal(fdc_append_async(c, "f.img", "0123456789", 10, on_done, &args[i]), 0);
  }
  assert_int_equal(fdc_wait(c, 10000), 0);
  for (uint32_t i = 0; i < FIRST + N; i++) {
    assert_int_equal(out[i].calls, 1); /* each exactly once */
    if (i < FIRST) {
      assert_int_equal(out[i].err, 0);
      assert_true(out[i].had_seq);
    } else { /* none of those in flight is reported acknowledged */
      assert_false(out[i].had_seq);
      assert_true(out[i].err == -ECONNRESET || out[i].err == -ENOTCONN);
    }
  }
  assert_true(fdc_outcome_unknown(-ECONNRESET));
  assert_int_equal(fdc_inflight(c), 0);
  assert_int_equal(x->f.conns_seen, 1);

  /* The next call connects again. */
  x->f.silent = false;
  x->f.die_at = 0;
  fdc_seq_t seq;
  assert_int_equal(fdc_append(c, "f.img", "again", 5, &seq), 0);
  assert_int_equal(seq.index, DIE_AT); /* the fake kept all 50 it took */
  assert_int_equal(x->f.conns_seen, 2);
  fdc_close(c);
}

static void test_origin_gone(void **state) {
  fx_t *x = *state;
  enum { N = 20 };
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
  assert_true(fdc_poll(c, 50) >= 0); /* sent; the fake holds them */
  fake_stop(&x->f);                   /* the process goes: its engine, its listener */
  assert_int_equal(fdc_wait(c, 10000), 0);
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(out[i].calls, 1);
    assert_int_equal(out[i].err, -ECONNRESET);
  }
  /* Nobody to reconnect to: the call says so, and why. */
  assert_int_equal(fdc_append(c, "f.img", "x", 1, NULL), -ECONNREFUSED);
  assert_non_null(strstr(fdc_last_error(c), x->origins));
  assert_int_equal(fdc_append_async(c, "f.img", "x", 1, on_done, &args[0]), -ECONNREFUSED);
  assert_int_equal(out[0].calls, 1);
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
 * at a time) end without being sent: -ENOTCONN when the connection goes
 * first, -ETIMEDOUT when their deadline passes first. */
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
  assert_int_equal(out[0].err, -ECONNRESET); /* sent: it may be in the log */
  for (uint32_t i = 1; i < N; i++) {
    assert_int_equal(out[i].calls, 1);
    assert_int_equal(out[i].err, -ENOTCONN); /* never sent: not applied */
    assert_non_null(strstr(out[i].message, "not sent"));
  }
  assert_false(fdc_outcome_unknown(-ENOTCONN));
  assert_int_equal(x->f.arrivals, 1);
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
