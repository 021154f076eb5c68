#!/usr/bin/env bash
# mesh_page: the daemon's status page (issue 15) in a real browser. Two
# nodes; A serves HTTP (`--http 127.0.0.1:PORT`) in the test's namespace,
# where headless Chromium runs too, driven through chromedriver by
# webdriver.py (W3C WebDriver, Python standard library only).
#  - Without the store's token, or with a wrong one (in the address or as
#    a bearer token), /, /status.json, /metrics and /history.json answer
#    401; with it 200, and /status.json is `meshfs stat --json`'s document.
#  - The address `meshfs stat --url` prints opens the page; the token is
#    gone from the address bar; no console error or warning (the capture
#    is proved first: a console.error and a console.warn the test injects
#    must come back).
#  - The mesh picture shows both nodes; B is alive and green. After a
#    partition of an idle link (nothing written for 3 s before: unwatched,
#    an idle link declares a silent peer dead only after 41 s; the page's
#    polls keep the links lively, docs/STATUS.md "Watching") B turns red
#    (dead) within 10 s; after the heal green again within 10 s. Both times
#    are logged.
#  - The charts draw ops/s and bytes/s of B from /history.json; the page
#    fits a narrow window; when A's daemon goes away the page says so and
#    throws nothing (the browser's own "failed to load" lines for its
#    fetches are the only console lines allowed then).
# Screenshots (under CTest: build/artifacts, tests/mesh.cmake):
# ${MESHFS_ARTIFACTS:-$T}/status-page.png (1280x800, healthy),
# status-page-full.png (the whole page), status-page-narrow.png (420 px)
# and status-page-offline.png (A's daemon gone) beside it. Without
# MESHFS_ARTIFACTS they go with $T when the test ends (KEEP_TMP=1 keeps
# $T of a failed run).
# Skips (77) without chromium, chromedriver, python3 or curl.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init page 240 7780

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
[[ -x $CHROMIUM ]] || skip "no Chromium at $CHROMIUM (apt-get install chromium chromium-driver)"
[[ -x $CHROMEDRIVER ]] || skip "no chromedriver at $CHROMEDRIVER (apt-get install chromium-driver)"
for t in python3 curl; do
    command -v "$t" >/dev/null || skip "$t is not installed"
done
export CHROMIUM
HTTP=127.0.0.1:$((MESH_PORT + 1)) # A's status page, inside the namespace
WD_PORT=$((MESH_PORT + 2))        # chromedriver, inside the namespace
PROFILE=$T/chromium-profile
ART=${MESHFS_ARTIFACTS:-$T}
mkdir -p "$ART"

# ns CMD...: CMD in the test's network namespace (where the daemons are)
ns() { nsenter --net="/run/netns/$MESH_NS" "$@"; }
wd() { ns python3 "$LIB_DIR/webdriver.py" --driver "http://127.0.0.1:$WD_PORT" --session "$T/wd.session" "$@"; }

