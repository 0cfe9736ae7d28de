/* bench_merge.c — the cost of a bump on one origin: st_merge_build of a
 * version from a base of --size bytes and a log touching --touched of its
 * chunks (one write of --write-bytes in each, spread evenly), on the
 * filesystem of --dir: the base cloned where it shares blocks (XFS with
 * reflink), copied otherwise (--no-clone forces the copy). The base is
 * written, fdatasync'd and dropped from the page cache first, so a copy
 * reads it from the disk. Prints the merge's phases. Run through
 * merge_bench.sh; not a test. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_log.h"
#include "storage.h"

typedef struct opts {
  const char *dir;
  uint64_t size;
  uint32_t chunk;
  double touched;
  uint32_t write_bytes;
  bool no_clone;
} opts_t;

typedef struct log_it {
  uint64_t next, count, stride, cs;
  uint32_t len;
  uint8_t *buf;
} log_it_t;

static int log_next(void *arg, uint64_t *off, const uint8_t **data, uint32_t *len) {
  log_it_t *it = arg;
  if (it->next == it->count) return 0;
  /* Chunk i * stride, at an offset inside it that varies. */
  uint64_t chunk = it->next * it->stride;
  *off = chunk * it->cs + (it->next * 4099u) % (it->cs - it->len + 1);
  *data = it->buf;
  *len = it->len;
  it->next++;
  return 1;
}

static uint64_t parse_size(const char *s) {
  char *end;
  double v = strtod(s, &end);
  uint64_t m = *end == 'G' ? 1ull << 30 : *end == 'M' ? 1ull << 20 : *end == 'K' ? 1ull << 10 : 1;
  return (uint64_t)(v * (double)m);
}

static void usage(FILE *f) {
  fprintf(f, "usage: bench_merge --dir DIR [--size 1G] [--chunk-size 4M] [--touched 0.01]\n"
             "                   [--write-bytes 64K] [--no-clone]\n"
             "Times st_merge_build of a version from a base of SIZE bytes and a log\n"
             "with one write in TOUCHED of its chunks, in DIR (made and removed).\n");
}

/* The base: v1 of "Bench" in data/, and its manifest, as the store keeps it. */
static int make_base(const opts_t *o, const char *data, const fd_ed25519_key_t *key) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/Bench", data);
  if (mkdir(data, 0755) != 0 || mkdir(path, 0755) != 0) return -errno;
  snprintf(path, sizeof(path), "%s/Bench/v1", data);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -errno;
  uint8_t *buf = malloc(1 << 20);
  uint64_t x = 88172645463325252ull;
  int rc = 0;
  for (uint64_t off = 0; off < o->size && !rc; off += 1 << 20) {
    for (size_t i = 0; i < (1 << 20) / 8; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      memcpy(buf + i * 8, &x, 8);
    }
    size_t n = (size_t)(o->size - off < (1 << 20) ? o->size - off : 1 << 20);
    if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) rc = -EIO;
  }
  free(buf);
  if (!rc && fdatasync(fd) != 0) rc = -errno;
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  st_manifest_t *m;
  if (!rc) rc = st_manifest_build(path, "Bench", 1, 0, o->chunk, &m);
  if (rc) return rc;
  uint8_t *enc = NULL;
  size_t len = 0;
  if (!(rc = st_manifest_sign(m, key))) rc = st_manifest_encode(m, &enc, &len);
  st_manifest_free(m);
  snprintf(path, sizeof(path), "%s/Bench/v1.manifest", data);
  fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!rc && (fd < 0 || write(fd, enc, len) != (ssize_t)len || fdatasync(fd) != 0)) rc = -EIO;
  if (fd >= 0) close(fd);
  free(enc);
  /* st_manifest_build read it through the cache: drop it again. */
  snprintf(path, sizeof(path), "%s/Bench/v1", data);
  fd = open(path, O_RDONLY);
  if (fd >= 0) {
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
  return rc;
}

int main(int argc, char **argv) {
  opts_t o = {.size = 1ull << 30, .chunk = 4u << 20, .touched = 0.01, .write_bytes = 64u << 10};
  static const struct option lo[] = {{"dir", 1, 0, 'd'},     {"size", 1, 0, 's'},
                                     {"chunk-size", 1, 0, 'c'}, {"touched", 1, 0, 't'},
                                     {"write-bytes", 1, 0, 'w'}, {"no-clone", 0, 0, 'n'},
                                     {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
      case 'd': o.dir = optarg; break;
      case 's': o.size = parse_size(optarg); break;
      case 'c': o.chunk = (uint32_t)parse_size(optarg); break;
      case 't': o.touched = strtod(optarg, NULL); break;
      case 'w': o.write_bytes = (uint32_t)parse_size(optarg); break;
      case 'n': o.no_clone = true; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (!o.dir || o.size == 0 || o.write_bytes == 0 || o.write_bytes > o.chunk || o.touched <= 0 ||
      o.touched > 1) {
    usage(stderr);
    return 2;
  }
  fd_log_init("bench_merge", FD_LOG_WARN);
  char data[4096];
  snprintf(data, sizeof(data), "%s/bench-merge-XXXXXX", o.dir);
  if (!mkdtemp(data)) {
    perror(o.dir);
    return 1;
  }
  char root[4096];
  snprintf(root, sizeof(root), "%s", data);
  strncat(data, "/data", sizeof(data) - strlen(data) - 1);
  fd_ed25519_key_t key;
  int rc = fd_ed25519_generate(&key);
  if (!rc) rc = make_base(&o, data, &key);
  st_merge_result_t r = {0};
  uint64_t chunks = (o.size + o.chunk - 1) / o.chunk;
  log_it_t it = {.count = (uint64_t)((double)chunks * o.touched + 0.5), .cs = o.chunk,
                 .len = o.write_bytes, .buf = malloc(o.write_bytes)};
  if (it.count == 0) it.count = 1;
  it.stride = chunks / it.count;
  memset(it.buf, 0x5a, o.write_bytes);
  if (!rc) {
    st_merge_opts_t mo = {.data_dir = data, .name = "Bench", .base_version = 1, .version = 2,
                          .created_unix_s = 1800000000u, .next = log_next, .next_arg = &it,
                          .signer = {.key = &key}, .no_clone = o.no_clone};
    rc = st_merge_build(&mo, &r);
  }
  if (rc) {
    fprintf(stderr, "bench_merge: %s\n", strerror(-rc));
  } else {
    printf("merge of %.2f GiB, chunk %u KiB, %" PRIu64 " writes of %u bytes (%u of %u chunks "
           "hashed): base %s %.1f ms, writes+fdatasync %.1f ms, hashing %.1f ms, total %.1f ms\n",
           (double)o.size / (1u << 30), o.chunk >> 10, r.writes, o.write_bytes, r.chunks_hashed,
           r.chunks_hashed + r.chunks_reused, r.cloned ? "cloned" : "copied",
           (double)r.copy_ns / 1e6, (double)r.apply_ns / 1e6, (double)r.hash_ns / 1e6,
           (double)r.total_ns / 1e6);
  }
  free(r.manifest);
  free(it.buf);
  char cmd[4200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  if (system(cmd) != 0) fprintf(stderr, "bench_merge: cannot remove %s\n", root);
  return rc ? 1 : 0;
}
