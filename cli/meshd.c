/*
 * meshd.c - the daemon's side of the mesh: starts the transport (sync/
 * driver) and the replication engine on one store, feeds the engine the
 * transport's events and the store's "new local ops" signal, remembers
 * peer addresses in STORE/peers, and reports for `meshfs stat`.
 *
 * Where it listens: --listen, else what STORE/listen says (written by an
 * earlier --listen), else 0.0.0.0:7410, or any free port when 7410 is
 * taken (only when the user asked for nothing).
 */
#include "cli.h"

#ifdef MESHFS_HAVE_SYNC
#include "driver.h"
#include "log.h"
#include "mesh.h"
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PEERS_FILE "peers"
#define LISTEN_FILE "listen"
#define DEFAULT_LISTEN "0.0.0.0:7410"
#define MAX_SEEDS 64
#define SAVE_EVERY_US 10000000u

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int send_cb(void *arg, uint64_t to, int channel, uint8_t mtype,
                   const void *data, size_t len)
{
    cli_mesh *m = arg;
    if (!m->sync)
        return -EAGAIN;
    return mfs_sync_send(m->sync, to, channel, mtype, data, len);
}

static void on_msg(void *arg, uint64_t from, uint8_t mtype, const uint8_t *data,
                   size_t len)
{
    cli_mesh *m = arg;
    mfs_repl_on_msg(m->repl, mono_us(), from, mtype, data, len);
}

static void on_peer(void *arg, uint64_t id, int state, uint64_t epoch)
{
    cli_mesh *m = arg;
    mfs_log(LOG_INFO, "sync: peer %016" PRIx64 " is %s", id,
            mfs_sync_state_name(state));
    mfs_repl_on_peer(m->repl, mono_us(), id, state, epoch);
}

static void oplog_cb(void *arg)
{
    cli_mesh *m = arg;
    mfs_repl_changed(m->repl);
    if (m->sync)
        mfs_sync_wake(m->sync);
}

/* Reads "HOST:PORT" lines of STORE/peers into seeds (strdup'd). */
static size_t read_peers(const char *dir, char **seeds, size_t n, size_t cap)
{
    char path[PATH_MAX + 16], line[256];
    snprintf(path, sizeof path, "%s/%s", dir, PEERS_FILE);
    FILE *f = fopen(path, "re");
    if (!f)
        return n;
    while (n < cap && fgets(line, sizeof line, f)) {
        line[strcspn(line, " \t\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        int dup = 0;
        for (size_t i = 0; i < n; i++)
            dup |= strcmp(seeds[i], line) == 0;
        if (!dup && (seeds[n] = strdup(line)) != NULL)
            n++;
    }
    fclose(f);
    return n;
}

/* Rewrites STORE/peers with the seeds and every peer we heard from. */
static void save_peers(cli_mesh *m)
{
    mfs_peer_stat ps[64];
    size_t n = mfs_sync_peers(m->sync, ps, 64);
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", m->store_dir, PEERS_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char text[64 * 80 + MAX_SEEDS * 80];
    size_t len = 0;
    text[0] = '\0';
    for (size_t i = 0; i < m->nseeds; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s\n",
                                m->seeds[i]);
    for (size_t i = 0; i < n && i < 64; i++) {
        char a[80], lineb[96];
        if (!ps[i].id || !ps[i].addr_validated)
            continue;
        mfs_addr_str(&ps[i].addr, a, sizeof a);
        snprintf(lineb, sizeof lineb, "%s\n", a);
        if (!strstr(text, lineb) && len + strlen(lineb) < sizeof text)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s", lineb);
    }
    if (m->saved_len == len && (len == 0 || memcmp(m->saved, text, len) == 0))
        return;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (ok && rename(tmp, path) == 0) {
        free(m->saved);
        m->saved = malloc(len + 1);
        if (m->saved) {
            memcpy(m->saved, text, len);
            m->saved_len = len;
        }
    } else {
        unlink(tmp);
    }
}

static uint64_t on_tick(void *arg, uint64_t now)
{
    cli_mesh *m = arg;
    uint64_t next = mfs_repl_tick(m->repl, now);
    if (now - m->saved_us >= SAVE_EVERY_US) {
        m->saved_us = now;
        save_peers(m);
    }
    return next < m->saved_us + SAVE_EVERY_US ? next
                                              : m->saved_us + SAVE_EVERY_US;
}

/* A boot epoch larger than every earlier one of this store, even when the
 * wall clock stepped back since (peers drop a node's datagrams of an
 * older epoch than they know): max(now, last + 1), kept in STORE/epoch. */
static uint64_t next_epoch(const char *dir)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/epoch", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unsigned long long last = 0;
    FILE *f = fopen(path, "re");
    if (f) {
        if (fscanf(f, "%llu", &last) != 1)
            last = 0;
        fclose(f);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
    uint64_t e = now > last ? now : (uint64_t)last + 1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        int ok =
            dprintf(fd, "%llu\n", (unsigned long long)e) > 0 && fsync(fd) == 0;
        close(fd);
        if (!ok || rename(tmp, path) != 0)
            unlink(tmp);
    }
    return e;
}

static int write_listen(const char *dir, const char *addr)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, LISTEN_FILE);
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    fprintf(f, "%s\n", addr);
    return fclose(f) == 0 ? 0 : -errno;
}

