/*
 * adm_publish.c — `fdadmin publish FILE --name NAME`.
 *
 * Asks the scheduler for the newest version N of NAME, chunks FILE and builds
 * the manifest of N+1 (base N) with storage's builder, signs it with the
 * admin key, then opens Origin.Publish on the origin head with the admin
 * role: one begin part carrying the signed manifest, then for each chunk the
 * head lacks a ChunkHeader followed by the chunk as one DATA frame. Which
 * chunks the head lacks: it says so itself (Origin.Missing, which also begins
 * the version and reuses what the head holds) when the protocol has that
 * method; otherwise every chunk whose SHA-256 is not in version N's manifest
 * (fetched from the head with Node.GetManifest) — the head holds N whole,
 * because N was acknowledged, and fills those chunks from its own store.
 * --full sends every chunk. The head answers only when every live origin holds
 * N+1 durably; only then does this command print success and exit 0.
 *
 * A FAILED_PRECONDITION answer means another publish took N+1 first: the
 * command rebuilds for the fresh newest version and tries exactly once more.
 * Each chunk is re-read from FILE and checked against the CRC32C in the
 * manifest before it is sent, so a file changed during the publish fails it
 * instead of publishing bytes the signature does not cover.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "fd_assert.h"
#include "fd_config.h"
#include "fd_error.h"
#include "fd_time.h"
#include "storage.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: fdadmin [GLOBAL OPTIONS] publish FILE --name NAME [OPTIONS]\n"
          "  Chunks FILE, signs its manifest with the admin key, streams the chunks the\n"
          "  origin head lacks and waits until every live origin holds the version.\n"
          "  --name NAME          file name in the cluster ([A-Za-z0-9._-])\n"
          "  --chunk-size BYTES   power of two, 64K..64M (default: config, else 4M)\n"
          "  --full               send every chunk (no delta against the newest version)\n"
          "  --progress / --no-progress   progress bar on stderr (default: if a terminal)\n"
          "  --json               print the result as JSON\n"
          "Needs: --scheduler, --origins, --cluster-key, --admin-key (or the config).\n"
          "Exit: 0 every live origin holds it, 1 failed, 2 usage, 3 unreachable/refused.\n");
}

typedef struct pub {
  adm_client_t *cl;
  rpc_call_t *call;
  const adm_config_t *cfg;
  int fd;
  const st_manifest_t *m;
  const uint8_t *enc;
  size_t enc_len;
  const uint8_t *send; /* per chunk: 1 to send */
  uint32_t to_send;
  uint64_t bytes_to_send;
  /* stream position */
  uint32_t next;
  bool begin_sent, header_sent, closed;
  void *cur; /* buffer holding chunk `next`, read and checked */
  void *bufs[ADM_PUBLISH_BUFS];
  uint32_t nfree;
  void *free_bufs[ADM_PUBLISH_BUFS];
  /* outcome */
  int local_err; /* a -errno from this side (read, changed file, send) */
  bool done;
  rpc_code_t code;
  char message[256];
  uint8_t *reply;
  size_t reply_len;
  /* progress */
  uint32_t sent_chunks;
  uint64_t sent_bytes;
  uint64_t t0_ms, last_draw_ms;
} pub_t;

static void buf_back(void *buf, void *arg) {
  pub_t *p = arg;
  FD_ASSERT(p->nfree < ADM_PUBLISH_BUFS);
  p->free_bufs[p->nfree++] = buf;
}

