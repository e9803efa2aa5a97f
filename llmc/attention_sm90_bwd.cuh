/*
 * attention_sm90_bwd.cuh — the Hopper (sm_90a) backward of the varlen causal
 * flash attention: same contract as attention_backward in attention.cuh
 * (dqkv (N, (NH + 2*NKV) * HD) overwritten, dk/dv summed over the query heads
 * of a kv head, no atomics, bit-identical run to run), with the products on
 * warpgroup MMA (wgmma, hopper.cuh) and the tiles brought in by TMA.
 *
 * Same split as the sm80 backward (attention.cuh tells the algorithm): after
 * the D = rowsum(dO * O) pre-kernel (attention_common.cuh),
 *   kv kernel  work item = one 64-key tile of one kv head: K and V stay in
 *              shared memory; for every query head of the group and every
 *              64-query step from the diagonal on,
 *                S^T = K Q^T and dP^T = V dO^T     (wgmma, both in smem)
 *                P^T = exp(S^T - lse), dS^T = P^T * (dP^T - D)  (registers)
 *                dV += P^T dO,  dK += dS^T Q      (wgmma, A from registers)
 *              so P^T and dS^T never leave the registers (computing S^T
 *              rather than S puts keys on the rows, exactly the A operand
 *              the dV and dK products need).
 *   dq kernel  work item = one 64-query tile of one query head: Q and dO stay
 *              in shared memory; per 64-key step S = Q K^T, dP = dO V^T,
 *              dS = P * (dP - D), dQ += dS K.
 * Each gradient element is written once by one item in a fixed order.
 *
 * Both kernels are persistent: a block (one warpgroup, 128 threads) takes
 * items blockIdx.x, blockIdx.x + gridDim.x, ... and the grid holds as many
 * blocks as fit on the card at once. Items are head-major (all tiles of
 * head 0, then head 1, ...), so the blocks running at one time share the
 * K/V (dq kernel) or Q/dO (kv kernel) of few heads, and those stay in L2;
 * inside a head, tiles go in the order of the plan's table for the dq kernel
 * and in the reverse order for the kv kernel: either way the heaviest first. A short document's item lasts a few
 * steps, so what matters is that the loads of the next item start before this
 * one ends:
 *   - the streamed tiles (Q and dO for the kv kernel, K and V for the dq
 *     kernel) go through a ring of two stages that runs across items: the
 *     step after the last step of an item is the next item's first;
 *   - the resident tiles of the next item are requested as soon as the last
 *     score products of this item have read the current ones, so they land
 *     while this item finishes its gradient products and stores;
 *   - the kv kernel reads each step's lse and D one step ahead.
 * Thread 0 issues every TMA load (no producer warp: two blocks of one
 * warpgroup share an SM, and a fifth warp would cost registers that the
 * HD 128 accumulators need). In a step, the two score products are two
 * commit groups: the exponentials of P run while dP is still on the tensor
 * cores.
 *
 *   thread 0: TMA step r+1 -> ring_full[(r+1)%2]   all threads, step r:
 *             (after the last S/dP of an item:      wait ring_full[r%2]
 *              the next item's resident tiles)      __syncthreads
 *                                                   S, dP issued; wait S; P
 *                                                   wait dP; dS; 2 products
 *
 * Tiles are 64 rows of HD bf16, as HD/64 swizzled chunks of [64][64] (the
 * layout of hopper.cuh); rows past N arrive as zeros. Rows past a segment's
 * end belong to the next document: their queries get lse = +inf (so P = 0)
 * and their keys' gradients are never stored.
 */
#ifndef PACKLM_ATTENTION_SM90_BWD_CUH
#define PACKLM_ATTENTION_SM90_BWD_CUH

#include "attention_common.cuh"
#include "attention_schedule.cuh"
#include "hopper.cuh"
#include "mma.cuh"

#define ATTN_SM90_ROWS 64 /* keys per kv block, queries per dq block, rows of every tile */

