/*
 * node.h - one node's mesh side, between cli/ and the rest: the transport
 * (sync/driver) and the replication engine (sync/repl) on one store, the
 * thread that runs the engine, the node's files in the store directory
 * (peers, listen, epoch, rejoin) and its report for `meshfs stat`.
 *
 * mesh.c    the engine on a transport (transport.h), its thread, the
 *           report: the same code in the daemon and in the simulator
 * uvnet.c   the daemon's transport (sync/driver, libuv): mfs_node_start
 * simnet.c  the simulator's transport (tests only: simnet.h)
 * status.c  the control protocol's mesh lines, the "in sync" rule
 * control.c the daemon's control socket (the client is in cli/)
 * files.c   the node's small files in the store directory
 * rejoin.c  the rejoin thread (a store that replaced an old one)
 */
#ifndef MFS_NODE_H
#define MFS_NODE_H

#include "core.h"
#include "repl.h"
#include "store.h"
#include "transport.h"
#include "invite.h"

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates path (mode 0600, never replacing a file), writes the formatted
 * text and fsyncs it. 0 or -errno (the file is then removed). */
int mfs_write_new_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Replaces path whole (a temporary file, fsync'd, renamed over it; mode
 * 0600) with the formatted text. 0 or -errno (path is then unchanged). */
