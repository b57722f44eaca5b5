/* Logging and the per-thread error message. */
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum lg_level min_level = LG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char last_error[512];

void lg_log_set_level(enum lg_level level) { min_level = level; }

void lg_log(enum lg_level level, const char *fmt, ...)
{
  static const char *const names[] = { "debug", "info", "warn", "error" };
  if (level < min_level)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  pthread_mutex_lock(&log_lock);
  fprintf(stderr, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s %s\n",
          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
          tm.tm_sec, ts.tv_nsec / 1000000, names[level], msg);
  pthread_mutex_unlock(&log_lock);
}

void lg_set_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
}

const char *lg_get_error(void) { return last_error; }

char *lg_safe(const char *in, char *out, size_t outlen)
{
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (; *in && n + 5 < outlen; in++) {
    unsigned char ch = (unsigned char)*in;
    if (ch <= 0x20 || ch == 0x7f || ch == '"' || ch == '\\' || ch == '=') {
      out[n++] = '\\';
      out[n++] = 'x';
      out[n++] = hex[ch >> 4];
      out[n++] = hex[ch & 15];
    } else {
      out[n++] = (char)ch;
    }
  }
  out[n] = '\0';
  return out;
}
