/*
 * adm_trust.c — the admin's trust commands, offline (no service is called):
 *
 *   fdadmin cert --role origin|writer --name SUBJECT [--days N] KEY.pub -o CERT
 *   fdadmin revoke KEY_ID|FILE... --list FILE
 *
 * Both sign with the admin key (--admin-key or admin_key in the config) and
 * write their file durably (temp file, fsync, rename). Distributing the
 * files is the operator's: a certificate goes to the key's holder (each
 * origin's signing_cert_file, a writer's --writer-cert), a revocation list
 * to the revocations_file of every fdnode and fdsched, which re-read it
 * within a heartbeat period.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin.h"
#include "fd_error.h"
#include "fd_time.h"

/* The admin's private key, or an exit code. */
static int load_admin(const adm_config_t *cfg, const char *cmd, fd_ed25519_key_t *admin) {
  if (!cfg->admin_key_path[0]) {
    fprintf(stderr, "fdadmin %s: needs the admin key (--admin-key FILE)\n", cmd);
    return ADM_EXIT_USAGE;
  }
  int rc = fd_ed25519_load(cfg->admin_key_path, admin);
  if (rc < 0 || !admin->has_private) {
    fprintf(stderr, "fdadmin %s: admin key %s: %s\n", cmd, cfg->admin_key_path,
            rc < 0 ? fd_strerror(rc) : "not a private key");
    return ADM_EXIT_USAGE;
  }
  return ADM_EXIT_OK;
}

static void cert_usage(FILE *out) {
  fprintf(out,
          "usage: fdadmin [GLOBAL OPTIONS] cert --role origin|writer --name SUBJECT [--days N]\n"
          "                                     KEY.pub -o CERT\n"
          "  Certifies the Ed25519 key KEY.pub (fdadmin keygen makes one; a private key\n"
          "  file works too, only its public half is used) for one role, signed with the\n"
          "  admin key:\n"
          "    origin  the origin group's signing key: every origin holds it\n"
          "            (signing_key_file) and this certificate (signing_cert_file); nodes\n"
          "            and fdsched accept the versions it signs\n"
          "    writer  a client that may write and bump (fdadmin --writer-key KEY\n"
          "            --writer-cert CERT)\n"
          "  SUBJECT names the holder in log lines: 1-%u of [A-Za-z0-9._@+:-].\n"
          "  Valid from an hour ago (clock skew) for N days (default 365, at most %u).\n",
          FD_CERT_SUBJECT_LEN_MAX, FD_CERT_DAYS_MAX);
}

