/*
 * attention_sm90_bwd.cuh — the Hopper (sm_90a) backward of the varlen causal
 * flash attention: same contract as attention_backward in attention.cuh
 * (dqkv (N, (NH + 2*NKV) * HD) overwritten, dk/dv summed over the query heads
 * of a kv head, no atomics, bit-identical run to run), with the products on
 * warpgroup MMA (wgmma, hopper.cuh) and the tiles brought in by TMA.
 *
 * Same split as the sm80 backward (attention.cuh tells the algorithm): after
 * the D = rowsum(dO * O) pre-kernel (attention_common.cuh), blocks of two
 * kinds, one warpgroup (128 threads) each:
 *   kv block   one per 64-key tile of one kv head: K and V stay in shared
 *              memory; for every query head of the group and every 64-query
 *              step from the diagonal on,
 *                S^T = K Q^T and dP^T = V dO^T     (wgmma, both in smem)
 *                P^T = exp(S^T - lse), dS^T = P^T * (dP^T - D)  (registers)
 *                dV += P^T dO,  dK += dS^T Q      (wgmma, A from registers)
 *              so P^T and dS^T never leave the registers (computing S^T
 *              rather than S puts keys on the rows, exactly the A operand
 *              the dV and dK products need).
 *   dq block   one per 64-query tile of one query head: Q and dO stay in
 *              shared memory; per 64-key step S = Q K^T, dP = dO V^T,
 *              dS = P * (dP - D), dQ += dS K.
 * Both kinds run in one launch, grid (tiles, NKV + NH): rows y < NKV hold the
 * kv blocks of kv head y, the rest the dq blocks of query head y - NKV. The
 * two kinds are independent (disjoint columns of dqkv, the same inputs, the
 * same threads and shared memory), so the dq blocks start on the SMs that the
 * last kv blocks leave idle; as two kernels one after the other, they waited
 * for the whole kv grid and the launch gap. The kv blocks read the tile table
 * backwards: it lists the dq work's heaviest tiles first (most keys before
 * them), which are the kv work's lightest (fewest queries after them). The
 * launch takes the registers of the kv block (HD 64: 3 blocks per SM, where
 * the dq kernel alone ran 4); measured on an H200 against the two kernels:
 * backward -3.5% at T=1024 HD 64, -4.9% at T=2048 HD 128, level at T=8192
 * (dev/notes/attention.md).
 * Each gradient element is written once by one block in a fixed order.
 *
 * Pipeline (one warpgroup, no producer warp): the tiles streamed per step
 * (Q and dO for the kv block, K and V for the dq block) go through a ring
 * of two stages. A step has three pieces (sm90_bwd_steps): issue its two
 * score products (S, dP) once its stage has landed; wait for S (which also
 * retires every product issued before it), __syncthreads, thread 0 starts
 * the TMA loads of step i+1 into the stage that step i-1 used, then P and,
 * once dP is in, dS; issue the gradient products. At HD 128 the steps are
 * software-pipelined: step i's gradient products and step i+1's score
 * products are issued back to back, so the tensor cores never wait for the
 * registers between them:
 *
 *   thread 0: TMA step i+1 -> ring_full[(i+1)%2]   all threads:
 *                                                   ... issue dV,dK (or dQ) of i
 *                                                   wait ring_full[(i+1)%2]
 *                                                   issue S, dP of i+1
 *                                                   wait S (and the products of i)
 *                                                   __syncthreads; TMA of i+2
 *                                                   P; wait dP; dS; issue i+1 ...
 *
 * At HD 64 one step runs at a time (wait for the gradient products, then the
 * next step): the pipelined kv block needs more registers and loses its
 * third slot per SM.
 *
 * Inside a step the exponentials of P run while dP is still on the tensor
 * cores. The kv block reads the lse and D of step i+1's queries during step
 * i (plain loads into registers that nothing touches until the end of the
 * step, so their latency hides under the products) and stores them into the
 * other of its two shared-memory slots; the dq block reads its rows' lse and
 * D before it waits for its resident tiles. An ncu profile (H200) showed both
 * waits exposed before: the global load at the head of every kv step, then
 * the __syncthreads behind it, and in the dq block the resident tiles and
 * then the lse, one after the other.
 *
 * Tried and measured slower (2026-12-02, dev/notes/attention.md): the kv
 * and dq kernels as persistent blocks walking (tile, head) items with the
 * ring running across items and the next item's resident tiles prefetched.
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
#include "attention_sm90_store.cuh"
#include "hopper.cuh"
#include "mma.cuh"

#define ATTN_SM90_ROWS 64 /* keys per kv block, queries per dq block, rows of every tile */

