/*
 * model.cuh — the transformer on the GPU: its buffers, forward, loss and
 * backward, for both families (gpt2 and llama), over packed micro-batches.
 * The math is model_cpu.h's, on bf16 kernels. The optimizer step (gradient
 * reduction, clipping, AdamW, ZeRO gather) is the trainer's: train_gpt.cu.
 *
 * Buffers (N = B*T tokens of capacity; all activations row-major (N, width)):
 *   params, grads   bf16, layout.total elements in params.h order (one flat buffer each)
 *   master, m, v    fp32 master weights and AdamW moments over this rank's slice
 *                   [opt_offset, opt_offset + opt_size) of the flat buffer
 *                   (one rank: the whole buffer; ZeRO ranks: their shard)
 *   per layer l:    resid_in (N,C) the residual stream entering the layer,
 *                   ln1 (N,C) + mean/rstd (N), qkv (N,QKV) (after RoPE for llama),
 *                   atty (N,C) + lse (NH,N), resid_mid (N,C) after attention,
 *                   ln2 (N,C) + mean/rstd, fch (N,FC) pre-activation (FC = F gpt2,
 *                   2F llama), fch_act (N,F) gelu / swiglu output
 *                   activation recompute (-r): 1 keeps one fch_act for all layers and
 *                   recomputes it in the backward; 2 also one ln1 and one ln2 (their
 *                   mean/rstd stay per layer)
 *   final:          resid_final (N,C), lnf (N,C) + mean/rstd, logits (N,Vp)
 *                   (overwritten in place by their gradient), losses (N) fp32
 *   scratch:        proj_out (N,C) forward; dresid, dnorm (N,C), dbig (N,max(F,QKV)),
 *                   dfch (N,2F, llama) backward; reduction scratches
 * Tensors a family lacks (llama's biases, wpe) take no room: model_param
 * returns NULL for them, as model_cpu.h does.
 * Every buffer is listed once in model_buffers(): the same list sizes the
 * memory estimate (for the out-of-memory message) and carves the allocation.
 *
 * Use (train_gpt.cu's train_step): gpu_model_zero_grad; for each micro-batch
 * gpu_model_upload_batch, gpu_model_forward, gpu_model_loss (dloss = 1/count
 * of targets in the global batch), gpu_model_backward. All of it is queued on
 * m->stream: nothing here waits for the GPU except set_params / get_state.
 * The backward calls m->grads_ready(ctx, bucket, grads, stream) as soon as a
 * bucket's gradients are final (bucket l < L: layer l; L: the tensors outside
 * the layers), so the caller can start reducing them (dist.cuh) meanwhile.
 */
#ifndef PACKLM_MODEL_CUH
#define PACKLM_MODEL_CUH

#include <math.h>
#include <stdint.h>

#include "attention.cuh"
#include "batch.h"
#include "classifier.cuh"
#include "config.h"
#include "cuda_common.h"
#include "encoder.cuh"
#include "gelu.cuh"
#include "layernorm.cuh"
#include "matmul.cuh"
#include "params.h"
#include "rand.h"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "swiglu.cuh"
#include "utils.h"

/* The gradients of `bucket` in `grads` are final once `stream` reaches this point. */
typedef void (*GradsReadyFn)(void *ctx, int bucket, floatX *grads, cudaStream_t stream);

