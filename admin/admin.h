/*
 * admin.h — fdadmin, the operator's command line (prefix adm_).
 *
 * Owns: reading the operator's configuration (an INI file and flags), a
 * blocking client over rpc/ for one command at a time, and the commands:
 * keygen, publish, status, versions, nodes, drain, undrain, gc; write, append and
 * bump, which go through the writers' library (fdclient.h); and the admin's
 * offline trust commands cert and revoke (adm_trust.c).
 *
 * Guarantees: `publish` reports success only when the origin head has
 * answered that every live origin holds the version durably; every command
 * ends with one of the ADM_EXIT_* codes, so scripts can rely on them; read
 * commands print JSON on --json and nothing else on stdout.
 *
 * --json output is built and printed by json-c (libjson-c-dev; adm_json.c
 * says why json-c rather than jansson: exact uint64, numbers printed as
 * given, insertion order, so the output stays what it was).
 *
 * Never: holds state between runs (the scheduler and the origins do), writes
 * to the cluster without the admin key, retries without bound (publish
 * retries a version race exactly once).
 *
 * Memory: everything is owned by the command that runs; an adm_client_t is
 * created and destroyed by the command, replies returned by adm_call are
 * freed by the caller with protobuf_c_message_free_unpacked.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_hash.h"
#include "fd_limits.h"
#include "rpc.h"

/* Exit codes (ISSUE6 contract). */
enum {
  ADM_EXIT_OK = 0,
  ADM_EXIT_FAILED = 1,     /* the operation ran and failed */
  ADM_EXIT_USAGE = 2,      /* bad command line or configuration */
  ADM_EXIT_UNREACHABLE = 3 /* cannot reach or authenticate to the service */
};

/* Limits and timeouts: common/fd_limits.h, "admin". */

/* The operator's configuration: [admin] section of the INI file, then flags. */
typedef struct adm_config {
  char config_path[ADM_PATH_LEN_MAX];
  char scheduler[ADM_ADDR_LEN_MAX * 4];        /* host:port of fdsched (or a leader and standbys, comma-separated) */
  char origins[ADM_ADDR_LEN_MAX * 4];          /* host:port[,host:port...], any order: the
                                                  head is the one that says it leads */
  char cluster_key_path[ADM_PATH_LEN_MAX];     /* 64 hex chars */
  char admin_key_path[ADM_PATH_LEN_MAX];       /* Ed25519 private key (PEM) */
  char writer_key_path[ADM_PATH_LEN_MAX];      /* a writer's key (write, append, bump) */
  char writer_cert_path[ADM_PATH_LEN_MAX];     /* ... and its certificate from the admin */
  uint32_t timeout_ms;
  uint64_t chunk_size_bytes;
  bool json;
  bool progress; /* progress bar (default: when stderr is a terminal) */
} adm_config_t;

void adm_config_defaults(adm_config_t *cfg);
/* Loads the INI file at path into cfg; 0, -ENOENT, -EINVAL (err says why). */
int adm_config_load(adm_config_t *cfg, const char *path, char *err, size_t err_len);
/* Reads a cluster key file (64 hex chars, whitespace around ignored). */
int adm_cluster_key_load(const char *path, uint8_t key[32]);
/* Writes a fresh cluster key file, mode 0600; -EEXIST if it exists. */
int adm_cluster_key_generate(const char *path);
/* Splits "host:port"; -EINVAL. */
int adm_addr_parse(const char *text, char *host, size_t host_len, uint16_t *port);
/* The i-th address of a comma-separated list into out; -ENOENT past the end. */
int adm_list_item(const char *list, unsigned i, char *out, size_t out_len);

/* ---- the blocking client ---- */

typedef struct adm_client adm_client_t;

/* Connects to addr ("host:port") with the cluster key (and the admin key when
 * admin_key is not NULL) and waits for the handshake. NULL with *err:
 * -ECONNREFUSED, -ETIMEDOUT, -EACCES (handshake refused) ... */
adm_client_t *adm_client_connect(const char *addr, const uint8_t cluster_key[32],
                                 const fd_ed25519_key_t *admin_key, uint32_t timeout_ms,
                                 int *err);
void adm_client_destroy(adm_client_t *cl);
rpc_engine_t *adm_client_engine(adm_client_t *cl);
rpc_conn_t *adm_client_conn(adm_client_t *cl);
/* Runs the engine once (up to wait_ms); false once the connection is gone. */
bool adm_client_pump(adm_client_t *cl, uint32_t wait_ms);

