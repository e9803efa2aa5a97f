/*
 * kernel_checks.cuh — every GPU kernel of llmc/*.cuh against its fp32 CPU
 * reference in llmc/cpu_ref.h, forward and backward, on fresh random inputs.
 * Run by test/test_kernels.cu (make test-gpu) and by each dev/cuda program.
 *
 * Rules: inputs are bf16-exact so both sides see the same numbers; outputs
 * that a kernel overwrites start NaN-poisoned; gradients that a kernel
 * accumulates (+=) start at random values that the reference starts from too;
 * comparison is the norm-relative L2 error (NaN never passes). Tolerances:
 * BF16_TOL for bf16 outputs (a bf16 rounding is 2^-9 relative), FP32_TOL for
 * fp32 outputs computed from the same inputs.
 */
#ifndef PACKLM_KERNEL_CHECKS_CUH
#define PACKLM_KERNEL_CHECKS_CUH

#include "adamw.cuh"
#include "classifier.cuh"
#include "cpu_ref.h"
#include "encoder.cuh"
#include "gelu.cuh"
#include "global_norm.cuh"
#include "gpu_check.h"
#include "layernorm.cuh"
#include "matmul.cuh"
#include "residual.cuh"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "swiglu.cuh"

#define BF16_TOL 1e-2
#define FP32_TOL 1e-4

/* One check case: a kernel and the shape it runs at (printf-formatted once),
   which name the case's PASS/FAIL lines "kernel/what[shape]". */
struct CheckCase {
    const char *kernel;
    char shape[96];

    __attribute__((format(printf, 3, 4))) CheckCase(const char *kernel_name, const char *shape_format, ...)
        : kernel(kernel_name)
    {
        va_list args;
        va_start(args, shape_format);
        vsnprintf(shape, sizeof(shape), shape_format, args);
        va_end(args);
    }

    /* The line name of check `what`, valid until the next call. */
    const char *name(const char *what) const
    {
        static char line_name[256];
        snprintf(line_name, sizeof(line_name), "%s/%s[%s]", kernel, what, shape);
        return line_name;
    }
};

/* ------------------------------------------------------------------ matmul */

/* Forward (bias and GELU epilogues) and the plain backward (the GELU backward belongs to the
   next layer's backward: check_matmul_dgelu). */
static void check_matmul(int N, int C, int OC, int with_bias, int with_gelu, unsigned long long seed)
{
    const CheckCase tc("matmul", "N=%d,C=%d,OC=%d%s%s", N, C, OC, with_bias ? ",bias" : "", with_gelu ? ",gelu" : "");
    Rng rng = rng_create(seed);
    const size_t nin = (size_t)N * C, nout = (size_t)N * OC, nw = (size_t)OC * C;
    Floats inp = random_bf16_values(&rng, nin, 1.0f), weight = random_bf16_values(&rng, nw, 0.05f);
    Floats bias = random_bf16_values(&rng, OC, 0.5f), dout = random_bf16_values(&rng, nout, 1.0f);
    Floats dweight = random_bf16_values(&rng, nw, 1.0f), dbias = random_bf16_values(&rng, OC, 1.0f);

    floatX *d_inp = upload_bf16(inp), *d_w = upload_bf16(weight), *d_bias = with_bias ? upload_bf16(bias) : NULL;
    floatX *d_out = device_poisoned<floatX>(nout), *d_pre = with_gelu ? device_poisoned<floatX>(nout) : NULL;
    matmul_forward(d_out, d_inp, d_w, d_bias, N, C, OC, d_pre, 0);

    Floats pre(nout), out(nout);
    matmul_forward_cpu(pre.data(), inp.data(), weight.data(), with_bias ? bias.data() : NULL, N, C, OC);
    if (with_gelu) {
        check_device_close(tc.name("pre_gelu"), d_pre, pre, BF16_TOL);
        gelu_forward_cpu(out.data(), pre.data(), nout);
    } else {
        out = pre;
    }
    check_device_close(tc.name("forward"), d_out, out, BF16_TOL);

    floatX *d_dout = upload_bf16(dout), *d_dinp = device_poisoned<floatX>(nin);
    floatX *d_dw = upload_bf16(dweight), *d_db = with_bias ? upload_bf16(dbias) : NULL;
    float *d_scratch = device_poisoned<float>(matmul_dbias_scratch_bytes(OC) / sizeof(float));
    matmul_backward(d_dinp, d_dw, d_db, d_dout, d_inp, d_w, d_scratch, N, C, OC, NULL, 0);
    Floats dinp(nin, 0.0f);
    matmul_backward_cpu(dinp.data(), dweight.data(), with_bias ? dbias.data() : NULL, dout.data(), inp.data(),
                        weight.data(), N, C, OC);
    check_device_close(tc.name("dinp"), d_dinp, dinp, BF16_TOL);
    check_device_close(tc.name("dweight+="), d_dw, dweight, BF16_TOL);
    if (with_bias) check_device_close(tc.name("dbias+="), d_db, dbias, BF16_TOL);
    device_free_all();
}

