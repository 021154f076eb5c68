/*
 * control.c - the daemon's control socket (the client is cli/control.c).
 *
 * STORE_DIR/control.sock, a unix stream socket, mode 0600, only the daemon's
 * own uid (and root) may talk to it. Protocol (docs/FS.md): one request line
 * per connection, "VERB [ARG]\n"; the reply is zero or more "key value"
 * lines (key without blanks, value to the end of the line; a key may repeat)
 * and a last line "ok" or "error ERRNO message". Clients ignore keys they do
 * not know, so later issues add keys (peers) without breaking old clients.
 *
 * Verbs: hello, stat [watch], file INO, flush, stop, remove NODE, trash,
 * restore, sync PEERS TIMEOUT_MS. The server answers one connection at a time
 * with a receive/send timeout, so a stuck client cannot wedge it; a "sync"
 * waits for the mesh for up to its timeout, so it runs on a thread of its own
 * (the "sync jobs", at most SYNC_JOBS_MAX, all ended before the server
 * stops) and streams its progress (daemon.h). It must never block a FUSE
 * thread or hold a store transaction across I/O with a client.
 */
#include "internal.h"

#include "daemon.h"
#include "fs.h"
#include "log.h"
#include "statdoc.h"
#include "status.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Fills a sockaddr for dir/control.sock. Paths too long for sun_path go
 * through /proc/self/fd/N of an O_PATH descriptor of the directory. */
int mfs_control_sock_addr(const char *dir, struct sockaddr_un *sa, int *dirfd)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    *dirfd = -1;
    int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", dir,
                     MFS_CONTROL_SOCK);
    if (n > 0 && (size_t)n < sizeof sa->sun_path)
        return 0;
    *dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        return -errno;
    snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", *dirfd,
             MFS_CONTROL_SOCK);
    return 0;
}

/* ---- server ------------------------------------------------------------ */

static int64_t mono_ms(void);

typedef struct out_buf {
    int fd;
    FILE *mem; /* instead of fd: the reply in memory (mfs_control_stat) */
    char buf[8192];
    size_t len;
    int err;
} out_buf;

static void out_flush(out_buf *o)
{
    size_t off = 0;
    if (o->mem) {
        if (!o->err && fwrite(o->buf, 1, o->len, o->mem) != o->len)
            o->err = -ENOMEM;
        o->len = 0;
        return;
    }
    while (!o->err && off < o->len) {
        ssize_t n = send(o->fd, o->buf + off, o->len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            o->err = -errno;
            break;
        }
        off += (size_t)n;
    }
    o->len = 0;
}

