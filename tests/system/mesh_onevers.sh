#!/usr/bin/env bash
# mesh_onevers: a file open on a mount reads one whole version, never a mix
# of two (DESIGN P5: "an open pins the version it saw"; issue 9).
# Two nodes. A rewrites a 2 MiB file in place again and again (the same
# size, so only the bytes tell versions apart); every 64 KiB piece of
# version v says "version v, piece p" in each of its 16-byte records. On B,
# at the same time:
#   - the looping reader opens the file, reads it in 64 KiB pieces (with a
#     short pause between pieces, like a program that works on what it
#     reads), closes it, and again; every pass must be one version;
#   - the keeper opens the file once and reads it whole again and again
#     through that one descriptor while A writes several versions; every
#     pass must be the version its first pass read (the pinned one);
#   - after the writer stops, a new open reads the last version;
#   - pinning is about remote versions: a descriptor open on B sees a
#     rewrite made on B at once, as on a local disk.
# A piece that is no version's piece, or a pass that mixes two versions,
# fails the test.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init onevers 240 7690
command -v "${CC:-cc}" >/dev/null || skip "no C compiler for the test's reader"

cat >"$T/vers.c" <<'EOF'
/* vers - writer and readers of version-stamped 2 MiB files (mesh_onevers) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PIECE 65536
#define NPIECES 32
#define REC 16

static void msleep(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void fill(char *p, unsigned v, unsigned piece)
{
    char rec[REC + 1];
    snprintf(rec, sizeof rec, "v%06u p%03u ;;\n", v % 1000000, piece);
    for (size_t o = 0; o < PIECE; o += REC)
        memcpy(p + o, rec, REC);
}

/* the version a piece belongs to, or -1 if it is not one whole piece */
static long piece_version(const char *p, unsigned piece)
{
    unsigned v, pc;
    if (sscanf(p, "v%6u p%3u ;;", &v, &pc) != 2 || pc != piece)
        return -1;
    for (size_t o = REC; o < PIECE; o += REC)
        if (memcmp(p, p + o, REC))
            return -1;
    return (long)v;
}

/* reads the whole file through fd in pieces; returns its version, -1 for a
 * mix (*what says which), -2 on a read error */
static long pass(int fd, long pause_ms, char *buf, char *what, size_t cap)
{
    long ver = -3;
    for (unsigned i = 0; i < NPIECES; i++) {
        ssize_t n = pread(fd, buf, PIECE, (off_t)i * PIECE);
        if (n < 0)
            return -2;
        if (n != PIECE) {
            snprintf(what, cap, "piece %u: short read %zd (size %s)", i, n,
                     n == 0 ? "smaller" : "odd");
            return -1;
        }
        long v = piece_version(buf, i);
        if (v < 0) {
            snprintf(what, cap, "piece %u is no version's piece: %.12s", i,
                     buf);
            return -1;
        }
        if (ver == -3)
            ver = v;
        else if (v != ver) {
            snprintf(what, cap, "piece 0..%u of version %ld, piece %u of "
                     "version %ld", i - 1, ver, i, v);
            return -1;
        }
        if (pause_ms)
            msleep(pause_ms);
    }
    return ver;
}

