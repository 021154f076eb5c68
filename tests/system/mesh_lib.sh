# shellcheck shell=bash
# mesh_lib.sh - helpers for the replication system tests (tests/system/mesh_*.sh):
# several real meshfs mounts of one mesh, whose daemons live in a private
# network namespace, with loss and partitions made by nftables in it.
# Sourced, never run; it sources lib.sh (lib_init, the watchdog, cleanup,
# tree_manifest, wait_until, fail, log ...).
#
# What it gives a test:
#   mesh_init NAME TIMEOUT BASEPORT
#                     lib_init + the namespace mfs-NAME-$$ (lo up) + an
#                     nftables table in it; skips (77) without root, ip
#                     netns, nft, nsenter or jq. MESH_NS_PREFIX replaces
#                     "mfs" (machines shared by several runs name theirs)
#   mesh_create a b c one store per node in one mesh: `meshfs init` for the
#                     first, `meshfs join` with the first one's invite token
#                     for the others. Node x gets ${STORE[x]}, ${MNT[x]},
#                     ${ADDR[x]} (127.0.0.2, .3, ... : BASEPORT) and ${ID[x]}
#   mesh_mount x [ARGS]  start x's daemon inside the namespace (`nsenter
#                     --net=... meshfs mount -f ...`, so the FUSE mount is
#                     visible here); its stderr goes to ${LOGF[x]}; returns
#                     when the mount answers `meshfs stat`. ARGS are added
#                     to the mount command (e.g. --peer IP:PORT)
#   mesh_umount x / mesh_kill9 x
#   mesh_partition "a b" "c"   drop every datagram between the two groups
#   mesh_heal                  remove all partitions
#   mesh_loss PCT              drop PCT% of all UDP datagrams (0 = none)
#   mesh_stat x                `meshfs stat --json` of x's mount
#   mesh_chunks x, mesh_chunks_at_most N x
#                              the chunk bytes x holds (collection tests)
#   mesh_wait_peers SECS x y ...     every listed node sees the others alive
#   mesh_wait_file SECS x PATH SHA256 PATH (relative to the mount) reads
#                     with that content on node x
#   mesh_wait_converged SECS x y ... every listed node sees the others
#                     alive, reports in_sync, and all tree manifests are
#                     equal (lib.sh tree_manifest: names, types, modes,
#                     owners, sizes, mtimes, link counts and groups, symlink
#                     targets, xattrs, sha256); on timeout prints why and the
#                     diff, and fails
#   mesh_manifest x OUT        the manifest of x's tree
#   mesh_wire_count            count from now on the bytes the nodes send
#   mesh_wire_bytes            that count: IP bytes (IP and UDP headers and
#                              payload) of every UDP datagram sent in the
#                              namespace that partitions and loss let pass
#   mesh_wire_quiet            wait until no datagram was sent for 3 s
#   mesh_wire_edit x y CMD...  the bytes on the wire for an edit on x until
#                              y's tree equals x's (chunk benchmarks)
#   file_insert FILE OFF TEXT  insert TEXT at byte OFF of FILE, in place
#   file_put FILE OFF SRC      write SRC's bytes over FILE's from byte OFF
#
# Why only an output rule for loss: all nodes share the namespace's
# loopback, so every datagram passes the output hook once and the input
# hook once. One rule at output drops PCT% of every datagram in each
# direction; a rule on both hooks would drop 1-(1-p)^2 (51% for 30%).
#
# Daemons run in the foreground (-f) as background jobs of the test so that
# their log (stderr) is kept: the daemon logs to syslog otherwise, and test
# machines often have none. They are disowned, so lib.sh's cleanup does not
# kill -9 them before their mounts are unmounted; mesh_cleanup unmounts,
# waits, kills only what is still our daemon, and deletes the namespace on
# every exit path (also after the watchdog fired).
#
# What it must never do: send traffic anywhere but the namespace it made,
# kill a process that is not one of its daemons, or leave a mount, a daemon
# or a namespace behind.

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESH_NS=""
MESH_PORT=""
MESH_NODES=()
MESH_DROPPED=0
MESH_TOKEN=""   # the invite token of the first node
MESH_INVITER="" # that node
declare -A STORE=() MNT=() ADDR=() IP=() ID=() LOGF=() NODE_PID=()

