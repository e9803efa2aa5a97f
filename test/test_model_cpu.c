/*
 * test_model_cpu.c — the whole CPU model (llmc/model_cpu.h) of both families:
 *   - gradients of a random sample of every parameter tensor against central
 *     finite differences of the loss (gpt2, llama untied, llama tied);
 *   - a document's per-token losses do not depend on what else is packed in
 *     its row (positions restart per segment, no attention across segments);
 *   - gradient accumulation: two half batches with the global loss_count give
 *     the gradients of the whole batch;
 *   - 50 AdamW steps on a fixed packed batch bring the loss below a stated
 *     fraction of its start.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fd_check.h"
#include "model_cpu.h"
#include "synthetic_batch.h"

#define VOCAB 37

/* Tiny configurations of each family (V = 37 pads to Vp = 128). */
static const char *const TINY_MODELS[] = {
    "gpt2:d2,C=16,NH=2,V=37,T=16",
    "llama:1B,L=2,C=16,NH=4,NKV=2,F=24,V=37,T=16,theta=10000,tied=0",
    "llama:1B,L=2,C=16,NH=4,NKV=2,F=24,V=37,T=16,theta=10000,tied=1",
};
#define NUM_TINY_MODELS (int)(sizeof(TINY_MODELS) / sizeof(TINY_MODELS[0]))

/* Two rows of 8: row 0 = documents of 3 and 5; row 1 = 1, 5, then 2 of padding. */
static void fill_test_batch(PackedBatch *b, unsigned long long seed)
{
    const int lengths[] = {3, 5, 1, 5, 2}, padding[] = {0, 0, 0, 0, 1};
    Rng rng = rng_create(seed);
    synthetic_batch_from_lengths(b, lengths, padding, 5, VOCAB, &rng);
}

/* Model `descriptor` for batches of B rows of T tokens, initialised from `seed`; then every parameter (biases
   and norm weights included) moves off its init by normal(0, 0.1) noise from seed + 1, so every gradient is
   non-trivial. */
static void create_jittered_model(CpuModel *m, const char *descriptor, int B, int T, unsigned long long seed)
{
    ModelConfig cfg;
    model_config_parse(&cfg, descriptor);
    cpu_model_create(m, &cfg, B, T, seed);
    Rng rng = rng_create(seed + 1);
    for (size_t i = 0; i < m->layout.total; i++) m->params[i] += (float)(0.1 * rng_normal(&rng));
}

/* The model and the batch its loss is measured on, for fd_derivative. */
typedef struct {
    CpuModel *m;
    const PackedBatch *b;
} ModelLoss;

static double model_loss(void *ctx)
{
    const ModelLoss *l = (const ModelLoss *)ctx;
    return cpu_model_forward(l->m, l->b, 0);
}

/*
 * Finite differences: for SAMPLES random elements of every tensor,
 * (loss(p + h) - loss(p - h)) / 2h against the backward's gradient, h = 1e-2.
 * fp32 rounding and the O(h^2) truncation limit the difference quotient to
 * about 1e-3 relative (measured: at most 8e-4), so the tolerance on each
 * tensor's sampled vector is a relative L2 error of 5e-3. Sign or factor
 * errors in any backward give errors of 0.1 and more.
 */
