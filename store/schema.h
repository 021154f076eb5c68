/*
 * schema.h - the store's on-disk layout in one place: for every LMDB table
 * of enum db_index (internal.h), its key and its fixed-layout record as
 * named offsets and lengths, the small helpers that build and read the
 * layouts used in more than one file, the op header's offsets (op.c reads
 * it; nobody else decodes op bytes), and compile-time checks that tie the
 * numbers together.
 *
 * Every multi-byte field is big-endian (codec.h), so that LMDB's byte
 * order is numeric order. Records written with the mfs_wbuf codec
 * (entries, moves, inodes, versions, view records) have their fixed
 * prefix here as offsets and the rest as the sequence their one codec
 * pair writes and reads (tree.c, content.c, view.c); those codecs check
 * in debug builds that they stand at these offsets (SCHEMA_WAT,
 * SCHEMA_RAT). A str16 is a u16 length and that many bytes. Changing any
 * number in this file changes the format: it needs MFS_STORE_FORMAT
 * raised and an upgrade (txn.c).
 * Included by internal.h only; never from outside store/.
 */
#ifndef MFS_STORE_SCHEMA_H
#define MFS_STORE_SCHEMA_H

#include "codec.h"
#include "store.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- field widths ---- */
#define U32_LEN 4
#define U64_LEN 8
#define ID_LEN 16    /* mfs_id: node, seq */
#define STAMP_LEN 16 /* mfs_stamp: hlc, node */
#define HASH_LEN MFS_HASH_LEN

_Static_assert(U32_LEN == sizeof(uint32_t), "u32 width");
_Static_assert(U64_LEN == sizeof(uint64_t), "u64 width");
_Static_assert(ID_LEN ==
                   sizeof(((mfs_id *)0)->node) + sizeof(((mfs_id *)0)->seq),
               "an id is its two u64 fields");
_Static_assert(STAMP_LEN == sizeof(((mfs_stamp *)0)->hlc) +
                                sizeof(((mfs_stamp *)0)->node),
               "a stamp is its two u64 fields");
_Static_assert(HASH_LEN == 32, "chunk names are BLAKE2b-256");

/* A codec that writes (w: an mfs_wbuf *) or reads (r: an mfs_rbuf *) a
 * record below stands at offset at of it: checked in debug builds only
 * (a short record being read has set r->err and is refused anyway). */
#define SCHEMA_WAT(w, at) assert((w)->err || (w)->len == (size_t)(at))
#define SCHEMA_RAT(r, at) assert((r)->err || (r)->off == (size_t)(at))
#define STR16_LEN_LEN 2 /* the u16 before a str16's bytes */

/* ---- ids and stamps: node/hlc first, so keys sort by them ---- */
static inline void id_put(uint8_t *p, mfs_id id)
{
    mfs_be64_put(p, id.node);
    mfs_be64_put(p + U64_LEN, id.seq);
}
static inline mfs_id id_get(const uint8_t *p)
{
    return (mfs_id){mfs_be64_get(p), mfs_be64_get(p + U64_LEN)};
}
static inline void stamp_put(uint8_t *p, mfs_stamp st)
{
    mfs_be64_put(p, st.hlc);
    mfs_be64_put(p + U64_LEN, st.node);
}
static inline mfs_stamp stamp_get(const uint8_t *p)
{
    return (mfs_stamp){mfs_be64_get(p), mfs_be64_get(p + U64_LEN)};
}

/* ---- keys by one id: DB_ENTRIES, DB_VENT, DB_INODES, DB_DINFO, DB_NSUB,
 * DB_NLINK, DB_CDIRS; and the id prefix of every key below that begins
 * with an id (a cursor walks "all of this id" with it) ---- */
#define ID_KEY_LEN ID_LEN

/* ---- DB_META ----
 * Keys are names ("format", "node", "hlc", ...; txn.c). Counters are one
 * u64; "format" is one u32. A floor of an origin's folded log (snapshot.c)
 * is "floor" + origin -> (seq, hlc of that op). */
