#!/usr/bin/env bash
# powercut.sh: the power-cut test of the store (promise P2). For each seed
# and each commit setting (commit_window_us 1 and 2000) it runs pc_workload
# under pc_preload.so, then pc_check on the log: --cuts crash images per
# mode (drop and torn), each reopened and checked (see pc_check.c).
# Exit 0 all pass, 1 a cut failed (the first failures are printed with a
# replay command; their logs are kept when PC_KEEP=DIR is set), 77 skipped
# (a program is missing). Temporary files live under /var/tmp and are
# removed on every exit path.
#
#   powercut.sh [--seeds N] [--cuts N] [--ops N] [--windows "1 2000"]
# Programs come from $PC_PRELOAD, $PC_WORKLOAD, $PC_CHECK (set by CTest).
set -uo pipefail

seeds=1 cuts=25 ops=300 windows="1 2000"
while (($#)); do
    case $1 in
    --seeds) seeds=$2 ;;
    --cuts) cuts=$2 ;;
    --ops) ops=$2 ;;
    --windows) windows=$2 ;;
    *)
        echo "powercut.sh: unknown flag '$1'" >&2
        exit 2
        ;;
    esac
    shift 2 || { echo "powercut.sh: '$1' needs a value" >&2; exit 2; }
done

for v in PC_PRELOAD PC_WORKLOAD PC_CHECK; do
    if [[ -z ${!v:-} || ! -e ${!v} ]]; then
        echo "SKIP: \$$v is not set or missing (run through ctest)" >&2
        exit 77
    fi
done

T=$(mktemp -d /var/tmp/meshfs-powercut.XXXXXX) || exit 2
child=
trap 'rm -rf "$T"' EXIT
# bash runs a trap only once its foreground child is done: children run in
# the background and are waited for, so a signal stops them at once
trap '[[ -z $child ]] || kill "$child" 2>/dev/null; exit 130' INT TERM
run() {
    "$@" &
    child=$!
    local rc=0
    wait "$child" || rc=$?
    child=
    return "$rc"
}

# ASan builds check that their runtime loads first; the shim is plain C
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

start=$SECONDS
failed=0
for seed in $(seq 1 "$seeds"); do
    for w in $windows; do
        run=$T/s$seed-w$w
        mkdir -p "$run"
        if ! PC_DIR=$run/store PC_LOG=$run/log LD_PRELOAD=$PC_PRELOAD \
            run "$PC_WORKLOAD" "$run/store" --seed "$seed" --ops "$ops" \
            --commit-window "$w" 2>"$run/workload.err"; then
            echo "FAIL: pc_workload seed $seed window $w:" >&2
            cat "$run/workload.err" >&2
            failed=1
            continue
        fi
        cat "$run/workload.err"
        rc=0
        # --final-wal names intent.log even when the store made none: the
        # checker then holds that the log never opened it either
        run "$PC_CHECK" --log "$run/log" --final "$run/store/data.mdb" \
            --final-wal "$run/store/intent.log" \
            --packs "$run/store/packs" --cuts "$cuts" --seed "$seed" --mode both --tmp "$T" || rc=$?
        case $rc in
        0) ;;
        1)
            failed=1
            if [[ -n ${PC_KEEP:-} ]]; then
                keep=$PC_KEEP/s$seed-w$w
                # no intent.log copy when the store made none: the checker
                # then expects none
                mkdir -p "$PC_KEEP" && cp "$run/log" "$keep.log" &&
                    cp "$run/store/data.mdb" "$keep.data.mdb" &&
                    rm -f "$keep.intent.log" &&
                    { [[ ! -e $run/store/intent.log ]] ||
                        cp "$run/store/intent.log" "$keep.intent.log"; } &&
                    echo "kept for replay: --log $keep.log" \
                        "--final $keep.data.mdb --final-wal $keep.intent.log"
            else
                echo "(set PC_KEEP=DIR to keep this run's log for the replay commands)"
            fi
            ;;
        *)
            echo "FAIL: pc_check could not check seed $seed window $w (exit $rc)" >&2
            failed=1
            ;;
        esac
        rm -rf "$run"
    done
done
echo "powercut: seeds $seeds, windows [$windows], $cuts cuts per mode each; $((SECONDS - start)) s"
if ((failed)); then
    echo "powercut: FAILED: a power cut can lose acknowledged data or damage the store" >&2
    exit 1
fi
echo "powercut: all cuts pass"
