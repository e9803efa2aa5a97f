/*
 * hopper.cuh — thin, named wrappers around the sm_90a (Hopper) instructions
 * the warp-specialized kernels use; one PTX instruction (or a tiny loop) each.
 *
 *   mbarriers (shared-memory barriers that count arrivals and bytes):
 *     mbarrier_init, mbarrier_init_fence, mbarrier_arrive, mbarrier_expect_tx,
 *     mbarrier_wait (try_wait.parity loop)
 *   proxies:       fence_proxy_async (generic-proxy smem writes -> TMA/wgmma)
 *   TMA:           tma_map_rows (host: a 3-D tensor map over a row-major bf16
 *                  matrix, columns cut in 64-wide chunks, 128-byte swizzle),
 *                  tma_map_row_groups (host: the same with each row's
 *                  vectors as a dimension, to interleave rows and vectors),
 *                  tma_prefetch_map, tma_load_3d, tma_load_4d
 *   wgmma:         wgmma_desc (smem matrix descriptor, 128-byte swizzle),
 *                  wgmma_desc_k_major / wgmma_desc_mn_major (k-step kk of a
 *                  chunked tile, see below), WgmmaTile (the same by one add
 *                  per k-step),
 *                  wgmma_fence, wgmma_commit, wgmma_wait<N>, wgmma_keep
 *                  (register fence), wgmma_ss<N, TA, TB> / wgmma_rs<N, TB>
 *                  (m64 x N x k16 bf16 -> fp32, N = 64 or 128)
 *   shared stores: stmatrix_x4 (four 8 x 8 bf16 matrices from mma fragments)
 *   shared loads:  ldmatrix_a_frag (wgmma_rs's A operand from a swizzled tile)
 *   registers:     setmaxnreg_inc<R>, setmaxnreg_dec<R>
 *   named barriers: named_barrier_sync, named_barrier_arrive
 *   RingSlot<STAGES>: buffer index and barrier parity of a multi-stage ring
 *
 * Layout convention (what tma_map_rows writes and wgmma_desc reads): a tile
 * of R rows x C columns of bf16 lies in shared memory as C/64 chunks of
 * [R][64], each 64-element row (128 bytes) 128-byte swizzled; the tile starts
 * on a 1024-byte boundary. As a wgmma operand such a tile is
 *   K-major (the reduction runs along the 64-wide rows, e.g. Q or K in Q K^T):
 *     k-step kk starts in chunk kk/4 at byte 32 * (kk % 4) (wgmma_desc_k_major);
 *   MN-major (the reduction runs down the rows, e.g. V in P V, TB = 1):
 *     k-step kk starts at row 16 * kk, leading byte offset R * 128 (the
 *     distance between 64-column chunks) (wgmma_desc_mn_major).
 * Accumulators use the mma.sync C layout of mma.cuh per warp: warp w of the
 * warpgroup owns rows 16w..16w+15, float d[N/8][4] as in zero_acc/scale_acc_rows;
 * the register A operand of wgmma_rs is the mma.sync A fragment (acc_to_a_frags).
 *
 * Everything here compiles only into sm_90a code: call these from kernel
 * bodies guarded by PACKLM_SM90_DEVICE (host passes and other archs see the
 * kernel as an empty shell that is never launched there).
 */
#ifndef PACKLM_HOPPER_CUH
#define PACKLM_HOPPER_CUH

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda_common.h"

/* 1 inside the device pass for sm_90a, where wgmma/TMA/setmaxnreg exist. */
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PACKLM_SM90_DEVICE 1
#else
#define PACKLM_SM90_DEVICE 0
#endif

/* ------------------------------------------------------------- mbarriers */

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* Set up a barrier that completes a phase after `count` arrivals (and all expected bytes). */
__device__ __forceinline__ void mbarrier_init(uint64_t *bar, int count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count));
}

/* Make barrier initializations visible to the async proxy (TMA) before first use. */
__device__ __forceinline__ void mbarrier_init_fence()
{
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

/* One arrival on the barrier's current phase. */
__device__ __forceinline__ void mbarrier_arrive(uint64_t *bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}

/* One arrival that also announces `bytes` still to land (by TMA) in this phase. */
__device__ __forceinline__ void mbarrier_expect_tx(uint64_t *bar, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
                 : "memory");
}

/* Wait until the phase with parity `parity` (0/1) has completed. A fresh
   barrier counts as having completed the phase of parity 1. */
__device__ __forceinline__ void mbarrier_wait(uint64_t *bar, uint32_t parity)
{
    uint32_t done;
    do {
        asm volatile("{\n.reg .pred p;\n"
                     "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(smem_addr(bar)), "r"(parity)
                     : "memory");
    } while (!done);
}

