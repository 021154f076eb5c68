/*
 * top.c - `meshfs top [MOUNTPOINT | --store DIR]` (issue 15), and the view
 * `meshfs stat --watch` draws (cli_top_run): one node, redrawn in place
 * once a second: the node, its store and counts, every member (state,
 * round-trip time, loss, send and receive rates, what each side lacks,
 * its clock against ours), catch-up, snapshot and `meshfs sync` progress
 * as bars, conflict copies and what holds collection back.
 *
 * It polls the daemon's "stat" (node/control.c) and reads the mesh lines
 * with node/status.h; a member's rates are the difference of its
 * cumulative counters between two polls, and the catch-up bar's total is
 * the most there was to go since the catch-up began (both kept here, not
 * by the daemon: a top started in the middle of a catch-up counts from
 * there). A poll waits for the daemon (at most TOP_CALL_MS); keys and
 * signals are handled between polls. On a terminal it takes the alternate
 * screen, hides the cursor and reads keys one at a time; every way out (q,
 * SIGINT, SIGTERM, SIGHUP, SIGQUIT, an error) goes through top_term_off, which
 * puts back exactly what it found; Ctrl-Z gives the terminal back before it
 * stops. Elsewhere (a pipe, a file) it prints one plain block per second.
 *
 * It must never write to the store, leave a terminal changed, or print a
 * byte of a name (a conflict's path) that a terminal takes for a control
 * code. Its signals are blocked and read from a signalfd: no handler, no
 * global state.
 */
#include "cli.h"
#include "statdoc.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TOP_TICK_MS 1000  /* one poll and one frame a second */
#define TOP_CALL_MS 5000  /* the most one poll waits for the daemon */
#define TOP_LINES_MAX 600 /* lines of a frame (plain: every item) */
#define TOP_LINE_MAX 1024 /* bytes of one line */
#define TOP_PEERS_MAX 256 /* members shown; the rest are counted */
#define TOP_COLS_MAX 1000
#define TOP_ROWS_MAX 500

/* A line's look on a terminal (plain text has none). */
enum { TOP_NORMAL, TOP_BOLD, TOP_REVERSE };

typedef struct top_line {
    int style;
    char text[TOP_LINE_MAX]; /* no control bytes (top_clean) */
} top_line;

/* One member as the last poll saw it. */
typedef struct top_peer {
    mfs_status_peer s;
    double send_bps, recv_bps; /* -1: not known (its first poll) */
} top_peer;

/* A member's counters of the poll before, for the rates. */
typedef struct top_count {
    uint64_t id, bytes_in, bytes_out;
} top_count;

typedef struct top_view {
    const char *store; /* the caller's */
    int plain;
    int cols, rows;
    /* the last poll: the daemon answered (reply owned), or why not */
    int up;
    char why[PATH_MAX + 300];
    cli_reply r;
    int64_t polled_ms;
    top_peer peers[TOP_PEERS_MAX];
    size_t npeers, peers_more;
    double send_bps, recv_bps; /* every member; -1 not known */
    /* the poll before (prev_ms 0: none) */
    top_count prev[TOP_PEERS_MAX];
    size_t nprev;
    int64_t prev_ms;
    /* the catch-up under way: the most it had to go since it began */
    int cu_active;
    uint64_t cu_ops_max, cu_bytes_max;
    /* the frame */
    top_line lines[TOP_LINES_MAX];
    size_t n;
    top_line footer;
    /* the terminal (not plain): keys come from key_fd (stdin, or
     * /dev/tty when stdin is not one; -1: no keys), its termios as found
     * in saved while termios_set */
    int key_fd, key_fd_owned;
    int termios_set, screen_on;
    struct termios saved;
    /* the signals it handles, blocked and read from sig_fd */
    int sig_fd, mask_set;
    sigset_t old_mask;
} top_view;

static int64_t top_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- text: control bytes out, widths in columns ---------------------- */

/* The code point at s (UTF-8) into *cp; its length in bytes, or 0 when s
 * does not start a valid, shortest sequence. */
static size_t top_utf8(const unsigned char *s, uint32_t *cp)
{
    size_t len;
    uint32_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        c &= 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        c &= 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        c &= 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && c < 0x800) ||
        (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Columns a code point takes: 0 for combining marks, 2 for the wide
 * (East Asian, emoji) ranges, else 1. Close enough for names. */
static int top_cp_width(uint32_t c)
{
    if (c >= 0x300 && c <= 0x36f)
        return 0;
    if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
        (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
        (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
        (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd))
        return 2;
    return 1;
}

/* Makes s safe to print, in place: every C0 and C1 control, DEL and byte
 * that is not valid UTF-8 becomes '?' (each of its bytes: the length
 * stays). */
static void top_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        uint32_t c;
        size_t len = top_utf8(p, &c);
        if (!len) {
            *p++ = '?';
            continue;
        }
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f))
            memset(p, '?', len);
        p += len;
    }
}

/* The bytes of s (clean) that fit in cols columns, whole characters;
 * the columns they take into *width (NULL: not wanted). */
static size_t top_fit(const char *s, int cols, int *width)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t at = 0;
    int used = 0;
    while (p[at]) {
        uint32_t c;
        size_t len = top_utf8(p + at, &c);
        int w = len ? top_cp_width(c) : 1;
        if (!len)
            len = 1;
        if (used + w > cols)
            break;
        used += w;
        at += len;
    }
    if (width)
        *width = used;
    return at;
}

/* ---- numbers for people --------------------------------------------- */

