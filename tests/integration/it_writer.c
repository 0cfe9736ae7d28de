/*
 * it_writer — a writer for the write path's integration tests, on libfdclient.
 *
 *   it_writer write ORIGINS CLUSTER_KEY KEY[,CERT] NAME WRITER COUNT [MAX_LEN] [OVERWRITE_EVERY]
 *     KEY alone is the admin key; with CERT, a writer key and its certificate.
 *     sends COUNT changes with up to 256 in flight: appends of 1..MAX_LEN
 *     (default 300) bytes, and every OVERWRITE_EVERY-th (default 0: never) a
 *     write at an offset inside what this writer saw acknowledged; each
 *     change's bytes come from (WRITER, its number), so they can be made
 *     again. Prints one line per acknowledged change:
 *       ack VERSION INDEX OFFSET LENGTH WRITER NUMBER
 *     and one per change that failed: `fail WRITER NUMBER ERRNO` (`unknown`
 *     instead of `fail` when it may be in the log). A change whose outcome
 *     is unknown is never sent again from here: the library sends it again
 *     (same client_id and client_seq, until its deadline; issue 22), and a
 *     new change would be a second one. A change refused for good and not
 *     applied (-ENOBUFS: the head full; -EBUSY: it kept asking to try again
 *     until the deadline) is sent again as a new change. Exits 0 when every
 *     change was acknowledged, 1 otherwise.
 *   it_writer model BASE OUT
 *     reads `ack` lines on stdin, orders them by (VERSION, INDEX) and writes
 *     OUT: BASE (a file, or - for none) with every change applied in that
 *     order, its bytes made again from (WRITER, NUMBER).
 *   it_writer check FILE
 *     reads `ack` lines on stdin and checks each change's bytes are at its
 *     offset in FILE (appends only); exits 1 naming the first missing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdclient.h"

#define INFLIGHT 256u

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/* The bytes of change (writer, number): deterministic. */
static void fill(uint8_t *p, uint32_t len, uint64_t writer, uint64_t number) {
  uint64_t x = mix(writer << 32 | number) | 1;
  for (uint32_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (uint8_t)x;
  }
}

static uint32_t length_of(uint64_t writer, uint64_t number, uint32_t max_len) {
  return 1 + (uint32_t)(mix(writer * 1000003u + number) % max_len);
}

typedef struct job {
  uint64_t writer, number;
  uint32_t len;
  uint64_t offset; /* a write's; UINT64_MAX: an append */
  int *failed;
  uint64_t *seen_end; /* the end of the file as this writer saw it acknowledged */
  struct job **retry; /* refused for now (not applied): sent again */
  struct job *next;
} job_t;

static void done(void *arg, int err, const fdc_seq_t *seq) {
  job_t *j = arg;
  if (err == -ENOBUFS || err == -EBUSY) { /* the head said: not taken, try again */
    j->next = *j->retry;
    *j->retry = j;
    return;
  }
  if (err) {
    printf("%s %" PRIu64 " %" PRIu64 " %d\n", fdc_outcome_unknown(err) ? "unknown" : "fail",
           j->writer, j->number, -err);
    (*j->failed)++;
  } else {
    printf("ack %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %" PRIu64 " %" PRIu64 "\n", seq->version,
           seq->index, seq->offset, j->len, j->writer, j->number);
    if (seq->offset + j->len > *j->seen_end) *j->seen_end = seq->offset + j->len;
  }
  free(j);
}

static int cmd_write(int argc, char **argv) {
  if (argc < 8) return 2;
  uint64_t writer = strtoull(argv[6], NULL, 10), count = strtoull(argv[7], NULL, 10);
  uint32_t max_len = argc > 8 ? (uint32_t)strtoul(argv[8], NULL, 10) : 300;
  uint64_t every = argc > 9 ? strtoull(argv[9], NULL, 10) : 0;
  if (!max_len || max_len > FDC_WRITE_BYTES_MAX) return 2;
  char key[4096];
  snprintf(key, sizeof(key), "%s", argv[4]);
  char *cert = strchr(key, ',');
  if (cert) *cert++ = '\0';
  fdc_opts_t o = {.origins = argv[2], .cluster_key_file = argv[3], .key_file = key,
                  .cert_file = cert, .inflight_max = INFLIGHT, .timeout_ms = 60000};
  fdc_t *c;
  char why[512] = "";
  int rc = fdc_open(&o, &c, why, sizeof(why));
  if (rc) {
    fprintf(stderr, "it_writer: open: %s: %s\n", fdc_strerror(rc), why);
    return 3;
  }
  uint8_t *buf = malloc(max_len);
  int failed = 0;
  uint64_t seen_end = 0, retried = 0;
  job_t *retry = NULL;
  for (uint64_t n = 0; buf;) {
    job_t *j = retry;
    if (j) { /* a change refused for now goes again, as it was */
      retry = j->next;
      retried++;
    } else if (n < count && (j = malloc(sizeof(*j)))) {
      *j = (job_t){writer, n, length_of(writer, n, max_len), UINT64_MAX, &failed, &seen_end,
                   &retry, NULL};
      if (every && n % every == every - 1 && seen_end > j->len)
        j->offset = mix(n) % (seen_end - j->len);
      n++;
    } else {
      if (n < count) break; /* no memory */
      rc = fdc_wait(c, 120000); /* the last answers may ask for more retries */
      if (rc || !retry) break;
      continue;
    }
    fill(buf, j->len, writer, j->number);
    for (;;) {
      rc = j->offset != UINT64_MAX
               ? fdc_write_async(c, argv[5], j->offset, buf, j->len, done, j)
               : fdc_append_async(c, argv[5], buf, j->len, done, j);
      if (rc != -EAGAIN) break;
      fdc_poll(c, 100); /* room comes with answers */
    }
    if (rc) {
      printf("fail %" PRIu64 " %" PRIu64 " %d\n", writer, j->number, -rc);
      fprintf(stderr, "it_writer: change %" PRIu64 ": %s (%s)\n", j->number, fdc_strerror(rc),
              fdc_last_error(c));
      free(j);
      failed++;
    }
    fflush(stdout);
  }
  if (rc) fprintf(stderr, "it_writer: wait: %s\n", fdc_strerror(rc));
  if (retried) fprintf(stderr, "it_writer: %" PRIu64 " change(s) sent again after the head "
                               "refused them for now\n", retried);
  fprintf(stderr, "it_writer: the head at the end: %s\n", fdc_head(c));
  fdc_close(c);
  free(buf);
  fflush(stdout);
  return failed || rc ? 1 : 0;
}

