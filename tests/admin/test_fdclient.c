/* libfdclient against a fake origin head: synchronous and asynchronous writes, appends and bumps, pipelining, the in-flight limits, opening. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int setup(void **state) {
  fx_t *x = calloc(1, sizeof(*x));
  snprintf(x->dir, sizeof(x->dir), "/tmp/fdclient-test.XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  fake_start(&x->f);
  fake_write_keys(&x->f, x->dir);
  snprintf(x->cluster, sizeof(x->cluster), "%s/cluster.key", x->dir);
  snprintf(x->admin, sizeof(x->admin), "%s/admin.pem", x->dir);
  snprintf(x->origins, sizeof(x->origins), "127.0.0.1:%u", atomic_load(&x->f.port));
  *state = x;
  return 0;
}

static int teardown(void **state) {
  fx_t *x = *state;
  fake_stop(&x->f);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", x->dir);
  assert_int_equal(system(cmd), 0);
  free(x);
  return 0;
}

static fdc_opts_t opts(const fx_t *x) {
  fdc_opts_t o = {0};
  o.origins = x->origins;
  o.cluster_key_file = x->cluster;
  o.key_file = x->admin;
  return o;
}

static fdc_t *open_client(const fx_t *x, uint32_t inflight, uint64_t bytes, uint32_t timeout_ms) {
  fdc_opts_t o = opts(x);
  o.inflight_max = inflight;
  o.inflight_bytes_max = bytes;
  o.timeout_ms = timeout_ms;
  fdc_t *c = NULL;
  char why[512];
  int rc = fdc_open(&o, &c, why, sizeof(why));
  if (rc) fprintf(stderr, "fdc_open: %s: %s\n", fdc_strerror(rc), why);
  assert_int_equal(rc, 0);
  assert_non_null(c);
  return c;
}

/* ---- synchronous ---- */

static void test_sync(void **state) {
  fx_t *x = *state;
  fdc_t *c = open_client(x, 0, 0, 0);
  fdc_seq_t seq;
  assert_int_equal(fdc_write(c, "f.img", 100, "hello", 5, &seq), 0);
  assert_int_equal(seq.version, 1);
  assert_int_equal(seq.index, 0);
  assert_int_equal(seq.offset, 100);
  assert_memory_equal(x->f.file + 100, "hello", 5);
  assert_int_equal(fdc_append(c, "f.img", "world", 5, &seq), 0);
  assert_int_equal(seq.index, 1);
  assert_int_equal(seq.offset, 105); /* the head chose the end */
  assert_memory_equal(x->f.file + 105, "world", 5);

  /* One change of the largest size. */
  uint8_t *big = malloc(FDC_WRITE_BYTES_MAX);
  for (uint32_t i = 0; i < FDC_WRITE_BYTES_MAX; i++) big[i] = (uint8_t)(i * 7u + 3u);
  assert_int_equal(fdc_write(c, "f.img", 4096, big, FDC_WRITE_BYTES_MAX, &seq), 0);
  assert_int_equal(seq.index, 2);
  assert_memory_equal(x->f.file + 4096, big, FDC_WRITE_BYTES_MAX);
  assert_int_equal(x->f.file_len, 4096 + FDC_WRITE_BYTES_MAX);
  free(big);

  /* Every write and append carries the client's id and its counter. */
  assert_int_equal(x->f.writes, 3);
  assert_true(fdc_client_id(c) != 0);
  for (uint32_t i = 0; i < 3; i++) {
    assert_true(x->f.log[i].client_id == fdc_client_id(c));
    assert_int_equal(x->f.log[i].client_seq, i + 1);
  }
  assert_false(x->f.log[0].append);
  assert_true(x->f.log[1].append);

  /* A bump closes v1 with its three changes; the next change builds v2. */
  fdc_bumped_t b;
  assert_int_equal(fdc_bump(c, "f.img", &b), 0);
  assert_int_equal(b.version, 1);
  assert_int_equal(b.changes, 3);
  uint8_t digest[FD_SHA256_LEN];
  fd_sha256(x->f.file, x->f.file_len, digest);
  assert_memory_equal(b.digest, digest, sizeof(digest));
  assert_int_equal(fdc_append(c, "f.img", "!", 1, &seq), 0);
  assert_int_equal(seq.version, 2);
  assert_int_equal(seq.index, 0);
  assert_int_equal(x->f.log[3].client_seq, 4); /* bumps take no number */
  assert_int_equal(fdc_inflight(c), 0);
  fdc_close(c);
}

