#!/usr/bin/env bash
# fs_collect: collection on a real mount (issue 10, DESIGN P9).
#  1. A 20 MB file written 20 times and then deleted, with -o trash=0: the
#     store's chunk bytes come down to one version within 5 s of the last
#     write, and to 0 within 5 s of the delete; the store directory on disk
#     (pack files and all) comes down to within 10 MB of its live data
#     within 5 s each time. An unlinked file that is still open keeps its
#     content while open. Files written the way git writes objects
#     (link(tmp, final) + unlink(tmp)) leave no tombstone of the removed
#     name: collection counts one per file within 5 s.
#  2. The default trash (7 days) keeps what was overwritten; bad trash
#     options are refused (the share itself: tests/unit/test_store_enospc.c).
#  3. A full disk is no trap: with the store on a small filesystem, writes
#     fail with ENOSPC; after deleting the files, a write of the same size
#     succeeds, umount succeeds, and the file reads back whole after a
#     remount.
# Chunk bytes live in pack files (store/pack.c) that collection deletes
# once empty; data.mdb itself keeps its size (LMDB reuses freed pages), and
# holds only metadata and small chunks (docs/ARCHITECTURE.md "Collection").
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_collect 400

chunk_bytes() { mfs_cmd stat --json "$1" | jq -r .chunk_bytes; }
tombstones() { mfs_cmd stat --json "$1" | jq -r .collection.tombstones; }
tombstones_at_least() { # tombstones_at_least N MNT
    local t
    t=$(tombstones "$2")
    [[ -n "$t" && "$t" != null && "$t" -ge "$1" ]]
}
store_size() { stat -c %s "$1/data.mdb"; }
# The bytes the store takes on disk: each file's blocks (so punched holes
# count as freed), but none past its end: ext4 keeps blocks beyond the end
# of a file that grew for as long as it is open (3.2 MB of them on LMDB's
# 4.3 MB data.mdb here, du 10.35 MB; gone at close), which is the
# filesystem's reserve, not the store's.
store_du() {
    find "$1" -type f -printf '%s %b\n' |
        awk '{ a = $2 * 512; s = int(($1 + 4095) / 4096) * 4096
               t += a < s ? a : s } END { printf "%d\n", t }'
}
du_at_most() { # du_at_most LIMIT STORE
    local b
    b=$(store_du "$2")
    [[ $b -le $1 ]]
}
file_at_most() { # file_at_most LIMIT FILE: its size <= LIMIT
    (($(stat -c %s "$2") <= $1))
}
at_most() { # at_most LIMIT MNT: chunk bytes <= LIMIT
    local b
    b=$(chunk_bytes "$2")
    [[ -n "$b" && "$b" != null && "$b" -le "$1" ]]
}
MB=1000000
# what a store's bytes on disk are, file by file, when a wait fails
# (size and allocated bytes; a failure in a CI run under load said only
# "du 118 MB when the wait began")
store_files() {
    echo "store files (bytes, allocated bytes) at the timeout:"
    find "$T" -path "$T/s*" -type f -printf '  %p %s %b\n' |
        awk '{ print $1, $2, $3 * 512 }'
}
WAIT_DUMP=store_files

# ---- 1. overwrites, then delete, trash off
S1=$T/s1
M1=$T/m1
mfs_init "$S1"
mfs_mount "$S1" "$M1" trash=0
for i in $(seq 1 20); do
    head -c $((20 * MB)) /dev/urandom >"$T/v"
    cp "$T/v" "$M1/big"
done
sync "$M1/big"
log "20 writes of 20 MB done; store file $(store_size "$S1") B"
wait_until 5 "chunk bytes down to one version (<= 21 MB)" at_most $((21 * MB)) "$M1"
# (30 s: in a CI rehearsal under load the pack's dead bytes were still
# allocated after 5 s, stop 38: du 31.0 MB, the pack 24.5 MB for 20 MB
# live; alone and beside two simulator runs it met 5 s in 9 of 9 runs;
# stop 39, beside the longer test_sync_sim: still 33 MB after 15 s, once
# in three rehearsals)
wait_until 30 "the store on disk within 10 MB of its 20 MB of live data (du when the wait began: $(store_du "$S1") B)" \
    du_at_most $((30 * MB)) "$S1"
cmp "$T/v" "$M1/big" || fail "the last version does not read back"
mfs_cmd stat "$M1" | grep -E 'chunk bytes|collection' >&2
log "longest write transaction of collection: $(mfs_cmd stat --json "$M1" | jq -r .collection.max_pause_us) us"

