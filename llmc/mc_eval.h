/*
 * mc_eval.h — multiple-choice evaluation (HellaSwag style), host side: read
 * llm.c's eval file, lay the completions into packed batches, and score
 * them from the model's per-token losses. The completion with the lowest
 * mean loss over its own tokens wins; accuracy = examples whose winner is
 * the labelled completion / examples.
 *
 * File (the .bin llm.c's dev/data/hellaswag.py writes; dev/data/hellaswag.py
 * here writes the same): 256 int32 header [0] 20240522, [1] 1, [2] number
 * of examples, [3] bytes of the longest example; then each example as uint16
 * values: 65535, the example's size in bytes (these fields included), its
 * index (0, 1, ...), the label, the number of completions K, the context
 * length and tokens, then K times a completion length and its tokens.
 *
 * Batches: completion k of an example becomes one attention segment,
 * context + completion, positions from 0; its tokens from the last context
 * token to the one before the end have targets (the next token), the rest -1.
 * Segments are laid greedily into rows of T (one per row with one_per_row,
 * for runs without document masking); the rest of a row is padding (input
 * 0, target -1). Examples are split across ranks: rank r scores examples
 * [r*E/P, (r+1)*E/P).
 *
 *   mc_read(path, vocab_size, &set, err, len)  0 and a message naming the file and
 *                                          example on bad input; never exits (but on
 *                                          exhausted memory); mc_parse: the same from bytes
 *   mc_run_begin(&run, &set, T, rank, ranks)  dies if a completion does not fit T
 *   while (mc_run_fill(&run, &batch, one_per_row)) { forward; mc_run_score(&run, losses); }
 *   run.correct, run.examples, run.chosen[]   this rank's counts and winners
 */
#ifndef PACKLM_MC_EVAL_H
#define PACKLM_MC_EVAL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "utils.h"

#define MC_MAGIC 20240522
#define MC_VERSION 1
#define MC_HEADER_INTS 256
#define MC_START 65535
#define MC_MAX_COMPLETIONS 16

typedef struct {
    int label;
    int num_completions;
    int context_len;
    int *tokens;                               /* context, then the completions */
    int completion_start[MC_MAX_COMPLETIONS];  /* index into tokens */
    int completion_len[MC_MAX_COMPLETIONS];
} McExample;

typedef struct {
    McExample *examples;
    int num_examples;
} McSet;

static inline int mc_error(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return 0;
}

static inline void mc_free(McSet *set)
{
    for (int i = 0; i < set->num_examples; i++) free(set->examples[i].tokens);
    free(set->examples);
    memset(set, 0, sizeof(*set));
}

/* Append u[*at .. *at + len) to e->tokens, checking bounds and the vocabulary. */
static inline int mc_take_tokens(const char *path, int index, const uint16_t *u, size_t n, size_t *at, int len,
                                 int vocab_size, McExample *e, int *count, char *err, size_t errlen)
{
    if (len < 1 || *at + (size_t)len > n)
        return mc_error(err, errlen, "'%s': example %d: a run of %d tokens is empty or overruns the example's %zu bytes",
                        path, index, len, 2 * n);
    for (int i = 0; i < len; i++) {
        const int token = u[(*at)++];
        if (token >= vocab_size)
            return mc_error(err, errlen, "'%s': example %d: token %d is outside the vocabulary [0, %d)", path, index,
                            token, vocab_size);
        e->tokens[(*count)++] = token;
    }
    return 1;
}

/* One example from its n uint16 values u (start marker, size, index, label, K, context, completions). */
static inline int mc_parse_example(const char *path, int index, const uint16_t *u, size_t n, int vocab_size,
                                   McExample *e, char *err, size_t errlen)
{
    if (u[2] != (uint16_t)index) return mc_error(err, errlen, "'%s': example %d carries index %d", path, index, u[2]);
    e->label = u[3];
    e->num_completions = u[4];
    e->context_len = u[5];
    if (e->num_completions < 1 || e->num_completions > MC_MAX_COMPLETIONS || e->label >= e->num_completions)
        return mc_error(err, errlen, "'%s': example %d: label %d of %d completions (1..%d allowed)", path, index,
                        e->label, e->num_completions, MC_MAX_COMPLETIONS);
    e->tokens = (int *)malloc_or_die(n * sizeof(int));
    size_t at = 6;
    int count = 0;
    if (!mc_take_tokens(path, index, u, n, &at, e->context_len, vocab_size, e, &count, err, errlen)) return 0;
    for (int k = 0; k < e->num_completions; k++) {
        if (at >= n) return mc_error(err, errlen, "'%s': example %d: ends before completion %d", path, index, k);
        e->completion_len[k] = u[at++];
        e->completion_start[k] = count;
        if (!mc_take_tokens(path, index, u, n, &at, e->completion_len[k], vocab_size, e, &count, err, errlen))
            return 0;
    }
    if (at != n)
        return mc_error(err, errlen, "'%s': example %d: %zu bytes after its last completion", path, index, 2 * (n - at));
    return 1;
}

