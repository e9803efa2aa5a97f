/*
 * attention_ref.h — fp32 CPU reference of document-masked (varlen) attention
 * over a packed batch. It is the oracle for the GPU kernels in attention.cuh.
 *
 * Shapes (N tokens in the packed batch, HD head dim):
 *   qkv  (N, (NH + 2*NKV) * HD)   per token: NH query heads, then NKV key heads,
 *                                  then NKV value heads, each HD wide
 *   cu_seqlens (S + 1)            segment s is tokens [cu[s], cu[s+1]); cu[0]=0, cu[S]=N
 *   out  (N, NH * HD)             per token: NH heads of HD
 *   lse  (NH, N)                  log-sum-exp of the scaled scores of each query row
 *
 * Token i of segment s attends to tokens j of the same segment with j <= i
 * (causal inside the segment, nothing across segments). Query head h reads
 * kv head h / (NH / NKV) (grouped-query attention). Scores are scaled by
 * 1/sqrt(HD). The backward recomputes the probabilities from lse:
 *   P_ij = exp(s_ij - lse_i),  dV_j += P_ij dO_i,  dP_ij = dO_i . V_j,
 *   D_i = dO_i . O_i,  dS_ij = P_ij (dP_ij - D_i),
 *   dQ_i += scale dS_ij K_j,  dK_j += scale dS_ij Q_i.
 * dqkv is overwritten (not accumulated); GQA gradients of a kv head are the
 * sum over the query heads that read it.
 */
#ifndef PACKLM_ATTENTION_REF_H
#define PACKLM_ATTENTION_REF_H

#include <math.h>
#include <string.h>

static inline void attention_forward_cpu(float *out, float *lse, const float *qkv, const int *cu_seqlens,
                                         int num_segments, int N, int NH, int NKV, int HD)
{
    const int stride = (NH + 2 * NKV) * HD, group = NH / NKV;
    const float scale = 1.0f / sqrtf((float)HD);
    for (int s = 0; s < num_segments; s++) {
        const int start = cu_seqlens[s], end = cu_seqlens[s + 1];
        /* short segments stay on one thread: starting threads would cost more */
#pragma omp parallel for collapse(2) schedule(dynamic) if ((size_t)(end - start) * (end - start) * NH * HD >= (1 << 20))
        for (int h = 0; h < NH; h++) {
            for (int i = start; i < end; i++) {
                const int kvh = h / group;
                const float *q = qkv + (size_t)i * stride + h * HD;
                float *o = out + (size_t)i * NH * HD + h * HD;
                /* pass 1: row max; pass 2: exp-sum and weighted values */
                float maxval = -INFINITY;
                for (int j = start; j <= i; j++) {
                    const float *k = qkv + (size_t)j * stride + (NH + kvh) * HD;
                    float dot = 0.0f;
                    for (int d = 0; d < HD; d++) dot += q[d] * k[d];
                    if (dot * scale > maxval) maxval = dot * scale;
                }
                float sum = 0.0f;
                for (int d = 0; d < HD; d++) o[d] = 0.0f;
                for (int j = start; j <= i; j++) {
                    const float *k = qkv + (size_t)j * stride + (NH + kvh) * HD;
                    const float *v = qkv + (size_t)j * stride + (NH + NKV + kvh) * HD;
                    float dot = 0.0f;
                    for (int d = 0; d < HD; d++) dot += q[d] * k[d];
                    float p = expf(dot * scale - maxval);
                    sum += p;
                    for (int d = 0; d < HD; d++) o[d] += p * v[d];
                }
                for (int d = 0; d < HD; d++) o[d] /= sum;
                lse[(size_t)h * N + i] = maxval + logf(sum);
            }
        }
    }
}

static inline void attention_backward_cpu(float *dqkv, const float *dout, const float *qkv, const float *out,
                                          const float *lse, const int *cu_seqlens, int num_segments, int N,
                                          int NH, int NKV, int HD)
{
    const int stride = (NH + 2 * NKV) * HD, group = NH / NKV;
    const float scale = 1.0f / sqrtf((float)HD);
    memset(dqkv, 0, (size_t)N * stride * sizeof(float));
    for (int s = 0; s < num_segments; s++) {
        const int start = cu_seqlens[s], end = cu_seqlens[s + 1];
        /* one kv head at a time so the accumulation into dK/dV has no races */
#pragma omp parallel for schedule(dynamic) if ((size_t)(end - start) * (end - start) * NH * HD >= (1 << 20))
        for (int kvh = 0; kvh < NKV; kvh++) {
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                for (int i = start; i < end; i++) {
                    const float *q = qkv + (size_t)i * stride + h * HD;
                    const float *o = out + (size_t)i * NH * HD + h * HD;
                    const float *dO = dout + (size_t)i * NH * HD + h * HD;
                    float *dq = dqkv + (size_t)i * stride + h * HD;
                    float D = 0.0f;
                    for (int d = 0; d < HD; d++) D += dO[d] * o[d];
                    const float row_lse = lse[(size_t)h * N + i];
                    for (int j = start; j <= i; j++) {
                        const float *k = qkv + (size_t)j * stride + (NH + kvh) * HD;
                        const float *v = qkv + (size_t)j * stride + (NH + NKV + kvh) * HD;
                        float *dk = dqkv + (size_t)j * stride + (NH + kvh) * HD;
                        float *dv = dqkv + (size_t)j * stride + (NH + NKV + kvh) * HD;
                        float dot = 0.0f, dp = 0.0f;
                        for (int d = 0; d < HD; d++) { dot += q[d] * k[d]; dp += dO[d] * v[d]; }
                        const float p = expf(dot * scale - row_lse);
                        const float ds = p * (dp - D);
                        for (int d = 0; d < HD; d++) {
                            dv[d] += p * dO[d];
                            dq[d] += scale * ds * k[d];
                            dk[d] += scale * ds * q[d];
                        }
                    }
                }
            }
        }
    }
}

#endif /* PACKLM_ATTENTION_REF_H */
