/*
 * adamw.cuh — the AdamW update over n parameters, with fp32 master weights
 * and moments and bf16 working parameters written by stochastic rounding.
 *
 *   params (n) bf16 out; master, m, v (n) fp32 in/out; grads (n) bf16 in
 *   g = grads * grad_scale            (grad_scale: gradient clipping factor)
 *   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
 *   master -= lr * ( m / (1 - beta1^step) / (sqrt(v / (1 - beta2^step)) + eps) + weight_decay * master )
 *   params = master rounded to bf16 stochastically: up with probability equal to
 *            the fraction of the gap below, so the rounding is unbiased on average.
 * The random bits come from a hash of (seed, element index): the same seed
 * gives the same bf16 parameters on every run. step is 1-based.
 * Why stochastic, even with fp32 masters: rounding to nearest leaves the same
 * error in a weight step after step (until its master crosses a bf16 boundary),
 * while the stochastic error changes every step and averages to the master.
 * Measured against the fp32 PyTorch reference (gpt2:d12, 200 steps), the loss
 * curve drifts about twice as far with nearest rounding (dev/notes/reference.md).
 */
#ifndef PACKLM_ADAMW_CUH
#define PACKLM_ADAMW_CUH

#include "cuda_common.h"

/* bf16 keeps the top 16 bits of an fp32; adding 16 random bits below before
   truncating rounds up with probability (dropped bits) / 2^16. */
__device__ __forceinline__ floatX stochastic_round_bf16(float x, unsigned int random)
{
    if (!isfinite(x)) return (floatX)x;
    const unsigned int bits = (__float_as_uint(x) + (random & 0xFFFFu)) & 0xFFFF0000u;
    return __ushort_as_bfloat16((unsigned short)(bits >> 16));
}

__global__ void adamw_kernel(floatX *params, float *master, const floatX *grads, float *m, float *v, size_t n, float lr,
                             float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                             float m_correction, float v_correction, unsigned int seed)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = (float)grads[i] * grad_scale;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float w = master[i];
    const float updated = w - lr * ((mi / m_correction) / (sqrtf(vi / v_correction) + eps) + weight_decay * w);
    master[i] = updated;
    params[i] = stochastic_round_bf16(updated, mix_hash(seed, i));
}

static void adamw_update(floatX *params, float *master, const floatX *grads, float *m, float *v, size_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, float grad_scale, int step,
                         unsigned int seed, cudaStream_t s)
{
    if (step < 1) {
        fprintf(stderr, "error: adamw_update: step must be >= 1 (got %d)\n", step);
        exit(1);
    }
    if (n == 0) return;
    const float m_correction = (float)(1.0 - pow((double)beta1, step));
    const float v_correction = (float)(1.0 - pow((double)beta2, step));
    const int block = 256;
    adamw_kernel<<<(unsigned)CEIL_DIV(n, (size_t)block), block, 0, s>>>(params, master, grads, m, v, n, lr, beta1,
                                                                       beta2, eps, weight_decay, grad_scale,
                                                                       m_correction, v_correction, seed);
    cudaCheckLaunch();
}

#endif /* PACKLM_ADAMW_CUH */
