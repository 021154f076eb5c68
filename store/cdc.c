/* store/cdc.c - content-defined chunk boundaries (see cdc.h).
 *
 * FastCDC (Xia et al., 2016 and 2020): a gear hash h = 2h + G[byte] over
 * the bytes since the chunk's start, a cut where the top bits of h are
 * zero. Shifting by one bit per byte means bit 63 - k of h depends on the
 * last 64 - k bytes only, so the hash is a rolling one with no window to
 * keep, and testing the top bits tests the widest window. The first
 * min - 1 bytes of a chunk are skipped unhashed: no cut can fall there,
 * and it saves hashing them. Normalised chunking: a harder mask before
 * avg bytes and an easier one after keep chunk sizes near avg, far fewer
 * forced cuts at max (and forced cuts do not resynchronise after an edit).
 *
 * Must never depend on anything but the bytes from the chunk's start (no
 * state kept between calls, no offset, no n beyond the cut): every node
 * must cut the same bytes identically, forever. The table and the
 * parameters in cdc.h are a format constant, pinned by golden cut offsets
 * in tests/unit/test_cdc.c.
 */
#include "cdc.h"

#include <errno.h>

#include "store.h"

/* a chunk must fit every buffer, pack file and message made for a block */
_Static_assert(MFS_CDC_MAX == MFS_CHUNK_SIZE, "cdc.h: MAX is the block size");

/* G[i] = the first 8 bytes (little-endian) of BLAKE2b-256 of the 18 bytes
 * "meshfs cdc gear v1" followed by the byte i (test_cdc.c derives it
 * again). G[0] leaves a top bit set in every h a run of zeros makes, from
 * 8 to 19 mask bits, which is why a zero run never cuts. */
