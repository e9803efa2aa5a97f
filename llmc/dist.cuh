/*
 * dist.cuh — data parallelism across GPUs and nodes: one process per GPU, one
 * NCCL communicator, and the gradient and parameter traffic of ZeRO stages
 * 0, 1 and 2 (the arithmetic of shards and buckets is in zero.h).
 *
 * Bootstrap (dist_init), chosen from the environment:
 *   mpirun   OMPI_COMM_WORLD_SIZE is set (needs a USE_MPI build): rank and
 *            size from MPI, the local rank from MPI_Comm_split_type(SHARED),
 *            NCCL's unique id broadcast over MPI_COMM_WORLD.
 *   srun     SLURM_NTASKS is set and there is no MPI: rank SLURM_PROCID, size
 *            SLURM_NTASKS, local rank SLURM_LOCALID. Rank 0 writes the unique
 *            id to a temporary file in the rendezvous directory (a filesystem
 *            every node sees) and renames it into place; every other rank
 *            polls for it, then leaves an arrival file; rank 0 waits for all
 *            arrivals. Both waits end after `timeout_s` with a message naming
 *            the missing rank(s). Files are named after SLURM_JOB_ID and
 *            SLURM_STEP_ID so separate jobs never meet.
 *   neither  one process: no NCCL at all, every collective is a no-op.
 * We open no listening socket of our own (NCCL's bootstrap has its own).
 * The GPU is the local rank (modulo the visible devices, so one GPU per task
 * via CUDA_VISIBLE_DEVICES works too).
 *
 * Gradients (bf16, params.h flat layout, summed, never averaged: the loss is
 * already divided by the global token count). The backward reports each
 * bucket as soon as its gradients are final (dist_bucket_done, or
 * dist_grads_ready as model.cuh's grads_ready callback); the bucket's
 * reduction is queued on a second stream that waits on an event, so it runs
 * while the backward of the earlier layers continues:
 *   stage 0  all-reduce every segment of the bucket, on the last micro-step.
 *   stage 1  reduce every piece of the bucket onto the rank that owns it
 *            (a reduce-scatter over uneven, non-contiguous ranges), on the
 *            last micro-step; each rank updates only its shard of the fp32
 *            master weights and AdamW moments, then every rank broadcasts its
 *            updated bf16 shard (an all-gather of uneven shards).
 *   stage 2  as stage 1, but after every micro-step; non-owners then zero the
 *            piece, so between micro-steps a rank keeps only its own shard's
 *            gradient.
 * Scalars (loss, token count, grad norm, val loss) are all-gathered and
 * summed on the host in rank order, in double: the same bits on every rank
 * and in every run.
 *
 * Failures: NCCL runs in nonblocking mode; every wait (dist_sync, init, the
 * rendezvous) polls ncclCommGetAsyncError and gives up after `timeout_s`,
 * then aborts the communicator and exits with a message naming this rank
 * (MPI_Abort under mpirun, so every rank goes down).
 *
 * Builds with NO_MULTI_GPU (no NCCL: only the single-process path) and
 * without USE_MPI (mpirun runs are then refused; srun works).
 */
#ifndef PACKLM_DIST_CUH
#define PACKLM_DIST_CUH

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cuda_common.h"
#include "params.h"
#include "utils.h"
#include "zero.h"

#ifndef NO_MULTI_GPU
#include <nccl.h>
#endif
#ifdef USE_MPI
#define OMPI_SKIP_MPICXX 1 /* the C API only */
#include <mpi.h>
#endif

typedef enum { LAUNCH_SINGLE, LAUNCH_MPI, LAUNCH_SLURM } Launcher;
static const char *const LAUNCHER_NAMES[] = {"single process", "mpirun", "srun (file rendezvous)"};

typedef struct {
    Launcher launcher;
    int rank, num_ranks;        /* global */
    int local_rank, local_size; /* within this node */
    int device;
    double timeout_s; /* longest wait for a peer before giving up */
    char host[256];
    /* ZeRO (dist_zero_init) */
    int zero_stage;
    ZeroPartition part; /* shards of the flat parameter buffer */
    int num_buckets;
    GradBucket *buckets;
    int reduce_now; /* reduce the buckets of the current backward (set per micro-step) */
#ifndef NO_MULTI_GPU
    ncclComm_t comm; /* NULL for a single process */
#endif
    cudaStream_t comm_stream;
    cudaEvent_t *bucket_ready; /* recorded on the compute stream, one per bucket */
    cudaEvent_t comm_done;     /* recorded on comm_stream after the last bucket */
    double *scalars;           /* device: num_ranks * DIST_MAX_SCALARS */
} Dist;

