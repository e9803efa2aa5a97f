/*
 * encoder.cu — llmc/encoder.cuh: checks against the CPU reference (and
 * bit-identical backward reruns), then timings at GPT-2 124M shapes with a
 * realistic skew (a few ids very frequent) in the token ids.
 */
#include "bench.h"

static void bench_encoder(int N, int C, int V, int maxT)
{
    char shape[48];
    snprintf(shape, sizeof(shape), "N=%d C=%d V=%d", N, C, V);
    Rng rng = rng_create(7);
    std::vector<int> inputs(N), pos(N);
    for (int i = 0; i < N; i++) {
        /* about 1 token in 5 from the 20 most frequent ids, like English text */
        inputs[i] = rng_below(&rng, 5) == 0 ? (int)rng_below(&rng, 20) : (int)rng_below(&rng, (uint64_t)V);
        pos[i] = i % 400; /* documents of 400 tokens */
    }
    int *d_inputs = upload(inputs), *d_pos = upload(pos);
    floatX *wte = device_random((size_t)V * C, 1.0f, 1), *wpe = device_random((size_t)maxT * C, 1.0f, 2);
    floatX *out = device_alloc<floatX>((size_t)N * C), *dout = device_random((size_t)N * C, 1.0f, 3);
    void *scratch = device_alloc<char>(encoder_backward_scratch_bytes(N));
    bench_row("encoder_forward", shape, 2.0 * 3 * N * C, 0,
              [&] { encoder_forward(out, d_inputs, d_pos, wte, wpe, N, C, 0); });
    bench_row("encoder_backward (wte+wpe)", shape, 2.0 * 2 * N * C, 0,
              [&] { encoder_backward(wte, wpe, scratch, dout, d_inputs, d_pos, N, C, 0); });
    bench_row("encoder_backward (wte only)", shape, 2.0 * N * C, 0,
              [&] { encoder_backward(wte, NULL, scratch, dout, d_inputs, d_pos, N, C, 0); });
    device_free_all();
}

int main(int argc, char **argv)
{
    dev_start(argc, argv, "Token + position embedding forward, deterministic backward.");
    check_encoder(1000, 256, 512, 64, 1, 1);
    check_encoder(4096, 768, 50304, 1024, 1, 2);
    check_encoder(300, 264, 1024, 1, 0, 3);
    print_bench_header("encoder (traffic: forward 3, backward 2 per table of N*C bf16)");
    bench_encoder(32 * 1024, 768, 50304, 1024);
    bench_encoder(8 * 2048, 2048, 50304, 2048);
    return dev_finish();
}
