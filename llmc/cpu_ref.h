/*
 * cpu_ref.h — the fp32 CPU reference of every operation of the model, forward
 * and backward. It is written for reading, not for speed: each GPU kernel in
 * llmc/ (the .cuh files) is checked against the function of the same name here.
 *
 * Shapes (N tokens of a packed batch, all row-major):
 *   encoder     inputs, pos (N) ints; wte (Vp, C); wpe (maxT, C) or NULL -> out (N, C)
 *   layernorm   inp (N, C), weight/bias (C) -> out (N, C), mean/rstd (N)
 *   rmsnorm     inp (N, C), weight (C)      -> out (N, C), rstd (N)
 *   matmul      inp (N, C), weight (OC, C), bias (OC) or NULL -> out (N, OC) = inp @ W^T + b
 *   gelu        n elements, tanh approximation
 *   swiglu      inp (N, 2F) = gate | up -> out (N, F) = silu(gate) * up
 *   rope        inp (N, QKV), QKV = (NH + 2*NKV) * HD: q and k heads rotated by pos,
 *               "rotate half" pairs (d, d + HD/2), angle = pos * f(d) with f from rope_freq.h
 *               (theta^(-2d/HD), or Llama 3's scaled rule); v copied
 *   residual    out = a + b (n elements)
 *   classifier  logits (N, Vp) -> probs (N, Vp) (softmax over the first V columns, 0
 *               beyond), losses (N) = -log probs[target], 0 where target == -1
 *   adamw       one update of n parameters with fp32 moments m, v
 *   attention   see attention_ref.h (included here so this header covers every op)
 *
 * Convention: backward functions ADD (+=) into every gradient they write, so
 * gradients of tensors used twice (tied embeddings, residual streams) sum up
 * naturally. attention_backward_cpu is the one exception: it overwrites dqkv.
 */
#ifndef PACKLM_CPU_REF_H
#define PACKLM_CPU_REF_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "attention_ref.h"
#include "rope_freq.h"
#include "utils.h"

/* Loops with less work than this stay on one thread: starting threads would
   cost more than it saves (and tests call tiny ops thousands of times; on a
   loaded machine every fork/join can wait a whole scheduler tick). About a
   million multiply-adds is where two threads start to pay off. */
#define CPU_REF_PARALLEL_WORK (1 << 20)

/* ------------------------------------------------------------------ encoder */

static inline void encoder_forward_cpu(float *out, const int *inputs, const int *pos, const float *wte,
                                       const float *wpe, int N, int C)
{
#pragma omp parallel for if ((size_t)N * C >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *tok = wte + (size_t)inputs[i] * C;
        float *o = out + (size_t)i * C;
        for (int c = 0; c < C; c++) o[c] = tok[c];
        if (wpe) {
            const float *p = wpe + (size_t)pos[i] * C;
            for (int c = 0; c < C; c++) o[c] += p[c];
        }
    }
}

/* Serial on purpose: two tokens may share a row of wte or wpe. */
static inline void encoder_backward_cpu(float *dwte, float *dwpe, const float *dout, const int *inputs,
                                        const int *pos, int N, int C)
{
    for (int i = 0; i < N; i++) {
        const float *d = dout + (size_t)i * C;
        float *dtok = dwte + (size_t)inputs[i] * C;
        for (int c = 0; c < C; c++) dtok[c] += d[c];
        if (dwpe) {
            float *dp = dwpe + (size_t)pos[i] * C;
            for (int c = 0; c < C; c++) dp[c] += d[c];
        }
    }
}

/* ---------------------------------------------------------------- layernorm */
/* out = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps) */

static inline void layernorm_forward_cpu(float *out, float *mean, float *rstd, const float *inp,
                                         const float *weight, const float *bias, int N, int C, float eps)
{
#pragma omp parallel for if ((size_t)N * C >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *o = out + (size_t)i * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float var = 0.0f;
        for (int c = 0; c < C; c++) var += (x[c] - m) * (x[c] - m);
        var /= C;
        const float r = 1.0f / sqrtf(var + eps);
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * r * weight[c] + bias[c];
        mean[i] = m;
        rstd[i] = r;
    }
}

/*
 * With xhat = (x - mean) * rstd and g = dout * weight:
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dweight += dout * xhat,  dbias += dout.
 */
