/*
 * testutil.h - helpers shared by the cmocka unit tests: temporary
 * directories that are removed on every path, and a seeded PRNG whose seed is
 * printed so a failing run can be replayed (MESHFS_SEED=N).
 */
#ifndef MFS_TESTUTIL_H
#define MFS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path
 * the caller passes to mfs_test_rmdir() (which also frees it). */
char *mfs_test_mkdtemp(const char *tag);
/* rm -rf path, then free(path). NULL is fine. */
void mfs_test_rmdir(char *path);

/* xorshift64* PRNG */
typedef struct mfs_rng {
    uint64_t s;
} mfs_rng;
void mfs_rng_seed(mfs_rng *r, uint64_t seed);
uint64_t mfs_rng_next(mfs_rng *r);
/* uniform in [0, n) ; n > 0 */
uint64_t mfs_rng_below(mfs_rng *r, uint64_t n);
/* The seed to use: MESHFS_SEED from the environment if set, else `dflt`. */
uint64_t mfs_test_seed(uint64_t dflt);

struct CMUnitTest;
/* Runs the cmocka group `group`: the nfixed tests of fixed (may be NULL)
 * first, then one test per seed first..first+count-1, named "seed N",
 * calling seed_fn with *state pointing at the seed (a uint64_t) and
 * teardown after it, so every failing seed is listed at the end. Returns
 * what cmocka returns (the failed tests), 1 when out of memory. */
int mfs_test_run_seeds(const char *group, const struct CMUnitTest *fixed,
                       size_t nfixed, uint64_t first, uint64_t count,
                       void (*seed_fn)(void **state),
                       int (*teardown)(void **state));

/* A clock the test moves by hand: mfs_store_config's clock_ms = tclock_fn,
 * clock_arg = the tclock. */
typedef struct tclock {
    uint64_t ms;
} tclock;
uint64_t tclock_fn(void *arg);
/* cfg = the store's defaults with clk as its clock (clk is not owned and
 * must outlive the store). */
void mfs_test_store_config(mfs_store_config *cfg, tclock *clk);

struct mfs_store;
/* The store's canonical dump (mfs_store_dump) as one malloc'd string, each
 * line ending in '\n' ("" for none); NULL with *rc set when it fails. */
char *mfs_test_dump(struct mfs_store *s, int *rc);
/* Store fixtures for cmocka tests (a failure fails the test): a regular
 * file (0644, uid and gid 1000) or a directory (0755, root) made in dir,
 * and the inode a name in dir has. */
uint64_t mkfile(struct mfs_store *s, uint64_t dir, const char *name);
uint64_t mkdir_(struct mfs_store *s, uint64_t dir, const char *name);
/* The chunks of ino's shown version that are not holes (what a replica
 * that has none of them asks for), whatever the chunking. */
uint32_t data_chunks(struct mfs_store *s, uint64_t ino);
uint64_t ino_of(struct mfs_store *s, uint64_t dir, const char *name);
/* For tests without a fixture: g_dir and g_s, set by the test, are closed
 * and removed by this teardown on every path. */
extern char *g_dir;
extern struct mfs_store *g_s;
int cleanup(void **state);
/* 0 when the counts the store keeps for `meshfs stat` (files, dirs,
 * symlinks, others, bytes, conflicts, chunk bytes) equal a scan of it;
 * otherwise -1 with both sets written into why. */
int mfs_test_census_check(struct mfs_store *s, char *why, size_t cap);

/* A directory listing (mfs_store_readdir into names_add): names, inodes
 * and modes, 256 at most; limit stops after that many (0 = all). */
typedef struct dirlist {
    size_t n;
    char v[256][MFS_NAME_MAX + 1];
    uint64_t ino[256];
    uint32_t mode[256];
    size_t limit;
} dirlist;
int names_add(void *arg, const char *name, uint64_t ino, uint32_t mode);
/* The whole listing of dir (caller frees). */
dirlist *list_dir(struct mfs_store *s, uint64_t dir);

#endif
