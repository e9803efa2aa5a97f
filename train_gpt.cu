/*
 * train_gpt.cu — train a GPT-2 or Llama-style transformer on packed
 * documents, on one GPU or data-parallel on many (one process per GPU,
 * launched by mpirun or srun; dist.cuh, ZeRO stage -z 0/1/2).
 *
 * Read top to bottom: the run's settings (train_config.h), the model
 * (random init or a model file, model.cuh on the GPU), the data (shards
 * packed into rows of whole documents, dataloader.h), then the training
 * loop: every step loads grad_accum micro-batches of B rows x T tokens and
 * runs train_step on them (count the tokens that carry a target; per
 * micro-batch upload, forward, loss divided by that count, backward; then
 * reduce, norm, clip, AdamW, ZeRO gather), and prints
 *   step | loss | lr | grad norm | ms | tokens/s | MFU | ETA.
 * Validation loss, samples and checkpoints come every -v / -s / -n steps;
 * `-y 1 -o DIR` resumes from the newest checkpoint bit-identically.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adamw.cuh"
#include "batch.h"
#include "checkpoint.h"
#include "config.h"
#include "cuda_common.h"
#include "dataloader.h"
#include "dist.cuh"
#include "global_norm.cuh"
#include "logger.h"
#include "mc_eval.h"
#include "mfu.h"
#include "model.cuh"
#include "params.h"
#include "rand.h"
#include "schedulers.h"
#include "tokenizer.h"
#include "train_config.h"
#include "utils.h"

#define TOKENIZER_PATH "data/gpt2_tokenizer.bin"
#define ADAM_BETA1 0.9f
#define ADAM_BETA2 0.95f
#define ADAM_EPS 1e-8f

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- model source */

/* Random init exactly as the CPU reference (param_init), rounded to bf16. */
static uint16_t *init_params_from_seed(const ModelConfig *cfg, const ParamLayout *layout, unsigned long long seed)
{
    float *fp32 = (float *)malloc_or_die(layout->total * sizeof(float));
    param_init(fp32, layout, cfg, seed);
    uint16_t *bf16 = (uint16_t *)malloc_or_die(layout->total * sizeof(uint16_t));
#pragma omp parallel for
    for (size_t i = 0; i < layout->total; i++) bf16[i] = bf16_bits_from_float(fp32[i]);
    free(fp32);
    return bf16;
}

/* ---------------------------------------------------------------- checkpoints */

typedef struct {
    int step;               /* optimizer steps done */
    Rng sample_rng;         /* sampling stream */
    int skipped_in_a_row;   /* non-finite steps just before */
} RunState;

/* Rank 0 writes the model file, every rank the state file of its optimizer range. */
static void save_checkpoint(const TrainConfig *tc, GpuModel *m, Dist *d, const RunState *rs, const DataLoader *loader)
{
    char path[4200];
    size_t P = m->layout.total, S = m->opt_size;
    uint16_t *params = (uint16_t *)malloc_or_die(P * sizeof(uint16_t));
    float *opt = (float *)malloc_or_die(3 * S * sizeof(float));
    dist_sync(d, m->stream); /* the step's update and ZeRO gather, within dist's timeout */
    gpu_model_get_state(m, params, opt, opt + S, opt + 2 * S);
    checkpoint_model_path(path, sizeof(path), tc->output_dir, rs->step);
    uint64_t model_hash = d->rank == 0 ? checkpoint_write_model(path, &m->cfg, params, P) : 0;
    model_hash = dist_broadcast_u64(d, model_hash);
    DataLoaderState ls = dataloader_get_state(loader);
    TrainStateHeader h;
    memset(&h, 0, sizeof(h));
    h.step = rs->step;
    h.rank = (uint64_t)d->rank;
    h.num_ranks = (uint64_t)d->num_ranks;
    h.seed = tc->seed;
    h.sample_rng = rs->sample_rng.state;
    h.opt_offset = m->opt_offset;
    h.opt_size = S;
    h.model_hash = model_hash;
    h.loader_bytes = sizeof(ls);
    h.skipped_in_a_row = rs->skipped_in_a_row;
    checkpoint_state_path(path, sizeof(path), tc->output_dir, rs->step, d->rank);
    checkpoint_write_state(path, &h, &ls, opt, opt + S, opt + 2 * S);
    if (!dist_all_equal(d, rs->step)) dist_fail(d, "ranks disagree on the checkpoint step");
    if (d->rank == 0) checkpoint_prune(tc->output_dir, tc->keep_last, d->num_ranks); /* every rank has written */
    printf("checkpoint: step %d written to %s (model + training state)\n", rs->step, tc->output_dir);
    free(params);
    free(opt);
}

