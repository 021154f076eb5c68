/*
 * test_fs_acl.c - fs/acl.c: an access ACL and the mode's permission bits
 * stay two views of one thing (cp -a and setfacl set modes through ACLs on
 * a file system without kernel ACL support), and malformed ACLs are refused
 * as setxattr(2) refuses them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs.h"

#include <errno.h>
#include <string.h>

/* Builds an ACL xattr: version 2, then (tag, perm, id) entries. */
static size_t acl_build(uint8_t *out, const uint16_t (*e)[2], size_t n)
{
    out[0] = 2;
    out[1] = out[2] = out[3] = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = out + 4 + 8 * i;
        p[0] = (uint8_t)e[i][0];
        p[1] = (uint8_t)(e[i][0] >> 8);
        p[2] = (uint8_t)e[i][1];
        p[3] = 0;
        memset(p + 4, e[i][0] == 0x02 || e[i][0] == 0x08 ? 0x10 : 0xff, 4);
    }
    return 4 + 8 * n;
}

static void test_minimal_acl_is_a_mode(void **state)
{
    /* what cp -a sends for a 0644 file */
    const uint16_t e[][2] = {{0x01, 6}, {0x04, 4}, {0x20, 4}};
    uint8_t buf[64];
    size_t n = acl_build(buf, e, 3);
    uint32_t perm = 0;
    int equiv = 0;
    assert_int_equal(mfs_fs_acl_to_mode(buf, n, &perm, &equiv), 0);
    assert_int_equal(perm, 0644);
    assert_int_equal(equiv, 1);
}

static void test_extended_acl_group_bits_are_the_mask(void **state)
{
    const uint16_t e[][2] = {
        {0x01, 7}, {0x02, 6}, {0x04, 4}, {0x10, 5}, {0x20, 1}};
    uint8_t buf[64];
    size_t n = acl_build(buf, e, 5);
    uint32_t perm = 0;
    int equiv = 1;
    assert_int_equal(mfs_fs_acl_to_mode(buf, n, &perm, &equiv), 0);
    assert_int_equal(perm, 0751);
    assert_int_equal(equiv, 0);
    /* chmod 0604 rewrites owner, mask and other; the named entry stays */
    assert_int_equal(mfs_fs_acl_chmod(buf, n, 0100604), 0);
    assert_int_equal(mfs_fs_acl_to_mode(buf, n, &perm, &equiv), 0);
    assert_int_equal(perm, 0604);
    assert_int_equal(buf[4 + 8 * 1 + 2], 6); /* user:N:rw- unchanged */
    assert_int_equal(buf[4 + 8 * 2 + 2], 4); /* group:: unchanged */
}

static void test_malformed(void **state)
{
    uint8_t buf[64];
    uint32_t perm;
    int equiv;
    const uint16_t no_other[][2] = {{0x01, 6}, {0x04, 4}};
    size_t n = acl_build(buf, no_other, 2);
    assert_int_equal(mfs_fs_acl_to_mode(buf, n, &perm, &equiv), -EINVAL);
    const uint16_t named_no_mask[][2] = {
        {0x01, 6}, {0x02, 6}, {0x04, 4}, {0x20, 4}};
    n = acl_build(buf, named_no_mask, 4);
    assert_int_equal(mfs_fs_acl_to_mode(buf, n, &perm, &equiv), -EINVAL);
    const uint16_t bad_perm[][2] = {{0x01, 9}, {0x04, 4}, {0x20, 4}};
    n = acl_build(buf, bad_perm, 3);
    assert_int_equal(mfs_fs_acl_to_mode(buf, n, &perm, &equiv), -EINVAL);
    const uint16_t ok[][2] = {{0x01, 6}, {0x04, 4}, {0x20, 4}};
    n = acl_build(buf, ok, 3);
    assert_int_equal(mfs_fs_acl_to_mode(buf, n - 1, &perm, &equiv), -EINVAL);
    assert_int_equal(mfs_fs_acl_to_mode(buf, 3, &perm, &equiv), -EINVAL);
    buf[0] = 1; /* wrong version */
    assert_int_equal(mfs_fs_acl_to_mode(buf, n, &perm, &equiv), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_acl_is_a_mode),
        cmocka_unit_test(test_extended_acl_group_bits_are_the_mask),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
