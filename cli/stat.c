/*
 * stat.c - `meshfs stat`: what this node, its store and its mount hold, or
 * the version and chunks of one file; `meshfs members` and `remove`; and
 * `meshfs sync`, the barrier that waits until the members hold this
 * node's changes (streamed by the daemon's "sync", daemon.h).
 *
 * If a daemon serves the store it is asked over the control socket (it is
 * the only writer); otherwise the store is opened read-only (LMDB lets a
 * reader run beside a writer, and no lock is taken). Output is text for
 * people or one JSON object (--json). Never writes to a store.
 */
#include "cli.h"
#include "ident.h"
#include "daemon.h"
#include "http.h"
#include "statdoc.h"
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* A move from the mesh key under way ("migrating MOVED MEMBERS KEYED
 * MET"): what it waits for. */
static void print_migration(const mfs_kv *r)
{
    unsigned moved, members, keyed, met;
    const char *v = mfs_kv_get(r, "migrating");
    if (!v || sscanf(v, "%u %u %u %u", &moved, &members, &keyed, &met) != 4)
        return;
    if (!moved)
        printf("%-18s %u of %u other members have a key (meshfs migrate); "
               "the mesh key speaks until all do\n",
               "moving", keyed, members);
    else
        printf("%-18s per-node keys on; the mesh key is forgotten once this "
               "node has met every member (%u of %u)\n",
               "moving", met, members);
}

static void print_mesh_text(const mfs_kv *r, const mfs_statdoc_summary *m)
{
    char b1[32], b2[32], b3[32];
    const char *listen = mfs_kv_get(r, "listen");
    if (listen)
        printf("%-18s %s\n", "listen", listen);
    printf("%-18s %s\n", "sync", m->line);
    char ck[320];
    if (mfs_statdoc_clock_text(r, ck, sizeof ck))
        printf("%-18s %s\n", "clock", ck);
    const char *rj = mfs_kv_get(r, "rejoin");
    if (rj)
        printf("%-18s %s\n", "rejoin", rj);
    if (m->known && m->catching_up) {
        mfs_human_bytes(m->bytes_to_go, b1, sizeof b1);
        mfs_human_bytes((unsigned long long)m->bytes_rate, b2, sizeof b2);
        if (m->eta_ms >= 0)
            snprintf(b3, sizeof b3, "%lld s", (m->eta_ms + 999) / 1000);
        else
            snprintf(b3, sizeof b3, "unknown");
        printf("%-18s %llu ops, %llu chunks (~%s) to go at %.0f ops/s, "
               "%s/s; ETA %s\n",
               "catch-up", m->ops_to_go, m->chunks_to_go, b1, m->ops_rate, b2,
               b3);
    }
    if (m->known && m->snap_active) {
        mfs_human_bytes(m->snap_done, b1, sizeof b1);
        mfs_human_bytes(m->snap_total, b2, sizeof b2);
        printf("%-18s fetching from %s: %s of %s (this node lacks ops the "
               "mesh folded into its state)\n",
               "snapshot", m->snap_from, b1, m->snap_total ? b2 : "?");
    } else if (m->known && m->snap_refused) {
        printf("%-18s refused: this node folded ops the snapshot lacked; "
               "asking for a newer one\n",
               "snapshot");
    } else if (m->known && (m->snaps_installed || m->snaps_served)) {
        printf("%-18s %llu installed, %llu served\n", "snapshots",
               m->snaps_installed, m->snaps_served);
    }
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "conflict_path") == 0)
            printf("  conflict: %s\n", r->val[i]);
    int header = 0;
    for (size_t i = 0; i < r->n; i++) {
        mfs_statdoc_peer p;
        if (strcmp(r->key[i], "peer") != 0 ||
            !mfs_statdoc_peer_parse(r->val[i], &p))
            continue;
        if (!header) {
            printf("peers:\n  %-16s %-21s %-7s %8s %6s %9s %13s %13s %9s\n",
                   "node", "address", "state", "rtt", "loss", "contact",
                   "it lacks", "we lack", "its clock");
            header = 1;
        }
        char rtt[32], lc[32], it[64], we[64];
        snprintf(rtt, sizeof rtt, "%.1fms", (double)p.rtt_us / 1000);
        snprintf(lc, sizeof lc, "%.1fs ago", (double)p.last_ms / 1000);
        mfs_human_bytes(p.bytes_they, b1, sizeof b1);
        mfs_human_bytes(p.bytes_we, b2, sizeof b2);
        if (p.heard) {
            snprintf(it, sizeof it, "%llu/%s", p.ops_they, b1);
            snprintf(we, sizeof we, "%llu/%s", p.ops_we, b2);
        } else {
            snprintf(it, sizeof it, "?");
            snprintf(we, sizeof we, "?");
        }
        char clk[32];
        mfs_node_clock_human(p.skew_ms, clk + 1, sizeof clk - 1);
        clk[0] = p.clock_ok ? ' ' : '~'; /* ~: one-way, from its reports */
        printf("  %-16s %-21s %-7s %8s %5.1f%% %9s %13s %13s %9s\n", p.id,
               p.addr, p.state, rtt,
               100 * (p.loss_out > p.loss_in ? p.loss_out : p.loss_in), lc, it,
               we, clk);
    }
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "seed") == 0)
            printf("  seed %s: no answer yet\n", r->val[i]);
}

