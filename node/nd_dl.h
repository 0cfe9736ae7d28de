/*
 * nd_dl.h — role node: the downloaders, one per file (prefix nd_dls_ for the
 * set, nd_dl_ inside).
 *
 * Owns, for each file fdsched orders this node to hold (up to ND_FILES_MAX
 * at once), the download of the newest version ordered: the manifest
 * (GetManifest from a stripe's parent, checked against the order's digest
 * and, by storage, the trusted admin key), the local delta, one FetchStripe
 * stream per stripe from the parent the order names, re-parenting, and the
 * completion that switches `current`. Files do not share anything but the
 * chunk plane: an order for one file never touches another file's download.
 *
 * Built on the chunk plane (nd_plane.h) and the fdsched link (nd_sched.h);
 * knows no other role. Memory: nd_dls_create allocates every downloader;
 * nd_dls_destroy frees them (after the engine ended every call).
 */
#ifndef ND_DL_H
#define ND_DL_H

#include "nd_plane.h"
#include "nd_sched.h"

typedef struct nd_dls nd_dls_t;

/* NULL with errno (ENOMEM). */
nd_dls_t *nd_dls_create(nd_plane_t *p, rpc_engine_t *e, nd_sched_t *sched);
void nd_dls_destroy(nd_dls_t *d);
/* An order from fdsched (pushed or repeated). */
void nd_dls_order(nd_dls_t *d, const Sched__Order *o);
/* One loop turn: manifests, streams, completions. */
void nd_dls_tick(nd_dls_t *d);
/* For a heartbeat: each file's version being fetched or held. */
size_t nd_dls_held(nd_dls_t *d, Sched__VersionHeld *out, size_t max);
/* Stopping: every stream is cancelled (what storage has keeps landing). */
void nd_dls_stop(nd_dls_t *d);

#endif /* ND_DL_H */
