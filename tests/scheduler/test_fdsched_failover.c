/* A node that stops heartbeating becomes suspect, then dead, and its children get a new parent pushed on WatchOrders; a broken order stream is a death at once. */
#include "fdsched_util.h"

#define NODES 7 /* one origin + 6 nodes, one zone */

/* One simulated node: its own connection, its order stream, what it was told. */
typedef struct sim_node {
  char id[32];
  fdt_conn_t conn;
  rpc_call_t *watch;
  bool watch_done;
  rpc_code_t watch_code;
  uint32_t orders;
  uint64_t version;
  char parent[FD_STRIPES_MAX][32];
  uint32_t stripes;
  bool beating;
  uint64_t last_beat_ms; /* when its last heartbeat was answered */
} sim_node_t;

static void on_order(rpc_call_t *call, const ProtobufCMessage *m, void *arg) {
  (void)call;
  sim_node_t *n = arg;
  assert_true(m->descriptor == &sched__order__descriptor);
  const Sched__Order *o = (const Sched__Order *)m;
  assert_string_equal(o->name, "bigfile");
  assert_int_equal(o->manifest_sha256.len, FD_SHA256_LEN);
  n->orders++;
  n->version = o->version;
  n->stripes = (uint32_t)o->n_stripes;
  for (size_t s = 0; s < o->n_stripes && s < FD_STRIPES_MAX; s++)
    snprintf(n->parent[o->stripes[s]->stripe], sizeof(n->parent[0]), "%s",
             o->stripes[s]->parent_id ? o->stripes[s]->parent_id : "");
}
static void on_watch_done(rpc_call_t *call, rpc_code_t code, const char *msg, void *arg) {
  (void)call;
  (void)msg;
  sim_node_t *n = arg;
  n->watch_done = true;
  n->watch_code = code;
  n->watch = NULL;
}
static const rpc_call_cbs_t watch_cbs = {on_order, NULL, NULL, on_watch_done};

static void open_watch(sim_node_t *n) {
  Sched__WatchOrdersRequest req = SCHED__WATCH_ORDERS_REQUEST__INIT;
  req.node_id = n->id;
  n->watch = rpc_start_sched_watch_orders(n->conn.c, &req, 600000, &watch_cbs, n);
  assert_non_null(n->watch);
}

/* State of id as ListNodes reports it (static buffer). */
static const char *node_state(rpc_engine_t *e, rpc_conn_t *c, const char *id) {
  static char state[32];
  Sched__ListNodesRequest req = SCHED__LIST_NODES_REQUEST__INIT;
  fdt_call_t t = {0};
  t.call = rpc_start_sched_list_nodes(c, &req, 5000, &fdt_call_cbs, &t);
  assert_int_equal(fdt_wait(e, &t), RPC_OK);
  Sched__ListNodesReply *r = fdt_reply(&t, 0, &sched__list_nodes_reply__descriptor);
  state[0] = '\0';
  for (size_t i = 0; i < r->n_nodes; i++)
    if (strcmp(r->nodes[i]->node->node_id, id) == 0)
      snprintf(state, sizeof(state), "%s", r->nodes[i]->state);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  fdt_call_reset(&t);
  return state;
}

/* Heartbeats every beating node once (on its own connection). */
static void beat(rpc_engine_t *e, sim_node_t *nodes) {
  for (int i = 0; i < NODES; i++)
    if (nodes[i].beating) {
      assert_int_equal(fdt_heartbeat(e, nodes[i].conn.c, nodes[i].id), RPC_OK);
      nodes[i].last_beat_ms = fd_now_ms();
    }
}

/* Pumps for ms, heartbeating every 100 ms. */
static void run_for(rpc_engine_t *e, sim_node_t *nodes, uint32_t ms, uint64_t *next_beat) {
  uint64_t until = fd_now_ms() + ms;
  while (fd_now_ms() < until) {
    if (fd_now_ms() >= *next_beat) {
      beat(e, nodes);
      *next_beat = fd_now_ms() + 100;
    }
    rpc_engine_run_once(e, 5);
  }
}

