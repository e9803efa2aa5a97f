/*
 * train_config.h — the training run's settings: ONE flag language for both
 * trainers, train_gpt (GPU) and train_cpu (the fp32 CPU reference): the
 * command line, its --help text, each trainer's defaults and validation.
 *
 * Flags follow llm.c's train_gpt2.cu where the meaning is the same
 * (-i -j -e -o -b -t -d -x -l -u -q -k -c -v -m -s -g -n -nk -y -z -r),
 * plus long flags for packlm's own settings (--packing, --doc-mask, --seed,
 * --grad-clip, --dump-batches, --dump-grads, --max-skips,
 * --check).
 *
 * Each flag is one row of the table TRAIN_FLAGS (name, kind of value, the
 * TrainConfig field it sets, accepted range, which trainers take it, its
 * help line); one parser serves them all, and --help is printed from the
 * table with the defaults of the trainer asking. A flag means the same in
 * both trainers; a flag one trainer does not support is refused by name.
 * train_config_parse never exits: it returns NULL on success or a message
 * naming the bad flag and quoting its value as typed, so the trainer can
 * print it and tests can check it.
 * Shapes: one optimizer step sees total_batch_tokens = B * T * num_ranks *
 * grad_accum_steps tokens; -d must be such a multiple (0 = one micro-batch).
 */
#ifndef PACKLM_TRAIN_CONFIG_H
#define PACKLM_TRAIN_CONFIG_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "utils.h"

/* The programs that read this command line; a flag row lists those that take it. */
typedef enum { TRAINER_GPU = 1, TRAINER_CPU = 2 } Trainer;
#define TRAINER_BOTH (TRAINER_GPU | TRAINER_CPU)

static inline const char *trainer_name(Trainer t) { return t == TRAINER_GPU ? "train_gpt" : "train_cpu"; }

typedef struct {
    Trainer trainer;            /* the program these settings are for */
    const char *train_pattern;  /* -i: glob of training shards (train_cpu: or "synthetic") */
    const char *val_pattern;    /* -j: glob of validation shards ("" = none) */
    const char *model;          /* -e: descriptor (gpt2:d12) or model file path */
    const char *output_dir;     /* -o: main.log and checkpoints (NULL = none) */
    const char *dump_batches;   /* --dump-batches: file for every micro-batch (NULL = none) */
    const char *dump_grads;     /* --dump-grads: file for the first step's gradients (NULL = none) */
    const char *schedule;       /* -k: cosine | linear | constant | wsd */
    const char *packing;        /* --packing: chunk | bestfit */
    int B, T;                   /* -b rows per micro-batch, -t tokens per row */
    long total_batch_tokens;    /* -d: tokens per optimizer step (all ranks, all micro-steps); 0 = B*T*ranks */
    int max_steps;              /* -x */
    float lr;                   /* -l peak learning rate */
    int warmup_steps;           /* -u */
    float final_lr_frac;        /* -q: final lr = lr * final_lr_frac */
    float weight_decay;         /* -c */
    int val_every;              /* -v: steps between validations (0 = never) */
    int val_max_batches;        /* -m */
    const char *eval_file;      /* --eval: multiple-choice eval file, llm.c's HellaSwag .bin (NULL = none) */
    int sample_every;           /* -s: steps between samples (0 = never) */
    int sample_tokens;          /* -g */
    int checkpoint_every;       /* -n: steps between checkpoints (0 = only at the end) */
    int keep_last;              /* -nk: checkpoints kept (0 = all) */
    int resume;                 /* -y 1: continue from the latest checkpoint in -o */
    int zero_stage;             /* -z: 0 all-reduce grads, 1 shard optimizer state, 2 shard grads too */
    const char *rendezvous;     /* --rendezvous: directory where srun-launched ranks meet (shared filesystem) */
    float dist_timeout;         /* --dist-timeout: seconds to wait for a peer rank before giving up */
    int recompute;              /* -r */
    int doc_mask;               /* --doc-mask 1: attention stays inside documents; 0: causal over rows */
    int doc_token;              /* --doc-token: the token that starts every document of the shards */
    const char *attention_path; /* --attention: auto | sm80 | sm90 (train_gpt's attention kernels) */
    unsigned long long seed;    /* --seed: init, data order, stochastic rounding */
    float grad_clip;            /* --grad-clip: global-norm clip (0 = off) */
    int max_skips;              /* --max-skips: abort after this many non-finite steps in a row */
    int check_only;             /* --check: validate everything that needs no GPU, print the plan, exit */
} TrainConfig;

