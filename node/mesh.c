/*
 * mesh.c - one node's mesh side on a transport (transport.h): feeds the
 * replication engine (sync/repl) on one store with the transport's
 * messages, peer events and clock, runs the engine on a thread of its own
 * or inline on the transport's thread, remembers peer addresses in
 * STORE/peers, says goodbye at unmount, and reports for `meshfs stat`.
 * The daemon runs it on the libuv driver (uvnet.c), the simulator tests
 * on the simulated network (simnet.c), so it must never call the driver
 * or read a clock itself: everything goes through m->net.
 *
 * Threads (docs/ARCHITECTURE.md, "Threads and locks"): the transport's
 * thread (libuv) moves datagrams, acks and heartbeats and never touches
 * the store: it copies each message and peer event into a queue and goes
 * back to the network. The replication thread (repl_main) takes them in
 * order, feeds the engine, which applies op batches and stores chunks
 * (LMDB, packs), and runs the engine's timers; what the engine sends goes
 * back through the transport's queue (m->net.send). A slow commit or a
 * large batch so delays what replication does, never an ack or a
 * heartbeat. In the simulator the transport's thread (its one thread)
 * calls the engine directly.
 */
#include "internal.h"
#include "status.h"

#include "lock.h"
#include "log.h"
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SAVE_EVERY_US 10000000u
/* Messages waiting for the replication thread, bytes. What peers send is
 * bounded by what this node asked for (chunk windows, one pull, pushes of
 * new ops), far below this; beyond it (a peer that misbehaves) messages
 * are dropped and counted, and the engine's timeouts ask again. */
#define QUEUE_MAX_BYTES (512u << 20)
#define TICK_EVERY_US 1000
/* Anti-entropy STATE and heartbeats on a quiet link (MESHFS_IDLE_HB_MS and
 * MESHFS_STATE_MS override them, for tests that want the old pace) */
#define NODE_IDLE_HB_MS node_env_ms("MESHFS_IDLE_HB_MS", 12000)
#define NODE_STATE_MS node_env_ms("MESHFS_STATE_MS", 60000)

uint32_t node_env_ms(const char *name, uint32_t dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long x = v && *v ? strtoul(v, &end, 10) : 0;
    return v && *v && !*end && x <= 3600000 ? (uint32_t)x : dflt;
}

/* The transport's clock: the only one this file reads. */
static uint64_t now_us(mfs_node *m)
{
    return m->net.now_us(m->net.ctx);
}

/* One transport event for the replication thread. */
typedef struct node_ev {
    struct node_ev *next;
    uint64_t peer;
    int is_msg;
    uint8_t mtype;    /* a message: its type, bytes */
    int state;        /* a peer's change: state, epoch */
    uint64_t epoch;
    size_t len;
    uint8_t data[];
} node_ev;

/* The queue's lock is the innermost of the order (lock.h): nothing is
 * taken while it is held; debug builds check it. */
#define Q_LOCK(m) mfs_lock_take(&(m)->q_mu, MFS_LOCK_NODE_Q)
#define Q_UNLOCK(m) mfs_lock_drop(&(m)->q_mu)
#define Q_WAIT(m, ts) pthread_cond_timedwait(&(m)->q_cond, &(m)->q_mu, ts)


static void push(node_evq *q, node_ev *ev)
{
    if (q->tail)
        q->tail->next = ev;
    else
        q->head = ev;
    q->tail = ev;
}

static node_ev *pop(node_evq *q)
{
    node_ev *ev = q->head;
    if (ev && !(q->head = ev->next))
        q->tail = NULL;
    return ev;
}

/* Transport thread (core lock held): queue ev, wake the thread. Bulk
 * messages (large chunks, a pull's answers: mfs_repl_msg_bulk) wait in a
 * queue of their own, so that the rest (a change just made, requests,
 * small files' chunks, peers' changes: kept in order) is not held behind
 * megabytes of them. */
