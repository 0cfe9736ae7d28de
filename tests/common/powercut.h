/*
 * powercut.h — power cuts simulated below the code under test, for the
 * crash tests of storage/ and the scheduler's store (prefix pc_).
 *
 * SIGKILL cannot catch a missing fdatasync: the kernel keeps every write
 * that completed. So, as SQLite's test6.c, CrashMonkey and ALICE do, the
 * code under test runs on a real disk with a recorder as its fd_io hook
 * (common/fd_io.h; storage/ and store_dir.c report every synchronous change,
 * fd_ring every io_uring one): the recorder logs, in completion order, each
 * change with its bytes — creating opens, writes, truncates, fallocate,
 * clones and in-kernel copies, fdatasync/fsync, rename, symlink, unlink,
 * mkdir — and the test's own markers ("append 7 returned 0"). Afterwards a
 * model disk replays a prefix of that log, loses power there, and is written
 * out into a fresh directory, where the real code reopens it and the test
 * checks its invariants.
 *
 * The disk model. Every file and directory has a durable state and a list
 * of pending changes, in the order they completed:
 *  - a file's writes, truncates, size extensions (fallocate), clones and
 *    copies (a FICLONERANGE or copy_file_range is a write of the source
 *    range's bytes) stay pending until an fdatasync or fsync of that file
 *    covers them — one submitted after they completed: an io_uring fsync
 *    covers what completed before it was submitted, not what completed
 *    while it ran;
 *  - a directory's creates (O_CREAT, mkdir, symlink), renames within it and
 *    unlinks stay pending until an fsync of that directory covers them. An
 *    fsync of a file does not make its name durable (POSIX), nor does an
 *    fsync of a directory make its own name durable.
 * At the cut, with a seeded PRNG:
 *  - each pending write is applied, dropped, or torn (a third each); torn,
 *    each of its 512-byte sectors (file offsets in multiples of 512) is
 *    applied or not, so a later sector may land and an earlier one not: the
 *    lost one reads as its old bytes, or as zeros where the file grew. A
 *    truncate or extension is applied or dropped (a half each). What
 *    survives is applied in completion order.
 *  - in each directory, a random prefix of its pending operations survives
 *    (its length uniform over 0..n). A journaling filesystem (ext4, XFS)
 *    commits namespace operations in order, so what a crash leaves is a
 *    prefix; drawing each directory's prefix on its own allows every state
 *    the journal's one global prefix can leave, and more.
 *  - operations in flight at the cut (submitted before it, completed after)
 *    are pending too, after the completed ones.
 * Not modelled: garbage in a lost sector (sectors are atomic: old or new
 * bytes), modes and times, hard links, renames across directories (the
 * recorder reports them as an error), failed calls (they change nothing).
 *
 * Everything here is single-threaded and test-only; a recorder belongs to
 * the thread that runs the code under test.
 */
#ifndef POWERCUT_H
#define POWERCUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fd_io.h"

/* ---- the recorder ---------------------------------------------------------- */

typedef struct pc_rec pc_rec_t;

/* Snapshots every directory, file and symlink under root (which exists) as
 * durable, and starts the log. NULL on error (reported on stderr). */
pc_rec_t *pc_rec_create(const char *root);
void pc_rec_destroy(pc_rec_t *r);
/* The hook for the ring (fd_ring_set_io_hook) and the code under test
 * (st_config_t.io_hook, sch_store_dir_options_t.io_hook); valid until
 * pc_rec_destroy. */
const fd_io_hook_t *pc_rec_hook(pc_rec_t *r);
/* Logs a marker: something the test saw acknowledged (tag and value are the
 * test's). A cut after it must keep what was acknowledged. */
void pc_rec_mark(pc_rec_t *r, uint32_t tag, uint64_t value);
/* Cut points are begin..end: before the first change recorded, through
 * after the last one. */
uint32_t pc_rec_begin(const pc_rec_t *r);
uint32_t pc_rec_end(const pc_rec_t *r);
/* True when log entry i is a marker; its tag and value. */
bool pc_rec_marker(const pc_rec_t *r, uint32_t i, uint32_t *tag, uint64_t *value);
/* The first change the recorder could not model (a file it does not know,
 * a rename across directories), or NULL. */
