/*
 * fdc_conn.c — libfdclient's client and its connection: fdc_open (options,
 * keys, the engine, the head), fdc_close, the handshake role, finding the
 * head (again, after a lost connection or a refusal), and what the head's
 * status codes become.
 *
 * The head moves (issue 22): any origin answers Origin.Head with the head it
 * knows and whether it leads itself, and one that is not the head refuses a
 * change naming the head. So the head is found by asking: the origin last
 * named as the head, then the origins in the order given, then heads they
 * name; the first that leads is taken. The search runs from fdc_open and,
 * after the connection is lost or a change is refused as "not the head",
 * from the library's engine turns (fdc_change.c), once every change sent on
 * the old connection has come back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_error.h"
#include "fd_time.h"
#include "fdc_int.h"

/* ---- the handshake's role: the admin key, or a writer key and the
 * certificate the admin signed for it ---- */
static int set_role(fdc_t *c, rpc_engine_opts_t *o) {
  if (!c->writer) {
    o->admin_key = &c->key;
    return 0;
  }
  o->writer_key = &c->key;
  o->writer_cert = c->cert;
  o->writer_cert_len = c->cert_len;
  return 0;
}

/* ---- errors ---- */

int fdc_err_from_code(rpc_code_t code) {
  switch (code) {
    case RPC_OK: return 0;
    case RPC_PERMISSION_DENIED:
    case RPC_UNAUTHENTICATED: return -EACCES;
    case RPC_INVALID_ARGUMENT: return -EINVAL;
    case RPC_NOT_FOUND: return -ENOENT;
    case RPC_OUT_OF_RANGE: return -EFBIG;
    case RPC_FAILED_PRECONDITION: return -ENOLINK;
    case RPC_ABORTED:
    case RPC_ALREADY_EXISTS: return -EBUSY;
    case RPC_RESOURCE_EXHAUSTED: return -ENOBUFS;
    case RPC_UNIMPLEMENTED: return -EOPNOTSUPP;
    case RPC_DEADLINE_EXCEEDED: return -ETIMEDOUT;
    case RPC_UNAVAILABLE: return -ECONNRESET;
    case RPC_CANCELLED: return -ECANCELED;
    case RPC_INTERNAL:
    case RPC_UNKNOWN:
    case RPC_DATA_LOSS: return -EREMOTEIO;
  }
  return -EREMOTEIO; /* a code from a newer peer */
}

fdc_retry_t fdc_retry_kind(rpc_code_t code, const char *message, bool *maybe) {
  if (maybe) *maybe = false;
  if (!message) message = "";
  switch (code) {
    case RPC_FAILED_PRECONDITION: /* not ordered: nd_group_not_head */
      return !strncmp(message, "not the head", 12) ? FDC_RETRY_FIND : FDC_FINAL;
    case RPC_UNAVAILABLE:
      /* "no head: ..." (a head without ZooKeeper's word) ordered nothing; any
       * other (the connection lost, the head stopping) may have. */
      if (maybe) *maybe = strncmp(message, "no head", 7) != 0;
      return FDC_RETRY_FIND;
    case RPC_ABORTED: return FDC_RETRY_SAME; /* "try again shortly": not ordered */
    default: return FDC_FINAL;
  }
}

/* "host:port": an IPv4 address (what rpc_connect takes) and a port. */
static int split_addr(const char *addr, char host[INET_ADDRSTRLEN], uint16_t *port);

bool fdc_head_named(const char *message, char *addr, size_t addr_len) {
  static const char said[] = "the head is ";
  const char *p = message ? strstr(message, said) : NULL;
  if (!p || !addr || !addr_len) return false;
  p += sizeof(said) - 1;
  size_t len = strcspn(p, " ;,\n");
  const char *at = memchr(p, '@', len);
  if (!at || at == p) return false; /* ID@ADDR:PORT: the id is not optional */
  len -= (size_t)(at + 1 - p);
  p = at + 1;
  if (!len || len >= addr_len) return false;
  char host[INET_ADDRSTRLEN];
  uint16_t port;
  memcpy(addr, p, len);
  addr[len] = '\0';
  if (split_addr(addr, host, &port) < 0) {
    addr[0] = '\0';
    return false;
  }
  return true;
}

