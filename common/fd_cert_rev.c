/* fd_cert_rev.c — the revocation list (fd_cert.h has the format) and the
 * file a daemon watches for it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fd_assert.h"
#include "fd_endian.h"
#include "fd_cert.h"
#include "fd_error.h"
#include "fd_file.h"
#include "fd_log.h"

#define REVLIST_MAGIC "FDRL"
#define REVLIST_HEAD_LEN 33u /* magic, format, serial, issued, admin key id, count */
static_assert(FD_CERT_REVLIST_LEN_MAX ==
                  REVLIST_HEAD_LEN + 8u * FD_CERT_REVOKED_MAX + FD_ED25519_SIG_LEN,
              "limit matches format");

void fd_cert_revlist_init(fd_cert_revlist_t *l) {
  memset(l, 0, sizeof(*l));
  l->format = FD_CERT_REVLIST_FORMAT;
}

/* Index of the first id >= key_id. */
static uint32_t lower_bound(const fd_cert_revlist_t *l, uint64_t key_id) {
  uint32_t lo = 0, hi = l->count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (l->key_ids[mid] < key_id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

bool fd_cert_revlist_has(const fd_cert_revlist_t *l, uint64_t key_id) {
  if (!l) return false;
  FD_ASSERT(l->count <= FD_CERT_REVOKED_MAX);
  uint32_t i = lower_bound(l, key_id);
  return i < l->count && l->key_ids[i] == key_id;
}

int fd_cert_revlist_add(fd_cert_revlist_t *l, uint64_t key_id) {
  uint32_t i = lower_bound(l, key_id);
  if (i < l->count && l->key_ids[i] == key_id) return -EEXIST;
  if (l->count == FD_CERT_REVOKED_MAX) return -ENOSPC;
  memmove(&l->key_ids[i + 1], &l->key_ids[i], (l->count - i) * sizeof(l->key_ids[0]));
  l->key_ids[i] = key_id;
  l->count++;
  return 0;
}

static bool sorted(const fd_cert_revlist_t *l) {
  for (uint32_t i = 1; i < l->count; i++)
    if (l->key_ids[i - 1] >= l->key_ids[i]) return false;
  return true;
}

/* The signed bytes (everything before the signature); returns their length. */
static size_t body(const fd_cert_revlist_t *l, uint8_t *out) {
  memcpy(out, REVLIST_MAGIC, 4);
  out[4] = FD_CERT_REVLIST_FORMAT;
  fd_be64_put(out + 5, l->serial);
  fd_be64_put(out + 13, l->issued_unix_s);
  fd_be64_put(out + 21, l->admin_key_id);
  out[29] = (uint8_t)(l->count >> 24);
  out[30] = (uint8_t)(l->count >> 16);
  out[31] = (uint8_t)(l->count >> 8);
  out[32] = (uint8_t)l->count;
  for (uint32_t i = 0; i < l->count; i++)
    fd_be64_put(out + REVLIST_HEAD_LEN + (size_t)8 * i, l->key_ids[i]);
  return REVLIST_HEAD_LEN + (size_t)8 * l->count;
}

static bool fields_valid(const fd_cert_revlist_t *l) {
  return l->format == FD_CERT_REVLIST_FORMAT && l->serial >= 1 &&
         l->count <= FD_CERT_REVOKED_MAX && sorted(l);
}

int fd_cert_revlist_sign(fd_cert_revlist_t *l, const fd_ed25519_key_t *admin) {
  l->format = FD_CERT_REVLIST_FORMAT;
  l->admin_key_id = fd_ed25519_key_id(admin->pub);
  if (!admin->has_private || !fields_valid(l)) return -EINVAL;
  static _Thread_local uint8_t b[FD_CERT_REVLIST_LEN_MAX];
  return fd_ed25519_sign(admin, b, body(l, b), l->sig);
}

int fd_cert_revlist_encode(const fd_cert_revlist_t *l, uint8_t *out, size_t cap, size_t *len) {
  if (!fields_valid(l)) return -EINVAL;
  size_t n = REVLIST_HEAD_LEN + (size_t)8 * l->count;
  if (cap < n + FD_ED25519_SIG_LEN) return -EMSGSIZE;
  body(l, out);
  memcpy(out + n, l->sig, FD_ED25519_SIG_LEN);
  *len = n + FD_ED25519_SIG_LEN;
  return 0;
}

int fd_cert_revlist_decode(const void *buf, size_t len, fd_cert_revlist_t *out) {
  const uint8_t *p = buf;
  fd_cert_revlist_init(out);
  if (len < REVLIST_HEAD_LEN + FD_ED25519_SIG_LEN || len > FD_CERT_REVLIST_LEN_MAX)
    return -EBADMSG;
  if (memcmp(p, REVLIST_MAGIC, 4) != 0 || p[4] != FD_CERT_REVLIST_FORMAT) return -EBADMSG;
  uint32_t count = (uint32_t)p[29] << 24 | (uint32_t)p[30] << 16 | (uint32_t)p[31] << 8 | p[32];
  if (count > FD_CERT_REVOKED_MAX ||
      len != REVLIST_HEAD_LEN + 8u * (size_t)count + FD_ED25519_SIG_LEN)
    return -EBADMSG;
  out->serial = fd_be64_get(p + 5);
  out->issued_unix_s = fd_be64_get(p + 13);
  out->admin_key_id = fd_be64_get(p + 21);
  out->count = count;
  for (uint32_t i = 0; i < count; i++)
    out->key_ids[i] = fd_be64_get(p + REVLIST_HEAD_LEN + (size_t)8 * i);
  memcpy(out->sig, p + REVLIST_HEAD_LEN + (size_t)8 * count, FD_ED25519_SIG_LEN);
  if (!fields_valid(out)) {
    fd_cert_revlist_init(out);
    return -EBADMSG;
  }
  return 0;
}

int fd_cert_revlist_verify(const fd_cert_revlist_t *l,
                           const uint8_t admin_pub[FD_ED25519_PUB_LEN]) {
  if (!fields_valid(l) || l->admin_key_id != fd_ed25519_key_id(admin_pub)) return -EKEYREJECTED;
  static _Thread_local uint8_t b[FD_CERT_REVLIST_LEN_MAX];
  return fd_ed25519_verify(admin_pub, b, body(l, b), l->sig) == 0 ? 0 : -EKEYREJECTED;
}

int fd_cert_revlist_load(const char *path, const uint8_t admin_pub[FD_ED25519_PUB_LEN],
                         fd_cert_revlist_t *out) {
  static _Thread_local uint8_t raw[FD_CERT_REVLIST_LEN_MAX];
  size_t len = 0;
  int rc = fd_file_read(path, raw, sizeof(raw), &len);
  if (rc == -EMSGSIZE) rc = -EBADMSG;
  if (rc == 0) rc = fd_cert_revlist_decode(raw, len, out);
  if (rc) {
    if (rc != -ENOENT) fd_log_error("revocation list %s: %s", path, fd_strerror(rc));
    return rc;
  }
  if (fd_cert_revlist_verify(out, admin_pub) != 0) {
    fd_log_error("revocation list %s (serial %" PRIu64 "): not signed by the trusted admin key "
                 "%016" PRIx64 " (signer %016" PRIx64 ")",
                 path, out->serial, fd_ed25519_key_id(admin_pub), out->admin_key_id);
    fd_cert_revlist_init(out);
    return -EKEYREJECTED;
  }
  return 0;
}

int fd_cert_revlist_save(const char *path, const fd_cert_revlist_t *l) {
  static _Thread_local uint8_t buf[FD_CERT_REVLIST_LEN_MAX];
  size_t len;
  int rc = fd_cert_revlist_encode(l, buf, sizeof(buf), &len);
  return rc ? rc : fd_file_replace_durable(path, buf, len, 0644);
}

/* ---- the watched file ------------------------------------------------------------ */

static bool same_file(const fd_cert_revwatch_t *w, const struct stat *st) {
  return w->present && st->st_mtim.tv_sec == w->mtime.tv_sec &&
         st->st_mtim.tv_nsec == w->mtime.tv_nsec && st->st_size == w->size &&
         st->st_ino == w->ino;
}

/* Loads the file st describes; 1 when a newer list is in force, 0 when the
 * file held nothing newer, -errno when it was refused. */
static int take(fd_cert_revwatch_t *w, const struct stat *st) {
  w->present = true;
  w->mtime = st->st_mtim;
  w->size = st->st_size;
  w->ino = st->st_ino;
  static _Thread_local fd_cert_revlist_t l;
  int rc = fd_cert_revlist_load(w->path, w->admin_pub, &l);
  if (rc) return rc; /* logged */
  if (l.serial <= w->list.serial) {
    if (l.serial < w->list.serial)
      fd_log_warn("revocation list %s: serial %" PRIu64 " is older than the one in force (%" PRIu64
                  "): ignored",
                  w->path, l.serial, w->list.serial);
    return 0;
  }
  w->list = l;
  fd_log_info("revocation list %s: serial %" PRIu64 " in force, %u key(s) revoked", w->path,
              l.serial, l.count);
  return 1;
}

int fd_cert_revwatch_init(fd_cert_revwatch_t *w, const char *path,
                          const uint8_t admin_pub[FD_ED25519_PUB_LEN], uint64_t period_ms) {
  memset(w, 0, sizeof(*w));
  fd_cert_revlist_init(&w->list);
  if (strlen(path) >= sizeof(w->path)) return -ENAMETOOLONG;
  memcpy(w->path, path, strlen(path) + 1);
  memcpy(w->admin_pub, admin_pub, FD_ED25519_PUB_LEN);
  w->period_ms = period_ms;
  if (!w->path[0]) return 0;
  struct stat st;
  if (stat(w->path, &st) != 0) {
    if (errno != ENOENT) return -errno;
    fd_log_info("revocation list %s: no such file yet: nothing revoked", w->path);
    return 0;
  }
  int rc = take(w, &st);
  return rc < 0 ? rc : 0;
}

int fd_cert_revwatch_poll(fd_cert_revwatch_t *w, uint64_t now_ms) {
  if (!w->path[0] || now_ms - w->checked_ms < w->period_ms) return 0;
  w->checked_ms = now_ms;
  struct stat st;
  if (stat(w->path, &st) != 0) {
    if (w->present && errno == ENOENT)
      fd_log_warn("revocation list %s: removed; the list in force (serial %" PRIu64 ") stays",
                  w->path, w->list.serial);
    w->present = false;
    return 0;
  }
  if (same_file(w, &st)) return 0;
  return take(w, &st);
}
