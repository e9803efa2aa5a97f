/*
 * test_train_gpt.cu — the GPU model (model.cuh) and the trainer's step
 * (train_step of train_gpt.cu, included here with TESTING so that its main
 * is left out, as llm.c's test_gpt2.cu does) against the fp32 CPU reference
 * model (model_cpu.h), for a tiny gpt2 and a tiny llama (GQA, untied head):
 *   - same bf16-rounded weights, same two packed micro-batches (gradient
 *     accumulation): loss within LOSS_TOL (relative), every gradient tensor
 *     within GRAD_TOL (norm-relative; bf16 activations and gradients);
 *   - 10 AdamW steps with clipping: every step's loss within STEPS_TOL;
 *   - two GPU runs from the same seed give bit-identical losses;
 *   - save a checkpoint (model + training state files), train on, reload it
 *     into a fresh model, train the same steps again: bit-identical losses;
 *   - activation recompute -r 1 and -r 2 against -r 0: the memory they save
 *     is exactly the activations they drop; losses and gradients of a step
 *     and the losses of 3 AdamW steps are bit-identical, except gpt2's
 *     fcprojw gradient under recompute: the forward's GELU comes from the
 *     cuBLASLt epilogue, the recompute from gelu_forward on the bf16
 *     pre-activation, so that gradient (and the later steps) stay within
 *     RECOMPUTE_TOL (norm-relative / relative loss) instead.
 * Activation buffers are filled with NaN before the first forward, so a
 * kernel that reads what nothing wrote makes the checks fail.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#define TESTING
#include "../train_gpt.cu"
#include "model_cpu.h"
#include "synthetic_batch.h"
#include "test.h"

#define LOSS_TOL 5e-3
#define GRAD_TOL 3e-2
#define STEPS_TOL 2e-2
#define RECOMPUTE_TOL 1e-2
#define NUM_STEPS 10
#define B 4
#define T 64
#define MICRO 2

static const float LR = 1e-3f, WD = 0.1f, BETA1 = 0.9f, BETA2 = 0.95f, EPS = 1e-8f, CLIP = 1.0f;

/* One process, no communicator: every dist_* call of train_step is local. */
static Dist single_process;
static StepBuffers step_buffers;

static StepResult gpu_step(GpuModel *m, const PackedBatch *batches, const AdamWStep *a)
{
    return train_step(m, &single_process, &step_buffers, batches, MICRO, a);
}

static AdamWStep step_settings(int step)
{
    AdamWStep a = {LR, BETA1, BETA2, EPS, WD, CLIP, step, 1234u + (unsigned int)step};
    return a;
}

/* Round every parameter of the CPU model to bf16 and return the bit patterns. */
static uint16_t *round_params_to_bf16(CpuModel *cm)
{
    size_t n = cm->layout.total;
    uint16_t *bits = (uint16_t *)malloc_or_die(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) {
        bits[i] = bf16_bits_from_float(cm->params[i]);
        cm->params[i] = float_from_bf16_bits(bits[i]);
    }
    return bits;
}

/* NaN into every activation and scratch buffer (everything after the optimizer state). */
static void poison_activations(GpuModel *m)
{
    char *start = (char *)m->resid_in, *end = (char *)m->memory + m->memory_bytes;
    cudaCheck(cudaMemset(start, 0xff, end - start));
}

static void make_gpu_model(GpuModel *m, const ModelConfig *cfg, const uint16_t *bits, int recompute)
{
    ParamLayout layout;
    param_layout_init(&layout, cfg);
    gpu_model_create(m, cfg, B, T, 0, layout.total, recompute);
    gpu_model_set_params(m, bits);
    poison_activations(m);
}

