#!/usr/bin/env bash
# bench/repl/run.sh - the replication benchmark: meshfs and Syncthing side by
# side, in one run, on the same machine, in a private network namespace
# (loopback addresses 127.0.0.x, loss and partitions by nftables in it).
#
#   bench/repl/run.sh                 full run (10-14 minutes; needs root)
#   bench/repl/run.sh --quick         smaller sizes (~2.5 minutes); or QUICK=1
#   MESHFS=/path/to/meshfs bench/repl/run.sh
#   KEEP=1 bench/repl/run.sh          keep the temp dir (logs, stores) after
#                                     unmounting, to look at afterwards
#   ST_WATCH_DELAY=1                  Syncthing's fsWatcherDelayS (1.19, the
#                                     Debian 12 version, takes whole seconds)
#   LO_MTU=1500                       loopback MTU and GSO size in the
#                                     namespace (default: the kernel's 65536)
#   TCP_CC=reno                       TCP congestion control in the namespace
#                                     (default: the host's; Syncthing is TCP;
#                                     a namespace may only pick one of
#                                     net.ipv4.tcp_allowed_congestion_control)
#   ONLY=lat,big,part,idle,many       run only these tests (default: all)
#   ST_FOLDER_EXTRA='"disableFsync":true'  more Syncthing folder options
#                                     (JSON members), e.g. to try variants
#
# What it measures (docs/BENCH-repl.md says more):
#   1. propagation: close() on A -> the new content readable on B (poll with
#      open+read every ms), p50/p99, no loss and 30% loss
#   2. 10,000 files of 4 KiB written on A -> all complete on B and on C
#   3. one 1 GiB file of random data, close() on A -> read complete on B,
#      MB/s, no loss and 30% loss (Syncthing: 256 MiB at loss)
#   4. a 10 s partition with 1,000 changes on each of A and B -> converged
#      (in sync on both and equal trees) after the heal
#   5. idle traffic A<->B (nftables counters), bytes/s per peer
# The timed parts run in bench/repl/replbench.c (built here with cc).
# Results: bench/repl/results/<UTC date>.{txt,csv}. Nothing outside its temp
# dir (under $BENCH_DIR, default /var/tmp) and its network namespace is
# touched; every exit path unmounts, stops its daemons and deletes the
# namespace. Syncthing is installed with apt-get when missing.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
QUICK=${QUICK:-0}
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) QUICK=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

# ---------------------------------------------------------------- sizes
LAT_N=100         # propagation samples per tool and loss rate
NFILES=10000      # small files for the three-node test
BIG_MIB=1024      # big file, no loss (both tools)
BIG_LOSS_MIB=1024 # big file at 30% loss, meshfs
ST_LOSS_MIB=256   # big file at 30% loss, Syncthing (the issue: ~1 MB/s there)
PART_N=1000       # changes on each side during the partition
PART_S=10         # partition length
IDLE_S=90         # idle traffic window (Syncthing pings every 90 s)
if ((QUICK)); then
    LAT_N=20 NFILES=2000 BIG_MIB=128 BIG_LOSS_MIB=128 ST_LOSS_MIB=16
    PART_N=200 PART_S=5 IDLE_S=15
fi
LOSS=30
ST_WATCH_DELAY=${ST_WATCH_DELAY:-1}
# shellcheck disable=SC2034 # printed in the header, via ${!v}
ONLY_ARG=${ONLY:-}
ONLY=,${ONLY:-lat,big,part,idle,many},
want() { [[ $ONLY == *",$1,"* ]]; }

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

# ---------------------------------------------------------------- checks
[[ $EUID -eq 0 ]] || die "needs root (network namespace, nftables, FUSE mounts)"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing"
for t in ip nft nsenter jq curl fusermount3 cc; do
    command -v "$t" >/dev/null || die "$t is not installed"
done
if ! command -v syncthing >/dev/null; then
    say "installing syncthing (apt-get install -y syncthing)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y syncthing >/dev/null ||
        die "cannot install syncthing"
fi
SYNCTHING=$(readlink -f "$(command -v syncthing)")
if [[ -z "${MESHFS:-}" ]]; then
    for c in "$REPO/build-bench/cli/meshfs" "$REPO/build/cli/meshfs" "$(command -v meshfs || true)"; do
        [[ -n "$c" && -x "$c" ]] && { MESHFS=$c; break; }
    done
fi
[[ -n "${MESHFS:-}" && -x "$MESHFS" ]] || die "no meshfs binary; set MESHFS="
MESHFS=$(readlink -f "$MESHFS")

# ---------------------------------------------------------------- cleanup
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/meshfs-repl.XXXXXX") || die "mktemp failed"
chmod 755 "$W"
NS=mfs-repl-$$
NS_MADE=0
MOUNTS=()    # meshfs mount points we made
MFS_PIDS=()  # their daemons
ST_PIDS=()   # syncthing instances
BG_PIDS=()   # pollers and writers in the background

pid_is() { [[ "$(readlink "/proc/$1/exe" 2>/dev/null)" == "$2" ]]; }
is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

