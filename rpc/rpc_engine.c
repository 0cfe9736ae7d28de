/* rpc_engine.c — one io_uring per thread: the provided-buffer ring for
 * multishot recv, the registered bulk pool, the tick timer (an io_uring
 * timeout), MSG_RING messages between engines, and the decode arena. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc_int.h"

static void *arena_alloc(void *data, size_t size) {
  rpc_engine_t *e = data;
  size_t at = FD_ALIGN_UP(e->arena_used, (size_t)16);
  if (size > e->arena_cap || at > e->arena_cap - size) return NULL;
  e->arena_used = at + size;
  return e->arena + at;
}

static void arena_free(void *data, void *ptr) {
  (void)data;
  (void)ptr; /* released all at once by rpc_eng_arena_reset */
}

void rpc_eng_arena_reset(rpc_engine_t *e) { e->arena_used = 0; }

ProtobufCMessage *rpc_eng_unpack(rpc_engine_t *e, const ProtobufCMessageDescriptor *d,
                                 const uint8_t *p, size_t len) {
  return protobuf_c_message_unpack(d, &e->alloc, len, p);
}

uint8_t *rpc_eng_rx_buf(rpc_engine_t *e, uint16_t bid) {
  FD_ASSERT(bid < e->rx_count);
  return e->rx_bufs + (size_t)bid * RPC_RX_BUF_SIZE;
}

void rpc_eng_recycle_rx(rpc_engine_t *e, uint16_t bid) {
  io_uring_buf_ring_add(e->br, rpc_eng_rx_buf(e, bid), RPC_RX_BUF_SIZE, bid,
                        io_uring_buf_ring_mask(e->rx_count), 0);
  io_uring_buf_ring_advance(e->br, 1);
}

static void tick_arm(rpc_engine_t *e);

static void on_tick(fd_op_t *op, int res, uint32_t flags) {
  (void)res;
  (void)flags;
  rpc_engine_t *e = RPC_CONTAINER_OF(op, rpc_engine_t, tick_op);
  e->tick_armed = false;
  e->tick_no++;
  uint64_t now = fd_now_ns();
  for (rpc_conn_t *c = e->live, *next; c; c = next) {
    next = c->live_next;
    rpc_conn_tick(c, now);
  }
  if (!e->destroying) tick_arm(e);
}

static void tick_arm(rpc_engine_t *e) {
  struct io_uring_sqe *sqe = fd_ring_sqe(&e->ring, &e->tick_op);
  FD_ASSERT(sqe);
  e->tick_ts.tv_sec = 0;
  e->tick_ts.tv_nsec = (long long)RPC_TICK_MS * 1000000ll;
  io_uring_prep_timeout(sqe, &e->tick_ts, 0, 0);
  e->tick_armed = true;
}

static int setup_buf_ring(rpc_engine_t *e) {
  e->br_bytes = FD_ALIGN_UP(e->rx_count * sizeof(struct io_uring_buf), (size_t)4096);
  e->br = mmap(NULL, e->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (e->br == MAP_FAILED) {
    e->br = NULL;
    return -errno;
  }
  e->rx_bufs = mmap(NULL, (size_t)e->rx_count * RPC_RX_BUF_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (e->rx_bufs == MAP_FAILED) {
    e->rx_bufs = NULL;
    return -errno;
  }
  io_uring_buf_ring_init(e->br);
  struct io_uring_buf_reg reg = {
      .ring_addr = (uint64_t)(uintptr_t)e->br, .ring_entries = e->rx_count, .bgid = RPC_BGID};
  int rc = io_uring_register_buf_ring(&e->ring.ring, &reg, 0);
  if (rc < 0) return rc;
  for (uint16_t i = 0; i < e->rx_count; i++)
    io_uring_buf_ring_add(e->br, rpc_eng_rx_buf(e, i), RPC_RX_BUF_SIZE, i,
                          io_uring_buf_ring_mask(e->rx_count), i);
  io_uring_buf_ring_advance(e->br, e->rx_count);
  return 0;
}

static uint32_t or_default(uint32_t v, uint32_t d) { return v ? v : d; }

/* Whether pages the engine pins (a registered pool, zero-copy sends) are
 * charged to RLIMIT_MEMLOCK: under a finite limit without CAP_IPC_LOCK. The
 * charge is per user, shared by all of that user's processes and, on newer
 * kernels, their io_uring rings (8 MiB in all for a user on Debian 12), so
 * such an engine pins nothing it can do without. */
static bool memlock_charged(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY) return false;
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &h, d) != 0) return true;
  return !(d[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32)));
}

