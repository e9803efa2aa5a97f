/*
 * params.h — where every parameter tensor lives inside the one contiguous
 * parameter buffer, and the deterministic initialisation from a seed.
 *
 * The order is llm.c's GPT-2 order (so GPT-2 checkpoints stay compatible),
 * with one extra tensor at the end for an untied head. A tensor the family
 * does not have (gpt2: lm_head when tied; llama: wpe, all biases, LN biases)
 * has size 0. Per-layer tensors hold all L layers back to back, layer l at
 * offset + l * (size / L). Weights are stored (out_features, in_features):
 * y = x @ W^T (+ b).
 *
 *   tensor      gpt2 shape          llama shape
 *   wte         (Vp, C)             (Vp, C)
 *   wpe         (maxT, C)           -
 *   ln1w, ln1b  (L, C)              (L, C), -
 *   qkvw        (L, QKV, C)         (L, QKV, C)     QKV = (NH + 2*NKV) * HD; rows: q | k | v
 *   qkvb        (L, QKV)            -
 *   attprojw    (L, C, C)           (L, C, C)
 *   attprojb    (L, C)              -
 *   ln2w, ln2b  (L, C)              (L, C), -
 *   fcw         (L, F, C)           (L, 2F, C)      llama rows: gate (F) | up (F)
 *   fcb         (L, F)              -
 *   fcprojw     (L, C, F)           (L, C, F)
 *   fcprojb     (L, C)              -
 *   lnfw, lnfb  (C)                 (C), -
 *   lm_head     - (tied)            (Vp, C) when untied
 */
#ifndef PACKLM_PARAMS_H
#define PACKLM_PARAMS_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "rand.h"

enum {
    PARAM_WTE, PARAM_WPE, PARAM_LN1W, PARAM_LN1B, PARAM_QKVW, PARAM_QKVB,
    PARAM_ATTPROJW, PARAM_ATTPROJB, PARAM_LN2W, PARAM_LN2B, PARAM_FCW, PARAM_FCB,
    PARAM_FCPROJW, PARAM_FCPROJB, PARAM_LNFW, PARAM_LNFB, PARAM_LM_HEAD,
    NUM_PARAM_TENSORS
};

static const char *const PARAM_NAMES[NUM_PARAM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b",
    "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb", "lm_head",
};

typedef struct {
    size_t size[NUM_PARAM_TENSORS];   /* elements, 0 if the family lacks the tensor */
    size_t offset[NUM_PARAM_TENSORS]; /* element offset inside the contiguous buffer */
    size_t total;                     /* total elements */
} ParamLayout;

/* 1 for matrices (weight decay applies), 0 for vectors (norm weights, biases). */
static inline int param_is_matrix(int tensor)
{
    return tensor == PARAM_WTE || tensor == PARAM_WPE || tensor == PARAM_QKVW || tensor == PARAM_ATTPROJW ||
           tensor == PARAM_FCW || tensor == PARAM_FCPROJW || tensor == PARAM_LM_HEAD;
}

static inline void param_layout_init(ParamLayout *p, const ModelConfig *c)
{
    size_t L = (size_t)c->num_layers, C = (size_t)c->channels, Vp = (size_t)c->padded_vocab_size;
    size_t QKV = (size_t)model_qkv_width(c), F = (size_t)c->ffn_hidden, FC = (size_t)model_fc_width(c);
    int gpt2 = c->family == MODEL_GPT2;
    size_t *s = p->size;
    s[PARAM_WTE] = Vp * C;
    s[PARAM_WPE] = gpt2 ? (size_t)c->max_seq_len * C : 0;
    s[PARAM_LN1W] = L * C;
    s[PARAM_LN1B] = gpt2 ? L * C : 0;
    s[PARAM_QKVW] = L * QKV * C;
    s[PARAM_QKVB] = gpt2 ? L * QKV : 0;
    s[PARAM_ATTPROJW] = L * C * C;
    s[PARAM_ATTPROJB] = gpt2 ? L * C : 0;
    s[PARAM_LN2W] = L * C;
    s[PARAM_LN2B] = gpt2 ? L * C : 0;
    s[PARAM_FCW] = L * FC * C;
    s[PARAM_FCB] = gpt2 ? L * FC : 0;
    s[PARAM_FCPROJW] = L * C * F;
    s[PARAM_FCPROJB] = gpt2 ? L * C : 0;
    s[PARAM_LNFW] = C;
    s[PARAM_LNFB] = gpt2 ? C : 0;
    s[PARAM_LM_HEAD] = c->tied_embeddings ? 0 : Vp * C;
    p->total = 0;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        p->offset[i] = p->total;
        p->total += s[i];
    }
}

/* Pointer to layer `layer` of per-layer tensor `tensor` inside buffer `base`. */
#define PARAM_LAYER_PTR(base, layout, cfg, tensor, layer)                                    \
    ((base) + (layout)->offset[tensor] + (size_t)(layer) * ((layout)->size[tensor] / (size_t)(cfg)->num_layers))

/* The tensor that produces logits: lm_head when untied, else wte. */
static inline int param_head_tensor(const ModelConfig *c)
{
    return c->tied_embeddings ? PARAM_WTE : PARAM_LM_HEAD;
}

/*
 * GPT-2 style init, the same in every program: matrices ~ normal(0, 0.02),
 * the two residual projections (attprojw, fcprojw) ~ normal(0, 0.02/sqrt(2L)),
 * norm weights 1, biases 0, and the padded vocabulary rows of wte / lm_head 0.
 * One RNG stream from `seed`, consumed in layout order.
 */
static inline void param_init(float *params, const ParamLayout *p, const ModelConfig *c, unsigned long long seed)
{
    Rng rng = rng_create(seed);
    const double std = 0.02, residual_std = 0.02 / sqrt(2.0 * c->num_layers);
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        float *w = params + p->offset[t];
        size_t n = p->size[t];
        if (t == PARAM_LN1W || t == PARAM_LN2W || t == PARAM_LNFW) {
            for (size_t i = 0; i < n; i++) w[i] = 1.0f;
        } else if (!param_is_matrix(t)) {
            memset(w, 0, n * sizeof(float));
        } else {
            double s = (t == PARAM_ATTPROJW || t == PARAM_FCPROJW) ? residual_std : std;
            /* rng_normal takes two draws, so sample i starts 2i draws in: the
               samples are independent of each other and fill in parallel */
#pragma omp parallel for
            for (size_t i = 0; i < n; i++) {
                Rng r = rng;
                rng_skip(&r, 2 * (uint64_t)i);
                w[i] = (float)(s * rng_normal(&r));
            }
            rng_skip(&rng, 2 * (uint64_t)n);
        }
    }
    /* padded vocabulary rows carry no token: keep them exactly zero */
    size_t C = (size_t)c->channels;
    size_t real = (size_t)c->vocab_size * C, padded = (size_t)c->padded_vocab_size * C;
    memset(params + p->offset[PARAM_WTE] + real, 0, (padded - real) * sizeof(float));
    if (p->size[PARAM_LM_HEAD]) memset(params + p->offset[PARAM_LM_HEAD] + real, 0, (padded - real) * sizeof(float));
}

#endif /* PACKLM_PARAMS_H */
