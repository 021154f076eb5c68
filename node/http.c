/*
 * http.c - the status page's listener (http.h, docs/STATUS.md).
 *
 * libmicrohttpd parses HTTP and runs the listener on one thread of its
 * own; requests are answered one at a time (mu), each from what the
 * daemon already keeps: the "stat" reply built in memory
 * (mfs_control_stat, the same as the control socket's), the file system's
 * request counts, the mesh's counters. Nothing here writes to the store
 * except the token, once.
 *
 * The secret: any local user can reach a loopback port, so every request
 * must carry the store's token (STORE/http.token, 0600, 32 random bytes
 * in hex) as ?token= (what `meshfs stat --url` prints) or as
 * "Authorization: Bearer" (what the page's own requests and Prometheus
 * send); compared in constant time. Without it: 401. The page is one
 * file with its script and style inline, built into the binary
 * (node/web/index.html), so nothing is fetched from elsewhere.
 *
 * History: a thread samples the traffic counters every 5 s and keeps the
 * last hour (720 samples) for the page's charts (/history.json): the
 * counters as they were, the page draws rates from their differences.
 */
#include "http.h"

#include "fs.h"
#include "log.h"
#include "mesh.h"
#include "metrics.h"
#include "node.h"
#include "statdoc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* node/web/index.html, made into C by cmake/embed.cmake */
extern const unsigned char mfs_web_index_html[];
extern const size_t mfs_web_index_html_len;

#define HIST_N 720          /* samples kept: an hour */
#define HIST_EVERY_MS 5000u /* between samples */
#define HIST_PEERS 32       /* peers per sample */

typedef struct hist_peer {
    uint64_t id;
    uint64_t bytes_in, bytes_out, ops_sent, ops_recv;
} hist_peer;

typedef struct hist_sample {
    int64_t t_ms; /* wall clock, Unix ms */
    unsigned npeers;
    hist_peer peers[HIST_PEERS];
} hist_sample;

struct mfs_http {
    struct MHD_Daemon *d;
    mfs_control *ctl;
    int metrics_open;
    char token[MFS_HTTP_TOKEN_LEN + 1];
    char addr[80];
    pthread_mutex_t mu; /* one request at a time; the history */
    hist_sample *hist;  /* ring of HIST_N */
    size_t hist_next, hist_n;
    pthread_t sampler;
    int sampler_started;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stop;
};

/* ---- the token --------------------------------------------------------- */

int mfs_http_token(const char *store_dir, int create, char *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", store_dir, MFS_HTTP_TOKEN_FILE);
    for (int tries = 0; tries < 2; tries++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            ssize_t n = read(fd, out, MFS_HTTP_TOKEN_LEN);
            close(fd);
            if (n != MFS_HTTP_TOKEN_LEN)
                return -EBADMSG;
            out[MFS_HTTP_TOKEN_LEN] = '\0';
            for (int i = 0; i < MFS_HTTP_TOKEN_LEN; i++)
                if (!((out[i] >= '0' && out[i] <= '9') ||
                      (out[i] >= 'a' && out[i] <= 'f')))
                    return -EBADMSG;
            return 0;
        }
        if (errno != ENOENT || !create)
            return -errno;
        uint8_t raw[MFS_HTTP_TOKEN_LEN / 2];
        char hex[MFS_HTTP_TOKEN_LEN + 1];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
        sodium_memzero(raw, sizeof raw);
        int r = mfs_write_new_file(path, "%s\n", hex);
        sodium_memzero(hex, sizeof hex);
        if (r < 0 && r != -EEXIST) /* EEXIST: made meanwhile, read it */
            return r;
    }
    return -EIO;
}

/* ---- the address ------------------------------------------------------- */

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
}

