#!/usr/bin/env bash
# mesh_propagate: three mounts of one mesh (A made it, B and C joined with
# its invite token), daemons in a private network namespace, no faults.
# Every kind of change made on one node shows on the others (DESIGN P5, P6):
# a closed file's content (and a same-size rewrite of a file B has cached),
# mkdir, rename of files and directories, chmod, chown, mtime, xattr set and
# remove, symlink, hard link, truncate, append, unlink, rmdir, device nodes
# and fifos, a copied tree of every kind of entry; changes start on every
# node. `meshfs stat FILE` on A ends up showing that B and C hold the
# file's version. Finally the three trees are compared whole.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init propagate 300 7600
mesh_up a b c
A=${MNT[a]} B=${MNT[b]} C=${MNT[c]}
W=5 # seconds any one change may take to show (P5: well under a second)

# --- a closed file, read on the others (close-to-open)
head -c 300000 /dev/urandom >"$T/src1"
t0=$(now_ms)
cp "$T/src1" "$A/file1"
sha1=$(sha_of "$T/src1")
mesh_wait_file $W b file1 "$sha1"
mesh_wait_file $W c file1 "$sha1"
log "300 KB file written on A read on B and C after $(($(now_ms) - t0)) ms"

# --- a file B has read (page cache) is rewritten on A with the same size
printf 'version-1 of a small file\n' >"$A/cached.txt"
mesh_wait_file $W b cached.txt "$(sha_str $'version-1 of a small file\n')"
cat "$B/cached.txt" >/dev/null
printf 'version-2 of a small file\n' >"$A/cached.txt"
mesh_wait_file $W b cached.txt "$(sha_str $'version-2 of a small file\n')"
mesh_wait_file $W c cached.txt "$(sha_str $'version-2 of a small file\n')"

# --- directories and renames
is_dir() { [[ -d "$1/$2" && ! -L "$1/$2" ]]; }
is_gone() { [[ ! -e "$1/$2" && ! -L "$1/$2" ]]; }
mkdir -p "$A/d1/d2/d3"
printf 'inside\n' >"$A/d1/d2/d3/inner.txt"
mesh_wait_each $W "mkdir -p d1/d2/d3" "b c" is_dir d1/d2/d3
mesh_wait_file $W c d1/d2/d3/inner.txt "$(sha_str $'inside\n')"

mv "$A/file1" "$A/d1/d2/moved1" # a file, across directories, on A
mesh_wait_file $W b d1/d2/moved1 "$sha1"
mesh_wait_file $W c d1/d2/moved1 "$sha1"
mesh_wait_each $W "file1 gone after the rename" "b c" is_gone file1

mv "$B/d1/d2" "$B/d1/renamed-d2" # a directory with contents, on B
mesh_wait_each $W "d1/d2 renamed to d1/renamed-d2" "a c" is_dir d1/renamed-d2/d3
mesh_wait_each $W "d1/d2 gone" "a c" is_gone d1/d2
mesh_wait_file $W a d1/renamed-d2/d3/inner.txt "$(sha_str $'inside\n')"

# --- attributes, from C
printf 'attrs\n' >"$C/attrs.txt"
has_file() { [[ -f "$1/$2" ]]; }
mesh_wait_each $W "attrs.txt created" "a b" has_file attrs.txt
chmod 0640 "$C/attrs.txt"
chown 1234:5678 "$C/attrs.txt"
touch -m -d '2011-11-11 11:11:11.123456789' "$C/attrs.txt"
setfattr -n user.color -v blue "$C/attrs.txt"
setfattr -n user.gone -v soon "$C/attrs.txt"
setfattr -n user.dirattr -v 0x00ff01 "$C/d1"
want_attrs="640 1234 5678 $(stat -c %Y "$C/attrs.txt")"
attrs_are() { [[ "$(stat -c '%a %u %g %Y' "$1/$2")" == "$3" ]]; }
xattr_is() { [[ "$(getfattr --absolute-names --only-values -n "$3" "$1/$2" 2>/dev/null)" == "$4" ]]; }
mesh_wait_each $W "mode/owner/mtime of attrs.txt" "a b" attrs_are attrs.txt "$want_attrs"
mesh_wait_each $W "xattr user.color" "a b" xattr_is attrs.txt user.color blue
mesh_wait_each $W "xattr user.gone" "a b" xattr_is attrs.txt user.gone soon
setfattr -x user.gone "$C/attrs.txt"
no_xattr() { ! getfattr -n "$3" "$1/$2" >/dev/null 2>&1; }
mesh_wait_each $W "xattr user.gone removed" "a b" no_xattr attrs.txt user.gone
check_eq "mtime ns on A" "2011-11-11 11:11:11.123456789" \
    "$(stat -c %y "$A/attrs.txt" | cut -c1-29)"

