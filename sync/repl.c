/*
 * repl.c - replication between mounts (see repl.h for the protocol).
 *
 * State per peer: the version vector it last reported (vv), what we have
 * pushed to it since (pushed, >= vv), and its missing chunks. Correctness
 * rests on STATE + PULL only: every node learns each live peer's vector and
 * pulls what it lacks until it lacks nothing; pushes and the chunk fetch
 * order are optimisations. Everything here runs under r->mu so that
 * mfs_repl_status_get() can read from another thread.
 */
#include "repl.h"

#include "codec.h"
#include "core.h"
#include "lock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_PEERS 256
#define MAX_VV 65536    /* entries in a vector on the wire */
#define WANT_MAX 256    /* hashes per WANT message */
#define REQ_SLOTS 32768 /* chunk request table (power of two) */
#define REQ_MAX 16384   /* entries in it */
#define PEND_MAX 64     /* chunks received and stored in one transaction */
#define SMALL_EXTRA 64  /* requests beyond the window for small versions */
#define SMALL_CHUNK 4096 /* chunks this small are sent on the urgent channel */
#define BULK_OPS_BYTES (16u << 10) /* OPS this large go on the bulk channel */
#define RELAY_MAX_OPS 1000 /* a peer lacking more gets only our own pushed */
#define PUSH_SMALL_MAX 64 /* small files' chunks sent behind a push */
#define CHUNK_MSG_CAP (MFS_HASH_LEN + 5 + compressBound(MFS_CHUNK_SIZE))
#define MAX_TRIED 8     /* peers remembered as lacking a chunk */
#define NOCHUNK_RETRY_US 1000000u
#define OP_BYTES_EST 100       /* bytes per op, for the byte estimates */
#define SCAN_DIRTY_US 2000u    /* rescan wanted chunks after a change */
#define SCAN_EVERY_US 100000u  /* and this often while requests are open */
#define FULL_SCAN_US 1000000u  /* from the first wanted hash, this often */
#define SETTLE_EVERY_US 50000u /* the settled vector is looked at */

/* OPS_SNAP (with OPS_LAST): the asker lacks ops we folded: it needs a
 * snapshot */
enum { OPS_ZLIB = 1, OPS_LAST = 2, OPS_MORE = 4, OPS_SNAP = 8 };
#define OPS_HEAD_LEN 17 /* u64 req, u8 flags, u32 total, u32 raw */
enum { CHUNK_ZLIB = 1 };
enum { NOCHUNK_ABSENT = 0, NOCHUNK_BUSY = 1 };

typedef struct rpeer rpeer;
struct rpeer {
    uint64_t id;
    uint64_t epoch;
    int state;
    bool heard;
    bool left;          /* said BYE; cleared when it restarts (a new epoch): its
                           messages sent before BYE may still arrive after it */
    bool removed;       /* removed from the mesh (meshfs remove): ignored */
    uint64_t refused_sent_us; /* when we last told it so (REFUSED) */
    uint64_t state_seq; /* highest STATE sequence seen from it */
    mfs_vv vv;          /* as it last reported */
    mfs_vv pushed;      /* vv plus what we pushed since */
    uint64_t wanted;    /* chunks it reported missing */
    int64_t skew_ms;
    uint64_t last_state_us, state_sent_us;
    bool state_now;           /* send it our STATE at the next tick */
    uint32_t chunk_inflight;  /* our WANTs to it not yet answered */
    uint64_t pull_backoff_us; /* no pull from it before this */
    uint64_t lack_since_us;   /* since when it holds ops we lack (0: none) */
    uint64_t ops_sent, ops_recv, chunks_sent, chunks_recv;
    uint64_t bytes_sent, bytes_recv;
    /* write concern: how far it said it holds our ops (HELD; held_seq
     * orders its HELDs), and how far it asked us to hold its own
     * (ASKHELD: when, what we told it last, when we last asked our store
     * for a sync for it) */
    uint64_t held, held_hlc, held_seq;
    uint64_t ask_seq, ask_us, held_told, held_told_hlc, sync_us;
    bool held_tell; /* answer it at the next tick, news or not */
};

typedef struct held_wait held_wait;

typedef struct creq {
    uint8_t hash[MFS_HASH_LEN];
    bool used;
    uint64_t peer;      /* asked; 0 = not asked now */
    uint64_t asked_us;  /* when */
    uint64_t retry_us;  /* not asked: ask nobody before this */
    uint64_t expire_us; /* not asked: forget the entry (and tried) then */
    uint64_t tried[MAX_TRIED]; /* peers that said they lack it */
    unsigned ntried;
    unsigned arriving; /* copies received, not stored yet: not asked again */
} creq;

/* Chunks received, stored together (one transaction): a job. */
typedef struct cjob {
    struct cjob *next;
    size_t n;
    size_t bytes; /* of data */
    int rc;
    mfs_chunk_in c[PEND_MAX];
    uint64_t peer[PEND_MAX];
} cjob;

#define CREQ_FORGET_US 30000000u

/* A small version's chunk to ask for at the next tick (fetch_small). */
typedef struct small_want {
    uint8_t hash[MFS_HASH_LEN];
    uint64_t origin, from; /* its publisher; the peer whose batch it was */
} small_want;
#define SMALL_Q 256

struct mfs_repl {
    pthread_mutex_t mu;
    mfs_store *store;
    small_want smallq[SMALL_Q]; /* for fetch_small */
    size_t nsmallq;
    mfs_repl_config cfg;
    atomic_int changed;
    uint64_t now;
    mfs_vv my; /* our vector, refreshed after every change */
    /* what we hold durably (mfs_store_vv_durable): what STATE reports, so
     * that a change is settled only once every member holds it on disk */
    mfs_vv durable;
    /* the durable vector as of the last STATE broadcast */
    mfs_vv told;
    bool have_told;
    uint64_t node;
    uint64_t state_seq;
    uint64_t state_changed_us; /* vv changed, STATEs due (0 = none) */
    uint64_t state_bcast_us;   /* last STATE broadcast */
    rpeer peers[MAX_PEERS];
    size_t npeers;
    /* the one pull in flight; done when its last OPS says how many
     * messages it had and that many arrived (they come in any order) */
    uint64_t pull_peer, pull_id, pull_sent_us;
    uint32_t pull_got, pull_total;
    /* OPS messages being applied in slices (see "applying in slices"),
     * oldest first; apply_busy mirrors "apply_head != NULL" for
     * mfs_repl_work_pending() */
    struct apply_job *apply_head, **apply_tail;
    atomic_int apply_busy;
    /* chunk fetching */
    creq *req;
    size_t nreq;
    bool chunks_dirty;
    uint64_t chunk_scan_us;
    uint64_t full_scan_us;  /* last scan of the wanted list from its first */
    bool scan_cursor;       /* the next scan starts after scan_after */
    bool rescan_all;        /* a request was given up: scan from the first */
    uint8_t scan_after[MFS_HASH_LEN];
    uint64_t wanted_local; /* chunks our versions wait for (last count) */
    uint64_t expire_us;    /* last sweep of the request table */
    /* chunks received, stored together at the next tick (one commit):
     * small ones (<= SMALL_CHUNK) apart, stored first */
    cjob *job[2];
    /* the chunk writer (see "storing chunks"): jobs handed over (todo),
     * stored (done); wr_busy counts the first and the one being stored */
    pthread_mutex_t wr_mu;
    pthread_cond_t wr_work, wr_room;
    pthread_t wr_thread;
    bool wr_started, wr_stop;
    cjob *wr_todo, **wr_todo_tail, *wr_done, **wr_done_tail;
    size_t wr_busy;
    size_t jobs_out;   /* the engine's count: handed over, not taken back */
    uint64_t wr_bytes; /* chunk bytes handed over and not stored yet */
    uint64_t wr_max;   /* the most wr_bytes has been */
    /* rates */
    uint64_t rx_ops, rx_bytes, rate_ops0, rate_bytes0, rate_at_us;
    double ops_rate, bytes_rate;
    uint64_t bad_msgs, pulls, pushes;
    uint8_t *buf; /* scratch: one batch / one chunk */
    size_t bufcap;
    uint8_t *zbuf; /* scratch: compressed */
    size_t zcap;
    z_stream zs, is; /* kept deflate and inflate streams */
    bool zs_ok, is_ok;
    /* collection: the settled vector given to the store, and the
     * candidate that becomes it once we hold what it waits for */
    mfs_vv settled, cand, cand_wait;
    bool have_settled, have_cand;
    uint64_t removed[64]; /* removed members (the store's registry) */
    size_t nremoved;
    uint64_t refused, refused_log_us; /* messages of removed members */
    /* this node was removed from the mesh: the members refuse it */
    bool removed_self;
    uint64_t removed_by, removed_log_us;
    uint64_t settle_us;               /* last look */
    bool joined; /* an origin: every member counts us (member_join) */
    bool ask_pushes; /* pushes of our ops ask for HELD (write concern) */
    /* mfs_repl_logged's queue: logged_mu (MFS_LOCK_REPL_LOGGED, a leaf),
     * as an fsync queues under the store's wal_mu */
    pthread_mutex_t logged_mu;
    struct logged_ops *logged, **logged_tail;
    size_t nlogged;
    uint64_t logged_to;    /* (atomic) the last op queued so */
    uint64_t early_pushes; /* pushes of ops sent with their log record */
    /* snapshots: the one we serve (built once, kept while asked for), a
     * file of the store's (NULL: none), and the build under way (NULL:
     * none), which a thread of its own may run */
    struct snap_file *snap_out;
    struct snap_build *snap_build;
    uint64_t snap_out_id, snap_out_built_us, snap_out_used_us, snaps_served;
    /* and the one we fetch: window [snap_off, + SNAP_WINDOW) asked for,
     * snap_mask its pieces that arrived (written to snap_in's file) */
    uint64_t snap_peer, snap_req, snap_id, snap_asked_us;
    struct snap_file *snap_in;
    size_t snap_total, snap_off;
    uint32_t snap_mask, snap_tries;
    uint64_t snaps_installed, snap_retry_us, snap_started_us;
    int snap_refused;
    /* the install of the one fetched, once whole (NULL: none), which a
     * thread of its own may run: while it does, OPS are dropped, no op is
     * applied, and no pull or chunk fetch starts ("installing") */
    struct snap_inst *snap_inst;
    /* write concern: open waits, oldest first; our HELDs' numbering; when
     * the waits ask the live members again */
    held_wait *waits;
    uint64_t held_msg_seq, ask_again_us;
};

void mfs_repl_config_default(mfs_repl_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->state_ms = 15000;
    cfg->coalesce_ms = 5;
    cfg->batch_bytes = 256 * 1024;
    cfg->pull_bytes = 4 * 1024 * 1024;
    cfg->push_bytes = 1024 * 1024;
    cfg->chunk_window = 8 * 1024 * 1024;
    cfg->chunk_timeout_ms = 10000;
    cfg->pull_timeout_ms = 10000;
    cfg->pull_grace_ms = 100;
}

/* Something changed what we want or whom to ask: look at the wanted list
 * again soon, from its first hash (fetch_chunks). */
static void rescan(mfs_repl *r)
{
    r->chunks_dirty = true;
    r->rescan_all = true;
}

static uint64_t wall_ms(mfs_repl *r)
{
    if (r->cfg.wall_ms)
        return r->cfg.wall_ms(r->cfg.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int scratch(uint8_t **p, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    uint8_t *n = realloc(*p, need);
    if (!n)
        return -ENOMEM;
    *p = n;
    *cap = need;
    return 0;
}

/* ---- vectors ------------------------------------------------------------ */

static void bad_msg(mfs_repl *r, const rpeer *p, const char *where);

static int vv_copy(mfs_vv *dst, const mfs_vv *src)
{
    mfs_vv_entry *e = malloc((src->n ? src->n : 1) * sizeof(*e));
    if (!e)
        return -ENOMEM;
    memcpy(e, src->e, src->n * sizeof(*e));
    free(dst->e);
    dst->e = e;
    dst->n = src->n;
    return 0;
}

/* dst = max(dst, src) entrywise. */
static int vv_merge(mfs_vv *dst, const mfs_vv *src)
{
    mfs_vv tmp = {0};
    tmp.e = malloc((dst->n + src->n + 1) * sizeof(*tmp.e));
    if (!tmp.e)
        return -ENOMEM;
    size_t i = 0, j = 0;
    while (i < dst->n || j < src->n) {
        if (j >= src->n || (i < dst->n && dst->e[i].node < src->e[j].node))
            tmp.e[tmp.n++] = dst->e[i++];
        else if (i >= dst->n || src->e[j].node < dst->e[i].node)
            tmp.e[tmp.n++] = src->e[j++];
        else {
            mfs_vv_entry e = dst->e[i++];
            if (src->e[j].seq > e.seq)
                e.seq = src->e[j].seq;
            j++;
            tmp.e[tmp.n++] = e;
        }
    }
    free(dst->e);
    *dst = tmp;
    return 0;
}

static void put_vv(mfs_wbuf *w, const mfs_vv *vv)
{
    mfs_put_u32(w, (uint32_t)vv->n);
    for (size_t i = 0; i < vv->n; i++) {
        mfs_put_u64(w, vv->e[i].node);
        mfs_put_u64(w, vv->e[i].seq);
    }
}

/* Reads a vector: sorted, nonzero nodes. */
static int get_vv(mfs_rbuf *rb, mfs_vv *out)
{
    out->n = 0;
    out->e = NULL;
    uint32_t n = mfs_get_u32(rb);
    if (rb->err || n > MAX_VV || (size_t)n * 16 > mfs_rbuf_left(rb))
        return -EBADMSG;
    out->n = 0;
    out->e = malloc((n ? n : 1) * sizeof(*out->e));
    if (!out->e)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        out->e[i].node = mfs_get_u64(rb);
        out->e[i].seq = mfs_get_u64(rb);
        if (!out->e[i].node || (i && out->e[i].node <= out->e[i - 1].node)) {
            mfs_vv_free(out);
            return -EBADMSG;
        }
        out->n++;
    }
    if (rb->err) {
        mfs_vv_free(out);
        return -EBADMSG;
    }
    return 0;
}

static bool is_removed(const mfs_repl *r, uint64_t id)
{
    for (size_t i = 0; i < r->nremoved; i++)
        if (r->removed[i] == id)
            return true;
    return false;
}

/* This node is out of the mesh: by = the member that refused it (0: the
 * member registry says so). Logged once a minute. */
static void self_removed(mfs_repl *r, uint64_t by)
{
    r->removed_self = true;
    if (by)
        r->removed_by = by;
    if (r->removed_log_us && r->now - r->removed_log_us < 60000000u)
        return;
    r->removed_log_us = r->now ? r->now : 1;
    char who[40] = "";
    if (by)
        snprintf(who, sizeof who, " (node %016" PRIx64 " refuses it)", by);
    mfs_log(LOG_ERR,
            "sync: this node (%016" PRIx64 ") was removed from the mesh%s: "
            "the members refuse its changes, and changes made here no "
            "longer reach them; to take part again, `meshfs join` a new "
            "invitation on this store (it is kept aside, and its changes "
            "the mesh lacks are copied to /lost+found)",
            r->node, who);
}

static void refresh_my(mfs_repl *r)
{
    mfs_vv v;
    if (mfs_store_vv(r->store, &v) == 0) {
        mfs_vv_free(&r->my);
        r->my = v;
    }
    if (mfs_store_vv_durable(r->store, &v) == 0) {
        mfs_vv_free(&r->durable);
        r->durable = v;
    }
    ssize_t n = mfs_store_members_removed(r->store, r->removed, 64);
    if (n >= 0) {
        r->nremoved = (size_t)n < 64 ? (size_t)n : 64;
        if (is_removed(r, r->node))
            self_removed(r, 0);
        for (size_t i = 0; i < r->npeers; i++) {
            rpeer *p = &r->peers[i];
            bool was = p->removed;
            p->removed = is_removed(r, p->id);
            if (p->removed && !was)
                mfs_log(LOG_NOTICE,
                        "sync: node %016" PRIx64 " was removed from the mesh: "
                        "its messages are refused from now on",
                        p->id);
        }
    }
}

/* ---- peers -------------------------------------------------------------- */

/* A message that does not parse: counted, logged, otherwise ignored. */
static void bad_msg(mfs_repl *r, const rpeer *p, const char *where)
{
    r->bad_msgs++;
    mfs_log(LOG_INFO,
            "sync: dropped a malformed message from %016" PRIx64 " (%s)", p->id,
            where);
}

static rpeer *peer_find(mfs_repl *r, uint64_t id)
{
    for (size_t i = 0; i < r->npeers; i++)
        if (r->peers[i].id == id)
            return &r->peers[i];
    return NULL;
}

static rpeer *peer_get(mfs_repl *r, uint64_t id)
{
    rpeer *p = peer_find(r, id);
    if (p || !id || id == r->node || r->npeers == MAX_PEERS)
        return p;
    p = &r->peers[r->npeers++];
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->state = MFS_PEER_ALIVE;
    p->state_now = true;
    p->removed = is_removed(r, id);
    return p;
}

static bool peer_live(const rpeer *p)
{
    return p->state != MFS_PEER_DEAD && !p->left && !p->removed;
}

static int send_msg(mfs_repl *r, rpeer *p, int channel, uint8_t mtype,
                    const void *data, size_t len)
{
    int rc = r->cfg.send(r->cfg.arg, p->id, channel, mtype, data, len);
    if (rc == 0)
        p->bytes_sent += len;
    return rc;
}

/* ---- compression ----------------------------------------------------------
 */

/* Compresses in (level 1) into r->zbuf when that shrinks it; a probe of the
 * first 4 KiB skips data that will not shrink. Returns the compressed length
 * or 0 to send as is. */
/* Order-0 entropy of p in bits per byte: a 4 KiB sample of data that
 * deflate cannot shrink (already compressed or encrypted) is near 8. */
static double entropy_bits(const uint8_t *p, size_t n)
{
    uint32_t count[256] = {0};
    for (size_t i = 0; i < n; i++)
        count[p[i]]++;
    double h = 0;
    for (int i = 0; i < 256; i++)
        if (count[i]) {
            double f = (double)count[i] / (double)n;
            h -= f * log2(f);
        }
    return h;
}

/* Compresses in (zlib level 1) into r->zbuf when that shrinks it. Data
 * whose first 4 KiB look random is sent as is without trying: deflate
 * costs about 1 ms per 64 KiB here, more than sending it. One deflate
 * stream is kept and reset (compress2() allocates and clears its tables
 * on every call). Returns the compressed length or 0 to send as is. */
static size_t maybe_compress(mfs_repl *r, const uint8_t *in, size_t len)
{
    if (len < 256)
        return 0;
    if (entropy_bits(in, len < 4096 ? len : 4096) > 7.5)
        return 0;
    if (scratch(&r->zbuf, &r->zcap, compressBound(len)))
        return 0;
    if (!r->zs_ok) {
        if (deflateInit(&r->zs, 1) != Z_OK)
            return 0;
        r->zs_ok = true;
    } else if (deflateReset(&r->zs) != Z_OK) {
        return 0;
    }
    r->zs.next_in = (Bytef *)in;
    r->zs.avail_in = (uInt)len;
    r->zs.next_out = r->zbuf;
    r->zs.avail_out = (uInt)(len - 1); /* it must shrink */
    if (deflate(&r->zs, Z_FINISH) != Z_STREAM_END)
        return 0;
    return (size_t)r->zs.total_out;
}

/* Inflates exactly raw bytes into r->buf. */
static int inflate_into(mfs_repl *r, const uint8_t *z, size_t zl, size_t raw)
{
    if (scratch(&r->buf, &r->bufcap, raw ? raw : 1))
        return -ENOMEM;
    if (!r->is_ok) {
        if (inflateInit(&r->is) != Z_OK)
            return -ENOMEM;
        r->is_ok = true;
    } else if (inflateReset(&r->is) != Z_OK) {
        return -EBADMSG;
    }
    r->is.next_in = (Bytef *)z;
    r->is.avail_in = (uInt)zl;
    r->is.next_out = r->buf;
    r->is.avail_out = (uInt)raw;
    int rc = inflate(&r->is, Z_FINISH);
    if (rc != Z_STREAM_END || r->is.total_out != raw || r->is.avail_in)
        return -EBADMSG;
    return 0;
}

/* A message's payload: *data as is, or inflated into r->buf when zlib;
 * false (counted as a bad message from p) when it does not inflate to
 * exactly raw bytes. */
static bool payload(mfs_repl *r, rpeer *p, bool zlib, const uint8_t **data,
                    size_t len, size_t raw, const char *where)
{
    if (!zlib)
        return true;
    if (inflate_into(r, *data, len, raw) < 0) {
        bad_msg(r, p, where);
        return false;
    }
    *data = r->buf;
    return true;
}

/* ---- STATE ----------------------------------------------------------------
 */

static void send_state(mfs_repl *r, rpeer *p)
{
    size_t cap = 64 + (r->my.n + r->durable.n) * 16;
    uint8_t *b = malloc(cap);
    if (!b)
        return;
    mfs_wbuf w;
    mfs_wbuf_init(&w, b, cap);
    mfs_put_u64(&w, ++r->state_seq);
    mfs_put_u64(&w, wall_ms(r));
    mfs_put_u64(&w, r->wanted_local);
    /* the durable vector: a peer that counts an op as held here must not
     * lose it to a power cut here (it lags the committed one by at most a
     * commit, or ~20 ms once idle); ops sent again meanwhile are no-ops */
    put_vv(&w, &r->durable);
    if (!w.err)
        send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_STATE, b, w.len);
    p->state_sent_us = r->now; /* failed (peer dead): on_peer re-arms it */
    p->state_now = false;
    free(b);
}

