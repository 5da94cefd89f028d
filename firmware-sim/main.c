/* main.c - tern-sim: simulated sensor firmware for demos, tests and load
 * tests. Subcommands serve one kind of device each (see usage below). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "bme280.h"
#include "clock.h"
#include "kv.h"
#include "log.h"
#include "simdev.h"

static volatile int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static const char usage_text[] =
    "NAME\n"
    "    tern-sim - simulated sensor hardware for Tern\n"
    "\n"
    "SYNOPSIS\n"
    "    tern-sim sysfs  --root DIR [--interval DUR] [--seed N] [--fault CLASS=FAULT]...\n"
    "                    [--once] [--duration DUR]\n"
    "    tern-sim fleet  --devices N --root DIR [--interval DUR] [--seed N]\n"
    "                    [--fault CLASS=FAULT] [--faulty N] [--once] [--config FILE]\n"
    "    tern-sim modbus [--port N | --rtu [--unit ID]] [--fault FAULT] [--delay DUR] [--seed N]\n"
    "                    [--duration DUR]\n"
    "    tern-sim serial [--format kv|csv] [--interval DUR] [--fault FAULT] [--link PATH]\n"
    "                    [--seed N] [--duration DUR]\n"
    "    tern-sim bme280 [--temperature C] [--pressure PA] [--humidity PCT] [--fault FAULT]\n"
    "    tern-sim --help | help\n"
    "\n"
    "DESCRIPTION\n"
    "    tern-sim pretends to be the hardware that tern-agent's drivers read, so the\n"
    "    agent can be run, demonstrated and load-tested without sensors. Values change\n"
    "    over time (daily cycles, noise, counters) and every device can be told to\n"
    "    misbehave (FAULTS below). The same device models are in the library\n"
    "    tern_simdev, which the driver tests link directly. Long-running commands stop\n"
    "    cleanly on SIGINT or SIGTERM, or after --duration.\n"
    "\n"
    "COMMANDS\n"
    "    sysfs   Write a fake sysfs tree under DIR and update it every --interval:\n"
    "              DIR/class/thermal/thermal_zone{0,1}/{type,temp}     (x86_pkg_temp, acpitz)\n"
    "              DIR/class/hwmon/hwmon0  coretemp: temp1 \"Package id 0\", temp2 \"Core 0\"\n"
    "              DIR/class/hwmon/hwmon1  tern_board: in0 (12V), curr1, power1, fan1,\n"
    "                                      humidity1, pressure1, temp1 (+ temp1_fault)\n"
    "              DIR/bus/iio/devices/iio:device0  bme280: in_temp_input,\n"
    "                                      in_humidityrelative_input, in_pressure_input\n"
    "              DIR/bus/iio/devices/iio:device1  ads1015: in_voltage0_raw with\n"
    "                                      in_voltage_scale, in_temp_raw/_scale/_offset\n"
    "              DIR/bus/w1/devices/" TERN_SIMFS_W1_ID "/w1_slave   (DS18B20)\n"
    "            Point the drivers' 'root' options at DIR/class/thermal, DIR/class/hwmon,\n"
    "            DIR/bus/iio/devices and DIR/bus/w1/devices. Files are replaced\n"
    "            atomically, so a reader never sees half a value.\n"
    "    fleet   Write N such trees, DIR/dev0001 ... DIR/devNNNN, update them all every\n"
    "            --interval, and print (or write to --config FILE) one [sensor.*] section\n"
    "            per device for tern-agent, for load tests. --faulty N applies --fault to\n"
    "            the first N devices only.\n"
    "    modbus  Serve Modbus TCP on 127.0.0.1:PORT (default 1502; the next free port\n"
    "            if taken) with this register map, changing once a second:\n"
    "              holding 0-1  temperature  float32 abcd   Cel\n"
    "              holding 2    humidity     uint16         0.1 %\n"
    "              holding 3-4  energy       uint32 cdab    Wh, increasing\n"
    "              holding 5    outdoor      int16          0.01 Cel\n"
    "              input   0-1  pressure     uint32 dcba    Pa\n"
    "              input   2    voltage      int16          mV\n"
    "            With --rtu the same map is served as Modbus RTU (9600 8N1, unit --unit,\n"
    "            default 1) at the far end of a pseudo-terminal pair; the tty to give the\n"
    "            driver (mode = rtu, device = ...) is printed.\n"
    "            Matching driver options, e.g.:\n"
    "              register.temperature = 0 holding float32 abcd unit=Cel\n"
    "              register.energy = 3 holding uint32 cdab unit=W.h\n"
    "              register.pressure = 30001 uint32 dcba unit=Pa\n"
    "    serial  Create a pseudo-terminal and print a line every --interval (default\n"
    "            1s): \"T=21.40 H=41.0\" (--format kv) or \"21.40,41.0\" (csv). With\n"
    "            --interval 0 a line is sent for each newline received (polled MCU).\n"
    "            Prints the pty path; --link PATH also makes a symlink to it.\n"
    "    bme280  Run the BME280 register model (datasheet example trimming) through\n"
    "            the driver's chip logic once and print raw words and results: a\n"
    "            self-check of the compensation arithmetic.\n"
    "\n"
    "OPTIONS\n"
    "    --root DIR         where to write sysfs trees (created if missing)\n"
    "    --interval DUR     update period: 500ms, 2s, 1m ... (default 1s)\n"
    "    --duration DUR     stop after DUR (default: run until a signal)\n"
    "    --once             write the tree(s) once and exit\n"
    "    --seed N           seed for noise and fault randomness (default 1)\n"
    "    --fault SPEC       inject a fault (see FAULTS); sysfs/fleet take CLASS=FAULT\n"
    "    --devices N        fleet size (1..100000)\n"
    "    --port N           modbus TCP port\n"
    "    --rtu, --unit ID   modbus: serve RTU on a pty instead of TCP, as unit ID\n"
    "    --delay DUR        modbus: reply delay for --fault slow (default 2s)\n"
    "    --format kv|csv    serial line format\n"
    "    --link PATH        serial: symlink PATH to the pty\n"
    "\n"
    "FAULTS\n"
    "    sysfs/fleet (CLASS = thermal, hwmon, iio, w1):\n"
    "      stuck       values stop changing\n"
    "      garbage     value files hold unparsable bytes\n"
    "      missing     value files (w1: the device directory) disappear\n"
    "      empty       value files are empty\n"
    "      fault_flag  hwmon: temp1_fault reads 1\n"
    "      crc         w1: w1_slave reports \"crc=.. NO\"\n"
    "      power_on    w1: the 85 Cel power-on scratchpad\n"
    "    modbus: exception (server device failure), disconnect (TCP: drop each\n"
    "      request; RTU: never answer),\n"
    "      slow (reply after --delay), stuck, garbage (random reply bytes), nan\n"
    "      (NaN in the float32 temperature)\n"
    "    serial: garbage (noise and over-long lines between lines), corrupt (every\n"
    "      line mangled), silent (no output), stuck (same values), disconnect\n"
    "      (hang up the pty after the first line)\n"
    "    bme280: bus_error, flaky, disconnect (bus reads 0xFF), stuck, slow\n"
    "      (measuring bit never clears), garbage, wrong_id (a BMP280)\n"
    "\n"
    "EXAMPLES\n"
    "    tern-sim sysfs --root /tmp/sim --interval 1s &\n"
    "    tern-sim sysfs --root /tmp/sim --fault w1=crc --once\n"
    "    tern-sim fleet --devices 500 --root /tmp/fleet --config /tmp/fleet.ini\n"
    "    tern-sim modbus --port 1502 --fault slow --delay 3s\n"
    "    tern-sim serial --format csv --link /tmp/mcu-tty\n"
    "\n"
    "EXIT STATUS\n"
    "    0 on success or when stopped by a signal, 1 on a runtime error, 2 on bad usage.\n";

static void usage(FILE *f) { fputs(usage_text, f); }

static int bad_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "tern-sim: %s%s%s\nTry 'tern-sim --help'.\n", msg, arg ? ": " : "",
            arg ? arg : "");
    return 2;
}

struct common {
    const char *root;
    long long interval_ms;
    long long duration_ms; /* < 0: forever */
    long seed;
    int once;
    const char *faults[8];
    int nfaults;
    long devices;
    long faulty;
    const char *config;
    long port;
    long long delay_ms;
    const char *format;
    const char *link;
    double t_c, p_pa, h_pct;
    int rtu;
    long unit;
};