static void test_bad_arguments(void **state) {
  fx_t *x = *state;
  fdc_t *c = open_client(x, 0, 0, 0);
  char name[200];
  memset(name, 'a', sizeof(name) - 1);
  name[sizeof(name) - 1] = '\0';
  uint8_t *big = calloc(1, FDC_WRITE_BYTES_MAX + 1);
  assert_int_equal(fdc_write(c, NULL, 0, "x", 1, NULL), -EINVAL);
  assert_int_equal(fdc_write(c, "", 0, "x", 1, NULL), -EINVAL);
  assert_int_equal(fdc_write(c, name, 0, "x", 1, NULL), -EINVAL);
  assert_int_equal(fdc_write(c, "f", 0, "x", 0, NULL), -EINVAL);
  assert_int_equal(fdc_append(c, "f", NULL, 1, NULL), -EINVAL);
  assert_int_equal(fdc_write(c, "f", UINT64_MAX, "x", 1, NULL), -EINVAL);
  assert_int_equal(fdc_append(c, "f", big, FDC_WRITE_BYTES_MAX + 1, NULL), -EMSGSIZE);
  assert_int_equal(fdc_append_async(c, "f", big, FDC_WRITE_BYTES_MAX + 1, NULL, NULL), -EMSGSIZE);
  assert_int_equal(fdc_bump(c, "", NULL), -EINVAL);
  assert_true(strlen(fdc_last_error(c)) > 0);
  assert_int_equal(fdc_inflight(c), 0);
  free(big);
  fdc_close(c);
  assert_int_equal(x->f.writes + x->f.bumps, 0); /* none was sent */
}

/* ---- asynchronous ---- */

typedef struct rec {
  int calls, err;
  fdc_seq_t seq;
  uint32_t turn; /* the callback's place among all callbacks */
} rec_t;

typedef struct run {
  rec_t *recs;
  uint32_t turns;
  int depth;
} run_t;

typedef struct cb_arg {
  run_t *run;
  uint32_t i;
} cb_arg_t;

static void on_done(void *arg, int err, const fdc_seq_t *seq) {
  cb_arg_t *a = arg;
  assert_int_equal(a->run->depth, 0); /* never from inside another callback */
  a->run->depth++;
  rec_t *r = &a->run->recs[a->i];
  r->calls++;
  r->err = err;
  if (seq) r->seq = *seq;
  assert_true(err == 0 ? seq != NULL : seq == NULL);
  r->turn = a->run->turns++;
  a->run->depth--;
}

/* Appends n records of len bytes (record i holds byte i), keeping the client
 * full: on -EAGAIN it polls and calls again. */
static void append_many(fdc_t *c, run_t *run, cb_arg_t *args, uint32_t n, uint32_t len) {
  uint8_t *buf = malloc(len);
  uint32_t again = 0;
  for (uint32_t i = 0; i < n; i++) {
    memset(buf, (int)(i & 0xff), len);
    args[i] = (cb_arg_t){run, i};
    int rc;
    while ((rc = fdc_append_async(c, "f.img", buf, len, on_done, &args[i])) == -EAGAIN) {
      again++;
      assert_true(fdc_poll(c, 100) >= 0);
    }
    assert_int_equal(rc, 0);
  }
  free(buf);
  (void)again;
}