template <int HD>
struct AttnSm90Bwd {
    static constexpr int CHUNKS = HD / 64, THREADS = 128;
    static constexpr int TILE_BYTES = ATTN_SM90_ROWS * HD * 2;
    /* 2 resident tiles, 2 stages x 2 streamed tiles, lse and D of 2 stages, 3 barriers */
    static constexpr size_t smem_bytes = 1024 /* alignment slack */ + 6 * TILE_BYTES +
                                         4 * ATTN_SM90_ROWS * sizeof(float) + 3 * sizeof(uint64_t);
};

/* One block's shared memory, carved from the dynamic allocation: six tiles
   (resident 0, 1; stage 0 tiles 0, 1; stage 1 tiles 0, 1), then lse and D of
   two stages, then the barriers. Addresses are computed, not kept in arrays,
   so that a run-time stage index does not push them to local memory. */
template <int HD>
struct AttnSm90BwdSmem {
    static constexpr int TILE = ATTN_SM90_ROWS * HD; /* elements */
    floatX *tiles;
    float *lse, *delta;                  /* kv kernel: [stage][64] per query of the step (lse in log2 units) */
    uint64_t *resident_full, *ring_full; /* 1 and [2] */

    __device__ AttnSm90BwdSmem(unsigned char *raw)
    {
        unsigned char *p = raw + ((1024 - smem_addr(raw) % 1024) % 1024); /* swizzled tiles: 1024-byte aligned */
        tiles = reinterpret_cast<floatX *>(p);
        lse = reinterpret_cast<float *>(tiles + 6 * TILE);
        delta = lse + 2 * ATTN_SM90_ROWS;
        resident_full = reinterpret_cast<uint64_t *>(delta + 2 * ATTN_SM90_ROWS);
        ring_full = resident_full + 1;
    }
    /* kv kernel: K (0), V (1); dq kernel: Q (0), dO (1) */
    __device__ floatX *resident(int k) const { return tiles + k * TILE; }
    /* streamed tile k of a stage: kv kernel Q (0), dO (1); dq kernel K (0), V (1) */
    __device__ floatX *ring(int stage, int k) const { return tiles + (2 + 2 * stage + k) * TILE; }
};

/* acc (64 x 64 per warpgroup) = A B^T with A and B 64-row tiles of HD
   columns, both read K-major (e.g. S^T = K Q^T). Issued, not committed. */
template <int HD>
__device__ __forceinline__ void sm90_abt(float acc[8][4], const floatX *a, const floatX *b)
{
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++)
        wgmma_ss<64, 0, 0>(acc, wgmma_desc_k_major<ATTN_SM90_ROWS>(a, kk), wgmma_desc_k_major<ATTN_SM90_ROWS>(b, kk),
                           kk > 0);
}

/* The two score-like products of a step, each its own commit group, acc0's
   first: acc0 = A0 B0^T and acc1 = A1 B1^T (64 x 64 each; S^T and dP^T in
   the kv kernel, S and dP in the dq kernel). Afterwards wgmma_wait<1> waits
   for acc0 alone and wgmma_wait<0> for both. */
template <int HD>
__device__ __forceinline__ void sm90_abt_pair(float acc0[8][4], const floatX *a0, const floatX *b0, float acc1[8][4],
                                              const floatX *a1, const floatX *b1)
{
    wgmma_fence();
    sm90_abt<HD>(acc0, a0, b0);
    wgmma_commit();
    sm90_abt<HD>(acc1, a1, b1);
    wgmma_commit();
}

/* acc (64 x HD) += A B with A (64 x 64) in registers as 4 k16 fragments and
   B a 64-row tile read MN-major (e.g. dV += P^T dO). Issued, not committed. */
template <int HD>
__device__ __forceinline__ void sm90_ab_regs(float acc[HD / 8][4], const uint32_t a[4][4], const floatX *b)
{
#pragma unroll
    for (int kk = 0; kk < 4; kk++) wgmma_rs<HD, 1>(acc, a[kk], wgmma_desc_mn_major<ATTN_SM90_ROWS>(b, kk), 1);
}

/* Thread 0: two 64-row tiles into dst0 and dst1, rows row0 on, of the chunk
   columns z0 of map0 and z1 of map1, both completing on `bar`. */
