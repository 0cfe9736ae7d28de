/*
 * nd_signer.h — the origin group's signing key, as the host hands it to the
 * origin role (prefix nd_signer_).
 *
 * Every origin of the group holds the same Ed25519 key and the admin's
 * certificate for it (role origin): Ed25519 signatures are deterministic, so
 * the manifests the origins merge from the same changes are byte-identical
 * and their digests agree. The host (nd_node.c) loads both from
 * node.signing_key_file and node.signing_cert_file at start and refuses to
 * start unless the certificate is the admin's, for role origin, valid now,
 * not revoked, and certifies this very key; the origin role gets a const
 * pointer and signs with nd_signer_sign. Only the host and the origin role
 * ever see the private key; no other layer is given it.
 *
 * Memory: a plain value owned by the host; nd_signer_wipe clears the key.
 */
#ifndef ND_SIGNER_H
#define ND_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_cert.h"
#include "storage.h"

typedef struct nd_signer {
  fd_ed25519_key_t key;            /* private */
  fd_cert_t cert;                  /* decoded */
  uint8_t cert_raw[FD_CERT_LEN_MAX];
  size_t cert_len;
} nd_signer_t;

/* Loads the key and its certificate and checks them (see above) against the
 * trusted admin key, the revocation list in force (may be NULL) and
 * now_unix_s. 0; -errno of reading; -EINVAL (the key file holds no private
 * key, or the certificate is for another key); -EBADMSG (not a
 * certificate); -EKEYREJECTED, -EKEYEXPIRED, -EKEYREVOKED. Each failure is
 * logged with the file it concerns. */
int nd_signer_load(nd_signer_t *s, const char *key_path, const char *cert_path,
                   const uint8_t admin_pub[FD_ED25519_PUB_LEN], const fd_cert_revlist_t *revoked,
                   uint64_t now_unix_s);
/* The certificate against a newer list or a later time (the host calls it
 * when the revocation list changes): 0 or the fd_cert_verify error. */
int nd_signer_check(const nd_signer_t *s, const uint8_t admin_pub[FD_ED25519_PUB_LEN],
                    const fd_cert_revlist_t *revoked, uint64_t now_unix_s);
/* Signs m with the key and attaches the certificate (st_manifest_sign_cert). */
int nd_signer_sign(const nd_signer_t *s, st_manifest_t *m);
/* The signer of a merge (st_merge_build's o->signer): the key and this
 * certificate, valid while s is. */
static inline st_merge_signer_t nd_signer_merge(const nd_signer_t *s) {
  return (st_merge_signer_t){.key = &s->key, .cert = s->cert_raw, .cert_len = s->cert_len};
}
void nd_signer_wipe(nd_signer_t *s);

#endif /* ND_SIGNER_H */
