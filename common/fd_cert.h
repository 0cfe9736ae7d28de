/*
 * fd_cert.h — certificates and the revocation list: who, besides the admin
 * key itself, may sign a version or write (prefix fd_cert_).
 *
 * The admin's Ed25519 key is the root of trust. It certifies other Ed25519
 * keys for one role each — `origin` (the origin group's signing key, which
 * signs the versions the origins merge) or `writer` (a client allowed to
 * send changes) — for a period, and it revokes keys by listing their ids in
 * a signed, numbered revocation list that nodes, origins and fdsched read
 * from a file.
 *
 * Certificate, format 1 (integers big-endian, 135 + subject_len bytes):
 *
 *   0   4  magic "FDCT"
 *   4   1  format (1)
 *   5   1  role: 1 origin, 2 writer
 *   6   1  subject_len, 1..FD_CERT_SUBJECT_LEN_MAX
 *   7   n  subject: [A-Za-z0-9._@+:-], a name for log lines, not checked against anything
 *   .  32  the certified Ed25519 public key
 *   .   8  its key id (fd_ed25519_key_id)
 *   .   8  not_before, unix seconds
 *   .   8  not_after, unix seconds (>= not_before)
 *   .   8  the admin key's id
 *   .  64  the admin's Ed25519 signature of every byte before it
 *
 * Revocation list, format 1 (97 + 8 * count bytes):
 *
 *   0   4  magic "FDRL"
 *   4   1  format (1)
 *   5   8  serial, >= 1: a list replaces one with a lower serial, never the reverse
 *   13  8  issued, unix seconds
 *   21  8  the admin key's id
 *   29  4  count, <= FD_CERT_REVOKED_MAX
 *   33 8n  revoked key ids, strictly ascending
 *   .  64  the admin's Ed25519 signature of every byte before it
 *
 * Guarantees: decoding is strict — a wrong magic or format, a length that
 * does not match, an unknown role, a bad subject, a key id that is not the
 * key's, unsorted ids or trailing bytes are -EBADMSG — so every accepted
 * encoding is the only one of its content. Verification says why it failed
 * in one log line and in the error: -EKEYREJECTED (not signed by the trusted
 * admin key, or the wrong role), -EKEYEXPIRED (outside not_before..not_after),
 * -EKEYREVOKED (listed).
 *
 * Never: allocates (every structure is fixed-size, bounded by fd_limits.h),
 * touches the network, or trusts a file it reads before its signature is
 * checked. The admin key itself cannot be revoked by a list it signs.
 */
#ifndef FD_CERT_H
#define FD_CERT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "fd_hash.h"
#include "fd_limits.h"

#define FD_CERT_FORMAT 1u
#define FD_CERT_REVLIST_FORMAT 1u

typedef enum fd_cert_role {
  FD_CERT_ROLE_ORIGIN = 1, /* signs the origin group's merged versions */
  FD_CERT_ROLE_WRITER = 2, /* may write and bump (rpc writer role) */
} fd_cert_role_t;

/* True for the errors that mean "not trusted": -EKEYREJECTED, -EKEYEXPIRED,
 * -EKEYREVOKED (what a caller refuses and reports, rather than retries). */
static inline bool fd_cert_is_trust_error(int err) {
  return err == -EKEYREJECTED || err == -EKEYEXPIRED || err == -EKEYREVOKED;
}
/* A short reason for reports: "bad signature", "key expired", "key revoked". */
const char *fd_cert_trust_reason(int err);

/* "origin", "writer", or "?". */
const char *fd_cert_role_name(fd_cert_role_t role);
/* Parses "origin" or "writer"; -EINVAL. */
int fd_cert_role_parse(const char *name, fd_cert_role_t *out);

typedef struct fd_cert_revlist fd_cert_revlist_t;

/* ---- certificates ---------------------------------------------------------- */

typedef struct fd_cert {
  uint8_t format;
  fd_cert_role_t role;
  char subject[FD_CERT_SUBJECT_LEN_MAX + 1];
  uint8_t pub[FD_ED25519_PUB_LEN];
  uint64_t key_id;
  uint64_t not_before_unix_s;
  uint64_t not_after_unix_s;
  uint64_t admin_key_id;
  uint8_t sig[FD_ED25519_SIG_LEN];
} fd_cert_t;

/* True when subject is 1..FD_CERT_SUBJECT_LEN_MAX characters of [A-Za-z0-9._@+:-]. */
bool fd_cert_subject_valid(const char *subject);

/* Fills key_id, format, admin_key_id and the signature of c, whose role,
 * subject, pub and times the caller set. 0, -EINVAL (a field out of range,
 * or admin has no private part). */
int fd_cert_sign(fd_cert_t *c, const fd_ed25519_key_t *admin);
/* Encodes a signed c into out (cap bytes); *len gets its length. 0,
 * -EINVAL (a field out of range), -EMSGSIZE (cap too small). */
int fd_cert_encode(const fd_cert_t *c, uint8_t *out, size_t cap, size_t *len);
/* Decodes exactly len bytes. 0 or -EBADMSG. Does not check the signature. */
int fd_cert_decode(const void *buf, size_t len, fd_cert_t *out);
/* 0 when c was signed by the admin key admin_pub, certifies role, is valid
 * at now_unix_s and its key is not in revoked (NULL: nothing revoked);
 * -EKEYREJECTED, -EKEYREVOKED or -EKEYEXPIRED otherwise, each with a log
 * line naming the certificate. */
