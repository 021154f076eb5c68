/*
 * acks.c - write concern (DESIGN P10): fsync waits for N members to hold
 * the change durably. (Being written: skeleton.)
 */
#include "node.h"

#include <errno.h>

void mfs_node_acks_attach(mfs_node *m, struct mfs_fs *fs,
                          const mfs_acks_config *cfg)
{
    (void)m, (void)fs, (void)cfg;
}

void mfs_node_acks_detach(mfs_node *m) { (void)m; }

int mfs_node_own_seq(mfs_node *m, uint64_t *seq)
{
    (void)m;
    *seq = 0;
    return -ENOSYS;
}

void mfs_node_acks_ask(mfs_node *m, uint64_t seq) { (void)m, (void)seq; }

size_t mfs_node_acks_held(mfs_node *m, mfs_node_held *out, size_t max)
{
    (void)m, (void)out, (void)max;
    return 0;
}