cleanup() {
    local rc=$? p m i c
    trap - EXIT INT TERM HUP
    set +e
    # pollers run under timeout(1), which passes TERM on to them
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for m in "${MOUNTS[@]}"; do
        for i in 1 2 3; do
            is_mounted "$m" || break
            timeout 20 fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
        done
    done
    # Syncthing 1.19 runs a monitor process (the pid we hold) and the real
    # instance as its child; TERM to the monitor stops both, the children
    # are listed too in case the monitor is gone
    for p in "${ST_PIDS[@]}"; do
        pid_is "$p" "$SYNCTHING" || continue
        for c in $(pgrep -P "$p"); do pid_is "$c" "$SYNCTHING" && ST_PIDS+=("$c"); done
        kill -TERM "$p" 2>/dev/null
    done
    # up to 30 s for the daemons to exit by themselves; a meshfs daemon
    # that takes more than 2 s after its unmount is reported
    local t0=$SECONDS alive
    declare -A gone=()
    for i in $(seq 1 300); do
        alive=0
        for p in "${MFS_PIDS[@]}"; do
            if pid_is "$p" "$MESHFS"; then
                alive=1
            elif [[ -z ${gone[$p]:-} ]]; then
                gone[$p]=1
                ((SECONDS - t0 > 2)) && say "meshfs daemon $p exited $((SECONDS - t0)) s after its unmount"
            fi
        done
        for p in "${ST_PIDS[@]}"; do pid_is "$p" "$SYNCTHING" && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${MFS_PIDS[@]}"; do
        pid_is "$p" "$MESHFS" || continue
        say "WARNING: meshfs daemon $p still running 30 s after its unmount: kill -9 (log: $W/log)"
        kill -9 "$p" 2>/dev/null
    done
    for p in "${ST_PIDS[@]}"; do pid_is "$p" "$SYNCTHING" && kill -9 "$p" 2>/dev/null; done
    ((NS_MADE)) && { ip netns del "$NS" 2>/dev/null || say "WARNING: cannot delete namespace $NS"; }
    for m in "${MOUNTS[@]}"; do is_mounted "$m" && say "WARNING: $m still mounted"; done
    if [[ -n "${KEEP:-}" ]]; then
        say "KEEP set: leaving $W"
    else
        rm -rf --one-file-system "$W"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "signal: cleaning up"; exit 130' INT TERM HUP

# ---------------------------------------------------------------- helpers
cc -O2 -Wall -Wextra -o "$W/replbench" "$HERE/replbench.c" || die "cannot build replbench"
RB=$W/replbench
mono() { "$RB" now; }
# fsub A B: A - B with 3 decimals; fdiv A B
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a - b }'; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f\n", a / b; else print "" }'; }
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
# Every test writes data of its own seed: meshfs keeps every chunk it ever
# stored (and Syncthing reuses blocks it has), so data written twice would
# not travel twice. (Not $(...): a subshell would lose the increment.)
SEED=$((RANDOM * 32768 + RANDOM + 1))
next_seed() { SEED=$((SEED + 7919)); }

declare -A R=()   # R[tool.metric] = value
declare -A NOTE=() # NOTE[tool.metric] = why a figure is missing or odd
ANOM=()           # anomalies, printed under the table
anomaly() { ANOM+=("$*"); say "ANOMALY: $*"; }

# bg OUT CMD...: run CMD in the background with stdout to OUT and wait for
# it. A signal to the script interrupts `wait` at once (a foreground child
# would delay the trap until it ends); cleanup then stops CMD.
bg() {
    local out=$1 p
    shift
    "$@" >"$out" &
    p=$!
    BG_PIDS+=("$p")
    wait "$p"
}
pause() { bg /dev/null sleep "$1"; }