/* "write concern: acks 1, timeout 10 s: 0 waiting, 120 met, ..." */
static void print_acks_text(const mfs_kv *r, int running)
{
    unsigned long long n = mfs_statdoc_u64(r, "acks_n");
    char mode[160];
    if (!n) {
        printf("%-18s off\n", "write concern");
        return;
    }
    snprintf(mode, sizeof mode, "acks %llu, timeout %g s%s%s", n,
             (double)mfs_statdoc_u64(r, "acks_timeout_ms") / 1000.0,
             mfs_statdoc_u64(r, "acks_wait")
                 ? ", waits for members that are down"
                 : "",
             mfs_statdoc_u64(r, "acks_on_close") ? ", also on close" : "");
    if (!running) {
        printf("%-18s %s (remembered; the daemon is not running)\n",
               "write concern", mode);
        return;
    }
    unsigned long long to = mfs_statdoc_u64(r, "acks_failed_timeout"),
                       few = mfs_statdoc_u64(r, "acks_failed_peers"),
                       other = mfs_statdoc_u64(r, "acks_failed_other"),
                       p50 = mfs_statdoc_u64(r, "acks_p50_us"),
                       p99 = mfs_statdoc_u64(r, "acks_p99_us");
    char lat[96];
    if (p99)
        snprintf(lat, sizeof lat, "latency p50 %.1f ms / p99 %.1f ms",
                 (double)p50 / 1000.0, (double)p99 / 1000.0);
    else
        snprintf(lat, sizeof lat, "no acks to time");
    printf("%-18s %s: %llu waiting, %llu met, %llu failed (%llu timed out, "
           "%llu too few members, %llu other: unmount, no memory), %s (last "
           "minute)\n",
           "write concern", mode, mfs_statdoc_u64(r, "acks_waiting"),
           mfs_statdoc_u64(r, "acks_met"), to + few + other, to, few, other,
           lat);
}

static void ago_text(unsigned long long ms, char *out, size_t cap)
{
    if (ms < 120000)
        snprintf(out, cap, "%llu s", ms / 1000);
    else if (ms < 7200000)
        snprintf(out, cap, "%llu min", ms / 60000);
    else if (ms < 172800000)
        snprintf(out, cap, "%llu h", ms / 3600000);
    else
        snprintf(out, cap, "%llu d", ms / 86400000);
}

/* Where the store's space goes, from the counters: the content of live
 * files, content kept beyond it (the trash, and versions not settled or
 * not collected yet), and on disk: the pack files (chunk bytes, with what
 * is dead in them until their pack empties or is evacuated), the store
 * file (metadata, op log, tombstones, small chunks, free pages LMDB keeps)
 * and the intent log (fsync's records; a fixed size, written at creation). */
static void print_space_text(const mfs_kv *r)
{
    unsigned long long
        live = strtoull(mfs_statdoc_num(mfs_kv_get(r, "bytes")), NULL, 10),
        held =
            strtoull(mfs_statdoc_num(mfs_kv_get(r, "chunk_bytes")), NULL, 10),
        file =
            strtoull(mfs_statdoc_num(mfs_kv_get(r, "store_bytes")), NULL, 10),
        wal = strtoull(mfs_statdoc_num(mfs_kv_get(r, "log_bytes")), NULL, 10),
        packs =
            strtoull(mfs_statdoc_num(mfs_kv_get(r, "pack_bytes")), NULL, 10),
        plive = strtoull(mfs_statdoc_num(mfs_kv_get(r, "pack_live")), NULL, 10);
    char l[32], h[32], k[32], f[32], p[32], d[32], t[32], w[32];
    mfs_human_bytes(live, l, sizeof l);
    mfs_human_bytes(held, h, sizeof h);
    mfs_human_bytes(held > live ? held - live : 0, k, sizeof k);
    mfs_human_bytes(file, f, sizeof f);
    mfs_human_bytes(packs, p, sizeof p);
    mfs_human_bytes(packs > plive ? packs - plive : 0, d, sizeof d);
    mfs_human_bytes(file + packs + wal, t, sizeof t);
    mfs_human_bytes(wal, w, sizeof w);
    printf("%-18s content %s (live files %s; kept beyond them: %s, the trash "
           "and what is not collected yet); on disk %s: pack files %s (%s "
           "dead, not reclaimed yet), store file %s (metadata, op log, small "
           "chunks, free pages), intent log %s\n",
           "space", h, l, k, t, p, d, f, w);
}

