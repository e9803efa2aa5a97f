/*
 * bench_norm.h — the benchmark of dev/cuda/layernorm.cu and dev/cuda/rmsnorm.cu:
 * one routine for both norms (`center` selects LayerNorm, as in check_norm of
 * test/kernel_checks.cuh). Times the plain forward, the fused residual +
 * forward and the backward on an (N, C) bf16 activation, with weight (and
 * LayerNorm bias) (C), mean (LayerNorm) and rstd (N) fp32.
 */
#ifndef PACKLM_DEV_BENCH_NORM_H
#define PACKLM_DEV_BENCH_NORM_H

#include "bench.h"

static void bench_norm(int center, int N, int C)
{
    const char *kernel = center ? "layernorm" : "rmsnorm";
    char shape[48], label[64];
    snprintf(shape, sizeof(shape), "N=%d C=%d", N, C);
    const size_t n = (size_t)N * C;
    const float eps = 1e-5f;
    floatX *a = device_random(n, 1.0f, 1), *b = device_random(n, 1.0f, 2), *w = device_random(C, 1.0f, 3);
    floatX *bias = center ? device_random(C, 1.0f, 4) : NULL, *res = device_alloc<floatX>(n);
    floatX *out = device_alloc<floatX>(n), *dout = device_random(n, 1.0f, 5), *dinp = device_random(n, 1.0f, 6);
    floatX *dw = device_random(C, 0.0f, 7), *db = center ? device_random(C, 0.0f, 8) : NULL;
    float *mean = center ? device_alloc<float>(N) : NULL, *rstd = device_alloc<float>(N);
    const size_t scratch_bytes = center ? layernorm_backward_scratch_bytes(C) : rmsnorm_backward_scratch_bytes(C);
    float *scratch = device_alloc<float>(scratch_bytes / sizeof(float));

    snprintf(label, sizeof(label), "%s_forward", kernel);
    bench_row(label, shape, 2.0 * 2 * n, 0, [&] {
        if (center) layernorm_forward(out, mean, rstd, a, w, bias, N, C, eps, 0);
        else rmsnorm_forward(out, rstd, a, w, N, C, eps, 0);
    });
    snprintf(label, sizeof(label), "fused_residual_%s_forward", kernel);
    bench_row(label, shape, 2.0 * 4 * n, 0, [&] {
        if (center) fused_residual_layernorm_forward(res, out, mean, rstd, a, b, w, bias, N, C, eps, 0);
        else fused_residual_rmsnorm_forward(res, out, rstd, a, b, w, N, C, eps, 0);
    });
    snprintf(label, sizeof(label), "%s_backward", kernel);
    bench_row(label, shape, 2.0 * 4 * n, 0, [&] {
        if (center) layernorm_backward(dinp, dw, db, scratch, dout, res, w, mean, rstd, N, C, 0);
        else rmsnorm_backward(dinp, dw, scratch, dout, res, w, rstd, N, C, 0);
    });
    device_free_all();
}

#endif /* PACKLM_DEV_BENCH_NORM_H */
