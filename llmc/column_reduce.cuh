/*
 * column_reduce.cuh — deterministic column sums over the N rows of a (N, W)
 * activation, added (+=) into bf16 vectors of W: the bias gradient of a matmul,
 * the weight (and bias) gradients of LayerNorm / RMSNorm.
 *
 * What is summed is given by a Term functor: term(row, col, acc) adds the row's
 * contribution for the 8 columns col..col+7 into acc[k][0..7], one slot per
 * output vector k < K. The sum runs in two kernels with a fixed order, so the
 * result is bit-identical from run to run (no float atomics):
 *   1. the rows are cut into `chunks` slices; block (tile, chunk) sums its
 *      slice for 256 columns into fp32 partials (chunks, K, W)  -> scratch
 *   2. 16 threads per (k, column) sum interleaved chunks, then their 16 sums
 *      are added in a fixed order into dst[k].
 * W must be a multiple of 8. Scratch: column_reduce_scratch_bytes(W, K).
 */
#ifndef PACKLM_COLUMN_REDUCE_CUH
#define PACKLM_COLUMN_REDUCE_CUH

#include "cuda_common.h"

#define COLUMN_REDUCE_MAX_CHUNKS 128
#define COLUMN_REDUCE_TILE 256  /* columns per block: 32 threads x 8 columns */
#define COLUMN_REDUCE_ROW_THREADS 8

static inline size_t column_reduce_scratch_bytes(int width, int terms)
{
    return (size_t)terms * COLUMN_REDUCE_MAX_CHUNKS * (size_t)width * sizeof(float);
}

/* Row slices: enough to fill the GPU, few enough that pass 2 stays cheap. */
static inline int column_reduce_chunks(int N)
{
    int chunks = CEIL_DIV(N, 64);
    return chunks < COLUMN_REDUCE_MAX_CHUNKS ? chunks : COLUMN_REDUCE_MAX_CHUNKS;
}

template <int K>
struct ColumnTargets {
    floatX *dst[K];
};

template <int K, typename Term>
__global__ void column_partials_kernel(float *partials, Term term, int N, int width, int rows_per_chunk)
{
    __shared__ float staged[COLUMN_REDUCE_ROW_THREADS][K][COLUMN_REDUCE_TILE];
    const int col = (blockIdx.x * 32 + threadIdx.x) * 8;
    const int row_begin = blockIdx.y * rows_per_chunk;
    const int row_end = min(row_begin + rows_per_chunk, N);
    float acc[K][8] = {};
    if (col < width)
        for (int row = row_begin + threadIdx.y; row < row_end; row += COLUMN_REDUCE_ROW_THREADS) term(row, col, acc);
    for (int k = 0; k < K; k++)
        for (int i = 0; i < 8; i++) staged[threadIdx.y][k][threadIdx.x * 8 + i] = acc[k][i];
    __syncthreads();
    /* 256 threads, K * 256 sums of 8 row-thread partials, in a fixed order */
    const int tid = threadIdx.y * 32 + threadIdx.x;
    for (int slot = tid; slot < K * COLUMN_REDUCE_TILE; slot += 32 * COLUMN_REDUCE_ROW_THREADS) {
        const int k = slot / COLUMN_REDUCE_TILE, c = slot % COLUMN_REDUCE_TILE;
        const int column = blockIdx.x * COLUMN_REDUCE_TILE + c;
        if (column >= width) continue;
        float sum = 0.0f;
        for (int r = 0; r < COLUMN_REDUCE_ROW_THREADS; r++) sum += staged[r][k][c];
        partials[((size_t)blockIdx.y * K + k) * width + column] = sum;
    }
}

#define COLUMN_FINISH_LANES 16 /* threads that split the chunks of one column */

/* Block of (32, 16) threads: 32 consecutive (k, column) slots; thread y sums
   the chunks y, y + 16, ... in order, then thread y = 0 adds the 16 sums in order. */
template <int K>
__global__ void column_finish_kernel(ColumnTargets<K> targets, const float *partials, int chunks, int width)
{
    __shared__ float sums[COLUMN_FINISH_LANES][32];
    const int slot = blockIdx.x * 32 + threadIdx.x;
    float sum = 0.0f;
    if (slot < K * width)
        for (int chunk = threadIdx.y; chunk < chunks; chunk += COLUMN_FINISH_LANES)
            sum += partials[(size_t)chunk * K * width + slot];
    sums[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y != 0 || slot >= K * width) return;
    float total = 0.0f;
    for (int y = 0; y < COLUMN_FINISH_LANES; y++) total += sums[y][threadIdx.x];
    floatX *dst = targets.dst[slot / width] + slot % width;
    *dst = (floatX)((float)*dst + total);
}

/* dst[k][c] += sum over chunks of partials (chunks, K, width), in chunk order. */
template <int K>
static void column_finish(ColumnTargets<K> targets, const float *partials, int chunks, int width, cudaStream_t s)
{
    column_finish_kernel<K><<<CEIL_DIV(K * width, 32), dim3(32, COLUMN_FINISH_LANES), 0, s>>>(targets, partials, chunks,
                                                                                              width);
    cudaCheckLaunch();
}

/* dst[k][c] += sum over rows of term's k-th value at column c. */
template <int K, typename Term>
static void column_reduce_add(ColumnTargets<K> targets, float *scratch, Term term, int N, int width, cudaStream_t s)
{
    if (width % 8 != 0) {
        fprintf(stderr, "error: column_reduce_add: width %d is not a multiple of 8\n", width);
        exit(1);
    }
    const int chunks = column_reduce_chunks(N);
    const dim3 grid(CEIL_DIV(width, COLUMN_REDUCE_TILE), chunks);
    const dim3 block(32, COLUMN_REDUCE_ROW_THREADS);
    column_partials_kernel<K, Term><<<grid, block, 0, s>>>(scratch, term, N, width, CEIL_DIV(N, chunks));
    cudaCheckLaunch();
    column_finish<K>(targets, scratch, chunks, width, s);
}

#endif /* PACKLM_COLUMN_REDUCE_CUH */
