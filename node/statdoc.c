/*
 * statdoc.c - the status document: `meshfs stat`'s reply from the daemon
 * (the control protocol's "key value" lines, node/control.c) read into
 * what people see, and written as the one JSON object that `meshfs stat
 * --json` prints and the status page's /status.json serves (node/http.c):
 * the same code for both, so the two cannot differ. docs/STATUS.md
 * describes the document as a versioned interface (format 1).
 */
#include "statdoc.h"

#include "ident.h"
#include "node.h"
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mfs_kv_add(mfs_kv *r, const char *k, const char *v)
{
    char **nk = realloc(r->key, (r->n + 1) * sizeof *nk);
    if (!nk)
        return -ENOMEM;
    r->key = nk;
    char **nv = realloc(r->val, (r->n + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    r->val = nv;
    r->key[r->n] = strdup(k);
    r->val[r->n] = strdup(v);
    if (!r->key[r->n] || !r->val[r->n]) {
        free(r->key[r->n]);
        free(r->val[r->n]);
        return -ENOMEM;
    }
    r->n++;
    return 0;
}

void mfs_kv_free(mfs_kv *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->key[i]);
        free(r->val[i]);
    }
    free(r->key);
    free(r->val);
    memset(r, 0, sizeof *r);
}

const char *mfs_kv_get(const mfs_kv *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], key) == 0)
            return r->val[i];
    return NULL;
}

/* This node's key fingerprint (STORE/node.key), or why there is none. */
const char *mfs_statdoc_own_key(const char *store, char *buf, size_t cap)
{
    mfs_ident id;
    int r = mfs_ident_load(store, &id);
    if (r == -ENOENT)
        return "none (a mesh of one mesh key)";
    if (r < 0) {
        snprintf(buf, cap, "? (%s)", strerror(-r));
        return buf;
    }
    char fpr[MFS_IDENT_FPR_LEN];
    mfs_ident_fingerprint(id.pk, fpr);
    mfs_ident_wipe(&id);
    snprintf(buf, cap, "%s", fpr);
    return buf;
}

/* Numeric store counters, in output order: reply key, text label. */
const mfs_statdoc_counter mfs_statdoc_counters[] = {
    {"files", "files"},
    {"dirs", "directories"},
    {"symlinks", "symlinks"},
    {"others", "other nodes"},
    {"bytes", "bytes"},
    {"ops", "ops"},
    {"ops_folded", "ops folded"},
    {"local_seq", "local ops"},
    {"conflicts", "conflicts"},
    {"dirty_files", "unpublished files"},
    {"chunks", "chunks"},
    {"chunk_bytes", "chunk bytes"},
    {"store_bytes", "store size"},
    {"log_bytes", "intent log size"},
    {"map_bytes", "map size"},
    {"pack_files", "pack files"},
    {"pack_bytes", "pack bytes"},
    {"pack_live", "pack bytes live"},
    /* since the mount (docs/FS.md "Write-behind"); 0 without a daemon */
    {"writes_behind", "writes queued"},
    {"writes_failed_late", "late write errors"},
};
const size_t mfs_statdoc_ncounters =
    sizeof mfs_statdoc_counters / sizeof *mfs_statdoc_counters;

/* The write concern's lines of the daemon's reply (node/mesh.c), in
 * --json as they are; the counters are 0 without a daemon. */
static const char *const acks_keys[] = {
    "acks_n",
    "acks_timeout_ms",
    "acks_wait",
    "acks_on_close",
    "acks_waiting",
    "acks_met",
    "acks_failed_timeout",
    "acks_failed_peers",
    "acks_failed_other",
    "acks_p50_us",
    "acks_p99_us",
    "acks_early",
};

/* s as a JSON string, or null when s is NULL */
void mfs_json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

const char *mfs_statdoc_num(const char *v)
{
    return v && v[0] ? v : "0";
}

/* The line's fields (node/status.c decodes them) as this file prints
 * them. 1 if it could be read. */
