/*
 * trash.c - `meshfs trash` and `meshfs restore`: what the trash keeps
 * (deleted files and overwritten versions, for the mount's trash period,
 * docs/FS.md "Space"), and bringing one back as a new change. Both ask the
 * mount's daemon over the control socket ("trash", "restore").
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct titem {
    char inode[40], version[40];
    unsigned long long vhlc, chlc, cnode, size;
    int deleted, have;
    const char *path; /* into the reply */
} titem;

static int parse_item(const char *v, titem *t)
{
    int pos = 0;
    unsigned long long vnode;
    memset(t, 0, sizeof *t);
    if (sscanf(v, "%39s %39s %llx.%llx %llu %d %d %n", t->inode, t->version,
               &t->chlc, &t->cnode, &t->size, &t->deleted, &t->have,
               &pos) != 7 ||
        !v[pos])
        return -1;
    if (sscanf(t->version, "%llx.%llx", &t->vhlc, &vnode) != 2)
        return -1;
    t->path = v + pos;
    return 0;
}

/* Items of the reply, newest change first; *n gets the count. */
static titem *items_of(const cli_reply *r, size_t *n)
{
    titem *v = calloc(r->n + 1, sizeof *v);
    *n = 0;
    if (!v)
        return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "item") == 0 &&
            parse_item(r->val[i], &v[*n]) == 0 &&
            (v[*n].size || v[*n].deleted)) /* (an O_TRUNC's empty step) */
            (*n)++;
    for (size_t i = 1; i < *n; i++) /* insertion sort: newest first */
        for (size_t j = i; j && v[j - 1].chlc < v[j].chlc; j--) {
            titem x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    return v;
}

static int under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (!strcmp(prefix, "/"))
        return 1;
    return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

static void when_text(unsigned long long hlc, char *out, size_t cap)
{
    time_t t = (time_t)((hlc >> 16) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

static void json_path(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static int ask_trash(const cli_mount *m, cli_reply *r)
{
    if (cli_control_call(m->source, "trash", 20000, r) < 0)
        return cli_fail("the daemon of %s does not answer", m->mnt);
    if (r->err) {
        int code = cli_fail("%s", r->msg);
        cli_reply_free(r);
        return code;
    }
    return 0;
}

int cli_cmd_trash(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse("trash", argc, argv, CLI_OPT_JSON, 1, &a);
    if (rc)
        return rc;
    cli_mount m;
    char rel[PATH_MAX];
    if ((rc = cli_mount_find(a.npos ? a.pos[0] : ".", &m, rel, sizeof rel)))
        return rc;
    cli_reply r;
    if ((rc = ask_trash(&m, &r)))
        return rc;
    size_t n;
    titem *v = items_of(&r, &n);
    if (!v) {
        cli_reply_free(&r);
        return cli_fail("out of memory");
    }
    if (a.json)
        printf("[");
    else
        printf("%-19s %-11s %-16s %12s  %s\n", "when (UTC)", "what", "by node",
               "size", "path");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (!under(v[i].path, rel))
            continue;
        /* its number among the versions of the same path, newest 1 */
        int num = 1;
        for (size_t j = 0; j < i; j++)
            num += !strcmp(v[j].path, v[i].path);
        char when[32];
        when_text(v[i].chlc, when, sizeof when);
        if (a.json) {
            printf("%s{\"path\":", first ? "" : ",");
            json_path(v[i].path);
            printf(",\"version\":%d,\"what\":\"%s\",\"when\":\"%sZ\","
                   "\"node\":\"%016llx\",\"size\":%llu,\"here\":%s}",
                   num, v[i].deleted ? "deleted" : "overwritten", when,
                   v[i].cnode, v[i].size, v[i].have ? "true" : "false");
        } else {
            printf("%-19s %-11s %016llx %12llu  %s%s", when,
                   v[i].deleted ? "deleted" : "overwritten", v[i].cnode,
                   v[i].size, v[i].path,
                   v[i].have ? ""
                             : "  (content not on "
                               "this node)");
            if (num > 1)
                printf("  (--version %d)", num);
            printf("\n");
        }
        first = 0;
    }
    if (a.json)
        printf("]\n");
    free(v);
    cli_reply_free(&r);
    return CLI_OK;
}

/* Asks the daemon to restore item t at mount-relative dest. */
static int restore_one(const cli_mount *m, const titem *t, const char *dest,
                       int quiet)
{
    char req[PATH_MAX + 128];
    cli_reply r;
    snprintf(req, sizeof req, "restore %s %s %s", t->inode, t->version, dest);
    if (cli_control_call(m->source, req, 20000, &r) < 0)
        return cli_fail("the daemon of %s does not answer", m->mnt);
    if (r.err) {
        int code = cli_fail("%s", r.msg);
        cli_reply_free(&r);
        return code;
    }
    const char *size = cli_reply_get(&r, "size");
    const char *absent = cli_reply_get(&r, "absent");
    int fetch = absent && strcmp(absent, "0");
    if (!quiet || fetch)
        printf("restored %s%s (%s bytes)%s%s%s\n", m->mnt,
               strcmp(dest, "/") ? dest : "", size ? size : "?",
               fetch ? "; its content is not on this node: " : "",
               fetch ? absent : "",
               fetch ? " chunks come from the members that keep it" : "");
    cli_reply_free(&r);
    return CLI_OK;
}

/* A deleted directory: every deleted file under it (its newest trashed
 * version), its directories made again through the mount. Frees v, r. */
static int restore_tree(const cli_mount *m, const char *rel, titem *v, size_t n,
                        cli_reply *r)
{
    int code = CLI_OK, done = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].deleted || !under(v[i].path, rel) || !strcmp(v[i].path, rel))
            continue;
        int dup = 0; /* an older version of a path already done */
        for (size_t j = 0; j < i && !dup; j++)
            dup = v[j].deleted && !strcmp(v[j].path, v[i].path);
        if (dup || v[i].path[0] != '/')
            continue;
        char dir[PATH_MAX];
        int k = snprintf(dir, sizeof dir, "%s%s", m->mnt, v[i].path);
        if (k < 0 || (size_t)k >= sizeof dir)
            continue;
        *strrchr(dir, '/') = '\0';
        if (mfs_node_mkdirs(dir, 0755) < 0) {
            code = cli_fail("cannot make %s: %s", dir, strerror(errno));
            failed++;
            continue;
        }
        if (restore_one(m, &v[i], v[i].path, 1) != CLI_OK) {
            code = CLI_FAIL;
            failed++;
        } else {
            done++;
        }
    }
    if (!done && !failed)
        code = cli_fail("%s is not in the trash (see `meshfs trash`)", rel);
    else
        printf("restored %d file%s under %s%s%s\n", done, done == 1 ? "" : "s",
               m->mnt, rel, failed ? " (some failed)" : "");
    free(v);
    cli_reply_free(r);
    return code;
}