static void setup_cluster(fdt_sched_t *s, rpc_engine_t **e, sim_node_t *nodes, fdt_conn_t *admin) {
  fdt_setup(s);
  s->extra[0] = "scheduler.heartbeat_ms=100";
  s->extra[1] = "scheduler.suspect_misses=3";
  s->extra[2] = "scheduler.dead_misses=5";
  s->extra[3] = "scheduler.stripes=2";
  fdt_start(s);
  *e = fdt_engine(s->key, sizeof(s->key), NULL);
  assert_true(fdt_connect(*e, s->port, admin));
  for (int i = 0; i < NODES; i++) {
    sim_node_t *n = &nodes[i];
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), i == 0 ? "origin-%d" : "node-%d", i);
    assert_true(fdt_connect(*e, s->port, &n->conn));
    assert_int_equal(fdt_register(*e, n->conn.c, n->id, "r1", "z1", (uint16_t)(9000 + i), i == 0),
                     RPC_OK);
    n->beating = true;
    open_watch(n);
  }
  assert_int_equal(fdt_register_version(*e, admin->c, &s->admin, "bigfile", 1, "origin-0"), RPC_OK);
}

/* The first (child, stripe) whose parent is a non-origin node; false if none. */
static bool find_interior(sim_node_t *nodes, int *child, uint32_t *stripe, int *parent) {
  for (int i = 1; i < NODES; i++)
    for (uint32_t s = 0; s < nodes[i].stripes; s++)
      for (int p = 1; p < NODES; p++)
        if (strcmp(nodes[i].parent[s], nodes[p].id) == 0) {
          *child = i;
          *stripe = s;
          *parent = p;
          return true;
        }
  return false;
}

static void teardown_cluster(rpc_engine_t *e, sim_node_t *nodes, fdt_conn_t *admin) {
  for (int i = 0; i < NODES; i++)
    if (nodes[i].conn.c) rpc_conn_close(nodes[i].conn.c);
  if (admin->c) rpc_conn_close(admin->c);
  rpc_engine_destroy(e);
}

