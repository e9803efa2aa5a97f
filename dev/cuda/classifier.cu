/*
 * classifier.cu — llmc/classifier.cuh: checks against the CPU reference,
 * then timings of the fused softmax + cross-entropy + dlogits on GPT-2
 * vocabulary rows.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    dev_start(argc, argv, "Fused softmax + cross-entropy + gradient, in place over bf16 logits.");
    check_classifier(50, 1000, 1024, 1);
    check_classifier(40, 50257, 50304, 2);
    print_bench_header("classifier (traffic: logits read twice, gradient written once)");
    const int N = 8192, V = 50257, Vp = 50304;
    floatX *logits = device_random((size_t)N * Vp, 4.0f, 1);
    std::vector<int> targets(N);
    for (int i = 0; i < N; i++) targets[i] = (i * 7919) % V;
    int *d_targets = upload(targets);
    float *losses = device_alloc<float>(N);
    bench_row("fused_classifier (loss only)", "N=8192 Vp=50304", 2.0 * N * Vp, 0,
              [&] { fused_classifier(logits, losses, 1.0f / N, d_targets, N, V, Vp, 0, 0); });
    bench_row("fused_classifier (+dlogits)", "N=8192 Vp=50304", 2.0 * 3 * N * Vp, 0,
              [&] { fused_classifier(logits, losses, 1.0f / N, d_targets, N, V, Vp, 1, 0); });
    return dev_finish();
}