static void print_collect_text(const mfs_kv *r)
{
    mfs_statdoc_collect c;
    mfs_statdoc_collect_parse(r, &c);
    if (!c.have)
        return;
    char b[32], t[32];
    mfs_human_bytes(c.bytes, b, sizeof b);
    if (c.retention_ms)
        snprintf(t, sizeof t, "%.1f days", (double)c.retention_ms / 86400000.0);
    else
        snprintf(t, sizeof t, "off");
    char df[32];
    mfs_human_bytes(c.disk_freed, df, sizeof df);
    printf("%-18s freed %llu versions, %llu deleted files, %llu chunks (%s), "
           "%llu tombstones, %llu settled moves' undo records; gave %s of "
           "pack files back to the disk; trash %s\n",
           "collection", c.versions, c.inodes, c.chunks, b, c.tombstones,
           c.moves, df, t);
    if (c.held_by_have) {
        char a[32];
        ago_text(c.held_ago_ms, a, sizeof a);
        if (!c.held_heard)
            printf("%-18s held back by %s: not heard from since this daemon "
                   "started (`meshfs remove %s` if it is gone for good)\n",
                   "", c.held_by, c.held_by);
        else if (!c.held_live)
            printf("%-18s held back by %s, offline %s: it resumes when %s "
                   "catches up, or after `meshfs remove %s` if it is gone "
                   "for good\n",
                   "", c.held_by, a, c.held_by, c.held_by);
        else
            printf("%-18s held back by %s until it catches up\n", "",
                   c.held_by);
    } else if (!c.settled) {
        printf("%-18s waiting for the mesh to settle\n", "");
    }
    if (c.pinned)
        printf("%-18s %llu items kept for open files or unpublished writes\n",
               "", c.pinned);
    if (c.trash_over) {
        char o[32];
        mfs_human_bytes(c.trash_over, o, sizeof o);
        printf("%-18s the trash was %s over its share of the disk "
               "(-o trash-share): its oldest items went early\n",
               "", o);
    }
    if (c.early)
        printf("%-18s %llu trash items freed before their time to keep the "
               "trash within the smallest share of a disk in the mesh\n",
               "", c.early);
    if (c.err)
        printf("%-18s last pass failed: %s\n", "",
               strerror(c.err < 0 ? -c.err : c.err));
}

