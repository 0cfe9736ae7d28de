/*
 * fd_record.h — the framed record of fdist's append-only logs (prefix fd_rec_).
 *
 *   u32 length word | u32 CRC32C | u64 sequence | payload[length]
 *
 * little-endian, 16 bytes of header. Bit 31 of the length word
 * (FD_REC_CONT) marks a record that continues the group commit — one write
 * and one fdatasync — of the record before it, so the first record of every
 * group commit can be told apart: a whole later group commit found after
 * damage proves the damage is not a torn tail. The CRC32C covers the length word,
 * the sequence and the payload (not itself), so a torn length or sequence is
 * caught as surely as a torn payload.
 *
 * Used by the scheduler's store (scheduler/store_dir.c) and storage's
 * changelog (storage/st_log.c); each keeps its own file header and rules.
 * Pure functions: no I/O, no allocation, no state.
 */
#ifndef FD_RECORD_H
#define FD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FD_REC_HDR_BYTES 16u
#define FD_REC_CONT 0x80000000u /* in the length word: continues the group commit before */

/* A decoded record; payload points into the decoded bytes. */
typedef struct fd_rec {
  uint64_t seq;
  const uint8_t *payload;
  uint32_t len;
  bool cont;
} fd_rec_t;

/* Fills the header of a record of len payload bytes (len < FD_REC_CONT). */
void fd_rec_header(uint8_t hdr[FD_REC_HDR_BYTES], const void *payload, uint32_t len, uint64_t seq,
                   bool cont);

/* Decodes the record at p, of which avail bytes are at hand. Returns its
 * whole size (header included) when it is all there and its CRC32C
 * matches; 0 when avail holds less than its header or its payload (at the
 * end of a file: a short record); -EBADMSG when its length is over len_max
 * or its CRC32C fails. */
ssize_t fd_rec_decode(const uint8_t *p, size_t avail, uint32_t len_max, fd_rec_t *out);

/* The header's fields as they stand, unchecked: for skimming a damaged
 * region for candidates before paying for a CRC. avail >= FD_REC_HDR_BYTES. */
uint32_t fd_rec_peek_len(const uint8_t *p); /* without FD_REC_CONT */
bool fd_rec_peek_cont(const uint8_t *p);
uint64_t fd_rec_peek_seq(const uint8_t *p);

/* Little-endian fields, for the file headers around the records. */
static inline void fd_le32_put(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fd_le64_put(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t fd_le32_get(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t fd_le64_get(const uint8_t *p) {
  return (uint64_t)fd_le32_get(p) | (uint64_t)fd_le32_get(p + 4) << 32;
}

#endif /* FD_RECORD_H */