static void maybe_pull(mfs_repl *r);
static uint64_t lack_note(mfs_repl *r, rpeer *p);

static void on_state(mfs_repl *r, rpeer *p, mfs_rbuf *rb)
{
    uint64_t seq = mfs_get_u64(rb);
    uint64_t their_ms = mfs_get_u64(rb);
    uint64_t wanted = mfs_get_u64(rb);
    mfs_vv vv = {0};
    if (rb->err || get_vv(rb, &vv) < 0 || mfs_rbuf_left(rb)) {
        mfs_vv_free(&vv);
        bad_msg(r, p, __func__);
        return;
    }
    if (seq <= p->state_seq && p->heard) {
        mfs_vv_free(&vv); /* an older report overtaken by a newer one */
        return;
    }
    if (!p->heard)
        p->state_now = true; /* first word from it: answer with ours */
    p->state_seq = seq;
    p->heard = true;
    mfs_vv_free(&p->vv);
    p->vv = vv;
    vv_merge(&p->pushed, &p->vv);
    p->wanted = wanted;
    p->last_state_us = r->now;
    p->skew_ms = (int64_t)their_ms - (int64_t)wall_ms(r);
    if (lack_note(r, p) > 0)
        maybe_pull(r);
    if (wanted == 0 && r->wanted_local)
        rescan(r); /* it may hold chunks others lacked */
}

/* ---- PULL / OPS -------------------------------------------------------- */

/* The ops p holds that we lack, and since when it has held some. */
static uint64_t lack_note(mfs_repl *r, rpeer *p)
{
    uint64_t m = mfs_vv_missing(&p->vv, &r->my);
    if (!m)
        p->lack_since_us = 0;
    else if (!p->lack_since_us)
        p->lack_since_us = r->now ? r->now : 1;
    return m;
}

/* Has p's lack lasted the grace? A change a peer just made reaches us by
 * its push; the STATE that tells of it goes on the urgent channel and
 * may overtake a large push (a version with a long chunk list goes on
 * the bulk channel), and a pull then would fetch the same ops again. */
static bool lack_due(const mfs_repl *r, const rpeer *p)
{
    return r->now - p->lack_since_us >= (uint64_t)r->cfg.pull_grace_ms * 1000;
}

static void maybe_pull(mfs_repl *r)
{
    if (r->pull_peer &&
        r->now - r->pull_sent_us < (uint64_t)r->cfg.pull_timeout_ms * 1000)
        return;
    if (r->snap_peer || r->snap_retry_us > r->now)
        return; /* a snapshot first (snap_tick) */
    rpeer *best = NULL;
    uint64_t most = 0;
    for (size_t i = 0; i < r->npeers; i++) {
        rpeer *p = &r->peers[i];
        if (!peer_live(p) || !p->heard || p->pull_backoff_us > r->now)
            continue;
        uint64_t m = lack_note(r, p);
        if (m > most && lack_due(r, p)) {
            most = m;
            best = p;
        }
    }
    r->pull_peer = 0;
    if (!best)
        return;
    size_t cap = 32 + r->my.n * 16;
    uint8_t *b = malloc(cap);
    if (!b)
        return;
    mfs_wbuf w;
    mfs_wbuf_init(&w, b, cap);
    mfs_put_u64(&w, ++r->pull_id);
    mfs_put_u32(&w, r->cfg.pull_bytes);
    put_vv(&w, &r->my);
    if (!w.err &&
        send_msg(r, best, MFS_SYNC_URGENT, MFS_MT_PULL, b, w.len) == 0) {
        r->pull_peer = best->id;
        r->pull_sent_us = r->now;
        r->pull_got = 0;
        r->pull_total = 0;
        mfs_log(LOG_DEBUG,
                "sync: pull %" PRIu64 " from %016" PRIx64 " (%" PRIu64
                " ops missing)",
                r->pull_id, best->id, most);
        r->pulls++;
    }
    free(b);
}

/* Encodes and sends one OPS message. */
static int send_ops(mfs_repl *r, rpeer *p, uint64_t req, uint8_t flags,
                    uint32_t total, const uint8_t *batch, size_t len)
{
    size_t zl = maybe_compress(r, batch, len);
    size_t cap = 32 + (zl ? zl : len);
    uint8_t *b = malloc(cap);
    if (!b)
        return -ENOMEM;
    mfs_wbuf w;
    mfs_wbuf_init(&w, b, cap);
    mfs_put_u64(&w, req);
    mfs_put_u8(&w, (uint8_t)(flags | (zl ? OPS_ZLIB : 0)));
    mfs_put_u32(&w, total);
    mfs_put_u32(&w, (uint32_t)len);
    mfs_put_bytes(&w, zl ? r->zbuf : batch, zl ? zl : len);
    /* a push of a few ops (a change just made) goes ahead of chunks: a
     * version is of no use before its op. A pull's answer or a large push
     * (a catch-up) goes with the chunks (mfs_repl_msg_bulk) */
    int ch = mfs_repl_msg_bulk(MFS_MT_OPS, b, w.len) ? MFS_SYNC_BULK
                                                     : MFS_SYNC_URGENT;
    int rc = w.err ? w.err : send_msg(r, p, ch, MFS_MT_OPS, b, w.len);
    free(b);
    return rc;
}

static void on_pull(mfs_repl *r, rpeer *p, mfs_rbuf *rb)
{
    uint64_t req = mfs_get_u64(rb);
    uint32_t want = mfs_get_u32(rb);
    mfs_vv have = {0};
    if (rb->err || get_vv(rb, &have) < 0 || mfs_rbuf_left(rb)) {
        mfs_vv_free(&have);
        bad_msg(r, p, __func__);
        return;
    }
    if (want > 64u * 1024 * 1024)
        want = 64u * 1024 * 1024;
    mfs_log(LOG_DEBUG,
            "sync: pull %" PRIu64 " from %016" PRIx64 " (vector of %zu)", req,
            p->id, have.n);
    size_t cap = r->cfg.batch_bytes;
    if (scratch(&r->buf, &r->bufcap, cap)) {
        mfs_vv_free(&have);
        return;
    }
    uint64_t sent = 0;
    uint32_t msgs = 0;
    for (;;) {
        ssize_t n = mfs_store_ops_since(r->store, &have, r->buf, cap);
        if (n == -ENOBUFS) { /* one action larger than a batch */
            cap *= 4;
            if (cap > 64u * 1024 * 1024 || scratch(&r->buf, &r->bufcap, cap))
                n = 0;
            else
                continue;
        }
        if (n == -ESTALE) { /* it needs what we folded: a snapshot */
            send_ops(r, p, req, OPS_LAST | OPS_SNAP, msgs + 1, NULL, 0);
            mfs_log(LOG_INFO,
                    "sync: peer %016" PRIx64 " lacks ops this node has "
                    "folded: it is told to fetch a snapshot",
                    p->id);
            break;
        }
        if (n < 0)
            n = 0;
        mfs_vv next = {0};
        ssize_t k = 0;
        if (n > 0 && (vv_copy(&next, &have) < 0 ||
                      (k = mfs_batch_scan(r->buf, (size_t)n, &next)) < 0)) {
            mfs_vv_free(&next);
            n = 0;
        }
        sent += (uint64_t)n;
        bool last = n == 0 || sent >= want;
        uint8_t flags = last ? (uint8_t)(OPS_LAST | (n ? OPS_MORE : 0)) : 0;
        int rc =
            send_ops(r, p, req, flags, last ? msgs + 1 : 0, r->buf, (size_t)n);
        mfs_log(LOG_DEBUG, "sync: answer %" PRIu64 ": %zd bytes, %zd ops: %s",
                req, n, k, rc < 0 ? strerror(-rc) : "sent");
        if (rc < 0 && n > 0) { /* queue full: end the answer here */
            mfs_vv_free(&next);
            send_ops(r, p, req, OPS_LAST | OPS_MORE, msgs + 1, NULL, 0);
            break;
        }
        msgs++;
        if (n > 0) {
            mfs_vv_free(&have);
            have = next;
            p->ops_sent += (uint64_t)k;
        }
        if (last)
            break;
    }
    /* what we sent it is now "pushed" too (a vector below our floors is
     * not: it is sent nothing until it installs a snapshot) */
    vv_merge(&p->pushed, &have);
    mfs_vv_free(&have);
}

static void snap_start(mfs_repl *r, rpeer *p);

/* Once this node has reached the mesh it becomes an origin, so that
 * every member counts it for good (mfs_store_member_join). */
static void member_join(mfs_repl *r)
{
    if (r->joined)
        return;
    int rc = mfs_store_member_join(r->store);
    if (rc >= 0)
        r->joined = true;
    if (rc == 1)
        mfs_log(LOG_NOTICE, "sync: this node reached the mesh and announced "
                            "itself as a member");
    else if (rc < 0 && rc != -EAGAIN)
        mfs_log(LOG_WARNING,
                "sync: cannot announce this node (%016" PRIx64 ") as a "
                "member: %s; tried again when ops from the mesh are next "
                "applied",
                r->node, strerror(-rc));
}

static void serve_asks(mfs_repl *r);

static void after_apply(mfs_repl *r, const mfs_apply_result *res)
{
    if (res->applied == 0)
        return;
    member_join(r);
    refresh_my(r);
    if (!r->state_changed_us)
        r->state_changed_us = r->now;
    rescan(r);
    serve_asks(r); /* a member waits for these: they are held now */
}

/* A refused snapshot is needed no more once this node holds every op its
 * live peers said they hold (pushes brought them; else "not in sync"
 * stayed for good: replication simulator, seed 1005). */
static void snap_refusal_check(mfs_repl *r)
{
    if (!r->snap_refused)
        return;
    for (size_t i = 0; i < r->npeers; i++)
        if (peer_live(&r->peers[i]) && r->peers[i].heard &&
            mfs_vv_missing(&r->peers[i].vv, &r->my) > 0)
            return;
    r->snap_refused = 0;
}

static void small_note(mfs_repl *r, rpeer *from,
                        const mfs_apply_result *res);

/* ---- applying in slices ------------------------------------------------
 * A large OPS message (a pull's answer: 256 KiB, some 2,600 ops) took
 * ~150 ms to apply in one store call, and whatever came meanwhile (a
 * third node's new file, the chunk it asks for) waited for all of it: p99
 * 78-196 ms from the third node during a 100,000-op merge, target 50
 * (bench/repl/merge.sh). With cfg.apply_bytes set, an OPS message larger
 * than that is applied a slice at a time, one slice per mfs_repl_work()
 * call, and the caller serves its urgent messages between two calls.
 *
 * Why a message applied between two slices is safe: a slice is cut where
 * the sender's mfs_store_ops_since() would have ended its batch had its
 * buffer held apply_bytes (mfs_batch_prefix: whole actions, or as much of
 * a first action as fits, as the sender does), so it is a batch the
 * sender could have sent, and the rest is a batch on its own (the start
 * of the next one it would have sent). The receiver so sees what it would
 * have seen had the sender split the message in two and the other message
 * arrived between them, which the wire allows already: messages of different
 * peers interleave freely, and a peer's urgent push overtakes its bulk pull
 * answers (they travel on separate channels and node/mesh.c takes urgent
 * ones first). The store applies ops idempotently and in any order, and
 * each slice is one store call, atomic as a batch was. A malformed op
 * rejects its slice (earlier slices stay applied, as earlier batches
 * would) and the rest of the message is dropped, as a bad batch is.
 *
 * Only urgent OPS messages (small pushes) pass a message being applied;
 * bulk ones (pull answers, large pushes) and any larger than a slice wait
 * in order behind it, so the pull's bookkeeping (pull_got / pull_total,
 * the next pull) happens when a message's last slice is applied, with
 * r->my covering it, as it did when the message was applied at once. */
