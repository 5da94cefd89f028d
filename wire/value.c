/* value.c - the text of a reading's value on the wire (docs/wire-format.md,
 * section 3): an integer below 2^53 as an integer, anything else as the first
 * of %.15g, %.16g and %.17g that reads back as exactly the same double.
 *
 * printf and strtod are exact but slow: a value that needs 16 or 17 digits
 * (20.0 + 0.07 is 20.070000000000000284) cost ~12 000 instructions through
 * three snprintf and two strtod calls, a tenth of everything the agent spent
 * per reading in bench agent-kafka. For 1e-15 <= |v| < 1e15, where sensor
 * values live, format_exact() gives the same bytes in ~400 instructions with
 * integer arithmetic that is exact by construction (no floating point, no
 * approximation, so no "hard cases"):
 *
 *   v = m * 2^e exactly (m the 53-bit significand, e < 0 in this range).
 *   With s = 16 - floor(log10 |v|), the 128-bit integer N = m * 5^s and
 *   k = -(e + s), v * 10^s = N / 2^k: D = N >> k is v's first 17 significant
 *   digits and rem = N mod 2^k the exact rest. Rounding to 17, 16 or 15 digits
 *   (ties to even, as glibc's printf does) needs only D, rem and k. A
 *   candidate C (in units of 10^-s) reads back as v (strtod rounds to
 *   nearest, ties to even) iff |C - v*10^s| is at most half a unit in the
 *   last place of v, i.e. 2 * |C * 2^k - N| <= 5^s (4 * ... below v when v is
 *   a power of two, whose lower neighbour is closer), equality allowed when m
 *   is even. Every quantity fits in 128 bits: 5^32 < 2^75, N < 2^128,
 *   |C * 2^k - N| < 101 * 2^k < 2^83.
 *
 * Outside that range (tiny, huge, subnormal, -0.0) the printf loop runs: it is
 * the definition. tests/wire/test_wire.c and tests/fuzz/fuzz_value.c compare
 * both paths byte for byte. */
#include "wire.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 128-bit unsigned arithmetic -------------------------------------- */

/* Portable: the 32-bit ARM boards have no __int128. Only mul64 uses it where
 * it exists; TERN_WIRE_NO_INT128 forces the portable multiply (tests). */
struct u128 {
    uint64_t hi, lo;
};

static struct u128 mul64(uint64_t a, uint64_t b)
{
#if defined(__SIZEOF_INT128__) && !defined(TERN_WIRE_NO_INT128)
    unsigned __int128 p = (unsigned __int128)a * b;
    return (struct u128){ (uint64_t)(p >> 64), (uint64_t)p };
#else
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    return (struct u128){ p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32),
                          (mid << 32) | (p00 & 0xffffffffu) };
#endif
}

/* a * b for b < 2^128 / a (no overflow by the caller's bounds). */
static struct u128 mul_u128(uint64_t a, struct u128 b)
{
    struct u128 r = mul64(a, b.lo);
    r.hi += a * b.hi;
    return r;
}

static struct u128 shl(struct u128 x, unsigned k) /* k < 128 */
{
    if (k == 0)
        return x;
    if (k >= 64)
        return (struct u128){ x.lo << (k - 64), 0 };
    return (struct u128){ x.hi << k | x.lo >> (64 - k), x.lo << k };
}

static struct u128 shr(struct u128 x, unsigned k) /* k < 128 */
{
    if (k == 0)
        return x;
    if (k >= 64)
        return (struct u128){ 0, x.hi >> (k - 64) };
    return (struct u128){ x.hi >> k, x.lo >> k | x.hi << (64 - k) };
}

static struct u128 add(struct u128 a, struct u128 b)
{
    struct u128 r = { a.hi + b.hi, a.lo + b.lo };
    r.hi += r.lo < a.lo;
    return r;
}

static struct u128 sub(struct u128 a, struct u128 b) /* a >= b */
{
    struct u128 r = { a.hi - b.hi, a.lo - b.lo };
    r.hi -= a.lo < b.lo;
    return r;
}

static int cmp(struct u128 a, struct u128 b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    return a.lo < b.lo ? -1 : a.lo > b.lo;
}

