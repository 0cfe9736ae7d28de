/*
 * storage.h — the versioned chunk store on one node (prefix st_).
 *
 * Owns, under a data dir, every version of every file this node holds:
 *
 *   <data>/<name>/v<N>            a complete version: written again only to
 *                                 repair a chunk scrub found bad (st_chunk_repair)
 *   <data>/<name>/v<N>.partial    a version being received: never served
 *   <data>/<name>/v<N>.manifest   its signed manifest (manifest.proto)
 *   <data>/<name>/v<N>.bitmap     which chunks of v<N>.partial are durable
 *   <data>/<name>/current         symlink to the newest complete version
 *
 * Guarantees: a chunk counts as present only after its CRC32C and SHA-256
 * match the signed manifest (signed by the trusted admin key, or by a key
 * it certified for role origin and did not revoke); its bitmap bit reaches disk only after its data
 * is durable (fdatasync); a version becomes v<N> only after fdatasync, the
 * rename is made durable by an fsync of the directory before `current`
 * switches (atomically, by rename of a fresh symlink). A crash at any moment
 * leaves the old `current` or the new one, never a torn file, and reopening
 * resumes a .partial from its bitmap. An error (-ENOSPC, -EIO, a bad chunk)
 * fails only the operation it hit; nothing already stored is touched.
 *
 * Never: talks to the network, blocks the caller's ring on data I/O, reads
 * chunk data through the page cache, allocates on the chunk path. All chunk
 * I/O, the completion sequence and scrub are io_uring operations queued on
 * the caller's fd_ring_t (common/fd_ring.h) and finished by callbacks run
 * from fd_ring_run_once. The control calls (st_store_open, st_version_begin,
 * st_gc, st_versions, st_current) touch only small metadata files and
 * directories synchronously; they run when a version starts or ends, never
 * per chunk.
 *
 * Memory: a store owns its version handles and their bitmaps; the caller
 * owns the ring and the buffer pool, which must outlive the store. A chunk
 * buffer handed to st_chunk_put stays the caller's but must not be touched
 * until that put's callback has run. Everything runs on the ring's thread,
 * but for one builder: st_merge_build (a version from its base and a log of
 * writes, at an origin's bump) blocks on disk I/O and runs on a worker
 * thread; it touches only the files of the version it makes, which the
 * store then resumes and completes like any other.
 */
#ifndef STORAGE_H
#define STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_cert.h"
#include "fd_hash.h"
#include "fd_io.h"
#include "fd_limits.h"
#include "fd_metrics.h"
#include "fd_pool.h"
#include "fd_ring.h"

/* ---- manifests ----------------------------------------------------------- */

/* A decoded, validated manifest. Fields are read-only for users; build one
 * with st_manifest_build or st_manifest_new + st_manifest_set_chunk. */
typedef struct st_manifest {
  char name[FD_NAME_LEN_MAX + 1];
  uint64_t version;
  uint64_t size_bytes;
  uint32_t chunk_size_bytes;
  uint32_t chunk_count;
  uint64_t base_version;
  uint64_t created_unix_s;
  uint64_t key_id;
  uint8_t *chunk_sha256;  /* chunk_count * 32 bytes */
  uint32_t *chunk_crc32c; /* chunk_count entries */
  bool is_signed;
  uint8_t signature[FD_ED25519_SIG_LEN];
  uint8_t *signer_cert;    /* the signing key's certificate (malloc), or NULL: admin-signed */
  size_t signer_cert_len;
} st_manifest_t;

/* Decodes and validates (names, sizes, chunk size, digest counts). Does not
 * check the signature. 0 or -EBADMSG (not a manifest), -EINVAL (a field out
 * of range), -EMSGSIZE (over limits), -ENOMEM. *out freed with
 * st_manifest_free. */
int st_manifest_decode(const void *buf, size_t len, st_manifest_t **out);
/* Encodes with the signature (if signed). *out is malloc'd; caller frees. */
int st_manifest_encode(const st_manifest_t *m, uint8_t **out, size_t *len);
/* SHA-256 of the canonical encoding (signature empty): the version's name. */
int st_manifest_digest(const st_manifest_t *m, uint8_t out[FD_SHA256_LEN]);
/* Whether m may be trusted, with pub the trusted admin key:
 * - without signer_cert, 0 when m is signed by pub itself (its key id
 *   matches);
 * - with signer_cert (common/fd_cert.h), 0 when the certificate decodes, is
 *   signed by pub, certifies role origin, is valid now (wall clock) and its
 *   key is not in revoked (NULL: nothing revoked), and m is signed by the
 *   certified key (its key id matches the certificate's).
 * Otherwise -EKEYREJECTED (unsigned, forged, another key, a certificate
 * that does not decode, is another admin's or another role's, or names
 * another key), -EKEYEXPIRED or -EKEYREVOKED, with a log line saying which
 * (fd_cert_is_trust_error tells all three apart from other errors). */