template <int HD>
__device__ __forceinline__ void sm90_load_pair(uint64_t *bar, floatX *dst0, const CUtensorMap *map0, int z0,
                                               floatX *dst1, const CUtensorMap *map1, int z1, int row0)
{
    mbarrier_expect_tx(bar, 2 * AttnSm90Bwd<HD>::TILE_BYTES);
    tma_load_3d(dst0, map0, bar, 0, row0, z0);
    tma_load_3d(dst1, map1, bar, 0, row0, z1);
}

/* Thread 0 sets up the barriers and starts the first item's resident tiles
   and its first step; every thread waits until the barriers exist. */
template <int HD, typename LoadResident, typename LoadStep>
__device__ __forceinline__ void sm90_bwd_begin(const AttnSm90BwdSmem<HD> &sm, const CUtensorMap *map0,
                                               const CUtensorMap *map1, const LoadResident &load_resident,
                                               const LoadStep &load_first_step)
{
    if (threadIdx.x == 0) {
        tma_prefetch_map(map0);
        tma_prefetch_map(map1);
        mbarrier_init(sm.resident_full, 1);
        mbarrier_init(&sm.ring_full[0], 1);
        mbarrier_init(&sm.ring_full[1], 1);
        mbarrier_init_fence();
        load_resident();
        load_first_step();
    }
    __syncthreads();
}

/* Step r of the block's ring (r counts the steps of all its items): wait
   until its tiles landed and every thread finished step r-1, whose stage is
   the one the step after refills; then thread 0 starts that step's loads. */
template <typename LoadAfter>
__device__ __forceinline__ void sm90_ring_step(uint64_t *ring_full, int r, bool has_after,
                                               const LoadAfter &load_after)
{
    mbarrier_wait(&ring_full[r % 2], (r / 2) & 1);
    __syncthreads();
    if (threadIdx.x == 0 && has_after) load_after();
}

/* Called by every thread once it waited for the last score products of an
   item: when all are past them, the resident tiles are free and thread 0
   requests the next item's. */
template <typename LoadResident>
__device__ __forceinline__ void sm90_resident_refill(bool has_next, const LoadResident &load_resident)
{
    __syncthreads();
    if (threadIdx.x == 0 && has_next) load_resident();
}

/* The kv kernel's work item: keys [k0, k0 + 64) of kv head kvh, visited by
   q_steps 64-query steps (from the diagonal to seg_end) of each query head of
   the group, num_steps in all. Step i: query head kvh * group + i / q_steps,
   queries k0 + (i % q_steps) * 64 on. The table lists tiles by their index
   in the segment, last first (heaviest for the dq kernel); walked backwards
   it gives a segment's first tiles, the kv kernel's heaviest, first. */
struct Sm90KvItem {
    int k0, seg_end, kvh, q_steps, num_steps;
};

__device__ __forceinline__ Sm90KvItem sm90_kv_item(const AttentionTile *tiles, int num_tiles, int item, int group)
{
    const AttentionTile tile = tiles[num_tiles - 1 - item % num_tiles];
    const int q_steps = CEIL_DIV(tile.seg_end - tile.start, ATTN_SM90_ROWS);
    return {tile.start, tile.seg_end, item / num_tiles, q_steps, group * q_steps};
}