/*
 * Resume: the newest checkpoint in -o whose state file for this rank is
 * whole (checksum) and belongs to its model file. Loads the model and this
 * rank's optimizer range (*opt: master | m | v, opt_size floats each);
 * returns 0 if none exists. A checkpoint of another world size or another
 * optimizer range (ZeRO stage) is refused.
 */
static int resume_from_checkpoint(const TrainConfig *tc, int rank, int num_ranks, ModelConfig *cfg, uint16_t **params,
                                  float **opt, DataLoaderState *ls, RunState *rs)
{
    enum { MAX_STEPS = 100000 };
    int *steps = (int *)malloc_or_die(MAX_STEPS * sizeof(int));
    int n = checkpoint_list_steps(tc->output_dir, steps, MAX_STEPS);
    for (int i = n - 1; i >= 0; i--) {
        char model_path[4200], state_path[4200];
        checkpoint_model_path(model_path, sizeof(model_path), tc->output_dir, steps[i]);
        checkpoint_state_path(state_path, sizeof(state_path), tc->output_dir, steps[i], rank);
        int version;
        checkpoint_read_model_config(model_path, cfg, &version);
        ParamLayout layout;
        param_layout_init(&layout, cfg);
        size_t P = layout.total, opt_offset, S;
        ZeroPartition part;
        zero_partition_init(&part, P, num_ranks, ZERO_SHARD_ALIGN);
        zero_opt_range(&part, tc->zero_stage, rank, &opt_offset, &S);
        TrainStateHeader h;
        char why[512];
        if (!checkpoint_read_state_header(state_path, &h) &&
            zero_resume_problem(&part, tc->zero_stage, rank, h.num_ranks, h.opt_offset, h.opt_size, why, sizeof(why)))
            die("resume: '%s' %s", state_path, why);
        *params = (uint16_t *)malloc_or_die(P * sizeof(uint16_t));
        *opt = (float *)malloc_or_die(3 * S * sizeof(float));
        const char *bad = checkpoint_load(tc->output_dir, steps[i], rank, *params, P, &h, ls, sizeof(*ls), *opt, S);
        if (!bad) {
            rs->step = (int)h.step;
            rs->sample_rng.state = h.sample_rng;
            rs->skipped_in_a_row = (int)h.skipped_in_a_row;
            if (h.seed != tc->seed) printf("resume: note: the checkpoint was trained with --seed %llu\n",
                                           (unsigned long long)h.seed);
            printf("resume: continuing from step %d (%s)\n", rs->step, model_path);
            free(steps);
            return 1;
        }
        fprintf(stderr, "warning: checkpoint '%s' is unusable: %s; trying an older one\n", state_path, bad);
        free(*params);
        free(*opt);
    }
    free(steps);
    return 0;
}

/* ---------------------------------------------------------------- the optimizer step */

/* Page-lock (pin = 1) or release (0) a host batch's arrays: an upload from
   page-locked memory is an asynchronous copy, so the host does not wait for
   the GPU between micro-batches. */
static void pin_batch(PackedBatch *b, int pin)
{
    const size_t n = (size_t)b->B * b->T;
    int *arrays[4] = {b->inputs, b->targets, b->pos, b->cu_seqlens};
    const size_t counts[4] = {n, n, n, n + 1};
    for (int i = 0; i < 4; i++) {
        if (pin) cudaCheck(cudaHostRegister(arrays[i], counts[i] * sizeof(int), cudaHostRegisterDefault));
        else cudaCheck(cudaHostUnregister(arrays[i]));
    }
}

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float grad_clip;    /* clip the global gradient norm to this (0 = off) */
    int step;           /* 1-based AdamW step (bias correction) */
    unsigned int seed;  /* stochastic rounding seed of this step */
} AdamWStep;

typedef struct {
    float loss;      /* mean over the targets of all micro-batches */
    float grad_norm; /* global norm before clipping */
    int updated;     /* 0: loss or norm not finite, the update was skipped */
} StepResult;

/* What a step needs besides the model: the gradient norm on the device, and
   pinned host room that the GPU copies the norm and every micro-batch's
   per-token losses into, so the host reads them all after one wait. */
