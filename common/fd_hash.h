/*
 * fd_hash.h — checksums and cryptography, each from the library made for it.
 *
 * CRC32C (Castagnoli) through ISA-L, for cheap per-chunk and per-frame
 * integrity; SHA-256 through OpenSSL (SHA-NI), for content identity against
 * the signed manifest; HMAC-SHA256 for the cluster-key handshake; Ed25519 for
 * manifest and admin signatures. Nothing here allocates on the data path
 * except the streaming SHA-256 context, created once per stream.
 */
#ifndef FD_HASH_H
#define FD_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_limits.h"

/* CRC32C, the standard one: fd_crc32c(0, "123456789", 9) == 0xE3069283.
 * Chain calls by passing the previous result as crc. */
uint32_t fd_crc32c(uint32_t crc, const void *buf, size_t len);

/* One-shot SHA-256. */
void fd_sha256(const void *buf, size_t len, uint8_t out[FD_SHA256_LEN]);

/* Streaming SHA-256; the caller owns the context and frees it with _destroy. */
typedef struct fd_sha256_ctx fd_sha256_ctx_t;
fd_sha256_ctx_t *fd_sha256_create(void);
void fd_sha256_update(fd_sha256_ctx_t *ctx, const void *buf, size_t len);
void fd_sha256_final(fd_sha256_ctx_t *ctx, uint8_t out[FD_SHA256_LEN]); /* also resets */
void fd_sha256_destroy(fd_sha256_ctx_t *ctx);

/* HMAC-SHA256. Returns 0 or -EINVAL. */
int fd_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                   uint8_t out[FD_SHA256_LEN]);

/* Constant-time comparison. */
bool fd_ct_equal(const void *a, const void *b, size_t len);

/* Hex: out holds 2 * len + 1 bytes. fd_hex_decode returns bytes or -EINVAL. */
void fd_hex_encode(const uint8_t *in, size_t len, char *out);
int fd_hex_decode(const char *in, uint8_t *out, size_t out_len);

/* Ed25519. A private key is its 32-byte seed; keys are stored as PEM files
 * (openssl genpkey -algorithm ed25519) or as 64 hex digits. */
typedef struct fd_ed25519_key {
  uint8_t pub[FD_ED25519_PUB_LEN];
  uint8_t seed[32];
  bool has_private;
} fd_ed25519_key_t;

/* Makes a fresh key pair from the OS's random source. */
int fd_ed25519_generate(fd_ed25519_key_t *key);
/* Loads a private (PEM "PRIVATE KEY") or public (PEM "PUBLIC KEY", or hex)
 * key file. -ENOENT, -EACCES, -EINVAL (not an Ed25519 key). */
int fd_ed25519_load(const char *path, fd_ed25519_key_t *key);
/* Writes the private key as PKCS#8 PEM with mode 0600 and the public key
 * beside it as PEM. */
int fd_ed25519_save(const fd_ed25519_key_t *key, const char *private_path,
                    const char *public_path);
int fd_ed25519_sign(const fd_ed25519_key_t *key, const void *msg, size_t len,
                    uint8_t sig[FD_ED25519_SIG_LEN]);
/* 0 when sig is key's signature of msg, -EKEYREJECTED otherwise. */
int fd_ed25519_verify(const uint8_t pub[FD_ED25519_PUB_LEN], const void *msg, size_t len,
                      const uint8_t sig[FD_ED25519_SIG_LEN]);
/* Key id: the first 8 bytes of SHA-256(pub), big-endian. */
uint64_t fd_ed25519_key_id(const uint8_t pub[FD_ED25519_PUB_LEN]);

/* Fills buf from the OS's random source; 0 or -errno. */
int fd_random_bytes(void *buf, size_t len);

#endif /* FD_HASH_H */
