/*
 * attention.cuh — varlen (document-masked) causal flash attention on packed
 * batches, forward and backward, bf16 in/out with fp32 accumulation.
 *
 * Shapes (N tokens, S segments, NH query heads, NKV kv heads, HD = 64 or 128):
 *   qkv        (N, (NH + 2*NKV) * HD)  per token: NH q heads | NKV k heads | NKV v heads
 *   cu_seqlens (S + 1) int32, device   segment s = tokens [cu[s], cu[s+1])
 *   out        (N, NH * HD)            lse (NH, N) fp32, natural log
 *   dqkv       (N, (NH + 2*NKV) * HD)  overwritten; dk/dv summed over the
 *                                      NH/NKV query heads sharing a kv head
 * Token i attends to tokens j <= i of its own segment (scores scaled by
 * 1/sqrt(HD)); query head h reads kv head h / (NH/NKV). The CPU oracle is
 * attention_ref.h.
 *
 * The algorithm, for a reader:
 *
 * Tiling. Each segment is cut into query tiles (BM = 64 * MT rows) and
 * key/value tiles (BN = 64) that all start at the segment's first token. A
 * block of 4 warps takes one query tile of one head; each warp owns MT
 * 16-row slices of it (with MT = 2, every K/V fragment it reads from shared
 * memory feeds two tensor-core instructions). The key/value tiles of the
 * same segment up to the query tile's last row are streamed through shared
 * memory (cp.async, two buffers, so tile j+1 loads while tile j is
 * computed). Because all tiles share the segment's origin, tiles above the
 * diagonal are never loaded, tiles of other segments never touched, and only
 * the kv tiles that reach past the query tile's first row need the causal
 * mask (key > query -> -inf). Rows past a segment's end inside the last tile
 * are zero-filled and never stored.
 *
 * Online softmax. The N x N score matrix never exists. For each kv tile a
 * warp computes S = Q K^T (16 x 64) with mma.sync m16n8k16 (tensor cores),
 * keeps a running row max m and row sum l, rescales its output accumulator
 * by exp(m_old - m_new) when the max grows, and adds P V with P = exp(S - m)
 * taken straight from the score registers. At the end out = O / l and
 * lse = m + log(l). Exponentials use exp2 with log2(e) folded into the scale.
 * A row that sees no key (impossible here: every token sees itself) would
 * give l = 0 and is written as zeros, never NaN.
 *
 * Scheduling. A tiny kernel scans cu_seqlens on the device and writes a
 * table with one entry per (segment, tile); the grid is (table entries,
 * heads), so a batch of many short documents yields many small blocks rather
 * than a few blocks walking long masked rows. The table is ordered heaviest
 * tile first (most kv tiles to visit) so the long tiles do not form a tail.
 * The host only computes an upper bound on the table size: no host sync, no
 * allocation; everything lives in the caller's workspace.
 *
 * Backward. P is recomputed from the saved lse (P = exp(S - lse)); with
 * D_i = rowsum(dO_i * O_i) (a small pre-kernel) the gradients are
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - D),  dQ = scale dS K,
 *   dK = scale dS^T Q.
 * Two kernels share the work without atomics: the kv kernel takes one kv
 * tile (64 keys) of one kv head, loops over every query head of its group and
 * every query step at or below the diagonal, and accumulates dK and dV in
 * registers (so GQA sums happen in a fixed order); the dq kernel takes one
 * query tile of one head and loops over its kv steps like the forward. This
 * recomputes S and dP once more (7 tile products instead of 5) but needs no
 * fp32 dq buffer and no atomics. Every
 * gradient element is thus written once by one block in a fixed order: the
 * backward is bit-identical run to run whatever the `deterministic` flag says.
 */
#ifndef PACKLM_ATTENTION_CUH
#define PACKLM_ATTENTION_CUH

#include "cuda_common.h"
#include "mma.cuh"
#include "utils.h"

#define ATTN_TILE 64     /* rows of a kv tile, of a kv-kernel tile, of one m-tile slice of a block */
#define ATTN_THREADS 128 /* 4 warps per block, each owning 16-row slices */
#define ATTN_PAD 8       /* bf16 elements of padding per shared-memory row */
#define ATTN_LOG2E 1.4426950408889634f

/* One scheduled tile: rows [start, min(start + tile rows, seg_end)) of the
   segment [seg_start, seg_end). */
struct AttentionTile {
    int start, seg_start, seg_end, unused; /* unused: pads the entry to 16 bytes */
};

/* ------------------------------------------------------------ workspace */

/* Workspace: tile count | tile table | D (NH, N) fp32 (backward). */
struct AttentionWorkspace {
    int *tile_count;
    AttentionTile *tiles;
    float *delta;
};

static inline size_t attention_max_tiles(int N) { return (size_t)N + CEIL_DIV((size_t)N, ATTN_TILE); }

static size_t attention_workspace_bytes(int N, int NH, int NKV, int HD)
{
    (void)NKV;
    (void)HD;
    return 16 + attention_max_tiles(N) * sizeof(AttentionTile) + (size_t)NH * N * sizeof(float);
}

