/*
 * mounthelper.c - mount(8)'s helper: the meshfs binary run as
 * /sbin/mount.meshfs, for `mount -t meshfs STORE DIR` and fstab lines
 * (docs/mount.meshfs.8.scd):
 *
 *   mount.meshfs STORE DIR [-sfnv] [-o OPTS]
 *
 * OPTS are meshfs mount's -o options plus listen=IP:PORT and peer=IP:PORT
 * (as --listen and --peer; peer may repeat); the options that are mount(8)'s
 * or systemd's (_netdev, nofail, noauto, auto, user, users, nouser, owner,
 * group, defaults, x-*, comment=*) are dropped; the rest go to the mount.
 * -f checks everything and mounts nothing, -n is a no-op (no mtab), -v
 * prints the meshfs command it runs, -s is accepted (nothing is refused
 * for being unknown here: the mount checks). Exit codes as mount(8) wants
 * them from a helper: 0, 1 bad usage, 32 the mount failed.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HELPER_USAGE 1
#define HELPER_FAIL 32

static int helper_exit(int code)
{
    return code == CLI_OK ? 0 : code == CLI_USAGE ? HELPER_USAGE : HELPER_FAIL;
}

/* mount(8)'s and systemd's own options: not the file system's */
static int dropped(const char *t)
{
    static const char *const names[] = {"_netdev", "nofail",  "noauto", "auto",
                                        "user",    "users",   "nouser", "owner",
                                        "group",   "defaults"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(t, names[i]))
            return 1;
    return !strncmp(t, "x-", 2) || !strncmp(t, "comment=", 8);
}

int cli_mount_helper(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    char opts[4096] = "", rest[4096] = "";
    int npos = 0, fake = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-o")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mount.meshfs: -o needs options\n");
                return HELPER_USAGE;
            }
            size_t len = strlen(opts);
            snprintf(opts + len, sizeof opts - len, "%s%s", len ? "," : "",
                     argv[++i]);
        } else if (!strncmp(s, "-o", 2)) {
            size_t len = strlen(opts);
            snprintf(opts + len, sizeof opts - len, "%s%s", len ? "," : "",
                     s + 2);
        } else if (s[0] == '-' && s[1] &&
                   strspn(s + 1, "sfnvrw") == strlen(s + 1)) {
            fake |= strchr(s, 'f') != NULL;
            verbose |= strchr(s, 'v') != NULL;
            if (strchr(s, 'r')) { /* -r: read-only, as -o ro */
                size_t len = strlen(opts);
                snprintf(opts + len, sizeof opts - len, "%sro", len ? "," : "");
            }
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr,
                    "mount.meshfs: unknown option %s (usage: "
                    "mount.meshfs STORE DIR [-sfnv] [-o OPTS])\n",
                    s);
            return HELPER_USAGE;
        } else if (npos < 2) {
            pos[npos++] = s;
        } else {
            fprintf(stderr, "mount.meshfs: unexpected argument %s\n", s);
            return HELPER_USAGE;
        }
    }
    if (npos != 2) {
        fprintf(stderr,
                "usage: mount.meshfs STORE DIR [-sfnv] [-o OPTS] (see man "
                "mount.meshfs)\n");
        return HELPER_USAGE;
    }
    /* meshfs mount's argv: mount --store STORE [--listen A] [--peer B]...
     * [-o REST] DIR */
    char *av[4 + 2 + 2 * 16 + 2 + 1 + 1];
    int ac = 0;
    av[ac++] = "mount";
    av[ac++] = "--store";
    av[ac++] = (char *)pos[0];
    char *save = NULL;
    for (char *t = strtok_r(opts, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (dropped(t))
            continue;
        if (!strncmp(t, "listen=", 7) || !strncmp(t, "peer=", 5)) {
            if (ac > 4 + 2 * 16) {
                fprintf(stderr, "mount.meshfs: too many peer= options\n");
                return HELPER_USAGE;
            }
            av[ac++] = t[0] == 'l' ? "--listen" : "--peer";
            av[ac++] = strchr(t, '=') + 1;
            continue;
        }
        size_t len = strlen(rest);
        snprintf(rest + len, sizeof rest - len, "%s%s", len ? "," : "", t);
    }
    if (rest[0]) {
        av[ac++] = "-o";
        av[ac++] = rest;
    }
    av[ac++] = (char *)pos[1];
    av[ac] = NULL;
    if (verbose || fake) {
        fprintf(stderr, "mount.meshfs: meshfs");
        for (int i = 0; i < ac; i++)
            fprintf(stderr, " %s", av[i]);
        fprintf(stderr, "%s\n", fake ? " (-f: not run)" : "");
    }
    if (fake)
        return 0;
    return helper_exit(cli_cmd_mount(ac, av));
}
