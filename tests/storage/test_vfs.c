/* test_vfs.c - see test_vfs.h. Forwards everything to the default VFS
 * except writes, syncs, truncates, sizes and deletes. No shared-memory
 * methods (iVersion 1): the store runs WAL in EXCLUSIVE locking mode, which
 * needs none, and this proves it. */
#include "test_vfs.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct pw {
    struct pw *next;
    sqlite3_int64 off;
    int n;
    unsigned char data[];
};

struct sfile {
    sqlite3_file base;
    sqlite3_file *real;
    struct pw *head, *tail;  /* unsynced writes, oldest first */
    sqlite3_int64 size;      /* logical size (real + pending) */
    struct sfile *next_open;
};

static sqlite3_vfs *g_real;
static sqlite3_vfs g_vfs;
static int g_buffering;
static int g_crashed;
static sqlite3_int64 g_quota = -1;
static long g_full_errors;
static struct sfile *g_open;
static long g_countdown;      /* ops until an armed cut; 0 = none */
static int g_keep_percent;
static int g_write_error;

long testvfs_crash(int keep_percent);

/* Counts one write or sync towards an armed cut; 1 when the cut happens now. */
static int cut_now(void)
{
    if (g_countdown <= 0 || g_crashed)
        return 0;
    if (--g_countdown > 0)
        return 0;
    testvfs_crash(g_keep_percent);
    return 1;
}

static sqlite3_int64 open_bytes(void)
{
    sqlite3_int64 t = 0;
    for (struct sfile *f = g_open; f; f = f->next_open)
        t += f->size;
    return t;
}

static int apply(struct sfile *f, struct pw *w)
{
    return f->real->pMethods->xWrite(f->real, w->data, w->n, w->off);
}

static int flush_pending(struct sfile *f)
{
    int rc = SQLITE_OK;
    while (f->head) {
        struct pw *w = f->head;
        f->head = w->next;
        if (rc == SQLITE_OK)
            rc = apply(f, w);
        free(w);
    }
    f->tail = NULL;
    return rc;
}

static int s_close(sqlite3_file *pf)
{
    struct sfile *f = (struct sfile *)pf;
    /* A clean close hands the data to the OS, which writes it back in time. */
    if (!g_crashed)
        flush_pending(f);
    else
        while (f->head) {
            struct pw *w = f->head;
            f->head = w->next;
            free(w);
        }
    for (struct sfile **pp = &g_open; *pp; pp = &(*pp)->next_open)
        if (*pp == f) {
            *pp = f->next_open;
            break;
        }
    int rc = f->real->pMethods->xClose(f->real);
    sqlite3_free(f->real);
    return rc;
}

static int s_read(sqlite3_file *pf, void *buf, int n, sqlite3_int64 off)
{
    struct sfile *f = (struct sfile *)pf;
    int rc = f->real->pMethods->xRead(f->real, buf, n, off);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
        return rc;
    for (struct pw *w = f->head; w; w = w->next) {
        sqlite3_int64 a = w->off > off ? w->off : off;
        sqlite3_int64 b = w->off + w->n < off + n ? w->off + w->n : off + n;
        if (a < b)
            memcpy((unsigned char *)buf + (a - off), w->data + (a - w->off), (size_t)(b - a));
    }
    if (rc == SQLITE_IOERR_SHORT_READ && off + n <= f->size)
        rc = SQLITE_OK;
    return rc;
}

static int s_write(sqlite3_file *pf, const void *buf, int n, sqlite3_int64 off)
{
    struct sfile *f = (struct sfile *)pf;
    if (g_crashed || cut_now())
        return SQLITE_OK; /* the machine is off: nothing reaches the disk */
    if (g_write_error)
        return g_write_error;
    sqlite3_int64 end = off + n;
    if (g_quota >= 0 && end > f->size && open_bytes() + (end - f->size) > g_quota) {
        g_full_errors++;
        return SQLITE_FULL;
    }
    int rc = SQLITE_OK;
    if (g_buffering) {
        struct pw *w = malloc(sizeof *w + (size_t)n);
        if (!w)
            return SQLITE_IOERR_NOMEM;
        w->next = NULL;
        w->off = off;
        w->n = n;
        memcpy(w->data, buf, (size_t)n);
        if (f->tail)
            f->tail->next = w;
        else
            f->head = w;
        f->tail = w;
    } else {
        rc = f->real->pMethods->xWrite(f->real, buf, n, off);
    }
    if (rc == SQLITE_OK && end > f->size)
        f->size = end;
    return rc;
}

static int s_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    struct sfile *f = (struct sfile *)pf;
    if (g_crashed)
        return SQLITE_OK;
    /* Truncation is treated as reaching the disk with what precedes it:
     * SQLite only truncates right after a sync in the paths the store uses. */
    int rc = flush_pending(f);
    if (rc == SQLITE_OK)
        rc = f->real->pMethods->xTruncate(f->real, size);
    if (rc == SQLITE_OK)
        f->size = size;
    return rc;
}

