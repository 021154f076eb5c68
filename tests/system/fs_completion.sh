#!/usr/bin/env bash
# fs_completion: bash completion (packaging/completion/meshfs.bash, issue
# 14) completes every command `meshfs --help` lists, for each command
# exactly the flags its --help names (so that the two cannot drift), store
# directories after --store, meshfs mount points for umount (and no other
# mount), -o options, and mount.meshfs's flags and options; then the same
# for fish and zsh (packaging/completion/meshfs.fish, _meshfs) where those
# shells are installed.
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

# fish and zsh (packaging/completion/meshfs.fish, _meshfs): they read the
# commands and flags from --help as one types, with `meshfs` found on PATH
BIN=$T/bin
mkdir -p "$BIN"
ln -sf "$MESHFS" "$BIN/meshfs"
shell_check() { # NAME COMPFN
    local c want have got
    got=$($2 "meshfs ")
    missing=$(comm -23 <(echo "$cmds") <(echo "$got" | sort -u) | grep . || true)
    [[ -z $missing ]] || fail "$1: completing 'meshfs ' lacks: $(echo $missing)"
    for c in $cmds; do
        want=$("$MESHFS" "$c" --help | flags | grep -vx -e -h -e --help || true)
        have=$($2 "meshfs $c -" | sort -u | grep -vx -e -h -e --help || true)
        [[ $want == "$have" ]] || fail "$1: completing 'meshfs $c -' offers $(echo $have), its --help names $(echo $want)"
    done
    got=$($2 "meshfs mount --store $T/stores/")
    [[ $got == *"$T/stores/"* ]] || fail "$1: --store does not complete directories: $got"
    got=$($2 "meshfs umount ")
    [[ $got == *"$M"* && $got != *"/proc"* ]] || fail "$1: meshfs umount offers $got, not the meshfs mount $M alone"
    got=$($2 "meshfs mount -o tra")
    [[ $got == *"trash="* ]] || fail "$1: -o does not complete trash=: $got"
    log "$1: commands, each command's flags as --help says, --store, mount points, -o"
}
# (fish and zsh with HOME in $T: they write nothing of theirs elsewhere)
mkdir -p "$T/home"
fishcomp() { HOME=$T/home PATH=$BIN:$PATH fish -N -c 'source $argv[1]; complete -C $argv[2]' "$(dirname "$COMP")/meshfs.fish" "$1" | cut -f1; }
# zsh: the function with compadd and friends stubbed to print what they
# are given (zsh's completion system itself is not under test)
zshcomp() {
    HOME=$T/home PATH=$BIN:$PATH zsh -f -c '
        compadd() {
            local arr=0 n
            while (($#)); do
                case $1 in -a) arr=1; shift ;; -S) shift 2 ;; --) shift; break ;; *) break ;; esac
            done
            if ((arr)); then for n in "$@"; do print -l -- "${(@P)n}"; done; else print -l -- "$@"; fi
        }
        _directories() { print -l -- ${PREFIX}*(/); }
        _files() { print -l -- ${PREFIX}*; }
        words=(${(z)2})
        [[ $2 == *" " ]] && words+=("")
        CURRENT=${#words}
        PREFIX=$words[CURRENT]
        source $1' _ "$(dirname "$COMP")/_meshfs" "$1"
}
if command -v fish >/dev/null; then shell_check fish fishcomp; else log "fish is not installed: its completion not checked"; fi
if command -v zsh >/dev/null; then shell_check zsh zshcomp; else log "zsh is not installed: its completion not checked"; fi
mfs_umount "$M"
