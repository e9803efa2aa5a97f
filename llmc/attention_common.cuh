/*
 * attention_common.cuh — the pieces both attention paths (sm80: mma.sync,
 * sm90: wgmma) share: where a head sits in the packed rows, the causal mask
 * test, the online-softmax update of one row, the epilogue store of a warp's
 * accumulator rows, and the backward's D = rowsum(dO * O) pre-kernel.
 *
 * Shapes as in attention.cuh: qkv (N, (NH + 2*NKV) * HD) per token
 * NH q heads | NKV k heads | NKV v heads; out/dout (N, NH * HD); lse and
 * delta (NH, N) fp32.
 *
 * Register layout both tensor-core families give a warp's accumulator rows
 * (mma.sync m16n8 tiles and each warp's 16-row slice of a wgmma m64 tile):
 * lane (g = lane / 4, t = lane % 4) holds, for every 8-column block n,
 * (g, 8n + 2t), (g, 8n + 2t + 1), (g + 8, 8n + 2t), (g + 8, 8n + 2t + 1).
 * So a row is spread over the 4 lanes of a quad, and row reductions are two
 * shuffles (quad_max, quad_sum).
 */
#ifndef PACKLM_ATTENTION_COMMON_CUH
#define PACKLM_ATTENTION_COMMON_CUH

#include "cuda_common.h"
#include "utils.h"

#define ATTN_LOG2E 1.4426950408889634f

/* ------------------------------------------------- row and head indexing */

/* Elements per packed qkv row, and the column of each head's vector in it. */
__host__ __device__ __forceinline__ size_t attention_qkv_stride(int NH, int NKV, int HD)
{
    return (size_t)(NH + 2 * NKV) * HD;
}
__host__ __device__ __forceinline__ int attention_k_column(int NH, int kvh, int HD) { return (NH + kvh) * HD; }
__host__ __device__ __forceinline__ int attention_v_column(int NH, int NKV, int kvh, int HD)
{
    return (NH + NKV + kvh) * HD;
}

/* ---------------------------------------------------------------- masking */

/* Causal mask inside a segment: a key after its query is hidden. */
__device__ __forceinline__ bool attention_masked(int key, int query) { return key > query; }

/* Keys [key0, key0 + keys) need the mask test for queries from q_first on
   only when the last key can follow the first query. */
__device__ __forceinline__ bool attention_block_needs_mask(int key0, int keys, int q_first)
{
    return key0 + keys - 1 > q_first;
}

/* --------------------------------------------------------- online softmax */

__device__ __forceinline__ float quad_max(float x)
{
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ __forceinline__ float quad_sum(float x)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

/* One row's running max and sum (log2 units) meet a new block whose row max
   (over the quad) is block_max. Updates row_max and row_sum, returns the
   factor alpha that rescales the row's output accumulator, and sets *base,
   the value to subtract before exp2 (0 while the row has seen only masked
   keys, avoiding inf - inf). */
__device__ __forceinline__ float online_softmax_update(float *row_max, float *row_sum, float block_max, float *base)
{
    const float new_max = fmaxf(*row_max, block_max);
    *base = new_max == -INFINITY ? 0.0f : new_max;
    const float alpha = exp2f(*row_max - *base);
    *row_max = new_max;
    *row_sum *= alpha;
    return alpha;
}

/* End of a row, sum = the row's whole sum (over the quad): the factor that
   normalises its output (0 for a row that saw no key, never NaN), and its
   natural-log logsumexp (-inf for such a row). */
__device__ __forceinline__ float online_softmax_inverse_sum(float sum) { return sum > 0.0f ? 1.0f / sum : 0.0f; }
__device__ __forceinline__ float online_softmax_lse(float row_max, float sum)
{
    return sum > 0.0f ? (row_max + log2f(sum)) / ATTN_LOG2E : -INFINITY;
}

/* Both at once: returns the inverse sum, sets *lse. */
__device__ __forceinline__ float online_softmax_finish(float row_max, float sum, float *lse)
{
    *lse = online_softmax_lse(row_max, sum);
    return online_softmax_inverse_sum(sum);
}

/* --------------------------------------------------------------- epilogue */

/* Store a warp's 16 x HD fp32 accumulator times `scale` as bf16 rows
   row0 + (0..15) of `dst` (row pitch `stride`), skipping rows >= row_end
   (the segment's end: the next segment's rows belong to other tiles).
   With group_log2 > 0 the rows are packed GQA rows: row i is head
   i % 2^group_log2 of token i >> group_log2, at dst + token * stride + head * HD. */
template <int HD>
__device__ __forceinline__ void store_rows(floatX *dst, size_t stride, const float acc[HD / 8][4], float scale,
                                           int row0, int row_end, int group_log2 = 0)
{
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int row = row0 + g + 8 * half;
        if (row >= row_end) continue;
        const int token = row >> group_log2, head = row & ((1 << group_log2) - 1);
        floatX *p = dst + (size_t)token * stride + head * HD + 2 * t;
#pragma unroll
        for (int n = 0; n < HD / 8; n++) {
            *reinterpret_cast<__nv_bfloat162 *>(p + n * 8) =
                __floats2bfloat162_rn(acc[n][2 * half] * scale, acc[n][2 * half + 1] * scale);
        }
    }
}

