/* The frame header: round trip, and every malformed field rejected. */
#include "harness.h"

static void enc(rpc_frame_header_t h, uint8_t *b) { rpc_frame_encode(&h, b); }

static void test_roundtrip(void **state) {
  (void)state;
  uint8_t b[RPC_FRAME_HEADER_LEN];
  rpc_frame_header_t h = {RPC_VERSION, RPC_FRAME_REQUEST, RPC_FLAG_OPEN | RPC_FLAG_END, 7,
                          RPC_METHOD_ID(RPC_SVC_NODE, 3), 100};
  enc(h, b);
  assert_memory_equal(b, "FDST", 4);
  rpc_frame_header_t out;
  assert_int_equal(rpc_frame_decode(b, sizeof(b), 1000, &out), 0);
  assert_int_equal(out.type, RPC_FRAME_REQUEST);
  assert_int_equal(out.stream_id, 7);
  assert_int_equal(out.method_id, (2u << 16) | 3u);
  assert_int_equal(out.payload_len, 100);
  assert_int_equal(rpc_frame_decode(b, 23, 1000, &out), -EAGAIN);
}

static void test_rejects(void **state) {
  (void)state;
  uint8_t b[RPC_FRAME_HEADER_LEN];
  rpc_frame_header_t out;
  rpc_frame_header_t ok = {RPC_VERSION, RPC_FRAME_RESPONSE, 0, 1, 0, 10};
  enc(ok, b);
  b[0] = 'X'; /* bad magic */
  assert_int_equal(rpc_frame_decode(b, sizeof(b), 1000, &out), -EPROTO);
  enc(ok, b);
  b[9] ^= 1; /* header CRC no longer matches */
  assert_int_equal(rpc_frame_decode(b, sizeof(b), 1000, &out), -EPROTO);
  assert_int_equal(rpc_frame_decode(b, sizeof(b), 5, &out), -EPROTO);
  enc(ok, b);
  assert_int_equal(rpc_frame_decode(b, sizeof(b), 9, &out), -EMSGSIZE);
  rpc_frame_header_t bad[] = {
      {2, RPC_FRAME_RESPONSE, 0, 1, 0, 0},                       /* version */
      {RPC_VERSION, 0, 0, 1, 0, 0},                              /* type */
      {RPC_VERSION, 9, 0, 1, 0, 0},                              /* type */
      {RPC_VERSION, RPC_FRAME_RESPONSE, 0x100, 1, 0, 0},         /* unknown flag */
      {RPC_VERSION, RPC_FRAME_REQUEST, 0, 0, 0, 0},              /* stream 0 */
      {RPC_VERSION, RPC_FRAME_REQUEST, RPC_FLAG_OPEN, 1, 0, 4},  /* open without its header */
      {RPC_VERSION, RPC_FRAME_DATA, 0, 1, 0, 0},                 /* empty data */
      {RPC_VERSION, RPC_FRAME_CANCEL, 0, 1, 0, 3},               /* cancel with payload */
      {RPC_VERSION, RPC_FRAME_PING, 0, 0, 0, 7},                 /* ping not 8 bytes */
      {RPC_VERSION, RPC_FRAME_HANDSHAKE, 0, 0, 9, 0},            /* handshake step */
      {RPC_VERSION, RPC_FRAME_WINDOW, 0, 0, 0, 5},               /* window not 4 bytes */
      {RPC_VERSION, RPC_FRAME_RESPONSE, RPC_FLAG_STATUS, 1, 0, 0}, /* status without end */
  };
  for (size_t i = 0; i < FD_ARRAY_LEN(bad); i++) {
    enc(bad[i], b);
    assert_int_equal(rpc_frame_decode(b, sizeof(b), 1000, &out), -EPROTO);
  }
}

static void test_codes(void **state) {
  (void)state;
  assert_string_equal(rpc_code_name(RPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
  assert_string_equal(rpc_code_name((rpc_code_t)99), "UNKNOWN");
  assert_int_equal(rpc_code_from_errno(-ETIMEDOUT), RPC_DEADLINE_EXCEEDED);
  assert_int_equal(rpc_code_from_errno(-EACCES), RPC_PERMISSION_DENIED);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_roundtrip),
                                     cmocka_unit_test(test_rejects), cmocka_unit_test(test_codes)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
