# sync_lib.sh - what the transport's system tests (sync_net.sh,
# sync_flood.sh) share: a private network namespace and a temp dir, both
# removed on every exit path with the daemons the test started (it adds
# their pids to PIDS). Source it, then call sync_setup NAME.
# shellcheck shell=bash

sync_cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$DIR"
}

# sync_setup NAME: sets NS and DIR, PIDS=(); exits 77 (skip) without root
# or network namespaces; brings the namespace's loopback up.
sync_setup() {
    NS=mfs-$1-$$
    DIR=$(mktemp -d "/tmp/mfs-$1.XXXXXX")
    PIDS=()
    trap sync_cleanup EXIT INT TERM
    if [ "$(id -u)" != 0 ] || ! ip netns add "$NS" 2>/dev/null; then
        echo "SKIP: needs root and 'ip netns' to make a network namespace"
        exit 77
    fi
    ip -n "$NS" link set lo up
}