/* The gradient buffer of the last step, as floats. */
static float *download_grads(const GpuModel *gm)
{
    size_t n = gm->layout.total;
    uint16_t *bits = (uint16_t *)malloc_or_die(n * sizeof(uint16_t));
    float *grads = (float *)malloc_or_die(n * sizeof(float));
    cudaCheck(cudaMemcpy(bits, gm->grads, n * sizeof(uint16_t), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) grads[i] = float_from_bf16_bits(bits[i]);
    free(bits);
    return grads;
}

/* CPU: one step's loss (and accumulated gradients) over the micro-batches. */
static float cpu_step_loss(CpuModel *cm, const PackedBatch *batches)
{
    int count = 0;
    for (int i = 0; i < MICRO; i++) count += (int)packed_batch_count_targets(&batches[i]);
    cpu_model_zero_grad(cm);
    float loss = 0.0f;
    for (int i = 0; i < MICRO; i++) {
        loss += cpu_model_forward(cm, &batches[i], count);
        cpu_model_backward(cm, &batches[i]);
    }
    return loss;
}

static void check_first_step(const char *family, CpuModel *cm, GpuModel *gm, const PackedBatch *batches)
{
    char name[128];
    float cpu_loss = cpu_step_loss(cm, batches);
    /* forward + backward only: a step with lr 0 and no decay leaves the weights as they are */
    AdamWStep frozen = step_settings(1);
    frozen.lr = 0.0f;
    frozen.weight_decay = 0.0f;
    StepResult r = gpu_step(gm, batches, &frozen);
    double rel = fabs(r.loss - cpu_loss) / fabs(cpu_loss);
    snprintf(name, sizeof(name), "%s_loss_matches_cpu", family);
    check(rel <= LOSS_TOL && isfinite(r.loss), name, "gpu %.6f cpu %.6f relative difference %.2e > %.0e", r.loss,
          cpu_loss, rel, LOSS_TOL);
    printf("  %s loss gpu %.6f cpu %.6f (relative difference %.2e)\n", family, r.loss, cpu_loss, rel);

    float *grads = download_grads(gm);
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        size_t size = gm->layout.size[t], off = gm->layout.offset[t];
        if (!size) continue;
        double err = rel_l2_error(grads + off, cm->grads + off, size);
        printf("  %s grad %-8s relative L2 error %.2e\n", family, PARAM_NAMES[t], err);
        snprintf(name, sizeof(name), "%s_grad_%s", family, PARAM_NAMES[t]);
        check(err <= GRAD_TOL, name, "relative L2 error %.3e > tolerance %.0e", err, GRAD_TOL);
    }
    free(grads);
}

/* Train NUM_STEPS on the GPU and on the CPU from the same state, compare each step's loss. */
static void check_training_steps(const char *family, CpuModel *cm, GpuModel *gm, const PackedBatch *batches)
{
    char name[128];
    double worst = 0.0;
    float first = 0.0f, last = 0.0f;
    for (int s = 1; s <= NUM_STEPS; s++) {
        float cpu_loss = cpu_step_loss(cm, batches);
        cpu_model_update(cm, LR, WD, BETA1, BETA2, EPS, CLIP);
        AdamWStep a = step_settings(s);
        StepResult r = gpu_step(gm, batches, &a);
        double rel = isfinite(r.loss) ? fabs(r.loss - cpu_loss) / fabs(cpu_loss) : INFINITY;
        if (rel > worst) worst = rel;
        if (s == 1) first = r.loss;
        last = r.loss;
        printf("  %s step %2d loss gpu %.6f cpu %.6f norm %.4f\n", family, s, r.loss, cpu_loss, r.grad_norm);
    }
    snprintf(name, sizeof(name), "%s_%d_adamw_steps_match_cpu", family, NUM_STEPS);
    check(worst <= STEPS_TOL, name, "worst relative loss difference %.2e > %.0e", worst, STEPS_TOL);
    snprintf(name, sizeof(name), "%s_loss_falls", family);
    check(last < first, name, "loss went from %.6f to %.6f", first, last);
}

/* Losses of `steps` GPU steps numbered first_step, first_step+1, ... */
static void gpu_losses(GpuModel *gm, const PackedBatch *batches, int first_step, int steps, float *losses)
{
    for (int s = 0; s < steps; s++) {
        AdamWStep a = step_settings(first_step + s);
        losses[s] = gpu_step(gm, batches, &a).loss;
    }
}

