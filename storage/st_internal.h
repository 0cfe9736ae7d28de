/*
 * st_internal.h — what the storage .c files share and nobody else sees
 * (SQLite's sqliteInt.h to storage.h's sqlite.h).
 *
 * A store owns a fixed array of queue_depth slots, one per chunk operation in
 * flight (a write, a read, a delta copy); the version handles own the few
 * operations that are not per chunk (the group fdatasync, the bitmap write,
 * the completion sequence, the scrub timer). Every one embeds an fd_op_t.
 */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include <errno.h>

#include "storage.h"

#define ST_BITMAP_MAGIC "FDSTBM1"
#define ST_BITMAP_HEADER_BYTES 64u

typedef enum st_slot_kind {
  ST_SLOT_PUT,        /* a received chunk: write, then group fdatasync */
  ST_SLOT_READ,       /* st_chunk_read */
  ST_SLOT_DELTA_READ, /* a delta copy reading its source; becomes a PUT */
  ST_SLOT_SCRUB,      /* a scrub read */
} st_slot_kind_t;

typedef struct st_slot st_slot_t;
struct st_slot {
  fd_op_t op;
  st_version_t *v;
  st_slot_t *next;      /* free list */
  st_slot_kind_t kind;
  uint32_t index;       /* chunk */
  uint8_t *buf;
  uint32_t len;         /* chunk bytes */
  uint32_t io_len;      /* bytes this I/O moves: len rounded up to FD_DIRECT_ALIGN */
  uint32_t io_done;     /* bytes moved so far (short reads and writes are re-queued) */
  int src_fd;           /* DELTA_READ: the source version's file */
  bool from_delta;      /* PUT that came from a delta copy */
  st_done_fn written;   /* PUT: the write completed, buf is the caller's (NULL: none) */
  st_done_fn done;
  void *arg;
};

/* A chunk written and waiting for the fdatasync that makes it durable. Its
 * slot is free again (the disk operation is over). Either the caller's
 * buffer is still held (at most one of these per pool buffer), or the put
 * gave it back when written (st_chunk_put_written: `early`, at most one pool
 * count of those, st_store.early_n), so there are never more than two pool
 * counts of them. */
typedef struct st_synced st_synced_t;
struct st_synced {
  st_synced_t *next;
  uint32_t index, len;
  bool from_delta;
  bool early; /* its buffer went back at the write (counted in early_n) */
  st_done_fn done;
  void *arg;
};

typedef struct st_vop {
  fd_op_t op;
  st_version_t *v;
} st_vop_t;

typedef struct st_delta_item {
  st_version_t *v;
  uint8_t *buf;      /* the pool buffer while the copy is in flight */
  uint32_t index;    /* chunk of the new version */
  uint32_t src;      /* into delta_src_fd */
  uint32_t src_index;
  bool cloned;       /* shares the source's blocks (FICLONERANGE), fdatasync pending */
} st_delta_item_t;

struct st_version {
  st_store_t *s;
  st_version_t *next; /* the store's open handles */
  st_manifest_t *m;
  uint8_t digest[FD_SHA256_LEN];
  int dir_fd;    /* <data>/<name> */
  int data_fd;   /* v<N>.partial (O_RDWR) or v<N> (O_RDONLY), O_DIRECT */
  int bitmap_fd; /* -1 once complete */
  bool complete;
  uint8_t *bits;    /* chunk present and durable */
  uint8_t *pending; /* a put for the chunk is in flight */
  uint32_t missing;
  uint32_t inflight; /* operations of this version on the ring */

  /* group commit: writes finished -> unsynced -> one fdatasync -> bits */
  st_synced_t *unsynced, *syncing;
  bool sync_inflight;
  uint64_t sync_start_ns; /* when the inflight fdatasync was queued */
  st_vop_t sync_op;

  /* the bitmap write of the byte range [dirty_lo, dirty_hi) */
  bool bm_inflight, bm_dirty;
  uint32_t dirty_lo, dirty_hi;
  st_vop_t bm_op;

  /* completion sequence (st_complete.c) */
  int complete_step;
  st_vop_t complete_op;
  char path_full[64], path_partial[80], path_bitmap[80]; /* stable while queued */
  st_done_fn complete_done;
  void *complete_arg;

  /* delta (st_delta.c) */
  bool delta_running;
  uint8_t *delta_local; /* chunks the delta still means to copy: not asked of the network */
  st_delta_item_t *delta_items;
  uint32_t delta_count, delta_next, delta_inflight;
  int *delta_src_fd;
  uint64_t *delta_src_version;
  uint32_t delta_src_count;
  uint64_t *delta_bytes;
  bool delta_timer_armed;
  struct __kernel_timespec delta_ts;
  st_vop_t delta_timer;
  st_done_fn delta_done;
  void *delta_arg;

