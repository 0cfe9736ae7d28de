/* fuzz_rpc_frame — the frame header parser over a stream of frames.
 *
 * Byte 0 bit 0 set: each header's CRC32C is fixed up before decoding, so the
 * fuzzer reaches the field checks behind the checksum. Invariants: a decoded
 * header re-encodes to the same 24 bytes, and its payload length respects
 * the limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_hash.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  bool fix_crc = data[0] & 1;
  uint32_t payload_max = (data[0] & 2) ? 1024u : FD_FRAME_PAYLOAD_MAX_DEFAULT;
  data++;
  size--;
  size_t off = 0;
  for (int frames = 0; frames < 4096 && off < size; frames++) {
    uint8_t hdr[RPC_FRAME_HEADER_LEN];
    size_t have = FD_MIN(size - off, (size_t)RPC_FRAME_HEADER_LEN);
    memcpy(hdr, data + off, have);
    if (fix_crc && have == RPC_FRAME_HEADER_LEN) {
      uint32_t crc = fd_crc32c(0, hdr, 20);
      hdr[20] = (uint8_t)crc;
      hdr[21] = (uint8_t)(crc >> 8);
      hdr[22] = (uint8_t)(crc >> 16);
      hdr[23] = (uint8_t)(crc >> 24);
    }
    rpc_frame_header_t h;
    int rc = rpc_frame_decode(hdr, have, payload_max, &h);
    if (have < RPC_FRAME_HEADER_LEN) {
      FD_ASSERT(rc == -EAGAIN);
      break;
    }
    if (rc < 0) {
      FD_ASSERT(rc == -EPROTO || rc == -EMSGSIZE);
      break;
    }
    FD_ASSERT(h.payload_len <= payload_max);
    uint8_t again[RPC_FRAME_HEADER_LEN];
    rpc_frame_encode(&h, again);
    FD_ASSERT(memcmp(again, hdr, sizeof(hdr)) == 0);
    off += RPC_FRAME_HEADER_LEN;
    if (h.payload_len > size - off) break;
    off += h.payload_len;
  }
  return 0;
}
