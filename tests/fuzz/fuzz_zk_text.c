/* fuzz_zk_text — what fdist reads from ZooKeeper, as any other input: the
 * origin chain's znode (nd_chain_parse) and an election member's znode name
 * (fd_zk_parse_member). Invariants: what parses formats back to text that
 * parses to the same chain (epoch, ids, order), and to the very input when
 * the input was in the canonical form; a member's tag never holds the
 * separator and fits its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fd_assert.h"
#include "fd_log.h"
#include "fd_zk.h"
#include "nd_origin_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fd_log_init("fuzz_zk_text", FD_LOG_ERROR);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > FD_ZK_NODE_MAX) return 0;
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;

  static nd_chain_view_t c, c2;
  if (nd_chain_parse(text, &c) == 0) {
    FD_ASSERT(c.epoch > 0 && c.n > 0 && c.n <= ND_ORIGINS_MAX);
    char out[FD_ZK_NODE_MAX * 2];
    int n = nd_chain_format(&c, out, sizeof(out));
    FD_ASSERT(n > 0);
    FD_ASSERT(nd_chain_parse(out, &c2) == 0);
    FD_ASSERT(c2.epoch == c.epoch && c2.n == c.n);
    for (uint32_t i = 0; i < c.n; i++) FD_ASSERT(!strcmp(c.ids[i], c2.ids[i]));
    if (strlen(text) == size && size > 0 && text[size - 1] == '\n')
      FD_ASSERT((size_t)n == size && !memcmp(out, text, size));
  }

  fd_zk_member_t m;
  uint64_t session;
  if (fd_zk_parse_member(text, &m, &session) == 0) {
    FD_ASSERT(strlen(m.tag) < sizeof(m.tag) && !strchr(m.tag, '~') && m.tag[0]);
  }
  free(text);
  return 0;
}
