/*
 * attention_sm90.cuh — the Hopper (sm_90a) forward of the varlen causal flash
 * attention: same contract as attention_forward in attention.cuh (packed qkv
 * (N, (NH + 2*NKV) * HD) bf16, cu_seqlens, out (N, NH*HD) bf16, lse (NH, N)
 * fp32 natural log, HD 64 or 128, GQA), built from the wrappers of hopper.cuh.
 *
 * Work: items (query tile of BM = 128 rows of one segment, query head),
 * head-major (every tile of head 0 in the 128-row table's order, heaviest
 * first, then head 1, ...: the blocks running at one time read the K/V of few
 * heads, which stay in L2; only the last heads' items are merged, heaviest
 * first across them, ATTN_SM90_TAIL_UNITS); a persistent grid of one block per SM
 * (attention_persistent_grid) walks them in dynamic order: block b takes
 * item b, then each later item from a counter in the workspace (atomicAdd),
 * so a block that drew long items takes fewer and the blocks finish together
 * (a fixed stride lands the heavy head of every head's run on the same
 * blocks). The producer claims the next item at the top of the current one,
 * so the atomic's round trip hides behind that item's loads, and hands each
 * item to the consumers with its Q: tile and head in shared memory beside
 * the Q buffer (written before the buffer's full barrier, read after it; a
 * negative head tells them the block is done). The last block to finish
 * sets the counters back to zero for the next call: no extra launch.
 * Key/value tiles (BN = 128 keys) start at the segment's first token, so the
 * last kv tile of an item is the diagonal one and the only one that needs the
 * causal mask; keys past the segment end only ever meet masked-out or
 * discarded rows. Two cuts of work that no row needs: on the diagonal tile
 * warpgroup 0 (the first 64 rows) multiplies only the first 64 keys (S = Q K^T
 * and P V), the rest being masked for all its rows; and a warpgroup whose 64
 * rows all lie past the segment end computes nothing and only keeps the
 * barrier protocol below.
 *
 * Packed GQA: when G = NH / NKV is 2, 4 or 8 (attention_sm90_packs_gqa), an
 * item is instead (tile of 128 / G tokens, kv head) and its 128 rows are the
 * (token, query head of the group) pairs, row r = token offset * G + head in
 * group: the G query heads of a kv head then share every K and V tile load
 * and every wgmma B operand, and a short document fills whole rows of the
 * tile instead of 1 .. 127 of 128 rows of each head's tile. One 4-D TMA
 * load (tma_map_row_groups: {64 columns, head, token, chunk}) writes Q in
 * exactly that row order, in the same chunked swizzled layout, so the
 * mainloop is the same; what changes is the token of a row (for the mask,
 * the segment end and the diagonal cut: a row's token is tile start + r / G)
 * and where a row is stored. With G = 1 (PACKED false) every such
 * expression folds back to the plain row.
 *
 * Roles (3 warpgroups, 384 threads, registers rebalanced by setmaxnreg):
 *   producer  warpgroup 0, one thread: TMA loads of Q (once per item, into
 *             Q_STAGES buffers) and of K and V (one tile each per kv step,
 *             V one step behind K) into rings of STAGES buffers; the
 *             warpgroup keeps 40 registers.
 *   consumers warpgroups 1, 2: 64 query rows each, 232 registers. At an
 *             item's start each warp reads its 16 rows of Q into registers
 *             (ldmatrix: the bf16 A fragments of every k-step, HD / 2
 *             registers a thread) and frees the Q buffer. Kv step j issues
 *             S_j = Q K_j^T (wgmma, Q from those registers, K from shared
 *             memory) and O += P_{j-1} V_{j-1} (wgmma, P as bf16 A fragments
 *             in registers) back to back, waits for S_j only, masks (diagonal
 *             tile) and runs the online softmax of S_j while the P V product
 *             is still on the tensor cores, then waits for it and rescales O
 *             (only where a row's scores rose more than 2^8 above the max it
 *             subtracts: sm90_softmax). The two warpgroups also take turns
 *             issuing (ping-pong, named barriers 1 and 2), so one's softmax
 *             overlaps the other's products. Why Q in registers: at HD 128
 *             a kv step moves 64 KB of TMA writes (K, V) and, read by both
 *             warpgroups' wgmmas, 2 x 32 KB of K, 2 x 32 KB of V and, were
 *             Q read from shared memory, 2 x 16 KB of Q: 224 KB, at 128 B a
 *             clock 85% of the step's 2048 tensor-core clocks; 192 KB (75%)
 *             without Q.
 *
 * Who waits on whom (mbarriers; "full" barriers complete when the TMA bytes
 * have landed, "empty" ones when all 256 consumer threads have arrived):
 *
 *   producer (1 thread)              consumers (2 warpgroups)
 *   wait q_empty[q] -------------<-  arrive q_empty[q] once Q is in registers
 *   TMA Q -> q_full[q] ---------->   wait q_full[q] (the item's start)
 *   per kv step j:
 *     wait k_empty[s] -----------<-  arrive k_empty[s] once S_j is in registers
 *     TMA K_j -> k_full[s] ------>   wait k_full[s], wait v_full[s'], then in
 *     wait v_empty[s'] ----------<-  one turn issue S_j and P_{j-1} V_{j-1};
 *     TMA V_{j-1} -> v_full[s'] ->   arrive v_empty[s'] once P_{j-1} V_{j-1} is done
 *
 *   turns: warpgroup 1 bar.sync(1) ... issue ... bar.arrive(2)
 *          warpgroup 2 bar.sync(2) ... issue ... bar.arrive(1)
 *
 *   Q is freed right after its q_full wait, so the producer, once it has
 *   issued the item's last K and V loads, loads the next item's Q into the
 *   same buffer while the consumers still work on this item.
 *
 *   after the item: O / l leaves with predicated stores, lse from registers
 *   (a tile may end past its segment; TMA stores would overwrite the next
 *   segment's rows). At HD 128 each warp first puts its 16 rows of O into
 *   its own staging rows in shared memory (stmatrix) and reads them back as
 *   16-byte chunks, so a warp's store instruction writes 2 whole rows of 256
 *   bytes instead of 8 pieces of 16 bytes; at HD 64 O goes straight from the
 *   accumulator registers (store_rows), which measured faster there.
 *
 * Tiles lie in shared memory as 64-column chunks of 128-byte swizzled rows
 * (the layout of hopper.cuh): Q [HD/64][128][64] (packed: [HD/64][128/G][G][64],
 * the same bytes), each K and V stage [HD/64][128][64], then the O staging
 * rows (HD 128: 8 warps x [16][HD]). Q K^T reads K K-major (and Q, once
 * an item, K-major through ldmatrix_a_frag); P V reads V MN-major.
 */
