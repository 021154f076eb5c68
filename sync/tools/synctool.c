/*
 * synctool.c - test and benchmark daemon for the sync transport. Not part
 * of the product: tests/system/sync_*.sh and bench/wire/ drive it.
 *
 *   synctool keygen DIR
 *   synctool node --key DIR --listen A [--peer B]... [--members M]
 *        [--send N] [--expect N] [--timeout S] [--hold S] [--unknown-pps P]
 *        [--bulk BYTES --msg-size N --probe-ms MS] [--probes N] [--ident N]
 *        [--hold-until FILE]
 *     Waits for M alive peers, sends N mixed-size messages to each, checks
 *     that N arrive from each exactly once and intact, then prints stats.
 *     With --bulk, sends BYTES of bulk data to every peer plus a small
 *     urgent timestamped probe every MS; receivers report throughput and
 *     probe latency percentiles. --probes N without --bulk: only N
 *     probes, one every MS (small-message latency on an idle link).
 *     It stays up S seconds (--hold) after that, and with --hold-until
 *     also until FILE exists (a test's flood that outlasts the hold).
 *   synctool flood --key DIR --target A --count N
 *     Joins as a member from one socket (5 real messages), then throws N
 *     random, mutated and replayed datagrams from another socket and counts
 *     replies to it (there must be none).
 *   synctool flood --key DIR --target A --count N --ident-target T
 *     Throws N handshake initiations at identity T from strangers that
 *     know T's public key (so that mac1 checks): valid ones, ones with a
 *     join proof, bit-flipped and truncated ones, from many ports; counts
 *     the replies and their sizes (none may be larger than an INIT).
 *
 * --ident N (node): per-node keys (docs/WIRE.md "Identities") instead of
 * the mesh key: identity N's key pair and node id derive from the mesh
 * key and N, and identities 1 to 8 are the members.
 */
#include "hs.h"
#include "noise.h"

#include <sodium.h>
#include "driver.h"
#include "wire.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXP 16
#define MAXN 100000
#define IDENTS 8 /* --ident: identities 1..IDENTS are the members */

/* Identity n of the mesh key k: its key pair and node id. */
static void ident_of(const struct mfs_mesh_key *k, unsigned n,
                     mfs_noise_keypair *kp, uint64_t *id)
{
    uint8_t msg[20] = "synctool ident", sec[32];
    mfs_be32_put(msg + 16, n);
    crypto_generichash(sec, sizeof(sec), msg, sizeof(msg), k->key,
                       sizeof(k->key));
    mfs_noise_keypair_from(kp, sec);
    *id = mfs_be64_get(sec + 24) | 1;
    sodium_memzero(sec, sizeof(sec));
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t rng_s = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return rng_s;
}

static uint8_t pat(uint64_t src, uint32_t idx, size_t i)
{
    return (uint8_t)((src ^ idx * 2654435761u) >> 7 ^ i * 31u);
}

/* ---- node ---- */

typedef struct from_peer {
    uint64_t id;
    uint8_t *seen;
    uint64_t got, dup, bad;
    uint64_t bulk_bytes, bulk_t0, bulk_t1;
} from_peer;

typedef struct node {
    pthread_mutex_t mu;
    from_peer fp[MAXP];
    int nfp;
    uint64_t expect, expect_bulk;
    uint64_t *lat;
    size_t nlat, caplat;
} node;

static from_peer *fp_get(node *n, uint64_t id)
{
    for (int i = 0; i < n->nfp; i++)
        if (n->fp[i].id == id)
            return &n->fp[i];
    if (n->nfp == MAXP)
        return NULL;
    from_peer *f = &n->fp[n->nfp++];
    memset(f, 0, sizeof(*f));
    f->id = id;
    f->seen = calloc(MAXN, 1);
    return f;
}

