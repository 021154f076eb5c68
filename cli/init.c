/*
 * init.c - `meshfs init` (a new store and a new mesh), `meshfs invite`
 * (print a join token) and `meshfs join` (a new store in an existing mesh).
 *
 * Never overwrites an existing store or key: init refuses a directory
 * that already holds something; join refuses one that holds anything but
 * a store, and sets a store aside (kept, unchanged) to take its place.
 */
#include "cli.h"

#include "mesh.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int refuse_nonempty(const char *store)
{
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data.mdb", store);
    if (access(data, F_OK) == 0)
        return cli_fail("a store already exists in %s", store);
    return cli_fail("%s is not empty; refusing to create a store there", store);
}

int cli_cmd_init(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX];
    int is_default;
    mfs_store *s = NULL;
    int r = cli_args_parse("init", argc, argv, CLI_OPT_STORE, 0, &a);
    if (r)
        return r;
    if (cli_store_dir(a.store, store, sizeof store, &is_default) < 0)
        return cli_fail("cannot find the default store: set HOME, "
                        "MESHFS_STORE or use --store DIR");
    r = mfs_node_dir_empty(store);
    if (r < 0)
        return cli_fail("cannot read %s: %s", store, strerror(-r));
    if (r == 0)
        return refuse_nonempty(store);
    r = mfs_node_store_create(store, 1, &s);
    if (r < 0) {
        if (r == -ENOTEMPTY)
            return refuse_nonempty(store);
        return cli_fail("cannot create a store in %s: %s", store,
                        r == -EACCES || r == -EPERM ? "permission denied"
                                                    : mfs_store_strerror(r));
    }
    printf("created store %s (node %016" PRIx64 ")\n", store,
           mfs_store_node_id(s));
    mfs_store_close(s);
    return CLI_OK;
}

int cli_cmd_invite(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX], tok[MFS_INVITE_MAX];
    int is_default;
    struct mfs_mesh_key k;
    int r = cli_args_parse("invite", argc, argv, CLI_OPT_STORE, 1, &a);
    if (r)
        return r;
    if (a.npos < 1)
        return cli_usage_error("missing argument", "HOST:PORT");
    if (cli_store_dir(a.store, store, sizeof store, &is_default) < 0)
        return cli_fail("cannot find the default store");
    r = mfs_mesh_key_load(store, &k);
    if (r == -ENOENT)
        return cli_fail("no mesh key in %s (is it a store? `meshfs init`)",
                        store);
    if (r == -EPERM)
        return cli_fail("%s/%s is readable by others; refusing to use it",
                        store, MFS_MESH_KEY_FILE);
    if (r < 0)
        return cli_fail("cannot read the mesh key in %s: %s", store,
                        strerror(-r));
    r = mfs_invite_format(&k, a.pos[0], tok, sizeof tok);
    memset(&k, 0, sizeof k);
    if (r == -EINVAL)
        return cli_usage_error("bad address", a.pos[0]);
    if (r < 0)
        return cli_fail("cannot format the token: %s", strerror(-r));
    printf("%s\n", tok);
    return CLI_OK;
}

/* join on a directory that holds a store: the old store is set aside
 * (renamed to DIR.node-<id>-<date>, never changed) so that a new one can
 * take its place; its node's changes the mesh lacks are kept later
 * (node/rejoin.c). Refused while the old store is mounted. */
static int set_aside(const char *store, char *aside, size_t cap,
                     uint64_t *node)
{
    mfs_store *old = NULL;
    int r = mfs_store_open(&old, store, NULL, 0);
    if (r == -EBUSY)
        return cli_fail("the store in %s is mounted; unmount it first "
                        "(`meshfs umount`)",
                        store);
    if (r < 0)
        return cli_fail("%s holds something that is not a usable store (%s); "
                        "refusing to join there",
                        store, mfs_store_strerror(r));
    *node = mfs_store_node_id(old);
    mfs_store_close(old);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y%m%d-%H%M%S", &tm);
    if (snprintf(aside, cap, "%s.node-%016" PRIx64 "-%s", store, *node,
                 date) >= (int)cap)
        return cli_fail("%s: path too long", store);
    if (rename(store, aside) < 0)
        return cli_fail("cannot set the old store aside as %s: %s", aside,
                        strerror(errno));
    return CLI_OK;
}