typedef struct {
    float *norm_squared;      /* device, 1 */
    float *host_norm_squared; /* pinned, 1 */
    float *host_losses;       /* pinned, max_micro * tokens_per_micro */
    size_t tokens_per_micro;
} StepBuffers;

static void step_buffers_create(StepBuffers *sb, int max_micro, size_t tokens_per_micro)
{
    cudaCheck(cudaMalloc(&sb->norm_squared, sizeof(float)));
    cudaCheck(cudaMallocHost(&sb->host_norm_squared, (1 + (size_t)max_micro * tokens_per_micro) * sizeof(float)));
    sb->host_losses = sb->host_norm_squared + 1;
    sb->tokens_per_micro = tokens_per_micro;
}

static void step_buffers_free(StepBuffers *sb)
{
    cudaCheck(cudaFree(sb->norm_squared));
    cudaCheck(cudaFreeHost(sb->host_norm_squared));
}

/* Sum of n per-token losses, in order, in double. */
static double sum_of_losses(const float *losses, int n)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += losses[i];
    return sum;
}

/* AdamW over this rank's slice [opt_offset, opt_offset + opt_size), tensor by
   tensor (weight decay on matrices only), gradients times grad_scale (the clip). */
static void adamw_update_slice(GpuModel *m, const AdamWStep *a, float grad_scale)
{
    const size_t lo = m->opt_offset, hi = m->opt_offset + m->opt_size;
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        size_t start = m->layout.offset[t], end = start + m->layout.size[t];
        if (start < lo) start = lo;
        if (end > hi) end = hi;
        if (start >= end) continue;
        size_t k = start - lo;
        float wd = param_is_matrix(t) ? a->weight_decay : 0.0f;
        adamw_update(m->params + start, m->master + k, m->grads + start, m->adam_m + k, m->adam_v + k, end - start,
                     a->lr, a->beta1, a->beta2, a->eps, wd, grad_scale, a->step, a->seed + (unsigned int)t, m->stream);
    }
}

/*
 * One optimizer step over `n` host micro-batches (which must stay unchanged
 * until this returns). The host waits for the GPU once, for the gradient norm
 * and the losses; the update is left queued on the model's stream.
 */
static StepResult train_step(GpuModel *m, Dist *d, StepBuffers *sb, const PackedBatch *batches, int n,
                             const AdamWStep *a)
{
    /* the loss is the mean over the targets of the global batch: count them before any backward */
    double count = 0.0;
    for (int i = 0; i < n; i++) count += (double)packed_batch_count_targets(&batches[i]);
    dist_sum_scalars(d, &count, 1); /* every rank's rows */
    const float dloss = count > 0 ? (float)(1.0 / count) : 0.0f;

    gpu_model_zero_grad(m);
    for (int i = 0; i < n; i++) { /* gradients accumulate over the micro-batches */
        gpu_model_upload_batch(m, &batches[i]);
        gpu_model_forward(m);
        gpu_model_loss(m, dloss, 1, sb->host_losses + i * sb->tokens_per_micro);
        dist_backward_begin(d, i == n - 1); /* reduce this backward's gradients? (ZeRO-2: every micro-step) */
        gpu_model_backward(m);              /* hands each layer's final gradients to dist (grads_ready) */
    }

    /* reduce: the backward queued each layer's reduction and made the stream wait for the last;
       norm: of this rank's slice, then the one wait, which also brings the losses */
    cudaCheck(cudaMemsetAsync(sb->norm_squared, 0, sizeof(float), m->stream));
    global_norm_squared(sb->norm_squared, m->grads + m->opt_offset, m->opt_size, m->stream);
    cudaCheck(cudaMemcpyAsync(sb->host_norm_squared, sb->norm_squared, sizeof(float), cudaMemcpyDeviceToHost, m->stream));
    dist_sync(d, m->stream);
    double loss_sum = 0.0;
    for (int i = 0; i < n; i++)
        loss_sum += sum_of_losses(sb->host_losses + i * sb->tokens_per_micro, batches[i].B * batches[i].T);
    dist_sum_scalars(d, &loss_sum, 1);
    StepResult r;
    r.loss = (float)(loss_sum / count);
    r.grad_norm = sqrtf((float)dist_grad_norm_squared(d, *sb->host_norm_squared)); /* ZeRO: summed over shards */
    r.updated = isfinite(r.loss) && isfinite(r.grad_norm);
    if (!r.updated) return r;

    /* clip, update this rank's slice, then (ZeRO) every rank's updated shard to all */
    const float clip = a->grad_clip > 0.0f && r.grad_norm > a->grad_clip ? a->grad_clip / r.grad_norm : 1.0f;
    adamw_update_slice(m, a, clip);
    dist_gather_params(d, m->params, m->stream);
    return r;
}

