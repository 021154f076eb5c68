/*
 * test_cdc.c - content-defined chunk boundaries (store/cdc.c). Every node
 * must cut the same bytes identically, forever, and an edit must move only
 * the chunks around it. Checked: golden cut offsets and an independent
 * implementation of the definition (gear table derived from BLAKE2b here
 * again); size limits; that a cut depends only on the bytes from the
 * chunk's start (not on n, alignment or eof past the cut), and the "give
 * more bytes" contract; that a single small edit changes at most 3 chunks;
 * that re-chunking only around dirty ranges equals chunking from scratch,
 * for random inserts, deletes and overwrites; zero runs; tiny files.
 * MESHFS_SEED=N replays the random tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "blake2b.h"
#include "cdc.h"
#include "testutil.h"

static uint64_t seed;

/* cuts: the end offsets of the chunks of p[0..n), from scratch. */
typedef struct cuts {
    size_t *v, n, cap;
} cuts;

static void cuts_push(cuts *c, size_t off)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        assert_non_null(c->v);
    }
    c->v[c->n++] = off;
}

static void chunk_all(cuts *c, const uint8_t *p, size_t n)
{
    c->n = 0;
    for (size_t off = 0; off < n;) {
        size_t len = mfs_cdc_cut(p + off, n - off, true);
        assert_true(len > 0 && len <= n - off);
        off += len;
        cuts_push(c, off);
    }
}

static void fill_random(mfs_rng *r, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(mfs_rng_next(r) >> 56);
}

/* n random bytes from r seeded with the test's seed + salt (so that each
 * test replays alone); the caller frees them. */
static uint8_t *random_buf(mfs_rng *r, uint64_t salt, size_t n)
{
    mfs_rng_seed(r, seed + salt);
    uint8_t *p = malloc(n);
    assert_non_null(p);
    fill_random(r, p, n);
    return p;
}

/* Low-entropy bytes: words of a small vocabulary, like text or source. */
static void fill_text(mfs_rng *r, uint8_t *p, size_t n)
{
    static const char *const words[] = {
        "the ", "chunk ",  "of ",   "a ",    "file ", "is ",
        "cut ", "where ",  "hash ", "bits ", "are ",  "zero\n",
        "int ", "return ", "{\n",   "}\n",
    };
    size_t i = 0;
    while (i < n) {
        const char *w = words[mfs_rng_below(r, 16)];
        for (; *w && i < n; w++)
            p[i++] = (uint8_t)*w;
    }
}

/* The definition, written plainly and apart from cdc.c: the gear table
 * derived again from BLAKE2b, one loop, the mask picked per byte. */
static uint64_t ref_gear[256];

static void ref_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint8_t in[19] = "meshfs cdc gear v1", h[32];
        in[18] = (uint8_t)i;
        crypto_generichash(h, 32, in, 19, NULL, 0);
        ref_gear[i] = 0;
        for (int b = 7; b >= 0; b--)
            ref_gear[i] = ref_gear[i] << 8 | h[b];
    }
}

static size_t ref_cut(const uint8_t *p, size_t n, bool eof)
{
    unsigned k = 0;
    while ((1u << k) < MFS_CDC_AVG)
        k++;
    uint64_t h = 0;
    for (size_t len = MFS_CDC_MIN; len <= n && len <= MFS_CDC_MAX; len++) {
        h = 2 * h + ref_gear[p[len - 1]];
        unsigned bits = len < MFS_CDC_AVG ? k + MFS_CDC_NORM : k - MFS_CDC_NORM;
        if (h >> (64 - bits) == 0)
            return len;
    }
    if (n >= MFS_CDC_MAX)
        return MFS_CDC_MAX;
    return eof ? n : 0;
}

/* The deterministic input of the golden test: BLAKE2b of a label and a
 * counter, 32 bytes at a time, so it cannot change either. */
static void fill_golden(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 32) {
        uint8_t in[24] = "meshfs cdc golden", h[32];
        for (int b = 0; b < 8; b++) /* the counter, little-endian */
            in[16 + b] = (uint8_t)((i / 32) >> (8 * b));
        mfs_blake2b256(h, in, sizeof(in));
        memcpy(p + i, h, n - i < 32 ? n - i : 32);
    }
}

