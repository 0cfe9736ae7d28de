/* fuzz_storage_log.c — the changelog's scan and its iterator on arbitrary bytes as a log file: never crash, either parse or return -EBADMSG, and agree with each other, read from memory or through the file window.
 *
 * Byte 0 bit 0 set: the header's and every record's CRC32C are fixed up
 * before the scan (as far as the records' lengths chain), so the fuzzer
 * reaches what lies behind the checksums: sequence gaps, continuation flags,
 * the skim after damage. The rest of the input is the file. Invariants: the
 * scan returns 0 or -EBADMSG; on 0, the whole records end at `end`, and the
 * cut is the rest of the file (counted, and flagged as rot only with a
 * later record found); the prefix up to `end` scans clean to the same
 * records; the scan through a file window finds the same; the iterator by
 * path yields exactly those records, then 0 or -EBADMSG.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_hash.h"
#include "fd_log.h"
#include "st_log_int.h"
#include "storage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *g_win;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fd_log_init("fuzz_storage_log", FD_LOG_ERROR);
  g_win = malloc(FD_LOG_FRAME_MAX);
  FD_ASSERT(g_win != NULL);
  return 0;
}

/* Rewrites the CRC32Cs of the header and of each record whose length fits. */
static void fix_crcs(uint8_t *p, size_t size) {
  if (size < ST_LOG_HEADER_BYTES) return;
  fd_le32_put(p + 60, fd_crc32c(0, p, 60));
  for (size_t off = ST_LOG_HEADER_BYTES; size - off >= FD_REC_HDR_BYTES;) {
    uint32_t len = fd_rec_peek_len(p + off);
    if (len > FD_LOG_RECORD_MAX || len > size - off - FD_REC_HDR_BYTES) return;
    fd_rec_header(p + off, p + off + FD_REC_HDR_BYTES, len, fd_rec_peek_seq(p + off),
                  fd_rec_peek_cont(p + off));
    off += FD_REC_HDR_BYTES + len;
  }
}

typedef struct offs {
  uint64_t n, last;
} offs_t;

static int on_rec(void *arg, uint64_t seq, uint64_t off) {
  offs_t *o = arg;
  FD_ASSERT(seq == o->n);
  FD_ASSERT(off >= ST_LOG_HEADER_BYTES && (o->n == 0 || off >= o->last + FD_REC_HDR_BYTES));
  o->n++;
  o->last = off;
  return 0;
}

static void same_scan(const st_log_scan_t *a, const st_log_scan_t *b) {
  FD_ASSERT(a->records == b->records && a->end == b->end && a->cut_bytes == b->cut_bytes &&
            a->cut_records == b->cut_records && a->cut_acked == b->cut_acked);
}

/* The same bytes as a file: the scan through a window, and the iterator. */
static void check_file(const uint8_t *p, size_t size, int rc, const st_log_scan_t *mem) {
  int fd = memfd_create("fuzz_log", MFD_CLOEXEC);
  FD_ASSERT(fd >= 0);
  FD_ASSERT(size == 0 || write(fd, p, size) == (ssize_t)size);
  st_log_src_t src;
  st_log_scan_t scan;
  st_log_src_file(&src, fd, size, g_win, FD_LOG_FRAME_MAX);
  FD_ASSERT(st_log_scan(&src, &scan, NULL, NULL) == rc);
  if (rc == 0) same_scan(mem, &scan);
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  st_log_iter_t *it;
  int irc = st_log_iter_open(path, &it);
  if (irc == 0) {
    uint64_t seq, n = 0;
    const void *payload;
    uint32_t len;
    while ((irc = st_log_iter_next(it, &seq, &payload, &len)) == 1) {
      FD_ASSERT(seq == n && len <= FD_LOG_RECORD_MAX);
      n++;
    }
    FD_ASSERT(irc == 0 || irc == -EBADMSG);
    FD_ASSERT(rc == 0 || irc == -EBADMSG); /* a gap the scan refused, the iterator meets */
    FD_ASSERT(st_log_iter_next(it, &seq, &payload, &len) == irc); /* and it stays */
    st_log_iter_close(it);
    /* A clean log reads to its end; a damaged one to the damage. */
    if (rc == 0) FD_ASSERT(n == mem->records && (irc == 0) == (mem->cut_bytes == 0));
  } else {
    FD_ASSERT(irc == -EBADMSG && rc == -EBADMSG);
  }
  close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  bool fix = data[0] & 1;
  size--;
  uint8_t *p = malloc(size ? size : 1);
  FD_ASSERT(p != NULL);
  memcpy(p, data + 1, size);
  if (fix) fix_crcs(p, size);
  st_log_src_t src;
  st_log_scan_t scan;
  offs_t o = {0};
  st_log_src_mem(&src, p, size);
  int rc = st_log_scan(&src, &scan, on_rec, &o);
  FD_ASSERT(rc == 0 || rc == -EBADMSG);
  if (rc == 0) {
    FD_ASSERT(o.n == scan.records);
    FD_ASSERT(scan.end >= ST_LOG_HEADER_BYTES && scan.end <= size);
    FD_ASSERT(scan.end >= ST_LOG_HEADER_BYTES + scan.records * FD_REC_HDR_BYTES);
    FD_ASSERT(scan.cut_bytes == size - scan.end);
    FD_ASSERT((scan.cut_bytes == 0) == (scan.cut_records == 0));
    FD_ASSERT(!scan.cut_acked || scan.cut_records >= 2);
    /* What the cut leaves scans clean, to the same records. */
    st_log_scan_t again;
    st_log_src_mem(&src, p, scan.end);
    FD_ASSERT(st_log_scan(&src, &again, NULL, NULL) == 0);
    FD_ASSERT(again.records == scan.records && again.end == scan.end && again.cut_bytes == 0);
  }
  check_file(p, size, rc, &scan);
  free(p);
  return 0;
}
