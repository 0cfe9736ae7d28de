/*
 * st_delta.c — reuse: every missing chunk whose SHA-256 is already in a
 * complete local version of the same file is copied locally instead of
 * fetched.
 *
 * At the start (a control step) the manifests of the newest complete
 * versions are indexed by SHA-256 and each missing chunk is matched. Then
 * each match is an io_uring O_DIRECT read of the source chunk into a pool
 * buffer, followed by the same path as a received chunk: CRC32C checked
 * against the new manifest (the SHA-256 was matched between the two signed
 * manifests and checked when the source chunk was stored; the CRC32C catches
 * what the disk did since, at a tenth of the CPU), written, fdatasync'd, bit
 * set. A source
 * chunk that fails to read or verify just stays missing (the network will
 * bring it). Sources are pinned against GC until the copy is done.
 *
 * Before that, where the filesystem can share blocks, runs of whole chunks
 * are cloned (FICLONERANGE): the new file's range points at the source's
 * blocks, copy-on-write. That is a metadata operation, milliseconds for
 * gigabytes, where the copy reads and writes every byte — on a node whose
 * disk is slower than its NIC the copy, not the changed chunks, would set
 * the time of a small update. The clones and their one fdatasync are
 * synchronous calls, once per version, like st_version_begin. A cloned chunk
 * is not read again: it was verified when its source was stored, children
 * verify every chunk they receive, and scrub reads both versions' (shared)
 * blocks. A filesystem that refuses (ext4, tmpfs: EOPNOTSUPP, EXDEV, EINVAL)
 * is remembered for the store and everything is copied.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_time.h"
#include "fd_log.h"
#include "st_internal.h"

typedef struct index_entry {
  const uint8_t *sha;
  uint32_t src, src_index;
} index_entry_t;

static int cmp_entry(const void *a, const void *b) {
  return memcmp(((const index_entry_t *)a)->sha, ((const index_entry_t *)b)->sha, FD_SHA256_LEN);
}

static void pump(st_version_t *v);

bool st_version_reusing(const st_version_t *v, uint32_t index) {
  return v->delta_local && index < v->m->chunk_count && st_bit(v->delta_local, index);
}

/* The delta is done with a chunk: copied, cloned, or left to the network. */
static void local_done(st_version_t *v, uint32_t index) {
  if (v->delta_local) st_bit_clear(v->delta_local, index);
}

static void delta_finish_if_done(st_version_t *v) {
  if (!v->delta_running || v->delta_next < v->delta_count || v->delta_inflight ||
      v->delta_timer_armed)
    return;
  for (uint32_t i = 0; i < v->delta_src_count; i++) {
    close(v->delta_src_fd[i]);
    st_unpin(v->s, v->m->name, v->delta_src_version[i]);
  }
  free(v->delta_src_fd);
  free(v->delta_src_version);
  free(v->delta_items);
  free(v->delta_local);
  v->delta_local = NULL;
  v->delta_src_fd = NULL;
  v->delta_src_version = NULL;
  v->delta_items = NULL;
  v->delta_src_count = v->delta_count = v->delta_next = 0;
  v->delta_running = false;
  v->delta_bytes = NULL;
  v->delta_done(v->delta_arg, 0);
}

static void on_timer(fd_op_t *op, int res, uint32_t flags) {
  (void)res;
  (void)flags;
  st_version_t *v = ((st_vop_t *)op)->v;
  st_op_done(v);
  v->delta_timer_armed = false;
  pump(v);
  delta_finish_if_done(v);
}

/* Nothing could start (no slot or buffer free, or nothing to do): look again
 * in a millisecond, from the ring, so done() never runs inside the call. */
static void retry_later(st_version_t *v, uint64_t ns) {
  if (v->delta_timer_armed) return;
  v->delta_timer_armed = true;
  v->delta_ts.tv_sec = 0;
  v->delta_ts.tv_nsec = (long long)ns;
  v->delta_timer.op.complete = on_timer;
  struct io_uring_sqe *sqe = fd_ring_sqe(v->s->cfg.ring, &v->delta_timer.op);
  FD_ASSERT(sqe != NULL);
  v->s->inflight++;
  v->inflight++;
  io_uring_prep_timeout(sqe, &v->delta_ts, 0, 0);
}

