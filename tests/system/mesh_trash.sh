#!/usr/bin/env bash
# mesh_trash: a delete or an overwrite that reached every machine can be
# undone (issue 10, the trash). Two nodes, the default trash (7 days).
#  - A makes a tree and overwrites one file; B sees it all. A removes the
#    tree with rm -rf. On B, `meshfs trash` lists every file, `meshfs
#    restore` brings the whole tree back, and A sees it again, byte for
#    byte.
#  - `meshfs restore --version 2` on B brings back the version before last
#    of the overwritten file, on both nodes (B never fetched it: it comes
#    from A's trash); --as restores another version beside it.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init trash 240 7720
mesh_up a b
A=${MNT[a]} B=${MNT[b]}

mkdir -p "$A/proj/src/deep" "$A/keep"
for f in a b c; do head -c $((RANDOM * 10)) /dev/urandom >"$A/proj/src/$f.c"; done
printf 'deep\n' >"$A/proj/src/deep/d.h"
printf 'readme\n' >"$A/proj/README"
printf 'first\n' >"$A/keep/notes"
printf 'second\n' >"$A/keep/notes"
printf 'third\n' >"$A/keep/notes"
mesh_wait_converged 60 a b
cp -a "$A/proj" "$T/proj.ref"

rm -rf "$A/proj"
mesh_wait_converged 60 a b
[[ ! -e "$B/proj" ]] || fail "B still shows the removed tree"
listed=$("$MESHFS" trash "$B" | grep -c ' deleted .* /proj/' || true)
check_eq "files of /proj listed by meshfs trash on B" 5 "$listed"
(cd "$B" && "$MESHFS" restore proj) || fail "meshfs restore proj on B failed"
mesh_wait_converged 60 a b
diff -r "$T/proj.ref" "$A/proj" || fail "the tree restored on B differs on A"

"$MESHFS" trash --json "$B/keep" | jq -e 'map(select(.path == "/keep/notes")) | length >= 2' >/dev/null ||
    fail "the overwritten versions of keep/notes are not listed: $("$MESHFS" trash "$B/keep")"
"$MESHFS" restore "$B/keep/notes" --version 2 || fail "restore --version 2 failed"
# the version of 7 bytes ("second\n"), by its number in the listing now
n=$("$MESHFS" trash --json "$B/keep" | jq -r 'map(select(.path == "/keep/notes" and .size == 7)) | .[0].version')
[[ $n =~ ^[0-9]+$ ]] || fail "the 7-byte version of keep/notes is not listed: $("$MESHFS" trash "$B/keep")"
"$MESHFS" restore "$B/keep/notes" --version "$n" --as "$B/keep/notes.before"
mesh_wait_converged 60 a b
check_eq "keep/notes on A after restoring version 2 (first) on B" first "$(cat "$A/keep/notes")"
check_eq "keep/notes.before on A" second "$(cat "$A/keep/notes.before")"
expect_fail "not in the trash" "$MESHFS" restore "$B/never-existed"
log "ok"