#ifndef PACKLM_ATTENTION_SM90_CUH
#define PACKLM_ATTENTION_SM90_CUH

#include <type_traits>

#include "attention_common.cuh"
#include "attention_schedule.cuh"
#include "attention_sm90_store.cuh"
#include "hopper.cuh"
#include "mma.cuh"

/* A forward configuration: head dim, K/V ring depth, Q buffers (the
   consumers free a Q buffer at the item's start, once Q is in their
   registers, so one buffer already lets the next item's Q load while this
   item runs), and whether the two consumer
   warpgroups take turns issuing their wgmmas (ping-pong). STAGED_STORE: the
   epilogue sends O through shared memory (store_rows_staged); measured on an
   H200 (dev/notes/attention.md) 5% faster at HD 128, 4% slower at HD 64. */
/* What the consumers learn from a Q buffer besides Q: the item whose Q it
   holds, as its tile and unit (query head, or kv head when packed); unit < 0:
   there is none, the block is done. */
struct AttnSm90Item {
    AttentionTile tile;
    int unit;
};

template <int HD_, int STAGES_, int Q_STAGES_, bool PINGPONG_>
struct AttnSm90Config {
    static constexpr int HD = HD_, STAGES = STAGES_, Q_STAGES = Q_STAGES_;
    static constexpr bool PINGPONG = PINGPONG_;
    static constexpr int BM = 128, BN = 128, THREADS = 384;
    static constexpr bool STAGED_STORE = HD == 128;
    static constexpr int Q_BYTES = BM * HD * 2, KV_BYTES = BN * HD * 2;
    static constexpr int O_STAGE_BYTES = STAGED_STORE ? BM * HD * 2 : 0; /* 16 rows x HD per consumer warp */
    /* q_full[], q_empty[], k_full[], k_empty[], v_full[], v_empty[] */
    static constexpr int BARRIERS = 2 * Q_STAGES + 4 * STAGES;
    static constexpr size_t smem_bytes = 1024 /* alignment slack */ + Q_STAGES * Q_BYTES + 2 * STAGES * KV_BYTES +
                                         O_STAGE_BYTES + 8 * BARRIERS + Q_STAGES * sizeof(AttnSm90Item);
    static_assert(smem_bytes <= 227 * 1024, "AttnSm90Config: shared memory over 227 KB");
};

/* The configuration attention_forward_sm90 runs (measured: dev/notes/attention.md). */
template <int HD>
using AttnSm90Forward = AttnSm90Config<HD, 2, 1, true>;

/* The shared memory of one block, carved from the dynamic allocation: Q, then
   per stage K and V, then the O staging rows (STAGED_STORE), then the
   barriers (an even number: 16-byte aligned after them), then per Q buffer
   the item whose Q it holds (written by the producer before the buffer's
   full barrier completes, read by the consumers after it). */