#define SAMPLES 12
static void check_model_gradients(const char *descriptor, unsigned long long seed)
{
    PackedBatch b;
    packed_batch_alloc(&b, 2, 8);
    fill_test_batch(&b, seed);
    CpuModel m;
    create_jittered_model(&m, descriptor, 2, 8, seed);
    const ModelConfig cfg = m.cfg;
    cpu_model_zero_grad(&m);
    ModelLoss loss = {&m, &b};
    model_loss(&loss);
    cpu_model_backward(&m, &b);

    Rng rng = rng_create(seed + 2);
    const float h = 1e-2f;
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        if (m.layout.size[t] == 0) continue;
        /* sample where gradients live: real vocabulary rows, positions the batch uses */
        size_t range = m.layout.size[t];
        if (t == PARAM_WTE || t == PARAM_LM_HEAD) range = (size_t)cfg.vocab_size * cfg.channels;
        if (t == PARAM_WPE) range = (size_t)b.T * cfg.channels;
        float analytic[SAMPLES], numeric[SAMPLES];
        for (int k = 0; k < SAMPLES; k++) {
            const size_t i = m.layout.offset[t] + rng_below(&rng, range);
            numeric[k] = fd_derivative(model_loss, &loss, &m.params[i], h);
            analytic[k] = m.grads[i];
        }
        char name[200];
        snprintf(name, sizeof(name), "model_grad_fd[%s] %s", descriptor, PARAM_NAMES[t]);
        check_close(name, analytic, numeric, SAMPLES, 5e-3);
    }
    /* padded vocabulary rows never see a gradient */
    const int head = param_head_tensor(&cfg);
    const float *padded = m.grads + m.layout.offset[head] + (size_t)cfg.vocab_size * cfg.channels;
    const size_t padded_n = (size_t)(cfg.padded_vocab_size - cfg.vocab_size) * cfg.channels;
    double padded_sum = 0.0;
    for (size_t i = 0; i < padded_n; i++) padded_sum += fabs(padded[i]);
    char name[200];
    snprintf(name, sizeof(name), "model_padded_vocab_no_grad[%s]", descriptor);
    check(padded_sum == 0.0, name, "padded head rows got gradient mass %g", padded_sum);
    cpu_model_free(&m);
    packed_batch_free(&b);
}

/*
 * Document D (6 tokens) alone in a row of 8 (then 2 of padding) must get the
 * same per-token losses as D packed after a 2-token document. Tolerance 1e-5
 * relative: only summation order may differ.
 */
static void check_packing_independence(const char *descriptor)
{
    PackedBatch alone, packed;
    packed_batch_alloc(&alone, 1, 8);
    packed_batch_alloc(&packed, 1, 8);
    Rng rng = rng_create(7);
    const int alone_lengths[] = {6, 2}, alone_padding[] = {0, 1};
    synthetic_batch_from_lengths(&alone, alone_lengths, alone_padding, 2, VOCAB, &rng);
    const int packed_lengths[] = {2, 6};
    synthetic_batch_from_lengths(&packed, packed_lengths, NULL, 2, VOCAB, &rng);
    memcpy(packed.inputs + 2, alone.inputs, 6 * sizeof(int));
    memcpy(packed.targets + 2, alone.targets, 6 * sizeof(int));

    CpuModel m;
    create_jittered_model(&m, descriptor, 1, 8, 11);
    float want[6], got[6];
    cpu_model_forward(&m, &alone, 0);
    memcpy(want, m.losses, sizeof(want));
    float want_logits[6 * 128];
    memcpy(want_logits, m.logits, sizeof(want_logits));
    cpu_model_forward(&m, &packed, 0);
    memcpy(got, m.losses + 2, sizeof(got));
    char name[200];
    snprintf(name, sizeof(name), "model_packing_independent_losses[%s]", descriptor);
    check_close(name, got, want, 5, 1e-5); /* the 6th token has no target */
    snprintf(name, sizeof(name), "model_packing_independent_logits[%s]", descriptor);
    check_close(name, m.logits + 2 * 128, want_logits, 6 * 128, 1e-5);
    cpu_model_free(&m);
    packed_batch_free(&alone);
    packed_batch_free(&packed);
}

