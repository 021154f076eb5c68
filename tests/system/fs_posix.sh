#!/usr/bin/env bash
# fs_posix: an editor's atomic save (temp file, fsync, rename) repeated under
# a concurrent reader; ln and ln -s; mkfifo and a unix socket; setfattr and
# getfattr; truncate (checked against the same steps on the native fs); mmap
# writes read back through read(); O_APPEND; the errno of common mistakes;
# renameat2 with RENAME_NOREPLACE and RENAME_EXCHANGE.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_posix 600
helper_build

mfs_up
D=$M/work
mkdir "$D"

# ------------------------------------------------------------ atomic save
log "editor-style atomic save, 200 rounds, with a reader that must never see a gap"
printf 'round-0\n' >"$D/doc.txt"
chmod 640 "$D/doc.txt"
setfattr -n user.kept -v 1 "$D/doc.txt"
exec 7<"$D/doc.txt" # an fd opened before the saves keeps the old file
: >"$T/reader.err"
(
    n=0
    while [[ ! -e "$T/reader.stop" ]]; do
        if ! c=$(cat "$D/doc.txt" 2>&1); then
            echo "read failed: $c" >>"$T/reader.err"
        elif [[ ! "$c" =~ ^round-[0-9]+$ ]]; then
            echo "torn read: '$c'" >>"$T/reader.err"
        fi
        n=$((n + 1))
        echo "$n" >"$T/reader.count"
    done
) &
reader=$!
prev_ino=$(stat -c %i "$D/doc.txt")
for i in $(seq 1 200); do
    tmp="$D/.doc.txt.$i.tmp"
    printf 'round-%d\n' "$i" >"$tmp"
    chmod --reference="$D/doc.txt" "$tmp"
    getfattr --absolute-names -d -e hex "$D/doc.txt" 2>/dev/null | sed -n 's/^\(user\.[^=]*\)=\(.*\)$/\1 \2/p' |
        while read -r n v; do setfattr -n "$n" -v "$v" "$tmp"; done
    sync "$tmp" # fsync(2) of the temp file
    if ((i % 10 == 0)); then
        # keep a backup (as a hard link, so the name never disappears)
        ln "$D/doc.txt" "$D/doc.txt~"
        mv -f "$tmp" "$D/doc.txt"
        check_eq "backup of save $i" "round-$((i - 1))" "$(cat "$D/doc.txt~")"
        rm "$D/doc.txt~"
    else
        mv -f "$tmp" "$D/doc.txt"
    fi
    check_eq "content after save $i" "round-$i" "$(cat "$D/doc.txt")"
    ino=$(stat -c %i "$D/doc.txt")
    [[ $ino != "$prev_ino" ]] || fail "save $i: inode $ino did not change by rename"
    prev_ino=$ino
done
touch "$T/reader.stop"
wait "$reader"
[[ ! -s "$T/reader.err" ]] || fail "the reader saw: $(head -5 "$T/reader.err")"
[[ $(cat "$T/reader.count") -gt 10 ]] || fail "the reader only ran $(cat "$T/reader.count") times"
check_eq "fd opened before the saves reads the old file" "round-0" "$(cat <&7)"
exec 7<&-
check_eq "mode kept" "640" "$(stat -c %a "$D/doc.txt")"
check_eq "xattr kept" "1" "$(getfattr --absolute-names --only-values -n user.kept "$D/doc.txt")"
check_eq "no temp files left" "doc.txt" "$(ls -A "$D")"

