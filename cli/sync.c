/*
 * sync.c - `meshfs sync [--peers N | --all] [--timeout SECONDS] [PATH]`: a
 * barrier for scripts and for "before I close the laptop" (issue 12,
 * DESIGN P10). The daemon (node/control.c, verb "sync") commits, takes
 * this node's last op and waits for the members to hold it durably
 * (HELD, docs/REPLICATION.md "Write concern"), streaming its progress;
 * this shows it and exits 0, or 1 naming what is missing.
 */
#include "cli.h"
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- meshfs sync --------------------------------------------------------- */

#define SYNC_SHOWN_MAX 64 /* members a progress line can name */

/* What the daemon streamed so far, and how it is shown on stderr: on a
 * terminal one line rewritten in place, else a line per change. */
typedef struct sync_view {
    int tty;
    int on_screen; /* a terminal line waits to be cleared */
    int all;       /* every live member, not --peers N */
    int progressed;
    mfs_sync_progress p;
    mfs_node_held held[SYNC_SHOWN_MAX]; /* the group before "progress" */
    size_t nheld;
    char note[256];
} sync_view;

static void sync_clear(sync_view *v)
{
    if (v->on_screen)
        fputs("\r\033[K", stderr);
    v->on_screen = 0;
}

/* "1 of 2 members hold ...; waiting for ID (alive, at op N), ..." */
static void sync_show(sync_view *v)
{
    char line[512], *w = line;
    size_t left = sizeof line, named = 0;
    int k = snprintf(w, left,
                     "sync: %u of %u %smember%s hold%s this node's "
                     "changes up to op %" PRIu64,
                     v->p.have, v->p.want, v->all ? "live " : "",
                     v->p.want == 1 ? "" : "s", v->p.have == 1 ? "s" : "",
                     v->p.seq);
    for (size_t i = 0; k > 0 && (size_t)k < left && i < v->nheld; i++) {
        const mfs_node_held *h = &v->held[i];
        if (h->held >= v->p.seq || (v->all && !h->alive))
            continue;
        w += k;
        left -= (size_t)k;
        if (named++ == 3) {
            k = snprintf(w, left, ", ...");
            break;
        }
        k = snprintf(w, left, "%s%016" PRIx64 " (%s, at op %" PRIu64 ")",
                     named == 1 ? "; waiting for " : ", ", h->peer,
                     h->alive ? "alive" : "down", h->held);
    }
    sync_clear(v);
    if (v->tty) {
        fprintf(stderr, "%s", line);
        v->on_screen = 1;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

static int sync_line(void *arg, const char *key, const char *val)
{
    sync_view *v = arg;
    if (strcmp(key, "held") == 0 && v->nheld < SYNC_SHOWN_MAX) {
        if (mfs_sync_held_parse(val, &v->held[v->nheld]) == 0)
            v->nheld++;
    } else if (strcmp(key, "progress") == 0) {
        if (mfs_sync_progress_parse(val, &v->p) == 0) {
            v->progressed = 1;
            sync_show(v);
        }
        v->nheld = 0;
    } else if (strcmp(key, "note") == 0) {
        snprintf(v->note, sizeof v->note, "%s", val);
    }
    return 0; /* (keys of a newer daemon: ignored) */
}

int cli_cmd_sync(int argc, char **argv)
{
    cli_args a;
    cli_mount m;
    char path[PATH_MAX], rel[PATH_MAX], req[64];
    int rc = cli_args_parse("sync", argc, argv, CLI_OPT_SYNC, 1, &a);
    if (rc)
        return rc;
    const char *arg = a.npos ? a.pos[0] : ".";
    if (cli_abspath(arg, path, sizeof path) < 0)
        return cli_fail("path too long: %s", arg);
    if (cli_mount_dead(path))
        return cli_fail("the daemon of the mount that holds %s is not "
                        "running (a dead mount: `meshfs mount` it again)",
                        path);
    if ((rc = cli_mount_find(path, &m, rel, sizeof rel)))
        return rc;
    uint32_t ms = a.timeout_ms ? a.timeout_ms : CLI_SYNC_TIMEOUT_DEFAULT_MS;
    snprintf(req, sizeof req, "sync %d %" PRIu32,
             a.sync_peers > 0 ? a.sync_peers : 0, ms);
    sync_view v = {.tty = isatty(2), .all = a.sync_peers <= 0};
    cli_reply r;
    /* the daemon answers by its timeout; ours only guards against a hang */
    rc = cli_control_stream(m.source, req, (int)ms + 15000, sync_line, &v, &r);
    sync_clear(&v);
    if (rc == -ENOENT || rc == -ECONNREFUSED)
        return cli_fail("the daemon of %s is not running", m.mnt);
    if (rc < 0)
        return cli_fail("the daemon of %s did not answer the sync: %s", m.mnt,
                        strerror(-rc));
    if (r.err)
        return cli_fail("%s: %s", m.mnt, r.msg);
    if (v.note[0])
        printf("%s\n", v.note);
    else if (!v.progressed)
        printf("in sync\n");
    else
        printf("in sync: %u of %u %smember%s hold%s every change this node "
               "made up to op %" PRIu64 "\n",
               v.p.have, v.p.want, v.all ? "live " : "",
               v.p.want == 1 ? "" : "s", v.p.have == 1 ? "s" : "", v.p.seq);
    return CLI_OK;
}
