/*
 * layernorm.cu — llmc/layernorm.cuh: checks against the CPU reference, then
 * forward, fused residual+forward and backward timings at GPT-2 shapes.
 */
#include "bench_norm.h"

int main(int argc, char **argv)
{
    dev_start(argc, argv, "LayerNorm forward, fused residual + LayerNorm forward, backward.");
    check_norm(1, 300, 768, 1);
    check_norm(1, 1024, 1600, 2);
    check_norm(1, 17, 4104, 3);
    print_bench_header("layernorm (minimal traffic: fwd 2, fused 4, bwd 4 bf16 tensors of N*C)");
    bench_norm(1, 32 * 1024, 768);
    bench_norm(1, 8 * 1024, 1600);
    return dev_finish();
}