#define TRAIN_CPU_DEFAULT_MODEL "gpt2:d2,C=64,NH=4,T=64"

static inline void train_config_defaults(TrainConfig *c, Trainer trainer)
{
    memset(c, 0, sizeof(*c));
    c->trainer = trainer;
    c->train_pattern = "data/fortunes_train_*.bin";
    c->val_pattern = "data/fortunes_val_*.bin";
    c->schedule = "cosine";
    c->packing = "bestfit";
    c->warmup_steps = -1; /* not given: min(50, max_steps / 10), set after parsing */
    c->final_lr_frac = 0.1f;
    c->weight_decay = 0.1f;
    c->val_every = 25;
    c->val_max_batches = 4;
    c->keep_last = 2;
    c->doc_mask = 1;
    c->doc_token = 50256; /* GPT-2's end-of-text (shard.h's SHARD_EOT) */
    c->attention_path = "auto";
    c->seed = 1337;
    c->grad_clip = 1.0f;
    c->max_skips = 5;
    if (trainer == TRAINER_GPU) {
        c->model = "gpt2:d12";
        c->B = 16;
        c->T = 1024;
        c->total_batch_tokens = 16384;
        c->max_steps = 200;
        c->lr = 6e-4f;
        c->sample_every = 100;
        c->sample_tokens = 64;
        c->rendezvous = ".";
        c->dist_timeout = 600.0f;
    } else { /* a tiny model that trains in seconds on two cores */
        c->model = TRAIN_CPU_DEFAULT_MODEL;
        c->B = 4;
        c->T = 64;
        c->total_batch_tokens = 0;
        c->max_steps = 50;
        c->lr = 3e-3f;
    }
}

/* How a flag's value is read, and the type of the TrainConfig field it sets. */
typedef enum {
    FLAG_TEXT,   /* const char *, the argv string itself */
    FLAG_INT,    /* int, a decimal integer in [lo, hi] */
    FLAG_LONG,   /* long, a decimal integer in [lo, hi] */
    FLAG_U64,    /* unsigned long long, a decimal integer in [lo, hi] */
    FLAG_FLOAT,  /* float, a real number in [lo, hi] */
    FLAG_SWITCH, /* int set to 1; the only kind that takes no value */
} TrainFlagKind;

/* One flag: the --help section it opens (or NULL), its name, its kind, the
   field it sets, the range of its value (whole numbers for the integer
   kinds, unused for text), the trainers that take it, the name of its value
   and its help line (the default is appended from the trainer's defaults). */
typedef struct {
    const char *section;
    const char *flag;
    TrainFlagKind kind;
    size_t offset;
    double lo, hi;
    unsigned trainers;
    const char *value_name;
    const char *help;
} TrainFlag;

#define TRAIN_FLAG(section, f, kind, field, lo, hi, trainers, value_name, help) \
    {section, f, kind, offsetof(TrainConfig, field), lo, hi, trainers, value_name, help}

