/*
 * st_manifest.c — manifests: decode and validate, canonical encoding, digest,
 * Ed25519 signature (by the admin key, or by a key the admin certified:
 * signer_cert), and the builder publishers use.
 *
 * The canonical encoding is what protobuf-c packs for the message with an
 * empty signature. Verification re-encodes the decoded fields, so any
 * encoding of the same content has the same digest; a manifest with unknown
 * fields is rejected rather than carried along unsigned.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "fd_time.h"
#include "manifest.pb-c.h"
#include "st_internal.h"

bool st_name_valid(const char *name) {
  size_t len = strnlen(name, FD_NAME_LEN_MAX + 1);
  if (len == 0 || len > FD_NAME_LEN_MAX || name[0] == '.') return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

static uint32_t chunk_count_for(uint64_t size, uint32_t chunk_size) {
  return (uint32_t)((size + chunk_size - 1) / chunk_size);
}

static int check_shape(const char *name, uint64_t version, uint64_t base_version, uint64_t size,
                       uint32_t chunk_size) {
  if (!st_name_valid(name)) return -EINVAL;
  if (version == 0 || base_version >= version) return -EINVAL;
  if (!FD_IS_POW2(chunk_size) || chunk_size < FD_CHUNK_SIZE_MIN || chunk_size > FD_CHUNK_SIZE_MAX)
    return -EINVAL;
  if (size == 0) return -EINVAL;
  if (size > FD_FILE_SIZE_MAX) return -EMSGSIZE;
  return 0;
}

uint32_t st_manifest_chunk_len(const st_manifest_t *m, uint32_t index) {
  FD_ASSERT(index < m->chunk_count);
  uint64_t off = (uint64_t)index * m->chunk_size_bytes;
  return (uint32_t)FD_MIN((uint64_t)m->chunk_size_bytes, m->size_bytes - off);
}

static st_manifest_t *alloc_manifest(uint32_t chunk_count) {
  st_manifest_t *m = calloc(1, sizeof(*m));
  if (!m) return NULL;
  m->chunk_count = chunk_count;
  m->chunk_sha256 = calloc(chunk_count, FD_SHA256_LEN);
  m->chunk_crc32c = calloc(chunk_count, sizeof(uint32_t));
  if (!m->chunk_sha256 || !m->chunk_crc32c) {
    st_manifest_free(m);
    return NULL;
  }
  return m;
}

void st_manifest_free(st_manifest_t *m) {
  if (!m) return;
  free(m->chunk_sha256);
  free(m->chunk_crc32c);
  free(m->signer_cert);
  free(m);
}

int st_manifest_decode(const void *buf, size_t len, st_manifest_t **out) {
  *out = NULL;
  if (len > FD_FRAME_PAYLOAD_MAX) return -EMSGSIZE;
  Fdist__Storage__Manifest *pb = fdist__storage__manifest__unpack(NULL, len, buf);
  if (!pb) return -EBADMSG;
  int rc = -EINVAL;
  if (pb->base.n_unknown_fields != 0) goto out_free_pb;
  if (!pb->name || strlen(pb->name) > FD_NAME_LEN_MAX) goto out_free_pb;
  rc = check_shape(pb->name, pb->version, pb->base_version, pb->size_bytes, pb->chunk_size_bytes);
  if (rc) goto out_free_pb;
  rc = -EINVAL;
  uint32_t n = chunk_count_for(pb->size_bytes, pb->chunk_size_bytes);
  if ((uint64_t)n > FD_CHUNKS_MAX) goto out_free_pb;
  if (pb->chunk_sha256.len != (size_t)n * FD_SHA256_LEN || pb->n_chunk_crc32c != n) goto out_free_pb;
  if (pb->signature.len != 0 && pb->signature.len != FD_ED25519_SIG_LEN) goto out_free_pb;
  st_manifest_t *m = alloc_manifest(n);
  if (!m) {
    rc = -ENOMEM;
    goto out_free_pb;
  }
  memcpy(m->name, pb->name, strlen(pb->name) + 1);
  m->version = pb->version;
  m->size_bytes = pb->size_bytes;
  m->chunk_size_bytes = pb->chunk_size_bytes;
  m->base_version = pb->base_version;
  m->created_unix_s = pb->created_unix_s;
  m->key_id = pb->key_id;
  memcpy(m->chunk_sha256, pb->chunk_sha256.data, (size_t)n * FD_SHA256_LEN);
  memcpy(m->chunk_crc32c, pb->chunk_crc32c, (size_t)n * sizeof(uint32_t));
  if (pb->signature.len == FD_ED25519_SIG_LEN) {
    m->is_signed = true;
    memcpy(m->signature, pb->signature.data, FD_ED25519_SIG_LEN);
  }
  if (pb->signer_cert.len) {
    if (pb->signer_cert.len > ST_SIGNER_CERT_LEN_MAX || !(m->signer_cert = malloc(pb->signer_cert.len))) {
      rc = pb->signer_cert.len > ST_SIGNER_CERT_LEN_MAX ? -EMSGSIZE : -ENOMEM;
      st_manifest_free(m);
      goto out_free_pb;
    }
    memcpy(m->signer_cert, pb->signer_cert.data, pb->signer_cert.len);
    m->signer_cert_len = pb->signer_cert.len;
  }
  *out = m;
  rc = 0;
out_free_pb:
  fdist__storage__manifest__free_unpacked(pb, NULL);
  return rc;
}

static int encode(const st_manifest_t *m, bool with_signature, uint8_t **out, size_t *len) {
  Fdist__Storage__Manifest pb = FDIST__STORAGE__MANIFEST__INIT;
  pb.name = (char *)m->name;
  pb.version = m->version;
  pb.size_bytes = m->size_bytes;
  pb.chunk_size_bytes = m->chunk_size_bytes;
  pb.chunk_sha256.data = m->chunk_sha256;
  pb.chunk_sha256.len = (size_t)m->chunk_count * FD_SHA256_LEN;
  pb.n_chunk_crc32c = m->chunk_count;
  pb.chunk_crc32c = m->chunk_crc32c;
  pb.base_version = m->base_version;
  pb.created_unix_s = m->created_unix_s;
  pb.key_id = m->key_id;
  pb.signer_cert.data = m->signer_cert;
  pb.signer_cert.len = m->signer_cert_len;
  if (with_signature && m->is_signed) {
    pb.signature.data = (uint8_t *)m->signature;
    pb.signature.len = FD_ED25519_SIG_LEN;
  }
  size_t n = fdist__storage__manifest__get_packed_size(&pb);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return -ENOMEM;
  size_t packed = fdist__storage__manifest__pack(&pb, buf);
  FD_ASSERT(packed == n);
  *out = buf;
  *len = n;
  return 0;
}

int st_manifest_encode(const st_manifest_t *m, uint8_t **out, size_t *len) {
  return encode(m, true, out, len);
}

int st_manifest_digest(const st_manifest_t *m, uint8_t out[FD_SHA256_LEN]) {
  uint8_t *buf;
  size_t len;
  int rc = encode(m, false, &buf, &len);
  if (rc) return rc;
  fd_sha256(buf, len, out);
  free(buf);
  return 0;
}

/* 0 when sig over m's canonical encoding verifies with pub. */
static int check_signature(const st_manifest_t *m, const uint8_t pub[FD_ED25519_PUB_LEN]) {
  uint8_t *buf;
  size_t len;
  int rc = encode(m, false, &buf, &len);
  if (rc) return rc;
  rc = fd_ed25519_verify(pub, buf, len, m->signature);
  free(buf);
  if (rc) {
    fd_log_warn("manifest %s v%llu: bad signature", m->name, (unsigned long long)m->version);
    return -EKEYREJECTED;
  }
  return 0;
}

