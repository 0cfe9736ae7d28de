/*
 * nd_peers.h — addresses fdnode is configured with (prefix nd_): "addr:port"
 * and the origin chain "id@addr:port,..." (head first). Plain data, no I/O;
 * the bottom of node/ beside the chunk plane.
 */
#ifndef ND_PEERS_H
#define ND_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "fd_limits.h"

typedef struct nd_peer {
  char id[FD_NAME_LEN_MAX + 1];
  char addr[SCH_ADDRESS_LEN_MAX];
  uint16_t port;
} nd_peer_t;

/* The origin group in chain order. */
typedef struct nd_origins {
  nd_peer_t o[ND_ORIGINS_MAX];
  uint32_t n;
  int self; /* this node's index, -1 when it is no origin of the list */
} nd_origins_t;

/* "addr:port" into addr and port: 0 or -EINVAL. */
int nd_parse_hostport(const char *s, char *addr, size_t addr_len, uint16_t *port);
/* "id@addr:port,..." (commas or spaces): 0, -EINVAL, -EMSGSIZE (more than
 * ND_ORIGINS_MAX). self_id names this node (may be NULL). */
int nd_origins_parse(nd_origins_t *os, const char *list, const char *self_id);

#endif /* ND_PEERS_H */
