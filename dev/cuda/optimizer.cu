/*
 * optimizer.cu — llmc/adamw.cuh and llmc/global_norm.cuh: checks against the
 * CPU reference (and seeded, unbiased stochastic rounding), then timings over
 * the 124M parameters of GPT-2 small.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    dev_start(argc, argv, "AdamW with fp32 master weights and stochastic rounding; global gradient norm.");
    check_adamw(100003, 1);
    check_stochastic_rounding();
    check_global_norm(1000003, 2);
    check_global_norm(5, 3);
    print_bench_header("optimizer (adamw traffic: 28 bytes per parameter; norm: 2)");
    const size_t n = 124475904;
    floatX *params = device_alloc<floatX>(n), *grads = device_random(n, 0.01f, 1);
    float *master = device_alloc<float>(n), *m = device_alloc<float>(n), *v = device_alloc<float>(n);
    float *norm = device_alloc<float>(1);
    cudaCheck(cudaMemset(master, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(m, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(v, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(norm, 0, sizeof(float)));
    bench_row("adamw_update", "n=124M", 28.0 * n, 0,
              [&] { adamw_update(params, master, grads, m, v, n, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1, 7u, 0); });
    bench_row("global_norm_squared", "n=124M", 2.0 * n, 0, [&] { global_norm_squared(norm, grads, n, 0); });
    return dev_finish();
}
