/*
 * attention_forward.cu — standalone check and benchmark of the varlen flash
 * attention forward in llmc/attention.cuh.
 *
 * Checks out (N, NH*HD) and lse (NH, N) against the fp32 CPU reference
 * (llmc/attention_ref.h) on fresh random inputs for every case of
 * dev/cuda/attention_check.h (outputs NaN-poisoned before each call), then
 * times the forward on the three packed benchmark shapes.
 *
 * usage: attention_forward [--path auto|sm80|sm90] [--seed N] [--no-bench]
 * --path picks the kernels (attention_select_path): sm80 = mma.sync, sm90 =
 * the Hopper forward of llmc/attention_sm90.cuh; auto = sm90 where it can run.
 */
#include "attention_check.h"

int main(int argc, char **argv)
{
    int bench = 1;
    AttentionPath path = ATTENTION_PATH_AUTO;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--path auto|sm80|sm90] [--seed N] [--no-bench]\n"
                   "Checks attention_forward against the CPU reference on fresh random inputs,\n"
                   "then benchmarks it on the packed shapes (T=1024/12 heads/HD 64, T=2048/16/128, T=8192/32/128).\n",
                   argv[0]);
            return 0;
        }
        if (strcmp(argv[i], "--path") == 0 && i + 1 < argc) {
            const char *name = argv[++i];
            if (strcmp(name, "auto") == 0) path = ATTENTION_PATH_AUTO;
            else if (strcmp(name, "sm80") == 0) path = ATTENTION_PATH_SM80;
            else if (strcmp(name, "sm90") == 0) path = ATTENTION_PATH_SM90;
            else die("%s: --path takes auto, sm80 or sm90, not '%s'", argv[0], name);
            continue;
        }
        attn_common_option_or_die(argc, argv, &i, &bench);
    }
    attention_select_path(path);
    printf("attention path: %s\n", attention_path_name(attention_active_path()));
    Rng rng = rng_create(attn_seed_from_args(argc, argv));
    attn_check_all(0, &rng);
    if (bench) attn_benchmark(0, -1, ATTN_BENCH_LENGTH_SEED, &rng, NULL);
    return test_summary();
}