/* The parameters and the gear table are a format constant: these offsets
 * must never change (a node cutting otherwise would re-send every edited
 * file whole). */
static void test_golden(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    uint8_t *p = malloc(n);
    assert_non_null(p);
    fill_golden(p, n);
    cuts c = {0};
    chunk_all(&c, p, n);
    static const size_t want[] = {
        10307,  28362,  72591,  91370,  128505,  152360,  206848,
        226959, 236299, 267213, 289319, 299813,  312236,  336198,
        356518, 378339, 392817, 416318, 430427,  445999,  472517,
        486302, 505174, 519746, 537051, 566635,  587523,  605908,
        626524, 656344, 681044, 706090, 723269,  739997,  760821,
        785245, 806336, 825145, 853204, 873224,  881915,  903206,
        915824, 944736, 963503, 980710, 1011264, 1032093, 1048576,
    };
    size_t nw = sizeof(want) / sizeof(want[0]);
    if (c.n != nw || memcmp(c.v, want, nw * sizeof(*want))) {
        printf("cuts now:");
        for (size_t i = 0; i < c.n; i++)
            printf(" %zu,", c.v[i]);
        printf("\n");
        fail_msg("the cuts of the golden input changed: %zu cuts, want %zu",
                 c.n, nw);
    }
    free(c.v);
    free(p);
}

/* cdc.c against the plain definition, for every n and eof around each
 * cut of random and text-like data. */
static void test_reference(void **state)
{
    (void)state;
    ref_init();
    mfs_rng r;
    size_t n = 3 << 20;
    uint8_t *p = random_buf(&r, 0, n);
    fill_text(&r, p + n / 2, n - n / 2);
    size_t off = 0, ncuts = 0;
    while (off < n) {
        size_t avail = n - off;
        size_t c = mfs_cdc_cut(p + off, avail, true);
        assert_int_equal(c, ref_cut(p + off, avail, true));
        for (int t = 0; t < 8; t++) {
            size_t m = mfs_rng_below(&r, avail < 70000 ? avail + 1 : 70000);
            bool eof = mfs_rng_below(&r, 2);
            assert_int_equal(mfs_cdc_cut(p + off, m, eof),
                             ref_cut(p + off, m, eof));
        }
        off += c;
        ncuts++;
    }
    assert_true(ncuts > n / MFS_CDC_MAX);
    free(p);
}

/* The cut rolls two lanes at once (cdc.c roll2), and must still return
 * the first cut: 64 bytes whose hash cuts under either mask (a value
 * depends on its last 64 bytes only, so they cut wherever they end, if
 * nothing cut before), planted twice at random places in random bytes, at
 * every distance up to 1,100 bytes apart (the second may be found first
 * in time when the lanes are apart by less than that), against the
 * definition. */
static void test_lanes(void **state)
{
    (void)state;
    ref_init();
    mfs_rng r;
    mfs_rng_seed(&r, seed + 11);
    uint8_t x[64];
    unsigned k = 0;
    while ((1u << k) < MFS_CDC_AVG)
        k++;
    for (;;) { /* (2^15 tries on average) */
        fill_random(&r, x, sizeof(x));
        uint64_t h = 0;
        for (size_t i = 0; i < sizeof(x); i++)
            h = 2 * h + ref_gear[x[i]];
        if (h >> (64 - (k + MFS_CDC_NORM)) == 0)
            break;
    }
    size_t n = MFS_CDC_MAX + 100, firsts = 0;
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (int t = 0; t < 20000; t++) {
        fill_random(&r, p, n);
        size_t o1 = MFS_CDC_MIN - 64 + mfs_rng_below(&r, 4096);
        size_t o2 = o1 + 1 + mfs_rng_below(&r, 1100);
        if (o1 + 64 <= n)
            memcpy(p + o1, x, 64);
        if (o2 + 64 <= n)
            memcpy(p + o2, x, 64);
        size_t c = mfs_cdc_cut(p, n, true);
        assert_int_equal(c, ref_cut(p, n, true));
        firsts += c == o1 + 64;
    }
    print_message("first planted cut in %zu of 20000\n", firsts);
    assert_true(firsts > 15000); /* the first planted cut, mostly */
    free(p);
}