# ------------------------------------------------------------ hard links
log "ln"
printf 'one\n' >"$D/h1"
mkdir "$D/sub"
ln "$D/h1" "$D/h2"
ln "$D/h1" "$D/sub/h3"
check_eq "nlink" "3" "$(stat -c %h "$D/h1")"
check_eq "same inode" "$(stat -c %i "$D/h1")" "$(stat -c %i "$D/sub/h3")"
printf 'two\n' >>"$D/sub/h3"
check_eq "write through a link" "$(printf 'one\ntwo')" "$(cat "$D/h2")"
setfattr -n user.shared -v yes "$D/h2"
check_eq "xattr shared by links" "yes" "$(getfattr --absolute-names --only-values -n user.shared "$D/h1")"
chmod 600 "$D/h1"
check_eq "mode shared by links" "600" "$(stat -c %a "$D/sub/h3")"
rm "$D/h1"
check_eq "nlink after unlink" "2" "$(stat -c %h "$D/h2")"
check_eq "content after unlink" "$(printf 'one\ntwo')" "$(cat "$D/sub/h3")"
# rename of one link over another link of the same inode does nothing
perl -e 'rename($ARGV[0], $ARGV[1]) or die "rename: $!\n"' "$D/h2" "$D/sub/h3"
[[ -e "$D/h2" && -e "$D/sub/h3" ]] || fail "rename between two links of one inode removed a name"
expect_fail "File exists" ln "$D/h2" "$D/sub/h3"
expect_fail "not allowed" ln "$D/sub" "$D/subdir-link"
expect_fail "No such file" ln "$D/missing" "$D/x"
rm "$D/h2"
check_eq "last link" "1" "$(stat -c %h "$D/sub/h3")"

# ------------------------------------------------------------ symlinks
log "ln -s"
ln -s sub/h3 "$D/s-rel"
ln -s "$D/sub" "$D/s-abs"
ln -s nowhere "$D/s-dangling"
long=$(printf 'x/%.0s' $(seq 1 1500))end # a 3003-byte target
ln -s "$long" "$D/s-long"
check_eq "readlink" "sub/h3" "$(readlink "$D/s-rel")"
check_eq "readlink long" "$long" "$(readlink "$D/s-long")"
check_eq "symlink size" "${#long}" "$(stat -c %s "$D/s-long")"
check_eq "follow" "$(printf 'one\ntwo')" "$(cat "$D/s-rel")"
check_eq "follow dir" "h3" "$(ls "$D/s-abs/")"
check_eq "lstat type" "symbolic link" "$(stat -c %F "$D/s-dangling")"
expect_fail "No such file" cat "$D/s-dangling"
ln -s loop-b "$D/loop-a"
ln -s loop-a "$D/loop-b"
expect_fail "Too many levels of symbolic links" cat "$D/loop-a"
ln -sfn sub "$D/s-rel"
check_eq "ln -sfn replaces" "sub" "$(readlink "$D/s-rel")"
expect_fail "File exists" ln -sT x "$D/s-abs"
rm "$D/s-abs" "$D/s-dangling" "$D/loop-a" "$D/loop-b" "$D/s-long" "$D/s-rel"
[[ -d "$D/sub" ]] || fail "removing a symlink to a dir removed the dir"

# ------------------------------------------------------------ fifo, socket
log "mkfifo and a unix socket"
mkfifo -m 0620 "$D/fifo"
check_eq "fifo type" "fifo" "$(stat -c %F "$D/fifo")"
check_eq "fifo mode" "620" "$(stat -c %a "$D/fifo")"
(printf 'through the fifo\n' >"$D/fifo") &
w=$!
check_eq "fifo data" "through the fifo" "$(timeout 20 cat "$D/fifo")"
wait "$w"
perl -MIO::Socket::UNIX -e '
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0], Listen => 1)
        or die "bind $ARGV[0]: $!\n";
    my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die "connect: $!\n";
    my $a = $s->accept or die "accept: $!\n";
    print $c "ping\n"; my $l = <$a>; $l eq "ping\n" or die "socket data: $l\n";' "$D/sock"
check_eq "socket type" "socket" "$(stat -c %F "$D/sock")"
rm "$D/fifo" "$D/sock"