static void read_listen(const char *dir, char *out, size_t cap)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, LISTEN_FILE);
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(out, (int)cap, f))
        out[strcspn(out, " \t\r\n")] = '\0';
    fclose(f);
}

int cli_mesh_start(cli_mesh *m, mfs_store *s, const char *store_dir,
                   const char *listen, const char *const *peers, size_t npeers,
                   char *err, size_t errcap)
{
    memset(m, 0, sizeof(*m));
    m->store = s;
    snprintf(m->store_dir, sizeof m->store_dir, "%s", store_dir);
    struct mfs_mesh_key key;
    int r = mfs_mesh_key_load(store_dir, &key);
    if (r < 0) {
        snprintf(err, errcap, "cannot use the mesh key %s/%s: %s", store_dir,
                 MFS_MESH_KEY_FILE,
                 r == -ENOENT  ? "missing"
                 : r == -EPERM ? "readable by others (chmod 600 it)"
                               : strerror(-r));
        return r;
    }
    char stored[128];
    read_listen(store_dir, stored, sizeof stored);
    int given = listen != NULL;
    /* a port the user chose (now or before) must be ours or fail */
    int explicit_listen = given || stored[0];
    if (!listen)
        listen = stored[0] ? stored : DEFAULT_LISTEN;
    snprintf(m->listen, sizeof m->listen, "%s", listen);

    for (size_t i = 0; i < npeers && m->nseeds < MAX_SEEDS; i++)
        if ((m->seeds[m->nseeds] = strdup(peers[i])) != NULL)
            m->nseeds++;
    m->nseeds = read_peers(store_dir, m->seeds, m->nseeds, MAX_SEEDS);

    mfs_repl_config rc;
    mfs_repl_config_default(&rc);
    rc.send = send_cb;
    rc.arg = m;
    r = mfs_repl_new(s, &rc, mono_us(), &m->repl);
    if (r < 0) {
        snprintf(err, errcap, "cannot start replication: %s", strerror(-r));
        memset(&key, 0, sizeof key);
        cli_mesh_stop(m);
        return r;
    }
    mfs_sync_opts o;
    memset(&o, 0, sizeof o);
    o.listen = m->listen;
    o.peers = (const char *const *)m->seeds;
    o.npeers = m->nseeds;
    o.key = key;
    o.node_id = mfs_store_node_id(s);
    o.epoch = next_epoch(store_dir);
    mfs_sync_config_default(&o.cfg);
    /* An idle mesh costs a heartbeat every 1.25 s each way (about 90 bytes
     * with IP and UDP headers; the issue allows 200 B/s per peer); a peer
     * silent for 3 s is suspect, for 5 s dead, as before. */
    o.cfg.hb_ms = 1250;
    o.cfg.suspect_ms = 3000;
    o.cfg.dead_ms = 5000;
    o.cfg.arg = m;
    o.cfg.on_msg = on_msg;
    o.cfg.on_peer = on_peer;
    o.on_tick = on_tick;
    o.tick_arg = m;
    r = mfs_sync_start(&o, &m->sync);
    if (r == -EADDRINUSE && !explicit_listen) {
        snprintf(m->listen, sizeof m->listen, "0.0.0.0:0");
        r = mfs_sync_start(&o, &m->sync);
    }
    memset(&key, 0, sizeof key);
    memset(&o.key, 0, sizeof o.key);
    if (r < 0) {
        if (r == -EINVAL)
            snprintf(err, errcap,
                     "bad listen address or peer (want IP:PORT): %s",
                     m->listen);
        else
            snprintf(err, errcap, "cannot listen on %s: %s", m->listen,
                     strerror(-r));
        m->sync = NULL;
        cli_mesh_stop(m);
        return r;
    }
    if (strcmp(m->listen, "0.0.0.0:0") == 0)
        snprintf(m->listen, sizeof m->listen, "0.0.0.0:%u",
                 mfs_sync_port(m->sync));
    if (given && strcmp(listen, stored) != 0 &&
        (r = write_listen(store_dir, listen)) < 0)
        mfs_log(LOG_WARNING,
                "sync: cannot remember the listen address in "
                "%s/%s: %s",
                store_dir, LISTEN_FILE, strerror(-r));
    mfs_store_set_oplog_cb(s, oplog_cb, m);
    mfs_sync_wake(m->sync);
    mfs_log(LOG_NOTICE,
            "sync: node %016" PRIx64 " listening on %s, %zu seed "
            "peer(s)",
            mfs_store_node_id(s), m->listen, m->nseeds);
    return 0;
}

