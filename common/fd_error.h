/*
 * fd_error.h — errors are values.
 *
 * Every action returns 0 or a negative errno; predicates return bool;
 * constructors return a pointer or NULL. fdist gives some errno values a
 * fixed meaning across modules, so that a caller can act on the kind of
 * failure without parsing messages:
 *
 *   -EBADMSG       data failed its CRC32C or SHA-256 check
 *   -EKEYREJECTED  a signature or HMAC did not verify, or a certificate is for
 *                  another role or another admin key
 *   -EKEYEXPIRED   a certificate is outside its validity period
 *   -EKEYREVOKED   a certificate's key is on the revocation list
 *   -EPROTO        a peer broke the wire protocol (bad magic, bad frame)
 *   -EMSGSIZE      a length over its limit
 *   -ERANGE        an index (chunk, stripe, method) out of range
 *   -ETIMEDOUT     a deadline passed
 *   -ECANCELED     the operation was cancelled
 *   -EACCES        the peer is not authenticated or lacks the role
 *   -EAGAIN        nothing done yet; call again (nginx's NGX_AGAIN)
 *   -ENOSPC, -EIO  passed through from the kernel as they are
 */
#ifndef FD_ERROR_H
#define FD_ERROR_H

/* Message for a negative (or positive) errno; never NULL, thread-safe. */
const char *fd_strerror(int err);

#endif /* FD_ERROR_H */