int mfs_write_file_replace(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 1 if dir is missing or empty, 0 if it holds something, -errno. */
int mfs_node_dir_empty(const char *dir);
/* mkdir -p with mode for every created level. 0 or -errno. */
int mfs_node_mkdirs(const char *dir, mode_t mode);
/* Creates a new store (and, with new_mesh, a new mesh key) in dir, which
 * must be missing or empty (-ENOTEMPTY). new_mesh as in mfs_store_config.
 * On success *out is the open store (the caller closes it); -errno. */
int mfs_node_store_create(const char *dir, int new_mesh, mfs_store **out);

/* ---- write concern (node/acks.c; DESIGN P10, docs/REPLICATION.md) ------
 * With acks = N > 0, fsync() and fdatasync() (and, with on_close, a close
 * that published a new version) return only once N other members hold the
 * change durably (their store synced it, chunks included: the HELD
 * message, sync/repl.c), or fail with EIO after the timeout. The change
 * itself stays committed here either way. */
#define MFS_ACKS_MAX 64 /* the most N can be */
#define MFS_ACKS_TIMEOUT_DEFAULT_MS 10000u
typedef struct mfs_acks_config {
    unsigned n;          /* members that must hold a change (0: off) */
    uint32_t timeout_ms; /* 0: MFS_ACKS_TIMEOUT_DEFAULT_MS */
    int wait;            /* --acks-wait: with fewer than n members alive,
                            wait for them (else fail at once) */
    int on_close;        /* -o acks-on-close */
} mfs_acks_config;

/* The node's time (node/clock.c; guarded by mu): the mesh's time against
 * its wall clock, and the correction its store stamps with. */
enum { MFS_CLOCK_UNKNOWN = 0, MFS_CLOCK_IN_STEP = 1, MFS_CLOCK_CORRECTED = 2 };
typedef struct mfs_node_clock {
    pthread_mutex_t mu;
    int state;       /* MFS_CLOCK_*: no peer measured yet, in step, ... */
    int64_t mesh_ms; /* the mesh's time minus our wall clock, last seen */
    uint64_t err_us; /* its uncertainty */
    int64_t corr_ms; /* what the store adds to its clock */
    int64_t logged_ms;
    unsigned npeers; /* live members whose clocks were measured */
    int behind;      /* our clock is behind our store's stamps */
    int remembered;  /* corr_ms is STORE/clock's, no member measured yet */
    int64_t saved_ms; /* what STORE/clock holds (once saved_set) */
    int saved_set;
    uint64_t next_us;
} mfs_node_clock;

/* The write concern of a node (node/acks.c; guarded by mu). */
#define MFS_ACKS_LAT_N 4096 /* latencies kept, for the last minute's */
typedef struct mfs_node_acks {
    mfs_acks_config cfg;
    struct mfs_fs *fs; /* attached (NULL: none) */
    pthread_mutex_t mu;
    int inited;
    uint64_t waiting, met, failed_timeout, failed_peers, failed_other;
    uint64_t log_us; /* a failure was last logged then */
    /* the last MFS_ACKS_LAT_N met waits: latency and when (monotonic us) */
    uint32_t lat_us[MFS_ACKS_LAT_N];
    uint64_t lat_at[MFS_ACKS_LAT_N];
    size_t lat_next;
} mfs_node_acks;

struct mfs_sync;
struct mfs_repl;

struct mfs_fs;
struct node_ev;
typedef struct node_evq {
    struct node_ev *head, *tail;
} node_evq;

/* A store that replaces an old one (`meshfs join` on it): STORE/rejoin
 * names the old store; node/rejoin.c keeps what only it had. */
#define MFS_REJOIN_FILE "rejoin"
#define MFS_REJOINED_FILE "rejoined"
typedef struct mfs_rejoin {
    char old_dir[PATH_MAX];
    uint64_t old_node;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int inited, started;
    int stop; /* read by the copy without the lock (atomics) */
    char dir_name[MFS_NAME_MAX + 1]; /* in /lost+found, once chosen */
    char state[PATH_MAX + 256]; /* for `meshfs stat` (under lock) */
} mfs_rejoin;

/* The node's identity in a mesh of per-node keys (node/ident.c). */
typedef struct mfs_node_ident {
    int on;           /* STORE/node.key exists: per-node keys */
    mfs_ident key;    /* its key pair */
    uint64_t mesh_id; /* member records name it */
    int joining;      /* STORE/joining: not a member yet */
    mfs_joining join;
    uint64_t sync_us; /* when the registry was last looked at */
    uint8_t pushed_hash[32]; /* what it held then (pushed: once at all) */
    int pushed;
    /* joins admitted on the transport's thread, whose member records the
     * engine's thread writes (mu: a leaf, taken under the core's lock) */
    pthread_mutex_t mu;
    struct {
        uint64_t id;
        uint8_t pk[MFS_IDENT_PK_LEN];
    } admitted[16];
    size_t nadmitted;
    uint64_t admits, refusals;
    struct {
        uint64_t id, t_us;
    } told[8]; /* refusals logged lately: once a minute per node */
    /* moving the mesh from its mesh key (STORE/migrating; docs/WIRE.md
     * "Moving a mesh"): the mesh key (under mu: admit reads it), the
     * proof every handshake carries, since when the registry has held
     * every member's key (0: it does not), the members it has had a
     * session with, and the counts `meshfs stat` shows */
    int migrating;
    int self_keyed; /* the registry holds this node's own key */
    struct mfs_mesh_key mesh;
    uint8_t proof[MFS_JOIN_LEN];
    uint64_t complete_us;
    uint64_t forget_warned; /* unix s of the last "cannot forget" line */
    /* and of the last "cannot publish this node's invitations" line */
    uint64_t invites_warned;
    uint64_t met[256];
    size_t nmet;
    uint64_t keyed_ids[256]; /* members with a key that checks */
    size_t nkeyed;
    struct {
        int moved;
        uint32_t members, keyed, met;
    } mig; /* under mu */
} mfs_node_ident;

typedef struct mfs_node {
    mfs_node_transport net; /* what mesh.c sends through, reads time from */
    int net_up;             /* net delivers events (close it at stop) */
    struct mfs_sync *sync;  /* the libuv driver (uvnet.c; NULL otherwise) */
    struct mfs_repl *repl;
    mfs_store *store;
    struct mfs_fs *fs; /* set by mfs_rejoin_start (kernel cache drops) */
    mfs_rejoin rj;
    char store_dir[PATH_MAX];
    char listen[128];
    char *seeds[64];
    size_t nseeds;
    char *saved; /* what STORE/peers holds */
    size_t saved_len;
    uint64_t saved_us;
    /* the replication thread and the transport's events waiting for it
     * (node/mesh.c); q_mu guards the q_ fields below it */
    pthread_t q_thread;
    pthread_mutex_t q_mu;
    pthread_cond_t q_cond;
    int q_inited, q_started;
    int q_stop, q_wake;
    /* no replication thread: the transport's thread runs the engine
     * (the simulator's, which holds no lock of its own) */
    int inline_repl;
    node_evq q_urgent, q_bulk;
    uint64_t q_bytes, q_max_bytes, q_dropped;
    mfs_node_acks acks;
    mfs_node_clock clock;
    mfs_node_ident id;
} mfs_node;

/* ---- identity (ident.c) ---- */
/* At start: STORE/node.key (per-node keys on) and STORE/joining. 0, or
 * -errno with a reason in err. */
int mfs_node_ident_load(mfs_node *m, char *err, size_t errcap);
/* The engine's thread, every tick: writes the member records of joins
 * admitted since, gives the transport every member's key and takes
 * removed members' away (every 500 ms), publishes this node's open
 * invitations to the registry and clears the closed ones (as often), and
 * ends this node's own join once it holds its record. */
void mfs_node_ident_tick(mfs_node *m, uint64_t now);
/* The transport's admit callback (core.h): arg is the node. */
int mfs_node_ident_admit(void *arg, uint64_t id, const uint8_t pub[32],
                         const uint8_t *join, size_t len);
/* For a new mesh (`meshfs init`): STORE/node.key and this node's own
 * member record, signed by itself. 0 or -errno. */
int mfs_node_ident_found(const char *store_dir, mfs_store *s);
/* Forgets the secrets (at stop). */
void mfs_node_ident_free(mfs_node *m);
/* node was removed here (`meshfs remove`): the transport cuts it off now.
 * Any thread. */
void mfs_node_ident_removed(mfs_node *m, uint64_t node);
/* The transport's on_removed callback (core.h): the engine hears it as
 * member `by` refusing this node. arg is the node. */
void mfs_node_ident_told_removed(void *arg, uint64_t by);
/* `meshfs migrate` on a running node of a mesh-key mesh: makes its key
 * and member record, marks the store as moving, and starts the move. 0,
 * -EALREADY (it has a key), -errno (err says what). */
int mfs_node_migrate(mfs_node *m, char *err, size_t errcap);
/* Offline: the same on a store no daemon holds (the next mount moves). */
int mfs_node_migrate_store(const char *store_dir, mfs_store *s);
/* The move's progress: 0 not moving, else 1 and the counts. */
int mfs_node_migration(mfs_node *m, int *moved, uint32_t *members,
                       uint32_t *keyed, uint32_t *met);
/* When mfs_node_ident_tick wants to run next (UINT64_MAX: never). */
uint64_t mfs_node_ident_next(const mfs_node *m);

/* Once a second at most (the engine's thread): the mesh's time from the
 * peers' measured clocks, the store's correction from it (clock.c). */
void mfs_node_clock_tick(mfs_node *m, uint64_t now);
/* Before the engine handles a message (the engine's thread): while the
 * mesh's time is unknown, looks again now (a message comes after the
 * handshake that measured the sender's clock), so that the first op this
 * node stamps after it reached the mesh (its member announcement, say)
 * already carries the mesh's time. */
void mfs_node_clock_first(mfs_node *m, uint64_t now);
/* One clock the node knows: its offset from ours (ours: 0), the
 * uncertainty, its MFS_CLOCK_* flags (wire.h). */
typedef struct mfs_clock_cand {
    int64_t off_us;
    uint64_t err_us;
    uint8_t flags;
} mfs_clock_cand;
/* The mesh's time among c[0, n) (reordered): slow clocks (BEHIND) left
 * out while another is known, then synchronized ones (SYNCED) preferred
 * if any; of those the lower median (of two, the earlier: a clock ahead
 * stalls the others, one behind does not). NULL when n is 0. */
const mfs_clock_cand *mfs_node_clock_pick(mfs_clock_cand *c, size_t n);
/* At the node's start: a correction STORE/clock remembers that sets the
 * clock back is taken at once (clock.c). */
void mfs_node_clock_start(mfs_node *m);
/* A copy of the node's clock state. Any thread. */
void mfs_node_clock_get(mfs_node *m, mfs_node_clock *out);
/* ms as a signed duration for people: "+10 min", "-1.0 d", "+350 ms". */
void mfs_node_clock_human(int64_t ms, char *buf, size_t cap);

/* The transport's and the engine's settings a node runs with (timings:
 * node/mesh.c); the simulator tests use them too. */
void mfs_node_sync_config(mfs_sync_config *cfg);
void mfs_node_repl_config(mfs_repl_config *cfg);

/* Starts transport + replication for store s. listen NULL: STORE/listen,
 * else 0.0.0.0:7410 (any port if taken). Seeds: peers + STORE/peers.
 * On failure writes a one-line reason to err and returns -errno. */
int mfs_node_start(mfs_node *m, mfs_store *s, const char *store_dir,
                   const char *listen, const char *const *peers, size_t npeers,
                   char *err, size_t errcap);
void mfs_node_stop(mfs_node *m);

/* Starts the mesh side of store s on a transport someone else runs (the
 * simulator: node/simnet.h), with the engine running inline on the
 * transport's thread. t is copied; t->ctx must outlive the node. rc: the
 * engine's settings (NULL: mfs_node_repl_config; send and arg are the
 * node's; store_chunks must not be MFS_REPL_STORE_THREAD where runs must
 * replay); its wall clock, if any, is the node's (STORE/epoch). The
 * node's files are read and written as mfs_node_start does: listen NULL
 * means STORE/listen, else 0.0.0.0:7410 (the address the report shows; a
 * given one is remembered in STORE/listen); seeds are peers, then
 * STORE/peers, handed to t->open with the boot epoch. 0 or -errno (the
 * node is then stopped). Stop it with mfs_node_stop (a goodbye, as an
 * unmount) or mfs_node_crash. */
int mfs_node_start_on(mfs_node *m, mfs_store *s, const char *store_dir,
                      const char *listen, const char *const *peers,
                      size_t npeers, const mfs_node_transport *t,
                      const mfs_repl_config *rc);
/* As mfs_node_stop, but as a crash would: no goodbye, STORE/peers not
 * rewritten (tests). */
void mfs_node_crash(mfs_node *m);

/* The transport's thread: a message, a peer's change (transport.h). */
void mfs_node_on_msg(mfs_node *m, uint64_t from, uint8_t mtype,
                     const uint8_t *data, size_t len);
void mfs_node_on_peer(mfs_node *m, uint64_t id, int state, uint64_t epoch);
/* Inline engine only (no replication thread), on the transport's thread:
 * the engine's timers and STORE/peers; returns the next deadline
 * (absolute, the transport's clock). */
uint64_t mfs_node_tick(mfs_node *m, uint64_t now_us);
/* Writes "key value..." lines about the mesh (control protocol). */
/* Someone watches the mesh (the status page, `meshfs top`): for ms the
 * transport keeps its links lively, so a peer that goes silent shows as
 * suspect within 3 s and dead within 5 s, not half a minute (an idle
 * link's pace; core.h mfs_sync_core_watch). Each watcher's poll renews
 * it; it costs a heartbeat each way per peer every 1.25 s meanwhile. */
#define MFS_NODE_WATCH_MS 5000u
void mfs_node_watch(mfs_node *m, uint32_t ms);
void mfs_node_report(mfs_node *m, void (*line)(void *, const char *),
                     void *arg);
/* Starts the rejoin thread when STORE/rejoin exists (after the mount is
 * up: fs gets the kernel's cache drops); stop joins it. */
int mfs_rejoin_start(mfs_node *m, struct mfs_fs *fs);
void mfs_rejoin_stop(mfs_node *m);
void mfs_rejoin_report(mfs_node *m, void (*line)(void *, const char *),
                       void *arg);
/* STORE/rejoin: the old store's path and node. */
int mfs_rejoin_read(const char *store_dir, char *old, size_t cap,
                    uint64_t *node, char *name, size_t namecap);
int mfs_rejoin_write(const char *store_dir, const char *old, uint64_t node);
/* Lines saying which peers hold the op of this content version. */
void mfs_node_file_report(mfs_node *m, mfs_stamp version,
                          void (*line)(void *, const char *), void *arg);

/* Any thread: the engine's timers run soon. */
void mfs_node_wake(mfs_node *m);
/* Writes the write concern's "key value" lines (control protocol). */
void mfs_node_acks_report(mfs_node *m, void (*line)(void *, const char *),
                          void *arg);
/* Gives fs the node's write concern (fs/'s fsync and close hook) with
 * cfg; after mfs_node_start, before the mount. n = 0 leaves fs alone. */
void mfs_node_acks_attach(mfs_node *m, struct mfs_fs *fs,
                          const mfs_acks_config *cfg);
/* Before fs is unmounted: every fsync still waiting fails with EIO. */
void mfs_node_acks_detach(mfs_node *m);
/* This node's own changes so far: the sequence number of its last op in
 * the store's last commit (commits first). `meshfs sync` waits for it.
 * 0 or -errno. */
int mfs_node_own_seq(mfs_node *m, uint64_t *seq);
/* Asks every live member to make this node's ops up to seq durable and to
 * say so (a HELD message) at once (any thread). */
void mfs_node_acks_ask(mfs_node *m, uint64_t seq);
typedef struct mfs_node_held {
    uint64_t peer;
    uint64_t held; /* this node's ops it holds durably and whole: up to
                      this seq (below seq when a version up to seq still
                      waits for a chunk there) */
    int alive;
} mfs_node_held;
/* Every member this node knows (not removed, not gone for good): how far
 * it said it holds this node's ops, as seen from this node's op seq. Up
 * to max into out; the count. */
size_t mfs_node_acks_held(mfs_node *m, uint64_t seq, mfs_node_held *out,
                          size_t max);

/* ---- the daemon's control socket (node/control.c) ---------------------- */

#define MESHFS_VERSION "0.1.0"

#define MFS_CONTROL_SOCK "control.sock"

#define MFS_CONTROL_JOBS_MAX 8 /* `meshfs sync` waits at once */
typedef struct mfs_control {
    int fd;
    int dirfd;
    pthread_t thread;
    int started;
    int stop;
    mfs_store *store;
    struct mfs_fs *fs;
    mfs_node *mesh; /* NULL: no mesh (a store opened read-only) */
    /* the "stop" verb: 1 if mountpoint still shows this store here (set
     * by the caller; NULL: assume so) */
    int (*mounted_here)(const char *mountpoint, const char *store_dir);
    char store_dir[PATH_MAX];
    char mountpoint[PATH_MAX];
    /* the `meshfs sync` waits running, as "sync_job" lines of the stat
     * reply show them (guarded by jobs_mu) */
    char http[80]; /* the status page's address ("" none; set once) */
    pthread_mutex_t jobs_mu;
    struct mfs_control_job {
        int used;
        uint64_t seq;
        unsigned have, want;
        int64_t start_ms;
        uint32_t timeout_ms;
    } jobs[MFS_CONTROL_JOBS_MAX];
} mfs_control;

/* Daemon side: binds STORE/control.sock (mode 0600; a stale socket is
 * replaced: the caller holds the store lock) and answers on a thread. */
int mfs_control_start(mfs_control *c, mfs_store *s, struct mfs_fs *fs,
                      const char *store_dir, const char *mountpoint);
void mfs_control_stop(mfs_control *c);
/* Any thread: the "stat" reply as key/value pairs (the status page reads
 * it in the daemon). 0 (the caller frees kv with mfs_kv_free) or -errno. */
struct mfs_kv;
int mfs_control_stat(mfs_control *c, struct mfs_kv *kv);
/* The status page's address, for the stat reply ("http ADDR"): set once,
 * right after mfs_control_start. */
void mfs_control_set_http(mfs_control *c, const char *addr);
/* Fills a sockaddr for dir/control.sock (paths too long for sun_path go
 * through /proc/self/fd/N of an O_PATH descriptor of dir, returned in
 * *dirfd, else -1). 0 or -errno. The client (cli/control.c) uses it too. */
struct sockaddr_un;
int mfs_control_sock_addr(const char *dir, struct sockaddr_un *sa,
                          int *dirfd);

#endif
