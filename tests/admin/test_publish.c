/* fdadmin publish against an in-process scheduler + origin head: signed manifest for newest+1, only the chunks the head lacks, one retry on a lost race, exit codes. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin.h"
#include "fd_log.h"
#include "fd_time.h"
#include "storage.h"

#define CHUNK (64u * 1024u)
#define CHUNKS 20u
#define FILE_LEN (CHUNKS * CHUNK - 1000u) /* a short last chunk */

/* ---- the fake cluster: one engine serving Scheduler.ListVersions,
 * Node.GetManifest and Origin.Publish (and Origin.Missing when the protocol
 * has it), on its own thread ---- */

typedef struct fake {
  pthread_t thread;
  rpc_engine_t *e;
  fd_pool_t *pool;
  uint8_t cluster_key[32];
  fd_ed25519_key_t admin;
  _Atomic uint16_t port;
  /* state, touched on the server thread only until the client's reply */
  uint64_t newest;
  uint8_t *newest_manifest; /* encoded */
  size_t newest_len;
  int races;                /* publishes still to lose to a "concurrent" one */
  bool fail_all;            /* answer every publish UNAVAILABLE (a dead chain) */
  uint32_t publishes, chunks_received, bad_chunks, missing_calls;
  uint64_t bytes_received;
  bool have[CHUNKS];
} fake_t;

typedef struct pub_call {
  fake_t *f;
  st_manifest_t *m;
  uint8_t *enc;
  size_t enc_len;
  int64_t cur; /* chunk whose DATA is expected, -1 none */
  uint32_t cur_len, cur_crc;
  bool got[CHUNKS];
} pub_call_t;

static void pc_free(pub_call_t *pc) {
  st_manifest_free(pc->m);
  free(pc->enc);
  free(pc);
}

static void pub_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  pub_call_t *pc = arg;
  fake_t *f = pc->f;
  if (pc->cur < 0 || len != pc->cur_len || fd_crc32c(0, buf, len) != pc->cur_crc ||
      pc->cur_crc != pc->m->chunk_crc32c[pc->cur]) {
    f->bad_chunks++;
  } else {
    uint8_t sha[FD_SHA256_LEN];
    fd_sha256(buf, len, sha);
    if (memcmp(sha, pc->m->chunk_sha256 + (size_t)pc->cur * FD_SHA256_LEN, FD_SHA256_LEN))
      f->bad_chunks++;
    else pc->got[pc->cur] = true;
  }
  f->chunks_received++;
  f->bytes_received += len;
  pc->cur = -1;
  fd_pool_put(f->pool, buf);
  rpc_call_data_done(call, len);
}

static void pub_closed(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  pc_free(arg);
}

/* Chunks of m whose SHA-256 the head does not hold (its newest version). */
static bool head_has(const fake_t *f, const st_manifest_t *m, uint32_t i) {
  if (!f->newest_manifest) return false;
  st_manifest_t *prev = NULL;
  if (st_manifest_decode(f->newest_manifest, f->newest_len, &prev) < 0) return false;
  bool found = false;
  for (uint32_t k = 0; k < prev->chunk_count && !found; k++)
    found = !memcmp(prev->chunk_sha256 + (size_t)k * FD_SHA256_LEN,
                    m->chunk_sha256 + (size_t)i * FD_SHA256_LEN, FD_SHA256_LEN);
  st_manifest_free(prev);
  return found;
}