/*
 * The backward of a layer whose input is gelu(pre) (gpt2's fcproj, pre = fch),
 * with the GELU backward in the dinp matmul's epilogue (DGELU):
 * dpre = (dout @ W) * gelu'(pre), dweight += dout^T @ gelu(pre), dbias += column
 * sums of dout. Reference: matmul_backward_cpu, then gelu_backward_cpu. Run
 * twice from the same start: the bits must repeat.
 */
static void check_matmul_dgelu(int N, int C, int OC, unsigned long long seed)
{
    const CheckCase tc("matmul_dgelu", "N=%d,C=%d,OC=%d", N, C, OC);
    Rng rng = rng_create(seed);
    const size_t nin = (size_t)N * C, nout = (size_t)N * OC, nw = (size_t)OC * C;
    Floats pre = random_bf16_values(&rng, nin, 2.0f), inp(nin), weight = random_bf16_values(&rng, nw, 0.05f);
    Floats dout = random_bf16_values(&rng, nout, 1.0f), dweight = random_bf16_values(&rng, nw, 1.0f);
    Floats dbias = random_bf16_values(&rng, OC, 1.0f);
    gelu_forward_cpu(inp.data(), pre.data(), nin);
    for (float &x : inp) x = bf16_round(x); /* what the forward's GELU_AUX epilogue stored */

    floatX *d_pre = upload_bf16(pre), *d_inp = upload_bf16(inp), *d_w = upload_bf16(weight), *d_dout = upload_bf16(dout);
    const size_t scratch_floats = matmul_dbias_scratch_bytes(OC) / sizeof(float);
    floatX *d_dpre[2], *d_dw[2], *d_db[2];
    for (int run = 0; run < 2; run++) {
        d_dpre[run] = device_poisoned<floatX>(nin);
        d_dw[run] = upload_bf16(dweight);
        d_db[run] = upload_bf16(dbias);
        matmul_backward(d_dpre[run], d_dw[run], d_db[run], d_dout, d_inp, d_w, device_poisoned<float>(scratch_floats),
                        N, C, OC, d_pre, 0);
    }

    Floats dinp(nin, 0.0f), dpre(nin, 0.0f);
    matmul_backward_cpu(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(), weight.data(), N, C, OC);
    gelu_backward_cpu(dpre.data(), pre.data(), dinp.data(), nin);
    check_device_close(tc.name("dpre"), d_dpre[0], dpre, BF16_TOL);
    check_device_close(tc.name("dweight+="), d_dw[0], dweight, BF16_TOL);
    check_device_close(tc.name("dbias+="), d_db[0], dbias, BF16_TOL);
    const int same = device_bytes_equal(d_dpre[0], d_dpre[1], nin * sizeof(floatX)) &&
                     device_bytes_equal(d_dw[0], d_dw[1], nw * sizeof(floatX)) &&
                     device_bytes_equal(d_db[0], d_db[1], OC * sizeof(floatX));
    check(same, tc.name("deterministic"), "two runs gave different bits");
    device_free_all();
}