static int s_sync(sqlite3_file *pf, int flags)
{
    struct sfile *f = (struct sfile *)pf;
    if (g_crashed || cut_now())
        return SQLITE_OK;
    if (g_write_error)
        return SQLITE_IOERR_FSYNC;
    int rc = flush_pending(f);
    if (rc == SQLITE_OK)
        rc = f->real->pMethods->xSync(f->real, flags);
    return rc;
}

static int s_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    *size = ((struct sfile *)pf)->size;
    return SQLITE_OK;
}

static int s_lock(sqlite3_file *pf, int l)
{
    struct sfile *f = (struct sfile *)pf;
    return f->real->pMethods->xLock(f->real, l);
}
static int s_unlock(sqlite3_file *pf, int l)
{
    struct sfile *f = (struct sfile *)pf;
    return f->real->pMethods->xUnlock(f->real, l);
}
static int s_check_reserved(sqlite3_file *pf, int *out)
{
    struct sfile *f = (struct sfile *)pf;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}
static int s_file_control(sqlite3_file *pf, int op, void *arg)
{
    struct sfile *f = (struct sfile *)pf;
    /* Size hints and chunking would grow the real file behind our back. */
    if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE)
        return SQLITE_OK;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}
static int s_sector_size(sqlite3_file *pf)
{
    struct sfile *f = (struct sfile *)pf;
    return f->real->pMethods->xSectorSize(f->real);
}
static int s_device_chars(sqlite3_file *pf)
{
    struct sfile *f = (struct sfile *)pf;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static const sqlite3_io_methods s_methods = {
    .iVersion = 1,
    .xClose = s_close,
    .xRead = s_read,
    .xWrite = s_write,
    .xTruncate = s_truncate,
    .xSync = s_sync,
    .xFileSize = s_file_size,
    .xLock = s_lock,
    .xUnlock = s_unlock,
    .xCheckReservedLock = s_check_reserved,
    .xFileControl = s_file_control,
    .xSectorSize = s_sector_size,
    .xDeviceCharacteristics = s_device_chars,
};

static int s_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *pf, int flags, int *out)
{
    (void)vfs;
    struct sfile *f = (struct sfile *)pf;
    memset(f, 0, sizeof *f);
    f->real = sqlite3_malloc(g_real->szOsFile);
    if (!f->real)
        return SQLITE_NOMEM;
    memset(f->real, 0, (size_t)g_real->szOsFile);
    int rc = g_real->xOpen(g_real, name, f->real, flags, out);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods)
            f->real->pMethods->xClose(f->real);
        sqlite3_free(f->real);
        f->real = NULL;
        return rc;
    }
    sqlite3_int64 sz = 0;
    f->real->pMethods->xFileSize(f->real, &sz);
    f->size = sz;
    f->base.pMethods = &s_methods;
    f->next_open = g_open;
    g_open = f;
    return SQLITE_OK;
}

static int s_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    if (g_crashed)
        return SQLITE_OK;
    return g_real->xDelete(g_real, name, sync_dir);
}

int testvfs_register(void)
{
    if (g_real)
        return 0;
    g_real = sqlite3_vfs_find(NULL);
    if (!g_real)
        return -1;
    g_vfs = *g_real;
    g_vfs.iVersion = g_real->iVersion < 3 ? g_real->iVersion : 3;
    g_vfs.szOsFile = (int)sizeof(struct sfile);
    g_vfs.zName = TESTVFS_NAME;
    g_vfs.pNext = NULL;
    g_vfs.xOpen = s_open;
    g_vfs.xDelete = s_delete;
    return sqlite3_vfs_register(&g_vfs, 0) == SQLITE_OK ? 0 : -1;
}

void testvfs_set_buffering(int on) { g_buffering = on; }

long testvfs_crash(int keep_percent)
{
    long dropped = 0;
    for (struct sfile *f = g_open; f; f = f->next_open) {
        while (f->head) {
            struct pw *w = f->head;
            f->head = w->next;
            if (rand() % 100 < keep_percent)
                apply(f, w);
            else
                dropped++;
            free(w);
        }
        f->tail = NULL;
    }
    g_crashed = 1;
    return dropped;
}

void testvfs_recover(void)
{
    g_crashed = 0;
    g_countdown = 0;
}

void testvfs_crash_after(long nth, int keep_percent)
{
    g_countdown = nth;
    g_keep_percent = keep_percent;
}

int testvfs_crashed(void) { return g_crashed; }

void testvfs_set_quota(int64_t bytes) { g_quota = bytes; }

void testvfs_set_write_error(int rc) { g_write_error = rc; }

long testvfs_full_errors(void) { return g_full_errors; }
