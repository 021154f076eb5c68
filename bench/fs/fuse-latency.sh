#!/usr/bin/env bash
# fuse-latency.sh COMMAND...: runs COMMAND (for example a bench/fs/fsbench
# workload on a mount) while perf records the kernel's FUSE request
# tracepoints system-wide, then prints, per opcode, how many requests the
# kernel sent and how long the daemon took to answer them (send to end:
# p50, p90, p99 and the sum). It counts every FUSE mount's requests, so
# run it with one mount busy. Needs root and perf (linux-perf).
#
#   bench/fs/fuse-latency.sh bench-dir/fsbench create /mnt/x/small 5000 100
set -euo pipefail
(($# > 0)) || { echo "usage: fuse-latency.sh COMMAND..." >&2; exit 2; }
out=$(mktemp /tmp/meshfs-fuselat.XXXXXX)
trap 'rm -f "$out" "$out.table"' EXIT
perf record -a -q -o "$out" -e fuse:fuse_request_send -e fuse:fuse_request_end -- "$@"
perf script -i "$out" 2>/dev/null | awk '
    match($0, /[0-9]+\.[0-9]+: +fuse:fuse_request_(send|end): connection [0-9]+ req [0-9]+/) {
        split(substr($0, RSTART, RLENGTH), f, /[: ]+/)
        t = f[1]; req = f[length(f)]
        if (index($0, "request_send")) {
            if (match($0, /\(FUSE_[A-Z_]+\)/)) op[req] = substr($0, RSTART + 1, RLENGTH - 2)
            sent[req] = t
        } else if (req in sent) {
            printf "%s %.1f\n", op[req], (t - sent[req]) * 1e6
            delete sent[req]; delete op[req]
        }
    }' | LC_ALL=C sort -k1,1 -k2,2g | awk '
    function flush() {
        if (!m) return
        p50 = int((m + 1) / 2); p90 = int(m * 0.9); p99 = int(m * 0.99)
        if (p90 < 1) p90 = 1
        if (p99 < 1) p99 = 1
        printf "%-18s %8d %9.1f %9.1f %9.1f %10.3f\n", o, m, v[p50], v[p90], v[p99], sum / 1e6
    }
    $1 != o { flush(); o = $1; m = 0; sum = 0 }
    { v[++m] = $2; sum += $2 }
    END { flush() }' | sort -k6,6gr >"$out.table"
printf "%-18s %8s %9s %9s %9s %10s\n" opcode count p50_us p90_us p99_us sum_s
cat "$out.table"
rm -f "$out.table"
