#!/usr/bin/env bash
# Builds cdc_params and runs it on a corpus made at run time from this
# Debian machine's own files (nothing of it is committed), then measures
# rsync's bytes for the same kinds of edit on one file, for comparison.
# The output is the table of docs/BENCH-chunks.md, "Choosing the chunk
# parameters".
#
#   bench/store/cdc_params.sh [cdc_params options: -t TRIALS -r REPS -s SEED]
#
# MESHFS_BENCH_BUILD: the build dir (default build-bench); TMPDIR: where the
# corpus (~150 MB) is made, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${MESHFS_BENCH_BUILD:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHFS_TESTS=OFF \
  >/dev/null
cmake --build "$build" -j2 --target cdc_params >/dev/null
dir=$(mktemp -d "${TMPDIR:-/tmp}/cdc-corpus.XXXXXX")
trap 'rm -rf "$dir"' EXIT
size=$((50 * 1024 * 1024))

# 1. headers and documentation as a tar (text, some compressed .gz)
tar cf - /usr/include /usr/share/doc 2>/dev/null | head -c $size \
  >"$dir/include-doc.tar" || true
# 2. shared libraries as a tar (machine code and data)
find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name '*.so*' -size +100k |
  sort | tar cf - -T - 2>/dev/null | head -c $size >"$dir/libs.tar" || true
# 3. source text: python and perl modules and C headers, concatenated
find /usr/lib/python3* /usr/share/perl* /usr/include -type f \
  \( -name '*.py' -o -name '*.pm' -o -name '*.h' \) |
  sort | xargs cat 2>/dev/null | head -c $size >"$dir/source.txt" || true
ls -l "$dir"
echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: $build/bench/cdc_params $* include-doc.tar libs.tar source.txt"
"$build/bench/cdc_params" "$@" "$dir/include-doc.tar" "$dir/libs.tar" \
  "$dir/source.txt"

# rsync's delta transfer (--no-whole-file, --ignore-times) for a 1-byte
# insert, a 1-byte delete and a 4 KiB overwrite in the middle of each file,
# and for a copy with 100 random edits like cdc_params's (100ed): the bytes
# it sends plus receives.
if command -v rsync >/dev/null && command -v python3 >/dev/null; then
  echo "# rsync --no-whole-file --ignore-times: total bytes sent + received"
  for f in include-doc.tar libs.tar source.txt; do
    for kind in ins1 del1 ow4K 100ed; do
      mkdir -p "$dir/src" "$dir/dst"
      cp "$dir/$f" "$dir/dst/f"
      python3 - "$dir/$f" "$dir/src/f" "$kind" <<'PY'
import sys
b = open(sys.argv[1], 'rb').read(); m = len(b) // 2; k = sys.argv[3]
if k == 'ins1': b = b[:m] + b'\x01' + b[m:]
elif k == 'del1': b = b[:m] + b[m + 1:]
elif k == 'ow4K': b = b[:m] + bytes((x + 1) & 255 for x in b[m:m + 4096]) + b[m + 4096:]
else:
    import random
    r = random.Random(17); out = []; at = 0
    for p in sorted(r.randrange(len(b) - 4096) for _ in range(100)):
        if p < at: continue
        out.append(b[at:p]); at = p; n = r.randint(1, 4096); kind = r.randrange(3)
        if kind != 1: out.append(r.randbytes(n))
        if kind != 0: at += n
    out.append(b[at:]); b = b''.join(out)
open(sys.argv[2], 'wb').write(b)
PY
      rsync --no-whole-file --ignore-times --stats "$dir/src/f" "$dir/dst/f" |
        awk -v f="$f" -v k="$kind" '/^Total bytes sent/ {s=$4} /^Total bytes received/ {r=$4}
          END {gsub(",", "", s); gsub(",", "", r); printf "rsync %-16s %-5s %8d\n", f, k, s + r}'
      rm -rf "$dir/src" "$dir/dst"
    done
  done
fi