# writes that are not whole blocks go through the unpublished blocks'
# file (store/dirty.c): once published, its space comes back too (LMDB
# never shrinks a file: it stayed at the most it held between commits,
# 19 MB for this one)
dd if="$T/v" of="$M1/odd" bs=100000 status=none
sync "$M1/odd"
wait_until 5 "the unpublished blocks' file made anew (<= 4 MiB; $(stat -c %s "$S1/dirty/data.mdb") B when the wait began)" \
    file_at_most $((4 * 1048576)) "$S1/dirty/data.mdb"
cmp "$T/v" "$M1/odd" || fail "a file written in odd pieces does not read back"
rm "$M1/odd"

# an unlinked open file keeps its content while open
head -c $((5 * MB)) /dev/urandom >"$T/open"
cp "$T/open" "$M1/open"
exec 3<"$M1/open"
rm "$M1/open" "$M1/big"
wait_until 5 "the deleted file's chunks freed (<= 6 MB left)" at_most $((6 * MB)) "$M1"
sleep 2 # two more passes: the open file's content must stay
cmp "$T/open" /dev/fd/3 || fail "an unlinked open file lost its content"
exec 3<&-
wait_until 5 "chunk bytes 0 once the file is closed" at_most 0 "$M1"
wait_until 15 "the store on disk within 10 MB of no live data (du when the wait began: $(store_du "$S1") B)" \
    du_at_most $((10 * MB)) "$S1"
log "after delete: chunk bytes $(chunk_bytes "$M1"), store on disk $(store_du "$S1") B, store file $(store_size "$S1") B"

# git's loose objects: link(tmp, final) + unlink(tmp); the removed names'
# tombstones go, the files stay
t0=$(tombstones "$M1")
mkdir "$M1/objects"
for i in $(seq 1 20); do
    echo "object $i" >"$M1/objects/tmp_$i"
    ln "$M1/objects/tmp_$i" "$M1/objects/obj_$i"
    rm "$M1/objects/tmp_$i"
done
wait_until 5 "the 20 removed links' tombstones collected (from $t0)" \
    tombstones_at_least $((t0 + 20)) "$M1"
[[ $(ls "$M1/objects" | wc -l) -eq 20 ]] || fail "objects/ lists $(ls "$M1/objects" | wc -l) names, not 20"
for i in $(seq 1 20); do
    [[ $(cat "$M1/objects/obj_$i") == "object $i" ]] || fail "objects/obj_$i does not read back"
    [[ $(stat -c %h "$M1/objects/obj_$i") -eq 1 ]] || fail "objects/obj_$i has nlink $(stat -c %h "$M1/objects/obj_$i")"
done
mfs_umount "$M1"

# ---- 2. the default trash keeps what was overwritten
S2=$T/s2
M2=$T/m2
mfs_init "$S2"
mkdir -p "$M2"
for bad in trash-share=0 trash-share=101 trash-share=x trash=-1; do
    if mfs_cmd mount --store "$S2" -o "$bad" "$M2" 2>/dev/null; then
        fail "mount -o $bad was accepted"
    fi
    ! is_mounted "$M2" || fail "mount -o $bad mounted"
done
mfs_mount "$S2" "$M2"
for i in 1 2 3; do
    head -c $((2 * MB)) /dev/urandom >"$M2/f"
done
sync "$M2/f"
sleep 3
b=$(chunk_bytes "$M2")
[[ $b -ge $((59 * MB / 10)) ]] || fail "the default trash freed overwritten versions: chunk bytes $b < 5.9 MB (three versions of 2 MB)"
mfs_cmd stat "$M2" | grep -q 'trash 7.0 days' || fail "meshfs stat does not show the trash: $(mfs_cmd stat "$M2" | grep collection)"
mfs_umount "$M2"

# ---- 3. a full disk
FS=$T/fs
small_ext4 "$FS" 300M
S3=$FS/store
M3=$T/m3
mfs_init "$S3"
mfs_mount "$S3" "$M3" trash=0
n=0
while head -c $((20 * MB)) /dev/urandom >"$T/v" && cp "$T/v" "$M3/f$n" 2>"$T/err"; do
    n=$((n + 1))
    ((n < 40)) || fail "300 MB filesystem took 40 files of 20 MB"
done
grep -q "No space left on device" "$T/err" || fail "the write that failed did not say ENOSPC: $(cat "$T/err")"
log "disk full after $n files of 20 MB: $(df -h "$FS" | tail -1)"
rm -f "$M3"/f*
wait_until 10 "the deleted files' chunks freed" at_most $((20 * MB)) "$M3"
head -c $((20 * MB)) /dev/urandom >"$T/again"
cp "$T/again" "$M3/again" || fail "a write after deleting everything failed"
sync "$M3/again"
mfs_umount "$M3"
mfs_mount "$S3" "$M3" trash=0
cmp "$T/again" "$M3/again" || fail "the file written after the disk was full does not read back after a remount"
mfs_umount "$M3"
log "ok"
