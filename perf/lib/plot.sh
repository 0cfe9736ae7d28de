# perf/lib/plot.sh — gnuplot PNG of "nodes complete over time".
# Source it from bash (functions only), or run it:
#   plot.sh DATA PNG [TITLE] [TOTAL_NODES] [BOUND_S]
#   pl_plot_complete DATA PNG [TITLE] [TOTAL_NODES] [BOUND_S]
# DATA has two whitespace-separated columns per line: seconds since publish,
# nodes complete at that moment ('#' lines are comments); lines are sorted
# by time before plotting. The curve is a step function. TOTAL_NODES draws the "all nodes" line;
# BOUND_S draws the line-rate lower bound S/B as a vertical line, so the gap
# between the curve and the bound is the inefficiency. Returns gnuplot's
# status; writes nothing but PNG.

pl_plot_complete() {
  local data=$1 png=$2 title=${3:-nodes complete over time} total=${4:-0} bound=${5:-0}
  [ -r "$data" ] || { echo "pl_plot_complete: cannot read $data" >&2; return 1; }
  command -v gnuplot >/dev/null || { echo "pl_plot_complete: gnuplot not found" >&2; return 1; }
  local rows
  rows=$(grep -v '^[[:space:]]*#' "$data" | awk 'NF >= 2' | sort -g -k1,1)
  [ -n "$rows" ] || { echo "pl_plot_complete: no data rows in $data" >&2; return 1; }
  local term=pngcairo
  gnuplot -e 'set terminal pngcairo' 2>/dev/null || term=png
  gnuplot <<GP
set terminal $term size 900,540
set output '$png'
\$d << EOD
$rows
EOD
set title "${title//\"/\'}"
set xlabel 'seconds since publish'
set ylabel 'nodes holding the verified version'
set grid
set key right bottom
set xrange [0:*]
total = $total
if (total > 0) set yrange [0:total * 1.1]; else set yrange [0:*]
bound = $bound
if (bound > 0) set arrow 1 from bound, graph 0 to bound, graph 1 nohead lc rgb '#c03030' dt 2 lw 2
if (bound > 0) set label 1 sprintf('S/B = %.1f s', bound) at bound, graph 0.95 offset 0.5,0 tc rgb '#c03030'
if (total > 0) set arrow 2 from graph 0, first total to graph 1, first total nohead lc rgb '#606060' dt 3
plot \$d using 1:2 with steps lw 2 lc rgb '#2060c0' title 'nodes complete', \
     \$d using 1:2 with points pt 7 ps 0.6 lc rgb '#2060c0' notitle
GP
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ $# -lt 2 ] || [ "$1" = --help ]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    [ "${1:-}" = --help ] && exit 0 || exit 2
  fi
  pl_plot_complete "$@"
fi
