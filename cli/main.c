/*
 * main.c - the `meshfs` command: the subcommand table, usage texts, the
 * argument parser every subcommand shares and the default store path.
 *
 * A usage error prints one line naming the bad token, changes nothing and
 * exits 2. This file never opens a store or a mount itself.
 */
#include "cli.h"
#include "fs.h"
#include "log.h"

#include <fcntl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage; /* printed by `meshfs CMD --help` */
} cli_command;

static const char usage_init[] =
    "Usage: meshfs init [--store DIR]\n"
    "Create a new store and a new mesh in DIR (default: $MESHFS_STORE or\n"
    "${XDG_DATA_HOME:-~/.local/share}/meshfs/default). Refuses an existing "
    "store.\n";
static const char usage_mount[] =
    "Usage: meshfs mount [--store DIR] [--listen IP:PORT] [--peer IP:PORT]...\n"
    "                    [--acks N] [--acks-timeout SECONDS] [--acks-wait]\n"
    "                    [--http IP:PORT [--http-public] [--metrics-open]]\n"
    "                    [-f] [-o OPTS] MOUNTPOINT\n"
    "Mount the store on MOUNTPOINT and replicate it with the other members of\n"
    "its mesh. A missing or empty store directory gets a new store (a new\n"
    "mesh). Returns once the mount is ready; the daemon keeps running in the\n"
    "background and logs to syslog.\n"
    "  --listen IP:PORT  UDP address for the mesh (remembered in the store;\n"
    "            default 0.0.0.0:7410, or any free port if that is taken)\n"
    "  --peer IP:PORT    a member to contact (repeatable; remembered, as are\n"
    "            the peers learned later, in STORE/peers)\n"
    "  --acks N  write concern: fsync (and fdatasync) returns only once N\n"
    "            other members hold the change on their disks, or fails\n"
    "            with EIO after the timeout (the change stays here and\n"
    "            replicates later); with fewer than N members alive it\n"
    "            fails at once. 0 (the default) turns it off. Remembered\n"
    "            in STORE/acks with the two options below: a later mount\n"
    "            without --acks keeps the setting; a new --acks N starts\n"
    "            afresh (the others as given, else their defaults)\n"
    "  --acks-timeout SECONDS  how long fsync waits (default 10; fractions\n"
    "            allowed, at most 3600)\n"
    "  --acks-wait  with fewer than N members alive, wait for them (up to\n"
    "            the timeout) instead of failing at once\n"
    "  --http IP:PORT  serve the status page, /status.json and /metrics\n"
    "            there (off by default; a loopback address unless\n"
    "            --http-public); every request needs the store's token\n"
    "            (STORE/http.token): the url option of meshfs stat prints\n"
    "            the address with it\n"
    "  --http-public  allow --http on an address that is not loopback\n"
    "            (plain HTTP: the daemon warns)\n"
    "  --metrics-open  /metrics answers without the token (for scrapers\n"
    "            that cannot send one)\n"
    "  -f        stay in the foreground, log to stderr\n"
    "  -o OPTS   mount options: nonempty (mount over a non-empty directory),\n"
    "            writeback (kernel writeback cache: faster small writes; for\n"
    "            files changed through this mount only: a peer's change of a\n"
    "            file's size does not show while it is cached), noatime\n"
    "            (no relatime updates of atime on read), writethrough\n"
    "            (write(2) returns once the store has the bytes, not once\n"
    "            they are queued: slower; a failed write shows at write(2)\n"
    "            rather than at the next write, close or fsync), debug,\n"
    "            allow_other, ro, and other FUSE options; trash=DAYS: how "
    "long\n"
    "            the store keeps the content of deleted and overwritten files\n"
    "            before it frees it (default 7, 0: at once); trash-share=PCT:\n"
    "            the most of the store's file system the trash takes (default\n"
    "            10; beyond it the oldest go first, on every member: the\n"
    "            smallest share in the mesh bounds the trash; 100: no bound);\n"
    "            acks=N, acks-timeout=SECONDS, acks-wait, http=IP:PORT,\n"
    "            http-public, metrics-open: as the flags;\n"
    "            acks-on-close: a close that published a new version waits\n"
    "            for the acks too\n";
static const char usage_umount[] =
    "Usage: meshfs umount MOUNTPOINT\n"
    "Publish and flush everything, unmount, and wait for the daemon to exit.\n";
