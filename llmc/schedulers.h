/*
 * schedulers.h — learning-rate schedules shared by the CPU and GPU trainers.
 *
 * Every schedule starts with a linear warmup: steps 0 .. warmup-1 get
 * lr * (step + 1) / warmup. After it, with progress p going linearly from 0
 * at step `warmup` to 1 at the last step (total_steps - 1), and
 * min_lr = lr * final_lr_frac:
 *   cosine    min_lr + (lr - min_lr) * (1 + cos(pi p)) / 2
 *   linear    lr - (lr - min_lr) * p
 *   constant  lr (final_lr_frac unused)
 *   wsd       warmup-stable-decay: lr until the last WSD_DECAY_FRACTION of
 *             all steps, then linear to min_lr at the last step
 * Steps past the end keep the final value. Bad arguments stop the program.
 */
#ifndef PACKLM_SCHEDULERS_H
#define PACKLM_SCHEDULERS_H

#include <math.h>
#include <string.h>

#include "utils.h"

#define WSD_DECAY_FRACTION 0.2

typedef enum { LR_COSINE, LR_LINEAR, LR_CONSTANT, LR_WSD } LRScheduleKind;

typedef struct {
    LRScheduleKind kind;
    float lr;            /* peak learning rate */
    int warmup_steps;
    int total_steps;
    float final_lr_frac; /* min_lr = lr * final_lr_frac */
} LRScheduler;

static inline void lr_scheduler_init(LRScheduler *s, const char *name, float lr, int warmup_steps, int total_steps,
                                     float final_lr_frac)
{
    if (strcmp(name, "cosine") == 0) s->kind = LR_COSINE;
    else if (strcmp(name, "linear") == 0) s->kind = LR_LINEAR;
    else if (strcmp(name, "constant") == 0) s->kind = LR_CONSTANT;
    else if (strcmp(name, "wsd") == 0) s->kind = LR_WSD;
    else die("unknown learning-rate schedule '%s' (known: cosine linear constant wsd)", name);
    if (!(lr >= 0.0f)) die("learning rate must be >= 0 (got %g)", (double)lr);
    if (total_steps < 1) die("lr schedule: total steps must be >= 1 (got %d)", total_steps);
    if (warmup_steps < 0 || warmup_steps > total_steps)
        die("lr schedule: warmup steps must be in [0, total steps=%d] (got %d)", total_steps, warmup_steps);
    if (!(final_lr_frac >= 0.0f && final_lr_frac <= 1.0f))
        die("lr schedule: final_lr_frac must be in [0, 1] (got %g)", (double)final_lr_frac);
    s->lr = lr;
    s->warmup_steps = warmup_steps;
    s->total_steps = total_steps;
    s->final_lr_frac = final_lr_frac;
}

/* Fraction in [0, 1] of the way from step `from` to step `to` (1 when they meet). */
static inline double lr_progress(int step, int from, int to)
{
    if (to <= from) return step >= from ? 1.0 : 0.0;
    double p = (double)(step - from) / (double)(to - from);
    return p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
}

/* Learning rate of 0-based step `step`. */
static inline float lr_at(const LRScheduler *s, int step)
{
    if (step < s->warmup_steps) return s->lr * (float)(step + 1) / (float)s->warmup_steps;
    const double lr = s->lr, min_lr = s->lr * (double)s->final_lr_frac;
    const int last = s->total_steps - 1;
    switch (s->kind) {
    case LR_COSINE: {
        const double p = lr_progress(step, s->warmup_steps, last);
        return (float)(min_lr + (lr - min_lr) * 0.5 * (1.0 + cos(3.141592653589793 * p)));
    }
    case LR_LINEAR:
        return (float)(lr - (lr - min_lr) * lr_progress(step, s->warmup_steps, last));
    case LR_WSD: {
        int decay_start = s->total_steps - (int)ceil(WSD_DECAY_FRACTION * s->total_steps);
        if (decay_start < s->warmup_steps) decay_start = s->warmup_steps;
        return (float)(lr - (lr - min_lr) * lr_progress(step, decay_start, last));
    }
    case LR_CONSTANT:
    default:
        return s->lr;
    }
}

#endif /* PACKLM_SCHEDULERS_H */
