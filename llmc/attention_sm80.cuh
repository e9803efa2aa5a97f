/*
 * attention_sm80.cuh — the mma.sync mainloops of the varlen attention (any
 * card from sm_80 on; the path of A100-class cards): forward, and the two
 * atomic-free backward kernels (kv: dK, dV; q: dQ). How they work is told in
 * attention.cuh; shapes as there. Entry points attention_forward_sm80 and
 * attention_backward_sm80 take attention_forward/attention_backward's
 * arguments and read the tile tables planned by attention_plan.
 *
 * A block is 4 warps (ATTN_THREADS); each warp owns 16-row slices of the
 * block's rows and keeps its fragments in registers (mma.cuh). Shared-memory
 * tiles are row-major with ATTN_PAD elements of padding per row, filled with
 * cp.async and double-buffered.
 */
#ifndef PACKLM_ATTENTION_SM80_CUH
#define PACKLM_ATTENTION_SM80_CUH

#include "attention_common.cuh"
#include "attention_schedule.cuh"
#include "mma.cuh"

#define ATTN_TILE 64     /* rows of a kv tile, of a kv-kernel tile, of one m-tile slice of a block */
#define ATTN_THREADS 128 /* 4 warps per block, each owning 16-row slices */
#define ATTN_PAD 8       /* bf16 elements of padding per shared-memory row */

/* --------------------------------------------------------- block helpers */

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
        const bool needs_mask = attention_block_needs_mask(key0, BN, tile.start);
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
                    if (needs_mask && attention_masked(key0 + n * 8 + 2 * t + (e % 2), row0 + 8 * (e / 2))) v = -INFINITY;
                    s[m][n][e] = v;
                    tile_max[e / 2] = fmaxf(tile_max[e / 2], v);
                }
            }
            float alpha[2], base[2];
#pragma unroll
            for (int r = 0; r < 2; r++)
                alpha[r] = online_softmax_update(&row_max[m][r], &row_sum[m][r], quad_max(tile_max[r]), &base[r]);
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
            const float sum = quad_sum(row_sum[m][r]);
            inv_sum[r] = online_softmax_inverse_sum(sum);
            const int row = tile.start + m * ATTN_TILE + warp * 16 + g + 8 * r;
            if (t == 0 && row < tile.seg_end) lse[(size_t)h * N + row] = online_softmax_lse(row_max[m][r], sum);
        }
        scale_acc_rows<NT_O>(o[m], inv_sum);
        store_rows<HD>(out + h * HD, (size_t)NH * HD, o[m], 1.0f, tile.start + m * ATTN_TILE + warp * 16,
                       tile.seg_end);
    }
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
    const AttentionTable table = attention_table(workspace, F::BM, cu_seqlens, num_segments, max_seqlen, N);
    attention_forward_kernel<HD, MT><<<dim3(table.grid_tiles, NH), ATTN_THREADS, F::smem_bytes, s>>>(
        out, lse, qkv, table.tiles, table.count, N, NH, NKV);
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
        const bool needs_mask = q0 < k0 + BK; /* some key of the tile follows some query */
#pragma unroll
        for (int n = 0; n < NT_S; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = n * 8 + 2 * t + (e % 2);
                float v = exp2f(p[n][e] * scale_log2 - lse_tile[col]);
                if (needs_mask && attention_masked(key_row + 8 * (e / 2), q0 + col)) v = 0.0f;
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
        const bool needs_mask = attention_block_needs_mask(key0, BK, tile.start);
        uint32_t ds_frag[MT][NT_S / 2][4];
#pragma unroll
        for (int m = 0; m < MT; m++) {
#pragma unroll
            for (int n = 0; n < NT_S; n++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float v = exp2f(p[m][n][e] * scale_log2 - row_lse[m][e / 2]);
                    if (needs_mask && attention_masked(key0 + n * 8 + 2 * t + (e % 2), q_row[m][e / 2])) v = 0.0f;
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
    attention_delta<HD>(ws.delta, dout, out, N, NH, s);

    static bool kv_smem_set = false, q_smem_set = false;
    const size_t kv_smem = AttnBackwardKVSmem<HD, BQ>::bytes;
    attention_allow_smem(attention_backward_kv_kernel<HD, BQ>, kv_smem, &kv_smem_set);
    attention_allow_smem(attention_backward_q_kernel<HD, BK, MT>, Q::smem_bytes, &q_smem_set);
    const AttentionTable kv_table = attention_table(workspace, ATTN_TILE, cu_seqlens, num_segments, max_seqlen, N);
    attention_backward_kv_kernel<HD, BQ><<<dim3(kv_table.grid_tiles, NKV), ATTN_THREADS, kv_smem, s>>>(
        dqkv, dout, qkv, lse, ws.delta, kv_table.tiles, kv_table.count, N, NH, NKV);
    cudaCheckLaunch();
    const AttentionTable q_table = attention_table(workspace, Q::BM, cu_seqlens, num_segments, max_seqlen, N);
    attention_backward_q_kernel<HD, BK, MT><<<dim3(q_table.grid_tiles, NH), ATTN_THREADS, Q::smem_bytes, s>>>(
        dqkv, dout, qkv, lse, ws.delta, q_table.tiles, q_table.count, N, NH, NKV);
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

#endif /* PACKLM_ATTENTION_SM80_CUH */