#define DIST_MAX_SCALARS 8

static inline double dist_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline int dist_has_comm(const Dist *d)
{
#ifndef NO_MULTI_GPU
    return d->comm != NULL;
#else
    (void)d;
    return 0;
#endif
}

/* End the whole job: message naming this rank, abort NCCL, MPI_Abort under mpirun. */
static inline void dist_fail(Dist *d, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "error: rank %d of %d (host %s, GPU %d): ", d->rank, d->num_ranks, d->host, d->device);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
#ifndef NO_MULTI_GPU
    if (d->comm) ncclCommAbort(d->comm);
    d->comm = NULL;
#endif
#ifdef USE_MPI
    if (d->launcher == LAUNCH_MPI) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    exit(1);
}

#ifndef NO_MULTI_GPU
/* Wait until the nonblocking communicator has finished the call that returned
 * `r` (ncclInProgress) or fail: an error, or more than timeout_s. */
static inline void nccl_wait(Dist *d, ncclResult_t r, const char *what)
{
    double start = dist_now();
    while (r == ncclInProgress) {
        if (dist_now() - start > d->timeout_s)
            dist_fail(d, "%s: no progress after %.0f s (a peer rank died or hangs?)", what, d->timeout_s);
        usleep(100);
        ncclResult_t q = ncclCommGetAsyncError(d->comm, &r);
        if (q != ncclSuccess) r = q;
    }
    if (r != ncclSuccess) dist_fail(d, "%s: NCCL error: %s (%s)", what, ncclGetErrorString(r), ncclGetLastError(d->comm));
}
#define ncclCheck(d, call) nccl_wait((d), (call), #call)
#endif

/* Block until everything queued on `stream` is done. With NCCL, poll instead
 * of blocking so that a dead peer ends the job within timeout_s. */
static inline void dist_sync(Dist *d, cudaStream_t stream)
{
    if (!dist_has_comm(d)) {
        cudaCheck(cudaStreamSynchronize(stream));
        return;
    }
#ifndef NO_MULTI_GPU
    cudaEvent_t ev;
    cudaCheck(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    cudaCheck(cudaEventRecord(ev, stream));
    double start = dist_now();
    cudaError_t q;
    while ((q = cudaEventQuery(ev)) == cudaErrorNotReady) {
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(d->comm, &async);
        if (async != ncclSuccess && async != ncclInProgress)
            dist_fail(d, "NCCL failed while waiting for the GPU: %s (%s)", ncclGetErrorString(async), ncclGetLastError(d->comm));
        if (dist_now() - start > d->timeout_s)
            dist_fail(d, "GPU work did not finish within %.0f s (a collective waits for a rank that died or hangs?)", d->timeout_s);
        usleep(50);
    }
    if (q != cudaSuccess) dist_fail(d, "CUDA error while waiting for the GPU: %s", cudaGetErrorString(q));
    cudaCheck(cudaEventDestroy(ev));
#endif
}

/* ------------------------------------------------------------ bootstrap */

/* Integer environment variable, or `fallback` when unset. */
static inline int dist_env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && *v ? (int)parse_long_or_die(v, name) : fallback;
}

#ifndef NO_MULTI_GPU
/* Rendezvous file names for this Slurm job step: the id file, or rank r's arrival mark. */
static inline void dist_rendezvous_path(char *buf, size_t len, const char *dir, int rank)
{
    const char *job = getenv("SLURM_JOB_ID"), *step = getenv("SLURM_STEP_ID");
    if (rank < 0) snprintf(buf, len, "%s/packlm-%s.%s.ncclid", dir, job ? job : "nojob", step ? step : "0");
    else snprintf(buf, len, "%s/packlm-%s.%s.rank%d", dir, job ? job : "nojob", step ? step : "0", rank);
}

