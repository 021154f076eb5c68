#!/usr/bin/env bash
# merge.sh: head-of-line blocking during a large merge (issue 11's target:
# "during a 100,000-op merge, a small file written on the sending node or
# on a third node reaches the others with p99 <= 50 ms, and the largest gap
# between two heartbeats a peer receives stays under 100 ms"). Three nodes
# A, B, C in a private network namespace (tests/system/mesh_lib.sh):
#   1. B is cut off from A and C; A creates FILES small files (100 B; four
#      ops each: the figure printed counts A's op log);
#   2. the partition heals and B merges them (pulls and applies the ops,
#      fetches the chunks); meanwhile small files (100-160 B) are written
#      on C (then, in a second round, on A) one at a time and each is timed
#      from close() until B reads its content. The samples that fall before
#      B shows all FILES files with their content are the ones that count; meanwhile `meshfs stat`
#      on B once a second: the longest wait B's transport had for a packet
#      from a peer (target: under 100 ms).
# Prints, per round: ops merged, how long the merge took, p50/p99/worst of
# the small files during it, and the longest wait; then how long after the
# heal the writing node and B saw each other alive again (failure
# detection: a node that declared B dead probes it, docs/WIRE.md) and the
# same figures for the samples written from then on (the merge proper).
#
#   bench/repl/merge.sh              # FILES=25000 (100,000 ops), ~4 min
#   FILES=10000 bench/repl/merge.sh
#   MESHFS=/path/to/meshfs bench/repl/merge.sh
# Needs root (namespaces, FUSE) and a build (build/ or MESHFS=).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FILES=${FILES:-25000}
N=${N:-400}
# shellcheck source=../../tests/system/mesh_lib.sh
. "$HERE/../../tests/system/mesh_lib.sh"
# shellcheck source=lat_lib.sh
. "$HERE/lat_lib.sh"
mesh_init merge 1500 7930
RB=$T/replbench
cc -O2 -o "$RB" "$HERE/replbench.c"
mesh_up a b c
A=${MNT[a]} B=${MNT[b]} C=${MNT[c]}
mkdir -p "$A/probec" "$A/probea"
echo seed >"$A/probec/edit"
echo seed >"$A/probea/edit"
mesh_wait_converged 60 a b c

ops_of() { mesh_stat "$1" | jq -r .ops; }
# sees_alive X Y: X's stat shows Y alive
sees_alive() {
    mesh_stat "$1" | jq -e --arg y "${ID[$2]}" \
        '[.peers[] | select(.id == $y and .state == "alive")] | length > 0' >/dev/null
}
# reconnected NODE: polls until B and NODE see each other alive again,
# then prints the time (monotonic seconds, as replbench's logs)
reconnected() {
    until sees_alive "$1" b && sees_alive b "$1"; do sleep 0.02; done
    "$RB" now
}
waits() {
    while :; do
        mesh_stat b | jq '[.peers[].longest_wait_ms] | max // 0' >>"$1" || true
        sleep 1
    done
}

out=()
for from in c a; do
    d=m$from
    mkdir "$A/$d"
    mesh_wait_converged 60 a b c
    mesh_partition "b" "a c"
    o0=$(ops_of a)
    t0=$(now_ms)
    "$RB" mkfiles "$A/$d" 0 "$FILES" 100 $((RANDOM + 1)) >/dev/null
    o1=$(ops_of a)
    log "round from ${from^^}: $FILES files, $((o1 - o0)) ops on A in $(($(now_ms) - t0)) ms while B was cut off"
    : >"$T/waits.$from"
    mesh_heal
    th=$("$RB" now)
    waits "$T/waits.$from" &
    wp=$!
    reconnected "$from" >"$T/reconnected.$from" &
    rp=$!
    src=${MNT[$from]}/probe$from
    "$RB" latency "$src" "$B/probe$from" "$N" 1000 10 $((RANDOM + 1)) "$T/lat.$from" >/dev/null &
    lp=$!
    # the merge is over when B shows every file with its content (B is
    # not "in sync" while the small files keep coming)
    while [[ $(find "$B/$d" -type f -size 100c | wc -l) -lt $FILES ]]; do
        sleep 0.1
    done
    td=$("$RB" now)
    kill "$lp" 2>/dev/null || true
    wait "$lp" 2>/dev/null || true
    sleep 1.2
    kill "$wp" 2>/dev/null || true
    wait "$wp" 2>/dev/null || true
    wait "$rp" 2>/dev/null || true
    read -r tr <"$T/reconnected.$from" || tr=$th
    read -r n1 p50 p99 max < <(lat_stats "$T/lat.$from" 0 "$td")
    read -r n3 q50 q99 qmax < <(lat_stats "$T/lat.$from" "$tr" "$td")
    gap=$(awk '$1 > m { m = $1 } END { printf "%.1f", m }' "$T/waits.$from")
    line=$(awk -v h="$th" -v d="$td" -v o=$((o1 - o0)) -v f="${from^^}" -v n="$n1" \
        -v p50="$p50" -v p99="$p99" -v mx="$max" -v g="$gap" \
        'BEGIN { printf "%d ops merged in %.1f s; small files from %s during it: %s samples, p50 %s ms, p99 %s ms, worst %s ms; longest wait on B %s ms", o, d - h, f, n, p50, p99, mx, g }')
    # what B showed at the last poll before the slow ones arrived: absent
    # (the op not applied yet), other-size/other-bytes (its content not yet)
    slow=$(awk -v d="$td" '$5 < d && $3 * 1000 > 50 { c[$4]++ } END { for (k in c) printf "%s %d, ", k, c[k] }' "$T/lat.$from")
    line+="; slow (> 50 ms) samples last saw: ${slow:-none}"
    line+=$(awk -v h="$th" -v r="$tr" -v n="$n3" -v p50="$q50" -v p99="$q99" -v mx="$qmax" \
        'BEGIN { printf "; %s and B saw each other again %.2f s after the heal; written since: %s samples, p50 %s ms, p99 %s ms, worst %s ms", "'"${from^^}"'", r - h, n, p50, p99, mx }')
    log "$line"
    out+=("$line")
    mesh_wait_converged 120 a b c
done
echo "merge.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), meshfs $("$MESHFS" --version 2>/dev/null | head -n1)"
for l in "${out[@]}"; do echo "  $l"; done
