/*
 * testutil.c - see testutil.h. Test-only code; never linked into meshfs.
 */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "store.h"

#include <errno.h>
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

int mfs_test_run_seeds(const char *group, const struct CMUnitTest *fixed,
                       size_t nfixed, uint64_t first, uint64_t count,
                       void (*seed_fn)(void **state),
                       int (*teardown)(void **state))
{
    size_t nt = nfixed + count;
    uint64_t *seeds = calloc(count, sizeof(*seeds));
    char(*names)[32] = calloc(count, sizeof(*names));
    struct CMUnitTest *tests = calloc(nt, sizeof(*tests));
    int rc = 1;
    if (!seeds || !names || !tests)
        goto out;
    if (nfixed)
        memcpy(tests, fixed, nfixed * sizeof(*tests));
    for (uint64_t i = 0; i < count; i++) {
        struct CMUnitTest *t = &tests[nfixed + i];
        seeds[i] = first + i;
        snprintf(names[i], sizeof(names[i]), "seed %llu",
                 (unsigned long long)seeds[i]);
        t->name = names[i];
        t->test_func = seed_fn;
        t->teardown_func = teardown;
        t->initial_state = &seeds[i];
    }
    rc = _cmocka_run_group_tests(group, tests, nt, NULL, NULL);
out:
    free(tests);
    free(names);
    free(seeds);
    return rc;
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
    static const char *fields[7] = {"files",  "dirs",      "symlinks",
                                   "others", "bytes",     "conflicts",
                                   "chunk bytes"};
    size_t n = (size_t)snprintf(why, cap, "kept counts / scan:");
    for (int i = 0; i < 7 && n < cap; i++)
        n += (size_t)snprintf(why + n, cap - n, " %s %llu/%llu", fields[i],
                              (unsigned long long)a[i],
                              (unsigned long long)b[i]);
    return -1;
}

uint64_t tclock_fn(void *arg)
{
    return ((tclock *)arg)->ms;
}

void mfs_test_store_config(mfs_store_config *cfg, tclock *clk)
{
    mfs_store_config_default(cfg);
    cfg->clock_ms = tclock_fn;
    cfg->clock_arg = clk;
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int err;
} sbuf;

static void dump_line(void *arg, const char *line)
{
    sbuf *b = arg;
    size_t n = strlen(line);
    if (b->err)
        return;
    if (b->n + n + 2 > b->cap) {
        size_t cap = (b->n + n + 2) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, line, n);
    b->n += n;
    b->p[b->n++] = '\n';
    b->p[b->n] = 0;
}

char *mfs_test_dump(struct mfs_store *s, int *rc)
{
    sbuf b = {calloc(1, 1), 0, 1, 0};
    int r = b.p ? mfs_store_dump(s, dump_line, &b) : -ENOMEM;
    if (!r)
        r = b.err;
    if (r) {
        free(b.p);
        *rc = r;
        return NULL;
    }
    return b.p;
}

uint64_t mkfile(struct mfs_store *s, uint64_t dir, const char *name)
{
    mfs_attr a;
    int rc = mfs_store_mknod(s, dir, name, S_IFREG | 0644, 0, 1000, 1000, &a);
    if (rc)
        print_error("mknod %s: %d\n", name, rc);
    assert_int_equal(rc, 0);
    return a.ino;
}

uint64_t mkdir_(struct mfs_store *s, uint64_t dir, const char *name)
{
    mfs_attr a;
    int rc = mfs_store_mkdir(s, dir, name, 0755, 0, 0, &a);
    if (rc)
        print_error("mkdir %s: %d\n", name, rc);
    assert_int_equal(rc, 0);
    return a.ino;
}

uint32_t data_chunks(struct mfs_store *s, uint64_t ino)
{
    mfs_file_info fi;
    assert_int_equal(mfs_store_file_info(s, ino, &fi, NULL, 0), 0);
    uint8_t *h = fi.nchunks ? malloc((size_t)fi.nchunks * MFS_HASH_LEN) : NULL;
    assert_true(!fi.nchunks || h);
    assert_int_equal(mfs_store_file_info(s, ino, &fi, h, fi.nchunks), 0);
    static const uint8_t hole[MFS_HASH_LEN];
    uint32_t n = 0;
    for (uint32_t i = 0; i < fi.nchunks; i++)
        n += memcmp(h + (size_t)i * MFS_HASH_LEN, hole, MFS_HASH_LEN) != 0;
    free(h);
    return n;
}

uint64_t ino_of(struct mfs_store *s, uint64_t dir, const char *name)
{
    mfs_attr a;
    int rc = mfs_store_lookup(s, dir, name, &a);
    if (rc)
        print_error("lookup %s: %d\n", name, rc);
    assert_int_equal(rc, 0);
    return a.ino;
}

char *g_dir;
struct mfs_store *g_s;

int cleanup(void **state)
{
    (void)state;
    mfs_store_close(g_s);
    g_s = NULL;
    mfs_test_rmdir(g_dir);
    g_dir = NULL;
    return 0;
}

int names_add(void *arg, const char *name, uint64_t ino, uint32_t mode)
{
    dirlist *l = arg;
    if (l->limit && l->n >= l->limit)
        return 1; /* this one is not consumed */
    assert_true(l->n < 256);
    snprintf(l->v[l->n], sizeof(l->v[0]), "%s", name);
    l->ino[l->n] = ino;
    l->mode[l->n] = mode;
    l->n++;
    return 0;
}

dirlist *list_dir(struct mfs_store *s, uint64_t dir)
{
    dirlist *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    assert_int_equal(mfs_store_readdir(s, dir, NULL, names_add, l), 0);
    return l;
}
