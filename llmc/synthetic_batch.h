/*
 * synthetic_batch.h — a packed batch made up from a seed, for tests and for
 * the CPU trainer when no dataset is on disk. Shapes as in batch.h (B rows of
 * T tokens, segments given by cu_seqlens).
 *
 * A document is token 0 (standing in for end-of-text) followed by a counting
 * run that starts at a random token: t, t+1, ... wrapping inside [1, V). The
 * counting rule is learnable, so a model trained on such a batch must get its
 * loss down. Inside a segment each token's target is the next token; the last
 * token of a segment has target -1, and padding segments (inputs 0) have
 * target -1 everywhere.
 */
#ifndef PACKLM_SYNTHETIC_BATCH_H
#define PACKLM_SYNTHETIC_BATCH_H

#include "batch.h"
#include "rand.h"
#include "utils.h"

/* Token k of a document whose counting run starts at `first` (token 0 is the marker). */
static inline int synthetic_doc_token(int first, int k, int V)
{
    return k == 0 ? 0 : 1 + (first - 1 + k - 1) % (V - 1);
}

/*
 * Fill b (already allocated B x T) with segments of the given lengths, laid
 * end to end (they must sum to B*T and never cross a row end). Segments whose
 * is_padding flag is set (is_padding may be NULL) carry no document.
 */
static inline void synthetic_batch_from_lengths(PackedBatch *b, const int *lengths, const int *is_padding,
                                                int num_segments, int V, Rng *rng)
{
    const int N = b->B * b->T;
    if (V < 2) die("synthetic batch: vocabulary of %d tokens is too small (need >= 2)", V);
    if (num_segments < 1 || num_segments > N) die("synthetic batch: %d segments for %d tokens", num_segments, N);
    b->num_segments = num_segments;
    b->cu_seqlens[0] = 0;
    for (int s = 0; s < num_segments; s++) {
        const int start = b->cu_seqlens[s];
        if (lengths[s] < 1 || start + lengths[s] > N)
            die("synthetic batch: segment %d has length %d (starts at %d of %d tokens)", s, lengths[s], start, N);
        b->cu_seqlens[s + 1] = start + lengths[s];
        const int first = 1 + (int)rng_below(rng, (uint64_t)(V - 1));
        const int padding = is_padding && is_padding[s];
        for (int k = 0; k < lengths[s]; k++) {
            const int i = start + k, last = k == lengths[s] - 1;
            b->inputs[i] = padding ? 0 : synthetic_doc_token(first, k, V);
            b->targets[i] = padding || last ? -1 : synthetic_doc_token(first, k + 1, V);
        }
    }
    if (b->cu_seqlens[num_segments] != N)
        die("synthetic batch: segment lengths add up to %d, not B*T = %d", b->cu_seqlens[num_segments], N);
    packed_batch_derive_positions(b);
    const char *problem = packed_batch_check(b);
    if (problem) die("synthetic batch: %s", problem);
}

/*
 * Fill every row with documents of random lengths in [1, max_doc_len]; the
 * last document of a row is cut at the row end, except that with probability
 * 1/4 the row ends in a padding segment instead.
 */
static inline void synthetic_batch_random(PackedBatch *b, int V, int max_doc_len, unsigned long long seed)
{
    const int N = b->B * b->T;
    Rng rng = rng_create(seed);
    int *lengths = (int *)malloc_or_die((size_t)N * sizeof(int));
    int *padding = (int *)calloc_or_die((size_t)N, sizeof(int));
    int S = 0;
    for (int r = 0; r < b->B; r++) {
        int left = b->T;
        while (left > 0) {
            int len = 1 + (int)rng_below(&rng, (uint64_t)max_doc_len);
            if (len >= left) {
                len = left;
                padding[S] = left > 1 && rng_below(&rng, 4) == 0;
            }
            lengths[S++] = len;
            left -= len;
        }
    }
    synthetic_batch_from_lengths(b, lengths, padding, S, V, &rng);
    free(lengths);
    free(padding);
}

#endif /* PACKLM_SYNTHETIC_BATCH_H */