static void on_msg(void *arg, uint64_t from, uint8_t mtype, const uint8_t *d,
                   size_t len)
{
    node *n = arg;
    pthread_mutex_lock(&n->mu);
    from_peer *f = fp_get(n, from);
    if (!f || mtype == 9) /* 9: the flood tool's own member traffic */
        goto out;
    if (mtype == 2) { /* bulk */
        uint64_t now = mono_us();
        if (!f->bulk_t0)
            f->bulk_t0 = now;
        f->bulk_t1 = now;
        f->bulk_bytes += len;
        goto out;
    }
    if (mtype == 3 && len >= 8) { /* probe: sent-at timestamp */
        uint64_t t = mfs_be64_get(d);
        if (n->nlat == n->caplat) {
            n->caplat = n->caplat ? n->caplat * 2 : 1024;
            n->lat = realloc(n->lat, n->caplat * sizeof(uint64_t));
        }
        n->lat[n->nlat++] = mono_us() - t;
        goto out;
    }
    if (len < 8) {
        f->bad++;
        goto out;
    }
    uint32_t idx = mfs_be32_get(d), l = mfs_be32_get(d + 4);
    if (idx >= MAXN || l != len) {
        f->bad++;
        goto out;
    }
    for (size_t i = 8; i < len; i++)
        if (d[i] != pat(from, idx, i)) {
            f->bad++;
            goto out;
        }
    if (f->seen[idx])
        f->dup++;
    else
        f->got++;
    f->seen[idx] = 1;
out:
    pthread_mutex_unlock(&n->mu);
}

static int cmp64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void print_stats(mfs_sync *s, node *n)
{
    mfs_peer_stat st[MAXP];
    char a[64];
    size_t np = mfs_sync_peers(s, st, MAXP);
    for (size_t i = 0; i < np && i < MAXP; i++) {
        printf("PEER %016llx %s %s srtt_us=%llu loss_in=%.3f loss_out=%.3f "
               "bytes_in=%llu bytes_out=%llu dgrams_in=%llu dgrams_out=%llu "
               "msgs_in=%llu msgs_out=%llu retx=%llu restarts=%llu drops=",
               (unsigned long long)st[i].id,
               mfs_addr_str(&st[i].addr, a, sizeof(a)),
               mfs_sync_state_name(st[i].state),
               (unsigned long long)st[i].srtt_us, st[i].loss_in, st[i].loss_out,
               (unsigned long long)st[i].bytes_in,
               (unsigned long long)st[i].bytes_out,
               (unsigned long long)st[i].dgrams_in,
               (unsigned long long)st[i].dgrams_out,
               (unsigned long long)st[i].msgs_in,
               (unsigned long long)st[i].msgs_out,
               (unsigned long long)st[i].retransmits,
               (unsigned long long)st[i].restarts);
        for (int r = 0; r < MFS_DROP__COUNT; r++)
            printf("%s%s:%llu", r ? "," : "", mfs_sync_drop_name(r),
                   (unsigned long long)st[i].drops[r]);
        printf("\n");
    }
    uint64_t g[MFS_DROP__COUNT], tot = 0;
    mfs_sync_global_drops(s, g);
    printf("GLOBAL drops=");
    for (int r = 0; r < MFS_DROP__COUNT; r++) {
        printf("%s%s:%llu", r ? "," : "", mfs_sync_drop_name(r),
               (unsigned long long)g[r]);
        tot += g[r];
    }
    printf(" total=%llu peers=%zu\n", (unsigned long long)tot, np);
    uint64_t made, started, answered;
    mfs_sync_hs_counts(s, &made, &started, &answered);
    printf("HANDSHAKES made=%llu started=%llu answered=%llu\n",
           (unsigned long long)made, (unsigned long long)started,
           (unsigned long long)answered);
    (void)n;
}

