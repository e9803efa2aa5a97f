/*
 * zero.h — the arithmetic of data-parallel sharding (ZeRO) and of gradient
 * buckets. Pure C, no GPU, no communication: llmc/dist.cuh turns these
 * numbers into NCCL calls, and test/test_zero.c checks them on the CPU.
 *
 * Flat buffer partition. Parameters, gradients, fp32 master weights and the
 * AdamW moments all share params.h's flat layout of n elements. P ranks split
 * it into P contiguous shards of `shard_len` elements (ceil(n / P) rounded up
 * to `align`); rank r owns [r * shard_len, (r + 1) * shard_len) clipped to n.
 * When n is not a multiple of P the last ranks own fewer elements, possibly
 * none: nothing is padded, every range below is exact.
 *
 *   n = 10, P = 4, align = 1:  shard_len 3   rank 0 [0,3)  1 [3,6)  2 [6,9)  3 [9,10)
 *   n = 10, P = 4, align = 4:  shard_len 4   rank 0 [0,4)  1 [4,8)  2 [8,10) 3 [10,10)
 *
 * Gradient buckets. The backward pass finishes the gradients one layer at a
 * time (layer L-1 first), so the reduction of layer l can start while the
 * backward of layer l-1 runs. Bucket l (0 <= l < L) holds layer l's slice of
 * every per-layer tensor (ln1w ... fcprojb): up to 12 separate segments of
 * the flat buffer, since params.h stores each tensor for all layers back to
 * back. Bucket L holds the tensors outside the layers (wte, wpe, lnfw, lnfb,
 * lm_head); the token embedding's gradient is final only after the encoder
 * backward, so this bucket is reduced last. Empty tensors give no segment.
 *
 * Pieces. Reducing a segment onto the ranks that own it ("reduce-scatter" for
 * uneven, non-contiguous ranges) cuts it at shard boundaries: each piece lies
 * inside exactly one rank's shard.
 *
 * Data partition. Each rank reads B rows of every micro-batch; the global
 * micro-batch has B * P rows and rank r's local row j is global row j*P + r
 * (the dataloader's sharding: rows r, r+P, r+2P, ...).
 */
#ifndef PACKLM_ZERO_H
#define PACKLM_ZERO_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "params.h"
#include "utils.h"

/* Shard lengths are multiples of this many elements (128 bytes of bf16), so
 * every shard starts on an aligned address. */
#define ZERO_SHARD_ALIGN 64

typedef struct {
    size_t total;     /* n: elements in the flat buffer */
    size_t shard_len; /* elements per rank before clipping to n */
    int num_ranks;    /* P */
} ZeroPartition;

static inline void zero_partition_init(ZeroPartition *z, size_t total, int num_ranks, size_t align)
{
    if (num_ranks < 1) die("zero_partition_init: num_ranks must be >= 1 (got %d)", num_ranks);
    if (align < 1) die("zero_partition_init: align must be >= 1");
    size_t per_rank = (total + (size_t)num_ranks - 1) / (size_t)num_ranks;
    z->total = total;
    z->shard_len = (per_rank + align - 1) / align * align;
    if (z->shard_len == 0) z->shard_len = align; /* empty buffer: keep zero_owner's division defined */
    z->num_ranks = num_ranks;
}

/* First element of rank r's shard (== total for a rank that owns nothing). */
static inline size_t zero_shard_offset(const ZeroPartition *z, int rank)
{
    size_t begin = (size_t)rank * z->shard_len;
    return begin < z->total ? begin : z->total;
}

/* Number of elements rank r owns (0 .. shard_len). */
static inline size_t zero_shard_size(const ZeroPartition *z, int rank)
{
    return zero_shard_offset(z, rank + 1) - zero_shard_offset(z, rank);
}

/* The rank that owns element `index` (index < total). */
static inline int zero_owner(const ZeroPartition *z, size_t index)
{
    return (int)(index / z->shard_len);
}

/* The range of the flat buffer whose optimizer state (fp32 master weights,
 * AdamW m and v) rank r keeps and updates: all of it at stage 0, its own
 * shard from stage 1 on. */
static inline void zero_opt_range(const ZeroPartition *z, int stage, int rank, size_t *offset, size_t *size)
{
    *offset = stage == 0 ? 0 : zero_shard_offset(z, rank);
    *size = stage == 0 ? z->total : zero_shard_size(z, rank);
}

/* Why rank `rank` of this job (partition z, ZeRO `stage`) cannot resume an
 * optimizer shard saved by a job of `saved_ranks` ranks for the range
 * [saved_offset, +saved_size): the message is written to msg and returned;
 * NULL when it can. Shards are not re-sharded: another world size or another
 * stage's range is refused. */
static inline const char *zero_resume_problem(const ZeroPartition *z, int stage, int rank, size_t saved_ranks,
                                              size_t saved_offset, size_t saved_size, char *msg, size_t len)
{
    size_t offset, size;
    zero_opt_range(z, stage, rank, &offset, &size);
    if (saved_ranks != (size_t)z->num_ranks)
        snprintf(msg, len, "written by a job of %zu ranks, this job has %d: resume with the same number of ranks "
                 "(optimizer shards are not re-sharded)", saved_ranks, z->num_ranks);
    else if (saved_offset != offset || saved_size != size)
        snprintf(msg, len, "holds the optimizer range [%zu, +%zu), rank %d's range with -z %d is [%zu, +%zu): "
                 "resume with the ZeRO stage the checkpoint was written with", saved_offset, saved_size, rank, stage,
                 offset, size);
    else
        return NULL;
    return msg;
}

