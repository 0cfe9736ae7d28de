/* test_config.c — INI loading against a schema: values, bounds, unknown keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_config.h"

typedef struct test_cfg {
  char id[32];
  uint32_t threads;
  uint64_t chunk;
  bool direct;
} test_cfg_t;

static test_cfg_t cfg;
static const fd_config_item_t items[] = {
    {"node", "id", FD_CFG_STRING, cfg.id, sizeof(cfg.id), 0, 0, "node id"},
    {"node", "threads", FD_CFG_U32, &cfg.threads, 0, 1, 64, "engine threads"},
    {"storage", "chunk_size", FD_CFG_BYTES, &cfg.chunk, 0, 65536, 64u << 20, "chunk size"},
    {"storage", "direct", FD_CFG_BOOL, &cfg.direct, 0, 0, 0, "O_DIRECT"},
};

static int load_text(const char *text, char *err, size_t err_len) {
  char path[] = "/tmp/fd-test-config-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  memset(&cfg, 0, sizeof(cfg));
  strcpy(cfg.id, "default");
  cfg.threads = 2;
  int rc = fd_config_load(path, items, sizeof(items) / sizeof(items[0]), err, err_len);
  unlink(path);
  return rc;
}

static void test_config_values(void **state) {
  (void)state;
  char err[256];
  assert_int_equal(load_text("[node]\nid = n7\nthreads=4\n[storage]\nchunk_size = 4M\n"
                             "direct = yes\n",
                             err, sizeof(err)),
                   0);
  assert_string_equal(cfg.id, "n7");
  assert_int_equal(cfg.threads, 4);
  assert_int_equal(cfg.chunk, 4u << 20);
  assert_true(cfg.direct);
}

static void test_config_defaults_kept(void **state) {
  (void)state;
  char err[256];
  assert_int_equal(load_text("[storage]\ndirect = off\n", err, sizeof(err)), 0);
  assert_string_equal(cfg.id, "default");
  assert_int_equal(cfg.threads, 2);
  assert_false(cfg.direct);
}

static void test_config_rejects(void **state) {
  (void)state;
  char err[256];
  assert_int_equal(load_text("[node]\nthreads = 0\n", err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "outside"));
  assert_int_equal(load_text("[node]\nthreads = four\n", err, sizeof(err)), -EINVAL);
  assert_int_equal(load_text("[node]\ntreads = 4\n", err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "unknown key 'treads'"));
  assert_non_null(strstr(err, ":2:"));
  assert_int_equal(load_text("[storage]\nchunk_size = 1G\n", err, sizeof(err)), -EINVAL);
  assert_int_equal(load_text("[storage]\ndirect = maybe\n", err, sizeof(err)), -EINVAL);
  assert_int_equal(
      load_text("[node]\nid = this-id-is-much-too-long-for-its-buffer-of-32\n", err, sizeof(err)),
      -EINVAL);
  assert_int_equal(load_text("[node\nid = x\n", err, sizeof(err)), -EINVAL);
  assert_int_equal(fd_config_load("/nonexistent.ini", items, 4, err, sizeof(err)), -ENOENT);
}

static void test_config_set_override(void **state) {
  (void)state;
  char err[256];
  assert_int_equal(fd_config_set(items, 4, "node.threads=8", err, sizeof(err)), 0);
  assert_int_equal(cfg.threads, 8);
  assert_int_equal(fd_config_set(items, 4, "node.threads", err, sizeof(err)), -EINVAL);
  assert_int_equal(fd_config_set(items, 4, "nope.x=1", err, sizeof(err)), -EINVAL);
}

static void test_parse_bytes(void **state) {
  (void)state;
  uint64_t v;
  assert_int_equal(fd_parse_bytes("512", &v), 0);
  assert_int_equal(v, 512);
  assert_int_equal(fd_parse_bytes("64K", &v), 0);
  assert_int_equal(v, 65536);
  assert_int_equal(fd_parse_bytes("10GiB", &v), 0);
  assert_int_equal(v, 10ull << 30);
  assert_int_equal(fd_parse_bytes("1T", &v), 0);
  assert_int_equal(v, 1ull << 40);
  assert_int_equal(fd_parse_bytes("", &v), -EINVAL);
  assert_int_equal(fd_parse_bytes("-1", &v), -EINVAL);
  assert_int_equal(fd_parse_bytes("4X", &v), -EINVAL);
  assert_int_equal(fd_parse_bytes("99999999999999999T", &v), -ERANGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_values),   cmocka_unit_test(test_config_defaults_kept),
      cmocka_unit_test(test_config_rejects),  cmocka_unit_test(test_config_set_override),
      cmocka_unit_test(test_parse_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
