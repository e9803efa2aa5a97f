/*
 * model_cpu.h — the whole transformer in fp32 on the CPU, forward, backward
 * and AdamW update, for both families, over a packed batch. It is the oracle
 * for the GPU trainer: same config + seed + batch -> same loss and gradients.
 *
 * Parameters, gradients and the two AdamW moments are each ONE contiguous
 * buffer of layout.total floats in the params.h order (llm.c's GPT-2 order,
 * lm_head last), initialised by param_init. Tensor t of any of them lives at
 * offset layout.offset[t], layer l of a per-layer tensor at PARAM_LAYER_PTR.
 *
 * One layer, N = B*T tokens, x the residual stream (N, C):
 *   gpt2:  h = LN(x);  qkv = h Wqkv^T + b;  a = attn(qkv);  x += a Wo^T + b
 *          h = LN(x);  u = gelu(h Wfc^T + b);             x += u Wproj^T + b
 *   llama: h = RMS(x); qkv = rope(h Wqkv^T); a = attn(qkv); x += a Wo^T
 *          h = RMS(x); u = swiglu(h Wfc^T) (gate | up);   x += u Wproj^T
 * Input: x = wte[token] (+ wpe[pos] for gpt2). Output: logits = norm(x) W^T
 * with W = wte (tied) or lm_head, shape (N, Vp); softmax over the first V.
 * Attention is block-diagonal causal over the batch's cu_seqlens segments;
 * positions (wpe rows, RoPE angles) come from the batch's pos.
 *
 * Loss = sum of -log p(target) over tokens with target != -1, divided by
 * loss_count (the count of such tokens in the whole global batch; 0 = count
 * this batch). cpu_model_backward ADDS gradients scaled the same way, so
 * micro-batches accumulate until cpu_model_zero_grad.
 */
#ifndef PACKLM_MODEL_CPU_H
#define PACKLM_MODEL_CPU_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "batch.h"
#include "config.h"
#include "cpu_ref.h"
#include "params.h"
#include "utils.h"

/* Activations of one layer, each (N, width) unless noted. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd; /* norm before attention; mean/rstd (N), mean unused by llama */
    float *qkv;                       /* (N, QKV) fused q | k | v projection */
    float *qkv_rope;                  /* (N, QKV) after RoPE (llama); gpt2: same pointer as qkv */
    float *att, *lse;                 /* attention output (N, C), log-sum-exp (NH, N) */
    float *attproj;                   /* (N, C) attention output projection */
    float *resid2;                    /* (N, C) residual stream after the attention block */
    float *ln2, *ln2_mean, *ln2_rstd; /* norm before the MLP */
    float *fch;                       /* (N, FC) first MLP matmul, FC = F (gpt2) or 2F (llama) */
    float *fch_act;                   /* (N, F) gelu(fch) or swiglu(fch) */
    float *fcproj;                    /* (N, C) second MLP matmul */
    float *resid3;                    /* (N, C) residual stream after the MLP: the layer output */
} CpuLayerActs;

/* Gradient scratch of the backward pass, reused by every layer. */
typedef struct {
    float *dresid;          /* (N, C) gradient of the residual stream, accumulated */
    float *dnorm;           /* (N, C) gradient of a norm output */
    float *datt;            /* (N, C) */
    float *dqkv_rope;       /* (N, QKV) gradient of the attention input */
    float *dqkv;            /* (N, QKV) before RoPE (llama); gpt2: same pointer as dqkv_rope */
    float *dfch, *dfch_act; /* (N, FC), (N, F) */
    float *dlogits;         /* (N, Vp) */
} CpuGradScratch;

typedef struct {
    ModelConfig cfg;
    ParamLayout layout;
    int max_tokens;                  /* B*T capacity given to cpu_model_create */
    float *params, *grads;           /* each layout.total floats */
    float *adam_m, *adam_v;          /* AdamW first and second moments, layout.total floats each */
    int adam_step;                   /* AdamW updates taken so far */
    float *encoded;                  /* (N, C) embedding output = residual stream entering layer 0 */
    CpuLayerActs *layers;            /* L of them */
    float *lnf, *lnf_mean, *lnf_rstd; /* final norm */
    float *logits, *probs;           /* (N, Vp) */
    float *losses;                   /* (N) per-token loss, 0 where target == -1 */
    CpuGradScratch scratch;
    float loss_scale;                /* 1 / loss_count of the last forward (0 if it had none) */
    int forward_tokens;              /* N of the last forward, 0 before the first */
    float *activation_memory;        /* the one allocation every pointer above points into */
} CpuModel;

