/* test_manifest_cert.c — manifests signed through an origin certificate: accepted like the admin's own, and each way one is refused, in st_manifest_verify and in the store (its revocation list updated in place). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_log.h"
#include "fd_time.h"
#include "manifest.pb-c.h"
#include "st_test_util.h"

#define CS (64u * 1024u)

static fd_ed25519_key_t admin, other_admin, origin, other;

static int setup(void **state) {
  (void)state;
  if (fd_ed25519_generate(&admin) || fd_ed25519_generate(&other_admin) ||
      fd_ed25519_generate(&origin) || fd_ed25519_generate(&other))
    return -1;
  return 0;
}

/* An encoded certificate of key for role, valid from..to (unix s), by signer. */
static size_t cert_for(const fd_ed25519_key_t *key, fd_cert_role_t role, uint64_t from, uint64_t to,
                       const fd_ed25519_key_t *signer, uint8_t out[FD_CERT_LEN_MAX]) {
  fd_cert_t c = {.role = role, .not_before_unix_s = from, .not_after_unix_s = to};
  snprintf(c.subject, sizeof(c.subject), "origin-group");
  memcpy(c.pub, key->pub, FD_ED25519_PUB_LEN);
  assert_int_equal(fd_cert_sign(&c, signer), 0);
  size_t len;
  assert_int_equal(fd_cert_encode(&c, out, FD_CERT_LEN_MAX, &len), 0);
  return len;
}

static size_t good_cert(uint8_t out[FD_CERT_LEN_MAX]) {
  uint64_t now = fd_wall_s();
  return cert_for(&origin, FD_CERT_ROLE_ORIGIN, now - 3600, now + 3600, &admin, out);
}

static st_manifest_t *make(uint64_t version) {
  st_manifest_t *m;
  assert_int_equal(st_manifest_new("F", version, version - 1, 2 * CS + 5, CS, &m), 0);
  uint8_t *buf = calloc(1, CS);
  for (uint32_t i = 0; i < m->chunk_count; i++) {
    memset(buf, (int)(version * 7 + i), CS);
    assert_int_equal(st_manifest_set_chunk(m, i, buf, st_manifest_chunk_len(m, i)), 0);
  }
  free(buf);
  m->created_unix_s = 1700000000u + version;
  return m;
}

/* m through its encoding, as a node receives it. */
static st_manifest_t *wire(const st_manifest_t *m) {
  uint8_t *enc;
  size_t len;
  assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
  st_manifest_t *back;
  assert_int_equal(st_manifest_decode(enc, len, &back), 0);
  free(enc);
  return back;
}

static int verify_wire(const st_manifest_t *m, const fd_cert_revlist_t *rev) {
  st_manifest_t *back = wire(m);
  int rc = st_manifest_verify(back, admin.pub, rev);
  st_manifest_free(back);
  return rc;
}

