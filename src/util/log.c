/* Logging (logfmt lines) and the per-thread error message. */
#include "util/log.h"

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define LG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LG_ASAN 1
#endif
#endif

static _Atomic int min_level = LG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char last_error[512];
static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* Only async-signal-safe calls: write, and backtrace_symbols_fd (backtrace
 * itself was called once at install time, so that libgcc is loaded). */
static void fatal_signal(int sig)
{
  static const char head[] = "level=error msg=\"fatal signal: the gateway ends; "
                             "the backtrace of the thread it hit follows\" signal=";
  const char *name = sig == SIGABRT ? "SIGABRT" : sig == SIGSEGV ? "SIGSEGV"
                     : sig == SIGBUS ? "SIGBUS" : sig == SIGILL ? "SIGILL" : "SIGFPE";
  ssize_t w = write(2, head, sizeof head - 1);
  w = write(2, name, strlen(name));
  w = write(2, "\n", 1);
  (void)w;
  void *frames[64];
  int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, 2);
  signal(sig, SIG_DFL); /* then as it would have ended: a core, the same status */
  raise(sig);
}

void lg_log_fatal_signals(void)
{
  void *warm[1];
  backtrace(warm, 1);
  struct sigaction sa = { .sa_handler = fatal_signal, .sa_flags = SA_RESETHAND };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGABRT, &sa, NULL);
#ifndef LG_ASAN /* (AddressSanitizer reports a crash itself, better) */
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  sigaction(SIGILL, &sa, NULL);
  sigaction(SIGFPE, &sa, NULL);
#endif
}

void lg_log_set_level(enum lg_level level) { atomic_store(&min_level, (int)level); }

int lg_log_parse_level(const char *name, enum lg_level *out)
{
  for (int i = LG_DEBUG; i <= LG_ERROR; i++)
    if (!strcmp(name, level_names[i])) {
      *out = (enum lg_level)i;
      return 0;
    }
  if (!strcmp(name, "warning"))
    return *out = LG_WARN, 0;
  return -1;
}

/* Append in to out[*n] as the inside of a quoted logfmt value. */
static void quote_into(const char *in, char *out, size_t *n, size_t outlen)
{
  static const char hex[] = "0123456789abcdef";
  for (; *in && *n + 6 < outlen; in++) {
    unsigned char ch = (unsigned char)*in;
    if (ch == '"' || ch == '\\') {
      out[(*n)++] = '\\';
      out[(*n)++] = (char)ch;
    } else if (ch == '\n') {
      out[(*n)++] = '\\';
      out[(*n)++] = 'n';
    } else if (ch < 0x20 || ch == 0x7f) {
      out[(*n)++] = '\\';
      out[(*n)++] = 'x';
      out[(*n)++] = hex[ch >> 4];
      out[(*n)++] = hex[ch & 15];
    } else {
      out[(*n)++] = (char)ch;
    }
  }
  out[*n] = '\0';
}

static void emit(enum lg_level level, const char *msg, const char *fields)
{
  struct timespec ts;
  struct tm tm;
  char qmsg[2048];
  size_t n = 0;
  quote_into(msg, qmsg, &n, sizeof qmsg);
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  pthread_mutex_lock(&log_lock);
  fprintf(stderr, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"%s%s\n",
          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
          tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], qmsg,
          fields && *fields ? " " : "", fields ? fields : "");
  pthread_mutex_unlock(&log_lock);
}

void lg_log(enum lg_level level, const char *fmt, ...)
{
  if ((int)level < atomic_load(&min_level))
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  emit(level, msg, NULL);
}

void lg_kv(enum lg_level level, const char *msg, const char *fields, ...)
{
  if ((int)level < atomic_load(&min_level))
    return;
  char buf[2048];
  va_list ap;
  va_start(ap, fields);
  vsnprintf(buf, sizeof buf, fields, ap);
  va_end(ap);
  /* a field value is the caller's to escape; a raw newline must still never
   * start a line of its own */
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  emit(level, msg, buf);
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

char *lg_quote(const char *in, char *out, size_t outlen)
{
  bool bare = *in != '\0';
  for (const char *p = in; *p && bare; p++) {
    unsigned char ch = (unsigned char)*p;
    bare = ch > 0x20 && ch != 0x7f && ch != '"' && ch != '\\' && ch != '=';
  }
  if (bare && strlen(in) < outlen) {
    memcpy(out, in, strlen(in) + 1);
    return out;
  }
  size_t n = 0;
  out[n++] = '"';
  quote_into(in, out, &n, outlen - 1);
  out[n++] = '"';
  out[n] = '\0';
  return out;
}
