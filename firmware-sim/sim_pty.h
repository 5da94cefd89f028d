/* sim_pty.h - pseudo-terminals standing in for serial lines, for the
 * simulators that a driver reaches through a tty (serial MCU, Modbus RTU).
 * Internal to firmware-sim. */
#ifndef TERN_SIM_PTY_H
#define TERN_SIM_PTY_H

#include <stddef.h>

/* Opens a pty master (close-on-exec, not the controlling tty) into *master
 * and writes its slave's path ("/dev/pts/N") to path[cap]. 0, or -1 with
 * errno set; *master may then be an open fd the caller must close. */
int tern_sim_pty_open(int *master, char *path, size_t cap);

/* Opens the slave at path in raw mode: no echo, no line editing, no CR/LF
 * translation, so bytes pass unchanged and wait there for the driver. The
 * fd (the caller's to close), or -1 with errno set and nothing open. */
int tern_sim_pty_open_raw(const char *path);

#endif
