/* store/cdc.h - content-defined chunk boundaries (FastCDC-style gear hash
 * with normalised chunking), so that an insertion or deletion in a file
 * changes only the one or two chunks around it (issue 17). A pure
 * function of the bytes: no store, no allocation, no state. */
#ifndef MFS_STORE_CDC_H
#define MFS_STORE_CDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The parameters every node cuts with: a format constant, like the gear
 * table in cdc.c (changing either re-cuts every file, so every chunk of an
 * edited file would move once). Chosen by measurement (docs/BENCH-chunks.md,
 * "Choosing the chunk parameters"): mean chunk 22 KiB on a corpus of text,
 * tars and libraries; a 1-byte edit of a 50 MB file moves about 101 kB, 75
 * kB of it the version record. MAX is the store's block size
 * (MFS_CHUNK_SIZE), so every chunk fits the buffers, pack files and wire
 * messages made for a block. A chunk is shorter than MIN only as a file's
 * last; normalisation level NORM: a cut before AVG bytes must match
 * log2(AVG) + NORM hash bits, one after it log2(AVG) - NORM, which keeps
 * most chunks near AVG. */
#define MFS_CDC_MIN 8192u
#define MFS_CDC_AVG 16384u
#define MFS_CDC_MAX 65536u
#define MFS_CDC_NORM 1u

/* mfs_cdc_cut: the length of the chunk that starts at p, given the n bytes
 * available from p (p may be NULL when n is 0). eof: p + n is the end of
 * the file.
 *  - !eof: returns a cut c in [MFS_CDC_MIN, MFS_CDC_MAX] with c <= n, or 0
 *    when no cut was found in p[0..n) and n < MFS_CDC_MAX: give more bytes
 *    (at least MFS_CDC_MAX from p always suffice).
 *  - eof: returns a cut as above or, when there is none, min(n, MAX): the
 *    last chunk, shorter than MIN if the file ends sooner; 0 only if n is 0.
 * A cut depends only on p[0..c): the same bytes at any address or file
 * offset, with any n >= c and either eof, give the same c (but for the
 * last chunk at eof, which is what is left). So chunking an edited file
 * from an old cut at or before the edit, once a cut lands on an old cut
 * after the edit every later cut is the old one, up to the next edit. A
 * run of zero bytes never cuts: an all-zero stretch is cut in MAX-long
 * chunks (tests/unit/test_cdc.c). Cannot fail; any thread. */
size_t mfs_cdc_cut(const uint8_t *p, size_t n, bool eof);

/* Other parameters, for the measurement that chose the constants above
 * (bench/store/cdc_params.c); the store uses mfs_cdc_cut only. */
typedef struct mfs_cdc_params {
    size_t min, avg, max;
    uint64_t mask_s, mask_l; /* hash bits a cut must have zero */
} mfs_cdc_params;

/* Fills *cp for chunks of min..max bytes around avg (a power of two) at
 * normalisation level norm. Returns 0, or -EINVAL unless
 * 64 <= min < avg <= max and 8 <= log2(avg) - norm, log2(avg) + norm <= 32. */
int mfs_cdc_params_init(mfs_cdc_params *cp, size_t min, size_t avg, size_t max,
                        unsigned norm);
/* mfs_cdc_cut with the parameters *cp (same contract with its min and
 * max; *cp is only read). Cannot fail; any thread. */
size_t mfs_cdc_cut_params(const mfs_cdc_params *cp, const uint8_t *p, size_t n,
                          bool eof);

#endif