static inline AttentionWorkspace attention_workspace_split(void *workspace, int N)
{
    AttentionWorkspace ws;
    char *p = (char *)workspace;
    ws.tile_count = (int *)p;
    ws.tiles = (AttentionTile *)(p + 16);
    ws.delta = (float *)(p + 16 + attention_max_tiles(N) * sizeof(AttentionTile));
    return ws;
}

/* ----------------------------------------------------------- scheduling */

/* Exclusive prefix sum over the block (blockDim.x = 1024); *total gets the sum. */
__device__ __forceinline__ int block_exclusive_scan(int x, int *total)
{
    __shared__ int warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int incl = x;
    for (int off = 1; off < 32; off *= 2) {
        int y = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += y;
    }
    __syncthreads(); /* warp_sums may still be read by a previous call */
    if (lane == 31) warp_sums[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        int w = warp_sums[lane];
        for (int off = 1; off < 32; off *= 2) {
            int y = __shfl_up_sync(0xffffffffu, w, off);
            if (lane >= off) w += y;
        }
        warp_sums[lane] = w; /* inclusive over warps */
    }
    __syncthreads();
    *total = warp_sums[31];
    return incl - x + (warp > 0 ? warp_sums[warp - 1] : 0);
}

/* One block of 1024 threads. Orders tiles by their kv-tile count (tile index
   inside its segment + 1), heaviest first, with a counting sort over
   num_buckets shared-memory counters (tile indices past the last bucket share
   it). Writes the tiles and their count into the workspace. */
__global__ void __launch_bounds__(1024) attention_schedule_kernel(AttentionTile *tiles, int *tile_count,
                                                                  const int *cu_seqlens, int num_segments,
                                                                  int tile_rows, int num_buckets,
                                                                  unsigned grid_tiles)
{
    extern __shared__ int bucket_next[]; /* num_buckets: next free slot of each bucket */
    for (int b = threadIdx.x; b < num_buckets; b += blockDim.x) bucket_next[b] = 0;
    __syncthreads();
    /* pass 1: bucket sizes (bucket b = tiles whose index in their segment is b, clamped) */
    for (int s = threadIdx.x; s < num_segments; s += blockDim.x) {
        const int len = cu_seqlens[s + 1] - cu_seqlens[s];
        const int n = len > 0 ? CEIL_DIV(len, tile_rows) : 0;
        for (int t = 0; t < n; t++) atomicAdd(&bucket_next[min(t, num_buckets - 1)], 1);
    }
    __syncthreads();
    /* bucket offsets, heaviest bucket first: reverse exclusive scan */
    int carry = 0;
    for (int b0 = 0; b0 < num_buckets; b0 += blockDim.x) {
        const int rb = num_buckets - 1 - (b0 + (int)threadIdx.x); /* bucket handled by this thread */
        const int size = rb >= 0 ? bucket_next[rb] : 0;
        int chunk_total;
        const int offset = block_exclusive_scan(size, &chunk_total);
        if (rb >= 0) bucket_next[rb] = carry + offset;
        carry += chunk_total;
    }
    if (threadIdx.x == 0) {
        *tile_count = carry;
        if ((unsigned)carry > grid_tiles) { /* max_seqlen below the longest segment: fail loudly */
            printf("attention: %d tiles but the grid has %u (max_seqlen smaller than the longest segment?)\n",
                   carry, grid_tiles);
            __trap();
        }
    }
    __syncthreads();
    /* pass 2: scatter (order inside a bucket does not affect any result) */
    for (int s = threadIdx.x; s < num_segments; s += blockDim.x) {
        const int seg_start = cu_seqlens[s], seg_end = cu_seqlens[s + 1];
        const int n = seg_end > seg_start ? CEIL_DIV(seg_end - seg_start, tile_rows) : 0;
        for (int t = 0; t < n; t++) {
            const int slot = atomicAdd(&bucket_next[min(t, num_buckets - 1)], 1);
            AttentionTile tile = {seg_start + t * tile_rows, seg_start, seg_end, 0};
            tiles[slot] = tile;
        }
    }
}

/* Buckets for the schedule sort: one per possible tile index, capped so the
   counters fit in 32 KB of shared memory (longer segments share the last). */
static inline int attention_schedule_buckets(int max_seqlen, int tile_rows)
{
    const int wanted = CEIL_DIV(max_seqlen, tile_rows);
    return wanted < 8192 ? wanted : 8192;
}

/* Upper bound on the number of tiles: the grid's x size (blocks past the real
   count exit at once). */
static inline unsigned attention_grid_tiles(int num_segments, int max_seqlen, int N, int tile_rows)
{
    const size_t by_tokens = (size_t)num_segments + CEIL_DIV((size_t)N, (size_t)tile_rows);
    const size_t by_longest = (size_t)num_segments * CEIL_DIV((size_t)max_seqlen, (size_t)tile_rows);
    const size_t bound = by_tokens < by_longest ? by_tokens : by_longest;
    return (unsigned)(bound < attention_max_tiles(N) ? bound : attention_max_tiles(N));
}

/* Builds the table of tiles of `tile_rows` rows (>= 64, so the table fits
   the workspace's attention_max_tiles(N) entries); returns the grid's x size. */
