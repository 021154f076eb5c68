#!/usr/bin/env bash
# fs_restart: restarting a crashed daemon while programs keep using the
# mount by path (issue 14). A writer creates, fsyncs, renames and deletes
# files by path, without pause; 20 times the daemon is killed with SIGKILL
# and `meshfs mount` run again at once, as root, then 5 times without root
# (user nobody). Every restart must succeed: the mount's holder
# (fs/holder.c) keeps the mount in place while the daemon is down,
# answering ENOTCONN, so nothing can land in the directory underneath (a
# detach-then-mount restart, all a restart without root could do before,
# let that happen, after which every mount failed "not empty"); the new
# daemon takes the same mount over. The writer sees errors while the
# daemon is down and the mount again after. At the end every file whose
# fsync (and, for a rename or delete, whose directory's fsync) succeeded
# is there as acknowledged, and the bare directory under the mount point
# is empty. A last round kills the holder too: the mount is then dead,
# and `meshfs mount` mounts over it (root), as before the holder.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_restart 600
[[ $MFS_BACKEND == meshfs ]] || skip "only meshfs has a daemon to restart"
command -v sync >/dev/null || skip "sync (coreutils) is missing"

ROUNDS=${RESTART_ROUNDS:-20}
mfs_up
LOG=$T/writer.log # what the writer did and whether it was acknowledged
STOP=$T/stop

