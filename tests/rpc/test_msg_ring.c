/* Engines on two threads, one pinned to a CPU, exchange messages through IORING_OP_MSG_RING. */
#include <sched.h>

#include "harness.h"

#define ROUNDS 1000

typedef struct peer {
  rpc_engine_t *e;
  struct peer *other;
  _Atomic int received;
  _Atomic bool up;
} peer_t;

static peer_t a, b;
static rpc_msg_t msg;

/* Runs on the engine that received it; bounces the message back. */
static void bounce(rpc_engine_t *target, rpc_msg_t *m) {
  assert_non_null(target); /* delivered */
  peer_t *self = target == a.e ? &a : &b;
  assert_ptr_equal(m->arg, &msg);
  int n = atomic_fetch_add(&self->received, 1) + 1;
  if (self == &a && n >= ROUNDS) return; /* a stops the game */
  assert_int_equal(rpc_engine_post(self->e, self->other->e, m), 0);
}

static void *b_main(void *arg) {
  (void)arg;
  rpc_engine_opts_t o = test_opts();
  cpu_set_t set;
  assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
  o.cpu = -1;
  for (int i = 0; i < CPU_SETSIZE; i++) /* the last CPU this process may use */
    if (CPU_ISSET(i, &set)) o.cpu = i;
  b.e = rpc_engine_create(&o);
  assert_non_null(b.e);
  assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
  assert_int_equal(CPU_COUNT(&set), 1); /* the engine's thread is pinned */
  assert_true(CPU_ISSET(o.cpu, &set));
  atomic_store(&b.up, true);
  rpc_engine_run(b.e);
  rpc_engine_destroy(b.e); /* on the thread that owns it */
  return NULL;
}

static void test_ping_pong(void **state) {
  (void)state;
  a.other = &b;
  b.other = &a;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, b_main, NULL), 0);
  while (!atomic_load(&b.up)) usleep(1000);
  rpc_engine_opts_t o = test_opts();
  a.e = rpc_engine_create(&o);
  msg.fn = bounce;
  msg.arg = &msg;
  assert_int_equal(rpc_engine_post(a.e, b.e, &msg), 0);
  uint64_t until = fd_now_ms() + 10000;
  while (atomic_load(&a.received) < ROUNDS && fd_now_ms() < until) rpc_engine_run_once(a.e, 5);
  assert_int_equal(atomic_load(&a.received), ROUNDS);
  assert_int_equal(atomic_load(&b.received), ROUNDS);
  rpc_engine_stop(b.e);
  pthread_join(th, NULL);
  rpc_engine_destroy(a.e);
}

int main(void) {
  test_log_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_ping_pong)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
