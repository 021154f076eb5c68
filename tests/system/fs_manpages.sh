#!/usr/bin/env bash
# fs_manpages: the --help texts and the man pages (docs/man/*.scd) cannot
# drift apart (issue 14): every command `meshfs --help` lists has a
# section "## meshfs COMMAND" in meshfs.1.scd and the other way round, and
# within each, every flag the command's --help names is in its section and
# every flag its section names is in its --help; mount.meshfs's flags
# likewise against mount.meshfs.8.scd; both pages list the exit codes the
# programs use; the pages build with scdoc when it is installed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_manpages 60
[[ $MFS_BACKEND == meshfs ]] || skip "the man pages are meshfs's"
MAN=$(cd "$(dirname "$0")/../../docs/man" && pwd)
P1=$MAN/meshfs.1.scd
P8=$MAN/mount.meshfs.8.scd

# the section of COMMAND in meshfs.1.scd
section() { awk -v h="## meshfs $1" '$0 == h || index($0, h " ") == 1 { on = 1; print; next } /^#/ { on = 0 } on' "$P1"; }
# the flags a text names: --long ones, and -x ones at the start of an
# option line or in brackets
flags() { grep -oE '(^|[][ |(*])--?[a-z][a-z-]*' | grep -oE -- '--?[a-z][a-z-]*' | sort -u; }

cmds=$("$MESHFS" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } /^$/ { on = 0 }' | sort -u)
[[ -n "$cmds" ]] || fail "meshfs --help lists no commands"
secs=$(sed -n 's/^## meshfs \([a-z]*\).*/\1/p' "$P1" | sort -u)
extra=$(comm -13 <(echo "$cmds") <(echo "$secs") | grep -vx -e help -e version || true)
missing=$(comm -23 <(echo "$cmds") <(echo "$secs") || true)
[[ -z "$missing" ]] || fail "meshfs.1.scd has no section for: $missing"
[[ -z "$extra" ]] || fail "meshfs.1.scd documents commands meshfs --help does not list: $extra"
# umount's alias, and what --help and the page both leave to the man page
ignore='^(--help|-h)$'
n=0
for c in $cmds; do
    h=$("$MESHFS" "$c" --help | flags | grep -vE "$ignore" || true)
    m=$(section "$c" | flags | grep -vE "$ignore" || true)
    only_help=$(comm -23 <(echo "$h") <(echo "$m") | grep . || true)
    only_man=$(comm -13 <(echo "$h") <(echo "$m") | grep . || true)
    [[ -z "$only_help" ]] || fail "meshfs $c --help names $(echo $only_help) but its man page section does not"
    [[ -z "$only_man" ]] || fail "the man page section of meshfs $c names $(echo $only_man) but meshfs $c --help does not"
    n=$((n + $(echo "$h" | grep -c . || true)))
done
log "$(echo "$cmds" | wc -l) commands, $n flags: --help and meshfs.1 agree"

# mount.meshfs: its usage line's flags against the page's OPTIONS
ln -s "$MESHFS" "$T/mount.meshfs"
usage=$("$T/mount.meshfs" 2>&1 || true)
[[ $usage == *"-sfnv"* && $usage == *"-o OPTS"* ]] || fail "mount.meshfs's usage: $usage"
for f in -s -f -n -v -r -o; do
    grep -q "^\*$f\*" "$P8" || fail "mount.meshfs.8.scd does not describe $f"
done
out=$("$T/mount.meshfs" /nonexistent "$T/m" -f -o '_netdev,nofail,x-systemd.requires=a,listen=127.0.0.1:1,peer=127.0.0.1:2,ro' 2>&1) ||
    fail "mount.meshfs -f failed: $out"
[[ $out == *"--listen 127.0.0.1:1 --peer 127.0.0.1:2 -o ro "* && $out != *_netdev* && $out != *x-systemd* ]] ||
    fail "mount.meshfs -f did not drop mount(8)'s options or map listen=/peer=: $out"
rc=0
"$T/mount.meshfs" a b c 2>/dev/null || rc=$?
check_eq "mount.meshfs with a bad argument: mount(8)'s usage code" 1 "$rc"

# exit codes
for code in 0 1 2; do
    awk '/^# EXIT STATUS/ { on = 1 } /^# FILES/ { on = 0 } on' "$P1" | grep -q "^\*$code\*" ||
        fail "meshfs.1.scd's EXIT STATUS lacks $code"
done
for code in 0 1 32; do
    awk '/^# EXIT STATUS/ { on = 1 } /^# FILES/ { on = 0 } on' "$P8" | grep -q "^\*$code\*" ||
        fail "mount.meshfs.8.scd's EXIT STATUS lacks $code"
done
grep -q '^# EXAMPLES' "$P1" && grep -q '^# EXAMPLES' "$P8" || fail "a man page without EXAMPLES"
grep -q 'meshfs  _netdev' "$P8" || fail "mount.meshfs(8) does not show the fstab line"

if command -v scdoc >/dev/null; then
    scdoc <"$P1" >"$T/meshfs.1" || fail "meshfs.1.scd does not build"
    scdoc <"$P8" >"$T/mount.meshfs.8" || fail "mount.meshfs.8.scd does not build"
    log "both pages build with scdoc"
fi
