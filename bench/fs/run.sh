#!/usr/bin/env bash
# bench/fs/run.sh - the filesystem benchmark of issue 3, in one run:
# the same workloads on meshfs, on libfuse's passthrough_ll example and on
# the native filesystem under both, printed as ratios to the baselines.
#
#   bench/fs/run.sh                    full run (needs root: drop_caches)
#   bench/fs/run.sh --quick            smaller sizes, for trying it out
#   bench/fs/run.sh --rss [N]          only the daemon-heap figure: RssAnon of
#                                      a freshly mounted daemon over a store
#                                      holding N files (default 1,000,000)
#   MESHFS=/path/to/meshfs bench/fs/run.sh
#
# Results go to bench/fs/results/<UTC date>-<what>.{txt,csv,png}; copy the
# table into docs/BENCH-fs.md with the date and the command.
# Ratios are "speed relative to the baseline" (baseline time / meshfs time):
# 1.00 is as fast, above 1 faster. passthrough_ll is built from
# /usr/share/doc/libfuse3-dev/examples at bench time (never committed).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
QUICK=0 RSS=0 RSS_FILES=1000000
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --rss) RSS=1; if [[ ${2:-} =~ ^[0-9]+$ ]]; then RSS_FILES=$2; shift; fi ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

NFILES=10000 SEQ_MIB=1024 RAND_WRITES=20000 FSYNCS=500 TREE_FILES=3000 REPEAT=3
if ((QUICK)); then NFILES=2000 SEQ_MIB=128 RAND_WRITES=2000 FSYNCS=100 TREE_FILES=500 REPEAT=1; fi

if [[ -z "${MESHFS:-}" ]]; then
    for c in "$REPO/build/cli/meshfs" "$REPO/../build-tests/cli/meshfs" "$(command -v meshfs || true)"; do
        [[ -n "$c" && -x "$c" ]] && { MESHFS=$c; break; }
    done
fi
[[ -n "${MESHFS:-}" && -x "$MESHFS" ]] || { echo "run.sh: no meshfs binary; set MESHFS=" >&2; exit 1; }
[[ -c /dev/fuse ]] || { echo "run.sh: /dev/fuse is missing" >&2; exit 1; }
CAN_DROP=0
[[ $EUID -eq 0 && -w /proc/sys/vm/drop_caches ]] && CAN_DROP=1

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/meshfs-bench.XXXXXX")
MOUNTS=()
cleanup() {
    local m i
    set +e
    for m in "${MOUNTS[@]}"; do
        for i in 1 2 3; do
            awk -v m="$m" '$2 == m { f = 1 } END { exit !f }' /proc/mounts || break
            if [[ $m == */mfs ]]; then "$MESHFS" umount "$m" 2>/dev/null || fusermount3 -uz "$m"
            else fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; fi
        done
    done
    rm -rf --one-file-system "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- tools
EX=/usr/share/doc/libfuse3-dev/examples
mkdir "$W/build"
for f in passthrough_ll.c passthrough_helpers.h; do
    if [[ -f $EX/$f ]]; then cp "$EX/$f" "$W/build/"
    elif [[ -f $EX/$f.gz ]]; then gzip -dc "$EX/$f.gz" >"$W/build/$f"
    else echo "run.sh: $EX/$f missing (install libfuse3-dev)" >&2; exit 1; fi
done
# shellcheck disable=SC2046
cc -O2 -o "$W/passthrough_ll" "$W/build/passthrough_ll.c" $(pkg-config --cflags --libs fuse3)
cc -O2 -Wall -o "$W/fsbench" "$HERE/fsbench.c"
FB=$W/fsbench

drop() { if ((CAN_DROP)); then sync; echo 3 >/proc/sys/vm/drop_caches; fi; }

# ---------------------------------------------------------------- backends
# backend_up NAME: mount (if needed) and print the directory to work in
backend_up() {
    case "$1" in
    native) mkdir -p "$W/native"; echo "$W/native" ;;
    passthrough)
        mkdir -p "$W/pt-src" "$W/pt"
        "$W/passthrough_ll" -o "source=$W/pt-src" "$W/pt"
        MOUNTS+=("$W/pt"); echo "$W/pt" ;;
    meshfs)
        mkdir -p "$W/mfs"
        [[ -e "$W/store/data.mdb" ]] || "$MESHFS" init --store "$W/store" >/dev/null
        "$MESHFS" mount --store "$W/store" "$W/mfs"
        MOUNTS+=("$W/mfs"); echo "$W/mfs" ;;
    esac
}
backend_down() {
    case "$1" in
    native) ;;
    passthrough) fusermount3 -u "$W/pt" ;;
    meshfs) "$MESHFS" umount "$W/mfs" ;;
    esac
}

