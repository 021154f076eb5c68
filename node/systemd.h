/*
 * systemd.h - living under systemd (node/systemd.c): readiness, stopping
 * and the watchdog through sd_notify (no-ops without NOTIFY_SOCKET), and
 * the journal's priorities and fields when stderr is connected to it.
 */
#ifndef MFS_NODE_SYSTEMD_H
#define MFS_NODE_SYSTEMD_H

#include <stdint.h>

/* With stderr the journal's stream: log lines go to the journal with their
 * priority and fields from now on. 1 if so, 0 not the journal. */
int mfs_systemd_journal(const char *store, const char *mount, uint64_t node);
/* READY=1 (the mount answers) / STOPPING=1, with STATUS=status. */
void mfs_systemd_ready(const char *status);
void mfs_systemd_stopping(const char *status);
/* With WATCHDOG_USEC for us: a thread pings every half period while the
 * mount answers a statfs. 1 started, 0 no watchdog, -errno. */
int mfs_systemd_watchdog(const char *mount);

#endif