int mfs_http_check(const mfs_http_config *cfg, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    unsigned len;
    if (!cfg->addr || mfs_mesh_addr_parse(cfg->addr, &ss, &len) < 0) {
        snprintf(err, errcap,
                 "bad --http address '%s': give IP:PORT, e.g. "
                 "127.0.0.1:7411",
                 cfg->addr ? cfg->addr : "");
        return -EINVAL;
    }
    if (!is_loopback(&ss) && !cfg->public_ok) {
        snprintf(err, errcap,
                 "--http %s is not a loopback address: the status page "
                 "would show this mesh to anyone who can reach it (the "
                 "token still guards it, over plain HTTP); give "
                 "--http-public as well to do so",
                 cfg->addr);
        return -EINVAL;
    }
    return 0;
}

int mfs_http_probe(const mfs_http_config *cfg, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    unsigned len;
    if (mfs_mesh_addr_parse(cfg->addr, &ss, &len) < 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0; /* the listener will say */
    int one = 1;  /* as libmicrohttpd binds */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int r = bind(fd, (struct sockaddr *)&ss, len) < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        snprintf(err, errcap, "cannot serve the status page on %s: %s",
                 cfg->addr,
                 r == -EADDRINUSE ? "the address is in use (another mount's "
                                    "--http?)"
                 : r == -EADDRNOTAVAIL ? "not an address of this machine"
                                       : strerror(-r));
    return r;
}

/* ---- history ------------------------------------------------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sample(mfs_http *h)
{
    mfs_node *m = h->ctl->mesh;
    static mfs_peer_stat ps[HIST_PEERS]; /* sampler thread only */
    static mfs_repl_peer rp[HIST_PEERS];
    mfs_repl_status st;
    hist_sample s = {.t_ms = wall_ms()};
    size_t np = m->net.peers(m->net.ctx, ps, HIST_PEERS);
    size_t nr = mfs_repl_status_get(m->repl, &st, rp, HIST_PEERS);
    for (size_t i = 0; i < np && i < HIST_PEERS; i++) {
        if (!ps[i].id)
            continue;
        hist_peer *p = &s.peers[s.npeers++];
        *p = (hist_peer){.id = ps[i].id,
                         .bytes_in = ps[i].bytes_in,
                         .bytes_out = ps[i].bytes_out};
        for (size_t k = 0; k < nr && k < HIST_PEERS; k++)
            if (rp[k].id == ps[i].id) {
                p->ops_sent = rp[k].ops_sent;
                p->ops_recv = rp[k].ops_recv;
            }
    }
    pthread_mutex_lock(&h->mu);
    h->hist[h->hist_next] = s;
    h->hist_next = (h->hist_next + 1) % HIST_N;
    if (h->hist_n < HIST_N)
        h->hist_n++;
    pthread_mutex_unlock(&h->mu);
}

