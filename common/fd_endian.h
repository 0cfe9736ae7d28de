/*
 * fd_endian.h — big-endian integers in byte buffers (prefix fd_be), for the
 * fixed wire formats of common/ (certificates, revocation lists).
 */
#ifndef FD_ENDIAN_H
#define FD_ENDIAN_H

#include <stdint.h>

static inline void fd_be64_put(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static inline uint64_t fd_be64_get(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

#endif /* FD_ENDIAN_H */
