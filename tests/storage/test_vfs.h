/* test_vfs.h - a SQLite VFS shim for the storage tests, registered as
 * "ternshim" over the default VFS. Two fault modes:
 *  - power loss: writes are held in memory until xSync; testvfs_crash()
 *    then keeps a random part of what was not synced and drops the rest,
 *    as a power cut does to the page cache (after SQLite's src/test6.c);
 *  - quota: writes that would grow the open files past a byte quota fail
 *    with SQLITE_FULL, as a full file system does. */
#ifndef TERN_TEST_VFS_H
#define TERN_TEST_VFS_H

#include <stdint.h>

#define TESTVFS_NAME "ternshim"

int testvfs_register(void);
/* Power-loss mode on/off (hold writes until xSync). */
void testvfs_set_buffering(int on);
/* Simulated power cut: each unsynced write survives with probability
 * keep_percent/100; every later write, sync, truncate and delete is
 * ignored until testvfs_recover(). Returns the number of writes dropped. */
long testvfs_crash(int keep_percent);
void testvfs_recover(void);
/* Arms a power cut inside the nth write or sync from now (so it can land in
 * the middle of a commit or checkpoint), keeping keep_percent of the
 * unsynced writes. testvfs_crashed() says whether it has happened. */
void testvfs_crash_after(long nth, int keep_percent);
int testvfs_crashed(void);
/* Quota over the bytes of all files open through the shim; < 0 = none. */
void testvfs_set_quota(int64_t bytes);
/* Every write and sync fails with rc (e.g. SQLITE_IOERR_WRITE, what a file
 * system remounted read-only or a dying card gives); 0 = off. */
void testvfs_set_write_error(int rc);
/* Writes refused with SQLITE_FULL so far. */
long testvfs_full_errors(void);

#endif
