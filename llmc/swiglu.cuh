/*
 * swiglu.cuh — the Llama FFN gate: inp (N, 2F) = gate (first F columns) | up
 * (last F columns) -> out (N, F) = silu(gate) * up, silu(g) = g * sigmoid(g).
 * Backward overwrites dinp (N, 2F):
 *   dgate = dout * up * sigmoid(g) * (1 + g (1 - sigmoid(g))),  dup = dout * silu(g)
 * bf16 in and out, fp32 math; F a multiple of 8.
 */
#ifndef PACKLM_SWIGLU_CUH
#define PACKLM_SWIGLU_CUH

#include "cuda_common.h"

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

/* One thread per 8 output columns of one token. */
__global__ void swiglu_forward_kernel(floatX *out, const floatX *inp, int N, int F)
{
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i >= (size_t)N * F) return;
    const size_t row = i / F, col = i % F;
    const floatX *gate = inp + row * 2 * F + col;
    const BF16x8 g = load128cs(gate), u = load128cs(gate + F);
    BF16x8 y;
    for (int k = 0; k < 8; k++) {
        const float x = (float)g[k];
        y[k] = (floatX)(x * sigmoidf_(x) * (float)u[k]);
    }
    store128(out + i, y);
}

__global__ void swiglu_backward_kernel(floatX *dinp, const floatX *dout, const floatX *inp, int N, int F)
{
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i >= (size_t)N * F) return;
    const size_t row = i / F, col = i % F;
    const size_t gate_at = row * 2 * F + col;
    const BF16x8 g = load128cs(inp + gate_at), u = load128cs(inp + gate_at + F), dy = load128cs(dout + i);
    BF16x8 dg, du;
    for (int k = 0; k < 8; k++) {
        const float x = (float)g[k], sig = sigmoidf_(x), d = (float)dy[k];
        dg[k] = (floatX)(d * (float)u[k] * sig * (1.0f + x * (1.0f - sig)));
        du[k] = (floatX)(d * x * sig);
    }
    store128(dinp + gate_at, dg);
    store128(dinp + gate_at + F, du);
}

static inline void swiglu_check_width(const char *who, int F)
{
    if (F % 8 != 0) {
        fprintf(stderr, "error: %s: F=%d is not a multiple of 8\n", who, F);
        exit(1);
    }
}

static void swiglu_forward(floatX *out, const floatX *inp, int N, int F, cudaStream_t s)
{
    swiglu_check_width("swiglu_forward", F);
    if (N == 0) return;
    const int block = 256;
    swiglu_forward_kernel<<<(unsigned)CEIL_DIV((size_t)N * F / 8, (size_t)block), block, 0, s>>>(out, inp, N, F);
    cudaCheckLaunch();
}

static void swiglu_backward(floatX *dinp, const floatX *dout, const floatX *inp, int N, int F, cudaStream_t s)
{
    swiglu_check_width("swiglu_backward", F);
    if (N == 0) return;
    const int block = 256;
    swiglu_backward_kernel<<<(unsigned)CEIL_DIV((size_t)N * F / 8, (size_t)block), block, 0, s>>>(dinp, dout, inp, N,
                                                                                                  F);
    cudaCheckLaunch();
}

#endif /* PACKLM_SWIGLU_CUH */