static void on_copy_put(void *arg, int res) {
  st_delta_item_t *item = arg;
  st_version_t *v = item->v;
  fd_pool_put(v->s->cfg.pool, item->buf);
  item->buf = NULL;
  local_done(v, item->index);
  if (res < 0)
    fd_log_warn("%s v%llu: local copy of chunk %u failed: %s", v->m->name,
                (unsigned long long)v->m->version, item->index, strerror(-res));
  v->delta_inflight--;
  pump(v);
  delta_finish_if_done(v);
}

static void on_source_read(fd_op_t *op, int res, uint32_t flags) {
  (void)flags;
  st_slot_t *slot = (st_slot_t *)op;
  st_version_t *v = slot->v;
  st_delta_item_t *item = slot->arg;
  st_op_done(v);
  if (res > 0) {
    slot->io_done += (uint32_t)res;
    if (slot->io_done < slot->len) {
      st_queue_read(slot, slot->src_fd, (uint64_t)item->src_index * v->m->chunk_size_bytes);
      return;
    }
    slot->from_delta = true;
    slot->done = on_copy_put;
    if (st_put_start(slot) == 0) return; /* on_copy_put runs when it is durable */
    res = -EBADMSG;
  } else if (res == 0) {
    res = -EIO;
  }
  if (res != -EBADMSG) v->s->stats.io_errors++;
  fd_log_warn("%s v%llu: chunk %u not reused from v%llu: %s", v->m->name,
              (unsigned long long)v->m->version, item->index,
              (unsigned long long)v->delta_src_version[item->src], strerror(-res));
  fd_pool_put(v->s->cfg.pool, item->buf);
  item->buf = NULL;
  local_done(v, item->index);
  st_slot_put(v->s, slot);
  v->delta_inflight--;
  pump(v);
  delta_finish_if_done(v);
}

static void pump(st_version_t *v) {
  st_store_t *s = v->s;
  /* Half the store's slots at most: the network's chunks, fetched while the
   * copy runs, find room too. */
  uint32_t max = FD_MAX(1u, s->cfg.queue_depth / 2);
  while (v->delta_next < v->delta_count && v->delta_inflight < max) {
    st_delta_item_t *item = &v->delta_items[v->delta_next];
    if (st_bit(v->bits, item->index) || st_bit(v->pending, item->index)) {
      v->delta_next++; /* arrived meanwhile */
      local_done(v, item->index);
      continue;
    }
    st_slot_t *slot = st_slot_get(s);
    if (!slot) break;
    uint8_t *buf = fd_pool_get(s->cfg.pool);
    if (!buf) {
      st_slot_put(s, slot);
      break;
    }
    v->delta_next++;
    v->delta_inflight++;
    item->buf = buf;
    uint32_t len = st_manifest_chunk_len(v->m, item->index);
    *slot = (st_slot_t){.op.complete = on_source_read, .v = v, .kind = ST_SLOT_DELTA_READ,
                        .index = item->index, .buf = buf, .len = len,
                        .io_len = FD_ALIGN_UP(len, FD_DIRECT_ALIGN),
                        .src_fd = v->delta_src_fd[item->src], .arg = item};
    st_queue_read(slot, slot->src_fd, (uint64_t)item->src_index * v->m->chunk_size_bytes);
  }
  if (v->delta_next < v->delta_count && v->delta_inflight == 0) retry_later(v, FD_STORE_RETRY_NS);
}

