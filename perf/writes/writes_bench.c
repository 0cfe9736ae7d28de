/*
 * writes_bench — the writer side of the write-path benchmark (issue 21), on
 * libfdclient: one connection to the origin group's head, changes sent with
 * fdc_append_async / fdc_write_async, up to --inflight of them in flight
 * (fdc_opts_t.inflight_max), each change's acknowledgement latency measured
 * from just before its async call to its done callback (CLOCK_MONOTONIC).
 *
 *   writes_bench --origins H:P,... --cluster-key F --key F [--cert F] --name NAME
 *                [--mode append|write|patch] [--size BYTES] [--inflight N]
 *                [--seconds S | --count N] [--warmup-seconds S] [--offset BYTES]
 *                [--patch-list FILE --patch-data FILE]
 *
 *   append  --size-byte appends (default 100) to NAME
 *   write   --size-byte writes (default 1 MiB) at --offset, --offset + size, ...
 *   patch   one write per line "OFFSET LENGTH" of --patch-list, its bytes read
 *           from --patch-data at OFFSET (the local model of the new version);
 *           every line is sent once (no --seconds / --count)
 *
 * Changes during --warmup-seconds (default 1; 0 for patch) are sent and
 * waited for but not counted. The measured window runs from the first
 * counted submit to the last counted acknowledgement. Prints one line:
 *   result mode=M size=B inflight=N ops=K seconds=T ops_s=X mb_s=Y p50_us=A
 *          p99_us=B max_us=C failed=F cpu_s=U
 * (mb_s in 10^6 bytes/s; cpu_s: this process's user+system CPU in the
 * window), and exits 0 only when every change was acknowledged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "fdclient.h"

#define WB_INFLIGHT_MAX 1024u          /* FDC_INFLIGHT_MAX */
#define WB_LAT_MAX (16u * 1024u * 1024u) /* latencies kept (the rest still counted) */
#define WB_POLL_MS 100u
#define WB_WAIT_MS 120000u

typedef enum { WB_APPEND, WB_WRITE, WB_PATCH } wb_mode_t;

typedef struct wb_slot {
  uint64_t submit_ns;
  bool counted;
  bool used;
} wb_slot_t;

typedef struct wb {
  wb_mode_t mode;
  uint64_t acked, failed, acked_bytes;
  uint64_t first_submit_ns, last_ack_ns;
  uint64_t *lat_ns;
  uint64_t lat_n;
  wb_slot_t slot[WB_INFLIGHT_MAX];
  wb_slot_t *free_slot[WB_INFLIGHT_MAX]; /* a stack of the slots not in flight */
  uint32_t free_n;
  uint32_t size;
} wb_t;

static wb_t g_wb;
static fdc_t *g_c;

static void done(void *arg, int err, const fdc_seq_t *seq) {
  (void)seq;
  wb_slot_t *s = arg;
  uint64_t t = fd_now_ns();
  s->used = false;
  g_wb.free_slot[g_wb.free_n++] = s;
  if (err) {
    g_wb.failed++;
    static unsigned reported;
    if (reported++ < 5)
      fprintf(stderr, "writes_bench: change failed: %s (%s)\n", fdc_strerror(err),
              fdc_last_error(g_c));
    return;
  }
  if (!s->counted) return;
  g_wb.acked++;
  g_wb.acked_bytes += g_wb.size;
  g_wb.last_ack_ns = t;
  if (g_wb.lat_n < WB_LAT_MAX) g_wb.lat_ns[g_wb.lat_n++] = t - s->submit_ns;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, uint64_t n, double p) {
  if (!n) return 0;
  uint64_t i = (uint64_t)(p * (double)(n - 1) + 0.5);
  return (double)v[i] / 1e3;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: writes_bench --origins H:P,... --cluster-key F --key F [--cert F] --name NAME\n"
          "       [--mode append|write|patch] [--size BYTES] [--inflight N]\n"
          "       [--seconds S | --count N] [--warmup-seconds S] [--offset BYTES]\n"
          "       [--patch-list FILE --patch-data FILE]\n");
}

