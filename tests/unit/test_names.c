/*
 * test_names.c - path component validity (mfs_name_check) and the
 * conflict-copy name every replica must derive identically
 * (mfs_conflict_name): "<stem>.conflict-<node hex>-<YYYYMMDD-HHMMSS><.ext>".
 * The hex width of <node> is whatever mfs_conflict_name prints; these tests
 * parse it back instead of pinning the padding.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

static void test_name_check_valid(void **state)
{
    (void)state;
    assert_int_equal(mfs_name_check("a"), 0);
    assert_int_equal(mfs_name_check("..."), 0);
    assert_int_equal(mfs_name_check(".a"), 0);
    assert_int_equal(mfs_name_check("a."), 0);
    assert_int_equal(mfs_name_check("..a"), 0);
    assert_int_equal(mfs_name_check(" "), 0);
    assert_int_equal(mfs_name_check("\xc3\xa9t\xc3\xa9"), 0);
    assert_int_equal(mfs_name_check("lost+found"), 0);
    char n[MFS_NAME_MAX + 1];
    memset(n, 'x', MFS_NAME_MAX);
    n[MFS_NAME_MAX] = 0;
    assert_int_equal(mfs_name_check(n), 0);
}

static void test_name_check_invalid(void **state)
{
    (void)state;
    assert_int_equal(mfs_name_check(""), -EINVAL);
    assert_int_equal(mfs_name_check("."), -EINVAL);
    assert_int_equal(mfs_name_check(".."), -EINVAL);
    assert_int_equal(mfs_name_check("/"), -EINVAL);
    assert_int_equal(mfs_name_check("a/b"), -EINVAL);
    assert_int_equal(mfs_name_check("a/"), -EINVAL);
    assert_int_equal(mfs_name_check("/a"), -EINVAL);
    char n[MFS_NAME_MAX + 50];
    memset(n, 'x', sizeof(n) - 1);
    n[sizeof(n) - 1] = 0;
    assert_int_equal(mfs_name_check(n), -ENAMETOOLONG);
    n[MFS_NAME_MAX + 1] = 0; /* exactly 256 */
    assert_int_equal(mfs_name_check(n), -ENAMETOOLONG);
}

/* Splits a conflict name into its parts; fails the test if it does not
 * have the promised shape. */
typedef struct cparts {
    char stem[MFS_NAME_MAX + 1];
    uint64_t node;
    char date[16]; /* YYYYMMDD-HHMMSS */
    char ext[MFS_NAME_MAX + 1];
} cparts;

