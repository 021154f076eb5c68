#!/usr/bin/env bash
# bench/fs/run.sh - the filesystem benchmark of issues 3 and 9, in one run:
# the same workloads on meshfs, on libfuse's passthrough_ll and
# passthrough_hp examples and on the native filesystem under them, printed
# as ratios to the baselines.
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
# passthrough_hp (C++) is not in libfuse3-dev: its source comes from Debian's
# fuse3 source package, fetched with `apt-get source` into the temp dir
# through a private apt config (the machine's apt setup is not touched), and
# is built there with g++. HP_SRC=DIR (holding passthrough_hp.cc and
# cxxopts.hpp) skips the fetch; NO_HP=1 skips passthrough_hp; the mirror is
# the one the machine's apt sources use for this release's main component
# (DEBIAN_MIRROR=URL overrides it). If it cannot be had, its column says n/a
# with the reason and the run goes on. WARM_MIB=0 skips the memory warm-up
# before seqwrite and randwrite (see warm below).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
QUICK=0 RSS=0 RSS_FILES=1000000
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --rss) RSS=1; if [[ ${2:-} =~ ^[0-9]+$ ]]; then RSS_FILES=$2; shift; fi ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

NFILES=10000 SMALL4K=10000 SEQ_MIB=1024 RAND_WRITES=20000 FSYNCS=500 BIGFSYNCS=200 TREE_FILES=3000 REPEAT=3
if ((QUICK)); then NFILES=2000 SMALL4K=2000 SEQ_MIB=128 RAND_WRITES=2000 FSYNCS=100 BIGFSYNCS=50 TREE_FILES=500 REPEAT=1; fi

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
# every mount point this script may use (backend_up runs in a subshell, so
# the list is fixed here, not appended to); cleanup unmounts what is mounted
MOUNTS=("$W/pt" "$W/hp" "$W/mfs")
mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
cleanup() {
    local m i
    set +e
    for m in "${MOUNTS[@]}"; do
        for i in 1 2 3; do
            mounted "$m" || break
            if [[ $m == */mfs ]]; then "$MESHFS" umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"
            else fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; fi
        done
    done
    rm -rf --one-file-system "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- tools
# shellcheck source=bench/fs/ptll.sh
. "$HERE/ptll.sh"
ptll_build "$W" || exit 1
cc -O2 -Wall -o "$W/fsbench" "$HERE/fsbench.c"
FB=$W/fsbench

# passthrough_hp: sets HP_OK=1 and HP_INFO (where it came from), or leaves
# HP_OK=0 with HP_INFO saying why not. Everything lands under $W/hp-build.
HP_OK=0 HP_INFO=""
build_hp() {
    local b=$W/hp-build src="" log=$W/hp-build/log codename ver mirror apt
    mkdir -p "$b"
    if [[ -n "${NO_HP:-}" ]]; then HP_INFO="skipped (NO_HP set)"; return; fi
    command -v g++ >/dev/null || { HP_INFO="no g++ (apt-get install g++)"; return; }
    if [[ -n "${HP_SRC:-}" ]]; then
        [[ -f $HP_SRC/passthrough_hp.cc && -f $HP_SRC/cxxopts.hpp ]] ||
            { HP_INFO="HP_SRC=$HP_SRC lacks passthrough_hp.cc or cxxopts.hpp"; return; }
        src=$HP_SRC
        HP_INFO="HP_SRC=$HP_SRC"
    else
        if ! command -v apt-get >/dev/null || ! command -v dpkg-source >/dev/null; then
            HP_INFO="no apt-get/dpkg-source to fetch the fuse3 source package (apt-get install dpkg-dev)"
            return
        fi
        # shellcheck disable=SC1091
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        [[ -n $codename ]] || { HP_INFO="no VERSION_CODENAME in /etc/os-release"; return; }
        ver=$(dpkg-query -W -f='${Version}' libfuse3-dev 2>/dev/null || true)
        # the mirror apt already installs this release's packages from
        # shellcheck disable=SC2016
        mirror=${DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null |
            awk -v c="$codename" '$2 == c && $3 == "main" { sub("/$", "", $1); print $1; exit }')}
        [[ -n $mirror ]] || { HP_INFO="no $codename main entry in the machine's apt sources (set DEBIAN_MIRROR=URL)"; return; }
        # a private apt config: a deb-src entry, lists and cache in $b only
        mkdir -p "$b/lists/partial" "$b/cache/archives/partial"
        echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $codename main" >"$b/sources.list"
        apt=(apt-get -q -o "Dir::Etc::SourceList=$b/sources.list" -o Dir::Etc::SourceParts=/nonexistent
            -o "Dir::State::Lists=$b/lists" -o "Dir::Cache=$b/cache" -o Debug::NoLocking=1
            -o "APT::Sandbox::User=$(id -un)")
        say "passthrough_hp: apt-get source fuse3${ver:+=$ver} from $mirror $codename"
        # (apt-get update exits 0 when a fetch fails: look for the index)
        if ! timeout 180 "${apt[@]}" update >"$log" 2>&1 ||
            ! compgen -G "$b/lists/*_Sources*" >/dev/null; then
            HP_INFO="apt-get update got no deb-src index from $mirror $codename: $(grep -m1 -E '^(E|W):' "$log" || tail -n1 "$log")"
            return
        fi
        # the version that matches the installed headers, else whatever the suite has
        if ! (cd "$b" && { { [[ -n $ver ]] && timeout 180 "${apt[@]}" source "fuse3=$ver"; } ||
            timeout 180 "${apt[@]}" source fuse3; }) >>"$log" 2>&1; then
            HP_INFO="apt-get source fuse3 failed: $(grep -m1 -E '^E:' "$log" || tail -n1 "$log")"
            return
        fi
        src=$(find "$b" -maxdepth 3 -path '*/example/passthrough_hp.cc' -printf '%h\n' | head -n1)
        [[ -n $src && -f $src/cxxopts.hpp ]] || { HP_INFO="fuse3 source package has no example/passthrough_hp.cc"; return; }
        HP_INFO="Debian source package $(basename "$(ls -d "$b"/fuse3_*.dsc)" .dsc) (example/passthrough_hp.cc)"
    fi
    # The HAVE_* macros come from libfuse's own configure step (fuse_config.h),
    # which a lone g++ lacks: without HAVE_UTIMENSAT, utimensat() on a file
    # without an open handle fails with EOPNOTSUPP (tar x cannot set times),
    # and without the other two fallocate and xattrs do. glibc has all three.
    # shellcheck disable=SC2046
    if ! g++ -O2 -std=c++17 -DHAVE_UTIMENSAT -DHAVE_POSIX_FALLOCATE -DHAVE_SETXATTR \
        -o "$W/passthrough_hp" "$src/passthrough_hp.cc" \
        $(pkg-config --cflags --libs fuse3) -lpthread >>"$log" 2>&1; then
        HP_INFO="g++ of passthrough_hp.cc failed: $(grep -m1 'error' "$log" || tail -n1 "$log")"
        return
    fi
    HP_OK=1
}
build_hp
if ((HP_OK)); then say "passthrough_hp: built from $HP_INFO"; else say "passthrough_hp: n/a: $HP_INFO"; fi

