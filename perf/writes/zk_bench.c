/*
 * zk_bench — the ZooKeeper reference of the write-path benchmark (issue 21):
 * one client session (libzookeeper_mt) creating persistent sequential znodes
 * of --size bytes (default 100) under --parent, up to --inflight zoo_acreate
 * calls outstanding, each one's latency measured from just before the call
 * to its completion (CLOCK_MONOTONIC). A create is acknowledged by ZooKeeper
 * once a quorum (2 of 3) logged it with fsync (forceSync=yes, the default).
 *
 *   zk_bench --servers H:P[,H:P...] [--parent /bench] [--size BYTES]
 *            [--inflight N] [--seconds S] [--warmup-seconds S]
 *
 * Prints the same result line as writes_bench:
 *   result mode=zk_create size=B inflight=N ops=K seconds=T ops_s=X mb_s=Y
 *          p50_us=A p99_us=B max_us=C failed=F cpu_s=U
 * and exits 0 only when every create succeeded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zookeeper/zookeeper.h>

#include "bench_clock.h"

#define ZB_INFLIGHT_MAX 1024u
#define ZB_SIZE_MAX (1u << 20)
#define ZB_LAT_MAX (16u * 1024u * 1024u)
#define ZB_SESSION_MS 30000
#define ZB_CONNECT_S 30

typedef struct zb_slot {
  uint64_t submit_ns;
  bool counted;
} zb_slot_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static bool g_connected;
static uint32_t g_inflight;
static uint64_t g_acked, g_failed, g_last_ack_ns;
static uint64_t *g_lat;
static uint64_t g_lat_n;
static zb_slot_t g_slot[ZB_INFLIGHT_MAX];
static zb_slot_t *g_free[ZB_INFLIGHT_MAX];
static uint32_t g_free_n;

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  (void)zh, (void)path, (void)ctx;
  if (type != ZOO_SESSION_EVENT) return;
  pthread_mutex_lock(&g_mu);
  g_connected = state == ZOO_CONNECTED_STATE;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

/* Runs on the library's completion thread. */
static void created(int rc, const char *value, const void *data) {
  (void)value;
  zb_slot_t *s = (zb_slot_t *)data;
  uint64_t t = fd_now_ns();
  pthread_mutex_lock(&g_mu);
  if (rc != ZOK) {
    if (g_failed++ < 5) fprintf(stderr, "zk_bench: create failed: %s\n", zerror(rc));
  } else if (s->counted) {
    g_acked++;
    g_last_ack_ns = t;
    if (g_lat_n < ZB_LAT_MAX) g_lat[g_lat_n++] = t - s->submit_ns;
  }
  g_free[g_free_n++] = s;
  g_inflight--;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, uint64_t n, double p) {
  if (!n) return 0;
  return (double)v[(uint64_t)(p * (double)(n - 1) + 0.5)] / 1e3;
}

static void usage(FILE *f) {
  fprintf(f, "usage: zk_bench --servers H:P[,H:P...] [--parent /bench] [--size BYTES]\n"
             "       [--inflight N] [--seconds S] [--warmup-seconds S]\n");
}

/* Blocks until nothing is outstanding (g_mu held). */
static void drain_locked(void) {
  while (g_inflight) pthread_cond_wait(&g_cv, &g_mu);
}

