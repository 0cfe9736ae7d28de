/* st_powercut_check.c — what must hold of a store after a power cut
 * (test_powercut.c):
 *
 *  1. `current`, when there is one, names a whole version: its file is the
 *     manifest's size and every chunk matches the manifest's SHA-256; so
 *     does every other complete v<N>. It exists and names at least v<N> once
 *     the completion of v<N> was acknowledged (and at least the base).
 *  2. No bitmap bit is set for a chunk whose bytes are not durable: for a
 *     v<N>.bitmap whose header matches its manifest (the store resets any
 *     other), every chunk whose bit is set matches its SHA-256 in
 *     v<N>.partial (or in v<N>, once renamed).
 *  3. The store opens, and st_version_begin resumes the version in progress
 *     (st_version_open opens the one under repair); every chunk it counts as
 *     present matches; the version then completes and `current` is it.
 *  4. A chunk whose repair was acknowledged is good; one still under repair
 *     may be old, new or torn, but the file keeps its size.
 *  5. A merge: when `current` names the version the workload makes, it is
 *     that version's model byte for byte (the merge's v2 is v1 and the log,
 *     applied in memory). Once st_merge_build returned, the store resumes
 *     v2 with every chunk present; before, what the cut left either
 *     resumes (only chunks that match count) or is replaced by merging
 *     again, which must make the same manifest; either way v2 completes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "st_powercut.h"

typedef struct acked {
  uint64_t complete;     /* newest version whose completion was acknowledged */
  uint64_t repaired;     /* chunks of v1 whose repair was acknowledged (bits) */
  bool merged;           /* st_merge_build returned 0 */
} acked_t;

static acked_t acked_before(const pcs_run_t *run, uint32_t at) {
  acked_t a = {0};
  for (uint32_t i = pc_rec_begin(run->rec); i < at; i++) {
    uint32_t tag;
    uint64_t value;
    if (!pc_rec_marker(run->rec, i, &tag, &value)) continue;
    if (tag == PCS_TAG_COMPLETE) a.complete = FD_MAX(a.complete, value);
    if (tag == PCS_TAG_REPAIRED) a.repaired |= 1ull << value;
    if (tag == PCS_TAG_MERGED) a.merged = true;
  }
  return a;
}

static uint8_t *read_all(int dir_fd, const char *name, size_t *len) {
  int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1)) != NULL &&
      pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
    free(buf);
    buf = NULL;
  }
  if (buf) *len = (size_t)st.st_size;
  close(fd);
  return buf;
}

static st_manifest_t *read_manifest(int dir_fd, uint64_t version) {
  char name[64];
  snprintf(name, sizeof(name), "v%" PRIu64 ".manifest", version);
  size_t len;
  uint8_t *buf = read_all(dir_fd, name, &len);
  st_manifest_t *m = NULL;
  if (buf && st_manifest_decode(buf, len, &m) != 0) m = NULL;
  free(buf);
  return m;
}

/* Chunks of file name that do not match m's SHA-256 (bit i), or -1 when it
 * cannot be read. *size gets its size. */
static int64_t bad_chunks(int dir_fd, const char *name, const st_manifest_t *m, uint64_t *size) {
  size_t len;
  uint8_t *buf = read_all(dir_fd, name, &len);
  if (!buf) return -1;
  *size = len;
  int64_t bad = 0;
  for (uint32_t i = 0; i < m->chunk_count; i++) {
    uint64_t off = (uint64_t)i * m->chunk_size_bytes;
    uint32_t n = st_manifest_chunk_len(m, i);
    uint8_t sha[FD_SHA256_LEN] = {0};
    if (off + n <= len) fd_sha256(buf + off, n, sha);
    if (off + n > len || memcmp(sha, m->chunk_sha256 + (size_t)i * FD_SHA256_LEN, FD_SHA256_LEN))
      bad |= 1ll << i;
  }
  free(buf);
  return bad;
}

/* Invariant 1 for v<version>: whole but for the chunks in `spare`. */
static const char *check_whole(int dir_fd, uint64_t version, uint64_t spare, char *msg,
                               size_t len) {
  st_manifest_t *m = read_manifest(dir_fd, version);
  if (!m) return pc_say(msg, len, "v%" PRIu64 " has no manifest", version);
  char name[64];
  snprintf(name, sizeof(name), "v%" PRIu64, version);
  uint64_t size = 0;
  int64_t bad = bad_chunks(dir_fd, name, m, &size);
  const char *err = NULL;
  if (bad < 0) {
    err = pc_say(msg, len, "v%" PRIu64 " cannot be read", version);
  } else if (size != m->size_bytes) {
    err = pc_say(msg, len, "v%" PRIu64 " is %" PRIu64 " bytes, its manifest says %" PRIu64,
                   version, size, m->size_bytes);
  } else if ((uint64_t)bad & ~spare) {
    err = pc_say(msg, len, "v%" PRIu64 " is torn: chunks %#" PRIx64 " fail their SHA-256",
                   version, (uint64_t)bad & ~spare);
  }
  st_manifest_free(m);
  return err;
}

