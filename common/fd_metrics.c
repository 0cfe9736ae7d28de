/* fd_metrics.c — the Prometheus text writer, histograms, and the /metrics
 * server on libmicrohttpd's own thread (see fd_metrics.h for why). */
#include "fd_metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_file.h"

/* ---- histograms ------------------------------------------------------------------ */

const uint64_t fd_hist_latency_bounds_ns[] = {
    50000ull,     100000ull,     250000ull,     500000ull,     1000000ull,     2500000ull,
    5000000ull,   10000000ull,   25000000ull,   50000000ull,   100000000ull,   250000000ull,
    500000000ull, 1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull,
};
const uint32_t fd_hist_latency_bounds_n = FD_ARRAY_LEN(fd_hist_latency_bounds_ns);
static_assert(FD_ARRAY_LEN(fd_hist_latency_bounds_ns) <= FD_METRICS_BUCKETS_MAX,
              "the latency buckets fit a histogram");

void fd_hist_init(fd_hist_t *h, const uint64_t *bounds_ns, uint32_t n_bounds) {
  FD_ASSERT(h && bounds_ns && n_bounds <= FD_METRICS_BUCKETS_MAX);
  for (uint32_t i = 1; i < n_bounds; i++)
    FD_ASSERT(bounds_ns[i - 1] < bounds_ns[i]);
  h->bounds_ns = bounds_ns;
  h->n_bounds = n_bounds;
  for (uint32_t i = 0; i <= FD_METRICS_BUCKETS_MAX; i++)
    atomic_init(&h->counts[i], 0);
  atomic_init(&h->sum_ns, 0);
}

void fd_hist_observe_ns(fd_hist_t *h, uint64_t ns) {
  uint32_t i = 0;
  while (i < h->n_bounds && ns > h->bounds_ns[i])
    i++;
  fd_counter_add(&h->counts[i], 1);
  fd_counter_add(&h->sum_ns, ns);
}

/* ---- the writer ------------------------------------------------------------------- */

void fd_mw_init(fd_mw_t *w, char *buf, size_t cap) {
  FD_ASSERT(w && buf && cap > 0);
  w->buf = buf;
  w->cap = cap;
  w->len = 0;
  w->overflow = false;
  buf[0] = '\0';
}

static void put(fd_mw_t *w, const char *s, size_t n) {
  if (w->overflow) return;
  if (w->cap - w->len <= n) { /* keep room for the NUL */
    w->overflow = true;
    return;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len] = '\0';
}

