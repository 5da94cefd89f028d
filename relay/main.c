/* main.c - tern-relay's command line: run, init, schema, encode, --check. */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "rows.h"
#include "schema.h"
#include "sink_ch.h"
#include "source_kafka.h"
#ifdef TERN_RELAY_WITH_MQTT
#include "bridge.h"
#include "source_mqtt.h"
#endif
#include "wire.h"
#include "wire_fast.h"

#define RELAY_VERSION "0.1.0"

static volatile int g_stop;

static void on_signal(int sig) { g_stop = sig; }

static void usage(FILE *out)
{
    fputs("NAME\n"
          "       tern-relay - Kafka or MQTT into ClickHouse, every reading exactly once\n"
          "\n"
          "SYNOPSIS\n"
          "       tern-relay [--config FILE] [run]\n"
          "       tern-relay [--config FILE] init\n"
          "       tern-relay [--config FILE] [--mode modern|old] schema\n"
          "       tern-relay [--config FILE] --check\n"
          "       tern-relay [--config FILE] [--mode modern|old] encode < wire-lines\n"
          "       tern-relay --help | --version\n"
          "\n"
          "DESCRIPTION\n"
          "       tern-relay consumes sensor readings from a Kafka topic (Tern wire lines or JSON\n"
          "       sensor envelopes), batches them and inserts them into ClickHouse over HTTP. Kafka\n"
          "       offsets are committed only after the rows they cover are in ClickHouse, and the\n"
          "       readings table is a ReplacingMergeTree keyed by (device_id, epoch, seq): after a\n"
          "       crash, an outage or a rebalance, `SELECT ... FROM readings FINAL` and the per-minute\n"
          "       rollup view count every reading exactly once. Invalid messages go to the rejected\n"
          "       table with their raw payload, position and reason. See docs/relay.md and\n"
          "       docs/delivery.md. With relay.source = mqtt it reads an MQTT 5 shared subscription\n"
          "       instead and publishes end-to-end receipts to the devices once their readings are\n"
          "       stored; relay.mode = bridge forwards MQTT readings to the Kafka topic instead of\n"
          "       ClickHouse (docs/wire-format.md, \"Receipts\").\n"
          "\n"
          "COMMANDS\n"
          "       run     (default) consume, batch, insert, commit until SIGINT or SIGTERM.\n"
          "       init    create the database, tables and rollup view (idempotent) and the Kafka\n"
          "               topic with the configured partitions, retention and compression.\n"
          "       schema  print the DDL. Without --mode it asks the configured server which mode\n"
          "               fits; with --mode it prints that mode's DDL without connecting.\n"
          "       encode  read wire lines on stdin, print the rows the relay would insert into the\n"
          "               readings table, in clickhouse.insert_format (RowBinary by default, binary;\n"
          "               jsoneachrow for text). For checking SQL against other servers and for\n"
          "               the benchmark's direct-insert baseline.\n"
          "\n"
          "OPTIONS\n"
          "       -c, --config FILE   INI configuration file (defaults apply without one).\n"
          "       --check             load and validate the configuration, print it (password\n"
          "                           masked) and exit.\n"
          "       --mode MODE         schema mode for `schema` and `encode`: modern or old.\n"
          "       -v, --verbose       log at debug level.\n"
          "       --config-reference  print the configuration keys as a markdown table.\n"
          "       -h, --help          this text.\n"
          "       -V, --version       print the version.\n"
          "\n"
          "CONFIGURATION\n"
          "       INI file, sections and keys below.\n",
          out);
    relay_config_describe(out, 0);
    fputs("\n"
          "EXIT STATUS\n"
          "       0 success; 1 runtime failure (ClickHouse or Kafka unreachable at start, fatal\n"
          "       source error); 2 usage or configuration error.\n"
          "\n"
          "SIGNALS\n"
          "       SIGINT, SIGTERM: stop consuming, insert and commit what is buffered (up to 10 s),\n"
          "       leave the group. SIGKILL at any moment loses nothing: uncommitted messages are\n"
          "       re-read and deduplicate.\n"
          "\n"
          "EXAMPLES\n"
          "       tern-relay --config /etc/tern/relay.ini --check\n"
          "       tern-relay --config /etc/tern/relay.ini init\n"
          "       tern-relay --config /etc/tern/relay.ini\n"
          "       curl -s 127.0.0.1:9470/metrics\n",
          out);
}

static int cmd_schema(const struct relay_config *c, int mode)
{
    char stmts[SCHEMA_NSTMT][SCHEMA_STMT_MAX];
    size_t n = 0;
    int modern = mode == RELAY_SCHEMA_MODERN, window = modern;
    if (mode == RELAY_SCHEMA_AUTO) {
        char err[512];
        struct relay_metrics *m = relay_metrics_new();
        struct ch_sink *s = m ? ch_sink_open(c, m, err, sizeof(err)) : NULL;
        if (!s || ch_sink_prepare(s, 0, err, sizeof(err)) != 0) {
            TERN_ERROR("%s (use --mode modern|old to print without a server)", m ? err : "out of memory");
            ch_sink_close(s);
            relay_metrics_free(m);
            return 1;
        }
        modern = ch_sink_caps(s)->modern;
        window = ch_sink_caps(s)->dedup_window;
        ch_sink_close(s);
        relay_metrics_free(m);
    }
    if (schema_statements(c, modern, window, stmts, &n) != 0)
        return 1;
    printf("-- tern-relay schema, %s mode\n", modern ? "modern" : "old");
    for (size_t i = 0; i < n; i++)
        printf("%s;\n\n", stmts[i]);
    return 0;
}

