/*
 * train_config.h — the training run's settings: the command line of
 * train_gpt, its --help text, defaults and validation.
 *
 * Flags follow llm.c's train_gpt2.cu where the meaning is the same
 * (-i -j -e -o -b -t -d -x -l -u -q -k -c -v -m -s -g -n -nk -y -z -r),
 * plus long flags for packlm's own settings (--packing, --doc-mask, --seed,
 * --grad-clip, --dump-batches, --dump-grads, --deterministic, --max-skips).
 *
 * Each flag is one row of the table TRAIN_FLAGS (name, kind of value, the
 * TrainConfig field it sets, accepted range); one parser serves them all.
 * train_config_parse never exits: it returns NULL on success or a message
 * naming the bad flag, so the trainer can print it and tests can check it.
 * Shapes: one optimizer step sees total_batch_tokens = B * T * num_ranks *
 * grad_accum_steps tokens; -d must be such a multiple.
 */
#ifndef PACKLM_TRAIN_CONFIG_H
#define PACKLM_TRAIN_CONFIG_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

typedef struct {
    const char *train_pattern;  /* -i: glob of training shards */
    const char *val_pattern;    /* -j: glob of validation shards ("" = none) */
    const char *model;          /* -e: descriptor (gpt2:d12) or model file path */
    const char *output_dir;     /* -o: main.log and checkpoints (NULL = none) */
    const char *dump_batches;   /* --dump-batches: file for every micro-batch (NULL = none) */
    const char *dump_grads;     /* --dump-grads: file for the first step's gradients (NULL = none) */
    const char *schedule;       /* -k: cosine | linear | constant | wsd */
    const char *packing;        /* --packing: chunk | bestfit */
    int B, T;                   /* -b rows per micro-batch, -t tokens per row */
    long total_batch_tokens;    /* -d: tokens per optimizer step (all ranks, all micro-steps) */
    int max_steps;              /* -x */
    float lr;                   /* -l peak learning rate */
    int warmup_steps;           /* -u */
    float final_lr_frac;        /* -q: final lr = lr * final_lr_frac */
    float weight_decay;         /* -c */
    int val_every;              /* -v: steps between validations (0 = never) */
    int val_max_batches;        /* -m */
    int sample_every;           /* -s: steps between samples (0 = never) */
    int sample_tokens;          /* -g */
    int checkpoint_every;       /* -n: steps between checkpoints (0 = only none) */
    int keep_last;              /* -nk: checkpoints kept (0 = all) */
    int resume;                 /* -y 1: continue from the latest checkpoint in -o */
    int zero_stage;             /* -z: 0 all-reduce grads, 1 shard optimizer state, 2 shard grads too */
    const char *rendezvous;     /* --rendezvous: directory where srun-launched ranks meet (shared filesystem) */
    float dist_timeout;         /* --dist-timeout: seconds to wait for a peer rank before giving up */
    int recompute;              /* -r */
    int doc_mask;               /* --doc-mask 1: attention stays inside documents; 0: causal over rows */
    unsigned long long seed;    /* --seed: init, data order, stochastic rounding */
    float grad_clip;            /* --grad-clip: global-norm clip (0 = off) */
    int deterministic;          /* --deterministic 1: bit-identical reruns (deterministic attention backward) */
    int max_skips;              /* --max-skips: abort after this many non-finite steps in a row */
} TrainConfig;

