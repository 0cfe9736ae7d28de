/* fdadmin write, append and bump, run as a process against a fake origin head: output, stdin input, splitting into changes, the first failure stopping it, exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_origin.h"
#include "fd_log.h"
#include "fd_time.h"

extern char **environ;

#define END ((const char *)NULL) /* ends fdadmin()'s arguments */

#ifndef FDADMIN_PATH /* the binary under test: tests/admin/CMakeLists.txt sets it */
#define FDADMIN_PATH "fdadmin"
#endif

typedef struct fx {
  char dir[64], cluster[96], admin[96], origins[64], input[96], out[96], err[96];
  fake_origin_t f;
  char *stdout_text, *stderr_text;
} fx_t;

static int setup(void **state) {
  fx_t *x = calloc(1, sizeof(*x));
  snprintf(x->dir, sizeof(x->dir), "/tmp/fdadmin-write.XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  fake_start(&x->f);
  fake_write_keys(&x->f, x->dir);
  snprintf(x->cluster, sizeof(x->cluster), "%s/cluster.key", x->dir);
  snprintf(x->admin, sizeof(x->admin), "%s/admin.pem", x->dir);
  snprintf(x->input, sizeof(x->input), "%s/input", x->dir);
  snprintf(x->out, sizeof(x->out), "%s/stdout", x->dir);
  snprintf(x->err, sizeof(x->err), "%s/stderr", x->dir);
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
  free(x->stdout_text);
  free(x->stderr_text);
  free(x);
  return 0;
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *s = malloc((size_t)len + 1);
  assert_int_equal(fread(s, 1, (size_t)len, fp), (size_t)len);
  s[len] = '\0';
  fclose(fp);
  return s;
}

/* Runs fdadmin with the fake's address and keys, then args (NULL-ended);
 * stdin from stdin_path (NULL: /dev/null). Returns its exit code; its output
 * is in x->stdout_text and x->stderr_text. */
static int fdadmin(fx_t *x, const char *stdin_path, int keys, ...) {
  char *argv[40];
  int argc = 0;
  argv[argc++] = (char *)FDADMIN_PATH;
  if (keys) {
    argv[argc++] = (char *)"--origins";
    argv[argc++] = x->origins;
    argv[argc++] = (char *)"--cluster-key";
    argv[argc++] = x->cluster;
    argv[argc++] = (char *)"--admin-key";
    argv[argc++] = x->admin;
  }
  va_list ap;
  va_start(ap, keys);
  const char *a;
  while ((a = va_arg(ap, const char *)) && argc < 39) argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path ? stdin_path : "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, x->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, x->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, FDADMIN_PATH, &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  free(x->stdout_text);
  free(x->stderr_text);
  x->stdout_text = slurp(x->out);
  x->stderr_text = slurp(x->err);
  if (!WIFEXITED(status)) {
    fprintf(stderr, "fdadmin died: status %d\n%s", status, x->stderr_text);
    fail();
  }
  return WEXITSTATUS(status);
}

static uint8_t *make_input(const char *path, size_t len, uint32_t seed) {
  uint8_t *buf = malloc(len ? len : 1);
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)((i * 2654435761u + seed) >> 11);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(buf, 1, len, fp), len);
  fclose(fp);
  return buf;
}