template <int HD>
struct AttnSm90Bwd {
    static constexpr int CHUNKS = HD / 64, THREADS = 128;
    static constexpr int TILE_BYTES = ATTN_SM90_ROWS * HD * 2;
    /* Whether both kinds of block pipeline their steps (sm90_bwd_steps): at
       HD 128 (the block is held to 2 per SM by shared memory anyway); at HD 64
       the pipelined kv block needs 186 registers instead of 160, which costs
       it its third slot per SM and measured 8% slower, so HD 64 runs one step
       at a time. */
    static constexpr bool PIPELINED = HD == 128;
    /* Whether the gradients leave through shared memory (store_rows_staged,
       the staging rows in the ring's stage 0 once every product is done), as
       the forward's O does at HD 128: there it cut the backward's time by 7
       to 11% on an H200 (dev/notes/attention.md, sixth session); at HD 64,
       where the forward's staged store measured 4% slower, store_rows from
       the registers. */
    static constexpr bool STAGED_STORE = HD == 128;
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
    float *lse, *delta;                  /* kv block: [stage][64] per query of the step (lse in log2 units) */
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
    /* kv block: K (0), V (1); dq block: Q (0), dO (1) */
    __device__ floatX *resident(int k) const { return tiles + k * TILE; }
    /* streamed tile k of a stage: kv block Q (0), dO (1); dq block K (0), V (1) */
    __device__ floatX *ring(int stage, int k) const { return tiles + (2 + 2 * stage + k) * TILE; }
};

/* acc (64 x 64 per warpgroup) = A B^T with A and B 64-row tiles of HD
   columns, both read K-major (e.g. S^T = K Q^T). Issued, not waited for. */
template <int HD>
__device__ __forceinline__ void sm90_abt(float acc[8][4], const floatX *a, const floatX *b)
{
    const WgmmaTile<ATTN_SM90_ROWS> ta(a), tb(b);
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) wgmma_ss<64, 0, 0>(acc, ta.k_major(kk), tb.k_major(kk), kk > 0);
}

/* The two score-like products of a step, each its own commit group, acc0's
   first: acc0 = A0 B0^T and acc1 = A1 B1^T (64 x 64 each; S^T and dP^T in
   the kv block, S and dP in the dq block). Not waited for: wgmma_wait<1>
   then waits for acc0 alone (P is computed while dP is still on the tensor
   cores) and wgmma_wait<0> for both. */
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

/* The rest of a step's scores once P is in registers: wait for dP (the
   second product of sm90_abt_pair), then dS = P * (dP - D) in place of dP.
   D per column (the kv block: queries on the columns; delta = the step's 64
   values) or per row (the dq block: delta = this thread's two rows). */
template <bool D_PER_COLUMN>
__device__ __forceinline__ void sm90_ds_from_dp(float ds[8][4], float p[8][4], const float *delta)
{
    const int t = threadIdx.x % 4;
    wgmma_wait<0>();
    wgmma_keep<8>(ds);
#pragma unroll
    for (int n = 0; n < 8; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++)
            ds[n][e] = p[n][e] * (ds[n][e] - (D_PER_COLUMN ? delta[n * 8 + 2 * t + (e % 2)] : delta[e / 2]));
    }
}

/* acc (64 x HD) += A B with A (64 x 64) in registers as 4 k16 fragments and
   B a 64-row tile read MN-major (e.g. dV += P^T dO). Issued, not waited for. */
