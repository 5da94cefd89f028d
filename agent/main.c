/* main.c - tern-agent's command line: run the daemon, --check a config,
 * query a running agent's status, print the configuration reference. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "alloc.h"
#include "config.h"
#include "forwarder.h"
#include "log.h"
#include "status.h"
#include "units.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1, /* failed while running (or status: no agent answering) */
    EXIT_USAGE = 2,   /* bad command line */
    EXIT_CONFIG = 3,  /* invalid configuration */
};

static void usage(FILE *f)
{
    fprintf(f,
"NAME\n"
"       tern-agent - edge daemon: sensors -> durable queue -> MQTT/Kafka uplinks\n"
"\n"
"SYNOPSIS\n"
"       tern-agent --config FILE [--check] [--log-level LEVEL]\n"
"       tern-agent --sim [--data-dir DIR] [--mqtt-host HOST] [--mqtt-port PORT] [--check]\n"
"       tern-agent status [--data-dir DIR | --config FILE | --socket PATH] [--json]\n"
"       tern-agent --config-doc | --help | --version\n"
"\n"
"DESCRIPTION\n"
"       tern-agent polls each configured sensor on its own interval (a slow or hung\n"
"       sensor never delays the others), stamps readings in UTC (ms), stores every\n"
"       reading in a crash-safe SQLite queue first, and forwards the queue to each\n"
"       uplink in batches. A reading leaves the queue only when every uplink\n"
"       acknowledged it (MQTT: on PUBACK), so a broker outage or a crash loses\n"
"       nothing; re-sent readings are identified by (device_id, epoch, seq).\n"
"\n"
"OPTIONS\n"
"       -c, --config FILE   INI configuration (see CONFIGURATION, docs/config.md).\n"
"       --check             Validate the configuration, print it resolved with secrets\n"
"                           masked, exit 0; or print FILE:LINE: message for each\n"
"                           problem and exit 3.\n"
"       --sim               No config file: run a built-in demo configuration (three\n"
"                           sim sensors, MQTT to localhost:1883). Data dir from\n"
"                           --data-dir, else $TERN_DATA_DIR, else ./tern-data.\n"
"       --mqtt-host HOST    With --sim: broker host (default $TERN_MQTT_HOST or localhost).\n"
"       --mqtt-port PORT    With --sim: broker port (default $TERN_MQTT_PORT or 1883).\n"
"       -d, --data-dir DIR  With --sim or status: the data directory.\n"
"       --socket PATH       With status: the status socket itself.\n"
"       --json              With status: print one JSON object instead of key=value.\n"
"       --log-level LEVEL   Override [agent] log_level: error, warn, info, debug.\n"
"       --config-doc        Print the configuration reference (Markdown).\n"
"       -h, --help          This text.  -V, --version  The version.\n"
"\n"
"CONFIGURATION\n"
"       Sections and keys (type, default); docs/config.md has units and details.\n");
    tern_config_help(f);
    fprintf(f,
"\n"
"FILES\n"
"       DATA_DIR/queue.db (+ -wal)   the queue of readings not yet acknowledged.\n"
"       DATA_DIR/tern-agent.sock     status socket served by the running agent.\n"
"       /etc/tern/agent.conf          the usual place of the configuration.\n"
"\n"
"SIGNALS\n"
"       SIGTERM, SIGINT  Stop polling, commit the queue, wait up to [agent]\n"
"                        shutdown_timeout for in-flight batches, exit 0.\n"
"       SIGHUP           Reload the config file: sensors added/removed/changed,\n"
"                        uplink settings applied, no queued reading lost. A bad file\n"
"                        is rejected (logged) and the running configuration kept.\n"
"\n"
"ENVIRONMENT\n"
"       TERN_DATA_DIR, TERN_MQTT_HOST, TERN_MQTT_PORT   defaults for --sim.\n"
"       NOTIFY_SOCKET, WATCHDOG_USEC   set by systemd: READY=1 after start,\n"
"                        WATCHDOG=1 only while healthy, STATUS= lines.\n"
"       TERN_MODULE_DIR  where to load uplink modules (uplink_kafka.so) from instead of\n"
"                        next to the binary or the installed module directory.\n"
"\n"
"EXIT STATUS\n"
"       0  success (clean stop, valid config, status printed)\n"
"       1  runtime failure (cannot open the queue, no agent answering status)\n"
"       2  bad command line\n"
"       3  invalid configuration\n"
"\n"
"EXAMPLES\n"
"       tern-agent --config /etc/tern/agent.conf --check\n"
"       tern-agent --config /etc/tern/agent.conf\n"
"       TERN_DATA_DIR=/tmp/t tern-agent --sim --mqtt-host 127.0.0.1 --mqtt-port 18801\n"
"       tern-agent status --config /etc/tern/agent.conf --json\n"
"       mosquitto_sub -t 'tern/+/readings' -v\n");
}