int mfs_statdoc_peer_parse(const char *v, mfs_statdoc_peer *p)
{
    mfs_status_peer s;
    memset(p, 0, sizeof *p);
    if (mfs_status_peer_parse(v, &s) < 0)
        return 0;
    snprintf(p->id, sizeof p->id, "%016" PRIx64, s.id);
    snprintf(p->addr, sizeof p->addr, "%s", s.addr);
    snprintf(p->state, sizeof p->state, "%s", s.state);
    p->rtt_us = s.rtt_us;
    p->loss_out = s.loss_out;
    p->loss_in = s.loss_in;
    p->last_ms = s.last_ms;
    p->heard = s.heard;
    p->ops_they = s.ops_they;
    p->bytes_they = s.bytes_they;
    p->ops_we = s.ops_we;
    p->bytes_we = s.bytes_we;
    p->skew_ms = s.skew_ms;
    p->chunks_they = s.chunks_they;
    p->wait_max_us = s.wait_max_us;
    p->clock_us = s.clock_us;
    p->clock_err_us = s.clock_err_us;
    p->clock_ok = s.clock_ok;
    p->bytes_in = s.bytes_in;
    p->bytes_out = s.bytes_out;
    p->ops_sent = s.ops_sent;
    p->ops_recv = s.ops_recv;
    p->chunks_sent = s.chunks_sent;
    p->chunks_recv = s.chunks_recv;
    p->retransmits = s.retransmits;
    p->dropped = s.dropped;
    return 1;
}

/* This node's "clock" line as people read it: "+10 min ahead of the mesh:
 * corrected (...)", "in step with the mesh (...)". 0: no such line. */
int mfs_statdoc_clock_text(const mfs_kv *r, char *buf, size_t cap)
{
    mfs_status_clock c;
    const char *v = mfs_kv_get(r, "clock");
    if (!v || mfs_status_clock_parse(v, &c) < 0)
        return 0;
    char d[32];
    mfs_node_clock_human(-c.mesh_ms, d, sizeof d); /* ours minus the mesh's */
    const char *slow = c.behind ? "; this clock runs behind the stamps this "
                                  "store holds"
                                : "";
    if (strcmp(c.state, "corrected") == 0)
        snprintf(buf, cap,
                 "%s %s the mesh: corrected (new changes carry the mesh's "
                 "time; measured against %u member%s, +/- %.1f ms; set the "
                 "clock right: timedatectl set-ntp true)%s",
                 d, c.mesh_ms < 0 ? "ahead of" : "behind", c.peers,
                 c.peers == 1 ? "" : "s", (double)c.err_us / 1000, slow);
    else if (strcmp(c.state, "in-step") == 0)
        snprintf(buf, cap,
                 "in step with the mesh (%s, measured against %u member%s, "
                 "+/- %.1f ms)%s",
                 d, c.peers, c.peers == 1 ? "" : "s", (double)c.err_us / 1000,
                 slow);
    else if (strcmp(c.state, "remembered") == 0) {
        mfs_node_clock_human(-c.corr_ms, d, sizeof d);
        snprintf(buf, cap,
                 "%s ahead of the mesh when last measured: corrected from "
                 "memory (no member measured yet; set the clock right: "
                 "timedatectl set-ntp true)%s",
                 d, slow);
    } else
        snprintf(buf, cap, "not measured yet (no member heard)%s", slow);
    return 1;
}