# writer DIR STOP (at the mount's top): f$i written and fsync'd ("ok"),
# every third file renamed to g$i and the directory fsync'd ("mv"), every
# fifth a d$i made and removed and the directory fsync'd ("rm"); an
# operation that fails is logged "?" (its outcome is not known).
cat >"$T/writer.sh" <<'WRITER'
#!/usr/bin/env bash
d=$1 stop=$2 i=0 # at the top: in a gap between mounts they would land underneath
while [[ ! -e $stop && -d ${stop%/*} ]]; do # (gone: the test ended)
    i=$((i + 1))
    if printf 'file %d\n' "$i" >"$d/f$i" 2>/dev/null && sync "$d/f$i" 2>/dev/null; then
        echo "ok f$i"
    else
        echo "? f$i"
    fi
    if ((i % 3 == 0)); then
        j=$((i - 2))
        if mv "$d/f$j" "$d/g$j" 2>/dev/null && sync "$d" 2>/dev/null; then
            echo "mv f$j g$j"
        else
            echo "? f$j"
        fi
    fi
    if ((i % 5 == 0)); then
        if : >"$d/d$i" 2>/dev/null && rm "$d/d$i" 2>/dev/null && sync "$d" 2>/dev/null; then
            echo "rm d$i"
        else
            echo "? d$i"
        fi
    fi
    sleep 0.01
done
WRITER
chmod 755 "$T/writer.sh"
"$T/writer.sh" "$M" "$STOP" >"$LOG" &
WRITER=$!
RANDOM=1414
mounts0=$(grep -c " $M " /proc/mounts)
for round in $(seq 1 "$ROUNDS"); do
    sleep "0.$((2 + RANDOM % 7))"
    mfs_kill9 "$M" "$MFS_PID"
    sleep "0.$((RANDOM % 3))" # the writer meets the dead mount
    mfs_mount "$STORE" "$M"   # fails the test if the mount fails
    ok=$(grep -c '^ok ' "$LOG" || true)
    ((round % 5 == 0)) && log "round $round: $ok files acknowledged so far"
done
sleep 0.5
before=$(grep -c '^ok ' "$LOG" || true)
sleep 1
after=$(grep -c '^ok ' "$LOG" || true)
((after > before)) || fail "the writer makes no progress on the last mount ($before -> $after acknowledged)"
touch "$STOP"
wait "$WRITER"
stacked=$(grep -c " $M " /proc/mounts)
log "$ROUNDS restarts; $stacked mount(s) on $M ($mounts0 before)"
grep -q '^? ' "$LOG" || fail "the writer never met the mount without its daemon (no failed operation): the kills came between its operations only?"
((stacked == mounts0)) || fail "$stacked mounts on $M after the restarts, $mounts0 before: a restart mounted again instead of taking the mount over"

# check_acked MNT LOG: everything the writer's LOG says was acknowledged
# is in MNT, as acknowledged
check_acked() {
    local mnt=$1 log=$2 n what a b got checked=0
    declare -A want=() # name -> content ("" = must be absent)
    declare -A unsure=()
    while read -r what a b; do
        case "$what" in
        ok) want[$a]="file ${a#f}" ;;
        mv) unset "want[$a]"; want[$b]="file ${a#f}"; unsure[$a]=1 ;;
        rm) want[$a]="" ;;
        \?) unsure[$a]=1; unset "want[$a]" ;;
        esac
    done <"$log"
    for n in "${!want[@]}"; do
        [[ -z "${unsure[$n]:-}" || -n "${want[$n]}" ]] || continue
        if [[ -z "${want[$n]}" ]]; then
            [[ ! -e "$mnt/$n" ]] || fail "$mnt/$n was removed (acknowledged) but is there"
        else
            got=$(cat "$mnt/$n" 2>/dev/null) || fail "acknowledged file $n is missing"
            [[ $got == "${want[$n]}" ]] || fail "acknowledged file $n holds '$got', want '${want[$n]}'"
        fi
        checked=$((checked + 1))
    done
    log "$checked acknowledged names checked in $mnt"
}

# A file open for writing across the crash: the dead daemon may have
# answered writes it never committed (a kill -9 loses them), so the
# file's next fsync (or write, or close) says EIO, once, rather than
# succeed over a loss; after that the same descriptor works. A file open
# for reading reads on.
printf 'read me\n' >"$M/read-across"
sync "$M/read-across"
python3 - "$M" "$T/py.ready" "$T/py.go" >"$T/py.out" 2>&1 <<'PY' &
import os, sys, time
m, ready, go = sys.argv[1:4]
w = os.open(m + "/open-across", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(w, b"before the crash\n")
os.fsync(w)  # the file exists after the crash: "again" can work
os.write(w, b"maybe lost\n")
r = os.open(m + "/read-across", os.O_RDONLY)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
print("read", os.pread(r, 100, 0).decode().strip())
try:
    os.fsync(w)
    print("fsync ok")
except OSError as e:
    print("fsync", e.errno)
try:
    os.write(w, b"after the crash\n")
    os.fsync(w)
    print("again ok")
except OSError as e:
    print("again", e.errno)
os.close(w)
os.close(r)
PY
PY_PID=$!
wait_until 10 "python to open its files" test -e "$T/py.ready"
mfs_kill9 "$M" "$MFS_PID"
mfs_mount "$STORE" "$M"
touch "$T/py.go"
wait "$PY_PID" || fail "the program with files open across the crash failed: $(cat "$T/py.out")"
log "files open across the crash: $(tr '\n' ' ' <"$T/py.out")"
grep -qx "read read me" "$T/py.out" || fail "a file open for reading across the crash does not read: $(cat "$T/py.out")"
grep -qx "fsync 5" "$T/py.out" || fail "a file open for writing across the crash: its fsync did not say EIO: $(cat "$T/py.out")"
grep -qx "again ok" "$T/py.out" || fail "a file open for writing across the crash: it does not work after the EIO: $(cat "$T/py.out")"

# a clean unmount, then the bare directory
mfs_umount "$M"
! is_mounted "$M" || fail "$M still mounted after meshfs umount: $(grep " $M " /proc/mounts | tr '\n' '|')"
left=$(find "$M" -mindepth 1 | head -5)
[[ -z "$left" ]] || fail "files landed in the directory under the mount point: $left"
mfs_mount "$STORE" "$M"
check_acked "$M" "$LOG"
mfs_umount "$M"

# Without root (nobody): the same, 5 kills. Before the holder, such a
# restart detached the dead mount first, and the writer wrote underneath.
NB=$T/nobody
mkdir -p "$NB/store" "$NB/mnt"
chown -R nobody: "$NB"
as_nobody() { runuser -u nobody -- env HOME="$NB" "$@"; }
run_ok as_nobody timeout -k 5 120 "$MESHFS" init --store "$NB/store" >/dev/null
nb_mount() {
    mount_register "$NB/mnt" "$NB/store"
    run_ok as_nobody timeout -k 5 120 "$MESHFS" mount --store "$NB/store" "$NB/mnt" >/dev/null
    is_mounted "$NB/mnt" || fail "mount of $NB/mnt without root returned 0 but it is not mounted"
}
nb_mount
rm -f "$STOP"
as_nobody "$T/writer.sh" "$NB/mnt" "$STOP" >"$T/writer-nobody.log" &
WRITER=$!
for round in 1 2 3 4 5; do
    sleep "0.$((2 + RANDOM % 7))"
    mfs_kill9 "$NB/mnt"
    sleep "0.$((RANDOM % 3))"
    nb_mount
done
sleep 1
touch "$STOP"
wait "$WRITER"
failed=$(grep -c '^? ' "$T/writer-nobody.log" || true)
log "without root: 5 restarts, $failed operations failed, $(grep -c '^ok ' "$T/writer-nobody.log") files acknowledged"
(($(grep -c '^ok ' "$T/writer-nobody.log") > 20)) || fail "the writer made no progress without root"
(($(grep -c " $NB/mnt " /proc/mounts) == 1)) || fail "without root, $(grep -c " $NB/mnt " /proc/mounts) mounts on $NB/mnt: a restart mounted again instead of taking the mount over"
run_ok as_nobody timeout -k 5 120 "$MESHFS" umount "$NB/mnt" >/dev/null
! is_mounted "$NB/mnt" || fail "$NB/mnt still mounted after meshfs umount"
left=$(find "$NB/mnt" -mindepth 1 | head -5)
[[ -z "$left" ]] || fail "without root, files landed in the directory under the mount point: $left"
mfs_mount "$NB/store" "$NB/mnt" # (as root: nobody's mount is nobody's alone)
check_acked "$NB/mnt" "$T/writer-nobody.log"
mfs_umount "$NB/mnt"

# Without its holder (killed with the daemon) the mount is dead, and a
# restart mounts over it (root), as before the holder.
mfs_mount "$STORE" "$M"
holder=$(pgrep -f "^meshfs-holder .* $STORE $M ") || fail "no holder for $M"
kill -9 "$holder"
mfs_kill9 "$M" "$MFS_PID"
err=$(stat -f "$M" 2>&1 >/dev/null || true)
[[ $err == *"not connected"* ]] || fail "with its daemon and holder killed, statfs of $M says '$err', want ENOTCONN"
mfs_mount "$STORE" "$M"
(($(grep -c " $M " /proc/mounts) == 2)) || fail "the restart did not mount over the dead mount"
check_acked "$M" "$LOG"
mfs_umount "$M"