/* Intersection of [a, a+na) and [b, b+nb): returns its length, start in *start. */
static inline size_t zero_intersect(size_t a, size_t na, size_t b, size_t nb, size_t *start)
{
    size_t lo = a > b ? a : b, hi = (a + na) < (b + nb) ? (a + na) : (b + nb);
    *start = lo;
    return hi > lo ? hi - lo : 0;
}

/* The part of tensor `tensor` that rank r owns: returns its length (0 if
 * none), its flat offset in *start. The optimizer uses this to apply each
 * tensor's own weight decay to the owned slice. */
static inline size_t zero_tensor_slice(const ZeroPartition *z, const ParamLayout *p, int tensor, int rank,
                                       size_t *start)
{
    return zero_intersect(p->offset[tensor], p->size[tensor], zero_shard_offset(z, rank),
                          zero_shard_size(z, rank), start);
}

/* ------------------------------------------------------------ buckets */

typedef struct {
    size_t offset, size; /* a contiguous range of the flat buffer */
} ZeroSegment;

typedef struct {
    int num_segments;
    ZeroSegment seg[NUM_PARAM_TENSORS];
    size_t elements; /* sum of the segment sizes */
} GradBucket;

/* 1 for tensors stored per layer (shape (L, ...)), 0 for wte, wpe, lnf*, lm_head. */
static inline int param_is_per_layer(int tensor)
{
    return tensor >= PARAM_LN1W && tensor <= PARAM_FCPROJB;
}

/* Buckets per model: one per layer plus one for the tensors outside the layers. */
static inline int zero_num_buckets(const ModelConfig *c) { return c->num_layers + 1; }

/* Fill bucket `bucket` (0..L-1: that layer; L: the non-layer tensors). */
static inline void grad_bucket_init(GradBucket *b, const ParamLayout *p, const ModelConfig *c, int bucket)
{
    if (bucket < 0 || bucket > c->num_layers) die("grad_bucket_init: bucket %d out of range 0..%d", bucket, c->num_layers);
    int layer_bucket = bucket < c->num_layers;
    b->num_segments = 0;
    b->elements = 0;
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        if (p->size[t] == 0 || param_is_per_layer(t) != layer_bucket) continue;
        size_t per_layer = layer_bucket ? p->size[t] / (size_t)c->num_layers : p->size[t];
        size_t offset = p->offset[t] + (layer_bucket ? (size_t)bucket * per_layer : 0);
        b->seg[b->num_segments++] = (ZeroSegment){offset, per_layer};
        b->elements += per_layer;
    }
}

/* ------------------------------------------------------------ pieces */

typedef struct {
    size_t offset, size;
    int owner; /* the rank whose shard holds the whole piece */
} ZeroPiece;

/* Cut [offset, offset+size) (inside the buffer) at shard boundaries into
 * out[0..count), in order; count <= num_ranks. Returns count. */
static inline int zero_split_by_owner(const ZeroPartition *z, size_t offset, size_t size, ZeroPiece *out)
{
    if (offset + size > z->total) die("zero_split_by_owner: range [%zu, %zu) outside the buffer of %zu", offset, offset + size, z->total);
    int count = 0;
    size_t end = offset + size;
    while (offset < end) {
        int owner = zero_owner(z, offset);
        size_t shard_end = zero_shard_offset(z, owner) + zero_shard_size(z, owner);
        size_t piece_end = shard_end < end ? shard_end : end;
        out[count++] = (ZeroPiece){offset, piece_end - offset, owner};
        offset = piece_end;
    }
    return count;
}

/* ------------------------------------------------------------ data and memory */

/* Global row of rank r's local row j when each of P ranks reads B rows. */
static inline int zero_global_row(int local_row, int rank, int num_ranks) { return local_row * num_ranks + rank; }

/* Bytes one GPU holds for the training state under ZeRO stage 0/1/2:
 * bf16 parameters and gradients (the backward writes the whole flat
 * gradient buffer, so it is allocated in full at every stage; stage 2 keeps
 * only the owned shard's values between micro-steps) and the fp32 master
 * weights + AdamW m + v (sharded from stage 1 on). */
typedef struct {
    size_t params, grads, optimizer;
} ZeroMemory;

static inline ZeroMemory zero_memory(const ZeroPartition *z, int stage, int rank)
{
    const size_t bf16_bytes = 2, adamw_floats = 3; /* master weight, m, v */
    size_t opt_offset, opt_elems;
    zero_opt_range(z, stage, rank, &opt_offset, &opt_elems);
    return (ZeroMemory){z->total * bf16_bytes, z->total * bf16_bytes, opt_elems * adamw_floats * sizeof(float)};
}

#endif /* PACKLM_ZERO_H */