bool fdc_outcome_unknown(int err) {
  return err == -ETIMEDOUT || err == -ECONNRESET || err == -ECANCELED || err == -EREMOTEIO ||
         err == -EPROTO;
}

const char *fdc_strerror(int err) {
  switch (err) {
    case 0: return "acknowledged";
    case -EACCES: return "refused: the key lacks the writer or admin role";
    case -ENOLINK: return "refused: the origin group cannot hold it durably";
    case -ENOBUFS: return "refused: the head is full, try again later";
    case -EBUSY: return "refused: the head is busy, try again";
    case -EFBIG: return "refused: past the largest file";
    case -EOPNOTSUPP: return "not supported: the head does not serve changes (an older fdnode)";
    case -ENOTCONN: return "not sent: no connection to the origin head";
    case -EAGAIN: return "too many changes in flight: poll, then call again";
    case -EMSGSIZE: return "a change holds at most 1 MiB";
    case -ETIMEDOUT: return "no answer before the deadline (it may be in the log)";
    case -ECONNRESET: return "the connection to the head was lost (it may be in the log)";
    case -ECANCELED: return "cancelled by fdc_close (it may be in the log)";
    case -EREMOTEIO: return "the head failed (it may be in the log)";
    case -EPROTO: return "an answer the client cannot read (it may be in the log)";
    case -EKEYREJECTED: return "an origin refused the handshake (cluster key, or an untrusted key)";
    default: return fd_strerror(err);
  }
}

/* ---- reading the options' files ---- */

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t why_len, const char *fmt,
                                                      ...) {
  if (!why || !why_len) return;
  size_t used = strnlen(why, why_len);
  if (used + 1 >= why_len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why + used, why_len - used, fmt, ap);
  va_end(ap);
}

/* Reads a whole small file into buf; its length, or -errno (-EMSGSIZE when it
 * holds more than cap bytes). */
static ssize_t read_small(const char *path, uint8_t *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t got = 0;
  ssize_t n = 0;
  while (got <= cap) {
    uint8_t extra;
    n = got < cap ? read(fd, buf + got, cap - got) : read(fd, &extra, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (got == cap) { /* one byte past cap */
      close(fd);
      return -EMSGSIZE;
    }
    got += (size_t)n;
  }
  int saved = errno;
  close(fd);
  return n < 0 ? -saved : (ssize_t)got;
}

static int load_cluster_key(const char *path, uint8_t key[32]) {
  char text[256];
  ssize_t n = read_small(path, (uint8_t *)text, sizeof(text) - 1);
  if (n < 0) return n == -EMSGSIZE ? -EINVAL : (int)n;
  text[n] = '\0';
  char *s = text;
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  size_t len = strlen(s);
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                 s[len - 1] == '\r'))
    s[--len] = '\0';
  if (len != 64) return -EINVAL;
  return fd_hex_decode(s, key, 32) == 32 ? 0 : -EINVAL;
}

static int split_addr(const char *addr, char host[INET_ADDRSTRLEN], uint16_t *port) {
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr || (size_t)(colon - addr) >= INET_ADDRSTRLEN) return -EINVAL;
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  struct in_addr a;
  if (inet_pton(AF_INET, host, &a) != 1) return -EINVAL;
  char *end = NULL;
  errno = 0;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (errno || !end || *end || p == 0 || p > 65535) return -EINVAL;
  *port = (uint16_t)p;
  return 0;
}

