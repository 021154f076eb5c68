/*
 * log.c - the one logging sink. Never allocates on the heap and never fails
 * the caller: a message that cannot be written is dropped.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_int log_level = -1;
static atomic_int log_syslog;
static void (*_Atomic log_sink)(int level, const char *msg);

void mfs_log_set_sink(void (*sink)(int level, const char *msg))
{
    atomic_store(&log_sink, sink);
}

void mfs_log_set_level(int level)
{
    atomic_store(&log_level, level);
}

void mfs_log_to_syslog(const char *ident)
{
    openlog(ident, LOG_PID, LOG_DAEMON);
    atomic_store(&log_syslog, 1);
}

void mfs_log(int level, const char *fmt, ...)
{
    int max = atomic_load(&log_level);
    if (max < 0) {
        max = getenv("MESHFS_DEBUG") ? LOG_DEBUG : LOG_NOTICE;
        atomic_store(&log_level, max);
    }
    if (level > max)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    void (*sink)(int, const char *) = atomic_load(&log_sink);
    if (sink) {
        sink(level & 7, msg);
        return;
    }
    if (atomic_load(&log_syslog)) {
        syslog(level, "%s", msg);
        return;
    }
    static const char *names[] = {"emerg",   "alert",  "crit", "error",
                                  "warning", "notice", "info", "debug"};
    fprintf(stderr, "meshfs: %s: %s\n", names[level & 7], msg);
}
