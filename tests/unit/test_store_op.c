/*
 * test_store_op.c - the op header and the version record, the two layouts
 * that more than one file reads (store/schema.h OP_HDR_*, VERSION_*),
 * through their only codecs: op_encode / op_head_decode / op_decode
 * (op.c) and version_encode / version_decode (content.c).
 * What callers rely on: op_head_decode gives the fields op_encode wrote,
 * for every op type, and of a truncated header only the fields it holds
 * whole, with a count below OP_HDR_LEN that tells the caller so (the op
 * log, batches and snapshots refuse such an op); op_decode refuses
 * truncated and garbage ops; a version record comes back as written and
 * a short, long or out-of-bounds one is refused. ASan runs catch any read
 * past the given length.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "internal.h"
#include "testutil.h"

static uint8_t hashes[3 * MFS_HASH_LEN];
static uint8_t stamps[2 * STAMP_LEN];

/* One valid op of each type, all with the same header fields but type. */
static mfs_op op_of_type(uint8_t type)
{
    mfs_op op;
    memset(&op, 0, sizeof(op));
    op.type = type;
    op.origin = 0x1122334455667788ull;
    op.seq = 0x0102030405060708ull;
    op.st = (mfs_stamp){0x0a0b0c0d0e0f1011ull, op.origin};
    op.obj = (mfs_id){0x2122232425262728ull, 0x3132333435363738ull};
    for (size_t i = 0; i < sizeof(hashes); i++)
        hashes[i] = (uint8_t)(i + 1); /* no all-zero hash: not holes */
    for (size_t i = 0; i < sizeof(stamps); i++)
        stamps[i] = (uint8_t)(0x40 + i);
    switch (type) {
    case OP_INODE:
        op.mode = S_IFREG | 0644;
        op.uid = 1000;
        op.gid = 100;
        op.atime = op.mtime = op.ctime = 1700000000;
        break;
    case OP_MOVE:
        op.inode = (mfs_id){7, 8};
        op.parent = (mfs_id){0, 1};
        op.name = "a name";
        op.namelen = strlen(op.name);
        op.seen = stamps;
        op.nseen = 2;
        op.flags = OPF_MORE;
        break;
    case OP_ATTR:
        op.mask = 1;
        op.mode = 0600;
        break;
    case OP_XATTR:
        op.name = "user.x";
        op.namelen = strlen(op.name);
        op.present = 1;
        op.value = (const uint8_t *)"value";
        op.vlen = 5;
        break;
    case OP_VERSION:
        op.size = 2 * MFS_CHUNK_SIZE + 1;
        op.nchunks = 3;
        op.hashes = hashes;
        op.parents = stamps;
        op.nparents = 1;
        op.known = stamps + STAMP_LEN;
        op.nknown = 1;
        op.flags = OPF_KNOWN;
        break;
    }
    return op;
}

static const uint8_t types[] = {OP_INODE, OP_MOVE, OP_ATTR, OP_XATTR,
                                OP_VERSION};

static size_t encode(const mfs_op *op, uint8_t *buf, size_t cap)
{
    mfs_wbuf w;
    mfs_wbuf_init(&w, buf, cap);
    op_encode(&w, op);
    assert_int_equal(w.err, 0);
    return w.len;
}

static void test_head_roundtrip(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(types); t++) {
        mfs_op op = op_of_type(types[t]);
        uint8_t buf[1024];
        size_t len = encode(&op, buf, sizeof(buf));
        assert_true(len > OP_HDR_LEN);
        op_head h;
        assert_int_equal(op_head_decode(buf, len, &h), OP_HDR_LEN);
        assert_int_equal(h.version, OP_WIRE_VERSION);
        assert_int_equal(h.type, op.type);
        assert_int_equal(h.flags, op.flags);
        assert_true(h.origin == op.origin);
        assert_true(h.seq == op.seq);
        assert_true(h.hlc == op.st.hlc);
        assert_true(id_eq(h.obj, op.obj));
        /* the whole op decodes to the same header */
        mfs_op back;
        assert_int_equal(op_decode(buf, len, &back), 0);
        assert_int_equal(back.type, h.type);
        assert_int_equal(back.flags, h.flags);
        assert_true(back.origin == h.origin && back.seq == h.seq);
        assert_true(back.st.hlc == h.hlc && back.st.node == h.origin);
        assert_true(id_eq(back.obj, h.obj));
        op_clear(&back);
        /* the header alone says the same */
        assert_int_equal(op_head_decode(buf, OP_HDR_LEN, &h), OP_HDR_LEN);
        assert_true(h.hlc == op.st.hlc && id_eq(h.obj, op.obj));
    }
}