typedef struct apply_job {
    struct apply_job *next;
    uint64_t peer, req;
    uint8_t flags;
    uint32_t total;
    size_t wire;          /* payload bytes on the wire (rx_bytes) */
    size_t len, off;      /* batch bytes, applied so far */
    int rc;               /* the first error: the rest is dropped */
    mfs_apply_result sum; /* applied, duplicates, deferred so far */
    /* small versions' chunks still to ask for ahead of the queue: a
     * message's first MFS_APPLY_SMALL, as when it was applied whole (every
     * slice's first 32 asked a merge of small files' chunks all urgently,
     * ahead of a third node's new file: from C p50 ~5 -> ~10-20 ms) */
    size_t small_left;
    uint8_t data[];
} apply_job;

/* One store call's outcome for an OPS message from p: counts, new state,
 * the small versions' chunks. */
static void ops_slice_done(mfs_repl *r, rpeer *p, int rc,
                           const mfs_apply_result *res)
{
    if (rc == 0) {
        p->ops_recv += res->applied;
        r->rx_ops += res->applied;
        after_apply(r, res);
        if (res->nsmall)
            small_note(r, p, res);
    }
}

/* An OPS message from p was applied whole (rc: the first store error):
 * the log line, errors, and the pull's bookkeeping. */
static void ops_done(mfs_repl *r, rpeer *p, uint64_t req, uint8_t flags,
                     uint32_t total, size_t raw, size_t wire, int rc,
                     const mfs_apply_result *res)
{
    mfs_log(LOG_DEBUG,
            "sync: ops %" PRIu64 " from %016" PRIx64 ": %zu bytes"
            ", flags %u: %s, %zu new, %zu dup, %zu deferred",
            req, p->id, raw, flags, rc < 0 ? strerror(-rc) : "ok", res->applied,
            res->duplicates, res->deferred);
    if (rc == -EBADMSG) {
        bad_msg(r, p, "on_ops");
        mfs_log(LOG_WARNING,
                "sync: peer %016" PRIx64 " sent a malformed op "
                "batch; ignored",
                p->id);
    } else if (rc < 0) {
        mfs_log(LOG_ERR,
                "sync: cannot apply ops from %016" PRIx64 ": %s; pulling "
                "from it again in 1 s",
                p->id, strerror(-rc));
        p->pull_backoff_us = r->now + 1000000u;
    }
    if (rc == 0) {
        r->rx_bytes += wire;
        if (res->deferred && !res->applied)
            p->pull_backoff_us = r->now + 5000000u; /* its clock runs ahead */
    }
    if (req && req == r->pull_id && p->id == r->pull_peer &&
        (flags & OPS_SNAP)) {
        r->pull_peer = 0;
        snap_start(r, p);
        return;
    }
    if (req && req == r->pull_id && p->id == r->pull_peer) {
        r->snap_refused = 0; /* ops again: no snapshot needed */
        r->pull_got++;
        if (flags & OPS_LAST)
            r->pull_total = total;
        if (r->pull_total && r->pull_got >= r->pull_total) {
            r->pull_peer = 0;
            maybe_pull(r);
        }
    }
}

static int send_chunk(mfs_repl *r, rpeer *p, const uint8_t *h, uint8_t *msg);
static void ask_one(mfs_repl *r, rpeer *p, uint64_t seq);

/* Applies the next slice of the oldest job; when that was its last, its
 * bookkeeping runs and it is freed. Returns 1 while jobs remain. */
static int apply_slice(mfs_repl *r)
{
    apply_job *j = r->apply_head;
    if (!j || r->snap_inst)
        return 0; /* (after the install: snap_inst_collect) */
    rpeer *p = peer_find(r, j->peer); /* peers are never forgotten */
    if (j->off < j->len && j->rc == 0) {
        ssize_t n = mfs_batch_prefix(j->data + j->off, j->len - j->off,
                                     r->cfg.apply_bytes);
        mfs_apply_result res = {0};
        int rc = n < 0 ? (int)n
                       : mfs_store_apply(r->store, j->data + j->off, (size_t)n,
                                         &res);
        if (res.nsmall > j->small_left)
            res.nsmall = j->small_left;
        j->small_left -= res.nsmall;
        ops_slice_done(r, p, rc, &res);
        j->sum.applied += res.applied;
        j->sum.duplicates += res.duplicates;
        j->sum.deferred += res.deferred;
        if (rc < 0)
            j->rc = rc;
        else
            j->off += (size_t)n;
    }
    if (j->off < j->len && j->rc == 0)
        return 1;
    r->apply_head = j->next;
    if (!r->apply_head)
        r->apply_tail = &r->apply_head;
    atomic_store(&r->apply_busy, r->apply_head != NULL);
    ops_done(r, p, j->req, j->flags, j->total, j->len, j->wire, j->rc, &j->sum);
    free(j);
    return r->apply_head != NULL;
}

/* p sent us the ops in batch, so it holds them: our pushes to it skip
 * them. Its STATE saying so comes only once its own commit is durable,
 * and ours of the same ops may come first: our next push sent them back
 * (a 50 MiB file's version, 75 kB of chunk list, crossed the wire twice,
 * tests/system/mesh_chunks.sh). A malformed batch changes nothing here
 * (the store refuses it). */
static void sent_by(rpeer *p, const uint8_t *batch, size_t len)
{
    mfs_vv held = {0};
    if (len && vv_copy(&held, &p->pushed) == 0 &&
        mfs_batch_scan(batch, len, &held) >= 0) {
        mfs_vv_free(&p->pushed);
        p->pushed = held;
    } else {
        mfs_vv_free(&held);
    }
}

static void on_ops(mfs_repl *r, rpeer *p, mfs_rbuf *rb)
{
    uint64_t req = mfs_get_u64(rb);
    uint8_t flags = mfs_get_u8(rb);
    uint32_t total = mfs_get_u32(rb);
    uint32_t raw = mfs_get_u32(rb);
    size_t left = mfs_rbuf_left(rb);
    const uint8_t *data = mfs_get_bytes(rb, left);
    if (rb->err || (flags & ~(OPS_ZLIB | OPS_LAST | OPS_MORE | OPS_SNAP)) ||
        ((flags & OPS_SNAP) && (!(flags & OPS_LAST) || raw)) ||
        (!(flags & OPS_LAST) && total) || ((flags & OPS_LAST) && !total) ||
        raw > 256u * 1024 * 1024 || (!(flags & OPS_ZLIB) && raw != left)) {
        bad_msg(r, p, __func__);
        return;
    }
    if (r->snap_inst)
        return; /* pulled once the snapshot is in (snap_install) */
    if (!payload(r, p, flags & OPS_ZLIB, &data, left, raw, __func__))
        return;
    sent_by(p, data, raw);
    /* bulk (a pull's answer, a large push: as mfs_repl_msg_bulk) waits
     * behind a message being applied; so does one too large to apply at
     * once. An urgent one is applied now (see "applying in slices") */
    bool bulk = req != 0 || OPS_HEAD_LEN + left >= BULK_OPS_BYTES;
    bool slice = r->cfg.apply_bytes && raw > r->cfg.apply_bytes;
    if (r->apply_head ? bulk || slice : slice) {
        apply_job *j = malloc(sizeof(*j) + raw);
        if (!j) { /* as a failed apply: asked again later */
            mfs_apply_result none = {0};
            ops_done(r, p, req, flags, total, raw, left, -ENOMEM, &none);
            return;
        }
        memset(j, 0, sizeof(*j));
        j->peer = p->id;
        j->req = req;
        j->flags = flags;
        j->total = total;
        j->wire = left;
        j->len = raw;
        j->small_left = MFS_APPLY_SMALL;
        memcpy(j->data, data, raw);
        bool first = !r->apply_head;
        *r->apply_tail = j;
        r->apply_tail = &j->next;
        atomic_store(&r->apply_busy, 1);
        if (first) /* its first slice now, the rest by mfs_repl_work() */
            apply_slice(r);
        return;
    }
    mfs_apply_result res = {0};
    int rc = raw ? mfs_store_apply(r->store, data, raw, &res) : 0;
    ops_slice_done(r, p, rc, &res);
    ops_done(r, p, req, flags, total, raw, left, rc, &res);
}

/* A push of batch (k ops) to p, and the content of the small files it
 * names right behind it: the peer needs no WANT (a round trip, and a wait
 * behind whatever its replication thread is applying). 0 or send's
 * error (nothing sent). The caller moves p->pushed. */
static int push_send(mfs_repl *r, rpeer *p, const uint8_t *batch, size_t n,
                     uint64_t k)
{
    uint8_t small[PUSH_SMALL_MAX * MFS_HASH_LEN];
    size_t ns = n + 32 < BULK_OPS_BYTES
                    ? mfs_batch_small_chunks(batch, n, SMALL_CHUNK, small,
                                             PUSH_SMALL_MAX)
                    : 0;
    int rc = send_ops(r, p, 0, 0, 0, batch, n);
    if (rc)
        return rc;
    p->ops_sent += k;
    r->pushes++;
    /* (send_chunk reads into r->buf: batch may be it, done with now) */
    uint8_t *msg = ns && !scratch(&r->buf, &r->bufcap, MFS_CHUNK_SIZE)
                       ? malloc(CHUNK_MSG_CAP)
                       : NULL;
    for (size_t c = 0; msg && c < ns; c++)
        if (send_chunk(r, p, small + c * MFS_HASH_LEN, msg) < 0)
            break; /* queue full: the peer asks for the rest */
    free(msg);
    return 0;
}

/* Pushes our new ops to every peer that has reported, up to push_bytes. */
static void push_new(mfs_repl *r)
{
    for (size_t i = 0; i < r->npeers; i++) {
        rpeer *p = &r->peers[i];
        if (!peer_live(p) || !p->heard ||
            mfs_vv_missing(&r->my, &p->pushed) == 0)
            continue;
        size_t cap = r->cfg.push_bytes;
        if (scratch(&r->buf, &r->bufcap, cap))
            return;
        /* A peer that lacks much is catching up by pulling: push it our
         * own new ops only, not others' it will pull anyway. Relaying
         * them too sent a merging peer every op twice (its pull's answer
         * and our pushes), and our own new change waited behind them: a
         * small file written on a third node during a 100,000-op merge
         * took up to seconds (bench/repl/merge.sh). */
        mfs_vv own = {0};
        const mfs_vv *from = &p->pushed;
        if (mfs_vv_missing(&r->my, &p->pushed) > RELAY_MAX_OPS) {
            if (vv_copy(&own, &r->my) < 0)
                continue;
            for (size_t k = 0; k < own.n; k++)
                if (own.e[k].node == r->node)
                    own.e[k].seq = mfs_vv_get(&p->pushed, r->node);
            from = &own;
        }
        ssize_t n = mfs_store_ops_since(r->store, from, r->buf, cap);
        mfs_vv_free(&own);
        if (n <= 0)
            continue;
        mfs_vv next = {0};
        ssize_t k;
        if (vv_copy(&next, &p->pushed) < 0 ||
            (k = mfs_batch_scan(r->buf, (size_t)n, &next)) < 0) {
            mfs_vv_free(&next);
            continue;
        }
        /* with a write concern, the member is asked to hold them in the
         * same breath (on the same channel, ahead of them): it syncs as
         * it applies them, not once our fsync's ask comes a flush later */
        uint64_t mine = mfs_vv_get(&next, r->node);
        if (r->ask_pushes && mine > mfs_vv_get(&p->pushed, r->node))
            ask_one(r, p, mine);
        if (push_send(r, p, r->buf, (size_t)n, (uint64_t)k) == 0) {
            mfs_vv_free(&p->pushed);
            p->pushed = next;
        } else {
            mfs_vv_free(&next);
        }
    }
}

/* ---- the write concern's early push ---------------------------------------
 * An fsync's own ops leave with the record of the intent log that made
 * them durable (mfs_repl_logged, from the fsync's thread), not with the
 * group commit that carries them to LMDB a flush or two later: that
 * commit's wait was a third of an `--acks 1` fsync (docs/BENCH-acks.md).
 * The engine sends them at its next turn, in the order logged, to each
 * live member whose pushed vector ends right where they begin, the ask
 * for HELD ahead and small files' chunks behind, as push_new does; the
 * others get them from push_new as before. A commit that fails after
 * they left cannot take them back: the store's commit thread applies
 * the log again (store/txn.c gc_replay), so their sequence numbers stay
 * theirs. */
#define LOGGED_MAX 64 /* batches queued; more wait for their commit */

typedef struct logged_ops {
    struct logged_ops *next;
    uint64_t from, to; /* our ops in (from, to] */
    size_t len;
    uint8_t ops[];
} logged_ops;

/* Frees the list b. */
static void logged_drop(mfs_repl *r, logged_ops *b)
{
    (void)r;
    while (b) {
        logged_ops *n = b->next;
        free(b);
        b = n;
    }
}

/* The queue taken (empty after). */
static logged_ops *logged_take(mfs_repl *r)
{
    mfs_lock_take(&r->logged_mu, MFS_LOCK_REPL_LOGGED);
    logged_ops *b = r->logged;
    r->logged = NULL;
    r->logged_tail = &r->logged;
    r->nlogged = 0;
    mfs_lock_drop(&r->logged_mu);
    return b;
}

void mfs_repl_logged(mfs_repl *r, uint64_t from, uint64_t to,
                     const uint8_t *ops, size_t len)
{
    logged_ops *b = malloc(sizeof(*b) + len);
    if (!b)
        return; /* (they go with the commit) */
    b->next = NULL;
    b->from = from;
    b->to = to;
    b->len = len;
    memcpy(b->ops, ops, len);
    mfs_lock_take(&r->logged_mu, MFS_LOCK_REPL_LOGGED);
    if (r->nlogged < LOGGED_MAX) {
        *r->logged_tail = b;
        r->logged_tail = &b->next;
        r->nlogged++;
        if (to > __atomic_load_n(&r->logged_to, __ATOMIC_RELAXED))
            __atomic_store_n(&r->logged_to, to, __ATOMIC_RELAXED);
        b = NULL;
    }
    mfs_lock_drop(&r->logged_mu);
    free(b);
}

int mfs_repl_logged_has(mfs_repl *r, uint64_t seq)
{
    return seq <= __atomic_load_n(&r->logged_to, __ATOMIC_RELAXED);
}

/* The queued batches sent (r->mu held; the engine's thread). */
static void push_logged(mfs_repl *r)
{
    logged_ops *b = logged_take(r);
    if (!r->ask_pushes) {
        logged_drop(r, b);
        return;
    }
    while (b) {
        for (size_t i = 0; i < r->npeers; i++) {
            rpeer *p = &r->peers[i];
            uint64_t has = mfs_vv_get(&p->pushed, r->node);
            if (!peer_live(p) || !p->heard || has < b->from || has >= b->to)
                continue;
            /* (a commit's push since the record may have sent the first) */
            ssize_t at = has > b->from
                             ? mfs_batch_skip(b->ops, b->len, r->node, has)
                             : 0;
            mfs_vv next = {0};
            ssize_t k = -1;
            if (at < 0 || (size_t)at >= b->len ||
                vv_copy(&next, &p->pushed) < 0 ||
                (k = mfs_batch_scan(b->ops + at, b->len - (size_t)at, &next)) <
                    0) {
                mfs_vv_free(&next);
                continue;
            }
            ask_one(r, p, b->to);
            if (push_send(r, p, b->ops + at, b->len - (size_t)at,
                          (uint64_t)k) == 0) {
                mfs_vv_free(&p->pushed);
                p->pushed = next;
                r->early_pushes++;
            } else {
                mfs_vv_free(&next);
            }
        }
        logged_ops *n = b->next;
        free(b);
        b = n;
    }
}

/* ---- snapshots -----------------------------------------------------------
 * A peer below our op log's floor (a new member: ops every member held
 * were folded, snapshot.c) cannot be sent ops: its PULL is answered with
 * OPS_SNAP, and it fetches a snapshot of our store in windows: SNAPGET
 * `u64 req, u64 id (0: the current one), u64 offset, u32 max` asks for
 * [offset, offset + max), and SNAP `u64 req, u64 id, u64 total, u64
 * offset, u8 flags (1 zlib, 2 gone), u32 raw_len, bytes` carries a piece
 * of SNAP_PIECE bytes (the last may be shorter). We build a snapshot once
 * and keep it while it is asked for; a request for one we no longer have
 * is answered "gone" and the asker starts again. Once whole, the asker
 * installs it (mfs_store_snapshot_install) and pulls ops from there.
 * Neither side holds a snapshot in memory (376 bytes a file: 376 MB for a
 * million files): the sender builds it into a file of the store's, on a
 * thread of its own, and reads pieces from it; the asker writes the
 * pieces into another and installs from a read-only mapping of it. Both
 * files have no name (mfs_store_snapshot_file): closing one frees it. */
