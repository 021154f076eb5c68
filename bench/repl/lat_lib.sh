# shellcheck shell=bash
# lat_lib.sh - what the latency benchmarks (hol.sh, merge.sh) share.
# Sourced, never run.

# lat_stats LOG FROM TO: "count p50 p99 worst" (ms) of the samples that
# `replbench latency` logged with a start in [FROM, TO) (monotonic seconds;
# the log's lines: index kind seconds state start); "0 - - -" if none
lat_stats() {
    awk -v a="$2" -v b="$3" '$5 >= a && $5 < b { print $3 * 1000 }' "$1" | sort -g |
        awk '{ v[NR] = $1 } END {
            if (!NR) { print "0 - - -"; exit }
            p50 = v[int((NR + 1) / 2)]; i = int(NR * 0.99); if (i < 1) i = 1
            printf "%d %.1f %.1f %.1f\n", NR, p50, v[i], v[NR] }'
}
