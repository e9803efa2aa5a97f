/*
 * attention_forward.cu — standalone check and benchmark of the varlen flash
 * attention forward in llmc/attention.cuh.
 *
 * Checks out (N, NH*HD) and lse (NH, N) against the fp32 CPU reference
 * (llmc/attention_ref.h) on fresh random inputs for every case of
 * dev/cuda/attention_check.h (outputs NaN-poisoned before each call), then
 * times the forward on the three packed benchmark shapes.
 *
 * usage: attention_forward [--seed N] [--no-bench]
 */
#include "attention_check.h"

int main(int argc, char **argv)
{
    int bench = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--seed N] [--no-bench]\n"
                   "Checks attention_forward against the CPU reference on fresh random inputs,\n"
                   "then benchmarks it on the packed shapes (T=1024/12 heads/HD 64, T=2048/16/128, T=8192/32/128).\n",
                   argv[0]);
            return 0;
        }
        attn_common_option_or_die(argc, argv, &i, &bench);
    }
    Rng rng = rng_create(attn_seed_from_args(argc, argv));
    attn_check_all(0, &rng);
    if (bench) attn_benchmark(0, -1, ATTN_BENCH_LENGTH_SEED, &rng, NULL);
    return test_summary();
}