/* ------------------------------------------------- backward pre-kernel */

/* D[h][i] = sum_d dout[i, h, d] * out[i, h, d]; HD/8 threads per (token, head). */
template <int HD>
__global__ void attention_delta_kernel(float *delta, const floatX *dout, const floatX *out, int N, int NH)
{
    constexpr int LANES = HD / 8;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t row = idx / LANES; /* token * NH + head */
    const int part = idx % LANES;
    float sum = 0.0f;
    if (row < (size_t)N * NH) {
        const BF16x8 a = load128(dout + row * HD + part * 8), b = load128(out + row * HD + part * 8);
#pragma unroll
        for (int k = 0; k < 8; k++) sum += (float)a[k] * (float)b[k];
    }
#pragma unroll
    for (int off = LANES / 2; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (part == 0 && row < (size_t)N * NH) delta[(row % NH) * N + row / NH] = sum;
}

template <int HD>
static void attention_delta(float *delta, const floatX *dout, const floatX *out, int N, int NH, cudaStream_t s)
{
    const size_t threads = (size_t)N * NH * (HD / 8);
    attention_delta_kernel<HD><<<(unsigned)CEIL_DIV(threads, (size_t)256), 256, 0, s>>>(delta, dout, out, N, NH);
    cudaCheckLaunch();
}

/* Set the dynamic shared-memory limit of a kernel once per process. */
template <typename Kernel>
static inline void attention_allow_smem(Kernel kernel, size_t bytes, bool *done)
{
    if (*done) return;
    cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    *done = true;
}

/* Tests only: when non-zero, persistent grids hold at most this many blocks,
   so that small inputs still give each block several work items. */
static unsigned attention_grid_limit = 0;

/* Blocks of a persistent grid over `items` work items: as many as the card
   holds at once (per SM: the kernel's occupancy at `threads` threads and
   `smem` dynamic bytes, found on the first call and kept in *per_sm), at
   most `items` (and at most attention_grid_limit when that is set). Set the
   kernel's shared-memory limit first. */
template <typename Kernel>
static unsigned attention_persistent_grid(Kernel kernel, int threads, size_t smem, size_t items, int *per_sm)
{
    static int sm_count = 0;
    if (!sm_count) {
        int device;
        cudaCheck(cudaGetDevice(&device));
        cudaCheck(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
    }
    if (!*per_sm) {
        cudaCheck(cudaOccupancyMaxActiveBlocksPerMultiprocessor(per_sm, kernel, threads, smem));
        if (*per_sm < 1) die("attention: a kernel of %d threads and %zu bytes of shared memory does not fit an SM",
                             threads, smem);
    }
    size_t blocks = (size_t)sm_count * *per_sm;
    if (attention_grid_limit && attention_grid_limit < blocks) blocks = attention_grid_limit;
    return (unsigned)(items < blocks ? items : blocks);
}

#endif /* PACKLM_ATTENTION_COMMON_CUH */
