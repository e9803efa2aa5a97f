/*
 * batch.h — the packed micro-batch that the dataloader hands to the model.
 *
 * N = B * T tokens, rows of T laid end to end:
 *   inputs[N], targets[N]    int32 token ids; target -1 = no loss (padding)
 *   pos[N]                   position inside the token's segment (0 at every
 *                            segment start; every row start is a segment start)
 *   cu_seqlens[S + 1]        segment s is tokens [cu[s], cu[s+1]); cu[0] = 0,
 *                            cu[S] = N, strictly increasing (capacity N + 1)
 *   num_segments (S), max_seqlen (longest segment)
 * Attention never needs rows: a segment never crosses a row boundary.
 *
 * packed_batch_write appends one batch to a batch dump (--dump-batches of
 * train_gpt and train_cpu; read by dev/reference/model.py): int32 values
 * B, T, S, inputs[N], targets[N], pos[N], cu_seqlens[S + 1].
 */
#ifndef PACKLM_BATCH_H
#define PACKLM_BATCH_H

#include <stdio.h>
#include "utils.h"

typedef struct {
    int B, T;        /* rows, tokens per row */
    int *inputs;     /* (B*T) */
    int *targets;    /* (B*T), -1 = no loss */
    int *pos;        /* (B*T) */
    int *cu_seqlens; /* (num_segments + 1), capacity B*T + 1 */
    int num_segments;
    int max_seqlen;
} PackedBatch;

static inline void packed_batch_alloc(PackedBatch *b, int B, int T)
{
    size_t n = (size_t)B * T;
    b->B = B;
    b->T = T;
    b->inputs = (int *)calloc_or_die(n, sizeof(int));
    b->targets = (int *)calloc_or_die(n, sizeof(int));
    b->pos = (int *)calloc_or_die(n, sizeof(int));
    b->cu_seqlens = (int *)calloc_or_die(n + 1, sizeof(int));
    b->num_segments = 0;
    b->max_seqlen = 0;
}

static inline void packed_batch_free(PackedBatch *b)
{
    free(b->inputs);
    free(b->targets);
    free(b->pos);
    free(b->cu_seqlens);
    b->inputs = b->targets = b->pos = b->cu_seqlens = NULL;
}

/* Rebuild pos, num_segments and max_seqlen from cu_seqlens. */
static inline void packed_batch_derive_positions(PackedBatch *b)
{
    b->max_seqlen = 0;
    for (int s = 0; s < b->num_segments; s++) {
        int start = b->cu_seqlens[s], end = b->cu_seqlens[s + 1];
        for (int i = start; i < end; i++) b->pos[i] = i - start;
        if (end - start > b->max_seqlen) b->max_seqlen = end - start;
    }
}

/* Tokens that carry a loss (target != -1): the loss of a step is divided by their total. */
static inline long packed_batch_count_targets(const PackedBatch *b)
{
    long count = 0;
    for (long i = 0; i < (long)b->B * b->T; i++) count += b->targets[i] != -1;
    return count;
}

/* Replace the document segments by one segment per row: plain causal
   attention over each row (document masking off, for comparison). */
static inline void packed_batch_make_row_causal(PackedBatch *b)
{
    b->num_segments = b->B;
    for (int r = 0; r <= b->B; r++) b->cu_seqlens[r] = r * b->T;
    packed_batch_derive_positions(b);
}

/* Append the batch to the dump file f (named path in error messages). */
static inline void packed_batch_write(FILE *f, const char *path, const PackedBatch *b)
{
    const int header[3] = {b->B, b->T, b->num_segments};
    const size_t N = (size_t)b->B * b->T;
    fwrite_or_die(header, sizeof(int), 3, f, path);
    fwrite_or_die(b->inputs, sizeof(int), N, f, path);
    fwrite_or_die(b->targets, sizeof(int), N, f, path);
    fwrite_or_die(b->pos, sizeof(int), N, f, path);
    fwrite_or_die(b->cu_seqlens, sizeof(int), b->num_segments + 1, f, path);
}

/* Check every invariant above. Returns NULL if valid, else a static message. */
static inline const char *packed_batch_check(const PackedBatch *b)
{
    int n = b->B * b->T;
    if (b->num_segments < 1 || b->num_segments > n) return "segment count out of range";
    if (b->cu_seqlens[0] != 0) return "cu_seqlens[0] != 0";
    if (b->cu_seqlens[b->num_segments] != n) return "cu_seqlens[S] != B*T";
    int longest = 0;
    for (int s = 0; s < b->num_segments; s++) {
        int start = b->cu_seqlens[s], end = b->cu_seqlens[s + 1];
        if (end <= start) return "cu_seqlens not strictly increasing";
        if (start / b->T != (end - 1) / b->T) return "a segment crosses a row boundary";
        for (int i = start; i < end; i++)
            if (b->pos[i] != i - start) return "pos does not restart at a segment start";
        if (end - start > longest) longest = end - start;
    }
    for (int r = 0; r < b->B; r++) {
        /* every row start must be a segment start */
        int found = 0;
        for (int s = 0; s < b->num_segments && !found; s++) found = b->cu_seqlens[s] == r * b->T;
        if (!found) return "a row start is not a segment start";
    }
    if (longest != b->max_seqlen) return "max_seqlen is not the longest segment";
    return NULL;
}

#endif /* PACKLM_BATCH_H */