/* The layout as schema.h names it, byte for byte. */
static void test_head_layout(void **state)
{
    (void)state;
    mfs_op op = op_of_type(OP_ATTR);
    uint8_t buf[256];
    encode(&op, buf, sizeof(buf));
    assert_int_equal(buf[OP_HDR_VERSION], OP_WIRE_VERSION);
    assert_int_equal(buf[OP_HDR_TYPE], OP_ATTR);
    assert_int_equal(buf[OP_HDR_FLAGS], 0);
    assert_true(mfs_be64_get(buf + OP_HDR_ORIGIN) == op.origin);
    assert_true(mfs_be64_get(buf + OP_HDR_SEQ) == op.seq);
    assert_true(mfs_be64_get(buf + OP_HDR_HLC) == op.st.hlc);
    assert_true(mfs_be64_get(buf + OP_HDR_OBJ) == op.obj.node);
    assert_true(mfs_be64_get(buf + OP_HDR_OBJ + U64_LEN) == op.obj.seq);
}

/* A header cut anywhere: only the fields it holds whole, the count of
 * bytes they take (always below OP_HDR_LEN), and never a byte past len
 * read (the copy is exactly len bytes long: ASan would see). */
static void test_head_truncated(void **state)
{
    (void)state;
    mfs_op op = op_of_type(OP_MOVE);
    uint8_t buf[1024];
    size_t len = encode(&op, buf, sizeof(buf));
    for (size_t n = 0; n < OP_HDR_LEN; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        assert_non_null(cut);
        memcpy(cut, buf, n);
        op_head h;
        memset(&h, 0xff, sizeof(h));
        size_t got = op_head_decode(cut, n, &h);
        assert_true(got <= n && got < OP_HDR_LEN);
        assert_int_equal(h.version, n > OP_HDR_VERSION ? OP_WIRE_VERSION : 0);
        assert_int_equal(h.type, n > OP_HDR_TYPE ? OP_MOVE : 0);
        assert_int_equal(h.flags, n > OP_HDR_FLAGS ? OPF_MORE : 0);
        assert_true(h.origin == (n >= OP_HDR_SEQ ? op.origin : 0));
        assert_true(h.seq == (n >= OP_HDR_HLC ? op.seq : 0));
        assert_true(h.hlc == (n >= OP_HDR_OBJ ? op.st.hlc : 0));
        assert_true(id_zero(h.obj));
        /* a caller that needs the hlc checks the count covers it */
        assert_true((got > OP_HDR_HLC) == (n >= OP_HDR_OBJ));
        mfs_op back;
        assert_int_equal(op_decode(cut, n, &back), -EBADMSG);
        free(cut);
    }
    /* every cut of the whole op is refused by op_decode */
    for (size_t n = OP_HDR_LEN; n < len; n++) {
        mfs_op back;
        assert_int_equal(op_decode(buf, n, &back), -EBADMSG);
    }
}

/* Garbage: op_head_decode reads it as bytes (it validates nothing, its
 * callers look at ops they hold or decode whole); op_decode refuses a
 * wrong version, an unknown type, unknown flags, zero header fields and
 * random bytes, and never reads past len. */