static const char usage_stat[] =
    "Usage: meshfs stat [MOUNTPOINT | FILE | --store DIR] [--json | --watch |\n"
    "                   --url]\n"
    "Show the node, store, mount, counts of files, directories, bytes, ops\n"
    "and conflicts, every peer (state, round-trip time, loss, last contact,\n"
    "ops and bytes owed each way, its clock against ours), this node's\n"
    "clock against the mesh's (and whether it is corrected), catch-up\n"
    "progress and whether this node is in sync with every live peer; for a\n"
    "FILE inside a mount, its inode, version, chunks and which peers hold\n"
    "that version. Works whether the daemon runs or not (without it: no\n"
    "peers).\n"
    "  --json    one JSON object (docs/STATUS.md: a versioned interface)\n"
    "  --watch   the live view of `meshfs top`, redrawn every second\n"
    "  --url     the status page's address with its token (for a mount\n"
    "            that serves one)\n";
static const char usage_invite[] =
    "Usage: meshfs invite [--store DIR] [--expires DURATION] [--uses N] "
    "[HOST:PORT]\n"
    "       meshfs invite [--store DIR] --list | --revoke ID\n"
    "Print a token that lets another machine join this mesh through this\n"
    "node, reachable at HOST:PORT (default: the address the mount listens\n"
    "on, if it is a specific one). The token carries a one-time secret, no\n"
    "key that protects traffic; it is good for N joins (1) within DURATION\n"
    "(24h; 30m, 7d, at most a year). --list shows the open invitations,\n"
    "--revoke withdraws one (an id prefix). A store made before per-node\n"
    "keys prints its mesh key token (keep it secret; HOST:PORT needed).\n";
static const char usage_join[] =
    "Usage: meshfs join [--store DIR] TOKEN\n"
    "Create a new store that joins the mesh of TOKEN (from `meshfs invite`).\n"
    "If DIR holds a store (say, of a node that was removed), that store is\n"
    "kept unchanged beside it as DIR.node-<id>-<date> and the new one takes\n"
    "its place; once caught up, the changes the old node made that the mesh\n"
    "lacks are copied to /lost+found/<id>-<date>/ and the old node is removed.\n";

static const char usage_trash[] =
    "Usage: meshfs trash [PATH] [--json]\n"
    "List what the trash keeps under PATH (default: the current directory's\n"
    "mount): deleted files and overwritten versions, newest first, with\n"
    "when, which node deleted or overwrote them, and their size. They stay\n"
    "for the mount's trash period (-o trash=DAYS, default 7) once every\n"
    "member has the change.\n";
static const char usage_restore[] =
    "Usage: meshfs restore PATH [--version N] [--as NEWPATH]\n"
    "Bring PATH back from the trash as a new change that reaches every\n"
    "member: a deleted file as a file again, an overwritten version as the\n"
    "file's newest content. --version N picks the N-th newest (see `meshfs\n"
    "trash`); --as puts it under another name in the same mount.\n";

static const char usage_sync[] =
    "Usage: meshfs sync [--peers N | --all] [--timeout SECONDS] [PATH]\n"
    "Wait until the other members hold, on their disks, every change this\n"
    "node made up to now: every live member (--all, the default) or N of\n"
    "them (--peers N). PATH (default: the current directory) picks the\n"
    "mount. Shows the progress on stderr while it waits. Exits 0 once they\n"
    "do (at once when the mesh has no other member), 1 with what is\n"
    "missing after the timeout (default 60 s).\n";

static const char usage_top[] =
    "Usage: meshfs top [MOUNTPOINT | --store DIR] [--count N]\n"
    "A live view of this node, redrawn in place every second: the node, its\n"
    "store and counts, whether it is in sync, its clock, collection (and\n"
    "who holds it back), catch-up, snapshot and `meshfs sync` progress as\n"
    "bars with rate and ETA, every member (state, round-trip time, loss,\n"
    "send and receive rates, ops it lacks and we lack, its clock against\n"
    "ours) and conflict copies; what does not fit the terminal ends in\n"
    "\"... N more\". While the daemon does not answer it says so and asks\n"
    "again every second. Keys: q (or Ctrl-C) quits, Ctrl-L redraws. When\n"
    "stdout is not a terminal it prints one plain block of text a second.\n"
    "  --count N  draw N frames, then exit (default: until q)\n";

