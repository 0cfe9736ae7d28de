/*
 * nd_wlog.c — role origin: the changelog of the version being built, per
 * file (nd_write_int.h). A record ordered here goes into the local log
 * (storage's st_log: group-committed, each record's callback after the
 * fdatasync that covers it) and into the outbox, a bounded ring the link to
 * the next origin sends from and lets go of as that origin acknowledges.
 *
 * Memory: a log's record table, byte ring and writers' table are allocated
 * when the log opens (once per version of a file), never per change.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_error.h"
#include "nd_origin_int.h"

nd_wlog_t *nd_wlog_find(nd_origin_t *og, const char *name, uint64_t version) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    if (!w->used || strcmp(w->name, name)) continue;
    if (version ? w->version == version : !w->closed) return w;
  }
  return NULL;
}

nd_wlog_t *nd_wlog_newest(nd_origin_t *og, const char *name) {
  nd_wlog_t *best = NULL;
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    if (w->used && !strcmp(w->name, name) && (!best || w->version > best->version)) best = w;
  }
  return best;
}

static void wlog_free(nd_wlog_t *w) {
  if (w->log) st_log_close(w->log);
  free(w->rec);
  free(w->ring);
  free(w->ww);
  nd_origin_t *og = w->og;
  memset(w, 0, sizeof(*w));
  w->og = og;
}

/* Records of the log already on disk (a restart): the sizes and counts the
 * next changes build on, from the records themselves. */
static int wlog_resume(nd_wlog_t *w) {
  nd_origin_t *og = w->og;
  char path[FD_PATH_LEN_MAX + 256];
  snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 ".log", og->data_dir, w->name, w->version);
  st_log_iter_t *it;
  int rc = st_log_iter_open(path, &it);
  if (rc) return rc;
  uint64_t seq;
  const void *payload;
  uint32_t len;
  while ((rc = st_log_iter_next(it, &seq, &payload, &len)) == 1) {
    Origin__Change *c = origin__change__unpack(NULL, len, payload);
    if (!c) {
      rc = -EBADMSG;
      break;
    }
    if (c->bump) {
      w->closed = true;
      w->bump_index = seq;
      w->created_s = c->created_unix_s;
      w->chunk_size = c->chunk_size;
    } else {
      w->size = FD_MAX(w->size, c->offset + c->data.len);
      w->changes++;
      w->bytes += c->data.len;
      nd_dedup_put(&og->dedup, c->client_id, c->client_seq, w->version, seq, c->offset);
    }
    w->last_epoch = c->epoch;
    origin__change__free_unpacked(c, NULL);
  }
  st_log_iter_close(it);
  return rc < 0 ? rc : 0;
}

/* The log before `version` of name still merging (closed), or NULL. */
static nd_wlog_t *closed_before(nd_origin_t *og, const char *name, uint64_t version) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++) {
    nd_wlog_t *w = &og->wlogs[i];
    if (w->used && w->closed && !strcmp(w->name, name) && (!version || w->version + 1 == version))
      return w;
  }
  return NULL;
}

static int wlog_open(nd_origin_t *og, const char *name, uint64_t version, nd_wlog_t **out);

int nd_wlog_get(nd_origin_t *og, const char *name, uint64_t version, nd_wlog_t **out) {
  nd_wlog_t *w = nd_wlog_find(og, name, version);
  if (w) {
    *out = w;
    return 0;
  }
  int rc = wlog_open(og, name, version, &w);
  if (rc) return rc;
  if (!version && w->closed) /* resumed with its bump: the changes go to the next log */
    return nd_wlog_get(og, name, w->version + 1, out);
  *out = w;
  return 0;
}

void nd_wlogs_resume(nd_origin_t *og) {
  DIR *d = opendir(og->data_dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len > FD_NAME_LEN_MAX || !st_name_valid(de->d_name)) continue;
    char name[FD_NAME_LEN_MAX + 1];
    memcpy(name, de->d_name, len + 1);
    for (uint64_t v = nd_newest_complete(og->p, name) + 1;; v++) {
      char path[FD_PATH_LEN_MAX + 256];
      snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 ".log", og->data_dir, name, v);
      if (access(path, F_OK)) break;
      nd_wlog_t *w;
      int rc = nd_wlog_get(og, name, v, &w);
      if (rc) {
        fd_log_error("%s v%" PRIu64 ": the changelog cannot be resumed: %s", name, v,
                     fd_strerror(rc));
        break;
      }
      if (!w->closed) break; /* it takes changes; a closed one merges */
    }
  }
  if (d) closedir(d);
}

