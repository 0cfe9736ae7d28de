/* test_db.c — version registry and durable db: versions, origins, nodes survive reopen via log and checkpoint; holdings are volatile. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_hash.h"
#include "scheduler.h"

static char dir[256];

static int setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof(dir), "%s/fd-db-XXXXXX", tmp ? tmp : "/tmp");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char path[300];
  snprintf(path, sizeof(path), "%s/log", dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/checkpoint", dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/checkpoint.tmp", dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/log.tmp", dir);
  unlink(path);
  return rmdir(dir);
}

static sch_db_t *db_open(uint64_t now) {
  int err = 0;
  sch_store_t *st = sch_store_open_dir(dir, &err);
  assert_non_null(st);
  sch_members_config_t cfg;
  sch_members_config_default(&cfg);
  sch_db_t *db = sch_db_open(st, &cfg, now, &err);
  assert_non_null(db);
  return db;
}

static uint8_t manifest[3][5000];
static const char *origins[] = {"o1", "o2", "o3"};

static sch_version_info_t vinfo(const char *file, uint64_t version, int m) {
  for (size_t i = 0; i < sizeof(manifest[m]); i++) manifest[m][i] = (uint8_t)(i * (m + 3));
  return (sch_version_info_t){.file = file,
                              .version = version,
                              .size_bytes = 10ull << 30,
                              .chunk_size_bytes = FD_CHUNK_SIZE_DEFAULT,
                              .manifest = manifest[m],
                              .manifest_len = sizeof(manifest[m]) - (size_t)m,
                              .origin_count = 2,
                              .origins = origins};
}

static void check_version(sch_db_t *db, const char *file, uint64_t version, int m,
                          uint32_t origin_count) {
  const sch_version_t *v = sch_registry_find(sch_db_registry(db), file, version);
  assert_non_null(v);
  assert_int_equal(v->manifest_len, sizeof(manifest[m]) - (size_t)m);
  assert_memory_equal(v->manifest, manifest[m], v->manifest_len);
  uint8_t digest[FD_SHA256_LEN];
  fd_sha256(manifest[m], v->manifest_len, digest);
  assert_memory_equal(v->manifest_digest, digest, FD_SHA256_LEN);
  assert_int_equal(v->chunk_count, (10ull << 30) / FD_CHUNK_SIZE_DEFAULT);
  assert_int_equal(v->origin_count, origin_count);
  assert_string_equal(v->origins[0], "o1");
}

static void add_nodes(sch_db_t *db) {
  char id[16];
  for (int i = 0; i < 20; i++) {
    snprintf(id, sizeof(id), "n%d", i);
    sch_node_info_t ni = {.id = id, .region = i < 10 ? "eu" : "us", .zone = i % 2 ? "a" : "b",
                          .address = "10.1.1.1:7000", .nic_bps = 10000000000ull,
                          .free_disk_bytes = 1000, .origin = i < 3};
    uint32_t slot;
    assert_int_equal(sch_db_register_node(db, &ni, 10, &slot), 0);
    assert_int_equal(slot, (uint32_t)i);
  }
}

static void check_nodes(sch_db_t *db) {
  sch_members_t *m = sch_db_members(db);
  assert_int_equal(sch_members_count(m), 20);
  assert_int_equal(sch_members_find(m, "n13"), 13);
  const sch_node_t *n = sch_members_node(m, 13);
  assert_string_equal(sch_members_region_name(m, n->region), "us");
  assert_string_equal(sch_members_zone_name(m, n->zone), "a");
  assert_true(sch_members_node(m, 1)->origin);
  assert_int_equal(sch_members_node(m, 5)->state, SCH_NODE_DRAINING);
  assert_int_equal(sch_members_node(m, 6)->state, SCH_NODE_LEFT);
  assert_int_equal(sch_members_node(m, 7)->state, SCH_NODE_ALIVE);
}

static void test_restart_keeps_everything(void **state) {
  (void)state;
  sch_db_t *db = db_open(0);
  add_nodes(db);
  assert_int_equal(sch_db_drain_node(db, 5), 0);
  assert_int_equal(sch_db_leave_node(db, 6), 0);
  sch_version_info_t v1 = vinfo("big.img", 1, 0), v2 = vinfo("big.img", 2, 1),
                     w1 = vinfo("other", 7, 2);
  assert_int_equal(sch_db_add_version(db, &v1), 0);
  assert_int_equal(sch_db_add_version(db, &v2), 0);
  assert_int_equal(sch_db_add_version(db, &w1), 0);
  assert_int_equal(sch_db_add_origin(db, "big.img", 2, "o3"), 0);
  /* Holdings are reported, and volatile. */
  assert_int_equal(sch_registry_report(sch_db_registry(db), 7, "big.img", 2, 2560), 0);
  uint32_t holders[4];
  assert_int_equal(sch_registry_holders(sch_db_registry(db), "big.img", 2, holders, 4), 1);
  sch_db_close(db);

  /* Restart from the log alone. */
  db = db_open(1000);
  check_nodes(db);
  assert_int_equal(sch_registry_count(sch_db_registry(db)), 3);
  check_version(db, "big.img", 1, 0, 2);
  check_version(db, "big.img", 2, 1, 3);
  check_version(db, "other", 7, 2, 2);
  assert_int_equal(sch_registry_newest(sch_db_registry(db), "big.img")->version, 2);
  assert_int_equal(sch_registry_holders(sch_db_registry(db), "big.img", 2, holders, 4), 0);
  assert_int_equal(sch_members_node(sch_db_members(db), 7)->last_heartbeat_ms, 1000);
  /* Checkpoint, then change more: retire one, add one. */
  assert_int_equal(sch_db_checkpoint(db), 0);
  assert_int_equal(sch_db_retire_version(db, "big.img", 1), 0);
  sch_version_info_t v3 = vinfo("big.img", 3, 0);
  assert_int_equal(sch_db_add_version(db, &v3), 0);
  sch_db_close(db);

  /* Restart from checkpoint plus log. */
  db = db_open(2000);
  check_nodes(db);
  assert_int_equal(sch_registry_count(sch_db_registry(db)), 3);
  assert_null(sch_registry_find(sch_db_registry(db), "big.img", 1));
  check_version(db, "big.img", 2, 1, 3);
  check_version(db, "big.img", 3, 0, 2);
  /* And once more from a checkpoint alone. */
  assert_int_equal(sch_db_checkpoint(db), 0);
  sch_db_close(db);
  db = db_open(3000);
  check_nodes(db);
  check_version(db, "other", 7, 2, 2);
  assert_int_equal(sch_registry_count(sch_db_registry(db)), 3);
  sch_db_close(db);
}