static int parse_origins(fdc_t *c, const char *list, char *why, size_t why_len) {
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    size_t len = strcspn(p, ", ");
    if (!len) break;
    if (c->norigins == FDC_ORIGINS_MAX || len >= FDC_ADDR_LEN_MAX) {
      say(why, why_len, "origins: more than %u, or one too long", FDC_ORIGINS_MAX);
      return -EINVAL;
    }
    char *dst = c->origins[c->norigins];
    memcpy(dst, p, len);
    dst[len] = '\0';
    char host[INET_ADDRSTRLEN];
    uint16_t port;
    if (split_addr(dst, host, &port) < 0) {
      say(why, why_len, "origins: '%s' is not IPv4-address:port", dst);
      return -EINVAL;
    }
    c->norigins++;
    p += len;
  }
  if (!c->norigins) {
    say(why, why_len, "origins: none given");
    return -EINVAL;
  }
  return 0;
}

/* ---- the connection ---- */

static void on_ready(rpc_conn_t *conn, void *arg) {
  fdc_t *c = arg;
  if (conn == c->conn) c->ready = true;
}

static void on_closed(rpc_conn_t *conn, int err, void *arg) {
  fdc_t *c = arg;
  if (conn != c->conn) return; /* an origin given up on while connecting */
  c->conn = NULL;
  c->ready = false;
  c->conn_err = err ? err : -ECONNRESET;
}

static const rpc_conn_cbs_t conn_cbs = {on_ready, on_closed};

bool fdc_conn_ready(const fdc_t *c) { return c->conn && c->ready && rpc_conn_is_ready(c->conn); }

void fdc_conn_close(fdc_t *c) {
  if (!c->conn) return;
  rpc_conn_t *conn = c->conn;
  rpc_conn_close(conn); /* calls on it end now, with UNAVAILABLE */
  uint64_t until = fd_now_ms() + FDC_CLOSE_WAIT_MS;
  while (c->conn == conn && fd_now_ms() < until) rpc_engine_run_once(c->e, FDC_TURN_MS);
  c->conn = NULL; /* its on_closed, should it come later, is ignored */
  c->ready = false;
}

/* Connects to addr; 0 once its handshake completed. */
static int try_addr(fdc_t *c, const char *addr) {
  char host[INET_ADDRSTRLEN];
  uint16_t port;
  int rc = split_addr(addr, host, &port);
  if (rc < 0) return rc;
  c->ready = false;
  c->conn_err = 0;
  c->conn = rpc_connect(c->e, host, port, &conn_cbs, c);
  if (!c->conn) return errno ? -errno : -ENOMEM;
  rpc_conn_t *conn = c->conn;
  uint64_t until = fd_now_ms() + c->connect_timeout_ms;
  while (c->conn == conn && !c->ready && fd_now_ms() < until)
    rpc_engine_run_once(c->e, FDC_TURN_MS);
  if (c->conn == conn && c->ready) return 0;
  if (c->conn != conn) { /* closed: refused, or the handshake failed */
    rc = c->conn_err;
    return rc == -EACCES ? -EKEYREJECTED : rc;
  }
  fdc_conn_close(c); /* still connecting */
  return -ETIMEDOUT;
}

/* ---- asking who heads (Origin.Head) ---- */

typedef struct head_ask {
  bool done, replied, leads;
  rpc_code_t code;
  char id[FD_NAME_LEN_MAX];
  char head[FDC_HEAD_LEN_MAX];
  char zk[16]; /* its ZooKeeper session's state, "" without */
  char message[FDC_MESSAGE_LEN_MAX];
} head_ask_t;

static void head_msg(rpc_call_t *call, const ProtobufCMessage *msg, void *arg) {
  (void)call;
  head_ask_t *a = arg;
  const Origin__HeadReply *r = (const Origin__HeadReply *)msg;
  a->replied = true;
  a->leads = r->leads;
  snprintf(a->id, sizeof(a->id), "%s", r->id ? r->id : "");
  snprintf(a->head, sizeof(a->head), "%s", r->head ? r->head : "");
  snprintf(a->zk, sizeof(a->zk), "%s", r->zookeeper ? r->zookeeper : "");
}

static void head_done(rpc_call_t *call, rpc_code_t code, const char *message, void *arg) {
  (void)call;
  head_ask_t *a = arg;
  a->done = true;
  a->code = code;
  snprintf(a->message, sizeof(a->message), "%s", message ? message : "");
}

