/*
 * train_cpu.c — the fp32 CPU reference trainer (llmc/model_cpu.h: AdamW,
 * global-norm clipping, an LR schedule from llmc/schedulers.h) with
 * train_gpt's command line and outputs, so that everything around the model
 * runs, and is tested, on any machine:
 *   flags      llmc/train_config.h, the same table as train_gpt (a flag only
 *              train_gpt takes is refused by name); `./train_cpu --help`
 *   model      -e descriptor or model file; refused up front when its fp32
 *              parameters, gradients and moments exceed the machine's memory
 *   data       -i shards packed by llmc/dataloader.h (default: the embedded
 *              corpus data/fortunes_train_*.bin); when those are absent, or
 *              with -i synthetic, one fixed synthetic packed batch
 *              (llmc/synthetic_batch.h) at every step; -j validation shards
 *   steps      -d tokens per step = grad_accum micro-batches of B x T; a step
 *              whose loss or gradient norm is not finite is skipped, and
 *              --max-skips of them in a row end the run (exit 1)
 *   output     the step line (loss, lr, norm, ms, tok/s, ETA), validation
 *              loss, a closing summary; -o DIR: main.log (llmc/logger.h) and
 *              checkpoints in train_gpt's formats (llmc/checkpoint.h; the
 *              model file holds bf16, the state file the fp32 weights), and
 *              -y 1 resumes from the newest usable one bit-identically.
 */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "checkpoint.h"
#include "config.h"
#include "dataloader.h"
#include "logger.h"
#include "mc_eval.h"
#include "model_cpu.h"
#include "schedulers.h"
#include "synthetic_batch.h"
#include "train_config.h"
#include "utils.h"

#define SYNTHETIC_DATA "synthetic"
#define ADAM_BETA1 0.9f
#define ADAM_BETA2 0.95f
#define ADAM_EPS 1e-8f

