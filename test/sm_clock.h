/*
 * sm_clock.h — the card's SM clock while a benchmark runs, so that a table of
 * timings can say at what clock they were taken.
 *
 * Why it matters: under its power cap (700 W on an H200) the card runs at its
 * top clock only for a moment after an idle spell, then settles lower under
 * sustained load. The attention forward at T=8192 measured 500 TFLOP/s at
 * 1980 MHz right after 2 s idle and 413-417 at ~1550 MHz under load, same
 * code (dev/notes/attention.md, 2026-12-03). A timing without its clock
 * cannot be compared with another.
 *
 * The clock comes from NVML, the driver's management library, opened at run
 * time (dlopen of libnvidia-ml.so.1) so that no build needs its header or
 * library. Where it is missing, or the card is not found in it, the clock
 * reads 0 (unknown) and nothing else changes.
 *
 *   SmClockSampler s; s.start(); ...work...; float mhz = s.stop();
 * samples the clock every 5 ms on a host thread and returns the mean (0:
 * unknown).
 */
#ifndef PACKLM_SM_CLOCK_H
#define PACKLM_SM_CLOCK_H

#include <atomic>
#include <chrono>
#include <dlfcn.h>
#include <thread>

#include "cuda_common.h"

/* The three NVML calls the sampler needs, looked up once per process. NVML
   returns 0 (NVML_SUCCESS) on success; a device handle is an opaque pointer;
   clock type 1 is NVML_CLOCK_SM. */
class NvmlSmClock {
    typedef int (*InitFn)(void);
    typedef int (*HandleByBusIdFn)(const char *bus_id, void **device);
    typedef int (*ClockInfoFn)(void *device, int clock_type, unsigned *mhz);
    ClockInfoFn clock_info = nullptr;
    void *device = nullptr;

  public:
    NvmlSmClock()
    {
        void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!lib) return;
        InitFn init = (InitFn)dlsym(lib, "nvmlInit_v2");
        HandleByBusIdFn handle_by_bus_id = (HandleByBusIdFn)dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
        ClockInfoFn clock = (ClockInfoFn)dlsym(lib, "nvmlDeviceGetClockInfo");
        int cuda_device = 0;
        char bus_id[32];
        /* the card CUDA runs on, found by its PCI address (NVML's device order can differ from CUDA's) */
        if (!init || !handle_by_bus_id || !clock || init() != 0 || cudaGetDevice(&cuda_device) != cudaSuccess ||
            cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), cuda_device) != cudaSuccess ||
            handle_by_bus_id(bus_id, &device) != 0)
            return;
        clock_info = clock;
    }
    /* the SM clock now in MHz; 0 when unknown */
    unsigned read_mhz() const
    {
        unsigned mhz = 0;
        if (!clock_info || clock_info(device, 1, &mhz) != 0) return 0;
        return mhz;
    }
};

/* The mean SM clock between start() and stop(), sampled every 5 ms. */
class SmClockSampler {
    std::atomic<bool> running{false};
    std::thread sampler;
    double sum_mhz = 0.0;
    long samples = 0;

  public:
    void start()
    {
        static const NvmlSmClock nvml; /* opened once, on the first benchmark */
        sum_mhz = 0.0;
        samples = 0;
        running = true;
        sampler = std::thread([this] {
            do {
                const unsigned mhz = nvml.read_mhz();
                if (mhz) {
                    sum_mhz += mhz;
                    samples++;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            } while (running);
        });
    }
    /* the mean clock in MHz, 0 when unknown */
    float stop()
    {
        running = false;
        sampler.join();
        return samples ? (float)(sum_mhz / samples) : 0.0f;
    }
    ~SmClockSampler()
    {
        if (sampler.joinable()) stop();
    }
};

#endif /* PACKLM_SM_CLOCK_H */
