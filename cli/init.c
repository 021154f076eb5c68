/*
 * init.c - `meshfs init` (a new store and a new mesh), `meshfs invite`
 * (print a join token) and `meshfs join` (a new store in an existing mesh).
 *
 * Never overwrites an existing store or key: init refuses a directory
 * that already holds something; join refuses one that holds anything but
 * a store, and sets a store aside (kept, unchanged) to take its place.
 */
#include "cli.h"

#include "invite.h"
#include "mesh.h"

#include <sodium.h>

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

/* The mesh key's tokens (a mesh made before per-node keys). */
static int invite_v1(const char *store, const cli_args *a)
{
    char tok[MFS_INVITE_MAX];
    struct mfs_mesh_key k;
    if (a->list || a->revoke || a->expires_s || a->uses)
        return cli_fail("this mesh has one mesh key (it was made before "
                        "per-node keys): its tokens are that key, and never "
                        "expire; --list, --revoke, --expires and --uses need "
                        "per-node keys");
    if (a->npos < 1)
        return cli_usage_error("missing argument", "HOST:PORT");
    int r = mfs_mesh_key_load(store, &k);
    if (r == -ENOENT)
        return cli_fail("no mesh key in %s (is it a store? `meshfs init`)",
                        store);
    if (r == -EPERM)
        return cli_fail("%s/%s is readable by others; refusing to use it",
                        store, MFS_MESH_KEY_FILE);
    if (r < 0)
        return cli_fail("cannot read the mesh key in %s: %s", store,
                        strerror(-r));
    r = mfs_invite_format(&k, a->pos[0], tok, sizeof tok);
    memset(&k, 0, sizeof k);
    if (r == -EINVAL)
        return cli_usage_error("bad address", a->pos[0]);
    if (r < 0)
        return cli_fail("cannot format the token: %s", strerror(-r));
    printf("%s\n", tok);
    return CLI_OK;
}

static void when(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M UTC", &tm);
}

static int invite_list(const char *store)
{
    mfs_invite_rec v[64];
    ssize_t n = mfs_invites_list(store, (int64_t)time(NULL), v, 64);
    if (n < 0)
        return cli_fail("cannot read %s/%s: %s", store, MFS_INVITES_FILE,
                        strerror((int)-n));
    if (n == 0)
        printf("no open invitations\n");
    else
        printf("%-32s  %-4s  %-20s  %s\n", "ID", "USES", "CREATED", "EXPIRES");
    for (ssize_t i = 0; i < n && i < 64; i++) {
        char id[33], c[32], e[32];
        sodium_bin2hex(id, sizeof id, v[i].id, sizeof v[i].id);
        when(v[i].created, c, sizeof c);
        when(v[i].expires, e, sizeof e);
        printf("%-32s  %-4u  %-20s  %s\n", id, v[i].uses, c, e);
    }
    sodium_memzero(v, sizeof v);
    return CLI_OK;
}

/* The address the mount listens on, if it is a specific one. */
static int listen_addr(const char *store, char *out, size_t cap)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/listen", store);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int ok = fgets(out, (int)cap, f) != NULL;
    fclose(f);
    out[strcspn(out, "\n")] = 0;
    if (!ok || !cli_host_port_ok(out) || !strncmp(out, "0.0.0.0:", 8) ||
        !strncmp(out, "[::]:", 5))
        return -1;
    return 0;
}