#define SNAP_PIECE (1u << 20)
#define SNAP_WINDOW (4u * SNAP_PIECE)
#define SNAP_FRESH_US 5000000u   /* a new asker reuses one this young */
#define SNAP_KEEP_US 60000000u   /* one not asked for this long is freed */
#define SNAP_RETRY_US 2000000u   /* a window not whole: ask again */
#define SNAP_TRIES 5             /* then give up (another pull decides) */
#define SNAP_MAX ((uint64_t)4 << 30)
#define SNAP_ASKERS 16      /* askers a build answers when it ends */
#define SNAP_POLL_US 20000u /* while one builds, the engine looks */
enum { SNAP_ZLIB = 1, SNAP_GONE = 2 };

/* A snapshot in a file of the store's with no name. */
typedef struct snap_file {
    int fd;
    uint64_t len;
} snap_file;

/* A build (mfs_store_snapshot_file). With MFS_REPL_STORE_THREAD (the
 * daemon) a thread of its own runs it: it reads the whole store (seconds
 * for a big one), and on the engine's thread it held up every message,
 * heartbeats and acks among them, for as long. Otherwise (tools, tests,
 * and the simulator, which must stay deterministic) it runs on the
 * engine's thread when asked for. The thread owns store..inf until it
 * sets done; the engine owns the rest, and all of it after. ask: the
 * SNAPGETs for a new snapshot that came while it ran (one a peer, its
 * latest), answered when it ends; one left out asks again in 2 s. */
typedef struct snap_build {
    mfs_store *store;
    int rc, fd;
    uint64_t len, took_us;
    mfs_snapshot_info inf;
    atomic_bool done;
    bool threaded;
    pthread_t thread;
    size_t nask;
    struct {
        uint64_t peer, req, off;
        uint32_t max;
    } ask[SNAP_ASKERS];
} snap_build;

/* An install (mfs_store_snapshot_install) of the snapshot fetched, from
 * a read-only mapping of its file. With MFS_REPL_STORE_THREAD (the
 * daemon) a thread of its own runs it, as a build: it writes the whole
 * state in one transaction (2.6-2.9 s for 100,000 files), and on the
 * engine's thread no message was handled for as long (HELDs, STATEs,
 * WANTs, `meshfs stat`). Otherwise it runs on the engine's thread at
 * once (tools, tests, the simulator). The thread owns store..inf until
 * it sets done; the engine owns the rest, and all of it after. */
typedef struct snap_inst {
    mfs_store *store;
    void *map;
    size_t len;
    uint64_t from, t0, took_us;
    int rc;
    mfs_snapshot_info inf;
    atomic_bool done;
    bool threaded;
    pthread_t thread;
} snap_inst;

/* Real time, for the durations the log reports (r->now may be a
 * simulator's). */
static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void snap_file_close(snap_file *f)
{
    if (!f)
        return;
    close(f->fd);
    free(f);
}

static int snap_pread(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO; /* (0: shorter than it was) */
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static void snap_build_run(snap_build *b)
{
    uint64_t t0 = mono_us();
    b->rc = mfs_store_snapshot_file(b->store, &b->fd, &b->len, &b->inf);
    b->took_us = mono_us() - t0;
}

static void *snap_build_main(void *arg)
{
    snap_build *b = arg;
    pthread_setname_np(pthread_self(), "mfs-snapshot"); /* top, perf */
    snap_build_run(b);
    atomic_store_explicit(&b->done, true, memory_order_release);
    return NULL;
}

static void snap_build_start(mfs_repl *r)
{
    snap_build *b = calloc(1, sizeof(*b));
    if (!b)
        return; /* the asker asks again */
    b->store = r->store;
    b->fd = -1;
    r->snap_build = b;
    if (r->cfg.store_chunks == MFS_REPL_STORE_THREAD) {
        int rc = pthread_create(&b->thread, NULL, snap_build_main, b);
        if (rc == 0) {
            b->threaded = true;
            return;
        }
        mfs_log(LOG_WARNING,
                "sync: cannot start a thread to build a snapshot: %s; "
                "building it on the sync thread",
                strerror(rc));
    }
    snap_build_run(b);
    atomic_store_explicit(&b->done, true, memory_order_relaxed);
}

/* p asked for [off, off + max) of a new snapshot while b runs. */
static void snap_build_wait(snap_build *b, const rpeer *p, uint64_t req,
                            uint64_t off, uint32_t max)
{
    size_t i = 0;
    while (i < b->nask && b->ask[i].peer != p->id)
        i++;
    if (i == SNAP_ASKERS)
        return; /* it asks again */
    if (i == b->nask)
        b->nask++;
    b->ask[i].peer = p->id;
    b->ask[i].req = req;
    b->ask[i].off = off;
    b->ask[i].max = max;
}

static void snap_serve(mfs_repl *r, rpeer *p, uint64_t req, uint64_t id,
                       uint64_t off, uint32_t max);

/* Whether a build's or an install's work ended (done, set by its thread
 * or inline); its thread, if it had one, joined. */
static bool snap_job_ended(atomic_bool *done, bool threaded, pthread_t thread)
{
    if (!atomic_load_explicit(done, memory_order_acquire))
        return false;
    if (threaded)
        pthread_join(thread, NULL);
    return true;
}

/* Takes a build that ended: it becomes the snapshot we serve, and those
 * who asked while it ran are answered. */
static void snap_build_collect(mfs_repl *r)
{
    snap_build *b = r->snap_build;
    if (!b || !snap_job_ended(&b->done, b->threaded, b->thread))
        return;
    r->snap_build = NULL;
    snap_file *f = b->rc ? NULL : malloc(sizeof(*f));
    if (!f) {
        int rc = b->rc ? b->rc : -ENOMEM;
        mfs_log(LOG_ERR,
                "sync: cannot build a snapshot for %zu peer(s) (first "
                "%016" PRIx64 "): %s%s; they ask again in about 2 s",
                b->nask, b->nask ? b->ask[0].peer : 0, strerror(-rc),
                rc == -ENOSPC ? " (free some space on the store's disk)" : "");
        if (b->fd >= 0)
            close(b->fd);
        free(b);
        return;
    }
    f->fd = b->fd;
    f->len = b->len;
    snap_file_close(r->snap_out);
    r->snap_out = f;
    r->snap_out_id = r->snap_out_id + 1 + (r->now << 8);
    r->snap_out_built_us = r->now;
    r->snaps_served++;
    mfs_log(LOG_NOTICE,
            "sync: built a snapshot of %" PRIu64 " bytes (%" PRIu64
            " inodes, %" PRIu64 " entries, %" PRIu64 " versions, %" PRIu64
            " ops) for %016" PRIx64 " in %" PRIu64 " ms",
            b->len, b->inf.inodes, b->inf.entries, b->inf.versions, b->inf.ops,
            b->nask ? b->ask[0].peer : 0, b->took_us / 1000);
    for (size_t i = 0; i < b->nask; i++) {
        rpeer *p = peer_find(r, b->ask[i].peer);
        if (p && peer_live(p))
            snap_serve(r, p, b->ask[i].req, 0, b->ask[i].off, b->ask[i].max);
    }
    free(b);
}

/* The engine stops: waits for a build's thread, and frees the files. */
static void snap_free(mfs_repl *r)
{
    snap_build *b = r->snap_build;
    if (b) {
        if (b->threaded)
            pthread_join(b->thread, NULL);
        if (b->fd >= 0)
            close(b->fd);
        free(b);
        r->snap_build = NULL;
    }
    snap_inst *in = r->snap_inst;
    if (in) { /* (its outcome is the next start's to see) */
        if (in->threaded)
            pthread_join(in->thread, NULL);
        munmap(in->map, in->len);
        free(in);
        r->snap_inst = NULL;
    }
    snap_file_close(r->snap_out);
    snap_file_close(r->snap_in);
    r->snap_out = r->snap_in = NULL;
}

static void snap_ask(mfs_repl *r)
{
    rpeer *p = peer_find(r, r->snap_peer);
    uint8_t b[28];
    mfs_wbuf w;
    mfs_wbuf_init(&w, b, sizeof(b));
    mfs_put_u64(&w, r->snap_req);
    mfs_put_u64(&w, r->snap_id);
    mfs_put_u64(&w, r->snap_off);
    mfs_put_u32(&w, SNAP_WINDOW);
    if (p)
        send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_SNAPGET, b, w.len);
    r->snap_asked_us = r->now;
}

static void snap_reset(mfs_repl *r)
{
    snap_file_close(r->snap_in);
    r->snap_in = NULL;
    r->snap_id = 0;
    r->snap_total = r->snap_off = 0;
    r->snap_mask = 0;
    r->snap_tries = 0;
}

static void snap_start(mfs_repl *r, rpeer *p)
{
    if (r->snap_peer)
        return;
    snap_reset(r);
    r->snap_peer = p->id;
    r->snap_req = ++r->pull_id;
    r->snap_started_us = mono_us();
    mfs_log(LOG_NOTICE,
            "sync: this node lacks ops the mesh has folded into its state: "
            "fetching a snapshot from %016" PRIx64,
            p->id);
    snap_ask(r);
}

static void snap_stop(mfs_repl *r, uint64_t retry_us)
{
    snap_reset(r);
    r->snap_peer = 0;
    r->snap_retry_us = r->now + retry_us;
}

static void on_snapget(mfs_repl *r, rpeer *p, mfs_rbuf *rb)
{
    uint64_t req = mfs_get_u64(rb), id = mfs_get_u64(rb);
    uint64_t off = mfs_get_u64(rb);
    uint32_t max = mfs_get_u32(rb);
    if (rb->err || mfs_rbuf_left(rb) || !max) {
        bad_msg(r, p, __func__);
        return;
    }
    if (id == 0 &&
        (!r->snap_out || r->now - r->snap_out_built_us > SNAP_FRESH_US)) {
        /* a new one: not answered until it is built (as while we could
         * not build one, the asker asks again in 2 s) */
        if (!r->snap_build)
            snap_build_start(r);
        if (r->snap_build)
            snap_build_wait(r->snap_build, p, req, off, max);
        snap_build_collect(r); /* one built on this thread ended */
        return;
    }
    snap_serve(r, p, req, id, off, max);
}

/* Answers a SNAPGET from the snapshot we serve. */
static void snap_serve(mfs_repl *r, rpeer *p, uint64_t req, uint64_t id,
                       uint64_t off, uint32_t max)
{
    uint8_t hdr[45];
    mfs_wbuf w;
    if (!r->snap_out || (id && id != r->snap_out_id)) {
        mfs_wbuf_init(&w, hdr, sizeof(hdr));
        mfs_put_u64(&w, req);
        mfs_put_u64(&w, id);
        mfs_put_u64(&w, 0);
        mfs_put_u64(&w, off);
        mfs_put_u8(&w, SNAP_GONE);
        mfs_put_u32(&w, 0);
        send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_SNAP, hdr, w.len);
        return;
    }
    r->snap_out_used_us = r->now;
    uint64_t len = r->snap_out->len;
    uint64_t end = off >= len ? off : len - off < max ? len : off + max;
    if (max > SNAP_WINDOW || off % SNAP_PIECE)
        end = off; /* not what we ask for: nothing */
    uint8_t *piece = end > off ? malloc(SNAP_PIECE) : NULL;
    for (uint64_t o = off; piece && o < end; o += SNAP_PIECE) {
        size_t n = end - o < SNAP_PIECE ? (size_t)(end - o) : SNAP_PIECE;
        int rc = snap_pread(r->snap_out->fd, piece, n, o);
        if (rc) {
            mfs_log(LOG_ERR,
                    "sync: cannot read the snapshot we serve at %" PRIu64
                    ": %s; dropping it: the next ask builds a new one",
                    o, strerror(-rc));
            snap_file_close(r->snap_out);
            r->snap_out = NULL;
            break;
        }
        size_t zl = maybe_compress(r, piece, n);
        uint8_t *b = malloc(sizeof(hdr) + (zl ? zl : n));
        if (!b)
            break;
        mfs_wbuf_init(&w, b, sizeof(hdr) + (zl ? zl : n));
        mfs_put_u64(&w, req);
        mfs_put_u64(&w, r->snap_out_id);
        mfs_put_u64(&w, len);
        mfs_put_u64(&w, o);
        mfs_put_u8(&w, zl ? SNAP_ZLIB : 0);
        mfs_put_u32(&w, (uint32_t)n);
        mfs_put_bytes(&w, zl ? r->zbuf : piece, zl ? zl : n);
        rc = w.err ? w.err
                   : send_msg(r, p, MFS_SYNC_BULK, MFS_MT_SNAP, b, w.len);
        free(b);
        if (rc)
            break; /* queue full: it asks again */
    }
    free(piece);
}

static void snap_inst_run(snap_inst *in)
{
    in->rc = mfs_store_snapshot_install(in->store, in->map, in->len, &in->inf);
    in->took_us = mono_us() - in->t0;
}

static void *snap_inst_main(void *arg)
{
    snap_inst *in = arg;
    pthread_setname_np(pthread_self(), "mfs-install"); /* top, perf */
    snap_inst_run(in);
    atomic_store_explicit(&in->done, true, memory_order_release);
    return NULL;
}

static void snap_inst_collect(mfs_repl *r);

/* The snapshot fetched is whole: installed on a thread of its own (the
 * daemon; snap_inst_collect takes its outcome), else now. Meanwhile the
 * fetch stays (snap_peer: no pull starts, `meshfs stat` shows it whole),
 * OPS are dropped (their senders' STATEs tell what to pull after), the
 * op batches received before wait (apply_slice), and no chunk is asked
 * for (the install changes what we want): each would write the store,
 * and wait for the install's transaction. */
static void snap_install(mfs_repl *r)
{
    uint64_t t0 = mono_us();
    uint64_t from = r->snap_peer;
    /* read-only and shared: its pages are the page cache's, which the
     * kernel takes back under pressure, not memory of ours */
    void *map =
        mmap(NULL, r->snap_total, PROT_READ, MAP_SHARED, r->snap_in->fd, 0);
    snap_inst *in = map == MAP_FAILED ? NULL : calloc(1, sizeof(*in));
    if (!in) {
        int e = map == MAP_FAILED ? errno : ENOMEM;
        if (map != MAP_FAILED)
            munmap(map, r->snap_total);
        mfs_log(LOG_WARNING,
                "sync: cannot map the snapshot of %zu bytes from %016" PRIx64
                " received into the store's directory: %s; asking again in "
                "2 s",
                r->snap_total, from, strerror(e));
        snap_stop(r, SNAP_RETRY_US);
        return;
    }
    madvise(map, r->snap_total, MADV_SEQUENTIAL);
    in->store = r->store;
    in->map = map;
    in->len = r->snap_total;
    in->from = from;
    in->t0 = t0;
    r->snap_inst = in;
    if (r->cfg.store_chunks == MFS_REPL_STORE_THREAD) {
        int rc = pthread_create(&in->thread, NULL, snap_inst_main, in);
        if (rc == 0) {
            in->threaded = true;
            /* what mfs_repl_work() would do waits: the daemon must not
             * call it in a loop meanwhile (set again once installed) */
            atomic_store(&r->apply_busy, 0);
            return;
        }
        mfs_log(LOG_WARNING,
                "sync: cannot start a thread to install a snapshot: %s; "
                "installing it on the sync thread",
                strerror(rc));
    }
    snap_inst_run(in);
    atomic_store_explicit(&in->done, true, memory_order_relaxed);
    snap_inst_collect(r);
}

/* Takes an install that ended: on success the fetch ends and this node
 * reports its new vector and pulls the rest, as after any apply. */
