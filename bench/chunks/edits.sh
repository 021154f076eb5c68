#!/usr/bin/env bash
# bench/chunks/edits.sh - issue 17's benchmark: bytes on the wire per byte
# changed, for a set of edits of a big file and of a git repository on
# node A of a two-node mesh, beside what rsync's delta transfer moves for
# the same edit. bench/chunks/README.md says what is measured and why.
#
#   bench/chunks/edits.sh                   # ~3 minutes; needs root
#   MESHFS=/path/to/meshfs bench/chunks/edits.sh
#   SIZE_MIB=50 IDLE_S=20 GIT_GC="repack -adf" bench/chunks/edits.sh
#
# Two nodes in a private network namespace (tests/system/mesh_lib.sh); the
# bytes of one edit: mesh_wire_edit (IP bytes of every datagram, both
# directions, from the edit on A until B's tree equals A's and the wire is
# quiet for 3 s), less the idle rate measured over IDLE_S seconds before
# the first edit times that window. rsync: `rsync -a --no-whole-file
# --delete-delay --stats` from the state after the edit to a copy of the
# state before it, "Total bytes sent" + "Total bytes received"; for edits
# that make a new name also with --fuzzy (a basis found by name).
# The table goes to stdout and to bench/chunks/results/<UTC date>.txt.
# Nothing outside its temp dir ($TMPDIR, default /tmp) and its namespace
# (MESH_NS_PREFIX-edits-PID, default mfs-) is touched; every exit path
# unmounts, stops the daemons and deletes the namespace (mesh_lib.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SIZE_MIB=${SIZE_MIB:-50}
IDLE_S=${IDLE_S:-20}
GIT_GC=${GIT_GC:-gc --aggressive --prune=now --quiet}
LIMIT=256000 # bytes: a 1-byte insertion anywhere (issue 17)
LINE="a line an editor inserted in the middle of the file"
# shellcheck source=../../tests/system/mesh_lib.sh
. "$HERE/../../tests/system/mesh_lib.sh"
mesh_init edits 1800 7760
command -v rsync >/dev/null || skip "rsync is not installed"
command -v git >/dev/null || skip "git is not installed"
mesh_up a b
A=${MNT[a]}
CUR=$T/cur   # the file edits' state after the edit, kept beside A's
PREV=$T/prev # and before it
mkdir -p "$CUR" "$T/src"

# ---------------------------------------------------------------- set-up
# The big file, a git repository (a clone of this one plus 5 commits) and
# the bytes the edits write, made before anything is measured.
mesh_wire_count
head -c $((SIZE_MIB << 20)) /dev/urandom >"$CUR/big"
cp "$CUR/big" "$A/big"
head -c 4096 /dev/urandom >"$T/src/4k"
head -c 1048576 /dev/urandom >"$T/src/1m"
head -c 16 /dev/urandom >"$T/src/16"
git clone -q --no-hardlinks "$REPO_DIR" "$A/repo"
for i in 1 2 3 4 5; do
    printf 'edit %d of the chunk benchmark\n' "$i" >>"$A/repo/README.md"
    git -C "$A/repo" -c user.name=bench -c user.email=bench@localhost \
        commit -q -am "bench: edit $i"
done
mesh_wait_converged 300 a b
mesh_wire_quiet
b0=$(mesh_wire_bytes)
sleep "$IDLE_S"
MESH_IDLE_BPS=$(awk -v b=$(($(mesh_wire_bytes) - b0)) -v s="$IDLE_S" 'BEGIN { printf "%.1f", b / s }')
log "idle: $MESH_IDLE_BPS bytes/s on the wire (both directions, over $IDLE_S s)"
mesh_wire_quiet

