#!/usr/bin/env bash
# mesh_acks: the write concern (issue 12, DESIGN P10) on real daemons.
#  1. With --acks 1, a file fsync'd on A is on B: right after each fsync
#     returns, A's daemon is frozen (SIGSTOP: it sends nothing more) and B
#     must read the whole file on its own (100 rounds, 0 lost); the ops
#     left with their intent-log records (acks_early > 0). Then A is
#     killed -9 and its store destroyed, B is killed -9 and remounted:
#     every file is still complete on B's disk.
#  2. With B cut off, fsync on A fails with EIO after the timeout (B still
#     thought alive), and at once once B is known dead; the change stays on
#     A and reaches B after the heal. `meshfs stat` counts both failures.
#  3. `meshfs sync` returns 0 only once B holds everything: a tree copied
#     on A, `meshfs sync`, A frozen: B has the whole tree. With B cut off
#     it fails (exit 1) and names B.
# Without --acks the first check is not met: a run of it is logged (how
# many of 20 files B lacked right after the fsync), not asserted.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init acks 400 7720
mesh_up a b -- --acks 1 --acks-timeout 2
A=${MNT[a]} B=${MNT[b]}
ROUNDS=${ACKS_ROUNDS:-100}

freeze() { kill -STOP "${NODE_PID[$1]}"; }
thaw() { kill -CONT "${NODE_PID[$1]}"; }

# write_fsync N: a new file of a random size (1 B - 300 kB) written on A
# with one fsync at the end; its copy stays in $T/src-N
write_fsync() {
    head -c $((RANDOM * 9 + 1)) /dev/urandom >"$T/src-$1"
    dd if="$T/src-$1" of="$A/f$1" bs=64k conv=fsync status=none
}

# B reads file N whole, within 5 s, with A frozen
on_b() { timeout 5 cmp -s "$T/src-$1" "$B/f$1"; }

# ---- 1. fsync'd on A, then A frozen: B has it
lost=0
for i in $(seq 1 "$ROUNDS"); do
    write_fsync "$i"
    freeze a
    on_b "$i" || { lost=$((lost + 1)); log "round $i: B lacks f$i ($(stat -c %s "$B/f$i" 2>&1)) with A frozen"; }
    thaw a
done
((lost == 0)) || fail "$lost of $ROUNDS files fsync'd on A with --acks 1 were not whole on B right after"
met=$(mesh_stat a | jq -r .acks_met)
((met >= ROUNDS)) || fail "meshfs stat on A counts $met waits met, not >= $ROUNDS"
# the fsyncs' ops left with their intent-log records, not with their
# commits (a store on tmpfs has no log: then none can)
early=$(mesh_stat a | jq -r '.acks_early // 0')
if [[ $(stat -f -c %T "${STORE[a]}") != tmpfs ]]; then
    ((early > 0)) || fail "no fsync's ops left A with their intent-log record (acks_early $early)"
fi
log "$ROUNDS files fsync'd on A held by B when fsync returned; ack latency p50 $(mesh_stat a | jq -r .acks_p50_us) us, p99 $(mesh_stat a | jq -r .acks_p99_us) us; $early early pushes"

# A gone for good (killed, store destroyed); B crashes and comes back
mesh_kill9 a
rm -rf "${STORE[a]}"
mesh_kill9 b
mesh_mount b
for i in $(seq 1 "$ROUNDS"); do
    cmp -s "$T/src-$i" "$B/f$i" || fail "f$i is not whole on B after A's store was destroyed and B restarted"
done
log "all $ROUNDS files whole on B after A's store was destroyed and B was killed -9 and remounted"
mesh_umount b

# ---- the same without --acks, on a mesh of its own: logged only
MESH_INVITER=""
mesh_create c d
mesh_mount c --acks 0
mesh_mount d
mesh_wait_peers 30 c d
A=${MNT[c]} B=${MNT[d]}
lacked=0
for i in $(seq 1 20); do
    head -c $((RANDOM * 9 + 1)) /dev/urandom >"$T/src-$i"
    dd if="$T/src-$i" of="$A/f$i" bs=64k conv=fsync status=none
    freeze c
    timeout 1 cmp -s "$T/src-$i" "$B/f$i" || lacked=$((lacked + 1))
    thaw c
