#!/usr/bin/env bash
# How long collection holds up FUSE requests (issue 10's benchmark): on a
# single-node mount, a probe creates, writes (100 B) and closes a new file
# every 2 ms -- requests that need the store's writer lock -- while a tree
# of FILES small files and BIG files of 50 MB is deleted, and keeps going for
# SECS seconds after. Run twice in the same session: with -o trash=0 (the
# collector frees everything at once: versions, chunks, pack files,
# tombstones) and with the default trash (nothing is collected: the
# baseline). Prints the probe's latency (p50, p99, p99.9, max) in both, the
# collector's longest write transaction (max_pause_us), and keeps the table
# in bench/collect/results/DATE-pause.txt. Needs root and /dev/fuse.
#
#   bench/collect/pause.sh [FILES [BIG [SECS]]]   (default 20000 20 20)
#   MESHFS=path/to/meshfs to choose the build
set -euo pipefail
cd "$(dirname "$0")/../.."
files=${1:-20000}
big=${2:-20}
secs=${3:-20}
meshfs=$(realpath "${MESHFS:-build/cli/meshfs}")
[[ -x $meshfs ]] || { echo "build meshfs first (cmake --build build)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }
T=$(mktemp -d /var/tmp/meshfs-pause.XXXXXX)
M=""
cleanup() {
    if [[ -n $M ]] && grep -q " $M " /proc/mounts; then
        fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M"
    fi
    rm -rf "$T"
}
trap cleanup EXIT
stamp=$(date -u +%Y%m%d-%H%M)
out=bench/collect/results/$stamp-pause.txt
mkdir -p bench/collect/results

# the probe: create+write+close of a new 100-byte file every 2 ms, until
# the stop file appears; prints one latency in microseconds per line
cat >"$T/probe.py" <<'EOF'
import os, sys, time
d, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
lat = []
i = 0
while not os.path.exists(stop):
    p = os.path.join(d, "p%d" % (i % 500))
    t0 = time.perf_counter()
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"x" * 100)
    os.close(fd)
    lat.append((time.perf_counter() - t0) * 1e6)
    i += 1
    time.sleep(0.002)
with open(out, "w") as f:
    f.write("\n".join("%.0f" % x for x in lat) + "\n")
EOF

stats() { # stats FILE: p50 p99 p99.9 max (microseconds) and count
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        n = NR; printf "%d %d %d %d %d\n", v[int(n * 0.5) + 1], v[int(n * 0.99) + 1],
        v[int(n * 0.999) + 1], v[n], n }'
}

run() { # run NAME TRASH_DAYS
    local name=$1 days=$2 s=$T/$1-store
    M=$T/$1-mnt
    mkdir -p "$M"
    "$meshfs" init --store "$s" >/dev/null 2>&1
    "$meshfs" mount --store "$s" -o "trash=$days" "$M" 2>/dev/null
    mkdir -p "$M/tree" "$M/probe"
    local i
    for i in $(seq 1 "$big"); do
        head -c 50000000 /dev/urandom >"$M/tree/big$i"
    done
    python3 - "$M/tree" "$files" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, "d%d" % (i // 1000))
    if i % 1000 == 0:
        os.mkdir(sub)
    with open(os.path.join(sub, "f%d" % i), "wb") as f:
        f.write(os.urandom(200))
EOF
    sync "$M/tree"
    sleep 3 # the writes' own collection (superseded nothing) settles
    rm -f "$T/stop"
    python3 "$T/probe.py" "$M/probe" "$T/stop" "$T/$name.lat" &
    local probe=$!
    sleep 2 # a quiet stretch first
    local t0=$SECONDS
    rm -rf "$M/tree"
    local rm_s=$((SECONDS - t0))
    sleep "$secs"
    touch "$T/stop"
    wait "$probe"
    local js
    js=$("$meshfs" stat --json "$M")
    local pause freed tomb du
    pause=$(jq -r '.collection.max_pause_us' <<<"$js")
    freed=$(jq -r '.collection.disk_freed' <<<"$js")
    tomb=$(jq -r '.collection.tombstones' <<<"$js")
    du=$(du -sB1 "$s" | cut -f1)
    read -r p50 p99 p999 max n < <(stats "$T/$name.lat")
    printf "%-12s %8s %8s %8s %8s %7s %12s %12s %10s %12s %5s\n" "$name" "$p50" "$p99" \
        "$p999" "$max" "$n" "$pause" "$freed" "$tomb" "$du" "$rm_s" >>"$T/table"
    fusermount3 -u "$M"
    M=""
}

{
    echo "meshfs collection pause benchmark, $(date -u '+%Y-%m-%d %H:%M') UTC"
    echo "command: bench/collect/pause.sh $files $big $secs   meshfs: $("$meshfs" --version 2>/dev/null || echo "$meshfs")"
    echo "tree: $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty); host: $(nproc) cores; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "deleted: $files files of 200 B in $((files / 1000 + 1)) directories and $big files of 50 MB; probe: create+write 100 B+close every 2 ms, from 2 s before rm -rf to ${secs} s after"
    echo
} >"$out"
printf "%-12s %8s %8s %8s %8s %7s %12s %12s %10s %12s %5s\n" "run" "p50_us" "p99_us" \
    "p999_us" "max_us" "probes" "gc_pause_us" "disk_freed" "tombstones" "store_du" "rm_s" >"$T/table"
run trash-off 0
run trash-7d 7
cat "$T/table" >>"$out"
cat "$out"
echo "results: $out"