static uint32_t count_lines(const char *s) {
  uint32_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* ---- output ---- */

static void test_append_stdin(void **state) {
  fx_t *x = *state;
  size_t len = (5u << 19) + 17; /* 2.5 MiB + 17: three changes */
  uint8_t *in = make_input(x->input, len, 1);
  assert_int_equal(fdadmin(x, x->input, true, "append", "f.img", "-", END), 0);
  assert_string_equal(x->stdout_text,
                      "version 1 index 0 offset 0 length 1048576 input 0\n"
                      "version 1 index 1 offset 1048576 length 1048576 input 1048576\n"
                      "version 1 index 2 offset 2097152 length 524305 input 2097152\n");
  assert_non_null(strstr(x->stderr_text, "append f.img: 3 changes, 2621457 bytes acknowledged"));
  assert_int_equal(x->f.writes, 3);
  for (uint32_t i = 0; i < 3; i++) assert_true(x->f.log[i].append);
  assert_int_equal(x->f.file_len, len);
  assert_memory_equal(x->f.file, in, len);
  free(in);
}

static void test_write_offset_quiet(void **state) {
  fx_t *x = *state;
  size_t len = (1u << 20) + 5; /* 17 changes of 64 KiB, the last of 5 bytes */
  uint8_t *in = make_input(x->input, len, 2);
  assert_int_equal(fdadmin(x, NULL, true, "write", "f.img", "--offset", "4K", "--change-size",
                           "64K", "--inflight", "4", "--quiet", x->input, END),
                   0);
  assert_int_equal(count_lines(x->stdout_text), 1);
  assert_non_null(strstr(x->stdout_text, "write f.img: 17 changes, 1048581 bytes acknowledged"));
  assert_non_null(strstr(x->stdout_text, "(v1 index 0 to v1 index 16)"));
  assert_int_equal(x->f.writes, 17);
  for (uint32_t i = 0; i < 17; i++) {
    assert_false(x->f.log[i].append);
    assert_int_equal(x->f.log[i].offset, 4096 + (uint64_t)i * 65536);
    assert_int_equal(x->f.log[i].client_seq, i + 1); /* in input order */
  }
  assert_memory_equal(x->f.file + 4096, in, len);
  free(in);
}

static void test_json(void **state) {
  fx_t *x = *state;
  uint8_t *in = make_input(x->input, 100, 3);
  assert_int_equal(fdadmin(x, NULL, true, "--json", "append", "f.img", x->input, END), 0);
  const char *head = "{\"name\":\"f.img\",\"op\":\"append\",\"changes\":[{\"version\":1,"
                     "\"index\":0,\"offset\":0,\"length\":100,\"input\":0}],\"acknowledged\":1,\"bytes\":100,"
                     "\"seconds\":";
  const char *tail = ",\"first\":{\"version\":1,\"index\":0},\"last\":{\"version\":1,"
                     "\"index\":0},\"ok\":true}\n";
  assert_int_equal(strncmp(x->stdout_text, head, strlen(head)), 0);
  size_t n = strlen(x->stdout_text);
  assert_true(n > strlen(head) + strlen(tail));
  assert_string_equal(x->stdout_text + n - strlen(tail), tail);
  /* --quiet: the summary without the changes; a failure says so. */
  x->f.refuse = RPC_FAILED_PRECONDITION;
  snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "below \"min\"");
  assert_int_equal(fdadmin(x, NULL, true, "--json", "append", "--quiet", "f.img", x->input, END),
                   1);
  const char *quiet = "{\"name\":\"f.img\",\"op\":\"append\",\"acknowledged\":0,";
  assert_int_equal(strncmp(x->stdout_text, quiet, strlen(quiet)), 0);
  assert_non_null(strstr(x->stdout_text, ",\"ok\":false,\"error\":\"below \\\"min\\\"\"}\n"));
  free(in);
}

static void test_bump(void **state) {
  fx_t *x = *state;
  uint8_t *in = make_input(x->input, 3000, 4);
  assert_int_equal(fdadmin(x, NULL, true, "append", "f.img", x->input, END), 0);
  assert_int_equal(fdadmin(x, NULL, true, "append", "f.img", x->input, END), 0);
  uint8_t digest[FD_SHA256_LEN];
  fd_sha256(x->f.file, x->f.file_len, digest);
  char hex[2 * FD_SHA256_LEN + 1], want[256];
  fd_hex_encode(digest, sizeof(digest), hex);
  assert_int_equal(fdadmin(x, NULL, true, "bump", "f.img", END), 0);
  snprintf(want, sizeof(want), "bumped f.img: version 1 committed, 2 changes, digest %s\n", hex);
  assert_string_equal(x->stdout_text, want);
  assert_int_equal(x->f.bumps, 1);
  /* The next change builds v2; a bump of it, as JSON. */
  assert_int_equal(fdadmin(x, NULL, true, "append", "f.img", x->input, END), 0);
  assert_string_equal(x->stdout_text, "version 2 index 0 offset 6000 length 3000 input 0\n");
  fd_sha256(x->f.file, x->f.file_len, digest);
  fd_hex_encode(digest, sizeof(digest), hex);
  assert_int_equal(fdadmin(x, NULL, true, "--json", "bump", "f.img", END), 0);
  snprintf(want, sizeof(want),
           "{\"name\":\"f.img\",\"version\":2,\"changes\":1,\"digest\":\"%s\"}\n", hex);
  assert_string_equal(x->stdout_text, want);
  free(in);
}

/* ---- failures ---- */

static void test_first_failure_stops(void **state) {
  fx_t *x = *state;
  uint8_t *in = make_input(x->input, 10u << 16, 5); /* ten changes of 64 KiB */
  x->f.refuse = RPC_FAILED_PRECONDITION;
  x->f.refuse_from = 6;
  snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "below min_durable_origins: 1 of 2 live");
  assert_int_equal(fdadmin(x, NULL, true, "append", "f.img", "--change-size", "64K", "--inflight",
                           "2", x->input, END),
                   1);
  /* What was acknowledged is printed; nothing after the failure is. */
  assert_int_equal(count_lines(x->stdout_text), 5);
  assert_non_null(strstr(x->stdout_text, "version 1 index 4 offset 262144 length 65536 input 262144\n"));
  assert_non_null(strstr(x->stderr_text, "input bytes [327680, 393216) failed"));
  assert_non_null(strstr(x->stderr_text, "below min_durable_origins: 1 of 2 live"));
  assert_non_null(strstr(x->stderr_text, "5 changes, 327680 bytes acknowledged"));
  assert_int_equal(x->f.writes, 5);
  assert_true(x->f.arrivals < 10); /* it stopped sending */
  free(in);
}

