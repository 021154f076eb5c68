/*
 * driver.c - libuv driver for the sync core (see driver.h).
 * It owns the socket, the timer and the thread; it must never hold protocol
 * logic (that lives in core.c) nor block the loop.
 */
#include "driver.h"

#include "lock.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux >= 4.18 */
#endif
#define TX_BATCH 256
/* UDP GSO: one sendmsg carries up to this many datagrams of one size to
 * one address (the kernel takes at most 64, and 64 KiB in all) */
#define GSO_SEGS 4
#define RX_CHUNKS 32 /* recvmmsg batch; libuv uses 64 KiB per chunk */
#define MFS_SYNC_VIEW_MAX 256 /* peers mfs_sync_send knows (core max_peers) */

/* A message given to mfs_sync_send, waiting for the loop to hand it to
 * the core. */
typedef struct inmsg {
    struct inmsg *next;
    uint64_t to;
    int channel;
    uint8_t mtype;
    size_t len;
    uint8_t data[];
} inmsg;

/* What mfs_sync_send checks a message against without the core's lock:
 * each peer's state and queued bytes as of the loop's last run (kept by
 * the loop and by on_peer), plus what waits in the inbox for it. */
typedef struct view_peer {
    uint64_t id;
    int state;
    uint64_t queued, inbox;
} view_peer;

struct mfs_sync {
    uv_loop_t loop;
    uv_udp_t udp;
    uv_timer_t timer;
    uv_async_t async;
    uv_check_t check;
    pthread_t thread;
    pthread_mutex_t mu; /* the core */
    mfs_sync_core *core;
    /* the inbox: senders never wait for the core's lock, which the loop
     * holds while it seals and sends a window of packets (milliseconds);
     * lock order: mu, then in_mu */
    pthread_mutex_t in_mu;
    inmsg *in_head, *in_tail;
    view_peer *view;
    size_t nview;
    uint64_t in_dropped; /* accepted, then refused by the core (the peer
                            died meanwhile) */
    uint32_t max_msg;
    uint64_t max_queue;
    void (*app_on_peer)(void *arg, uint64_t id, int state, uint64_t epoch);
    void (*app_on_msg)(void *arg, uint64_t from, uint8_t mtype,
                       const uint8_t *data, size_t len);
    int (*app_admit)(void *arg, uint64_t id, const uint8_t pub[32],
                     const uint8_t *join, size_t len);
    void (*app_on_removed)(void *arg, uint64_t by);
    void *app_arg;
    mfs_peer_stat *stats; /* scratch for view_refresh */
    uint64_t (*on_tick)(void *arg, uint64_t now_us);
    void *tick_arg;
    int stopping;
    unsigned port;
    uint64_t tx_drops;
    uint8_t *rxbuf;
    /* tx batch: datagrams in order; flush_tx sends each run of equal
     * datagrams to one address as one message (UDP GSO) */
    struct mmsghdr mh[TX_BATCH];
    struct iovec iov[TX_BATCH];
    struct sockaddr_storage to[TX_BATCH];
    socklen_t tolen[TX_BATCH];
    unsigned segs[TX_BATCH]; /* datagrams in message mh[k] */
    union {
        char b[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } cm[TX_BATCH];
    uint8_t buf[TX_BATCH][MFS_WIRE_MAX];
    unsigned ntx;
    int gso; /* 1 while the kernel takes UDP_SEGMENT */
    uint64_t tx_msgs, tx_dgrams; /* sendmmsg messages, datagrams in them */
};

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

/* Datagram j may join the GSO run that starts at i: same address, every
 * datagram before it as long as the first, itself no longer. */
static int joins_run(const mfs_sync *s, unsigned i, unsigned j)
{
    size_t len = s->iov[i].iov_len;
    return s->gso && j - i < GSO_SEGS && s->iov[j - 1].iov_len == len &&
           s->iov[j].iov_len <= len && s->tolen[j] == s->tolen[i] &&
           memcmp(&s->to[j], &s->to[i], s->tolen[i]) == 0;
}

/* Builds messages from datagram `from` on; returns how many. */
static unsigned build_msgs(mfs_sync *s, unsigned from)
{
    unsigned k = 0;
    for (unsigned i = from; i < s->ntx; k++) {
        unsigned j = i + 1;
        while (j < s->ntx && joins_run(s, i, j))
            j++;
        struct msghdr *m = &s->mh[k].msg_hdr;
        memset(m, 0, sizeof(*m));
        m->msg_name = &s->to[i];
        m->msg_namelen = s->tolen[i];
        m->msg_iov = &s->iov[i];
        m->msg_iovlen = j - i;
        s->segs[k] = j - i;
        if (j - i > 1) {
            m->msg_control = s->cm[k].b;
            m->msg_controllen = sizeof(s->cm[k].b);
            struct cmsghdr *c = CMSG_FIRSTHDR(m);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)s->iov[i].iov_len;
            memcpy(CMSG_DATA(c), &seg, sizeof(seg));
        }
        i = j;
    }
    return k;
}

