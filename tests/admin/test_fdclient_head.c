/* libfdclient finding the origin head (issue 22): reading "not the head; the head is ID@ADDR:PORT", which answers are sent again, and against two fakes: the head found whatever the order of the origins given, followed when it moves, none leading, an older fdnode without Origin.Head. */
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
#include "fdc_int.h"

/* ---- the refusal's text, and what is sent again ---- */

static void test_head_named(void **state) {
  (void)state;
  char a[64];
  assert_true(fdc_head_named("not the head; the head is o2@10.0.0.2:7000", a, sizeof(a)));
  assert_string_equal(a, "10.0.0.2:7000");
  assert_true(fdc_head_named("not the head; the head is origin-b@127.0.0.1:1", a, sizeof(a)));
  assert_string_equal(a, "127.0.0.1:1");
  /* a longer message after it */
  assert_true(fdc_head_named("not the head; the head is o1@10.0.0.1:9; epoch 4", a, sizeof(a)));
  assert_string_equal(a, "10.0.0.1:9");
  /* none named, or not readable as ID@IPv4:PORT */
  assert_false(fdc_head_named("not the head; no head is known", a, sizeof(a)));
  assert_false(fdc_head_named("not the head; the head is 10.0.0.2:7000", a, sizeof(a)));
  assert_false(fdc_head_named("not the head; the head is @10.0.0.2:7000", a, sizeof(a)));
  assert_false(fdc_head_named("not the head; the head is o2@", a, sizeof(a)));
  assert_false(fdc_head_named("not the head; the head is o2@host.example:7000", a, sizeof(a)));
  assert_false(fdc_head_named("not the head; the head is o2@10.0.0.2:0", a, sizeof(a)));
  assert_false(fdc_head_named("not the head; the head is o2@10.0.0.2:70000", a, sizeof(a)));
  assert_false(fdc_head_named("", a, sizeof(a)));
  assert_false(fdc_head_named(NULL, a, sizeof(a)));
  char tiny[8]; /* too long for the caller's buffer: not taken */
  assert_false(fdc_head_named("not the head; the head is o2@10.0.0.2:7000", tiny, sizeof(tiny)));
}

static void test_retry_kind(void **state) {
  (void)state;
  bool maybe = true;
  assert_int_equal(fdc_retry_kind(RPC_FAILED_PRECONDITION, "not the head; the head is o1@1.2.3.4:5",
                                  &maybe), FDC_RETRY_FIND);
  assert_false(maybe);
  assert_int_equal(fdc_retry_kind(RPC_FAILED_PRECONDITION, "not the head; no head is known",
                                  &maybe), FDC_RETRY_FIND);
  /* min_durable_origins: a refusal for good */
  assert_int_equal(fdc_retry_kind(RPC_FAILED_PRECONDITION, "only 1 origin(s) can hold changes",
                                  &maybe), FDC_FINAL);
  assert_int_equal(fdc_retry_kind(RPC_FAILED_PRECONDITION, NULL, &maybe), FDC_FINAL);
  /* a head without ZooKeeper's word ordered nothing; a lost connection may have */
  assert_int_equal(fdc_retry_kind(RPC_UNAVAILABLE, "no head: origin o1 cannot be sure it leads "
                                  "(ZooKeeper connecting)", &maybe), FDC_RETRY_FIND);
  assert_false(maybe);
  assert_int_equal(fdc_retry_kind(RPC_UNAVAILABLE, "closed locally", &maybe), FDC_RETRY_FIND);
  assert_true(maybe);
  assert_int_equal(fdc_retry_kind(RPC_ABORTED, "try again shortly", &maybe), FDC_RETRY_SAME);
  assert_false(maybe);
  static const rpc_code_t final[] = {RPC_OK, RPC_PERMISSION_DENIED, RPC_INVALID_ARGUMENT,
                                     RPC_NOT_FOUND, RPC_OUT_OF_RANGE, RPC_ALREADY_EXISTS,
                                     RPC_RESOURCE_EXHAUSTED, RPC_UNIMPLEMENTED,
                                     RPC_DEADLINE_EXCEEDED, RPC_CANCELLED, RPC_INTERNAL,
                                     RPC_DATA_LOSS, RPC_UNKNOWN, RPC_UNAUTHENTICATED};
  for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
    assert_int_equal(fdc_retry_kind(final[i], "not the head", NULL), FDC_FINAL);
}

/* ---- two fakes sharing keys: a and b ---- */

typedef struct fx {
  char dir[64], cluster[96], admin[96], a_addr[32], b_addr[32], list[80];
  fake_origin_t a, b;
} fx_t;