# ------------------------------------------------------------ xattrs
log "setfattr / getfattr"
f=$D/xa
: >"$f"
setfattr -n user.a -v hello "$f"
check_eq "getfattr" "hello" "$(getfattr --absolute-names --only-values -n user.a "$f")"
setfattr -n user.bin -v 0x00ff0010 "$f"
check_eq "binary value" "user.bin=0x00ff0010" "$(getfattr --absolute-names -e hex -n user.bin "$f" | grep '^user.bin')"
setfattr -n user.empty "$f"
check_eq "empty value" "" "$(getfattr --absolute-names --only-values -n user.empty "$f")"
big=$(head -c 3000 /dev/zero | tr '\0' 'v')
setfattr -n user.big -v "$big" "$f"
check_eq "3000-byte value" "$big" "$(getfattr --absolute-names --only-values -n user.big "$f")"
for i in $(seq 1 30); do setfattr -n "user.n$i" -v "$i" "$f"; done
check_eq "listxattr count" "34" "$(getfattr --absolute-names -d -m '^user\.' "$f" | grep -c '^user\.')"
setfattr -n user.a -v world "$f"
check_eq "overwrite" "world" "$(getfattr --absolute-names --only-values -n user.a "$f")"
setfattr -x user.a "$f"
expect_fail "No such attribute" getfattr --absolute-names -n user.a "$f"
expect_fail "No such attribute" setfattr -x user.a "$f"
expect_fail "Operation not supported" setfattr -n bogusns.a -v 1 "$f"
setfattr -n user.d -v on-dir "$D/sub"
check_eq "xattr on a dir" "on-dir" "$(getfattr --absolute-names --only-values -n user.d "$D/sub")"
mv "$f" "$D/sub/xa-moved"
check_eq "xattr survives rename" "30" "$(getfattr --absolute-names --only-values -n user.n30 "$D/sub/xa-moved")"

# ------------------------------------------------------------ truncate
log "truncate, checked against the same steps on the native fs"
N=$T/native
mkdir "$N"
head -c 200000 /dev/urandom >"$N/t"
cp "$N/t" "$D/t"
step() { # step DESCRIPTION CMD-WITH-@F@
    local what=$1 cmd=$2
    eval "${cmd//@F@/\"\$N/t\"}"
    eval "${cmd//@F@/\"\$D/t\"}"
    check_eq "truncate: size after $what" "$(stat -c %s "$N/t")" "$(stat -c %s "$D/t")"
    check_eq "truncate: content after $what" "$(sha256sum <"$N/t")" "$(sha256sum <"$D/t")"
}
step "shrink to 65537" 'truncate -s 65537 @F@'
step "shrink to 65536" 'truncate -s 65536 @F@'
step "shrink to 65535" 'truncate -s 65535 @F@'
step "grow to 300001" 'truncate -s 300001 @F@'
step "write past the end" 'printf tail | dd of=@F@ bs=1 seek=400000 conv=notrunc status=none'
step "shrink into the hole" 'truncate -s 350000 @F@'
step "grow again (zeros, not old data)" 'truncate -s 450000 @F@'
step "to zero" 'truncate -s 0 @F@'
step "O_TRUNC then write" 'printf new >@F@'
step "grow to 5 MiB" 'truncate -s 5M @F@'
# ftruncate on an fd open for writing, then a write at the old offset
step "ftruncate under an open fd" 'exec 8<>@F@; truncate -s 10 @F@; printf x | dd bs=1 seek=100 conv=notrunc status=none >&8; exec 8>&-'
check_eq "truncate: hole reads as zeros" "$(head -c 90 /dev/zero | od -An -tx1 | tr -d ' \n')" \
    "$(dd if="$D/t" bs=1 skip=10 count=90 status=none | od -An -tx1 | tr -d ' \n')"

# ------------------------------------------------------------ mmap
log "mmap writes read back through read()"
"$T/fshelper" mmap "$D/mapped" || fail "mmap test failed (see fshelper output above)"
cp "$D/mapped" "$T/mapped.copy"
"$T/fshelper" mmap "$T/mapped.native" # same steps on native: same bytes
cmp "$T/mapped.native" "$T/mapped.copy" || fail "mmap result differs from native"

# ------------------------------------------------------------ O_APPEND
log "O_APPEND from two writers"
: >"$D/log"
for w in a b; do
    (for i in $(seq 1 500); do echo "$w-$i-$(printf '%0100d' 0)" >>"$D/log"; done) &
done
wait %-
wait
check_eq "appended lines" "1000" "$(wc -l <"$D/log")"
check_eq "no torn lines" "0" "$(grep -cvE '^[ab]-[0-9]+-0{100}$' "$D/log" || true)"
check_eq "a's lines in order" "$(seq 1 500 | tr '\n' ' ')" "$(grep '^a-' "$D/log" | cut -d- -f2 | tr '\n' ' ')"

