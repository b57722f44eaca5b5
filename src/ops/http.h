/* HTTP(S) servers of the gateway (the /metrics endpoint and the web
 * console), on libmicrohttpd: one place that turns "ADDR:PORT" and an
 * optional certificate and key into a running daemon. */
#ifndef LUNGATE_OPS_HTTP_H
#define LUNGATE_OPS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>

struct lg_http_opts {
  const char *what;                  /* "--metrics", "--web": for messages */
  const char *addr;                  /* "ADDR:PORT", "[V6]:PORT" */
  const char *cert_file, *key_file;  /* both or neither: HTTPS */
  bool thread_per_connection;        /* handlers may block (long actions) */
  unsigned connection_limit;
  unsigned timeout_sec;              /* idle connections are closed */
  size_t memory_limit;               /* per connection: bounds the request head */
  MHD_AccessHandlerCallback handler;
  void *handler_cls;
  MHD_RequestCompletedCallback completed;   /* may be NULL */
  void *completed_cls;
};

struct sockaddr_storage;
/* "ADDR:PORT" or "[V6]:PORT" (numeric, port 1-65535) into *ss; *loopback
 * when ADDR is in 127.0.0.0/8 or ::1.  -1 when it is not such a string. */
int lg_http_parse_addr(const char *spec, struct sockaddr_storage *ss, bool *loopback);

struct lg_http {
  struct MHD_Daemon *d;
  char *cert, *key;                  /* PEM, kept while the daemon runs */
};

/* Start a daemon.  NULL with a message in *err (malloc'd). *loopback says
 * whether it listens on a loopback address only. */
struct lg_http *lg_http_start(const struct lg_http_opts *o, bool *loopback, char **err);
/* Stop it (waits for its threads); NULL: no-op. */
void lg_http_stop(struct lg_http *h);

/* Queue a response: status, content type, extra headers (name, value
 * pairs, NULL-terminated; headers may be NULL), body of len bytes, which is
 * taken over (freed) when owned and copied when not.  Every answer carries
 * Cache-Control: no-store and X-Content-Type-Options: nosniff. */
enum MHD_Result lg_http_send(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *const *headers, const void *body, size_t len,
                             bool owned);

/* The peer's address as text ("127.0.0.1", "::1"). */
void lg_http_peer(struct MHD_Connection *c, char *out, size_t len);

#endif
