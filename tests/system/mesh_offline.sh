#!/usr/bin/env bash
# mesh_offline: a node that was away catches up without undoing anything
# (DESIGN P2, P9, P12). Three nodes.
#  - C is unmounted (cleanly); meanwhile A deletes a directory tree,
#    renames and edits files, B creates one. When C comes back, the deleted
#    files stay deleted (C does not bring them back), and C shows the
#    renames, the edit and the new file.
#  - A, cut off from both others, writes a file with fsync and is killed -9
#    before it could send anything. After the heal and a restart of A on
#    its store, that file reaches B and C intact.
# shellcheck disable=SC2012 # ls on names the test made (no odd characters)
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init offline 240 7680
mesh_up a b c
A=${MNT[a]} B=${MNT[b]}

mkdir -p "$A/old/sub" "$A/keep"
for i in 1 2 3; do printf 'old %s\n' "$i" >"$A/old/sub/f$i"; done
printf 'two\n' >"$A/keep/two.txt"
printf 'three\n' >"$A/keep/three.txt"
mesh_wait_converged 60 a b c

mesh_umount c
rm -r "$A/old"
mv "$A/keep/two.txt" "$A/keep/two-renamed.txt"
printf 'three, edited while C was away\n' >>"$A/keep/three.txt"
printf 'four, made on B while C was away\n' >"$B/keep/four.txt"
mesh_wait_converged 60 a b

mesh_partition "a" "b c"
head -c 300000 /dev/urandom >"$T/five"
dd if="$T/five" of="$A/keep/five.bin" bs=64k conv=fsync status=none
mesh_kill9 a
mesh_heal
mesh_mount c
mesh_mount a
mesh_wait_converged 90 a b c

for n in a b c; do
    M=${MNT[$n]}
    [[ ! -e "$M/old" ]] || fail "node $n: the deleted directory old/ came back: $(find "$M/old" | tr '\n' ' ')"
    [[ -z "$(ls -A "$M/lost+found" 2>/dev/null)" ]] || fail "node $n: something landed in lost+found: $(ls -A "$M/lost+found" | tr '\n' ' ')"
    check_eq "node $n: keep/" "five.bin four.txt three.txt two-renamed.txt" \
        "$(find "$M/keep" -mindepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
    check_eq "node $n: the edit made while C was away" "$(sha_str $'three\nthree, edited while C was away\n')" "$(sha_of "$M/keep/three.txt")"
    cmp "$T/five" "$M/keep/five.bin" || fail "node $n: five.bin (fsync'd on A, then A killed) differs"
done