typedef struct {
    ModelConfig cfg;
    ParamLayout layout;
    int B, T;               /* capacity: at most B*T tokens per micro-batch */
    size_t opt_offset, opt_size;
    int recompute;          /* 0: keep every activation; 1: recompute fch_act; 2: also ln1, ln2 */
    cudaStream_t stream;
    GradsReadyFn grads_ready; /* NULL: nobody is told */
    void *grads_ready_ctx;

    floatX *params, *grads;
    float *master, *adam_m, *adam_v;

    floatX *resid_in, *ln1, *qkv, *atty, *resid_mid, *ln2, *fch, *fch_act; /* per layer, L stacked */
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd, *lse;                 /* per layer, L stacked */
    floatX *resid_final, *lnf, *logits;
    float *lnf_mean, *lnf_rstd, *losses;

    floatX *proj_out, *dresid, *dnorm, *dbig, *dfch;
    float *norm_scratch, *bias_scratch;
    void *encoder_scratch, *attention_workspace;
    int *inputs, *targets, *pos, *cu_seqlens; /* the current micro-batch on the device */

    int num_tokens, num_segments, max_seqlen; /* of the current micro-batch */
    void *memory;                             /* the one allocation everything above lives in */
    size_t memory_bytes;
} GpuModel;

/* ---------------------------------------------------------------- buffers and memory */

typedef struct {
    void **ptr;
    size_t bytes;
} BufferSpec;

#define MODEL_MAX_BUFFERS 64
#define MODEL_BUFFER_ALIGN 256

/* Every device buffer of the model with its size; returns how many. */
static int model_buffers(GpuModel *m, BufferSpec *spec)
{
    const ModelConfig *c = &m->cfg;
    const size_t N = (size_t)m->B * m->T, L = c->num_layers, C = c->channels, NH = c->num_heads;
    const size_t QKV = model_qkv_width(c), FC = model_fc_width(c), F = c->ffn_hidden, Vp = c->padded_vocab_size;
    const size_t P = m->layout.total, bf = sizeof(floatX), fl = sizeof(float);
    const int gpt2 = c->family == MODEL_GPT2;
    const size_t big = F > QKV ? F : QKV;
    size_t norm_scratch = gpt2 ? layernorm_backward_scratch_bytes(c->channels) : rmsnorm_backward_scratch_bytes(c->channels);
    size_t widest = QKV > FC ? QKV : FC;
    if (C > widest) widest = C;
    const size_t norm_layers = m->recompute >= 2 ? 1 : L, act_layers = m->recompute >= 1 ? 1 : L;
    int n = 0;
#define BUF(field, nbytes) spec[n].ptr = (void **)&m->field, spec[n].bytes = (nbytes), n++
    BUF(params, P * bf);
    BUF(grads, P * bf);
    BUF(master, m->opt_size * fl);
    BUF(adam_m, m->opt_size * fl);
    BUF(adam_v, m->opt_size * fl);
    BUF(resid_in, L * N * C * bf);
    BUF(ln1, norm_layers * N * C * bf);
    BUF(ln1_mean, gpt2 ? L * N * fl : 0);
    BUF(ln1_rstd, L * N * fl);
    BUF(qkv, L * N * QKV * bf);
    BUF(atty, L * N * C * bf);
    BUF(lse, L * NH * N * fl);
    BUF(resid_mid, L * N * C * bf);
    BUF(ln2, norm_layers * N * C * bf);
    BUF(ln2_mean, gpt2 ? L * N * fl : 0);
    BUF(ln2_rstd, L * N * fl);
    BUF(fch, L * N * FC * bf);
    BUF(fch_act, act_layers * N * F * bf);
    BUF(resid_final, N * C * bf);
    BUF(lnf, N * C * bf);
    BUF(lnf_mean, gpt2 ? N * fl : 0);
    BUF(lnf_rstd, N * fl);
    BUF(logits, N * Vp * bf);
    BUF(losses, N * fl);
    BUF(proj_out, N * C * bf);
    BUF(dresid, N * C * bf);
    BUF(dnorm, N * C * bf);
    BUF(dbig, N * big * bf);
    BUF(dfch, gpt2 ? 0 : N * FC * bf);
    BUF(norm_scratch, norm_scratch);
    BUF(bias_scratch, matmul_dbias_scratch_bytes((int)widest));
    BUF(encoder_scratch, encoder_backward_scratch_bytes((int)N));
    BUF(attention_workspace, attention_workspace_bytes((int)N, c->num_heads, c->num_kv_heads, c->head_dim));
    BUF(inputs, N * sizeof(int));
    BUF(targets, N * sizeof(int));
    BUF(pos, N * sizeof(int));
    BUF(cu_seqlens, (N + 1) * sizeof(int));
#undef BUF
    return n;
}

