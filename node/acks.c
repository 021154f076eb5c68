/*
 * acks.c - the write concern (DESIGN P10): with `--acks N`, fsync() returns
 * once N other members hold the change durably, or fails with EIO after
 * the timeout (docs/REPLICATION.md "Write concern").
 *
 * fs/ hands a request that made a change durable here (mfs_fs_set_acks)
 * to fs_acks, which notes this node's last op and asks the engine to wait
 * for N members to hold up to it (mfs_repl_await_held: the members answer
 * HELD once their store synced it, chunks and all). The FUSE thread goes
 * back to the kernel at once; the answer is sent from the replication
 * thread when the members have answered, or the timeout passed. What
 * fails is only the guarantee: the change stays committed here and
 * replicates as any other. `meshfs sync` (node/control.c) waits the same
 * way through mfs_node_own_seq, mfs_node_acks_ask and mfs_node_acks_held.
 */
#include "node.h"

#include "fs.h"
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAT_WINDOW_US 60000000u /* p50/p99 of the waits met this recently */
#define FAIL_LOG_US 10000000u   /* a failure is logged at most this often */

/* One request waiting for the members. */
typedef struct ack_req {
    mfs_node *m;
    mfs_fs_ackwait *w;
    uint64_t seq, hlc, t0_us;
} ack_req;

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint32_t timeout_ms(const mfs_acks_config *c)
{
    return c->timeout_ms ? c->timeout_ms : MFS_ACKS_TIMEOUT_DEFAULT_MS;
}

/* A failure's reason, for the log and for its counter. */
static const char *why(int err)
{
    switch (err) {
    case -ETIMEDOUT:
        return "timed out";
    case -EHOSTUNREACH:
        return "fewer members alive than asked for";
    case -ESHUTDOWN:
        return "unmounting";
    default:
        return strerror(-err);
    }
}

/* The engine's verdict on a wait (its thread, its lock held; or the
 * caller's when decided at once): counted, logged, answered. */
static void acks_done(void *arg, int err)
{
    ack_req *a = arg;
    mfs_node_acks *k = &a->m->acks;
    uint64_t now = mono_us();
    bool log_it = false;
    pthread_mutex_lock(&k->mu);
    k->waiting--;
    if (!err) {
        k->met++;
        uint64_t us = now - a->t0_us;
        k->lat_us[k->lat_next] = us < UINT32_MAX ? (uint32_t)us : UINT32_MAX;
        k->lat_at[k->lat_next] = now;
        k->lat_next = (k->lat_next + 1) % MFS_ACKS_LAT_N;
    } else {
        if (err == -ETIMEDOUT)
            k->failed_timeout++;
        else if (err == -EHOSTUNREACH)
            k->failed_peers++;
        else
            k->failed_other++;
        log_it = !k->log_us || now - k->log_us >= FAIL_LOG_US;
        if (log_it)
            k->log_us = now;
    }
    unsigned n = k->cfg.n;
    pthread_mutex_unlock(&k->mu);
    if (log_it)
        mfs_log(LOG_WARNING,
                "acks: an fsync waited for %u member(s) to hold this "
                "node's changes up to op %" PRIu64 " and failed with EIO "
                "(%s, after %" PRIu64 " ms); the change is committed here "
                "and replicates later (further failures are counted in "
                "`meshfs stat`, logged at most every 10 s)",
                n, a->seq, why(err), (now - a->t0_us) / 1000);
    mfs_fs_acked(a->w, err);
    free(a);
}

/* This node's last op and its hlc as the calling thread sees the store
 * (the changes of a request it just made included). 0 or -errno. */
static int own_seq_now(mfs_node *m, uint64_t *seq, uint64_t *hlc)
{
    mfs_vv v;
    uint64_t self = mfs_store_node_id(m->store);
    int rc = mfs_store_vv(m->store, &v);
    if (rc)
        return rc;
    *seq = mfs_vv_get(&v, self);
    mfs_vv_free(&v);
    return mfs_store_op_hlc(m->store, self, *seq, hlc);
}