/* One unary call; *reply is the decoded answer (free with
 * protobuf_c_message_free_unpacked) or NULL. Returns the rpc code; message
   * (may be NULL) gets the status text. timeout_ms 0: the configured deadline. */
rpc_code_t adm_call(adm_client_t *cl, uint16_t service_id, const ProtobufCServiceDescriptor *svc,
                    uint32_t method_index, const ProtobufCMessage *req, uint32_t timeout_ms,
                    ProtobufCMessage **reply, char *message, size_t message_len);

/* The exit code an rpc outcome maps to. */
int adm_exit_for_code(rpc_code_t code);

/* ---- commands: argc/argv start at the command name; return ADM_EXIT_* ---- */

int adm_cmd_publish(adm_config_t *cfg, int argc, char **argv);
int adm_cmd_status(adm_config_t *cfg, int argc, char **argv);
int adm_cmd_versions(adm_config_t *cfg, int argc, char **argv);
int adm_cmd_nodes(adm_config_t *cfg, int argc, char **argv);
int adm_cmd_drain(adm_config_t *cfg, int argc, char **argv);   /* adm_drain.c */
int adm_cmd_undrain(adm_config_t *cfg, int argc, char **argv); /* adm_drain.c */
int adm_cmd_gc(adm_config_t *cfg, int argc, char **argv);
int adm_cmd_write(adm_config_t *cfg, int argc, char **argv);  /* write and append */
int adm_cmd_bump(adm_config_t *cfg, int argc, char **argv);
int adm_cmd_cert(adm_config_t *cfg, int argc, char **argv);   /* adm_trust.c */
int adm_cmd_revoke(adm_config_t *cfg, int argc, char **argv); /* adm_trust.c */

/* Shared by the commands: connects to the scheduler / the index-th origin
 * given, printing what went wrong; NULL and *exit_code set on failure. */
adm_client_t *adm_connect_scheduler(const adm_config_t *cfg, bool admin, int *exit_code);
adm_client_t *adm_connect_origin(const adm_config_t *cfg, unsigned index, bool admin,
                                 int *exit_code);
/* Connects to addr with the configuration's keys, printing only what is
 * wrong with the keys: NULL with *exit_code set (the keys), or with *err (the
 * connection: *exit_code stays ADM_EXIT_OK). */
adm_client_t *adm_connect_addr(const adm_config_t *cfg, const char *addr, bool admin, int *err,
                               int *exit_code);
/* Connects to the origin head (issue 22): asks the origins given, in their
 * order, then the heads they name, with Origin.Head and keeps the first that
 * leads; when none serves Head (fdnodes older than issue 22), the first
 * reachable, the rule before. None leading: prints "no origin leads: " with
 * each origin's answer, NULL and ADM_EXIT_UNREACHABLE. */
adm_client_t *adm_connect_head(const adm_config_t *cfg, bool admin, int *exit_code);
/* One origin's Origin.Head answer (*out: free with
 * protobuf_c_message_free_unpacked; NULL unless RPC_OK). */
rpc_code_t adm_origin_head(adm_client_t *cl, Origin__HeadReply **out, char *message,
                           size_t message_len);
/* Newest version of name known to the scheduler (0: none); 0 or ADM_EXIT_*. */
int adm_newest_version(adm_client_t *sched, const char *name, uint64_t *version);

/* ---- --json output (adm_json.c, through json-c) ----
 * Build a tree with these, then adm_json_print prints it compactly with a
 * newline and frees it (also on failure: 0, -ENOMEM, -EIO). The adders take
 * ownership of value and accept a NULL object or value (a failed
 * allocation), which adm_json_print then reports instead of printing. */
json_object *adm_json_object(void);
json_object *adm_json_array(void);
void adm_json_add(json_object *o, const char *key, json_object *value);
void adm_json_push(json_object *array, json_object *value);
void adm_json_add_str(json_object *o, const char *key, const char *s); /* NULL: "" */
void adm_json_add_u64(json_object *o, const char *key, uint64_t v);
void adm_json_add_bool(json_object *o, const char *key, bool v);
/* A number printed with exactly decimals digits after the point. */
void adm_json_add_fixed(json_object *o, const char *key, double v, int decimals);
int adm_json_print(json_object *o);

#endif /* ADMIN_H */