static void snap_inst_collect(mfs_repl *r)
{
    snap_inst *in = r->snap_inst;
    if (!in || !snap_job_ended(&in->done, in->threaded, in->thread))
        return;
    r->snap_inst = NULL;
    munmap(in->map, in->len);
    atomic_store(&r->apply_busy, r->apply_head != NULL);
    int rc = in->rc;
    uint64_t from = in->from, t0 = in->t0, took_us = in->took_us;
    mfs_snapshot_info inf = in->inf;
    free(in);
    if (rc == 0) {
        r->snaps_installed++;
        r->snap_refused = 0;
        mfs_log(LOG_NOTICE,
                "sync: installed a snapshot of %zu bytes from %016" PRIx64
                " (fetched in %" PRIu64 " ms, installed in %" PRIu64
                " ms): %" PRIu64 " inodes, %" PRIu64 " entries; pulling the "
                "rest",
                r->snap_total, from, (t0 - r->snap_started_us) / 1000,
                took_us / 1000, inf.inodes, inf.entries);
        snap_stop(r, 0);
        member_join(r);
        refresh_my(r);
        if (!r->state_changed_us)
            r->state_changed_us = r->now;
        rescan(r);
        maybe_pull(r);
        return;
    }
    if (rc == -ENOTEMPTY) {
        if (!r->snap_refused)
            mfs_log(LOG_ERR,
                    "sync: this node lacks ops the mesh has folded, and has "
                    "itself folded ops the snapshot from %016" PRIx64
                    " lacks: it cannot take it without losing them; it asks "
                    "for a newer one",
                    from);
        /* the snapshot may be older than what we folded (it is reused a
         * while): a newer one may hold it */
        r->snap_refused = rc;
        snap_stop(r, SNAP_FRESH_US + SNAP_RETRY_US);
        return;
    }
    mfs_log(LOG_WARNING,
            "sync: the snapshot from %016" PRIx64 " could not be installed: "
            "%s; asking again in 2 s",
            from, strerror(-rc));
    snap_stop(r, SNAP_RETRY_US);
}

/* The file a snapshot of total bytes is received into, its room taken at
 * once: a disk too small fails at the first piece, not at the last. */
static int snap_in_open(mfs_repl *r, uint64_t total)
{
    snap_file *f = malloc(sizeof(*f));
    if (!f)
        return -ENOMEM;
    int rc = mfs_store_snapshot_spool(r->store, &f->fd);
    if (rc) {
        free(f);
        return rc;
    }
    f->len = total;
    if (fallocate(f->fd, 0, 0, (off_t)total) != 0) {
        /* a filesystem without it: the pieces take room as they come */
        rc = errno == EOPNOTSUPP ? 0 : -errno;
        if (!rc && ftruncate(f->fd, (off_t)total) != 0)
            rc = -errno;
    }
    if (rc) {
        snap_file_close(f);
        return rc;
    }
    snap_file_close(r->snap_in);
    r->snap_in = f;
    return 0;
}

static void on_snap(mfs_repl *r, rpeer *p, mfs_rbuf *rb)
{
    uint64_t req = mfs_get_u64(rb), id = mfs_get_u64(rb);
    uint64_t total = mfs_get_u64(rb), off = mfs_get_u64(rb);
    uint8_t flags = mfs_get_u8(rb);
    uint32_t raw = mfs_get_u32(rb);
    size_t left = mfs_rbuf_left(rb);
    const uint8_t *data = mfs_get_bytes(rb, left);
    if (rb->err || (flags & ~(SNAP_ZLIB | SNAP_GONE)) || total > SNAP_MAX ||
        raw > SNAP_PIECE || (!(flags & SNAP_ZLIB) && raw != left)) {
        bad_msg(r, p, __func__);
        return;
    }
    if (p->id != r->snap_peer || req != r->snap_req || r->snap_inst)
        return; /* an answer to an earlier fetch, or one whole already */
    if (flags & SNAP_GONE) {
        snap_reset(r); /* it built a newer one: from the start */
        snap_ask(r);
        return;
    }
    if (!r->snap_id) {
        if (total < 64)
            return;
        int rc = snap_in_open(r, total);
        if (rc) {
            mfs_log(LOG_ERR,
                    "sync: cannot make room in the store's directory for "
                    "the snapshot of %" PRIu64 " bytes from %016" PRIx64
                    ": %s%s; asking again in 60 s",
                    total, p->id, strerror(-rc),
                    rc == -ENOSPC ? " (free some space on the store's disk)"
                                  : "");
            snap_stop(r, SNAP_KEEP_US);
            return;
        }
        r->snap_id = id;
        r->snap_total = total;
    }
    if (id != r->snap_id || total != r->snap_total || off % SNAP_PIECE ||
        off < r->snap_off || off >= r->snap_off + SNAP_WINDOW ||
        off >= total ||
        raw != (total - off < SNAP_PIECE ? total - off : SNAP_PIECE))
        return;
    uint32_t bit = 1u << ((off - r->snap_off) / SNAP_PIECE);
    if (r->snap_mask & bit)
        return;
    if (!payload(r, p, flags & SNAP_ZLIB, &data, left, raw, __func__))
        return;
    int rc = mfs_store_snapshot_spool_put(r->snap_in->fd, data, raw, off);
    if (rc) {
        mfs_log(LOG_ERR,
                "sync: cannot write the snapshot from %016" PRIx64
                " at %" PRIu64 " into the store's directory: %s%s; asking "
                "again in 60 s",
                p->id, off, strerror(-rc),
                rc == -ENOSPC ? " (free some space on the store's disk)" : "");
        snap_stop(r, SNAP_KEEP_US);
        return;
    }
    r->snap_mask |= bit;
    r->snap_tries = 0;
    r->snap_asked_us = r->now;
    r->rx_bytes += left;
    size_t wend = r->snap_off + SNAP_WINDOW < total ? r->snap_off + SNAP_WINDOW
                                                    : total;
    uint32_t pieces = (uint32_t)((wend - r->snap_off + SNAP_PIECE - 1) /
                                 SNAP_PIECE);
    if (r->snap_mask != (1u << pieces) - 1)
        return;
    r->snap_off = wend;
    r->snap_mask = 0;
    if (wend < total)
        snap_ask(r);
    else
        snap_install(r);
}

/* Timeouts of the fetch, and the served snapshot once nobody asks. */
static void snap_tick(mfs_repl *r, uint64_t *next)
{
    snap_refusal_check(r);
    snap_build_collect(r);
    snap_inst_collect(r);
    if ((r->snap_build || r->snap_inst) && r->now + SNAP_POLL_US < *next)
        *next = r->now + SNAP_POLL_US; /* their threads tell nobody */
    if (r->snap_out && r->now - r->snap_out_used_us > SNAP_KEEP_US &&
        r->now - r->snap_out_built_us > SNAP_KEEP_US) {
        snap_file_close(r->snap_out); /* and its file with it */
        r->snap_out = NULL;
    }
    if (!r->snap_peer || r->snap_inst)
        return; /* (an install ends by itself, whoever sent it) */
    rpeer *p = peer_find(r, r->snap_peer);
    if (!p || !peer_live(p)) {
        snap_stop(r, 0); /* another peer, at the next pull */
        return;
    }
    if (r->now - r->snap_asked_us >= SNAP_RETRY_US) {
        if (++r->snap_tries > SNAP_TRIES) {
            mfs_log(LOG_WARNING,
                    "sync: snapshot from %016" PRIx64 " stalled (%d asks "
                    "unanswered); asking again in 2 s",
                    p->id, SNAP_TRIES);
            snap_stop(r, SNAP_RETRY_US);
            return;
        }
        snap_ask(r); /* pieces lost to a full queue */
    }
    if (r->snap_asked_us + SNAP_RETRY_US < *next)
        *next = r->snap_asked_us + SNAP_RETRY_US;
}

/* ---- write concern (DESIGN P10) -----------------------------------------
 * A wait (mfs_repl_await_held) is met once n members said (HELD) that
 * they hold our ops up to its seq, and none of our versions up to it
 * waits for a chunk there. A member says so only of what its store holds
 * durably (mfs_store_vv_held): an ack is never taken back by a crash or
 * a power cut there. It says so when asked
 * (ASKHELD), and then whenever that grows, for ASK_HELD_US after the
 * last ask; while it lacks durability for what it was asked, it asks its
 * store to hold it (mfs_store_hold_soon: one intent-log record, shared
 * by every asker; a sync when the log cannot). HELDs
 * arrive in any order: held_seq keeps the newest, and held only grows. */
#define ASK_HELD_US 60000000u /* an ask is served this long */
#define ASK_AGAIN_US 1000000u /* open waits ask the live members again */
#define HELD_SYNC_US 200u     /* a hold asked for a member at most this often */
#define HELD_LEN 32   /* u64 message seq, u64 origin, u64 seq, u64 hlc */
#define ASKHELD_LEN 8 /* u64 seq */

struct held_wait {
    held_wait *next;
    uint64_t seq, hlc, due_us;
    unsigned n;
    bool wait;
    mfs_repl_held_fn done;
    void *arg;
};

/* How a wait stands at now: 1 with *err set when it is decided (0 met,
 * -ETIMEDOUT, -EHOSTUNREACH), else 0. */
static int held_verdict(const mfs_repl *r, const held_wait *w, uint64_t now,
                        int *err)
{
    unsigned have = 0, could = 0; /* said so; alive and may yet */
    for (size_t i = 0; i < r->npeers; i++) {
        const rpeer *p = &r->peers[i];
        if (p->removed)
            continue;
        if (mfs_repl_holds(p->held, p->held_hlc, w->seq, w->hlc))
            have++;
        else if (peer_live(p))
            could++;
    }
    if (have >= w->n)
        *err = 0;
    else if (now >= w->due_us)
        *err = -ETIMEDOUT;
    else if (!w->wait && have + could < w->n)
        *err = -EHOSTUNREACH;
    else
        return 0;
    return 1;
}

/* Ends every wait that is decided (r->mu held); the earliest time one
 * is due into *next (if not NULL). */
static void held_check(mfs_repl *r, uint64_t *next)
{
    held_wait **pw = &r->waits;
    while (*pw) {
        held_wait *w = *pw;
        int err;
        if (held_verdict(r, w, r->now, &err)) {
            *pw = w->next;
            w->done(w->arg, err);
            free(w);
            continue;
        }
        if (next && w->due_us < *next)
            *next = w->due_us;
        pw = &w->next;
    }
}

/* The live members' ids (r->mu held); how many. */
static size_t live_ids(const mfs_repl *r, uint64_t *ids)
{
    size_t n = 0;
    for (size_t i = 0; i < r->npeers; i++)
        if (peer_live(&r->peers[i]))
            ids[n++] = r->peers[i].id;
    return n;
}

/* ASKHELD to each of ids: sent without r->mu from outside the engine (the
 * transport's lock comes before ours on its thread, as in mfs_repl_bye). */
static void ask_send(mfs_repl *r, const uint64_t *ids, size_t n, uint64_t seq)
{
    uint8_t b[ASKHELD_LEN];
    mfs_be64_put(b, seq);
    for (size_t i = 0; i < n; i++)
        r->cfg.send(r->cfg.arg, ids[i], MFS_SYNC_URGENT, MFS_MT_ASKHELD, b,
                    sizeof b);
}

/* ASKHELD to p from inside the engine (r->mu held). */
static void ask_one(mfs_repl *r, rpeer *p, uint64_t seq)
{
    uint8_t b[ASKHELD_LEN];
    mfs_be64_put(b, seq);
    send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_ASKHELD, b, sizeof b);
}

static void on_held(mfs_repl *r, rpeer *p, mfs_rbuf *rb)
{
    uint64_t mseq = mfs_get_u64(rb);
    uint64_t origin = mfs_get_u64(rb);
    uint64_t seq = mfs_get_u64(rb);
    uint64_t hlc = mfs_get_u64(rb);
    if (rb->err || mfs_rbuf_left(rb)) {
        bad_msg(r, p, __func__);
        return;
    }
    if (origin != r->node || mseq <= p->held_seq)
        return; /* not of our ops, or overtaken by a newer one */
    p->held_seq = mseq;
    if (seq > p->held) /* (a store's durable vector never goes back) */
        p->held = seq;
    p->held_hlc = hlc;
    held_check(r, NULL);
}

static void on_askheld(mfs_repl *r, rpeer *p, mfs_rbuf *rb)
{
    uint64_t seq = mfs_get_u64(rb);
    if (rb->err || mfs_rbuf_left(rb)) {
        bad_msg(r, p, __func__);
        return;
    }
    if (seq > p->ask_seq)
        p->ask_seq = seq;
    p->ask_us = r->now ? r->now : 1;
    p->held_tell = true;
}

static bool asking(const mfs_repl *r, const rpeer *p)
{
    return p->ask_us && r->now - p->ask_us < ASK_HELD_US && peer_live(p);
}

/* Tells each member that asks how far we hold its ops, when that grew
 * (or it asked again), and asks the store to hold (mfs_store_hold_soon)
 * what it asked for while we hold it not yet durably or not whole. */
static void held_serve(mfs_repl *r)
{
    size_t i;
    for (i = 0; i < r->npeers && !asking(r, &r->peers[i]); i++)
        ;
    mfs_vv d, wanted;
    if (i == r->npeers || mfs_store_vv_held(r->store, &d, &wanted) != 0)
        return; /* (-EAGAIN: the store syncs to have it) */
    bool sync = false;
    for (; i < r->npeers; i++) {
        rpeer *p = &r->peers[i];
        if (!asking(r, p))
            continue;
        uint64_t v = mfs_vv_get(&d, p->id), h = mfs_vv_get(&wanted, p->id);
        if (v != p->held_told || h != p->held_told_hlc || p->held_tell) {
            uint8_t b[HELD_LEN];
            mfs_be64_put(b, ++r->held_msg_seq);
            mfs_be64_put(b + 8, p->id);
            mfs_be64_put(b + 16, v);
            mfs_be64_put(b + 24, h);
            if (send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_HELD, b, sizeof b) ==
                0) {
                p->held_told = v;
                p->held_told_hlc = h;
                p->held_tell = false;
            }
        }
        /* what it asked for is here, not yet durable (the chunks a
         * version waits for come by themselves) */
        uint64_t want = mfs_vv_get(&r->my, p->id);
        if (want > p->ask_seq)
            want = p->ask_seq;
        if (v < want && r->now - p->sync_us >= HELD_SYNC_US) {
            p->sync_us = r->now;
            sync = true;
        }
    }
    mfs_vv_free(&d);
    mfs_vv_free(&wanted);
    if (sync)
        mfs_store_hold_soon(r->store);
}

/* held_serve when a member asks. */
static void serve_asks(mfs_repl *r)
{
    for (size_t i = 0; i < r->npeers; i++)
        if (asking(r, &r->peers[i])) {
            held_serve(r);
            return;
        }
}

/* The tick's part: waits decided, asked again now and then; asks served. */
static void held_tick(mfs_repl *r, uint64_t *next)
{
    held_check(r, next);
    if (r->waits && r->now >= r->ask_again_us) {
        uint64_t seq = 0;
        for (held_wait *w = r->waits; w; w = w->next)
            if (w->seq > seq)
                seq = w->seq;
        uint8_t b[ASKHELD_LEN];
        mfs_be64_put(b, seq);
        for (size_t i = 0; i < r->npeers; i++)
            if (peer_live(&r->peers[i]))
                send_msg(r, &r->peers[i], MFS_SYNC_URGENT, MFS_MT_ASKHELD, b,
                         sizeof b);
        r->ask_again_us = r->now + ASK_AGAIN_US;
    }
    if (r->waits && r->ask_again_us < *next)
        *next = r->ask_again_us;
    held_serve(r);
}

int mfs_repl_await_held(mfs_repl *r, uint64_t now_us, uint64_t seq,
                        uint64_t hlc, unsigned n, uint32_t timeout_ms, int wait,
                        mfs_repl_held_fn done, void *arg)
{
    held_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->seq = seq;
    w->hlc = hlc;
    w->n = n;
    w->wait = wait != 0;
    w->due_us = now_us + (uint64_t)timeout_ms * 1000;
    w->done = done;
    w->arg = arg;
    uint64_t ids[MAX_PEERS];
    size_t nids = 0;
    int err;
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    bool decided = held_verdict(r, w, now_us, &err);
    if (!decided) {
        held_wait **pw = &r->waits;
        while (*pw)
            pw = &(*pw)->next;
        *pw = w;
        nids = live_ids(r, ids);
        r->ask_again_us = now_us + ASK_AGAIN_US;
    }
    mfs_lock_drop(&r->mu);
    if (decided) {
        done(arg, err);
        free(w);
    } else {
        ask_send(r, ids, nids, seq);
    }
    return 0;
}

uint64_t mfs_repl_early_pushes(mfs_repl *r)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    uint64_t n = r->early_pushes;
    mfs_lock_drop(&r->mu);
    return n;
}

void mfs_repl_set_ask_pushes(mfs_repl *r, int on)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    r->ask_pushes = on != 0;
    mfs_lock_drop(&r->mu);
}

void mfs_repl_ask_held(mfs_repl *r, uint64_t seq)
{
    uint64_t ids[MAX_PEERS];
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    size_t n = live_ids(r, ids);
    mfs_lock_drop(&r->mu);
    ask_send(r, ids, n, seq);
}

void mfs_repl_await_cancel(mfs_repl *r, int err)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    held_wait *w = r->waits;
    r->waits = NULL;
    mfs_lock_drop(&r->mu);
    while (w) {
        held_wait *next = w->next;
        w->done(w->arg, err);
        free(w);
        w = next;
    }
}