/* The --sim configuration, as INI text so it goes through the same parser
 * and validation as a file. */
static int sim_config(const char *data_dir, const char *host, const char *port, char *out,
                      size_t cap)
{
    int n = snprintf(out, cap,
                     "[agent]\n"
                     "data_dir = %s\n"
                     "tags = source=sim\n"
                     "\n"
                     "[sensor.env]\n"
                     "driver = sim\n"
                     "kind = env\n"
                     "interval = 1s\n"
                     "\n"
                     "[sensor.counter]\n"
                     "driver = sim\n"
                     "kind = counter\n"
                     "interval = 1s\n"
                     "\n"
                     "[sensor.vibration]\n"
                     "driver = sim\n"
                     "kind = signal\n"
                     "metric = vibration\n"
                     "unit = m/s2\n"
                     "amplitude = 0.5\n"
                     "period = 10s\n"
                     "interval = 200ms\n",
                     data_dir);
    if (n <= 0 || (size_t)n >= cap)
        return -1;
#ifdef TERN_WITH_MQTT
    int m = snprintf(out + n, cap - (size_t)n, "\n[uplink.mqtt]\nhost = %s\nport = %s\n", host, port);
    if (m < 0 || (size_t)m >= cap - (size_t)n)
        return -1;
#else
    (void)host;
    (void)port;
#endif
    return 0;
}