#define META_FORMAT_LEN U32_LEN
#define META_U64_LEN U64_LEN
#define META_FLOOR_PREFIX "floor"
#define META_FLOOR_PREFIX_LEN 5
#define META_FLOOR_KEY_ORIGIN META_FLOOR_PREFIX_LEN
#define META_FLOOR_KEY_LEN (META_FLOOR_KEY_ORIGIN + U64_LEN)
#define META_FLOOR_SEQ 0
#define META_FLOOR_HLC (META_FLOOR_SEQ + U64_LEN)
#define META_FLOOR_LEN (META_FLOOR_HLC + U64_LEN)
_Static_assert(sizeof(META_FLOOR_PREFIX) - 1 == META_FLOOR_PREFIX_LEN,
               "floor prefix length");
_Static_assert(META_FLOOR_KEY_LEN == 13 && META_FLOOR_LEN == 16,
               "floor records as format 4 wrote them");

/* DB_META "census" (view.c): six u64 counts in this order. */
#define CENSUS_FILES 0
#define CENSUS_DIRS (CENSUS_FILES + U64_LEN)
#define CENSUS_SYMLINKS (CENSUS_DIRS + U64_LEN)
#define CENSUS_OTHERS (CENSUS_SYMLINKS + U64_LEN)
#define CENSUS_BYTES (CENSUS_OTHERS + U64_LEN)
#define CENSUS_CONFLICTS (CENSUS_BYTES + U64_LEN)
#define META_CENSUS_LEN (CENSUS_CONFLICTS + U64_LEN)
_Static_assert(META_CENSUS_LEN == 6 * U64_LEN && META_CENSUS_LEN == 48,
               "census record as format 5 wrote it");

/* ---- DB_OPS: (origin, seq) -> encoded op (op.c) ---- */
#define OPS_KEY_ORIGIN 0
#define OPS_KEY_SEQ (OPS_KEY_ORIGIN + U64_LEN)
#define OPS_KEY_LEN (OPS_KEY_SEQ + U64_LEN)
_Static_assert(OPS_KEY_LEN == 16, "op log key");
static inline void ops_key_put(uint8_t *k, uint64_t origin, uint64_t seq)
{
    mfs_be64_put(k + OPS_KEY_ORIGIN, origin);
    mfs_be64_put(k + OPS_KEY_SEQ, seq);
}

/* The op header, at the front of every encoded op (in the log, in
 * snapshots, on the wire): version u8, type u8, flags u8, origin u64,
 * seq u64, hlc u64, object id. Written by op_encode, read by op_decode
 * and op_head_decode (op.c) and nowhere else. */
#define OP_HDR_VERSION 0
#define OP_HDR_TYPE (OP_HDR_VERSION + 1)
#define OP_HDR_FLAGS (OP_HDR_TYPE + 1)
#define OP_HDR_ORIGIN (OP_HDR_FLAGS + 1)
#define OP_HDR_SEQ (OP_HDR_ORIGIN + U64_LEN)
#define OP_HDR_HLC (OP_HDR_SEQ + U64_LEN)
#define OP_HDR_OBJ (OP_HDR_HLC + U64_LEN)
#define OP_HDR_LEN (OP_HDR_OBJ + ID_LEN)
_Static_assert(OP_HDR_ORIGIN == 3 && OP_HDR_SEQ == 11 && OP_HDR_HLC == 19 &&
                   OP_HDR_LEN == 43,
               "op header as OP_WIRE_VERSION 1 lays it out");

/* ---- DB_VV: origin -> highest contiguous seq held ---- */
#define VV_KEY_LEN U64_LEN
#define VV_VAL_LEN U64_LEN
_Static_assert(VV_KEY_LEN == OPS_KEY_SEQ - OPS_KEY_ORIGIN,
               "a vector key is the origin of an op key (op.c reads one as"
               " the other)");

/* ---- DB_ENTRIES: entry id -> the raw tree state of an entry (tree.c
 * entry_put / entry_get): parent id, inode id, stamp of the move that put
 * it there, from (the directory a move to the trash deleted it from, else
 * zero), then its name as a str16 ---- */