static inline unsigned attention_schedule(const AttentionWorkspace &ws, const int *cu_seqlens, int num_segments,
                                          int max_seqlen, int N, int tile_rows, cudaStream_t s)
{
    if (max_seqlen < 1 || max_seqlen > N) die("attention: max_seqlen %d outside [1, N = %d]", max_seqlen, N);
    const int buckets = attention_schedule_buckets(max_seqlen, tile_rows);
    const unsigned grid_tiles = attention_grid_tiles(num_segments, max_seqlen, N, tile_rows);
    attention_schedule_kernel<<<1, 1024, buckets * sizeof(int), s>>>(ws.tiles, ws.tile_count, cu_seqlens,
                                                                     num_segments, tile_rows, buckets, grid_tiles);
    cudaCheckLaunch();
    return grid_tiles;
}

/* ------------------------------------------------------- shared helpers */

/* Asynchronously copy `ROWS` rows of HD bf16 (global row pitch `stride`)
   into shared memory with pitch HD + ATTN_PAD; rows >= valid_rows are zeros. */
template <int HD, int ROWS>
__device__ __forceinline__ void load_rows_async(floatX *smem, const floatX *gmem, size_t stride, int valid_rows)
{
    constexpr int CHUNKS = HD / 8; /* 16-byte pieces per row */
    for (int idx = threadIdx.x; idx < ROWS * CHUNKS; idx += ATTN_THREADS) {
        const int r = idx / CHUNKS, c = idx % CHUNKS;
        const bool valid = r < valid_rows;
        cp_async_16(smem + r * (HD + ATTN_PAD) + c * 8, gmem + (valid ? r * stride : 0) + c * 8, valid);
    }
}

/* Double buffering over num_steps steps whose inputs load(i) fetches as one
   cp.async group into buffer i % 2. At step i: start loading step i + 1 (if
   any), wait for step i's group, then sync so its buffer is ready for the
   whole block. */
template <typename Load>
__device__ __forceinline__ void pipeline_wait_step(int i, int num_steps, const Load &load)
{
    if (i + 1 < num_steps) {
        load(i + 1);
        cp_async_wait<1>();
    } else {
        cp_async_wait<0>();
    }
    __syncthreads();
}

/* Store a warp's 16 x HD fp32 accumulator times `scale` as bf16 rows
   row0 + (0..15) of `dst` (row pitch `stride`), skipping rows >= row_end. */
template <int HD>
__device__ __forceinline__ void store_rows(floatX *dst, size_t stride, const float acc[HD / 8][4], float scale,
                                           int row0, int row_end)
{
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int row = row0 + g + 8 * half;
        if (row >= row_end) continue;
        floatX *p = dst + (size_t)row * stride + 2 * t;
#pragma unroll
        for (int n = 0; n < HD / 8; n++) {
            *reinterpret_cast<__nv_bfloat162 *>(p + n * 8) =
                __floats2bfloat162_rn(acc[n][2 * half] * scale, acc[n][2 * half + 1] * scale);
        }
    }
}

/* Set the dynamic shared-memory limit of a kernel once per process. */
template <typename Kernel>
static inline void attention_allow_smem(Kernel kernel, size_t bytes, bool *done)
{
    if (*done) return;
    cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    *done = true;
}

/* ---------------------------------------------------------------- forward */

/* A forward block: 4 warps, MT m-tiles of 16 rows each per warp, so a q tile
   of BM = 64 * MT rows (warp w owns rows m * 64 + w * 16 + 0..15). */
template <int HD, int MT>
struct AttnForward {
    static constexpr int BM = ATTN_TILE * MT, BN = ATTN_TILE, LD = HD + ATTN_PAD;
    static constexpr size_t smem_bytes = (size_t)(BM + 4 * BN) * LD * sizeof(floatX); /* Q, 2x K, 2x V */
};

