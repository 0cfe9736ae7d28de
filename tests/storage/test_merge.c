/* test_merge.c — st_merge_build makes v<N> from v<N-1> and a log of writes byte for byte as a model in memory, its manifest as st_manifest_build's, deterministically, from nothing too; the store resumes and completes it; a failure leaves nothing behind; clone and copy agree. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cmocka.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "st_test_util.h"

#define CS (64u * 1024u)
#define NAME "FileA"
#define BASE_SIZE ((uint64_t)10 * CS + 1000u) /* 11 chunks, the last one short */
#define CREATED 1800000000u

/* ---- the log, and its model ---------------------------------------------------------- */

typedef struct wr {
  uint64_t off;
  uint32_t len;
} wr_t;

/* Out of order, overlapping, spanning chunk boundaries, growing the short
 * last chunk, past the end (a hole of three chunks), one of 0 bytes. */
static const wr_t log_a[] = {
    {5000, 3000},                    /* chunk 0 */
    {3 * CS - 100, 300},             /* chunks 2 and 3 */
    {6000, 1000},                    /* over the first */
    {8 * CS + 10, 50},               /* chunk 8 */
    {4 * CS + 10, 2 * CS},           /* chunks 4, 5, 6 */
    {BASE_SIZE - 500, 2000},         /* the short last chunk grows: the file extends */
    {14 * CS + 123, 777},            /* past the end: 11..13 a hole, 14 the new short last */
    {20 * CS, 0},                    /* nothing, not even the size */
    {5500, 10},                      /* chunk 0 again */
};
#define LOG_A_SIZE ((uint64_t)14 * CS + 900u)
/* Chunks 1, 7, 9 untouched: reused; the other 12 hashed. */
#define LOG_A_HASHED 12u

typedef struct it {
  const wr_t *w;
  size_t n, next;
  uint64_t seed;
  uint8_t buf[2 * CS];
  size_t fail_at; /* > 0: the call after this many writes fails */
} it_t;

static void wr_bytes(uint64_t seed, size_t i, uint8_t *p, uint32_t len) {
  st_fill(p, len, seed * 1000 + i);
}

static int it_next(void *arg, uint64_t *off, const uint8_t **data, uint32_t *len) {
  it_t *it = arg;
  if (it->fail_at && it->next == it->fail_at) return -EPROTO;
  if (it->next == it->n) return 0;
  const wr_t *w = &it->w[it->next];
  FD_ASSERT(w->len <= sizeof(it->buf));
  wr_bytes(it->seed, it->next, it->buf, w->len);
  *off = w->off;
  *data = it->buf;
  *len = w->len;
  it->next++;
  return 1;
}

/* The base with every write applied, as pwrite would. */
static uint8_t *model(const uint8_t *base, uint64_t base_size, const wr_t *w, size_t n,
                      uint64_t seed, uint64_t *size) {
  uint64_t end = base_size;
  for (size_t i = 0; i < n; i++)
    if (w[i].len) end = FD_MAX(end, w[i].off + w[i].len);
  uint8_t *p = calloc(1, end ? end : 1);
  if (base_size) memcpy(p, base, base_size);
  for (size_t i = 0; i < n; i++) wr_bytes(seed, i, p + w[i].off, w[i].len);
  *size = end;
  return p;
}

static st_merge_opts_t opts(const st_env_t *e, it_t *it, uint64_t base, uint64_t version) {
  return (st_merge_opts_t){.data_dir = e->cfg.data_dir, .name = NAME, .base_version = base,
                           .version = version, .created_unix_s = CREATED, .next = it_next,
                           .next_arg = it, .signer = {.key = &e->key}};
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* The names in data_dir/name, sorted and joined by spaces. */
static void listing(const st_env_t *e, const char *name, char *out, size_t len) {
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/%s", e->cfg.data_dir, name);
  struct dirent **list;
  int n = scandir(dir, &list, NULL, alphasort);
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    if (list[i]->d_name[0] != '.') {
      size_t k = strlen(out);
      snprintf(out + k, len - k, "%s%s", k ? " " : "", list[i]->d_name);
    }
    free(list[i]);
  }
  if (n >= 0) free(list);
}

