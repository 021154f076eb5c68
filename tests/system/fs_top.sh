#!/usr/bin/env bash
# fs_top: `meshfs top` (issue 15) on a terminal and off one.
#
# Under tmux (a private server; a shell in an 80x24 pane): top draws the
# node and the members' table on the alternate screen, a later frame shows
# files written to the mount, a resize redraws at once for the new size
# (the footer on the last row, the title as wide as the pane, the columns
# the width has room for, nothing of the old layout left), and q, Ctrl-C
# and SIGTERM each leave the terminal as it was: main screen (the shell's
# earlier output back), cursor shown, the same termios (stty -g); Ctrl-Z
# gives the terminal back while stopped and fg takes it again. While the
# daemon is down top says so, and it shows the node again once the daemon
# is back. Piped, it prints plain blocks without an escape byte.
#
# Against a canned daemon (python3 answering "stat" on a control socket):
# the catch-up bar advances, snapshot and `meshfs sync` bars show, 30
# members and 150 conflicts are cut to 80x24 with "... N more" (and all
# listed when piped), and a conflict's name holding an escape sequence is
# shown with '?' for its control bytes instead of reaching the terminal.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_top 300
[[ $MFS_BACKEND == meshfs ]] || skip "meshfs top is meshfs's"
command -v tmux >/dev/null || skip "tmux is not installed"
command -v python3 >/dev/null || fail "python3 missing (the canned daemon)"
cli_home

TMUX_SOCK=mfs-top-$$
FAKE_PID=""
tm() { tmux -L "$TMUX_SOCK" -f /dev/null "$@"; }
top_exit() {
    local rc=$?
    set +e
    tm kill-server 2>/dev/null
    [[ -z $FAKE_PID ]] || kill "$FAKE_PID" 2>/dev/null
    (exit "$rc")
    lib_cleanup
}
trap top_exit EXIT

mfs_up
NODE=$("$MESHFS" stat --store "$STORE" | awk '$1 == "node" { print $2 }')
[[ $NODE =~ ^[0-9a-f]{16}$ ]] || fail "no node id from meshfs stat: $NODE"

# the pane: an interactive shell in $T, its prompt "$ "
tm new-session -d -s top -x 80 -y 24 -c "$T" -e 'PS1=$ ' bash --norc --noprofile -i
cap() { tm capture-pane -p -t top; }
# shellcheck disable=SC2034 # read by lib.sh's wait_until on a timeout
WAIT_DUMP=cap
has() { cap | grep -qF -- "$1"; }
fmt() { tm display -p -t top "$1"; }
type_line() {
    tm send-keys -t top -l "$1"
    tm send-keys -t top Enter
}
type_line "stty -g >$T/stty.before"
wait_until 10 "the pane's shell to run a command" test -s "$T/stty.before"

RUN=0
# top_start ARGS: meshfs top ARGS in the pane, after a marker line; waits
# until it drew WANT (default: this node's id) on the alternate screen
top_start() {
    RUN=$((RUN + 1))
    type_line "echo MARK-$RUN; $MESHFS top $*; echo TOP-EXIT-$RUN=\$?"
    wait_until 15 "meshfs top $* to draw" has "${WANT:-node $NODE}"
    check_eq "alternate screen while meshfs top $* runs" 1 "$(fmt '#{alternate_on}')"
}
exited() { cap | grep -qx "TOP-EXIT-$RUN=[0-9]*"; }
# top_check_restored HOW: top exited 0 and the terminal is as it was
top_check_restored() {
    wait_until 10 "meshfs top to exit after $1" exited
    check_eq "exit status after $1" "TOP-EXIT-$RUN=0" "$(cap | grep -x "TOP-EXIT-$RUN=[0-9]*")"
    check_eq "alternate screen after $1" 0 "$(fmt '#{alternate_on}')"
    check_eq "cursor shown after $1" 1 "$(fmt '#{cursor_flag}')"
    cap | grep -qx "MARK-$RUN" || fail "after $1 the shell's output before top is not on the screen: $(cap)"
    rm -f "$T/stty.after"
    type_line "stty -g >$T/stty.after"
    wait_until 10 "stty -g after $1" test -s "$T/stty.after"
    check_eq "the terminal's settings (stty -g) after $1" "$(cat "$T/stty.before")" "$(cat "$T/stty.after")"
    type_line "clear"
    wait_until 10 "the pane to clear" eval '! cap | grep -q TOP-EXIT'
}

