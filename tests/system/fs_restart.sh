#!/usr/bin/env bash
# fs_restart: restarting a crashed daemon while programs keep using the
# mount by path (issue 14). A writer creates, fsyncs, renames and deletes
# files by path, without pause; 20 times the daemon is killed with SIGKILL
# and `meshfs mount` run again at once. Every restart must succeed (the
# new mount goes over the dead one: nothing a program writes meanwhile
# lands in the directory underneath, which a detach-then-mount restart
# let happen, after which every mount failed "not empty"); the writer
# sees errors while the daemon is down and the mount again after; at the
# end every file whose fsync (and, for a rename or delete, whose
# directory's fsync) succeeded is there as acknowledged, and the bare
# directory under the mount point is empty.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_restart 600
[[ $MFS_BACKEND == meshfs ]] || skip "only meshfs has a daemon to restart"
command -v sync >/dev/null || skip "sync (coreutils) is missing"

ROUNDS=${RESTART_ROUNDS:-20}
mfs_up
LOG=$T/writer.log # what the writer did and whether it was acknowledged
STOP=$T/stop

# writer (at the mount's top): f$i written and fsync'd ("ok"), every third file renamed to
# g$i and the directory fsync'd ("mv"), every fifth a d$i made and removed
# and the directory fsync'd ("rm"); an operation that fails with the
# daemon gone is logged "?" (its outcome is not known).
writer() {
    local i=0 d=$M # at the top: in a gap between mounts they would land underneath
    while [[ ! -e $STOP ]]; do
        i=$((i + 1))
        if printf 'file %d\n' "$i" >"$d/f$i" 2>/dev/null && sync "$d/f$i" 2>/dev/null; then
            echo "ok f$i"
        else
            echo "? f$i"
        fi
        if ((i % 3 == 0)); then
            local j=$((i - 2))
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
}
writer >"$LOG" &
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
log "$ROUNDS restarts; $stacked mount(s) on $M (the dead ones stay under the live one until it is unmounted; $mounts0 before)"
grep -q '^? ' "$LOG" || fail "the writer never met the dead mount (no failed operation): the kills came between its operations only?"

# a clean unmount (the dead mounts under it go too), then the bare directory
mfs_umount "$M"
! is_mounted "$M" || fail "$M still mounted after meshfs umount: $(grep " $M " /proc/mounts | tr '\n' '|')"
left=$(find "$M" -mindepth 1 | head -5)
[[ -z "$left" ]] || fail "files landed in the directory under the mount point: $left"

# everything acknowledged is there
mfs_mount "$STORE" "$M"
declare -A want=() # name -> content ("" = must be absent)
declare -A unsure=()
while read -r what a b; do
    case "$what" in
    ok) want[$a]="file ${a#f}" ;;
    mv) unset "want[$a]"; want[$b]="file ${a#f}"; unsure[$a]=1 ;;
    rm) want[$a]="" ;;
    \?) unsure[$a]=1; unset "want[$a]" ;;
    esac
done <"$LOG"
checked=0
for n in "${!want[@]}"; do
    [[ -z "${unsure[$n]:-}" || -n "${want[$n]}" ]] || continue
    if [[ -z "${want[$n]}" ]]; then
        [[ ! -e "$M/$n" ]] || fail "$M/$n was removed (acknowledged) but is there"
    else
        got=$(cat "$M/$n" 2>/dev/null) || fail "acknowledged file $n is missing"
        [[ $got == "${want[$n]}" ]] || fail "acknowledged file $n holds '$got', want '${want[$n]}'"
    fi
    checked=$((checked + 1))
done
log "$checked acknowledged names checked ($(grep -c '^? ' "$LOG") operations met a dead mount)"
mfs_umount "$M"
