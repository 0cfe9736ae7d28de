/* test_log_rate.c — 100,000 acknowledged 100-byte changelog appends with 256 in flight, closed loop through the ring: prints the time, the rate, the fdatasyncs and the append-to-acknowledgement latency; asserts only that every record was acknowledged, in order, and reads back.
 *
 * A check for the write path's target (100,000 acknowledged appends a
 * second at 256 in flight, p99 <= 20 ms), not a benchmark: the figures depend
 * on the disk under /var/tmp and on what else runs, so nothing asserts them.
 * FDIST_LOG_RATE_RECORDS, FDIST_LOG_RATE_INFLIGHT and FDIST_LOG_RATE_BYTES
 * (a record's payload, up to FD_LOG_RECORD_MAX) change the workload.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "st_log_test_util.h"

typedef struct rate {
  st_log_t *l;
  uint32_t payload;
  uint64_t records, next_ack;
  uint64_t waiting; /* sends the full staging buffer turned away, retried after a done */
  uint64_t *sent_ns, *lat_ns;
  bool bad;
} rate_t;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static rate_t g;

static void on_done(void *arg, int res);

/* Record seq's payload: the same bytes for every record (made once: making
 * a megabyte per record would cost more than appending it) but its first
 * eight, its sequence. */
static uint8_t g_payload[FD_LOG_RECORD_MAX];

static const uint8_t *payload_of(uint64_t seq) {
  memcpy(g_payload, &seq, 8);
  return g_payload;
}

/* Sends what waits, as far as the staging buffer takes it. */
static void send_waiting(void) {
  while (g.waiting > 0) {
    uint64_t seq = st_log_next_seq(g.l);
    if (seq >= g.records) return;
    const uint8_t *buf = payload_of(seq);
    g.sent_ns[seq] = now_ns();
    int rc = st_log_append(g.l, seq, buf, g.payload, on_done, (void *)(uintptr_t)seq);
    if (rc == -EAGAIN) return;
    if (rc) g.bad = true;
    g.waiting--;
  }
}

static void on_done(void *arg, int res) {
  uint64_t seq = (uintptr_t)arg;
  if (res != 0 || seq != g.next_ack) g.bad = true;
  g.next_ack = seq + 1;
  g.lat_ns[seq] = now_ns() - g.sent_ns[seq];
  g.waiting++; /* closed loop: each acknowledgement sends one more */
  send_waiting();
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t env_u64(const char *name, uint64_t dflt) {
  const char *s = getenv(name);
  return s && *s ? strtoull(s, NULL, 0) : dflt;
}

int main(void) {
  fd_log_init("test_storage_log_rate", FD_LOG_WARN);
  st_env_t e;
  int rc = st_env_init(&e, 64u * 1024u, 4);
  if (rc == 77) return 77;
  if (rc) {
    fprintf(stderr, "setup: %s\n", strerror(-rc));
    return 1;
  }
  g.records = env_u64("FDIST_LOG_RATE_RECORDS", 100000);
  uint64_t inflight = env_u64("FDIST_LOG_RATE_INFLIGHT", 256);
  g.payload = (uint32_t)FD_MIN(env_u64("FDIST_LOG_RATE_BYTES", 100), (uint64_t)FD_LOG_RECORD_MAX);
  g.payload = FD_MAX(g.payload, 8u);
  st_fill(g_payload, sizeof(g_payload), 1);
  g.sent_ns = calloc(g.records, sizeof(*g.sent_ns));
  g.lat_ns = calloc(g.records, sizeof(*g.lat_ns));
  FD_ASSERT(g.sent_ns && g.lat_ns && inflight > 0 && inflight <= ST_LOG_BATCH_RECORDS_MAX);
  if ((rc = st_log_open(e.store, "FileA", 2, 1, &g.l)) != 0) {
    fprintf(stderr, "st_log_open: %s\n", strerror(-rc));
    return 1;
  }
  uint64_t t0 = now_ns();
  g.waiting = inflight;
  send_waiting();
  rc = stl_drain(&e.ring, g.l);
  double secs = (double)(now_ns() - t0) / 1e9;
  const st_log_stats_t *st = st_log_stats(g.l);
  bool ok = !rc && !g.bad && g.next_ack == g.records && st->records == g.records;
  qsort(g.lat_ns, g.records, sizeof(*g.lat_ns), cmp_u64);
  printf("test_storage_log_rate: %" PRIu64 " records of %u bytes, %" PRIu64 " in flight: %.2f s, "
         "%.0f records/s, %" PRIu64 " fdatasyncs (%.1f records each); latency p50 %.2f ms, "
         "p99 %.2f ms, max %.2f ms; %.1f MB/s\n", g.records, g.payload, inflight, secs,
         (double)g.records / secs, st->syncs, (double)g.records / (double)st->syncs,
         (double)g.lat_ns[g.records / 2] / 1e6, (double)g.lat_ns[g.records * 99 / 100] / 1e6,
         (double)g.lat_ns[g.records - 1] / 1e6, (double)st->bytes / secs / 1e6);
  st_log_close(g.l);
  /* Every record reads back by path. */
  char path[512];
  st_log_iter_t *it;
  uint64_t n = 0, seq;
  const void *p;
  uint32_t len;
  if (ok && st_log_path(e.store, "FileA", 2, path, sizeof(path)) == 0 &&
      st_log_iter_open(path, &it) == 0) {
    while (st_log_iter_next(it, &seq, &p, &len) == 1 && seq == n && len == g.payload &&
           memcmp(p, payload_of(seq), len) == 0)
      n++;
    st_log_iter_close(it);
  }
  ok = ok && n == g.records;
  if (!ok) fprintf(stderr, "test_storage_log_rate: FAILED (%" PRIu64 " read back)\n", n);
  free(g.sent_ns);
  free(g.lat_ns);
  st_env_fini(&e);
  return ok ? 0 : 1;
}
