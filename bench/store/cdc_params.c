/*
 * cdc_params.c - the measurement that chose the chunk parameters of
 * store/cdc.h (docs/BENCH-chunks.md, "Choosing the chunk parameters"; run
 * bench/store/cdc_params.sh). For each candidate (min, avg, normalisation;
 * max is the store's 64 KiB block) and each corpus file: chunk sizes, the
 * bytes an edit moves (the changed chunks plus the version record, 34 B a
 * chunk of a 50 MB file), how much of a copy with many edits is found in
 * the original's chunks, and the chunker's speed against BLAKE2b's. Reads
 * its files whole into memory; writes nothing.
 *
 *   cdc_params [-t TRIALS] [-r REPS] [-s SEED] FILE...
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "../bench.h"
#include "blake2b.h"
#include "cdc.h"

#define RECORD_PER_CHUNK 34 /* 32-byte hash + varint length */
#define RECORD_FILE 50e6    /* the 50 MB file of the target */
#define WINDOW (1u << 20)   /* bytes re-chunked after an edit, at most */

static uint64_t rng_s;
static size_t unsynced; /* edits not resynchronised within WINDOW */

static uint64_t rnd(void)
{
    rng_s ^= rng_s >> 12;
    rng_s ^= rng_s << 25;
    rng_s ^= rng_s >> 27;
    return rng_s * 0x2545F4914F6CDD1DULL;
}

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static buf read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    buf b = {0};
    size_t cap = 0;
    for (;;) {
        if (b.n == cap) {
            cap = cap ? 2 * cap : 1 << 20;
            b.p = realloc(b.p, cap);
            if (!b.p)
                die("out of memory");
        }
        size_t r = fread(b.p + b.n, 1, cap - b.n, f);
        if (r == 0)
            break;
        b.n += r;
    }
    fclose(f);
    return b;
}

