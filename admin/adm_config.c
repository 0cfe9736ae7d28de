/*
 * adm_config.c — fdadmin's configuration: the [admin] section of an INI file
 * (common/fd_config.h, so a typo is an error, not a silent default), the
 * cluster key file, and "host:port" lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "fd_config.h"

void adm_config_defaults(adm_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->timeout_ms = ADM_CALL_TIMEOUT_MS;
  cfg->chunk_size_bytes = FD_CHUNK_SIZE_DEFAULT;
  cfg->progress = isatty(STDERR_FILENO);
}

int adm_config_load(adm_config_t *cfg, const char *path, char *err, size_t err_len) {
  const fd_config_item_t items[] = {
      {"admin", "scheduler", FD_CFG_STRING, cfg->scheduler, sizeof(cfg->scheduler), 0, 0,
       "fdsched address, host:port"},
      {"admin", "origins", FD_CFG_STRING, cfg->origins, sizeof(cfg->origins), 0, 0,
       "origin addresses, host:port,...; the first is the chain head"},
      {"admin", "cluster_key", FD_CFG_STRING, cfg->cluster_key_path,
       sizeof(cfg->cluster_key_path), 0, 0, "cluster key file (64 hex chars)"},
      {"admin", "admin_key", FD_CFG_STRING, cfg->admin_key_path, sizeof(cfg->admin_key_path), 0,
       0, "admin Ed25519 private key (PEM)"},
      {"admin", "writer_key", FD_CFG_STRING, cfg->writer_key_path, sizeof(cfg->writer_key_path),
       0, 0, "a writer's Ed25519 private key (PEM), for write, append and bump"},
      {"admin", "writer_cert", FD_CFG_STRING, cfg->writer_cert_path,
       sizeof(cfg->writer_cert_path), 0, 0, "the writer key's certificate, signed by the admin"},
      {"admin", "timeout_ms", FD_CFG_U32, &cfg->timeout_ms, 0, 100, RPC_TIMEOUT_MS_MAX,
       "deadline of each call"},
      {"admin", "chunk_size", FD_CFG_BYTES, &cfg->chunk_size_bytes, 0, FD_CHUNK_SIZE_MIN,
       FD_CHUNK_SIZE_MAX, "chunk size for publish (power of two)"},
  };
  return fd_config_load(path, items, sizeof(items) / sizeof(items[0]), err, err_len);
}

int adm_cluster_key_load(const char *path, uint8_t key[32]) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  char text[256];
  ssize_t n = read(fd, text, sizeof(text) - 1);
  int saved = errno;
  close(fd);
  if (n < 0) return -saved;
  text[n] = '\0';
  char *s = text;
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  size_t len = strlen(s);
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                 s[len - 1] == '\r'))
    s[--len] = '\0';
  if (len != 64) return -EINVAL;
  int rc = fd_hex_decode(s, key, 32);
  return rc == 32 ? 0 : -EINVAL;
}

int adm_cluster_key_generate(const char *path) {
  uint8_t key[32];
  int rc = fd_random_bytes(key, sizeof(key));
  if (rc < 0) return rc;
  char hex[65];
  fd_hex_encode(key, sizeof(key), hex);
  hex[64] = '\n';
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  ssize_t w = write(fd, hex, sizeof(hex));
  rc = w == (ssize_t)sizeof(hex) ? 0 : (w < 0 ? -errno : -EIO);
  if (!rc && fsync(fd) < 0) rc = -errno;
  close(fd);
  return rc;
}

int adm_addr_parse(const char *text, char *host, size_t host_len, uint16_t *port) {
  const char *colon = strrchr(text, ':');
  if (!colon || colon == text || (size_t)(colon - text) >= host_len) return -EINVAL;
  char *end = NULL;
  errno = 0;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (errno || !end || *end || p == 0 || p > 65535) return -EINVAL;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  *port = (uint16_t)p;
  return 0;
}

int adm_list_item(const char *list, unsigned i, char *out, size_t out_len) {
  const char *p = list;
  for (unsigned k = 0; k < i; k++) {
    p = strchr(p, ',');
    if (!p) return -ENOENT;
    p++;
  }
  while (*p == ' ') p++;
  size_t len = strcspn(p, ", ");
  if (len == 0) return -ENOENT;
  if (len >= out_len) return -ENAMETOOLONG;
  memcpy(out, p, len);
  out[len] = '\0';
  return 0;
}
