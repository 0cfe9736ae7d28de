/* test_cert_revlist.c — the revocation list: sorted ids, strict decode, signature, files, and the watched file a daemon reloads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_cert.h"
#include "fd_log.h"

static fd_ed25519_key_t admin, other_admin;
static fd_cert_revlist_t l, back; /* large: not on the stack */
static uint8_t buf[FD_CERT_REVLIST_LEN_MAX + 8], bad[FD_CERT_REVLIST_LEN_MAX + 8];

static int setup(void **state) {
  (void)state;
  return fd_ed25519_generate(&admin) || fd_ed25519_generate(&other_admin) ? -1 : 0;
}

static void make(uint64_t serial, const uint64_t *ids, size_t n, const fd_ed25519_key_t *signer) {
  fd_cert_revlist_init(&l);
  l.serial = serial;
  l.issued_unix_s = 1700000000;
  for (size_t i = 0; i < n; i++) assert_int_equal(fd_cert_revlist_add(&l, ids[i]), 0);
  assert_int_equal(fd_cert_revlist_sign(&l, signer), 0);
}

static void test_ids(void **state) {
  (void)state;
  fd_cert_revlist_init(&l);
  assert_false(fd_cert_revlist_has(&l, 5));
  assert_false(fd_cert_revlist_has(NULL, 5));
  uint64_t ids[] = {9, 3, UINT64_MAX, 0, 7};
  for (size_t i = 0; i < 5; i++) assert_int_equal(fd_cert_revlist_add(&l, ids[i]), 0);
  assert_int_equal(fd_cert_revlist_add(&l, 7), -EEXIST);
  assert_int_equal(l.count, 5);
  uint64_t want[] = {0, 3, 7, 9, UINT64_MAX};
  assert_memory_equal(l.key_ids, want, sizeof(want));
  for (size_t i = 0; i < 5; i++) assert_true(fd_cert_revlist_has(&l, ids[i]));
  assert_false(fd_cert_revlist_has(&l, 8));
  fd_cert_revlist_init(&l);
  for (uint64_t i = 0; i < FD_CERT_REVOKED_MAX; i++)
    assert_int_equal(fd_cert_revlist_add(&l, i * 1000003), 0);
  assert_int_equal(fd_cert_revlist_add(&l, 1), -ENOSPC);
  assert_true(fd_cert_revlist_has(&l, 1023 * 1000003ull));
  /* A list needs a serial to be signed. */
  assert_int_equal(fd_cert_revlist_sign(&l, &admin), -EINVAL);
  l.serial = 1;
  assert_int_equal(fd_cert_revlist_sign(&l, &admin), 0);
  size_t len;
  assert_int_equal(fd_cert_revlist_encode(&l, buf, sizeof(buf), &len), 0);
  assert_int_equal(len, FD_CERT_REVLIST_LEN_MAX); /* the longest list */
  assert_int_equal(fd_cert_revlist_decode(buf, len, &back), 0);
  assert_int_equal(fd_cert_revlist_verify(&back, admin.pub), 0);
}

static void test_round_trip_and_strict_decode(void **state) {
  (void)state;
  uint64_t ids[] = {0x1111, 0x2222, 0x3333};
  make(7, ids, 3, &admin);
  size_t len;
  assert_int_equal(fd_cert_revlist_encode(&l, buf, sizeof(buf), &len), 0);
  assert_int_equal(len, 97 + 3 * 8);
  assert_int_equal(fd_cert_revlist_encode(&l, buf, len - 1, &len), -EMSGSIZE);
  assert_int_equal(fd_cert_revlist_encode(&l, buf, sizeof(buf), &len), 0);
  assert_int_equal(fd_cert_revlist_decode(buf, len, &back), 0);
  assert_int_equal(back.serial, 7);
  assert_int_equal(back.count, 3);
  assert_memory_equal(back.key_ids, ids, sizeof(ids));
  assert_int_equal(fd_cert_revlist_verify(&back, admin.pub), 0);
  assert_int_equal(fd_cert_revlist_verify(&back, other_admin.pub), -EKEYREJECTED);
  for (size_t n = 0; n < len; n++) assert_int_equal(fd_cert_revlist_decode(buf, n, &back), -EBADMSG);
  buf[len] = 0;
  assert_int_equal(fd_cert_revlist_decode(buf, len + 1, &back), -EBADMSG);
  /* Magic, format, serial 0, a count that does not match, unsorted and duplicate ids. */
  struct { size_t at; uint8_t to; } edits[] = {{0, 'X'}, {4, 2}, {12, 0}, {32, 4}, {32, 2}};
  for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
    memcpy(bad, buf, len);
    bad[edits[i].at] = edits[i].to;
    if (edits[i].at == 12) memset(bad + 5, 0, 8);
    assert_int_equal(fd_cert_revlist_decode(bad, len, &back), -EBADMSG);
  }
  memcpy(bad, buf, len);
  memcpy(bad + 33, buf + 41, 8); /* ids 0x2222, 0x2222, 0x3333 */
  assert_int_equal(fd_cert_revlist_decode(bad, len, &back), -EBADMSG);
  memcpy(bad + 33, buf + 49, 8); /* 0x3333, 0x2222, 0x3333 */
  assert_int_equal(fd_cert_revlist_decode(bad, len, &back), -EBADMSG);
  /* Any flipped bit: undecodable or refused. */
  for (size_t i = 0; i < len; i++) {
    buf[i] ^= 0x10;
    if (fd_cert_revlist_decode(buf, len, &back) == 0)
      assert_int_equal(fd_cert_revlist_verify(&back, admin.pub), -EKEYREJECTED);
    buf[i] ^= 0x10;
  }
  /* Signed by another admin key. */
  make(7, ids, 3, &other_admin);
  assert_int_equal(fd_cert_revlist_verify(&l, admin.pub), -EKEYREJECTED);
  /* The empty list is a list. */
  make(1, NULL, 0, &admin);
  assert_int_equal(fd_cert_revlist_encode(&l, buf, sizeof(buf), &len), 0);
  assert_int_equal(len, 97);
  assert_int_equal(fd_cert_revlist_decode(buf, len, &back), 0);
  assert_int_equal(fd_cert_revlist_verify(&back, admin.pub), 0);
}