static const uint64_t gear[256] = {
    0x63342a56cd6bc0a2ULL, 0x61d1a41a7aab52baULL, 0xd79e2a14541b325cULL,
    0xb532ab409542c128ULL, 0x74eb2251c4ad90edULL, 0xdc5cf173dba045c2ULL,
    0x2aad5e126b6a227cULL, 0x0d27325b54fc7f4cULL, 0xe9731b58f71fb25aULL,
    0x33bb5cc4b529086eULL, 0x50294623ac86e733ULL, 0xbee45b56e64dce16ULL,
    0xe59fbc386ab0f149ULL, 0x49e6a4e07136f2f1ULL, 0x1ce8b7b218509b36ULL,
    0x8a2d7372cac434f7ULL, 0x39d9fa7b7adbe05cULL, 0x2be10c69b2ae3c7aULL,
    0x7fd842cbdf69d64fULL, 0x53aea11e3274f2cdULL, 0x5e62a96571833481ULL,
    0xf55431f379f2d4c0ULL, 0x78062054442f3e45ULL, 0x0c4b250a8170056fULL,
    0x6dd64063e77cf4b6ULL, 0xed6de4afff1d3e21ULL, 0x77d6d7a569ce3224ULL,
    0xa1a4f880ab13cf4dULL, 0x1a8731a30bd9a757ULL, 0x238149b242ac72ceULL,
    0xc316daa6bc11d661ULL, 0x2cd5bd3267540da6ULL, 0xf0fced613c4a0c03ULL,
    0x93baa06c34d8f9e1ULL, 0x62a066f92fcc0498ULL, 0xf60996f6678a25b0ULL,
    0x3809f9c0605a296dULL, 0xe697fd414eef81bfULL, 0x9fbafddcd9016253ULL,
    0x5e1d88469af4d7a3ULL, 0x0d3c9d0453dc22c8ULL, 0xbaf7de39d3239003ULL,
    0x5a43992d3a388810ULL, 0xc9911bceee96dcc6ULL, 0x86cf74af335f348bULL,
    0x847c36f0f3cefa94ULL, 0xeef80adaa583bb30ULL, 0x40be978377cb38ffULL,
    0xee7690744bc8e3c3ULL, 0x9c29cfd4e02b8293ULL, 0x50dcaf950a973e8fULL,
    0x37603becc3f68524ULL, 0xdbd763d9ba5dc53cULL, 0x1e34c1a816a3a627ULL,
    0xe67b56410c26b130ULL, 0x8f391f42fe9f76e5ULL, 0xd52f43091dfa1fb5ULL,
    0x9648ba8c6dd9d48fULL, 0x53bc7de7b057e75bULL, 0x1f0f2b85d9ab0588ULL,
    0xe7025f04805e421fULL, 0x49a34004309255ccULL, 0x5fe3614412ba6b37ULL,
    0x59ba3d6d62c58cd5ULL, 0x00e5668fead4f0f2ULL, 0xf8edcf2768ff0a96ULL,
    0xce5d22a00d535ccfULL, 0x3503c96a4ed7d625ULL, 0x09abceae991a01e4ULL,
    0x8ca76a77649629b0ULL, 0x6f774ed78848a2ffULL, 0x6dce0ee60e9cc70cULL,
    0x0fd871a346cdbfb4ULL, 0x01408a4bbe36722aULL, 0x74be1f0a3de6c0c6ULL,
    0xef2a15b5b488913cULL, 0x45548cef26f5648bULL, 0x55f0cd45ba8f5ac8ULL,
    0xc9abd1c1dcabe652ULL, 0x0024430faa97b558ULL, 0xc72feab1ab063258ULL,
    0xd0a53e55df11cfc8ULL, 0xe1b297276861713dULL, 0x89b1d727e80977a9ULL,
    0x45be2dbc89efacffULL, 0x6e67f724b49b8256ULL, 0x476a0e5532a0a2e9ULL,
    0x003f3d58edadb6a2ULL, 0xce8e02ceb4aff112ULL, 0x470cbc3343558bc6ULL,
    0xb47742157d75d245ULL, 0x19c6a3bca5cab2ceULL, 0x43bfdf6406b83dccULL,
    0x2bbba231c9d32b73ULL, 0xe66002bb0e1d4b90ULL, 0x0f1fa61777aeb3b3ULL,
    0x16cb1c6d487f0fe5ULL, 0x22e4ef21c16c7b77ULL, 0x4bcaec5e2f33a030ULL,
    0x31ffd76a4162736fULL, 0xa50a065c97336377ULL, 0xdef72c6195da4ed1ULL,
    0x147f3d956da5c39bULL, 0x0dfc86f18955a142ULL, 0xa6f506e7696a357eULL,
    0xd00584a534617ea3ULL, 0x05d0dd3a8954cb8dULL, 0x7b277c14ac2f2a4dULL,
    0xff7cd6ce92632db9ULL, 0xf54d0845b6f4937bULL, 0xe6248c3e6be869f3ULL,
    0xf6e1a09ca1c3e64eULL, 0xcb98451f9856655eULL, 0xf2fc4a064e925fcfULL,
    0x4c35d2aba618ca4dULL, 0x893e55c5c2913305ULL, 0xf28b60a6153c468dULL,
    0x2e1f2d54756e01e5ULL, 0x2aafaed5c0d2c4e6ULL, 0xf6ac6ec16e5e6ca2ULL,
    0x7ad9e242d00021b6ULL, 0x57bb78c43212cd93ULL, 0x81a4b8bf9f53af38ULL,
    0x9fb6a02f3219bbdaULL, 0x1449113ba64aa53aULL, 0x008fae1785c5f780ULL,
    0xf7bc8769b9f42a63ULL, 0x7cc3ea6a87f0fc2fULL, 0xdfbfaed8fb7040e7ULL,
    0xe000d417a53ea579ULL, 0x94bdca60425a54faULL, 0x389ba8f0e2f5ac5bULL,
    0xdd428651852121f5ULL, 0xcb6cf785ab1d0d13ULL, 0x9229c4607c635d39ULL,
    0x1b587e793794b1baULL, 0x63c89da1931c9143ULL, 0xd127ccc7fa91c2b7ULL,
    0xf6b12e04faba0d5bULL, 0x5cacb02624d4f290ULL, 0x5430f54c1d95a1a9ULL,
    0x45b103913581df09ULL, 0x1390f49f1ecb2070ULL, 0xd1c757d97b8af042ULL,
    0x858f2e3a8897cbf1ULL, 0x498ed64f54b06efcULL, 0x3fe1fe37502c4578ULL,
    0x8234e9a3b6cc9dc2ULL, 0x59f5c2157f4b2f8bULL, 0xc48f050060853546ULL,
    0xc15abce6f44f9c53ULL, 0x1886e1a715a21f9eULL, 0xc18febffe279795eULL,
    0xb5b2ce35da951d16ULL, 0x7551b92ccc32783eULL, 0xbd192e130712db5bULL,
    0x0328a274d888279dULL, 0x91e196bc6352876aULL, 0xca41826acb8cb98cULL,
    0xa718e2c5e0166172ULL, 0xe37be804f304a007ULL, 0x9dd9ac99a9ebf1f1ULL,
    0x57f9f30b32c25650ULL, 0xd5744453a39cfc84ULL, 0x5d3b01d81762b058ULL,
    0x16ab84ff460c8e1bULL, 0x5c9d3cd8962c2d42ULL, 0x5fc713c5ba8a25ccULL,
    0x3921c20966ead121ULL, 0x841f12e9ac67d729ULL, 0xaa2fc44efea37520ULL,
    0x0a99a9659c6234b0ULL, 0x45aa181b9a517c24ULL, 0x74d26790e8974abfULL,
    0x642c9aa24c0443e7ULL, 0x61a95bf48aac8d85ULL, 0xdee721431f7ba8a0ULL,
    0x5bf4dbc7e5acc461ULL, 0x52dc1dc920a1d340ULL, 0xa7b6daa31d483fb4ULL,
    0x80e03bee2a246f04ULL, 0xc851cb2e15794e21ULL, 0xbd896a786c2d520fULL,
    0x32e3db721c3c3307ULL, 0x761ab80812d80be2ULL, 0x9af253405bfb7d5bULL,
    0x1210f6803afe7312ULL, 0x6ae5a562a33768ceULL, 0xcf1dedabf8bae479ULL,
    0xca58d3899cdc2eb8ULL, 0x68a957156ae18c38ULL, 0x59490225ac2072d5ULL,
    0x1d9ca2ee7e73ecc7ULL, 0xc71ec6b2a776d238ULL, 0x55526f45469e66b6ULL,
    0x906803598ea31571ULL, 0x54d6aae6bcd0143fULL, 0x331c36f9b6d91e5bULL,
    0x1ef7bd8e69246a2eULL, 0x58405f05fce4200bULL, 0x175454049cceebbfULL,
    0x788578e886388277ULL, 0xb4a7fe3b3d5e07b9ULL, 0x24a3ff1a88e59841ULL,
    0xbf4315000d6b6623ULL, 0xa00ed0d42e65e696ULL, 0xe32055c653cf194bULL,
    0x89c67a79a760f310ULL, 0x902b1461e94c2c04ULL, 0x2cd048ec8031ac4cULL,
    0xf0e6eb9e0b18b66bULL, 0x291b2baab84d3408ULL, 0x5abff96e185eef03ULL,
    0x7787968b37197e8cULL, 0x41c847f297762440ULL, 0xf443b3f5dc6a49b7ULL,
    0x9cabca01a19a8a77ULL, 0xa413b817ddbe0b4cULL, 0xbe28e5409747d9e9ULL,
    0xdcbbbc3bbfa257e3ULL, 0x26f345ccad86984dULL, 0xcdacc7942d94eb3cULL,
    0x726f92e11cd3520cULL, 0xd6c4e96227038a99ULL, 0x221d41a0415238baULL,
    0x468672ded37b6834ULL, 0x5d6374e7c0606bd4ULL, 0x8dff08416d9a5b70ULL,
    0x14692d6e89cb8d1aULL, 0xf558cfdc64bc0a84ULL, 0x5368492e26f709feULL,
    0xdc1154238d13651bULL, 0x5177a97bf3d9c4eaULL, 0x15c0ee669f5b53f1ULL,
    0x59deebb2c2fbf691ULL, 0x5f6071833ec116bdULL, 0x8fe27a186cf83697ULL,
    0x78c00e01ecdec8a6ULL, 0x58f5a70bf533926dULL, 0x553a085848d32862ULL,
    0x1f7d5b5651e5c1ddULL, 0x8da1a684d9c1232cULL, 0xd162658ffc96acc4ULL,
    0x2b63d0e08bdc98ebULL, 0xf8d048891482a91cULL, 0xf29dbe6f539e6062ULL,
    0x99ec53ac77d3ec84ULL, 0x684c5e5645bea257ULL, 0xf1f1413c8e83c8c4ULL,
    0xe35c268b6ab2578eULL, 0x691d8bb9f413935eULL, 0x3c55acc8472d7e30ULL,
    0x4dc36e1b8cb10098ULL, 0x12b947feea31186cULL, 0xdbaffa8a781d991fULL,
    0xa6537e4e9cabdff1ULL,
};

