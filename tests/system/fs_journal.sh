#!/usr/bin/env bash
# fs_journal: with stderr connected to the journal (systemd's JOURNAL_STREAM
# names it), `meshfs mount -f` sends each log line to the journal with its
# priority and fields (issue 14): MESSAGE, PRIORITY, MESHFS_STORE,
# MESHFS_MOUNT, MESHFS_NODE, and MESHFS_PATH / MESHFS_PEER when the line
# names a path or another node (meshfs remove of a made-up id names one). A fake journal (fshelper notify bound at
# /run/systemd/journal/socket in a private mount namespace: nothing on the
# host changes) takes the datagrams. Without the journal socket the lines
# go to stderr as usual, with their level.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_journal 120
[[ $MFS_BACKEND == meshfs ]] || skip "only meshfs has a daemon"
command -v unshare >/dev/null || skip "unshare is missing"
helper_build
mfs_init "$T/store"
mkdir -p "$T/mnt"

# in a private mount namespace: a tmpfs on /run with the fake journal
run_ns() {
    unshare -m --propagation private env T="$T" MESHFS="$MESHFS" JOURNAL="$1" bash -c '
        set -e
        mount -t tmpfs tmpfs /run
        if [[ $JOURNAL == yes ]]; then
            mkdir -p /run/systemd/journal
            "$T/fshelper" notify /run/systemd/journal/socket "$T/journal.log" &
            L=$!
            for _ in $(seq 50); do [[ -S /run/systemd/journal/socket ]] && break; sleep 0.1; done
        fi
        : >"$T/err"
        JOURNAL_STREAM=$(stat -c %d:%i "$T/err") "$MESHFS" mount -f --store "$T/store" \
            --listen 127.0.0.1:0 "$T/mnt" 2>>"$T/err" &
        D=$!
        for _ in $(seq 100); do "$MESHFS" stat --json "$T/mnt" 2>/dev/null | grep -q "\"daemon\":true" && break; sleep 0.1; done
        echo hi >"$T/mnt/f"
        # a line that names another node (the journal gets MESHFS_PEER)
        [[ $JOURNAL != yes ]] || "$MESHFS" remove 0123456789abcdef "$T/mnt" >/dev/null
        "$MESHFS" umount "$T/mnt" >/dev/null
        wait $D
        [[ -z ${L:-} ]] || kill $L
    '
}
: >"$T/journal.log"
run_ns yes || fail "the daemon under the fake journal failed: $(cat "$T/err")"
node=$(mfs_cmd stat --json --store "$T/store" | jq -r .node)
grep -q "MESSAGE=sync: node $node listening on 127.0.0.1:" "$T/journal.log" ||
    fail "no journal entry for the listening line: $(head -5 "$T/journal.log")"
line=$(grep -m1 "MESSAGE=mount: .* shutting down" "$T/journal.log") || fail "no journal entry for the shutdown"
for f in "PRIORITY=5" "MESHFS_STORE=$T/store" "MESHFS_MOUNT=$T/mnt" "MESHFS_NODE=$node" "MESHFS_PATH=$T/store"; do
    [[ $line == *"$f "* || $line == *"$f" ]] || fail "the shutdown entry lacks $f: $line"
done
line=$(grep -m1 "MESSAGE=control: node 0123456789abcdef removed" "$T/journal.log") ||
    fail "no journal entry for the removal: $(grep MESSAGE=control "$T/journal.log")"
[[ $line == *"MESHFS_PEER=0123456789abcdef"* ]] || fail "the removal's entry lacks MESHFS_PEER: $line"
[[ $(grep -c "MESHFS_PEER=" "$T/journal.log") == 1 ]] ||
    fail "MESHFS_PEER on a line that names no other node: $(grep MESHFS_PEER= "$T/journal.log" | grep -v 0123456789abcdef | head -1)"
[[ ! -s "$T/err" ]] || fail "lines went to stderr beside the journal: $(head -3 "$T/err")"
log "journal entries: $(wc -l <"$T/journal.log"), with PRIORITY and the MESHFS_* fields; stderr empty"

# no journal socket: stderr, with levels
run_ns no || fail "the daemon without a journal failed: $(cat "$T/err")"
grep -q "^meshfs: notice: mount: .* shutting down" "$T/err" ||
    fail "without the journal the lines did not reach stderr with their level: $(head -3 "$T/err")"
! grep -qv "^meshfs: [a-z]*: " "$T/err" || fail "a stderr line without a level: $(grep -v '^meshfs: [a-z]*: ' "$T/err" | head -2)"
log "no journal socket: stderr, with levels"
