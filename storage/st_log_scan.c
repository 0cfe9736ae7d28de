/*
 * st_log_scan.c — reading the changelog's format (st_log_int.h): the header,
 * a window over the file (or a buffer), the scan st_log_open runs and the
 * fuzz target drives, and the iterator that reads a log by path on any
 * thread. No writes, no ring, no shared state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_hash.h"
#include "st_log_int.h"
#include "storage.h"

/* ---- the header ------------------------------------------------------------ */

#define H_FORMAT 4u
#define H_VERSION 8u
#define H_BASE 16u
#define H_NAME_LEN 24u
#define H_NAME 25u
#define H_RESERVED 56u
#define H_CRC 60u
static_assert(H_NAME + ST_LOG_NAME_SHOWN == H_RESERVED, "the name fills its field");
static_assert(H_CRC + 4u == ST_LOG_HEADER_BYTES, "the CRC ends the header");

void st_log_header_encode(uint8_t out[ST_LOG_HEADER_BYTES], const char *name, uint64_t version,
                          uint64_t base_version) {
  size_t n = strlen(name);
  FD_ASSERT(n > 0 && n <= FD_NAME_LEN_MAX);
  memset(out, 0, ST_LOG_HEADER_BYTES);
  memcpy(out, ST_LOG_MAGIC, 4);
  fd_le32_put(out + H_FORMAT, ST_LOG_FORMAT);
  fd_le64_put(out + H_VERSION, version);
  fd_le64_put(out + H_BASE, base_version);
  out[H_NAME_LEN] = (uint8_t)n;
  memcpy(out + H_NAME, name, FD_MIN(n, (size_t)ST_LOG_NAME_SHOWN));
  fd_le32_put(out + H_CRC, fd_crc32c(0, out, H_CRC));
}

int st_log_header_decode(const uint8_t *p, size_t len, st_log_header_t *h) {
  if (len < ST_LOG_HEADER_BYTES || memcmp(p, ST_LOG_MAGIC, 4) != 0 ||
      fd_le32_get(p + H_FORMAT) != ST_LOG_FORMAT ||
      fd_le32_get(p + H_CRC) != fd_crc32c(0, p, H_CRC))
    return -EBADMSG;
  uint32_t n = p[H_NAME_LEN];
  if (n == 0 || n > FD_NAME_LEN_MAX || fd_le32_get(p + H_RESERVED) != 0) return -EBADMSG;
  memset(h, 0, sizeof(*h));
  h->version = fd_le64_get(p + H_VERSION);
  h->base_version = fd_le64_get(p + H_BASE);
  h->name_len = n;
  memcpy(h->name, p + H_NAME, FD_MIN(n, ST_LOG_NAME_SHOWN));
  return 0;
}

bool st_log_header_is(const st_log_header_t *h, const char *name, uint64_t version,
                      uint64_t base_version) {
  size_t n = strlen(name);
  return h->version == version && h->base_version == base_version && h->name_len == n &&
         strncmp(h->name, name, ST_LOG_NAME_SHOWN) == 0;
}

/* ---- the window --------------------------------------------------------------- */

void st_log_src_mem(st_log_src_t *src, const void *buf, size_t len) {
  *src = (st_log_src_t){.fd = -1, .mem = buf, .size = len};
}

void st_log_src_file(st_log_src_t *src, int fd, uint64_t size, uint8_t *win, size_t win_cap) {
  FD_ASSERT(win_cap >= FD_MIN((uint64_t)FD_LOG_FRAME_MAX, size) && win_cap > 0);
  *src = (st_log_src_t){.fd = fd, .win = win, .win_cap = win_cap, .size = size};
}

/* Moves the window to start at off: keeps what it already holds of
 * [off, ...), reads the rest. */
static int window_fill(st_log_src_t *src, uint64_t off) {
  size_t keep = 0;
  if (off >= src->win_off && off < src->win_off + src->win_len) {
    keep = (size_t)(src->win_off + src->win_len - off);
    memmove(src->win, src->win + (off - src->win_off), keep);
  }
  src->win_off = off;
  src->win_len = keep;
  size_t want = (size_t)FD_MIN((uint64_t)src->win_cap, src->size - off);
  while (src->win_len < want) {
    ssize_t n = pread(src->fd, src->win + src->win_len, want - src->win_len,
                      (off_t)(off + src->win_len));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : -EIO; /* shorter than when we looked */
    src->win_len += (size_t)n;
  }
  return 0;
}

int st_log_src_at(st_log_src_t *src, uint64_t off, size_t want, const uint8_t **p,
                  size_t *avail) {
  FD_ASSERT(off <= src->size);
  uint64_t left = src->size - off;
  if (src->fd < 0) {
    *p = src->mem + off;
    *avail = (size_t)left;
    return 0;
  }
  uint64_t need = FD_MIN((uint64_t)want, left);
  FD_ASSERT(need <= src->win_cap);
  if (off < src->win_off || off + need > src->win_off + src->win_len) {
    int rc = window_fill(src, off);
    if (rc) return rc;
  }
  *p = src->win + (off - src->win_off);
  *avail = (size_t)(src->win_off + src->win_len - off);
  return 0;
}

/* ---- the scan ------------------------------------------------------------------- */

/* Skims [off + 1, size) for whole records after damage at off, whose
 * sequence could follow the `expect` records before it: counts them, and
 * whether one begins a later batch (which the damaged batch's fdatasync
 * came before). Every byte offset is tried, since the damage hid where
 * records start; the frame's length and sequence rule out nearly all
 * before a CRC32C is computed, and each whole record found is jumped. */
