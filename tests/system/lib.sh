# shellcheck shell=bash
# lib.sh - shared helpers for meshfs system tests (sourced, never run).
#
# What it gives a test:
#   lib_init NAME TIMEOUT   temp dir $T, cleanup trap, watchdog, skip (77)
#                           when /dev/fuse is missing, $MESHFS resolved
#   mfs_init / mfs_mount / mfs_umount / mfs_kill9 / mfs_daemon_pid
#                           one store and mount point per call; every mount
#                           is unmounted and every daemon killed on exit
#   tree_manifest / tree_compare
#                           names, types, modes, owners, sizes, mtimes,
#                           link counts and hard-link groups, symlink targets,
#                           xattrs and content hashes of a tree, as text
#   wait_until, check_eq, expect_fail, fail, log
#   small_ext4 DIR SIZE     a small ext4 on a loop device (a full disk)
#   helper_build            compiles $T/fshelper (mmap, fsync'd writer and
#                           its verifier, fast file creation, reads while
#                           writes are queued, a fake systemd notify
#                           socket)
#
# What it must never do: touch anything outside $T and the mounts it made,
# kill a process it did not start or find by its own mount point/store, or
# leave a mount behind.
#
# Backends (MFS_BACKEND, so a test can be tried before meshfs mounts):
#   meshfs (default)  the meshfs binary ($MESHFS)
#   passthrough       libfuse's passthrough_ll example over $STORE/data
#                     (built into $T from /usr/share/doc/libfuse3-dev)
#   dir               a bind mount of $STORE/data (no daemon)
#
# Paths handed to these helpers must be absolute and hold no blanks, tabs or
# newlines (tests make them under $T).

set -euo pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LIB_DIR/../.." && pwd)
MFS_BACKEND=${MFS_BACKEND:-meshfs}

T=""
TEST_NAME=""
MOUNTS=()          # mount points this test made (absolute)
MOUNT_STORES=()    # the store of each, same index
DAEMON_PIDS=()     # daemons seen, killed -9 on exit if still alive
WATCHDOG_PID=""
MFS_PID="" # for the tests: the daemon of the last mfs_mount

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "${TEST_NAME:-test}" "$*" >&2; }

fail() {
    printf '[%s %s] FAIL: %s\n' "$(date +%H:%M:%S)" "${TEST_NAME:-test}" "$*" >&2
    exit 1
}

skip() {
    printf '[%s %s] SKIP: %s\n' "$(date +%H:%M:%S)" "${TEST_NAME:-test}" "$*" >&2
    exit 77
}

# check_eq WHAT EXPECTED ACTUAL
check_eq() {
    if [[ "$2" != "$3" ]]; then
        fail "$1: expected '$2', got '$3'"
    fi
}

# expect_fail ERRNO_TEXT CMD...: CMD must fail and its stderr must contain
# ERRNO_TEXT (e.g. "Permission denied"); empty ERRNO_TEXT = any failure.
expect_fail() {
    local want=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if [[ $rc -eq 0 ]]; then
        fail "expected failure ($want) but succeeded: $*"
    fi
    if [[ -n "$want" && "$out" != *"$want"* ]]; then
        fail "expected '$want' from: $* -- got rc=$rc: $out"
    fi
}

# run_ok CMD...: run, and on failure report the command, rc and output.
run_ok() {
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]]; then
        fail "command failed (rc=$rc): $* -- $out"
    fi
    [[ -z "$out" ]] || printf '%s\n' "$out"
}

# cli_home: HOME and XDG_DATA_HOME inside $T and no MESHFS_STORE, so that a
# command without --store never reaches the user's default store.
cli_home() {
    export HOME=$T/home XDG_DATA_HOME=$T/xdg
    unset MESHFS_STORE
    mkdir -p "$HOME"
}

