/*
 * adm_write.c — `fdadmin write NAME --offset N FILE|-`, `fdadmin append NAME
 * FILE|-` and `fdadmin bump NAME`, through the writers' library (fdclient.h).
 *
 * The input (a file, or stdin for "-") is read in changes of --change-size
 * bytes (1 MiB, FD_WRITE_BYTES_MAX, at most) and sent as async changes, many
 * in flight at once, in input order. Each change the head acknowledges is
 * printed as `version V index I offset O length L`, in the order the
 * acknowledgements come; --quiet prints only the summary, --json one object.
 * The first change that fails stops the reading: the changes in flight end
 * (those acknowledged are printed), the failure is reported with the input
 * range it held, and the exit code says what kind it was.
 *
 * An input of several changes is not one atomic change: each is acknowledged
 * on its own, and another writer's changes may land between them (appends
 * from two writers interleave change by change).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "fd_assert.h"
#include "fd_config.h"
#include "fd_error.h"
#include "fd_time.h"
#include "fdclient.h"
#include "storage.h"

/* ---- shared by the three commands ---- */

/* The exit code of a failed change (or of a reconnect before it). */
static int exit_for_change(int err) {
  switch (err) {
    case 0: return ADM_EXIT_OK;
    case -EACCES:       /* the key lacks the writer or admin role */
    case -EKEYREJECTED: /* a reconnect's handshake refused */
    case -ECONNRESET:
    case -ENOTCONN:
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH: return ADM_EXIT_UNREACHABLE;
    default: return ADM_EXIT_FAILED;
  }
}

/* Opens the client with the writer key (and its certificate) when one is
 * configured, else with the admin key. NULL and *ex on failure. */
static fdc_t *open_client(const adm_config_t *cfg, const char *cmd, uint32_t inflight,
                          uint32_t bump_timeout_ms, int *ex) {
  fdc_opts_t o = {0};
  o.origins = cfg->origins;
  o.cluster_key_file = cfg->cluster_key_path;
  if (cfg->writer_key_path[0]) {
    if (!cfg->writer_cert_path[0]) {
      fprintf(stderr, "fdadmin %s: a writer key needs its certificate (--writer-cert FILE)\n",
              cmd);
      *ex = ADM_EXIT_USAGE;
      return NULL;
    }
    o.key_file = cfg->writer_key_path;
    o.cert_file = cfg->writer_cert_path;
  } else {
    o.key_file = cfg->admin_key_path;
  }
  if (!o.origins[0] || !o.cluster_key_file[0] || !o.key_file[0]) {
    fprintf(stderr, "fdadmin %s: needs --origins, --cluster-key and --writer-key with "
                    "--writer-cert, or --admin-key (or the config)\n", cmd);
    *ex = ADM_EXIT_USAGE;
    return NULL;
  }
  o.timeout_ms = cfg->timeout_ms;
  o.bump_timeout_ms = bump_timeout_ms;
  o.inflight_max = inflight;
  fdc_t *c = NULL;
  char why[1024];
  int rc = fdc_open(&o, &c, why, sizeof(why));
  if (rc < 0) {
    fprintf(stderr, "fdadmin %s: %s\n", cmd, why[0] ? why : fdc_strerror(rc));
    /* Local files and options are usage; the network and the handshake are
     * unreachable. */
    *ex = rc == -EINVAL || rc == -ENOENT || rc == -EACCES || rc == -EISDIR
              ? ADM_EXIT_USAGE
              : rc == -ENOMEM ? ADM_EXIT_FAILED : ADM_EXIT_UNREACHABLE;
  }
  return c;
}

/* ---- write and append ---- */

typedef struct wr wr_t;

typedef struct change_arg {
  wr_t *w;
  uint64_t at; /* input position of its first byte */
  uint32_t len;
  struct change_arg *next_free;
} change_arg_t;

struct wr {
  fdc_t *c;
  const adm_config_t *cfg;
  const char *name;
  bool append, quiet;
  uint64_t offset;    /* write: where input byte 0 goes */
  uint64_t size;      /* input bytes when known (a regular file), else 0 */
  change_arg_t *args; /* one per change in flight */
  change_arg_t *free_args;
  /* outcome */
  int err;             /* the first failure */
  uint64_t err_at, err_len;
  char err_message[256];
  uint64_t acked, acked_bytes;
  fdc_seq_t first, last; /* the lowest and highest (version, index) acknowledged */
  uint64_t t0_ms, last_draw_ms;
  bool progress, drawn;
  json_object *changes; /* --json without --quiet: the acknowledged changes */
};