/* Order this thread's ordinary shared-memory writes before later async-proxy
   (TMA, wgmma) accesses to the same memory. */
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

/* ------------------------------------------------------------------- TMA */

/* Host: a bf16 tensor map of `rank` (3 or 4) dimensions whose first is 64
   contiguous elements (128 bytes, 128-byte swizzle); strides in bytes for
   dimensions 1 .. rank - 1. `who` names the caller in errors. */
static inline CUtensorMap tma_encode(const char *who, const void *base, int rank, const cuuint64_t *dims,
                                     const cuuint64_t *strides, const cuuint32_t *box)
{
    static PFN_cuTensorMapEncodeTiled_v12000 encode = NULL;
    if (!encode) { /* the driver entry point through the runtime: no -lcuda */
        cudaDriverEntryPointQueryResult found;
        cudaCheck(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", (void **)&encode, 12000,
                                                   cudaEnableDefault, &found));
        if (found != cudaDriverEntryPointSuccess || !encode) die("%s: cuTensorMapEncodeTiled not found", who);
    }
    const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
    CUtensorMap map;
    const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rank, (void *)base, dims, strides, box,
                              elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) die("%s: cuTensorMapEncodeTiled failed (%d)", who, (int)r);
    return map;
}

/* Host: a tensor map over a row-major bf16 matrix `base` (rows x cols, row
   pitch `pitch` elements) seen as 3-D {64 columns, rows, cols / 64 chunks};
   one load brings box_rows rows x box_chunks * 64 columns as box_chunks
   swizzled [box_rows][64] chunks. Rows past `rows` read as zeros. */
static inline CUtensorMap tma_map_rows(const void *base, size_t rows, size_t cols, size_t pitch, int box_rows,
                                       int box_chunks)
{
    if ((uintptr_t)base % 16 != 0 || cols % 64 != 0 || pitch % 8 != 0)
        die("tma_map_rows: base %p, %zu columns, pitch %zu: need 16-byte alignment and 64-column chunks", base,
            cols, pitch);
    const cuuint64_t dims[3] = {64, rows, cols / 64};
    const cuuint64_t strides[2] = {pitch * 2, 128}; /* bytes, of dims 1 and 2 */
    const cuuint32_t box[3] = {64, (cuuint32_t)box_rows, (cuuint32_t)box_chunks};
    return tma_encode("tma_map_rows", base, 3, dims, strides, box);
}

/* Host: a tensor map over a row-major bf16 matrix `base` (rows, row pitch
   `pitch` elements) whose rows begin with `vectors` consecutive vectors of
   `cols` elements (the query heads of a packed qkv row), seen as 4-D
   {64 columns, vector, row, cols / 64 chunks}. One load brings box_vectors
   vectors of box_rows rows, box_chunks * 64 columns each, as box_chunks
   swizzled chunks of [box_rows][box_vectors][64]: the tile row of (row r,
   vector v) is r * box_vectors + v, so one tile interleaves rows and
   vectors. Rows past `rows` read as zeros. */
static inline CUtensorMap tma_map_row_groups(const void *base, size_t rows, int vectors, size_t cols,
                                             size_t pitch, int box_vectors, int box_rows, int box_chunks)
{
    if ((uintptr_t)base % 16 != 0 || cols % 64 != 0 || pitch % 8 != 0 || (size_t)vectors * cols > pitch)
        die("tma_map_row_groups: base %p, %d vectors of %zu columns, pitch %zu: need 16-byte alignment, "
            "64-column chunks and the vectors inside a row", base, vectors, cols, pitch);
    const cuuint64_t dims[4] = {64, (cuuint64_t)vectors, rows, cols / 64};
    const cuuint64_t strides[3] = {cols * 2, pitch * 2, 128}; /* bytes, of dims 1, 2 and 3 */
    const cuuint32_t box[4] = {64, (cuuint32_t)box_vectors, (cuuint32_t)box_rows, (cuuint32_t)box_chunks};
    return tma_encode("tma_map_row_groups", base, 4, dims, strides, box);
}

/* Pull a tensor map (a __grid_constant__ kernel parameter) into the cache. */
__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap *map)
{
    asm volatile("prefetch.tensormap [%0];\n" ::"l"((uint64_t)map) : "memory");
}

/* Start a TMA load of the box at element coordinates (x, y, z) into `dst`;
   its bytes count towards `bar`'s expected transaction bytes. */
__device__ __forceinline__ void tma_load_3d(void *dst, const CUtensorMap *map, uint64_t *bar, int x, int y, int z)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, "
                 "%5}], [%2];\n" ::"r"(smem_addr(dst)),
                 "l"((uint64_t)map), "r"(smem_addr(bar)), "r"(x), "r"(y), "r"(z)
                 : "memory");
}