/* Rank 0 writes the id atomically; the others poll for it with a timeout. */
static inline void dist_file_rendezvous(Dist *d, ncclUniqueId *id, const char *dir)
{
    char id_path[4096], path[4096];
    dist_rendezvous_path(id_path, sizeof(id_path), dir, -1);
    if (d->rank == 0) {
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.tmp%d", id_path, (int)getpid());
        FILE *f = fopen(tmp, "wb");
        if (!f) dist_fail(d, "cannot write the rendezvous file '%s': %s (is --rendezvous a writable shared directory?)", tmp, strerror(errno));
        if (fwrite(id, sizeof(*id), 1, f) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0)
            dist_fail(d, "cannot write the rendezvous file '%s': %s", tmp, strerror(errno));
        if (rename(tmp, id_path) != 0) dist_fail(d, "cannot rename '%s' to '%s': %s", tmp, id_path, strerror(errno));
        /* wait for every other rank's arrival mark, naming the missing ones on timeout */
        double start = dist_now();
        for (int r = 1; r < d->num_ranks; r++) {
            dist_rendezvous_path(path, sizeof(path), dir, r);
            while (access(path, F_OK) != 0) {
                if (dist_now() - start > d->timeout_s) {
                    int missing = 0;
                    for (int m = r; m < d->num_ranks; m++) {
                        dist_rendezvous_path(path, sizeof(path), dir, m);
                        missing += access(path, F_OK) != 0;
                    }
                    dist_fail(d, "%d of %d ranks (the first: rank %d) never reached the rendezvous in '%s' within %.0f s "
                              "(did they start? were all SLURM_NTASKS tasks launched by srun, not the batch script itself? "
                              "is the directory on a filesystem every node shares?)",
                              missing, d->num_ranks - 1, r, dir, d->timeout_s);
                }
                usleep(20000);
            }
        }
        for (int r = 1; r < d->num_ranks; r++) {
            dist_rendezvous_path(path, sizeof(path), dir, r);
            unlink(path);
        }
        unlink(id_path);
        return;
    }
    double start = dist_now();
    for (;;) {
        FILE *f = fopen(id_path, "rb");
        if (f) {
            size_t got = fread(id, sizeof(*id), 1, f);
            fclose(f);
            if (got == 1) break;
        }
        if (dist_now() - start > d->timeout_s)
            dist_fail(d, "rank 0 did not write the rendezvous file '%s' within %.0f s "
                      "(did rank 0 start? is the directory on a filesystem every node shares?)", id_path, d->timeout_s);
        usleep(20000);
    }
    dist_rendezvous_path(path, sizeof(path), dir, d->rank);
    FILE *f = fopen(path, "wb");
    if (!f || fclose(f) != 0) dist_fail(d, "cannot write the arrival mark '%s': %s", path, strerror(errno));
}
#endif

/* Tasks per node under Slurm: the leading number of SLURM_TASKS_PER_NODE ("8(x2)" -> 8). */
static inline int dist_slurm_tasks_per_node(int num_ranks)
{
    const char *v = getenv("SLURM_TASKS_PER_NODE");
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : num_ranks;
}

/* Find this process's rank, pick its GPU, build the communicator (if more
 * than a single process). `rendezvous_dir` is used by srun launches. */
static inline void dist_init(Dist *d, const char *rendezvous_dir, double timeout_s)
{
    memset(d, 0, sizeof(*d));
    d->timeout_s = timeout_s;
    d->num_ranks = 1;
    d->local_size = 1;
    if (gethostname(d->host, sizeof(d->host)) != 0) snprintf(d->host, sizeof(d->host), "?");
    int under_mpirun = getenv("OMPI_COMM_WORLD_SIZE") != NULL;
    int under_slurm = getenv("SLURM_NTASKS") != NULL && getenv("SLURM_PROCID") != NULL;
    if (under_mpirun) {
#ifdef USE_MPI
        d->launcher = LAUNCH_MPI;
        MPI_Init(NULL, NULL);
        MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &d->num_ranks);
        MPI_Comm node;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
        MPI_Comm_rank(node, &d->local_rank);
        MPI_Comm_size(node, &d->local_size);
        MPI_Comm_free(&node);
#else
        if (dist_env_int("OMPI_COMM_WORLD_SIZE", 1) > 1)
            die("started by mpirun with %d ranks, but this train_gpt was built without MPI (NO_MPI=1 or no mpicc): "
                "rebuild with MPI, or launch with srun", dist_env_int("OMPI_COMM_WORLD_SIZE", 1));
#endif
    } else if (under_slurm) {
        d->launcher = LAUNCH_SLURM;
        d->rank = dist_env_int("SLURM_PROCID", 0);
        d->num_ranks = dist_env_int("SLURM_NTASKS", 1);
        d->local_rank = dist_env_int("SLURM_LOCALID", 0);
        d->local_size = dist_slurm_tasks_per_node(d->num_ranks);
        if (d->rank < 0 || d->rank >= d->num_ranks)
            die("SLURM_PROCID=%d is outside 0..SLURM_NTASKS-1 = %d", d->rank, d->num_ranks - 1);
    }