static void outf(out_buf *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void outf(out_buf *o, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    for (int i = 0; i < n - 1; i++) /* a value never breaks a line */
        if (line[i] == '\n')
            line[i] = ' ';
    if (o->len + (size_t)n > sizeof o->buf)
        out_flush(o);
    memcpy(o->buf + o->len, line, (size_t)n);
    o->len += (size_t)n;
}

static void reply_hello(mfs_control *c, out_buf *o)
{
    outf(o, "version %s\n", MESHFS_VERSION);
    outf(o, "pid %ld\n", (long)getpid());
    outf(o, "store %s\n", c->store_dir);
    outf(o, "mount %s\n", c->mountpoint);
    outf(o, "node %016" PRIx64 "\n", mfs_store_node_id(c->store));
    outf(o, "ok\n");
}

static void out_line(void *arg, const char *line)
{
    outf(arg, "%s\n", line);
}

/* The conflicts the stat reply lists: up to CONFLICTS_SEEN of the store's
 * walk (path order), newest first by the time in a copy's name
 * ("<stem>.conflict-<node>-<YYYYMMDD-HHMMSS><.ext>", store/names.c),
 * those without one last, and the first CONFLICTS_SHOWN of them. */
#define CONFLICTS_SEEN 1000
#define CONFLICTS_SHOWN 100

typedef struct conflict_list {
    size_t n;
    char *path[CONFLICTS_SEEN];
    char when[CONFLICTS_SEEN][16]; /* "YYYYMMDDHHMMSS", "" if none */
} conflict_list;

/* The copy's time from its last path component, or "" */
static void conflict_when(const char *path, char out[16])
{
    out[0] = '\0';
    const char *base = strrchr(path, '/');
    const char *c = strstr(base ? base : path, ".conflict-");
    if (!c || strlen(c) < 10 + 16 + 1 + 15)
        return;
    const char *t = c + 10 + 16; /* past ".conflict-" and the node id */
    if (t[0] != '-' || t[9] != '-')
        return;
    for (int i = 1; i < 16; i++)
        if (i != 9 && (t[i] < '0' || t[i] > '9'))
            return;
    memcpy(out, t + 1, 8);
    memcpy(out + 8, t + 10, 6);
    out[14] = '\0';
}

static void conflict_keep(void *arg, const char *path)
{
    conflict_list *l = arg;
    if (l->n >= CONFLICTS_SEEN || !(l->path[l->n] = strdup(path)))
        return;
    conflict_when(path, l->when[l->n]);
    l->n++;
}

static void conflicts_reply(mfs_control *c, out_buf *o)
{
    conflict_list *l = calloc(1, sizeof *l);
    if (!l)
        return; /* the count still shows; the paths are a nicety */
    mfs_store_conflicts(c->store, conflict_keep, l, CONFLICTS_SEEN);
    for (size_t shown = 0; shown < CONFLICTS_SHOWN && shown < l->n; shown++) {
        size_t best = shown; /* selection: at most 100 passes */
        for (size_t i = shown + 1; i < l->n; i++)
            if (strcmp(l->when[i], l->when[best]) > 0)
                best = i;
        char *p = l->path[best];
        char w[16];
        memcpy(w, l->when[best], sizeof w);
        memmove(&l->path[shown + 1], &l->path[shown],
                (best - shown) * sizeof *l->path);
        memmove(&l->when[shown + 1], &l->when[shown],
                (best - shown) * sizeof *l->when);
        l->path[shown] = p;
        memcpy(l->when[shown], w, sizeof w);
        outf(o, "conflict_path %s\n", p);
    }
    for (size_t i = 0; i < l->n; i++)
        free(l->path[i]);
    free(l);
}

/* key NODE FINGERPRINT: a member's key as the registry holds it */
static int key_line(void *arg, uint64_t node, const uint8_t *rec, size_t len)
{
    mfs_member_rec r;
    char fpr[MFS_IDENT_FPR_LEN];
    if (mfs_member_rec_parse(rec, len, &r) == 0 && r.node == node) {
        mfs_ident_fingerprint(r.pk, fpr);
        outf(arg, "key %016" PRIx64 " %s\n", node, fpr);
    }
    return 0;
}

/* invited ...: the open invitations the registry lists. One whose
 * expiry passed is left out before its maker clears it (that node may be
 * down). */
static void invited_reply(mfs_control *c, out_buf *o)
{
    mfs_invited v[64];
    ssize_t n = mfs_store_invited_list(c->store, v, 64);
    int64_t now = (int64_t)time(NULL);
    for (ssize_t i = 0; i < n && i < 64; i++) {
        if (v[i].expires <= now)
            continue;
        mfs_status_invited s = {.id = v[i].id,
                                .by = v[i].by,
                                .created = v[i].created,
                                .expires = v[i].expires,
                                .uses = v[i].uses};
        char f[MFS_STATUS_LINE_MAX];
        mfs_status_invited_format(&s, f, sizeof f);
        outf(o, "invited %s\n", f);
    }
}

static void reply_stat(mfs_control *c, out_buf *o)
{
    mfs_store_stats st;
    int r = mfs_store_stats_get(c->store, &st);
    if (r < 0) {
        outf(o, "error %d cannot read the store's statistics: %s\n", -r,
             strerror(-r));
        return;
    }
    outf(o, "version %s\n", MESHFS_VERSION);
    outf(o, "pid %ld\n", (long)getpid());
    outf(o, "store %s\n", c->store_dir);
    outf(o, "mount %s\n", c->mountpoint);
    outf(o, "node %016" PRIx64 "\n", st.node_id);
    outf(o, "files %" PRIu64 "\n", st.files);
    outf(o, "dirs %" PRIu64 "\n", st.dirs);
    outf(o, "symlinks %" PRIu64 "\n", st.symlinks);
    outf(o, "others %" PRIu64 "\n", st.others);
    outf(o, "bytes %" PRIu64 "\n", st.bytes);
    outf(o, "ops %" PRIu64 "\n", st.ops);
    outf(o, "ops_folded %" PRIu64 "\n", st.ops_folded);
    outf(o, "local_seq %" PRIu64 "\n", st.local_seq);
    outf(o, "chunks %" PRIu64 "\n", st.chunks);
    outf(o, "chunk_bytes %" PRIu64 "\n", st.chunk_bytes);
    outf(o, "conflicts %" PRIu64 "\n", st.conflicts);
    outf(o, "dirty_files %" PRIu64 "\n", st.dirty_files);
    outf(o, "store_bytes %" PRIu64 "\n", st.store_bytes);
    outf(o, "log_bytes %" PRIu64 "\n", st.log_bytes);
    if (c->fs) { /* fs/wb.c: writes answered before the store had them */
        uint64_t answered, failed;
        mfs_fs_wb_counts(&c->fs->wb, &answered, &failed);
        outf(o, "writes_behind %" PRIu64 "\n", answered);
        outf(o, "writes_failed_late %" PRIu64 "\n", failed);
    }
    outf(o, "map_bytes %" PRIu64 "\n", st.map_bytes);
    outf(o, "pack_files %" PRIu64 "\n", st.pack_files);
    outf(o, "pack_bytes %" PRIu64 "\n", st.pack_bytes);
    outf(o, "pack_live %" PRIu64 "\n", st.pack_live);
    mfs_collect_stats cs;
    mfs_store_collect_stats_get(c->store, &cs);
    /* collection: passes, what it freed, what it keeps and why */
    outf(o,
         "collect %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
         " %" PRIu64 " %" PRIu64 " %016" PRIx64 " %" PRIu64 " %d %d %" PRIu64
         " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
         " %" PRIu64 "\n",
         cs.passes, cs.versions, cs.inodes, cs.chunks, cs.chunk_bytes,
         cs.pinned, cs.held_back, cs.held_origin, cs.max_pause_us, cs.settled,
         cs.last_error, cs.retention_ms, cs.moved, cs.disk_freed, cs.early,
         cs.trash_over, cs.tombstones, cs.moves);
    uint64_t removed[64];
    ssize_t nrm = mfs_store_members_removed(c->store, removed, 64);
    for (ssize_t i = 0; i < nrm && i < 64; i++)
        outf(o, "removed %016" PRIx64 "\n", removed[i]);
    mfs_store_member_keys(c->store, key_line, o);
    invited_reply(c, o);
    int moved;
    uint32_t members, keyed, met;
    if (c->mesh && mfs_node_migration(c->mesh, &moved, &members, &keyed, &met))
        outf(o, "migrating %d %u %u %u\n", moved, members, keyed, met);
    conflicts_reply(c, o);
    if (c->mesh)
        mfs_node_report(c->mesh, out_line, o);
    struct mfs_control_job jobs[MFS_CONTROL_JOBS_MAX];
    char http[sizeof c->http];
    pthread_mutex_lock(&c->jobs_mu);
    memcpy(jobs, c->jobs, sizeof jobs);
    memcpy(http, c->http, sizeof http);
    pthread_mutex_unlock(&c->jobs_mu);
    if (http[0])
        outf(o, "http %s\n", http);
    int64_t now = mono_ms();
    for (size_t i = 0; i < MFS_CONTROL_JOBS_MAX; i++) {
        if (!jobs[i].used)
            continue;
        char f[MFS_STATUS_LINE_MAX];
        mfs_status_syncjob sj = {
            .seq = jobs[i].seq,
            .have = jobs[i].have,
            .want = jobs[i].want,
            .elapsed_ms = (uint64_t)(now - jobs[i].start_ms),
            .timeout_ms = jobs[i].timeout_ms,
        };
        mfs_status_syncjob_format(&sj, f, sizeof f);
        outf(o, "sync_job %s\n", f);
    }
    outf(o, "ok\n");
}

void mfs_control_set_http(mfs_control *c, const char *addr)
{
    pthread_mutex_lock(&c->jobs_mu);
    snprintf(c->http, sizeof c->http, "%s", addr);
    pthread_mutex_unlock(&c->jobs_mu);
}

int mfs_control_stat(mfs_control *c, mfs_kv *kv)
{
    char *text = NULL;
    size_t len = 0;
    memset(kv, 0, sizeof *kv);
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return -ENOMEM;
    out_buf o = {.fd = -1, .mem = mem};
    reply_stat(c, &o);
    out_flush(&o);
    int r = fclose(mem) == 0 && !o.err ? 0 : -ENOMEM;
    int last = 0;
    for (char *line = text, *nl; r == 0 && line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        if (strcmp(line, "ok") == 0) {
            last = 1;
            break;
        }
        if (strncmp(line, "error ", 6) == 0) {
            long e = strtol(line + 6, NULL, 10);
            r = e > 0 ? -(int)e : -EIO;
            break;
        }
        char *sp = strchr(line, ' ');
        if (sp)
            *sp++ = '\0';
        r = mfs_kv_add(kv, line, sp ? sp : "");
    }
    free(text);
    if (r == 0 && !last)
        r = -EIO;
    if (r < 0)
        mfs_kv_free(kv);
    return r;
}

/* remove NODE: the node leaves the mesh for good */
static void reply_remove(mfs_control *c, out_buf *o, const char *arg)
{
    char *end = NULL;
    errno = 0;
    unsigned long long node = arg ? strtoull(arg, &end, 16) : 0;
    if (!arg || errno || end == arg || *end || !node) {
        outf(o, "error %d bad node id (16 hex digits, see meshfs members)\n",
             EINVAL);
        return;
    }
    int r = mfs_store_member_remove(c->store, node);
    if (r == -EINVAL)
        outf(o, "error %d cannot remove this node itself\n", EINVAL);
    else if (r == -EALREADY)
        outf(o, "error %d %016llx was removed already\n", EALREADY, node);
    else if (r < 0)
        outf(o, "error %d cannot remove %016llx: %s\n", -r, node, strerror(-r));
    else {
        mfs_log(LOG_NOTICE, "control: node %016llx removed from the mesh",
                node);
        if (c->mesh) /* cut off here at once; elsewhere as it replicates */
            mfs_node_ident_removed(c->mesh, node);
        outf(o, "ok\n");
    }
}

/* migrate: this node of a mesh-key mesh gets a key of its own and the
 * mesh starts moving to per-node keys (docs/WIRE.md "Moving a mesh") */
static void reply_migrate(mfs_control *c, out_buf *o)
{
    char err[256] = "this mount has no mesh";
    int r = c->mesh ? mfs_node_migrate(c->mesh, err, sizeof err) : -ENOTSUP;
    if (r < 0) {
        outf(o, "error %d %s\n", -r, err);
        return;
    }
    mfs_log(LOG_NOTICE, "control: this node has a key of its own now; the "
                        "mesh moves to per-node keys once every member has");
    outf(o, "ok\n");
}

/* ---- the trash ---- */

/* item INODE VERSION CAUSE SIZE DELETED HAVE PATH (ids and stamps in hex:
 * node:seq, hlc.node); the path last, it may hold blanks. */
static int trash_line(void *arg, const mfs_trash_item *it)
{
    out_buf *o = arg;
    outf(o,
         "item %016" PRIx64 ":%" PRIx64 " %" PRIx64 ".%016" PRIx64 " %" PRIx64
         ".%016" PRIx64 " %" PRIu64 " %d %d %s\n",
         it->inode.node, it->inode.seq, it->version.hlc, it->version.node,
         it->cause.hlc, it->cause.node, it->size, it->deleted, it->have,
         it->path);
    return 0;
}

static void reply_trash(mfs_control *c, out_buf *o)
{
    int r = mfs_store_trash_list(c->store, trash_line, o);
    if (r < 0)
        outf(o, "error %d cannot read the trash: %s\n", -r, strerror(-r));
    else
        outf(o, "ok\n");
}

/* The directory ino of mount-relative path's parent, and its last name. */
static int resolve_parent(mfs_store *s, const char *path, uint64_t *dir,
                          const char **name)
{
    char buf[4096];
    if (path[0] != '/' || strlen(path) >= sizeof buf)
        return -EINVAL;
    snprintf(buf, sizeof buf, "%s", path);
    char *last = strrchr(buf, '/');
    *name = path + (last - buf) + 1;
    if (!**name)
        return -EINVAL;
    *last = '\0';
    uint64_t ino = MFS_ROOT_INO;
    char *save = NULL;
    for (char *t = strtok_r(buf, "/", &save); t;
         t = strtok_r(NULL, "/", &save)) {
        mfs_attr a;
        int r = mfs_store_lookup(s, ino, t, &a);
        if (r)
            return r;
        if (!S_ISDIR(a.mode))
            return -ENOTDIR;
        ino = a.ino;
    }
    *dir = ino;
    return 0;
}

/* restore INODE VERSION DESTPATH */
static void reply_restore(mfs_control *c, out_buf *o, const char *arg)
{
    unsigned long long in_node, in_seq, v_hlc, v_node;
    int pos = 0;
    if (!arg ||
        sscanf(arg, "%llx:%llx %llx.%llx %n", &in_node, &in_seq, &v_hlc,
               &v_node, &pos) != 4 ||
        !arg[pos]) {
        outf(o, "error %d usage: restore INODE VERSION PATH\n", EINVAL);
        return;
    }
    const char *dest = arg + pos;
    uint64_t dir = 0;
    const char *name;
    int r = resolve_parent(c->store, dest, &dir, &name);
    if (r < 0) {
        outf(o, "error %d cannot use %s: %s\n", -r, dest, strerror(-r));
        return;
    }
    mfs_id inode = {in_node, in_seq};
    mfs_stamp ver = {v_hlc, v_node};
    mfs_attr a;
    uint64_t absent = 0;
    r = mfs_store_restore(c->store, inode, ver, dir, name, &a, &absent);
    if (r < 0) {
        const char *why = r == -EEXIST   ? "another file has that name"
                          : r == -EBUSY  ? "the file is open with unpublished "
                                           "writes; close it first"
                          : r == -ENOENT ? "it is no longer in the trash"
                                         : strerror(-r);
        outf(o, "error %d cannot restore to %s: %s\n", -r, dest, why);
        return;
    }
    if (c->fs) {
        /* a change the kernel did not make: drop what it caches */
        mfs_fs_change_cb(c->fs, MFS_CHANGE_INODE, a.ino, NULL);
        mfs_fs_change_cb(c->fs, MFS_CHANGE_ENTRY, dir, name);
    }
    mfs_log(LOG_NOTICE, "control: restored %s from the trash", dest);
    outf(o, "ino %" PRIu64 "\n", a.ino);
    outf(o, "size %" PRIu64 "\n", a.size);
    outf(o, "absent %" PRIu64 "\n", absent);
    outf(o, "ok\n");
}

static void reply_file(mfs_control *c, out_buf *o, const char *arg)
{
    char *end = NULL;
    errno = 0;
    unsigned long long ino = arg ? strtoull(arg, &end, 10) : 0;
    if (!arg || errno || end == arg || *end || ino == 0) {
        outf(o, "error %d bad inode number\n", EINVAL);
        return;
    }
    mfs_file_info fi;
    int r = mfs_store_file_info(c->store, ino, &fi, NULL, 0);
    uint8_t *hashes = NULL;
    if (r == 0 && fi.nchunks) {
        hashes = malloc((size_t)fi.nchunks * MFS_HASH_LEN);
        if (!hashes)
            r = -ENOMEM;
        else
            r = mfs_store_file_info(c->store, ino, &fi, hashes, fi.nchunks);
    }
    if (r < 0) {
        outf(o, "error %d inode %llu: %s\n", -r, ino, strerror(-r));
        free(hashes);
        return;
    }
    outf(o, "ino %" PRIu64 "\n", fi.ino);
    outf(o, "id %016" PRIx64 ":%" PRIu64 "\n", fi.id.node, fi.id.seq);
    outf(o, "version_hlc %" PRIu64 "\n", fi.version.hlc);
    outf(o, "version_node %016" PRIx64 "\n", fi.version.node);
    outf(o, "size %" PRIu64 "\n", fi.size);
    outf(o, "nchunks %" PRIu32 "\n", fi.nchunks);
    outf(o, "heads %" PRIu32 "\n", fi.heads);
    outf(o, "dirty %d\n", fi.dirty);
    if (c->mesh)
        mfs_node_file_report(c->mesh, fi.version, out_line, o);
    for (uint32_t i = 0; hashes && i < fi.nchunks; i++) {
        char hex[MFS_HASH_LEN * 2 + 1];
        for (int k = 0; k < MFS_HASH_LEN; k++)
            snprintf(hex + 2 * k, 3, "%02x",
                     hashes[(size_t)i * MFS_HASH_LEN + (size_t)k]);
        outf(o, "chunk %s\n", hex);
    }
    free(hashes);
    outf(o, "ok\n");
}

/* ---- sync: a barrier for the mesh (`meshfs sync`) ---- */

#define SYNC_JOBS_MAX MFS_CONTROL_JOBS_MAX
#define SYNC_MEMBERS_MAX 256
#define SYNC_POLL_MS 20      /* how often the members' acks are read */
#define SYNC_ASK_MS 1000     /* how often they are asked again */
#define SYNC_PROGRESS_MS 200 /* the most often progress is sent */
#define SYNC_SEND_TIMEOUT_S 2
#define SYNC_TIMEOUT_MAX_MS 86400000u /* what a request may ask for */

/* The sync jobs running, owned by the server thread (server_main's
 * stack): it waits for running to reach 0 before it returns, so no job
 * outlives mfs_control_stop (nor the node it reads). */
typedef struct sync_jobs {
    pthread_mutex_t mu;
    pthread_cond_t done;
    unsigned running; /* protected by mu */
} sync_jobs;

typedef struct sync_job {
    mfs_control *c;
    sync_jobs *jobs;
    int fd;         /* the client's connection, owned by the job */
    unsigned peers; /* 0: every live member */
    uint32_t timeout_ms;
    struct mfs_control_job *slot; /* shown in the stat reply, or NULL */
} sync_job;

void mfs_sync_progress_format(const mfs_sync_progress *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%u %u %" PRIu64, p->have, p->want, p->seq);
}

/* 1 if a decoded line ended at fields + end (more fields may follow). */
static int fields_end(const char *fields, int end)
{
    return end > 0 && (fields[end] == '\0' || fields[end] == ' ');
}

int mfs_sync_progress_parse(const char *fields, mfs_sync_progress *out)
{
    unsigned long long seq;
    int end = 0;
    memset(out, 0, sizeof *out);
    if (sscanf(fields, "%u %u %llu%n", &out->have, &out->want, &seq, &end) !=
            3 ||
        !fields_end(fields, end)) {
        memset(out, 0, sizeof *out);
        return -EINVAL;
    }
    out->seq = seq;
    return 0;
}

void mfs_sync_held_format(const mfs_node_held *h, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016" PRIx64 " %" PRIu64 " %d", h->peer, h->held,
             h->alive ? 1 : 0);
}

