#!/usr/bin/env bash
# mesh_chunks: a small edit of a big file moves little on the wire (issue
# 17, content-defined chunks). Two nodes; A holds a 50 MiB file of random
# bytes that B has fetched. Then, one at a time, each measured from the
# edit on A until B's tree equals A's and the wire is quiet again
# (mesh_wire_edit: IP bytes of every datagram, both directions):
#  - one byte inserted at the start, in the middle and at the end of the
#    file, in place (the bytes from the insertion on written again): each
#    moves at most 256 KB (256,000 bytes);
#  - a copy of the file under a new name with 16 bytes changed in its
#    middle: at most 256 KB plus those 16 bytes.
# Every figure is measured before the test fails, and the failure names
# each one over its limit. With fixed 64 KiB chunks an insertion before
# the end moves everything after it (about 55 MB at the start).
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init chunks 150 7750
mesh_up a b
A=${MNT[a]}
SIZE=$((50 << 20))
LIMIT=256000
CHANGE=16

mesh_wire_count
head -c "$SIZE" /dev/urandom >"$A/big"
mesh_wait_converged 60 a b
mesh_wire_quiet

# copy_change: big copied to copy, CHANGE bytes of the copy's middle changed
copy_change() {
    cp "$A/big" "$A/copy"
    head -c "$CHANGE" /dev/urandom >"$T/change"
    file_put "$A/copy" $((SIZE / 2 + 1000)) "$T/change"
}

declare -A GOT=()
EDITS=()
# measure NAME CMD...: GOT[NAME] = the bytes on the wire for CMD
measure() {
    local r
    r=$(mesh_wire_edit a b "${@:2}")
    GOT[$1]=${r%% *}
    EDITS+=("$1")
}
measure insert-start file_insert "$A/big" 0 x
measure insert-middle file_insert "$A/big" $((SIZE / 2)) x
measure insert-end file_insert "$A/big" $((SIZE + 2)) x
measure copy-with-change copy_change
cmp "$A/big" "${MNT[b]}/big" || fail "B's big differs from A's"
cmp "$A/copy" "${MNT[b]}/copy" || fail "B's copy differs from A's"

over=""
for e in "${EDITS[@]}"; do
    limit=$LIMIT
    [[ $e != copy-with-change ]] || limit=$((LIMIT + CHANGE))
    log "$e: ${GOT[$e]} bytes on the wire (limit $limit)"
    ((GOT[$e] <= limit)) || over+="$e moved ${GOT[$e]} bytes (limit $limit); "
done
[[ -z "$over" ]] || fail "bytes on the wire over the limit: ${over%; }"
