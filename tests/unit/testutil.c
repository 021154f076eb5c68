/*
 * testutil.c - see testutil.h. Test-only code; never linked into meshfs.
 */
#include "testutil.h"

#include "store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *mfs_test_mkdtemp(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 32;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/meshfs-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        perror("mkdtemp");
        abort();
    }
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void mfs_test_rmdir(char *path)
{
    if (!path)
        return;
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

void mfs_rng_seed(mfs_rng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t mfs_rng_next(mfs_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

uint64_t mfs_rng_below(mfs_rng *r, uint64_t n)
{
    return mfs_rng_next(r) % n;
}

uint64_t mfs_test_seed(uint64_t dflt)
{
    const char *e = getenv("MESHFS_SEED");
    return e && *e ? strtoull(e, NULL, 0) : dflt;
}

int mfs_test_census_check(struct mfs_store *s, char *why, size_t cap)
{
    mfs_store_stats st, sc;
    if (mfs_store_stats_get(s, &st) || mfs_store_stats_scan(s, &sc)) {
        snprintf(why, cap, "stats unreadable");
        return -1;
    }
    const uint64_t a[7] = {st.files,  st.dirs,      st.symlinks,
                           st.others, st.bytes,     st.conflicts,
                           st.chunk_bytes};
    const uint64_t b[7] = {sc.files,  sc.dirs,      sc.symlinks,
                           sc.others, sc.bytes,     sc.conflicts,
                           sc.chunk_bytes};
    if (!memcmp(a, b, sizeof(a)))
        return 0;
    static const char *names[7] = {"files",  "dirs",      "symlinks",
                                   "others", "bytes",     "conflicts",
                                   "chunk bytes"};
    size_t n = (size_t)snprintf(why, cap, "kept counts / scan:");
    for (int i = 0; i < 7 && n < cap; i++)
        n += (size_t)snprintf(why + n, cap - n, " %s %llu/%llu", names[i],
                              (unsigned long long)a[i],
                              (unsigned long long)b[i]);
    return -1;
}
