/* Prometheus metrics: the counters the command path bumps, their text
 * exposition (format 0.0.4), and a minimal HTTP/1.1 responder for it.
 *
 * The responder is one thread around poll(2): at most MX_CLIENTS connections,
 * each allowed MX_REQ_MAX bytes of request head and MX_TIMEOUT_MS from accept
 * to the last byte of its answer; when all slots are taken the oldest
 * connection is closed.  It answers GET or HEAD of /metrics with the text,
 * any other path with 404 and any other method with 405, and closes every
 * connection after one answer.  Nothing a client sends is echoed back.
 */
#include "ops/metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backends/cow.h"
#include "iscsi/iscsi.h"
#include "iscsi/server.h"
#include "target/model.h"
#include "target/overlay_cmd.h"
#include "util/log.h"

#define MX_CLIENTS 8
#define MX_REQ_MAX 4096
#define MX_TIMEOUT_MS 5000

/* ---- counters (the hot path) ---- */

static _Atomic uint64_t logins_total, login_refusals_total;
static const uint32_t lat_bounds_us[LG_LAT_BUCKETS - 1] = LG_LAT_BOUNDS_US;

uint64_t lg_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static enum lg_op_kind op_kind(uint8_t opcode)
{
  switch (opcode) {
  case 0x08: case 0x28: case 0xa8: case 0x88:                 /* READ 6/10/12/16 */
    return LG_OP_READ;
  case 0x0a: case 0x2a: case 0xaa: case 0x8a:                 /* WRITE 6/10/12/16 */
  case 0x2e: case 0xae: case 0x8e:                            /* WRITE AND VERIFY */
  case 0x89:                                                  /* COMPARE AND WRITE */
    return LG_OP_WRITE;
  default:
    return LG_OP_OTHER;
  }
}

void lg_stats_command(struct lg_lun_stats *st, uint8_t opcode, uint8_t status,
                      uint32_t bytes_in, uint32_t bytes_out, uint64_t start_ns)
{
  if (!st)
    return;
  const memory_order rx = memory_order_relaxed;
  enum lg_op_kind k = op_kind(opcode);
  atomic_fetch_add_explicit(&st->commands[k], 1, rx);
  if (k == LG_OP_READ && bytes_in)
    atomic_fetch_add_explicit(&st->bytes_read, bytes_in, rx);
  if (k == LG_OP_WRITE && bytes_out)
    atomic_fetch_add_explicit(&st->bytes_written, bytes_out, rx);
  if (status == 0x02)
    atomic_fetch_add_explicit(&st->check_conditions, 1, rx);
  uint64_t ns = lg_now_ns() - start_ns, us = ns / 1000;
  unsigned b = 0;
  while (b < LG_LAT_BUCKETS - 1 && us > lat_bounds_us[b])
    b++;
  atomic_fetch_add_explicit(&st->latency[b], 1, rx);
  atomic_fetch_add_explicit(&st->latency_sum_ns, ns, rx);
}

void lg_stats_login(bool ok)
{
  atomic_fetch_add_explicit(ok ? &logins_total : &login_refusals_total, 1,
                            memory_order_relaxed);
}

/* ---- exposition ---- */

void lg_metrics_label(char *out, size_t outlen, const char *v)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (; *v && n + 4 < outlen; v++) {
    unsigned char ch = (unsigned char)*v;
    if (ch == '\\' || ch == '"') {
      out[n++] = '\\';
      out[n++] = (char)ch;
    } else if (ch == '\n') {
      out[n++] = '\\';
      out[n++] = 'n';
    } else if (ch < 0x20 || ch >= 0x7f || ch == '%') {
      out[n++] = '%';
      out[n++] = hex[ch >> 4];
      out[n++] = hex[ch & 15];
    } else {
      out[n++] = (char)ch;
    }
  }
  out[n] = '\0';
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct session_count {
  struct lg_model *m;
  unsigned *per_target;              /* by index in m->targets */
};

static void count_session(struct iscsi_session *s, void *arg)
{
  struct session_count *sc = arg;
  for (size_t i = 0; s->target && i < sc->m->n_targets; i++)
    if (s->target == &sc->m->targets[i])
      sc->per_target[i]++;
}

struct overlay_line {
  FILE *f;
  const char *tlabel;
  uint64_t lun;
};

/* lungate_overlay_allocated_bytes of one overlay file: an open view's live
 * figure, else the file's. */