/* The same for a 4-D map, box at (x, y, z, w). */
__device__ __forceinline__ void tma_load_4d(void *dst, const CUtensorMap *map, uint64_t *bar, int x, int y, int z,
                                            int w)
{
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, "
                 "%5, %6}], [%2];\n" ::"r"(smem_addr(dst)),
                 "l"((uint64_t)map), "r"(smem_addr(bar)), "r"(x), "r"(y), "r"(z), "r"(w)
                 : "memory");
}

/* ----------------------------------------------------------------- wgmma */

/* The bits of a 128-byte-swizzled operand tile's descriptor: start address
   `addr16` in 16-byte units (bits 0-13), `leading_bytes` between 64-column
   chunks (used by MN-major operands only), stride between 8-row groups 1024
   bytes. */
__device__ __forceinline__ uint64_t wgmma_desc_bits(uint32_t addr16, uint32_t leading_bytes)
{
    return addr16 | ((uint64_t)((leading_bytes & 0x3FFFF) >> 4) << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

/* Descriptor of the tile starting at `smem`. */
__device__ __forceinline__ uint64_t wgmma_desc(const void *smem, uint32_t leading_bytes)
{
    return wgmma_desc_bits((smem_addr(smem) & 0x3FFFF) >> 4, leading_bytes);
}

/* Element offsets of k-step kk (16 reduction columns) of a K-major
   [chunks][ROWS][64] tile, and of k-step kk (reduction
   rows 16 kk .. 16 kk + 15) of an MN-major one. */
template <int ROWS>
__device__ __forceinline__ int wgmma_k_major_offset(int kk)
{
    return (kk / 4) * ROWS * 64 + (kk % 4) * 16;
}
__device__ __forceinline__ int wgmma_mn_major_offset(int kk) { return kk * 16 * 64; }

/* The descriptor of k-step kk, computed on its own. */
template <int ROWS>
__device__ __forceinline__ uint64_t wgmma_desc_k_major(const __nv_bfloat16 *tile, int kk)
{
    return wgmma_desc(tile + wgmma_k_major_offset<ROWS>(kk), 0);
}
template <int ROWS>
__device__ __forceinline__ uint64_t wgmma_desc_mn_major(const __nv_bfloat16 *tile, int kk)
{
    return wgmma_desc(tile + wgmma_mn_major_offset(kk), ROWS * 128);
}

/* The same descriptors for a 1024-byte-aligned tile read by many wgmmas in a
   row: the tile's address once, then one add per k-step (shared addresses
   stay below 2^18 bytes, so the 14-bit field takes the sum without a mask).
   The backward issues its products this way (2-4% off its time on an H200,
   dev/notes/attention.md). The forward cannot: built like this, ptxas
   serializes its wgmmas (C7511, insufficient registers) and it ran 25-35%
   slower, so it computes each descriptor on its own. */
template <int ROWS>
struct WgmmaTile {
    uint32_t addr16;
    __device__ __forceinline__ explicit WgmmaTile(const __nv_bfloat16 *tile) : addr16(smem_addr(tile) >> 4) {}
    __device__ __forceinline__ uint64_t k_major(int kk) const
    {
        return wgmma_desc_bits(addr16 + wgmma_k_major_offset<ROWS>(kk) / 8, 0);
    }
    __device__ __forceinline__ uint64_t mn_major(int kk) const
    {
        return wgmma_desc_bits(addr16 + wgmma_mn_major_offset(kk) / 8, ROWS * 128);
    }
};

/* Registers written before this point are ready for the next wgmma. */
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }

/* Close the group of wgmmas issued since the last commit. */
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }

/* Wait until at most `pending` committed groups are still running. */
template <int pending>
__device__ __forceinline__ void wgmma_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(pending) : "memory");
}

/* Keep the compiler from moving accesses to an accumulator across wgmma waits. */
template <int NT>
__device__ __forceinline__ void wgmma_keep(float d[NT][4])
{
#pragma unroll
    for (int n = 0; n < NT; n++)
        asm volatile("" : "+f"(d[n][0]), "+f"(d[n][1]), "+f"(d[n][2]), "+f"(d[n][3])::"memory");
}

#define WGMMA_D4(n) "+f"(d[n][0]), "+f"(d[n][1]), "+f"(d[n][2]), "+f"(d[n][3])
#define WGMMA_D32 WGMMA_D4(0), WGMMA_D4(1), WGMMA_D4(2), WGMMA_D4(3), WGMMA_D4(4), WGMMA_D4(5), WGMMA_D4(6), WGMMA_D4(7)
#define WGMMA_D64                                                                                                      \
    WGMMA_D32, WGMMA_D4(8), WGMMA_D4(9), WGMMA_D4(10), WGMMA_D4(11), WGMMA_D4(12), WGMMA_D4(13), WGMMA_D4(14),         \
        WGMMA_D4(15)
