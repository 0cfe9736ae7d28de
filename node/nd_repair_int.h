/* nd_repair_int.h — the repair role's own state, for nd_repair.c and
 * nd_scrub.c only. */
#ifndef ND_REPAIR_INT_H
#define ND_REPAIR_INT_H

#include "nd_repair.h"

typedef struct nd_rpeer {
  char addr[SCH_ADDRESS_LEN_MAX];
  uint16_t port;
  nd_peer_class_t link; /* from the order (metrics); an origin's: ND_PEER_ORIGIN */
} nd_rpeer_t;

/* What the latest order for a file says about where its chunks are. */
typedef struct nd_rorder {
  bool used;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint64_t seen_ms;
  nd_rpeer_t peer[ND_REPAIR_PEERS_MAX]; /* repair peers, then stripe parents */
  uint32_t peers;
} nd_rorder_t;

/* A complete version with bad chunks, held open until they are repaired. */
typedef struct nd_rver {
  nd_ver_t *ver;
  uint8_t *reported; /* bit per chunk: reported bad, not repaired yet */
} nd_rver_t;

/* When the version in plane slot i was last scrubbed. */
typedef struct nd_scrubbed {
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint64_t at_ms;
} nd_scrubbed_t;

struct nd_repair {
  nd_plane_t *p;
  rpc_engine_t *e;
  nd_sched_t *sched;
  const nd_origins_t *origins;
  char self_addr[SCH_ADDRESS_LEN_MAX];
  uint16_t self_port;
  uint32_t keep_versions;
  uint32_t scrub_interval_s;
  uint64_t scrub_rate_bytes;
  bool stopping;
  nd_rver_t vers[ND_VERS_MAX];
  nd_rorder_t orders[ND_FILES_MAX];
  /* the pull under way */
  nd_rver_t *job;
  nd_rpeer_t cand[ND_REPAIR_CANDIDATES_MAX];
  uint32_t cand_n, cand_next;
  const nd_ver_t *cand_for; /* the version the candidates were listed for */
  rpc_conn_t *conn;
  bool conn_ready;
  bool called;     /* the pull of this attempt was started */
  nd_sink_t sink;  /* repair mode: copies rewrite bad chunks in place */
  uint64_t chunks[ND_REPAIR_CHUNKS_PER_PULL];
  uint64_t retry_at_ms;
  /* scrub */
  nd_ver_t *scrubbing;
  nd_scrubbed_t scrubbed[ND_VERS_MAX];
  /* counters over the node's life */
  uint64_t chunks_repaired, repair_failures, scrub_bad;
};

/* nd_repair.c */
void nd_repair_on_chunk(void *owner, nd_sink_t *s, uint32_t index, int res);

/* nd_scrub.c */
void nd_scrub_tick(nd_repair_t *r);

#endif /* ND_REPAIR_INT_H */
