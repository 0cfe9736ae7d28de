/*
 * fd_config.h — INI configuration (inih) read against a declared schema.
 *
 * A daemon declares each key it understands — section, name, type, where the
 * value goes, its bounds and a one-line help — and sets the defaults in the
 * destination before loading. Loading rejects unknown sections and keys,
 * malformed numbers and out-of-range values with a message naming the file
 * and line, so a typo never silently leaves a default in force.
 */
#ifndef FD_CONFIG_H
#define FD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fd_config_type {
  FD_CFG_STRING, /* char[dst_len] */
  FD_CFG_U64,    /* uint64_t, plain decimal */
  FD_CFG_U32,    /* uint32_t, plain decimal */
  FD_CFG_BYTES,  /* uint64_t with an optional K, M, G, T suffix (powers of 1024) */
  FD_CFG_BOOL,   /* bool: true/false, yes/no, on/off, 1/0 */
} fd_config_type_t;

typedef struct fd_config_item {
  const char *section;
  const char *key;
  fd_config_type_t type;
  void *dst;
  size_t dst_len;    /* FD_CFG_STRING: capacity including the NUL */
  uint64_t min, max; /* numeric types; max 0 means no upper bound */
  const char *help;
} fd_config_item_t;

/* Loads path into the items' destinations. Returns 0, -ENOENT (or another
 * -errno) when the file cannot be read, or -EINVAL with err describing the
 * first bad line. */
int fd_config_load(const char *path, const fd_config_item_t *items, size_t count, char *err,
                   size_t err_len);

/* Sets one item from text, as the file would; for command-line overrides
 * ("section.key=value"). Same errors as fd_config_load. */
int fd_config_set(const fd_config_item_t *items, size_t count, const char *assignment, char *err,
                  size_t err_len);

/* Parses "4M", "10G", "512" into bytes; -EINVAL on junk, -ERANGE on overflow. */
int fd_parse_bytes(const char *text, uint64_t *out);

/* Prints every item with its help and current value, for --help. */
void fd_config_print(const fd_config_item_t *items, size_t count);

#endif /* FD_CONFIG_H */
