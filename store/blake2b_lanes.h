/* store/blake2b_lanes.h - BLAKE2b-256 of several inputs at once, one per
 * SIMD lane (included by blake2b.c, once per instruction set; see there).
 *
 * The includer defines LANES (u64 lanes in a vector), VEC (the vector
 * type), ATTR (the function's target attribute), LANES_FN (the function's
 * name) and the vector operations V_LOAD, V_STORE, V_SET1, V_ADD, V_XOR,
 * V_GATHER (word w of the 128-byte block at each lane's address) and
 * V_ROR32/24/16/63, all undefined again at the end. The lanes run in lock step, one 128-byte block each a
 * step: a lane whose input ends takes the next input, longest first, so
 * that the lanes finish close together. State lives in arrays between the
 * steps (a load and a store a block, next to twelve rounds) so that
 * handing a lane a new input is plain scalar code.
 */

#define LG(r, i, a, b, c, d)                                                   \
    do {                                                                       \
        a = V_ADD(V_ADD(a, b), m[sigma[r][2 * (i)]]);                          \
        d = V_ROR32(V_XOR(d, a));                                              \
        c = V_ADD(c, d);                                                       \
        b = V_ROR24(V_XOR(b, c));                                              \
        a = V_ADD(V_ADD(a, b), m[sigma[r][2 * (i) + 1]]);                      \
        d = V_ROR16(V_XOR(d, a));                                              \
        c = V_ADD(c, d);                                                       \
        b = V_ROR63(V_XOR(b, c));                                              \
    } while (0)

#define LROUND(r)                                                              \
    do {                                                                       \
        LG(r, 0, v[0], v[4], v[8], v[12]);                                     \
        LG(r, 1, v[1], v[5], v[9], v[13]);                                     \
        LG(r, 2, v[2], v[6], v[10], v[14]);                                    \
        LG(r, 3, v[3], v[7], v[11], v[15]);                                    \
        LG(r, 4, v[0], v[5], v[10], v[15]);                                    \
        LG(r, 5, v[1], v[6], v[11], v[12]);                                    \
        LG(r, 6, v[2], v[7], v[8], v[13]);                                     \
        LG(r, 7, v[3], v[4], v[9], v[14]);                                     \
    } while (0)

/* One compression in every lane: block at addr[l], counter t[l], final
 * block where f[l] is all ones. */
ATTR static void LANES_COMPRESS(uint64_t h[8][LANES],
                                const uint64_t addr[LANES],
                                const uint64_t t[LANES],
                                const uint64_t f[LANES])
{
    VEC a = V_LOAD(addr), m[16], v[16];
    for (int w = 0; w < 16; w++)
        m[w] = V_GATHER(a, w);
    for (int i = 0; i < 8; i++) {
        v[i] = V_LOAD(h[i]);
        v[i + 8] = V_SET1(iv[i]);
    }
    v[12] = V_XOR(v[12], V_LOAD(t));
    v[14] = V_XOR(v[14], V_LOAD(f));
    LROUND(0);
    LROUND(1);
    LROUND(2);
    LROUND(3);
    LROUND(4);
    LROUND(5);
    LROUND(6);
    LROUND(7);
    LROUND(8);
    LROUND(9);
    LROUND(10);
    LROUND(11);
    for (int i = 0; i < 8; i++)
        V_STORE(h[i], V_XOR(V_LOAD(h[i]), V_XOR(v[i], v[i + 8])));
}

/* lane l takes input i */
#define LANE_START(l, i)                                                       \
    do {                                                                       \
        who[l] = (i);                                                          \
        p[l] = data[who[l]];                                                   \
        rem[l] = len[who[l]];                                                  \
        t[l] = 0;                                                              \
        for (int k = 0; k < 8; k++)                                            \
            h[k][l] = h0[k];                                                   \
    } while (0)

/* out + 32 i = BLAKE2b-256(data[i][0..len[i])) for i < n (n <= MANY_MAX),
 * inputs taken in the order ord gives (longest first). */
ATTR static void LANES_FN(uint8_t *out, const uint8_t *const *data,
                          const size_t *len, const size_t *ord, size_t n)
{
    static const uint8_t zero[128];
    uint8_t pad[LANES][128];
    uint64_t h[8][LANES], addr[LANES], t[LANES], f[LANES];
    const uint8_t *p[LANES];
    size_t rem[LANES], who[LANES], next = 0, live = 0;
    for (int l = 0; l < LANES; l++) {
        who[l] = SIZE_MAX;
        if (next < n) {
            LANE_START(l, ord[next++]);
            live++;
        }
    }
    while (live) {
        for (int l = 0; l < LANES; l++) {
            f[l] = 0;
            if (who[l] == SIZE_MAX) {
                addr[l] = (uint64_t)(uintptr_t)zero;
            } else if (rem[l] > 128) {
                addr[l] = (uint64_t)(uintptr_t)p[l];
                p[l] += 128;
                rem[l] -= 128;
                t[l] += 128;
            } else { /* the last block (or an empty input's), padded */
                memset(pad[l], 0, sizeof pad[l]);
                if (rem[l])
                    memcpy(pad[l], p[l], rem[l]);
                t[l] += rem[l];
                rem[l] = 0;
                addr[l] = (uint64_t)(uintptr_t)pad[l];
                f[l] = ~0ULL;
            }
        }
        LANES_COMPRESS(h, addr, t, f);
        for (int l = 0; l < LANES; l++) {
            if (!f[l])
                continue;
            for (int i = 0; i < 4; i++)
                store64(out + who[l] * MFS_BLAKE2B256_LEN + 8 * i, h[i][l]);
            who[l] = SIZE_MAX;
            if (next < n)
                LANE_START(l, ord[next++]);
            else
                live--;
        }
    }
}

#undef LANE_START
#undef LG
#undef LROUND
#undef LANES
#undef VEC
#undef ATTR
#undef LANES_FN
#undef LANES_COMPRESS
#undef V_LOAD
#undef V_STORE
#undef V_SET1
#undef V_ADD
#undef V_XOR
#undef V_GATHER
#undef V_ROR32
#undef V_ROR24
#undef V_ROR16
#undef V_ROR63
