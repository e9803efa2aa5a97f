/*
 * test_cpu_ops.c — every op of llmc/cpu_ref.h except attention (see
 * test_attention_ref.c):
 *   - backward against central finite differences of a probe loss
 *     L = sum_k probe_k * out_k (probe random, accumulated in double), with
 *     every gradient buffer pre-filled with noise to check that backward adds;
 *   - forward against properties that pin it down without re-implementing it
 *     (normalised moments, identity/permutation weights, gelu(x) - gelu(-x) = x,
 *     RoPE's relative-position invariance, softmax sums, AdamW's first step).
 *
 * Tolerances: finite differences use h = 1e-2 on O(1) inputs; fp32 rounding
 * plus the O(h^2) truncation keep the quotient within ~1e-4..1e-3 relative of
 * the true gradient, so gradients must match to a relative L2 error of 2e-3.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu_ref.h"
#include "fd_check.h"

#define FD_STEP 1e-2f
#define FD_TOL 2e-3

static Rng rng;

/* ------------------------------------------------------------ the harness */

/* An op whose forward writes `out` (out_n floats) from inputs held in `op`. */
typedef struct {
    void (*forward)(void *op);
    void *op;
    const float *out;
    size_t out_n;
    const float *probe; /* d L / d out */
} Probe;

static double probed_loss(void *ctx)
{
    const Probe *p = (const Probe *)ctx;
    p->forward(p->op);
    double sum = 0.0;
    for (size_t k = 0; k < p->out_n; k++) sum += (double)p->probe[k] * p->out[k];
    return sum;
}

/* Compare `grad` (d L / d x, n elements) with central differences of L in x. */
static void check_probe_fd(const char *name, Probe *p, float *x, const float *grad, size_t n)
{
    check_fd(name, probed_loss, p, x, grad, n, FD_STEP, FD_TOL);
}

/* A gradient buffer pre-filled with noise; gradient_added() returns what backward added to it. */
typedef struct {
    float *g, *noise;
    size_t n;
} Grad;

static Grad grad_prefilled(size_t n)
{
    Grad d = {random_floats(&rng, n, 1.0), (float *)malloc_or_die(n * sizeof(float)), n};
    memcpy(d.noise, d.g, n * sizeof(float));
    return d;
}

static const float *gradient_added(Grad *d)
{
    for (size_t i = 0; i < d->n; i++) d->g[i] -= d->noise[i];
    return d->g;
}

static void grad_free(Grad *d)
{
    free(d->g);
    free(d->noise);
}

/* --------------------------------------------------------------- encoder */

typedef struct {
    float *out, *wte, *wpe;
    const int *inputs, *pos;
    int N, C;
} EncoderOp;

static void encoder_op(void *p)
{
    EncoderOp *o = (EncoderOp *)p;
    encoder_forward_cpu(o->out, o->inputs, o->pos, o->wte, o->wpe, o->N, o->C);
}

static void test_encoder(void)
{
    /* repeated tokens and positions: their gradients must add up */
    const int N = 6, C = 5, V = 4, maxT = 3;
    const int inputs[] = {0, 2, 2, 3, 0, 2}, pos[] = {0, 1, 2, 0, 1, 0};
    EncoderOp op = {nan_floats((size_t)N * C), random_floats(&rng, (size_t)V * C, 1.0),
                    random_floats(&rng, (size_t)maxT * C, 1.0), inputs, pos, N, C};
    float *probe = random_floats(&rng, (size_t)N * C, 1.0);
    Probe p = {encoder_op, &op, op.out, (size_t)N * C, probe};
    Grad dwte = grad_prefilled((size_t)V * C), dwpe = grad_prefilled((size_t)maxT * C);
    encoder_backward_cpu(dwte.g, dwpe.g, probe, inputs, pos, N, C);
    check_probe_fd("encoder_backward dwte (fd)", &p, op.wte, gradient_added(&dwte), (size_t)V * C);
    check_probe_fd("encoder_backward dwpe (fd)", &p, op.wpe, gradient_added(&dwpe), (size_t)maxT * C);

    /* forward: token row plus position row; llama (wpe NULL): the token row alone */
    encoder_forward_cpu(op.out, inputs, pos, op.wte, op.wpe, N, C);
    int ok = 1;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) ok &= op.out[i * C + c] == op.wte[inputs[i] * C + c] + op.wpe[pos[i] * C + c];
    check(ok, "encoder_forward gpt2 = wte[token] + wpe[pos]", "a row differs");
    encoder_forward_cpu(op.out, inputs, pos, op.wte, NULL, N, C);
    ok = 1;
    for (int i = 0; i < N; i++) ok &= memcmp(op.out + i * C, op.wte + inputs[i] * C, C * sizeof(float)) == 0;
    check(ok, "encoder_forward llama (no wpe) = wte[token]", "a row differs");
    Grad dwte_only = grad_prefilled((size_t)V * C);
    encoder_backward_cpu(dwte_only.g, NULL, probe, inputs, pos, N, C);
    check_close("encoder_backward without wpe: same dwte", gradient_added(&dwte_only), dwte.g, (size_t)V * C, 1e-6);
    grad_free(&dwte);
    grad_free(&dwpe);
    grad_free(&dwte_only);
    free(op.out), free(op.wte), free(op.wpe), free(probe);
}