/* Hand out n floats from a buffer being laid out; with base NULL only count. */
static inline float *cpu_model_carve(float *base, size_t *used, size_t n)
{
    float *p = base ? base + *used : NULL;
    *used += n;
    return p;
}

/* Point every activation and scratch buffer into `base` (or just count with
   base NULL). Returns the number of floats needed. */
static inline size_t cpu_model_layout_activations(CpuModel *m, float *base)
{
    const ModelConfig *c = &m->cfg;
    const size_t N = (size_t)m->max_tokens, C = (size_t)c->channels, NH = (size_t)c->num_heads;
    const size_t QKV = (size_t)model_qkv_width(c), FC = (size_t)model_fc_width(c);
    const size_t F = (size_t)c->ffn_hidden, Vp = (size_t)c->padded_vocab_size;
    const int llama = c->family == MODEL_LLAMA;
    size_t used = 0;
    m->encoded = cpu_model_carve(base, &used, N * C);
    for (int l = 0; l < c->num_layers; l++) {
        CpuLayerActs *a = &m->layers[l];
        a->ln1 = cpu_model_carve(base, &used, N * C);
        a->ln1_mean = cpu_model_carve(base, &used, N);
        a->ln1_rstd = cpu_model_carve(base, &used, N);
        a->qkv = cpu_model_carve(base, &used, N * QKV);
        a->qkv_rope = llama ? cpu_model_carve(base, &used, N * QKV) : a->qkv;
        a->att = cpu_model_carve(base, &used, N * C);
        a->lse = cpu_model_carve(base, &used, NH * N);
        a->attproj = cpu_model_carve(base, &used, N * C);
        a->resid2 = cpu_model_carve(base, &used, N * C);
        a->ln2 = cpu_model_carve(base, &used, N * C);
        a->ln2_mean = cpu_model_carve(base, &used, N);
        a->ln2_rstd = cpu_model_carve(base, &used, N);
        a->fch = cpu_model_carve(base, &used, N * FC);
        a->fch_act = cpu_model_carve(base, &used, N * F);
        a->fcproj = cpu_model_carve(base, &used, N * C);
        a->resid3 = cpu_model_carve(base, &used, N * C);
    }
    m->lnf = cpu_model_carve(base, &used, N * C);
    m->lnf_mean = cpu_model_carve(base, &used, N);
    m->lnf_rstd = cpu_model_carve(base, &used, N);
    m->logits = cpu_model_carve(base, &used, N * Vp);
    m->probs = cpu_model_carve(base, &used, N * Vp);
    m->losses = cpu_model_carve(base, &used, N);
    CpuGradScratch *s = &m->scratch;
    s->dresid = cpu_model_carve(base, &used, N * C);
    s->dnorm = cpu_model_carve(base, &used, N * C);
    s->datt = cpu_model_carve(base, &used, N * C);
    s->dqkv_rope = cpu_model_carve(base, &used, N * QKV);
    s->dqkv = llama ? cpu_model_carve(base, &used, N * QKV) : s->dqkv_rope;
    s->dfch = cpu_model_carve(base, &used, N * FC);
    s->dfch_act = cpu_model_carve(base, &used, N * F);
    s->dlogits = cpu_model_carve(base, &used, N * Vp);
    return used;
}

/* Build a model for batches of up to B rows of T tokens, parameters from param_init(seed). */
static inline void cpu_model_create(CpuModel *m, const ModelConfig *cfg, int B, int T, unsigned long long seed)
{
    memset(m, 0, sizeof(*m));
    if (B < 1) die("cpu_model_create: batch size B must be >= 1 (got %d)", B);
    model_config_check_seq_len(cfg, T);
    m->cfg = *cfg;
    m->max_tokens = B * T;
    param_layout_init(&m->layout, cfg);
    const size_t total = m->layout.total;
    m->params = (float *)malloc_or_die(total * sizeof(float));
    m->grads = (float *)calloc_or_die(total, sizeof(float));
    m->adam_m = (float *)calloc_or_die(total, sizeof(float));
    m->adam_v = (float *)calloc_or_die(total, sizeof(float));
    param_init(m->params, &m->layout, cfg, seed);
    m->layers = (CpuLayerActs *)calloc_or_die((size_t)cfg->num_layers, sizeof(CpuLayerActs));
    const size_t floats = cpu_model_layout_activations(m, NULL);
    m->activation_memory = (float *)calloc_or_die(floats, sizeof(float));
    cpu_model_layout_activations(m, m->activation_memory);
}