template <int HD, int MT>
__global__ void __launch_bounds__(ATTN_THREADS)
    attention_forward_kernel(floatX *out, float *lse, const floatX *qkv, const AttentionTile *tiles,
                             const int *tile_count, int N, int NH, int NKV)
{
    if ((int)blockIdx.x >= *tile_count) return;
    using F = AttnForward<HD, MT>;
    constexpr int BM = F::BM, BN = F::BN, LD = F::LD, NT_S = BN / 8, NT_O = HD / 8;
    extern __shared__ __align__(16) unsigned char attention_smem[];
    floatX *q_s = reinterpret_cast<floatX *>(attention_smem);
    floatX *k_s = q_s + BM * LD; /* [2][BN][LD] */
    floatX *v_s = k_s + 2 * BN * LD;

    const AttentionTile tile = tiles[blockIdx.x];
    const int h = blockIdx.y, kvh = h / (NH / NKV);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const size_t stride = (size_t)(NH + 2 * NKV) * HD;
    const floatX *k_g = qkv + (size_t)tile.seg_start * stride + (NH + kvh) * HD;
    const floatX *v_g = k_g + NKV * HD;
    const int num_kv = CEIL_DIV(min(tile.start + BM, tile.seg_end) - tile.seg_start, BN);
    const float scale_log2 = ATTN_LOG2E / sqrtf((float)HD);

    load_rows_async<HD, BM>(q_s, qkv + (size_t)tile.start * stride + h * HD, stride, tile.seg_end - tile.start);
    auto load_kv = [&](int j) {
        const int rows = tile.seg_end - (tile.seg_start + j * BN);
        load_rows_async<HD, BN>(k_s + (j % 2) * BN * LD, k_g + (size_t)j * BN * stride, stride, rows);
        load_rows_async<HD, BN>(v_s + (j % 2) * BN * LD, v_g + (size_t)j * BN * stride, stride, rows);
        cp_async_commit();
    };
    load_kv(0);

    float o[MT][NT_O][4];
    float row_max[MT][2], row_sum[MT][2];
#pragma unroll
    for (int m = 0; m < MT; m++) {
        zero_acc<NT_O>(o[m]);
        row_max[m][0] = row_max[m][1] = -INFINITY;
        row_sum[m][0] = row_sum[m][1] = 0.0f;
    }

    for (int j = 0; j < num_kv; j++) {
        pipeline_wait_step(j, num_kv, load_kv);
        const floatX *k_tile = k_s + (j % 2) * BN * LD, *v_tile = v_s + (j % 2) * BN * LD;

        float s[MT][NT_S][4];
#pragma unroll
        for (int m = 0; m < MT; m++) zero_acc<NT_S>(s[m]);
        warp_mma_abt_smem_a<HD, NT_S, MT>(s, q_s + warp * 16 * LD, LD, ATTN_TILE, k_tile, LD);

        /* scale to log2 units; causal mask only where a key can follow a query */
        const int key0 = tile.seg_start + j * BN;
        const bool needs_mask = key0 + BN - 1 > tile.start;
        uint32_t p[MT][NT_S / 2][4];
#pragma unroll
        for (int m = 0; m < MT; m++) {
            const int row0 = tile.start + m * ATTN_TILE + warp * 16 + g; /* rows row0, row0 + 8 */
            float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int n = 0; n < NT_S; n++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float v = s[m][n][e] * scale_log2;
                    if (needs_mask && key0 + n * 8 + 2 * t + (e % 2) > row0 + 8 * (e / 2)) v = -INFINITY;
                    s[m][n][e] = v;
                    tile_max[e / 2] = fmaxf(tile_max[e / 2], v);
                }
            }
            float alpha[2], base[2];
#pragma unroll
            for (int r = 0; r < 2; r++) {
                tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
                tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
                const float new_max = fmaxf(row_max[m][r], tile_max[r]);
                base[r] = new_max == -INFINITY ? 0.0f : new_max; /* fully masked so far: avoid inf - inf */
                alpha[r] = exp2f(row_max[m][r] - base[r]);
                row_max[m][r] = new_max;
                row_sum[m][r] *= alpha[r];
            }
            scale_acc_rows<NT_O>(o[m], alpha);
#pragma unroll
            for (int n = 0; n < NT_S; n++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    s[m][n][e] = exp2f(s[m][n][e] - base[e / 2]);
                    row_sum[m][e / 2] += s[m][n][e];
                }
            }
            acc_to_a_frags<NT_S>(p[m], s[m]);
        }
        warp_mma_ab<BN, NT_O, MT>(o, p, v_tile, LD);
        __syncthreads(); /* this buffer is refilled two iterations later */
    }

#pragma unroll
    for (int m = 0; m < MT; m++) {
        float inv_sum[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float sum = row_sum[m][r];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            inv_sum[r] = sum > 0.0f ? 1.0f / sum : 0.0f;
            const int row = tile.start + m * ATTN_TILE + warp * 16 + g + 8 * r;
            if (t == 0 && row < tile.seg_end)
                lse[(size_t)h * N + row] = sum > 0.0f ? (row_max[m][r] + log2f(sum)) / ATTN_LOG2E : -INFINITY;
        }
        scale_acc_rows<NT_O>(o[m], inv_sum);
        store_rows<HD>(out + h * HD, (size_t)NH * HD, o[m], 1.0f, tile.start + m * ATTN_TILE + warp * 16,
                       tile.seg_end);
    }
}

static inline void attention_check_shape(const char *who, int NH, int NKV, int HD)
{
    if (HD != 64 && HD != 128) die("%s: head dim %d is not supported (64 or 128)", who, HD);
    if (NH <= 0 || NKV <= 0 || NH % NKV != 0)
        die("%s: kv heads (%d) must divide query heads (%d)", who, NKV, NH);
}

/* Tile shapes per head dim, chosen by measurement on an H100 (see
   dev/notes/attention.md): m-tiles per warp in the forward (FWD_MT) and the
   dq kernel (BWD_Q_MT), query rows per step of the kv kernel (BWD_BQ), keys
   per step of the dq kernel (BWD_BK). Two m-tiles per warp halve the shared
   memory read per tensor-core instruction; for HD 64 the register file
   leaves too little room for it to pay. */
template <int HD>
struct AttnConfig;
template <>
struct AttnConfig<64> {
    static constexpr int FWD_MT = 1, BWD_BQ = 64, BWD_BK = 64, BWD_Q_MT = 1;
};
template <>
struct AttnConfig<128> {
    static constexpr int FWD_MT = 2, BWD_BQ = 64, BWD_BK = 32, BWD_Q_MT = 2;
};