static void enqueue(mfs_node *m, node_ev *ev)
{
    ev->next = NULL;
    Q_LOCK(m);
    if (m->q_stop || m->q_bytes + ev->len > QUEUE_MAX_BYTES) {
        m->q_dropped += !m->q_stop;
        Q_UNLOCK(m);
        free(ev);
        return;
    }
    int bulk = ev->is_msg && mfs_repl_msg_bulk(ev->mtype, ev->data, ev->len);
    push(bulk ? &m->q_bulk : &m->q_urgent, ev);
    m->q_bytes += ev->len;
    if (m->q_bytes > m->q_max_bytes)
        m->q_max_bytes = m->q_bytes;
    pthread_cond_signal(&m->q_cond);
    Q_UNLOCK(m);
}

static int send_cb(void *arg, uint64_t to, int channel, uint8_t mtype,
                   const void *data, size_t len)
{
    mfs_node *m = arg;
    /* what a send takes (the driver's inbox lock) */
    MFS_LOCK_MAY_TAKE(MFS_LOCK_SYNC_IN);
    return m->net.send(m->net.ctx, to, channel, mtype, data, len);
}

void mfs_node_on_msg(mfs_node *m, uint64_t from, uint8_t mtype,
                     const uint8_t *data, size_t len)
{
    if (m->inline_repl) {
        mfs_node_clock_first(m, now_us(m));
        mfs_repl_on_msg(m->repl, now_us(m), from, mtype, data, len);
        if (mfs_repl_work_pending(m->repl))
            m->net.wake(m->net.ctx); /* the rest at the next tick */
        return;
    }
    node_ev *ev = malloc(sizeof(*ev) + len);
    if (!ev) {
        Q_LOCK(m);
        m->q_dropped++;
        Q_UNLOCK(m);
        return;
    }
    memset(ev, 0, sizeof(*ev));
    ev->peer = from;
    ev->is_msg = 1;
    ev->mtype = mtype;
    ev->len = len;
    memcpy(ev->data, data, len);
    enqueue(m, ev);
}

void mfs_node_on_peer(mfs_node *m, uint64_t id, int state, uint64_t epoch)
{
    mfs_log(LOG_INFO, "sync: peer %016" PRIx64 " is %s", id,
            mfs_sync_state_name(state));
    if (m->inline_repl) {
        mfs_repl_on_peer(m->repl, now_us(m), id, state, epoch);
        return;
    }
    node_ev *ev = calloc(1, sizeof(*ev));
    if (!ev) { /* cannot happen in practice; the next STATE repairs it */
        Q_LOCK(m);
        m->q_dropped++;
        Q_UNLOCK(m);
        return;
    }
    ev->peer = id;
    ev->state = state;
    ev->epoch = epoch;
    enqueue(m, ev);
}

/* Any thread (the store's, after a commit with new local ops). */
void mfs_node_wake(mfs_node *m)
{
    if (m->inline_repl) {
        m->net.wake(m->net.ctx);
        return;
    }
    Q_LOCK(m);
    m->q_wake = 1;
    pthread_cond_signal(&m->q_cond);
    Q_UNLOCK(m);
}

static void oplog_cb(void *arg)
{
    mfs_node *m = arg;
    mfs_repl_changed(m->repl);
    mfs_node_wake(m);
}