/* Where hashing starts: a cut within 64 bytes of MIN depends on every byte
 * from MIN - 1 (the shortest chunk is MIN); random tails there, against
 * the definition, many of them cutting. */
static void test_near_min(void **state)
{
    (void)state;
    ref_init();
    mfs_rng r;
    mfs_rng_seed(&r, seed + 7);
    uint8_t p[MFS_CDC_MIN + 64] = {0};
    size_t early = 0;
    for (int t = 0; t < 200000; t++) {
        fill_random(&r, p + MFS_CDC_MIN - 1, 65);
        size_t c = mfs_cdc_cut(p, sizeof(p), true);
        assert_int_equal(c, ref_cut(p, sizeof(p), true));
        early += c < sizeof(p);
    }
    assert_true(early > 100);
}

/* Every chunk in [MIN, MAX] but the last, which is in [1, MAX]; on random
 * data, on text, and on data with a period longer than MAX that never
 * matches the mask (each chunk forced at MAX). */
static void check_limits(const uint8_t *p, size_t n, size_t *nmax)
{
    cuts c = {0};
    chunk_all(&c, p, n);
    assert_int_equal(c.v[c.n - 1], n);
    size_t prev = 0;
    for (size_t i = 0; i < c.n; i++) {
        size_t len = c.v[i] - prev;
        assert_true(len <= MFS_CDC_MAX);
        if (i + 1 < c.n)
            assert_true(len >= MFS_CDC_MIN);
        else
            assert_true(len >= 1);
        *nmax += len == MFS_CDC_MAX;
        prev = c.v[i];
    }
    free(c.v);
}

static void test_limits(void **state)
{
    (void)state;
    mfs_rng r;
    size_t n = 4 << 20, nmax = 0;
    uint8_t *p = random_buf(&r, 1, n);
    for (int t = 0; t < 20; t++)
        check_limits(p, MFS_CDC_MAX + mfs_rng_below(&r, n - MFS_CDC_MAX),
                     &nmax);
    fill_text(&r, p, n);
    check_limits(p, n, &nmax);
    /* one byte value repeated: a constant hash that never cuts, so
     * every chunk is forced at MAX */
    memset(p, 0x5a, n);
    nmax = 0;
    check_limits(p, n, &nmax);
    assert_int_equal(nmax, n / MFS_CDC_MAX);
    free(p);
}

/* A cut depends on p[0..c) only: the same with any n >= c, either eof, at
 * another address; with n = c - 1 it is 0 ("give more bytes") or, at eof,
 * the whole n. */
static void test_prefix_only(void **state)
{
    (void)state;
    mfs_rng r;
    size_t n = 2 << 20;
    uint8_t *p = random_buf(&r, 2, n), *q = malloc(MFS_CDC_MAX + 8);
    assert_non_null(q);
    cuts c = {0};
    chunk_all(&c, p, n);
    size_t prev = 0;
    for (size_t i = 0; i + 1 < c.n; i++) {
        const uint8_t *s = p + prev;
        size_t len = c.v[i] - prev;
        assert_int_equal(mfs_cdc_cut(s, len, false), len);
        assert_int_equal(mfs_cdc_cut(s, len, true), len);
        assert_int_equal(mfs_cdc_cut(s, n - prev, false), len);
        assert_int_equal(mfs_cdc_cut(s, len - 1, false), 0);
        assert_int_equal(mfs_cdc_cut(s, len - 1, true), len - 1);
        size_t a = 1 + mfs_rng_below(&r, 7);
        memcpy(q + a, s, len);
        assert_int_equal(mfs_cdc_cut(q + a, len, false), len);
        prev = c.v[i];
    }
    free(c.v);
    free(q);
    free(p);
}

/* Streaming: bytes arrive in random pieces; the caller asks, gets 0, reads
 * more, asks again. The cuts are those of the whole buffer. */