/* A certificate of key for role origin, valid now, signed by key itself. */
static size_t origin_cert(const fd_ed25519_key_t *key, uint8_t out[FD_CERT_LEN_MAX]) {
  fd_cert_t c = {.role = FD_CERT_ROLE_ORIGIN, .not_before_unix_s = 0,
                 .not_after_unix_s = UINT64_MAX};
  snprintf(c.subject, sizeof(c.subject), "test-origins");
  memcpy(c.pub, key->pub, FD_ED25519_PUB_LEN);
  assert_int_equal(fd_cert_sign(&c, key), 0);
  size_t len;
  assert_int_equal(fd_cert_encode(&c, out, FD_CERT_LEN_MAX, &len), 0);
  return len;
}

/* The manifest st_manifest_build makes of data, signed as the merge signs. */
static void built_manifest(const st_env_t *e, const uint8_t *data, uint64_t size, uint64_t version,
                           uint64_t base, uint32_t cs, const uint8_t *cert, size_t cert_len,
                           uint8_t **enc, size_t *len) {
  char path[600];
  snprintf(path, sizeof(path), "%s/model", e->dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, size, f), size);
  fclose(f);
  st_manifest_t *m;
  assert_int_equal(st_manifest_build(path, NAME, version, base, cs, &m), 0);
  m->created_unix_s = CREATED;
  if (cert_len) {
    m->signer_cert = malloc(cert_len);
    memcpy(m->signer_cert, cert, cert_len);
    m->signer_cert_len = cert_len;
  }
  assert_int_equal(st_manifest_sign(m, &e->key), 0);
  assert_int_equal(st_manifest_encode(m, enc, len), 0);
  st_manifest_free(m);
  unlink(path);
}

/* The store resumes the merged version with every chunk present and
 * completes it; current is then the model. */
static void resume_and_complete(st_env_t *e, const st_merge_result_t *r, uint64_t version,
                                const uint8_t *want, uint64_t size) {
  st_version_t *v;
  assert_int_equal(st_version_begin(e->store, r->manifest, r->manifest_len, &v), 0);
  assert_false(st_version_is_complete(v));
  assert_int_equal(st_version_missing(v), 0);
  assert_int_equal(st_complete_wait(e, v), 0);
  st_close_wait(e, v);
  uint64_t cur = 0;
  assert_int_equal(st_current(e->store, NAME, &cur), 0);
  assert_int_equal(cur, version);
  assert_true(st_file_equals(e, NAME, "current", want, size));
}

static void set_key(st_env_t *e, const fd_ed25519_key_t *key) {
  e->key = *key;
  memcpy(e->cfg.trusted_pub, key->pub, FD_ED25519_PUB_LEN);
  assert_int_equal(st_env_reopen(e), 0);
}

