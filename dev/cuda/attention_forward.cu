/*
 * attention_forward.cu — standalone check and benchmark of the varlen flash
 * attention forward in llmc/attention.cuh.
 *
 * Checks out (N, NH*HD) and lse (NH, N) against the fp32 CPU reference
 * (llmc/attention_ref.h) on fresh random inputs for every case of
 * dev/cuda/attention_check.h (outputs NaN-poisoned before each call), then
 * times the forward on the packed benchmark shapes and on plain causal rows.
 * All of it on each kernel path: sm80 (mma.sync) and, where the card and
 * binary run it, sm90 (llmc/attention_sm90.cuh); or only the paths named.
 *
 * usage: attention_forward [--path sm80|sm90]... [--seed N] [--no-bench] [--small] [--bench-only I] [--group G]
 *   --path P       run on path P only (repeatable)
 *   --small        four small cases only, three GQA (also on 2-block grids), no benchmark (for compute-sanitizer)
 *   --bench-only I no checks, benchmark shape I (0..3; -1 all) only
 *   --group G      benchmark the shapes with G query heads per kv head (NKV = NH / G)
 */
#include "attention_check.h"

int main(int argc, char **argv)
{
    AttnOptions opt;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--path sm80|sm90]... [--seed N] [--no-bench] [--small] [--bench-only I] [--group G]\n"
                   "Checks attention_forward against the CPU reference on fresh random inputs, then\n"
                   "benchmarks it on the packed shapes (T=1024/12 heads/HD 64, T=2048/16/128, T=8192/32/128)\n"
                   "and plain causal rows, on every kernel path the card runs (sm80; sm90 on an sm_90a\n"
                   "build on a 9.0 card).\n"
                   "  --path P       only path P (sm80 or sm90; repeatable)\n"
                   "  --small        four small cases (also on 2-block grids), no benchmark (for compute-sanitizer)\n"
                   "  --bench-only I no checks; benchmark shape I (0..3; -1: all) only\n"
                   "  --group G      benchmark with G query heads per kv head (NKV = NH / G; default 1)\n",
                   argv[0]);
            return 0;
        } else {
            attn_common_option_or_die(argc, argv, &i, &opt);
        }
    }
    attn_options_finish(&opt);
    Rng rng = rng_create(attn_seed_from_args(argc, argv));
    if (!opt.skip_checks) attn_check_paths(opt.paths, 0, opt.small, &rng);
    if (opt.bench && !opt.small)
        attn_benchmark(0, opt.only_shape, opt.group, ATTN_BENCH_LENGTH_SEED, &rng, NULL, opt.paths);
    return test_summary();
}