int st_manifest_verify(const st_manifest_t *m, const uint8_t pub[FD_ED25519_PUB_LEN],
                       const fd_cert_revlist_t *revoked);
/* Signs m as it is, signer_cert included (if any), with key: sets key_id and
 * the signature. The admin key signs with no signer_cert; a certified key
 * with its certificate in signer_cert (st_manifest_sign_cert puts it there).
 * key must hold the private part; 0 or -EINVAL. */
int st_manifest_sign(st_manifest_t *m, const fd_ed25519_key_t *key);
/* Signs with a certified key (the origin group's): sets signer_cert to a
 * copy of cert (cert_len bytes, an encoded fd_cert), then key_id and the
 * signature, so the digest covers the certificate. 0; -EINVAL when key has
 * no private part or cert does not decode or certifies another key; -ENOMEM.
 * Checks nothing else of cert (the signer checks its own at start). */
int st_manifest_sign_cert(st_manifest_t *m, const fd_ed25519_key_t *key, const uint8_t *cert,
                          size_t cert_len);
void st_manifest_free(st_manifest_t *m);

/* Length of chunk `index` (the last one may be short). */
uint32_t st_manifest_chunk_len(const st_manifest_t *m, uint32_t index);

/* Builder for publishers: an empty manifest for a file of size_bytes, then
 * one st_manifest_set_chunk per chunk. created_unix_s is set to now. */
int st_manifest_new(const char *name, uint64_t version, uint64_t base_version,
                    uint64_t size_bytes, uint32_t chunk_size_bytes, st_manifest_t **out);
/* Computes chunk index's SHA-256 and CRC32C from its bytes; -ERANGE, -EMSGSIZE. */
int st_manifest_set_chunk(st_manifest_t *m, uint32_t index, const void *data, size_t len);
/* Reads the file at path (buffered: a tool-side call, not the store's data
 * path) and fills every chunk, hashing on one thread per online core (up
 * to 8), each over a contiguous range. Unsigned; sign it next. */
int st_manifest_build(const char *path, const char *name, uint64_t version,
                      uint64_t base_version, uint32_t chunk_size_bytes, st_manifest_t **out);

/* True when name is a valid file name for the store. */
bool st_name_valid(const char *name);

/* ---- the store ------------------------------------------------------------ */

typedef struct st_store st_store_t;
typedef struct st_version st_version_t;

typedef void (*st_done_fn)(void *arg, int res);

/* Test hook for fault injection below the store: called before each disk
 * operation is queued; a non-zero return (a -errno) makes the kernel complete
 * that operation with that result instead (an io_uring NOP with an injected
 * result), so the store's completion path sees exactly what a failing disk
 * would report. NULL in production. */
typedef enum st_io_kind { ST_IO_WRITE, ST_IO_READ, ST_IO_SYNC, ST_IO_META } st_io_kind_t;
typedef int (*st_fault_fn)(void *arg, st_io_kind_t kind, uint32_t chunk);

typedef struct st_config {
  const char *data_dir;  /* created if missing */
  fd_ring_t *ring;       /* the caller's ring; the store queues, never waits */
  fd_pool_t *pool;       /* chunk buffers: buf_size >= every chunk size used */
  bool pool_registered;  /* pool is the ring's fixed-buffer table (index = buffer number) */
  uint32_t queue_depth;  /* chunk reads/writes in flight, 1..FD_QUEUE_DEPTH_MAX; chunks
                          written and waiting for their fdatasync do not count */
  uint32_t versions_kept;/* GC keeps this many complete versions, >= 1 */
  bool verify;           /* false skips CRC32C/SHA-256 checks: benchmarks only */
  bool have_trusted_key; /* when set, st_version_begin rejects manifests not signed by it
                          (or by a key it certified: st_manifest_verify) */
  uint8_t trusted_pub[FD_ED25519_PUB_LEN];
  /* Keys revoked (fd_cert_revwatch's list), or NULL. The store only reads
   * it, at each st_version_begin: the owner may update it in place between
   * calls, on the store's thread, and the next manifest is checked against
   * the new list. Must outlive the store. */
  const fd_cert_revlist_t *revocations;
  bool no_clone;         /* delta copies every chunk even where the filesystem can share
                          blocks (FICLONERANGE): tests of the copy path */
  st_fault_fn fault;     /* tests only */
  void *fault_arg;
  /* Crash tests only (tests/common/powercut.c): told of every change the
   * store makes to the disk, the synchronous calls through this hook and the
   * ring's operations through the ring's, which must be the same one
   * (fd_ring_set_io_hook; st_store_open returns -EINVAL otherwise). NULL in
   * production. */
  const fd_io_hook_t *io_hook;
} st_config_t;

