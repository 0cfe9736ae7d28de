/* powercut_int.h — what the recorder (powercut_rec.c) and the model disk
 * (powercut_disk.c) share: the log and the table of files. */
#ifndef POWERCUT_INT_H
#define POWERCUT_INT_H

#include <limits.h>
#include <sys/types.h>

#include "powercut.h"

#define PC_NONE UINT32_MAX

typedef enum pc_kind {
  PC_LINK,     /* node (a directory) gets name -> child */
  PC_UNLINK,   /* node loses name */
  PC_RENAME,   /* node's name becomes name2 (replacing what name2 was) */
  PC_WRITE,    /* node (a file) gets len bytes of data at off */
  PC_TRUNC,    /* node's size becomes len */
  PC_EXTEND,   /* node's size becomes at least len (fallocate) */
  PC_SYNC,     /* node's changes logged before queued_at are durable */
  PC_SYNC_ALL, /* everything logged so far is durable (after the snapshot) */
  PC_MARK,     /* the test's marker: tag, value */
} pc_kind_t;

typedef struct pc_entry {
  pc_kind_t kind;
  uint32_t queued_at; /* log length when the operation was submitted */
  uint32_t node, child;
  uint64_t off, len;
  uint8_t *data;
  char *name, *name2;
  uint32_t tag;
  uint64_t value;
} pc_entry_t;

typedef enum pc_type { PC_DIR, PC_FILE, PC_SYMLINK } pc_type_t;

/* A file, directory or symlink the model knows; node 0 is the root. A new
 * inode under a name is a new node, even where the kernel reuses a number. */
typedef struct pc_node {
  pc_type_t type;
  dev_t dev;
  ino_t ino;
  char *target; /* symlink */
} pc_node_t;

/* An io_uring operation submitted and not reaped yet. */
typedef struct pc_queued {
  uint64_t id;
  uint32_t queued_at;
  fd_io_event_t ev; /* names and the iovec array copied; the bytes are read when reaped */
  struct iovec *iov;
} pc_queued_t;

struct pc_rec {
  fd_io_hook_t hook;
  char root[PATH_MAX];
  pc_node_t *nodes;
  uint32_t nnodes, cap_nodes;
  pc_entry_t *log;
  uint32_t nlog, cap_log;
  uint32_t begin;
  pc_disk_t *latest; /* the log so far, all of it pending or durable: for name lookups */
  pc_queued_t *queued;
  uint32_t nqueued, cap_queued;
  char err[512];
};

/* powercut_run.c: grows an array of elem-sized items to hold need, new ones
 * zeroed (aborts when out of memory: a test's tool). */
void *pc_grow(void *p, uint32_t *cap, uint32_t need, size_t elem);

/* powercut_disk.c, for the recorder. */
pc_disk_t *pc_disk_new(const pc_rec_t *r); /* the empty root, at entry 0 */
/* The node name names in directory dir once everything logged is applied. */
uint32_t pc_disk_lookup(const pc_disk_t *d, uint32_t dir, const char *name);
/* Writes the disk with every change applied into out (which must not exist). */
int pc_disk_write_all(pc_disk_t *d, const char *out);

#endif /* POWERCUT_INT_H */