static const rpc_call_cbs_t head_cbs = {head_msg, NULL, NULL, head_done};

/* Asks the connected origin (addr) who heads. 1: it leads, or it answers
 * UNIMPLEMENTED; 0: it does not lead (*named: the head's "ADDR:PORT" it
 * names, or ""); or -errno: -ECONNRESET when the connection went with the
 * call, which is what an fdnode older than issue 22 does (an unknown method
 * closes the connection). what says its answer. */
static int ask_head(fdc_t *c, const char *addr, char *named, size_t named_len, char *what,
                    size_t what_len) {
  named[0] = '\0';
  head_ask_t a = {0};
  Origin__HeadRequest req = ORIGIN__HEAD_REQUEST__INIT;
  rpc_call_t *call = rpc_call_start(c->conn, RPC_SVC_ORIGIN, &origin__origin__descriptor,
                                    c->head_method, RPC_UNARY, &req.base, c->connect_timeout_ms,
                                    &head_cbs, &a);
  if (!call) {
    int rc = errno ? -errno : -EIO;
    snprintf(what, what_len, "Head: %s", fd_strerror(rc));
    return rc;
  }
  uint64_t until = fd_now_ms() + c->connect_timeout_ms + FDC_GRACE_MS;
  while (!a.done && fd_now_ms() < until) rpc_engine_run_once(c->e, FDC_TURN_MS);
  if (!a.done) rpc_call_cancel(call); /* head_done runs now: a must not outlive us */
  if (a.code == RPC_UNIMPLEMENTED) {
    snprintf(c->head, sizeof(c->head), "%s", addr);
    return 1;
  }
  if (a.code != RPC_OK || !a.replied) {
    snprintf(what, what_len, "Head: %s %.160s", rpc_code_name(a.code), a.message);
    return a.code == RPC_OK ? -EPROTO : fdc_err_from_code(a.code);
  }
  if (a.leads) {
    snprintf(c->head, sizeof(c->head), "%s@%s", a.id, addr);
    return 1;
  }
  char text[FDC_HEAD_LEN_MAX + 16];
  snprintf(text, sizeof(text), "the head is %s", a.head);
  if (!a.head[0] || !fdc_head_named(text, named, named_len)) named[0] = '\0';
  /* without ZooKeeper's quorum nobody leads: say so */
  bool no_zk = a.zk[0] && strcmp(a.zk, "connected") != 0;
  snprintf(what, what_len, "%.40s does not lead (%s%.12s%s%.100s)", a.id[0] ? a.id : "it",
           no_zk ? "its ZooKeeper session is " : "", no_zk ? a.zk : "", no_zk ? "; " : "",
           a.head[0] ? text : "it knows no head");
  return 0;
}

/* Adds addr to the candidates unless it is one already. */
static void candidate(char (*cand)[FDC_ADDR_LEN_MAX], uint32_t *n, const char *addr) {
  if (!addr[0] || *n == FDC_HEAD_CANDIDATES_MAX) return;
  for (uint32_t i = 0; i < *n; i++)
    if (!strcmp(cand[i], addr)) return;
  snprintf(cand[(*n)++], FDC_ADDR_LEN_MAX, "%s", addr);
}

