/*
 * names.c - validity of path components and the conflict-copy name format
 * shared by every replica: "<stem>.conflict-<node>-<YYYYMMDD-HHMMSS><.ext>".
 * Pure functions; must stay byte-for-byte stable, since every replica has to
 * derive the same names.
 */
#include "kv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int name_check_n(const char *name, size_t n)
{
    if (n == 0)
        return -EINVAL;
    if (n > MFS_NAME_MAX)
        return -ENAMETOOLONG;
    if ((n == 1 && name[0] == '.') ||
        (n == 2 && name[0] == '.' && name[1] == '.'))
        return -EINVAL;
    if (memchr(name, '/', n) || memchr(name, '\0', n))
        return -EINVAL;
    return 0;
}

int mfs_name_check(const char *name)
{
    size_t n = strnlen(name, MFS_NAME_MAX + 1);
    return name_check_n(name, n);
}

int mfs_conflict_name(char *out, size_t cap, const char *name, uint64_t node,
                      uint64_t unix_ms)
{
    size_t n = strlen(name);
    /* The extension is the last ".xxx" that is not the whole name's start. */
    const char *dot = strrchr(name, '.');
    size_t stem = (dot && dot != name) ? (size_t)(dot - name) : n;
    const char *ext = name + stem;
    size_t extlen = n - stem;

    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char mid[64];
    int midlen = snprintf(
        mid, sizeof(mid), ".conflict-%016llx-%04d%02d%02d-%02d%02d%02d",
        (unsigned long long)node, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
        tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (extlen > 32) { /* a long "extension" is part of the stem */
        stem = n;
        ext = name + n;
        extlen = 0;
    }
    size_t room = MFS_NAME_MAX - (size_t)midlen - extlen;
    if (stem > room)
        stem = room;
    if (cap < stem + (size_t)midlen + extlen + 1)
        return -ERANGE;
    memcpy(out, name, stem);
    memcpy(out + stem, mid, (size_t)midlen);
    memcpy(out + stem + midlen, ext, extlen);
    out[stem + midlen + extlen] = 0;
    return (int)(stem + midlen + extlen);
}
