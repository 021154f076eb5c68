#!/usr/bin/env bash
# packaging/test-deb.sh: the Debian package end to end, as root, on this
# machine (tests/run-all.sh runs it last): build it (build-deb.sh: lintian
# must pass), install it with apt-get, check what it installed
# (systemd-analyze verify on the units, the man pages, completion), mount
# through `mount -t meshfs` and through an fstab line (`mount -a -t meshfs`
# and `mount DIR`, with mount -T so that /etc/fstab stays untouched),
# restart a killed daemon with mount(8), run some system tests against the
# installed binary, then purge it and check that nothing it installed is
# left. Skips (exit 77) when a meshfs package is installed already: it is
# not ours to remove.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '[%s test-deb] %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
[[ $EUID -eq 0 ]] || { say "SKIP: needs root"; exit 77; }
if dpkg-query -W -f='${Status}' meshfs 2>/dev/null | grep -q 'ok installed'; then
    say "SKIP: a meshfs package is installed on this machine; not replacing it"
    exit 77
fi
T=$(mktemp -d /tmp/meshfs-test-deb.XXXXXX)
installed=0
cleanup() {
    local rc=$? m
    set +e
    for m in "$T"/m1 "$T"/m2; do
        for _ in 1 2 3 4 5 6 7 8; do
            grep -q " $m " /proc/mounts || break
            umount "$m" 2>/dev/null || umount -l "$m"
        done
    done
    pkill -f "mount.meshfs $T/" 2>/dev/null
    if ((installed)); then apt-get purge -y -qq meshfs >/dev/null 2>&1; fi
    rm -rf "$T"
    ((rc == 0)) && say "PASS" || say "exit $rc"
    exit $rc
}
trap cleanup EXIT

say "building the package"
bash "$top/packaging/build-deb.sh" "$T" >"$T/build.out" 2>&1 || { cat "$T/build.out" >&2; fail "build-deb.sh"; }
deb=$(ls "$T"/meshfs_*.deb)
say "installing $(basename "$deb")"
apt-get install -y -qq "$deb" >"$T/apt.out" 2>&1 || { cat "$T/apt.out" >&2; fail "apt-get install $deb"; }
installed=1
dpkg-query -L meshfs | sort >"$T/files"

for f in /usr/bin/meshfs /sbin/mount.meshfs /lib/systemd/system/meshfs@.service \
    /usr/lib/systemd/user/meshfs@.service /etc/default/meshfs \
    /usr/share/man/man1/meshfs.1.gz /usr/share/man/man8/mount.meshfs.8.gz \
    /usr/share/bash-completion/completions/meshfs /usr/share/doc/meshfs/copyright \
    /usr/share/fish/vendor_completions.d/meshfs.fish /usr/share/zsh/vendor-completions/_meshfs \
    /usr/share/doc/meshfs/changelog.gz; do
    [[ -e $f ]] || fail "the package did not install $f"
done
[[ $(readlink -f /sbin/mount.meshfs) == /usr/bin/meshfs ]] || fail "/sbin/mount.meshfs does not lead to /usr/bin/meshfs"
/usr/bin/meshfs version >/dev/null || fail "the installed meshfs does not run"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (apt-get install systemd)"
mkdir "$T/units"
cp /lib/systemd/system/meshfs@.service "$T/units/meshfs@mnt-shared.service"
systemd-analyze verify "$T/units/meshfs@mnt-shared.service" 2>&1 | tee "$T/verify" >&2 || true
[[ ! -s "$T/verify" ]] || fail "systemd-analyze verify (system unit): $(cat "$T/verify")"
cp /usr/lib/systemd/user/meshfs@.service "$T/units/meshfs@shared.service"
mkdir -m 0700 "$T/run"
XDG_RUNTIME_DIR=$T/run systemd-analyze --user verify "$T/units/meshfs@shared.service" 2>&1 | tee "$T/verify" >&2 || true
[[ ! -s "$T/verify" ]] || fail "systemd-analyze verify (user unit): $(cat "$T/verify")"
say "systemd-analyze verify: both units clean"
if command -v man >/dev/null; then
    man -w meshfs >/dev/null && man -w mount.meshfs >/dev/null || fail "man cannot find the pages"
