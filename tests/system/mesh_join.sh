#!/usr/bin/env bash
# mesh_join: a new node joins by copying the state from a member (DESIGN
# P12, P13); A's op log is folded first, so the copy is a snapshot. A holds 3000 small files in 30 directories and three 8 MiB
# files. C is created with `meshfs join` from A's invite token (its store
# then names A's address in C/peers) and mounted with no --peer. C must be
# usable at once (ls works, a file written on C reaches A) while it catches
# up; `meshfs stat` on C shows the catch-up progress if we are quick enough
# to see it (logged, not required); C converges to A's tree.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init join 300 7670
NFILES=3000
mesh_create a
mesh_mount a
A=${MNT[a]}

# the source tree, made locally first (bash builtins: no process per file)
src=$T/src
for d in $(seq -w 0 29); do mkdir -p "$src/dir$d"; done
line="meshfs join test payload, a line of text that repeats "
for i in $(seq 0 $((NFILES - 1))); do
    rep=$((1 + i % 40))
    body=""
    for ((k = 0; k < rep; k++)); do body+="$line$i.$k "; done
    printf '%s\n' "$body" >"$src/dir$(printf %02d $((i % 30)))/file$i.txt"
done
for i in 1 2 3; do head -c $((8 << 20)) /dev/urandom >"$src/large$i.bin"; done
t0=$SECONDS
cp -a "$src" "$A/tree"
log "A: $NFILES small files and 3 x 8 MiB copied in $((SECONDS - t0)) s"

# A is alone: everything it holds is settled, so its collector folds its
# op log into the state (issue 10): C cannot be sent those ops and must
# take a snapshot
deadline=$((SECONDS + 60))
while :; do
    js=$(mesh_stat a)
    folded=$(jq .ops_folded <<<"$js")
    ((folded > 9000)) && break
    ((SECONDS < deadline)) || fail "A folded only $folded ops of its log in 60 s (ops left: $(jq .ops <<<"$js"))"
    sleep 0.5
done
log "A folded $folded ops into its state ($(jq .ops <<<"$js") left in its log)"

# C joins with A's token; the token names A's address
mesh_create c # joins with A's token
grep -qx "${ADDR[a]}" "${STORE[c]}/peers" || fail "C's peers file does not name A"
t0=$(now_ms)
mesh_mount c
C=${MNT[c]}
ls "$C" >/dev/null || fail "ls of the joining node's mount failed"
log "C mounted in $(($(now_ms) - t0)) ms; ls works"
printf 'written on C while it catches up\n' >"$C/from-c.txt"

seen=""
deadline=$((SECONDS + 240))
while ((SECONDS < deadline)); do
    js=$(mesh_stat c) || fail "meshfs stat on the joining node failed"
    ls "$C" >/dev/null || fail "ls on the joining node failed during catch-up"
    if [[ -z "$seen" ]] && jq -e .catchup.active <<<"$js" >/dev/null; then
        seen=$(jq -c .catchup <<<"$js")
        txt=$(timeout 20 "$MESHFS" stat "$C" | grep '^catch-up' || true)
        log "catch-up seen on C: $seen; text: ${txt:-<no catch-up line>}"
        if [[ -z "$txt" ]]; then
            # the catch-up may have ended between the two calls: only a
            # catch-up still going after the text call must have shown
            mesh_stat c | jq -e .catchup.active >/dev/null &&
                fail "stat --json says catching up, the text output has no catch-up line"
            log "(the catch-up ended between the two calls; looking again)"
            seen=""
        fi
    fi
    if jq -e '.in_sync and .catchup.active == false' <<<"$js" >/dev/null &&
        [[ -d "$C/tree/dir29" ]]; then
        break
    fi
    sleep 0.2
done
[[ -n "$seen" ]] || log "catch-up was too quick to be seen in meshfs stat (not an error)"
mesh_wait_file 60 a from-c.txt "$(sha_str $'written on C while it catches up\n')"
mesh_wait_converged 240 a c
n=$(find "$C/tree" -type f -name 'file*.txt' | wc -l)
check_eq "small files on C" "$NFILES" "$n"
for i in 1 2 3; do
    cmp "$src/large$i.bin" "$C/tree/large$i.bin" || fail "large$i.bin on C differs"
done
js=$(mesh_stat c)
check_eq "C lists A as a live peer" alive "$(jq -r --arg id "${ID[a]}" '.peers[] | select(.id == $id) | .state' <<<"$js")"
check_eq "C's peer address of A" "${ADDR[a]}" "$(jq -r --arg id "${ID[a]}" '.peers[] | select(.id == $id) | .addr' <<<"$js")"
check_eq "snapshots C installed" 1 "$(jq .catchup.snapshot.installed <<<"$js")"
check_eq "snapshots A served" 1 "$(mesh_stat a | jq .catchup.snapshot.served)"