/* Builds a reply-shaped record from a read-only store. */
static int offline_stats(const char *store, cli_reply *r, char *err,
                         size_t errcap)
{
    mfs_store *s = NULL;
    mfs_store_stats st;
    char v[64];
    memset(r, 0, sizeof *r);
    int rc = mfs_store_open(&s, store, NULL, MFS_STORE_RDONLY);
    if (rc < 0) {
        if (rc == -ENOENT)
            snprintf(err, errcap,
                     "no meshfs store in %s (create one with "
                     "`meshfs init`)",
                     store);
        else
            snprintf(err, errcap, "cannot open store %s: %s", store,
                     mfs_store_strerror(rc));
        return rc;
    }
    rc = mfs_store_stats_get(s, &st);
    mfs_store_close(s);
    if (rc < 0) {
        snprintf(err, errcap, "cannot read the statistics of %s: %s", store,
                 strerror(-rc));
        return rc;
    }
    /* the write concern the next mount runs with (defaults if none) */
    mfs_acks_config acks;
    mfs_daemon_acks_read(store, &acks);
    /* same keys as the daemon's "stat" reply */
    struct {
        const char *k;
        uint64_t v;
    } kv[] = {
        {"files", st.files},
        {"dirs", st.dirs},
        {"symlinks", st.symlinks},
        {"others", st.others},
        {"bytes", st.bytes},
        {"ops", st.ops},
        {"local_seq", st.local_seq},
        {"conflicts", st.conflicts},
        {"dirty_files", st.dirty_files},
        {"chunks", st.chunks},
        {"chunk_bytes", st.chunk_bytes},
        {"store_bytes", st.store_bytes},
        {"log_bytes", st.log_bytes},
        {"map_bytes", st.map_bytes},
        {"pack_files", st.pack_files},
        {"pack_bytes", st.pack_bytes},
        {"pack_live", st.pack_live},
        {"acks_n", acks.n},
        {"acks_timeout_ms", acks.timeout_ms},
        {"acks_wait", (uint64_t)acks.wait},
        {"acks_on_close", (uint64_t)acks.on_close},
    };
    char **keys = calloc(sizeof kv / sizeof *kv + 2, sizeof *keys);
    char **vals = calloc(sizeof kv / sizeof *kv + 2, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -ENOMEM;
    }
    r->key = keys;
    r->val = vals;
    snprintf(v, sizeof v, "%016" PRIx64, st.node_id);
    r->key[r->n] = strdup("node");
    r->val[r->n++] = strdup(v);
    r->key[r->n] = strdup("store");
    r->val[r->n++] = strdup(store);
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) {
        snprintf(v, sizeof v, "%" PRIu64, kv[i].v);
        r->key[r->n] = strdup(kv[i].k);
        r->val[r->n++] = strdup(v);
    }
    for (size_t i = 0; i < r->n; i++)
        if (!r->key[i] || !r->val[i])
            return -ENOMEM;
    return 0;
}

static int store_stat(const char *store, int json)
{
    cli_reply r;
    char err[512];
    int running = 0;
    const char *mount = NULL;
    char deadmnt[PATH_MAX] = "";
    if (cli_control_call(store, "stat", 10000, &r) == 0 && !r.err) {
        running = 1;
        mount = cli_reply_get(&r, "mount");
    } else {
        if (r.n || r.err)
            cli_reply_free(&r);
        int rc = offline_stats(store, &r, err, sizeof err);
        if (rc < 0) {
            cli_reply_free(&r);
            return cli_fail("%s", err);
        }
        cli_mount m;
        if (cli_mount_by_store(store, &m) == 1) {
            snprintf(deadmnt, sizeof deadmnt, "%s", m.mnt);
            mount = deadmnt;
        }
    }
    const char *pid = running ? cli_reply_get(&r, "pid") : NULL;
    mfs_kv kv = {r.n, r.key, r.val};
    if (json) {
        mfs_statdoc_json(stdout, &kv, running, store, mount);
    } else {
        char key[128];
        mfs_statdoc_summary sum;
        mfs_statdoc_summarize(&kv, running, &sum);
        printf("%-18s %s\n", "node", mfs_statdoc_num(mfs_kv_get(&kv, "node")));
        printf("%-18s %s\n", "key",
               mfs_statdoc_own_key(store, key, sizeof key));
        print_migration(&kv);
        printf("%-18s %s\n", "store", store);
        if (mount && running)
            printf("%-18s %s (daemon pid %s)\n", "mount", mount,
                   pid ? pid : "?");
        else if (mount)
            printf("%-18s %s (daemon not running: dead mount)\n", "mount",
                   mount);
        else
            printf("%-18s not mounted\n", "mount");
        for (size_t i = 0; i < mfs_statdoc_ncounters; i++)
            printf(
                "%-18s %s\n", mfs_statdoc_counters[i].label,
                mfs_statdoc_num(mfs_kv_get(&kv, mfs_statdoc_counters[i].key)));
        print_acks_text(&kv, running);
        print_mesh_text(&kv, &sum);
        print_space_text(&kv);
        print_collect_text(&kv);
    }
    cli_reply_free(&r);
    return CLI_OK;
}

static void stamp_text(const char *hlc_s, char *out, size_t cap)
{
    uint64_t hlc = strtoull(hlc_s ? hlc_s : "0", NULL, 10);
    if (!hlc) {
        snprintf(out, cap, "none");
        return;
    }
    uint64_t ms = hlc >> 16;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03uZ+%u", buf, (unsigned)(ms % 1000),
             (unsigned)(hlc & 0xffff));
}

