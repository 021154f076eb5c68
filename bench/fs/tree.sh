# shellcheck shell=bash
# bench/fs/tree.sh - sourced by run.sh and ab.sh: the tree that untar and
# retar use, made once on the native filesystem.
#
# make_tree_tar DIR N: DIR/tree.tar holding tree/ with N files of 200 B -
# 24 KB (pieces of fsbench.c repeated) in 37 x 7 nested directories.
make_tree_tar() {
    local w=$1 n=$2 i d
    local src
    src=$(dirname "${BASH_SOURCE[0]}")/fsbench.c
    for i in $(seq 1 20); do cat "$src"; done >"$w/tree.rep"
    mkdir -p "$w/tree"
    for ((i = 0; i < n; i++)); do
        d="$w/tree/mod$((i % 37))/sub$((i % 7))"
        [[ -d $d ]] || mkdir -p "$d"
        head -c $((200 + (i * 7919) % 24000)) "$w/tree.rep" >"$d/file$i.c"
    done
    tar -C "$w" -cf "$w/tree.tar" tree
    rm -rf "$w/tree" "$w/tree.rep"
}