static void flush_tx(mfs_sync *s)
{
    uv_os_fd_t fd;
    if (!s->ntx || uv_fileno((uv_handle_t *)&s->udp, &fd) != 0) {
        s->ntx = 0;
        return;
    }
    unsigned at = 0; /* first datagram not sent or dropped */
    while (at < s->ntx) {
        unsigned nm = build_msgs(s, at), k = 0;
        while (k < nm) {
            int n = sendmmsg(fd, s->mh + k, nm - k, MSG_DONTWAIT);
            if (n > 0) {
                for (int x = 0; x < n; x++, k++) {
                    at += s->segs[k];
                    s->tx_msgs++;
                    s->tx_dgrams += s->segs[k];
                }
                continue;
            }
            if (errno == EINTR)
                continue;
            if (s->segs[k] > 1 && (errno == EIO || errno == EINVAL ||
                                   errno == EOPNOTSUPP || errno == ENOPROTOOPT)) {
                /* no GSO here (a device without checksum offload, an old
                 * kernel): send datagrams one by one from now on */
                mfs_log(LOG_NOTICE, "sync: UDP GSO refused (%s); sending "
                        "datagrams one by one", strerror(errno));
                s->gso = 0;
                break; /* rebuild from `at` */
            }
            /* EAGAIN / ENOBUFS / unreachable: drop this message, the
             * protocol treats it as loss */
            s->tx_drops += s->segs[k];
            at += s->segs[k];
            k++;
        }
    }
    s->ntx = 0;
}

static void tx_cb(void *arg, const mfs_addr *to, const uint8_t *buf, size_t len)
{
    mfs_sync *s = arg;
    if (s->ntx == TX_BATCH)
        flush_tx(s);
    unsigned i = s->ntx++;
    memcpy(s->buf[i], buf, len);
    memcpy(&s->to[i], &to->ss, to->len);
    s->tolen[i] = to->len;
    s->iov[i].iov_base = s->buf[i];
    s->iov[i].iov_len = len;
}

static void timer_cb(uv_timer_t *t);

/* in_mu held */
static view_peer *view_find(mfs_sync *s, uint64_t id)
{
    for (size_t i = 0; i < s->nview; i++)
        if (s->view[i].id == id)
            return &s->view[i];
    return NULL;
}

/* Hands the inbox to the core. Loop thread, mu held. A message the core
 * has no room for yet (-ENOBUFS: the view that admitted it was a run
 * old) stays at the head of the inbox for the next run, which comes with
 * the next datagram; one for a peer that died meanwhile is dropped and
 * counted, as the core drops what it held for it. */
static void inbox_drain(mfs_sync *s)
{
    mfs_lock_take(&s->in_mu, MFS_LOCK_SYNC_IN);
    inmsg *m = s->in_head;
    s->in_head = s->in_tail = NULL;
    for (size_t i = 0; i < s->nview; i++) { /* handed over: queued now */
        s->view[i].queued += s->view[i].inbox;
        s->view[i].inbox = 0;
    }
    mfs_lock_drop(&s->in_mu);
    inmsg *keep = NULL, *keep_tail = NULL;
    uint64_t dropped = 0;
    while (m) {
        inmsg *nx = m->next;
        int rc = mfs_sync_core_send(s->core, m->to, m->channel, m->mtype,
                                    m->data, m->len);
        if (rc == -ENOBUFS) {
            m->next = NULL;
            if (keep_tail)
                keep_tail->next = m;
            else
                keep = m;
            keep_tail = m;
        } else {
            dropped += rc != 0;
            free(m);
        }
        m = nx;
    }
    if (!keep && !dropped)
        return;
    mfs_lock_take(&s->in_mu, MFS_LOCK_SYNC_IN);
    s->in_dropped += dropped;
    if (keep) { /* ahead of what came meanwhile */
        keep_tail->next = s->in_head;
        if (!s->in_head)
            s->in_tail = keep_tail;
        s->in_head = keep;
        for (inmsg *k = keep; k != keep_tail->next; k = k->next) {
            view_peer *v = view_find(s, k->to);
            if (v)
                v->inbox += k->len;
        }
    }
    mfs_lock_drop(&s->in_mu);
}