#define ENTRY_PARENT 0
#define ENTRY_INODE (ENTRY_PARENT + ID_LEN)
#define ENTRY_STAMP (ENTRY_INODE + ID_LEN)
#define ENTRY_FROM (ENTRY_STAMP + STAMP_LEN)
#define ENTRY_NAME (ENTRY_FROM + ID_LEN)
_Static_assert(ENTRY_INODE == 16 && ENTRY_STAMP == 32 && ENTRY_NAME == 64,
               "entry record");

/* ---- DB_MOVES: stamp -> a logged move (tree.c move_rec_put /
 * move_rec_decode): skipped u8, prior exists u8, the entry's prior state
 * as an entry record (ENTRY_* from MOVE_PRIOR, its name a str16); then
 * the move: entry, inode, parent and from ids, name str16, nseen u32 and
 * that many stamps; and, when it keeps more than it saw itself, nall u32
 * and that many stamps ---- */
#define MOVES_KEY_LEN STAMP_LEN
#define MOVE_SKIPPED 0
#define MOVE_PRIOR_EXISTS (MOVE_SKIPPED + 1)
#define MOVE_PRIOR (MOVE_PRIOR_EXISTS + 1)
#define MOVE_PRIOR_NAME (MOVE_PRIOR + ENTRY_NAME)
_Static_assert(MOVE_PRIOR == 2 && MOVE_PRIOR_NAME == 66, "move record");
/* After the prior name of n bytes: the move's four ids, then its name. */
#define MOVE_OP_AT(n) (MOVE_PRIOR_NAME + STR16_LEN_LEN + (n))
#define MOVE_OP_NAME(n) (MOVE_OP_AT(n) + 4 * ID_LEN)

/* ---- DB_INODES: inode id -> its registers and shown version (content.c
 * inode_put / inode_get). Since format 3 the tag INODE_COMPACT, then
 * varints: type, rdev, a u8 of which of the six stamps (mode, uid, gid,
 * atime, mtime, ctime) differ from the one before (bit 0 always), those
 * stamps each before its value (mode, uid, gid as varints; the times as
 * signed varints, each the difference from the one before), shown u8 and
 * the shown stamp if set, size, blocks, nheads, the symlink target's
 * length and bytes. Older records (read, never written) are fixed up to
 * the target: ---- */
#define INODE_TAG 0
#define INODE_COMPACT 0xC3 /* a v1 record starts with a u32 type: 0 */
#define REG32_LEN (U32_LEN + STAMP_LEN) /* a register: value, stamp */
#define REGTIME_LEN (U64_LEN + STAMP_LEN)
#define INODE_V1_TYPE 0
#define INODE_V1_RDEV (INODE_V1_TYPE + U32_LEN)
#define INODE_V1_MODE (INODE_V1_RDEV + U64_LEN)
#define INODE_V1_UID (INODE_V1_MODE + REG32_LEN)
#define INODE_V1_GID (INODE_V1_UID + REG32_LEN)
#define INODE_V1_ATIME (INODE_V1_GID + REG32_LEN)
#define INODE_V1_MTIME (INODE_V1_ATIME + REGTIME_LEN)
#define INODE_V1_CTIME (INODE_V1_MTIME + REGTIME_LEN)
#define INODE_V1_SHOWN (INODE_V1_CTIME + REGTIME_LEN)
#define INODE_V1_SIZE (INODE_V1_SHOWN + STAMP_LEN)
#define INODE_V1_BLOCKS (INODE_V1_SIZE + U64_LEN)
#define INODE_V1_NHEADS (INODE_V1_BLOCKS + U64_LEN)
#define INODE_V1_TARGET (INODE_V1_NHEADS + U32_LEN) /* a str16 */
_Static_assert(INODE_V1_ATIME == 72 && INODE_V1_SHOWN == 144 &&
                   INODE_V1_TARGET == 180,
               "inode record of formats 1 and 2");

/* ---- (id, id) keys with an empty value: DB_RCHILD (parent, entry),
 * DB_ILINKS and DB_LINKS (inode, entry), DB_TFROM (dir, entry) ---- */