static size_t model_aligned(size_t bytes) { return CEIL_DIV(bytes, MODEL_BUFFER_ALIGN) * MODEL_BUFFER_ALIGN; }

/* Device bytes the model needs for (cfg, B, T), an optimizer slice of opt_size and recompute level -r. */
static size_t model_memory_bytes(const ModelConfig *cfg, int B, int T, size_t opt_size, int recompute)
{
    GpuModel probe;
    memset(&probe, 0, sizeof(probe));
    probe.cfg = *cfg;
    param_layout_init(&probe.layout, cfg);
    probe.B = B;
    probe.T = T;
    probe.opt_size = opt_size;
    probe.recompute = recompute;
    BufferSpec spec[MODEL_MAX_BUFFERS];
    int n = model_buffers(&probe, spec);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += model_aligned(spec[i].bytes);
    return total;
}

/* Largest B' <= B whose model fits in `available` bytes (0 if none). */
static int model_largest_batch(const ModelConfig *cfg, int B, int T, size_t opt_size, int recompute, size_t available)
{
    for (int b = B; b >= 1; b--)
        if (model_memory_bytes(cfg, b, T, opt_size, recompute) <= available) return b;
    return 0;
}

static void model_die_out_of_memory(const GpuModel *m, size_t need, size_t available)
{
    int fits = model_largest_batch(&m->cfg, m->B, m->T, m->opt_size, m->recompute, available);
    fflush(stdout);
    fprintf(stderr, "error: out of GPU memory: this configuration (B=%d, T=%d) needs %.2f GiB, the GPU has %.2f GiB free.\n",
            m->B, m->T, need / 1073741824.0, available / 1073741824.0);
    if (fits > 0)
        fprintf(stderr, "       the largest micro-batch that fits is -b %d (raise -d's gradient accumulation to keep the batch).\n", fits);
    else
        fprintf(stderr, "       even -b 1 does not fit at T=%d: use a shorter -t or a smaller model.\n", m->T);
    exit(1);
}

/*
 * Allocate everything for (cfg, B, T) with an optimizer slice
 * [opt_offset, opt_offset + opt_size) and activation recompute level
 * `recompute` (0, 1, 2). Parameters are left undefined: load them with
 * gpu_model_set_params.
 */
static void gpu_model_create(GpuModel *m, const ModelConfig *cfg, int B, int T, size_t opt_offset, size_t opt_size,
                             int recompute)
{
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    param_layout_init(&m->layout, cfg);
    m->B = B;
    m->T = T;
    m->opt_offset = opt_offset;
    m->opt_size = opt_size;
    m->recompute = recompute;
    if (recompute < 0 || recompute > 2) die("activation recompute level %d: use 0, 1 or 2", recompute);
    if (opt_offset + opt_size > m->layout.total)
        die("optimizer slice [%zu, %zu) outside the %zu parameters", opt_offset, opt_offset + opt_size, m->layout.total);
    BufferSpec spec[MODEL_MAX_BUFFERS];
    int n = model_buffers(m, spec);
    m->memory_bytes = 0;
    for (int i = 0; i < n; i++) m->memory_bytes += model_aligned(spec[i].bytes);
    size_t free_bytes = 0, total_bytes = 0;
    cudaCheck(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (m->memory_bytes > free_bytes) model_die_out_of_memory(m, m->memory_bytes, free_bytes);
    cudaError_t err = cudaMalloc(&m->memory, m->memory_bytes);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError(); /* clear the sticky error before asking again */
        cudaCheck(cudaMemGetInfo(&free_bytes, &total_bytes));
        model_die_out_of_memory(m, m->memory_bytes, free_bytes);
    }
    cudaCheck(err);
    char *cursor = (char *)m->memory;
    for (int i = 0; i < n; i++) {
        *spec[i].ptr = spec[i].bytes ? cursor : NULL;
        cursor += model_aligned(spec[i].bytes);
    }
    cudaCheck(cudaStreamCreate(&m->stream));
}

