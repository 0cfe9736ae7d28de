/* nd_config.c — fdnode's INI schema ([node] section), defaults and checks. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fd_assert.h"
#include "nd_peers.h"
#include "node.h"

void nd_config_defaults(nd_config_t *c) {
  memset(c, 0, sizeof(*c));
  snprintf(c->role, sizeof(c->role), "node");
  snprintf(c->region, sizeof(c->region), "r1");
  snprintf(c->zone, sizeof(c->zone), "z1");
  snprintf(c->listen, sizeof(c->listen), "127.0.0.1:0");
  snprintf(c->log_level, sizeof(c->log_level), "info");
  c->heartbeat_ms = FD_HEARTBEAT_MS_DEFAULT;
  c->keep_versions = FD_VERSIONS_KEPT_DEFAULT;
  c->chunk_buf_bytes = FD_CHUNK_SIZE_DEFAULT;
  c->pool_buffers = ND_POOL_BUFFERS_DEFAULT;
  c->nic_bps = ND_NIC_BPS_DEFAULT;
  c->scrub_interval_s = 0;
  c->scrub_rate_bytes = ND_SCRUB_RATE_DEFAULT;
  c->min_durable_origins = ND_MIN_DURABLE_DEFAULT;
  c->bump_changes = ND_BUMP_CHANGES_DEFAULT;
  c->bump_bytes = ND_BUMP_BYTES_DEFAULT;
  c->bump_interval_s = ND_BUMP_INTERVAL_S_DEFAULT;
  c->write_chunk_bytes = 0; /* chunk_buf */
  snprintf(c->zookeeper_root, sizeof(c->zookeeper_root), "/fdist");
  c->zookeeper_session_ms = ND_ZK_SESSION_MS_DEFAULT;
}

