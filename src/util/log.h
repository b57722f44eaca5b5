/* Logging to stderr (logfmt-like lines) and a per-thread last error. */
#ifndef LUNGATE_LOG_H
#define LUNGATE_LOG_H

#include <stdarg.h>

enum lg_level { LG_DEBUG, LG_INFO, LG_WARN, LG_ERROR };

void lg_log_set_level(enum lg_level level);
void lg_log(enum lg_level level, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

#define lg_debug(...) lg_log(LG_DEBUG, __VA_ARGS__)
#define lg_info(...)  lg_log(LG_INFO, __VA_ARGS__)
#define lg_warn(...)  lg_log(LG_WARN, __VA_ARGS__)
#define lg_err(...)   lg_log(LG_ERROR, __VA_ARGS__)

/* Record why the last call on this thread failed (libnbd's set_error style). */
void lg_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *lg_get_error(void);

#endif