static void test_accepted(void **state) {
  (void)state;
  /* The admin's own signature, as before. */
  st_manifest_t *m = make(2);
  assert_int_equal(st_manifest_sign(m, &admin), 0);
  assert_int_equal(verify_wire(m, NULL), 0);
  /* Through a valid origin certificate. */
  uint8_t cert[FD_CERT_LEN_MAX];
  size_t cert_len = good_cert(cert);
  uint8_t d_admin[FD_SHA256_LEN], d_cert[FD_SHA256_LEN];
  assert_int_equal(st_manifest_digest(m, d_admin), 0);
  assert_int_equal(st_manifest_sign_cert(m, &origin, cert, cert_len), 0);
  assert_int_equal(m->key_id, fd_ed25519_key_id(origin.pub));
  assert_int_equal(verify_wire(m, NULL), 0);
  st_manifest_t *back = wire(m);
  assert_int_equal(back->signer_cert_len, cert_len);
  assert_memory_equal(back->signer_cert, cert, cert_len);
  /* The digest covers the certificate. */
  assert_int_equal(st_manifest_digest(back, d_cert), 0);
  assert_memory_not_equal(d_admin, d_cert, FD_SHA256_LEN);
  /* Every origin holding the key signs the same bytes (Ed25519 is deterministic). */
  st_manifest_t *m2 = make(2);
  assert_int_equal(st_manifest_sign_cert(m2, &origin, cert, cert_len), 0);
  uint8_t *e1, *e2;
  size_t l1, l2;
  assert_int_equal(st_manifest_encode(m, &e1, &l1), 0);
  assert_int_equal(st_manifest_encode(m2, &e2, &l2), 0);
  assert_int_equal(l1, l2);
  assert_memory_equal(e1, e2, l1);
  free(e1);
  free(e2);
  /* A list revoking other keys changes nothing. */
  fd_cert_revlist_t rev;
  fd_cert_revlist_init(&rev);
  assert_int_equal(fd_cert_revlist_add(&rev, fd_ed25519_key_id(other.pub)), 0);
  assert_int_equal(verify_wire(m, &rev), 0);
  /* A manifest that carries a certificate is the certified key's to sign:
   * signed by the admin key with it attached, it is refused (the key id is
   * not the certificate's). */
  assert_int_equal(st_manifest_sign(m, &admin), 0);
  assert_int_equal(m->signer_cert_len, cert_len);
  assert_int_equal(verify_wire(m, &rev), -EKEYREJECTED);
  st_manifest_free(back);
  st_manifest_free(m2);
  st_manifest_free(m);
}

static void test_refused(void **state) {
  (void)state;
  uint64_t now = fd_wall_s();
  uint8_t cert[FD_CERT_LEN_MAX];
  size_t len;
  st_manifest_t *m = make(3);

  /* Expired, and not valid yet. */
  len = cert_for(&origin, FD_CERT_ROLE_ORIGIN, now - 7200, now - 3600, &admin, cert);
  assert_int_equal(st_manifest_sign_cert(m, &origin, cert, len), 0);
  assert_int_equal(verify_wire(m, NULL), -EKEYEXPIRED);
  len = cert_for(&origin, FD_CERT_ROLE_ORIGIN, now + 3600, now + 7200, &admin, cert);
  assert_int_equal(st_manifest_sign_cert(m, &origin, cert, len), 0);
  assert_int_equal(verify_wire(m, NULL), -EKEYEXPIRED);

  /* Revoked. */
  len = good_cert(cert);
  assert_int_equal(st_manifest_sign_cert(m, &origin, cert, len), 0);
  fd_cert_revlist_t rev;
  fd_cert_revlist_init(&rev);
  assert_int_equal(fd_cert_revlist_add(&rev, fd_ed25519_key_id(origin.pub)), 0);
  assert_int_equal(verify_wire(m, &rev), -EKEYREVOKED);
  assert_true(fd_cert_is_trust_error(-EKEYREVOKED));

  /* A writer's certificate cannot sign versions. */
  len = cert_for(&origin, FD_CERT_ROLE_WRITER, now - 3600, now + 3600, &admin, cert);
  assert_int_equal(st_manifest_sign_cert(m, &origin, cert, len), 0);
  assert_int_equal(verify_wire(m, NULL), -EKEYREJECTED);

  /* A certificate signed by another admin key. */
  len = cert_for(&origin, FD_CERT_ROLE_ORIGIN, now - 3600, now + 3600, &other_admin, cert);
  assert_int_equal(st_manifest_sign_cert(m, &origin, cert, len), 0);
  assert_int_equal(verify_wire(m, NULL), -EKEYREJECTED);

  /* A tampered certificate (its period stretched), the manifest signed over it. */
  len = cert_for(&origin, FD_CERT_ROLE_ORIGIN, now - 7200, now - 3600, &admin, cert);
  cert[len - FD_ED25519_SIG_LEN - 16] ^= 0x40; /* not_after's top byte: far in the future */
  fd_cert_t t;
  assert_int_equal(fd_cert_decode(cert, len, &t), 0);
  assert_true(t.not_after_unix_s > now);
  assert_int_equal(st_manifest_sign_cert(m, &origin, cert, len), 0);
  assert_int_equal(verify_wire(m, NULL), -EKEYREJECTED);
  /* ... and one that no longer decodes, carried by the wire. */
  len = good_cert(cert);
  assert_int_equal(st_manifest_sign_cert(m, &origin, cert, len), 0);
  m->signer_cert[0] ^= 1;
  assert_int_equal(verify_wire(m, NULL), -EKEYREJECTED);

  /* Signed by a key other than the certified one. sign_cert refuses the
   * mismatch, so build it: other signs with its own certificate, then the
   * origin's certificate is swapped in. */
  len = good_cert(cert);
  uint8_t other_cert[FD_CERT_LEN_MAX];
  size_t other_len =
      cert_for(&other, FD_CERT_ROLE_ORIGIN, now - 3600, now + 3600, &admin, other_cert);
  assert_int_equal(st_manifest_sign_cert(m, &origin, other_cert, other_len), -EINVAL);
  assert_int_equal(st_manifest_sign_cert(m, &other, other_cert, other_len), 0);
  assert_int_equal(verify_wire(m, NULL), 0);
  assert_int_equal(other_len, len);
  memcpy(m->signer_cert, cert, len);
  assert_int_equal(verify_wire(m, NULL), -EKEYREJECTED);
  /* ... and the certified key's id claimed by the other key's signature. */
  m->key_id = fd_ed25519_key_id(origin.pub);
  assert_int_equal(verify_wire(m, NULL), -EKEYREJECTED);

  /* Unsigned, with a certificate. */
  m->is_signed = false;
  assert_int_equal(verify_wire(m, NULL), -EKEYREJECTED);

  /* sign_cert refuses what is not a certificate, and a key without its private part. */
  uint8_t junk[8] = {0};
  assert_int_equal(st_manifest_sign_cert(m, &origin, junk, sizeof(junk)), -EINVAL);
  fd_ed25519_key_t pub_only = origin;
  pub_only.has_private = false;
  assert_int_equal(st_manifest_sign_cert(m, &pub_only, cert, len), -EINVAL);
  st_manifest_free(m);
}

