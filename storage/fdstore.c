/*
 * fdstore — the chunk store from the command line: make keys, build and sign
 * manifests, ingest a version from a local file (verified, resumable,
 * delta-aware), scrub, list and collect versions.
 *
 * It drives the store exactly as fdnode does — one ring, one registered
 * pool, callbacks — with the source file standing in for the network: each
 * missing chunk is read O_DIRECT through the ring into a pool buffer and
 * handed to st_chunk_put. It is what the crash test kills and what
 * perf/storage measures.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_config.h"
#include "fd_error.h"
#include "fd_log.h"
#include "fd_time.h"
#include "storage.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: fdstore COMMAND ...\n"
          "  keygen PRIVATE.pem PUBLIC.pem\n"
          "      make an Ed25519 key pair for signing manifests\n"
          "  manifest FILE --name N --version V --key PRIVATE.pem -o OUT\n"
          "           [--base B] [--chunk-size BYTES] [--cert CERT]\n"
          "      chunk FILE, hash every chunk (SHA-256, CRC32C), sign, write OUT;\n"
          "      with --cert, KEY is a key the admin certified (fdadmin cert --role\n"
          "      origin) and the manifest carries CERT\n"
          "  ingest DATA_DIR MANIFEST SOURCE_FILE --pub PUBLIC.pem\n"
          "         [--revocations LIST] [--queue-depth Q] [--no-delta] [--no-verify]\n"
          "         [--rate BYTES/s]\n"
          "      store the version MANIFEST describes, taking every chunk already\n"
          "      held locally from there and the rest from SOURCE_FILE; resumes an\n"
          "      interrupted ingest; prints bytes reused and written. MANIFEST must be\n"
          "      signed by PUBLIC.pem (the admin key) or carry a certificate it signed\n"
          "      for role origin, valid now and not revoked in LIST (fdadmin revoke)\n"
          "  scrub DATA_DIR NAME [--version V] [--rate BYTES/s]   (also: verify)\n"
          "      re-check every chunk's CRC32C; names each bad chunk; exit 1 if any\n"
          "  list DATA_DIR NAME\n"
          "  gc DATA_DIR NAME [--keep K]\n"
          "      keep the newest K (default %u) complete versions and `current`\n"
          "  --help\n"
          "Sizes take K, M, G suffixes. Progress goes to stderr when it is a terminal.\n",
          FD_VERSIONS_KEPT_DEFAULT);
}

typedef struct opts {
  const char *name, *key, *pub, *out, *cert, *revocations;
  uint64_t version, base, rate, keep;
  uint64_t chunk_size, queue_depth;
  bool no_delta, no_verify;
  const char *pos[4];
  int npos;
} opts_t;

static int parse(int argc, char **argv, opts_t *o) {
  static const struct option longopts[] = {
      {"name", required_argument, 0, 'n'},       {"version", required_argument, 0, 'V'},
      {"key", required_argument, 0, 'k'},        {"pub", required_argument, 0, 'p'},
      {"base", required_argument, 0, 'b'},       {"chunk-size", required_argument, 0, 'c'},
      {"queue-depth", required_argument, 0, 'q'}, {"rate", required_argument, 0, 'r'},
      {"keep", required_argument, 0, 'K'},       {"no-delta", no_argument, 0, 'D'},
      {"no-verify", no_argument, 0, 'N'},        {"help", no_argument, 0, 'h'},
      {"cert", required_argument, 0, 'C'},       {"revocations", required_argument, 0, 'R'},
      {0, 0, 0, 0}};
  *o = (opts_t){.chunk_size = FD_CHUNK_SIZE_DEFAULT, .queue_depth = FD_QUEUE_DEPTH_DEFAULT,
                .keep = FD_VERSIONS_KEPT_DEFAULT};
  int c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
    int rc = 0;
    switch (c) {
      case 'n': o->name = optarg; break;
      case 'V': o->version = strtoull(optarg, NULL, 10); break;
      case 'k': o->key = optarg; break;
      case 'p': o->pub = optarg; break;
      case 'o': o->out = optarg; break;
      case 'b': o->base = strtoull(optarg, NULL, 10); break;
      case 'c': rc = fd_parse_bytes(optarg, &o->chunk_size); break;
      case 'q': o->queue_depth = strtoull(optarg, NULL, 10); break;
      case 'r': rc = fd_parse_bytes(optarg, &o->rate); break;
      case 'K': o->keep = strtoull(optarg, NULL, 10); break;
      case 'D': o->no_delta = true; break;
      case 'N': o->no_verify = true; break;
      case 'C': o->cert = optarg; break;
      case 'R': o->revocations = optarg; break;
      case 'h': usage(stdout); exit(0);
      default: return -EINVAL;
    }
    if (rc) return rc;
  }
  for (; optind < argc && o->npos < 4; optind++) o->pos[o->npos++] = argv[optind];
  return optind < argc ? -EINVAL : 0;
}

static int cmd_keygen(const opts_t *o) {
  if (o->npos != 2) return -EINVAL;
  fd_ed25519_key_t key;
  int rc = fd_ed25519_generate(&key);
  if (!rc) rc = fd_ed25519_save(&key, o->pos[0], o->pos[1]);
  if (!rc) printf("key id %016" PRIx64 "\n", fd_ed25519_key_id(key.pub));
  return rc;
}

static int write_all(const char *path, const void *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -errno;
  int rc = fwrite(buf, 1, len, f) == len ? 0 : -EIO;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = -errno;
  fclose(f);
  return rc;
}

static int read_all(const char *path, uint8_t **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return -errno;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  if (n < 0 || (unsigned long)n > FD_FRAME_PAYLOAD_MAX) {
    fclose(f);
    return n < 0 ? -EIO : -EMSGSIZE;
  }
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  int rc = buf && fread(buf, 1, (size_t)n, f) == (size_t)n ? 0 : -EIO;
  fclose(f);
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf;
  *len = (size_t)n;
  return 0;
}

static int cmd_manifest(const opts_t *o) {
  if (o->npos != 1 || !o->name || !o->version || !o->key || !o->out) return -EINVAL;
  if (o->chunk_size > FD_CHUNK_SIZE_MAX) return -EINVAL;
  fd_ed25519_key_t key;
  int rc = fd_ed25519_load(o->key, &key);
  if (rc) return rc;
  uint8_t cert[FD_CERT_LEN_MAX];
  size_t cert_len = 0;
  fd_cert_t c;
  if (o->cert && (rc = fd_cert_load(o->cert, &c, cert, &cert_len)) != 0) {
    fprintf(stderr, "fdstore manifest: certificate %s: %s\n", o->cert, fd_strerror(rc));
    return rc;
  }
  st_manifest_t *m;
  rc = st_manifest_build(o->pos[0], o->name, o->version, o->base, (uint32_t)o->chunk_size, &m);
  if (rc) return rc;
  uint8_t *enc = NULL, digest[FD_SHA256_LEN];
  size_t len;
  rc = o->cert ? st_manifest_sign_cert(m, &key, cert, cert_len) : st_manifest_sign(m, &key);
  if (rc == -EINVAL && o->cert)
    fprintf(stderr, "fdstore manifest: %s does not certify the key %s\n", o->cert, o->key);
  if (!rc && !(rc = st_manifest_encode(m, &enc, &len)) &&
      !(rc = st_manifest_digest(m, digest)) && !(rc = write_all(o->out, enc, len))) {
    char hex[2 * FD_SHA256_LEN + 1];
    fd_hex_encode(digest, FD_SHA256_LEN, hex);
    printf("%s v%" PRIu64 ": %" PRIu64 " bytes, %u chunks of %u, digest %s\n", m->name,
           m->version, m->size_bytes, m->chunk_count, m->chunk_size_bytes, hex);
  }
  free(enc);
  st_manifest_free(m);
  return rc;
}

/* ---- the environment every store command needs ---------------------------- */