/* Defaults: queue depth FD_QUEUE_DEPTH_DEFAULT, FD_VERSIONS_KEPT_DEFAULT kept,
 * verification on. */
void st_config_defaults(st_config_t *cfg);

/* Counters, monotonic over the store's life. */
typedef struct st_stats {
  uint64_t chunks_written;
  uint64_t bytes_written;
  uint64_t chunks_reused;   /* copied or cloned from a local complete version */
  uint64_t bytes_reused;
  uint64_t chunks_cloned;   /* of chunks_reused: blocks shared by FICLONERANGE, not copied */
  uint64_t chunks_rejected; /* CRC32C or SHA-256 mismatch */
  uint64_t io_errors;       /* any disk operation that failed */
  uint64_t syncs;           /* group fdatasyncs issued */
  uint64_t scrub_bytes;
  uint64_t scrub_bad_chunks;
  uint64_t chunks_repaired; /* bad chunks of complete versions rewritten in place */
} st_stats_t;

int st_store_open(const st_config_t *cfg, st_store_t **out);
/* Closes every version handle. Nothing may be in flight (FD_ASSERT). */
void st_store_close(st_store_t *s);
const st_stats_t *st_store_stats(const st_store_t *s);
/* Latency of the store's fdatasyncs on its ring, submission to completion:
 * the group sync of chunk writes, and the changelogs' (st_log). Recorded on
 * the store's thread; fd_hist_t may be read from any thread (fd_metrics.h). */
typedef enum st_sync_kind { ST_SYNC_CHUNKS, ST_SYNC_CHANGELOG, ST_SYNC_KINDS } st_sync_kind_t;
const fd_hist_t *st_store_sync_hist(const st_store_t *s, st_sync_kind_t kind);
/* Operations of this store still in flight on the ring. */
uint32_t st_store_inflight(const st_store_t *s);

/* Registers pool as ring's fixed buffers; 0 or -errno. For callers that do
 * not share the ring's buffer table with anything else (tools, tests). */
int st_register_pool(fd_ring_t *ring, fd_pool_t *pool);

/* Runs ring until *done becomes true (for tools and tests, never inside an
 * engine). Returns 0 or the ring's -errno. */
int st_run_until(fd_ring_t *ring, const bool *done);

/* ---- versions -------------------------------------------------------------- */

/* Starts (or resumes) receiving the version described by the encoded,
 * signed manifest. Verifies it (st_manifest_verify, when a trusted key is
 * configured, against the configured revocations),
 * writes v<N>.manifest durably, creates v<N>.partial (space reserved with
 * fallocate, so a full disk fails here with -ENOSPC) and v<N>.bitmap, or
 * reopens them and resumes from the bitmap. A version already complete is
 * opened as such (st_version_missing == 0, st_version_is_complete).
 * Errors: -EBADMSG/-EINVAL (bad manifest), -EKEYREJECTED (signature),
 * -EKEYEXPIRED / -EKEYREVOKED (the signer's certificate),
 * -ENOSPC, -EIO, -EEXIST (a different manifest already holds that version),
 * -EBUSY (already open). The handle is the store's; st_version_close. */
int st_version_begin(st_store_t *s, const void *manifest, size_t len, st_version_t **out);
/* Opens a complete version for reading (scrub, serving). -ENOENT. */
int st_version_open(st_store_t *s, const char *name, uint64_t version, st_version_t **out);
/* Makes the bitmap durable and releases the handle. Nothing of v may be in
 * flight (run the ring until st_version_inflight(v) == 0: a bitmap write
 * can outlive the last put's callback). */
void st_version_close(st_version_t *v);
uint32_t st_version_inflight(const st_version_t *v);

const st_manifest_t *st_version_manifest(const st_version_t *v);
bool st_version_has(const st_version_t *v, uint32_t index);
uint32_t st_version_missing(const st_version_t *v);
bool st_version_is_complete(const st_version_t *v);

