/* nd_pull.c — a child's view of one fdnode for the engines test and benchmark: over N fresh connections, GetManifest (signature checked) then RepairPull of every chunk, each chunk's SHA-256 checked against the signed manifest (--no-verify: counted only); prints the bytes received. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_config.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc.h"
#include "storage.h"

typedef struct pull {
  rpc_engine_t *e;
  fd_pool_t *pool;
  bool ready, closed, done;
  rpc_code_t code;
  st_manifest_t *m;
  bool has_hdr;
  uint32_t hdr_index, hdr_len;
  uint8_t *seen; /* chunk received and verified on this connection */
  uint32_t verified, bad;
  uint64_t bytes;
  bool no_verify; /* benchmarks: count the bytes, skip SHA-256 */
} pull_t;

static void c_ready(rpc_conn_t *c, void *a) { (void)c; ((pull_t *)a)->ready = true; }
static void c_closed(rpc_conn_t *c, int err, void *a) {
  (void)c;
  (void)err;
  ((pull_t *)a)->closed = true;
}

static void on_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  pull_t *p = arg;
  if (m->descriptor == &node__get_manifest_reply__descriptor) {
    const Node__GetManifestReply *r = (const void *)m;
    if (!p->m && st_manifest_decode(r->manifest.data, r->manifest.len, &p->m) != 0) p->m = NULL;
  } else if (m->descriptor == &node__chunk_header__descriptor) {
    const Node__ChunkHeader *h = (const void *)m;
    p->has_hdr = true;
    p->hdr_index = (uint32_t)h->index;
    p->hdr_len = h->length;
  }
}

static void on_data(rpc_call_t *call, void *buf, uint32_t len, void *arg) {
  pull_t *p = arg;
  uint8_t d[FD_SHA256_LEN];
  if (!p->m || !p->has_hdr || p->hdr_len != len || p->hdr_index >= p->m->chunk_count ||
      len != st_manifest_chunk_len(p->m, p->hdr_index)) {
    p->bad++;
  } else {
    if (!p->no_verify) fd_sha256(buf, len, d);
    if (!p->no_verify && memcmp(d, p->m->chunk_sha256 + (size_t)p->hdr_index * FD_SHA256_LEN, FD_SHA256_LEN)) {
      p->bad++;
    } else if (!p->seen[p->hdr_index]) {
      p->seen[p->hdr_index] = 1;
      p->verified++;
      p->bytes += len;
    }
  }
  p->has_hdr = false;
  fd_pool_put(p->pool, buf);
  rpc_call_data_done(call, len);
}

static void on_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  pull_t *p = arg;
  p->done = true;
  p->code = code;
  if (code != RPC_OK) fprintf(stderr, "nd_pull: call ended %s %s\n", rpc_code_name(code), msg ? msg : "");
}

static bool run_until(pull_t *p, const bool *flag, uint32_t ms) {
  uint64_t until = fd_now_ms() + ms;
  while (!*flag && !p->closed && fd_now_ms() < until) rpc_engine_run_once(p->e, 10);
  return *flag;
}

static int load_key(const char *path, uint8_t key[32]) {
  FILE *f = fopen(path, "r");
  if (!f) return -errno;
  char hex[80] = {0};
  size_t n = fread(hex, 1, 64, f);
  fclose(f);
  return n == 64 && fd_hex_decode(hex, key, 32) == 32 ? 0 : -EINVAL;
}