# --- symlink and hard link, from A
ln -s d1/renamed-d2/moved1 "$A/sym"
ln -s /nowhere/at/all "$A/dangling"
ln "$A/d1/renamed-d2/moved1" "$A/hard"
link_is() { [[ -L "$1/$2" && "$(readlink "$1/$2")" == "$3" ]]; }
mesh_wait_each $W "symlink sym" "b c" link_is sym d1/renamed-d2/moved1
mesh_wait_each $W "dangling symlink" "b c" link_is dangling /nowhere/at/all
nlink_is() { [[ "$(stat -c %h "$1/$2")" == "$3" ]]; }
mesh_wait_each $W "hard link: nlink 2" "b c" nlink_is hard 2
for n in b c; do
    M=${MNT[$n]}
    check_eq "node $n: hard link and its other name are one inode" \
        "$(stat -c %i "$M/d1/renamed-d2/moved1")" "$(stat -c %i "$M/hard")"
    check_eq "node $n: content through the symlink" "$sha1" "$(sha_of "$M/sym")"
done

# --- truncate and append, from B; unlink and rmdir, from C
cp "$B/hard" "$B/tail.bin" # a copy made on B
truncate -s 1000 "$B/tail.bin"
printf 'appended\n' >>"$B/tail.bin"
{ head -c 1000 "$T/src1"; printf 'appended\n'; } >"$T/tail.want"
mesh_wait_file $W a tail.bin "$(sha_of "$T/tail.want")"
mesh_wait_file $W c tail.bin "$(sha_of "$T/tail.want")"
rm "$C/hard"
rm "$C/d1/renamed-d2/d3/inner.txt"
rmdir "$C/d1/renamed-d2/d3"
mesh_wait_each $W "hard removed" "a b" is_gone hard
mesh_wait_each $W "d3 removed" "a b" is_gone d1/renamed-d2/d3
mesh_wait_each $W "nlink back to 1" "a b" nlink_is d1/renamed-d2/moved1 1

# --- device nodes and a fifo, from A (the manifest has no rdev: checked here)
mknod "$A/null-dev" c 1 3
mknod -m 0660 "$A/blk-dev" b 7 200
mkfifo "$A/a-fifo"
dev_is() { [[ "$(stat -c '%F %t:%T %a' "$1/$2")" == "$3" ]]; }
mesh_wait_each $W "character device" "b c" dev_is null-dev "character special file 1:3 644"
mesh_wait_each $W "block device" "b c" dev_is blk-dev "block special file 7:c8 660"
is_fifo() { [[ -p "$1/$2" ]]; }
mesh_wait_each $W "fifo" "b c" is_fifo a-fifo

# --- a small tree of every kind of entry (lib.sh), copied in on B
make_sample_tree "$T/sample"
cp -a "$T/sample" "$B/sample"

# --- meshfs stat FILE on A: B and C hold the version of tail.bin
holders() {
    timeout 20 "$MESHFS" stat --json "$1/$2" 2>/dev/null |
        jq -r '[.held_by[] | select(.holds == "yes") | .peer] | sort | join(" ")'
}
both=$(printf '%s\n' "${ID[b]}" "${ID[c]}" | sort | tr '\n' ' ')
holds_all() { [[ "$(holders "$1" "$2") " == "$3" ]]; }
mesh_wait $W "stat of tail.bin on A to show B and C holding it (now: $(holders "$A" tail.bin))" \
    holds_all "$A" tail.bin "$both"
check_eq "stat FILE text names the version" 1 \
    "$(timeout 20 "$MESHFS" stat "$A/tail.bin" | grep -c '^version ')"

# --- and everything, compared whole
mesh_wait_converged 120 a b c
[[ -d "$A/sample/a/b/c" && -p "$C/sample/fifo" ]] || fail "sample tree incomplete on C"
for n in a b c; do # the text form says so too
    line=$(timeout 20 "$MESHFS" stat "${MNT[$n]}" | grep '^sync ') || fail "node $n: no sync line in meshfs stat"
    [[ $line =~ ^sync\ +in\ sync\ with\ 2\ live\ peers$ ]] || fail "node $n: meshfs stat says: $line"
done
log "datagrams dropped by the namespace rules: $(mesh_dropped) (none expected)"
