/*
 * sim.c - deterministic simulator (see sim.h). Must never read a real
 * clock or use any randomness but its own seeded generator.
 */
#include "sim.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define SIM_MAX 64

typedef struct ev {
    uint64_t t, seq;
    unsigned to;
    mfs_addr from;
    size_t len;
    uint8_t buf[];
} ev;

typedef struct node {
    mfs_sim *sim;
    unsigned idx;
    mfs_sync_core *core;
    uint64_t deadline;
    unsigned restarts;
    mfs_noise_keypair kp;     /* mfs_sim_identities */
    uint8_t removed[SIM_MAX]; /* its core was told node j is no member */
} node;

struct mfs_sim {
    mfs_sync_config cfg;
    mfs_sim_hooks hooks;
    struct mfs_mesh_key key;
    mfs_sim_net net;
    uint64_t seed, rng, now, seq;
    unsigned n;
    int ident; /* mfs_sim_identities */
    node nodes[SIM_MAX];
    mfs_addr addrs[SIM_MAX];
    uint8_t cut[SIM_MAX][SIM_MAX];
    uint64_t extra[SIM_MAX][SIM_MAX]; /* one-way delay added a -> b */
    ev **heap;
    size_t hn, hcap;
};

static uint64_t sim_rand(mfs_sim *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double sim_unit(mfs_sim *s)
{
    return (double)(sim_rand(s) >> 11) / 9007199254740992.0;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int ev_less(const ev *a, const ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int heap_push(mfs_sim *s, ev *e)
{
    if (s->hn == s->hcap) {
        size_t nc = s->hcap ? s->hcap * 2 : 1024;
        ev **h = realloc(s->heap, nc * sizeof(*h));
        if (!h)
            return -ENOMEM;
        s->heap = h;
        s->hcap = nc;
    }
    size_t i = s->hn++;
    while (i > 0 && ev_less(e, s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
    return 0;
}

static ev *heap_pop(mfs_sim *s)
{
    ev *top = s->heap[0], *last = s->heap[--s->hn];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const ev *mv = last;
        if (l < s->hn && ev_less(s->heap[l], mv)) {
            m = l;
            mv = s->heap[l];
        }
        if (r < s->hn && ev_less(s->heap[r], mv))
            m = r;
        if (m == i)
            break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->hn)
        s->heap[i] = last;
    return top;
}

static int addr_node(const mfs_sim *s, const mfs_addr *a)
{
    for (unsigned i = 0; i < s->n; i++)
        if (mfs_addr_eq(&s->addrs[i], a))
            return (int)i;
    return -1;
}

static void schedule(mfs_sim *s, unsigned to, const mfs_addr *from,
                     const uint8_t *buf, size_t len, uint64_t delay)
{
    ev *e = malloc(sizeof(*e) + len);
    if (!e)
        return;
    e->t = s->now + delay;
    e->seq = s->seq++;
    e->to = to;
    e->from = *from;
    e->len = len;
    memcpy(e->buf, buf, len);
    if (heap_push(s, e))
        free(e);
}

static uint64_t net_delay(mfs_sim *s)
{
    uint64_t span = s->net.delay_max_us > s->net.delay_min_us
                        ? s->net.delay_max_us - s->net.delay_min_us
                        : 0;
    return s->net.delay_min_us + (span ? sim_rand(s) % (span + 1) : 0);
}

static void sim_tx(void *arg, const mfs_addr *to, const uint8_t *buf,
                   size_t len)
{
    node *nd = arg;
    mfs_sim *s = nd->sim;
    if (s->hooks.tap)
        s->hooks.tap(s->hooks.arg, nd->idx, to, buf, len);
    int dst = addr_node(s, to);
    if (dst < 0 || s->cut[nd->idx][dst])
        return;
    if (sim_unit(s) < s->net.loss)
        return;
    uint64_t extra = s->extra[nd->idx][dst];
    schedule(s, (unsigned)dst, &s->addrs[nd->idx], buf, len,
             net_delay(s) + extra);
    if (sim_unit(s) < s->net.dup)
        schedule(s, (unsigned)dst, &s->addrs[nd->idx], buf, len,
                 net_delay(s) + extra);
}

static void sim_on_msg(void *arg, uint64_t from, uint8_t mtype,
                       const uint8_t *data, size_t len)
{
    node *nd = arg;
    mfs_sim *s = nd->sim;
    if (s->hooks.on_msg)
        s->hooks.on_msg(s->hooks.arg, nd->idx, from, mtype, data, len);
}

static void sim_on_peer(void *arg, uint64_t id, int state, uint64_t epoch)
{
    node *nd = arg;
    mfs_sim *s = nd->sim;
    if (s->hooks.on_peer)
        s->hooks.on_peer(s->hooks.arg, nd->idx, id, state, epoch);
}

#define SIM_UNIX_US 1700000000000000ull /* the simulator's time 0 */

static uint64_t sim_wall(void *arg, uint64_t now_us)
{
    node *nd = arg;
    mfs_sim *s = nd->sim;
    return s->hooks.wall_us ? s->hooks.wall_us(s->hooks.arg, nd->idx, now_us)
                            : SIM_UNIX_US + now_us;
}

/* Per-node keys on node i's core: its own, and every member's. */
static int node_keys(mfs_sim *s, unsigned i)
{
    node *nd = &s->nodes[i];
    int rc = mfs_sync_core_set_identity(nd->core, &nd->kp);
    for (unsigned j = 0; j < s->n && !rc; j++)
        if (j != i && !nd->removed[j])
            rc = mfs_sync_core_member_key(nd->core, mfs_sim_id(s, j),
                                          s->nodes[j].kp.pub);
    return rc;
}

static int node_boot(mfs_sim *s, unsigned i)
{
    node *nd = &s->nodes[i];
    mfs_sync_config cfg = s->cfg;
    cfg.arg = nd;
    cfg.tx_arg = nd;
    cfg.tx = sim_tx;
    cfg.on_msg = sim_on_msg;
    cfg.on_peer = sim_on_peer;
    cfg.wall_us = sim_wall;
    cfg.rng_seed = mix(s->seed ^ (i * 7919ull) ^ nd->restarts);
    uint64_t epoch = (s->now + 1) * 64 + nd->restarts;
    int rc = mfs_sync_core_new(&cfg, &s->key, mix(s->seed + i + 1) | 1, epoch,
                               s->now, &nd->core);
    nd->deadline = s->now;
    if (!rc && s->ident)
        rc = node_keys(s, i);
    return rc;
}

int mfs_sim_identities(mfs_sim *s)
{
    s->ident = 1;
    for (unsigned i = 0; i < s->n; i++) {
        uint8_t sec[32];
        for (unsigned k = 0; k < 32; k++)
            sec[k] = (uint8_t)(mix(s->seed * 31 + i * 64 + k) & 0xff);
        mfs_noise_keypair_from(&s->nodes[i].kp, sec);
    }
    for (unsigned i = 0; i < s->n; i++) {
        int rc = node_keys(s, i);
        if (rc)
            return rc;
    }
    return 0;
}

const mfs_noise_keypair *mfs_sim_keypair(const mfs_sim *s, unsigned i)
{
    return &s->nodes[i].kp;
}

int mfs_sim_member_remove(mfs_sim *s, unsigned a, unsigned b)
{
    s->nodes[a].removed[b] = 1;
    s->nodes[a].deadline = s->now;
    return mfs_sync_core_member_key(s->nodes[a].core, mfs_sim_id(s, b), NULL);
}

int mfs_sim_new(uint64_t seed, unsigned n, const mfs_sync_config *cfg,
                const mfs_sim_hooks *hooks, mfs_sim **out)
{
    if (n == 0 || n > SIM_MAX)
        return -EINVAL;
    mfs_sim *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    if (hooks)
        s->hooks = *hooks;
    s->seed = seed;
    s->rng = mix(seed) | 1;
    s->n = n;
    s->now = 1000000;
    for (unsigned k = 0; k < MFS_MESH_KEY_LEN; k++)
        s->key.key[k] = (uint8_t)(mix(seed + 100 + k) & 0xff);
    s->key.mesh_id = mix(seed + 99);
    for (unsigned i = 0; i < n; i++) {
        struct sockaddr_in *a = (void *)&s->addrs[i].ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(7000);
        a->sin_addr.s_addr = htonl(0x0a000001u + i);
        s->addrs[i].len = sizeof(*a);
        s->nodes[i].sim = s;
        s->nodes[i].idx = i;
        if (node_boot(s, i)) {
            mfs_sim_free(s);
            return -ENOMEM;
        }
    }
    *out = s;
    return 0;
}

void mfs_sim_free(mfs_sim *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++)
        mfs_sync_core_free(s->nodes[i].core);
    for (size_t i = 0; i < s->hn; i++)
        free(s->heap[i]);
    free(s->heap);
    free(s);
}

void mfs_sim_set_net(mfs_sim *s, const mfs_sim_net *net)
{
    s->net = *net;
}

void mfs_sim_link(mfs_sim *s, unsigned a, unsigned b, int up)
{
    s->cut[a][b] = s->cut[b][a] = (uint8_t)!up;
}

void mfs_sim_extra_delay(mfs_sim *s, unsigned a, unsigned b, uint64_t us)
{
    if (a < s->n && b < s->n)
        s->extra[a][b] = us;
}

void mfs_sim_isolate(mfs_sim *s, unsigned a, int isolated)
{
    for (unsigned b = 0; b < s->n; b++)
        if (b != a)
            mfs_sim_link(s, a, b, !isolated);
}

int mfs_sim_seed(mfs_sim *s, unsigned a, unsigned b)
{
    int rc = mfs_sync_core_add_seed(s->nodes[a].core, s->now, &s->addrs[b]);
    s->nodes[a].deadline = s->now;
    return rc;
}

static void tick(mfs_sim *s, unsigned i)
{
    s->nodes[i].deadline = mfs_sync_core_tick(s->nodes[i].core, s->now);
}

void mfs_sim_run(mfs_sim *s, uint64_t until_us)
{
    for (;;) {
        uint64_t t = s->hn ? s->heap[0]->t : UINT64_MAX;
        unsigned who = SIM_MAX;
        for (unsigned i = 0; i < s->n; i++)
            if (s->nodes[i].deadline < t) {
                t = s->nodes[i].deadline;
                who = i;
            }
        if (t > until_us)
            break;
        if (t > s->now)
            s->now = t;
        if (who != SIM_MAX) {
            tick(s, who);
            continue;
        }
        ev *e = heap_pop(s);
        mfs_sync_core_input(s->nodes[e->to].core, s->now, &e->from, e->buf,
                            e->len);
        tick(s, e->to);
        free(e);
    }
    if (until_us > s->now)
        s->now = until_us;
}

uint64_t mfs_sim_now(const mfs_sim *s)
{
    return s->now;
}

int mfs_sim_send(mfs_sim *s, unsigned from, unsigned to, int channel,
                 uint8_t mtype, const void *data, size_t len)
{
    int rc = mfs_sync_core_send(s->nodes[from].core, mfs_sim_id(s, to), channel,
                                mtype, data, len);
    if (rc == 0)
        s->nodes[from].deadline = s->now;
    return rc;
}

void mfs_sim_inject(mfs_sim *s, unsigned to, const mfs_addr *from,
                    const uint8_t *buf, size_t len)
{
    mfs_sync_core_input(s->nodes[to].core, s->now, from, buf, len);
    tick(s, to);
}

int mfs_sim_restart(mfs_sim *s, unsigned i)
{
    mfs_sync_core_free(s->nodes[i].core);
    s->nodes[i].core = NULL;
    s->nodes[i].restarts++;
    int rc = node_boot(s, i);
    if (rc)
        return rc;
    for (unsigned j = 0; j < s->n; j++)
        if (j != i)
            mfs_sim_seed(s, i, j);
    return 0;
}

mfs_sync_core *mfs_sim_core(mfs_sim *s, unsigned i)
{
    return s->nodes[i].core;
}

uint64_t mfs_sim_id(const mfs_sim *s, unsigned i)
{
    return mix(s->seed + i + 1) | 1;
}

const mfs_addr *mfs_sim_addr(const mfs_sim *s, unsigned i)
{
    return &s->addrs[i];
}

size_t mfs_sim_in_flight(const mfs_sim *s)
{
    return s->hn;
}

int mfs_sim_peer_state(mfs_sim *s, unsigned a, unsigned b)
{
    mfs_peer_stat st[SIM_MAX];
    size_t n = mfs_sync_core_peers(s->nodes[a].core, st, SIM_MAX);
    for (size_t k = 0; k < n && k < SIM_MAX; k++)
        if (st[k].id == mfs_sim_id(s, b))
            return st[k].state;
    return -1;
}