# wait_for SECS CMD...: poll CMD every 50 ms; 1 on timeout
wait_for() {
    local end
    end=$(awk -v n="$(mono)" -v s="$1" 'BEGIN { print n + s }')
    shift
    until "$@" >/dev/null 2>&1; do
        awk -v n="$(mono)" -v e="$end" 'BEGIN { exit !(n > e) }' && return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------- network
ip netns add "$NS" || die "cannot make a network namespace"
NS_MADE=1
ip -n "$NS" link set lo up
if [[ -n "${LO_MTU:-}" ]]; then
    ip -n "$NS" link set lo mtu "$LO_MTU" gso_max_size "$LO_MTU" gso_max_segs 1 ||
        die "cannot set the loopback MTU to $LO_MTU"
fi
if [[ -n "${TCP_CC:-}" ]]; then
    in_ns sysctl -qw net.ipv4.tcp_congestion_control="$TCP_CC" ||
        die "cannot set TCP congestion control $TCP_CC in the namespace (allowed: $(sysctl -n net.ipv4.tcp_allowed_congestion_control))"
fi
IPA=127.0.0.2 IPB=127.0.0.3 IPC=127.0.0.4
MPORT=7400  # meshfs mesh of A and B (tests 1, 3, 4, 5)
MPORT3=7401 # meshfs mesh of A, B and C (test 2)
SPORT=22000 # Syncthing, every instance
# Counters first (what was sent, dropped or not), then partitions, then
# loss; only the output hook: on one loopback every packet passes it once.
# Syncthing dials from its listen port, so A<->B packets carry 22000 as
# source or destination port and A's or B's address on both ends.
in_ns nft -f - <<NFT || die "nftables does not work in the namespace"
table inet rbench {
  counter mfs_ab { }
  counter st_ab { }
  chain part { }
  chain loss { }
  chain out {
    type filter hook output priority 0; policy accept;
    ip saddr { $IPA, $IPB } ip daddr { $IPA, $IPB } udp dport $MPORT counter name mfs_ab
    ip saddr { $IPA, $IPB } ip daddr { $IPA, $IPB } tcp sport $SPORT counter name st_ab
    ip saddr { $IPA, $IPB } ip daddr { $IPA, $IPB } tcp dport $SPORT tcp sport != $SPORT counter name st_ab
    jump part
    jump loss
  }
}
NFT
ab_match() { # the A<->B packets of one tool, as nft match expressions
    case $1 in
    meshfs) echo "ip saddr { $IPA, $IPB } ip daddr { $IPA, $IPB } udp dport $MPORT" ;;
    syncthing) echo "ip saddr { $IPA, $IPB } ip daddr { $IPA, $IPB } tcp sport $SPORT" \
        "|ip saddr { $IPA, $IPB } ip daddr { $IPA, $IPB } tcp dport $SPORT tcp sport != $SPORT" ;;
    esac
}
# net_rule CHAIN TOOL VERDICT...: one rule per match of the tool
net_rule() {
    local chain=$1 tool=$2 m
    shift 2
    local IFS='|'
    for m in $(ab_match "$tool"); do
        IFS=' '
        # shellcheck disable=SC2086
        in_ns nft add rule inet rbench "$chain" $m "$@" || die "nft add rule $chain $m $*"
    done
}
set_loss() { # set_loss PCT: PCT% of both tools' A<->B packets, each direction
    in_ns nft flush chain inet rbench loss
    if [[ $1 != 0 ]]; then
        net_rule loss meshfs numgen random mod 100 \< "$1" drop
        net_rule loss syncthing numgen random mod 100 \< "$1" drop
    fi
}
partition() { net_rule part "$1" drop; }
heal() { in_ns nft flush chain inet rbench part; }
counter_bytes() {
    in_ns nft -j list counter inet rbench "$1" | jq '.nftables[] | select(.counter) | .counter.bytes'
}

# ---------------------------------------------------------------- meshfs
declare -A MNT=() MLOG=()
mfs_json() { timeout 10 "$MESHFS" stat --json "$1" 2>/dev/null; }
# mfs_insync MNT NPEERS: in sync, with NPEERS live peers
mfs_insync() {
    local j
    j=$(mfs_json "$1") || return 1
    jq -e --argjson n "$2" '.in_sync == true and .live_peers >= $n' <<<"$j" >/dev/null
}
# mfs_mount NAME STORE ADDR: start the daemon in the namespace, wait until
# the mount answers `meshfs stat`
mfs_mount() {
    local name=$1 store=$2 addr=$3 mnt=$W/m/$1 pid i
    mkdir -p "$mnt"
    MNT[$name]=$mnt
    MLOG[$name]=$W/log/meshfs-$name.log
    MOUNTS+=("$mnt")
    # nsenter execs the daemon: $! is its pid (a function run with & would
    # give the pid of a subshell)
    nsenter --net="/run/netns/$NS" "$MESHFS" mount -f --store "$store" --listen "$addr" "$mnt" \
        >>"${MLOG[$name]}" 2>&1 &
    pid=$!
    MFS_PIDS+=("$pid")
    for ((i = 0; i < 300; i++)); do
        if is_mounted "$mnt" && mfs_json "$mnt" | jq -e .daemon >/dev/null 2>&1; then return 0; fi
        kill -0 "$pid" 2>/dev/null || die "meshfs $name: the daemon exited: $(tail -3 "${MLOG[$name]}")"
        sleep 0.1
    done
    die "meshfs $name: mount not ready after 30 s: $(tail -3 "${MLOG[$name]}")"
}
# mfs_mesh PORT NAME... : a mesh of the named nodes (first one invites)
mfs_mesh() {
    local port=$1 first=$2 n tok i=2
    shift
    mkdir -p "$W/m" "$W/log"
    for n in "$@"; do
        if [[ $n == "$first" ]]; then
            "$MESHFS" init --store "$W/s/$n" >/dev/null || die "meshfs init failed"
        else # an invitation is good for one join
            tok=$("$MESHFS" invite --store "$W/s/$first" "127.0.0.2:$port" 2>/dev/null) ||
                die "meshfs invite failed"
            "$MESHFS" join --store "$W/s/$n" "$tok" >/dev/null || die "meshfs join failed"
        fi
        i=$((i + 1))
    done
    i=2
    for n in "$@"; do
        mfs_mount "$n" "$W/s/$n" "127.0.0.$i:$port"
        i=$((i + 1))
    done
}

