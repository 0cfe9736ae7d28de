/* fdnode.c — the fdnode daemon's main: config, signals, run. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "fd_error.h"
#include "fd_file.h"
#include "fd_log.h"
#include "node.h"

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
  nd_config_t cfg;
  nd_config_defaults(&cfg);
  fd_config_item_t items[ND_CONFIG_ITEMS_MAX];
  size_t nitems = nd_config_items(&cfg, items, ND_CONFIG_ITEMS_MAX);
  const char *config = NULL;
  const char *sets[ND_CONFIG_SETS_MAX];
  int nsets = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout, items, nitems);
      return 0;
    } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
      config = argv[++i];
    } else if (!strcmp(argv[i], "-s") && i + 1 < argc && nsets < (int)ND_CONFIG_SETS_MAX) {
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
  /* For registered buffers. Without privilege the limit stays (8 MiB for a
   * user on Debian 12, shared by their processes) and the engines leave their
   * pools unregistered (rpc_engine_pool_registered). */
  setrlimit(RLIMIT_MEMLOCK, &rl);
  signal(SIGPIPE, SIG_IGN);
  /* SIGTERM and SIGINT are read from a signalfd by the node's own loop
   * (blocked here, before any engine thread starts, so in every thread). */
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_set, NULL);
  int sfd = signalfd(-1, &stop_set, SFD_CLOEXEC);
  if (sfd < 0) {
    fprintf(stderr, "fdnode: signalfd: %s\n", fd_strerror(-errno));
    return 1;
  }
  nd_node_t *n;
  int rc = nd_node_create(&cfg, &n);
  if (!rc && cfg.port_file[0] && (rc = fd_port_file_write(cfg.port_file, nd_node_port(n))) != 0) {
    fd_log_error("port file %s: %s", cfg.port_file, fd_strerror(rc));
    nd_node_destroy(n);
  } else if (!rc && (rc = nd_node_stop_on_fd(n, sfd)) != 0) {
    nd_node_destroy(n);
  }
  if (rc) {
    fprintf(stderr, "fdnode: %s\n", fd_strerror(rc));
    close(sfd);
    return 1;
  }
  rc = nd_node_run(n);
  nd_node_destroy(n);
  close(sfd);
  fd_log_info("exit %s", rc ? fd_strerror(rc) : "ok");
  return rc ? 1 : 0;
}
