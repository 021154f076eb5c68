#!/usr/bin/env bash
# mesh_metrics: the status page's listener (issue 15) on a live two-node
# mesh in a network namespace, without a browser (mesh_page.sh drives the
# page in Chromium):
#  - the token: every endpoint answers 401 without it or with a wrong one,
#    200 with ?token= or Authorization: Bearer; STORE/http.token is 0600;
#    `meshfs stat --url` prints the address with it
#  - /status.json is the document `meshfs stat --json` prints (same
#    fields, same values where they do not move)
#  - /metrics passes `promtool check metrics` (Debian's prometheus), and
#    its counters move as the mesh moves data: files written on A show as
#    FUSE requests, ops and bytes sent to B, and on B as ops received
#  - --metrics-open opens /metrics alone; a non-loopback --http is
#    refused without --http-public, and nothing is mounted
#  - /history.json samples the traffic
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init metrics 240 7790
command -v curl >/dev/null || skip "curl is not installed"
command -v promtool >/dev/null || skip "promtool is not installed (Debian's prometheus)"
mesh_create a b
mesh_mount a --http 127.0.0.1:7799
mesh_mount b -o http=127.0.0.1:7798,metrics-open
mesh_wait_peers 30 a b
A=${MNT[a]} B=${MNT[b]}
HA=http://127.0.0.1:7799 HB=http://127.0.0.1:7798

# in the namespace, where the daemons listen
get() { ip netns exec "$MESH_NS" curl -sS --max-time 10 "$@"; }
code() { get -o /dev/null -w '%{http_code}' "$@"; }

url=$("$MESHFS" stat --url "$A")
log "stat --url: ${url%%token=*}token=..."
[[ $url =~ ^$HA/\?token=([0-9a-f]{64})$ ]] || fail "meshfs stat --url printed '$url'"
TOKEN=${BASH_REMATCH[1]}
check_eq "token file mode" 600 "$(stat -c %a "${STORE[a]}/http.token")"
check_eq "token file holds the token" "$TOKEN" "$(cat "${STORE[a]}/http.token")"
mkdir -p "$T/nostore"
expect_fail "no daemon serves" "$MESHFS" stat --url --store "$T/nostore"
expect_fail "give one of" "$MESHFS" stat --json --url "$A"

for p in / /status.json /history.json /metrics /nothing; do
    check_eq "$p without the token" 401 "$(code "$HA$p")"
    check_eq "$p with a wrong token" 401 "$(code "$HA$p?token=${TOKEN/a/b}")"
    check_eq "$p with a wrong bearer" 401 "$(code -H "Authorization: Bearer ${TOKEN:1}x" "$HA$p")"
done
check_eq "/ with ?token=" 200 "$(code "$HA/?token=$TOKEN")"
check_eq "/status.json with Bearer" 200 "$(code -H "Authorization: Bearer $TOKEN" "$HA/status.json")"
check_eq "unknown path with the token" 404 "$(code -H "Authorization: Bearer $TOKEN" "$HA/nothing")"
check_eq "POST" 405 "$(code -X POST -H "Authorization: Bearer $TOKEN" "$HA/status.json")"
# (curl's output goes to a file or to a grep that reads it all: a grep -q
# that stops at the first match makes curl fail to write the rest, and
# pipefail fail the test)
get "$HA/?token=$TOKEN" >"$T/page.html"
grep -q '<html' "$T/page.html" || fail "/ is not the page"
get -D "$T/page.hdr" -o /dev/null "$HA/?token=$TOKEN"
grep -qi '^content-security-policy:' "$T/page.hdr" || fail "the page has no Content-Security-Policy"

# B: --metrics-open opens /metrics, nothing else
check_eq "B /metrics open" 200 "$(code "$HB/metrics")"
check_eq "B /status.json still closed" 401 "$(code "$HB/status.json")"
check_eq "B / still closed" 401 "$(code "$HB/")"

