/* sim.c - the `sim` driver: realistic synthetic signals with injectable
 * faults, so the agent, its tests and demos run without hardware.
 *
 * kind = env gives temperature, humidity and pressure following a daily
 * cycle with noise and drift; counter gives a monotonic count; signal gives
 * one configurable sine (base, amplitude, period, noise, drift). Faults:
 * read errors, dropouts, spikes, stuck values and slow reads, each at a rate.
 * With `seed` and `time_step` set, a run is exactly reproducible. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "driver.h"
#include "kv.h"
#include "rng.h"

enum sim_kind { SIM_ENV, SIM_COUNTER, SIM_SIGNAL };
static const char *const kind_names[] = {"env", "counter", "signal", NULL};
enum sim_dropout_mode { DROPOUT_ERROR, DROPOUT_EMPTY };
static const char *const dropout_names[] = {"error", "empty", NULL};

static const struct tern_driver_option sim_options[] = {
    {"kind", "env|counter|signal", "env", "env (temperature, humidity, pressure), counter or signal"},
    {"seed", "int", "0", "PRNG seed for noise and faults; 0 = different every run"},
    {"metric", "string", "", "metric name for kind=signal/counter (default value/count)"},
    {"unit", "string", "", "unit for kind=signal (UCUM, e.g. Cel); counter uses 1"},
    {"base", "double", "0", "kind=signal: mean value"},
    {"amplitude", "double", "1", "kind=signal: sine amplitude"},
    {"period", "duration", "1d", "cycle period (env: the daily cycle)"},
    {"noise", "double", "0.05",
     "gaussian noise stddev (env: Cel for temperature, x5 % humidity, x100 Pa pressure)"},
    {"drift", "double", "0", "linear drift per hour (env: of temperature, Cel/h)"},
    {"temp_base", "double", "21", "kind=env: mean temperature, Cel"},
    {"temp_amplitude", "double", "4", "kind=env: daily temperature swing, Cel"},
    {"humidity_base", "double", "45", "kind=env: mean relative humidity, %"},
    {"pressure_base", "double", "101325", "kind=env: mean pressure, Pa"},
    {"start", "double", "0", "kind=counter: first value"},
    {"step", "double", "1", "kind=counter: increment per read (>= 0)"},
    {"time_step", "duration", "",
     "simulated time advanced per read (deterministic runs); empty = wall clock"},
    {"error_rate", "double", "0", "fault: probability a read fails with an I/O error"},
    {"dropout_rate", "double", "0", "fault: probability a dropout starts at a read"},
    {"dropout_reads", "int", "3", "fault: reads a dropout lasts"},
    {"dropout_mode", "error|empty", "error", "fault: a dropped read returns error or empty (no metrics)"},
    {"spike_rate", "double", "0", "fault: probability a read carries a spike"},
    {"spike_size", "double", "100", "fault: spike height added to (or taken from) one metric"},
    {"stuck_after", "int", "-1", "fault: after N reads the values freeze; -1 = never"},
    {"slow", "duration", "0", "fault: extra delay per slow read, e.g. 2s"},
    {"slow_rate", "double", "1", "fault: probability a read is slow (when slow > 0)"},
    {NULL, NULL, NULL, NULL},
};

/* Fixed at open. */
struct sim_config {
    enum sim_kind kind;
    uint64_t seed;
    char metric[TERN_ID_MAX];
    char unit[TERN_UNIT_MAX];
    double base, amplitude, period_s, noise, drift_per_h;
    double temp_base, temp_amplitude, humidity_base, pressure_base;
    double start, step;
    double time_step_s; /* < 0: wall clock */
    double error_rate, dropout_rate, spike_rate, spike_size, slow_rate;
    long dropout_reads, stuck_after;
    enum sim_dropout_mode dropout_mode;
    long long slow_ms;
};

/* Changes every read. */
struct sim_state {
    struct sim_config cfg;
    struct tern_rng rng;
    long reads;          /* read() calls so far */
    long dropout_left;   /* reads still to drop */
    double counter;
    int64_t open_ms;     /* wall clock at open, for drift */
    struct tern_metric last[3];
    size_t last_n;
};

