/*
 * randops.c - see randops.h. The draws made here, and their order, are
 * what a seed replays: change neither without re-recording the seeds that
 * tests/repl.cmake replays. Test-only code; never linked into meshfs.
 */
#include "randops.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const xattr_pool[] = {"user.a", "user.b", "trusted.c"};

static uint64_t draw(randops *ro, uint64_t n)
{
    return mfs_rng_below(ro->rng, n);
}

typedef struct lister {
    randops_ents *l;
    size_t cap;
} lister;

static int ls_add(void *arg, const char *name, uint64_t ino, uint32_t mode)
{
    lister *ls = arg;
    randops_ents *l = ls->l;
    if (l->n < ls->cap) {
        snprintf(l->v[l->n].name, sizeof(l->v[0].name), "%s", name);
        l->v[l->n].ino = ino;
        l->v[l->n].mode = mode;
        l->n++;
    }
    return 0;
}

void randops_ls(randops *ro, mfs_store *s, uint64_t dir, randops_ents *l)
{
    lister ls = {l, ro->cap < RANDOPS_LIST_MAX ? ro->cap : RANDOPS_LIST_MAX};
    l->n = 0;
    int rc = mfs_store_readdir(s, dir, NULL, ls_add, &ls);
    if (rc) {
        char msg[64];
        snprintf(msg, sizeof(msg), "readdir %llu: %d\n",
                 (unsigned long long)dir, rc);
        ro->fail(ro->fail_arg, msg);
    }
}

int randops_is_copy(const char *name)
{
    return strstr(name, ".conflict-") != NULL;
}

uint64_t randops_pick_dir(randops *ro, mfs_store *s)
{
    uint64_t cur = MFS_ROOT_INO;
    randops_ents l;
    for (int depth = 0; depth < 5 && draw(ro, 3); depth++) {
        randops_ls(ro, s, cur, &l);
        uint64_t dirs[RANDOPS_LIST_MAX];
        size_t nd = 0;
        for (size_t i = 0; i < l.n; i++)
            if (S_ISDIR(l.v[i].mode) &&
                (strcmp(l.v[i].name, "lost+found") || !draw(ro, 4)))
                dirs[nd++] = l.v[i].ino;
        if (!nd)
            break;
        cur = dirs[draw(ro, nd)];
    }
    return cur;
}

int randops_pick_entry(randops *ro, mfs_store *s, uint32_t want, int copies,
                       uint64_t *dir, randops_ent *out)
{
    for (int tries = 0; tries < 6; tries++) {
        uint64_t d = randops_pick_dir(ro, s);
        randops_ents l;
        randops_ls(ro, s, d, &l);
        size_t idx[RANDOPS_LIST_MAX], n = 0;
        for (size_t i = 0; i < l.n; i++) {
            if (want && (l.v[i].mode & S_IFMT) != want)
                continue;
            if (!copies && randops_is_copy(l.v[i].name))
                continue;
            if (ro->rare_lost_found && !strcmp(l.v[i].name, "lost+found") &&
                draw(ro, 8))
                continue;
            idx[n++] = i;
        }
        if (n) {
            *dir = d;
            *out = l.v[idx[draw(ro, n)]];
            return 1;
        }
    }
    return 0;
}

const char *randops_file(randops *ro)
{
    return ro->files[draw(ro, ro->nfiles)];
}

const char *randops_dirname(randops *ro)
{
    return ro->dirs[draw(ro, ro->ndirs)];
}

const char *randops_pick_rename(randops *ro, uint32_t mode, unsigned *flags)
{
    const char *nn = S_ISDIR(mode) ? randops_dirname(ro) : randops_file(ro);
    if (draw(ro, 5) == 0)
        nn = S_ISDIR(mode) ? randops_file(ro) : randops_dirname(ro);
    uint64_t x = draw(ro, 10);
    *flags = x == 0   ? MFS_RENAME_NOREPLACE
             : x == 1 ? MFS_RENAME_EXCHANGE
                      : 0;
    return nn;
}

void randops_pick_write(randops *ro, uint64_t size, size_t max, uint64_t sparse,
                        size_t *len, uint64_t *off)
{
    *len = draw(ro, 8) ? 1 + (size_t)draw(ro, 3000) : 1 + (size_t)draw(ro, max);
    if (draw(ro, 10) == 0)
        *off = draw(ro, sparse);
    else
        *off = size ? draw(ro, size + 1) : 0;
}

void randops_pick_xattr(randops *ro, randops_xattr *x)
{
    memset(x, 0, sizeof(*x));
    x->name = xattr_pool[draw(ro, 3)];
    x->remove = draw(ro, 3) == 0;
    if (x->remove)
        return;
    int vl = snprintf(x->val, sizeof(x->val), "v%llu",
                      (unsigned long long)draw(ro, 1000));
    x->len = (size_t)vl;
    x->flags = (int)draw(ro, 3);
}

void randops_pick_setattr(randops *ro, mfs_setattr *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->mask = draw(ro, 2) ? MFS_SET_MODE : MFS_SET_UID | MFS_SET_MTIME;
    sa->mode = (uint32_t)draw(ro, 01000);
    sa->uid = (uint32_t)draw(ro, 3);
    sa->mtime_ns = (int64_t)draw(ro, 1000000) * 1000;
}

int randops_errno_expected(int rc)
{
    switch (rc) {
    case -ENOENT:
    case -EEXIST:
    case -ENOTDIR:
    case -EISDIR:
    case -ENOTEMPTY:
    case -EINVAL:
    case -EBUSY:
    case -EPERM:
    case -ENODATA:
    case -EOPNOTSUPP:
        return 1;
    }
    return 0;
}
