/* fdsched_util.h — shared by the fdsched daemon tests: start the real
 * fdsched binary (fork/exec) on a loopback ephemeral port with its own temp
 * dir, keys and config; an rpc client engine on the test's thread; blocking
 * helpers around the typed stubs; and cleanup of every process and file. */
#ifndef FDSCHED_TEST_UTIL_H
#define FDSCHED_TEST_UTIL_H

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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_hash.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc.h"
#include "storage.h"

#ifndef FDSCHED_PATH
#error "FDSCHED_PATH must name the fdsched binary"
#endif

/* One daemon under test and everything it owns on disk. */
typedef struct fdt_sched {
  char dir[256];          /* temp dir: key, admin keys, data/, port, log */
  char key_path[300], admin_priv[300], admin_pub[300], data[300], port_file[300], log[300];
  uint8_t key[32];
  fd_ed25519_key_t admin; /* the admin key pair the daemon trusts */
  pid_t pid;
  uint16_t port;
  const char *extra[8];   /* more -s overrides */
} fdt_sched_t;

static inline void fdt_rm_rf(const char *dir) {
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

/* Makes the temp dir, the cluster key and the admin key pair. */
static inline void fdt_setup(fdt_sched_t *s) {
  memset(s->dir, 0, sizeof(s->dir));
  snprintf(s->dir, sizeof(s->dir), "/tmp/fdsched-test-XXXXXX");
  assert_non_null(mkdtemp(s->dir));
  snprintf(s->key_path, sizeof(s->key_path), "%s/cluster.key", s->dir);
  snprintf(s->admin_priv, sizeof(s->admin_priv), "%s/admin.pem", s->dir);
  snprintf(s->admin_pub, sizeof(s->admin_pub), "%s/admin.pub", s->dir);
  snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
  snprintf(s->port_file, sizeof(s->port_file), "%s/port", s->dir);
  snprintf(s->log, sizeof(s->log), "%s/fdsched.log", s->dir);
  assert_int_equal(fd_random_bytes(s->key, sizeof(s->key)), 0);
  char hex[65];
  fd_hex_encode(s->key, sizeof(s->key), hex);
  FILE *f = fopen(s->key_path, "w");
  assert_non_null(f);
  fprintf(f, "%s\n", hex);
  fclose(f);
  assert_int_equal(fd_ed25519_generate(&s->admin), 0);
  assert_int_equal(fd_ed25519_save(&s->admin, s->admin_priv, s->admin_pub), 0);
  s->pid = 0;
}

/* Starts the daemon and waits (bounded) for its port file. */
static inline void fdt_start(fdt_sched_t *s) {
  unlink(s->port_file);
  char a[8][400];
  snprintf(a[0], sizeof(a[0]), "scheduler.cluster_key=%s", s->key_path);
  snprintf(a[1], sizeof(a[1]), "scheduler.admin_public_key=%s", s->admin_pub);
  snprintf(a[2], sizeof(a[2]), "scheduler.data_dir=%s", s->data);
  snprintf(a[3], sizeof(a[3]), "scheduler.port_file=%s", s->port_file);
  snprintf(a[4], sizeof(a[4]), "scheduler.listen=127.0.0.1:%u", s->port);
  const char *argv[64];
  int n = 0;
  argv[n++] = FDSCHED_PATH;
  for (int i = 0; i < 5; i++) {
    argv[n++] = "-s";
    argv[n++] = a[i];
  }
  for (int i = 0; i < 8 && s->extra[i]; i++) {
    argv[n++] = "-s";
    argv[n++] = s->extra[i];
  }
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test, even if it crashes */
    int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1); /* nothing of the daemon holds the test runner's pipes */
      dup2(fd, 2);
    }
    execv(FDSCHED_PATH, (char *const *)argv);
    _exit(127);
  }
  s->pid = pid;
  uint64_t until = fd_now_ms() + 10000;
  while (fd_now_ms() < until) {
    FILE *f = fopen(s->port_file, "r");
    unsigned port = 0;
    if (f) {
      int got = fscanf(f, "%u", &port);
      fclose(f);
      if (got == 1 && port) {
        s->port = (uint16_t)port;
        return;
      }
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      s->pid = 0;
      fail_msg("fdsched exited at start (see %s)", s->log);
    }
    usleep(5000);
  }
  fail_msg("fdsched did not listen within 10 s");
}