template <int HD>
__device__ __forceinline__ void sm90_ab_regs(float acc[HD / 8][4], const uint32_t a[4][4], const floatX *b)
{
    const WgmmaTile<ATTN_SM90_ROWS> tb(b);
#pragma unroll
    for (int kk = 0; kk < 4; kk++) wgmma_rs<HD, 1>(acc, a[kk], tb.mn_major(kk), 1);
}

/* The head of step i's scores, once its two score products are issued:
   wait for the first (acc0 of sm90_abt_pair; every product issued before it
   is then done too), make sure every thread got that far (so the stage that
   step i-1 read may be refilled), then thread 0 starts step i+1's loads
   through issue(i + 1). */
template <typename Issue>
__device__ __forceinline__ void sm90_scores_ready(float acc0[8][4], int i, int num_steps, const Issue &issue)
{
    wgmma_wait<1>();
    wgmma_keep<8>(acc0);
    __syncthreads();
    if (threadIdx.x == 0 && i + 1 < num_steps) issue(i + 1);
}

/* The steps of a block, each in three pieces: issue_scores(i) waits for
   step i's tiles and issues its two score products, scores(i) starts with
   sm90_scores_ready and ends with dS in registers, issue_grads(i) issues the
   gradient products. PIPELINED: step i's gradient products and step i+1's
   score products go to the tensor cores back to back, without a wait
   between them (the wait for step i+1's scores retires step i's gradients
   too); nothing stays in flight across the loop's back edge, where ptxas
   would serialize the wgmmas (C7515). Otherwise one step at a time. */
template <bool PIPELINED, typename IssueScores, typename Scores, typename IssueGrads>
__device__ __forceinline__ void sm90_bwd_steps(int num_steps, const IssueScores &issue_scores, const Scores &scores,
                                               const IssueGrads &issue_grads)
{
    if constexpr (PIPELINED) {
        issue_scores(0);
        scores(0);
        for (int i = 0; i + 1 < num_steps; i++) {
            issue_grads(i);
            issue_scores(i + 1);
            scores(i + 1);
        }
        issue_grads(num_steps - 1);
    } else {
        for (int i = 0; i < num_steps; i++) {
            issue_scores(i);
            scores(i);
            issue_grads(i);
            wgmma_wait<0>();
        }
    }
    wgmma_wait<0>();
}

/* Issue the two score products of step i once its tiles (stage i % 2 of the
   ring) have landed: acc0 = resident 0 times streamed tile 0 ^T, acc1 =
   resident 1 times streamed tile 1 ^T. */
template <int HD>
__device__ __forceinline__ void sm90_issue_scores(const AttnSm90BwdSmem<HD> &sm, int i, float acc0[8][4],
                                                  float acc1[8][4])
{
    mbarrier_wait(&sm.ring_full[i % 2], (i / 2) & 1);
    sm90_abt_pair<HD>(acc0, sm.resident(0), sm.ring(i % 2, 0), acc1, sm.resident(1), sm.ring(i % 2, 1));
}

/* Thread 0: start the loads of two 64-row tiles, rows row.. of the column
   chunks z0 of map0 and z1 of map1, into dst0 and dst1; `bar` completes when
   both have landed. */
template <int HD>
__device__ __forceinline__ void sm90_load_tile_pair(uint64_t *bar, int row, floatX *dst0, const CUtensorMap *map0,
                                                    int z0, floatX *dst1, const CUtensorMap *map1, int z1)
{
    mbarrier_expect_tx(bar, 2 * AttnSm90Bwd<HD>::TILE_BYTES);
    tma_load_3d(dst0, map0, bar, 0, row, z0);
    tma_load_3d(dst1, map1, bar, 0, row, z1);
}

/* Thread 0: set up the barriers, then start the two resident tiles (rows
   row0 of the columns of chunks z0 and z1 of their maps) and step 0. */