static void puts_(fd_mw_t *w, const char *s) { put(w, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void putf(fd_mw_t *w, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  FD_ASSERT(n >= 0 && (size_t)n < sizeof(tmp));
  put(w, tmp, (size_t)n);
}

static bool name_ok(const char *s, bool colon) {
  if (!s || !*s) return false;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

/* Escapes \ and newline (HELP), and " too (label values). */
static void put_escaped(fd_mw_t *w, const char *s, bool quote) {
  for (; *s; s++) {
    if (*s == '\\')
      puts_(w, "\\\\");
    else if (*s == '\n')
      puts_(w, "\\n");
    else if (quote && *s == '"')
      puts_(w, "\\\"");
    else
      put(w, s, 1);
  }
}

void fd_mw_family(fd_mw_t *w, const char *name, fd_metric_type_t type, const char *help) {
  FD_ASSERT(name_ok(name, true));
  static const char *const types[] = {"counter", "gauge", "histogram"};
  FD_ASSERT((size_t)type < FD_ARRAY_LEN(types));
  puts_(w, "# HELP ");
  puts_(w, name);
  puts_(w, " ");
  put_escaped(w, help ? help : "", false);
  puts_(w, "\n# TYPE ");
  puts_(w, name);
  puts_(w, " ");
  puts_(w, types[type]);
  puts_(w, "\n");
}

/* name{l1="v1",...,extra="..."} — extra (le) may be NULL. */
static void put_series(fd_mw_t *w, const char *name, const char *suffix, const fd_label_t *labels,
                       size_t n_labels, const char *le) {
  FD_ASSERT(name_ok(name, true));
  puts_(w, name);
  if (suffix) puts_(w, suffix);
  if (n_labels == 0 && !le) return;
  puts_(w, "{");
  for (size_t i = 0; i < n_labels; i++) {
    FD_ASSERT(name_ok(labels[i].name, false) && labels[i].value);
    if (i) puts_(w, ",");
    puts_(w, labels[i].name);
    puts_(w, "=\"");
    put_escaped(w, labels[i].value, true);
    puts_(w, "\"");
  }
  if (le) {
    if (n_labels) puts_(w, ",");
    puts_(w, "le=\"");
    puts_(w, le);
    puts_(w, "\"");
  }
  puts_(w, "}");
}

void fd_mw_u64(fd_mw_t *w, const char *name, const fd_label_t *labels, size_t n_labels,
               uint64_t v) {
  put_series(w, name, NULL, labels, n_labels, NULL);
  putf(w, " %" PRIu64 "\n", v);
}

void fd_mw_f64(fd_mw_t *w, const char *name, const fd_label_t *labels, size_t n_labels, double v) {
  put_series(w, name, NULL, labels, n_labels, NULL);
  putf(w, " %.17g\n", v);
}

void fd_mw_hist(fd_mw_t *w, const char *name, const fd_label_t *labels, size_t n_labels,
                const fd_hist_t *h) {
  uint64_t cum = 0;
  char le[40];
  for (uint32_t i = 0; i <= h->n_bounds; i++) {
    cum += fd_counter_get(&h->counts[i]);
    if (i < h->n_bounds)
      snprintf(le, sizeof(le), "%.9g", (double)h->bounds_ns[i] / 1e9);
    else
      snprintf(le, sizeof(le), "+Inf");
    put_series(w, name, "_bucket", labels, n_labels, le);
    putf(w, " %" PRIu64 "\n", cum);
  }
  put_series(w, name, "_sum", labels, n_labels, NULL);
  putf(w, " %.9f\n", (double)fd_counter_get(&h->sum_ns) / 1e9);
  put_series(w, name, "_count", labels, n_labels, NULL);
  putf(w, " %" PRIu64 "\n", cum);
}

/* ---- the server ------------------------------------------------------------------- */

struct fd_metrics_server {
  struct MHD_Daemon *d;
  fd_metrics_render_fn render;
  void *arg;
  uint16_t port;
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state) {
  (void)version;
  (void)upload;
  fd_metrics_server_t *s = cls;
  /* The first call only announces the request's headers. */
  if (!*state) {
    *state = s;
    return MHD_YES;
  }
  if (*upload_len) return MHD_NO; /* a body: not ours */
  struct MHD_Response *r;
  unsigned code;
  bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
  if (!get || strcmp(url, "/metrics") != 0) {
    /* PERSISTENT: libmicrohttpd neither writes nor frees it */
    static char nf[] = "not found: GET /metrics\n";
    r = MHD_create_response_from_buffer(sizeof(nf) - 1, nf, MHD_RESPMEM_PERSISTENT);
    code = get ? MHD_HTTP_NOT_FOUND : MHD_HTTP_METHOD_NOT_ALLOWED;
  } else {
    char *buf = NULL;
    fd_mw_t w = {0};
    for (size_t cap = (size_t)FD_METRICS_BODY_MIN; cap <= (size_t)FD_METRICS_BODY_MAX; cap *= 2) {
      free(buf);
      if (!(buf = malloc(cap))) return MHD_NO;
      fd_mw_init(&w, buf, cap);
      s->render(s->arg, &w);
      if (!w.overflow) break;
    }
    if (w.overflow) {
      free(buf);
      return MHD_NO;
    }
    r = MHD_create_response_from_buffer(w.len, buf, MHD_RESPMEM_MUST_FREE);
    if (!r) free(buf);
    code = MHD_HTTP_OK;
    if (r)
      MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                              "text/plain; version=0.0.4; charset=utf-8");
  }
  if (!r) return MHD_NO;
  enum MHD_Result ret = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ret;
}

static int parse_listen(const char *listen, struct sockaddr_in *sa) {
  const char *colon = listen ? strrchr(listen, ':') : NULL;
  if (!colon || colon == listen || (size_t)(colon - listen) >= INET_ADDRSTRLEN) return -EINVAL;
  char host[INET_ADDRSTRLEN];
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  char *end;
  errno = 0;
  unsigned long port = strtoul(colon + 1, &end, 10);
  if (errno || end == colon + 1 || *end || port > 65535) return -EINVAL;
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) return -EINVAL;
  return 0;
}

int fd_metrics_server_start(const char *listen, const char *port_file, fd_metrics_render_fn render,
                            void *arg, fd_metrics_server_t **out) {
  FD_ASSERT(render && out);
  struct sockaddr_in sa;
  int rc = parse_listen(listen, &sa);
  if (rc) return rc;
  fd_metrics_server_t *s = calloc(1, sizeof(*s));
  if (!s) return -ENOMEM;
  s->render = render;
  s->arg = arg;
  /* The HTTP thread takes no signals: they stay with the daemon's own
   * thread (a signalfd, or a handler that must interrupt its loop). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  errno = 0;
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, answer, s,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                          (unsigned int)FD_METRICS_CONNS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                          (unsigned int)10, MHD_OPTION_END);
  int start_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!s->d) {
    rc = start_errno ? -start_errno : -EADDRINUSE;
    free(s);
    return rc;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : ntohs(sa.sin_port);
  if (port_file && port_file[0] && (rc = fd_port_file_write(port_file, s->port)) != 0) {
    fd_metrics_server_stop(s);
    return rc;
  }
  *out = s;
  return 0;
}

uint16_t fd_metrics_server_port(const fd_metrics_server_t *s) { return s->port; }

void fd_metrics_server_stop(fd_metrics_server_t *s) {
  if (!s) return;
  MHD_stop_daemon(s->d);
  free(s);
}