/* Sends sig and reaps the daemon (bounded); returns its wait status. */
static inline int fdt_stop(fdt_sched_t *s, int sig) {
  if (s->pid <= 0) return -1;
  kill(s->pid, sig);
  int st = -1;
  uint64_t until = fd_now_ms() + 10000;
  while (fd_now_ms() < until) {
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
      s->pid = 0;
      return st;
    }
    usleep(2000);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &st, 0);
  s->pid = 0;
  fail_msg("fdsched did not exit within 10 s of signal %d", sig);
  return st;
}

/* Kills whatever is left and removes the temp dir. */
static inline void fdt_teardown(fdt_sched_t *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
  if (getenv("FDT_KEEP")) fprintf(stderr, "kept %s\n", s->dir);
  else fdt_rm_rf(s->dir);
}

/* ---- the client side ---- */

static inline rpc_engine_t *fdt_engine(const uint8_t *key, size_t key_len,
                                       const fd_ed25519_key_t *admin) {
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = key;
  o.cluster_key_len = key_len;
  o.admin_key = admin;
  o.conns_max = 64;
  rpc_engine_t *e = rpc_engine_create(&o);
  assert_non_null(e);
  return e;
}

static inline bool fdt_pump(rpc_engine_t *e, const volatile bool *flag, uint32_t timeout_ms) {
  uint64_t until = fd_now_ms() + timeout_ms;
  while (!*flag && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  return *flag;
}

typedef struct fdt_conn {
  rpc_conn_t *c;
  bool ready, closed;
  int err;
} fdt_conn_t;

static inline void fdt_ready(rpc_conn_t *c, void *arg) {
  (void)c;
  ((fdt_conn_t *)arg)->ready = true;
}
static inline void fdt_closed(rpc_conn_t *c, int err, void *arg) {
  (void)c;
  fdt_conn_t *t = arg;
  t->closed = true;
  t->err = err;
  t->c = NULL;
}
__attribute__((unused)) static const rpc_conn_cbs_t fdt_conn_cbs = {fdt_ready, fdt_closed};

/* Connects; true once the handshake is done (false if refused). */
static inline bool fdt_connect(rpc_engine_t *e, uint16_t port, fdt_conn_t *t) {
  memset(t, 0, sizeof(*t));
  t->c = rpc_connect(e, "127.0.0.1", port, &fdt_conn_cbs, t);
  assert_non_null(t->c);
  uint64_t until = fd_now_ms() + 5000;
  while (!t->ready && !t->closed && fd_now_ms() < until) rpc_engine_run_once(e, 5);
  return t->ready;
}

/* A call whose replies are kept packed (the decoded ones die with the callback). */
#define FDT_REPLIES_MAX 64
typedef struct fdt_call {
  rpc_call_t *call;
  bool done;
  rpc_code_t code;
  char message[256];
  uint32_t msgs;
  uint8_t *reply[FDT_REPLIES_MAX];
  size_t reply_len[FDT_REPLIES_MAX];
  uint32_t first; /* replies before this were consumed */
} fdt_call_t;

static inline void fdt_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  fdt_call_t *t = arg;
  uint32_t i = t->msgs % FDT_REPLIES_MAX;
  free(t->reply[i]);
  t->reply_len[i] = protobuf_c_message_get_packed_size(m);
  t->reply[i] = malloc(t->reply_len[i] + 1);
  protobuf_c_message_pack(m, t->reply[i]);
  t->msgs++;
}
static inline void fdt_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  fdt_call_t *t = arg;
  t->done = true;
  t->code = code;
  snprintf(t->message, sizeof(t->message), "%s", msg ? msg : "");
  t->call = NULL;
}
__attribute__((unused)) static const rpc_call_cbs_t fdt_call_cbs = {fdt_msg, NULL, NULL, fdt_done};

static inline void fdt_call_reset(fdt_call_t *t) {
  for (int i = 0; i < FDT_REPLIES_MAX; i++) free(t->reply[i]);
  memset(t, 0, sizeof(*t));
}

/* Waits for a started unary call; returns its code. */
static inline rpc_code_t fdt_wait(rpc_engine_t *e, fdt_call_t *t) {
  if (!t->call && !t->done) return RPC_UNAVAILABLE;
  assert_true(fdt_pump(e, &t->done, 10000));
  return t->code;
}

/* The i-th reply, unpacked with desc (free with protobuf_c_message_free_unpacked). */
static inline void *fdt_reply(fdt_call_t *t, uint32_t i, const ProtobufCMessageDescriptor *desc) {
  assert_true(i < t->msgs);
  uint32_t k = i % FDT_REPLIES_MAX;
  void *m = protobuf_c_message_unpack(desc, NULL, t->reply_len[k], t->reply[k]);
  assert_non_null(m);
  return m;
}

