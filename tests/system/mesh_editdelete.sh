#!/usr/bin/env bash
# mesh_editdelete: an edit concurrent with a delete brings the file back
# (DESIGN P7). Three nodes; partition {A} | {B, C}.
#  - f.txt: B deletes it, then A rewrites it: after the heal f.txt is back
#    on every node with A's content.
#  - sub/g.txt: A rewrites it, then B removes all of sub/: after the heal
#    g.txt is back with A's content, in /lost+found (its directory is gone).
#  - a delete by a node that has seen the edit sticks: B deletes f.txt
#    again after the heal; it stays deleted everywhere.
# shellcheck disable=SC2012 # ls on names the test made (no odd characters)
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init editdelete 240 7620
mesh_up a b c
A=${MNT[a]} B=${MNT[b]}

mkdir "$A/sub"
printf 'f: the base version\n' >"$A/f.txt"
printf 'g: the base version\n' >"$A/sub/g.txt"
printf 'keep me\n' >"$A/keep.txt"
mesh_wait_converged 60 a b c

mesh_partition "a" "b c"
rm "$B/f.txt"
printf 'f: edited on A while B deleted it\n' >"$A/f.txt"
printf 'g: edited on A while B removed its directory\n' >"$A/sub/g.txt"
rm -r "$B/sub"
sha_f=$(sha_str $'f: edited on A while B deleted it\n')
sha_g=$(sha_str $'g: edited on A while B removed its directory\n')
is_gone() { [[ ! -e "$1/$2" ]]; }
mesh_wait_each 30 "f.txt deleted on B's side" "c" is_gone f.txt
mesh_wait_each 30 "sub deleted on B's side" "c" is_gone sub
check_eq "A still reads its edit during the partition" "$sha_f" "$(sha_of "$A/f.txt")"

mesh_heal
mesh_wait_converged 90 a b c
for n in a b c; do
    M=${MNT[$n]}
    [[ -f "$M/f.txt" ]] || fail "node $n: f.txt (edited on A, deleted on B) did not come back: $(ls -A "$M" | tr '\n' ' ')"
    check_eq "node $n: f.txt came back with A's edit" "$sha_f" "$(sha_of "$M/f.txt")"
    check_eq "node $n: keep.txt untouched" "$(sha_str $'keep me\n')" "$(sha_of "$M/keep.txt")"
    # g.txt: back in /lost+found (sub/ is gone), or in sub/ if sub came back
    found=$(find "$M" -name 'g.txt*' -type f)
    [[ $(grep -c . <<<"$found") -eq 1 ]] ||
        fail "node $n: expected g.txt back exactly once, found: [$(tr '\n' ' ' <<<"$found")]"
    check_eq "node $n: g.txt came back with A's edit" "$sha_g" "$(sha_of "$found")"
    case "${found#"$M"/}" in
    lost+found/*) ;;
    *) fail "node $n: g.txt came back at ${found#"$M"/}, expected in lost+found/ (its directory sub/ was deleted)" ;;
    esac
done
log "g.txt is back at ${found#"$M"/}"

# B has now seen A's edit: its delete sticks
rm "$B/f.txt"
mesh_wait_each 30 "f.txt deleted again" "a c" is_gone f.txt
mesh_wait_converged 60 a b c
for n in a b c; do
    [[ ! -e "${MNT[$n]}/f.txt" ]] || fail "node $n: f.txt came back after a delete that had seen the edit"
done
