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
 * usage: attention_forward [--path sm80|sm90]... [--seed N] [--no-bench] [--small] [--bench-only I]
 *   --path P       run on path P only (repeatable)
 *   --small        two small GQA cases only, no benchmark (for compute-sanitizer)
 *   --bench-only I no checks, benchmark shape I (0..3; -1 all) only
 */
#include "attention_check.h"

int main(int argc, char **argv)
{
    int bench = 1, small = 0, only_shape = -1, skip_checks = 0;
    std::vector<AttentionPath> paths;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--path sm80|sm90]... [--seed N] [--no-bench] [--small] [--bench-only I]\n"
                   "Checks attention_forward against the CPU reference on fresh random inputs, then\n"
                   "benchmarks it on the packed shapes (T=1024/12 heads/HD 64, T=2048/16/128, T=8192/32/128)\n"
                   "and plain causal rows, on every kernel path the card runs (sm80; sm90 on an sm_90a\n"
                   "build on a 9.0 card).\n"
                   "  --path P       only path P (sm80 or sm90; repeatable)\n"
                   "  --small        two small cases only, no benchmark (for compute-sanitizer)\n"
                   "  --bench-only I no checks; benchmark shape I (0..3; -1: all) only\n",
                   argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--small") == 0) {
            small = 1;
        } else if (strcmp(argv[i], "--bench-only") == 0 && i + 1 < argc) {
            only_shape = (int)parse_long_or_die(argv[++i], "--bench-only");
            if (only_shape < -1 || only_shape >= ATTN_BENCH_SHAPES)
                die("%s: --bench-only takes 0..%d or -1 (all)", argv[0], ATTN_BENCH_SHAPES - 1);
            skip_checks = 1;
        } else if (!attn_path_option(argc, argv, &i, &paths)) {
            attn_common_option_or_die(argc, argv, &i, &bench);
        }
    }
    if (paths.empty()) paths = attn_available_paths();
    Rng rng = rng_create(attn_seed_from_args(argc, argv));
    if (!skip_checks) attn_check_paths(paths, 0, small, &rng);
    if (bench && !small) attn_benchmark(0, only_shape, ATTN_BENCH_LENGTH_SEED, &rng, NULL, paths);
    return test_summary();
}
