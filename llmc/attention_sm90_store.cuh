/*
 * attention_sm90_store.cuh — the epilogue store both Hopper attention kernels
 * (attention_sm90.cuh's forward, attention_sm90_bwd.cuh's backward) use at
 * HD 128: a warp's 16 x HD fp32 accumulator rows leave through shared memory
 * as 16-byte stores instead of 8 x 4-byte pieces per row (store_rows of
 * attention_common.cuh, which the sm80 path and HD 64 use).
 *
 * Shapes: acc is the warp's 16-row slice of a wgmma m64 accumulator (the
 * register layout of attention_common.cuh), `stage` 16 x HD bf16 of shared
 * memory that only this warp uses, dst rows of pitch `stride` elements.
 */
#ifndef PACKLM_ATTENTION_SM90_STORE_CUH
#define PACKLM_ATTENTION_SM90_STORE_CUH

#include "attention_common.cuh"
#include "hopper.cuh"
#include "mma.cuh"

/* store_rows through shared memory: a warp's 16 x HD accumulator times
   `scale` goes as bf16 into its own staging rows `stage` (16 x HD, 16-byte
   chunks XOR-swizzled by row % 8 so that stmatrix and the read-back are free
   of bank conflicts), then leaves as 16-byte stores, HD * 2 bytes of a row
   per HD / 8 lanes; rows >= row_end are skipped. Rows are numbered as in
   store_rows (token << group_log2 | head in group). Used by the forward at
   HD 128 (O, scale 1) and by the backward at HD 128 (dQ, dK, dV;
   attention_sm90_bwd.cuh). */
template <int HD>
__device__ __forceinline__ void store_rows_staged(floatX *dst, size_t stride, const float acc[HD / 8][4],
                                                  float scale, floatX *stage, int row0, int row_end,
                                                  int group_log2 = 0)
{
    constexpr int CHUNKS = HD / 8; /* 16-byte chunks per row */
    const int lane = threadIdx.x % 32;
    /* stmatrix x4 of column block kb (16 columns): matrices (rows 0-7 | 8-15) x
       (chunk 2 kb | 2 kb + 1), the order of an A fragment (acc_to_a_frags);
       lane l gives the address of row l % 8 of matrix l / 8 */
    const int r = lane % 8 + 8 * ((lane / 8) % 2);
    __syncwarp(); /* the previous item's read-back of these rows is done */
#pragma unroll
    for (int kb = 0; kb < HD / 16; kb++) {
        const uint32_t frag[4] = {pack_bf16x2(acc[2 * kb][0] * scale, acc[2 * kb][1] * scale),
                                  pack_bf16x2(acc[2 * kb][2] * scale, acc[2 * kb][3] * scale),
                                  pack_bf16x2(acc[2 * kb + 1][0] * scale, acc[2 * kb + 1][1] * scale),
                                  pack_bf16x2(acc[2 * kb + 1][2] * scale, acc[2 * kb + 1][3] * scale)};
        stmatrix_x4(stage + r * HD + ((2 * kb + lane / 16) ^ (r % 8)) * 8, frag);
    }
    __syncwarp();
    /* Leaving the loop at the first row past the end (rather than predicating
       every store) matters: with predicated stores ptxas serializes the
       mainloop's wgmmas (C7511). */
#pragma unroll
    for (int i = 0; i < 16 * CHUNKS / 32; i++) {
        const int idx = i * 32 + lane, row = idx / CHUNKS, c = idx % CHUNKS;
        const int out_row = row0 + row;
        if (out_row >= row_end) break; /* so are the rows of the later i */
        const int token = out_row >> group_log2, head = out_row & ((1 << group_log2) - 1);
        const uint4 v = *reinterpret_cast<const uint4 *>(stage + row * HD + (c ^ (row % 8)) * 8);
        *reinterpret_cast<uint4 *>(dst + (size_t)token * stride + head * HD + c * 8) = v;
    }
}

#endif /* PACKLM_ATTENTION_SM90_STORE_CUH */