static inline void layernorm_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                                          const float *inp, const float *weight, const float *mean,
                                          const float *rstd, int N, int C)
{
#pragma omp parallel for if ((size_t)N * C >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C, *d = dout + (size_t)i * C;
        float *dx = dinp + (size_t)i * C;
        float g_mean = 0.0f, g_xhat_mean = 0.0f;
        for (int c = 0; c < C; c++) {
            const float xhat = (x[c] - mean[i]) * rstd[i];
            g_mean += d[c] * weight[c];
            g_xhat_mean += d[c] * weight[c] * xhat;
        }
        g_mean /= C;
        g_xhat_mean /= C;
        for (int c = 0; c < C; c++) {
            const float xhat = (x[c] - mean[i]) * rstd[i];
            dx[c] += rstd[i] * (d[c] * weight[c] - g_mean - xhat * g_xhat_mean);
        }
    }
    /* parameter gradients sum over tokens: one column per thread, no races */
#pragma omp parallel for if ((size_t)N * C >= CPU_REF_PARALLEL_WORK)
    for (int c = 0; c < C; c++) {
        float dw = 0.0f, db = 0.0f;
        for (int i = 0; i < N; i++) {
            const float d = dout[(size_t)i * C + c];
            dw += d * (inp[(size_t)i * C + c] - mean[i]) * rstd[i];
            db += d;
        }
        dweight[c] += dw;
        dbias[c] += db;
    }
}

/* ------------------------------------------------------------------ rmsnorm */
/* out = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps) */

static inline void rmsnorm_forward_cpu(float *out, float *rstd, const float *inp, const float *weight, int N,
                                       int C, float eps)
{
#pragma omp parallel for if ((size_t)N * C >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *o = out + (size_t)i * C;
        float ms = 0.0f;
        for (int c = 0; c < C; c++) ms += x[c] * x[c];
        const float r = 1.0f / sqrtf(ms / C + eps);
        for (int c = 0; c < C; c++) o[c] = x[c] * r * weight[c];
        rstd[i] = r;
    }
}

/*
 * With g = dout * weight:  dx = rstd * g - x * rstd^3 * mean(g * x),  dweight += dout * x * rstd.
 */
static inline void rmsnorm_backward_cpu(float *dinp, float *dweight, const float *dout, const float *inp,
                                        const float *weight, const float *rstd, int N, int C)
{
#pragma omp parallel for if ((size_t)N * C >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C, *d = dout + (size_t)i * C;
        float *dx = dinp + (size_t)i * C;
        const float r = rstd[i];
        float gx_mean = 0.0f;
        for (int c = 0; c < C; c++) gx_mean += d[c] * weight[c] * x[c];
        gx_mean /= C;
        for (int c = 0; c < C; c++) dx[c] += r * d[c] * weight[c] - x[c] * r * r * r * gx_mean;
    }
#pragma omp parallel for if ((size_t)N * C >= CPU_REF_PARALLEL_WORK)
    for (int c = 0; c < C; c++) {
        float dw = 0.0f;
        for (int i = 0; i < N; i++) dw += dout[(size_t)i * C + c] * inp[(size_t)i * C + c] * rstd[i];
        dweight[c] += dw;
    }
}

/* ------------------------------------------------------------------- matmul */

static inline void matmul_forward_cpu(float *out, const float *inp, const float *weight, const float *bias,
                                      int N, int C, int OC)
{
#pragma omp parallel for if ((size_t)N * C * OC >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        for (int o = 0; o < OC; o++) {
            const float *w = weight + (size_t)o * C;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int c = 0; c < C; c++) acc += x[c] * w[c];
            if (bias) acc += bias[o];
            out[(size_t)i * OC + o] = acc;
        }
    }
}

/*
 * dinp += dout @ W,  dweight += dout^T @ inp,  dbias += column sums of dout.
 * dinp is computed for MATMUL_ROW_TILE rows at a time so that each row of W
 * is read from memory once per tile rather than once per row (the head's W
 * is far larger than the caches).
 */
