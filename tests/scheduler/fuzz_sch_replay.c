/* fuzz_sch_replay.c — the store's log scanner and the db's record decoder on arbitrary bytes; replay must equal replay of its checkpoint. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_assert.h"
#include "fd_hash.h"
#include "fd_log.h"
#include "scheduler.h"

static char dir[128];

static void write_file(const char *name, const uint8_t *data, size_t len) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  FD_ASSERT(fd >= 0);
  FD_ASSERT(len == 0 || write(fd, data, len) == (ssize_t)len);
  close(fd);
}

static void clean(void) {
  const char *names[] = {"log", "checkpoint", "log.tmp", "checkpoint.tmp"};
  char path[256];
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
}

/* Everything replay rebuilds, as text. */
static char *summary(sch_db_t *db) {
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  FD_ASSERT(out);
  sch_members_t *m = sch_db_members(db);
  sch_registry_t *r = sch_db_registry(db);
  for (uint32_t i = 0; i < sch_members_count(m); i++) {
    const sch_node_t *n = sch_members_node(m, i);
    char line[1024];
    int w = snprintf(line, sizeof(line), "n %s %s %s %s %llu %llu %d %d\n", n->id,
                     sch_members_region_name(m, n->region), sch_members_zone_name(m, n->zone),
                     n->address, (unsigned long long)n->nic_bps,
                     (unsigned long long)n->free_disk_bytes, n->origin, (int)n->state);
    while (len + (size_t)w + 1 > cap) out = realloc(out, cap *= 2);
    memcpy(out + len, line, (size_t)w);
    len += (size_t)w;
  }
  for (uint32_t i = 0; i < sch_registry_count(r); i++) {
    const sch_version_t *v = sch_registry_at(r, i);
    char hex[2 * FD_SHA256_LEN + 1], line[2048];
    fd_hex_encode(v->manifest_digest, FD_SHA256_LEN, hex);
    int w = snprintf(line, sizeof(line), "v %s %llu %llu %u %s %u", v->file,
                     (unsigned long long)v->version, (unsigned long long)v->size_bytes,
                     v->chunk_size_bytes, hex, v->origin_count);
    for (uint32_t o = 0; o < v->origin_count; o++)
      w += snprintf(line + w, sizeof(line) - (size_t)w, " %s", v->origins[o]);
    w += snprintf(line + w, sizeof(line) - (size_t)w, "\n");
    while (len + (size_t)w + 1 > cap) out = realloc(out, cap *= 2);
    memcpy(out + len, line, (size_t)w);
    len += (size_t)w;
  }
  out[len] = 0;
  return out;
}

static sch_db_t *open_db(void) {
  int err;
  sch_store_t *st = sch_store_open_dir(dir, &err);
  if (!st) return NULL;
  sch_members_config_t mc;
  sch_members_config_default(&mc);
  return sch_db_open(st, &mc, 0, &err);
}

static void remove_dir(void) {
  clean();
  rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!dir[0]) {
    fd_log_init("fuzz", (fd_log_level_t)(FD_LOG_ERROR + 1)); /* quiet: refusals are expected */
    snprintf(dir, sizeof(dir), "%s/fd-fuzz-sch-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    FD_ASSERT(mkdtemp(dir));
    atexit(remove_dir);
  }
  clean();
  if (size == 0) return 0;
  if (data[0] & 1) {
    /* Raw bytes as the log: the scanner must cut or refuse, never misread. */
    write_file("log", data + 1, size - 1);
  } else {
    /* Each [u16 length][bytes] piece becomes a well-framed record, so the
     * decoder sees arbitrary payloads. */
    size_t cap = size * 8 + 64, len = 0, off = 1; /* a piece is >= 2 bytes in, 16 + n out */
    uint8_t *log = malloc(cap);
    uint64_t seq = 0;
    while (off + 2 <= size) {
      size_t n = (size_t)data[off] | (size_t)data[off + 1] << 8;
      off += 2;
      if (n > size - off) n = size - off;
      uint8_t hdr[16];
      uint32_t n32 = (uint32_t)n;
      memcpy(hdr, &n32, 4);
      memcpy(hdr + 8, &seq, 8);
      uint32_t crc = fd_crc32c(fd_crc32c(fd_crc32c(0, hdr, 4), hdr + 8, 8), data + off, n);
      memcpy(hdr + 4, &crc, 4);
      memcpy(log + len, hdr, 16);
      memcpy(log + len + 16, data + off, n);
      len += 16 + n;
      off += n;
      seq++;
    }
    write_file("log", log, len);
    free(log);
  }
  sch_db_t *db = open_db();
  if (!db) return 0; /* refused: corruption, or a record that does not decode */
  char *before = summary(db);
  if (sch_db_checkpoint(db) == 0) {
    sch_db_close(db);
    db = open_db();
    FD_ASSERT(db); /* a checkpoint always replays */
    char *after = summary(db);
    FD_ASSERT(strcmp(before, after) == 0);
    free(after);
  }
  free(before);
  sch_db_close(db);
  return 0;
}