# ---------------------------------------------------------------- edits
# Each takes the directory it edits (A's mount or $CUR) and does the same
# there: the edit is made on both, measured on A.
size_of() { stat -c %s "$1/big"; }
# (offsets come first: ins OFF DIR, put OFF SRC DIR)
ins() { file_insert "$2/big" "$1" x; }
put() { file_put "$3/big" "$1" "$2"; }
ed_append() { cat "$T/src/1m" >>"$1/big"; }
ed_truncate() { truncate -s -1M "$1/big"; }
ed_copy() {
    cp "$1/big" "$1/copy"
    file_put "$1/copy" $(($(size_of "$1") / 2 + 1000)) "$T/src/16"
}
# save_at DIR: the offset after the first newline past the middle of
# DIR/big, where the saves insert LINE
save_at() {
    local mid
    mid=$(($(size_of "$1") / 2))
    echo $((mid + $(dd if="$1/big" bs=65536 count=1 skip="$mid" iflag=skip_bytes status=none |
        tr -c '\n' . | awk 'NR == 1 { print length($0) + 1 }')))
}
# an editor's save, as vim and most editors make it: the whole file with
# one line inserted after the first newline past the middle, written by one
# process to a temp file (open, writes, fsync, close), renamed over it. The
# editor holds the text in memory; here it is made in $T first.
ed_save() {
    local off
    off=$(save_at "$1")
    { head -c "$off" "$1/big"; printf '%s\n' "$LINE"; tail -c +$((off + 1)) "$1/big"; } >"$T/save.new"
    dd if="$T/save.new" of="$1/.big.swp" bs=1M conv=fsync status=none
    rm -f "$T/save.new"
    mv "$1/.big.swp" "$1/big"
}
# the same save made by a shell pipeline straight into the mount: head,
# printf and tail share the temp file's descriptor, and head's exit is a
# close(2), which publishes the first half as a version of its own (no
# target: the issue's edit is the editor's save above)
ed_pipe_save() {
    local off
    off=$(save_at "$1")
    { head -c "$off" "$1/big"; printf '%s\n' "$LINE"; tail -c +$((off + 1)) "$1/big"; } >"$1/.big.swp"
    mv "$1/.big.swp" "$1/big"
}

# rsync_bytes FROM TO [OPTION]: the bytes rsync's delta transfer moves
# (sent + received) to make TO (a scratch copy, removed) equal to FROM
rsync_bytes() {
    local out
    out=$(rsync -a --no-whole-file --delete-delay --stats "${@:3}" "$1/" "$2/") ||
        fail "rsync $* failed"
    rm -rf "$2"
    awk -F': ' '/^Total bytes (sent|received):/ { gsub(/,/, "", $2); s += $2 } END { print s + 0 }' <<<"$out"
}

# changed_bytes BEFORE AFTER: the bytes of AFTER's files that are new or
# differ from BEFORE's (what a git gc wrote)
changed_bytes() {
    local f s=0
    while IFS= read -r -d '' f; do
        cmp -s "$1/$f" "$2/$f" || s=$((s + $(stat -c %s "$2/$f")))
    done < <(cd "$2" && find . -type f -print0)
    echo "$s"
}

ROWS=()
# row NAME CHANGED MESHFS RSYNC FUZZY: one line of the table; the target is
# LIMIT for insertions, 2x rsync's figure for the others
row() {
    local name=$1 changed=$2 mfs=$3 rs=$4 fz=$5 target met
    if [[ $name == insert-* ]]; then
        target="<= $LIMIT"
        ((mfs <= LIMIT)) && met=yes || met=NO
    elif [[ $name == pipeline-save ]]; then
        target="-"
        met="-"
    else
        target="<= 2x rsync"
        ((mfs <= 2 * rs)) && met=yes || met=NO
    fi
    ROWS+=("$(awk -v n="$name" -v c="$changed" -v m="$mfs" -v r="$rs" -v f="$fz" -v t="$target" -v ok="$met" \
        'BEGIN { printf "%-18s %9d %11d %12.1f %10d %10s %9.3f  %-12s %s", n, c, m, m / c, r, f, m / r, t, ok }')")
    log "${ROWS[-1]}"
}