/* ---------------------------------------------------------------- evaluation and samples */

/* Mean validation loss over up to -m batches from the start of the val shards. */
static float validation_loss(const TrainConfig *tc, GpuModel *m, Dist *d, DataLoader *val, PackedBatch *batch,
                             float *host_losses)
{
    double sum = 0.0, count = 0.0;
    dataloader_reset(val);
    for (int i = 0; i < tc->val_max_batches; i++) {
        dataloader_next(val, batch);
        if (!tc->doc_mask) packed_batch_make_row_causal(batch);
        count += (double)packed_batch_count_targets(batch);
        gpu_model_upload_batch(m, batch);
        gpu_model_forward(m);
        gpu_model_loss(m, 0.0f, 0, host_losses);
        dist_sync(d, m->stream); /* the losses, and the batch may be refilled */
        sum += sum_of_losses(host_losses, batch->B * batch->T);
    }
    double totals[2] = {sum, count}; /* over every rank's rows */
    dist_sum_scalars(d, totals, 2);
    return (float)(totals[0] / (totals[1] > 0 ? totals[1] : 1.0));
}

/* Multiple-choice accuracy (--eval, llmc/mc_eval.h): each rank scores its share of the examples. */
static float mc_accuracy(const TrainConfig *tc, GpuModel *m, Dist *d, const McSet *set, PackedBatch *batch,
                         float *host_losses)
{
    McRun run;
    mc_run_begin(&run, set, batch->T, d->rank, d->num_ranks, tc->eval_file);
    while (mc_run_fill(&run, batch, !tc->doc_mask)) {
        gpu_model_upload_batch(m, batch);
        gpu_model_forward(m);
        gpu_model_loss(m, 0.0f, 0, host_losses);
        dist_sync(d, m->stream); /* the losses, and the batch may be refilled */
        mc_run_score(&run, host_losses);
    }
    double totals[2] = {(double)run.correct, (double)run.examples};
    dist_sum_scalars(d, totals, 2);
    mc_run_free(&run);
    return (float)(totals[0] / (totals[1] > 0 ? totals[1] : 1.0));
}

/* Sample one token from the softmax over the first V logits (bf16 bits). */
static int sample_token(const uint16_t *logits, int V, Rng *rng)
{
    float max = -INFINITY;
    for (int i = 0; i < V; i++) max = fmaxf(max, float_from_bf16_bits(logits[i]));
    double total = 0.0;
    for (int i = 0; i < V; i++) total += exp(float_from_bf16_bits(logits[i]) - max);
    double r = rng_uniform(rng) * total, acc = 0.0;
    for (int i = 0; i < V; i++) {
        acc += exp(float_from_bf16_bits(logits[i]) - max);
        if (acc > r) return i;
    }
    return V - 1;
}

/* Generate -g tokens from end-of-text, one document, and print them decoded. */
static void print_sample(const TrainConfig *tc, GpuModel *m, const Tokenizer *tok, Rng *rng)
{
    const ModelConfig *c = &m->cfg;
    int max_len = tc->sample_tokens + 1;
    if (max_len > m->B * m->T) max_len = m->B * m->T;
    if (max_len > c->max_seq_len) max_len = c->max_seq_len;
    PackedBatch b;
    packed_batch_alloc(&b, 1, max_len);
    uint16_t *row = (uint16_t *)malloc_or_die(c->padded_vocab_size * sizeof(uint16_t));
    b.inputs[0] = c->vocab_size > GPT2_VOCAB_SIZE - 1 ? GPT2_VOCAB_SIZE - 1 : 0;
    printf("sample: ");
    for (int len = 1; len < max_len; len++) {
        for (int i = 0; i < len; i++) {
            b.targets[i] = -1;
            b.pos[i] = i;
        }
        b.T = len;
        b.num_segments = 1;
        b.cu_seqlens[0] = 0;
        b.cu_seqlens[1] = len;
        b.max_seqlen = len;
        gpu_model_upload_batch(m, &b);
        gpu_model_forward(m);
        cudaCheck(cudaMemcpyAsync(row, m->logits + (size_t)(len - 1) * c->padded_vocab_size,
                                  c->padded_vocab_size * sizeof(uint16_t), cudaMemcpyDeviceToHost, m->stream));
        cudaCheck(cudaStreamSynchronize(m->stream));
        int next = sample_token(row, c->vocab_size, rng);
        b.inputs[len] = next;
        size_t n = 0;
        const unsigned char *bytes = tok ? tokenizer_token_bytes(tok, next, &n) : NULL;
        if (bytes) fwrite(bytes, 1, n, stdout);
        else printf("<%d>", next);
    }
    printf("\n");
    free(row);
    packed_batch_free(&b);
}