# ---------------------------------------------------------------- syncthing
declare -A SID=() SIP=()
st_api() { # st_api NODE METHOD PATH [curl args]
    local x=$1 m=$2 p=$3
    shift 3
    in_ns curl -sS --max-time 10 -X "$m" -H "X-API-Key: bench-$x" "http://${SIP[$x]}:8384$p" "$@"
}
st_start() { # st_start NODE IP
    local x=$1 ip=$2 h=$W/st/$1
    SIP[$x]=$ip
    mkdir -p "$h" "$W/log"
    "$SYNCTHING" generate --home="$h" --no-default-folder --skip-port-probing >/dev/null 2>&1 ||
        die "syncthing generate failed"
    # Tuned for speed and for a closed network: fixed listen address, no
    # discovery, relays, NAT, usage reports or upgrades, normal priority.
    sed -i -e "s|<listenAddress>default</listenAddress>|<listenAddress>tcp://$ip:$SPORT</listenAddress>|" \
        -e 's|<globalAnnounceEnabled>true<|<globalAnnounceEnabled>false<|' \
        -e 's|<localAnnounceEnabled>true<|<localAnnounceEnabled>false<|' \
        -e 's|<relaysEnabled>true<|<relaysEnabled>false<|' \
        -e 's|<natEnabled>true<|<natEnabled>false<|' \
        -e 's|<startBrowser>true<|<startBrowser>false<|' \
        -e 's|<urAccepted>0<|<urAccepted>-1<|' \
        -e 's|<autoUpgradeIntervalH>[0-9]*<|<autoUpgradeIntervalH>0<|' \
        -e 's|<crashReportingEnabled>true<|<crashReportingEnabled>false<|' \
        -e 's|<setLowPriority>true<|<setLowPriority>false<|' \
        -e "s|<address>127.0.0.1:8384</address>|<address>$ip:8384</address>|" \
        -e "s|<apikey>[^<]*</apikey>|<apikey>bench-$x</apikey>|" "$h/config.xml"
    grep -q "tcp://$ip:$SPORT" "$h/config.xml" || die "syncthing config of $x: listen address not set"
    STNODEFAULTFOLDER=1 STNOUPGRADE=1 STNORESTART=1 nsenter --net="/run/netns/$NS" "$SYNCTHING" serve --home="$h" \
        --no-browser --no-restart --logfile="$W/log/syncthing-$x.log" >/dev/null 2>&1 &
    ST_PIDS+=($!)
}
st_folder_json() { # st_folder_json ID PATH NODE...
    local id=$1 path=$2 n devs=""
    shift 2
    for n in "$@"; do devs+="${devs:+,}{\"deviceID\":\"${SID[$n]}\"}"; done
    printf '{"id":"%s","label":"%s","path":"%s","type":"sendreceive","devices":[%s],"fsWatcherEnabled":true,"fsWatcherDelayS":%s,"rescanIntervalS":3600%s}' \
        "$id" "$id" "$path" "$devs" "$ST_WATCH_DELAY" "${ST_FOLDER_EXTRA:+,$ST_FOLDER_EXTRA}"
}
st_connected() { # st_connected X Y
    st_api "$1" GET /rest/system/connections | jq -e --arg d "${SID[$2]}" '.connections[$d].connected' >/dev/null
}
# st_insync FOLDER X PEER...: X idle with nothing needed, every peer
# connected and complete as far as X knows
st_insync() {
    local f=$1 x=$2 p
    shift 2
    st_api "$x" GET "/rest/db/status?folder=$f" | jq -e '.state == "idle" and .needTotalItems == 0' >/dev/null || return 1
    for p in "$@"; do
        st_connected "$x" "$p" || return 1
        st_api "$x" GET "/rest/db/completion?folder=$f&device=${SID[$p]}" | jq -e '.completion == 100' >/dev/null || return 1
    done
}

# ---------------------------------------------------------------- setup
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say "setup: namespace $NS, temp dir $W"
st_start a $IPA
st_start b $IPB
st_start c $IPC
mfs_mesh $MPORT a b
mfs_mesh $MPORT3 a3 b3 c3
for x in a b c; do
    wait_for 60 st_api $x GET /rest/system/ping || die "syncthing $x: REST API not up: $(tail -3 "$W/log/syncthing-$x.log")"
    SID[$x]=$(st_api $x GET /rest/system/status | jq -r .myID)
done
for x in a b c; do
    for y in a b c; do
        [[ $x == "$y" ]] && continue
        st_api $x POST /rest/config/devices -d "{\"deviceID\":\"${SID[$y]}\",\"name\":\"$y\",\"addresses\":[\"tcp://${SIP[$y]}:$SPORT\"]}" ||
            die "syncthing $x: cannot add device $y"
    done
done
for x in a b c; do
    mkdir -p "$W/st/$x/multi"
    [[ $x == c ]] || { mkdir -p "$W/st/$x/bench"; st_api $x POST /rest/config/folders -d "$(st_folder_json bench "$W/st/$x/bench" a b)"; }
    st_api $x POST /rest/config/folders -d "$(st_folder_json multi "$W/st/$x/multi" a b c)"
done
for p in "a b" "a c" "b c"; do
    wait_for 60 st_connected "${p% *}" "${p#* }" || die "syncthing ${p% *} and ${p#* } do not connect"