/* The peers' states and queues for mfs_sync_send. Loop thread, mu held. */
static void view_refresh(mfs_sync *s)
{
    size_t n = mfs_sync_core_peers(s->core, s->stats, MFS_SYNC_VIEW_MAX);
    if (n > MFS_SYNC_VIEW_MAX)
        n = MFS_SYNC_VIEW_MAX;
    mfs_lock_take(&s->in_mu, MFS_LOCK_SYNC_IN);
    for (size_t i = 0; i < n; i++) {
        if (!s->stats[i].id)
            continue;
        view_peer *v = view_find(s, s->stats[i].id);
        if (!v && s->nview < MFS_SYNC_VIEW_MAX) {
            v = &s->view[s->nview++];
            memset(v, 0, sizeof(*v));
            v->id = s->stats[i].id;
        }
        if (v) {
            v->state = s->stats[i].state;
            v->queued = s->stats[i].queued_bytes;
        }
    }
    mfs_lock_drop(&s->in_mu);
}

/* The core's on_peer: the view learns first, so that the application may
 * send to a peer as soon as it hears of it. Loop thread, mu held. */
static void on_peer_cb(void *arg, uint64_t id, int state, uint64_t epoch)
{
    mfs_sync *s = arg;
    view_refresh(s);
    if (s->app_on_peer)
        s->app_on_peer(s->app_arg, id, state, epoch);
}

static int admit_cb(void *arg, uint64_t id, const uint8_t pub[32],
                    const uint8_t *join, size_t len)
{
    mfs_sync *s = arg;
    return s->app_admit(s->app_arg, id, pub, join, len);
}

static void on_removed_cb(void *arg, uint64_t by)
{
    mfs_sync *s = arg;
    s->app_on_removed(s->app_arg, by);
}

static void on_msg_cb(void *arg, uint64_t from, uint8_t mtype,
                      const uint8_t *data, size_t len)
{
    mfs_sync *s = arg;
    if (s->app_on_msg)
        s->app_on_msg(s->app_arg, from, mtype, data, len);
}

/* Runs due timers, sends, re-arms the timer. Loop thread, mutex held. */
static void run_core(mfs_sync *s)
{
    inbox_drain(s);
    uint64_t now = now_us();
    uint64_t app = s->on_tick ? s->on_tick(s->tick_arg, now) : UINT64_MAX;
    inbox_drain(s); /* what on_tick sent */
    uint64_t next = mfs_sync_core_tick(s->core, now);
    if (app < next)
        next = app;
    flush_tx(s);
    view_refresh(s);
    uint64_t ms = next > now ? (next - now + 999) / 1000 : 0;
    uv_timer_start(&s->timer, timer_cb, ms, 0);
}

static void timer_cb(uv_timer_t *t)
{
    mfs_sync *s = t->data;
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    run_core(s);
    mfs_lock_drop(&s->mu);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    mfs_sync *s = h->data;
    buf->base = (char *)s->rxbuf;
    buf->len = RX_CHUNKS * 65536;
}

static void recv_cb(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags)
{
    mfs_sync *s = u->data;
    if (nread <= 0 || !addr)
        return;
    mfs_addr from;
    memset(&from, 0, sizeof(from));
    from.len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in);
    memcpy(&from.ss, addr, from.len);
    if (flags & UV_UDP_PARTIAL)
        nread = MFS_WIRE_MAX + 1; /* truncated: counted as oversized */
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    mfs_sync_core_input(s->core, now_us(), &from, (const uint8_t *)buf->base,
                        (size_t)nread);
    mfs_lock_drop(&s->mu);
}