/* 1 if any file matches the glob pattern. */
static int pattern_matches(const char *pattern)
{
    glob_t g;
    const int found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    return found;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Where the batches come from: shards (a loader), or the fixed synthetic batch. */
typedef struct {
    int use_shards, use_val;
    DataLoader train, val;
    int vocab_size;                /* of the synthetic batch's tokens */
    unsigned long long seed;       /* of the synthetic batch */
} Data;

static void data_init(Data *d, const TrainConfig *tc, const ModelConfig *cfg, PackingMode mode)
{
    TrainConfig defaults;
    train_config_defaults(&defaults, TRAINER_CPU);
    const int default_train = strcmp(tc->train_pattern, defaults.train_pattern) == 0;
    memset(d, 0, sizeof(*d));
    d->vocab_size = cfg->vocab_size;
    d->seed = tc->seed;
    d->use_shards = strcmp(tc->train_pattern, SYNTHETIC_DATA) != 0 &&
                    (!default_train || pattern_matches(tc->train_pattern));
    /* validation: -j when given; the default val shards only next to the default train shards */
    const int default_val = strcmp(tc->val_pattern, defaults.val_pattern) == 0;
    d->use_val = tc->val_every > 0 && tc->val_pattern[0] != '\0' &&
                 (!default_val || (d->use_shards && default_train && pattern_matches(tc->val_pattern)));
    if (d->use_shards) {
        dataloader_init(&d->train, tc->train_pattern, tc->B, tc->T, 0, 1, mode, tc->seed, cfg->vocab_size,
                        tc->doc_token);
        printf("data: %s (%d shard%s, %lld tokens, %s packing, B=%d, T=%d)\n", tc->train_pattern, d->train.num_shards,
               d->train.num_shards == 1 ? "" : "s", (long long)d->train.num_tokens, packing_mode_name(mode), tc->B,
               tc->T);
    } else {
        printf("data: a fixed synthetic packed batch (B=%d, T=%d)%s%s\n", tc->B, tc->T,
               default_train ? ", because no shards match " : "", default_train ? tc->train_pattern : "");
    }
    if (d->use_val)
        dataloader_init(&d->val, tc->val_pattern, tc->B, tc->T, 0, 1, mode, DATALOADER_NO_SHUFFLE, cfg->vocab_size,
                        tc->doc_token);
    printf("validation: %s\n", d->use_val ? tc->val_pattern : "off");
}

static void data_next(Data *d, const TrainConfig *tc, PackedBatch *b)
{
    if (d->use_shards) dataloader_next(&d->train, b);
    else synthetic_batch_random(b, d->vocab_size, tc->T / 2 > 0 ? tc->T / 2 : 1, d->seed); /* the same every time */
    if (!tc->doc_mask) packed_batch_make_row_causal(b);
}

static void data_free(Data *d)
{
    if (d->use_shards) dataloader_free(&d->train);
    if (d->use_val) dataloader_free(&d->val);
}

/* Mean validation loss over -m batches from the start of the val shards. */
static float validation_loss(const TrainConfig *tc, CpuModel *m, Data *d, PackedBatch *b)
{
    double sum = 0.0, count = 0.0;
    dataloader_reset(&d->val);
    for (int i = 0; i < tc->val_max_batches; i++) {
        dataloader_next(&d->val, b);
        if (!tc->doc_mask) packed_batch_make_row_causal(b);
        count += packed_batch_count_targets(b);
        sum += cpu_model_forward(m, b, 1); /* loss_count 1: the sum over the batch's targets */
    }
    return (float)(sum / (count > 0 ? count : 1.0));
}

/* Multiple-choice accuracy (--eval, llmc/mc_eval.h) over every example. */
static float mc_accuracy(const TrainConfig *tc, CpuModel *m, const McSet *set, PackedBatch *b)
{
    McRun run;
    mc_run_begin(&run, set, b->T, 0, 1, tc->eval_file);
    while (mc_run_fill(&run, b, !tc->doc_mask)) {
        cpu_model_forward(m, b, 1);
        mc_run_score(&run, m->losses);
    }
    const float accuracy = (float)run.correct / (float)(run.examples > 0 ? run.examples : 1);
    mc_run_free(&run);
    return accuracy;
}

/* The model file (bf16) and the single rank's state file (fp32 weights, AdamW moments, loader position). */
static void save_checkpoint(const TrainConfig *tc, const CpuModel *m, const Data *d, int step, int skipped_in_a_row)
{
    const size_t P = m->layout.total;
    char path[4200];
    uint16_t *bf16 = (uint16_t *)malloc_or_die(P * sizeof(uint16_t));
    for (size_t i = 0; i < P; i++) bf16[i] = bf16_bits_from_float(m->params[i]);
    TrainStateHeader h;
    memset(&h, 0, sizeof(h));
    checkpoint_model_path(path, sizeof(path), tc->output_dir, step);
    h.model_hash = checkpoint_write_model(path, &m->cfg, bf16, P);
    DataLoaderState ls;
    memset(&ls, 0, sizeof(ls));
    if (d->use_shards) ls = dataloader_get_state(&d->train);
    h.step = (uint64_t)step;
    h.num_ranks = 1;
    h.seed = tc->seed;
    h.opt_size = P;
    h.loader_bytes = sizeof(ls);
    h.skipped_in_a_row = (uint64_t)skipped_in_a_row;
    checkpoint_state_path(path, sizeof(path), tc->output_dir, step, 0);
    checkpoint_write_state(path, &h, &ls, m->params, m->adam_m, m->adam_v);
    checkpoint_prune(tc->output_dir, tc->keep_last, 1);
    printf("checkpoint: step %d written to %s (model + training state)\n", step, tc->output_dir);
    free(bf16);
}

/*
 * -y 1: the newest checkpoint in -o whose state file is whole and belongs to
 * its model file. Fills *cfg, the optimizer state (*opt = master | m | v,
 * the whole model) and the loader state; returns its step, or -1 if none.
 */
static int resume_from_checkpoint(const TrainConfig *tc, ModelConfig *cfg, float **opt, DataLoaderState *ls,
                                  int *skipped_in_a_row)
{
    enum { MAX_CHECKPOINTS = 100000 };
    int *steps = (int *)malloc_or_die(MAX_CHECKPOINTS * sizeof(int));
    const int n = checkpoint_list_steps(tc->output_dir, steps, MAX_CHECKPOINTS);
    int resumed = -1;
    for (int i = n - 1; i >= 0 && resumed < 0; i--) {
        char model_path[4200];
        int version;
        checkpoint_model_path(model_path, sizeof(model_path), tc->output_dir, steps[i]);
        checkpoint_read_model_config(model_path, cfg, &version);
        ParamLayout layout;
        param_layout_init(&layout, cfg);
        const size_t P = layout.total;
        require_host_memory(model_path, P, 16.0, "training in fp32 (parameters, gradients, AdamW moments)");
        uint16_t *bf16 = (uint16_t *)malloc_or_die(P * sizeof(uint16_t));
        *opt = (float *)malloc_or_die(3 * P * sizeof(float));
        TrainStateHeader h;
        const char *bad = checkpoint_load(tc->output_dir, steps[i], 0, bf16, P, &h, ls, sizeof(*ls), *opt, P);
        if (!bad && (h.num_ranks != 1 || h.opt_offset != 0))
            bad = "it was written by a run of several ranks (train_cpu resumes single-rank checkpoints)";
        free(bf16);
        if (bad) {
            fprintf(stderr, "warning: checkpoint of step %d in '%s' is unusable: %s; trying an older one\n", steps[i],
                    tc->output_dir, bad);
            free(*opt);
            *opt = NULL;
            continue;
        }
        resumed = steps[i];
        *skipped_in_a_row = (int)h.skipped_in_a_row;
        if (h.seed != tc->seed)
            printf("resume: note: the checkpoint was trained with --seed %llu\n", (unsigned long long)h.seed);
        printf("resume: continuing from step %d (%s)\n", resumed, model_path);
    }
    free(steps);
    return resumed;
}

int main(int argc, char **argv)
{
    TrainConfig tc;
    train_config_from_args(&tc, TRAINER_CPU, argc, argv);
    train_config_output_dir(&tc);

    /* ---- the model: a checkpoint to resume, a model file, or random init from a descriptor */
    ModelConfig cfg;
    float *resumed_opt = NULL;
    DataLoaderState loader_state;
    int first_step = 0, skipped_in_a_row = 0, version = 0;
    if (tc.resume) {
        first_step = resume_from_checkpoint(&tc, &cfg, &resumed_opt, &loader_state, &skipped_in_a_row);
        if (first_step < 0) printf("resume: no usable checkpoint in '%s'; starting from -e %s\n", tc.output_dir, tc.model);
        else printf("resume: the model comes from the checkpoint; -e %s is not used\n", tc.model);
    }
    if (!resumed_opt) {
        first_step = 0;
        version = model_source_config(tc.model, &cfg);
    }
    model_config_check_seq_len(&cfg, tc.T);
    ParamLayout layout;
    param_layout_init(&layout, &cfg);
    require_host_memory(tc.model, layout.total, 16.0, "training in fp32 (parameters, gradients, AdamW moments)");
    model_config_print(&cfg, stdout);

    PackingMode mode = PACK_BESTFIT;
    packing_mode_parse(tc.packing, &mode); /* one of the two: train_config_check said so */
    Data data;
    data_init(&data, &tc, &cfg, mode);
    McSet eval_set = {0};
    char eval_error[1024];
    if (tc.eval_file && !mc_read(tc.eval_file, cfg.vocab_size, &eval_set, eval_error, sizeof(eval_error)))
        die("--eval: %s", eval_error);
    if (tc.eval_file) mc_require_fits(&eval_set, tc.T, tc.eval_file); /* now, not at the first evaluation */
    if (resumed_opt && data.use_shards) dataloader_set_state(&data.train, &loader_state);
    const int grad_accum = train_config_grad_accum(&tc, 1);
    const long tokens_per_step = (long)tc.B * tc.T * grad_accum;

    CpuModel model;
    cpu_model_create(&model, &cfg, tc.B, tc.T, tc.seed);
    const size_t P = layout.total;
    if (resumed_opt) { /* the fp32 master weights and moments: bit-identical continuation */
        memcpy(model.params, resumed_opt, P * sizeof(float));
        memcpy(model.adam_m, resumed_opt + P, P * sizeof(float));
        memcpy(model.adam_v, resumed_opt + 2 * P, P * sizeof(float));
        free(resumed_opt);
    } else if (version) {
        uint16_t *bf16 = (uint16_t *)malloc_or_die(P * sizeof(uint16_t));
        checkpoint_read_model_params(tc.model, bf16, P);
        for (size_t i = 0; i < P; i++) model.params[i] = float_from_bf16_bits(bf16[i]);
        free(bf16);
        printf("model: loaded %s\n", tc.model);
    }
    printf("parameters: %zu | AdamW lr %g (%s, warmup %d, final x%g) wd %g clip %g | seed %llu\n", P, (double)tc.lr,
           tc.schedule, tc.warmup_steps, (double)tc.final_lr_frac, (double)tc.weight_decay, (double)tc.grad_clip,
           tc.seed);
    printf("batch: %d rows x %d tokens x %d micro-steps = %ld tokens per step; %s packing, document mask %s\n", tc.B,
           tc.T, grad_accum, tokens_per_step, tc.packing, tc.doc_mask ? "on" : "off (causal over rows)");

    LRScheduler sched;
    lr_scheduler_init(&sched, tc.schedule, tc.lr, tc.warmup_steps, tc.max_steps, tc.final_lr_frac);
    Logger logger;
    logger_init(&logger, tc.output_dir, first_step);
    OutFile dump = {0}; /* --dump-batches: written as DUMP.tmp, renamed when the run ends */
    if (tc.dump_batches) out_file_open(&dump, tc.dump_batches);
    PackedBatch *micro = (PackedBatch *)malloc_or_die(grad_accum * sizeof(PackedBatch));
    for (int i = 0; i < grad_accum; i++) packed_batch_alloc(&micro[i], tc.B, tc.T);
    double train_seconds = 0.0;
    int timed_steps = 0;
    float last_loss = NAN, last_val = NAN;

    /* ---- the training loop, as train_gpt's: step == max_steps only evaluates and saves */
    for (int step = first_step; step <= tc.max_steps; step++) {
        const int last = step == tc.max_steps;
        if (data.use_val && (step % tc.val_every == 0 || last)) {
            last_val = validation_loss(&tc, &model, &data, &micro[0]);
            printf("step %d: val loss %.6f\n", step, (double)last_val);
            logger_log_val(&logger, step, last_val);
        }
        if (tc.eval_file && tc.val_every > 0 && (step % tc.val_every == 0 || last)) {
            const float accuracy = mc_accuracy(&tc, &model, &eval_set, &micro[0]);
            printf("step %d: eval accuracy %.4f (%d examples)\n", step, (double)accuracy, eval_set.num_examples);
            logger_log_eval(&logger, step, accuracy);
        }
        if (tc.output_dir && step > first_step && ((tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0) || last))
            save_checkpoint(&tc, &model, &data, step, skipped_in_a_row);
        if (last) break;

        const double t0 = now_seconds();
        int targets = 0;
        for (int i = 0; i < grad_accum; i++) {
            data_next(&data, &tc, &micro[i]);
            targets += packed_batch_count_targets(&micro[i]);
            if (tc.dump_batches) packed_batch_write(dump.f, dump.tmp, &micro[i]);
        }
        const float lr = lr_at(&sched, step);
        float loss = 0.0f;
        cpu_model_zero_grad(&model);
        for (int i = 0; i < grad_accum; i++) {
            loss += cpu_model_forward(&model, &micro[i], targets);
            cpu_model_backward(&model, &micro[i]);
        }
        model.adam_step = step; /* AdamW's bias correction counts steps, skipped ones too, as train_gpt's */
        const float norm = isfinite(loss) ? cpu_model_update(&model, lr, tc.weight_decay, ADAM_BETA1, ADAM_BETA2,
                                                             ADAM_EPS, tc.grad_clip)
                                          : NAN;
        if (!isfinite(loss) || !isfinite(norm)) {
            skipped_in_a_row++;
            printf("step %d: loss %f, grad norm %f are not finite: update skipped (%d in a row)\n", step + 1,
                   (double)loss, (double)norm, skipped_in_a_row);
            if (skipped_in_a_row >= tc.max_skips)
                die("%d steps in a row had a non-finite loss or gradient norm (--max-skips %d): the run diverged; "
                    "try a lower -l or --grad-clip", skipped_in_a_row, tc.max_skips);
            continue;
        }
        skipped_in_a_row = 0;
        const double seconds = now_seconds() - t0;
        train_seconds += seconds;
        timed_steps++;
        char eta[32];
        format_eta(eta, sizeof(eta), train_seconds / timed_steps * (tc.max_steps - step - 1));
        printf("step %5d/%d | loss %.6f | lr %.2e | norm %.4f | %.1f ms | %.0f tok/s | ETA %s\n", step + 1,
               tc.max_steps, (double)loss, (double)lr, (double)norm, seconds * 1e3, tokens_per_step / seconds, eta);
        fflush(stdout);
        logger_log_train(&logger, step, loss, lr, norm);
        last_loss = loss;
    }
    if (timed_steps > 0) {
        printf("done: %d steps, mean %.1f ms/step, %.0f tokens/s; last train loss %.6f", timed_steps,
               1e3 * train_seconds / timed_steps, tokens_per_step * timed_steps / train_seconds, (double)last_loss);
        if (data.use_val) printf(", last val loss %.6f", (double)last_val);
        printf("\n");
    }
    if (data.use_shards) dataloader_print_stats(&data.train, stdout);

    for (int i = 0; i < grad_accum; i++) packed_batch_free(&micro[i]);
    free(micro);
    if (tc.dump_batches) out_file_commit(&dump);
    logger_free(&logger);
    data_free(&data);
    mc_free(&eval_set);
    cpu_model_free(&model);
    return 0;
}
