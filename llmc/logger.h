/*
 * logger.h — main.log in llm.c's line format, so llm.c's plotting notebooks
 * and scripts read packlm runs unchanged:
 *
 *   s:STEP trl:TRAIN_LOSS lr:LR norm:GRAD_NORM   (STEP 0-based: the step's index)
 *   s:STEP tel:VAL_LOSS                          (before step STEP trains)
 *   s:STEP eval:ACCURACY                         (multiple-choice eval, --eval; a fraction)
 *
 * With no output directory the logger does nothing. A resumed run appends
 * after dropping the lines of steps >= the resume step (they belong to the
 * interrupted run's future), so the file reads like one uninterrupted run.
 * format_eta writes the step line's time left ("4m05s", "2h07m").
 */
#ifndef PACKLM_LOGGER_H
#define PACKLM_LOGGER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

typedef struct {
    FILE *file; /* NULL: logging off */
    char path[4096];
} Logger;

/* Keep only the lines of steps < first_step (resume); 0 starts a new file. */
static inline void logger_init(Logger *lg, const char *output_dir, int first_step)
{
    lg->file = NULL;
    if (!output_dir) return;
    snprintf(lg->path, sizeof(lg->path), "%s/main.log", output_dir);
    char *kept = NULL;
    size_t kept_len = 0;
    FILE *old = first_step > 0 ? fopen(lg->path, "r") : NULL;
    if (old) {
        char line[512];
        FILE *mem = open_memstream(&kept, &kept_len);
        while (fgets(line, sizeof(line), old)) {
            int step;
            if (sscanf(line, "s:%d", &step) == 1 && step < first_step) fputs(line, mem);
        }
        fclose(mem);
        fclose(old);
    }
    lg->file = fopen_or_die(lg->path, "w");
    if (kept) fwrite_or_die(kept, 1, kept_len, lg->file, lg->path);
    free(kept);
    fflush(lg->file);
}

static inline void logger_log_train(Logger *lg, int step, float loss, float lr, float grad_norm)
{
    if (!lg->file) return;
    fprintf(lg->file, "s:%d trl:%f lr:%f norm:%f\n", step, loss, lr, grad_norm);
    fflush(lg->file);
}

static inline void logger_log_val(Logger *lg, int step, float val_loss)
{
    if (!lg->file) return;
    fprintf(lg->file, "s:%d tel:%f\n", step, val_loss);
    fflush(lg->file);
}

static inline void logger_log_eval(Logger *lg, int step, float accuracy)
{
    if (!lg->file) return;
    fprintf(lg->file, "s:%d eval:%.4f\n", step, accuracy);
    fflush(lg->file);
}

/* Seconds as "MmSSs" below an hour, else "HhMMm". */
static inline void format_eta(char *buf, size_t len, double seconds)
{
    int s = (int)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, len, "%dh%02dm", s / 3600, s / 60 % 60);
    else snprintf(buf, len, "%dm%02ds", s / 60, s % 60);
}

static inline void logger_free(Logger *lg)
{
    if (lg->file) fclose_or_die(lg->file, lg->path);
    lg->file = NULL;
}

#endif /* PACKLM_LOGGER_H */