/* A store holding v1 of NAME: BASE_SIZE bytes from seed, returned. */
static uint8_t *store_base(st_env_t *e, uint64_t seed) {
  uint8_t *base = malloc(BASE_SIZE);
  st_fill(base, BASE_SIZE, seed);
  assert_int_equal(st_store_all(e, NAME, 1, base, BASE_SIZE, CS), 0);
  return base;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_merge_matches_model(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 8), 0);
  uint8_t *base = store_base(&e, 1);
  uint64_t size;
  uint8_t *want = model(base, BASE_SIZE, log_a, FD_ARRAY_LEN(log_a), 7, &size);
  assert_int_equal(size, LOG_A_SIZE);

  /* An origin certificate of the signing key: storage checks it (st_manifest_verify)
   * against the store's trusted key, which here signed it itself. */
  uint8_t cert[FD_CERT_LEN_MAX];
  size_t cert_len = origin_cert(&e.key, cert);
  it_t it = {.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 7};
  st_merge_opts_t o = opts(&e, &it, 1, 2);
  o.signer.cert = cert;
  o.signer.cert_len = cert_len;
  st_merge_result_t r;
  assert_int_equal(st_merge_build(&o, &r), 0);
  assert_int_equal(r.size_bytes, LOG_A_SIZE);
  assert_int_equal(r.writes, FD_ARRAY_LEN(log_a));
  uint64_t bytes = 0;
  for (size_t i = 0; i < FD_ARRAY_LEN(log_a); i++) bytes += log_a[i].len;
  assert_int_equal(r.bytes_written, bytes);
  assert_int_equal(r.chunks_hashed, LOG_A_HASHED);
  assert_int_equal(r.chunks_reused, 15u - LOG_A_HASHED);
  assert_true(st_file_equals(&e, NAME, "v2.partial", want, size));
  char names[512];
  listing(&e, NAME, names, sizeof(names));
  assert_string_equal(names, "current v1 v1.manifest v2.bitmap v2.manifest v2.partial");

  /* The manifest is st_manifest_build's of the model, byte for byte. */
  uint8_t *enc;
  size_t len;
  built_manifest(&e, want, size, 2, 1, CS, cert, cert_len, &enc, &len);
  assert_int_equal(r.manifest_len, len);
  assert_memory_equal(r.manifest, enc, len);
  free(enc);
  st_manifest_t *m;
  assert_int_equal(st_manifest_decode(r.manifest, r.manifest_len, &m), 0);
  uint8_t digest[FD_SHA256_LEN];
  assert_int_equal(st_manifest_digest(m, digest), 0);
  assert_memory_equal(digest, r.digest, FD_SHA256_LEN);
  assert_int_equal(m->base_version, 1);
  assert_int_equal(m->created_unix_s, CREATED);
  assert_int_equal(m->signer_cert_len, cert_len);
  assert_memory_equal(m->signer_cert, cert, cert_len);
  assert_int_equal(st_manifest_verify(m, e.key.pub, NULL), 0);
  st_manifest_free(m);

  /* The store resumes and completes it; GC keeps the base (versions_kept 2). */
  resume_and_complete(&e, &r, 2, want, size);
  assert_int_equal(st_gc(e.store, NAME), 0);
  assert_true(st_file_equals(&e, NAME, "v1", base, BASE_SIZE));
  listing(&e, NAME, names, sizeof(names));
  assert_string_equal(names, "current v1 v1.manifest v2 v2.manifest");
  free(r.manifest);

  /* v3 from v2 (chunk size from the base): now GC removes v1, keeps v2. */
  static const wr_t log_b[] = {{CS + 1, 20}, {LOG_A_SIZE, 4096}};
  uint64_t size3;
  uint8_t *want3 = model(want, size, log_b, 2, 8, &size3);
  it = (it_t){.w = log_b, .n = 2, .seed = 8};
  o = opts(&e, &it, 2, 3);
  assert_int_equal(st_merge_build(&o, &r), 0);
  assert_int_equal(r.chunks_hashed, 2u); /* chunk 1, and 14 (the short last, grown) */
  resume_and_complete(&e, &r, 3, want3, size3);
  assert_int_equal(st_gc(e.store, NAME), 1);
  listing(&e, NAME, names, sizeof(names));
  assert_string_equal(names, "current v2 v2.manifest v3 v3.manifest");
  assert_true(st_file_equals(&e, NAME, "v2", want, size));
  free(r.manifest);
  free(want3);
  free(want);
  free(base);
  st_env_fini(&e);
}

static void test_merge_from_nothing(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 8), 0);
  static const wr_t log_c[] = {{3 * CS + 5, 100}, {0, 10}, {CS - 3, 6}};
  uint64_t size;
  uint8_t *want = model(NULL, 0, log_c, 3, 9, &size);
  it_t it = {.w = log_c, .n = 3, .seed = 9};
  st_merge_opts_t o = opts(&e, &it, 0, 1);
  o.chunk_size_bytes = CS;
  st_merge_result_t r;
  assert_int_equal(st_merge_build(&o, &r), 0);
  assert_int_equal(r.size_bytes, 3 * CS + 105);
  assert_int_equal(r.chunks_hashed, 4u);
  assert_int_equal(r.chunks_reused, 0u);
  assert_false(r.cloned);
  uint8_t *enc;
  size_t len;
  built_manifest(&e, want, size, 1, 0, CS, NULL, 0, &enc, &len);
  assert_int_equal(r.manifest_len, len);
  assert_memory_equal(r.manifest, enc, len);
  free(enc);
  resume_and_complete(&e, &r, 1, want, size);
  free(r.manifest);

  /* Chunk size 0 from nothing is the default. */
  it = (it_t){.w = log_c, .n = 3, .seed = 9};
  o = opts(&e, &it, 0, 1);
  o.name = "FileZ";
  assert_int_equal(st_merge_build(&o, &r), 0);
  st_manifest_t *m;
  assert_int_equal(st_manifest_decode(r.manifest, r.manifest_len, &m), 0);
  assert_int_equal(m->chunk_size_bytes, FD_CHUNK_SIZE_DEFAULT);
  assert_int_equal(m->chunk_count, 1u);
  st_manifest_free(m);
  free(r.manifest);
  free(want);
  st_env_fini(&e);
}

