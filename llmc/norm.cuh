/*
 * norm.cuh — the row normalization kernels shared by LayerNorm and RMSNorm
 * (layernorm.cuh and rmsnorm.cuh are the public entry points).
 *
 * For each row x of a (N, C) bf16 activation, statistics in fp32:
 *   LayerNorm (CENTER):  mean = avg(x), rstd = 1/sqrt(avg((x-mean)^2) + eps)
 *   RMSNorm:             mean = 0,      rstd = 1/sqrt(avg(x^2) + eps)
 *   xhat = (x - mean) * rstd,   out = xhat * weight (+ bias)
 * Optionally the row is first formed as residual = a + b (rounded to bf16, and
 * that rounded value is what gets normalized, as the backward will see it).
 * Backward, with g = dout * weight:
 *   dinp += rstd * (g - avg(g) [LayerNorm only] - xhat * avg(g * xhat))
 *   dweight += sum_rows dout * xhat,  dbias += sum_rows dout [LayerNorm only]
 * One warp per row; lane l owns the 16-byte vectors l, l + 32, ... of the row
 * (C a multiple of 8, at most 8192). The forward holds them in registers
 * (VPL of them, VPL = C / 256 rounded up to a power of two); the backward's
 * dinp kernel reads the row twice instead. mean (LayerNorm), rstd: (N) fp32.
 * The parameter gradients are column sums over the rows, done by
 * column_reduce.cuh in a fixed order (deterministic).
 */
#ifndef PACKLM_NORM_CUH
#define PACKLM_NORM_CUH

#include <type_traits>

#include "column_reduce.cuh"
#include "cuda_common.h"

#define NORM_WARPS_PER_BLOCK 8
#define NORM_MAX_C 8192

/* Vector v of this lane's row slice: input a, or a + b rounded to bf16 when FUSED. */
template <bool FUSED>
__device__ __forceinline__ BF16x8 norm_load(const floatX *a, const floatX *b, size_t offset)
{
    BF16x8 x = load128(a + offset);
    if (FUSED) {
        const BF16x8 y = load128(b + offset);
        for (int i = 0; i < 8; i++) x[i] = (floatX)((float)x[i] + (float)y[i]);
    }
    return x;
}

template <bool CENTER, bool FUSED, int VPL>
__global__ void norm_forward_kernel(floatX *out, float *mean_out, float *rstd_out, floatX *residual, const floatX *a,
                                    const floatX *b, const floatX *weight, const floatX *bias, int N, int C, float eps)
{
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * NORM_WARPS_PER_BLOCK + threadIdx.x / 32;
    if (row >= N) return;
    const size_t base = (size_t)row * C;
    BF16x8 x[VPL];
    float sum = 0.0f;
#pragma unroll
    for (int v = 0; v < VPL; v++) {
        const int c = (v * 32 + lane) * 8;
        if (c >= C) continue;
        x[v] = norm_load<FUSED>(a, b, base + c);
        if (FUSED) store128(residual + base + c, x[v]);
        for (int i = 0; i < 8; i++) sum += (float)x[v][i];
    }
    const float mean = CENTER ? warp_sum(sum) / C : 0.0f;
    float sq = 0.0f;
#pragma unroll
    for (int v = 0; v < VPL; v++) {
        if ((v * 32 + lane) * 8 >= C) continue;
        for (int i = 0; i < 8; i++) {
            const float d = (float)x[v][i] - mean;
            sq += d * d;
        }
    }
    const float rstd = rsqrtf(warp_sum(sq) / C + eps);
#pragma unroll
    for (int v = 0; v < VPL; v++) {
        const int c = (v * 32 + lane) * 8;
        if (c >= C) continue;
        const BF16x8 w = load128(weight + c);
        BF16x8 bb = {};
        if (bias) bb = load128(bias + c);
        BF16x8 y;
        for (int i = 0; i < 8; i++) y[i] = (floatX)(((float)x[v][i] - mean) * rstd * (float)w[i] + (float)bb[i]);
        store128(out + base + c, y);
    }
    if (lane == 0) {
        if (CENTER && mean_out) mean_out[row] = mean;
        if (rstd_out) rstd_out[row] = rstd;
    }
}

/* One warp per row: dinp += rstd * (g - mean(g) - xhat * mean(g * xhat)). The row is
   read twice (the second time from cache): measured faster here than holding it in registers. */
