#!/usr/bin/env bash
# fs_perms: chmod, chown, chgrp, utimes, xattrs and access checks done by
# another (unprivileged) user on a mount made with -o allow_other; each
# answer must be what a local filesystem gives (EACCES, EPERM, ...).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_perms 300

command -v setpriv >/dev/null || skip "setpriv (util-linux) is missing: cannot act as another user"
U=65534 G=65534 G2=4242
setpriv --reuid=$U --regid=$G --clear-groups true 2>/dev/null ||
    skip "cannot switch to uid $U with setpriv"
as_u() { setpriv --reuid=$U --regid=$G --clear-groups -- "$@"; }
as_ug() { setpriv --reuid=$U --regid=$G --groups=$G,$G2 -- "$@"; }

STORE=$T/store
M=$T/mnt
# meshfs must check permissions itself (or ask the kernel to); the
# passthrough_ll baseline runs as root and needs default_permissions for that
OPTS=allow_other
[[ $MFS_BACKEND != passthrough ]] || OPTS=allow_other,default_permissions
mfs_init "$STORE"
mfs_mount "$STORE" "$M" "$OPTS"
D=$M/perm
mkdir -m 0755 "$D"
mkdir -m 1777 "$D/pub"
printf 'secret\n' >"$D/secret" && chmod 0600 "$D/secret"
printf 'public\n' >"$D/ro" && chmod 0644 "$D/ro"
printf 'group\n' >"$D/grp" && chown 0:$G2 "$D/grp" && chmod 0640 "$D/grp"
printf 'root in pub\n' >"$D/pub/rootfile"

log "reading and writing other people's files"
check_eq "read a 0644 file" "public" "$(as_u cat "$D/ro")"
expect_fail "Permission denied" as_u cat "$D/secret"
expect_fail "Permission denied" as_u sh -c "echo x >>'$D/ro'"
expect_fail "Permission denied" as_u touch "$D/new-in-root-dir"
expect_fail "Permission denied" as_u cat "$D/grp"
check_eq "read via a supplementary group" "group" "$(as_ug cat "$D/grp")"
chmod 0700 "$D/pub" && expect_fail "Permission denied" as_u ls "$D/pub" && chmod 1777 "$D/pub"

log "own files: create, chmod, chgrp"
as_u sh -c "umask 022; echo mine >'$D/pub/mine'"
check_eq "owner of a new file" "$U:$G" "$(stat -c %u:%g "$D/pub/mine")"
check_eq "mode from umask" "644" "$(stat -c %a "$D/pub/mine")"
as_u sh -c "umask 077; : >'$D/pub/private'"
check_eq "mode from umask 077" "600" "$(stat -c %a "$D/pub/private")"
as_u chmod 0640 "$D/pub/mine"
check_eq "chmod own file" "640" "$(stat -c %a "$D/pub/mine")"
as_ug chgrp $G2 "$D/pub/mine"
check_eq "chgrp to a group the user is in" "$U:$G2" "$(stat -c %u:%g "$D/pub/mine")"
expect_fail "Operation not permitted" as_ug chgrp 0 "$D/pub/mine"
expect_fail "Operation not permitted" as_u chown 0 "$D/pub/mine"
as_u touch -d '2001-01-01 00:00:00' "$D/pub/mine"
check_eq "utimes on own file" "978307200" "$(stat -c %Y "$D/pub/mine")"
as_u setfattr -n user.mine -v 1 "$D/pub/mine"
check_eq "xattr on own file" "1" "$(getfattr --absolute-names --only-values -n user.mine "$D/pub/mine")"

log "other people's files: chmod, chown, utimes, xattrs, sticky dir"
expect_fail "Operation not permitted" as_u chmod 0777 "$D/ro"
expect_fail "Operation not permitted" as_u chown $U "$D/ro"
expect_fail "Operation not permitted" as_u touch -c -d '2001-01-01' "$D/ro"
expect_fail "Permission denied" as_u touch -c "$D/ro"
expect_fail "Permission denied" as_u setfattr -n user.x -v 1 "$D/ro"
expect_fail "Operation not permitted" as_u rm -f "$D/pub/rootfile"
expect_fail "Operation not permitted" as_u mv "$D/pub/rootfile" "$D/pub/stolen"
check_eq "root's file untouched" "root in pub" "$(cat "$D/pub/rootfile")"
check_eq "root's mode untouched" "644" "$(stat -c %a "$D/ro")"

log "root gives a file away; the new owner may then chmod it"
chown $U:$G "$D/ro"
as_u chmod 0600 "$D/ro"
check_eq "chmod after chown" "600" "$(stat -c %a "$D/ro")"
check_eq "owner reads 0600" "public" "$(as_u cat "$D/ro")"

log "setuid cleared by an unprivileged write; setgid directories"
chmod 4755 "$D/pub/mine"
as_u sh -c "echo more >>'$D/pub/mine'"
check_eq "setuid bit after write by owner" "755" "$(stat -c %a "$D/pub/mine")"
mkdir -m 2777 "$D/sg" && chown 0:$G2 "$D/sg" && chmod 2777 "$D/sg"
as_u sh -c "umask 022; : >'$D/sg/f'; mkdir '$D/sg/d'"
check_eq "gid inherited from a setgid dir" "$G2" "$(stat -c %g "$D/sg/f")"
check_eq "setgid bit inherited by a subdir" "2755" "$(stat -c %a "$D/sg/d")"

log "still so after umount + mount"
tree_manifest_file "$D" "$T/before"
mfs_umount "$M"
mfs_mount "$STORE" "$M" "$OPTS"
tree_check_manifest "$D" "$T/before" "permissions after remount"
expect_fail "Permission denied" as_u cat "$D/secret"
mfs_umount "$M"
