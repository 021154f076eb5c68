/*
 * log.h - mfs_log(): one logging call for every layer, syslog levels.
 * Messages say what failed, on which object, and what happens next.
 * Thread-safe. Goes to stderr until mfs_log_to_syslog() is called.
 */
#ifndef MFS_LOG_H
#define MFS_LOG_H

#include <syslog.h>

void mfs_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Messages above this level are dropped (default LOG_NOTICE; LOG_DEBUG when
 * MESHFS_DEBUG is set in the environment). */
void mfs_log_set_level(int level);
/* From now on log to syslog with this identity (daemon mode). */
void mfs_log_to_syslog(const char *ident);
/* From now on every message that passes the level goes to sink (the
 * journal: node/systemd.c) instead; NULL goes back. */
void mfs_log_set_sink(void (*sink)(int level, const char *msg));

#endif