/* The stochastic-rounding seed of a step: a function of (run seed, step), so a resumed run rounds alike. */
static unsigned int rounding_seed(unsigned long long seed, int step)
{
    Rng r = rng_create(seed * 1000003ull + (unsigned long long)step);
    return (unsigned int)rng_u64(&r);
}

/* --dump-grads: this rank's gradient buffer (bf16, params.h order, before clipping), for the PyTorch parity check. */
static void dump_gradients(const GpuModel *m, const char *path)
{
    size_t n = m->layout.total;
    uint16_t *host = (uint16_t *)malloc_or_die(n * sizeof(uint16_t));
    cudaCheck(cudaMemcpy(host, m->grads, n * sizeof(uint16_t), cudaMemcpyDeviceToHost));
    OutFile out; /* PATH.tmp, renamed when complete */
    out_file_open(&out, path);
    out_file_write(&out, host, n * sizeof(uint16_t));
    out_file_commit(&out);
    free(host);
}

/* ---------------------------------------------------------------- main */

/* This process's rank and the world size as the launcher set them (mpirun, srun, or
   one process): known before dist_init, so the host-side checks can use them. */
static void launch_ranks(int *rank, int *num_ranks)
{
    *rank = 0;
    *num_ranks = 1;
    if (getenv("OMPI_COMM_WORLD_SIZE")) {
        *rank = dist_env_int("OMPI_COMM_WORLD_RANK", 0);
        *num_ranks = dist_env_int("OMPI_COMM_WORLD_SIZE", 1);
    } else if (getenv("SLURM_NTASKS") && getenv("SLURM_PROCID")) {
        *rank = dist_env_int("SLURM_PROCID", 0);
        *num_ranks = dist_env_int("SLURM_NTASKS", 1);
    }
}

/* What the run will do, printed before any GPU work (and all that --check prints). */
static void print_plan(const TrainConfig *tc, const ModelConfig *cfg, const ParamLayout *layout, size_t opt_size,
                       int num_ranks, int grad_accum, int use_val)
{
    const long tokens_per_step = (long)tc->B * tc->T * grad_accum * num_ranks;
    printf("plan: %zu parameters (%.1fM); GPU memory estimate for B=%d T=%d: %.2f GiB per GPU (ZeRO-%d, %d rank%s)\n",
           layout->total, layout->total / 1e6, tc->B, tc->T, model_memory_bytes(cfg, tc->B, tc->T, opt_size, tc->recompute) / 1073741824.0,
           tc->zero_stage, num_ranks, num_ranks == 1 ? "" : "s");
    printf("plan: %d rows x %d tokens x %d micro-steps x %d rank%s = %ld tokens per step; %s packing, document mask %s\n",
           tc->B, tc->T, grad_accum, num_ranks, num_ranks == 1 ? "" : "s", tokens_per_step, tc->packing,
           tc->doc_mask ? "on" : "off (causal over rows)");
    printf("plan: %d steps (%.3g tokens), lr %g %s (warmup %d, final x%g), validation %s, checkpoints %s\n",
           tc->max_steps, (double)tokens_per_step * tc->max_steps, (double)tc->lr, tc->schedule, tc->warmup_steps,
           (double)tc->final_lr_frac, use_val ? "on" : "off", tc->output_dir ? tc->output_dir : "off (no -o)");
}