static void check_reproducible(const char *family, const ModelConfig *cfg, const uint16_t *bits,
                               const PackedBatch *batches)
{
    char name[128];
    float a[6], b[6], resumed[3];
    GpuModel gm;
    make_gpu_model(&gm, cfg, bits, 0);
    gpu_losses(&gm, batches, 1, 6, a);
    gpu_model_free(&gm);
    make_gpu_model(&gm, cfg, bits, 0);
    gpu_losses(&gm, batches, 1, 3, b);
    /* checkpoint after 3 steps, through the files a run writes */
    size_t P = gm.layout.total;
    uint16_t *params = (uint16_t *)malloc_or_die(P * sizeof(uint16_t));
    float *opt = (float *)malloc_or_die(3 * P * sizeof(float));
    gpu_model_get_state(&gm, params, opt, opt + P, opt + 2 * P);
    char model_path[256], state_path[256];
    snprintf(model_path, sizeof(model_path), "/tmp/test_train_gpt_%s_model.bin", family);
    snprintf(state_path, sizeof(state_path), "/tmp/test_train_gpt_%s_state.bin", family);
    uint64_t loader = 42;
    TrainStateHeader h;
    memset(&h, 0, sizeof(h));
    h.step = 3;
    h.num_ranks = 1;
    h.opt_size = P;
    h.loader_bytes = sizeof(loader);
    h.model_hash = checkpoint_write_model(model_path, cfg, params, P);
    checkpoint_write_state(state_path, &h, &loader, opt, opt + P, opt + 2 * P);
    gpu_losses(&gm, batches, 4, 3, b + 3);
    gpu_model_free(&gm);
    snprintf(name, sizeof(name), "%s_same_seed_identical_losses", family);
    check(memcmp(a, b, sizeof(a)) == 0, name, "run 1 step 6 loss %.9g, run 2 %.9g", a[5], b[5]);

    /* reload into a fresh model and redo steps 4..6 */
    memset(params, 0, P * sizeof(uint16_t));
    memset(opt, 0, 3 * P * sizeof(float));
    uint64_t model_hash = checkpoint_read_model_params(model_path, params, P);
    const char *bad = checkpoint_read_state(state_path, &h, &loader, sizeof(loader), opt, opt + P, opt + 2 * P, P);
    snprintf(name, sizeof(name), "%s_checkpoint_reads_back", family);
    check(!bad && model_hash == h.model_hash && h.step == 3 && loader == 42, name, "%s", bad ? bad : "header differs");
    make_gpu_model(&gm, cfg, params, 0);
    gpu_model_set_optimizer(&gm, opt, opt + P, opt + 2 * P);
    gpu_losses(&gm, batches, 4, 3, resumed);
    gpu_model_free(&gm);
    snprintf(name, sizeof(name), "%s_reload_bit_identical", family);
    check(memcmp(resumed, a + 3, sizeof(resumed)) == 0, name, "step 4 loss after reload %.9g, uninterrupted %.9g",
          resumed[0], a[3]);
    remove(model_path);
    remove(state_path);
    free(params);
    free(opt);
}