#ifdef NO_MULTI_GPU
    if (d->num_ranks > 1) die("%d ranks requested, but this train_gpt was built without NCCL (NO_MULTI_GPU=1)", d->num_ranks);
    d->launcher = LAUNCH_SINGLE;
#endif
    int num_devices = 0;
    cudaCheck(cudaGetDeviceCount(&num_devices));
    if (num_devices > 1 && d->local_size > num_devices)
        die("rank %d: %d ranks on host %s but only %d GPUs: one rank per GPU", d->rank, d->local_size, d->host, num_devices);
    d->device = d->local_rank % num_devices;
    cudaCheck(cudaSetDevice(d->device));
#ifndef NO_MULTI_GPU
    if (d->launcher != LAUNCH_SINGLE) {
        ncclUniqueId id;
        if (d->rank == 0) ncclCheck(d, ncclGetUniqueId(&id));
#ifdef USE_MPI
        if (d->launcher == LAUNCH_MPI) MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
#endif
        if (d->launcher == LAUNCH_SLURM) dist_file_rendezvous(d, &id, rendezvous_dir);
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = 0;
        ncclResult_t r = ncclCommInitRankConfig(&d->comm, d->num_ranks, id, d->rank, &config);
        if (r != ncclSuccess && r != ncclInProgress)
            dist_fail(d, "ncclCommInitRankConfig failed: %s", ncclGetErrorString(r));
        nccl_wait(d, r, "creating the NCCL communicator");
        cudaCheck(cudaMalloc(&d->scalars, (size_t)d->num_ranks * DIST_MAX_SCALARS * sizeof(double)));
    }
#else
    (void)rendezvous_dir;
#endif
    cudaCheck(cudaStreamCreateWithFlags(&d->comm_stream, cudaStreamNonBlocking));
    cudaCheck(cudaEventCreateWithFlags(&d->comm_done, cudaEventDisableTiming));
}

/* Partition the flat parameter buffer and build the gradient buckets
 * (dist_zero_free releases them; dist_free does too). */
static inline void dist_zero_init(Dist *d, int stage, const ParamLayout *p, const ModelConfig *c)
{
    if (stage < 0 || stage > 2) die("ZeRO stage must be 0, 1 or 2 (got %d)", stage);
    d->zero_stage = stage;
    zero_partition_init(&d->part, p->total, d->num_ranks, ZERO_SHARD_ALIGN);
    d->num_buckets = zero_num_buckets(c);
    d->buckets = (GradBucket *)calloc_or_die((size_t)d->num_buckets, sizeof(GradBucket));
    d->bucket_ready = (cudaEvent_t *)calloc_or_die((size_t)d->num_buckets, sizeof(cudaEvent_t));
    for (int b = 0; b < d->num_buckets; b++) {
        grad_bucket_init(&d->buckets[b], p, c, b);
        cudaCheck(cudaEventCreateWithFlags(&d->bucket_ready[b], cudaEventDisableTiming));
    }
}

static inline void dist_zero_free(Dist *d)
{
    for (int b = 0; b < d->num_buckets; b++) cudaCheck(cudaEventDestroy(d->bucket_ready[b]));
    free(d->buckets);
    free(d->bucket_ready);
    d->buckets = NULL;
    d->bucket_ready = NULL;
    d->num_buckets = 0;
}

/* This rank's optimizer range (zero_opt_range). */
static inline void dist_opt_range(const Dist *d, size_t *offset, size_t *size)
{
    zero_opt_range(&d->part, d->zero_stage, d->rank, offset, size);
}