static inline void train_config_defaults(TrainConfig *c)
{
    memset(c, 0, sizeof(*c));
    c->train_pattern = "data/fortunes_train_*.bin";
    c->val_pattern = "data/fortunes_val_*.bin";
    c->model = "gpt2:d12";
    c->schedule = "cosine";
    c->packing = "bestfit";
    c->B = 16;
    c->T = 1024;
    c->total_batch_tokens = 16384;
    c->max_steps = 200;
    c->lr = 6e-4f;
    c->warmup_steps = -1; /* not given: min(50, max_steps / 10), set after parsing */
    c->final_lr_frac = 0.1f;
    c->weight_decay = 0.1f;
    c->val_every = 25;
    c->val_max_batches = 4;
    c->sample_every = 100;
    c->sample_tokens = 64;
    c->keep_last = 2;
    c->doc_mask = 1;
    c->seed = 1337;
    c->grad_clip = 1.0f;
    c->max_skips = 5;
    c->deterministic = 1;
    c->rendezvous = ".";
    c->dist_timeout = 600.0f;
}

static inline void train_config_print_help(FILE *out)
{
    fprintf(out,
        "usage: train_gpt [flags]   (every flag takes one value)\n"
        "data\n"
        "  -i GLOB    training shards            (default data/fortunes_train_*.bin)\n"
        "  -j GLOB    validation shards, \"\" = none (default data/fortunes_val_*.bin)\n"
        "  --packing chunk|bestfit  documents into rows (default bestfit)\n"
        "  --doc-mask 1|0  1: attention stays inside each document; 0: plain causal over the row\n"
        "  --dump-batches FILE  write every micro-batch (B, T, S, inputs, targets, pos, cu_seqlens)\n"
        "  --dump-grads FILE    write the first step's gradients (bf16, params.h order, before clipping)\n"
        "model\n"
        "  -e MODEL   descriptor (gpt2:d12, gpt2:d24, llama:1B, llama:1B,L=2,C=128,...) or a\n"
        "             model file (llm.c gpt2_124M.bin / _bf16.bin, or one written by -o)  (default gpt2:d12)\n"
        "batch\n"
        "  -b N       rows per micro-batch (default 16)\n"
        "  -t N       tokens per row (default 1024)\n"
        "  -d N       tokens per optimizer step; a multiple of B*T gives gradient accumulation (default 16384)\n"
        "optimization\n"
        "  -x N       optimizer steps (default 200)\n"
        "  -l LR      peak learning rate (default 6e-4)\n"
        "  -u N       warmup steps (default 50, or -x/10 when that is smaller)\n"
        "  -q F       final lr as a fraction of -l (default 0.1)\n"
        "  -k NAME    schedule: cosine | linear | constant | wsd (default cosine)\n"
        "  -c WD      weight decay on matrices (default 0.1)\n"
        "  --grad-clip G  clip the global gradient norm to G, 0 = off (default 1.0)\n"
        "  --seed S   init, data order and rounding seed (default 1337)\n"
        "  --deterministic 1|0  bit-identical reruns and resumes; 0 lets attention use atomics (default 1)\n"
        "  --max-skips K  abort after K non-finite steps in a row (default 5)\n"
        "evaluation and output\n"
        "  -v N       validation loss every N steps, 0 = never (default 25)\n"
        "  -m N       validation batches (default 4)\n"
        "  -s N       print a sample every N steps, 0 = never (default 100)\n"
        "  -g N       sample length in tokens (default 64)\n"
        "  -o DIR     output directory: main.log and checkpoints (default: none)\n"
        "  -n N       checkpoint every N steps, 0 = only at the end when -o is set (default 0)\n"
        "  -nk K      keep the last K checkpoints, 0 = all (default 2)\n"
        "  -y 1|0     resume from the latest checkpoint in -o (default 0)\n"
        "multi-GPU (one process per GPU: mpirun, or srun without MPI)\n"
        "  -z N       ZeRO stage: 0 all-reduce gradients, 1 shard fp32 master weights + AdamW moments,\n"
        "             2 shard gradients too (default 0)\n"
        "  --rendezvous DIR  srun launches: ranks meet through a file in DIR, on a filesystem every\n"
        "             node shares (default .)\n"
        "  --dist-timeout S  give up (and end the job) after S seconds waiting for a peer rank (default 600)\n"
        "memory\n"
        "  -r 0       activation recompute (not implemented: only 0)\n"
        "  -h, --help this text\n");
}