template <typename F>
struct AttnSm90Smem {
    unsigned char *base;
    uint64_t *q_full, *q_empty, *k_full, *k_empty, *v_full, *v_empty;
    AttnSm90Item *item;

    __device__ AttnSm90Smem(unsigned char *raw)
    {
        base = raw + ((1024 - smem_addr(raw) % 1024) % 1024); /* swizzled tiles: 1024-byte aligned */
        q_full = reinterpret_cast<uint64_t *>(base + F::Q_STAGES * F::Q_BYTES + 2 * F::STAGES * F::KV_BYTES +
                                              F::O_STAGE_BYTES);
        q_empty = q_full + F::Q_STAGES;
        k_full = q_empty + F::Q_STAGES;
        k_empty = k_full + F::STAGES;
        v_full = k_empty + F::STAGES;
        v_empty = v_full + F::STAGES;
        item = reinterpret_cast<AttnSm90Item *>(v_empty + F::STAGES);
    }
    /* the staging rows of consumer warp w (0..7) for the epilogue: 16 x HD */
    __device__ floatX *o_stage(int w) const
    {
        return reinterpret_cast<floatX *>(base + F::Q_STAGES * F::Q_BYTES + 2 * F::STAGES * F::KV_BYTES) +
               w * 16 * F::HD;
    }
    __device__ floatX *q(int s) const { return reinterpret_cast<floatX *>(base + s * F::Q_BYTES); }
    __device__ floatX *k(int s) const
    {
        return reinterpret_cast<floatX *>(base + F::Q_STAGES * F::Q_BYTES + 2 * s * F::KV_BYTES);
    }
    __device__ floatX *v(int s) const { return k(s) + F::KV_BYTES / 2; }
};

/* S (64 x KEYS per warpgroup: the first KEYS keys of a BN-key tile) = the
   warpgroup's 64 Q rows (q: their A fragments in registers, one per k-step,
   ldmatrix_a_frag) times K^T, issued (not waited); s[KEYS / 8 ..] untouched. */
template <int HD, int BN, int KEYS>
__device__ __forceinline__ void issue_qk(float s[BN / 8][4], const uint32_t q[HD / 16][4], const floatX *k)
{
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) wgmma_rs<KEYS, 0>(s, q[kk], wgmma_desc_k_major<BN>(k, kk), kk > 0);
}

/* O (64 x HD) += P (64 x KEYS, bf16 A fragments in registers) times the first
   KEYS rows of a BN-row V tile, issued (not waited); p[KEYS / 16 ..] unread. */
template <int HD, int BN, int KEYS>
__device__ __forceinline__ void issue_pv(float o[HD / 8][4], const uint32_t p[BN / 16][4], const floatX *v)
{
#pragma unroll
    for (int kk = 0; kk < KEYS / 16; kk++)
        wgmma_rs<HD, 1>(o, p[kk], wgmma_desc_mn_major<BN>(v, kk), 1);
}

/* wgmma shapes are compile-time: run issue(std::integral_constant<int, K>())
   with K = keys, the key columns of a kv tile that a warpgroup computes,
   either the whole tile (BN) or its first half (BN / 2). */
template <int BN, typename Issue>
__device__ __forceinline__ void with_keys(int keys, Issue issue)
{
    if (keys == BN)
        issue(std::integral_constant<int, BN>());
    else
        issue(std::integral_constant<int, BN / 2>());
}

/* How far (log2 units) a row's scaled scores may rise above the max it
   subtracts before the thread moves its rows' maxima on: p <= 2^8 fits bf16
   and the fp32 sums with room to spare. */
#define ATTN_RESCALE_SLACK_LOG2 8.0f

/* The softmax of one kv tile for a warp's 16 rows (row[0], row[1]: this
   thread's rows g and g + 8), in place: raw scores s (16 x 8*NT_S, first key
   first_key) become p = exp2(s * scale_log2 - max) in fp32; the row sum
   moves on. The max subtracted is kept from the previous tiles unless one of
   the thread's two rows now exceeds its max by more than
   ATTN_RESCALE_SLACK_LOG2: only then (returns true) do both row maxima move
   on and alpha get the factors that rescale the thread's output rows, which
   the caller must then apply; otherwise alpha is 1 (0 for a row that has
   seen no key, whose output is still 0) and the caller may skip the
   rescale: 64 multiplies per thread at HD 128 on the consumer's serial path,
   issued by a warp only when one of its threads needs them (the
   conditional rescale of FlashAttention-4). The 4 threads of a row's quad
   decide alike (same row max, same quad-reduced block max), so they keep
   subtracting the same max and the quad's partial sums add up. With MASK,
   keys after a row's query are hidden. A warp vote for one decision per
   warp made ptxas serialize the wgmmas (C7511). */