static int cmd_encode(const struct relay_config *c, int mode)
{
    char line[16 * TERN_WIRE_LINE_MAX];
    char err[256];
    struct relay_buf b = {0};
    int rc = 0;
    while (fgets(line, sizeof(line), stdin)) {
        struct tern_reading r;
        size_t l = strlen(line);
        if (l == 0 || line[0] == '\n')
            continue;
        if (relay_wire_decode(line, l, &r, err, sizeof(err)) != 0) {
            fprintf(stderr, "encode: skipping invalid line: %s\n", err);
            continue;
        }
        buf_reset(&b);
        if (c->insert_format == RELAY_INSERT_ROWBINARY) {
            if (rows_encode_reading_bin(&b, &r, mode == RELAY_SCHEMA_MODERN, tern_utc_ms() / 1000) != 0) {
                fprintf(stderr, "encode: skipping a line whose tags cannot be a Map\n");
                continue;
            }
        } else {
            rows_encode_reading(&b, &r, mode == RELAY_SCHEMA_MODERN, tern_utc_ms() / 1000);
        }
        if (buf_failed(&b)) {
            rc = 1;
            break;
        }
        fwrite(b.p, 1, b.len, stdout);
    }
    buf_free(&b);
    return rc;
}

static int cmd_init(const struct relay_config *c)
{
    char err[768];
    int existed = 0, rc = 1;
    struct relay_metrics *m = relay_metrics_new();
    struct ch_sink *s = NULL;
    if (c->mode != RELAY_MODE_BRIDGE) { /* a bridge writes no ClickHouse */
        s = m ? ch_sink_open(c, m, err, sizeof(err)) : NULL;
        if (!s || ch_sink_prepare(s, 1, err, sizeof(err)) != 0) {
            TERN_ERROR("init: clickhouse: %s", m ? err : "out of memory");
            goto out;
        }
        TERN_INFO("init: clickhouse schema ready in database %s (%s mode)", c->ch_database,
                  ch_sink_caps(s)->modern ? "modern" : "old");
    }
    if (c->source == RELAY_SOURCE_MQTT && c->mode != RELAY_MODE_BRIDGE) {
        rc = 0; /* MQTT into ClickHouse needs no Kafka topic */
        goto out;
    }
    if (kafka_create_topic(c, &existed, err, sizeof(err)) != 0) {
        TERN_ERROR("init: %s", err);
        goto out;
    }
    TERN_INFO("init: kafka topic %s %s", c->kafka_topic, existed ? "already exists (kept as is)" : "created");
    rc = 0;
out:
    ch_sink_close(s);
    relay_metrics_free(m);
    return rc;
}

/* librdkafka's fetch thread allocates and frees megabytes per fetch (the
 * response, the decompressed message sets). With glibc's defaults each free
 * at the top of its arena is handed back to the kernel, and the next fetch
 * faults the pages in again, zeroed: clear_page was a sixth of the relay's
 * CPU in the relay-kafka profile. Keep freed memory for reuse instead; what
 * the relay holds is bounded anyway (two batches and librdkafka's
 * queued.max.messages.kbytes), so the peak does not grow, it only stays. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
#endif
}

static int cmd_run(const struct relay_config *c)
{
    char err[768];
    int rc = 1;
    tune_malloc();
    struct relay_metrics *m = relay_metrics_new();
    struct ch_sink *sink = NULL;
    struct relay_pipeline *p = NULL;
    struct relay_http *http = NULL;
    struct relay_source src = {0};
    if (!m)
        goto out;
#ifdef TERN_RELAY_WITH_MQTT
    if (c->mode == RELAY_MODE_BRIDGE) {
        if (c->metrics_listen[0]) {
            http = relay_http_start(c->metrics_listen, m, err, sizeof(err));
            if (!http) {
                TERN_ERROR("metrics: %s", err);
                goto out;
            }
        }
        rc = bridge_run(c, m, &g_stop) == 0 ? 0 : 1;
        goto out;
    }
#endif
    sink = ch_sink_open(c, m, err, sizeof(err));
    if (!sink) {
        TERN_ERROR("clickhouse: %s", err);
        goto out;
    }
    /* Wait for ClickHouse at start: the mode decides how rows are encoded. */
    struct tern_backoff bo;
    tern_backoff_init(&bo, c->retry_base_ms, c->retry_max_ms);
    while (ch_sink_prepare(sink, 0, err, sizeof(err)) != 0) {
        if (g_stop)
            goto out;
        TERN_WARN("clickhouse not ready: %s; retrying", err);
        tern_sleep_ms(tern_backoff_next(&bo), &g_stop);
    }
    if (!ch_sink_caps(sink)->table_exists)
        TERN_WARN("table %s.%s does not exist yet: run `tern-relay init`; inserts are retried until it does",
                  c->ch_database, c->ch_table);
    p = pipeline_new(c, sink, m, ch_sink_caps(sink)->modern, err, sizeof(err));
    if (!p) {
        TERN_ERROR("%s", err);
        goto out;
    }
    if (c->metrics_listen[0]) {
        http = relay_http_start(c->metrics_listen, m, err, sizeof(err));
        if (!http) {
            TERN_ERROR("metrics: %s", err);
            goto out;
        }
        TERN_INFO("metrics on http://%s/metrics", c->metrics_listen);
    }
    struct relay_source_events ev = pipeline_events(p);
