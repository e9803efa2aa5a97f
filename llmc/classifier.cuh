/*
 * classifier.cuh — the fused output layer loss: softmax over the vocabulary,
 * cross-entropy against the targets, and the gradient of the loss w.r.t. the
 * logits written in place over the logits (no second logits buffer).
 *
 *   logits (N, Vp) bf16: in: logits; out (write_dlogits): dlogits
 *   targets (N) int32 in [0, V), or -1 = no loss
 *   losses (N) fp32 out: logsumexp(row[0..V)) - row[target]; 0 where target == -1;
 *           NaN where the target is out of range (a caller bug made visible)
 *   dloss   the loss scale of every token (1 / number of counted tokens)
 * dlogits = dloss * (softmax - onehot(target)) over columns [0, V); the padded
 * columns [V, Vp) and rows with target -1 get exactly 0.
 * One block per row; fp32 math; Vp a multiple of 8 (it is one of 128).
 */
#ifndef PACKLM_CLASSIFIER_CUH
#define PACKLM_CLASSIFIER_CUH

#include "cuda_common.h"

#define CLASSIFIER_THREADS 512

__global__ void __launch_bounds__(CLASSIFIER_THREADS)
    fused_classifier_kernel(floatX *logits, float *losses, float dloss, const int *targets, int V, int Vp,
                            int write_dlogits)
{
    const int row = blockIdx.x;
    floatX *z = logits + (size_t)row * Vp;
    const int target = targets[row];
    /* pass 1: running max and sum of exp per thread over the first V columns */
    float m = -INFINITY, sum = 0.0f;
    for (int c = threadIdx.x * 8; c < V; c += CLASSIFIER_THREADS * 8) {
        const BF16x8 x = load128(z + c);
        for (int k = 0; k < 8 && c + k < V; k++) {
            const float v = (float)x[k];
            if (v > m) {
                sum = sum * expf(m - v) + 1.0f;
                m = v;
            } else {
                sum += expf(v - m);
            }
        }
    }
    const float row_max = block_max(m);
    const float row_sum = block_sum(m == -INFINITY ? 0.0f : sum * expf(m - row_max));
    const int valid = target >= 0 && target < V;
    if (threadIdx.x == 0)
        losses[row] = target == -1 ? 0.0f : valid ? row_max + logf(row_sum) - (float)z[target] : NAN;
    if (!write_dlogits) return;
    __syncthreads(); /* z[target] is read above before any thread overwrites it */
    /* pass 2: overwrite the row with its gradient */
    const float inv_sum = 1.0f / row_sum;
    const float scale = target == -1 ? 0.0f : dloss;
    for (int c = threadIdx.x * 8; c < Vp; c += CLASSIFIER_THREADS * 8) {
        const BF16x8 x = load128cs(z + c);
        BF16x8 g;
        for (int k = 0; k < 8; k++) {
            const int col = c + k;
            const float p = col < V ? expf((float)x[k] - row_max) * inv_sum : 0.0f;
            g[k] = (floatX)(scale * (p - (col == target ? 1.0f : 0.0f)));
        }
        store128(z + c, g);
    }
}

static void fused_classifier(floatX *logits, float *losses, float dloss, const int *targets, int N, int V, int Vp,
                             int write_dlogits, cudaStream_t s)
{
    if (Vp % 8 != 0 || V > Vp) {
        fprintf(stderr, "error: fused_classifier: need V <= Vp and Vp a multiple of 8 (V=%d, Vp=%d)\n", V, Vp);
        exit(1);
    }
    if (N == 0) return;
    fused_classifier_kernel<<<N, CLASSIFIER_THREADS, 0, s>>>(logits, losses, dloss, targets, V, Vp, write_dlogits);
    cudaCheckLaunch();
}

#endif /* PACKLM_CLASSIFIER_CUH */