int fdc_conn_open(fdc_t *c, char *why, size_t why_len) {
  if (fdc_conn_ready(c)) return 0;
  fdc_conn_close(c); /* a connection that died, still finishing */
  c->head[0] = '\0';
  if (why && why_len) why[0] = '\0';
  char cand[FDC_HEAD_CANDIDATES_MAX][FDC_ADDR_LEN_MAX];
  uint32_t n = 0;
  candidate(cand, &n, c->named); /* the head an origin named last */
  c->named[0] = '\0';
  for (uint32_t i = 0; i < c->norigins; i++) candidate(cand, &n, c->origins[i]);
  int first = 0;
  bool rejected = false, reached = false, answered = false, dropped = false;
  for (uint32_t i = 0; i < n; i++) {
    char what[FDC_MESSAGE_LEN_MAX] = "", named[FDC_ADDR_LEN_MAX];
    int rc = try_addr(c, cand[i]);
    if (rc == 0) {
      reached = true;
      rc = ask_head(c, cand[i], named, sizeof(named), what, sizeof(what));
      if (rc == 1) {
        if (why && why_len) why[0] = '\0';
        return 0;
      }
      answered |= rc == 0;
      dropped |= rc == -ECONNRESET;
      fdc_conn_close(c);
      candidate(cand, &n, named); /* tried after the origins given */
    } else {
      snprintf(what, sizeof(what), "%s",
               rc == -EKEYREJECTED ? "refused the handshake (another cluster key, or a key it "
                                     "does not trust)"
                                   : fd_strerror(rc));
    }
    say(why, why_len, "%s%s: %s", i ? "; " : "", cand[i], what);
    if (rc < 0 && !first) first = rc;
    rejected |= rc == -EKEYREJECTED;
  }
  if (rejected) return -EKEYREJECTED;
  /* No origin serves Head (older fdnodes close the connection on it): the
   * rule before issue 22, the first origin given that completes the
   * handshake is the head. */
  for (uint32_t i = 0; !answered && dropped && i < c->norigins; i++) {
    if (try_addr(c, c->origins[i]) == 0) {
      snprintf(c->head, sizeof(c->head), "%s", c->origins[i]);
      if (why && why_len) why[0] = '\0';
      return 0;
    }
  }
  if (reached) return -ENOLINK;
  return first ? first : -ENOLINK;
}

/* ---- open and close ---- */

static int check_opts(const fdc_opts_t *o, char *why, size_t why_len) {
  if (!o || !o->origins || !o->cluster_key_file || !o->key_file) {
    say(why, why_len, "origins, cluster_key_file and key_file are required");
    return -EINVAL;
  }
  if (o->inflight_max > FDC_INFLIGHT_MAX) {
    say(why, why_len, "inflight_max: at most %u", FDC_INFLIGHT_MAX);
    return -EINVAL;
  }
  if (o->inflight_bytes_max &&
      (o->inflight_bytes_max < FD_WRITE_BYTES_MAX || o->inflight_bytes_max > FDC_INFLIGHT_BYTES_MAX)) {
    say(why, why_len, "inflight_bytes_max: %u..%llu", FD_WRITE_BYTES_MAX,
        (unsigned long long)FDC_INFLIGHT_BYTES_MAX);
    return -EINVAL;
  }
  if (o->timeout_ms > RPC_TIMEOUT_MS_MAX || o->bump_timeout_ms > RPC_TIMEOUT_MS_MAX ||
      o->connect_timeout_ms > RPC_TIMEOUT_MS_MAX) {
    say(why, why_len, "timeouts: at most %u ms", RPC_TIMEOUT_MS_MAX);
    return -EINVAL;
  }
  return 0;
}

static int load_keys(fdc_t *c, const fdc_opts_t *o, char *why, size_t why_len) {
  int rc = load_cluster_key(o->cluster_key_file, c->cluster_key);
  if (rc < 0) {
    say(why, why_len, "cluster key %s: %s", o->cluster_key_file,
        rc == -EINVAL ? "not 64 hex characters" : fd_strerror(rc));
    return rc;
  }
  rc = fd_ed25519_load(o->key_file, &c->key);
  if (rc == 0 && !c->key.has_private) rc = -EINVAL;
  if (rc < 0) {
    say(why, why_len, "key %s: %s", o->key_file,
        rc == -EINVAL ? "not an Ed25519 private key" : fd_strerror(rc));
    return rc;
  }
  if (!o->cert_file) return 0;
  ssize_t n = read_small(o->cert_file, c->cert, sizeof(c->cert));
  if (n <= 0) {
    rc = n == 0 || n == -EMSGSIZE ? -EINVAL : (int)n;
    say(why, why_len, "certificate %s: %s", o->cert_file,
        rc == -EINVAL ? "empty, or too long to be one" : fd_strerror(rc));
    return rc;
  }
  c->cert_len = (size_t)n;
  c->writer = true;
  return 0;
}

