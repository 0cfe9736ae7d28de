#!/usr/bin/env bash
# The fdist main job, from a fresh Debian 12 machine: installs missing
# packages, builds, and runs the local-cluster demo.
#
# The cluster demo needs fdnode, fdsched and fdadmin (issues 5 and 6). Until
# they exist this script builds everything that does exist, runs it, and says
# plainly what is not there yet.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

./scripts/deps.sh
dir=$(./scripts/build.sh release | tail -n 1)

if [ -x "$dir/node/fdnode" ] && [ -x "$dir/scheduler/fdsched" ] && [ -x "$dir/admin/fdadmin" ] \
   && [ -x "$root/scripts/demo-cluster.sh" ]; then
  exec "$root/scripts/demo-cluster.sh" "$dir" "$@"
fi

echo "fdist demo: the local-cluster demo needs fdnode, fdsched and fdadmin, which are not built yet."
echo "Built so far, in $dir:"
find "$dir" -maxdepth 2 -type f -perm -u+x -name 'fd*' -not -name '*.so' -printf '  %P\n' | sort
for demo in "$root"/scripts/demo-*.sh; do
  [ -x "$demo" ] || continue
  echo "Running $(basename "$demo"):"
  "$demo" "$dir" "$@"
done
echo "Running the unit tests of what exists:"
(cd "$dir" && ctest -L unit --output-on-failure)
