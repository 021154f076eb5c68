#!/usr/bin/env bash
# fs_persist: the tree survives umount + mount (three rounds, changing it in
# between): every name, type, mode, owner, size, mtime, link, xattr and byte,
# checked against a native copy that got the same changes. Written data that
# was never fsync'd is flushed by umount. Deleted files stay deleted.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_persist 600

REF=$T/ref
mfs_up
W=$M/tree

# The reference gets the same changes at slightly different times, so it is
# compared without mtimes; the saved manifest of the mount, compared across
# each remount, holds every mtime to the nanosecond.
ref_compare() { MANIFEST_IGNORE=mtime tree_compare "$REF" "$W" "$1"; }

both() { # both CMD-WITH-@D@: the same change on the mount and the reference
    eval "${1//@D@/\"\$W\"}"
    eval "${1//@D@/\"\$REF\"}"
}

make_sample_tree "$REF"
cp -a "$REF" "$W"
both 'mkdir -p @D@/many && for i in $(seq 1 1000); do echo "$i" >@D@/many/n$i; done'
both 'p=@D@; for i in $(seq 1 40); do p=$p/d$i; done; mkdir -p "$p" && echo deep >"$p/leaf"'
head -c $((50 * 1024 * 1024)) /dev/urandom >"$T/big"
both 'cp "$T/big" @D@/big'
both 'touch -d "2022-02-22 22:22:22.222222222" @D@/many @D@/big'

for round in 1 2 3; do
    log "round $round: umount + mount"
    ref_compare "before umount $round"
    tree_manifest_file "$M" "$T/whole.before" # the whole mount, lost+found too
    mfs_umount "$M"
    [[ -z "$(ls -A "$M")" ]] || fail "the mount point is not empty after umount: $(ls -A "$M" | head -3)"
    mfs_mount "$STORE" "$M"
    tree_check_manifest "$M" "$T/whole.before" "whole mount after remount $round"
    ref_compare "after remount $round"
    log "round $round: change things"
    both "rm -r @D@/many/n1$round* && echo changed-$round >@D@/a/hello.txt"
    both "mv @D@/a/b @D@/b-moved-$round && ln -s b-moved-$round @D@/to-b-$round"
    both "setfattr -n user.round -v $round @D@/big && chmod 60$round @D@/empty"
    both "truncate -s $((round * 1000000)) @D@/big && dd if=/dev/zero of=@D@/big bs=4096 count=1 seek=7 conv=notrunc status=none"
    both "mv @D@/b-moved-$round @D@/a/b && rm @D@/to-b-$round"
    both 'touch -d "2023-03-03 03:03:03" @D@/a @D@/many'
done
for i in 11 12 13 110 1100; do
    [[ ! -e "$W/many/n$i" ]] || fail "deleted file many/n$i came back"
done
mfs_umount "$M"
mfs_mount "$STORE" "$M"
ref_compare "final"
mfs_umount "$M"
