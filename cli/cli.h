/*
 * cli.h - what the modules of the `meshfs` command share: argument parsing,
 * store paths, /proc/self/mountinfo lookups and the control socket.
 *
 * Exit codes of every subcommand: 0 ok, 1 runtime failure, 2 usage error.
 */
#ifndef MFS_CLI_H
#define MFS_CLI_H

#include "node.h"
#include "store.h"

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* ---- arguments (cli/main.c) -------------------------------------------- */

enum {
    CLI_OPT_STORE = 1 << 0,  /* --store DIR */
    CLI_OPT_FG = 1 << 1,     /* -f */
    CLI_OPT_O = 1 << 2,      /* -o OPTS (repeatable, joined with commas) */
    CLI_OPT_JSON = 1 << 3,   /* --json */
    CLI_OPT_MESH = 1 << 4,   /* --listen IP:PORT, --peer IP:PORT (repeatable) */
    CLI_OPT_ACKS = 1 << 5,   /* --acks N, --acks-timeout SECONDS, --acks-wait */
    CLI_OPT_SYNC = 1 << 6,   /* --peers N | --all, --timeout SECONDS */
    CLI_OPT_INVITE = 1 << 7, /* --expires DURATION, --uses N, --list,
                                --revoke ID */
    CLI_OPT_HTTP = 1 << 8,   /* --http IP:PORT, --http-public,
                                --metrics-open */
    CLI_OPT_VIEW = 1 << 9,   /* --watch, --url (meshfs stat) */
    CLI_OPT_COUNT = 1 << 10, /* --count N (1 or more; meshfs top) */
};

/* The most --acks-timeout and -o acks-timeout= take (the daemon's bound,
 * MFS_DAEMON_ACKS_TIMEOUT_MAX_MS: checked in cli/mount.c), and --timeout
 * of `meshfs sync`. */
#define CLI_ACKS_TIMEOUT_MAX_S 3600
#define CLI_SYNC_TIMEOUT_MAX_S 86400
#define CLI_SYNC_TIMEOUT_DEFAULT_MS 60000

#define CLI_MAX_PEERS 16

typedef struct cli_args {
    const char *store; /* --store, NULL if not given */
    int foreground;
    char opts[4096]; /* -o values joined with ',' */
    int json;
    int help;
    const char *listen;
    const char *peers[CLI_MAX_PEERS];
    int npeers;
    const char *pos[4];
    int npos;
    /* CLI_OPT_ACKS: -1 / 0 / 0 when not given */
    int acks;
    uint32_t acks_timeout_ms;
    int acks_wait;
    /* CLI_OPT_SYNC: --peers N (-1 when not given), --all, --timeout (0
     * when not given) */
    int sync_peers;
    int sync_all;
    uint32_t timeout_ms;
    /* CLI_OPT_INVITE: 0 / 0 / 0 / NULL when not given */
    int64_t expires_s;
    unsigned uses;
    int list;
    const char *revoke;
    /* CLI_OPT_HTTP: NULL / 0 / 0 when not given */
    const char *http;
    int http_public;
    int metrics_open;
    /* CLI_OPT_VIEW */
    int watch;
    int url;
    /* CLI_OPT_COUNT: 0 when not given */
    unsigned count;
} cli_args;

/* Parses argv (after the subcommand). On a usage error prints the one-line
 * message and returns CLI_USAGE; else 0. Positional arguments beyond maxpos
 * are usage errors too. */
int cli_args_parse(const char *cmd, int argc, char **argv, unsigned allowed,
                   int maxpos, cli_args *a);
/* A whole number from 0 to max (decimal digits only). 0 or -1. */
int cli_parse_count(const char *s, unsigned max, unsigned *out);
/* A number of seconds, fractions allowed, more than 0 and at most max_s,
 * as milliseconds (at least 1). 0 or -1. */
int cli_parse_seconds(const char *s, unsigned max_s, uint32_t *ms);
/* 1 if s looks like a numeric "IP:PORT" or "[IPv6]:PORT". */
int cli_host_port_ok(const char *s);
/* Prints "meshfs: <what>: <token>" and the hint; returns CLI_USAGE. */
int cli_usage_error(const char *what, const char *token);
/* Prints "meshfs: " + message to stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The store directory to use, absolute: --store, else $MESHFS_STORE, else
 * ${XDG_DATA_HOME:-$HOME/.local/share}/meshfs/default. *is_default tells
 * whether it is the default one. Returns 0 or -ENAMETOOLONG/-ENOENT. */