# run_cli ARGS...: meshfs with a deadline; sets RC, OUT, ERR.
run_cli() {
    local rc=0
    timeout -k 5 60 "$MESHFS" "$@" >"$T/out" 2>"$T/err" || rc=$?
    RC=$rc
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

# expect_err CODE TOKEN ARGS...: meshfs ARGS exits CODE (else fail) with
# one stderr line "meshfs: ..." whose end is ": TOKEN" when TOKEN is given;
# those two are reported through $CLI_PROBLEM (default fail: a test may
# record them and go on).
expect_err() {
    local code=$1 token=$2 lines report=${CLI_PROBLEM:-fail}
    shift 2
    run_cli "$@"
    [[ $RC -eq $code ]] || fail "meshfs $*: exit $RC, want $code (stderr: $ERR)"
    lines=$(printf '%s' "$ERR" | grep -c '' || true)
    [[ $lines -eq 1 ]] || $report "meshfs $*: want one line on stderr, got $lines: $(printf '%s' "$ERR" | tr '\n' '|')"
    [[ $ERR == "meshfs: "* ]] || $report "meshfs $*: stderr does not start with 'meshfs: ': $ERR"
    if [[ -n "$token" && $(printf '%s' "$ERR" | head -1) != *": $token" ]]; then
        $report "meshfs $*: the first stderr line should end with ': $token': $ERR"
    fi
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD until it succeeds.
wait_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            [[ -n "${WAIT_DUMP:-}" ]] && $WAIT_DUMP >&2
            fail "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.05
    done
}

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

# ---------------------------------------------------------------- binary

find_meshfs() {
    local c
    if [[ -n "${MESHFS:-}" ]]; then
        [[ -x "$MESHFS" ]] || fail "MESHFS=$MESHFS is not an executable"
        MESHFS=$(readlink -f "$MESHFS")
        return
    fi
    for c in "$REPO_DIR/build/cli/meshfs" "$REPO_DIR/../build-tests/cli/meshfs" \
        "$(command -v meshfs 2>/dev/null || true)"; do
        if [[ -n "$c" && -x "$c" ]]; then
            MESHFS=$(readlink -f "$c")
            return
        fi
    done
    fail "no meshfs binary: set MESHFS=/path/to/meshfs (or build into build/)"
}

find_passthrough() {
    local ex=/usr/share/doc/libfuse3-dev/examples f
    PTLL="$T/passthrough_ll"
    [[ -x "$PTLL" ]] && return
    mkdir -p "$T/ptll"
    for f in passthrough_ll.c passthrough_helpers.h; do
        if [[ -f "$ex/$f" ]]; then
            cp "$ex/$f" "$T/ptll/"
        elif [[ -f "$ex/$f.gz" ]]; then
            gzip -dc "$ex/$f.gz" >"$T/ptll/$f"
        else
            skip "MFS_BACKEND=passthrough needs $ex/$f (libfuse3-dev)"
        fi
    done
    # shellcheck disable=SC2046
    ${CC:-cc} -O2 -o "$PTLL" "$T/ptll/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) ||
        fail "cannot build passthrough_ll"
}

# ---------------------------------------------------------------- lifecycle

lib_init() {
    TEST_NAME=$1
    local timeout=$2
    if [[ ! -c /dev/fuse ]]; then
        skip "/dev/fuse is missing"
    fi
    # not a skip: CI runs as root, and a quiet skip would hide every test
    [[ $EUID -eq 0 ]] || fail "system tests need root (mounts with allow_other, chown, other users)"
    T=$(mktemp -d "${TMPDIR:-/tmp}/meshfs-$TEST_NAME.XXXXXX")
    chmod 755 "$T"
    trap lib_cleanup EXIT
    trap 'log "signal: cleaning up"; exit 1' INT TERM HUP PIPE
    case "$MFS_BACKEND" in
    meshfs) find_meshfs ;;
    passthrough) find_passthrough ;;
    dir) ;;
    *) fail "unknown MFS_BACKEND=$MFS_BACKEND" ;;
    esac
    lib_watchdog "$timeout" &
    WATCHDOG_PID=$!
    disown "$WATCHDOG_PID"
    log "backend=$MFS_BACKEND${MESHFS:+ meshfs=$MESHFS} tmp=$T timeout=${timeout}s"
}

# The watchdog kills the daemons first (that fails every request blocked in
# the kernel with ENOTCONN, so the test's commands return), detaches the
# mounts and then stops the test, whose EXIT trap cleans up the rest.
lib_watchdog() {
    trap - EXIT INT TERM HUP PIPE
    sleep "$1"
    log "TIMEOUT after $1 s: killing daemons and stopping the test"
    local p m mounts
    mounts=$(awk '{ print $1 }' "$T/mounts" 2>/dev/null || true)
    for m in $mounts; do
        for p in $(mfs_daemon_pids "$m"); do kill -9 "$p" 2>/dev/null || true; done
    done
    for m in $mounts; do
        if is_mounted "$m"; then fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; fi
    done
    kill -TERM "$$" 2>/dev/null || true
    for p in $(pgrep -P "$$" 2>/dev/null); do
        [[ $p == "$BASHPID" ]] || kill -TERM "$p" 2>/dev/null || true
    done
}

