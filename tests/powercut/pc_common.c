/*
 * pc_common.c - see pc_common.h. Shared by pc_workload and pc_check; only
 * the public store API (store.h). It must never write to a store: the
 * checker's verdicts rest on these reads seeing the store as it is.
 */
#include "pc_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t pc_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int pc_note_format(char *buf, size_t cap, const pc_note_msg *m)
{
    int n = -1;
    switch (m->kind) {
    case PC_NOTE_OP:
        n = snprintf(buf, cap, "OP %" PRIu64 " %s %d", m->seq, m->what,
                     m->ntouched);
        for (int i = 0; i < m->ntouched && n >= 0 && (size_t)n < cap; i++)
            n += snprintf(buf + n, cap - (size_t)n, " %s", m->touched[i]);
        break;
    case PC_NOTE_ACK_FILE:
        n = snprintf(buf, cap, "ACK FILE %s %" PRIu64 " %016" PRIx64, m->path,
                     m->size, m->hash);
        break;
    case PC_NOTE_ACK_NAME:
        n = snprintf(buf, cap, "ACK NAME %s", m->path);
        break;
    case PC_NOTE_ACK_TREE:
        n = snprintf(buf, cap, "ACK TREE %016" PRIx64, m->hash);
        break;
    case PC_NOTE_START:
        n = snprintf(buf, cap, "START %" PRIu64 " %" PRIu64, m->seed,
                     m->window);
        break;
    case PC_NOTE_ACK_HELD:
        n = snprintf(buf, cap,
                     "ACK HELD %016" PRIx64 " %" PRIu64 " %016" PRIx64,
                     m->origin, m->seq, m->limit);
        break;
    }
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Copies the next space-separated word of [*p, end) into w (cap bytes). */
static int word(const char **p, const char *end, char *w, size_t cap)
{
    while (*p < end && **p == ' ')
        (*p)++;
    size_t n = 0;
    while (*p < end && **p != ' ') {
        if (n + 1 >= cap)
            return -1;
        w[n++] = *(*p)++;
    }
    w[n] = '\0';
    return n ? 0 : -1;
}

static int word_u64(const char **p, const char *end, int base, uint64_t *v)
{
    char w[32], *e;
    if (word(p, end, w, sizeof(w)))
        return -1;
    errno = 0;
    unsigned long long x = strtoull(w, &e, base);
    if (errno || *e)
        return -1;
    *v = x;
    return 0;
}

int pc_note_parse(const char *text, size_t len, pc_note_msg *m)
{
    const char *p = text, *end = text + len;
    char w[PC_PATH_MAX];
    memset(m, 0, sizeof(*m));
    if (word(&p, end, w, sizeof(w)))
        return -1;
    if (strcmp(w, "OP") == 0) {
        uint64_t nt;
        m->kind = PC_NOTE_OP;
        if (word_u64(&p, end, 10, &m->seq) ||
            word(&p, end, m->what, sizeof(m->what)) ||
            word_u64(&p, end, 10, &nt) || nt > PC_TOUCH_MAX)
            return -1;
        m->ntouched = (int)nt;
        for (int i = 0; i < m->ntouched; i++)
            if (word(&p, end, m->touched[i], sizeof(m->touched[i])))
                return -1;
    } else if (strcmp(w, "ACK") == 0) {
        if (word(&p, end, w, sizeof(w)))
            return -1;
        if (strcmp(w, "FILE") == 0) {
            m->kind = PC_NOTE_ACK_FILE;
            if (word(&p, end, m->path, sizeof(m->path)) ||
                word_u64(&p, end, 10, &m->size) ||
                word_u64(&p, end, 16, &m->hash))
                return -1;
        } else if (strcmp(w, "NAME") == 0) {
            m->kind = PC_NOTE_ACK_NAME;
            if (word(&p, end, m->path, sizeof(m->path)))
                return -1;
        } else if (strcmp(w, "TREE") == 0) {
            m->kind = PC_NOTE_ACK_TREE;
            if (word_u64(&p, end, 16, &m->hash))
                return -1;
        } else if (strcmp(w, "HELD") == 0) {
            m->kind = PC_NOTE_ACK_HELD;
            if (word_u64(&p, end, 16, &m->origin) ||
                word_u64(&p, end, 10, &m->seq) ||
                word_u64(&p, end, 16, &m->limit))
                return -1;
        } else {
            return -1;
        }
    } else if (strcmp(w, "START") == 0) {
        m->kind = PC_NOTE_START;
        if (word_u64(&p, end, 10, &m->seed) ||
            word_u64(&p, end, 10, &m->window))
            return -1;
    } else {
        return -1;
    }
    return word(&p, end, w, sizeof(w)) == 0 ? -1 : 0; /* nothing after */
}

int pc_name_covers(const char *name, const char *path)
{
    size_t n = strlen(name);
    return strncmp(name, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int pc_path_lookup(mfs_store *s, const char *path, mfs_attr *out)
{
    char comp[MFS_NAME_MAX + 1];
    uint64_t at = MFS_ROOT_INO;
    int rc = mfs_store_getattr(s, at, out);
    const char *p = path;
    while (rc == 0 && *p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n > MFS_NAME_MAX)
            return -EINVAL;
        memcpy(comp, p, n);
        comp[n] = '\0';
        rc = mfs_store_lookup(s, at, comp, out);
        at = out->ino;
        p += n + (slash ? 1 : 0);
    }
    return rc;
}

int pc_file_hash(mfs_store *s, uint64_t ino, uint64_t size, uint64_t *hash)
{
    static const size_t step = 1 << 16;
    unsigned char *buf = malloc(step);
    if (!buf)
        return -ENOMEM;
    uint64_t h = PC_HASH_INIT, off = 0;
    int rc = 0;
    while (off < size) {
        size_t want = size - off < step ? (size_t)(size - off) : step;
        ssize_t n = mfs_store_read(s, ino, off, buf, want);
        if (n <= 0) {
            rc = n < 0 ? (int)n : -EIO;
            break;
        }
        h = pc_hash(h, buf, (size_t)n);
        off += (uint64_t)n;
    }
    free(buf);
    *hash = h;
    return rc;
}

typedef struct dumpbuf {
    char *text;
    size_t len, cap;
    int err;
} dumpbuf;

static void dump_line(void *arg, const char *line)
{
    dumpbuf *d = arg;
    size_t n = strlen(line);
    if (d->err)
        return;
    if (d->len + n + 2 > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4096;
        while (cap < d->len + n + 2)
            cap *= 2;
        char *t = realloc(d->text, cap);
        if (!t) {
            d->err = -ENOMEM;
            return;
        }
        d->text = t;
        d->cap = cap;
    }
    memcpy(d->text + d->len, line, n);
    d->len += n;
    d->text[d->len++] = '\n';
    d->text[d->len] = '\0';
}

int pc_dump(mfs_store *s, char **text, size_t *len, uint64_t *hash)
{
    dumpbuf d = {0};
    int rc = mfs_store_dump(s, dump_line, &d);
    if (!rc)
        rc = d.err;
    if (rc) {
        free(d.text);
        return rc;
    }
    if (!d.text)
        d.text = calloc(1, 1);
    if (!d.text)
        return -ENOMEM;
    *text = d.text;
    *len = d.len;
    *hash = pc_hash(PC_HASH_INIT, d.text, d.len);
    return 0;
}