/* ---- collection: the settled vector ------------------------------------
 * The store collects what an op made garbage once the op is settled
 * (docs/REPLICATION.md "Collection"): every member holds it, and we hold
 * every op concurrent with it, so nothing that arrives later can still
 * need what was collected. Members: us, every peer we know, every origin
 * in our vector (a member we have not heard from since start counts as
 * holding nothing, so it holds collection back). The stable vector S is
 * the entrywise minimum of our vector and every member's last report.
 * Each member M had, when it reported, originated R_M[M] ops; every op of
 * M concurrent with an op in S is among them. So S becomes the settled
 * vector once our vector covers W = (R_M[M]) of the same reports. */

static uint64_t vv_min_get(const mfs_vv *v, uint64_t node, bool *found)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->e[i].node == node) {
            *found = true;
            return v->e[i].seq;
        }
    *found = false;
    return 0;
}

/* S and W now; -ENOMEM. */
static int stable_now(mfs_repl *r, mfs_vv *s, mfs_vv *w)
{
    s->n = w->n = 0;
    s->e = malloc((r->my.n + 1) * sizeof(*s->e));
    w->e = malloc((r->npeers + 1) * sizeof(*w->e));
    if (!s->e || !w->e) {
        mfs_vv_free(s);
        mfs_vv_free(w);
        return -ENOMEM;
    }
    /* a member we have not heard from since we started, or one we know
     * only as an origin (the transport has not told of it yet, as after a
     * restart): it may lack anything, so nothing is stable */
    bool unheard = false;
    for (size_t i = 0; i < r->npeers; i++)
        if (!r->peers[i].heard && !r->peers[i].removed)
            unheard = true;
    for (size_t i = 0; i < r->my.n && !unheard; i++) {
        uint64_t node = r->my.e[i].node;
        bool known = node == r->node || is_removed(r, node);
        for (size_t j = 0; j < r->npeers && !known; j++)
            known = r->peers[j].id == node;
        if (!known)
            unheard = true;
    }
    for (size_t i = 0; i < r->my.n && !unheard; i++) {
        uint64_t node = r->my.e[i].node, seq = r->my.e[i].seq;
        for (size_t j = 0; j < r->npeers && seq; j++) {
            bool f;
            if (r->peers[j].removed)
                continue; /* not a member: not waited for */
            uint64_t x = vv_min_get(&r->peers[j].vv, node, &f);
            if (x < seq)
                seq = x;
        }
        if (seq)
            s->e[s->n++] = (mfs_vv_entry){node, seq};
    }
    for (size_t j = 0; j < r->npeers; j++) {
        bool f;
        uint64_t x = vv_min_get(&r->peers[j].vv, r->peers[j].id, &f);
        if (x && !r->peers[j].removed)
            w->e[w->n++] = (mfs_vv_entry){r->peers[j].id, x};
    }
    /* sorted by node, as vectors are */
    for (size_t i = 1; i < w->n; i++)
        for (size_t j = i; j && w->e[j - 1].node > w->e[j].node; j--) {
            mfs_vv_entry t = w->e[j];
            w->e[j] = w->e[j - 1];
            w->e[j - 1] = t;
        }
    return 0;
}

static bool vv_covers(const mfs_vv *a, const mfs_vv *b)
{
    return mfs_vv_missing(b, a) == 0;
}

static bool vv_same(const mfs_vv *a, const mfs_vv *b)
{
    return a->n == b->n && (!a->n || !memcmp(a->e, b->e, a->n * sizeof(*a->e)));
}

static void update_settled(mfs_repl *r)
{
    if (r->have_cand && vv_covers(&r->my, &r->cand_wait)) {
        mfs_vv_free(&r->settled);
        r->settled = r->cand;
        r->cand = (mfs_vv){0, NULL};
        mfs_vv_free(&r->cand_wait);
        r->have_cand = false;
        r->have_settled = true;
        mfs_store_collect_settled(r->store, &r->settled);
    }
    if (r->have_cand)
        return;
    mfs_vv s, w;
    if (stable_now(r, &s, &w))
        return;
    if (r->have_settled && vv_same(&s, &r->settled)) {
        mfs_vv_free(&s);
        mfs_vv_free(&w);
        return;
    }
    r->cand = s;
    r->cand_wait = w;
    r->have_cand = true;
    if (vv_covers(&r->my, &r->cand_wait))
        update_settled(r);
}

void mfs_repl_settled(mfs_repl *r, mfs_vv *out)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    out->n = 0;
    out->e = NULL;
    if (r->have_settled)
        vv_copy(out, &r->settled);
    mfs_lock_drop(&r->mu);
}

/* ---- chunks ------------------------------------------------------------- */

static size_t req_slot(const uint8_t *hash)
{
    uint64_t h;
    memcpy(&h, hash, sizeof h);
    return (size_t)(h & (REQ_SLOTS - 1));
}

static creq *req_find(mfs_repl *r, const uint8_t *hash)
{
    for (size_t i = req_slot(hash);; i = (i + 1) & (REQ_SLOTS - 1)) {
        if (!r->req[i].used)
            return NULL;
        if (memcmp(r->req[i].hash, hash, MFS_HASH_LEN) == 0)
            return &r->req[i];
    }
}

static creq *req_add(mfs_repl *r, const uint8_t *hash)
{
    if (r->nreq >= REQ_MAX)
        return NULL;
    size_t i = req_slot(hash);
    while (r->req[i].used)
        i = (i + 1) & (REQ_SLOTS - 1);
    memset(&r->req[i], 0, sizeof(r->req[i]));
    r->req[i].used = true;
    r->req[i].expire_us = r->now + CREQ_FORGET_US;
    memcpy(r->req[i].hash, hash, MFS_HASH_LEN);
    r->nreq++;
    return &r->req[i];
}

/* Linear probing with backward-shift deletion. */
static void req_del(mfs_repl *r, creq *e)
{
    size_t i = (size_t)(e - r->req);
    if (e->peer) {
        rpeer *p = peer_find(r, e->peer);
        if (p && p->chunk_inflight)
            p->chunk_inflight--;
    }
    r->req[i].used = false;
    r->nreq--;
    size_t j = i;
    for (;;) {
        j = (j + 1) & (REQ_SLOTS - 1);
        if (!r->req[j].used)
            return;
        size_t k = req_slot(r->req[j].hash);
        /* move j back to i when its home k is not in (i, j] */
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            r->req[i] = r->req[j];
            r->req[j].used = false;
            i = j;
        }
    }
}

static uint32_t window_chunks(const mfs_repl *r)
{
    uint32_t n = r->cfg.chunk_window / (MFS_CHUNK_SIZE / 4);
    return n ? n : 1;
}

static bool tried(const creq *e, uint64_t id)
{
    for (unsigned i = 0; i < e->ntried; i++)
        if (e->tried[i] == id)
            return true;
    return false;
}

static bool can_ask(mfs_repl *r, const rpeer *p, const creq *e, int state)
{
    return p->state == state && !p->left &&
           p->chunk_inflight < window_chunks(r) && !tried(e, p->id);
}

/* Picks whom to ask for a chunk: the node that published the version (it
 * held the chunk) if it is alive, else an alive peer (spread by hash),
 * else a suspect one. Never one that said it lacks it. */
static rpeer *pick_source(mfs_repl *r, const creq *e, uint64_t origin)
{
    rpeer *o = origin ? peer_find(r, origin) : NULL;
    if (o && can_ask(r, o, e, MFS_PEER_ALIVE))
        return o;
    if (!r->npeers)
        return NULL;
    size_t start = e->hash[1] % r->npeers;
    for (int state = MFS_PEER_ALIVE; state <= MFS_PEER_SUSPECT; state++)
        for (size_t k = 0; k < r->npeers; k++) {
            rpeer *p = &r->peers[(start + k) % r->npeers];
            if (can_ask(r, p, e, state))
                return p;
        }
    return NULL;
}

/* A live peer not known to lack e's chunk has no room for requests now.
 * (Without this, a chunk that a third node lacked waited a second when the
 * node that had it was busy: a transfer to two nodes ran at ~35 MB/s
 * instead of ~45, bench/repl/hol.sh NODES=3.) */
static bool untried_busy(mfs_repl *r, const creq *e)
{
    for (size_t i = 0; i < r->npeers; i++) {
        const rpeer *p = &r->peers[i];
        if (peer_live(p) && !p->left && !tried(e, p->id))
            return true;
    }
    return false;
}

typedef struct want_batch {
    uint64_t peer;
    uint8_t *b;
    size_t n;
} want_batch;

static void flush_want(mfs_repl *r, want_batch *wb)
{
    rpeer *p = wb->n ? peer_find(r, wb->peer) : NULL;
    if (p && send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_WANT, wb->b,
                      wb->n * MFS_HASH_LEN) < 0) {
        /* not sent: forget these requests, the next scan asks again */
        rescan(r);
        for (size_t i = 0; i < wb->n; i++) {
            creq *e = req_find(r, wb->b + i * MFS_HASH_LEN);
            if (e)
                req_del(r, e);
        }
    }
    wb->n = 0;
}

static void expire_requests(mfs_repl *r)
{
    uint64_t timeout = (uint64_t)r->cfg.chunk_timeout_ms * 1000;
    if (!r->nreq)
        return; /* (a sweep reads all 32768 slots, ~3 MB) */
    for (size_t i = 0; i < REQ_SLOTS;) {
        creq *e = &r->req[i];
        if (e->used && !e->arriving) {
            rpeer *p = e->peer ? peer_find(r, e->peer) : NULL;
            /* a request parked on a peer that went silent is asked
             * again elsewhere after half a second; that peer counts as
             * tried (its WANT is still queued and may be answered) */
            if (e->peer && p && peer_live(p) && p->state == MFS_PEER_SUSPECT &&
                r->now - e->asked_us > 500000u &&
                r->now - e->asked_us <= timeout) {
                if (p->chunk_inflight)
                    p->chunk_inflight--;
                if (e->ntried < MAX_TRIED)
                    e->tried[e->ntried++] = p->id;
                e->peer = 0;
                e->retry_us = 0;
                e->expire_us = r->now + CREQ_FORGET_US;
                rescan(r);
                i++;
                continue;
            }
            bool drop = e->peer ? (!p || !peer_live(p) ||
                                   r->now - e->asked_us > timeout)
                                : r->now >= e->expire_us;
            if (drop) {
                req_del(r, e); /* may shift a later entry into slot i */
                rescan(r);
                continue;
            }
        }
        i++;
    }
}

static void fetch_chunks(mfs_repl *r)
{
    r->chunk_scan_us = r->now;
    ssize_t cnt = mfs_store_chunks_wanted_count(r->store);
    uint64_t was = r->wanted_local;
    r->wanted_local = cnt > 0 ? (uint64_t)cnt : 0;
    /* peers judge "in sync" and "holds FILE" by this count: tell them
     * when it reaches zero or starts, and now and then while it moves */
    if ((was == 0) != (r->wanted_local == 0) ||
        (was != r->wanted_local && r->now - r->state_bcast_us > 1000000u))
        if (!r->state_changed_us)
            r->state_changed_us = r->now;
    if (r->wanted_local == 0) {
        r->chunks_dirty = false;
        return;
    }
    uint32_t room = 0;
    for (size_t i = 0; i < r->npeers; i++)
        if (peer_live(&r->peers[i]) &&
            r->peers[i].chunk_inflight < window_chunks(r))
            room += window_chunks(r) - r->peers[i].chunk_inflight;
    if (room == 0)
        return;
    /* Where to read the wanted list (in hash order): after the last hash
     * the previous scan reached, enough for the room left; from the first
     * hash (past every request open) after the end, once a second, and
     * at most every SCAN_EVERY_US after something changed what we want
     * or whom to ask (rescan_all: a request given up, ops applied), so
     * that those requests are made. Reading it from the
     * first hash every time, as chunks arrived every 2 ms, cost a tenth
     * of the CPU of a three-node transfer (perf: mfs_repl_tick,
     * mfs_store_chunks_wanted_by, LMDB). */
    uint64_t since_full = r->now - r->full_scan_us;
    bool full = !r->scan_cursor ||
                (r->rescan_all && since_full >= SCAN_EVERY_US) ||
                since_full >= FULL_SCAN_US;
    size_t max = full ? r->nreq + room : room + WANT_MAX;
    if (max > REQ_MAX + 1024)
        max = REQ_MAX + 1024;
    if (full) {
        r->full_scan_us = r->now;
        r->rescan_all = false;
    }
    uint8_t *hashes = malloc(max * MFS_HASH_LEN);
    uint64_t *origins = malloc(max * sizeof(*origins));
    if (!hashes || !origins) {
        free(hashes);
        free(origins);
        return;
    }
    ssize_t n = mfs_store_chunks_wanted_by(
        r->store, full ? NULL : r->scan_after, hashes, origins, max);
    want_batch *wb = calloc(r->npeers, sizeof(*wb));
    if (!wb) {
        free(hashes);
        free(origins);
        return;
    }
    for (size_t i = 0; i < r->npeers; i++) {
        wb[i].peer = r->peers[i].id;
        wb[i].b = malloc(WANT_MAX * MFS_HASH_LEN);
    }
    ssize_t k = 0;
    for (; k < n && room; k++) {
        const uint8_t *h = hashes + (size_t)k * MFS_HASH_LEN;
        creq *e = req_find(r, h);
        if (e && (e->peer || e->arriving))
            continue; /* asked, or here and being stored */
        if (e && r->now < e->retry_us)
            continue; /* no peer had it, or its source was busy: wait */
        if (!e && !(e = req_add(r, h)))
            break;
        rpeer *p = pick_source(r, e, origins[k]);
        if (!p) {
            if (e->ntried == 0) {
                req_del(r, e); /* no peer with room: next scan */
                continue;
            }
            if (untried_busy(r, e))
                continue; /* one that may hold it has no room: next scan */
            e->ntried = 0; /* every live peer lacks it: ask again later */
            e->retry_us = r->now + NOCHUNK_RETRY_US;
            e->expire_us = r->now + CREQ_FORGET_US;
            continue;
        }
        e->peer = p->id;
        e->asked_us = r->now;
        p->chunk_inflight++;
        room--;
        want_batch *b = &wb[p - r->peers];
        if (!b->b)
            continue;
        memcpy(b->b + b->n * MFS_HASH_LEN, h, MFS_HASH_LEN);
        if (++b->n == WANT_MAX)
            flush_want(r, b);
    }
    for (size_t i = 0; i < r->npeers; i++) {
        if (wb[i].b)
            flush_want(r, &wb[i]);
        free(wb[i].b);
    }
    /* the next scan goes on after the last hash looked at; past the end,
     * from the first */
    r->scan_cursor = n == (ssize_t)max || k < n;
    if (r->scan_cursor)
        memcpy(r->scan_after, hashes + (size_t)(k - 1) * MFS_HASH_LEN,
               MFS_HASH_LEN);
    free(wb);
    free(hashes);
    free(origins);
}

/* Asks for the chunks of the small versions the batches applied since
 * the last tick brought (mfs_apply_result.small), on the urgent channel,
 * from the node that published each (else from the sender of the batch),
 * beyond the fetch window by up to SMALL_EXTRA requests per peer.
 * Otherwise they waited for fetch_chunks, which asks in hash order: small
 * files written during a 1 GiB transfer reached the peer with p99 1.3 s,
 * some after 4-5 s (queued behind the large file's chunks), 2.5 ms on an
 * idle link (bench/repl/hol.sh). At the tick, not when the batch is
 * applied: a push's sender sends those chunks right behind it
 * (push_new), and what came on the urgent channel is taken before the
 * tick, so they are here ("arriving") and asked of nobody. */
static void fetch_small(mfs_repl *r)
{
    uint8_t b[WANT_MAX * MFS_HASH_LEN];
    for (size_t pass = 0; pass < 2; pass++) {
        /* pass 0: the publishers; pass 1: whatever is left, the sender;
         * one WANT per peer and pass */
        for (;;) {
            rpeer *to = NULL;
            size_t n = 0;
            for (size_t i = 0; i < r->nsmallq && n < WANT_MAX; i++) {
                small_want *q = &r->smallq[i];
                creq *e = req_find(r, q->hash);
                if (e && (e->peer || e->arriving))
                    continue; /* asked already, or here */
                rpeer *o = peer_find(r, pass ? q->from : q->origin);
                if (!o || !peer_live(o) || o->left ||
                    o->chunk_inflight >= window_chunks(r) + SMALL_EXTRA ||
                    (e && tried(e, o->id)) || (to && o != to))
                    continue;
                if (!e && !(e = req_add(r, q->hash)))
                    break;
                to = o;
                e->peer = o->id;
                e->asked_us = r->now;
                o->chunk_inflight++;
                memcpy(b + n++ * MFS_HASH_LEN, q->hash, MFS_HASH_LEN);
            }
            if (!n)
                break;
            if (send_msg(r, to, MFS_SYNC_URGENT, MFS_MT_WANT, b,
                         n * MFS_HASH_LEN) < 0) {
                rescan(r);
                for (size_t i = 0; i < n; i++) {
                    creq *e = req_find(r, b + i * MFS_HASH_LEN);
                    if (e)
                        req_del(r, e); /* fetch_chunks asks again */
                }
                break;
            }
        }
    }
    r->nsmallq = 0; /* the rest: fetch_chunks */
}