/* The store checks each manifest against the list its owner keeps current. */
static void test_store_revocations(void **state) {
  (void)state;
  st_env_t e;
  int rc = st_env_init(&e, CS, 8);
  if (rc == 77) skip();
  assert_int_equal(rc, 0);
  static fd_cert_revlist_t rev;
  fd_cert_revlist_init(&rev);
  e.cfg.revocations = &rev;
  memcpy(e.cfg.trusted_pub, admin.pub, FD_ED25519_PUB_LEN);
  assert_int_equal(st_env_reopen(&e), 0);
  uint8_t cert[FD_CERT_LEN_MAX];
  size_t cert_len = good_cert(cert);
  uint8_t *enc;
  size_t len;
  st_version_t *v;
  for (uint64_t ver = 1; ver <= 3; ver++) {
    st_manifest_t *m = make(ver);
    if (ver == 3) assert_int_equal(st_manifest_sign(m, &admin), 0);
    else assert_int_equal(st_manifest_sign_cert(m, &origin, cert, cert_len), 0);
    assert_int_equal(st_manifest_encode(m, &enc, &len), 0);
    st_manifest_free(m);
    if (ver == 2) /* the list changes in place between two begins */
      assert_int_equal(fd_cert_revlist_add(&rev, fd_ed25519_key_id(origin.pub)), 0);
    rc = st_version_begin(e.store, enc, len, &v);
    free(enc);
    if (ver == 2) {
      assert_int_equal(rc, -EKEYREVOKED);
      continue;
    }
    assert_int_equal(rc, 0); /* v1 before the revocation; v3 the admin's own */
    st_close_wait(&e, v);
  }
  st_env_fini(&e);
}

int main(void) {
  fd_log_init("test_manifest_cert", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepted),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_store_revocations),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