static bool seq_less(const fdc_seq_t *a, const fdc_seq_t *b) {
  return a->version < b->version || (a->version == b->version && a->index < b->index);
}

static void on_change(void *p, int err, const fdc_seq_t *seq) {
  change_arg_t *a = p;
  wr_t *w = a->w;
  if (err) {
    if (!w->err || a->at < w->err_at) { /* report the earliest in the input */
      w->err = err;
      w->err_at = a->at;
      w->err_len = a->len;
      snprintf(w->err_message, sizeof(w->err_message), "%s", fdc_last_error(w->c));
    }
  } else {
    if (!w->acked || seq_less(seq, &w->first)) w->first = *seq;
    if (!w->acked || seq_less(&w->last, seq)) w->last = *seq;
    w->acked++;
    w->acked_bytes += a->len;
    if (w->cfg->json && !w->quiet) {
      json_object *o = adm_json_object();
      adm_json_add_u64(o, "version", seq->version);
      adm_json_add_u64(o, "index", seq->index);
      adm_json_add_u64(o, "offset", seq->offset);
      adm_json_add_u64(o, "length", a->len);
      adm_json_add_u64(o, "input", a->at);
      adm_json_push(w->changes, o);
    } else if (!w->cfg->json && !w->quiet) {
      printf("version %" PRIu64 " index %" PRIu64 " offset %" PRIu64 " length %u input %" PRIu64
             "\n",
             seq->version, seq->index, seq->offset, a->len, a->at);
    }
  }
  a->next_free = w->free_args;
  w->free_args = a;
}

static void draw(wr_t *w, bool final) {
  if (!w->progress) return;
  uint64_t now = fd_now_ms();
  if (!final && now - w->last_draw_ms < ADM_PROGRESS_MS) return;
  w->last_draw_ms = now;
  w->drawn = true;
  double secs = (double)(now - w->t0_ms) / 1000.0;
  double rate = secs > 0 ? (double)w->acked_bytes / secs / 1048576.0 : 0;
  if (w->size) {
    double frac = (double)w->acked_bytes / (double)w->size;
    char bar[31];
    int filled = (int)(frac * 30.0);
    for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %3.0f%% %" PRIu64 " changes %.1f MiB/s, %u in flight  ", bar,
            frac * 100.0, w->acked, rate, fdc_inflight(w->c));
  } else {
    fprintf(stderr, "\r%.1f MiB in %" PRIu64 " changes, %.1f MiB/s, %u in flight  ",
            (double)w->acked_bytes / 1048576.0, w->acked, rate, fdc_inflight(w->c));
  }
  if (final) fputc('\n', stderr);
}