template <bool CENTER>
__global__ void norm_backward_dinp_kernel(floatX *dinp, const floatX *dout, const floatX *inp, const floatX *weight,
                                          const float *mean, const float *rstd, int N, int C)
{
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * NORM_WARPS_PER_BLOCK + threadIdx.x / 32;
    if (row >= N) return;
    const size_t base = (size_t)row * C;
    const float mu = CENTER ? mean[row] : 0.0f, r = rstd[row];
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int c = lane * 8; c < C; c += 32 * 8) {
        const BF16x8 dy = load128(dout + base + c), x = load128(inp + base + c), w = load128(weight + c);
        for (int i = 0; i < 8; i++) {
            const float g = (float)dy[i] * (float)w[i];
            sum_g += g;
            sum_gx += g * ((float)x[i] - mu) * r;
        }
    }
    const float mean_g = CENTER ? warp_sum(sum_g) / C : 0.0f;
    const float mean_gx = warp_sum(sum_gx) / C;
    for (int c = lane * 8; c < C; c += 32 * 8) {
        const BF16x8 dy = load128(dout + base + c), x = load128(inp + base + c), w = load128(weight + c);
        BF16x8 dx = load128(dinp + base + c);
        for (int i = 0; i < 8; i++) {
            const float g = (float)dy[i] * (float)w[i], xhat = ((float)x[i] - mu) * r;
            dx[i] = (floatX)((float)dx[i] + r * (g - mean_g - xhat * mean_gx));
        }
        store128(dinp + base + c, dx);
    }
}

/* Column terms of the backward: k = 0: dout * xhat (dweight), k = 1: dout (dbias, LayerNorm). */
template <bool CENTER>
struct NormParamGradTerm {
    const floatX *dout, *inp;
    const float *mean, *rstd;
    int C;
    static constexpr int K = CENTER ? 2 : 1;
    __device__ void operator()(int row, int col, float (&acc)[K][8]) const
    {
        const size_t offset = (size_t)row * C + col;
        const BF16x8 dy = load128(dout + offset), x = load128(inp + offset);
        const float mu = CENTER ? mean[row] : 0.0f, r = rstd[row];
        for (int i = 0; i < 8; i++) {
            acc[0][i] += (float)dy[i] * ((float)x[i] - mu) * r;
            if (CENTER) acc[K - 1][i] += (float)dy[i];
        }
    }
};

static inline void norm_check_width(const char *who, int C)
{
    if (C % 8 != 0 || C > NORM_MAX_C) {
        fprintf(stderr, "error: %s: C=%d must be a multiple of 8 and at most %d\n", who, C, NORM_MAX_C);
        exit(1);
    }
}

/* Call launch(std::integral_constant<int, VPL>) with VPL = C / 256 rounded up to a power of two. */
template <typename Launch>
static void norm_dispatch_vpl(int C, Launch launch)
{
    const int vectors = CEIL_DIV(C, 256);
    if (vectors <= 1) launch(std::integral_constant<int, 1>());
    else if (vectors <= 2) launch(std::integral_constant<int, 2>());
    else if (vectors <= 4) launch(std::integral_constant<int, 4>());
    else if (vectors <= 8) launch(std::integral_constant<int, 8>());
    else if (vectors <= 16) launch(std::integral_constant<int, 16>());
    else launch(std::integral_constant<int, 32>());
}

/* residual == NULL: normalize inp = a. Else residual = a + b, normalize that. */
template <bool CENTER>
static void norm_forward(floatX *out, float *mean, float *rstd, floatX *residual, const floatX *a, const floatX *b,
                         const floatX *weight, const floatX *bias, int N, int C, float eps, cudaStream_t s)
{
    norm_check_width(CENTER ? "layernorm_forward" : "rmsnorm_forward", C);
    if (N == 0) return;
    const int grid = CEIL_DIV(N, NORM_WARPS_PER_BLOCK), block = 32 * NORM_WARPS_PER_BLOCK;
    norm_dispatch_vpl(C, [&](auto vpl) {
        constexpr int VPL = decltype(vpl)::value;
        if (residual)
            norm_forward_kernel<CENTER, true, VPL><<<grid, block, 0, s>>>(out, mean, rstd, residual, a, b, weight, bias,
                                                                          N, C, eps);
        else
            norm_forward_kernel<CENTER, false, VPL><<<grid, block, 0, s>>>(out, mean, rstd, NULL, a, NULL, weight, bias,
                                                                           N, C, eps);
        cudaCheckLaunch();
    });
}

/* dbias may be NULL only for RMSNorm (CENTER false). dinp may alias dout. */
template <bool CENTER>
static void norm_backward(floatX *dinp, floatX *dweight, floatX *dbias, float *scratch, const floatX *dout,
                          const floatX *inp, const floatX *weight, const float *mean, const float *rstd, int N, int C,
                          cudaStream_t s)
{
    norm_check_width(CENTER ? "layernorm_backward" : "rmsnorm_backward", C);
    if (N == 0) return;
    typedef NormParamGradTerm<CENTER> Term;
    ColumnTargets<Term::K> targets;
    targets.dst[0] = dweight;
    if (CENTER) targets.dst[Term::K - 1] = dbias;
    const Term term = {dout, inp, mean, rstd, C};
    /* parameter gradients first: dinp may alias dout */
    column_reduce_add<Term::K>(targets, scratch, term, N, C, s);
    norm_backward_dinp_kernel<CENTER><<<CEIL_DIV(N, NORM_WARPS_PER_BLOCK), 32 * NORM_WARPS_PER_BLOCK, 0, s>>>(
        dinp, dout, inp, weight, mean, rstd, N, C);
    cudaCheckLaunch();
}

#endif /* PACKLM_NORM_CUH */