#define WGMMA_R32                                                                                                      \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31}"
#define WGMMA_R64                                                                                                      \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "   \
    "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

/* d (64 x N fp32 per warpgroup) (+)= A (64 x 16, smem) * B (16 x N, smem);
   accumulate = 0 overwrites d. TA/TB = 1: that operand is MN-major. */
template <int N, int TA, int TB>
__device__ __forceinline__ void wgmma_ss(float d[N / 8][4], uint64_t a, uint64_t b, int accumulate)
{
    static_assert(N == 64 || N == 128, "wgmma_ss: N is 64 or 128");
    if constexpr (N == 64)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WGMMA_R32
                     ", %32, %33, p, 1, 1, %35, %36;\n}\n"
                     : WGMMA_D32
                     : "l"(a), "l"(b), "r"(accumulate), "n"(TA), "n"(TB));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WGMMA_R64
                     ", %64, %65, p, 1, 1, %67, %68;\n}\n"
                     : WGMMA_D64
                     : "l"(a), "l"(b), "r"(accumulate), "n"(TA), "n"(TB));
}

/* d (64 x N fp32) (+)= A (64 x 16 bf16 in registers: a mma.sync A fragment per
   warp) * B (16 x N, smem). */
template <int N, int TB>
__device__ __forceinline__ void wgmma_rs(float d[N / 8][4], const uint32_t a[4], uint64_t b, int accumulate)
{
    static_assert(N == 64 || N == 128, "wgmma_rs: N is 64 or 128");
    if constexpr (N == 64)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WGMMA_R32
                     ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
                     : WGMMA_D32
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(TB));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WGMMA_R64
                     ", {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
                     : WGMMA_D64
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(TB));
}

#undef WGMMA_D4
#undef WGMMA_D32
#undef WGMMA_D64
#undef WGMMA_R32
#undef WGMMA_R64

/* --------------------------------------------------------- shared stores */

/* Store four 8 x 8 bf16 matrices from their mma.sync fragments (r[i]: matrix
   i, row lane / 4, columns 2 (lane % 4) + {0, 1}); lanes 8 i .. 8 i + 7 give
   the 16-byte row addresses of matrix i. */
__device__ __forceinline__ void stmatrix_x4(void *smem, const uint32_t r[4])
{
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_addr(smem)), "r"(r[0]),
                 "r"(r[1]), "r"(r[2]), "r"(r[3])
                 : "memory");
}

/* ---------------------------------------------------------- shared loads */

/* The register A operand of wgmma_rs (the mma.sync A fragment of mma.cuh)
   for k-step kk (columns 16 kk .. 16 kk + 15) of warp `warp`'s 16 rows
   (16 warp .. 16 warp + 15) of a K-major [chunks][ROWS][64] swizzled tile
   (the layout above), read with one ldmatrix x4: lane l names row l % 16 of
   the warp's rows and the 8-column half l / 16, so matrices 0..3 are
   (rows 0-7 | 8-15) x (columns 0-7 | 8-15) in the order a0..a3. Lets an
   operand that stays in shared memory for many products (a resident tile)
   be read once into registers instead of by every wgmma. */
template <int ROWS>
__device__ __forceinline__ void ldmatrix_a_frag(uint32_t a[4], const __nv_bfloat16 *tile, int warp, int kk, int lane)
{
    const int row = 16 * warp + lane % 16;
    const int piece = 2 * (kk % 4) + lane / 16; /* 16-byte piece of the 128-byte row, before the swizzle */
    const uint32_t addr = smem_addr(tile + ((kk / 4) * ROWS + row) * 64 + (piece ^ (row % 8)) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
                 : "r"(addr));
}

/* ------------------------------------------------- registers and barriers */

/* Raise / lower this warpgroup's register budget (all 128 threads execute it). */
template <int R>
__device__ __forceinline__ void setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R)); }
template <int R>
__device__ __forceinline__ void setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R)); }

/* Named barrier `id` (1..15; 0 is __syncthreads) over `threads` threads: wait / arrive without waiting. */
__device__ __forceinline__ void named_barrier_sync(int id, int threads)
{
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads)
{
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

/* A position in a ring of STAGES buffers: after `count` tiles went through,
   the next one uses buffer stage(), whose barriers are on the phase of
   parity phase(). */
template <int STAGES>
struct RingSlot {
    int count = 0;
    __device__ int stage() const { return count % STAGES; }
    __device__ uint32_t phase() const { return (count / STAGES) & 1; }
};

#endif /* PACKLM_HOPPER_CUH */
