#!/bin/bash
# sync_net.sh TOOL [MSGS] - real daemons (meshfs-synctool) in a private
# network namespace with 30% random loss from nftables on every UDP
# datagram: membership converges from a chain of seeds, and MSGS mixed-size
# messages from every node to every other arrive exactly once and intact;
# then 300 MB of bulk messages from one node to another arrive whole.
set -u
TOOL=${1:?usage: sync_net.sh TOOL [MSGS]}
MSGS=${2:-300}
# shellcheck source=sync_lib.sh
. "$(dirname "$0")/sync_lib.sh"
sync_setup sync-net
command -v nft >/dev/null || { echo "SKIP: nft not installed"; exit 77; }
ip netns exec "$NS" nft -f - <<'NFT' || { echo "SKIP: nftables unusable"; exit 77; }
table inet mfsloss {
  chain out { type filter hook output priority 0; meta l4proto udp numgen random mod 100 < 30 drop; }
}
NFT
"$TOOL" keygen "$DIR" || exit 1
run() { ip netns exec "$NS" "$TOOL" node --key "$DIR" --members 2 \
        --send "$MSGS" --expect "$MSGS" --timeout 150 --hold 10 "$@"; }
run --listen 127.0.0.1:7001 >"$DIR/a.log" 2>&1 & PIDS+=($!)
run --listen 127.0.0.1:7002 --peer 127.0.0.1:7001 >"$DIR/b.log" 2>&1 & PIDS+=($!)
run --listen 127.0.0.1:7003 --peer 127.0.0.1:7002 >"$DIR/c.log" 2>&1 & PIDS+=($!)
rc=0
for p in "${PIDS[@]}"; do wait "$p" || rc=1; done
PIDS=()
for n in a b c; do
    echo "== node $n"; grep -E "MEMBERS|RESULT|PEER|TIMEOUT" "$DIR/$n.log"
    grep -q "RESULT ok recv=$((2 * MSGS)) dup=0 bad=0" "$DIR/$n.log" || rc=1
done
# the loss was real: peers measured it
grep -q "loss_in=0.[1-4]" "$DIR/a.log" || { echo "no loss measured?"; rc=1; }

# bulk at 30% loss: 300 MB of 64 KiB messages, so that the sender's queue
# fills (max_queue) and mfs_sync_send answers -ENOBUFS while the sync
# thread hands its inbox over: nothing accepted may be dropped (a driver
# that dropped a message the core had no room for yet never completed)
ip netns exec "$NS" "$TOOL" node --key "$DIR" --listen 127.0.0.1:7011 \
    --members 1 --expect-bulk 300000000 --timeout 60 --hold 1 \
    >"$DIR/bulk-b.log" 2>&1 & PIDS+=($!)
MESHFS_GSO=${MESHFS_GSO:-1} ip netns exec "$NS" "$TOOL" node --key "$DIR" --listen 127.0.0.1:7012 \
    --peer 127.0.0.1:7011 --members 1 --bulk 300000000 --msg-size 65536 \
    --timeout 60 >"$DIR/bulk-a.log" 2>&1 & PIDS+=($!)
for p in "${PIDS[@]}"; do wait "$p" || true; done
PIDS=()
echo "== bulk"; grep -E "BULK|TIMEOUT" "$DIR/bulk-b.log"
grep -q "BULK .*300.0 MB" "$DIR/bulk-b.log" || { echo "bulk incomplete"; rc=1; }
# with MESHFS_GSO=1 (set above for this sender) runs of full datagrams
# went as one message each (UDP GSO)
grep -E "SENDS" "$DIR/bulk-a.log"
awk '/^SENDS/ { each = substr($7, 2) + 0 } END { exit !(each >= 2) }' \
    "$DIR/bulk-a.log" || { echo "bulk datagrams were not batched (GSO)"; rc=1; }
if [ $rc = 0 ]; then
    echo "PASS: exactly-once over 30% loss on real sockets"
else
    for n in a b c bulk-a bulk-b; do echo "== full log of $n"; cat "$DIR/$n.log"; done
fi
exit $rc
