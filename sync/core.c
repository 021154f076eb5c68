/*
 * core.c - the transport state machine (see core.h and docs/WIRE.md).
 *
 * Per peer it keeps: membership (state, epoch, address validation), the
 * send side (message table, retransmit queues, sent-packet ring, RTT,
 * congestion window) and the receive side (replay windows, ack ranges,
 * reassembly). It must never read a clock, touch a socket, parse or
 * allocate anything for a datagram before it authenticated, change any
 * state for a datagram it drops, or send more to an unvalidated address
 * than that address sent us.
 */
#include "core.h"

#include "hs.h"
#include "log.h"
#include "replay.h"
#include "rtt.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_WIN 4096u   /* message ids in flight per peer */
#define URGENT_IDS 256u /* ids only urgent messages may use */
#define SENT_RING 4096u /* sent-packet records per peer */
#define MAX_REFS 8      /* DATA frames per packet */
#define RX_RANGES 32    /* received packet ranges kept for acks */
#define ACK_RANGES_WITH_DATA 8
#define HELLO_PAD 400 /* anonymous hellos are padded to this */
#define PKT_THRESH 3
#define GRANULARITY_US 1000
#define MEMBERS_EVERY_US 1000000
#define WAIT_WINDOW_US 10000000 /* rx_wait_max_us: windows of 10 s */
#define HS_RETRY_US 250000u     /* first retry of an unanswered INIT */
#define NXT_WAIT_US 2000000u    /* an answered INIT's session, unconfirmed */
#define COOKIE_US 120000000u    /* a cookie's life, and its secret's */

typedef struct omsg {
    uint64_t id;
    uint8_t mtype, chan, queued;
    uint32_t len, nfrag, next_frag, acked_n;
    uint64_t *acked; /* bitmap of acked fragments */
    uint8_t *data;
    struct omsg *next; /* backlog / new-data queue link */
} omsg;

typedef struct imsg {
    uint64_t id;
    uint8_t mtype;
    uint32_t len, nfrag, got;
    uint64_t *have;
    uint8_t *data;
    struct imsg *next;
} imsg;

typedef struct fref {
    uint64_t msg;
    uint32_t frag;
} fref;

typedef struct sent_pkt {
    uint64_t pn, t;
    uint16_t size;
    uint8_t in_flight, nref;
    fref ref[MAX_REFS];
} sent_pkt;

typedef struct refq { /* growable FIFO of fragment refs */
    fref *v;
    size_t head, n, cap;
} refq;

typedef struct mqueue {
    omsg *head, *tail;
} mqueue;

/* A session with a peer (per-node keys): the keys we seal and open with. */
typedef struct sess {
    uint8_t tx[32], rx[32];
    uint64_t born;
    int ok;
} sess;

#define CLOCK_SAMPLES 8      /* offsets kept per peer; the least rtt's counts */
#define CLOCK_STEP_US 100000 /* a sample this far beyond the others: a step */

typedef struct peer {
    uint64_t id, epoch;
    mfs_addr addr;
    int state, addr_ok, announced;
    uint64_t unval_in, unval_out; /* bytes, while !addr_ok */
    uint64_t val_pn;              /* first pn sent to the current addr */
    uint32_t val_t;               /* first hb time sent to current addr */
    int val_t_set;
    uint64_t created, last_rx, last_tx, last_hb_tx, next_members;
    uint64_t dead_since; /* when it was last declared dead */
    uint64_t last_data_t;  /* a DATA frame went either way (cfg.idle_*) */
    uint64_t active_since; /* the first one after a quiet spell */
    int members_due;
    uint32_t hb_echo, hb_echo_rx_t; /* peer's last hb t and when we got it */
    int hb_echo_set;
    /* its clock's offset from ours, NTP-style (clock_sample) */
    int64_t clk_off[CLOCK_SAMPLES];
    uint32_t clk_rtt[CLOCK_SAMPLES];
    unsigned clk_n;
    uint8_t clock_flags; /* MFS_CLOCK_* of its last heartbeat */

    /* per-node keys (c->ident): its static key, the session we send
     * with (cur), one it made that it has not used yet (nxt: we answered
     * its INIT), the one before cur (still opened until it expires), and
     * our handshake under way */
    int has_key;
    uint8_t pub[32];
    sess cur, nxt, prev;
    mfs_noise hs;
    int hs_on;
    uint64_t hs_next, hs_wait, hs_sent_t;
    uint8_t init_dg[MFS_HS_INIT_LEN(MFS_HS_JOIN_MAX)]; /* our last INIT */
    size_t init_len;
    uint8_t cookie[16]; /* its COOKIE for our address, and when */
    uint64_t cookie_t;
    uint64_t init_epoch, init_ctr; /* the freshest INIT taken from it */
    /* INITs proving its key with an older boot epoch than its current
     * one, counters rising: a second daemon with a copy of its store */
    uint64_t clone_epoch, clone_ctr;
    unsigned clone_n;

    /* send side */
    uint64_t next_pn, anon_pn, next_id, base;
    omsg *slot[MSG_WIN];
    mqueue backlog[2], newq[2];
    refq retx[2];
    uint64_t inflight_msg_bytes[2];
    uint64_t queued_bytes;
    sent_pkt *ring;
    uint64_t sent_lo, largest_acked, last_elicit_t;
    uint64_t wait_t0, wait_cur, wait_prev; /* note_wait's two windows */
    int largest_acked_set;
    uint64_t bytes_in_flight, cwnd, ss, cc_hold_pn;
    unsigned pto_count, probes;
    uint64_t loss_time;
    mfs_rtt rtt;
    double loss_ewma;

    /* receive side */
    mfs_replay win, win_anon;
    uint64_t rlo[RX_RANGES], rhi[RX_RANGES];
    int rnr;
    uint64_t rx_largest_t, rx_first_pn, rx_pkts;
    unsigned ack_pending;
    uint64_t ack_deadline;
    uint64_t rx_floor;
    int floor_set;
    uint64_t done[MSG_WIN / 64];
    imsg *partial;
    uint64_t rx_bytes;

    mfs_peer_stat st;
} peer;

struct mfs_sync_core {
    mfs_sync_config cfg;
    struct mfs_mesh_key key;
    uint32_t mesh_tag;
    uint64_t self, epoch, now, rng;
    peer **peers;
    size_t npeers;
    double tokens;
    uint64_t tokens_t;
    uint64_t gdrops[MFS_DROP__COUNT];
    uint64_t mem;
    uint8_t clock_flags; /* atomic: mfs_sync_core_set_clock_flags */
    uint64_t watch_until; /* mfs_sync_core_watch: links kept lively */

    /* per-node keys (mfs_sync_core_set_identity); ident_ready: the
     * static key is held, the mesh key still speaks (moving a mesh) */
    int ident, ident_ready;
    mfs_noise_keypair skey;
    uint8_t mac1[32]; /* the mac1 key of handshakes made for us */
    uint64_t hs_ctr;  /* INITs sent this boot */
    struct mkey {
        uint64_t id;
        uint8_t pub[32];
        int removed;   /* its last key, kept to tell it so */
        int cloned;    /* two daemons hold its key: both refused */
        uint64_t told; /* when the log last said we refuse it */
    } * mkeys;
    size_t nmkeys;
    uint64_t join_to; /* joining through this node (or every one:
                         MFS_SYNC_JOIN_ALL), with join */
    uint8_t join[MFS_HS_JOIN_MAX];
    size_t joinlen;
    uint64_t hs_made, hs_started, hs_answered, cookies;
    uint64_t hs_win_t; /* INITs taken in the second from hs_win_t */
    uint32_t hs_win_n;
    uint8_t cookie_sec[2][32]; /* the cookies' secret, and the one before */
    uint64_t cookie_sec_t;
};

static void clock_sample(mfs_sync_core *c, peer *p, uint64_t wall,
                         uint32_t rtt);
static uint64_t wall_now(const mfs_sync_core *c);
static void put_hb(const mfs_sync_core *c, mfs_wbuf *w, uint32_t t,
                   uint32_t echo, uint32_t hold);

static const char *const drop_names[MFS_DROP__COUNT] = {
    "size",   "version", "mesh",      "dst",  "rate",  "auth",
    "replay", "epoch",   "malformed", "flow", "peers", "member",
};

const char *mfs_sync_drop_name(int r)
{
    return (r >= 0 && r < MFS_DROP__COUNT) ? drop_names[r] : "?";
}

const char *mfs_sync_state_name(int s)
{
    return s == MFS_PEER_ALIVE     ? "alive"
           : s == MFS_PEER_SUSPECT ? "suspect"
                                   : "dead";
}

void mfs_sync_config_default(mfs_sync_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_msg = 16u << 20;
    cfg->max_queue = 64ull << 20;
    cfg->window_bulk = 4u << 20;
    cfg->window_urgent = 1u << 20;
    cfg->suspect_ms = 1000;
    cfg->dead_ms = 5000;
    cfg->hb_ms = 400;
    cfg->probe_ms = 1000;
    cfg->max_ack_delay_us = 2000;
    cfg->ack_every = 4;
    cfg->initial_rtt_us = 100000;
    cfg->max_cwnd_pkts = 1024;
    cfg->cc_slack_us = 5000;
    cfg->unknown_pps = 2000;
    cfg->max_peers = 256;
    cfg->rekey_ms = 120000;
    cfg->reject_ms = 180000;
    cfg->hs_load_pps = 200;
}

/* ---- addresses ---- */

const char *mfs_addr_str(const mfs_addr *a, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)&a->ss;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
        port = ntohs(s->sin_port);
        snprintf(buf, cap, "%s:%u", ip, port);
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)&a->ss;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
        port = ntohs(s->sin6_port);
        snprintf(buf, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(buf, cap, "?");
    }
    return buf;
}

int mfs_addr_eq(const mfs_addr *a, const mfs_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return 0;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss,
                                 *y = (const void *)&b->ss;
        return x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->ss,
                                  *y = (const void *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
    }
    return 0;
}

static int addr_to_entry(const mfs_addr *a, mfs_member_entry *e)
{
    memset(e->addr, 0, sizeof(e->addr));
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)&a->ss;
        e->family = 4;
        memcpy(e->addr, &s->sin_addr, 4);
        e->port = ntohs(s->sin_port);
        return 0;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)&a->ss;
        e->family = 6;
        memcpy(e->addr, &s->sin6_addr, 16);
        e->port = ntohs(s->sin6_port);
        return 0;
    }
    return -EAFNOSUPPORT;
}

static void entry_to_addr(const mfs_member_entry *e, mfs_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (e->family == 4) {
        struct sockaddr_in *s = (void *)&a->ss;
        s->sin_family = AF_INET;
        memcpy(&s->sin_addr, e->addr, 4);
        s->sin_port = htons(e->port);
        a->len = sizeof(*s);
    } else {
        struct sockaddr_in6 *s = (void *)&a->ss;
        s->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, e->addr, 16);
        s->sin6_port = htons(e->port);
        a->len = sizeof(*s);
    }
}

