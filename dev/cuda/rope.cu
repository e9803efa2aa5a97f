/*
 * rope.cu — llmc/rope.cuh: checks against the CPU reference, then forward
 * and backward timings on the packed qkv of Llama-1B (NH 32, NKV 8, HD 64).
 */
#include "bench.h"

static void bench_rope(int N, int NH, int NKV, int HD)
{
    char shape[64];
    snprintf(shape, sizeof(shape), "N=%d NH=%d NKV=%d HD=%d", N, NH, NKV, HD);
    floatX *qkv = device_random((size_t)N * (NH + 2 * NKV) * HD, 1.0f, 1);
    std::vector<int> pos(N);
    for (int i = 0; i < N; i++) pos[i] = i % 2048;
    int *d_pos = upload(pos);
    const double bytes = 2.0 * 2 * N * (NH + NKV) * HD; /* q and k read and written */
    bench_row("rope_forward", shape, bytes, 0, [&] { rope_forward(qkv, d_pos, N, NH, NKV, HD, rope_params_plain(500000.0f), 0); });
    bench_row("rope_backward", shape, bytes, 0, [&] { rope_backward(qkv, d_pos, N, NH, NKV, HD, rope_params_plain(500000.0f), 0); });
    device_free_all();
}

int main(int argc, char **argv)
{
    dev_start(argc, argv, "RoPE (rotate half) forward and backward, in place on packed qkv.");
    check_rope(100, 4, 2, 64, rope_params_plain(500000.0f), 1);
    check_rope(300, 8, 2, 128, rope_params_plain(10000.0f), 2);
    RopeParams llama3 = rope_params_plain(500000.0f); /* Llama 3.1's frequency scaling */
    llama3.scaling = RopeScaling{8.0f, 1.0f, 4.0f, 8192};
    check_rope(300, 8, 2, 128, llama3, 3);
    print_bench_header("rope (traffic: q and k heads read and written)");
    bench_rope(8 * 2048, 32, 8, 64);
    bench_rope(4 * 8192, 32, 8, 128);
    return dev_finish();
}
