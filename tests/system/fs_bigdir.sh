#!/usr/bin/env bash
# fs_bigdir: one directory of 100,000 files: create, list (readdir and
# readdirplus), look up, rename a share, reload after umount + mount, then
# delete them all while iterating the directory (find -delete).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_bigdir 900
helper_build

N=${BIGDIR_FILES:-100000}
mfs_up
B=$M/big
mkdir "$B"

log "create $N files"
t0=$SECONDS
"$T/fshelper" mkfiles "$B" f "$N" || fail "creating $N files failed"
log "created in $((SECONDS - t0)) s"
seq -f 'f%06.0f' 0 $((N - 1)) >"$T/expected"

list_check() { # list_check WHAT: readdir must give exactly the expected names
    ls -AU "$B" >"$T/listed.raw" || fail "$1: ls of $B failed"
    LC_ALL=C sort "$T/listed.raw" >"$T/listed"
    if ! cmp -s "$T/expected" "$T/listed"; then
        log "$1: $(wc -l <"$T/listed") names listed, $(wc -l <"$T/expected") expected; diff:"
        diff "$T/expected" "$T/listed" | head -10 >&2 || true
        fail "$1: readdir of $B does not give the expected names"
    fi
}
list_check "after create"
check_eq "readdirplus (ls -l) lines" "$((N + 1))" "$(ls -l "$B" | wc -l)"
check_eq "find -type f" "$N" "$(find "$B" -type f | wc -l)"
check_eq "link count of the dir" "2" "$(stat -c %h "$B")"

log "lookups"
for i in 0 1 4242 $((N / 2)) $((N - 1)); do
    name=$(printf 'f%06d' "$i")
    [[ -f "$B/$name" ]] || fail "lookup of $name failed"
done
for name in f$(printf '%06d' "$N") g000000 F000001 f00000; do
    [[ ! -e "$B/$name" ]] || fail "$name exists but was never created"
done

log "rename every 10th file"
t0=$SECONDS
for ((i = 0; i < N; i += 10)); do printf 'f%06d\0' "$i"; done |
    (cd "$B" && xargs -0 -n 5000 perl -e 'for (@ARGV) { (my $n = $_) =~ s/^f/g/; rename($_, $n) or die "rename $_: $!\n" }')
log "renamed in $((SECONDS - t0)) s"
awk '{ n = substr($0, 2) + 0; print (n % 10 == 0 ? "g" : "f") substr($0, 2) }' "$T/expected" |
    LC_ALL=C sort >"$T/expected.new"
mv "$T/expected.new" "$T/expected"
list_check "after rename"

log "umount + mount, list again"
mfs_umount "$M"
t0=$SECONDS
mfs_mount "$STORE" "$M"
list_check "after remount"
log "remount + list in $((SECONDS - t0)) s"

log "delete all while iterating"
t0=$SECONDS
find "$B" -mindepth 1 -delete || fail "find -delete failed"
log "deleted in $((SECONDS - t0)) s"
check_eq "entries left" "0" "$(ls -A "$B" | wc -l)"
rmdir "$B" || fail "rmdir of the emptied directory failed"
[[ ! -e "$B" ]] || fail "$B still exists"
mfs_umount "$M"
