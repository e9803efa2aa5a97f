/*
 * test_attention_ref.c — the CPU reference of packed (varlen) attention,
 * llmc/attention_ref.h, with qkv (N, (NH + 2*NKV) * HD), out (N, NH*HD),
 * lse (NH, N):
 *   - backward against central finite differences (h = 1e-2, relative L2
 *     tolerance 2e-3; fp32 rounding gives ~1e-4);
 *   - a packed batch equals every document run alone (outputs, lse, all
 *     gradients; tolerance 1e-6) with documents of length 1, a document that
 *     fills a whole row, and a row whose last document is cut at the row end;
 *   - grouped-query attention equals multi-head attention with each K/V head
 *     repeated for its group (dK, dV summed over the group);
 *   - forward pinned by cases with a known answer: a length-1 document returns
 *     its own v; all-zero keys average the v's of the prefix;
 *   - causality, and positions restart at every segment of a packed batch.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attention_ref.h"
#include "batch.h"
#include "fd_check.h"
#include "synthetic_batch.h"

static Rng rng;

/* Attention problem: shapes, segments and buffers. */
typedef struct {
    int N, NH, NKV, HD, S;
    const int *cu;
    float *qkv, *out, *lse, *dout, *dqkv;
} Attn;

static Attn attn_create(int N, int NH, int NKV, int HD, const int *cu, int S)
{
    const size_t W = (size_t)(NH + 2 * NKV) * HD;
    Attn a = {N, NH, NKV, HD, S, cu, random_floats(&rng, (size_t)N * W, 1.0), nan_floats((size_t)N * NH * HD),
              nan_floats((size_t)NH * N), random_floats(&rng, (size_t)N * NH * HD, 1.0), nan_floats((size_t)N * W)};
    return a;
}

static void attn_free(Attn *a)
{
    free(a->qkv), free(a->out), free(a->lse), free(a->dout), free(a->dqkv);
}

static void attn_run(Attn *a)
{
    attention_forward_cpu(a->out, a->lse, a->qkv, a->cu, a->S, a->N, a->NH, a->NKV, a->HD);
    attention_backward_cpu(a->dqkv, a->dout, a->qkv, a->out, a->lse, a->cu, a->S, a->N, a->NH, a->NKV, a->HD);
}

/* L = sum(dout * out), accumulated in double. */
static double probe_loss(void *ctx)
{
    Attn *a = (Attn *)ctx;
    attention_forward_cpu(a->out, a->lse, a->qkv, a->cu, a->S, a->N, a->NH, a->NKV, a->HD);
    double sum = 0.0;
    for (size_t i = 0; i < (size_t)a->N * a->NH * a->HD; i++) sum += (double)a->dout[i] * a->out[i];
    return sum;
}

static void test_finite_differences(void)
{
    /* row 0: documents of 1, 4, 3; row 1: one document of 8; GQA with 2 query heads per kv head */
    const int cu[] = {0, 1, 5, 8, 16};
    Attn a = attn_create(16, 4, 2, 4, cu, 4);
    attn_run(&a);
    const size_t n = (size_t)a.N * (a.NH + 2 * a.NKV) * a.HD;
    check_fd("attention_backward dqkv (fd, GQA, packed)", probe_loss, &a, a.qkv, a.dqkv, n, 1e-2f, 2e-3);
    attn_free(&a);
}