/* Hands the store one received chunk: buf (from the configured pool, at
 * least align_up(len, 4096) bytes, padding zeroed by the store) holds len
 * bytes of chunk index. Verifies CRC32C then SHA-256 against the manifest,
 * writes it O_DIRECT, makes it durable, sets its bit, then calls
 * done(arg, 0) — or done(arg, -EIO / -ENOSPC / ...). The buffer is the
 * caller's again once done has run.
 * Returns 0 when queued (done will run exactly once), or without calling
 * done: -ERANGE (index), -EMSGSIZE (wrong length), -EBADMSG (checksum
 * mismatch; counted and logged), -EALREADY (chunk already present), -EAGAIN
 * (queue_depth operations in flight: retry after a completion), -EINVAL
 * (version complete or buffer not from the pool). */
int st_chunk_put(st_version_t *v, uint32_t index, void *buf, uint32_t len, st_done_fn done,
                 void *arg);
/* st_chunk_put, telling the caller one step earlier: written(arg, 0) runs
 * once the chunk's O_DIRECT write has completed, before the fdatasync that
 * makes it durable. From then on the store no longer reads buf, which is
 * the caller's again; done(arg, res) still runs once the chunk is durable
 * and its bit set (or with the error: an fdatasync that fails leaves the
 * chunk missing), and the chunk is neither present nor in the bitmap before
 * that. written does not run for a put that fails before its write
 * completed (done carries the error). Besides st_chunk_put's errors,
 * -EAGAIN when a pool count of such puts is waiting for its fdatasync. */
int st_chunk_put_written(st_version_t *v, uint32_t index, void *buf, uint32_t len,
                         st_done_fn written, st_done_fn done, void *arg);

/* Reads chunk index of a complete version into buf (from the pool); calls
 * done(arg, bytes or -errno). Verifies CRC32C unless verification is off
 * (-EBADMSG). Returns 0 when queued, -ERANGE, -EAGAIN, -EINVAL. */
int st_chunk_read(st_version_t *v, uint32_t index, void *buf, st_done_fn done, void *arg);

/* Delta: copies every missing chunk whose SHA-256 is present in a complete
 * local version of the same name (read through the ring, verified, written
 * like a received chunk). Where the filesystem shares blocks (XFS with
 * reflink, btrfs), runs of whole chunks are cloned instead: one FICLONERANGE
 * per run and one fdatasync, synchronous, no data read or written (the
 * chunks were verified when the source stored them; scrub checks both
 * versions' shared blocks). The source versions are pinned against GC while it
 * runs. done(arg, 0) when every copy has finished (failed copies just leave
 * the chunk missing); bytes saved are in *bytes_reused (and the stats).
 * Returns 0 when started, -EBUSY if one is running, -EINVAL. */
int st_version_delta(st_version_t *v, uint64_t *bytes_reused, st_done_fn done, void *arg);
/* While a delta runs: whether it still means to copy chunk `index` (a
 * download leaves it out of what it asks the network for; a copy that
 * fails clears it, so the chunk is asked for then). */
bool st_version_reusing(const st_version_t *v, uint32_t index);

/* With every chunk present: ftruncate to the exact size, fdatasync, rename
 * v<N>.partial to v<N>, fsync the directory, switch `current` to v<N>
 * (symlink + rename), fsync the directory, remove the bitmap; then
 * done(arg, 0 or -errno). Returns 0 when started, -EAGAIN (chunks missing or
 * operations in flight), -EALREADY (already complete). */
int st_version_complete(st_version_t *v, st_done_fn done, void *arg);

/* ---- scrub and GC ---------------------------------------------------------- */

typedef void (*st_bad_chunk_fn)(void *arg, const char *name, uint64_t version, uint32_t index,
                                int err);

/* Re-reads every chunk of the complete version v and checks its CRC32C
 * (verification is always on here), at most rate_bytes_per_s (0: unlimited).
 * Each bad or unreadable chunk is marked bad (st_chunk_mark_bad) and
 * reported through bad(); a chunk being repaired is skipped. done(arg,
 * number of bad chunks or -errno) at the end. v must stay open until done.
 * Returns 0 when started, -EBUSY (a scrub runs on v), -EINVAL. */
int st_scrub(st_version_t *v, uint64_t rate_bytes_per_s, st_bad_chunk_fn bad, st_done_fn done,
             void *arg);