/* Print (rank 0) the layout of the job and the per-GPU training-state memory. */
static inline void dist_print_summary(const Dist *d, FILE *out)
{
    if (d->rank != 0) return;
    ZeroMemory m = zero_memory(&d->part, d->zero_stage, d->rank);
    const double MiB = 1024.0 * 1024.0;
    fprintf(out, "dist: %s, world size %d, %d ranks per node, ZeRO stage %d%s\n", LAUNCHER_NAMES[d->launcher],
            d->num_ranks, d->local_size, d->zero_stage, dist_has_comm(d) ? ", NCCL" : "");
    fprintf(out, "dist: per GPU (rank 0): params %.1f MiB, grads %.1f MiB, optimizer state %.1f MiB (%zu of %zu elements)\n",
            m.params / MiB, m.grads / MiB, m.optimizer / MiB, m.optimizer / (3 * sizeof(float)), d->part.total);
}

/* ------------------------------------------------------------ gradients */

/* Called before each backward: whether this micro-step's gradients are
 * reduced (stage 2: always; stages 0/1: on the last micro-step only). */
static inline void dist_backward_begin(Dist *d, int last_micro_step)
{
    d->reduce_now = d->zero_stage == 2 || last_micro_step;
}

/* Called by the backward (on `stream`) as soon as bucket `b` of `grads` is
 * final. Queues its reduction on the communication stream; when b is the
 * last bucket, `stream` then waits for all of them (so the optimizer, or
 * the next micro-step's backward, sees reduced gradients). */
static inline void dist_bucket_done(Dist *d, int b, floatX *grads, cudaStream_t stream)
{
    if (!dist_has_comm(d) || !d->reduce_now) return;
#ifndef NO_MULTI_GPU
    const GradBucket *bucket = &d->buckets[b];
    cudaCheck(cudaEventRecord(d->bucket_ready[b], stream));
    cudaCheck(cudaStreamWaitEvent(d->comm_stream, d->bucket_ready[b], 0));
    ZeroPiece pieces[4096];
    ncclCheck(d, ncclGroupStart());
    for (int s = 0; s < bucket->num_segments; s++) {
        floatX *seg = grads + bucket->seg[s].offset;
        if (d->zero_stage == 0) {
            ncclCheck(d, ncclAllReduce(seg, seg, bucket->seg[s].size, ncclBfloat16, ncclSum, d->comm, d->comm_stream));
            continue;
        }
        if (d->num_ranks > (int)(sizeof(pieces) / sizeof(pieces[0]))) dist_fail(d, "more than %zu ranks", sizeof(pieces) / sizeof(pieces[0]));
        int n = zero_split_by_owner(&d->part, bucket->seg[s].offset, bucket->seg[s].size, pieces);
        for (int i = 0; i < n; i++)
            ncclCheck(d, ncclReduce(grads + pieces[i].offset, grads + pieces[i].offset, pieces[i].size, ncclBfloat16,
                                    ncclSum, pieces[i].owner, d->comm, d->comm_stream));
    }
    ncclCheck(d, ncclGroupEnd());
    if (d->zero_stage == 2) {
        /* keep only the owned shard: the next micro-step accumulates on zeros elsewhere */
        for (int s = 0; s < bucket->num_segments; s++) {
            int n = zero_split_by_owner(&d->part, bucket->seg[s].offset, bucket->seg[s].size, pieces);
            for (int i = 0; i < n; i++)
                if (pieces[i].owner != d->rank)
                    cudaCheck(cudaMemsetAsync(grads + pieces[i].offset, 0, pieces[i].size * sizeof(floatX), d->comm_stream));
        }
    }
    if (b == d->num_buckets - 1) {
        cudaCheck(cudaEventRecord(d->comm_done, d->comm_stream));
        cudaCheck(cudaStreamWaitEvent(stream, d->comm_done, 0));
    }
#else
    (void)b, (void)grads, (void)stream;
#endif
}

/* dist_bucket_done in the shape of model.cuh's GradsReadyFn (ctx: the Dist). */
static inline void dist_grads_ready(void *dist, int bucket, floatX *grads, cudaStream_t stream)
{
    dist_bucket_done((Dist *)dist, bucket, grads, stream);
}

