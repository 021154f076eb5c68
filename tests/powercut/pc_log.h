/*
 * pc_log.h - the record layout of the power-cut log, in one place.
 *
 * pc_preload.so appends one record per I/O call on the watched files of the
 * store directory (and per note the workload adds); pc_check reads them
 * back. Both run on the same machine, so the header is in native byte
 * order; the magic in every header catches a torn or foreign log.
 *
 * The watched files (enum pc_file): STORE/data.mdb (LMDB) and
 * STORE/intent.log (the store's intent log). Every record that concerns a
 * file names it in the upper byte of `flags` (PC_REC_FILE); NOTE records
 * carry 0 there, and so does every record of a log from before intent.log
 * was watched (all of it is data.mdb's). A call that syncs both files
 * (sync, syncfs) is one record per file, back to back.
 *
 * A record is a pc_rec header followed by `len` payload bytes:
 *   PC_REC_WRITE       off = file offset; payload = the bytes that landed
 *                      (only the count the call returned). flags
 *                      PC_FLAG_DSYNC: written through an O_SYNC/O_DSYNC fd,
 *                      so the call returned with the range on disk.
 *   PC_REC_SYNC        fsync/fdatasync/syncfs/sync/msync(MS_SYNC): the whole
 *                      file is on disk. No payload.
 *   PC_REC_SYNC_RANGE  sync_file_range(WRITE|WAIT_AFTER): bytes
 *                      [off, off + n) are on disk; payload = n as a native
 *                      uint64_t (8 bytes).
 *   PC_REC_TRUNC       ftruncate: off = new size. No payload.
 *   PC_REC_OPEN        the file opened; off = its size then; flags
 *                      PC_FLAG_TRUNCATED if the open truncated it.
 *   PC_REC_NOTE        text from the workload ("OP ...", "ACK ..."); it
 *                      states nothing about the disk.
 *   PC_REC_UNMODELLED  text naming a call that changed the file in a way
 *                      the crash model does not cover (a writable shared
 *                      mapping, a fallocate that punches or grows, ...).
 *                      The checker refuses such a log.
 */
#ifndef MFS_PC_LOG_H
#define MFS_PC_LOG_H

#include <stddef.h>
#include <stdint.h>

#define PC_LOG_MAGIC 0x70634c67u /* "pcLg" */
#define PC_NOTE_MAX 4096         /* longest NOTE / UNMODELLED text */

enum pc_rec_type {
    PC_REC_WRITE = 1,
    PC_REC_SYNC = 2,
    PC_REC_SYNC_RANGE = 3,
    PC_REC_TRUNC = 4,
    PC_REC_OPEN = 5,
    PC_REC_NOTE = 6,
    PC_REC_UNMODELLED = 7,
};

/* The low byte of pc_rec.flags. */
enum {
    PC_FLAG_DSYNC = 1u << 0,
    PC_FLAG_TRUNCATED = 1u << 1,
};

/* The upper byte of pc_rec.flags: which file a record concerns. */
enum pc_file {
    PC_FILE_DATA = 0, /* STORE/data.mdb */
    PC_FILE_WAL = 1,  /* STORE/intent.log */
    PC_NFILES = 2,
};

#define PC_FILE_SHIFT 8
#define PC_FILE_MASK 0xff00u
#define PC_REC_FLAGS(file, flags)                                              \
    ((uint16_t)(((unsigned)(file) << PC_FILE_SHIFT) | (flags)))
#define PC_REC_FILE(flags) (((unsigned)(flags)&PC_FILE_MASK) >> PC_FILE_SHIFT)

_Static_assert(PC_NFILES <= 256, "a file index fits the upper byte");
_Static_assert(((PC_FLAG_DSYNC | PC_FLAG_TRUNCATED) & PC_FILE_MASK) == 0,
               "the PC_FLAG_* bits stay in the low byte");

/* The file's name in the store directory; NULL for an index out of range. */
static inline const char *pc_file_name(unsigned file)
{
    return file == PC_FILE_DATA  ? "data.mdb"
           : file == PC_FILE_WAL ? "intent.log"
                                 : NULL;
}

typedef struct pc_rec {
    uint32_t magic; /* PC_LOG_MAGIC */
    uint16_t type;  /* enum pc_rec_type */
    uint16_t flags; /* PC_FLAG_* | file index << PC_FILE_SHIFT */
    uint64_t off;
    uint64_t len; /* payload bytes that follow */
} pc_rec;

_Static_assert(sizeof(pc_rec) == 24, "pc_rec is 24 bytes, no padding");
_Static_assert(offsetof(pc_rec, off) == 8, "pc_rec.off at byte 8");
_Static_assert(offsetof(pc_rec, len) == 16, "pc_rec.len at byte 16");

/* The function pc_preload.so exports for the workload, found with
 * dlsym(RTLD_DEFAULT, PC_NOTE_SYMBOL): appends a NOTE record (text without
 * its NUL, at most PC_NOTE_MAX bytes) in order with the I/O records.
 * Returns 0, or -1 when the log is not open (the shim is inert). */
#define PC_NOTE_SYMBOL "pc_note"
typedef int (*pc_note_fn)(const char *text);

#endif