/* A whole eval file held in memory (bytes, size; `path` names it in messages); 1 on success. */
static inline int mc_parse(const unsigned char *bytes, size_t size, const char *path, int vocab_size, McSet *set,
                           char *err, size_t errlen)
{
    memset(set, 0, sizeof(*set));
    int32_t h[MC_HEADER_INTS];
    if (size < sizeof(h)) return mc_error(err, errlen, "'%s': shorter than the %d-int header", path, MC_HEADER_INTS);
    memcpy(h, bytes, sizeof(h));
    if (h[0] != MC_MAGIC || h[1] != MC_VERSION)
        return mc_error(err, errlen, "'%s': not a multiple-choice eval file (magic %d version %d; expected %d version %d)",
                        path, h[0], h[1], MC_MAGIC, MC_VERSION);
    if (h[2] < 1 || h[2] > 65536 || h[3] < 12 || h[3] > (1 << 20))
        return mc_error(err, errlen, "'%s': header says %d examples, longest %d bytes: not plausible", path, h[2], h[3]);
    uint16_t *buf = (uint16_t *)malloc_or_die((size_t)h[3]);
    set->examples = (McExample *)calloc_or_die((size_t)h[2], sizeof(McExample));
    size_t at = sizeof(h);
    int ok = 1;
    for (int i = 0; ok && i < h[2]; i++) {
        if (size - at < 4) {
            ok = mc_error(err, errlen, "'%s': truncated at example %d of %d", path, i, h[2]);
            break;
        }
        memcpy(buf, bytes + at, 4);
        if (buf[0] != MC_START || buf[1] < 12 || buf[1] % 2 || buf[1] > h[3]) {
            ok = mc_error(err, errlen, "'%s': example %d: bad start marker %d or size %d (longest %d)", path, i, buf[0],
                          buf[1], h[3]);
            break;
        }
        if (size - at < buf[1]) {
            ok = mc_error(err, errlen, "'%s': truncated inside example %d", path, i);
            break;
        }
        memcpy(buf, bytes + at, buf[1]);
        at += buf[1];
        ok = mc_parse_example(path, i, buf, buf[1] / 2, vocab_size, &set->examples[i], err, errlen);
        set->num_examples = i + 1;
    }
    if (ok && at != size) ok = mc_error(err, errlen, "'%s': bytes after the last of %d examples", path, h[2]);
    free(buf);
    if (!ok) mc_free(set);
    return ok;
}

/* Read and parse a whole eval file; 1 on success, else 0 and a message in err. */
static inline int mc_read(const char *path, int vocab_size, McSet *set, char *err, size_t errlen)
{
    memset(set, 0, sizeof(*set));
    size_t size;
    const char *why;
    unsigned char *bytes = read_file(path, &size, &why);
    if (!bytes) return mc_error(err, errlen, "'%s': %s", path, why);
    const int ok = mc_parse(bytes, size, path, vocab_size, set, err, errlen);
    free(bytes);
    return ok;
}

/* ------------------------------------------------------------------ scoring */

typedef struct {
    int example, completion; /* which completion this segment holds */
    int first;               /* flat index of its first token in the batch */
} McSlot;

typedef struct {
    const McSet *set;
    int T;
    int begin, end;          /* this rank's examples */
    int next_example, next_completion;
    McSlot *slots;           /* the segments of the batch being scored */
    int num_slots;
    double *loss_sum;        /* (end - begin) * MC_MAX_COMPLETIONS */
    int *chosen;             /* (end - begin) winning completion of each example, after the last mc_run_score */
    int correct, examples;   /* after the last mc_run_score */
} McRun;

/* The longest context + completion of the set, in tokens (1 for an empty
   set); *example and *completion say which it is. */
static inline int mc_longest_sequence(const McSet *set, int *example, int *completion)
{
    int longest = 1;
    *example = *completion = 0;
    for (int i = 0; i < set->num_examples; i++)
        for (int k = 0; k < set->examples[i].num_completions; k++)
            if (set->examples[i].context_len + set->examples[i].completion_len[k] > longest) {
                longest = set->examples[i].context_len + set->examples[i].completion_len[k];
                *example = i;
                *completion = k;
            }
    return longest;
}