/* Rewrites STORE/peers with the seeds and every peer we heard from. */
static void save_peers(mfs_node *m)
{
    mfs_peer_stat ps[64];
    size_t n = m->net.peers(m->net.ctx, ps, 64);
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", m->store_dir, NODE_PEERS_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char text[64 * 80 + NODE_MAX_SEEDS * 80];
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

/* The engine's timers and STORE/peers; the next deadline. Replication
 * thread, or the transport's when the engine runs inline. */
uint64_t mfs_node_tick(mfs_node *m, uint64_t now)
{
    /* inline, an op batch's slices one a tick, what the transport
     * delivered between them in between (the thread does it itself) */
    if (m->inline_repl && mfs_repl_work(m->repl, now))
        m->net.wake(m->net.ctx);
    uint64_t next = mfs_repl_tick(m->repl, now);
    mfs_node_clock_tick(m, now);
    mfs_node_ident_tick(m, now);
    if (now - m->saved_us >= SAVE_EVERY_US) {
        m->saved_us = now;
        save_peers(m);
    }
    if (next > m->saved_us + SAVE_EVERY_US)
        next = m->saved_us + SAVE_EVERY_US;
    uint64_t id_next = mfs_node_ident_next(m); /* the registry's keys */
    return next < id_next ? next : id_next;
}

static void deliver(mfs_node *m, node_ev *ev)
{
    mfs_node_clock_first(m, now_us(m));
    if (ev->is_msg)
        mfs_repl_on_msg(m->repl, now_us(m), ev->peer, ev->mtype, ev->data,
                        ev->len);
    else
        mfs_repl_on_peer(m->repl, now_us(m), ev->peer, ev->state, ev->epoch);
    free(ev);
}

/* The replication thread: what came on the urgent channel first, in
 * arrival order; then a slice of an op batch being applied
 * (mfs_repl_work: a pull's answer takes ~150 ms whole), looking at the
 * urgent queue again after each; once none is left, bulk messages (large
 * chunks, a pull's answers), one at a time, the same way; then the
 * engine's timers. It waits on CLOCK_MONOTONIC, the clock a transport with
 * this thread must keep. */
static void *repl_main(void *arg)
{
    mfs_node *m = arg;
    pthread_setname_np(pthread_self(), "mfs-repl"); /* top, perf */
    uint64_t next = 0;
    Q_LOCK(m);
    for (;;) {
        while (!m->q_stop && !m->q_urgent.head && !m->q_bulk.head &&
               !m->q_wake && !mfs_repl_work_pending(m->repl) &&
               now_us(m) < next) {
            uint64_t at = next < UINT64_MAX / 2 ? next : now_us(m) + 1000000;
            struct timespec ts = {(time_t)(at / 1000000u),
                                  (long)(at % 1000000u) * 1000};
            Q_WAIT(m, &ts);
        }
        if (m->q_stop)
            break;
        m->q_wake = 0;
        uint64_t t0 = now_us(m);
        for (;;) {
            node_ev *ev = pop(&m->q_urgent);
            if (!ev && mfs_repl_work_pending(m->repl)) {
                Q_UNLOCK(m);
                mfs_repl_work(m->repl, now_us(m));
                Q_LOCK(m);
            } else {
                if (!ev)
                    ev = pop(&m->q_bulk);
                if (!ev)
                    break;
                m->q_bytes -= ev->len;
                Q_UNLOCK(m);
                deliver(m, ev);
                Q_LOCK(m);
            }
            /* the timers at least every millisecond (they store the
             * chunks received, and ask for more) */
            if (m->q_stop || now_us(m) - t0 >= TICK_EVERY_US)
                break;
        }
        if (m->q_stop)
            break;
        Q_UNLOCK(m);
        next = mfs_node_tick(m, now_us(m));
        Q_LOCK(m);
    }
    Q_UNLOCK(m);
    return NULL;
}

/* Stops the replication thread (its queue is freed by queue_free). */
static void repl_thread_stop(mfs_node *m)
{
    if (!m->q_started)
        return;
    Q_LOCK(m);
    m->q_stop = 1;
    pthread_cond_signal(&m->q_cond);
    Q_UNLOCK(m);
    pthread_join(m->q_thread, NULL);
    m->q_started = 0;
}

static void queue_free(mfs_node *m)
{
    node_ev *ev;
    while ((ev = pop(&m->q_urgent)) != NULL || (ev = pop(&m->q_bulk)) != NULL)
        free(ev);
    m->q_bytes = 0;
}

void mfs_node_sync_config(mfs_sync_config *cfg)
{
    mfs_sync_config_default(cfg);
    /* While messages flow: a heartbeat every 1.25 s each way; a peer
     * silent for 3 s is suspect, for 5 s dead (and so is a peer we send
     * to that does not answer). Once nothing went either way for 2.5 s: a
     * heartbeat every 12 s (about 90 bytes with IP and UDP headers), and
     * a silent peer is suspect after 27 s, dead after 41 s. With the
     * engine's STATE every 60 s, an idle peer costs about 14 B/s each way
     * (docs/WIRE.md, "Quiet links"). */
    cfg->hb_ms = 1250;
    cfg->suspect_ms = 3000;
    cfg->dead_ms = 5000;
    cfg->idle_hb_ms = NODE_IDLE_HB_MS;
    cfg->idle_after_ms = 2500;
}

void mfs_node_repl_config(mfs_repl_config *cfg)
{
    mfs_repl_config_default(cfg);
    cfg->state_ms = NODE_STATE_MS; /* anti-entropy: changes send STATE */
    cfg->store_chunks = MFS_REPL_STORE_THREAD;
    /* a pull's answer (256 KiB) applied 16 KiB at a time, the urgent
     * queue looked at between two: a small file written on a third node
     * during a merge waited ~150 ms for a whole batch (merge.sh).
     * MESHFS_APPLY_BYTES overrides it for benchmarks (0: whole) */
    cfg->apply_bytes = node_env_ms("MESHFS_APPLY_BYTES", 16u << 10);
    /* (op batches stay 256 KiB: with 32 KiB, three nodes took 5.4-6.1 s
     * instead of 0.9-1.5 to converge after a partition at 30% loss,
     * bench/repl/part3.sh; a pull's answers are bulk, so a small change
     * waits for one batch at most) */
}

void node_init(mfs_node *m, mfs_store *s, const char *store_dir)
{
    memset(m, 0, sizeof(*m));
    m->store = s;
    snprintf(m->store_dir, sizeof m->store_dir, "%s", store_dir);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->q_mu, NULL);
    pthread_cond_init(&m->q_cond, &ca);
    pthread_condattr_destroy(&ca);
    m->q_inited = 1;
    pthread_mutex_init(&m->clock.mu, NULL);
}

