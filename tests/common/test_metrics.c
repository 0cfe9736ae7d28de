/* test_metrics.c — the Prometheus text writer (HELP/TYPE, labels and their escaping, histogram
 * buckets, _sum, _count, overflow) and the /metrics server on port 0 with its port file. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_file.h"
#include "fd_metrics.h"

static void test_counter_and_gauge(void **state) {
  (void)state;
  char buf[1024];
  fd_mw_t w;
  fd_mw_init(&w, buf, sizeof(buf));
  fd_mw_family(&w, "fdist_rx_bytes_total", FD_METRIC_COUNTER, "Bytes received.\nSecond \\ line");
  fd_label_t l[] = {{"class", "same_zone"}, {"file", "a\"b\\c\nd"}};
  fd_mw_u64(&w, "fdist_rx_bytes_total", l, 2, 18446744073709551615ull);
  fd_mw_family(&w, "fdist_up", FD_METRIC_GAUGE, "Up.");
  fd_mw_u64(&w, "fdist_up", NULL, 0, 1);
  fd_mw_f64(&w, "fdist_ratio", NULL, 0, 0.5);
  assert_false(w.overflow);
  assert_string_equal(buf, "# HELP fdist_rx_bytes_total Bytes received.\\nSecond \\\\ line\n"
                           "# TYPE fdist_rx_bytes_total counter\n"
                           "fdist_rx_bytes_total{class=\"same_zone\",file=\"a\\\"b\\\\c\\nd\"} "
                           "18446744073709551615\n"
                           "# HELP fdist_up Up.\n"
                           "# TYPE fdist_up gauge\n"
                           "fdist_up 1\n"
                           "fdist_ratio 0.5\n");
  assert_int_equal(w.len, strlen(buf));
}

static const uint64_t bounds[] = {1000000ull, 10000000ull, 2500000000ull};

static void test_histogram(void **state) {
  (void)state;
  fd_hist_t h;
  fd_hist_init(&h, bounds, 3);
  fd_hist_observe_ns(&h, 500000);     /* <= 1 ms */
  fd_hist_observe_ns(&h, 1000000);    /* <= 1 ms: le is inclusive */
  fd_hist_observe_ns(&h, 5000000);    /* <= 10 ms */
  fd_hist_observe_ns(&h, 3000000000); /* above every bound */
  char buf[2048];
  fd_mw_t w;
  fd_mw_init(&w, buf, sizeof(buf));
  fd_mw_family(&w, "fdist_sync_seconds", FD_METRIC_HISTOGRAM, "Sync latency.");
  fd_label_t l[] = {{"role", "origin"}};
  fd_mw_hist(&w, "fdist_sync_seconds", l, 1, &h);
  fd_mw_hist(&w, "fdist_sync_seconds", NULL, 0, &h);
  assert_false(w.overflow);
  assert_string_equal(buf, "# HELP fdist_sync_seconds Sync latency.\n"
                           "# TYPE fdist_sync_seconds histogram\n"
                           "fdist_sync_seconds_bucket{role=\"origin\",le=\"0.001\"} 2\n"
                           "fdist_sync_seconds_bucket{role=\"origin\",le=\"0.01\"} 3\n"
                           "fdist_sync_seconds_bucket{role=\"origin\",le=\"2.5\"} 3\n"
                           "fdist_sync_seconds_bucket{role=\"origin\",le=\"+Inf\"} 4\n"
                           "fdist_sync_seconds_sum{role=\"origin\"} 3.006500000\n"
                           "fdist_sync_seconds_count{role=\"origin\"} 4\n"
                           "fdist_sync_seconds_bucket{le=\"0.001\"} 2\n"
                           "fdist_sync_seconds_bucket{le=\"0.01\"} 3\n"
                           "fdist_sync_seconds_bucket{le=\"2.5\"} 3\n"
                           "fdist_sync_seconds_bucket{le=\"+Inf\"} 4\n"
                           "fdist_sync_seconds_sum 3.006500000\n"
                           "fdist_sync_seconds_count 4\n");
}

