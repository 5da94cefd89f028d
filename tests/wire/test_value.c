/* test_value.c - tern_wire_format_value against its definition
 * (docs/wire-format.md, section 3): glibc's %.15g/%.16g/%.17g, the first that
 * strtod reads back as the same double, ".0" when the text looks integral.
 * wire/value.c answers most values with exact integer arithmetic instead;
 * these tests compare the two byte for byte over random doubles of every
 * kind and over the edges of that arithmetic: powers of two (the closer lower
 * neighbour), powers of ten (the exponent guess), decimal ties (rounding to
 * even), the limits of the fast range and values that need 15, 16 or 17
 * digits. Built twice: with the compiler's 128-bit multiply and with the
 * portable one the 32-bit boards use (TERN_WIRE_NO_INT128).
 * TERN_VALUE_TEST_N sets the number of random values (default 1000000). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "value_reference.h"


static unsigned long checked, digits[18];

static void check(double v)
{
    char want[64], got[TERN_WIRE_VALUE_MAX + 8];
    memset(got, '#', sizeof got);
    value_reference(v, want, sizeof want);
    size_t n = tern_wire_format_value(v, got);
    if (n != strlen(want) || strcmp(got, want) != 0)
        fail_msg("value %a (%.17g): got '%s' (%zu), want '%s'", v, v, got, n, want);
    assert_true(n < TERN_WIRE_VALUE_MAX);
    assert_int_equal(got[TERN_WIRE_VALUE_MAX], '#'); /* nothing past the bound */
    /* Significant digits of the text: 16 or 17 means %.16g or %.17g won. */
    size_t sig = 0;
    for (const char *p = want; *p && *p != 'e'; p++)
        if (*p >= '1' || (*p == '0' && sig > 0))
            sig += *p >= '0' && *p <= '9';
    if (sig < sizeof digits / sizeof digits[0])
        digits[sig]++;
    checked++;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static uint64_t to_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* v and its neighbours up to k ulps away, both signs. */
static void check_around(double v, int k)
{
    for (int d = -k; d <= k; d++) {
        double x = from_bits(to_bits(v) + (uint64_t)(int64_t)d);
        if (isfinite(x)) {
            check(x);
            check(-x);
        }
    }
}

/* xorshift64*: deterministic so a failure reproduces. */
static uint64_t rng_state = UINT64_C(0x2545f4914f6cdd1d);
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

static void test_edges(void **state)
{
    static const double fixed[] = {
        0.0, 1.0, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 21.5, 1013.25, 20.07, 0.30000000000000004,
        1e-15, 1e15, 1e-5, 1e-4, 9.9999999999999995e-5, 4503599627370495.5, 999999999999999.9,
        9.999999999999999e14, 123456789012345.6, 5e-324, 2.2250738585072014e-308,
        2.2250738585072009e-308, 1.7976931348623157e308, 9007199254740992.0, 9007199254740993.0,
        1e16, 1e21, 1e22, 1e23, 6.02214076e23, 1.602176634e-19, 299792458.0, 101325.0,
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_around(fixed[i], 4);
    check(-0.0);
    check(NAN);
    check(INFINITY);
    check(-INFINITY);

    /* Every power of two and of ten around the fast range, a few ulps off:
     * the closer lower neighbour and the guess of the decimal exponent. */
    for (int e = -60; e <= 60; e++)
        check_around(ldexp(1.0, e), 3);
    for (int e = -20; e <= 20; e++)
        check_around(pow(10, e), 3);
    /* The largest doubles below each power of ten round up to it at 15 and
     * 16 digits (the carry into a new decade). */
    for (int e = -16; e <= 16; e++) {
        double p = pow(10, e);
        check_around(nextafter(p, 0) - p * 1e-15, 2);
    }
}

/* Decimal ties: m / 2^j with few fraction bits has an exact decimal
 * expansion; with 16 to 18 significant digits the rounding at 15, 16 or 17
 * digits meets an exact half, which glibc rounds to even. */
static void test_ties(void **state)
{
    for (int i = 0; i < 200000; i++) {
        int j = (int)(rnd() % 12);
        uint64_t m = rnd() >> (11 + rnd() % 12);
        double v = ldexp((double)m, -j);
        check(v);
        check(-v);
    }
    /* Hand-made: ...25 and ...75 endings at 17 and 18 digits. */
    check(1000000000000000.25);
    check(1000000000000000.75);
    check(100000000000000.125);
    check(100000000000000.375);
    check(10000000000000.0625);
}

static void test_random(void **state)
{
    static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
                                  1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17 };
    const char *env = getenv("TERN_VALUE_TEST_N");
    long n = env ? atol(env) : 1000000;
    for (long i = 0; i < n; i++) {
        double v;
        switch (i % 6) {
        case 0: /* any finite bit pattern */
            do
                v = from_bits(rnd());
            while (!isfinite(v));
            break;
        case 1: /* any significand, an exponent in and around the fast range */
            v = from_bits((rnd() & UINT64_C(0x800fffffffffffff)) |
                          (uint64_t)(1023 - 60 + rnd() % 121) << 52);
            break;
        case 2: /* decimals as sensors produce them */
            v = (double)((int64_t)(rnd() % 2000000000000) - 1000000000000) / p10[rnd() % 18];
            break;
        case 3: /* sums that miss the nearest double (17 digits): the bench's values */
            v = 20.0 + (double)(rnd() % 1000) / 100.0;
            break;
        case 4: /* 16 and 17 significant digits */
            v = (double)(rnd() % UINT64_C(100000000000000000)) / p10[rnd() % 18] * 1e-3;
            break;
        default: /* scaled products, as drivers compute them */
            v = (double)(int64_t)(rnd() % 65536) * 0.0625 * p10[rnd() % 6] / p10[rnd() % 12];
            break;
        }
        check(v);
    }
    /* The random values must reach every precision the rule can pick. */
    assert_true(digits[15] > 0 && digits[16] > 0 && digits[17] > 0);
    print_message("checked %lu values\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