static int file_stat(const char *path, const cli_mount *m, uint64_t ino,
                     int json)
{
    cli_reply r;
    char req[64], when[96];
    snprintf(req, sizeof req, "file %" PRIu64, ino);
    int rc = cli_control_call(m->source, req, 10000, &r);
    if (rc < 0)
        return cli_fail("the daemon of %s does not answer: %s", m->mnt,
                        strerror(-rc));
    if (r.err) {
        int code = cli_fail("%s: %s", path, r.msg);
        cli_reply_free(&r);
        return code;
    }
    stamp_text(cli_reply_get(&r, "version_hlc"), when, sizeof when);
    const char *dirty = cli_reply_get(&r, "dirty");
    int is_dirty = dirty && strcmp(dirty, "0") != 0;
    if (json) {
        printf("{\"path\":");
        mfs_json_str(stdout, path);
        printf(",\"mount\":");
        mfs_json_str(stdout, m->mnt);
        printf(",\"store\":");
        mfs_json_str(stdout, m->source);
        printf(",\"ino\":%s,\"id\":",
               mfs_statdoc_num(cli_reply_get(&r, "ino")));
        mfs_json_str(stdout, mfs_statdoc_num(cli_reply_get(&r, "id")));
        printf(",\"version\":{\"hlc\":%s,\"node\":",
               mfs_statdoc_num(cli_reply_get(&r, "version_hlc")));
        mfs_json_str(stdout,
                     mfs_statdoc_num(cli_reply_get(&r, "version_node")));
        printf(",\"time\":");
        mfs_json_str(stdout, when);
        printf("},\"size\":%s,\"nchunks\":%s,\"heads\":%s,\"dirty\":%s,"
               "\"chunks\":[",
               mfs_statdoc_num(cli_reply_get(&r, "size")),
               mfs_statdoc_num(cli_reply_get(&r, "nchunks")),
               mfs_statdoc_num(cli_reply_get(&r, "heads")),
               is_dirty ? "true" : "false");
        int first = 1;
        for (size_t i = 0; i < r.n; i++) {
            if (strcmp(r.key[i], "chunk") != 0)
                continue;
            printf("%s", first ? "" : ",");
            mfs_json_str(stdout, r.val[i]);
            first = 0;
        }
        printf("],\"held_by\":[");
        first = 1;
        for (size_t i = 0; i < r.n; i++) {
            char id[24], holds[16];
            if (strcmp(r.key[i], "peer_holds") != 0 ||
                sscanf(r.val[i], "%23s %15s", id, holds) != 2)
                continue;
            printf("%s{\"peer\":", first ? "" : ",");
            mfs_json_str(stdout, id);
            printf(",\"holds\":");
            mfs_json_str(stdout, holds);
            printf("}");
            first = 0;
        }
        printf("]}\n");
    } else {
        printf("%-10s %s\n", "file", path);
        printf("%-10s %s\n", "inode",
               mfs_statdoc_num(cli_reply_get(&r, "ino")));
        printf("%-10s %s\n", "id", mfs_statdoc_num(cli_reply_get(&r, "id")));
        printf("%-10s %s by node %s\n", "version", when,
               mfs_statdoc_num(cli_reply_get(&r, "version_node")));
        printf("%-10s %s\n", "size",
               mfs_statdoc_num(cli_reply_get(&r, "size")));
        printf("%-10s %s\n", "heads",
               mfs_statdoc_num(cli_reply_get(&r, "heads")));
        printf("%-10s %s\n", "dirty",
               is_dirty ? "yes (unpublished writes)" : "no");
        for (size_t i = 0; i < r.n; i++) {
            char id[24], holds[16];
            if (strcmp(r.key[i], "peer_holds") == 0 &&
                sscanf(r.val[i], "%23s %15s", id, holds) == 2)
                printf("%-10s %s: %s\n", "peer", id,
                       strcmp(holds, "yes") == 0        ? "holds this version"
                       : strcmp(holds, "fetching") == 0 ? "has the version, "
                                                          "fetching chunks"
                       : strcmp(holds, "no") == 0       ? "does not have it yet"
                                                        : "not heard from yet");
        }
        printf("%-10s %s\n", "chunks",
               mfs_statdoc_num(cli_reply_get(&r, "nchunks")));
        for (size_t i = 0; i < r.n; i++)
            if (strcmp(r.key[i], "chunk") == 0)
                printf("  %s\n", r.val[i]);
    }
    cli_reply_free(&r);
    return CLI_OK;
}

static int store_of(const cli_args *a, char *store, size_t cap);

