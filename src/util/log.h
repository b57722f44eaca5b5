/* Logging to stderr (logfmt-like lines) and a per-thread last error. */
#ifndef LUNGATE_LOG_H
#define LUNGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum lg_level { LG_DEBUG, LG_INFO, LG_WARN, LG_ERROR };

void lg_log_set_level(enum lg_level level);
void lg_log(enum lg_level level, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

#define lg_debug(...) lg_log(LG_DEBUG, __VA_ARGS__)
#define lg_info(...)  lg_log(LG_INFO, __VA_ARGS__)
#define lg_warn(...)  lg_log(LG_WARN, __VA_ARGS__)
#define lg_err(...)   lg_log(LG_ERROR, __VA_ARGS__)

/* Copy an untrusted string (an initiator name) for a log line or a terminal:
 * control bytes, spaces, '"', '\\' and '=' become \xHH, so it can neither
 * forge a line or field nor send escape sequences.  Returns out. */
char *lg_safe(const char *in, char *out, size_t outlen);
#define LG_SAFE_MAX 1024                  /* enough for any iSCSI name */

/* Record why the last call on this thread failed (libnbd's set_error style). */
void lg_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *lg_get_error(void);

#endif