static int h_publish(rpc_call_t *call, const Origin__PublishPart *part, void *ctx) {
  fake_t *f = ctx;
  pub_call_t *pc = rpc_call_arg(call);
  if (!pc) {
    if (!part || part->part_case != ORIGIN__PUBLISH_PART__PART_BEGIN) return -EINVAL;
    if (!rpc_call_is_admin(call)) return -EPERM;
    f->publishes++;
    pc = calloc(1, sizeof(*pc));
    pc->f = f;
    pc->cur = -1;
    rpc_call_cbs_t cbs = {NULL, pub_data, NULL, pub_closed};
    rpc_call_set_cbs(call, &cbs, pc);
    if (f->fail_all) return rpc_call_finish(call, RPC_UNAVAILABLE, "chain broken");
    if (st_manifest_decode(part->begin->manifest.data, part->begin->manifest.len, &pc->m) < 0)
      return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "bad manifest");
    if (st_manifest_verify(pc->m, f->admin.pub, NULL) < 0)
      return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "bad signature");
    if (f->races > 0) { /* someone else published newest+1 just now */
      f->races--;
      f->newest++;
      return rpc_call_finish(call, RPC_FAILED_PRECONDITION, "version taken");
    }
    if (pc->m->version != f->newest + 1 || pc->m->base_version != f->newest)
      return rpc_call_finish(call, RPC_FAILED_PRECONDITION, "not newest + 1");
    pc->enc = malloc(part->begin->manifest.len);
    memcpy(pc->enc, part->begin->manifest.data, part->begin->manifest.len);
    pc->enc_len = part->begin->manifest.len;
    return 0;
  }
  if (!pc->m || !pc->enc) return 0; /* already finished */
  if (part) {
    if (part->part_case != ORIGIN__PUBLISH_PART__PART_CHUNK) return -EINVAL;
    if (part->chunk->index >= pc->m->chunk_count) return -ERANGE;
    pc->cur = (int64_t)part->chunk->index;
    pc->cur_len = part->chunk->length;
    pc->cur_crc = part->chunk->crc32c;
    return 0;
  }
  /* End of the client's stream: complete only if every chunk is here or held. */
  for (uint32_t i = 0; i < pc->m->chunk_count; i++) {
    if (pc->got[i] || head_has(f, pc->m, i)) continue;
    return rpc_call_finish(call, RPC_DATA_LOSS, "chunks missing");
  }
  memcpy(f->have, pc->got, sizeof(f->have));
  free(f->newest_manifest);
  f->newest_manifest = pc->enc;
  f->newest_len = pc->enc_len;
  pc->enc = NULL;
  f->newest = pc->m->version;
  Origin__PublishReply r = ORIGIN__PUBLISH_REPLY__INIT;
  static char o1[] = "o1", o2[] = "o2", o3[] = "o3";
  char *origins[] = {o1, o2, o3};
  r.version = f->newest;
  r.n_origins = 3;
  r.origins = origins;
  int rc = rpc_call_send(call, &r.base);
  if (rc < 0) return rc;
  return rpc_call_finish(call, RPC_OK, NULL);
}