template <int HD>
static void attention_forward_launch(floatX *out, float *lse, const floatX *qkv, const int *cu_seqlens,
                                     int num_segments, int max_seqlen, int N, int NH, int NKV, void *workspace,
                                     cudaStream_t s)
{
    constexpr int MT = AttnConfig<HD>::FWD_MT;
    using F = AttnForward<HD, MT>;
    static bool smem_set = false;
    attention_allow_smem(attention_forward_kernel<HD, MT>, F::smem_bytes, &smem_set);
    const AttentionWorkspace ws = attention_workspace_split(workspace, N);
    const dim3 grid(attention_schedule(ws, cu_seqlens, num_segments, max_seqlen, N, F::BM, s), NH);
    attention_forward_kernel<HD, MT>
        <<<grid, ATTN_THREADS, F::smem_bytes, s>>>(out, lse, qkv, ws.tiles, ws.tile_count, N, NH, NKV);
    cudaCheckLaunch();
}

static void attention_forward_sm80(floatX *out, float *lse, const floatX *qkv, const int *cu_seqlens,
                                   int num_segments, int max_seqlen, int N, int NH, int NKV, int HD, void *workspace,
                                   cudaStream_t s)
{
    if (HD == 64)
        attention_forward_launch<64>(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, workspace, s);
    else
        attention_forward_launch<128>(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, workspace, s);
}

/* --------------------------------------------------------------- backward */

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

/* kv kernel: one 64-key tile of one kv head; steps of BQ query rows. */
template <int HD, int BQ>
struct AttnBackwardKVSmem {
    static constexpr int LD = HD + ATTN_PAD;
    static constexpr size_t bytes =
        (size_t)(2 * ATTN_TILE + 4 * BQ) * LD * sizeof(floatX) + 4 * BQ * sizeof(float); /* K, V, 2x Q, 2x dO, 2x lse, 2x D */
};

template <int HD, int BQ>
__global__ void __launch_bounds__(ATTN_THREADS)
    attention_backward_kv_kernel(floatX *dqkv, const floatX *dout, const floatX *qkv, const float *lse,
                                 const float *delta, const AttentionTile *tiles, const int *tile_count, int N,
                                 int NH, int NKV)
{
    if ((int)blockIdx.x >= *tile_count) return;
    constexpr int BK = ATTN_TILE, LD = HD + ATTN_PAD, NT_S = BQ / 8, NT_D = HD / 8;
    extern __shared__ __align__(16) unsigned char attention_smem[];
    floatX *k_s = reinterpret_cast<floatX *>(attention_smem);
    floatX *v_s = k_s + BK * LD;
    floatX *q_s = v_s + BK * LD;   /* [2][BQ][LD] */
    floatX *do_s = q_s + 2 * BQ * LD; /* [2][BQ][LD] */
    float *lse_s = reinterpret_cast<float *>(do_s + 2 * BQ * LD); /* [2][BQ], log2 units */
    float *delta_s = lse_s + 2 * BQ;                               /* [2][BQ] */

    const AttentionTile tile = tiles[blockIdx.x];
    const int kvh = blockIdx.y, group = NH / NKV;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const size_t stride = (size_t)(NH + 2 * NKV) * HD, dstride = (size_t)NH * HD;
    const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * ATTN_LOG2E;
    const int k0 = tile.start;
    const int q_steps = CEIL_DIV(tile.seg_end - k0, BQ), num_steps = group * q_steps;

    const floatX *k_g = qkv + (size_t)k0 * stride + (NH + kvh) * HD;
    load_rows_async<HD, BK>(k_s, k_g, stride, tile.seg_end - k0);
    load_rows_async<HD, BK>(v_s, k_g + NKV * HD, stride, tile.seg_end - k0);
    /* step i: query head kvh*group + i / q_steps, rows q0 = k0 + (i % q_steps) * BQ */
    auto load_step = [&](int i) {
        const int h = kvh * group + i / q_steps, q0 = k0 + (i % q_steps) * BQ, buf = i % 2;
        load_rows_async<HD, BQ>(q_s + buf * BQ * LD, qkv + (size_t)q0 * stride + h * HD, stride, tile.seg_end - q0);
        load_rows_async<HD, BQ>(do_s + buf * BQ * LD, dout + (size_t)q0 * dstride + h * HD, dstride,
                                tile.seg_end - q0);
        for (int r = threadIdx.x; r < BQ; r += ATTN_THREADS) {
            const bool valid = q0 + r < tile.seg_end; /* lse = +inf makes P = 0 past the segment */
            lse_s[buf * BQ + r] = valid ? lse[(size_t)h * N + q0 + r] * ATTN_LOG2E : INFINITY;
            delta_s[buf * BQ + r] = valid ? delta[(size_t)h * N + q0 + r] : 0.0f;
        }
        cp_async_commit();
    };
    load_step(0);

    float dk[NT_D][4], dv[NT_D][4];
    zero_acc<NT_D>(dk);
    zero_acc<NT_D>(dv);
    const int key_row = k0 + warp * 16 + g; /* this thread's keys: key_row, key_row + 8 */

    for (int i = 0; i < num_steps; i++) {
        pipeline_wait_step(i, num_steps, load_step);
        const int buf = i % 2, q0 = k0 + (i % q_steps) * BQ;
        const floatX *q_tile = q_s + buf * BQ * LD, *do_tile = do_s + buf * BQ * LD;
        const float *lse_tile = lse_s + buf * BQ, *delta_tile = delta_s + buf * BQ;

        /* S^T = K Q^T and P^T = exp(S^T - lse): rows are keys, columns queries */
        float p[NT_S][4];
        zero_acc<NT_S>(p);
        warp_mma_abt_smem_a<HD, NT_S, 1>(&p, k_s + warp * 16 * LD, LD, 0, q_tile, LD);
        const bool needs_mask = q0 < k0 + BK;
#pragma unroll
        for (int n = 0; n < NT_S; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = n * 8 + 2 * t + (e % 2);
                float v = exp2f(p[n][e] * scale_log2 - lse_tile[col]);
                if (needs_mask && key_row + 8 * (e / 2) > q0 + col) v = 0.0f;
                p[n][e] = v;
            }
        }
        /* dP^T = V dO^T, dS^T = P^T * (dP^T - D) */
        float ds[NT_S][4];
        zero_acc<NT_S>(ds);
        warp_mma_abt_smem_a<HD, NT_S, 1>(&ds, v_s + warp * 16 * LD, LD, 0, do_tile, LD);
#pragma unroll
        for (int n = 0; n < NT_S; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) ds[n][e] = p[n][e] * (ds[n][e] - delta_tile[n * 8 + 2 * t + (e % 2)]);
        }
        /* dV += P^T dO, dK += dS^T Q */
        uint32_t a_frag[NT_S / 2][4];
        acc_to_a_frags<NT_S>(a_frag, p);
        warp_mma_ab<BQ, NT_D>(&dv, &a_frag, do_tile, LD);
        acc_to_a_frags<NT_S>(a_frag, ds);
        warp_mma_ab<BQ, NT_D>(&dk, &a_frag, q_tile, LD);
        __syncthreads();
    }

    store_rows<HD>(dqkv + (NH + kvh) * HD, stride, dk, scale, k0 + warp * 16, tile.seg_end);
    store_rows<HD>(dqkv + (NH + NKV + kvh) * HD, stride, dv, 1.0f, k0 + warp * 16, tile.seg_end);
}