/* A client's writer key and certificate: the certificate must decode,
 * certify role writer and name this very key (a mistake caught here rather
 * than as a refused handshake); whether the admin signed it, and when, is
 * the server's to check. Not with the admin role. */
static int writer_setup(rpc_engine_t *e, const rpc_engine_opts_t *o) {
  fd_cert_t c;
  if (!o->writer_key->has_private || e->has_admin_key || !o->writer_cert ||
      o->writer_cert_len > sizeof(e->writer_cert) ||
      fd_cert_decode(o->writer_cert, o->writer_cert_len, &c) != 0 ||
      c.role != FD_CERT_ROLE_WRITER ||
      memcmp(c.pub, o->writer_key->pub, FD_ED25519_PUB_LEN) != 0) {
    fd_log_error("rpc: the writer key needs its own writer certificate, and no admin key");
    return -EINVAL;
  }
  e->writer_key = *o->writer_key;
  memcpy(e->writer_cert, o->writer_cert, o->writer_cert_len);
  e->writer_cert_len = o->writer_cert_len;
  e->has_writer_key = true;
  return 0;
}

rpc_engine_t *rpc_engine_create(const rpc_engine_opts_t *o) {
  int rc = -EINVAL;
  if (!o || !o->cluster_key || o->cluster_key_len < 16 || o->cluster_key_len > FD_HMAC_KEY_LEN_MAX ||
      o->payload_max > FD_FRAME_PAYLOAD_MAX || o->conns_max > FD_CONNECTIONS_MAX ||
      o->streams_per_conn_max > FD_STREAMS_PER_CONNECTION_MAX || o->rx_bufs > RPC_RX_BUFS ||
      (o->rx_bufs & (o->rx_bufs - 1))) {
    errno = EINVAL;
    return NULL;
  }
  rpc_engine_t *e = calloc(1, sizeof(*e));
  if (!e) return NULL;
  e->owner = pthread_self();
  e->listen_fd = -1;
  e->payload_max = or_default(o->payload_max, FD_FRAME_PAYLOAD_MAX_DEFAULT);
  e->conns_max = or_default(o->conns_max, RPC_CONNS_DEFAULT);
  e->streams_max = or_default(o->streams_per_conn_max, RPC_STREAMS_PER_CONN_DEFAULT);
  e->stream_window = or_default(o->stream_window_bytes, RPC_STREAM_WINDOW_DEFAULT);
  e->conn_window = or_default(o->conn_window_bytes, RPC_CONN_WINDOW_DEFAULT);
  e->stall_ms = or_default(o->stall_ms, RPC_STALL_MS_DEFAULT);
  e->rx_count = or_default(o->rx_bufs, RPC_RX_BUFS);
  /* A frame larger than a window goes alone (rpc_call.c, rx_fits): windows
   * stay what the owner sized them to, its bulk buffers. */
  if (e->conn_window < e->stream_window) e->conn_window = e->stream_window;
  memcpy(e->key, o->cluster_key, o->cluster_key_len);
  e->key_len = o->cluster_key_len;
  if (o->admin_pub) {
    memcpy(e->admin_pub, o->admin_pub, FD_ED25519_PUB_LEN);
    e->has_admin_pub = true;
  }
  if (o->admin_key && o->admin_key->has_private) {
    e->admin_key = *o->admin_key;
    e->has_admin_key = true;
  }
  e->revocations = o->revocations;
  if (o->writer_key) {
    rc = writer_setup(e, o);
    if (rc < 0) goto out_free;
  }
  e->pool = o->bulk_pool;
  e->bulk_send = o->bulk_send;
  bool charged = memlock_charged();
  if (charged && e->bulk_send == RPC_BULK_SEND_AUTO) e->bulk_send = RPC_BULK_SEND_COPY;
  e->reuseport = o->reuseport;

  if (o->cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o->cpu, &set);
    rc = -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc < 0) {
      fd_log_error("rpc: cannot pin engine to cpu %d: %s", o->cpu, strerror(-rc));
      goto out_free;
    }
  }
  rc = fd_ring_init(&e->ring, or_default(o->ring_entries, FD_RING_ENTRIES_DEFAULT), 0);
  if (rc < 0) goto out_free;
  /* MSG_RING completions arrive without a submission of ours: a permanent
   * bias of one keeps fd_ring's in-flight count from underflowing, and each
   * message's callback gives back the one the loop takes (rpc_engine_post). */
  e->ring.inflight++;
  rc = setup_buf_ring(e);
  if (rc < 0) goto out_ring;
  if (e->pool) {
    if (charged) {
      fd_log_warn("rpc: the %zu-byte bulk pool stays unregistered: pinned, it would count against "
                  "the locked-memory limit all of this user's processes share (ulimit -l; "
                  "root has none)",
                  fd_pool_buf_size(e->pool) * fd_pool_count(e->pool));
    } else {
      rc = io_uring_register_buffers(&e->ring.ring, fd_pool_iovecs(e->pool),
                                     fd_pool_count(e->pool));
      if (rc < 0) goto out_ring;
      e->pool_registered = true;
    }
    if (fd_pool_buf_size(e->pool) > e->payload_max) {
      rc = -EINVAL;
      goto out_ring;
    }
  }
  e->arena_cap = (size_t)e->payload_max * 4 + (1u << 20);
  e->arena = mmap(NULL, e->arena_cap, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (e->arena == MAP_FAILED) {
    e->arena = NULL;
    rc = -ENOMEM;
    goto out_ring;
  }
  e->alloc.alloc = arena_alloc;
  e->alloc.free = arena_free;
  e->alloc.allocator_data = e;

  e->conns = calloc(e->conns_max, sizeof(*e->conns));
  e->conn_free = calloc(e->conns_max, sizeof(*e->conn_free));
  if (!e->conns || !e->conn_free) {
    rc = -ENOMEM;
    goto out_ring;
  }
  for (uint32_t i = 0; i < e->conns_max; i++) {
    e->conns[i].index = i;
    e->conns[i].fd = -1;
    e->conn_free[i] = e->conns_max - 1 - i;
  }
  e->conn_free_top = e->conns_max;
  rc = rpc_calls_init(e);
  if (rc < 0) goto out_ring;
  e->tick_op.complete = on_tick;
  tick_arm(e);
  return e;

out_ring:
  rpc_engine_destroy(e);
  errno = -rc;
  return NULL;
out_free:
  free(e);
  errno = -rc;
  return NULL;
}