int node_engine_start(mfs_node *m, const mfs_repl_config *rc)
{
    mfs_repl_config c;
    if (rc)
        c = *rc;
    else
        mfs_node_repl_config(&c);
    c.send = send_cb;
    c.arg = m;
    mfs_node_clock_start(m); /* before the engine's first stamp */
    return mfs_repl_new(m->store, &c, now_us(m), &m->repl);
}

int node_run(mfs_node *m)
{
    m->q_wake = 1; /* a first tick at once */
    if (m->inline_repl) {
        m->net.wake(m->net.ctx);
    } else {
        int r = pthread_create(&m->q_thread, NULL, repl_main, m);
        if (r != 0)
            return -r;
        m->q_started = 1;
    }
    mfs_store_set_oplog_cb(m->store, oplog_cb, m);
    return 0;
}

void node_boot_read(mfs_node *m, node_boot *b, const char *listen,
                    const char *const *peers, size_t npeers)
{
    node_read_listen(m->store_dir, b->stored, sizeof b->stored);
    b->given = listen != NULL;
    b->explicit_listen = b->given || b->stored[0];
    if (!listen)
        listen = b->stored[0] ? b->stored : NODE_DEFAULT_LISTEN;
    snprintf(b->listen, sizeof b->listen, "%s", listen);
    snprintf(m->listen, sizeof m->listen, "%s", listen);
    for (size_t i = 0; i < npeers && m->nseeds < NODE_MAX_SEEDS; i++)
        if ((m->seeds[m->nseeds] = strdup(peers[i])) != NULL)
            m->nseeds++;
    m->nseeds =
        node_read_peers(m->store_dir, m->seeds, m->nseeds, NODE_MAX_SEEDS);
}

void node_boot_done(mfs_node *m, const node_boot *b)
{
    int r;
    if (b->given && strcmp(b->listen, b->stored) != 0 &&
        (r = node_write_listen(m->store_dir, b->listen)) < 0)
        mfs_log(LOG_WARNING,
                "sync: cannot remember the listen address %s in "
                "%s/%s: %s; it holds for this mount only (give --listen "
                "again next time)",
                b->listen, m->store_dir, NODE_LISTEN_FILE, strerror(-r));
}

/* The node's wall clock, microseconds: the engine's (a simulated one) if
 * it has one, else the real one. */
