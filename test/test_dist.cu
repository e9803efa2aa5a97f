/*
 * test_dist.cu — dist.cuh on one GPU: the srun-style bootstrap through a
 * rendezvous file (SLURM_* variables set here by hand), its bounded waits and
 * the messages naming the missing peer, and a one-rank NCCL communicator
 * carrying the bucketed gradient reductions of ZeRO 0/1/2, the parameter
 * gather and the scalar sums (with one rank, each must return its input
 * bit for bit). Without NCCL (NO_MULTI_GPU) it checks instead that the
 * single-process path runs without a communicator.
 */
#include <sys/wait.h>

#include "dist.cuh"
#include "rand.h"
#include "test.h"

#ifndef NO_MULTI_GPU
static void set_slurm_env(int rank, int num_ranks, const char *job)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", rank);
    setenv("SLURM_PROCID", buf, 1);
    setenv("SLURM_LOCALID", "0", 1);
    snprintf(buf, sizeof(buf), "%d", num_ranks);
    setenv("SLURM_NTASKS", buf, 1);
    setenv("SLURM_JOB_ID", job, 1);
    setenv("SLURM_STEP_ID", "0", 1);
}

/* Run dist_init as `rank` of 2 in a child whose peer never comes; return its
 * exit status and put its stderr in `err`. */
static int lonely_rank(int rank, const char *dir, char *err, size_t err_len)
{
    char log[4200];
    snprintf(log, sizeof(log), "%s/rank%d.stderr", dir, rank);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr)) _exit(99);
        set_slurm_env(rank, 2, "lonely");
        Dist d;
        dist_init(&d, dir, 1.0);
        _exit(0); /* reaching this is the failure */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(err, 1, err_len - 1, f) : 0;
    err[n] = '\0';
    if (f) fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_missing_peers(const char *dir)
{
    char err[4096];
    double t0 = dist_now();
    int rc = lonely_rank(1, dir, err, sizeof(err));
    double waited = dist_now() - t0;
    check(rc == 1 && strstr(err, "rank 1 of 2") && strstr(err, "rank 0 did not write"), "rendezvous_rank0_missing",
          "exit %d, stderr: %s", rc, err);
    check(waited < 30.0, "rendezvous_wait_bounded", "waited %.1f s with a 1 s timeout", waited);
    rc = lonely_rank(0, dir, err, sizeof(err));
    check(rc == 1 && strstr(err, "(the first: rank 1)") && strstr(err, "never reached the rendezvous"),
          "rendezvous_peer_missing_named", "exit %d, stderr: %s", rc, err);
}

/* Each ZeRO stage's reductions over every bucket leave one rank's gradients unchanged. */
static void test_one_rank_collectives(Dist *d, const char *dir)
{
    char path[4096];
    dist_rendezvous_path(path, sizeof(path), dir, -1);
    check(d->launcher == LAUNCH_SLURM && dist_has_comm(d) && access(path, F_OK) != 0, "one_rank_bootstrap",
          "launcher %d, comm %d, rendezvous file left behind: %d", d->launcher, dist_has_comm(d), access(path, F_OK) == 0);

    ModelConfig cfg;
    ParamLayout p;
    model_config_parse(&cfg, "gpt2:d12,L=2,C=64,NH=4,V=300,T=32");
    param_layout_init(&p, &cfg);
    size_t n = p.total;
    floatX *host = (floatX *)malloc_or_die(n * sizeof(floatX)), *back = (floatX *)malloc_or_die(n * sizeof(floatX));
    floatX *grads;
    cudaStream_t s;
    cudaCheck(cudaMalloc(&grads, n * sizeof(floatX)));
    cudaCheck(cudaStreamCreate(&s));
    Rng rng = rng_create(7);
    for (int stage = 0; stage <= 2; stage++) {
        for (size_t i = 0; i < n; i++) host[i] = __float2bfloat16((float)rng_normal(&rng));
        cudaCheck(cudaMemcpy(grads, host, n * sizeof(floatX), cudaMemcpyHostToDevice));
        dist_zero_init(d, stage, &p, &cfg);
        dist_backward_begin(d, 1);
        for (int b = cfg.num_layers - 1; b >= 0; b--) dist_bucket_done(d, b, grads, s);
        dist_bucket_done(d, cfg.num_layers, grads, s);
        dist_gather_params(d, grads, s);
        dist_sync(d, s);
        cudaCheck(cudaMemcpy(back, grads, n * sizeof(floatX), cudaMemcpyDeviceToHost));
        size_t off, size;
        dist_opt_range(d, &off, &size);
        char name[64];
        snprintf(name, sizeof(name), "one_rank_zero%d_identity", stage);
        check(memcmp(host, back, n * sizeof(floatX)) == 0 && off == 0 && size == n, name,
              "gradients changed or optimizer range [%zu,+%zu) is not the whole %zu", off, size, n);
        dist_zero_free(d);
    }
    double v[3] = {1.5, -2.25, 1e300};
    dist_sum_scalars(d, v, 3);
    check(v[0] == 1.5 && v[1] == -2.25 && v[2] == 1e300, "one_rank_scalar_sum", "got %g %g %g", v[0], v[1], v[2]);
    uint64_t big = 0xfedcba9876543210ull;
    check(dist_broadcast_u64(d, big) == big && dist_all_equal(d, 12345.0), "one_rank_broadcast_and_agree",
          "a 64-bit value did not survive, or one rank disagrees with itself");
    cudaCheck(cudaFree(grads));
    cudaCheck(cudaStreamDestroy(s));
    free(host);
    free(back);
}
#endif

int main(void)
{
    char dir[] = "/tmp/packlm_test_dist_XXXXXX";
    if (!mkdtemp(dir)) die("cannot create a temporary directory: %s", strerror(errno));
#ifndef NO_MULTI_GPU
    test_missing_peers(dir); /* forks: before this process touches CUDA */
    char job[64];
    snprintf(job, sizeof(job), "test%d", (int)getpid());
    set_slurm_env(0, 1, job);
    Dist d;
    dist_init(&d, dir, 60.0);
    test_one_rank_collectives(&d, dir);
    dist_free(&d);
#else
    Dist d;
    dist_init(&d, dir, 60.0);
    check(d.launcher == LAUNCH_SINGLE && d.num_ranks == 1 && !dist_has_comm(&d), "single_process_without_nccl",
          "launcher %d, %d ranks", d.launcher, d.num_ranks);
    dist_free(&d);
#endif
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_summary();
}