static const char usage_members[] =
    "Usage: meshfs members [MOUNTPOINT | --store DIR] [--json]\n"
    "List the members of the mesh: this node and every peer, with its state\n"
    "(alive, suspect, dead, left, removed), how many ops it lacks, and when\n"
    "it was last heard from; then the open invitations of every member\n"
    "(invited ID by NODE, joins left, when it expires) until they are used\n"
    "up, revoked or expired.\n";
static const char usage_remove[] =
    "Usage: meshfs remove NODE [MOUNTPOINT | --store DIR]\n"
    "Remove NODE (its id or a unique prefix, see meshfs members) from the\n"
    "mesh for good: every member stops waiting for it (collection resumes)\n"
    "and refuses its messages. Not this node itself.\n";

static const char usage_migrate[] =
    "Usage: meshfs migrate [MOUNTPOINT | --store DIR]\n"
    "Move this node of a mesh made before per-node keys (mfs1 tokens, one\n"
    "mesh key) to a key of its own. Run it once on each member, mounted or\n"
    "not: the mesh keeps working with its mesh key until every member has a\n"
    "key, then the members speak only per-node keys, and each forgets the\n"
    "mesh key once it has met every member that way (meshfs stat shows how\n"
    "far). Nothing to do on a node that has its own key.\n";

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const cli_command commands[] = {
    {"init", cli_cmd_init, usage_init},
    {"mount", cli_cmd_mount, usage_mount},
    {"umount", cli_cmd_umount, usage_umount},
    {"unmount", cli_cmd_umount, usage_umount},
    {"stat", cli_cmd_stat, usage_stat},
    {"invite", cli_cmd_invite, usage_invite},
    {"join", cli_cmd_join, usage_join},
    {"members", cli_cmd_members, usage_members},
    {"remove", cli_cmd_remove, usage_remove},
    {"migrate", cli_cmd_migrate, usage_migrate},
    {"sync", cli_cmd_sync, usage_sync},
    {"top", cli_cmd_top, usage_top},
    {"trash", cli_cmd_trash, usage_trash},
    {"restore", cli_cmd_restore, usage_restore},
    {"help", cmd_help, "Usage: meshfs help [COMMAND]\n"},
    {"version", cmd_version, "Usage: meshfs version\n"},
};

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_main_usage(FILE *f)
{
    fprintf(
        f,
        "Usage: meshfs COMMAND [ARGS]\n"
        "A replicated POSIX file system.\n\n"
        "Commands:\n"
        "  init    [--store DIR]                  create a store and a mesh\n"
        "  mount   [--store DIR] [--listen IP:PORT] [--peer IP:PORT] [-f] [-o "
        "OPTS]\n"
        "          [--acks N] MOUNTPOINT\n"
        "  umount  MOUNTPOINT                     flush and unmount\n"
        "  stat    [MOUNTPOINT|FILE|--store DIR] [--json]\n"
        "  sync    [--peers N|--all] [--timeout SECONDS] [PATH]\n"
        "          wait until the members hold this node's changes\n"
        "  top     [MOUNTPOINT|--store DIR] [--count N]  live view, every "
        "second\n"
        "  invite  [--store DIR] [HOST:PORT]      print a join token\n"
        "  join    [--store DIR] TOKEN            join a mesh\n"
        "  members [MOUNTPOINT] [--json]          the mesh's members and keys\n"
        "  remove  NODE [MOUNTPOINT]              lock a member out for good\n"
        "  migrate [MOUNTPOINT|--store DIR]       move a mesh-key mesh to "
        "per-node keys\n"
        "  trash   [PATH] [--json]                deleted and overwritten "
        "files\n"
        "  restore PATH [--version N] [--as NEW]  bring one back\n"
        "  help    [COMMAND]\n\n"
        "Options: --help, --version. `meshfs COMMAND --help` for more.\n"
        "Store: --store DIR, else $MESHFS_STORE, else\n"
        "${XDG_DATA_HOME:-~/.local/share}/meshfs/default.\n"
        "Exit codes: 0 ok, 1 failure, 2 usage error.\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 1) {
        const cli_command *c = find_command(argv[1]);
        if (!c)
            return cli_usage_error("unknown command", argv[1]);
        fputs(c->usage, stdout);
        return CLI_OK;
    }
    print_main_usage(stdout);
    return CLI_OK;
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1)
        return cli_usage_error("unexpected argument", argv[1]);
    printf("meshfs %s\n", MESHFS_VERSION);
    return CLI_OK;
}

