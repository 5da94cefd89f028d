/* fuzz_storage_open.c - libFuzzer target for opening a queue file: any bytes
 * in the database file must open (as a queue, or moved aside and replaced by
 * a fresh one), never crash, hang or leak; whatever opened must then append,
 * commit and read back what it was given. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "storage.h"

static char g_dir[256];

/* Empties the scratch directory (the db, its WAL, moved-aside files). */
static void clean_dir(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[600];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
}

static void remove_dir(void)
{
    clean_dir();
    rmdir(g_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(g_dir, sizeof g_dir, "%s/tern-fuzz-storage-XXXXXX", base);
        if (!mkdtemp(g_dir))
            abort();
        tern_log_init("fuzz_storage_open", TERN_LOG_ERROR, 0);
        atexit(remove_dir);
    }
    clean_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/queue.db", g_dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    const char *const ups[] = {"mqtt", "kafka"};
    struct tern_store_options o = {.path = path, .uplinks = ups, .n_uplinks = 2,
                                   .max_bytes = 1u << 20};
    tern_store *s = NULL;
    char err[256];
    if (tern_store_open(&o, &s, err, sizeof err) != 0)
        return 0; /* refused cleanly (e.g. an unusable file): fine */
    struct tern_reading r[3];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++) {
        tern_copy_field(r[i].device_id, sizeof r[i].device_id, "fuzz");
        tern_copy_field(r[i].sensor, sizeof r[i].sensor, "s");
        tern_copy_field(r[i].metric, sizeof r[i].metric, "m");
        r[i].value = i;
        r[i].ts_ms = 1700000000000 + i;
    }
    if (tern_store_append(s, r, 3) != 0 || tern_store_flush(s) != 0)
        abort();
    int64_t after = r[0].seq - 1;
    struct tern_reading out[4];
    size_t n = 0;
    if (tern_store_read(s, 0, after, out, 4, &n) != 0 || n != 3 || out[2].seq != r[2].seq ||
        strcmp(out[1].sensor, "s") != 0)
        abort();
    tern_store_ack(s, 0, r[0].seq, r[2].seq);
    tern_store_ack(s, 1, r[1].seq, r[1].seq);
    tern_store_tick(s, tern_mono_ms());
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    tern_store_close(s);
    return 0;
}