/* Invariant 2 for v<version>.bitmap. */
static const char *check_bitmap(int dir_fd, uint64_t version, char *msg, size_t len) {
  char name[80];
  snprintf(name, sizeof(name), "v%" PRIu64 ".bitmap", version);
  size_t n;
  uint8_t *bm = read_all(dir_fd, name, &n);
  if (!bm) return NULL;
  st_manifest_t *m = read_manifest(dir_fd, version);
  const char *err = NULL;
  uint8_t digest[FD_SHA256_LEN];
  uint32_t count = 0, crc = 0;
  if (n >= 52) {
    memcpy(&count, bm + 8, 4);
    memcpy(&crc, bm + 48, 4);
  }
  /* The header as docs/ARCHITECTURE.md gives it: magic, chunk count, the
   * manifest digest, CRC32C of the 48 bytes before it. Any other is reset. */
  bool valid = n >= 52 && memcmp(bm, "FDSTBM1", 8) == 0 && crc == fd_crc32c(0, bm, 48);
  if (valid && !m) {
    err = pc_say(msg, len, "%s is valid but v%" PRIu64 ".manifest is gone", name, version);
  } else if (valid && count == m->chunk_count && st_manifest_digest(m, digest) == 0 &&
             memcmp(digest, bm + 16, FD_SHA256_LEN) == 0) {
    uint64_t set = 0;
    for (uint32_t i = 0; i < count; i++)
      if (64 + i / 8 < n && (bm[64 + i / 8] >> (i % 8) & 1)) set |= 1ull << i;
    char data[80];
    snprintf(data, sizeof(data), "v%" PRIu64 ".partial", version);
    if (faccessat(dir_fd, data, F_OK, 0) != 0) snprintf(data, sizeof(data), "v%" PRIu64, version);
    uint64_t size;
    int64_t bad = set ? bad_chunks(dir_fd, data, m, &size) : 0;
    if (bad < 0)
      err = pc_say(msg, len, "%s has bits %#" PRIx64 " set and no data file", name, set);
    else if ((uint64_t)bad & set)
      err = pc_say(msg, len, "%s says chunks %#" PRIx64 " are durable; their bytes in %s are not",
                     name, (uint64_t)bad & set, data);
  }
  st_manifest_free(m);
  free(bm);
  return err;
}

/* Invariants 1, 2 and 4 on the files as the cut left them. */
static const char *check_files(const pcs_ctx_t *c, const pcs_run_t *run, acked_t a, int dir_fd,
                               char *msg, size_t len) {
  uint64_t need = FD_MAX(a.complete, run->scen == PCS_INGEST ? 0u : 1u);
  uint64_t spare = 0;
  if (run->scen == PCS_REPAIR)
    for (size_t i = 0; i < 2; i++)
      if (!(a.repaired >> c->rotten[i] & 1)) spare |= 1ull << c->rotten[i];
  if (dir_fd < 0)
    return need ? (pc_say(msg, len, "%s/ is gone, v%" PRIu64 " was current", PCS_NAME, need))
                : NULL;
  char target[64];
  ssize_t tn = readlinkat(dir_fd, "current", target, sizeof(target) - 1);
  uint64_t cur = 0;
  if (tn > 1 && target[0] == 'v') {
    target[tn] = 0;
    cur = strtoull(target + 1, NULL, 10);
  }
  if (cur < need)
    return pc_say(msg, len, "current is v%" PRIu64 ", v%" PRIu64 " was acknowledged", cur, need);
  DIR *d = fdopendir(dup(dir_fd));
  if (!d) return pc_say(msg, len, "cannot list %s/", PCS_NAME);
  const char *err = NULL;
  struct dirent *de;
  while (!err && (de = readdir(d)) != NULL) {
    char *end;
    if (de->d_name[0] != 'v') continue;
    uint64_t ver = strtoull(de->d_name + 1, &end, 10);
    if (end == de->d_name + 1) continue;
    if (*end == 0)
      err = check_whole(dir_fd, ver, ver == 1 ? spare : 0, msg, len);
    else if (strcmp(end, ".bitmap") == 0)
      err = check_bitmap(dir_fd, ver, msg, len);
  }
  closedir(d);
  if (!err && cur && faccessat(dir_fd, target, F_OK, 0) != 0)
    err = pc_say(msg, len, "current names %s, which is not there", target);
  if (!err && cur && cur == run->target) {
    size_t n = 0;
    uint8_t *bytes = read_all(dir_fd, "current", &n);
    if (!bytes || n != run->want_size || memcmp(bytes, run->want, n) != 0)
      err = pc_say(msg, len, "current is v%" PRIu64 ", and not its model", cur);
    free(bytes);
  }
  return err;
}