void rpc_engine_destroy(rpc_engine_t *e) {
  if (!e) return;
  e->destroying = true;
  if (e->conns) {
    for (rpc_conn_t *c = e->live; c; c = c->live_next)
      if (c->state != RPC_CONN_CLOSING) rpc_conn_fail(c, -ESHUTDOWN, "engine destroyed");
  }
  if (e->accept_armed) {
    struct io_uring_sqe *sqe = fd_ring_sqe(&e->ring, NULL);
    if (sqe) io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&e->accept_op, 0);
  }
  if (e->tick_armed) {
    struct io_uring_sqe *sqe = fd_ring_sqe(&e->ring, NULL);
    if (sqe) io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&e->tick_op, 0);
  }
  /* Drain: every op's final completion, bounded in time. */
  uint64_t until = fd_now_ns() + 2000000000ull;
  while (e->ring.ring.ring_fd >= 0 && e->ring.inflight > 1 && fd_now_ns() < until) {
    fd_ring_run_once(&e->ring, 1, 10000000ull);
    rpc_conn_finalize_ready(e);
  }
  rpc_conn_finalize_ready(e);
  if (e->ring.inflight > 1)
    fd_log_warn("rpc: engine destroyed with %u operations in flight", e->ring.inflight - 1);
  if (e->listen_fd >= 0) close(e->listen_fd);
  rpc_calls_deinit(e);
  if (e->br) io_uring_unregister_buf_ring(&e->ring.ring, RPC_BGID);
  if (e->pool_registered) io_uring_unregister_buffers(&e->ring.ring);
  if (e->ring.ring.ring_fd >= 0) fd_ring_deinit(&e->ring);
  if (e->br) munmap(e->br, e->br_bytes);
  if (e->rx_bufs) munmap(e->rx_bufs, (size_t)e->rx_count * RPC_RX_BUF_SIZE);
  if (e->arena) munmap(e->arena, e->arena_cap);
  free(e->conns);
  free(e->conn_free);
  free(e);
}

