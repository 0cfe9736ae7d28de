/* powercut_run.c — what a power-cut test runs on: its options from the
 * environment, the loop that cuts one recording at its points and reports
 * what broke, and small helpers. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fd_assert.h"
#include "powercut_int.h"

#define PC_TRACED_MAX 3u /* broken cuts told in full */

void *pc_grow(void *p, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap) return p;
  uint32_t c = *cap ? *cap : 8;
  while (c < need) c *= 2;
  p = realloc(p, (size_t)c * elem);
  FD_ASSERT(p != NULL);
  memset((uint8_t *)p + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
  *cap = c;
  return p;
}

uint64_t pc_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -errno;
}

int pc_remove_tree(const char *path) {
  int rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return rc < 0 && errno == ENOENT ? 0 : rc;
}

const char *pc_say(char *msg, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, len, fmt, ap);
  va_end(ap);
  return msg;
}

double pc_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- options ---------------------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  char *end;
  unsigned long long v = strtoull(s, &end, 0);
  return *end || v == 0 ? dflt : (uint64_t)v;
}

/* True when files in dir take O_DIRECT (tmpfs does since Linux 6.6). */
static bool takes_o_direct(const char *dir) {
  char path[300];
  snprintf(path, sizeof(path), "%s/fd-powercut-probe-XXXXXX", dir);
  int fd = mkstemp(path);
  if (fd < 0) return false;
  close(fd);
  fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
  void *buf = fd >= 0 ? aligned_alloc(4096, 4096) : NULL;
  bool ok = buf && pwrite(fd, memset(buf, 0, 4096), 4096, 0) == 4096;
  free(buf);
  if (fd >= 0) close(fd);
  unlink(path);
  return ok;
}

void pc_opts_read(pc_opts_t *o) {
  o->cuts = env_u64("FDIST_POWERCUT_CUTS", 1000);
  o->seed = env_u64("FDIST_POWERCUT_SEED", (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid());
  o->dir = getenv("FDIST_POWERCUT_DIR") ? getenv("FDIST_POWERCUT_DIR") : "/var/tmp";
  o->cut_dir = getenv("FDIST_POWERCUT_CUT_DIR");
  if (!o->cut_dir) o->cut_dir = takes_o_direct("/dev/shm") ? "/dev/shm" : o->dir;
}

/* ---- the cuts of one recording ---------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

uint32_t pc_cut_run(const pc_rec_t *r, uint64_t budget, uint64_t *rng, const char *work,
                    const char *label, pc_check_fn check, void *arg, pc_tally_t *t) {
  uint32_t begin = pc_rec_begin(r), n = pc_rec_end(r) - begin + 1;
  uint32_t k = budget < n ? (uint32_t)budget : n;
  uint32_t *at = malloc((k ? k : 1) * sizeof(*at));
  FD_ASSERT(at != NULL);
  for (uint32_t i = 0; i < k; i++) at[i] = k == n ? begin + i : begin + (uint32_t)(pc_rand(rng) % n);
  qsort(at, k, sizeof(*at), cmp_u32);
  pc_disk_t *d = pc_disk_create(r);
  char cut[300], msg[512];
  snprintf(cut, sizeof(cut), "%s/cut", work);
  for (uint32_t i = 0; i < k; i++) {
    pc_disk_advance(d, at[i]);
    uint64_t seed = pc_rand(rng);
    pc_cut_stats_t st;
    pc_remove_tree(cut);
    int rc = pc_disk_cut(d, seed, cut, NULL, &st);
    FD_ASSERT(rc == 0);
    t->cuts++;
    t->lost += st.writes_lost + st.writes_torn + st.dirops_lost > 0;
    const char *err = check(arg, at[i], cut, msg, sizeof(msg));
    if (!err) continue;
    fprintf(stderr, "%s: BROKEN, cut at entry %u of %u..%u with seed %#" PRIx64 ": %s\n", label,
            at[i], begin, begin + n - 1, seed, err);
    if (t->broken++ < PC_TRACED_MAX) {
      /* The same cut again, telling what it kept and lost; its tree stays. */
      char kept[320];
      snprintf(kept, sizeof(kept), "%s/kept-%" PRIu64, work, t->broken);
      fprintf(stderr, "  pending at the cut and what became of it (tree kept in %s):\n", kept);
      pc_disk_cut(d, seed, kept, stderr, NULL);
    }
  }
  pc_remove_tree(cut);
  pc_disk_destroy(d);
  free(at);
  return k;
}
