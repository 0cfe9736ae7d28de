/* The serving engines' version table (nd_shared.c): publish, acquire, bits, completion, retire while read, a full table, and a reader thread racing engine 0's publish / retire churn. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fd_log.h"
#include "fd_time.h"
#include "nd_shared.h"

#define CHUNK (64u * 1024u)

/* An encoded (unsigned) manifest of `chunks` chunks for name vN. */
static uint8_t *manifest(const char *name, uint64_t version, uint32_t chunks, size_t *len) {
  st_manifest_t *m;
  assert_int_equal(st_manifest_new(name, version, 0, (uint64_t)chunks * CHUNK, CHUNK, &m), 0);
  static uint8_t data[CHUNK];
  for (uint32_t i = 0; i < chunks; i++) {
    memset(data, (int)i, sizeof(data));
    assert_int_equal(st_manifest_set_chunk(m, i, data, CHUNK), 0);
  }
  uint8_t *enc;
  assert_int_equal(st_manifest_encode(m, &enc, len), 0);
  st_manifest_free(m);
  return enc;
}

static void test_publish_acquire(void **state) {
  (void)state;
  nd_shared_t *t = nd_shared_create();
  size_t len;
  uint8_t *enc = manifest("f", 3, 100, &len);
  nd_shared_ver_t *s;
  assert_int_equal(nd_shared_publish(t, enc, len, &s), 0);
  assert_null(nd_shared_acquire(t, "f", 2));
  assert_null(nd_shared_acquire(t, "g", 3));
  nd_shared_ver_t *r = nd_shared_acquire(t, "f", 3);
  assert_ptr_equal(r, s);
  assert_int_equal(nd_shared_manifest(r)->chunk_count, 100);
  size_t mlen;
  const uint8_t *m = nd_shared_menc(r, &mlen);
  assert_int_equal(mlen, len);
  assert_memory_equal(m, enc, len);
  assert_false(nd_shared_has(r, 7));
  assert_true(nd_shared_set(s, 7));
  assert_false(nd_shared_set(s, 7)); /* already set */
  assert_true(nd_shared_has(r, 7));
  assert_false(nd_shared_has(r, 8));
  assert_false(nd_shared_has(r, 100)); /* out of range */
  assert_false(nd_shared_is_complete(r));
  assert_true(nd_shared_complete(s));
  assert_false(nd_shared_complete(s));
  assert_true(nd_shared_has(r, 99));
  assert_false(nd_shared_has(r, 100));
  nd_shared_release(r);
  nd_shared_retire(s);
  assert_int_equal(nd_shared_reap(t), 0);
  nd_shared_destroy(t);
  free(enc);
}

static void test_retire_while_read(void **state) {
  (void)state;
  nd_shared_t *t = nd_shared_create();
  size_t len;
  uint8_t *enc = manifest("f", 1, 4, &len);
  nd_shared_ver_t *s, *s2;
  assert_int_equal(nd_shared_publish(t, enc, len, &s), 0);
  nd_shared_ver_t *r = nd_shared_acquire(t, "f", 1);
  assert_non_null(r);
  nd_shared_retire(s);
  assert_true(nd_shared_retired(r));
  assert_null(nd_shared_acquire(t, "f", 1)); /* no new reader of a retired slot */
  assert_int_equal(nd_shared_reap(t), 1);    /* still read: kept */
  assert_int_equal(nd_shared_manifest(r)->version, 1);
  assert_int_equal(nd_shared_publish(t, enc, len, &s2), 0);
  assert_ptr_not_equal(s2, s); /* the read slot is not reused */
  nd_shared_release(r);
  assert_int_equal(nd_shared_reap(t), 0);
  nd_shared_retire(s2);
  assert_int_equal(nd_shared_reap(t), 0);
  nd_shared_destroy(t);
  free(enc);
}