static int read_chunk(pub_t *p, uint32_t index, void *buf, uint32_t len) {
  off_t off = (off_t)index * p->m->chunk_size_bytes;
  uint32_t got = 0;
  while (got < len) {
    ssize_t n = pread(p->fd, (uint8_t *)buf + got, len - got, off + got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -EIO; /* the file shrank since the manifest was built */
    got += (uint32_t)n;
  }
  if (fd_crc32c(0, buf, len) != p->m->chunk_crc32c[index]) return -ESTALE;
  return 0;
}

/* Sends as much as the window allows; resumed from on_writable and the loop. */
static void pump(pub_t *p) {
  if (p->done || p->local_err || p->closed) return;
  int rc;
  if (!p->begin_sent) {
    Origin__PublishBegin b = ORIGIN__PUBLISH_BEGIN__INIT;
    b.name = (char *)p->m->name;
    b.manifest.data = (uint8_t *)p->enc;
    b.manifest.len = p->enc_len;
    Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
    part.part_case = ORIGIN__PUBLISH_PART__PART_BEGIN;
    part.begin = &b;
    rc = rpc_call_send(p->call, &part.base);
    if (rc == -EAGAIN) return;
    if (rc < 0) goto fail;
    p->begin_sent = true;
  }
  while (p->next < p->m->chunk_count) {
    uint32_t i = p->next;
    if (!p->send[i]) {
      p->next++;
      continue;
    }
    uint32_t len = st_manifest_chunk_len(p->m, i);
    if (!p->cur) {
      if (!p->nfree) return; /* buffers come back as sends complete */
      p->cur = p->free_bufs[--p->nfree];
      rc = read_chunk(p, i, p->cur, len);
      if (rc < 0) goto fail;
    }
    if (!p->header_sent) {
      Node__ChunkHeader h = NODE__CHUNK_HEADER__INIT;
      h.index = i;
      h.length = len;
      h.crc32c = p->m->chunk_crc32c[i];
      Origin__PublishPart part = ORIGIN__PUBLISH_PART__INIT;
      part.part_case = ORIGIN__PUBLISH_PART__PART_CHUNK;
      part.chunk = &h;
      rc = rpc_call_send(p->call, &part.base);
      if (rc == -EAGAIN) return;
      if (rc < 0) goto fail;
      p->header_sent = true;
    }
    rc = rpc_call_send_data(p->call, p->cur, len, buf_back, p);
    if (rc == -EAGAIN) return;
    if (rc < 0) goto fail;
    p->cur = NULL;
    p->header_sent = false;
    p->next++;
    p->sent_chunks++;
    p->sent_bytes += len;
  }
  rc = rpc_call_close_send(p->call);
  if (rc == -EAGAIN) return;
  if (rc < 0) goto fail;
  p->closed = true;
  return;
fail:
  p->local_err = rc;
}

static void on_msg(rpc_call_t *call, const ProtobufCMessage *msg, void *arg) {
  (void)call;
  pub_t *p = arg;
  if (p->reply) return;
  size_t len = protobuf_c_message_get_packed_size(msg);
  p->reply = malloc(len ? len : 1);
  if (p->reply) p->reply_len = protobuf_c_message_pack(msg, p->reply);
}

static void on_writable(rpc_call_t *call, void *arg) {
  (void)call;
  pump(arg);
}

static void on_done(rpc_call_t *call, rpc_code_t code, const char *message, void *arg) {
  (void)call;
  pub_t *p = arg;
  p->done = true;
  p->call = NULL;
  p->code = code;
  snprintf(p->message, sizeof(p->message), "%s", message ? message : "");
}

static void draw(pub_t *p, bool final) {
  if (!p->cfg->progress) return;
  uint64_t now = fd_now_ms();
  if (!final && now - p->last_draw_ms < ADM_PROGRESS_MS) return;
  p->last_draw_ms = now;
  double frac = p->bytes_to_send ? (double)p->sent_bytes / (double)p->bytes_to_send : 1.0;
  double secs = (double)(now - p->t0_ms) / 1000.0;
  double rate = secs > 0 ? (double)p->sent_bytes / secs : 0;
  char bar[31];
  int filled = (int)(frac * 30.0);
  for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
  bar[30] = '\0';
  fprintf(stderr, "\r[%s] %3.0f%% %u/%u chunks %.1f MiB/s%s", bar, frac * 100.0, p->sent_chunks,
          p->to_send, rate / 1048576.0,
          p->closed ? "  waiting for every origin to hold it" : "");
  if (final) fputc('\n', stderr);
}

static int cmp_digest(const void *a, const void *b) { return memcmp(a, b, FD_SHA256_LEN); }

/* Marks the chunks to send: those whose SHA-256 is not in prev (NULL: all). */
static void choose(pub_t *p, uint8_t *send, const st_manifest_t *prev) {
  uint8_t *sorted = NULL;
  if (prev && prev->chunk_count) {
    sorted = malloc((size_t)prev->chunk_count * FD_SHA256_LEN);
    if (sorted) {
      memcpy(sorted, prev->chunk_sha256, (size_t)prev->chunk_count * FD_SHA256_LEN);
      qsort(sorted, prev->chunk_count, FD_SHA256_LEN, cmp_digest);
    }
  }
  p->to_send = 0;
  p->bytes_to_send = 0;
  for (uint32_t i = 0; i < p->m->chunk_count; i++) {
    const uint8_t *d = p->m->chunk_sha256 + (size_t)i * FD_SHA256_LEN;
    send[i] = !(sorted && bsearch(d, sorted, prev->chunk_count, FD_SHA256_LEN, cmp_digest));
    if (send[i]) {
      p->to_send++;
      p->bytes_to_send += st_manifest_chunk_len(p->m, i);
    }
  }
  free(sorted);
}

/* The head's copy of version (for the delta); NULL when it has none. */
static st_manifest_t *head_manifest(adm_client_t *head, const char *name, uint64_t version) {
  Node__GetManifestRequest req = NODE__GET_MANIFEST_REQUEST__INIT;
  req.name = (char *)name;
  req.version = version;
  ProtobufCMessage *m = NULL;
  char msg[256];
  rpc_code_t code = adm_call(head, RPC_SVC_NODE, &node__node__descriptor, 0, &req.base,
                             0, &m, msg, sizeof(msg));
  if (code != RPC_OK) {
    fprintf(stderr, "fdadmin: origin head has no manifest of %s v%" PRIu64 " (%s %s): sending "
                    "every chunk\n", name, version, rpc_code_name(code), msg);
    return NULL;
  }
  const Node__GetManifestReply *r = (const Node__GetManifestReply *)m;
  st_manifest_t *out = NULL;
  if (st_manifest_decode(r->manifest.data, r->manifest.len, &out) < 0) out = NULL;
  protobuf_c_message_free_unpacked(m, NULL);
  return out;
}

#ifdef ORIGIN__MISSING_REQUEST__INIT
/* Origin.Missing: the head begins the version (checking that it is its newest
 * + 1 and the signature), reuses every chunk it holds locally, and names the
 * chunks it still lacks. Fills send[] from its answer. */
static rpc_code_t head_missing(adm_client_t *head, pub_t *p, uint8_t *send) {
  Origin__MissingRequest req = ORIGIN__MISSING_REQUEST__INIT;
  req.manifest.data = (uint8_t *)p->enc;
  req.manifest.len = p->enc_len;
  ProtobufCMessage *m = NULL;
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(&origin__origin__descriptor, "Missing");
  if (!md) return RPC_UNIMPLEMENTED;
  uint32_t index = (uint32_t)(md - origin__origin__descriptor.methods);
  rpc_code_t code = adm_call(head, RPC_SVC_ORIGIN, &origin__origin__descriptor, index, &req.base, 0,
                             &m, p->message, sizeof(p->message));
  if (code != RPC_OK) return code;
  const Origin__MissingReply *r = (const Origin__MissingReply *)m;
  memset(send, 0, p->m->chunk_count);
  p->to_send = 0;
  p->bytes_to_send = 0;
  for (size_t i = 0; i < r->n_chunks; i++) {
    uint32_t c = r->chunks[i];
    if (c >= p->m->chunk_count || send[c]) continue;
    send[c] = 1;
    p->to_send++;
    p->bytes_to_send += st_manifest_chunk_len(p->m, c);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return RPC_OK;
}
#endif

typedef struct pub_opts {
  const char *file, *name;
  bool full;
} pub_opts_t;

/* One attempt for version `version`. Returns ADM_EXIT_*; *retry on a lost race. */
static int attempt(adm_config_t *cfg, const pub_opts_t *o, const fd_ed25519_key_t *key,
                   uint64_t newest, bool *retry) {
  *retry = false;
  int ex = ADM_EXIT_FAILED;
  st_manifest_t *m = NULL, *prev = NULL;
  uint8_t *enc = NULL, *send = NULL;
  size_t enc_len = 0;
  uint64_t t_build = fd_now_ms();
  int rc = st_manifest_build(o->file, o->name, newest + 1, newest,
                             (uint32_t)cfg->chunk_size_bytes, &m);
  if (rc < 0) {
    fprintf(stderr, "fdadmin: cannot chunk %s: %s\n", o->file, fd_strerror(rc));
    return rc == -EINVAL || rc == -ENOENT ? ADM_EXIT_USAGE : ADM_EXIT_FAILED;
  }
  if ((rc = st_manifest_sign(m, key)) < 0 || (rc = st_manifest_encode(m, &enc, &enc_len)) < 0) {
    fprintf(stderr, "fdadmin: cannot sign the manifest: %s\n", fd_strerror(rc));
    goto out;
  }
  uint64_t build_ms = fd_now_ms() - t_build;

  adm_client_t *head = adm_connect_head(cfg, true, &ex);
  if (!head) goto out;
  pub_t p = {.cl = head, .cfg = cfg, .m = m, .enc = enc, .enc_len = enc_len};
  send = calloc(m->chunk_count ? m->chunk_count : 1, 1);
  p.fd = open(o->file, O_RDONLY | O_CLOEXEC);
  if (!send || p.fd < 0) {
    fprintf(stderr, "fdadmin: %s: %s\n", o->file, fd_strerror(send ? -errno : -ENOMEM));
    ex = ADM_EXIT_FAILED;
    goto out_head;
  }
  bool chosen = false;
#ifdef ORIGIN__MISSING_REQUEST__INIT
  if (!o->full) {
    rpc_code_t code = head_missing(head, &p, send);
    if (code == RPC_OK) {
      chosen = true;
    } else if (code == RPC_FAILED_PRECONDITION) {
      fprintf(stderr, "fdadmin: v%" PRIu64 " was taken by another publish (%s)\n", m->version,
              p.message);
      *retry = true;
      ex = ADM_EXIT_FAILED;
      goto out_bufs;
    } else if (code != RPC_UNIMPLEMENTED) {
      fprintf(stderr, "fdadmin: the origin head refused v%" PRIu64 ": %s %s\n", m->version,
              rpc_code_name(code), p.message);
      ex = adm_exit_for_code(code);
      if (ex == ADM_EXIT_USAGE) ex = ADM_EXIT_FAILED;
      goto out_bufs;
    }
    p.message[0] = '\0';
  }
#endif
  if (!chosen) {
    if (newest && !o->full) prev = head_manifest(head, o->name, newest);
    choose(&p, send, prev);
  }
  p.send = send;
  for (uint32_t i = 0; i < ADM_PUBLISH_BUFS; i++) {
    if (posix_memalign(&p.bufs[i], FD_DIRECT_ALIGN, m->chunk_size_bytes) != 0) {
      fprintf(stderr, "fdadmin: out of memory\n");
      ex = ADM_EXIT_FAILED;
      goto out_bufs;
    }
    p.free_bufs[p.nfree++] = p.bufs[i];
  }
  if (!cfg->json)
    fprintf(stderr, "fdadmin: %s v%" PRIu64 ": %u chunks of %u bytes (%" PRIu64
                    " bytes), manifest in %" PRIu64 " ms; sending %u chunks (%" PRIu64
                    " bytes), the head already holds %u\n",
            o->name, m->version, m->chunk_count, m->chunk_size_bytes, m->size_bytes, build_ms,
            p.to_send, p.bytes_to_send, m->chunk_count - p.to_send);

  /* The deadline covers the whole stream and the origins' acknowledgement. */
  uint64_t budget = ADM_PUBLISH_ACK_TIMEOUT_MS +
                    p.bytes_to_send / (1024 * 1024) * 1000 / ADM_PUBLISH_RATE_MIN_MIBPS;
  uint32_t timeout_ms = (uint32_t)(budget > RPC_TIMEOUT_MS_MAX ? RPC_TIMEOUT_MS_MAX : budget);
  static const rpc_call_cbs_t cbs = {on_msg, NULL, on_writable, on_done};
  p.call = rpc_start_origin_publish(adm_client_conn(head), NULL, timeout_ms, &cbs, &p);
  if (!p.call) {
    fprintf(stderr, "fdadmin: cannot start the publish: %s\n", fd_strerror(-errno));
    ex = ADM_EXIT_UNREACHABLE;
    goto out_bufs;
  }
  p.t0_ms = fd_now_ms();
  uint64_t hard_end = p.t0_ms + timeout_ms + ADM_PUBLISH_END_GRACE_MS;
  while (!p.done && fd_now_ms() < hard_end) {
    pump(&p);
    if (p.local_err) {
      rpc_call_cancel(p.call); /* on_done runs: the head discards the partial version */
      break;
    }
    draw(&p, false);
    adm_client_pump(head, 10);
  }
  draw(&p, true);
  if (!p.done && p.call) rpc_call_cancel(p.call);
  double secs = (double)(fd_now_ms() - p.t0_ms) / 1000.0;

  if (p.local_err) {
    fprintf(stderr, "fdadmin: publish aborted: %s\n",
            p.local_err == -ESTALE ? "the file changed while it was being published"
                                   : fd_strerror(p.local_err));
    ex = ADM_EXIT_FAILED;
  } else if (p.code == RPC_FAILED_PRECONDITION) {
    fprintf(stderr, "fdadmin: v%" PRIu64 " was taken by another publish (%s)\n", m->version,
            p.message);
    *retry = true;
    ex = ADM_EXIT_FAILED;
  } else if (p.code != RPC_OK || !p.reply) {
    fprintf(stderr, "fdadmin: publish of %s v%" PRIu64 " failed: %s %s\n", o->name, m->version,
            rpc_code_name(p.code), p.message);
    ex = adm_exit_for_code(p.code == RPC_OK ? RPC_INTERNAL : p.code);
    if (p.code == RPC_INVALID_ARGUMENT) ex = ADM_EXIT_FAILED; /* the head refused the manifest */
  } else {
    Origin__PublishReply *r = origin__publish_reply__unpack(NULL, p.reply_len, p.reply);
    if (!r || r->version != m->version) {
      fprintf(stderr, "fdadmin: the head acknowledged %s, not v%" PRIu64 "\n",
              r ? "another version" : "with an undecodable reply", m->version);
      ex = ADM_EXIT_FAILED;
    } else if (cfg->json) {
      json_object *j = adm_json_object(), *origins = adm_json_array();
      adm_json_add_str(j, "name", o->name);
      adm_json_add_u64(j, "version", m->version);
      adm_json_add_u64(j, "size_bytes", m->size_bytes);
      adm_json_add_u64(j, "chunks", m->chunk_count);
      adm_json_add_u64(j, "chunks_sent", p.sent_chunks);
      adm_json_add_u64(j, "bytes_sent", p.sent_bytes);
      adm_json_add_fixed(j, "seconds", secs, 3);
      for (size_t i = 0; i < r->n_origins; i++)
        adm_json_push(origins, json_object_new_string(r->origins[i] ? r->origins[i] : ""));
      adm_json_add(j, "origins", origins);
      /* The version is published either way; a failed print is still a failure. */
      ex = adm_json_print(j) ? ADM_EXIT_FAILED : ADM_EXIT_OK;
    } else {
      printf("published %s v%" PRIu64 ": %" PRIu64 " bytes, %u chunks, sent %u chunks (%" PRIu64
             " bytes) in %.2f s; held durably by %zu origins:",
             o->name, m->version, m->size_bytes, m->chunk_count, p.sent_chunks, p.sent_bytes,
             secs, r->n_origins);
      for (size_t i = 0; i < r->n_origins; i++) printf(" %s", r->origins[i]);
      printf("\n");
      ex = ADM_EXIT_OK;
    }
    if (r) origin__publish_reply__free_unpacked(r, NULL);
  }
  /* Let every DATA send finish before its buffer is freed. */
  uint64_t drain_end = fd_now_ms() + ADM_PUBLISH_END_GRACE_MS;
  while (p.nfree + (p.cur ? 1u : 0u) < ADM_PUBLISH_BUFS && fd_now_ms() < drain_end &&
         adm_client_pump(head, 5)) {
  }
out_bufs:
  free(p.reply);
  if (p.fd >= 0) close(p.fd);
out_head:
  adm_client_destroy(head); /* closes the connection: every send is done or dropped */
  for (uint32_t i = 0; i < ADM_PUBLISH_BUFS; i++) free(p.bufs[i]);
  free(send);
out:
  st_manifest_free(prev);
  free(enc);
  st_manifest_free(m);
  return ex;
}

int adm_cmd_publish(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {
      {"name", required_argument, 0, 'n'},  {"chunk-size", required_argument, 0, 'c'},
      {"full", no_argument, 0, 'F'},        {"progress", no_argument, 0, 'P'},
      {"no-progress", no_argument, 0, 'Q'}, {"json", no_argument, 0, 'j'},
      {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
  pub_opts_t o = {0};
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'n': o.name = optarg; break;
      case 'c':
        if (fd_parse_bytes(optarg, &cfg->chunk_size_bytes) < 0) {
          fprintf(stderr, "fdadmin publish: bad --chunk-size '%s'\n", optarg);
          return ADM_EXIT_USAGE;
        }
        break;
      case 'F': o.full = true; break;
      case 'P': cfg->progress = true; break;
      case 'Q': cfg->progress = false; break;
      case 'j': cfg->json = true; break;
      case 'h': usage(stdout); return ADM_EXIT_OK;
      default: usage(stderr); return ADM_EXIT_USAGE;
    }
  }
  if (optind + 1 != argc || !o.name) {
    fprintf(stderr, "fdadmin publish: needs exactly one FILE and --name NAME\n");
    usage(stderr);
    return ADM_EXIT_USAGE;
  }
  o.file = argv[optind];
  if (!st_name_valid(o.name)) {
    fprintf(stderr, "fdadmin publish: bad name '%s' ([A-Za-z0-9._-], no leading dot)\n", o.name);
    return ADM_EXIT_USAGE;
  }
  uint64_t cs = cfg->chunk_size_bytes;
  if (cs < FD_CHUNK_SIZE_MIN || cs > FD_CHUNK_SIZE_MAX || (cs & (cs - 1))) {
    fprintf(stderr, "fdadmin publish: chunk size must be a power of two in 64K..64M\n");
    return ADM_EXIT_USAGE;
  }
  struct stat st;
  if (stat(o.file, &st) < 0 || !S_ISREG(st.st_mode)) {
    fprintf(stderr, "fdadmin publish: %s: not a readable regular file\n", o.file);
    return ADM_EXIT_USAGE;
  }
  fd_ed25519_key_t key;
  if (!cfg->admin_key_path[0]) {
    fprintf(stderr, "fdadmin publish: needs the admin key (--admin-key FILE)\n");
    return ADM_EXIT_USAGE;
  }
  int rc = fd_ed25519_load(cfg->admin_key_path, &key);
  if (rc < 0 || !key.has_private) {
    fprintf(stderr, "fdadmin publish: admin key %s: %s\n", cfg->admin_key_path,
            rc < 0 ? fd_strerror(rc) : "not a private key");
    return ADM_EXIT_USAGE;
  }
  int ex = ADM_EXIT_FAILED;
  for (int round = 0; round < 2; round++) {
    adm_client_t *sched = adm_connect_scheduler(cfg, false, &ex);
    if (!sched) break;
    uint64_t newest = 0;
    ex = adm_newest_version(sched, o.name, &newest);
    adm_client_destroy(sched);
    if (ex != ADM_EXIT_OK) break;
    bool retry = false;
    ex = attempt(cfg, &o, &key, newest, &retry);
    if (!retry) break;
  }
  memset(&key, 0, sizeof(key));
  return ex;
}
