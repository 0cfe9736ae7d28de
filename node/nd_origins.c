/*
 * nd_origins.c — the origin list (`[node] origins`, chain order, head
 * first): parsing it, and keeping the addresses of the entries given as a
 * bare id current from what fdsched says.
 *
 * An entry is `id@addr:port` (a fixed address, used as it is and never
 * changed: the only kind that works without a scheduler) or a bare `id`
 * (its address is the one that origin registered with fdsched, which lists
 * every live origin on its Register and Heartbeat replies). A bare entry
 * whose address is not known yet has port 0: the chain skips it as it skips
 * an unreachable origin, repair does not try it. An origin that leaves
 * fdsched's list (dead) keeps its last address, so the chain still tries it
 * and drops it only if it does not answer. Only engine 0 reads or writes
 * the list (the serving engines have none).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nd_int.h"

int nd_origins_parse(const char *spec, const char *self_id, nd_origin_t *out, uint32_t max,
                     uint32_t *count, int *self) {
  char buf[sizeof(((nd_config_t *)0)->origins)];
  if (strlen(spec) >= sizeof(buf)) return -EMSGSIZE;
  snprintf(buf, sizeof(buf), "%s", spec);
  *count = 0;
  *self = -1;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    if (*count == max) return -EMSGSIZE;
    nd_origin_t *o = &out[*count];
    memset(o, 0, sizeof(*o));
    char *at = strchr(tok, '@');
    size_t id_len = at ? (size_t)(at - tok) : strlen(tok);
    if (id_len == 0 || id_len > FD_NAME_LEN_MAX) return -EINVAL;
    memcpy(o->id, tok, id_len);
    o->id[id_len] = 0;
    if (!at) {
      o->learned = true; /* address from fdsched; port 0 until then */
    } else if (nd_parse_hostport(at + 1, o->addr, sizeof(o->addr), &o->port) || !o->port) {
      return -EINVAL;
    }
    for (uint32_t i = 0; i < *count; i++)
      if (!strcmp(out[i].id, o->id)) return -EINVAL; /* one place in the chain per origin */
    if (!strcmp(o->id, self_id)) *self = (int)*count;
    (*count)++;
  }
  return 0;
}

void nd_origins_learn(nd_node_t *n, Sched__Peer *const *peers, size_t count) {
  for (uint32_t i = 0; i < n->origins_n; i++) {
    nd_origin_t *o = &n->origins[i];
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
