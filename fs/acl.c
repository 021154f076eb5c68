/*
 * acl.c - the little of POSIX ACLs that a file system without kernel ACL
 * support (no FUSE_CAP_POSIX_ACL) must still get right: an access ACL and
 * the mode's permission bits are two views of one thing.
 *
 * Setting system.posix_acl_access updates the mode (owner = USER_OBJ,
 * group = MASK or GROUP_OBJ, other = OTHER), and an ACL equivalent to a
 * mode is not stored at all (as on ext4: tools such as cp -a set modes this
 * way). chmod rewrites the same entries of a stored ACL. Pure functions on
 * the xattr bytes (little-endian, version 2, 8-byte entries); no FUSE, no
 * store.
 */
#include "fs.h"

#include <errno.h>
#include <string.h>

#define ACL_VERSION 2
#define TAG_USER_OBJ 0x01
#define TAG_USER 0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP 0x08
#define TAG_MASK 0x10
#define TAG_OTHER 0x20

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

int mfs_fs_acl_to_mode(const void *value, size_t size, uint32_t *perm,
                       int *equiv)
{
    const uint8_t *v = value;
    if (size < 4 || (size - 4) % 8 != 0 || le32(v) != ACL_VERSION)
        return -EINVAL;
    size_t n = (size - 4) / 8;
    int have_user = 0, have_group = 0, have_other = 0, have_mask = 0;
    int extended = 0;
    uint32_t u = 0, g = 0, o = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = v + 4 + 8 * i;
        uint16_t tag = le16(e), p = le16(e + 2);
        if (p & ~7u)
            return -EINVAL;
        switch (tag) {
        case TAG_USER_OBJ:
            have_user++;
            u = p;
            break;
        case TAG_GROUP_OBJ:
            have_group++;
            g = p;
            break;
        case TAG_OTHER:
            have_other++;
            o = p;
            break;
        case TAG_MASK:
            have_mask++;
            m = p;
            break;
        case TAG_USER:
        case TAG_GROUP:
            extended = 1;
            break;
        default:
            return -EINVAL;
        }
    }
    if (have_user != 1 || have_group != 1 || have_other != 1 || have_mask > 1 ||
        (extended && !have_mask))
        return -EINVAL;
    *perm = u << 6 | (have_mask ? m : g) << 3 | o;
    *equiv = !extended && !have_mask;
    return 0;
}

int mfs_fs_acl_chmod(void *value, size_t size, uint32_t mode)
{
    uint8_t *v = value;
    uint32_t perm;
    int equiv;
    int r = mfs_fs_acl_to_mode(value, size, &perm, &equiv);
    if (r < 0)
        return r;
    size_t n = (size - 4) / 8;
    int have_mask = 0;
    for (size_t i = 0; i < n; i++)
        if (le16(v + 4 + 8 * i) == TAG_MASK)
            have_mask = 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = v + 4 + 8 * i;
        uint16_t tag = le16(e);
        if (tag == TAG_USER_OBJ)
            put16(e + 2, (uint16_t)((mode >> 6) & 7));
        else if (tag == TAG_OTHER)
            put16(e + 2, (uint16_t)(mode & 7));
        else if (tag == (have_mask ? TAG_MASK : TAG_GROUP_OBJ))
            put16(e + 2, (uint16_t)((mode >> 3) & 7));
    }
    return 0;
}