/* Bad chunks of a complete version. A chunk marked bad is not present:
 * st_version_has is false for it until st_chunk_repair rewrote it, so it is
 * neither served nor counted. The mark is in memory, per open handle (a
 * restart forgets it; the next scrub finds the chunk again).
 * st_chunk_mark_bad: 0, -EALREADY (already marked), -EINPROGRESS (being
 * repaired), -ERANGE, -EINVAL (v not complete). */
int st_chunk_mark_bad(st_version_t *v, uint32_t index);
/* Chunks of v marked bad and not repaired yet. */
uint32_t st_version_bad(const st_version_t *v);
/* Rewrites the bad chunk index of the complete version v in place with a
 * good copy: buf (from the pool) holds len bytes; CRC32C then SHA-256 are
 * checked against the manifest before anything is written, then the chunk
 * is written at its offset in v<N> (O_DIRECT; the short last chunk
 * buffered, so the file keeps its exact size), fdatasync'd, and only then
 * is the mark cleared; done(arg, 0 or -errno). The buffer is the caller's
 * again once done has run. Returns 0 when queued, or without calling done:
 * -EBADMSG (the copy does not match the manifest; counted), -EALREADY (not
 * marked bad), -EINPROGRESS (a repair of it runs), -ERANGE, -EMSGSIZE,
 * -EAGAIN (no slot: retry after a completion), -EINVAL (v not complete,
 * buffer not from the pool), or the -errno of opening v<N> for writing. */
int st_chunk_repair(st_version_t *v, uint32_t index, void *buf, uint32_t len, st_done_fn done,
                    void *arg);

/* Complete versions of name, ascending, at most max; returns the count or
 * -errno. */
int st_versions(st_store_t *s, const char *name, uint64_t *out, size_t max);
/* The version `current` points at; -ENOENT when none. */
int st_current(st_store_t *s, const char *name, uint64_t *version);

/* Keeps the newest `versions_kept` complete versions of name and removes the
 * older ones, except the one `current` names, one pinned as a delta source
 * and anything in progress (.partial). Returns the number removed or -errno. */
int st_gc(st_store_t *s, const char *name);
/* st_gc with keep in place of the configured versions_kept; -EINVAL for 0. */
int st_gc_keep(st_store_t *s, const char *name, uint32_t keep);

/* ---- merges: a version from its base and a log of writes (st_merge.c) ------ */

/* The log's next write, in the order the head gave them: len bytes at
 * offset, data valid until the next call. Returns 1 with one, 0 at the end
 * of the log, or a -errno that fails the merge with it. */
typedef int (*st_merge_next_fn)(void *arg, uint64_t *offset, const uint8_t **data, uint32_t *len);

/* Who signs the merged manifest: key (with its private part) and its
 * certificate (common/fd_cert.h), which goes into the manifest's
 * signer_cert; cert NULL and cert_len 0: signed by the key alone (the admin
 * key, or tests). The caller's memory, read during the call only. */
typedef struct st_merge_signer {
  const fd_ed25519_key_t *key;
  const uint8_t *cert;
  size_t cert_len; /* <= ST_SIGNER_CERT_LEN_MAX */
} st_merge_signer_t;

typedef struct st_merge_opts {
  const char *data_dir;      /* the store's data dir (it exists) */
  const char *name;
  uint64_t base_version;     /* a complete version of name, or 0: from an empty file */
  uint64_t version;          /* the version made, > base_version (base + 1 at a bump) */
  uint32_t chunk_size_bytes; /* 0: the base's (FD_CHUNK_SIZE_DEFAULT from nothing); else it
                              * must be the base's (-EINVAL) */
  uint64_t created_unix_s;   /* the manifest's creation time: chosen by the head and the
                              * same on every origin, so their manifests are identical */
  st_merge_next_fn next;
  void *next_arg;
  st_merge_signer_t signer;
  bool no_clone;             /* copy_file_range even where FICLONERANGE would share blocks
                              * (tests of the copy path; XFS may still share them itself) */
  const fd_io_hook_t *io_hook; /* crash tests only, as st_config_t's; NULL in production */
} st_merge_opts_t;

typedef struct st_merge_result {
  uint8_t digest[FD_SHA256_LEN]; /* st_manifest_digest: what the origins compare */
  uint8_t *manifest;             /* the encoded, signed manifest (malloc): the caller frees */
  size_t manifest_len;
  uint64_t size_bytes;           /* of v<N> */
  uint64_t writes;               /* writes applied (zero-length ones included) */
  uint64_t bytes_written;        /* their bytes, an overlapped byte once per write */
  uint32_t chunks_hashed;        /* touched by a write, or not the base's (past its end,
                                  * or its short last chunk, grown) */
  uint32_t chunks_reused;        /* digests taken from the base's manifest */
  bool cloned;                   /* the base was shared (FICLONERANGE), not copied */
  uint64_t copy_ns, apply_ns, hash_ns, total_ns; /* base copy; writes + fdatasync; hashing */
} st_merge_result_t;

