/* test_config.c - config parsing: values, defaults, tags, and the messages
 * (FILE:LINE, did-you-mean) of invalid files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "config.h"
#include "log.h"

static struct tern_config *load_ok(const char *text)
{
    struct tern_config *c = NULL;
    char err[4096];
    int rc = tern_config_load_string("t.ini", text, &c, err, sizeof err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
    return c;
}

static void expect_error(const char *text, const char *want)
{
    struct tern_config *c = NULL;
    char err[4096];
    assert_int_equal(tern_config_load_string("t.ini", text, &c, err, sizeof err), -1);
    assert_null(c);
    if (!strstr(err, want))
        fail_msg("error\n  %s\ndoes not contain\n  %s", err, want);
}

static void test_full(void **st)
{
    (void)st;
    struct tern_config *c = load_ok("[agent]\n"
                                    "device_id = pi-01\n"
                                    "data_dir = /tmp/x\n"
                                    "tags = site=lab, room = 3\n"
                                    "log_level = debug\n"
                                    "log = syslog\n"
                                    "\n"
                                    "[storage]\n"
                                    "commit_ms = 250\n"
                                    "max_bytes = 64MiB\n"
                                    "max_age = 7d\n"
                                    "synchronous = full\n"
                                    "overflow = drop_newest\n"
                                    "\n"
                                    "[sensor.t1]\n"
                                    "driver = sim\n"
                                    "interval = 500ms\n"
                                    "kind = counter\n"
                                    "tags = room=4\n"
                                    "\n"
                                    "[uplink.mqtt]\n"
                                    "host = broker\n"
                                    "drain_rate = 500\n"
                                    "password_env = X\n");
    assert_string_equal(c->device_id, "pi-01");
    assert_int_equal(c->agent.log_level, TERN_LOG_DEBUG);
    assert_int_equal(c->agent.log, TERN_LOGTO_SYSLOG);
    assert_string_equal(c->tags_json, "{\"room\":\"3\",\"site\":\"lab\"}");
    assert_int_equal(c->storage.commit_ms, 250);
    assert_int_equal(c->storage.max_bytes, 64u << 20);
    assert_int_equal(c->storage.max_age_ms, 7 * 86400000LL);
    assert_int_equal(c->storage.synchronous, 2);
    assert_int_equal(c->storage.overflow, 1);
    assert_string_equal(c->storage_path, "/tmp/x/queue.db");
    assert_string_equal(c->status_socket, "/tmp/x/tern-agent.sock");
    assert_int_equal(c->n_sensors, 1);
    assert_string_equal(c->sensors[0].name, "t1");
    assert_int_equal(c->sensors[0].c.interval_ms, 500);
    assert_int_equal(c->sensors[0].opts.n, 1); /* kind: the driver's, not ours */
    assert_string_equal(c->sensors[0].tags_json, "{\"room\":\"4\",\"site\":\"lab\"}");
    assert_int_equal(c->n_uplinks, 1);
    assert_int_equal(c->uplinks[0].c.drain_rate, 500);
    assert_string_equal(tern_cfg_opt(&c->uplinks[0].opts, "host", NULL), "broker");
    assert_null(tern_cfg_opt(&c->uplinks[0].opts, "drain_rate", NULL));
    tern_config_free(c);
}

static void test_defaults(void **st)
{
    (void)st;
    struct tern_config *c = load_ok("[agent]\ndata_dir = /d\n");
    assert_true(c->device_id[0] != '\0'); /* host name */
    assert_int_equal(c->agent.log_level, TERN_LOG_INFO);
    assert_int_equal(c->storage.commit_every, 1000);
    assert_int_equal(c->storage.max_bytes, 256u << 20);
    assert_int_equal(c->n_sensors, 0);
    assert_string_equal(c->tags_json, "");
    tern_config_free(c);
}

