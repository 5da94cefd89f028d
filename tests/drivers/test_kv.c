/* test_kv.c - option lookup, --check messages ("did you mean") and typed getters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "driver.h"
#include "kv.h"

static const struct tern_driver_option opts[] = {
    {"interval", "duration", "10s", "how often"},
    {"temperature", "double", "21", "a number"},
    {"device", "path", NULL, "required device"},
    {"mode", "enum", "fast", "fast or slow"},
    {"enabled", "bool", "true", "on or off"},
    {"register.*", "string", NULL, "per-metric register"},
    {NULL, NULL, NULL, NULL},
};

#define LIST(arr) {(arr), sizeof(arr) / sizeof((arr)[0])}

static void test_get_last_wins_and_default(void **st)
{
    (void)st;
    const struct tern_kv items[] = {{"device", "/a", 3}, {"device", "/b", 4}};
    const struct tern_kv_list l = LIST(items);
    assert_string_equal(tern_kv_get(&l, "device", "x"), "/b");
    assert_string_equal(tern_kv_get(&l, "nothing", "x"), "x");
    assert_null(tern_kv_get(&l, "nothing", NULL));
    assert_null(tern_kv_get(NULL, "device", NULL));
    assert_int_equal(tern_kv_line(&l, "device"), 4);
    assert_int_equal(tern_kv_line(&l, "nothing"), 0);
    assert_string_equal(tern_kv_str(&l, opts, "interval"), "10s");
}

static void test_check_did_you_mean(void **st)
{
    (void)st;
    char err[256];
    const struct tern_kv items[] = {{"device", "/dev/x", 7}, {"temprature", "20", 8}};
    const struct tern_kv_list l = LIST(items);
    assert_int_equal(tern_kv_check(&l, opts, err, sizeof err), -1);
    assert_string_equal(err, "line 8: unknown option 'temprature' (did you mean 'temperature'?)");

    const struct tern_kv far[] = {{"device", "/dev/x", 7}, {"colour", "blue", 9}};
    const struct tern_kv_list lf = LIST(far);
    assert_int_equal(tern_kv_check(&lf, opts, err, sizeof err), -1);
    assert_string_equal(err, "line 9: unknown option 'colour'");
}

static void test_check_required_repeat_wildcard(void **st)
{
    (void)st;
    char err[256];
    const struct tern_kv none[] = {{"mode", "fast", 2}};
    const struct tern_kv_list ln = LIST(none);
    assert_int_equal(tern_kv_check(&ln, opts, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing required option 'device'"));

    const struct tern_kv rep[] = {{"device", "a", 2}, {"mode", "fast", 3}, {"mode", "slow", 5}};
    const struct tern_kv_list lr = LIST(rep);
    assert_int_equal(tern_kv_check(&lr, opts, err, sizeof err), -1);
    assert_string_equal(err, "line 5: option 'mode' repeated (first set on line 3)");

    const struct tern_kv ok[] = {{"device", "a", 2}, {"register.temp", "40001", 3},
                                 {"register.hum", "40003", 4}};
    const struct tern_kv_list lo = LIST(ok);
    assert_int_equal(tern_kv_check(&lo, opts, err, sizeof err), 0);

    const struct tern_kv bare[] = {{"device", "a", 2}, {"register.", "1", 3}};
    const struct tern_kv_list lb = LIST(bare);
    assert_int_equal(tern_kv_check(&lb, opts, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 3: unknown option 'register.'"));
}

static void test_check_values(void **st)
{
    (void)st;
    static const struct tern_driver_option typed[] = {
        {"mode", "tcp|rtu", "tcp", "m"},         {"n", "int", "1", "n"},
        {"addr", "hex", "0x76", "a"},            {"x", "double", "0", "x"},
        {"on", "bool", "no", "b"},               {"every", "duration", "1s", "d"},
        {"framing", "framing", "8N1", "f"},      {"register.*", "modbus-register", "", "r"},
        {"name", "string", "", "s"},             {NULL, NULL, NULL, NULL},
    };
    char err[256];
    const struct tern_kv good[] = {
        {"mode", "rtu", 1},     {"n", "-3", 2},      {"addr", "0x77", 3},
        {"x", "2.5e3", 4},      {"on", "yes", 5},    {"every", "250ms", 6},
        {"framing", "7E1", 7},  {"register.t", "40001 float32 cdab scale=0.1", 8},
        {"name", "anything at all", 9}, {"x", "", 10}, /* empty: not set */
    };
    struct tern_kv_list lg = {good, 9};
    assert_int_equal(tern_kv_check(&lg, typed, err, sizeof err), 0);
    static const struct {
        struct tern_kv kv;
        const char *msg;
    } bad[] = {
        {{"mode", "udp", 3}, "line 3: option 'mode': expected one of tcp, rtu, got 'udp'"},
        {{"n", "1.5", 3}, "line 3: option 'n': expected an integer, got '1.5'"},
        {{"x", "fast", 3}, "line 3: option 'x': expected a number, got 'fast'"},
        {{"on", "maybe", 3}, "line 3: option 'on': expected true or false, got 'maybe'"},
        {{"every", "soon", 3},
         "line 3: option 'every': expected a duration such as 500ms, 2s, 1h, got 'soon'"},
        {{"framing", "8N3", 3},
         "line 3: option 'framing': expected data bits, parity, stop bits such as 8N1 or 7E1, "
         "got '8N3'"},
        {{"register.t", "40001 flaot32", 3},
         "line 3: option 'register.t': unknown word 'flaot32' (want holding|input, a type, a "
         "word order, scale=, offset=, unit=), got '40001 flaot32'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tern_kv_list lb = {&bad[i].kv, 1};
        assert_int_equal(tern_kv_check(&lb, typed, err, sizeof err), -1);
        assert_string_equal(err, bad[i].msg);
    }
}