/* After each round of I/O: one tick for everything that arrived. */
static void check_cb(uv_check_t *c)
{
    mfs_sync *s = c->data;
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    run_core(s);
    mfs_lock_drop(&s->mu);
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void async_cb(uv_async_t *a)
{
    mfs_sync *s = a->data;
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    int stop = s->stopping;
    if (!stop)
        run_core(s);
    mfs_lock_drop(&s->mu);
    if (stop) {
        uv_udp_recv_stop(&s->udp);
        uv_close((uv_handle_t *)&s->udp, close_cb);
        uv_close((uv_handle_t *)&s->timer, close_cb);
        uv_close((uv_handle_t *)&s->check, close_cb);
        uv_close((uv_handle_t *)&s->async, close_cb);
    }
}

static void *thread_main(void *arg)
{
    mfs_sync *s = arg;
    pthread_setname_np(pthread_self(), "mfs-net"); /* top, perf */
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void set_bufsize(uv_udp_t *u)
{
    uv_os_fd_t fd;
    int sz = 4 << 20;
    if (uv_fileno((uv_handle_t *)u, &fd) != 0)
        return;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* The core's wall clock (heartbeats carry it): the real one. */
static uint64_t core_wall_us(void *arg, uint64_t now_us)
{
    (void)arg;
    (void)now_us;
    return wall_us();
}

/* What mfs_sync_start allocated around the loop and the core. */
static void sync_free(mfs_sync *s)
{
    for (inmsg *m = s->in_head, *nx; m; m = nx) {
        nx = m->next;
        free(m);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->in_mu);
    free(s->view);
    free(s->stats);
    free(s->rxbuf);
    free(s);
}

int mfs_sync_start(const mfs_sync_opts *o, mfs_sync **out)
{
    mfs_addr la;
    unsigned alen = 0;
    int rc, timers = 0;

    memset(&la, 0, sizeof(la));
    if (!o || !o->listen || mfs_mesh_addr_parse(o->listen, &la.ss, &alen))
        return -EINVAL;
    la.len = alen;
    mfs_sync *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->rxbuf = malloc(RX_CHUNKS * 65536);
    if (!s->rxbuf) {
        free(s);
        return -ENOMEM;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&s->in_mu, NULL);
    s->view = calloc(MFS_SYNC_VIEW_MAX, sizeof(*s->view));
    s->stats = calloc(MFS_SYNC_VIEW_MAX, sizeof(*s->stats));
    if (!s->view || !s->stats) {
        rc = -ENOMEM;
        goto fail_loop;
    }

    s->on_tick = o->on_tick;
    s->tick_arg = o->tick_arg;
    mfs_sync_config cfg = o->cfg;
    cfg.tx = tx_cb;
    cfg.tx_arg = s;
    s->app_on_peer = cfg.on_peer;
    s->app_on_msg = cfg.on_msg;
    s->app_arg = cfg.arg;
    s->app_admit = cfg.admit;
    if (cfg.admit)
        cfg.admit = admit_cb;
    s->app_on_removed = cfg.on_removed;
    if (cfg.on_removed)
        cfg.on_removed = on_removed_cb;
    cfg.on_peer = on_peer_cb;
    cfg.on_msg = on_msg_cb;
    cfg.wall_us = core_wall_us;
    cfg.arg = s;
    s->max_msg = cfg.max_msg;
    s->max_queue = cfg.max_queue;
    if ((rc = uv_loop_init(&s->loop)) != 0)
        goto fail_loop;
    if ((rc = uv_udp_init_ex(&s->loop, &s->udp,
                             la.ss.ss_family | UV_UDP_RECVMMSG)) != 0)
        goto fail_udp;
    s->udp.data = s;
    if ((rc = uv_udp_bind(&s->udp, (const struct sockaddr *)&la.ss, 0)) != 0)
        goto fail_bind;
    set_bufsize(&s->udp);
    /* UDP GSO only with MESHFS_GSO=1: it speeds bulk transfers but makes
     * a third node's small files slower during one (docs/WIRE.md);
     * flush_tx turns it off if the kernel refuses it */
    const char *gso = getenv("MESHFS_GSO");
    s->gso = gso && strcmp(gso, "1") == 0;
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_udp_getsockname(&s->udp, (struct sockaddr *)&bound, &blen);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    rc = mfs_sync_core_new(&cfg, &o->key, o->node_id,
                           o->epoch ? o->epoch : wall_us(), now_us(), &s->core);
    if (rc)
        goto fail_bind;
    if (o->ident &&
        (rc = o->ident_later ? mfs_sync_core_hold_identity(s->core, o->ident)
                             : mfs_sync_core_set_identity(s->core, o->ident)))
        goto fail_core;
    if (o->ident && o->proof &&
        (rc = mfs_sync_core_join(s->core, now_us(), MFS_SYNC_JOIN_ALL, NULL,
                                 NULL, o->proof, o->prooflen)))
        goto fail_core;
    if (o->ident && o->join_to) {
        mfs_addr ja;
        memset(&ja, 0, sizeof(ja));
        if (mfs_mesh_addr_parse(o->join_addr, &ja.ss, &alen)) {
            rc = -EINVAL;
            goto fail_core;
        }
        ja.len = alen;
        if ((rc = mfs_sync_core_join(s->core, now_us(), o->join_to, o->join_pub,
                                     &ja, o->join, o->joinlen)))
            goto fail_core;
    }
    for (size_t i = 0; i < o->npeers; i++) {
        mfs_addr pa;
        memset(&pa, 0, sizeof(pa));
        if (mfs_mesh_addr_parse(o->peers[i], &pa.ss, &alen)) {
            rc = -EINVAL;
            goto fail_core;
        }
        pa.len = alen;
        mfs_sync_core_add_seed(s->core, now_us(), &pa);
    }
    uv_timer_init(&s->loop, &s->timer);
    timers = 1;
    s->timer.data = s;
    uv_check_init(&s->loop, &s->check);
    s->check.data = s;
    uv_check_start(&s->check, check_cb);
    uv_async_init(&s->loop, &s->async, async_cb);
    s->async.data = s;
    uv_udp_recv_start(&s->udp, alloc_cb, recv_cb);
    uv_timer_start(&s->timer, timer_cb, 0, 0);
    *out = s; /* before the thread runs: callbacks may use it */
    if ((rc = pthread_create(&s->thread, NULL, thread_main, s)) != 0) {
        *out = NULL;
        rc = -rc;
        goto fail_core; /* handles are closed by the loop close below */
    }
    return 0;

fail_core:
    mfs_sync_core_free(s->core);
fail_bind:
    /* only the UDP handle exists before the timers are set up */
    uv_close((uv_handle_t *)&s->udp, NULL);
    if (timers) {
        uv_close((uv_handle_t *)&s->timer, NULL);
        uv_close((uv_handle_t *)&s->check, NULL);
        uv_close((uv_handle_t *)&s->async, NULL);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
fail_udp:
    uv_loop_close(&s->loop);
fail_loop:
    sync_free(s);
    return rc;
}

void mfs_sync_stop(mfs_sync *s)
{
    if (!s)
        return;
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    s->stopping = 1;
    mfs_lock_drop(&s->mu);
    uv_async_send(&s->async);
    pthread_join(s->thread, NULL);
    uv_loop_close(&s->loop);
    mfs_sync_core_free(s->core);
    sync_free(s);
}

int mfs_sync_send(mfs_sync *s, uint64_t to, int channel, uint8_t mtype,
                  const void *data, size_t len)
{
    if ((channel != MFS_SYNC_URGENT && channel != MFS_SYNC_BULK) ||
        (len && !data) || to == 0)
        return -EINVAL;
    if (len > s->max_msg)
        return -EMSGSIZE;
    inmsg *m = malloc(sizeof(*m) + len);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->to = to;
    m->channel = channel;
    m->mtype = mtype;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    mfs_lock_take(&s->in_mu, MFS_LOCK_SYNC_IN);
    view_peer *v = view_find(s, to);
    int rc = !v                                       ? -ENOENT
             : v->state == MFS_PEER_DEAD              ? -EHOSTDOWN
             : v->queued + v->inbox + len > s->max_queue ? -ENOBUFS
                                                      : 0;
    if (rc == 0) {
        v->inbox += len;
        if (s->in_tail)
            s->in_tail->next = m;
        else
            s->in_head = m;
        s->in_tail = m;
    }
    mfs_lock_drop(&s->in_mu);
    if (rc == 0)
        uv_async_send(&s->async);
    else
        free(m);
    return rc;
}

uint64_t mfs_sync_inbox_bytes(mfs_sync *s)
{
    uint64_t n = 0;
    mfs_lock_take(&s->in_mu, MFS_LOCK_SYNC_IN);
    for (const inmsg *m = s->in_head; m; m = m->next)
        n += m->len ? m->len : 1;
    mfs_lock_drop(&s->in_mu);
    return n;
}

uint64_t mfs_sync_inbox_drops(mfs_sync *s)
{
    mfs_lock_take(&s->in_mu, MFS_LOCK_SYNC_IN);
    uint64_t n = s->in_dropped;
    mfs_lock_drop(&s->in_mu);
    return n;
}

void mfs_sync_wake(mfs_sync *s)
{
    uv_async_send(&s->async);
}

int mfs_sync_add_peer(mfs_sync *s, const char *host_port)
{
    mfs_addr pa;
    unsigned alen = 0;
    memset(&pa, 0, sizeof(pa));
    if (mfs_mesh_addr_parse(host_port, &pa.ss, &alen))
        return -EINVAL;
    pa.len = alen;
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    int rc = mfs_sync_core_add_seed(s->core, now_us(), &pa);
    mfs_lock_drop(&s->mu);
    uv_async_send(&s->async);
    return rc;
}

int mfs_sync_member_key(mfs_sync *s, uint64_t id, const uint8_t *pub)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    int rc = mfs_sync_core_member_key(s->core, id, pub);
    mfs_lock_drop(&s->mu);
    uv_async_send(&s->async);
    return rc;
}

int mfs_sync_hold_identity(mfs_sync *s, const mfs_noise_keypair *k,
                           const uint8_t *proof, size_t len)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    int rc = mfs_sync_core_hold_identity(s->core, k);
    if (!rc && proof)
        rc = mfs_sync_core_join(s->core, now_us(), MFS_SYNC_JOIN_ALL, NULL,
                                NULL, proof, len);
    mfs_lock_drop(&s->mu);
    return rc;
}

int mfs_sync_go_identity(mfs_sync *s)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    int rc = mfs_sync_core_go_identity(s->core);
    mfs_lock_drop(&s->mu);
    uv_async_send(&s->async);
    return rc;
}

int mfs_sync_identity(mfs_sync *s)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    int on = mfs_sync_core_identity(s->core);
    mfs_lock_drop(&s->mu);
    return on;
}

