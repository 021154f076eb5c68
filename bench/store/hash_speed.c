/*
 * hash_speed.c - what cutting and naming a large write's chunks costs on
 * this CPU (docs/BENCH-chunks.md, "Hashing many chunks at once"). Fills
 * SIZE MiB with pseudo-random bytes, cuts them into content-defined chunks
 * (store/cdc.c), and times, best of REPS: the cut; BLAKE2b-256 of each
 * chunk one at a time; the same chunks BATCH at a time with each
 * implementation of mfs_blake2b256_many this CPU has (a 1 MiB write is
 * cut into some fifty chunks and hashed half on each of two threads, so a
 * batch of 24 is what a write gives); and 64 KiB fixed blocks one at a
 * time (what meshfs did before content-defined chunks). MB/s of input.
 *
 *   hash_speed [-m SIZE_MIB] [-r REPS] [-b BATCH]
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "../bench.h"
#include "blake2b.h"
#include "cdc.h"

static size_t total;

static void report(const char *what, double best)
{
    printf("%-28s %8.0f MB/s  %6.3f ms per MiB\n", what, total / best / 1e6,
           best * 1e3 / (total / 1048576.0));
}

int main(int argc, char **argv)
{
    size_t mib = 256, batch = 24;
    int reps = 5, c;
    while ((c = getopt(argc, argv, "m:r:b:")) != -1) {
        if (c == 'm')
            mib = strtoul(optarg, NULL, 10);
        else if (c == 'r')
            reps = atoi(optarg);
        else if (c == 'b')
            batch = strtoul(optarg, NULL, 10);
        else
            die("usage: hash_speed [-m SIZE_MIB] [-r REPS] [-b BATCH]");
    }
    if (!mib || reps < 1 || !batch)
        die("SIZE_MIB, REPS and BATCH must be at least 1");
    total = mib << 20;
    uint8_t *p = malloc(total);
    const uint8_t **data = malloc((total / MFS_CDC_MIN + 1) * sizeof(*data));
    size_t *len = malloc((total / MFS_CDC_MIN + 1) * sizeof(*len));
    uint8_t *out = malloc((total / MFS_CDC_MIN + 1) * MFS_BLAKE2B256_LEN);
    if (!p || !data || !len || !out)
        die("out of memory");
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < total; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    size_t n = 0;
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = now();
        n = 0;
        for (size_t off = 0; off < total; n++) {
            data[n] = p + off;
            off += len[n] = mfs_cdc_cut(p + off, total - off, true);
        }
        best = (now() - t) < best ? now() - t : best;
    }
    printf("%zu MiB, %zu chunks of %zu bytes on average, batches of %zu, "
           "best of %d\n",
           mib, n, total / n, batch, reps);
    report("cut (mfs_cdc_cut)", best);

    best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (size_t i = 0; i < n; i++)
            mfs_blake2b256(out + i * MFS_BLAKE2B256_LEN, data[i], len[i]);
        best = (now() - t) < best ? now() - t : best;
    }
    report("hash chunks one at a time", best);
    for (int impl = 0; impl < MFS_BLAKE2B_IMPLS; impl++) {
        char what[64];
        snprintf(what, sizeof what, "hash chunks many, %s",
                 mfs_blake2b_impl_name(impl));
        if (!mfs_blake2b256_many_with(impl, out, data, len, 1)) {
            printf("%-28s not on this CPU\n", what);
            continue;
        }
        best = 1e9;
        for (int r = 0; r < reps; r++) {
            double t = now();
            for (size_t i = 0; i < n; i += batch)
                mfs_blake2b256_many_with(impl, out + i * MFS_BLAKE2B256_LEN,
                                         data + i, len + i,
                                         n - i < batch ? n - i : batch);
            best = (now() - t) < best ? now() - t : best;
        }
        report(what, best);
    }
    best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (size_t off = 0; off < total; off += 65536)
            mfs_blake2b256(out, p + off, 65536);
        best = (now() - t) < best ? now() - t : best;
    }
    report("hash 64 KiB blocks (fixed)", best);
    free(p);
    free(data);
    free(len);
    free(out);
    return 0;
}
