/* fd_hash.c — CRC32C via ISA-L; SHA-256, HMAC and Ed25519 via OpenSSL libcrypto. */
#include "fd_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"

uint32_t fd_crc32c(uint32_t crc, const void *buf, size_t len) {
  /* ISA-L's crc32_iscsi works on the raw register: invert on the way in and
   * out to get the standard (RFC 3720) value, and chain through int-sized
   * pieces because it takes an int length. */
  const unsigned char *p = buf;
  uint32_t reg = ~crc;
  while (len > 0) {
    int piece = len > (size_t)INT_MAX ? INT_MAX & ~4095 : (int)len;
    reg = crc32_iscsi((unsigned char *)p, piece, reg);
    p += piece;
    len -= (size_t)piece;
  }
  return ~reg;
}

void fd_sha256(const void *buf, size_t len, uint8_t out[FD_SHA256_LEN]) {
  unsigned int n = 0;
  int ok = EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL);
  FD_ASSERT(ok == 1 && n == FD_SHA256_LEN);
}

struct fd_sha256_ctx {
  EVP_MD_CTX *md;
};

fd_sha256_ctx_t *fd_sha256_create(void) {
  fd_sha256_ctx_t *ctx = malloc(sizeof(*ctx));
  if (!ctx) return NULL;
  ctx->md = EVP_MD_CTX_new();
  if (!ctx->md || EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
    return NULL;
  }
  return ctx;
}

void fd_sha256_update(fd_sha256_ctx_t *ctx, const void *buf, size_t len) {
  int ok = EVP_DigestUpdate(ctx->md, buf, len);
  FD_ASSERT(ok == 1);
}

void fd_sha256_final(fd_sha256_ctx_t *ctx, uint8_t out[FD_SHA256_LEN]) {
  unsigned int n = 0;
  int ok = EVP_DigestFinal_ex(ctx->md, out, &n);
  FD_ASSERT(ok == 1 && n == FD_SHA256_LEN);
  ok = EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL);
  FD_ASSERT(ok == 1);
}

void fd_sha256_destroy(fd_sha256_ctx_t *ctx) {
  if (!ctx) return;
  EVP_MD_CTX_free(ctx->md);
  free(ctx);
}

int fd_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                   uint8_t out[FD_SHA256_LEN]) {
  if (key_len == 0 || key_len > FD_HMAC_KEY_LEN_MAX) return -EINVAL;
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &n) || n != FD_SHA256_LEN)
    return -EINVAL;
  return 0;
}

bool fd_ct_equal(const void *a, const void *b, size_t len) {
  return CRYPTO_memcmp(a, b, len) == 0;
}

void fd_hex_encode(const uint8_t *in, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * len] = '\0';
}

static int hex_nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int fd_hex_decode(const char *in, uint8_t *out, size_t out_len) {
  size_t n = strlen(in);
  if (n % 2 != 0 || n / 2 > out_len) return -EINVAL;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hex_nibble(in[2 * i]), lo = hex_nibble(in[2 * i + 1]);
    if (hi < 0 || lo < 0) return -EINVAL;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return (int)(n / 2);
}

int fd_random_bytes(void *buf, size_t len) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Fills key->pub (and key->seed when pkey holds a private key). */
static int key_from_pkey(EVP_PKEY *pkey, bool is_private, fd_ed25519_key_t *key) {
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) return -EINVAL;
  memset(key, 0, sizeof(*key));
  size_t n = FD_ED25519_PUB_LEN;
  if (EVP_PKEY_get_raw_public_key(pkey, key->pub, &n) != 1 || n != FD_ED25519_PUB_LEN)
    return -EINVAL;
  if (is_private) {
    n = sizeof(key->seed);
    if (EVP_PKEY_get_raw_private_key(pkey, key->seed, &n) != 1 || n != sizeof(key->seed))
      return -EINVAL;
    key->has_private = true;
  }
  return 0;
}

int fd_ed25519_generate(fd_ed25519_key_t *key) {
  uint8_t seed[32];
  int rc = fd_random_bytes(seed, sizeof(seed));
  if (rc < 0) return rc;
  EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
  if (!pkey) return -EINVAL;
  rc = key_from_pkey(pkey, true, key);
  EVP_PKEY_free(pkey);
  return rc;
}

int fd_ed25519_load(const char *path, fd_ed25519_key_t *key) {
  FILE *f = fopen(path, "r");
  if (!f) return -errno;
  char text[8192];
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = '\0';

  /* 64 hex digits: a raw public key. */
  char *end = text + strlen(text);
  while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ')) *--end = '\0';
  if (strlen(text) == 2 * (size_t)FD_ED25519_PUB_LEN) {
    memset(key, 0, sizeof(*key));
    return fd_hex_decode(text, key->pub, sizeof(key->pub)) == FD_ED25519_PUB_LEN ? 0 : -EINVAL;
  }

  bool is_private = strstr(text, "PRIVATE KEY") != NULL;
  BIO *bio = BIO_new_mem_buf(text, (int)strlen(text));
  if (!bio) return -ENOMEM;
  EVP_PKEY *pkey = is_private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                              : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (!pkey) return -EINVAL;
  int rc = key_from_pkey(pkey, is_private, key);
  EVP_PKEY_free(pkey);
  return rc;
}

static int write_pem(const char *path, mode_t mode, EVP_PKEY *pkey, bool is_private) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    int err = -errno;
    close(fd);
    return err;
  }
  int ok = is_private ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)
                      : PEM_write_PUBKEY(f, pkey);
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
  fclose(f);
  return ok == 1 ? 0 : -EIO;
}

int fd_ed25519_save(const fd_ed25519_key_t *key, const char *private_path,
                    const char *public_path) {
  if (!key->has_private) return -EINVAL;
  EVP_PKEY *pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, key->seed, sizeof(key->seed));
  if (!pkey) return -EINVAL;
  int rc = write_pem(private_path, 0600, pkey, true);
  if (rc == 0 && public_path) rc = write_pem(public_path, 0644, pkey, false);
  EVP_PKEY_free(pkey);
  return rc;
}

int fd_ed25519_sign(const fd_ed25519_key_t *key, const void *msg, size_t len,
                    uint8_t sig[FD_ED25519_SIG_LEN]) {
  if (!key->has_private) return -EINVAL;
  EVP_PKEY *pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, key->seed, sizeof(key->seed));
  if (!pkey) return -EINVAL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t n = FD_ED25519_SIG_LEN;
  int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, pkey) == 1 &&
           EVP_DigestSign(md, sig, &n, msg, len) == 1 && n == FD_ED25519_SIG_LEN;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pkey);
  return ok ? 0 : -EINVAL;
}

int fd_ed25519_verify(const uint8_t pub[FD_ED25519_PUB_LEN], const void *msg, size_t len,
                      const uint8_t sig[FD_ED25519_SIG_LEN]) {
  EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, FD_ED25519_PUB_LEN);
  if (!pkey) return -EKEYREJECTED;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
           EVP_DigestVerify(md, sig, FD_ED25519_SIG_LEN, msg, len) == 1;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pkey);
  return ok ? 0 : -EKEYREJECTED;
}

uint64_t fd_ed25519_key_id(const uint8_t pub[FD_ED25519_PUB_LEN]) {
  uint8_t digest[FD_SHA256_LEN];
  fd_sha256(pub, FD_ED25519_PUB_LEN, digest);
  uint64_t id = 0;
  for (int i = 0; i < 8; i++) id = id << 8 | digest[i];
  return id;
}
