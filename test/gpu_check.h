/*
 * gpu_check.h — helpers for checking GPU kernels against the CPU reference
 * and for timing them; shared by test/kernel_checks.cuh,
 * dev/cuda/attention_check.h and through them every GPU test and dev/cuda
 * program.
 *
 *   random host data (fp32, then rounded to bf16 exactly as the GPU stores it,
 *   so the CPU reference sees the very inputs the kernel sees), upload and
 *   download of bf16 / fp32 / int buffers, NaN-poisoned device outputs,
 *   check_device_close (norm-relative error; NaN never passes, see test.h),
 *   time_ms (median time of one call, CUDA events) and time_ms_interleaved
 *   (several calls in rounds, on a card warmed to its clock under load).
 */
#ifndef PACKLM_GPU_CHECK_H
#define PACKLM_GPU_CHECK_H

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdint.h>
#include <string.h>
#include <vector>

#include "cuda_common.h"
#include "rand.h"
#include "card_sampler.h"
#include "test.h"

/* fp32 -> nearest bf16 (ties to even), as __float2bfloat16 does, returned as fp32. */
static inline float bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; /* inf / NaN unchanged */
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

typedef std::vector<float> Floats;

/* n values ~ normal(0, scale), already rounded to bf16. */
static inline Floats random_bf16_values(Rng *rng, size_t n, float scale)
{
    Floats x(n);
    for (size_t i = 0; i < n; i++) x[i] = bf16_round(scale * (float)rng_normal(rng));
    return x;
}

/* Every device buffer made here is remembered and freed by device_free_all(). */
static std::vector<void *> device_allocations;

template <typename T>
static inline T *device_alloc(size_t n)
{
    T *d;
    cudaCheck(cudaMalloc(&d, n * sizeof(T) + 16));
    device_allocations.push_back(d);
    return d;
}

static inline void device_free_all(void)
{
    cudaCheck(cudaDeviceSynchronize());
    for (void *d : device_allocations) cudaCheck(cudaFree(d));
    device_allocations.clear();
}

/* Host fp32 values (bf16-exact) into an existing device bf16 buffer of host.size() elements. */
static inline void copy_to_device_bf16(floatX *d, const Floats &host)
{
    const size_t n = host.size();
    std::vector<floatX> staged(n);
    for (size_t i = 0; i < n; i++) staged[i] = __float2bfloat16(host[i]);
    cudaCheck(cudaMemcpy(d, staged.data(), n * sizeof(floatX), cudaMemcpyHostToDevice));
}

/* Device copy of host fp32 values as bf16 (the values should be bf16-exact). */
static inline floatX *upload_bf16(const Floats &host)
{
    floatX *d = device_alloc<floatX>(host.size());
    copy_to_device_bf16(d, host);
    return d;
}