/* The top bits bits of a u64. */
static uint64_t top_mask(unsigned bits)
{
    return ~0ULL << (64 - bits);
}

/* Rolls the hash *h over p[*i..lim) until a value has none of mask's bits
 * set: returns the cut after that byte, or 0 with *i = lim. Four bytes a
 * round: the loop's own compare and branch, a third of the work of one
 * byte, once per four. */
static inline size_t roll(const uint8_t *p, size_t *i, size_t lim, uint64_t *h,
                          uint64_t mask)
{
    size_t j = *i;
    uint64_t v = *h;
#define STEP()                                                                 \
    do {                                                                       \
        v = (v << 1) + gear[p[j++]];                                           \
        if (!(v & mask))                                                       \
            return j;                                                          \
    } while (0)
    for (; j + 4 <= lim;) {
        STEP();
        STEP();
        STEP();
        STEP();
    }
    while (j < lim)
        STEP();
#undef STEP
    *i = j;
    *h = v;
    return 0;
}

/* Bytes a lane of roll2 tests in a round (measured: 256-4096 the same). */
#define LANE 512

/* roll on two lanes at once: the hash is a chain of one-cycle steps, so
 * one lane leaves most of the CPU idle, and two independent chains run in
 * the time of one (bench/store/hash_speed: 2.5 -> 4.4 GB/s; three lanes
 * are slower again, the CPU's issue width being the limit then). A value
 * depends on its last 64 bytes only (older bytes are shifted out of the
 * 64 bits), so lane B, 64 bytes behind the end of lane A's block, is
 * exact once it has rolled 64 bytes, from which on it tests. A round
 * tests 2 LANE - 64 bytes; the first cut of lane A wins, else the first of
 * lane B, once lane A's block has none; the end (less than a round) goes
 * one lane. Same cuts as roll alone (test_cdc.c test_reference, test_lanes). */