#ifndef TESTING /* test/test_train_gpt.cu includes this file for train_step */
int main(int argc, char **argv)
{
    TrainConfig tc;
    train_config_from_args(&tc, TRAINER_GPU, argc, argv);

    /* ---- everything that needs no GPU is checked first: flags, model, sizes, checkpoints, shards */
    int rank, num_ranks;
    launch_ranks(&rank, &num_ranks);
    if (rank != 0 && !freopen("/dev/null", "w", stdout)) die("rank %d: cannot silence stdout", rank); /* rank 0 reports */
    if ((tc.dump_batches || tc.dump_grads) && num_ranks > 1) die("--dump-batches / --dump-grads: use a single rank");
    train_config_output_dir(&tc);

    /* the model: a checkpoint to resume, a model file, or random init from a descriptor */
    ModelConfig cfg;
    uint16_t *host_params = NULL;
    float *host_opt = NULL;
    RunState rs = {0, rng_create(tc.seed ^ 0x5a4d504cull), 0};
    DataLoaderState loader_state;
    int resumed = 0, model_from_file = 0;
    if (tc.resume) {
        resumed = resume_from_checkpoint(&tc, rank, num_ranks, &cfg, &host_params, &host_opt, &loader_state, &rs);
        if (!resumed) printf("resume: no usable checkpoint in '%s'; starting from -e %s\n", tc.output_dir, tc.model);
        else printf("resume: the model comes from the checkpoint; -e %s is not used\n", tc.model);
    }
    if (!resumed) {
        const int version = model_source_config(tc.model, &cfg); /* a file's header and length are checked */
        model_from_file = version != 0;
        printf("model: %s, %s\n", tc.model,
               !model_from_file ? "random init" : version == MODEL_VERSION_BF16 ? "bf16 model file" : "fp32 model file");
    }
    model_config_check_seq_len(&cfg, tc.T);
    model_config_print(&cfg, stdout);
    ParamLayout layout;
    param_layout_init(&layout, &cfg);
    /* the host holds the fp32 init (or the fp32 optimizer state of a resume) next to the bf16 parameters */
    require_host_memory(tc.model, layout.total, resumed ? 14.0 : 6.0, "the host copy of the parameters");
    ZeroPartition partition;
    zero_partition_init(&partition, layout.total, num_ranks, ZERO_SHARD_ALIGN);
    size_t opt_offset, opt_size;
    zero_opt_range(&partition, tc.zero_stage, rank, &opt_offset, &opt_size);

    /* the data */
    PackingMode mode;
    packing_mode_parse(tc.packing, &mode);
    DataLoader train_loader, val_loader;
    dataloader_init(&train_loader, tc.train_pattern, tc.B, tc.T, rank, num_ranks, mode, tc.seed, cfg.vocab_size,
                    tc.doc_token);
    if (resumed) dataloader_set_state(&train_loader, &loader_state);
    int use_val = tc.val_every > 0 && tc.val_pattern[0] != '\0';
    if (use_val)
        dataloader_init(&val_loader, tc.val_pattern, tc.B, tc.T, rank, num_ranks, mode, 0, cfg.vocab_size, tc.doc_token);
    McSet eval_set = {0};
    char eval_error[1024];
    if (tc.eval_file && !mc_read(tc.eval_file, cfg.vocab_size, &eval_set, eval_error, sizeof(eval_error)))
        die("--eval: %s", eval_error);
    if (tc.eval_file) mc_require_fits(&eval_set, tc.T, tc.eval_file); /* now, not at the first evaluation */
    dataloader_print_stats(&train_loader, stdout);
    const int grad_accum = train_config_grad_accum(&tc, num_ranks);
    print_plan(&tc, &cfg, &layout, opt_size, num_ranks, grad_accum, use_val);
    if (tc.check_only) {
        printf("check: ok: every input is valid; train_gpt would start (it needs a GPU to run)\n");
        return 0;
    }

    /* ---- the GPU(s) */
    int num_gpus = 0;
    if (cudaGetDeviceCount(&num_gpus) != cudaSuccess || num_gpus == 0)
        die("no CUDA GPU is visible: train_gpt needs one (every input was checked and is valid: --check shows the "
            "plan; on a machine without a GPU, `make train` runs the CPU reference trainer, ./train_cpu, instead)");
    if (!resumed) { /* the parameters, once a GPU is known to be there */
        if (model_from_file) {
            host_params = (uint16_t *)malloc_or_die(layout.total * sizeof(uint16_t));
            checkpoint_read_model_params(tc.model, host_params, layout.total);
        } else {
            host_params = init_params_from_seed(&cfg, &layout, tc.seed);
            printf("model: random init from seed %llu\n", tc.seed);
        }
    }
    Dist dist; /* this process's rank and GPU, and the NCCL communicator (none for a single process) */
    dist_init(&dist, tc.rendezvous, tc.dist_timeout);
    if (dist.rank != rank || dist.num_ranks != num_ranks)
        dist_fail(&dist, "the launcher's environment said rank %d of %d, the communicator says %d of %d", rank,
                  num_ranks, dist.rank, dist.num_ranks);
    if (tc.resume && !dist_all_equal(&dist, resumed ? rs.step : -1))
        dist_fail(&dist, "ranks found different usable checkpoints in '%s' (this rank: step %d, -1 = none)",
                  tc.output_dir, resumed ? rs.step : -1);
    cuda_common_init();
    AttentionPath attention_path = ATTENTION_PATH_AUTO;
    attention_path_from_name(tc.attention_path, &attention_path); /* the name was checked with the flags */
    attention_select_path(attention_path);
    printf("attention: %s kernels\n", attention_path_name(attention_active_path()));

    GpuModel model;
    dist_zero_init(&dist, tc.zero_stage, &layout, &cfg);
    dist_opt_range(&dist, &opt_offset, &opt_size);
    gpu_model_create(&model, &cfg, tc.B, tc.T, opt_offset, opt_size, tc.recompute);
    gpu_model_set_params(&model, host_params);
    model.grads_ready = dist_grads_ready; /* each layer's gradients start their reduction as soon as they are final */
    model.grads_ready_ctx = &dist;
    if (resumed) gpu_model_set_optimizer(&model, host_opt, host_opt + opt_size, host_opt + 2 * opt_size);
    dist_print_summary(&dist, stdout);
    free(host_params);
    free(host_opt);
    printf("parameters: %zu (%.1fM); GPU memory for B=%d T=%d: %.2f GiB on %s\n", layout.total, layout.total / 1e6,
           tc.B, tc.T, model.memory_bytes / 1073741824.0, device_info.name);

    Tokenizer tokenizer;
    int have_tokenizer = tc.sample_every > 0 && access(TOKENIZER_PATH, R_OK) == 0;
    if (have_tokenizer) tokenizer_init(&tokenizer, TOKENIZER_PATH);
    else if (tc.sample_every > 0) printf("samples: %s not found, printing token ids\n", TOKENIZER_PATH);
    OutFile dump = {0}; /* --dump-batches: written as DUMP.tmp, renamed when the run ends */
    if (tc.dump_batches) out_file_open(&dump, tc.dump_batches);

    /* ---- the schedule */
    const long tokens_per_step = (long)tc.B * tc.T * grad_accum * num_ranks;
    LRScheduler sched;
    lr_scheduler_init(&sched, tc.schedule, tc.lr, tc.warmup_steps, tc.max_steps, tc.final_lr_frac);
    Logger logger;
    logger_init(&logger, rank == 0 ? tc.output_dir : NULL, rs.step);
    const double peak_tflops = gpu_peak_bf16_tflops(device_info.name);
    if (peak_tflops < 0) printf("MFU: '%s' is not in the peak-FLOPs table; MFU is not shown\n", device_info.name);

    PackedBatch *micro = (PackedBatch *)malloc_or_die(grad_accum * sizeof(PackedBatch));
    for (int i = 0; i < grad_accum; i++) {
        packed_batch_alloc(&micro[i], tc.B, tc.T);
        pin_batch(&micro[i], 1);
    }
    StepBuffers step_buffers;
    step_buffers_create(&step_buffers, grad_accum, (size_t)tc.B * tc.T);
    double train_seconds = 0.0;
    int timed_steps = 0;
    const int first_step = rs.step;

    /* ---- the training loop: step == max_steps only evaluates and saves */
    for (; rs.step <= tc.max_steps; rs.step++) {
        const int step = rs.step, last = step == tc.max_steps;
        if (use_val && (step % tc.val_every == 0 || last)) {
            float val = validation_loss(&tc, &model, &dist, &val_loader, &micro[0], step_buffers.host_losses);
            printf("step %d: val loss %.6f\n", step, val);
            logger_log_val(&logger, step, val);
        }
        if (tc.eval_file && tc.val_every > 0 && (step % tc.val_every == 0 || last)) {
            float acc = mc_accuracy(&tc, &model, &dist, &eval_set, &micro[0], step_buffers.host_losses);
            printf("step %d: eval accuracy %.4f (%d examples)\n", step, acc, eval_set.num_examples);
            logger_log_eval(&logger, step, acc);
        }
        if (rank == 0 && tc.sample_every > 0 && step > 0 && (step % tc.sample_every == 0 || last))
            print_sample(&tc, &model, have_tokenizer ? &tokenizer : NULL, &rs.sample_rng);
        if (tc.output_dir && step > first_step && ((tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0) || last))
            save_checkpoint(&tc, &model, &dist, &rs, &train_loader);
        if (last) break;

        double t0 = now_seconds();
        /* load the step's micro-batches */
        double pairs = 0.0;
        for (int i = 0; i < grad_accum; i++) {
            dataloader_next(&train_loader, &micro[i]);
            if (!tc.doc_mask) packed_batch_make_row_causal(&micro[i]);
            pairs += batch_attended_pairs(&micro[i]);
            if (tc.dump_batches) packed_batch_write(dump.f, dump.tmp, &micro[i]);
        }
        dist_sum_scalars(&dist, &pairs, 1); /* attended pairs of the global batch, for MFU */
        /* forward + backward of each, then reduce, clip, AdamW, gather */
        float lr = lr_at(&sched, step);
        AdamWStep a = {lr, ADAM_BETA1, ADAM_BETA2, ADAM_EPS, tc.weight_decay, tc.grad_clip, step + 1,
                       rounding_seed(tc.seed, step)};
        StepResult r = train_step(&model, &dist, &step_buffers, micro, grad_accum, &a);
        if (tc.dump_grads && step == first_step) dump_gradients(&model, tc.dump_grads);
        if (!r.updated) {
            rs.skipped_in_a_row++;
            printf("step %d: loss %f, grad norm %f are not finite: update skipped (%d in a row)\n", step + 1, r.loss,
                   r.grad_norm, rs.skipped_in_a_row);
            if (rs.skipped_in_a_row >= tc.max_skips)
                die("%d steps in a row had a non-finite loss or gradient norm (--max-skips %d): the run diverged; "
                    "try a lower -l or --grad-clip", rs.skipped_in_a_row, tc.max_skips);
            continue;
        }
        rs.skipped_in_a_row = 0;
        double seconds = now_seconds() - t0;

        /* the step line (this process's first step includes warm-up and is not averaged) */
        if (step > first_step) {
            train_seconds += seconds;
            timed_steps++;
        }
        double avg = timed_steps ? train_seconds / timed_steps : seconds;
        char eta[32], mfu[32];
        format_eta(eta, sizeof(eta), avg * (tc.max_steps - step - 1));
        double flops = training_flops(&cfg, (double)tokens_per_step, pairs);
        if (peak_tflops > 0) snprintf(mfu, sizeof(mfu), "%.1f%%", 100.0 * flops / seconds / (peak_tflops * 1e12 * num_ranks));
        else snprintf(mfu, sizeof(mfu), "n/a");
        printf("step %5d/%d | loss %.6f | lr %.2e | norm %.4f | %.1f ms | %.0f tok/s | MFU %s | ETA %s\n", step + 1,
               tc.max_steps, r.loss, lr, r.grad_norm, seconds * 1e3, tokens_per_step / seconds, mfu, eta);
        fflush(stdout);
        logger_log_train(&logger, step, r.loss, lr, r.grad_norm);
    }
    size_t free_bytes, total_bytes;
    cudaCheck(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (timed_steps > 0)
        printf("done: %d steps, mean %.1f ms/step, %.0f tokens/s; GPU memory: model %.2f GiB, in use on the card "
               "%.2f GiB\n", timed_steps, 1e3 * train_seconds / timed_steps, tokens_per_step * timed_steps / train_seconds,
               model.memory_bytes / 1073741824.0, (total_bytes - free_bytes) / 1073741824.0);
    if (timed_steps > 0 && tc.recompute > 0)
        printf("done: activation recompute -r %d saves %.2f GiB (the model would need %.2f GiB with -r 0)\n", tc.recompute,
               (model_memory_bytes(&cfg, tc.B, tc.T, opt_size, 0) - model.memory_bytes) / 1073741824.0,
               model_memory_bytes(&cfg, tc.B, tc.T, opt_size, 0) / 1073741824.0);

    step_buffers_free(&step_buffers);
    for (int i = 0; i < grad_accum; i++) {
        pin_batch(&micro[i], 0);
        packed_batch_free(&micro[i]);
    }
    free(micro);
    if (tc.dump_batches) out_file_commit(&dump);
    if (have_tokenizer) tokenizer_free(&tokenizer);
    logger_free(&logger);
    dataloader_free(&train_loader);
    if (use_val) dataloader_free(&val_loader);
    mc_free(&eval_set);
    gpu_model_free(&model);
    cuda_common_destroy();
    dist_free(&dist);
    return 0;
}
#endif /* TESTING */