# daemon_pid MNT: the process serving MNT (argv holds it, /dev/fuse is open)
daemon_pid() {
    local p fd
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [[ " $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") " == *" $1 "* ]] || continue
        for fd in "/proc/$p/fd/"*; do
            [[ $(readlink "$fd" 2>/dev/null) == /dev/fuse ]] && { echo "$p"; return; }
        done
    done
}
rss_anon_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- rss mode
if ((RSS)); then
    STAMP=$(date -u +%Y%m%d-%H%M)
    say "RssAnon with $RSS_FILES files in the store"
    d=$(backend_up meshfs)
    mkdir "$d/files"
    t=$("$FB" mkfiles "$d/files" "$RSS_FILES" 10000)
    pid=$(daemon_pid "$W/mfs")
    after_create=$(rss_anon_kib "$pid")
    backend_down meshfs
    d=$(backend_up meshfs)
    pid=$(daemon_pid "$W/mfs")
    fresh=$(rss_anon_kib "$pid")
    n=$(find "$d/files" -type f | wc -l)
    [[ $n -eq $RSS_FILES ]] || { echo "run.sh: $n files found, want $RSS_FILES" >&2; exit 1; }
    after_walk=$(rss_anon_kib "$pid")
    store_mib=$(($(du -sk "$W/store" | cut -f1) / 1024))
    backend_down meshfs
    {
        echo "meshfs daemon heap (RssAnon), $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) cores"
        echo "command: bench/fs/run.sh --rss $RSS_FILES"
        printf 'files in the store          %d (created in %.1f s)\n' "$RSS_FILES" "$t"
        printf 'store size                  %d MiB\n' "$store_mib"
        printf 'RssAnon after creating      %d KiB\n' "$after_create"
        printf 'RssAnon fresh mount         %d KiB\n' "$fresh"
        printf 'RssAnon after find of all   %d KiB   target <= 65536 KiB: %s\n' "$after_walk" \
            "$( ((after_walk <= 65536)) && echo met || echo MISSED)"
    } | tee "$HERE/results/$STAMP-rss.txt"
    exit 0
fi

# ---------------------------------------------------------------- workloads
# A deterministic source tree of TREE_FILES files: text files of varying
# size in nested directories (a tarball made once, on the native fs).
make_tree_tar() {
    local t=$W/tree i d
    mkdir -p "$t"
    for ((i = 0; i < TREE_FILES; i++)); do
        d="$t/mod$((i % 37))/sub$((i % 7))"
        [[ -d $d ]] || mkdir -p "$d"
        head -c $((200 + (i * 7919) % 24000)) "$W/fsbench.c.rep" >"$d/file$i.c"
    done
    tar -C "$W" -cf "$W/tree.tar" tree
    rm -rf "$t"
}
for i in $(seq 1 20); do cat "$HERE/fsbench.c"; done >"$W/fsbench.c.rep"
make_tree_tar

declare -A R # R[backend.workload] = seconds (or µs for fsync latency)
median() { printf '%s\n' "$@" | LC_ALL=C sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
timeit() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'; }

run_backend() {
    local b=$1 d
    say "== $b"
    drop
    d=$(backend_up "$b")
    # the short metadata workloads run REPEAT times; the median counts
    local r k
    declare -A T=()
    for ((r = 0; r < REPEAT; r++)); do
        mkdir "$d/small"
        T[create]+=" $("$FB" create "$d/small" "$NFILES" 100)"
        T[stat]+=" $("$FB" stat "$d/small" "$NFILES")"
        T[list]+=" $("$FB" list "$d/small" 10 "$NFILES")"
        T[delete]+=" $("$FB" unlink "$d/small" "$NFILES")"
        rmdir "$d/small"
        mkdir "$d/untar"
        T[untar]+=" $(timeit tar -C "$d/untar" -xf "$W/tree.tar")"
        T[retar]+=" $(timeit sh -c "tar -C '$d/untar' -cf - tree | cat >/dev/null")"
        rm -rf "$d/untar"
    done
    for k in create stat list delete untar retar; do R[$b.$k]=$(median ${T[$k]}); done
    mkdir "$d/untar" # (removed again below with the rest)
    R[$b.seqwrite]=$("$FB" seqwrite "$d/big" "$SEQ_MIB")
    # cold read: caches dropped and, for FUSE, a fresh mount
    backend_down "$b"
    drop
    d=$(backend_up "$b")
    R[$b.coldread]=$("$FB" seqread "$d/big" "$SEQ_MIB")
    R[$b.warmread]=$("$FB" seqread "$d/big" "$SEQ_MIB")
    R[$b.randwrite]=$("$FB" randwrite "$d/big" "$RAND_WRITES")
    read -r med p99 _ < <("$FB" fsynclat "$d/lat" "$FSYNCS")
    R[$b.fsync_med]=$med
    R[$b.fsync_p99]=$p99
    rm -rf "$d/untar" "$d/big" "$d/lat"
    backend_down "$b"
    say "   $(for k in create stat list delete untar retar seqwrite coldread warmread randwrite; do printf '%s=%.3fs ' $k "${R[$b.$k]}"; done)fsync=${med}us/p99 ${p99}us"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for b in native passthrough meshfs; do run_backend "$b"; done

# ---------------------------------------------------------------- report
STAMP=$(date -u +%Y%m%d-%H%M)
OUT=$HERE/results/$STAMP
WL=(create stat list delete untar retar seqwrite coldread warmread randwrite fsync_med fsync_p99)
declare -A TARGET_BASE=([seqwrite]=passthrough [coldread]=passthrough [warmread]=native)
declare -A TARGET=([create]=1.0 [stat]=1.0 [list]=1.0 [delete]=1.0 [untar]=1.0 [retar]=1.0
    [seqwrite]=0.7 [coldread]=0.8 [warmread]=0.8)
ratio() { awk -v a="${R[$2.$1]}" -v b="${R[meshfs.$1]}" 'BEGIN { printf "%.4f\n", (b > 0 ? a / b : 0) }'; }
{
    echo "meshfs filesystem benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command: bench/fs/run.sh$( ((QUICK)) && echo ' --quick')   meshfs: $("$MESHFS" --version)"
    echo "host: $(uname -r), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), fs under $W: $(findmnt -no FSTYPE -T "$W" 2>/dev/null || stat -f -c %T "$W")"
    echo "tree: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown); load average at start: $LOAD0, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "sizes: $NFILES small files of 100 B; tree of $TREE_FILES files; $SEQ_MIB MiB sequential; $RAND_WRITES random 4 KiB writes; $FSYNCS fsyncs"
    echo "create/stat/list/delete/untar/retar: median of $REPEAT runs; the others: one run"
    ((CAN_DROP)) || echo "WARNING: not root: caches were not dropped, cold reads are warm"
    echo
    printf '%-11s %11s %11s %11s   %9s %9s   %s\n' workload native passthru meshfs "vs pt" "vs native" "target"
    for k in "${WL[@]}"; do
        unit=s; [[ $k == fsync_* ]] && unit=us
        rp=$(ratio "$k" passthrough) rn=$(ratio "$k" native)
        tgt=""
        if [[ -n "${TARGET[$k]:-}" ]]; then
            base=${TARGET_BASE[$k]:-passthrough}
            r=$([[ $base == native ]] && echo "$rn" || echo "$rp")
            met=$(awk -v r="$r" -v t="${TARGET[$k]}" 'BEGIN { print (r >= t) ? 1 : 0 }')
            tgt=">= ${TARGET[$k]} of $base: $([[ $met == 1 ]] && echo met || echo MISSED)"
        fi
        printf '%-11s %10.3f%-2s %9.3f%-2s %9.3f%-2s   %9.2f %9.2f   %s\n' "$k" \
            "${R[native.$k]}" "$unit" "${R[passthrough.$k]}" "$unit" "${R[meshfs.$k]}" "$unit" "$rp" "$rn" "$tgt"
    done
    echo
    echo "ratios = baseline time / meshfs time (above 1: meshfs is faster)"
} | tee "$OUT.txt"
{
    echo "workload,native,passthrough,meshfs,ratio_vs_passthrough,ratio_vs_native"
    for k in "${WL[@]}"; do
        echo "$k,${R[native.$k]},${R[passthrough.$k]},${R[meshfs.$k]},$(ratio "$k" passthrough),$(ratio "$k" native)"
    done
} >"$OUT.csv"
if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$OUT.csv'; out='$OUT.png'; title='meshfs vs baselines, $(date -u '+%Y-%m-%d %H:%M UTC') (bench/fs/run.sh)'" "$HERE/chart.gp" &&
        say "chart: $OUT.png"
fi
say "results: $OUT.txt $OUT.csv"
