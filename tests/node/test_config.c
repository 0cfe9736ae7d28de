/* fdnode's configuration: the INI schema, -s overrides, defaults and every rejection of nd_config_check. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_log.h"
#include "node.h"

static size_t items_of(nd_config_t *c, fd_config_item_t *items) {
  nd_config_defaults(c);
  return nd_config_items(c, items, 64);
}

static void set_ok(fd_config_item_t *items, size_t n, const char *kv) {
  char err[256];
  assert_int_equal(fd_config_set(items, n, kv, err, sizeof(err)), 0);
}

static void valid(nd_config_t *c, fd_config_item_t *items, size_t *n) {
  *n = items_of(c, items);
  set_ok(items, *n, "node.id=n1");
  set_ok(items, *n, "node.data_dir=/tmp/x");
  set_ok(items, *n, "node.cluster_key_file=/tmp/k");
  set_ok(items, *n, "node.admin_pub_file=/tmp/p");
}

static void test_defaults_and_file(void **state) {
  (void)state;
  nd_config_t c;
  fd_config_item_t items[64];
  size_t n = items_of(&c, items);
  assert_true(n >= 16);
  assert_string_equal(c.role, "node");
  assert_int_equal(c.heartbeat_ms, 1000);
  assert_int_equal(c.keep_versions, 2);
  assert_int_equal(c.chunk_buf_bytes, 4u * 1024 * 1024);
  char path[] = "/tmp/nd_cfg_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *ini = "[node]\nid = o1\nrole = origin\nlisten = 127.0.0.1:7001\ndata_dir = /d\n"
                    "cluster_key_file = /k\nadmin_pub_file = /p\nheartbeat_ms = 200\n"
                    "chunk_buf = 1M\norigins = o1@127.0.0.1:7001,o2@127.0.0.1:7002\n";
  assert_int_equal(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
  close(fd);
  char err[256];
  assert_int_equal(fd_config_load(path, items, n, err, sizeof(err)), 0);
  assert_string_equal(c.id, "o1");
  assert_int_equal(c.heartbeat_ms, 200);
  assert_int_equal(c.chunk_buf_bytes, 1024 * 1024);
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), 0);
  /* a typo is an error, never a silent default */
  fd = open(path, O_WRONLY | O_TRUNC);
  const char *bad = "[node]\nheartbeat = 5\n";
  assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
  close(fd);
  assert_int_equal(fd_config_load(path, items, n, err, sizeof(err)), -EINVAL);
  unlink(path);
}

static void test_check_rejects(void **state) {
  (void)state;
  nd_config_t c;
  fd_config_item_t items[64];
  size_t n;
  char err[256];
  valid(&c, items, &n);
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), 0);

  static const char *const bad[] = {
      "node.id=",           "node.role=leader",        "node.data_dir=",
      "node.listen=nohost", "node.listen=1.2.3.4:99999", "node.scheduler=x",
      "node.chunk_buf=3M",  "node.role=origin", /* origin without origins */
      "node.cluster_key_file=", "node.admin_pub_file=",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    valid(&c, items, &n);
    set_ok(items, n, bad[i]);
    assert_int_equal(nd_config_check(&c, err, sizeof(err)), -EINVAL);
    assert_true(strlen(err) > 0);
  }
  /* The signing key: with its certificate, on an origin only. */
  valid(&c, items, &n);
  set_ok(items, n, "node.signing_cert_file=/tmp/og.cert");
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "go together"));
  set_ok(items, n, "node.signing_key_file=/tmp/og.pem");
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "role origin only"));
  set_ok(items, n, "node.role=origin");
  set_ok(items, n, "node.id=o1");
  set_ok(items, n, "node.origins=o1@127.0.0.1:7001");
  set_ok(items, n, "node.revocations_file=/tmp/revoked.list");
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), 0);
  set_ok(items, n, "node.signing_cert_file=");
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), -EINVAL);
  /* out of range values are refused when set */
  valid(&c, items, &n);
  assert_int_equal(fd_config_set(items, n, "node.heartbeat_ms=1", err, sizeof(err)), -EINVAL);
  assert_int_equal(fd_config_set(items, n, "node.pool_buffers=2", err, sizeof(err)), -EINVAL);
  assert_int_equal(fd_config_set(items, n, "node.nosuch=1", err, sizeof(err)), -EINVAL);
}

/* The window: auto fits the pool; an explicit one the pool cannot back is
 * refused, as is one whose bytes overflow what rpc advertises. */
static void test_window(void **state) {
  (void)state;
  nd_config_t c;
  fd_config_item_t items[64];
  char err[256];
  size_t n;
  valid(&c, items, &n);
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(nd_config_window_chunks(&c), 4); /* pool 80 */
  set_ok(items, n, "node.pool_buffers=24");
  assert_int_equal(nd_config_window_chunks(&c), 3); /* (24 - 12) / 4 */
  set_ok(items, n, "node.pool_buffers=32");
  set_ok(items, n, "node.window_chunks=5");
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(nd_config_window_chunks(&c), 5);
  set_ok(items, n, "node.window_chunks=6"); /* 6 x 4 + 12 > 32 */
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "window_chunks"));
  set_ok(items, n, "node.pool_buffers=4096");
  set_ok(items, n, "node.chunk_buf=64M");
  set_ok(items, n, "node.window_chunks=32"); /* 2 GiB */
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), -EINVAL);
  set_ok(items, n, "node.window_chunks=16");
  assert_int_equal(nd_config_check(&c, err, sizeof(err)), 0);
}

int main(void) {
  fd_log_init("test_node_config", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_defaults_and_file),
                                     cmocka_unit_test(test_check_rejects),
                                     cmocka_unit_test(test_window)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