/* Makes v<N> (o->version) of o->name from its complete base v<N-1> and the
 * writes o->next gives, ready for the store to complete:
 *   1 v<N>.partial becomes a copy of v<N-1>: a reflink clone of the whole
 *     file (FICLONERANGE) where the filesystem shares blocks, else an
 *     in-kernel copy (copy_file_range); an empty file from base 0;
 *   2 each write is applied in order at its offset: later writes win where
 *     they overlap, the file grows as writes extend it, and a write past
 *     the end leaves a hole that reads as zeros (a sparse file), exactly
 *     as pwrite does; a write of 0 bytes changes nothing, not the size;
 *   3 fdatasync;
 *   4 only the chunks a write touched, and those the base lacks, are read
 *     back and hashed (SHA-256, CRC32C; up to FD_MANIFEST_BUILD_THREADS_MAX
 *     threads); every other chunk's digests are copied from the base's
 *     manifest;
 *   5 the manifest (name, version, base_version, size, chunk size, digests,
 *     created_unix_s, signer_cert) is signed by o->signer.key and written
 *     durably as v<N>.manifest, then an all-ones v<N>.bitmap.
 * Then, on the engine's thread, st_version_begin(store, out->manifest)
 * resumes v<N> with every chunk present and st_version_complete renames it
 * and switches `current`: the store alone completes versions.
 *
 * Deterministic: the same base, writes, chunk size, created_unix_s and key
 * give byte-identical v<N> and manifest on every origin (nothing of the
 * host, the clock or the filesystem enters them; Ed25519 is deterministic).
 *
 * Cost: blocking, buffered I/O through fd_io: call it on a worker thread,
 * never on an engine's ring. The hashing is over the touched chunks only
 * (a 10 GB file with 1% of its chunks touched hashes 100 MB). The base copy
 * is the floor: a clone (XFS with reflink, btrfs) is a metadata operation,
 * milliseconds however big the file, and the copy-on-write costs only the
 * touched blocks; where blocks cannot be shared (ext4) the kernel reads and
 * writes the whole file, a 10 GB file at the disk's speed (tens of seconds)
 * and 10 GB more space per version. Origins belong on XFS with reflink.
 *
 * Whatever of v<N> a previous attempt or a crash left (.partial, .bitmap,
 * .manifest) is replaced; v<N> must not be open in a store meanwhile, and
 * v<N-1> must stay (it is `current` at a bump, which GC never removes).
 * Returns 0 and fills *out, or -errno and removes what it made (never
 * v<N-1> or `current`): -EINVAL (options, or a base whose manifest names
 * another chunk size), -EEXIST (v<N> is already complete), -ENOENT (no
 * v<N-1> or its manifest), -EIO (v<N-1> is not its manifest's size),
 * -EFBIG (a write past FD_FILE_SIZE_MAX), -ENODATA (from nothing, no byte
 * written: a version has at least one), -EMSGSIZE (cert too long), the
 * iterator's -errno, or a disk's (-ENOSPC, -EIO). */
int st_merge_build(const st_merge_opts_t *o, st_merge_result_t *out);

/* ---- the changelog (st_log.c) ---------------------------------------------- */