typedef struct env {
  fd_ring_t ring;
  fd_pool_t *pool;
  st_store_t *store;
  bool registered; /* pool is the ring's fixed-buffer table */
} env_t;

static int env_open(env_t *e, const char *data_dir, const opts_t *o, uint32_t chunk_size,
                    const uint8_t *pub, const fd_cert_revlist_t *revoked) {
  memset(e, 0, sizeof(*e));
  uint32_t qd = (uint32_t)o->queue_depth;
  if (qd == 0 || qd > FD_QUEUE_DEPTH_MAX) return -EINVAL;
  int rc = fd_ring_init(&e->ring, FD_MIN(4 * qd + 16, FD_RING_ENTRIES_MAX), 0);
  if (rc) return rc;
  /* Buffers: qd in flight to the disk, as many again reading the source
   * and as many waiting for their group fdatasync. */
  e->pool = fd_pool_create(FD_MIN(3 * qd, FD_POOL_BUFFERS_MAX), chunk_size);
  if (!e->pool) {
    fd_ring_deinit(&e->ring);
    return -ENOMEM;
  }
  st_config_t cfg;
  st_config_defaults(&cfg);
  cfg.data_dir = data_dir;
  cfg.ring = &e->ring;
  cfg.pool = e->pool;
  e->registered = st_register_pool(&e->ring, e->pool) == 0;
  cfg.pool_registered = e->registered;
  cfg.queue_depth = qd;
  cfg.versions_kept = (uint32_t)o->keep;
  cfg.verify = !o->no_verify;
  if (pub) {
    cfg.have_trusted_key = true;
    memcpy(cfg.trusted_pub, pub, FD_ED25519_PUB_LEN);
    cfg.revocations = revoked;
  }
  rc = st_store_open(&cfg, &e->store);
  if (rc) {
    fd_pool_destroy(e->pool);
    fd_ring_deinit(&e->ring);
  }
  return rc;
}

