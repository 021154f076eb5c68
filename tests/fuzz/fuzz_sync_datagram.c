/*
 * fuzz_sync_datagram.c - libFuzzer target for everything in sync/ that
 * reads untrusted bytes: the datagram path of the core (header, auth,
 * replay, frames, their application to peer state), the frame parser on
 * its own (as if authenticated), and invite tokens.
 *
 * Input byte 0 picks the mode: 0 raw datagram into a live core; 1 the rest
 * is a plaintext payload, sealed with the mesh key and fed to the core, so
 * the fuzzer reaches frame application; 2 frame parser; 3 invite parser;
 * 4 a raw datagram into a core with per-node keys (its handshake: PROBE,
 * ANSWER, INIT, RESP, sealed); 5 the rest as an INIT body behind a right
 * header and mac1, so the fuzzer reaches the Noise message (sync/hs.c,
 * noise.c); 6 the per-node keys token, join proof and member record
 * decoders (sync/invite.c, ident.c).
 * Built with clang -fsanitize=fuzzer,address,undefined when MESHFS_FUZZ is
 * on; otherwise with a small main() that replays files and a seeded batch
 * of random inputs (the CTest smoke run).
 */
#include "core.h"
#include "hs.h"
#include "invite.h"
#include "mesh.h"
#include "wire.h"

#include <sodium.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void nop_tx(void *a, const mfs_addr *to, const uint8_t *b, size_t n)
{
    (void)a, (void)to, (void)b, (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mfs_mesh_key key = {0x1234, {7}};
    static mfs_sync_core *core;
    static uint64_t now = 1000000, pn = 1;
    static mfs_addr from;
    if (!core) {
        mfs_sync_config cfg;
        mfs_sync_config_default(&cfg);
        cfg.tx = nop_tx;
        cfg.max_msg = 1 << 20;
        if (mfs_sync_core_new(&cfg, &key, 1, 1, now, &core))
            abort();
        struct sockaddr_in *a = (struct sockaddr_in *)&from.ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(7000);
        from.len = sizeof(*a);
    }
    static mfs_sync_core *icore; /* per-node keys */
    static mfs_noise_keypair ikey, peer_key;
    static uint8_t imac1[32];
    if (!icore) {
        mfs_sync_config cfg;
        mfs_sync_config_default(&cfg);
        cfg.tx = nop_tx;
        cfg.max_msg = 1 << 20;
        uint8_t sec[32] = {3};
        mfs_noise_keypair_from(&ikey, sec);
        sec[0] = 4;
        mfs_noise_keypair_from(&peer_key, sec);
        if (mfs_sync_core_new(&cfg, &key, 1, 1, now, &icore) ||
            mfs_sync_core_set_identity(icore, &ikey) ||
            mfs_sync_core_member_key(icore, 2, peer_key.pub))
            abort();
        mfs_hs_mac1_key(ikey.pub, imac1);
    }
    if (size < 1)
        return 0;
    now += 1000;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 7) {
    case 0:
        mfs_sync_core_input(core, now, &from, p, n);
        break;
    case 1: {
        uint8_t dg[MFS_WIRE_MAX];
        mfs_wire_hdr h = {MFS_WIRE_VERSION,
                          0,
                          (uint32_t)key.mesh_id,
                          2 + (n ? p[0] % 3 : 0),
                          n > 1 && p[1] & 1 ? 0 : 1,
                          1,
                          pn++};
        if (n > MFS_WIRE_PAYLOAD_MAX)
            n = MFS_WIRE_PAYLOAD_MAX;
        int l = mfs_wire_seal(key.key, &h, p, n, dg);
        if (l > 0)
            mfs_sync_core_input(core, now, &from, dg, (size_t)l);
        break;
    }
    case 2: {
        static mfs_frame fr[MFS_WIRE_MAX_FRAMES];
        mfs_wire_frames_parse(p, n, 1 << 20, fr, MFS_WIRE_MAX_FRAMES);
        break;
    }
    case 3: {
        char tok[512], hp[64];
        struct mfs_mesh_key k;
        if (n >= sizeof(tok))
            n = sizeof(tok) - 1;
        memcpy(tok, p, n);
        tok[n] = 0;
        mfs_invite_parse(tok, &k, hp, sizeof(hp));
        break;
    }
    case 4:
        mfs_sync_core_input(icore, now, &from, p, n);
        break;
    case 5: {
        /* header from node 2 to us, the fuzz bytes as the body, mac1 */
        uint8_t dg[MFS_WIRE_MAX];
        size_t bl = n < MFS_WIRE_MAX - MFS_WIRE_HDR - 32
                        ? n
                        : MFS_WIRE_MAX - MFS_WIRE_HDR - 32;
        mfs_wire_hdr h = {MFS_WIRE_VERSION_ID,
                          MFS_WIRE_INIT,
                          (uint32_t)key.mesh_id,
                          2,
                          1,
                          1,
                          0};
        mfs_wire_hdr_encode(&h, dg);
        memcpy(dg + MFS_WIRE_HDR, p, bl);
        size_t at = MFS_WIRE_HDR + bl;
        crypto_generichash(dg + at, 16, dg, at, imac1, 32);
        memset(dg + at + 16, 0, 16);
        mfs_sync_core_input(icore, now, &from, dg, at + 32);
        break;
    }
    case 6: {
        char tok[512];
        mfs_invite iv;
        mfs_member_rec rec;
        uint8_t id[MFS_INVITE_ID_LEN], pk[32];
        if (n >= sizeof(tok))
            n = sizeof(tok) - 1;
        memcpy(tok, p, n);
        tok[n] = 0;
        mfs_invite2_parse(tok, &iv);
        mfs_join_parse(p, n, id, pk);
        mfs_join_check(p, n, pk, 1, 2);
        mfs_member_rec_parse(p, n, &rec);
        break;
    }
    }
    mfs_sync_core_tick(core, now);
    mfs_sync_core_tick(icore, now);
    return 0;
}

#ifndef MFS_LIBFUZZER
/* Replay driver: argv files, then N seeded random and mutated inputs. */
int main(int argc, char **argv)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    const char *e = getenv("MESHFS_SEED");
    if (e)
        s = strtoull(e, NULL, 10) | 1;
    printf("fuzz smoke seed %llu\n", (unsigned long long)s);
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        uint8_t buf[4096];
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    static uint8_t buf[1500];
    for (int i = 0; i < 200000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t n = s % sizeof(buf);
        for (size_t j = 0; j < n; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            buf[j] = (uint8_t)s;
        }
        if (n > 1 && (s >> 8) % 3 == 0) { /* plausible frame starts */
            buf[1] = (uint8_t)(1 + (s >> 16) % 4);
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz smoke: 200000 inputs, no crash\n");
    return 0;
}
#endif