template <int HD, typename Issue>
__device__ __forceinline__ void sm90_bwd_start(const AttnSm90BwdSmem<HD> &sm, const CUtensorMap *map0, int z0,
                                               const CUtensorMap *map1, int z1, int row0, const Issue &issue)
{
    if (threadIdx.x == 0) {
        tma_prefetch_map(map0);
        tma_prefetch_map(map1);
        mbarrier_init(sm.resident_full, 1);
        mbarrier_init(&sm.ring_full[0], 1);
        mbarrier_init(&sm.ring_full[1], 1);
        mbarrier_init_fence();
        sm90_load_tile_pair<HD>(sm.resident_full, row0, sm.resident(0), map0, z0, sm.resident(1), map1, z1);
        issue(0);
    }
    __syncthreads(); /* barriers initialised before anyone waits on them */
    mbarrier_wait(sm.resident_full, 0);
}

/* i / d and i % d for the step index of a block, with d fixed per block:
   one multiply-high by inv = (2^32 - 1) / d, computed once, instead of a
   runtime division per step (which ncu found in the wgmma issue stream).
   floor((i + 1) * inv / 2^32) equals floor(i / d) while (i + 1) * d < 2^32.
   In a kv block i < G * d (G = NH / NKV, d <= its query tiles), so the launch
   refuses a batch whose G x (query tiles of its longest segment)^2 reaches
   2^32 (e.g. 1M-token segments with G >= 16), which would be wrong here
   in silence. */
struct StepDivider {
    int d;
    unsigned inv;
    __device__ __forceinline__ explicit StepDivider(int divisor) : d(divisor), inv(0xFFFFFFFFu / (unsigned)divisor) {}
    __device__ __forceinline__ int quot(int i) const { return (int)__umulhi((unsigned)i + 1, inv); }
    __device__ __forceinline__ int rem(int i) const { return i - quot(i) * d; }
};

/* The epilogue of a block: a warp's 16 x HD rows of acc times `scale` into
   dst from row row0 on (rows >= row_end skipped), through its staging rows
   in ring tile (0, k) with STAGED_STORE. The caller has passed the block
   barrier after its last wait for the products (so no warp's wgmma still
   reads the ring). */
template <int HD>
__device__ __forceinline__ void sm90_bwd_store(const AttnSm90BwdSmem<HD> &sm, int k, floatX *dst, size_t stride,
                                               const float acc[HD / 8][4], float scale, int row0, int row_end)
{
    if constexpr (AttnSm90Bwd<HD>::STAGED_STORE)
        store_rows_staged<HD>(dst, stride, acc, scale, sm.ring(0, k) + (threadIdx.x / 32) * 16 * HD, row0, row_end);
    else
        store_rows<HD>(dst, stride, acc, scale, row0, row_end);
}

/* The kv work of one block: dK and dV of the 64 keys of `tile` for kv head
   kvh (see the top of this file). */