/* How a flag's value is read, and the type of the TrainConfig field it sets. */
typedef enum {
    FLAG_TEXT,  /* const char *, the argv string itself */
    FLAG_INT,   /* int, a decimal integer in [lo, hi] */
    FLAG_LONG,  /* long, a decimal integer in [lo, hi] */
    FLAG_U64,   /* unsigned long long, a decimal integer in [lo, hi] */
    FLAG_FLOAT, /* float, a real number in [lo, hi] */
} TrainFlagKind;

/* One flag: its name, its kind, the field it sets, the range of its value
   (lo and hi are whole numbers for the integer kinds, unused for text). */
typedef struct {
    const char *flag;
    TrainFlagKind kind;
    size_t offset;
    double lo, hi;
} TrainFlag;

#define TRAIN_FLAG(f, kind, field, lo, hi) {f, kind, offsetof(TrainConfig, field), lo, hi}

/* Every flag but -h/--help, in the order of the --help text. */
static const TrainFlag TRAIN_FLAGS[] = {
    TRAIN_FLAG("-i", FLAG_TEXT, train_pattern, 0, 0),
    TRAIN_FLAG("-j", FLAG_TEXT, val_pattern, 0, 0),
    TRAIN_FLAG("--packing", FLAG_TEXT, packing, 0, 0),
    TRAIN_FLAG("--doc-mask", FLAG_INT, doc_mask, 0, 1),
    TRAIN_FLAG("--dump-batches", FLAG_TEXT, dump_batches, 0, 0),
    TRAIN_FLAG("--dump-grads", FLAG_TEXT, dump_grads, 0, 0),
    TRAIN_FLAG("-e", FLAG_TEXT, model, 0, 0),
    TRAIN_FLAG("-b", FLAG_INT, B, 1, 1 << 20),
    TRAIN_FLAG("-t", FLAG_INT, T, 1, 1 << 20),
    TRAIN_FLAG("-d", FLAG_LONG, total_batch_tokens, 1, 1L << 40),
    TRAIN_FLAG("-x", FLAG_INT, max_steps, 1, 1000000000L),
    TRAIN_FLAG("-l", FLAG_FLOAT, lr, 0.0, 10.0),
    TRAIN_FLAG("-u", FLAG_INT, warmup_steps, 0, 1000000000L),
    TRAIN_FLAG("-q", FLAG_FLOAT, final_lr_frac, 0.0, 1.0),
    TRAIN_FLAG("-k", FLAG_TEXT, schedule, 0, 0),
    TRAIN_FLAG("-c", FLAG_FLOAT, weight_decay, 0.0, 10.0),
    TRAIN_FLAG("--grad-clip", FLAG_FLOAT, grad_clip, 0.0, 1e9),
    TRAIN_FLAG("--seed", FLAG_U64, seed, 0, 1L << 62),
    TRAIN_FLAG("--deterministic", FLAG_INT, deterministic, 0, 1),
    TRAIN_FLAG("--max-skips", FLAG_INT, max_skips, 1, 1000000),
    TRAIN_FLAG("-v", FLAG_INT, val_every, 0, 1000000000L),
    TRAIN_FLAG("-m", FLAG_INT, val_max_batches, 1, 1000000000L),
    TRAIN_FLAG("-s", FLAG_INT, sample_every, 0, 1000000000L),
    TRAIN_FLAG("-g", FLAG_INT, sample_tokens, 1, 1 << 20),
    TRAIN_FLAG("-o", FLAG_TEXT, output_dir, 0, 0),
    TRAIN_FLAG("-n", FLAG_INT, checkpoint_every, 0, 1000000000L),
    TRAIN_FLAG("-nk", FLAG_INT, keep_last, 0, 1000000),
    TRAIN_FLAG("-y", FLAG_INT, resume, 0, 1),
    TRAIN_FLAG("-z", FLAG_INT, zero_stage, 0, 2),
    TRAIN_FLAG("--rendezvous", FLAG_TEXT, rendezvous, 0, 0),
    TRAIN_FLAG("--dist-timeout", FLAG_FLOAT, dist_timeout, 1.0, 1e6),
    TRAIN_FLAG("-r", FLAG_INT, recompute, 0, 2),
};