/* ------------------------------------------------------------------ norms */

typedef struct {
    float *out, *mean, *rstd, *inp, *weight, *bias;
    int N, C, rms;
} NormOp;

static void norm_op(void *p)
{
    NormOp *o = (NormOp *)p;
    if (o->rms) rmsnorm_forward_cpu(o->out, o->rstd, o->inp, o->weight, o->N, o->C, 1e-5f);
    else layernorm_forward_cpu(o->out, o->mean, o->rstd, o->inp, o->weight, o->bias, o->N, o->C, 1e-5f);
}

static void test_norm(int rms)
{
    const int N = 5, C = 12;
    const char *name = rms ? "rmsnorm" : "layernorm";
    /* rows with an offset and a scale, so mean and variance both matter */
    NormOp op = {nan_floats((size_t)N * C), nan_floats(N), nan_floats(N), random_floats(&rng, (size_t)N * C, 2.0),
                 random_floats(&rng, C, 1.0), random_floats(&rng, C, 1.0), N, C, rms};
    for (int i = 0; i < N * C; i++) op.inp[i] += 0.5f * (i / C);
    float *probe = random_floats(&rng, (size_t)N * C, 1.0);
    Probe p = {norm_op, &op, op.out, (size_t)N * C, probe};
    norm_op(&op);
    Grad dinp = grad_prefilled((size_t)N * C), dw = grad_prefilled(C), db = grad_prefilled(C);
    if (rms) rmsnorm_backward_cpu(dinp.g, dw.g, probe, op.inp, op.weight, op.rstd, N, C);
    else layernorm_backward_cpu(dinp.g, dw.g, db.g, probe, op.inp, op.weight, op.mean, op.rstd, N, C);
    char label[128];
    snprintf(label, sizeof(label), "%s_backward dinp (fd)", name);
    check_probe_fd(label, &p, op.inp, gradient_added(&dinp), (size_t)N * C);
    snprintf(label, sizeof(label), "%s_backward dweight (fd)", name);
    check_probe_fd(label, &p, op.weight, gradient_added(&dw), C);
    if (!rms) check_probe_fd("layernorm_backward dbias (fd)", &p, op.bias, gradient_added(&db), C);

    /* forward with weight 1, bias 0: rows have mean 0 and variance 1 (layernorm) or mean square 1 (rmsnorm) */
    for (int c = 0; c < C; c++) op.weight[c] = 1.0f, op.bias[c] = 0.0f;
    norm_op(&op);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        double mean = 0.0, sq = 0.0;
        for (int c = 0; c < C; c++) mean += op.out[i * C + c], sq += (double)op.out[i * C + c] * op.out[i * C + c];
        mean /= C, sq /= C;
        const double err = rms ? fabs(sq - 1.0) : fmax(fabs(mean), fabs(sq - mean * mean - 1.0));
        worst = isnan(err) ? INFINITY : fmax(worst, err);
    }
    snprintf(label, sizeof(label), "%s_forward normalises rows", name);
    check(worst < 1e-4, label, "worst deviation of the row moments %.3e (tolerance 1e-4, eps=1e-5 shrinks by ~1e-5)",
          worst);
    grad_free(&dinp), grad_free(&dw), grad_free(&db);
    free(op.out), free(op.mean), free(op.rstd), free(op.inp), free(op.weight), free(op.bias), free(probe);
}

