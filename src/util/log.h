/* Logging to stderr as logfmt lines, and a per-thread last error.
 *
 *   ts=2026-11-24T02:40:00.123Z level=info msg="login" initiator=iqn.x:pc1 peer=10.0.0.7:51234
 *
 * lg_kv() writes a constant message and key=value fields (the fields format is
 * printf's; a value that may hold spaces or comes from a client goes through
 * LG_Q() or lg_safe()).  lg_log() and its macros write free text, quoted and
 * escaped, as msg="..." (a line no caller can break). */
#ifndef LUNGATE_LOG_H
#define LUNGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum lg_level { LG_DEBUG, LG_INFO, LG_WARN, LG_ERROR };

void lg_log_set_level(enum lg_level level);
/* "error", "warn", "info" or "debug"; -1 for anything else. */
int lg_log_parse_level(const char *name, enum lg_level *out);
void lg_log(enum lg_level level, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
/* A line with msg (a constant, quoted) and fields ("key=value ..."). */
void lg_kv(enum lg_level level, const char *msg, const char *fields, ...)
  __attribute__((format(printf, 3, 4)));

#define lg_debug(...) lg_log(LG_DEBUG, __VA_ARGS__)
#define lg_info(...)  lg_log(LG_INFO, __VA_ARGS__)
#define lg_warn(...)  lg_log(LG_WARN, __VA_ARGS__)
#define lg_err(...)   lg_log(LG_ERROR, __VA_ARGS__)

/* Copy an untrusted string (an initiator name) for a log line or a terminal:
 * control bytes, spaces, '"', '\\' and '=' become \xHH, so it can neither
 * forge a line or field nor send escape sequences.  Returns out. */
char *lg_safe(const char *in, char *out, size_t outlen);
#define LG_SAFE_MAX 1024                  /* enough for any iSCSI name */

/* A logfmt value: in as it is when it holds only safe bytes, else in double
 * quotes with '"', '\\' and control bytes escaped.  Returns out. */
char *lg_quote(const char *in, char *out, size_t outlen);
#define LG_Q_MAX 512
/* lg_quote into a buffer that lives until the end of the enclosing block. */
#define LG_Q(s) lg_quote((s), (char[LG_Q_MAX]){ 0 }, LG_Q_MAX)

/* From now on a fatal signal (an abort, as from a C++ library's uncaught
 * exception, or a crash) first writes a line saying which, and the backtrace
 * of the thread it hit, to stderr; then it ends the process as it would have.
 * Under AddressSanitizer its own report of a crash is kept (aborts only). */
void lg_log_fatal_signals(void);

/* Record why the last call on this thread failed (libnbd's set_error style). */
void lg_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *lg_get_error(void);

#endif
