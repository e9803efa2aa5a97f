/*
 * attention_sm90.cuh — the Hopper (sm_90a) forward of the varlen causal flash
 * attention: same contract as attention_forward in attention.cuh (packed qkv
 * (N, (NH + 2*NKV) * HD) bf16, cu_seqlens, out (N, NH*HD) bf16, lse (NH, N)
 * fp32 natural log, HD 64 or 128, GQA), built from the wrappers of hopper.cuh.
 *
 * Work: items (query tile of BM = 128 rows of one segment, query head), taken
 * from the 128-row tile table heaviest first; a persistent grid of one block
 * per SM walks items blockIdx.x, + gridDim.x, ... . Key/value tiles (BN = 128
 * keys) start at the segment's first token, so the last kv tile of an item is
 * the diagonal one and the only one that needs the causal mask; keys past the
 * segment end only ever meet masked-out or discarded rows.
 *
 * Roles (3 warpgroups, 384 threads, registers rebalanced by setmaxnreg):
 *   producer  warpgroup 0, one thread: TMA loads of Q (once per item) and of
 *             K, V (one pair per kv tile) into a ring of STAGES buffers;
 *             keeps 40 registers.
 *   consumers warpgroups 1, 2: 64 query rows each. Per kv tile:
 *             S = Q K^T (wgmma, both operands in shared memory), mask,
 *             online softmax in registers, P (bf16, registers) V (wgmma with
 *             A from registers). While one warpgroup does its softmax the
 *             other's wgmmas use the tensor cores. 232 registers.
 *
 * Who waits on whom (mbarriers; "full" barriers complete when TMA bytes land,
 * "empty" ones when all 256 consumer threads arrived):
 *
 *   producer                          consumers (x2)
 *   wait q_empty ------------------<- arrive q_empty after the item's last Q K^T
 *   TMA Q -> q_full --------------->  wait q_full
 *   for each kv tile, stage s:
 *     wait kv_empty[s] ------------<- arrive kv_empty[s] after P V of that stage
 *     TMA K -> k_full[s] ---------->  wait k_full[s]: S = Q K^T, softmax
 *     TMA V -> v_full[s] ---------->  wait v_full[s]: O += P V
 *                                     last kv tile done: O / l and lse stored
 *                                     from registers (plain predicated stores:
 *                                     a tile may end past its segment)
 *
 * Tiles lie in shared memory as 64-column chunks of 128-byte swizzled rows
 * (the layout of hopper.cuh): Q [HD/64][128][64], each K and V stage
 * [HD/64][128][64]. Q K^T reads Q and K K-major; P V reads V MN-major.
 */
#ifndef PACKLM_ATTENTION_SM90_CUH
#define PACKLM_ATTENTION_SM90_CUH

#include "attention_common.cuh"
#include "attention_schedule.cuh"
#include "hopper.cuh"
#include "mma.cuh"

template <int HD>
struct AttnSm90Forward {
    static constexpr int BM = 128, BN = 128, STAGES = 2, THREADS = 384;
    static constexpr int Q_BYTES = BM * HD * 2, KV_BYTES = BN * HD * 2;
    static constexpr int BARRIERS = 2 + 3 * STAGES; /* q_full, q_empty, k_full[], v_full[], kv_empty[] */
    static constexpr size_t smem_bytes = 1024 /* alignment slack */ + Q_BYTES + 2 * STAGES * KV_BYTES + 8 * BARRIERS;
};

/* The shared memory of one block, carved from the dynamic allocation. */
template <int HD>
struct AttnSm90Smem {
    using F = AttnSm90Forward<HD>;
    unsigned char *base; /* Q, then per stage K and V */
    uint64_t *q_full, *q_empty, *k_full, *v_full, *kv_empty;

    __device__ AttnSm90Smem(unsigned char *raw)
    {
        base = raw + ((1024 - smem_addr(raw) % 1024) % 1024); /* swizzled tiles: 1024-byte aligned */
        q_full = reinterpret_cast<uint64_t *>(base + F::Q_BYTES + 2 * F::STAGES * F::KV_BYTES);
        q_empty = q_full + 1;
        k_full = q_full + 2;
        v_full = k_full + F::STAGES;
        kv_empty = v_full + F::STAGES;
    }
    __device__ floatX *q() const { return reinterpret_cast<floatX *>(base); }
    __device__ floatX *k(int s) const { return reinterpret_cast<floatX *>(base + F::Q_BYTES + 2 * s * F::KV_BYTES); }
    __device__ floatX *v(int s) const { return k(s) + F::KV_BYTES / 2; }
};