/* ---- small helpers ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void *xcalloc(mfs_sync_core *c, size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (p)
        c->mem += n * sz;
    return p;
}

static int refq_push(refq *q, fref r)
{
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 64;
        fref *v = malloc(ncap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        for (size_t i = 0; i < q->n; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->cap = ncap;
        q->head = 0;
    }
    q->v[(q->head + q->n) % q->cap] = r;
    q->n++;
    return 0;
}

static int refq_pop(refq *q, fref *r)
{
    if (!q->n)
        return 0;
    *r = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return 1;
}

static void mq_push(mqueue *q, omsg *m)
{
    m->next = NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
}

static omsg *mq_pop(mqueue *q)
{
    omsg *m = q->head;
    if (m) {
        q->head = m->next;
        if (!q->head)
            q->tail = NULL;
        m->next = NULL;
    }
    return m;
}

static int bit_get(const uint64_t *b, uint64_t i)
{
    return (int)((b[i / 64] >> (i % 64)) & 1);
}

static void bit_set(uint64_t *b, uint64_t i)
{
    b[i / 64] |= 1ull << (i % 64);
}

static void bit_clr(uint64_t *b, uint64_t i)
{
    b[i / 64] &= ~(1ull << (i % 64));
}

/* ---- peers ---- */

static peer *peer_by_id(const mfs_sync_core *c, uint64_t id)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i]->id == id)
            return c->peers[i];
    return NULL;
}

static peer *peer_by_addr(const mfs_sync_core *c, const mfs_addr *a)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (mfs_addr_eq(&c->peers[i]->addr, a))
            return c->peers[i];
    return NULL;
}

static void omsg_free(mfs_sync_core *c, omsg *m)
{
    c->mem -= m->len + ((m->nfrag + 63) / 64) * 8 + sizeof(*m);
    free(m->acked);
    free(m->data);
    free(m);
}

static void imsg_free(mfs_sync_core *c, peer *p, imsg *m)
{
    uint64_t sz = m->len + ((m->nfrag + 63) / 64) * 8 + sizeof(*m);
    c->mem -= sz;
    p->rx_bytes -= m->len;
    free(m->have);
    free(m->data);
    free(m);
}

static void cc_reset(mfs_sync_core *c, peer *p)
{
    p->cwnd = 32 * MFS_WIRE_MAX;
    p->ss = 1;
    p->bytes_in_flight = 0;
    p->pto_count = 0;
    p->probes = 0;
    p->loss_time = 0;
    p->largest_acked_set = 0;
    p->sent_lo = p->next_pn;
    p->cc_hold_pn = p->next_pn;
    (void)c;
}

static void key_sync(mfs_sync_core *c, peer *p);

static peer *peer_new(mfs_sync_core *c, uint64_t id, const mfs_addr *a)
{
    if (c->npeers >= c->cfg.max_peers)
        return NULL;
    peer **v = realloc(c->peers, (c->npeers + 1) * sizeof(*v));
    if (!v)
        return NULL;
    c->peers = v;
    peer *p = xcalloc(c, 1, sizeof(*p));
    if (!p)
        return NULL;
    p->ring = xcalloc(c, SENT_RING, sizeof(sent_pkt));
    if (!p->ring) {
        free(p);
        return NULL;
    }
    p->id = id;
    p->addr = *a;
    p->created = p->last_rx = c->now;
    p->last_data_t = p->active_since = c->now;
    p->next_members = 0;
    mfs_replay_init(&p->win);
    mfs_replay_init(&p->win_anon);
    mfs_rtt_init(&p->rtt, c->cfg.initial_rtt_us);
    cc_reset(c, p);
    c->peers[c->npeers++] = p;
    if (c->ident)
        key_sync(c, p);
    return p;
}

static void peer_event(mfs_sync_core *c, peer *p)
{
    if (c->cfg.on_peer && p->id)
        c->cfg.on_peer(c->cfg.arg, p->id, p->state, p->epoch);
}

/* We learned p's node id from something unauthenticated (a seed's ANSWER)
 * or chose it ourselves (an invitation's node): nothing from it proved its
 * key yet, so it is no live peer (a message queued to it would wait on a
 * handshake that may outlast dead_ms, and be dropped then). Dead, without
 * an event: the application never heard of it; its first authenticated
 * datagram (the handshake) makes it alive and says so. */
static void peer_unheard(mfs_sync_core *c, peer *p)
{
    p->state = MFS_PEER_DEAD;
    p->dead_since = c->now;
    p->hb_echo_set = 0;
}

/* Drops every message queued to p (peer declared dead). */
static void drop_outbound(mfs_sync_core *c, peer *p)
{
    for (int ch = 0; ch < 2; ch++) {
        omsg *m;
        while ((m = mq_pop(&p->backlog[ch]))) {
            p->st.msgs_dropped++;
            omsg_free(c, m);
        }
        p->newq[ch].head = p->newq[ch].tail = NULL;
        p->retx[ch].n = 0;
        p->inflight_msg_bytes[ch] = 0;
    }
    for (uint64_t id = p->base; id < p->next_id; id++) {
        omsg *m = p->slot[id % MSG_WIN];
        if (m && m->id == id) {
            p->st.msgs_dropped++;
            p->slot[id % MSG_WIN] = NULL;
            omsg_free(c, m);
        }
    }
    p->base = p->next_id;
    p->queued_bytes = 0;
    cc_reset(c, p);
}

/* Peer restarted: everything it had received is gone; resend in full. */
static void restart_outbound(mfs_sync_core *c, peer *p)
{
    for (int ch = 0; ch < 2; ch++) {
        p->newq[ch].head = p->newq[ch].tail = NULL;
        p->retx[ch].n = 0;
    }
    for (uint64_t id = p->base; id < p->next_id; id++) {
        omsg *m = p->slot[id % MSG_WIN];
        if (!m)
            continue;
        memset(m->acked, 0, ((m->nfrag + 63) / 64) * 8);
        m->acked_n = 0;
        m->next_frag = 0;
        m->queued = 1;
        mq_push(&p->newq[m->chan], m);
    }
    cc_reset(c, p);
}

static void reset_inbound(mfs_sync_core *c, peer *p)
{
    while (p->partial) {
        imsg *m = p->partial;
        p->partial = m->next;
        imsg_free(c, p, m);
    }
    mfs_replay_init(&p->win);
    mfs_replay_init(&p->win_anon);
    p->rnr = 0;
    p->ack_pending = 0;
    p->floor_set = 0;
    p->rx_floor = 0;
    memset(p->done, 0, sizeof(p->done));
    p->rx_first_pn = 0;
    p->rx_pkts = 0;
    p->clk_n = 0; /* a restarted node's clock may have been set meanwhile */
}

static void set_state(mfs_sync_core *c, peer *p, int s)
{
    if (p->state == s)
        return;
    p->state = s;
    if (s == MFS_PEER_DEAD) {
        drop_outbound(c, p);
        p->dead_since = c->now;
        /* our probes carry no echo: the peer answers them at once (a peer
         * whose link to us is quiet heartbeats only every idle_hb_ms) */
        p->hb_echo_set = 0;
    }
    if (p->id)
        mfs_log(LOG_INFO, "sync: peer %016llx is now %s",
                (unsigned long long)p->id, mfs_sync_state_name(s));
    peer_event(c, p);
}

static uint32_t member_digest(const mfs_sync_core *c)
{
    uint64_t d = mix64(c->self);
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i]->id)
            d ^= mix64(c->peers[i]->id);
    return (uint32_t)d;
}

/* ---- public setup ---- */

int mfs_sync_core_new(const mfs_sync_config *cfg,
                      const struct mfs_mesh_key *key, uint64_t node_id,
                      uint64_t epoch, uint64_t now_us, mfs_sync_core **out)
{
    if (!cfg || !cfg->tx || !key || node_id == 0 ||
        cfg->max_cwnd_pkts > SENT_RING / 2 || cfg->max_cwnd_pkts < 4 ||
        cfg->suspect_ms == 0 || cfg->dead_ms <= cfg->suspect_ms ||
        cfg->hb_ms == 0 || cfg->ack_every == 0 ||
        cfg->reject_ms <= cfg->rekey_ms ||
        (cfg->idle_hb_ms &&
         (cfg->idle_hb_ms < cfg->hb_ms || cfg->idle_after_ms < cfg->hb_ms)))
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    mfs_sync_core *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cfg = *cfg;
    c->key = *key;
    c->mesh_tag = (uint32_t)key->mesh_id;
    c->self = node_id;
    c->epoch = epoch;
    c->now = now_us;
    c->rng = mix64(cfg->rng_seed ? cfg->rng_seed : node_id ^ epoch) | 1;
    c->tokens = cfg->unknown_pps / 4.0;
    c->tokens_t = now_us;
    *out = c;
    return 0;
}

void mfs_sync_core_free(mfs_sync_core *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->npeers; i++) {
        peer *p = c->peers[i];
        drop_outbound(c, p);
        reset_inbound(c, p);
        for (int ch = 0; ch < 2; ch++)
            free(p->retx[ch].v);
        free(p->ring);
        sodium_memzero(p, sizeof(*p));
        free(p);
    }
    free(c->peers);
    free(c->mkeys);
    sodium_memzero(&c->key, sizeof(c->key));
    sodium_memzero(&c->skey, sizeof(c->skey));
    free(c);
}

int mfs_sync_core_add_seed(mfs_sync_core *c, uint64_t now_us,
                           const mfs_addr *addr)
{
    c->now = now_us;
    if (peer_by_addr(c, addr))
        return -EEXIST;
    peer *p = peer_new(c, 0, addr);
    if (!p)
        return -ENOSPC;
    p->addr_ok = 1; /* we chose this address */
    return 0;
}

uint64_t mfs_sync_core_node_id(const mfs_sync_core *c)
{
    return c->self;
}

uint64_t mfs_sync_core_epoch(const mfs_sync_core *c)
{
    return c->epoch;
}

uint64_t mfs_sync_core_mem(const mfs_sync_core *c)
{
    return c->mem;
}

const uint64_t *mfs_sync_core_global_drops(const mfs_sync_core *c)
{
    return c->gdrops;
}

/* ---- per-node keys: members and sessions ---- */

static int raw_tx(mfs_sync_core *c, peer *p, const uint8_t *dg, size_t n);

/* id's entry: its member key, or (removed) the key it had when it was
 * removed. */
static struct mkey *mkey_of(const mfs_sync_core *c, uint64_t id)
{
    for (size_t i = 0; i < c->nmkeys; i++)
        if (c->mkeys[i].id == id)
            return &c->mkeys[i];
    return NULL;
}

static const uint8_t *member_pub(const mfs_sync_core *c, uint64_t id)
{
    struct mkey *k = mkey_of(c, id);
    return k && !k->removed && !k->cloned ? k->pub : NULL;
}

/* A session we may still seal or open with. */
static int sess_live(const mfs_sync_core *c, const sess *s)
{
    return s->ok && c->now - s->born < (uint64_t)c->cfg.reject_ms * 1000;
}

static void sess_wipe(sess *s)
{
    sodium_memzero(s, sizeof(*s));
}

static void forget_sessions(peer *p)
{
    sess_wipe(&p->cur);
    sess_wipe(&p->nxt);
    sess_wipe(&p->prev);
    mfs_noise_wipe(&p->hs);
    p->hs_on = 0;
    p->hs_wait = p->hs_next = 0;
}

/* p's key is its member key again; a changed (or removed) key ends its
 * sessions. */
static void key_sync(mfs_sync_core *c, peer *p)
{
    const uint8_t *k = p->id ? member_pub(c, p->id) : NULL;
    if (k && p->has_key && !memcmp(p->pub, k, 32))
        return;
    forget_sessions(p);
    p->has_key = k != NULL;
    if (k)
        memcpy(p->pub, k, 32);
}

int mfs_sync_core_set_identity(mfs_sync_core *c, const mfs_noise_keypair *k)
{
    if (c->npeers)
        return -EBUSY;
    c->ident = c->ident_ready = 1;
    c->skey = *k;
    mfs_hs_mac1_key(k->pub, c->mac1);
    return 0;
}