static void test_garbage(void **state)
{
    (void)state;
    mfs_op op = op_of_type(OP_VERSION);
    uint8_t buf[1024], bad[1024];
    size_t len = encode(&op, buf, sizeof(buf));
    mfs_op back;
    struct {
        size_t at;
        uint8_t v;
    } pokes[] = {
        {OP_HDR_VERSION, OP_WIRE_VERSION + 1},
        {OP_HDR_TYPE, 0},
        {OP_HDR_TYPE, OP_VERSION + 1},
        {OP_HDR_FLAGS, 0x80},
    };
    for (size_t i = 0; i < sizeof(pokes) / sizeof(pokes[0]); i++) {
        memcpy(bad, buf, len);
        bad[pokes[i].at] = pokes[i].v;
        assert_int_equal(op_decode(bad, len, &back), -EBADMSG);
        op_head h;
        assert_int_equal(op_head_decode(bad, len, &h), OP_HDR_LEN);
        assert_int_equal(h.version, bad[OP_HDR_VERSION]);
        assert_int_equal(h.type, bad[OP_HDR_TYPE]);
        assert_int_equal(h.flags, bad[OP_HDR_FLAGS]);
    }
    const size_t zeros[] = {OP_HDR_ORIGIN, OP_HDR_SEQ, OP_HDR_HLC};
    for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++) {
        memcpy(bad, buf, len);
        memset(bad + zeros[i], 0, U64_LEN);
        assert_int_equal(op_decode(bad, len, &back), -EBADMSG);
    }
    memcpy(bad, buf, len);
    bad[len] = 0; /* a byte too many */
    assert_int_equal(op_decode(bad, len + 1, &back), -EBADMSG);

    mfs_rng rng;
    mfs_rng_seed(&rng, mfs_test_seed(11));
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)mfs_rng_below(&rng, 200);
        uint8_t *g = malloc(n ? n : 1);
        assert_non_null(g);
        for (size_t j = 0; j < n; j++)
            g[j] = (uint8_t)mfs_rng_next(&rng);
        if (n > OP_HDR_TYPE && i % 2)
            g[OP_HDR_VERSION] = OP_WIRE_VERSION; /* get past the first check */
        op_head h;
        size_t got = op_head_decode(g, n, &h);
        assert_true(got <= n && got <= OP_HDR_LEN);
        if (op_decode(g, n, &back) == 0) /* (a valid op by chance) */
            op_clear(&back);
        free(g);
    }
}

static void test_version_record(void **state)
{
    (void)state;
    mfs_op op = op_of_type(OP_VERSION);
    uint8_t buf[512];
    for (int mode = 0; mode < 4; mode++) {
        int known = mode & 1, floor = mode >> 1;
        op.nknown = known ? 1 : 0;
        op.kfloor = floor ? 0x1234567800010002ull : 0;
        op.flags = (known ? OPF_KNOWN : 0) | (floor ? OPF_FLOOR : 0);
        mfs_wbuf w;
        mfs_wbuf_init(&w, buf, sizeof(buf));
        version_encode(&w, &op);
        assert_int_equal(w.err, 0);
        size_t want = VERSION_NCHUNKS(op.nparents) + U32_LEN +
                      (size_t)op.nchunks * HASH_LEN + (known ? STAMP_LEN : 0) +
                      (known || floor ? U32_LEN : 0) + (floor ? 8 : 0);
        assert_int_equal(w.len, want);
        assert_int_equal(buf[VERSION_DROP], floor ? OPF_FLOOR : 0);
        assert_true(mfs_be64_get(buf + VERSION_SIZE) == op.size);
        assert_true(mfs_be32_get(buf + VERSION_NPARENTS) == op.nparents);
        assert_true(mfs_be32_get(buf + VERSION_NCHUNKS(op.nparents)) ==
                    op.nchunks);
        version_view v;
        assert_int_equal(version_decode(buf, w.len, &v), 0);
        assert_int_equal(v.flags, op.flags);
        assert_true(v.size == op.size && v.mtime == op.mtime &&
                    v.ctime == op.ctime);
        assert_int_equal(v.nparents, 1);
        assert_memory_equal(v.parents, stamps, STAMP_LEN);
        assert_int_equal(v.nchunks, 3);
        assert_memory_equal(v.hashes, hashes, sizeof(hashes));
        assert_int_equal(v.nknown, op.nknown);
        if (known)
            assert_memory_equal(v.known, stamps + STAMP_LEN, STAMP_LEN);
        assert_true(v.kfloor == op.kfloor);
        /* every cut but the one before the known deletes of a record
         * without a floor (a record without them ends there) is refused
         * (a floor is in the flags byte: its record must hold it) */
        for (size_t n = 0; n < w.len; n++) {
            uint8_t *cut = malloc(n ? n : 1);
            assert_non_null(cut);
            memcpy(cut, buf, n);
            int rc = version_decode(cut, n, &v);
            size_t plain = VERSION_NCHUNKS(1) + U32_LEN + sizeof(hashes);
            bool whole = known && !floor && n == plain;
            assert_int_equal(rc, whole ? 0 : -EIO);
            free(cut);
        }
        /* a byte too many, and counts past an op's bounds */
        uint8_t bad[520];
        memcpy(bad, buf, w.len);
        bad[w.len] = 0;
        assert_int_equal(version_decode(bad, w.len + 1, &v), -EIO);
        memcpy(bad, buf, w.len);
        mfs_be32_put(bad + VERSION_NPARENTS, MFS_MAX_SEEN + 1);
        assert_int_equal(version_decode(bad, w.len, &v), -EIO);
        memcpy(bad, buf, w.len);
        mfs_be32_put(bad + VERSION_NCHUNKS(1), MFS_MAX_CHUNKS + 1);
        assert_int_equal(version_decode(bad, w.len, &v), -EIO);
        if (known && !floor) {
            memcpy(bad, buf, w.len);
            mfs_be32_put(bad + VERSION_NCHUNKS(1) + U32_LEN + sizeof(hashes),
                         0);
            assert_int_equal(version_decode(bad, w.len, &v), -EIO);
        }
        if (floor) { /* a floor of 0 */
            memcpy(bad, buf, w.len);
            mfs_be64_put(bad + w.len - 8, 0);
            assert_int_equal(version_decode(bad, w.len, &v), -EIO);
        }
    }
}

