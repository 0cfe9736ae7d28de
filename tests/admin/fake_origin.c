/* fake_origin.c — the origin head's write path as a test double (fake_origin.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_origin.h"
#include "fd_time.h"

static uint32_t method(const char *name) {
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(&origin__origin__descriptor, name);
  assert_non_null(md);
  return (uint32_t)(md - origin__origin__descriptor.methods);
}

static int answer(rpc_call_t *call, uint64_t version, uint64_t index, uint64_t offset) {
  Origin__WriteReply r = ORIGIN__WRITE_REPLY__INIT;
  r.version = version;
  r.index = index;
  r.offset = offset;
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static void held_closed(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)code;
  (void)msg;
  ((fake_held_t *)arg)->live = false;
}

/* Answers every held change, newest first. */
static void release(fake_origin_t *f) {
  for (uint32_t i = f->nheld; i-- > 0;) {
    fake_held_t *h = &f->held[i];
    if (h->live) answer(h->call, h->version, h->index, h->offset); /* held_closed runs */
  }
  f->nheld = 0;
}

/* "not the head; the head is ..." as node/nd_group.c says it. */
static int not_head(fake_origin_t *f, rpc_call_t *call) {
  char msg[200];
  f->refused++;
  if (f->head_named[0]) snprintf(msg, sizeof(msg), "not the head; the head is %s", f->head_named);
  else snprintf(msg, sizeof(msg), "not the head; no head is known");
  return rpc_call_finish(call, RPC_FAILED_PRECONDITION, msg);
}

static int h_write(rpc_call_t *call, const ProtobufCMessage *m, void *ctx) {
  fake_origin_t *f = ctx;
  const Origin__WriteRequest *req = (const Origin__WriteRequest *)m;
  rpc_stats_t st;
  rpc_engine_get_stats(f->e, &st);
  f->conns_seen = (uint32_t)st.conns_accepted;
  if (!rpc_call_is_admin(call))
    return rpc_call_finish(call, RPC_PERMISSION_DENIED, "writer or admin role required");
  if (f->follows) return not_head(f, call);
  f->arrivals++;
  if (f->stall_ms && f->arrivals == 1) usleep(f->stall_ms * 1000u);
  if (f->refuse != RPC_OK && f->arrivals >= f->refuse_from) {
    f->refused++;
    return rpc_call_finish(call, f->refuse, f->refuse_msg);
  }
  for (uint32_t i = 0; req->client_id && i < f->writes; i++) {
    const fake_write_t *w = &f->log[i];
    if (w->client_id == req->client_id && w->client_seq == req->client_seq) {
      f->again++;
      return answer(call, w->version, w->index, w->offset);
    }
  }
  uint64_t offset = req->append ? f->file_len : req->offset;
  if (req->data.len == 0 || req->data.len > FD_WRITE_BYTES_MAX || !req->name[0])
    return rpc_call_finish(call, RPC_INVALID_ARGUMENT, "bad change");
  if (offset > FAKE_FILE_MAX || req->data.len > FAKE_FILE_MAX - offset)
    return rpc_call_finish(call, RPC_OUT_OF_RANGE, "past the fake's file");
  memcpy(f->file + offset, req->data.data, req->data.len);
  if (offset + req->data.len > f->file_len) f->file_len = offset + req->data.len;
  uint64_t index = f->next_index++;
  assert_true(f->writes < FAKE_LOG_MAX);
  f->log[f->writes++] = (fake_write_t){req->client_id, req->client_seq, f->version, index,
                                       offset, req->data.len, req->append};
  if (f->die_at && f->writes == f->die_at) {
    rpc_conn_close(rpc_call_conn(call)); /* every call on it ends, held ones too */
    return 0;
  }
  if (f->writes <= f->answer_first || (!f->silent && !f->hold))
    return answer(call, f->version, index, offset);
  assert_true(f->nheld < FAKE_HELD_MAX);
  fake_held_t *h = &f->held[f->nheld++];
  *h = (fake_held_t){call, f->version, index, offset, true};
  rpc_call_cbs_t cbs = {NULL, NULL, NULL, held_closed};
  rpc_call_set_cbs(call, &cbs, h);
  uint32_t live = 0;
  for (uint32_t i = 0; i < f->nheld; i++) live += f->held[i].live;
  if (live > f->held_max) f->held_max = live;
  if (!f->silent && live >= f->hold) release(f);
  return 0;
}

