#!/usr/bin/env bash
# hol.sh: head-of-line blocking between two mounts (issue 11's target: a
# small file written on the sending node during a bulk transfer reaches
# the other with p99 <= 50 ms). Two nodes in a private network namespace
# (tests/system/mesh_lib.sh: loopback addresses, no loss), then:
#   1. idle: N small files (100-160 B, written one at a time, 10-50 ms
#      apart), each timed from close() on A until B reads its content;
#   2. bulk: the same while A writes MIB MiB of random data (one file)
#      and B fetches it; the samples that fall while the transfer runs are
#      the ones that count (the rest are counted as after it). Meanwhile
#      `meshfs stat` on each node once a second: the longest wait either
#      transport had for a packet from the other (target: heartbeats and
#      acks never wait > 100 ms) and how long stat took.
# Prints p50, p99 and the worst of each, and how long the transfer took.
# Needs root (namespaces, FUSE) and a build (build/ or MESHFS=).
#
#   3. with NODES=3, a third node C in the mesh (it fetches the big files
#      too) and the same as 2. with the small files written on C.
#   bench/repl/hol.sh               # 1024 MiB, 400 samples (~1 min)
#   MIB=256 N=200 bench/repl/hol.sh
#   NODES=3 bench/repl/hol.sh       # and from a third node (~2 min)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MIB=${MIB:-1024}
N=${N:-400}
NODES=${NODES:-2} # 3: a third node C, and step 3 (small files from C)
# shellcheck source=../../tests/system/mesh_lib.sh
. "$HERE/../../tests/system/mesh_lib.sh"
# shellcheck source=lat_lib.sh
. "$HERE/lat_lib.sh"
mesh_init hol 900 7990
RB=$T/replbench
cc -O2 -o "$RB" "$HERE/replbench.c"
if [[ $NODES == 3 ]]; then mesh_up a b c; else mesh_up a b; fi
A=${MNT[a]} B=${MNT[b]}
mkdir -p "$A/idle" "$A/hol" "$A/hol3" "$A/big"
echo seed >"$A/idle/edit"
echo seed >"$A/hol/edit"
echo seed >"$A/hol3/edit"
mesh_wait 30 "the directories on B" test -s "$B/idle/edit" -a -s "$B/hol/edit" -a -s "$B/hol3/edit" -a -d "$B/big"
if [[ $NODES == 3 ]]; then
    mesh_wait 30 "the directories on C" test -s "${MNT[c]}/hol3/edit" -a -d "${MNT[c]}/big"
fi


log "1. idle link: $N samples"
"$RB" latency "$A/idle" "$B/idle" "$N" 1000 10 41 "$T/idle.log" >/dev/null
read -r n0 p50 p99 max < <(lat_stats "$T/idle.log" 0 1e12)
idle="idle link:      $n0 samples, p50 $p50 ms, p99 $p99 ms, worst $max ms"
log "$idle"

# waits NODE OUT: until killed, once a second, the longest wait NODE's
# transport had for a packet from its peer (acks late while data was in
# flight: a stalled thread on either side; the daemon keeps the longest of
# the last 10-20 s) and how long `meshfs stat` took, one line each
waits() {
    while :; do
        local t0 t1 w
        t0=$(now_ms)
        w=$(mesh_stat "$1" | jq '[.peers[].longest_wait_ms] | max // 0') || w=0
        t1=$(now_ms)
        echo "$w $((t1 - t0))" >>"$2"
        sleep 1
    done
}
# maxcol FILE COL: the largest value in column COL
maxcol() { awk -v c="$2" '$c > m { m = $c } END { printf "%.1f", m }' "$1"; }

# transfer STEP FROM LOGNAME BIGNAME SEED: a MIB MiB file of random data
# (SEED: each step's own, so no chunk is already there) written on A and
# fetched by B while N small files are written on node FROM (a or c) and
# timed until B reads them; sets $bulk, $xfer, $gaps
transfer() {
    local step=$1 from=$2 name=$3 big=$4 seed=$5 wa wb waiter writer t0 tclose st tdone
    local n1 p50 p99 max n2
    local src=${MNT[$from]}
    log "$step. during a $MIB MiB transfer A -> B, small files from ${from^^}: $N samples"
    : >"$T/waits.$name.a"
    : >"$T/waits.$name.b"
    waits a "$T/waits.$name.a" &
    wa=$!
    waits b "$T/waits.$name.b" &
    wb=$!
    "$RB" bigwait "$B/big/$big" "$MIB" "$seed" 600 >"$T/bigwait.$name" &
    waiter=$!
    "$RB" bigwrite "$A/big/$big" "$MIB" "$seed" >"$T/bigwrite.$name" &
    writer=$!
    sleep 0.2
    "$RB" latency "$src/$name" "$B/$name" "$N" 1000 10 42 "$T/$name.log" >/dev/null
    wait "$writer"
    wait "$waiter"
    sleep 1.2 # one more poll after the end
    kill "$wa" "$wb" 2>/dev/null || true
    wait "$wa" "$wb" 2>/dev/null || true
    read -r t0 tclose <"$T/bigwrite.$name"
    read -r st tdone _ <"$T/bigwait.$name"
    [[ $st == "done" ]] || fail "the $MIB MiB file was not complete on B: $st"
    read -r n1 p50 p99 max < <(lat_stats "$T/$name.log" 0 "$tdone")
    read -r n2 _ _ _ < <(lat_stats "$T/$name.log" "$tdone" 1e12)
    bulk="during transfer, from ${from^^}: $n1 samples, p50 $p50 ms, p99 $p99 ms, worst $max ms ($n2 more after it)"
    log "$bulk"
    xfer=$(awk -v a="$t0" -v c="$tclose" -v d="$tdone" -v m="$MIB" \
        'BEGIN { printf "write %.1f s, complete on B %.1f s after close, %.0f MB/s from the first write", c - a, d - c, m * 1048576 / 1e6 / (d - a) }')
    log "transfer: $xfer"
    gaps="longest wait for a peer's packet: A $(maxcol "$T/waits.$name.a" 1) ms, B $(maxcol "$T/waits.$name.b" 1) ms; \`meshfs stat\` took up to $(maxcol "$T/waits.$name.a" 2) / $(maxcol "$T/waits.$name.b" 2) ms"
    log "$gaps"
}

transfer 2 a hol f 7
bulk2=$bulk xfer2=$xfer gaps2=$gaps
if [[ $NODES == 3 ]]; then
    transfer 3 c hol3 f3 8
    bulk3=$bulk xfer3=$xfer gaps3=$gaps
fi
echo "hol.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), meshfs $("$MESHFS" --version 2>/dev/null | head -n1)"
echo "  $idle"
echo "  $bulk2"
echo "  transfer of $MIB MiB: $xfer2"
echo "  during it, $gaps2"
if [[ $NODES == 3 ]]; then
    echo "  $bulk3"
    echo "  transfer of $MIB MiB (to B and C): $xfer3"
    echo "  during it, $gaps3"
fi
