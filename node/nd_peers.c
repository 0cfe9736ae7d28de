/* nd_peers.c — parsing of the addresses fdnode is configured with, and the
 * origin list's addresses learned from fdsched (nd_peers.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_log.h"
#include "nd_peers.h"
#include "rpc.h"

int nd_parse_hostport(const char *s, char *addr, size_t addr_len, uint16_t *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || (size_t)(colon - s) >= addr_len) return -EINVAL;
  char *end;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (*end || p > 65535 || end == colon + 1) return -EINVAL;
  memcpy(addr, s, (size_t)(colon - s));
  addr[colon - s] = 0;
  *port = (uint16_t)p;
  return 0;
}

int nd_schedulers_parse(const char *list, char (*addrs)[SCH_ADDRESS_LEN_MAX], uint16_t *ports,
                        uint32_t max) {
  uint32_t n = 0;
  while (*list) {
    const char *comma = strchr(list, ',');
    size_t len = comma ? (size_t)(comma - list) : strlen(list);
    char item[SCH_ADDRESS_LEN_MAX];
    if (len == 0 || len >= sizeof(item)) return -EINVAL;
    if (n == max) return -EMSGSIZE;
    memcpy(item, list, len);
    item[len] = 0;
    if (nd_parse_hostport(item, addrs[n], SCH_ADDRESS_LEN_MAX, &ports[n]) || !ports[n])
      return -EINVAL;
    n++;
    list += len + (comma ? 1 : 0);
  }
  return (int)n;
}

int nd_origins_parse(nd_origins_t *os, const char *list, const char *self_id) {
  char buf[ND_ORIGINS_MAX * (FD_NAME_LEN_MAX + SCH_ADDRESS_LEN_MAX + 2)];
  memset(os, 0, sizeof(*os));
  os->self = -1;
  if (strlen(list) >= sizeof(buf)) return -EMSGSIZE;
  snprintf(buf, sizeof(buf), "%s", list);
  char *save = NULL;
  for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    if (os->n == ND_ORIGINS_MAX) return -EMSGSIZE;
    nd_peer_t *o = &os->o[os->n];
    char *at = strchr(tok, '@');
    size_t id_len = at ? (size_t)(at - tok) : strlen(tok);
    if (id_len == 0 || id_len > FD_NAME_LEN_MAX) return -EINVAL;
    memcpy(o->id, tok, id_len);
    o->id[id_len] = 0;
    if (!at) o->learned = true; /* address from fdsched; port 0 until then */
    else if (nd_parse_hostport(at + 1, o->addr, sizeof(o->addr), &o->port) || !o->port)
      return -EINVAL;
    for (uint32_t i = 0; i < os->n; i++)
      if (strcmp(os->o[i].id, o->id) == 0) return -EINVAL; /* one place in the chain each */
    if (self_id && strcmp(o->id, self_id) == 0) os->self = (int)os->n;
    os->n++;
  }
  return 0;
}

void nd_origins_learn(nd_origins_t *os, struct Sched__Peer *const *peers, size_t count) {
  for (uint32_t i = 0; i < os->n; i++) {
    nd_peer_t *o = &os->o[i];
    if (!o->learned) continue; /* a fixed address is never overridden */
    for (size_t k = 0; k < count; k++) {
      const Sched__Peer *p = peers[k];
      if (!p->node_id || strcmp(p->node_id, o->id) != 0) continue;
      if (!p->addr || !p->addr[0] || strlen(p->addr) >= sizeof(o->addr) || !p->port ||
          p->port > 65535)
        break; /* not an address we can use: keep what we had */
      if (o->port != p->port || strcmp(o->addr, p->addr) != 0) {
        snprintf(o->addr, sizeof(o->addr), "%s", p->addr);
        o->port = (uint16_t)p->port;
        fd_log_info("origin %s at %s:%u (from fdsched)", o->id, o->addr, o->port);
      }
      break;
    }
  }
}

/* out: os->o in the order ids give (see nd_origins_reorder). */
static void order_by(const nd_origins_t *os, const char *const *ids, uint32_t n,
                     nd_peer_t *out) {
  bool taken[ND_ORIGINS_MAX] = {false};
  uint32_t k = 0;
  for (uint32_t j = 0; j < n; j++)
    for (uint32_t i = 0; i < os->n; i++)
      if (!taken[i] && !strcmp(os->o[i].id, ids[j])) {
        out[k++] = os->o[i];
        taken[i] = true;
        break;
      }
  for (uint32_t i = 0; i < os->n; i++)
    if (!taken[i]) out[k++] = os->o[i];
}

bool nd_origins_reorder_moves(const nd_origins_t *os, const char *const *ids, uint32_t n) {
  nd_peer_t out[ND_ORIGINS_MAX];
  order_by(os, ids, n, out);
  for (uint32_t i = 0; i < os->n; i++)
    if (strcmp(out[i].id, os->o[i].id) != 0) return true;
  return false;
}

bool nd_origins_reorder(nd_origins_t *os, const char *const *ids, uint32_t n) {
  nd_peer_t out[ND_ORIGINS_MAX];
  order_by(os, ids, n, out);
  bool changed = false;
  const char *self_id = os->self >= 0 ? os->o[os->self].id : NULL;
  char self_copy[FD_NAME_LEN_MAX + 1] = "";
  if (self_id) snprintf(self_copy, sizeof(self_copy), "%s", self_id);
  for (uint32_t i = 0; i < os->n; i++) {
    if (strcmp(out[i].id, os->o[i].id) != 0) changed = true;
    os->o[i] = out[i];
    if (self_copy[0] && !strcmp(os->o[i].id, self_copy)) os->self = (int)i;
  }
  return changed;
}

void nd_origins_set_addr(nd_origins_t *os, const char *id, const char *addr, uint16_t port) {
  for (uint32_t i = 0; i < os->n; i++) {
    nd_peer_t *o = &os->o[i];
    if (!o->learned || strcmp(o->id, id) != 0 || !port || strlen(addr) >= sizeof(o->addr)) continue;
    if (o->port != port || strcmp(o->addr, addr) != 0) {
      fd_log_info("origin %s at %s:%u (from ZooKeeper)", id, addr, port);
      snprintf(o->addr, sizeof(o->addr), "%s", addr);
      o->port = port;
    }
  }
}
