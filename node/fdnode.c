/* fdnode.c — the fdnode daemon's main: config, signals, run. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fd_error.h"
#include "fd_file.h"
#include "fd_log.h"
#include "node.h"

static nd_node_t *g_node;

static void on_signal(int sig) {
  (void)sig;
  if (g_node) nd_node_stop(g_node);
}

static void usage(FILE *out, fd_config_item_t *items, size_t n) {
  fprintf(out,
          "usage: fdnode --config FILE [-s section.key=value ...]\n"
          "  The fdist node daemon (role node) or origin (role origin).\n"
          "  --config FILE   INI file, section [node]\n"
          "  -s S.K=V        override one setting (after the file)\n"
          "  --help          this text\n"
          "settings (defaults shown):\n");
  if (out == stdout) fd_config_print(items, n);
}

int main(int argc, char **argv) {
  fd_log_init("fdnode", FD_LOG_INFO);
  static nd_config_t cfg;
  nd_config_defaults(&cfg);
  fd_config_item_t items[64];
  size_t nitems = nd_config_items(&cfg, items, 64);
  const char *config = NULL;
  const char *sets[128];
  int nsets = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout, items, nitems);
      return 0;
    } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
      config = argv[++i];
    } else if (!strcmp(argv[i], "-s") && i + 1 < argc && nsets < 128) {
      sets[nsets++] = argv[++i];
    } else {
      usage(stderr, items, nitems);
      return 2;
    }
  }
  char err[512];
  if (config && fd_config_load(config, items, nitems, err, sizeof(err)) != 0) {
    fprintf(stderr, "fdnode: %s\n", err);
    return 2;
  }
  for (int i = 0; i < nsets; i++)
    if (fd_config_set(items, nitems, sets[i], err, sizeof(err)) != 0) {
      fprintf(stderr, "fdnode: -s %s: %s\n", sets[i], err);
      return 2;
    }
  if (nd_config_check(&cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "fdnode: %s\n", err);
    return 2;
  }
  fd_log_level_t lvl;
  if (fd_log_level_parse(cfg.log_level, &lvl) == 0) fd_log_set_level(lvl);
  struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &rl); /* registered buffers; fails harmlessly without privilege */
  signal(SIGPIPE, SIG_IGN);
  nd_node_t *n;
  int rc = nd_node_create(&cfg, &n);
  if (rc) {
    fprintf(stderr, "fdnode: %s\n", fd_strerror(rc));
    return 1;
  }
  if (cfg.port_file[0] && (rc = fd_port_file_write(cfg.port_file, nd_node_port(n))) != 0) {
    fd_log_error("port file %s: %s", cfg.port_file, fd_strerror(rc));
    nd_node_destroy(n);
    return 1;
  }
  g_node = n;
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  rc = nd_node_run(n);
  g_node = NULL;
  nd_node_destroy(n);
  fd_log_info("exit %s", rc ? fd_strerror(rc) : "ok");
  return rc ? 1 : 0;
}
