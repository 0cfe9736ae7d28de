# perf/lib/result.sh — collects a benchmark's figures and writes them as JSON.
# Source it from bash; functions only. Needs python3 (stdlib json) to write.
#   pl_result_init [DIR]       starts an empty result (a TSV in $PL_RESULT_TSV,
#                              created in DIR, default $TMPDIR or /tmp)
#   pl_result_str KEY VALUE    string
#   pl_result_num KEY VALUE    number (checked: must parse as a JSON number)
#   pl_result_bool KEY true|false
#   pl_result_write OUT.json   writes the nested JSON, then keeps the TSV
#   pl_result_free             removes the TSV
# KEY is a path: "a.b.c" nests objects, "a[2].b" indexes arrays (0-based,
# created as needed), "a[]" appends. Later writes of the same key win.
# The TSV is owned by the caller's shell; pl_result_free (or a trap) removes it.

PL_LIB_DIR=${PL_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

pl_result_init() {
  PL_RESULT_TSV=$(mktemp "${1:-${TMPDIR:-/tmp}}/pl-result.XXXXXX.tsv")
}

pl__result_put() {
  [ -n "${PL_RESULT_TSV:-}" ] || { echo "pl_result: call pl_result_init first" >&2; return 1; }
  local v=${3//$'\n'/ }
  v=${v//$'\t'/ }
  printf '%s\t%s\t%s\n' "$1" "$2" "$v" >>"$PL_RESULT_TSV"
}

pl_result_str()  { pl__result_put "$1" s "$2"; }
pl_result_num()  { pl__result_put "$1" n "$2"; }
pl_result_bool() { pl__result_put "$1" b "$2"; }

pl_result_write() {
  python3 "$PL_LIB_DIR/result_json.py" "$PL_RESULT_TSV" "$1"
}

pl_result_free() {
  [ -n "${PL_RESULT_TSV:-}" ] && rm -f "$PL_RESULT_TSV"
  PL_RESULT_TSV=
}
