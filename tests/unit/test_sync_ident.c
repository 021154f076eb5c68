/*
 * test_sync_ident.c - a node's identity and invitations (sync/ident.c,
 * sync/invite.c): the node key file (0600, refused when others may read
 * it, a damaged one refused), its X25519 form, member records and their
 * signatures, invitation tokens (every truncation and bit flip refused),
 * join proofs, and the invitations file (uses, expiry, revocation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "invite.h"
#include "testutil.h"

static void test_node_key(void **state)
{
    (void)state;
    char dir[] = "/tmp/mfs-ident-XXXXXX";
    assert_non_null(mkdtemp(dir));
    mfs_ident a, b;
    assert_int_equal(mfs_ident_load(dir, &a), -ENOENT);
    assert_int_equal(mfs_ident_create(dir, 42), 0);
    assert_int_equal(mfs_ident_create(dir, 42), -EEXIST);
    assert_int_equal(mfs_ident_load(dir, &a), 0);
    assert_int_equal(a.node, 42);
    assert_int_equal(mfs_ident_load(dir, &b), 0);
    assert_memory_equal(a.pk, b.pk, 32);
    /* the handshake's key is the X25519 form of the signing key */
    uint8_t x[32];
    assert_int_equal(mfs_ident_dh_pub(a.pk, x), 0);
    assert_memory_equal(x, a.dh.pub, 32);
    char fpr[MFS_IDENT_FPR_LEN];
    mfs_ident_fingerprint(a.pk, fpr);
    assert_int_equal(strlen(fpr), 19);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, MFS_IDENT_FILE);
    chmod(path, 0640);
    assert_int_equal(mfs_ident_load(dir, &b), -EPERM);
    chmod(path, 0600);
    FILE *f = fopen(path, "r+");
    fputc('X', f);
    fclose(f);
    assert_int_equal(mfs_ident_load(dir, &b), -EBADMSG);
    truncate(path, 10);
    assert_int_equal(mfs_ident_load(dir, &b), -EBADMSG);
    unlink(path);

    /* member records: made, parsed, signed by the admitter only */
    mfs_ident c;
    assert_int_equal(mfs_ident_create(dir, 7), 0);
    assert_int_equal(mfs_ident_load(dir, &c), 0);
    mfs_member_rec r = {.mesh_id = 99, .node = 42, .by = 7}, r2;
    memcpy(r.pk, a.pk, 32);
    uint8_t rec[MFS_MEMBER_REC_LEN];
    mfs_member_rec_make(&r, &c, rec);
    assert_int_equal(mfs_member_rec_parse(rec, sizeof rec, &r2), 0);
    assert_memory_equal(&r, &r2, sizeof r);
    assert_int_equal(mfs_member_rec_verify(rec, sizeof rec, c.pk), 0);
    assert_int_equal(mfs_member_rec_verify(rec, sizeof rec, a.pk), -EBADMSG);
    for (size_t i = 0; i < sizeof rec; i++) {
        rec[i] ^= 4;
        assert_int_equal(mfs_member_rec_verify(rec, sizeof rec, c.pk),
                         -EBADMSG);
        rec[i] ^= 4;
    }
    assert_int_equal(mfs_member_rec_parse(rec, sizeof rec - 1, &r2), -EBADMSG);
    unlink(path);
    rmdir(dir);
}

static void test_tokens_and_proofs(void **state)
{
    (void)state;
    mfs_invite iv = {.mesh_id = 0x1122334455667788ull, .by = 5}, back;
    randombytes_buf(iv.by_pk, 32);
    randombytes_buf(iv.id, sizeof iv.id);
    randombytes_buf(iv.secret, 32);
    strcpy(iv.host_port, "10.1.2.3:7410");
    char tok[MFS_INVITE2_MAX];
    int n = mfs_invite2_format(&iv, tok, sizeof tok);
    assert_true(n > 0 && (size_t)n < sizeof tok);
    assert_int_equal(mfs_invite2_parse(tok, &back), 0);
    assert_memory_equal(&iv, &back, sizeof iv);
    /* every truncation and every changed character is refused */
    for (int i = 0; i < n; i++) {
        char t[MFS_INVITE2_MAX];
        memcpy(t, tok, (size_t)n + 1);
        t[i] = 0;
        assert_int_equal(mfs_invite2_parse(t, &back), -EINVAL);
        memcpy(t, tok, (size_t)n + 1);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_int_equal(mfs_invite2_parse(t, &back), -EINVAL);
    }
    /* a mesh key token is not one */
    assert_int_equal(mfs_invite2_parse("mfs1.AAAA", &back), -EINVAL);
    strcpy(iv.host_port, "");
    assert_int_equal(mfs_invite2_format(&iv, tok, sizeof tok), -EINVAL);

    /* proofs: bound to the secret, the mesh, the node and its key */
    uint8_t pk[32], j[MFS_JOIN_LEN], id[16], pk2[32];
    randombytes_buf(pk, 32);
    mfs_join_make(&iv, 77, pk, j);
    assert_int_equal(mfs_join_parse(j, sizeof j, id, pk2), 0);
    assert_memory_equal(id, iv.id, 16);
    assert_memory_equal(pk2, pk, 32);
    assert_int_equal(mfs_join_check(j, sizeof j, iv.secret, iv.mesh_id, 77), 0);
    assert_int_equal(mfs_join_check(j, sizeof j, iv.secret, iv.mesh_id, 78),
                     -EACCES);
    assert_int_equal(mfs_join_check(j, sizeof j, iv.secret, iv.mesh_id + 1, 77),
                     -EACCES);
    j[20] ^= 1; /* another key */
    assert_int_equal(mfs_join_check(j, sizeof j, iv.secret, iv.mesh_id, 77),
                     -EACCES);
    j[20] ^= 1;
    uint8_t other[32] = {1};
    assert_int_equal(mfs_join_check(j, sizeof j, other, iv.mesh_id, 77),
                     -EACCES);
    assert_int_equal(mfs_join_check(j, sizeof j - 1, iv.secret, iv.mesh_id, 77),
                     -EACCES);
}

