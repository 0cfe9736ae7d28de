/* nd_signer.c — the origin group's signing key and its certificate (nd_signer.h). */
#include "nd_signer.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fd_error.h"
#include "fd_log.h"

int nd_signer_load(nd_signer_t *s, const char *key_path, const char *cert_path,
                   const uint8_t admin_pub[FD_ED25519_PUB_LEN], const fd_cert_revlist_t *revoked,
                   uint64_t now_unix_s) {
  memset(s, 0, sizeof(*s));
  int rc = fd_ed25519_load(key_path, &s->key);
  if (rc == 0 && !s->key.has_private) rc = -EINVAL;
  if (rc) {
    fd_log_error("signing_key_file %s: %s", key_path,
                 rc == -EINVAL ? "not an Ed25519 private key" : fd_strerror(rc));
    goto out_wipe;
  }
  rc = fd_cert_load(cert_path, &s->cert, s->cert_raw, &s->cert_len);
  if (rc) {
    fd_log_error("signing_cert_file %s: %s", cert_path,
                 rc == -EBADMSG ? "not a certificate" : fd_strerror(rc));
    goto out_wipe;
  }
  if (memcmp(s->cert.pub, s->key.pub, FD_ED25519_PUB_LEN) != 0) {
    fd_log_error("signing_cert_file %s certifies key %016" PRIx64
                 ", not the signing key %016" PRIx64,
                 cert_path, s->cert.key_id, fd_ed25519_key_id(s->key.pub));
    rc = -EINVAL;
    goto out_wipe;
  }
  if ((rc = nd_signer_check(s, admin_pub, revoked, now_unix_s)) != 0) {
    fd_log_error("signing_cert_file %s: refused (%s)", cert_path, fd_strerror(rc));
    goto out_wipe;
  }
  char line[256];
  fd_cert_describe(&s->cert, line, sizeof(line));
  fd_log_info("signing key: %s", line);
  return 0;
out_wipe:
  nd_signer_wipe(s);
  return rc;
}

int nd_signer_check(const nd_signer_t *s, const uint8_t admin_pub[FD_ED25519_PUB_LEN],
                    const fd_cert_revlist_t *revoked, uint64_t now_unix_s) {
  return fd_cert_verify(&s->cert, FD_CERT_ROLE_ORIGIN, admin_pub, now_unix_s, revoked);
}

int nd_signer_sign(const nd_signer_t *s, st_manifest_t *m) {
  return st_manifest_sign_cert(m, &s->key, s->cert_raw, s->cert_len);
}

void nd_signer_wipe(nd_signer_t *s) { explicit_bzero(s, sizeof(*s)); }
