/*
 * rand.h — a small deterministic random number generator (splitmix64) used
 * for parameter initialisation, data shuffling and stochastic-rounding seeds.
 *
 * The same seed gives the same stream on every machine and in every program
 * (CPU reference, GPU trainer, tests), so runs are reproducible bit for bit.
 * State is one uint64; copy the struct to fork or checkpoint a stream.
 */
#ifndef PACKLM_RAND_H
#define PACKLM_RAND_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t state;
} Rng;

static inline Rng rng_create(uint64_t seed)
{
    Rng r = {seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull};
    return r;
}

/* Next 64 random bits (splitmix64 step). */
static inline uint64_t rng_u64(Rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Advance the stream by `draws` rng_u64 draws at once (splitmix64 is a counter). */
static inline void rng_skip(Rng *r, uint64_t draws)
{
    r->state += draws * 0x9E3779B97F4A7C15ull;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double rng_uniform(Rng *r)
{
    return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0 (rejection sampling: no modulo bias). */
static inline uint64_t rng_below(Rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do { x = rng_u64(r); } while (x >= limit);
    return x % n;
}

/* Standard normal sample (Box-Muller, one value per call). */
static inline double rng_normal(Rng *r)
{
    double u1 = rng_uniform(r);
    double u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Fisher-Yates shuffle of n ints. */
static inline void rng_shuffle_ints(Rng *r, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1);
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

#endif /* PACKLM_RAND_H */