static void test_errors(void **st)
{
    (void)st;
    expect_error("[agent]\nlog_levle = debug\n",
                 "t.ini:2: [agent] unknown key 'log_levle' (did you mean 'log_level'?)");
    expect_error("[agent]\n\nlog_level = loud\n",
                 "t.ini:3: [agent] log_level: 'loud' is not one of error|warn|info|debug");
    expect_error("[storage]\ncommit_ms = soon\n", "t.ini:2: [storage] commit_ms: 'soon' is not a duration");
    expect_error("[storage]\nmax_bytes = lots\n", "t.ini:2: [storage] max_bytes: 'lots' is not a size");
    expect_error("[agnet]\nx = 1\n", "t.ini:2: unknown section [agnet] (did you mean [agent]?)");
    expect_error("[agent]\ndevice_id = a\ndevice_id = b\n",
                 "t.ini:3: [agent] duplicate key 'device_id' (first set on line 2)");
    expect_error("[sensor.s]\ninterval = 1s\n", "[sensor.s] missing required key 'driver'");
    expect_error("[sensor.s]\ndriver = smi\n", "[sensor.s] unknown driver 'smi' (did you mean 'sim'?)");
    expect_error("[sensor.s]\ndriver = sim\nkindd = env\n",
                 "t.ini:3: [sensor.s] unknown key 'kindd' for driver 'sim' (did you mean 'kind'?)");
    expect_error("[sensor.s]\ndriver = sim\nseed = abc\n", "t.ini:3: [sensor.s] seed: 'abc' is not an integer");
    expect_error("[sensor.bad name]\ndriver = sim\n", "invalid sensor name 'bad name'");
    expect_error("[uplink.mqqt]\nhost = x\n", "t.ini:2: [uplink.mqqt] unknown uplink 'mqqt' (did you mean 'mqtt'?)");
    expect_error("[uplink.mqtt]\npassword = hunter2\n",
                 "t.ini:2: [uplink.mqtt] unknown key 'password' for uplink 'mqtt': passwords are never written");
    expect_error("[uplink.mqtt]\nprot = 5\n", "(did you mean 'port'?)");
    expect_error("device_id = x\n", "t.ini:1: key 'device_id' outside of any section");
    expect_error("[agent]\ntags = a\n", "[agent] tags: tag without '='");
    expect_error("[agent]\nnot a key value line\n", "t.ini:2: syntax error");
    expect_error("[agent]\nqueue_readings = 1\n", "queue_readings: '1' is not an integer in 16..16777216");
    /* Every problem is reported, not only the first. */
    struct tern_config *c = NULL;
    char err[4096];
    assert_int_equal(tern_config_load_string("t.ini", "[agent]\nfoo = 1\nbar = 2\n", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "t.ini:2:"));
    assert_non_null(strstr(err, "t.ini:3:"));
}

static void test_print_masks_secrets(void **st)
{
    (void)st;
    assert_true(tern_config_is_secret("password"));
    assert_true(tern_config_is_secret("sasl_password"));
    assert_false(tern_config_is_secret("password_file"));
    assert_false(tern_config_is_secret("password_env"));
    struct tern_config *c = load_ok("[agent]\ndata_dir=/d\n[uplink.mqtt]\nusername = u\npassword_env = PW\n");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tern_config_print(c, f);
    fclose(f);
    assert_non_null(strstr(buf, "password_env = PW"));
    assert_non_null(strstr(buf, "[uplink.mqtt]"));
    assert_non_null(strstr(buf, "drain_rate = 10000"));
    free(buf);
    tern_config_free(c);
}

static void test_did_you_mean(void **st)
{
    (void)st;
    const char *c[] = {"interval", "driver", "tags"};
    assert_string_equal(tern_did_you_mean("intervl", c, 3), "interval");
    assert_string_equal(tern_did_you_mean("drver", c, 3), "driver");
    assert_null(tern_did_you_mean("completely_else", c, 3));
}

/* Every allocation failing in turn: the loader fails cleanly (ASan/valgrind
 * catch leaks) and never crashes. */
static void test_alloc_failures(void **st)
{
    (void)st;
    const char *text = "[agent]\ndata_dir=/d\ntags=a=b\n[sensor.s]\ndriver=sim\nkind=env\n"
                       "[uplink.mqtt]\nhost=h\n";
    for (unsigned long n = 1; n < 1000; n++) {
        struct tern_config *c = NULL;
        char err[1024];
        tern_alloc_fail_at(n);
        int rc = tern_config_load_string("t.ini", text, &c, err, sizeof err);
        unsigned long count = tern_alloc_fail_at(0);
        if (count < n) {
            /* No allocation failed: this run must be the good one. */
            assert_int_equal(rc, 0);
            tern_config_free(c);
            return;
        }
        assert_int_equal(rc, -1);
        assert_null(c);
    }
    fail_msg("never succeeded");
}

int main(void)
{
    tern_log_init("test_config", TERN_LOG_ERROR, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),          cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),        cmocka_unit_test(test_print_masks_secrets),
        cmocka_unit_test(test_did_you_mean),  cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