#define PAIR_KEY_A 0
#define PAIR_KEY_B (PAIR_KEY_A + ID_LEN)
#define PAIR_KEY_LEN (PAIR_KEY_B + ID_LEN)
_Static_assert(PAIR_KEY_LEN == 32, "id pair key");
static inline void pair_key_put(uint8_t *k, mfs_id a, mfs_id b)
{
    id_put(k + PAIR_KEY_A, a);
    id_put(k + PAIR_KEY_B, b);
}

/* ---- (inode id, version stamp) keys: DB_VERSIONS, DB_SUPERSEDED,
 * DB_VMISSING (value: u32 chunks missing), DB_HEADS, DB_CCOPY ---- */
#define VKEY_INODE 0
#define VKEY_STAMP (VKEY_INODE + ID_LEN)
#define VKEY_LEN (VKEY_STAMP + STAMP_LEN)
#define VMISSING_VAL_LEN U32_LEN
_Static_assert(VKEY_LEN == 32, "version key");
static inline void vkey_put(uint8_t *k, mfs_id inode, mfs_stamp st)
{
    id_put(k + VKEY_INODE, inode);
    stamp_put(k + VKEY_STAMP, st);
}

/* ---- DB_VERSIONS: (inode, stamp) -> a version record (content.c
 * version_encode / version_decode, its only codec): a flags byte
 * (OPF_DROP, OPF_EXTENTS, OPF_FLOOR; 0 or OPF_DROP before format 6),
 * size, mtime, ctime, nparents u32 and that many parent stamps, nchunks
 * u32 and that many chunk hashes, with OPF_EXTENTS that many chunk ends
 * (u64), and only for a version that names deletes its writer had
 * applied (OPF_KNOWN) or carries a floor, nknown u32 (up to OP_MAX_KNOWN;
 * 0 only with a floor) and that many stamps, then with OPF_FLOOR the
 * floor (u64, not 0) ---- */
#define VERSION_DROP 0
#define VERSION_SIZE (VERSION_DROP + 1)
#define VERSION_MTIME (VERSION_SIZE + U64_LEN)
#define VERSION_CTIME (VERSION_MTIME + U64_LEN)
#define VERSION_NPARENTS (VERSION_CTIME + U64_LEN)
#define VERSION_PARENTS (VERSION_NPARENTS + U32_LEN)
_Static_assert(VERSION_NPARENTS == 25 && VERSION_PARENTS == 29,
               "version record");
/* Where nchunks stands after np parents. */
#define VERSION_NCHUNKS(np) (VERSION_PARENTS + (size_t)(np) * STAMP_LEN)

/* ---- DB_XATTRS: (inode id, name) -> stamp, present u8, value ---- */
#define XATTR_KEY_NAME ID_LEN
#define XATTR_VAL_STAMP 0
#define XATTR_VAL_PRESENT (XATTR_VAL_STAMP + STAMP_LEN)
#define XATTR_VAL_DATA (XATTR_VAL_PRESENT + 1)
_Static_assert(XATTR_VAL_DATA == 17, "xattr record header");

/* ---- DB_WANT: (chunk hash, inode id, version stamp) -> "" ---- */
#define WANT_KEY_HASH 0
#define WANT_KEY_VKEY (WANT_KEY_HASH + HASH_LEN) /* a VKEY_* key */
#define WANT_KEY_INODE (WANT_KEY_VKEY + VKEY_INODE)
#define WANT_KEY_STAMP (WANT_KEY_VKEY + VKEY_STAMP)
#define WANT_KEY_STAMP_NODE (WANT_KEY_STAMP + U64_LEN) /* who wrote it */
#define WANT_KEY_LEN (WANT_KEY_VKEY + VKEY_LEN)
_Static_assert(WANT_KEY_INODE == 32 && WANT_KEY_STAMP == 48 &&
                   WANT_KEY_STAMP_NODE == 56 && WANT_KEY_LEN == 64,
               "want key");
static inline void want_key_put(uint8_t *k, const uint8_t *hash,
                                const uint8_t *vkey)
{
    memcpy(k + WANT_KEY_HASH, hash, HASH_LEN);
    memcpy(k + WANT_KEY_VKEY, vkey, VKEY_LEN);
}