template <int NT_S, bool MASK>
__device__ __forceinline__ bool sm90_softmax(float s[NT_S][4], float row_max[2], float row_sum[2], float alpha[2],
                                             float scale_log2, int first_key, const int row[2])
{
    const int t = threadIdx.x % 4;
    float block_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < NT_S; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            if (MASK && attention_masked(first_key + n * 8 + 2 * t + (e % 2), row[e / 2])) s[n][e] = -INFINITY;
            block_max[e / 2] = fmaxf(block_max[e / 2], s[n][e]);
        }
    }
    float base[2];
#pragma unroll
    for (int r = 0; r < 2; r++) /* scale_log2 > 0: the max of scaled scores is the scaled max */
        block_max[r] = quad_max(block_max[r]) * scale_log2;
    /* a row that has seen no key (max -inf) moves on at its first key */
    const bool rescale = block_max[0] > row_max[0] + ATTN_RESCALE_SLACK_LOG2 ||
                         block_max[1] > row_max[1] + ATTN_RESCALE_SLACK_LOG2;
#pragma unroll
    for (int r = 0; r < 2; r++) /* a block max of -inf keeps the row's max: alpha = 1 */
        alpha[r] = online_softmax_update(&row_max[r], &row_sum[r], rescale ? block_max[r] : -INFINITY, &base[r]);
#pragma unroll
    for (int n = 0; n < NT_S; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            s[n][e] = exp2f(fmaf(s[n][e], scale_log2, -base[e / 2]));
            row_sum[e / 2] += s[n][e];
        }
    }
    return rescale;
}

template <int NT_S>
__device__ __forceinline__ bool sm90_softmax(float s[NT_S][4], float row_max[2], float row_sum[2], float alpha[2],
                                             float scale_log2, int first_key, const int row[2], bool mask)
{
    return mask ? sm90_softmax<NT_S, true>(s, row_max, row_sum, alpha, scale_log2, first_key, row)
                : sm90_softmax<NT_S, false>(s, row_max, row_sum, alpha, scale_log2, first_key, row);
}

/* Ping-pong between the two consumer warpgroups: named barrier 1 + wg means
   "warpgroup wg may issue". A warpgroup waits for its turn, issues its
   wgmmas and hands the turn over, so one warpgroup's softmax runs while the
   other's products use the tensor cores. */
template <bool PINGPONG>
__device__ __forceinline__ void mma_turn_begin(int wg)
{
    if (PINGPONG) named_barrier_sync(1 + wg, 256);
}
template <bool PINGPONG>
__device__ __forceinline__ void mma_turn_end(int wg)
{
    if (PINGPONG) named_barrier_arrive(1 + (wg ^ 1), 256);
}

/* Whether the forward packs the G = NH / NKV query heads of a kv head into
   one tile (tiles of 64, 32 or 16 tokens for G = 2, 4, 8: heights that
   attention_plan builds tables for): G = 2, 4, 8 at both head dims. With
   the items in a fixed stride, packing measured faster on an H200
   (dev/notes/attention.md, fwd ms new/base on the packed benchmark shapes)
   at HD 64 with G = 2, 4, 8 (G = 2, 4: 0.89-0.91) and HD 128 with G = 8
   (0.93-0.96), but level to 7% slower at HD 128 with G = 2 or 4, which a
   model of the schedule put on the stride's balance; in dynamic order the
   model balances those within 1%. */
static inline bool attention_sm90_packs_gqa(int group) { return group == 2 || group == 4 || group == 8; }

/* The units (heads) at the end of the item order whose items are merged,
   heaviest tile first across them. In unit-major order to the very end, the
   last head's heaviest tiles would start after every other head's items,
   and the blocks would finish up to 5.5% apart (the schedule model,
   dev/cuda/attention_schedule_model.py --tail 1); merged over the last 4
   heads they finish within 1%, and the forward at T=8192 ran 2.7-3.3%
   faster on an H200 (2 heads: 1.7%; 8 heads: slower than 4). 4 heads of K
   and V are 64 MB at T=8192, more than L2 holds, yet no slower than 2. */
#define ATTN_SM90_TAIL_UNITS 4

/* PACKED: items are (tile of BM / G tokens, kv head), Q comes through
   q_map (tma_map_row_groups); otherwise (tile of BM tokens, query head) and
   q_map is unused. item_claims: the workspace's two counters (next item to
   claim past the first gridDim.x, blocks finished), zero on entry and left
   at zero. */