template <int HD>
__device__ __forceinline__ void
attention_backward_kv_sm90_block(const AttnSm90BwdSmem<HD> &sm, const CUtensorMap *qkv_map, const CUtensorMap *dout_map,
                                 floatX *dqkv, const float *lse, const float *delta, const AttentionTile tile, int kvh,
                                 int N, int NH, int NKV)
{
    using B = AttnSm90Bwd<HD>;
    constexpr int ROWS = ATTN_SM90_ROWS, CHUNKS = B::CHUNKS, NT_D = HD / 8;
    const int group = NH / NKV;
    const int warp = threadIdx.x / 32, t = threadIdx.x % 4, g = (threadIdx.x % 32) / 4;
    const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * ATTN_LOG2E;
    const int k0 = tile.start;
    const int q_steps = CEIL_DIV(tile.seg_end - k0, ROWS), num_steps = group * q_steps;
    const StepDivider by_q_steps(q_steps);
    /* step i: query head kvh * group + i / q_steps, rows k0 + (i % q_steps) * 64 onwards */
    auto issue = [=](int i) {
        const int h = kvh * group + by_q_steps.quot(i), q0 = k0 + by_q_steps.rem(i) * ROWS;
        sm90_load_tile_pair<HD>(&sm.ring_full[i % 2], q0, sm.ring(i % 2, 0), qkv_map, h * CHUNKS, sm.ring(i % 2, 1),
                                dout_map, h * CHUNKS);
    };
    sm90_bwd_start<HD>(sm, qkv_map, (NH + kvh) * CHUNKS, qkv_map, (NH + NKV + kvh) * CHUNKS, k0, issue);

    float dk[NT_D][4], dv[NT_D][4];
    zero_acc<NT_D>(dk);
    zero_acc<NT_D>(dv);
    const int key_row = k0 + warp * 16 + g; /* this thread's keys: key_row, key_row + 8 */
    /* threads 0..63: lse and D of query threadIdx.x of step i (past the
       segment lse = +inf, which makes P = 0); loads only, scaled to log2
       units when stored */
    auto read_query = [=](int i, float *row_lse, float *row_delta) {
        const int h = kvh * group + by_q_steps.quot(i), q = k0 + by_q_steps.rem(i) * ROWS + threadIdx.x;
        *row_lse = INFINITY;
        *row_delta = 0.0f;
        if (q < tile.seg_end) {
            *row_lse = lse[(size_t)h * N + q];
            *row_delta = delta[(size_t)h * N + q];
        }
    };
    if (threadIdx.x < ROWS) {
        float row_lse, row_delta;
        read_query(0, &row_lse, &row_delta);
        sm.lse[threadIdx.x] = row_lse * ATTN_LOG2E;
        sm.delta[threadIdx.x] = row_delta;
    }
    float p[8][4], ds[8][4]; /* S^T then P^T; dP^T then dS^T: rows keys, columns queries */
    auto issue_scores = [&](int i) { sm90_issue_scores<HD>(sm, i, p, ds); }; /* S^T = K Q^T, dP^T = V dO^T */
    auto scores = [&](int i) {
        const int q0 = k0 + by_q_steps.rem(i) * ROWS;
        const float *lse_s = sm.lse + (i % 2) * ROWS, *delta_s = sm.delta + (i % 2) * ROWS;
        float lse_after = 0.0f, delta_after = 0.0f; /* step i + 1's, stored at the end of this step */
        if (threadIdx.x < ROWS && i + 1 < num_steps) read_query(i + 1, &lse_after, &delta_after);
        sm90_scores_ready(p, i, num_steps, issue);
        const bool needs_mask = q0 < k0 + ROWS; /* some key of the tile follows some query */
#pragma unroll
        for (int n = 0; n < 8; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = n * 8 + 2 * t + (e % 2);
                float v = exp2f(p[n][e] * scale_log2 - lse_s[col]);
                if (needs_mask && attention_masked(key_row + 8 * (e / 2), q0 + col)) v = 0.0f;
                p[n][e] = v;
            }
        }
        sm90_ds_from_dp<true>(ds, p, delta_s);
        if (threadIdx.x < ROWS && i + 1 < num_steps) { /* slot (i + 1) % 2 was last read in step i - 1 */
            sm.lse[((i + 1) % 2) * ROWS + threadIdx.x] = lse_after * ATTN_LOG2E;
            sm.delta[((i + 1) % 2) * ROWS + threadIdx.x] = delta_after;
        }
    };
    auto issue_grads = [&](int i) { /* dV += P^T dO, dK += dS^T Q */
        uint32_t p_frag[4][4], ds_frag[4][4];
        acc_to_a_frags<8>(p_frag, p);
        acc_to_a_frags<8>(ds_frag, ds);
        wgmma_fence();
        sm90_ab_regs<HD>(dv, p_frag, sm.ring(i % 2, 1));
        sm90_ab_regs<HD>(dk, ds_frag, sm.ring(i % 2, 0));
        wgmma_commit();
    };
    sm90_bwd_steps<B::PIPELINED>(num_steps, issue_scores, scores, issue_grads);
    wgmma_keep<NT_D>(dv);
    wgmma_keep<NT_D>(dk);

    const size_t stride = attention_qkv_stride(NH, NKV, HD);
    if constexpr (B::STAGED_STORE) __syncthreads(); /* every warp's products are done: the ring is free */
    sm90_bwd_store<HD>(sm, 0, dqkv + attention_k_column(NH, kvh, HD), stride, dk, scale, k0 + warp * 16,
                       tile.seg_end);
    sm90_bwd_store<HD>(sm, 1, dqkv + attention_v_column(NH, NKV, kvh, HD), stride, dv, 1.0f, k0 + warp * 16,
                       tile.seg_end);
}

