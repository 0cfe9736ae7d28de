#!/usr/bin/env bash
# Every fdadmin --json output (publish, append, write, bump, status, versions, nodes, drain, undrain) parses with a real JSON parser (python3's json) into the fields and types documented, compact, one document per line.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_require "$(command -v python3)"
it_init json_outputs 180
IT_ORIGIN_INI=$'bump_changes = 0\nbump_bytes = 0\nbump_interval_s = 0'
it_cluster 3 1 2 2

# check NAME FILE PYTHON: FILE holds exactly one line, a JSON document `d`
# printed compactly; PYTHON asserts on it.
check() {
  python3 - "$1" "$2" "$3" <<'PY' || it_fail "$1: $(cat "$2")"
import json, re, sys
name, path, code = sys.argv[1:]
text = open(path).read()
assert text.endswith("\n") and text.count("\n") == 1, "one line"
d = json.loads(text)
assert not re.search(r"\s", re.sub(r'"(?:[^"\\]|\\.)*"', "", text[:-1])), "compact"
def u(v): return isinstance(v, int) and not isinstance(v, bool) and v >= 0
def fields(o, **kinds):
    assert set(o) == set(kinds), f"keys {sorted(o)} != {sorted(kinds)}"
    for k, kind in kinds.items():
        ok = {"u": u, "s": lambda v: isinstance(v, str), "b": lambda v: isinstance(v, bool),
              "f": lambda v: isinstance(v, float), "l": lambda v: isinstance(v, list),
              "o": lambda v: isinstance(v, dict)}[kind](o[k])
        assert ok, f"{k}={o[k]!r} is not {kind}"
exec(code)
print(f"{name}: ok")
PY
}

it_make_file "$IT_DIR/src" 2
size=$(stat -c %s "$IT_DIR/src")
it_publish "$IT_DIR/src" big.img --json >"$IT_DIR/publish.json" || it_fail "publish exited $?"
check publish "$IT_DIR/publish.json" "
fields(d, name='s', version='u', size_bytes='u', chunks='u', chunks_sent='u', bytes_sent='u', seconds='f', origins='l')
assert d['name'] == 'big.img' and d['version'] == 1 and d['size_bytes'] == $size
assert d['chunks'] == d['chunks_sent'] and d['bytes_sent'] == $size
assert sorted(d['origins']) == ['o1', 'o2', 'o3'], d['origins']"
it_wait_current big.img "$(it_sha "$IT_DIR/src")" 60

head -c 3000 /dev/urandom >"$IT_DIR/rec"
it_writer --json append big.img "$IT_DIR/rec" >"$IT_DIR/append.json" || it_fail "append exited $?"
check append "$IT_DIR/append.json" "
fields(d, name='s', op='s', changes='l', acknowledged='u', bytes='u', seconds='f', first='o', last='o', ok='b')
assert d['op'] == 'append' and d['ok'] and d['acknowledged'] == 1 and d['bytes'] == 3000
c = d['changes'][0]
fields(c, version='u', index='u', offset='u', length='u', input='u')
assert c['version'] == 2 and c['offset'] == $size and c['length'] == 3000 and c['input'] == 0
fields(d['first'], version='u', index='u'); fields(d['last'], version='u', index='u')"
it_writer --json write big.img --offset 4096 --quiet "$IT_DIR/rec" >"$IT_DIR/write.json" || it_fail "write exited $?"
check write "$IT_DIR/write.json" "
fields(d, name='s', op='s', acknowledged='u', bytes='u', seconds='f', first='o', last='o', ok='b')
assert d['op'] == 'write' and d['ok'] and d['first']['index'] == 1"
it_writer --json bump big.img >"$IT_DIR/bump.json" || it_fail "bump exited $?"
check bump "$IT_DIR/bump.json" "
fields(d, name='s', version='u', changes='u', digest='s')
assert d['version'] == 2 and d['changes'] == 2 and len(d['digest']) == 64"

it_admin --json status >"$IT_DIR/status.json" || it_fail "status exited $?"
check status "$IT_DIR/status.json" "
fields(d, nodes_alive='u', nodes_suspect='u', nodes_dead='u', nodes_draining='u', newest_version='u', leader='b', epoch='u', zookeeper='s', leader_addr='s', leader_seq='u', standbys='l', stalls='o', progress='l', versions='l', members='l', origins='l')
assert d['leader'] and d['zookeeper'] == 'off' and d['standbys'] == [], d
fields(d['stalls'], blocked_ms='u', blocked_pool_ms='u', blocked_socket_ms='u', blocked_upload_cap_ms='u', credit_write_ms='u', credit_sync_ms='u')
assert d['nodes_alive'] == 7 and d['newest_version'] == 2, d
for o in d['origins']: fields(o, address='s', reachable='b', id='s', head='s', epoch='u', chain='l', zookeeper='s', leads='b')
assert [o['id'] for o in d['origins'] if o['leads']] == ['o1'], d['origins']
p = d['progress'][0]
fields(p, name='s', version='u', size_bytes='u', chunk_count='u', complete='u', in_progress='u', failed='u', bytes_done='u', bytes_total='u', throughput_bytes_per_s='u', eta_ms='u', elapsed_ms='u', publishing='b', bad_chunks_reported='u', bad_chunks_repaired='u', manifests_rejected='u', zones='l')
for z in p['zones']: fields(z, region='s', zone='s', complete='u', in_progress='u', failed='u')
for v in d['versions']: fields(v, name='s', version='u', size_bytes='u', nodes_complete='u')
for m in d['members']: fields(m, region='s', zone='s', alive='u', suspect='u', dead='u', draining='u')
assert sum(m['alive'] for m in d['members']) == 7"
it_admin --json versions big.img >"$IT_DIR/versions.json" || it_fail "versions exited $?"
check versions "$IT_DIR/versions.json" "
assert isinstance(d, list) and [v['version'] for v in d] == [1, 2], d
for v in d: fields(v, name='s', version='u', size_bytes='u', created_s='u', nodes_complete='u')"
it_admin --json nodes >"$IT_DIR/nodes.json" || it_fail "nodes exited $?"
check nodes "$IT_DIR/nodes.json" "
assert isinstance(d, list) and len(d) == 7
for n in d: fields(n, node_id='s', region='s', zone='s', address='s', state='s', last_seen_ms='u', dependents='u', stalls='o', child_stalls='l')
for n in d: fields(n['stalls'], blocked_ms='u', blocked_pool_ms='u', blocked_socket_ms='u', blocked_upload_cap_ms='u', credit_write_ms='u', credit_sync_ms='u')
for n in d:
  for c in n['child_stalls']: fields(c, node_id='s', blocked_ms='u')
assert sorted(n['node_id'] for n in d) == ['n1', 'n2', 'n3', 'n4', 'o1', 'o2', 'o3']"
it_admin --json drain n1 >"$IT_DIR/drain.json" || it_fail "drain exited $?"
check drain "$IT_DIR/drain.json" "
fields(d, node='s', command='s', accepted='b', changed='b', state='s', dependents='u', waited='b', waited_ms='u')
assert d['accepted'] and d['changed'] and d['state'] == 'draining' and d['dependents'] == 0 and d['waited']"
it_admin --json undrain n1 >"$IT_DIR/undrain.json" || it_fail "undrain exited $?"
check undrain "$IT_DIR/undrain.json" "
fields(d, node='s', command='s', accepted='b', changed='b', state='s', dependents='u', waited='b', waited_ms='u')
assert d['accepted'] and d['changed'] and d['state'] == 'alive' and not d['waited']"
echo "PASS json_outputs"