/* Matches missing chunks against the newest complete versions. */
static int plan(st_version_t *v) {
  st_store_t *s = v->s;
  uint64_t *list = calloc(FD_STORE_VERSIONS_SCAN_MAX, sizeof(*list));
  if (!list) return -ENOMEM;
  int n = st_versions(s, v->m->name, list, FD_STORE_VERSIONS_SCAN_MAX);
  if (n < 0) {
    free(list);
    return n;
  }
  st_manifest_t *src_m[FD_STORE_DELTA_SOURCES_MAX] = {0};
  uint64_t src_ver[FD_STORE_DELTA_SOURCES_MAX];
  uint32_t nsrc = 0;
  size_t total = 0;
  for (int i = n - 1; i >= 0 && nsrc < FD_STORE_DELTA_SOURCES_MAX; i--) {
    if (list[i] == v->m->version) continue;
    if (st_read_manifest_file(v->dir_fd, list[i], &src_m[nsrc]) != 0) continue;
    src_ver[nsrc] = list[i];
    total += src_m[nsrc]->chunk_count;
    nsrc++;
  }
  free(list);
  int rc = 0;
  index_entry_t *index = calloc(total ? total : 1, sizeof(*index));
  st_delta_item_t *items = calloc(v->missing ? v->missing : 1, sizeof(*items));
  v->delta_src_fd = calloc(FD_STORE_DELTA_SOURCES_MAX, sizeof(int));
  v->delta_src_version = calloc(FD_STORE_DELTA_SOURCES_MAX, sizeof(uint64_t));
  v->delta_local = calloc(1, ((size_t)v->m->chunk_count + 7) / 8);
  if (!index || !items || !v->delta_src_fd || !v->delta_src_version || !v->delta_local) {
    rc = -ENOMEM;
    goto out;
  }
  size_t k = 0;
  for (uint32_t j = 0; j < nsrc; j++)
    for (uint32_t c = 0; c < src_m[j]->chunk_count; c++)
      index[k++] = (index_entry_t){src_m[j]->chunk_sha256 + (size_t)c * FD_SHA256_LEN, j, c};
  qsort(index, total, sizeof(*index), cmp_entry);

  int src_map[FD_STORE_DELTA_SOURCES_MAX];
  for (uint32_t j = 0; j < nsrc; j++) src_map[j] = -1;
  uint32_t count = 0;
  for (uint32_t c = 0; c < v->m->chunk_count && total; c++) {
    if (st_bit(v->bits, c)) continue;
    index_entry_t key = {.sha = v->m->chunk_sha256 + (size_t)c * FD_SHA256_LEN};
    const index_entry_t *hit = bsearch(&key, index, total, sizeof(*index), cmp_entry);
    if (!hit) continue;
    if (src_map[hit->src] < 0) {
      char path[64];
      snprintf(path, sizeof(path), "v%" PRIu64, src_ver[hit->src]);
      int fd = openat(v->dir_fd, path, O_RDONLY | O_DIRECT | O_CLOEXEC);
      if (fd < 0) continue; /* collected meanwhile: fetch instead */
      if (st_pin(s, v->m->name, src_ver[hit->src]) != 0) {
        close(fd);
        continue;
      }
      src_map[hit->src] = (int)v->delta_src_count;
      v->delta_src_fd[v->delta_src_count] = fd;
      v->delta_src_version[v->delta_src_count] = src_ver[hit->src];
      v->delta_src_count++;
    }
    items[count++] = (st_delta_item_t){.v = v, .index = c, .src = (uint32_t)src_map[hit->src],
                                       .src_index = hit->src_index};
  }
  for (uint32_t i = 0; i < count; i++) st_bit_set(v->delta_local, items[i].index);
  v->delta_items = items;
  v->delta_count = count;
  items = NULL;
out:
  free(items);
  free(index);
  for (uint32_t j = 0; j < nsrc; j++) st_manifest_free(src_m[j]);
  if (rc) {
    free(v->delta_src_fd);
    free(v->delta_src_version);
    free(v->delta_local);
    v->delta_src_fd = NULL;
    v->delta_src_version = NULL;
    v->delta_local = NULL;
  }
  return rc;
}

/* Items [i, i + n) of a run: consecutive whole chunks in both files. */
static int clone_run(st_version_t *v, uint32_t i, uint32_t n) {
  const st_delta_item_t *a = &v->delta_items[i];
  uint64_t cs = v->m->chunk_size_bytes;
  return fd_io_clone_range(v->s->cfg.io_hook, v->data_fd, (uint64_t)a->index * cs,
                           v->delta_src_fd[a->src], (uint64_t)a->src_index * cs,
                           (uint64_t)n * cs);
}