void cli_mesh_stop(cli_mesh *m)
{
    if (m->store)
        mfs_store_set_oplog_cb(m->store, NULL, NULL);
    if (m->sync) {
        save_peers(m);
        /* say goodbye, and give the datagrams up to 300 ms to leave */
        size_t told = m->repl ? mfs_repl_bye(m->repl) : 0;
        mfs_log(LOG_INFO, "sync: told %zu peer(s) we are leaving", told);
        if (told > 0) {
            for (int i = 0; i < 30; i++) {
                mfs_peer_stat ps[64];
                size_t n = mfs_sync_peers(m->sync, ps, 64);
                uint64_t queued = 0;
                for (size_t k = 0; k < n && k < 64; k++)
                    if (ps[k].state != MFS_PEER_DEAD)
                        queued += ps[k].queued_bytes;
                if (!queued)
                    break;
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        mfs_sync_stop(m->sync);
    }
    m->sync = NULL;
    mfs_repl_free(m->repl);
    m->repl = NULL;
    for (size_t i = 0; i < m->nseeds; i++)
        free(m->seeds[i]);
    m->nseeds = 0;
    free(m->saved);
    m->saved = NULL;
}

/* ---- reports for the control socket ------------------------------------- */

void cli_mesh_report(cli_mesh *m, void (*line)(void *, const char *), void *arg)
{
    char b[512];
    mfs_repl_status st;
    mfs_repl_peer rp[64];
    mfs_peer_stat ps[64];
    size_t nr = mfs_repl_status_get(m->repl, &st, rp, 64);
    size_t np = mfs_sync_peers(m->sync, ps, 64);
    uint64_t now = mono_us();
    snprintf(b, sizeof b, "listen %s", m->listen);
    line(arg, b);
    snprintf(b, sizeof b, "sync_port %u", mfs_sync_port(m->sync));
    line(arg, b);
    size_t live = 0;
    for (size_t i = 0; i < np && i < 64; i++) {
        if (!ps[i].id)
            continue; /* a seed that never answered */
        const mfs_repl_peer *q = NULL;
        for (size_t k = 0; k < nr && k < 64; k++)
            if (rp[k].id == ps[i].id)
                q = &rp[k];
        char a[80];
        mfs_addr_str(&ps[i].addr, a, sizeof a);
        uint64_t last = ps[i].last_rx_us && now > ps[i].last_rx_us
                            ? (now - ps[i].last_rx_us) / 1000
                            : 0;
        int left = q && (q->left || q->removed);
        if (ps[i].state != MFS_PEER_DEAD && !left)
            live++;
        /* peer ID ADDR STATE RTT_US LOSS_OUT LOSS_IN LAST_MS HEARD
         *      OPS_THEY BYTES_THEY OPS_WE BYTES_WE SKEW_MS CHUNKS_THEY */
        snprintf(b, sizeof b,
                 "peer %016" PRIx64 " %s %s %" PRIu64 " %.4f %.4f %" PRIu64
                 " %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64
                 " %" PRIu64,
                 ps[i].id, a,
                 q && q->removed ? "removed"
                 : left          ? "left"
                                 : mfs_sync_state_name(ps[i].state),
                 ps[i].srtt_us, ps[i].loss_out, ps[i].loss_in, last,
                 q ? q->heard : 0, q ? q->ops_they_lack : 0,
                 q ? q->bytes_they_lack : 0, q ? q->ops_we_lack : 0,
                 q ? q->bytes_we_lack : 0, q ? q->skew_ms : 0,
                 q ? q->chunks_they_want : 0);
        line(arg, b);
    }
    for (size_t i = 0; i < np && i < 64; i++) {
        if (ps[i].id)
            continue;
        char a[80];
        mfs_addr_str(&ps[i].addr, a, sizeof a);
        snprintf(b, sizeof b, "seed %s", a);
        line(arg, b);
    }
    /* the transport's view of liveness is the fresher one */
    int in_sync = st.in_sync;
    for (size_t i = 0; i < np && i < 64; i++) {
        if (!ps[i].id || ps[i].state == MFS_PEER_DEAD)
            continue;
        int heard = 0, left = 0;
        for (size_t k = 0; k < nr && k < 64; k++)
            if (rp[k].id == ps[i].id) {
                heard = rp[k].heard;
                left = rp[k].left || rp[k].removed;
            }
        if (!heard && !left)
            in_sync = 0;
    }
    snprintf(b, sizeof b, "live_peers %zu", live);
    line(arg, b);
    snprintf(b, sizeof b, "repl_in_sync %d", in_sync);
    line(arg, b);
    cli_rejoin_report(m, line, arg);
    snprintf(b, sizeof b,
             "catchup %d %" PRIu64 " %" PRIu64 " %" PRIu64
             " %.1f %.1f %" PRId64,
             st.catching_up, st.ops_to_go, st.chunks_to_go, st.bytes_to_go,
             st.ops_per_s, st.bytes_per_s, st.eta_ms);
    line(arg, b);
    /* snapshot ACTIVE FROM DONE TOTAL INSTALLED SERVED REFUSED */
    snprintf(b, sizeof b,
             "snapshot %d %016" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64
             " %" PRIu64 " %d",
             st.snap_from != 0, st.snap_from, st.snap_bytes_done,
             st.snap_bytes_total, st.snaps_installed, st.snaps_served,
             st.snap_refused != 0);
    line(arg, b);
    snprintf(b, sizeof b, "repl_bad_msgs %" PRIu64, st.bad_msgs);
    line(arg, b);
    snprintf(b, sizeof b, "repl_refused %" PRIu64, st.refused);
    line(arg, b);
    if (st.removed_self) {
        /* removed_self BY (0: the member registry said so) */
        snprintf(b, sizeof b, "removed_self %016" PRIx64, st.removed_by);
        line(arg, b);
    }
    if (st.held_by) {
        /* collect_held_by NODE LIVE HEARD LAST_CONTACT_MS (0: never) */
        uint64_t ago = 0;
        for (size_t i = 0; i < np && i < 64; i++)
            if (ps[i].id == st.held_by && ps[i].last_rx_us &&
                now > ps[i].last_rx_us)
                ago = (now - ps[i].last_rx_us) / 1000;
        snprintf(b, sizeof b, "collect_held_by %016" PRIx64 " %d %d %" PRIu64,
                 st.held_by, st.held_live, st.held_heard, ago);
        line(arg, b);
    }
}

void cli_mesh_file_report(cli_mesh *m, mfs_stamp version,
                          void (*line)(void *, const char *), void *arg)
{
    char b[256];
    uint64_t seq = 0;
    if (!version.hlc || mfs_store_stamp_seq(m->store, version, &seq) < 0)
        return;
    mfs_repl_status st;
    mfs_repl_peer rp[64];
    size_t nr = mfs_repl_status_get(m->repl, &st, rp, 64);
    snprintf(b, sizeof b, "version_seq %" PRIu64, seq);
    line(arg, b);
    for (size_t i = 0; i < nr && i < 64; i++) {
        mfs_vv vv;
        if (mfs_repl_peer_vv(m->repl, rp[i].id, &vv) < 0) {
            snprintf(b, sizeof b, "peer_holds %016" PRIx64 " unknown",
                     rp[i].id);
        } else {
            int has = mfs_vv_get(&vv, version.node) >= seq;
            mfs_vv_free(&vv);
            /* the op is there; its chunks too unless it still wants some */
            snprintf(b, sizeof b, "peer_holds %016" PRIx64 " %s", rp[i].id,
                     !has                     ? "no"
                     : rp[i].chunks_they_want ? "fetching"
                                              : "yes");
        }
        line(arg, b);
    }
}
#endif
