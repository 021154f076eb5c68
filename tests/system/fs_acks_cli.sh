#!/usr/bin/env bash
# fs_acks_cli: the write concern's command line (issue 12). Bad --acks,
# --acks-timeout, -o acks=... and `meshfs sync` options exit 2 with one
# line naming the token, and change nothing: no mount, no store created,
# no STORE/acks written. What a mount gives is remembered in STORE/acks and
# holds for later mounts that give nothing (--acks 0 too); a new --acks N
# starts afresh; a malformed STORE/acks is reported and ignored; `meshfs
# stat` shows the setting with and without the daemon. `meshfs sync` on a
# node alone returns 0 at once; outside meshfs, with --peers N beyond the
# mesh, or with the daemon gone it fails with a clear message.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_acks_cli 240
[[ $MFS_BACKEND == meshfs ]] || skip "fs_acks_cli tests the meshfs command only"
command -v jq >/dev/null || skip "jq missing"

cli_home # (lib.sh)

# mount_flags STORE MNT ARGS...: `meshfs mount` with ARGS (flags), checked
# and registered for the cleanup as mfs_mount does; its stderr in $T/merr
mount_flags() {
    local store=$1 mnt=$2 rc=0
    shift 2
    mkdir -p "$mnt"
    mount_register "$mnt" "$store"
    mfs_cmd mount --store "$store" "$@" "$mnt" 2>"$T/merr" || rc=$?
    [[ $rc -eq 0 ]] || fail "meshfs mount --store $store $* $mnt: rc=$rc: $(cat "$T/merr")"
    is_mounted "$mnt" || fail "mount of $mnt returned 0 but it is not mounted"
    DAEMON_PIDS+=("$(mfs_daemon_pid "$mnt")")
}

# stat_acks MNT|--store DIR: "N TIMEOUT_MS WAIT ON_CLOSE" from stat --json
stat_acks() {
    mfs_cmd stat "$@" --json | jq -r '"\(.acks_n) \(.acks_timeout_ms) \(.acks_wait) \(.acks_on_close)"'
}

S=$T/s
M=$T/m
mkdir -p "$M"

log "bad values on a new store: exit 2, nothing created or mounted"
expect_err 2 x mount --store "$S" --acks x "$M"
expect_err 2 65 mount --store "$S" --acks 65 "$M"
expect_err 2 -1 mount --store "$S" --acks -1 "$M"
expect_err 2 "" mount --store "$S" --acks "" "$M"
expect_err 2 1.5 mount --store "$S" --acks=1.5 "$M"
expect_err 2 --acks mount --store "$S" "$M" --acks
expect_err 2 0 mount --store "$S" --acks 1 --acks-timeout 0 "$M"
expect_err 2 -1 mount --store "$S" --acks-timeout -1 "$M"
expect_err 2 3601 mount --store "$S" --acks-timeout 3601 "$M"
expect_err 2 inf mount --store "$S" --acks-timeout inf "$M"
expect_err 2 10s mount --store "$S" --acks-timeout 10s "$M"
expect_err 2 --acks-wait=1 mount --store "$S" --acks-wait=1 "$M"
expect_err 2 "" mount --store "$S" -o acks=x "$M"
[[ $ERR == *"acks=x"* ]] || fail "-o acks=x: the message does not name the option: $ERR"
expect_err 2 "" mount --store "$S" -o acks=65 "$M"
expect_err 2 "" mount --store "$S" -o noatime,acks-timeout=0 "$M"
[[ $ERR == *"acks-timeout=0"* ]] || fail "-o acks-timeout=0: the message does not name the option: $ERR"
[[ ! -e "$S" ]] || fail "a refused mount created the store: $(ls -A "$S")"
! is_mounted "$M" || fail "a refused mount mounted $M"

log "--acks 1 --acks-timeout 0.5: in force and remembered in STORE/acks"
mfs_init "$S"
mount_flags "$S" "$M" --acks 1 --acks-timeout 0.5
check_eq "STORE/acks" "acks 1 timeout_ms 500 wait 0 on_close 0" "$(cat "$S/acks")"
check_eq "stat --json with --acks 1" "1 500 0 0" "$(stat_acks "$M")"
run_cli stat "$M"
[[ $OUT == *"write concern"*"acks 1, timeout 0.5 s"* ]] ||
    fail "stat does not show the write concern: $(grep -i 'write concern' "$T/out" || echo none)"

