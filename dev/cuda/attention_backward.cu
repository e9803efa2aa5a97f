/*
 * attention_backward.cu — standalone check and benchmark of the varlen flash
 * attention backward in llmc/attention.cuh.
 *
 * Checks out, lse, dq, dk, dv (dqkv is (N, (NH + 2*NKV) * HD)) against the
 * fp32 CPU reference (llmc/attention_ref.h) on fresh random inputs for every
 * case of dev/cuda/attention_check.h, outputs NaN-poisoned before each call;
 * checks that 10 backward runs are bit-identical; then times forward,
 * backward and forward+backward on the packed benchmark shapes and on plain
 * causal rows. All of it on each kernel path (attention.cuh): sm80 and, where
 * the card and binary run it, sm90; or only the paths named with --path.
 *
 * usage: attention_backward [--path sm80|sm90]... [--seed N] [--no-bench] [--small] [--bench-only I] [--group G]
 *                           [--length-seed N] [--report FILE]
 *   --path P       run on path P only (repeatable)
 *   --small        four small cases only, three GQA (also on 2-block grids; for compute-sanitizer)
 *   --bench-only I no checks, benchmark shape I (0..3; -1 all) only (for ncu)
 *   --group G      benchmark the shapes with G query heads per kv head (NKV = NH / G)
 *   --length-seed N  seed of the benchmark's packed document lengths
 *   --report FILE  write the packed lengths and our timings for
 *                  dev/cuda/bench_attention_peer.py
 */
#include "attention_check.h"

int main(int argc, char **argv)
{
    AttnOptions opt;
    const char *report_path = NULL;
    uint64_t length_seed = ATTN_BENCH_LENGTH_SEED;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--path sm80|sm90]... [--seed N] [--no-bench] [--small] [--bench-only I] [--group G]\n"
                   "          [--length-seed N] [--report FILE]\n"
                   "Checks attention forward+backward against the CPU reference on fresh random inputs\n"
                   "and their determinism, then benchmarks fwd, bwd, fwd+bwd on the packed shapes,\n"
                   "on every kernel path the card runs (sm80; sm90 on an sm_90a build on a 9.0 card).\n"
                   "  --path P       only path P (sm80 or sm90; repeatable)\n"
                   "  --small        four small cases (also on 2-block grids), no benchmark (for compute-sanitizer)\n"
                   "  --bench-only I no checks; benchmark shape I (0..3; -1: all) only (for ncu)\n"
                   "  --group G      benchmark with G query heads per kv head (NKV = NH / G; default 1;\n"
                   "                 not with --report)\n"
                   "  --length-seed N  seed of the benchmark's packed document lengths\n"
                   "  --report FILE  write packed lengths + our timings for bench_attention_peer.py\n",
                   argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--length-seed") == 0 && i + 1 < argc) {
            length_seed = (uint64_t)parse_long_or_die(argv[++i], "--length-seed");
        } else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc) {
            report_path = argv[++i];
        } else {
            attn_common_option_or_die(argc, argv, &i, &opt);
        }
    }
    attn_options_finish(&opt);
    if (report_path && opt.group != 1) die("%s: --report covers multi-head shapes only (no --group)", argv[0]);
    Rng rng = rng_create(attn_seed_from_args(argc, argv));
    if (!opt.skip_checks) attn_check_paths(opt.paths, 1, opt.small, &rng);
    if (opt.bench && !opt.small) {
        FILE *report = report_path ? fopen_or_die(report_path, "w") : NULL;
        attn_benchmark(1, opt.only_shape, opt.group, length_seed, &rng, report, opt.paths);
        if (report) fclose_or_die(report, report_path);
    }
    return test_summary();
}