/* ---- DB_CHUNKS: hash -> the bytes, or a reference into a pack file
 * (pack.c): pack id u32, offset u64, length u32, a 0 tag byte ---- */
#define CHUNKS_KEY_LEN HASH_LEN
#define PACK_REF_ID 0
#define PACK_REF_OFF (PACK_REF_ID + U32_LEN)
#define PACK_REF_SIZE (PACK_REF_OFF + U64_LEN)
#define PACK_REF_TAG (PACK_REF_SIZE + U32_LEN)
#define PACK_REF_LEN (PACK_REF_TAG + 1)
_Static_assert(PACK_REF_LEN == 17, "pack reference");

/* ---- DB_PACKS: pack id u32 -> size u64, live bytes u64 ---- */
#define PACKS_KEY_LEN U32_LEN
#define PACKS_VAL_SIZE 0
#define PACKS_VAL_LIVE (PACKS_VAL_SIZE + U64_LEN)
#define PACKS_VAL_LEN (PACKS_VAL_LIVE + U64_LEN)

/* ---- the dirty environment (dirty.c): (inode id, block) -> bytes;
 * pages: (inode id, block, page u8) -> bytes. DB_DREFS in the main
 * store: (inode id, block) -> chunk hash ---- */
#define DKEY_INODE 0
#define DKEY_BLOCK (DKEY_INODE + ID_LEN)
#define DKEY_LEN (DKEY_BLOCK + U64_LEN)
#define PKEY_PAGE DKEY_LEN
#define PKEY_LEN (PKEY_PAGE + 1)
#define DREFS_VAL_LEN HASH_LEN
_Static_assert(DKEY_LEN == 24 && PKEY_LEN == 25, "dirty keys");
/* DB_DCHUNKS: (inode id, offset u64: a DKEY with the chunk's first byte
 * for block) -> chunk hash, length u32 */
#define DCHUNKS_VAL_HASH 0
#define DCHUNKS_VAL_SIZE (DCHUNKS_VAL_HASH + HASH_LEN)
#define DCHUNKS_VAL_LEN (DCHUNKS_VAL_SIZE + U32_LEN)
_Static_assert(DCHUNKS_VAL_LEN == 36, "stream chunk record");

/* ---- DB_INO2OBJ: ino u64 -> object key; DB_OBJ2INO: object key -> ino.
 * An object key is a kind byte, the inode id, and for a conflict copy the
 * version stamp (internal.h objkey) ---- */
#define INO_LEN U64_LEN /* a local ino: DB_INO2OBJ key, DB_OBJ2INO value */
#define OBJKEY_KIND 0
#define OBJKEY_ID (OBJKEY_KIND + 1)
#define OBJKEY_STAMP (OBJKEY_ID + ID_LEN)
#define OBJKEY_INODE_LEN OBJKEY_STAMP
#define OBJKEY_CCOPY_LEN (OBJKEY_STAMP + STAMP_LEN)
_Static_assert(OBJKEY_INODE_LEN == 17 && OBJKEY_CCOPY_LEN == 33, "objkey");

/* ---- DB_DINFO: inode id -> unpublished size u64, mtime, ctime, since ms
 * u64, base stamp, trunc u64 (content.c dinfo_put); fixed offsets for
 * readers that need one field ---- */
#define DINFO_VAL_SIZE 0
#define DINFO_VAL_MTIME (DINFO_VAL_SIZE + U64_LEN)
#define DINFO_VAL_CTIME (DINFO_VAL_MTIME + U64_LEN)
#define DINFO_VAL_SINCE (DINFO_VAL_CTIME + U64_LEN)
#define DINFO_VAL_BASE (DINFO_VAL_SINCE + U64_LEN)
#define DINFO_VAL_TRUNC (DINFO_VAL_BASE + STAMP_LEN)
#define DINFO_VAL_LEN (DINFO_VAL_TRUNC + U64_LEN)
_Static_assert(DINFO_VAL_SINCE == 24 && DINFO_VAL_LEN == 56, "dinfo record");

/* ---- DB_DIRENTS: (dir id, display name) -> visible entry (view.c
 * dirent_put / view_dirent_decode): kind u8 (OBJ_INODE or OBJ_CCOPY),
 * ino, type u32, entry id, inode id, version stamp (a conflict copy's;
 * zero else) ---- */
