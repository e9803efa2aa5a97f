/*
 * layernorm.cu — llmc/layernorm.cuh: checks against the CPU reference, then
 * forward, fused residual+forward and backward timings at GPT-2 shapes.
 */
#include "bench.h"

static void bench_layernorm(int N, int C)
{
    char shape[48];
    snprintf(shape, sizeof(shape), "N=%d C=%d", N, C);
    const size_t n = (size_t)N * C;
    floatX *a = device_random(n, 1.0f, 1), *b = device_random(n, 1.0f, 2), *w = device_random(C, 1.0f, 3);
    floatX *bias = device_random(C, 1.0f, 4), *res = device_alloc<floatX>(n), *out = device_alloc<floatX>(n);
    floatX *dout = device_random(n, 1.0f, 5), *dinp = device_random(n, 1.0f, 6);
    floatX *dw = device_random(C, 0.0f, 7), *db = device_random(C, 0.0f, 8);
    float *mean = device_alloc<float>(N), *rstd = device_alloc<float>(N);
    float *scratch = device_alloc<float>(layernorm_backward_scratch_bytes(C) / sizeof(float));
    float ms = time_ms([&] { layernorm_forward(out, mean, rstd, a, w, bias, N, C, 1e-5f, 0); }, BENCH_REPS);
    print_bench_row("layernorm_forward", shape, ms, 2.0 * 2 * n, 0);
    ms = time_ms([&] { fused_residual_layernorm_forward(res, out, mean, rstd, a, b, w, bias, N, C, 1e-5f, 0); }, BENCH_REPS);
    print_bench_row("fused_residual_layernorm_forward", shape, ms, 2.0 * 4 * n, 0);
    ms = time_ms([&] { layernorm_backward(dinp, dw, db, scratch, dout, res, w, mean, rstd, N, C, 0); }, BENCH_REPS);
    print_bench_row("layernorm_backward", shape, ms, 2.0 * 4 * n, 0);
    device_free_all();
}

int main(int argc, char **argv)
{
    dev_start(argc, argv, "LayerNorm forward, fused residual + LayerNorm forward, backward.");
    check_norm(1, 300, 768, 1);
    check_norm(1, 1024, 1600, 2);
    check_norm(1, 17, 4104, 3);
    print_bench_header("layernorm (minimal traffic: fwd 2, fused 4, bwd 4 bf16 tensors of N*C)");
    bench_layernorm(32 * 1024, 768);
    bench_layernorm(8 * 1024, 1600);
    cuda_common_destroy();
    return test_summary();
}
