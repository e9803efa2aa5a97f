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
 * Files: attention_schedule.cuh (workspace, tile tables, attention_plan),
 * attention_common.cuh (indexing, mask, online softmax, epilogue store, the
 * backward's D pre-kernel), attention_sm80.cuh (mma.sync mainloops, every
 * card from sm_80 on), attention_sm90.cuh (wgmma + TMA forward, sm_90a),
 * attention_sm90_bwd.cuh (its backward), attention_sm90_store.cuh (the
 * epilogue store through shared memory both of them use at HD 128) and this
 * file: the algorithm below and the choice of path at run time.
 *
 * Usage: attention_plan(workspace, cu_seqlens, S, max_seqlen, N, stream)
 * after every upload of cu_seqlens, then any number of attention_forward /
 * attention_backward calls on that micro-batch.
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
 * Scheduling (attention_schedule.cuh). attention_plan, called once per
 * micro-batch when cu_seqlens is uploaded, runs a tiny kernel that scans
 * cu_seqlens on the device and writes tables with one entry per (segment,
 * tile) for the tile heights the kernels use (64 and 128 rows, and 16, 32
 * and 64 tokens for the sm90 forward's packed GQA tiles); the grid is
 * (table entries, heads), so a batch of many short documents yields many
 * small blocks rather than a few blocks walking long masked rows. A table is
 * ordered heaviest tile first (most kv tiles to visit) so the long tiles do
 * not form a tail. The host only computes an upper bound on the table size:
 * no host sync, no allocation; everything lives in the caller's workspace,
 * and every layer's forward and backward reuse the same tables. On the sm90
 * path the forward is a persistent grid instead, one block per SM claiming
 * (tile, head) items from a counter, head-major, with the last heads' items
 * merged heaviest first so that no heavy tile starts last; the backward's
 * one launch puts every kv row before every dq row, its longer blocks first.
 * dev/cuda/attention_schedule_model.py models both on the benchmark's rows.
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
 * backward is bit-identical run to run, so there is no faster
 * non-deterministic mode to choose. (The usual alternative, dQ added into an
 * fp32 buffer with atomics by the kv kernel, was built for the sm90 path and
 * measured slower on an H200: the atomic traffic costs more than the
 * recomputed S and dP; dev/notes/attention.md.)
 *
 * The Hopper pipeline (sm90 path, attention_sm90.cuh and
 * attention_sm90_bwd.cuh; the instructions are wrapped in hopper.cuh). The
 * algorithm is the same; what changes is who moves the data and who waits:
 *   - TMA (the tensor memory accelerator, cp.async.bulk.tensor): one thread
 *     asks for a whole tile (64 or 128 rows of a head, described by a tensor
 *     map made once per call on the host) and the copy engine writes it to
 *     shared memory, already swizzled the way the tensor cores read it. No
 *     registers, no address arithmetic in the other threads; rows past N
 *     arrive as zeros.
 *   - mbarriers: shared-memory counters with a phase bit. A "full" barrier
 *     completes when the bytes the loading thread announced (expect_tx) have
 *     landed; an "empty" barrier when every consumer thread has arrived.
 *     Waiting on the parity of a phase is how a thread knows a ring stage is
 *     ready (or free again) without a block-wide __syncthreads.
 *   - wgmma (warpgroup MMA): 4 warps together compute a 64 x N x 16 product
 *     with both operands read straight from shared memory (or the left one
 *     from registers, as P and dS are), asynchronously: issue, commit, and
 *     wait only when the result is needed. One instruction does the work of
 *     4 x N/8 mma.sync, and no ldmatrix traffic goes through the registers.
 *   - warp specialization (forward): a producer warpgroup only issues TMA
 *     loads and gives most of its registers away (setmaxnreg.dec); two
 *     consumer warpgroups of 64 query rows each take them (setmaxnreg.inc)
 *     for S, P and O, and take turns on the tensor cores (one does its
 *     softmax while the other's wgmmas run).
 *
 *   forward: producer                     consumers (2 warpgroups)
 *            wait kv_empty[s] <---------- arrive kv_empty[s] after P V
 *            TMA K, V -> k_full/v_full[s] ->  wait k_full[s]: S = Q K^T (wgmma)
 *            (Q once per tile, q_full/q_empty)  mask, online softmax (regs)
 *                                         wait v_full[s]: O += P V (wgmma, P in regs)
 *   backward: one warpgroup per block, no producer; the kv and dq work are
 *            blocks of one launch (the dq blocks fill the SMs the last kv
 *            blocks leave). Everyone waits ring_full[i % 2] and issues
 *            S^T = K Q^T, dP^T = V dO^T (kv block) or S, dP (dq block);
 *            once S is in, all threads are past step i-1 (__syncthreads)
 *            and thread 0 starts the TMA of step i+1 into that stage; then
 *            dV += P^T dO, dK += dS^T Q or dQ += dS K. At HD 128 these
 *            gradient products and step i+1's S, dP are issued back to back.
 * The sm90 path keeps the contract and the determinism of the sm80 one.
 */
#ifndef PACKLM_ATTENTION_CUH
#define PACKLM_ATTENTION_CUH

#include "attention_common.cuh"
#include "attention_schedule.cuh"
#include "attention_sm80.cuh"

static inline void attention_check_shape(const char *who, int NH, int NKV, int HD)
{
    if (HD != 64 && HD != 128) die("%s: head dim %d is not supported (64 or 128)", who, HD);
    if (NH <= 0 || NKV <= 0 || NH % NKV != 0)
        die("%s: kv heads (%d) must divide query heads (%d)", who, NKV, NH);
}


/* ------------------------------------------------------------- dispatch */

#include "attention_sm90.cuh"
#include "attention_sm90_bwd.cuh"

/* Which kernels run: the mma.sync kernels (sm80, any card from sm_80 on) or
   the Hopper kernels (sm90: wgmma + TMA, compute capability 9.0 and a binary
   that carries sm_90a code). AUTO picks sm90 when both hold. */
enum AttentionPath { ATTENTION_PATH_AUTO, ATTENTION_PATH_SM80, ATTENTION_PATH_SM90 };

static const char *attention_path_name(AttentionPath path)
{
    return path == ATTENTION_PATH_SM90 ? "sm90" : path == ATTENTION_PATH_SM80 ? "sm80" : "auto";
}

/* The path named "auto", "sm80" or "sm90"; 0 for any other name. */
static int attention_path_from_name(const char *name, AttentionPath *path)
{
    const AttentionPath all[] = {ATTENTION_PATH_AUTO, ATTENTION_PATH_SM80, ATTENTION_PATH_SM90};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, attention_path_name(all[i])) == 0) {
            *path = all[i];
            return 1;
        }
    return 0;
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
    if (attention_active_path() == ATTENTION_PATH_SM90) {
        attention_forward_sm90(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, HD, workspace, s);
        return;
    }
    attention_forward_sm80(out, lse, qkv, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, HD, workspace, s);
}

static void attention_backward(floatX *dqkv, const floatX *dout, const floatX *qkv, const floatX *out,
                               const float *lse, const int *cu_seqlens, int num_segments, int max_seqlen, int N,
                               int NH, int NKV, int HD, void *workspace, cudaStream_t s)
{
    attention_check_shape("attention_backward", NH, NKV, HD);
    if (N <= 0 || num_segments <= 0) return;
    if (attention_active_path() == ATTENTION_PATH_SM90) {
        attention_backward_sm90(dqkv, dout, qkv, out, lse, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, HD,
                                workspace, s);
        return;
    }
    attention_backward_sm80(dqkv, dout, qkv, out, lse, cu_seqlens, num_segments, max_seqlen, N, NH, NKV, HD,
                            workspace, s);
}

#endif /* PACKLM_ATTENTION_CUH */
