/* fd_cert.c — certificates: the admin's signature on another key, for one
 * role and a period (fd_cert.h has the format). */
#include "fd_cert.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_endian.h"
#include "fd_file.h"
#include "fd_log.h"

#define CERT_MAGIC "FDCT"
#define CERT_FIXED_LEN 135u /* everything but the subject (FD_CERT_LEN_MAX counts the same) */
static_assert(FD_CERT_SUBJECT_LEN_MAX <= 255u, "subject_len is one byte");

const char *fd_cert_trust_reason(int err) {
  switch (err) {
  case -EKEYEXPIRED: return "key expired";
  case -EKEYREVOKED: return "key revoked";
  default: return "bad signature";
  }
}

const char *fd_cert_role_name(fd_cert_role_t role) {
  switch (role) {
  case FD_CERT_ROLE_ORIGIN: return "origin";
  case FD_CERT_ROLE_WRITER: return "writer";
  default: return "?";
  }
}

int fd_cert_role_parse(const char *name, fd_cert_role_t *out) {
  if (!strcmp(name, "origin")) *out = FD_CERT_ROLE_ORIGIN;
  else if (!strcmp(name, "writer")) *out = FD_CERT_ROLE_WRITER;
  else return -EINVAL;
  return 0;
}

static bool role_known(unsigned role) {
  return role == FD_CERT_ROLE_ORIGIN || role == FD_CERT_ROLE_WRITER;
}

static bool subject_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '.' || ch == '_' || ch == '@' || ch == '+' || ch == ':' || ch == '-';
}

bool fd_cert_subject_valid(const char *subject) {
  size_t n = strnlen(subject, FD_CERT_SUBJECT_LEN_MAX + 1);
  if (n == 0 || n > FD_CERT_SUBJECT_LEN_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!subject_char(subject[i])) return false;
  return true;
}

static bool fields_valid(const fd_cert_t *c) {
  return role_known(c->role) && fd_cert_subject_valid(c->subject) &&
         c->not_after_unix_s >= c->not_before_unix_s &&
         c->key_id == fd_ed25519_key_id(c->pub);
}

/* The signed bytes (everything before the signature); returns their length. */
static size_t body(const fd_cert_t *c, uint8_t out[FD_CERT_LEN_MAX]) {
  size_t n = strlen(c->subject), o = 0;
  memcpy(out, CERT_MAGIC, 4);
  out[4] = FD_CERT_FORMAT;
  out[5] = (uint8_t)c->role;
  out[6] = (uint8_t)n;
  o = 7;
  memcpy(out + o, c->subject, n);
  o += n;
  memcpy(out + o, c->pub, FD_ED25519_PUB_LEN);
  o += FD_ED25519_PUB_LEN;
  fd_be64_put(out + o, c->key_id);
  fd_be64_put(out + o + 8, c->not_before_unix_s);
  fd_be64_put(out + o + 16, c->not_after_unix_s);
  fd_be64_put(out + o + 24, c->admin_key_id);
  o += 32;
  FD_ASSERT(o + FD_ED25519_SIG_LEN == CERT_FIXED_LEN + n);
  return o;
}

int fd_cert_sign(fd_cert_t *c, const fd_ed25519_key_t *admin) {
  c->format = FD_CERT_FORMAT;
  c->key_id = fd_ed25519_key_id(c->pub);
  c->admin_key_id = fd_ed25519_key_id(admin->pub);
  if (!admin->has_private || !fields_valid(c)) return -EINVAL;
  uint8_t b[FD_CERT_LEN_MAX];
  size_t n = body(c, b);
  return fd_ed25519_sign(admin, b, n, c->sig);
}

int fd_cert_encode(const fd_cert_t *c, uint8_t *out, size_t cap, size_t *len) {
  if (c->format != FD_CERT_FORMAT || !fields_valid(c)) return -EINVAL;
  uint8_t b[FD_CERT_LEN_MAX];
  size_t n = body(c, b);
  if (cap < n + FD_ED25519_SIG_LEN) return -EMSGSIZE;
  memcpy(out, b, n);
  memcpy(out + n, c->sig, FD_ED25519_SIG_LEN);
  *len = n + FD_ED25519_SIG_LEN;
  return 0;
}