int cli_cmd_restore(int argc, char **argv)
{
    /* --version N and --as NEW are ours; the rest is the common parser's */
    char *rest[16];
    int nrest = 0, num = 1;
    const char *as = NULL;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--version") && i + 1 < argc) {
            char *end;
            long x = strtol(argv[++i], &end, 10);
            if (*end || x < 1 || x > 1000000)
                return cli_usage_error("bad --version (1 is the newest)",
                                       argv[i]);
            num = (int)x;
        } else if (i > 0 && !strcmp(argv[i], "--as") && i + 1 < argc) {
            as = argv[++i];
        } else if (nrest < 16) {
            rest[nrest++] = argv[i];
        }
    }
    cli_args a;
    int rc = cli_args_parse("restore", nrest, rest, 0, 1, &a);
    if (rc)
        return rc;
    if (a.npos != 1)
        return cli_usage_error("give the path of the file to restore",
                               a.npos ? a.pos[1] : "");
    cli_mount m, m2;
    char rel[PATH_MAX], dest[PATH_MAX];
    if ((rc = cli_mount_find(a.pos[0], &m, rel, sizeof rel)))
        return rc;
    snprintf(dest, sizeof dest, "%s", rel);
    if (as) {
        if ((rc = cli_mount_find(as, &m2, dest, sizeof dest)))
            return rc;
        if (strcmp(m.mnt, m2.mnt))
            return cli_fail("--as %s is not in the mount of %s", as, a.pos[0]);
    }
    cli_reply r;
    if ((rc = ask_trash(&m, &r)))
        return rc;
    size_t n;
    titem *v = items_of(&r, &n);
    const titem *pick = NULL;
    int seen = 0;
    for (size_t i = 0; v && i < n && !pick; i++)
        if (!strcmp(v[i].path, rel) && ++seen == num)
            pick = &v[i];
    if (!pick && !seen && !as)
        return restore_tree(&m, rel, v, n, &r);
    if (!pick) {
        int code = seen ? cli_fail("%s has %d version%s in the trash, not %d",
                                   rel, seen, seen == 1 ? "" : "s", num)
                        : cli_fail("%s is not in the trash (see `meshfs "
                                   "trash`)",
                                   rel);
        free(v);
        cli_reply_free(&r);
        return code;
    }
    rc = restore_one(&m, pick, dest, 0);
    free(v);
    cli_reply_free(&r);
    return rc;
}
