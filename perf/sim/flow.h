/* flow.h — a flow-level discrete-event model of chunk fan-out over trees.
 *
 * Nodes have a full-duplex NIC (up and down capacity). An edge carries one
 * stripe from a parent to a child, one chunk at a time, in order; a chunk is
 * sent only after the parent has received all of it (store and forward at
 * chunk granularity: the pipelining the real nodes do). Every active edge
 * gets the smallest of its fair shares of the parent's uplink, the child's
 * downlink and, for an edge between regions or between zones, the capacity
 * of that region pair or zone pair; shares are recomputed whenever an edge
 * starts or stops, and in-flight chunks are settled at the old rate first.
 * A share one end leaves unused is not handed to the others (no max-min
 * redistribution), which can only make the model slower than reality.
 * The model never decides topology: the caller sets and changes each node's
 * parent per stripe (from the real planner, or a chain or star reference). */
#ifndef FD_SIM_FLOW_H
#define FD_SIM_FLOW_H

#include <stdbool.h>
#include <stdint.h>

typedef struct flow_params {
  uint32_t nodes, stripes, regions, zones; /* zones: global count */
  uint64_t size_bytes, chunk_bytes;
  double nic_Bps;          /* bytes per second, each direction */
  double cross_region_Bps; /* per ordered region pair */
  double cross_zone_Bps;   /* per ordered zone pair inside a region */
} flow_params_t;

typedef enum { LINK_INTRA_ZONE = 0, LINK_CROSS_ZONE = 1, LINK_CROSS_REGION = 2 } link_class_t;

typedef struct flow flow_t;

/* region[i], zone[i] (global zone index) and is_origin[i] for every node;
 * copied. NULL on bad parameters or no memory. */
flow_t *flow_create(const flow_params_t *prm, const uint16_t *region, const uint16_t *zone,
                    const bool *is_origin);
void flow_destroy(flow_t *f);

/* Sets (or changes, or with parent < 0 removes) the parent of child in
 * stripe s at the current time. Chunks the child holds are kept; a chunk in
 * flight from the old parent is lost. */
void flow_set_parent(flow_t *f, uint32_t child, uint32_t s, int32_t parent);
/* The node stops: its edges stop, partial chunks are lost. */
void flow_kill(flow_t *f, uint32_t node);

/* Starts the clock: edges set before this all start at time 0 (flow_run
 * calls it if the caller did not). */
void flow_start(flow_t *f);
/* Runs until every live node holds every chunk, or until time `until`
 * (seconds), whichever is first. Returns true when everyone is complete. */
bool flow_run(flow_t *f, double until);
double flow_now(const flow_t *f);
/* Time the last live node completed (valid after flow_run returned true). */
double flow_finish_time(const flow_t *f);
uint32_t flow_incomplete(const flow_t *f); /* live nodes still missing chunks */
double flow_bytes(const flow_t *f, link_class_t c);
uint64_t flow_events(const flow_t *f);

#endif /* FD_SIM_FLOW_H */