const char *pc_rec_error(const pc_rec_t *r);
/* Writes the model with every recorded change applied (no power cut) into
 * out, a path that must not exist, and compares it with the real tree under
 * root: 0 when they are the same, or -1 with the first difference in msg.
 * This is what shows the hook saw every change the code made. */
int pc_rec_check_model(pc_rec_t *r, const char *out, char *msg, size_t len);

/* ---- the model disk -------------------------------------------------------- */

typedef struct pc_disk pc_disk_t;

/* What one cut did, for the test's summary: pending changes at the cut and
 * how many of them were lost in whole or in part. */
typedef struct pc_cut_stats {
  uint32_t writes_pending, writes_lost, writes_torn;
  uint32_t dirops_pending, dirops_lost;
} pc_cut_stats_t;

/* A disk holding the snapshot, at cut point pc_rec_begin(r). r must stay
 * alive and stop recording first. */
pc_disk_t *pc_disk_create(const pc_rec_t *r);
void pc_disk_destroy(pc_disk_t *d);
/* Replays the log up to cut point `to` (at least the current one). */
void pc_disk_advance(pc_disk_t *d, uint32_t to);
/* Loses power at the current cut point: resolves every pending change from
 * seed as described above and writes the result into out (a path that must
 * not exist). trace, when not NULL, gets one line per pending change and
 * what became of it. 0 or -errno. */
int pc_disk_cut(pc_disk_t *d, uint64_t seed, const char *out, FILE *trace,
                pc_cut_stats_t *stats);

/* ---- running a power-cut test ---------------------------------------------- */

/* What a run asks of the environment. */
typedef struct pc_opts {
  uint64_t cuts;       /* FDIST_POWERCUT_CUTS: how many cuts in all (default 1000) */
  uint64_t seed;       /* FDIST_POWERCUT_SEED: the run's first seed (default: the clock) */
  const char *dir;     /* FDIST_POWERCUT_DIR: where workloads are recorded (/var/tmp) */
  const char *cut_dir; /* FDIST_POWERCUT_CUT_DIR: where cuts are written out and checked:
                        * /dev/shm when it takes O_DIRECT (no real fsync to wait for;
                        * the model does not depend on the filesystem), else dir */
} pc_opts_t;
void pc_opts_read(pc_opts_t *o);

/* Checks the tree a cut at log entry `at` wrote into out: NULL when every
 * invariant holds, else what broke (formatted into msg). */
typedef const char *(*pc_check_fn)(void *arg, uint32_t at, const char *out, char *msg,
                                   size_t len);

typedef struct pc_tally {
  uint64_t cuts;
  uint64_t lost;   /* cuts where something pending was lost or torn */
  uint64_t broken; /* cuts that broke an invariant */
} pc_tally_t;

/* Cuts r's log at up to budget points — every point while the budget
 * allows, else a sorted random sample — each with a seed drawn from rng,
 * written out into work/cut and checked. A broken cut is reported on stderr
 * as "<label>: BROKEN, cut at entry ...: <what broke>" with its seed, and
 * the first three are cut again into work/kept-<n> with a line per pending
 * change and what became of it. Returns the number of cuts made. */
uint32_t pc_cut_run(const pc_rec_t *r, uint64_t budget, uint64_t *rng, const char *work,
                    const char *label, pc_check_fn check, void *arg, pc_tally_t *t);

/* splitmix64: the seeds of cuts and workloads. */
uint64_t pc_rand(uint64_t *state);
/* rm -rf path; 0 or -errno. */
int pc_remove_tree(const char *path);
/* Formats into msg and returns it: how the checks say what broke. */
__attribute__((format(printf, 3, 4))) const char *pc_say(char *msg, size_t len, const char *fmt,
                                                         ...);
/* Seconds on the monotonic clock. */
double pc_seconds(void);

#endif /* POWERCUT_H */