static void *sampler_main(void *arg)
{
    mfs_http *h = arg;
    pthread_setname_np(pthread_self(), "mfs-http-hist");
    pthread_mutex_lock(&h->stop_mu);
    while (!h->stop) {
        pthread_mutex_unlock(&h->stop_mu);
        sample(h);
        pthread_mutex_lock(&h->stop_mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += HIST_EVERY_MS / 1000;
        while (!h->stop &&
               pthread_cond_timedwait(&h->stop_cv, &h->stop_mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&h->stop_mu);
    return NULL;
}

/* /history.json (under mu) */
static void history_json(mfs_http *h, FILE *f)
{
    fprintf(f,
            "{\"format\":1,\"interval_ms\":%u,\"now_ms\":%" PRId64
            ",\"samples\":[",
            HIST_EVERY_MS, wall_ms());
    size_t start = (h->hist_next + HIST_N - h->hist_n) % HIST_N;
    for (size_t i = 0; i < h->hist_n; i++) {
        const hist_sample *s = &h->hist[(start + i) % HIST_N];
        uint64_t sent = 0, recv = 0;
        for (unsigned k = 0; k < s->npeers; k++) {
            sent += s->peers[k].ops_sent;
            recv += s->peers[k].ops_recv;
        }
        fprintf(f,
                "%s{\"t_ms\":%" PRId64 ",\"ops_sent\":%" PRIu64
                ",\"ops_recv\":%" PRIu64 ",\"peers\":[",
                i ? "," : "", s->t_ms, sent, recv);
        for (unsigned k = 0; k < s->npeers; k++) {
            const hist_peer *p = &s->peers[k];
            fprintf(f,
                    "%s{\"id\":\"%016" PRIx64 "\",\"bytes_in\":%" PRIu64
                    ",\"bytes_out\":%" PRIu64 ",\"ops_sent\":%" PRIu64
                    ",\"ops_recv\":%" PRIu64 "}",
                    k ? "," : "", p->id, p->bytes_in, p->bytes_out, p->ops_sent,
                    p->ops_recv);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "]}\n");
}

/* ---- requests ----------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code,
                               const char *type, void *body, size_t len,
                               enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* the token rides in the page's address: never pass it on */
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (code == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate",
                                "Bearer realm=\"meshfs\"");
    if (strncmp(type, "text/html", 9) == 0) {
        MHD_add_response_header(
            r, "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src "
            "'unsafe-inline'; img-src data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
    }
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned code,
                                    const char *text)
{
    return respond(c, code, "text/plain; charset=utf-8", (void *)text,
                   strlen(text), MHD_RESPMEM_PERSISTENT);
}

/* 1 if the request carries the token */
static int authorized(const mfs_http *h, struct MHD_Connection *c)
{
    const char *t =
        MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    const char *a =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!t && a && strncasecmp(a, "Bearer ", 7) == 0)
        for (t = a + 7; *t == ' ';)
            t++;
    return t && strlen(t) == MFS_HTTP_TOKEN_LEN &&
           sodium_memcmp(t, h->token, MFS_HTTP_TOKEN_LEN) == 0;
}

/* The document or the metrics, made under mu into a buffer the response
 * owns. */
static enum MHD_Result generated(mfs_http *h, struct MHD_Connection *c,
                                 const char *url)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "out of memory\n");
    const char *type = "application/json";
    int r = 0;
    pthread_mutex_lock(&h->mu);
    if (strcmp(url, "/history.json") == 0) {
        history_json(h, f);
    } else {
        mfs_kv kv;
        r = mfs_control_stat(h->ctl, &kv);
        if (r == 0 && strcmp(url, "/metrics") == 0) {
            type = "text/plain; version=0.0.4; charset=utf-8";
            mfs_metrics_write(f, &kv, h->ctl->fs, h->ctl->mesh);
        } else if (r == 0) {
            if (h->ctl->mesh) /* the page watches: fresh liveness */
                mfs_node_watch(h->ctl->mesh, MFS_NODE_WATCH_MS);
            mfs_statdoc_json(f, &kv, 1, h->ctl->store_dir, h->ctl->mountpoint);
        }
        if (r == 0)
            mfs_kv_free(&kv);
    }
    pthread_mutex_unlock(&h->mu);
    if (fclose(f) != 0 || r < 0) {
        free(text);
        mfs_log(LOG_WARNING, "http: cannot make %s: %s", url,
                strerror(r < 0 ? -r : ENOMEM));
        return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "the daemon cannot say now; try again\n");
    }
    return respond(c, MHD_HTTP_OK, type, text, len, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_len, void **req_cls)
{
    mfs_http *h = cls;
    (void)version;
    (void)upload;
    (void)req_cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                            "only GET and HEAD\n");
    if (*upload_len)
        return respond_text(c, MHD_HTTP_BAD_REQUEST, "no body expected\n");
    int page = strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
    int known = page || strcmp(url, "/status.json") == 0 ||
                strcmp(url, "/history.json") == 0 ||
                strcmp(url, "/metrics") == 0;
    int open_ok = h->metrics_open && strcmp(url, "/metrics") == 0;
    if (!open_ok && !authorized(h, c))
        return respond_text(c, MHD_HTTP_UNAUTHORIZED,
                            "401: this needs the store's token: open the "
                            "address `meshfs stat --url` prints, or send "
                            "Authorization: Bearer TOKEN\n");
    if (!known)
        return respond_text(c, MHD_HTTP_NOT_FOUND,
                            "404: /, /status.json, /history.json and "
                            "/metrics are here\n");
    if (page)
        return respond(c, MHD_HTTP_OK, "text/html; charset=utf-8",
                       (void *)mfs_web_index_html, mfs_web_index_html_len,
                       MHD_RESPMEM_PERSISTENT);
    return generated(h, c, url);
}