/* Element offset of (row, col) of 64-column chunk `chunk` in a [chunks][ROWS][64] tile. */
template <int ROWS>
__device__ __forceinline__ int chunked_offset(int chunk, int row, int col) { return (chunk * ROWS + row) * 64 + col; }

/* One online-softmax step for a warp's 16 rows (row[0], row[1]: this
   thread's rows g and g + 8): the scores s of one kv tile (16 x 8*NT_S,
   first key first_key) become P = exp2(s*scale_log2 - max) packed as bf16 A
   fragments; the row max and sum move on and o is rescaled. Keys after a
   row's query are masked when `mask`. */
template <int NT_S, int NT_O>
__device__ __forceinline__ void sm90_softmax_step(float s[NT_S][4], float o[NT_O][4], uint32_t p[NT_S / 2][4],
                                                  float row_max[2], float row_sum[2], float scale_log2, bool mask,
                                                  int first_key, const int row[2])
{
    const int t = threadIdx.x % 4;
    float block_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < NT_S; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float v = s[n][e] * scale_log2;
            if (mask && attention_masked(first_key + n * 8 + 2 * t + (e % 2), row[e / 2])) v = -INFINITY;
            s[n][e] = v;
            block_max[e / 2] = fmaxf(block_max[e / 2], v);
        }
    }
    float alpha[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; r++) alpha[r] = online_softmax_update(&row_max[r], &row_sum[r], quad_max(block_max[r]), &base[r]);
    scale_acc_rows<NT_O>(o, alpha);
#pragma unroll
    for (int n = 0; n < NT_S; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            s[n][e] = exp2f(s[n][e] - base[e / 2]);
            row_sum[e / 2] += s[n][e];
        }
    }
    acc_to_a_frags<NT_S>(p, s);
}

template <int HD>
__global__ void __launch_bounds__(AttnSm90Forward<HD>::THREADS, 1)
    attention_forward_sm90_kernel(const __grid_constant__ CUtensorMap qkv_map, floatX *out, float *lse,
                                  const AttentionTile *tiles, const int *tile_count, int N, int NH, int NKV)
{
#if PACKLM_SM90_DEVICE
    using F = AttnSm90Forward<HD>;
    constexpr int BM = F::BM, BN = F::BN, STAGES = F::STAGES;
    constexpr int NT_S = BN / 8, NT_O = HD / 8;
    extern __shared__ unsigned char attention_sm90_smem[];
    const AttnSm90Smem<HD> sm(attention_sm90_smem);
    const int items = *tile_count * NH, warpgroup = threadIdx.x / 128;

    if (threadIdx.x == 0) {
        tma_prefetch_map(&qkv_map);
        mbarrier_init(sm.q_full, 1);
        mbarrier_init(sm.q_empty, 256);
        for (int s = 0; s < STAGES; s++) {
            mbarrier_init(&sm.k_full[s], 1);
            mbarrier_init(&sm.v_full[s], 1);
            mbarrier_init(&sm.kv_empty[s], 256);
        }
        mbarrier_init_fence();
    }
    __syncthreads();

    if (warpgroup == 0) { /* ------------------------------------ producer */
        setmaxnreg_dec<40>();
        if (threadIdx.x != 0) return;
        int step = 0; /* kv tiles loaded so far: stage step % STAGES, its use step / STAGES */
        for (int item = blockIdx.x, n = 0; item < items; item += gridDim.x, n++) {
            const AttentionTile tile = tiles[item / NH];
            const int h = item % NH, kvh = h / (NH / NKV);
            const int num_kv = (tile.start - tile.seg_start) / BN + 1;
            mbarrier_wait(sm.q_empty, (n & 1) ^ 1);
            mbarrier_expect_tx(sm.q_full, F::Q_BYTES);
            tma_load_3d(sm.q(), &qkv_map, sm.q_full, 0, tile.start, h * HD / 64);
            for (int j = 0; j < num_kv; j++, step++) {
                const int s = step % STAGES, key0 = tile.seg_start + j * BN;
                mbarrier_wait(&sm.kv_empty[s], ((step / STAGES) & 1) ^ 1);
                mbarrier_expect_tx(&sm.k_full[s], F::KV_BYTES);
                tma_load_3d(sm.k(s), &qkv_map, &sm.k_full[s], 0, key0, attention_k_column(NH, kvh, HD) / 64);
                mbarrier_expect_tx(&sm.v_full[s], F::KV_BYTES);
                tma_load_3d(sm.v(s), &qkv_map, &sm.v_full[s], 0, key0, attention_v_column(NH, NKV, kvh, HD) / 64);
            }
        }
        return;
    }

    /* ---------------------------------------------------------- consumers */
    setmaxnreg_inc<232>();
    const int wg = warpgroup - 1, warp = (threadIdx.x / 32) % 4, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    const float scale_log2 = ATTN_LOG2E / sqrtf((float)HD);
    int step = 0;
    for (int item = blockIdx.x, n = 0; item < items; item += gridDim.x, n++) {
        const AttentionTile tile = tiles[item / NH];
        const int h = item % NH;
        const int num_kv = (tile.start - tile.seg_start) / BN + 1;
        const int row0 = tile.start + wg * 64 + warp * 16; /* this warp's 16 rows */
        const int row[2] = {row0 + g, row0 + g + 8};

        float o[NT_O][4], row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
        zero_acc<NT_O>(o);
        mbarrier_wait(sm.q_full, n & 1);
        for (int j = 0; j < num_kv; j++, step++) {
            const int s = step % STAGES, phase = (step / STAGES) & 1;
            mbarrier_wait(&sm.k_full[s], phase);
            float sc[NT_S][4];
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < HD / 16; kk++) /* k step kk: chunk kk / 4, columns 16 * (kk % 4) onwards */
                wgmma_ss<BN, 0, 0>(sc, wgmma_desc(sm.q() + chunked_offset<BM>(kk / 4, wg * 64, (kk % 4) * 16), 0),
                                   wgmma_desc(sm.k(s) + chunked_offset<BN>(kk / 4, 0, (kk % 4) * 16), 0), kk > 0);
            wgmma_commit();
            wgmma_wait<0>();
            wgmma_keep<NT_S>(sc);
            if (j == num_kv - 1) mbarrier_arrive(sm.q_empty); /* Q no longer read by this thread's warpgroup */

            uint32_t p[NT_S / 2][4];
            sm90_softmax_step<NT_S, NT_O>(sc, o, p, row_max, row_sum, scale_log2, j == num_kv - 1,
                                          tile.seg_start + j * BN, row);

            mbarrier_wait(&sm.v_full[s], phase);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++)
                wgmma_rs<HD, 1>(o, p[kk], wgmma_desc(sm.v(s) + chunked_offset<BN>(0, kk * 16, 0), BN * 128), 1);
            wgmma_commit();
            wgmma_wait<0>();
            wgmma_keep<NT_O>(o);
            mbarrier_arrive(&sm.kv_empty[s]);
        }

        float inv_sum[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float row_lse;
            inv_sum[r] = online_softmax_finish(row_max[r], quad_sum(row_sum[r]), &row_lse);
            if (t == 0 && row[r] < tile.seg_end) lse[(size_t)h * N + row[r]] = row_lse;
        }
        scale_acc_rows<NT_O>(o, inv_sum);
        store_rows<HD>(out + h * HD, (size_t)NH * HD, o, 1.0f, row0, tile.seg_end);
    }