done
wait_for 60 st_insync bench a b || die "syncthing folder bench not in sync at start"
wait_for 60 st_insync bench b a || die "syncthing folder bench not in sync at start"
for p in "a b c" "b a c" "c a b"; do
    # shellcheck disable=SC2086 # node and peers
    wait_for 60 st_insync multi $p || die "syncthing folder multi not in sync at start"
done
wait_for 60 mfs_insync "${MNT[a]}" 1 || die "meshfs a: not in sync with b at start: $(mfs_json "${MNT[a]}")"
wait_for 60 mfs_insync "${MNT[b]}" 1 || die "meshfs b: not in sync with a at start"
for n in a3 b3 c3; do wait_for 60 mfs_insync "${MNT[$n]}" 2 || die "meshfs $n: mesh of three not in sync at start"; done
declare -A SRC=([meshfs]=${MNT[a]} [syncthing]=$W/st/a/bench)
declare -A DST=([meshfs]=${MNT[b]} [syncthing]=$W/st/b/bench)
say "setup done: syncthing $(st_api a GET /rest/system/version | jq -r .version), meshfs $("$MESHFS" --version)"

# ---------------------------------------------------------------- 1. latency
# lat_run TOOL LOSS TIMEOUT
lat_run() {
    local tool=$1 loss=$2 to=$3 d=lat-$2 out n tmo p50 p99 max
    if ! { mkdir -p "${SRC[$tool]}/$d" && echo "edit $tool $loss" >"${SRC[$tool]}/$d/edit"; }; then
        anomaly "$tool, latency at $loss% loss: cannot write on A"
        return
    fi
    if ! wait_for 60 grep -qx "edit $tool $loss" "${DST[$tool]}/$d/edit"; then
        anomaly "$tool, latency at $loss% loss: the seed file did not reach B in 60 s"
        NOTE[$tool.lat_p50_$loss]="seed file never arrived"
        return
    fi
    next_seed
    if ! bg "$W/lat.out" timeout -k 5 3600 "$RB" latency "${SRC[$tool]}/$d" "${DST[$tool]}/$d" \
        "$LAT_N" 1000 "$to" "$SEED" "$W/log/lat-$tool-$loss.txt"; then
        anomaly "$tool latency at $loss%: replbench failed"
        return
    fi
    read -r n tmo p50 p99 max <"$W/lat.out"
    if ((tmo > 0)); then
        anomaly "$tool, latency at $loss% loss: $tmo of $n samples not visible on B within $to s"
    fi
    ((n < LAT_N)) && anomaly "$tool, latency at $loss% loss: stopped after $n of $LAT_N samples"
    R[$tool.lat_p50_$loss]=$(awk -v v="$p50" 'BEGIN { print (v >= 1e9) ? "" : v * 1000 }')
    R[$tool.lat_p99_$loss]=$(awk -v v="$p99" 'BEGIN { print (v >= 1e9) ? "" : v * 1000 }')
    [[ -n ${R[$tool.lat_p99_$loss]} ]] || NOTE[$tool.lat_p99_$loss]="> ${to} s (timeouts)"
    [[ -n ${R[$tool.lat_p50_$loss]} ]] || NOTE[$tool.lat_p50_$loss]="> ${to} s (timeouts)"
    say "   $tool latency, $loss% loss: n=$n timeouts=$tmo p50=$(fdiv "$p50" 0.001) ms p99=$(fdiv "$p99" 0.001) ms max=$(fdiv "$max" 0.001) ms"
}

if want lat; then
    say "1. propagation latency, $LAT_N samples each"
    set_loss 0
    lat_run meshfs 0 10
    lat_run syncthing 0 30
    set_loss $LOSS
    lat_run meshfs $LOSS 30
    lat_run syncthing $LOSS 60
    set_loss 0
fi

