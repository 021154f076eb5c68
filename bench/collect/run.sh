#!/usr/bin/env bash
# Collection under a steady mix of changes (issue 10): runs the soak test
# tests/system/mesh_soak.sh for SECONDS (default 300; the issue's soak is
# 1800) on three nodes with the trash off, keeps its samples (every 10 s,
# per node: live bytes, chunk bytes, store file, ops, RssAnon) in
# bench/collect/results/DATE.csv, draws node a's in DATE.png, and prints a
# table. Needs root, /dev/fuse, ip netns, nft and jq (as the mesh tests).
#
#   bench/collect/run.sh [SECONDS]      MESHFS=path/to/meshfs to choose the build
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-300}
meshfs=${MESHFS:-build/cli/meshfs}
[[ -x $meshfs ]] || { echo "build meshfs first (cmake --build build)" >&2; exit 1; }
stamp=$(date -u +%Y%m%d-%H%M)
out=bench/collect/results/$stamp
mkdir -p bench/collect/results
MESHFS=$meshfs MESHFS_SOAK_CSV=$out.csv bash tests/system/mesh_soak.sh "$secs" 2>"$out.log" ||
    { tail -20 "$out.log" >&2; exit 1; }
gnuplot -e "csv='$out.csv'; out='$out.png'; title='meshfs collection soak, ${secs} s, 3 nodes, trash off (node a), commit $(git rev-parse --short HEAD)'" \
    bench/collect/chart.gp
awk -F, 'NR == 1 { print "t_s  node  live_MiB  chunk_MiB  store_MiB  ops  anon_MiB"; next }
    { printf "%4d  %s  %8.1f  %9.1f  %9.1f  %6d  %8.1f\n", $1, $2, $3/1048576, $4/1048576, $5/1048576, $6, $7/1024 }' "$out.csv"
grep -E "changes made" "$out.log" | sed 's/^\[[^]]*\] //'
echo "results: $out.csv $out.png"