/* ----------------------------------------------------------------- matmul */

typedef struct {
    float *out, *inp, *weight, *bias;
    int N, C, OC;
} MatmulOp;

static void matmul_op(void *p)
{
    MatmulOp *o = (MatmulOp *)p;
    matmul_forward_cpu(o->out, o->inp, o->weight, o->bias, o->N, o->C, o->OC);
}

static void test_matmul(void)
{
    /* N = 37 is not a multiple of the backward's row tile */
    const int N = 37, C = 7, OC = 5;
    MatmulOp op = {nan_floats((size_t)N * OC), random_floats(&rng, (size_t)N * C, 1.0),
                   random_floats(&rng, (size_t)OC * C, 1.0), random_floats(&rng, OC, 1.0), N, C, OC};
    float *probe = random_floats(&rng, (size_t)N * OC, 1.0);
    Probe p = {matmul_op, &op, op.out, (size_t)N * OC, probe};
    Grad dinp = grad_prefilled((size_t)N * C), dw = grad_prefilled((size_t)OC * C), db = grad_prefilled(OC);
    matmul_backward_cpu(dinp.g, dw.g, db.g, probe, op.inp, op.weight, N, C, OC);
    check_probe_fd("matmul_backward dinp (fd)", &p, op.inp, gradient_added(&dinp), (size_t)N * C);
    check_probe_fd("matmul_backward dweight (fd)", &p, op.weight, gradient_added(&dw), (size_t)OC * C);
    check_probe_fd("matmul_backward dbias (fd)", &p, op.bias, gradient_added(&db), OC);

    /* forward with a permutation matrix W (row o picks input column perm[o]): out[i][o] = inp[i][perm[o]] + b[o] */
    const int D = 6, perm[] = {3, 0, 5, 1, 4, 2};
    float *inp = random_floats(&rng, (size_t)N * D, 1.0);
    MatmulOp sq = {nan_floats((size_t)N * D), inp, (float *)calloc_or_die((size_t)D * D, sizeof(float)),
                   random_floats(&rng, D, 1.0), N, D, D};
    for (int o = 0; o < D; o++) sq.weight[o * D + perm[o]] = 1.0f;
    matmul_op(&sq);
    int ok = 1;
    for (int i = 0; i < N; i++)
        for (int o = 0; o < D; o++) ok &= sq.out[i * D + o] == inp[i * D + perm[o]] + sq.bias[o];
    check(ok, "matmul_forward permutation weight + bias", "an output differs");
    matmul_forward_cpu(sq.out, inp, sq.weight, NULL, N, D, D);
    ok = 1;
    for (int i = 0; i < N; i++)
        for (int o = 0; o < D; o++) ok &= sq.out[i * D + o] == inp[i * D + perm[o]];
    check(ok, "matmul_forward permutation weight, no bias", "an output differs");
    grad_free(&dinp), grad_free(&dw), grad_free(&db);
    free(op.out), free(op.inp), free(op.weight), free(op.bias), free(probe);
    free(sq.out), free(sq.weight), free(sq.bias), free(inp);
}

/* ------------------------------------------------------ gelu and swiglu */

typedef struct {
    float *out, *inp;
    int N, F, swiglu;
} ActivationOp;

static void activation_op(void *p)
{
    ActivationOp *o = (ActivationOp *)p;
    if (o->swiglu) swiglu_forward_cpu(o->out, o->inp, o->N, o->F);
    else gelu_forward_cpu(o->out, o->inp, (size_t)o->N * o->F);
}

