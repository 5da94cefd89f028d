/* rng.h - a small seeded PRNG (splitmix64) for simulated signals and fault
 * injection. Same seed, same sequence on every platform: tests reproduce. */
#ifndef TERN_DRIVERS_RNG_H
#define TERN_DRIVERS_RNG_H

#include <math.h>
#include <stdint.h>

struct tern_rng {
    uint64_t s;
};

static inline void tern_rng_seed(struct tern_rng *r, uint64_t seed) { r->s = seed; }

static inline uint64_t tern_rng_u64(struct tern_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double tern_rng_uniform(struct tern_rng *r)
{
    return (double)(tern_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Standard normal (Box-Muller; the second value is dropped for simplicity). */
static inline double tern_rng_gauss(struct tern_rng *r)
{
    double u1 = tern_rng_uniform(r), u2 = tern_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* True with probability p. */
static inline int tern_rng_chance(struct tern_rng *r, double p)
{
    return p > 0 && tern_rng_uniform(r) < p;
}

#endif