/* Read `text` as the value of flag f into its field of *c. 0 on success, else the message is in err. */
static inline int train_flag_set(const TrainFlag *f, const char *text, TrainConfig *c, char *err, size_t errlen)
{
    void *field = (char *)c + f->offset;
    char *end = NULL;
    errno = 0;
    if (f->kind == FLAG_TEXT) {
        *(const char **)field = text;
    } else if (f->kind == FLAG_FLOAT) {
        const double v = strtod(text, &end);
        if (errno || end == text || *end != '\0' || v != v) {
            snprintf(err, errlen, "flag %s: '%s' is not a number", f->flag, text);
            return -1;
        }
        if (v < f->lo || v > f->hi) {
            snprintf(err, errlen, "flag %s: %g is out of range [%g, %g]", f->flag, v, f->lo, f->hi);
            return -1;
        }
        *(float *)field = (float)v;
    } else {
        const long v = strtol(text, &end, 10), lo = (long)f->lo, hi = (long)f->hi;
        if (errno || end == text || *end != '\0') {
            snprintf(err, errlen, "flag %s: '%s' is not an integer", f->flag, text);
            return -1;
        }
        if (v < lo || v > hi) {
            snprintf(err, errlen, "flag %s: %ld is out of range [%ld, %ld]", f->flag, v, lo, hi);
            return -1;
        }
        if (f->kind == FLAG_INT) *(int *)field = (int)v;
        else if (f->kind == FLAG_LONG) *(long *)field = v;
        else *(unsigned long long *)field = (unsigned long long)v;
    }
    return 0;
}

static inline const char *train_config_check(const TrainConfig *c, char *err, size_t errlen);

/*
 * Parse argv into *c (defaults first). Returns NULL on success, "help" when
 * -h/--help was given, else err filled with a message naming the flag.
 */
static inline const char *train_config_parse(TrainConfig *c, int argc, char **argv, char *err, size_t errlen)
{
    const size_t num_flags = sizeof(TRAIN_FLAGS) / sizeof(TRAIN_FLAGS[0]);
    train_config_defaults(c);
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) return "help";
        if (i + 1 >= argc) {
            snprintf(err, errlen, "flag %s needs a value (see --help)", flag);
            return err;
        }
        const char *value = argv[++i];
        size_t k = 0;
        while (k < num_flags && strcmp(flag, TRAIN_FLAGS[k].flag) != 0) k++;
        if (k == num_flags) {
            snprintf(err, errlen, "unknown flag '%s' (see --help)", flag);
            return err;
        }
        if (train_flag_set(&TRAIN_FLAGS[k], value, c, err, errlen) != 0) return err;
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
    else if (c->recompute != 0)
        snprintf(err, errlen, "flag -r %d: activation recompute is not implemented; use -r 0", c->recompute);
    else
        return NULL;
    return err;
}

/* One optimizer step = grad_accum micro-steps of B*T tokens on each of num_ranks ranks. */
static inline int train_config_grad_accum(const TrainConfig *c, int num_ranks)
{
    long per_micro = (long)c->B * c->T * num_ranks;
    if (c->total_batch_tokens % per_micro != 0)
        die("flag -d: %ld tokens per step is not a multiple of B*T*ranks = %d*%d*%d = %ld", c->total_batch_tokens,
            c->B, c->T, num_ranks, per_micro);
    return (int)(c->total_batch_tokens / per_micro);
}

#endif /* PACKLM_TRAIN_CONFIG_H */