/* A count in at most 5 characters: 999, 1.2k, 12k, 1.2M, ... */
static void top_count_text(uint64_t n, char *out, size_t cap)
{
    const char *u = " kMGTP";
    double v = (double)n;
    int i = 0;
    while (v >= 999.5 && i < 5) {
        v /= 1000;
        i++;
    }
    if (!i)
        snprintf(out, cap, "%" PRIu64, n);
    else
        snprintf(out, cap, v < 9.95 ? "%.1f%c" : "%.0f%c", v, u[i]);
}

/* Bytes, 1024-based, short (columns): 512, 1.2K, 12K, 1.2M, ... */
static void top_bytes_short(double b, char *out, size_t cap)
{
    const char *u = " KMGTP";
    int i = 0;
    if (b < 0) {
        snprintf(out, cap, "-");
        return;
    }
    while (b >= 1023.5 && i < 5) {
        b /= 1024;
        i++;
    }
    if (!i)
        snprintf(out, cap, "%.0f", b);
    else
        snprintf(out, cap, b < 9.95 ? "%.1f%c" : "%.0f%c", b, u[i]);
}

/* Bytes, 1024-based, with their unit: 512 B, 1.2 MiB, ... */
static void top_bytes(double b, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int i = 0;
    while (b >= 1023.5 && i < 5) {
        b /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* A duration ahead: "12 s", "3 min", "1.5 h"; "?" when unknown. */
static void top_secs(int64_t ms, char *out, size_t cap)
{
    if (ms < 0)
        snprintf(out, cap, "?");
    else if (ms < 120000)
        snprintf(out, cap, "%" PRId64 " s", (ms + 999) / 1000);
    else if (ms < 7200000)
        snprintf(out, cap, "%" PRId64 " min", (ms + 59999) / 60000);
    else
        snprintf(out, cap, "%.1f h", (double)ms / 3600000);
}

/* "[#####.....]" of width cells inside the brackets. */
static void top_bar(double frac, int width, char *out, size_t cap)
{
    if (cap < (size_t)width + 3)
        width = (int)cap - 3;
    if (frac < 0)
        frac = 0;
    if (frac > 1)
        frac = 1;
    int full = (int)(frac * width + 0.5);
    out[0] = '[';
    for (int i = 0; i < width; i++)
        out[1 + i] = i < full ? '#' : '.';
    out[1 + width] = ']';
    out[2 + width] = '\0';
}

/* ---- the poll -------------------------------------------------------- */

static int top_state_rank(const char *state)
{
    static const char *const order[] = {"alive", "suspect", "dead", "left",
                                        "removed"};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (strcmp(state, order[i]) == 0)
            return (int)i;
    return (int)(sizeof order / sizeof *order);
}

/* Live members first, then by id: the ones cut off a short screen are
 * the least interesting, and a member keeps its row. */
static int top_peer_cmp(const void *a, const void *b)
{
    const top_peer *x = a, *y = b;
    int d = top_state_rank(x->s.state) - top_state_rank(y->s.state);
    if (d)
        return d;
    return x->s.id < y->s.id ? -1 : x->s.id > y->s.id;
}

/* The members of v->r with their rates against the poll before; then
 * remembers their counters for the next. */
static void top_peers_read(top_view *v)
{
    v->npeers = v->peers_more = 0;
    for (size_t i = 0; i < v->r.n; i++) {
        mfs_status_peer s;
        if (strcmp(v->r.key[i], "peer") != 0 ||
            mfs_status_peer_parse(v->r.val[i], &s) < 0)
            continue;
        if (v->npeers == TOP_PEERS_MAX) {
            v->peers_more++;
            continue;
        }
        v->peers[v->npeers++] =
            (top_peer){.s = s, .send_bps = -1, .recv_bps = -1};
    }
    qsort(v->peers, v->npeers, sizeof *v->peers, top_peer_cmp);
    double dt = v->prev_ms ? (double)(v->polled_ms - v->prev_ms) / 1000 : 0;
    v->send_bps = v->recv_bps = dt > 0 ? 0 : -1;
    for (size_t i = 0; i < v->npeers && dt > 0; i++) {
        top_peer *p = &v->peers[i];
        for (size_t j = 0; j < v->nprev; j++) {
            const top_count *c = &v->prev[j];
            /* counters that went back: the daemon restarted */
            if (c->id != p->s.id || p->s.bytes_out < c->bytes_out ||
                p->s.bytes_in < c->bytes_in)
                continue;
            p->send_bps = (double)(p->s.bytes_out - c->bytes_out) / dt;
            p->recv_bps = (double)(p->s.bytes_in - c->bytes_in) / dt;
            v->send_bps += p->send_bps;
            v->recv_bps += p->recv_bps;
            break;
        }
    }
    for (size_t i = 0; i < v->npeers; i++)
        v->prev[i] = (top_count){.id = v->peers[i].s.id,
                                 .bytes_in = v->peers[i].s.bytes_in,
                                 .bytes_out = v->peers[i].s.bytes_out};
    v->nprev = v->npeers;
    v->prev_ms = v->polled_ms;
}

/* The catch-up under way: its total is the most seen since it began. */
static void top_catchup_track(top_view *v)
{
    mfs_status_catchup cu;
    const char *l = cli_reply_get(&v->r, "catchup");
    if (!l || mfs_status_catchup_parse(l, &cu) < 0 || !cu.active) {
        v->cu_active = 0;
        return;
    }
    if (!v->cu_active)
        v->cu_ops_max = v->cu_bytes_max = 0;
    v->cu_active = 1;
    if (cu.ops > v->cu_ops_max)
        v->cu_ops_max = cu.ops;
    if (cu.bytes > v->cu_bytes_max)
        v->cu_bytes_max = cu.bytes;
}

/* Asks the daemon once (at most TOP_CALL_MS). */
static void top_poll(top_view *v)
{
    cli_reply_free(&v->r);
    int rc = cli_control_call(v->store, "stat watch", TOP_CALL_MS, &v->r);
    v->polled_ms = top_now_ms();
    v->up = rc == 0 && !v->r.err;
    if (v->up) {
        top_peers_read(v);
        top_catchup_track(v);
        return;
    }
    if (rc == -ENOENT || rc == -ECONNREFUSED)
        snprintf(v->why, sizeof v->why,
                 "not running (nothing answers on %s/%s)", v->store,
                 MFS_CONTROL_SOCK);
    else if (rc < 0)
        snprintf(v->why, sizeof v->why, "does not answer: %s", strerror(-rc));
    else
        snprintf(v->why, sizeof v->why, "answers: %s", v->r.msg);
    cli_reply_free(&v->r);
    v->npeers = v->peers_more = v->nprev = 0;
    v->prev_ms = 0;
    v->cu_active = 0;
}

/* ---- the frame ------------------------------------------------------- */

static void top_vset(top_line *l, int style, const char *fmt, va_list ap)
{
    l->style = style;
    vsnprintf(l->text, sizeof l->text, fmt, ap);
    top_clean(l->text);
}

static void top_add(top_view *v, int style, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void top_add(top_view *v, int style, const char *fmt, ...)
{
    va_list ap;
    if (v->n == TOP_LINES_MAX)
        return;
    va_start(ap, fmt);
    top_vset(&v->lines[v->n++], style, fmt, ap);
    va_end(ap);
}

static unsigned long long top_num(const top_view *v, const char *key)
{
    const char *s = cli_reply_get(&v->r, key);
    return s ? strtoull(s, NULL, 10) : 0;
}

static const char *top_str(const top_view *v, const char *key)
{
    const char *s = cli_reply_get(&v->r, key);
    return s && s[0] ? s : "-";
}

/* "meshfs top  WHAT ... TIME": the time at the right edge. */
static void top_title(top_view *v, const char *what)
{
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(when, sizeof when, v->plain ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S",
             &tm);
    int pad = v->cols - (int)strlen("meshfs top  ") - (int)strlen(what) -
              (int)strlen(when);
    if (pad < 2 || v->plain)
        pad = 2;
    top_add(v, TOP_BOLD, "meshfs top  %s%*s%s", what, pad, "", when);
}

/* "sync ...": the daemon's verdict; when not in sync, what is left to
 * go (only the parts that are not 0). */
static void top_sync_line(top_view *v)
{
    uint64_t owe = 0, owed = 0, their_chunks = 0, silent = 0;
    for (size_t i = 0; i < v->npeers; i++) {
        const mfs_status_peer *s = &v->peers[i].s;
        if (strcmp(s->state, "dead") == 0 || strcmp(s->state, "left") == 0)
            continue;
        owe += s->ops_they;
        owed += s->ops_we;
        their_chunks += s->chunks_they;
        silent += !s->heard;
    }
    mfs_status_catchup cu;
    const char *cl = cli_reply_get(&v->r, "catchup");
    if (!cl || mfs_status_catchup_parse(cl, &cu) < 0)
        cu.chunks = 0;
    const struct {
        uint64_t n;
        const char *what;
    } left[] = {
        {owed, "ops to receive"},
        {cu.chunks, "chunks to receive"},
        {owe, "ops peers lack"},
        {their_chunks, "chunks peers lack"},
        {top_num(v, "dirty_files"), "unpublished files"},
        {silent, "members not heard from"},
    };
    char why[256] = "", n[16];
    size_t at = 0;
    for (size_t i = 0; i < sizeof left / sizeof *left; i++) {
        if (!left[i].n || at >= sizeof why)
            continue;
        top_count_text(left[i].n, n, sizeof n);
        int k = snprintf(why + at, sizeof why - at, "%s%s %s", at ? ", " : "",
                         n, left[i].what);
        at += k > 0 ? (size_t)k : 0;
    }
    unsigned long long live = top_num(v, "live_peers");
    const char *rs = cli_reply_get(&v->r, "repl_in_sync");
    if (!rs)
        top_add(v, TOP_NORMAL, "sync      unknown (a daemon without the mesh)");
    else if (cli_reply_get(&v->r, "removed_self"))
        top_add(v, TOP_BOLD,
                "sync      NOT in sync: this node was removed from the mesh "
                "(meshfs join a new invitation to take part again)");
    else if (strcmp(rs, "1") == 0 && !live)
        top_add(v, TOP_NORMAL, "sync      in sync (no live peers)");
    else if (strcmp(rs, "1") == 0)
        top_add(v, TOP_NORMAL, "sync      in sync with %llu live peer%s", live,
                live == 1 ? "" : "s");
    else
        top_add(v, TOP_BOLD, "sync      NOT in sync: %s",
                at ? why : "a snapshot or the members' reports to come");
}

static void top_clock_line(top_view *v)
{
    mfs_status_clock c;
    const char *l = cli_reply_get(&v->r, "clock");
    char d[32];
    if (!l || mfs_status_clock_parse(l, &c) < 0)
        return;
    mfs_node_clock_human(-c.mesh_ms, d, sizeof d); /* ours minus the mesh's */
    if (strcmp(c.state, "in-step") == 0)
        top_add(v, TOP_NORMAL,
                "clock     in step with the mesh (%s, %u member%s, +/- %.1f "
                "ms)",
                d, c.peers, c.peers == 1 ? "" : "s", (double)c.err_us / 1000);
    else if (strcmp(c.state, "corrected") == 0)
        top_add(v, TOP_BOLD,
                "clock     %s %s the mesh: corrected (timedatectl set-ntp "
                "true)",
                d, c.mesh_ms < 0 ? "ahead of" : "behind");
    else if (strcmp(c.state, "remembered") == 0)
        top_add(v, TOP_NORMAL,
                "clock     corrected from memory (no member measured yet)");
    else
        top_add(v, TOP_NORMAL, "clock     not measured yet (no member heard)");
}

/* The write concern, when it is on: what fsync waits for. */
static void top_acks_line(top_view *v)
{
    unsigned long long n = top_num(v, "acks_n");
    if (!n)
        return;
    top_add(v, TOP_NORMAL,
            "acks      fsync waits for %llu member%s: %llu waiting, %llu "
            "met, %llu failed",
            n, n == 1 ? "" : "s", top_num(v, "acks_waiting"),
            top_num(v, "acks_met"),
            top_num(v, "acks_failed_timeout") +
                top_num(v, "acks_failed_peers") +
                top_num(v, "acks_failed_other"));
}

/* Collection: what holds it back (node/statdoc.h reads the "collect"
 * and "collect_held_by" lines). */
static void top_collect_line(top_view *v)
{
    mfs_kv kv = {v->r.n, v->r.key, v->r.val};
    mfs_statdoc_collect c;
    char ago[32];
    mfs_statdoc_collect_parse(&kv, &c);
    if (!c.have)
        return;
    if (c.held_by_have) {
        top_secs((int64_t)c.held_ago_ms, ago, sizeof ago);
        if (!c.held_heard)
            top_add(v, TOP_BOLD,
                    "collect   held back by %s: not heard from since the "
                    "daemon started (%llu items kept)",
                    c.held_by, c.held);
        else if (!c.held_live)
            top_add(v, TOP_BOLD,
                    "collect   held back by %s: offline for %s (%llu items "
                    "kept)",
                    c.held_by, ago, c.held);
        else
            top_add(v, TOP_NORMAL,
                    "collect   held back by %s until it catches up (%llu "
                    "items kept)",
                    c.held_by, c.held);
    } else if (!c.settled) {
        top_add(v, TOP_NORMAL, "collect   waiting for the mesh to settle");
    } else {
        char b[32];
        top_bytes((double)c.bytes, b, sizeof b);
        top_add(v, TOP_NORMAL,
                "collect   nothing held back; freed %llu versions, %llu "
                "chunks (%s)%s",
                c.versions, c.chunks, b, c.err ? "; its last pass failed" : "");
    }
}

static int top_bar_width(const top_view *v)
{
    return v->plain ? 20 : v->cols >= 100 ? 30 : v->cols >= 80 ? 16 : 10;
}

static void top_catchup_lines(top_view *v)
{
    char b[64], o1[16], o2[16], b1[32], b2[32], r1[16], r2[32], eta[32];
    mfs_status_catchup cu;
    const char *l = cli_reply_get(&v->r, "catchup");
    if (v->cu_active && l && mfs_status_catchup_parse(l, &cu) == 0) {
        double fo = v->cu_ops_max
                        ? (double)(v->cu_ops_max - cu.ops) / v->cu_ops_max
                        : 1;
        double fb = v->cu_bytes_max
                        ? (double)(v->cu_bytes_max - cu.bytes) / v->cu_bytes_max
                        : 1;
        double f = fo < fb ? fo : fb;
        top_bar(f, top_bar_width(v), b, sizeof b);
        top_count_text(v->cu_ops_max - cu.ops, o1, sizeof o1);
        top_count_text(v->cu_ops_max, o2, sizeof o2);
        top_bytes_short((double)(v->cu_bytes_max - cu.bytes), b1, sizeof b1);
        top_bytes_short((double)v->cu_bytes_max, b2, sizeof b2);
        top_count_text((uint64_t)cu.ops_per_s, r1, sizeof r1);
        top_bytes_short(cu.bytes_per_s, r2, sizeof r2);
        top_secs(cu.eta_ms, eta, sizeof eta);
        /* done/total ops and bytes, the rate, ETA (77 columns at most);
         * the ops' rate where there is room */
        char line[TOP_LINE_MAX], ops[80] = "", bytes[80] = "";
        if (v->cu_ops_max) /* a part with nothing to go is left out */
            snprintf(ops, sizeof ops, "  %s/%s ops", o1, o2);
        if (v->cu_bytes_max)
            snprintf(bytes, sizeof bytes, "  %s/%s", b1, b2);
        int k = snprintf(line, sizeof line,
                         "catch-up  %s %3.0f%%%s%s  %s/s  ETA %s", b, 100 * f,
                         ops, bytes, r2, eta);
        if (k > 0 && (v->plain || k + 16 <= v->cols))
            snprintf(line + k, sizeof line - (size_t)k, "  (%s ops/s)", r1);
        top_add(v, TOP_NORMAL, "%s", line);
    }
    mfs_status_snap sn;
    l = cli_reply_get(&v->r, "snapshot");
    if (l && mfs_status_snap_parse(l, &sn) == 0 && sn.active) {
        double f = sn.total ? (double)sn.done / sn.total : 0;
        top_bar(f, top_bar_width(v), b, sizeof b);
        top_bytes_short((double)sn.done, b1, sizeof b1);
        top_bytes_short((double)sn.total, b2, sizeof b2);
        top_add(v, TOP_NORMAL,
                "snapshot  %s %3.0f%%  %s of %s from %016" PRIx64, b, 100 * f,
                b1, sn.total ? b2 : "?", sn.from);
    }
}

/* A list that may not fit: n items, shown of them, "... N more". */
typedef struct top_list {
    size_t n, shown;
} top_list;

static size_t top_list_rows(const top_list *l)
{
    return l->shown + (l->shown < l->n);
}

/* Shrinks the lists (the longest first; on a tie the first of them in
 * the array) until their rows fit in avail, or none is shown. */
static void top_lists_fit(top_list *l, size_t nl, long avail)
{
    for (;;) {
        long used = 0;
        size_t big = nl;
        for (size_t i = 0; i < nl; i++) {
            used += (long)top_list_rows(&l[i]);
            if (l[i].shown && (big == nl || l[i].shown > l[big].shown))
                big = i;
        }
        if (used <= avail || big == nl)
            return;
        l[big].shown--;
    }
}

/* The member table's columns; the higher drop, the sooner a narrow
 * terminal goes without it. */
enum {
    TOP_C_NODE,
    TOP_C_ADDR,
    TOP_C_STATE,
    TOP_C_RTT,
    TOP_C_LOSS,
    TOP_C_SEND,
    TOP_C_RECV,
    TOP_C_LACKS,
    TOP_C_WELACK,
    TOP_C_CLOCK,
    TOP_C__N
};
static const struct {
    const char *head;
    int width, left, drop;
} top_cols[TOP_C__N] = {
    [TOP_C_NODE] = {"NODE", 12, 1, 0},
    [TOP_C_ADDR] = {"ADDRESS", 21, 1, 5},
    [TOP_C_STATE] = {"STATE", 7, 1, 0},
    [TOP_C_RTT] = {"RTT", 7, 0, 2},
    [TOP_C_LOSS] = {"LOSS", 5, 0, 3},
    [TOP_C_SEND] = {"SEND/s", 7, 0, 1},
    [TOP_C_RECV] = {"RECV/s", 7, 0, 1},
    [TOP_C_LACKS] = {"IT LACKS", 8, 0, 0},
    [TOP_C_WELACK] = {"WE LACK", 8, 0, 0},
    [TOP_C_CLOCK] = {"CLOCK", 8, 0, 4},
};
#define TOP_NODE_WIDE 16 /* the whole id, when there is room */

/* Which columns fit in cols (on[]), and the node column's width. */
static int top_cols_pick(int cols, int on[TOP_C__N])
{
    for (int drop = 5; drop >= 0; drop--) {
        int w = -1;
        for (int c = 0; c < TOP_C__N; c++)
            if (top_cols[c].drop <= drop)
                w += top_cols[c].width + 1;
        if (w <= cols || drop == 0) {
            for (int c = 0; c < TOP_C__N; c++)
                on[c] = top_cols[c].drop <= drop;
            return w + TOP_NODE_WIDE - top_cols[TOP_C_NODE].width <= cols
                       ? TOP_NODE_WIDE
                       : top_cols[TOP_C_NODE].width;
        }
    }
    return top_cols[TOP_C_NODE].width;
}

/* One table row from its cells (clean text), cut to each column. */
static void top_row(top_view *v, int style, const int on[TOP_C__N], int node_w,
                    char cell[TOP_C__N][64])
{
    char row[TOP_LINE_MAX];
    size_t at = 0;
    for (int c = 0; c < TOP_C__N; c++) {
        if (!on[c])
            continue;
        int w = c == TOP_C_NODE ? node_w : top_cols[c].width;
        size_t len = top_fit(cell[c], w, NULL);
        int pad = w - (int)len; /* ASCII: a byte is a column */
        int n = snprintf(row + at, sizeof row - at, "%s%*s%.*s%*s",
                         at ? " " : "", top_cols[c].left ? 0 : pad, "",
                         (int)len, cell[c], top_cols[c].left ? pad : 0, "");
        if (n < 0 || (size_t)n >= sizeof row - at)
            break;
        at += (size_t)n;
    }
    while (at && row[at - 1] == ' ')
        row[--at] = '\0';
    top_add(v, style, "%s", row);
}

static void top_peer_row(top_view *v, const top_peer *p, const int on[],
                         int node_w)
{
    char cell[TOP_C__N][64];
    const mfs_status_peer *s = &p->s;
    snprintf(cell[TOP_C_NODE], 64, "%016" PRIx64, s->id);
    snprintf(cell[TOP_C_ADDR], 64, "%s", s->addr);
    snprintf(cell[TOP_C_STATE], 64, "%s", s->state);
    double ms = (double)s->rtt_us / 1000;
    if (!s->rtt_us)
        snprintf(cell[TOP_C_RTT], 64, "-");
    else
        snprintf(cell[TOP_C_RTT], 64,
                 ms < 10     ? "%.1fms"
                 : ms < 1000 ? "%.0fms"
                             : "%.1fs",
                 ms < 1000 ? ms : ms / 1000);
    double loss = 100 * (s->loss_out > s->loss_in ? s->loss_out : s->loss_in);
    snprintf(cell[TOP_C_LOSS], 64, loss < 9.95 ? "%.1f%%" : "%.0f%%", loss);
    top_bytes_short(p->send_bps, cell[TOP_C_SEND], 64);
    top_bytes_short(p->recv_bps, cell[TOP_C_RECV], 64);
    if (s->heard) {
        top_count_text(s->ops_they, cell[TOP_C_LACKS], 64);
        top_count_text(s->ops_we, cell[TOP_C_WELACK], 64);
    } else {
        snprintf(cell[TOP_C_LACKS], 64, "?");
        snprintf(cell[TOP_C_WELACK], 64, "?");
    }
    char skew[32]; /* ~: one-way, from its reports; else measured */
    mfs_node_clock_human(s->skew_ms, skew, sizeof skew);
    snprintf(cell[TOP_C_CLOCK], 64, "%s%s", s->clock_ok ? "" : "~", skew);
    for (int c = 0; c < TOP_C__N; c++)
        top_clean(cell[c]);
    top_row(v, TOP_NORMAL, on, node_w, cell);
}

static void top_layout_down(top_view *v)
{
    top_title(v, "no daemon");
    top_add(v, TOP_BOLD, "daemon    %s", v->why);
    top_add(v, TOP_NORMAL, "store     %s", v->store);
    top_add(v, TOP_NORMAL, "          trying again every second");
}

/* The frame of the last poll, fitted to v->cols x v->rows (plain: all). */
static void top_layout(top_view *v)
{
    char b1[32], b2[32], what[64];
    v->n = 0;
    snprintf(v->footer.text, sizeof v->footer.text,
             " q quit   Ctrl-L redraw   refresh 1 s   %s", v->store);
    top_clean(v->footer.text);
    v->footer.style = TOP_REVERSE;
    if (!v->up) {
        top_layout_down(v);
        return;
    }
    snprintf(what, sizeof what, "node %s", top_str(v, "node"));
    top_title(v, what);
    const char *mnt = cli_reply_get(&v->r, "mount");
    top_add(v, TOP_NORMAL, "mount     %s  (daemon pid %s)  store %s",
            mnt && mnt[0] ? mnt : "not mounted", top_str(v, "pid"),
            top_str(v, "store"));
    top_bytes((double)top_num(v, "bytes"), b1, sizeof b1);
    top_add(v, TOP_NORMAL,
            "files     %llu  dirs %llu  %s  conflicts %llu  unpublished %llu",
            top_num(v, "files"), top_num(v, "dirs"), b1,
            top_num(v, "conflicts"), top_num(v, "dirty_files"));
    top_bytes_short(v->send_bps, b1, sizeof b1);
    top_bytes_short(v->recv_bps, b2, sizeof b2);
    top_add(v, TOP_NORMAL,
            "mesh      %llu of %zu live  send %s/s  recv %s/s  listen %s",
            top_num(v, "live_peers"), v->npeers + v->peers_more, b1, b2,
            top_str(v, "listen"));
    top_sync_line(v);
    top_clock_line(v);
    top_acks_line(v);
    top_collect_line(v);
    top_catchup_lines(v);

    /* the lists: sync waits, members, conflicts */
    size_t njobs = 0, nconf = 0;
    for (size_t i = 0; i < v->r.n; i++) {
        njobs += strcmp(v->r.key[i], "sync_job") == 0;
        nconf += strcmp(v->r.key[i], "conflict_path") == 0;
    }
    unsigned long long conflicts = top_num(v, "conflicts");
    if (conflicts < nconf)
        conflicts = nconf;
    /* shrunk in this order on a tie: conflicts, sync waits, members */
    enum { CONF, JOBS, PEERS };
    top_list l[3] = {[CONF] = {nconf, nconf},
                     [JOBS] = {njobs, njobs},
                     [PEERS] = {v->npeers + v->peers_more, v->npeers}};
    /* blank + header, an empty table's row, blank + header, the footer */
    long fixed = (long)v->n + 2 + (v->npeers ? 0 : 1) + (nconf ? 2 : 0) + 1;
    if (!v->plain)
        top_lists_fit(l, 3, (long)v->rows - fixed);

    size_t shown = 0;
    for (size_t i = 0; i < v->r.n; i++) {
        mfs_status_syncjob j;
        if (strcmp(v->r.key[i], "sync_job") != 0 ||
            mfs_status_syncjob_parse(v->r.val[i], &j) < 0)
            continue;
        if (shown++ == l[JOBS].shown)
            break;
        char b[64], left[32];
        top_bar(j.want ? (double)j.have / j.want : 1, top_bar_width(v), b,
                sizeof b);
        top_secs(j.timeout_ms > j.elapsed_ms
                     ? (int64_t)(j.timeout_ms - j.elapsed_ms)
                     : 0,
                 left, sizeof left);
        top_add(v, TOP_NORMAL,
                "sync wait %s %u of %u members hold op %" PRIu64 "  %s left", b,
                j.have, j.want, j.seq, left);
    }
    if (l[JOBS].shown < l[JOBS].n)
        top_add(v, TOP_NORMAL, "          ... %zu more sync waits",
                l[JOBS].n - l[JOBS].shown);

    int on[TOP_C__N];
    char head[TOP_C__N][64];
    int node_w = top_cols_pick(v->plain ? TOP_LINE_MAX : v->cols, on);
    for (int c = 0; c < TOP_C__N; c++)
        snprintf(head[c], sizeof head[c], "%s", top_cols[c].head);
    top_add(v, TOP_NORMAL, "%s", "");
    top_row(v, TOP_REVERSE, on, node_w, head);
    for (size_t i = 0; i < l[PEERS].shown; i++)
        top_peer_row(v, &v->peers[i], on, node_w);
    if (!v->npeers)
        top_add(v, TOP_NORMAL, "(no other member known yet)");
    else if (l[PEERS].shown < v->npeers + v->peers_more)
        top_add(v, TOP_NORMAL, "... %zu more",
                v->npeers + v->peers_more - l[PEERS].shown);

    if (nconf) {
        top_add(v, TOP_NORMAL, "%s", "");
        top_add(v, TOP_BOLD, "CONFLICTS (%llu)", conflicts);
        shown = 0;
        for (size_t i = 0; i < v->r.n && shown < l[CONF].shown; i++)
            if (strcmp(v->r.key[i], "conflict_path") == 0) {
                top_add(v, TOP_NORMAL, "  %s", v->r.val[i]);
                shown++;
            }
        if (shown < conflicts)
            top_add(v, TOP_NORMAL, "  ... %llu more", conflicts - shown);
    }
}

/* ---- output ---------------------------------------------------------- */

typedef struct top_buf {
    char *p;
    size_t n, cap;
    int err; /* its first error: later puts are no-ops */
} top_buf;

static void top_put(top_buf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 4096;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void top_puts(top_buf *b, const char *s)
{
    top_put(b, s, strlen(s));
}

static int top_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void top_put_line(top_buf *b, const top_line *l, int cols)
{
    static const char *const on[] = {"", "\033[1m", "\033[7m"};
    int width;
    size_t len = top_fit(l->text, cols, &width);
    top_puts(b, on[l->style]);
    top_put(b, l->text, len);
    if (l->style == TOP_REVERSE) /* the bar spans the whole row */
        for (; width < cols; width++)
            top_put(b, " ", 1);
    if (l->style != TOP_NORMAL)
        top_puts(b, "\033[0m");
}

/* Draws the frame: on a terminal every row from the top (each cleared
 * first, the footer on the last), in one write; else one plain block. */
static int top_draw(top_view *v, int clear)
{
    top_layout(v);
    if (v->plain) {
        for (size_t i = 0; i < v->n; i++)
            printf("%s\n", v->lines[i].text);
        putchar('\n');
        return fflush(stdout) == EOF || ferror(stdout) ? -EIO : 0;
    }
    top_buf b = {0};
    char at[32];
    if (clear)
        top_puts(&b, "\033[2J");
    for (int row = 0; row < v->rows; row++) {
        snprintf(at, sizeof at, "\033[%d;1H\033[2K", row + 1);
        top_puts(&b, at);
        if (row == v->rows - 1)
            top_put_line(&b, &v->footer, v->cols);
        else if ((size_t)row < v->n)
            top_put_line(&b, &v->lines[row], v->cols);
    }
    int rc = b.err ? b.err : top_write_all(STDOUT_FILENO, b.p, b.n);
    free(b.p);
    return rc;
}

/* ---- the terminal ---------------------------------------------------- */

static void top_size(top_view *v)
{
    struct winsize ws;
    v->cols = 80;
    v->rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
        v->cols = ws.ws_col > TOP_COLS_MAX ? TOP_COLS_MAX : ws.ws_col;
        v->rows = ws.ws_row > TOP_ROWS_MAX ? TOP_ROWS_MAX : ws.ws_row;
    }
}

/* Keys one at a time, no echo (signals still on: Ctrl-C is SIGINT), the
 * alternate screen, the cursor hidden. Safe to call again after
 * top_term_off (Ctrl-Z): it reads the termios afresh. */
static int top_term_on(top_view *v)
{
    if (v->key_fd >= 0 && tcgetattr(v->key_fd, &v->saved) == 0) {
        struct termios t = v->saved;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(v->key_fd, TCSANOW, &t) < 0)
            return -errno;
        v->termios_set = 1;
    }
    static const char on[] = "\033[?1049h\033[?25l\033[2J";
    v->screen_on = 1;
    top_size(v);
    return top_write_all(STDOUT_FILENO, on, sizeof on - 1);
}

/* Puts the terminal back as top_term_on found it. Idempotent; on every
 * way out. */
static void top_term_off(top_view *v)
{
    if (v->screen_on) {
        static const char off[] = "\033[0m\033[?25h\033[?1049l";
        (void)top_write_all(STDOUT_FILENO, off, sizeof off - 1);
        v->screen_on = 0;
    }
    if (v->termios_set) {
        tcsetattr(v->key_fd, TCSADRAIN, &v->saved);
        v->termios_set = 0;
    }
}

/* Where the keys come from: stdin when it is a terminal, else the
 * controlling terminal; -1 (no keys: signals still quit) if neither. */
static void top_keys_open(top_view *v)
{
    v->key_fd = -1;
    if (isatty(STDIN_FILENO)) {
        v->key_fd = STDIN_FILENO;
        return;
    }
    int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0 && isatty(fd)) {
        v->key_fd = fd;
        v->key_fd_owned = 1;
    } else if (fd >= 0) {
        close(fd);
    }
}

/* Blocks the signals it handles and reads them from a signalfd. */
static int top_signals_on(top_view *v)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    if (!v->plain) {
        sigaddset(&set, SIGWINCH);
        sigaddset(&set, SIGTSTP);
    }
    if (sigprocmask(SIG_BLOCK, &set, &v->old_mask) < 0)
        return -errno;
    v->mask_set = 1;
    v->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return v->sig_fd < 0 ? -errno : 0;
}

