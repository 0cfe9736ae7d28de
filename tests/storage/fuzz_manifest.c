/* fuzz_manifest.c — libFuzzer: manifest decoding and validation never crash, and what decodes re-encodes to the same digest and never verifies unsigned. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "storage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed key nobody holds the private half of in the corpus. */
static const uint8_t trusted_pub[FD_ED25519_PUB_LEN] = {
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fd_log_init("fuzz_manifest", FD_LOG_ERROR);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_manifest_t *m;
  if (st_manifest_decode(data, size, &m) != 0) return 0;
  FD_ASSERT(st_name_valid(m->name));
  FD_ASSERT(m->chunk_count == (m->size_bytes + m->chunk_size_bytes - 1) / m->chunk_size_bytes);
  uint64_t total = 0;
  for (uint32_t i = 0; i < m->chunk_count; i++) {
    uint32_t len = st_manifest_chunk_len(m, i);
    FD_ASSERT(len > 0 && len <= m->chunk_size_bytes);
    total += len;
  }
  FD_ASSERT(total == m->size_bytes);
  uint8_t d1[FD_SHA256_LEN], d2[FD_SHA256_LEN];
  FD_ASSERT(st_manifest_digest(m, d1) == 0);
  uint8_t *enc;
  size_t len;
  FD_ASSERT(st_manifest_encode(m, &enc, &len) == 0);
  st_manifest_t *back;
  FD_ASSERT(st_manifest_decode(enc, len, &back) == 0);
  FD_ASSERT(st_manifest_digest(back, d2) == 0);
  FD_ASSERT(memcmp(d1, d2, FD_SHA256_LEN) == 0);
  FD_ASSERT(back->is_signed == m->is_signed);
  /* Without the private key, nothing the fuzzer builds may verify. */
  FD_ASSERT(st_manifest_verify(m, trusted_pub, NULL) == -EKEYREJECTED);
  st_manifest_free(back);
  free(enc);
  st_manifest_free(m);
  return 0;
}