lib_cleanup() {
    local rc=$? m p i
    trap - EXIT INT TERM HUP PIPE
    set +e
    if [[ -n "$WATCHDOG_PID" ]]; then
        p=$(pgrep -P "$WATCHDOG_PID") # its sleep
        kill "$WATCHDOG_PID" 2>/dev/null
        [[ -z "$p" ]] || kill $p 2>/dev/null
    fi
    # background jobs of the test itself (writers, readers)
    for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        m=${MOUNTS[$i]}
        for ((p = 0; p < 200; p++)); do # mounts stack (killed daemons' dead ones)
            is_mounted "$m" || break
            if [[ $MFS_BACKEND == dir ]]; then
                umount "$m" 2>/dev/null || umount -l "$m"
            else
                fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || umount -l "$m"
            fi
        done
        for p in $(mfs_daemon_pids "$m"); do kill -9 "$p" 2>/dev/null; done
    done
    # Only what is still a daemon of ours: a daemon killed earlier in the
    # test may have left its pid to another process (another test's shell).
    for p in "${DAEMON_PIDS[@]}"; do
        pid_alive "$p" && is_our_daemon "$p" && kill -9 "$p" 2>/dev/null
    done
    for m in "${MOUNTS[@]}"; do
        is_mounted "$m" && log "WARNING: $m still mounted after cleanup"
    done
    if [[ -n "$T" && -d "$T" ]]; then
        if [[ -n "${KEEP_TMP:-}" && $rc -ne 0 && $rc -ne 77 ]]; then
            log "KEEP_TMP set: leaving $T"
        else
            rm -rf --one-file-system "$T"
        fi
    fi
    if [[ $rc -eq 0 ]]; then
        log "PASS"
    elif [[ $rc -ne 77 ]]; then
        log "exit $rc"
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- daemons

# is_our_daemon PID: is PID a daemon of this test (its binary, its $T)?
is_our_daemon() {
    local want exe
    case "$MFS_BACKEND" in
    meshfs) want=$MESHFS ;;
    passthrough) want=$(readlink -f "$PTLL") ;;
    *) return 1 ;;
    esac
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    [[ "$exe" == "$(readlink -f "$want")" ]] || return 1
    # and one of this test's: its mount point or store is under $T. (pids
    # wrap at 32768 on the CI machine: a pid this test's daemon had, killed
    # a hundred rounds ago, may now be another test's daemon of the same
    # binary; fs_crash's cleanup once killed mesh_chaos's node c that way)
    local args
    args=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ "$args" == *"$T/"* ]]
}

pid_alive() {
    local st
    [[ -r /proc/$1/stat ]] || return 1
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# Pids of the daemon serving mount point $1: processes running the backend's
# binary whose argv holds the mount point or its store and that hold
# /dev/fuse open (so `meshfs umount MNT` or `meshfs stat MNT` never match).
mfs_daemon_pids() {
    local mnt=$1 store exe want p args fd
    # the watchdog runs in a subshell: the file, not the arrays, is current
    store=$(awk -v m="$mnt" '$1 == m { s = $2 } END { print s }' "$T/mounts" 2>/dev/null || true)
    case "$MFS_BACKEND" in
    meshfs) want=$MESHFS ;;
    passthrough) want=$(readlink -f "$PTLL") ;;
    *) return 0 ;;
    esac
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
        [[ "$exe" == "$want" ]] || continue
        args=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
        # (the mount's holder, fs/holder.c, holds /dev/fuse but serves nothing)
        [[ $args != meshfs-holder* ]] || continue
        [[ " $args " == *" $mnt "* || " $args" == *"=$mnt "* ||
            (-n "$store" && "$args" == *"$store"*) ]] || continue
        for fd in "/proc/$p/fd/"*; do
            if [[ $(readlink "$fd" 2>/dev/null) == /dev/fuse ]]; then
                echo "$p"
                break
            fi
        done
    done
}

# mfs_daemon_pid MNT: exactly one daemon must serve MNT; prints its pid.
mfs_daemon_pid() {
    local pids n
    pids=$(mfs_daemon_pids "$1")
    n=$(printf '%s' "$pids" | grep -c . || true)
    [[ $n -eq 1 ]] || fail "expected one daemon for $1, found $n: [$pids]"
    echo "$pids"
}

# ---------------------------------------------------------------- mounts

# mfs_cmd ARGS...: the meshfs CLI with a deadline.
mfs_cmd() { timeout -k 5 120 "$MESHFS" "$@"; }

# mfs_init STORE
mfs_init() {
    local store=$1
    case "$MFS_BACKEND" in
    meshfs) run_ok mfs_cmd init --store "$store" >/dev/null ;;
    *) mkdir -p "$store/data" ;;
    esac
}

# small_ext4 DIR SIZE: an ext4 file system of SIZE (truncate's units) on a
# loop device, mounted on DIR and unmounted by the cleanup (after the FUSE
# mounts); skips the test when mkfs.ext4 or loop devices are missing.
small_ext4() {
    local dir=$1 size=$2
    command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 missing"
    mkdir -p "$dir"
    truncate -s "$size" "$dir.img"
    mkfs.ext4 -q -F "$dir.img"
    mount -o loop "$dir.img" "$dir" || skip "no loop devices"
    mount_register "$dir" loop
}

mount_register() {
    local mnt=$1 store=$2 i
    grep -qx "$mnt $store" "$T/mounts" 2>/dev/null || echo "$mnt $store" >>"$T/mounts"
    for i in "${!MOUNTS[@]}"; do
        if [[ ${MOUNTS[$i]} == "$mnt" ]]; then
            MOUNT_STORES[$i]=$store
            return
        fi
    done
    MOUNTS+=("$mnt")
    MOUNT_STORES+=("$store")
}