/* The dq work of one block: dQ of the 64 queries of `tile` for query head h
   (see the top of this file). */
template <int HD>
__device__ __forceinline__ void
attention_backward_dq_sm90_block(const AttnSm90BwdSmem<HD> &sm, const CUtensorMap *qkv_map, const CUtensorMap *dout_map,
                                 floatX *dqkv, const float *lse, const float *delta, const AttentionTile tile, int h,
                                 int N, int NH, int NKV)
{
    using B = AttnSm90Bwd<HD>;
    constexpr int ROWS = ATTN_SM90_ROWS, CHUNKS = B::CHUNKS, NT_D = HD / 8;
    const int kvh = h / (NH / NKV);
    const int warp = threadIdx.x / 32, t = threadIdx.x % 4, g = (threadIdx.x % 32) / 4;
    const float scale = 1.0f / sqrtf((float)HD), scale_log2 = scale * ATTN_LOG2E;
    const int num_steps = CEIL_DIV(min(tile.start + ROWS, tile.seg_end) - tile.seg_start, ROWS);
    /* step j: keys seg_start + j * 64 onwards */
    const int seg_start = tile.seg_start;
    auto issue = [=](int j) {
        sm90_load_tile_pair<HD>(&sm.ring_full[j % 2], seg_start + j * ROWS, sm.ring(j % 2, 0), qkv_map,
                                (NH + kvh) * CHUNKS, sm.ring(j % 2, 1), qkv_map, (NH + NKV + kvh) * CHUNKS);
    };
    /* this thread's query rows q_row[r] = start + warp * 16 + g + 8 r: their lse
       (+inf past the segment, which makes P = 0) and D, loaded before the wait
       for the resident tiles so that the two latencies overlap */
    float row_lse[2], row_delta[2];
    int q_row[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        q_row[r] = tile.start + warp * 16 + g + 8 * r;
        row_lse[r] = INFINITY;
        row_delta[r] = 0.0f;
        if (q_row[r] < tile.seg_end) {
            row_lse[r] = lse[(size_t)h * N + q_row[r]];
            row_delta[r] = delta[(size_t)h * N + q_row[r]];
        }
    }
    sm90_bwd_start<HD>(sm, qkv_map, h * CHUNKS, dout_map, h * CHUNKS, tile.start, issue);
#pragma unroll
    for (int r = 0; r < 2; r++) row_lse[r] *= ATTN_LOG2E;
    float dq[NT_D][4];
    zero_acc<NT_D>(dq);
    float p[8][4], ds[8][4]; /* S then P; dP then dS: rows queries, columns keys */
    auto issue_scores = [&](int j) { sm90_issue_scores<HD>(sm, j, p, ds); }; /* S = Q K^T, dP = dO V^T */
    auto scores = [&](int j) {
        const int key0 = tile.seg_start + j * ROWS;
        sm90_scores_ready(p, j, num_steps, issue);
        const bool needs_mask = attention_block_needs_mask(key0, ROWS, tile.start);
#pragma unroll
        for (int n = 0; n < 8; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float v = exp2f(p[n][e] * scale_log2 - row_lse[e / 2]);
                if (needs_mask && attention_masked(key0 + n * 8 + 2 * t + (e % 2), q_row[e / 2])) v = 0.0f;
                p[n][e] = v;
            }
        }
        sm90_ds_from_dp<false>(ds, p, row_delta);
    };
    auto issue_grads = [&](int j) { /* dQ += dS K */
        uint32_t ds_frag[4][4];
        acc_to_a_frags<8>(ds_frag, ds);
        wgmma_fence();
        sm90_ab_regs<HD>(dq, ds_frag, sm.ring(j % 2, 0));
        wgmma_commit();
    };
    sm90_bwd_steps<B::PIPELINED>(num_steps, issue_scores, scores, issue_grads);
    wgmma_keep<NT_D>(dq);
    if constexpr (B::STAGED_STORE) __syncthreads(); /* every warp's products are done: the ring is free */
    sm90_bwd_store<HD>(sm, 0, dqkv + h * HD, attention_qkv_stride(NH, NKV, HD), dq, scale, tile.start + warp * 16,
                       tile.seg_end);
}