/* The old store's listen address is the machine's, not the node's. */
static void keep_listen(const char *aside, const char *store)
{
    char from[PATH_MAX + 16], to[PATH_MAX + 16], addr[128];
    snprintf(from, sizeof from, "%s/listen", aside);
    snprintf(to, sizeof to, "%s/listen", store);
    FILE *f = fopen(from, "re");
    if (!f)
        return;
    if (fgets(addr, sizeof addr, f) && addr[0] != '\n' &&
        mfs_write_new_file(to, "%s", addr) < 0)
        fprintf(stderr, "meshfs: join: could not keep the listen address "
                        "of the old store (%s)\n",
                strerror(errno));
    fclose(f);
}

int cli_cmd_join(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX], hp[128], path[PATH_MAX + 16], aside[PATH_MAX];
    int is_default;
    struct mfs_mesh_key k;
    mfs_store *s = NULL;
    uint64_t old_node = 0;
    int r = cli_args_parse("join", argc, argv, CLI_OPT_STORE, 1, &a);
    if (r)
        return r;
    if (a.npos < 1)
        return cli_usage_error("missing argument", "TOKEN");
    if (mfs_invite_parse(a.pos[0], &k, hp, sizeof hp) < 0)
        return cli_usage_error("invalid invite token", a.pos[0]);
    if (cli_store_dir(a.store, store, sizeof store, &is_default) < 0)
        return cli_fail("cannot find the default store");
    r = mfs_node_dir_empty(store);
    if (r < 0)
        return cli_fail("cannot read %s: %s", store, strerror(-r));
    aside[0] = 0;
    if (r == 0) {
        snprintf(path, sizeof path, "%s/data.mdb", store);
        if (access(path, F_OK) != 0)
            return refuse_nonempty(store);
        r = set_aside(store, aside, sizeof aside, &old_node);
        if (r)
            return r;
    }
    r = mfs_node_store_create(store, 0, &s);
    if (r < 0) {
        cli_fail("cannot create a store in %s: %s", store,
                 mfs_store_strerror(r));
        goto undo;
    }
    r = mfs_mesh_key_write(store, &k);
    memset(&k, 0, sizeof k);
    if (r < 0) {
        cli_fail("cannot write the mesh key in %s: %s", store, strerror(-r));
        goto undo;
    }
    /* the first peer to contact; the sync layer reads it (docs/FS.md) */
    snprintf(path, sizeof path, "%s/peers", store);
    if ((r = mfs_write_new_file(path, "%s\n", hp)) < 0) {
        cli_fail("cannot write %s: %s", path, strerror(-r));
        goto undo;
    }
    if (aside[0]) {
        keep_listen(aside, store);
        if ((r = mfs_rejoin_write(store, aside, old_node)) < 0) {
            cli_fail("cannot write %s/%s: %s", store, MFS_REJOIN_FILE,
                     strerror(-r));
            goto undo;
        }
    }
    printf("created store %s (node %016" PRIx64 ") joining the mesh via %s\n",
           store, mfs_store_node_id(s), hp);
    if (aside[0])
        printf("the old store (node %016" PRIx64 ") is kept, unchanged, in %s;\n"
               "once this node has caught up, the changes node %016" PRIx64
               " made that the mesh lacks\nare copied to /lost+found/%016" PRIx64
               "-<date>/ and node %016" PRIx64 " is removed from the mesh\n",
               old_node, aside, old_node, old_node, old_node);
    mfs_store_close(s);
    return CLI_OK;
undo:
    memset(&k, 0, sizeof k);
    mfs_store_close(s);
    if (aside[0]) {
        /* put things back as they were: the new store goes, the old one
         * returns */
        char failed[PATH_MAX + 16];
        snprintf(failed, sizeof failed, "%s.failed-join", aside);
        if ((rename(store, failed) == 0 || errno == ENOENT) &&
            rename(aside, store) == 0)
            fprintf(stderr,
                    "meshfs: join: the old store is back in %s; the new "
                    "one's remains are in %s\n",
                    store, failed);
        else
            fprintf(stderr, "meshfs: join: the old store is in %s\n", aside);
    }
    return CLI_FAIL;
}