# mfs_mount STORE MNT [OPTS]: mount and check that the mount is ready when
# the command returns (the CLI contract), then remember the daemon.
mfs_mount() {
    local store=$1 mnt=$2 opts=${3:-} out rc=0 pid
    is_mounted "$mnt" || mkdir -p "$mnt" # (a dead mount point cannot be stat'ed)
    mount_register "$mnt" "$store"
    case "$MFS_BACKEND" in
    meshfs)
        out=$(mfs_cmd mount --store "$store" ${opts:+-o "$opts"} "$mnt" 2>&1) || rc=$?
        [[ $rc -eq 0 ]] || fail "meshfs mount --store $store ${opts:+-o $opts }$mnt: rc=$rc: $out"
        ;;
    passthrough)
        # passthrough_ll cannot reuse a dead mount point; meshfs must (contract)
        if is_mounted "$mnt"; then fusermount3 -uz "$mnt"; fi
        out=$("$PTLL" -o "source=$store/data,xattr${opts:+,$opts}" "$mnt" 2>&1) || rc=$?
        [[ $rc -eq 0 ]] || fail "passthrough_ll mount $mnt: rc=$rc: $out"
        ;;
    dir)
        mount --bind "$store/data" "$mnt"
        ;;
    esac
    is_mounted "$mnt" || fail "mount of $mnt returned 0 but $mnt is not in /proc/mounts"
    local n
    n=$(awk -v m="$mnt" '$2 == m' /proc/mounts | wc -l)
    # meshfs mounts over a killed daemon's dead mount (fs/stack.c): the
    # dead ones stay under it until it is unmounted
    [[ $n -eq 1 || $MFS_BACKEND == meshfs ]] || fail "mount of $mnt: $n mounts stacked on it (the old one was not replaced): $(grep " $mnt " /proc/mounts | tr '\n' '|')"
    stat "$mnt" >/dev/null || fail "mount $mnt returned but stat fails"
    if [[ $MFS_BACKEND != dir ]]; then
        pid=$(mfs_daemon_pid "$mnt")
        DAEMON_PIDS+=("$pid")
        # shellcheck disable=SC2034 # read by the tests (fs_crash)
        MFS_PID=$pid
    fi
}

# mfs_up: a new store in $T/store mounted on $T/mnt (sets STORE and M).
mfs_up() {
    STORE=$T/store
    M=$T/mnt
    mfs_init "$STORE"
    mfs_mount "$STORE" "$M"
}

# mfs_umount MNT: unmount, check the mount is gone and the daemon exited.
mfs_umount() {
    local mnt=$1 out rc=0 pids p
    pids=$(mfs_daemon_pids "$mnt")
    case "$MFS_BACKEND" in
    meshfs)
        out=$(mfs_cmd umount "$mnt" 2>&1) || rc=$?
        [[ $rc -eq 0 ]] || fail "meshfs umount $mnt: rc=$rc: $out"
        ;;
    passthrough) fusermount3 -u "$mnt" ;;
    dir) umount "$mnt" ;;
    esac
    ! is_mounted "$mnt" || fail "umount of $mnt returned 0 but it is still mounted"
    for p in $pids; do
        wait_until 30 "daemon $p of $mnt to exit after umount" eval "! pid_alive $p"
    done
}

# mfs_kill9 MNT [PID]: kill -9 the daemon (PID if given, as found by
# mfs_mount in $MFS_PID) and wait until it is gone.
mfs_kill9() {
    local pid=${2:-}
    [[ -n "$pid" ]] || pid=$(mfs_daemon_pid "$1")
    kill -9 "$pid"
    wait_until 30 "killed daemon $pid to vanish" eval "! pid_alive $pid"
}

# ---------------------------------------------------------------- trees

