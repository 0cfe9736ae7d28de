/* it_register_version — test helper: registers a manifest file with fdsched
 * as any cluster member can (Scheduler.RegisterVersion), to show that what a
 * scheduler hands out is still checked by every node.
 * usage: it_register_version SCHED_ADDR CLUSTER_KEY_FILE MANIFEST ORIGIN_ID...
 * Exit: 0 registered, 1 refused, 2 usage, 3 unreachable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "fd_error.h"
#include "fd_log.h"

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s SCHED_ADDR CLUSTER_KEY_FILE MANIFEST ORIGIN_ID...\n", argv[0]);
    return ADM_EXIT_USAGE;
  }
  fd_log_init("it_register_version", FD_LOG_WARN);
  uint8_t key[32];
  if (adm_cluster_key_load(argv[2], key) < 0) return ADM_EXIT_USAGE;
  FILE *f = fopen(argv[3], "rb");
  if (!f) return ADM_EXIT_USAGE;
  static uint8_t buf[SCH_MANIFEST_LEN_MAX];
  size_t len = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  int err = 0;
  adm_client_t *cl = adm_client_connect(argv[1], key, NULL, 5000, &err);
  if (!cl) {
    fprintf(stderr, "cannot reach %s: %s\n", argv[1], fd_strerror(err));
    return ADM_EXIT_UNREACHABLE;
  }
  Sched__RegisterVersionRequest req = SCHED__REGISTER_VERSION_REQUEST__INIT;
  req.manifest.data = buf;
  req.manifest.len = len;
  req.n_origins = (size_t)(argc - 4);
  req.origins = argv + 4;
  ProtobufCMessage *m = NULL;
  char msg[256];
  rpc_code_t code = adm_call(cl, RPC_SVC_SCHED, &sched__scheduler__descriptor, 3, &req.base, 0,
                             &m, msg, sizeof(msg));
  printf("RegisterVersion: %s %s\n", rpc_code_name(code), msg);
  if (m) protobuf_c_message_free_unpacked(m, NULL);
  adm_client_destroy(cl);
  return code == RPC_OK ? ADM_EXIT_OK : adm_exit_for_code(code);
}
