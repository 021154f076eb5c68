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
#  - C rejoins (`meshfs join` on its old store): the old store is kept
#    aside unchanged, and once the new node has caught up, what only the
#    old one had (two files made while it was refused) reaches every node
#    under /lost+found/<old id>-<date>/, and nothing else does.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init remove 240 7730
mesh_up a b c -- -o trash=0
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

# C rejoins on its old store: what only it had is kept, in /lost+found
mkdir "${MNT[c]}/sub"
printf 'notes made while refused\n' >"${MNT[c]}/sub/notes"
expect_fail "is mounted; unmount it first" mfs_cmd join --store "${STORE[c]}" "$MESH_TOKEN"
mkdir "$T/junk" && : >"$T/junk/x"
expect_fail "is not empty; refusing" mfs_cmd join --store "$T/junk" "$MESH_TOKEN"
[[ -f "$T/junk/x" && ! -e "$T/junk/data.mdb" ]] || fail "a refused join changed $T/junk"
mesh_umount c
old=${ID[c]}
out=$(mfs_cmd join --store "${STORE[c]}" "$MESH_TOKEN") || fail "meshfs join on C's old store failed: $out"
grep -q "is kept, unchanged, in ${STORE[c]}.node-$old-" <<<"$out" || fail "join does not say where the old store is: $out"
aside=$(compgen -G "${STORE[c]}.node-$old-*") || fail "the old store was not set aside: $(ls "$T")"
[[ -f "$aside/data.mdb" ]] || fail "the old store lost its data: $(ls "$aside")"
ID[c]=$(mfs_cmd stat --json --store "${STORE[c]}" | jq -r .node)
[[ ${ID[c]} != "$old" ]] || fail "the new store kept the old node id"
mesh_mount c -o trash=0
kept_on() {
    local d
    d=$(compgen -G "${MNT[$1]}/lost+found/$old-*") &&
        [[ "$(cat "$d/intruder")" == "from a removed node" ]] &&
        [[ "$(cat "$d/sub/notes")" == "notes made while refused" ]]
}
for n in a b c; do wait_until 60 "node $n: C's own changes in /lost+found/$old-*" kept_on "$n"; done
d=$(compgen -G "$A/lost+found/$old-*")
check_eq "what was kept" "intruder sub sub/notes" "$(cd "$d" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
[[ ! -e "$A/intruder" ]] || fail "the refused file reached A's root"
mesh_stat c | jq -r .rejoin | grep -q "kept 2 file(s) of node $old" || fail "C's stat does not say what was kept: $(mesh_stat c | jq -r .rejoin)"
[[ -f "${STORE[c]}/rejoined" && ! -e "${STORE[c]}/rejoin" ]] || fail "C's store does not mark the rejoin done: $(ls "${STORE[c]}")"
mesh_wait_converged 60 a b c
log "ok"