int mfs_sync_held_parse(const char *fields, mfs_node_held *out)
{
    unsigned long long peer, held;
    int alive, end = 0;
    memset(out, 0, sizeof *out);
    if (sscanf(fields, "%16llx %llu %d%n", &peer, &held, &alive, &end) != 3 ||
        !fields_end(fields, end))
        return -EINVAL;
    out->peer = peer;
    out->held = held;
    out->alive = alive != 0;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How far the members are: p->have of p->want hold p->seq. With peers,
 * any peers members (alive or not: what they hold durably stays held);
 * else every live member, and at least one member at all. 1 when met. */
static int sync_count(const mfs_node_held *h, size_t n, unsigned peers,
                      mfs_sync_progress *p)
{
    unsigned held = 0, alive = 0, alive_held = 0;
    for (size_t i = 0; i < n; i++) {
        int has = h[i].held >= p->seq;
        held += (unsigned)has;
        alive += h[i].alive != 0;
        alive_held += (unsigned)(has && h[i].alive);
    }
    if (peers) {
        p->have = held;
        p->want = peers;
    } else if (alive) {
        p->have = alive_held;
        p->want = alive;
    } else { /* no member alive: one that holds it will do */
        p->have = held ? 1 : 0;
        p->want = 1;
    }
    return p->have >= p->want;
}

/* Sends a "held" line per member, then the "progress" line that ends
 * the group (a client shows the group when the progress line comes). */
static void sync_send_progress(out_buf *o, const mfs_sync_progress *p,
                               const mfs_node_held *h, size_t n)
{
    char f[128];
    for (size_t i = 0; i < n; i++) {
        mfs_sync_held_format(&h[i], f, sizeof f);
        outf(o, "held %s\n", f);
    }
    mfs_sync_progress_format(p, f, sizeof f);
    outf(o, "progress %s\n", f);
    out_flush(o);
}

/* The "error ETIMEDOUT" line: which members lack what. Waiting for every
 * live member, one that is down is not missing (unless none is alive). */
static void sync_send_timeout(out_buf *o, const sync_job *j,
                              const mfs_sync_progress *p,
                              const mfs_node_held *h, size_t n)
{
    char miss[768] = "";
    size_t len = 0, listed = 0, more = 0, alive = 0;
    for (size_t i = 0; i < n; i++)
        alive += h[i].alive != 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].held >= p->seq || (!j->peers && alive && !h[i].alive))
            continue;
        if (listed >= 6) {
            more++;
            continue;
        }
        char held[48];
        if (h[i].held)
            snprintf(held, sizeof held, "holds up to op %" PRIu64, h[i].held);
        else
            snprintf(held, sizeof held, "holds none of them");
        int k = snprintf(miss + len, sizeof miss - len,
                         "%s%016" PRIx64 " (%s, %s)", listed ? ", " : "",
                         h[i].peer, h[i].alive ? "alive" : "down", held);
        if (k < 0 || (size_t)k >= sizeof miss - len)
            break;
        len += (size_t)k;
        listed++;
    }
    if (more)
        snprintf(miss + len, sizeof miss - len, " and %zu more", more);
    outf(o,
         "error %d timed out after %.1f s: %s%u of %u member%s hold this "
         "node's changes up to op %" PRIu64 "; missing: %s\n",
         ETIMEDOUT, (double)j->timeout_ms / 1000.0,
         !j->peers && !alive ? "no member is alive; " : "", p->have, p->want,
         p->want == 1 ? "" : "s", p->seq, miss[0] ? miss : "?");
}

