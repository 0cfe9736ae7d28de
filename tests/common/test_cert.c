/* test_cert.c — certificates: sign, encode, strict decode, and each way verify refuses one. */
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

#include "fd_cert.h"
#include "fd_log.h"

#define NOW 1700000000ull

static fd_ed25519_key_t admin, other_admin, subject_key;

static int setup(void **state) {
  (void)state;
  if (fd_ed25519_generate(&admin) || fd_ed25519_generate(&other_admin) ||
      fd_ed25519_generate(&subject_key))
    return -1;
  return 0;
}

static fd_cert_t make(fd_cert_role_t role, const char *subject, const fd_ed25519_key_t *signer) {
  fd_cert_t c = {0};
  c.role = role;
  snprintf(c.subject, sizeof(c.subject), "%s", subject);
  memcpy(c.pub, subject_key.pub, FD_ED25519_PUB_LEN);
  c.not_before_unix_s = NOW - 100;
  c.not_after_unix_s = NOW + 100;
  assert_int_equal(fd_cert_sign(&c, signer), 0);
  return c;
}

static void test_round_trip(void **state) {
  (void)state;
  fd_cert_t c = make(FD_CERT_ROLE_ORIGIN, "origin-group", &admin), back;
  uint8_t buf[FD_CERT_LEN_MAX];
  size_t len;
  assert_int_equal(fd_cert_encode(&c, buf, sizeof(buf), &len), 0);
  assert_int_equal(len, 135 + strlen("origin-group"));
  assert_int_equal(fd_cert_decode(buf, len, &back), 0);
  assert_memory_equal(&back, &c, sizeof(c));
  assert_int_equal(back.key_id, fd_ed25519_key_id(subject_key.pub));
  assert_int_equal(back.admin_key_id, fd_ed25519_key_id(admin.pub));
  assert_int_equal(fd_cert_verify(&back, FD_CERT_ROLE_ORIGIN, admin.pub, NOW, NULL), 0);
  /* The edges of the period are inside it. */
  assert_int_equal(fd_cert_verify(&back, FD_CERT_ROLE_ORIGIN, admin.pub, NOW - 100, NULL), 0);
  assert_int_equal(fd_cert_verify(&back, FD_CERT_ROLE_ORIGIN, admin.pub, NOW + 100, NULL), 0);
  /* Ed25519 is deterministic: the same certificate twice is the same bytes. */
  fd_cert_t again = make(FD_CERT_ROLE_ORIGIN, "origin-group", &admin);
  assert_memory_equal(again.sig, c.sig, FD_ED25519_SIG_LEN);
  /* Too small a buffer. */
  assert_int_equal(fd_cert_encode(&c, buf, len - 1, &len), -EMSGSIZE);
  char line[256];
  fd_cert_describe(&c, line, sizeof(line));
  assert_non_null(strstr(line, "origin 'origin-group' key "));
  assert_non_null(strstr(line, "2023-11-14T22:11:40Z .. 2023-11-14T22:15:00Z"));
}

static void test_sign_refuses_bad_fields(void **state) {
  (void)state;
  fd_cert_t c = {0};
  memcpy(c.pub, subject_key.pub, FD_ED25519_PUB_LEN);
  c.role = FD_CERT_ROLE_WRITER;
  c.not_after_unix_s = 1;
  assert_int_equal(fd_cert_sign(&c, &admin), -EINVAL); /* empty subject */
  snprintf(c.subject, sizeof(c.subject), "has space");
  assert_int_equal(fd_cert_sign(&c, &admin), -EINVAL);
  snprintf(c.subject, sizeof(c.subject), "alice@example.org");
  c.role = (fd_cert_role_t)3;
  assert_int_equal(fd_cert_sign(&c, &admin), -EINVAL);
  c.role = FD_CERT_ROLE_WRITER;
  c.not_before_unix_s = 2;
  assert_int_equal(fd_cert_sign(&c, &admin), -EINVAL); /* ends before it starts */
  c.not_before_unix_s = 0;
  fd_ed25519_key_t pub_only = admin;
  pub_only.has_private = false;
  assert_int_equal(fd_cert_sign(&c, &pub_only), -EINVAL);
  assert_int_equal(fd_cert_sign(&c, &admin), 0);
  memset(c.subject, 'a', FD_CERT_SUBJECT_LEN_MAX);
  c.subject[FD_CERT_SUBJECT_LEN_MAX] = '\0';
  assert_int_equal(fd_cert_sign(&c, &admin), 0); /* the longest subject */
  uint8_t buf[FD_CERT_LEN_MAX];
  size_t len;
  assert_int_equal(fd_cert_encode(&c, buf, sizeof(buf), &len), 0);
  assert_int_equal(len, FD_CERT_LEN_MAX);
  assert_true(fd_cert_subject_valid("a.b_c@d+e:f-9"));
  assert_false(fd_cert_subject_valid("a/b"));
}