  /* scrub (st_scrub.c) */
  bool scrub_running, scrub_timer_armed;
  uint32_t scrub_next, scrub_inflight, scrub_bad;
  uint64_t scrub_rate, scrub_start_ns, scrub_issued;
  struct __kernel_timespec scrub_ts;
  st_vop_t scrub_timer;
  st_bad_chunk_fn scrub_bad_fn;
  st_done_fn scrub_done;
  void *scrub_arg;

  /* bad chunks of a complete version (st_repair.c): bit cleared, counted */
  uint32_t bad;
  int repair_fd, repair_tail_fd; /* v<N> for writing: O_DIRECT, buffered; -1 until used */
};

typedef struct st_pin {
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint32_t count;
} st_pin_t;

struct st_store {
  st_config_t cfg;
  char data_dir[FD_PATH_LEN_MAX];
  int dir_fd;
  st_stats_t stats;
  fd_hist_t sync_hist[ST_SYNC_KINDS]; /* st_store_sync_hist */
  st_slot_t *slots;
  st_slot_t *free_slots;
  st_synced_t *synced;      /* two per pool buffer (st_synced_t) */
  st_synced_t *free_synced;
  uint32_t early_n;         /* puts with a `written` callback not finished yet */
  uint32_t inflight;
  st_version_t *versions;
  bool can_ftruncate; /* IORING_OP_FTRUNCATE (6.9+) */
  bool cannot_clone;  /* the data directory's filesystem refused FICLONERANGE */
  fd_sha256_ctx_t *sha; /* made once: one-shot EVP_Digest allocates per call */
  st_pin_t pins[FD_STORE_PINS_MAX];
};

/* st_io.c */
struct io_uring_sqe *st_sqe(st_store_t *s, st_version_t *v, fd_op_t *op, st_io_kind_t kind,
                            uint32_t chunk);
st_slot_t *st_slot_get(st_store_t *s);
void st_slot_put(st_store_t *s, st_slot_t *slot);
/* Verifies slot's chunk and queues its write; on a synchronous failure the
 * slot is left to the caller and the -errno returned. */
int st_put_start(st_slot_t *slot);
void st_queue_read(st_slot_t *slot, int fd, uint64_t offset);
void st_bitmap_flush_sync(st_version_t *v);
void st_op_done(st_version_t *v); /* one operation of v left the ring */
/* Sets the bit of a chunk cloned from a delta source, once fdatasync'd. */
void st_mark_cloned(st_version_t *v, uint32_t index, uint32_t len);

/* st_store.c */
int st_pin(st_store_t *s, const char *name, uint64_t version);
void st_unpin(st_store_t *s, const char *name, uint64_t version);
int st_read_manifest_file(int dir_fd, uint64_t version, st_manifest_t **out);
int st_switch_current_sync(st_version_t *v);
/* Writes path (in dir_fd) durably: path.tmp, fdatasync, rename, fsync of
 * the directory; 0 or -errno (the .tmp removed). */
int st_write_file_durable(const fd_io_hook_t *io, int dir_fd, const char *path, const void *buf,
                          size_t len);
/* The 64-byte header of a bitmap for the manifest with this digest; the
 * bits follow it (docs/ARCHITECTURE.md, "On-disk layout"). */
void st_bitmap_header(uint8_t block[ST_BITMAP_HEADER_BYTES], uint32_t chunk_count,
                      const uint8_t digest[FD_SHA256_LEN]);

/* st_manifest.c */
/* Fills the digests of the chunks listed (count of them; chunks NULL: all
 * of m's, count == chunk_count) from the file path in dir_fd, read buffered
 * on up to FD_MANIFEST_BUILD_THREADS_MAX threads, each over a contiguous
 * part of the list. 0, or -errno of a read (-EIO: the file is short). */
int st_manifest_hash_chunks(st_manifest_t *m, int dir_fd, const char *path,
                            const uint32_t *chunks, uint32_t count);

/* A FICLONERANGE error that says this filesystem cannot share blocks (ext4,
 * tmpfs: EOPNOTSUPP, EXDEV, EINVAL...), not that the call failed: copy. */
static inline bool st_clone_refused(int rc) {
  return rc == -EOPNOTSUPP || rc == -EXDEV || rc == -EINVAL || rc == -ENOTTY || rc == -ENOSYS;
}

static inline bool st_bit(const uint8_t *bits, uint32_t i) { return bits[i >> 3] & (1u << (i & 7)); }
static inline void st_bit_set(uint8_t *bits, uint32_t i) { bits[i >> 3] |= (uint8_t)(1u << (i & 7)); }
static inline void st_bit_clear(uint8_t *bits, uint32_t i) {
  bits[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

#endif /* ST_INTERNAL_H */
