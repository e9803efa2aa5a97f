/*
 * elementwise.cuh — one vectorized kernel for every "out[i] = op(x[i], y[i])"
 * over n bf16 elements (GELU forward/backward, the residual add).
 *
 *   out, x, y   (n) bf16, 16-byte aligned, n a multiple of 8; y may be NULL
 *               when op ignores it; out may alias x or y
 *   op          functor: __device__ float operator()(float x, float y) const,
 *               evaluated in fp32, result rounded to bf16
 */
#ifndef PACKLM_ELEMENTWISE_CUH
#define PACKLM_ELEMENTWISE_CUH

#include "cuda_common.h"

template <typename Op>
__global__ void map_kernel(floatX *out, const floatX *x, const floatX *y, size_t n, Op op)
{
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i >= n) return;
    const BF16x8 xv = load128cs(x + i);
    BF16x8 yv = {};
    if (y) yv = load128cs(y + i);
    BF16x8 r;
    for (int k = 0; k < 8; k++) r[k] = (floatX)op((float)xv[k], (float)yv[k]);
    store128(out + i, r);
}

template <typename Op>
static void map_elements(const char *who, floatX *out, const floatX *x, const floatX *y, size_t n, Op op,
                         cudaStream_t s)
{
    if (n % 8 != 0) {
        fprintf(stderr, "error: %s: element count %zu is not a multiple of 8\n", who, n);
        exit(1);
    }
    if (n == 0) return;
    const int block = 256;
    map_kernel<<<(unsigned)CEIL_DIV(n / 8, (size_t)block), block, 0, s>>>(out, x, y, n, op);
    cudaCheckLaunch();
}

#endif /* PACKLM_ELEMENTWISE_CUH */
