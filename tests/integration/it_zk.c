/*
 * it_zk — common/fd_zk.h against a real ZooKeeper ensemble (zk_session.sh
 * starts 3 servers and passes their addresses and pids).
 *
 *   it_zk HOSTS PID1 PID2 PID3
 *
 * Checks, in order: the election's order and leader; a member's close hands
 * the lead to the next at once; a listing-only client sees the members;
 * the conditional update (create once, a stale version refused); the loss
 * of quorum (2 of 3 servers SIGSTOPped) makes the leader stop being leader
 * and a synchronous call refuse at once, and the return of quorum gives the
 * lead back to the same session; a member paused (SIGSTOP, a forked child)
 * past its session timeout loses the lead, and once resumed it sees its
 * session expired and joins again at the end of the line.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fd_zk.h"

#define CHECK(c)                                                                    \
  do {                                                                              \
    if (!(c)) {                                                                     \
      fprintf(stderr, "it_zk: %s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *g_hosts;

static fd_zk_t *open_zk(const char *who, uint32_t session_ms) {
  fd_zk_opts_t o = {.hosts = g_hosts, .root = "/it_zk", .session_ms = session_ms, .who = who};
  fd_zk_t *z = fd_zk_open(&o);
  CHECK(z);
  return z;
}

/* Ticks every handle until pred(view of zs[0]) holds, or fails after ms. */
typedef bool (*pred_fn)(const fd_zk_view_t *v, const void *arg);
static void wait_for(fd_zk_t **zs, int n, pred_fn pred, const void *arg, uint64_t ms,
                     const char *what) {
  uint64_t until = now_ms() + ms;
  fd_zk_view_t v;
  for (;;) {
    for (int i = 0; i < n; i++) fd_zk_tick(zs[i]);
    fd_zk_view(zs[0], &v);
    if (pred(&v, arg)) return;
    if (now_ms() > until) {
      fprintf(stderr, "it_zk: timed out waiting for %s (conn %s, members %u, self %d)\n", what,
              fd_zk_conn_name(v.conn), v.members_n, v.self);
      exit(1);
    }
    usleep(10000);
  }
}

static bool is_joined(const fd_zk_view_t *v, const void *a) {
  (void)a;
  return v->joined && v->self >= 0;
}
static bool has_members(const fd_zk_view_t *v, const void *a) {
  return v->members_n == *(const uint32_t *)a;
}
static bool is_leader(const fd_zk_view_t *v, const void *a) {
  (void)a;
  return v->leader;
}
static bool not_leader(const fd_zk_view_t *v, const void *a) {
  (void)a;
  return !v->leader && v->conn != FD_ZK_CONNECTED;
}
static bool is_connected(const fd_zk_view_t *v, const void *a) {
  (void)a;
  return v->conn == FD_ZK_CONNECTED;
}

static void elect_order(fd_zk_t **z) {
  static const char *tags[3] = {"o1@127.0.0.1:1", "o2@127.0.0.1:2", "o3@127.0.0.1:3"};
  for (int i = 0; i < 3; i++) {
    CHECK(fd_zk_elect(z[i], "origins/members", tags[i]) == 0);
    wait_for(&z[i], 1, is_joined, NULL, 10000, "a member to join");
  }
  uint32_t three = 3;
  for (int i = 0; i < 3; i++) {
    fd_zk_t *order[3] = {z[i], z[(i + 1) % 3], z[(i + 2) % 3]};
    wait_for(order, 3, has_members, &three, 10000, "three members");
  }
  fd_zk_view_t v;
  for (int i = 0; i < 3; i++) {
    fd_zk_view(z[i], &v);
    CHECK(v.self == i);
    CHECK(v.leader == (i == 0));
    for (int j = 0; j < 3; j++) CHECK(!strcmp(v.members[j].tag, tags[j]));
    CHECK(v.members[0].seq < v.members[1].seq && v.members[1].seq < v.members[2].seq);
  }
  printf("election: o1 leads, o2 and o3 follow in order\n");
}

