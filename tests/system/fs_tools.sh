#!/usr/bin/env bash
# fs_tools: cp -a, mv, tar x/c and rsync -aHAX into and out of a mount; the
# copies must equal the source in names, types, modes, owners, sizes, mtimes,
# hard links, symlink targets, xattrs and content.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_tools 600

SRC=$T/src
mfs_up
make_sample_tree "$SRC"

log "cp -a in and out"
cp -a "$SRC" "$M/cp"
tree_compare "$SRC" "$M/cp" "cp -a into the mount"
cp -a "$M/cp" "$T/cp-out"
tree_compare "$SRC" "$T/cp-out" "cp -a out of the mount"

log "tar c on native, x on the mount; tar c on the mount, x on native"
TARX=(--xattrs --xattrs-include='*' --acls --numeric-owner)
tar -C "$SRC" "${TARX[@]}" -cpf "$T/src.tar" .
mkdir "$M/tarx"
tar -C "$M/tarx" "${TARX[@]}" -xpf "$T/src.tar"
# tar sets the extraction root's own mtime too; compare below it only
tree_compare "$SRC" "$M/tarx" "tar x into the mount"
tar -C "$M/tarx" "${TARX[@]}" -cpf "$T/mnt.tar" .
mkdir "$T/tar-out"
tar -C "$T/tar-out" "${TARX[@]}" -xpf "$T/mnt.tar"
tree_compare "$SRC" "$T/tar-out" "tar c from the mount"
# both archives hold the same member names (which name of a hard-linked
# file tar stores first follows readdir order, so metadata is compared on
# the extracted trees above)
tar -tf "$T/src.tar" | LC_ALL=C sort >"$T/list.src"
tar -tf "$T/mnt.tar" | LC_ALL=C sort >"$T/list.mnt"
diff -u "$T/list.src" "$T/list.mnt" >&2 || fail "the archives made on native and on the mount list different members"

log "rsync -aHAX in and out"
# --modify-window=-1: rsync compares times to the second by default and
# does not set the time of an entry it just made in the same second as
# its source (symlinks, fifos, directories), so the copy's nanoseconds
# differed whenever the tree was made and copied within one second, on
# ext4 too (the test failed so about 1 run in 10 in the full suite)
RS=(rsync -aHAX --specials --devices --numeric-ids --modify-window=-1)
out=$("${RS[@]}" "$SRC/" "$M/rsync/" 2>&1) || fail "rsync into the mount failed: $out"
tree_compare "$SRC" "$M/rsync" "rsync -aHAX into the mount"
out=$("${RS[@]}" "$M/rsync/" "$T/rsync-out/" 2>&1) || fail "rsync out of the mount failed: $out"
tree_compare "$SRC" "$T/rsync-out" "rsync -aHAX out of the mount"
# a second run must find nothing to do (sizes, mtimes, modes, xattrs kept)
changes=$("${RS[@]}" -i "$SRC/" "$M/rsync/" 2>&1) || fail "rsync re-run failed: $changes"
[[ -z "$changes" ]] || fail "rsync re-run into the mount wants to change: $changes"
# change, add and delete in the source; rsync --delete carries exactly that
printf 'changed\n' >"$SRC/a/hello.txt"
touch -d '2015-05-05 05:05:05' "$SRC/a/hello.txt"
rm "$SRC/a/b/c/f7"
mkdir "$SRC/new-dir"
printf 'new\n' >"$SRC/new-dir/new-file"
out=$("${RS[@]}" --delete-before "$SRC/" "$M/rsync/" 2>&1) || fail "rsync --delete failed: $out"
# (rsync 3.5 leaves the mtime of directories it changes in an update at
# "now" on every filesystem, native too, so directory mtimes are not compared)
MANIFEST_IGNORE=dirmtime tree_compare "$SRC" "$M/rsync" "rsync --delete update"

log "mv into, within and out of the mount"
cp -a "$SRC" "$T/mv-src"
mv "$T/mv-src" "$M/mv"
[[ ! -e "$T/mv-src" ]] || fail "mv into the mount left the source behind"
tree_compare "$SRC" "$M/mv" "mv into the mount"
ino_before=$(stat -c %i "$M/mv/a/b/random.bin")
mv "$M/mv" "$M/mv-renamed"
[[ ! -e "$M/mv" ]] || fail "mv within the mount left $M/mv"
check_eq "inode kept by rename" "$ino_before" "$(stat -c %i "$M/mv-renamed/a/b/random.bin")"
tree_compare "$SRC" "$M/mv-renamed" "mv within the mount"
printf 'over\n' >"$M/mv-renamed/a/victim"
mv -f "$M/mv-renamed/a/hello.txt" "$M/mv-renamed/a/victim"
check_eq "mv over an existing file" "changed" "$(cat "$M/mv-renamed/a/victim")"
mv "$M/mv-renamed/a/victim" "$M/mv-renamed/a/hello.txt"
touch -r "$SRC/a" "$M/mv-renamed/a" # the renames above changed its mtime
tree_compare "$SRC" "$M/mv-renamed" "mv over and back"
mv "$M/mv-renamed" "$T/mv-out"
[[ ! -e "$M/mv-renamed" ]] || fail "mv out of the mount left the source behind"
tree_compare "$SRC" "$T/mv-out" "mv out of the mount"

log "everything again after umount + mount"
tree_manifest_file "$M/rsync" "$T/before.manifest"
mfs_umount "$M"
mfs_mount "$STORE" "$M"
tree_check_manifest "$M/rsync" "$T/before.manifest" "rsync copy after remount"
MANIFEST_IGNORE=dirmtime tree_compare "$SRC" "$M/rsync" "rsync copy vs source after remount"
mfs_umount "$M"