template <typename F, bool PACKED>
__global__ void __launch_bounds__(F::THREADS, 1)
    attention_forward_sm90_kernel(const __grid_constant__ CUtensorMap qkv_map,
                                  const __grid_constant__ CUtensorMap q_map, floatX *out, float *lse,
                                  const AttentionTile *tiles, const int *tile_count, int *item_claims, int N, int NH,
                                  int NKV)
{
#if PACKLM_SM90_DEVICE
    constexpr int HD = F::HD, BM = F::BM, BN = F::BN, STAGES = F::STAGES;
    constexpr int NT_S = BN / 8, NT_O = HD / 8;
    extern __shared__ unsigned char attention_sm90_smem[];
    const AttnSm90Smem<F> sm(attention_sm90_smem);
    const int group = NH / NKV;
    /* log2 G: tile row r is token tile.start + (r >> group_log2) */
    const int group_log2 = PACKED ? __ffs(group) - 1 : 0;
    /* item: (tile, unit) unit-major, unit = query head (or kv head when
       PACKED), so that the blocks running at one time read the K and V of
       few heads, which then stay in L2 */
    const int num_tiles = *tile_count, units = PACKED ? NKV : NH, items = num_tiles * units;
    /* read through a shuffle, the warpgroup index is known to be the same on
       all lanes of a warp: ptxas then sees branches on it (which consumer
       warpgroup issues which wgmma shape) as non-divergent and does not
       serialize the wgmmas behind them */
    const int warpgroup = __shfl_sync(0xffffffff, (int)threadIdx.x / 128, 0);

    if (threadIdx.x == 0) {
        tma_prefetch_map(&qkv_map);
        if (PACKED) tma_prefetch_map(&q_map);
        for (int s = 0; s < F::Q_STAGES; s++) {
            mbarrier_init(&sm.q_full[s], 1);
            mbarrier_init(&sm.q_empty[s], 256);
        }
        for (int s = 0; s < STAGES; s++) {
            mbarrier_init(&sm.k_full[s], 1);
            mbarrier_init(&sm.k_empty[s], 256);
            mbarrier_init(&sm.v_full[s], 1);
            mbarrier_init(&sm.v_empty[s], 256);
        }
        mbarrier_init_fence();
    }
    __syncthreads();

    if (warpgroup == 0) { /* ------------------------------------ producer */
        setmaxnreg_dec<40>();
        if (threadIdx.x != 0) return;
        RingSlot<F::Q_STAGES> q_slot;
        RingSlot<STAGES> k_slot, v_slot;
        /* The order's tail: the items of the last ATTN_SM90_TAIL_UNITS
           units are merged, table entry 0 of each, then entry 1 of each, ...
           (computed here: at the kernel's top, where every thread saw it,
           ptxas serialized the consumers' wgmmas, C7511) */
        const int tail_units = min(ATTN_SM90_TAIL_UNITS, units), tail_start = (units - tail_units) * num_tiles;
        /* one K or V tile into the next buffer of its ring once the consumers freed it */
        auto load = [&](RingSlot<STAGES> &slot, uint64_t *full, uint64_t *empty, floatX *dst, int key0, int col) {
            mbarrier_wait(&empty[slot.stage()], slot.phase() ^ 1);
            mbarrier_expect_tx(&full[slot.stage()], F::KV_BYTES);
            tma_load_3d(dst, &qkv_map, &full[slot.stage()], 0, key0, col / 64);
            slot.count++;
        };
        /* Block b's first item is b; each later one is claimed at the top of
           the item before it (its round trip hides behind that item's
           loads), and a block's last claim runs past `items`. Claimed no
           earlier: a block that claims further ahead commits to items
           before it knows when it will be free, and the blocks then finish
           further apart (dev/cuda/attention_schedule_model.py, the T=8192
           benchmark, head-major to the end: 6.1% over an even split with
           the item after next, 3.0% with the next). */
        for (int item = blockIdx.x;; q_slot.count++) {
            const int qs = q_slot.stage();
            if (item >= items) { /* tell the consumers: nothing more */
                mbarrier_wait(&sm.q_empty[qs], q_slot.phase() ^ 1);
                sm.item[qs].unit = -1;
                mbarrier_arrive(&sm.q_full[qs]);
                break;
            }
            const int next = (int)gridDim.x + atomicAdd(&item_claims[0], 1);
            int tile_index, unit;
            if (item < tail_start) {
                tile_index = item % num_tiles;
                unit = item / num_tiles;
            } else {
                tile_index = (item - tail_start) / tail_units;
                unit = units - tail_units + (item - tail_start) % tail_units;
            }
            const AttentionTile tile = tiles[tile_index];
            const int kvh = PACKED ? unit : unit / group;
            const int num_kv = (tile.start - tile.seg_start) / BN + 1;
            const int k_col = attention_k_column(NH, kvh, HD), v_col = attention_v_column(NH, NKV, kvh, HD);
            mbarrier_wait(&sm.q_empty[qs], q_slot.phase() ^ 1);
            sm.item[qs] = {tile, unit}; /* released by the arrival below */
            mbarrier_expect_tx(&sm.q_full[qs], F::Q_BYTES);
            if (PACKED) /* query heads kvh * G .. + G - 1 of BM / G tokens, interleaved */
                tma_load_4d(sm.q(qs), &q_map, &sm.q_full[qs], 0, kvh * group, tile.start, 0);
            else
                tma_load_3d(sm.q(qs), &qkv_map, &sm.q_full[qs], 0, tile.start, unit * HD / 64);
            for (int j = 0; j <= num_kv; j++) { /* V tile j - 1 after K tile j: the consumers use V a step later */
                const int key0 = tile.seg_start + j * BN;
                if (j < num_kv) load(k_slot, sm.k_full, sm.k_empty, sm.k(k_slot.stage()), key0, k_col);
                if (j > 0) load(v_slot, sm.v_full, sm.v_empty, sm.v(v_slot.stage()), key0 - BN, v_col);
            }
            item = next;
        }
        /* This block claims nothing more. The last block to get here (every
           other block's claims are ordered before its count by the fence)
           zeroes the counters for the next call. */
        __threadfence();
        if (atomicAdd(&item_claims[1], 1) == (int)gridDim.x - 1) {
            item_claims[0] = 0;
            item_claims[1] = 0;
        }
        return;
    }

    /* ---------------------------------------------------------- consumers */
    setmaxnreg_inc<232>();
    const int wg = warpgroup - 1, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const float scale_log2 = ATTN_LOG2E / sqrtf((float)HD);
    if (F::PINGPONG && wg == 1) named_barrier_arrive(1, 256); /* warpgroup 0 issues first */
    RingSlot<F::Q_STAGES> q_slot;
    RingSlot<STAGES> k_slot, v_slot;
    /* Each item comes with its Q: wait for the buffer, then read the item
       (through shuffles, as warpgroup above: ptxas then knows the tile, and
       the branches on it, to be the same on every lane). unit < 0: done. */
    AttentionTile tile;
    auto take_item = [&]() {
        mbarrier_wait(&sm.q_full[q_slot.stage()], q_slot.phase());
        const AttnSm90Item *item = &sm.item[q_slot.stage()];
        tile = {__shfl_sync(0xffffffff, item->tile.start, 0), __shfl_sync(0xffffffff, item->tile.seg_start, 0),
                __shfl_sync(0xffffffff, item->tile.seg_end, 0), 0};
        return __shfl_sync(0xffffffff, item->unit, 0);
    };
    for (int unit = take_item(); unit >= 0; q_slot.count++, unit = take_item()) {
        const int num_kv = (tile.start - tile.seg_start) / BN + 1;
        /* This warp's 16 Q rows (rows 16 (4 wg + warp) .. + 15 of the tile)
           are the A operand of every Q K^T of the item: read from shared
           memory once here instead of by each kv step's wgmmas. Then the
           buffer is free: the producer may load the next item's Q (and its
           item) into it while this item runs. A warpgroup with no row to
           compute (below) loads them too, unused: both paths release the
           buffer here. */
        uint32_t q[HD / 16][4];
#pragma unroll
        for (int kk = 0; kk < HD / 16; kk++)
            ldmatrix_a_frag<BM>(q[kk], sm.q(q_slot.stage()), wg * 4 + warp, kk, lane);
        mbarrier_arrive(&sm.q_empty[q_slot.stage()]);
        auto k_done = [&]() { /* K_j read for the last time: free it */
            mbarrier_arrive(&sm.k_empty[k_slot.stage()]);
            k_slot.count++;
        };
        auto v_done = [&]() {
            mbarrier_arrive(&sm.v_empty[v_slot.stage()]);
            v_slot.count++;
        };

        if (tile.start + ((wg * 64) >> group_log2) >= tile.seg_end) {
            /* All 64 rows of this warpgroup lie past the segment end (the
               second warpgroup on the last tile of a segment whose length is
               1 to 64 past a multiple of 128, or 1 to 64 / G past a multiple
               of 128 / G when packed): none of them is stored, so
               compute nothing, but keep the protocol. The K and V buffers
               are freed only when both warpgroups have arrived, so arrive on
               each as the working path does, each after its full barrier (an
               arrival before the producer refilled the buffer would count
               towards the phase still in use). And take the same num_kv + 1
               turns as the other warpgroup, issuing nothing: turns strictly
               alternate, so one skipped turn would leave the other
               warpgroup's next bar.sync waiting forever. */
            for (int j = 0; j <= num_kv; j++) {
                if (j < num_kv) mbarrier_wait(&sm.k_full[k_slot.stage()], k_slot.phase());
                if (j > 0) mbarrier_wait(&sm.v_full[v_slot.stage()], v_slot.phase());
                mma_turn_begin<F::PINGPONG>(wg);
                mma_turn_end<F::PINGPONG>(wg);
                if (j < num_kv) k_done();
                if (j > 0) v_done();
            }
            continue;
        }

        /* this warp's 16 rows, numbered over the whole batch as
           token * G + head in group (G = 1: the token) */
        const int row0 = (tile.start << group_log2) + wg * 64 + warp * 16;
        const int row[2] = {(row0 + g) >> group_log2, (row0 + g + 8) >> group_log2}; /* their query tokens */
        float o[NT_O][4], s[NT_S][4], alpha[2], row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
        uint32_t p[NT_S / 2][4];
        zero_acc<NT_O>(o);
        /* The keys of kv tile j that this warpgroup multiplies. The last tile
           is the diagonal one, where a row sees the keys up to its own
           token. Unpacked, that tile starts at tile.start, so warpgroup 0
           (rows tile.start .. + 63) sees only its first half. Packed, it
           starts a multiple of BM / G tokens before tile.start, its last
           token lies diagonal_last keys into the tile, and a warpgroup (64 / G
           tokens) sees only the first half when its last token does. That
           half is then all that is computed (S with N = BN / 2) and
           multiplied (P V over BN / 2 keys). The softmax still walks all BN
           columns: the mask turns the unwritten right half (stale registers)
           into -inf and so P into exact zeros there. A softmax over the
           first half only leaves that half live through the step, and ptxas
           then serializes the wgmmas ("insufficient register resources").
           Packed, and unpacked at HD 64, diagonal_keys goes through a
           shuffle so that ptxas sees the choice of wgmma shape as uniform;
           unpacked at HD 128 it is the plain wg == 0 (the same choice: there
           diagonal_last < BN / 2 on warpgroup 0 only). ptxas (CUDA 13.0)
           serializes the wgmmas (C7511) of each kernel built with the other
           form. */
        const int diagonal_last = (tile.start - tile.seg_start) % BN + ((wg * 64 + 63) >> group_log2);
        const int diagonal_keys = PACKED || HD == 64
                                      ? __shfl_sync(0xffffffff, diagonal_last < BN / 2 ? BN / 2 : BN, 0)
                                      : (wg == 0 ? BN / 2 : BN);
        auto keys = [&](int j) { return j == num_kv - 1 ? diagonal_keys : BN; };

        /* kv step j issues S_j = Q K_j^T and O += P_{j-1} V_{j-1} together;
           the softmax of S_j runs while the P V product is still on the
           tensor cores, and O is rescaled (where needed) once that product
           is done. The first step has no P V yet, a last one only P V. Each
           step exists for both widths of S or P (n: BN or BN / 2 keys),
           chosen by with_keys before the step begins: a branch between wgmma
           shapes inside a step makes ptxas serialize the wgmmas. */
        auto softmax = [&](int j) {
            return sm90_softmax<NT_S>(s, row_max, row_sum, alpha, scale_log2, tile.seg_start + j * BN, row,
                                      j == num_kv - 1);
        };
        auto first_step = [&](auto n) {
            mbarrier_wait(&sm.k_full[k_slot.stage()], k_slot.phase());
            mma_turn_begin<F::PINGPONG>(wg);
            wgmma_fence();
            issue_qk<HD, BN, decltype(n)::value>(s, q, sm.k(k_slot.stage()));
            wgmma_commit();
            mma_turn_end<F::PINGPONG>(wg);
            wgmma_wait<0>();
            wgmma_keep<NT_S>(s);
            k_done();
            softmax(0);
            acc_to_a_frags<NT_S>(p, s);
        };
        auto step = [&](int j, auto n) {
            mbarrier_wait(&sm.k_full[k_slot.stage()], k_slot.phase());
            mbarrier_wait(&sm.v_full[v_slot.stage()], v_slot.phase());
            mma_turn_begin<F::PINGPONG>(wg);
            wgmma_fence();
            issue_qk<HD, BN, decltype(n)::value>(s, q, sm.k(k_slot.stage()));
            wgmma_commit();
            issue_pv<HD, BN, BN>(o, p, sm.v(v_slot.stage())); /* tile j - 1: not the diagonal one */
            wgmma_commit();
            mma_turn_end<F::PINGPONG>(wg);
            wgmma_wait<1>(); /* S_j done; P_{j-1} V_{j-1} may still run */
            wgmma_keep<NT_S>(s);
            k_done();
            const bool rescale = softmax(j);
            wgmma_wait<0>();
            wgmma_keep<NT_O>(o);
            v_done();
            if (rescale) scale_acc_rows<NT_O>(o, alpha);
            acc_to_a_frags<NT_S>(p, s);
        };
        auto last_step = [&](auto n) {
            mbarrier_wait(&sm.v_full[v_slot.stage()], v_slot.phase());
            mma_turn_begin<F::PINGPONG>(wg);
            wgmma_fence();
            issue_pv<HD, BN, decltype(n)::value>(o, p, sm.v(v_slot.stage()));
            wgmma_commit();
            mma_turn_end<F::PINGPONG>(wg);
            wgmma_wait<0>();
            wgmma_keep<NT_O>(o);
            v_done();
        };
        with_keys<BN>(keys(0), first_step);
        for (int j = 1; j < num_kv; j++)
            with_keys<BN>(keys(j), [&](auto n) { step(j, n); });
        with_keys<BN>(diagonal_keys, last_step);

        float inv_sum[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float row_lse;
            inv_sum[r] = online_softmax_finish(row_max[r], quad_sum(row_sum[r]), &row_lse);
            const int head = PACKED ? (unit << group_log2) + ((row0 + g + 8 * r) & (group - 1)) : unit;
            if (t == 0 && row[r] < tile.seg_end) lse[(size_t)head * N + row[r]] = row_lse;
        }
        scale_acc_rows<NT_O>(o, inv_sum);
        floatX *out_unit = out + (unit << group_log2) * HD;
        if (F::STAGED_STORE)
            store_rows_staged<HD>(out_unit, (size_t)NH * HD, o, 1.0f, sm.o_stage(wg * 4 + warp), row0,
                                  tile.seg_end << group_log2, group_log2);
        else
            store_rows<HD>(out_unit, (size_t)NH * HD, o, 1.0f, row0, tile.seg_end << group_log2, group_log2);
    }
    if (F::PINGPONG && wg == 0) named_barrier_sync(1, 256); /* the turn warpgroup 1 handed back last */
#endif
}