static void test_refusals(void **state) {
  (void)state;
  sch_db_t *db = db_open(0);
  sch_version_info_t v = vinfo("f", 5, 0);
  assert_int_equal(sch_db_add_version(db, &v), 0);
  assert_int_equal(sch_db_add_version(db, &v), -EEXIST);
  v.version = 4;
  assert_int_equal(sch_db_add_version(db, &v), -ERANGE); /* older than the newest */
  v.version = 6;
  v.chunk_size_bytes = 3000;
  assert_int_equal(sch_db_add_version(db, &v), -EINVAL); /* refused when applied */
  v.chunk_size_bytes = FD_CHUNK_SIZE_DEFAULT;
  v.origin_count = SCH_ORIGINS_MAX + 1;
  assert_int_equal(sch_db_add_version(db, &v), -EINVAL);
  assert_int_equal(sch_db_add_origin(db, "f", 99, "o"), -ENOENT);
  assert_int_equal(sch_db_add_origin(db, "f", 5, "o1"), -EALREADY);
  assert_int_equal(sch_db_retire_version(db, "f", 99), -ENOENT);
  assert_int_equal(sch_db_drain_node(db, 3), -ENOENT);
  sch_node_info_t ni = {.id = "a", .region = "r", .zone = "z", .address = "x:1", .nic_bps = 1};
  assert_int_equal(sch_db_register_node(db, &ni, 0, NULL), 0);
  sch_node_info_t moved = ni;
  moved.zone = "other";
  assert_int_equal(sch_db_register_node(db, &moved, 0, NULL), -EEXIST);
  sch_db_close(db);
  /* The refused operations changed nothing on replay either. */
  db = db_open(0);
  assert_int_equal(sch_registry_count(sch_db_registry(db)), 1);
  assert_string_equal(sch_members_zone_name(sch_db_members(db), 0), "z");
  assert_int_equal(sch_members_zone_count(sch_db_members(db)), 1); /* nothing interned */
  sch_registry_t *r = sch_db_registry(db);
  assert_int_equal(sch_registry_report(r, 0, "f", 5, 1u << 30), -ERANGE);
  assert_int_equal(sch_registry_report(r, 0, "nope", 5, 1), -ENOENT);
  assert_int_equal(sch_registry_report(r, FD_NODES_MAX, "f", 5, 1), -ERANGE);
  assert_int_equal(sch_registry_report(r, 0, "f", 5, 10), 0);
  assert_int_equal(sch_registry_held(r, 0, "f", 5), 10);
  sch_db_close(db);
}