drop() { if ((CAN_DROP)); then sync; echo 3 >/proc/sys/vm/drop_caches; fi; }
# Before seqwrite and randwrite every backend first touches WARM_MIB
# (default 4096; 0: not) of fresh memory and frees it (fsbench warm): on
# a virtual machine the memory a run freed may have gone back to the
# host, and re-faulting it while the page cache fills made the end of a
# 1 GiB write up to 3x slower by a different amount each run (ab.sh).
warm() { if ((${WARM_MIB:-4096} > 0)); then "$FB" warm "${WARM_MIB:-4096}"; fi; }

# ---------------------------------------------------------------- backends
# backend_up NAME: mount (if needed) and print the directory to work in
backend_up() {
    case "$1" in
    native) mkdir -p "$W/native"; echo "$W/native" ;;
    passthrough)
        mkdir -p "$W/pt-src" "$W/pt"
        "$W/passthrough_ll" -o "source=$W/pt-src" "$W/pt"
        echo "$W/pt" ;;
    passthrough_hp)
        # its defaults: SOURCE MOUNTPOINT, nothing else. It daemonizes before
        # it mounts, so wait for the mount to show up.
        mkdir -p "$W/hp-src" "$W/hp"
        "$W/passthrough_hp" "$W/hp-src" "$W/hp"
        local i
        for ((i = 0; i < 200; i++)); do
            mounted "$W/hp" && break
            sleep 0.05
        done
        mounted "$W/hp" || { echo "run.sh: passthrough_hp did not mount $W/hp" >&2; return 1; }
        echo "$W/hp" ;;
    meshfs)
        mkdir -p "$W/mfs"
        [[ -e "$W/store/data.mdb" ]] || "$MESHFS" init --store "$W/store" >/dev/null
        "$MESHFS" mount --store "$W/store" "$W/mfs"
        echo "$W/mfs" ;;
    esac
}
backend_down() {
    case "$1" in
    native) ;;
    passthrough) fusermount3 -u "$W/pt" ;;
    passthrough_hp) fusermount3 -u "$W/hp" ;;
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
# shellcheck source=bench/fs/tree.sh
. "$HERE/tree.sh"
make_tree_tar "$W" "$TREE_FILES"