static void env_close(env_t *e) {
  /* A bitmap write may outlive the last callback: let it land. */
  while (st_store_inflight(e->store) && fd_ring_run_once(&e->ring, 1, 0) >= 0) {
  }
  st_store_close(e->store);
  fd_ring_deinit(&e->ring); /* unregisters the buffers */
  fd_pool_destroy(e->pool);
}

typedef struct wait_flag {
  bool done;
  int res;
} wait_flag_t;

static void set_flag(void *arg, int res) {
  wait_flag_t *w = arg;
  w->done = true;
  w->res = res;
}

/* ---- ingest ------------------------------------------------------------------ */

typedef struct reader {
  fd_op_t op;
  struct ingest *in;
  uint32_t index, len, got;
  uint8_t *buf;
  bool ready; /* read done, waiting for a store slot */
} reader_t;

typedef struct ingest {
  env_t *e;
  st_version_t *v;
  int src_fd;
  uint32_t next, busy, reading, stored;
  int err;
  /* One per pool buffer: reading the source (at most queue depth at once),
   * being written, or waiting for its group fdatasync. */
  reader_t readers[3 * FD_QUEUE_DEPTH_MAX];
} ingest_t;

static void queue_source_read(reader_t *r);

static void on_put(void *arg, int res) {
  reader_t *r = arg;
  ingest_t *in = r->in;
  fd_pool_put(in->e->pool, r->buf);
  r->buf = NULL;
  in->busy--;
  if (res < 0 && !in->err) in->err = res;
  if (res == 0) in->stored++;
}

static void try_put(reader_t *r) {
  ingest_t *in = r->in;
  int rc = st_chunk_put(in->v, r->index, r->buf, r->len, on_put, r);
  if (rc == -EAGAIN) {
    r->ready = true;
    return;
  }
  r->ready = false;
  if (rc) {
    on_put(r, rc == -EALREADY ? 0 : rc);
    if (rc == -EALREADY) in->stored--;
  }
}