static uint32_t method_index(const char *name) {
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(&origin__origin__descriptor, name);
  FD_ASSERT(md); /* rpc/proto/origin.proto declares it */
  return (uint32_t)(md - origin__origin__descriptor.methods);
}

int fdc_open(const fdc_opts_t *o, fdc_t **out, char *why, size_t why_len) {
  FD_ASSERT(out);
  *out = NULL;
  if (why && why_len) why[0] = '\0';
  int rc = check_opts(o, why, why_len);
  if (rc < 0) return rc;
  fdc_t *c = calloc(1, sizeof(*c));
  if (!c) return -ENOMEM;
  c->timeout_ms = o->timeout_ms ? o->timeout_ms : FDC_TIMEOUT_MS_DEFAULT;
  c->bump_timeout_ms = o->bump_timeout_ms ? o->bump_timeout_ms : FDC_BUMP_TIMEOUT_MS_DEFAULT;
  c->connect_timeout_ms =
      o->connect_timeout_ms ? o->connect_timeout_ms : FDC_CONNECT_TIMEOUT_MS_DEFAULT;
  c->inflight_max = o->inflight_max ? o->inflight_max : FDC_INFLIGHT_DEFAULT;
  c->write_method = method_index("Write");
  c->bump_method = method_index("Bump");
  c->head_method = method_index("Head");
  if ((rc = parse_origins(c, o->origins, why, why_len)) < 0 ||
      (rc = load_keys(c, o, why, why_len)) < 0)
    goto out_free;
  do {
    rc = fd_random_bytes(&c->client_id, sizeof(c->client_id));
  } while (rc == 0 && c->client_id == 0);
  if (rc < 0) goto out_free;

  rpc_engine_opts_t eo = {0};
  eo.cpu = -1;
  eo.payload_max = FDC_REQUEST_LEN_MAX;
  eo.conns_max = FDC_ORIGINS_MAX; /* one open, others still closing */
  eo.streams_per_conn_max = c->inflight_max;
  eo.rx_bufs = FDC_RX_BUFS;
  eo.cluster_key = c->cluster_key;
  eo.cluster_key_len = sizeof(c->cluster_key);
  if ((rc = set_role(c, &eo)) < 0) {
    say(why, why_len, "a writer key needs the rpc writer role, which this build lacks");
    goto out_free;
  }
  c->e = rpc_engine_create(&eo);
  if (!c->e) {
    rc = errno ? -errno : -ENOMEM;
    say(why, why_len, "rpc engine: %s", fd_strerror(rc));
    goto out_free;
  }
  rc = fdc_changes_init(c, o->inflight_bytes_max ? o->inflight_bytes_max
                                                 : FDC_INFLIGHT_BYTES_DEFAULT);
  if (rc < 0) goto out_engine;
  /* An origin completed the handshake (the keys are good) but none leads
   * now: the changes look for the head until their deadlines. */
  rc = fdc_conn_open(c, why, why_len);
  if (rc == -ENOLINK) snprintf(c->conn_why, sizeof(c->conn_why), "%s", why ? why : "");
  else if (rc < 0) goto out_changes;
  *out = c;
  return 0;

out_changes:
  fdc_changes_deinit(c);
out_engine:
  rpc_engine_destroy(c->e);
out_free:
  memset(c, 0, sizeof(*c)); /* the keys */
  free(c);
  return rc;
}

void fdc_close(fdc_t *c) {
  if (!c) return;
  FD_ASSERT(!c->in_callback);
  c->closing = true;
  fdc_changes_cancel(c);
  fdc_conn_close(c);
  rpc_engine_destroy(c->e);
  fdc_changes_deinit(c);
  memset(c, 0, sizeof(*c)); /* the keys */
  free(c);
}

uint64_t fdc_client_id(const fdc_t *c) { return c->client_id; }
const char *fdc_head(const fdc_t *c) { return fdc_conn_ready(c) ? c->head : ""; }
const char *fdc_last_error(const fdc_t *c) { return c->last_error; }
