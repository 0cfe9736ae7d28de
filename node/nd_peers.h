/*
 * nd_peers.h — addresses fdnode is configured with (prefix nd_): "addr:port"
 * and the origin chain "id@addr:port,..." (head first). Plain data, no I/O;
 * the bottom of node/ beside the chunk plane.
 */
#ifndef ND_PEERS_H
#define ND_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_limits.h"

typedef struct nd_peer {
  char id[FD_NAME_LEN_MAX + 1];
  char addr[SCH_ADDRESS_LEN_MAX];
  uint16_t port; /* 0: a bare id whose address fdsched has not told yet */
  bool learned;  /* configured as a bare id: the address comes from fdsched */
} nd_peer_t;

/* The origin group in chain order. */
typedef struct nd_origins {
  nd_peer_t o[ND_ORIGINS_MAX];
  uint32_t n;
  int self; /* this node's index, -1 when it is no origin of the list */
} nd_origins_t;

/* "addr:port" into addr and port: 0 or -EINVAL. */
int nd_parse_hostport(const char *s, char *addr, size_t addr_len, uint16_t *port);
/* fdsched's addresses, "addr:port[,addr:port...]" (a leader and its
 * standbys): the count (0 for ""), -EINVAL (a bad entry, port 0) or
 * -EMSGSIZE (more than max). */
int nd_schedulers_parse(const char *list, char (*addrs)[SCH_ADDRESS_LEN_MAX], uint16_t *ports,
                        uint32_t max);
/* The origin list, chain order, head first (commas or spaces). An entry is
 * `id@addr:port` (a fixed address, used as it is and never changed: the
 * only kind that works without a scheduler) or a bare `id` (its address is
 * the one that origin registered with fdsched, which lists every live origin
 * on its Register and Heartbeat replies; port 0 until then). self_id names
 * this node (may be NULL). 0, -EINVAL (a bad entry, an id twice, a fixed
 * port 0), -EMSGSIZE (more than ND_ORIGINS_MAX). */
int nd_origins_parse(nd_origins_t *os, const char *list, const char *self_id);
/* Fills in and updates the addresses of bare-id entries from fdsched's list
 * of live origins; fixed entries never change, and an origin that leaves
 * the list keeps its last address (the chain still tries it, and drops it
 * only if it does not answer). */
struct Sched__Peer;
void nd_origins_learn(nd_origins_t *os, struct Sched__Peer *const *peers, size_t count);

/* Puts the origins named by ids (n of them) first, in that order, and the
 * others after them in their current order (the chain's order from
 * ZooKeeper; ids the list does not have are skipped); self follows its
 * entry. True when the order changed. */
bool nd_origins_reorder(nd_origins_t *os, const char *const *ids, uint32_t n);
/* Whether nd_origins_reorder(os, ids, n) would move anyone (os untouched). */
bool nd_origins_reorder_moves(const nd_origins_t *os, const char *const *ids, uint32_t n);
/* A learned (bare-id) origin's address from another source than fdsched
 * (its ZooKeeper membership); fixed entries never change. */
void nd_origins_set_addr(nd_origins_t *os, const char *id, const char *addr, uint16_t port);

#endif /* ND_PEERS_H */
