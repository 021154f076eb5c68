#!/usr/bin/env bash
# mesh_chaos [SECONDS_PER_PHASE]: three nodes under 30% datagram loss (each
# direction, all along) and two partitions with different splits, while
# every node changes the tree (DESIGN P2, P6, P7, P8, P12):
#   - A unpacks a tar of /usr/include/linux (~800 entries) into linux/,
#     C generates gen/ (30 directories x 20 files) with shell builtins;
#   - on every node a writer creates files with dd conv=fsync and records
#     each one fsync acknowledged (name, sha256); nobody else touches them;
#   - partition 1, {A, B} | {C}: edits, appends, renames of files and
#     directories, deletes; B and C edit the same files and rename the same
#     directory (conflicts);
#   - healed for a while; B is killed -9 amid its writes and restarted;
#   - partition 2, {A} | {B, C}: A deletes a directory C edits in (edit vs
#     delete), A and C move one directory to different places, A and C move
#     two directories into each other (cycle), A and B edit the same files.
# After the last heal (loss still on) all three must converge: in sync,
# identical trees; every file an fsync acknowledged (B's too, across its
# crash) and every line a close() acknowledged is on every node, wherever
# it ended up (a file or a conflict copy); the tar's files nobody touched
# are intact everywhere. SECONDS_PER_PHASE (default 15) is how long each
# partition and the time between them last: about 75 s in all here. The
# CTest entry system/mesh_chaos_long (label `long`) runs it with 60.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
PHASE=${1:-${MESH_CHAOS_PHASE:-15}}
mesh_init chaos $((300 + 8 * PHASE)) 7650
mesh_up a b c
A=${MNT[a]} B=${MNT[b]} C=${MNT[c]}
tar -C /usr/include -cf "$T/linux.tar" linux
for n in a b c; do mkdir "${MNT[$n]}/acked-$n"; done
mesh_wait_converged 60 a b c

mesh_loss 30
try() { "$@" 2>/dev/null || true; }
# append NODE PATH WHO: append a line naming WHO and PATH to the file PATH
# on NODE; once close() returned, the line is recorded in $T/texts: it must
# survive (in the file or in a conflict copy, wherever they end up)
append() {
    local text="<$3 appended to $2>"
    printf '%s\n' "$text" >>"${MNT[$1]}/$2" && printf '%s\n' "$text" >>"$T/texts"
}

# writer NODE: fsync'd files in acked-NODE until $T/stop exists
writer() {
    local n=$1 M=${MNT[$1]} i=0 f
    : >"$T/ack-$n"
    while [[ ! -e "$T/stop" ]]; do
        if [[ -e "$T/pause-$n" ]]; then # (while its daemon is restarted)
            touch "$T/paused-$n"
            sleep 0.1
            continue
        fi
        rm -f "$T/paused-$n"
        f=acked-$n/w$i
        head -c $((512 + RANDOM * 2)) /dev/urandom >"$T/w-$n"
        if dd if="$T/w-$n" of="$M/$f" bs=64k conv=fsync status=none 2>/dev/null; then
            printf '%s  %s\n' "$(sha_of "$T/w-$n")" "$f" >>"$T/ack-$n"
        fi
        i=$((i + 1))
        sleep 0.1
    done
}
gen_tree() { # on C; every file's line must survive, except in d07 (C
    local d i text # deletes it itself, after it made it)
    for d in $(seq -w 0 29); do
        mkdir -p "$C/gen/d$d"
        for i in $(seq 0 19); do
            text="<gen d$d f$i $RANDOM>"
            if printf '%s\n' "$text" >"$C/gen/d$d/f$i" && [[ $d != 07 ]]; then
                printf '%s\n' "$text" >>"$T/texts"
            fi
        done
    done
}
: >"$T/texts"
for n in a b c; do writer "$n" & done
t_start=$SECONDS
tar -C "$A" -xf "$T/linux.tar" &
gen_tree &
sleep 2 # a little of both has gone out before the first partition

# ---------------------------------------------------------------- phase 1
mesh_partition "a b" "c"
p1_a() {
    local f
    for f in "$A"/linux/a*.h; do try append a "linux/${f##*/}" "A in phase 1"; done
    try rm -f "$A"/linux/b*.h
    try mv "$A/linux/netfilter" "$A/linux/netfilter-renamed"
}
p1_b() {
    local f
    try mv "$B/gen/d05" "$B/gen/d05-by-b"
    for f in "$B"/gen/d06/f*; do try append b "gen/d06/${f##*/}" "B in phase 1"; done
}
p1_c() {
    local f i
    try mv "$C/gen/d05" "$C/gen/d05-by-c"
    for f in "$C"/gen/d06/f*; do try append c "gen/d06/${f##*/}" "C in phase 1"; done
    try rm -rf "$C/gen/d07"
    for i in $(seq 0 9); do try mv "$C/gen/d08/f$i" "$C/gen/d08/g$i"; done
}
wait_phase() { # run the node jobs, keep the partition for $PHASE seconds
    local t0=$SECONDS p pids=()
    for p in "$@"; do "$p" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || true; done
    while ((SECONDS - t0 < PHASE)); do sleep 1; done
}
wait_phase p1_a p1_b p1_c
mesh_heal

