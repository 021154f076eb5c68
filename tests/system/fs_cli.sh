#!/usr/bin/env bash
# fs_cli: the meshfs command's contract on bad input: exit 2 and one line
# "meshfs: <what>: <token>" for usage errors, exit 1 and one line for runtime
# failures (missing, busy or non-empty mount point, a store mounted twice, a
# garbage store, no /dev/fuse, busy umount), and in every case nothing
# changed: no store created, no store file touched, nothing mounted. Also
# --version, --help, stat with and without the daemon, and a mount point
# left behind by a kill -9 taken over by a plain `meshfs mount`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_cli 300
[[ $MFS_BACKEND == meshfs ]] || skip "fs_cli tests the meshfs command only"

cli_home # (lib.sh)

# expect_err CODE TOKEN ARGS...: exit CODE, exactly one stderr line
# "meshfs: ...", ending in ": TOKEN" when TOKEN is given. A wrong message is
# recorded and the test goes on (the exit code must be right to go on); all
# recorded problems fail the test at the end.
: >"$T/problems"
problem() { log "PROBLEM: $*"; echo "$*" >>"$T/problems"; }
CLI_PROBLEM=problem # expect_err (lib.sh) records and goes on

# the store's content: every file but LMDB's lock file (its reader table
# changes whenever anyone opens the store, even to read it) and store.lock
store_sum() {
    (cd "$1" && find . -type f ! -name lock.mdb ! -name store.lock -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum
}
json_get() { # json_get FILE PATH: a value from a JSON file (sqlite3's JSON1)
    sqlite3 :memory: "SELECT json_extract(CAST(readfile('$1') AS TEXT), '$2');"
}
json_valid() { [[ $(sqlite3 :memory: "SELECT json_valid(CAST(readfile('$1') AS TEXT));") == 1 ]]; }

log "--version and --help"
run_cli --version
check_eq "meshfs --version exit" 0 "$RC"
check_eq "meshfs --version" "meshfs 0.1.0" "$OUT"
run_cli --help
check_eq "meshfs --help exit" 0 "$RC"
[[ $OUT == *Usage* || $OUT == *usage* ]] || fail "meshfs --help prints no usage: $OUT"
for c in init mount umount stat; do
    run_cli "$c" --help
    check_eq "meshfs $c --help exit" 0 "$RC"
    [[ $OUT == *"meshfs $c"* ]] || fail "meshfs $c --help does not describe '$c': $OUT"
done

log "usage errors: exit 2, one line naming the token, nothing created"
run_cli
check_eq "meshfs without arguments exit" 2 "$RC"
expect_err 2 frobnicate frobnicate
expect_err 2 --bogus --bogus
expect_err 2 --bogus init --bogus --store "$T/s-usage"
expect_err 2 --store init --store
expect_err 2 --bogus mount --store "$T/s-usage" --bogus "$T"
expect_err 2 "" mount --store "$T/s-usage"
expect_err 2 "" mount --store "$T/s-usage" "$T/a" "$T/b"
expect_err 2 -o mount --store "$T/s-usage" -o
expect_err 2 "" umount
expect_err 2 --frob stat --json --frob
expect_err 2 --json init --json --store "$T/s-usage"
[[ ! -e "$T/s-usage" ]] || fail "a usage error created the store $T/s-usage"
[[ ! -e "$T/xdg" ]] || fail "a usage error created the default store: $(find "$T/xdg" | head -3)"

log "init; init again refuses and changes nothing"
S=$T/s1
run_cli init --store "$S"
check_eq "init exit" 0 "$RC"
[[ -f "$S/data.mdb" ]] || fail "init made no $S/data.mdb: $(ls -la "$S")"
sum=$(store_sum "$S")
expect_err 1 "" init --store "$S"
check_eq "store after a refused init" "$sum" "$(store_sum "$S")"

log "stat without a daemon"
run_cli stat --store "$S" --json
check_eq "stat --store --json exit (no daemon): $ERR" 0 "$RC"
printf '%s' "$OUT" >"$T/stat0.json"
json_valid "$T/stat0.json" || fail "stat --json is not JSON: $OUT"
for k in files dirs bytes ops conflicts; do
    [[ -n "$(json_get "$T/stat0.json" "\$.$k")" ]] || fail "stat --json has no '$k': $OUT"
done
run_cli stat --store "$S"
check_eq "stat --store exit (no daemon)" 0 "$RC"
expect_err 1 "" stat --store "$T/no-such-store"
[[ ! -e "$T/no-such-store" ]] || fail "stat created $T/no-such-store"

log "mount errors: exit 1, one line, nothing mounted, store untouched"
M=$T/m1
mkdir "$M"
expect_err 1 "" mount --store "$S" "$T/missing-mnt"
[[ ! -e "$T/missing-mnt" ]] || fail "mount created the missing mount point"
: >"$T/a-file"
expect_err 1 "" mount --store "$S" "$T/a-file"
mkdir "$T/full" && : >"$T/full/x"
expect_err 1 "" mount --store "$S" "$T/full"
! is_mounted "$T/full" || fail "mounted over a non-empty dir without -o nonempty"
check_eq "store after refused mounts" "$sum" "$(store_sum "$S")"
mkdir "$T/garbage" && head -c 65536 /dev/urandom >"$T/garbage/data.mdb"
gsum=$(store_sum "$T/garbage")
mkdir "$T/mg"
expect_err 1 "" mount --store "$T/garbage" "$T/mg"
! is_mounted "$T/mg" || fail "a garbage store was mounted"
check_eq "garbage store after a refused mount" "$gsum" "$(store_sum "$T/garbage")"
expect_err 1 "" stat --store "$T/garbage"
check_eq "garbage store after stat" "$gsum" "$(store_sum "$T/garbage")"
if command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null; then
    # a store of another format version: meta/"format" (big-endian u32) = 99
    run_cli init --store "$T/s-v99"
    check_eq "init s-v99" 0 "$RC"
    mdb_dump -s meta "$T/s-v99" >"$T/meta.dump"
    grep -qx ' 666f726d6174' "$T/meta.dump" || fail "no 'format' key in the store's meta table (test needs updating)"
    awk 'prev == " 666f726d6174" { print " 00000063"; prev = ""; next } { print; prev = $0 }' \
        "$T/meta.dump" >"$T/meta.v99"
    mdb_load -s meta "$T/s-v99" <"$T/meta.v99" 2>/dev/null
    vsum=$(store_sum "$T/s-v99")
    mkdir "$T/mv99"
    expect_err 1 "" mount --store "$T/s-v99" "$T/mv99"
    ! is_mounted "$T/mv99" || fail "a store of format 99 was mounted"
    [[ $ERR == *version* || $ERR == *format* ]] || problem "mount of a format-99 store does not name the version: $ERR"
    expect_err 1 "" stat --store "$T/s-v99"
    check_eq "format-99 store untouched" "$vsum" "$(store_sum "$T/s-v99")"
else
    log "mdb_dump/mdb_load (lmdb-utils) missing: the other-version store is not checked"
fi
if command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
    # a private mount namespace whose /dev has no fuse device
    mkdir "$T/mnofuse"
    rc=0
    unshare -m --propagation private bash -c '
        set -e
        mount -t tmpfs none /dev
        mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5
        mknod -m 444 /dev/urandom c 1 9; mknod -m 444 /dev/random c 1 8
        exec "$1" mount --store "$2" "$3" 2>"$4"' sh "$MESHFS" "$T/s-nofuse" "$T/mnofuse" "$T/err" || rc=$?
    check_eq "mount without /dev/fuse exit ($(cat "$T/err"))" 1 "$rc"
    check_eq "stderr lines without /dev/fuse" 1 "$(grep -c '' "$T/err")"
    [[ ! -e "$T/s-nofuse/data.mdb" ]] || fail "mount without /dev/fuse created a store"
else
    log "unshare -m unavailable: the no-/dev/fuse case is not checked"
fi

log "mount; busy mount point; store mounted twice; init over a mounted store"
mfs_mount "$S" "$M"
printf 'hello\n' >"$M/f1"
S2=$T/s2
run_cli init --store "$S2"
check_eq "init s2" 0 "$RC"
sum2=$(store_sum "$S2")
expect_err 1 "" mount --store "$S2" "$M"
check_eq "mounts on $M after a refused second mount" 1 "$(awk -v m="$M" '$2 == m' /proc/mounts | wc -l)"
check_eq "the first store still serves $M" "hello" "$(cat "$M/f1")"
check_eq "s2 untouched" "$sum2" "$(store_sum "$S2")"
mkdir "$T/m2"
expect_err 1 "" mount --store "$S" "$T/m2"
! is_mounted "$T/m2" || fail "one store mounted twice"
expect_err 1 "" init --store "$S"

log "stat with the daemon: counts follow the tree"
run_cli stat --store "$S" --json
check_eq "stat --json exit: $ERR" 0 "$RC"
printf '%s' "$OUT" >"$T/stat1.json"
json_valid "$T/stat1.json" || fail "stat --json is not JSON: $OUT"
mkdir -p "$M/d1/d2"
printf '1234567890' >"$M/d1/a"
printf '12345678901234567890' >"$M/d1/d2/b"
sync "$M/d1/d2/b"
run_cli stat --json "$M"
check_eq "stat MOUNTPOINT --json exit: $ERR" 0 "$RC"
printf '%s' "$OUT" >"$T/stat2.json"
json_valid "$T/stat2.json" || fail "stat MOUNTPOINT --json is not JSON: $OUT"
for k in files:2 dirs:2 bytes:30; do
    key=${k%%:*} d=${k#*:}
    before=$(json_get "$T/stat1.json" "\$.$key") after=$(json_get "$T/stat2.json" "\$.$key")
    check_eq "stat: $key after adding $d" "$((before + d))" "$after"
done
# ops in the log plus those folded out of it (a single-node mesh folds
# them as soon as the collector runs, so the log alone may stay at 0)
ops1=$(($(json_get "$T/stat1.json" '$.ops') + $(json_get "$T/stat1.json" '$.ops_folded')))
ops2=$(($(json_get "$T/stat2.json" '$.ops') + $(json_get "$T/stat2.json" '$.ops_folded')))
((ops2 > ops1)) ||
    fail "stat: ops did not grow: $(cat "$T/stat1.json") -> $(cat "$T/stat2.json")"
run_cli stat "$M/d1/a"
check_eq "stat FILE exit: $ERR" 0 "$RC"
ino=$(stat -c %i "$M/d1/a")
[[ $OUT == *"$ino"* ]] || fail "stat FILE does not show inode $ino: $OUT"
run_cli stat --json "$M/d1/a"
printf '%s' "$OUT" >"$T/stat3.json"
json_valid "$T/stat3.json" || fail "stat FILE --json is not JSON: $OUT"
check_eq "stat FILE --json ino" "$ino" "$(json_get "$T/stat3.json" '$.ino')"
expect_err 1 "" stat "$M/no-such-file"
expect_err 1 "" stat /etc/hostname

log "umount errors: not a mount, missing, busy (changes nothing)"
expect_err 1 "" umount "$T/m2"
expect_err 1 "" umount "$T/nowhere"
exec 9<"$M/f1"
expect_err 1 "" umount "$M"
is_mounted "$M" || fail "a refused (busy) umount unmounted $M"
check_eq "still served after a refused umount" "hello" "$(cat "$M/f1")"
exec 9<&-
mfs_umount "$M"
run_cli stat --store "$S" --json
check_eq "stat after umount: $ERR" 0 "$RC"
printf '%s' "$OUT" >"$T/stat4.json"
for key in files dirs bytes; do
    check_eq "stat $key after umount" "$(json_get "$T/stat2.json" "\$.$key")" "$(json_get "$T/stat4.json" "\$.$key")"
done

log "-o nonempty mounts over a non-empty dir"
mfs_mount "$S" "$T/full" nonempty
check_eq "content through a nonempty mount" "hello" "$(cat "$T/full/f1")"
mfs_umount "$T/full"
[[ -e "$T/full/x" ]] || fail "the hidden file under a nonempty mount is gone"

log "kill -9, then stat and a plain mount on the dead mount point"
mfs_mount "$S" "$M"
mfs_kill9 "$M"
run_cli stat --store "$S"
check_eq "stat --store after kill -9: $ERR" 0 "$RC"
mfs_mount "$S" "$M"
check_eq "content after kill -9 and mount" "hello" "$(cat "$M/f1")"
check_eq "fsync'd content after kill -9 and mount" "12345678901234567890" "$(cat "$M/d1/d2/b")"
mfs_umount "$M"

log "mesh flags: a bad address is a usage error, a taken one a clear failure"
expect_err 2 nothere mount --store "$S" --listen nothere "$M"
expect_err 2 1.2.3.4:99999 mount --store "$S" --peer 1.2.3.4:99999 "$M"
expect_err 2 --listen mount --store "$S" "$M" --listen
! is_mounted "$M" || fail "a refused mount left $M mounted"
S2=$T/s-listen
mfs_cmd init --store "$S2" >/dev/null
port=$((20000 + RANDOM % 20000))
mount_register "$M" "$S"
run_cli mount --store "$S" --listen "127.0.0.1:$port" "$M"
check_eq "mount --listen 127.0.0.1:$port: $ERR" 0 "$RC"
mkdir -p "$T/m2"
expect_err 1 "" mount --store "$S2" --listen "127.0.0.1:$port" "$T/m2"
[[ $ERR == *"Address already in use"* ]] || problem "taken listen address, got: $ERR"
! is_mounted "$T/m2" || fail "a mount whose listen address is taken left $T/m2 mounted"
run_cli stat --json "$M"
[[ $OUT == *"\"listen\":\"127.0.0.1:$port\""* ]] || problem "stat does not show the listen address: $OUT"
mfs_umount "$M"
[[ ! -s "$T/problems" ]] || fail "$(wc -l <"$T/problems") message problems: $(tr '\n' ';' <"$T/problems")"
