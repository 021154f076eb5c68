# shellcheck shell=bash
# ptll.sh - builds libfuse's passthrough_ll example, from libfuse3-dev's
# examples, into DIR/passthrough_ll: the baseline run.sh and ab.sh compare
# meshfs with (never committed). Sourced, never run.

# ptll_build DIR: 0, or 1 with the reason on stderr
ptll_build() {
    local dir=$1 ex=/usr/share/doc/libfuse3-dev/examples f
    mkdir -p "$dir/ptll-src"
    for f in passthrough_ll.c passthrough_helpers.h; do
        if [[ -f $ex/$f ]]; then cp "$ex/$f" "$dir/ptll-src/"
        elif [[ -f $ex/$f.gz ]]; then gzip -dc "$ex/$f.gz" >"$dir/ptll-src/$f"
        else echo "$ex/$f missing (install libfuse3-dev)" >&2; return 1; fi
    done
    # shellcheck disable=SC2046
    cc -O2 -o "$dir/passthrough_ll" "$dir/ptll-src/passthrough_ll.c" $(pkg-config --cflags --libs fuse3)
}