# tree_manifest DIR: one line per entry below DIR (DIR itself excluded),
# sorted by path:
#   path type mode uid gid size mtime nlink link-group symlink-target sha256 xattrs
# MANIFEST_IGNORE (words) drops fields: dirnlink, mtime, dirmtime, linkmtime,
# owner, xattr, nlink, hash. Directory sizes differ between filesystems and
# are left out unless MANIFEST_DIRSIZE=1. MANIFEST_MTIME=s compares whole
# seconds only.
# MANIFEST_XATTR_SKIP: extended regex of xattr names to leave out.
tree_manifest() {
    local dir=$1 tmp
    tmp=$(mktemp -d "$T/manifest.XXXXXX")
    (cd "$dir" && find . -mindepth 1 -printf '%P\t%y\t%m\t%U\t%G\t%s\t%T@\t%n\t%i\t%l\n') |
        LC_ALL=C sort -t $'\t' -k1,1 >"$tmp/stat"
    (cd "$dir" && find . -type f -print0 | xargs -0r sha256sum --) |
        sed -e 's/^\\//' -e 's|^\([0-9a-f]*\)  \./\(.*\)$|\2\t\1|' >"$tmp/hash"
    if [[ " ${MANIFEST_IGNORE:-} " != *" xattr "* ]]; then
        (cd "$dir" && getfattr -R -P -h -d -m - -e hex . 2>/dev/null || true) >"$tmp/xattr"
    else
        : >"$tmp/xattr"
    fi
    awk -F'\t' -v OFS='\t' -v ign=" ${MANIFEST_IGNORE:-} " \
        -v prec="${MANIFEST_MTIME:-ns}" -v dirsize="${MANIFEST_DIRSIZE:-0}" -v xskip="${MANIFEST_XATTR_SKIP:-^$}" '
        function has(w) { return index(ign, " " w " ") > 0 }
        FILENAME == ARGV[1] { hash[$1] = $2; next }
        FILENAME == ARGV[2] {
            if ($0 ~ /^# file: /) { cur = substr($0, 10); sub(/^\.\//, "", cur); next }
            if ($0 == "" || cur == "") next
            eq = index($0, "="); name = substr($0, 1, eq - 1)
            if (name ~ xskip) next
            xa[cur] = (cur in xa) ? xa[cur] "," $0 : $0
            next
        }
        {
            path = $1; type = $2; mode = $3; uid = $4; gid = $5; size = $6
            mt = $7; nl = $8; ino = $9; tgt = $10
            if (prec == "s") sub(/\..*/, "", mt)
            if (has("mtime") || (type == "d" && has("dirmtime")) ||
                (type == "l" && has("linkmtime"))) mt = "-"
            if (type == "d" && !dirsize) size = "-"
            if (type == "d" && has("dirnlink")) nl = "-"
            if (has("nlink")) nl = "-"
            if (has("owner")) { uid = "-"; gid = "-" }
            grp = "-"
            if (type == "f" && $8 > 1) {
                if (!(ino in first)) first[ino] = path
                grp = first[ino]
            }
            h = (type == "f" && !has("hash")) ? hash[path] : "-"
            x = (path in xa) ? xa[path] : "-"
            print path, type, mode, uid, gid, size, mt, nl, grp, tgt, h, x
        }' "$tmp/hash" "$tmp/xattr" "$tmp/stat"
    rm -rf "$tmp"
}

# tree_compare A B [LABEL]: fail with a diff unless the manifests are equal.
tree_compare() {
    local a=$1 b=$2 label=${3:-trees}
    tree_manifest "$a" >"$T/cmp.a"
    tree_manifest "$b" >"$T/cmp.b"
    if ! diff -u "$T/cmp.a" "$T/cmp.b" >"$T/cmp.diff"; then
        log "$label differ ($a vs $b); first lines of the diff (path type mode uid gid size mtime nlink group target sha256 xattrs):"
        head -40 "$T/cmp.diff" >&2
        fail "$label: $a and $b differ ($(grep -c '^[-+][^-+]' "$T/cmp.diff") lines)"
    fi
    local n
    n=$(wc -l <"$T/cmp.a")
    [[ $n -gt 0 ]] || fail "$label: $a is empty; nothing was compared"
    log "$label equal: $n entries"
}

# tree_manifest_file DIR OUT: save a manifest to compare later (e.g. across
# umount/mount), and tree_check_manifest DIR FILE LABEL compares against it.
tree_manifest_file() { tree_manifest "$1" >"$2"; }
tree_check_manifest() {
    local dir=$1 want=$2 label=$3
    tree_manifest "$dir" >"$T/cmp.now"
    if ! diff -u "$want" "$T/cmp.now" >"$T/cmp.diff"; then
        log "$label: $dir differs from the saved manifest:"
        head -40 "$T/cmp.diff" >&2
        fail "$label: $dir changed"
    fi
    log "$label: $dir matches the saved manifest ($(wc -l <"$want") entries)"
}

# make_sample_tree DIR: a small tree with every kind of entry the tools must
# carry: nested dirs, empty and binary files, a large file, a sparse file,
# odd names, symlinks (dangling too), hard links, a fifo, modes, owners,
# fixed mtimes (ns), xattrs.
make_sample_tree() {
    local d=$1 i
    mkdir -p "$d/a/b/c" "$d/empty-dir" "$d/sp ace" "$d/uni-ü€"
    : >"$d/empty"
    printf 'hello\n' >"$d/a/hello.txt"
    head -c 3000000 /dev/urandom >"$d/a/b/random.bin"
    head -c 70000 /dev/urandom >"$d/a/b/c/chunk-and-a-bit"
    for i in $(seq 1 40); do printf 'file %d\n' "$i" >"$d/a/b/c/f$i"; done
    truncate -s 10M "$d/sparse"
    printf 'tail' | dd of="$d/sparse" bs=1 seek=$((8 * 1024 * 1024)) conv=notrunc status=none
    printf 'name with blanks\n' >"$d/sp ace/x y.txt"
    printf 'unicode\n' >"$d/uni-ü€/ö.txt"
    ln -s a/hello.txt "$d/link-rel"
    ln -s /nonexistent/target "$d/link-dangling"
    ln -s ../a "$d/empty-dir/link-dir"
    ln "$d/a/hello.txt" "$d/hard1"
    ln "$d/a/hello.txt" "$d/a/b/hard2"
    mkfifo "$d/fifo"
    chmod 0600 "$d/a/b/random.bin"
    chmod 0750 "$d/a/b"
    chmod 4755 "$d/a/b/c/f1"
    chmod 2775 "$d/a/b/c"
    chmod 1777 "$d/empty-dir"
    chmod 0444 "$d/a/b/c/f2"
    chown 65534:65534 "$d/a/b/c/f3"
    chown 1234:5678 "$d/a/b/c/f4"
    setfattr -n user.comment -v "some value" "$d/a/hello.txt"
    setfattr -n user.bin -v 0x00ff10 "$d/a/b/random.bin"
    setfattr -n user.dir -v yes "$d/a/b"
    setfattr -n user.empty "$d/empty"
    touch -h -d '2001-02-03 04:05:06.123456789' "$d/link-rel"
    touch -d '2010-01-01 00:00:00.5' "$d/a/hello.txt" "$d/empty"
    touch -d '1999-12-31 23:59:59' "$d/a/b/c/f5"
    touch -d '2020-06-07 08:09:10.111111111' "$d/a/b/c" "$d/a/b" "$d/a" "$d/empty-dir"
}

# ---------------------------------------------------------------- C helper

# helper_build: compile $T/fshelper from the source below.
helper_build() {
    [[ -x "$T/fshelper" ]] && return
    helper_source >"$T/fshelper.c"
    ${CC:-cc} -O2 -Wall -Wextra -D_GNU_SOURCE -o "$T/fshelper" "$T/fshelper.c" ||
        fail "cannot compile the test helper"
}

helper_source() {
    cat <<'EOF'
/* fshelper - small programs the system tests need and shell tools lack. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libgen.h>
#include <sys/socket.h>
#include <sys/un.h>

#define BLK 4096

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fshelper: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

/* Deterministic content of block idx of file name: header + noise. */
static void fill_block(unsigned char *b, const char *name, uint64_t idx)
{
    uint64_t s = 1469598103934665603ULL ^ (idx * 0x9E3779B97F4A7C15ULL);
    for (const char *p = name; *p; p++) s = (s ^ (unsigned char)*p) * 1099511628211ULL;
    if (!s) s = 1;
    for (int i = 0; i < BLK; i += 8) { uint64_t v = xs(&s); memcpy(b + i, &v, 8); }
    snprintf((char *)b, 64, "MFSBLK %s %" PRIu64 "\n", name, idx);
}

/* pattern byte for the mmap test */
static unsigned char pat(size_t off, int gen) { return (unsigned char)((off * 131u) ^ (off >> 12) ^ (unsigned)gen * 7u); }

static void read_all(int fd, unsigned char *buf, size_t len, const char *what)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0) die("read %s: %s", what, strerror(errno));
        if (n == 0) die("read %s: short file, %zu of %zu bytes", what, got, len);
        got += (size_t)n;
    }
}