/* libmicrohttpd's own complaints (a client that went away, ...) */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    mfs_log(LOG_INFO, "http: %s", msg);
}

int mfs_http_start(mfs_http **out, const mfs_http_config *cfg, mfs_control *ctl,
                   char *err, size_t errcap)
{
    *out = NULL;
    int r = mfs_http_check(cfg, err, errcap);
    if (r < 0)
        return r;
    struct sockaddr_storage ss;
    unsigned len;
    mfs_mesh_addr_parse(cfg->addr, &ss, &len);
    mfs_http *h = calloc(1, sizeof *h);
    if (h)
        h->hist = calloc(HIST_N, sizeof *h->hist);
    if (!h || !h->hist) {
        free(h);
        snprintf(err, errcap, "out of memory for the status page");
        return -ENOMEM;
    }
    h->ctl = ctl;
    h->metrics_open = cfg->metrics_open;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    r = mfs_http_token(ctl->store_dir, 1, h->token);
    if (r < 0) {
        snprintf(err, errcap, "cannot read or make %s/%s: %s", ctl->store_dir,
                 MFS_HTTP_TOKEN_FILE,
                 r == -EBADMSG ? "not a token (delete it to get a new one)"
                               : strerror(-r));
        mfs_http_stop(h);
        return r;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* libmicrohttpd's thread inherits this thread's signal mask: it must
     * not take the SIGTERM that ends the FUSE loop (fs.c) */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    sigaddset(&term, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 32u,
        MHD_OPTION_CONNECTION_TIMEOUT, 15u, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_END);
    if (!h->d) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        snprintf(err, errcap,
                 "cannot serve the status page on %s (in use, or not an "
                 "address of this machine)",
                 cfg->addr);
        mfs_http_stop(h);
        return -EADDRINUSE;
    }
    /* the real port (port 0: the kernel's choice) */
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (di && getsockname(di->listen_fd, (struct sockaddr *)&bound, &bl) == 0)
        ss = bound;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(h->addr, sizeof h->addr, "%s:%u", ip, port);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(h->addr, sizeof h->addr, "[%s]:%u", ip, port);
    }
    if (ctl->mesh) /* its thread too starts with the signals blocked */
        h->sampler_started =
            pthread_create(&h->sampler, NULL, sampler_main, h) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ctl->mesh && !h->sampler_started) {
        snprintf(err, errcap, "cannot start a thread for the page");
        mfs_http_stop(h);
        return -EAGAIN;
    }
    if (!is_loopback(&ss))
        mfs_log(LOG_WARNING,
                "http: the status page listens on %s, which is not a "
                "loopback address (--http-public): anyone who can reach it "
                "and has the token sees this mesh, over plain HTTP",
                h->addr);
    mfs_log(LOG_NOTICE,
            "http: status page on http://%s/ (meshfs stat --url "
            "prints the address with its token)",
            h->addr);
    *out = h;
    return 0;
}

const char *mfs_http_addr(const mfs_http *h)
{
    return h->addr;
}

void mfs_http_stop(mfs_http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    if (h->sampler_started) {
        pthread_mutex_lock(&h->stop_mu);
        h->stop = 1;
        pthread_cond_broadcast(&h->stop_cv);
        pthread_mutex_unlock(&h->stop_mu);
        pthread_join(h->sampler, NULL);
    }
    pthread_cond_destroy(&h->stop_cv);
    pthread_mutex_destroy(&h->stop_mu);
    pthread_mutex_destroy(&h->mu);
    sodium_memzero(h->token, sizeof h->token);
    free(h->hist);
    free(h);
}