static void test_typed_getters(void **st)
{
    (void)st;
    char err[256];
    const struct tern_kv items[] = {{"interval", "250ms", 1}, {"temperature", "abc", 2},
                                    {"mode", "medium", 3}, {"enabled", "off", 4}};
    const struct tern_kv_list l = LIST(items);
    long long ms;
    assert_int_equal(tern_kv_duration_ms(&l, opts, "interval", 10000, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(tern_kv_duration_ms(&l, opts, "interval", 100, &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 1: option 'interval': must be at most 100 ms"));
    double d;
    assert_int_equal(tern_kv_double(&l, opts, "temperature", -100, 100, &d, err, sizeof err), -1);
    assert_string_equal(err, "line 2: option 'temperature': expected a number, got 'abc'");
    int e;
    static const char *const modes[] = {"fast", "slow", NULL};
    assert_int_equal(tern_kv_enum(&l, opts, "mode", modes, &e, err, sizeof err), -1);
    assert_string_equal(err, "line 3: option 'mode': expected one of fast, slow, got 'medium'");
    int b;
    assert_int_equal(tern_kv_bool(&l, opts, "enabled", &b, err, sizeof err), 0);
    assert_int_equal(b, 0);
}

static void test_text_numbers(void **st)
{
    (void)st;
    double d;
    long n;
    long long ms;
    assert_int_equal(tern_text_double(" 21.5\n", &d), 0);
    assert_true(d == 21.5);
    assert_int_equal(tern_text_double("nan", &d), -1);
    assert_int_equal(tern_text_double("inf", &d), -1);
    assert_int_equal(tern_text_double("1e999", &d), -1);
    assert_int_equal(tern_text_double("", &d), -1);
    assert_int_equal(tern_text_double("12abc", &d), -1);
    assert_int_equal(tern_text_long("0x76", &n), 0);
    assert_int_equal(n, 0x76);
    assert_int_equal(tern_text_long("99999999999999999999999", &n), -1);
    assert_int_equal(tern_text_duration_ms("1.5m", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(tern_text_duration_ms("2", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(tern_text_duration_ms("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(tern_text_duration_ms("-1s", &ms), -1);
    assert_int_equal(tern_text_duration_ms("3 weeks", &ms), -1);
    assert_int_equal(tern_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(tern_edit_distance("", "abc"), 3);
}

static void test_registry(void **st)
{
    (void)st;
    const struct tern_driver *d = tern_driver_find("sim");
    assert_non_null(d);
    assert_string_equal(d->name, "sim");
    assert_null(tern_driver_find("nope"));
    assert_null(tern_driver_find(NULL));
    size_t n = 0;
    for (const struct tern_driver *const *p = tern_drivers(); *p; p++, n++) {
        /* Every driver is complete and its option table is well formed. */
        assert_non_null((*p)->summary);
        assert_non_null((*p)->open);
        assert_non_null((*p)->read);
        assert_non_null((*p)->close);
        for (const struct tern_driver_option *o = (*p)->options; o->key; o++) {
            assert_non_null(o->type);
            assert_non_null(o->help);
        }
        assert_ptr_equal(tern_driver_find((*p)->name), *p);
    }
    assert_true(n >= 7);
}

/* The contract for every driver: bad options never crash and always explain
 * themselves; an unknown key is named. */
static void test_every_driver_rejects_cleanly(void **st)
{
    (void)st;
    for (const struct tern_driver *const *p = tern_drivers(); *p; p++) {
        char err[256] = "";
        void *state = NULL;
        const struct tern_kv bogus[] = {{"no_such_option", "1", 42}};
        const struct tern_kv_list l = {bogus, 1};
        assert_int_equal((*p)->open(&l, &state, err, sizeof err), -1);
        assert_null(state);
        assert_non_null(strstr(err, "line 42: unknown option 'no_such_option'"));
        /* Every default in the table passes the table's own value check. */
        for (const struct tern_driver_option *o = (*p)->options; o->key; o++) {
            if (!o->def || strchr(o->key, '*'))
                continue;
            const struct tern_kv one[] = {{o->key, o->def, 1}};
            const struct tern_kv_list l1 = {one, 1};
            const struct tern_driver_option *req = (*p)->options;
            int missing_required = 0;
            for (; req->key; req++)
                missing_required |= !req->def && strcmp(req->key, o->key) != 0;
            int rc = tern_kv_check(&l1, (*p)->options, err, sizeof err);
            if (rc < 0 && !(missing_required && strstr(err, "missing required")))
                fail_msg("%s: default of '%s' rejected: %s", (*p)->name, o->key, err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_last_wins_and_default),
        cmocka_unit_test(test_check_did_you_mean),
        cmocka_unit_test(test_check_required_repeat_wildcard),
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_text_numbers),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_every_driver_rejects_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