int adm_cmd_cert(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {
      {"role", required_argument, 0, 'r'}, {"name", required_argument, 0, 'n'},
      {"days", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *role = NULL, *name = NULL, *out = NULL, *days_s = "365";
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
    switch (c) {
      case 'r': role = optarg; break;
      case 'n': name = optarg; break;
      case 'd': days_s = optarg; break;
      case 'o': out = optarg; break;
      case 'h': cert_usage(stdout); return ADM_EXIT_OK;
      default: cert_usage(stderr); return ADM_EXIT_USAGE;
    }
  }
  fd_cert_t cert = {0};
  char *end = NULL;
  unsigned long days = strtoul(days_s, &end, 10);
  if (optind + 1 != argc || !role || !name || !out) {
    cert_usage(stderr);
    return ADM_EXIT_USAGE;
  }
  if (fd_cert_role_parse(role, &cert.role) < 0) {
    fprintf(stderr, "fdadmin cert: --role %s: want origin or writer\n", role);
    return ADM_EXIT_USAGE;
  }
  if (!fd_cert_subject_valid(name)) {
    fprintf(stderr, "fdadmin cert: --name '%s': 1-%u of [A-Za-z0-9._@+:-]\n", name,
            FD_CERT_SUBJECT_LEN_MAX);
    return ADM_EXIT_USAGE;
  }
  if (!end || *end || days < 1 || days > FD_CERT_DAYS_MAX) {
    fprintf(stderr, "fdadmin cert: --days %s: want 1..%u\n", days_s, FD_CERT_DAYS_MAX);
    return ADM_EXIT_USAGE;
  }
  fd_ed25519_key_t subject;
  int rc = fd_ed25519_load(argv[optind], &subject);
  if (rc < 0) {
    fprintf(stderr, "fdadmin cert: key %s: %s\n", argv[optind], fd_strerror(rc));
    return ADM_EXIT_USAGE;
  }
  fd_ed25519_key_t admin;
  int ex = load_admin(cfg, "cert", &admin);
  if (ex != ADM_EXIT_OK) return ex;
  if (!memcmp(subject.pub, admin.pub, FD_ED25519_PUB_LEN)) {
    fprintf(stderr, "fdadmin cert: %s is the admin key itself: certify a key of its own\n",
            argv[optind]);
    explicit_bzero(&admin, sizeof(admin));
    return ADM_EXIT_USAGE;
  }
  snprintf(cert.subject, sizeof(cert.subject), "%s", name);
  memcpy(cert.pub, subject.pub, FD_ED25519_PUB_LEN);
  explicit_bzero(&subject, sizeof(subject));
  uint64_t now = fd_wall_s();
  cert.not_before_unix_s = now - FD_CERT_BACKDATE_S;
  cert.not_after_unix_s = now + (uint64_t)days * 86400u;
  rc = fd_cert_sign(&cert, &admin);
  explicit_bzero(&admin, sizeof(admin));
  if (rc == 0) rc = fd_cert_save(out, &cert);
  if (rc < 0) {
    fprintf(stderr, "fdadmin cert: %s: %s\n", out, fd_strerror(rc));
    return ADM_EXIT_FAILED;
  }
  char line[256];
  fd_cert_describe(&cert, line, sizeof(line));
  printf("certificate %s: %s\n", out, line);
  return ADM_EXIT_OK;
}

static void revoke_usage(FILE *out) {
  fprintf(out,
          "usage: fdadmin [GLOBAL OPTIONS] revoke KEY_ID|FILE... --list FILE\n"
          "  Adds keys to the admin-signed revocation list FILE (made if missing) and\n"
          "  signs it again with serial + 1; a list with a higher serial replaces a\n"
          "  lower one wherever it is read. Each key is named by its id (16 hex\n"
          "  digits, as keygen and cert print it) or by a file: its certificate or its\n"
          "  key. Then copy FILE to the revocations_file of every fdnode and fdsched:\n"
          "  they re-read it within a heartbeat period. A revoked origin key signs\n"
          "  nothing anyone accepts any more (versions it signed before included);\n"
          "  a revoked writer key is refused at the handshake and its connections\n"
          "  are closed. The admin key itself cannot be revoked. Needs the admin key.\n");
}

/* A key id from a hex id or a file (certificate or key); -EINVAL. */
static int key_id_of(const char *arg, uint64_t *id) {
  struct stat st;
  if (stat(arg, &st) == 0) {
    fd_cert_t c;
    uint8_t raw[FD_CERT_LEN_MAX];
    size_t len;
    if (fd_cert_load(arg, &c, raw, &len) == 0) {
      *id = c.key_id;
      return 0;
    }
    fd_ed25519_key_t k;
    if (fd_ed25519_load(arg, &k) == 0) {
      *id = fd_ed25519_key_id(k.pub);
      explicit_bzero(&k, sizeof(k));
      return 0;
    }
    return -EINVAL;
  }
  const char *hex = strncmp(arg, "0x", 2) ? arg : arg + 2;
  uint8_t b[8];
  if (strlen(hex) != 16 || fd_hex_decode(hex, b, sizeof(b)) != 8) return -EINVAL;
  *id = 0;
  for (int i = 0; i < 8; i++) *id = *id << 8 | b[i];
  return 0;
}

int adm_cmd_revoke(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {
      {"list", required_argument, 0, 'l'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *path = NULL;
  int c;
  optind = 0;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 'l') path = optarg;
    else if (c == 'h') {
      revoke_usage(stdout);
      return ADM_EXIT_OK;
    } else {
      revoke_usage(stderr);
      return ADM_EXIT_USAGE;
    }
  }
  if (!path || optind >= argc) {
    revoke_usage(stderr);
    return ADM_EXIT_USAGE;
  }
  fd_ed25519_key_t admin;
  int ex = load_admin(cfg, "revoke", &admin);
  if (ex != ADM_EXIT_OK) return ex;
  uint64_t admin_id = fd_ed25519_key_id(admin.pub);
  static fd_cert_revlist_t l; /* large: not on the stack */
  int rc = fd_cert_revlist_load(path, admin.pub, &l);
  if (rc == -ENOENT) {
    fd_cert_revlist_init(&l);
  } else if (rc < 0) {
    fprintf(stderr, "fdadmin revoke: %s: %s\n", path,
            rc == -EKEYREJECTED ? "not a list this admin key signed" : fd_strerror(rc));
    ex = ADM_EXIT_FAILED;
    goto out_wipe;
  }
  uint32_t added = 0;
  for (int i = optind; i < argc; i++) {
    uint64_t id;
    if (key_id_of(argv[i], &id) < 0) {
      fprintf(stderr, "fdadmin revoke: %s: not a key id (16 hex digits), certificate or key file\n",
              argv[i]);
      ex = ADM_EXIT_USAGE;
      goto out_wipe;
    }
    if (id == admin_id) {
      fprintf(stderr, "fdadmin revoke: %s is the admin key: a list it signs cannot revoke it\n",
              argv[i]);
      ex = ADM_EXIT_USAGE;
      goto out_wipe;
    }
    rc = fd_cert_revlist_add(&l, id);
    if (rc == -EEXIST) {
      printf("key %016" PRIx64 " was already revoked\n", id);
    } else if (rc < 0) {
      fprintf(stderr, "fdadmin revoke: the list is full (%u keys)\n", FD_CERT_REVOKED_MAX);
      ex = ADM_EXIT_FAILED;
      goto out_wipe;
    } else {
      added++;
    }
  }
  if (added == 0) {
    printf("revocation list %s: unchanged (serial %" PRIu64 ", %u key(s) revoked)\n", path,
           l.serial, l.count);
    goto out_wipe;
  }
  l.serial++;
  l.issued_unix_s = fd_wall_s();
  rc = fd_cert_revlist_sign(&l, &admin);
  if (rc == 0) rc = fd_cert_revlist_save(path, &l);
  if (rc < 0) {
    fprintf(stderr, "fdadmin revoke: %s: %s\n", path, fd_strerror(rc));
    ex = ADM_EXIT_FAILED;
    goto out_wipe;
  }
  printf("revocation list %s: serial %" PRIu64 ", %u key(s) revoked (%u added)\n", path,
         l.serial, l.count, added);
out_wipe:
  explicit_bzero(&admin, sizeof(admin));
  return ex;
}
