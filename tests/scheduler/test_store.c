/* test_store.c — the embedded operation log: replay, checkpoints, torn tails (anywhere in the last append), corruption, SIGKILL mid-append. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "scheduler.h"

static char dir[256];

static int setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof(dir), "%s/fd-store-XXXXXX", tmp ? tmp : "/tmp");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char path[300];
  const char *names[] = {"log", "checkpoint", "log.tmp", "checkpoint.tmp", "log.saved"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
  return rmdir(dir);
}

/* Record i: its index and (i & 0xff) repeated, length depending on i. */
static size_t make_record(uint64_t i, uint8_t *buf) {
  size_t len = 8 + (size_t)((i * 37) % 3000);
  memcpy(buf, &i, 8);
  memset(buf + 8, (int)(i & 0xff), len - 8);
  return len;
}

static int append_index(sch_store_t *st, uint64_t i) {
  uint8_t buf[4096];
  struct iovec iov = {buf, make_record(i, buf)};
  return sch_store_append(st, &iov, 1);
}

typedef struct seen {
  bool have_ckpt;
  uint64_t ckpt_last; /* index the checkpoint covers through */
  uint64_t next;      /* next index expected */
  uint64_t records;
  bool bad;
} seen_t;

static int visit(void *arg, bool is_checkpoint, const uint8_t *data, size_t len) {
  seen_t *s = arg;
  if (is_checkpoint) {
    if (len != 8) return s->bad = true, -EINVAL;
    memcpy(&s->ckpt_last, data, 8);
    s->have_ckpt = true;
    s->next = s->ckpt_last + 1;
    return 0;
  }
  uint8_t want[4096];
  uint64_t i;
  if (len < 8) return s->bad = true, -EINVAL;
  memcpy(&i, data, 8);
  if (i != s->next || make_record(i, want) != len || memcmp(want, data, len) != 0) {
    print_message("record %llu (len %zu) where %llu was due\n", (unsigned long long)i, len,
                  (unsigned long long)s->next);
    s->bad = true;
    return -EINVAL;
  }
  s->next++;
  s->records++;
  return 0;
}

static seen_t replay_all(sch_store_t *st) {
  seen_t s = {0};
  assert_int_equal(sch_store_replay(st, visit, &s), 0);
  assert_false(s.bad);
  return s;
}

static sch_store_t *open_ok(void) {
  int err = 0;
  sch_store_t *st = sch_store_open_dir(dir, &err);
  if (!st) print_message("open failed: %d\n", err);
  assert_non_null(st);
  return st;
}

