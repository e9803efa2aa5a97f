/*
 * train_cpu.c — the fp32 CPU reference trainer: a tiny model of either family
 * trained with llmc/model_cpu.h (AdamW, global-norm clipping, an LR schedule
 * from llmc/schedulers.h) on packed batches of B rows x T tokens.
 *
 * Data: the token shards matching -i (default: the embedded corpus
 * data/fortunes_train_*.bin), packed by llmc/dataloader.h; when the default
 * shards are absent, or with -i synthetic, one fixed synthetic packed batch
 * (llmc/synthetic_batch.h) is trained on at every step.
 *
 * `make train` runs it when no GPU is visible. It prints one line per step:
 * loss, learning rate, gradient norm (before clipping) and milliseconds.
 * Run `./train_cpu --help` for the flags.
 */
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "config.h"
#include "dataloader.h"
#include "model_cpu.h"
#include "schedulers.h"
#include "synthetic_batch.h"
#include "utils.h"

#define DEFAULT_DATA "data/fortunes_train_*.bin"
#define SYNTHETIC_DATA "synthetic"

typedef struct {
    const char *data;     /* -i shard pattern, or "synthetic" */
    int data_given;       /* -i was on the command line */
    PackingMode packing;  /* --packing */
    const char *model;    /* -e descriptor */
    int B, T, steps;      /* -b -t -n */
    float lr;             /* -l peak learning rate */
    int warmup;           /* -u warmup steps */
    float final_lr_frac;  /* -q */
    const char *schedule; /* -k */
    float weight_decay;   /* -c */
    float grad_clip;      /* --grad-clip */
    unsigned long long seed; /* -s */
    const char *dump_batches; /* --dump-batches: every step's batch to this file (NULL = none) */
} TrainArgs;

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: train_cpu [flags]\n"
            "Train a tiny model with the fp32 CPU reference (llmc/model_cpu.h).\n"
            "  -i PATTERN        token shards to train on (default " DEFAULT_DATA ", or the\n"
            "                    synthetic batch when those are absent); 'synthetic' = one fixed\n"
            "                    synthetic packed batch (any vocabulary size)\n"
            "  --packing MODE    bestfit | chunk (default bestfit)\n"
            "  -e DESCRIPTOR     model, e.g. gpt2:d2,C=64,NH=4 or llama:1B,L=2,C=64,NH=4,NKV=2,F=128\n"
            "                    (default gpt2:d2,C=64,NH=4,T=64)\n"
            "  -b B              rows per batch (default 4)\n"
            "  -t T              tokens per row (default 64)\n"
            "  -n STEPS          optimizer steps (default 50; -x is the same, as in train_gpt)\n"
            "  -l LR             peak learning rate (default 3e-3)\n"
            "  -u STEPS          linear warmup steps (default 2, at most -n)\n"
            "  -k SCHEDULE       cosine | linear | constant | wsd (default cosine)\n"
            "  -q FRAC           final learning rate as a fraction of the peak (default 0.1)\n"
            "  -c WD             AdamW weight decay on matrices (default 0.1)\n"
            "  --grad-clip CLIP  clip gradients to this global norm, 0 = off (default 1.0)\n"
            "  -s, --seed SEED   seed of the initialisation and the data (default 1337)\n"
            "  --dump-batches FILE  write every step's batch (train_gpt's format; for\n"
            "                    dev/reference/train_ref.py --init fp32)\n"
            "  -h, --help        this text\n");
}

/* Every flag takes one value. */
static const char *const FLAGS[] = {"-i", "--packing", "-e", "-b", "-t", "-n", "-x", "-l", "-u",
                                    "-k", "-q", "-c", "--grad-clip", "-s", "--seed", "--dump-batches"};

static int known_flag(const char *flag)
{
    for (size_t i = 0; i < sizeof(FLAGS) / sizeof(FLAGS[0]); i++)
        if (strcmp(flag, FLAGS[i]) == 0) return 1;
    return 0;
}

