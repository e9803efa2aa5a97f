/*
 * fd_check.h — what the CPU gradient tests share (test_cpu_ops.c,
 * test_attention_ref.c, test_model_cpu.c): fresh random inputs, NaN-poisoned
 * output buffers, and gradients checked against central finite differences.
 *
 * A loss is a function of a context (an op or a model with its inputs) that
 * returns one scalar, accumulated in double. Its derivative in one float x of
 * the inputs is estimated as (L(x + h) - L(x - h)) / 2h, x restored after.
 * Shapes: flat buffers of n floats; check_fd compares a gradient of n floats
 * with the n difference quotients of x[0..n).
 */
#ifndef PACKLM_FD_CHECK_H
#define PACKLM_FD_CHECK_H

#include <math.h>
#include <stdlib.h>

#include "rand.h"
#include "test.h"
#include "utils.h"

/* n values ~ normal(0, std), malloc'd. */
static inline float *random_floats(Rng *rng, size_t n, double std)
{
    float *x = (float *)malloc_or_die(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * rng_normal(rng));
    return x;
}

/* n NaNs, malloc'd: an output buffer a correct call overwrites entirely. */
static inline float *nan_floats(size_t n)
{
    float *x = (float *)malloc_or_die(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

typedef double (*FdLoss)(void *ctx);

/* d loss / d *x by central differences with step h; *x is left as it was. */
static inline float fd_derivative(FdLoss loss, void *ctx, float *x, float h)
{
    const float saved = *x;
    *x = saved + h;
    const double plus = loss(ctx);
    *x = saved - h;
    const double minus = loss(ctx);
    *x = saved;
    return (float)((plus - minus) / (2.0 * h));
}

/* PASS when grad (d loss / d x, n elements) matches the central differences
   within a relative L2 error of tol. */
static inline int check_fd(const char *name, FdLoss loss, void *ctx, float *x, const float *grad, size_t n, float h,
                           double tol)
{
    float *numeric = nan_floats(n);
    for (size_t i = 0; i < n; i++) numeric[i] = fd_derivative(loss, ctx, &x[i], h);
    const int ok = check_close(name, grad, numeric, n, tol);
    free(numeric);
    return ok;
}

#endif /* PACKLM_FD_CHECK_H */
