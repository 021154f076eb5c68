#!/usr/bin/env bash
# mesh_ident: per-node keys end to end (issue 13). Namespaced nodes.
#  - each store has its own key (node.key, 0600, no two alike); tokens
#    are mfs2 and carry no key that protects traffic.
#  - an invitation used twice: the second join is refused (the inviter's
#    log says why) and that node reads nothing.
#  - an expired invitation and a revoked one: refused likewise;
#    `meshfs invite --list` shows what is open.
#  - open invitations replicate (issue 10): another member's `meshfs
#    members` lists one within 5 s of `meshfs invite` (and one made
#    before the mount), and drops it once it is used up or revoked; the
#    node that joined with it is listed as a member.
#  - a removed member that keeps running with its store and sessions: it
#    does not read a file written after the removal, its new file reaches
#    nobody, and the members go on syncing.
#  - a copy of a member's store directory running beside it (a cloned
#    identity): found, and both refused.
#  - a mesh made before per-node keys (no node.key): mfs1 tokens, syncs.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init ident 240 7760
mesh_up a b c
A=${MNT[a]}

# keys: one per store, private
for n in a b c; do
    k=${STORE[$n]}/node.key
    [[ -f $k ]] || fail "node $n has no node.key"
    check_eq "node $n key mode" 600 "$(stat -c %a "$k")"
done
[[ $(sha256sum "${STORE[a]}/node.key" "${STORE[b]}/node.key" "${STORE[c]}/node.key" | cut -c1-64 | sort -u | wc -l) == 3 ]] ||
    fail "two nodes have the same key"
[[ $MESH_TOKEN == mfs2.* ]] || fail "the token is not an mfs2 one: ${MESH_TOKEN:0:8}"

# fingerprints: stat shows this node's key, members every member's
fa=$(mesh_stat a | jq -r .key)
[[ $fa =~ ^[0-9a-f]{4}(-[0-9a-f]{4}){3}$ ]] || fail "meshfs stat shows no key fingerprint: $fa"
"$MESHFS" members --json "$A" | jq -e --arg k "$fa" '[.[] | select(.state == "self" and .key == $k)] | length == 1' >/dev/null ||
    fail "meshfs members does not show A's key: $("$MESHFS" members "$A")"
"$MESHFS" members --json "$A" | jq -e '[.[] | select(.state != "self" and (.key | test("^[0-9a-f]{4}-")))] | length == 2' >/dev/null ||
    fail "meshfs members does not show B's and C's keys: $("$MESHFS" members "$A")"

refused() { grep -q "refused node ${ID[$1]} .* a join: $2" "${LOGF[a]}"; }
reads_nothing() { [[ ! -e ${MNT[$1]}/$2 ]] || fail "node $1 reads $2"; }

# ---- open invitations: every member lists them
# invited_n NODE ID: how many times NODE's `meshfs members` lists the open
# invitation ID (nothing printed if the command fails)
invited_n() { "$MESHFS" members --json "${MNT[$1]}" | jq --arg i "$2" 'map(select(.state == "invited" and .invitation == $i)) | length'; }
invited_on() { [[ $(invited_n "$@") == 1 ]]; }
gone_on() { [[ $(invited_n "$@") == 0 ]]; }
member_on() { "$MESHFS" members --json "${MNT[$1]}" | jq -e --arg n "${ID[$2]}" 'map(select(.node == $n)) | length == 1' >/dev/null; }
# the id (16 hex digits, as members shows it) of A's open invitation whose
# id starts with $1
inv_id() { mfs_cmd invite --list --store "${STORE[a]}" | awk -v p="$1" 'NR > 1 && (p == "" || index($1, p) == 1) { print substr($1, 1, 16) }'; }
# the one mesh_create left open, made before A's daemon started
spare=$(inv_id "")
[[ $spare =~ ^[0-9a-f]{16}$ ]] || fail "A should have one open invitation: $(mfs_cmd invite --list --store "${STORE[a]}")"
mesh_wait 5 "B to list the invitation A made before its mount" invited_on b "$spare"
t0=$(now_ms)
tok=$(mfs_cmd invite --store "${STORE[a]}" "${ADDR[a]}" 2>"$T/inv.err")
inv=$(inv_id "$(sed -n 's/.*invitation \([0-9a-f]*\):.*/\1/p' "$T/inv.err")")
[[ $inv =~ ^[0-9a-f]{16}$ ]] || fail "cannot find the new invitation: $(cat "$T/inv.err")"
mesh_wait 5 "B to list A's new invitation $inv" invited_on b "$inv"
log "B lists A's new invitation $(($(now_ms) - t0)) ms after meshfs invite"
"$MESHFS" members "${MNT[b]}" | grep -qxE "invited  $inv  by ${ID[a]}  1 join left, expires in 2[34] h" ||
    fail "meshfs members on B does not show the invitation: $("$MESHFS" members "${MNT[b]}")"
run_ok mfs_cmd invite --revoke "$spare" --store "${STORE[a]}" >/dev/null
mesh_wait 5 "B to drop the revoked invitation $spare" gone_on b "$spare"
invited_on b "$inv" || fail "B dropped $inv too"

# ---- an invitation is good for one join
MESH_TOKEN=$tok
mesh_create d # joins with tok
MESH_TOKEN=$tok
mesh_create e # the same token again
printf 'for members\n' >"$A/m1"
t0=$(now_ms)
mesh_mount d
mesh_wait_file 15 d m1 "$(sha_str $'for members\n')"
log "join: D mounted, was admitted and read A's file $(($(now_ms) - t0)) ms after its mount began"
for n in a b; do
    mesh_wait 5 "node $n to drop the used-up invitation $inv" gone_on "$n" "$inv"
    mesh_wait 15 "node $n to list D as a member" member_on "$n" d