/* Two origins, each with its own store holding the same base: the same log
 * gives byte-identical files and manifests, cloned here and copied there. */
static void test_merge_deterministic(void **state) {
  (void)state;
  st_env_t a, b;
  assert_int_equal(st_env_init(&a, CS, 8), 0);
  assert_int_equal(st_env_init(&b, CS, 8), 0);
  set_key(&b, &a.key);
  uint8_t *base = store_base(&a, 2);
  free(store_base(&b, 2));
  st_merge_result_t ra, rb;
  it_t it = {.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 3};
  st_merge_opts_t o = opts(&a, &it, 1, 2);
  assert_int_equal(st_merge_build(&o, &ra), 0);
  it = (it_t){.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 3};
  o = opts(&b, &it, 1, 2);
  o.no_clone = true;
  assert_int_equal(st_merge_build(&o, &rb), 0);
  assert_false(rb.cloned);
  assert_int_equal(ra.manifest_len, rb.manifest_len);
  assert_memory_equal(ra.manifest, rb.manifest, ra.manifest_len);
  assert_memory_equal(ra.digest, rb.digest, FD_SHA256_LEN);
  uint64_t size;
  uint8_t *want = model(base, BASE_SIZE, log_a, FD_ARRAY_LEN(log_a), 3, &size);
  assert_true(st_file_equals(&a, NAME, "v2.partial", want, size));
  assert_true(st_file_equals(&b, NAME, "v2.partial", want, size));
  /* Another created time is another manifest. */
  free(rb.manifest);
  it = (it_t){.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 3};
  o = opts(&b, &it, 1, 2);
  o.created_unix_s = CREATED + 1;
  assert_int_equal(st_merge_build(&o, &rb), 0);
  assert_memory_not_equal(ra.digest, rb.digest, FD_SHA256_LEN);
  free(ra.manifest);
  free(rb.manifest);
  free(want);
  free(base);
  st_env_fini(&a);
  st_env_fini(&b);
}

/* After a failed merge: v1, its manifest and current, nothing else. */
static void assert_untouched(st_env_t *e, const uint8_t *base) {
  char names[512];
  listing(e, NAME, names, sizeof(names));
  assert_string_equal(names, "current v1 v1.manifest");
  assert_true(st_file_equals(e, NAME, "current", base, BASE_SIZE));
}

