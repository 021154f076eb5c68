#!/bin/bash
# sync_hsflood.sh TOOL [COUNT] - per-node keys (issue 13): two live nodes
# in a private namespace, identities 1 and 2, exchange messages while
# COUNT handshake initiations from strangers hit node 1: strangers that
# know its public key (so that every INIT passes mac1 and costs the node a
# look), with and without a join proof, bit-flipped and truncated, from
# eight ports. Node 1 keeps no state for them (it knows one peer at the
# end), sends no reply larger than the INIT it answers (only COOKIEs,
# under load), answers no stranger's handshake with a session, and the
# members' 300 messages each way arrive exactly once: node 2 meets node 1
# after the flood began (its handshake takes the cookie round trip) and
# their messages are through before it ends.
set -u
TOOL=${1:?usage: sync_hsflood.sh TOOL [COUNT]}
COUNT=${2:-100000}
# shellcheck source=sync_lib.sh
. "$(dirname "$0")/sync_lib.sh"
sync_setup sync-hsflood
"$TOOL" keygen "$DIR" || exit 1
X="ip netns exec $NS $TOOL"
# node 1 stays up until the flood ended (which takes longer on a busy
# machine than its hold), so that it counts every INIT
$X node --key "$DIR" --ident 1 --listen 127.0.0.1:7011 --members 1 \
    --send 300 --expect 300 --timeout 120 --hold 30 \
    --hold-until "$DIR/flood.done" >"$DIR/a.log" 2>&1 & A=$!; PIDS+=($A)
sleep 0.5
t0=$(date +%s%N)
$X flood --key "$DIR" --target 127.0.0.1:7011 --count "$COUNT" --ident-target 1 \
    >"$DIR/f.log" 2>&1 & F=$!
# node 2 meets node 1 during the flood: its handshake goes through the
# cookie round trip of a node under load, then their messages
sleep 1
$X node --key "$DIR" --ident 2 --listen 127.0.0.1:7012 --peer 127.0.0.1:7011 \
    --members 1 --send 300 --expect 300 --timeout 120 --hold 30 \
    >"$DIR/b.log" 2>&1 & PIDS+=($!)
# what the kernel dropped at node 1's socket, its receive buffer full (a
# node short of CPU beside other tests): the drops column of
# /proc/net/udp for port 7011 (1B63), sampled while the flood runs
kdrops() { ip netns exec "$NS" awk '$2 ~ /:1B63$/ {print $NF; exit}' /proc/net/udp; }
( while kill -0 "$F" 2>/dev/null; do
    v=$(kdrops); [ -n "$v" ] && echo "$v" >"$DIR/kdrops"; sleep 0.2
  done; v=$(kdrops); [ -n "$v" ] && echo "$v" >"$DIR/kdrops" ) & K=$!
wait $F; frc=$?
wait $K
touch "$DIR/flood.done"
t1=$(date +%s%N)
cp "$DIR/b.log" "$DIR/b.at-flood-end"
cat "$DIR/f.log"
echo "flood took $(( (t1 - t0) / 1000000 )) ms"
kd=$(cat "$DIR/kdrops" 2>/dev/null || echo 0)
echo "kernel dropped $kd datagrams at node 1's socket"
rc=0
[ $frc = 0 ] || { echo "FAIL: a reply larger than an INIT, or the flood failed"; rc=1; }
for p in "${PIDS[@]}"; do wait "$p" || rc=1; done
PIDS=()
grep -E "RESULT|PEER|GLOBAL|HANDSHAKES|CPU" "$DIR/a.log"
grep -q "RESULT ok recv=300 dup=0 bad=0" "$DIR/a.log" || { echo "FAIL: node 1's messages"; rc=1; }
grep -q "RESULT ok recv=300 dup=0 bad=0" "$DIR/b.log" || { echo "FAIL: node 2's messages"; rc=1; }
# node 2 met node 1 while the flood went on (its MEMBERS line came first)
grep -q "^MEMBERS 1 alive" "$DIR/b.at-flood-end" ||
    { echo "FAIL: node 2 had not met node 1 when the flood ended"; rc=1; }
grep -q "peers=1$" "$DIR/a.log" || { echo "FAIL: node 1 keeps state for a stranger"; rc=1; }
# node 1 answered (RESP) only node 2's handshakes: a few, not the flood's
ans=$(sed -n 's/^HANDSHAKES.* answered=\([0-9]*\).*/\1/p' "$DIR/a.log")
[ "${ans:-999999}" -lt 20 ] || { echo "FAIL: node 1 answered $ans handshakes"; rc=1; }
# every INIT is counted as a drop, unless the kernel dropped it first (a
# few lost elsewhere)
g=$(grep -o "total=[0-9]*" "$DIR/a.log" | cut -d= -f2)
[ $(( ${g:-0} + kd )) -gt $((COUNT * 9 / 10)) ] ||
    { echo "FAIL: only ${g:-0} drops counted (and $kd in the kernel)"; rc=1; }
[ $rc = 0 ] && echo "PASS: $COUNT handshake initiations from strangers: no state, no reply larger than the request, the members kept syncing"
exit $rc