static int wlog_open(nd_origin_t *og, const char *name, uint64_t version, nd_wlog_t **out) {
  nd_wlog_t *w = NULL;
  /* The next log builds on the newest complete version, or on the one
   * still merging (its changes are ordered after that log's). */
  uint64_t newest = nd_newest_complete(og->p, name);
  const nd_wlog_t *prev = closed_before(og, name, version);
  uint64_t base = prev ? prev->version : newest;
  if (!version) version = base + 1;
  if (version != base + 1) return -ESTALE; /* behind (catch up first) or a gap */
  for (uint32_t i = 0; i < ND_WLOGS_MAX && !w; i++)
    if (!og->wlogs[i].used) w = &og->wlogs[i];
  if (!w) return -EBUSY;
  snprintf(w->name, sizeof(w->name), "%s", name);
  w->version = version;
  w->rec = calloc(ND_OUTBOX_RECORDS, sizeof(*w->rec));
  w->ring = malloc(ND_OUTBOX_BYTES);
  w->ww = calloc(ND_WRITES_INFLIGHT_MAX, sizeof(*w->ww));
  if (!w->rec || !w->ring || !w->ww) {
    wlog_free(w);
    return -ENOMEM;
  }
  /* The file's size as of the base: appends continue from it. */
  if (prev) {
    w->size = prev->size;
    w->chunk_size = prev->chunk_size;
  } else if (base) {
    nd_ver_t *bv;
    int rc = nd_ver_open(og->p, name, base, &bv);
    if (rc) {
      wlog_free(w);
      return rc;
    }
    w->size = bv->m->size_bytes;
    w->chunk_size = bv->m->chunk_size_bytes;
  } else {
    w->chunk_size = og->write_chunk_size;
  }
  int rc = st_log_open(og->store, name, version, base, &w->log);
  if (!rc) rc = wlog_resume(w);
  if (rc) {
    fd_log_error("%s v%" PRIu64 ": changelog: %s", name, version, fd_strerror(rc));
    wlog_free(w);
    return rc;
  }
  w->used = true;
  w->next = st_log_next_seq(w->log);
  w->durable_local = w->durable_chain = w->acked = w->next; /* what is on disk was synced at open */
  w->chain_held = 1;
  w->rec_head = w->rec_tail = w->sent = w->next;
  w->began_ms = fd_now_ms();
  if (w->next)
    fd_log_info("%s v%" PRIu64 ": changelog resumed at index %" PRIu64 " (size %" PRIu64 ")",
                name, version, w->next, w->size);
  *out = w;
  return 0;
}

const uint8_t *nd_wlog_data(const nd_wlog_t *w, const nd_orec_t *r) {
  return w->ring + r->data_off % ND_OUTBOX_BYTES;
}

static void on_durable(void *arg, int res) {
  nd_wlog_t *w = arg;
  if (res) {
    /* The log is failed (a failed fdatasync is never retried as if the data
     * were safe): nothing more is acknowledged from it. */
    fd_log_error("%s v%" PRIu64 ": changelog write failed: %s; no more changes are "
                 "acknowledged from this origin",
                 w->name, w->version, fd_strerror(res));
    w->og->failed = true;
    return;
  }
  w->durable_local++;
  /* Alone: what is durable here is as durable as the chain gets. While a
   * next origin is being brought up to date it is not alone: records it
   * was found to hold (taken back from it, acknowledged by it in the
   * comparison) stay counted as held by both, and the rest waits for it. */
  if (!w->og->has_next && w->og->link.state != ND_LINK_CATCHUP) nd_wlog_alone(w);
  else w->durable_chain = FD_MAX(w->durable_chain, FD_MIN(w->acked, w->durable_local));
  nd_writes_progress(w);
}

/* Room for len more bytes in the ring without wrapping a record. */
static int ring_reserve(nd_wlog_t *w, uint32_t len, uint64_t *off) {
  uint64_t at = w->ring_tail;
  if (at % ND_OUTBOX_BYTES + len > ND_OUTBOX_BYTES) at += ND_OUTBOX_BYTES - at % ND_OUTBOX_BYTES;
  if (at + len - w->ring_head > ND_OUTBOX_BYTES) return -EAGAIN;
  *off = at;
  return 0;
}

int nd_wlog_put(nd_wlog_t *w, const nd_orec_t *r, const uint8_t *data) {
  FD_ASSERT(r->index == w->next && !w->closed);
  if (w->rec_tail - w->rec_head >= ND_OUTBOX_RECORDS) return -EAGAIN;
  uint64_t off;
  if (ring_reserve(w, r->len, &off)) return -EAGAIN;
  Origin__Change c = ORIGIN__CHANGE__INIT;
  c.index = r->index;
  c.offset = r->offset;
  c.data.data = (uint8_t *)data;
  c.data.len = r->len;
  c.bump = r->bump;
  c.client_id = r->client_id;
  c.client_seq = r->client_seq;
  c.created_unix_s = r->created_s;
  c.chunk_size = r->chunk_size;
  c.epoch = r->epoch;
  uint8_t *packed = w->og->pack_buf;
  size_t n = origin__change__get_packed_size(&c);
  FD_ASSERT(n <= FD_LOG_RECORD_MAX);
  origin__change__pack(&c, packed);
  int rc = st_log_append(w->log, r->index, packed, (uint32_t)n, on_durable, w);
  if (rc) return rc;
  nd_orec_t *slot = &w->rec[w->rec_tail % ND_OUTBOX_RECORDS];
  *slot = *r;
  slot->data_off = off;
  if (r->len) memcpy(w->ring + off % ND_OUTBOX_BYTES, data, r->len);
  w->ring_tail = off + r->len;
  w->rec_tail++;
  w->next++;
  w->last_epoch = r->epoch;
  if (r->bump) {
    fd_counter_add(&w->og->m.bumps, 1);
    w->closed = true;
    w->bump_index = r->index;
    w->created_s = r->created_s;
    w->chunk_size = r->chunk_size;
  } else {
    w->size = FD_MAX(w->size, r->offset + r->len);
    w->changes++;
    w->bytes += r->len;
    nd_dedup_put(&w->og->dedup, r->client_id, r->client_seq, w->version, r->index, r->offset);
  }
  return 0;
}

