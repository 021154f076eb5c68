/*
 * opstats.c - every FUSE request counted by kind, with a histogram of the
 * time its handler took (fs/fs.h "request counts and latencies"). The
 * handlers run on several threads at once: each count is a relaxed atomic
 * add on the request kind's counters, about 30 ns per request against
 * the 10-20 us of its round trip through the kernel.
 */
#define FUSE_USE_VERSION 312
#include "fs.h"

#include <fuse_lowlevel.h>

#include <string.h>
#include <time.h>

const char *const mfs_fsop_names[MFS_FSOP__COUNT] = {
    "lookup",   "forget",      "forget_multi", "getattr",     "setattr",
    "readlink", "mknod",       "mkdir",        "unlink",      "rmdir",
    "symlink",  "rename",      "link",         "open",        "read",
    "write",    "flush",       "release",      "fsync",       "opendir",
    "readdir",  "readdirplus", "releasedir",   "fsyncdir",    "statfs",
    "setxattr", "getxattr",    "listxattr",    "removexattr", "access",
    "create",   "fallocate",
};

const uint32_t mfs_fsop_bound_us[MFS_FSOP_BUCKETS - 1] = {
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000, 1000000,
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

mfs_fs_opclock mfs_fs_op_begin(struct fuse_req *req)
{
    return (mfs_fs_opclock){.fs = fuse_req_userdata(req), .t0_ns = now_ns()};
}

void mfs_fs_op_end(const mfs_fs_opclock *t, enum mfs_fsop op)
{
    if (!t->fs)
        return;
    uint64_t ns = now_ns() - t->t0_ns;
    unsigned b = 0;
    while (b < MFS_FSOP_BUCKETS - 1 &&
           ns > (uint64_t)mfs_fsop_bound_us[b] * 1000u)
        b++;
    mfs_fsop_stat *s = &t->fs->opstats[op];
    __atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->sum_ns, ns, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->bucket[b], 1, __ATOMIC_RELAXED);
}

void mfs_fs_op_stats(const mfs_fs *fs, mfs_fsop_stat *out)
{
    for (int op = 0; op < MFS_FSOP__COUNT; op++) {
        const mfs_fsop_stat *s = &fs->opstats[op];
        /* each field on its own: a sum may run a request ahead of its
         * count, which a scrape cannot tell from a request in between */
        out[op].count = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
        out[op].sum_ns = __atomic_load_n(&s->sum_ns, __ATOMIC_RELAXED);
        for (int b = 0; b < MFS_FSOP_BUCKETS; b++)
            out[op].bucket[b] =
                __atomic_load_n(&s->bucket[b], __ATOMIC_RELAXED);
    }
}