fd_ring_t *rpc_engine_ring(rpc_engine_t *e) { return &e->ring; }

bool rpc_engine_pool_registered(const rpc_engine_t *e) { return e->pool_registered; }

int rpc_engine_run_once(rpc_engine_t *e, uint32_t timeout_ms) {
  FD_ASSERT(pthread_equal(e->owner, pthread_self()));
  if (e->rearm_pending) { /* recvs stopped for want of provided buffers */
    e->rearm_pending = 0;
    for (rpc_conn_t *c = e->live; c; c = c->live_next)
      if (c->rearm_wanted && !c->recv_armed && !c->direct_armed) rpc_conn_arm_recv(c);
  }
  rpc_conn_flush_dirty(e);
  int rc = fd_ring_run_once(&e->ring, timeout_ms ? 1 : 0, (uint64_t)timeout_ms * 1000000ull);
  rpc_conn_finalize_ready(e);
  rpc_conn_flush_dirty(e);
  fd_ring_submit(&e->ring);
  if (rc == -ETIME || rc == -EINTR) return 0;
  return rc;
}

int rpc_engine_run(rpc_engine_t *e) {
  while (!atomic_load_explicit(&e->stop, memory_order_relaxed)) {
    int rc = rpc_engine_run_once(e, 1000);
    if (rc < 0) return rc;
  }
  atomic_store(&e->stop, false);
  return 0;
}

void rpc_engine_stop(rpc_engine_t *e) { atomic_store(&e->stop, true); }

void rpc_engine_get_stats(const rpc_engine_t *e, rpc_stats_t *out) { *out = e->stats; }

static void on_msg_arrived(fd_op_t *op, int res, uint32_t flags) {
  (void)res;
  (void)flags;
  rpc_msg_t *m = (rpc_msg_t *)op;
  m->target->ring.inflight++; /* undo the loop's decrement: see the bias */
  m->fn(m->target, m);
}

static void on_msg_sent(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  if (res >= 0) return;
  rpc_msg_t *m = RPC_CONTAINER_OF(op, rpc_msg_t, sent);
  fd_log_warn("rpc: message to another engine not delivered: %s", fd_strerror(res));
  m->fn(NULL, m);
}

int rpc_engine_post(rpc_engine_t *from, rpc_engine_t *to, rpc_msg_t *msg) {
  FD_ASSERT(pthread_equal(from->owner, pthread_self()));
  msg->op.complete = on_msg_arrived;
  msg->sent.complete = on_msg_sent;
  msg->target = to;
  struct io_uring_sqe *sqe = fd_ring_sqe(&from->ring, &msg->sent);
  if (!sqe) return -EBUSY;
  io_uring_prep_msg_ring(sqe, to->ring.ring.ring_fd, 0, (uint64_t)(uintptr_t)&msg->op, 0);
  return 0;
}