static int overlay_line(struct lg_storage *so, const char *path, const struct cow_info *info,
                        void *arg)
{
  (void)path;
  struct overlay_line *ol = arg;
  if (!info->client[0])
    return 0;
  uint64_t bytes = info->allocated;
  lg_overlay_allocated_open(so, info->client, &bytes);
  char ilabel[3 * sizeof info->client + 1];
  lg_metrics_label(ilabel, sizeof ilabel, info->client);
  fprintf(ol->f, "lungate_overlay_allocated_bytes{target=\"%s\",lun=\"%llu\",initiator=\"%s\"} "
          "%llu\n", ol->tlabel, (unsigned long long)ol->lun, ilabel, (unsigned long long)bytes);
  return 0;
}

/* Process start time (seconds since the epoch), from /proc. */
static double process_start_time(void)
{
  char buf[1024];
  double btime = 0;
  FILE *f = fopen("/proc/stat", "r");
  while (f && fgets(buf, sizeof buf, f))
    if (!strncmp(buf, "btime ", 6))
      btime = strtod(buf + 6, NULL);
  if (f)
    fclose(f);
  f = fopen("/proc/self/stat", "r");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  for (int field = 2; p && field < 22; field++)
    p = strchr(p + 1, ' ');
  if (!p)
    return 0;
  return btime + strtod(p + 1, NULL) / (double)sysconf(_SC_CLK_TCK);
}