#define S(key, f, help) {"node", key, FD_CFG_STRING, c->f, sizeof(c->f), 0, 0, help}
size_t nd_config_items(nd_config_t *c, fd_config_item_t *items, size_t max) {
  const fd_config_item_t all[] = {
      S("id", id, "node id, unique in the cluster"),
      S("role", role, "node or origin"),
      S("region", region, "region name"),
      S("zone", zone, "zone name"),
      S("listen", listen, "listen address addr:port (port 0: any)"),
      S("data_dir", data_dir, "chunk store directory"),
      S("scheduler", scheduler, "fdsched address addr:port (a leader and standbys: comma-separated)"),
      S("cluster_key_file", cluster_key_file, "file with 64 hex chars: the cluster key"),
      S("admin_pub_file", admin_pub_file, "trusted admin Ed25519 public key (PEM or hex)"),
      S("revocations_file", revocations_file,
        "optional: the admin-signed revocation list (fdadmin revoke), re-read when it changes"),
      S("signing_key_file", signing_key_file,
        "role origin, optional: the origin group's Ed25519 private key (same on every origin)"),
      S("signing_cert_file", signing_cert_file,
        "its certificate (fdadmin cert --role origin); checked at start"),
      S("origins", origins,
        "origin chain, head first: id@addr:port or a bare id (its address from fdsched),..."),
      S("zookeeper", zookeeper,
        "role origin, optional: ZooKeeper servers h:p,... that elect the head and keep the "
        "chain's order and epoch (empty: the static chain of node.origins, head first)"),
      S("zookeeper_root", zookeeper_root, "the znodes' parent path (the same on every origin)"),
      {"node", "zookeeper_session_ms", FD_CFG_U32, &c->zookeeper_session_ms, 0, 1000, 60000,
       "ZooKeeper session timeout: a dead head is replaced after about this long"},
      S("port_file", port_file,
        "optional: write the bound port here once listening (temp file + rename)"),
      S("metrics_listen", metrics_listen,
        "optional: serve /metrics (Prometheus text) on addr:port (port 0: ephemeral)"),
      S("metrics_port_file", metrics_port_file,
        "optional: write the bound /metrics port here (temp file + rename)"),
      S("log_level", log_level, "debug, info, warn, error"),
      {"node", "threads", FD_CFG_U32, &c->threads, 0, 0, 1024,
       "io_uring engines, one thread each (0: one per core; role origin runs one)"},
      {"node", "heartbeat_ms", FD_CFG_U32, &c->heartbeat_ms, 0, 10, 600000, "heartbeat period"},
      {"node", "keep_versions", FD_CFG_U32, &c->keep_versions, 0, 1, 1000,
       "complete versions GC keeps"},
      {"node", "chunk_buf", FD_CFG_BYTES, &c->chunk_buf_bytes, 0, FD_CHUNK_SIZE_MIN,
       FD_CHUNK_SIZE_MAX, "buffer size = largest chunk size handled"},
      {"node", "pool_buffers", FD_CFG_U32, &c->pool_buffers, 0, ND_POOL_BUFFERS_MIN, FD_POOL_BUFFERS_MAX,
       "chunk buffers per engine"},
      {"node", "window_chunks", FD_CFG_U32, &c->window_chunks, 0, 0, ND_WINDOW_CHUNKS_MAX,
       "chunk buffers a peer may fill per stream and per connection (0: auto)"},
      {"node", "nic_bps", FD_CFG_U64, &c->nic_bps, 0, 1, 0, "NIC bandwidth, bits/s"},
      {"node", "upload_bps_max", FD_CFG_U64, &c->upload_bps_max, 0, 0, 0,
       "bits/s sent at most to children and peers (0: no cap); fdsched plans by it"},
      {"node", "download_bps_max", FD_CFG_U64, &c->download_bps_max, 0, 0, 0,
       "bits/s received at most (0: no cap)"},
      {"node", "scrub_interval_s", FD_CFG_U32, &c->scrub_interval_s, 0, 0, 0,
       "re-check each complete version this often (0: never)"},
      {"node", "scrub_rate", FD_CFG_BYTES, &c->scrub_rate_bytes, 0, 1, 0,
       "bytes per second a scrub reads at most"},
      {"node", "min_durable_origins", FD_CFG_U32, &c->min_durable_origins, 0, 1, ND_ORIGINS_MAX,
       "role origin: a change or publish is acknowledged only once this many origins hold it"},
      {"node", "bump_changes", FD_CFG_U64, &c->bump_changes, 0, 0, 0,
       "role origin: merge the changelog into a new version after this many changes (0: off)"},
      {"node", "bump_bytes", FD_CFG_BYTES, &c->bump_bytes, 0, 0, 0,
       "role origin: ... or after this many bytes of changes (0: off)"},
      {"node", "bump_interval_s", FD_CFG_U32, &c->bump_interval_s, 0, 0, 0,
       "role origin: ... or this many seconds after the log's first change (0: off)"},
      {"node", "write_chunk", FD_CFG_BYTES, &c->write_chunk_bytes, 0, 0,
       FD_CHUNK_SIZE_MAX, "role origin: chunk size of a file made by changes alone (0: chunk_buf)"},
  };
  size_t n = FD_MIN(max, FD_ARRAY_LEN(all));
  memcpy(items, all, n * sizeof(all[0]));
  return n;
}
#undef S

/* The receive window in chunk buffers. A buffer that came in on one window
 * may still be held by the sends to the next hop (whose window is as large)
 * and their queue, so a quarter of what the disk reads leave is the most a
 * window may take; the default is ND_WINDOW_CHUNKS_DEFAULT within that. */
uint32_t nd_config_window_chunks(const nd_config_t *c) {
  if (c->window_chunks) return c->window_chunks;
  uint32_t fit = c->pool_buffers > ND_POOL_RESERVE ? (c->pool_buffers - ND_POOL_RESERVE) / 4 : 1;
  return FD_MAX(1u, FD_MIN(ND_WINDOW_CHUNKS_DEFAULT, fit));
}

/* The origin list parses; and without a scheduler, which is what tells
 * the addresses of bare-id entries, an origin needs the address of every
 * origin after it in the chain (the ones it copies versions to; those
 * before it are only repair sources, skipped while their address is not
 * known). */
