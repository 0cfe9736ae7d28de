/* nd_dl_int.h — the downloaders' own state, for nd_dl.c and nd_stripe.c only. */
#ifndef ND_DL_INT_H
#define ND_DL_INT_H

#include "nd_dl.h"

typedef struct nd_dl nd_dl_t;

/* One stripe of a download: its parent and the FetchStripe stream from it. */
typedef struct nd_stripe {
  nd_dl_t *dl;
  uint32_t stripe;
  char parent_id[FD_NAME_LEN_MAX + 1];
  char parent_addr[SCH_ADDRESS_LEN_MAX];
  uint16_t parent_port;
  nd_peer_class_t link; /* the parent's, from the order (metrics) */
  rpc_conn_t *conn;
  bool conn_ready;
  nd_sink_t sink;
  bool fetching;
  uint64_t retry_at_ms;
} nd_stripe_t;

typedef enum nd_dl_state {
  ND_DL_IDLE, ND_DL_MANIFEST, ND_DL_FETCH, ND_DL_COMPLETING, ND_DL_DONE, ND_DL_FAILED
} nd_dl_state_t;

/* The download of one file. */
struct nd_dl {
  nd_dls_t *all;
  bool used; /* names a file */
  nd_dl_state_t state;
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint8_t digest[FD_SHA256_LEN];
  bool has_digest;
  nd_ver_t *ver;        /* held while the version is being fetched */
  uint32_t chunk_count; /* of the version (for heartbeats once it is done) */
  uint32_t stripes_n;
  nd_stripe_t s[FD_STRIPES_MAX];
  /* manifest fetch */
  rpc_conn_t *mconn;
  rpc_call_t *mcall;
  uint32_t mtry;
  uint64_t retry_at_ms;
  uint64_t started_ms;
  uint64_t ordered_ms;  /* the last order for this file (which slot to reuse) */
  bool pending;         /* the publish is still under way: do not make it current yet */
  bool waiting_logged;
  /* progress watch: a download that moves nothing for ND_DL_STALL_LOG_MS
   * says why, stripe by stripe */
  uint32_t watch_missing;
  uint64_t watch_ms, stall_logged_ms;
};

struct nd_dls {
  nd_plane_t *p;
  rpc_engine_t *e;
  nd_sched_t *sched;
  nd_dl_t dl[ND_FILES_MAX];
  uint64_t refused_logged_ms;
};

/* nd_stripe.c */
void nd_stripe_init(nd_stripe_t *s, nd_dl_t *d, uint32_t stripe);
void nd_stripe_drop(nd_stripe_t *s);      /* cancels its stream and connection */
void nd_stripe_start(nd_stripe_t *s);     /* opens the stream when due */
void nd_stripe_set_parent(nd_stripe_t *s, const Sched__StripeOrder *so);
bool nd_stripe_same_parent(const nd_stripe_t *s, const Sched__StripeOrder *so);
uint32_t nd_stripe_missing(const nd_stripe_t *s); /* chunks of it not held yet */

#endif /* ND_DL_INT_H */