# /status.json is `meshfs stat --json`: the same paths, the same values
# where nothing moves
bearer=(-H "Authorization: Bearer $TOKEN")
shape() { jq -r '[paths | map(tostring) | join(".")] | map(gsub("\\.[0-9]+"; ".N")) | unique | .[]'; }
# (two moments: a part that comes and goes, such as who holds collection
# back right after the mesh formed, may differ once; CI rehearsal 7)
for try in 1 2 3 4 5; do
    get "${bearer[@]}" "$HA/status.json" >"$T/web.json"
    mesh_stat a >"$T/cli.json"
    diff <(shape <"$T/web.json") <(shape <"$T/cli.json") >"$T/shape.diff" && break
    ((try < 5)) || fail "/status.json and meshfs stat --json differ in shape: $(cat "$T/shape.diff")"
    sleep 0.5
done
for f in format node key store mount files dirs in_sync http; do
    check_eq "/status.json .$f" "$(jq -c ".$f" "$T/cli.json")" "$(jq -c ".$f" "$T/web.json")"
done
check_eq "format" 1 "$(jq .format "$T/web.json")"
check_eq "peer in the document" "${ID[b]}" "$(jq -r '.peers[0].id' "$T/web.json")"

metrics() { get "${bearer[@]}" "$HA/metrics"; }
# VALUE NAME LABELS FILE: the sample's value (0 when missing)
value() { awk -v k="$1$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$3"; }
metrics >"$T/m0"
promtool check metrics <"$T/m0" || fail "promtool check metrics failed on A's /metrics"
get "$HB/metrics" | promtool check metrics || fail "promtool check metrics failed on B's /metrics"

# data moves: 40 files of 64 KiB on A
peer_b="{peer=\"${ID[b]}\"}"
peer_a="{peer=\"${ID[a]}\"}"
get "$HB/metrics" >"$T/b0"
for i in $(seq 1 40); do head -c 65536 /dev/urandom >"$A/f$i"; done
mesh_wait_converged 60 a b
metrics >"$T/m1"
get "$HB/metrics" >"$T/b1"
promtool check metrics <"$T/m1" || fail "promtool check metrics failed after the writes"
moved() { # NAME LABELS FILE0 FILE1 AT_LEAST
    local v0 v1
    v0=$(value "$1" "$2" "$3")
    v1=$(value "$1" "$2" "$4")
    log "$1$2: $v0 -> $v1"
    awk -v a="$v0" -v b="$v1" -v d="$5" 'BEGIN { exit !(b - a >= d) }' || fail "$1$2 moved $v0 -> $v1, want +$5"
}
moved meshfs_fuse_requests_total '{op="create"}' "$T/m0" "$T/m1" 40
moved meshfs_fuse_requests_total '{op="write"}' "$T/m0" "$T/m1" 40
moved meshfs_fuse_request_duration_seconds_count '{op="write"}' "$T/m0" "$T/m1" 40
moved meshfs_peer_ops_sent_total "$peer_b" "$T/m0" "$T/m1" 40
moved meshfs_peer_chunks_sent_total "$peer_b" "$T/m0" "$T/m1" 40
moved meshfs_peer_sent_bytes_total "$peer_b" "$T/m0" "$T/m1" $((40 * 65536))
moved meshfs_peer_ops_received_total "$peer_a" "$T/b0" "$T/b1" 40
moved meshfs_peer_received_bytes_total "$peer_a" "$T/b0" "$T/b1" $((40 * 65536))
check_eq "A: files" 40 "$(value meshfs_store_inodes '{kind="file"}' "$T/m1")"
check_eq "A: B alive" 1 "$(value meshfs_peer_state "{peer=\"${ID[b]}\",state=\"alive\"}" "$T/m1")"
in_sync() { metrics | grep -x "meshfs_in_sync 1" >/dev/null; }
wait_until 10 "A's /metrics says in sync" in_sync