static int skim_after(st_log_src_t *src, uint64_t off, uint64_t expect, st_log_scan_t *out) {
  uint64_t seq_max = expect + (src->size - off) / FD_REC_HDR_BYTES;
  out->cut_records = 1;
  for (uint64_t o = off + 1; o + FD_REC_HDR_BYTES <= src->size;) {
    const uint8_t *p;
    size_t avail;
    int rc = st_log_src_at(src, o, FD_LOG_FRAME_MAX, &p, &avail);
    if (rc) return rc;
    uint64_t seq = fd_rec_peek_seq(p);
    fd_rec_t rec;
    ssize_t n;
    if (fd_rec_peek_len(p) > FD_LOG_RECORD_MAX || seq < expect || seq > seq_max ||
        (n = fd_rec_decode(p, avail, FD_LOG_RECORD_MAX, &rec)) <= 0) {
      o++;
      continue;
    }
    out->cut_records++;
    if (!rec.cont && rec.seq > expect) out->cut_acked = true;
    o += (uint64_t)n;
  }
  return 0;
}

int st_log_scan(st_log_src_t *src, st_log_scan_t *out, st_log_scan_fn fn, void *arg) {
  memset(out, 0, sizeof(*out));
  const uint8_t *p;
  size_t avail;
  if (src->size < ST_LOG_HEADER_BYTES) return -EBADMSG;
  int rc = st_log_src_at(src, 0, ST_LOG_HEADER_BYTES, &p, &avail);
  if (rc) return rc;
  if ((rc = st_log_header_decode(p, avail, &out->hdr)) != 0) return rc;
  uint64_t off = ST_LOG_HEADER_BYTES;
  while (off < src->size) {
    if ((rc = st_log_src_at(src, off, FD_LOG_FRAME_MAX, &p, &avail)) != 0) return rc;
    fd_rec_t rec;
    ssize_t n = fd_rec_decode(p, avail, FD_LOG_RECORD_MAX, &rec);
    if (n <= 0) {
      out->end = off;
      out->cut_bytes = src->size - off;
      return skim_after(src, off, out->records, out);
    }
    if (rec.seq != out->records) {
      out->gap = true;
      return -EBADMSG;
    }
    if (fn && (rc = fn(arg, rec.seq, off)) != 0) return rc;
    out->records++;
    off += (uint64_t)n;
  }
  out->end = off;
  return 0;
}

/* ---- the iterator ------------------------------------------------------------- */

struct st_log_iter {
  int fd;
  st_log_src_t src;
  st_log_header_t hdr;
  uint64_t off, next_seq;
  int err;
  uint8_t win[];
};

int st_log_iter_open(const char *path, st_log_iter_t **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  /* A window as big as the file, up to ST_LOG_BATCH_BYTES. */
  size_t win = (size_t)FD_MIN((uint64_t)ST_LOG_BATCH_BYTES, FD_MAX((uint64_t)st.st_size, 4096u));
  st_log_iter_t *it = malloc(sizeof(*it) + win);
  if (!it) {
    close(fd);
    return -ENOMEM;
  }
  it->fd = fd;
  it->off = ST_LOG_HEADER_BYTES;
  it->next_seq = 0;
  it->err = 0;
  st_log_src_file(&it->src, fd, (uint64_t)st.st_size, it->win, win);
  const uint8_t *p;
  size_t avail;
  int rc = (uint64_t)st.st_size < ST_LOG_HEADER_BYTES ? -EBADMSG
           : st_log_src_at(&it->src, 0, ST_LOG_HEADER_BYTES, &p, &avail);
  if (!rc) rc = st_log_header_decode(p, avail, &it->hdr);
  if (rc) {
    st_log_iter_close(it);
    return rc;
  }
  *out = it;
  return 0;
}

void st_log_iter_info(const st_log_iter_t *it, uint64_t *version, uint64_t *base_version) {
  *version = it->hdr.version;
  *base_version = it->hdr.base_version;
}

int st_log_iter_next(st_log_iter_t *it, uint64_t *seq, const void **payload, uint32_t *len) {
  if (it->err) return it->err;
  if (it->off == it->src.size) return 0;
  const uint8_t *p;
  size_t avail;
  int rc = st_log_src_at(&it->src, it->off, FD_LOG_FRAME_MAX, &p, &avail);
  fd_rec_t rec;
  ssize_t n = rc ? rc : fd_rec_decode(p, avail, FD_LOG_RECORD_MAX, &rec);
  if (n == 0 || (n > 0 && rec.seq != it->next_seq)) n = -EBADMSG;
  if (n < 0) return it->err = (int)n;
  it->off += (uint64_t)n;
  it->next_seq++;
  *seq = rec.seq;
  *payload = rec.payload;
  *len = rec.len;
  return 1;
}

st_log_pos_t st_log_iter_tell(const st_log_iter_t *it) {
  return (st_log_pos_t){.off = it->off, .seq = it->next_seq};
}

int st_log_iter_seek(st_log_iter_t *it, st_log_pos_t pos) {
  if (pos.off < ST_LOG_HEADER_BYTES || pos.off > it->src.size) return -EINVAL;
  it->off = pos.off;
  it->next_seq = pos.seq;
  it->err = 0;
  return 0;
}

void st_log_iter_close(st_log_iter_t *it) {
  if (!it) return;
  close(it->fd);
  free(it);
}