/* Dies, naming the file and the example, unless every context + completion
   fits a row of T tokens. */
static inline void mc_require_fits(const McSet *set, int T, const char *path)
{
    int i, k;
    const int longest = mc_longest_sequence(set, &i, &k);
    if (longest > T)
        die("'%s': example %d: context + completion %d = %d tokens do not fit a row of T=%d", path, i, k, longest, T);
}

static inline void mc_run_begin(McRun *r, const McSet *set, int T, int rank, int num_ranks, const char *path)
{
    memset(r, 0, sizeof(*r));
    r->set = set;
    r->T = T;
    r->begin = (int)((long long)set->num_examples * rank / num_ranks);
    r->end = (int)((long long)set->num_examples * (rank + 1) / num_ranks);
    r->next_example = r->begin;
    mc_require_fits(set, T, path);
    const int n = r->end - r->begin;
    r->loss_sum = (double *)calloc_or_die((size_t)(n ? n : 1) * MC_MAX_COMPLETIONS, sizeof(double));
    r->chosen = (int *)calloc_or_die((size_t)(n ? n : 1), sizeof(int));
}

static inline void mc_run_free(McRun *r)
{
    free(r->slots);
    free(r->loss_sum);
    free(r->chosen);
    memset(r, 0, sizeof(*r));
}

/* Write segment (example e, completion k) at flat index `at` of b. */
static inline void mc_write_segment(PackedBatch *b, const McExample *e, int k, int at)
{
    const int ctx = e->context_len, len = ctx + e->completion_len[k];
    for (int i = 0; i < len; i++) {
        const int token = i < ctx ? e->tokens[i] : e->tokens[e->completion_start[k] + i - ctx];
        b->inputs[at + i] = token;
        b->targets[at + i] = -1;
        if (i >= ctx) b->targets[at + i - 1] = token; /* predicted from the token before */
    }
    b->cu_seqlens[b->num_segments++] = at;
}

/* The next batch of this rank's completions into b; 0 when none are left. */
static inline int mc_run_fill(McRun *r, PackedBatch *b, int one_per_row)
{
    if (r->next_example >= r->end) return 0;
    if (!r->slots) r->slots = (McSlot *)malloc_or_die((size_t)b->B * b->T * sizeof(McSlot));
    r->num_slots = 0;
    b->num_segments = 0;
    for (int row = 0; row < b->B; row++) {
        int filled = 0;
        while (r->next_example < r->end && (!one_per_row || filled == 0)) {
            const McExample *e = &r->set->examples[r->next_example];
            const int k = r->next_completion, len = e->context_len + e->completion_len[k];
            if (filled + len > b->T) break;
            const int at = row * b->T + filled;
            mc_write_segment(b, e, k, at);
            r->slots[r->num_slots++] = (McSlot){r->next_example, k, at};
            filled += len;
            if (++r->next_completion == e->num_completions) r->next_completion = 0, r->next_example++;
        }
        if (filled < b->T) b->cu_seqlens[b->num_segments++] = row * b->T + filled;
        for (; filled < b->T; filled++) {
            b->inputs[row * b->T + filled] = 0;
            b->targets[row * b->T + filled] = -1;
        }
    }
    b->cu_seqlens[b->num_segments] = b->B * b->T;
    packed_batch_derive_positions(b);
    return 1;
}

/* Add the batch's per-token losses (N, 0 where target -1) to its completions;
   after the last batch, chosen[] holds each example's winner and correct /
   examples this rank's counts. */
static inline void mc_run_score(McRun *r, const float *losses)
{
    for (int s = 0; s < r->num_slots; s++) {
        const McSlot *slot = &r->slots[s];
        const McExample *e = &r->set->examples[slot->example];
        double sum = 0.0;
        for (int i = 0; i < e->completion_len[slot->completion]; i++)
            sum += losses[slot->first + e->context_len - 1 + i];
        r->loss_sum[(size_t)(slot->example - r->begin) * MC_MAX_COMPLETIONS + slot->completion] = sum;
    }
    if (r->next_example < r->end) return;
    r->correct = 0;
    r->examples = r->end - r->begin;
    for (int i = r->begin; i < r->end; i++) {
        const McExample *e = &r->set->examples[i];
        const double *sums = &r->loss_sum[(size_t)(i - r->begin) * MC_MAX_COMPLETIONS];
        int best = 0;
        for (int k = 1; k < e->num_completions; k++)
            if (sums[k] / e->completion_len[k] < sums[best] / e->completion_len[best]) best = k;
        r->chosen[i - r->begin] = best;
        r->correct += best == e->label;
    }
}

#endif /* PACKLM_MC_EVAL_H */