/* A manifest signed through a certificate: the certificate first (it says
 * which key may sign), then the signature with the key it certifies. */
static int verify_through_cert(const st_manifest_t *m, const uint8_t pub[FD_ED25519_PUB_LEN],
                               const fd_cert_revlist_t *revoked) {
  fd_cert_t cert;
  if (fd_cert_decode(m->signer_cert, m->signer_cert_len, &cert) != 0) {
    fd_log_warn("manifest %s v%llu: its signer certificate does not decode", m->name,
                (unsigned long long)m->version);
    return -EKEYREJECTED;
  }
  int rc = fd_cert_verify(&cert, FD_CERT_ROLE_ORIGIN, pub, fd_wall_s(), revoked);
  if (rc) {
    fd_log_warn("manifest %s v%llu: its signer certificate is refused (%s)", m->name,
                (unsigned long long)m->version, fd_cert_trust_reason(rc));
    return rc;
  }
  if (m->key_id != cert.key_id) {
    fd_log_warn("manifest %s v%llu signed by key %016llx, not the certified key %016llx",
                m->name, (unsigned long long)m->version, (unsigned long long)m->key_id,
                (unsigned long long)cert.key_id);
    return -EKEYREJECTED;
  }
  return check_signature(m, cert.pub);
}

int st_manifest_verify(const st_manifest_t *m, const uint8_t pub[FD_ED25519_PUB_LEN],
                       const fd_cert_revlist_t *revoked) {
  if (!m->is_signed) {
    fd_log_warn("manifest %s v%llu is unsigned", m->name, (unsigned long long)m->version);
    return -EKEYREJECTED;
  }
  if (m->signer_cert_len) return verify_through_cert(m, pub, revoked);
  if (m->key_id != fd_ed25519_key_id(pub)) {
    fd_log_warn("manifest %s v%llu signed by key %016llx, not the trusted key", m->name,
                (unsigned long long)m->version, (unsigned long long)m->key_id);
    return -EKEYREJECTED;
  }
  return check_signature(m, pub);
}

