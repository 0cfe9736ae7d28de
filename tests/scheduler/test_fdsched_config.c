/* fdsched's command line and config: --help, a config file with -s overrides, and the refusals (unknown key, bad cluster key, bad data dir). */
#include "fdsched_util.h"

/* Runs fdsched with argv (NULL-terminated, argv[0] implied); returns its exit
 * status and the first line of its output matching want (if want). */
static int run(const char *const *args, const char *want, bool *seen) {
  char out[600];
  snprintf(out, sizeof(out), "/tmp/fdsched-config-out-%d", (int)getpid());
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    const char *argv[32] = {FDSCHED_PATH};
    for (int i = 0; args[i] && i < 30; i++) argv[i + 1] = args[i];
    execv(FDSCHED_PATH, (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  uint64_t until = fd_now_ms() + 10000;
  while (waitpid(pid, &st, WNOHANG) != pid) {
    if (fd_now_ms() > until) { /* it should not be serving: these runs exit at once */
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      unlink(out);
      fail_msg("fdsched kept running");
    }
    usleep(2000);
  }
  if (seen) {
    *seen = false;
    FILE *f = fopen(out, "r");
    char line[1024];
    while (f && fgets(line, sizeof(line), f))
      if (strstr(line, want)) *seen = true;
    if (f) fclose(f);
  }
  unlink(out);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_help(void **state) {
  (void)state;
  bool seen;
  const char *a[] = {"--help", NULL};
  assert_int_equal(run(a, "heartbeat_ms", &seen), 0);
  assert_true(seen);
  const char *b[] = {"--bogus", NULL};
  assert_int_equal(run(b, "usage", &seen), 2);
  assert_true(seen);
}

static void test_config_file(void **state) {
  fdt_sched_t *s = *state;
  fdt_setup(s);
  char ini[400], key[400], bad[400];
  snprintf(ini, sizeof(ini), "%s/fdsched.ini", s->dir);
  FILE *f = fopen(ini, "w");
  assert_non_null(f);
  fprintf(f,
          "[scheduler]\nlisten = 127.0.0.1:0\ndata_dir = %s\ncluster_key = %s\n"
          "admin_public_key = %s\nport_file = %s\nheartbeat_ms = 250\nstripes = 8\n"
          "[log]\nlevel = warn\n",
          s->data, s->key_path, s->admin_pub, s->port_file);
  fclose(f);

  /* An unknown key in the file, or given with -s, is refused (exit 2). */
  bool seen;
  snprintf(bad, sizeof(bad), "%s/bad.ini", s->dir);
  f = fopen(bad, "w");
  fprintf(f, "[scheduler]\nheartbeat_msec = 100\n");
  fclose(f);
  const char *a[] = {"--config", bad, NULL};
  assert_int_equal(run(a, "heartbeat_msec", &seen), 2);
  assert_true(seen);
  const char *b[] = {"--config", ini, "-s", "scheduler.stripes=0", NULL};
  assert_int_equal(run(b, "stripes", &seen), 2);
  assert_true(seen);
  const char *c[] = {"--config", ini, "-s", "log.level=loud", NULL};
  assert_int_equal(run(c, "log.level", &seen), 2);

  /* A cluster key that is not 64 hex digits: refused at start (exit 1). */
  snprintf(key, sizeof(key), "%s/short.key", s->dir);
  f = fopen(key, "w");
  fprintf(f, "abcdef\n");
  fclose(f);
  char set[500];
  snprintf(set, sizeof(set), "scheduler.cluster_key=%s", key);
  const char *d[] = {"--config", ini, "-s", set, NULL};
  assert_int_equal(run(d, "64 hex digits", &seen), 1);
  assert_true(seen);
  /* suspect_misses must be below dead_misses. */
  const char *e[] = {"--config", ini, "-s", "scheduler.suspect_misses=5", "-s",
                     "scheduler.dead_misses=5", NULL};
  assert_int_equal(run(e, "dead_misses", &seen), 1);
  assert_true(seen);
  /* A data dir that cannot be made. */
  const char *g[] = {"--config", ini, "-s", "scheduler.data_dir=/proc/fdsched-no/such", NULL};
  assert_int_equal(run(g, "data dir", &seen), 1);
  assert_true(seen);

  /* The good file serves, with its values (heartbeat_ms reaches the nodes). */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(FDSCHED_PATH, FDSCHED_PATH, "--config", ini, "-s", "scheduler.heartbeat_ms=300",
          (char *)NULL);
    _exit(127);
  }
  s->pid = pid;
  uint64_t until = fd_now_ms() + 10000;
  unsigned port = 0;
  while (!port && fd_now_ms() < until) {
    FILE *pf = fopen(s->port_file, "r");
    if (pf) {
      if (fscanf(pf, "%u", &port) != 1) port = 0;
      fclose(pf);
    }
    usleep(5000);
  }
  assert_true(port > 0);
  rpc_engine_t *en = fdt_engine(s->key, sizeof(s->key), NULL);
  fdt_conn_t tc;
  assert_true(fdt_connect(en, (uint16_t)port, &tc));
  Sched__NodeInfo ni = SCHED__NODE_INFO__INIT;
  ni.node_id = (char *)"n1";
  ni.region = (char *)"r1";
  ni.zone = (char *)"z1";
  ni.addr = (char *)"127.0.0.1";
  ni.port = 9101;
  ni.nic_bps = 10000000000ull;
  Sched__RegisterRequest req = SCHED__REGISTER_REQUEST__INIT;
  req.node = &ni;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_register(tc.c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(en, &t), RPC_OK);
  Sched__RegisterReply *r = fdt_reply(&t, 0, &sched__register_reply__descriptor);
  assert_int_equal(r->heartbeat_ms, 300); /* -s wins over the file */
  assert_true(r->epoch > 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  fdt_call_reset(&t);
  /* A node without an address is refused. */
  ni.port = 0;
  t.call = rpc_start_sched_register(tc.c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(en, &t), RPC_INVALID_ARGUMENT);
  fdt_call_reset(&t);
  rpc_conn_close(tc.c);
  rpc_engine_destroy(en);
  int st = fdt_stop(s, SIGTERM);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
  fdt_log_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help),
      cmocka_unit_test_setup_teardown(test_config_file, fdt_group_setup, fdt_group_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