/* dq kernel: one query tile of BM = 64 * MT rows of one head (warp w owns rows
   m * 64 + w * 16 + 0..15); steps of BK keys. */
template <int HD, int BK, int MT>
struct AttnBackwardQ {
    static constexpr int BM = ATTN_TILE * MT, LD = HD + ATTN_PAD;
    static constexpr size_t smem_bytes = (size_t)(2 * BM + 4 * BK) * LD * sizeof(floatX); /* Q, dO, 2x K, 2x V */
};

template <int HD, int BK, int MT>
__global__ void __launch_bounds__(ATTN_THREADS)
    attention_backward_q_kernel(floatX *dqkv, const floatX *dout, const floatX *qkv, const float *lse,
                                const float *delta, const AttentionTile *tiles, const int *tile_count, int N,
                                int NH, int NKV)
{
    if ((int)blockIdx.x >= *tile_count) return;
    using B = AttnBackwardQ<HD, BK, MT>;
    constexpr int BM = B::BM, LD = B::LD, NT_S = BK / 8, NT_D = HD / 8;
    extern __shared__ __align__(16) unsigned char attention_smem[];
    floatX *q_s = reinterpret_cast<floatX *>(attention_smem);
    floatX *do_s = q_s + BM * LD;
    floatX *k_s = do_s + BM * LD;    /* [2][BK][LD] */
    floatX *v_s = k_s + 2 * BK * LD; /* [2][BK][LD] */

    const AttentionTile tile = tiles[blockIdx.x];
    const int h = blockIdx.y, kvh = h / (NH / NKV);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const size_t stride = (size_t)(NH + 2 * NKV) * HD, dstride = (size_t)NH * HD;
    const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * ATTN_LOG2E;
    const int q_rows = tile.seg_end - tile.start;
    const int num_steps = CEIL_DIV(min(tile.start + BM, tile.seg_end) - tile.seg_start, BK);

    load_rows_async<HD, BM>(q_s, qkv + (size_t)tile.start * stride + h * HD, stride, q_rows);
    load_rows_async<HD, BM>(do_s, dout + (size_t)tile.start * dstride + h * HD, dstride, q_rows);
    const floatX *k_g = qkv + (size_t)tile.seg_start * stride + (NH + kvh) * HD;
    auto load_kv = [&](int j) {
        const int rows = tile.seg_end - (tile.seg_start + j * BK);
        load_rows_async<HD, BK>(k_s + (j % 2) * BK * LD, k_g + (size_t)j * BK * stride, stride, rows);
        load_rows_async<HD, BK>(v_s + (j % 2) * BK * LD, k_g + NKV * HD + (size_t)j * BK * stride, stride, rows);
        cp_async_commit();
    };
    load_kv(0);

    /* this thread's query rows: q_row[m][r] = start + m * 64 + warp * 16 + g + 8 r */
    float row_lse[MT][2], row_delta[MT][2];
    int q_row[MT][2];
#pragma unroll
    for (int m = 0; m < MT; m++) {
#pragma unroll
        for (int r = 0; r < 2; r++) {
            q_row[m][r] = tile.start + m * ATTN_TILE + warp * 16 + g + 8 * r;
            const bool valid = q_row[m][r] < tile.seg_end; /* lse = +inf makes P = 0 past the segment */
            row_lse[m][r] = valid ? lse[(size_t)h * N + q_row[m][r]] * ATTN_LOG2E : INFINITY;
            row_delta[m][r] = valid ? delta[(size_t)h * N + q_row[m][r]] : 0.0f;
        }
    }

    float dq[MT][NT_D][4];
#pragma unroll
    for (int m = 0; m < MT; m++) zero_acc<NT_D>(dq[m]);

    for (int j = 0; j < num_steps; j++) {
        pipeline_wait_step(j, num_steps, load_kv);
        const floatX *k_tile = k_s + (j % 2) * BK * LD, *v_tile = v_s + (j % 2) * BK * LD;
        const int key0 = tile.seg_start + j * BK;

        /* P = exp(Q K^T - lse), dP = dO V^T, dS = P * (dP - D) */
        float p[MT][NT_S][4], ds[MT][NT_S][4];
#pragma unroll
        for (int m = 0; m < MT; m++) {
            zero_acc<NT_S>(p[m]);
            zero_acc<NT_S>(ds[m]);
        }
        warp_mma_abt_smem_a<HD, NT_S, MT>(p, q_s + warp * 16 * LD, LD, ATTN_TILE, k_tile, LD);
        warp_mma_abt_smem_a<HD, NT_S, MT>(ds, do_s + warp * 16 * LD, LD, ATTN_TILE, v_tile, LD);
        const bool needs_mask = key0 + BK - 1 > tile.start;
        uint32_t ds_frag[MT][NT_S / 2][4];
#pragma unroll
        for (int m = 0; m < MT; m++) {
#pragma unroll
            for (int n = 0; n < NT_S; n++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float v = exp2f(p[m][n][e] * scale_log2 - row_lse[m][e / 2]);
                    if (needs_mask && key0 + n * 8 + 2 * t + (e % 2) > q_row[m][e / 2]) v = 0.0f;
                    ds[m][n][e] = v * (ds[m][n][e] - row_delta[m][e / 2]);
                }
            }
            acc_to_a_frags<NT_S>(ds_frag[m], ds[m]);
        }
        /* dQ += dS K */
        warp_mma_ab<BK, NT_D, MT>(dq, ds_frag, k_tile, LD);
        __syncthreads();
    }