static void test_async_pipelined(void **state) {
  fx_t *x = *state;
  enum { N = 1024, LEN = 100, HOLD = 256 };
  x->f.hold = HOLD; /* answers come only when 256 wait, newest first */
  fdc_t *c = open_client(x, 512, 0, 0);
  run_t run = {calloc(N, sizeof(rec_t)), 0, 0};
  cb_arg_t *args = calloc(N, sizeof(*args));
  append_many(c, &run, args, N, LEN);
  assert_int_equal(fdc_wait(c, 20000), 0);
  assert_int_equal(fdc_inflight(c), 0);
  assert_int_equal(run.turns, N);

  /* Hundreds in flight at once, on one connection. */
  assert_true(x->f.held_max >= HOLD);
  assert_int_equal(x->f.conns_seen, 1);
  /* Sent in call order: the head logged them in that order. */
  for (uint32_t i = 0; i < N; i++) assert_int_equal(x->f.log[i].client_seq, i + 1);
  bool reordered = false;
  for (uint32_t i = 0; i < N; i++) {
    rec_t *r = &run.recs[i];
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->err, 0);
    /* Each callback got its own change's place, whatever its turn. */
    assert_int_equal(r->seq.index, i);
    assert_int_equal(r->seq.offset, (uint64_t)i * LEN);
    assert_int_equal(x->f.file[(size_t)i * LEN], i & 0xff);
    if (i && r->turn < run.recs[i - 1].turn) reordered = true;
  }
  /* Callbacks ran in the order the answers came: newest first per batch. */
  assert_true(reordered);
  assert_int_equal(run.recs[HOLD - 1].turn, 0);
  free(run.recs);
  free(args);
  fdc_close(c);
}

static void test_inflight_limit(void **state) {
  fx_t *x = *state;
  enum { MAX = 8 };
  x->f.hold = MAX;
  fdc_t *c = open_client(x, MAX, 0, 0);
  run_t run = {calloc(MAX + 1, sizeof(rec_t)), 0, 0};
  cb_arg_t args[MAX + 1];
  for (uint32_t i = 0; i <= MAX; i++) args[i] = (cb_arg_t){&run, i};
  for (uint32_t i = 0; i < MAX; i++)
    assert_int_equal(fdc_append_async(c, "f.img", "abc", 3, on_done, &args[i]), 0);
  /* Full: refused without blocking, and no callback ran inside a call. */
  uint64_t t0 = fd_now_ms();
  assert_int_equal(fdc_append_async(c, "f.img", "abc", 3, on_done, &args[MAX]), -EAGAIN);
  assert_true(fd_now_ms() - t0 < 100);
  assert_int_equal(fdc_inflight(c), MAX);
  assert_int_equal(run.turns, 0);
  uint64_t until = fd_now_ms() + 5000;
  while (run.turns < MAX && fd_now_ms() < until) assert_true(fdc_poll(c, 100) >= 0);
  assert_int_equal(run.turns, MAX);
  assert_int_equal(fdc_inflight(c), 0);
  x->f.hold = 0;
  assert_int_equal(fdc_append_async(c, "f.img", "abc", 3, on_done, &args[MAX]), 0);
  assert_int_equal(fdc_wait(c, 5000), 0);
  assert_int_equal(run.recs[MAX].calls, 1);
  fdc_close(c);

  /* The byte budget: two 600 KiB changes do not fit 1 MiB at once. */
  c = open_client(x, MAX, FDC_WRITE_BYTES_MAX, 0);
  uint8_t *buf = calloc(1, 600u << 10);
  memset(run.recs, 0, (MAX + 1) * sizeof(rec_t));
  run.turns = 0;
  assert_int_equal(fdc_write_async(c, "f.img", 0, buf, 600u << 10, on_done, &args[0]), 0);
  assert_int_equal(fdc_write_async(c, "f.img", 0, buf, 600u << 10, on_done, &args[1]), -EAGAIN);
  /* A synchronous call waits for room instead, running the first's callback. */
  fdc_seq_t seq;
  assert_int_equal(fdc_write(c, "f.img", 1u << 20, buf, 600u << 10, &seq), 0);
  assert_int_equal(run.recs[0].calls, 1);
  assert_int_equal(run.recs[0].err, 0);
  assert_int_equal(seq.offset, 1u << 20);
  free(buf);
  free(run.recs);
  fdc_close(c);
}

/* A callback may start the next change (but not poll): a chain of 50. */
typedef struct chain {
  fdc_t *c;
  uint32_t done, started;
  int depth;
} chain_t;