static void test_merge_errors(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 8), 0);
  uint8_t *base = store_base(&e, 4);
  st_merge_result_t r;
  it_t it = {.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 5, .fail_at = 3};
  st_merge_opts_t o = opts(&e, &it, 1, 2);

  /* The log fails half-way. */
  assert_int_equal(st_merge_build(&o, &r), -EPROTO);
  assert_null(r.manifest);
  assert_int_equal(r.writes, 3);
  assert_untouched(&e, base);

  /* The disk fails half-way: the file may not grow past the base (a real
   * -EFBIG from the kernel, at the write that extends it). */
  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = (struct rlimit){.rlim_cur = BASE_SIZE, .rlim_max = old.rlim_max};
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  it = (it_t){.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 5};
  int rc = st_merge_build(&o, &r);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  assert_int_equal(rc, -EFBIG);
  assert_int_equal(r.writes, 6); /* the sixth is the one that failed */
  assert_untouched(&e, base);

  /* A write past the largest file. */
  static const wr_t huge[] = {{0, 1}, {FD_FILE_SIZE_MAX - 2, 3}};
  it = (it_t){.w = huge, .n = 2, .seed = 5};
  assert_int_equal(st_merge_build(&o, &r), -EFBIG);
  assert_untouched(&e, base);

  /* Options. */
  it = (it_t){.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 5};
  o.chunk_size_bytes = 2 * CS; /* not the base's */
  assert_int_equal(st_merge_build(&o, &r), -EINVAL);
  o.chunk_size_bytes = 3 * CS; /* not a power of two */
  assert_int_equal(st_merge_build(&o, &r), -EINVAL);
  o.chunk_size_bytes = 0;
  o.version = 1; /* not after the base */
  assert_int_equal(st_merge_build(&o, &r), -EINVAL);
  o.version = 2;
  o.name = "../x";
  assert_int_equal(st_merge_build(&o, &r), -EINVAL);
  o.name = NAME;
  static uint8_t big_cert[ST_SIGNER_CERT_LEN_MAX + 1];
  o.signer.cert = big_cert;
  o.signer.cert_len = sizeof(big_cert);
  assert_int_equal(st_merge_build(&o, &r), -EMSGSIZE);
  o.signer.cert_len = 0;
  assert_int_equal(st_merge_build(&o, &r), -EINVAL); /* a cert without a length */
  o.signer.cert = NULL;
  fd_ed25519_key_t pub_only = e.key;
  pub_only.has_private = false;
  o.signer.key = &pub_only;
  assert_int_equal(st_merge_build(&o, &r), -EINVAL);
  o.signer.key = &e.key;
  o.base_version = 5; /* no such base */
  o.version = 6;
  assert_int_equal(st_merge_build(&o, &r), -ENOENT);
  o.base_version = 0; /* v1 is complete: never made again */
  o.version = 1;
  assert_int_equal(st_merge_build(&o, &r), -EEXIST);
  assert_untouched(&e, base);

  /* From nothing, nothing written: no version. */
  it = (it_t){.w = log_a + 7, .n = 1, .seed = 5}; /* the 0-byte write */
  o = opts(&e, &it, 0, 1);
  o.name = "FileE";
  o.chunk_size_bytes = CS;
  assert_int_equal(st_merge_build(&o, &r), -ENODATA);
  char names[512];
  listing(&e, "FileE", names, sizeof(names));
  assert_string_equal(names, "");

  /* A base whose file is not its manifest's size. */
  assert_int_equal(st_store_all(&e, "FileB", 1, base, BASE_SIZE, CS), 0);
  char path[600];
  snprintf(path, sizeof(path), "%s/FileB/v1", e.cfg.data_dir);
  assert_int_equal(truncate(path, BASE_SIZE - 1), 0);
  it = (it_t){.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 5};
  o = opts(&e, &it, 1, 2);
  o.name = "FileB";
  assert_int_equal(st_merge_build(&o, &r), -EIO);
  listing(&e, "FileB", names, sizeof(names));
  assert_string_equal(names, "current v1 v1.manifest");

  /* What an earlier attempt left is replaced. */
  snprintf(path, sizeof(path), "%s/%s", e.cfg.data_dir, NAME);
  int dir_fd = open(path, O_RDONLY | O_DIRECTORY);
  static const char *const junk[] = {"v2.partial", "v2.bitmap", "v2.manifest", "v2.manifest.tmp",
                                     "v2.bitmap.tmp"};
  for (size_t i = 0; i < FD_ARRAY_LEN(junk); i++) {
    int fd = openat(dir_fd, junk[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);
  }
  close(dir_fd);
  it = (it_t){.w = log_a, .n = FD_ARRAY_LEN(log_a), .seed = 5};
  o = opts(&e, &it, 1, 2);
  assert_int_equal(st_merge_build(&o, &r), 0);
  listing(&e, NAME, names, sizeof(names));
  assert_string_equal(names, "current v1 v1.manifest v2.bitmap v2.manifest v2.partial");
  uint64_t size;
  uint8_t *want = model(base, BASE_SIZE, log_a, FD_ARRAY_LEN(log_a), 5, &size);
  resume_and_complete(&e, &r, 2, want, size);
  free(r.manifest);
  free(want);
  free(base);
  st_env_fini(&e);
}