done
log "without --acks: B lacked $lacked of 20 files right after their fsync on A"
mesh_umount c
mesh_umount d

# ---- 2. B cut off: EIO after the timeout, then at once
MESH_INVITER=""
mesh_create e f
mesh_mount e --acks 1 --acks-timeout 2
mesh_mount f
mesh_wait_peers 30 e f
A=${MNT[e]} B=${MNT[f]}
mesh_partition "e" "f"
head -c 100000 /dev/urandom >"$T/cut"
t0=$(now_ms)
if dd if="$T/cut" of="$A/cut" bs=64k conv=fsync status=none 2>"$T/dd.err"; then
    fail "fsync with --acks 1 and the only other member cut off succeeded"
fi
took=$(($(now_ms) - t0))
grep -q 'Input/output error' "$T/dd.err" || fail "fsync failed, but not with EIO: $(cat "$T/dd.err")"
((took >= 1500 && took < 8000)) || fail "fsync failed after $took ms, not after the 2 s timeout"
log "fsync with B cut off: EIO after $took ms"
cmp -s "$T/cut" "$A/cut" || fail "the file whose fsync failed is not whole on A"
mesh_wait 60 "A to see B dead" eval "[[ \$(mesh_stat e | jq -r '[.peers[]? | select(.state == \"dead\")] | length') -ge 1 ]]"
t0=$(now_ms)
if dd if="$T/cut" of="$A/cut2" bs=64k conv=fsync status=none 2>"$T/dd.err"; then
    fail "fsync with --acks 1 and the only other member dead succeeded"
fi
took=$(($(now_ms) - t0))
((took < 1000)) || fail "fsync with no member alive failed after $took ms, not at once"
log "fsync with B known dead: EIO after $took ms"
st=$(mesh_stat e)
[[ $(jq -r .acks_failed_timeout <<<"$st") -ge 1 && $(jq -r .acks_failed_peers <<<"$st") -ge 1 ]] ||
    fail "meshfs stat does not count the failures: $(jq -c '{acks_failed_timeout, acks_failed_peers}' <<<"$st")"
mesh_heal
mesh_wait_file 60 f cut "$(sha_of "$T/cut")"
mesh_wait_file 60 f cut2 "$(sha_of "$T/cut")"
log "both files reached B after the heal"

# ---- 3. meshfs sync
mkdir -p "$T/tree"
for d in 1 2 3 4 5; do
    mkdir -p "$T/tree/d$d"
    for i in $(seq 1 60); do head -c $((RANDOM % 5000 * 20)) /dev/urandom >"$T/tree/d$d/f$i"; done
done
cp -a "$T/tree" "$A/tree"
run_ok mfs_cmd sync "$A" >/dev/null
freeze e
(cd "$T/tree" && find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2) >"$T/tree.sums"
(cd "$B/tree" && timeout 30 find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2) >"$T/tree.b" ||
    fail "reading the tree on B with A frozen failed"
diff -q "$T/tree.sums" "$T/tree.b" >/dev/null || fail "after meshfs sync on A, B lacks part of the tree: $(diff "$T/tree.sums" "$T/tree.b" | head -5)"
thaw e
log "meshfs sync: B holds the whole tree (300 files)"
mesh_partition "e" "f"
echo late >"$A/late"
rc=0
out=$(timeout 30 "$MESHFS" sync --timeout 2 "$A" 2>&1) || rc=$?
((rc == 1)) || fail "meshfs sync with B cut off exited $rc, not 1: $out"
grep -q "${ID[f]}" <<<"$out" || fail "meshfs sync's failure does not name B (${ID[f]}): $out"
mesh_heal
run_ok mfs_cmd sync --timeout 30 "$A" >/dev/null
mesh_umount e
mesh_umount f
log "ok"
