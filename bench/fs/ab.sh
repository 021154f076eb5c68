#!/usr/bin/env bash
# ab.sh WORKLOAD OLD_MESHFS NEW_MESHFS [ROUNDS]: one of bench/fs's
# workloads on two builds, alternating OLD, NEW for ROUNDS rounds (default
# 3), since a single run of bench/fs/run.sh swings by +-30% on this kind of
# machine. Each run starts from a fresh store. WORKLOAD:
#   randwrite  3 x (10,000 files created and unlinked, kept in the trash);
#              1 GiB written; unmount, drop caches, mount, read it; then
#              20,000 random 4 KiB writes and an fsync (fsbench randwrite),
#              timed
#   seqwrite   drop caches; 1 GiB of unique data written and fsync'd
#              (fsbench seqwrite), timed
#   fsync      500 x (append 4 KiB + fsync) (fsbench fsynclat): prints
#              the median latency in us (the p99 and the total after it)
#   delete     10,000 files of 100 B created and stat'ed, then unlinked
#              (fsbench unlink), timed
#   retar      run.sh's tree of 3,000 files untarred, then tarred again
#              through cat (tar c), timed
#   cp         drop caches; cp(1) of a 1 GiB file of unique data from
#              /dev/shm (128 KiB writes) and sync(1), timed
#   dd4k       drop caches; dd bs=4k conv=fsync of 256 MiB of unique data
#              from /dev/shm (a run of small writes), timed
# PT_LL=1 also runs the workload on libfuse's passthrough_ll (built from
# libfuse3-dev's examples, as run.sh does) in each round, after NEW.
# Needs root (drop_caches) and /dev/fuse. BENCH_DIR (default /var/tmp)
# holds the stores. After dropping the caches, each timed run first
# touches WARM_MIB (default 4096; 0: not) of memory and frees it
# (fsbench warm): on a virtual machine the memory the last run freed may
# have gone back to the host, and re-faulting it made the end of a 1 GiB
# write 3x slower by a different amount each run.
set -euo pipefail
USAGE="usage: ab.sh randwrite|seqwrite|fsync|delete|retar|cp|dd4k OLD_MESHFS NEW_MESHFS [ROUNDS]"
WL=${1:?$USAGE}
OLD=${2:?$USAGE}
NEW=${3:?$USAGE}
ROUNDS=${4:-3}
case $WL in randwrite | seqwrite | fsync | delete | retar | cp | dd4k) ;; *) echo "$USAGE" >&2; exit 2 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/meshfs-rwab.XXXXXX")
MNT=$W/mnt
SHM=""
cleanup() {
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
    rm -rf "$W"
    [[ -z $SHM ]] || rm -f "$SHM"
}
trap cleanup EXIT
cc -O2 -Wall -o "$W/fsbench" "$HERE/fsbench.c"
FB=$W/fsbench
if [[ $WL == retar ]]; then # the tree of run.sh
    # shellcheck source=bench/fs/tree.sh
    . "$HERE/tree.sh"
    make_tree_tar "$W" 3000
fi

if [[ $WL == cp || $WL == dd4k ]]; then # the source, in memory
    SHM=$(mktemp /dev/shm/meshfs-ab.XXXXXX)
    if [[ $WL == cp ]]; then SRC_MIB=1024; else SRC_MIB=256; fi
    head -c $((SRC_MIB << 20)) /dev/urandom >"$SHM"
fi
PT=""
if [[ -n "${PT_LL:-}" ]]; then
    # shellcheck source=bench/fs/ptll.sh
    . "$HERE/ptll.sh"
    ptll_build "$W" || exit 1
    PT=passthrough_ll
fi

# pt_mount mount|umount ...: passthrough_ll over $W/pt-src, in the
# meshfs command's shape (mount --store STORE MNT / umount MNT)
pt_mount() {
    case $1 in
    mount) "$W/passthrough_ll" -o "source=$W/pt-src" "$4" ;;
    umount) fusermount3 -u "$2" ;;
    *) return 0 ;;
    esac
}

warm() { if ((${WARM_MIB:-4096} > 0)); then "$FB" warm "${WARM_MIB:-4096}"; fi; }

# timed CMD...: runs it, prints its time in ms
timed() {
    local t0 t1
    t0=$(date +%s%N)
    "$@"
    t1=$(date +%s%N)
    echo "$(((t1 - t0) / 1000000)) ms"
}

one() { # one MESHFS: prints the workload's figure (seconds; fsync: us; retar, cp, dd4k: ms)
    local m=$1
    rm -rf "$W/store" "$W/pt-src" && mkdir -p "$MNT"
    if [[ $m == passthrough_ll ]]; then
        mkdir "$W/pt-src"
        m=pt_mount
    else
        "$m" init --store "$W/store" >/dev/null
    fi
    case $WL in
    cp | dd4k)
        "$m" mount --store "$W/store" "$MNT" 2>/dev/null
        sync
        echo 3 >/proc/sys/vm/drop_caches
        warm
        if [[ $WL == cp ]]; then
            timed sh -c 'cp "$1" "$2" && sync' sh "$SHM" "$MNT/big"
        else
            timed dd if="$SHM" of="$MNT/big" bs=4k conv=fsync status=none
        fi
        "$m" umount "$MNT"
        return
        ;;
    fsync | delete | retar)
        "$m" mount --store "$W/store" "$MNT" 2>/dev/null
        if [[ $WL == fsync ]]; then
            "$FB" fsynclat "$MNT/lat" 500
        elif [[ $WL == delete ]]; then
            mkdir "$MNT/s"
            "$FB" create "$MNT/s" 10000 100 >/dev/null
            "$FB" stat "$MNT/s" 10000 >/dev/null
            "$FB" unlink "$MNT/s" 10000
        else
            tar -C "$MNT" -xf "$W/tree.tar"
            timed sh -c 'tar -C "$1" -cf - tree | cat >/dev/null' sh "$MNT"
        fi
        "$m" umount "$MNT"
        return
        ;;
    esac
    if [[ $WL == seqwrite ]]; then
        "$m" mount --store "$W/store" "$MNT" 2>/dev/null
        sync
        echo 3 >/proc/sys/vm/drop_caches
        warm
        "$FB" seqwrite "$MNT/big" 1024
        "$m" umount "$MNT"
        return
    fi
    "$m" mount --store "$W/store" "$MNT" 2>/dev/null
    for _ in 1 2 3; do
        mkdir "$MNT/s"
        "$FB" create "$MNT/s" 10000 100 >/dev/null
        "$FB" unlink "$MNT/s" 10000 >/dev/null
        rmdir "$MNT/s"
    done
    "$FB" seqwrite "$MNT/big" 1024 >/dev/null
    "$m" umount "$MNT"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    "$m" mount --store "$W/store" "$MNT" 2>/dev/null
    "$FB" seqread "$MNT/big" 1024 >/dev/null
    warm
    "$FB" randwrite "$MNT/big" 20000
    "$m" umount "$MNT"
}

for ((i = 1; i <= ROUNDS; i++)); do
    echo "round $i: old $(one "$OLD"), new $(one "$NEW")${PT:+, passthrough_ll $(one "$PT")}"
done