# ---------------------------------------------------------------- 3. big file
# big_run TOOL LOSS MIB TIMEOUT
big_run() {
    local tool=$1 loss=$2 mib=$3 to=$4 s f pid out t0 tc st td tv c0 c1 ctr
    ctr=$([[ $tool == meshfs ]] && echo mfs_ab || echo st_ab)
    c0=$(counter_bytes "$ctr")
    next_seed
    s=$SEED
    f=big-$s
    "$RB" bigwait "${DST[$tool]}/$f" "$mib" "$s" "$to" >"$W/bigwait.out" &
    pid=$!
    BG_PIDS+=("$pid")
    sleep 0.1
    if ! bg "$W/bigwrite.out" "$RB" bigwrite "${SRC[$tool]}/$f" "$mib" "$s"; then
        anomaly "$tool big file: write on A failed"
        kill "$pid"
        return
    fi
    read -r t0 tc <"$W/bigwrite.out"
    wait "$pid"
    c1=$(counter_bytes "$ctr")
    read -r st td tv <"$W/bigwait.out"
    if [[ $st == "done" ]]; then
        R[$tool.big_$loss]=$(awk -v m="$mib" -v d="$(fsub "$td" "$tc")" 'BEGIN { printf "%.1f\n", m * 1048576 / 1e6 / d }')
        R[$tool.bigmib_$loss]=$mib
        say "   $tool $mib MiB at $loss% loss: write $(fsub "$tc" "$t0") s, complete on B $(fsub "$td" "$tc") s after close (verifying read $tv s): ${R[$tool.big_$loss]} MB/s; from the first write $(awk -v m="$mib" -v d="$(fsub "$td" "$t0")" 'BEGIN { printf "%.1f", m * 1048576 / 1e6 / d }') MB/s"
        NOTE[$tool.big_$loss.detail]="write on A $(fsub "$tc" "$t0") s, complete on B $(fsub "$td" "$tc") s after close, of which the verifying read $(printf %.3f "$tv") s; $(fdiv "$((c1 - c0))" $((mib * 1048576))) bytes on the wire per byte of file"
        say "   ${NOTE[$tool.big_$loss.detail]}"
        if awk -v b="$((c1 - c0))" -v f="$((mib * 1048576))" 'BEGIN { exit !(b < 0.9 * f) }'; then
            anomaly "$tool, big file at $loss% loss: only $((c1 - c0)) bytes crossed the wire for $((mib * 1048576)) bytes of file (data reused, not sent?)"
        fi
    else
        anomaly "$tool, $mib MiB at $loss% loss: not complete on B after $to s (size seen: ${td:-?})"
        NOTE[$tool.big_$loss]="< $(awk -v m="$mib" -v d="$to" 'BEGIN { printf "%.1f", m * 1048576 / 1e6 / d }') (timeout)"
    fi
    rm -f "${SRC[$tool]}/$f"
    wait_for 120 test ! -e "${DST[$tool]}/$f" || anomaly "$tool: deleting $f on A did not reach B in 120 s"
}

if want big; then
    say "3. one big file of random data"
    set_loss 0
    big_run meshfs 0 $BIG_MIB 300
    big_run syncthing 0 $BIG_MIB 300
    set_loss $LOSS
    big_run meshfs $LOSS $BIG_LOSS_MIB 400
    big_run syncthing $LOSS $ST_LOSS_MIB 400
    set_loss 0
fi

# ---------------------------------------------------------------- 4. partition
tree_equal() { # tree_equal DIR1 DIR2
    "$RB" manifest "$1" | LC_ALL=C sort >"$W/man.1" && "$RB" manifest "$2" | LC_ALL=C sort >"$W/man.2" &&
        cmp -s "$W/man.1" "$W/man.2"
}
converged() { # converged TOOL: in sync on both, then equal trees
    case $1 in
    meshfs) mfs_insync "${MNT[a]}" 1 && mfs_insync "${MNT[b]}" 1 ;;
    syncthing) st_insync bench a b && st_insync bench b a ;;
    esac
}
part_run() {
    local tool=$1 a=${SRC[$1]}/part b=${DST[$1]}/part s tp th t tc ok=0 said=0
    next_seed
    s=$SEED
    if ! { mkdir -p "$a/base" && bg /dev/null "$RB" mkfiles "$a/base" 0 "$PART_N" 1024 "$s"; }; then
        anomaly "$tool partition: cannot write the base set"
        return
    fi
    if ! bg /dev/null timeout -k 5 200 "$RB" waitfiles "$b/base" "$PART_N" 1024 "$s" 180; then
        anomaly "$tool partition: the base set of $PART_N files did not reach B in 180 s"
        NOTE[$tool.part]="base set never arrived"
        return
    fi
    wait_for 60 converged "$tool" || anomaly "$tool partition: not in sync 60 s after the base set arrived"
    partition "$tool"
    tp=$(mono)
    "$RB" changes "$a" 0 "$PART_N" "$s" >"$W/ch.a" &
    local pa=$!
    "$RB" changes "$b" 1 "$PART_N" "$s" >"$W/ch.b" &
    local pb=$!
    BG_PIDS+=("$pa" "$pb")
    wait "$pa" || anomaly "$tool partition: changes on A failed"
    wait "$pb" || anomaly "$tool partition: changes on B failed"
    t=$(mono)
    say "   $tool: $PART_N changes on each side in $(fsub "$t" "$tp") s; partitioned for $PART_S s"
    pause "$(awk -v e="$(fsub "$t" "$tp")" -v p="$PART_S" 'BEGIN { x = p - e; print (x > 0) ? x : 0 }')"
    heal
    th=$(mono)
    while :; do
        t=$(mono)
        if awk -v n="$t" -v h="$th" 'BEGIN { exit !(n - h > 120) }'; then break; fi
        if converged "$tool"; then
            tc=$t
            if tree_equal "${SRC[$tool]}" "${DST[$tool]}"; then ok=1; break; fi
            ((said++)) || anomaly "$tool partition: both report in sync $(fsub "$tc" "$th") s after the heal but the trees differ ($(diff "$W/man.1" "$W/man.2" | grep -c '^[<>]') lines; first: $(diff "$W/man.1" "$W/man.2" | grep -m1 '^[<>]'))"
        fi
        sleep 0.1
    done
    if ((ok)); then
        R[$tool.part]=$(fsub "$tc" "$th")
        say "   $tool converged ${R[$tool.part]} s after the heal"
    else
        anomaly "$tool partition: not converged 120 s after the heal"
        NOTE[$tool.part]="> 120 (not converged)"
    fi
}