static void test_missed_heartbeats(void **state) {
  fdt_sched_t *s = *state;
  rpc_engine_t *e;
  sim_node_t nodes[NODES];
  fdt_conn_t admin;
  setup_cluster(s, &e, nodes, &admin);
  uint64_t next_beat = 0;
  run_for(e, nodes, 300, &next_beat);
  for (int i = 0; i < NODES; i++) {
    assert_true(nodes[i].orders > 0); /* every node was pushed its order */
    assert_int_equal(nodes[i].version, 1);
    assert_int_equal(nodes[i].stripes, 2);
  }
  int child, parent;
  uint32_t stripe;
  assert_true(find_interior(nodes, &child, &stripe, &parent));
  uint32_t orders_before = nodes[child].orders;

  /* The parent stops heartbeating but keeps its stream open: only the
   * failure detector can notice. Suspect after 3 x 100 ms, dead after 5. */
  nodes[parent].beating = false;
  uint64_t stopped = nodes[parent].last_beat_ms;
  bool seen_suspect = false, seen_dead = false;
  uint64_t suspect_ms = 0, dead_ms = 0;
  while (!seen_dead && fd_now_ms() < stopped + 3000) {
    run_for(e, nodes, 20, &next_beat);
    const char *st = node_state(e, admin.c, nodes[parent].id);
    if (!seen_suspect && strcmp(st, "suspect") == 0) {
      seen_suspect = true;
      suspect_ms = fd_now_ms() - stopped;
    }
    if (strcmp(st, "dead") == 0) {
      seen_dead = true;
      dead_ms = fd_now_ms() - stopped;
    }
    if (!seen_dead) assert_string_not_equal(st, "dead");
  }
  fprintf(stderr, "%s: suspect %llu ms after its last heartbeat, dead after %llu ms\n", nodes[parent].id,
          (unsigned long long)suspect_ms, (unsigned long long)dead_ms);
  assert_true(seen_suspect);
  assert_true(seen_dead);
  assert_true(suspect_ms >= 290 && dead_ms >= 490); /* 3 and 5 intervals of 100 ms */
  assert_true(dead_ms > suspect_ms);

  /* The orphan was pushed a new parent at once (no heartbeat reply needed:
   * heartbeats do not carry orders to our on_order). */
  uint64_t until = fd_now_ms() + 1000;
  while (strcmp(nodes[child].parent[stripe], nodes[parent].id) == 0 && fd_now_ms() < until)
    run_for(e, nodes, 10, &next_beat);
  assert_true(nodes[child].orders > orders_before);
  assert_string_not_equal(nodes[child].parent[stripe], nodes[parent].id);
  assert_true(nodes[child].parent[stripe][0] != '\0');
  /* Nobody else died, and no live node names the dead one as a parent. */
  for (int i = 0; i < NODES; i++) {
    if (i == parent) continue;
    assert_string_not_equal(node_state(e, admin.c, nodes[i].id), "dead");
    for (uint32_t k = 0; k < nodes[i].stripes; k++)
      assert_string_not_equal(nodes[i].parent[k], nodes[parent].id);
  }

  /* A version is published while it is dead: the live nodes are pushed it. */
  uint32_t back_before = nodes[parent].orders;
  assert_int_equal(fdt_register_version(e, admin.c, &s->admin, "bigfile", 2, "origin-0"), RPC_OK);
  run_for(e, nodes, 100, &next_beat);
  for (int i = 0; i < NODES; i++)
    if (i != parent) assert_int_equal(nodes[i].version, 2);
  assert_int_equal(nodes[parent].orders, back_before); /* the dead get no orders */
  assert_int_equal(nodes[parent].version, 1);

  /* It comes back: a heartbeat revives it and it is brought to the newest version. */
  nodes[parent].beating = true;
  run_for(e, nodes, 300, &next_beat);
  assert_string_equal(node_state(e, admin.c, nodes[parent].id), "alive");
  assert_true(nodes[parent].orders > back_before);
  assert_int_equal(nodes[parent].version, 2);
  teardown_cluster(e, nodes, &admin);
}

static void test_stream_loss(void **state) {
  fdt_sched_t *s = *state;
  rpc_engine_t *e;
  sim_node_t nodes[NODES];
  fdt_conn_t admin;
  setup_cluster(s, &e, nodes, &admin);
  uint64_t next_beat = 0;
  run_for(e, nodes, 300, &next_beat);
  int child, parent;
  uint32_t stripe;
  assert_true(find_interior(nodes, &child, &stripe, &parent));

  /* The parent's process dies: its connection breaks (still inside the
   * heartbeat interval, so the detector has not noticed). */
  nodes[parent].beating = false;
  rpc_conn_close(nodes[parent].conn.c);
  uint64_t closed = fd_now_ms();
  uint64_t until = closed + 1000;
  while (strcmp(nodes[child].parent[stripe], nodes[parent].id) == 0 && fd_now_ms() < until)
    run_for(e, nodes, 5, &next_beat);
  uint64_t took = fd_now_ms() - closed;
  fprintf(stderr, "re-parented %llu ms after the stream broke\n", (unsigned long long)took);
  assert_string_not_equal(nodes[child].parent[stripe], nodes[parent].id);
  assert_true(took < 250); /* before the 300 ms suspect timeout */
  assert_string_equal(node_state(e, admin.c, nodes[parent].id), "dead");
  teardown_cluster(e, nodes, &admin);
}

int main(void) {
  fdt_log_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_missed_heartbeats, fdt_group_setup, fdt_group_teardown),
      cmocka_unit_test_setup_teardown(test_stream_loss, fdt_group_setup, fdt_group_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