static inline size_t roll2(const uint8_t *p, size_t *i, size_t lim,
                           uint64_t *h, uint64_t mask)
{
    size_t j = *i;
    uint64_t va = *h;
    while (j + 2 * LANE - 64 <= lim) {
        const uint8_t *pa = p + j, *pb = p + j + LANE - 64;
        uint64_t vb = 0;
        size_t k = 0;
        for (; k < 64; k++) { /* lane B warms up */
            va = (va << 1) + gear[pa[k]];
            vb = (vb << 1) + gear[pb[k]];
            if (!(va & mask))
                return j + k + 1;
        }
        for (; k < LANE; k++) {
            va = (va << 1) + gear[pa[k]];
            vb = (vb << 1) + gear[pb[k]];
            if (!(va & mask))
                return j + k + 1;
            if (!(vb & mask))
                break;
        }
        if (k < LANE) { /* lane B cut after pb[k]: unless lane A cuts first */
            size_t cb = j + LANE - 64 + k + 1, ja = j + k + 1;
            size_t c = roll(p, &ja, j + LANE, &va, mask);
            return c ? c : cb;
        }
        j += 2 * LANE - 64;
        va = vb;
    }
    *i = j;
    *h = va;
    return roll(p, i, lim, h, mask);
}

/* The cut itself; static inline so that mfs_cdc_cut gets its masks and
 * limits as constants. Hashing starts at byte min - 1, so the shortest
 * cut is min: the harder mask for cuts shorter than avg, the easier one
 * from avg on. */
static inline size_t cut(const uint8_t *p, size_t n, bool eof, size_t min,
                         size_t avg, size_t max, uint64_t mask_s,
                         uint64_t mask_l)
{
    if (n <= min)
        return eof ? n : 0;
    size_t end = n < max ? n : max;
    size_t normal = end < avg ? end : avg - 1;
    uint64_t h = 0;
    size_t i = min - 1, c = roll2(p, &i, normal, &h, mask_s);
    if (!c)
        c = roll2(p, &i, end, &h, mask_l);
    if (c)
        return c;
    if (end == max || eof)
        return end;
    return 0;
}

static unsigned log2_exact(size_t v)
{
    unsigned k = 0;
    while ((size_t)1 << k < v)
        k++;
    return (size_t)1 << k == v ? k : 0;
}

size_t mfs_cdc_cut(const uint8_t *p, size_t n, bool eof)
{
    _Static_assert(MFS_CDC_MIN >= 64 && MFS_CDC_MIN < MFS_CDC_AVG &&
                       MFS_CDC_AVG <= MFS_CDC_MAX &&
                       (MFS_CDC_AVG & (MFS_CDC_AVG - 1)) == 0,
                   "cdc.h: 64 <= MIN < AVG <= MAX, AVG a power of two");
    unsigned k = (unsigned)__builtin_ctz(MFS_CDC_AVG);
    return cut(p, n, eof, MFS_CDC_MIN, MFS_CDC_AVG, MFS_CDC_MAX,
               top_mask(k + MFS_CDC_NORM), top_mask(k - MFS_CDC_NORM));
}

int mfs_cdc_params_init(mfs_cdc_params *cp, size_t min, size_t avg, size_t max,
                        unsigned norm)
{
    unsigned k = log2_exact(avg);
    if (min < 64 || min >= avg || avg > max || k < 8 + norm || k + norm > 32)
        return -EINVAL;
    cp->min = min;
    cp->avg = avg;
    cp->max = max;
    cp->mask_s = top_mask(k + norm);
    cp->mask_l = top_mask(k - norm);
    return 0;
}

size_t mfs_cdc_cut_params(const mfs_cdc_params *cp, const uint8_t *p, size_t n,
                          bool eof)
{
    return cut(p, n, eof, cp->min, cp->avg, cp->max, cp->mask_s, cp->mask_l);
}
