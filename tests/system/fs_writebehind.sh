#!/usr/bin/env bash
# fs_writebehind: a WRITE is answered once the daemon has copied it, and
# applied to the store behind it (fs/wb.c); nothing a user sees may tell.
#  1. Reads that reach the daemon while writes are queued see them: a
#     writer writes 256 MiB in order, 1 MiB and a 100-byte overwrite at a
#     time, and reads each MiB back at once through an O_DIRECT
#     descriptor (fshelper wbread); every read must show both writes. The
#     same on a mount with -o writethrough (no write-behind).
#  2. A write that fails after it was answered is not lost silently: with
#     the store on a 160 MB file system and write-behind kept on however
#     little space is left (MESHFS_WB_FREE_MIN=0), writing 400 MB fails
#     (at a write, the close or the fsync: dd exits non-zero) with
#     ENOSPC; once the file is deleted a new file writes, survives a
#     remount and reads back whole. By default (less than 1 GiB free:
#     writes are direct) and with -o writethrough, the write(2) itself
#     fails. `meshfs stat` counts the writes queued and those that failed
#     after their answer.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_writebehind 300
helper_build
[[ $MFS_BACKEND == meshfs ]] || skip "write-behind is meshfs's"
MB=$((1024 * 1024))

# ---- 1. reads see queued writes
S=$T/store
M=$T/mnt
mfs_init "$S"
for opts in "" writethrough; do
    mfs_mount "$S" "$M" "$opts"
    "$T/fshelper" wbread "$M/f" 256 >"$T/wbread.out" ||
        fail "${opts:-default}: reads missed queued writes: $(head -5 "$T/wbread.out")"
    queued=$(mfs_cmd stat --json "$M" | jq -r .writes_behind)
    log "${opts:-default}: 256 reads right after their writes saw them; $queued writes queued"
    if [[ -z $opts ]]; then
        [[ $queued -gt 0 ]] || fail "default: no write was queued (meshfs stat: writes_behind $queued)"
    else
        [[ $queued -eq 0 ]] || fail "writethrough: $queued writes were queued"
    fi
    mfs_umount "$M"
done

# ---- 2. a full disk
FS=$T/fs
small_ext4 "$FS" 160M
head -c $((400 * MB)) /dev/urandom >"$T/rand"
S2=$FS/store
M2=$T/m2
mfs_init "$S2"
full_disk() { # full_disk LABEL OPTS: a 400 MB write must fail with ENOSPC
    local rc=0
    mfs_mount "$S2" "$M2" "trash=0${2:+,$2}"
    dd if="$T/rand" of="$M2/big" bs=1M conv=fsync 2>"$T/dd.err" || rc=$?
    ((rc != 0)) || fail "$1: 400 MB written to a 160 MB file system without an error"
    grep -q "No space left on device" "$T/dd.err" ||
        fail "$1: the write that failed did not say ENOSPC: $(cat "$T/dd.err")"
    late=$(mfs_cmd stat --json "$M2" | jq -r .writes_failed_late)
    log "$1: $(grep -m1 'No space' "$T/dd.err"); writes that failed after their answer: $late"
    rm -f "$M2/big"
    wait_until 20 "$1: the deleted file's chunks freed" chunk_bytes_below $((30 * MB)) "$M2"
    # and their pack files given back to the file system
    wait_until 20 "$1: 40 MB free again on the store's file system" fs_free_above $((40 * MB)) "$FS"
    head -c $((20 * MB)) "$T/rand" >"$T/again"
    cp "$T/again" "$M2/again" || fail "$1: a write after the full disk failed"
    sync "$M2/again"
    mfs_umount "$M2"
    mfs_mount "$S2" "$M2"
    cmp "$T/again" "$M2/again" || fail "$1: the file written after the full disk does not read back after a remount"
    rm -f "$M2/again"
    mfs_umount "$M2"
}
fs_free_above() { # fs_free_above BYTES DIR
    (($(stat -f -c '%a * %S' "$2") > $1))
}
chunk_bytes_below() { # chunk_bytes_below BYTES MNT
    local b
    b=$(mfs_cmd stat --json "$2" | jq -r .chunk_bytes)
    [[ -n "$b" && "$b" != null && "$b" -lt "$1" ]]
}
MESHFS_WB_FREE_MIN=0 full_disk "write-behind on a full disk"
[[ $late -gt 0 ]] || fail "write-behind on a full disk: meshfs stat counts no write that failed after its answer"
full_disk "default (direct below 1 GiB free)"
# the write(2) itself fails when writes are direct: dd says "error writing"
grep -q "error writing" "$T/dd.err" || fail "direct writes: the error came at $(cat "$T/dd.err"), not at write(2)"
full_disk "writethrough" writethrough
grep -q "error writing" "$T/dd.err" || fail "writethrough: the error came at $(cat "$T/dd.err"), not at write(2)"
log "ok"