static int sign(st_manifest_t *m, const fd_ed25519_key_t *key) {
  if (!key->has_private) return -EINVAL;
  m->key_id = fd_ed25519_key_id(key->pub);
  m->is_signed = false;
  uint8_t *buf;
  size_t len;
  int rc = encode(m, false, &buf, &len);
  if (rc) return rc;
  rc = fd_ed25519_sign(key, buf, len, m->signature);
  free(buf);
  if (rc) return rc;
  m->is_signed = true;
  return 0;
}

static void drop_cert(st_manifest_t *m) {
  free(m->signer_cert);
  m->signer_cert = NULL;
  m->signer_cert_len = 0;
}

int st_manifest_sign(st_manifest_t *m, const fd_ed25519_key_t *key) { return sign(m, key); }

int st_manifest_sign_cert(st_manifest_t *m, const fd_ed25519_key_t *key, const uint8_t *cert,
                          size_t cert_len) {
  fd_cert_t c;
  if (!key->has_private || fd_cert_decode(cert, cert_len, &c) != 0 ||
      memcmp(c.pub, key->pub, FD_ED25519_PUB_LEN) != 0)
    return -EINVAL;
  static_assert(FD_CERT_LEN_MAX <= ST_SIGNER_CERT_LEN_MAX, "a certificate fits");
  uint8_t *copy = malloc(cert_len);
  if (!copy) return -ENOMEM;
  memcpy(copy, cert, cert_len);
  drop_cert(m);
  m->signer_cert = copy;
  m->signer_cert_len = cert_len;
  return sign(m, key);
}

int st_manifest_new(const char *name, uint64_t version, uint64_t base_version,
                    uint64_t size_bytes, uint32_t chunk_size_bytes, st_manifest_t **out) {
  *out = NULL;
  int rc = check_shape(name, version, base_version, size_bytes, chunk_size_bytes);
  if (rc) return rc;
  st_manifest_t *m = alloc_manifest(chunk_count_for(size_bytes, chunk_size_bytes));
  if (!m) return -ENOMEM;
  memcpy(m->name, name, strlen(name) + 1);
  m->version = version;
  m->base_version = base_version;
  m->size_bytes = size_bytes;
  m->chunk_size_bytes = chunk_size_bytes;
  m->created_unix_s = fd_wall_s();
  *out = m;
  return 0;
}

int st_manifest_set_chunk(st_manifest_t *m, uint32_t index, const void *data, size_t len) {
  if (index >= m->chunk_count) return -ERANGE;
  if (len != st_manifest_chunk_len(m, index)) return -EMSGSIZE;
  fd_sha256(data, len, m->chunk_sha256 + (size_t)index * FD_SHA256_LEN);
  m->chunk_crc32c[index] = fd_crc32c(0, data, len);
  m->is_signed = false;
  return 0;
}