static void test_give_more(void **state)
{
    (void)state;
    mfs_rng r;
    size_t n = 2 << 20;
    uint8_t *p = random_buf(&r, 3, n);
    fill_text(&r, p + n / 2, n / 2);
    cuts whole = {0}, stream = {0};
    chunk_all(&whole, p, n);
    size_t start = 0, have = 0;
    while (start < n) {
        size_t c = mfs_cdc_cut(p + start, have - start, have == n);
        if (c == 0) {
            assert_true(have - start < MFS_CDC_MAX && have < n);
            size_t more = 1 + mfs_rng_below(&r, 20000);
            have = have + more < n ? have + more : n;
            continue;
        }
        assert_true(c <= have - start);
        start += c;
        cuts_push(&stream, start);
    }
    assert_int_equal(stream.n, whole.n);
    assert_memory_equal(stream.v, whole.v, whole.n * sizeof(*whole.v));
    free(whole.v);
    free(stream.v);
    free(p);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether x ends a chunk of c (0, the start, counts). */
static bool is_cut(const cuts *c, size_t x)
{
    return x == 0 || bsearch(&x, c->v, c->n, sizeof(*c->v), cmp_size);
}

/* A single edit of 1..16 bytes (insert, delete or overwrite) at a random
 * place in 4 MiB of random data: at most 3 chunks of the new file are not
 * chunks of the old one (the chunk edited, and the next one or two when
 * the edit moves or adds a cut). Over all trials, most edits change 1 or 2
 * chunks. */
static void test_stable(void **state)
{
    (void)state;
    mfs_rng r;
    size_t n = 4 << 20;
    uint8_t *old = random_buf(&r, 4, n), *new = malloc(n + 16);
    assert_non_null(new);
    cuts oc = {0}, nc = {0};
    chunk_all(&oc, old, n);
    size_t hist[4] = {0};
    for (int t = 0; t < 150; t++) {
        size_t pos = mfs_rng_below(&r, n - 16), k = 1 + mfs_rng_below(&r, 16);
        size_t m = n, ins = k, del = k;
        switch (t % 3) {
        case 0: /* insert k bytes at pos */
            memcpy(new, old, pos);
            fill_random(&r, new + pos, k);
            memcpy(new + pos + k, old + pos, n - pos);
            m = n + k;
            del = 0;
            break;
        case 1: /* delete k bytes at pos */
            memcpy(new, old, pos);
            memcpy(new + pos, old + pos + k, n - pos - k);
            m = n - k;
            ins = 0;
            break;
        default: /* overwrite k bytes at pos */
            memcpy(new, old, n);
            for (size_t i = 0; i < k; i++)
                new[pos + i] ^= (uint8_t)(1 + mfs_rng_below(&r, 255));
        }
        chunk_all(&nc, new, m);
        /* a chunk is unchanged if it lies before or after the edit and
         * both its ends are old cuts there */
        size_t changed = 0;
        for (size_t i = 0, a = 0; i < nc.n; a = nc.v[i++]) {
            size_t b = nc.v[i];
            bool same = false;
            if (b <= pos)
                same = is_cut(&oc, a) && is_cut(&oc, b);
            else if (a >= pos + ins)
                same = is_cut(&oc, a - ins + del) && is_cut(&oc, b - ins + del);
            changed += !same;
        }
        if (changed > 3)
            fail_msg("edit %d (kind %d, %zu bytes at %zu) changed %zu chunks",
                     t, t % 3, k, pos, changed);
        hist[changed]++;
    }
    assert_true(hist[1] + hist[2] >= 140);
    free(oc.v);
    free(nc.v);
    free(new);
    free(old);
}

/* An edit of the old file: old[os..oe) replaced by len new bytes (insert:
 * os == oe; delete: len == 0; overwrite: len == oe - os). */
typedef struct edit {
    size_t os, oe, len;
} edit;

/* Re-chunking around dirty ranges, as the publish path does it: oc holds
 * the old file's cuts but its end (the last chunk may have ended there only
 * because the file did), e the edits, sorted and disjoint. Old cuts are
 * kept while the chunk they end is clean; from the last of them before a
 * dirty range, the new bytes are cut until a cut lands on an old cut in
 * a clean stretch past the range, where old cuts are kept again. Clean
 * stretch s is old [e[s-1].oe, e[s].os], moved by d[s] bytes in the new
 * file. *fresh: how many cuts were computed. */
static void rechunk(cuts *out, size_t *fresh, const uint8_t *nw, size_t nn,
                    const cuts *oc, const edit *e, size_t ne)
{
    long long d[16] = {0};
    size_t ds[16], de[16];
    assert_true(ne < 16);
    for (size_t i = 0; i < ne; i++) {
        ds[i] = (size_t)((long long)e[i].os + d[i]);
        de[i] = ds[i] + e[i].len;
        d[i + 1] = d[i] + (long long)e[i].len - (long long)(e[i].oe - e[i].os);
    }
    out->n = 0;
    *fresh = 0;
    size_t pos = 0, s = 0, k = 0;
    for (;;) {
        /* clean stretch s from pos, an old cut: keep the old cuts whose
         * chunk ends before the next dirty range (or the file's end) */
        size_t lim = s < ne ? ds[s] : nn;
        for (; k < oc->n; k++) {
            long long x = (long long)oc->v[k] + d[s];
            if (x <= (long long)pos)
                continue;
            if (x > (long long)lim)
                break;
            cuts_push(out, (size_t)x);
            pos = (size_t)x;
        }
        /* then cut the new bytes until a cut is an old one again */
        for (;;) {
            if (pos == nn)
                return;
            pos += mfs_cdc_cut(nw + pos, nn - pos, true);
            cuts_push(out, pos);
            (*fresh)++;
            for (s = 0; s <= ne; s++) /* the clean stretch pos is in */
                if ((s == 0 || de[s - 1] <= pos) && (s == ne || pos <= ds[s]))
                    break;
            if (s > ne)
                continue; /* inside a dirty range */
            long long was = (long long)pos - d[s];
            if (bsearch(&(size_t){(size_t)was}, oc->v, oc->n, sizeof(size_t),
                        cmp_size))
                break;
        }
    }
}

/* Random edits (1..5 of them: inserts, deletes, overwrites of 1 byte to
 * 100 KiB, at the start, the end, anywhere) of files of random, text and
 * zero bytes: re-chunking around the dirty ranges gives exactly the cuts
 * of chunking the new file from scratch, while computing few of them. */
static void test_rechunk(void **state)
{
    (void)state;
    mfs_rng r;
    mfs_rng_seed(&r, seed + 5);
    size_t cap = 4 << 20, total = 0, computed = 0, scratch = 0;
    uint8_t *old = malloc(cap), *nw = malloc(cap);
    assert_non_null(old);
    assert_non_null(nw);
    cuts oc = {0}, whole = {0}, re = {0};
    for (int t = 0; t < 300; t++) {
        if (t % 50 == 0) {
            size_t n = (1 << 20) + mfs_rng_below(&r, 1 << 20), a = n / 3;
            fill_random(&r, old, a);
            fill_text(&r, old + a, a);
            memset(old + 2 * a, 0, 100000);
            fill_random(&r, old + 2 * a + 100000, n - 2 * a - 100000);
            chunk_all(&oc, old, n);
            oc.n--; /* the file's end is not a cut to keep */
            total = n;
        }
        size_t n = total;
        edit e[5];
        size_t ne = 1 + mfs_rng_below(&r, 5), at = 0, m = 0;
        for (size_t i = 0; i < ne; i++) {
            size_t big = mfs_rng_below(&r, 4) ? 64 : 100000;
            size_t k = 1 + mfs_rng_below(&r, big);
            size_t gap =
                mfs_rng_below(&r, 4) == 0 ? 0 : mfs_rng_below(&r, n / ne);
            e[i].os = at + gap < n ? at + gap : n;
            switch (mfs_rng_below(&r, 3)) {
            case 0:
                e[i].oe = e[i].os;
                e[i].len = k;
                break;
            case 1:
                e[i].oe = e[i].os + k < n ? e[i].os + k : n;
                e[i].len = 0;
                break;
            default:
                e[i].oe = e[i].os + k < n ? e[i].os + k : n;
                e[i].len = e[i].oe - e[i].os;
            }
            at = e[i].oe;
        }
        for (size_t i = 0, from = 0; i <= ne; i++) {
            size_t to = i < ne ? e[i].os : n;
            memcpy(nw + m, old + from, to - from);
            m += to - from;
            if (i < ne) {
                fill_random(&r, nw + m, e[i].len);
                m += e[i].len;
                from = e[i].oe;
            }
        }
        chunk_all(&whole, nw, m);
        size_t fresh;
        rechunk(&re, &fresh, nw, m, &oc, e, ne);
        assert_int_equal(re.n, whole.n);
        assert_memory_equal(re.v, whole.v, whole.n * sizeof(*whole.v));
        computed += fresh;
        scratch += whole.n;
    }
    /* far fewer cuts computed than chunking from scratch: one or two a
     * dirty range, plus the large edits' own chunks */
    printf("rechunk: %zu cuts computed, %zu from scratch\n", computed, scratch);
    assert_true(computed * 3 < scratch);
    free(oc.v);
    free(whole.v);
    free(re.v);
    free(nw);
    free(old);
}

/* A run of zero bytes never cuts (G[0] leaves a top bit set in every hash
 * a run of zeros makes): all-zero data is cut in MAX-long chunks, which
 * the layer above stores as holes; inside a zero run every cut more than
 * 64 bytes (the hash's window) from its start is forced at MAX. */
static void test_zeros(void **state)
{
    (void)state;
    mfs_rng r;
    mfs_rng_seed(&r, seed + 6);
    size_t n = 3 << 20, z0 = 700000 + mfs_rng_below(&r, 1000),
           z1 = z0 + (1 << 20);
    uint8_t *p = calloc(1, n);
    assert_non_null(p);
    cuts c = {0};
    chunk_all(&c, p, 1 << 20);
    assert_int_equal(c.n, (1 << 20) / MFS_CDC_MAX);
    for (size_t i = 0; i < c.n; i++)
        assert_int_equal(c.v[i], (i + 1) * MFS_CDC_MAX);
    fill_random(&r, p, z0);
    fill_random(&r, p + z1, n - z1);
    chunk_all(&c, p, n);
    size_t inside = 0;
    for (size_t i = 1; i < c.n; i++)
        if (c.v[i] - 1 >= z0 + 64 && c.v[i] - 1 < z1) {
            assert_int_equal(c.v[i] - c.v[i - 1], MFS_CDC_MAX);
            inside++;
        }
    assert_true(inside >= (z1 - z0) / MFS_CDC_MAX - 2);
    free(c.v);
    free(p);
}

/* Files shorter than MIN are one chunk; without eof, fewer than MAX bytes
 * and no cut ask for more. */
static void test_tiny(void **state)
{
    (void)state;
    uint8_t p[MFS_CDC_MIN + 1];
    memset(p, 0x33, sizeof(p));
    assert_int_equal(mfs_cdc_cut(NULL, 0, true), 0);
    assert_int_equal(mfs_cdc_cut(NULL, 0, false), 0);
    assert_int_equal(mfs_cdc_cut(p, 1, true), 1);
    assert_int_equal(mfs_cdc_cut(p, 1, false), 0);
    assert_int_equal(mfs_cdc_cut(p, MFS_CDC_MIN - 1, true), MFS_CDC_MIN - 1);
    assert_int_equal(mfs_cdc_cut(p, MFS_CDC_MIN, true), MFS_CDC_MIN);
    assert_int_equal(mfs_cdc_cut(p, MFS_CDC_MIN, false), 0);
    assert_int_equal(mfs_cdc_cut(p, MFS_CDC_MIN + 1, true), MFS_CDC_MIN + 1);
    assert_int_equal(mfs_cdc_cut(p, MFS_CDC_MIN + 1, false), 0);
}

int main(void)
{
    seed = mfs_test_seed(17);
    printf("test_cdc: seed %llu (MESHFS_SEED=N to replay)\n",
           (unsigned long long)seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),      cmocka_unit_test(test_reference),
        cmocka_unit_test(test_near_min),    cmocka_unit_test(test_limits),
        cmocka_unit_test(test_prefix_only), cmocka_unit_test(test_give_more),
        cmocka_unit_test(test_stable),      cmocka_unit_test(test_rechunk),
        cmocka_unit_test(test_zeros),       cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_lanes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
