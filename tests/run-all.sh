#!/usr/bin/env bash
# The whole test suite: a bounded libFuzzer run of the datagram decoder
# (clang, ASan+UBSan; skipped with a message when clang is missing), then
# every CTest entry (unit, simulator, system) of a -Werror build, then the
# Debian package end to end (packaging/test-deb.sh: build, lintian,
# install, mount -t meshfs and fstab, system tests on the installed
# binary, purge; skipped when a meshfs package is installed already, or
# when arguments for ctest are given).
# Run from anywhere, as root (the system tests mount FUSE filesystems).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
if command -v clang >/dev/null; then
  CC=clang cmake -S . -B build-fuzz -DMESHFS_TESTS=ON -DMESHFS_FUZZ=ON \
    -DMESHFS_WERROR=ON >/dev/null
  cmake --build build-fuzz --target fuzz_sync_datagram -j"$jobs" >/dev/null
  ctest --test-dir build-fuzz -R '^fuzz/' --output-on-failure
else
  echo "run-all: clang not installed: skipping the libFuzzer run" >&2
fi
cmake -S . -B build -DMESHFS_TESTS=ON -DMESHFS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 1800 "$@"
if (($# == 0)); then
  rc=0
  bash packaging/test-deb.sh || rc=$?
  if ((rc == 77)); then
    echo "run-all: the package test was skipped (see above)" >&2
  elif ((rc != 0)); then
    exit "$rc"
  fi
fi