/* The client hung up (or broke the connection): nobody waits any more. */
static int client_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char b;
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLHUP | POLLERR))
        return 1;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Whether the barrier can be waited for at all; else answers (no other
 * member: met at once; fewer members than asked for: never met). */
static int sync_possible(out_buf *o, const sync_job *j, size_t n)
{
    if (n == 0 && !j->peers) {
        outf(o, "note no other member in the mesh: nothing to wait for\n");
        outf(o, "ok\n");
        return 0;
    }
    if (j->peers > n) {
        outf(o,
             "error %d cannot wait for %u member%s: the mesh has %zu other "
             "member%s\n",
             ERANGE, j->peers, j->peers == 1 ? "" : "s", n, n == 1 ? "" : "s");
        return 0;
    }
    return 1;
}

/* A sync job as the stat reply shows it: a free slot of c->jobs (NULL
 * if none: it runs unseen), updated as its count changes, freed when it
 * ends. */
static struct mfs_control_job *job_enter(mfs_control *c, uint64_t seq,
                                         int64_t now, uint32_t timeout_ms)
{
    struct mfs_control_job *slot = NULL;
    pthread_mutex_lock(&c->jobs_mu);
    for (size_t i = 0; i < MFS_CONTROL_JOBS_MAX && !slot; i++)
        if (!c->jobs[i].used) {
            slot = &c->jobs[i];
            *slot = (struct mfs_control_job){.used = 1,
                                             .seq = seq,
                                             .start_ms = now,
                                             .timeout_ms = timeout_ms};
        }
    pthread_mutex_unlock(&c->jobs_mu);
    return slot;
}

