/* rpc_auth.c — the handshake's proofs and status names. Pure functions. */
#include <errno.h>
#include <string.h>

#include "rpc.h"

int rpc_auth_proof(const uint8_t *key, size_t key_len, bool server,
                   const uint8_t nc[RPC_NONCE_LEN], const uint8_t ns[RPC_NONCE_LEN],
                   uint8_t out[FD_SHA256_LEN]) {
  uint8_t msg[9 + 2 * RPC_NONCE_LEN];
  memcpy(msg, server ? "fdist-srv" : "fdist-cli", 9);
  memcpy(msg + 9, nc, RPC_NONCE_LEN);
  memcpy(msg + 9 + RPC_NONCE_LEN, ns, RPC_NONCE_LEN);
  return fd_hmac_sha256(key, key_len, msg, sizeof(msg), out);
}

void rpc_auth_admin_transcript(const uint8_t nc[RPC_NONCE_LEN], const uint8_t ns[RPC_NONCE_LEN],
                               uint8_t out[RPC_ADMIN_TRANSCRIPT_LEN]) {
  memcpy(out, "fdist-admin", 11);
  memcpy(out + 11, nc, RPC_NONCE_LEN);
  memcpy(out + 11 + RPC_NONCE_LEN, ns, RPC_NONCE_LEN);
}

void rpc_auth_writer_transcript(const uint8_t nc[RPC_NONCE_LEN], const uint8_t ns[RPC_NONCE_LEN],
                                uint8_t out[RPC_WRITER_TRANSCRIPT_LEN]) {
  memcpy(out, "fdist-writer", 12);
  memcpy(out + 12, nc, RPC_NONCE_LEN);
  memcpy(out + 12 + RPC_NONCE_LEN, ns, RPC_NONCE_LEN);
}

const char *rpc_role_name(rpc_role_t role) {
  switch (role) {
  case RPC_ROLE_MEMBER: return "member";
  case RPC_ROLE_WRITER: return "writer";
  case RPC_ROLE_ADMIN: return "admin";
  default: return "?";
  }
}

const char *rpc_code_name(rpc_code_t code) {
  static const char *const names[] = {
      "OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",    "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",        "UNAVAILABLE",       "DATA_LOSS",
      "UNAUTHENTICATED"};
  if ((unsigned)code >= sizeof(names) / sizeof(names[0])) return "UNKNOWN";
  return names[code];
}

rpc_code_t rpc_code_from_errno(int err) {
  switch (err < 0 ? -err : err) {
  case 0: return RPC_OK;
  case ETIMEDOUT: return RPC_DEADLINE_EXCEEDED;
  case ECANCELED: return RPC_CANCELLED;
  case ENOENT: return RPC_NOT_FOUND;
  case EEXIST: return RPC_ALREADY_EXISTS;
  case EACCES: case EPERM: return RPC_PERMISSION_DENIED;
  case EKEYREJECTED: case EKEYEXPIRED: case EKEYREVOKED: return RPC_UNAUTHENTICATED;
  case ENOSPC: case ENOMEM: case EAGAIN: return RPC_RESOURCE_EXHAUSTED;
  case EINVAL: case EPROTO: return RPC_INVALID_ARGUMENT;
  case ERANGE: case EMSGSIZE: return RPC_OUT_OF_RANGE;
  case EBADMSG: return RPC_DATA_LOSS;
  case ENOTCONN: case ECONNRESET: case EPIPE: return RPC_UNAVAILABLE;
  case ENOSYS: return RPC_UNIMPLEMENTED;
  default: return RPC_INTERNAL;
  }
}
