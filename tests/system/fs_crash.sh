#!/usr/bin/env bash
# fs_crash: 100 rounds of kill -9 of the daemon while a writer fsyncs new
# files; after each round the store must open again with a plain
# `meshfs mount` on the same (dead) mount point, and every block that an
# fsync acknowledged, in every round so far, must read back intact.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_crash 900
helper_build
[[ $MFS_BACKEND != dir ]] || skip "MFS_BACKEND=dir has no daemon to kill"

ROUNDS=${CRASH_ROUNDS:-100}
STORE=$T/store
M=$T/mnt
ACK=$T/acks # written by the writer after each fsync returned
mfs_init "$STORE"
mfs_mount "$STORE" "$M"
mkdir "$M/crash"
: >"$ACK"
RANDOM=4242 # the kill points are reproducible

for round in $(seq 1 "$ROUNDS"); do
    calm=$((1 + RANDOM % 40))
    want=$(($(wc -l <"$ACK") + calm))
    "$T/fshelper" writer "$M/crash" "$ACK" "r$round" "$round" "$calm" 2>"$T/writer.err" &
    writer=$!
    # kill once the writer has had fsync acknowledge a few more blocks
    deadline=$((SECONDS + 60))
    while [[ $(wc -l <"$ACK") -lt $want ]]; do
        if ! kill -0 "$writer" 2>/dev/null; then
            fail "round $round: the writer stopped before the kill: $(cat "$T/writer.err")"
        fi
        ((SECONDS < deadline)) || fail "round $round: no fsync acknowledged within 60 s"
        sleep 0.005
    done
    mfs_kill9 "$M" "$MFS_PID"
    rc=0
    wait "$writer" || rc=$?
    [[ $rc -eq 3 ]] || fail "round $round: writer exit $rc after the kill (want 3, an I/O error): $(cat "$T/writer.err")"
    if [[ $MFS_BACKEND == meshfs ]]; then
        # the store is readable without a daemon, right after a crash
        out=$(mfs_cmd stat --store "$STORE" 2>&1) || fail "round $round: meshfs stat --store after kill -9: $out"
    fi
    mfs_mount "$STORE" "$M" # the dead mount point is reused directly
    res=$("$T/fshelper" verify "$M/crash" "$ACK") ||
        fail "round $round: acknowledged data lost (ok, lost = $res)"
    if ((round % 10 == 0)); then
        log "round $round: $res (acknowledged blocks intact, lost)"
        ls -la "$M/crash" >/dev/null || fail "round $round: cannot list the crash dir"
    fi
done

log "clean umount + mount, verify everything once more"
mfs_umount "$M"
mfs_mount "$STORE" "$M"
res=$("$T/fshelper" verify "$M/crash" "$ACK") || fail "after the last clean remount: lost data ($res)"
log "$(wc -l <"$ACK") acknowledged blocks over $ROUNDS kills: $res"
mfs_umount "$M"