#define MATMUL_ROW_TILE 16
static inline void matmul_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                                       const float *inp, const float *weight, int N, int C, int OC)
{
#pragma omp parallel for if ((size_t)N * C * OC >= CPU_REF_PARALLEL_WORK)
    for (int i0 = 0; i0 < N; i0 += MATMUL_ROW_TILE) {
        const int i1 = i0 + MATMUL_ROW_TILE < N ? i0 + MATMUL_ROW_TILE : N;
        for (int o = 0; o < OC; o++) {
            const float *w = weight + (size_t)o * C;
            for (int i = i0; i < i1; i++) {
                const float d = dout[(size_t)i * OC + o];
                float *dx = dinp + (size_t)i * C;
#pragma omp simd
                for (int c = 0; c < C; c++) dx[c] += d * w[c];
            }
        }
    }
#pragma omp parallel for if ((size_t)N * C * OC >= CPU_REF_PARALLEL_WORK)
    for (int o = 0; o < OC; o++) {
        float *dw = dweight + (size_t)o * C;
        float db = 0.0f;
        for (int i = 0; i < N; i++) {
            const float d = dout[(size_t)i * OC + o];
            const float *x = inp + (size_t)i * C;
#pragma omp simd
            for (int c = 0; c < C; c++) dw[c] += d * x[c];
            db += d;
        }
        if (dbias) dbias[o] += db;
    }
}

/* --------------------------------------------------------------------- gelu */
/* gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3) */

#define GELU_SCALE 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_CUBIC 0.044715f

static inline void gelu_forward_cpu(float *out, const float *inp, size_t n)
{
#pragma omp parallel for if (n >= CPU_REF_PARALLEL_WORK)
    for (size_t i = 0; i < n; i++) {
        const float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + GELU_CUBIC * x * x * x)));
    }
}

/* gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) du/dx,  du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2) */
static inline void gelu_backward_cpu(float *dinp, const float *inp, const float *dout, size_t n)
{
#pragma omp parallel for if (n >= CPU_REF_PARALLEL_WORK)
    for (size_t i = 0; i < n; i++) {
        const float x = inp[i];
        const float t = tanhf(GELU_SCALE * (x + GELU_CUBIC * x * x * x));
        const float du = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
}

/* ------------------------------------------------------------------- swiglu */
/* out = silu(gate) * up, silu(g) = g * sigmoid(g); gate = inp[:, :F], up = inp[:, F:] */

static inline void swiglu_forward_cpu(float *out, const float *inp, int N, int F)
{
#pragma omp parallel for if ((size_t)N * F >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *gate = inp + (size_t)i * 2 * F, *up = gate + F;
        for (int f = 0; f < F; f++) {
            const float sig = 1.0f / (1.0f + expf(-gate[f]));
            out[(size_t)i * F + f] = gate[f] * sig * up[f];
        }
    }
}

/* dgate += dout * up * sigmoid(g) (1 + g (1 - sigmoid(g))),  dup += dout * silu(g) */
static inline void swiglu_backward_cpu(float *dinp, const float *dout, const float *inp, int N, int F)
{
#pragma omp parallel for if ((size_t)N * F >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *gate = inp + (size_t)i * 2 * F, *up = gate + F;
        float *dgate = dinp + (size_t)i * 2 * F, *dup = dgate + F;
        for (int f = 0; f < F; f++) {
            const float g = gate[f], d = dout[(size_t)i * F + f];
            const float sig = 1.0f / (1.0f + expf(-g));
            dgate[f] += d * up[f] * sig * (1.0f + g * (1.0f - sig));
            dup[f] += d * g * sig;
        }
    }
}

/* --------------------------------------------------------------------- rope */

/*
 * Rotate each (d, d + HD/2) pair of every q and k head of a token by
 * direction * angle and write (accumulate = 0) or add (accumulate = 1) the
 * result; v heads pass through. The backward of a rotation is the rotation by
 * the opposite angle, so forward and backward share this one routine.
 * Angles are computed in double so the reference stays exact at large pos.
 */
static inline void rope_rotate_cpu(float *out, const float *inp, const int *pos, int N, int NH, int NKV, int HD,
                                   RopeParams rope, float direction, int accumulate)
{
    const int stride = (NH + 2 * NKV) * HD, half = HD / 2, rotated = (NH + NKV) * HD;
#pragma omp parallel for if ((size_t)N * stride >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * stride;
        float *o = out + (size_t)i * stride;
        for (int d = 0; d < half; d++) {
            const double angle = pos[i] * rope_inv_freq(rope, d, HD);
            const float c = (float)cos(angle), s = direction * (float)sin(angle);
            for (int head = 0; head < NH + NKV; head++) {
                const float x1 = x[head * HD + d], x2 = x[head * HD + d + half];
                const float y1 = x1 * c - x2 * s, y2 = x1 * s + x2 * c;
                o[head * HD + d] = accumulate ? o[head * HD + d] + y1 : y1;
                o[head * HD + d + half] = accumulate ? o[head * HD + d + half] + y2 : y2;
            }
        }
        for (int k = rotated; k < stride; k++) o[k] = accumulate ? o[k] + x[k] : x[k];
    }
}