/* Rows 0 and 1 as two micro-batches with the global loss_count == the whole batch at once. */
static void check_gradient_accumulation(const char *descriptor)
{
    PackedBatch whole, half[2];
    packed_batch_alloc(&whole, 2, 8);
    fill_test_batch(&whole, 21);
    for (int r = 0; r < 2; r++) {
        packed_batch_alloc(&half[r], 1, 8);
        memcpy(half[r].inputs, whole.inputs + 8 * r, 8 * sizeof(int));
        memcpy(half[r].targets, whole.targets + 8 * r, 8 * sizeof(int));
        half[r].num_segments = 0;
        for (int s = 0; s < whole.num_segments; s++) {
            const int start = whole.cu_seqlens[s];
            if (start >= 8 * r && start < 8 * (r + 1)) half[r].cu_seqlens[half[r].num_segments++] = start - 8 * r;
        }
        half[r].cu_seqlens[half[r].num_segments] = 8;
        packed_batch_derive_positions(&half[r]);
    }
    int count = 0;
    for (int i = 0; i < 16; i++) count += whole.targets[i] != -1;

    CpuModel m;
    create_jittered_model(&m, descriptor, 2, 8, 31);
    cpu_model_zero_grad(&m);
    const float whole_loss = cpu_model_forward(&m, &whole, 0);
    cpu_model_backward(&m, &whole);
    float *want = (float *)malloc_or_die(m.layout.total * sizeof(float));
    memcpy(want, m.grads, m.layout.total * sizeof(float));
    cpu_model_zero_grad(&m);
    float split_loss = 0.0f;
    for (int r = 0; r < 2; r++) {
        split_loss += cpu_model_forward(&m, &half[r], count);
        cpu_model_backward(&m, &half[r]);
    }
    char name[200];
    snprintf(name, sizeof(name), "model_grad_accumulation_loss[%s]", descriptor);
    check(fabsf(split_loss - whole_loss) <= 1e-5f * fabsf(whole_loss), name, "split %.7f vs whole %.7f",
          (double)split_loss, (double)whole_loss);
    snprintf(name, sizeof(name), "model_grad_accumulation_grads[%s]", descriptor);
    check_close(name, m.grads, want, m.layout.total, 1e-5);
    free(want);
    cpu_model_free(&m);
    packed_batch_free(&whole);
    packed_batch_free(&half[0]);
    packed_batch_free(&half[1]);
}

/*
 * 50 AdamW steps (lr 1e-2, weight decay 0.1 on matrices, clip 1.0) on one
 * fixed packed batch of counting documents: the loss must end below 20% of
 * where it started (memorising the batch is easy; ~ln(V) at the start).
 */
static void check_training_reduces_loss(const char *descriptor)
{
    ModelConfig cfg;
    model_config_parse(&cfg, descriptor);
    PackedBatch b;
    packed_batch_alloc(&b, 4, 16);
    synthetic_batch_random(&b, cfg.vocab_size, 12, 41);
    CpuModel m;
    cpu_model_create(&m, &cfg, 4, 16, 42);
    float first = 0.0f, last = 0.0f;
    int finite = 1;
    for (int step = 0; step < 50; step++) {
        cpu_model_zero_grad(&m);
        last = cpu_model_forward(&m, &b, 0);
        if (step == 0) first = last;
        cpu_model_backward(&m, &b);
        const float norm = cpu_model_update(&m, 1e-2f, 0.1f, 0.9f, 0.95f, 1e-8f, 1.0f);
        finite &= isfinite(last) && isfinite(norm);
    }
    char name[200];
    snprintf(name, sizeof(name), "model_trains_50_steps[%s]", descriptor);
    check(finite && last < 0.2f * first, name, "loss %.4f -> %.4f after 50 steps (need < 20%% of the start)",
          (double)first, (double)last);
    printf("  %s: loss %.4f -> %.4f after 50 AdamW steps\n", descriptor, (double)first, (double)last);
    cpu_model_free(&m);
    packed_batch_free(&b);
}

int main(void)
{
    for (int i = 0; i < NUM_TINY_MODELS; i++) {
        check_model_gradients(TINY_MODELS[i], 100 + i);
        check_packing_independence(TINY_MODELS[i]);
        check_gradient_accumulation(TINY_MODELS[i]);
        check_training_reduces_loss(TINY_MODELS[i]);
    }
    return test_summary();
}
