/* test_record.c — the framed log record: encode and decode, a short record, a bad CRC32C anywhere, a length over the limit, the continuation flag. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fd_record.h"

static void test_roundtrip(void **state) {
  (void)state;
  uint8_t buf[FD_REC_HDR_BYTES + 100];
  for (uint32_t i = 0; i < 100; i++) buf[FD_REC_HDR_BYTES + i] = (uint8_t)(i * 7);
  fd_rec_header(buf, buf + FD_REC_HDR_BYTES, 100, 0x0102030405060708ull, true);
  fd_rec_t rec;
  assert_int_equal(fd_rec_decode(buf, sizeof(buf), 100, &rec), sizeof(buf));
  assert_int_equal(rec.seq, 0x0102030405060708ull);
  assert_int_equal(rec.len, 100);
  assert_true(rec.cont);
  assert_ptr_equal(rec.payload, buf + FD_REC_HDR_BYTES);
  assert_int_equal(fd_rec_peek_len(buf), 100);
  assert_true(fd_rec_peek_cont(buf));
  assert_int_equal(fd_rec_peek_seq(buf), 0x0102030405060708ull);
  /* Little-endian on disk, whatever the host. */
  assert_int_equal(buf[0], 100);
  assert_int_equal(buf[3], 0x80);
  assert_int_equal(buf[8], 0x08);
  /* An empty payload, first of its group commit. */
  uint8_t empty[FD_REC_HDR_BYTES];
  fd_rec_header(empty, "", 0, 9, false);
  assert_int_equal(fd_rec_decode(empty, sizeof(empty), 0, &rec), FD_REC_HDR_BYTES);
  assert_false(rec.cont);
  assert_int_equal(rec.len, 0);
}

static void test_short_and_bad(void **state) {
  (void)state;
  uint8_t buf[FD_REC_HDR_BYTES + 40];
  memset(buf + FD_REC_HDR_BYTES, 0x33, 40);
  fd_rec_header(buf, buf + FD_REC_HDR_BYTES, 40, 5, false);
  fd_rec_t rec;
  for (size_t avail = 0; avail < sizeof(buf); avail++)
    assert_int_equal(fd_rec_decode(buf, avail, 40, &rec), 0);
  assert_int_equal(fd_rec_decode(buf, sizeof(buf), 39, &rec), -EBADMSG); /* over the limit */
  assert_int_equal(fd_rec_decode(buf, 5, 39, &rec), 0);                  /* not even a header */
  for (size_t at = 0; at < sizeof(buf); at++) {
    buf[at] ^= 0x04;
    /* A changed length may promise more than there is: short, or bad. */
    ssize_t n = fd_rec_decode(buf, sizeof(buf), 1000, &rec);
    assert_true(n == -EBADMSG || (n == 0 && at < 4));
    buf[at] ^= 0x04;
  }
  assert_int_equal(fd_rec_decode(buf, sizeof(buf), 40, &rec), sizeof(buf));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_short_and_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
