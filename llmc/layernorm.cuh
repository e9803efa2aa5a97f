/*
 * layernorm.cuh — LayerNorm forward (optionally fused with the residual add)
 * and backward, bf16 activations with fp32 statistics (GPT-2 blocks).
 *
 *   inp, out, residual, a, b, dout, dinp   (N, C) bf16, C a multiple of 8
 *   weight, bias, dweight, dbias           (C) bf16
 *   mean, rstd                             (N) fp32, written by the forward
 *   scratch                                layernorm_backward_scratch_bytes(C) bytes
 * out = (x - mean) * rstd * weight + bias. The backward adds into dinp, dweight
 * and dbias (+=), deterministically. The kernels live in norm.cuh.
 */
#ifndef PACKLM_LAYERNORM_CUH
#define PACKLM_LAYERNORM_CUH

#include "norm.cuh"

static inline size_t layernorm_backward_scratch_bytes(int C) { return column_reduce_scratch_bytes(C, 2); }

static void layernorm_forward(floatX *out, float *mean, float *rstd, const floatX *inp, const floatX *weight,
                              const floatX *bias, int N, int C, float eps, cudaStream_t s)
{
    norm_forward<true>(out, mean, rstd, NULL, inp, NULL, weight, bias, N, C, eps, s);
}

/* residual = a + b; normed = LayerNorm(residual). residual must not alias a or b. */
static void fused_residual_layernorm_forward(floatX *residual, floatX *normed, float *mean, float *rstd,
                                             const floatX *a, const floatX *b, const floatX *weight,
                                             const floatX *bias, int N, int C, float eps, cudaStream_t s)
{
    norm_forward<true>(normed, mean, rstd, residual, a, b, weight, bias, N, C, eps, s);
}

static void layernorm_backward(floatX *dinp, floatX *dweight, floatX *dbias, float *scratch, const floatX *dout,
                               const floatX *inp, const floatX *weight, const float *mean, const float *rstd, int N,
                               int C, cudaStream_t s)
{
    norm_backward<true>(dinp, dweight, dbias, scratch, dout, inp, weight, mean, rstd, N, C, s);
}

#endif /* PACKLM_LAYERNORM_CUH */
