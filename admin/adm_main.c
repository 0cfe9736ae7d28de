/*
 * adm_main.c — fdadmin's entry: global options and the configuration file,
 * then one command. `fdadmin keygen` is here too (it needs no service);
 * cert and revoke, offline too, are in adm_trust.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "fd_error.h"
#include "fd_log.h"

#define ADM_DEFAULT_CONFIG "/etc/fdist/fdadmin.ini"

static void usage(FILE *out) {
  fprintf(out,
          "usage: fdadmin [GLOBAL OPTIONS] COMMAND [ARGS] (COMMAND --help for each)\n"
          "commands:\n"
          "  keygen PRIVATE.pem PUBLIC.pem [--cluster FILE]   admin key pair, cluster key\n"
          "  publish FILE --name NAME     sign and publish a new version to the origins\n"
          "  status [NAME] [--watch]      distribution per version, region and zone\n"
          "  versions [NAME]              registered versions\n"
          "  nodes [--region R]           members and their state\n"
          "  drain NODE [--no-wait]       move a node's children away, wait until none\n"
          "                               depends on it (admin)\n"
          "  undrain NODE                 let a drained node be a parent again (admin)\n"
          "  gc NAME [--keep K]           collect old versions on the origins (admin)\n"
          "  write NAME --offset N FILE|- change NAME's bytes at N (writer or admin)\n"
          "  append NAME FILE|-           append to NAME (writer or admin)\n"
          "  bump NAME                    make the next version of NAME from its changes\n"
          "  cert --role origin|writer --name SUBJECT [--days N] KEY.pub -o CERT\n"
          "                               certify a key for a role (admin, offline)\n"
          "  revoke KEY_ID|FILE... --list FILE\n"
          "                               add keys to the signed revocation list (admin,\n"
          "                               offline); then copy FILE to every revocations_file\n"
          "global options (override the config file):\n"
          "  --config FILE        INI file with an [admin] section (default $FDADMIN_CONFIG,\n"
          "                       else " ADM_DEFAULT_CONFIG " when it exists)\n"
          "  --scheduler H:P[,H:P...]  fdsched address (several: the leader is found)\n"
          "  --origins H:P,...    origin addresses; the first is the chain head\n"
          "  --cluster-key FILE   cluster key (64 hex chars)\n"
          "  --admin-key FILE     admin Ed25519 private key (publish, drain, undrain, gc,\n"
          "                       cert, revoke; and write, append, bump without a writer\n"
          "                       key)\n"
          "  --writer-key FILE    a writer's Ed25519 private key (write, append, bump)\n"
          "  --writer-cert FILE   its certificate, signed by the admin\n"
          "  --timeout-ms MS      deadline of each call (default %u)\n"
          "  --json               JSON on stdout (read commands, publish, write, append,\n"
          "                       bump, drain, undrain)\n"
          "  --log-level LEVEL    debug, info, warn, error (default warn)\n"
          "exit codes: 0 ok, 1 operation failed, 2 usage, 3 cannot reach/authenticate\n"
          "config keys ([admin]): scheduler, origins, cluster_key, admin_key, writer_key,\n"
          "  writer_cert, timeout_ms, chunk_size\n",
          ADM_CALL_TIMEOUT_MS);
}

static int cmd_keygen(int argc, char **argv) {
  static const struct option longopts[] = {
      {"cluster", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *cluster = NULL;
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 'c') cluster = optarg;
    else if (c == 'h') {
      printf("usage: fdadmin keygen [PRIVATE.pem PUBLIC.pem] [--cluster FILE]\n"
             "  Makes an Ed25519 admin key pair (private key mode 0600; nodes trust the\n"
             "  public one) and/or a cluster key file (32 random bytes as 64 hex chars,\n"
             "  mode 0600, shared by every daemon and fdadmin). Never overwrites a cluster\n"
             "  key file. The same pair serves as an origin group's or a writer's key,\n"
             "  to certify with fdadmin cert.\n");
      return ADM_EXIT_OK;
    } else return ADM_EXIT_USAGE;
  }
  int npos = argc - optind;
  if (!(npos == 2 || (npos == 0 && cluster))) {
    fprintf(stderr, "usage: fdadmin keygen [PRIVATE.pem PUBLIC.pem] [--cluster FILE]\n");
    return ADM_EXIT_USAGE;
  }
  if (npos == 2) {
    fd_ed25519_key_t key;
    int rc = fd_ed25519_generate(&key);
    if (!rc) rc = fd_ed25519_save(&key, argv[optind], argv[optind + 1]);
    if (rc < 0) {
      fprintf(stderr, "fdadmin keygen: %s\n", fd_strerror(rc));
      return ADM_EXIT_FAILED;
    }
    printf("key id %016" PRIx64 ": private %s, public %s\n", fd_ed25519_key_id(key.pub),
           argv[optind], argv[optind + 1]);
    memset(&key, 0, sizeof(key));
  }
  if (cluster) {
    int rc = adm_cluster_key_generate(cluster);
    if (rc < 0) {
      fprintf(stderr, "fdadmin keygen: cluster key %s: %s\n", cluster, fd_strerror(rc));
      return ADM_EXIT_FAILED;
    }
    printf("cluster key: %s\n", cluster);
  }
  return ADM_EXIT_OK;
}

typedef struct global_flags {
  const char *config, *scheduler, *origins, *cluster_key, *admin_key, *timeout, *log_level;
  const char *writer_key, *writer_cert;
  bool json;
} global_flags_t;

static int set_str(char *dst, size_t cap, const char *v, const char *what) {
  if (strlen(v) >= cap) {
    fprintf(stderr, "fdadmin: %s too long\n", what);
    return -1;
  }
  memcpy(dst, v, strlen(v) + 1);
  return 0;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"config", required_argument, 0, 'C'},     {"scheduler", required_argument, 0, 's'},
      {"origins", required_argument, 0, 'o'},    {"origin", required_argument, 0, 'o'},
      {"cluster-key", required_argument, 0, 'k'}, {"admin-key", required_argument, 0, 'a'},
      {"timeout-ms", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'},
      {"log-level", required_argument, 0, 'l'},  {"help", no_argument, 0, 'h'},
      {"writer-key", required_argument, 0, 'w'}, {"writer-cert", required_argument, 0, 'W'},
      {0, 0, 0, 0}};
  global_flags_t g = {0};
  int c;
  /* "+": stop at the command; its own options are parsed by the command. */
  while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
    switch (c) {
      case 'C': g.config = optarg; break;
      case 's': g.scheduler = optarg; break;
      case 'o': g.origins = optarg; break;
      case 'k': g.cluster_key = optarg; break;
      case 'a': g.admin_key = optarg; break;
      case 't': g.timeout = optarg; break;
      case 'j': g.json = true; break;
      case 'l': g.log_level = optarg; break;
      case 'w': g.writer_key = optarg; break;
      case 'W': g.writer_cert = optarg; break;
      case 'h': usage(stdout); return ADM_EXIT_OK;
      default: usage(stderr); return ADM_EXIT_USAGE;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    return ADM_EXIT_USAGE;
  }
  fd_log_level_t level = FD_LOG_WARN;
  if (g.log_level && fd_log_level_parse(g.log_level, &level) < 0) {
    fprintf(stderr, "fdadmin: bad --log-level '%s'\n", g.log_level);
    return ADM_EXIT_USAGE;
  }
  fd_log_init("fdadmin", level);

  adm_config_t cfg;
  adm_config_defaults(&cfg);
  const char *path = g.config ? g.config : getenv("FDADMIN_CONFIG");
  if (!path && access(ADM_DEFAULT_CONFIG, R_OK) == 0) path = ADM_DEFAULT_CONFIG;
  if (path && *path) {
    char err[512] = "";
    int rc = adm_config_load(&cfg, path, err, sizeof(err));
    if (rc < 0) {
      fprintf(stderr, "fdadmin: config %s: %s\n", path, err[0] ? err : fd_strerror(rc));
      return ADM_EXIT_USAGE;
    }
    set_str(cfg.config_path, sizeof(cfg.config_path), path, "config path");
  }
  if ((g.scheduler && set_str(cfg.scheduler, sizeof(cfg.scheduler), g.scheduler, "--scheduler")) ||
      (g.origins && set_str(cfg.origins, sizeof(cfg.origins), g.origins, "--origins")) ||
      (g.cluster_key &&
       set_str(cfg.cluster_key_path, sizeof(cfg.cluster_key_path), g.cluster_key, "--cluster-key")) ||
      (g.admin_key &&
       set_str(cfg.admin_key_path, sizeof(cfg.admin_key_path), g.admin_key, "--admin-key")) ||
      (g.writer_key &&
       set_str(cfg.writer_key_path, sizeof(cfg.writer_key_path), g.writer_key, "--writer-key")) ||
      (g.writer_cert && set_str(cfg.writer_cert_path, sizeof(cfg.writer_cert_path), g.writer_cert,
                                "--writer-cert")))
    return ADM_EXIT_USAGE;
  if (g.timeout) {
    char *end = NULL;
    unsigned long t = strtoul(g.timeout, &end, 10);
    if (!end || *end || t < 100 || t > RPC_TIMEOUT_MS_MAX) {
      fprintf(stderr, "fdadmin: bad --timeout-ms '%s'\n", g.timeout);
      return ADM_EXIT_USAGE;
    }
    cfg.timeout_ms = (uint32_t)t;
  }
  cfg.json = g.json;

  const char *cmd = argv[optind];
  int cargc = argc - optind;
  char **cargv = argv + optind;
  if (!strcmp(cmd, "keygen")) return cmd_keygen(cargc, cargv);
  if (!strcmp(cmd, "publish")) return adm_cmd_publish(&cfg, cargc, cargv);
  if (!strcmp(cmd, "status")) return adm_cmd_status(&cfg, cargc, cargv);
  if (!strcmp(cmd, "versions")) return adm_cmd_versions(&cfg, cargc, cargv);
  if (!strcmp(cmd, "nodes")) return adm_cmd_nodes(&cfg, cargc, cargv);
  if (!strcmp(cmd, "drain")) return adm_cmd_drain(&cfg, cargc, cargv);
  if (!strcmp(cmd, "undrain")) return adm_cmd_undrain(&cfg, cargc, cargv);
  if (!strcmp(cmd, "gc")) return adm_cmd_gc(&cfg, cargc, cargv);
  if (!strcmp(cmd, "write") || !strcmp(cmd, "append")) return adm_cmd_write(&cfg, cargc, cargv);
  if (!strcmp(cmd, "bump")) return adm_cmd_bump(&cfg, cargc, cargv);
  if (!strcmp(cmd, "cert")) return adm_cmd_cert(&cfg, cargc, cargv);
  if (!strcmp(cmd, "revoke")) return adm_cmd_revoke(&cfg, cargc, cargv);
  if (!strcmp(cmd, "help")) {
    usage(stdout);
    return ADM_EXIT_OK;
  }
  fprintf(stderr, "fdadmin: unknown command '%s'\n", cmd);
  usage(stderr);
  return ADM_EXIT_USAGE;
}