static void job_update(mfs_control *c, struct mfs_control_job *slot,
                       const mfs_sync_progress *p)
{
    if (!slot)
        return;
    pthread_mutex_lock(&c->jobs_mu);
    slot->have = p->have;
    slot->want = p->want;
    pthread_mutex_unlock(&c->jobs_mu);
}

static void job_exit(mfs_control *c, struct mfs_control_job *slot)
{
    if (!slot)
        return;
    pthread_mutex_lock(&c->jobs_mu);
    slot->used = 0;
    pthread_mutex_unlock(&c->jobs_mu);
}

/* Asks the members for acks and waits (polling) until j's barrier is met,
 * the timeout passes, the client hangs up or the server stops. */
static void sync_run(sync_job *j, out_buf *o)
{
    mfs_node *m = j->c->mesh;
    mfs_node_held h[SYNC_MEMBERS_MAX];
    mfs_sync_progress p = {0}, sent = {0};
    int r = mfs_node_own_seq(m, &p.seq);
    if (r < 0) {
        outf(o, "error %d cannot read this node's last change: %s\n", -r,
             strerror(-r));
        return;
    }
    size_t n = mfs_node_acks_held(m, p.seq, h, SYNC_MEMBERS_MAX);
    if (!sync_possible(o, j, n))
        return;
    mfs_node_acks_ask(m, p.seq);
    int64_t now = mono_ms(), sent_at = 0, asked_at = now;
    j->slot = job_enter(j->c, p.seq, now, j->timeout_ms);
    int64_t deadline = now + j->timeout_ms;
    size_t sent_n = 0;
    int sent_any = 0;
    for (;;) {
        n = mfs_node_acks_held(m, p.seq, h, SYNC_MEMBERS_MAX);
        int met = sync_count(h, n, j->peers, &p);
        job_update(j->c, j->slot, &p);
        int changed = !sent_any || p.have != sent.have || p.want != sent.want ||
                      n != sent_n;
        if (met ||
            (changed && (!sent_any || now - sent_at >= SYNC_PROGRESS_MS))) {
            sync_send_progress(o, &p, h, n);
            sent = p;
            sent_n = n;
            sent_at = now;
            sent_any = 1;
        }
        if (met) {
            outf(o, "ok\n");
            return;
        }
        if (o->err || client_gone(o->fd))
            return; /* nobody to answer */
        if (__atomic_load_n(&j->c->stop, __ATOMIC_ACQUIRE)) {
            outf(o, "error %d the daemon is shutting down\n", ESHUTDOWN);
            return;
        }
        if (now >= deadline) {
            sync_send_timeout(o, j, &p, h, n);
            return;
        }
        if (now - asked_at >= SYNC_ASK_MS) { /* an ask or a HELD was lost */
            mfs_node_acks_ask(m, p.seq);
            asked_at = now;
        }
        struct timespec ts = {0, SYNC_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
        now = mono_ms();
    }
}

static void jobs_leave(sync_jobs *jobs)
{
    pthread_mutex_lock(&jobs->mu);
    assert(jobs->running > 0);
    jobs->running--;
    pthread_cond_broadcast(&jobs->done);
    pthread_mutex_unlock(&jobs->mu);
}

static void *sync_main(void *arg)
{
    sync_job *j = arg;
    pthread_setname_np(pthread_self(), "mfs-sync");
    mfs_fs_signals_block();
    /* a client that stops reading ends the job soon, not after 5 s */
    struct timeval tv = {.tv_sec = SYNC_SEND_TIMEOUT_S};
    setsockopt(j->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    out_buf o = {.fd = j->fd};
    sync_run(j, &o);
    job_exit(j->c, j->slot);
    out_flush(&o);
    close(j->fd);
    jobs_leave(j->jobs);
    free(j);
    return NULL;
}

/* sync PEERS TIMEOUT_MS: hands fd to a job thread. 1 if it did (the job
 * owns fd then), else 0 with the error in o. */
static int start_sync(mfs_control *c, sync_jobs *jobs, out_buf *o,
                      const char *arg)
{
    unsigned peers, ms;
    int end = 0;
    if (!arg || sscanf(arg, "%u %u%n", &peers, &ms, &end) != 2 || arg[end] ||
        peers > SYNC_MEMBERS_MAX || ms < 1 || ms > SYNC_TIMEOUT_MAX_MS) {
        outf(o, "error %d usage: sync PEERS TIMEOUT_MS\n", EINVAL);
        return 0;
    }
    if (!c->mesh) {
        outf(o, "error %d this daemon runs without the mesh\n", ENOTSUP);
        return 0;
    }
    sync_job *j = malloc(sizeof *j);
    if (!j) {
        outf(o, "error %d out of memory\n", ENOMEM);
        return 0;
    }
    *j = (sync_job){.c = c,
                    .jobs = jobs,
                    .fd = o->fd,
                    .peers = peers,
                    .timeout_ms = ms,
                    .slot = NULL};
    pthread_mutex_lock(&jobs->mu);
    int busy = jobs->running >= SYNC_JOBS_MAX;
    if (!busy)
        jobs->running++;
    pthread_mutex_unlock(&jobs->mu);
    pthread_t t;
    pthread_attr_t at;
    int started = 0;
    if (!busy && pthread_attr_init(&at) == 0) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &at, sync_main, j) == 0;
        pthread_attr_destroy(&at);
        if (!started)
            jobs_leave(jobs);
    }
    if (started)
        return 1;
    free(j);
    outf(o, "error %d %s\n", EBUSY,
         busy ? "too many syncs are waiting already" : "cannot start a thread");
    return 0;
}