template <int HD>
__global__ void __launch_bounds__(AttnSm90Bwd<HD>::THREADS)
    attention_backward_kv_sm90_kernel(const __grid_constant__ CUtensorMap qkv_map,
                                      const __grid_constant__ CUtensorMap dout_map, floatX *dqkv, const float *lse,
                                      const float *delta, const AttentionTile *tiles, const int *tile_count, int N,
                                      int NH, int NKV)
{
#if PACKLM_SM90_DEVICE
    const int group = NH / NKV, num_tiles = *tile_count, items = num_tiles * NKV;
    if ((int)blockIdx.x >= items) return;
    using B = AttnSm90Bwd<HD>;
    constexpr int ROWS = ATTN_SM90_ROWS, CHUNKS = B::CHUNKS, NT_D = HD / 8;
    extern __shared__ unsigned char attention_sm90_bwd_smem[];
    const AttnSm90BwdSmem<HD> sm(attention_sm90_bwd_smem);
    const int warp = threadIdx.x / 32, t = threadIdx.x % 4, g = (threadIdx.x % 32) / 4;
    const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * ATTN_LOG2E;
    const CUtensorMap *qkv = &qkv_map, *dout = &dout_map; /* the maps stay in parameter space */

    auto load_resident = [=](const Sm90KvItem &w) { /* K, V */
        sm90_load_pair<HD>(sm.resident_full, sm.resident(0), qkv, (NH + w.kvh) * CHUNKS, sm.resident(1), qkv,
                           (NH + NKV + w.kvh) * CHUNKS, w.k0);
    };
    auto load_step = [=](const Sm90KvItem &w, int i, int r) { /* Q, dO of step i of w into ring stage r % 2 */
        const int h = w.kvh * group + i / w.q_steps, q0 = w.k0 + (i % w.q_steps) * ROWS;
        sm90_load_pair<HD>(&sm.ring_full[r % 2], sm.ring(r % 2, 0), qkv, h * CHUNKS, sm.ring(r % 2, 1), dout,
                           h * CHUNKS, q0);
    };
    /* threads 0..63: lse and D of query threadIdx.x of step i of w; past the
       segment lse = +inf, which makes P = 0. Loads only: nothing touches the
       values until they are stored (in log2 units) a step later, so the
       loads' latency hides under the step. */
    auto read_query = [=](const Sm90KvItem &w, int i, float *row_lse, float *row_delta) {
        const int h = w.kvh * group + i / w.q_steps, q = w.k0 + (i % w.q_steps) * ROWS + threadIdx.x;
        *row_lse = INFINITY;
        *row_delta = 0.0f;
        if (q < w.seg_end) {
            *row_lse = lse[(size_t)h * N + q];
            *row_delta = delta[(size_t)h * N + q];
        }
    };
    auto store_query = [=](int stage, float row_lse, float row_delta) {
        sm.lse[stage * ROWS + threadIdx.x] = row_lse * ATTN_LOG2E;
        sm.delta[stage * ROWS + threadIdx.x] = row_delta;
    };

    Sm90KvItem cur = sm90_kv_item(tiles, num_tiles, blockIdx.x, group);
    sm90_bwd_begin<HD>(sm, qkv, dout, [&] { load_resident(cur); }, [&] { load_step(cur, 0, 0); });
    if (threadIdx.x < ROWS) {
        float row_lse, row_delta;
        read_query(cur, 0, &row_lse, &row_delta);
        store_query(0, row_lse, row_delta);
    }

    float dk[NT_D][4], dv[NT_D][4];
    int r = 0; /* ring step */
    for (int item = blockIdx.x, n = 0; item < items; item += gridDim.x, n++) {
        const bool has_next = item + (int)gridDim.x < items;
        const Sm90KvItem next = has_next ? sm90_kv_item(tiles, num_tiles, item + gridDim.x, group) : cur;
        zero_acc<NT_D>(dk);
        zero_acc<NT_D>(dv);
        mbarrier_wait(sm.resident_full, n & 1);
        const int key_row = cur.k0 + warp * 16 + g; /* this thread's keys: key_row, key_row + 8 */
        for (int i = 0; i < cur.num_steps; i++, r++) {
            /* the step after this one: the next of this item, else the next item's first */
            const bool last = i + 1 == cur.num_steps, has_after = !last || has_next;
            const Sm90KvItem after = last ? next : cur;
            const int i_after = last ? 0 : i + 1;
            float lse_after = 0.0f, delta_after = 0.0f; /* read now, stored at the end of the step */
            if (threadIdx.x < ROWS && has_after) read_query(after, i_after, &lse_after, &delta_after);
            sm90_ring_step(sm.ring_full, r, has_after, [&] { load_step(after, i_after, r + 1); });
            const int q0 = cur.k0 + (i % cur.q_steps) * ROWS;
            const float *lse_s = sm.lse + (r % 2) * ROWS, *delta_s = sm.delta + (r % 2) * ROWS;
            const floatX *q_tile = sm.ring(r % 2, 0), *do_tile = sm.ring(r % 2, 1);

            float p[8][4], ds[8][4]; /* S^T then P^T; dP^T then dS^T: rows keys, columns queries */
            sm90_abt_pair<HD>(p, sm.resident(0), q_tile, ds, sm.resident(1), do_tile);
            wgmma_wait<1>();
            wgmma_keep<8>(p);
            const bool needs_mask = q0 < cur.k0 + ROWS; /* some key of the tile follows some query */
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int col = nt * 8 + 2 * t + (e % 2);
                    const float v = exp2f(p[nt][e] * scale_log2 - lse_s[col]);
                    p[nt][e] = needs_mask && attention_masked(key_row + 8 * (e / 2), q0 + col) ? 0.0f : v;
                }
            }
            wgmma_wait<0>();
            wgmma_keep<8>(ds);
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) ds[nt][e] = p[nt][e] * (ds[nt][e] - delta_s[nt * 8 + 2 * t + (e % 2)]);
            }
            if (last) sm90_resident_refill(has_next, [&] { load_resident(next); });
            uint32_t p_frag[4][4], ds_frag[4][4];
            acc_to_a_frags<8>(p_frag, p);
            acc_to_a_frags<8>(ds_frag, ds);
            wgmma_fence();
            sm90_ab_regs<HD>(dv, p_frag, do_tile);
            sm90_ab_regs<HD>(dk, ds_frag, q_tile);
            wgmma_commit();
            wgmma_wait<0>();
            wgmma_keep<NT_D>(dv);
            wgmma_keep<NT_D>(dk);
            if (threadIdx.x < ROWS && has_after) store_query((r + 1) % 2, lse_after, delta_after); /* last read in step r - 1 */
        }
        const size_t stride = attention_qkv_stride(NH, NKV, HD);
        store_rows<HD>(dqkv + attention_k_column(NH, cur.kvh, HD), stride, dk, scale, cur.k0 + warp * 16,
                       cur.seg_end);
        store_rows<HD>(dqkv + attention_v_column(NH, NKV, cur.kvh, HD), stride, dv, 1.0f, cur.k0 + warp * 16,
                       cur.seg_end);
        cur = next;
    }
