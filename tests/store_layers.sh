#!/bin/sh
# store_layers.sh NM LIB SRCDIR - checks that the store's layers call and
# include only downward (docs/ARCHITECTURE.md, "Layers"): every function a
# file of store/ calls in another file of store/ (read from the static
# library's symbol tables with nm, so macros and static inlines do not
# count) must be of its own layer or a lower one, but for the known
# exceptions listed below; no file of the bottom two layers includes
# internal.h; every .c file of store/ has a layer. Exits 1 with one line
# per fault. An exception that no longer occurs is a fault too, so that
# the list only shrinks.
set -eu
nm=$1 lib=$2 src=$3

# layer by file: 0 leaves, 1 kv and durability (kv.h), 2 CRDT: ops, tree,
# content, 3 derived view, 4 API, collection, inspection, open.
layers='
log 0
lock 0
codec 0
blake2b 0
cdc 0
hlc 1
names 1
txn 1
vv 1
dirty 1
pack 1
wal 1
gcq 2
op 2
tree 2
content 2
view 3
local 4
replica 4
snapshot 4
inspect 4
collect 4
recover 4
open 4
'
# caller callee: upward calls still made, each with its reason (none
# now: the CRDT layer tells the view and the collector through
# s->hooks->crdt, internal.h's crdt_hooks, which nm cannot see and this
# list need not hold).
allowed='
'

fail=0
for f in "$src"/*.c; do
    b=$(basename "$f" .c)
    l=$(printf '%s' "$layers" | awk -v f="$b" '$1 == f {print $2}')
    if [ -z "$l" ]; then
        echo "store/$b.c has no layer: add it to tests/store_layers.sh and docs/ARCHITECTURE.md"
        fail=1
    elif [ "$l" -le 1 ] && grep -q '^#include "internal.h"' "$f"; then
        echo "store/$b.c (layer $l) includes internal.h, a header of the layers above"
        fail=1
    fi
done

out=$(
    { printf '%s\n' "$layers" | awk 'NF == 2 {print "L", $1 ".c.o", $2}'
      printf '%s\n' "$allowed" | awk 'NF == 2 {print "A", $1 ".o", $2}'
      "$nm" -A --defined-only -g "$lib" |
          awk -F'[: ]+' '$(NF-1) ~ /^[TDBRVW]$/ {print "D", $2, $NF}'
      "$nm" -A -u "$lib" | awk -F'[: ]+' '{print "U", $2, $NF}'
    } | awk '
    $1 == "L" { layer[$2] = $3; next }
    $1 == "A" { allow[$2 " " $3] = 1; next }
    $1 == "D" { def[$3] = $2; next }
    $1 == "U" { use[++n] = $2 " " $3; next }
    END {
        for (i = 1; i <= n; i++) {
            split(use[i], u, " ")
            if (!(u[2] in def) || def[u[2]] == u[1])
                continue
            callee = def[u[2]]
            if (!(u[1] in layer) || !(callee in layer)) {
                printf "%s or %s has no layer\n", u[1], callee
                continue
            }
            if (layer[callee] <= layer[u[1]])
                continue
            key = u[1] " " u[2]
            if (key in allow) {
                seen[key] = 1
                continue
            }
            printf "%s (layer %d) calls %s of %s (layer %d)\n", u[1],
                   layer[u[1]], u[2], callee, layer[callee]
        }
        for (k in allow)
            if (!(k in seen))
                printf "listed exception no longer made (remove it): %s\n", k
    }')
if [ -n "$out" ]; then
    printf '%s\n' "$out" | sed 's/\.c\.o/.c/g; s/\.o /.c /'
    fail=1
fi
[ "$fail" = 0 ] && echo "store layers: every call and include points down (or is a listed exception)"
exit "$fail"
