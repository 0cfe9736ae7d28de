/* st_log_test_util.h — what the changelog's tests share: deterministic
 * payloads, a tracker of acknowledgements, and waiting for a log to drain. */
#ifndef ST_LOG_TEST_UTIL_H
#define ST_LOG_TEST_UTIL_H

#include "st_test_util.h"

/* Record seq's payload: 8 bytes of seq, then bytes that depend on it; len
 * is the caller's choice (>= 8 for the check to see the sequence). */
static inline void stl_payload(uint64_t seq, uint8_t *buf, uint32_t len) {
  st_fill(buf, len, seq + 1);
  if (len >= 8) memcpy(buf, &seq, 8);
}

/* True when payload is record seq's of len bytes. */
static inline bool stl_payload_is(uint64_t seq, const void *payload, uint32_t len) {
  static uint8_t want[FD_LOG_RECORD_MAX];
  stl_payload(seq, want, len);
  return memcmp(want, payload, len) == 0;
}

/* Acknowledgements of one log, in the order the done callbacks ran. */
typedef struct stl_acks {
  uint64_t next;      /* the sequence the next done must be for */
  uint64_t ok, failed;
  int last_err;
  bool out_of_order;
} stl_acks_t;

typedef struct stl_ack {
  stl_acks_t *acks;
  uint64_t seq;
} stl_ack_t;

static inline void stl_ack_cb(void *arg, int res) {
  stl_ack_t *a = arg;
  if (a->seq != a->acks->next) a->acks->out_of_order = true;
  a->acks->next = a->seq + 1;
  if (res == 0) a->acks->ok++;
  else a->acks->failed++, a->acks->last_err = res;
}

/* Runs the ring until nothing of l is in flight. */
static inline int stl_drain(fd_ring_t *ring, const st_log_t *l) {
  while (st_log_inflight(l)) {
    int rc = fd_ring_run_once(ring, 1, 0);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) return rc;
  }
  return 0;
}

#endif /* ST_LOG_TEST_UTIL_H */
