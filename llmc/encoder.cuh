/*
 * encoder.cuh — token (+ position) embedding lookup and its deterministic backward.
 *
 *   inputs, pos (N) int32; wte (Vp, C); wpe (maxT, C) or NULL (llama)
 *   forward:  out (N, C) = wte[inputs[n]] + wpe[pos[n]]
 *   backward: dwte[id] += sum of dout[n] over tokens n with inputs[n] == id
 *             dwpe[p]  += sum of dout[n] over tokens n with pos[n] == p   (dwpe NULL: skipped)
 * Determinism without float atomics: the tokens are sorted by key (a stable
 * radix sort, so equal keys keep token order); then one warp per (run of equal
 * keys, 256 columns) sums its rows in that order in fp32 and is the only writer
 * of its table row. Same inputs, same bits, every run.
 * scratch: encoder_backward_scratch_bytes(N) bytes of device memory. C a multiple of 8.
 */
#ifndef PACKLM_ENCODER_CUH
#define PACKLM_ENCODER_CUH

#include <cub/cub.cuh>

#include "cuda_common.h"

__global__ void encoder_forward_kernel(floatX *out, const int *inputs, const int *pos, const floatX *wte,
                                       const floatX *wpe, int N, int C)
{
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i >= (size_t)N * C) return;
    const int token = (int)(i / C), col = (int)(i % C);
    BF16x8 x = load128(wte + (size_t)inputs[token] * C + col);
    if (wpe) {
        const BF16x8 p = load128(wpe + (size_t)pos[token] * C + col);
        for (int k = 0; k < 8; k++) x[k] = (floatX)((float)x[k] + (float)p[k]);
    }
    store128(out + i, x);
}

static void encoder_check_width(const char *who, int C)
{
    if (C % 8 != 0) {
        fprintf(stderr, "error: %s: C=%d is not a multiple of 8\n", who, C);
        exit(1);
    }
}

static void encoder_forward(floatX *out, const int *inputs, const int *pos, const floatX *wte, const floatX *wpe,
                            int N, int C, cudaStream_t s)
{
    encoder_check_width("encoder_forward", C);
    if (N == 0) return;
    const int block = 256;
    encoder_forward_kernel<<<(unsigned)CEIL_DIV((size_t)N * C / 8, (size_t)block), block, 0, s>>>(out, inputs, pos, wte,
                                                                                                  wpe, N, C);
    cudaCheckLaunch();
}

__global__ void iota_kernel(int *out, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = i;
}

#define ENCODER_WARPS_PER_BLOCK 8

/*
 * Warp w handles sorted position i = blockIdx.x * 8 + w and columns
 * [blockIdx.y * 256, +256), 8 per lane; only the first position of each run
 * of equal keys does work. The run is walked 32 positions at a time: each
 * lane fetches one key and token id, a ballot counts how many still belong to
 * the run (equal keys are contiguous), and the rows are then summed in order
 * with independent loads, the token ids passed around by shuffles.
 */
__global__ void embedding_backward_kernel(floatX *dtable, const int *sorted_keys, const int *sorted_tokens,
                                          const floatX *dout, int N, int C)
{
    const int i = blockIdx.x * ENCODER_WARPS_PER_BLOCK + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const int col = blockIdx.y * 256 + lane * 8;
    if (i >= N) return;
    const int key = sorted_keys[i];
    if (i > 0 && sorted_keys[i - 1] == key) return;
    const int has_col = col < C; /* lanes past C still take part in the ballots and shuffles */
    float acc[8] = {};
    for (int start = i;; start += 32) {
        const int j = start + lane;
        const int in_run = j < N && sorted_keys[j] == key;
        const int count = __popc(__ballot_sync(0xffffffffu, in_run));
        const int token = in_run ? sorted_tokens[j] : 0;
#pragma unroll 8
        for (int r = 0; r < count; r++) {
            const int t = __shfl_sync(0xffffffffu, token, r);
            if (has_col) {
                const BF16x8 g = load128(dout + (size_t)t * C + col);
                for (int k = 0; k < 8; k++) acc[k] += (float)g[k];
            }
        }
        if (count < 32) break;
    }
    if (!has_col) return;
    floatX *row = dtable + (size_t)key * C + col;
    BF16x8 w = load128(row);
    for (int k = 0; k < 8; k++) w[k] = (floatX)((float)w[k] + acc[k]);
    store128(row, w);
}

/* Scratch layout: sorted keys (N) | token ids 0..N-1 (N) | sorted token ids (N) | CUB temp storage. */
static size_t encoder_sort_temp_bytes(int N)
{
    size_t bytes = 0;
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) { /* no GPU (train_gpt --check): a bound */
        cudaGetLastError();
        return 16 * (size_t)N + (1u << 20); /* two spare key/value arrays, and 1 MiB for the digit histograms */
    }
    cudaCheck(cub::DeviceRadixSort::SortPairs(NULL, bytes, (const int *)NULL, (int *)NULL, (const int *)NULL,
                                              (int *)NULL, N));
    return bytes;
}

static size_t encoder_backward_scratch_bytes(int N)
{
    return 3 * (size_t)N * sizeof(int) + encoder_sort_temp_bytes(N) + 256;
}

/* dtable[keys[n]] += dout[n] for every token n, deterministically. */
static void embedding_backward(floatX *dtable, void *scratch, const floatX *dout, const int *keys, int N, int C,
                               cudaStream_t s)
{
    int *sorted_keys = (int *)scratch;
    int *tokens = sorted_keys + N;
    int *sorted_tokens = tokens + N;
    /* CUB wants its temp storage aligned; round the offset up to 256 bytes */
    const uintptr_t temp_at = ((uintptr_t)(sorted_tokens + N) + 255) & ~(uintptr_t)255;
    size_t temp_bytes = encoder_sort_temp_bytes(N);
    iota_kernel<<<CEIL_DIV(N, 256), 256, 0, s>>>(tokens, N);
    cudaCheckLaunch();
    cudaCheck(cub::DeviceRadixSort::SortPairs((void *)temp_at, temp_bytes, keys, sorted_keys, tokens, sorted_tokens, N,
                                              0, 32, s));
    const dim3 grid(CEIL_DIV(N, ENCODER_WARPS_PER_BLOCK), CEIL_DIV(C, 256));
    embedding_backward_kernel<<<grid, 32 * ENCODER_WARPS_PER_BLOCK, 0, s>>>(dtable, sorted_keys, sorted_tokens, dout,
                                                                            N, C);
    cudaCheckLaunch();
}

static void encoder_backward(floatX *dwte, floatX *dwpe, void *scratch, const floatX *dout, const int *inputs,
                             const int *pos, int N, int C, cudaStream_t s)
{
    encoder_check_width("encoder_backward", C);
    if (N == 0) return;
    embedding_backward(dwte, scratch, dout, inputs, N, C, s);
    if (dwpe) embedding_backward(dwpe, scratch, dout, pos, N, C, s);
}

#endif /* PACKLM_ENCODER_CUH */
