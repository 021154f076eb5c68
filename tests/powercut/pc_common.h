/*
 * pc_common.h - what the power-cut workload and checker must agree on: the
 * notes the workload writes into the log (one struct, one codec, used by
 * both ends), the content and dump hashes, and path lookup in a store.
 */
#ifndef MFS_PC_COMMON_H
#define MFS_PC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define PC_PATH_MAX 64 /* workload paths are short: "d3/f11" */
#define PC_TOUCH_MAX 2 /* names one op may change */

enum pc_note_kind {
    PC_NOTE_OP = 1,       /* an op is about to run; it may change touched[] */
    PC_NOTE_ACK_FILE = 2, /* fsync returned: path holds size bytes, hash */
    PC_NOTE_ACK_TREE = 3, /* fsync returned: the whole dump hashes to hash */
    PC_NOTE_START = 4,    /* the workload began: seed, commit window */
    PC_NOTE_ACK_NAME = 5, /* fsync returned: path is a regular file */
    /* the store said it holds a peer's ops (mfs_store_vv_held, what the
     * write concern's HELD reports): origin's ops up to seq, and whole
     * every version of origin stamped at or below limit */
    PC_NOTE_ACK_HELD = 6,
};

/*
 * One note. An OP names what it may change: a name matches a path when it
 * equals it or is a directory above it ("d1" matches "d1/f3"). An op that
 * touches no name (publish) still invalidates the tree ACK before it.
 *   "OP <seq> <what> <ntouched> [<name>...]"
 *   "ACK FILE <path> <size> <hash hex>"
 *   "ACK NAME <path>"
 *   "ACK TREE <hash hex>"
 *   "ACK HELD <origin hex> <seq> <limit hlc hex>"
 *   "START <seed> <commit window us>"
 */
typedef struct pc_note_msg {
    int kind;
    uint64_t seq;  /* OP */
    char what[16]; /* OP: "create", "rename", ... */
    int ntouched;
    char touched[PC_TOUCH_MAX][PC_PATH_MAX];
    char path[PC_PATH_MAX]; /* ACK FILE, ACK NAME */
    uint64_t size;          /* ACK FILE */
    uint64_t hash;          /* ACK FILE, ACK TREE */
    uint64_t seed, window;  /* START */
    uint64_t origin, limit; /* ACK HELD (and seq) */
} pc_note_msg;

/* Formats m into buf (cap bytes, NUL-terminated). Returns the length, or -1
 * if it does not fit. */
int pc_note_format(char *buf, size_t cap, const pc_note_msg *m);
/* Parses len bytes of text (not NUL-terminated). Returns 0, or -1 for text
 * that is not a note of ours (the caller then refuses the log). */
int pc_note_parse(const char *text, size_t len, pc_note_msg *m);
/* Whether name (an OP's touched entry) covers path. */
int pc_name_covers(const char *name, const char *path);

/* FNV-1a 64; pass PC_HASH_INIT first, then the previous result. */
#define PC_HASH_INIT 0xcbf29ce484222325ull
uint64_t pc_hash(uint64_t h, const void *p, size_t n);

/* Resolves a relative path ("d1/f3") from the root. Returns 0 with *out
 * filled, or the store's -errno (-ENOENT, -ENOTDIR). */
int pc_path_lookup(mfs_store *s, const char *path, mfs_attr *out);
/* Reads size bytes of ino and hashes them (holes read as zeros). Returns 0
 * or -errno; -EIO if the file is shorter than size. */
int pc_file_hash(mfs_store *s, uint64_t ino, uint64_t size, uint64_t *hash);

/* The canonical dump (mfs_store_dump), one line per entry with '\n'. On
 * success *text is malloc'd (the caller frees it) and *hash covers it. */
int pc_dump(mfs_store *s, char **text, size_t *len, uint64_t *hash);

#endif