if want part; then
    say "4. partition of $PART_S s, $PART_N changes on each side"
    part_run meshfs
    part_run syncthing
fi

# ---------------------------------------------------------------- 5. idle
idle_run() {
    local m0 m1 s0 s1
    say "5. idle traffic over $IDLE_S s (both tools at once, nothing changing)"
    pause 5
    m0=$(counter_bytes mfs_ab) s0=$(counter_bytes st_ab)
    pause "$IDLE_S"
    m1=$(counter_bytes mfs_ab) s1=$(counter_bytes st_ab)
    # two nodes: each sends to its one peer; per peer = total / 2 / seconds
    R[meshfs.idle]=$(awk -v a="$m0" -v b="$m1" -v s="$IDLE_S" 'BEGIN { printf "%.1f\n", (b - a) / 2 / s }')
    R[syncthing.idle]=$(awk -v a="$s0" -v b="$s1" -v s="$IDLE_S" 'BEGIN { printf "%.1f\n", (b - a) / 2 / s }')
    say "   meshfs $((m1 - m0)) B, syncthing $((s1 - s0)) B in $IDLE_S s (A->B plus B->A, IP headers included)"
    mfs_insync "${MNT[a]}" 1 || anomaly "meshfs a: not in sync (or b not alive) after the idle window: $(mfs_json "${MNT[a]}" | jq -c '{in_sync, sync, peers}')"
}
want idle && idle_run

# ---------------------------------------------------------------- 2. many files
# many_run TOOL SRCDIR DST1 DST2
many_run() {
    local tool=$1 src=$2/many d1=$3/many d2=$4/many s p1 p2 out t0 t1 r1 r2 x1 x2
    next_seed
    s=$SEED
    timeout -k 5 400 "$RB" waitfiles "$d1" "$NFILES" 4096 "$s" 300 >"$W/w1.out" &
    p1=$!
    timeout -k 5 400 "$RB" waitfiles "$d2" "$NFILES" 4096 "$s" 300 >"$W/w2.out" &
    p2=$!
    BG_PIDS+=("$p1" "$p2")
    if ! { mkdir -p "$src" && bg "$W/mkfiles.out" "$RB" mkfiles "$src" 0 "$NFILES" 4096 "$s"; }; then
        anomaly "$tool many files: write on A failed"
        return
    fi
    read -r t0 t1 <"$W/mkfiles.out"
    wait "$p1"
    wait "$p2"
    read -r r1 x1 <"$W/w1.out"
    read -r r2 x2 <"$W/w2.out"
    if [[ $r1 == "done" && $r2 == "done" ]]; then
        local last
        last=$(awk -v a="$x1" -v b="$x2" 'BEGIN { print (a > b) ? a : b }')
        R[$tool.many]=$(fsub "$last" "$t1")
        R[$tool.many_total]=$(fsub "$last" "$t0")
        R[$tool.many_write]=$(fsub "$t1" "$t0")
        say "   $tool: written on A in ${R[$tool.many_write]} s; complete on B $(fsub "$x1" "$t1") s and on C $(fsub "$x2" "$t1") s after the last close (${R[$tool.many_total]} s after the first write)"
    else
        anomaly "$tool, $NFILES files: B: $r1 ${x1:-}, C: $r2 ${x2:-} (timeout after 300 s; number verified)"
        NOTE[$tool.many]="> 300 (timeout)"
    fi
}
if want many; then
    say "2. $NFILES files of 4 KiB written on A, to B and C"
    many_run meshfs "${MNT[a3]}" "${MNT[b3]}" "${MNT[c3]}"
    many_run syncthing "$W/st/a/multi" "$W/st/b/multi" "$W/st/c/multi"
fi

# ---------------------------------------------------------------- report
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
STALE=$(find "$REPO/store" "$REPO/sync" "$REPO/fs" "$REPO/cli" -name '*.[ch]' -newer "$MESHFS" 2>/dev/null | head -1)
STAMP=$(date -u +%Y%m%d-%H%M)
mkdir -p "$HERE/results"
OUT=$HERE/results/$STAMP$( ((QUICK)) && echo -quick)
# key|label|unit|test|target op|target value
ALL_ROWS=(
    "lat_p50_0|propagation p50, no loss|ms|lat|<=|20"
    "lat_p99_0|propagation p99, no loss|ms|lat|<=|100"
    "lat_p50_$LOSS|propagation p50, $LOSS% loss|ms|lat||"
    "lat_p99_$LOSS|propagation p99, $LOSS% loss|ms|lat|<=|1000"
    "many|$NFILES x 4 KiB on B+C, after last close|s|many|<=|5"
    "many_total|  same, from the first write on A|s|many||"
    "many_write|  writing them on A|s|many||"
    "big_0|big file to B, no loss|MB/s|big|>=|160"
    "big_$LOSS|big file to B, $LOSS% loss|MB/s|big|>=|20"
    "part|partition heal -> converged|s|part|<=|5"
    "idle|idle traffic per peer|B/s|idle|<=|20"
)
ROWS=()
for row in "${ALL_ROWS[@]}"; do
    IFS='|' read -r _ _ _ test _ <<<"$row"
    want "$test" && ROWS+=("$row")
