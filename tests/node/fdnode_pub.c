/* fdnode_pub.c — a minimal publisher for fdnode's tests (until fdadmin publish): asks the origin head for the newest version, builds and signs N+1, sends only the chunks the head lacks, prints the acknowledged version and origins. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_config.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "rpc.h"
#include "storage.h"

typedef struct pub {
  rpc_engine_t *e;
  fd_pool_t *pool;
  rpc_conn_t *conn;
  bool ready, closed;
  /* current call */
  rpc_call_t *call;
  bool done;
  rpc_code_t code;
  char msg[256];
  uint64_t newest;
  uint8_t *menc;
  size_t menc_len;
  uint32_t *missing;
  size_t n_missing, next;
  bool hdr_sent, close_sent, publishing;
  int fd;
  st_manifest_t *m;
  uint64_t version;
  char origins[512];
  uint64_t bytes_sent;
} pub_t;

static void c_ready(rpc_conn_t *c, void *a) { (void)c; ((pub_t *)a)->ready = true; }
static void c_closed(rpc_conn_t *c, int err, void *a) {
  (void)c;
  (void)err;
  ((pub_t *)a)->closed = true;
}

static void on_msg(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  pub_t *p = arg;
  if (m->descriptor == &node__get_manifest_reply__descriptor) {
    const Node__GetManifestReply *r = (const void *)m;
    st_manifest_t *old;
    if (st_manifest_decode(r->manifest.data, r->manifest.len, &old) == 0) {
      p->newest = old->version;
      st_manifest_free(old);
    }
  } else if (m->descriptor == &origin__missing_reply__descriptor) {
    const Origin__MissingReply *r = (const void *)m;
    p->missing = malloc((r->n_chunks + 1) * sizeof(uint32_t));
    memcpy(p->missing, r->chunks, r->n_chunks * sizeof(uint32_t));
    p->n_missing = r->n_chunks;
  } else if (m->descriptor == &origin__publish_reply__descriptor) {
    const Origin__PublishReply *r = (const void *)m;
    p->version = r->version;
    p->origins[0] = 0;
    for (size_t i = 0; i < r->n_origins; i++) {
      strncat(p->origins, r->origins[i], sizeof(p->origins) - strlen(p->origins) - 2);
      if (i + 1 < r->n_origins) strcat(p->origins, ",");
    }
  }
}

static void on_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  pub_t *p = arg;
  p->done = true;
  p->code = code;
  snprintf(p->msg, sizeof(p->msg), "%s", msg ? msg : "");
  p->call = NULL;
}

static void buf_back(void *buf, void *arg) { fd_pool_put(((pub_t *)arg)->pool, buf); }

static void pump(pub_t *p) {
  if (!p->publishing) return;
  while (p->call && p->next < p->n_missing) {
    uint32_t idx = p->missing[p->next];
    uint32_t len = st_manifest_chunk_len(p->m, idx);
    if (!p->hdr_sent) {
      Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
      h.index = idx;
      h.length = len;
      h.crc32c = p->m->chunk_crc32c[idx];
      Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
      part.part_case = ORIGIN__PUBLISH_PART__PART_CHUNK;
      part.chunk = &h;
      int rc = rpc_call_send(p->call, &part.base);
      if (rc == -EAGAIN) return;
      if (rc) { fprintf(stderr, "send: %s\n", fd_strerror(rc)); return; }
      p->hdr_sent = true;
    }
    uint8_t *buf = fd_pool_get(p->pool);
    if (!buf) return;
    if (pread(p->fd, buf, len, (off_t)idx * p->m->chunk_size_bytes) != (ssize_t)len) {
      fprintf(stderr, "read source failed\n");
      exit(1);
    }
    int rc = rpc_call_send_data(p->call, buf, len, buf_back, p);
    if (rc == -EAGAIN) {
      fd_pool_put(p->pool, buf);
      return;
    }
    if (rc) { fd_pool_put(p->pool, buf); fprintf(stderr, "send data: %s\n", fd_strerror(rc)); return; }
    p->bytes_sent += len;
    p->next++;
    p->hdr_sent = false;
  }
  if (p->call && !p->close_sent && p->next >= p->n_missing) {
    int crc = rpc_call_close_send(p->call);
    if (crc != -EAGAIN) p->close_sent = true;
  }
}

static void on_writable(rpc_call_t *call, void *arg) {
  (void)call;
  pump(arg);
}