/* fs/'s hook: the change is committed (and, for fsync, durable) here. */
static void fs_acks(void *arg, mfs_fs_ackwait *w)
{
    mfs_node *m = arg;
    mfs_node_acks *k = &m->acks;
    ack_req *a = calloc(1, sizeof(*a));
    int rc = a ? own_seq_now(m, &a->seq, &a->hlc) : -ENOMEM;
    if (rc) {
        free(a);
        mfs_fs_acked(w, rc);
        return;
    }
    a->m = m;
    a->w = w;
    a->t0_us = mono_us();
    /* An fsync's ops left with its record of the intent log (acks_logged).
     * Others (a close's, an fsync the log could not take) leave with
     * the commit: now, not after the group's idle wait (1 ms), and not
     * waited for here. Starting it for an fsync's too put its flushes
     * beside the members' on the disk: --acks 1 p50 0.77-0.80 ms with
     * it, 0.51-0.58 without (bench/acks, docs/BENCH-acks.md) */
    if (!mfs_repl_logged_has(m->repl, a->seq))
        mfs_store_commit_start(m->store);
    pthread_mutex_lock(&k->mu);
    k->waiting++;
    mfs_acks_config c = k->cfg;
    pthread_mutex_unlock(&k->mu);
    rc = mfs_repl_await_held(m->repl, m->net.now_us(m->net.ctx), a->seq, a->hlc,
                             c.n, timeout_ms(&c), c.wait, acks_done, a);
    if (rc) {
        acks_done(a, rc);
        return;
    }
    mfs_node_wake(m); /* its timeout joins the engine's timers */
}

/* The store's logged callback (the fsync's thread, no store lock): our
 * ops a record of the intent log made durable leave for the members at
 * the engine's next turn, not with the commit a flush or two later. */
static void acks_logged(void *arg, uint64_t from, uint64_t to,
                        const uint8_t *ops, size_t len)
{
    mfs_node *m = arg;
    mfs_repl_logged(m->repl, from, to, ops, len);
    mfs_node_wake(m);
}

void mfs_node_acks_attach(mfs_node *m, struct mfs_fs *fs,
                          const mfs_acks_config *cfg)
{
    mfs_node_acks *k = &m->acks;
    if (!k->inited) {
        pthread_mutex_init(&k->mu, NULL);
        k->inited = 1;
    }
    pthread_mutex_lock(&k->mu);
    k->cfg = *cfg;
    if (k->cfg.n > MFS_ACKS_MAX)
        k->cfg.n = MFS_ACKS_MAX;
    pthread_mutex_unlock(&k->mu);
    if (cfg->n && fs) {
        k->fs = fs;
        if (m->repl) {
            mfs_repl_set_ask_pushes(m->repl, 1);
            mfs_store_set_logged_cb(m->store, acks_logged, m);
        }
        mfs_fs_set_acks(fs, fs_acks, m, cfg->on_close);
        mfs_log(LOG_NOTICE,
                "acks: fsync%s returns once %u other member(s) hold the "
                "change durably (else EIO after %u ms%s)",
                cfg->on_close ? " and close" : "", cfg->n, timeout_ms(cfg),
                cfg->wait ? "; waits for members that are away"
                          : "; at once with fewer members alive");
    }
}

void mfs_node_acks_detach(mfs_node *m)
{
    if (m->acks.fs) {
        mfs_fs_set_acks(m->acks.fs, NULL, NULL, 0);
        mfs_store_set_logged_cb(m->store, NULL, NULL);
    }
    if (m->repl)
        mfs_repl_set_ask_pushes(m->repl, 0);
    m->acks.fs = NULL;
    if (m->repl)
        mfs_repl_await_cancel(m->repl, -ESHUTDOWN);
}

int mfs_node_own_seq(mfs_node *m, uint64_t *seq)
{
    uint64_t hlc;
    int rc = mfs_store_commit(m->store, 0);
    return rc ? rc : own_seq_now(m, seq, &hlc);
}