static void check_pat(const unsigned char *buf, size_t len, int gen, const char *what)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pat(i, gen))
            die("%s: byte %zu is 0x%02x, expected 0x%02x (mmap write not seen by read())",
                what, i, buf[i], pat(i, gen));
}

/* mmap FILE: shared-mapping writes must be what read() returns. */
static int cmd_mmap(const char *path)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t len = (size_t)pg * 3 + 100;
    unsigned char *buf = malloc(len);
    if (!buf) die("oom");
    /* 1: new file, ftruncate, write through the map, msync, munmap, close */
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)len) < 0) die("ftruncate: %s", strerror(errno));
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) die("mmap %s: %s", path, strerror(errno));
    for (size_t i = 0; i < len; i++) m[i] = pat(i, 1);
    if (msync(m, len, MS_SYNC) < 0) die("msync: %s", strerror(errno));
    if (munmap(m, len) < 0) die("munmap: %s", strerror(errno));
    if (close(fd) < 0) die("close after mmap write: %s", strerror(errno));
    fd = open(path, O_RDONLY);
    if (fd < 0) die("reopen: %s", strerror(errno));
    read_all(fd, buf, len, "after msync+close");
    check_pat(buf, len, 1, "after msync+close");
    close(fd);
    /* 2: no msync: munmap + close, then read from a fresh fd */
    fd = open(path, O_RDWR);
    if (fd < 0) die("reopen rw: %s", strerror(errno));
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) die("mmap 2: %s", strerror(errno));
    for (size_t i = 0; i < len; i++) m[i] = pat(i, 2);
    munmap(m, len);
    close(fd);
    fd = open(path, O_RDONLY);
    read_all(fd, buf, len, "after munmap without msync");
    check_pat(buf, len, 2, "after munmap without msync");
    /* 3: read() on another fd while the map is still live */
    int wfd = open(path, O_RDWR);
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0);
    if (m == MAP_FAILED) die("mmap 3: %s", strerror(errno));
    for (size_t i = 0; i < len; i++) m[i] = pat(i, 3);
    read_all(fd, buf, len, "while mapped");
    check_pat(buf, len, 3, "while mapped (other fd)");
    /* 4: write() then the map sees it */
    memset(buf, 0xA5, 10);
    if (pwrite(wfd, buf, 10, pg) != 10) die("pwrite: %s", strerror(errno));
    for (int i = 0; i < 10; i++)
        if (m[pg + i] != 0xA5) die("map does not see write() at %ld", pg + i);
    if (msync(m, len, MS_SYNC) < 0) die("msync 4: %s", strerror(errno));
    munmap(m, len);
    if (fsync(wfd) < 0) die("fsync: %s", strerror(errno));
    close(wfd);
    struct stat st;
    if (fstat(fd, &st) < 0) die("fstat: %s", strerror(errno));
    if ((size_t)st.st_size != len) die("size %jd, expected %zu", (intmax_t)st.st_size, len);
    close(fd);
    free(buf);
    return 0;
}