static void cas(fd_zk_t *a, fd_zk_t *b) {
  CHECK(fd_zk_watch(a, "origins/chain") == 0);
  CHECK(fd_zk_watch(b, "origins/chain") == 0);
  fd_zk_t *both[2] = {a, b};
  char buf[64];
  int32_t ver;
  uint64_t until = now_ms() + 10000;
  while (fd_zk_node(a, buf, sizeof(buf), &ver, NULL) != -ENOENT && now_ms() < until) {
    fd_zk_tick(a), fd_zk_tick(b);
    usleep(10000);
  }
  CHECK(fd_zk_node(a, buf, sizeof(buf), &ver, NULL) == -ENOENT);
  CHECK(fd_zk_cas(a, "epoch 1", 7, -1) == 0);
  CHECK(fd_zk_cas(a, "epoch 1", 7, -1) == -EBUSY);
  int rc;
  while ((rc = fd_zk_cas_result(a, NULL)) == -EINPROGRESS) usleep(1000);
  CHECK(rc == 0);
  CHECK(fd_zk_cas(b, "epoch 1b", 8, -1) == 0);
  while ((rc = fd_zk_cas_result(b, NULL)) == -EINPROGRESS) usleep(1000);
  CHECK(rc == -EEXIST);
  /* both read version 0; a updates it, then b's update from version 0 is stale */
  until = now_ms() + 10000;
  while (fd_zk_node(b, buf, sizeof(buf), &ver, NULL) != 7 && now_ms() < until) {
    fd_zk_tick(a), fd_zk_tick(b);
    usleep(10000);
  }
  CHECK(fd_zk_node(b, buf, sizeof(buf), &ver, NULL) == 7 && ver == 0 && !memcmp(buf, "epoch 1", 7));
  CHECK(fd_zk_cas(a, "epoch 2", 7, 0) == 0);
  int32_t nv = -1;
  while ((rc = fd_zk_cas_result(a, &nv)) == -EINPROGRESS) usleep(1000);
  CHECK(rc == 0 && nv == 1);
  CHECK(fd_zk_cas(b, "epoch 2b", 8, 0) == 0);
  while ((rc = fd_zk_cas_result(b, NULL)) == -EINPROGRESS) usleep(1000);
  CHECK(rc == -ESTALE);
  until = now_ms() + 10000;
  for (;;) {
    fd_zk_tick(a), fd_zk_tick(b);
    if (fd_zk_node(b, buf, sizeof(buf), &ver, NULL) == 7 && ver == 1) break;
    CHECK(now_ms() < until);
    usleep(10000);
  }
  CHECK(!memcmp(buf, "epoch 2", 7));
  (void)both;
  /* synchronous put / get / children */
  CHECK(fd_zk_put_sync(a, "versions/big/v1", "d1", 2) == 0);
  CHECK(fd_zk_put_sync(a, "versions/big/v2", "d2", 2) == 0);
  CHECK(fd_zk_put_sync(a, "versions/big/v2", "d2x", 3) == 0);
  /* read back by the session that wrote (ZooKeeper orders one session's
   * requests; another session's server may not have applied them yet) */
  CHECK(fd_zk_get_sync(a, "versions/big/v2", buf, sizeof(buf)) == 3 && !memcmp(buf, "d2x", 3));
  CHECK(fd_zk_get_sync(a, "versions/big/v9", buf, sizeof(buf)) == -ENOENT);
  char names[256];
  CHECK(fd_zk_children_sync(a, "versions/big", names, sizeof(names)) == 2);
  CHECK(!strcmp(names, "v1") && !strcmp(names + 3, "v2"));
  CHECK(fd_zk_delete_sync(a, "versions/big/v1") == 0);
  CHECK(fd_zk_delete_sync(a, "versions/big/v1") == 0); /* gone already: still 0 */
  CHECK(fd_zk_get_sync(a, "versions/big/v1", buf, sizeof(buf)) == -ENOENT);
  CHECK(fd_zk_children_sync(a, "versions/big", names, sizeof(names)) == 1);
  printf("conditional update: one create wins, a stale version is refused; put/get/children/delete\n");
}

static void pause_servers(pid_t *pids, int n, int sig) {
  for (int i = 0; i < n; i++) CHECK(kill(pids[i], sig) == 0);
}

/* The member that is paused: a process of its own, exec'd (a fork of this
 * one would inherit the ZooKeeper threads' locks in whatever state they
 * were). Joins, says 'j' on fd, and once resumed past its session's expiry
 * waits to have joined again at the end, says 'r'. */