/* One launch for both kinds of work (see the top of this file): block (x, y)
   is the kv block of kv head y for y < NKV, taking tile gridDim.x - 1 - x of
   the table (the table read backwards), otherwise the dq block of query head
   y - NKV, taking tile x. Blocks whose tile lies past the table's count exit
   at once: the first gridDim.x - count of a kv row, the last of a dq row. A
   tile's index does not depend on the count, so the two loads at the head
   of a block go out together instead of one after the other. */
template <int HD>
__global__ void __launch_bounds__(AttnSm90Bwd<HD>::THREADS)
    attention_backward_sm90_kernel(const __grid_constant__ CUtensorMap qkv_map,
                                   const __grid_constant__ CUtensorMap dout_map, floatX *dqkv, const float *lse,
                                   const float *delta, const AttentionTile *tiles, const int *tile_count, int N, int NH,
                                   int NKV)
{
#if PACKLM_SM90_DEVICE
    const bool kv_work = (int)blockIdx.y < NKV;
    const int index = kv_work ? (int)(gridDim.x - 1 - blockIdx.x) : (int)blockIdx.x; /* < gridDim.x: in the table */
    const int count = *tile_count;
    const AttentionTile tile = tiles[index];
    /* An entry in the table always has start < seg_end; testing that too
       keeps the tile's load ahead of the branch (ptxas otherwise moves it
       behind, and the two loads go out one after the other again). */
    if (index >= count || tile.start >= tile.seg_end) return;
    extern __shared__ unsigned char attention_sm90_bwd_smem[];
    const AttnSm90BwdSmem<HD> sm(attention_sm90_bwd_smem);
    /* the maps stay in parameter space: their addresses go to TMA */
    if (kv_work)
        attention_backward_kv_sm90_block<HD>(sm, &qkv_map, &dout_map, dqkv, lse, delta, tile, blockIdx.y, N, NH, NKV);
    else
        attention_backward_dq_sm90_block<HD>(sm, &qkv_map, &dout_map, dqkv, lse, delta, tile, blockIdx.y - NKV, N, NH,
                                             NKV);
#endif
}

template <int HD>
static void attention_backward_sm90_launch(floatX *dqkv, const floatX *dout, const floatX *qkv, const floatX *out,
                                           const float *lse, const int *cu_seqlens, int num_segments,
                                           int max_seqlen, int N, int NH, int NKV, void *workspace, cudaStream_t s)
{
    using B = AttnSm90Bwd<HD>;
    const uint64_t q_tiles = CEIL_DIV((uint64_t)max_seqlen, (uint64_t)ATTN_SM90_ROWS); /* StepDivider's bound */
    if ((uint64_t)(NH / NKV) * q_tiles * q_tiles >= (1ull << 32))
        die("attention backward (sm90): %d query heads per kv head with segments of up to %d tokens exceed the "
            "step index's range; use --attention sm80 or shorter segments", NH / NKV, max_seqlen);
    const AttentionWorkspace ws = attention_workspace_split(workspace, N);
    attention_delta<HD>(ws.delta, dout, out, N, NH, s);
    const AttentionTable table = attention_table(workspace, ATTN_SM90_ROWS, cu_seqlens, num_segments, max_seqlen, N);
    const size_t width = attention_qkv_stride(NH, NKV, HD), dwidth = (size_t)NH * HD;
    const CUtensorMap qkv_map = tma_map_rows(qkv, N, width, width, ATTN_SM90_ROWS, B::CHUNKS);
    const CUtensorMap dout_map = tma_map_rows(dout, N, dwidth, dwidth, ATTN_SM90_ROWS, B::CHUNKS);
    static bool smem_set = false;
    attention_allow_smem(attention_backward_sm90_kernel<HD>, B::smem_bytes, &smem_set);
    attention_backward_sm90_kernel<HD><<<dim3(table.grid_tiles, NKV + NH), B::THREADS, B::smem_bytes, s>>>(
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