#endif
}

/* The dq kernel's work item: queries [q0, q0 + 64) of query head h, visiting
   the num_steps 64-key steps of the segment up to the diagonal. Step j: keys
   seg_start + j * 64 on. */
struct Sm90DqItem {
    int q0, seg_start, seg_end, h, num_steps;
};

__device__ __forceinline__ Sm90DqItem sm90_dq_item(const AttentionTile *tiles, int num_tiles, int item)
{
    const AttentionTile tile = tiles[item % num_tiles];
    const int num_steps = CEIL_DIV(min(tile.start + ATTN_SM90_ROWS, tile.seg_end) - tile.seg_start, ATTN_SM90_ROWS);
    return {tile.start, tile.seg_start, tile.seg_end, item / num_tiles, num_steps};
}

template <int HD>
__global__ void __launch_bounds__(AttnSm90Bwd<HD>::THREADS)
    attention_backward_dq_sm90_kernel(const __grid_constant__ CUtensorMap qkv_map,
                                      const __grid_constant__ CUtensorMap dout_map, floatX *dqkv, const float *lse,
                                      const float *delta, const AttentionTile *tiles, const int *tile_count, int N,
                                      int NH, int NKV)
{
#if PACKLM_SM90_DEVICE
    const int group = NH / NKV, num_tiles = *tile_count, items = num_tiles * NH;
    if ((int)blockIdx.x >= items) return;
    using B = AttnSm90Bwd<HD>;
    constexpr int ROWS = ATTN_SM90_ROWS, CHUNKS = B::CHUNKS, NT_D = HD / 8;
    extern __shared__ unsigned char attention_sm90_bwd_smem[];
    const AttnSm90BwdSmem<HD> sm(attention_sm90_bwd_smem);
    const int warp = threadIdx.x / 32, t = threadIdx.x % 4, g = (threadIdx.x % 32) / 4;
    const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * ATTN_LOG2E;
    const CUtensorMap *qkv = &qkv_map, *dout = &dout_map; /* the maps stay in parameter space */

    auto load_resident = [=](const Sm90DqItem &w) { /* Q, dO */
        sm90_load_pair<HD>(sm.resident_full, sm.resident(0), qkv, w.h * CHUNKS, sm.resident(1), dout, w.h * CHUNKS,
                           w.q0);
    };
    auto load_step = [=](const Sm90DqItem &w, int j, int r) { /* K, V of step j of w into ring stage r % 2 */
        const int kvh = w.h / group;
        sm90_load_pair<HD>(&sm.ring_full[r % 2], sm.ring(r % 2, 0), qkv, (NH + kvh) * CHUNKS, sm.ring(r % 2, 1), qkv,
                           (NH + NKV + kvh) * CHUNKS, w.seg_start + j * ROWS);
    };
    /* lse and D of this thread's query rows q0 + warp * 16 + g + 8 k; past the
       segment lse = +inf, which makes P = 0. Loads only (the caller scales
       lse to log2 units when it takes the values), so that the next item's
       rows can be read a whole item ahead. */
    auto read_rows = [=](const Sm90DqItem &w, float row_lse[2], float row_delta[2]) {
#pragma unroll
        for (int k = 0; k < 2; k++) {
            const int q = w.q0 + warp * 16 + g + 8 * k;
            row_lse[k] = INFINITY;
            row_delta[k] = 0.0f;
            if (q < w.seg_end) {
                row_lse[k] = lse[(size_t)w.h * N + q];
                row_delta[k] = delta[(size_t)w.h * N + q];
            }
        }
    };

    Sm90DqItem cur = sm90_dq_item(tiles, num_tiles, blockIdx.x);
    float row_lse[2], row_delta[2], next_lse[2], next_delta[2];
    read_rows(cur, next_lse, next_delta);
    sm90_bwd_begin<HD>(sm, qkv, dout, [&] { load_resident(cur); }, [&] { load_step(cur, 0, 0); });

    float dq[NT_D][4];
    int r = 0; /* ring step */
    for (int item = blockIdx.x, n = 0; item < items; item += gridDim.x, n++) {
        const bool has_next = item + (int)gridDim.x < items;
        const Sm90DqItem next = has_next ? sm90_dq_item(tiles, num_tiles, item + gridDim.x) : cur;
#pragma unroll
        for (int k = 0; k < 2; k++) {
            row_lse[k] = next_lse[k] * ATTN_LOG2E;
            row_delta[k] = next_delta[k];
        }
        read_rows(next, next_lse, next_delta); /* read now, used by the next item */
        zero_acc<NT_D>(dq);
        mbarrier_wait(sm.resident_full, n & 1);
        const int q_row = cur.q0 + warp * 16 + g; /* this thread's queries: q_row, q_row + 8 */
        for (int j = 0; j < cur.num_steps; j++, r++) {
            const bool last = j + 1 == cur.num_steps, has_after = !last || has_next;
            const Sm90DqItem after = last ? next : cur;
            const int j_after = last ? 0 : j + 1;
            sm90_ring_step(sm.ring_full, r, has_after, [&] { load_step(after, j_after, r + 1); });
            const floatX *k_tile = sm.ring(r % 2, 0), *v_tile = sm.ring(r % 2, 1);
            const int key0 = cur.seg_start + j * ROWS;

            float p[8][4], ds[8][4]; /* S then P; dP then dS: rows queries, columns keys */
            sm90_abt_pair<HD>(p, sm.resident(0), k_tile, ds, sm.resident(1), v_tile);
            wgmma_wait<1>();
            wgmma_keep<8>(p);
            const bool needs_mask = attention_block_needs_mask(key0, ROWS, cur.q0);
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float v = exp2f(p[nt][e] * scale_log2 - row_lse[e / 2]);
                    p[nt][e] =
                        needs_mask && attention_masked(key0 + nt * 8 + 2 * t + (e % 2), q_row + 8 * (e / 2)) ? 0.0f : v;
                }
            }
            wgmma_wait<0>();
            wgmma_keep<8>(ds);
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) ds[nt][e] = p[nt][e] * (ds[nt][e] - row_delta[e / 2]);
            }
            if (last) sm90_resident_refill(has_next, [&] { load_resident(next); });
            uint32_t ds_frag[4][4];
            acc_to_a_frags<8>(ds_frag, ds);
            wgmma_fence();
            sm90_ab_regs<HD>(dq, ds_frag, k_tile); /* dQ += dS K */
            wgmma_commit();
            wgmma_wait<0>();
            wgmma_keep<NT_D>(dq);
        }
        store_rows<HD>(dqkv + cur.h * HD, attention_qkv_stride(NH, NKV, HD), dq, scale, cur.q0 + warp * 16,
                       cur.seg_end);
        cur = next;
    }