static int cmd_status(int argc, char **argv)
{
    static const struct option lo[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"config", required_argument, NULL, 'c'},
        {"socket", required_argument, NULL, 's'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *data_dir = NULL, *config = NULL, *sock = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:c:s:jh", lo, NULL)) != -1) {
        switch (c) {
        case 'd': data_dir = optarg; break;
        case 'c': config = optarg; break;
        case 's': sock = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: return EXIT_USAGE;
        }
    }
    char path[512], err[4096];
    if (sock) {
        snprintf(path, sizeof path, "%s", sock);
    } else if (config) {
        struct tern_config *cfg = NULL;
        if (tern_config_load(config, &cfg, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return EXIT_CONFIG;
        }
        snprintf(path, sizeof path, "%s", cfg->status_socket);
        tern_config_free(cfg);
    } else {
        if (!data_dir)
            data_dir = getenv("TERN_DATA_DIR");
        if (!data_dir)
            data_dir = "./tern-data";
        snprintf(path, sizeof path, "%s/tern-agent.sock", data_dir);
    }
    char *buf = tern_malloc(65536);
    if (!buf)
        return EXIT_RUNTIME;
    if (tern_status_query(path, buf, 65536, err, sizeof err) < 0) {
        fprintf(stderr, "tern-agent status: %s\n", err);
        tern_free(buf);
        return EXIT_RUNTIME;
    }
    if (json)
        tern_status_print_json(buf, stdout);
    else
        fputs(buf, stdout);
    tern_free(buf);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return cmd_status(argc - 1, argv + 1);

    enum { OPT_CHECK = 256, OPT_SIM, OPT_HOST, OPT_PORT, OPT_LEVEL, OPT_DOC, OPT_PREFILL };
    static const struct option lo[] = {
        {"config", required_argument, NULL, 'c'},   {"check", no_argument, NULL, OPT_CHECK},
        {"sim", no_argument, NULL, OPT_SIM},        {"mqtt-host", required_argument, NULL, OPT_HOST},
        {"mqtt-port", required_argument, NULL, OPT_PORT},
        {"data-dir", required_argument, NULL, 'd'}, {"log-level", required_argument, NULL, OPT_LEVEL},
        {"config-doc", no_argument, NULL, OPT_DOC}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        /* Hidden, for bench/agent_mqtt.sh: append N synthetic readings to the
         * queue of the given config and exit. */
        {"prefill", required_argument, NULL, OPT_PREFILL},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data_dir = NULL, *host = NULL, *port = NULL, *level = NULL;
    int check = 0, sim = 0, c;
    long long prefill = -1;
    while ((c = getopt_long(argc, argv, "c:d:hV", lo, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'd': data_dir = optarg; break;
        case OPT_CHECK: check = 1; break;
        case OPT_SIM: sim = 1; break;
        case OPT_HOST: host = optarg; break;
        case OPT_PORT: port = optarg; break;
        case OPT_LEVEL: level = optarg; break;
        case OPT_DOC: tern_config_doc(stdout); return EXIT_OK;
        case OPT_PREFILL: prefill = atoll(optarg); break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("tern-agent %s\n", TERN_VERSION); return EXIT_OK;
        default:
            fprintf(stderr, "try 'tern-agent --help'\n");
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tern-agent: unexpected argument '%s' (try --help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!config == !sim) {
        fprintf(stderr, "tern-agent: give --config FILE or --sim (try --help)\n");
        return EXIT_USAGE;
    }
    if (level && tern_log_parse_level(level) < 0) {
        fprintf(stderr, "tern-agent: --log-level: '%s' is not error, warn, info or debug\n", level);
        return EXIT_USAGE;
    }
    if (!sim && (host || port || data_dir)) {
        fprintf(stderr, "tern-agent: --mqtt-host, --mqtt-port and --data-dir go with --sim\n");
        return EXIT_USAGE;
    }

    struct tern_config *cfg = NULL;
    static char err[8192];
    if (sim) {
        char text[2048];
        if (!data_dir)
            data_dir = getenv("TERN_DATA_DIR");
        if (!host)
            host = getenv("TERN_MQTT_HOST");
        if (!port)
            port = getenv("TERN_MQTT_PORT");
        if (sim_config(data_dir ? data_dir : "./tern-data", host ? host : "localhost",
                       port ? port : "1883", text, sizeof text) < 0 ||
            tern_config_load_string("<--sim>", text, &cfg, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return EXIT_CONFIG;
        }
    } else if (tern_config_load(config, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_CONFIG;
    }
    if (check) {
        tern_log_init("tern-agent", TERN_LOG_WARN, 0);
        /* Opening an uplink validates its values (password file readable,
         * TLS files paired...) without connecting. */
        int bad = 0;
        for (size_t i = 0; i < cfg->n_uplinks; i++) {
            if (!cfg->uplinks[i].c.enabled)
                continue;
            tern_forwarder *f = tern_forwarder_new(&cfg->uplinks[i], cfg->device_id, err, sizeof err);
            if (!f) {
                fprintf(stderr, "%s:%d: %s\n", cfg->source, cfg->uplinks[i].line, err);
                bad = 1;
            }
            tern_forwarder_free(f);
        }
        if (bad) {
            tern_config_free(cfg);
            return EXIT_CONFIG;
        }
        tern_config_print(cfg, stdout);
        tern_config_free(cfg);
        return EXIT_OK;
    }
    tern_log_init("tern-agent", level ? (enum tern_log_level)tern_log_parse_level(level)
                                      : (enum tern_log_level)cfg->agent.log_level,
                  cfg->agent.log == TERN_LOGTO_SYSLOG);
    if (prefill >= 0) {
        int rc = tern_agent_prefill(cfg, (uint64_t)prefill, err, sizeof err);
        tern_config_free(cfg);
        if (rc < 0) {
            fprintf(stderr, "tern-agent: prefill: %s\n", err);
            return EXIT_RUNTIME;
        }
        return EXIT_OK;
    }
    tern_agent_install_signals();
    tern_agent *a = tern_agent_start(cfg, config, err, sizeof err);
    if (!a) {
        TERN_ERROR("cannot start: %s", err);
        return EXIT_RUNTIME;
    }
    int rc = tern_agent_run(a);
    tern_agent_free(a);
    return rc;
}