static void test_decode_is_strict(void **state) {
  (void)state;
  fd_cert_t c = make(FD_CERT_ROLE_WRITER, "alice", &admin), out;
  uint8_t buf[FD_CERT_LEN_MAX + 8], bad[FD_CERT_LEN_MAX + 8];
  size_t len;
  assert_int_equal(fd_cert_encode(&c, buf, sizeof(buf), &len), 0);
  /* Every truncation, and a trailing byte. */
  for (size_t n = 0; n < len; n++) assert_int_equal(fd_cert_decode(buf, n, &out), -EBADMSG);
  buf[len] = 0;
  assert_int_equal(fd_cert_decode(buf, len + 1, &out), -EBADMSG);
  /* Magic, format, role, subject length and characters. */
  size_t at[] = {0, 3, 4, 5, 5, 6, 6, 7};
  uint8_t to[] = {'X', 'X', 2, 0, 3, 0, 6, '/'};
  for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
    memcpy(bad, buf, len);
    bad[at[i]] = to[i];
    assert_int_equal(fd_cert_decode(bad, len, &out), -EBADMSG);
  }
  /* A key id that is not the key's. */
  memcpy(bad, buf, len);
  bad[7 + 5 + 32] ^= 1;
  assert_int_equal(fd_cert_decode(bad, len, &out), -EBADMSG);
  /* not_after before not_before. */
  fd_cert_t inv = c;
  inv.not_after_unix_s = 5;
  inv.not_before_unix_s = 6;
  assert_int_equal(fd_cert_encode(&inv, bad, sizeof(bad), &len), -EINVAL);
  memcpy(bad, buf, sizeof(buf));
  memset(bad + 7 + 5 + 32 + 8, 0xff, 8); /* not_before = 2^64 - 1 */
  assert_int_equal(fd_cert_decode(bad, 135 + 5, &out), -EBADMSG);
  assert_int_equal(fd_cert_decode(buf, 135 + 5, &out), 0);
}

static void test_verify_refusals(void **state) {
  (void)state;
  fd_cert_t c = make(FD_CERT_ROLE_ORIGIN, "og", &admin);
  /* Another admin key: by id, and with a forged id. */
  fd_cert_t rogue = make(FD_CERT_ROLE_ORIGIN, "og", &other_admin);
  assert_int_equal(fd_cert_verify(&rogue, FD_CERT_ROLE_ORIGIN, admin.pub, NOW, NULL), -EKEYREJECTED);
  rogue.admin_key_id = c.admin_key_id;
  assert_int_equal(fd_cert_verify(&rogue, FD_CERT_ROLE_ORIGIN, admin.pub, NOW, NULL), -EKEYREJECTED);
  /* The wrong role. */
  assert_int_equal(fd_cert_verify(&c, FD_CERT_ROLE_WRITER, admin.pub, NOW, NULL), -EKEYREJECTED);
  /* Out of its period, both ways. */
  assert_int_equal(fd_cert_verify(&c, FD_CERT_ROLE_ORIGIN, admin.pub, NOW + 101, NULL), -EKEYEXPIRED);
  assert_int_equal(fd_cert_verify(&c, FD_CERT_ROLE_ORIGIN, admin.pub, NOW - 101, NULL), -EKEYEXPIRED);
  /* Revoked (and a list that names other keys). */
  fd_cert_revlist_t l;
  fd_cert_revlist_init(&l);
  assert_int_equal(fd_cert_revlist_add(&l, c.key_id + 1), 0);
  assert_int_equal(fd_cert_verify(&c, FD_CERT_ROLE_ORIGIN, admin.pub, NOW, &l), 0);
  assert_int_equal(fd_cert_revlist_add(&l, c.key_id), 0);
  assert_int_equal(fd_cert_verify(&c, FD_CERT_ROLE_ORIGIN, admin.pub, NOW, &l), -EKEYREVOKED);
  /* Any tampered byte of the encoding: undecodable or refused. */
  uint8_t buf[FD_CERT_LEN_MAX];
  size_t len;
  assert_int_equal(fd_cert_encode(&c, buf, sizeof(buf), &len), 0);
  for (size_t i = 0; i < len; i++) {
    for (int bit = 0; bit < 8; bit += 3) {
      buf[i] ^= (uint8_t)(1u << bit);
      fd_cert_t t;
      if (fd_cert_decode(buf, len, &t) == 0)
        assert_int_equal(fd_cert_verify(&t, FD_CERT_ROLE_ORIGIN, admin.pub, NOW, NULL), -EKEYREJECTED);
      buf[i] ^= (uint8_t)(1u << bit);
    }
  }
}

static void test_files(void **state) {
  (void)state;
  char dir[] = "/tmp/fd-test-cert-XXXXXX", path[128];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/w.cert", dir);
  fd_cert_t c = make(FD_CERT_ROLE_WRITER, "bob", &admin), back;
  assert_int_equal(fd_cert_save(path, &c), 0);
  uint8_t raw[FD_CERT_LEN_MAX];
  size_t raw_len;
  assert_int_equal(fd_cert_load(path, &back, raw, &raw_len), 0);
  assert_memory_equal(&back, &c, sizeof(c));
  assert_int_equal(raw_len, 138);
  FILE *f = fopen(path, "ab");
  assert_non_null(f);
  fputc(0, f);
  fclose(f);
  assert_int_equal(fd_cert_load(path, &back, raw, &raw_len), -EBADMSG);
  f = fopen(path, "wb");
  assert_non_null(f);
  for (int i = 0; i < 1000; i++) fputc('x', f); /* longer than any certificate */
  fclose(f);
  assert_int_equal(fd_cert_load(path, &back, raw, &raw_len), -EBADMSG);
  unlink(path);
  assert_int_equal(fd_cert_load(path, &back, raw, &raw_len), -ENOENT);
  rmdir(dir);
  fd_cert_role_t r;
  assert_int_equal(fd_cert_role_parse("writer", &r), 0);
  assert_int_equal(r, FD_CERT_ROLE_WRITER);
  assert_int_equal(fd_cert_role_parse("admin", &r), -EINVAL);
  assert_string_equal(fd_cert_role_name(FD_CERT_ROLE_ORIGIN), "origin");
}

int main(void) {
  fd_log_init("test_cert", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_sign_refuses_bad_fields),
      cmocka_unit_test(test_decode_is_strict), cmocka_unit_test(test_verify_refusals),
      cmocka_unit_test(test_files),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