declare -A R # R[backend.workload] = seconds (or µs for fsync latency)
median() { printf '%s\n' "$@" | LC_ALL=C sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# timeit CMD...: wall time of CMD; a failing CMD fails the run (its time would lie)
timeit() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null || { echo "run.sh: failed: $*" >&2; return 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}

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
        mkdir "$d/s4k"
        T[small4k]+=" $("$FB" small4k "$d/s4k" "$SMALL4K")"
        "$FB" unlink "$d/s4k" "$SMALL4K" >/dev/null
        rmdir "$d/s4k"
        mkdir "$d/untar"
        T[untar]+=" $(timeit tar -C "$d/untar" -xf "$W/tree.tar")"
        T[retar]+=" $(timeit bash -c "set -o pipefail; tar -C '$d/untar' -cf - tree | cat >/dev/null")"
        rm -rf "$d/untar"
    done
    # shellcheck disable=SC2086
    for k in create stat list delete small4k untar retar; do R[$b.$k]=$(median ${T[$k]}); done
    mkdir "$d/untar" # (removed again below with the rest)
    drop
    warm
    R[$b.seqwrite]=$("$FB" seqwrite "$d/big" "$SEQ_MIB")
    # cold read: caches dropped and, for FUSE, a fresh mount
    backend_down "$b"
    drop
    d=$(backend_up "$b")
    R[$b.coldread]=$("$FB" seqread "$d/big" "$SEQ_MIB")
    R[$b.warmread]=$("$FB" seqread "$d/big" "$SEQ_MIB")
    warm
    R[$b.randwrite]=$("$FB" randwrite "$d/big" "$RAND_WRITES")
    read -r bmed bp99 _ < <("$FB" bigfsync "$d/big" "$BIGFSYNCS")
    R[$b.bigfsync_med]=$bmed
    R[$b.bigfsync_p99]=$bp99
    read -r med p99 _ < <("$FB" fsynclat "$d/lat" "$FSYNCS")
    R[$b.fsync_med]=$med
    R[$b.fsync_p99]=$p99
    rm -rf "$d/untar" "$d/big" "$d/lat"
    backend_down "$b"
    say "   $(for k in create stat list delete small4k untar retar seqwrite coldread warmread randwrite; do printf '%s=%.3fs ' $k "${R[$b.$k]}"; done)fsync=${med}us/p99 ${p99}us bigfsync=${bmed}us/p99 ${bp99}us"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
BACKENDS=(native passthrough)
((HP_OK)) && BACKENDS+=(passthrough_hp)
BACKENDS+=(meshfs)
for b in "${BACKENDS[@]}"; do run_backend "$b"; done

# ---------------------------------------------------------------- report
STAMP=$(date -u +%Y%m%d-%H%M)
((QUICK)) && STAMP+=-quick
OUT=$HERE/results/$STAMP
WL=(create stat list delete small4k untar retar seqwrite coldread warmread randwrite fsync_med fsync_p99 bigfsync_med bigfsync_p99)
# Targets of issue 9, as ratios (baseline time / meshfs time) to one
# baseline: passthrough_ll unless TARGET_BASE says native. None against
# passthrough_hp: its column is for reference.
declare -A TARGET_BASE=([warmread]=native)
declare -A TARGET=([create]=1.0 [stat]=1.0 [list]=1.0 [delete]=1.0 [small4k]=0.667
    [untar]=1.0 [retar]=1.0 [seqwrite]=1.0 [coldread]=0.8 [warmread]=0.9
    [randwrite]=1.0 [fsync_med]=1.0 [fsync_p99]=1.0)
# ratio WORKLOAD BACKEND: R[BACKEND] / R[meshfs], or n/a without a figure
ratio() {
    awk -v a="${R[$2.$1]:-}" -v b="${R[meshfs.$1]}" \
        'BEGIN { if (a == "" || b <= 0) print "n/a"; else printf "%.4f\n", a / b }'
}
fig() { [[ -n "${R[$1]:-}" ]] && printf '%9.3f%-2s' "${R[$1]}" "$2" || printf '%11s' n/a; }
rfmt() { [[ $1 == n/a ]] && printf '%7s' n/a || printf '%7.2f' "$1"; }
MET=() MISSED=()
{
    echo "meshfs filesystem benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command: bench/fs/run.sh$( ((QUICK)) && echo ' --quick')   meshfs: $("$MESHFS" --version)"
    echo "host: $(uname -r), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), fs under $W: $(findmnt -no FSTYPE -T "$W" 2>/dev/null || stat -f -c %T "$W")"
    echo "tree: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown); load average at start: $LOAD0, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "sizes: $NFILES small files of 100 B; $SMALL4K files of 4 KiB; tree of $TREE_FILES files; $SEQ_MIB MiB sequential; $RAND_WRITES random 4 KiB writes; $FSYNCS fsyncs; $BIGFSYNCS 4 KiB write+fsync in the $SEQ_MIB MiB file"
    echo "create/stat/list/delete/small4k/untar/retar: median of $REPEAT runs; the others: one run"
    echo "pt_ll: passthrough_ll, defaults; pt_hp: passthrough_hp, defaults: $( ((HP_OK)) && echo "built from $HP_INFO" || echo "n/a: $HP_INFO")"
    ((CAN_DROP)) || echo "WARNING: not root: caches were not dropped, cold reads are warm"
    echo
    printf '%-12s %11s %11s %11s %11s  %7s %7s %7s   %s\n' workload native pt_ll pt_hp meshfs "vs ll" "vs hp" "vs nat" "target (issue 9)"
    for k in "${WL[@]}"; do
        unit=s; [[ $k == *fsync_* ]] && unit=us
        rp=$(ratio "$k" passthrough) rh=$(ratio "$k" passthrough_hp) rn=$(ratio "$k" native)
        tgt=""
        if [[ -n "${TARGET[$k]:-}" ]]; then
            base=${TARGET_BASE[$k]:-passthrough}
            r=$([[ $base == native ]] && echo "$rn" || echo "$rp")
            if awk -v r="$r" -v t="${TARGET[$k]}" 'BEGIN { exit !(r >= t) }'; then v=met; MET+=("$k"); else v=MISSED; MISSED+=("$k $r"); fi
            tgt=">= ${TARGET[$k]} of $([[ $base == native ]] && echo native || echo passthrough_ll): $v"
        fi
        printf '%-12s %s %s %s %s  %s %s %s   %s\n' "$k" "$(fig "native.$k" $unit)" "$(fig "passthrough.$k" $unit)" \
            "$(fig "passthrough_hp.$k" $unit)" "$(fig "meshfs.$k" $unit)" "$(rfmt "$rp")" "$(rfmt "$rh")" "$(rfmt "$rn")" "$tgt"
    done
    echo
    echo "ratios = baseline time / meshfs time (above 1: meshfs is faster); no target against pt_hp"
    echo "targets met: ${#MET[@]} of $((${#MET[@]} + ${#MISSED[@]}))$( ((${#MISSED[@]})) && printf '; MISSED: %s' "$(printf '%s, ' "${MISSED[@]}" | sed 's/, $//')")"
} | tee "$OUT.txt"
{
    # columns 1-6 as before issue 9 (chart.gp reads 5 and 6); pt_hp at the end
    echo "workload,native,passthrough,meshfs,ratio_vs_passthrough,ratio_vs_native,passthrough_hp,ratio_vs_passthrough_hp"
    for k in "${WL[@]}"; do
        rh=$(ratio "$k" passthrough_hp); [[ $rh == n/a ]] && rh=""
        echo "$k,${R[native.$k]},${R[passthrough.$k]},${R[meshfs.$k]},$(ratio "$k" passthrough),$(ratio "$k" native),${R[passthrough_hp.$k]:-},$rh"
    done
} >"$OUT.csv"
if command -v gnuplot >/dev/null; then
    gnuplot -e "csv='$OUT.csv'; out='$OUT.png'; title='meshfs vs baselines, $(date -u '+%Y-%m-%d %H:%M UTC') (bench/fs/run.sh)'; hp=$HP_OK" "$HERE/chart.gp" &&
        say "chart: $OUT.png"
fi
say "results: $OUT.txt $OUT.csv"
