/*
 * mma.cuh — warp-level tensor-core building blocks (sm_80 and newer):
 * asynchronous global->shared copies, ldmatrix fragment loads and the
 * bf16 mma.sync.m16n8k16 instruction, plus small warp GEMMs built on them.
 *
 * Fragment layouts of mma.m16n8k16 (g = lane / 4, t = lane % 4):
 *   A (16 x 16, bf16, 4 regs of 2):  a0 = (g, 2t..2t+1)    a1 = (g+8, 2t..2t+1)
 *                                    a2 = (g, 2t+8..2t+9)  a3 = (g+8, 2t+8..2t+9)
 *   B (16 x 8, bf16, 2 regs of 2):   b0 = (2t..2t+1, g)    b1 = (2t+8..2t+9, g)
 *   C (16 x 8, fp32, 4 floats):      c0,c1 = (g, 2t..2t+1) c2,c3 = (g+8, 2t..2t+1)
 * Two neighbouring C tiles (columns 16j..16j+15) hold exactly the A fragment
 * of a 16 x 16 block once rounded to bf16: that is how a warp feeds a result
 * (e.g. attention probabilities) straight into the next product without
 * going through shared memory.
 *
 * Shared-memory tiles used with these helpers are row-major with a row pitch
 * (`ld`, in elements) that is a multiple of 8 and not a multiple of 64, so the
 * eight 16-byte rows one ldmatrix reads fall in distinct banks.
 */
#ifndef PACKLM_MMA_CUH
#define PACKLM_MMA_CUH

#include <cuda_bf16.h>
#include <stdint.h>

/* ------------------------------------------------------------ async copies */

/* Copy 16 bytes global -> shared without going through registers; when
   `valid` is false the 16 shared bytes are zero-filled and nothing is read. */
__device__ __forceinline__ void cp_async_16(void *smem, const void *gmem, bool valid)
{
    const unsigned dst = (unsigned)__cvta_generic_to_shared(smem);
    const int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

/* Wait until at most `pending` committed groups of this thread are in flight. */
template <int pending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(pending)); }

/* ---------------------------------------------------------- fragment loads */

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const __nv_bfloat16 *smem)
{
    const unsigned addr = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const __nv_bfloat16 *smem)
{
    const unsigned addr = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* d (16x8 fp32) += a (16x16 bf16) * b (16x8 bf16) */
__device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Two floats -> one register of two bf16 (lo in the low half). */
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* ------------------------------------------------------------- warp GEMMs */

/* A fragments of a 16 x K bf16 block stored row-major in shared memory. */
template <int K>
__device__ __forceinline__ void load_a_frags(uint32_t a[K / 16][4], const __nv_bfloat16 *smem, int ld)
{
    const int lane = threadIdx.x % 32;
    const int row = lane % 8 + 8 * ((lane / 8) % 2), col = 8 * (lane / 16);
#pragma unroll
    for (int kb = 0; kb < K / 16; kb++) ldmatrix_x4(a[kb], smem + row * ld + kb * 16 + col);
}

/* A fragments (16 x 8*NT, bf16) from fp32 accumulators of NT tiles. */
template <int NT>
__device__ __forceinline__ void acc_to_a_frags(uint32_t a[NT / 2][4], const float c[NT][4])
{
#pragma unroll
    for (int kb = 0; kb < NT / 2; kb++) {
        a[kb][0] = pack_bf16x2(c[2 * kb][0], c[2 * kb][1]);
        a[kb][1] = pack_bf16x2(c[2 * kb][2], c[2 * kb][3]);
        a[kb][2] = pack_bf16x2(c[2 * kb + 1][0], c[2 * kb + 1][1]);
        a[kb][3] = pack_bf16x2(c[2 * kb + 1][2], c[2 * kb + 1][3]);
    }
}

/* The warp GEMMs below take MT m-tiles of 16 rows at once (acc[m], a[m] for
   m < MT; pass `&x` for a single tile): each B fragment read from shared
   memory then feeds MT tensor-core instructions, which is what keeps
   shared-memory bandwidth from limiting the warp. */

/* For each m-tile: the 16 x 16 output columns 16*np..16*np+15 of acc[m]
   (tiles 2np, 2np+1) += A[m]'s k block kb times a 16 x 16 B block held as two
   B fragments (b[0..1]: its columns 0-7, b[2..3]: columns 8-15). */
template <int K, int NT, int MT>
__device__ __forceinline__ void mma_n16(float (*acc)[NT][4], const uint32_t (*a)[K / 16][4], int kb, int np,
                                        const uint32_t b[4])
{
#pragma unroll
    for (int m = 0; m < MT; m++) {
        mma_bf16_16816(acc[m][2 * np], a[m][kb], b[0], b[1]);
        mma_bf16_16816(acc[m][2 * np + 1], a[m][kb], b[2], b[3]);
    }
}

/* acc[m] (16 x 8*NT) += A[m] (16 x K) * B^T, where B^T is stored row-major in
   shared memory as 8*NT rows of K elements (e.g. A = queries, rows = keys). */
template <int K, int NT, int MT = 1>
__device__ __forceinline__ void warp_mma_abt(float (*acc)[NT][4], const uint32_t (*a)[K / 16][4],
                                             const __nv_bfloat16 *bt, int ld)
{
    static_assert(NT % 2 == 0, "NT must be even");
    const int lane = threadIdx.x % 32;
    const int row = lane % 8 + 8 * (lane / 16), col = 8 * ((lane / 8) % 2);
#pragma unroll
    for (int kb = 0; kb < K / 16; kb++) {
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
            uint32_t b[4];
            ldmatrix_x4(b, bt + (np * 16 + row) * ld + kb * 16 + col);
            mma_n16<K, NT, MT>(acc, a, kb, np, b);
        }
    }
}

