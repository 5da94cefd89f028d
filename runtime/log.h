/* log.h - leveled logging to stderr or syslog, shared by every Tern program.
 * Errors are logged once, at the edge where they are handled. */
#ifndef TERN_LOG_H
#define TERN_LOG_H

enum tern_log_level { TERN_LOG_ERROR = 0, TERN_LOG_WARN, TERN_LOG_INFO, TERN_LOG_DEBUG };

/* ident: program name; use_syslog: 0 = stderr with UTC timestamps. */
void tern_log_init(const char *ident, enum tern_log_level level, int use_syslog);
void tern_log_set_level(enum tern_log_level level);
/* Parses "error", "warn", "info", "debug"; -1 when unknown. */
int tern_log_parse_level(const char *s);
void tern_log(enum tern_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define TERN_ERROR(...) tern_log(TERN_LOG_ERROR, __VA_ARGS__)
#define TERN_WARN(...) tern_log(TERN_LOG_WARN, __VA_ARGS__)
#define TERN_INFO(...) tern_log(TERN_LOG_INFO, __VA_ARGS__)
#define TERN_DEBUG(...) tern_log(TERN_LOG_DEBUG, __VA_ARGS__)

#endif
