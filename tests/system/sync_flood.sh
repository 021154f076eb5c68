#!/bin/bash
# sync_flood.sh TOOL [COUNT] - a live node in a private namespace takes
# COUNT random, mutated (bit flips, truncation, extension, header changes)
# and replayed datagrams from an unknown address while it exchanges
# messages with a member: it does not crash, sends no reply to the flood,
# delivers nothing twice (the flooding member's 5 real messages stay 5),
# learns no new peer, counts the drops, and its real traffic completes.
set -u
TOOL=${1:?usage: sync_flood.sh TOOL [COUNT]}
COUNT=${2:-100000}
# shellcheck source=sync_lib.sh
. "$(dirname "$0")/sync_lib.sh"
sync_setup sync-flood
"$TOOL" keygen "$DIR" || exit 1
X="ip netns exec $NS $TOOL"
# the target accepts unknown sources at full speed so that every flood
# datagram reaches the authentication step (the rate limit has its own test)
$X node --key "$DIR" --listen 127.0.0.1:7001 --members 1 --send 300 \
    --expect 300 --timeout 90 --hold 25 --unknown-pps 10000000 \
    >"$DIR/a.log" 2>&1 & A=$!; PIDS+=($A)
$X node --key "$DIR" --listen 127.0.0.1:7002 --peer 127.0.0.1:7001 \
    --members 1 --send 300 --expect 300 --timeout 90 --hold 25 \
    >"$DIR/b.log" 2>&1 & PIDS+=($!)
sleep 3 # A and B meet first (B retries its hello every second)
$X flood --key "$DIR" --target 127.0.0.1:7001 --count "$COUNT" \
    >"$DIR/f.log" 2>&1; frc=$?
cat "$DIR/f.log"
rc=0
[ $frc = 0 ] || rc=1
for p in "${PIDS[@]}"; do wait "$p" || rc=1; done
PIDS=()
grep -E "RESULT|PEER|GLOBAL" "$DIR/a.log"
grep -q "RESULT ok recv=300 dup=0 bad=0" "$DIR/a.log" || rc=1
grep -q "RESULT ok recv=300 dup=0 bad=0" "$DIR/b.log" || rc=1
M=$(sed -n 's/^MEMBER \([0-9a-f]*\).*/\1/p' "$DIR/f.log")
grep "PEER $M" "$DIR/a.log" | grep -q "msgs_in=5 " || { echo "member X: not exactly 5"; rc=1; }
grep -q "peers=2$" "$DIR/a.log" || { echo "target learned a bogus peer"; rc=1; }
g=$(grep -o "total=[0-9]*" "$DIR/a.log" | cut -d= -f2)
x=$(grep "PEER $M" "$DIR/a.log" | grep -o "drops=.*" | grep -o "[0-9]*" | awk "{s+=\$1} END {print s+0}")
xr=$(grep "PEER $M" "$DIR/a.log" | grep -o "replay:[0-9]*" | cut -d: -f2)
echo "target: drops from unknown addresses $g, on member X's id $x (replays $xr)"
# nearly every flood datagram is counted (the rest are lost in the kernel)
[ $(( ${g:-0} + ${x:-0} )) -gt $((COUNT * 9 / 10)) ] || rc=1
[ "${xr:-0}" -gt 0 ] || rc=1
[ $rc = 0 ] && echo "PASS: $COUNT hostile datagrams, no crash, no reply, no change"
exit $rc