int cli_usage_error(const char *what, const char *token)
{
    fprintf(stderr, "meshfs: %s: %s\n", what, token);
    return CLI_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("meshfs: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

static int add_opts(cli_args *a, const char *v)
{
    size_t len = strlen(a->opts);
    int n = snprintf(a->opts + len, sizeof a->opts - len, "%s%s",
                     len ? "," : "", v);
    return n < 0 || (size_t)n >= sizeof a->opts - len ? -1 : 0;
}

int cli_parse_count(const char *s, unsigned max, unsigned *out)
{
    char *end = NULL;
    if (!s[0] || strspn(s, "0123456789") != strlen(s))
        return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int cli_parse_seconds(const char *s, unsigned max_s, uint32_t *ms)
{
    char *end = NULL;
    if (!s[0] || !strchr("0123456789.", s[0]))
        return -1; /* no blanks, signs, "inf" or "nan" */
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !(d > 0) || d > max_s)
        return -1;
    double v = d * 1000.0 + 0.5;
    *ms = v < 1 ? 1 : (uint32_t)v;
    return 0;
}

/* --NAME VALUE or --NAME=VALUE at argv[*i]: 1 with *v (and *i past
 * VALUE), 0 if argv[*i] is another option, -1 if VALUE is missing. */
static int opt_value(const char *name, int argc, char **argv, int *i,
                     const char **v)
{
    size_t n = strlen(name);
    const char *s = argv[*i];
    if (strncmp(s, name, n) != 0)
        return 0;
    if (s[n] == '=') {
        *v = s + n + 1;
        return 1;
    }
    if (s[n])
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *v = argv[++*i];
    return 1;
}

/* --NAME SECONDS (more than 0, at most max_s) into *ms: 1 if argv[*i] was
 * that option, 0 if not, CLI_USAGE (message printed). */
static int seconds_opt(const char *name, unsigned max_s, int argc, char **argv,
                       int *i, uint32_t *ms)
{
    const char *s = argv[*i], *v;
    char what[96];
    int r = opt_value(name, argc, argv, i, &v);
    if (r == 0)
        return 0;
    if (r < 0)
        return cli_usage_error("missing argument to option", s);
    snprintf(what, sizeof what, "%s wants seconds (more than 0, at most %u)",
             name, max_s);
    if (cli_parse_seconds(v, max_s, ms))
        return cli_usage_error(what, v);
    return 1;
}

/* --acks N, --acks-timeout SECONDS, --acks-wait. 1 if argv[*i] was one
 * of them, 0 if not, CLI_USAGE (message printed). */
static int parse_acks_opt(int argc, char **argv, int *i, cli_args *a)
{
    const char *s = argv[*i], *v;
    char what[96];
    unsigned n;
    int r;
    if (strcmp(s, "--acks-wait") == 0) {
        a->acks_wait = 1;
        return 1;
    }
    if ((r = seconds_opt("--acks-timeout", CLI_ACKS_TIMEOUT_MAX_S, argc, argv,
                         i, &a->acks_timeout_ms)) != 0)
        return r;
    if ((r = opt_value("--acks", argc, argv, i, &v)) != 0) {
        if (r < 0)
            return cli_usage_error("missing argument to option", s);
        snprintf(what, sizeof what,
                 "--acks wants how many members must hold a change (0 to %d)",
                 MFS_ACKS_MAX);
        if (cli_parse_count(v, MFS_ACKS_MAX, &n))
            return cli_usage_error(what, v);
        a->acks = (int)n;
        return 1;
    }
    return 0;
}

/* --peers N, --all, --timeout SECONDS. As parse_acks_opt. */
static int parse_sync_opt(int argc, char **argv, int *i, cli_args *a)
{
    const char *s = argv[*i], *v;
    char what[96];
    unsigned n;
    int r;
    if (strcmp(s, "--all") == 0) {
        if (a->sync_peers >= 0)
            return cli_usage_error("give either --peers N or --all", s);
        a->sync_all = 1;
        return 1;
    }
    if ((r = seconds_opt("--timeout", CLI_SYNC_TIMEOUT_MAX_S, argc, argv, i,
                         &a->timeout_ms)) != 0)
        return r;
    if ((r = opt_value("--peers", argc, argv, i, &v)) != 0) {
        if (r < 0)
            return cli_usage_error("missing argument to option", s);
        if (a->sync_all)
            return cli_usage_error("give either --peers N or --all", s);
        snprintf(what, sizeof what,
                 "--peers wants a number of members (1 to %d)", MFS_ACKS_MAX);
        if (cli_parse_count(v, MFS_ACKS_MAX, &n) || n == 0)
            return cli_usage_error(what, v);
        a->sync_peers = (int)n;
        return 1;
    }
    return 0;
}

/* "30s", "90m", "24h", "7d" (a bare number is seconds), up to a year. */
static int parse_duration(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || n <= 0)
        return -1;
    long long mul = !*end               ? 1
                    : !strcmp(end, "s") ? 1
                    : !strcmp(end, "m") ? 60
                    : !strcmp(end, "h") ? 3600
                    : !strcmp(end, "d") ? 86400
                                        : 0;
    if (!mul || n > 366LL * 86400 / mul)
        return -1;
    *out = n * mul;
    return 0;
}

static int parse_invite_opt(int argc, char **argv, int *i, cli_args *a)
{
    const char *s = argv[*i], *v;
    int r;
    if (strcmp(s, "--list") == 0) {
        a->list = 1;
        return 1;
    }
    if ((r = opt_value("--revoke", argc, argv, i, &v)) != 0) {
        if (r < 0)
            return cli_usage_error("missing argument to option", s);
        if (!*v || strspn(v, "0123456789abcdef") != strlen(v) || strlen(v) > 32)
            return cli_usage_error("--revoke wants an invitation id (hex)", v);
        a->revoke = v;
        return 1;
    }
    if ((r = opt_value("--expires", argc, argv, i, &v)) != 0) {
        if (r < 0)
            return cli_usage_error("missing argument to option", s);
        if (parse_duration(v, &a->expires_s))
            return cli_usage_error(
                "--expires wants a duration such as 30m, 24h or 7d (at "
                "most a year)",
                v);
        return 1;
    }
    if ((r = opt_value("--uses", argc, argv, i, &v)) != 0) {
        if (r < 0)
            return cli_usage_error("missing argument to option", s);
        if (cli_parse_count(v, 1000, &a->uses) || a->uses == 0)
            return cli_usage_error("--uses wants a number of joins (1 to "
                                   "1000)",
                                   v);
        return 1;
    }
    return 0;
}

int cli_args_parse(const char *cmd, int argc, char **argv, unsigned allowed,
                   int maxpos, cli_args *a)
{
    int only_pos = 0, r;
    memset(a, 0, sizeof *a);
    a->acks = -1;
    a->sync_peers = -1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *val;
        if (only_pos || s[0] != '-' || strcmp(s, "-") == 0) {
            if (a->npos >= maxpos || a->npos >= 4)
                return cli_usage_error("unexpected argument", s);
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_pos = 1;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            a->help = 1;
        } else if ((allowed & CLI_OPT_STORE) && strcmp(s, "--store") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("missing argument to option", s);
            a->store = argv[++i];
            if (!a->store[0])
                return cli_usage_error("empty store directory", s);
        } else if ((allowed & CLI_OPT_STORE) &&
                   strncmp(s, "--store=", 8) == 0) {
            a->store = s + 8;
            if (!a->store[0])
                return cli_usage_error("empty store directory", s);
        } else if ((allowed & CLI_OPT_FG) && strcmp(s, "-f") == 0) {
            a->foreground = 1;
        } else if ((allowed & CLI_OPT_O) && strcmp(s, "-o") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("missing argument to option", s);
            if (add_opts(a, argv[++i]) < 0)
                return cli_usage_error("mount options too long", argv[i]);
        } else if ((allowed & CLI_OPT_O) && strncmp(s, "-o", 2) == 0) {
            if (add_opts(a, s + 2) < 0)
                return cli_usage_error("mount options too long", s);
        } else if ((allowed & CLI_OPT_ACKS) &&
                   (r = parse_acks_opt(argc, argv, &i, a)) != 0) {
            if (r == CLI_USAGE)
                return r;
        } else if ((allowed & CLI_OPT_SYNC) &&
                   (r = parse_sync_opt(argc, argv, &i, a)) != 0) {
            if (r == CLI_USAGE)
                return r;
        } else if ((allowed & CLI_OPT_INVITE) &&
                   (r = parse_invite_opt(argc, argv, &i, a)) != 0) {
            if (r == CLI_USAGE)
                return r;
        } else if ((allowed & CLI_OPT_COUNT) &&
                   (r = opt_value("--count", argc, argv, &i, &val)) != 0) {
            if (r < 0)
                return cli_usage_error("missing argument to option", s);
            if (cli_parse_count(val, 1000000, &a->count) || !a->count)
                return cli_usage_error("--count wants a number of frames (1 "
                                       "to 1000000)",
                                       val);
        } else if ((allowed & CLI_OPT_JSON) && strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if ((allowed & CLI_OPT_HTTP) && strcmp(s, "--http") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("missing argument to option", s);
            a->http = argv[++i];
            if (!cli_host_port_ok(a->http))
                return cli_usage_error("bad address (want IP:PORT)", a->http);
        } else if ((allowed & CLI_OPT_HTTP) &&
                   strcmp(s, "--http-public") == 0) {
            a->http_public = 1;
        } else if ((allowed & CLI_OPT_HTTP) &&
                   strcmp(s, "--metrics-open") == 0) {
            a->metrics_open = 1;
        } else if ((allowed & CLI_OPT_VIEW) && strcmp(s, "--watch") == 0) {
            a->watch = 1;
        } else if ((allowed & CLI_OPT_VIEW) && strcmp(s, "--url") == 0) {
            a->url = 1;
        } else if ((allowed & CLI_OPT_MESH) &&
                   (strcmp(s, "--listen") == 0 || strcmp(s, "--peer") == 0)) {
            if (i + 1 >= argc)
                return cli_usage_error("missing argument to option", s);
            const char *v = argv[++i];
            if (!cli_host_port_ok(v))
                return cli_usage_error("bad address (want IP:PORT)", v);
            if (s[2] == 'l')
                a->listen = v;
            else if (a->npeers >= CLI_MAX_PEERS)
                return cli_usage_error("too many --peer options", v);
            else
                a->peers[a->npeers++] = v;
        } else {
            return cli_usage_error("unknown option", s);
        }
    }
    (void)cmd;
    return 0;
}

int cli_host_port_ok(const char *s)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || strlen(s) >= sizeof host + 8)
        return 0;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            return 0;
        memcpy(host, s + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        if (hl >= sizeof host)
            return 0;
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (!colon[1] || errno || *end || port > 65535)
        return 0;
    unsigned char buf[16];
    return inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, host, buf) == 1;
}

