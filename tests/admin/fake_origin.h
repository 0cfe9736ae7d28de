/*
 * fake_origin.h — a test double of the origin head's write path, for the
 * client's unit tests (libfdclient, fdadmin write/append/bump): Origin.Write
 * and Origin.Bump served by an in-process rpc engine on its own thread, the
 * file kept in memory, one log at a time. It orders changes in arrival order,
 * answers them at once, or holds them and answers newest first, or never, or
 * refuses them, or drops the connection mid-stream. Like every origin since
 * issue 22 it remembers each write by (client_id, client_seq): one sent
 * again is answered with where it first went, never applied twice; and it
 * answers Origin.Head (leading, or following a head it names). It is not
 * the origin role (node/, with replication and durability); integration
 * tests run that.
 *
 * Behaviour fields are set while no change of the client is in flight, state
 * is read once the client saw the outcomes (the socket orders the two
 * threads' accesses, as in test_publish.c).
 */
#ifndef FAKE_ORIGIN_H
#define FAKE_ORIGIN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fd_hash.h"
#include "rpc.h"

#define FAKE_FILE_MAX (64u << 20) /* past it: OUT_OF_RANGE */
#define FAKE_HELD_MAX 4096u
#define FAKE_LOG_MAX 16384u

typedef struct fake_write {
  uint64_t client_id, client_seq, version, index, offset, len;
  bool append;
} fake_write_t;

typedef struct fake_held {
  rpc_call_t *call;
  uint64_t version, index, offset;
  bool live;
} fake_held_t;

typedef struct fake_origin {
  /* set before fake_start */
  uint8_t cluster_key[32];
  fd_ed25519_key_t admin; /* trusted admin key: Write and Bump need the admin role */
  bool keys_given;        /* cluster_key and admin set by the test (another fake's) */
  bool no_head_method;    /* an fdnode older than issue 22: Head is unknown (the
                             connection is closed on it) */
  uint32_t streams_max;   /* the engine's streams per connection; 0: 1024 */
  uint32_t window_bytes;  /* the engine's frame size and windows (>= 2 MiB); 0: rpc's */
  /* behaviour */
  rpc_code_t refuse;    /* RPC_OK: serve; else answer Write and Bump with it... */
  uint32_t refuse_from; /* ...from this Write on (1-based, counting every one); 0: all */
  char refuse_msg[128];
  uint32_t hold;         /* hold answers until this many wait, then answer them newest first */
  bool silent;           /* never answer (except the first answer_first writes) */
  uint32_t answer_first; /* writes answered at once whatever hold and silent say */
  uint32_t die_at;       /* close the connection when this write (1-based) arrives; 0: never */
  uint32_t stall_ms;     /* the first write's handler sleeps this long: the fake reads nothing */
  bool follows;          /* Head: leads false; Write and Bump: "not the head" + head_named */
  char head_named[128];  /* "ID@ADDR:PORT" a follower names as the head ("": none) */
  /* state */
  uint64_t version, next_index; /* the log being built; starts at v1 */
  uint64_t file_len;
  uint8_t *file;
  uint32_t arrivals, writes, bumps, refused, held_max; /* writes: applied */
  uint32_t again;      /* writes that arrived again (known by client_id, client_seq) */
  uint32_t heads;      /* Head calls answered */
  uint32_t conns_seen; /* connections accepted, as of the last Write */
  fake_write_t log[FAKE_LOG_MAX]; /* every write, in arrival order */
  fake_held_t held[FAKE_HELD_MAX];
  uint32_t nheld;
  /* the thread */
  pthread_t thread;
  rpc_engine_t *e;
  _Atomic uint16_t port;
} fake_origin_t;

/* Generates the keys, starts the thread and waits for the port (asserts). */
void fake_start(fake_origin_t *f);
void fake_stop(fake_origin_t *f);
/* Writes the fake's cluster key and admin key into dir: dir/cluster.key,
 * dir/admin.pem (and .pub). */
void fake_write_keys(const fake_origin_t *f, const char *dir);

#endif /* FAKE_ORIGIN_H */