static inline void rope_forward_cpu(float *out, const float *inp, const int *pos, int N, int NH, int NKV, int HD,
                                    RopeParams rope)
{
    rope_rotate_cpu(out, inp, pos, N, NH, NKV, HD, rope, 1.0f, 0);
}

static inline void rope_backward_cpu(float *dinp, const float *dout, const int *pos, int N, int NH, int NKV,
                                     int HD, RopeParams rope)
{
    rope_rotate_cpu(dinp, dout, pos, N, NH, NKV, HD, rope, -1.0f, 1);
}

/* ----------------------------------------------------------------- residual */

static inline void residual_forward_cpu(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for if (n >= CPU_REF_PARALLEL_WORK)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* --------------------------------------------------------------- classifier */

/*
 * Softmax over the first V logits of each row (padded columns get probability
 * 0) and loss = logsumexp - logit[target], computed that way for accuracy.
 * A target outside [-1, V) is a caller bug and stops the program.
 */
static inline void classifier_forward_cpu(float *losses, float *probs, const float *logits, const int *targets,
                                          int N, int V, int Vp)
{
    for (int i = 0; i < N; i++)
        if (targets[i] < -1 || targets[i] >= V)
            die("classifier_forward_cpu: target %d of token %d is outside [-1, V=%d)", targets[i], i, V);
#pragma omp parallel for if ((size_t)N * Vp >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * Vp;
        float *p = probs + (size_t)i * Vp;
        float maxval = -INFINITY;
        for (int v = 0; v < V; v++) maxval = fmaxf(maxval, z[v]);
        float sum = 0.0f;
        for (int v = 0; v < V; v++) {
            p[v] = expf(z[v] - maxval);
            sum += p[v];
        }
        for (int v = 0; v < V; v++) p[v] /= sum;
        for (int v = V; v < Vp; v++) p[v] = 0.0f;
        losses[i] = targets[i] == -1 ? 0.0f : maxval + logf(sum) - z[targets[i]];
    }
}

/* dlogits += dloss * (probs - onehot(target)) on rows with a target; padded columns get nothing. */
static inline void classifier_backward_cpu(float *dlogits, const float *probs, const int *targets, float dloss,
                                           int N, int V, int Vp)
{
#pragma omp parallel for if ((size_t)N * Vp >= CPU_REF_PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        if (targets[i] == -1) continue;
        const float *p = probs + (size_t)i * Vp;
        float *dz = dlogits + (size_t)i * Vp;
        for (int v = 0; v < V; v++) dz[v] += dloss * (p[v] - (v == targets[i] ? 1.0f : 0.0f));
    }
}

/* -------------------------------------------------------------------- adamw */

/*
 * AdamW with bias correction and decoupled weight decay (step is 1-based):
 *   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
 *   param -= lr * ( (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps) + weight_decay * param )
 */
static inline void adamw_update_cpu(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                                    float beta1, float beta2, float eps, float weight_decay, int step)
{
    const float m_correction = 1.0f - powf(beta1, (float)step);
    const float v_correction = 1.0f - powf(beta2, (float)step);
#pragma omp parallel for if (n >= CPU_REF_PARALLEL_WORK)
    for (size_t i = 0; i < n; i++) {
        const float g = grads[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        const float m_hat = m[i] / m_correction, v_hat = v[i] / v_correction;
        params[i] -= lr * (m_hat / (sqrtf(v_hat) + eps) + weight_decay * params[i]);
    }
}

/* sqrt(sum of squares), accumulated in double. */
static inline float global_norm_cpu(const float *grads, size_t n)
{
    double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) if (n >= CPU_REF_PARALLEL_WORK)
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    return (float)sqrt(sum);
}

#endif /* PACKLM_CPU_REF_H */