/* ------------------------------------------------------- layernorm / rmsnorm */

/* One routine for both norms: `center` selects LayerNorm (mean, bias) over RMSNorm. */
static void check_norm(int center, int N, int C, unsigned long long seed)
{
    const CheckCase tc(center ? "layernorm" : "rmsnorm", "N=%d,C=%d", N, C);
    Rng rng = rng_create(seed);
    const size_t n = (size_t)N * C;
    const float eps = 1e-5f;
    Floats a = random_bf16_values(&rng, n, 1.0f), b = random_bf16_values(&rng, n, 1.0f);
    Floats weight = random_bf16_values(&rng, C, 1.0f), bias = random_bf16_values(&rng, C, 0.5f);
    for (int c = 0; c < C; c++) a[c] = bf16_round(a[c] + 3.0f); /* a row with a large mean */
    floatX *d_a = upload_bf16(a), *d_b = upload_bf16(b), *d_w = upload_bf16(weight), *d_bias = upload_bf16(bias);

    /* fused residual + norm: residual = a + b (rounded to bf16), then the norm of that */
    Floats residual(n);
    residual_forward_cpu(residual.data(), a.data(), b.data(), n);
    for (float &x : residual) x = bf16_round(x);
    Floats out(n), mean(N), rstd(N);
    if (center) layernorm_forward_cpu(out.data(), mean.data(), rstd.data(), residual.data(), weight.data(), bias.data(), N, C, eps);
    else rmsnorm_forward_cpu(out.data(), rstd.data(), residual.data(), weight.data(), N, C, eps);

    floatX *d_res = device_poisoned<floatX>(n), *d_out = device_poisoned<floatX>(n), *d_plain = device_poisoned<floatX>(n);
    float *d_mean = device_poisoned<float>(N), *d_rstd = device_poisoned<float>(N);
    if (center) fused_residual_layernorm_forward(d_res, d_out, d_mean, d_rstd, d_a, d_b, d_w, d_bias, N, C, eps, 0);
    else fused_residual_rmsnorm_forward(d_res, d_out, d_rstd, d_a, d_b, d_w, N, C, eps, 0);
    check_device_close(tc.name("fused residual"), d_res, residual, 0.0);
    check_device_close(tc.name("fused forward"), d_out, out, BF16_TOL);
    if (center) check_device_close(tc.name("mean"), d_mean, mean, FP32_TOL);
    check_device_close(tc.name("rstd"), d_rstd, rstd, FP32_TOL);

    /* plain forward on the residual */
    if (center) layernorm_forward(d_plain, d_mean, d_rstd, d_res, d_w, d_bias, N, C, eps, 0);
    else rmsnorm_forward(d_plain, d_rstd, d_res, d_w, N, C, eps, 0);
    check_device_close(tc.name("forward"), d_plain, out, BF16_TOL);

    /* backward: every gradient accumulates into random starting values */
    Floats dout = random_bf16_values(&rng, n, 1.0f), dinp = random_bf16_values(&rng, n, 1.0f);
    Floats dweight = random_bf16_values(&rng, C, 1.0f), dbias = random_bf16_values(&rng, C, 1.0f);
    floatX *d_dout = upload_bf16(dout), *d_dinp = upload_bf16(dinp), *d_dw = upload_bf16(dweight), *d_db = upload_bf16(dbias);
    const size_t scratch = center ? layernorm_backward_scratch_bytes(C) : rmsnorm_backward_scratch_bytes(C);
    float *d_scratch = device_alloc<float>(scratch / sizeof(float));
    if (center) {
        layernorm_backward(d_dinp, d_dw, d_db, d_scratch, d_dout, d_res, d_w, d_mean, d_rstd, N, C, 0);
        layernorm_backward_cpu(dinp.data(), dweight.data(), dbias.data(), dout.data(), residual.data(), weight.data(),
                               mean.data(), rstd.data(), N, C);
    } else {
        rmsnorm_backward(d_dinp, d_dw, d_scratch, d_dout, d_res, d_w, d_rstd, N, C, 0);
        rmsnorm_backward_cpu(dinp.data(), dweight.data(), dout.data(), residual.data(), weight.data(), rstd.data(), N, C);
    }
    check_device_close(tc.name("dinp+="), d_dinp, dinp, BF16_TOL);
    check_device_close(tc.name("dweight+="), d_dw, dweight, BF16_TOL);
    if (center) check_device_close(tc.name("dbias+="), d_db, dbias, BF16_TOL);
    device_free_all();
}