/* <data>/<name>/v<N>.log holds the changes that build v<N> from its base
 * version, in the order the origin head gave them: opaque payloads (a packed
 * Change) of at most FD_LOG_RECORD_MAX bytes, with sequence numbers 0, 1, 2
 * ... and no gaps. The file is a 64-byte header ("FDCL", format, version,
 * base version, name, CRC32C) and then records framed as common/fd_record.h
 * says: u32 length | u32 CRC32C(length, sequence, payload) | u64 sequence |
 * payload.
 *
 * Guarantees: a record's done(arg, 0) runs only after an fdatasync that
 * covers it has completed, so a power cut keeps every acknowledged record,
 * in order, exactly as appended. Appends are group-committed: st_log_append
 * copies the record into a staging buffer and returns; while no batch is in
 * flight the staged records go to disk as one buffered write followed by one
 * fdatasync, queued on the store's ring (never waited for), and while that
 * batch is in flight new records fill the second buffer, which goes next.
 * Buffered, not O_DIRECT: records are any length, so O_DIRECT would rewrite
 * the partial last block of every batch from memory; a buffered write is one
 * copy into the page cache, the fdatasync pays for the disk either way, and
 * catch-up reads of recent records hit the page cache. A batch waits for
 * nothing but the previous one: the append that finds the log idle queues a
 * NOP on the ring, and the batch is cut when it completes — so everything
 * appended in one loop turn shares a batch — and st_log_flush cuts it at
 * once. Only one batch is ever in flight, so a power cut can damage only the
 * last one; the first record of each batch is marked (FD_REC_CONT clear),
 * so a whole later batch after damage proves the damage is rot, not a tear.
 *
 * Open scans the file. The first record that is short or fails its CRC32C,
 * and everything after it, is cut (ftruncate + fdatasync), logged and
 * counted: a torn tail, never acknowledged. Rot in acknowledged records
 * looks the same, and is cut the same way (the origin role re-fetches what
 * it lost from the other origins, so cutting is recoverable where refusing
 * to open is not); when a whole later batch is found past the damage the
 * cut is logged as an error and flagged (st_log_stats_t.cut_acked), so the
 * caller can tell, and rot inside the last acknowledged batch passes for a
 * tear. A bad header, another log's header, or a sequence gap among whole
 * records is -EBADMSG: nothing is cut then.
 *
 * Failure: a failed write or fdatasync fails every record in flight and
 * staged (done(arg, -errno)) and the log: later appends return that error.
 * A failed fdatasync is never retried as if the data were safe (the kernel
 * may have dropped the dirty pages and marked them clean); st_log_close
 * cuts the file back to its durable end, and the caller opens it again
 * and re-appends what failed. A record whose done reported an error may or
 * may not be in the log after a crash; it was never acknowledged.
 *
 * The store's fault hook (st_fault_fn) sees a batch's write as ST_IO_WRITE
 * and its fdatasync as ST_IO_SYNC, with `chunk` the low 32 bits of the
 * batch's first sequence; its io hook sees every change, as the store's.
 *
 * Memory: st_log_open allocates everything (two staging buffers of
 * ST_LOG_BATCH_BYTES and their callback arrays; a sparse index grows by
 * doubling, once per ST_LOG_INDEX_RECORDS records at most); appends copy
 * and allocate nothing. The handle is the caller's (st_log_close); close
 * every log before the store. Everything but the st_log_iter_ calls runs
 * on the ring's thread. */
typedef struct st_log st_log_t;

typedef struct st_log_stats {
  uint64_t records;         /* appended and made durable by this handle */
  uint64_t bytes;           /* of those, framing included */
  uint64_t syncs;           /* batches: one write and one fdatasync each */
  uint64_t records_at_open; /* whole records the open found */
  uint64_t cut_bytes;       /* cut from the end at open */
  uint64_t cut_records;     /* records in that cut: the damaged one and whole ones after it */
  bool cut_acked;           /* the cut took records a later batch proves were acknowledged */
} st_log_stats_t;

/* Opens name's log building version from base_version (base_version <
 * version), creating it if there is none: v<N>.log.tmp made, the header
 * written and fdatasync'd, renamed to v<N>.log and the directory fsync'd,
 * so the log exists only whole. An existing log is scanned and a damaged
 * tail cut (above), then fdatasync'd and its directory fsync'd (a process
 * that died may have left records written and never synced; they are kept,
 * and made durable before anything new is acknowledged). A control call:
 * synchronous I/O, once per version. One handle per log at a time: the
 * store keeps no list of open logs, and a second handle appending to the
 * same file would interleave batches (a bug in the caller; a flock cannot
 * tell, since the ring may hold the file a moment past its last
 * completion). 0, or -EINVAL (name, versions), -EBADMSG (a bad header,
 * another log's, a sequence gap), -ENOMEM, or the -errno of the file
 * system. */
int st_log_open(st_store_t *s, const char *name, uint64_t version, uint64_t base_version,
                st_log_t **out);

/* Stages the record seq (which must be st_log_next_seq: FD_ASSERT) of len
 * bytes; done(arg, 0) runs after the fdatasync that covers it, or
 * done(arg, -errno) if the log fails first (done may be NULL). Records are
 * acknowledged in sequence order. The payload is copied: it is the
 * caller's again on return. Returns 0 when staged, or without staging:
 * -EMSGSIZE (len > FD_LOG_RECORD_MAX), -EAGAIN (the staging buffer is full:
 * call again after a done of this log ran), -ENOMEM (the index could not
 * grow), or the error that failed the log. */
