/* Server-streaming calls: chunk headers then DATA frames landed in the client's bulk pool, under flow control; also with pools over the locked-memory limit, unregistered. */
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "stream_util.h"

/* One fetch of 24 chunks; registered: 1 or 0 if both engines' pools must be
 * registered or not, -1 if either will do. */
static void fetch(int registered) {
  const uint32_t chunks = 24, len = 1024 * 1024;
  test_server_t s = {.opts = test_opts(), .setup = setup_fetch, .pool_bufs = 8, .pool_buf_size = len};
  s.opts.payload_max = 2 * len;
  s.opts.bulk_send = RPC_BULK_SEND_ZC; /* loopback would pick plain send: test SEND_ZC */
  uint16_t port = test_server_start(&s);

  /* The client's windows are the smallest allowed (one payload), so the
   * server is held back and must resume from on_writable. */
  tcall_pool = fd_pool_create(4, len);
  rpc_engine_opts_t o = test_opts();
  o.bulk_pool = tcall_pool;
  o.payload_max = len;
  o.stream_window_bytes = len;
  o.conn_window_bytes = len;
  rpc_engine_t *e = rpc_engine_create(&o);
  assert_non_null(e);
  if (registered >= 0) assert_int_equal(rpc_engine_pool_registered(e), registered);
  test_conn_t tc;
  test_connect(e, port, &tc);
  assert_true(pump_until(e, &tc.ready, 3000));
  test_call_t t;
  assert_non_null(start_fetch(tc.c, chunks, len, false, 10000, &t));
  pump_until(e, &t.done, 10000);
  fprintf(stderr, "msgs %u frames %u bytes %lu done %d\n", t.msgs, t.data_frames, (unsigned long)t.data_bytes, t.done);
  assert_true(t.done);
  assert_int_equal(t.code, RPC_OK);
  assert_int_equal(t.msgs, chunks);
  assert_int_equal(t.data_frames, chunks);
  assert_int_equal(t.data_bytes, (uint64_t)chunks * len);
  assert_int_equal(t.data_crc, expected_crc(chunks, len));
  assert_int_equal(fd_pool_available(tcall_pool), 4);

  rpc_stats_t cs;
  rpc_engine_get_stats(e, &cs);
  /* Most DATA bytes were received straight into pool buffers. */
  fprintf(stderr, "copied %lu of %lu\n", (unsigned long)cs.rx_copied_bytes, (unsigned long)chunks * len);
  assert_true(cs.rx_copied_bytes < (uint64_t)chunks * len / 2);
  rpc_engine_destroy(e);
  fd_pool_destroy(tcall_pool);
  test_server_stop(&s);
  assert_int_equal(atomic_load(&stream_closed_code), RPC_OK);
  assert_true(s.stats.blocked_ns > 0); /* the window held the server back */
  /* Every wait has one cause: the client's window, or the server's socket. */
  assert_int_equal(s.stats.blocked_window_ns + s.stats.blocked_socket_ns, s.stats.blocked_ns);
  fprintf(stderr, "blocked: window %lu ns, socket %lu ns\n", (unsigned long)s.stats.blocked_window_ns,
          (unsigned long)s.stats.blocked_socket_ns);
  assert_int_equal(s.stats.data_frames_tx, chunks);
  if (registered >= 0) assert_int_equal(s.registered, registered);
}

static void test_fetch(void **state) {
  (void)state;
  fetch(-1); /* registered as root, not as an ordinary user (memlock_charged) */
}

/* As an ordinary user: a finite locked-memory limit (8 MiB per user on Debian
 * 12, shared by all their processes) and no CAP_IPC_LOCK, so both engines
 * leave their pools unregistered. As root the limit is 1 MiB and only this
 * process is charged to it, so the server's forced zero-copy sends of 1 MiB
 * are refused and it falls back to copied sends. Runs last: it drops the
 * capability for the whole process. */
static void test_fetch_over_memlock(void **state) {
  (void)state;
  struct rlimit rl;
  assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
  if (geteuid() == 0) {
    rl.rlim_cur = 1024 * 1024;
    assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
  } else if (rl.rlim_cur == RLIM_INFINITY) {
    skip(); /* an ordinary user whose locked memory is not limited */
  }
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct d[2];
  assert_int_equal(syscall(SYS_capget, &h, d), 0);
  d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  assert_int_equal(syscall(SYS_capset, &h, d), 0);
  fetch(0);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_fetch),
                                     cmocka_unit_test(test_fetch_over_memlock)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
