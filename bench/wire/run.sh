#!/bin/bash
# bench/wire/run.sh TOOL [MB] - meshfs transport throughput and small
# message latency over loopback in a private network namespace, at 0%,
# 10% and 30% random loss (nftables numgen on UDP output). Two daemons:
# A sends MB megabytes of 64 KiB bulk messages to B plus a 16-byte urgent
# probe every 10 ms; B reports MB/s and probe delivery p50/p99.
# Baselines in the same run: a raw UDP blast of 1,200-byte datagrams with
# sendmmsg (receiver-side MB/s, i.e. what survives) and a TCP stream.
set -u
TOOL=${1:?usage: run.sh TOOL [MB]}
MB=${2:-500}
# a namespace and a temp dir, both removed on every exit (sync_lib.sh)
# shellcheck source=../../tests/system/sync_lib.sh
. "$(dirname "$0")/../../tests/system/sync_lib.sh"
sync_setup bench-wire
"$TOOL" keygen "$DIR"
X="ip netns exec $NS"
$X "$TOOL" udpsink 127.0.0.1:7201 >"$DIR/u.log" & S=$!
sleep 0.3; $X "$TOOL" udpblast 127.0.0.1:7201 $((MB * 1000000)) 1200; wait $S
echo "== raw UDP 1200-byte datagrams"; sed 's/^/receiver: /' "$DIR/u.log"
$X "$TOOL" tcpsink 127.0.0.1:7202 >"$DIR/t.log" & S=$!
sleep 0.3; $X "$TOOL" tcpblast 127.0.0.1:7202 $((MB * 1000000)); wait $S
echo "== TCP stream"; sed 's/^/receiver: /' "$DIR/t.log"
for loss in 0 10 30; do
    $X nft flush ruleset
    if [ "$loss" != 0 ]; then
        $X nft -f - <<NFT
table inet mfsloss {
  chain out { type filter hook output priority 0; meta l4proto udp numgen random mod 100 < $loss drop; }
}
NFT
    fi
    $X "$TOOL" node --key "$DIR" --listen 127.0.0.1:7101 --members 1 \
        --expect-bulk $((MB * 1000000)) --timeout 120 --hold 1 >"$DIR/b.log" 2>&1 &
    B=$!
    $X "$TOOL" node --key "$DIR" --listen 127.0.0.1:7102 \
        --peer 127.0.0.1:7101 --members 1 --bulk $((MB * 1000000)) \
        --msg-size 65536 --probe-ms 10 --timeout 120 >"$DIR/a.log" 2>&1
    wait $B
    echo "== loss $loss%"
    grep -E "BULK|PROBES|CPU" "$DIR/b.log" | sed 's/^/receiver: /'
    grep -E "CPU|SENDS" "$DIR/a.log" | sed 's/^/sender:   /'
done
