/*
 * pc_log.h - the record layout of the power-cut log, in one place.
 *
 * pc_preload.so appends one record per I/O call on the watched data.mdb
 * (and per note the workload adds); pc_check reads them back. Both run on
 * the same machine, so the header is in native byte order; the magic in
 * every header catches a torn or foreign log.
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
 *   PC_REC_OPEN        data.mdb opened; off = its size then; flags
 *                      PC_FLAG_TRUNCATED if the open truncated it.
 *   PC_REC_NOTE        text from the workload ("OP ...", "ACK ..."); it
 *                      states nothing about the disk.
 *   PC_REC_UNMODELLED  text naming a call that changed data.mdb in a way the
 *                      crash model does not cover (a writable shared mapping,
 *                      a fallocate that punches or grows, ...). The checker
 *                      refuses such a log.
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

enum {
    PC_FLAG_DSYNC = 1u << 0,
    PC_FLAG_TRUNCATED = 1u << 1,
};

typedef struct pc_rec {
    uint32_t magic; /* PC_LOG_MAGIC */
    uint16_t type;  /* enum pc_rec_type */
    uint16_t flags; /* PC_FLAG_* */
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