# the peer goes: its state moves to dead. The link is idle (a silent
# peer is dead after 41 s then); someone watching the page (/status.json,
# polled each second) keeps it lively: dead within 5 s
watch() { get "${bearer[@]}" -o /dev/null "$HA/status.json"; }
state_is() { watch && metrics | grep -x "meshfs_peer_state{peer=\"${ID[b]}\",state=\"$1\"} 1" >/dev/null; }
sleep 3 # the link goes quiet
watch
t0=$SECONDS
mesh_partition "a" "b"
wait_until 10 "A's /metrics shows B dead" state_is dead
log "B dead after $((SECONDS - t0)) s"
mesh_heal
wait_until 10 "A's /metrics shows B alive again" state_is alive

# /history.json: samples every 5 s with the peer's counters
sleep 6
get "${bearer[@]}" "$HA/history.json" >"$T/h.json"
jq -e '.format == 1 and .interval_ms == 5000 and (.samples | length) >= 2' "$T/h.json" >/dev/null || fail "history.json: $(head -c 300 "$T/h.json")"
jq -e --arg b "${ID[b]}" '.samples[-1].peers | map(select(.id == $b and .bytes_out > 0)) | length == 1' "$T/h.json" >/dev/null ||
    fail "history.json's last sample lacks B's counters: $(jq -c '.samples[-1]' "$T/h.json")"

# conflicts are listed newest first (by the time in a copy's name): z
# conflicts a second after a, though a comes first in path order
conflict() { # NAME: both sides write NAME while apart
    mesh_partition "a" "b"
    echo "a's $1" >"$A/$1"
    echo "b's $1" >"$B/$1"
    mesh_heal
    mesh_wait_converged 30 a b
}
conflict a-older
sleep 1.1
conflict z-newer
get "${bearer[@]}" "$HA/status.json" >"$T/c.json"
check_eq "conflicts" 2 "$(jq .conflicts "$T/c.json")"
jq -r '.conflict_paths[0]' "$T/c.json" | grep -q '^/z-newer' || fail "the newest conflict is not listed first: $(jq -c .conflict_paths "$T/c.json")"

# B unmounts: its goodbye reaches A at once (it was lost: the unmount's
# flush found nothing queued while the goodbye still sat in the sync
# thread's inbox, so B showed alive until it timed out)
mesh_umount b
left() { mesh_stat a | jq -e --arg b "${ID[b]}" '.peers[] | select(.id == $b) | .state == "left"' >/dev/null; }
wait_until 3 "A sees B left after its unmount" left
check_eq "A's /metrics: B left" 1 "$(metrics | value meshfs_peer_state "{peer=\"${ID[b]}\",state=\"left\"}" /dev/stdin)"

# a non-loopback address is refused, and nothing is mounted
mkdir -p "$T/m2"
out=$(nsenter --net="/run/netns/$MESH_NS" "$MESHFS" mount --store "$T/s2" --http 192.0.2.1:7000 "$T/m2" 2>&1) && fail "mount --http 192.0.2.1:7000 succeeded"
grep -q -- "--http-public" <<<"$out" || fail "the refusal does not say how: $out"
! is_mounted "$T/m2" || fail "a refused --http left a mount"
[[ ! -e "$T/s2" ]] || fail "a refused --http made a store"
# A's address in use: refused before anything is made
out=$(nsenter --net="/run/netns/$MESH_NS" "$MESHFS" mount --store "$T/s3" --http 127.0.0.1:7799 "$T/m2" 2>&1) && fail "a second mount on A's --http address succeeded"
grep -q "in use" <<<"$out" || fail "the refusal does not say the address is in use: $out"
! is_mounted "$T/m2" || fail "a refused --http left a mount"
[[ ! -e "$T/s3" ]] || fail "a refused --http made a store"
out=$("$MESHFS" mount --http-public "$T/m2" 2>&1) && fail "--http-public without --http succeeded"
log "refused: $out"

log "ok"
