#!/usr/bin/env bash
# stat.sh [N]: how long `meshfs stat` takes on a mount whose store holds N
# empty files (default 1,000,000; issue 11's target: <= 50 ms). It builds
# the store with bench_store's tree (1,000 files per directory, -k keeps
# it), gives it a mesh key, mounts it, runs `meshfs stat` 20 times and
# prints the median and the slowest, then unmounts and removes it all.
# Needs a build (build/ or MESHFS_BUILD=DIR) and FUSE; ~3 min at 1,000,000.
#
#   bench/store/stat.sh            # 1,000,000 files
#   bench/store/stat.sh 100000     # to try it out
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
build=${MESHFS_BUILD:-build}
meshfs=$build/cli/meshfs
bs=$build/bench/bench_store
[[ -x $meshfs && -x $bs ]] || { echo "stat.sh: build $meshfs and $bs first" >&2; exit 1; }
base=${TMPDIR:-/var/tmp}
work=$(mktemp -d "$base/meshfs-statbench.XXXXXX")
mnt=$work/mnt
cleanup() {
    if mountpoint -q "$mnt" 2>/dev/null; then
        "$meshfs" umount "$mnt" 2>/dev/null || fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
echo "stat.sh: building a store of $n files in $work (bench_store -k)"
"$bs" -k -d "$work" -n "$n" -o 100 -r 100 >"$work/bench_store.txt" 2>&1 ||
    { cat "$work/bench_store.txt" >&2; exit 1; }
store=$(ls -d "$work"/meshfs-bench-*/tree)
# a mesh key of its own: bench_store opens stores through the API only
"$meshfs" init --store "$work/keysrc" >/dev/null 2>&1
cp "$work/keysrc/mesh.key" "$store/"
mkdir -p "$mnt"
# no peers, and a listen address of its own on loopback
echo "127.0.0.1:0" >"$store/listen"
"$meshfs" mount --store "$store" "$mnt" 2>"$work/mount.log" || { cat "$work/mount.log" >&2; exit 1; }
"$meshfs" stat "$mnt" >/dev/null # the first call warms the caches
ts=()
for ((i = 0; i < 20; i++)); do
    a=$(date +%s%N)
    "$meshfs" stat "$mnt" >/dev/null
    b=$(date +%s%N)
    ts+=($(((b - a) / 1000)))
done
sorted=$(printf '%s\n' "${ts[@]}" | sort -n)
med=$(sed -n 10p <<<"$sorted")
max=$(tail -n1 <<<"$sorted")
files=$("$meshfs" stat --json "$mnt" | grep -o '"files": *[0-9]*' | grep -o '[0-9]*$')
echo "meshfs stat with $files files in the store: median $((med / 1000)).$(printf '%03d' $((med % 1000))) ms, slowest $((max / 1000)).$(printf '%03d' $((max % 1000))) ms (20 runs; target <= 50 ms)"
grep "stats at" "$work/bench_store.txt" || true
