#!/usr/bin/env bash
# fs_completion: bash completion (packaging/completion/meshfs.bash, issue
# 14) completes every command `meshfs --help` lists, for each command
# exactly the flags its --help names (so that the two cannot drift), store
# directories after --store, meshfs mount points for umount (and no other
# mount), -o options, and mount.meshfs's flags and options.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_completion 120
[[ $MFS_BACKEND == meshfs ]] || skip "the completion is meshfs's"
BC=/usr/share/bash-completion/bash_completion
[[ -r $BC ]] || skip "bash-completion is not installed"
COMP=$(cd "$(dirname "$0")/../../packaging/completion" && pwd)/meshfs.bash
mfs_up
mkdir -p "$T/stores/alpha" "$T/stores/beta"

# comp LINE: what completing at the end of LINE offers, one per line
comp() {
    bash -c '
        . "$1" >/dev/null 2>&1; . "$2"
        read -r -a COMP_WORDS <<<"$3"
        [[ $3 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE=$3; COMP_POINT=${#3}
        f=$(complete -p "${COMP_WORDS[0]}" | sed -n "s/.*-F \([^ ]*\).*/\1/p")
        "$f" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' _ "$BC" "$COMP" "$1" | sort -u
}
flags() { grep -oE '(^|[][ |(*])--?[a-z][a-z-]*' | grep -oE -- '--?[a-z][a-z-]*' | sort -u; }

cmds=$("$MESHFS" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } /^$/ { on = 0 }' | sort -u)
got=$(comp "meshfs ")
missing=$(comm -23 <(echo "$cmds") <(echo "$got") | grep . || true)
[[ -z $missing ]] || fail "completing 'meshfs ' lacks: $(echo $missing)"
for c in $cmds; do
    want=$("$MESHFS" "$c" --help | flags | grep -vx -e -h -e --help || true)
    # trash's help names mount's -o (the trash period): not a flag of its own
    [[ $c == trash ]] && want=$(echo "$want" | grep -vx -- -o || true)
    have=$(comp "meshfs $c -" | grep -vx -e -h -e --help || true)
    [[ $want == "$have" ]] || fail "completing 'meshfs $c -' offers $(echo $have), its --help names $(echo $want)"
done
log "commands and each command's flags: as --help says"

got=$(comp "meshfs mount --store $T/stores/")
[[ $got == *"$T/stores/alpha"* && $got == *"$T/stores/beta"* ]] || fail "--store does not complete directories: $got"
got=$(comp "meshfs umount ")
[[ $got == *"$M"* ]] || fail "meshfs umount does not offer the meshfs mount $M: $got"
[[ $got != *"/proc"* && $got != *"/sys"* ]] || fail "meshfs umount offers mounts that are not meshfs: $got"
got=$(comp "meshfs mount -o tra")
[[ $got == *"trash="* ]] || fail "-o does not complete trash=: $got"
got=$(comp "mount.meshfs $T/stores/alpha $M -")
for f in -o -f -n -v -s -r; do [[ $got == *"$f"* ]] || fail "mount.meshfs does not complete $f: $got"; done
got=$(comp "mount.meshfs $T/stores/alpha $M -o lis")
[[ $got == *"listen="* ]] || fail "mount.meshfs -o does not complete listen=: $got"
log "store directories, meshfs mount points, -o options, mount.meshfs"
mfs_umount "$M"