/* 5^s for s = 0..32 (5^32 < 2^75). */
#define POW5_MAX 32
static const struct u128 pow5[POW5_MAX + 1] = {
    { 0, UINT64_C(0x0000000000000001) }, { 0, UINT64_C(0x0000000000000005) },
    { 0, UINT64_C(0x0000000000000019) }, { 0, UINT64_C(0x000000000000007d) },
    { 0, UINT64_C(0x0000000000000271) }, { 0, UINT64_C(0x0000000000000c35) },
    { 0, UINT64_C(0x0000000000003d09) }, { 0, UINT64_C(0x000000000001312d) },
    { 0, UINT64_C(0x000000000005f5e1) }, { 0, UINT64_C(0x00000000001dcd65) },
    { 0, UINT64_C(0x00000000009502f9) }, { 0, UINT64_C(0x0000000002e90edd) },
    { 0, UINT64_C(0x000000000e8d4a51) }, { 0, UINT64_C(0x0000000048c27395) },
    { 0, UINT64_C(0x000000016bcc41e9) }, { 0, UINT64_C(0x000000071afd498d) },
    { 0, UINT64_C(0x0000002386f26fc1) }, { 0, UINT64_C(0x000000b1a2bc2ec5) },
    { 0, UINT64_C(0x000003782dace9d9) }, { 0, UINT64_C(0x00001158e460913d) },
    { 0, UINT64_C(0x000056bc75e2d631) }, { 0, UINT64_C(0x0001b1ae4d6e2ef5) },
    { 0, UINT64_C(0x000878678326eac9) }, { 0, UINT64_C(0x002a5a058fc295ed) },
    { 0, UINT64_C(0x00d3c21bcecceda1) }, { 0, UINT64_C(0x0422ca8b0a00a425) },
    { 0, UINT64_C(0x14adf4b7320334b9) }, { 0, UINT64_C(0x6765c793fa10079d) },
    { UINT64_C(0x2), UINT64_C(0x04fce5e3e2502611) },
    { UINT64_C(0xa), UINT64_C(0x18f07d736b90be55) },
    { UINT64_C(0x32), UINT64_C(0x7cb2734119d3b7a9) },
    { UINT64_C(0xfc), UINT64_C(0x6f7c40458122964d) },
    { UINT64_C(0x4ee), UINT64_C(0x2d6d415b85acef81) },
};

/* ---- the exact path ----------------------------------------------------- */

#define E16 UINT64_C(10000000000000000)
#define E17 UINT64_C(100000000000000000)

/* Writes the P significant digits of q (10^(P-1) <= q < 10^P), decimal
 * exponent x, as printf's %.Pg does: style e when x < -4 or x >= P, else
 * style f; trailing zeros of the fraction and a bare '.' removed. Returns the
 * length (at most 22 without the sign); *integral is set when the text has
 * neither '.' nor 'e'. */
static size_t put_g(char *out, uint64_t q, int p, int x, int *integral)
{
    int nd = p; /* significant digits once trailing zeros are gone */
    while (q % 10000 == 0) {
        q /= 10000;
        nd -= 4;
    }
    if (q % 100 == 0) {
        q /= 100;
        nd -= 2;
    }
    if (q % 10 == 0) {
        q /= 10;
        nd -= 1;
    }
    /* The nd digits, two per division. */
    static const char pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char dig[18];
    int i = nd;
    for (; i >= 2; i -= 2) {
        memcpy(dig + i - 2, pairs + 2 * (q % 100), 2);
        q /= 100;
    }
    if (i == 1)
        dig[0] = (char)('0' + q);
    char *o = out;
    int j = 0;
    *integral = 0;
    if (x < -4 || x >= p) {
        *o++ = dig[j++];
        if (nd > 1)
            *o++ = '.';
        while (j < nd)
            *o++ = dig[j++];
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        unsigned ax = (unsigned)(x < 0 ? -x : x); /* < 100 in this range */
        *o++ = (char)('0' + ax / 10);
        *o++ = (char)('0' + ax % 10);
    } else if (x >= 0) {
        int ni = x + 1; /* digits before the point */
        for (; j < ni; j++)
            *o++ = j < nd ? dig[j] : '0';
        if (nd > ni)
            *o++ = '.';
        else
            *integral = 1;
        while (j < nd)
            *o++ = dig[j++];
    } else {
        *o++ = '0';
        *o++ = '.';
        for (int z = -1; z > x; z--)
            *o++ = '0';
        while (j < nd)
            *o++ = dig[j++];
    }
    return (size_t)(o - out);
}

/* |v| as %.15g/%.16g/%.17g would, for 1e-15 <= |v| < 1e15 (the caller
 * checked); *integral as put_g. Returns the length, or 0 when it cannot
 * decide (never expected; the caller then uses printf). */