static void log_path(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", dir, name); }

static off_t file_size(const char *name) {
  char path[300];
  log_path(path, sizeof(path), name);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return st.st_size;
}

static void append_raw(const void *data, size_t len) {
  char path[300];
  log_path(path, sizeof(path), "log");
  int fd = open(path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static void flip_byte(const char *name, off_t at) {
  char path[300];
  log_path(path, sizeof(path), name);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, at), 1);
  b ^= 0x40;
  assert_int_equal(pwrite(fd, &b, 1, at), 1);
  close(fd);
}

static void test_append_replay_checkpoint(void **state) {
  (void)state;
  sch_store_t *st = open_ok();
  seen_t s = replay_all(st);
  assert_int_equal(s.records, 0);
  for (uint64_t i = 0; i < 50; i++) assert_int_equal(append_index(st, i), 0);
  /* A batch: several records, one fsync. */
  uint8_t a[4096], b[4096];
  struct iovec two[2] = {{a, make_record(50, a)}, {b, make_record(51, b)}};
  assert_int_equal(sch_store_append(st, two, 2), 0);
  assert_int_equal(sch_store_dir_records_since_checkpoint(st), 52);
  sch_store_close(st);
  st = open_ok();
  s = replay_all(st);
  assert_int_equal(s.records, 52);
  assert_false(s.have_ckpt);
  /* Checkpoint through 51, then log more. */
  uint64_t last = 51;
  assert_int_equal(sch_store_checkpoint(st, &last, 8), 0);
  assert_int_equal(sch_store_dir_records_since_checkpoint(st), 0);
  assert_int_equal(file_size("log"), 0);
  for (uint64_t i = 52; i < 60; i++) assert_int_equal(append_index(st, i), 0);
  sch_store_close(st);
  st = open_ok();
  s = replay_all(st);
  assert_true(s.have_ckpt);
  assert_int_equal(s.ckpt_last, 51);
  assert_int_equal(s.records, 8);
  assert_int_equal(s.next, 60);
  assert_int_equal(sch_store_dir_truncated_bytes(st), 0);
  sch_store_close(st);
}

static void test_torn_tails_are_cut(void **state) {
  (void)state;
  sch_store_t *st = open_ok();
  for (uint64_t i = 0; i < 5; i++) assert_int_equal(append_index(st, i), 0);
  sch_store_close(st);
  off_t good = file_size("log");
  /* 1: a header claiming 100 bytes, followed by 10. */
  uint8_t torn[26] = {100, 0, 0, 0};
  append_raw(torn, sizeof(torn));
  st = open_ok();
  assert_int_equal(sch_store_dir_truncated_bytes(st), 26);
  assert_int_equal(file_size("log"), good);
  assert_int_equal(replay_all(st).records, 5);
  /* Appending after the cut works and continues the sequence. */
  assert_int_equal(append_index(st, 5), 0);
  sch_store_close(st);
  /* 2: half a header. */
  append_raw(torn, 7);
  st = open_ok();
  assert_int_equal(sch_store_dir_truncated_bytes(st), 7);
  assert_int_equal(replay_all(st).records, 6);
  sch_store_close(st);
  /* 3: a complete last record whose payload was torn (fails its CRC). */
  good = file_size("log");
  st = open_ok();
  assert_int_equal(append_index(st, 6), 0);
  sch_store_close(st);
  flip_byte("log", file_size("log") - 3);
  st = open_ok();
  assert_int_equal(sch_store_dir_truncated_bytes(st), 16 + 8 + (6 * 37) % 3000);
  assert_int_equal(file_size("log"), good);
  assert_int_equal(replay_all(st).records, 6);
  sch_store_close(st);
}

static void zero_bytes(const char *name, off_t at, size_t len) {
  char path[300];
  log_path(path, sizeof(path), name);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t zeros[64] = {0};
  assert_true(len <= sizeof(zeros));
  assert_int_equal(pwrite(fd, zeros, len, at), (ssize_t)len);
  close(fd);
}

/* A power cut may leave the last append with any of its sectors lost (zeros
 * where the file grew), not only its end: that is still a torn tail. */
static void test_torn_append_anywhere_is_cut(void **state) {
  (void)state;
  sch_store_t *st = open_ok();
  for (uint64_t i = 0; i < 5; i++) assert_int_equal(append_index(st, i), 0);
  off_t good = file_size("log");
  /* Three records in one append; its first record's payload loses bytes. */
  uint8_t a[4096], b[4096], c[4096];
  struct iovec three[3] = {{a, make_record(5, a)}, {b, make_record(6, b)}, {c, make_record(7, c)}};
  assert_int_equal(sch_store_append(st, three, 3), 0);
  sch_store_close(st);
  off_t end = file_size("log");
  zero_bytes("log", good + 16 + 10, 32);
  st = open_ok();
  assert_int_equal(sch_store_dir_truncated_bytes(st), end - good);
  assert_int_equal(file_size("log"), good);
  assert_int_equal(replay_all(st).records, 5);
  /* One record whose header sector was lost while its payload landed. */
  assert_int_equal(append_index(st, 5), 0);
  sch_store_close(st);
  zero_bytes("log", good, 16);
  st = open_ok();
  assert_int_equal(file_size("log"), good);
  assert_int_equal(replay_all(st).records, 5);
  sch_store_close(st);
}

static void test_corruption_is_refused(void **state) {
  (void)state;
  sch_store_t *st = open_ok();
  for (uint64_t i = 0; i < 5; i++) assert_int_equal(append_index(st, i), 0);
  sch_store_close(st);
  /* A bad byte inside record 1, with records after it: never skipped. */
  flip_byte("log", 16 + 8 + 16 + 4);
  int err = 0;
  assert_null(sch_store_open_dir(dir, &err));
  assert_int_equal(err, -EBADMSG);
  flip_byte("log", 16 + 8 + 16 + 4); /* repair it */
  st = open_ok();
  uint64_t last = 4;
  assert_int_equal(sch_store_checkpoint(st, &last, 8), 0);
  sch_store_close(st);
  flip_byte("checkpoint", 30);
  assert_null(sch_store_open_dir(dir, &err));
  assert_int_equal(err, -EBADMSG);
}

static void test_crash_between_checkpoint_and_log_reset(void **state) {
  (void)state;
  char log[300], saved[300];
  log_path(log, sizeof(log), "log");
  log_path(saved, sizeof(saved), "log.saved");
  sch_store_t *st = open_ok();
  for (uint64_t i = 0; i < 10; i++) assert_int_equal(append_index(st, i), 0);
  sch_store_close(st);
  /* Keep a copy of the log as it was before the checkpoint... */
  char cmd[700];
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", log, saved);
  assert_int_equal(system(cmd), 0);
  st = open_ok();
  uint64_t last = 9;
  assert_int_equal(sch_store_checkpoint(st, &last, 8), 0);
  sch_store_close(st);
  /* ...and put it back, as if the crash came before the log was emptied. */
  assert_int_equal(rename(saved, log), 0);
  st = open_ok();
  seen_t s = replay_all(st);
  assert_true(s.have_ckpt);
  assert_int_equal(s.records, 0); /* covered by the checkpoint: not repeated */
  assert_int_equal(append_index(st, 10), 0);
  sch_store_close(st);
  st = open_ok();
  s = replay_all(st);
  assert_int_equal(s.records, 1);
  assert_int_equal(s.next, 11);
  sch_store_close(st);
}

/* The child appends forever, acknowledging each index on the pipe only after
 * the append returned; every 64 records it checkpoints. */
static void crash_child(int ack_fd) {
  int err;
  sch_store_t *st = sch_store_open_dir(dir, &err);
  if (!st) _exit(2);
  seen_t s = {0};
  if (sch_store_replay(st, visit, &s) || s.bad) _exit(3);
  for (uint64_t i = s.next;; i++) {
    if (append_index(st, i)) _exit(4);
    if (write(ack_fd, &i, 8) != 8) _exit(5);
    if (i % 64 == 63) {
      if (sch_store_checkpoint(st, &i, 8)) _exit(6);
    }
  }
}

static void test_sigkill_keeps_acknowledged(void **state) {
  (void)state;
  const char *env = getenv("FD_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
  print_message("[   SEED   ] FD_TEST_SEED=%llu\n", (unsigned long long)seed);
  srandom((unsigned)seed);
  uint64_t last_acked = 0;
  bool any = false;
  for (int round = 0; round < 6; round++) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      crash_child(fds[1]);
    }
    close(fds[1]);
    long want = 20 + random() % 300;
    uint64_t i;
    for (long n = 0; n < want && read(fds[0], &i, 8) == 8; n++) last_acked = i, any = true;
    /* Kill it somewhere in the middle of an append or a checkpoint. */
    usleep((useconds_t)(random() % 2000));
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    while (read(fds[0], &i, 8) == 8) last_acked = i, any = true; /* acks already sent */
    close(fds[0]);
    sch_store_t *st = open_ok();
    seen_t s = replay_all(st);
    assert_true(any);
    /* Every acknowledged record is there, intact and in order. */
    if (s.next < last_acked + 1)
      fail_msg("round %d: replay ends at %llu, acknowledged through %llu (seed %llu)", round,
               (unsigned long long)s.next, (unsigned long long)last_acked, (unsigned long long)seed);
    sch_store_close(st);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_append_replay_checkpoint, setup, teardown),
      cmocka_unit_test_setup_teardown(test_torn_tails_are_cut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_torn_append_anywhere_is_cut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corruption_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_between_checkpoint_and_log_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigkill_keeps_acknowledged, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
