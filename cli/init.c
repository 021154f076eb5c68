/*
 * init.c - `meshfs init` (a new store and a new mesh), `meshfs invite`
 * (print a join token) and `meshfs join` (a new store in an existing mesh).
 *
 * Never overwrites an existing store or key: each refuses a directory that
 * already holds something.
 */
#include "cli.h"

#ifdef MESHFS_HAVE_SYNC
#include "mesh.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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
    r = cli_dir_empty(store);
    if (r < 0)
        return cli_fail("cannot read %s: %s", store, strerror(-r));
    if (r == 0)
        return refuse_nonempty(store);
    r = cli_store_create(store, 1, &s);
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

#ifdef MESHFS_HAVE_SYNC
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

int cli_cmd_join(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX], hp[128], path[PATH_MAX + 16];
    int is_default;
    struct mfs_mesh_key k;
    mfs_store *s = NULL;
    int r = cli_args_parse("join", argc, argv, CLI_OPT_STORE, 1, &a);
    if (r)
        return r;
    if (a.npos < 1)
        return cli_usage_error("missing argument", "TOKEN");
    if (mfs_invite_parse(a.pos[0], &k, hp, sizeof hp) < 0)
        return cli_usage_error("invalid invite token", a.pos[0]);
    if (cli_store_dir(a.store, store, sizeof store, &is_default) < 0)
        return cli_fail("cannot find the default store");
    r = cli_dir_empty(store);
    if (r < 0)
        return cli_fail("cannot read %s: %s", store, strerror(-r));
    if (r == 0)
        return refuse_nonempty(store);
    r = cli_store_create(store, 0, &s);
    if (r < 0)
        return cli_fail("cannot create a store in %s: %s", store,
                        mfs_store_strerror(r));
    r = mfs_mesh_key_write(store, &k);
    memset(&k, 0, sizeof k);
    if (r < 0) {
        mfs_store_close(s);
        return cli_fail("cannot write the mesh key in %s: %s", store,
                        strerror(-r));
    }
    /* the first peer to contact; the sync layer reads it (docs/FS.md) */
    snprintf(path, sizeof path, "%s/peers", store);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || dprintf(fd, "%s\n", hp) < 0 || fsync(fd) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        mfs_store_close(s);
        return cli_fail("cannot write %s: %s", path, strerror(e));
    }
    close(fd);
    printf("created store %s (node %016" PRIx64 ") joining the mesh via %s\n",
           store, mfs_store_node_id(s), hp);
    mfs_store_close(s);
    return CLI_OK;
}
#else
int cli_cmd_invite(int argc, char **argv)
{
    return cli_fail("invite: this meshfs was built without the sync layer");
}

int cli_cmd_join(int argc, char **argv)
{
    return cli_fail("join: this meshfs was built without the sync layer");
}
#endif