/* One hashing thread's share: entries [lo, hi) of the chunk list (chunk
 * indexes themselves when there is no list), read through its own
 * descriptor so each thread's reads are sequential to readahead. */
typedef struct hash_part {
  int dir_fd;
  const char *path;
  st_manifest_t *m;
  const uint32_t *chunks;
  uint32_t lo, hi;
  int rc;
} hash_part_t;

static void *hash_part(void *arg) {
  hash_part_t *b = arg;
  st_manifest_t *m = b->m;
  int fd = openat(b->dir_fd, b->path, O_RDONLY | O_CLOEXEC);
  uint8_t *buf = fd >= 0 ? malloc(m->chunk_size_bytes) : NULL;
  if (fd < 0 || !buf) {
    b->rc = fd < 0 ? -errno : -ENOMEM;
    goto out;
  }
  if (!b->chunks) {
    uint64_t off0 = (uint64_t)b->lo * m->chunk_size_bytes;
    posix_fadvise(fd, (off_t)off0, (off_t)((uint64_t)(b->hi - b->lo) * m->chunk_size_bytes),
                  POSIX_FADV_SEQUENTIAL);
  }
  for (uint32_t k = b->lo; k < b->hi; k++) {
    uint32_t i = b->chunks ? b->chunks[k] : k;
    uint32_t want = st_manifest_chunk_len(m, i), got = 0;
    while (got < want) {
      ssize_t r = pread(fd, buf + got, want - got, (off_t)((uint64_t)i * m->chunk_size_bytes + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        b->rc = r < 0 ? -errno : -EIO; /* the file shrank under us */
        goto out;
      }
      got += (uint32_t)r;
    }
    int rc = st_manifest_set_chunk(m, i, buf, want);
    FD_ASSERT(rc == 0);
  }
out:
  free(buf);
  if (fd >= 0) close(fd);
  return NULL;
}

int st_manifest_hash_chunks(st_manifest_t *m, int dir_fd, const char *path,
                            const uint32_t *chunks, uint32_t count) {
  FD_ASSERT(chunks || count == m->chunk_count);
  /* SHA-256 (about 1.2 GB/s a core) is the cost: one thread per online core
   * on contiguous ranges, each chunk's digest written only by its thread. */
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  uint32_t nt = (uint32_t)FD_MAX(1, FD_MIN(cpus, (long)FD_MANIFEST_BUILD_THREADS_MAX));
  nt = FD_MIN(nt, FD_MAX(1u, count));
  hash_part_t parts[FD_MANIFEST_BUILD_THREADS_MAX] = {0};
  pthread_t tids[FD_MANIFEST_BUILD_THREADS_MAX];
  uint32_t started = 0;
  for (uint32_t t = 0; t < nt; t++) {
    parts[t] = (hash_part_t){.dir_fd = dir_fd, .path = path, .m = m, .chunks = chunks,
                             .lo = (uint32_t)((uint64_t)count * t / nt),
                             .hi = (uint32_t)((uint64_t)count * (t + 1) / nt)};
    if (t == 0) continue; /* the calling thread does part 0 */
    if (pthread_create(&tids[t], NULL, hash_part, &parts[t]) != 0) break;
    started = t;
  }
  /* Parts whose thread did not start are done here, after part 0. */
  hash_part(&parts[0]);
  for (uint32_t t = started + 1; t < nt; t++) hash_part(&parts[t]);
  for (uint32_t t = 1; t <= started; t++) pthread_join(tids[t], NULL);
  int rc = 0;
  for (uint32_t t = 0; t < nt && rc == 0; t++) rc = parts[t].rc;
  return rc;
}

int st_manifest_build(const char *path, const char *name, uint64_t version,
                      uint64_t base_version, uint32_t chunk_size_bytes, st_manifest_t **out) {
  *out = NULL;
  struct stat sb;
  if (stat(path, &sb) != 0) return -errno;
  st_manifest_t *m;
  int rc = st_manifest_new(name, version, base_version, (uint64_t)sb.st_size, chunk_size_bytes, &m);
  if (rc) return rc;
  rc = st_manifest_hash_chunks(m, AT_FDCWD, path, NULL, m->chunk_count);
  if (rc) {
    st_manifest_free(m);
    return rc;
  }
  *out = m;
  return 0;
}
