/* fuzz_rpc_msg — protobuf-c decoding of every message that crosses the wire
 * (each method's input and output in the scheduler, node and origin
 * services, and the rpc layer's own status and handshake messages), through
 * a bounded arena allocator like the engine's. Byte 0 picks the message.
 * Invariants: a decoded message passes protobuf_c_message_check and
 * re-encodes to its packed size; the re-encoding is decoded again without a
 * fault. (It may be refused: protobuf-c 1.4 keeps an overlong tag 0, "80 00",
 * as an unknown field and refuses it once re-encoded; the rpc layer decodes
 * each message once, so that asymmetry is harmless.) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARENA_BYTES (8u << 20)
static uint8_t *arena;
static size_t arena_used;

static void *arena_alloc(void *d, size_t n) {
  (void)d;
  size_t at = FD_ALIGN_UP(arena_used, (size_t)16);
  if (n > ARENA_BYTES || at > ARENA_BYTES - n) return NULL;
  arena_used = at + n;
  return arena + at;
}
static void arena_free(void *d, void *p) {
  (void)d;
  (void)p;
}
static ProtobufCAllocator alloc = {arena_alloc, arena_free, NULL};

static const ProtobufCMessageDescriptor *descs[64];
static unsigned ndescs;

static void add(const ProtobufCMessageDescriptor *d) {
  for (unsigned i = 0; i < ndescs; i++)
    if (descs[i] == d) return;
  FD_ASSERT(ndescs < FD_ARRAY_LEN(descs));
  descs[ndescs++] = d;
}

static void init(void) {
  arena = malloc(ARENA_BYTES);
  add(&fdrpc__status__descriptor);
  add(&fdrpc__hello__descriptor);
  add(&fdrpc__hello_reply__descriptor);
  add(&fdrpc__proof__descriptor);
  add(&fdrpc__welcome__descriptor);
  add(&fdrpc__go_away__descriptor);
  const ProtobufCServiceDescriptor *svcs[] = {&sched__scheduler__descriptor,
                                              &node__node__descriptor, &origin__origin__descriptor};
  for (unsigned s = 0; s < FD_ARRAY_LEN(svcs); s++)
    for (unsigned m = 0; m < svcs[s]->n_methods; m++) {
      add(svcs[s]->methods[m].input);
      add(svcs[s]->methods[m].output);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!arena) init();
  if (size < 1) return 0;
  const ProtobufCMessageDescriptor *d = descs[data[0] % ndescs];
  arena_used = 0;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, size - 1, data + 1);
  if (!m) return 0;
  FD_ASSERT(protobuf_c_message_check(m));
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  FD_ASSERT(protobuf_c_message_pack(m, buf) == n);
  ProtobufCMessage *again = protobuf_c_message_unpack(d, &alloc, n, buf);
  if (again) FD_ASSERT(protobuf_c_message_check(again));
  free(buf);
  return 0;
}
