/* Prometheus metrics: the counters the command path bumps, their text
 * exposition (format 0.0.4), and the /metrics endpoint on libmicrohttpd
 * (ops/http.c).  It answers GET or HEAD of /metrics with the text, any other
 * path with 404 and any other method with 405.  Nothing a client sends is
 * echoed back.
 */
#include "ops/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backends/cow.h"
#include "iscsi/iscsi.h"
#include "iscsi/server.h"
#include "ops/http.h"
#include "target/model.h"
#include "target/overlay_cmd.h"
#include "util/log.h"

#define MX_CLIENTS 64               /* connections at once */
#define MX_MEMORY 4096               /* per connection: bounds the request head */
#define MX_TIMEOUT_SEC 10            /* an idle connection is closed after this */

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

static _Atomic uint64_t judged_total[LG_JUDGED_KINDS], policy_resets_total[LG_RESET_POLICIES];

void lg_stats_judged(enum lg_stats_judged kind)
{
  if (kind < LG_JUDGED_KINDS)
    atomic_fetch_add_explicit(&judged_total[kind], 1, memory_order_relaxed);
}

void lg_stats_policy_reset(enum lg_reset_policy policy)
{
  atomic_fetch_add_explicit(&policy_resets_total[policy], 1, memory_order_relaxed);
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

/* Layers per image version of one cow object (lungate_image_version_clients). */
#define VERSIONS_MAX 256
struct version_count {
  uint32_t ids[VERSIONS_MAX];
  unsigned n[VERSIONS_MAX];
  size_t nv;
};

static int version_count(struct lg_storage *so, const char *path, const struct cow_info *info,
                         void *arg)
{
  (void)path;
  struct version_count *vc = arg;
  long id = info->have_sum ? cow_version_of_sum(so->h, info->base_sum) : -1;
  for (size_t i = 0; id > 0 && i < vc->nv; i++)
    if (vc->ids[i] == (uint32_t)id)
      vc->n[i]++;
  return 0;
}

static void version_lines(FILE *f, struct lg_model *m)
{
  family(f, "lungate_image_version_clients", "gauge",
         "Client layers over each image version of a per-client cow object (a layer stays "
         "on its version until the client boots onto a newer one or is reset).");
  for (size_t i = 0; i < m->n_storage; i++) {
    struct lg_storage *so = m->storage[i];
    struct version_count vc = { .nv = 0 };
    if (so->ops != &lg_cow_backstore || !so->per_initiator ||
        !(vc.nv = cow_version_ids(so->h, vc.ids, VERSIONS_MAX)))
      continue;
    lg_overlay_foreach(so, version_count, &vc, true);
    char olabel[3 * 256 + 1];
    lg_metrics_label(olabel, sizeof olabel, so->name);
    uint32_t cur = cow_current_version(so->h);
    for (size_t k = 0; k < vc.nv; k++)
      fprintf(f, "lungate_image_version_clients{object=\"%s\",version=\"%u\",current=\"%s\"} "
              "%u\n", olabel, vc.ids[k], vc.ids[k] == cur ? "yes" : "no", vc.n[k]);
  }
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
  /* what the gateway's allocations hold, as against what the process has
   * resident: a resident size that grows while this stays flat is the
   * allocator keeping freed memory, not a leak */
  struct mallinfo2 mi = mallinfo2();
  family(f, "lungate_heap_in_use_bytes", "gauge",
         "Bytes of the heap in use by allocations (malloc's arenas and mmapped blocks).");
  fprintf(f, "lungate_heap_in_use_bytes %zu\n", mi.uordblks + mi.hblkhd);
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
  family(f, "lungate_client_logins_total", "counter",
         "Logins to per-client disks, as the boot rule judged them: a boot, a reconnect of a "
         "running OS, or a fenced reconnect.");
  static const char *const judged[LG_JUDGED_KINDS] = { "boot", "reconnect", "fenced" };
  for (int k = 0; k < LG_JUDGED_KINDS; k++)
    fprintf(f, "lungate_client_logins_total{kind=\"%s\"} %llu\n", judged[k],
            LOAD(judged_total[k]));
  family(f, "lungate_policy_resets_total", "counter",
         "Client layers the reset policy gave a clean disk at their boot.");
  static const char *const policies[LG_RESET_POLICIES] = { "after_idle", "on_boot",
                                                           "on_new_version" };
  for (int k = 0; k < LG_RESET_POLICIES; k++)
    fprintf(f, "lungate_policy_resets_total{policy=\"%s\"} %llu\n", policies[k],
            LOAD(policy_resets_total[k]));
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
  version_lines(f, m);
  process_lines(f);
  if (fclose(f) != 0) {
    free(text);
    return NULL;
  }
  return text;
}

/* ---- the endpoint ---- */

struct lg_metrics {
  struct lg_http *http;
  struct lg_model *(*current)(void *arg);
  void *current_arg;
};

static enum MHD_Result metrics_request(void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **req_cls)
{
  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)req_cls;
  static const char text_plain[] = "text/plain; charset=utf-8";
  struct lg_metrics *mx = cls;
  if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
    static const char *const allow[] = { "Allow", "GET, HEAD", NULL };
    return lg_http_send(c, MHD_HTTP_METHOD_NOT_ALLOWED, text_plain, allow,
                        "only GET and HEAD\n", 18, false);
  }
  if (strcmp(url, "/metrics")) {
    static const char body[] = "not found; the metrics are at /metrics\n";
    return lg_http_send(c, MHD_HTTP_NOT_FOUND, text_plain, NULL, body, sizeof body - 1, false);
  }
  struct lg_model *m = mx->current(mx->current_arg);
  size_t len = 0;
  char *text = m ? lg_metrics_render(m, &len) : NULL;
  if (m)
    lg_model_unref(m);
  if (!text)
    return lg_http_send(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text_plain, NULL,
                        "out of memory\n", 14, false);
  return lg_http_send(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", NULL, text,
                      len, true);
}

struct lg_metrics *lg_metrics_start(struct lg_model *(*current)(void *arg), void *arg,
                                    const char *addr, char **err)
{
  struct lg_metrics *mx = calloc(1, sizeof *mx);
  if (!mx)
    return NULL;
  mx->current = current;
  mx->current_arg = arg;
  /* one thread polls every connection: a scrape is quick, idle connections
   * cost a slot and go after MX_TIMEOUT_SEC; a request head larger than
   * MX_MEMORY bytes is answered 431 */
  struct lg_http_opts o = {
    .what = "--metrics", .addr = addr, .connection_limit = MX_CLIENTS,
    .timeout_sec = MX_TIMEOUT_SEC, .memory_limit = MX_MEMORY,
    .handler = metrics_request, .handler_cls = mx,
  };
  bool loopback;
  if (!(mx->http = lg_http_start(&o, &loopback, err))) {
    free(mx);
    return NULL;
  }
  lg_kv(LG_INFO, "metrics", "url=http://%s/metrics", addr);
  return mx;
}

void lg_metrics_stop(struct lg_metrics *mx)
{
  if (!mx)
    return;
  lg_http_stop(mx->http);
  free(mx);
}
