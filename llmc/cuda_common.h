/*
 * cuda_common.h — what every GPU module of packlm shares: the bf16 storage
 * type, error checks that name file:line, 16-byte vector access, warp/block
 * reductions, the one cuBLASLt handle with its workspace, and device facts.
 *
 *   floatX        __nv_bfloat16: parameters, activations and gradients
 *   Vec128<T>     16 bytes = 8 bf16 or 4 floats, loaded/stored in one access;
 *                 pointers passed to load128/store128 must be 16-byte aligned
 *   warp_sum / warp_max / block_sum / block_max   fp32 reductions (block_*: blockDim.x a
 *                 multiple of 32, at most 1024; every thread gets the result)
 *   mix_hash(seed, index)   32 random-looking bits per (seed, index): stochastic
 *                 rounding, device-side random inputs of the tests and benchmarks
 *   cuda_common_init() once per process before any kernel, cuda_common_destroy()
 *   at exit. Kernels that need cuBLASLt use `cublaslt_handle` and the
 *   CUBLASLT_WORKSPACE_BYTES bytes at `cublaslt_workspace`.
 */
#ifndef PACKLM_CUDA_COMMON_H
#define PACKLM_CUDA_COMMON_H

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef __nv_bfloat16 floatX;

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

static inline void cuda_check_at(cudaError_t err, const char *file, int line)
{
    if (err != cudaSuccess) {
        fflush(stdout);
        fprintf(stderr, "error: CUDA call failed at %s:%d: %s (%s)\n", file, line, cudaGetErrorString(err),
                cudaGetErrorName(err));
        exit(1);
    }
}
#define cudaCheck(call) cuda_check_at((call), __FILE__, __LINE__)

static inline void cublas_check_at(cublasStatus_t status, const char *file, int line)
{
    if (status != CUBLAS_STATUS_SUCCESS) {
        fflush(stdout);
        fprintf(stderr, "error: cuBLAS call failed at %s:%d: status %d\n", file, line, (int)status);
        exit(1);
    }
}
#define cublasCheck(call) cublas_check_at((call), __FILE__, __LINE__)

/* Check that the last kernel launch was accepted (bad grid, too much shared memory...). */
#define cudaCheckLaunch() cudaCheck(cudaGetLastError())

/* ------------------------------------------------------------ 16-byte vectors */

template <typename T>
struct alignas(16) Vec128 {
    static constexpr int size = 16 / sizeof(T);
    T v[size];
    __device__ __forceinline__ T &operator[](int i) { return v[i]; }
    __device__ __forceinline__ const T &operator[](int i) const { return v[i]; }
};
typedef Vec128<floatX> BF16x8;

template <typename T>
__device__ __forceinline__ Vec128<T> load128(const T *p)
{
    Vec128<T> r;
    *reinterpret_cast<int4 *>(&r) = *reinterpret_cast<const int4 *>(p);
    return r;
}

/* Streaming load: data read once, do not keep it in cache. */
template <typename T>
__device__ __forceinline__ Vec128<T> load128cs(const T *p)
{
    Vec128<T> r;
    *reinterpret_cast<int4 *>(&r) = __ldcs(reinterpret_cast<const int4 *>(p));
    return r;
}

template <typename T>
__device__ __forceinline__ void store128(T *p, const Vec128<T> &x)
{
    *reinterpret_cast<int4 *>(p) = *reinterpret_cast<const int4 *>(&x);
}

/* ------------------------------------------------------------------ hashing */

/* A 32-bit integer hash (xorshift-multiply mixing) of a seed and an index. */
__device__ __forceinline__ unsigned int mix_hash(unsigned int seed, size_t index)
{
    unsigned int x = seed ^ (unsigned int)(index >> 32) * 0x85ebca6bu;
    x ^= (unsigned int)index * 0x9E3779B1u;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* ------------------------------------------------------------------ reductions */

__device__ __forceinline__ float warp_sum(float x)
{
    for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

__device__ __forceinline__ float warp_max(float x)
{
    for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

/* Sum over the whole block in a fixed order (deterministic). Uses 32 floats of
   shared memory; safe to call several times in a row. */
__device__ __forceinline__ float block_sum(float x)
{
    __shared__ float partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    x = warp_sum(x);
    __syncthreads(); /* a previous call may still be reading `partial` */
    if (lane == 0) partial[warp] = x;
    __syncthreads();
    x = lane < num_warps ? partial[lane] : 0.0f;
    return warp_sum(x);
}

/* Maximum over the whole block; same rules as block_sum. */
__device__ __forceinline__ float block_max(float x)
{
    __shared__ float partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    x = warp_max(x);
    __syncthreads();
    if (lane == 0) partial[warp] = x;
    __syncthreads();
    x = lane < num_warps ? partial[lane] : -INFINITY;
    return warp_max(x);
}

/* ------------------------------------------------------------ cuBLASLt + device */

#define CUBLASLT_WORKSPACE_BYTES ((size_t)32 << 20)

static cublasLtHandle_t cublaslt_handle;
static void *cublaslt_workspace;

typedef struct {
    char name[256];
    int sm_count;
    int compute_capability; /* e.g. 90 */
    size_t global_memory_bytes;
} DeviceInfo;
static DeviceInfo device_info;

/* Select the current device's facts, create the cuBLASLt handle and workspace. */
static inline void cuda_common_init(void)
{
    int device = 0;
    cudaCheck(cudaGetDevice(&device));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, device));
    snprintf(device_info.name, sizeof(device_info.name), "%s", prop.name);
    device_info.sm_count = prop.multiProcessorCount;
    device_info.compute_capability = prop.major * 10 + prop.minor;
    device_info.global_memory_bytes = prop.totalGlobalMem;
    cublasCheck(cublasLtCreate(&cublaslt_handle));
    cudaCheck(cudaMalloc(&cublaslt_workspace, CUBLASLT_WORKSPACE_BYTES));
}

static inline void cuda_common_destroy(void)
{
    cudaCheck(cudaFree(cublaslt_workspace));
    cublasCheck(cublasLtDestroy(cublaslt_handle));
    cublaslt_workspace = NULL;
}

#endif /* PACKLM_CUDA_COMMON_H */
