#!/usr/bin/env bash
# mesh_kill9: a node killed with SIGKILL in the middle of fetching a large
# file catches up after a plain restart (DESIGN P2, P12), and never shows a
# half-fetched file (a version shows only when all its chunks are there).
# Two nodes. big.bin (5 MiB, "old") is on both. B is cut off while A
# overwrites big.bin in place with 200 MiB ("new"); the partition heals and
# B starts fetching; once B holds part of it, B's daemon is killed -9. Its
# mount answers ENOTCONN (its holder keeps it); `meshfs mount` on the same
# store and mount point takes it over; B catches up, and big.bin on B
# is byte-identical to what A wrote. All the while a reader on B checks
# that big.bin is either the whole old or the whole new content (read
# errors only while the daemon is dead).
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init kill9 300 7660
mesh_up a b
A=${MNT[a]} B=${MNT[b]}
OLD_SIZE=$((5 << 20))
NEW_SIZE=$((200 << 20))
head -c $OLD_SIZE /dev/urandom >"$T/old.src"
head -c $NEW_SIZE /dev/urandom >"$T/new.src"

cp "$T/old.src" "$A/big.bin"
printf 'small and unrelated\n' >"$A/small.txt"
mesh_wait_converged 60 a b

mesh_partition "a" "b"
t0=$(now_ms)
cp "$T/new.src" "$A/big.bin" # in place: O_TRUNC, the same inode
log "200 MiB written on A in $(($(now_ms) - t0)) ms (B cut off)"
printf 'written after big.bin\n' >"$A/after.txt"

# The reader on B: one line per look at big.bin. Each look copies the file
# with one open and sequential reads (a stat and a separate read could
# straddle the switch and pair the old size with the new content):
#   old / new   the whole old or the whole new content
#   switch      neither, and the next look shows the whole new content: the
#               version changed while we read (as a file overwritten in
#               place on a local disk can be read half old, half new)
#   error       could not read (only expected while the daemon is dead)
#   BAD ...     anything else: a half-fetched or mixed file that stays
look() { # prints old, new, error or other
    if ! cp "$B/big.bin" "$T/snap" 2>/dev/null; then
        echo error
    elif [[ $(stat -c %s "$T/snap") -eq $OLD_SIZE ]] && cmp -s "$T/snap" "$T/old.src"; then
        echo old
    elif [[ $(stat -c %s "$T/snap") -eq $NEW_SIZE ]] && cmp -s "$T/snap" "$T/new.src"; then
        echo new
    else
        echo other
    fi
}
reader() {
    local seen out=$T/seen size
    while [[ ! -e "$T/stop-reader" ]]; do
        seen=$(look)
        if [[ $seen == other ]]; then
            size=$(stat -c %s "$T/snap")
            cp "$T/snap" "$T/other.bin"
            seen=$(look)
            case $seen in
            new) # what was it? (logged: the old size with new content is
                # the kernel's cached size meeting the new version's pages)
                if [[ $size -le $NEW_SIZE ]] && cmp -s -n "$size" "$T/other.bin" "$T/new.src"; then
                    echo "switch: $size bytes, all of them the new content's first" >>"$out"
                elif [[ $size -le $OLD_SIZE ]] && cmp -s -n "$size" "$T/other.bin" "$T/old.src"; then
                    echo "switch: $size bytes, all of them the old content's first" >>"$out"
                else
                    echo "switch: $size bytes, old and new mixed" >>"$out"
                fi
                ;;
            error) echo "error (after a look at $size bytes of neither content)" >>"$out" ;;
            *) echo "BAD: $size bytes of neither the old nor the new content, then $seen" >>"$out" ;;
            esac
        fi
        echo "$seen" >>"$out"
        [[ $seen != new ]] || return 0 # complete; nothing left to watch
        sleep 0.05
    done
}
: >"$T/seen"
reader &
reader_pid=$!

c0=$(mesh_stat b | jq -r .chunks)
mesh_heal
# kill B once it holds some (>= 20 MiB) but not all of the new chunks
killed=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    js=$(mesh_stat b) || continue
    togo=$(jq -r .catchup.chunks_to_go <<<"$js")
    have=$(($(jq -r .chunks <<<"$js") - c0))
    if [[ $togo -gt 0 && $have -ge 320 ]]; then
        mesh_kill9 b
        killed="after $have chunks, $togo to go"
        break
    fi
    if [[ $(stat -c %s "$B/big.bin") -eq $NEW_SIZE ]]; then
        fail "B fetched all of big.bin before it could be killed (have $have chunks): the transfer was too fast to catch"
    fi
    sleep 0.05
done
[[ -n "$killed" ]] || fail "B never started fetching big.bin within 60 s ($(mesh_stat b | jq -c .catchup))"
log "B killed mid-transfer, $killed"

# dead mount; the store opens read-only beside it; it still shows the old
# version (or nothing of the new one)
if stat "$B" >/dev/null 2>&1; then
    fail "B's mount still answers after its daemon was killed"
fi
off=$(mfs_cmd stat --json --store "${STORE[b]}") || fail "meshfs stat --store of the killed node's store failed"
check_eq "the killed node's store is not served" false "$(jq -r .daemon <<<"$off")"

mesh_mount b
# the mount stayed in place (its holder, fs/holder.c): taken over
grep -q "took over the mount on" "${LOGF[b]}" ||
    fail "mount on the killed node's mount point did not say it took the mount over: $(tail -3 "${LOGF[b]}")"
mesh_wait_peers 30 a b
mesh_wait_converged 180 a b
touch "$T/stop-reader"
wait "$reader_pid" || true

cmp "$T/new.src" "$B/big.bin" || fail "big.bin on B differs from what A wrote"
check_eq "after.txt on B" "$(sha_str $'written after big.bin\n')" "$(sha_of "$B/after.txt")"
check_eq "small.txt on B" "$(sha_str $'small and unrelated\n')" "$(sha_of "$B/small.txt")"
bad=$(grep -c '^BAD' "$T/seen" || true)
if [[ $bad -gt 0 ]]; then
    grep '^BAD' "$T/seen" | sort | uniq -c | head >&2
    fail "B showed big.bin half-fetched $bad times (see above)"
fi
log "reader on B saw: $(cut -d' ' -f1 "$T/seen" | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')"
grep '^switch' "$T/seen" >&2 || true
grep -q '^old' "$T/seen" || fail "the reader never saw the old content (did it run?)"
grep -q '^new' "$T/seen" || fail "the reader never saw the new content"