#ifdef TERN_RELAY_WITH_MQTT
    if (c->source == RELAY_SOURCE_MQTT) {
        if (source_mqtt_open(c, m, &src, err, sizeof(err)) != 0) {
            TERN_ERROR("%s", err);
            goto out;
        }
        TERN_INFO("consuming mqtt %s (group %s) from %s:%lld", c->mqtt_topic, c->mqtt_group[0] ? c->mqtt_group : "-",
                  c->mqtt_host, (long long)c->mqtt_port);
    } else
#endif
    {
        if (source_kafka_open(c, &ev, m, &src, err, sizeof(err)) != 0) {
            TERN_ERROR("%s", err);
            goto out;
        }
        TERN_INFO("consuming %s as group %s from %s", c->kafka_topic, c->kafka_group, c->kafka_brokers);
    }
    pipeline_set_source(p, &src);
    rc = pipeline_run(p, &g_stop) == 0 ? 0 : 1;
    TERN_INFO("stopping: consumed %llu, inserted %llu, rejected %llu, duplicates %llu",
              (unsigned long long)relay_metrics_get(m, M_CONSUMED), (unsigned long long)relay_metrics_get(m, M_INSERTED),
              (unsigned long long)relay_metrics_get(m, M_REJECTED),
              (unsigned long long)relay_metrics_get(m, M_DUPLICATES));
out:
    if (src.ops)
        src.ops->close(src.self);
    relay_http_stop(http);
    pipeline_free(p);
    ch_sink_close(sink);
    relay_metrics_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
        {"mode", required_argument, NULL, 'm'},   {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {"config-reference", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    int check = 0, verbose = 0, mode = RELAY_SCHEMA_AUTO;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'k': check = 1; break;
        case 'v': verbose = 1; break;
        case 'm':
            if (strcmp(optarg, "modern") == 0)
                mode = RELAY_SCHEMA_MODERN;
            else if (strcmp(optarg, "old") == 0)
                mode = RELAY_SCHEMA_OLD;
            else {
                fprintf(stderr, "tern-relay: --mode must be modern or old\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'R': relay_config_describe(stdout, 1); return 0;
        case 'V': printf("tern-relay %s\n", RELAY_VERSION); return 0;
        default: fprintf(stderr, "try tern-relay --help\n"); return 2;
        }
    }
    const char *cmd = optind < argc ? argv[optind] : "run";
    if (optind + 1 < argc) {
        fprintf(stderr, "tern-relay: unexpected argument '%s' (try --help)\n", argv[optind + 1]);
        return 2;
    }
    static struct relay_config cfg;
    char err[4096];
    relay_config_defaults(&cfg);
    if (config && relay_config_load(&cfg, config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (relay_config_validate(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s%s%s\n", config ? config : "", config ? ": " : "", err);
        return 2;
    }
#ifndef TERN_RELAY_WITH_MQTT
    if (cfg.source == RELAY_SOURCE_MQTT) {
        fprintf(stderr, "relay.source = mqtt: this tern-relay was built without MQTT (TERN_WITH_MQTT=OFF)\n");
        return 2;
    }
#endif
    int level = tern_log_parse_level(cfg.log_level);
    if (level < 0) {
        fprintf(stderr, "relay.log_level: '%s' is not error, warn, info or debug\n", cfg.log_level);
        return 2;
    }
    tern_log_init("tern-relay", verbose ? TERN_LOG_DEBUG : (enum tern_log_level)level, 0);
    if (check) {
        relay_config_dump(&cfg, stdout);
        fprintf(stderr, "%s: configuration OK\n", config ? config : "(defaults)");
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(&cfg);
    if (strcmp(cmd, "init") == 0)
        return cmd_init(&cfg);
    if (strcmp(cmd, "schema") == 0)
        return cmd_schema(&cfg, mode);
    if (strcmp(cmd, "encode") == 0)
        return cmd_encode(&cfg, mode == RELAY_SCHEMA_AUTO ? RELAY_SCHEMA_MODERN : mode);
    fprintf(stderr, "tern-relay: unknown command '%s' (try --help)\n", cmd);
    return 2;
}