# layout W H: the frame is redrawn for a W x H pane
layout() {
    local w=$1 h=$2 s head
    s=$(cap)
    [[ $(printf '%s\n' "$s" | wc -l) -eq $h ]] || return 1
    [[ $(printf '%s\n' "$s" | sed -n "${h}p") == " q quit"* ]] || return 1
    [[ $(printf '%s\n' "$s" | grep -c "q quit") -eq 1 ]] || return 1
    [[ $(printf '%s\n' "$s" | grep -c "^meshfs top ") -eq 1 ]] || return 1
    [[ $(printf '%s\n' "$s" | head -1 | wc -L) -eq $w ]] || return 1
    head=$(printf '%s\n' "$s" | grep "^NODE ") || return 1
    case $w in
    100) [[ $head == *ADDRESS* && $head == *CLOCK* ]] ;;
    80) [[ $head != *ADDRESS* && $head == *RTT* && $head == *CLOCK* ]] ;;
    60) [[ $head != *CLOCK* && $head != *RTT* && $head == *"SEND/s"*"WE LACK" ]] ;;
    esac
}
files_shown() { cap | awk '$1 == "files" { print $2 }'; }
drawn_again() { has "node $NODE" && [[ $(fmt '#{alternate_on}') == 1 ]]; }
at_prompt() { [[ $(fmt '#{alternate_on}') == 0 ]] && cap | grep -qx '\$ *'; }
shows_files() { [[ $(files_shown) == "$1" ]]; }

# ---- draws, updates, resizes, q
top_start "$M"
wait_until 10 "the first frame at 80x24" layout 80 24
has "mount     $M" || fail "no mount line: $(cap)"
has "(no other member known yet)" || fail "no members' table: $(cap)"
check_eq "files shown at first" 0 "$(files_shown)"
for i in 1 2 3 4 5 6 7; do echo "$i" >"$M/f$i"; done
wait_until 15 "a later frame to show the 7 new files" shows_files 7
tm resize-window -t top -x 100 -y 30
wait_until 5 "a redraw at 100x30" layout 100 30
tm resize-window -t top -x 60 -y 20
wait_until 5 "a redraw at 60x20" layout 60 20
cap | grep -q ADDRESS && fail "a row of the 100-column layout is left at 60x20: $(cap)"
tm resize-window -t top -x 80 -y 24
wait_until 5 "a redraw at 80x24" layout 80 24
tm send-keys -t top q
top_check_restored q
log "draws, follows the mount, redraws at 100x30, 60x20 and 80x24; q restores"

# ---- Ctrl-C, SIGTERM, Ctrl-Z
top_start "$M"
tm send-keys -t top C-c
top_check_restored Ctrl-C
top_start --store "$STORE"
shell=$(fmt '#{pane_pid}')
pid=$(pgrep -P "$shell" -x meshfs) || fail "no meshfs top under the pane's shell $shell"
kill -TERM "$pid"
top_check_restored SIGTERM
top_start "$M"
tm send-keys -t top C-z
wait_until 10 "meshfs top to stop on Ctrl-Z" has "Stopped"
check_eq "alternate screen while stopped" 0 "$(fmt '#{alternate_on}')"
check_eq "cursor shown while stopped" 1 "$(fmt '#{cursor_flag}')"
rm -f "$T/stty.after"
type_line "stty -g >$T/stty.after"
wait_until 10 "stty -g while stopped" test -s "$T/stty.after"
check_eq "the terminal's settings while stopped" "$(cat "$T/stty.before")" "$(cat "$T/stty.after")"
type_line "fg"
wait_until 10 "meshfs top to draw again after fg" drawn_again
tm send-keys -t top q
wait_until 10 "meshfs top to exit after fg and q" at_prompt
check_eq "cursor shown after fg and q" 1 "$(fmt '#{cursor_flag}')"
rm -f "$T/stty.after"
type_line "stty -g >$T/stty.after"
wait_until 10 "stty -g after fg and q" test -s "$T/stty.after"
check_eq "the terminal's settings after fg and q" "$(cat "$T/stty.before")" "$(cat "$T/stty.after")"
type_line "clear"
log "Ctrl-C and SIGTERM restore the terminal; Ctrl-Z gives it back and fg takes it again"

# ---- the daemon goes away and comes back
top_start --store "$STORE"
mfs_umount "$M"
wait_until 15 "top to show the daemon is not running" has "not running"
has "no daemon" || fail "the title does not say there is no daemon: $(cap)"
mfs_mount "$STORE" "$M"
wait_until 15 "top to show the node again" has "node $NODE"
tm send-keys -t top q
top_check_restored "q after the daemon came back"
log "a daemon that is down is shown as such, and picked up again"