int fd_cert_verify(const fd_cert_t *c, fd_cert_role_t role,
                   const uint8_t admin_pub[FD_ED25519_PUB_LEN], uint64_t now_unix_s,
                   const fd_cert_revlist_t *revoked);
/* One line for people: role, subject, key id, validity, admin key id. */
void fd_cert_describe(const fd_cert_t *c, char *out, size_t len);

/* Reads a certificate file (the encoding, nothing else) into raw (at least
 * FD_CERT_LEN_MAX bytes) and decodes it. 0, -errno of open/read, -EBADMSG
 * (not a certificate, or longer than any). */
int fd_cert_load(const char *path, fd_cert_t *out, uint8_t *raw, size_t *raw_len);
/* Writes the encoding of c to path durably (temp file, fsync, rename,
 * fsync of the directory), mode 0644. 0 or -errno. */
int fd_cert_save(const char *path, const fd_cert_t *c);

/* ---- the revocation list ----------------------------------------------------- */

/* Fixed-size: a list is a value, copied and replaced whole. */
struct fd_cert_revlist {
  uint8_t format;
  uint64_t serial; /* 0: the empty list nobody signed (no file yet) */
  uint64_t issued_unix_s;
  uint64_t admin_key_id;
  uint32_t count;
  uint64_t key_ids[FD_CERT_REVOKED_MAX]; /* ascending, unique */
  uint8_t sig[FD_ED25519_SIG_LEN];
};

/* An empty list, serial 0. */
void fd_cert_revlist_init(fd_cert_revlist_t *l);
/* True when key_id is listed; false for a NULL list. Binary search. */
bool fd_cert_revlist_has(const fd_cert_revlist_t *l, uint64_t key_id);
/* Adds key_id (kept sorted). 0, -EEXIST (already listed), -ENOSPC (full). */
int fd_cert_revlist_add(fd_cert_revlist_t *l, uint64_t key_id);
/* Fills format, admin_key_id and the signature; the caller set serial (>= 1),
 * issued and the ids. 0 or -EINVAL. */
int fd_cert_revlist_sign(fd_cert_revlist_t *l, const fd_ed25519_key_t *admin);
int fd_cert_revlist_encode(const fd_cert_revlist_t *l, uint8_t *out, size_t cap, size_t *len);
/* Decodes exactly len bytes. 0 or -EBADMSG. Does not check the signature. */
int fd_cert_revlist_decode(const void *buf, size_t len, fd_cert_revlist_t *out);
/* 0 when l is signed by admin_pub; -EKEYREJECTED otherwise. */
int fd_cert_revlist_verify(const fd_cert_revlist_t *l, const uint8_t admin_pub[FD_ED25519_PUB_LEN]);
/* Reads, decodes and verifies a list file. 0, -errno of open/read
 * (-ENOENT), -EBADMSG, -EKEYREJECTED; each failure logged with the path. */
int fd_cert_revlist_load(const char *path, const uint8_t admin_pub[FD_ED25519_PUB_LEN],
                         fd_cert_revlist_t *out);
/* Writes the encoding of l durably (temp file, fsync, rename, fsync of the
 * directory), mode 0644. 0 or -errno. */
int fd_cert_revlist_save(const char *path, const fd_cert_revlist_t *l);

/* ---- a revocation file a daemon watches ---------------------------------------- */

/* The list a daemon checks against, re-read from its file when the file
 * changes (mtime, size or inode: one stat, at most once per period). It
 * belongs to one thread: `list` is updated in place by
 * fd_cert_revwatch_poll, so pointers to it handed to the store or the rpc
 * engine of that thread see each new list at once. A file that is missing
 * means nothing is revoked yet; a file that is present but not a list the
 * admin signed is refused (at init: an error; later: logged, the list in
 * force stays); a list whose serial is not above the one in force is
 * ignored. */
typedef struct fd_cert_revwatch {
  char path[FD_PATH_LEN_MAX];
  uint8_t admin_pub[FD_ED25519_PUB_LEN];
  uint64_t period_ms;
  uint64_t checked_ms;
  bool present;  /* the file existed at the last look */
  struct timespec mtime;
  off_t size;
  ino_t ino;
  fd_cert_revlist_t list;
} fd_cert_revwatch_t;

/* Loads path now. 0 (loaded, or no file yet), -EBADMSG, -EKEYREJECTED, or
 * another -errno of reading it. path "" watches nothing (list stays empty). */
int fd_cert_revwatch_init(fd_cert_revwatch_t *w, const char *path,
                          const uint8_t admin_pub[FD_ED25519_PUB_LEN], uint64_t period_ms);
/* Call often (each loop turn): at most once per period it stats the file
 * and, if it changed, loads it. 1 when a newer list is now in force, 0 when
 * nothing changed, -errno when the changed file was refused (logged). */
int fd_cert_revwatch_poll(fd_cert_revwatch_t *w, uint64_t now_ms);

#endif /* FD_CERT_H */