void mfs_human_bytes(unsigned long long b, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

void mfs_statdoc_summarize(const mfs_kv *r, int running, mfs_statdoc_summary *m)
{
    memset(m, 0, sizeof *m);
    const char *rs = mfs_kv_get(r, "repl_in_sync");
    m->dirty =
        strtoull(mfs_statdoc_num(mfs_kv_get(r, "dirty_files")), NULL, 10);
    if (!running || !rs) {
        snprintf(m->line, sizeof m->line, "%s",
                 running ? "unknown (built without the mesh)"
                         : "unknown: the daemon is not running");
        return;
    }
    m->known = 1;
    m->live = strtoull(mfs_statdoc_num(mfs_kv_get(r, "live_peers")), NULL, 10);
    mfs_status_catchup cu;
    const char *cl = mfs_kv_get(r, "catchup");
    if (cl && mfs_status_catchup_parse(cl, &cu) == 0) {
        m->catching_up = cu.active;
        m->ops_to_go = cu.ops;
        m->chunks_to_go = cu.chunks;
        m->bytes_to_go = cu.bytes;
        m->ops_rate = cu.ops_per_s;
        m->bytes_rate = cu.bytes_per_s;
        m->eta_ms = cu.eta_ms;
    }
    mfs_status_snap sn;
    const char *sl = mfs_kv_get(r, "snapshot");
    if (sl && mfs_status_snap_parse(sl, &sn) == 0) {
        m->snap_active = sn.active;
        m->snap_refused = sn.refused;
        snprintf(m->snap_from, sizeof m->snap_from, "%016" PRIx64, sn.from);
        m->snap_done = sn.done;
        m->snap_total = sn.total;
        m->snaps_installed = sn.installed;
        m->snaps_served = sn.served;
    }
    if (m->snap_active)
        m->catching_up = 1;
    unsigned long long owe = 0, owed = 0, their_chunks = 0, silent = 0;
    for (size_t i = 0; i < r->n; i++) {
        mfs_statdoc_peer p;
        if (strcmp(r->key[i], "peer") == 0 &&
            mfs_statdoc_peer_parse(r->val[i], &p) &&
            strcmp(p.state, "dead") != 0 && strcmp(p.state, "left") != 0) {
            owe += p.ops_they;
            owed += p.ops_we;
            their_chunks += p.chunks_they;
            silent += !p.heard;
        }
    }
    /* the daemon decides (mfs_status_in_sync): the rest is for the text */
    m->in_sync = strcmp(rs, "1") == 0;
    const char *rm = mfs_kv_get(r, "removed_self");
    if (rm) {
        m->in_sync = 0;
        m->removed = 1;
        if (strspn(rm, "0") == strlen(rm))
            snprintf(m->line, sizeof m->line,
                     "NOT in sync: this node was removed from the mesh; the "
                     "members refuse its changes (to take part again: "
                     "`meshfs join` a new invitation; this store is then "
                     "kept aside, and its changes the mesh lacks are "
                     "copied to /lost+found)");
        else
            snprintf(m->line, sizeof m->line,
                     "NOT in sync: this node was removed from the mesh (node "
                     "%.16s refuses it); the members refuse its changes (to "
                     "take part again: `meshfs join` a new invitation; this "
                     "store is then kept aside, and its changes the mesh "
                     "lacks are copied to /lost+found)",
                     rm);
        return;
    }
    if (m->in_sync && m->live == 0)
        snprintf(m->line, sizeof m->line,
                 "in sync (no live peers: nothing to compare with)");
    else if (m->in_sync)
        snprintf(m->line, sizeof m->line, "in sync with %llu live peer%s",
                 m->live, m->live == 1 ? "" : "s");
    else
        snprintf(m->line, sizeof m->line,
                 "NOT in sync: %llu ops and %llu chunks to receive; peers lack "
                 "%llu ops and %llu chunks; %llu unpublished files; %llu "
                 "peers not heard from",
                 owed, m->chunks_to_go, owe, their_chunks, m->dirty, silent);
}

static void mesh_json(FILE *f, const mfs_kv *r, const mfs_statdoc_summary *m)
{
    fprintf(f, ",\"listen\":");
    mfs_json_str(f, mfs_kv_get(r, "listen"));
    fprintf(f, ",\"in_sync\":%s,\"removed\":%s,\"sync\":",
            m->in_sync ? "true" : "false", m->removed ? "true" : "false");
    mfs_json_str(f, m->line);
    fprintf(f, ",\"rejoin\":");
    mfs_json_str(f, mfs_kv_get(r, "rejoin"));
    mfs_status_clock c;
    const char *cv = mfs_kv_get(r, "clock");
    if (cv && mfs_status_clock_parse(cv, &c) == 0) {
        char ck[320];
        mfs_statdoc_clock_text(r, ck, sizeof ck);
        fprintf(f, ",\"clock\":{\"state\":");
        mfs_json_str(f, c.state);
        fprintf(f,
                ",\"offset_ms\":%lld,\"correction_ms\":%lld,\"err_ms\":%.3f,"
                "\"peers\":%u,\"behind_stamps\":%s,\"text\":",
                (long long)-c.mesh_ms, (long long)c.corr_ms,
                (double)c.err_us / 1000, c.peers, c.behind ? "true" : "false");
        mfs_json_str(f, ck);
        fprintf(f, "}");
    }
    fprintf(f, ",\"live_peers\":%llu,\"peers\":[", m->live);
    int first = 1;
    for (size_t i = 0; i < r->n; i++) {
        mfs_statdoc_peer p;
        if (strcmp(r->key[i], "peer") != 0 ||
            !mfs_statdoc_peer_parse(r->val[i], &p))
            continue;
        fprintf(f, "%s{\"id\":", first ? "" : ",");
        mfs_json_str(f, p.id);
        fprintf(f, ",\"addr\":");
        mfs_json_str(f, p.addr);
        fprintf(f, ",\"state\":");
        mfs_json_str(f, p.state);
        fprintf(f,
                ",\"rtt_ms\":%.3f,\"loss\":%.4f,\"loss_out\":%.4f,"
                "\"loss_in\":%.4f,\"last_contact_ms\":%llu,\"heard\":%s,"
                "\"ops_they_lack\":%llu,\"bytes_they_lack\":%llu,"
                "\"ops_we_lack\":%llu,\"bytes_we_lack\":%llu,"
                "\"clock_skew_ms\":%lld,\"chunks_they_lack\":%llu,"
                "\"longest_wait_ms\":%.3f,\"clock_measured\":%s,"
                "\"clock_offset_ms\":%.3f,\"clock_err_ms\":%.3f,"
                "\"bytes_in\":%llu,\"bytes_out\":%llu,\"ops_sent\":%llu,"
                "\"ops_recv\":%llu,\"chunks_sent\":%llu,\"chunks_recv\":%llu,"
                "\"retransmits\":%llu,\"dropped\":%llu}",
                (double)p.rtt_us / 1000,
                p.loss_out > p.loss_in ? p.loss_out : p.loss_in, p.loss_out,
                p.loss_in, p.last_ms, p.heard ? "true" : "false", p.ops_they,
                p.bytes_they, p.ops_we, p.bytes_we, p.skew_ms, p.chunks_they,
                (double)p.wait_max_us / 1000, p.clock_ok ? "true" : "false",
                (double)p.clock_us / 1000, (double)p.clock_err_us / 1000,
                p.bytes_in, p.bytes_out, p.ops_sent, p.ops_recv, p.chunks_sent,
                p.chunks_recv, p.retransmits, p.dropped);
        first = 0;
    }
    fprintf(f, "],\"seeds\":[");
    first = 1;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "seed") == 0) {
            fprintf(f, "%s", first ? "" : ",");
            mfs_json_str(f, r->val[i]);
            first = 0;
        }
    fprintf(f, "],\"conflict_paths\":[");
    first = 1;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "conflict_path") == 0) {
            fprintf(f, "%s", first ? "" : ",");
            mfs_json_str(f, r->val[i]);
            first = 0;
        }
    unsigned long long qmax = 0, qdrop = 0, sdrop = 0, wmax = 0;
    const char *rq = mfs_kv_get(r, "repl_queue");
    if (rq)
        sscanf(rq, "%llu %llu %llu %llu", &qmax, &qdrop, &sdrop, &wmax);
    fprintf(f,
            "],\"repl_queue\":{\"max_bytes\":%llu,\"dropped\":%llu,"
            "\"send_dropped\":%llu,\"storing_max_bytes\":%llu}",
            qmax, qdrop, sdrop, wmax);
    fprintf(f,
            ",\"catchup\":{\"active\":%s,\"ops_to_go\":%llu,"
            "\"chunks_to_go\":%llu,\"bytes_to_go\":%llu,\"ops_per_s\":%.1f,"
            "\"bytes_per_s\":%.1f,\"eta_ms\":%lld,\"snapshot\":{"
            "\"active\":%s,\"from\":\"%s\",\"bytes_done\":%llu,"
            "\"bytes_total\":%llu,\"installed\":%llu,\"served\":%llu,"
            "\"refused\":%s}}",
            m->catching_up ? "true" : "false", m->ops_to_go, m->chunks_to_go,
            m->bytes_to_go, m->ops_rate, m->bytes_rate, m->eta_ms,
            m->snap_active ? "true" : "false",
            m->snap_active ? m->snap_from : "", m->snap_done, m->snap_total,
            m->snaps_installed, m->snaps_served,
            m->snap_refused ? "true" : "false");
}