static int h_bump(rpc_call_t *call, const ProtobufCMessage *m, void *ctx) {
  fake_origin_t *f = ctx;
  (void)m;
  if (!rpc_call_is_admin(call))
    return rpc_call_finish(call, RPC_PERMISSION_DENIED, "writer or admin role required");
  if (f->follows) return not_head(f, call);
  if (f->refuse != RPC_OK) {
    f->refused++;
    return rpc_call_finish(call, f->refuse, f->refuse_msg);
  }
  uint8_t digest[FD_SHA256_LEN];
  fd_sha256(f->file, f->file_len, digest);
  Origin__BumpReply r = ORIGIN__BUMP_REPLY__INIT;
  r.version = f->version;
  r.changes = f->next_index;
  r.digest.data = digest;
  r.digest.len = sizeof(digest);
  f->bumps++;
  f->version++;
  f->next_index = 0;
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static int h_head(rpc_call_t *call, const ProtobufCMessage *m, void *ctx) {
  fake_origin_t *f = ctx;
  (void)m;
  Origin__HeadReply r = ORIGIN__HEAD_REPLY__INIT;
  char id[32], head[160];
  snprintf(id, sizeof(id), "fake%u", (unsigned)atomic_load(&f->port));
  if (f->follows) snprintf(head, sizeof(head), "%s", f->head_named);
  else snprintf(head, sizeof(head), "%s@127.0.0.1:%u", id, (unsigned)atomic_load(&f->port));
  r.id = id;
  r.head = head;
  r.zookeeper = (char *)"";
  r.leads = !f->follows;
  f->heads++;
  int rc = rpc_call_send(call, &r.base);
  return rc < 0 ? rc : rpc_call_finish(call, RPC_OK, NULL);
}

static void *fake_main(void *arg) {
  fake_origin_t *f = arg;
  rpc_engine_opts_t o = {0};
  o.cpu = -1;
  o.cluster_key = f->cluster_key;
  o.cluster_key_len = sizeof(f->cluster_key);
  o.admin_pub = f->admin.pub;
  o.streams_per_conn_max = f->streams_max ? f->streams_max : FD_STREAMS_PER_CONNECTION_MAX;
  o.rx_bufs = 256;
  o.payload_max = o.stream_window_bytes = o.conn_window_bytes = f->window_bytes;
  f->e = rpc_engine_create(&o);
  assert_non_null(f->e);
  rpc_method_reg_t w = {RPC_SVC_ORIGIN, &origin__origin__descriptor, method("Write"), RPC_UNARY,
                        false, h_write, (rpc_typed_fn)h_write, f};
  rpc_method_reg_t b = {RPC_SVC_ORIGIN, &origin__origin__descriptor, method("Bump"), RPC_UNARY,
                        false, h_bump, (rpc_typed_fn)h_bump, f};
  assert_int_equal(rpc_serve(f->e, &w), 0);
  assert_int_equal(rpc_serve(f->e, &b), 0);
  rpc_method_reg_t h = {RPC_SVC_ORIGIN, &origin__origin__descriptor, method("Head"), RPC_UNARY,
                        false, h_head, (rpc_typed_fn)h_head, f};
  if (!f->no_head_method) assert_int_equal(rpc_serve(f->e, &h), 0);
  uint16_t port = 0;
  assert_int_equal(rpc_listen(f->e, "127.0.0.1", 0, &port), 0);
  atomic_store(&f->port, port);
  rpc_engine_run(f->e);
  rpc_engine_destroy(f->e);
  return NULL;
}

void fake_start(fake_origin_t *f) {
  if (!f->keys_given) {
    assert_int_equal(fd_random_bytes(f->cluster_key, sizeof(f->cluster_key)), 0);
    assert_int_equal(fd_ed25519_generate(&f->admin), 0);
  }
  f->version = 1;
  f->file = calloc(1, FAKE_FILE_MAX);
  assert_non_null(f->file);
  assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
  uint64_t until = fd_now_ms() + 5000;
  while (!atomic_load(&f->port) && fd_now_ms() < until) usleep(1000);
  assert_true(atomic_load(&f->port) != 0);
}

void fake_stop(fake_origin_t *f) {
  if (!f->file) return; /* stopped already */
  rpc_engine_stop(f->e);
  pthread_join(f->thread, NULL);
  free(f->file);
  f->file = NULL;
}

void fake_write_keys(const fake_origin_t *f, const char *dir) {
  char path[512], pub[512], hex[65];
  snprintf(path, sizeof(path), "%s/admin.pem", dir);
  snprintf(pub, sizeof(pub), "%s/admin.pub", dir);
  assert_int_equal(fd_ed25519_save(&f->admin, path, pub), 0);
  snprintf(path, sizeof(path), "%s/cluster.key", dir);
  fd_hex_encode(f->cluster_key, sizeof(f->cluster_key), hex);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fprintf(fp, "%s\n", hex);
  fclose(fp);
}
