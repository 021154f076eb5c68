#!/usr/bin/env bash
# mesh_remove: a member that is gone for good is removed, and collection
# resumes (issue 10, members). Three nodes, trash off.
#  - C dies (kill -9) and stays away while A overwrites a file: nothing is
#    collected on A or B, and `meshfs stat` names C.
#  - `meshfs remove` of C on A (by an id prefix): B learns of it, both
#    collect within seconds, and `meshfs members` shows C as removed on
#    both; removing this node itself is refused.
#  - C comes back on its old store: A and B refuse it (a file made on C
#    does not reach them, their logs say why), and tell it: C's log and
#    `meshfs stat` say that it was removed and how to take part again.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init remove 240 7730
mesh_create a b c
for n in a b c; do mesh_mount "$n" -o trash=0; done
mesh_wait_peers 30 a b c
A=${MNT[a]}
MB=1000000
removed_on() { "$MESHFS" members --json "${MNT[$1]}" | jq -e --arg c "${ID[c]}" 'map(select(.node == $c and .state == "removed")) | length == 1' >/dev/null; }

head -c $((2 * MB)) /dev/urandom >"$A/f"
mesh_wait_converged 60 a b c
mesh_kill9 c
for i in 1 2 3 4 5; do head -c $((2 * MB)) /dev/urandom >"$A/f"; done
mesh_wait_converged 60 a b
sleep 3
b=$(mesh_chunks a)
[[ $b -ge $((11 * MB)) ]] || fail "A collected while C was away: chunk bytes $b"
check_eq "held back by" "${ID[c]}" "$(mesh_stat a | jq -r '.collection.held_by.node // empty')"

expect_fail "cannot remove itself" "$MESHFS" remove "${ID[a]}" "$A"
"$MESHFS" remove "${ID[c]:0:6}" "$A" || fail "meshfs remove ${ID[c]:0:6} on A failed"
for n in a b; do
    wait_until 15 "node $n: collection resumed (chunk bytes <= 2 MB)" mesh_chunks_at_most $((2 * MB)) "$n"
    wait_until 15 "node $n: meshfs members shows C removed" removed_on "$n"
done
expect_fail "removed already" "$MESHFS" remove "${ID[c]}" "$A"

# C comes back on its old store: refused
mesh_mount c -o trash=0
printf 'from a removed node\n' >"${MNT[c]}/intruder"
sleep 3
for n in a b; do
    [[ ! -e "${MNT[$n]}/intruder" ]] || fail "node $n took a file from the removed node"
done
grep -q "refusing node ${ID[c]}" "${LOGF[a]}" || fail "A's log does not say it refuses C: $(tail -3 "${LOGF[a]}")"
c_told() { mesh_stat c | jq -e '.removed == true and .in_sync == false' >/dev/null; }
wait_until 15 "meshfs stat on C says it was removed" c_told
mesh_stat c | jq -r .sync | grep -q "removed from the mesh" || fail "C's stat does not say why: $(mesh_stat c | jq -r .sync)"
grep -q "this node (${ID[c]}) was removed from the mesh" "${LOGF[c]}" || fail "C's log does not say it was removed: $(tail -3 "${LOGF[c]}")"
log "ok"