/* Reads up to cap bytes, fewer only at the end of the input. */
static ssize_t read_full(int fd, uint8_t *buf, size_t cap) {
  size_t got = 0;
  while (got < cap) {
    ssize_t n = read(fd, buf + got, cap - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* Sends the whole input; returns a local -errno (reading it), else 0 (the
 * changes' outcome is in w). */
static int send_input(wr_t *w, int fd, uint32_t change_bytes) {
  uint8_t *buf = malloc(change_bytes);
  if (!buf) return -ENOMEM;
  uint64_t at = 0;
  ssize_t n = 0;
  int rc = 0;
  while (!w->err) {
    if (n == 0) {
      n = read_full(fd, buf, change_bytes);
      if (n <= 0) {
        rc = (int)n;
        break;
      }
    }
    change_arg_t *a = w->free_args;
    if (!a) { /* every arg is out: as many changes as the client holds */
      if ((rc = fdc_poll(w->c, 100)) < 0) break;
      draw(w, false);
      continue;
    }
    w->free_args = a->next_free;
    *a = (change_arg_t){w, at, (uint32_t)n, NULL};
    rc = w->append ? fdc_append_async(w->c, w->name, buf, (size_t)n, on_change, a)
                   : fdc_write_async(w->c, w->name, w->offset + at, buf, (size_t)n, on_change, a);
    if (rc < 0) {
      a->next_free = w->free_args;
      w->free_args = a;
    }
    if (rc == -EAGAIN) { /* full: let some end */
      if ((rc = fdc_poll(w->c, 100)) < 0) break;
      draw(w, false);
      continue;
    }
    if (rc < 0) { /* not accepted (e.g. the reconnect failed): as if it failed */
      w->err = rc;
      w->err_at = at;
      w->err_len = (uint64_t)n;
      snprintf(w->err_message, sizeof(w->err_message), "%s", fdc_last_error(w->c));
      rc = 0;
      break;
    }
    at += (uint64_t)n;
    n = 0;
    if ((rc = fdc_poll(w->c, 0)) < 0) break; /* send it now, run what ended */
    rc = 0;
    draw(w, false);
  }
  free(buf);
  /* The changes in flight end within their deadline (and the library's grace). */
  while (fdc_inflight(w->c)) {
    int prc = fdc_poll(w->c, 100);
    if (prc < 0) return prc;
    draw(w, false);
  }
  return rc < 0 ? rc : 0;
}

static void usage_write(FILE *out, bool append) {
  if (append)
    fprintf(out, "usage: fdadmin [GLOBAL OPTIONS] append NAME FILE|- [OPTIONS]\n"
                 "  Appends FILE (or stdin) to NAME: the origin head puts each change at the\n"
                 "  file's end as of that change.\n");
  else
    fprintf(out, "usage: fdadmin [GLOBAL OPTIONS] write NAME --offset N FILE|- [OPTIONS]\n"
                 "  Writes FILE (or stdin) into NAME at offset N (the file may grow).\n");
  fprintf(out,
          "  The input goes as changes of at most 1 MiB, many in flight at once; each is\n"
          "  acknowledged once every live origin holds it durably, and printed then:\n"
          "    version V index I offset O length L\n"
          "  (the log building version V, its index there, where it went, its bytes).\n"
          "  A large input is not one atomic change: other writers' changes may land\n"
          "  between its changes. The first failure stops sending.\n"
          "%s"
          "  --change-size BYTES  bytes per change (default and at most 1M)\n"
          "  --inflight N         changes in flight at once (default %u, at most %u)\n"
          "  --quiet              print only the summary\n"
          "  --progress / --no-progress   progress on stderr (default: if a terminal)\n"
          "  --json               one JSON object: the changes and the summary\n"
          "Needs: --origins, --cluster-key, and --writer-key with --writer-cert, or\n"
          "--admin-key (or the config).\n"
          "Exit: 0 every change acknowledged, 1 a change failed (or the input could not be\n"
          "read), 2 usage, 3 the head unreachable or the key refused.\n",
          append ? "" : "  --offset N           where the input's first byte goes (required)\n",
          FDC_INFLIGHT_DEFAULT, FDC_INFLIGHT_MAX);
}

int adm_cmd_write(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {
      {"offset", required_argument, 0, 'o'},  {"change-size", required_argument, 0, 'c'},
      {"inflight", required_argument, 0, 'i'}, {"quiet", no_argument, 0, 'q'},
      {"progress", no_argument, 0, 'P'},      {"no-progress", no_argument, 0, 'Q'},
      {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  bool append = !strcmp(argv[0], "append");
  const char *cmd = append ? "append" : "write";
  wr_t w = {.cfg = cfg, .append = append};
  bool have_offset = false;
  uint64_t change = FD_WRITE_BYTES_MAX, inflight = FDC_INFLIGHT_DEFAULT;
  int c;
  optind = 0; /* 0: GNU getopt re-initialises (permutes again after main's "+" parse) */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'o':
        if (append || fd_parse_bytes(optarg, &w.offset) < 0) {
          fprintf(stderr, "fdadmin %s: %s --offset '%s'\n", cmd, append ? "no" : "bad", optarg);
          return ADM_EXIT_USAGE;
        }
        have_offset = true;
        break;
      case 'c':
        if (fd_parse_bytes(optarg, &change) < 0 || change == 0 || change > FD_WRITE_BYTES_MAX) {
          fprintf(stderr, "fdadmin %s: --change-size must be 1..1M\n", cmd);
          return ADM_EXIT_USAGE;
        }
        break;
      case 'i': {
        char *end = NULL;
        inflight = strtoull(optarg, &end, 10);
        if (!end || *end || inflight == 0 || inflight > FDC_INFLIGHT_MAX) {
          fprintf(stderr, "fdadmin %s: --inflight must be 1..%u\n", cmd, FDC_INFLIGHT_MAX);
          return ADM_EXIT_USAGE;
        }
        break;
      }
      case 'q': w.quiet = true; break;
      case 'P': cfg->progress = true; break;
      case 'Q': cfg->progress = false; break;
      case 'j': cfg->json = true; break;
      case 'h': usage_write(stdout, append); return ADM_EXIT_OK;
      default: usage_write(stderr, append); return ADM_EXIT_USAGE;
    }
  }
  if (optind + 2 != argc || (!append && !have_offset)) {
    fprintf(stderr, "fdadmin %s: needs NAME and one FILE (or -)%s\n", cmd,
            append ? "" : ", and --offset N");
    usage_write(stderr, append);
    return ADM_EXIT_USAGE;
  }
  w.name = argv[optind];
  const char *path = argv[optind + 1];
  if (!st_name_valid(w.name)) {
    fprintf(stderr, "fdadmin %s: bad name '%s' ([A-Za-z0-9._-], no leading dot)\n", cmd, w.name);
    return ADM_EXIT_USAGE;
  }
  int fd = STDIN_FILENO;
  if (strcmp(path, "-") != 0) {
    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
      fprintf(stderr, "fdadmin %s: %s: %s\n", cmd, path,
              fd < 0 ? fd_strerror(-errno) : "not a readable file");
      if (fd >= 0) close(fd);
      return ADM_EXIT_USAGE;
    }
    if (S_ISREG(st.st_mode)) w.size = (uint64_t)st.st_size;
    if (!append && w.offset + w.size > FD_FILE_SIZE_MAX) {
      fprintf(stderr, "fdadmin %s: it would end past the largest file (%llu bytes)\n", cmd,
              (unsigned long long)FD_FILE_SIZE_MAX);
      close(fd);
      return ADM_EXIT_USAGE;
    }
  }
  int ex = ADM_EXIT_FAILED;
  w.c = open_client(cfg, cmd, (uint32_t)inflight, 0, &ex);
  if (!w.c) goto out_fd;
  w.args = calloc(inflight, sizeof(*w.args));
  if (!w.args) {
    fprintf(stderr, "fdadmin %s: out of memory\n", cmd);
    goto out_client;
  }
  for (uint64_t i = 0; i < inflight; i++) {
    w.args[i].next_free = w.free_args;
    w.free_args = &w.args[i];
  }
  w.progress = cfg->progress && (!w.size || w.size >= ADM_WRITE_PROGRESS_MIN_BYTES);
  w.t0_ms = fd_now_ms();
  if (cfg->json && !w.quiet) w.changes = adm_json_array(); /* filled as changes are acked */
  int rc = send_input(&w, fd, (uint32_t)change);
  if (w.drawn) draw(&w, true);
  double secs = (double)(fd_now_ms() - w.t0_ms) / 1000.0;

  if (rc < 0) {
    fprintf(stderr, "fdadmin %s: reading %s: %s\n", cmd, path, fd_strerror(rc));
    ex = ADM_EXIT_FAILED;
  } else if (w.err) {
    fprintf(stderr, "fdadmin %s: the change of input bytes [%" PRIu64 ", %" PRIu64 ") failed: %s",
            cmd, w.err_at, w.err_at + w.err_len, fdc_strerror(w.err));
    if (w.err_message[0] && strcmp(w.err_message, fdc_strerror(w.err)) != 0)
      fprintf(stderr, " (%s)", w.err_message);
    fprintf(stderr, "%s\n", fdc_outcome_unknown(w.err) ? "; it may be in the log all the same" : "");
    ex = exit_for_change(w.err);
  } else {
    ex = ADM_EXIT_OK;
  }
  if (cfg->json) {
    json_object *o = adm_json_object();
    adm_json_add_str(o, "name", w.name);
    adm_json_add_str(o, "op", cmd);
    if (!w.quiet) adm_json_add(o, "changes", w.changes);
    w.changes = NULL; /* o owns it now */
    adm_json_add_u64(o, "acknowledged", w.acked);
    adm_json_add_u64(o, "bytes", w.acked_bytes);
    adm_json_add_fixed(o, "seconds", secs, 3);
    if (w.acked) {
      json_object *first = adm_json_object(), *last = adm_json_object();
      adm_json_add_u64(first, "version", w.first.version);
      adm_json_add_u64(first, "index", w.first.index);
      adm_json_add_u64(last, "version", w.last.version);
      adm_json_add_u64(last, "index", w.last.index);
      adm_json_add(o, "first", first);
      adm_json_add(o, "last", last);
    }
    adm_json_add_bool(o, "ok", ex == ADM_EXIT_OK);
    if (ex != ADM_EXIT_OK)
      adm_json_add_str(o, "error", rc < 0 ? fd_strerror(rc) : w.err_message[0] ? w.err_message
                                                                       : fdc_strerror(w.err));
    if (adm_json_print(o) && ex == ADM_EXIT_OK) ex = ADM_EXIT_FAILED;
  } else {
    FILE *out = w.quiet ? stdout : stderr;
    fprintf(out, "%s %s: %" PRIu64 " changes, %" PRIu64 " bytes acknowledged in %.2f s", cmd,
            w.name, w.acked, w.acked_bytes, secs);
    if (w.acked)
      fprintf(out, " (v%" PRIu64 " index %" PRIu64 " to v%" PRIu64 " index %" PRIu64 ")",
              w.first.version, w.first.index, w.last.version, w.last.index);
    fprintf(out, "\n");
  }
  json_object_put(w.changes); /* NULL once the output took it */
  free(w.args);
out_client:
  fdc_close(w.c);
out_fd:
  if (fd != STDIN_FILENO) close(fd);
  return ex;
}

/* ---- bump ---- */

static void usage_bump(FILE *out) {
  fprintf(out,
          "usage: fdadmin [GLOBAL OPTIONS] bump NAME [OPTIONS]\n"
          "  Closes the changes made to NAME since its last version into the next version:\n"
          "  every origin merges them and builds its manifest, and the head commits the\n"
          "  version once all of their digests agree. Prints the version, the changes in\n"
          "  it and its manifest digest (SHA-256).\n"
          "  --wait-ms MS   how long to wait for the commit (default %u)\n"
          "  --json         print the result as JSON\n"
          "Needs: --origins, --cluster-key, and --writer-key with --writer-cert, or\n"
          "--admin-key (or the config).\n"
          "Exit: 0 committed, 1 failed, 2 usage, 3 the head unreachable or the key refused.\n",
          FDC_BUMP_TIMEOUT_MS_DEFAULT);
}

int adm_cmd_bump(adm_config_t *cfg, int argc, char **argv) {
  static const struct option longopts[] = {{"wait-ms", required_argument, 0, 'w'},
                                           {"json", no_argument, 0, 'j'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  uint64_t wait_ms = (uint64_t)FDC_BUMP_TIMEOUT_MS_DEFAULT;
  int c;
  optind = 0;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'w': {
        char *end = NULL;
        wait_ms = strtoull(optarg, &end, 10);
        if (!end || *end || wait_ms < 100 || wait_ms > (uint64_t)RPC_TIMEOUT_MS_MAX) {
          fprintf(stderr, "fdadmin bump: bad --wait-ms '%s'\n", optarg);
          return ADM_EXIT_USAGE;
        }
        break;
      }
      case 'j': cfg->json = true; break;
      case 'h': usage_bump(stdout); return ADM_EXIT_OK;
      default: usage_bump(stderr); return ADM_EXIT_USAGE;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "fdadmin bump: needs exactly one NAME\n");
    usage_bump(stderr);
    return ADM_EXIT_USAGE;
  }
  const char *name = argv[optind];
  if (!st_name_valid(name)) {
    fprintf(stderr, "fdadmin bump: bad name '%s' ([A-Za-z0-9._-], no leading dot)\n", name);
    return ADM_EXIT_USAGE;
  }
  int ex = ADM_EXIT_FAILED;
  fdc_t *cl = open_client(cfg, "bump", 1, (uint32_t)wait_ms, &ex);
  if (!cl) return ex;
  fdc_bumped_t b;
  int rc = fdc_bump(cl, name, &b);
  if (rc < 0) {
    fprintf(stderr, "fdadmin bump: %s: %s", name, fdc_strerror(rc));
    if (fdc_last_error(cl)[0] && strcmp(fdc_last_error(cl), fdc_strerror(rc)) != 0)
      fprintf(stderr, " (%s)", fdc_last_error(cl));
    fprintf(stderr, "\n");
    ex = exit_for_change(rc);
  } else {
    char hex[2 * FDC_DIGEST_LEN + 1];
    fd_hex_encode(b.digest, sizeof(b.digest), hex);
    if (cfg->json) {
      json_object *o = adm_json_object();
      adm_json_add_str(o, "name", name);
      adm_json_add_u64(o, "version", b.version);
      adm_json_add_u64(o, "changes", b.changes);
      adm_json_add_str(o, "digest", hex);
      ex = adm_json_print(o) ? ADM_EXIT_FAILED : ADM_EXIT_OK; /* committed, unreported */
    } else {
      if (!b.changes)
        printf("%s: no change to merge; version %" PRIu64 " is the newest\n", name, b.version);
      else
        printf("bumped %s: version %" PRIu64 " committed, %" PRIu64 " changes, digest %s\n",
               name, b.version, b.changes, hex);
      ex = ADM_EXIT_OK;
    }
  }
  fdc_close(cl);
  return ex;
}