/* A version of content-defined chunks (OPF_EXTENTS) as an op and as a
 * record: each chunk's extent comes back, reads find a chunk by offset,
 * and what no writer makes is refused: a chunk of no bytes, a chunk of
 * data longer than MFS_CHUNK_SIZE (a hole may be any length), extents
 * that do not add up to the size, extents on a DROP or on another kind
 * of op, unknown record flags. */
static void test_extents(void **state)
{
    (void)state;
    mfs_op op = op_of_type(OP_VERSION);
    static uint8_t h3[3 * MFS_HASH_LEN];
    memcpy(h3, hashes, sizeof(h3));
    memset(h3 + MFS_HASH_LEN, 0, MFS_HASH_LEN); /* the middle one: a hole */
    uint64_t len[3] = {1000, 500000, MFS_CHUNK_SIZE};
    uint8_t ends[3 * U64_LEN];
    uint64_t end = 0;
    for (int i = 0; i < 3; i++)
        mfs_be64_put(ends + i * U64_LEN, end += len[i]);
    op.hashes = h3;
    op.ends = ends;
    op.size = end;
    op.flags = OPF_KNOWN | OPF_EXTENTS;
    uint8_t buf[1024];
    size_t n = encode(&op, buf, sizeof(buf));
    mfs_op back;
    assert_int_equal(op_decode(buf, n, &back), 0);
    assert_int_equal(back.flags, op.flags);
    assert_int_equal(back.nchunks, 3);
    assert_memory_equal(back.hashes, h3, sizeof(h3));
    assert_memory_equal(back.ends, ends, sizeof(ends));
    op_clear(&back);
    /* the record */
    mfs_wbuf w;
    mfs_wbuf_init(&w, buf, sizeof(buf));
    version_encode(&w, &op);
    assert_int_equal(w.err, 0);
    version_view v;
    assert_int_equal(version_decode(buf, w.len, &v), 0);
    assert_int_equal(v.flags, op.flags);
    assert_memory_equal(v.ends, ends, sizeof(ends));
    assert_true(extents_valid(&v));
    assert_int_equal(chunk_at(v.ends, 3, 0), 0);
    assert_int_equal(chunk_at(v.ends, 3, 999), 0);
    assert_int_equal(chunk_at(v.ends, 3, 1000), 1);
    assert_int_equal(chunk_at(v.ends, 3, 500999), 1);
    assert_int_equal(chunk_at(v.ends, 3, 501000), 2);
    assert_int_equal(chunk_at(v.ends, 3, end - 1), 2);
    assert_int_equal(chunk_at(v.ends, 3, end), 3);
    assert_true(chunk_start(v.ends, v.size, 2) == 501000 &&
                chunk_end(v.ends, v.size, 2) == end);
    assert_true(chunk_end(NULL, 70000, 1) == 70000 &&
                chunk_start(NULL, 70000, 1) == MFS_CHUNK_SIZE);
    /* unknown record flags; extents that end elsewhere than the size */
    uint8_t bad[1024];
    memcpy(bad, buf, w.len);
    bad[VERSION_DROP] |= 0x40;
    assert_int_equal(version_decode(bad, w.len, &v), -EIO);
    memcpy(bad, buf, w.len);
    mfs_be64_put(bad + VERSION_SIZE, end + 1);
    assert_int_equal(version_decode(bad, w.len, &v), -EIO);
    /* a record from elsewhere whose extents no writer makes */
    memcpy(bad, buf, w.len);
    assert_int_equal(version_decode(bad, w.len, &v), 0);
    mfs_be64_put((uint8_t *)v.ends, 0); /* a chunk of no bytes */
    assert_false(extents_valid(&v));
    /* ops no writer makes */
    struct {
        uint64_t len[3];
        uint64_t size;
    } wrong[] = {
        {{1000, 0, MFS_CHUNK_SIZE}, 1000 + MFS_CHUNK_SIZE},
        {{MFS_CHUNK_SIZE + 1, 500000, 10}, MFS_CHUNK_SIZE + 500011},
        {{1000, 500000, MFS_CHUNK_SIZE}, end + 1},
    };
    for (size_t k = 0; k < sizeof(wrong) / sizeof(wrong[0]); k++) {
        uint8_t e[3 * U64_LEN];
        uint64_t at = 0;
        for (int i = 0; i < 3; i++)
            mfs_be64_put(e + i * U64_LEN, at += wrong[k].len[i]);
        mfs_op o = op;
        o.ends = e;
        o.size = wrong[k].size;
        n = encode(&o, buf, sizeof(buf));
        assert_int_equal(op_decode(buf, n, &back), -EBADMSG);
    }
    mfs_op drop = op;
    drop.flags = OPF_DROP | OPF_EXTENTS;
    drop.nchunks = 0;
    drop.size = 0;
    n = encode(&drop, buf, sizeof(buf));
    assert_int_equal(op_decode(buf, n, &back), -EBADMSG);
    mfs_op mv = op_of_type(OP_MOVE);
    mv.flags |= OPF_EXTENTS;
    n = encode(&mv, buf, sizeof(buf));
    assert_int_equal(op_decode(buf, n, &back), -EBADMSG);
}