/* Packed run vs each segment alone, on the packed batch's own buffers. */
static void test_packed_equals_alone(void)
{
    /*
     * rows of T = 8: row 0 = documents 1, 1, 6; row 1 = one document filling
     * the row; row 2 = 3 then a document of 5 cut at the row end (it would go
     * on in the next row, which starts a new segment: 2 and 6).
     */
    const int T = 8, B = 4, NH = 4, NKV = 2, HD = 8, W = (NH + 2 * NKV) * HD;
    const int lengths[] = {1, 1, 6, 8, 3, 5, 2, 6};
    const int S = (int)(sizeof(lengths) / sizeof(lengths[0])), N = B * T;
    PackedBatch b;
    packed_batch_alloc(&b, B, T);
    synthetic_batch_from_lengths(&b, lengths, NULL, S, 5, &rng);
    Attn packed = attn_create(N, NH, NKV, HD, b.cu_seqlens, S);
    attn_run(&packed);

    double worst_out = 0.0, worst_lse = 0.0, worst_grad = 0.0;
    for (int s = 0; s < S; s++) {
        const int start = b.cu_seqlens[s], L = lengths[s];
        const int cu_alone[] = {0, L};
        Attn alone = attn_create(L, NH, NKV, HD, cu_alone, 1);
        memcpy(alone.qkv, packed.qkv + (size_t)start * W, (size_t)L * W * sizeof(float));
        memcpy(alone.dout, packed.dout + (size_t)start * NH * HD, (size_t)L * NH * HD * sizeof(float));
        attn_run(&alone);
        worst_out = fmax(worst_out, rel_l2_error(packed.out + (size_t)start * NH * HD, alone.out, (size_t)L * NH * HD));
        worst_grad = fmax(worst_grad, rel_l2_error(packed.dqkv + (size_t)start * W, alone.dqkv, (size_t)L * W));
        for (int h = 0; h < NH; h++)
            worst_lse = fmax(worst_lse, rel_l2_error(packed.lse + (size_t)h * N + start, alone.lse + (size_t)h * L, L));
        attn_free(&alone);
    }
    check(worst_out <= 1e-6, "attention packed == alone: out", "worst relative error %.3e", worst_out);
    check(worst_lse <= 1e-6, "attention packed == alone: lse", "worst relative error %.3e", worst_lse);
    check(worst_grad <= 1e-6, "attention packed == alone: dq, dk, dv", "worst relative error %.3e", worst_grad);

    /* positions restart at every segment start, including every row start */
    int ok = packed_batch_check(&b) == NULL;
    for (int s = 0; s < S; s++) ok &= b.pos[b.cu_seqlens[s]] == 0 && b.pos[b.cu_seqlens[s + 1] - 1] == lengths[s] - 1;
    for (int r = 0; r < B; r++) ok &= b.pos[r * T] == 0;
    check(ok, "packed batch positions restart per segment", "a position does not restart");
    attn_free(&packed);
    packed_batch_free(&b);
}

/* GQA (NKV kv heads) vs MHA whose K/V head h is the GQA kv head h / group. */
static void test_gqa_equals_repeated_mha(void)
{
    const int N = 12, NH = 6, NKV = 2, HD = 4, group = NH / NKV;
    const int WG = (NH + 2 * NKV) * HD, WM = 3 * NH * HD;
    const int cu[] = {0, 5, 6, 12};
    Attn gqa = attn_create(N, NH, NKV, HD, cu, 3), mha = attn_create(N, NH, NH, HD, cu, 3);
    for (int i = 0; i < N; i++) {
        memcpy(mha.qkv + i * WM, gqa.qkv + i * WG, (size_t)NH * HD * sizeof(float));
        for (int h = 0; h < NH; h++) {
            const int kvh = h / group;
            memcpy(mha.qkv + i * WM + (NH + h) * HD, gqa.qkv + i * WG + (NH + kvh) * HD, HD * sizeof(float));
            memcpy(mha.qkv + i * WM + (2 * NH + h) * HD, gqa.qkv + i * WG + (NH + NKV + kvh) * HD, HD * sizeof(float));
        }
    }
    memcpy(mha.dout, gqa.dout, (size_t)N * NH * HD * sizeof(float));
    attn_run(&gqa);
    attn_run(&mha);
    check_close("attention GQA == repeated-KV MHA: out", gqa.out, mha.out, (size_t)N * NH * HD, 1e-6);
    check_close("attention GQA == repeated-KV MHA: lse", gqa.lse, mha.lse, (size_t)NH * N, 1e-6);
    /* fold the MHA gradient back: dq as is, dk/dv summed over each group */
    float *folded = (float *)calloc_or_die((size_t)N * WG, sizeof(float));
    for (int i = 0; i < N; i++) {
        memcpy(folded + i * WG, mha.dqkv + i * WM, (size_t)NH * HD * sizeof(float));
        for (int h = 0; h < NH; h++)
            for (int d = 0; d < HD; d++) {
                folded[i * WG + (NH + h / group) * HD + d] += mha.dqkv[i * WM + (NH + h) * HD + d];
                folded[i * WG + (NH + NKV + h / group) * HD + d] += mha.dqkv[i * WM + (2 * NH + h) * HD + d];
            }
    }
    check_close("attention GQA == repeated-KV MHA: dqkv (dk, dv summed per group)", gqa.dqkv, folded, (size_t)N * WG,
                1e-5);
    free(folded);
    attn_free(&gqa);
    attn_free(&mha);
}