/* --url: the status page's address with the store's token. */
static int print_url(const char *store)
{
    cli_reply r;
    int rc = cli_control_call(store, "stat", 10000, &r);
    if (rc < 0)
        return cli_fail("no daemon serves %s (%s): mount it with --http "
                        "IP:PORT to have a status page",
                        store, strerror(-rc));
    const char *addr = r.err ? NULL : cli_reply_get(&r, "http");
    char a[96];
    snprintf(a, sizeof a, "%s", addr ? addr : "");
    cli_reply_free(&r);
    if (!a[0])
        return cli_fail("the daemon of %s serves no status page: mount with "
                        "--http 127.0.0.1:PORT (or -o http=...)",
                        store);
    char token[MFS_HTTP_TOKEN_LEN + 1];
    rc = mfs_http_token(store, 0, token);
    if (rc < 0)
        return cli_fail("cannot read %s/%s: %s", store, MFS_HTTP_TOKEN_FILE,
                        strerror(-rc));
    printf("http://%s/?token=%s\n", a, token);
    return CLI_OK;
}

int cli_cmd_stat(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX], path[PATH_MAX];
    int is_default;
    int r = cli_args_parse("stat", argc, argv,
                           CLI_OPT_STORE | CLI_OPT_JSON | CLI_OPT_VIEW, 1, &a);
    if (r)
        return r;
    if (a.json + a.watch + a.url > 1)
        return cli_usage_error("give one of --json, --watch and --url",
                               a.url ? "--url" : "--watch");
    if (a.watch || a.url) {
        if (a.npos && a.store)
            return cli_usage_error("give either a mount point or --store",
                                   a.pos[0]);
        if ((r = store_of(&a, store, sizeof store)) != 0)
            return r;
        return a.url ? print_url(store)
                     : cli_top_run(store, !isatty(STDOUT_FILENO), 0);
    }
    if (a.npos && a.store)
        return cli_usage_error("give either a path or --store", a.pos[0]);
    if (!a.npos) {
        if (cli_store_dir(a.store, store, sizeof store, &is_default) < 0)
            return cli_fail("cannot find the default store: set HOME, "
                            "MESHFS_STORE or use --store DIR");
        return store_stat(store, a.json);
    }
    if (cli_abspath(a.pos[0], path, sizeof path) < 0)
        return cli_fail("path too long: %s", a.pos[0]);
    struct stat st;
    cli_mount m;
    if (cli_mount_dead(path) && cli_mount_at(path, &m) == 1 &&
        cli_mount_is_meshfs(&m))
        return store_stat(m.source, a.json); /* dead mount */
    if (lstat(path, &st) < 0) {
        int e = errno;
        return cli_fail("cannot stat %s: %s", path, strerror(e));
    }
    if (cli_mount_by_dev(major(st.st_dev), minor(st.st_dev), &m) == 1 &&
        cli_mount_is_meshfs(&m)) {
        if (st.st_ino == MFS_ROOT_INO)
            return store_stat(m.source, a.json);
        return file_stat(path, &m, (uint64_t)st.st_ino, a.json);
    }
    /* a store directory given as the argument */
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    if (S_ISDIR(st.st_mode) && access(data, F_OK) == 0)
        return store_stat(path, a.json);
    return cli_fail("not in a meshfs mount and not a store: %s", path);
}

/* ---- meshfs members / meshfs remove ------------------------------------ */

/* The store of [MOUNTPOINT | --store DIR]; 0 or an exit code. */
static int store_of(const cli_args *a, char *store, size_t cap)
{
    int is_default;
    if (!a->npos) {
        if (cli_store_dir(a->store, store, cap, &is_default) < 0)
            return cli_fail("cannot find the default store: set HOME, "
                            "MESHFS_STORE or use --store DIR");
        return 0;
    }
    char path[PATH_MAX];
    struct stat st;
    cli_mount m;
    if (cli_abspath(a->pos[a->npos - 1], path, sizeof path) < 0)
        return cli_fail("path too long: %s", a->pos[a->npos - 1]);
    if (lstat(path, &st) == 0 &&
        cli_mount_by_dev(major(st.st_dev), minor(st.st_dev), &m) == 1 &&
        cli_mount_is_meshfs(&m)) {
        snprintf(store, cap, "%s", m.source);
        return 0;
    }
    return cli_fail("not in a meshfs mount: %s", path);
}

static int ask_stat(const char *store, cli_reply *r)
{
    if (cli_control_call(store, "stat", 10000, r) < 0)
        return cli_fail("the daemon of %s is not running (members are known "
                        "only to a mounted store)",
                        store);
    if (r->err) {
        int code = cli_fail("%s", r->msg);
        cli_reply_free(r);
        return code;
    }
    return 0;
}

