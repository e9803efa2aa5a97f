/*
 * attention_backward.cu — standalone check and benchmark of the varlen flash
 * attention backward in llmc/attention.cuh.
 *
 * Checks out, lse, dq, dk, dv (dqkv is (N, (NH + 2*NKV) * HD)) against the
 * fp32 CPU reference (llmc/attention_ref.h) on fresh random inputs for every
 * case of dev/cuda/attention_check.h, outputs NaN-poisoned before each call;
 * checks that 10 backward runs are bit-identical; then times forward,
 * backward and forward+backward on the three packed benchmark shapes.
 *
 * usage: attention_backward [--seed N] [--no-bench] [--small] [--bench-only I] [--length-seed N] [--report FILE]
 *   --small        one small GQA case only (for compute-sanitizer)
 *   --bench-only I no checks, benchmark shape I (0, 1, 2; -1 all) only (for ncu)
 *   --length-seed N  seed of the benchmark's packed document lengths
 *   --report FILE  write the packed lengths and our timings for
 *                  dev/cuda/bench_attention_peer.py
 */
#include "attention_check.h"

int main(int argc, char **argv)
{
    int bench = 1, small = 0, only_shape = -1, skip_checks = 0;
    const char *report_path = NULL;
    uint64_t length_seed = ATTN_BENCH_LENGTH_SEED;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--seed N] [--no-bench] [--small] [--bench-only I] [--length-seed N] [--report FILE]\n"
                   "Checks attention forward+backward against the CPU reference on fresh random inputs\n"
                   "and their determinism, then benchmarks fwd, bwd, fwd+bwd on the packed shapes.\n"
                   "  --small        one small case only, no benchmark (for compute-sanitizer)\n"
                   "  --bench-only I no checks; benchmark shape I (0, 1 or 2; -1: all) only (for ncu)\n"
                   "  --length-seed N  seed of the benchmark's packed document lengths\n"
                   "  --report FILE  write packed lengths + our timings for bench_attention_peer.py\n",
                   argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--small") == 0) {
            small = 1;
        } else if (strcmp(argv[i], "--bench-only") == 0 && i + 1 < argc) {
            only_shape = (int)parse_long_or_die(argv[++i], "--bench-only");
            if (only_shape < -1 || only_shape > 2) die("%s: --bench-only takes 0, 1, 2 or -1 (all)", argv[0]);
            skip_checks = 1;
        } else if (strcmp(argv[i], "--length-seed") == 0 && i + 1 < argc) {
            length_seed = (uint64_t)parse_long_or_die(argv[++i], "--length-seed");
        } else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc) {
            report_path = argv[++i];
        } else {
            attn_common_option_or_die(argc, argv, &i, &bench);
        }
    }
    Rng rng = rng_create(attn_seed_from_args(argc, argv));
    if (small) {
        AttnProblem p = attn_problem_create({70, 1, 3, 64, 20}, 4, 2, 64, &rng);
        attn_check_problem("small gqa 2:1 hd64", p, 1);
        attn_problem_free(p);
        AttnProblem q = attn_problem_create({5, 66, 33}, 2, 1, 128, &rng);
        attn_check_problem("small gqa 2:1 hd128", q, 1);
        attn_problem_free(q);
        return test_summary();
    }
    if (!skip_checks) attn_check_all(1, &rng);
    if (bench) {
        FILE *report = report_path ? fopen_or_die(report_path, "w") : NULL;
        attn_benchmark(1, only_shape, length_seed, &rng, report);
        if (report) fclose_or_die(report, report_path);
    }
    return test_summary();
}