static int cmd_node(int argc, char **argv)
{
    mfs_sync_opts o;
    const char *peers[MAXP], *keydir = NULL, *hold_until = NULL;
    int np = 0;
    unsigned members = 0, send_n = 0, timeout = 60, hold = 0, ident = 0;
    uint64_t bulk = 0, msg_size = 65536, probe_ms = 10, probes = 0;
    node n;
    memset(&o, 0, sizeof(o));
    memset(&n, 0, sizeof(n));
    pthread_mutex_init(&n.mu, NULL);
    mfs_sync_config_default(&o.cfg);
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--key"))
            keydir = v;
        else if (!strcmp(argv[i], "--listen"))
            o.listen = v;
        else if (!strcmp(argv[i], "--peer") && np < MAXP)
            peers[np++] = v;
        else if (!strcmp(argv[i], "--members"))
            members = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--send"))
            send_n = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--expect"))
            n.expect = strtoull(v, 0, 10);
        else if (!strcmp(argv[i], "--timeout"))
            timeout = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--hold"))
            hold = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--unknown-pps"))
            o.cfg.unknown_pps = (uint32_t)atoi(v);
        else if (!strcmp(argv[i], "--expect-bulk"))
            n.expect_bulk = strtoull(v, 0, 10);
        else if (!strcmp(argv[i], "--bulk"))
            bulk = strtoull(v, 0, 10);
        else if (!strcmp(argv[i], "--msg-size"))
            msg_size = strtoull(v, 0, 10);
        else if (!strcmp(argv[i], "--probe-ms"))
            probe_ms = strtoull(v, 0, 10);
        else if (!strcmp(argv[i], "--probes"))
            probes = strtoull(v, 0, 10);
        else if (!strcmp(argv[i], "--ident"))
            ident = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--hold-until"))
            hold_until = v;
        else {
            fprintf(stderr, "synctool node: unknown option '%s'\n", argv[i]);
            return 2;
        }
        i++;
    }
    if (!keydir || !o.listen || mfs_mesh_key_load(keydir, &o.key)) {
        fprintf(stderr, "synctool node: need --key DIR with a mesh.key and "
                        "--listen\n");
        return 2;
    }
    rng_s ^= mono_us();
    o.node_id = rnd() | 1;
    mfs_noise_keypair kp;
    if (ident) {
        ident_of(&o.key, ident, &kp, &o.node_id);
        o.ident = &kp;
    }
    o.peers = peers;
    o.npeers = (size_t)np;
    o.cfg.arg = &n;
    o.cfg.on_msg = on_msg;
    mfs_sync *s;
    int rc = mfs_sync_start(&o, &s);
    if (rc) {
        fprintf(stderr, "synctool node: start: %s\n", strerror(-rc));
        return 1;
    }
    for (unsigned m = 1; ident && m <= IDENTS; m++) {
        mfs_noise_keypair mk;
        uint64_t mid;
        ident_of(&o.key, m, &mk, &mid);
        if (m != ident)
            mfs_sync_member_key(s, mid, mk.pub);
    }
    uint64_t t_end = mono_us() + timeout * 1000000ull;
    mfs_peer_stat st[MAXP];
    uint64_t ids[MAXP];
    unsigned nalive = 0;
    while (mono_us() < t_end) { /* wait for membership */
        size_t k = mfs_sync_peers(s, st, MAXP);
        nalive = 0;
        for (size_t i = 0; i < k && i < MAXP; i++)
            if (st[i].id && st[i].state == MFS_PEER_ALIVE)
                ids[nalive++] = st[i].id;
        if (nalive >= members)
            break;
        usleep(20000);
    }
    printf("MEMBERS %u alive (wanted %u)\n", nalive, members);
    int ok = nalive >= members;
    double cpu0 = cpu_s();
    uint64_t t0 = mono_us();
    uint8_t *buf = malloc(msg_size > 70000 ? msg_size : 70000);
    for (unsigned k = 0; ok && k < nalive; k++) {
        for (uint32_t idx = 0; idx < send_n; idx++) {
            uint64_t r = rnd() % 100;
            size_t len = r < 70   ? 8 + rnd() % 600
                         : r < 95 ? 8 + rnd() % 16000
                                  : 8 + rnd() % 64000;
            mfs_be32_put(buf, idx);
            mfs_be32_put(buf + 4, (uint32_t)len);
            for (size_t i = 8; i < len; i++)
                buf[i] = pat(o.node_id, idx, i);
            while ((rc = mfs_sync_send(s, ids[k], len < 1000 ? 0 : 1, 1, buf,
                                       len)) == -ENOBUFS)
                usleep(1000);
            if (rc)
                fprintf(stderr, "send: %s\n", strerror(-rc));
        }
    }
    /* bulk benchmark: keep the queue fed, probes every probe_ms */
    if (ok && bulk) {
        memset(buf, 0x42, msg_size);
        uint64_t sent = 0, next_probe = mono_us();
        while (sent < bulk && mono_us() < t_end) {
            uint64_t now = mono_us();
            if (now >= next_probe) {
                uint8_t pb[16];
                mfs_be64_put(pb, now);
                for (unsigned k = 0; k < nalive; k++)
                    mfs_sync_send(s, ids[k], MFS_SYNC_URGENT, 3, pb, 16);
                next_probe = now + probe_ms * 1000;
            }
            rc = 0;
            for (unsigned k = 0; k < nalive; k++)
                rc |= mfs_sync_send(s, ids[k], MFS_SYNC_BULK, 2, buf, msg_size);
            if (rc == 0)
                sent += msg_size;
            else
                usleep(200);
        }
    }
    for (uint64_t k = 0; ok && !bulk && k < probes && mono_us() < t_end; k++) {
        uint8_t pb[16];
        mfs_be64_put(pb, mono_us());
        for (unsigned j = 0; j < nalive; j++)
            mfs_sync_send(s, ids[j], MFS_SYNC_URGENT, 3, pb, 16);
        usleep((useconds_t)(probe_ms * 1000));
    }
    /* wait: our sends acked and expected messages received */
    for (;;) {
        size_t k = mfs_sync_peers(s, st, MAXP);
        uint64_t queued = 0;
        for (size_t i = 0; i < k && i < MAXP; i++)
            queued += st[i].queued_bytes;
        pthread_mutex_lock(&n.mu);
        unsigned done = 0;
        uint64_t bulk_in = 0;
        for (int i = 0; i < n.nfp; i++) {
            done += n.fp[i].got >= n.expect;
            bulk_in += n.fp[i].bulk_bytes;
        }
        pthread_mutex_unlock(&n.mu);
        if (queued == 0 && (!n.expect || done >= members) &&
            bulk_in >= n.expect_bulk)
            break;
        if (mono_us() > t_end) {
            ok = 0;
            printf("TIMEOUT queued=%llu done=%u\n", (unsigned long long)queued,
                   done);
            break;
        }
        usleep(10000);
    }
    double secs = (double)(mono_us() - t0) / 1e6, cpu = cpu_s() - cpu0;
    /* stay up a little so that peers get our last acks */
    uint64_t stay = mono_us() + (hold ? hold : 2) * 1000000ull;
    while (mono_us() < stay || (hold_until && access(hold_until, F_OK) != 0))
        usleep(20000);
    pthread_mutex_lock(&n.mu);
    uint64_t dup = 0, bad = 0, got = 0;
    for (int i = 0; i < n.nfp; i++) {
        dup += n.fp[i].dup;
        bad += n.fp[i].bad;
        got += n.fp[i].got;
        if (n.fp[i].bulk_bytes) {
            double d = (double)(n.fp[i].bulk_t1 - n.fp[i].bulk_t0) / 1e6;
            printf("BULK from %016llx %.1f MB in %.2f s = %.1f MB/s\n",
                   (unsigned long long)n.fp[i].id,
                   (double)n.fp[i].bulk_bytes / 1e6, d,
                   d > 0 ? (double)n.fp[i].bulk_bytes / 1e6 / d : 0);
        }
    }
    if (n.nlat) {
        qsort(n.lat, n.nlat, sizeof(uint64_t), cmp64);
        printf("PROBES n=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n.nlat,
               (double)n.lat[n.nlat / 2] / 1e3,
               (double)n.lat[n.nlat * 99 / 100] / 1e3,
               (double)n.lat[n.nlat - 1] / 1e3);
    }
    pthread_mutex_unlock(&n.mu);
    printf("CPU %.2f s over %.2f s\n", cpu, secs);
    uint64_t tx_msgs, tx_dgrams;
    int gso;
    mfs_sync_tx_counts(s, &tx_msgs, &tx_dgrams, &gso);
    printf("SENDS %llu datagrams in %llu messages (%.2f each), UDP GSO %s\n",
           (unsigned long long)tx_dgrams, (unsigned long long)tx_msgs,
           tx_msgs ? (double)tx_dgrams / (double)tx_msgs : 0.0,
           gso ? "on" : "off");
    print_stats(s, &n);
    if (n.expect && (dup || bad))
        ok = 0;
    printf("RESULT %s recv=%llu dup=%llu bad=%llu\n", ok ? "ok" : "FAIL",
           (unsigned long long)got, (unsigned long long)dup,
           (unsigned long long)bad);
    fflush(stdout);
    mfs_sync_stop(s);
    return ok ? 0 : 1;
}