void mfs_sync_join_done(mfs_sync *s)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    mfs_sync_core_join_done(s->core);
    mfs_lock_drop(&s->mu);
}

void mfs_sync_hs_counts(mfs_sync *s, uint64_t *made, uint64_t *started,
                        uint64_t *answered)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    mfs_sync_core_hs_counts(s->core, made, started, answered);
    mfs_lock_drop(&s->mu);
}

void mfs_sync_set_clock_flags(mfs_sync *s, uint8_t flags)
{
    mfs_sync_core_set_clock_flags(s->core, flags);
}

void mfs_sync_watch(mfs_sync *s, uint32_t ms)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    mfs_sync_core_watch(s->core, now_us(), ms);
    mfs_lock_drop(&s->mu);
    uv_async_send(&s->async);
}

size_t mfs_sync_peers(mfs_sync *s, mfs_peer_stat *out, size_t cap)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    size_t n = mfs_sync_core_peers(s->core, out, cap);
    mfs_lock_drop(&s->mu);
    return n;
}

void mfs_sync_global_drops(mfs_sync *s, uint64_t *drops)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    memcpy(drops, mfs_sync_core_global_drops(s->core),
           sizeof(uint64_t) * MFS_DROP__COUNT);
    mfs_lock_drop(&s->mu);
}

unsigned mfs_sync_port(const mfs_sync *s)
{
    return s->port;
}

uint64_t mfs_sync_node_id(const mfs_sync *s)
{
    return mfs_sync_core_node_id(s->core);
}

void mfs_sync_tx_counts(mfs_sync *s, uint64_t *msgs, uint64_t *dgrams,
                        int *gso)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    *msgs = s->tx_msgs;
    *dgrams = s->tx_dgrams;
    *gso = s->gso;
    mfs_lock_drop(&s->mu);
}

uint64_t mfs_sync_tx_drops(mfs_sync *s)
{
    mfs_lock_take(&s->mu, MFS_LOCK_SYNC);
    uint64_t n = s->tx_drops;
    mfs_lock_drop(&s->mu);
    return n;
}
