#!/usr/bin/env bash
# fs_systemd: the daemon under systemd's notify protocol (issue 14), with a
# fake NOTIFY_SOCKET listener: `meshfs mount -f` sends READY=1 only once the
# mount answers (a file written right after it reads back), pings
# WATCHDOG=1 every half WatchdogSec while the mount answers, and sends
# STOPPING=1 when it is unmounted; then it exits 0. Without NOTIFY_SOCKET
# nothing of this is sent (the plain mount tests).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_systemd 120
[[ $MFS_BACKEND == meshfs ]] || skip "only meshfs has a daemon"
helper_build
STORE=$T/store
M=$T/mnt
mkdir -p "$M"
mfs_init "$STORE"
SOCK=$T/notify.sock
NLOG=$T/notify.log
: >"$NLOG"
"$T/fshelper" notify "$SOCK" "$NLOG" &
LISTENER=$!
wait_until 5 "the notify socket" test -S "$SOCK"

mount_register "$M" "$STORE"
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=1000000 "$MESHFS" mount -f --store "$STORE" "$M" 2>"$T/daemon.log" &
DAEMON=$!
DAEMON_PIDS+=("$DAEMON")
wait_until 30 "READY=1 on the notify socket" grep -q "READY=1" "$NLOG"
# ready means usable: the mount answers at once
echo ready >"$M/at-ready" || fail "the mount does not take a file right after READY=1"
check_eq "a file written right after READY=1" ready "$(cat "$M/at-ready")"
grep -q "READY=1 STATUS=$STORE mounted on $M" "$NLOG" || fail "READY=1 without the status: $(cat "$NLOG")"
n0=$(grep -c "WATCHDOG=1" "$NLOG" || true)
sleep 2.2
n1=$(grep -c "WATCHDOG=1" "$NLOG" || true)
# every 0.5 s: about 4 in 2.2 s
((n1 - n0 >= 3)) || fail "watchdog pings: $((n1 - n0)) in 2.2 s with WatchdogSec=1s (want >= 3)"
log "READY=1 once usable; $((n1 - n0)) watchdog pings in 2.2 s"

# a hung daemon stops pinging (SIGSTOP: nothing answers, nothing pings)
kill -STOP "$DAEMON"
n2=$(grep -c "WATCHDOG=1" "$NLOG" || true)
sleep 1.5
n3=$(grep -c "WATCHDOG=1" "$NLOG" || true)
kill -CONT "$DAEMON"
check_eq "watchdog pings while the daemon is stopped" 0 "$((n3 - n2))"
wait_until 10 "watchdog pings again after SIGCONT" eval '(( $(grep -c "WATCHDOG=1" "$NLOG") > n3 ))'

run_ok mfs_cmd umount "$M" >/dev/null
wait_until 30 "the daemon to exit" eval "! kill -0 $DAEMON 2>/dev/null"
rc=0
wait "$DAEMON" || rc=$?
check_eq "daemon exit status" 0 "$rc"
grep -q "STOPPING=1" "$NLOG" || fail "no STOPPING=1 at unmount: $(cat "$NLOG")"
kill "$LISTENER" 2>/dev/null || true
log "STOPPING=1 at unmount, exit 0"