int main(int argc, char **argv) {
  fdc_opts_t o = {.timeout_ms = 60000};
  const char *name = NULL, *patch_list = NULL, *patch_data = NULL;
  double seconds = 5, warmup = -1;
  uint64_t count = 0, offset = 0;
  uint32_t inflight = 1;
  bool size_set = false;
  g_wb.mode = WB_APPEND;
  static const struct option lo[] = {
      {"origins", 1, 0, 'o'},    {"cluster-key", 1, 0, 'c'}, {"key", 1, 0, 'k'},
      {"cert", 1, 0, 'C'},       {"name", 1, 0, 'n'},        {"mode", 1, 0, 'm'},
      {"size", 1, 0, 's'},       {"inflight", 1, 0, 'i'},    {"seconds", 1, 0, 't'},
      {"count", 1, 0, 'N'},      {"warmup-seconds", 1, 0, 'w'}, {"offset", 1, 0, 'O'},
      {"patch-list", 1, 0, 'L'}, {"patch-data", 1, 0, 'D'},  {"help", 0, 0, 'h'},
      {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
    case 'o': o.origins = optarg; break;
    case 'c': o.cluster_key_file = optarg; break;
    case 'k': o.key_file = optarg; break;
    case 'C': o.cert_file = optarg; break;
    case 'n': name = optarg; break;
    case 'm':
      if (!strcmp(optarg, "append")) g_wb.mode = WB_APPEND;
      else if (!strcmp(optarg, "write")) g_wb.mode = WB_WRITE;
      else if (!strcmp(optarg, "patch")) g_wb.mode = WB_PATCH;
      else return usage(stderr), 2;
      break;
    case 's': g_wb.size = (uint32_t)strtoul(optarg, NULL, 0); size_set = true; break;
    case 'i': inflight = (uint32_t)strtoul(optarg, NULL, 0); break;
    case 't': seconds = strtod(optarg, NULL); break;
    case 'N': count = strtoull(optarg, NULL, 0); break;
    case 'w': warmup = strtod(optarg, NULL); break;
    case 'O': offset = strtoull(optarg, NULL, 0); break;
    case 'L': patch_list = optarg; break;
    case 'D': patch_data = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!size_set) g_wb.size = g_wb.mode == WB_APPEND ? 100 : FDC_WRITE_BYTES_MAX;
  if (warmup < 0) warmup = g_wb.mode == WB_PATCH ? 0 : 1;
  if (!o.origins || !o.cluster_key_file || !o.key_file || !name || !inflight ||
      inflight > WB_INFLIGHT_MAX || !g_wb.size || g_wb.size > FDC_WRITE_BYTES_MAX ||
      (g_wb.mode == WB_PATCH && (!patch_list || !patch_data))) {
    usage(stderr);
    return 2;
  }
  o.inflight_max = inflight;
  uint64_t need = (uint64_t)inflight * g_wb.size;
  o.inflight_bytes_max = need < FDC_WRITE_BYTES_MAX ? FDC_WRITE_BYTES_MAX : need;

  /* patch: the (offset, length) list and the model file */
  FILE *pl = NULL, *pd = NULL;
  if (g_wb.mode == WB_PATCH) {
    pl = fopen(patch_list, "r");
    pd = fopen(patch_data, "r");
    if (!pl || !pd) {
      fprintf(stderr, "writes_bench: cannot open the patch files: %s\n", strerror(errno));
      return 2;
    }
  }
  g_wb.lat_ns = malloc(WB_LAT_MAX * sizeof(uint64_t));
  uint8_t *buf = malloc(FDC_WRITE_BYTES_MAX);
  if (!g_wb.lat_ns || !buf) return 1;
  for (uint32_t i = 0; i < g_wb.size; i++) buf[i] = (uint8_t)(i * 131u + 7u);

  for (uint32_t i = 0; i < inflight; i++) g_wb.free_slot[g_wb.free_n++] = &g_wb.slot[inflight - 1 - i];

  fdc_t *c;
  char why[512] = "";
  int rc = fdc_open(&o, &c, why, sizeof(why));
  if (rc) {
    fprintf(stderr, "writes_bench: open: %s: %s\n", fdc_strerror(rc), why);
    return 3;
  }
  g_c = c;

  uint64_t t0 = fd_now_ns();
  uint64_t warm_end = t0 + (uint64_t)(warmup * 1e9);
  uint64_t stop = warm_end + (uint64_t)(seconds * 1e9);
  uint64_t sent = 0, counted_sent = 0;
  double cpu0 = 0;
  bool in_window = warmup <= 0, more = true;
  if (in_window) cpu0 = bench_cpu_s();
  int exit_rc = 0;
  while (more) {
    /* fill the window */
    for (;;) {
      uint64_t t = fd_now_ns();
      if (!in_window && t >= warm_end) {
        /* counted changes start once the warm-up's are all answered */
        if (fdc_inflight(c)) break;
        in_window = true;
        cpu0 = bench_cpu_s();
        stop = t + (uint64_t)(seconds * 1e9);
      }
      if (g_wb.mode != WB_PATCH && in_window &&
          (count ? counted_sent >= count : t >= stop)) {
        more = false;
        break;
      }
      if (!g_wb.free_n) break;
      wb_slot_t *s = g_wb.free_slot[--g_wb.free_n];
      uint64_t off = 0;
      uint32_t len = g_wb.size;
      if (g_wb.mode == WB_PATCH) {
        unsigned long long po, pn;
        if (fscanf(pl, "%llu %llu", &po, &pn) != 2) {
          more = false;
          break;
        }
        if (!pn || pn > FDC_WRITE_BYTES_MAX || fseeko(pd, (off_t)po, SEEK_SET) ||
            fread(buf, 1, pn, pd) != pn) {
          fprintf(stderr, "writes_bench: bad patch line %llu %llu\n", po, pn);
          exit_rc = 2;
          more = false;
          break;
        }
        off = po;
        len = (uint32_t)pn;
        g_wb.size = len; /* bytes counted per ack: patch lines are all one length here */
      } else if (g_wb.mode == WB_WRITE) {
        off = offset + sent * (uint64_t)g_wb.size;
      }
      s->used = true;
      s->counted = in_window;
      s->submit_ns = fd_now_ns();
      rc = g_wb.mode == WB_APPEND ? fdc_append_async(c, name, buf, len, done, s)
                                  : fdc_write_async(c, name, off, buf, len, done, s);
      if (rc) {
        s->used = false;
        g_wb.free_slot[g_wb.free_n++] = s;
      }
      if (rc == -EAGAIN) {
        if (g_wb.mode == WB_PATCH) {
          fprintf(stderr, "writes_bench: -EAGAIN below inflight_max\n");
          exit_rc = 1;
          more = false;
        }
        break;
      }
      if (rc) {
        fprintf(stderr, "writes_bench: submit: %s (%s)\n", fdc_strerror(rc), fdc_last_error(c));
        exit_rc = 1;
        more = false;
        break;
      }
      if (in_window && !g_wb.first_submit_ns) g_wb.first_submit_ns = s->submit_ns;
      sent++;
      if (in_window) counted_sent++;
    }
    if (!more) break;
    rc = fdc_poll(c, WB_POLL_MS);
    if (rc < 0) {
      fprintf(stderr, "writes_bench: poll: %s\n", fdc_strerror(rc));
      exit_rc = 1;
      break;
    }
    if (g_wb.failed) {
      exit_rc = 1;
      break;
    }
  }
  rc = fdc_wait(c, WB_WAIT_MS);
  if (rc) {
    fprintf(stderr, "writes_bench: wait: %s\n", fdc_strerror(rc));
    exit_rc = 1;
  }
  double cpu = bench_cpu_s() - cpu0;
  fdc_close(c);
  if (g_wb.failed) exit_rc = 1;

  double secs = g_wb.last_ack_ns > g_wb.first_submit_ns
                    ? (double)(g_wb.last_ack_ns - g_wb.first_submit_ns) / 1e9
                    : 0;
  qsort(g_wb.lat_ns, g_wb.lat_n, sizeof(uint64_t), cmp_u64);
  static const char *mode_name[] = {"append", "write", "patch"};
  printf("result mode=%s size=%u inflight=%u ops=%" PRIu64 " seconds=%.3f ops_s=%.1f mb_s=%.2f "
         "p50_us=%.0f p99_us=%.0f max_us=%.0f failed=%" PRIu64 " cpu_s=%.2f\n",
         mode_name[g_wb.mode], g_wb.size, inflight, g_wb.acked, secs,
         secs > 0 ? (double)g_wb.acked / secs : 0,
         secs > 0 ? (double)g_wb.acked_bytes / secs / 1e6 : 0, pct_us(g_wb.lat_ns, g_wb.lat_n, 0.50),
         pct_us(g_wb.lat_ns, g_wb.lat_n, 0.99),
         g_wb.lat_n ? (double)g_wb.lat_ns[g_wb.lat_n - 1] / 1e3 : 0, g_wb.failed, cpu);
  if (pl) fclose(pl);
  if (pd) fclose(pd);
  free(buf);
  free(g_wb.lat_ns);
  return exit_rc;
}