/* The fingerprint of node id's key ("key ID FPR" lines of the stat
 * reply), or "-" (a mesh of one mesh key, or no record yet). */
static const char *key_of(const cli_reply *r, const char *id)
{
    size_t n = strlen(id);
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->key[i], "key") && !strncmp(r->val[i], id, n) &&
            r->val[i][n] == ' ')
            return r->val[i] + n + 1;
    return "-";
}

int cli_cmd_members(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX];
    int rc = cli_args_parse("members", argc, argv, CLI_OPT_STORE | CLI_OPT_JSON,
                            1, &a);
    if (rc || (rc = store_of(&a, store, sizeof store)))
        return rc;
    cli_reply r;
    if ((rc = ask_stat(store, &r)))
        return rc;
    const char *self = mfs_statdoc_num(cli_reply_get(&r, "node"));
    if (a.json)
        printf("[{\"node\":\"%s\",\"state\":\"self\",\"key\":\"%s\"}", self,
               key_of(&r, self));
    else
        printf("%-16s %-21s %-8s %12s %12s  %s\n%-16s %-21s %-8s %12s %12s  "
               "%s\n",
               "node", "address", "state", "it lacks", "contact", "key", self,
               "(this node)", "self", "", "", key_of(&r, self));
    for (size_t i = 0; i < r.n; i++) {
        mfs_statdoc_peer p;
        if (strcmp(r.key[i], "peer") || !mfs_statdoc_peer_parse(r.val[i], &p))
            continue;
        if (a.json) {
            printf(",{\"node\":\"%s\",\"address\":", p.id);
            mfs_json_str(stdout, p.addr);
            printf(",\"state\":\"%s\",\"heard\":%s,\"ops_it_lacks\":%llu,"
                   "\"last_contact_ms\":%llu,\"key\":\"%s\"}",
                   p.state, p.heard ? "true" : "false", p.ops_they, p.last_ms,
                   key_of(&r, p.id));
        } else {
            char lacks[32], contact[32];
            snprintf(lacks, sizeof lacks, p.heard ? "%llu ops" : "?",
                     p.ops_they);
            snprintf(contact, sizeof contact, "%.1fs ago",
                     (double)p.last_ms / 1000);
            printf("%-16s %-21s %-8s %12s %12s  %s\n", p.id, p.addr, p.state,
                   lacks, contact, key_of(&r, p.id));
        }
    }
    /* removed nodes the transport no longer knows of */
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(r.key[i], "removed"))
            continue;
        int shown = 0;
        for (size_t j = 0; j < r.n && !shown; j++)
            shown = !strcmp(r.key[j], "peer") &&
                    !strncmp(r.val[j], r.val[i], strlen(r.val[i]));
        if (shown)
            continue;
        if (a.json)
            printf(",{\"node\":\"%s\",\"state\":\"removed\",\"key\":\"%s\"}",
                   r.val[i], key_of(&r, r.val[i]));
        else
            printf("%-16s %-21s %-8s %12s %12s  %s\n", r.val[i], "-", "removed",
                   "", "", key_of(&r, r.val[i]));
    }
    /* open invitations (of any member: the registry replicates them),
     * after the members */
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < r.n; i++) {
        mfs_status_invited v;
        if (strcmp(r.key[i], "invited") ||
            mfs_status_invited_parse(r.val[i], &v) || v.expires <= now)
            continue;
        if (a.json) {
            printf(",{\"invitation\":\"%016" PRIx64 "\",\"state\":\"invited\","
                   "\"by\":\"%016" PRIx64 "\",\"uses\":%u,\"created\":%" PRId64
                   ",\"expires\":%" PRId64 ",\"key\":\"-\"}",
                   v.id, v.by, v.uses, v.created, v.expires);
            continue;
        }
        int64_t left = v.expires - now;
        char in[32];
        if (left < 3600)
            snprintf(in, sizeof in, "%" PRId64 " min", (left + 59) / 60);
        else if (left < 2 * 86400)
            snprintf(in, sizeof in, "%" PRId64 " h", left / 3600);
        else
            snprintf(in, sizeof in, "%" PRId64 " d", left / 86400);
        printf("invited  %016" PRIx64 "  by %016" PRIx64
               "  %u join%s left, expires in %s\n",
               v.id, v.by, v.uses, v.uses == 1 ? "" : "s", in);
    }
    if (a.json)
        printf("]\n");
    cli_reply_free(&r);
    return CLI_OK;
}