static inline void cpu_model_free(CpuModel *m)
{
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free(m->layers);
    free(m->activation_memory);
    memset(m, 0, sizeof(*m));
}

/* Layer l of tensor t (l = 0 for tensors that are not per layer) in a
   parameter-shaped buffer (params, grads, adam_m, adam_v); NULL if the family lacks t. */
static inline float *cpu_model_tensor(const CpuModel *m, float *buffer, int t, int l)
{
    return m->layout.size[t] ? PARAM_LAYER_PTR(buffer, &m->layout, &m->cfg, t, l) : NULL;
}

/* Shorthands for the passes below: parameter and gradient of tensor t, layer l. */
#define CPU_W(t, l) cpu_model_tensor(m, m->params, (t), (l))
#define CPU_DW(t, l) cpu_model_tensor(m, m->grads, (t), (l))

static inline void cpu_zero(float *buffer, size_t n)
{
    memset(buffer, 0, n * sizeof(float));
}

/* The family's norm: LayerNorm (gpt2, with bias and mean) or RMSNorm (llama). */
static inline void cpu_model_norm_forward(const CpuModel *m, float *out, float *mean, float *rstd, const float *inp,
                                          const float *weight, const float *bias, int N)
{
    const int C = m->cfg.channels;
    if (m->cfg.family == MODEL_GPT2) layernorm_forward_cpu(out, mean, rstd, inp, weight, bias, N, C, m->cfg.norm_eps);
    else rmsnorm_forward_cpu(out, rstd, inp, weight, N, C, m->cfg.norm_eps);
}

