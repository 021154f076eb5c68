#!/usr/bin/env bash
# packaging/build-deb.sh [OUTDIR]: builds the Debian package from this tree
# with Debian's own tooling (dpkg-buildpackage on debian/, in a copy of the
# tree so that the checkout stays clean), checks it with lintian (errors
# fail; the warnings we accept are in debian/meshfs.lintian-overrides and
# packaging/README.md) and leaves meshfs_*.deb in OUTDIR (default: the
# top of the tree). Needs the packages in packaging/debian-build-deps.txt.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(cd "${1:-$top}" && pwd)
work=$(mktemp -d /tmp/meshfs-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/meshfs"
# the tracked files only: no build directories, no results
git -C "$top" ls-files -z | (cd "$top" && xargs -0 cp --parents -t "$work/meshfs")
(cd "$work/meshfs" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed (log above)" >&2
    exit 1
}
deb=$(ls "$work"/meshfs_*.deb)
# (lintian leaves mldbm-elf-* directories in /tmp whatever TMPDIR says:
# those it made go afterwards)
shopt -s nullglob
before=(/tmp/mldbm-elf-*)
rc=0
TMPDIR=$work lintian --fail-on error --display-info "$deb" "$work"/meshfs_*.changes | tee "$work/lintian.log" || rc=$?
for d in /tmp/mldbm-elf-*; do
    [[ " ${before[*]} " == *" $d "* ]] || rm -rf "$d"
done
shopt -u nullglob
if ((rc != 0)); then
    echo "build-deb: lintian reports errors (above)" >&2
    exit 1
fi
cp "$deb" "$out/"
echo "built $out/$(basename "$deb")"
