/* fd_error.c — messages for the errno values fdist gives a fixed meaning. */
#include "fd_error.h"

#include <errno.h>
#include <string.h>

const char *fd_strerror(int err) {
  if (err < 0) err = -err;
  switch (err) {
  case 0: return "success";
  case EBADMSG: return "checksum mismatch (CRC32C or SHA-256)";
  case EKEYREJECTED: return "signature or authentication check failed";
  case EKEYEXPIRED: return "certificate expired or not valid yet";
  case EKEYREVOKED: return "key revoked";
  case EPROTO: return "protocol error";
  case EMSGSIZE: return "length over its limit";
  case ERANGE: return "index out of range";
  case ETIMEDOUT: return "deadline exceeded";
  case ECANCELED: return "cancelled";
  case EACCES: return "not authenticated or not permitted";
  case EAGAIN: return "try again";
  default: return strerrordesc_np(err) ? strerrordesc_np(err) : "unknown error";
  }
}
