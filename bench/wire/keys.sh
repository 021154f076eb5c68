#!/bin/bash
# bench/wire/keys.sh TOOL [MB] [ROUNDS] - what per-node keys cost the
# transport (issue 13: at most 5% of bulk throughput and of small-message
# latency): the same two nodes as run.sh's 0% loss case (A sends MB
# megabytes of 64 KiB bulk messages to B plus a 16-byte urgent probe every
# 10 ms) with the mesh key and with per-node keys (--ident: a Noise IK
# handshake, session keys), alternating, ROUNDS times each; then, on an
# idle link, 500 probes 2 ms apart (small-message latency). Prints each
# run and the medians of MB/s and probe p50/p99.
set -u
TOOL=${1:?usage: keys.sh TOOL [MB] [ROUNDS]}
MB=${2:-300}
ROUNDS=${3:-5}
# a namespace and a temp dir, both removed on every exit (sync_lib.sh)
# shellcheck source=../../tests/system/sync_lib.sh
. "$(dirname "$0")/../../tests/system/sync_lib.sh"
sync_setup bench-keys
"$TOOL" keygen "$DIR"
X="ip netns exec $NS"
one() { # MODE: one run; appends "MODE MB/s p50 p99" to $DIR/runs
    local a=() b=()
    if [ "$1" = ident ]; then a=(--ident 1); b=(--ident 2); fi
    $X "$TOOL" node --key "$DIR" "${b[@]}" --listen 127.0.0.1:7101 --members 1 \
        --expect-bulk $((MB * 1000000)) --timeout 120 --hold 1 >"$DIR/b.log" 2>&1 &
    local B=$!
    $X "$TOOL" node --key "$DIR" "${a[@]}" --listen 127.0.0.1:7102 \
        --peer 127.0.0.1:7101 --members 1 --bulk $((MB * 1000000)) \
        --msg-size 65536 --probe-ms 10 --timeout 120 >"$DIR/a.log" 2>&1
    wait $B
    local bw p50 p99
    bw=$(sed -n 's/^BULK .* = \([0-9.]*\) MB\/s/\1/p' "$DIR/b.log")
    p50=$(sed -n 's/^PROBES .*p50_ms=\([0-9.]*\).*/\1/p' "$DIR/b.log")
    p99=$(sed -n 's/^PROBES .*p99_ms=\([0-9.]*\).*/\1/p' "$DIR/b.log")
    printf '%-6s %8s MB/s  probe p50 %6s ms  p99 %6s ms\n' "$1" "${bw:-?}" "${p50:-?}" "${p99:-?}"
    echo "$1 ${bw:-0} ${p50:-0} ${p99:-0}" >>"$DIR/runs"
}
idle() { # MODE: 500 probes on an idle link; appends "MODE p50 p99" to $DIR/idle
    local a=() b=()
    if [ "$1" = ident ]; then a=(--ident 1); b=(--ident 2); fi
    $X "$TOOL" node --key "$DIR" "${b[@]}" --listen 127.0.0.1:7101 --members 1 \
        --timeout 60 --hold 3 >"$DIR/b.log" 2>&1 &
    local B=$!
    $X "$TOOL" node --key "$DIR" "${a[@]}" --listen 127.0.0.1:7102 \
        --peer 127.0.0.1:7101 --members 1 --probes 500 --probe-ms 2 \
        --timeout 60 >"$DIR/a.log" 2>&1
    wait $B
    local p50 p99
    p50=$(sed -n 's/^PROBES .*p50_ms=\([0-9.]*\).*/\1/p' "$DIR/b.log")
    p99=$(sed -n 's/^PROBES .*p99_ms=\([0-9.]*\).*/\1/p' "$DIR/b.log")
    printf '%-6s idle    probe p50 %6s ms  p99 %6s ms\n' "$1" "${p50:-?}" "${p99:-?}"
    echo "$1 ${p50:-0} ${p99:-0}" >>"$DIR/idle"
}
for ((r = 1; r <= ROUNDS; r++)); do
    one mesh
    one ident
done
for ((r = 1; r <= ROUNDS; r++)); do
    idle mesh
    idle ident
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for m in mesh ident; do
    printf 'median %-6s %s MB/s  probe p50 %s ms  p99 %s ms\n' "$m" \
        "$(awk -v m=$m '$1 == m { print $2 }' "$DIR/runs" | median)" \
        "$(awk -v m=$m '$1 == m { print $3 }' "$DIR/runs" | median)" \
        "$(awk -v m=$m '$1 == m { print $4 }' "$DIR/runs" | median)"
    printf 'median %-6s idle probe p50 %s ms  p99 %s ms\n' "$m" \
        "$(awk -v m=$m '$1 == m { print $2 }' "$DIR/idle" | median)" \
        "$(awk -v m=$m '$1 == m { print $3 }' "$DIR/idle" | median)"
done