static int setup(void **state) {
  fx_t *x = calloc(1, sizeof(*x));
  snprintf(x->dir, sizeof(x->dir), "/tmp/fdclient-head.XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  fake_start(&x->a);
  memcpy(x->b.cluster_key, x->a.cluster_key, sizeof(x->b.cluster_key));
  x->b.admin = x->a.admin;
  x->b.keys_given = true;
  fake_start(&x->b);
  fake_write_keys(&x->a, x->dir);
  snprintf(x->cluster, sizeof(x->cluster), "%s/cluster.key", x->dir);
  snprintf(x->admin, sizeof(x->admin), "%s/admin.pem", x->dir);
  snprintf(x->a_addr, sizeof(x->a_addr), "127.0.0.1:%u", atomic_load(&x->a.port));
  snprintf(x->b_addr, sizeof(x->b_addr), "127.0.0.1:%u", atomic_load(&x->b.port));
  *state = x;
  return 0;
}

static int teardown(void **state) {
  fx_t *x = *state;
  fake_stop(&x->a);
  fake_stop(&x->b);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", x->dir);
  assert_int_equal(system(cmd), 0);
  free(x);
  return 0;
}

/* f follows the other fake, named as "ID@ADDR:PORT" (or no head known). */
static void follow(fake_origin_t *f, const fake_origin_t *head) {
  f->follows = true;
  if (head) snprintf(f->head_named, sizeof(f->head_named), "fake%u@127.0.0.1:%u",
                     (unsigned)atomic_load(&head->port), (unsigned)atomic_load(&head->port));
  else f->head_named[0] = '\0';
}

static fdc_t *open_list(fx_t *x, const char *list, uint32_t timeout_ms) {
  snprintf(x->list, sizeof(x->list), "%s", list);
  fdc_opts_t o = {0};
  o.origins = x->list;
  o.cluster_key_file = x->cluster;
  o.key_file = x->admin;
  o.timeout_ms = timeout_ms;
  o.bump_timeout_ms = timeout_ms;
  fdc_t *c = NULL;
  char why[512];
  int rc = fdc_open(&o, &c, why, sizeof(why));
  if (rc) fprintf(stderr, "fdc_open: %s: %s\n", fdc_strerror(rc), why);
  assert_int_equal(rc, 0);
  return c;
}

static bool head_is(const fdc_t *c, const char *addr) {
  const char *h = fdc_head(c);
  size_t n = strlen(h), k = strlen(addr);
  return n >= k && !strcmp(h + n - k, addr);
}

/* The follower given first: the head is found by asking, and a change goes
 * to it, not to the follower. Then the head moves: the old one refuses
 * naming the new one, and the change follows. */
static void test_found_and_followed(void **state) {
  fx_t *x = *state;
  follow(&x->a, &x->b);
  char list[80];
  snprintf(list, sizeof(list), "%s,%s", x->a_addr, x->b_addr);
  fdc_t *c = open_list(x, list, 5000);
  assert_true(head_is(c, x->b_addr));
  fdc_seq_t seq;
  assert_int_equal(fdc_append(c, "f.img", "abc", 3, &seq), 0);
  assert_int_equal(x->b.writes, 1);
  assert_int_equal(x->a.refused, 0);
  fdc_bumped_t bumped;
  assert_int_equal(fdc_bump(c, "f.img", &bumped), 0);
  assert_int_equal(x->b.bumps, 1);

  /* b hands over to a */
  x->a.follows = false;
  follow(&x->b, &x->a);
  assert_int_equal(fdc_append(c, "f.img", "defg", 4, &seq), 0);
  assert_true(head_is(c, x->a_addr));
  assert_int_equal(x->a.writes, 1);
  assert_int_equal(x->b.refused, 1);
  assert_int_equal(x->b.writes, 1);
  /* and back, with a bump: it follows too */
  x->b.follows = false;
  follow(&x->a, &x->b);
  assert_int_equal(fdc_bump(c, "f.img", &bumped), 0);
  assert_int_equal(x->b.bumps, 2);
  assert_true(head_is(c, x->b_addr));
  fdc_close(c);
}

/* Nobody leads: fdc_open still succeeds (the keys are good); a change looks
 * for the head until its deadline and ends never sent, saying what each
 * origin answered; once one leads, changes go to it. */
static void test_none_leads(void **state) {
  fx_t *x = *state;
  follow(&x->a, NULL);
  follow(&x->b, NULL);
  char list[80];
  snprintf(list, sizeof(list), "%s,%s", x->b_addr, x->a_addr);
  fdc_t *c = open_list(x, list, 400);
  assert_string_equal(fdc_head(c), "");
  assert_int_equal(fdc_append(c, "f.img", "abc", 3, NULL), -ENOTCONN);
  assert_non_null(strstr(fdc_last_error(c), "does not lead"));
  assert_non_null(strstr(fdc_last_error(c), x->a_addr));
  assert_non_null(strstr(fdc_last_error(c), x->b_addr));
  assert_int_equal(x->a.refused + x->b.refused, 0); /* never sent */
  x->a.follows = false;
  assert_int_equal(fdc_append(c, "f.img", "abc", 3, NULL), 0);
  assert_true(head_is(c, x->a_addr));
  fdc_close(c);
}

/* An fdnode older than issue 22 closes the connection on Origin.Head: when
 * no origin answers it, the first that completes the handshake is the head,
 * as before. */
static void test_old_fdnode(void **state) {
  fx_t *x = *state;
  fake_stop(&x->a);
  fake_stop(&x->b);
  memset(&x->a, 0, sizeof(x->a));
  x->a.no_head_method = true;
  fake_start(&x->a);
  fake_write_keys(&x->a, x->dir);
  snprintf(x->a_addr, sizeof(x->a_addr), "127.0.0.1:%u", atomic_load(&x->a.port));
  fdc_t *c = open_list(x, x->a_addr, 5000);
  assert_string_equal(fdc_head(c), x->a_addr);
  assert_int_equal(fdc_append(c, "f.img", "abc", 3, NULL), 0);
  assert_int_equal(x->a.writes, 1);
  fdc_close(c);
}

int main(void) {
  fd_log_init("test_fdclient_head", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_head_named),
      cmocka_unit_test(test_retry_kind),
      cmocka_unit_test_setup_teardown(test_found_and_followed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_none_leads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_old_fdnode, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
