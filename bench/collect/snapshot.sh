#!/usr/bin/env bash
# bench/collect/snapshot.sh [NFILES] - a new member joining a mesh whose op
# log was folded: snapshot size, build, transfer and install time, and the
# time until the new node is in sync with every file's content.
#
#   bench/collect/snapshot.sh            100,000 files (the issue's size)
#   bench/collect/snapshot.sh 20000      a quicker run
#   MESHFS=/path/to/meshfs bench/collect/snapshot.sh
#
# A (alone, so everything it holds is settled) gets NFILES small files (16
# to 80 bytes, in directories of 1,000) through its mount and folds its op
# log; then B is made with `meshfs join` and mounted, and must fetch a
# snapshot (it cannot be sent the folded ops). Figures come from the
# daemons' logs ("built a snapshot ... in X ms", "installed ... fetched in
# Y ms, installed in Z ms") and from `meshfs stat --json`. Both daemons run
# in a private network namespace (tests/system/mesh_lib.sh), so the
# transfer is over loopback inside it. Memory: each daemon's RssAnon
# (malloc'd memory; LMDB's map and the page cache are RssFile) is sampled
# every 20 ms from B's mount until B is in sync, and its VmHWM (peak of
# anon + file-backed pages, the LMDB map among them) read at the end.
# The longest `meshfs stat` on B (polled every 0.2 s) until the snapshot
# is installed: how long the sync engine could not answer.
# Needs root, /dev/fuse, ip netns, nft and jq. Results:
# bench/collect/results/snapshot-<UTC date>.txt
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NFILES=${1:-100000}
export MESHFS=${MESHFS:-$REPO/build/cli/meshfs}
# shellcheck source=../../tests/system/mesh_lib.sh
. "$REPO/tests/system/mesh_lib.sh"
mesh_init snapbench 3600 7810
out=$HERE/results/snapshot-$(date -u +%Y%m%d-%H%M).txt
mkdir -p "$HERE/results"

mesh_create a
mesh_mount a
A=${MNT[a]}
t0=$(now_ms)
for ((d = 0; d * 1000 < NFILES; d++)); do
    mkdir "$A/d$d"
    for ((i = d * 1000; i < (d + 1) * 1000 && i < NFILES; i++)); do
        printf 'file %d of the snapshot benchmark %*s\n' "$i" $((i % 64)) "" \
            >"$A/d$d/f$i"
    done
done
write_ms=$(($(now_ms) - t0))
log "A: $NFILES files written in $write_ms ms"

# everything A holds is settled: its collector folds the op log
deadline=$((SECONDS + 600))
while :; do
    js=$(mesh_stat a)
    left=$(jq .ops <<<"$js")
    folded=$(jq .ops_folded <<<"$js")
    ((folded >= NFILES && left < 1000)) && break
    ((SECONDS < deadline)) || fail "A did not fold its op log ($folded folded, $left left)"
    sleep 1
done
a_store=$(du -sb "${STORE[a]}" | cut -f1)
log "A: $folded ops folded, $left left in the log; store $a_store bytes"

# status_kb PID FIELD: a /proc/PID/status field in kB (0 if gone)
status_kb() {
    local k v _
    { while read -r k v _; do
        [[ $k == "$2:" ]] && { echo "$v"; return; }
    done <"/proc/$1/status"; } 2>/dev/null
    echo 0
}
# anon_peak PID FILE: the highest RssAnon of PID, sampled every 20 ms into
# FILE until FILE.stop exists or PID is gone
anon_peak() {
    local max=0 kb
    while [[ ! -e $2.stop ]]; do
        kb=$(status_kb "$1" RssAnon)
        ((kb > 0)) || break
        ((kb > max)) && max=$kb && echo "$max" >"$2"
        sleep 0.02
    done
}
peak=$T/anon-peak
a_anon0=$(status_kb "${NODE_PID[a]}" RssAnon)
anon_peak "${NODE_PID[a]}" "$peak.a" &
peak_a=$!

