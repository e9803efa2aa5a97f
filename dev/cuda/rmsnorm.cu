/*
 * rmsnorm.cu — llmc/rmsnorm.cuh: checks against the CPU reference, then
 * forward, fused residual+forward and backward timings at Llama shapes.
 */
#include "bench_norm.h"

int main(int argc, char **argv)
{
    dev_start(argc, argv, "RMSNorm forward, fused residual + RMSNorm forward, backward.");
    check_norm(0, 300, 768, 1);
    check_norm(0, 512, 2048, 2);
    check_norm(0, 17, 4104, 3);
    print_bench_header("rmsnorm (minimal traffic: fwd 2, fused 4, bwd 4 bf16 tensors of N*C)");
    bench_norm(0, 8 * 2048, 2048);
    bench_norm(0, 32 * 1024, 768);
    return dev_finish();
}
