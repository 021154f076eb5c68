/*
 * testutil.c - see testutil.h. Test-only code; never linked into meshfs.
 */
#include "testutil.h"

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