/* Notes the small versions' chunks a batch brought, for fetch_small. */
static void small_note(mfs_repl *r, rpeer *from, const mfs_apply_result *res)
{
    for (size_t i = 0; i < res->nsmall; i++) {
        if (r->nsmallq == SMALL_Q)
            fetch_small(r);
        small_want *q = &r->smallq[r->nsmallq++];
        memcpy(q->hash, res->small[i], MFS_HASH_LEN);
        q->origin = res->small_origin[i];
        q->from = from->id;
    }
}

/* Sends chunk h to p (r->buf a scratch of MFS_CHUNK_SIZE, msg one of
 * CHUNK_MSG_CAP): 1 sent, 0 we lack it, < 0 the queue to p is full. */
static int send_chunk(mfs_repl *r, rpeer *p, const uint8_t *h, uint8_t *msg)
{
    ssize_t cl = mfs_store_chunk_get(r->store, h, r->buf, MFS_CHUNK_SIZE);
    if (cl < 0)
        return 0;
    size_t zl = maybe_compress(r, r->buf, (size_t)cl);
    mfs_wbuf w;
    mfs_wbuf_init(&w, msg, CHUNK_MSG_CAP);
    mfs_put_bytes(&w, h, MFS_HASH_LEN);
    mfs_put_u8(&w, zl ? CHUNK_ZLIB : 0);
    mfs_put_u32(&w, (uint32_t)cl);
    mfs_put_bytes(&w, zl ? r->zbuf : r->buf, zl ? zl : (size_t)cl);
    /* a small chunk (a small file's) goes ahead of the bulk queue */
    int ch = cl <= SMALL_CHUNK ? MFS_SYNC_URGENT : MFS_SYNC_BULK;
    int rc = w.err ? w.err : send_msg(r, p, ch, MFS_MT_CHUNK, msg, w.len);
    if (rc < 0)
        return rc;
    p->chunks_sent++;
    return 1;
}

static void on_want(mfs_repl *r, rpeer *p, const uint8_t *data, size_t len)
{
    if (len == 0 || len % MFS_HASH_LEN || len / MFS_HASH_LEN > WANT_MAX) {
        bad_msg(r, p, __func__);
        return;
    }
    size_t n = len / MFS_HASH_LEN;
    uint8_t absent[1 + WANT_MAX * MFS_HASH_LEN],
        busy[1 + WANT_MAX * MFS_HASH_LEN];
    size_t na = 0, nb = 0;
    uint8_t *msg = malloc(CHUNK_MSG_CAP);
    if (!msg || scratch(&r->buf, &r->bufcap, MFS_CHUNK_SIZE)) {
        free(msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *h = data + i * MFS_HASH_LEN;
        int rc = send_chunk(r, p, h, msg);
        if (rc == 0)
            memcpy(absent + 1 + na++ * MFS_HASH_LEN, h, MFS_HASH_LEN);
        else if (rc < 0)
            memcpy(busy + 1 + nb++ * MFS_HASH_LEN, h, MFS_HASH_LEN);
    }
    free(msg);
    if (na) {
        absent[0] = NOCHUNK_ABSENT;
        send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_NOCHUNK, absent,
                 1 + na * MFS_HASH_LEN);
    }
    if (nb) {
        busy[0] = NOCHUNK_BUSY;
        send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_NOCHUNK, busy,
                 1 + nb * MFS_HASH_LEN);
    }
}

/* ---- storing chunks --------------------------------------------------------
 * Received chunks are checked against their hashes and stored PEND_MAX at a
 * time, in one transaction (mfs_store_chunks_put), by the writer that
 * cfg.store_chunks names:
 *  - MFS_REPL_STORE_NOW: at the next tick, or once PEND_MAX have come, on
 *    the engine's thread (tools, tests);
 *  - MFS_REPL_STORE_THREAD: by a thread of the engine's own (the daemon),
 *    so that the engine never waits for the store: a group commit holds
 *    the store's writer lock for 3-15 ms, and checking 64 chunks' hashes
 *    takes about 6 ms, while messages from other peers wait (a small file
 *    from a third node reached it with p99 50 ms during a bulk transfer);
 *  - MFS_REPL_STORE_NEXT_TICK: at the following tick on the engine's thread:
 *    the same bookkeeping as the thread, deterministic (the simulator).
 * A chunk stays in the request table as "arriving" from its arrival until
 * it is stored: never asked again meanwhile, its peer's window freed at
 * once. At most WR_JOBS jobs wait for the thread; beyond that the engine
 * waits (the disk is slower than the network). */
#define WR_JOBS 8
enum { JOB_BULK, JOB_SMALL }; /* the jobs being filled (r->job) */
static cjob *todo_pop(mfs_repl *r);
#define WR_COLLECT_US 1000 /* while it stores, the engine looks this often */

static void store_job(mfs_repl *r, cjob *j)
{
    j->rc = mfs_store_chunks_put(r->store, j->c, j->n);
    if (j->rc < 0)
        mfs_log(LOG_ERR,
                "sync: cannot store %zu received chunks: %s; they are asked "
                "for again at the next scan%s",
                j->n, strerror(-j->rc),
                j->rc == -ENOSPC ? " (free some space on the store's disk)"
                                 : "");
}

/* What a stored job means to the engine (its thread, r->mu held). */
static void job_done(mfs_repl *r, cjob *j)
{
    for (size_t i = 0; i < j->n; i++) {
        creq *e = req_find(r, j->c[i].hash);
        if (e && e->arriving && --e->arriving == 0)
            req_del(r, e); /* (stored, or bad: the next scan asks again) */
        rpeer *p = peer_find(r, j->peer[i]);
        if (j->c[i].len == 0)
            r->rescan_all = true; /* wanted still: ask again */
        if (p && j->c[i].len == 0)
            bad_msg(r, p, "chunk does not match its hash");
        else if (p && j->rc >= 0)
            p->chunks_recv++;
        free((void *)j->c[i].data);
    }
    free(j);
    r->jobs_out--;
    r->chunks_dirty = true;
}

static void *writer_main(void *arg)
{
    mfs_repl *r = arg;
    pthread_setname_np(pthread_self(), "mfs-chunks"); /* top, perf */
    mfs_lock_take(&r->wr_mu, MFS_LOCK_REPL_WR);
    for (;;) {
        while (!r->wr_todo && !r->wr_stop)
            pthread_cond_wait(&r->wr_work, &r->wr_mu);
        cjob *j = todo_pop(r);
        if (!j)
            break; /* stopping, and everything handed over is stored */
        mfs_lock_drop(&r->wr_mu);
        store_job(r, j);
        mfs_lock_take(&r->wr_mu, MFS_LOCK_REPL_WR);
        *r->wr_done_tail = j;
        r->wr_done_tail = &j->next;
        r->wr_busy--;
        r->wr_bytes -= j->bytes;
        pthread_cond_broadcast(&r->wr_room);
    }
    mfs_lock_drop(&r->wr_mu);
    return NULL;
}

/* Takes what the writer stored (engine's thread, r->mu held); with
 * MFS_REPL_STORE_NEXT_TICK stores what the last tick handed over first. */
static void collect_chunks(mfs_repl *r)
{
    if (r->cfg.store_chunks == MFS_REPL_STORE_NEXT_TICK)
        for (cjob *j; (j = todo_pop(r));) {
            store_job(r, j);
            job_done(r, j);
        }
    if (r->cfg.store_chunks != MFS_REPL_STORE_THREAD)
        return;
    mfs_lock_take(&r->wr_mu, MFS_LOCK_REPL_WR);
    cjob *j = r->wr_done;
    r->wr_done = NULL;
    r->wr_done_tail = &r->wr_done;
    mfs_lock_drop(&r->wr_mu);
    while (j) {
        cjob *next = j->next;
        job_done(r, j);
        j = next;
    }
}

/* Queues a job for the writer (wr_mu held, or no thread): a job of small
 * chunks goes first, so a small file's chunk does not wait for the large
 * one's (up to WR_JOBS jobs of 4 MiB). */
static void todo_push(mfs_repl *r, cjob *j, bool first)
{
    if (first) {
        j->next = r->wr_todo;
        r->wr_todo = j;
        if (!j->next)
            r->wr_todo_tail = &j->next;
    } else {
        j->next = NULL;
        *r->wr_todo_tail = j;
        r->wr_todo_tail = &j->next;
    }
}

static cjob *todo_pop(mfs_repl *r)
{
    cjob *j = r->wr_todo;
    if (j) {
        r->wr_todo = j->next;
        if (!r->wr_todo)
            r->wr_todo_tail = &r->wr_todo;
        j->next = NULL;
    }
    return j;
}

/* Hands one of the jobs being filled to the writer. */
static void flush_job(mfs_repl *r, int k)
{
    cjob *j = r->job[k];
    if (!j || !j->n)
        return;
    r->job[k] = NULL;
    r->jobs_out++;
    switch (r->cfg.store_chunks) {
    case MFS_REPL_STORE_THREAD:
        /* without the engine's lock while waiting for room: status
         * readers need not wait for the disk (only the engine's thread
         * changes the engine) */
        mfs_lock_drop(&r->mu);
        mfs_lock_take(&r->wr_mu, MFS_LOCK_REPL_WR);
        while (r->wr_busy >= WR_JOBS)
            pthread_cond_wait(&r->wr_room, &r->wr_mu);
        todo_push(r, j, k == JOB_SMALL);
        r->wr_busy++;
        r->wr_bytes += j->bytes;
        if (r->wr_bytes > r->wr_max)
            r->wr_max = r->wr_bytes;
        pthread_cond_signal(&r->wr_work);
        mfs_lock_drop(&r->wr_mu);
        mfs_lock_take(&r->mu, MFS_LOCK_REPL);
        return;
    case MFS_REPL_STORE_NEXT_TICK:
        todo_push(r, j, k == JOB_SMALL);
        return;
    default:
        /* without the engine's lock, as above */
        mfs_lock_drop(&r->mu);
        store_job(r, j);
        mfs_lock_take(&r->mu, MFS_LOCK_REPL);
        job_done(r, j);
    }
}

/* Hands the chunks received since the last call to the writer. */
static void flush_chunks(mfs_repl *r)
{
    flush_job(r, JOB_SMALL);
    flush_job(r, JOB_BULK);
}

/* A chunk came: it is "arriving" until stored, and the window it took on
 * the peer that was asked for it is free. */
static void req_arrived(mfs_repl *r, const uint8_t *hash)
{
    creq *e = req_find(r, hash);
    if (!e && !(e = req_add(r, hash)))
        return; /* (table full: it may be asked again, harmless) */
    if (e->peer) {
        rpeer *p = peer_find(r, e->peer);
        if (p && p->chunk_inflight)
            p->chunk_inflight--;
        e->peer = 0;
    }
    e->arriving++;
}

static void on_chunk(mfs_repl *r, rpeer *p, mfs_rbuf *rb)
{
    const uint8_t *h = mfs_get_bytes(rb, MFS_HASH_LEN);
    uint8_t flags = mfs_get_u8(rb);
    uint32_t raw = mfs_get_u32(rb);
    size_t left = mfs_rbuf_left(rb);
    const uint8_t *data = mfs_get_bytes(rb, left);
    if (rb->err || (flags & ~CHUNK_ZLIB) || raw > MFS_CHUNK_SIZE ||
        (!(flags & CHUNK_ZLIB) && raw != left)) {
        bad_msg(r, p, __func__);
        return;
    }
    uint8_t hash[MFS_HASH_LEN];
    memcpy(hash, h, MFS_HASH_LEN);
    if (!payload(r, p, flags & CHUNK_ZLIB, &data, left, raw, __func__))
        return;
    void *copy = malloc(raw ? raw : 1);
    int k = raw <= SMALL_CHUNK ? JOB_SMALL : JOB_BULK;
    if (!r->job[k])
        r->job[k] = calloc(1, sizeof(*r->job[k]));
    if (!copy || !r->job[k]) {
        free(copy);
        creq *e = req_find(r, hash);
        if (e && !e->arriving)
            req_del(r, e); /* still wanted: asked again later */
        return;
    }
    memcpy(copy, data, raw);
    req_arrived(r, hash);
    cjob *j = r->job[k];
    mfs_chunk_in *c = &j->c[j->n];
    memcpy(c->hash, hash, MFS_HASH_LEN);
    c->data = copy;
    c->len = raw;
    j->peer[j->n++] = p->id;
    j->bytes += raw;
    r->rx_bytes += left;
    if (j->n == PEND_MAX)
        flush_job(r, k);
}

static void on_nochunk(mfs_repl *r, rpeer *p, const uint8_t *data, size_t len)
{
    if (len < 1 + MFS_HASH_LEN || (len - 1) % MFS_HASH_LEN || data[0] > 1) {
        bad_msg(r, p, __func__);
        return;
    }
    for (size_t i = 1; i < len; i += MFS_HASH_LEN) {
        creq *e = req_find(r, data + i);
        if (!e || e->peer != p->id)
            continue;
        if (p->chunk_inflight)
            p->chunk_inflight--;
        e->peer = 0;
        e->retry_us = 0;
        e->expire_us = r->now + CREQ_FORGET_US;
        if (data[0] == NOCHUNK_ABSENT && e->ntried < MAX_TRIED)
            e->tried[e->ntried++] = p->id;
        else if (data[0] == NOCHUNK_BUSY)
            e->retry_us = r->now + 100000u; /* its queue is full: wait */
    }
    rescan(r);
}

/* ---- entry points ---------------------------------------------------------
 */

int mfs_repl_msg_bulk(uint8_t mtype, const uint8_t *data, size_t len)
{
    switch (mtype) {
    case MFS_MT_CHUNK: /* hash, flags, raw length, bytes */
        return len > MFS_HASH_LEN + 5 + SMALL_CHUNK;
    case MFS_MT_OPS: /* request id (0: a push), ... */
        return len >= BULK_OPS_BYTES || (len >= 8 && mfs_be64_get(data) != 0);
    case MFS_MT_SNAP:
        return 1;
    default:
        return 0;
    }
}

int mfs_repl_new(mfs_store *s, const mfs_repl_config *cfg, uint64_t now_us,
                 mfs_repl **out)
{
    if (!s || !cfg || !cfg->send || !cfg->batch_bytes || !cfg->pull_bytes)
        return -EINVAL;
    mfs_repl *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->req = calloc(REQ_SLOTS, sizeof(*r->req));
    if (!r->req) {
        free(r);
        return -ENOMEM;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->wr_mu, NULL);
    pthread_cond_init(&r->wr_work, NULL);
    pthread_cond_init(&r->wr_room, NULL);
    r->wr_todo_tail = &r->wr_todo;
    r->wr_done_tail = &r->wr_done;
    r->apply_tail = &r->apply_head;
    r->logged_tail = &r->logged;
    pthread_mutex_init(&r->logged_mu, NULL);
    r->store = s;
    r->cfg = *cfg;
    r->node = mfs_store_node_id(s);
    r->now = now_us;
    r->rate_at_us = now_us;
    rescan(r);
    /* messages are ordered per sender only by this sequence: start above
     * anything an earlier run of this node sent */
    r->state_seq = r->held_msg_seq = wall_ms(r) * 1000;
    member_join(r);
    refresh_my(r);
    if (cfg->store_chunks == MFS_REPL_STORE_THREAD) {
        int rc = pthread_create(&r->wr_thread, NULL, writer_main, r);
        if (rc) {
            mfs_repl_free(r);
            return -rc;
        }
        r->wr_started = true;
    }
    *out = r;
    return 0;
}