static size_t format_exact(double a, char *out, int *integral)
{
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    int bexp = (int)(bits >> 52 & 0x7ff);
    uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52;
    int e = bexp - 1075;                  /* a = m * 2^e */
    int e2 = bexp - 1023;                 /* 2^e2 <= a < 2^(e2+1) */
    int t = e2 * 78913;                   /* 78913 / 2^18 ~ log10(2) */
    int x = t >= 0 ? t >> 18 : -((-t + (1 << 18) - 1) >> 18); /* floor(log10 a), or one less */
    int s = 0, k = 0;
    struct u128 n = { 0, 0 };
    uint64_t d = 0;
    for (int tries = 0;; tries++) {
        s = 16 - x;
        k = -(e + s);
        if (tries == 3 || s < 0 || s > POW5_MAX || k <= 0 || k >= 128)
            return 0;
        n = mul_u128(m, pow5[s]);
        struct u128 dd = shr(n, (unsigned)k);
        if (dd.hi != 0 || dd.lo >= E17) {
            x++;
            continue;
        }
        d = dd.lo;
        if (d < E16) {
            x--;
            continue;
        }
        break;
    }
    struct u128 rem = sub(n, shl((struct u128){ 0, d }, (unsigned)k));
    struct u128 half_unit = shl((struct u128){ 0, 1 }, (unsigned)k - 1); /* 2^k / 2 */
    int rem_zero = rem.hi == 0 && rem.lo == 0;
    int even = (m & 1) == 0;
    int lower_closer = m == UINT64_C(1) << 52 && bexp > 1;

    static const uint64_t unit[3] = { 100, 10, 1 }; /* D units per last digit */
    for (int p = 15; p <= 17; p++) {
        uint64_t div = unit[p - 15];
        uint64_t q = d / div, r = d % div;
        int up;
        if (div == 1) {
            int c = cmp(rem, half_unit);
            up = c > 0 || (c == 0 && (q & 1));
        } else {
            uint64_t half = div / 2;
            up = r > half || (r == half && (!rem_zero || (q & 1)));
        }
        /* dist = |C * 2^k - N| in units of 2^-k of D, C = the candidate. */
        struct u128 dist;
        if (up)
            dist = sub(shl((struct u128){ 0, div - r }, (unsigned)k), rem);
        else
            dist = add(shl((struct u128){ 0, r }, (unsigned)k), rem);
        dist = shl(dist, up || !lower_closer ? 1u : 2u);
        int c = cmp(dist, pow5[s]);
        if (c > 0 || (c == 0 && !even))
            continue; /* reads back as a neighbour: more digits */
        int xp = x;
        if (up)
            q++;
        uint64_t top = E17 / unit[p - 15]; /* 10^p */
        if (q == top) { /* 9.99..5 rounded up to 10.0 */
            q = top / 10;
            xp++;
        }
        return put_g(out, q, p, xp, integral);
    }
    return 0;
}

/* The common sensor value with a few decimals (21.5, 1013.25, 20.07): the
 * smallest k <= 6 such that a is the double nearest to m / 10^k for an
 * integer m below 10^15, printed as m with k decimals. Division is correctly
 * rounded, so the text reads back as a; a decimal of at most 15 significant
 * digits that reads back as a is the one %.15g prints (it is within half an
 * ulp of a, less than half a unit of the 15th digit), and for 1e-4 <= a <
 * 1e9 %.15g uses style f: both give the same bytes. ~90 instructions where
 * format_exact takes ~400; a value that needs more digits costs ~60 more.
 * Returns the length, or 0 when it does not apply. */
static size_t format_short(double a, char *out)
{
    static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
    if (!(a >= 1e-4 && a < 1e9))
        return 0;
    for (int k = 1; k <= 6; k++) {
        /* Any m will do as long as the test holds: rounding half up by
         * conversion is one instruction where nearbyint() is a call. */
        uint64_t m = (uint64_t)(a * p10[k] + 0.5);
        if (m >= UINT64_C(1000000000000000) || (double)m / p10[k] != a)
            continue;
        char tmp[24];
        char *t = tmp + sizeof tmp;
        for (int d = 0; d < k; d++) {
            *--t = (char)('0' + m % 10);
            m /= 10;
        }
        *--t = '.';
        do {
            *--t = (char)('0' + m % 10);
            m /= 10;
        } while (m);
        size_t n = (size_t)(tmp + sizeof tmp - t);
        memcpy(out, t, n);
        return n;
    }
    return 0;
}

/* ---- the definition: printf and strtod ---------------------------------- */

static size_t format_printf(double v, char *out, size_t cap)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, cap, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            break;
    }
    /* JSON wants '.', whatever LC_NUMERIC the host program chose. */
    for (int i = 0; i < n; i++)
        if (out[i] == ',')
            out[i] = '.';
    return (size_t)n;
}

size_t tern_wire_format_value(double v, char out[TERN_WIRE_VALUE_MAX])
{
    if (!isfinite(v)) {
        /* A programming error upstream: readings are always finite. Emit a
         * line every decoder rejects instead of inventing a number. */
        memcpy(out, "null", 5);
        return 4;
    }
    char *o = out;
    /* Integral values below 2^53 (counters, ADC codes) are plain integers.
     * The sign of -0.0 goes the long way so it survives the round trip. */
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        char tmp[20];
        int j = (int)sizeof tmp;
        do {
            tmp[--j] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (i < 0)
            *o++ = '-';
        memcpy(o, tmp + j, sizeof tmp - (size_t)j);
        o += sizeof tmp - (size_t)j;
        *o = '\0';
        return (size_t)(o - out);
    }
    double a = fabs(v);
    size_t n = 0;
    int integral = 0;
    if (a >= 1e-15 && a < 1e15) {
        if (signbit(v))
            *o++ = '-';
        n = format_short(a, o);
        if (n == 0)
            n = format_exact(a, o, &integral);
    }
    if (n == 0) {
        o = out;
        n = format_printf(v, o, TERN_WIRE_VALUE_MAX);
        integral = !memchr(o, '.', n) && !memchr(o, 'e', n);
    }
    /* Text with neither '.' nor 'e' ("-0", "9007199254740992") would decode
     * as an integer: "-0.0". */
    if (integral) {
        memcpy(o + n, ".0", 2);
        n += 2;
    }
    o[n] = '\0';
    return (size_t)(o - out) + n;
}
