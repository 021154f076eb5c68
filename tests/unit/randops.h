/*
 * randops.h - the picking half of the random-operation generator shared by
 * the randomized replica tests (test_store_converge, test_sync_repl_sim):
 * listings of a store's directories, a random directory or entry of its
 * tree, names from small pools so names clash, and the random arguments of
 * writes, renames, xattr and attribute changes; and the errnos a local
 * filesystem may give for them.
 *
 * Every pick draws from the caller's PRNG in a fixed order. Seeds replay
 * regressions (tests/repl.cmake, MESHFS_SEED=N), so a change to the draws
 * made here, or to their order, changes every seeded run of both tests.
 *
 * Test-only code, single-threaded; never linked into meshfs.
 */
#ifndef MFS_RANDOPS_H
#define MFS_RANDOPS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "testutil.h"

/* The most entries a listing keeps (see randops.cap). */
#define RANDOPS_LIST_MAX 128

typedef struct randops_ent {
    char name[MFS_NAME_MAX + 1];
    uint64_t ino;
    uint32_t mode;
} randops_ent;

/* A directory listing: its first n entries, in readdir order. */
typedef struct randops_ents {
    size_t n;
    randops_ent v[RANDOPS_LIST_MAX];
} randops_ents;

/* The generator's state, owned by the test's world. Every field is set by
 * the test before the first pick; nothing here is allocated. */
typedef struct randops {
    mfs_rng *rng;                 /* every draw; not owned */
    const char *const *files;     /* name pools for files and dirs */
    size_t nfiles;
    const char *const *dirs;
    size_t ndirs;
    size_t cap;                   /* entries a listing keeps, 1..LIST_MAX */
    int rare_lost_found;          /* pick_entry passes over lost+found 7
                                     times in 8 (one draw per sight) */
    /* Called with a message when a store call fails that must not; it
     * must not return (it fails the cmocka test). */
    void (*fail)(void *arg, const char *msg);
    void *fail_arg;
} randops;

/* Lists dir into l (its first ro->cap entries); fails the test when
 * readdir does. */
void randops_ls(randops *ro, mfs_store *s, uint64_t dir, randops_ents *l);
/* A random directory: a descent from the root of up to 5 levels, stopping
 * at each with chance 1/3; lost+found is entered with chance 1/4. */
uint64_t randops_pick_dir(randops *ro, mfs_store *s);
/* A random entry of type want (S_IFREG, S_IFDIR; 0 any) of a random
 * directory, 6 tries. Conflict copies (".conflict-" in the name) only with
 * copies set. Returns 1 with *dir and *out set, 0 when none was found. */
int randops_pick_entry(randops *ro, mfs_store *s, uint32_t want, int copies,
                       uint64_t *dir, randops_ent *out);
/* 1 when name is a conflict copy's name. */
int randops_is_copy(const char *name);

/* A name from the file or directory pool. */
const char *randops_file(randops *ro);
const char *randops_dirname(randops *ro);
/* The new name of a rename of an object of mode `mode`: from its own pool,
 * one time in 5 from the other; *flags NOREPLACE or EXCHANGE one time in
 * 10 each, else 0. */
const char *randops_pick_rename(randops *ro, uint32_t mode, unsigned *flags);

/* A write of 1..3000 bytes (1..max one time in 8) at a random offset up to
 * the file's size, or up to `sparse` one time in 10. */
void randops_pick_write(randops *ro, uint64_t size, size_t max, uint64_t sparse,
                        size_t *len, uint64_t *off);

/* An xattr change: remove (one time in 3) or set one of three names. */
typedef struct randops_xattr {
    const char *name;
    int remove;
    char val[32];
    size_t len;
    int flags; /* 0, XATTR_CREATE or XATTR_REPLACE */
} randops_xattr;
void randops_pick_xattr(randops *ro, randops_xattr *x);

/* chmod (half the time) or chown + mtime. */
void randops_pick_setattr(randops *ro, mfs_setattr *sa);

/* 1 when rc is an error a local filesystem gives for these ops (ENOENT,
 * EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EINVAL, EBUSY, EPERM, ENODATA,
 * EOPNOTSUPP); 0 for anything else, 0 included. */
int randops_errno_expected(int rc);

#endif