static inline void cpu_model_norm_backward(const CpuModel *m, float *dinp, float *dweight, float *dbias,
                                           const float *dout, const float *inp, const float *weight,
                                           const float *mean, const float *rstd, int N)
{
    const int C = m->cfg.channels;
    if (m->cfg.family == MODEL_GPT2) layernorm_backward_cpu(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    else rmsnorm_backward_cpu(dinp, dweight, dout, inp, weight, rstd, N, C);
}

/* Every token id must index the vocabulary, every target too (or be -1). */
static inline void cpu_model_check_batch(const CpuModel *m, const PackedBatch *b)
{
    const int N = b->B * b->T, V = m->cfg.vocab_size;
    if (N > m->max_tokens)
        die("cpu model: batch of %d x %d tokens exceeds the %d tokens it was created for", b->B, b->T,
            m->max_tokens);
    model_config_check_seq_len(&m->cfg, b->T);
    const char *problem = packed_batch_check(b);
    if (problem) die("cpu model: invalid packed batch: %s", problem);
    for (int i = 0; i < N; i++) {
        if (b->inputs[i] < 0 || b->inputs[i] >= V)
            die("cpu model: input token %d at position %d is outside the vocabulary [0, %d)", b->inputs[i], i, V);
        if (b->targets[i] < -1 || b->targets[i] >= V)
            die("cpu model: target %d at position %d is outside [-1, %d)", b->targets[i], i, V);
    }
}

/*
 * Forward pass over packed batch b; returns the loss (see the top comment).
 * loss_count: tokens with a target in the whole global batch, 0 = count b's.
 */
static inline float cpu_model_forward(CpuModel *m, const PackedBatch *b, int loss_count)
{
    cpu_model_check_batch(m, b);
    const ModelConfig *c = &m->cfg;
    const int N = b->B * b->T, C = c->channels, NH = c->num_heads, NKV = c->num_kv_heads, HD = c->head_dim;
    const int QKV = model_qkv_width(c), FC = model_fc_width(c), F = c->ffn_hidden;
    const int V = c->vocab_size, Vp = c->padded_vocab_size, llama = c->family == MODEL_LLAMA;

    encoder_forward_cpu(m->encoded, b->inputs, b->pos, CPU_W(PARAM_WTE, 0), CPU_W(PARAM_WPE, 0), N, C);
    const float *x = m->encoded;
    for (int l = 0; l < c->num_layers; l++) {
        CpuLayerActs *a = &m->layers[l];
        cpu_model_norm_forward(m, a->ln1, a->ln1_mean, a->ln1_rstd, x, CPU_W(PARAM_LN1W, l), CPU_W(PARAM_LN1B, l),
                               N);
        matmul_forward_cpu(a->qkv, a->ln1, CPU_W(PARAM_QKVW, l), CPU_W(PARAM_QKVB, l), N, C, QKV);
        if (llama) rope_forward_cpu(a->qkv_rope, a->qkv, b->pos, N, NH, NKV, HD, model_rope_params(c));
        attention_forward_cpu(a->att, a->lse, a->qkv_rope, b->cu_seqlens, b->num_segments, N, NH, NKV, HD);
        matmul_forward_cpu(a->attproj, a->att, CPU_W(PARAM_ATTPROJW, l), CPU_W(PARAM_ATTPROJB, l), N, C, C);
        residual_forward_cpu(a->resid2, x, a->attproj, (size_t)N * C);
        cpu_model_norm_forward(m, a->ln2, a->ln2_mean, a->ln2_rstd, a->resid2, CPU_W(PARAM_LN2W, l),
                               CPU_W(PARAM_LN2B, l), N);
        matmul_forward_cpu(a->fch, a->ln2, CPU_W(PARAM_FCW, l), CPU_W(PARAM_FCB, l), N, C, FC);
        if (llama) swiglu_forward_cpu(a->fch_act, a->fch, N, F);
        else gelu_forward_cpu(a->fch_act, a->fch, (size_t)N * F);
        matmul_forward_cpu(a->fcproj, a->fch_act, CPU_W(PARAM_FCPROJW, l), CPU_W(PARAM_FCPROJB, l), N, F, C);
        residual_forward_cpu(a->resid3, a->resid2, a->fcproj, (size_t)N * C);
        x = a->resid3;
    }
    cpu_model_norm_forward(m, m->lnf, m->lnf_mean, m->lnf_rstd, x, CPU_W(PARAM_LNFW, 0), CPU_W(PARAM_LNFB, 0), N);
    matmul_forward_cpu(m->logits, m->lnf, CPU_W(param_head_tensor(c), 0), NULL, N, C, Vp);
    classifier_forward_cpu(m->losses, m->probs, m->logits, b->targets, N, V, Vp);
    m->forward_tokens = N;

    if (loss_count == 0)
        for (int i = 0; i < N; i++) loss_count += b->targets[i] != -1;
    m->loss_scale = loss_count > 0 ? 1.0f / (float)loss_count : 0.0f;
    double sum = 0.0;
    for (int i = 0; i < N; i++) sum += m->losses[i];
    return (float)(sum * m->loss_scale);
}

/* Backward of the last forward (which must have seen the same batch b): grads += d loss / d params. */
static inline void cpu_model_backward(CpuModel *m, const PackedBatch *b)
{
    const ModelConfig *c = &m->cfg;
    const int N = b->B * b->T, C = c->channels, NH = c->num_heads, NKV = c->num_kv_heads, HD = c->head_dim;
    const int QKV = model_qkv_width(c), FC = model_fc_width(c), F = c->ffn_hidden;
    const int V = c->vocab_size, Vp = c->padded_vocab_size, llama = c->family == MODEL_LLAMA;
    const size_t NC = (size_t)N * C;
    const CpuGradScratch *s = &m->scratch;
    if (m->forward_tokens != N)
        die("cpu_model_backward: needs a forward pass over the same batch first (forward saw %d tokens, batch has %d)",
            m->forward_tokens, N);

    /* classifier and head */
    cpu_zero(s->dlogits, (size_t)N * Vp);
    classifier_backward_cpu(s->dlogits, m->probs, b->targets, m->loss_scale, N, V, Vp);
    const int head = param_head_tensor(c);
    cpu_zero(s->dnorm, NC);
    matmul_backward_cpu(s->dnorm, CPU_DW(head, 0), NULL, s->dlogits, m->lnf, CPU_W(head, 0), N, C, Vp);
    cpu_zero(s->dresid, NC);
    const float *last = m->layers[c->num_layers - 1].resid3;
    cpu_model_norm_backward(m, s->dresid, CPU_DW(PARAM_LNFW, 0), CPU_DW(PARAM_LNFB, 0), s->dnorm, last,
                            CPU_W(PARAM_LNFW, 0), m->lnf_mean, m->lnf_rstd, N);

    /* layers, last to first; dresid carries d loss / d (residual stream) */
    for (int l = c->num_layers - 1; l >= 0; l--) {
        const CpuLayerActs *a = &m->layers[l];
        const float *x = l == 0 ? m->encoded : m->layers[l - 1].resid3;
        /* MLP block: resid3 = resid2 + fcproj, so dresid is also d fcproj */
        cpu_zero(s->dfch_act, (size_t)N * F);
        matmul_backward_cpu(s->dfch_act, CPU_DW(PARAM_FCPROJW, l), CPU_DW(PARAM_FCPROJB, l), s->dresid, a->fch_act,
                            CPU_W(PARAM_FCPROJW, l), N, F, C);
        cpu_zero(s->dfch, (size_t)N * FC);
        if (llama) swiglu_backward_cpu(s->dfch, s->dfch_act, a->fch, N, F);
        else gelu_backward_cpu(s->dfch, a->fch, s->dfch_act, (size_t)N * F);
        cpu_zero(s->dnorm, NC);
        matmul_backward_cpu(s->dnorm, CPU_DW(PARAM_FCW, l), CPU_DW(PARAM_FCB, l), s->dfch, a->ln2, CPU_W(PARAM_FCW, l),
                            N, C, FC);
        cpu_model_norm_backward(m, s->dresid, CPU_DW(PARAM_LN2W, l), CPU_DW(PARAM_LN2B, l), s->dnorm, a->resid2,
                                CPU_W(PARAM_LN2W, l), a->ln2_mean, a->ln2_rstd, N);
        /* attention block: resid2 = x + attproj */
        cpu_zero(s->datt, NC);
        matmul_backward_cpu(s->datt, CPU_DW(PARAM_ATTPROJW, l), CPU_DW(PARAM_ATTPROJB, l), s->dresid, a->att,
                            CPU_W(PARAM_ATTPROJW, l), N, C, C);
        attention_backward_cpu(s->dqkv_rope, s->datt, a->qkv_rope, a->att, a->lse, b->cu_seqlens, b->num_segments, N,
                               NH, NKV, HD);
        if (llama) {
            cpu_zero(s->dqkv, (size_t)N * QKV);
            rope_backward_cpu(s->dqkv, s->dqkv_rope, b->pos, N, NH, NKV, HD, model_rope_params(c));
        }
        cpu_zero(s->dnorm, NC);
        matmul_backward_cpu(s->dnorm, CPU_DW(PARAM_QKVW, l), CPU_DW(PARAM_QKVB, l), s->dqkv, a->ln1,
                            CPU_W(PARAM_QKVW, l), N, C, QKV);
        cpu_model_norm_backward(m, s->dresid, CPU_DW(PARAM_LN1W, l), CPU_DW(PARAM_LN1B, l), s->dnorm, x,
                                CPU_W(PARAM_LN1W, l), a->ln1_mean, a->ln1_rstd, N);
    }
    encoder_backward_cpu(CPU_DW(PARAM_WTE, 0), CPU_DW(PARAM_WPE, 0), s->dresid, b->inputs, b->pos, N, C);
}

static inline void cpu_model_zero_grad(CpuModel *m)
{
    memset(m->grads, 0, m->layout.total * sizeof(float));
}

/*
 * One AdamW step on all parameters. Gradients are first clipped to global
 * norm grad_clip (when grad_clip > 0 and the norm exceeds it); weight decay
 * applies to matrices only (param_is_matrix). Returns the norm before clipping;
 * a norm that is not finite leaves every parameter and moment unchanged (the
 * caller skips the step).
 */
static inline float cpu_model_update(CpuModel *m, float lr, float weight_decay, float beta1, float beta2, float eps,
                                     float grad_clip)
{
    const size_t total = m->layout.total;
    const float norm = global_norm_cpu(m->grads, total);
    if (!isfinite(norm)) return norm;
    if (grad_clip > 0.0f && norm > grad_clip) {
        const float scale = grad_clip / norm;
        for (size_t i = 0; i < total; i++) m->grads[i] *= scale;
    }
    m->adam_step++;
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        const size_t off = m->layout.offset[t];
        adamw_update_cpu(m->params + off, m->grads + off, m->adam_m + off, m->adam_v + off, m->layout.size[t], lr, beta1, beta2,
                         eps, param_is_matrix(t) ? weight_decay : 0.0f, m->adam_step);
    }
    return norm;
}

#undef CPU_W
#undef CPU_DW

#endif /* PACKLM_MODEL_CPU_H */
