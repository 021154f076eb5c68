#!/usr/bin/env bash
# The whole test suite: configure, build with warnings as errors, run every
# CTest entry (unit, simulator, system). Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DMESHFS_TESTS=ON -DMESHFS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 1800 "$@"
