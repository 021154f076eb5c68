#!/usr/bin/env bash
# mesh_soak [SECONDS]: the store follows what the mesh needs under a steady
# mix of changes (issue 10). Three nodes, trash off; on every node a
# writer loops over creates and overwrites (up to 256 KiB), renames and
# deletes in a directory of its own (40 names), for SECONDS (default 60;
# 1800 under the `long` label, system/mesh_soak_long). Every 10 s it
# samples, per node: live bytes (sum of file sizes), chunk bytes, the
# store file, ops in the log, the daemon's RSS (CSV in $T/soak.csv, and
# in $MESHFS_SOAK_CSV if set). Checks:
#  - after the first 20 s, chunk bytes <= 1.5 x live bytes + 16 MB on
#    every node at every sample (collection keeps up), and so are the
#    bytes of its pack files on disk (space goes back to the disk);
#  - the daemon's anonymous memory (RssAnon) at the end is within 1.5x +
#    16 MB of its first sample after 20 s (memory flat);
#  - the op log holds only what is not settled yet: at most 2,000 ops at
#    every sample after the first 20 s (60 s runs saw under 60), and at
#    most 100 at the end (0 seen); before it was folded it held every op
#    ever made (about 225 bytes of store file per op);
#  - the store file stays flat: at the end at most 2 x its first sample
#    after 20 s + 4 MiB;
#  - at the end the three trees converge and chunk bytes come within
#    16 MB of the live bytes.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
SECS=${1:-60}
mesh_init soak $((SECS + 240)) 7740
mesh_up a b c -- -o trash=0
MB=$((1024 * 1024))

writer() { # writer NODE: random changes in MNT/NODE until the stop file
    local d=${MNT[$1]}/w-$1 i op name=0
    mkdir -p "$d"
    while [[ ! -e "$T/stop" ]]; do
        i=$((RANDOM % 40))
        op=$((RANDOM % 10))
        if ((op < 5)); then
            head -c $((RANDOM * 8)) /dev/urandom >"$d/f$i.tmp" && mv "$d/f$i.tmp" "$d/f$i"
        elif ((op < 7)); then
            head -c $((RANDOM % 4096)) /dev/urandom >>"$d/f$i" 2>/dev/null || true
        elif ((op < 8)); then
            mv "$d/f$i" "$d/f$((RANDOM % 40))" 2>/dev/null || true
        else
            rm -f "$d/f$i"
        fi
        name=$((name + 1))
        sleep 0.0$((RANDOM % 5))
    done
    echo "$name" >"$T/ops-$1"
}

sample() { # sample T_SECONDS: a CSV line per node
    local n j rss
    for n in a b c; do
        j=$(mesh_stat "$n") || continue
        # anonymous memory: the store's map pages are file-backed and
        # grow with the file, which is not what "memory flat" means
        rss=$(awk '/RssAnon/ { print $2 }' "/proc/${NODE_PID[$n]}/status" 2>/dev/null || echo 0)
        echo "$1,$n,$(jq -r '[.bytes, .chunk_bytes, .store_bytes, .ops] | @csv' <<<"$j"),$rss,$(jq -r '.pack_bytes' <<<"$j")" >>"$T/soak.csv"
    done
}

echo "t_s,node,live_bytes,chunk_bytes,store_bytes,ops,rss_anon_kb,pack_bytes" >"$T/soak.csv"
for n in a b c; do writer "$n" & done
t0=$SECONDS
while ((SECONDS - t0 < SECS)); do
    sleep 10
    sample $((SECONDS - t0))
done
touch "$T/stop"
wait
mesh_wait_converged 120 a b c
sleep 3
sample $((SECONDS - t0))
[[ -z "${MESHFS_SOAK_CSV:-}" ]] || cp "$T/soak.csv" "$MESHFS_SOAK_CSV"
cat "$T/soak.csv" >&2

# collection kept up
awk -F, -v mb=$MB 'NR > 1 && $1 >= 20 {
        live = $3; ch = $4
        if (ch > 1.5 * live + 16 * mb) { printf "t=%s node %s: chunk bytes %d > 1.5 x live %d + 16 MiB\n", $1, $2, ch, live; bad = 1 }
        if ($8 > 1.5 * live + 16 * mb) { printf "t=%s node %s: pack files %d B > 1.5 x live %d + 16 MiB\n", $1, $2, $8, live; bad = 1 }
    } END { exit bad }' "$T/soak.csv" || fail "collection did not keep up (above)"
# memory flat
for n in a b c; do
    first=$(awk -F, -v n=$n '$2 == n && $1 >= 20 { print $7; exit }' "$T/soak.csv")
    last=$(awk -F, -v n=$n '$2 == n { v = $7 } END { print v }' "$T/soak.csv")
    [[ -n "$first" && -n "$last" ]] || fail "node $n: no memory samples"
    ((last <= first * 3 / 2 + 16384)) || fail "node $n: RssAnon grew from $first kB to $last kB"
done
# the op log holds what is not settled yet, and the store file stays flat
awk -F, 'NR > 1 && $1 >= 20 && $6 > 2000 { printf "t=%s node %s: %d ops in the log\n", $1, $2, $6; bad = 1 }
    END { exit bad }' "$T/soak.csv" || fail "the op log was not folded (above)"
made=$(($(cat "$T/ops-a") + $(cat "$T/ops-b") + $(cat "$T/ops-c")))
for n in a b c; do
    ops=$(awk -F, -v n=$n '$2 == n { v = $6 } END { print v }' "$T/soak.csv")
    store=$(awk -F, -v n=$n '$2 == n { v = $5 } END { print v }' "$T/soak.csv")
    live=$(awk -F, -v n=$n '$2 == n { v = $3 } END { print v }' "$T/soak.csv")
    ch=$(awk -F, -v n=$n '$2 == n { v = $4 } END { print v }' "$T/soak.csv")
    ((ch <= live + 16 * MB)) || fail "node $n: at the end chunk bytes $ch > live $live + 16 MiB"
    ((ops <= 100)) || fail "node $n: $ops ops in the log at the end ($made changes made)"
    sfirst=$(awk -F, -v n=$n '$2 == n && $1 >= 20 { print $5; exit }' "$T/soak.csv")
    ((store <= 2 * sfirst + 4 * MB)) || fail "node $n: store file grew from $sfirst to $store bytes"
    log "node $n: $made changes made, $ops ops in the log, store file $((store / MB)) MiB, live $((live / MB)) MiB, chunks $((ch / MB)) MiB"
done
log "ok"
