#!/usr/bin/env bash
# mesh_kcache: the kernel caches names and attributes for a minute (issue 9:
# "long attribute and entry timeouts with invalidation on remote change"),
# and still shows at once every change it did not make itself. Two nodes;
# B has each name and attribute cached (a stat just before) when:
#  - A adds and removes a hard link of a file: the link count B shows for
#    the file's other name follows within WAIT (the store reports the
#    inode whose link count a remote link or unlink moved);
#  - A changes a file's mode: B shows the new mode;
#  - A creates a name B just looked up and did not find (a cached
#    negative entry): B finds it;
#  - B restores a file from the trash through `meshfs restore` (the
#    control socket, not the kernel) under a name it just did not find,
#    and an older version of a file whose size and pages it has cached;
#  - B removes a file that has a conflict copy (the derived view, which the
#    store now reports for local calls too, may rename what the kernel
#    did not touch): the name B had cached for the copy still leads to
#    what a fresh directory read shows under it, readable and writable;
#    and when A removes a conflict copy, its name goes on B too.
# With the timeouts at 1 s (before) all of this healed within a second;
# now a missed invalidation shows for 60 s, and WAIT (3 s) catches it.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init kcache 240 7760
WAIT=3

# within WAIT seconds, CMD... prints WANT (the kernel's caches have no
# minute-long stale answer); fails with what it printed last otherwise
shows() {
    local what=$1 want=$2 got="" deadline=$((SECONDS + WAIT))
    shift 2
    while :; do
        got=$("$@" 2>&1) || true
        [[ $got == "$want" ]] && return 0
        ((SECONDS < deadline)) || fail "$what: shows '$got' after ${WAIT}s, want '$want'"
        sleep 0.1
    done
}

mesh_up a b
A=${MNT[a]} B=${MNT[b]}
mkdir "$A/d"
printf 'f\n' >"$A/d/f"
printf 'h\n' >"$A/d/h"
mesh_wait_converged 60 a b

# hard links: B caches f's attributes, A links and unlinks another name
check_eq "B: f has one name" 1 "$(stat -c %h "$B/d/f")"
ln "$A/d/f" "$A/d/g"
mesh_wait 30 "g on B" test -e "$B/d/g"
shows "B: link count of f after A linked g" 2 stat -c %h "$B/d/f"
check_eq "B: f again, by its cached name" 2 "$(stat -c %h "$B/d/f")"
rm "$A/d/g"
mesh_wait 30 "g gone on B" test ! -e "$B/d/g"
shows "B: link count of f after A removed g" 1 stat -c %h "$B/d/f"

# a mode change
check_eq "B: mode of f" 644 "$(stat -c %a "$B/d/f")"
chmod 600 "$A/d/f"
shows "B: mode of f after A's chmod" 600 stat -c %a "$B/d/f"

# a name B looked up and did not find
[[ ! -e $B/d/new ]] || fail "d/new exists on B before A made it"
printf 'new\n' >"$A/d/new"
shows "B: d/new after A made it" "new" cat "$B/d/new"

# a restore from the trash, under a name B just did not find
rm "$A/d/h"
mesh_wait 30 "h gone on B" test ! -e "$B/d/h"
[[ ! -e $B/d/h ]] || fail "d/h still on B"
"$MESHFS" restore "$B/d/h" >/dev/null || fail "meshfs restore d/h on B failed"
check_eq "B: d/h right after the restore" "h" "$(cat "$B/d/h" 2>&1)"
shows "A: d/h after B restored it" "h" cat "$A/d/h"

# a restore of an older version of a file B has cached (attributes and
# pages): the content changes under a name the kernel keeps
printf 'k, first\n' >"$A/d/k"
mesh_wait_file 30 b d/k "$(sha_str $'k, first\n')"
printf 'k, the second and longer\n' >"$A/d/k"
mesh_wait_file 30 b d/k "$(sha_str $'k, the second and longer\n')"
check_eq "B: size of k" 25 "$(stat -c %s "$B/d/k")"
"$MESHFS" restore "$B/d/k" --version 1 >/dev/null || fail "meshfs restore d/k --version 1 on B failed"
check_eq "B: size of k right after restoring the first version" 9 "$(stat -c %s "$B/d/k")"
check_eq "B: k right after restoring the first version" "k, first" "$(cat "$B/d/k")"

# a conflict copy that becomes a file of its own when B removes the file
printf 'base\n' >"$A/d/doc.txt"
mesh_wait_converged 60 a b
mesh_partition "a" "b"
printf 'edited on A\n' >"$A/d/doc.txt"
sleep 1.1 # B's edit is the newer one by the clocks (one machine)
printf 'edited on B\n' >"$B/d/doc.txt"
mesh_heal
mesh_wait_converged 90 a b
copy=$(mesh_conflict_names b d doc .txt)
[[ -n $copy && $copy != *$'\n'* ]] || fail "expected one conflict copy of doc.txt on B, found: $(ls -A "$B/d" | tr '\n' ' ')"
check_eq "B: the copy holds A's edit" "edited on A" "$(cat "$B/d/$copy")"
ino_copy=$(stat -c %i "$B/d/$copy") # cached: the copy's own inode number
log "B before: $(python3 -c 'import os, sys
print(*sorted((e.name, e.inode()) for e in os.scandir(sys.argv[1])))' "$B/d")"
rm "$B/d/doc.txt"
log "B after: $(python3 -c 'import os, sys
print(*sorted((e.name, e.inode()) for e in os.scandir(sys.argv[1])))' "$B/d")"
# what the store shows under the copy's name now: a directory read's d_ino
# (no stat, so not through the cached name)
ino_now=$(python3 -c 'import os, sys
print(*[e.inode() for e in os.scandir(sys.argv[1]) if e.name == sys.argv[2]])' "$B/d" "$copy")
[[ -n $ino_now ]] || fail "the copy's name is gone on B after removing doc.txt: $(ls -A "$B/d" | tr '\n' ' ')"
log "B: $copy was inode $ino_copy, now $ino_now"
shows "B: the inode behind the cached name $copy" "$ino_now" stat -c %i "$B/d/$copy"
shows "B: reading $copy" "edited on A" cat "$B/d/$copy"
printf 'appended on B\n' >>"$B/d/$copy" || fail "B cannot write the file the copy became"
shows "A: the file the copy became, written on B" $'edited on A\nappended on B' cat "$A/d/$copy"

# a second conflict; A removes its copy, whose name B has cached: the
# directory is written anew (rename_dir), and the name that went is
# reported (before, only the names written were, and the copy's name
# stayed on B for the whole minute)
mesh_partition "a" "b"
printf 'second on A\n' >"$A/d/f"
sleep 1.1
printf 'second on B\n' >"$B/d/f"
mesh_heal
mesh_wait_converged 90 a b
copy2=$(mesh_conflict_names a d f "")
[[ -n $copy2 && $copy2 != *$'\n'* ]] || fail "expected one conflict copy of f on A, found: $(ls -A "$A/d" | tr '\n' ' ')"
check_eq "B: the copy of f, cached" "second on A" "$(cat "$B/d/$copy2")"
rm "$A/d/$copy2"
mesh_wait 30 "copy of f gone on A" test ! -e "$A/d/$copy2"
shows "B: the copy of f after A removed it" "gone" bash -c '[[ -e $1 ]] && echo here || echo gone' _ "$B/d/$copy2"

log "ok"
