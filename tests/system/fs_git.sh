#!/usr/bin/env bash
# fs_git: git init, add, commit, branch, checkout, merge, gc and fsck in a
# repository on the mount; clone from the mount to the native fs and from the
# native fs to the mount (and a local, hard-linking clone within the mount).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_git 600

mfs_up

export HOME=$T/home GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' \
    GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
mkdir -p "$HOME"
git config --global user.name "meshfs test"
git config --global user.email "test@meshfs.invalid"
git config --global init.defaultBranch main
git config --global safe.directory '*'
git config --global gc.auto 0

R=$M/repo
log "init, add, commit on the mount"
git init -q "$R"
for d in src doc src/deep/er; do mkdir -p "$R/$d"; done
for i in $(seq 1 60); do printf 'line %d\n' $(seq 1 "$i") >"$R/src/file$i.c"; done
for i in $(seq 1 20); do head -c $((i * 3000)) /dev/urandom >"$R/src/deep/er/blob$i.bin"; done
printf '# readme\n' >"$R/doc/README.md"
chmod +x "$R/src/file1.c"
ln -s ../doc/README.md "$R/src/readme-link"
git -C "$R" add -A
git -C "$R" commit -qm "first"
check_eq "status after commit" "" "$(git -C "$R" status --porcelain)"

log "branch, checkout, commit, merge"
git -C "$R" checkout -qb feature
printf 'feature\n' >>"$R/src/file2.c"
git -C "$R" rm -q "$R/src/file3.c"
git -C "$R" mv "$R/src/file4.c" "$R/doc/moved4.c"
printf 'new\n' >"$R/src/new.c"
git -C "$R" add -A
git -C "$R" commit -qm "feature work"
feature=$(git -C "$R" rev-parse HEAD)
git -C "$R" checkout -q main
[[ -e "$R/src/file3.c" && ! -e "$R/src/new.c" && ! -e "$R/doc/moved4.c" ]] ||
    fail "checkout main did not restore main's tree"
check_eq "file2 on main" "$(printf 'line %d\n' 1 2)" "$(cat "$R/src/file2.c")"
printf 'main change\n' >>"$R/doc/README.md"
git -C "$R" commit -qam "main work"
git -C "$R" merge -q --no-edit feature
[[ -e "$R/src/new.c" && ! -e "$R/src/file3.c" ]] || fail "merge did not bring feature's tree"
git -C "$R" merge-base --is-ancestor "$feature" HEAD || fail "feature is not in main after merge"
check_eq "status after merge" "" "$(git -C "$R" status --porcelain)"
git -C "$R" gc -q --prune=now # packs objects, deletes loose ones, renames
git -C "$R" fsck --strict --no-progress 2>&1 || fail "git fsck on the mount failed"
check_eq "status after gc" "" "$(git -C "$R" status --porcelain)"

log "clone from the mount to the native fs"
git clone -q --no-local "$R" "$T/out"
git -C "$T/out" fsck --strict --no-progress || fail "fsck of the clone out of the mount failed"
check_eq "HEAD of the clone out" "$(git -C "$R" rev-parse HEAD)" "$(git -C "$T/out" rev-parse HEAD)"
check_eq "index of the clone out" "$(git -C "$R" ls-files -s)" "$(git -C "$T/out" ls-files -s)"
MANIFEST_IGNORE="mtime owner" tree_compare "$T/out/src" "$R/src" "worktree of the clone out"

log "clone from the native fs to the mount, and a local clone within the mount"
git clone -q --no-local "$T/out" "$M/in"
git -C "$M/in" fsck --strict --no-progress || fail "fsck of the clone into the mount failed"
check_eq "HEAD of the clone in" "$(git -C "$T/out" rev-parse HEAD)" "$(git -C "$M/in" rev-parse HEAD)"
check_eq "status of the clone in" "" "$(git -C "$M/in" status --porcelain)"
git clone -q --local "$M/in" "$M/local" # hard-links the object files
git -C "$M/local" fsck --strict --no-progress || fail "fsck of the local clone failed"
check_eq "status of the local clone" "" "$(git -C "$M/local" status --porcelain)"
git -C "$M/local" checkout -qb other
printf 'x\n' >"$M/local/src/x.c"
git -C "$M/local" add -A && git -C "$M/local" commit -qm x
git -C "$M/local" push -q origin other
check_eq "pushed branch" "$(git -C "$M/local" rev-parse other)" "$(git -C "$M/in" rev-parse other)"

log "repositories intact after umount + mount"
head_r=$(git -C "$R" rev-parse HEAD)
mfs_umount "$M"
mfs_mount "$STORE" "$M"
git -C "$R" fsck --strict --no-progress || fail "fsck after remount failed"
check_eq "HEAD after remount" "$head_r" "$(git -C "$R" rev-parse HEAD)"
check_eq "status after remount" "" "$(git -C "$R" status --porcelain)"
git -C "$M/local" fsck --strict --no-progress || fail "fsck of the local clone after remount failed"
mfs_umount "$M"