done
fmt() { # fmt TOOL KEY: the figure or the note
    local v=${R[$1.$2]:-}
    if [[ -n $v ]]; then printf '%.1f' "$v"; else printf '%s' "${NOTE[$1.$2]:-n/a}"; fi
}
{
    echo "meshfs replication benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command: $(for v in ONLY_ARG TCP_CC LO_MTU; do [[ -n ${!v:-} ]] && printf '%s=%s ' "${v%_ARG}" "${!v}"; done)$([[ $ST_WATCH_DELAY != 1 ]] && echo "ST_WATCH_DELAY=$ST_WATCH_DELAY ")bench/repl/run.sh$( ((QUICK)) && echo ' --quick')   meshfs: $("$MESHFS" --version) (source tree $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown))   syncthing: $("$SYNCTHING" --version | awk '{ print $2 }')"
    echo "meshfs binary: $MESHFS, built $(date -u -r "$MESHFS" '+%Y-%m-%d %H:%M UTC')$([[ -n $STALE ]] && echo "; WARNING: $STALE is newer (rebuild?)")"
    echo "host: $(uname -r), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), data under $W: $(findmnt -no FSTYPE -T "$W" 2>/dev/null)"
    echo "load average at start: $LOAD0, at end: $LOAD1"
    echo "network: one namespace, loopback mtu $(ip -n "$NS" -o link show lo | awk '{ for (i = 1; i < NF; i++) if ($i == "mtu") print $(i + 1) }'), tcp congestion control $(in_ns sysctl -n net.ipv4.tcp_congestion_control); loss: nftables drops $LOSS% of each tool's A<->B packets (output hook, each direction)"
    echo "syncthing: fsWatcherDelayS=$ST_WATCH_DELAY rescanIntervalS=3600${ST_FOLDER_EXTRA:+ $ST_FOLDER_EXTRA}, discovery/relays/NAT/usage reports off, setLowPriority=false, other options default"
    echo "sizes: $LAT_N propagation samples (half new files, half rewrites of one file, 100-160 B, polled every 1 ms); $NFILES files x 4 KiB to 2 peers; big file $BIG_MIB MiB, at loss $BIG_LOSS_MIB MiB (meshfs) / $ST_LOSS_MIB MiB (syncthing); partition $PART_S s with $PART_N changes per side; idle $IDLE_S s"
    echo
    printf '%-42s %-5s %12s %12s %9s   %s\n' metric unit meshfs syncthing "mfs/st" "target (meshfs)"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label unit _ op tv <<<"$row"
        m=${R[meshfs.$key]:-} s=${R[syncthing.$key]:-}
        ratio=""
        if [[ -n $m && -n $s ]]; then ratio=$(awk -v a="$m" -v b="$s" 'BEGIN { if (b > 0) printf "%.3g", a / b; else print "inf" }'); fi
        tgt=""
        if [[ -n $op ]]; then
            if [[ -n $m ]]; then
                met=$(awk -v v="$m" -v t="$tv" -v op="$op" 'BEGIN { print ((op == "<=") ? (v <= t) : (v >= t)) ? "met" : "MISSED" }')
            else
                met=MISSED
            fi
            tgt="$op $tv $unit: $met"
        fi
        printf '%-42s %-5s %12s %12s %9s   %s\n' "$label" "$unit" "$(fmt meshfs "$key")" "$(fmt syncthing "$key")" "$ratio" "$tgt"
    done
    echo
    echo "mfs/st = meshfs figure / Syncthing figure (times: below 1 is faster; MB/s: above 1 is faster)"
    echo "big file sizes: no loss $BIG_MIB MiB both; at loss meshfs ${R[meshfs.bigmib_$LOSS]:-$BIG_LOSS_MIB} MiB, syncthing ${R[syncthing.bigmib_$LOSS]:-$ST_LOSS_MIB} MiB; MB = 10^6 bytes"
    for t in meshfs syncthing; do
        for l in 0 $LOSS; do
            [[ -n ${NOTE[$t.big_$l.detail]:-} ]] && echo "$t big file at $l% loss: ${NOTE[$t.big_$l.detail]}"
        done
    done
    echo
    if ((${#ANOM[@]})); then
        echo "anomalies:"
        printf '  - %s\n' "${ANOM[@]}"
    else
        echo "anomalies: none"
    fi
} | tee "$OUT.txt"
{
    echo "metric,unit,meshfs,syncthing"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label unit _ <<<"$row"
        echo "$key,$unit,${R[meshfs.$key]:-},${R[syncthing.$key]:-}"
    done
} >"$OUT.csv"
for t in meshfs syncthing; do
    for l in 0 $LOSS; do
        [[ -f $W/log/lat-$t-$l.txt ]] && cp "$W/log/lat-$t-$l.txt" "$OUT-lat-$t-$l.txt"
    done
done
say "results: $OUT.txt $OUT.csv $OUT-lat-*.txt"