static void test_activation(int swiglu)
{
    const int N = 6, F = 9;
    const size_t in_n = (size_t)N * F * (swiglu ? 2 : 1), out_n = (size_t)N * F;
    const char *name = swiglu ? "swiglu" : "gelu";
    ActivationOp op = {nan_floats(out_n), random_floats(&rng, in_n, 2.0), N, F, swiglu};
    float *probe = random_floats(&rng, out_n, 1.0);
    Probe p = {activation_op, &op, op.out, out_n, probe};
    Grad dinp = grad_prefilled(in_n);
    if (swiglu) swiglu_backward_cpu(dinp.g, probe, op.inp, N, F);
    else gelu_backward_cpu(dinp.g, op.inp, probe, out_n);
    char label[128];
    snprintf(label, sizeof(label), "%s_backward dinp (fd)", name);
    check_probe_fd(label, &p, op.inp, gradient_added(&dinp), in_n);

    /*
     * Both are x * s(x) with s(x) + s(-x) = 1 (s = sigmoid for silu, (1 + tanh)/2
     * for gelu), so act(x) - act(-x) = x. For swiglu, up = 1 leaves silu(gate).
     */
    float *neg = nan_floats(out_n), *x = op.inp;
    ActivationOp mirrored = {neg, nan_floats(in_n), N, F, swiglu}; /* every input is set below */
    for (int i = 0; i < N; i++)
        for (int f = 0; f < F; f++) {
            const size_t gate = swiglu ? (size_t)i * 2 * F + f : (size_t)i * F + f;
            mirrored.inp[gate] = -x[gate];
            if (swiglu) x[gate + F] = mirrored.inp[gate + F] = 1.0f;
        }
    activation_op(&op);
    activation_op(&mirrored);
    double worst = 0.0;
    for (int i = 0; i < N; i++)
        for (int f = 0; f < F; f++) {
            const size_t gate = swiglu ? (size_t)i * 2 * F + f : (size_t)i * F + f;
            const double err = fabs((double)op.out[i * F + f] - neg[i * F + f] - x[gate]);
            worst = isnan(err) ? INFINITY : fmax(worst, err);
        }
    snprintf(label, sizeof(label), "%s_forward act(x) - act(-x) = x", name);
    check(worst < 1e-5, label, "worst error %.3e (tolerance 1e-5)", worst);
    grad_free(&dinp);
    free(op.out), free(op.inp), free(probe), free(neg), free(mirrored.inp);
}

/* ------------------------------------------------------------------- rope */

typedef struct {
    float *out, *inp;
    const int *pos;
    int N, NH, NKV, HD;
    float theta;
} RopeOp;

static void rope_op(void *p)
{
    RopeOp *o = (RopeOp *)p;
    rope_forward_cpu(o->out, o->inp, o->pos, o->N, o->NH, o->NKV, o->HD, rope_params_plain(o->theta));
}

static float dot(const float *a, const float *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return (float)s;
}