typedef struct ack {
  uint64_t version, index, offset, writer, number;
  uint32_t len;
} ack_t;

static int by_seq(const void *a, const void *b) {
  const ack_t *x = a, *y = b;
  if (x->version != y->version) return x->version < y->version ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int cmd_model(int argc, char **argv) {
  if (argc < 4) return 2;
  size_t n = 0, cap = 1024;
  ack_t *a = malloc(cap * sizeof(*a));
  char line[256];
  while (a && fgets(line, sizeof(line), stdin)) {
    ack_t x;
    if (sscanf(line, "ack %" SCNu64 " %" SCNu64 " %" SCNu64 " %u %" SCNu64 " %" SCNu64,
               &x.version, &x.index, &x.offset, &x.len, &x.writer, &x.number) != 6)
      continue;
    if (n == cap && !(a = realloc(a, (cap *= 2) * sizeof(*a)))) break;
    a[n++] = x;
  }
  if (!a) return 1;
  qsort(a, n, sizeof(*a), by_seq);
  for (size_t i = 1; i < n; i++)
    if (a[i].version == a[i - 1].version && a[i].index == a[i - 1].index) {
      fprintf(stderr, "it_writer: v%" PRIu64 " index %" PRIu64 " acknowledged twice\n",
              a[i].version, a[i].index);
      return 1;
    }
  FILE *out = fopen(argv[3], "w+");
  if (!out) return 1;
  if (strcmp(argv[2], "-")) {
    FILE *in = fopen(argv[2], "r");
    if (!in) return 1;
    char b[65536];
    size_t k;
    while ((k = fread(b, 1, sizeof(b), in)) > 0) fwrite(b, 1, k, out);
    fclose(in);
  }
  uint8_t *buf = malloc(FDC_WRITE_BYTES_MAX);
  for (size_t i = 0; i < n && buf; i++) {
    fill(buf, a[i].len, a[i].writer, a[i].number);
    if (fseeko(out, (off_t)a[i].offset, SEEK_SET) || fwrite(buf, 1, a[i].len, out) != a[i].len)
      return 1;
  }
  printf("model: %zu acknowledged changes applied\n", n);
  free(buf);
  free(a);
  return fclose(out) ? 1 : 0;
}

/* Every acknowledged change's bytes are at its offset in FILE (appends
 * only: nothing overwrites them). */
static int cmd_check(int argc, char **argv) {
  if (argc < 3) return 2;
  FILE *f = fopen(argv[2], "r");
  if (!f) return 1;
  uint8_t *want = malloc(FDC_WRITE_BYTES_MAX), *got = malloc(FDC_WRITE_BYTES_MAX);
  char line[256];
  uint64_t n = 0, bad = 0;
  while (want && got && fgets(line, sizeof(line), stdin)) {
    ack_t x;
    if (sscanf(line, "ack %" SCNu64 " %" SCNu64 " %" SCNu64 " %u %" SCNu64 " %" SCNu64,
               &x.version, &x.index, &x.offset, &x.len, &x.writer, &x.number) != 6)
      continue;
    n++;
    fill(want, x.len, x.writer, x.number);
    if (fseeko(f, (off_t)x.offset, SEEK_SET) || fread(got, 1, x.len, f) != x.len ||
        memcmp(want, got, x.len)) {
      if (bad++ < 5)
        fprintf(stderr, "it_writer: change (%" PRIu64 ", %" PRIu64 ") acknowledged at v%" PRIu64
                        " index %" PRIu64 " offset %" PRIu64 " is not there\n",
                x.writer, x.number, x.version, x.index, x.offset);
    }
  }
  printf("check: %" PRIu64 " acknowledged changes, %" PRIu64 " missing\n", n, bad);
  free(want);
  free(got);
  fclose(f);
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "write")) return cmd_write(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "model")) return cmd_model(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "check")) return cmd_check(argc, argv);
  fprintf(stderr,
          "usage: it_writer write ORIGINS CLUSTER_KEY KEY[,CERT] NAME WRITER COUNT [MAX_LEN] "
          "[OVERWRITE_EVERY]\n       it_writer model BASE|- OUT < acks\n"
          "       it_writer check FILE < acks\n");
  return 2;
}