# page_cleanup: the browser session ends (Chromium exits), then the driver;
# whatever is still a driver or browser process of this test (its command
# line names a path under $T: the driver's log, the browser's profile, its
# crash handler's database under HOME=$T/home) is killed by pid. Runs
# first on every exit path, then mesh_cleanup.
DRIVER_PID=""
page_cleanup() {
    local p i args exe
    if [[ -n $DRIVER_PID ]] && pid_alive "$DRIVER_PID"; then
        [[ ! -s $T/wd.session ]] || timeout 20 wd quit 2>/dev/null
        kill "$DRIVER_PID" 2>/dev/null
        for ((i = 0; i < 50; i++)); do pid_alive "$DRIVER_PID" || break; sleep 0.1; done
    fi
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
        [[ $exe == */chromium/* || $exe == "$(readlink -f "$CHROMEDRIVER")" ]] || continue
        args=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
        [[ $args == *"$T/"* ]] && kill -9 "$p" 2>/dev/null
    done
    return 0
}
page_exit() {
    local rc=$?
    set +e
    trap - ERR
    page_cleanup
    (exit "$rc")
    mesh_cleanup
}
trap page_exit EXIT

# NODE_JS ID STATES COLOUR: the mesh picture's node ID as {state, colour,
# done}: done when its data-state is one of STATES (blank-separated) and
# its fill is COLOUR (green, amber or red, from the computed fill, so
# that a state coloured wrong fails too)
read -r -d '' NODE_JS <<'JS' || true
const e = document.querySelector('#mesh circle[data-node="' + arguments[0] + '"]');
if (!e) return {state: null, colour: null, done: false};
const [r, g, b] = (getComputedStyle(e).fill.match(/\d+/g) || [0, 0, 0]).map(Number);
const colour = g > r + 40 && g > b + 40 ? "green"
  : r > 150 && g < 0.45 * r && b < 0.45 * r ? "red"
  : r > 150 && g < 0.85 * r && b < 0.3 * r ? "amber" : "rgb(" + r + "," + g + "," + b + ")";
const state = e.getAttribute("data-state");
return {state, colour, done: arguments[1].split(" ").includes(state) && colour === arguments[2]};
JS

# ROW_JS ID: the data-state of ID's row in the members table
ROW_JS='const r = document.querySelector("#peers tr[data-peer=\"" + arguments[0] + "\"]"); return r ? r.dataset.state : null'

# console_check WHAT [ALLOW]: no console entry of level SEVERE or WARNING
# since the last check, except those whose message matches the regex ALLOW
console_check() {
    local what=$1 allow=${2:-} bad
    bad=$(wd logs | jq -c --arg allow "$allow" \
        'select(.level == "SEVERE" or .level == "WARNING") | select($allow == "" or (.message | test($allow) | not))') ||
        fail "$what: cannot read the browser console"
    [[ -z $bad ]] || fail "$what: console errors or warnings: $bad"
}

mesh_create a b
mesh_mount a --http "$HTTP"
mesh_mount b
mesh_wait_peers 30 a b

# --- the address, and the token on every endpoint
url=$("$MESHFS" stat --url "${MNT[a]}") || fail "meshfs stat --url ${MNT[a]} failed"
[[ $url =~ ^http://$HTTP/\?token=([^&[:space:]]+)$ ]] || fail "meshfs stat --url: unexpected address '$url'"
token=${BASH_REMATCH[1]}
# a wrong token of the same length (its first character changed)
wrong=$([[ ${token:0:1} == A ]] && echo B || echo A)${token:1}
check_eq "meshfs stat --url --store" "$url" "$("$MESHFS" stat --url --store "${STORE[a]}")"
code() { ns curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }
for p in / /status.json /metrics /history.json; do
    check_eq "GET $p without the token" 401 "$(code "http://$HTTP$p")"
    check_eq "GET $p?token=(wrong)" 401 "$(code "http://$HTTP$p?token=$wrong")"
    check_eq "GET $p, Bearer (wrong)" 401 "$(code -H "Authorization: Bearer $wrong" "http://$HTTP$p")"
    check_eq "GET $p, Bearer (token)" 200 "$(code -H "Authorization: Bearer $token" "http://$HTTP$p")"
    check_eq "GET $p?token=(token)" 200 "$(code "http://$HTTP$p?token=$token")"
done
js=$(ns curl -sf --max-time 10 -H "Authorization: Bearer $token" "http://$HTTP/status.json") ||
    fail "GET /status.json with the token failed"
check_eq "status.json: node" "${ID[a]}" "$(jq -r .node <<<"$js")"
check_eq "status.json: format" 1 "$(jq -r .format <<<"$js")"
check_eq "status.json: its keys are meshfs stat --json's" "$(mesh_stat a | jq -c 'keys')" "$(jq -c 'keys' <<<"$js")"
ns curl -sf --max-time 10 -H "Authorization: Bearer $token" "http://$HTTP/history.json" |
    jq -e '.format == 1 and .interval_ms > 0 and (.samples | type == "array")' >/dev/null ||
    fail "GET /history.json: not a history document"
log "401 without the token or with a wrong one on /, /status.json, /metrics, /history.json; 200 with it"

# --- the browser
# (nsenter execs the driver: $! is the driver's pid; HOME and TMPDIR in
# $T: the browser writes nothing outside it, not even the
# org.chromium.Chromium.* directories it leaves in TMPDIR)
mkdir -p "$T/home" "$T/tmp"
HOME=$T/home TMPDIR=$T/tmp nsenter --net="/run/netns/$MESH_NS" "$CHROMEDRIVER" --port="$WD_PORT" \
    --log-path="$T/chromedriver.log" >/dev/null 2>&1 &
DRIVER_PID=$!
wd ready 20 || fail "chromedriver did not start: $(tail -5 "$T/chromedriver.log" 2>&1)"
wd start "$PROFILE" 1280 800 >/dev/null || fail "no browser session: $(tail -5 "$T/chromedriver.log" 2>&1)"
t0=$(now_ms)
wd get "$url"
wd wait 10 'return !!document.querySelector("#mesh circle[data-self=true][data-node=\"" + arguments[0] + "\"]")' "${ID[a]}" >/dev/null ||
    fail "the page does not show this node (${ID[a]}) within 10 s"
log "page loaded and showing node A after $(($(now_ms) - t0)) ms"
href=$(wd js 'return location.href')
[[ $href != *token* ]] || fail "the token stays in the address bar: $href"

# the console capture works: an error and a warning made on purpose come back
wd js 'console.error("mesh_page probe: an error"); console.warn("mesh_page probe: a warning"); return true' >/dev/null
logs=$(wd logs)
jq -e -s 'any(.[]; .level == "SEVERE" and (.message | contains("mesh_page probe: an error")))' <<<"$logs" >/dev/null ||
    fail "the console capture does not see a console.error: $logs"
jq -e -s 'any(.[]; .level == "WARNING" and (.message | contains("mesh_page probe: a warning")))' <<<"$logs" >/dev/null ||
    fail "the console capture does not see a console.warn: $logs"
bad=$(jq -c 'select(.level == "SEVERE" or .level == "WARNING") | select(.message | contains("mesh_page probe") | not)' <<<"$logs")
[[ -z $bad ]] || fail "console errors or warnings while the page loaded: $bad"

wd wait 10 "$NODE_JS" "${ID[b]}" alive green >/dev/null || fail "node B (${ID[b]}) is not shown alive and green"
wd js 'return document.getElementById("node-facts").textContent' | grep -qF "${STORE[a]}" ||
    fail "the page does not show A's store ${STORE[a]}"
check_eq "B's row in the members table" alive "$(wd js "$ROW_JS" "${ID[b]}" | jq -r .)"

# --- partition of an idle link: B turns red; heal: green again
sleep 3 # nothing moves: the link is quiet
mesh_partition "a" "b"
t0=$(now_ms)
wd wait 10 "$NODE_JS" "${ID[b]}" "dead left removed" red >/dev/null ||
    fail "node B did not turn red (dead) on the page within 10 s of the partition"
red_ms=$(($(now_ms) - t0))
printf 'made while B is away\n' >"${MNT[a]}/during-partition"
log "B red (dead) on the page ${red_ms} ms after the partition"
check_eq "B's row after the partition" dead "$(wd js "$ROW_JS" "${ID[b]}" | jq -r .)"
mesh_heal
t0=$(now_ms)
wd wait 10 "$NODE_JS" "${ID[b]}" alive green >/dev/null ||
    fail "node B did not turn green (alive) again within 10 s of the heal"
green_ms=$(($(now_ms) - t0))
log "B green (alive) on the page again ${green_ms} ms after the heal"
mesh_wait_file 30 b during-partition "$(sha_str $'made while B is away\n')"

# --- the charts: ops/s sent and received, bytes/s of B (needs two samples)
read -r -d '' CHART_JS <<'JS' || true
const d = (sel) => { const p = document.querySelector(sel); return p ? (p.getAttribute("d") || "") : null; };
const r = {ops_sent: d('#chart-ops path[data-series="sent"]'), ops_recv: d('#chart-ops path[data-series="recv"]'),
  b_in: d('#chart-bytes path[data-series="in"][data-peer="' + arguments[0] + '"]'),
  b_out: d('#chart-bytes path[data-series="out"][data-peer="' + arguments[0] + '"]')};
const drawn = (x) => typeof x === "string" && /^M[^M]*L/.test(x);
return {ops_sent: drawn(r.ops_sent), ops_recv: drawn(r.ops_recv), b_in: drawn(r.b_in), b_out: drawn(r.b_out),
  done: drawn(r.ops_sent) && drawn(r.b_in) && drawn(r.b_out)};
JS
wd wait 20 "$CHART_JS" "${ID[b]}" >/dev/null || fail "the charts draw no line of ops/s or of B's bytes/s"
console_check "after the partition and the heal"
wd screenshot "$ART/status-page.png" >/dev/null
[[ $(head -c 8 "$ART/status-page.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
    fail "the screenshot is not a PNG"
wd fullshot "$ART/status-page-full.png" >/dev/null
log "screenshot: $ART/status-page.png (the whole page: status-page-full.png)"

# --- a narrow window: nothing wider than it
wd window 420 900
wd wait 5 'return document.documentElement.scrollWidth <= document.documentElement.clientWidth' >/dev/null ||
    fail "the page is wider than a 420 px window: $(wd js 'return [document.documentElement.scrollWidth, document.documentElement.clientWidth]')"
wd screenshot "$ART/status-page-narrow.png" >/dev/null
wd window 1280 800
console_check "in a narrow window"

# --- the daemon goes away: the page says so, and throws nothing
mesh_umount a
t0=$(now_ms)
wd wait 10 'const b = document.getElementById("banner"); return !b.hidden && /no answer from the daemon/i.test(b.textContent) && document.getElementById("conn").dataset.state === "failed"' >/dev/null ||
    fail "the page does not say that the daemon is gone"
log "the page says the daemon is gone after $(($(now_ms) - t0)) ms"
sleep 3 # a few more failed rounds: they must stay quiet
wd screenshot "$ART/status-page-offline.png" >/dev/null
console_check "with the daemon gone" '^http://[0-9.:]+/(status|history)\.json - Failed to load resource: net::'
log "ok: red after ${red_ms} ms, green after ${green_ms} ms; screenshots in $ART"