# nft_ns ARGS...: nft inside the namespace
nft_ns() { ip netns exec "$MESH_NS" nft "$@"; }

mesh_init() {
    local name=$1 timeout=$2 port=$3 t
    lib_init "mesh_$name" "$timeout"
    [[ $MFS_BACKEND == meshfs ]] || skip "mesh tests need MFS_BACKEND=meshfs"
    for t in ip nft nsenter jq getfattr setfattr; do
        command -v "$t" >/dev/null || skip "$t is not installed"
    done
    MESH_PORT=$port
    MESH_NS="${MESH_NS_PREFIX:-mfs}-$name-$$"
    ip netns add "$MESH_NS" 2>/dev/null || { MESH_NS=""; skip "cannot make a network namespace (ip netns add)"; }
    trap mesh_cleanup EXIT
    # output closed (e.g. piped into head): stop, but let the cleanup run
    trap 'trap "" PIPE; exit 1' PIPE
    # say which command failed when set -e ends the test
    set -E
    trap 'mesh_err_trap "${BASH_SOURCE[0]##*/}:$LINENO" "$BASH_COMMAND"' ERR
    ip -n "$MESH_NS" link set lo up
    # partitions first (they drop everything), then loss
    nft_ns -f - <<'NFT' || skip "nftables is not usable in a namespace"
table inet mfs {
  chain part { }
  chain loss { }
  chain out { type filter hook output priority 0; policy accept; jump part; jump loss; }
}
NFT
    log "namespace $MESH_NS, ports $MESH_PORT"
}

MESH_ERR_SEEN=""
mesh_err_trap() {
    [[ -z "$MESH_ERR_SEEN" ]] || return 0
    MESH_ERR_SEEN=1
    log "FAIL: command failed at $1: $2"
}