# ------------------------------------------------------------ errno
log "errno of common mistakes"
expect_fail "File exists" mkdir "$D/sub"
printf x >"$D/sub/file"
expect_fail "Directory not empty" rmdir "$D/sub"
expect_fail "No such file or directory" cat "$D/nope"
expect_fail "No such file or directory" mkdir "$D/nope/deeper"
expect_fail "Not a directory" ls "$D/sub/file/x"
expect_fail "Is a directory" sh -c "echo x >'$D/sub'"
expect_fail "File name too long" touch "$D/$(printf 'n%.0s' $(seq 1 256))"
touch "$D/$(printf 'n%.0s' $(seq 1 255))" # 255 is allowed
expect_fail "Invalid argument" perl -e 'rename($ARGV[0], $ARGV[1]) or die "rename: $!\n"' "$D/sub" "$D/sub/inside"
mkdir "$D/e1" "$D/e2"
expect_fail "Not a directory" perl -e 'rename($ARGV[0], $ARGV[1]) or die "rename: $!\n"' "$D/e1" "$D/sub/file"
touch "$D/e2/x"
expect_fail "Directory not empty" perl -e 'rename($ARGV[0], $ARGV[1]) or die "rename: $!\n"' "$D/e1" "$D/e2"
expect_fail "Is a directory" perl -e 'rename($ARGV[0], $ARGV[1]) or die "rename: $!\n"' "$D/sub/file" "$D/e1"
# renameat2 flags (P1): syscall numbers per architecture, via perl
case "$(uname -m)" in
x86_64) NR_RENAMEAT2=316 ;;
aarch64 | riscv64) NR_RENAMEAT2=276 ;;
*) NR_RENAMEAT2="" ;;
esac
if [[ -n "$NR_RENAMEAT2" ]]; then
    rename2() { # rename2 FLAGS FROM TO (1 = RENAME_NOREPLACE, 2 = RENAME_EXCHANGE)
        perl -e 'syscall($ARGV[0], -100, $ARGV[2], -100, $ARGV[3], $ARGV[1] + 0) == 0 or die "renameat2: $!\n"' \
            "$NR_RENAMEAT2" "$@"
    }
    printf A >"$D/xa1" && printf B >"$D/xb1"
    expect_fail "File exists" rename2 1 "$D/xa1" "$D/xb1"
    check_eq "NOREPLACE left the target" "B" "$(cat "$D/xb1")"
    rename2 2 "$D/xa1" "$D/xb1" || fail "RENAME_EXCHANGE of two files failed"
    check_eq "EXCHANGE: first" "B" "$(cat "$D/xa1")"
    check_eq "EXCHANGE: second" "A" "$(cat "$D/xb1")"
    rename2 2 "$D/xa1" "$D/e1" || fail "RENAME_EXCHANGE of a file and a dir failed"
    [[ -d "$D/xa1" && -f "$D/e1" ]] || fail "RENAME_EXCHANGE of a file and a dir did not swap them"
    rename2 2 "$D/xa1" "$D/e1"
    expect_fail "No such file" rename2 2 "$D/xb1" "$D/missing"
    rename2 1 "$D/xb1" "$D/xc1" || fail "RENAME_NOREPLACE to a free name failed"
    [[ -f "$D/xc1" && ! -e "$D/xb1" ]] || fail "RENAME_NOREPLACE to a free name did not move"
    rm "$D/xa1" "$D/xc1"
else
    log "renameat2 syscall number unknown on $(uname -m): RENAME_NOREPLACE/EXCHANGE not checked"
fi
df -P "$M" >/dev/null || fail "statfs (df) on the mount failed"
[[ $(stat -f -c %b "$M") -gt 0 ]] || fail "statfs reports 0 blocks"

log "everything still there after umount + mount"
tree_manifest_file "$D" "$T/before"
mfs_umount "$M"
mfs_mount "$STORE" "$M"
tree_check_manifest "$D" "$T/before" "posix tree after remount"
mfs_umount "$M"
