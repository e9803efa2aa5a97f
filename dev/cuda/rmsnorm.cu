/*
 * rmsnorm.cu — llmc/rmsnorm.cuh: checks against the CPU reference, then
 * forward, fused residual+forward and backward timings at Llama shapes.
 */
#include "bench.h"

static void bench_rmsnorm(int N, int C)
{
    char shape[48];
    snprintf(shape, sizeof(shape), "N=%d C=%d", N, C);
    const size_t n = (size_t)N * C;
    floatX *a = device_random(n, 1.0f, 1), *b = device_random(n, 1.0f, 2), *w = device_random(C, 1.0f, 3);
    floatX *res = device_alloc<floatX>(n), *out = device_alloc<floatX>(n);
    floatX *dout = device_random(n, 1.0f, 5), *dinp = device_random(n, 1.0f, 6), *dw = device_random(C, 0.0f, 7);
    float *rstd = device_alloc<float>(N);
    float *scratch = device_alloc<float>(rmsnorm_backward_scratch_bytes(C) / sizeof(float));
    float ms = time_ms([&] { rmsnorm_forward(out, rstd, a, w, N, C, 1e-5f, 0); }, BENCH_REPS);
    print_bench_row("rmsnorm_forward", shape, ms, 2.0 * 2 * n, 0);
    ms = time_ms([&] { fused_residual_rmsnorm_forward(res, out, rstd, a, b, w, N, C, 1e-5f, 0); }, BENCH_REPS);
    print_bench_row("fused_residual_rmsnorm_forward", shape, ms, 2.0 * 4 * n, 0);
    ms = time_ms([&] { rmsnorm_backward(dinp, dw, scratch, dout, res, w, rstd, N, C, 0); }, BENCH_REPS);
    print_bench_row("rmsnorm_backward", shape, ms, 2.0 * 4 * n, 0);
    device_free_all();
}

int main(int argc, char **argv)
{
    dev_start(argc, argv, "RMSNorm forward, fused residual + RMSNorm forward, backward.");
    check_norm(0, 300, 768, 1);
    check_norm(0, 512, 2048, 2);
    check_norm(0, 17, 4104, 3);
    print_bench_header("rmsnorm (minimal traffic: fwd 2, fused 4, bwd 4 bf16 tensors of N*C)");
    bench_rmsnorm(8 * 2048, 2048);
    bench_rmsnorm(32 * 1024, 768);
    cuda_common_destroy();
    return test_summary();
}
