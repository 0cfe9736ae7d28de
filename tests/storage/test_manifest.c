/* test_manifest.c — manifest encoding, validation, digest and Ed25519 signature checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "manifest.pb-c.h"
#include "storage.h"

#define CS (64u * 1024u)

static st_manifest_t *make(uint64_t size, uint8_t seed) {
  st_manifest_t *m;
  assert_int_equal(st_manifest_new("FileA", 3, 2, size, CS, &m), 0);
  uint8_t *buf = malloc(CS);
  for (uint32_t i = 0; i < m->chunk_count; i++) {
    memset(buf, seed + (int)i, CS);
    assert_int_equal(st_manifest_set_chunk(m, i, buf, st_manifest_chunk_len(m, i)), 0);
  }
  free(buf);
  return m;
}

static void test_roundtrip_and_digest(void **state) {
  (void)state;
  fd_ed25519_key_t key;
  assert_int_equal(fd_ed25519_generate(&key), 0);
  st_manifest_t *m = make(3 * CS + 100, 1);
  assert_int_equal(m->chunk_count, 4);
  assert_int_equal(st_manifest_chunk_len(m, 3), 100);
  uint8_t d_unsigned[32], d_signed[32], d_back[32];
  assert_int_equal(st_manifest_sign(m, &key), 0);
  assert_true(m->is_signed);
  assert_int_equal(st_manifest_digest(m, d_signed), 0);
  m->is_signed = false;
  assert_int_equal(st_manifest_digest(m, d_unsigned), 0);
  m->is_signed = true;
  /* The digest covers everything but the signature. */
  assert_memory_equal(d_unsigned, d_signed, 32);

  uint8_t *enc;
  size_t len;
  assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
  st_manifest_t *back;
  assert_int_equal(st_manifest_decode(enc, len, &back), 0);
  assert_string_equal(back->name, "FileA");
  assert_int_equal(back->version, 3);
  assert_int_equal(back->base_version, 2);
  assert_int_equal(back->size_bytes, 3 * CS + 100);
  assert_int_equal(back->chunk_size_bytes, CS);
  assert_int_equal(back->chunk_count, 4);
  assert_int_equal(back->key_id, fd_ed25519_key_id(key.pub));
  assert_int_equal(back->created_unix_s, m->created_unix_s);
  assert_memory_equal(back->chunk_sha256, m->chunk_sha256, 4 * 32);
  assert_memory_equal(back->chunk_crc32c, m->chunk_crc32c, 4 * 4);
  assert_memory_equal(back->signature, m->signature, 64);
  assert_int_equal(st_manifest_digest(back, d_back), 0);
  assert_memory_equal(d_back, d_signed, 32);
  assert_int_equal(st_manifest_verify(back, key.pub, NULL), 0);
  /* Re-encoding is byte-identical: the encoding is canonical. */
  uint8_t *enc2;
  size_t len2;
  assert_int_equal(st_manifest_encode(back, &enc2, &len2), 0);
  assert_int_equal(len2, len);
  assert_memory_equal(enc2, enc, len);
  free(enc);
  free(enc2);
  st_manifest_free(back);
  st_manifest_free(m);
}

static void test_signature_rejects(void **state) {
  (void)state;
  fd_ed25519_key_t key, other;
  assert_int_equal(fd_ed25519_generate(&key), 0);
  assert_int_equal(fd_ed25519_generate(&other), 0);
  st_manifest_t *m = make(2 * CS, 7);
  /* Unsigned. */
  assert_int_equal(st_manifest_verify(m, key.pub, NULL), -EKEYREJECTED);
  assert_int_equal(st_manifest_sign(m, &key), 0);
  assert_int_equal(st_manifest_verify(m, key.pub, NULL), 0);
  /* Another trusted key. */
  assert_int_equal(st_manifest_verify(m, other.pub, NULL), -EKEYREJECTED);
  /* Forged: a chunk digest changed after signing, through the wire. */
  uint8_t *enc;
  size_t len;
  m->chunk_sha256[5] ^= 1;
  assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
  st_manifest_t *forged;
  assert_int_equal(st_manifest_decode(enc, len, &forged), 0);
  assert_int_equal(st_manifest_verify(forged, key.pub, NULL), -EKEYREJECTED);
  st_manifest_free(forged);
  free(enc);
  m->chunk_sha256[5] ^= 1;
  /* Forged: the version bumped, signature kept. */
  m->version++;
  assert_int_equal(st_manifest_verify(m, key.pub, NULL), -EKEYREJECTED);
  m->version--;
  /* Forged: signed by another key, but claiming the trusted key's id. */
  assert_int_equal(st_manifest_sign(m, &other), 0);
  m->key_id = fd_ed25519_key_id(key.pub);
  assert_int_equal(st_manifest_verify(m, key.pub, NULL), -EKEYREJECTED);
  /* A public-only key cannot sign. */
  fd_ed25519_key_t pub_only = key;
  pub_only.has_private = false;
  assert_int_equal(st_manifest_sign(m, &pub_only), -EINVAL);
  st_manifest_free(m);
}