log "bad values on a mounted store change nothing either"
# (the mounted store's own files change as its daemon commits: the
# setting is what a refused mount must leave alone)
before=$(cat "$S/acks")
M2=$T/m2
mkdir -p "$M2"
expect_err 2 "" mount --store "$S" -o acks=nope "$M2"
expect_err 2 0.0 mount --store "$S" --acks-timeout 0.0 "$M2"
check_eq "STORE/acks after refused mounts" "$before" "$(cat "$S/acks")"
! is_mounted "$M2" || fail "a refused mount mounted $M2"
! is_mounted "$M2" || fail "a refused mount mounted $M2"

log "sync on a node alone: 0 at once, also from the current directory"
start=$SECONDS
run_cli sync "$M"
check_eq "sync alone exit (stderr: $ERR)" 0 "$RC"
[[ $OUT == *"no other member"* ]] || fail "sync alone does not say why it returned at once: $OUT"
(cd "$M" && timeout -k 5 60 "$MESHFS" sync --all --timeout 5 >/dev/null) ||
    fail "meshfs sync in the mount's directory failed"
((SECONDS - start < 10)) || fail "sync on a node alone took $((SECONDS - start)) s"
expect_err 1 "" sync --peers 1 --timeout 1 "$M"
[[ $ERR == *"cannot wait for 1 member"* ]] || fail "sync --peers 1 alone: unclear message: $ERR"

log "sync usage errors: exit 2"
expect_err 2 0 sync --peers 0 "$M"
expect_err 2 x sync --peers x "$M"
expect_err 2 --peers sync --all --peers 1 "$M"
expect_err 2 0 sync --timeout 0 "$M"
expect_err 2 --json sync --json "$M"
expect_err 2 "" sync "$M" "$T"

log "sync outside meshfs: a clear failure"
expect_err 1 "" sync "$T"
[[ $ERR == *"not in a meshfs mount"* ]] || fail "sync outside meshfs: unclear message: $ERR"

log "a mount without --acks keeps the remembered setting"
mfs_umount "$M"
run_cli stat --store "$S" --json
check_eq "stat without a daemon: remembered setting" "1 500 0 0" "$(jq -r '"\(.acks_n) \(.acks_timeout_ms) \(.acks_wait) \(.acks_on_close)"' "$T/out")"
run_cli stat --store "$S"
[[ $OUT == *"write concern"*"acks 1"*"remembered"* ]] || fail "stat without a daemon: $(grep -i 'write concern' "$T/out" || echo none)"
mfs_mount "$S" "$M"
check_eq "stat --json after a mount without --acks" "1 500 0 0" "$(stat_acks "$M")"

log "-o acks-wait,acks-on-close without N: added to the remembered setting"
mfs_umount "$M"
mfs_mount "$S" "$M" acks-wait,acks-on-close
check_eq "STORE/acks" "acks 1 timeout_ms 500 wait 1 on_close 1" "$(cat "$S/acks")"
check_eq "stat --json" "1 500 1 1" "$(stat_acks "$M")"

log "-o acks=2: a new N starts afresh (default timeout, no wait)"
mfs_umount "$M"
mfs_mount "$S" "$M" acks=2
check_eq "STORE/acks" "acks 2 timeout_ms 10000 wait 0 on_close 0" "$(cat "$S/acks")"
check_eq "stat --json" "2 10000 0 0" "$(stat_acks "$M")"

log "--acks 0 turns it off, and that is remembered too"
mfs_umount "$M"
mount_flags "$S" "$M" --acks 0
check_eq "STORE/acks" "acks 0 timeout_ms 10000 wait 0 on_close 0" "$(cat "$S/acks")"
check_eq "stat --json with --acks 0" "0 10000 0 0" "$(stat_acks "$M")"
mfs_umount "$M"
mfs_mount "$S" "$M"
check_eq "stat --json after --acks 0 and a plain mount" "0 10000 0 0" "$(stat_acks "$M")"
run_cli stat "$M"
[[ $OUT == *"write concern"*"off"* ]] || fail "stat with --acks 0: $(grep -i 'write concern' "$T/out" || echo none)"

log "a malformed STORE/acks: reported, ignored (off), left alone"
mfs_umount "$M"
echo "acks many" >"$S/acks"
mount_flags "$S" "$M"
grep -q "malformed" "$T/merr" || fail "a malformed STORE/acks was not reported: $(cat "$T/merr")"
check_eq "stat --json with a malformed STORE/acks" "0 10000 0 0" "$(stat_acks "$M")"
check_eq "STORE/acks after a mount that gave nothing" "acks many" "$(cat "$S/acks")"

log "sync with the daemon gone: a clear failure"
mfs_kill9 "$M"
expect_err 1 "" sync "$M"
[[ $ERR == *"not running"* ]] || fail "sync with a dead daemon: unclear message: $ERR"
