/*
 * rope.cuh — rotary position embedding, "rotate half" convention, applied in
 * place to the q and k heads of the packed qkv activation (v is untouched).
 *
 *   qkv / dqkv   (N, (NH + 2*NKV) * HD) bf16: per token NH q heads | NKV k heads | NKV v heads
 *   pos          (N) int32 positions inside each token's document segment
 * For d in [0, HD/2): angle = pos * f(d), f from rope_freq.h (theta^(-2d/HD), or
 * Llama 3's scaled frequencies), and the pair
 * (x1, x2) = (x[d], x[d + HD/2]) becomes (x1 cos - x2 sin, x1 sin + x2 cos).
 * The backward is the rotation by -angle of the gradient.
 * Angles and their sines are computed in double so large positions stay exact.
 * HD must be a multiple of 16 (one thread rotates 8 pairs with 16-byte accesses).
 */
#ifndef PACKLM_ROPE_CUH
#define PACKLM_ROPE_CUH

#include "cuda_common.h"
#include "rope_freq.h"

/* One thread per (token, group of 8 pairs); it loops over the q and k heads. */
__global__ void rope_rotate_kernel(floatX *qkv, const int *pos, int N, int NH, int NKV, int HD, RopeParams rope,
                                   float direction)
{
    const int half = HD / 2, groups = half / 8;
    const int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= N * groups) return;
    const int token = idx / groups, d0 = (idx % groups) * 8;
    float c[8], s[8];
    for (int k = 0; k < 8; k++) {
        const double angle = (double)pos[token] * rope_inv_freq(rope, d0 + k, HD);
        double sd, cd;
        sincos(angle, &sd, &cd);
        c[k] = (float)cd;
        s[k] = direction * (float)sd;
    }
    floatX *row = qkv + (size_t)token * (NH + 2 * NKV) * HD;
    for (int head = 0; head < NH + NKV; head++) {
        floatX *x = row + head * HD + d0;
        const BF16x8 x1 = load128(x), x2 = load128(x + half);
        BF16x8 y1, y2;
        for (int k = 0; k < 8; k++) {
            y1[k] = (floatX)((float)x1[k] * c[k] - (float)x2[k] * s[k]);
            y2[k] = (floatX)((float)x1[k] * s[k] + (float)x2[k] * c[k]);
        }
        store128(x, y1);
        store128(x + half, y2);
    }
}

static void rope_rotate(const char *who, floatX *qkv, const int *pos, int N, int NH, int NKV, int HD, RopeParams rope,
                        float direction, cudaStream_t s)
{
    if (HD % 16 != 0) {
        fprintf(stderr, "error: %s: head dim %d is not a multiple of 16\n", who, HD);
        exit(1);
    }
    const int threads = N * (HD / 16), block = 128;
    if (threads == 0) return;
    rope_rotate_kernel<<<CEIL_DIV(threads, block), block, 0, s>>>(qkv, pos, N, NH, NKV, HD, rope, direction);
    cudaCheckLaunch();
}

static void rope_forward(floatX *qkv, const int *pos, int N, int NH, int NKV, int HD, RopeParams rope, cudaStream_t s)
{
    rope_rotate("rope_forward", qkv, pos, N, NH, NKV, HD, rope, 1.0f, s);
}

static void rope_backward(floatX *dqkv, const int *pos, int N, int NH, int NKV, int HD, RopeParams rope,
                          cudaStream_t s)
{
    rope_rotate("rope_backward", dqkv, pos, N, NH, NKV, HD, rope, -1.0f, s);
}

#endif /* PACKLM_ROPE_CUH */