int cli_cmd_remove(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX];
    int rc = cli_args_parse("remove", argc, argv, CLI_OPT_STORE, 2, &a);
    if (rc)
        return rc;
    if (!a.npos)
        return cli_usage_error("give the node to remove (see meshfs members)",
                               "");
    const char *want = a.pos[0];
    a.npos--; /* the rest names the mount */
    memmove(a.pos, a.pos + 1, sizeof a.pos - sizeof a.pos[0]);
    if ((rc = store_of(&a, store, sizeof store)))
        return rc;
    cli_reply r;
    if ((rc = ask_stat(store, &r)))
        return rc;
    /* a unique prefix of a member's id, or a whole id */
    char node[24] = "";
    int matches = 0;
    for (size_t i = 0; i < r.n; i++) {
        mfs_statdoc_peer p;
        if (!strcmp(r.key[i], "peer") && mfs_statdoc_peer_parse(r.val[i], &p) &&
            !strncmp(p.id, want, strlen(want))) {
            snprintf(node, sizeof node, "%s", p.id);
            matches++;
        }
    }
    const char *self = cli_reply_get(&r, "node");
    if (self && !strncmp(self, want, strlen(want)) && strlen(want) == 16) {
        cli_reply_free(&r);
        return cli_fail("%s is this node: it cannot remove itself", want);
    }
    if (matches > 1) {
        cli_reply_free(&r);
        return cli_fail("%s matches %d members: give more digits", want,
                        matches);
    }
    if (!matches) {
        if (strlen(want) != 16 || strspn(want, "0123456789abcdef") != 16) {
            cli_reply_free(&r);
            return cli_fail("%s is not a member (see meshfs members)", want);
        }
        snprintf(node, sizeof node, "%s", want); /* known only by its ops */
    }
    cli_reply_free(&r);
    char req[64];
    snprintf(req, sizeof req, "remove %s", node);
    if (cli_control_call(store, req, 10000, &r) < 0)
        return cli_fail("the daemon of %s does not answer", store);
    if (r.err) {
        int code = cli_fail("%s", r.msg);
        cli_reply_free(&r);
        return code;
    }
    cli_reply_free(&r);
    printf("removed %s from the mesh: every member stops waiting for it and "
           "refuses it from now on\n",
           node);
    return CLI_OK;
}

/* ---- meshfs migrate: a mesh key mesh moves to per-node keys ------------ */

int cli_cmd_migrate(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX], mp[PATH_MAX + 16], key[128];
    int rc = cli_args_parse("migrate", argc, argv, CLI_OPT_STORE, 1, &a);
    if (rc || (rc = store_of(&a, store, sizeof store)))
        return rc;
    snprintf(mp, sizeof mp, "%s/%s", store, MFS_MIGRATING_FILE);
    mfs_ident id;
    int r = mfs_ident_load(store, &id);
    if (r == 0) {
        mfs_ident_wipe(&id);
        printf(access(mp, F_OK) == 0
                   ? "this node has its own key and the mesh is moving to "
                     "per-node keys: meshfs stat shows how far\n"
                   : "this node has its own key already: nothing to do\n");
        return CLI_OK;
    }
    if (r != -ENOENT)
        return cli_fail(
            "cannot read the node key %s/%s: %s", store, MFS_IDENT_FILE,
            r == -EPERM ? "readable by others (chmod 600 it)" : strerror(-r));
    cli_reply rep;
    r = cli_control_call(store, "migrate", 10000, &rep);
    if (r == 0 && rep.err) {
        int code = cli_fail("%s", rep.msg);
        cli_reply_free(&rep);
        return code;
    }
    if (r == 0)
        cli_reply_free(&rep);
    else { /* no daemon: the store itself, the next mount moves */
        mfs_store *s;
        if ((r = mfs_store_open(&s, store, NULL, 0)) < 0)
            return cli_fail("cannot open the store %s: %s", store,
                            mfs_store_strerror(r));
        r = mfs_node_migrate_store(store, s);
        mfs_store_close(s);
        if (r < 0)
            return cli_fail("cannot make this node's key in %s: %s", store,
                            strerror(-r));
    }
    printf("this node has a key of its own: %s\n"
           "the mesh moves to per-node keys once every member has run meshfs "
           "migrate\n(meshfs stat shows how far; the mesh key keeps working "
           "until then)\n",
           mfs_statdoc_own_key(store, key, sizeof key));
    return CLI_OK;
}
