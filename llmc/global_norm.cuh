/*
 * global_norm.cuh — the squared L2 norm of a bf16 gradient buffer, for
 * gradient clipping:  out[0] += sum_i grads[i]^2  (fp32 accumulation).
 *
 *   grads (n) bf16, out (1) fp32 device scalar (accumulated: call once per
 *   buffer or shard, then take sqrt on the host)
 * Deterministic: a fixed grid of GLOBAL_NORM_BLOCKS blocks each sums a fixed
 * strided subset and writes one partial; a second single-block kernel adds the
 * partials in order. The partials live in a static device buffer, so calls
 * must be ordered on one stream (never two at once on different streams).
 */
#ifndef PACKLM_GLOBAL_NORM_CUH
#define PACKLM_GLOBAL_NORM_CUH

#include "cuda_common.h"

#define GLOBAL_NORM_BLOCKS 512
#define GLOBAL_NORM_THREADS 512

static __device__ float global_norm_partials[GLOBAL_NORM_BLOCKS];

__global__ void global_norm_partials_kernel(const floatX *grads, size_t n)
{
    const size_t stride = (size_t)GLOBAL_NORM_BLOCKS * GLOBAL_NORM_THREADS;
    const size_t first = (size_t)blockIdx.x * GLOBAL_NORM_THREADS + threadIdx.x;
    float sum = 0.0f;
    /* 8 elements per 16-byte access; the n % 8 tail is taken one by one */
    const size_t vectors = n / 8;
    for (size_t i = first; i < vectors; i += stride) {
        const BF16x8 g = load128cs(grads + i * 8);
        for (int k = 0; k < 8; k++) sum += (float)g[k] * (float)g[k];
    }
    for (size_t i = vectors * 8 + first; i < n; i += stride) sum += (float)grads[i] * (float)grads[i];
    sum = block_sum(sum);
    if (threadIdx.x == 0) global_norm_partials[blockIdx.x] = sum;
}

__global__ void global_norm_finish_kernel(float *out)
{
    float sum = 0.0f;
    for (int i = threadIdx.x; i < GLOBAL_NORM_BLOCKS; i += blockDim.x) sum += global_norm_partials[i];
    sum = block_sum(sum);
    if (threadIdx.x == 0) out[0] += sum;
}

static void global_norm_squared(float *out, const floatX *grads, size_t n, cudaStream_t s)
{
    if (((uintptr_t)grads & 15) != 0) {
        fprintf(stderr, "error: global_norm_squared: grads must be 16-byte aligned\n");
        exit(1);
    }
    global_norm_partials_kernel<<<GLOBAL_NORM_BLOCKS, GLOBAL_NORM_THREADS, 0, s>>>(grads, n);
    cudaCheckLaunch();
    global_norm_finish_kernel<<<1, GLOBAL_NORM_THREADS, 0, s>>>(out);
    cudaCheckLaunch();
}

#endif /* PACKLM_GLOBAL_NORM_CUH */