static void test_full_and_bad(void **state) {
  (void)state;
  nd_shared_t *t = nd_shared_create();
  size_t len;
  uint8_t *enc = manifest("f", 1, 2, &len);
  nd_shared_ver_t *s[ND_SHARED_VERS_MAX + 1];
  for (uint32_t i = 0; i < ND_SHARED_VERS_MAX; i++)
    assert_int_equal(nd_shared_publish(t, enc, len, &s[i]), 0);
  assert_int_equal(nd_shared_publish(t, enc, len, &s[ND_SHARED_VERS_MAX]), -ENOSPC);
  nd_shared_retire(s[0]);
  assert_int_equal(nd_shared_reap(t), 0);
  static const uint8_t junk[] = {0xff, 0xff, 0xff};
  assert_int_not_equal(nd_shared_publish(t, junk, sizeof(junk), &s[0]), 0); /* not a manifest */
  assert_int_equal(nd_shared_publish(t, enc, len, &s[0]), 0); /* the failed one freed its slot */
  for (uint32_t i = 0; i < ND_SHARED_VERS_MAX; i++) nd_shared_retire(s[i]);
  assert_int_equal(nd_shared_reap(t), 0);
  nd_shared_destroy(t);
  free(enc);
}

/* ---- a reader racing engine 0 ---- */

#define RACE_VERSIONS 16u
#define RACE_CHUNKS 64u

typedef struct race {
  nd_shared_t *t;
  _Atomic bool done;
  _Atomic uint64_t acquired, errors;
} race_t;

static void *reader(void *arg) {
  race_t *r = arg;
  uint64_t k = 0;
  while (!atomic_load(&r->done)) {
    uint64_t v = 1 + k++ % RACE_VERSIONS;
    nd_shared_ver_t *s = nd_shared_acquire(r->t, "race", v);
    if (!s) continue;
    atomic_fetch_add(&r->acquired, 1);
    const st_manifest_t *m = nd_shared_manifest(s);
    if (m->version != v || m->chunk_count != RACE_CHUNKS) atomic_fetch_add(&r->errors, 1);
    /* engine 0 sets bits in index order, each with a release store: read
     * from the top down, a bit seen set means every lower one is seen set */
    bool seen = false;
    for (uint32_t i = RACE_CHUNKS; i-- > 0;) {
      bool h = nd_shared_has(s, i);
      if (seen && !h) atomic_fetch_add(&r->errors, 1);
      seen |= h;
    }
    for (uint32_t i = 0; i < RACE_CHUNKS; i++)
      if (nd_shared_has(s, i) && !nd_shared_has(s, i)) atomic_fetch_add(&r->errors, 1);
    nd_shared_release(s);
  }
  return NULL;
}

static void test_race(void **state) {
  (void)state;
  race_t r = {.t = nd_shared_create()};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, reader, &r), 0);
  uint8_t *enc[RACE_VERSIONS];
  size_t len[RACE_VERSIONS];
  for (uint32_t v = 0; v < RACE_VERSIONS; v++) enc[v] = manifest("race", v + 1, RACE_CHUNKS, &len[v]);
  nd_shared_ver_t *live[4] = {0};
  /* until the reader held enough versions (bounded in time) */
  uint64_t until = fd_now_ms() + 10000;
  for (uint32_t k = 0; atomic_load(&r.acquired) < 5000 && fd_now_ms() < until; k++) {
    uint32_t v = k % RACE_VERSIONS;
    nd_shared_ver_t **slot = &live[k % 4];
    if (*slot) nd_shared_retire(*slot); /* keep 4 published, retire the oldest */
    *slot = NULL;
    nd_shared_reap(r.t);
    while (nd_shared_publish(r.t, enc[v], len[v], slot) == -ENOSPC) nd_shared_reap(r.t);
    for (uint32_t i = 0; i < RACE_CHUNKS; i++) nd_shared_set(*slot, i);
    nd_shared_complete(*slot);
  }
  atomic_store(&r.done, true);
  pthread_join(th, NULL);
  for (uint32_t i = 0; i < 4; i++)
    if (live[i]) nd_shared_retire(live[i]);
  assert_int_equal(nd_shared_reap(r.t), 0);
  nd_shared_destroy(r.t);
  for (uint32_t v = 0; v < RACE_VERSIONS; v++) free(enc[v]);
  assert_int_equal(atomic_load(&r.errors), 0);
  assert_true(atomic_load(&r.acquired) >= 5000);
  print_message("reader held %" PRIu64 " versions while engine 0 churned\n", atomic_load(&r.acquired));
}

int main(void) {
  fd_log_init("test_node_shared", FD_LOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_publish_acquire),
      cmocka_unit_test(test_retire_while_read),
      cmocka_unit_test(test_full_and_bad),
      cmocka_unit_test(test_race),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
