/*
 * control.c - the client of the daemon's control socket (the server is
 * node/control.c; the protocol is described there and in docs/FS.md).
 */
#include "cli.h"
#include "statdoc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- client ------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_reply_free(cli_reply *r)
{
    mfs_kv kv = {r->n, r->key, r->val};
    mfs_kv_free(&kv);
    memset(r, 0, sizeof *r);
}

const char *cli_reply_get(const cli_reply *r, const char *key)
{
    mfs_kv kv = {r->n, r->key, r->val};
    return mfs_kv_get(&kv, key);
}

/* Keeps a "key value" line in the reply (cli_control_call). */
static int reply_add(void *arg, const char *k, const char *v)
{
    cli_reply *r = arg;
    mfs_kv kv = {r->n, r->key, r->val};
    int rc = mfs_kv_add(&kv, k, v);
    r->n = kv.n;
    r->key = kv.key;
    r->val = kv.val;
    return rc;
}

/* Parses one reply line: the last one ("ok", "error ...") into r, any
 * other to line(). Returns 1 when it was the last line, 0, or line()'s
 * negative errno. */
static int reply_line(cli_reply *r, char *s, cli_line_fn line, void *arg)
{
    if (strcmp(s, "ok") == 0)
        return 1;
    if (strncmp(s, "error ", 6) == 0) {
        char *end = NULL;
        long e = strtol(s + 6, &end, 10);
        r->err = e > 0 ? (int)e : EIO;
        snprintf(r->msg, sizeof r->msg, "%s",
                 end && *end == ' ' ? end + 1 : "error");
        return 1;
    }
    char *sp = strchr(s, ' ');
    if (sp)
        *sp++ = '\0';
    int lr = line(arg, s, sp ? sp : "");
    return lr < 0 ? lr : 0;
}

/* Reads reply lines from fd until the last one or the deadline. 0 (the
 * last line came), -ETIMEDOUT, -EBADMSG (EOF before it) or -errno. */
static int read_reply(int fd, int64_t deadline, cli_reply *r, cli_line_fn line,
                      void *arg)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    int rc = -EBADMSG;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            rc = pr == 0 ? -ETIMEDOUT : -errno;
            break;
        }
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t got = recv(fd, buf + len, cap - 1 - len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break; /* EOF before the last line: malformed */
        len += (size_t)got;
        /* consume whole lines */
        char *start = buf, *nl;
        int done = 0;
        while (!done &&
               (nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
            *nl = '\0';
            int lr = reply_line(r, start, line, arg);
            if (lr != 0) {
                rc = lr < 0 ? lr : 0;
                done = 1;
            }
            start = nl + 1;
        }
        if (done)
            break;
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
    }
    free(buf);
    return rc;
}

int cli_control_stream(const char *store_dir, const char *request,
                       int timeout_ms, cli_line_fn line, void *arg,
                       cli_reply *r)
{
    struct sockaddr_un sa;
    int dirfd, fd, rc;
    memset(r, 0, sizeof *r);
    rc = mfs_control_sock_addr(store_dir, &sa, &dirfd);
    if (rc < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = -errno;
        goto out;
    }
    char req[600];
    int n = snprintf(req, sizeof req, "%s\n", request);
    if (n < 0 || (size_t)n >= sizeof req) {
        rc = -EINVAL;
        goto out;
    }
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        rc = -EPIPE;
        goto out;
    }
    rc = read_reply(fd, now_ms() + timeout_ms, r, line, arg);
out:
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

int cli_control_call(const char *store_dir, const char *request, int timeout_ms,
                     cli_reply *r)
{
    /* r keeps the lines too (cli_control_stream clears it first) */
    int rc =
        cli_control_stream(store_dir, request, timeout_ms, reply_add, r, r);
    if (rc < 0)
        cli_reply_free(r);
    return rc;
}