/* The end offsets of the chunks of p[0..n); *nc of them, malloc'd. */
static size_t *chunk_all(const mfs_cdc_params *cp, const uint8_t *p, size_t n,
                         size_t *nc)
{
    size_t cap = n / cp->min + 2, k = 0;
    size_t *v = malloc(cap * sizeof(*v));
    if (!v)
        die("out of memory");
    for (size_t off = 0; off < n;) {
        off += mfs_cdc_cut_params(cp, p + off, n - off, true);
        v[k++] = off;
    }
    *nc = k;
    return v;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { INSERT, DELETE, OVERWRITE };

/* The bytes of new chunks after replacing old[pos..pos+del) by ins bytes
 * of new content: re-chunk from the last cut at or before pos until a cut
 * lands on an old cut past the edit (every later cut is then the old one,
 * cdc.h). *nchunks: how many new chunks. Exact, without copying the file. */
static size_t edit_moved(const mfs_cdc_params *cp, const buf *old,
                         const size_t *cuts, size_t nc, size_t pos, size_t del,
                         size_t ins, uint8_t *win, size_t *nchunks)
{
    size_t lo = 0, hi = nc; /* first cut > pos */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cuts[mid] <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t start = lo ? cuts[lo - 1] : 0;
    /* the new bytes from start: old[start..pos), ins random bytes, then
     * old from pos + del */
    size_t w = pos - start;
    memcpy(win, old->p + start, w);
    for (size_t i = 0; i < ins; i++)
        win[w++] = (uint8_t)(old->p[pos + i] + 1 + rnd() % 255);
    size_t tail = old->n - pos - del;
    bool eof = w + tail <= WINDOW;
    size_t take = eof ? tail : WINDOW - w;
    memcpy(win + w, old->p + pos + del, take);
    w += take;
    size_t off = 0, k = 0;
    for (;;) {
        size_t c = mfs_cdc_cut_params(cp, win + off, w - off, eof);
        if (c == 0) { /* counted as moving the whole window */
            unsynced++;
            off = w;
            break;
        }
        off += c;
        k++;
        if (off == w && eof)
            break;
        if (start + off < pos + ins)
            continue;
        size_t was = start + off - ins + del; /* old offset of this cut */
        if (bsearch(&was, cuts, nc, sizeof(*cuts), cmp_size))
            break;
    }
    *nchunks = k;
    return off;
}

/* 64 bits of BLAKE2b of each chunk, sorted. */
static uint64_t *chunk_ids(const uint8_t *p, const size_t *cuts, size_t nc)
{
    uint64_t *id = malloc(nc * sizeof(*id));
    if (!id)
        die("out of memory");
    size_t prev = 0;
    for (size_t i = 0; i < nc; i++) {
        uint8_t h[32];
        mfs_blake2b256(h, p + prev, cuts[i] - prev);
        memcpy(&id[i], h, 8);
        prev = cuts[i];
    }
    qsort(id, nc, sizeof(*id), cmp_u64);
    return id;
}

/* A copy of old with nedit random edits (insert, delete or overwrite of
 * 1..4096 bytes): returns the percentage of its bytes found in old's
 * chunks, *moved the bytes of its other chunks. */
static double dedup_copy(const mfs_cdc_params *cp, const buf *old,
                         const size_t *cuts, size_t nc, int nedit,
                         double *moved)
{
    buf nw = {malloc(old->n + (size_t)nedit * 4096), 0};
    if (!nw.p)
        die("out of memory");
    size_t *pos = malloc((size_t)nedit * sizeof(*pos));
    for (int i = 0; i < nedit; i++)
        pos[i] = rnd() % (old->n - 4096);
    qsort(pos, (size_t)nedit, sizeof(*pos), cmp_size);
    size_t from = 0;
    for (int i = 0; i < nedit; i++) {
        if (pos[i] < from)
            continue;
        memcpy(nw.p + nw.n, old->p + from, pos[i] - from);
        nw.n += pos[i] - from;
        from = pos[i];
        size_t k = 1 + rnd() % 4096;
        int kind = (int)(rnd() % 3);
        if (kind != DELETE)
            for (size_t j = 0; j < k; j++)
                nw.p[nw.n++] = (uint8_t)rnd();
        if (kind != INSERT)
            from += k;
    }
    memcpy(nw.p + nw.n, old->p + from, old->n - from);
    nw.n += old->n - from;
    size_t nn;
    size_t *ncuts = chunk_all(cp, nw.p, nw.n, &nn);
    uint64_t *oid = chunk_ids(old->p, cuts, nc);
    size_t found = 0, prev = 0;
    for (size_t i = 0; i < nn; i++) {
        uint8_t h[32];
        uint64_t id;
        mfs_blake2b256(h, nw.p + prev, ncuts[i] - prev);
        memcpy(&id, h, 8);
        if (bsearch(&id, oid, nc, sizeof(*oid), cmp_u64))
            found += ncuts[i] - prev;
        prev = ncuts[i];
    }
    *moved = (double)(nw.n - found);
    double pct = 100.0 * (double)found / (double)nw.n;
    free(oid);
    free(ncuts);
    free(pos);
    free(nw.p);
    return pct;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* MB/s of the chunker with parameters cp (NULL: cdc.h's, mfs_cdc_cut)
 * over r, median of reps runs. */
static double cdc_speed(const mfs_cdc_params *cp, const buf *r, int reps)
{
    double v[64];
    for (int i = 0; i < reps; i++) {
        double t = now();
        size_t nc = 0;
        for (size_t off = 0; off < r->n; nc++)
            off += cp ? mfs_cdc_cut_params(cp, r->p + off, r->n - off, true)
                      : mfs_cdc_cut(r->p + off, r->n - off, true);
        v[i] = (double)r->n / 1e6 / (now() - t);
        if (nc == 0)
            die("no chunks");
    }
    return median(v, reps);
}

/* MB/s of BLAKE2b-256 over 64 KiB blocks of r (libsodium's or the store's
 * own, store/blake2b.c), one run. */
static double hash_once(const buf *r, bool sodium)
{
    uint8_t h[32];
    double t = now();
    for (size_t off = 0; off < r->n; off += 65536) {
        size_t len = r->n - off < 65536 ? r->n - off : 65536;
        if (sodium)
            crypto_generichash(h, 32, r->p + off, len, NULL, 0);
        else
            mfs_blake2b256(h, r->p + off, len);
    }
    return (double)r->n / 1e6 / (now() - t);
}

/* The chunker of cdc.h against both BLAKE2b-256s, one run of each in turn
 * so that all three see the same load (the machine is shared): medians of
 * reps runs, and the median of the chunker's speed over the store's
 * BLAKE2b's, run by run. */
static void speeds(const buf *r, int reps)
{
    double c[64], b[64], s[64], x[64];
    for (int i = 0; i < reps; i++) {
        c[i] = cdc_speed(NULL, r, 1);
        b[i] = hash_once(r, false);
        s[i] = hash_once(r, true);
        x[i] = c[i] / b[i];
    }
    printf("# over %zu MiB of random bytes, median of %d: mfs_cdc_cut "
           "(cdc.h: %u/%u/%u, norm %u) %.0f MB/s; BLAKE2b-256 of 64 KiB "
           "blocks: store's %.0f MB/s, libsodium's %.0f MB/s; chunker / "
           "store's BLAKE2b %.1fx\n",
           r->n >> 20, reps, MFS_CDC_MIN, MFS_CDC_AVG, MFS_CDC_MAX,
           MFS_CDC_NORM, median(c, reps), median(b, reps), median(s, reps),
           median(x, reps));
}

int main(int argc, char **argv)
{
    int trials = 300, reps = 7, opt;
    uint64_t seed = 17;
    while ((opt = getopt(argc, argv, "t:r:s:")) != -1) {
        if (opt == 't')
            trials = atoi(optarg);
        else if (opt == 'r')
            reps = atoi(optarg);
        else if (opt == 's')
            seed = strtoull(optarg, NULL, 0);
        else
            die("usage: cdc_params [-t TRIALS] [-r REPS] [-s SEED] FILE...");
    }
    if (optind == argc || trials < 1 || reps < 1 || reps > 64)
        die("usage: cdc_params [-t TRIALS] [-r REPS] [-s SEED] FILE...");
    if (sodium_init() < 0)
        die("sodium_init failed");
    int nf = argc - optind;
    buf *files = calloc((size_t)nf, sizeof(*files));
    for (int i = 0; i < nf; i++) {
        files[i] = read_file(argv[optind + i]);
        if (files[i].n < (8u << 20))
            die("%s: want at least 8 MiB", argv[optind + i]);
    }
    buf rd = {malloc(64u << 20), 64u << 20};
    uint8_t *win = malloc(WINDOW);
    if (!rd.p || !win)
        die("out of memory");
    rng_s = seed | 1;
    for (size_t i = 0; i < rd.n; i += 8) {
        uint64_t x = rnd();
        memcpy(rd.p + i, &x, 8);
    }
    speeds(&rd, reps);
    printf("# edits: %d trials each at random places; moved = changed "
           "chunk bytes + %d B x chunks of a 50 MB file (version record)\n",
           trials, RECORD_PER_CHUNK);
    printf("# 100ed: a copy with 100 random edits (insert, delete or "
           "overwrite of 1..4096 bytes): its chunks not in the original + "
           "its record, bytes; dedup: its bytes found in the original's "
           "chunks\n");
    printf("%-18s %-10s %6s %6s %6s %6s %5s %7s %7s %7s %7s %6s %8s %6s "
           "%6s\n",
           "min/avg/max,norm", "file", "mean", "p10", "p50", "p90", "%max",
           "record", "ins1", "del1", "ow4K", "chunks", "100ed", "dedup",
           "MB/s");
    static const size_t avgs[] = {8192, 16384, 32768};
    for (size_t a = 0; a < 3; a++)
        for (size_t mdiv = 4; mdiv >= 2; mdiv /= 2)
            for (unsigned norm = 1; norm <= 3; norm++) {
                mfs_cdc_params cp;
                size_t avg = avgs[a];
                if (mfs_cdc_params_init(&cp, avg / mdiv, avg, 65536, norm))
                    die("bad candidate");
                char name[64];
                snprintf(name, sizeof(name), "%zuK/%zuK/64K,%u",
                         avg / mdiv >> 10, avg >> 10, norm);
                double speed = cdc_speed(&cp, &rd, reps);
                for (int f = 0; f < nf; f++) {
                    const buf *b = &files[f];
                    size_t nc;
                    size_t *cuts = chunk_all(&cp, b->p, b->n, &nc);
                    size_t *len = malloc(nc * sizeof(*len)), nmax = 0;
                    for (size_t i = 0; i < nc; i++) {
                        len[i] = cuts[i] - (i ? cuts[i - 1] : 0);
                        nmax += len[i] == 65536;
                    }
                    qsort(len, nc - 1, sizeof(*len), cmp_size);
                    double mean = (double)b->n / (double)nc;
                    double record = RECORD_FILE / mean * RECORD_PER_CHUNK;
                    double moved[3] = {0}, nch = 0;
                    rng_s = seed * 7919 + (uint64_t)f + 1;
                    for (int kind = 0; kind < 3; kind++)
                        for (int t = 0; t < trials; t++) {
                            size_t pos = rnd() % (b->n - 4096), k;
                            size_t del = kind == INSERT   ? 0
                                         : kind == DELETE ? 1
                                                          : 4096;
                            size_t ins = kind == DELETE   ? 0
                                         : kind == INSERT ? 1
                                                          : 4096;
                            moved[kind] += (double)edit_moved(
                                &cp, b, cuts, nc, pos, del, ins, win, &k);
                            nch += (double)k;
                        }
                    double dmoved;
                    double dedup = dedup_copy(&cp, b, cuts, nc, 100, &dmoved);
                    const char *base = strrchr(argv[optind + f], '/');
                    printf("%-18s %-10.10s %6.0f %6zu %6zu %6zu %5.1f %7.0f "
                           "%7.0f %7.0f %7.0f %6.2f %8.0f %5.1f%% %6.0f\n",
                           name, base ? base + 1 : argv[optind + f], mean,
                           len[(nc - 1) / 10], len[(nc - 1) / 2],
                           len[(nc - 1) * 9 / 10],
                           100.0 * (double)nmax / (double)nc, record,
                           moved[INSERT] / trials + record,
                           moved[DELETE] / trials + record,
                           moved[OVERWRITE] / trials + record,
                           nch / (3.0 * trials), dmoved + record, dedup, speed);
                    fflush(stdout);
                    free(len);
                    free(cuts);
                }
            }
    if (unsynced)
        printf("# %zu edits not resynchronised within %u bytes (counted as "
               "moving them all)\n",
               unsynced, WINDOW);
    for (int i = 0; i < nf; i++)
        free(files[i].p);
    free(files);
    free(rd.p);
    free(win);
    return 0;
}
