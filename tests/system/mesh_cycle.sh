#!/usr/bin/env bash
# mesh_cycle: concurrent renames keep the tree a tree (DESIGN P8).
# Three nodes; partition {A, C} | {B}. A moves x into y and then z into x;
# a second later B moves y into x and z into y. Of the two moves that
# would make a cycle the later (B's y -> x) is dropped; of the two moves of
# z the later (B's, into y) wins. After the heal every node must show
# y/x/... and y/z, no cycle (neither directory inside itself, find sees no
# loop), every file still reachable exactly once with its content, and
# identical trees.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init cycle 240 7630
mesh_up a b c
A=${MNT[a]} B=${MNT[b]}

mkdir -p "$A/x/sub" "$A/y" "$A/z"
printf 'in x\n' >"$A/x/fx.txt"
printf 'deep in x\n' >"$A/x/sub/deep.txt"
printf 'in y\n' >"$A/y/fy.txt"
printf 'in z\n' >"$A/z/fz.txt"
mesh_wait_converged 60 a b c

mesh_partition "a c" "b"
mv "$A/x" "$A/y/"   # y/x
mv "$A/z" "$A/y/x/" # y/x/z
# B's moves must be the later ones by the clocks (same machine clock)
sleep 1.1
mv "$B/y" "$B/x/" # x/y: with A's move, a cycle
mv "$B/z" "$B/x/y/" # x/y/z
mesh_heal
mesh_wait_converged 90 a b c

for n in a b c; do
    M=${MNT[$n]}
    check_eq "node $n: top level" "y" "$(find "$M" -mindepth 1 -maxdepth 1 ! -name lost+found -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
    [[ -d "$M/y/x" ]] || fail "node $n: y/x missing (A's move, the earlier one, must stay)"
    [[ ! -e "$M/x" && ! -e "$M/y/x/y" ]] || fail "node $n: B's move of y into x was not dropped"
    [[ -d "$M/y/z" ]] || fail "node $n: z is not in y (B's move of z, the later one, must win): $(find "$M" -name z)"
    err=$(find "$M" 2>&1 >/dev/null) || fail "node $n: find failed: $err"
    [[ -z "$err" ]] || fail "node $n: find complains (a loop?): $err"
    for d in x y z; do
        check_eq "node $n: directories named $d" 1 "$(find "$M" -type d -name "$d" | wc -l)"
    done
    check_eq "node $n: files" "y/fy.txt y/x/fx.txt y/x/sub/deep.txt y/z/fz.txt" \
        "$(cd "$M" && find . -type f ! -path './lost+found/*' | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
    check_eq "node $n: y/x/sub/deep.txt" "$(sha_str $'deep in x\n')" "$(sha_of "$M/y/x/sub/deep.txt")"
    check_eq "node $n: y/z/fz.txt" "$(sha_str $'in z\n')" "$(sha_of "$M/y/z/fz.txt")"
done
