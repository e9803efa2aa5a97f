/*
 * test_schedulers.c — the learning-rate schedules of llmc/schedulers.h:
 * linear warmup from lr/warmup up to lr, the value right after warmup, the
 * final value lr * final_lr_frac at the last step (and after it), monotone
 * decay, the cosine midpoint, and the wsd plateau. Tolerance 1e-6 relative.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "schedulers.h"
#include "test.h"

static int close_to(float got, double want)
{
    return fabs(got - want) <= 1e-6 * fmax(fabs(want), 1e-12);
}

static void check_schedule(const char *name, int warmup, int total)
{
    const float lr = 6e-4f, frac = 0.1f;
    LRScheduler s;
    lr_scheduler_init(&s, name, lr, warmup, total, frac);
    const int constant = strcmp(name, "constant") == 0;
    const double final_lr = constant ? lr : lr * (double)frac;
    char label[160];

    int ok = 1;
    for (int step = 0; step < warmup; step++) ok &= close_to(lr_at(&s, step), lr * (step + 1.0) / warmup);
    snprintf(label, sizeof(label), "%s warmup %d of %d: lr * (step + 1) / warmup", name, warmup, total);
    check(ok, label, "a warmup step is off");

    if (warmup < total - 1) { /* otherwise the step after warmup is already the last one */
        snprintf(label, sizeof(label), "%s warmup %d of %d: peak right after warmup", name, warmup, total);
        check(close_to(lr_at(&s, warmup), lr), label, "lr_at(%d) = %g, want %g", warmup,
              (double)lr_at(&s, warmup), (double)lr);
    }
    snprintf(label, sizeof(label), "%s warmup %d of %d: final value at the last step and after", name, warmup, total);
    check(close_to(lr_at(&s, total - 1), final_lr) && close_to(lr_at(&s, total + 5), final_lr), label,
          "lr_at(last) = %g, lr_at(last + 6) = %g, want %g", (double)lr_at(&s, total - 1), (double)lr_at(&s, total + 5),
          final_lr);

    ok = 1;
    for (int step = warmup + 1; step < total + 3; step++) ok &= lr_at(&s, step) <= lr_at(&s, step - 1);
    snprintf(label, sizeof(label), "%s warmup %d of %d: non-increasing after warmup", name, warmup, total);
    check(ok, label, "the learning rate rises after warmup");
}

int main(void)
{
    const char *names[] = {"cosine", "linear", "constant", "wsd"};
    for (int i = 0; i < 4; i++) {
        check_schedule(names[i], 10, 111);
        check_schedule(names[i], 0, 50);
        check_schedule(names[i], 1, 2);
    }
    LRScheduler s;
    /* progress (step - 10) / 100 = 1/2 at step 60: cosine is halfway, linear too */
    lr_scheduler_init(&s, "cosine", 1.0f, 10, 111, 0.2f);
    check(close_to(lr_at(&s, 60), 0.6), "cosine midpoint = (lr + min_lr) / 2", "got %g", (double)lr_at(&s, 60));
    lr_scheduler_init(&s, "linear", 1.0f, 10, 111, 0.2f);
    check(close_to(lr_at(&s, 60), 0.6), "linear midpoint = (lr + min_lr) / 2", "got %g", (double)lr_at(&s, 60));
    /* wsd over 100 steps: flat at lr through step 79, then linear down to the final value at step 99 */
    lr_scheduler_init(&s, "wsd", 1.0f, 5, 100, 0.0f);
    int flat = 1;
    for (int step = 5; step < 80; step++) flat &= lr_at(&s, step) == 1.0f;
    check(flat, "wsd stable phase holds the peak until the last 20% of steps", "the plateau is not flat");
    check(lr_at(&s, 81) < 1.0f && close_to(lr_at(&s, 99), 0.0), "wsd decays linearly over the last 20%",
          "lr_at(81) = %g, lr_at(99) = %g", (double)lr_at(&s, 81), (double)lr_at(&s, 99));
    return test_summary();
}