int main(int argc, char **argv) {
  const char *servers = NULL, *parent = "/bench";
  uint32_t size = 100, inflight = 1;
  double seconds = 5, warmup = 1;
  static const struct option lo[] = {
      {"servers", 1, 0, 's'}, {"parent", 1, 0, 'p'},  {"size", 1, 0, 'b'},
      {"inflight", 1, 0, 'i'}, {"seconds", 1, 0, 't'}, {"warmup-seconds", 1, 0, 'w'},
      {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
    case 's': servers = optarg; break;
    case 'p': parent = optarg; break;
    case 'b': size = (uint32_t)strtoul(optarg, NULL, 0); break;
    case 'i': inflight = (uint32_t)strtoul(optarg, NULL, 0); break;
    case 't': seconds = strtod(optarg, NULL); break;
    case 'w': warmup = strtod(optarg, NULL); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!servers || !size || size > ZB_SIZE_MAX || !inflight || inflight > ZB_INFLIGHT_MAX) {
    usage(stderr);
    return 2;
  }
  g_lat = malloc(ZB_LAT_MAX * sizeof(uint64_t));
  char *buf = malloc(size);
  size_t path_len = strlen(parent) + 4;
  char *path = malloc(path_len);
  if (!g_lat || !buf || !path) return 1;
  memset(buf, 'z', size);
  snprintf(path, path_len, "%s/n-", parent);
  for (uint32_t i = 0; i < inflight; i++) g_free[g_free_n++] = &g_slot[inflight - 1 - i];

  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  zhandle_t *zh = zookeeper_init(servers, watcher, ZB_SESSION_MS, NULL, NULL, 0);
  if (!zh) {
    fprintf(stderr, "zk_bench: zookeeper_init: %s\n", strerror(errno));
    return 3;
  }
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ZB_CONNECT_S;
  pthread_mutex_lock(&g_mu);
  while (!g_connected)
    if (pthread_cond_timedwait(&g_cv, &g_mu, &until) == ETIMEDOUT) break;
  bool up = g_connected;
  pthread_mutex_unlock(&g_mu);
  if (!up) {
    fprintf(stderr, "zk_bench: no session with %s in %d s\n", servers, ZB_CONNECT_S);
    zookeeper_close(zh);
    return 3;
  }
  int rc = zoo_create(zh, parent, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  if (rc != ZOK && rc != ZNODEEXISTS) {
    fprintf(stderr, "zk_bench: create %s: %s\n", parent, zerror(rc));
    zookeeper_close(zh);
    return 3;
  }

  uint64_t t0 = fd_now_ns(), first = 0, stop = t0 + (uint64_t)(warmup * 1e9);
  bool in_window = false;
  double cpu0 = 0;
  int exit_rc = 0;
  pthread_mutex_lock(&g_mu);
  for (;;) {
    uint64_t t = fd_now_ns();
    if (!in_window && t >= stop) {
      drain_locked(); /* counted creates start once the warm-up's are answered */
      in_window = true;
      t = fd_now_ns();
      stop = t + (uint64_t)(seconds * 1e9);
      cpu0 = bench_cpu_s();
    }
    if (in_window && t >= stop) break;
    if (g_failed) {
      exit_rc = 1;
      break;
    }
    if (!g_free_n) {
      pthread_cond_wait(&g_cv, &g_mu);
      continue;
    }
    zb_slot_t *s = g_free[--g_free_n];
    s->counted = in_window;
    g_inflight++;
    s->submit_ns = fd_now_ns();
    if (in_window && !first) first = s->submit_ns;
    pthread_mutex_unlock(&g_mu);
    rc = zoo_acreate(zh, path, buf, (int)size, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL,
                     created, s);
    pthread_mutex_lock(&g_mu);
    if (rc != ZOK) {
      fprintf(stderr, "zk_bench: zoo_acreate: %s\n", zerror(rc));
      g_free[g_free_n++] = s;
      g_inflight--;
      exit_rc = 1;
      break;
    }
  }
  drain_locked();
  double cpu = bench_cpu_s() - cpu0;
  if (g_failed) exit_rc = 1;
  pthread_mutex_unlock(&g_mu);
  zookeeper_close(zh);

  double secs = g_last_ack_ns > first ? (double)(g_last_ack_ns - first) / 1e9 : 0;
  qsort(g_lat, g_lat_n, sizeof(uint64_t), cmp_u64);
  printf("result mode=zk_create size=%u inflight=%u ops=%" PRIu64 " seconds=%.3f ops_s=%.1f "
         "mb_s=%.2f p50_us=%.0f p99_us=%.0f max_us=%.0f failed=%" PRIu64 " cpu_s=%.2f\n",
         size, inflight, g_acked, secs, secs > 0 ? (double)g_acked / secs : 0,
         secs > 0 ? (double)g_acked * size / secs / 1e6 : 0, pct_us(g_lat, g_lat_n, 0.50),
         pct_us(g_lat, g_lat_n, 0.99), g_lat_n ? (double)g_lat[g_lat_n - 1] / 1e3 : 0, g_failed,
         cpu);
  free(g_lat);
  free(buf);
  free(path);
  return exit_rc;
}
