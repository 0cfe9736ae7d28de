/* rpc_frame.c — the 24-byte frame header: encode, and decode with every
 * field checked. Pure functions; the fuzzer drives rpc_frame_decode. */
#include <errno.h>
#include <string.h>

#include "fd_hash.h"
#include "rpc.h"

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void rpc_frame_encode(const rpc_frame_header_t *h, uint8_t out[RPC_FRAME_HEADER_LEN]) {
  put32(out, RPC_MAGIC);
  out[4] = h->version ? h->version : RPC_VERSION;
  out[5] = h->type;
  out[6] = (uint8_t)h->flags;
  out[7] = (uint8_t)(h->flags >> 8);
  put32(out + 8, h->stream_id);
  put32(out + 12, h->method_id);
  put32(out + 16, h->payload_len);
  put32(out + 20, fd_crc32c(0, out, 20));
}

int rpc_frame_decode(const uint8_t *buf, size_t len, uint32_t payload_max,
                     rpc_frame_header_t *out) {
  if (len < RPC_FRAME_HEADER_LEN) return -EAGAIN;
  if (get32(buf) != RPC_MAGIC) return -EPROTO;
  if (get32(buf + 20) != fd_crc32c(0, buf, 20)) return -EPROTO;
  rpc_frame_header_t h = {
      .version = buf[4],
      .type = buf[5],
      .flags = (uint16_t)(buf[6] | buf[7] << 8),
      .stream_id = get32(buf + 8),
      .method_id = get32(buf + 12),
      .payload_len = get32(buf + 16),
  };
  if (h.version != RPC_VERSION) return -EPROTO;
  if (h.type < RPC_FRAME_REQUEST || h.type > RPC_FRAME_WINDOW) return -EPROTO;
  if (h.flags & ~RPC_FLAGS_KNOWN) return -EPROTO;
  if (h.payload_len > payload_max) return -EMSGSIZE;
  switch (h.type) {
  case RPC_FRAME_REQUEST:
    if (h.stream_id == 0) return -EPROTO;
    if ((h.flags & RPC_FLAG_OPEN) && h.payload_len < RPC_OPEN_LEN) return -EPROTO;
    if ((h.flags & RPC_FLAG_NOMSG) && h.payload_len != ((h.flags & RPC_FLAG_OPEN) ? RPC_OPEN_LEN : 0))
      return -EPROTO;
    if (h.flags & (RPC_FLAG_STATUS | RPC_FLAG_ACK)) return -EPROTO;
    break;
  case RPC_FRAME_RESPONSE:
    if (h.stream_id == 0) return -EPROTO;
    if (h.flags & (RPC_FLAG_OPEN | RPC_FLAG_NOMSG | RPC_FLAG_ACK)) return -EPROTO;
    if ((h.flags & RPC_FLAG_STATUS) && !(h.flags & RPC_FLAG_END)) return -EPROTO;
    break;
  case RPC_FRAME_DATA:
    if (h.stream_id == 0 || h.payload_len == 0) return -EPROTO;
    if (h.flags & ~RPC_FLAG_END) return -EPROTO;
    break;
  case RPC_FRAME_CANCEL:
    if (h.stream_id == 0 || h.payload_len != 0 || h.flags) return -EPROTO;
    break;
  case RPC_FRAME_PING:
    if (h.stream_id != 0 || h.payload_len != 8 || (h.flags & ~RPC_FLAG_ACK)) return -EPROTO;
    break;
  case RPC_FRAME_GOAWAY:
    if (h.stream_id != 0 || h.flags) return -EPROTO;
    break;
  case RPC_FRAME_HANDSHAKE:
    if (h.stream_id != 0 || h.flags || h.method_id < 1 || h.method_id > 4) return -EPROTO;
    break;
  case RPC_FRAME_WINDOW:
    if (h.payload_len != 4 || h.flags) return -EPROTO;
    break;
  default:
    return -EPROTO;
  }
  *out = h;
  return 0;
}
