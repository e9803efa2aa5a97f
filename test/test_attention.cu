/*
 * test_attention.cu — GPU test of llmc/attention.cuh (make test-gpu): the
 * varlen flash attention forward and backward against the fp32 CPU reference
 * on fresh random inputs (out, lse, dq, dk, dv; outputs poisoned first) for
 * the cases of dev/cuda/attention_check.h, backward determinism over 10
 * runs, and the clear refusal of an unsupported head dim (in a child process).
 * The whole suite runs on the sm80 path and, when the card and binary run
 * it, again on the sm90 path; each PASS/FAIL line names its path.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "../dev/cuda/attention_check.h"

/* attention_forward with HD = 96 must exit non-zero with a message, not crash.
   Runs before any CUDA call, so the forked child holds no CUDA state. */
static void check_unsupported_head_dim(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        attention_forward(NULL, NULL, NULL, NULL, 1, 1, 1, 1, 1, 96, NULL, 0);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 1, "head dim 96 refused with exit status 1",
          "child status %d", status);
}

int main(int argc, char **argv)
{
    check_unsupported_head_dim();
    Rng rng = rng_create(attn_seed_from_args(argc, argv));
    const std::vector<AttentionPath> paths = attn_available_paths();
    if (paths.size() == 1) printf("sm90 path not run: %s\n", attention_sm90_unavailable());
    for (AttentionPath path : paths) {
        attention_select_path(path);
        attn_check_all(1, &rng);
    }
    return test_summary();
}
