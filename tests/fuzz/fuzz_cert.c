/* fuzz_cert — the certificate and revocation-list decoders (common/fd_cert.h),
 * each tried on every input (each checks its own magic). Invariants: what
 * decodes re-encodes to exactly the input (one encoding per content); a
 * decoded list holds strictly ascending ids and finds each of them; nothing
 * verifies against a fixed key whose private half nobody holds; describing a
 * certificate stays within its buffer. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_cert.h"
#include "fd_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t trusted_pub[FD_ED25519_PUB_LEN] = {
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fd_log_init("fuzz_cert", FD_LOG_ERROR);
  return 0;
}

static void cert(const uint8_t *data, size_t size) {
  fd_cert_t c;
  if (fd_cert_decode(data, size, &c) != 0) return;
  uint8_t back[FD_CERT_LEN_MAX];
  size_t len = 0;
  FD_ASSERT(fd_cert_encode(&c, back, sizeof(back), &len) == 0);
  FD_ASSERT(len == size && memcmp(back, data, size) == 0);
  FD_ASSERT(fd_cert_subject_valid(c.subject));
  FD_ASSERT(c.key_id == fd_ed25519_key_id(c.pub));
  int rc = fd_cert_verify(&c, c.role, trusted_pub, c.not_before_unix_s, NULL);
  FD_ASSERT(rc == -EKEYREJECTED);
  char line[48]; /* short on purpose: describe truncates */
  fd_cert_describe(&c, line, sizeof(line));
  FD_ASSERT(strlen(line) < sizeof(line));
}

static void revlist(const uint8_t *data, size_t size) {
  static fd_cert_revlist_t l;
  if (fd_cert_revlist_decode(data, size, &l) != 0) return;
  static uint8_t back[FD_CERT_REVLIST_LEN_MAX];
  size_t len = 0;
  FD_ASSERT(fd_cert_revlist_encode(&l, back, sizeof(back), &len) == 0);
  FD_ASSERT(len == size && memcmp(back, data, size) == 0);
  FD_ASSERT(l.serial >= 1 && l.count <= FD_CERT_REVOKED_MAX);
  for (uint32_t i = 0; i < l.count; i++) {
    FD_ASSERT(i == 0 || l.key_ids[i - 1] < l.key_ids[i]);
    FD_ASSERT(fd_cert_revlist_has(&l, l.key_ids[i]));
  }
  FD_ASSERT(fd_cert_revlist_verify(&l, trusted_pub) == -EKEYREJECTED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cert(data, size);
  revlist(data, size);
  return 0;
}