#pragma unroll
    for (int m = 0; m < MT; m++)
        store_rows<HD>(dqkv + h * HD, stride, dq[m], scale, tile.start + m * ATTN_TILE + warp * 16, tile.seg_end);
}

template <int HD>
static void attention_backward_launch(floatX *dqkv, const floatX *dout, const floatX *qkv, const floatX *out,
                                      const float *lse, const int *cu_seqlens, int num_segments, int max_seqlen,
                                      int N, int NH, int NKV, void *workspace, cudaStream_t s)
{
    constexpr int BQ = AttnConfig<HD>::BWD_BQ, BK = AttnConfig<HD>::BWD_BK, MT = AttnConfig<HD>::BWD_Q_MT;
    using Q = AttnBackwardQ<HD, BK, MT>;
    const AttentionWorkspace ws = attention_workspace_split(workspace, N);
    const size_t rows = (size_t)N * NH * (HD / 8);
    attention_delta_kernel<HD><<<(unsigned)CEIL_DIV(rows, (size_t)256), 256, 0, s>>>(ws.delta, dout, out, N, NH);
    cudaCheckLaunch();

    static bool kv_smem_set = false, q_smem_set = false;
    const size_t kv_smem = AttnBackwardKVSmem<HD, BQ>::bytes;
    attention_allow_smem(attention_backward_kv_kernel<HD, BQ>, kv_smem, &kv_smem_set);
    attention_allow_smem(attention_backward_q_kernel<HD, BK, MT>, Q::smem_bytes, &q_smem_set);
    unsigned grid_tiles = attention_schedule(ws, cu_seqlens, num_segments, max_seqlen, N, ATTN_TILE, s);
    attention_backward_kv_kernel<HD, BQ><<<dim3(grid_tiles, NKV), ATTN_THREADS, kv_smem, s>>>(
        dqkv, dout, qkv, lse, ws.delta, ws.tiles, ws.tile_count, N, NH, NKV);
    cudaCheckLaunch();
    if (Q::BM != ATTN_TILE) /* the dq kernel's tiles are taller: new table, in stream order */
        grid_tiles = attention_schedule(ws, cu_seqlens, num_segments, max_seqlen, N, Q::BM, s);
    attention_backward_q_kernel<HD, BK, MT><<<dim3(grid_tiles, NH), ATTN_THREADS, Q::smem_bytes, s>>>(
        dqkv, dout, qkv, lse, ws.delta, ws.tiles, ws.tile_count, N, NH, NKV);
    cudaCheckLaunch();
}