static void test_invitations_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/mfs-invites-XXXXXX";
    assert_non_null(mkdtemp(dir));
    mfs_invite_rec a = {.created = 1000, .expires = 2000, .uses = 2}, b, got;
    randombytes_buf(a.id, 16);
    randombytes_buf(a.secret, 32);
    b = a;
    randombytes_buf(b.id, 16);
    b.uses = 1;
    b.expires = 1500;
    assert_int_equal(mfs_invites_add(dir, &a), 0);
    assert_int_equal(mfs_invites_add(dir, &b), 0);
    mfs_invite_rec v[4];
    assert_int_equal(mfs_invites_list(dir, 1100, v, 4), 2);
    assert_int_equal(mfs_invites_list(dir, 1600, v, 4), 1); /* b expired */
    /* a's two uses, then no more */
    assert_int_equal(mfs_invites_take(dir, a.id, 1100, &got), 0);
    assert_memory_equal(got.secret, a.secret, 32);
    assert_int_equal(mfs_invites_take(dir, a.id, 1100, &got), 0);
    assert_int_equal(mfs_invites_take(dir, a.id, 1100, &got), -ENOENT);
    /* given back (a proof that did not check): one more */
    assert_int_equal(mfs_invites_give_back(dir, &got), 0);
    assert_int_equal(mfs_invites_take(dir, a.id, 1100, &got), 0);
    assert_int_equal(mfs_invites_take(dir, a.id, 1100, &got), -ENOENT);
    /* b expired at 1500: said so (not listed) for a week, then forgotten */
    assert_int_equal(mfs_invites_take(dir, b.id, 1600, &got), -ETIMEDOUT);
    assert_int_equal(mfs_invites_take(dir, b.id, 1700, &got), -ETIMEDOUT);
    assert_int_equal(mfs_invites_list(dir, 1600, v, 4), 0);
    assert_int_equal(mfs_invites_list(dir, 1500 + 7 * 86400, v, 4), 0);
    assert_int_equal(mfs_invites_take(dir, b.id, 1600, &got), -ENOENT);
    /* revocation by id prefix */
    mfs_invite_rec c = a;
    randombytes_buf(c.id, 16);
    assert_int_equal(mfs_invites_add(dir, &c), 0);
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, c.id, 16);
    hex[8] = 0;
    assert_int_equal(mfs_invites_revoke(dir, hex), 1);
    assert_int_equal(mfs_invites_revoke(dir, hex), 0);
    assert_int_equal(mfs_invites_take(dir, c.id, 1100, &got), -ENOENT);
    assert_int_equal(mfs_invites_list(dir, 1100, v, 4), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, MFS_INVITES_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s.lock", dir, MFS_INVITES_FILE);
    unlink(path);

    /* the joiner's file */
    mfs_joining j = {.by = 0xabcdefull}, j2;
    randombytes_buf(j.by_pk, 32);
    randombytes_buf(j.join, sizeof j.join);
    strcpy(j.host_port, "[fd00::1]:7410");
    assert_int_equal(mfs_joining_read(dir, &j2), -ENOENT);
    assert_int_equal(mfs_joining_write(dir, &j), 0);
    assert_int_equal(mfs_joining_read(dir, &j2), 0);
    assert_memory_equal(&j, &j2, sizeof j);
    assert_int_equal(mfs_joining_remove(dir), 0);
    assert_int_equal(mfs_joining_read(dir, &j2), -ENOENT);
    rmdir(dir);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_key),
        cmocka_unit_test(test_tokens_and_proofs),
        cmocka_unit_test(test_invitations_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