uint64_t node_wall_us(const mfs_repl_config *rc)
{
    if (rc && rc->wall_ms)
        return rc->wall_ms(rc->clock_arg) * 1000u;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int mfs_node_start_on(mfs_node *m, mfs_store *s, const char *store_dir,
                      const char *listen, const char *const *peers,
                      size_t npeers, const mfs_node_transport *t,
                      const mfs_repl_config *rc)
{
    node_boot b;
    node_init(m, s, store_dir);
    m->net = *t;
    m->inline_repl = 1;
    node_boot_read(m, &b, listen, peers, npeers);
    int r = node_engine_start(m, rc);
    if (r == 0) {
        uint64_t epoch = node_next_epoch(store_dir, node_wall_us(rc));
        if (m->net.open)
            r = m->net.open(m->net.ctx, (const char *const *)m->seeds,
                            m->nseeds, epoch);
    }
    if (r < 0) {
        mfs_node_stop(m);
        return r;
    }
    m->net_up = 1;
    node_boot_done(m, &b);
    if ((r = node_run(m)) < 0)
        mfs_node_stop(m);
    return r;
}

/* Stops the node: the engine's thread, then (a clean stop) STORE/peers
 * and the goodbye, then the transport, then the engine. */
static void node_halt(mfs_node *m, int bye)
{
    if (m->store)
        mfs_store_set_oplog_cb(m->store, NULL, NULL);
    /* the engine's thread first: nothing calls the engine after this but
     * mfs_repl_bye (any thread) */
    repl_thread_stop(m);
    if (m->net_up) {
        if (bye) {
            save_peers(m);
            /* say goodbye, and give the datagrams up to 300 ms to leave */
            size_t told = m->repl ? mfs_repl_bye(m->repl) : 0;
            mfs_log(LOG_INFO, "sync: told %zu peer(s) we are leaving", told);
            if (told > 0)
                m->net.flush(m->net.ctx, 300);
        }
        if (m->net.close)
            m->net.close(m->net.ctx);
    }
    m->net_up = 0;
    mfs_node_ident_free(m);
    if (m->q_inited) { /* no thread can queue now */
        queue_free(m);
        pthread_cond_destroy(&m->q_cond);
        pthread_mutex_destroy(&m->q_mu);
        m->q_inited = 0;
    }
    mfs_repl_free(m->repl);
    m->repl = NULL;
    for (size_t i = 0; i < m->nseeds; i++)
        free(m->seeds[i]);
    m->nseeds = 0;
    free(m->saved);
    m->saved = NULL;
}

void mfs_node_stop(mfs_node *m)
{
    node_halt(m, 1);
}

void mfs_node_crash(mfs_node *m)
{
    node_halt(m, 0);
}

/* ---- reports for the control socket ------------------------------------- */

void mfs_node_watch(mfs_node *m, uint32_t ms)
{
    if (m->net.watch)
        m->net.watch(m->net.ctx, ms);
}

void mfs_node_report(mfs_node *m, void (*line)(void *, const char *), void *arg)
{
    char b[MFS_STATUS_LINE_MAX + 16], f[MFS_STATUS_LINE_MAX];
    mfs_repl_status st;
    mfs_repl_peer rp[64];
    mfs_peer_stat ps[64];
    size_t nr = mfs_repl_status_get(m->repl, &st, rp, 64);
    size_t np = m->net.peers(m->net.ctx, ps, 64);
    uint64_t now = now_us(m);
    snprintf(b, sizeof b, "listen %s", m->listen);
    line(arg, b);
    snprintf(b, sizeof b, "sync_port %u", m->net.port(m->net.ctx));
    line(arg, b);
    mfs_node_acks_report(m, line, arg);
    size_t live = 0, unheard = 0;
    for (size_t i = 0; i < np && i < 64; i++) {
        if (!ps[i].id)
            continue; /* a seed that never answered */
        const mfs_repl_peer *q = NULL;
        for (size_t k = 0; k < nr && k < 64; k++)
            if (rp[k].id == ps[i].id)
                q = &rp[k];
        int left = q && (q->left || q->removed);
        int alive = ps[i].state != MFS_PEER_DEAD && !left;
        live += alive;
        unheard += alive && !(q && q->heard);
        mfs_status_peer p = {
            .id = ps[i].id,
            .rtt_us = ps[i].srtt_us,
            .loss_out = ps[i].loss_out,
            .loss_in = ps[i].loss_in,
            .last_ms = ps[i].last_rx_us && now > ps[i].last_rx_us
                           ? (now - ps[i].last_rx_us) / 1000
                           : 0,
            .wait_max_us = ps[i].rx_wait_max_us,
            .bytes_in = ps[i].bytes_in,
            .bytes_out = ps[i].bytes_out,
            .retransmits = ps[i].retransmits,
        };
        for (int d = 0; d < MFS_DROP__COUNT; d++)
            p.dropped += ps[i].drops[d];
        mfs_addr_str(&ps[i].addr, p.addr, sizeof p.addr);
        snprintf(p.state, sizeof p.state, "%s",
                 q && q->removed ? "removed"
                 : left          ? "left"
                                 : mfs_sync_state_name(ps[i].state));
        if (q) {
            p.heard = q->heard;
            p.ops_they = q->ops_they_lack;
            p.bytes_they = q->bytes_they_lack;
            p.ops_we = q->ops_we_lack;
            p.bytes_we = q->bytes_we_lack;
            p.skew_ms = q->skew_ms;
            p.chunks_they = q->chunks_they_want;
            p.ops_sent = q->ops_sent;
            p.ops_recv = q->ops_recv;
            p.chunks_sent = q->chunks_sent;
            p.chunks_recv = q->chunks_recv;
        }
        if (ps[i].clock_ok) { /* measured: better than its reports' */
            p.clock_ok = 1;
            p.clock_us = ps[i].clock_offset_us;
            p.clock_err_us = ps[i].clock_err_us;
            p.skew_ms = ps[i].clock_offset_us / 1000;
        }
        mfs_status_peer_format(&p, f, sizeof f);
        snprintf(b, sizeof b, "peer %s", f);
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
    mfs_store_stats ss;
    uint64_t dirty = mfs_store_stats_get(m->store, &ss) == 0 ? ss.dirty_files
                                                             : 1;
    snprintf(b, sizeof b, "live_peers %zu", live);
    line(arg, b);
    mfs_node_clock ck;
    mfs_node_clock_get(m, &ck);
    mfs_status_clock sc = {.corr_ms = ck.corr_ms,
                           .mesh_ms = ck.remembered ? ck.corr_ms : ck.mesh_ms,
                           .err_us = ck.err_us,
                           .peers = ck.npeers,
                           .behind = ck.behind};
    snprintf(sc.state, sizeof sc.state, "%s",
             ck.state == MFS_CLOCK_CORRECTED ? "corrected"
             : ck.state == MFS_CLOCK_IN_STEP ? "in-step"
             : ck.remembered                 ? "remembered"
                                             : "unknown");
    mfs_status_clock_format(&sc, f, sizeof f);
    snprintf(b, sizeof b, "clock %s", f);
    line(arg, b);
    snprintf(b, sizeof b, "repl_in_sync %d",
             mfs_status_in_sync(st.in_sync, unheard, dirty, st.removed_self));
    line(arg, b);
    mfs_rejoin_report(m, line, arg);
    mfs_status_catchup cu = {st.catching_up, st.ops_to_go,  st.chunks_to_go,
                             st.bytes_to_go, st.ops_per_s,  st.bytes_per_s,
                             st.eta_ms};
    mfs_status_catchup_format(&cu, f, sizeof f);
    snprintf(b, sizeof b, "catchup %s", f);
    line(arg, b);
    mfs_status_snap sn = {.active = st.snap_from != 0,
                          .refused = st.snap_refused != 0,
                          .from = st.snap_from,
                          .done = st.snap_bytes_done,
                          .total = st.snap_bytes_total,
                          .installed = st.snaps_installed,
                          .served = st.snaps_served};
    mfs_status_snap_format(&sn, f, sizeof f);
    snprintf(b, sizeof b, "snapshot %s", f);
    line(arg, b);
    snprintf(b, sizeof b, "repl_bad_msgs %" PRIu64, st.bad_msgs);
    line(arg, b);
    /* repl_queue MAX_BYTES DROPPED SEND_DROPPED STORING_MAX: the most bytes
     * that waited for the replication thread, messages it never saw (queue
     * full), messages the transport accepted for a peer that died before
     * sending, and the most chunk bytes that waited for the chunk writer */
    Q_LOCK(m);
    uint64_t qmax = m->q_max_bytes, qdrop = m->q_dropped;
    Q_UNLOCK(m);
    snprintf(b, sizeof b,
             "repl_queue %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64, qmax,
             qdrop, m->net.send_drops(m->net.ctx), st.storing_max_bytes);
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

void mfs_node_file_report(mfs_node *m, mfs_stamp version,
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
