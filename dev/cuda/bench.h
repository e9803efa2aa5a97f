/*
 * bench.h — the frame of every dev/cuda/<kernel>.cu program: --help, device
 * setup with the measured copy bandwidth (the ceiling for memory-bound
 * kernels), the closing status, large random device buffers (n bf16 values)
 * filled on the GPU for timing, and one timed row of a benchmark table.
 * The correctness checks come from test/kernel_checks.cuh, shared with
 * test/test_kernels.cu.
 */
#ifndef PACKLM_DEV_BENCH_H
#define PACKLM_DEV_BENCH_H

#include "../../test/kernel_checks.cuh"
#include "utils.h"

#define BENCH_REPS 20

/* Handle --help (print `about`, exit 0) and stray arguments (exit 1), then
   initialize CUDA and print the card and its copy bandwidth. */
static void dev_start(int argc, char **argv, const char *about)
{
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            printf("usage: %s\n%s\nChecks each kernel against llmc/cpu_ref.h (PASS/FAIL lines), then prints a\n"
                   "benchmark table: microseconds per call, achieved GB/s and TFLOP/s.\n",
                   argv[0], about);
            exit(0);
        }
        die("%s: unknown argument '%s' (the program takes none; see --help)", argv[0], argv[1]);
    }
    cuda_common_init();
    printf("device: %s, %d SMs; device-to-device copy: %.0f GB/s\n", device_info.name, device_info.sm_count,
           copy_bandwidth_gbps());
}

/* The end of every program: free the device buffers, release CUDA, and
   return the exit status of the checks (0: all passed). */
static int dev_finish(void)
{
    device_free_all();
    cuda_common_destroy();
    return test_summary();
}

__global__ void fill_random_kernel(floatX *x, size_t n, float scale, unsigned int seed)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = (floatX)(scale * ((float)(mix_hash(seed, i) & 0xffffu) / 32768.0f - 1.0f));
}

/* n bf16 values uniform in [-scale, scale), made on the device (freed by device_free_all). */
static floatX *device_random(size_t n, float scale, unsigned int seed)
{
    floatX *d = device_alloc<floatX>(n);
    fill_random_kernel<<<1024, 256>>>(d, n, scale, seed);
    cudaCheckLaunch();
    return d;
}

/* Times fn() (median of BENCH_REPS calls) and prints its row of the table:
   `bytes` of memory traffic and `flops` per call give the achieved rates. */
template <typename F>
static void bench_row(const char *kernel, const char *shape, double bytes, double flops, F fn)
{
    print_bench_row(kernel, shape, time_ms(fn, BENCH_REPS), bytes, flops);
}

#endif /* PACKLM_DEV_BENCH_H */