done
mesh_mount e
mesh_wait_peers 30 a d
mesh_wait 15 "A refuses E: invitation used up" refused e "its invitation is used up"
reads_nothing e m1
mesh_sees_alive a e && fail "A sees the refused node E alive"
log "a token used twice: the second join was refused"

# ---- an expired one, a revoked one
tok=$(mfs_cmd invite --expires 1s --store "${STORE[a]}" "${ADDR[a]}" 2>/dev/null)
sleep 2
MESH_TOKEN=$tok
mesh_create f
tok=$(mfs_cmd invite --store "${STORE[a]}" "${ADDR[a]}" 2>"$T/inv.err")
id=$(sed -n 's/.*invitation \([0-9a-f]*\):.*/\1/p' "$T/inv.err")
[[ -n $id ]] || fail "meshfs invite did not name the invitation: $(cat "$T/inv.err")"
mfs_cmd invite --list --store "${STORE[a]}" | grep -q "^$id" ||
    fail "meshfs invite --list does not show $id: $(mfs_cmd invite --list --store "${STORE[a]}")"
run_ok mfs_cmd invite --revoke "$id" --store "${STORE[a]}" >/dev/null
mfs_cmd invite --list --store "${STORE[a]}" | grep -q "^$id" && fail "$id still listed after --revoke"
expect_fail "no open invitation" mfs_cmd invite --revoke "$id" --store "${STORE[a]}"
MESH_TOKEN=$tok
mesh_create g
mesh_mount f
mesh_mount g
mesh_wait 15 "A refuses F: invitation expired" refused f "its invitation expired"
mesh_wait 15 "A refuses G: invitation revoked" refused g "its invitation is used up, revoked"
reads_nothing f m1
reads_nothing g m1
mesh_umount e
mesh_umount f
mesh_umount g
log "an expired and a revoked token were refused"

# ---- a removed member, still running, is locked out
mesh_wait_peers 30 a b c d
removed_on() { "$MESHFS" members --json "${MNT[$1]}" | jq -e --arg d "${ID[d]}" 'map(select(.node == $d and .state == "removed")) | length == 1' >/dev/null; }
"$MESHFS" remove "${ID[d]}" "$A" || fail "meshfs remove D on A failed"
for n in a b c; do mesh_wait 15 "node $n knows D is removed" removed_on "$n"; done
sleep 1 # the transports take the key away within 500 ms
printf 'after the removal\n' >"$A/secret"
printf 'from the removed node\n' >"${MNT[d]}/intruder"
mesh_wait_file 15 b secret "$(sha_str $'after the removal\n')"
mesh_wait_file 15 c secret "$(sha_str $'after the removal\n')"
sleep 3
reads_nothing d secret
for n in a b c; do reads_nothing "$n" intruder; done
printf 'still syncing\n' >"${MNT[b]}/m2"
mesh_wait_file 15 a m2 "$(sha_str $'still syncing\n')"
mesh_wait_file 15 c m2 "$(sha_str $'still syncing\n')"
reads_nothing d m2
log "the removed node read nothing new and changed nothing"

# ---- a copy of a member's store runs too: both daemons are cut off
mesh_umount c
IP[c2]=127.0.0.20 ADDR[c2]=127.0.0.20:$MESH_PORT STORE[c2]=$T/store-c2 MNT[c2]=$T/mnt-c2 LOGF[c2]=$T/log-c2 ID[c2]=${ID[c]}
mkdir -p "${MNT[c2]}"
cp -a "${STORE[c]}" "${STORE[c2]}"
rm -f "${STORE[c2]}/control.sock"
mesh_mount c
mesh_mount c2
for i in 1 2 3; do # each has changes to send: it finds the other out soon
    printf 'c %s\n' "$i" >"${MNT[c]}/from-c-$i"
    printf 'c2 %s\n' "$i" >"${MNT[c2]}/from-c2-$i"
    sleep 1
done
twice() { grep -q "node ${ID[c]} runs twice" "${LOGF[a]}"; }
mesh_wait 60 "A to find node C running twice" twice
sleep 2
printf 'after the clone\n' >"$A/after-clone"
mesh_wait_file 15 b after-clone "$(sha_str $'after the clone\n')"
sleep 2
reads_nothing c after-clone
reads_nothing c2 after-clone
mesh_umount c2
mesh_umount c
log "a copied store running beside its original: A refused both"

# ---- a mesh made before per-node keys (a store with no node.key) keeps
# its mesh key: mfs1 tokens, and the daemons sync
MESH_INVITER=""
mesh_create x
rm "${STORE[x]}/node.key"
mesh_invite
[[ $MESH_TOKEN == mfs1.* ]] || fail "a store without a node key printed ${MESH_TOKEN:0:5} token"
expect_fail "need per-node keys" mfs_cmd invite --list --store "${STORE[x]}"
mesh_create y
[[ ! -e ${STORE[y]}/node.key ]] || fail "joining with an mfs1 token made a node key"
mesh_mount x
mesh_mount y
mesh_wait_peers 30 x y
printf 'old mesh\n' >"${MNT[x]}/o"
mesh_wait_file 15 y o "$(sha_str $'old mesh\n')"
[[ $(mesh_stat x | jq -r .key) == none* ]] || fail "stat on a mesh key node shows a key"
log "a mesh key mesh still works"
echo PASS