void mfs_node_acks_ask(mfs_node *m, uint64_t seq)
{
    mfs_repl_ask_held(m->repl, seq);
    mfs_node_wake(m);
}

/* Is id among out[0..n)? */
static bool listed(const mfs_node_held *out, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (out[i].peer == id)
            return true;
    return false;
}

size_t mfs_node_acks_held(mfs_node *m, uint64_t seq, mfs_node_held *out,
                          size_t max)
{
    mfs_repl_status st;
    uint64_t self = mfs_store_node_id(m->store), hlc;
    if (mfs_store_op_hlc(m->store, self, seq, &hlc))
        hlc = UINT64_MAX; /* (unknown: a version waiting holds it back) */
    mfs_repl_peer *p = calloc(max ? max : 1, sizeof(*p));
    if (!p)
        return 0;
    size_t n = mfs_repl_status_get(m->repl, &st, p, max), k = 0;
    for (size_t i = 0; i < n && i < max; i++) {
        if (p[i].removed)
            continue;
        out[k].peer = p[i].id;
        /* up to seq only if its versions up to seq are whole there */
        uint64_t below = p[i].held < seq ? p[i].held : seq - 1;
        out[k].held = mfs_repl_holds(p[i].held, p[i].held_hlc, seq, hlc)
                          ? p[i].held
                          : below;
        out[k].alive = p[i].state != MFS_PEER_DEAD && !p[i].left;
        k++;
    }
    free(p);
    /* members the engine has not heard of yet (just mounted): every other
     * origin of the store's ops but the removed ones, away until heard */
    mfs_vv v;
    uint64_t removed[64];
    ssize_t nr = mfs_store_members_removed(m->store, removed, 64);
    if (mfs_store_vv(m->store, &v) == 0) {
        for (size_t i = 0; i < v.n && k < max; i++) {
            uint64_t id = v.e[i].node;
            bool gone = false;
            for (ssize_t j = 0; j < nr && !gone; j++)
                gone = removed[j] == id;
            if (id == self || gone || listed(out, k, id))
                continue;
            out[k++] = (mfs_node_held){.peer = id};
        }
        mfs_vv_free(&v);
    }
    return k;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void mfs_node_acks_report(mfs_node *m, void (*line)(void *, const char *),
                          void *arg)
{
    mfs_node_acks *k = &m->acks;
    static uint32_t v[MFS_ACKS_LAT_N]; /* (under k->mu) */
    char b[96];
    if (!k->inited) {
        line(arg, "acks_n 0");
        return;
    }
    uint64_t now = mono_us();
    uint64_t early = m->repl ? mfs_repl_early_pushes(m->repl) : 0;
    pthread_mutex_lock(&k->mu);
    size_t n = 0;
    for (size_t i = 0; i < MFS_ACKS_LAT_N; i++)
        if (k->lat_at[i] && now - k->lat_at[i] < LAT_WINDOW_US)
            v[n++] = k->lat_us[i];
    qsort(v, n, sizeof(*v), cmp_u32);
    const struct {
        const char *key;
        uint64_t val;
    } kv[] = {
        {"acks_n", k->cfg.n},
        {"acks_timeout_ms", timeout_ms(&k->cfg)},
        {"acks_wait", (uint64_t)k->cfg.wait},
        {"acks_on_close", (uint64_t)k->cfg.on_close},
        {"acks_waiting", k->waiting},
        {"acks_met", k->met},
        {"acks_failed_timeout", k->failed_timeout},
        {"acks_failed_peers", k->failed_peers},
        {"acks_failed_other", k->failed_other},
        {"acks_p50_us", n ? v[(n - 1) / 2] : 0},
        {"acks_p99_us", n ? v[(n - 1) * 99 / 100] : 0},
        {"acks_early", early},
    };
    pthread_mutex_unlock(&k->mu);
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
        snprintf(b, sizeof b, "%s %" PRIu64, kv[i].key, kv[i].val);
        line(arg, b);
    }
}
