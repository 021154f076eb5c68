#!/usr/bin/env bash
# mesh_clock: a node with a wrong clock keeps syncing (issue 16). Two mounts
# in a network namespace; B's daemon runs under libfaketime (Debian's
# faketime: its wall clock only, CLOCK_MONOTONIC left alone), 10 minutes
# ahead, then a day ahead, then a day behind. Each time, once B's
# `meshfs stat` says its clock is corrected (and A's that A is in step,
# each showing the other's offset with the right sign), a file written on
# B shows on A within a few seconds and one written on A shows on B; the
# file B wrote has an mtime on A within a few seconds of A's clock, and a
# file B touches has one within a few seconds of A's clock too. Before the
# correction, B's files did not reach A for 10 minutes (stamps from the
# future wait, docs/REPLICATION.md "Clocks"). B's first mount is the one
# 10 minutes ahead: its first op (its announcement as a member, when it
# reaches the mesh) must already carry the mesh's time, or every later op
# of B follows it 10 minutes ahead.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init clock 300 7700
LIBFT=""
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
    [[ -e "$f" ]] && LIBFT=$f && break
done
[[ -n "$LIBFT" ]] || skip "libfaketime is not installed (apt-get install faketime)"
mesh_create a b
mesh_mount a
A=${MNT[a]} B=${MNT[b]}
W=5 # seconds a change may take to show, and how far a time may be off

# clock_of NODE: "STATE OFFSET_MS" of the node's own clock (meshfs stat)
clock_of() { mesh_stat "$1" | jq -r '"\(.clock.state) \(.clock.offset_ms)"'; }
# peer_clock NODE OTHER: OTHER's clock minus NODE's (ms), as NODE measures it
peer_clock() {
    mesh_stat "$1" | jq -r --arg id "${ID[$2]}" \
        '.peers[] | select(.id == $id) | select(.clock_measured) | .clock_offset_ms | floor'
}
# near X Y TOL: |X - Y| <= TOL
near() { local d=$(($1 - $2)); ((d <= $3 && d >= -$3)); }
corrected_by() { # NODE WANT_MS: corrected, its clock WANT_MS off the mesh's
    local s o
    read -r s o <<<"$(clock_of "$1")"
    [[ $s == corrected ]] && near "$o" "$2" 2000
}
in_step() { local s o; read -r s o <<<"$(clock_of "$1")"; [[ $s == in-step ]]; }
peer_sees() { local v; v=$(peer_clock "$1" "$2") && [[ -n $v ]] && near "$v" "$3" 2000; }

# run_skewed LABEL FAKETIME AHEAD_MS: B remounted under a clock AHEAD_MS
# ahead of the real one (negative: behind)
run_skewed() {
    local label=$1 ft=$2 off=$3 t0 m now
    [[ -z "${NODE_PID[b]:-}" ]] || mesh_umount b
    WRAP[b]="env LD_PRELOAD=$LIBFT FAKETIME=$ft FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_NO_CACHE=1"
    mesh_mount b
    mesh_wait_peers 30 a b
    wait_until 20 "B to correct its clock ($label)" corrected_by b "$off"
    wait_until 20 "A to stay in step ($label)" in_step a
    wait_until 20 "A to see B's clock at $off ms" peer_sees a b "$off"
    wait_until 20 "B to see A's clock at $((-off)) ms" peer_sees b a "$((-off))"
    mesh_stat b | jq -r .clock.text | sed 's/^/  B: clock /' >&2
    # B -> A, then A -> B
    t0=$(now_ms)
    printf 'from B %s\n' "$label" >"$B/b-$label"
    mesh_wait_file $W a "b-$label" "$(sha_str "from B $label"$'\n')"
    log "$label: a file written on B showed on A after $(($(now_ms) - t0)) ms"
    t0=$(now_ms)
    printf 'from A %s\n' "$label" >"$A/a-$label"
    mesh_wait_file $W b "a-$label" "$(sha_str "from A $label"$'\n')"
    log "$label: a file written on A showed on B after $(($(now_ms) - t0)) ms"
    # times users see: the mesh's, not B's clock
    m=$(stat -c %Y "$A/b-$label")
    now=$(date +%s)
    near "$m" "$now" $W || fail "$label: B's file has mtime $m on A, A's clock says $now"
    touch "$B/a-$label"
    wait_until $W "B's touch to show on A" eval \
        "near \$(stat -c %Y '$A/a-$label') \$(date +%s) $W && [[ \$(stat -c %Y '$A/a-$label') -ge $m ]]"
    log "$label: mtimes of B's changes on A within ${W} s of A's clock"
}

run_skewed plus10min +10m 600000
run_skewed plus1day +1d 86400000

# B restarts alone, its clock still a day ahead: it takes the correction
# it remembered (STORE/clock) before any member is heard, so what it
# writes alone carries the mesh's time and reaches A once the link heals
mesh_umount b
mesh_partition "a" "b"
mesh_mount b
wait_until 10 "B to take its remembered correction" eval \
    "[[ \$(mesh_stat b | jq -r .clock.state) == remembered ]]"
mesh_stat b | jq -r .clock.text | sed 's/^/  B alone: clock /' >&2
printf 'written alone\n' >"$B/alone"
m=$(stat -c %Y "$B/alone")
near "$m" "$(date +%s)" $W || fail "B's file written alone has mtime $m, the real time is $(date +%s)"
mesh_heal
t0=$(now_ms)
mesh_wait_file 15 a alone "$(sha_str $'written alone\n')"
log "a file B wrote alone (its clock a day ahead) showed on A $(($(now_ms) - t0)) ms after the heal"

run_skewed minus1day -1d -86400000

mesh_wait_converged 60 a b
log "PASS"