/* A node as the tests describe it. */
static inline rpc_code_t fdt_register(rpc_engine_t *e, rpc_conn_t *c, const char *id,
                                      const char *region, const char *zone, uint16_t port,
                                      bool origin) {
  Sched__NodeInfo ni = SCHED__NODE_INFO__INIT;
  ni.node_id = (char *)id;
  ni.region = (char *)region;
  ni.zone = (char *)zone;
  ni.addr = (char *)"127.0.0.1";
  ni.port = port;
  ni.nic_bps = 10000000000ull;
  ni.capacity_bytes = 1ull << 40;
  ni.origin = origin;
  Sched__RegisterRequest req = SCHED__REGISTER_REQUEST__INIT;
  req.node = &ni;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_register(c, &req, 5000, &fdt_call_cbs, &t);
  rpc_code_t code = fdt_wait(e, &t);
  fdt_call_reset(&t);
  return code;
}

static inline rpc_code_t fdt_heartbeat(rpc_engine_t *e, rpc_conn_t *c, const char *id) {
  Sched__HeartbeatRequest req = SCHED__HEARTBEAT_REQUEST__INIT;
  req.node_id = (char *)id;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_heartbeat(c, &req, 5000, &fdt_call_cbs, &t);
  rpc_code_t code = fdt_wait(e, &t);
  fdt_call_reset(&t);
  return code;
}

/* A signed manifest of a small file (4 chunks of 64 KiB) whose bytes depend
 * on version and salt; *out is malloc'd. */
static inline void fdt_manifest(const fd_ed25519_key_t *key, const char *name, uint64_t version,
                                uint32_t salt, uint8_t **out, size_t *len) {
  const uint32_t chunk = FD_CHUNK_SIZE_MIN, chunks = 4;
  st_manifest_t *m = NULL;
  assert_int_equal(st_manifest_new(name, version, version - 1, (uint64_t)chunk * chunks, chunk, &m), 0);
  uint8_t *buf = malloc(chunk);
  for (uint32_t i = 0; i < chunks; i++) {
    memset(buf, (int)(version * 16 + i + salt * 64), chunk);
    assert_int_equal(st_manifest_set_chunk(m, i, buf, chunk), 0);
  }
  free(buf);
  assert_int_equal(st_manifest_sign(m, key), 0);
  assert_int_equal(st_manifest_encode(m, out, len), 0);
  st_manifest_free(m);
}

/* RegisterVersion with these manifest bytes; checks the reply's version. */
static inline rpc_code_t fdt_register_manifest(rpc_engine_t *e, rpc_conn_t *c, const uint8_t *man,
                                               size_t len, uint64_t version, const char *origin) {
  Sched__RegisterVersionRequest req = SCHED__REGISTER_VERSION_REQUEST__INIT;
  req.manifest.data = (uint8_t *)man;
  req.manifest.len = len;
  char *origins[1] = {(char *)origin};
  req.n_origins = 1;
  req.origins = origins;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_register_version(c, &req, 5000, &fdt_call_cbs, &t);
  rpc_code_t code = fdt_wait(e, &t);
  if (code == RPC_OK) {
    Sched__RegisterVersionReply *r = fdt_reply(&t, 0, &sched__register_version_reply__descriptor);
    assert_int_equal(r->version, version);
    protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  fdt_call_reset(&t);
  return code;
}

static inline rpc_code_t fdt_register_version(rpc_engine_t *e, rpc_conn_t *c,
                                              const fd_ed25519_key_t *key, const char *name,
                                              uint64_t version, const char *origin) {
  uint8_t *man;
  size_t len;
  fdt_manifest(key, name, version, 0, &man, &len);
  rpc_code_t code = fdt_register_manifest(e, c, man, len, version, origin);
  free(man);
  return code;
}

/* cmocka setup/teardown: *state is an fdt_sched_t whose daemon and temp dir
 * are cleaned up even when an assertion fails mid-test. */
static inline int fdt_group_setup(void **state) {
  fdt_sched_t *s = calloc(1, sizeof(*s));
  if (!s) return -1;
  *state = s;
  return 0;
}
static inline int fdt_group_teardown(void **state) {
  fdt_sched_t *s = *state;
  if (s && s->dir[0]) fdt_teardown(s);
  free(s);
  *state = NULL;
  return 0;
}

static inline void fdt_log_quiet(void) { fd_log_init("test_fdsched", FD_LOG_ERROR); }

#endif /* FDSCHED_TEST_UTIL_H */