static int parse_config(const struct tern_kv_list *l, struct sim_config *c, char *err,
                        size_t errcap)
{
    const struct tern_driver_option *o = sim_options;
    int kind, dmode;
    long seed;
    long long period_ms, slow_ms;
    if (tern_kv_check(l, o, err, errcap) < 0 ||
        tern_kv_enum(l, o, "kind", kind_names, &kind, err, errcap) < 0 ||
        tern_kv_long(l, o, "seed", 0, INT32_MAX, &seed, err, errcap) < 0 ||
        tern_kv_double(l, o, "base", -1e12, 1e12, &c->base, err, errcap) < 0 ||
        tern_kv_double(l, o, "amplitude", -1e12, 1e12, &c->amplitude, err, errcap) < 0 ||
        tern_kv_duration_ms(l, o, "period", 1000LL * 86400 * 3650, &period_ms, err, errcap) < 0 ||
        tern_kv_double(l, o, "noise", 0, 1e9, &c->noise, err, errcap) < 0 ||
        tern_kv_double(l, o, "drift", -1e9, 1e9, &c->drift_per_h, err, errcap) < 0 ||
        tern_kv_double(l, o, "temp_base", -273.15, 1000, &c->temp_base, err, errcap) < 0 ||
        tern_kv_double(l, o, "temp_amplitude", 0, 500, &c->temp_amplitude, err, errcap) < 0 ||
        tern_kv_double(l, o, "humidity_base", 0, 100, &c->humidity_base, err, errcap) < 0 ||
        tern_kv_double(l, o, "pressure_base", 0, 1e7, &c->pressure_base, err, errcap) < 0 ||
        tern_kv_double(l, o, "start", -1e15, 1e15, &c->start, err, errcap) < 0 ||
        tern_kv_double(l, o, "step", 0, 1e12, &c->step, err, errcap) < 0 ||
        tern_kv_double(l, o, "error_rate", 0, 1, &c->error_rate, err, errcap) < 0 ||
        tern_kv_double(l, o, "dropout_rate", 0, 1, &c->dropout_rate, err, errcap) < 0 ||
        tern_kv_long(l, o, "dropout_reads", 1, 1000000, &c->dropout_reads, err, errcap) < 0 ||
        tern_kv_enum(l, o, "dropout_mode", dropout_names, &dmode, err, errcap) < 0 ||
        tern_kv_double(l, o, "spike_rate", 0, 1, &c->spike_rate, err, errcap) < 0 ||
        tern_kv_double(l, o, "spike_size", 0, 1e12, &c->spike_size, err, errcap) < 0 ||
        tern_kv_long(l, o, "stuck_after", -1, LONG_MAX, &c->stuck_after, err, errcap) < 0 ||
        tern_kv_duration_ms(l, o, "slow", 3600 * 1000, &slow_ms, err, errcap) < 0 ||
        tern_kv_double(l, o, "slow_rate", 0, 1, &c->slow_rate, err, errcap) < 0)
        return -1;
    if (period_ms == 0) {
        snprintf(err, errcap, "line %d: option 'period': must be greater than 0",
                 tern_kv_line(l, "period"));
        return -1;
    }
    c->kind = (enum sim_kind)kind;
    c->dropout_mode = (enum sim_dropout_mode)dmode;
    c->seed = (uint64_t)seed;
    c->period_s = (double)period_ms / 1000.0;
    c->slow_ms = slow_ms;

    const char *ts = tern_kv_str(l, o, "time_step");
    c->time_step_s = -1;
    if (*ts) {
        long long step_ms;
        if (tern_kv_duration_ms(l, o, "time_step", 1000LL * 86400 * 365, &step_ms, err,
                                errcap) < 0)
            return -1;
        c->time_step_s = (double)step_ms / 1000.0;
    }

    const char *metric = tern_kv_str(l, o, "metric");
    const char *unit = tern_kv_str(l, o, "unit");
    if (!*metric)
        metric = c->kind == SIM_COUNTER ? "count" : "value";
    if (c->kind == SIM_COUNTER && !*unit)
        unit = "1";
    if (strlen(metric) >= sizeof c->metric || strlen(unit) >= sizeof c->unit) {
        snprintf(err, errcap, "line %d: option '%s': too long",
                 tern_kv_line(l, strlen(metric) >= sizeof c->metric ? "metric" : "unit"),
                 strlen(metric) >= sizeof c->metric ? "metric" : "unit");
        return -1;
    }
    snprintf(c->metric, sizeof c->metric, "%s", metric);
    snprintf(c->unit, sizeof c->unit, "%s", unit);
    return 0;
}

static int sim_open(const struct tern_kv_list *opts, void **state, char *err, size_t errcap)
{
    struct sim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (parse_config(opts, &cfg, err, errcap) < 0)
        return -1;
    struct sim_state *s = tern_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    s->cfg = cfg;
    uint64_t seed = cfg.seed;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
               ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)s;
    }
    tern_rng_seed(&s->rng, seed);
    s->counter = cfg.start;
    s->open_ms = tern_utc_ms();
    *state = s;
    return 0;
}

static void set_metric(struct tern_metric *m, const char *name, const char *unit, double v)
{
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->unit, sizeof m->unit, "%s", unit);
    m->value = v;
}