static int h_list_versions(rpc_call_t *call, const Sched__ListVersionsRequest *req, void *ctx) {
  fake_t *f = ctx;
  Sched__ListVersionsReply r = SCHED__LIST_VERSIONS_REPLY__INIT;
  Sched__VersionEntry e = SCHED__VERSION_ENTRY__INIT, other = SCHED__VERSION_ENTRY__INIT;
  Sched__VersionEntry *list[2] = {&other, &e};
  other.name = (char *)"other.img"; /* another file's versions never count */
  other.version = 99;
  e.name = (char *)"f.img";
  e.version = f->newest;
  r.versions = list;
  r.n_versions = f->newest ? 2 : 1;
  (void)req;
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static int h_get_manifest(rpc_call_t *call, const Node__GetManifestRequest *req, void *ctx) {
  fake_t *f = ctx;
  if (!f->newest_manifest || req->version != f->newest)
    return rpc_call_finish(call, RPC_NOT_FOUND, "no such version");
  Node__GetManifestReply r = NODE__GET_MANIFEST_REPLY__INIT;
  r.manifest.data = f->newest_manifest;
  r.manifest.len = f->newest_len;
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

#ifdef ORIGIN__MISSING_REQUEST__INIT
static int h_missing(rpc_call_t *call, const Origin__MissingRequest *req, void *ctx) {
  fake_t *f = ctx;
  f->missing_calls++;
  st_manifest_t *m = NULL;
  if (st_manifest_decode(req->manifest.data, req->manifest.len, &m) < 0)
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "bad manifest");
  if (f->races > 0) {
    f->races--;
    f->newest++;
    st_manifest_free(m);
    return rpc_call_finish(call, RPC_FAILED_PRECONDITION, "version taken");
  }
  uint32_t chunks[CHUNKS];
  size_t n = 0;
  for (uint32_t i = 0; i < m->chunk_count && n < CHUNKS; i++)
    if (!head_has(f, m, i)) chunks[n++] = i;
  Origin__MissingReply r = ORIGIN__MISSING_REPLY__INIT;
  r.version = m->version;
  r.chunks = chunks;
  r.n_chunks = n;
  st_manifest_free(m);
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}
static int missing_thunk(rpc_call_t *call, const ProtobufCMessage *m, void *ctx) {
  return h_missing(call, (const Origin__MissingRequest *)m, ctx);
}
static uint32_t missing_index(void) {
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(&origin__origin__descriptor, "Missing");
  assert_non_null(md);
  return (uint32_t)(md - origin__origin__descriptor.methods);
}
#endif

static void *fake_main(void *arg) {
  fake_t *f = arg;
  f->pool = fd_pool_create(8, CHUNK);
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = f->cluster_key;
  o.cluster_key_len = 32;
  o.admin_pub = f->admin.pub;
  o.bulk_pool = f->pool;
  f->e = rpc_engine_create(&o);
  assert_non_null(f->e);
  assert_int_equal(rpc_serve_origin_publish(f->e, h_publish, f), 0);
  assert_int_equal(rpc_serve_sched_list_versions(f->e, h_list_versions, f), 0);
  assert_int_equal(rpc_serve_node_get_manifest(f->e, h_get_manifest, f), 0);
#ifdef ORIGIN__MISSING_REQUEST__INIT
  rpc_method_reg_t reg = {RPC_SVC_ORIGIN, &origin__origin__descriptor, missing_index(), RPC_UNARY,
                          false, missing_thunk, (rpc_typed_fn)h_missing, f};
  assert_int_equal(rpc_serve(f->e, &reg), 0);
#endif
  uint16_t port = 0;
  assert_int_equal(rpc_listen(f->e, "127.0.0.1", 0, &port), 0);
  atomic_store(&f->port, port);
  rpc_engine_run(f->e);
  rpc_engine_destroy(f->e);
  fd_pool_destroy(f->pool);
  return NULL;
}

/* ---- fixture: keys and files in a temp dir, the fake running ---- */

typedef struct fx {
  char dir[64], file[96], admin_pem[96], admin_pub[96], cluster[96], wrong[96];
  fake_t f;
  adm_config_t cfg;
} fx_t;

static void write_file(const char *path, uint32_t seed) {
  uint8_t *buf = malloc(FILE_LEN);
  for (uint32_t i = 0; i < FILE_LEN; i++) buf[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(buf, 1, FILE_LEN, fp), FILE_LEN);
  fclose(fp);
  free(buf);
}

static void change_chunk(const char *path, uint32_t index) {
  FILE *fp = fopen(path, "r+b");
  assert_non_null(fp);
  fseek(fp, (long)index * CHUNK + 17, SEEK_SET);
  fputs("changed bytes", fp);
  fclose(fp);
}

static int setup(void **state) {
  fx_t *x = calloc(1, sizeof(*x));
  snprintf(x->dir, sizeof(x->dir), "/tmp/fdadmin-test.XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  snprintf(x->file, sizeof(x->file), "%s/f", x->dir);
  snprintf(x->admin_pem, sizeof(x->admin_pem), "%s/admin.pem", x->dir);
  snprintf(x->admin_pub, sizeof(x->admin_pub), "%s/admin.pub", x->dir);
  snprintf(x->cluster, sizeof(x->cluster), "%s/cluster.key", x->dir);
  snprintf(x->wrong, sizeof(x->wrong), "%s/wrong.key", x->dir);
  assert_int_equal(fd_ed25519_generate(&x->f.admin), 0);
  assert_int_equal(fd_ed25519_save(&x->f.admin, x->admin_pem, x->admin_pub), 0);
  assert_int_equal(adm_cluster_key_generate(x->cluster), 0);
  assert_int_equal(adm_cluster_key_generate(x->wrong), 0);
  assert_int_equal(adm_cluster_key_load(x->cluster, x->f.cluster_key), 0);
  write_file(x->file, 1);
  assert_int_equal(pthread_create(&x->f.thread, NULL, fake_main, &x->f), 0);
  uint64_t until = fd_now_ms() + 5000;
  while (!atomic_load(&x->f.port) && fd_now_ms() < until) usleep(1000);
  assert_true(atomic_load(&x->f.port) != 0);
  adm_config_defaults(&x->cfg);
  snprintf(x->cfg.scheduler, sizeof(x->cfg.scheduler), "127.0.0.1:%u", x->f.port);
  snprintf(x->cfg.origins, sizeof(x->cfg.origins), "127.0.0.1:%u,127.0.0.1:1", x->f.port);
  snprintf(x->cfg.cluster_key_path, sizeof(x->cfg.cluster_key_path), "%s", x->cluster);
  snprintf(x->cfg.admin_key_path, sizeof(x->cfg.admin_key_path), "%s", x->admin_pem);
  x->cfg.progress = false;
  *state = x;
  return 0;
}

static int teardown(void **state) {
  fx_t *x = *state;
  rpc_engine_stop(x->f.e);
  pthread_join(x->f.thread, NULL);
  free(x->f.newest_manifest);
  char cmd[160];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", x->dir);
  assert_int_equal(system(cmd), 0);
  free(x);
  return 0;
}

static int publish(fx_t *x, bool extra) {
  static char a0[] = "publish", a2[] = "--name", a3[] = "f.img", a4[] = "--chunk-size", a5[] = "64K";
  static char full[] = "--full";
  char *argv[8] = {a0, x->file, a2, a3, a4, a5, NULL, NULL};
  int argc = 6;
  if (extra) argv[argc++] = full;
  adm_config_t cfg = x->cfg;
  return adm_cmd_publish(&cfg, argc, argv);
}

static void test_first_then_delta(void **state) {
  fx_t *x = *state;
  assert_int_equal(publish(x, false), ADM_EXIT_OK);
  assert_int_equal(x->f.newest, 1);
  assert_int_equal(x->f.chunks_received, CHUNKS);
  assert_int_equal(x->f.bytes_received, FILE_LEN);
  assert_int_equal(x->f.bad_chunks, 0);

  /* Two chunks change: only they cross the network for v2. */
  change_chunk(x->file, 3);
  change_chunk(x->file, CHUNKS - 1);
  assert_int_equal(publish(x, false), ADM_EXIT_OK);
  assert_int_equal(x->f.newest, 2);
  assert_int_equal(x->f.chunks_received, CHUNKS + 2);
  assert_true(x->f.have[3] && x->f.have[CHUNKS - 1] && !x->f.have[0]);
  assert_int_equal(x->f.bad_chunks, 0);

  /* --full sends every chunk again. */
  change_chunk(x->file, 0);
  assert_int_equal(publish(x, true), ADM_EXIT_OK);
  assert_int_equal(x->f.newest, 3);
  assert_int_equal(x->f.chunks_received, 2 * CHUNKS + 2);
  assert_int_equal(x->f.bad_chunks, 0);
}

static void test_lost_race_retries_once(void **state) {
  fx_t *x = *state;
  x->f.races = 1; /* the first attempt loses: published as newest+2 on retry */
  assert_int_equal(publish(x, false), ADM_EXIT_OK);
  assert_int_equal(x->f.newest, 2);
  x->f.races = 2; /* losing twice is a failure, not an endless loop */
  assert_int_equal(publish(x, false), ADM_EXIT_FAILED);
  assert_int_equal(x->f.newest, 4);
}

static void test_failures(void **state) {
  fx_t *x = *state;
  x->f.fail_all = true; /* the head answers UNAVAILABLE: cannot reach the service */
  assert_int_equal(publish(x, false), ADM_EXIT_UNREACHABLE);
  assert_int_equal(x->f.newest, 0);
  x->f.fail_all = false;

  adm_config_t saved = x->cfg;
  /* Another cluster's key: refused at the handshake. */
  snprintf(x->cfg.cluster_key_path, sizeof(x->cfg.cluster_key_path), "%s", x->wrong);
  assert_int_equal(publish(x, false), ADM_EXIT_UNREACHABLE);
  x->cfg = saved;
  /* An admin key the cluster does not trust: the admin role is refused. */
  fd_ed25519_key_t rogue;
  char rogue_pem[128], rogue_pub[128];
  snprintf(rogue_pem, sizeof(rogue_pem), "%s/rogue.pem", x->dir);
  snprintf(rogue_pub, sizeof(rogue_pub), "%s/rogue.pub", x->dir);
  assert_int_equal(fd_ed25519_generate(&rogue), 0);
  assert_int_equal(fd_ed25519_save(&rogue, rogue_pem, rogue_pub), 0);
  snprintf(x->cfg.admin_key_path, sizeof(x->cfg.admin_key_path), "%s", rogue_pem);
  assert_int_equal(publish(x, false), ADM_EXIT_UNREACHABLE);
  x->cfg = saved;
  assert_int_equal(x->f.newest, 0);
  /* Usage errors never touch the network. */
  uint32_t before = x->f.publishes;
  static char b0[] = "publish", b2[] = "--name", b3[] = "../x";
  char *bad_name[] = {b0, x->file, b2, b3, NULL};
  assert_int_equal(adm_cmd_publish(&x->cfg, 4, bad_name), ADM_EXIT_USAGE);
  assert_int_equal(x->f.publishes, before);
  /* And afterwards a good publish works. */
  assert_int_equal(publish(x, false), ADM_EXIT_OK);
  assert_int_equal(x->f.newest, 1);
}

int main(void) {
  fd_log_init("test_admin_publish", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_first_then_delta, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_race_retries_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
