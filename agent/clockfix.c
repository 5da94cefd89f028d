/* clockfix.c - see clockfix.h. */
#include "clockfix.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "sensor.h"

static struct {
    int mode;
    int active;
    char boot_id[64];
    char path[512];
    int64_t floor_seq;
    int have_offset;
    int64_t offset_then;  /* utc - boottime while unsynchronised */
    int logged;
} g;

int64_t tern_boottime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void read_boot_id(char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    if (!fgets(buf, (int)cap, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
}

void tern_clockfix_init(const char *data_dir, int mode, int64_t durable_seq)
{
    memset(&g, 0, sizeof g);
    g.mode = mode;
    g.floor_seq = durable_seq;
    if (mode == TERN_CLOCK_OFF)
        return;
    g.active = 1;
    read_boot_id(g.boot_id, sizeof g.boot_id);
    snprintf(g.path, sizeof g.path, "%s/clock.state", data_dir);
    FILE *f = fopen(g.path, "r");
    if (f) {
        /* An earlier run in this boot recorded the offset and the first seq
         * of the boot: everything after that seq shares the offset. */
        char boot[64];
        long long off, floor;
        if (fscanf(f, "%63s %lld %lld", boot, &off, &floor) == 3 && g.boot_id[0] &&
            strcmp(boot, g.boot_id) == 0) {
            g.have_offset = 1;
            g.offset_then = off;
            g.floor_seq = floor;
        }
        fclose(f);
    }
}

void tern_clockfix_tick(void)
{
    if (!g.active || g.have_offset || !tern_clock_unsynced(g.mode))
        return;
    g.offset_then = tern_utc_ms() - tern_boottime_ms();
    g.have_offset = 1;
    TERN_WARN("clock: the system clock is not synchronised; readings are flagged clock_unsynced "
              "until it is, and corrected if still queued then");
    FILE *f = fopen(g.path, "w");
    if (f) {
        fprintf(f, "%s %" PRId64 " %" PRId64 "\n", g.boot_id[0] ? g.boot_id : "unknown", g.offset_then,
                g.floor_seq);
        fclose(f);
    }
}

size_t tern_clockfix_correct(struct tern_reading *r, size_t n, int64_t floor_seq,
                             int64_t offset_then, int64_t offset_now)
{
    size_t fixed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(r[i].flags & TERN_READING_CLOCK_UNSYNCED))
            continue;
        if (r[i].seq <= floor_seq)
            continue; /* taken in an earlier boot: its offset is unknown */
        r[i].ts_ms += offset_now - offset_then;
        r[i].flags &= ~(uint32_t)TERN_READING_CLOCK_UNSYNCED;
        fixed++;
    }
    return fixed;
}

size_t tern_clockfix_apply(struct tern_reading *r, size_t n)
{
    if (!g.active || !g.have_offset || tern_clock_unsynced(g.mode))
        return 0;
    int64_t now = tern_utc_ms() - tern_boottime_ms();
    size_t fixed = tern_clockfix_correct(r, n, g.floor_seq, g.offset_then, now);
    if (fixed && !g.logged) {
        TERN_INFO("clock: synchronised (stepped %+" PRId64 " ms); correcting queued readings",
                  now - g.offset_then);
        g.logged = 1;
    }
    return fixed;
}
