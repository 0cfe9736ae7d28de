/* st_powercut.h — what test_powercut.c's workloads and its invariant checks
 * (st_powercut_check.c) share: the versions written and what one recorded
 * run acknowledged. */
#ifndef ST_POWERCUT_H
#define ST_POWERCUT_H

#include "powercut.h"
#include "st_test_util.h"

#define PCS_CS (64u * 1024u)
#define PCS_CHUNKS 13u
#define PCS_SIZE ((uint64_t)(PCS_CHUNKS - 1u) * PCS_CS + 777u) /* a short last chunk */
#define PCS_NAME "FileA"
#define PCS_VERSIONS 2u /* v1 (the base) and v2 */
#define PCS_CHUNKS_MAX 63u /* any version's: the checks keep chunk sets in a uint64_t */
#define PCS_CREATED 1700000002u /* the merged manifest's creation time */

/* Markers the workloads log when the store acknowledges something (a merge
 * returning 0 promises its manifest, all-ones bitmap and data are durable). */
enum { PCS_TAG_COMPLETE = 1, PCS_TAG_REPAIRED = 2, PCS_TAG_MERGED = 3 };

typedef enum pcs_scenario {
  PCS_INGEST,      /* empty store: chunks put in random waves (group fdatasync), the store
                    * closed half-way (bitmap flushed) and reopened (resumed), complete v1 */
  PCS_COMPLETE_GC, /* v1 stored: v2 put and completed over it, then GC keeps 1 */
  PCS_DELTA_COPY,  /* v1 stored: v2 copies its unchanged chunks from v1, fetches the rest */
  PCS_DELTA_CLONE, /* the same with FICLONERANGE where the filesystem shares blocks */
  PCS_REPAIR,      /* v1 stored with two rotten chunks (one the short last): repaired in place */
  PCS_MERGE_CLONE, /* v1 stored: v2 merged from v1 and a log of writes (st_merge_build, the base
                    * cloned where the filesystem shares blocks), then resumed and completed */
  PCS_MERGE_COPY,  /* the same with the base copied (copy_file_range) */
  PCS_SCENARIOS
} pcs_scenario_t;

typedef struct pcs_ctx {
  st_env_t e;            /* ring, pool, key and the store config template */
  char base[256];        /* where runs are recorded (FDIST_POWERCUT_DIR) */
  char cuts[256];        /* where cuts are written out and reopened */
  uint8_t *data[PCS_VERSIONS + 1]; /* data[v]: the bytes of version v */
  uint8_t *enc[PCS_VERSIONS + 1];  /* its signed manifest */
  size_t enc_len[PCS_VERSIONS + 1];
  uint32_t rotten[2];    /* the repair scenario's bad chunks of v1 */
  uint8_t *merged;       /* v2 as the merge scenarios make it: v1 and the log, in memory */
  uint64_t merged_size;
  uint8_t *merged_enc;   /* its manifest, as st_manifest_build and signing make it */
  size_t merged_enc_len;
} pcs_ctx_t;

typedef struct pcs_run {
  pcs_scenario_t scen;
  char root[300];        /* recorded: root/data is the store's data dir */
  pc_rec_t *rec;
  st_config_t cfg;       /* the recorded store's, while recording */
  uint64_t target;       /* the version the workload writes (0: none, repair) */
  const uint8_t *want;   /* its bytes, size and signed manifest */
  uint64_t want_size;
  const uint8_t *want_enc;
  size_t want_enc_len;
  bool cloned;           /* some chunk was shared by FICLONERANGE */
} pcs_run_t;

static inline bool pcs_is_merge(pcs_scenario_t s) {
  return s == PCS_MERGE_CLONE || s == PCS_MERGE_COPY;
}

/* Puts up to max chunks of v it lacks, in random order and waves of 1 to 6
 * in flight; 0 or the first -errno. */
int pcs_put_missing(pcs_ctx_t *c, st_version_t *v, const uint8_t *data, uint32_t max,
                    uint64_t *rng);
/* st_version_delta and its wait; 0 or -errno. */
int pcs_delta_wait(pcs_ctx_t *c, st_version_t *v);
/* Merges v2 from v1 and the scenarios' log in the store at data_dir; 0 when
 * its manifest is c->merged_enc byte for byte, -EBADMSG when it is not, or
 * the merge's -errno. */
int pcs_merge(pcs_ctx_t *c, const char *data_dir, bool no_clone, const fd_io_hook_t *io,
              bool *cloned);

/* The invariants after a cut of run at cut point `at`, on the store in
 * data_dir: NULL when they hold, else what broke, in msg. */
const char *pcs_check_cut(pcs_ctx_t *c, const pcs_run_t *run, uint32_t at, const char *data_dir,
                          char *msg, size_t len);

#endif /* ST_POWERCUT_H */