/* Invariant 3: the real store on what the cut left. */
static const char *check_reopen(pcs_ctx_t *c, const pcs_run_t *run, acked_t a,
                                const char *data_dir, uint64_t seed, char *msg, size_t len) {
  st_config_t cfg = c->e.cfg;
  cfg.data_dir = data_dir;
  cfg.no_clone = run->scen == PCS_DELTA_COPY;
  cfg.io_hook = NULL;
  st_store_t *s;
  int rc = st_store_open(&cfg, &s);
  if (rc) return pc_say(msg, len, "st_store_open: %s", strerror(-rc));
  c->e.store = s;
  const char *err = NULL;
  st_version_t *v;
  if (run->target == 0) {
    rc = st_version_open(s, PCS_NAME, 1, &v);
    if (rc) err = pc_say(msg, len, "st_version_open v1: %s", strerror(-rc));
    else st_version_close(v);
    goto out;
  }
  uint64_t t = run->target;
  char dir[300], full[340], file[64];
  snprintf(dir, sizeof(dir), "%s/%s", data_dir, PCS_NAME);
  snprintf(full, sizeof(full), "%s/v%" PRIu64, dir, t);
  /* An origin back from the cut may merge again (half the cuts) rather
   * than resume: whatever the cut left of v2 is replaced. */
  bool merge_again = pcs_is_merge(run->scen) && (seed & 1) && access(full, F_OK) != 0;
  if (merge_again && (rc = pcs_merge(c, data_dir, run->scen == PCS_MERGE_COPY, NULL, NULL)) != 0) {
    err = pc_say(msg, len, "merging v%" PRIu64 " again: %s", t, strerror(-rc));
    goto out;
  }
  rc = st_version_begin(s, run->want_enc, run->want_enc_len, &v);
  if (rc) {
    err = pc_say(msg, len, "st_version_begin v%" PRIu64 ": %s", t, strerror(-rc));
    goto out;
  }
  uint64_t present = 0;
  uint32_t chunks = st_version_manifest(v)->chunk_count;
  for (uint32_t i = 0; i < chunks; i++)
    if (st_version_has(v, i)) present |= 1ull << i;
  snprintf(file, sizeof(file), "v%" PRIu64 "%s", t, st_version_is_complete(v) ? "" : ".partial");
  int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  uint64_t size;
  int64_t bad = bad_chunks(dir_fd, file, st_version_manifest(v), &size);
  close(dir_fd);
  if (bad < 0 || ((uint64_t)bad & present)) {
    err = pc_say(msg, len, "resumed v%" PRIu64 " counts chunks %#" PRIx64 " present; %s has %#" PRIx64
                   " bad", t, present, file, (uint64_t)bad);
  } else if ((a.merged || merge_again) && st_version_missing(v) != 0) {
    err = pc_say(msg, len, "v%" PRIu64 " was merged%s, yet %u chunks are missing on resuming", t,
                 merge_again ? " again" : "", st_version_missing(v));
  } else if (!st_version_is_complete(v)) {
    /* Resume as a node would: reuse, fetch the rest, complete. */
    uint64_t rng = seed;
    if (run->scen == PCS_DELTA_COPY || run->scen == PCS_DELTA_CLONE) rc = pcs_delta_wait(c, v);
    if (!rc) rc = pcs_put_missing(c, v, run->want, PCS_CHUNKS_MAX, &rng);
    if (!rc) rc = st_complete_wait(&c->e, v);
    if (rc) err = pc_say(msg, len, "resuming v%" PRIu64 ": %s", t, strerror(-rc));
  }
  st_close_wait(&c->e, v);
  if (!err) {
    size_t n = 0;
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint8_t *cur = read_all(dir_fd, "current", &n);
    close(dir_fd);
    if (!cur || n != run->want_size || memcmp(cur, run->want, n) != 0)
      err = pc_say(msg, len, "after resuming, current is not v%" PRIu64, t);
    free(cur);
  }
out:
  st_store_close(s);
  c->e.store = NULL;
  return err;
}

const char *pcs_check_cut(pcs_ctx_t *c, const pcs_run_t *run, uint32_t at, const char *data_dir,
                          char *msg, size_t len) {
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/%s", data_dir, PCS_NAME);
  int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  acked_t a = acked_before(run, at);
  const char *err = check_files(c, run, a, dir_fd, msg, len);
  if (dir_fd >= 0) close(dir_fd);
  return err ? err : check_reopen(c, run, a, data_dir, (uint64_t)at * 7919u, msg, len);
}