/* After the optimizer updated this rank's shard of the bf16 `params` (stage
 * >= 1): every rank broadcasts its shard, so all ranks hold the whole model. */
static inline void dist_gather_params(Dist *d, floatX *params, cudaStream_t stream)
{
    if (!dist_has_comm(d) || d->zero_stage == 0) return;
#ifndef NO_MULTI_GPU
    ncclCheck(d, ncclGroupStart());
    for (int r = 0; r < d->num_ranks; r++) {
        size_t off = zero_shard_offset(&d->part, r), size = zero_shard_size(&d->part, r);
        if (size > 0) ncclCheck(d, ncclBroadcast(params + off, params + off, size, ncclBfloat16, r, d->comm, stream));
    }
    ncclCheck(d, ncclGroupEnd());
#else
    (void)params, (void)stream;
#endif
}

/* ------------------------------------------------------------ scalars */

/* values[0..n) := the sum over ranks, added in rank order in double: the
 * same result on every rank, every run. A single process keeps its values. */
static inline void dist_sum_scalars(Dist *d, double *values, int n)
{
    if (!dist_has_comm(d)) return;
#ifndef NO_MULTI_GPU
    if (n > DIST_MAX_SCALARS) dist_fail(d, "dist_sum_scalars: %d values > %d", n, DIST_MAX_SCALARS);
    double *all = (double *)malloc_or_die((size_t)d->num_ranks * n * sizeof(double)), *mine = d->scalars + (size_t)d->rank * n;
    cudaCheck(cudaMemcpyAsync(mine, values, n * sizeof(double), cudaMemcpyHostToDevice, d->comm_stream));
    ncclCheck(d, ncclAllGather(mine, d->scalars, n, ncclFloat64, d->comm, d->comm_stream));
    dist_sync(d, d->comm_stream); /* first: a copy into pageable memory would block without a timeout */
    cudaCheck(cudaMemcpyAsync(all, d->scalars, (size_t)d->num_ranks * n * sizeof(double), cudaMemcpyDeviceToHost,
                              d->comm_stream));
    cudaCheck(cudaStreamSynchronize(d->comm_stream)); /* only the copy is left */
    for (int i = 0; i < n; i++) {
        double sum = 0.0;
        for (int r = 0; r < d->num_ranks; r++) sum += all[(size_t)r * n + i];
        values[i] = sum;
    }
    free(all);
#endif
}

/* 1 when `value` is the same on every rank (then also a barrier). */
static inline int dist_all_equal(Dist *d, double value)
{
    double v[2] = {value, value * value};
    dist_sum_scalars(d, v, 2);
    return v[0] == value * d->num_ranks && v[1] == value * value * d->num_ranks;
}

/* Rank 0's `value` on every rank (sent as two 32-bit halves, exact in double). */
static inline uint64_t dist_broadcast_u64(Dist *d, uint64_t value)
{
    double halves[2] = {0.0, 0.0};
    if (d->rank == 0) {
        halves[0] = (double)(value >> 32);
        halves[1] = (double)(value & 0xffffffffu);
    }
    dist_sum_scalars(d, halves, 2);
    return ((uint64_t)halves[0] << 32) | (uint64_t)halves[1];
}

/* The global squared gradient norm from this rank's part: at stage 0 every
 * rank already holds the whole reduced gradient; from stage 1 on, each rank
 * holds the reduced gradient of its shard only, so the parts are summed. */
static inline double dist_grad_norm_squared(Dist *d, double local)
{
    if (d->zero_stage >= 1) dist_sum_scalars(d, &local, 1);
    return local;
}

static inline void dist_free(Dist *d)
{
#ifndef NO_MULTI_GPU
    if (d->comm) {
        dist_sync(d, d->comm_stream);
        ncclCheck(d, ncclCommFinalize(d->comm));
        ncclCommDestroy(d->comm);
        d->comm = NULL;
        cudaCheck(cudaFree(d->scalars));
    }
#endif
    dist_zero_free(d);
    cudaCheck(cudaEventDestroy(d->comm_done));
    cudaCheck(cudaStreamDestroy(d->comm_stream));
#ifdef USE_MPI
    if (d->launcher == LAUNCH_MPI) MPI_Finalize();
#endif
}

#endif /* PACKLM_DIST_CUH */