static int decode_pb(Fdist__Storage__Manifest *pb) {
  size_t n = fdist__storage__manifest__get_packed_size(pb);
  uint8_t *buf = malloc(n + 1);
  fdist__storage__manifest__pack(pb, buf);
  st_manifest_t *m = NULL;
  int rc = st_manifest_decode(buf, n, &m);
  st_manifest_free(m);
  free(buf);
  return rc;
}

static void test_decode_rejects(void **state) {
  (void)state;
  st_manifest_t *m;
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
  assert_int_equal(st_manifest_decode(junk, sizeof(junk), &m), -EBADMSG);
  assert_null(m);
  uint8_t sha[2 * 32] = {0};
  uint32_t crc[2] = {0};
  Fdist__Storage__Manifest good = FDIST__STORAGE__MANIFEST__INIT;
  char name_ok[] = "FileA", name_bad[] = "../etc", name_empty[] = "";
  good.name = name_ok;
  good.version = 2;
  good.size_bytes = CS + 1;
  good.chunk_size_bytes = CS;
  good.chunk_sha256.data = sha;
  good.chunk_sha256.len = sizeof(sha);
  good.chunk_crc32c = crc;
  good.n_chunk_crc32c = 2;
  assert_int_equal(decode_pb(&good), 0);
  Fdist__Storage__Manifest pb;
  pb = good, pb.name = name_bad;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.name = name_empty;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.version = 0;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.base_version = 2;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.chunk_size_bytes = CS + 4096;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.chunk_size_bytes = 32 * 1024;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.size_bytes = 0;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.size_bytes = FD_FILE_SIZE_MAX + 1;
  assert_int_equal(decode_pb(&pb), -EMSGSIZE);
  pb = good, pb.size_bytes = 3 * CS; /* 3 chunks, 2 digests */
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.n_chunk_crc32c = 1;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  pb = good, pb.chunk_sha256.len = 63;
  assert_int_equal(decode_pb(&pb), -EINVAL);
  uint8_t sig[10] = {0};
  pb = good, pb.signature.data = sig, pb.signature.len = sizeof(sig);
  assert_int_equal(decode_pb(&pb), -EINVAL);
  /* An unknown field (number 99) is not carried along unsigned. */
  size_t n = fdist__storage__manifest__get_packed_size(&good);
  uint8_t *buf = malloc(n + 3);
  fdist__storage__manifest__pack(&good, buf);
  buf[n] = 0x98, buf[n + 1] = 0x06, buf[n + 2] = 0x01;
  assert_int_equal(st_manifest_decode(buf, n + 3, &m), -EINVAL);
  free(buf);
}

static void test_builder_errors(void **state) {
  (void)state;
  st_manifest_t *m;
  assert_int_equal(st_manifest_new("bad/name", 1, 0, 10, CS, &m), -EINVAL);
  assert_int_equal(st_manifest_new("ok", 1, 0, 10, 1000, &m), -EINVAL);
  assert_int_equal(st_manifest_new("ok", 1, 0, 10, CS, &m), 0);
  uint8_t b[16] = {0};
  assert_int_equal(st_manifest_set_chunk(m, 1, b, 10), -ERANGE);
  assert_int_equal(st_manifest_set_chunk(m, 0, b, 11), -EMSGSIZE);
  assert_int_equal(st_manifest_set_chunk(m, 0, b, 10), 0);
  st_manifest_free(m);
  assert_int_equal(st_manifest_build("/nonexistent/file", "ok", 1, 0, CS, &m), -ENOENT);
  assert_false(st_name_valid(".hidden"));
  assert_true(st_name_valid("File_A-1.bin"));
}

/* st_manifest_build splits the file among threads: every chunk, the short
 * last one too, must get the digests st_manifest_set_chunk gives it alone. */
static void test_build_matches_set_chunk(void **state) {
  (void)state;
  enum { CHUNKS = 37 };
  size_t size = (size_t)CHUNKS * CS - 123;
  uint8_t *data = malloc(size);
  assert_non_null(data);
  for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
  char path[] = "/var/tmp/fd-st-build-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, size), (ssize_t)size);
  close(fd);
  st_manifest_t *built, *ref;
  assert_int_equal(st_manifest_build(path, "F", 2, 1, CS, &built), 0);
  unlink(path);
  assert_int_equal(st_manifest_new("F", 2, 1, size, CS, &ref), 0);
  assert_int_equal(built->chunk_count, CHUNKS);
  for (uint32_t i = 0; i < CHUNKS; i++)
    assert_int_equal(st_manifest_set_chunk(ref, i, data + (size_t)i * CS,
                                           st_manifest_chunk_len(ref, i)), 0);
  assert_memory_equal(built->chunk_sha256, ref->chunk_sha256, (size_t)CHUNKS * FD_SHA256_LEN);
  assert_memory_equal(built->chunk_crc32c, ref->chunk_crc32c, CHUNKS * sizeof(uint32_t));
  st_manifest_free(built);
  st_manifest_free(ref);
  free(data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_matches_set_chunk),
      cmocka_unit_test(test_roundtrip_and_digest),
      cmocka_unit_test(test_signature_rejects),
      cmocka_unit_test(test_decode_rejects),
      cmocka_unit_test(test_builder_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