static void test_exit_codes(void **state) {
  fx_t *x = *state;
  uint8_t *in = make_input(x->input, 10, 6);
  /* Usage: never reaches the head. */
  assert_int_equal(fdadmin(x, NULL, true, "write", "f.img", x->input, END), 2); /* no --offset */
  assert_int_equal(fdadmin(x, NULL, true, "append", "f.img", END), 2);
  assert_int_equal(fdadmin(x, NULL, true, "append", "../x", x->input, END), 2);
  assert_int_equal(fdadmin(x, NULL, true, "append", "f.img", "/nonexistent/in", END), 2);
  assert_int_equal(fdadmin(x, NULL, true, "append", "f.img", "--offset", "3", x->input, END), 2);
  assert_int_equal(
      fdadmin(x, NULL, true, "append", "f.img", "--change-size", "2M", x->input, END), 2);
  assert_int_equal(fdadmin(x, NULL, true, "write", "f.img", "--offset", "1099511627776",
                           x->input, END),
                   2); /* past the largest file */
  assert_int_equal(fdadmin(x, NULL, true, "bump", END), 2);
  assert_int_equal(fdadmin(x, NULL, true, "--writer-key", x->admin, "bump", "f.img", END), 2);
  assert_non_null(strstr(x->stderr_text, "--writer-cert"));
  assert_int_equal(fdadmin(x, NULL, false, "append", "f.img", x->input, END), 2);
  assert_int_equal(x->f.arrivals + x->f.bumps, 0);

  /* --help for each: 0, on stdout. */
  assert_int_equal(fdadmin(x, NULL, false, "write", "--help", END), 0);
  assert_non_null(strstr(x->stdout_text, "--offset N"));
  assert_int_equal(fdadmin(x, NULL, false, "append", "--help", END), 0);
  assert_non_null(strstr(x->stdout_text, "usage: fdadmin [GLOBAL OPTIONS] append NAME"));
  assert_int_equal(fdadmin(x, NULL, false, "bump", "--help", END), 0);
  assert_non_null(strstr(x->stdout_text, "--wait-ms"));
  assert_int_equal(fdadmin(x, NULL, false, "--help", END), 0);
  assert_non_null(strstr(x->stdout_text, "append NAME FILE|-"));

  /* Unreachable (3): nobody listens; the cluster refuses the key; the head
   * says the key lacks the role. */
  assert_int_equal(fdadmin(x, NULL, false, "--origins", "127.0.0.1:1", "--cluster-key",
                           x->cluster, "--admin-key", x->admin, "append", "f.img", x->input,
                           END),
                   3);
  assert_non_null(strstr(x->stderr_text, "127.0.0.1:1"));
  char other[128];
  snprintf(other, sizeof(other), "%s/other.key", x->dir);
  FILE *fp = fopen(other, "w");
  fprintf(fp, "%064d\n", 0);
  fclose(fp);
  assert_int_equal(fdadmin(x, NULL, false, "--origins", x->origins, "--cluster-key", other,
                           "--admin-key", x->admin, "append", "f.img", x->input, END),
                   3);
  x->f.refuse = RPC_PERMISSION_DENIED;
  snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "writer role required");
  assert_int_equal(fdadmin(x, NULL, true, "append", "f.img", x->input, END), 3);
  assert_non_null(strstr(x->stderr_text, "writer role required"));
  assert_int_equal(fdadmin(x, NULL, true, "bump", "f.img", END), 3);

  /* Failed (1): the head refuses; no answer before the deadline. */
  x->f.refuse = RPC_NOT_FOUND;
  snprintf(x->f.refuse_msg, sizeof(x->f.refuse_msg), "no changes to bump");
  assert_int_equal(fdadmin(x, NULL, true, "bump", "f.img", END), 1);
  assert_non_null(strstr(x->stderr_text, "no changes to bump"));
  x->f.refuse = RPC_OK;
  x->f.silent = true;
  assert_int_equal(fdadmin(x, NULL, true, "--timeout-ms", "300", "append", "f.img", x->input,
                           END),
                   1);
  assert_non_null(strstr(x->stderr_text, "may be in the log"));
  assert_int_equal(x->f.writes, 1); /* the fake took it, never answered */
  free(in);
}

int main(void) {
  fd_log_init("test_admin_write", FD_LOG_ERROR);
  setenv("FDADMIN_CONFIG", "", 1); /* no /etc/fdist/fdadmin.ini of the machine's */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_append_stdin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_offset_quiet, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bump, setup, teardown),
      cmocka_unit_test_setup_teardown(test_first_failure_stops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