template <typename F, bool PACKED>
static void attention_forward_sm90_launch(floatX *out, float *lse, const floatX *qkv, const int *cu_seqlens,
                                          int num_segments, int max_seqlen, int N, int NH, int NKV, void *workspace,
                                          cudaStream_t s)
{
    constexpr int HD = F::HD;
    static bool smem_set = false;
    static int per_sm = 0;
    const auto kernel = attention_forward_sm90_kernel<F, PACKED>;
    attention_allow_smem(kernel, F::smem_bytes, &smem_set);
    const int group = PACKED ? NH / NKV : 1; /* query heads that share a tile's tokens */
    const AttentionTable table =
        attention_table(workspace, F::BM / group, cu_seqlens, num_segments, max_seqlen, N);
    const size_t width = attention_qkv_stride(NH, NKV, HD);
    const CUtensorMap map = tma_map_rows(qkv, N, width, width, F::BM, HD / 64);
    const CUtensorMap q_map = PACKED ? tma_map_row_groups(qkv, N, NH, HD, width, group, F::BM / group, HD / 64) : map;
    /* upper bound: blocks stop at the real count */
    const size_t items = (size_t)table.grid_tiles * (PACKED ? NKV : NH);
    const unsigned grid = attention_persistent_grid(kernel, F::THREADS, F::smem_bytes, items, &per_sm);
    kernel<<<grid, F::THREADS, F::smem_bytes, s>>>(map, q_map, out, lse, table.tiles, table.count, table.item_claims,
                                                   N, NH, NKV);
    cudaCheckLaunch();
}