int main(int argc, char **argv)
{
    static char buf[PIECE * 16];
    char what[200];
    if (argc >= 4 && !strcmp(argv[1], "write")) {
        /* write FILE FIRST LAST [PAUSE_MS]: versions FIRST..LAST, in place */
        unsigned first = atoi(argv[3]), last = atoi(argv[4 < argc ? 4 : 3]);
        long pause = argc > 5 ? atol(argv[5]) : 0;
        for (unsigned v = first; v <= last; v++) {
            int fd = open(argv[2], O_WRONLY | O_CREAT, 0644);
            if (fd < 0) { perror(argv[2]); return 1; }
            for (unsigned h = 0; h < 2; h++) { /* two 1 MiB writes */
                for (unsigned i = 0; i < 16; i++)
                    fill(buf + (size_t)i * PIECE, v, h * 16 + i);
                if (pwrite(fd, buf, 16 * PIECE, (off_t)h * 16 * PIECE) !=
                    16 * PIECE) { perror("write"); return 1; }
            }
            if (close(fd)) { perror("close"); return 1; }
            if (pause) msleep(pause);
        }
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "loop")) {
        /* loop FILE STOPFILE PAUSE_MS: open, read all, close, until STOPFILE */
        long pause = atol(argv[4]), passes = 0, mixed = 0, errs = 0, last = -1;
        long changes = 0;
        while (access(argv[3], F_OK) != 0) {
            int fd = open(argv[2], O_RDONLY);
            if (fd < 0) { errs++; msleep(5); continue; }
            long v = pass(fd, pause, buf, what, sizeof what);
            close(fd);
            passes++;
            if (v == -1) {
                mixed++;
                if (mixed <= 5) printf("MIXED pass %ld: %s\n", passes, what);
            } else if (v == -2) {
                errs++;
            } else {
                if (last >= 0 && v != last) changes++;
                last = v;
            }
        }
        printf("loop: passes %ld mixed %ld errors %ld version changes %ld "
               "last %ld\n", passes, mixed, errs, changes, last);
        return mixed || errs ? 1 : 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "keep")) {
        /* keep FILE STOPFILE PAUSE_MS: one open, read all again and again */
        long pause = atol(argv[4]), passes = 0, bad = 0, first = -1;
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) { perror(argv[2]); return 1; }
        while (access(argv[3], F_OK) != 0 || passes < 2) {
            long v = pass(fd, 0, buf, what, sizeof what);
            passes++;
            if (v < 0) {
                bad++;
                if (bad <= 5) printf("MIXED keeper pass %ld: %s\n", passes,
                                     v == -2 ? strerror(errno) : what);
            } else if (first < 0) {
                first = v;
            } else if (v != first) {
                bad++;
                if (bad <= 5) printf("keeper pass %ld read version %ld, "
                                     "opened %ld\n", passes, v, first);
            }
            msleep(pause);
        }
        close(fd);
        printf("keep: passes %ld bad %ld pinned %ld\n", passes, bad, first);
        return bad ? 1 : 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "hold")) {
        /* hold FILE GOFILE: one open; prints the version of a pass, waits
         * for GOFILE, prints the version of another pass */
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) { perror(argv[2]); return 1; }
        long v1 = pass(fd, 0, buf, what, sizeof what);
        fflush(stdout);
        while (access(argv[3], F_OK) != 0)
            msleep(10);
        long v2 = pass(fd, 0, buf, what, sizeof what);
        close(fd);
        printf("%ld %ld\n", v1, v2);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "once")) {
        /* once FILE: prints the version one open reads (or MIXED) */
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) { perror(argv[2]); return 1; }
        long v = pass(fd, 0, buf, what, sizeof what);
        close(fd);
        if (v < 0) { printf("MIXED %s\n", what); return 1; }
        printf("%ld\n", v);
        return 0;
    }
    fprintf(stderr, "usage: vers write|loop|keep|once ...\n");
    return 2;
}
EOF
${CC:-cc} -O2 -Wall -o "$T/vers" "$T/vers.c" || fail "cannot compile the test's reader"

mesh_up a b
A=${MNT[a]} B=${MNT[b]}

# version 1 on both nodes
"$T/vers" write "$A/f.bin" 1 1
one_is() { [[ "$("$T/vers" once "$1/f.bin" 2>/dev/null)" == "$2" ]]; }
mesh_wait 30 "B to read version 1" one_is "$B" 1

# the keeper opens first (pinned to version 1, or to whatever is there)
"$T/vers" keep "$B/f.bin" "$T/stop" 20 >"$T/keep.out" 2>&1 &
keep_pid=$!
"$T/vers" loop "$B/f.bin" "$T/stop" 1 >"$T/loop.out" 2>&1 &
loop_pid=$!
sleep 0.3

LAST=41
t0=$(now_ms)
"$T/vers" write "$A/f.bin" 2 $LAST 150 # 40 versions, one every ~150 ms
log "A wrote versions 2..$LAST in $(($(now_ms) - t0)) ms"
mesh_wait 30 "B to read version $LAST" one_is "$B" $LAST
touch "$T/stop"
rc_loop=0 rc_keep=0
wait "$loop_pid" || rc_loop=$?
wait "$keep_pid" || rc_keep=$?
cat "$T/loop.out" "$T/keep.out" >&2

[[ $rc_loop -eq 0 ]] || fail "the looping reader on B read versions mixed (above)"
[[ $rc_keep -eq 0 ]] || fail "the keeper on B did not read one whole version through its open file (above)"
changes=$(sed -n 's/.*version changes \([0-9]*\).*/\1/p' "$T/loop.out")
[[ ${changes:-0} -ge 5 ]] || fail "the looping reader saw only ${changes:-0} version changes: the test did not overlap reads and new versions"

# after the last stale handle is gone, a new open (cached) reads the last
# version, and so does the one after it (the page cache holds no old pages)
check_eq "a new open after the writer stopped" $LAST "$("$T/vers" once "$B/f.bin")"
check_eq "the open after that" $LAST "$("$T/vers" once "$B/f.bin")"
log "B's reads were whole versions: $(tail -1 "$T/loop.out"); $(tail -1 "$T/keep.out")"

# local writes are seen at once through a descriptor opened before them
"$T/vers" hold "$B/f.bin" "$T/go" >"$T/hold.out" 2>&1 &
hold_pid=$!
sleep 0.3
"$T/vers" write "$B/f.bin" 500 500 # on B itself
touch "$T/go"
wait "$hold_pid" || fail "the holding reader failed: $(cat "$T/hold.out")"
check_eq "versions read through one descriptor across a rewrite on B" "$LAST 500" "$(cat "$T/hold.out")"