static void test_periodic_checkpoint(void **state) {
  (void)state;
  sch_db_t *db = db_open(0);
  add_nodes(db); /* 20 logged operations */
  bool done = true;
  assert_int_equal(sch_db_ops_since_checkpoint(db), 20);
  assert_int_equal(sch_db_maybe_checkpoint(db, 21, &done), 0);
  assert_false(done);
  sch_db_close(db);
  db = db_open(0);
  assert_int_equal(sch_db_ops_since_checkpoint(db), 20); /* replayed records count */
  assert_int_equal(sch_db_maybe_checkpoint(db, 20, &done), 0);
  assert_true(done);
  assert_int_equal(sch_db_ops_since_checkpoint(db), 0);
  char path[300];
  snprintf(path, sizeof(path), "%s/log", dir);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  assert_int_equal(ftell(f), 0); /* the log was emptied */
  fclose(f);
  sch_db_close(db);
  db = db_open(0);
  assert_int_equal(sch_members_count(sch_db_members(db)), 20);
  sch_db_close(db);
}

static void test_store_errors(void **state) {
  (void)state;
  int err = 0;
  char path[300];
  /* A data dir that is a file. */
  snprintf(path, sizeof(path), "%s/log", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(path, sizeof(path), "%s/log/sub", dir);
  assert_null(sch_store_open_dir(path, &err));
  assert_int_equal(err, -ENOTDIR);
  /* A record over the limit is refused and leaves the log as it was. */
  sch_store_t *st = sch_store_open_dir(dir, &err);
  assert_non_null(st);
  static char one[1];
  struct iovec big = {one, (size_t)SCH_LOG_RECORD_LEN_MAX + 1}; /* never read: refused first */
  assert_int_equal(sch_store_append(st, &big, 1), -EMSGSIZE);
  sch_store_close(st);
  /* db_open passes store errors through (and closes the store). */
  st = sch_store_open_dir(dir, &err);
  assert_non_null(st);
  sch_members_config_t cfg = {.heartbeat_ms = 0};
  assert_null(sch_db_open(st, &cfg, 0, &err));
  assert_int_equal(err, -EINVAL);
}

/* A child process registers versions through the db, acknowledging each on a
 * pipe once sch_db_add_version returned; it is killed with SIGKILL at a
 * random moment. Every acknowledged version must be there after reopening,
 * with its manifest intact. */
static void version_manifest(uint64_t v, uint8_t *buf, size_t *len) {
  *len = 100 + (size_t)(v * 131 % 20000);
  for (size_t i = 0; i < *len; i++) buf[i] = (uint8_t)(v * 7 + i);
}

static void test_sigkill_keeps_acknowledged_versions(void **state) {
  (void)state;
  const char *env = getenv("FD_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
  print_message("[   SEED   ] FD_TEST_SEED=%llu\n", (unsigned long long)seed);
  srandom((unsigned)seed);
  static uint8_t buf[20200];
  uint64_t acked = 0;
  for (int round = 0; round < 4; round++) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      int err;
      sch_store_t *st = sch_store_open_dir(dir, &err);
      sch_members_config_t cfg;
      sch_members_config_default(&cfg);
      sch_db_t *db = st ? sch_db_open(st, &cfg, 0, &err) : NULL;
      if (!db) _exit(2);
      const sch_version_t *newest = sch_registry_newest(sch_db_registry(db), "f");
      for (uint64_t v = newest ? newest->version + 1 : 1;; v++) {
        size_t len;
        version_manifest(v, buf, &len);
        sch_version_info_t vi = {.file = "f", .version = v, .size_bytes = v << 20,
                                 .chunk_size_bytes = FD_CHUNK_SIZE_DEFAULT, .manifest = buf,
                                 .manifest_len = len, .origin_count = 1, .origins = origins};
        if (sch_db_add_version(db, &vi)) _exit(3);
        if (write(fds[1], &v, 8) != 8) _exit(4);
        if (v % 16 == 0 && sch_db_checkpoint(db)) _exit(5);
      }
    }
    close(fds[1]);
    long want = 5 + random() % 60;
    uint64_t v;
    for (long n = 0; n < want && read(fds[0], &v, 8) == 8; n++) acked = v;
    usleep((useconds_t)(random() % 3000));
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    while (read(fds[0], &v, 8) == 8) acked = v;
    close(fds[0]);
    sch_db_t *db = db_open(0);
    sch_registry_t *r = sch_db_registry(db);
    for (uint64_t x = 1; x <= acked; x++) {
      const sch_version_t *ver = sch_registry_find(r, "f", x);
      if (!ver) fail_msg("round %d: acknowledged version %llu lost (seed %llu)", round,
                         (unsigned long long)x, (unsigned long long)seed);
      size_t len;
      version_manifest(x, buf, &len);
      assert_int_equal(ver->manifest_len, len);
      assert_memory_equal(ver->manifest, buf, len);
      assert_int_equal(ver->size_bytes, x << 20);
    }
    sch_db_close(db);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_restart_keeps_everything, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_periodic_checkpoint, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigkill_keeps_acknowledged_versions, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