static void on_source_read(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  reader_t *r = (reader_t *)op;
  if (res <= 0) {
    r->in->reading--;
    on_put(r, res < 0 ? res : -EIO);
    return;
  }
  r->got += (uint32_t)res;
  if (r->got < r->len) {
    queue_source_read(r);
    return;
  }
  r->in->reading--;
  try_put(r);
}

static void queue_source_read(reader_t *r) {
  ingest_t *in = r->in;
  struct io_uring_sqe *sqe = fd_ring_sqe(&in->e->ring, &r->op);
  uint32_t cs = st_version_manifest(in->v)->chunk_size_bytes;
  uint32_t io_len = FD_ALIGN_UP(r->len, FD_DIRECT_ALIGN) - r->got;
  uint64_t off = (uint64_t)r->index * cs + r->got;
  if (in->e->registered)
    io_uring_prep_read_fixed(sqe, in->src_fd, r->buf + r->got, io_len, off,
                             (int)fd_pool_index(in->e->pool, r->buf));
  else
    io_uring_prep_read(sqe, in->src_fd, r->buf + r->got, io_len, off);
}

static void progress(const ingest_t *in, const char *what, bool force) {
  static uint64_t last;
  if (!isatty(2)) return;
  uint64_t now = fd_now_ms();
  if (!force && now - last < 250) return;
  last = now;
  const st_manifest_t *m = st_version_manifest(in->v);
  fprintf(stderr, "\r%s: %u/%u chunks present   %s", what, m->chunk_count - st_version_missing(in->v),
          m->chunk_count, force ? "\n" : "");
}