mesh_create b
t0=$(now_ms)
mesh_mount b
anon_peak "${NODE_PID[b]}" "$peak.b" &
peak_b=$!
snap_ms="" deadline=$((SECONDS + 1200))
# the longest `meshfs stat` on B until the snapshot is installed: the
# status call takes the sync engine's lock, so it measures how long the
# engine could not handle a message (an install on the sync thread held
# it for the whole install)
stat_max=0 stat_n=0
while :; do
    ts=$(now_ms)
    js=$(mesh_stat b)
    if [[ -z "$snap_ms" ]]; then
        d=$(($(now_ms) - ts))
        ((d > stat_max)) && stat_max=$d
        stat_n=$((stat_n + 1))
    fi
    if [[ -z "$snap_ms" ]] && (($(jq .catchup.snapshot.installed <<<"$js") >= 1)); then
        snap_ms=$(($(now_ms) - t0))
    fi
    [[ -n "$snap_ms" ]] && jq -e .in_sync <<<"$js" >/dev/null && break
    ((SECONDS < deadline)) || fail "B not in sync after 1200 s: $(jq -c .catchup <<<"$js")"
    sleep 0.2
done
sync_ms=$(($(now_ms) - t0))
touch "$peak.a.stop" "$peak.b.stop"
wait "$peak_a" "$peak_b"
a_anon_max=$(cat "$peak.a" 2>/dev/null || echo 0)
b_anon_max=$(cat "$peak.b" 2>/dev/null || echo 0)
n=$(find "${MNT[b]}" -type f | wc -l)
[[ $n -eq $NFILES ]] || fail "B shows $n files, want $NFILES"
mesh_wait_converged 600 a b
b_store=$(du -sb "${STORE[b]}" | cut -f1)
a_hwm=$(status_kb "${NODE_PID[a]}" VmHWM)
b_hwm=$(status_kb "${NODE_PID[b]}" VmHWM)

built=$(grep -o 'built a snapshot of [0-9]* bytes.* in [0-9]* ms' "${LOGF[a]}" | tail -1)
installed=$(grep -o 'installed a snapshot of [0-9]* bytes .*installed in [0-9]* ms' "${LOGF[b]}" | tail -1)
size=$(sed -E 's/built a snapshot of ([0-9]+) bytes.*/\1/' <<<"$built")
build_ms=$(sed -E 's/.* in ([0-9]+) ms$/\1/' <<<"$built")
fetch_ms=$(sed -E 's/.*fetched in ([0-9]+) ms.*/\1/' <<<"$installed")
inst_ms=$(sed -E 's/.*installed in ([0-9]+) ms.*/\1/' <<<"$installed")
{
    echo "# bench/collect/snapshot.sh $NFILES on $(hostname), $(date -u +%FT%TZ), $("$MESHFS" --version 2>/dev/null | head -1)"
    echo "# A: $NFILES files written through the mount in $write_ms ms; $folded ops folded ($left left)"
    printf '%-40s %s\n' "files" "$NFILES"
    printf '%-40s %s\n' "snapshot bytes" "$size"
    printf '%-40s %s\n' "snapshot bytes per file" "$((size / NFILES))"
    printf '%-40s %s\n' "build on A (ms)" "$build_ms"
    printf '%-40s %s\n' "fetch from first ask to last piece (ms)" "$fetch_ms"
    printf '%-40s %s\n' "install on B (ms)" "$inst_ms"
    printf '%-40s %s\n' "B mounted -> snapshot installed (ms)" "$snap_ms"
    printf '%-40s %s\n' "longest meshfs stat on B until then (ms)" "$stat_max ($stat_n calls)"
    printf '%-40s %s\n' "B mounted -> in sync, all content (ms)" "$sync_ms"
    printf '%-40s %s\n' "store of A (du bytes)" "$a_store"
    printf '%-40s %s\n' "store of B (du bytes)" "$b_store"
    printf '%-40s %s\n' "A RssAnon before B joined (kB)" "$a_anon0"
    printf '%-40s %s\n' "A RssAnon peak while B joined (kB)" "$a_anon_max"
    printf '%-40s %s\n' "B RssAnon peak until in sync (kB)" "$b_anon_max"
    printf '%-40s %s\n' "A VmHWM at the end (kB)" "$a_hwm"
    printf '%-40s %s\n' "B VmHWM at the end (kB)" "$b_hwm"
} | tee "$out"
log "results in $out"
