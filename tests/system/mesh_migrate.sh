#!/usr/bin/env bash
# mesh_migrate: a mesh made before per-node keys (one mesh key, mfs1
# tokens) moves to them with `meshfs migrate` on each node (issue 13),
# and keeps syncing all along. Namespaced nodes x, y, z.
#  - x moves while mounted, y while unmounted (the next mount moves on);
#    files written on every node between the steps reach the others.
#  - z moves while partitioned from x and y: the registry z holds names
#    every member's key, so z alone speaks per-node keys; when the
#    partition heals, x and y follow it (its handshake, made for their
#    keys, proves the mesh key too) and what each wrote apart converges.
#  - at the end every node has forgotten the mesh key (STORE/mesh.key's
#    key changed, STORE/migrating gone, stat shows no move), and a node
#    joining with an mfs1 token printed before the move reads nothing.
set -euo pipefail
# shellcheck source=SCRIPTDIR/mesh_lib.sh
. "$(dirname "$0")/mesh_lib.sh"
mesh_init migrate 240 7770

# ---- a mesh of one mesh key: x's store loses the key init made
MESH_INVITER=""
mesh_create x
rm "${STORE[x]}/node.key"
mesh_invite
[[ $MESH_TOKEN == mfs1.* ]] || fail "a store without a node key printed ${MESH_TOKEN:0:5} token"
old_token=$MESH_TOKEN
mesh_create y z
for n in x y z; do
    [[ ! -e ${STORE[$n]}/node.key ]] || fail "node $n of a mesh key mesh has a node key"
    mesh_mount "$n"
done
mesh_wait_peers 30 x y z
meshkey_sha=$(sha256sum <"${STORE[x]}/mesh.key")
[[ $(sha256sum <"${STORE[y]}/mesh.key") == "$meshkey_sha" ]] || fail "x and y hold different mesh keys"

step=0
# write_all TAG: each node writes a file; every node reads all three
write_all() {
    local n m
    step=$((step + 1))
    for n in x y z; do printf '%s from %s\n' "$1" "$n" >"${MNT[$n]}/$1-$n"; done
    for n in x y z; do
        for m in x y z; do
            mesh_wait_file 30 "$n" "$1-$m" "$(sha_str "$1 from $m"$'\n')"
        done
    done
    log "step $step ($1): every node reads every node's file"
}
moving() { mesh_stat "$1" | jq -e '.migration != null' >/dev/null; }
# moved: per-node keys on (the move under way, or over: no move shown and
# a key; only asked of a node that ran meshfs migrate)
moved() { mesh_stat "$1" | jq -e '.migration == null or .migration.moved == true' >/dev/null; }
write_all before

# ---- x moves while mounted
out=$(mfs_cmd migrate "${MNT[x]}") || fail "meshfs migrate on x failed: $out"
[[ $out == *"key of its own"* ]] || fail "meshfs migrate said: $out"
[[ -f ${STORE[x]}/node.key && -f ${STORE[x]}/migrating ]] || fail "x has no node.key or no migrating mark"
check_eq "x node.key mode" 600 "$(stat -c %a "${STORE[x]}/node.key")"
moving x || fail "x's stat shows no move: $(mesh_stat x | jq -c .migration)"
out=$(mfs_cmd migrate "${MNT[x]}") || fail "a second meshfs migrate on x failed"
[[ $out == *"moving"* ]] || fail "a second meshfs migrate said: $out"
expect_fail "moving" mfs_cmd invite --store "${STORE[x]}" "${ADDR[x]}"
write_all after-x
moved x && fail "x speaks per-node keys while y and z have none"

# ---- y moves unmounted; the next mount goes on
mesh_umount y
run_ok mfs_cmd migrate --store "${STORE[y]}" >/dev/null
[[ -f ${STORE[y]}/node.key && -f ${STORE[y]}/migrating ]] || fail "y has no node.key or no migrating mark"
mesh_mount y
mesh_wait_peers 30 x y z
write_all after-y
moved y && fail "y speaks per-node keys while z has none"

# ---- z moves apart from x and y
mesh_partition "z" "x y"
run_ok mfs_cmd migrate "${MNT[z]}" >/dev/null
mesh_wait 30 "z to speak per-node keys alone" moved z
moved x && fail "x moved while apart from z (it cannot know z's key)"
for n in x y z; do printf 'apart on %s\n' "$n" >"${MNT[$n]}/apart-$n"; done
sleep 1
mesh_heal
mesh_wait 30 "x to follow z" moved x
mesh_wait 30 "y to follow z" moved y
write_all after-z
for n in x y z; do
    mesh_wait_file 30 "$n" apart-z "$(sha_str $'apart on z\n')"
    mesh_wait_file 30 "$n" apart-x "$(sha_str $'apart on x\n')"
done

# ---- every node forgets the mesh key
for n in x y z; do
    mesh_wait 30 "node $n to end its move" eval "! moving $n"
    [[ ! -e ${STORE[$n]}/migrating ]] || fail "node $n still has STORE/migrating"
    [[ $(sha256sum <"${STORE[$n]}/mesh.key") != "$meshkey_sha" ]] || fail "node $n still holds the mesh key"
    check_eq "node $n mesh.key mode" 600 "$(stat -c %a "${STORE[$n]}/mesh.key")"
    [[ $(mesh_stat "$n" | jq -r .key) =~ ^[0-9a-f]{4}(-[0-9a-f]{4}){3}$ ]] || fail "node $n shows no key fingerprint"
    grep -q "forgot the mesh key" "${LOGF[$n]}" || fail "node $n's log does not say it forgot the mesh key"
done
"$MESHFS" members --json "${MNT[x]}" | jq -e '[.[] | select(.key | test("^[0-9a-f]{4}-"))] | length == 3' >/dev/null ||
    fail "meshfs members on x does not show three keys: $("$MESHFS" members "${MNT[x]}")"
write_all end

# ---- an old token opens nothing now
MESH_TOKEN=$old_token
mesh_create w
mesh_mount w
printf 'for members\n' >"${MNT[x]}/late"
mesh_wait_file 15 y late "$(sha_str $'for members\n')"
sleep 2
[[ ! -e ${MNT[w]}/late ]] || fail "a node that joined with an old mfs1 token reads a member's file"
[[ ! -e ${MNT[w]}/before-x ]] || fail "a node that joined with an old mfs1 token reads the tree"
mesh_umount w
for n in x y z; do mesh_umount "$n"; done
log "PASS"
