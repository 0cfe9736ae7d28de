/* fdnode's origin list: id@addr:port and bare-id entries parsed (and every malformed one refused), bare ids filled in and kept current from fdsched's list of live origins, fixed addresses never changed, and the config check that needs a scheduler for bare ids after this origin. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fd_log.h"
#include "nd_peers.h"
#include "node.h"
#include "rpc.h"

static nd_origins_t os;

/* The list's entries in o, count in n, self in self. */
static int parse(const char *spec, const char *self_id, nd_peer_t **o, uint32_t *n, int *self) {
  int rc = nd_origins_parse(&os, spec, self_id);
  *o = os.o;
  *n = os.n;
  *self = os.self;
  return rc;
}

static void test_parse(void **state) {
  (void)state;
  nd_peer_t *o;
  uint32_t n;
  int self;
  /* Fixed addresses, as always. */
  assert_int_equal(parse("o1@127.0.0.1:7001,o2@10.0.0.2:7002", "o2", &o, &n, &self), 0);
  assert_int_equal(n, 2);
  assert_int_equal(self, 1);
  assert_string_equal(o[0].id, "o1");
  assert_string_equal(o[0].addr, "127.0.0.1");
  assert_int_equal(o[0].port, 7001);
  assert_false(o[0].learned);
  assert_string_equal(o[1].addr, "10.0.0.2");
  /* Bare ids: no address until fdsched tells it; mixed with fixed ones,
   * separated by commas and/or spaces. */
  assert_int_equal(parse("o1, o2@[::1]:7002 o3", "n9", &o, &n, &self), 0);
  assert_int_equal(n, 3);
  assert_int_equal(self, -1);
  assert_string_equal(o[0].id, "o1");
  assert_int_equal(o[0].port, 0);
  assert_string_equal(o[0].addr, "");
  assert_true(o[0].learned);
  assert_string_equal(o[1].addr, "[::1]");
  assert_int_equal(o[1].port, 7002);
  assert_false(o[1].learned);
  assert_true(o[2].learned);
  assert_int_equal(parse("", "o1", &o, &n, &self), 0);
  assert_int_equal(n, 0);
  /* Refused. */
  static const char *const bad[] = {
      "@127.0.0.1:7001",         /* no id */
      "o1@",                     /* no address */
      "o1@127.0.0.1",            /* no port */
      "o1@127.0.0.1:0",          /* port 0 is no address */
      "o1@127.0.0.1:70000",      /* port out of range */
      "o1@127.0.0.1:70x",        /* not a number */
      "o1,o2,o1",                /* twice in the chain */
      "o1@127.0.0.1:1,o1",       /* twice, once fixed */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(parse(bad[i], "o1", &o, &n, &self), -EINVAL);
  char long_id[FD_NAME_LEN_MAX + 2];
  memset(long_id, 'x', sizeof(long_id) - 1);
  long_id[sizeof(long_id) - 1] = '\0';
  assert_int_equal(parse(long_id, "o1", &o, &n, &self), -EINVAL);
  long_id[FD_NAME_LEN_MAX] = '\0'; /* the longest id there is */
  assert_int_equal(parse(long_id, "o1", &o, &n, &self), 0);
  assert_int_equal(parse("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", "a", &o, &n, &self), 0);
  assert_int_equal(n, ND_ORIGINS_MAX);
  assert_int_equal(parse("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "a", &o, &n, &self), -EMSGSIZE);
}

static Sched__Peer peer(const char *id, const char *addr, uint32_t port) {
  Sched__Peer p = SCHED__PEER__INIT;
  p.node_id = (char *)id;
  p.addr = (char *)addr;
  p.port = port;
  return p;
}

static void test_learn(void **state) {
  (void)state;
  static nd_origins_t l;
  nd_origins_t *n = &l;
  assert_int_equal(nd_origins_parse(n, "o1,o2@10.0.0.2:7002,o3", "o1"), 0);
  /* fdsched knows o1 and o2 (at another address than o2's fixed one). */
  Sched__Peer a[] = {peer("o2", "10.9.9.9", 9), peer("x", "1.1.1.1", 1), peer("o1", "127.0.0.1", 4001)};
  Sched__Peer *pa[] = {&a[0], &a[1], &a[2]};
  nd_origins_learn(n, pa, 3);
  assert_string_equal(n->o[0].addr, "127.0.0.1");
  assert_int_equal(n->o[0].port, 4001);
  assert_string_equal(n->o[1].addr, "10.0.0.2"); /* fixed: never overridden */
  assert_int_equal(n->o[1].port, 7002);
  assert_int_equal(n->o[2].port, 0); /* o3 not registered yet */
  /* o3 registers, o1 moves; then o1 drops out of the list (dead): it keeps
   * its last address. */
  Sched__Peer b[] = {peer("o3", "127.0.0.1", 4003), peer("o1", "127.0.0.2", 4011)};
  Sched__Peer *pb[] = {&b[0], &b[1]};
  nd_origins_learn(n, pb, 2);
  assert_string_equal(n->o[0].addr, "127.0.0.2");
  assert_int_equal(n->o[0].port, 4011);
  assert_int_equal(n->o[2].port, 4003);
  nd_origins_learn(n, pb, 1);
  assert_int_equal(n->o[0].port, 4011);
  nd_origins_learn(n, NULL, 0);
  assert_int_equal(n->o[2].port, 4003);
  /* An unusable entry (no address, port 0 or out of range) changes nothing. */
  Sched__Peer c[] = {peer("o3", "", 5), peer("o1", "127.0.0.3", 0), peer("o3", "127.0.0.3", 70000)};
  Sched__Peer *pc[] = {&c[0], &c[1], &c[2]};
  nd_origins_learn(n, pc, 3);
  nd_origins_learn(n, pc + 1, 2);
  nd_origins_learn(n, pc + 2, 1);
  assert_string_equal(n->o[0].addr, "127.0.0.2");
  assert_int_equal(n->o[0].port, 4011);
  assert_string_equal(n->o[2].addr, "127.0.0.1");
  assert_int_equal(n->o[2].port, 4003);
}

/* nd_config_check: bare ids need a scheduler only for the origins after
 * this one (those it copies versions to). */
static int check(const char *role, const char *id, const char *origins, const char *sched) {
  nd_config_t c;
  nd_config_defaults(&c);
  snprintf(c.id, sizeof(c.id), "%s", id);
  snprintf(c.role, sizeof(c.role), "%s", role);
  snprintf(c.data_dir, sizeof(c.data_dir), "/tmp/x");
  snprintf(c.cluster_key_file, sizeof(c.cluster_key_file), "/tmp/k");
  snprintf(c.admin_pub_file, sizeof(c.admin_pub_file), "/tmp/p");
  snprintf(c.origins, sizeof(c.origins), "%s", origins);
  snprintf(c.scheduler, sizeof(c.scheduler), "%s", sched);
  char err[256] = "";
  int rc = nd_config_check(&c, err, sizeof(err));
  if (rc) assert_true(strlen(err) > 0);
  return rc;
}

static void test_config_check(void **state) {
  (void)state;
  assert_int_equal(check("origin", "o1", "o1,o2,o3", "127.0.0.1:7000"), 0);
  assert_int_equal(check("origin", "o2", "o1,o2,o3", "127.0.0.1:7000"), 0);
  assert_int_equal(check("node", "n1", "o1,o2,o3", "127.0.0.1:7000"), 0);
  assert_int_equal(check("origin", "o1", "o1@127.0.0.1:1,o2@127.0.0.1:2", ""), 0);
  /* Without a scheduler: the ones before (and this one) may be bare. */
  assert_int_equal(check("origin", "o3", "o1,o2,o3", ""), 0);
  assert_int_equal(check("origin", "o2", "o1,o2,o3@127.0.0.1:3", ""), 0);
  assert_int_equal(check("origin", "o2", "o1,o2,o3", ""), -EINVAL);
  assert_int_equal(check("origin", "o1", "o1,o2@127.0.0.1:2,o3", ""), -EINVAL);
  /* Malformed, or this origin not in it. */
  assert_int_equal(check("origin", "o1", "o1,o2@x", "127.0.0.1:7000"), -EINVAL);
  assert_int_equal(check("node", "n1", "o1,o1", "127.0.0.1:7000"), -EINVAL);
  assert_int_equal(check("origin", "o4", "o1,o2,o3", "127.0.0.1:7000"), -EINVAL);
}

/* The chain's order from ZooKeeper (nd_group.c): listed ids first in that
 * order, the others after in their order, self following its entry, unknown
 * ids skipped, and "changed" only when the order moved. */
static void test_reorder(void **state) {
  (void)state;
  assert_int_equal(nd_origins_parse(&os, "o1@127.0.0.1:7001,o2,o3", "o2"), 0);
  const char *ids[] = {"o2", "o9", "o3"};
  assert_true(nd_origins_reorder_moves(&os, ids, 3));
  assert_string_equal(os.o[0].id, "o1"); /* only asked */
  assert_true(nd_origins_reorder(&os, ids, 3));
  assert_string_equal(os.o[0].id, "o2");
  assert_string_equal(os.o[1].id, "o3");
  assert_string_equal(os.o[2].id, "o1");
  assert_int_equal(os.self, 0);
  assert_int_equal(os.o[2].port, 7001); /* entries move whole */
  assert_false(nd_origins_reorder_moves(&os, ids, 3));
  assert_false(nd_origins_reorder(&os, ids, 3));
  const char *partial[] = {"o2"}; /* the others keep their order */
  assert_false(nd_origins_reorder_moves(&os, partial, 1));
  const char *back[] = {"o1", "o2", "o3"};
  assert_true(nd_origins_reorder(&os, back, 3));
  assert_int_equal(os.self, 1);
  /* addresses from ZooKeeper fill bare ids only */
  nd_origins_set_addr(&os, "o3", "10.0.0.3", 7003);
  nd_origins_set_addr(&os, "o1", "10.0.0.1", 9999);
  assert_string_equal(os.o[2].addr, "10.0.0.3");
  assert_int_equal(os.o[2].port, 7003);
  assert_int_equal(os.o[0].port, 7001);
}

/* The chain znode's text: canonical text round-trips; anything else is
 * refused. (nd_chain_parse lives with the origin role, nd_origin_int.h.) */
int nd_chain_parse_for_test(const char *text, uint64_t *epoch, uint32_t *n, char ids[][16]);
static void test_chain_text(void **state) {
  (void)state;
  uint64_t e;
  uint32_t n;
  char ids[8][16];
  assert_int_equal(nd_chain_parse_for_test("epoch 7\nchain o2,o3,o1\nhead_since 5\n", &e, &n, ids), 0);
  assert_int_equal(e, 7);
  assert_int_equal(n, 3);
  assert_string_equal(ids[0], "o2");
  assert_string_equal(ids[2], "o1");
  static const char *const bad[] = {
      "", "epoch 1\nchain o1\n", "epoch 1\nchain o1\nhead_since 2\n",
      "epoch 1\nchain o1\nhead_since 0\n", "epoch 0\nchain o1\n", "epoch 01\nchain o1\n", "epoch 1\nchain \n",
      "epoch 1\nchain o1,,o2\n", "epoch 1\nchain o1,o1\n", "epoch 1\nchain o@1\n",
      "chain o1\nepoch 1\n", "epoch 1\nchain o1\nx", "epoch -1\nchain o1\n",
      "epoch 18446744073709551616\nchain o1\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(nd_chain_parse_for_test(bad[i], &e, &n, ids), -EINVAL);
}

int main(void) {
  fd_log_init("test_node_origins", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse), cmocka_unit_test(test_learn),
                                     cmocka_unit_test(test_config_check),
                                     cmocka_unit_test(test_reorder),
                                     cmocka_unit_test(test_chain_text)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