/* ---- flood ---- */

typedef struct capture {
    int fd;
    uint8_t (*d)[MFS_WIRE_MAX];
    size_t *len, n, cap;
} capture;

static void cap_tx(void *arg, const mfs_addr *to, const uint8_t *buf,
                   size_t len)
{
    capture *c = arg;
    sendto(c->fd, buf, len, 0, (const struct sockaddr *)&to->ss, to->len);
    if (c->n < c->cap) {
        memcpy(c->d[c->n], buf, len);
        c->len[c->n++] = len;
    }
}

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x7f000001u);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    return fd;
}

/* Takes every reply waiting on the 8 sockets: counts, bytes, largest. */
static void drain(const int fds[8], uint64_t *n, uint64_t *bytes, uint64_t *max)
{
    uint8_t b[2048];
    for (int k = 0; k < 8; k++) {
        ssize_t r;
        while ((r = recv(fds[k], b, sizeof(b), MSG_DONTWAIT)) > 0) {
            (*n)++;
            *bytes += (uint64_t)r;
            if ((uint64_t)r > *max)
                *max = (uint64_t)r;
        }
    }
}

/* INITs from strangers at identity t's address ta (see the top). */
static int flood_inits(const struct mfs_mesh_key *key, unsigned t,
                       const mfs_addr *ta, unsigned long count)
{
    mfs_noise_keypair tkp, strangers[16];
    uint64_t tid;
    ident_of(key, t, &tkp, &tid);
    for (int i = 0; i < 16; i++)
        mfs_noise_keypair_new(&strangers[i]);
    int fds[8];
    for (int i = 0; i < 8; i++)
        fds[i] = udp_socket();
    uint64_t replies = 0, reply_max = 0, bytes_in = 0;
    size_t sent_min = SIZE_MAX;
    uint8_t dg[MFS_WIRE_MAX];
    for (unsigned long i = 0; i < count; i++) {
        mfs_noise st;
        mfs_hs_hello hello = {.counter = i + 1};
        uint64_t kind = rnd() % 4;
        if (kind == 1) { /* a join proof for an invitation nobody made */
            hello.joinlen = MFS_HS_JOIN_MAX;
            randombytes_buf(hello.join, hello.joinlen);
        }
        mfs_wire_hdr h = {0,         0, (uint32_t)key->mesh_id, rnd() | 1, tid,
                          mono_us(), 0};
        ssize_t l = mfs_hs_init_write(&st, &strangers[rnd() % 16], tkp.pub, &h,
                                      &hello, dg);
        mfs_noise_wipe(&st);
        if (l <= 0)
            return 1;
        size_t len = (size_t)l;
        if (kind == 2) /* bit flips */
            dg[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
        else if (kind == 3) /* truncated */
            len = MFS_WIRE_HDR + rnd() % (len - MFS_WIRE_HDR);
        if (len < sent_min)
            sent_min = len;
        int fd = fds[rnd() % 8];
        sendto(fd, dg, len, 0, (const struct sockaddr *)&ta->ss, ta->len);
        if (i % 64 == 0) {
            drain(fds, &replies, &bytes_in, &reply_max);
            usleep(100); /* no kernel drops */
        }
    }
    usleep(1000000);
    drain(fds, &replies, &bytes_in, &reply_max);
    for (int k = 0; k < 8; k++)
        close(fds[k]);
    printf("FLOOD inits=%lu replies=%llu reply_bytes=%llu reply_max=%llu "
           "smallest_sent=%zu\n",
           count, (unsigned long long)replies, (unsigned long long)bytes_in,
           (unsigned long long)reply_max, sent_min);
    /* a COOKIE (the only reply a stranger can get) is smaller than any
     * whole INIT; a truncated INIT gets nothing */
    return reply_max <= MFS_HS_INIT_LEN(0) ? 0 : 1;
}

static int cmd_flood(int argc, char **argv)
{
    const char *keydir = NULL, *target = NULL;
    unsigned long count = 100000;
    unsigned ident_target = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--key"))
            keydir = argv[i + 1];
        else if (!strcmp(argv[i], "--target"))
            target = argv[i + 1];
        else if (!strcmp(argv[i], "--count"))
            count = strtoul(argv[i + 1], 0, 10);
        else if (!strcmp(argv[i], "--ident-target"))
            ident_target = (unsigned)atoi(argv[i + 1]);
    }
    struct mfs_mesh_key key;
    mfs_addr ta;
    unsigned alen;
    memset(&ta, 0, sizeof(ta));
    if (!keydir || !target || mfs_mesh_key_load(keydir, &key) ||
        mfs_mesh_addr_parse(target, &ta.ss, &alen)) {
        fprintf(stderr, "synctool flood: need --key DIR --target A\n");
        return 2;
    }
    ta.len = alen;
    rng_s ^= mono_us();
    if (ident_target)
        return flood_inits(&key, ident_target, &ta, count);
    /* phase 1: a genuine member X sends 5 messages; capture everything */
    capture c = {udp_socket(), NULL, NULL, 0, 4096};
    c.d = malloc(c.cap * MFS_WIRE_MAX);
    c.len = malloc(c.cap * sizeof(size_t));
    mfs_sync_config cfg;
    mfs_sync_config_default(&cfg);
    cfg.tx = cap_tx;
    cfg.tx_arg = &c;
    mfs_sync_core *core;
    uint64_t x = rnd() | 1;
    if (mfs_sync_core_new(&cfg, &key, x, mono_us(), mono_us(), &core))
        return 1;
    mfs_sync_core_add_seed(core, mono_us(), &ta);
    int sent5 = 0;
    uint64_t end = mono_us() + 10000000;
    while (mono_us() < end) {
        uint64_t dl = mfs_sync_core_tick(core, mono_us());
        mfs_peer_stat st[4];
        size_t k = mfs_sync_core_peers(core, st, 4);
        if (k && st[0].id && !sent5) {
            for (int i = 0; i < 5; i++)
                mfs_sync_core_send(core, st[0].id, 0, 9, "hello", 5);
            sent5 = 1;
        }
        if (sent5 && st[0].msgs_out == 5)
            break;
        struct pollfd pfd = {c.fd, POLLIN, 0};
        uint64_t now = mono_us();
        poll(&pfd, 1, dl > now ? (int)((dl - now) / 1000 + 1) : 0);
        if (pfd.revents & POLLIN) {
            uint8_t b[2048];
            mfs_addr from;
            memset(&from, 0, sizeof(from));
            from.len = sizeof(from.ss);
            ssize_t r = recvfrom(c.fd, b, sizeof(b), 0,
                                 (struct sockaddr *)&from.ss, &from.len);
            if (r > 0)
                mfs_sync_core_input(core, mono_us(), &from, b, (size_t)r);
        }
    }
    mfs_peer_stat st[4];
    mfs_sync_core_peers(core, st, 4);
    printf("MEMBER %016llx delivered %llu/5 real messages, captured %zu\n",
           (unsigned long long)x, (unsigned long long)st[0].msgs_out, c.n);
    if (st[0].msgs_out != 5)
        return 1;
    /* phase 2: flood from another socket; count replies */
    int fd = udp_socket();
    uint64_t replies = 0;
    uint8_t b[2048];
    for (unsigned long i = 0; i < count; i++) {
        size_t len;
        uint64_t kind = rnd() % 6;
        if (kind == 0 || c.n == 0) { /* random bytes, random length */
            len = rnd() % 1500;
            for (size_t j = 0; j < len; j++)
                b[j] = (uint8_t)rnd();
        } else {
            size_t k = rnd() % c.n;
            len = c.len[k];
            memcpy(b, c.d[k], len);
            if (kind == 2) { /* bit flips */
                for (int f = 0; f < 1 + (int)(rnd() % 4); f++)
                    b[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
            } else if (kind == 3) { /* truncated */
                len = rnd() % len;
            } else if (kind == 4) { /* extended / oversized */
                size_t add = 1 + rnd() % 600;
                memset(b + len, (int)rnd(), add);
                len += add;
            } else if (kind == 5) { /* header fields changed */
                b[rnd() % MFS_WIRE_HDR] ^= (uint8_t)(1 + rnd() % 255);
            } /* kind 1: exact replay */
        }
        sendto(fd, b, len, 0, (struct sockaddr *)&ta.ss, ta.len);
        if (i % 256 == 0)
            while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
                replies++;
        if (i % 64 == 0)
            usleep(100); /* ~100k in a few seconds, no kernel drops */
    }
    usleep(1000000);
    while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
        replies++;
    printf("FLOOD sent=%lu replies=%llu\n", count, (unsigned long long)replies);
    mfs_sync_core_free(core);
    return replies == 0 ? 0 : 1;
}

/* ---- baselines for bench/wire: raw UDP blast and TCP stream ---- */

static int sock_for(const char *hp, int type, int listen_it)
{
    struct sockaddr_storage ss;
    unsigned alen;
    if (mfs_mesh_addr_parse(hp, &ss, &alen))
        return -1;
    int fd = socket(ss.ss_family, type, 0), one = 1, sz = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
    if (listen_it) {
        if (bind(fd, (struct sockaddr *)&ss, alen) != 0)
            return -1;
        if (type == SOCK_STREAM)
            listen(fd, 1);
    } else if (connect(fd, (struct sockaddr *)&ss, alen) != 0) {
        return -1;
    }
    return fd;
}

/* sink: counts bytes until 1 s of silence after the first byte */
static int cmd_sink(const char *hp, int type)
{
    int fd = sock_for(hp, type, 1);
    if (fd < 0)
        return 1;
    if (type == SOCK_STREAM)
        fd = accept(fd, NULL, NULL);
    static uint8_t b[1 << 16];
    uint64_t bytes = 0, t0 = 0, t1 = 0;
    double c0 = cpu_s();
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, t0 ? 1000 : 30000) <= 0)
            break;
        ssize_t r = recv(fd, b, sizeof(b), 0);
        if (r <= 0)
            break;
        t1 = mono_us();
        if (!t0)
            t0 = t1;
        bytes += (uint64_t)r;
    }
    double d = (double)(t1 - t0) / 1e6;
    printf("SINK %s %.1f MB in %.2f s = %.1f MB/s, cpu %.2f ms/MB\n",
           type == SOCK_STREAM ? "tcp" : "udp", (double)bytes / 1e6, d,
           d > 0 ? (double)bytes / 1e6 / d : 0,
           bytes ? (cpu_s() - c0) * 1e3 / ((double)bytes / 1e6) : 0);
    return 0;
}