/* A whole chunk with no put of its own in flight. */
static bool clonable(const st_version_t *v, uint32_t index) {
  return st_manifest_chunk_len(v->m, index) == v->m->chunk_size_bytes &&
         !st_bit(v->pending, index);
}

/* Clones what it can, makes it durable, and leaves the rest in delta_items
 * for the copy. */
static void clone_items(st_version_t *v) {
  st_store_t *s = v->s;
  if (s->cfg.no_clone || s->cannot_clone || v->delta_count == 0) return;
  uint64_t t0 = fd_now_ns();
  uint32_t cloned = 0, runs = 0;
  for (uint32_t i = 0; i < v->delta_count;) {
    const st_delta_item_t *a = &v->delta_items[i];
    if (!clonable(v, a->index)) {
      i++;
      continue;
    }
    uint32_t n = 1;
    while (i + n < v->delta_count) {
      const st_delta_item_t *b = &v->delta_items[i + n];
      if (b->src != a->src || b->index != a->index + n || b->src_index != a->src_index + n ||
          !clonable(v, b->index))
        break;
      n++;
    }
    int rc = clone_run(v, i, n);
    if (st_clone_refused(rc)) {
      /* Every run is chunk-aligned in the same two files: a refusal is the
       * filesystem's, not this run's. */
      if (cloned == 0) {
        s->cannot_clone = true;
        fd_log_info("%s: the filesystem cannot share blocks (%s): unchanged chunks are copied",
                    s->data_dir, strerror(-rc));
        return;
      }
      break;
    }
    if (rc < 0) {
      s->stats.io_errors++;
      fd_log_warn("%s v%llu: clone of chunks %u..%u failed: %s: the rest is copied", v->m->name,
                  (unsigned long long)v->m->version, a->index, a->index + n - 1, strerror(-rc));
      break;
    }
    for (uint32_t k = 0; k < n; k++) v->delta_items[i + k].cloned = true;
    cloned += n;
    runs++;
    i += n;
  }
  if (cloned == 0) return;
  int rc = fd_io_fdatasync(s->cfg.io_hook, v->data_fd);
  if (rc) {
    s->stats.io_errors++;
    fd_log_error("%s v%llu: fdatasync after cloning failed: %s: the chunks are copied",
                 v->m->name, (unsigned long long)v->m->version, strerror(-rc));
    for (uint32_t i = 0; i < v->delta_count; i++) v->delta_items[i].cloned = false;
    return;
  }
  uint32_t kept = 0;
  for (uint32_t i = 0; i < v->delta_count; i++) {
    st_delta_item_t *item = &v->delta_items[i];
    if (item->cloned) {
      st_mark_cloned(v, item->index, st_manifest_chunk_len(v->m, item->index));
      local_done(v, item->index);
    } else
      v->delta_items[kept++] = *item;
  }
  v->delta_count = kept;
  fd_log_info("%s v%llu: %u chunks cloned in %u run(s) in %.1f ms, %u left to copy", v->m->name,
              (unsigned long long)v->m->version, cloned, runs,
              (double)(fd_now_ns() - t0) / 1e6, kept);
}

int st_version_delta(st_version_t *v, uint64_t *bytes_reused, st_done_fn done, void *arg) {
  if (v->complete || v->complete_step) return -EINVAL;
  if (v->delta_running) return -EBUSY;
  int rc = plan(v);
  if (rc) return rc;
  fd_log_info("%s v%llu: %u of %u missing chunks found locally in %u version(s)", v->m->name,
              (unsigned long long)v->m->version, v->delta_count, v->missing, v->delta_src_count);
  v->delta_running = true;
  v->delta_done = done;
  v->delta_arg = arg;
  v->delta_bytes = bytes_reused;
  if (bytes_reused) *bytes_reused = 0;
  clone_items(v);
  pump(v);
  /* Nothing in flight (nothing to copy): finish from the ring, not from here. */
  if (v->delta_inflight == 0) retry_later(v, 0);
  return 0;
}