int cli_store_dir(const char *opt, char *out, size_t cap, int *is_default);
/* Makes path absolute (lexically, without touching the file system). */
int cli_abspath(const char *path, char *out, size_t cap);
/* A new store, an empty directory, mkdir -p: node.h (mfs_node_store_create,
 * mfs_node_dir_empty, mfs_node_mkdirs). */

/* ---- mounts (cli/mountinfo.c) ------------------------------------------ */

typedef struct cli_mount {
    char mnt[PATH_MAX];
    char source[PATH_MAX];
    char fstype[64];
    unsigned major, minor;
} cli_mount;

/* Finds the mount whose mount point is exactly path (the last one mounted
 * there). Returns 1 found, 0 not found, -errno. */
int cli_mount_at(const char *path, cli_mount *out);
/* Finds the mount with device major:minor. */
int cli_mount_by_dev(unsigned major, unsigned minor, cli_mount *out);
/* Finds a fuse.meshfs mount whose source (the store dir) is store. */
int cli_mount_by_store(const char *store, cli_mount *out);
int cli_mount_is_meshfs(const cli_mount *m);
/* The meshfs mount that holds path (which may no longer exist: its
 * nearest existing ancestor decides) into *m, and path relative to the
 * mount ("/...") into rel. 0, or CLI_FAIL with the reason printed ("not
 * in a meshfs mount: PATH"). */
int cli_mount_find(const char *path, cli_mount *m, char *rel, size_t cap);
/* 1 if mnt is a FUSE mount whose daemon is gone (statfs: ENOTCONN, or
 * ECONNABORTED while the daemon's last threads exit). */
int cli_mount_dead(const char *mnt);
/* Detaches (lazy unmount) a mount point; as root umount2, else
 * fusermount3 -uz. lazy=0 does a normal unmount (fails when busy). */
int cli_unmount(const char *mnt, int lazy, char *err, size_t errcap);

/* ---- control socket client (cli/control.c; the server: node/control.c) - */

/* Client side: one reply. */
typedef struct cli_reply {
    size_t n;
    char **key; /* owned */
    char **val; /* owned */
    int err;    /* 0 ok, else the errno the daemon reported */
    char msg[256];
} cli_reply;

/* Sends one request line and reads the reply (timeout_ms for the whole
 * exchange). Returns 0 (check r->err), -ENOENT/-ECONNREFUSED when no daemon
 * listens, -ETIMEDOUT, -EBADMSG on a malformed reply. */
int cli_control_call(const char *store_dir, const char *request, int timeout_ms,
                     cli_reply *r);
/* A "key value" line of a reply as it arrives (val "" when the line has
 * no blank). 0, or a negative errno that ends the exchange. */
typedef int (*cli_line_fn)(void *arg, const char *key, const char *val);
/* As cli_control_call, for replies that stream while the daemon works
 * (sync): line(arg, ...) is called for each line as it arrives; r gets
 * only the last line's err and msg (r is cleared first, so arg may be r
 * itself). Same returns as cli_control_call, or line()'s error. */
int cli_control_stream(const char *store_dir, const char *request,
                       int timeout_ms, cli_line_fn line, void *arg,
                       cli_reply *r);
void cli_reply_free(cli_reply *r);
/* First value of key, or NULL. */
const char *cli_reply_get(const cli_reply *r, const char *key);

/* ---- subcommands -------------------------------------------------------- */

int cli_cmd_init(int argc, char **argv);
int cli_cmd_mount(int argc, char **argv);
int cli_cmd_top(int argc, char **argv);
/* The live view (cli/top.c) of store's daemon: plain lines when plain,
 * count frames then return (0: until q or Ctrl-C). Returns the exit code. */
int cli_top_run(const char *store, int plain, int count);
int cli_cmd_umount(int argc, char **argv);
int cli_cmd_stat(int argc, char **argv);
int cli_cmd_invite(int argc, char **argv);
int cli_cmd_join(int argc, char **argv);
int cli_cmd_trash(int argc, char **argv);
int cli_cmd_members(int argc, char **argv);
int cli_cmd_remove(int argc, char **argv);
int cli_cmd_migrate(int argc, char **argv);
/* The meshfs binary run as mount.meshfs (cli/mounthelper.c). */
int cli_mount_helper(int argc, char **argv);
int cli_cmd_restore(int argc, char **argv);
int cli_cmd_sync(int argc, char **argv);

#endif