static void chain_done(void *arg, int err, const fdc_seq_t *seq) {
  chain_t *ch = arg;
  assert_int_equal(ch->depth, 0);
  ch->depth++;
  assert_int_equal(err, 0);
  assert_int_equal(seq->index, ch->done);
  ch->done++;
  if (ch->started < 50) {
    assert_int_equal(fdc_append_async(ch->c, "f.img", "z", 1, chain_done, ch), 0);
    ch->started++;
  }
  ch->depth--;
}

static void test_callback_starts_changes(void **state) {
  fx_t *x = *state;
  fdc_t *c = open_client(x, 4, 0, 0);
  chain_t ch = {c, 0, 1, 0};
  assert_int_equal(fdc_append_async(c, "f.img", "z", 1, chain_done, &ch), 0);
  assert_int_equal(fdc_wait(c, 10000), 0);
  assert_int_equal(ch.done, 50);
  assert_int_equal(x->f.writes, 50);
  fdc_close(c);
}

/* ---- opening ---- */

static void test_open(void **state) {
  fx_t *x = *state;
  static char sentinel;
  fdc_t *c = (fdc_t *)(void *)&sentinel; /* fdc_open clears it on failure */
  char why[512];
  fdc_opts_t o = opts(x);
  o.key_file = NULL;
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -EINVAL);
  assert_null(c);
  assert_true(strlen(why) > 0);
  o = opts(x);
  o.inflight_max = FD_STREAMS_PER_CONNECTION_MAX + 1;
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -EINVAL);
  o = opts(x);
  o.inflight_bytes_max = 1000;
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -EINVAL);
  o = opts(x);
  o.origins = "localhost";
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -EINVAL);
  o = opts(x);
  o.key_file = "/nonexistent/key.pem";
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -ENOENT);
  assert_non_null(strstr(why, "/nonexistent/key.pem"));
  o = opts(x);
  o.cluster_key_file = x->admin; /* a PEM file, not 64 hex chars */
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -EINVAL);
  assert_non_null(strstr(why, "hex"));

  /* Nothing listens: refused, and why names the address. */
  o = opts(x);
  o.origins = "127.0.0.1:1";
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -ECONNREFUSED);
  assert_non_null(strstr(why, "127.0.0.1:1"));
  /* The head is the first origin that answers. */
  char list[96];
  snprintf(list, sizeof(list), "127.0.0.1:1, %s", x->origins);
  o.origins = list;
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), 0);
  fdc_t *c2 = open_client(x, 0, 0, 0);
  assert_true(fdc_client_id(c) != fdc_client_id(c2)); /* random per client */
  assert_int_equal(fdc_append(c, "f.img", "a", 1, NULL), 0);
  assert_int_equal(fdc_append(c2, "f.img", "b", 1, NULL), 0);
  assert_int_equal(x->f.log[0].client_seq, 1);
  assert_int_equal(x->f.log[1].client_seq, 1);
  fdc_close(c);
  fdc_close(c2);

  /* Another cluster's key, or an admin key the origin does not trust: the
   * handshake is refused. */
  fake_origin_t other = {0};
  char dir2[96];
  snprintf(dir2, sizeof(dir2), "%s/other", x->dir);
  assert_int_equal(mkdir(dir2, 0700), 0);
  fd_random_bytes(other.cluster_key, sizeof(other.cluster_key));
  fd_ed25519_generate(&other.admin);
  fake_write_keys(&other, dir2);
  char other_cluster[128], other_admin[128];
  snprintf(other_cluster, sizeof(other_cluster), "%s/cluster.key", dir2);
  snprintf(other_admin, sizeof(other_admin), "%s/admin.pem", dir2);
  o = opts(x);
  o.cluster_key_file = other_cluster;
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -EKEYREJECTED);
  assert_non_null(strstr(why, "refused the handshake"));
  o = opts(x);
  o.key_file = other_admin;
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -EKEYREJECTED);
  assert_null(c);

  /* A writer key's certificate must be one (the engine checks it). */
  o = opts(x);
  o.cert_file = x->cluster;
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -EINVAL);
  assert_null(c);
  o.cert_file = "/nonexistent/cert";
  assert_int_equal(fdc_open(&o, &c, why, sizeof(why)), -ENOENT);
}

int main(void) {
  fd_log_init("test_fdclient", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_async_pipelined, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inflight_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_callback_starts_changes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