/* -r `recompute` against -r 0 from the same weights: memory, one frozen step's loss and gradients, 3 AdamW steps. */
static void check_recompute(const char *family, const ModelConfig *cfg, const uint16_t *bits, const PackedBatch *batches,
                            int recompute)
{
    char name[128];
    const int gpt2 = cfg->family == MODEL_GPT2;
    GpuModel base, rec;
    make_gpu_model(&base, cfg, bits, 0);
    make_gpu_model(&rec, cfg, bits, recompute);
    /* the saving: L-1 of the L per-layer fch_act (N, F), and under -r 2 also of ln1 and ln2 (N, C) */
    const size_t N = (size_t)B * T, L = cfg->num_layers;
    size_t want = (L - 1) * N * cfg->ffn_hidden * sizeof(floatX);
    if (recompute >= 2) want += 2 * (L - 1) * N * cfg->channels * sizeof(floatX);
    size_t saved = base.memory_bytes - rec.memory_bytes;
    snprintf(name, sizeof(name), "%s_recompute_%d_saves_the_dropped_activations", family, recompute);
    check(saved == want && saved == model_memory_bytes(cfg, B, T, base.opt_size, 0) -
                                        model_memory_bytes(cfg, B, T, base.opt_size, recompute),
          name, "saved %zu bytes, expected %zu", saved, want);

    AdamWStep frozen = step_settings(1);
    frozen.lr = 0.0f;
    frozen.weight_decay = 0.0f;
    StepResult r0 = gpu_step(&base, batches, &frozen), r1 = gpu_step(&rec, batches, &frozen);
    snprintf(name, sizeof(name), "%s_recompute_%d_loss_bit_identical", family, recompute);
    check(memcmp(&r0.loss, &r1.loss, sizeof(float)) == 0 && isfinite(r1.loss), name, "-r 0 %.9g, -r %d %.9g", r0.loss,
          recompute, r1.loss);
    float *g0 = download_grads(&base), *g1 = download_grads(&rec);
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        size_t size = base.layout.size[t], off = base.layout.offset[t];
        if (!size) continue;
        int same = memcmp(g0 + off, g1 + off, size * sizeof(float)) == 0;
        double err = rel_l2_error(g1 + off, g0 + off, size);
        int gelu_recomputed = gpt2 && t == PARAM_FCPROJW;
        if (!same) printf("  %s -r %d grad %-8s differs from -r 0: relative L2 %.2e\n", family, recompute, PARAM_NAMES[t], err);
        snprintf(name, sizeof(name), "%s_recompute_%d_grad_%s", family, recompute, PARAM_NAMES[t]);
        check(same || (gelu_recomputed && err <= RECOMPUTE_TOL), name, "differs from -r 0 (relative L2 %.3e%s)", err,
              gelu_recomputed ? "" : ", expected bit-identical");
    }
    free(g0);
    free(g1);

    float a0[3], a1[3];
    gpu_losses(&base, batches, 1, 3, a0);
    gpu_losses(&rec, batches, 1, 3, a1);
    double worst = 0.0;
    for (int s = 0; s < 3; s++) worst = fmax(worst, isfinite(a1[s]) ? fabs(a1[s] - a0[s]) / fabs(a0[s]) : INFINITY);
    snprintf(name, sizeof(name), "%s_recompute_%d_adamw_steps", family, recompute);
    check(gpt2 ? worst <= RECOMPUTE_TOL : memcmp(a0, a1, sizeof(a0)) == 0, name,
          "worst relative loss difference %.2e (%s)", worst, gpt2 ? "bound 1e-2" : "expected bit-identical");
    printf("  %s -r %d: saves %.2f MiB, step losses vs -r 0: worst relative difference %.2e\n", family, recompute,
           saved / 1048576.0, worst);
    gpu_model_free(&base);
    gpu_model_free(&rec);
}

static void run_family(const char *family, const char *descriptor, unsigned long long seed)
{
    ModelConfig cfg;
    model_config_parse(&cfg, descriptor);
    printf("%s: %s\n", family, descriptor);
    PackedBatch batches[MICRO];
    for (int i = 0; i < MICRO; i++) {
        packed_batch_alloc(&batches[i], B, T);
        synthetic_batch_random(&batches[i], cfg.vocab_size, 40, seed + 100 + i);
    }
    CpuModel cm;
    cpu_model_create(&cm, &cfg, B, T, seed);
    uint16_t *bits = round_params_to_bf16(&cm);
    GpuModel gm;
    make_gpu_model(&gm, &cfg, bits, 0);
    check_first_step(family, &cm, &gm, batches);
    gpu_model_free(&gm);

    /* fresh state on both sides for the training comparison */
    cpu_model_free(&cm);
    cpu_model_create(&cm, &cfg, B, T, seed);
    free(round_params_to_bf16(&cm));
    make_gpu_model(&gm, &cfg, bits, 0);
    check_training_steps(family, &cm, &gm, batches);
    gpu_model_free(&gm);
    cpu_model_free(&cm);

    check_reproducible(family, &cfg, bits, batches);
    for (int r = 1; r <= 2; r++) check_recompute(family, &cfg, bits, batches, r);
    free(bits);
    for (int i = 0; i < MICRO; i++) packed_batch_free(&batches[i]);
}

int main(void)
{
    int gpus = 0;
    if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus == 0) {
        printf("FAIL test_train_gpt: no CUDA GPU visible\n");
        return 1;
    }
    cuda_common_init();
    dist_init(&single_process, "/tmp", 60.0);
    step_buffers_create(&step_buffers, MICRO, (size_t)B * T);
    run_family("gpt2", "gpt2:d2,C=128,NH=2,V=512,T=64", 7);
    run_family("llama", "llama:1B,L=2,C=256,NH=4,NKV=2,F=512,V=512,T=64,tied=0", 11);
    step_buffers_free(&step_buffers);
    dist_free(&single_process);
    cuda_common_destroy();
    return test_summary();
}