static void parse_args(TrainArgs *a, int argc, char **argv)
{
    *a = (TrainArgs){DEFAULT_DATA, 0, PACK_BESTFIT, "gpt2:d2,C=64,NH=4,T=64", 4, 64, 50, 3e-3f, -1, 0.1f, "cosine",
                     0.1f, 1.0f, 1337, NULL};
    for (int i = 1; i < argc; i += 2) {
        const char *flag = argv[i], *value = argv[i + 1];
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) {
            print_usage(stdout);
            exit(0);
        }
        if (!known_flag(flag)) {
            print_usage(stderr);
            die("train_cpu: unknown flag '%s' (see the list above)", flag);
        }
        if (i + 1 >= argc) die("train_cpu: flag %s needs a value", flag);
        if (strcmp(flag, "-i") == 0) a->data = value, a->data_given = 1;
        else if (strcmp(flag, "--packing") == 0) {
            if (!packing_mode_parse(value, &a->packing)) die("--packing: unknown mode '%s' (bestfit or chunk)", value);
        } else if (strcmp(flag, "-e") == 0) a->model = value;
        else if (strcmp(flag, "-b") == 0) a->B = (int)parse_long_or_die(value, "-b (rows per batch)");
        else if (strcmp(flag, "-t") == 0) a->T = (int)parse_long_or_die(value, "-t (tokens per row)");
        else if (strcmp(flag, "-n") == 0 || strcmp(flag, "-x") == 0)
            a->steps = (int)parse_long_or_die(value, "-n (steps)");
        else if (strcmp(flag, "-l") == 0) a->lr = (float)parse_double_or_die(value, "-l (learning rate)");
        else if (strcmp(flag, "-u") == 0) a->warmup = (int)parse_long_or_die(value, "-u (warmup steps)");
        else if (strcmp(flag, "-k") == 0) a->schedule = value;
        else if (strcmp(flag, "-q") == 0) a->final_lr_frac = (float)parse_double_or_die(value, "-q (final lr fraction)");
        else if (strcmp(flag, "-c") == 0) a->weight_decay = (float)parse_double_or_die(value, "-c (weight decay)");
        else if (strcmp(flag, "--grad-clip") == 0) a->grad_clip = (float)parse_double_or_die(value, "--grad-clip");
        else if (strcmp(flag, "--dump-batches") == 0) a->dump_batches = value;
        else { /* -s, --seed */
            const long seed = parse_long_or_die(value, "-s (seed)");
            if (seed < 0) die("-s (seed) must be >= 0 (got %ld)", seed);
            a->seed = (unsigned long long)seed;
        }
    }
    if (a->B < 1 || a->B > 4096) die("-b (rows per batch) must be in [1, 4096] (got %d)", a->B);
    if (a->T < 1 || a->T > 65536) die("-t (tokens per row) must be in [1, 65536] (got %d)", a->T);
    if (a->steps < 1) die("-n (steps) must be >= 1 (got %d)", a->steps);
    if (a->warmup == -1) a->warmup = a->steps < 2 ? a->steps : 2; /* default: 2, or fewer for tiny runs */
    if (!(a->weight_decay >= 0.0f)) die("-c (weight decay) must be >= 0 (got %g)", (double)a->weight_decay);
    if (!(a->grad_clip >= 0.0f)) die("--grad-clip must be >= 0 (got %g)", (double)a->grad_clip);
}

/* 1 if any file matches the glob pattern. */
static int pattern_matches(const char *pattern)
{
    glob_t g;
    const int found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    return found;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

int main(int argc, char **argv)
{
    TrainArgs args;
    parse_args(&args, argc, argv);
    ModelConfig cfg;
    model_config_parse(&cfg, args.model);
    model_config_check_seq_len(&cfg, args.T);
    LRScheduler sched;
    lr_scheduler_init(&sched, args.schedule, args.lr, args.warmup, args.steps, args.final_lr_frac);

    /* shards when given or present, else the fixed synthetic batch */
    const char *family = cfg.family == MODEL_GPT2 ? "gpt2" : "llama";
    const int use_shards = strcmp(args.data, SYNTHETIC_DATA) != 0 && (args.data_given || pattern_matches(args.data));
    PackedBatch batch;
    packed_batch_alloc(&batch, args.B, args.T);
    DataLoader loader;
    if (use_shards) {
        dataloader_init(&loader, args.data, args.B, args.T, 0, 1, args.packing, args.seed, cfg.vocab_size);
        printf("no GPU: training a tiny %s with the fp32 CPU reference on %s (%d shard%s, %lld tokens, "
               "%s packing, B=%d, T=%d)\n",
               family, args.data, loader.num_shards, loader.num_shards == 1 ? "" : "s",
               (long long)loader.num_tokens, packing_mode_name(args.packing), args.B, args.T);
    } else {
        synthetic_batch_random(&batch, cfg.vocab_size, args.T / 2 > 0 ? args.T / 2 : 1, args.seed);
        printf("no GPU: training a tiny %s with the fp32 CPU reference on a fixed synthetic packed batch "
               "(B=%d, T=%d, %d documents and padding segments)%s\n",
               family, args.B, args.T, batch.num_segments,
               args.data_given ? "" : " because no shards match " DEFAULT_DATA);
    }
    model_config_print(&cfg, stdout);

    CpuModel model;
    cpu_model_create(&model, &cfg, args.B, args.T, args.seed);
    printf("parameters: %zu | AdamW lr %g (%s, warmup %d, final x%g) wd %g clip %g | seed %llu\n",
           model.layout.total, (double)args.lr, args.schedule, args.warmup, (double)args.final_lr_frac,
           (double)args.weight_decay, (double)args.grad_clip, args.seed);
    FILE *dump = args.dump_batches ? fopen_or_die(args.dump_batches, "wb") : NULL;
    for (int step = 0; step < args.steps; step++) {
        const double start = now_ms();
        if (use_shards) dataloader_next(&loader, &batch);
        if (dump) packed_batch_write(dump, args.dump_batches, &batch);
        const float lr = lr_at(&sched, step);
        cpu_model_zero_grad(&model);
        const float loss = cpu_model_forward(&model, &batch, 0);
        cpu_model_backward(&model, &batch);
        const float norm = cpu_model_update(&model, lr, args.weight_decay, 0.9f, 0.95f, 1e-8f, args.grad_clip);
        printf("step %4d/%d | loss %.6f | lr %.3e | norm %.4f | %.1f ms\n", step + 1, args.steps, (double)loss,
               (double)lr, (double)norm, now_ms() - start);
        fflush(stdout);
    }
    if (dump) fclose_or_die(dump, args.dump_batches);
    if (use_shards) {
        dataloader_print_stats(&loader, stdout);
        dataloader_free(&loader);
    }
    cpu_model_free(&model);
    packed_batch_free(&batch);
    return 0;
}