unsigned long long mfs_statdoc_u64(const mfs_kv *r, const char *key)
{
    return strtoull(mfs_statdoc_num(mfs_kv_get(r, key)), NULL, 10);
}

void mfs_statdoc_collect_parse(const mfs_kv *r, mfs_statdoc_collect *c)
{
    memset(c, 0, sizeof *c);
    const char *v = mfs_kv_get(r, "collect");
    c->have =
        v &&
        sscanf(v,
               "%llu %llu %llu %llu %llu %llu %llu %16s %llu "
               "%d %d %llu %llu %llu %llu %llu %llu %llu",
               &c->passes, &c->versions, &c->inodes, &c->chunks, &c->bytes,
               &c->pinned, &c->held, c->origin, &c->max_pause_us, &c->settled,
               &c->err, &c->retention_ms, &c->moved, &c->disk_freed, &c->early,
               &c->trash_over, &c->tombstones, &c->moves) == 18;
    v = mfs_kv_get(r, "collect_held_by");
    c->held_by_have =
        v && sscanf(v, "%16s %d %d %llu", c->held_by, &c->held_live,
                    &c->held_heard, &c->held_ago_ms) == 4;
}

static void collect_json(FILE *f, const mfs_kv *r)
{
    mfs_statdoc_collect c;
    mfs_statdoc_collect_parse(r, &c);
    if (!c.have)
        return;
    fprintf(f,
            ",\"collection\":{\"passes\":%llu,\"versions\":%llu,"
            "\"deleted_files\":%llu,\"chunks\":%llu,\"chunk_bytes\":%llu,"
            "\"kept_for_open_files\":%llu,\"held_back_items\":%llu,"
            "\"max_pause_us\":%llu,\"settled\":%s,\"error\":%d,"
            "\"trash_ms\":%llu,\"chunks_moved\":%llu,\"disk_freed\":%llu,"
            "\"trash_early\":%llu,\"trash_over\":%llu,\"tombstones\":%llu,"
            "\"undo_records\":%llu,\"held_by\":",
            c.passes, c.versions, c.inodes, c.chunks, c.bytes, c.pinned, c.held,
            c.max_pause_us, c.settled ? "true" : "false", c.err, c.retention_ms,
            c.moved, c.disk_freed, c.early, c.trash_over, c.tombstones,
            c.moves);
    if (c.held_by_have) {
        fprintf(f, "{\"node\":");
        mfs_json_str(f, c.held_by);
        fprintf(f, ",\"live\":%s,\"heard\":%s,\"last_contact_ms\":%llu}",
                c.held_live ? "true" : "false", c.held_heard ? "true" : "false",
                c.held_ago_ms);
    } else {
        fprintf(f, "null");
    }
    fprintf(f, "}");
}