fi
bash -c '. /usr/share/bash-completion/bash_completion 2>/dev/null; . /usr/share/bash-completion/completions/meshfs; complete -p meshfs mount.meshfs' >/dev/null ||
    fail "the bash completion does not load"

# mount -t meshfs, by hand
mkdir -p "$T/m1" "$T/m2"
/usr/bin/meshfs init --store "$T/s1" >/dev/null
mount -t meshfs -o listen=127.0.0.1:0,noatime "$T/s1" "$T/m1" 2>"$T/mount.err" || fail "mount -t meshfs: $(cat "$T/mount.err")"
grep -q " $T/m1 fuse.meshfs " /proc/mounts || fail "mount -t meshfs returned but $T/m1 is not a meshfs mount"
grep " $T/m1 " /proc/mounts | grep -q noatime || fail "-o noatime did not reach the mount"
echo one >"$T/m1/f" && sync "$T/m1/f"
# a killed daemon, restarted with mount(8): the new mount goes over it
pid=$(/usr/bin/meshfs stat --json "$T/m1" | jq -r .daemon_pid)
[[ $pid =~ ^[0-9]+$ ]] || fail "no daemon for $T/m1"
kill -9 "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
mount -t meshfs -o listen=127.0.0.1:0 "$T/s1" "$T/m1" 2>"$T/mount.err" || fail "mount -t meshfs after kill -9: $(cat "$T/mount.err")"
[[ $(cat "$T/m1/f") == one ]] || fail "the fsync'd file after kill -9 and mount -t meshfs"
pid=$(/usr/bin/meshfs stat --json "$T/m1" | jq -r .daemon_pid)
umount "$T/m1" || fail "umount $T/m1"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$pid" 2>/dev/null || fail "the daemon of $T/m1 did not exit after umount"
grep -q " $T/m1 " /proc/mounts && umount "$T/m1" # the dead mount under it
! grep -q " $T/m1 " /proc/mounts || fail "$T/m1 still mounted"
say "mount -t meshfs, restart after kill -9, umount: ok"

# an fstab line (its own file: /etc/fstab stays as it is)
/usr/bin/meshfs init --store "$T/s2" >/dev/null
printf '%s %s meshfs _netdev,nofail,x-systemd.automount,listen=127.0.0.1:0 0 0\n' "$T/s2" "$T/m2" >"$T/fstab"
mount -a -t meshfs -T "$T/fstab" || fail "mount -a -t meshfs -T $T/fstab"
grep -q " $T/m2 fuse.meshfs " /proc/mounts || fail "mount -a did not mount $T/m2"
echo two >"$T/m2/g"
pid=$(/usr/bin/meshfs stat --json "$T/m2" | jq -r .daemon_pid)
umount "$T/m2" || fail "umount $T/m2"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
mount -T "$T/fstab" "$T/m2" || fail "mount $T/m2 (by its fstab line)"
[[ $(cat "$T/m2/g") == two ]] || fail "the file written before umount, after mount by the fstab line"
pid=$(/usr/bin/meshfs stat --json "$T/m2" | jq -r .daemon_pid)
umount "$T/m2"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
say "fstab: mount -a -t meshfs, umount, mount DIR: ok"

# some system tests against the installed binary
for t in fs_cli fs_restart mesh_join; do
    say "system test $t against /usr/bin/meshfs"
    MESHFS=/usr/bin/meshfs bash "$top/tests/system/$t.sh" >"$T/$t.log" 2>&1 || {
        tail -30 "$T/$t.log" >&2
        fail "$t against the installed binary"
    }
done

say "purging"
apt-get purge -y -qq meshfs >"$T/apt.out" 2>&1 || { cat "$T/apt.out" >&2; fail "apt-get purge meshfs"; }
installed=0
left=""
while read -r f; do
    [[ -d $f ]] && continue # directories (also /lib, /sbin: links to /usr)
    [[ -e $f || -L $f ]] && left+=" $f"
done <"$T/files"
[[ -z $left ]] || fail "files left after purge:$left"
[[ ! -e /etc/default/meshfs ]] || fail "/etc/default/meshfs left after purge"
say "purged: nothing left"