static void fsync_dir_of(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int d = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (d < 0) { fprintf(stderr, "fshelper: open dir of %s: %s\n", path, strerror(errno)); exit(3); }
    if (fsync(d) < 0) { fprintf(stderr, "fshelper: fsync dir: %s\n", strerror(errno)); exit(3); }
    close(d);
}

/* writer DIR ACKFILE TAG SEED CALM: write blocks to DIR/TAG-<n> files,
 * fsync, then append "file idx" to ACKFILE for every block fsync
 * acknowledged. After CALM acknowledged blocks it goes on at a calmer pace
 * (2 ms between blocks), so the killer catches it in a bounded window.
 * Runs until an error (the daemon was killed) and exits 3 then. */
static int cmd_writer(const char *dir, const char *ackpath, const char *tag, const char *seedstr,
                      const char *calmstr)
{
    uint64_t s = strtoull(seedstr, NULL, 10) | 1;
    long calm = atol(calmstr), acked = 0;
    int ack = open(ackpath, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (ack < 0) die("open ack %s: %s", ackpath, strerror(errno));
    unsigned char b[BLK];
    char name[256], path[4096], line[512];
    for (int f = 0;; f++) {
        snprintf(name, sizeof name, "%s-%d", tag, f);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) { fprintf(stderr, "fshelper: create %s: %s\n", path, strerror(errno)); exit(3); }
        int nblocks = 8 + (int)(xs(&s) % 56), fsynced_dir = 0;
        uint64_t pending_from = 0;
        for (int i = 0; i < nblocks; i++) {
            fill_block(b, name, (uint64_t)i);
            size_t cut = 1 + xs(&s) % (BLK - 1); /* two writes per block */
            if (pwrite(fd, b, cut, (off_t)i * BLK) != (ssize_t)cut ||
                pwrite(fd, b + cut, BLK - cut, (off_t)i * BLK + (off_t)cut) != (ssize_t)(BLK - cut)) {
                fprintf(stderr, "fshelper: write %s: %s\n", path, strerror(errno)); exit(3);
            }
            if (xs(&s) % 3 != 0 && i != nblocks - 1) continue; /* fsync every few blocks */
            if (fsync(fd) < 0) { fprintf(stderr, "fshelper: fsync %s: %s\n", path, strerror(errno)); exit(3); }
            if (!fsynced_dir) { fsync_dir_of(path); fsynced_dir = 1; }
            for (uint64_t k = pending_from; k <= (uint64_t)i; k++) {
                int n = snprintf(line, sizeof line, "%s %" PRIu64 "\n", name, k);
                if (write(ack, line, (size_t)n) != n) die("ack write: %s", strerror(errno));
                acked++;
            }
            if (acked >= calm) usleep(2000);
            pending_from = (uint64_t)i + 1;
        }
        if (close(fd) < 0) { fprintf(stderr, "fshelper: close %s: %s\n", path, strerror(errno)); exit(3); }
    }
}

