/* test_hash.c — CRC32C, SHA-256, HMAC and Ed25519 against published vectors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_hash.h"

static void test_crc32c_check_value(void **state) {
  (void)state;
  /* The CRC-32C check value (RFC 3720 appendix B.4 / the CRC catalogue). */
  assert_int_equal(fd_crc32c(0, "123456789", 9), 0xE3069283u);
  /* 32 bytes of zeros, RFC 3720 B.4. */
  uint8_t zeros[32] = {0};
  assert_int_equal(fd_crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu);
  assert_int_equal(fd_crc32c(0, "", 0), 0u);
}

static void test_crc32c_chains(void **state) {
  (void)state;
  uint8_t buf[10000];
  for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (uint8_t)(i * 31 + 7);
  uint32_t whole = fd_crc32c(0, buf, sizeof(buf));
  uint32_t part = fd_crc32c(0, buf, 1234);
  part = fd_crc32c(part, buf + 1234, sizeof(buf) - 1234);
  assert_int_equal(whole, part);
  buf[5000] ^= 1;
  assert_int_not_equal(whole, fd_crc32c(0, buf, sizeof(buf)));
}

static void test_sha256_vectors(void **state) {
  (void)state;
  uint8_t d[FD_SHA256_LEN];
  char hex[2 * FD_SHA256_LEN + 1];
  fd_sha256("abc", 3, d);
  fd_hex_encode(d, sizeof(d), hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  /* Streaming over the FIPS 180-2 two-block message gives the same digest. */
  const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  fd_sha256_ctx_t *ctx = fd_sha256_create();
  assert_non_null(ctx);
  fd_sha256_update(ctx, msg, 10);
  fd_sha256_update(ctx, msg + 10, strlen(msg) - 10);
  fd_sha256_final(ctx, d);
  fd_hex_encode(d, sizeof(d), hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* final resets the context for the next message. */
  fd_sha256_update(ctx, "abc", 3);
  fd_sha256_final(ctx, d);
  fd_hex_encode(d, sizeof(d), hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  fd_sha256_destroy(ctx);
}

static void test_hmac_rfc4231(void **state) {
  (void)state;
  /* RFC 4231 test case 2. */
  uint8_t mac[FD_SHA256_LEN];
  char hex[2 * FD_SHA256_LEN + 1];
  assert_int_equal(fd_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
  fd_hex_encode(mac, sizeof(mac), hex);
  assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  assert_int_equal(fd_hmac_sha256("", 0, "x", 1, mac), -EINVAL);
}

static void test_hex_roundtrip(void **state) {
  (void)state;
  uint8_t in[4] = {0x00, 0xab, 0x10, 0xff}, out[4];
  char hex[9];
  fd_hex_encode(in, 4, hex);
  assert_string_equal(hex, "00ab10ff");
  assert_int_equal(fd_hex_decode(hex, out, sizeof(out)), 4);
  assert_memory_equal(in, out, 4);
  assert_int_equal(fd_hex_decode("0g", out, sizeof(out)), -EINVAL);
  assert_int_equal(fd_hex_decode("abc", out, sizeof(out)), -EINVAL);
  assert_int_equal(fd_hex_decode("0011223344", out, sizeof(out)), -EINVAL);
}

static void test_ed25519_rfc8032(void **state) {
  (void)state;
  /* RFC 8032 section 7.1, TEST 1: empty message. */
  fd_ed25519_key_t key = {.has_private = true};
  assert_int_equal(
      fd_hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", key.seed,
                    32),
      32);
  uint8_t pub[32];
  fd_hex_decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub, 32);
  memcpy(key.pub, pub, 32);
  uint8_t sig[FD_ED25519_SIG_LEN];
  assert_int_equal(fd_ed25519_sign(&key, "", 0, sig), 0);
  char hex[2 * FD_ED25519_SIG_LEN + 1];
  fd_hex_encode(sig, sizeof(sig), hex);
  assert_string_equal(hex,
                      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                      "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  assert_int_equal(fd_ed25519_verify(pub, "", 0, sig), 0);
  sig[0] ^= 1;
  assert_int_equal(fd_ed25519_verify(pub, "", 0, sig), -EKEYREJECTED);
}

static void test_ed25519_generate_save_load(void **state) {
  (void)state;
  char dir[] = "/tmp/fd-test-keys-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char priv[128], pub[128];
  snprintf(priv, sizeof(priv), "%s/admin.key", dir);
  snprintf(pub, sizeof(pub), "%s/admin.pub", dir);

  fd_ed25519_key_t key, loaded_priv, loaded_pub;
  assert_int_equal(fd_ed25519_generate(&key), 0);
  assert_int_equal(fd_ed25519_save(&key, priv, pub), 0);
  assert_int_equal(fd_ed25519_load(priv, &loaded_priv), 0);
  assert_true(loaded_priv.has_private);
  assert_memory_equal(loaded_priv.pub, key.pub, 32);
  assert_int_equal(fd_ed25519_load(pub, &loaded_pub), 0);
  assert_false(loaded_pub.has_private);
  assert_memory_equal(loaded_pub.pub, key.pub, 32);
  assert_int_equal(fd_ed25519_key_id(key.pub), fd_ed25519_key_id(loaded_pub.pub));

  const char *msg = "manifest bytes";
  uint8_t sig[FD_ED25519_SIG_LEN];
  assert_int_equal(fd_ed25519_sign(&loaded_priv, msg, strlen(msg), sig), 0);
  assert_int_equal(fd_ed25519_verify(loaded_pub.pub, msg, strlen(msg), sig), 0);
  assert_int_equal(fd_ed25519_verify(loaded_pub.pub, "manifest bytez", strlen(msg), sig),
                   -EKEYREJECTED);
  /* A public key cannot sign. */
  assert_int_equal(fd_ed25519_sign(&loaded_pub, msg, strlen(msg), sig), -EINVAL);
  /* A file that is not a key. */
  FILE *f = fopen(pub, "w");
  fputs("not a key\n", f);
  fclose(f);
  assert_int_equal(fd_ed25519_load(pub, &loaded_pub), -EINVAL);
  assert_int_equal(fd_ed25519_load("/nonexistent/key", &loaded_pub), -ENOENT);

  unlink(priv);
  unlink(pub);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32c_check_value), cmocka_unit_test(test_crc32c_chains),
      cmocka_unit_test(test_sha256_vectors),     cmocka_unit_test(test_hmac_rfc4231),
      cmocka_unit_test(test_hex_roundtrip),      cmocka_unit_test(test_ed25519_rfc8032),
      cmocka_unit_test(test_ed25519_generate_save_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