static int cmd_blast(const char *hp, int type, uint64_t total, size_t size)
{
    int fd = sock_for(hp, type, 0);
    if (fd < 0)
        return 1;
    static uint8_t b[1 << 16];
    memset(b, 0x42, sizeof(b));
    if (type == SOCK_DGRAM) {
        struct mmsghdr mh[64];
        struct iovec iov[64];
        for (int i = 0; i < 64; i++) {
            iov[i].iov_base = b;
            iov[i].iov_len = size;
            memset(&mh[i], 0, sizeof(mh[i]));
            mh[i].msg_hdr.msg_iov = &iov[i];
            mh[i].msg_hdr.msg_iovlen = 1;
        }
        for (uint64_t sent = 0; sent < total;) {
            int n = sendmmsg(fd, mh, 64, 0);
            if (n > 0)
                sent += (uint64_t)n * size;
        }
    } else {
        for (uint64_t sent = 0; sent < total;) {
            ssize_t n = send(fd, b, sizeof(b), 0);
            if (n <= 0)
                return 1;
            sent += (uint64_t)n;
        }
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "keygen"))
        return mfs_mesh_key_create(argv[2]) ? 1 : 0;
    if (argc >= 2 && !strcmp(argv[1], "node"))
        return cmd_node(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "flood"))
        return cmd_flood(argc, argv);
    /* udpsink|tcpsink ADDR ; udpblast|tcpblast ADDR BYTES [DGRAM_SIZE] */
    if (argc >= 3 && !strcmp(argv[1], "udpsink"))
        return cmd_sink(argv[2], SOCK_DGRAM);
    if (argc >= 3 && !strcmp(argv[1], "tcpsink"))
        return cmd_sink(argv[2], SOCK_STREAM);
    if (argc >= 4 && !strcmp(argv[1], "udpblast"))
        return cmd_blast(argv[2], SOCK_DGRAM, strtoull(argv[3], 0, 10),
                         argc > 4 ? strtoull(argv[4], 0, 10) : 1200);
    if (argc >= 4 && !strcmp(argv[1], "tcpblast"))
        return cmd_blast(argv[2], SOCK_STREAM, strtoull(argv[3], 0, 10), 0);
    fprintf(stderr, "usage: synctool keygen DIR | node ... | flood ...\n");
    return 2;
}