/* Computes sample number index (noise and drift included, faults not) into out. */
static size_t sim_sample(struct sim_state *s, long index, struct tern_metric *out)
{
    const struct sim_config *c = &s->cfg;
    double t, hours;
    if (c->time_step_s >= 0) {
        t = (double)index * c->time_step_s;
        hours = t / 3600.0;
    } else {
        int64_t now = tern_utc_ms();
        t = (double)now / 1000.0;
        hours = (double)(now - s->open_ms) / 3600e3;
    }
    const double two_pi = 6.283185307179586;
    switch (c->kind) {
    case SIM_ENV: {
        /* Warmest mid-afternoon, coolest before dawn (phase -9 h on a day). */
        double phase = two_pi * (fmod(t, c->period_s) / c->period_s - 9.0 / 24.0);
        double clean = c->temp_base + c->temp_amplitude * sin(phase);
        double temp = clean + c->drift_per_h * hours + c->noise * tern_rng_gauss(&s->rng);
        /* Relative humidity falls as the same air warms up. */
        double rh = c->humidity_base - 2.5 * (clean - c->temp_base) +
                    5 * c->noise * tern_rng_gauss(&s->rng);
        rh = rh < 0 ? 0 : rh > 100 ? 100 : rh;
        /* Weather: a slow swing unrelated to the daily cycle. */
        double pres = c->pressure_base + 250 * sin(two_pi * t / (c->period_s * 3.7)) +
                      100 * c->noise * tern_rng_gauss(&s->rng);
        set_metric(&out[0], "temperature", "Cel", temp);
        set_metric(&out[1], "humidity", "%", rh);
        set_metric(&out[2], "pressure", "Pa", pres);
        return 3;
    }
    case SIM_COUNTER:
        s->counter += c->step;
        set_metric(&out[0], c->metric, c->unit, s->counter - c->step);
        return 1;
    case SIM_SIGNAL:
    default: {
        double v = c->base + c->amplitude * sin(two_pi * fmod(t, c->period_s) / c->period_s) +
                   c->drift_per_h * hours + c->noise * tern_rng_gauss(&s->rng);
        set_metric(&out[0], c->metric, c->unit, v);
        return 1;
    }
    }
}

static int sim_read(void *state, struct tern_metric *out, size_t max, size_t *n, char *err,
                    size_t errcap)
{
    struct sim_state *s = state;
    const struct sim_config *c = &s->cfg;
    long index = s->reads++;
    *n = 0;

    /* Draw every random decision each read, whether or not it is used, so
     * one fault's setting does not shift another's sequence. */
    int slow = tern_rng_chance(&s->rng, c->slow_rate);
    int fail = tern_rng_chance(&s->rng, c->error_rate);
    int drop = tern_rng_chance(&s->rng, c->dropout_rate);
    int spike = tern_rng_chance(&s->rng, c->spike_rate);
    double spike_pick = tern_rng_uniform(&s->rng);
    double spike_sign = tern_rng_uniform(&s->rng) < 0.5 ? -1 : 1;

    if (c->slow_ms > 0 && slow) {
        struct timespec ts = {c->slow_ms / 1000, (c->slow_ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) < 0)
            ;
    }
    if (s->dropout_left == 0 && drop)
        s->dropout_left = c->dropout_reads;
    if (s->dropout_left > 0) {
        s->dropout_left--;
        if (c->dropout_mode == DROPOUT_EMPTY)
            return TERN_READ_OK;
        snprintf(err, errcap, "simulated dropout: sensor not responding");
        return TERN_READ_ERROR;
    }
    if (fail) {
        snprintf(err, errcap, "simulated read error: I/O error on bus");
        return TERN_READ_ERROR;
    }

    struct tern_metric sample[3];
    size_t count;
    if (c->stuck_after >= 0 && index >= c->stuck_after && s->last_n > 0) {
        /* A stuck sensor repeats its last value exactly: no noise. */
        count = s->last_n;
        memcpy(sample, s->last, sizeof sample);
    } else {
        count = sim_sample(s, index, sample);
        memcpy(s->last, sample, sizeof sample);
        s->last_n = count;
    }
    if (spike && c->kind != SIM_COUNTER && count > 0) {
        size_t which = (size_t)(spike_pick * (double)count);
        sample[which < count ? which : 0].value += spike_sign * c->spike_size;
    }
    if (count > max) {
        snprintf(err, errcap, "caller buffer holds %zu metrics, sim needs %zu", max, count);
        return TERN_READ_ERROR;
    }
    memcpy(out, sample, count * sizeof *out);
    *n = count;
    return TERN_READ_OK;
}

static void sim_close(void *state) { tern_free(state); }

static void sim_describe(void *state, char *buf, size_t cap)
{
    const struct sim_state *s = state;
    const struct sim_config *c = &s->cfg;
    snprintf(buf, cap,
             "simulated %s sensor (%s clock%s%s%s%s%s%s)", kind_names[c->kind],
             c->time_step_s >= 0 ? "virtual" : "wall",
             c->error_rate > 0 ? ", errors" : "", c->dropout_rate > 0 ? ", dropouts" : "",
             c->spike_rate > 0 ? ", spikes" : "", c->stuck_after >= 0 ? ", sticks" : "",
             c->slow_ms > 0 ? ", slow" : "", c->seed ? ", seeded" : "");
}

const struct tern_driver tern_driver_sim = {
    .name = "sim",
    .summary = "simulated sensor: env, counter or signal, with injectable faults",
    .options = sim_options,
    .open = sim_open,
    .read = sim_read,
    .close = sim_close,
    .describe = sim_describe,
};