/* ------------------------------------------------------------------- rope */

static void check_rope(int N, int NH, int NKV, int HD, RopeParams rope, unsigned long long seed)
{
    const CheckCase tc("rope", "N=%d,NH=%d,NKV=%d,HD=%d,theta=%g,llama3=%g", N, NH, NKV, HD, (double)rope.theta,
                       (double)rope.scaling.factor);
    Rng rng = rng_create(seed);
    const size_t n = (size_t)N * (NH + 2 * NKV) * HD;
    Floats qkv = random_bf16_values(&rng, n, 1.0f), dout = random_bf16_values(&rng, n, 1.0f);
    std::vector<int> pos(N);
    for (int i = 0; i < N; i++) pos[i] = (int)rng_below(&rng, 8192); /* large positions test the angles */
    int *d_pos = upload(pos);
    floatX *d_qkv = upload_bf16(qkv), *d_dqkv = upload_bf16(dout);

    Floats out(n), dinp(n, 0.0f);
    rope_forward_cpu(out.data(), qkv.data(), pos.data(), N, NH, NKV, HD, rope);
    rope_backward_cpu(dinp.data(), dout.data(), pos.data(), N, NH, NKV, HD, rope);
    rope_forward(d_qkv, d_pos, N, NH, NKV, HD, rope, 0);
    rope_backward(d_dqkv, d_pos, N, NH, NKV, HD, rope, 0);
    check_device_close(tc.name("forward"), d_qkv, out, BF16_TOL);
    check_device_close(tc.name("backward"), d_dqkv, dinp, BF16_TOL);
    /* v heads pass through bit for bit */
    const Floats got = download(d_qkv, n);
    int v_same = 1;
    for (int t = 0; t < N; t++)
        for (int k = (NH + NKV) * HD; k < (NH + 2 * NKV) * HD; k++)
            v_same &= got[(size_t)t * (NH + 2 * NKV) * HD + k] == qkv[(size_t)t * (NH + 2 * NKV) * HD + k];
    check(v_same, tc.name("v untouched"), "a v element changed");
    device_free_all();
}

/* ------------------------------------------------- gelu / swiglu / residual */

static void check_gelu(size_t n, unsigned long long seed)
{
    const CheckCase tc("gelu", "n=%zu", n);
    Rng rng = rng_create(seed);
    Floats x = random_bf16_values(&rng, n, 2.0f), dout = random_bf16_values(&rng, n, 1.0f);
    floatX *d_x = upload_bf16(x), *d_dout = upload_bf16(dout), *d_out = device_poisoned<floatX>(n);
    floatX *d_dinp = device_poisoned<floatX>(n);
    Floats out(n), dinp(n, 0.0f);
    gelu_forward_cpu(out.data(), x.data(), n);
    gelu_backward_cpu(dinp.data(), x.data(), dout.data(), n);
    gelu_forward(d_out, d_x, n, 0);
    gelu_backward(d_dinp, d_x, d_dout, n, 0);
    check_device_close(tc.name("forward"), d_out, out, BF16_TOL);
    check_device_close(tc.name("backward"), d_dinp, dinp, BF16_TOL);
    gelu_backward(d_dout, d_x, d_dout, n, 0); /* in place, as dev/cuda/matmul.cu's unfused form uses it */
    check_device_close(tc.name("backward in place"), d_dout, dinp, BF16_TOL);
    device_free_all();
}

