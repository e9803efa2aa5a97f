/*
 * rmsnorm.cuh — RMSNorm forward (optionally fused with the residual add) and
 * backward, bf16 activations with fp32 statistics (Llama blocks; no bias).
 *
 *   inp, out, residual, a, b, dout, dinp   (N, C) bf16, C a multiple of 8
 *   weight, dweight                        (C) bf16
 *   rstd                                   (N) fp32, written by the forward
 *   scratch                                rmsnorm_backward_scratch_bytes(C) bytes
 * out = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps). The backward adds
 * into dinp and dweight (+=), deterministically. The kernels live in norm.cuh.
 */
#ifndef PACKLM_RMSNORM_CUH
#define PACKLM_RMSNORM_CUH

#include "norm.cuh"

static inline size_t rmsnorm_backward_scratch_bytes(int C) { return column_reduce_scratch_bytes(C, 1); }

static void rmsnorm_forward(floatX *out, float *rstd, const floatX *inp, const floatX *weight, int N, int C,
                            float eps, cudaStream_t s)
{
    norm_forward<false>(out, NULL, rstd, NULL, inp, NULL, weight, NULL, N, C, eps, s);
}

/* residual = a + b; normed = RMSNorm(residual). residual must not alias a or b. */
static void fused_residual_rmsnorm_forward(floatX *residual, floatX *normed, float *rstd, const floatX *a,
                                           const floatX *b, const floatX *weight, int N, int C, float eps,
                                           cudaStream_t s)
{
    norm_forward<false>(normed, NULL, rstd, residual, a, b, weight, NULL, N, C, eps, s);
}

static void rmsnorm_backward(floatX *dinp, floatX *dweight, float *scratch, const floatX *dout, const floatX *inp,
                             const floatX *weight, const float *rstd, int N, int C, cudaStream_t s)
{
    norm_backward<false>(dinp, dweight, NULL, scratch, dout, inp, weight, NULL, rstd, N, C, s);
}

#endif /* PACKLM_RMSNORM_CUH */
