#!/usr/bin/env bash
# fs_sparse: a 4 GiB sparse file: truncate up, a few writes (aligned,
# unaligned, across a chunk boundary, at the very end), a full read compared
# against the same file on the native fs, growth past 4 GiB, shrinking into a
# written area and growing back (zeros, not old data). The store must not
# hold the holes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_sparse 900

mfs_up
GIB=$((1024 * 1024 * 1024))
F=$M/sparse
N=$T/native-sparse

both() { # both CMD-WITH-@F@: run on the mount and on the native copy
    eval "${1//@F@/\"\$F\"}"
    eval "${1//@F@/\"\$N\"}"
}
pokes() { # pokes OFFSET...: write 4 KiB of the offset's own bytes there
    local off
    for off in "$@"; do
        both "printf '%-4095s\\n' 'block at $off' | dd of=@F@ oflag=seek_bytes seek=$off conv=notrunc status=none"
    done
}
same_region() { # same_region OFFSET LEN
    check_eq "bytes $1+$2" \
        "$(dd if="$N" iflag=skip_bytes,count_bytes skip="$1" count="$2" bs=1M status=none | sha256sum)" \
        "$(dd if="$F" iflag=skip_bytes,count_bytes skip="$1" count="$2" bs=1M status=none | sha256sum)"
}

log "truncate to 4 GiB and poke"
both 'truncate -s 4G @F@'
check_eq "size" "$((4 * GIB))" "$(stat -c %s "$F")"
pokes 0 $((GIB - 1)) $((2 * GIB + 12345)) $((65536 * 3 - 100)) $((4 * GIB - 4096))
check_eq "size after pokes" "$((4 * GIB))" "$(stat -c %s "$F")"
for off in 0 $((GIB - 1)) $((2 * GIB + 12345)) $((65536 * 3 - 100)) $((4 * GIB - 4096)); do
    same_region "$off" 4096
done
same_region $((3 * GIB)) $((8 * 1024 * 1024)) # a hole
store_kib=$(du -sk "$STORE" | cut -f1)
log "store holds ${store_kib} KiB; the file reports $(stat -c %b "$F") blocks"
[[ $store_kib -lt $((256 * 1024)) ]] || fail "store holds $store_kib KiB for a 4 GiB file with 20 KiB of data"

log "read all 4 GiB and compare with the native file"
t0=$SECONDS
cmp "$N" "$F" || fail "the 4 GiB sparse file differs from the native one"
log "read in $((SECONDS - t0)) s"

log "grow past 4 GiB, shrink into written data, grow back"
pokes $((5 * GIB))
check_eq "size after a write at 5 GiB" "$((5 * GIB + 4096))" "$(stat -c %s "$F")"
both "truncate -s $((4 * GIB - 2048)) @F@"
both 'truncate -s 4G @F@'
same_region $((4 * GIB - 8192)) 8192
same_region $((5 * GIB - 4096)) 0

log "persists across umount + mount"
mfs_umount "$M"
mfs_mount "$STORE" "$M"
check_eq "size after remount" "$((4 * GIB))" "$(stat -c %s "$F")"
for off in 0 $((GIB - 1)) $((2 * GIB + 12345)) $((65536 * 3 - 100)) $((4 * GIB - 8192)); do
    same_region "$off" 8192
done
rm "$F"
mfs_umount "$M"