/* Answers one request on fd. 1 if a job took fd over, else 0 (the caller
 * closes it). */
static int handle(mfs_control *c, sync_jobs *jobs, int fd)
{
    char req[4608]; /* a request with a path */
    size_t len = 0;
    out_buf o = {.fd = fd};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    struct ucred cr;
    socklen_t crlen = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 ||
        (cr.uid != 0 && cr.uid != geteuid())) {
        outf(&o, "error %d permission denied\n", EACCES);
        out_flush(&o);
        return 0;
    }
    while (len < sizeof req - 1) {
        ssize_t n = recv(fd, req + len, sizeof req - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(req, '\n', len))
            break;
    }
    req[len] = '\0';
    char *nl = strchr(req, '\n');
    if (!nl) {
        outf(&o, "error %d request is not one line\n", EINVAL);
        out_flush(&o);
        return 0;
    }
    *nl = '\0';
    char *arg = strchr(req, ' ');
    if (arg)
        *arg++ = '\0';
    if (strcmp(req, "hello") == 0) {
        reply_hello(c, &o);
    } else if (strcmp(req, "stat") == 0) {
        /* "stat watch" (`meshfs top`): someone watches, so liveness
         * shows within seconds */
        if (arg && strcmp(arg, "watch") == 0 && c->mesh)
            mfs_node_watch(c->mesh, MFS_NODE_WATCH_MS);
        reply_stat(c, &o);
    } else if (strcmp(req, "file") == 0) {
        reply_file(c, &o, arg);
    } else if (strcmp(req, "remove") == 0) {
        reply_remove(c, &o, arg);
    } else if (strcmp(req, "migrate") == 0) {
        reply_migrate(c, &o);
    } else if (strcmp(req, "trash") == 0) {
        reply_trash(c, &o);
    } else if (strcmp(req, "restore") == 0) {
        reply_restore(c, &o, arg);
    } else if (strcmp(req, "sync") == 0) {
        if (start_sync(c, jobs, &o, arg))
            return 1;
    } else if (strcmp(req, "flush") == 0) {
        int r = c->fs ? mfs_fs_flush_all(c->fs) : 0;
        if (r < 0)
            outf(&o, "error %d publish/fsync failed: %s\n", -r, strerror(-r));
        else
            outf(&o, "ok\n");
    } else if (strcmp(req, "stop") == 0) {
        /* end the session loop as SIGTERM does: publish, fsync, unmount
         * (lazily) and exit. For `meshfs umount` when the kernel keeps the
         * file system alive after our unmount (a copy of the mount in
         * another mount namespace). */
        if (c->fs && c->mounted_here &&
            !c->mounted_here(c->mountpoint, c->store_dir))
            mfs_fs_forget_mount(c->fs); /* gone here: never unmount again */
        outf(&o, "ok\n");
        out_flush(&o);
        mfs_log(LOG_NOTICE, "control: stop requested; shutting down");
        kill(getpid(), SIGTERM);
        return 0;
    } else {
        outf(&o, "error %d unknown request: %.64s\n", EINVAL, req);
    }
    out_flush(&o);
    return 0;
}