# edit NAME CHANGED FUZZY FN ARGS...: FN ARGS on $CUR (the rsync figure:
# $PREV is the state before) and measured on A; FUZZY=1 adds rsync --fuzzy
edit() {
    local name=$1 changed=$2 fuzzy=$3 mfs rs fz=-
    shift 3
    rm -rf "$PREV"
    cp -a "$CUR" "$PREV"
    "$@" "$CUR"
    mfs=$(mesh_wire_edit a b "$@" "$A")
    for f in big copy; do
        [[ ! -e $CUR/$f ]] || cmp "$CUR/$f" "$A/$f" || fail "$name: A's $f is not the edit's result"
        [[ ! -e $CUR/$f ]] || cmp "$A/$f" "${MNT[b]}/$f" || fail "$name: B's $f differs from A's"
    done
    cp -a "$PREV" "$T/dest"
    rs=$(rsync_bytes "$CUR" "$T/dest")
    if [[ $fuzzy == 1 ]]; then
        cp -a "$PREV" "$T/dest"
        fz=$(rsync_bytes "$CUR" "$T/dest" --fuzzy)
    fi
    row "$name" "$changed" "${mfs%% *}" "$rs" "$fz"
}

size=$(size_of "$CUR")
edit insert-start 1 0 ins 0
edit insert-middle 1 0 ins $((size / 2))
size=$(size_of "$CUR")
edit insert-end 1 0 ins "$size"
off=$(($(size_of "$CUR") / 2))
old=$(od -An -tu1 -j "$off" -N 1 "$CUR/big" | tr -d ' ')
printf '%b' "\\0$(printf '%o' $((old ^ 0x5a)))" >"$T/src/1b"
edit overwrite-1B 1 0 put "$off" "$T/src/1b"
edit overwrite-4KiB 4096 0 put $(($(size_of "$CUR") / 3 / 4096 * 4096)) "$T/src/4k"
edit append-1MiB 1048576 0 ed_append
edit truncate-1MiB 1048576 0 ed_truncate
edit copy-with-change 16 1 ed_copy
edit editor-save $((${#LINE} + 1)) 0 ed_save
edit pipeline-save $((${#LINE} + 1)) 0 ed_pipe_save

# git gc: the .git directory before and after, from A's mount
rm -rf "$T/git-prev"
cp -a "$A/repo/.git" "$T/git-prev"
# shellcheck disable=SC2086 # GIT_GC is words
gc() { git -C "$A/repo" $GIT_GC; }
mfs=$(mesh_wire_edit a b gc)
cp -a "$A/repo/.git" "$T/git-cur"
changed=$(changed_bytes "$T/git-prev" "$T/git-cur")
cp -a "$T/git-prev" "$T/dest"
rs=$(rsync_bytes "$T/git-cur" "$T/dest")
cp -a "$T/git-prev" "$T/dest"
fz=$(rsync_bytes "$T/git-cur" "$T/dest" --fuzzy)
row "git-${GIT_GC%% *}" "$changed" "${mfs%% *}" "$rs" "$fz"

# ---------------------------------------------------------------- table
mkdir -p "$HERE/results"
OUT=$HERE/results/$(date -u +%Y%m%d-%H%M).txt
{
    echo "bench/chunks/edits.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), tree $(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo '?'), meshfs $MESHFS, rsync $(rsync --version | awk 'NR == 1 { print $3 }')"
    echo "a ${SIZE_MIB} MiB file of random bytes; git: a clone of this repository + 5 commits, then git $GIT_GC"
    echo "meshfs: IP bytes (IP + UDP headers + payload) of every datagram A<->B, both directions, from the edit until"
    echo "B's tree equals A's and the wire is quiet for ${MESH_QUIET_S} s, less the idle rate ($MESH_IDLE_BPS B/s over $IDLE_S s) times that window"
    echo "rsync: rsync -a --no-whole-file --delete-delay --stats, after -> before, Total bytes sent + received; fuzzy: the same with --fuzzy"
    echo
    printf '%-18s %9s %11s %12s %10s %10s %9s  %-12s %s\n' edit changed meshfs meshfs/byte rsync fuzzy mfs/rsync target met
    printf '%s\n' "${ROWS[@]}"
} | tee "$OUT"
log "results: $OUT"