static int cmd_ingest(const opts_t *o) {
  if (o->npos != 3 || !o->pub) return -EINVAL;
  fd_ed25519_key_t pub;
  int rc = fd_ed25519_load(o->pub, &pub);
  if (rc) return rc;
  static fd_cert_revlist_t revoked; /* large: not on the stack */
  fd_cert_revlist_init(&revoked);
  if (o->revocations && (rc = fd_cert_revlist_load(o->revocations, pub.pub, &revoked)) != 0)
    return rc;
  uint8_t *mbuf;
  size_t mlen;
  if ((rc = read_all(o->pos[1], &mbuf, &mlen)) != 0) return rc;
  st_manifest_t *peek;
  if ((rc = st_manifest_decode(mbuf, mlen, &peek)) != 0) {
    free(mbuf);
    return rc;
  }
  uint32_t cs = peek->chunk_size_bytes;
  st_manifest_free(peek);
  env_t e;
  static ingest_t in;
  if ((rc = env_open(&e, o->pos[0], o, cs, pub.pub, &revoked)) != 0) {
    free(mbuf);
    return rc;
  }
  uint64_t t0 = fd_now_ns(), reused = 0;
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  in = (ingest_t){.e = &e, .src_fd = -1};
  rc = st_version_begin(e.store, mbuf, mlen, &in.v);
  free(mbuf);
  if (rc) goto out_env;
  const st_manifest_t *m = st_version_manifest(in.v);
  if (st_version_is_complete(in.v)) {
    printf("%s v%" PRIu64 " already complete\n", m->name, m->version);
    goto out_env;
  }
  wait_flag_t flag = {0};
  if (!o->no_delta && st_version_missing(in.v)) {
    if ((rc = st_version_delta(in.v, &reused, set_flag, &flag)) != 0) goto out_env;
    if ((rc = st_run_until(&e.ring, &flag.done)) != 0) goto out_env;
    progress(&in, "delta", false);
  }
  in.src_fd = open(o->pos[2], O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (in.src_fd < 0 && errno == EINVAL) in.src_fd = open(o->pos[2], O_RDONLY | O_CLOEXEC);
  if (in.src_fd < 0) {
    rc = -errno;
    goto out_env;
  }
  uint32_t qd = (uint32_t)o->queue_depth, nreaders = fd_pool_count(e.pool);
  uint64_t issued = 0, t_src = fd_now_ns();
  while (!in.err) {
    for (uint32_t i = 0; i < nreaders; i++)
      if (in.readers[i].ready) try_put(&in.readers[i]);
    for (uint32_t i = 0; i < nreaders && in.reading < qd && !in.err && in.next < m->chunk_count;
         i++) {
      reader_t *r = &in.readers[i];
      if (r->buf) continue;
      while (in.next < m->chunk_count && st_version_has(in.v, in.next)) in.next++;
      if (in.next >= m->chunk_count) break;
      if (o->rate && issued * 1000000000ull > o->rate * (fd_now_ns() - t_src)) break;
      uint8_t *buf = fd_pool_get(e.pool);
      if (!buf) break;
      *r = (reader_t){.op.complete = on_source_read, .in = &in, .index = in.next,
                      .len = st_manifest_chunk_len(m, in.next), .buf = buf};
      in.next++;
      in.busy++;
      in.reading++;
      issued += r->len;
      queue_source_read(r);
    }
    if (in.busy == 0 && in.next >= m->chunk_count) break;
    rc = fd_ring_run_once(&e.ring, 1, o->rate ? 2000000 : 0);
    if (rc < 0 && rc != -ETIME && rc != -EINTR) goto out_env;
    progress(&in, "ingest", false);
  }
  while (in.busy) fd_ring_run_once(&e.ring, 1, 0); /* let what is in flight land */
  rc = in.err;
  if (rc) goto out_env;
  progress(&in, "ingest", true);
  flag = (wait_flag_t){0};
  while ((rc = st_version_complete(in.v, set_flag, &flag)) == -EAGAIN) {
    if (st_version_missing(in.v)) break;
    fd_ring_run_once(&e.ring, 1, 0);
  }
  if (rc) goto out_env;
  if ((rc = st_run_until(&e.ring, &flag.done)) != 0 || (rc = flag.res) != 0)
    goto out_env;
  getrusage(RUSAGE_SELF, &ru1);
  double secs = (double)(fd_now_ns() - t0) / 1e9;
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                        ru0.ru_stime.tv_sec) +
               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                        ru0.ru_stime.tv_usec) / 1e6;
  const st_stats_t *st = st_store_stats(e.store);
  printf("%s v%" PRIu64 " complete: reused %" PRIu64 " bytes (%" PRIu64 " chunks), written %" PRIu64
         " bytes (%" PRIu64 " chunks), rejected %" PRIu64 ", %" PRIu64 " fdatasyncs, %" PRIu64
         " chunks cloned\n",
         m->name, m->version, st->bytes_reused, st->chunks_reused, st->bytes_written,
         st->chunks_written, st->chunks_rejected, st->syncs, st->chunks_cloned);
  printf("time %.3f s, %.3f GB/s, cpu %.3f s, %.3f GB/s per core\n", secs,
         (double)(st->bytes_written + st->bytes_reused) / secs / 1e9, cpu,
         cpu > 0 ? (double)(st->bytes_written + st->bytes_reused) / cpu / 1e9 : 0.0);
out_env:
  if (in.src_fd >= 0) close(in.src_fd);
  env_close(&e);
  return rc;
}

/* ---- scrub, list, gc ----------------------------------------------------------- */

typedef struct scrub_ctx {
  wait_flag_t w; /* first: set_flag gets the same pointer */
  uint32_t chunk_size;
} scrub_ctx_t;

static void on_bad(void *arg, const char *name, uint64_t version, uint32_t index, int err) {
  const scrub_ctx_t *c = arg;
  uint64_t off = (uint64_t)index * c->chunk_size;
  printf("BAD %s v%" PRIu64 " chunk %u (offset %" PRIu64 "): %s\n", name, version, index, off,
         fd_strerror(err));
}

