#!/usr/bin/env bash
# mesh_samename: two files created with one name concurrently both survive
# (DESIGN P7). Three nodes; partition {A, C} | {B}; A creates same.txt and
# the directory newdir/ (with a.txt), a second later B creates same.txt and
# newdir/ (with b.txt), each with other content. After the heal every node
# shows B's same.txt (the newer create keeps the name) and A's as
# same.conflict-<A's node>-<time>.txt; both directories survive the same
# way; every file is there with its content, the names are the same on
# every node, and the trees are identical.
# shellcheck disable=SC2012 # ls on names the test made (no odd characters)
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init samename 240 7640
mesh_up a b c
A=${MNT[a]} B=${MNT[b]}
printf 'something to start from\n' >"$A/base.txt"
mesh_wait_converged 60 a b c

mesh_partition "a c" "b"
printf 'same.txt made on A\n' >"$A/same.txt"
mkdir "$A/newdir"
printf 'a.txt in A newdir\n' >"$A/newdir/a.txt"
# B's creates must be the later ones by the clocks (same machine clock)
sleep 1.1
printf 'same.txt made on B, other content\n' >"$B/same.txt"
mkdir "$B/newdir"
printf 'b.txt in B newdir\n' >"$B/newdir/b.txt"
mesh_heal
mesh_wait_converged 90 a b c
sha_a=$(sha_str $'same.txt made on A\n')
sha_b=$(sha_str $'same.txt made on B, other content\n')

ref=""
for n in a b c; do
    M=${MNT[$n]}
    copies=$(mesh_conflict_names "$n" . same .txt)
    check_eq "node $n: same.txt keeps the newer create (B's)" "$sha_b" "$(sha_of "$M/same.txt")"
    [[ $(grep -c . <<<"$copies") -eq 1 ]] ||
        fail "node $n: expected one same.conflict-*.txt, found [$(tr '\n' ' ' <<<"$copies")] in: $(ls -A "$M" | tr '\n' ' ')"
    [[ $copies == same.conflict-${ID[a]}-* ]] || fail "node $n: the renamed file $copies does not name A (${ID[a]})"
    check_eq "node $n: $copies holds A's content" "$sha_a" "$(sha_of "$M/$copies")"
    dirs=$(cd "$M" && find . -mindepth 1 -maxdepth 1 -type d -name 'newdir*' -printf '%f\n' | LC_ALL=C sort)
    check_eq "node $n: newdir and one renamed newdir" 2 "$(grep -c . <<<"$dirs")"
    [[ $(head -1 <<<"$dirs") == newdir && $(tail -1 <<<"$dirs") =~ ^newdir\.conflict-${ID[a]}-[0-9]{8}-[0-9]{6}$ ]] ||
        fail "node $n: expected newdir and newdir.conflict-${ID[a]}-<time>, got: $(tr '\n' ' ' <<<"$dirs")"
    check_eq "node $n: newdir/ is B's" "b.txt" "$(ls -A "$M/newdir")"
    check_eq "node $n: the renamed newdir is A's" "a.txt" "$(ls -A "$M/$(tail -1 <<<"$dirs")")"
    check_eq "node $n: b.txt" "$(sha_str $'b.txt in B newdir\n')" "$(sha_of "$M/newdir/b.txt")"
    names="$copies $(tr '\n' ' ' <<<"$dirs")"
    [[ -n "$ref" ]] || ref=$names
    check_eq "node $n: the generated names are the same on every node" "$ref" "$names"
done