int cli_abspath(const char *path, char *out, size_t cap)
{
    int n;
    if (path[0] == '/') {
        n = snprintf(out, cap, "%s", path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return -errno;
        n = snprintf(out, cap, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path);
    }
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    /* drop trailing slashes (but keep "/") */
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/')
        out[--len] = '\0';
    return 0;
}

int cli_store_dir(const char *opt, char *out, size_t cap, int *is_default)
{
    const char *env = getenv("MESHFS_STORE");
    *is_default = 0;
    if (opt)
        return cli_abspath(opt, out, cap);
    if (env && env[0])
        return cli_abspath(env, out, cap);
    *is_default = 1;
    const char *xdg = getenv("XDG_DATA_HOME");
    int n;
    if (xdg && xdg[0] == '/') {
        n = snprintf(out, cap, "%s/meshfs/default", xdg);
    } else {
        const char *home = getenv("HOME");
        if (!home || !home[0])
            return -ENOENT;
        n = snprintf(out, cap, "%s/.local/share/meshfs/default", home);
    }
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", out);
    return cli_abspath(tmp, out, cap);
}

int main(int argc, char **argv)
{
    const char *prog = strrchr(argv[0], '/');
    prog = prog ? prog + 1 : argv[0];
    if (strcmp(prog, "mount.meshfs") == 0) /* mount(8)'s helper */
        return cli_mount_helper(argc, argv);
    if (strcmp(prog, MFS_HOLDER_ARGV0) == 0) /* fs/holder.c */
        return mfs_fs_holder_main(argc, argv);
    if (argc < 2) {
        print_main_usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
        return cmd_version(1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        print_main_usage(stdout);
        return CLI_OK;
    }
    if (cmd[0] == '-')
        return cli_usage_error("unknown option", cmd);
    const cli_command *c = find_command(cmd);
    if (!c)
        return cli_usage_error("unknown command", cmd);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(c->usage, stdout);
            return CLI_OK;
        }
    }
    return c->run(argc - 1, argv + 1);
}