static int origins_check(const nd_config_t *c, char *err, size_t err_len) {
  nd_origins_t os; /* about 6 KiB, once per check */
  int rc = nd_origins_parse(&os, c->origins, c->id);
  if (rc == -EMSGSIZE)
    return snprintf(err, err_len, "node.origins: more than %u origins", ND_ORIGINS_MAX), rc;
  if (rc)
    return snprintf(err, err_len,
                    "node.origins: want id@addr:port or id, comma separated, each id once"),
           rc;
  if (strcmp(c->role, "origin") != 0) return 0;
  if (os.self < 0)
    return snprintf(err, err_len, "node.origins does not list this origin's id %s", c->id),
           -EINVAL;
  if (c->scheduler[0] || c->zookeeper[0]) return 0; /* addresses learned */
  for (uint32_t i = (uint32_t)os.self + 1; i < os.n; i++)
    if (!os.o[i].port)
      return snprintf(err, err_len,
                      "node.origins: %s has no address and there is no node.scheduler to learn "
                      "it from",
                      os.o[i].id),
             -EINVAL;
  return 0;
}

int nd_config_check(const nd_config_t *c, char *err, size_t err_len) {
  char a[64];
  uint16_t p;
  if (!c->id[0]) return snprintf(err, err_len, "node.id is required"), -EINVAL;
  if (strcmp(c->role, "node") && strcmp(c->role, "origin"))
    return snprintf(err, err_len, "node.role must be node or origin"), -EINVAL;
  if (!c->data_dir[0]) return snprintf(err, err_len, "node.data_dir is required"), -EINVAL;
  if (!c->cluster_key_file[0])
    return snprintf(err, err_len, "node.cluster_key_file is required"), -EINVAL;
  if (!c->admin_pub_file[0])
    return snprintf(err, err_len, "node.admin_pub_file is required"), -EINVAL;
  if (nd_parse_hostport(c->listen, a, sizeof(a), &p))
    return snprintf(err, err_len, "node.listen is not addr:port"), -EINVAL;
  {
    char sa[SCH_SCHEDULERS_MAX][SCH_ADDRESS_LEN_MAX]; /* 2 KiB, once per check */
    uint16_t sp[SCH_SCHEDULERS_MAX];
    int n = nd_schedulers_parse(c->scheduler, sa, sp, SCH_SCHEDULERS_MAX);
    if (n == -EMSGSIZE)
      return snprintf(err, err_len, "node.scheduler: more than %u addresses", SCH_SCHEDULERS_MAX),
             -EINVAL;
    if (n < 0)
      return snprintf(err, err_len, "node.scheduler is not addr:port[,addr:port...]"), -EINVAL;
  }
  if (c->write_chunk_bytes &&
      (!FD_IS_POW2(c->write_chunk_bytes) || c->write_chunk_bytes > c->chunk_buf_bytes))
    return snprintf(err, err_len, "node.write_chunk must be a power of two, at most node.chunk_buf"),
           -EINVAL;
  if (!FD_IS_POW2(c->chunk_buf_bytes))
    return snprintf(err, err_len, "node.chunk_buf must be a power of two"), -EINVAL;
  if (c->window_chunks && c->window_chunks * 4 + ND_POOL_RESERVE > c->pool_buffers)
    return snprintf(err, err_len,
                    "node.window_chunks x 4 + %u must be at most node.pool_buffers (%u)",
                    ND_POOL_RESERVE, c->pool_buffers),
           -EINVAL;
  if ((uint64_t)c->window_chunks * c->chunk_buf_bytes > (1ull << 30))
    return snprintf(err, err_len, "node.window_chunks x node.chunk_buf must be at most 1 GiB"),
           -EINVAL;
  if (!strcmp(c->role, "origin") && !c->origins[0])
    return snprintf(err, err_len, "node.origins is required for role origin"), -EINVAL;
  if (!c->signing_key_file[0] != !c->signing_cert_file[0])
    return snprintf(err, err_len,
                    "node.signing_key_file and node.signing_cert_file go together: a signing "
                    "key needs its certificate"),
           -EINVAL;
  if (c->signing_key_file[0] && strcmp(c->role, "origin"))
    return snprintf(err, err_len, "node.signing_key_file is for role origin only"), -EINVAL;
  return origins_check(c, err, err_len);
}