/* One connection: manifest, then every chunk. 0 or a message on stderr. */
static int pull_once(pull_t *p, const char *addr, uint16_t port, const char *name,
                     uint64_t version, const fd_ed25519_key_t *admin) {
  p->ready = p->closed = false;
  static const rpc_conn_cbs_t ccbs = {c_ready, c_closed};
  rpc_conn_t *conn = rpc_connect(p->e, addr, port, &ccbs, p);
  if (!conn || !run_until(p, &p->ready, 5000)) return fprintf(stderr, "nd_pull: connect\n"), -1;
  rpc_call_cbs_t cbs = {on_msg, on_data, NULL, on_done};
  Node__GetManifestRequest gm = NODE__GET_MANIFEST_REQUEST__INIT;
  gm.name = (char *)name;
  gm.version = version;
  p->done = false;
  if (!rpc_start_node_get_manifest(conn, &gm, 10000, &cbs, p) || !run_until(p, &p->done, 10000) ||
      p->code != RPC_OK || !p->m)
    return fprintf(stderr, "nd_pull: GetManifest failed\n"), -1;
  if (st_manifest_verify(p->m, admin->pub, NULL) != 0 || p->m->version != version)
    return fprintf(stderr, "nd_pull: manifest not signed by the admin key\n"), -1;
  uint64_t *chunks = calloc(p->m->chunk_count, sizeof(*chunks));
  p->seen = calloc(p->m->chunk_count, 1);
  for (uint32_t i = 0; i < p->m->chunk_count; i++) chunks[i] = i;
  Node__RepairPullRequest rq = NODE__REPAIR_PULL_REQUEST__INIT;
  rq.name = (char *)name;
  rq.version = version;
  rq.n_chunks = p->m->chunk_count;
  rq.chunks = chunks;
  p->done = false;
  p->verified = 0;
  bool ok = rpc_start_node_repair_pull(conn, &rq, 60000, &cbs, p) &&
            run_until(p, &p->done, 60000) && p->code == RPC_OK;
  free(chunks);
  free(p->seen);
  p->seen = NULL;
  uint32_t want = p->m->chunk_count;
  st_manifest_free(p->m);
  p->m = NULL;
  rpc_conn_close(conn);
  run_until(p, &p->closed, 2000);
  if (!ok || p->verified != want || p->bad)
    return fprintf(stderr, "nd_pull: %u of %u chunks verified, %u bad\n", p->verified, want, p->bad), -1;
  return 0;
}

int main(int argc, char **argv) {
  fd_log_init("nd_pull", FD_LOG_WARN);
  const char *node = NULL, *ckey = NULL, *apub = NULL, *name = NULL;
  uint64_t version = 0, chunk = FD_CHUNK_SIZE_DEFAULT;
  int conns = 1;
  bool no_verify = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--node") && i + 1 < argc) node = argv[++i];
    else if (!strcmp(argv[i], "--cluster-key") && i + 1 < argc) ckey = argv[++i];
    else if (!strcmp(argv[i], "--admin-pub") && i + 1 < argc) apub = argv[++i];
    else if (!strcmp(argv[i], "--name") && i + 1 < argc) name = argv[++i];
    else if (!strcmp(argv[i], "--version") && i + 1 < argc) version = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--conns") && i + 1 < argc) conns = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--chunk-size") && i + 1 < argc) fd_parse_bytes(argv[++i], &chunk);
    else if (!strcmp(argv[i], "--no-verify")) no_verify = true;
    else {
      fprintf(stderr, "usage: nd_pull --node ADDR:PORT --cluster-key F --admin-pub F --name N "
                      "--version V [--conns K] [--chunk-size B] [--no-verify]\n");
      return 2;
    }
  }
  if (!node || !ckey || !apub || !name || !version || conns < 1 || !strrchr(node, ':')) return 2;
  uint8_t key[32];
  fd_ed25519_key_t admin;
  if (load_key(ckey, key) || fd_ed25519_load(apub, &admin)) {
    fprintf(stderr, "nd_pull: cannot load keys\n");
    return 3;
  }
  char addr[64];
  const char *colon = strrchr(node, ':');
  snprintf(addr, sizeof(addr), "%.*s", (int)(colon - node), node);
  uint16_t port = (uint16_t)atoi(colon + 1);
  static pull_t p;
  p.no_verify = no_verify;
  p.pool = fd_pool_create(8, chunk);
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = key;
  o.cluster_key_len = 32;
  o.bulk_pool = p.pool;
  o.payload_max = (uint32_t)FD_MAX(chunk, 1024u * 1024u);
  o.stream_window_bytes = (uint32_t)chunk; /* one chunk in flight: the pool never runs dry */
  o.conn_window_bytes = (uint32_t)chunk;
  p.e = rpc_engine_create(&o);
  if (!p.pool || !p.e) return 3;
  uint64_t total = 0;
  int rc = 0;
  for (int i = 0; i < conns && !rc; i++) {
    rc = pull_once(&p, addr, port, name, version, &admin);
    total += p.bytes;
    p.bytes = 0;
  }
  rpc_engine_destroy(p.e);
  fd_pool_destroy(p.pool);
  if (rc) return 1;
  printf("nd_pull: %d connections, %" PRIu64 " bytes %s\n", conns, total,
         no_verify ? "received (not verified)" : "verified");
  return 0;
}