static void parse_conflict(const char *s, cparts *p)
{
    const char *m = strstr(s, ".conflict-");
    assert_non_null(m);
    /* Use the last occurrence: a stem may itself contain ".conflict-". */
    for (const char *q = m; (q = strstr(q + 1, ".conflict-"));)
        m = q;
    size_t sl = (size_t)(m - s);
    memcpy(p->stem, s, sl);
    p->stem[sl] = 0;
    const char *h = m + strlen(".conflict-");
    char *end;
    p->node = strtoull(h, &end, 16);
    assert_true(end > h);
    for (const char *c = h; c < end; c++)
        assert_true((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
    assert_int_equal(*end, '-');
    end++;
    for (int i = 0; i < 15; i++) {
        if (i == 8)
            assert_int_equal(end[i], '-');
        else
            assert_true(end[i] >= '0' && end[i] <= '9');
    }
    memcpy(p->date, end, 15);
    p->date[15] = 0;
    snprintf(p->ext, sizeof(p->ext), "%s", end + 15);
}

static void check(const char *name, uint64_t node, uint64_t ms,
                  const char *stem, const char *date, const char *ext)
{
    char out[MFS_NAME_MAX + 1];
    memset(out, 0x7f, sizeof(out));
    int n = mfs_conflict_name(out, sizeof(out), name, node, ms);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(out));
    assert_true(n <= MFS_NAME_MAX);
    assert_int_equal(mfs_name_check(out), 0);
    cparts p;
    parse_conflict(out, &p);
    if (strcmp(p.stem, stem) || p.node != node || strcmp(p.date, date) ||
        strcmp(p.ext, ext))
        print_error("conflict name of '%s' is '%s'\n", name, out);
    assert_string_equal(p.stem, stem);
    assert_true(p.node == node);
    assert_string_equal(p.date, date);
    assert_string_equal(p.ext, ext);
    /* Deterministic: same input, same bytes. */
    char again[MFS_NAME_MAX + 1];
    assert_int_equal(mfs_conflict_name(again, sizeof(again), name, node, ms),
                     n);
    assert_string_equal(again, out);
}

static void test_conflict_basic(void **state)
{
    (void)state;
    uint64_t ms = 1709618828000ull + 999; /* 2024-03-05 06:07:08.999 UTC */
    check("report.txt", 0x1234, ms, "report", "20240305-060708", ".txt");
    check("a.tar.gz", 0xdeadbeefcafef00dull, ms, "a.tar", "20240305-060708",
          ".gz");
    check("Makefile", 1, ms, "Makefile", "20240305-060708", "");
    /* A dotfile's leading dot is not an extension. */
    check(".bashrc", 2, ms, ".bashrc", "20240305-060708", "");
    check(".config.json", 3, ms, ".config", "20240305-060708", ".json");
    check("x", UINT64_MAX, 4102444799000ull, "x", "20991231-235959", "");
    check("y", 7, 0, "y", "19700101-000000", "");
}

static void test_conflict_node_hex(void **state)
{
    (void)state;
    /* Different nodes and different seconds give different names; the
     * same second gives the same name (ms are not part of it). */
    char a[256], b[256], c[256], d[256];
    mfs_conflict_name(a, sizeof(a), "f.txt", 0xa, 1709618828000ull);
    mfs_conflict_name(b, sizeof(b), "f.txt", 0xb, 1709618828000ull);
    mfs_conflict_name(c, sizeof(c), "f.txt", 0xa, 1709618829000ull);
    mfs_conflict_name(d, sizeof(d), "f.txt", 0xa, 1709618828500ull);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_equal(a, d);
}

static void test_conflict_truncation(void **state)
{
    (void)state;
    char name[MFS_NAME_MAX + 1];
    uint64_t ms = 1709618828000ull;
    /* 255-byte name with a short extension: the stem is shortened, the
     * extension kept, and the result is a valid name. */
    memset(name, 's', MFS_NAME_MAX);
    memcpy(name + MFS_NAME_MAX - 4, ".txt", 4);
    name[MFS_NAME_MAX] = 0;
    char out[MFS_NAME_MAX + 1];
    int n = mfs_conflict_name(out, sizeof(out), name, UINT64_MAX, ms);
    assert_true(n > 0 && n <= MFS_NAME_MAX);
    assert_int_equal(mfs_name_check(out), 0);
    cparts p;
    parse_conflict(out, &p);
    assert_string_equal(p.ext, ".txt");
    assert_true(p.node == UINT64_MAX);
    assert_true(strlen(p.stem) > 0);
    assert_memory_equal(p.stem, name, strlen(p.stem)); /* a prefix */

    /* 255 bytes without an extension. */
    memset(name, 'q', MFS_NAME_MAX);
    name[MFS_NAME_MAX] = 0;
    n = mfs_conflict_name(out, sizeof(out), name, 42, ms);
    assert_true(n > 0 && n <= MFS_NAME_MAX);
    assert_int_equal(mfs_name_check(out), 0);
    parse_conflict(out, &p);
    assert_string_equal(p.ext, "");
    assert_memory_equal(p.stem, name, strlen(p.stem));

    /* Lengths around the limit all produce valid, distinct-by-node names. */
    for (size_t len = 1; len <= MFS_NAME_MAX; len++) {
        memset(name, 'n', len);
        name[len] = 0;
        if (len > 5)
            memcpy(name + len - 3, ".md", 3);
        char o1[MFS_NAME_MAX + 1], o2[MFS_NAME_MAX + 1];
        int n1 = mfs_conflict_name(o1, sizeof(o1), name, 1, ms);
        int n2 = mfs_conflict_name(o2, sizeof(o2), name, 2, ms);
        assert_true(n1 > 0 && n1 <= MFS_NAME_MAX);
        assert_true(n2 > 0 && n2 <= MFS_NAME_MAX);
        assert_int_equal(mfs_name_check(o1), 0);
        assert_string_not_equal(o1, o2);
        assert_string_not_equal(o1, name);
    }
}

static void test_conflict_small_cap(void **state)
{
    (void)state;
    /* Whatever it returns for a too-small buffer, it must not write past
     * it (guard bytes). */
    char buf[64];
    memset(buf, 0x5a, sizeof(buf));
    int n = mfs_conflict_name(buf, 16, "some-file.txt", 1, 0);
    assert_true(n < 0 || n < 16);
    for (size_t i = 16; i < sizeof(buf); i++)
        assert_int_equal((unsigned char)buf[i], 0x5a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_check_valid),
        cmocka_unit_test(test_name_check_invalid),
        cmocka_unit_test(test_conflict_basic),
        cmocka_unit_test(test_conflict_node_hex),
        cmocka_unit_test(test_conflict_truncation),
        cmocka_unit_test(test_conflict_small_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