/* Every flag but -h/--help, in the order of the --help text. */
static const TrainFlag TRAIN_FLAGS[] = {
    TRAIN_FLAG("data", "-i", FLAG_TEXT, train_pattern, 0, 0, TRAINER_BOTH, "GLOB",
               "training shards (train_cpu: 'synthetic' = one fixed synthetic batch)"),
    TRAIN_FLAG(NULL, "-j", FLAG_TEXT, val_pattern, 0, 0, TRAINER_BOTH, "GLOB", "validation shards, \"\" = none"),
    TRAIN_FLAG(NULL, "--packing", FLAG_TEXT, packing, 0, 0, TRAINER_BOTH, "MODE", "documents into rows: chunk | bestfit"),
    TRAIN_FLAG(NULL, "--doc-mask", FLAG_INT, doc_mask, 0, 1, TRAINER_BOTH, "1|0",
               "1: attention stays inside each document; 0: plain causal over the row"),
    TRAIN_FLAG(NULL, "--doc-token", FLAG_INT, doc_token, 0, 2147483647.0, TRAINER_BOTH, "ID",
               "the token that starts every document of the shards (GPT-2's end-of-text 50256;\n"
               "                      128000, Llama 3's begin-of-text, for llm.c's Llama 3 shards)"),
    TRAIN_FLAG(NULL, "--attention", FLAG_TEXT, attention_path, 0, 0, TRAINER_GPU, "PATH",
               "attention kernels: auto (sm90 on a Hopper card when built for sm_90a, else sm80) | sm80 | sm90"),
    TRAIN_FLAG(NULL, "--dump-batches", FLAG_TEXT, dump_batches, 0, 0, TRAINER_BOTH, "FILE",
               "write every micro-batch (B, T, S, inputs, targets, pos, cu_seqlens)"),
    TRAIN_FLAG(NULL, "--dump-grads", FLAG_TEXT, dump_grads, 0, 0, TRAINER_GPU, "FILE",
               "write the first step's gradients (bf16, params.h order, before clipping)"),
    TRAIN_FLAG("model", "-e", FLAG_TEXT, model, 0, 0, TRAINER_BOTH, "MODEL",
               "descriptor (gpt2:d12, gpt2:d24, llama:1B, llama:1B,L=2,C=128,...) or a model file\n"
               "                      (llm.c gpt2_124M.bin / _bf16.bin, or one written by -o)"),
    TRAIN_FLAG("batch", "-b", FLAG_INT, B, 1, 1 << 20, TRAINER_BOTH, "N", "rows per micro-batch"),
    TRAIN_FLAG(NULL, "-t", FLAG_INT, T, 1, 1 << 20, TRAINER_BOTH, "N", "tokens per row"),
    TRAIN_FLAG(NULL, "-d", FLAG_LONG, total_batch_tokens, 0, 1L << 40, TRAINER_BOTH, "N",
               "tokens per optimizer step, 0 = B*T*ranks; a multiple of that gives gradient accumulation"),
    TRAIN_FLAG("optimization", "-x", FLAG_INT, max_steps, 1, 1000000000L, TRAINER_BOTH, "N", "optimizer steps"),
    TRAIN_FLAG(NULL, "-l", FLAG_FLOAT, lr, 0.0, 1e6, TRAINER_BOTH, "LR", "peak learning rate"),
    TRAIN_FLAG(NULL, "-u", FLAG_INT, warmup_steps, -1, 1000000000L, TRAINER_BOTH, "N",
               "warmup steps, -1 = min(50, -x/10)"),
    TRAIN_FLAG(NULL, "-q", FLAG_FLOAT, final_lr_frac, 0.0, 1.0, TRAINER_BOTH, "F", "final lr as a fraction of -l"),
    TRAIN_FLAG(NULL, "-k", FLAG_TEXT, schedule, 0, 0, TRAINER_BOTH, "NAME", "schedule: cosine | linear | constant | wsd"),
    TRAIN_FLAG(NULL, "-c", FLAG_FLOAT, weight_decay, 0.0, 10.0, TRAINER_BOTH, "WD", "weight decay on matrices"),
    TRAIN_FLAG(NULL, "--grad-clip", FLAG_FLOAT, grad_clip, 0.0, 1e9, TRAINER_BOTH, "G",
               "clip the global gradient norm to G, 0 = off"),
    TRAIN_FLAG(NULL, "--seed", FLAG_U64, seed, 0, 1L << 62, TRAINER_BOTH, "S", "init, data order and rounding seed"),
    TRAIN_FLAG(NULL, "--max-skips", FLAG_INT, max_skips, 1, 1000000, TRAINER_BOTH, "K",
               "end the run after K non-finite steps in a row"),
    TRAIN_FLAG("evaluation and output", "-v", FLAG_INT, val_every, 0, 1000000000L, TRAINER_BOTH, "N",
               "validation loss every N steps, 0 = never"),
    TRAIN_FLAG(NULL, "-m", FLAG_INT, val_max_batches, 1, 1000000000L, TRAINER_BOTH, "N", "validation batches"),
    TRAIN_FLAG(NULL, "--eval", FLAG_TEXT, eval_file, 0, 0, TRAINER_BOTH, "FILE",
               "multiple-choice accuracy every -v steps on FILE (llm.c's HellaSwag .bin;\n"
               "                      dev/data/hellaswag.py writes it), main.log 'eval' lines"),
    TRAIN_FLAG(NULL, "-s", FLAG_INT, sample_every, 0, 1000000000L, TRAINER_GPU, "N",
               "print a sample every N steps, 0 = never"),
    TRAIN_FLAG(NULL, "-g", FLAG_INT, sample_tokens, 1, 1 << 20, TRAINER_GPU, "N", "sample length in tokens"),
    TRAIN_FLAG(NULL, "-o", FLAG_TEXT, output_dir, 0, 0, TRAINER_BOTH, "DIR", "output directory: main.log and checkpoints"),
    TRAIN_FLAG(NULL, "-n", FLAG_INT, checkpoint_every, 0, 1000000000L, TRAINER_BOTH, "N",
               "checkpoint every N steps, 0 = only at the end when -o is set"),
    TRAIN_FLAG(NULL, "-nk", FLAG_INT, keep_last, 0, 1000000, TRAINER_BOTH, "K", "keep the last K checkpoints, 0 = all"),
    TRAIN_FLAG(NULL, "-y", FLAG_INT, resume, 0, 1, TRAINER_BOTH, "1|0", "resume from the latest checkpoint in -o"),
    TRAIN_FLAG(NULL, "--check", FLAG_SWITCH, check_only, 0, 1, TRAINER_GPU, "",
               "check flags, model, shards and checkpoints without a GPU, print the plan, exit"),
    TRAIN_FLAG("multi-GPU (one process per GPU: mpirun, or srun without MPI)", "-z", FLAG_INT, zero_stage, 0, 2,
               TRAINER_GPU, "N",
               "ZeRO stage: 0 all-reduce gradients, 1 shard fp32 master weights + AdamW moments,\n"
               "                      2 shard gradients too"),
    TRAIN_FLAG(NULL, "--rendezvous", FLAG_TEXT, rendezvous, 0, 0, TRAINER_GPU, "DIR",
               "srun launches: ranks meet through a file in DIR, on a filesystem every node shares"),
    TRAIN_FLAG(NULL, "--dist-timeout", FLAG_FLOAT, dist_timeout, 1.0, 1e6, TRAINER_GPU, "S",
               "give up (and end the job) after S seconds waiting for a peer rank"),
    TRAIN_FLAG("memory", "-r", FLAG_INT, recompute, 0, 2, TRAINER_GPU, "N", "activation recompute: 0 keep all, 1 recompute GELU/SwiGLU, 2 also the norms"),
};
#define TRAIN_NUM_FLAGS (sizeof(TRAIN_FLAGS) / sizeof(TRAIN_FLAGS[0]))

