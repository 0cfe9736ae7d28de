/*
 * st_log_int.h — the changelog's file format, shared by the log's handle
 * (st_log.c), its reader (st_log_scan.c) and the tests and fuzz target that
 * look inside it. Nothing else includes it.
 *
 *   header (64 bytes): "FDCL" | u32 format 1 | u64 version | u64 base_version |
 *                      u8 name_len | name (its first 31 bytes, zero padded) |
 *                      u32 reserved 0 | u32 CRC32C of the 60 bytes before it
 *   records:           common/fd_record.h's frame, sequences 0, 1, 2, ...;
 *                      FD_REC_CONT on every record of a group commit but its first
 *
 * All fields little-endian.
 */
#ifndef ST_LOG_INT_H
#define ST_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_limits.h"
#include "fd_record.h"

#define ST_LOG_MAGIC "FDCL"
#define ST_LOG_FORMAT 1u
#define ST_LOG_HEADER_BYTES 64u
#define ST_LOG_NAME_SHOWN 31u /* name bytes the header holds; the rest is in the manifest dir */
static_assert(FD_NAME_LEN_MAX <= 255u, "a name's length fits the header's byte");
static_assert(FD_LOG_FRAME_MAX == FD_LOG_RECORD_MAX + FD_REC_HDR_BYTES, "the frame is fd_record's");

typedef struct st_log_header {
  uint64_t version, base_version;
  uint32_t name_len;                  /* the whole name's */
  char name[ST_LOG_NAME_SHOWN + 1];   /* its first bytes, NUL-terminated */
} st_log_header_t;

/* The 64 header bytes of name's log building version from base_version. */
void st_log_header_encode(uint8_t out[ST_LOG_HEADER_BYTES], const char *name, uint64_t version,
                          uint64_t base_version);
/* 0, or -EBADMSG: short, not a changelog, another format, a bad CRC32C or
 * a name length out of range. */
int st_log_header_decode(const uint8_t *p, size_t len, st_log_header_t *h);
/* True when h is the header of name's log building version from base. */
bool st_log_header_is(const st_log_header_t *h, const char *name, uint64_t version,
                      uint64_t base_version);

/* Bytes of a log: a buffer in memory, or a file read through a window with
 * buffered preads (never past `size`, the length taken when it was set up). */
typedef struct st_log_src {
  int fd;                /* -1: mem holds all the bytes */
  const uint8_t *mem;
  uint8_t *win;          /* the window: win_cap >= FD_LOG_FRAME_MAX bytes, or the file's */
  size_t win_cap, win_len;
  uint64_t win_off;
  uint64_t size;
} st_log_src_t;

void st_log_src_mem(st_log_src_t *src, const void *buf, size_t len);
void st_log_src_file(st_log_src_t *src, int fd, uint64_t size, uint8_t *win, size_t win_cap);
/* Points *p at the bytes at off, *avail of them: at least
 * min(want, size - off), which must fit the window. 0, or the read's
 * -errno (-EIO when the file is shorter than size). */
int st_log_src_at(st_log_src_t *src, uint64_t off, size_t want, const uint8_t **p,
                  size_t *avail);

/* What a scan found. */
typedef struct st_log_scan {
  st_log_header_t hdr;
  uint64_t records;     /* whole records before any damage: sequences 0..records-1 */
  uint64_t end;         /* offset just past the last of them: where the log is cut */
  uint64_t cut_bytes;   /* size - end */
  uint64_t cut_records; /* in the cut: the damaged record and whole ones found after it */
  bool cut_acked;       /* one of those begins a later group commit: acknowledged records are cut */
  bool gap;             /* -EBADMSG for a sequence gap after `records` (else the header) */
} st_log_scan_t;

/* Called for each whole record with its sequence and offset; a non-zero
 * return stops the scan with it. */
typedef int (*st_log_scan_fn)(void *arg, uint64_t seq, uint64_t off);

/* Reads a whole log: the header, then records in order until the end or
 * the first record that is short or fails its CRC32C (damage: the rest of
 * the file is skimmed at every byte offset for whole records, to count
 * what a cut there takes, and to tell a torn tail from rot by a later group
 * commit). 0 with *out filled; -EBADMSG for a bad header or a sequence gap
 * among whole records; a read's -errno; or what fn returned. */
int st_log_scan(st_log_src_t *src, st_log_scan_t *out, st_log_scan_fn fn, void *arg);

#endif /* ST_LOG_INT_H */
