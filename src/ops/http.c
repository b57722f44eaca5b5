/* HTTP(S) daemons on libmicrohttpd, for /metrics and the web console. */
#include "ops/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iscsi/server.h"
#include "util/log.h"

#define HTTP_FILE_MAX (1 << 20)      /* a certificate or key file */

/* The whole of a small file, NUL-terminated; NULL with errno. */
static char *read_small_file(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  char *buf = malloc(HTTP_FILE_MAX + 1);
  size_t n = 0;
  ssize_t r = 0;
  while (buf && n < HTTP_FILE_MAX && (r = read(fd, buf + n, HTTP_FILE_MAX - n)) > 0)
    n += (size_t)r;
  int e = errno;
  close(fd);
  if (!buf || r < 0) {
    free(buf);
    errno = buf ? e : ENOMEM;
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  lg_kv(LG_DEBUG, "http: libmicrohttpd", "server=%s msg=%s", (const char *)cls, LG_Q(msg));
}

int lg_http_parse_addr(const char *spec, struct sockaddr_storage *ss, bool *loopback)
{
  char host[64];
  unsigned port;
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof *ss);
  if (lg_parse_hostport(spec, host, sizeof host, &port) < 0 || !strchr(spec, ':') || !port)
    return -1;
  if (!strchr(spec, ']') && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    return 0;
  }
  if (strstr(spec, "]:") && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    return 0;
  }
  return -1;
}

struct lg_http *lg_http_start(const struct lg_http_opts *o, bool *loopback, char **err)
{
  struct sockaddr_storage ss;
  bool lo = false;
  *err = NULL;
  if (lg_http_parse_addr(o->addr, &ss, &lo) < 0) {
    if (asprintf(err, "%s %s: give ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080", o->what,
                 o->addr) < 0)
      *err = NULL;
    return NULL;
  }
  if (!o->cert_file != !o->key_file) {
    if (asprintf(err, "%s: HTTPS needs both a certificate and its key", o->what) < 0)
      *err = NULL;
    return NULL;
  }
  char *cert = NULL, *key = NULL;
  if (o->cert_file && (!(cert = read_small_file(o->cert_file)) ||
                       !(key = read_small_file(o->key_file)))) {
    if (asprintf(err, "%s: %s: %s", o->what, cert ? o->key_file : o->cert_file,
                 strerror(errno)) < 0)
      *err = NULL;
    free(cert);
    return NULL;
  }
  unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_INTERNAL_POLLING_THREAD;
  flags |= o->thread_per_connection ? MHD_USE_THREAD_PER_CONNECTION : MHD_USE_AUTO;
  if (ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (cert)
    flags |= MHD_USE_TLS;
  /* options that differ between HTTP and HTTPS go last, so one call serves both */
  struct MHD_OptionItem tls[] = {
    { cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert },
    { MHD_OPTION_HTTPS_MEM_KEY, 0, key },
    { MHD_OPTION_END, 0, NULL },
  };
  struct MHD_Daemon *d = MHD_start_daemon(
    flags, 0, NULL, NULL, o->handler, o->handler_cls,
    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
    MHD_OPTION_CONNECTION_LIMIT, o->connection_limit,
    MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_sec,
    MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->memory_limit,
    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)o->what,
    MHD_OPTION_NOTIFY_COMPLETED, o->completed, o->completed_cls,
    MHD_OPTION_ARRAY, tls,
    MHD_OPTION_END);
  int e = errno;
  if (!d) {
    if (asprintf(err, "%s %s: cannot listen%s%s%s", o->what, o->addr, e ? ": " : "",
                 e ? strerror(e) : "", cert ? " (or the certificate or key is not valid PEM)"
                 : "") < 0)
      *err = NULL;
    free(cert);
    free(key);
    return NULL;
  }
  struct lg_http *h = calloc(1, sizeof *h);
  if (!h) {
    MHD_stop_daemon(d);
    free(cert);
    free(key);
    return NULL;
  }
  /* the certificate and key stay with the daemon until it stops */
  *h = (struct lg_http){ d, cert, key };
  *loopback = lo;
  return h;
}

void lg_http_stop(struct lg_http *h)
{
  if (!h)
    return;
  MHD_stop_daemon(h->d);
  free(h->cert);
  free(h->key);
  free(h);
}

enum MHD_Result lg_http_send(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *const *headers, const void *body, size_t len,
                             bool owned)
{
  /* always a malloc'd buffer libmicrohttpd frees: the one call that is
   * neither deprecated in 1.0 (Debian 13) nor missing from 0.9.75 (Debian 12) */
  void *buf = (void *)body;
  if (!owned && (buf = malloc(len ? len : 1)))
    memcpy(buf, body, len);
  if (!buf)
    return MHD_NO;
  struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, buf, free);
  if (!r) {
    free(buf);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
    MHD_add_response_header(r, headers[i], headers[i + 1]);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

void lg_http_peer(struct MHD_Connection *c, char *out, size_t len)
{
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(out, len, "?");
  if (!ci || !ci->client_addr)
    return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}
