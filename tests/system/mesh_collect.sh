#!/usr/bin/env bash
# mesh_collect: collection waits for every member (issue 10, DESIGN P9).
# Three nodes, trash off (-o trash=0).
#  - C is cut off while A overwrites a file ten times and deletes another:
#    nothing is collected anywhere (A and B hold every version's chunks)
#    and `meshfs stat` on A names C as the member holding it back.
#  - After the heal C catches up; within seconds every store holds only
#    the last version's chunks, the deleted file stays deleted on C, and
#    the trees are identical.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init collect 300 7710
mesh_up a b c -- -o trash=0
A=${MNT[a]}
MB=1000000


head -c $((2 * MB)) /dev/urandom >"$A/f"
head -c $((3 * MB)) /dev/urandom >"$A/gone"
mesh_wait_converged 60 a b c

mesh_partition "a b" "c"
for i in $(seq 1 10); do
    head -c $((2 * MB)) /dev/urandom >"$T/f"
    cp "$T/f" "$A/f"
done
rm "$A/gone"
mesh_wait_converged 60 a b
sleep 3 # several collection passes
for n in a b; do
    b=$(mesh_chunks "$n")
    [[ $b -ge $((24 * MB)) ]] || fail "node $n collected while C was away: chunk bytes $b < 24 MB (11 versions of f, 2 MB each, and gone, 3 MB)"
done
held=$(mesh_stat a | jq -r '.collection.held_by.node // empty')
check_eq "meshfs stat on A: collection held back by" "${ID[c]}" "$held"
"$MESHFS" stat "$A" | grep -q "held back by ${ID[c]}" ||
    fail "meshfs stat (text) on A does not say who holds collection back: $("$MESHFS" stat "$A" | grep -A2 collection)"

mesh_heal
mesh_wait_converged 90 a b c
for n in a b c; do
    wait_until 15 "node $n: only the last version of f left (chunk bytes <= 2 MB)" mesh_chunks_at_most $((2 * MB)) "$n"
    cmp "$T/f" "${MNT[$n]}/f" || fail "node $n: f is not the last version"
    [[ ! -e "${MNT[$n]}/gone" ]] || fail "node $n: the deleted file came back"
done
held=$(mesh_stat a | jq -r '.collection.held_by // "none"')
check_eq "meshfs stat on A after the heal: held back by" none "$held"
log "ok: $(for n in a b c; do printf '%s %s B; ' "$n" "$(mesh_chunks "$n")"; done)"