static void check_swiglu(int N, int F, unsigned long long seed)
{
    const CheckCase tc("swiglu", "N=%d,F=%d", N, F);
    Rng rng = rng_create(seed);
    const size_t nin = (size_t)N * 2 * F, nout = (size_t)N * F;
    Floats inp = random_bf16_values(&rng, nin, 2.0f), dout = random_bf16_values(&rng, nout, 1.0f);
    floatX *d_inp = upload_bf16(inp), *d_dout = upload_bf16(dout);
    floatX *d_out = device_poisoned<floatX>(nout), *d_dinp = device_poisoned<floatX>(nin);
    Floats out(nout), dinp(nin, 0.0f);
    swiglu_forward_cpu(out.data(), inp.data(), N, F);
    swiglu_backward_cpu(dinp.data(), dout.data(), inp.data(), N, F);
    swiglu_forward(d_out, d_inp, N, F, 0);
    swiglu_backward(d_dinp, d_dout, d_inp, N, F, 0);
    check_device_close(tc.name("forward"), d_out, out, BF16_TOL);
    check_device_close(tc.name("backward"), d_dinp, dinp, BF16_TOL);
    device_free_all();
}

static void check_residual(size_t n, unsigned long long seed)
{
    const CheckCase tc("residual", "n=%zu", n);
    Rng rng = rng_create(seed);
    Floats a = random_bf16_values(&rng, n, 1.0f), b = random_bf16_values(&rng, n, 1.0f), out(n);
    floatX *d_a = upload_bf16(a), *d_b = upload_bf16(b), *d_out = device_poisoned<floatX>(n);
    residual_forward_cpu(out.data(), a.data(), b.data(), n);
    residual_forward(d_out, d_a, d_b, n, 0);
    check_device_close(tc.name("forward"), d_out, out, BF16_TOL);
    device_free_all();
}

/* ---------------------------------------------------------------- encoder */

static void check_encoder(int N, int C, int Vp, int maxT, int with_wpe, unsigned long long seed)
{
    const CheckCase tc("encoder", "N=%d,C=%d,Vp=%d%s", N, C, Vp, with_wpe ? ",wpe" : "");
    Rng rng = rng_create(seed);
    std::vector<int> inputs(N), pos(N);
    for (int i = 0; i < N; i++) {
        /* half the tokens from 16 ids: long runs of equal keys, like frequent words */
        inputs[i] = rng_below(&rng, 2) ? (int)rng_below(&rng, 16) : (int)rng_below(&rng, (uint64_t)Vp);
        pos[i] = (int)rng_below(&rng, (uint64_t)maxT);
    }
    Floats wte = random_bf16_values(&rng, (size_t)Vp * C, 1.0f), wpe = random_bf16_values(&rng, (size_t)maxT * C, 1.0f);
    Floats dout = random_bf16_values(&rng, (size_t)N * C, 1.0f);
    Floats dwte = random_bf16_values(&rng, (size_t)Vp * C, 1.0f), dwpe = random_bf16_values(&rng, (size_t)maxT * C, 1.0f);
    int *d_inputs = upload(inputs), *d_pos = upload(pos);
    floatX *d_wte = upload_bf16(wte), *d_wpe = with_wpe ? upload_bf16(wpe) : NULL, *d_out = device_poisoned<floatX>((size_t)N * C);
    Floats out((size_t)N * C);
    encoder_forward_cpu(out.data(), inputs.data(), pos.data(), wte.data(), with_wpe ? wpe.data() : NULL, N, C);
    encoder_forward(d_out, d_inputs, d_pos, d_wte, d_wpe, N, C, 0);
    check_device_close(tc.name("forward"), d_out, out, BF16_TOL);

    floatX *d_dout = upload_bf16(dout);
    void *d_scratch = device_alloc<char>(encoder_backward_scratch_bytes(N));
    floatX *d_dwte[2], *d_dwpe[2];
    for (int run = 0; run < 2; run++) {
        d_dwte[run] = upload_bf16(dwte);
        d_dwpe[run] = with_wpe ? upload_bf16(dwpe) : NULL;
        encoder_backward(d_dwte[run], d_dwpe[run], d_scratch, d_dout, d_inputs, d_pos, N, C, 0);
    }
    encoder_backward_cpu(dwte.data(), with_wpe ? dwpe.data() : NULL, dout.data(), inputs.data(), pos.data(), N, C);
    check_device_close(tc.name("dwte+="), d_dwte[0], dwte, BF16_TOL);
    if (with_wpe) check_device_close(tc.name("dwpe+="), d_dwpe[0], dwpe, BF16_TOL);
    const int same = device_bytes_equal(d_dwte[0], d_dwte[1], dwte.size() * sizeof(floatX)) &&
                     (!with_wpe || device_bytes_equal(d_dwpe[0], d_dwpe[1], dwpe.size() * sizeof(floatX)));
    check(same, tc.name("backward deterministic"), "two runs gave different bits");
    device_free_all();
}