static void test_rope(void)
{
    const int N = 5, NH = 4, NKV = 2, HD = 8, W = (NH + 2 * NKV) * HD;
    const int pos[] = {0, 1, 2, 7, 300};
    RopeOp op = {nan_floats((size_t)N * W), random_floats(&rng, (size_t)N * W, 1.0), pos, N, NH, NKV, HD, 10000.0f};
    float *probe = random_floats(&rng, (size_t)N * W, 1.0);
    Probe p = {rope_op, &op, op.out, (size_t)N * W, probe};
    Grad dinp = grad_prefilled((size_t)N * W);
    rope_backward_cpu(dinp.g, probe, pos, N, NH, NKV, HD, rope_params_plain(op.theta));
    check_probe_fd("rope_backward dinp (fd)", &p, op.inp, gradient_added(&dinp), (size_t)N * W);

    rope_op(&op);
    /* position 0 is the identity; v heads are copied at every position */
    check(memcmp(op.out, op.inp, (size_t)W * sizeof(float)) == 0, "rope_forward pos 0 is the identity",
          "token 0 changed");
    int v_ok = 1;
    for (int i = 0; i < N; i++)
        v_ok &= memcmp(op.out + i * W + (NH + NKV) * HD, op.inp + i * W + (NH + NKV) * HD,
                       (size_t)NKV * HD * sizeof(float)) == 0;
    check(v_ok, "rope_forward leaves v unchanged", "a v head changed");
    /* the convention of INTERFACES.md: pair (0, HD/2) turns by pos radians, pair (1, HD/2+1) by pos * theta^(-2/HD) */
    const float *x = op.inp + 3 * W, *y = op.out + 3 * W;
    const double a0 = 7.0, a1 = 7.0 * pow(10000.0, -2.0 / HD);
    const double want0 = x[0] * cos(a0) - x[HD / 2] * sin(a0), want1 = x[1] * sin(a1) + x[HD / 2 + 1] * cos(a1);
    check(fabs(y[0] - want0) < 1e-5 && fabs(y[HD / 2 + 1] - want1) < 1e-5, "rope_forward angle convention",
          "got %g %g, want %g %g", (double)y[0], (double)y[HD / 2 + 1], want0, want1);
    /* q.k after RoPE depends only on the position difference: shift both positions by 5 */
    const int base_pos[] = {3, 1}, shifted_pos[] = {8, 6};
    float *pair = random_floats(&rng, (size_t)2 * W, 1.0);
    float *a = nan_floats((size_t)2 * W), *b = nan_floats((size_t)2 * W);
    rope_forward_cpu(a, pair, base_pos, 2, NH, NKV, HD, rope_params_plain(op.theta));
    rope_forward_cpu(b, pair, shifted_pos, 2, NH, NKV, HD, rope_params_plain(op.theta));
    double worst = 0.0;
    for (int h = 0; h < NH; h++) {
        const int kvh = h / (NH / NKV);
        const float before = dot(a + h * HD, a + W + (NH + kvh) * HD, HD);
        const float after = dot(b + h * HD, b + W + (NH + kvh) * HD, HD);
        worst = isnan(before - after) ? INFINITY : fmax(worst, fabs(before - after));
    }
    check(worst < 1e-4, "rope_forward relative-position invariance of q.k", "q.k changed by %.3e", worst);
    grad_free(&dinp);
    free(op.out), free(op.inp), free(probe), free(pair), free(a), free(b);
}

/* ------------------------------------------------------------- classifier */

typedef struct {
    float *losses, *probs, *logits;
    const int *targets;
    int N, V, Vp;
} ClassifierOp;

static void classifier_op(void *p)
{
    ClassifierOp *o = (ClassifierOp *)p;
    classifier_forward_cpu(o->losses, o->probs, o->logits, o->targets, o->N, o->V, o->Vp);
}

static void test_classifier(void)
{
    /* V = 11 real columns padded to 16; token 2 has no target */
    const int N = 5, V = 11, Vp = 16;
    const int targets[] = {3, 0, -1, 10, 3};
    ClassifierOp op = {nan_floats(N), nan_floats((size_t)N * Vp), random_floats(&rng, (size_t)N * Vp, 2.0), targets,
                       N, V, Vp};
    const float dloss = 1.0f / 4.0f; /* the mean over the 4 tokens with a target */
    float probe[5];
    for (int i = 0; i < N; i++) probe[i] = dloss;
    Probe p = {classifier_op, &op, op.losses, N, probe};
    classifier_op(&op);
    Grad dlogits = grad_prefilled((size_t)N * Vp);
    classifier_backward_cpu(dlogits.g, op.probs, targets, dloss, N, V, Vp);
    const float *grad = gradient_added(&dlogits);
    check_probe_fd("classifier_backward dlogits (fd)", &p, op.logits, grad, (size_t)N * Vp);

    classifier_op(&op);
    int ok = 1;
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        double sum = 0.0;
        for (int v = 0; v < V; v++) sum += op.probs[i * Vp + v];
        worst = isnan(sum) ? INFINITY : fmax(worst, fabs(sum - 1.0));
        for (int v = V; v < Vp; v++) ok &= op.probs[i * Vp + v] == 0.0f && grad[i * Vp + v] == 0.0f;
        if (targets[i] == -1) {
            ok &= op.losses[i] == 0.0f;
            for (int v = 0; v < Vp; v++) ok &= grad[i * Vp + v] == 0.0f;
        } else {
            ok &= fabsf(op.losses[i] + logf(op.probs[i * Vp + targets[i]])) < 1e-5f;
        }
    }
    check(worst < 1e-5, "classifier_forward probabilities sum to 1 over V", "worst |sum - 1| = %.3e", worst);
    check(ok, "classifier padded columns / target -1 / loss = -log p(target)", "a rule is broken");
    /* huge logits must not overflow the softmax; padded logits may hold anything */
    for (int i = 0; i < N * Vp; i++) op.logits[i] = op.logits[i] * 100.0f + 1000.0f;
    for (int i = 0; i < N; i++) op.logits[i * Vp + Vp - 1] = INFINITY;
    classifier_op(&op);
    int finite = 1;
    for (int i = 0; i < N * V; i++) finite &= isfinite(op.probs[i]);
    for (int i = 0; i < N; i++) finite &= isfinite(op.losses[i]);
    check(finite, "classifier_forward stable for logits ~1e3 and ignores padded columns", "non-finite output");
    grad_free(&dlogits);
    free(op.losses), free(op.probs), free(op.logits);
}

