/*
 * elementwise.cu — llmc/gelu.cuh, llmc/swiglu.cuh and llmc/residual.cuh:
 * checks against the CPU reference, then timings at GPT-2 / Llama shapes.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    dev_start(argc, argv, "GELU forward/backward, SwiGLU forward/backward, residual add.");
    check_gelu(10000, 1);
    check_swiglu(77, 344, 2);
    check_swiglu(256, 2048, 3);
    check_residual(4096 + 8, 4);
    print_bench_header("elementwise (traffic: every operand read or written once)");
    const size_t n_fc = (size_t)32 * 1024 * 3072, n_res = (size_t)32 * 1024 * 768;
    const int NL = 8 * 2048, F = 8192;
    floatX *x = device_random(n_fc, 2.0f, 1), *y = device_random(n_fc, 1.0f, 2), *out = device_alloc<floatX>(n_fc);
    bench_row("gelu_forward", "n=32768*3072", 2.0 * 2 * n_fc, 0, [&] { gelu_forward(out, x, n_fc, 0); });
    bench_row("gelu_backward", "n=32768*3072", 2.0 * 3 * n_fc, 0, [&] { gelu_backward(out, x, y, n_fc, 0); });
    bench_row("residual_forward", "n=32768*768", 2.0 * 3 * n_res, 0, [&] { residual_forward(out, x, y, n_res, 0); });
    device_free_all();
    floatX *inp = device_random((size_t)NL * 2 * F, 2.0f, 3), *dout = device_random((size_t)NL * F, 1.0f, 4);
    floatX *h = device_alloc<floatX>((size_t)NL * F), *dinp = device_alloc<floatX>((size_t)NL * 2 * F);
    bench_row("swiglu_forward", "N=16384 F=8192", 2.0 * 3 * NL * F, 0, [&] { swiglu_forward(h, inp, NL, F, 0); });
    bench_row("swiglu_backward", "N=16384 F=8192", 2.0 * 5 * NL * F, 0,
              [&] { swiglu_backward(dinp, dout, inp, NL, F, 0); });
    return dev_finish();
}
