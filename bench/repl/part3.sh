#!/usr/bin/env bash
# part3.sh: issue 11's partition target: "after a partition with thousands
# of changes on each side, at 30% loss, three nodes converge within 5 s of
# the heal". Three nodes A, B, C in a private network namespace
# (tests/system/mesh_lib.sh), LOSS% of every datagram dropped throughout;
# each round:
#   1. a base set of N files (1 KiB) written on A, on all three;
#   2. A cut off from B and C for PART_S s; meanwhile A rewrites the first
#      half of the base set and creates N/2 files, B rewrites the second
#      half and creates N/2 (N changes per side, no conflicts; C gets B's);
#   3. heal (the loss stays): the time from the heal to the first check at
#      which all three report in sync, see each other alive and their
#      trees are equal (stat polled every 100 ms; the tree comparison, done
#      only once all are in sync, is not counted).
# Prints one line per round and the median.
#
#   bench/repl/part3.sh                  # N=2000, LOSS=30, 3 rounds (~3 min)
#   N=1000 LOSS=0 ROUNDS=1 bench/repl/part3.sh
#   MESHFS=/path/to/meshfs bench/repl/part3.sh
# Needs root (namespaces, FUSE) and a build (build/ or MESHFS=).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${N:-2000}
LOSS=${LOSS:-30}
ROUNDS=${ROUNDS:-3}
PART_S=${PART_S:-10}
# shellcheck source=../../tests/system/mesh_lib.sh
. "$HERE/../../tests/system/mesh_lib.sh"
mesh_init part3 $((600 + ROUNDS * 300)) 7960
mesh_up a b c
A=${MNT[a]} B=${MNT[b]}

# write_set DIR FROM TO TAG: files DIR/fFROM..fTO-1 of 1 KiB naming TAG
write_set() {
    local i pad
    pad=$(printf '%*s' 1000 '' | tr ' ' x)
    for ((i = $2; i < $3; i++)); do
        printf '%s %s %s\n' "$4" "$i" "$pad" >"$1/f$i" || return 1
    done
}

# all_in_sync: every node sees the others alive and says in sync
all_in_sync() { mesh_in_sync_all a b c >/dev/null; }

trees_equal() {
    mesh_manifest a "$T/m.a"
    mesh_manifest b "$T/m.b"
    mesh_manifest c "$T/m.c"
    cmp -s "$T/m.a" "$T/m.b" && cmp -s "$T/m.a" "$T/m.c"
}

results=()
mesh_loss "$LOSS"
for ((r = 1; r <= ROUNDS; r++)); do
    d=p$r
    mkdir "$A/$d"
    write_set "$A/$d" 0 "$N" base
    mesh_wait_converged 300 a b c
    mesh_partition "a" "b c"
    t0=$(now_ms)
    write_set "$A/$d" 0 $((N / 2)) a-edit &
    pa=$!
    write_set "$A/$d" "$N" $((N + N / 2)) a-new &
    pa2=$!
    write_set "$B/$d" $((N / 2)) "$N" b-edit &
    pb=$!
    write_set "$B/$d" $((N * 2)) $((N * 2 + N / 2)) b-new &
    pb2=$!
    wait "$pa" "$pa2" "$pb" "$pb2"
    t1=$(now_ms)
    left=$((PART_S * 1000 - (t1 - t0)))
    ((left > 0)) && sleep "$(awk -v l="$left" 'BEGIN { printf "%.3f", l / 1000 }')"
    log "round $r: $N changes on each side in $(((t1 - t0))) ms; partitioned for $((PART_S * 1000 > t1 - t0 ? PART_S : (t1 - t0) / 1000)) s"
    mesh_heal
    th=$(now_ms)
    conv=""
    while (($(now_ms) - th < 120000)); do
        if all_in_sync; then
            tc=$(now_ms)
            if trees_equal; then
                conv=$((tc - th))
                break
            fi
            log "round $r: all in sync $((tc - th)) ms after the heal, but the trees differ"
        fi
        sleep 0.1
    done
    [[ -n $conv ]] || fail "round $r: not converged 120 s after the heal"
    log "round $r: converged $(awk -v c="$conv" 'BEGIN { printf "%.2f", c / 1000 }') s after the heal ($(wc -l <"$T/m.a") entries)"
    results+=("$conv")
done
mesh_loss 0
median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] / 1000 }')
echo "part3.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), meshfs $("$MESHFS" --version 2>/dev/null | head -n1)"
echo "  3 nodes, {A} | {B C} for ${PART_S} s, $N changes on A and on B, ${LOSS}% loss: converged after the heal in" \
    "$(printf '%s ' "${results[@]}" | awk '{ for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? ", " : ""), $i / 1000 }') s (median $median s; target 5 s)"
