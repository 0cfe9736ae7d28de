/* fd_config.c — inih callbacks that check every value against the schema. */
#include "fd_config.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fd_assert.h"

typedef struct config_state {
  const fd_config_item_t *items;
  size_t count;
  char *err;
  size_t err_len;
  int rc;
} config_state_t;

int fd_parse_bytes(const char *text, uint64_t *out) {
  if (!text || !*text) return -EINVAL;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || text[0] == '-') return -EINVAL;
  if (errno == ERANGE) return -ERANGE;
  unsigned shift = 0;
  switch (*end) {
  case '\0': break;
  case 'k': case 'K': shift = 10; end++; break;
  case 'm': case 'M': shift = 20; end++; break;
  case 'g': case 'G': shift = 30; end++; break;
  case 't': case 'T': shift = 40; end++; break;
  default: return -EINVAL;
  }
  if (*end == 'i' || *end == 'B') end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
  if (*end != '\0') return -EINVAL;
  if (shift && v > (UINT64_MAX >> shift)) return -ERANGE;
  *out = (uint64_t)v << shift;
  return 0;
}

static int parse_u64(const char *text, uint64_t *out) {
  if (!*text || text[0] == '-') return -EINVAL;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 10);
  if (*end != '\0') return -EINVAL;
  if (errno == ERANGE) return -ERANGE;
  *out = v;
  return 0;
}

static int parse_bool(const char *text, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (unsigned i = 0; i < FD_ARRAY_LEN(yes); i++) {
    if (strcasecmp(text, yes[i]) == 0) return *out = true, 0;
    if (strcasecmp(text, no[i]) == 0) return *out = false, 0;
  }
  return -EINVAL;
}

/* Stores value into item; on error writes why into err. */
static int item_set(const fd_config_item_t *item, const char *value, char *err, size_t err_len) {
  uint64_t v = 0;
  int rc = 0;
  switch (item->type) {
  case FD_CFG_STRING:
    if (strlen(value) >= item->dst_len) {
      snprintf(err, err_len, "%s.%s: value longer than %zu bytes", item->section, item->key,
               item->dst_len - 1);
      return -EINVAL;
    }
    memcpy(item->dst, value, strlen(value) + 1);
    return 0;
  case FD_CFG_BOOL:
    if (parse_bool(value, item->dst) < 0) {
      snprintf(err, err_len, "%s.%s: '%s' is not a boolean (true/false)", item->section,
               item->key, value);
      return -EINVAL;
    }
    return 0;
  case FD_CFG_U64:
  case FD_CFG_U32:
    rc = parse_u64(value, &v);
    break;
  case FD_CFG_BYTES:
    rc = fd_parse_bytes(value, &v);
    break;
  }
  if (rc < 0) {
    snprintf(err, err_len, "%s.%s: '%s' is not a %s", item->section, item->key, value,
             item->type == FD_CFG_BYTES ? "size (e.g. 4M)" : "non-negative integer");
    return -EINVAL;
  }
  uint64_t max = item->max ? item->max : (item->type == FD_CFG_U32 ? UINT32_MAX : UINT64_MAX);
  if (v < item->min || v > max) {
    snprintf(err, err_len, "%s.%s: %" PRIu64 " is outside [%" PRIu64 ", %" PRIu64 "]",
             item->section, item->key, v, item->min, max);
    return -EINVAL;
  }
  if (item->type == FD_CFG_U32)
    *(uint32_t *)item->dst = (uint32_t)v;
  else
    *(uint64_t *)item->dst = v;
  return 0;
}

static const fd_config_item_t *item_find(const fd_config_item_t *items, size_t count,
                                         const char *section, const char *key) {
  for (size_t i = 0; i < count; i++)
    if (strcmp(items[i].section, section) == 0 && strcmp(items[i].key, key) == 0)
      return &items[i];
  return NULL;
}

static int on_value(void *user, const char *section, const char *key, const char *value) {
  config_state_t *st = user;
  if (st->rc < 0) return 0;
  const fd_config_item_t *item = item_find(st->items, st->count, section, key);
  if (!item) {
    snprintf(st->err, st->err_len, "unknown key '%s' in section [%s]", key, section);
    st->rc = -EINVAL;
    return 0;
  }
  if (item_set(item, value, st->err, st->err_len) < 0) {
    st->rc = -EINVAL;
    return 0;
  }
  return 1;
}

int fd_config_load(const char *path, const fd_config_item_t *items, size_t count, char *err,
                   size_t err_len) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int rc = -errno;
    snprintf(err, err_len, "%s: %s", path, strerror(-rc));
    return rc;
  }
  config_state_t st = {items, count, err, err_len, 0};
  char detail[256] = "";
  st.err = detail;
  st.err_len = sizeof(detail);
  int line = ini_parse_file(f, on_value, &st);
  fclose(f);
  if (line != 0 || st.rc < 0) {
    if (detail[0] == '\0') snprintf(detail, sizeof(detail), "syntax error");
    snprintf(err, err_len, "%s:%d: %s", path, line, detail);
    return -EINVAL;
  }
  return 0;
}

int fd_config_set(const fd_config_item_t *items, size_t count, const char *assignment, char *err,
                  size_t err_len) {
  const char *dot = strchr(assignment, '.');
  const char *eq = strchr(assignment, '=');
  if (!dot || !eq || dot > eq) {
    snprintf(err, err_len, "'%s' is not section.key=value", assignment);
    return -EINVAL;
  }
  char section[64], key[64];
  size_t slen = (size_t)(dot - assignment), klen = (size_t)(eq - dot - 1);
  if (slen >= sizeof(section) || klen >= sizeof(key)) {
    snprintf(err, err_len, "'%s': name too long", assignment);
    return -EINVAL;
  }
  memcpy(section, assignment, slen);
  section[slen] = '\0';
  memcpy(key, dot + 1, klen);
  key[klen] = '\0';
  const fd_config_item_t *item = item_find(items, count, section, key);
  if (!item) {
    snprintf(err, err_len, "unknown key '%s' in section [%s]", key, section);
    return -EINVAL;
  }
  return item_set(item, eq + 1, err, err_len);
}

void fd_config_print(const fd_config_item_t *items, size_t count) {
  const char *section = "";
  for (size_t i = 0; i < count; i++) {
    const fd_config_item_t *it = &items[i];
    if (strcmp(section, it->section) != 0) printf("  [%s]\n", section = it->section);
    printf("    %-20s ", it->key);
    switch (it->type) {
    case FD_CFG_STRING: printf("%-12s", (const char *)it->dst); break;
    case FD_CFG_BOOL: printf("%-12s", *(bool *)it->dst ? "true" : "false"); break;
    case FD_CFG_U32: printf("%-12" PRIu32, *(uint32_t *)it->dst); break;
    case FD_CFG_U64:
    case FD_CFG_BYTES: printf("%-12" PRIu64, *(uint64_t *)it->dst); break;
    }
    printf(" %s\n", it->help ? it->help : "");
  }
}