#endif
}

template <int HD>
static void attention_backward_sm90_launch(floatX *dqkv, const floatX *dout, const floatX *qkv, const floatX *out,
                                           const float *lse, const int *cu_seqlens, int num_segments,
                                           int max_seqlen, int N, int NH, int NKV, void *workspace, cudaStream_t s)
{
    using B = AttnSm90Bwd<HD>;
    const AttentionWorkspace ws = attention_workspace_split(workspace, N);
    attention_delta<HD>(ws.delta, dout, out, N, NH, s);
    const AttentionTable table = attention_table(workspace, ATTN_SM90_ROWS, cu_seqlens, num_segments, max_seqlen, N);
    const size_t width = attention_qkv_stride(NH, NKV, HD), dwidth = (size_t)NH * HD;
    const CUtensorMap qkv_map = tma_map_rows(qkv, N, width, width, ATTN_SM90_ROWS, B::CHUNKS);
    const CUtensorMap dout_map = tma_map_rows(dout, N, dwidth, dwidth, ATTN_SM90_ROWS, B::CHUNKS);
    static bool kv_smem_set = false, dq_smem_set = false;
    static int kv_per_sm = 0, dq_per_sm = 0;
    attention_allow_smem(attention_backward_kv_sm90_kernel<HD>, B::smem_bytes, &kv_smem_set);
    attention_allow_smem(attention_backward_dq_sm90_kernel<HD>, B::smem_bytes, &dq_smem_set);
    /* items: (tile, head) pairs; table.grid_tiles bounds the tile count, blocks stop at the real one */
    const unsigned kv_grid = attention_persistent_grid(attention_backward_kv_sm90_kernel<HD>, B::THREADS,
                                                       B::smem_bytes, (size_t)table.grid_tiles * NKV, &kv_per_sm);
    const unsigned dq_grid = attention_persistent_grid(attention_backward_dq_sm90_kernel<HD>, B::THREADS,
                                                       B::smem_bytes, (size_t)table.grid_tiles * NH, &dq_per_sm);
    attention_backward_kv_sm90_kernel<HD><<<kv_grid, B::THREADS, B::smem_bytes, s>>>(
        qkv_map, dout_map, dqkv, lse, ws.delta, table.tiles, table.count, N, NH, NKV);
    cudaCheckLaunch();
    attention_backward_dq_sm90_kernel<HD><<<dq_grid, B::THREADS, B::smem_bytes, s>>>(
        qkv_map, dout_map, dqkv, lse, ws.delta, table.tiles, table.count, N, NH, NKV);
    cudaCheckLaunch();
}

/* attention_backward on the Hopper path (same parameters, less `deterministic`). */
static void attention_backward_sm90(floatX *dqkv, const floatX *dout, const floatX *qkv, const floatX *out,
                                    const float *lse, const int *cu_seqlens, int num_segments, int max_seqlen, int N,
                                    int NH, int NKV, int HD, void *workspace, cudaStream_t s)
{
    if (HD == 64)
        attention_backward_sm90_launch<64>(dqkv, dout, qkv, out, lse, cu_seqlens, num_segments, max_seqlen, N, NH,
                                           NKV, workspace, s);
    else
        attention_backward_sm90_launch<128>(dqkv, dout, qkv, out, lse, cu_seqlens, num_segments, max_seqlen, N, NH,
                                            NKV, workspace, s);
}

#endif /* PACKLM_ATTENTION_SM90_BWD_CUH */