static bool run_until(pub_t *p, const bool *flag, uint32_t ms) {
  uint64_t until = fd_now_ms() + ms;
  while (!*flag && !p->closed && fd_now_ms() < until) {
    rpc_engine_run_once(p->e, 10);
    if (p->call) pump(p);
  }
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

int main(int argc, char **argv) {
  fd_log_init("fdnode_pub", FD_LOG_WARN);
  const char *head = NULL, *ckey = NULL, *akey = NULL, *name = NULL, *file = NULL;
  uint64_t chunk = FD_CHUNK_SIZE_DEFAULT;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--head") && i + 1 < argc) head = argv[++i];
    else if (!strcmp(argv[i], "--cluster-key") && i + 1 < argc) ckey = argv[++i];
    else if (!strcmp(argv[i], "--admin-key") && i + 1 < argc) akey = argv[++i];
    else if (!strcmp(argv[i], "--name") && i + 1 < argc) name = argv[++i];
    else if (!strcmp(argv[i], "--chunk-size") && i + 1 < argc) fd_parse_bytes(argv[++i], &chunk);
    else if (argv[i][0] != '-') file = argv[i];
    else {
      fprintf(stderr, "usage: fdnode_pub --head ADDR:PORT --cluster-key F --admin-key PEM --name N [--chunk-size B] FILE\n");
      return 2;
    }
  }
  if (!head || !ckey || !akey || !name || !file) return 2;
  uint8_t key[32];
  fd_ed25519_key_t admin;
  if (load_key(ckey, key) || fd_ed25519_load(akey, &admin)) {
    fprintf(stderr, "cannot load keys\n");
    return 3;
  }
  char addr[64];
  const char *colon = strrchr(head, ':');
  snprintf(addr, sizeof(addr), "%.*s", (int)(colon - head), head);
  uint16_t port = (uint16_t)atoi(colon + 1);
  static pub_t p;
  p.pool = fd_pool_create(8, chunk);
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = key;
  o.cluster_key_len = 32;
  o.admin_key = &admin;
  o.bulk_pool = p.pool;
  o.payload_max = (uint32_t)FD_MAX(chunk, FD_FRAME_PAYLOAD_MAX_DEFAULT);
  p.e = rpc_engine_create(&o);
  static const rpc_conn_cbs_t ccbs = {c_ready, c_closed};
  p.conn = rpc_connect(p.e, addr, port, &ccbs, &p);
  if (!p.conn || !run_until(&p, &p.ready, 5000)) {
    fprintf(stderr, "cannot reach the head\n");
    return 3;
  }
  rpc_call_cbs_t cbs = {on_msg, NULL, on_writable, on_done};
  Node__GetManifestRequest gm = NODE__GET_MANIFEST_REQUEST__INIT;
  gm.name = (char *)name;
  p.done = false;
  p.call = rpc_start_node_get_manifest(p.conn, &gm, 10000, &cbs, &p);
  run_until(&p, &p.done, 10000);
  uint64_t version = p.newest + 1;
  if (st_manifest_build(file, name, version, p.newest, (uint32_t)chunk, &p.m) ||
      st_manifest_sign(p.m, &admin) || st_manifest_encode(p.m, &p.menc, &p.menc_len)) {
    fprintf(stderr, "cannot build the manifest\n");
    return 1;
  }
  Origin__MissingRequest mr = ORIGIN__MISSING_REQUEST__INIT;
  mr.manifest.data = p.menc;
  mr.manifest.len = p.menc_len;
  p.done = false;
  p.call = rpc_call_start(p.conn, RPC_SVC_ORIGIN, &origin__origin__descriptor, 3, RPC_UNARY,
                          &mr.base, 60000, &cbs, &p);
  if (!run_until(&p, &p.done, 60000) || p.code != RPC_OK) {
    fprintf(stderr, "Missing: %s %s\n", rpc_code_name(p.code), p.msg);
    return 1;
  }
  p.fd = open(file, O_RDONLY);
  p.done = false;
  p.call = rpc_start_origin_publish(p.conn, NULL, 600000, &cbs, &p);
  Origin__PublishBegin b = ORIGIN__PUBLISH_BEGIN__INIT;
  b.name = (char *)name;
  b.manifest.data = p.menc;
  b.manifest.len = p.menc_len;
  Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
  part.part_case = ORIGIN__PUBLISH_PART__PART_BEGIN;
  part.begin = &b;
  if (!p.call || rpc_call_send(p.call, &part.base)) {
    fprintf(stderr, "cannot start Publish\n");
    return 1;
  }
  p.publishing = true;
  pump(&p);
  if (!run_until(&p, &p.done, 600000) || p.code != RPC_OK) {
    fprintf(stderr, "Publish: %s %s\n", rpc_code_name(p.code), p.msg);
    return 1;
  }
  printf("published %s v%" PRIu64 " sent %" PRIu64 " bytes (%zu of %u chunks) origins %s\n", name,
         p.version, p.bytes_sent, p.n_missing, p.m->chunk_count, p.origins);
  rpc_engine_destroy(p.e);
  fd_pool_destroy(p.pool);
  return 0;
}