/* ------------------------------------------------------ residual, adamw, norm */

static void test_residual(void)
{
    const size_t n = 13;
    float *a = random_floats(&rng, n, 1.0), *b = random_floats(&rng, n, 1.0), *out = nan_floats(n);
    residual_forward_cpu(out, a, b, n);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= out[i] == a[i] + b[i];
    check(ok, "residual_forward = a + b", "an element differs");
    free(a), free(b), free(out);
}

static void test_adamw(void)
{
    /*
     * First step from zero moments: bias correction makes m_hat = g and
     * v_hat = g^2, so the update is lr * (g / (|g| + eps) + wd * p).
     */
    const size_t n = 9;
    const float lr = 0.1f, wd = 0.5f, eps = 1e-8f;
    float *p = random_floats(&rng, n, 1.0), *g = random_floats(&rng, n, 1.0), *want = nan_floats(n);
    float *m = (float *)calloc_or_die(n, sizeof(float)), *v = (float *)calloc_or_die(n, sizeof(float));
    for (size_t i = 0; i < n; i++) want[i] = p[i] - lr * (g[i] / (fabsf(g[i]) + eps) + wd * p[i]);
    adamw_update_cpu(p, g, m, v, n, lr, 0.9f, 0.95f, eps, wd, 1);
    check_close("adamw_update first step = lr * (sign(g) + wd * p)", p, want, n, 1e-6);
    /* it minimises a quadratic: f(p) = sum (p - target)^2 / 2, gradient p - target */
    float *target = random_floats(&rng, n, 1.0);
    memset(m, 0, n * sizeof(float));
    memset(v, 0, n * sizeof(float));
    for (int step = 1; step <= 2000; step++) {
        for (size_t i = 0; i < n; i++) g[i] = p[i] - target[i];
        adamw_update_cpu(p, g, m, v, n, 0.01f, 0.9f, 0.999f, eps, 0.0f, step);
    }
    check_close("adamw_update converges on a quadratic (2000 steps)", p, target, n, 1e-2);
    free(p), free(g), free(want), free(m), free(v), free(target);
}

static void test_global_norm(void)
{
    /* n copies of 3 and 4 alternating: norm = 5 * sqrt(n / 2) */
    const size_t n = 1000;
    float *g = (float *)malloc_or_die(n * sizeof(float));
    for (size_t i = 0; i < n; i++) g[i] = i % 2 ? 4.0f : -3.0f;
    const float norm = global_norm_cpu(g, n), want = 5.0f * sqrtf(n / 2.0f);
    check(fabsf(norm - want) < 1e-5f * want, "global_norm_cpu", "got %.7g want %.7g", (double)norm, (double)want);
    g[17] = NAN;
    check(isnan(global_norm_cpu(g, n)), "global_norm_cpu propagates NaN", "a NaN gradient gave a finite norm");
    free(g);
}

int main(void)
{
    rng = rng_create(20261125);
    test_encoder();
    test_norm(0);
    test_norm(1);
    test_matmul();
    test_activation(0);
    test_activation(1);
    test_rope();
    test_classifier();
    test_residual();
    test_adamw();
    test_global_norm();
    return test_summary();
}