/* verify DIR ACKFILE: every acknowledged block must be intact. */
static int cmd_verify(const char *dir, const char *ackpath)
{
    FILE *a = fopen(ackpath, "r");
    if (!a) die("open %s: %s", ackpath, strerror(errno));
    char name[256], path[4096], cur[4096] = "";
    unsigned long long idx;
    unsigned char want[BLK], got[BLK];
    long ok = 0, bad = 0;
    int fd = -1;
    while (fscanf(a, "%255s %llu", name, &idx) == 2) {
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (strcmp(path, cur) != 0) {
            if (fd >= 0) close(fd);
            fd = open(path, O_RDONLY);
            snprintf(cur, sizeof cur, "%s", path);
            if (fd < 0) { fprintf(stderr, "LOST: %s (all acknowledged blocks): %s\n", path, strerror(errno)); bad++; continue; }
        }
        if (fd < 0) { bad++; continue; }
        fill_block(want, name, idx);
        ssize_t n = pread(fd, got, BLK, (off_t)idx * BLK);
        if (n != BLK || memcmp(want, got, BLK) != 0) {
            if (bad < 20)
                fprintf(stderr, "LOST: %s block %llu (read %zd bytes%s)\n", path, idx, n,
                        n == BLK ? ", content differs" : "");
            bad++;
        } else {
            ok++;
        }
    }
    if (fd >= 0) close(fd);
    fclose(a);
    printf("%ld %ld\n", ok, bad);
    return bad ? 1 : 0;
}

/* mkfiles DIR PREFIX N: create N empty files PREFIX%06d. */
static int cmd_mkfiles(const char *dir, const char *prefix, const char *nstr)
{
    long n = atol(nstr);
    char path[4096];
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s%06ld", dir, prefix, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) die("create %s: %s", path, strerror(errno));
        if (close(fd) < 0) die("close %s: %s", path, strerror(errno));
    }
    return 0;
}

/* wbread FILE MIB: writes FILE in order, 1 MiB at a time, each followed by
 * a small overwrite inside it, and after each reads the MiB back through a
 * second descriptor opened with O_DIRECT (a READ that reaches the daemon
 * at once, while the writes may still be queued there): every read must
 * show both writes. Prints the reads that did not; exit 1 if any. */
static int cmd_wbread(const char *path, const char *mibstr)
{
    long mib = atol(mibstr), bad = 0;
    size_t M = 1 << 20;
    int w = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w < 0) die("create %s: %s", path, strerror(errno));
    int r = open(path, O_RDONLY | O_DIRECT);
    if (r < 0) die("open %s O_DIRECT: %s", path, strerror(errno));
    uint8_t *want = malloc(M), *got;
    if (!want || posix_memalign((void **)&got, 4096, M)) die("out of memory");
    uint64_t s = 88172645463325252ull;
    for (long i = 0; i < mib; i++) {
        for (size_t k = 0; k < M; k += 8) {
            uint64_t v = xs(&s);
            memcpy(want + k, &v, 8);
        }
        if (pwrite(w, want, M, (off_t)(i * M)) != (ssize_t)M) die("write %ld: %s", i, strerror(errno));
        size_t at = xs(&s) % (M - 100);
        memset(want + at, (int)(i & 0xff), 100);
        if (pwrite(w, want + at, 100, (off_t)(i * M + at)) != 100) die("overwrite %ld: %s", i, strerror(errno));
        ssize_t n = pread(r, got, M, (off_t)(i * M));
        if (n != (ssize_t)M || memcmp(got, want, M)) {
            size_t d = 0;
            while (n > 0 && d < (size_t)n && got[d] == want[d]) d++;
            printf("MiB %ld: read %zd bytes, first difference at %zu\n", i, n, d);
            bad++;
        }
    }
    if (close(w) < 0) die("close %s: %s", path, strerror(errno));
    close(r);
    free(want);
    free(got);
    return bad ? 1 : 0;
}

/* notify PATH OUT: a fake systemd notify socket (AF_UNIX datagrams) at
 * PATH; every datagram goes to OUT as one line ('\n' -> ' '), flushed. */
static int cmd_notify(const char *path, const char *out)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (fd < 0 || strlen(path) >= sizeof a.sun_path) die("socket %s", path);
    strcpy(a.sun_path, path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind %s: %s", path, strerror(errno));
    FILE *f = fopen(out, "a");
    if (!f) die("open %s: %s", out, strerror(errno));
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0) { if (errno == EINTR) continue; die("recv: %s", strerror(errno)); }
        for (ssize_t i = 0; i < n; i++) if (buf[i] == '\n') buf[i] = ' ';
        buf[n] = 0;
        fprintf(f, "%s\n", buf);
        fflush(f);
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "notify")) return cmd_notify(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "mmap")) return cmd_mmap(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "wbread")) return cmd_wbread(argv[2], argv[3]);
    if (argc == 7 && !strcmp(argv[1], "writer")) return cmd_writer(argv[2], argv[3], argv[4], argv[5], argv[6]);
    if (argc == 4 && !strcmp(argv[1], "verify")) return cmd_verify(argv[2], argv[3]);
    if (argc == 5 && !strcmp(argv[1], "mkfiles")) return cmd_mkfiles(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: fshelper mmap FILE | writer DIR ACK TAG SEED CALM | verify DIR ACK | mkfiles DIR PREFIX N | wbread FILE MIB\n");
    return 2;
}
EOF
}
