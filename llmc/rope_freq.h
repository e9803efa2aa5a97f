/*
 * rope_freq.h — the rotary frequencies of RoPE, one rule for the CPU
 * reference (cpu_ref.h) and the kernel (rope.cuh); C and CUDA.
 *
 * Pair d of a head of size HD (d in [0, HD/2)) turns by angle pos * f(d):
 *   base            f(d) = theta^(-2d/HD)
 *   Llama 3 scaling (RopeParams.factor > 0, Hugging Face rope_type "llama3"),
 *   with wavelength w = 2 pi / base and L = original_max_pos:
 *     w < L / high_freq_factor   f = base                   (short waves kept)
 *     w > L / low_freq_factor    f = base / factor          (long waves stretched)
 *     otherwise                  f = (1 - s) base / factor + s base,
 *                                s = (L / w - low_freq_factor) / (high_freq_factor - low_freq_factor)
 * Computed in double, like the angles.
 */
#ifndef PACKLM_ROPE_FREQ_H
#define PACKLM_ROPE_FREQ_H

#include <math.h>

#ifdef __CUDACC__
#define ROPE_HOST_DEVICE __host__ __device__
#else
#define ROPE_HOST_DEVICE
#endif

/* Llama 3 frequency scaling; factor 0 = none (every other field unused). */
typedef struct {
    float factor;
    float low_freq_factor, high_freq_factor;
    int original_max_pos;
} RopeScaling;

typedef struct {
    float theta;
    RopeScaling scaling;
} RopeParams;

static inline RopeParams rope_params_plain(float theta)
{
    RopeParams r;
    r.theta = theta;
    r.scaling.factor = 0.0f;
    r.scaling.low_freq_factor = r.scaling.high_freq_factor = 0.0f;
    r.scaling.original_max_pos = 0;
    return r;
}

static inline ROPE_HOST_DEVICE double rope_inv_freq(RopeParams r, int d, int HD)
{
    const double base = pow((double)r.theta, -2.0 * d / HD);
    const RopeScaling s = r.scaling;
    if (!(s.factor > 0.0f)) return base;
    const double wavelen = 2.0 * 3.14159265358979323846 / base, L = (double)s.original_max_pos;
    if (wavelen < L / s.high_freq_factor) return base;
    if (wavelen > L / s.low_freq_factor) return base / s.factor;
    const double smooth = (L / wavelen - s.low_freq_factor) / ((double)s.high_freq_factor - s.low_freq_factor);
    return (1.0 - smooth) * base / s.factor + smooth * base;
}

#endif /* PACKLM_ROPE_FREQ_H */
