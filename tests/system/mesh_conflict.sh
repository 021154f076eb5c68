#!/usr/bin/env bash
# mesh_conflict: concurrent edits of one file keep both (DESIGN P7).
# Three nodes; partition {A, C} | {B}; A and then B rewrite doc.txt with
# different content; heal. Every node must show the newer edit (B's) under
# the name and exactly one conflict copy beside it, named
# doc.conflict-<A's node id>-<YYYYMMDD-HHMMSS of A's edit, UTC>.txt, with
# A's content; the same names on every node; `meshfs stat` counts the
# conflict and lists its path. Removing the copy on one node removes it
# everywhere and leaves doc.txt alone. In the same partition: an editor's
# atomic save (temp file + rename) on A against an in-place edit on B keeps
# both contents; concurrent chmod and setxattr: the later one wins.
# shellcheck disable=SC2012 # ls on names the test made (no odd characters)
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init conflict 240 7610
mesh_up a b c
A=${MNT[a]} B=${MNT[b]} C=${MNT[c]}

mkdir "$A/docs" "$A/other"
printf 'the base version\n' >"$A/docs/doc.txt"
printf 'notes, base\n' >"$A/other/notes.txt"
printf 'attrs\n' >"$A/other/attrs.txt"
setfattr -n user.who -v base "$A/other/attrs.txt"
mesh_wait_converged 60 a b c

mesh_partition "a c" "b"
t_a=$(date -u +%s)
printf 'edited on A\n' >"$A/docs/doc.txt"
# an editor's atomic save on A (temp file + rename over the name)
printf 'notes, saved atomically on A\n' >"$A/other/.notes.txt.swp"
mv "$A/other/.notes.txt.swp" "$A/other/notes.txt"
chmod 0600 "$A/other/attrs.txt"
setfattr -n user.who -v A "$A/other/attrs.txt"
# B's changes must be the newer ones by the clocks (the hybrid logical
# clock orders them; same machine, same wall clock): one second apart
sleep 1.1
printf 'edited on B, a longer line\n' >"$B/docs/doc.txt"
printf 'notes, edited in place on B\n' >>"$B/other/notes.txt" # (the file A replaced)
chmod 0604 "$B/other/attrs.txt"
setfattr -n user.who -v B "$B/other/attrs.txt"
sha_a=$(sha_str $'edited on A\n')
sha_b=$(sha_str $'edited on B, a longer line\n')
mesh_wait_file 30 c docs/doc.txt "$sha_a" # A's side of the partition
check_eq "B, partitioned, sees its own edit" "$sha_b" "$(sha_of "$B/docs/doc.txt")"
check_eq "no conflict copy on A before the heal" "" "$(mesh_conflict_names a docs doc .txt)"

mesh_heal
mesh_wait_converged 90 a b c

names=""
for n in a b c; do
    M=${MNT[$n]}
    check_eq "node $n: doc.txt holds the newer edit (B's)" "$sha_b" "$(sha_of "$M/docs/doc.txt")"
    copies=$(mesh_conflict_names "$n" docs doc .txt)
    [[ $(grep -c . <<<"$copies") -eq 1 ]] ||
        fail "node $n: expected exactly one conflict copy of doc.txt, found: [$(tr '\n' ' ' <<<"$copies")] in: $(ls -A "$M/docs" | tr '\n' ' ')"
    check_eq "node $n: the entries in docs/" "$(printf '%s\n' doc.txt "$copies" | LC_ALL=C sort | tr '\n' ' ')" \
        "$(ls -A "$M/docs" | LC_ALL=C sort | tr '\n' ' ')"
    check_eq "node $n: the conflict copy holds the other edit (A's)" "$sha_a" "$(sha_of "$M/docs/$copies")"
    if [[ -z "$names" ]]; then names=$copies; fi
    check_eq "node $n: the conflict copy's name is the same on every node" "$names" "$copies"
done
# doc.conflict-<node>-<YYYYMMDD-HHMMSS>.txt: the loser's node and time
[[ $names =~ ^doc\.conflict-([0-9a-f]{16})-([0-9]{8}-[0-9]{6})\.txt$ ]] ||
    fail "conflict copy name '$names' is not doc.conflict-<16 hex>-<YYYYMMDD-HHMMSS>.txt"
check_eq "the conflict copy names the losing node (A)" "${ID[a]}" "${BASH_REMATCH[1]}"
stamp=${BASH_REMATCH[2]}
t_name=$(date -u -d "${stamp:0:8} ${stamp:9:2}:${stamp:11:2}:${stamp:13:2}" +%s)
((t_name >= t_a - 2 && t_name <= t_a + 3)) ||
    fail "the conflict copy's time $stamp is not the time of A's edit ($(date -u -d "@$t_a" +%Y%m%d-%H%M%S))"

# the atomic save on A and the in-place edit on B: both kept, as notes.txt
# and one notes.conflict-*.txt (which one keeps the name is not asserted)
sha_save=$(sha_str $'notes, saved atomically on A\n')
sha_edit=$(sha_str $'notes, base\nnotes, edited in place on B\n')
for n in a b c; do
    M=${MNT[$n]}
    copies=$(mesh_conflict_names "$n" other notes .txt)
    [[ $(grep -c . <<<"$copies") -eq 1 ]] ||
        fail "node $n: expected notes.txt and one conflict copy, found: $(ls -A "$M/other" | tr '\n' ' ')"
    check_eq "node $n: notes.txt and its copy hold the atomic save and the in-place edit" \
        "$(printf '%s\n' "$sha_save" "$sha_edit" | sort | tr '\n' ' ')" \
        "$(for f in notes.txt "$copies"; do sha_of "$M/other/$f"; done | sort | tr '\n' ' ')"
    # attributes: last writer wins, per field
    check_eq "node $n: mode of attrs.txt (B's chmod is the later)" 604 "$(stat -c %a "$M/other/attrs.txt")"
    check_eq "node $n: user.who of attrs.txt (B's is the later)" B "$(getfattr --absolute-names --only-values -n user.who "$M/other/attrs.txt")"
done

for n in a b c; do
    js=$(mesh_stat "$n")
    check_eq "node $n: meshfs stat counts two conflicts (doc.txt, notes.txt)" 2 "$(jq -r .conflicts <<<"$js")"
    jq -e --arg p "$names" '.conflict_paths | map(select(endswith("docs/" + $p))) | length == 1' <<<"$js" >/dev/null ||
        fail "node $n: stat --json conflict_paths does not list docs/$names: $(jq -c .conflict_paths <<<"$js")"
done

# resolving: remove the copy on C; gone everywhere, doc.txt stays B's
rm "$C/docs/$names"
is_gone() { [[ ! -e "$1/$2" ]]; }
mesh_wait_each 30 "conflict copy removed" "a b" is_gone "docs/$names"
mesh_wait_converged 60 a b c
for n in a b c; do
    check_eq "node $n: after resolving, docs/ holds only doc.txt" "doc.txt" "$(ls -A "${MNT[$n]}/docs")"
    check_eq "node $n: doc.txt still holds B's edit" "$sha_b" "$(sha_of "${MNT[$n]}/docs/doc.txt")"
    check_eq "node $n: one conflict left (notes.txt)" 1 "$(mesh_stat "$n" | jq -r .conflicts)"
done