static int paused_member(int fd) {
  fd_zk_t *c = open_zk("o4", 2000);
  fd_zk_view_t v;
  CHECK(fd_zk_elect(c, "origins/members", "o4@127.0.0.1:4") == 0);
  wait_for(&c, 1, is_joined, NULL, 10000, "o4 to join");
  fd_zk_view(c, &v);
  uint64_t first_seq = v.members[v.self].seq;
  CHECK(write(fd, "j", 1) == 1);
  /* stopped here by the parent, then resumed */
  uint64_t until = now_ms() + 30000;
  for (;;) {
    fd_zk_tick(c);
    fd_zk_view(c, &v);
    if (v.sessions >= 2 && v.joined && v.self >= 0 && v.members[v.self].seq > first_seq) break;
    CHECK(now_ms() < until);
    usleep(10000);
  }
  CHECK(!v.leader && v.self == (int)v.members_n - 1);
  CHECK(write(fd, "r", 1) == 1);
  fd_zk_close(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--paused-member")) {
    g_hosts = argv[2];
    return paused_member(atoi(argv[3]));
  }
  if (argc != 5) {
    fprintf(stderr, "usage: it_zk HOSTS PID1 PID2 PID3\n");
    return 2;
  }
  g_hosts = argv[1];
  pid_t servers[3] = {atoi(argv[2]), atoi(argv[3]), atoi(argv[4])};
  setvbuf(stdout, NULL, _IOLBF, 0);

  fd_zk_t *z[3];
  z[0] = open_zk("o1", 3000);
  z[1] = open_zk("o2", 3000);
  z[2] = open_zk("o3", 3000);
  elect_order(z);
  cas(z[1], z[2]);

  /* a listing-only client */
  fd_zk_t *f = open_zk("client", 3000);
  CHECK(fd_zk_follow(f, "origins/members") == 0);
  uint32_t three = 3, two = 2;
  wait_for(&f, 1, has_members, &three, 10000, "the client's listing");
  fd_zk_view_t v;
  fd_zk_view(f, &v);
  CHECK(v.self == -1 && !v.leader && !strcmp(v.members[0].tag, "o1@127.0.0.1:1"));

  /* the leader leaves: o2 leads at once (its ephemeral znode goes with the
   * session's close) */
  uint64_t t0 = now_ms();
  fd_zk_close(z[0]);
  fd_zk_t *rest[3] = {z[1], z[2], f};
  wait_for(rest, 3, is_leader, NULL, 10000, "o2 to lead");
  printf("o1 closed: o2 leads after %llu ms\n", (unsigned long long)(now_ms() - t0));
  fd_zk_t *fr[3] = {f, z[1], z[2]};
  wait_for(fr, 3, has_members, &two, 10000, "the client to see two members");

  /* quorum lost: two of three servers stopped */
  pause_servers(servers, 2, SIGSTOP);
  t0 = now_ms();
  wait_for(rest, 3, not_leader, NULL, 15000, "o2 to stop leading without quorum");
  printf("quorum lost: o2 stops leading after %llu ms\n", (unsigned long long)(now_ms() - t0));
  char buf[16];
  CHECK(fd_zk_get_sync(z[1], "versions/big/v1", buf, sizeof(buf)) == -ENOTCONN);
  pause_servers(servers, 2, SIGCONT);
  t0 = now_ms();
  wait_for(rest, 3, is_leader, NULL, 30000, "o2 to lead again after quorum returned");
  fd_zk_view(z[1], &v);
  CHECK(v.sessions == 1);
  printf("quorum back: o2 leads again after %llu ms, same session\n",
         (unsigned long long)(now_ms() - t0));

  /* a member paused past its session timeout: a forked child joins, is
   * stopped, o2 keeps the lead and sees it gone; resumed, the child sees
   * its session expired and joins again at the end */
  int pfd[2];
  CHECK(pipe(pfd) == 0);
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    close(pfd[0]);
    char fd[16];
    snprintf(fd, sizeof(fd), "%d", pfd[1]);
    execl("/proc/self/exe", argv[0], "--paused-member", g_hosts, fd, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  char ch;
  CHECK(read(pfd[0], &ch, 1) == 1 && ch == 'j');
  CHECK(kill(child, SIGSTOP) == 0);
  wait_for(fr, 3, has_members, &three, 10000, "the client to see o4");
  t0 = now_ms();
  wait_for(fr, 3, has_members, &two, 20000, "o4's session to expire");
  printf("o4 paused: its session expired after %llu ms\n", (unsigned long long)(now_ms() - t0));
  fd_zk_view(z[1], &v);
  CHECK(v.leader);
  CHECK(kill(child, SIGCONT) == 0);
  CHECK(read(pfd[0], &ch, 1) == 1 && ch == 'r');
  int st;
  CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  printf("o4 resumed: saw its session expired and joined again at the end, o2 still leads\n");

  fd_zk_close(z[1]);
  fd_zk_close(z[2]);
  fd_zk_close(f);
  (void)is_connected;
  printf("it_zk: all checks passed\n");
  return 0;
}
