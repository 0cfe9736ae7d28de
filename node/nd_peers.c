/* nd_peers.c — parsing of the addresses fdnode is configured with. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nd_peers.h"

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

int nd_origins_parse(nd_origins_t *os, const char *list, const char *self_id) {
  char buf[ND_ORIGINS_MAX * (FD_NAME_LEN_MAX + SCH_ADDRESS_LEN_MAX + 2)];
  if (strlen(list) >= sizeof(buf)) return -EMSGSIZE;
  snprintf(buf, sizeof(buf), "%s", list);
  memset(os, 0, sizeof(*os));
  os->self = -1;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    if (os->n == ND_ORIGINS_MAX) return -EMSGSIZE;
    nd_peer_t *o = &os->o[os->n];
    char *at = strchr(tok, '@');
    if (!at || at == tok || (size_t)(at - tok) > FD_NAME_LEN_MAX) return -EINVAL;
    memcpy(o->id, tok, (size_t)(at - tok));
    o->id[at - tok] = 0;
    if (nd_parse_hostport(at + 1, o->addr, sizeof(o->addr), &o->port)) return -EINVAL;
    if (self_id && !strcmp(o->id, self_id)) os->self = (int)os->n;
    os->n++;
  }
  return 0;
}