static void attention_backward_sm80(floatX *dqkv, const floatX *dout, const floatX *qkv, const floatX *out,
                                    const float *lse, const int *cu_seqlens, int num_segments, int max_seqlen, int N,
                                    int NH, int NKV, int HD, void *workspace, cudaStream_t s)
{
    if (HD == 64)
        attention_backward_launch<64>(dqkv, dout, qkv, out, lse, cu_seqlens, num_segments, max_seqlen, N, NH, NKV,
                                      workspace, s);
    else
        attention_backward_launch<128>(dqkv, dout, qkv, out, lse, cu_seqlens, num_segments, max_seqlen, N, NH, NKV,
                                       workspace, s);
}

/* ------------------------------------------------------------- dispatch */

#if __has_include("attention_sm90.cuh")
#include "attention_sm90.cuh"
#endif

/* Which kernels run: the mma.sync kernels (sm80, any card from sm_80 on) or
   the Hopper kernels (sm90: wgmma + TMA, compute capability 9.0 and a binary
   that carries sm_90a code). AUTO picks sm90 when both hold. */
enum AttentionPath { ATTENTION_PATH_AUTO, ATTENTION_PATH_SM80, ATTENTION_PATH_SM90 };

static const char *attention_path_name(AttentionPath path)
{
    return path == ATTENTION_PATH_SM90 ? "sm90" : path == ATTENTION_PATH_SM80 ? "sm80" : "auto";
}

/* 1 in the sm_90a machine code of this binary, 0 in any other. Read back by
   the host, it says whether the card runs code built with the Hopper
   instructions (a binary built for sm_80 or plain sm_90 has none). */
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ int attention_binary_has_sm90a = 1;
#else
__device__ int attention_binary_has_sm90a = 0;
#endif

/* Empty when the sm90 path can run on the current card, else why not. */
static const char *attention_sm90_unavailable(void)
{
    static int probed = 0;
    static const char *reason = "";
    if (probed) return reason;
    probed = 1;
    int device, major, minor, has_code = 0;
    cudaCheck(cudaGetDevice(&device));
    cudaCheck(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    cudaCheck(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    if (major != 9 || minor != 0) {
        reason = "the card is not compute capability 9.0";
        return reason;
    }
    cudaCheck(cudaMemcpyFromSymbol(&has_code, attention_binary_has_sm90a, sizeof(int)));
    if (!has_code) reason = "this binary carries no sm_90a code (build with GPU_ARCH=90a)";
#if !__has_include("attention_sm90.cuh")
    else reason = "this build has no sm90 attention kernels yet";
#endif
    return reason;
}

/* The path chosen for the whole process (attention_select_path). */
static AttentionPath attention_requested_path = ATTENTION_PATH_AUTO;

/* The path the kernels take now: AUTO resolved against the card and binary;
   a forced sm90 path that cannot run is a clear error. */
static AttentionPath attention_active_path(void)
{
    const char *why_not = attention_sm90_unavailable();
    if (attention_requested_path == ATTENTION_PATH_SM90 && why_not[0])
        die("attention: the sm90 path was requested but %s", why_not);
    if (attention_requested_path == ATTENTION_PATH_AUTO) return why_not[0] ? ATTENTION_PATH_SM80 : ATTENTION_PATH_SM90;
    return attention_requested_path;
}

/* Choose the path for every later attention call of this process; checks a
   forced sm90 path at once. */
static void attention_select_path(AttentionPath path)
{
    attention_requested_path = path;
    attention_active_path();
}

static void attention_forward(floatX *out, float *lse, const floatX *qkv, const int *cu_seqlens, int num_segments,
                              int max_seqlen, int N, int NH, int NKV, int HD, void *workspace, cudaStream_t s)
{
    attention_check_shape("attention_forward", NH, NKV, HD);
    if (N <= 0 || num_segments <= 0) return;
#if __has_include("attention_sm90.cuh")
    if (attention_active_path() == ATTENTION_PATH_SM90) {
        attention_forward_sm90(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, HD, workspace, s);
        return;
    }
#endif
    attention_forward_sm80(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, HD, workspace, s);
}

/* The sm90 path uses the sm80 backward until the Hopper backward lands. */
static void attention_backward(floatX *dqkv, const floatX *dout, const floatX *qkv, const floatX *out,
                               const float *lse, const int *cu_seqlens, int num_segments, int max_seqlen, int N,
                               int NH, int NKV, int HD, void *workspace, int deterministic, cudaStream_t s)
{
    (void)deterministic; /* always deterministic: see the comment at the top */
    attention_check_shape("attention_backward", NH, NKV, HD);
    if (N <= 0 || num_segments <= 0) return;
    attention_active_path(); /* a forced sm90 path that cannot run fails here too */
    attention_backward_sm80(dqkv, dout, qkv, out, lse, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, HD,
                            workspace, s);
}

#endif /* PACKLM_ATTENTION_CUH */