/* ------------------------------------------------------------- classifier */

static void check_classifier(int N, int V, int Vp, unsigned long long seed)
{
    const CheckCase tc("classifier", "N=%d,V=%d,Vp=%d", N, V, Vp);
    Rng rng = rng_create(seed);
    const size_t n = (size_t)N * Vp;
    Floats logits = random_bf16_values(&rng, n, 3.0f);
    std::vector<int> targets(N);
    int counted = 0;
    for (int i = 0; i < N; i++) {
        targets[i] = i % 5 == 3 ? -1 : (int)rng_below(&rng, (uint64_t)V);
        counted += targets[i] != -1;
    }
    /* padded columns hold garbage that must take no probability */
    for (int i = 0; i < N; i++)
        for (int v = V; v < Vp; v++) logits[(size_t)i * Vp + v] = 100.0f;
    const float dloss = 1.0f / counted;
    Floats losses(N), probs(n), dlogits(n, 0.0f);
    classifier_forward_cpu(losses.data(), probs.data(), logits.data(), targets.data(), N, V, Vp);
    classifier_backward_cpu(dlogits.data(), probs.data(), targets.data(), dloss, N, V, Vp);

    int *d_targets = upload(targets);
    floatX *d_logits = upload_bf16(logits);
    float *d_losses = device_poisoned<float>(N);
    fused_classifier(d_logits, d_losses, dloss, d_targets, N, V, Vp, 0, 0);
    check_device_close(tc.name("losses (no dlogits)"), d_losses, losses, FP32_TOL);
    check_device_close(tc.name("logits kept"), d_logits, logits, 0.0);
    cudaCheck(cudaMemset(d_losses, 0xff, N * sizeof(float)));
    fused_classifier(d_logits, d_losses, dloss, d_targets, N, V, Vp, 1, 0);
    check_device_close(tc.name("losses"), d_losses, losses, FP32_TOL);
    check_device_close(tc.name("dlogits"), d_logits, dlogits, BF16_TOL);
    /* exact zeros: padded columns everywhere, whole rows without a target */
    const Floats got = download(d_logits, n);
    int zeros = 1;
    for (int i = 0; i < N; i++)
        for (int v = 0; v < Vp; v++)
            if (v >= V || targets[i] == -1) zeros &= got[(size_t)i * Vp + v] == 0.0f;
    check(zeros, tc.name("zero padding/ignored rows"), "a nonzero gradient where 0 is due");
    device_free_all();
}

/* ----------------------------------------------------------------- adamw */