# mesh_log_check: every line the daemons wrote (after the test, so their
# shutdown's too) is a log line with a level ("meshfs: LEVEL: ...", or the
# "=== mount" line this library writes), and none shows a raw errno number
# instead of its text (issue 14: log lines a person can act on). 0 or 1,
# the lines said.
mesh_log_check() {
    local n f bad=""
    for n in "${MESH_NODES[@]}"; do
        f=${LOGF[$n]:-}
        [[ -s $f ]] || continue
        bad+=$(grep -vE '^(meshfs: (emerg|alert|crit|error|warning|notice|info|debug): |=== )' "$f" |
            head -3 | sed "s/^/  node $n, no level: /")$'\n'
        bad+=$(grep -E '^meshfs: ' "$f" |
            grep -E '[Ee]rrno[ =:]*-?[0-9]|[(:=] ?-[0-9]+([),]|$)|\berror -?[0-9]+\b|\b(rc|r|ret|err)[ =]-?[0-9]+\b' |
            head -3 | sed "s/^/  node $n, a raw errno number: /")$'\n'
    done
    [[ -z ${bad//$'\n'/} ]] && return 0
    log "daemon log lines a person cannot act on:"
    printf '%s' "$bad" | grep . >&2
    return 1
}

# mesh_cleanup: the EXIT trap. Unmounts gracefully (the daemon publishes and
# closes its store), then hands over to lib_cleanup with the exit status.
mesh_cleanup() {
    local rc=$? n pid i
    trap - EXIT ERR
    trap '' PIPE # a closed stdout must not stop the cleanup half-way
    set +e
    if [[ $rc -ne 0 && $rc -ne 77 ]]; then
        for n in "${MESH_NODES[@]}"; do
            [[ -n "${LOGF[$n]:-}" && -s "${LOGF[$n]}" ]] || continue
            log "--- last lines of node $n's daemon log (${ID[$n]:-?}):"
            tail -n 25 "${LOGF[$n]}" >&2
        done
        for n in "${MESH_NODES[@]}"; do
            if [[ -n "${NODE_PID[$n]:-}" ]] && pid_alive "${NODE_PID[$n]}"; then
                log "--- meshfs stat of node $n:"
                timeout 10 "$MESHFS" stat "${MNT[$n]}" 2>&1 | sed -n '/^sync/,$p' >&2
            fi
        done
    fi
    for n in "${MESH_NODES[@]}"; do
        pid=${NODE_PID[$n]:-}
        if [[ -n "${MNT[$n]:-}" ]] && is_mounted "${MNT[$n]}"; then
            timeout 30 fusermount3 -u "${MNT[$n]}" 2>/dev/null ||
                fusermount3 -uz "${MNT[$n]}" 2>/dev/null
        fi
        if [[ -n "$pid" ]]; then
            for ((i = 0; i < 100; i++)); do pid_alive "$pid" || break; sleep 0.1; done
            pid_alive "$pid" && is_our_daemon "$pid" && kill -9 "$pid" 2>/dev/null
        fi
    done
    if [[ $rc -eq 0 ]] && ! mesh_log_check; then
        rc=1
    fi
    if [[ -n "${MESH_KEEP_LOGS:-}" ]]; then
        mkdir -p "$MESH_KEEP_LOGS"
        for n in "${MESH_NODES[@]}"; do
            [[ -s "${LOGF[$n]:-}" ]] && cp "${LOGF[$n]}" "$MESH_KEEP_LOGS/${TEST_NAME}-$n.log"
        done
    fi
    [[ -z "$MESH_NS" ]] || ip netns del "$MESH_NS" 2>/dev/null ||
        log "WARNING: cannot delete namespace $MESH_NS"
    (exit "$rc")
    lib_cleanup
}

# mesh_invite: MESH_TOKEN, a new invitation of the first node.
mesh_invite() {
    MESH_TOKEN=$(mfs_cmd invite --store "${STORE[$MESH_INVITER]}" \
        "${ADDR[$MESH_INVITER]}" 2>/dev/null) ||
        fail "meshfs invite --store ${STORE[$MESH_INVITER]} failed"
}

# mesh_create NODE...: the first node makes the mesh, the others join it
# with its invitations. A later call adds nodes that join the same mesh.
mesh_create() {
    local n i out
    for n in "$@"; do
        i=$((2 + ${#MESH_NODES[@]}))
        MESH_NODES+=("$n")
        IP[$n]=127.0.0.$i
        ADDR[$n]=127.0.0.$i:$MESH_PORT
        STORE[$n]=$T/store-$n
        MNT[$n]=$T/mnt-$n
        LOGF[$n]=$T/log-$n
        mkdir -p "${MNT[$n]}"
        if [[ -z "$MESH_INVITER" ]]; then
            run_ok mfs_cmd init --store "${STORE[$n]}" >/dev/null
            MESH_INVITER=$n
            mesh_invite
        else
            run_ok mfs_cmd join --store "${STORE[$n]}" "$MESH_TOKEN" >/dev/null
            mesh_invite # an invitation is good for one join
            grep -qx "${ADDR[$MESH_INVITER]}" "${STORE[$n]}/peers" ||
                fail "join: ${STORE[$n]}/peers does not name ${ADDR[$MESH_INVITER]}: $(cat "${STORE[$n]}/peers" 2>&1)"
        fi
        out=$(mfs_cmd stat --json --store "${STORE[$n]}") || fail "meshfs stat --store ${STORE[$n]} failed"
        ID[$n]=$(jq -r .node <<<"$out")
        [[ ${ID[$n]} =~ ^[0-9a-f]{16}$ ]] || fail "node $n: bad node id '${ID[$n]}'"
        log "node $n: ${ID[$n]} at ${ADDR[$n]}"
    done
}

# mesh_mount NODE [MOUNT ARGS...]. WRAP[NODE], if set, is a command the
# daemon runs under (words: `faketime -f +10m`).
declare -A WRAP=()
mesh_mount() {
    local n=$1 pid deadline wrap=()
    shift
    mount_register "${MNT[$n]}" "${STORE[$n]}"
    printf '=== %s mount %s %s\n' "$(date +%T.%N)" "${WRAP[$n]:-}" "$*" >>"${LOGF[$n]}"
    [[ -z "${WRAP[$n]:-}" ]] || read -r -a wrap <<<"${WRAP[$n]}"
    nsenter --net="/run/netns/$MESH_NS" "${wrap[@]}" "$MESHFS" mount -f --store "${STORE[$n]}" \
        --listen "${ADDR[$n]}" "$@" "${MNT[$n]}" >>"${LOGF[$n]}" 2>&1 &
    pid=$!
    disown "$pid"
    NODE_PID[$n]=$pid
    DAEMON_PIDS+=("$pid")
    deadline=$((SECONDS + 30))
    until is_mounted "${MNT[$n]}" &&
        timeout 10 "$MESHFS" stat --json "${MNT[$n]}" 2>/dev/null | jq -e .daemon >/dev/null 2>&1; do
        pid_alive "$pid" || fail "node $n: the daemon exited during mount: $(tail -5 "${LOGF[$n]}")"
        ((SECONDS < deadline)) || fail "node $n: mount not ready after 30 s: $(tail -5 "${LOGF[$n]}")"
        sleep 0.1
    done
}

# mesh_up NODE... [-- MOUNT ARGS...]: creates the nodes, mounts each (with
# the same mount args) and waits until each sees the others alive (30 s).
mesh_up() {
    local up=() n
    while (($#)) && [[ $1 != -- ]]; do
        up+=("$1")
        shift
    done
    (($#)) && shift
    mesh_create "${up[@]}"
    for n in "${up[@]}"; do mesh_mount "$n" "$@"; done
    mesh_wait_peers 30 "${up[@]}"
}

mesh_umount() {
    local n=$1 pid=${NODE_PID[$1]}
    run_ok mfs_cmd umount "${MNT[$n]}" >/dev/null
    ! is_mounted "${MNT[$n]}" || fail "node $n: still mounted after meshfs umount"
    wait_until 30 "node $n's daemon ($pid) to exit" eval "! pid_alive $pid"
    NODE_PID[$n]=""
}

mesh_kill9() {
    local n=$1 pid=${NODE_PID[$1]}
    if [[ -z "$pid" ]] || ! pid_alive "$pid"; then fail "node $n: no daemon to kill"; fi
    kill -9 "$pid"
    wait_until 30 "killed daemon $pid of node $n to vanish" eval "! pid_alive $pid"
    NODE_PID[$n]=""
    log "node $n: daemon $pid killed with SIGKILL"
}

# mesh_partition "GROUP1" "GROUP2": no datagram passes between the groups.
mesh_partition() {
    local x y
    for x in $1; do
        for y in $2; do
            nft_ns add rule inet mfs part ip saddr "${IP[$x]}" ip daddr "${IP[$y]}" counter drop
            nft_ns add rule inet mfs part ip saddr "${IP[$y]}" ip daddr "${IP[$x]}" counter drop
        done
    done
    log "partition: {$1} | {$2}"
}

mesh_heal() {
    MESH_DROPPED=$((MESH_DROPPED + $(mesh_chain_drops part)))
    nft_ns flush chain inet mfs part
    log "partitions healed"
}

mesh_loss() {
    MESH_DROPPED=$((MESH_DROPPED + $(mesh_chain_drops loss)))
    nft_ns flush chain inet mfs loss
    if [[ $1 -gt 0 ]]; then
        nft_ns add rule inet mfs loss meta l4proto udp numgen random mod 100 lt "$1" counter drop
    fi
    log "loss: $1% of all datagrams, each direction"
}

mesh_chain_drops() {
    { nft_ns list chain inet mfs "$1" 2>/dev/null || true; } |
        awk '{ for (i = 1; i < NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

# mesh_dropped: datagrams dropped by partitions and loss so far (a check
# that the faults were real)
mesh_dropped() { echo $((MESH_DROPPED + $(mesh_chain_drops part) + $(mesh_chain_drops loss))); }

mesh_stat() { timeout 20 "$MESHFS" stat --json "${MNT[$1]}"; }
# mesh_chunks x: the chunk bytes x's store holds; mesh_chunks_at_most N x
mesh_chunks() { mesh_stat "$1" | jq -r .chunk_bytes; }
mesh_chunks_at_most() { local b; b=$(mesh_chunks "$2") && [[ $b -le $1 ]]; }

# mesh_wait SECONDS DESCRIPTION CMD...: wait_until with a calmer pace (each
# poll may start a `meshfs stat`)
mesh_wait() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.2
    done
}

# mesh_sees_alive NODE OTHER...: NODE's daemon reports every OTHER alive
mesh_sees_alive() {
    local n=$1 o js ids=""
    shift
    for o in "$@"; do ids+="\"${ID[$o]}\","; done
    js=$(mesh_stat "$n" 2>/dev/null) || return 1
    jq -e --argjson want "[${ids%,}]" \
        '[.peers[] | select(.state == "alive") | .id] as $a | all($want[]; . as $w | $a | index($w) != null)' \
        <<<"$js" >/dev/null
}

mesh_others() {
    local n=$1 o
    shift
    for o in "$@"; do [[ $o == "$n" ]] || printf '%s ' "$o"; done
}

mesh_wait_peers() {
    local secs=$1 n start=$SECONDS
    shift
    for n in "$@"; do
        # shellcheck disable=SC2046
        mesh_wait "$secs" "node $n to see $(mesh_others "$n" "$@")alive" \
            mesh_sees_alive "$n" $(mesh_others "$n" "$@")
    done
    log "peers alive: $* (after $((SECONDS - start)) s)"
}

# mesh_file_is NODE PATH SHA256: the file reads with that content
mesh_file_is() {
    local h
    h=$(sha256sum <"${MNT[$1]}/$2" 2>/dev/null) || return 1
    [[ ${h%% *} == "$3" ]]
}

sha_of() { local h; h=$(sha256sum <"$1") && echo "${h%% *}"; }
sha_str() { local h; h=$(printf '%s' "$1" | sha256sum) && echo "${h%% *}"; }

mesh_wait_file() {
    local secs=$1 n=$2 path=$3 sha=$4
    mesh_wait "$secs" "node $n to read $path with sha256 ${sha:0:12}" mesh_file_is "$n" "$path" "$sha"
}

mesh_manifest() { tree_manifest "${MNT[$1]}" >"$2"; }

# ---------------------------------------------------------------- wire bytes
# Every datagram passes the output hook once (see loss above), so a counter
# at the end of chain `out` sees each one once, both directions, after the
# partitions and loss dropped theirs. nftables counts the IP packet: payload
# + 8 bytes of UDP + 20 of IPv4 header per datagram.
mesh_wire_count() {
    nft_ns add counter inet mfs wire
    nft_ns add rule inet mfs out meta l4proto udp counter name wire
}

mesh_wire_bytes() {
    nft_ns -j list counter inet mfs wire | jq '.nftables[] | select(.counter) | .counter.bytes'
}

# mesh_wire_quiet: wait (at most 60 s) until no datagram was sent for
# MESH_QUIET_S seconds (3: a link with traffic sends heartbeats every 1.25 s
# and becomes quiet 2.5 s after its last message; a quiet one sends one
# every 12 s each way, node/mesh.c)
MESH_QUIET_S=${MESH_QUIET_S:-3}
mesh_wire_quiet() {
    local b last since deadline=$((SECONDS + 60))
    last=$(mesh_wire_bytes)
    since=$(now_ms)
    while (($(now_ms) - since < MESH_QUIET_S * 1000)); do
        ((SECONDS < deadline)) || fail "the wire is not quiet for ${MESH_QUIET_S} s within 60 s ($last bytes so far)"
        sleep 0.25
        b=$(mesh_wire_bytes)
        if [[ $b != "$last" ]]; then
            last=$b
            since=$(now_ms)
        fi
    done
}

# mesh_wire_edit X Y CMD...: the bytes sent on the wire, both directions,
# for CMD, an edit of X's tree: from CMD's start until Y's tree equals X's
# (mesh_wait_converged, 300 s) and the wire is quiet again; the mesh must
# be quiet when it is called. Less MESH_IDLE_BPS (bytes/s of an idle mesh,
# default 0) times that window, rounded; never below 0. Prints "BYTES
# SECONDS" (the window, with the quiet tail).
MESH_IDLE_BPS=${MESH_IDLE_BPS:-0}
mesh_wire_edit() {
    local x=$1 y=$2 b0 b1 t0 t1
    shift 2
    b0=$(mesh_wire_bytes)
    t0=$(now_ms)
    "$@"
    mesh_wait_converged 300 "$x" "$y"
    mesh_wire_quiet
    b1=$(mesh_wire_bytes)
    t1=$(now_ms)
    awk -v b=$((b1 - b0)) -v ms=$((t1 - t0)) -v idle="$MESH_IDLE_BPS" \
        'BEGIN { v = b - idle * ms / 1000; printf "%d %.1f\n", v < 0 ? 0 : v + 0.5, ms / 1000 }'
}

# file_put FILE OFF SRC: SRC's bytes over FILE's from byte OFF, in place
# (FILE grows if they reach past its end)
file_put() {
    dd if="$3" of="$1" bs=1M seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# file_insert FILE OFF TEXT: TEXT inserted at byte OFF of FILE, as a program
# that edits in place does it: FILE's bytes from OFF on are written again,
# one write of TEXT and the old tail, nothing before OFF is touched
file_insert() {
    local tail=$T/insert.tail
    { printf '%s' "$3"; tail -c +$(($2 + 1)) "$1"; } >"$tail"
    file_put "$1" "$2" "$tail"
    rm -f "$tail"
}

# mesh_in_sync_all NODE...: prints the first reason why not
mesh_in_sync_all() {
    local n js
    for n in "$@"; do
        # shellcheck disable=SC2046
        if ! mesh_sees_alive "$n" $(mesh_others "$n" "$@"); then
            echo "node $n does not see every other node alive"
            return 1
        fi
        js=$(mesh_stat "$n" 2>/dev/null) || { echo "node $n: stat failed"; return 1; }
        if ! jq -e '.in_sync == true' <<<"$js" >/dev/null; then
            echo "node $n: $(jq -r .sync <<<"$js")"
            return 1
        fi
    done
}

mesh_wait_converged() {
    local secs=$1 n first why="" diffs start=$SECONDS
    shift
    first=$1
    local deadline=$((SECONDS + secs))
    while :; do
        if why=$(mesh_in_sync_all "$@"); then
            mesh_manifest "$first" "$T/conv.$first"
            diffs=""
            for n in "${@:2}"; do
                mesh_manifest "$n" "$T/conv.$n"
                cmp -s "$T/conv.$first" "$T/conv.$n" || diffs+="$n "
            done
            if [[ -z "$diffs" ]]; then
                [[ -s "$T/conv.$first" ]] || fail "converged, but the tree of $first is empty: nothing was compared"
                log "converged: $* in sync, trees equal ($(wc -l <"$T/conv.$first") entries) after $((SECONDS - start)) s"
                return 0
            fi
            why="in sync, but trees differ: $first vs ${diffs% }"
        fi
        if ((SECONDS >= deadline)); then
            log "NOT converged after ${secs} s: $why"
            for n in "$@"; do
                log "--- node $n: $(timeout 10 "$MESHFS" stat "${MNT[$n]}" 2>&1 | grep -E '^sync|conflicts' | tr '\n' ' ')"
                timeout 10 "$MESHFS" stat "${MNT[$n]}" 2>&1 | sed -n '/^peers:/,$p' >&2
            done
            mesh_manifest "$first" "$T/conv.$first"
            for n in "${@:2}"; do
                mesh_manifest "$n" "$T/conv.$n"
                if ! diff -u "$T/conv.$first" "$T/conv.$n" >"$T/conv.diff"; then
                    log "diff of the manifests $first -> $n (path type mode uid gid size mtime nlink group target sha256 xattrs):"
                    head -60 "$T/conv.diff" >&2
                fi
            done
            fail "nodes $* did not converge within ${secs} s: $why"
        fi
        sleep 0.5
    done
}

# mesh_conflict_names NODE DIR STEM EXT: names in DIR (relative to the
# mount) of the form STEM.conflict-<16 hex>-<YYYYMMDD-HHMMSS>EXT, sorted
mesh_conflict_names() {
    local re="^${3//./\\.}\\.conflict-[0-9a-f]{16}-[0-9]{8}-[0-9]{6}(-[0-9]+)?${4//./\\.}\$"
    (cd "${MNT[$1]}/$2" && ls -A) | grep -E "$re" | LC_ALL=C sort || true
}

# mesh_wait_each SECS WHAT "NODES" CMD ARGS...: for every node, wait until
# CMD MOUNTPOINT ARGS... succeeds (e.g. mesh_wait_each 10 "d made" "b c"
# test_dir d)
mesh_wait_each() {
    local secs=$1 what=$2 nodes=$3 n
    shift 3
    for n in $nodes; do
        mesh_wait "$secs" "node $n: $what" "$1" "${MNT[$n]}" "${@:2}"
    done
}

now_ms() { date +%s%3N; }
