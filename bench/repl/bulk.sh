#!/usr/bin/env bash
# bulk.sh: issue 11's bulk target: "1 GiB of fresh data A->B on loopback
# with no loss >= 160 MB/s and >= 90% of what the transport alone moves in
# the same run (bench/wire), whether it flows while being written or after
# a partition heals; at 30% loss >= 60% of the loss-free figure". Two
# nodes in a private network namespace (tests/system/mesh_lib.sh), then for
# LOSS in 0 and 30:
#   written: A writes MIB MiB of random data (one file, 1 MiB writes) while
#            B fetches it; MB/s = size / (B holds it all - A's first write);
#   healed:  A cut off from B, A writes MIB MiB, closes it, the partition
#            heals; MB/s = size / (B holds it all - the heal).
# "B holds it all": B's `meshfs stat --json` says in sync, sees A alive and
# counts the file's chunk bytes (polled every 20 ms); then B reads the file
# and compares it (not timed; a mismatch fails the run). Last, the
# transport alone in the same run: bench/wire/run.sh with the build's
# meshfs-synctool (500 MB at 0/10/30% loss).
#
#   bench/repl/bulk.sh                  # 1024 MiB, ~2 min
#   MIB=256 bench/repl/bulk.sh
#   MESHFS=/path/to/meshfs bench/repl/bulk.sh
# Needs root (namespaces, FUSE) and a build (build/ or MESHFS=; SYNCTOOL=
# for the transport, default build/sync/meshfs-synctool, empty to skip).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MIB=${MIB:-1024}
LOSSES=${LOSSES:-0 30}
SYNCTOOL=${SYNCTOOL-$HERE/../../build/sync/meshfs-synctool}
# shellcheck source=../../tests/system/mesh_lib.sh
. "$HERE/../../tests/system/mesh_lib.sh"
mesh_init bulk 1200 7970
RB=$T/replbench
cc -O2 -o "$RB" "$HERE/replbench.c"
mesh_up a b
A=${MNT[a]} B=${MNT[b]}
mkdir -p "$A/big"
mesh_wait 30 "the directory on B" test -d "$B/big"
bytes=$((MIB * 1048576))

# held_by_b FILE: B shows FILE whole, and says it is in sync (every chunk
# it knows of held) and sees A alive
held_by_b() {
    local j
    [[ $(stat -c %s "$B/big/$1" 2>/dev/null) == "$bytes" ]] || return 1
    j=$(mesh_stat b) || return 1
    jq -e '.in_sync and ([.peers[] | select(.state == "alive")] | length >= 1)' <<<"$j" >/dev/null
}

# wait_held FILE T0 LABEL: poll until B holds it, print MB/s since T0
wait_held() {
    local t
    while ! held_by_b "$1"; do
        (($(now_ms) - $2 < 600000)) || fail "$3: B did not hold the file within 600 s"
        sleep 0.02
    done
    t=$(now_ms)
    awk -v b="$bytes" -v ms=$((t - $2)) 'BEGIN { printf "%.1f MB/s (%.2f s)", b / 1e6 / (ms / 1000), ms / 1000 }'
}

# verify NAME SEED: B's copy is bigwrite's stream
verify() {
    local st
    "$RB" bigwait "$B/big/$1" "$MIB" "$2" 120 >"$T/verify.$1"
    read -r st _ <"$T/verify.$1"
    [[ $st == "done" ]] || fail "B's copy of $1 is not A's: $st"
}

# thread_cpu NODE: "thread-name ticks" per thread name of NODE's daemon
thread_cpu() {
    local f
    for f in /proc/"${NODE_PID[$1]}"/task/*/stat; do
        # comm may hold spaces: fields after the last ')'
        sed 's/^[0-9]* (\(.*\)) [A-Z] \(.*\)$/\1|\2/' "$f" 2>/dev/null
    done | awk -F'|' '{ split($2, v, " "); t[$1] += v[11] + v[12] }
                      END { for (n in t) print n, t[n] }' | sort
}

# cpu_used NODE BEFORE: seconds of CPU per thread name since BEFORE
# (thread_cpu's output), busiest first, as "name s, ..."
cpu_used() {
    local hz
    hz=$(getconf CLK_TCK)
    thread_cpu "$1" | awk -v hz="$hz" -v before="$2" '
        BEGIN { n = split(before, l, "\n"); for (i = 1; i <= n; i++) { split(l[i], f, " "); b[f[1]] = f[2] } }
        { d = ($2 - b[$1]) / hz; if (d >= 0.05) printf "%.1f %s\n", d, $1 }' |
        sort -rn | awk '{ tot += $1; o = o sprintf(" %s %.1f", $2, $1) }
                        END { printf "%.1f s:%s", tot, o }'
}


declare -A res
seed=20
for loss in $LOSSES; do
    mesh_loss "$loss"
    seed=$((seed + 1))
    ca=$(thread_cpu a) cb=$(thread_cpu b)
    t0=$(now_ms)
    "$RB" bigwrite "$A/big/w$loss" "$MIB" "$seed" >/dev/null
    res[written.$loss]=$(wait_held "w$loss" "$t0" "written, $loss% loss")
    log "written, $loss% loss: ${res[written.$loss]}"
    log "  CPU of A $(cpu_used a "$ca"); of B $(cpu_used b "$cb")"
    verify "w$loss" "$seed"

    seed=$((seed + 1))
    mesh_partition a b
    "$RB" bigwrite "$A/big/h$loss" "$MIB" "$seed" >/dev/null
    sleep 1.5 # A publishes at close; let its first sends fail
    ca=$(thread_cpu a) cb=$(thread_cpu b)
    mesh_heal
    th=$(now_ms)
    if [[ -n ${BULK_ON_HEAL:-} ]]; then eval "$BULK_ON_HEAL" & fi
    res[healed.$loss]=$(wait_held "h$loss" "$th" "healed, $loss% loss")
    log "healed, $loss% loss: ${res[healed.$loss]}"
    log "  CPU of A $(cpu_used a "$ca"); of B $(cpu_used b "$cb")"
    verify "h$loss" "$seed"
    rm -f "$A/big/w$loss" "$A/big/h$loss"
done
mesh_loss 0

wire=""
if [[ -n $SYNCTOOL && -x $SYNCTOOL ]]; then
    log "the transport alone: bench/wire/run.sh $SYNCTOOL 500"
    bash "$HERE/../wire/run.sh" "$SYNCTOOL" 500 >"$T/wire.log" 2>&1 || true
    wire=$(awk '/^== loss/ { l = $3 } /BULK/ && l != "" { printf "%s %s MB/s; ", l, $(NF - 1) }' "$T/wire.log")
fi
echo "bulk.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $MIB MiB, meshfs $("$MESHFS" --version 2>/dev/null | head -n1)"
for loss in $LOSSES; do
    echo "  $loss% loss: while written ${res[written.$loss]}; after a heal ${res[healed.$loss]}"
done
if [[ -n $wire ]]; then echo "  transport alone (bench/wire, 500 MB): $wire"; fi