/* A flag's value in *c as text (for --help's defaults and --check's plan). */
static inline void train_flag_format(const TrainFlag *f, const TrainConfig *c, char *buf, size_t len)
{
    const void *field = (const char *)c + f->offset;
    if (f->kind == FLAG_TEXT) {
        const char *s = *(const char *const *)field;
        snprintf(buf, len, "%s", !s ? "none" : s[0] ? s : "\"\"");
    } else if (f->kind == FLAG_INT || f->kind == FLAG_SWITCH) snprintf(buf, len, "%d", *(const int *)field);
    else if (f->kind == FLAG_LONG) snprintf(buf, len, "%ld", *(const long *)field);
    else if (f->kind == FLAG_U64) snprintf(buf, len, "%llu", *(const unsigned long long *)field);
    else snprintf(buf, len, "%g", (double)*(const float *)field);
}

static inline void train_config_print_help(FILE *out, Trainer trainer)
{
    TrainConfig defaults;
    train_config_defaults(&defaults, trainer);
    fprintf(out, "usage: %s [flags]   (every flag but --check takes one value)\n", trainer_name(trainer));
    if (trainer == TRAINER_CPU)
        fprintf(out, "Trains with the fp32 CPU reference (llmc/model_cpu.h); the flags mean what they mean in "
                     "train_gpt.\n");
    const char *section = NULL;
    for (size_t k = 0; k < TRAIN_NUM_FLAGS; k++) {
        const TrainFlag *f = &TRAIN_FLAGS[k];
        if (f->section) section = f->section;
        if (!(f->trainers & trainer)) continue;
        if (section) fprintf(out, "%s\n", section);
        section = NULL;
        char name[64], value[128];
        snprintf(name, sizeof(name), "%s %s", f->flag, f->value_name);
        train_flag_format(f, &defaults, value, sizeof(value));
        fprintf(out, "  %-19s %s", name, f->help);
        if (f->kind == FLAG_SWITCH) fprintf(out, "\n");
        else fprintf(out, " (default %s)\n", value);
    }
    fprintf(out, "  -h, --help          this text\n");
}