static int cmd_scrub(const opts_t *o) {
  if (o->npos != 2) return -EINVAL;
  /* The pool's buffers are sized for this version's chunks. */
  uint64_t ver = o->version;
  char path[FD_PATH_LEN_MAX];
  if (!ver) {
    char target[64];
    snprintf(path, sizeof(path), "%s/%s/current", o->pos[0], o->pos[1]);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 2 || target[0] != 'v') return n < 0 ? -errno : -EINVAL;
    target[n] = 0;
    ver = strtoull(target + 1, NULL, 10);
  }
  snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 ".manifest", o->pos[0], o->pos[1], ver);
  uint8_t *mbuf;
  size_t mlen;
  st_manifest_t *m;
  int rc = read_all(path, &mbuf, &mlen);
  if (rc) return rc;
  rc = st_manifest_decode(mbuf, mlen, &m);
  free(mbuf);
  if (rc) return rc;
  uint32_t cs = m->chunk_size_bytes;
  st_manifest_free(m);
  env_t e;
  if ((rc = env_open(&e, o->pos[0], o, cs, NULL, NULL)) != 0) return rc;
  st_version_t *v;
  if ((rc = st_version_open(e.store, o->pos[1], ver, &v)) != 0) goto out_env;
  scrub_ctx_t ctx = {.chunk_size = cs};
  if ((rc = st_scrub(v, o->rate, on_bad, set_flag, &ctx)) == 0) {
    uint64_t size = st_version_manifest(v)->size_bytes, last = 0;
    while (!ctx.w.done && rc == 0) {
      rc = fd_ring_run_once(&e.ring, 1, 0);
      if (rc == -EINTR || rc > 0) rc = 0;
      if (isatty(2) && fd_now_ms() - last >= 250) {
        last = fd_now_ms();
        fprintf(stderr, "\rscrub: %3u%%", (unsigned)(st_store_stats(e.store)->scrub_bytes * 100 / size));
      }
    }
    if (isatty(2)) fprintf(stderr, "\n");
  }
  if (rc == 0) {
    printf("%s v%" PRIu64 ": %u chunks scrubbed, %d bad\n", o->pos[1], ver,
           st_version_manifest(v)->chunk_count, ctx.w.res);
    rc = ctx.w.res > 0 ? 1 : ctx.w.res;
  }
out_env:
  env_close(&e);
  return rc;
}

static int cmd_list_gc(const opts_t *o, bool gc) {
  if (o->npos != 2) return -EINVAL;
  env_t e;
  int rc = env_open(&e, o->pos[0], o, FD_CHUNK_SIZE_MIN, NULL, NULL);
  if (rc) return rc;
  if (gc) {
    rc = st_gc(e.store, o->pos[1]);
    if (rc >= 0) printf("removed %d version(s)\n", rc);
  }
  uint64_t list[256], cur = 0;
  int n = st_versions(e.store, o->pos[1], list, 256);
  (void)st_current(e.store, o->pos[1], &cur);
  for (int i = 0; i < n; i++)
    printf("v%" PRIu64 "%s\n", list[i], list[i] == cur ? " (current)" : "");
  env_close(&e);
  return rc < 0 ? rc : (n < 0 ? n : 0);
}

int main(int argc, char **argv) {
  fd_log_init("fdstore", FD_LOG_WARN);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  opts_t o;
  if (parse(argc, argv, &o) != 0) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  int rc;
  if (!strcmp(cmd, "keygen")) rc = cmd_keygen(&o);
  else if (!strcmp(cmd, "manifest")) rc = cmd_manifest(&o);
  else if (!strcmp(cmd, "ingest")) rc = cmd_ingest(&o);
  else if (!strcmp(cmd, "scrub") || !strcmp(cmd, "verify")) rc = cmd_scrub(&o);
  else if (!strcmp(cmd, "list")) rc = cmd_list_gc(&o, false);
  else if (!strcmp(cmd, "gc")) rc = cmd_list_gc(&o, true);
  else {
    usage(stderr);
    return 2;
  }
  if (rc < 0) {
    fprintf(stderr, "fdstore %s: %s\n", cmd, fd_strerror(rc));
    return rc == -EINVAL ? 2 : 1;
  }
  return rc;
}