static int parse_args(int argc, char **argv, struct common *c)
{
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'},     {"interval", required_argument, NULL, 'i'},
        {"duration", required_argument, NULL, 'd'}, {"seed", required_argument, NULL, 's'},
        {"once", no_argument, NULL, 'o'},           {"fault", required_argument, NULL, 'f'},
        {"devices", required_argument, NULL, 'n'},  {"faulty", required_argument, NULL, 'F'},
        {"config", required_argument, NULL, 'c'},   {"port", required_argument, NULL, 'p'},
        {"delay", required_argument, NULL, 'D'},    {"format", required_argument, NULL, 'm'},
        {"link", required_argument, NULL, 'l'},     {"temperature", required_argument, NULL, 'T'},
        {"pressure", required_argument, NULL, 'P'}, {"humidity", required_argument, NULL, 'H'},
        {"rtu", no_argument, NULL, 'R'},            {"unit", required_argument, NULL, 'U'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    optind = 1;
    for (int ch = getopt_long(argc, argv, "h", opts, NULL); ch != -1;
         ch = getopt_long(argc, argv, "h", opts, NULL)) {
        long v;
        double d;
        switch (ch) {
        case 'r': c->root = optarg; break;
        case 'i':
            if (tern_text_duration_ms(optarg, &c->interval_ms) < 0)
                return bad_usage("bad --interval", optarg);
            break;
        case 'd':
            if (tern_text_duration_ms(optarg, &c->duration_ms) < 0)
                return bad_usage("bad --duration", optarg);
            break;
        case 'D':
            if (tern_text_duration_ms(optarg, &c->delay_ms) < 0)
                return bad_usage("bad --delay", optarg);
            break;
        case 's':
            if (tern_text_long(optarg, &c->seed) < 0)
                return bad_usage("bad --seed", optarg);
            break;
        case 'o': c->once = 1; break;
        case 'R': c->rtu = 1; break;
        case 'U':
            if (tern_text_long(optarg, &v) < 0 || v < 1 || v > 247)
                return bad_usage("--unit must be 1..247", optarg);
            c->unit = v;
            break;
        case 'f':
            if (c->nfaults >= 8)
                return bad_usage("too many --fault options", NULL);
            c->faults[c->nfaults++] = optarg;
            break;
        case 'n':
            if (tern_text_long(optarg, &v) < 0 || v < 1 || v > 100000)
                return bad_usage("--devices must be 1..100000", optarg);
            c->devices = v;
            break;
        case 'F':
            if (tern_text_long(optarg, &v) < 0 || v < 0)
                return bad_usage("bad --faulty", optarg);
            c->faulty = v;
            break;
        case 'c': c->config = optarg; break;
        case 'p':
            if (tern_text_long(optarg, &v) < 0 || v < 1 || v > 65535)
                return bad_usage("bad --port", optarg);
            c->port = v;
            break;
        case 'm': c->format = optarg; break;
        case 'l': c->link = optarg; break;
        case 'T':
        case 'P':
        case 'H':
            if (tern_text_double(optarg, &d) < 0)
                return bad_usage("bad number", optarg);
            *(ch == 'T' ? &c->t_c : ch == 'P' ? &c->p_pa : &c->h_pct) = d;
            break;
        case 'h': usage(stdout); exit(0);
        default: return 2;
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument", argv[optind]);
    return 0;
}

/* Runs until --duration passes or a signal arrives, calling tick each interval. */
static int run_loop(const struct common *c, int (*tick)(void *, double), void *arg)
{
    int64_t start = tern_mono_ms();
    while (!g_stop) {
        int64_t now = tern_mono_ms();
        if (c->duration_ms >= 0 && now - start >= c->duration_ms)
            break;
        if (tick && tick(arg, (double)(now - start) / 1000.0) < 0)
            return 1;
        int64_t nap = c->interval_ms > 0 ? c->interval_ms : 1000;
        if (c->duration_ms >= 0 && start + c->duration_ms - now < nap)
            nap = start + c->duration_ms - now;
        tern_sleep_ms(nap, &g_stop);
    }
    return 0;
}

static int apply_fs_fault(struct tern_simfs *fs, const char *spec)
{
    char cls[32];
    const char *eq = strchr(spec, '=');
    if (!eq || (size_t)(eq - spec) >= sizeof cls)
        return -1;
    snprintf(cls, sizeof cls, "%.*s", (int)(eq - spec), spec);
    int k = tern_simfs_class_parse(cls), f = tern_simfs_fault_parse(eq + 1);
    if (k < 0 || f < 0)
        return -1;
    tern_simfs_set_fault(fs, (enum tern_simfs_class)k, (enum tern_simfs_fault)f);
    return 0;
}

struct fleet {
    struct tern_simfs **fs;
    long n;
};

static int fleet_tick(void *arg, double t)
{
    struct fleet *fl = arg;
    char err[256];
    for (long i = 0; i < fl->n; i++) {
        if (tern_simfs_update(fl->fs[i], t, err, sizeof err) < 0) {
            fprintf(stderr, "tern-sim: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static void print_fleet_config(FILE *f, const char *root, long n)
{
    for (long i = 1; i <= n; i++) {
        fprintf(f,
                "[sensor.dev%04ld_cpu]\ndriver = thermal\nroot = %s/dev%04ld/class/thermal\n"
                "zone = x86_pkg_temp\n\n"
                "[sensor.dev%04ld_board]\ndriver = hwmon\nroot = %s/dev%04ld/class/hwmon\n"
                "chip = tern_board\n\n"
                "[sensor.dev%04ld_env]\ndriver = iio\nroot = %s/dev%04ld/bus/iio/devices\n"
                "device = bme280\n\n"
                "[sensor.dev%04ld_probe]\ndriver = ds18b20\nroot = %s/dev%04ld/bus/w1/devices\n\n",
                i, root, i, i, root, i, i, root, i, i, root, i);
    }
}

static int cmd_fleet(struct common *c, int single)
{
    if (!c->root)
        return bad_usage("--root is required", NULL);
    long n = single ? 1 : c->devices;
    if (n < 1)
        return bad_usage("--devices is required", NULL);
    struct fleet fl = {tern_calloc((size_t)n, sizeof *fl.fs), n};
    int rc = 1;
    char err[256];
    if (!fl.fs) {
        fprintf(stderr, "tern-sim: out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++) {
        char dir[1024];
        if (single)
            snprintf(dir, sizeof dir, "%s", c->root);
        else
            snprintf(dir, sizeof dir, "%s/dev%04ld", c->root, i + 1);
        fl.fs[i] = tern_simfs_create(dir, (uint64_t)c->seed + (uint64_t)i, err, sizeof err);
        if (!fl.fs[i]) {
            fprintf(stderr, "tern-sim: %s\n", err);
            fl.n = i;
            goto out;
        }
        for (int k = 0; k < c->nfaults; k++) {
            if (!single && c->faulty > 0 && i >= c->faulty)
                break;
            if (apply_fs_fault(fl.fs[i], c->faults[k]) < 0) {
                fl.n = i + 1;
                rc = bad_usage("bad --fault (want CLASS=FAULT, e.g. w1=crc)", c->faults[k]);
                goto out;
            }
        }
    }
    if (!single) {
        FILE *f = stdout;
        if (c->config && !(f = fopen(c->config, "w"))) {
            fprintf(stderr, "tern-sim: %s: %s\n", c->config, strerror(errno));
            goto out;
        }
        print_fleet_config(f, c->root, n);
        if (f != stdout)
            fclose(f);
        else
            fflush(stdout);
    }
    /* Write once with faults applied, then keep updating. */
    if (fleet_tick(&fl, 0) < 0)
        goto out;
    rc = c->once ? 0 : run_loop(c, fleet_tick, &fl);
out:
    for (long i = 0; i < fl.n; i++)
        tern_simfs_free(fl.fs[i], 0);
    tern_free(fl.fs);
    return rc;
}

/* The index in names (NULL-terminated, names[0] = "ok") of the fault given
 * with --fault to a single-device command: 0 without --fault, -1 when the
 * name is not in the list. */
static int device_fault(const struct common *c, const char *const *names)
{
    if (c->nfaults == 0)
        return 0;
    for (int i = 0; names[i]; i++)
        if (strcmp(c->faults[0], names[i]) == 0)
            return i;
    return -1;
}

#ifdef TERN_SIM_WITH_MODBUS
static int cmd_modbus(struct common *c)
{
    static const char *const names[] = {"ok", "exception", "disconnect", "slow",
                                        "stuck", "garbage", "nan", NULL};
    int fault = device_fault(c, names);
    if (fault < 0)
        return bad_usage("unknown modbus fault", c->faults[0]);
    char err[256], path[128];
    int port = 0;
    struct tern_sim_modbus *s;
    if (c->rtu)
        s = tern_sim_modbus_rtu_start(c->unit ? (int)c->unit : 1, (uint64_t)c->seed, path,
                                      sizeof path, err, sizeof err);
    else
        s = tern_sim_modbus_start(c->port ? (int)c->port : 1502, 20, &port, (uint64_t)c->seed,
                                  err, sizeof err);
    if (!s) {
        fprintf(stderr, "tern-sim: %s\n", err);
        return 1;
    }
    tern_sim_modbus_fault(s, (enum tern_sim_modbus_fault)fault,
                          c->delay_ms > 0 ? (int)c->delay_ms : 2000);
    if (c->rtu)
        printf("modbus rtu %s 9600 8N1 unit %ld\n", path, c->unit ? c->unit : 1);
    else
        printf("modbus tcp 127.0.0.1:%d\n", port);
    fflush(stdout);
    int rc = run_loop(c, NULL, NULL);
    tern_sim_modbus_stop(s);
    return rc;
}

#else
static int cmd_modbus(struct common *c)
{
    (void)c;
    fprintf(stderr, "tern-sim: built without Modbus support (TERN_WITH_MODBUS=OFF)\n");
    return 1;
}
#endif

static int cmd_serial(struct common *c)
{
    static const char *const names[] = {"ok", "garbage", "corrupt", "silent",
                                        "stuck", "disconnect", NULL};
    int fault = device_fault(c, names);
    if (fault < 0)
        return bad_usage("unknown serial fault", c->faults[0]);
    enum tern_sim_serial_format fmt = SIMSER_KV;
    if (c->format && strcmp(c->format, "csv") == 0)
        fmt = SIMSER_CSV;
    else if (c->format && strcmp(c->format, "kv") != 0)
        return bad_usage("--format must be kv or csv", c->format);
    char err[256];
    struct tern_sim_serial *s =
        tern_sim_serial_start(fmt, (int)c->interval_ms, (uint64_t)c->seed, err, sizeof err);
    if (!s) {
        fprintf(stderr, "tern-sim: %s\n", err);
        return 1;
    }
    if (c->link) {
        unlink(c->link);
        if (symlink(tern_sim_serial_path(s), c->link) < 0)
            fprintf(stderr, "tern-sim: %s: %s\n", c->link, strerror(errno));
    }
    printf("serial %s\n", tern_sim_serial_path(s));
    fflush(stdout);
    if (fault != SIMSER_DISCONNECT)
        tern_sim_serial_fault(s, (enum tern_sim_serial_fault)fault);
    int rc = 0;
    int64_t start = tern_mono_ms();
    while (!g_stop && (c->duration_ms < 0 || tern_mono_ms() - start < c->duration_ms)) {
        struct tern_sim_serial_truth t;
        tern_sim_serial_truth(s, &t);
        if (fault == SIMSER_DISCONNECT && t.lines > 0) {
            tern_sim_serial_fault(s, SIMSER_DISCONNECT);
            fault = 0;
        }
        tern_sleep_ms(100, &g_stop);
    }
    if (c->link)
        unlink(c->link);
    tern_sim_serial_stop(s);
    return rc;
}

static int cmd_bme280(struct common *c)
{
    static const char *const names[] = {"ok", "bus_error", "flaky", "disconnect", "stuck",
                                        "slow", "garbage", "wrong_id", NULL};
    int fault = device_fault(c, names);
    if (fault < 0)
        return bad_usage("unknown bme280 fault", c->faults[0]);
    struct tern_sim_bme280 *m = tern_sim_bme280_new((uint64_t)c->seed);
    if (!m)
        return 1;
    tern_sim_bme280_set(m, c->t_c, c->p_pa, c->h_pct);
    tern_sim_bme280_fault(m, (enum tern_sim_bme280_fault)fault, 0.5);
    struct tern_bme280 dev;
    struct tern_bme280_sample x;
    char err[256];
    int rc = 1;
    if (tern_bme280_init(&dev, tern_sim_bme280_bus(m), 1, err, sizeof err) < 0 ||
        tern_bme280_measure(&dev, &x, err, sizeof err) < 0) {
        printf("error: %s\n", err);
    } else {
        uint8_t d[8];
        tern_sim_bme280_bus(m).ops->read(m, BME280_REG_DATA, d, sizeof d, err, sizeof err);
        printf("set:      %.2f Cel  %.2f Pa  %.2f %%RH\n", c->t_c, c->p_pa, c->h_pct);
        printf("raw:      adc_T=%u adc_P=%u adc_H=%u\n",
               (unsigned)(d[3] << 12 | d[4] << 4 | d[5] >> 4),
               (unsigned)(d[0] << 12 | d[1] << 4 | d[2] >> 4), (unsigned)(d[6] << 8 | d[7]));
        printf("measured: %.2f Cel  %.2f Pa  %.2f %%RH\n", x.temperature_c, x.pressure_pa,
               x.humidity_pct);
        rc = 0;
    }
    tern_sim_bme280_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    tern_log_init("tern-sim", TERN_LOG_INFO, 0);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    struct common c = {.interval_ms = 1000, .duration_ms = -1, .seed = 1,
                       .t_c = 25.0, .p_pa = 100000.0, .h_pct = 50.0};
    int rc = parse_args(argc - 1, argv + 1, &c);
    if (rc)
        return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "sysfs") == 0)
        return cmd_fleet(&c, 1);
    if (strcmp(cmd, "fleet") == 0)
        return cmd_fleet(&c, 0);
    if (strcmp(cmd, "modbus") == 0)
        return cmd_modbus(&c);
    if (strcmp(cmd, "serial") == 0)
        return cmd_serial(&c);
    if (strcmp(cmd, "bme280") == 0)
        return cmd_bme280(&c);
    return bad_usage("unknown command", cmd);
}
