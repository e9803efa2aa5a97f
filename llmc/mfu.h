/*
 * mfu.h — model FLOPs utilisation: how many floating-point operations a
 * training step needs, and what the card could do at its peak (dense bf16
 * tensor-core rate, from a table by device name).
 *
 * FLOPs of one training step (forward + backward = 3x forward):
 *   matmuls:   6 * P_matmul * tokens, P_matmul = the weights every token
 *              multiplies: per layer C*QKV + C*C + C*FC + F*C, plus the
 *              Vp*C head (the embedding lookup is no matmul)
 *   attention: forward 4 * HD * NH * pairs per layer (QK^T and PV over the
 *              attended pairs only), backward 2.5x that, so 3.5x in all;
 *              pairs = sum over segments of L_s * (L_s + 1) / 2
 * tokens counts every position the kernels compute, padding included.
 */
#ifndef PACKLM_MFU_H
#define PACKLM_MFU_H

#include <string.h>

#include "batch.h"
#include "config.h"

/* Weights one token multiplies in the forward pass (2 FLOPs each). */
static inline double model_matmul_params(const ModelConfig *c)
{
    double C = c->channels, F = c->ffn_hidden;
    double per_layer = C * model_qkv_width(c) + C * C + C * model_fc_width(c) + F * C;
    return c->num_layers * per_layer + (double)c->padded_vocab_size * C;
}

/* Attended (query, key) pairs of a packed batch: causal inside each segment. */
static inline double batch_attended_pairs(const PackedBatch *b)
{
    double pairs = 0.0;
    for (int s = 0; s < b->num_segments; s++) {
        double len = b->cu_seqlens[s + 1] - b->cu_seqlens[s];
        pairs += len * (len + 1.0) / 2.0;
    }
    return pairs;
}

/* FLOPs of forward + backward over `tokens` tokens with `pairs` attended pairs. */
static inline double training_flops(const ModelConfig *c, double tokens, double pairs)
{
    double matmul = 6.0 * model_matmul_params(c) * tokens;
    double attention_forward = 4.0 * c->head_dim * c->num_heads * pairs * c->num_layers;
    return matmul + 3.5 * attention_forward;
}

/*
 * Peak dense bf16 tensor TFLOP/s of a card named like cudaDeviceProp.name,
 * or -1 when the card is not in the table (the caller then says so).
 */
static inline double gpu_peak_bf16_tflops(const char *device_name)
{
    if (strstr(device_name, "H100")) return strstr(device_name, "PCIe") ? 756.0 : 989.0;
    if (strstr(device_name, "H200")) return 989.0;
    if (strstr(device_name, "A100")) return 312.0;
    return -1.0;
}

#endif /* PACKLM_MFU_H */