/* Same product with A read from shared memory one 16-wide k block at a time
   (MT tiles of 16 rows, tile m starting at row m * m_stride of `a_smem`), so
   A needs 4*MT registers instead of K/4*MT. */
template <int K, int NT, int MT>
__device__ __forceinline__ void warp_mma_abt_smem_a(float (*acc)[NT][4], const __nv_bfloat16 *a_smem, int lda,
                                                    int m_stride, const __nv_bfloat16 *bt, int ldb)
{
#pragma unroll
    for (int kb = 0; kb < K / 16; kb++) {
        uint32_t a[MT][1][4];
#pragma unroll
        for (int m = 0; m < MT; m++) load_a_frags<16>(a[m], a_smem + m * m_stride * lda + kb * 16, lda);
        warp_mma_abt<16, NT, MT>(acc, a, bt + kb * 16, ldb);
    }
}

/* acc[m] (16 x 8*NT) += A[m] (16 x K) * B, where B is stored row-major in
   shared memory as K rows of 8*NT elements (e.g. A = probabilities, B = values). */
template <int K, int NT, int MT = 1>
__device__ __forceinline__ void warp_mma_ab(float (*acc)[NT][4], const uint32_t (*a)[K / 16][4],
                                            const __nv_bfloat16 *b_smem, int ld)
{
    static_assert(NT % 2 == 0, "NT must be even");
    const int lane = threadIdx.x % 32;
    const int row = lane % 8 + 8 * ((lane / 8) % 2), col = 8 * (lane / 16);
#pragma unroll
    for (int kb = 0; kb < K / 16; kb++) {
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, b_smem + (kb * 16 + row) * ld + np * 16 + col);
            mma_n16<K, NT, MT>(acc, a, kb, np, b);
        }
    }
}

/* ------------------------------------------------------ accumulator tiles */

/* acc (16 x 8*NT fp32, NT C fragments) = 0. */
template <int NT>
__device__ __forceinline__ void zero_acc(float acc[NT][4])
{
#pragma unroll
    for (int n = 0; n < NT; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
}

/* Rows g and g + 8 of acc (16 x 8*NT fp32) times f[0] and f[1]. */
template <int NT>
__device__ __forceinline__ void scale_acc_rows(float acc[NT][4], const float f[2])
{
#pragma unroll
    for (int n = 0; n < NT; n++) {
        acc[n][0] *= f[0];
        acc[n][1] *= f[0];
        acc[n][2] *= f[1];
        acc[n][3] *= f[1];
    }
}

#endif /* PACKLM_MMA_CUH */