static void check_adamw(size_t n, unsigned long long seed)
{
    const CheckCase tc("adamw", "n=%zu", n);
    Rng rng = rng_create(seed);
    const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, wd = 0.1f, grad_scale = 0.5f;
    const int step = 3;
    Floats master = random_bf16_values(&rng, n, 1.0f), grads = random_bf16_values(&rng, n, 1.0f);
    Floats m = random_bf16_values(&rng, n, 0.1f), v(n);
    for (size_t i = 0; i < n; i++) v[i] = 0.01f * (float)rng_uniform(&rng);
    float *d_master = upload(master), *d_m = upload(m), *d_v = upload(v);
    floatX *d_grads = upload_bf16(grads), *d_params = device_poisoned<floatX>(n), *d_again = device_poisoned<floatX>(n);

    Floats scaled(n);
    for (size_t i = 0; i < n; i++) scaled[i] = grads[i] * grad_scale;
    adamw_update_cpu(master.data(), scaled.data(), m.data(), v.data(), n, lr, beta1, beta2, eps, wd, step);
    adamw_update(d_params, d_master, d_grads, d_m, d_v, n, lr, beta1, beta2, eps, wd, grad_scale, step, 1234u, 0);
    check_device_close(tc.name("master"), d_master, master, FP32_TOL);
    check_device_close(tc.name("m"), d_m, m, FP32_TOL);
    check_device_close(tc.name("v"), d_v, v, FP32_TOL);

    /* every bf16 parameter is one of the two bf16 neighbours of its master weight */
    const Floats params = download(d_params, n), got_master = download(d_master, n);
    int neighbours = 1;
    for (size_t i = 0; i < n; i++) {
        const float w = got_master[i], p = params[i];
        uint32_t u;
        memcpy(&u, &w, 4);
        u &= 0xffff0000u;
        float down, up;
        memcpy(&down, &u, 4);
        u += 0x10000u;
        memcpy(&up, &u, 4);
        neighbours &= p == down || p == up;
    }
    check(neighbours, tc.name("params are bf16 neighbours of master"), "a parameter is off");

    /* same seed, same bits: rerun the rounding from the same master state with lr 0 */
    cudaCheck(cudaMemcpy(d_master, got_master.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    adamw_update(d_again, d_master, d_grads, d_m, d_v, n, 0.0f, beta1, beta2, eps, 0.0f, grad_scale, step, 1234u, 0);
    check(device_bytes_equal(d_params, d_again, n * sizeof(floatX)), tc.name("seeded rounding repeats"),
          "same seed gave different bf16 parameters");
    device_free_all();
}

/* Stochastic rounding is unbiased: x = 1 + f ulp (bf16) rounds up with probability f. */
static void check_stochastic_rounding(void)
{
    const size_t n = 1 << 20;
    const float ulp = 1.0f / 128.0f, f = 0.3f; /* bf16 has 7 fraction bits: spacing 2^-7 at 1.0 */
    Floats master(n, 1.0f + f * ulp), zeros(n, 0.0f);
    float *d_master = upload(master), *d_m = upload(zeros), *d_v = upload(zeros);
    floatX *d_grads = upload_bf16(zeros), *d_params = device_poisoned<floatX>(n);
    adamw_update(d_params, d_master, d_grads, d_m, d_v, n, 0.0f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, 1, 99u, 0);
    const Floats params = download(d_params, n);
    size_t up = 0;
    for (size_t i = 0; i < n; i++) up += params[i] > 1.0f;
    const double fraction = (double)up / n;
    /* the binomial standard deviation is 0.00045; allow 10 of them */
    check(fabs(fraction - f) < 0.0045, "adamw/stochastic rounding unbiased", "rounded up %.4f of the time, want %.2f",
          fraction, (double)f);
    device_free_all();
}

/* ------------------------------------------------------------- global norm */

static void check_global_norm(size_t n, unsigned long long seed)
{
    const CheckCase tc("global_norm", "n=%zu", n);
    Rng rng = rng_create(seed);
    Floats grads = random_bf16_values(&rng, n, 0.01f);
    floatX *d_grads = upload_bf16(grads);
    const float start = 2.5f;
    float *d_out = upload(Floats(2, start));
    global_norm_squared(d_out, d_grads, n, 0);
    global_norm_squared(d_out + 1, d_grads, n, 0);
    const Floats got = download(d_out, 2);
    const double want = (double)global_norm_cpu(grads.data(), n) * global_norm_cpu(grads.data(), n) + start;
    const double err = fabs(got[0] - want) / want;
    check(err < FP32_TOL, tc.name("sum of squares +="), "got %.9g want %.9g (rel err %.2e)",
          (double)got[0], want, err);
    check(got[0] == got[1], tc.name("deterministic"), "two runs: %.9g vs %.9g",
          (double)got[0], (double)got[1]);
    device_free_all();
}

#endif /* PACKLM_KERNEL_CHECKS_CUH */