static void test_watch(void **state) {
  (void)state;
  char dir[] = "/tmp/fd-test-revlist-XXXXXX", path[128];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/revoked.list", dir);
  static fd_cert_revwatch_t w;
  /* No file yet: nothing revoked; polls find nothing until one appears. */
  assert_int_equal(fd_cert_revwatch_init(&w, path, admin.pub, 100), 0);
  assert_int_equal(w.list.serial, 0);
  assert_int_equal(fd_cert_revwatch_poll(&w, 1000), 0);
  uint64_t ids[] = {42};
  make(1, ids, 1, &admin);
  assert_int_equal(fd_cert_revlist_save(path, &l), 0);
  assert_int_equal(fd_cert_revwatch_poll(&w, 1050), 0); /* within the period: not even a stat */
  assert_int_equal(fd_cert_revwatch_poll(&w, 1100), 1);
  assert_true(fd_cert_revlist_has(&w.list, 42));
  assert_int_equal(fd_cert_revwatch_poll(&w, 1200), 0); /* unchanged */
  /* A newer list replaces it; an older one is ignored. Each save renames a
   * fresh file over the old one, so a new inode tells it apart even within
   * one timestamp tick. */
  uint64_t ids2[] = {42, 43};
  make(2, ids2, 2, &admin);
  assert_int_equal(fd_cert_revlist_save(path, &l), 0);
  assert_int_equal(fd_cert_revwatch_poll(&w, 1300), 1);
  assert_int_equal(w.list.serial, 2);
  assert_true(fd_cert_revlist_has(&w.list, 43));
  make(1, NULL, 0, &admin);
  assert_int_equal(fd_cert_revlist_save(path, &l), 0);
  assert_int_equal(fd_cert_revwatch_poll(&w, 1400), 0);
  assert_int_equal(w.list.serial, 2);
  /* A list signed by another key, or junk: refused, the list in force stays. */
  make(9, NULL, 0, &other_admin);
  assert_int_equal(fd_cert_revlist_save(path, &l), 0);
  assert_int_equal(fd_cert_revwatch_poll(&w, 1500), -EKEYREJECTED);
  assert_int_equal(w.list.serial, 2);
  assert_int_equal(fd_cert_revwatch_poll(&w, 1600), 0); /* refused once, not every period */
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs("junk", f);
  fclose(f);
  assert_int_equal(fd_cert_revwatch_poll(&w, 1700), -EBADMSG);
  assert_true(fd_cert_revlist_has(&w.list, 43));
  /* Removed: the list in force stays. */
  unlink(path);
  assert_int_equal(fd_cert_revwatch_poll(&w, 1800), 0);
  assert_int_equal(w.list.serial, 2);
  /* At start, a file that is there but bad is an error. */
  f = fopen(path, "wb");
  assert_non_null(f);
  fputs("junk", f);
  fclose(f);
  assert_int_equal(fd_cert_revwatch_init(&w, path, admin.pub, 100), -EBADMSG);
  make(3, NULL, 0, &other_admin);
  assert_int_equal(fd_cert_revlist_save(path, &l), 0);
  assert_int_equal(fd_cert_revwatch_init(&w, path, admin.pub, 100), -EKEYREJECTED);
  make(3, ids, 1, &admin);
  assert_int_equal(fd_cert_revlist_save(path, &l), 0);
  assert_int_equal(fd_cert_revwatch_init(&w, path, admin.pub, 100), 0);
  assert_int_equal(w.list.serial, 3);
  assert_int_equal(fd_cert_revlist_load(path, admin.pub, &back), 0);
  assert_int_equal(back.serial, 3);
  unlink(path);
  assert_int_equal(fd_cert_revlist_load(path, admin.pub, &back), -ENOENT);
  /* No path: watches nothing. */
  assert_int_equal(fd_cert_revwatch_init(&w, "", admin.pub, 100), 0);
  assert_int_equal(fd_cert_revwatch_poll(&w, 100000), 0);
  rmdir(dir);
}

int main(void) {
  fd_log_init("test_cert_revlist", FD_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ids),
      cmocka_unit_test(test_round_trip_and_strict_decode),
      cmocka_unit_test(test_watch),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