/* Read `text` as the value of flag f into its field of *c. 0 on success, else the message is in err. */
static inline int train_flag_set(const TrainFlag *f, const char *text, TrainConfig *c, char *err, size_t errlen)
{
    void *field = (char *)c + f->offset;
    const int integer = f->kind != FLAG_FLOAT;
    char *end = NULL;
    double v = 0.0;
    long whole = 0;
    errno = 0;
    if (f->kind == FLAG_TEXT) {
        *(const char **)field = text;
        return 0;
    }
    if (integer) whole = strtol(text, &end, 10), v = (double)whole;
    else v = strtod(text, &end);
    if (end == text || *end != '\0' || v != v || (errno && errno != ERANGE)) {
        snprintf(err, errlen, "flag %s: '%s' is not %s", f->flag, text, integer ? "an integer" : "a number");
        return -1;
    }
    if (errno == ERANGE || v < f->lo || v > f->hi) { /* the value as typed, never a wrapped one */
        if (integer) snprintf(err, errlen, "flag %s: %s is out of range [%.0f, %.0f]", f->flag, text, f->lo, f->hi);
        else snprintf(err, errlen, "flag %s: %s is out of range [%g, %g]", f->flag, text, f->lo, f->hi);
        return -1;
    }
    if (f->kind == FLAG_INT) *(int *)field = (int)whole;
    else if (f->kind == FLAG_LONG) *(long *)field = whole;
    else if (f->kind == FLAG_U64) *(unsigned long long *)field = (unsigned long long)whole;
    else *(float *)field = (float)v;
    return 0;
}

static inline const char *train_config_check(const TrainConfig *c, char *err, size_t errlen);

/*
 * Parse argv into *c (the trainer's defaults first). Returns NULL on
 * success, "help" when -h/--help was given, else err filled with a message
 * naming the flag.
 */
static inline const char *train_config_parse(TrainConfig *c, Trainer trainer, int argc, char **argv, char *err,
                                             size_t errlen)
{
    train_config_defaults(c, trainer);
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) return "help";
        size_t k = 0;
        while (k < TRAIN_NUM_FLAGS && strcmp(flag, TRAIN_FLAGS[k].flag) != 0) k++;
        if (k == TRAIN_NUM_FLAGS) {
            snprintf(err, errlen, "unknown flag '%s' (see --help)", flag);
            return err;
        }
        const TrainFlag *f = &TRAIN_FLAGS[k];
        if (!(f->trainers & trainer)) {
            snprintf(err, errlen, "flag %s (%.*s) is not supported by %s, only by %s", flag,
                     (int)strcspn(f->help, "\n"), f->help, trainer_name(trainer),
                     trainer_name((Trainer)(f->trainers & ~(unsigned)trainer)));
            return err;
        }
        if (f->kind == FLAG_SWITCH) {
            *(int *)((char *)c + f->offset) = 1;
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(err, errlen, "flag %s needs a value (see --help)", flag);
            return err;
        }
        if (train_flag_set(f, argv[++i], c, err, errlen) != 0) return err;
    }
    if (c->warmup_steps < 0) c->warmup_steps = c->max_steps / 10 < 50 ? c->max_steps / 10 : 50;
    return train_config_check(c, err, errlen);
}