#define DIRENT_KEY_NAME ID_LEN
#define DIRENT_KIND 0
#define DIRENT_INO (DIRENT_KIND + 1)
#define DIRENT_TYPE (DIRENT_INO + U64_LEN)
#define DIRENT_ENTRY (DIRENT_TYPE + U32_LEN)
#define DIRENT_INODE (DIRENT_ENTRY + ID_LEN)
#define DIRENT_VER (DIRENT_INODE + ID_LEN)
#define DIRENT_LEN (DIRENT_VER + STAMP_LEN)
_Static_assert(DIRENT_ENTRY == 13 && DIRENT_LEN == 61, "dirent record");

/* ---- DB_VENT: entry id -> where the entry is visible (view.c vent_put /
 * vent_get): visible u8, live u8, dir id, inode id, type u32, stamp of
 * its move, then the raw name and the display name as str16s ---- */
#define VENT_VISIBLE 0
#define VENT_LIVE (VENT_VISIBLE + 1)
#define VENT_DIR (VENT_LIVE + 1)
#define VENT_INODE (VENT_DIR + ID_LEN)
#define VENT_TYPE (VENT_INODE + ID_LEN)
#define VENT_STAMP (VENT_TYPE + U32_LEN)
#define VENT_NAME (VENT_STAMP + STAMP_LEN)
_Static_assert(VENT_TYPE == 34 && VENT_NAME == 54, "vent record");

/* ---- DB_CCOPY: (inode, version stamp) -> where a conflict copy shows:
 * dir id, then its display name as a str16 (view.c) ---- */
#define CCOPY_DIR 0
#define CCOPY_NAME (CCOPY_DIR + ID_LEN)

/* ---- DB_GROUPS: (dir id, raw name, 0, entry id) -> "" ---- */
#define GROUP_KEY_NAME ID_LEN
/* The key's length without the name: dir, the 0 byte, the entry. */
#define GROUP_KEY_FIXED (ID_LEN + 1 + ID_LEN)
/* Where the entry id starts after a name of n bytes and its 0. */
#define GROUP_KEY_ENTRY(n) (GROUP_KEY_NAME + (n) + 1)
_Static_assert(GROUP_KEY_FIXED == 33, "group key");

/* ---- DB_NSUB, DB_NLINK: id -> u32. DB_CDIRS: dir id -> u32 generated
 * names, then (since format 5) u32 of them shown ---- */
#define COUNT_VAL_LEN U32_LEN
#define CDIRS_VAL_N 0
#define CDIRS_VAL_SHOWN (CDIRS_VAL_N + U32_LEN)
#define CDIRS_VAL_LEN (CDIRS_VAL_SHOWN + U32_LEN)

/* ---- DB_GCQ: (time ms, inode id, version stamp) -> cause stamp; a
 * logged move to forget is (time, entry id, move stamp) -> cause, 'M' ---- */
#define GCQ_KEY_TIME 0
#define GCQ_KEY_ID (GCQ_KEY_TIME + U64_LEN)
#define GCQ_KEY_STAMP (GCQ_KEY_ID + ID_LEN)
#define GCQ_KEY_LEN (GCQ_KEY_STAMP + STAMP_LEN)
#define GCQ_VAL_CAUSE 0
#define GCQ_VAL_LEN STAMP_LEN
#define GCQ_VAL_MOVE_TAG GCQ_VAL_LEN /* 'M' here: a move */
#define GCQ_VAL_MOVE_LEN (GCQ_VAL_MOVE_TAG + 1)
#define GCQ_MOVE 'M'
_Static_assert(GCQ_KEY_LEN == 40 && GCQ_VAL_MOVE_LEN == 17, "gc queue");
static inline void gcq_key_put(uint8_t *k, uint64_t ms, mfs_id id, mfs_stamp st)
{
    mfs_be64_put(k + GCQ_KEY_TIME, ms);
    id_put(k + GCQ_KEY_ID, id);
    stamp_put(k + GCQ_KEY_STAMP, st);
}

#endif