int fd_cert_decode(const void *buf, size_t len, fd_cert_t *out) {
  const uint8_t *p = buf;
  memset(out, 0, sizeof(*out));
  if (len < CERT_FIXED_LEN + 1 || len > FD_CERT_LEN_MAX) return -EBADMSG;
  if (memcmp(p, CERT_MAGIC, 4) != 0 || p[4] != FD_CERT_FORMAT || !role_known(p[5]))
    return -EBADMSG;
  size_t n = p[6];
  if (n == 0 || n > FD_CERT_SUBJECT_LEN_MAX || len != CERT_FIXED_LEN + n) return -EBADMSG;
  for (size_t i = 0; i < n; i++)
    if (!subject_char((char)p[7 + i])) return -EBADMSG;
  out->format = p[4];
  out->role = (fd_cert_role_t)p[5];
  memcpy(out->subject, p + 7, n);
  out->subject[n] = '\0';
  size_t o = 7 + n;
  memcpy(out->pub, p + o, FD_ED25519_PUB_LEN);
  o += FD_ED25519_PUB_LEN;
  out->key_id = fd_be64_get(p + o);
  out->not_before_unix_s = fd_be64_get(p + o + 8);
  out->not_after_unix_s = fd_be64_get(p + o + 16);
  out->admin_key_id = fd_be64_get(p + o + 24);
  o += 32;
  memcpy(out->sig, p + o, FD_ED25519_SIG_LEN);
  if (out->key_id != fd_ed25519_key_id(out->pub) ||
      out->not_after_unix_s < out->not_before_unix_s) {
    memset(out, 0, sizeof(*out));
    return -EBADMSG;
  }
  return 0;
}

int fd_cert_verify(const fd_cert_t *c, fd_cert_role_t role,
                   const uint8_t admin_pub[FD_ED25519_PUB_LEN], uint64_t now_unix_s,
                   const fd_cert_revlist_t *revoked) {
  const char *rn = fd_cert_role_name(c->role);
  if (c->admin_key_id != fd_ed25519_key_id(admin_pub)) {
    fd_log_warn("certificate %s '%s' (key %016" PRIx64 "): signed by admin key %016" PRIx64
                ", not the trusted one %016" PRIx64,
                rn, c->subject, c->key_id, c->admin_key_id, fd_ed25519_key_id(admin_pub));
    return -EKEYREJECTED;
  }
  uint8_t b[FD_CERT_LEN_MAX];
  if (c->format != FD_CERT_FORMAT || !fields_valid(c) ||
      fd_ed25519_verify(admin_pub, b, body(c, b), c->sig) != 0) {
    fd_log_warn("certificate %s '%s' (key %016" PRIx64 "): bad signature", rn, c->subject,
                c->key_id);
    return -EKEYREJECTED;
  }
  if (c->role != role) {
    fd_log_warn("certificate %s '%s' (key %016" PRIx64 "): certifies role %s, not %s", rn,
                c->subject, c->key_id, rn, fd_cert_role_name(role));
    return -EKEYREJECTED;
  }
  if (fd_cert_revlist_has(revoked, c->key_id)) {
    fd_log_warn("certificate %s '%s': key %016" PRIx64 " is revoked (list serial %" PRIu64 ")",
                rn, c->subject, c->key_id, revoked->serial);
    return -EKEYREVOKED;
  }
  if (now_unix_s < c->not_before_unix_s || now_unix_s > c->not_after_unix_s) {
    fd_log_warn("certificate %s '%s' (key %016" PRIx64 "): valid from %" PRIu64 " to %" PRIu64
                " (unix s), not at %" PRIu64 ": %s",
                rn, c->subject, c->key_id, c->not_before_unix_s, c->not_after_unix_s, now_unix_s,
                now_unix_s > c->not_after_unix_s ? "expired" : "not valid yet");
    return -EKEYEXPIRED;
  }
  return 0;
}

static void utc(uint64_t s, char *out, size_t len) {
  time_t t = (time_t)s;
  struct tm tm;
  if (s > 253402300799ull /* 9999-12-31 */ || !gmtime_r(&t, &tm) ||
      strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, len, "%" PRIu64, s);
}

void fd_cert_describe(const fd_cert_t *c, char *out, size_t len) {
  char from[32], to[32];
  utc(c->not_before_unix_s, from, sizeof(from));
  utc(c->not_after_unix_s, to, sizeof(to));
  snprintf(out, len, "%s '%s' key %016" PRIx64 " valid %s .. %s, by admin key %016" PRIx64,
           fd_cert_role_name(c->role), c->subject, c->key_id, from, to, c->admin_key_id);
}

int fd_cert_load(const char *path, fd_cert_t *out, uint8_t *raw, size_t *raw_len) {
  int rc = fd_file_read(path, raw, FD_CERT_LEN_MAX, raw_len);
  if (rc == -EMSGSIZE) return -EBADMSG;
  if (rc) return rc;
  return fd_cert_decode(raw, *raw_len, out);
}

int fd_cert_save(const char *path, const fd_cert_t *c) {
  uint8_t buf[FD_CERT_LEN_MAX];
  size_t len;
  int rc = fd_cert_encode(c, buf, sizeof(buf), &len);
  return rc ? rc : fd_file_replace_durable(path, buf, len, 0644);
}