/* Settings that are valid one by one but not together, or not implemented. */
static inline const char *train_config_check(const TrainConfig *c, char *err, size_t errlen)
{
    const char *schedules[] = {"cosine", "linear", "constant", "wsd"};
    int schedule_ok = 0;
    for (int i = 0; i < 4; i++) schedule_ok |= strcmp(c->schedule, schedules[i]) == 0;
    if (!schedule_ok)
        snprintf(err, errlen, "flag -k: unknown schedule '%s' (cosine, linear, constant or wsd)", c->schedule);
    else if (strcmp(c->packing, "chunk") != 0 && strcmp(c->packing, "bestfit") != 0)
        snprintf(err, errlen, "flag --packing: unknown strategy '%s' (chunk or bestfit)", c->packing);
    else if (strcmp(c->attention_path, "auto") != 0 && strcmp(c->attention_path, "sm80") != 0 &&
             strcmp(c->attention_path, "sm90") != 0)
        snprintf(err, errlen, "flag --attention: unknown path '%s' (auto, sm80 or sm90)", c->attention_path);
    else if (c->total_batch_tokens % ((long)c->B * c->T) != 0)
        snprintf(err, errlen, "flag -d: %ld tokens per step is not a multiple of B*T = %d*%d = %ld",
                 c->total_batch_tokens, c->B, c->T, (long)c->B * c->T);
    else if (c->resume && !c->output_dir)
        snprintf(err, errlen, "flag -y 1 resumes from the checkpoints in -o DIR, but no -o was given");
    else if (c->checkpoint_every > 0 && !c->output_dir)
        snprintf(err, errlen, "flag -n %d asks for checkpoints, but no -o DIR was given to write them to",
                 c->checkpoint_every);
    else if (c->warmup_steps > c->max_steps)
        snprintf(err, errlen, "flag -u %d: more warmup steps than steps (-x %d); give a smaller -u",
                 c->warmup_steps, c->max_steps);
    else
        return NULL;
    return err;
}

/* A trainer's command line, or the end of the process: --help prints the
   trainer's help and exits 0; a bad flag dies with the parser's message. */
static inline void train_config_from_args(TrainConfig *c, Trainer trainer, int argc, char **argv)
{
    char err[512];
    const char *bad = train_config_parse(c, trainer, argc, argv, err, sizeof(err));
    if (bad && strcmp(bad, "help") == 0) {
        train_config_print_help(stdout, trainer);
        exit(0);
    }
    if (bad) die("%s: %s", trainer_name(trainer), bad);
}

/* -o DIR: created when missing; with --check only checked (missing is fine, a file is not). */
static inline void train_config_output_dir(const TrainConfig *c)
{
    if (!c->output_dir) return;
    if (!c->check_only) mkdir(c->output_dir, 0755);
    struct stat st;
    if (stat(c->output_dir, &st) == 0 ? !S_ISDIR(st.st_mode) : !c->check_only)
        die("-o '%s': cannot create the directory", c->output_dir);
}

/* One optimizer step = grad_accum micro-steps of B*T tokens on each of num_ranks ranks. */
static inline int train_config_grad_accum(const TrainConfig *c, int num_ranks)
{
    long per_micro = (long)c->B * c->T * num_ranks;
    if (c->total_batch_tokens == 0) return 1;
    if (c->total_batch_tokens % per_micro != 0)
        die("flag -d: %ld tokens per step is not a multiple of B*T*ranks = %d*%d*%d = %ld", c->total_batch_tokens,
            c->B, c->T, num_ranks, per_micro);
    return (int)(c->total_batch_tokens / per_micro);
}

#endif /* PACKLM_TRAIN_CONFIG_H */