int cli_cmd_invite(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX], tok[MFS_INVITE2_MAX], hp[128];
    int is_default;
    mfs_ident id;
    int r = cli_args_parse("invite", argc, argv, CLI_OPT_STORE | CLI_OPT_INVITE,
                           1, &a);
    if (r)
        return r;
    if (cli_store_dir(a.store, store, sizeof store, &is_default) < 0)
        return cli_fail("cannot find the default store");
    r = mfs_ident_load(store, &id);
    if (r == -ENOENT)
        return invite_v1(store, &a);
    if (r < 0)
        return cli_fail(
            "cannot use the node key %s/%s: %s", store, MFS_IDENT_FILE,
            r == -EPERM ? "readable by others (chmod 600 it)" : strerror(-r));
    char mp[PATH_MAX + 16];
    snprintf(mp, sizeof mp, "%s/%s", store, MFS_MIGRATING_FILE);
    if (access(mp, F_OK) == 0) {
        mfs_ident_wipe(&id);
        return cli_fail("the mesh is moving from its mesh key to per-node "
                        "keys (meshfs migrate): invite once meshfs stat no "
                        "longer shows the move");
    }
    if (a.list) {
        mfs_ident_wipe(&id);
        return invite_list(store);
    }
    if (a.revoke) {
        mfs_ident_wipe(&id);
        int n = mfs_invites_revoke(store, a.revoke);
        if (n < 0)
            return cli_fail("cannot change %s/%s: %s", store, MFS_INVITES_FILE,
                            strerror(-n));
        if (n == 0)
            return cli_fail("no open invitation's id starts with %s", a.revoke);
        printf("revoked %d invitation(s)\n", n);
        return CLI_OK;
    }
    if (a.npos >= 1)
        snprintf(hp, sizeof hp, "%s", a.pos[0]);
    else if (listen_addr(store, hp, sizeof hp) < 0) {
        mfs_ident_wipe(&id);
        return cli_usage_error("give the address others reach this node at "
                               "(the mount listens on all addresses)",
                               "HOST:PORT");
    }
    if (!cli_host_port_ok(hp) ||
        strlen(hp) >= sizeof(((mfs_invite *)0)->host_port)) {
        mfs_ident_wipe(&id);
        return cli_usage_error("bad address (want IP:PORT)", hp);
    }
    struct mfs_mesh_key k;
    if ((r = mfs_mesh_key_load(store, &k)) < 0) {
        mfs_ident_wipe(&id);
        return cli_fail("cannot read the mesh id in %s/%s: %s", store,
                        MFS_MESH_KEY_FILE, strerror(-r));
    }
    mfs_invite iv = {.mesh_id = k.mesh_id, .by = id.node};
    memset(&k, 0, sizeof k);
    memcpy(iv.by_pk, id.pk, sizeof iv.by_pk);
    mfs_ident_wipe(&id);
    memcpy(iv.host_port, hp, strlen(hp) + 1);
    mfs_invite_rec rec;
    randombytes_buf(rec.id, sizeof rec.id);
    randombytes_buf(rec.secret, sizeof rec.secret);
    rec.created = (int64_t)time(NULL);
    rec.expires = rec.created + (a.expires_s ? a.expires_s : 86400);
    rec.uses = a.uses ? a.uses : 1;
    memcpy(iv.id, rec.id, sizeof iv.id);
    memcpy(iv.secret, rec.secret, sizeof iv.secret);
    r = mfs_invite2_format(&iv, tok, sizeof tok);
    if (r >= 0)
        r = mfs_invites_add(store, &rec);
    sodium_memzero(&iv, sizeof iv);
    if (r < 0) {
        sodium_memzero(&rec, sizeof rec);
        return cli_fail("cannot make an invitation: %s", strerror(-r));
    }
    char idh[33], e[32];
    sodium_bin2hex(idh, sizeof idh, rec.id, sizeof rec.id);
    when(rec.expires, e, sizeof e);
    sodium_memzero(&rec, sizeof rec);
    printf("%s\n", tok);
    fprintf(stderr,
            "meshfs: invitation %.8s: %u join(s) until %s (`meshfs invite "
            "--list`, `--revoke %.8s`)\n",
            idh, a.uses ? a.uses : 1, e, idh);
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

/* A per-node keys token: this node's key, and its join proof for the
 * inviter (STORE/joining). */
static int join_v2(const char *store, const mfs_invite *iv, uint64_t node)
{
    mfs_ident id;
    int r = mfs_ident_create(store, node);
    if (r < 0 || (r = mfs_ident_load(store, &id)) < 0)
        return r;
    mfs_joining j = {.by = iv->by};
    memcpy(j.by_pk, iv->by_pk, sizeof j.by_pk);
    snprintf(j.host_port, sizeof j.host_port, "%s", iv->host_port);
    mfs_join_make(iv, node, id.pk, j.join);
    mfs_ident_wipe(&id);
    r = mfs_joining_write(store, &j);
    sodium_memzero(&j, sizeof j);
    return r;
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
    mfs_invite iv;
    int v2 = mfs_invite2_parse(a.pos[0], &iv) == 0;
    if (v2) {
        k.mesh_id = iv.mesh_id; /* the key file keeps the mesh id */
        randombytes_buf(k.key, sizeof k.key);
        snprintf(hp, sizeof hp, "%s", iv.host_port);
    } else if (mfs_invite_parse(a.pos[0], &k, hp, sizeof hp) < 0) {
        return cli_usage_error("invalid invite token", a.pos[0]);
    }
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
    if (v2 && (r = join_v2(store, &iv, mfs_store_node_id(s))) < 0) {
        cli_fail("cannot write this node's key or join in %s: %s", store,
                 strerror(-r));
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
    sodium_memzero(&iv, sizeof iv);
    return CLI_OK;
undo:
    memset(&k, 0, sizeof k);
    sodium_memzero(&iv, sizeof iv);
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
