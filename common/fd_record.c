/* fd_record.c — encoding and checking one framed log record (fd_record.h). */
#include "fd_record.h"

#include <errno.h>

#include "fd_hash.h"

/* CRC32C of the length word, the sequence and the payload. */
static uint32_t rec_crc(const uint8_t *hdr, const void *payload, size_t len) {
  uint32_t crc = fd_crc32c(0, hdr, 4);
  crc = fd_crc32c(crc, hdr + 8, 8);
  return fd_crc32c(crc, payload, len);
}

void fd_rec_header(uint8_t hdr[FD_REC_HDR_BYTES], const void *payload, uint32_t len, uint64_t seq,
                   bool cont) {
  fd_le32_put(hdr, len | (cont ? FD_REC_CONT : 0));
  fd_le64_put(hdr + 8, seq);
  fd_le32_put(hdr + 4, rec_crc(hdr, payload, len));
}

uint32_t fd_rec_peek_len(const uint8_t *p) { return fd_le32_get(p) & ~FD_REC_CONT; }
bool fd_rec_peek_cont(const uint8_t *p) { return (fd_le32_get(p) & FD_REC_CONT) != 0; }
uint64_t fd_rec_peek_seq(const uint8_t *p) { return fd_le64_get(p + 8); }

ssize_t fd_rec_decode(const uint8_t *p, size_t avail, uint32_t len_max, fd_rec_t *out) {
  if (avail < FD_REC_HDR_BYTES) return 0;
  uint32_t len = fd_rec_peek_len(p);
  if (len > len_max) return -EBADMSG;
  if (avail - FD_REC_HDR_BYTES < len) return 0;
  if (rec_crc(p, p + FD_REC_HDR_BYTES, len) != fd_le32_get(p + 4)) return -EBADMSG;
  *out = (fd_rec_t){.seq = fd_rec_peek_seq(p), .payload = p + FD_REC_HDR_BYTES, .len = len,
                    .cont = fd_rec_peek_cont(p)};
  return (ssize_t)(FD_REC_HDR_BYTES + len);
}