# ---------------------------------------------------------------- between
mid() {
    try mkdir -p "$A/between/x/y"
    try append b between-b.txt "B between the partitions"
    try mv "$C/gen/d12" "$C/gen/d12-moved"
}
# B crashes: kill -9 while its writer writes; it comes back on its store
# (its writer pauses meanwhile, so nothing is written into the bare mount
# point while `meshfs mount` replaces the dead mount)
mesh_kill9 b
touch "$T/pause-b"
mesh_wait 10 "B's writer to pause" test -e "$T/paused-b"
wait_phase mid
mesh_mount b
rm "$T/pause-b"

# ---------------------------------------------------------------- phase 2
mesh_partition "a" "b c"
p2_a() {
    local f
    try rm -rf "$A/gen/d09"
    try mv "$A/linux/usb" "$A/linux/usb-by-a"
    try mv "$A/gen/d10" "$A/gen/d11/"
    for f in "$A"/linux/c*.h; do try append a "linux/${f##*/}" "A in phase 2"; done
}
p2_b() {
    local f
    sleep 0.5 # (B's edits of the same files come later by the clock)
    for f in "$B"/linux/c*.h; do try append b "linux/${f##*/}" "B in phase 2"; done
}
p2_c() {
    local f
    for f in "$C"/gen/d09/f*; do try append c "gen/d09/${f##*/}" "C (A deletes d09) in phase 2"; done
    try mv "$C/linux/usb" "$C/gen/usb-by-c"
    sleep 0.5
    try mv "$C/gen/d11" "$C/gen/d10/"
}
wait_phase p2_a p2_b p2_c
mesh_heal
touch "$T/stop"
wait # writers, tar, generator
log "changes made for $((SECONDS - t_start)) s; acknowledged files: $(cat "$T"/ack-? | wc -l); dropped so far: $(mesh_dropped) datagrams"

# ---------------------------------------------------------------- checks
mesh_wait_converged $((120 + 2 * PHASE)) a b c
log "converged with loss on; dropped datagrams: $(mesh_dropped)"
mesh_loss 0
for n in a b c; do
    M=${MNT[$n]}
    for w in a b c; do
        [[ -s "$T/ack-$w" ]] || fail "writer on $w acknowledged nothing"
        out=$(cd "$M" && sha256sum -c --quiet "$T/ack-$w" 2>&1) ||
            fail "node $n: files fsync'd on $w are lost or wrong: $(head -5 <<<"$out")"
    done
    # tar members nobody touched: linux/[d-z]*.h at the top level
    out=$(cd /usr/include && for f in linux/[d-z]*.h; do
        cmp -s "$f" "$M/$f" || echo "$f"
    done)
    [[ -z "$out" ]] || fail "node $n: untouched files of the tar differ or are missing: $(head -5 <<<"$out")"
    # gen files nobody touched: d13..d29
    for d in $(seq 13 29); do
        check_eq "node $n: gen/d$d" 20 "$(find "$M/gen/d$d" -maxdepth 1 -type f -name 'f*' 2>/dev/null | wc -l)"
    done
    err=$(find "$M" 2>&1 >/dev/null) || fail "node $n: find over the tree failed: $err"
    # every line whose write close() acknowledged is somewhere in the tree
    LC_ALL=C sort -u "$T/texts" >"$T/texts.want"
    (grep -rhoF -f "$T/texts.want" "$M" || true) | LC_ALL=C sort -u >"$T/texts.$n"
    lost=$(LC_ALL=C comm -23 "$T/texts.want" "$T/texts.$n")
    [[ -z "$lost" ]] || fail "node $n: $(grep -c . <<<"$lost") acknowledged writes are lost, e.g.: $(head -5 <<<"$lost" | tr '\n' ' ')"
done
log "on every node: every fsync'd file ($(cat "$T"/ack-? | wc -l)), every acknowledged line ($(wc -l <"$T/texts.want")), the untouched files; conflicts: $(mesh_stat a | jq -r .conflicts)"