template <typename T>
static inline T *upload(const std::vector<T> &host)
{
    const size_t n = host.size();
    T *d = device_alloc<T>(n);
    cudaCheck(cudaMemcpy(d, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

/* A device buffer of n elements of T, every byte 0xFF: NaN as bf16 and as fp32. */
template <typename T>
static inline T *device_poisoned(size_t n)
{
    T *d = device_alloc<T>(n);
    cudaCheck(cudaMemset(d, 0xff, n * sizeof(T) + 16));
    return d;
}

/* Host fp32 copy of a device buffer (bf16 or fp32). */
static inline Floats download(const floatX *d, size_t n)
{
    std::vector<floatX> staged(n);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(staged.data(), d, n * sizeof(floatX), cudaMemcpyDeviceToHost));
    Floats h(n);
    for (size_t i = 0; i < n; i++) h[i] = __bfloat162float(staged[i]);
    return h;
}
static inline Floats download(const float *d, size_t n)
{
    cudaCheck(cudaDeviceSynchronize());
    Floats h(n);
    cudaCheck(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

/* check_close of a device buffer against a host reference of the same length. */
template <typename T>
static inline int check_device_close(const char *name, const T *d, const Floats &want, double tol)
{
    const Floats got = download(d, want.size());
    return check_close(name, got.data(), want.data(), want.size(), tol);
}

/* 1 when two device buffers hold the same bytes. */
static inline int device_bytes_equal(const void *a, const void *b, size_t bytes)
{
    std::vector<unsigned char> x(bytes), y(bytes);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(x.data(), a, bytes, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(y.data(), b, bytes, cudaMemcpyDeviceToHost));
    return memcmp(x.data(), y.data(), bytes) == 0;
}

/* Times single calls on the default stream with a pair of CUDA events. */
struct CallTimer {
    cudaEvent_t start, stop;
    CallTimer()
    {
        cudaCheck(cudaEventCreate(&start));
        cudaCheck(cudaEventCreate(&stop));
    }
    ~CallTimer()
    {
        cudaCheck(cudaEventDestroy(start));
        cudaCheck(cudaEventDestroy(stop));
    }
    /* milliseconds the card spent on fn(), waited for */
    template <typename F>
    float time(F &&fn)
    {
        cudaCheck(cudaEventRecord(start));
        fn();
        cudaCheck(cudaEventRecord(stop));
        cudaCheck(cudaEventSynchronize(stop));
        float ms;
        cudaCheck(cudaEventElapsedTime(&ms, start, stop));
        return ms;
    }
};

static float median_ms(std::vector<float> ms)
{
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

/* Median milliseconds of one call of fn() over `reps` timed calls, after 3 warm-up calls. */
template <typename F>
static float time_ms(F fn, int reps)
{
    CallTimer timer;
    for (int i = 0; i < 3; i++) fn();
    std::vector<float> ms(reps);
    for (int i = 0; i < reps; i++) ms[i] = timer.time(fn);
    return median_ms(ms);
}

/* Median milliseconds of one call of each fns[k]() over `reps` rounds. A round calls every function
   twice in a row, in order, and times the second call, so they all run under the same clock (under a
   power cap the card's clock drifts over a benchmark, and timing one function's reps after another's
   would charge that drift to whichever ran last). The first call of a pair is still running on the
   card while the host launches the second, so the host's launch time is not counted (as in a training
   step, where the host runs ahead of the card), and each timed call follows a call of itself (its
   caches as warm as in a loop).
   Before the timed rounds: 3 untimed rounds, and more until `warm_seconds` of them have run, so that
   the card has left the top clock it holds for a moment after an idle spell and runs at the clock it
   keeps under load (card_sampler.h), as in a training run. When `card` is given, it receives the mean
   SM clock and power over the timed rounds and the last second of the warm-up (0: unknown): the
   card's energy counter moves in steps too coarse for the timed rounds alone, which last 0.05-0.3 s
   in the attention benchmark (over those alone an H200 read 560-620 W where nvidia-smi showed
   690-695 W). */
static std::vector<float> time_ms_interleaved(const std::vector<std::function<void()>> &fns, int reps,
                                              double warm_seconds = 0.0, CardReading *card = nullptr)
{
    CallTimer timer;
    CardSampler sampler;
    bool sampling = false;
    const auto now = [] { return std::chrono::steady_clock::now(); };
    const auto warm_until = now() + std::chrono::duration<double>(warm_seconds);
    const auto sample_from = warm_until - std::chrono::seconds(1);
    for (int i = 0; i < 3 || now() < warm_until; i++) {
        if (card && !sampling && now() >= sample_from) {
            sampler.start();
            sampling = true;
        }
        for (const auto &fn : fns) fn();
        cudaCheck(cudaDeviceSynchronize()); /* the host waits for the card: the time is the card's */
    }
    if (card && !sampling) sampler.start();
    std::vector<std::vector<float>> ms(fns.size(), std::vector<float>(reps));
    for (int i = 0; i < reps; i++) {
        for (size_t k = 0; k < fns.size(); k++) {
            fns[k]();
            ms[k][i] = timer.time(fns[k]);
        }
    }
    if (card) *card = sampler.stop();
    std::vector<float> medians;
    for (const auto &m : ms) medians.push_back(median_ms(m));
    return medians;
}

/* Device-to-device copy bandwidth in GB/s (read + write bytes): the ceiling
   that memory-bound kernels are compared with, measured in the same run. */
static double copy_bandwidth_gbps(void)
{
    const size_t bytes = (size_t)1 << 30;
    void *a, *b;
    cudaCheck(cudaMalloc(&a, bytes));
    cudaCheck(cudaMalloc(&b, bytes));
    const float ms = time_ms([&] { cudaCheck(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); }, 10);
    cudaCheck(cudaFree(a));
    cudaCheck(cudaFree(b));
    return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

/* One row of a benchmark table: time per call, and the achieved rate. */
static void print_bench_header(const char *title)
{
    printf("\n%s on %s (median of 20 calls)\n", title, device_info.name);
    printf("%-34s %-30s %10s %10s %10s\n", "kernel", "shape", "us/call", "GB/s", "TFLOP/s");
}

static void print_bench_row(const char *kernel, const char *shape, float ms, double bytes, double flops)
{
    const double seconds = ms * 1e-3;
    printf("%-34s %-30s %10.1f %10.0f %10.1f\n", kernel, shape, ms * 1e3, bytes / seconds / 1e9,
           flops / seconds / 1e12);
}

#endif /* PACKLM_GPU_CHECK_H */