/* "sync_jobs": the `meshfs sync` waits under way */
static void syncjobs_json(FILE *f, const mfs_kv *r)
{
    fprintf(f, ",\"sync_jobs\":[");
    int first = 1;
    for (size_t i = 0; i < r->n; i++) {
        mfs_status_syncjob j;
        if (strcmp(r->key[i], "sync_job") != 0 ||
            mfs_status_syncjob_parse(r->val[i], &j) < 0)
            continue;
        fprintf(f,
                "%s{\"seq\":%" PRIu64 ",\"have\":%u,\"want\":%u,"
                "\"elapsed_ms\":%" PRIu64 ",\"timeout_ms\":%" PRIu64 "}",
                first ? "" : ",", j.seq, j.have, j.want, j.elapsed_ms,
                j.timeout_ms);
        first = 0;
    }
    fprintf(f, "]");
}

void mfs_statdoc_json(FILE *f, const mfs_kv *r, int running, const char *store,
                      const char *mount)
{
    mfs_statdoc_summary sum;
    char key[128];
    mfs_statdoc_summarize(r, running, &sum);
    const char *pid = running ? mfs_kv_get(r, "pid") : NULL;
    fprintf(f, "{\"format\":%d,\"node\":", MFS_STATDOC_FORMAT);
    mfs_json_str(f, mfs_statdoc_num(mfs_kv_get(r, "node")));
    fprintf(f, ",\"key\":");
    mfs_json_str(f, mfs_statdoc_own_key(store, key, sizeof key));
    unsigned mv, mm, mk, mt;
    const char *mg = mfs_kv_get(r, "migrating");
    if (mg && sscanf(mg, "%u %u %u %u", &mv, &mm, &mk, &mt) == 4)
        fprintf(f,
                ",\"migration\":{\"moved\":%s,\"members\":%u,"
                "\"keyed\":%u,\"met\":%u}",
                mv ? "true" : "false", mm, mk, mt);
    else
        fprintf(f, ",\"migration\":null");
    fprintf(f, ",\"store\":");
    mfs_json_str(f, store);
    fprintf(f, ",\"mount\":");
    mfs_json_str(f, mount);
    fprintf(f, ",\"daemon\":%s,\"daemon_pid\":%s", running ? "true" : "false",
            pid ? pid : "null");
    fprintf(f, ",\"version\":");
    mfs_json_str(f, mfs_kv_get(r, "version"));
    fprintf(f, ",\"http\":");
    mfs_json_str(f, mfs_kv_get(r, "http"));
    for (size_t i = 0; i < mfs_statdoc_ncounters; i++)
        fprintf(f, ",\"%s\":%s", mfs_statdoc_counters[i].key,
                mfs_statdoc_num(mfs_kv_get(r, mfs_statdoc_counters[i].key)));
    for (size_t i = 0; i < sizeof acks_keys / sizeof *acks_keys; i++)
        fprintf(f, ",\"%s\":%llu", acks_keys[i],
                mfs_statdoc_u64(r, acks_keys[i]));
    mesh_json(f, r, &sum);
    syncjobs_json(f, r);
    collect_json(f, r);
    fprintf(f, "}\n");
}