/* Lets go of outbox records below end. */
static void outbox_drop(nd_wlog_t *w, uint64_t end) {
  while (w->rec_head < end && w->rec_head < w->rec_tail) {
    const nd_orec_t *r = &w->rec[w->rec_head % ND_OUTBOX_RECORDS];
    w->ring_head = r->data_off + r->len;
    w->rec_head++;
  }
  if (w->rec_head == w->rec_tail) w->ring_head = w->ring_tail;
}

void nd_wlog_acked(nd_wlog_t *w, uint64_t end, uint32_t held) {
  w->acked = FD_MAX(w->acked, end);
  uint64_t durable = FD_MIN(w->acked, w->durable_local);
  outbox_drop(w, end);
  if (held > w->chain_held) { /* more origins hold less: [0, durable) by `held` */
    w->durable_chain = durable;
    w->chain_held = held;
  } else if (held < w->chain_held || durable > w->durable_chain) {
    /* what more origins held, fewer hold too */
    w->durable_chain = FD_MAX(w->durable_chain, durable);
    w->chain_held = held;
  } else {
    return;
  }
  nd_writes_progress(w);
}

void nd_wlog_alone(nd_wlog_t *w) {
  /* While a next origin is being brought up to date, the outbox keeps what
   * it will be sent once live (the back-fill covers only what is older). */
  if (w->og->link.state != ND_LINK_CATCHUP) {
    outbox_drop(w, w->durable_local);
    w->sent = FD_MAX(w->sent, w->durable_local);
  }
  w->durable_chain = w->durable_local;
  w->chain_held = 1;
}

void nd_wlog_release(nd_wlog_t *w) { wlog_free(w); }

void nd_wlog_retire_merged(nd_wlog_t *w) {
  nd_origin_t *og = w->og;
  char name[FD_NAME_LEN_MAX + 1];
  snprintf(name, sizeof(name), "%s", w->name);
  uint64_t version = w->version;
  wlog_free(w);
  /* The version is complete here: a catch-up copies it whole from now on,
   * so its log is not needed again. */
  int rc = st_log_remove(og->store, name, version);
  if (rc && rc != -ENOENT)
    fd_log_warn("%s v%" PRIu64 ".log: cannot remove the merged log: %s", name, version,
                fd_strerror(rc));
}

void nd_wlogs_close(nd_origin_t *og) {
  for (uint32_t i = 0; i < ND_WLOGS_MAX; i++)
    if (og->wlogs[i].used) wlog_free(&og->wlogs[i]);
}

int nd_wlog_epoch_at(nd_wlog_t *w, uint64_t index, uint64_t *epoch) {
  if (index >= w->next) return -ENOENT;
  /* the outbox's records are [rec_head, rec_tail), indexes next - (rec_tail - k) */
  uint64_t first = w->next - (w->rec_tail - w->rec_head);
  if (index >= first) {
    const nd_orec_t *r = &w->rec[(w->rec_head + (index - first)) % ND_OUTBOX_RECORDS];
    if (r->index == index) {
      *epoch = r->epoch;
      return 0;
    }
  }
  char path[FD_PATH_LEN_MAX + 256];
  snprintf(path, sizeof(path), "%s/%s/v%" PRIu64 ".log", w->og->data_dir, w->name, w->version);
  st_log_iter_t *it;
  int rc = st_log_iter_open(path, &it);
  if (rc) return rc;
  uint64_t seq;
  const void *payload;
  uint32_t len;
  rc = -ENOENT;
  int r;
  while ((r = st_log_iter_next(it, &seq, &payload, &len)) == 1) {
    if (seq != index) continue;
    Origin__Change *c = origin__change__unpack(NULL, len, payload);
    if (!c) {
      rc = -EBADMSG;
      break;
    }
    *epoch = c->epoch;
    origin__change__free_unpacked(c, NULL);
    rc = 0;
    break;
  }
  if (r < 0) rc = r;
  st_log_iter_close(it);
  return rc;
}
