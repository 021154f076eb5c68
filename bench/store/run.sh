#!/usr/bin/env bash
# Builds bench_store (RelWithDebInfo, -Werror) in its own build dir and runs
# it, appending the output with date, commit and machine to
# bench/store/results.txt. Extra arguments go to bench_store
# (-d DIR -k -n ENTRIES -o OPS -r REMOTE_OPS; -k keeps the stores); DIR should be on the disk whose
# figures you want (default $TMPDIR or /tmp). The run ends with the three
# figures of issue 9 against their targets (grouped local ops/s, lookup at
# 1,000,000 entries, store bytes per empty file at 1,000,000 entries).
#
#   bench/store/run.sh            full run: 1,000,000 entries (~2-3 minutes)
#   bench/store/run.sh --quick    100,000 entries, fewer ops, to try it out;
#                                 printed only, not appended to results.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=0
if [[ ${1:-} == --quick ]]; then
  quick=1
  shift
  set -- -n 100000 -o 20000 -r 10000 "$@"
fi
build=${MESHFS_BENCH_BUILD:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHFS_TESTS=OFF \
  -DMESHFS_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_store >/dev/null
out=bench/store/results.txt
((quick)) && out=/dev/null
{
  echo "==== $(date -u '+%Y-%m-%d %H:%M UTC') commit $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet -- store 2>/dev/null || echo '+dirty store/')"
  echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -m | awk '/Mem:/{print $2}') MiB RAM, fs $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2{print $2}'), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "command: ${MESHFS_COMMIT_WINDOW_US:+MESHFS_COMMIT_WINDOW_US=$MESHFS_COMMIT_WINDOW_US }$build/bench/bench_store $*"
  "$build/bench/bench_store" "$@"
} 2>&1 | tee -a "$out"