int st_log_append(st_log_t *l, uint64_t seq, const void *payload, uint32_t len, st_done_fn done,
                  void *arg);
/* Sends the staged records to disk now if no batch is in flight (else they
 * go when it completes). Never needed for progress: it saves the loop turn
 * of the NOP an append queued. */
void st_log_flush(st_log_t *l);

/* The sequence the next append must carry. */
uint64_t st_log_next_seq(const st_log_t *l);
/* Records below this sequence are durable (their done ran or is running). */
uint64_t st_log_durable_seq(const st_log_t *l);
/* Records whose done has not run, plus the log's operations on the ring:
 * run the ring until 0 before st_log_close. */
uint32_t st_log_inflight(const st_log_t *l);
/* 0, or the -errno that failed the log. */
int st_log_error(const st_log_t *l);
const st_log_stats_t *st_log_stats(const st_log_t *l);
void st_log_info(const st_log_t *l, uint64_t *version, uint64_t *base_version);

/* fn gets each record read, in order; its payload is valid during the call.
 * 0 asks for the next, anything else stops the read (and a negative value
 * is returned). */
typedef int (*st_log_record_fn)(void *arg, uint64_t seq, const void *payload, uint32_t len);

/* Reads durable records from from_seq on, in order, until the durable end,
 * max_bytes (payload plus 16 framing bytes a record; the first record is
 * delivered whatever its size) or fn stops it: catch-up reads. Synchronous
 * buffered reads of the log's durable part, on the ring's thread: recent
 * records come from the page cache, and an index bounds the bytes skimmed
 * before from_seq. Returns the number delivered (0 at the durable end), or
 * -ERANGE (from_seq past it), -EBADMSG (a record no longer matches its
 * CRC32C: the disk rotted since the open), -ENOMEM, a read's -errno, or
 * fn's negative value. */
int st_log_read(st_log_t *l, uint64_t from_seq, uint32_t max_bytes, st_log_record_fn fn,
                void *arg);

/* Closes the log. Nothing may be in flight (st_log_inflight == 0:
 * FD_ASSERT). A failed log is first cut back to its durable end (ftruncate
 * + fdatasync; logged if that fails too). */
void st_log_close(st_log_t *l);

/* Removes name's v<version>.log (and a .tmp a crash left), then fsyncs the
 * directory: GC once the merged version is committed. The log must not be
 * open. 0, -ENOENT, -EINVAL, or the -errno of the file system. */
int st_log_remove(st_store_t *s, const char *name, uint64_t version);
/* Writes <data>/<name>/v<version>.log into buf: 0, -EINVAL, -ENAMETOOLONG. */
int st_log_path(const st_store_t *s, const char *name, uint64_t version, char *buf, size_t len);

/* Reading a log by path on any thread (the merge builder): nothing is
 * shared with an open st_log_t; the file's length is taken at open, and
 * the log must not be appended to meanwhile (a merge reads a log that is
 * finished). Records come in order with buffered reads through a window of
 * ST_LOG_BATCH_BYTES (or the file's size, if smaller). The iterator is the
 * caller's (st_log_iter_close). */
typedef struct st_log_iter st_log_iter_t;

/* 0, or -EBADMSG (a bad header), -ENOMEM, or open's -errno. */
int st_log_iter_open(const char *path, st_log_iter_t **out);
void st_log_iter_info(const st_log_iter_t *it, uint64_t *version, uint64_t *base_version);
/* 1 with the next record (*payload valid until the next call or close), 0
 * at the end, or -EBADMSG (a record short or failing its CRC32C, or a
 * sequence gap: a log st_log_open has scanned has neither, so this is rot
 * or a log still being written), or a read's -errno. After an error, every
 * call returns it again. */
int st_log_iter_next(st_log_iter_t *it, uint64_t *seq, const void **payload, uint32_t *len);
void st_log_iter_close(st_log_iter_t *it);
/* Where an iterator stands: the record st_log_iter_next returns next. A
 * reader that must go back (a batch it sent was refused) seeks to a place
 * it was told rather than reading the log again from its start. */
typedef struct st_log_pos {
  uint64_t off, seq;
} st_log_pos_t;
st_log_pos_t st_log_iter_tell(const st_log_iter_t *it);
/* 0, or -EINVAL for a place outside the log; clears an earlier error. */
int st_log_iter_seek(st_log_iter_t *it, st_log_pos_t pos);

#endif /* STORAGE_H */
