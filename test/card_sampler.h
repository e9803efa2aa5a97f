/*
 * card_sampler.h — the card's SM clock and power draw while a benchmark runs, so
 * that a table of timings can say at what clock and power they were taken.
 *
 * Why it matters: under its power cap (700 W on an H200) the card runs at its
 * top clock only for a moment after an idle spell, then settles lower under
 * sustained load. The attention forward at T=8192 measured 500 TFLOP/s at
 * 1980 MHz right after 2 s idle and 413-417 at ~1550 MHz under load, same
 * code (dev/notes/attention.md, 2026-12-03). A timing without its clock
 * cannot be compared with another.
 *
 * The power says why: a kernel that draws the cap's 700 W is held to the
 * clock the cap leaves, one that draws less keeps the top clock. At the cap,
 * TFLOP/s measure flops per joule; the watts make that visible.
 *
 * Both come from NVML, the driver's management library, opened at run time
 * (dlopen of libnvidia-ml.so.1) so that no build needs its header or library.
 * Where it is missing, or the card is not found in it, a reading is 0
 * (unknown) and nothing else changes.
 *
 *   CardSampler s; s.start(); ...work...; CardReading r = s.stop();
 * samples the clock every 5 ms on a host thread; r.sm_mhz is the mean clock,
 * r.watts the card's energy counter's increase over the wall time between
 * start() and stop() (0: unknown).
 */
#ifndef PACKLM_CARD_SAMPLER_H
#define PACKLM_CARD_SAMPLER_H

#include <atomic>
#include <chrono>
#include <dlfcn.h>
#include <thread>

#include "cuda_common.h"

/* The four NVML calls the sampler needs, looked up once per process. NVML
   returns 0 (NVML_SUCCESS) on success; a device handle is an opaque pointer;
   clock type 1 is NVML_CLOCK_SM; the energy counter counts millijoules since
   the driver loaded. */
class NvmlCard {
    typedef int (*InitFn)(void);
    typedef int (*HandleByBusIdFn)(const char *bus_id, void **device);
    typedef int (*ClockInfoFn)(void *device, int clock_type, unsigned *mhz);
    typedef int (*EnergyFn)(void *device, unsigned long long *millijoules);
    ClockInfoFn clock_info = nullptr;
    EnergyFn total_energy = nullptr;
    void *device = nullptr;

  public:
    NvmlCard()
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
        total_energy = (EnergyFn)dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption");
    }
    /* the SM clock now in MHz; 0 when unknown */
    unsigned read_mhz() const
    {
        unsigned mhz = 0;
        if (!clock_info || clock_info(device, 1, &mhz) != 0) return 0;
        return mhz;
    }
    /* the card's energy counter in millijoules; 0 when unknown */
    unsigned long long read_millijoules() const
    {
        unsigned long long mj = 0;
        if (!total_energy || total_energy(device, &mj) != 0) return 0;
        return mj;
    }
};

/* What a CardSampler saw: the mean SM clock and the mean power (0: unknown). */
struct CardReading {
    float sm_mhz = 0.0f, watts = 0.0f;
};

/* The mean SM clock between start() and stop(), sampled every 5 ms, and the
   mean power from the energy counter. */
class CardSampler {
    std::atomic<bool> running{false};
    std::thread sampler;
    double sum_mhz = 0.0;
    long samples = 0;
    unsigned long long start_mj = 0;
    std::chrono::steady_clock::time_point start_time;

    static const NvmlCard &nvml()
    {
        static const NvmlCard card; /* opened once, on the first benchmark */
        return card;
    }

  public:
    void start()
    {
        sum_mhz = 0.0;
        samples = 0;
        start_mj = nvml().read_millijoules();
        start_time = std::chrono::steady_clock::now();
        running = true;
        sampler = std::thread([this] {
            do {
                const unsigned mhz = nvml().read_mhz();
                if (mhz) {
                    sum_mhz += mhz;
                    samples++;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            } while (running);
        });
    }
    /* the mean clock and power since start() */
    CardReading stop()
    {
        const unsigned long long stop_mj = nvml().read_millijoules();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
        running = false;
        sampler.join();
        CardReading r;
        if (samples) r.sm_mhz = (float)(sum_mhz / samples);
        if (start_mj && stop_mj > start_mj && seconds > 0.0) r.watts = (float)((stop_mj - start_mj) * 1e-3 / seconds);
        return r;
    }
    ~CardSampler()
    {
        if (sampler.joinable()) stop();
    }
};

#endif /* PACKLM_CARD_SAMPLER_H */