#endif
}

template <int HD>
static void attention_forward_sm90_launch(floatX *out, float *lse, const floatX *qkv, const int *cu_seqlens,
                                          int num_segments, int max_seqlen, int N, int NH, int NKV, void *workspace,
                                          cudaStream_t s)
{
    using F = AttnSm90Forward<HD>;
    static bool smem_set = false;
    static int sm_count = 0;
    attention_allow_smem(attention_forward_sm90_kernel<HD>, F::smem_bytes, &smem_set);
    if (!sm_count) {
        int device;
        cudaCheck(cudaGetDevice(&device));
        cudaCheck(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
    }
    const AttentionTable table = attention_table(workspace, F::BM, cu_seqlens, num_segments, max_seqlen, N);
    const size_t width = attention_qkv_stride(NH, NKV, HD);
    const CUtensorMap map = tma_map_rows(qkv, N, width, width, F::BM, HD / 64);
    const size_t items = (size_t)table.grid_tiles * NH; /* upper bound: blocks stop at the real count */
    const unsigned grid = (unsigned)(items < (size_t)sm_count ? items : (size_t)sm_count);
    attention_forward_sm90_kernel<HD>
        <<<grid, F::THREADS, F::smem_bytes, s>>>(map, out, lse, table.tiles, table.count, N, NH, NKV);
    cudaCheckLaunch();
}

/* attention_forward on the Hopper path, same parameters; called by
   attention_forward, which has checked the shape and skipped empty batches. */
static void attention_forward_sm90(floatX *out, float *lse, const floatX *qkv, const int *cu_seqlens,
                                   int num_segments, int max_seqlen, int N, int NH, int NKV, int HD, void *workspace,
                                   cudaStream_t s)
{
    if (HD == 64)
        attention_forward_sm90_launch<64>(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV,
                                          workspace, s);
    else
        attention_forward_sm90_launch<128>(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV,
                                           workspace, s);
}

#endif /* PACKLM_ATTENTION_SM90_CUH */