int mfs_sync_core_hold_identity(mfs_sync_core *c, const mfs_noise_keypair *k)
{
    if (c->ident)
        return -EALREADY;
    c->ident_ready = 1;
    c->skey = *k;
    mfs_hs_mac1_key(k->pub, c->mac1);
    return 0;
}

int mfs_sync_core_go_identity(mfs_sync_core *c)
{
    if (!c->ident_ready)
        return -EINVAL;
    if (c->ident)
        return 0;
    c->ident = 1;
    /* what is in flight goes again under the sessions to come: a peer
     * whose key we hold gets a handshake, the others start theirs */
    for (size_t i = 0; i < c->npeers; i++)
        key_sync(c, c->peers[i]);
    sodium_memzero(c->key.key, sizeof(c->key.key));
    mfs_log(LOG_NOTICE, "sync: per-node keys from now on (the mesh key no "
                        "longer opens or seals a datagram)");
    return 0;
}

int mfs_sync_core_identity(const mfs_sync_core *c)
{
    return c->ident;
}

int mfs_sync_core_member_key(mfs_sync_core *c, uint64_t id, const uint8_t *pub)
{
    if (!id || id == c->self)
        return -EINVAL;
    size_t i = 0;
    while (i < c->nmkeys && c->mkeys[i].id != id)
        i++;
    if (pub && i == c->nmkeys) {
        struct mkey *v = realloc(c->mkeys, (c->nmkeys + 1) * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->mkeys = v;
        memset(&c->mkeys[c->nmkeys], 0, sizeof(*v));
        c->mkeys[c->nmkeys++].id = id;
    }
    if (pub)
        memcpy(c->mkeys[i].pub, pub, 32);
    if (i < c->nmkeys)
        c->mkeys[i].removed = !pub;
    peer *p = peer_by_id(c, id);
    if (p) {
        key_sync(c, p);
        if (!pub && p->state != MFS_PEER_DEAD) {
            mfs_log(LOG_INFO, "sync: node %016llx is no member: cut off",
                    (unsigned long long)id);
            set_state(c, p, MFS_PEER_DEAD);
        }
    }
    return 0;
}

int mfs_sync_core_join(mfs_sync_core *c, uint64_t now_us, uint64_t id,
                       const uint8_t *pub, const mfs_addr *addr,
                       const uint8_t *join, size_t len)
{
    if (len > MFS_HS_JOIN_MAX || !c->ident_ready)
        return -EINVAL;
    c->now = max64(c->now, now_us);
    if (id == MFS_SYNC_JOIN_ALL) { /* a proof for every handshake */
        memcpy(c->join, join, len);
        c->joinlen = len;
        c->join_to = id;
        return 0;
    }
    int rc = mfs_sync_core_member_key(c, id, pub);
    if (rc)
        return rc;
    peer *p = peer_by_id(c, id);
    if (!p) {
        p = peer_by_addr(c, addr);
        if (p && p->id == 0)
            p->id = id;
        else if (!(p = peer_new(c, id, addr)))
            return -ENOSPC;
        peer_unheard(c, p); /* alive once its handshake proves the key */
    }
    p->addr = *addr;
    p->addr_ok = 1; /* we chose it */
    key_sync(c, p);
    memcpy(c->join, join, len);
    c->joinlen = len;
    c->join_to = id;
    return 0;
}

void mfs_sync_core_join_done(mfs_sync_core *c)
{
    sodium_memzero(c->join, sizeof(c->join));
    c->joinlen = 0;
    c->join_to = 0;
}

uint64_t mfs_sync_core_cookies(const mfs_sync_core *c)
{
    return c->cookies;
}

void mfs_sync_core_hs_counts(const mfs_sync_core *c, uint64_t *made,
                             uint64_t *started, uint64_t *answered)
{
    *made = c->hs_made;
    *started = c->hs_started;
    *answered = c->hs_answered;
}

/* A version 3 header of ours: kind, to dst (0: not known), pn 0. */
static mfs_wire_hdr hdr_v3(const mfs_sync_core *c, uint8_t kind, uint64_t dst)
{
    return (mfs_wire_hdr){
        MFS_WIRE_VERSION_ID, kind, c->mesh_tag, c->self, dst, c->epoch, 0};
}

static void send_init(mfs_sync_core *c, peer *p)
{
    uint8_t dg[MFS_WIRE_MAX];
    mfs_hs_hello hello = {.counter = ++c->hs_ctr};
    if (c->joinlen &&
        (p->id == c->join_to || c->join_to == MFS_SYNC_JOIN_ALL)) {
        memcpy(hello.join, c->join, c->joinlen);
        hello.joinlen = c->joinlen;
    }
    mfs_wire_hdr h = hdr_v3(c, MFS_WIRE_INIT, p->id);
    ssize_t n = mfs_hs_init_write(&p->hs, &c->skey, p->pub, &h, &hello, dg);
    sodium_memzero(&hello, sizeof(hello));
    if (n < 0)
        return;
    if (p->cookie_t && c->now - p->cookie_t < COOKIE_US)
        mfs_hs_init_mac2(dg, (size_t)n, p->cookie);
    memcpy(p->init_dg, dg, (size_t)n);
    p->init_len = (size_t)n;
    p->hs_on = 1;
    p->hs_sent_t = c->now;
    if (raw_tx(c, p, dg, (size_t)n) > 0)
        c->hs_started++;
}

/* "Who is at this address?" to a seed whose node id we do not know. */
static void send_probe(mfs_sync_core *c, peer *p)
{
    uint8_t dg[MFS_HS_PROBE_LEN] = {0};
    mfs_wire_hdr h = hdr_v3(c, MFS_WIRE_PROBE, 0);
    mfs_wire_hdr_encode(&h, dg);
    raw_tx(c, p, dg, sizeof(dg));
    p->last_hb_tx = c->now;
}

/* Starts or retries a handshake with p when it has no session to send
 * with, or when its session is old enough to replace (the node of the
 * larger id waits an eighth longer, so that one handshake, not two,
 * replaces it). */
static void hs_tick(mfs_sync_core *c, peer *p, uint64_t *next)
{
    if (p->nxt.ok && c->now - p->nxt.born >= (uint64_t)c->cfg.reject_ms * 1000)
        sess_wipe(&p->nxt);
    if (p->prev.ok && !sess_live(c, &p->prev))
        sess_wipe(&p->prev);
    if (!p->has_key)
        return;
    uint64_t rekey = (uint64_t)c->cfg.rekey_ms * 1000;
    if (c->self > p->id)
        rekey += rekey / 8;
    /* a dead peer may have lost our session (a restart we did not hear
     * of, an answer of ours it never got): handshakes probe it too */
    int want = !sess_live(c, &p->cur) || c->now - p->cur.born >= rekey ||
               p->state == MFS_PEER_DEAD;
    if (!want) {
        if (p->hs_on)
            mfs_noise_wipe(&p->hs);
        p->hs_on = 0;
        p->hs_wait = 0;
        *next = min64(*next, p->cur.born + rekey);
        return;
    }
    /* we answered its INIT: it seals with that session next, unless ours
     * is under way too (of two at once, the smaller id's goes on) */
    if (!p->hs_on && p->nxt.ok && c->now - p->nxt.born < NXT_WAIT_US) {
        *next = min64(*next, p->nxt.born + NXT_WAIT_US);
        return;
    }
    if (!p->hs_on || c->now >= p->hs_next) {
        send_init(c, p);
        uint64_t cap = (uint64_t)c->cfg.probe_ms * 1000;
        p->hs_wait =
            p->hs_wait ? min64(p->hs_wait * 2, cap) : min64(HS_RETRY_US, cap);
        p->hs_next = c->now + p->hs_wait;
    }
    *next = min64(*next, p->hs_next);
}

/* ---- sending messages ---- */

/* Moves backlog messages into the id window when flow control allows. */
static void admit(mfs_sync_core *c, peer *p)
{
    for (int ch = 0; ch < 2; ch++) {
        uint64_t win =
            ch == MFS_SYNC_URGENT ? c->cfg.window_urgent : c->cfg.window_bulk;
        uint64_t ids = ch == MFS_SYNC_URGENT ? MSG_WIN : MSG_WIN - URGENT_IDS;
        omsg *m;
        while ((m = p->backlog[ch].head)) {
            if (p->next_id - p->base >= ids)
                break;
            if (p->inflight_msg_bytes[ch] &&
                p->inflight_msg_bytes[ch] + m->len > win)
                break;
            mq_pop(&p->backlog[ch]);
            m->id = p->next_id++;
            p->slot[m->id % MSG_WIN] = m;
            p->inflight_msg_bytes[ch] += m->len;
            m->queued = 1;
            mq_push(&p->newq[ch], m);
        }
    }
}

int mfs_sync_core_send(mfs_sync_core *c, uint64_t to, int channel,
                       uint8_t mtype, const void *data, size_t len)
{
    if ((channel != MFS_SYNC_URGENT && channel != MFS_SYNC_BULK) ||
        (len && !data) || to == 0)
        return -EINVAL;
    if (len > c->cfg.max_msg)
        return -EMSGSIZE;
    peer *p = peer_by_id(c, to);
    if (!p)
        return -ENOENT;
    if (p->state == MFS_PEER_DEAD)
        return -EHOSTDOWN;
    if (p->queued_bytes + len > c->cfg.max_queue)
        return -ENOBUFS;
    omsg *m = calloc(1, sizeof(*m));
    uint32_t nfrag =
        len ? (uint32_t)((len + MFS_WIRE_FRAG - 1) / MFS_WIRE_FRAG) : 1;
    if (!m)
        return -ENOMEM;
    m->acked = calloc((nfrag + 63) / 64, 8);
    m->data = malloc(len ? len : 1);
    if (!m->acked || !m->data) {
        free(m->acked);
        free(m->data);
        free(m);
        return -ENOMEM;
    }
    if (len)
        memcpy(m->data, data, len);
    m->len = (uint32_t)len;
    m->nfrag = nfrag;
    m->mtype = mtype;
    m->chan = (uint8_t)channel;
    c->mem += m->len + ((nfrag + 63) / 64) * 8 + sizeof(*m);
    p->queued_bytes += len;
    mq_push(&p->backlog[channel], m);
    admit(c, p);
    return 0;
}

/* Fragment acked: maybe completes the message, which frees its slot. */
static void frag_acked(mfs_sync_core *c, peer *p, fref r)
{
    omsg *m = p->slot[r.msg % MSG_WIN];
    if (!m || m->id != r.msg || r.frag >= m->nfrag || bit_get(m->acked, r.frag))
        return;
    bit_set(m->acked, r.frag);
    if (++m->acked_n < m->nfrag)
        return;
    p->slot[r.msg % MSG_WIN] = NULL;
    p->inflight_msg_bytes[m->chan] -= m->len;
    p->queued_bytes -= m->len;
    p->st.msgs_out++;
    /* it may still sit in newq if some fragment was never sent (cannot
     * happen: all fragments acked means all sent) */
    omsg_free(c, m);
    while (p->base < p->next_id && !p->slot[p->base % MSG_WIN])
        p->base++;
}

static void requeue_packet(peer *p, sent_pkt *s)
{
    for (unsigned i = 0; i < s->nref; i++) {
        omsg *m = p->slot[s->ref[i].msg % MSG_WIN];
        if (!m || m->id != s->ref[i].msg || bit_get(m->acked, s->ref[i].frag))
            continue;
        refq_push(&p->retx[m->chan], s->ref[i]);
    }
    s->nref = 0;
}

/* ---- ack processing, loss detection, congestion ---- */

static uint64_t loss_delay(const mfs_sync_core *c, const peer *p)
{
    uint64_t r =
        p->rtt.smoothed > p->rtt.latest ? p->rtt.smoothed : p->rtt.latest;
    r = r * 9 / 8;
    return r < GRANULARITY_US ? GRANULARITY_US : r;
}

static void on_lost(mfs_sync_core *c, peer *p, sent_pkt *s)
{
    s->in_flight = 0;
    p->bytes_in_flight -= s->size;
    p->st.pkts_lost++;
    p->loss_ewma = p->loss_ewma * 0.99 + 0.01;
    requeue_packet(p, s);
}

static void detect_losses(mfs_sync_core *c, peer *p)
{
    p->loss_time = 0;
    if (!p->largest_acked_set)
        return;
    uint64_t ld = loss_delay(c, p);
    for (uint64_t pn = p->sent_lo; pn < p->next_pn && pn < p->largest_acked;
         pn++) {
        sent_pkt *s = &p->ring[pn % SENT_RING];
        if (s->pn != pn || !s->in_flight)
            continue;
        if (p->largest_acked >= pn + PKT_THRESH || s->t + ld <= c->now) {
            on_lost(c, p, s);
            continue;
        }
        p->loss_time = s->t + ld;
        break; /* later packets were sent later: none is lost either */
    }
    while (p->sent_lo < p->next_pn) {
        sent_pkt *s = &p->ring[p->sent_lo % SENT_RING];
        if (s->pn == p->sent_lo && s->in_flight)
            break;
        p->sent_lo++;
    }
}

static void on_ack(mfs_sync_core *c, peer *p, const mfs_frame *f)
{
    uint64_t largest = f->u.ack.largest;
    if (largest >= p->next_pn)
        return; /* acks something never sent: ignore the frame */
    int new_largest = !p->largest_acked_set || largest > p->largest_acked;
    uint64_t acked_bytes = 0;
    for (unsigned i = 0; i < f->u.ack.nranges; i++) {
        uint64_t lo = f->u.ack.lo[i], hi = f->u.ack.hi[i];
        if (lo < p->sent_lo)
            lo = p->sent_lo;
        for (uint64_t pn = hi + 1; pn-- > lo;) {
            sent_pkt *s = &p->ring[pn % SENT_RING];
            if (s->pn != pn || !s->in_flight)
                continue;
            if (pn == largest && new_largest)
                mfs_rtt_sample(&p->rtt, c->now - s->t, f->u.ack.delay_us,
                               c->cfg.max_ack_delay_us);
            s->in_flight = 0;
            p->bytes_in_flight -= s->size;
            acked_bytes += s->size;
            p->loss_ewma *= 0.99;
            for (unsigned k = 0; k < s->nref; k++)
                frag_acked(c, p, s->ref[k]);
            s->nref = 0;
        }
    }
    if (new_largest) {
        p->largest_acked = largest;
        p->largest_acked_set = 1;
    }
    if (!p->addr_ok && largest >= p->val_pn)
        p->addr_ok = 1;
    if (acked_bytes) {
        p->pto_count = 0;
        /* congestion: queueing delay over the slack shrinks the window
         * once per round trip; random loss alone never does. */
        uint64_t q =
            p->rtt.latest > p->rtt.min ? p->rtt.latest - p->rtt.min : 0;
        uint64_t slack = c->cfg.cc_slack_us;
        if (p->rtt.min > slack)
            slack = p->rtt.min;
        if (q > slack) {
            if (largest >= p->cc_hold_pn) {
                p->cwnd = p->cwnd * 7 / 10;
                p->ss = 0;
                p->cc_hold_pn = p->next_pn;
            }
        } else if (p->ss) {
            p->cwnd += acked_bytes;
        } else {
            p->cwnd += (uint64_t)MFS_WIRE_MAX * acked_bytes * 2 / p->cwnd + 1;
        }
        uint64_t maxc = (uint64_t)c->cfg.max_cwnd_pkts * MFS_WIRE_MAX;
        uint64_t minc = 4ull * MFS_WIRE_MAX;
        if (p->cwnd > maxc)
            p->cwnd = maxc;
        if (p->cwnd < minc)
            p->cwnd = minc;
    }
    detect_losses(c, p);
    admit(c, p);
}

/* ---- receiving ---- */

static void drop(mfs_sync_core *c, peer *p, int reason)
{
    if (p)
        p->st.drops[reason]++;
    else
        c->gdrops[reason]++;
}

static void rx_range_add(peer *p, uint64_t pn)
{
    int i;
    for (i = 0; i < p->rnr; i++) {
        if (pn >= p->rlo[i] && pn <= p->rhi[i])
            return;
        if (pn == p->rhi[i] + 1) {
            p->rhi[i] = pn;
            if (i > 0 && p->rlo[i - 1] == pn + 1) { /* merge with above */
                p->rlo[i - 1] = p->rlo[i];
                memmove(&p->rlo[i], &p->rlo[i + 1],
                        (size_t)(p->rnr - i - 1) * 8);
                memmove(&p->rhi[i], &p->rhi[i + 1],
                        (size_t)(p->rnr - i - 1) * 8);
                p->rnr--;
            }
            return;
        }
        if (pn + 1 == p->rlo[i]) {
            p->rlo[i] = pn;
            if (i + 1 < p->rnr && p->rhi[i + 1] + 1 == pn) { /* merge below */
                p->rlo[i] = p->rlo[i + 1];
                memmove(&p->rlo[i + 1], &p->rlo[i + 2],
                        (size_t)(p->rnr - i - 2) * 8);
                memmove(&p->rhi[i + 1], &p->rhi[i + 2],
                        (size_t)(p->rnr - i - 2) * 8);
                p->rnr--;
            }
            return;
        }
        if (pn > p->rhi[i])
            break;
    }
    /* new range at position i */
    if (p->rnr == RX_RANGES) {
        if (i == RX_RANGES)
            return; /* older than everything we track */
        p->rnr--;
    }
    memmove(&p->rlo[i + 1], &p->rlo[i], (size_t)(p->rnr - i) * 8);
    memmove(&p->rhi[i + 1], &p->rhi[i], (size_t)(p->rnr - i) * 8);
    p->rlo[i] = p->rhi[i] = pn;
    p->rnr++;
}

static void floor_advance(mfs_sync_core *c, peer *p, uint64_t to)
{
    if (!p->floor_set) {
        p->floor_set = 1;
        p->rx_floor = to;
        memset(p->done, 0, sizeof(p->done));
    }
    if (to > p->rx_floor && to - p->rx_floor >= MSG_WIN) {
        /* a jump past the whole window: every slot is stale, and stepping
         * one by one would take as long as the sender wants */
        memset(p->done, 0, sizeof(p->done));
        p->rx_floor = to;
    }
    while (p->rx_floor < to) {
        bit_clr(p->done, p->rx_floor % MSG_WIN);
        p->rx_floor++;
    }
    while (bit_get(p->done, p->rx_floor % MSG_WIN)) {
        bit_clr(p->done, p->rx_floor % MSG_WIN);
        p->rx_floor++;
    }
    /* partial messages below the floor will never be completed */
    imsg **pp = &p->partial;
    while (*pp) {
        imsg *m = *pp;
        if (m->id < p->rx_floor) {
            *pp = m->next;
            imsg_free(c, p, m);
        } else {
            pp = &m->next;
        }
    }
}

static imsg *partial_find(peer *p, uint64_t id)
{
    for (imsg *m = p->partial; m; m = m->next)
        if (m->id == id)
            return m;
    return NULL;
}

/* Reassembly limit: what honest senders can have in flight. */
static uint64_t rx_cap(const mfs_sync_core *c)
{
    return (uint64_t)c->cfg.window_bulk + c->cfg.window_urgent + c->cfg.max_msg;
}

/* Would the DATA frames of this datagram fit our limits? No side effects. */
static int data_acceptable(const mfs_sync_core *c, const peer *p,
                           const mfs_frame *fr, int n)
{
    uint64_t floor = p->floor_set ? p->rx_floor : 0, maxbase = 0;
    uint64_t newbytes = 0;
    int any = 0;
    for (int i = 0; i < n; i++)
        if (fr[i].type == MFS_FR_DATA) {
            any = 1;
            if (fr[i].u.data.base > maxbase)
                maxbase = fr[i].u.data.base;
        }
    if (!any)
        return 1;
    if (!p->floor_set || maxbase > floor)
        floor = maxbase;
    for (int i = 0; i < n; i++) {
        if (fr[i].type != MFS_FR_DATA)
            continue;
        uint64_t id = fr[i].u.data.msg_id;
        if (id >= floor + MSG_WIN)
            return 0;
        if (id >= floor && !partial_find((peer *)p, id) &&
            !(p->floor_set && id >= p->rx_floor &&
              bit_get(p->done, id % MSG_WIN)))
            newbytes += fr[i].u.data.msg_len;
    }
    return p->rx_bytes + newbytes <= rx_cap(c);
}

static void on_data(mfs_sync_core *c, peer *p, const mfs_frame *f)
{
    uint64_t id = f->u.data.msg_id;
    floor_advance(c, p,
                  f->u.data.base > p->rx_floor || !p->floor_set ? f->u.data.base
                                                                : p->rx_floor);
    if (id < p->rx_floor || bit_get(p->done, id % MSG_WIN))
        return; /* duplicate of a delivered message */
    imsg *m = partial_find(p, id);
    if (!m) {
        m = xcalloc(c, 1, sizeof(*m));
        if (!m)
            return;
        m->id = id;
        m->mtype = f->u.data.mtype;
        m->len = f->u.data.msg_len;
        m->nfrag = m->len ? (m->len + MFS_WIRE_FRAG - 1) / MFS_WIRE_FRAG : 1;
        m->have = xcalloc(c, (m->nfrag + 63) / 64, 8);
        m->data = malloc(m->len ? m->len : 1);
        if (!m->have || !m->data) {
            free(m->have);
            free(m->data);
            free(m);
            return;
        }
        c->mem += m->len;
        p->rx_bytes += m->len;
        m->next = p->partial;
        p->partial = m;
    }
    if (f->u.data.msg_len != m->len || f->u.data.mtype != m->mtype)
        return; /* inconsistent fragments: keep the first view */
    uint32_t k = f->u.data.offset / MFS_WIRE_FRAG;
    if (bit_get(m->have, k))
        return;
    bit_set(m->have, k);
    if (f->u.data.len)
        memcpy(m->data + f->u.data.offset, f->u.data.bytes, f->u.data.len);
    if (++m->got < m->nfrag)
        return;
    /* complete: unlink, mark done, deliver */
    imsg **pp = &p->partial;
    while (*pp != m)
        pp = &(*pp)->next;
    *pp = m->next;
    bit_set(p->done, id % MSG_WIN);
    p->st.msgs_in++;
    if (c->cfg.on_msg)
        c->cfg.on_msg(c->cfg.arg, p->id, m->mtype, m->data, m->len);
    imsg_free(c, p, m);
    floor_advance(c, p, p->rx_floor);
}

static void on_members(mfs_sync_core *c, const mfs_frame *f)
{
    for (unsigned i = 0; i < f->u.members.count; i++) {
        const mfs_member_entry *e = &f->u.members.e[i];
        if (e->id == c->self || peer_by_id(c, e->id))
            continue;
        const struct mkey *mk = c->ident ? mkey_of(c, e->id) : NULL;
        if (mk && mk->removed)
            continue; /* no member: not a peer (it would show alive, never
                         heard of, for ever) */
        mfs_addr a;
        entry_to_addr(e, &a);
        peer *s = peer_by_addr(c, &a);
        if (s && s->id == 0) { /* a seed we had not heard from yet */
            s->id = e->id;
            if (c->ident)
                key_sync(c, s);
        } else if (!(s = peer_new(c, e->id, &a))) {
            return;
        }
        s->addr_ok = 1; /* vouched for by an authenticated member */
        s->announced = 1;
        peer_event(c, s);
    }
}

/* No message went either way for cfg.idle_after_ms, and nobody watches
 * (mfs_sync_core_watch): sparse heartbeats. */
static int link_quiet(const mfs_sync_core *c, const peer *p)
{
    return c->cfg.idle_hb_ms && c->now >= c->watch_until &&
           c->now - p->last_data_t >= c->cfg.idle_after_ms * 1000ull;
}

void mfs_sync_core_watch(mfs_sync_core *c, uint64_t now_us, uint32_t ms)
{
    if (now_us > c->now)
        c->now = now_us;
    for (size_t i = 0; i < c->npeers; i++) {
        peer *p = c->peers[i];
        if (link_quiet(c, p)) {
            p->active_since = c->now; /* silence counts from now */
            p->last_hb_tx = 0;        /* and a heartbeat goes at once */
        }
    }
    uint64_t until = c->now + ms * 1000ull;
    if (until > c->watch_until)
        c->watch_until = until;
}

/* A peer dead for T is probed every T/32 (at least 100 ms apart, at most
 * probe_ms): a short partition heals soon, and the sooner we hear of it
 * the sooner its changes flow (a 10 s partition: found healed within
 * ~160 ms, not 1 s); a peer gone for good costs one probe per probe_ms
 * after half a minute. */
static uint32_t probe_period(const mfs_sync_core *c, const peer *p)
{
    uint64_t ms = (c->now - p->dead_since) / 1000 / 32;
    uint64_t lo = c->cfg.probe_ms < 100 ? c->cfg.probe_ms : 100;
    if (ms < lo)
        ms = lo;
    return ms < c->cfg.probe_ms ? (uint32_t)ms : c->cfg.probe_ms;
}

static uint32_t hb_period(const mfs_sync_core *c, const peer *p)
{
    return p->state == MFS_PEER_DEAD ? probe_period(c, p)
           : link_quiet(c, p)        ? c->cfg.idle_hb_ms
                                     : c->cfg.hb_ms;
}

/* A DATA frame went to or came from p. */
static void note_data(mfs_sync_core *c, peer *p)
{
    if (link_quiet(c, p))
        p->active_since = c->now; /* silence counts from now */
    p->last_data_t = c->now;
}

/* When p's silence began, and how long it may last before p is suspect
 * and dead (us). */
static uint64_t silence(const mfs_sync_core *c, const peer *p,
                        uint64_t *suspect, uint64_t *dead)
{
    if (link_quiet(c, p)) {
        *suspect = (2ull * c->cfg.idle_hb_ms + c->cfg.suspect_ms) * 1000;
        *dead = (3ull * c->cfg.idle_hb_ms + c->cfg.dead_ms) * 1000;
        return p->last_rx;
    }
    *suspect = c->cfg.suspect_ms * 1000ull;
    *dead = c->cfg.dead_ms * 1000ull;
    return max64(p->last_rx, p->active_since);
}

/* A packet from p arrived: how long were we waiting for one? Counted from
 * the later of its last packet and the oldest of ours still in flight (so
 * an idle link's heartbeat period is not a wait). */
static void note_wait(mfs_sync_core *c, peer *p)
{
    if (!p->bytes_in_flight)
        return;
    /* the oldest packet in flight (sent_lo is only moved past acked ones
     * when losses are looked for) */
    const sent_pkt *s = NULL;
    for (uint64_t pn = p->sent_lo; pn < p->next_pn && !s; pn++) {
        const sent_pkt *q = &p->ring[pn % SENT_RING];
        if (q->pn == pn && q->in_flight)
            s = q;
    }
    if (!s)
        return;
    uint64_t since = p->last_rx > s->t ? p->last_rx : s->t;
    if (c->now >= p->wait_t0 + WAIT_WINDOW_US) { /* a new window */
        p->wait_prev = c->now >= p->wait_t0 + 2 * WAIT_WINDOW_US ? 0 : p->wait_cur;
        p->wait_cur = 0;
        p->wait_t0 = c->now;
    }
    if (c->now > since && c->now - since > p->wait_cur)
        p->wait_cur = c->now - since;
}

static int frames_only_hb(const mfs_frame *fr, int n)
{
    for (int i = 0; i < n; i++)
        if (fr[i].type != MFS_FR_HB && fr[i].type != MFS_FR_MEMBERS)
            return 0;
    return 1;
}

static int rate_ok(mfs_sync_core *c)
{
    double rate = c->cfg.unknown_pps, burst = rate / 4 + 1;
    c->tokens += (double)(c->now - c->tokens_t) * rate / 1e6;
    c->tokens_t = c->now;
    if (c->tokens > burst)
        c->tokens = burst;
    if (c->tokens < 1)
        return 0;
    c->tokens -= 1;
    return 1;
}

/* A newer boot epoch of p: it restarted. 1 if so. */
static int peer_epoch(mfs_sync_core *c, peer *p, uint64_t epoch)
{
    if (epoch <= p->epoch)
        return 0;
    if (p->epoch) {
        p->st.restarts++;
        mfs_log(LOG_INFO, "sync: peer %016llx restarted (new epoch)",
                (unsigned long long)p->id);
        restart_outbound(c, p);
    }
    reset_inbound(c, p);
    p->epoch = epoch;
    return 1;
}

/* An authenticated, fresh datagram came from p at a new address: its
 * address until it is validated again. */
static void peer_moved(mfs_sync_core *c, peer *p, const mfs_addr *from)
{
    char a[64];
    mfs_log(LOG_INFO, "sync: peer %016llx moved to %s",
            (unsigned long long)p->id, mfs_addr_str(from, a, sizeof(a)));
    p->addr = *from;
    p->addr_ok = 0;
    p->unval_in = p->unval_out = 0;
    p->val_pn = p->next_pn;
    p->val_t_set = 0;
}

/* An authenticated datagram of len bytes from p: it is alive (fresh: a
 * new peer or a restart, which the application hears of). */
static void heard_from(mfs_sync_core *c, peer *p, size_t len, int fresh)
{
    p->last_rx = c->now;
    p->st.bytes_in += len;
    p->st.dgrams_in++;
    if (p->state != MFS_PEER_ALIVE)
        set_state(c, p, MFS_PEER_ALIVE); /* the event says it (and fresh) */
    else if (fresh)
        peer_event(c, p);
}

/* An authenticated handshake from p at from (len bytes): it is alive
 * there. */
static void hs_heard(mfs_sync_core *c, peer *p, const mfs_addr *from,
                     size_t len, int fresh)
{
    if (!mfs_addr_eq(&p->addr, from))
        peer_moved(c, p, from);
    if (!p->addr_ok)
        p->unval_in += len;
    heard_from(c, p, len, fresh);
}

/* PROBE: we answer who we are, in fewer bytes than it took. */
static void on_probe(mfs_sync_core *c, const mfs_addr *from,
                     const mfs_wire_hdr *h, size_t len, peer *acct)
{
    if (h->dst != 0 || len != MFS_HS_PROBE_LEN) {
        drop(c, acct, MFS_DROP_MALFORMED);
        return;
    }
    uint8_t dg[MFS_HS_ANSWER_LEN] = {0};
    mfs_wire_hdr a = hdr_v3(c, MFS_WIRE_ANSWER, h->src);
    mfs_wire_hdr_encode(&a, dg);
    c->cfg.tx(c->cfg.tx_arg, from, dg, sizeof(dg));
}

/* ANSWER to a probe of ours: the seed at from is node src, whose key we
 * may know; the handshake says whether it is. */
static void on_answer(mfs_sync_core *c, const mfs_wire_hdr *h, size_t len,
                      peer *ap)
{
    if (len != MFS_HS_ANSWER_LEN || !ap || ap->id != 0 ||
        !member_pub(c, h->src) || peer_by_id(c, h->src)) {
        drop(c, ap, MFS_DROP_MEMBER);
        return;
    }
    ap->id = h->src;
    key_sync(c, ap);
    peer_unheard(c, ap); /* alive once its handshake proves the key */
}

/* The cookie of address a under secret k. */
static void cookie_of(const uint8_t k[32], const mfs_addr *a, uint8_t out[16])
{
    crypto_generichash(out, 16, (const uint8_t *)&a->ss,
                       a->len <= sizeof(a->ss) ? a->len : sizeof(a->ss), k, 32);
}

/* Under load (more INITs with a right mac1 in this second than
 * hs_load_pps), an INIT must carry a mac2 made with its address's cookie;
 * one that does not gets a COOKIE (smaller than it, no state kept) and
 * costs no Diffie-Hellman. 1 if the INIT may go on. */
static int init_cookie_ok(mfs_sync_core *c, const mfs_addr *from,
                          const mfs_wire_hdr *h, const uint8_t *buf, size_t len)
{
    if (c->now - c->hs_win_t >= 1000000u) {
        c->hs_win_t = c->now;
        c->hs_win_n = 0;
    }
    if (++c->hs_win_n <= c->cfg.hs_load_pps)
        return 1;
    if (!c->cookie_sec_t || c->now - c->cookie_sec_t >= COOKIE_US) {
        memcpy(c->cookie_sec[1], c->cookie_sec[0], 32);
        randombytes_buf(c->cookie_sec[0], 32);
        c->cookie_sec_t = c->now;
    }
    uint8_t ck[16];
    for (int k = 0; k < 2; k++) {
        cookie_of(c->cookie_sec[k], from, ck);
        if (mfs_hs_mac2_ok(ck, buf, len))
            return 1;
    }
    cookie_of(c->cookie_sec[0], from, ck);
    uint8_t out[MFS_HS_COOKIE_LEN];
    size_t n = mfs_hs_cookie_write(
        c->skey.pub, ck, buf, len,
        &(mfs_wire_hdr){0, 0, c->mesh_tag, c->self, h->src, c->epoch, 0}, out);
    c->cfg.tx(c->cfg.tx_arg, from, out, n);
    c->cookies++;
    return 0;
}

/* An INIT that proves p's key comes from a boot epoch older than p's
 * current one. A restarted daemon never sends one (the old one is gone)
 * and a replay repeats its counter; rising counters from an older epoch
 * while the newer one lives mean two daemons run with one node's key (a
 * copied store directory): their ops would clash under one node id. Both
 * are cut off (as a removal, here only, until this daemon restarts or the
 * copy is removed and the node joins again). */
static void clone_check(mfs_sync_core *c, peer *p, uint64_t epoch,
                        uint64_t counter)
{
    if (epoch == p->clone_epoch && counter > p->clone_ctr)
        p->clone_n++;
    else if (epoch != p->clone_epoch)
        p->clone_n = 1;
    p->clone_epoch = epoch;
    p->clone_ctr = counter > p->clone_ctr ? counter : p->clone_ctr;
    struct mkey *k = mkey_of(c, p->id);
    if (p->clone_n < 3 || !k || k->cloned)
        return;
    k->cloned = 1;
    mfs_log(LOG_ERR,
            "sync: node %016llx runs twice (boot epochs %llu and %llu "
            "prove its key at once: a copy of its store directory?): both "
            "are refused, since their changes would clash under one node "
            "id; stop one, and make the copy a node of its own (`meshfs "
            "join` an invitation on it)",
            (unsigned long long)p->id, (unsigned long long)epoch,
            (unsigned long long)p->epoch);
    key_sync(c, p);
    if (p->state != MFS_PEER_DEAD)
        set_state(c, p, MFS_PEER_DEAD);
}

/* COOKIE: the member we started a handshake with is under load; our
 * next INIT carries a mac2 made with the cookie, at once. */
static void on_cookie(mfs_sync_core *c, const mfs_wire_hdr *h,
                      const uint8_t *buf, size_t len, peer *acct)
{
    peer *p = peer_by_id(c, h->src);
    uint8_t ck[16];
    if (!p || !p->hs_on || !p->has_key || h->dst != c->self ||
        mfs_hs_cookie_read(p->pub, p->init_dg, p->init_len, buf, len, ck)) {
        drop(c, acct, MFS_DROP_AUTH);
        return;
    }
    memcpy(p->cookie, ck, 16);
    p->cookie_t = c->now;
    p->hs_next = c->now; /* the next tick asks again */
}

static void on_init(mfs_sync_core *c, const mfs_addr *from,
                    const mfs_wire_hdr *h, const uint8_t *buf, size_t len,
                    peer *ap)
{
    mfs_noise st;
    mfs_hs_hello hello;
    peer *p = peer_by_id(c, h->src);
    peer *acct = p ? p : ap;
    if (len < MFS_HS_INIT_LEN(0) || !mfs_hs_mac1_ok(c->mac1, buf, len)) {
        drop(c, acct, MFS_DROP_AUTH);
        return;
    }
    if (!init_cookie_ok(c, from, h, buf, len)) {
        drop(c, acct, MFS_DROP_RATE);
        return;
    }
    if (mfs_hs_init_read(&st, &c->skey, c->mac1, buf, len, &hello)) {
        drop(c, acct, MFS_DROP_AUTH);
        return;
    }
    int rc = 0;
    if (p && (h->epoch < p->epoch || h->epoch < p->init_epoch ||
              (h->epoch == p->init_epoch && hello.counter <= p->init_ctr)))
        rc = MFS_DROP_REPLAY; /* a replayed or stale INIT */
    const uint8_t *k = member_pub(c, h->src);
    if (rc && k && !sodium_memcmp(k, st.rs, 32) && h->epoch < p->epoch)
        clone_check(c, p, h->epoch, hello.counter);
    if (!rc && (!k || sodium_memcmp(k, st.rs, 32))) {
        /* not a member's key: only an invitation admits it, to an id no
         * member holds */
        if (k || !hello.joinlen || !c->cfg.admit ||
            c->cfg.admit(c->cfg.arg, h->src, st.rs, hello.join,
                         hello.joinlen) != 0 ||
            mfs_sync_core_member_key(c, h->src, st.rs) != 0)
            rc = MFS_DROP_MEMBER;
    }
    uint8_t out[MFS_WIRE_MAX];
    mfs_wire_hdr rh = hdr_v3(c, MFS_WIRE_RESP, h->src);
    struct mkey *mk = mkey_of(c, h->src);
    if (rc == MFS_DROP_MEMBER && mk && mk->removed &&
        !sodium_memcmp(mk->pub, st.rs, 32)) {
        /* a removed member, proven by its INIT: say so, in fewer bytes */
        size_t rl = mfs_hs_removed_write(&st, &rh, out);
        c->cfg.tx(c->cfg.tx_arg, from, out, rl);
        if (!mk->told || c->now - mk->told >= 60000000u) {
            mk->told = c->now;
            mfs_log(LOG_WARNING,
                    "sync: refusing node %016llx: it was removed from the "
                    "mesh (meshfs remove); told it so",
                    (unsigned long long)h->src);
        }
    }
    ssize_t n = rc ? -1 : mfs_hs_resp_write(&st, &rh, wall_now(c), out);
    sess ns = {.born = c->now, .ok = 1};
    if (!rc && (n < 0 || mfs_noise_split(&st, ns.tx, ns.rx, NULL)))
        rc = MFS_DROP_AUTH;
    uint64_t counter = hello.counter;
    sodium_memzero(&hello, sizeof(hello));
    mfs_noise_wipe(&st);
    if (rc) {
        sess_wipe(&ns);
        drop(c, acct, rc);
        return;
    }
    /* ---- authenticated and fresh: commit ---- */
    int fresh = 0;
    if (!p) {
        if (ap && ap->id == 0) {
            p = ap;
            p->id = h->src;
        } else if (!(p = peer_new(c, h->src, from))) {
            sess_wipe(&ns);
            drop(c, NULL, MFS_DROP_PEERS);
            return;
        } else {
            p->addr_ok = 0;
        }
        p->epoch = h->epoch;
        fresh = 1;
    } else if (peer_epoch(c, p, h->epoch)) {
        sess_wipe(&p->cur); /* it lost them (our INIT may yet be answered) */
        sess_wipe(&p->prev);
        fresh = 1;
    }
    key_sync(c, p);
    p->init_epoch = h->epoch;
    p->init_ctr = counter;
    sess_wipe(&p->nxt);
    p->nxt = ns; /* ours once it seals with it (it has it after RESP) */
    sess_wipe(&ns);
    if (p->hs_on && c->self > p->id) { /* both started: its handshake wins */
        mfs_noise_wipe(&p->hs);
        p->hs_on = 0;
    }
    hs_heard(c, p, from, len, fresh);
    if (raw_tx(c, p, out, (size_t)n) > 0)
        c->hs_answered++;
}

static void on_resp(mfs_sync_core *c, const mfs_addr *from,
                    const mfs_wire_hdr *h, const uint8_t *buf, size_t len,
                    peer *ap)
{
    peer *p = peer_by_id(c, h->src);
    if (!p || !p->hs_on || h->epoch < p->epoch) {
        drop(c, p ? p : ap, p && p->hs_on ? MFS_DROP_EPOCH : MFS_DROP_AUTH);
        return;
    }
    mfs_noise st = p->hs; /* a forged RESP must not end ours */
    sess ns = {.born = c->now, .ok = 1};
    uint64_t wall = 0;
    if (mfs_hs_resp_read(&st, c->mac1, h, buf, len, &wall) ||
        mfs_noise_split(&st, ns.tx, ns.rx, NULL)) {
        mfs_noise_wipe(&st);
        drop(c, p, MFS_DROP_AUTH);
        return;
    }
    mfs_noise_wipe(&p->hs);
    p->hs_on = 0;
    p->hs_wait = 0;
    int fresh = peer_epoch(c, p, h->epoch);
    if (fresh) {
        sess_wipe(&p->cur);
        sess_wipe(&p->nxt);
    }
    sess_wipe(&p->prev);
    p->prev = p->cur;
    p->cur = ns;
    sess_wipe(&ns);
    c->hs_made++;
    /* its clock against ours, before any change of ours reaches it */
    uint32_t rtt = (uint32_t)min64(c->now - p->hs_sent_t, 0xffffffffu);
    if (rtt < 60000000u) {
        mfs_rtt_sample(&p->rtt, rtt, 0, 0);
        clock_sample(c, p, wall, rtt);
    }
    p->last_hb_tx = 0; /* seal something now: that confirms it */
    hs_heard(c, p, from, len, fresh);
}

/* REMOVED: the member we are handshaking with says we were removed; the
 * MAC shows it read our INIT. We stop asking it (once a minute). */
static void on_removed(mfs_sync_core *c, const mfs_wire_hdr *h,
                       const uint8_t *buf, size_t len, peer *acct)
{
    peer *p = peer_by_id(c, h->src);
    if (!p || !p->hs_on || h->dst != c->self ||
        mfs_hs_removed_check(&p->hs, buf, len)) {
        drop(c, acct, MFS_DROP_AUTH);
        return;
    }
    mfs_noise_wipe(&p->hs);
    p->hs_next = c->now + 60000000u; /* hs_on stays: no INIT until then */
    if (c->cfg.on_removed)
        c->cfg.on_removed(c->cfg.arg, h->src);
}

/* The key that opens a sealed datagram from p at from (per-node keys):
 * cur, else nxt (which then becomes cur: p has it), else prev. rc as
 * mfs_wire_open. */
static int open_sealed(mfs_sync_core *c, peer *p, const mfs_addr *from,
                       const uint8_t *buf, size_t len, uint8_t *pt)
{
    int rc = -EBADMSG;
    if (sess_live(c, &p->cur) &&
        (rc = mfs_wire_open(p->cur.rx, buf, len, pt)) >= 0)
        return rc;
    if (p->nxt.ok && (rc = mfs_wire_open(p->nxt.rx, buf, len, pt)) >= 0) {
        sess_wipe(&p->prev);
        p->prev = p->cur;
        p->cur = p->nxt;
        p->cur.born = c->now;
        sess_wipe(&p->nxt);
        c->hs_made++;
        /* sealed with keys only our RESP to this address gave: it gets
         * what we send there (QUIC's validation by handshake) */
        if (mfs_addr_eq(&p->addr, from))
            p->addr_ok = 1;
        return rc;
    }
    if (sess_live(c, &p->prev))
        rc = mfs_wire_open(p->prev.rx, buf, len, pt);
    return rc;
}

void mfs_sync_core_input(mfs_sync_core *c, uint64_t now_us,
                         const mfs_addr *from, const uint8_t *buf, size_t len)
{
    static __thread uint8_t pt[MFS_WIRE_PAYLOAD_MAX];
    static __thread mfs_frame fr[MFS_WIRE_MAX_FRAMES];
    mfs_wire_hdr h;
    if (now_us > c->now)
        c->now = now_us;
    peer *ap = peer_by_addr(c, from); /* only for accounting and rate */

    int rc = mfs_wire_hdr_decode(buf, len, &h);
    if (rc) {
        drop(c, ap, rc == -EPROTO ? MFS_DROP_VERSION : MFS_DROP_SIZE);
        return;
    }
    if (!c->ident && c->ident_ready && h.version == MFS_WIRE_VERSION_ID &&
        h.flags == MFS_WIRE_INIT && h.mesh == c->mesh_tag && h.dst == c->self &&
        h.src && h.src != c->self && len >= MFS_HS_INIT_LEN(0) &&
        mfs_hs_mac1_ok(c->mac1, buf, len)) {
        /* a mesh moving to per-node keys: a member that knows our key
         * moved (only members have it), so we do too */
        mfs_log(LOG_NOTICE,
                "sync: node %016llx speaks with per-node keys: so does this "
                "node now",
                (unsigned long long)h.src);
        mfs_sync_core_go_identity(c);
    }
    if ((h.version == MFS_WIRE_VERSION_ID) != (c->ident != 0)) {
        drop(c, ap, MFS_DROP_VERSION); /* the mesh key, or per-node keys */
        return;
    }
    if (h.mesh != c->mesh_tag) {
        drop(c, ap, MFS_DROP_MESH);
        return;
    }
    if ((h.dst != 0 && h.dst != c->self) || h.src == c->self || h.src == 0 ||
        (c->ident && !h.dst && h.flags != MFS_WIRE_PROBE)) {
        drop(c, ap, MFS_DROP_DST);
        return;
    }
    if (!ap && !rate_ok(c)) {
        drop(c, NULL, MFS_DROP_RATE);
        return;
    }
    peer *p = peer_by_id(c, h.src);
    peer *acct = p ? p : ap;
    switch (c->ident ? h.flags : MFS_WIRE_SEALED) {
    case MFS_WIRE_PROBE:
        on_probe(c, from, &h, len, acct);
        return;
    case MFS_WIRE_ANSWER:
        on_answer(c, &h, len, ap);
        return;
    case MFS_WIRE_INIT:
        on_init(c, from, &h, buf, len, ap);
        return;
    case MFS_WIRE_RESP:
        on_resp(c, from, &h, buf, len, ap);
        return;
    case MFS_WIRE_REMOVED:
        on_removed(c, &h, buf, len, acct);
        return;
    case MFS_WIRE_COOKIE:
        on_cookie(c, &h, buf, len, acct);
        return;
    }
    if (c->ident && (!p || !p->has_key)) {
        drop(c, acct, MFS_DROP_MEMBER); /* no session with it */
        return;
    }
    if (c->ident && h.epoch != p->epoch) {
        drop(c, acct, MFS_DROP_EPOCH);
        return;
    }
    if (p && h.epoch < p->epoch) {
        drop(c, acct, MFS_DROP_EPOCH);
        return;
    }
    int same_epoch = p && h.epoch == p->epoch;
    mfs_replay *win = p ? (h.dst ? &p->win : &p->win_anon) : NULL;
    if (same_epoch && mfs_replay_check(win, h.pn) != 0) {
        drop(c, acct, MFS_DROP_REPLAY);
        return;
    }
    rc = c->ident ? open_sealed(c, p, from, buf, len, pt)
                  : mfs_wire_open(c->key.key, buf, len, pt);
    if (rc < 0) {
        drop(c, acct, MFS_DROP_AUTH);
        return;
    }
    int n = mfs_wire_frames_parse(pt, (size_t)rc, c->cfg.max_msg, fr,
                                  MFS_WIRE_MAX_FRAMES);
    if (n < 0 || (h.dst == 0 && !frames_only_hb(fr, n))) {
        drop(c, acct, MFS_DROP_MALFORMED);
        return;
    }
    /* DATA frames are checked against our limits before any state changes
     * (for a new or restarted peer the receive state would be fresh). */
    if (p && same_epoch && !data_acceptable(c, p, fr, n)) {
        drop(c, acct, MFS_DROP_FLOW);
        return;
    }

    /* ---- authenticated and valid: commit ---- */
    int fresh = 0;
    if (!p) {
        peer *s = ap && ap->id == 0 ? ap : NULL;
        if (s) {
            s->id = h.src;
            p = s;
        } else if (!(p = peer_new(c, h.src, from))) {
            drop(c, NULL, MFS_DROP_PEERS);
            return;
        } else {
            p->addr_ok = 0;
        }
        p->epoch = h.epoch;
        fresh = 1;
    } else {
        fresh = peer_epoch(c, p, h.epoch);
    }
    if (fresh && !data_acceptable(c, p, fr, n)) {
        drop(c, p, MFS_DROP_FLOW);
        return;
    }
    mfs_replay_commit(h.dst ? &p->win : &p->win_anon, h.pn);
    if (h.dst && !mfs_addr_eq(&p->addr, from))
        peer_moved(c, p, from);
    if (!p->addr_ok && mfs_addr_eq(&p->addr, from))
        p->unval_in += len;
    note_wait(c, p);
    heard_from(c, p, len, fresh);

    int elicit = 0;
    for (int i = 0; i < n; i++) {
        const mfs_frame *f = &fr[i];
        switch (f->type) {
        case MFS_FR_HB:
            p->clock_flags = f->u.hb.clock;
            p->hb_echo = f->u.hb.t_us;
            p->hb_echo_rx_t = (uint32_t)c->now;
            p->hb_echo_set = 1;
            if (f->u.hb.echo_us && h.dst) {
                uint32_t rtt =
                    (uint32_t)c->now - f->u.hb.echo_us - f->u.hb.hold_us;
                if (rtt < 60000000u) {
                    mfs_rtt_sample(&p->rtt, rtt, 0, 0);
                    clock_sample(c, p, f->u.hb.wall_us, rtt);
                }
                if (!p->addr_ok && p->val_t_set &&
                    (int32_t)(f->u.hb.echo_us - p->val_t) >= 0)
                    p->addr_ok = 1;
            }
            if (f->u.hb.digest != member_digest(c) && c->now >= p->next_members)
                p->members_due = 1;
            if (!h.dst || !f->u.hb.echo_us)
                p->last_hb_tx = 0; /* answer a hello, or a peer that has
                                      not heard from us (a probe), now */
            break;
        case MFS_FR_ACK:
            on_ack(c, p, f);
            break;
        case MFS_FR_DATA:
            elicit = 1;
            note_data(c, p);
            on_data(c, p, f);
            break;
        case MFS_FR_MEMBERS:
            on_members(c, f);
            break;
        }
    }
    if (h.dst) {
        if (!p->rx_pkts || h.pn < p->rx_first_pn)
            p->rx_first_pn = h.pn;
        p->rx_pkts++;
        uint64_t prev_largest = p->rnr ? p->rhi[0] : 0;
        int had = p->rnr;
        rx_range_add(p, h.pn);
        if (elicit) {
            if (!p->ack_pending)
                p->ack_deadline = c->now + c->cfg.max_ack_delay_us;
            p->ack_pending++;
            if (had && h.pn != prev_largest + 1)
                p->ack_deadline = c->now; /* reordering or loss: ack now */
            if (h.pn == p->rhi[0])
                p->rx_largest_t = c->now;
        }
    }
}

/* ---- transmitting ---- */

/* Sends dg to p, within what an unvalidated address may get. */
static int raw_tx(mfs_sync_core *c, peer *p, const uint8_t *dg, size_t n)
{
    if (!p->addr_ok) {
        if (p->unval_out + n > p->unval_in)
            return -EAGAIN;
        p->unval_out += n;
    }
    c->cfg.tx(c->cfg.tx_arg, &p->addr, dg, n);
    p->st.bytes_out += n;
    p->st.dgrams_out++;
    p->last_tx = c->now;
    return (int)n;
}

static int emit(mfs_sync_core *c, peer *p, uint64_t dst, uint64_t pn,
                const uint8_t *pt, size_t ptlen)
{
    uint8_t dg[MFS_WIRE_MAX];
    mfs_wire_hdr h = {MFS_WIRE_VERSION, 0, c->mesh_tag, c->self, dst,
                      c->epoch,         pn};
    const uint8_t *key = c->key.key;
    if (c->ident) { /* the pair's session, which p opens */
        if (!dst || !sess_live(c, &p->cur))
            return -EAGAIN;
        h.version = MFS_WIRE_VERSION_ID;
        h.flags = MFS_WIRE_SEALED;
        key = p->cur.tx;
    }
    int n = mfs_wire_seal(key, &h, pt, ptlen, dg);
    if (n < 0)
        return n;
    return raw_tx(c, p, dg, (size_t)n);
}

void mfs_sync_core_set_clock_flags(mfs_sync_core *c, uint8_t flags)
{
    __atomic_store_n(&c->clock_flags, flags, __ATOMIC_RELAXED);
}

static uint64_t wall_now(const mfs_sync_core *c)
{
    return c->cfg.wall_us ? c->cfg.wall_us(c->cfg.arg, c->now) : 0;
}

static void put_hb(const mfs_sync_core *c, mfs_wbuf *w, uint32_t t,
                   uint32_t echo, uint32_t hold)
{
    mfs_wire_put_hb(w, t, echo, hold, member_digest(c), wall_now(c),
                    __atomic_load_n(&c->clock_flags, __ATOMIC_RELAXED));
}

/* A heartbeat that echoes ours, rtt after we sent it: the peer's wall
 * clock when it sent the heartbeat (t3) against ours now (t4), half the
 * round trip in between (NTP's offset ((t2 - t1) + (t3 - t4)) / 2, the
 * peer's hold t3 - t2 taken out of rtt). Asymmetric delay errs by at
 * most half the round trip: the sample of least rtt among the last
 * CLOCK_SAMPLES is the estimate (NTP's clock filter), unless a clock was
 * set: a sample further from an earlier one than both their uncertainties
 * and CLOCK_STEP_US starts the filter over. */
static void clock_sample(mfs_sync_core *c, peer *p, uint64_t wall, uint32_t rtt)
{
    uint64_t mine = wall_now(c);
    if (!wall || !mine)
        return;
    int64_t off = (int64_t)(wall - mine) + (int64_t)(rtt / 2);
    /* a clock set meanwhile (either one): the samples before the step
     * say nothing of now, however short their round trips */
    unsigned n = p->clk_n < CLOCK_SAMPLES ? p->clk_n : CLOCK_SAMPLES;
    for (unsigned k = 0; k < n; k++) {
        int64_t d = off - p->clk_off[k];
        if ((d < 0 ? -d : d) >
            (int64_t)(rtt / 2 + p->clk_rtt[k] / 2) + CLOCK_STEP_US) {
            p->clk_n = 0;
            break;
        }
    }
    unsigned k = p->clk_n++ % CLOCK_SAMPLES;
    p->clk_off[k] = off;
    p->clk_rtt[k] = rtt;
}

/* Anonymous hello to a seed whose node id we do not know yet. */
static void send_hello(mfs_sync_core *c, peer *p)
{
    uint8_t pt[MFS_WIRE_PAYLOAD_MAX];
    mfs_wbuf w;
    mfs_wbuf_init(&w, pt, sizeof(pt));
    put_hb(c, &w, (uint32_t)c->now | 1, 0, 0);
    size_t padto = HELLO_PAD - MFS_WIRE_HDR - MFS_WIRE_TAG;
    memset(pt + w.len, 0, padto - w.len);
    if (emit(c, p, 0, p->anon_pn, pt, padto) > 0)
        p->anon_pn++;
    p->last_hb_tx = c->now;
}

static int ack_due(const mfs_sync_core *c, const peer *p)
{
    return p->ack_pending &&
           (p->ack_pending >= c->cfg.ack_every || c->now >= p->ack_deadline);
}

static int data_waiting(const peer *p)
{
    for (int ch = 0; ch < 2; ch++)
        if (p->retx[ch].n || p->newq[ch].head)
            return 1;
    return 0;
}

/* Next fragment to send: retransmissions first, urgent before bulk. */
static int next_frag(peer *p, fref *out)
{
    for (int ch = 0; ch < 2; ch++) {
        fref r;
        while (refq_pop(&p->retx[ch], &r)) {
            omsg *m = p->slot[r.msg % MSG_WIN];
            if (m && m->id == r.msg && !bit_get(m->acked, r.frag)) {
                *out = r;
                p->st.retransmits++;
                return 1;
            }
        }
        omsg *m = p->newq[ch].head;
        if (m) {
            out->msg = m->id;
            out->frag = m->next_frag++;
            if (m->next_frag >= m->nfrag) {
                mq_pop(&p->newq[ch]);
                m->queued = 0;
            }
            return 1;
        }
    }
    return 0;
}

static uint32_t frag_len(const omsg *m, uint32_t k)
{
    if (m->len == 0)
        return 0;
    uint32_t off = k * MFS_WIRE_FRAG;
    return m->len - off < MFS_WIRE_FRAG ? m->len - off : MFS_WIRE_FRAG;
}

/* Builds and sends one packet to p. want_data: fill with DATA frames.
 * Returns bytes sent, 0 if there was nothing to send, <0 if blocked. */
static int send_packet(mfs_sync_core *c, peer *p, int want_data)
{
    uint8_t pt[MFS_WIRE_PAYLOAD_MAX];
    mfs_wbuf w;
    int with_ack = p->ack_pending > 0 && p->rnr > 0;
    int with_hb = c->now >= p->last_hb_tx + hb_period(c, p) * 1000ull;
    sent_pkt *s = &p->ring[p->next_pn % SENT_RING];

    /* the ring must not wrap over a packet still in flight */
    if (s->pn < p->next_pn && s->in_flight && s->pn >= p->sent_lo &&
        p->next_pn - s->pn >= SENT_RING) {
        on_lost(c, p, s);
        p->sent_lo = s->pn + 1;
    }
    mfs_wbuf_init(&w, pt, sizeof(pt));
    if (with_ack) {
        unsigned nr = (unsigned)p->rnr;
        unsigned cap = want_data ? ACK_RANGES_WITH_DATA : MFS_WIRE_MAX_RANGES;
        if (nr > cap)
            nr = cap;
        uint32_t delay = (uint32_t)min64(c->now - p->rx_largest_t, 0xffffffffu);
        mfs_wire_put_ack(&w, delay, p->rlo, p->rhi, nr);
    }
    if (with_hb) {
        uint32_t t = (uint32_t)c->now | 1;
        uint32_t hold = p->hb_echo_set ? (uint32_t)c->now - p->hb_echo_rx_t : 0;
        /* watched: an echo of 0 asks for an answer at once, so silence
         * shows within a heartbeat whatever the peer's own pace */
        int ask = c->now < c->watch_until;
        put_hb(c, &w, t, p->hb_echo_set && !ask ? p->hb_echo : 0, hold);
        if (!p->val_t_set) {
            p->val_t = t;
            p->val_t_set = 1;
        }
    }
    unsigned nref = 0;
    fref refs[MAX_REFS];
    if (want_data) {
        fref r;
        while (nref < MAX_REFS &&
               sizeof(pt) - w.len >= MFS_WIRE_DATA_HDR + MFS_WIRE_FRAG &&
               next_frag(p, &r)) {
            omsg *m = p->slot[r.msg % MSG_WIN];
            uint32_t fl = frag_len(m, r.frag);
            mfs_wire_put_data(
                &w, m->mtype, m->id, p->base, m->len, r.frag * MFS_WIRE_FRAG,
                m->data + (size_t)r.frag * MFS_WIRE_FRAG, (uint16_t)fl);
            refs[nref++] = r;
            /* small messages: keep packing while there is room */
        }
    }
    if (w.err || w.len == 0)
        return 0;
    int n = emit(c, p, p->id, p->next_pn, pt, w.len);
    if (n < 0) {
        /* blocked by the amplification limit: put fragments back */
        for (unsigned i = 0; i < nref; i++)
            refq_push(&p->retx[p->slot[refs[i].msg % MSG_WIN]->chan], refs[i]);
        return n;
    }
    if (with_ack) {
        p->ack_pending = 0;
    }
    if (with_hb)
        p->last_hb_tx = c->now;
    s->pn = p->next_pn;
    s->t = c->now;
    s->size = (uint16_t)n;
    s->nref = (uint8_t)nref;
    memcpy(s->ref, refs, nref * sizeof(fref));
    s->in_flight = nref > 0;
    if (nref) {
        p->bytes_in_flight += (uint64_t)n;
        p->last_elicit_t = c->now;
        note_data(c, p);
    }
    p->next_pn++;
    return n;
}

static void send_members(mfs_sync_core *c, peer *p)
{
    uint8_t pt[MFS_WIRE_PAYLOAD_MAX];
    mfs_member_entry e[MFS_WIRE_MAX_MEMBERS];
    size_t i = 0;
    while (i < c->npeers) {
        unsigned n = 0;
        for (; i < c->npeers && n < MFS_WIRE_MAX_MEMBERS; i++) {
            peer *q = c->peers[i];
            if (q->id && q != p && addr_to_entry(&q->addr, &e[n]) == 0) {
                e[n].id = q->id;
                n++;
            }
        }
        if (!n)
            break;
        mfs_wbuf w;
        mfs_wbuf_init(&w, pt, sizeof(pt));
        mfs_wire_put_members(&w, e, n);
        if (w.err || emit(c, p, p->id, p->next_pn, pt, w.len) < 0)
            break;
        p->ring[p->next_pn % SENT_RING].pn = p->next_pn;
        p->ring[p->next_pn % SENT_RING].in_flight = 0;
        p->ring[p->next_pn % SENT_RING].nref = 0;
        p->next_pn++;
    }
    p->members_due = 0;
    p->next_members = c->now + MEMBERS_EVERY_US;
}

static uint64_t pto_deadline(const mfs_sync_core *c, const peer *p)
{
    if (!p->bytes_in_flight)
        return UINT64_MAX;
    unsigned cap = p->state == MFS_PEER_ALIVE ? 2 : 5;
    unsigned k = p->pto_count < cap ? p->pto_count : cap;
    uint64_t pto =
        mfs_rtt_pto(&p->rtt, c->cfg.max_ack_delay_us, GRANULARITY_US);
    return p->last_elicit_t + (pto << k);
}

static void on_pto(mfs_sync_core *c, peer *p)
{
    p->pto_count++;
    p->st.ptos++;
    if (p->pto_count >= 3) /* persistent congestion */
        p->cwnd = 4ull * MFS_WIRE_MAX;
    /* probe: resend the fragments of the oldest 2 packets that still have
     * unacked ones (a packet whose fragments all got through in
     * retransmissions has nothing to resend: skipping it, not counting it,
     * keeps a lost message behind it from waiting forever) */
    unsigned found = 0;
    for (uint64_t pn = p->sent_lo; pn < p->next_pn && found < 2; pn++) {
        sent_pkt *s = &p->ring[pn % SENT_RING];
        if (s->pn == pn && s->in_flight && s->nref) {
            unsigned pushed = 0;
            for (unsigned i = 0; i < s->nref; i++) {
                omsg *m = p->slot[s->ref[i].msg % MSG_WIN];
                if (m && m->id == s->ref[i].msg &&
                    !bit_get(m->acked, s->ref[i].frag)) {
                    refq_push(&p->retx[m->chan], s->ref[i]);
                    pushed++;
                }
            }
            found += pushed > 0;
        }
    }
    p->probes = 2;
    p->last_elicit_t = c->now;
}

/* Silence makes a peer suspect, then dead; only a datagram from it makes
 * a dead peer alive again (the thresholds grow when the link turns quiet,
 * which must not revive a dead peer to suspect and restart the sending
 * and the dead_since count). */
static void update_state(mfs_sync_core *c, peer *p)
{
    if (p->id == 0 || p->state == MFS_PEER_DEAD)
        return;
    uint64_t sus, dead;
    uint64_t quiet = c->now - silence(c, p, &sus, &dead);
    if (quiet >= dead)
        set_state(c, p, MFS_PEER_DEAD);
    else if (quiet >= sus)
        set_state(c, p, MFS_PEER_SUSPECT);
}

/* When silence would next change p's state. */
static uint64_t state_deadline(const mfs_sync_core *c, const peer *p)
{
    uint64_t sus, dead, from = silence(c, p, &sus, &dead);
    if (p->state == MFS_PEER_ALIVE)
        return from + sus;
    if (p->state == MFS_PEER_SUSPECT)
        return from + dead;
    return UINT64_MAX;
}

uint64_t mfs_sync_core_tick(mfs_sync_core *c, uint64_t now_us)
{
    if (now_us > c->now)
        c->now = now_us;
    uint64_t next = c->now + 1000000;
    for (size_t i = 0; i < c->npeers; i++) {
        peer *p = c->peers[i];
        if (p->id == 0) { /* unanswered seed: hello now and then */
            if (c->now >= p->last_hb_tx + c->cfg.probe_ms * 1000ull ||
                p->last_hb_tx == 0) {
                if (c->ident)
                    send_probe(c, p);
                else
                    send_hello(c, p);
            }
            next = min64(next, p->last_hb_tx + c->cfg.probe_ms * 1000ull);
            continue;
        }
        update_state(c, p);
        if (c->ident) {
            hs_tick(c, p, &next);
            if (!sess_live(c, &p->cur)) { /* nothing to seal with yet */
                next = min64(next, state_deadline(c, p));
                continue;
            }
        }
        if (p->loss_time && c->now >= p->loss_time)
            detect_losses(c, p);
        if (p->state != MFS_PEER_DEAD && c->now >= pto_deadline(c, p))
            on_pto(c, p);
        if (p->members_due && c->now >= p->next_members)
            send_members(c, p);

        /* data while the window allows (probes may exceed it) */
        int sent_any = 0;
        if (p->state != MFS_PEER_DEAD) {
            admit(c, p);
            while (
                data_waiting(p) &&
                (p->bytes_in_flight + MFS_WIRE_MAX <= p->cwnd || p->probes)) {
                int n = send_packet(c, p, 1);
                if (n <= 0)
                    break;
                sent_any = 1;
                if (p->probes)
                    p->probes--;
            }
        }
        p->probes = 0;
        uint64_t hb_at = p->last_hb_tx + hb_period(c, p) * 1000ull;
        if (!sent_any && (ack_due(c, p) || c->now >= hb_at))
            send_packet(c, p, 0);

        /* deadlines */
        hb_at = p->last_hb_tx + hb_period(c, p) * 1000ull;
        next = min64(next, hb_at);
        if (p->ack_pending)
            next = min64(next, p->ack_deadline);
        if (p->loss_time)
            next = min64(next, p->loss_time);
        if (p->state != MFS_PEER_DEAD)
            next = min64(next, pto_deadline(c, p));
        if (p->members_due)
            next = min64(next, p->next_members);
        next = min64(next, state_deadline(c, p));
        if (c->cfg.idle_hb_ms && !link_quiet(c, p)) /* when it turns quiet */
            next = min64(next, p->last_data_t + c->cfg.idle_after_ms * 1000ull);
    }
    return next > c->now ? next : c->now + 1;
}

size_t mfs_sync_core_peers(const mfs_sync_core *c, mfs_peer_stat *out,
                           size_t cap)
{
    for (size_t i = 0; i < c->npeers && i < cap; i++) {
        const peer *p = c->peers[i];
        mfs_peer_stat *s = &out[i];
        *s = p->st;
        s->id = p->id;
        s->epoch = p->epoch;
        s->addr = p->addr;
        s->state = p->state;
        s->addr_validated = p->addr_ok;
        s->srtt_us = p->rtt.smoothed;
        s->rttvar_us = p->rtt.var;
        s->min_rtt_us = p->rtt.min;
        s->loss_out = p->loss_ewma;
        uint64_t span = p->rnr ? p->rhi[0] - p->rx_first_pn + 1 : 0;
        s->loss_in = span ? 1.0 - (double)p->rx_pkts / (double)span : 0;
        if (s->loss_in < 0)
            s->loss_in = 0;
        s->last_rx_us = p->last_rx;
        s->rx_wait_max_us = p->wait_t0 + 2 * WAIT_WINDOW_US <= c->now ? 0
                            : p->wait_t0 + WAIT_WINDOW_US <= c->now
                                ? p->wait_cur
                                : max64(p->wait_cur, p->wait_prev);
        s->queued_bytes = p->queued_bytes;
        s->rx_buffered = p->rx_bytes;
        s->cwnd = p->cwnd;
        unsigned n = p->clk_n < CLOCK_SAMPLES ? p->clk_n : CLOCK_SAMPLES;
        s->clock_ok = n > 0;
        for (unsigned k = 0, best = 0; k < n; k++)
            if (k == 0 || p->clk_rtt[k] < p->clk_rtt[best]) {
                best = k;
                s->clock_offset_us = p->clk_off[k];
                s->clock_err_us = p->clk_rtt[k] / 2 + 1;
            }
        s->clock_flags = p->clock_flags;
        s->has_key = p->has_key;
        s->session_age_us = p->cur.ok ? c->now - p->cur.born + 1 : 0;
        s->handshaking = p->hs_on;
    }
    return c->npeers;
}