/* True when the filesystem under dir shares blocks (FICLONERANGE). */
static bool can_clone(const char *dir) {
  char a[600], b[600];
  snprintf(a, sizeof(a), "%s/clone-probe-a", dir);
  snprintf(b, sizeof(b), "%s/clone-probe-b", dir);
  int fa = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644), fb = open(b, O_RDWR | O_CREAT | O_TRUNC, 0644);
  static uint8_t block[4096];
  bool ok = fa >= 0 && fb >= 0 && pwrite(fa, block, sizeof(block), 0) == (ssize_t)sizeof(block);
  struct file_clone_range r = {.src_fd = fa, .src_length = sizeof(block)};
  ok = ok && ioctl(fb, FICLONERANGE, &r) == 0;
  if (fa >= 0) close(fa);
  if (fb >= 0) close(fb);
  unlink(a);
  unlink(b);
  return ok;
}

static uint64_t used_bytes(const char *dir) {
  struct statvfs sv;
  assert_int_equal(statvfs(dir, &sv), 0);
  return (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
}

/* A 32 MiB base with 1% of its chunks written: cloned where the filesystem
 * shares blocks (merge_clone_test.sh runs this on XFS with reflink and sets
 * FDIST_MERGE_EXPECT_CLONE), then copied when told to; both right. */
static void test_merge_clone_and_copy(void **state) {
  (void)state;
  st_env_t e;
  assert_int_equal(st_env_init(&e, CS, 8), 0);
  const uint64_t size = 512ull * CS;
  uint8_t *base = malloc(size);
  st_fill(base, size, 6);
  assert_int_equal(st_store_all(&e, NAME, 1, base, size, CS), 0);
  bool clones = can_clone(e.cfg.data_dir);
  if (getenv("FDIST_MERGE_EXPECT_CLONE")) assert_true(clones);
  static const wr_t log_d[] = {{7 * CS + 3, 100}, {100 * CS, 10}, {300 * CS - 1, 2},
                               {400 * CS + 9, 9}};
  uint64_t size2, size3;
  uint8_t *want2 = model(base, size, log_d, 4, 10, &size2);
  uint8_t *want3 = model(want2, size2, log_d, 4, 11, &size3);

  sync();
  uint64_t used0 = used_bytes(e.cfg.data_dir);
  it_t it = {.w = log_d, .n = 4, .seed = 10};
  st_merge_opts_t o = opts(&e, &it, 1, 2);
  st_merge_result_t r;
  assert_int_equal(st_merge_build(&o, &r), 0);
  assert_int_equal(r.cloned, clones);
  assert_int_equal(r.chunks_hashed, 5u);
  assert_true(st_file_equals(&e, NAME, "v2.partial", want2, size2));
  sync();
  uint64_t grown = used_bytes(e.cfg.data_dir) - used0;
  print_message("merge of a %" PRIu64 " MiB base, %s: %.1f ms, used space grew by %" PRIu64
                " KiB\n", size >> 20, r.cloned ? "cloned" : "copied", (double)r.total_ns / 1e6,
                grown >> 10);
  /* Shared blocks: the touched blocks and metadata, not the 32 MiB. */
  if (r.cloned) assert_true(grown < size / 4);
  resume_and_complete(&e, &r, 2, want2, size2);
  free(r.manifest);

  it = (it_t){.w = log_d, .n = 4, .seed = 11};
  o = opts(&e, &it, 2, 3);
  o.no_clone = true;
  assert_int_equal(st_merge_build(&o, &r), 0);
  assert_false(r.cloned);
  resume_and_complete(&e, &r, 3, want3, size3);
  assert_true(st_file_equals(&e, NAME, "v2", want2, size2));
  free(r.manifest);
  free(want2);
  free(want3);
  free(base);
  st_env_fini(&e);
}

int main(void) {
  fd_log_init("test_storage_merge", FD_LOG_ERROR);
  fd_ring_t probe;
  if (fd_ring_init(&probe, 4, 0) != 0) return 77;
  fd_ring_deinit(&probe);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merge_matches_model),
      cmocka_unit_test(test_merge_from_nothing),
      cmocka_unit_test(test_merge_deterministic),
      cmocka_unit_test(test_merge_errors),
      cmocka_unit_test(test_merge_clone_and_copy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