/* A VERSION op's floor (OPF_FLOOR) travels; a floor of 0, a cut one and
 * the flag on another kind of op are refused. */
static void test_version_floor_op(void **state)
{
    (void)state;
    for (int known = 0; known < 2; known++) {
        mfs_op op = op_of_type(OP_VERSION);
        op.nknown = known ? 1 : 0;
        op.kfloor = 0x0102030405060708ull;
        op.flags = (known ? OPF_KNOWN : 0) | OPF_FLOOR;
        uint8_t buf[1024];
        size_t len = encode(&op, buf, sizeof(buf));
        mfs_op back;
        assert_int_equal(op_decode(buf, len, &back), 0);
        assert_int_equal(back.flags, op.flags);
        assert_true(back.kfloor == op.kfloor);
        assert_int_equal(back.nknown, op.nknown);
        op_clear(&back);
        assert_int_equal(op_decode(buf, len - 1, &back), -EBADMSG);
        mfs_be64_put(buf + len - 8, 0);
        assert_int_equal(op_decode(buf, len, &back), -EBADMSG);
    }
    mfs_op op = op_of_type(OP_ATTR);
    op.flags = OPF_FLOOR;
    op.kfloor = 1;
    uint8_t buf[256];
    size_t len = encode(&op, buf, sizeof(buf));
    mfs_op back;
    assert_int_equal(op_decode(buf, len, &back), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_roundtrip),
        cmocka_unit_test(test_version_floor_op),
        cmocka_unit_test(test_head_layout),
        cmocka_unit_test(test_head_truncated),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_version_record),
        cmocka_unit_test(test_extents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
