/* it_member_write — test helper: sends one Origin.Write (an append of a few
 * bytes) to an origin as a plain cluster member (the cluster key, neither
 * the admin nor a writer key), which the origin must refuse.
 * usage: it_member_write ORIGIN_ADDR CLUSTER_KEY_FILE NAME
 * Prints the answer's code and message. Exit: 0 acknowledged, 1 refused,
 * 2 usage, 3 unreachable. */
#include <stdio.h>

#include "admin.h"
#include "fd_error.h"
#include "fd_log.h"

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ORIGIN_ADDR CLUSTER_KEY_FILE NAME\n", argv[0]);
    return ADM_EXIT_USAGE;
  }
  fd_log_init("it_member_write", FD_LOG_WARN);
  uint8_t key[32];
  if (adm_cluster_key_load(argv[2], key) < 0) return ADM_EXIT_USAGE;
  int err = 0;
  adm_client_t *cl = adm_client_connect(argv[1], key, NULL, 5000, &err);
  if (!cl) {
    fprintf(stderr, "cannot reach %s: %s\n", argv[1], fd_strerror(err));
    return ADM_EXIT_UNREACHABLE;
  }
  static uint8_t data[] = "a member's change";
  Origin__WriteRequest req = ORIGIN__WRITE_REQUEST__INIT;
  req.name = argv[3];
  req.append = true;
  req.data.data = data;
  req.data.len = sizeof(data) - 1;
  ProtobufCMessage *m = NULL;
  char msg[256];
  rpc_code_t code = adm_call(cl, RPC_SVC_ORIGIN, &origin__origin__descriptor, 4, &req.base, 0,
                             &m, msg, sizeof(msg));
  printf("Write: %s %s\n", rpc_code_name(code), msg);
  if (m) protobuf_c_message_free_unpacked(m, NULL);
  adm_client_destroy(cl);
  return code == RPC_OK ? ADM_EXIT_OK : 1;
}