static void test_overflow(void **state) {
  (void)state;
  char buf[40];
  fd_mw_t w;
  fd_mw_init(&w, buf, sizeof(buf));
  fd_mw_u64(&w, "fdist_a", NULL, 0, 1);
  assert_false(w.overflow);
  fd_mw_family(&w, "fdist_b", FD_METRIC_COUNTER, "a help text longer than what is left");
  assert_true(w.overflow); /* what was written is cut short: the caller retries bigger */
  size_t len = w.len;
  assert_true(len < sizeof(buf));
  fd_mw_u64(&w, "fdist_c", NULL, 0, 2); /* dropped */
  assert_int_equal(w.len, len);
  assert_int_equal(strlen(buf), len);
}

static void render(void *arg, fd_mw_t *w) {
  fd_counter_t *c = arg;
  fd_mw_family(w, "fdist_test_total", FD_METRIC_COUNTER, "A test counter.");
  fd_mw_u64(w, "fdist_test_total", NULL, 0, fd_counter_get(c));
  /* Bigger than FD_METRICS_BODY_MIN: the server grows its buffer. */
  for (uint32_t i = 0; i < 4000; i++) {
    char v[16];
    snprintf(v, sizeof(v), "%u", i);
    fd_label_t l[] = {{"i", v}};
    fd_mw_u64(w, "fdist_test_padding_metric_with_a_long_name", l, 1, i);
  }
}

/* One HTTP/1.0 request; the whole answer in out. */
static size_t http_get(uint16_t port, const char *req, char *out, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  size_t len = 0;
  ssize_t n;
  while (len + 1 < cap && (n = read(fd, out + len, cap - 1 - len)) > 0)
    len += (size_t)n;
  out[len] = '\0';
  close(fd);
  return len;
}

static void test_server_port0(void **state) {
  (void)state;
  char dir[] = "/tmp/fd_metrics_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char pf[128];
  snprintf(pf, sizeof(pf), "%s/metrics.port", dir);
  fd_counter_t c;
  atomic_init(&c, 0);
  fd_counter_add(&c, 41);
  fd_counter_add(&c, 1);
  fd_metrics_server_t *s = NULL;
  assert_int_equal(fd_metrics_server_start("127.0.0.1:0", pf, render, &c, &s), 0);
  uint16_t port = fd_metrics_server_port(s);
  assert_true(port != 0);
  char txt[16];
  size_t len;
  assert_int_equal(fd_file_read(pf, txt, sizeof(txt) - 1, &len), 0);
  txt[len] = '\0';
  assert_int_equal(atoi(txt), port);

  size_t cap = 1u << 20;
  char *out = malloc(cap);
  assert_non_null(out);
  http_get(port, "GET /metrics HTTP/1.0\r\n\r\n", out, cap);
  assert_non_null(strstr(out, " 200 OK\r\n"));
  assert_non_null(strstr(out, "text/plain; version=0.0.4"));
  assert_non_null(strstr(out, "\r\n\r\n# HELP fdist_test_total A test counter.\n"));
  assert_non_null(strstr(out, "\nfdist_test_total 42\n"));
  assert_non_null(strstr(out, "fdist_test_padding_metric_with_a_long_name{i=\"3999\"} 3999\n"));
  http_get(port, "GET /other HTTP/1.0\r\n\r\n", out, cap);
  assert_non_null(strstr(out, " 404 "));
  http_get(port, "DELETE /metrics HTTP/1.0\r\n\r\n", out, cap);
  assert_non_null(strstr(out, " 405 "));
  free(out);

  /* The same port again is taken. */
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
  fd_metrics_server_t *s2 = NULL;
  assert_true(fd_metrics_server_start(addr, NULL, render, &c, &s2) < 0);
  fd_metrics_server_stop(s);

  /* A port file that cannot be written: the error, and the server is gone. */
  char bad_pf[160];
  snprintf(bad_pf, sizeof(bad_pf), "%s/no-such-dir/metrics.port", dir);
  assert_int_equal(fd_metrics_server_start("127.0.0.1:0", bad_pf, render, &c, &s2), -ENOENT);
  assert_int_equal(fd_metrics_server_start("nonsense", NULL, render, &c, &s2), -EINVAL);
  assert_int_equal(fd_metrics_server_start("127.0.0.1:70000", NULL, render, &c, &s2), -EINVAL);
  assert_int_equal(fd_metrics_server_start("localhost:0", NULL, render, &c, &s2), -EINVAL);
  unlink(pf);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_and_gauge),
      cmocka_unit_test(test_histogram),
      cmocka_unit_test(test_overflow),
      cmocka_unit_test(test_server_port0),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