static void test_known_answers(void)
{
    const int N = 7, NH = 2, NKV = 1, HD = 4, W = (NH + 2 * NKV) * HD;
    const int cu[] = {0, 1, 7};
    Attn a = attn_create(N, NH, NKV, HD, cu, 2);
    /* token 0 is a document of length 1: its output is its own v, lse = scale * q.k */
    attention_forward_cpu(a.out, a.lse, a.qkv, cu, 2, N, NH, NKV, HD);
    const float *v0 = a.qkv + (NH + NKV) * HD;
    double err = 0.0;
    for (int h = 0; h < NH; h++) {
        double qk = 0.0;
        for (int d = 0; d < HD; d++) {
            err = fmax(err, fabs(a.out[h * HD + d] - v0[d]));
            qk += (double)a.qkv[h * HD + d] * a.qkv[NH * HD + d];
        }
        err = fmax(err, fabs(a.lse[(size_t)h * N] - qk / sqrt((double)HD)));
    }
    check(err < 1e-6, "attention length-1 document: out = v, lse = q.k / sqrt(HD)", "error %.3e", err);
    /* all keys zero: every score is 0, so out_i = mean of v over the segment's prefix, lse = log(count) */
    for (int i = 0; i < N; i++) memset(a.qkv + i * W + NH * HD, 0, NKV * HD * sizeof(float));
    attention_forward_cpu(a.out, a.lse, a.qkv, cu, 2, N, NH, NKV, HD);
    err = 0.0;
    for (int i = 1; i < N; i++)
        for (int h = 0; h < NH; h++) {
            for (int d = 0; d < HD; d++) {
                double mean = 0.0;
                for (int j = 1; j <= i; j++) mean += a.qkv[j * W + (NH + NKV) * HD + d];
                mean /= i;
                err = fmax(err, fabs(a.out[i * NH * HD + h * HD + d] - mean));
            }
            err = fmax(err, fabs(a.lse[(size_t)h * N + i] - log((double)i)));
        }
    check(err < 1e-5, "attention zero keys: out = prefix mean of v, lse = log(prefix length)", "error %.3e", err);
    /* causality: changing the last token of the segment leaves every earlier output as it was */
    float *before = nan_floats((size_t)N * NH * HD);
    attention_forward_cpu(before, a.lse, a.qkv, cu, 2, N, NH, NKV, HD);
    for (int k = 0; k < W; k++) a.qkv[(N - 1) * W + k] += 1.0f;
    attention_forward_cpu(a.out, a.lse, a.qkv, cu, 2, N, NH, NKV, HD);
    check(memcmp(before, a.out, (size_t)(N - 1) * NH * HD * sizeof(float)) == 0, "attention is causal",
          "an earlier token's output changed");
    check(rel_l2_error(before + (N - 1) * NH * HD, a.out + (N - 1) * NH * HD, NH * HD) > 1e-3,
          "attention last token sees its own change", "its output did not change");
    free(before);
    attn_free(&a);
}

int main(void)
{
    rng = rng_create(4242);
    test_finite_differences();
    test_packed_equals_alone();
    test_gqa_equals_repeated_mha();
    test_known_answers();
    return test_summary();
}