# ---- piped: plain blocks
timeout -k 5 30 "$MESHFS" top --count 2 "$M" | cat >"$T/plain"
check_eq "plain blocks" 2 "$(grep -c "^meshfs top  node $NODE " "$T/plain")"
grep -q $'\033' "$T/plain" && fail "escape bytes in the plain output: $(cat -v "$T/plain")"
grep -q '^files  *7 ' "$T/plain" || fail "the plain blocks do not show the files: $(cat "$T/plain")"
timeout -k 5 30 "$MESHFS" top --count 2 --store "$T/nostore" | cat >"$T/plain"
check_eq "plain blocks without a daemon" 2 "$(grep -c "not running" "$T/plain")"
log "piped: $(wc -l <"$T/plain") lines, plain, no escape bytes"

# ---- a canned daemon: bars, long lists, a hostile name
FAKE=$T/fake
mkdir -p "$FAKE"
python3 - "$FAKE" <<'EOF' &
import os, socket, sys
d = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(d + "/control.sock")
s.listen(8)
k = 0
while True:
    c, _ = s.accept()
    c.recv(4096)
    ops = max(0, 1000 - 100 * k)
    out = ["node 00000000000000aa", "store " + d, "mount /nowhere",
           "pid 1", "files 12", "dirs 3", "bytes 4096", "conflicts 150",
           "dirty_files 0", "listen 127.0.0.1:7410", "live_peers 30",
           "repl_in_sync 0",
           "catchup 1 %d 10 %d 100.0 1048576.0 %d" % (ops, ops << 20, ops * 10),
           "snapshot 1 00000000000000bb 3145728 10485760 0 0 0",
           "clock in-step 0 0 500 30 0",
           "collect 3 0 0 0 0 0 42 00000000000000bb 10 0 0 604800000 0 0 0 0 0 0",
           "collect_held_by 00000000000000bb 0 1 300000",
           "sync_job 77 1 3 2000 60000", "sync_job 78 0 3 1000 60000"]
    for i in range(30):
        out.append("peer %016x 127.0.0.%d:7410 alive 1500 0.0100 0.0000 100 1 "
                   "%d 0 0 0 5 0 0 5000 100 1 %d %d 0 0 0 0 0 0"
                   % ((0x9e3779b97f4a7c15 * (i + 1)) & (2**64 - 1), i + 2, i,
                      1000 * k * (i + 1), 2000 * k * (i + 1)))
    out.append("conflict_path /evil\x1b[31mRED\x07.conflict")
    for i in range(99):
        out.append("conflict_path /docs/report-%02d.conflict-00000000000000bb" % i)
    c.sendall(("\n".join(out) + "\nok\n").encode())
    c.close()
    k += 1
EOF
FAKE_PID=$!
wait_until 10 "the canned daemon's socket" test -S "$FAKE/control.sock"
WANT="node 00000000000000aa" top_start --store "$FAKE"
wait_until 10 "the canned frame at 80x24" layout 80 24
catchup_pct() { cap | sed -n 's/^catch-up  \[[#.]*\] *\([0-9]*\)%.*/\1/p'; }
catchup_past() { local p; p=$(catchup_pct) && [[ -n $p && $p -ge $1 ]]; }
wait_until 10 "the catch-up bar to advance" catchup_past 20
has "ETA" || fail "the catch-up bar has no ETA: $(cap)"
has "snapshot  [" || fail "no snapshot bar: $(cap)"
check_eq "sync wait bars" 2 "$(cap | grep -c '^sync wait \[')"
has "held back by 00000000000000bb: offline for 5 min" || fail "collection's holder not shown: $(cap)"
cap | grep -qE '^\.\.\. [0-9]+ more$' || fail "the members' table is not cut with '... N more': $(cap)"
cap | grep -qE '^  \.\.\. [0-9]+ more$' || fail "the conflicts are not cut with '... N more': $(cap)"
has "CONFLICTS (150)" || fail "no conflicts header: $(cap)"
has "/evil?[31mRED?.conflict" || fail "the name with control bytes is not shown harmless: $(cap)"
tm send-keys -t top q
top_check_restored "q (canned daemon)"
timeout -k 5 30 "$MESHFS" top --count 1 --store "$FAKE" | cat >"$T/plain"
check_eq "members listed when piped" 30 "$(grep -cE '^[0-9a-f]{16} +127\.0\.0\.[0-9]+:7410 +alive ' "$T/plain")"
check_eq "conflicts listed when piped (and the rest counted)" 100 "$(grep -c '^  /' "$T/plain")"
grep -q '^  \.\.\. 50 more$' "$T/plain" || fail "piped: the conflicts not listed are not counted: $(cat "$T/plain")"
grep -q $'[\033\007]' "$T/plain" && fail "control bytes in the plain output: $(cat -v "$T/plain")"
log "canned daemon: bars, lists cut to 80x24 and whole when piped, control bytes shown as '?'"
mfs_umount "$M"