static void gpu_model_free(GpuModel *m)
{
    cudaCheck(cudaFree(m->memory));
    cudaCheck(cudaStreamDestroy(m->stream));
    m->memory = NULL;
}

/* ---------------------------------------------------------------- parameters */

__global__ void bf16_to_float_kernel(float *out, const floatX *in, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = (float)in[i];
}

/* Upload bf16 parameters (host, bit patterns) and start the master weights from them. */
static void gpu_model_set_params(GpuModel *m, const uint16_t *host_params)
{
    cudaCheck(cudaMemcpy(m->params, host_params, m->layout.total * sizeof(floatX), cudaMemcpyHostToDevice));
    if (m->opt_size) {
        bf16_to_float_kernel<<<CEIL_DIV(m->opt_size, 512), 512, 0, m->stream>>>(m->master, m->params + m->opt_offset,
                                                                               m->opt_size);
        cudaCheckLaunch();
    }
    cudaCheck(cudaMemsetAsync(m->adam_m, 0, m->opt_size * sizeof(float), m->stream));
    cudaCheck(cudaMemsetAsync(m->adam_v, 0, m->opt_size * sizeof(float), m->stream));
    cudaCheck(cudaStreamSynchronize(m->stream));
}

/* Copy the optimizer slice (fp32 master, m, v; opt_size each) to the device. */
static void gpu_model_set_optimizer(GpuModel *m, const float *master, const float *adam_m, const float *adam_v)
{
    size_t bytes = m->opt_size * sizeof(float);
    cudaCheck(cudaMemcpy(m->master, master, bytes, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(m->adam_m, adam_m, bytes, cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(m->adam_v, adam_v, bytes, cudaMemcpyHostToDevice));
}

/* Copy all bf16 params (bits) and the optimizer slice to the host (for checkpoints). */
static void gpu_model_get_state(GpuModel *m, uint16_t *params, float *master, float *adam_m, float *adam_v)
{
    size_t bytes = m->opt_size * sizeof(float);
    cudaCheck(cudaStreamSynchronize(m->stream));
    cudaCheck(cudaMemcpy(params, m->params, m->layout.total * sizeof(floatX), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(master, m->master, bytes, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(adam_m, m->adam_m, bytes, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(adam_v, m->adam_v, bytes, cudaMemcpyDeviceToHost));
}

/* Layer `layer` of `tensor` (layer 0 for a tensor outside the layers) in a
   parameter-shaped buffer (params or grads); NULL if the family lacks it. */
static floatX *model_param(const GpuModel *m, floatX *base, int tensor, int layer)
{
    return m->layout.size[tensor] ? PARAM_LAYER_PTR(base, &m->layout, &m->cfg, tensor, layer) : NULL;
}

/* ---------------------------------------------------------------- batches */

/* Queue the copy of a packed micro-batch (N = B*T <= capacity) to the device. The
   host batch must stay unchanged until the stream has done the copy (the trainer
   waits once per step, before it loads the next step's batches). */
static void gpu_model_upload_batch(GpuModel *m, const PackedBatch *b)
{
    int N = b->B * b->T;
    if (N > m->B * m->T) die("micro-batch of %d tokens exceeds the model's capacity of %d", N, m->B * m->T);
    if (b->max_seqlen > m->cfg.max_seq_len)
        die("a segment of %d tokens is longer than the model's maximum sequence length %d", b->max_seqlen,
            m->cfg.max_seq_len);
    cudaStream_t s = m->stream;
    cudaCheck(cudaMemcpyAsync(m->inputs, b->inputs, N * sizeof(int), cudaMemcpyHostToDevice, s));
    cudaCheck(cudaMemcpyAsync(m->targets, b->targets, N * sizeof(int), cudaMemcpyHostToDevice, s));
    cudaCheck(cudaMemcpyAsync(m->pos, b->pos, N * sizeof(int), cudaMemcpyHostToDevice, s));
    cudaCheck(cudaMemcpyAsync(m->cu_seqlens, b->cu_seqlens, (b->num_segments + 1) * sizeof(int),
                              cudaMemcpyHostToDevice, s));
    m->num_tokens = N;
    m->num_segments = b->num_segments;
    m->max_seqlen = b->max_seqlen;
    /* the attention tile tables, once for every layer of this micro-batch */
    attention_plan(m->attention_workspace, m->cu_seqlens, m->num_segments, m->max_seqlen, N, s);
}

/* ---------------------------------------------------------------- forward */

/* normed = norm(residual = a + b), or normed = norm(a) when b is NULL. */
static void model_norm_forward(const GpuModel *m, floatX *residual, floatX *normed, float *mean, float *rstd,
                               const floatX *a, const floatX *b, const floatX *weight, const floatX *bias)
{
    const int N = m->num_tokens, C = m->cfg.channels;
    const float eps = m->cfg.norm_eps;
    if (m->cfg.family == MODEL_GPT2) {
        if (b) fused_residual_layernorm_forward(residual, normed, mean, rstd, a, b, weight, bias, N, C, eps, m->stream);
        else layernorm_forward(normed, mean, rstd, a, weight, bias, N, C, eps, m->stream);
    } else {
        if (b) fused_residual_rmsnorm_forward(residual, normed, rstd, a, b, weight, N, C, eps, m->stream);
        else rmsnorm_forward(normed, rstd, a, weight, N, C, eps, m->stream);
    }
}

/* Layer l's activation of width `width` inside a per-layer stacked buffer. */
#define LAYER_ACT(m, buf, l, width) ((buf) + (size_t)(l) * (m)->B * (m)->T * (width))
/* Layer l's ln1 / ln2 (one shared slice under -r 2) and fch_act (one under -r >= 1). */
#define LAYER_NORM(m, buf, l) LAYER_ACT(m, buf, (m)->recompute >= 2 ? 0 : (l), (m)->cfg.channels)
#define LAYER_FCH_ACT(m, l) LAYER_ACT(m, (m)->fch_act, (m)->recompute >= 1 ? 0 : (l), (m)->cfg.ffn_hidden)

/* fch_act = gelu(fch) (gpt2) or swiglu(fch) (llama): the backward's recompute of the MLP activation. */
static void model_activation_forward(const GpuModel *m, floatX *fch_act, const floatX *fch)
{
    if (m->cfg.family == MODEL_GPT2) gelu_forward(fch_act, fch, (size_t)m->num_tokens * m->cfg.ffn_hidden, m->stream);
    else swiglu_forward(fch_act, fch, m->num_tokens, m->cfg.ffn_hidden, m->stream);
}

/* Forward over the uploaded micro-batch, up to the logits (N, Vp). */
static void gpu_model_forward(GpuModel *m)
{
    const ModelConfig *c = &m->cfg;
    const int N = m->num_tokens, L = c->num_layers, C = c->channels, NH = c->num_heads, NKV = c->num_kv_heads;
    const int HD = c->head_dim, QKV = model_qkv_width(c), FC = model_fc_width(c), F = c->ffn_hidden;
    const int gpt2 = c->family == MODEL_GPT2;
    cudaStream_t s = m->stream;
    floatX *p = m->params;
#define PARAM(t, l) model_param(m, p, t, l)

    encoder_forward(m->resid_in, m->inputs, m->pos, PARAM(PARAM_WTE, 0), PARAM(PARAM_WPE, 0), N, C, s);
    model_norm_forward(m, NULL, m->ln1, m->ln1_mean, m->ln1_rstd, m->resid_in, NULL, PARAM(PARAM_LN1W, 0),
                       PARAM(PARAM_LN1B, 0));
    for (int l = 0; l < L; l++) {
        floatX *qkv = LAYER_ACT(m, m->qkv, l, QKV), *atty = LAYER_ACT(m, m->atty, l, C);
        floatX *ln2 = LAYER_NORM(m, m->ln2, l), *fch = LAYER_ACT(m, m->fch, l, FC);
        floatX *fch_act = LAYER_FCH_ACT(m, l), *resid_mid = LAYER_ACT(m, m->resid_mid, l, C);
        float *lse = LAYER_ACT(m, m->lse, l, NH);
        /* attention block */
        matmul_forward(qkv, LAYER_NORM(m, m->ln1, l), PARAM(PARAM_QKVW, l), PARAM(PARAM_QKVB, l), N, C, QKV, NULL, s);
        if (!gpt2) rope_forward(qkv, m->pos, N, NH, NKV, HD, model_rope_params(c), s);
        attention_forward(atty, lse, qkv, m->cu_seqlens, m->num_segments, m->max_seqlen, N, NH, NKV, HD,
                          m->attention_workspace, s);
        matmul_forward(m->proj_out, atty, PARAM(PARAM_ATTPROJW, l), PARAM(PARAM_ATTPROJB, l), N, C, C, NULL, s);
        model_norm_forward(m, resid_mid, ln2, m->ln2_mean ? LAYER_ACT(m, m->ln2_mean, l, 1) : NULL,
                           LAYER_ACT(m, m->ln2_rstd, l, 1), LAYER_ACT(m, m->resid_in, l, C), m->proj_out,
                           PARAM(PARAM_LN2W, l), PARAM(PARAM_LN2B, l));
        /* MLP block */
        if (gpt2) {
            matmul_forward(fch_act, ln2, PARAM(PARAM_FCW, l), PARAM(PARAM_FCB, l), N, C, F, fch, s);
        } else {
            matmul_forward(fch, ln2, PARAM(PARAM_FCW, l), NULL, N, C, FC, NULL, s);
            swiglu_forward(fch_act, fch, N, F, s);
        }
        matmul_forward(m->proj_out, fch_act, PARAM(PARAM_FCPROJW, l), PARAM(PARAM_FCPROJB, l), N, F, C, NULL, s);
        /* residual add fused with the next norm: the next layer's ln1, or the final norm */
        int last = l == L - 1;
        floatX *next_resid = last ? m->resid_final : LAYER_ACT(m, m->resid_in, l + 1, C);
        floatX *next_norm = last ? m->lnf : LAYER_NORM(m, m->ln1, l + 1);
        float *mean = last ? m->lnf_mean : m->ln1_mean ? LAYER_ACT(m, m->ln1_mean, l + 1, 1) : NULL;
        float *rstd = last ? m->lnf_rstd : LAYER_ACT(m, m->ln1_rstd, l + 1, 1);
        const floatX *w = last ? PARAM(PARAM_LNFW, 0) : PARAM(PARAM_LN1W, l + 1);
        const floatX *bias = last ? PARAM(PARAM_LNFB, 0) : PARAM(PARAM_LN1B, l + 1);
        model_norm_forward(m, next_resid, next_norm, mean, rstd, resid_mid, m->proj_out, w, bias);
    }
    matmul_forward(m->logits, m->lnf, PARAM(param_head_tensor(c), 0), NULL, N, C, c->padded_vocab_size, NULL, s);
#undef PARAM
}

/*
 * Per-token losses of the forward's logits, queued for copying into
 * host_losses (num_tokens floats, pinned memory for a copy that does not
 * wait): read them after the stream is synchronised. write_dlogits = 1
 * replaces the logits by dloss * d(loss)/d(logits) for the backward;
 * dloss = 1 / (targets != -1 in the whole global batch).
 */
static void gpu_model_loss(GpuModel *m, float dloss, int write_dlogits, float *host_losses)
{
    const int N = m->num_tokens;
    fused_classifier(m->logits, m->losses, dloss, m->targets, N, m->cfg.vocab_size, m->cfg.padded_vocab_size,
                     write_dlogits, m->stream);
    cudaCheck(cudaMemcpyAsync(host_losses, m->losses, N * sizeof(float), cudaMemcpyDeviceToHost, m->stream));
}

/* ---------------------------------------------------------------- backward */

/* The gradients of bucket b (layer b; b = L: the tensors outside the layers) are final. */
static void model_bucket_done(GpuModel *m, int bucket)
{
    if (m->grads_ready) m->grads_ready(m->grads_ready_ctx, bucket, m->grads, m->stream);
}

/* dinp += norm backward; dweight, dbias += */
static void model_norm_backward(const GpuModel *m, floatX *dinp, floatX *dweight, floatX *dbias, const floatX *dout,
                                const floatX *inp, const floatX *weight, const float *mean, const float *rstd)
{
    const int N = m->num_tokens, C = m->cfg.channels;
    if (m->cfg.family == MODEL_GPT2)
        layernorm_backward(dinp, dweight, dbias, m->norm_scratch, dout, inp, weight, mean, rstd, N, C, m->stream);
    else
        rmsnorm_backward(dinp, dweight, m->norm_scratch, dout, inp, weight, rstd, N, C, m->stream);
}

/* Backward of the last forward; gpu_model_loss(write_dlogits = 1) must come first. Grads accumulate (+=). */
static void gpu_model_backward(GpuModel *m)
{
    const ModelConfig *c = &m->cfg;
    const int N = m->num_tokens, L = c->num_layers, C = c->channels, NH = c->num_heads, NKV = c->num_kv_heads;
    const int HD = c->head_dim, QKV = model_qkv_width(c), FC = model_fc_width(c), F = c->ffn_hidden;
    const int gpt2 = c->family == MODEL_GPT2;
    cudaStream_t s = m->stream;
    floatX *p = m->params, *g = m->grads;
#define GRAD(t, l) model_param(m, g, t, l)
#define PARAM(t, l) model_param(m, p, t, l)

    cudaCheck(cudaMemsetAsync(m->dresid, 0, (size_t)N * C * sizeof(floatX), s));
    int head = param_head_tensor(c);
    matmul_backward(m->dnorm, GRAD(head, 0), NULL, m->logits, m->lnf, PARAM(head, 0), m->bias_scratch, N, C,
                    c->padded_vocab_size, NULL, s);
    model_norm_backward(m, m->dresid, GRAD(PARAM_LNFW, 0), GRAD(PARAM_LNFB, 0), m->dnorm, m->resid_final,
                        PARAM(PARAM_LNFW, 0), m->lnf_mean, m->lnf_rstd);
    for (int l = L - 1; l >= 0; l--) {
        floatX *resid_in = LAYER_ACT(m, m->resid_in, l, C), *resid_mid = LAYER_ACT(m, m->resid_mid, l, C);
        floatX *ln1 = LAYER_NORM(m, m->ln1, l), *ln2 = LAYER_NORM(m, m->ln2, l);
        floatX *qkv = LAYER_ACT(m, m->qkv, l, QKV), *atty = LAYER_ACT(m, m->atty, l, C);
        floatX *fch = LAYER_ACT(m, m->fch, l, FC), *fch_act = LAYER_FCH_ACT(m, l);
        float *ln1_mean = m->ln1_mean ? LAYER_ACT(m, m->ln1_mean, l, 1) : NULL, *ln1_rstd = LAYER_ACT(m, m->ln1_rstd, l, 1);
        float *ln2_mean = m->ln2_mean ? LAYER_ACT(m, m->ln2_mean, l, 1) : NULL, *ln2_rstd = LAYER_ACT(m, m->ln2_rstd, l, 1);
        /* -r: the activations not kept, recomputed from what was (the norms rewrite equal statistics) */
        if (m->recompute >= 1) model_activation_forward(m, fch_act, fch);
        if (m->recompute >= 2) {
            model_norm_forward(m, NULL, ln2, ln2_mean, ln2_rstd, resid_mid, NULL, PARAM(PARAM_LN2W, l), PARAM(PARAM_LN2B, l));
            model_norm_forward(m, NULL, ln1, ln1_mean, ln1_rstd, resid_in, NULL, PARAM(PARAM_LN1W, l), PARAM(PARAM_LN1B, l));
        }
        /* MLP block: dresid is the gradient of the layer output = of the fcproj output. gpt2: the fcproj
           backward's DGELU epilogue makes dbig the gradient of fch, whose column sums the fc backward adds
           to the fc bias gradient; llama: dbig is the gradient of fch_act, swiglu_backward's input */
        matmul_backward(m->dbig, GRAD(PARAM_FCPROJW, l), GRAD(PARAM_FCPROJB, l), m->dresid, fch_act,
                        PARAM(PARAM_FCPROJW, l), m->bias_scratch, N, F, C, gpt2 ? fch : NULL, s);
        if (gpt2) {
            matmul_backward(m->dnorm, GRAD(PARAM_FCW, l), GRAD(PARAM_FCB, l), m->dbig, ln2, PARAM(PARAM_FCW, l),
                            m->bias_scratch, N, C, F, NULL, s);
        } else {
            swiglu_backward(m->dfch, m->dbig, fch, N, F, s);
            matmul_backward(m->dnorm, GRAD(PARAM_FCW, l), NULL, m->dfch, ln2, PARAM(PARAM_FCW, l), m->bias_scratch,
                            N, C, FC, NULL, s);
        }
        model_norm_backward(m, m->dresid, GRAD(PARAM_LN2W, l), GRAD(PARAM_LN2B, l), m->dnorm, resid_mid,
                            PARAM(PARAM_LN2W, l), ln2_mean, ln2_rstd);
        /* attention block: dresid is now the gradient of resid_mid = of the attproj output */
        matmul_backward(m->dnorm, GRAD(PARAM_ATTPROJW, l), GRAD(PARAM_ATTPROJB, l), m->dresid, atty,
                        PARAM(PARAM_ATTPROJW, l), m->bias_scratch, N, C, C, NULL, s);
        attention_backward(m->dbig, m->dnorm, qkv, atty, LAYER_ACT(m, m->lse, l, NH), m->cu_seqlens,
                           m->num_segments, m->max_seqlen, N, NH, NKV, HD, m->attention_workspace, s);
        if (!gpt2) rope_backward(m->dbig, m->pos, N, NH, NKV, HD, model_rope_params(c), s);
        matmul_backward(m->dnorm, GRAD(PARAM_QKVW, l), GRAD(PARAM_QKVB, l), m->dbig, ln1, PARAM(PARAM_QKVW, l),
                        m->bias_scratch, N, C, QKV, NULL, s);
        model_norm_backward(m, m->dresid, GRAD(PARAM_LN1W, l), GRAD(PARAM_LN1B, l), m->dnorm, resid_in,
                            PARAM(PARAM_LN1W, l), ln1_mean, ln1_rstd);
        model_bucket_done(m, l);
    }
    encoder_backward(GRAD(PARAM_WTE, 0), GRAD(PARAM_WPE, 0), m->encoder_scratch, m->dresid, m->inputs, m->pos, N, C, s);
    model_bucket_done(m, L);
#undef GRAD
#undef PARAM
}

static void gpu_model_zero_grad(GpuModel *m)
{
    cudaCheck(cudaMemsetAsync(m->grads, 0, m->layout.total * sizeof(floatX), m->stream));
}

#endif /* PACKLM_MODEL_CUH */