static void top_signals_off(top_view *v)
{
    if (v->sig_fd >= 0) {
        struct signalfd_siginfo si; /* drop what came after the last read */
        while (read(v->sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
        close(v->sig_fd);
        v->sig_fd = -1;
    }
    if (v->mask_set)
        sigprocmask(SIG_SETMASK, &v->old_mask, NULL);
    v->mask_set = 0;
}

/* Ctrl-Z: the terminal back, stop, and on SIGCONT take it again. */
static int top_suspend(top_view *v)
{
    sigset_t tstp;
    top_term_off(v);
    sigemptyset(&tstp);
    sigaddset(&tstp, SIGTSTP);
    sigprocmask(SIG_UNBLOCK, &tstp, NULL);
    raise(SIGTSTP); /* stops here (its default action) until SIGCONT */
    sigprocmask(SIG_BLOCK, &tstp, NULL);
    return top_term_on(v);
}

/* What a key or a signal asks for (the larger wins, but TOP_QUIT). */
enum { TOP_GO_ON, TOP_QUIT, TOP_REDRAW, TOP_CLEAR };
#define TOP_CTRL(c) ((c)&0x1f) /* the byte of Ctrl-c */

/* What the signals that came ask for. */
static int top_signals_read(top_view *v)
{
    struct signalfd_siginfo si;
    int what = TOP_GO_ON;
    while (read(v->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGWINCH:
            top_size(v);
            if (what == TOP_GO_ON)
                what = TOP_REDRAW;
            break;
        case SIGTSTP:
            if (top_suspend(v) < 0)
                return TOP_QUIT;
            what = TOP_CLEAR;
            break;
        default:
            return TOP_QUIT;
        }
    }
    return what;
}

/* What the keys typed ask for: q quits, Ctrl-L redraws. */
static int top_keys_read(top_view *v)
{
    char k[64];
    int what = TOP_GO_ON;
    ssize_t n = read(v->key_fd, k, sizeof k);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return TOP_GO_ON;
    for (ssize_t i = 0; i < n; i++) {
        if (k[i] == 'q' || k[i] == 'Q' || k[i] == TOP_CTRL('C'))
            return TOP_QUIT;
        if (k[i] == TOP_CTRL('L'))
            what = TOP_CLEAR;
    }
    return what;
}

/* Waits until deadline_ms for keys and signals, redrawing as they ask.
 * 1 to quit, 0 at the deadline, or a negative errno. */
static int top_wait(top_view *v, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - top_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pf[2] = {{.fd = v->sig_fd, .events = POLLIN},
                               {.fd = v->key_fd, .events = POLLIN}};
        int n = poll(pf, v->key_fd >= 0 ? 2 : 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        int what = TOP_GO_ON, w;
        if (pf[0].revents & POLLIN)
            what = top_signals_read(v);
        if (what != TOP_QUIT && v->key_fd >= 0 &&
            (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (pf[1].revents & (POLLHUP | POLLERR))
                return 1; /* the terminal went away */
            w = top_keys_read(v);
            if (w == TOP_QUIT || w > what)
                what = w;
        }
        if (what == TOP_QUIT)
            return 1;
        if (what != TOP_GO_ON && !v->plain) {
            int rc = top_draw(v, what == TOP_CLEAR);
            if (rc < 0)
                return rc;
        }
    }
}

int cli_top_run(const char *store, int plain, int count)
{
    top_view *v = calloc(1, sizeof *v);
    if (!v)
        return cli_fail("out of memory");
    v->store = store;
    v->plain = plain || !isatty(STDOUT_FILENO);
    v->key_fd = v->sig_fd = -1;
    v->cols = TOP_LINE_MAX - 1; /* plain: no cut */
    int rc = top_signals_on(v);
    const char *what = "cannot block signals";
    if (rc == 0 && !v->plain) {
        top_keys_open(v);
        rc = top_term_on(v);
        what = "cannot set up the terminal";
    }
    for (int frames = 0, clear = 0; rc == 0;) {
        what = "cannot draw";
        top_poll(v);
        if ((rc = top_draw(v, clear)) < 0)
            break;
        if (count > 0 && ++frames >= count)
            break;
        what = "cannot wait for keys";
        rc = top_wait(v, v->polled_ms + TOP_TICK_MS);
        if (rc == 1) {
            rc = 0;
            break;
        }
    }
    top_term_off(v);
    top_signals_off(v);
    if (v->key_fd_owned)
        close(v->key_fd);
    cli_reply_free(&v->r);
    free(v);
    if (rc < 0)
        return cli_fail("top: %s: %s", what, strerror(-rc));
    return CLI_OK;
}

/* The store of [MOUNTPOINT | --store DIR]: a path in a meshfs mount (a
 * dead one too: its daemon may come back). 0 or an exit code. */
static int top_store_of(const cli_args *a, char *store, size_t cap)
{
    int is_default;
    char path[PATH_MAX];
    struct stat st;
    cli_mount m;
    if (!a->npos) {
        if (cli_store_dir(a->store, store, cap, &is_default) < 0)
            return cli_fail("cannot find the default store: set HOME, "
                            "MESHFS_STORE or use --store DIR");
        return 0;
    }
    if (cli_abspath(a->pos[0], path, sizeof path) < 0)
        return cli_fail("path too long: %s", a->pos[0]);
    if ((cli_mount_dead(path) && cli_mount_at(path, &m) == 1 &&
         cli_mount_is_meshfs(&m)) ||
        (lstat(path, &st) == 0 &&
         cli_mount_by_dev(major(st.st_dev), minor(st.st_dev), &m) == 1 &&
         cli_mount_is_meshfs(&m))) {
        snprintf(store, cap, "%s", m.source);
        return 0;
    }
    return cli_fail("not in a meshfs mount: %s", path);
}

int cli_cmd_top(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX];
    int rc =
        cli_args_parse("top", argc, argv, CLI_OPT_STORE | CLI_OPT_COUNT, 1, &a);
    if (rc)
        return rc;
    if (a.npos && a.store)
        return cli_usage_error("give either a mount point or --store",
                               a.pos[0]);
    if ((rc = top_store_of(&a, store, sizeof store)))
        return rc;
    return cli_top_run(store, 0, (int)a.count);
}