static void process_lines(FILE *f)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  family(f, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
  fprintf(f, "process_cpu_seconds_total %.6f\n",
          (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
          ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6);
  unsigned long long vsz = 0, rss = 0;
  FILE *sm = fopen("/proc/self/statm", "r");
  if (sm) {
    if (fscanf(sm, "%llu %llu", &vsz, &rss) != 2)
      vsz = rss = 0;
    fclose(sm);
  }
  unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
  family(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  fprintf(f, "process_virtual_memory_bytes %llu\n", vsz * page);
  family(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  fprintf(f, "process_resident_memory_bytes %llu\n", rss * page);
  unsigned fds = 0;
  DIR *d = opendir("/proc/self/fd");
  for (struct dirent *e; d && (e = readdir(d));)
    fds += e->d_name[0] != '.';
  if (d)
    closedir(d);
  family(f, "process_open_fds", "gauge", "Number of open file descriptors.");
  fprintf(f, "process_open_fds %u\n", fds ? fds - 1 : 0); /* less the one reading */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    family(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    fprintf(f, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
  }
  family(f, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.");
  fprintf(f, "process_start_time_seconds %.2f\n", process_start_time());
}

/* Call fn(f, target label, lun, stats) for every LUN of every target. */
static void each_lun(FILE *f, struct lg_model *m,
                     void (*fn)(FILE *, const char *, const struct lg_lun *))
{
  for (size_t i = 0; i < m->n_targets; i++) {
    struct lg_tpg *tpg = lg_target_tpg(&m->targets[i]);
    char tlabel[3 * 256 + 1];
    lg_metrics_label(tlabel, sizeof tlabel, m->targets[i].iqn);
    for (size_t k = 0; tpg && k < tpg->n_luns; k++)
      fn(f, tlabel, &tpg->luns[k]);
  }
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static void commands_line(FILE *f, const char *t, const struct lg_lun *l)
{
  static const char *const kinds[] = { "read", "write", "other" };
  for (int k = 0; k < LG_OP_KINDS; k++)
    fprintf(f, "lungate_commands_total{target=\"%s\",lun=\"%llu\",op=\"%s\"} %llu\n", t,
            (unsigned long long)l->index, kinds[k], LOAD(l->stats.commands[k]));
}

static void read_line(FILE *f, const char *t, const struct lg_lun *l)
{
  fprintf(f, "lungate_read_bytes_total{target=\"%s\",lun=\"%llu\"} %llu\n", t,
          (unsigned long long)l->index, LOAD(l->stats.bytes_read));
}

static void written_line(FILE *f, const char *t, const struct lg_lun *l)
{
  fprintf(f, "lungate_written_bytes_total{target=\"%s\",lun=\"%llu\"} %llu\n", t,
          (unsigned long long)l->index, LOAD(l->stats.bytes_written));
}

static void errors_line(FILE *f, const char *t, const struct lg_lun *l)
{
  fprintf(f, "lungate_check_conditions_total{target=\"%s\",lun=\"%llu\"} %llu\n", t,
          (unsigned long long)l->index, LOAD(l->stats.check_conditions));
}

static void latency_lines(FILE *f, const char *t, const struct lg_lun *l)
{
  unsigned long long cum = 0;
  for (unsigned b = 0; b < LG_LAT_BUCKETS; b++) {
    cum += LOAD(l->stats.latency[b]);
    char le[32];
    if (b < LG_LAT_BUCKETS - 1)
      snprintf(le, sizeof le, "%g", lat_bounds_us[b] / 1e6);
    else
      snprintf(le, sizeof le, "+Inf");
    fprintf(f, "lungate_command_duration_seconds_bucket{target=\"%s\",lun=\"%llu\",le=\"%s\"} "
            "%llu\n", t, (unsigned long long)l->index, le, cum);
  }
  fprintf(f, "lungate_command_duration_seconds_sum{target=\"%s\",lun=\"%llu\"} %.9f\n", t,
          (unsigned long long)l->index, (double)LOAD(l->stats.latency_sum_ns) / 1e9);
  fprintf(f, "lungate_command_duration_seconds_count{target=\"%s\",lun=\"%llu\"} %llu\n", t,
          (unsigned long long)l->index, cum);
}

char *lg_metrics_render(struct lg_model *m, size_t *len)
{
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  if (!f)
    return NULL;
  struct session_count sc = { m, calloc(m->n_targets + 1, sizeof(unsigned)) };
  if (sc.per_target)
    iscsi_sessions_foreach(count_session, &sc);
  family(f, "lungate_sessions", "gauge", "Logged-in iSCSI sessions per target.");
  for (size_t i = 0; sc.per_target && i < m->n_targets; i++) {
    char tlabel[3 * 256 + 1];
    lg_metrics_label(tlabel, sizeof tlabel, m->targets[i].iqn);
    fprintf(f, "lungate_sessions{target=\"%s\"} %u\n", tlabel, sc.per_target[i]);
  }
  free(sc.per_target);
  family(f, "lungate_logins_total", "counter", "Logins that completed.");
  fprintf(f, "lungate_logins_total %llu\n", LOAD(logins_total));
  family(f, "lungate_login_refusals_total", "counter",
         "Logins refused (unknown target, ACL, address, authentication, protocol).");
  fprintf(f, "lungate_login_refusals_total %llu\n", LOAD(login_refusals_total));
  family(f, "lungate_commands_total", "counter", "SCSI commands answered, per LUN and kind.");
  each_lun(f, m, commands_line);
  family(f, "lungate_read_bytes_total", "counter", "Bytes sent to initiators by READ commands.");
  each_lun(f, m, read_line);
  family(f, "lungate_written_bytes_total", "counter",
         "Bytes written by initiators with WRITE commands.");
  each_lun(f, m, written_line);
  family(f, "lungate_check_conditions_total", "counter",
         "Commands answered with CHECK CONDITION (errors), per LUN.");
  each_lun(f, m, errors_line);
  family(f, "lungate_command_duration_seconds", "histogram",
         "Time from a command's arrival to its response, per LUN.");
  each_lun(f, m, latency_lines);
  family(f, "lungate_overlay_allocated_bytes", "gauge",
         "Bytes a client's copy-on-write overlay holds, per LUN and initiator.");
  for (size_t i = 0; i < m->n_targets; i++) {
    struct lg_tpg *tpg = lg_target_tpg(&m->targets[i]);
    char tlabel[3 * 256 + 1];
    lg_metrics_label(tlabel, sizeof tlabel, m->targets[i].iqn);
    for (size_t k = 0; tpg && k < tpg->n_luns; k++)
      if (tpg->luns[k].so->per_initiator)
        lg_overlay_foreach(tpg->luns[k].so, overlay_line,
                           &(struct overlay_line){ f, tlabel, tpg->luns[k].index }, true);
  }
  process_lines(f);
  if (fclose(f) != 0) {
    free(text);
    return NULL;
  }
  return text;
}

/* ---- the HTTP responder ---- */

struct mx_client {
  int fd;                            /* -1: free slot */
  uint64_t deadline_ns;
  uint64_t accepted_ns;
  size_t got;
  char req[MX_REQ_MAX];
  char *resp;                        /* the whole answer, once the request is in */
  size_t resp_len, sent;
};

struct lg_metrics {
  int lfd, efd;
  char name[72];
  pthread_t thread;
  struct lg_model *(*current)(void *arg);
  void *current_arg;
  struct mx_client c[MX_CLIENTS];
};

static void client_close(struct mx_client *c)
{
  if (c->fd >= 0)
    close(c->fd);
  free(c->resp);
  c->fd = -1;
  c->resp = NULL;
}

static char *http_answer(const char *status, const char *type, const char *body,
                         size_t body_len, bool head, size_t *len)
{
  char *out = NULL;
  FILE *f = open_memstream(&out, len);
  if (!f)
    return NULL;
  fprintf(f, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
          "Connection: close\r\nCache-Control: no-store\r\n\r\n", status, type, body_len);
  if (!head)
    fwrite(body, 1, body_len, f);
  if (fclose(f) != 0) {
    free(out);
    return NULL;
  }
  return out;
}

/* The request head is complete (or too large): build the answer. */
static void client_answer(struct lg_metrics *mx, struct mx_client *c, bool too_large)
{
  static const char text_plain[] = "text/plain; charset=utf-8";
  const char *status = "400 Bad Request", *body = "bad request\n";
  char *metrics = NULL;
  size_t mlen = 0;
  bool head = false;
  if (too_large) {
    status = "431 Request Header Fields Too Large";
    body = "request too large\n";
  } else {
    c->req[c->got] = '\0';
    char *sp1 = strchr(c->req, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    char *eol = strpbrk(c->req, "\r\n");
    if (sp1 && sp2 && eol && sp2 < eol && !strncmp(sp2 + 1, "HTTP/1.", 7)) {
      *sp1 = *sp2 = '\0';
      char *path = sp1 + 1, *q = strchr(path, '?');
      if (q)
        *q = '\0';
      head = !strcmp(c->req, "HEAD");
      if (strcmp(c->req, "GET") && !head) {
        status = "405 Method Not Allowed";
        body = "only GET and HEAD\n";
      } else if (strcmp(path, "/metrics")) {
        status = "404 Not Found";
        body = "not found; the metrics are at /metrics\n";
      } else {
        struct lg_model *m = mx->current(mx->current_arg);
        metrics = m ? lg_metrics_render(m, &mlen) : NULL;
        if (m)
          lg_model_unref(m);
        status = metrics ? "200 OK" : "500 Internal Server Error";
        body = metrics ? metrics : "out of memory\n";
      }
    }
  }
  c->resp = http_answer(status, metrics ? "text/plain; version=0.0.4; charset=utf-8"
                        : text_plain, body, metrics ? mlen : strlen(body), head, &c->resp_len);
  free(metrics);
  c->sent = 0;
  if (!c->resp)
    client_close(c);
}

static void client_read(struct lg_metrics *mx, struct mx_client *c)
{
  ssize_t r = recv(c->fd, c->req + c->got, sizeof c->req - 1 - c->got, 0);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r <= 0) {
    client_close(c);
    return;
  }
  c->got += (size_t)r;
  c->req[c->got] = '\0';
  if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
    client_answer(mx, c, false);
  else if (c->got == sizeof c->req - 1)
    client_answer(mx, c, true);
}

static void client_write(struct mx_client *c)
{
  ssize_t r = send(c->fd, c->resp + c->sent, c->resp_len - c->sent, MSG_NOSIGNAL);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r < 0) {
    client_close(c);
    return;
  }
  c->sent += (size_t)r;
  if (c->sent == c->resp_len) {
    shutdown(c->fd, SHUT_WR);
    client_close(c);
  }
}

static void accept_client(struct lg_metrics *mx)
{
  int fd = accept4(mx->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0)
    return;
  struct mx_client *slot = NULL, *oldest = NULL;
  for (int i = 0; i < MX_CLIENTS; i++) {
    if (mx->c[i].fd < 0) {
      slot = &mx->c[i];
      break;
    }
    if (!oldest || mx->c[i].accepted_ns < oldest->accepted_ns)
      oldest = &mx->c[i];
  }
  if (!slot) { /* full: the oldest goes */
    client_close(oldest);
    slot = oldest;
  }
  uint64_t now = lg_now_ns();
  *slot = (struct mx_client){ .fd = fd, .accepted_ns = now,
                              .deadline_ns = now + (uint64_t)MX_TIMEOUT_MS * 1000000u };
}

static void *metrics_main(void *arg)
{
  struct lg_metrics *mx = arg;
  for (;;) {
    struct pollfd p[MX_CLIENTS + 2];
    int map[MX_CLIENTS];
    int n = 0;
    p[n++] = (struct pollfd){ .fd = mx->efd, .events = POLLIN };
    p[n++] = (struct pollfd){ .fd = mx->lfd, .events = POLLIN };
    uint64_t now = lg_now_ns(), next = UINT64_MAX;
    for (int i = 0; i < MX_CLIENTS; i++) {
      struct mx_client *c = &mx->c[i];
      if (c->fd < 0)
        continue;
      if (now >= c->deadline_ns) { /* too slow: no answer */
        client_close(c);
        continue;
      }
      if (c->deadline_ns < next)
        next = c->deadline_ns;
      map[n - 2] = i;
      p[n++] = (struct pollfd){ .fd = c->fd, .events = c->resp ? POLLOUT : POLLIN };
    }
    int timeout = next == UINT64_MAX ? -1 : (int)((next - now) / 1000000u) + 1;
    int r = poll(p, (nfds_t)n, timeout);
    if (r < 0 && errno != EINTR)
      break;
    if (r <= 0)
      continue;
    if (p[0].revents)
      break;
    for (int k = 2; k < n; k++) {
      struct mx_client *c = &mx->c[map[k - 2]];
      if (!p[k].revents || c->fd != p[k].fd)
        continue;
      if (c->resp)
        client_write(c);
      else
        client_read(mx, c);
    }
    if (p[1].revents & POLLIN)
      accept_client(mx);
  }
  for (int i = 0; i < MX_CLIENTS; i++)
    client_close(&mx->c[i]);
  return NULL;
}

static int metrics_listen(struct lg_metrics *mx, const char *spec, char **err)
{
  char host[64];
  unsigned port;
  struct sockaddr_storage ss = { 0 };
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  socklen_t len = 0;
  if (lg_parse_hostport(spec, host, sizeof host, &port) == 0 && !strchr(spec, ']') &&
      strchr(spec, ':') && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    len = sizeof *a4;
  } else if (lg_parse_hostport(spec, host, sizeof host, &port) == 0 && strchr(spec, ']') &&
             strstr(spec, "]:") && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    len = sizeof *a6;
  }
  if (!len) {
    if (asprintf(err, "--metrics %s: give ADDR:PORT, e.g. 127.0.0.1:9470 or [::1]:9470", spec) < 0)
      *err = NULL;
    return -1;
  }
  int one = 1, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    if (asprintf(err, "--metrics %s: cannot listen: %s", spec, strerror(e)) < 0)
      *err = NULL;
    return -1;
  }
  mx->lfd = fd;
  snprintf(mx->name, sizeof mx->name, "%s", spec);
  return 0;
}

struct lg_metrics *lg_metrics_start(struct lg_model *(*current)(void *arg), void *arg,
                                    const char *addr, char **err)
{
  struct lg_metrics *mx = calloc(1, sizeof *mx);
  if (!mx)
    return NULL;
  mx->lfd = mx->efd = -1;
  for (int i = 0; i < MX_CLIENTS; i++)
    mx->c[i].fd = -1;
  if (metrics_listen(mx, addr, err) < 0)
    goto fail;
  mx->current = current;
  mx->current_arg = arg;
  mx->efd = eventfd(0, EFD_CLOEXEC);
  if (mx->efd < 0 || pthread_create(&mx->thread, NULL, metrics_main, mx)) {
    if (asprintf(err, "--metrics: cannot start its thread") < 0)
      *err = NULL;
    goto fail;
  }
  lg_kv(LG_INFO, "metrics", "url=http://%s/metrics", mx->name);
  return mx;
fail:
  if (mx->efd >= 0)
    close(mx->efd);
  if (mx->lfd >= 0)
    close(mx->lfd);
  free(mx);
  return NULL;
}

void lg_metrics_stop(struct lg_metrics *mx)
{
  if (!mx)
    return;
  uint64_t one = 1;
  if (write(mx->efd, &one, sizeof one) != sizeof one)
    lg_kv(LG_ERROR, "metrics: cannot wake its thread", "err=%s", LG_Q(strerror(errno)));
  pthread_join(mx->thread, NULL);
  close(mx->efd);
  close(mx->lfd);
  free(mx);
}