static void *server_main(void *arg)
{
    mfs_control *c = arg;
    sync_jobs jobs = {.running = 0};
    pthread_setname_np(pthread_self(), "mfs-control"); /* top, perf */
    mfs_fs_signals_block();
    pthread_mutex_init(&jobs.mu, NULL);
    pthread_cond_init(&jobs.done, NULL);
    for (;;) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
                break;
            mfs_log(LOG_ERR,
                    "control: accept on %s/%s failed: %s; the "
                    "control socket stops answering",
                    c->store_dir, MFS_CONTROL_SOCK, strerror(errno));
            break;
        }
        if (!handle(c, &jobs, fd))
            close(fd);
    }
    /* the jobs see c->stop within SYNC_POLL_MS (or a send timeout) */
    pthread_mutex_lock(&jobs.mu);
    while (jobs.running)
        pthread_cond_wait(&jobs.done, &jobs.mu);
    pthread_mutex_unlock(&jobs.mu);
    pthread_mutex_destroy(&jobs.mu);
    pthread_cond_destroy(&jobs.done);
    return NULL;
}

int mfs_control_start(mfs_control *c, mfs_store *s, struct mfs_fs *fs,
                      const char *store_dir, const char *mountpoint)
{
    struct sockaddr_un sa;
    int r;
    /* the fields the caller sets */
    mfs_node *mesh = c->mesh;
    int (*mounted_here)(const char *, const char *) = c->mounted_here;
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->jobs_mu, NULL);
    c->mesh = mesh;
    c->mounted_here = mounted_here;
    c->fd = -1;
    c->store = s;
    c->fs = fs;
    snprintf(c->store_dir, sizeof c->store_dir, "%s", store_dir);
    snprintf(c->mountpoint, sizeof c->mountpoint, "%s", mountpoint);
    r = mfs_control_sock_addr(store_dir, &sa, &c->dirfd);
    if (r < 0)
        return r;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        r = -errno;
        goto fail;
    }
    unlink(sa.sun_path); /* stale, from a killed daemon: we hold the lock */
    mode_t old = umask(0077);
    r = bind(c->fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (r < 0) {
        r = -errno;
        goto fail;
    }
    chmod(sa.sun_path, 0600);
    if (listen(c->fd, 16) < 0) {
        r = -errno;
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, server_main, c) != 0) {
        r = -EAGAIN;
        goto fail;
    }
    c->started = 1;
    return 0;
fail:
    if (c->fd >= 0)
        close(c->fd);
    if (c->dirfd >= 0)
        close(c->dirfd);
    c->fd = c->dirfd = -1;
    return r;
}

void mfs_control_stop(mfs_control *c)
{
    if (!c->started)
        return;
    struct sockaddr_un sa;
    int dfd;
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
    shutdown(c->fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(c->thread, NULL);
    close(c->fd);
    if (mfs_control_sock_addr(c->store_dir, &sa, &dfd) == 0) {
        unlink(sa.sun_path);
        if (dfd >= 0)
            close(dfd);
    }
    if (c->dirfd >= 0)
        close(c->dirfd);
    c->fd = c->dirfd = -1;
    c->started = 0;
}