/* One head dim: the packed kernel when the GQA group packs, else the plain one. */
template <typename F>
static void attention_forward_sm90_pick(floatX *out, float *lse, const floatX *qkv, const int *cu_seqlens,
                                        int num_segments, int max_seqlen, int N, int NH, int NKV, void *workspace,
                                        cudaStream_t s)
{
    if (attention_sm90_packs_gqa(NH / NKV))
        attention_forward_sm90_launch<F, true>(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV,
                                               workspace, s);
    else
        attention_forward_sm90_launch<F, false>(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV,
                                                workspace, s);
}

/* attention_forward on the Hopper path, same parameters; called by
   attention_forward, which has checked the shape and skipped empty batches. */
static void attention_forward_sm90(floatX *out, float *lse, const floatX *qkv, const int *cu_seqlens,
                                   int num_segments, int max_seqlen, int N, int NH, int NKV, int HD, void *workspace,
                                   cudaStream_t s)
{
    if (HD == 64)
        attention_forward_sm90_pick<AttnSm90Forward<64>>(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH,
                                                         NKV, workspace, s);
    else
        attention_forward_sm90_pick<AttnSm90Forward<128>>(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N,
                                                          NH, NKV, workspace, s);
}

#endif /* PACKLM_ATTENTION_SM90_CUH */
