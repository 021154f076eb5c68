/*
 * http.h - the status page (node/http.c; docs/STATUS.md): an HTTP
 * listener in the daemon, off unless `--http ADDRESS` asks for it, that
 * serves the page (node/web/index.html, built into the binary), the JSON
 * document of `meshfs stat --json` (/status.json), the last hour of
 * traffic (/history.json) and metrics for Prometheus (/metrics). Every
 * request must carry the store's secret (STORE/http.token) as ?token= or
 * "Authorization: Bearer"; --metrics-open lets /metrics go without it.
 */
#ifndef MFS_NODE_HTTP_H
#define MFS_NODE_HTTP_H

#include <stddef.h>

struct mfs_control;

#define MFS_HTTP_TOKEN_FILE "http.token"
#define MFS_HTTP_TOKEN_LEN 64 /* hex digits: 32 random bytes */

typedef struct mfs_http_config {
    const char *addr; /* "IP:PORT" or "[IPv6]:PORT" (port 0: any free) */
    int public_ok;    /* --http-public: an address that is not loopback */
    int metrics_open; /* --metrics-open: /metrics without the token */
} mfs_http_config;

typedef struct mfs_http mfs_http;

/* Checks an address for --http: 0, or -EINVAL with why in err (not
 * IP:PORT, or not loopback without public_ok). No side effects. */
int mfs_http_check(const mfs_http_config *cfg, char *err, size_t errcap);
/* Whether the address can be bound now (a socket bound and closed): 0,
 * or -errno with why in err. Before a mount, so that an address in use
 * fails it before anything is made. */
int mfs_http_probe(const mfs_http_config *cfg, char *err, size_t errcap);
/* Starts serving the node behind ctl (its store, fs, mesh). Makes the
 * store's token if it has none. 0 (*out is the listener; its address,
 * with the real port, in mfs_http_addr) or -errno with why in err. */
int mfs_http_start(mfs_http **out, const mfs_http_config *cfg,
                   struct mfs_control *ctl, char *err, size_t errcap);
/* "127.0.0.1:8080" */
const char *mfs_http_addr(const mfs_http *h);
/* Stops the listener and frees it (NULL: nothing). */
void mfs_http_stop(mfs_http *h);
/* Reads STORE/http.token into out (MFS_HTTP_TOKEN_LEN + 1 bytes); with
 * create, makes a new one if there is none (mode 0600). 0 or -errno
 * (-ENOENT: none, and not create). */
int mfs_http_token(const char *store_dir, int create, char *out);

#endif
