#!/usr/bin/env bash
# Builds bench_store (RelWithDebInfo, -Werror) in its own build dir and runs
# it, appending the output with date, commit and machine to
# bench/store/results.txt. Extra arguments go to bench_store
# (-d DIR -n ENTRIES -o OPS -r REMOTE_OPS); DIR should be on the disk whose
# figures you want (default $TMPDIR or /tmp).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${MESHFS_BENCH_BUILD:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHFS_TESTS=OFF \
  -DMESHFS_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_store >/dev/null
out=bench/store/results.txt
{
  echo "==== $(date -u '+%Y-%m-%d %H:%M UTC') commit $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet -- store 2>/dev/null || echo '+dirty store/')"
  echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -m | awk '/Mem:/{print $2}') MiB RAM, fs $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2{print $2}')"
  echo "command: $build/bench/bench_store $*"
  "$build/bench/bench_store" "$@"
} 2>&1 | tee -a "$out"