void mfs_repl_free(mfs_repl *r)
{
    if (!r)
        return;
    /* what came is stored: the thread ends once it stored every job */
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    flush_chunks(r);
    mfs_lock_drop(&r->mu);
    if (r->wr_started) {
        mfs_lock_take(&r->wr_mu, MFS_LOCK_REPL_WR);
        r->wr_stop = true;
        pthread_cond_signal(&r->wr_work);
        mfs_lock_drop(&r->wr_mu);
        pthread_join(r->wr_thread, NULL);
    }
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    collect_chunks(r);
    mfs_lock_drop(&r->mu);
    mfs_repl_await_cancel(r, -ESHUTDOWN);
    logged_drop(r, r->logged);
    pthread_mutex_destroy(&r->logged_mu);
    /* OPS messages not applied whole yet: their peers send them again */
    while (r->apply_head) {
        apply_job *j = r->apply_head;
        r->apply_head = j->next;
        free(j);
    }
    for (size_t i = 0; i < r->npeers; i++) {
        mfs_vv_free(&r->peers[i].vv);
        mfs_vv_free(&r->peers[i].pushed);
    }
    mfs_vv_free(&r->my);
    mfs_vv_free(&r->told);
    mfs_vv_free(&r->durable);
    mfs_vv_free(&r->settled);
    mfs_vv_free(&r->cand);
    mfs_vv_free(&r->cand_wait);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->wr_mu);
    pthread_cond_destroy(&r->wr_work);
    pthread_cond_destroy(&r->wr_room);
    free(r->req);
    free(r->buf);
    free(r->zbuf);
    snap_free(r);
    if (r->zs_ok)
        deflateEnd(&r->zs);
    if (r->is_ok)
        inflateEnd(&r->is);
    free(r);
}

void mfs_repl_on_msg(mfs_repl *r, uint64_t now_us, uint64_t from, uint8_t mtype,
                     const uint8_t *data, size_t len)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    r->now = now_us;
    rpeer *p = peer_get(r, from);
    if (!p) {
        mfs_lock_drop(&r->mu);
        return;
    }
    if (p->removed) {
        /* a removed member: nothing it says counts (logged once a minute);
         * it is told so every 10 s, for its log and `meshfs stat` */
        r->refused++;
        if (!p->refused_sent_us || now_us - p->refused_sent_us >= 10000000u) {
            static const uint8_t zero = 0;
            send_msg(r, p, MFS_SYNC_URGENT, MFS_MT_REFUSED, &zero, 1);
            p->refused_sent_us = now_us;
        }
        if (!r->refused_log_us || now_us - r->refused_log_us > 60000000u) {
            r->refused_log_us = now_us;
            mfs_log(LOG_WARNING,
                    "sync: refusing node %016" PRIx64 ": it was removed from "
                    "the mesh (meshfs remove); to come back it must join "
                    "again",
                    p->id);
        }
        mfs_lock_drop(&r->mu);
        return;
    }
    p->bytes_recv += len;
    if (p->state == MFS_PEER_DEAD)
        p->state = MFS_PEER_ALIVE; /* it talks: the transport says so next */
    mfs_rbuf rb;
    mfs_rbuf_init(&rb, data, len);
    switch (mtype) {
    case MFS_MT_STATE:
        on_state(r, p, &rb);
        break;
    case MFS_MT_PULL:
        on_pull(r, p, &rb);
        break;
    case MFS_MT_OPS:
        on_ops(r, p, &rb);
        break;
    case MFS_MT_WANT:
        on_want(r, p, data, len);
        break;
    case MFS_MT_CHUNK:
        on_chunk(r, p, &rb);
        break;
    case MFS_MT_NOCHUNK:
        on_nochunk(r, p, data, len);
        break;
    case MFS_MT_BYE:
        if (len != 1 || data[0] != 0) {
            bad_msg(r, p, "bye");
            break;
        }
        p->left = true;
        mfs_log(LOG_INFO, "sync: peer %016" PRIx64 " left the mesh", p->id);
        if (r->pull_peer == p->id)
            r->pull_peer = 0;
        rescan(r); /* its requests go elsewhere */
        break;
    case MFS_MT_SNAPGET:
        on_snapget(r, p, &rb);
        break;
    case MFS_MT_SNAP:
        on_snap(r, p, &rb);
        break;
    case MFS_MT_REFUSED:
        if (len != 1 || data[0] != 0) {
            bad_msg(r, p, "refused");
            break;
        }
        self_removed(r, p->id);
        break;
    case MFS_MT_HELD:
        on_held(r, p, &rb);
        break;
    case MFS_MT_ASKHELD:
        on_askheld(r, p, &rb);
        break;
    default:
        bad_msg(r, p, __func__);
    }
    mfs_lock_drop(&r->mu);
}

void mfs_repl_on_peer(mfs_repl *r, uint64_t now_us, uint64_t id, int state,
                      uint64_t epoch)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    r->now = now_us;
    bool fresh = !peer_find(r, id);
    rpeer *p = peer_get(r, id);
    if (p) {
        int was = p->state;
        bool restarted = p->epoch && epoch && epoch != p->epoch;
        /* a new incarnation numbers its STATEs anew (from its wall clock,
         * which may have stepped back); the core drops the old one's
         * messages once it knows the new epoch */
        if (restarted)
            p->state_seq = p->held_seq = 0;
        if (epoch)
            p->epoch = epoch;
        p->state = state;
        if (state == MFS_PEER_DEAD) {
            if (r->pull_peer == id)
                r->pull_peer = 0;
        } else if (fresh || restarted || was == MFS_PEER_DEAD) {
            p->left = false;
            /* (re)learned or restarted: messages in flight were dropped,
             * so assume only what it reported, and tell it where we are */
            if (p->vv.e)
                vv_copy(&p->pushed, &p->vv);
            else
                mfs_vv_free(&p->pushed);
            if (r->pull_peer == id)
                r->pull_peer = 0;
            p->chunk_inflight = 0;
            for (size_t i = 0; i < REQ_SLOTS; i++)
                if (r->req[i].used && r->req[i].peer == id) {
                    r->req[i].peer = 0;
                    r->req[i].retry_us = 0;
                    r->req[i].expire_us = now_us + CREQ_FORGET_US;
                }
            p->state_now = true;
            rescan(r);
        }
        held_check(r, NULL); /* too few members left for a wait? */
    }
    mfs_lock_drop(&r->mu);
}

size_t mfs_repl_bye(mfs_repl *r)
{
    uint64_t ids[MAX_PEERS];
    size_t n = 0;
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    for (size_t i = 0; i < r->npeers; i++)
        if (peer_live(&r->peers[i]))
            ids[n++] = r->peers[i].id;
    mfs_lock_drop(&r->mu);
    /* sent without r->mu: the transport's lock is taken before ours on
     * the sync thread */
    /* one byte (a reason, 0 = unmount): the transport counts it as queued
     * until the peer acks it, so the caller can wait for that */
    static const uint8_t reason = 0;
    size_t told = 0;
    for (size_t i = 0; i < n; i++)
        told += r->cfg.send(r->cfg.arg, ids[i], MFS_SYNC_URGENT, MFS_MT_BYE,
                            &reason, 1) == 0;
    return told;
}

int mfs_repl_work(mfs_repl *r, uint64_t now_us)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    r->now = now_us;
    int more = apply_slice(r);
    mfs_lock_drop(&r->mu);
    return more;
}

int mfs_repl_work_pending(mfs_repl *r)
{
    return atomic_load(&r->apply_busy);
}

void mfs_repl_changed(mfs_repl *r)
{
    atomic_store(&r->changed, 1);
}

int mfs_repl_pending(mfs_repl *r)
{
    return atomic_load(&r->changed);
}

static void update_rates(mfs_repl *r)
{
    uint64_t dt = r->now - r->rate_at_us;
    if (dt < 1000000u)
        return;
    double s = (double)dt / 1e6;
    double ops = (double)(r->rx_ops - r->rate_ops0) / s;
    double bytes = (double)(r->rx_bytes - r->rate_bytes0) / s;
    r->ops_rate = 0.5 * r->ops_rate + 0.5 * ops;
    r->bytes_rate = 0.5 * r->bytes_rate + 0.5 * bytes;
    r->rate_ops0 = r->rx_ops;
    r->rate_bytes0 = r->rx_bytes;
    r->rate_at_us = r->now;
}

uint64_t mfs_repl_tick(mfs_repl *r, uint64_t now_us)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    r->now = now_us;
    if (r->nsmallq)
        fetch_small(r);
    push_logged(r);
    if (atomic_exchange(&r->changed, 0)) {
        /* what the store holds now for members waiting, first: the rest
         * reads the store, which may wait for a commit's flush */
        serve_asks(r);
        refresh_my(r);
        push_new(r);
        /* STATE reports what we hold durably: only a change of that since
         * the last broadcast is news (a commit of no ops, as the
         * collector's, is not). Compared with what was told, not with the
         * vector before this refresh: status readers refresh it too. */
        if ((!r->have_told || !vv_same(&r->told, &r->durable)) &&
            !r->state_changed_us)
            r->state_changed_us = now_us;
    }
    uint64_t coalesce = (uint64_t)r->cfg.coalesce_ms * 1000;
    uint64_t period = (uint64_t)r->cfg.state_ms * 1000;
    uint64_t next = now_us + 1000000u;
    if (r->state_changed_us) {
        if (now_us - r->state_bcast_us >= coalesce) {
            for (size_t i = 0; i < r->npeers; i++)
                if (peer_live(&r->peers[i]))
                    r->peers[i].state_now = true;
            r->state_changed_us = 0;
            r->state_bcast_us = now_us;
            mfs_vv_free(&r->told);
            r->have_told = vv_copy(&r->told, &r->durable) == 0;
        } else if (r->state_bcast_us + coalesce < next) {
            next = r->state_bcast_us + coalesce;
        }
    }
    for (size_t i = 0; i < r->npeers; i++) {
        rpeer *p = &r->peers[i];
        if (!peer_live(p))
            continue;
        if (now_us - p->state_sent_us >= period)
            p->state_now = true;
        if (p->state_now)
            send_state(r, p);
        if (p->state_sent_us + period < next)
            next = p->state_sent_us + period;
    }
    snap_tick(r, &next);
    held_tick(r, &next);
    maybe_pull(r);
    for (size_t i = 0; i < r->npeers && !r->pull_peer; i++) {
        const rpeer *p = &r->peers[i];
        uint64_t t = p->lack_since_us + (uint64_t)r->cfg.pull_grace_ms * 1000;
        if (p->lack_since_us && peer_live(p) && t > now_us && t < next)
            next = t; /* a lack that is not due yet */
    }
    if (r->pull_peer) {
        uint64_t t = r->pull_sent_us + (uint64_t)r->cfg.pull_timeout_ms * 1000;
        if (t < next)
            next = t;
    }
    /* chunks: rescan soon after something changed, else now and then to
     * retry and time out requests */
    uint64_t since = now_us - r->chunk_scan_us;
    collect_chunks(r);
    flush_chunks(r);
    if (now_us - r->expire_us >= SCAN_EVERY_US) {
        r->expire_us = now_us;
        expire_requests(r);
    }
    if (((r->chunks_dirty && since >= SCAN_DIRTY_US) ||
         (r->nreq && since >= SCAN_EVERY_US) || since >= 1000000u) &&
        !r->snap_inst) /* (snap_install) */
        fetch_chunks(r);
    if (r->chunks_dirty || r->nreq) {
        uint64_t t = r->chunk_scan_us +
                     (r->chunks_dirty ? SCAN_DIRTY_US : SCAN_EVERY_US);
        if (t < next)
            next = t;
    }
    if (r->jobs_out && now_us + WR_COLLECT_US < next)
        next = now_us + WR_COLLECT_US; /* take what the writer stored */
    update_rates(r);
    if (now_us - r->settle_us >= SETTLE_EVERY_US) {
        r->settle_us = now_us;
        update_settled(r);
    }
    if (r->settle_us + SETTLE_EVERY_US < next)
        next = r->settle_us + SETTLE_EVERY_US;
    if (next <= now_us)
        next = now_us + 1000;
    mfs_lock_drop(&r->mu);
    return next;
}

size_t mfs_repl_status_get(mfs_repl *r, mfs_repl_status *st, mfs_repl_peer *out,
                           size_t cap)
{
    /* the store's figures first: the engine's lock is not held while the
     * store is read (the network thread takes it for every message) */
    mfs_store_stats ss;
    uint64_t avg_chunk = MFS_CHUNK_SIZE;
    if (mfs_store_stats_get(r->store, &ss) == 0 && ss.chunks)
        avg_chunk = ss.chunk_bytes / ss.chunks;
    ssize_t wanted = mfs_store_chunks_wanted_count(r->store);
    mfs_lock_take(&r->wr_mu, MFS_LOCK_REPL_WR);
    uint64_t storing = r->wr_bytes, storing_max = r->wr_max;
    mfs_lock_drop(&r->wr_mu);
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    refresh_my(r);
    memset(st, 0, sizeof(*st));
    st->storing_bytes = storing;
    st->storing_max_bytes = storing_max;
    st->chunks_to_go = wanted > 0 ? (uint64_t)wanted : 0;
    st->in_sync = st->chunks_to_go == 0;
    for (size_t i = 0; i < r->npeers; i++) {
        rpeer *p = &r->peers[i];
        bool live = peer_live(p);
        uint64_t they = p->heard ? mfs_vv_missing(&r->my, &p->vv) : 0;
        uint64_t we = p->heard ? mfs_vv_missing(&p->vv, &r->my) : 0;
        if (!p->removed && (!p->heard || they) &&
            (!st->held_by || (!live && st->held_live))) {
            /* the first member that holds collection back; one that is
             * away is the one to name */
            st->held_by = p->id;
            st->held_live = live;
            st->held_heard = p->heard;
            st->held_last_us = p->last_state_us;
        }
        if (live) {
            st->live_peers++;
            if (!p->heard || they || we || p->wanted)
                st->in_sync = 0;
            if (we > st->ops_to_go)
                st->ops_to_go = we;
        }
        if (i < cap) {
            mfs_repl_peer *o = &out[i];
            memset(o, 0, sizeof(*o));
            o->id = p->id;
            o->state = p->state;
            o->heard = p->heard;
            o->left = p->left;
            o->removed = p->removed;
            o->ops_they_lack = they;
            o->ops_we_lack = we;
            o->chunks_they_want = p->wanted;
            o->bytes_they_lack = they * OP_BYTES_EST + p->wanted * avg_chunk;
            o->bytes_we_lack = we * OP_BYTES_EST;
            o->skew_ms = p->skew_ms;
            o->last_state_us = p->last_state_us;
            o->ops_sent = p->ops_sent;
            o->ops_recv = p->ops_recv;
            o->chunks_sent = p->chunks_sent;
            o->chunks_recv = p->chunks_recv;
            o->bytes_sent = p->bytes_sent;
            o->bytes_recv = p->bytes_recv;
            o->held = p->held;
            o->held_hlc = p->held_hlc;
        }
    }
    st->bytes_to_go =
        st->ops_to_go * OP_BYTES_EST + st->chunks_to_go * avg_chunk;
    st->ops_per_s = r->ops_rate;
    st->bytes_per_s = r->bytes_rate;
    st->catching_up = st->ops_to_go || st->chunks_to_go;
    st->eta_ms = -1;
    if (!st->catching_up)
        st->eta_ms = 0;
    else if (r->bytes_rate > 1)
        st->eta_ms = (int64_t)((double)st->bytes_to_go / r->bytes_rate * 1e3);
    st->bad_msgs = r->bad_msgs;
    st->refused = r->refused;
    st->removed_self = r->removed_self;
    st->removed_by = r->removed_by;
    if (r->removed_self)
        st->in_sync = 0;
    st->pulls = r->pulls;
    st->pushes = r->pushes;
    st->snap_from = r->snap_peer;
    st->snap_bytes_total = r->snap_total;
    st->snap_bytes_done =
        r->snap_off + (uint64_t)__builtin_popcount(r->snap_mask) * SNAP_PIECE;
    if (st->snap_bytes_done > r->snap_total)
        st->snap_bytes_done = r->snap_total;
    st->snaps_installed = r->snaps_installed;
    st->snaps_served = r->snaps_served;
    st->snap_refused = r->snap_refused;
    if (r->snap_peer || r->snap_refused || r->apply_head) {
        /* (ops received and not applied yet are not counted: a sender
         * that reported them counts in ops_to_go) */
        st->in_sync = 0;
        st->catching_up = 1;
    }
    size_t n = r->npeers;
    mfs_lock_drop(&r->mu);
    return n;
}

int mfs_repl_peer_vv(mfs_repl *r, uint64_t peer, mfs_vv *out)
{
    mfs_lock_take(&r->mu, MFS_LOCK_REPL);
    rpeer *p = peer_find(r, peer);
    int rc = -ENOENT;
    out->n = 0;
    out->e = NULL;
    if (p && p->heard)
        rc = vv_copy(out, &p->vv);
    mfs_lock_drop(&r->mu);
    return rc;
}
