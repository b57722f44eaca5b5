/* Listening portals, connection threads, the worker pool and shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "iscsi/iscsi.h"
#include "iscsi/server.h"
#include "util/log.h"

#define MAX_LISTEN 32
#define MAX_CONNS 1024
#define PENDING_PER_ADDR 32          /* connections still logging in, per address */
#define PENDING_GRACE_SEC 2          /* a login younger than this is never evicted */
#define SHUTDOWN_WAIT_SEC 30
#define HEAP_RETURN_SEC 10           /* at most this often, unless the gateway is idle */

/* ---- worker pool ---- */

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct iscsi_task *head, *tail;
  bool stop;
  pthread_t *threads;
  unsigned n;
} wq = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

void iscsi_workq_push(struct iscsi_task *t)
{
  t->next = NULL;
  pthread_mutex_lock(&wq.lock);
  if (wq.tail)
    wq.tail->next = t;
  else
    wq.head = t;
  wq.tail = t;
  pthread_mutex_unlock(&wq.lock);
  pthread_cond_signal(&wq.cond); /* after unlocking: the woken worker need not wait for us */
}

static void *worker_main(void *arg)
{
  (void)arg;
  pthread_mutex_lock(&wq.lock);
  for (;;) {
    while (!wq.head && !wq.stop)
      pthread_cond_wait(&wq.cond, &wq.lock);
    if (!wq.head)
      break;
    struct iscsi_task *t = wq.head;
    wq.head = t->next;
    if (!wq.head)
      wq.tail = NULL;
    pthread_mutex_unlock(&wq.lock);
    iscsi_task_run(t);
    pthread_mutex_lock(&wq.lock);
  }
  pthread_mutex_unlock(&wq.lock);
  return NULL;
}

int iscsi_workq_start(unsigned n)
{
  wq.threads = calloc(n, sizeof *wq.threads);
  if (!wq.threads)
    return -ENOMEM;
  wq.stop = false;
  for (wq.n = 0; wq.n < n; wq.n++)
    if (pthread_create(&wq.threads[wq.n], NULL, worker_main, NULL))
      return -EAGAIN;
  return 0;
}

void iscsi_workq_stop(void)
{
  pthread_mutex_lock(&wq.lock);
  wq.stop = true;
  pthread_cond_broadcast(&wq.cond);
  pthread_mutex_unlock(&wq.lock);
  for (unsigned i = 0; i < wq.n; i++)
    pthread_join(wq.threads[i], NULL);
  free(wq.threads);
  wq.threads = NULL;
  wq.n = 0;
}

/* ---- server ---- */

struct lg_server {
  struct lg_model *model;            /* the current one, under lock; a reload swaps it */
  pthread_mutex_t reload_lock;       /* one reload at a time */
  bool listen_given;                 /* --listen: the config's portals are not used */
  int lfd[MAX_LISTEN];
  char lname[MAX_LISTEN][64];
  size_t n_listen;
  pthread_mutex_t lock;
  pthread_cond_t cond;               /* a connection ended */
  struct iscsi_conn *conns;
  unsigned n_conns;
};

int lg_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port)
{
  const char *p;
  size_t hl;
  *port = 3260;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end)
      return -EINVAL;
    hl = (size_t)(end - s - 1);
    memcpy(host, s + 1, hl < hostlen ? hl : 0);
    p = end + 1;
    if (*p && *p != ':')
      return -EINVAL;
  } else {
    p = strrchr(s, ':');
    if (p && strchr(s, ':') != p) /* bare IPv6 without brackets: no port */
      p = NULL;
    hl = p ? (size_t)(p - s) : strlen(s);
    memcpy(host, s, hl < hostlen ? hl : 0);
  }
  if (hl == 0 || hl >= hostlen)
    return -EINVAL;
  host[hl] = '\0';
  if (p && *p == ':') {
    char *end;
    unsigned long v = strtoul(p + 1, &end, 10);
    if (!p[1] || *end || v == 0 || v > 65535)
      return -EINVAL;
    *port = (unsigned)v;
  }
  return 0;
}

static int open_listener(struct lg_server *s, const char *spec, bool v6only, char **err)
{
  char host[64];
  unsigned port;
  if (lg_parse_hostport(spec, host, sizeof host, &port) < 0) {
    if (asprintf(err, "listen address \"%s\": use ADDR:PORT, e.g. 0.0.0.0:3260, "
                 "[::]:3260 or 127.0.0.1:3261", spec) < 0)
      *err = NULL;
    return -1;
  }
  struct sockaddr_storage ss = { 0 };
  socklen_t len;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    len = sizeof *a6;
  } else {
    if (asprintf(err, "listen address \"%s\": \"%s\" is not an IPv4 or IPv6 address",
                 spec, host) < 0)
      *err = NULL;
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1, v6 = v6only;
  if (fd < 0)
    goto fail;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0)
    goto fail;
  s->lfd[s->n_listen] = fd;
  if (snprintf(s->lname[s->n_listen], sizeof s->lname[0],
               ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port) < 0)
    s->lname[s->n_listen][0] = '\0'; /* a name for logs only; a long one is cut */
  s->n_listen++;
  return 0;
fail: {
    int e = errno;
    if (fd >= 0)
      close(fd);
    if (asprintf(err, "cannot listen on %s: %s%s", spec, strerror(e),
                 e == EADDRINUSE ? " (another target, e.g. tgtd or LIO, may hold the "
                 "port; stop it or use --listen with another port)"
                 : e == EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                 : "") < 0)
      *err = NULL;
    return -1;
  }
}

/* Every portal of every enabled TPG, once, as "ADDR:PORT" (malloc'd). */
static size_t model_portals(const struct lg_model *model, char **specs, size_t n)
{
  for (size_t i = 0; i < model->n_targets; i++) {
    struct lg_tpg *tpg = lg_target_tpg(&model->targets[i]);
    for (size_t k = 0; tpg && k < tpg->n_portals && n < MAX_LISTEN; k++) {
      char buf[96];
      const char *ip = tpg->portals[k].ip;
      bool v6 = strchr(ip, ':') && ip[0] != '[';
      snprintf(buf, sizeof buf, v6 ? "[%s]:%u" : "%s:%u", ip, tpg->portals[k].port);
      bool dup = false;
      for (size_t j = 0; j < n; j++)
        dup |= !strcmp(specs[j], buf);
      if (!dup)
        specs[n++] = strdup(buf);
    }
  }
  return n;
}

struct lg_server *lg_server_new(struct lg_model *model, char *const *listen,
                                size_t n_listen, char **err)
{
  struct lg_server *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->model = model;
  lg_model_ref(model);
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->reload_lock, NULL);
  pthread_cond_init(&s->cond, NULL);
  s->listen_given = n_listen > 0;

  /* the addresses: --listen, or every portal of every enabled TPG, once */
  char *specs[MAX_LISTEN];
  size_t n = 0;
  for (size_t i = 0; i < n_listen && n < MAX_LISTEN; i++)
    specs[n++] = strdup(listen[i]);
  if (!n_listen)
    n = model_portals(model, specs, 0);
  if (!n_listen && model->n_targets == 0) /* nothing yet: targetcli's default portal */
    specs[n++] = strdup("0.0.0.0:3260");
  if (n == 0 && asprintf(err, "nothing to listen on: give --listen ADDR:PORT or a "
                         "portal in the config") < 0)
    *err = NULL;
  int rc = n ? 0 : -1;
  for (size_t i = 0; i < n && rc == 0; i++) {
    /* a wildcard [::] also takes IPv4 unless 0.0.0.0 on that port is listed */
    bool v6only = true;
    if (!strncmp(specs[i], "[::]", 4)) {
      v6only = false;
      for (size_t j = 0; j < n; j++)
        if (!strncmp(specs[j], "0.0.0.0", 7) && !strcmp(strchr(specs[j], ':'), specs[i] + 4))
          v6only = true;
    }
    rc = open_listener(s, specs[i], v6only, err);
  }
  for (size_t i = 0; i < n; i++)
    free(specs[i]);
  if (rc < 0) {
    lg_server_free(s);
    return NULL;
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned workers = ncpu > 0 ? (unsigned)ncpu * 4 : 8;
  if (workers < 8)
    workers = 8;
  if (workers > 64)
    workers = 64;
  if (iscsi_workq_start(workers) < 0) {
    if (asprintf(err, "cannot start worker threads") < 0)
      *err = NULL;
    lg_server_free(s);
    return NULL;
  }
  return s;
}

struct conn_arg {
  struct lg_server *srv;
  struct iscsi_conn *c;
};

/* Give the memory freed by ended connections back to the system.  glibc's
 * malloc keeps freed memory in the arena of the thread that used it, and a
 * room's sessions come and go on ever new threads (and librados's own), so
 * without this the gateway's resident memory creeps up for hours while what
 * it really uses stays flat (the drain room of tests/soak: 22 MiB more in an
 * hour, with a quarter of the arenas' memory in use).  malloc_trim walks
 * every arena and returns its free pages; cheap, and only after a
 * connection ends: when the last one went, or every HEAP_RETURN_SEC. */
static void heap_return(bool idle)
{
  static _Atomic time_t last; /* monotonic: a clock set back must not stop it */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  time_t now = ts.tv_sec, then = atomic_load(&last);
  if (!idle && now - then < HEAP_RETURN_SEC)
    return;
  if (atomic_compare_exchange_strong(&last, &then, now))
    malloc_trim(0);
}

static void *conn_main(void *arg)
{
  struct conn_arg *a = arg;
  struct lg_server *s = a->srv;
  struct iscsi_conn *c = a->c;
  free(a);
  iscsi_conn_run(c);
  pthread_mutex_lock(&s->lock);
  for (struct iscsi_conn **pp = &s->conns; *pp; pp = &(*pp)->next_conn)
    if (*pp == c) {
      *pp = c->next_conn;
      break;
    }
  if (c->sess && c->sess->tsih) { /* the one line for the end of a session */
    const char *why = c->sess->end_reason;
    lg_kv(LG_INFO, "logout", "initiator=%s peer=%s %s%s tsih=%u reason=%s",
          c->sess->initiator_log, c->peer, c->sess->discovery ? "session=discovery" : "target=",
          c->sess->discovery ? "" : LG_Q(c->sess->target->iqn), c->sess->tsih,
          why ? why : "connection-closed");
  }
  pthread_mutex_unlock(&s->lock);
  /* not under s->lock: ending a session may wait on its backstore (an RBD
   * clone's metadata on a stalled cluster, up to its osd_op_timeout), and
   * every accept takes s->lock.  Still counted in n_conns until freed, so a
   * stopping server waits for it before it frees what the session uses. */
  iscsi_conn_free(c);
  pthread_mutex_lock(&s->lock);
  bool idle = --s->n_conns == 0;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
  heap_return(idle);
  return NULL;
}

/* Make room for a new connection from ip: when that address has
 * PENDING_PER_ADDR connections still logging in, or the gateway is full,
 * the oldest connection that has been logging in for PENDING_GRACE_SEC or
 * more is closed, so idle or slow sockets never lock real clients out, while
 * many clients behind one address (NAT, a VM host) logging in at once are
 * never cut off.  false: full, and nothing to evict.  Under s->lock. */
static bool make_room(struct lg_server *s, const char *ip)
{
  struct iscsi_conn *oldest_same = NULL, *oldest_any = NULL;
  unsigned same = 0;
  time_t now = time(NULL);
  for (struct iscsi_conn *c = s->conns; c; c = c->next_conn) { /* newest first */
    if (atomic_load(&c->logged_in))
      continue;
    bool old = now - c->accepted >= PENDING_GRACE_SEC;
    if (!strcmp(c->peer_ip, ip)) {
      same++;
      if (old)
        oldest_same = c;
    }
    if (old)
      oldest_any = c;
  }
  struct iscsi_conn *victim = same >= PENDING_PER_ADDR ? oldest_same
                            : s->n_conns >= MAX_CONNS ? oldest_any : NULL;
  if (victim) {
    lg_kv(LG_WARN, "unfinished login closed to make room", "peer=%s pending_same_address=%u "
          "new_from=%s connections=%u", victim->peer, same, ip, s->n_conns);
    iscsi_conn_shutdown(victim);
  }
  return s->n_conns < MAX_CONNS || victim;
}

static void accept_one(struct lg_server *s, int lfd)
{
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    return;
  struct lg_model *m = lg_server_model(s); /* a connection keeps the model it came in on */
  struct iscsi_conn *c = iscsi_conn_new(fd, m);
  lg_model_unref(m);
  if (!c) {
    close(fd);
    return;
  }
  pthread_mutex_lock(&s->lock);
  bool room = make_room(s, c->peer_ip);
  pthread_mutex_unlock(&s->lock);
  if (!room) {
    lg_kv(LG_WARN, "connection refused: too many connections", "peer=%s limit=%u", c->peer,
          MAX_CONNS);
    iscsi_conn_free(c);
    return;
  }
  struct conn_arg *a = malloc(sizeof *a);
  if (!a) {
    iscsi_conn_free(c);
    return;
  }
  a->srv = s;
  a->c = c;
  pthread_mutex_lock(&s->lock);
  c->next_conn = s->conns;
  s->conns = c;
  s->n_conns++;
  pthread_mutex_unlock(&s->lock);
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  if (pthread_create(&th, &attr, conn_main, a)) {
    pthread_mutex_lock(&s->lock);
    s->conns = c->next_conn;
    s->n_conns--;
    pthread_mutex_unlock(&s->lock);
    iscsi_conn_free(c);
    free(a);
  }
  pthread_attr_destroy(&attr);
}

int lg_server_run(struct lg_server *s)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) {
    lg_kv(LG_ERROR, "signalfd failed", "err=%s", LG_Q(strerror(errno)));
    return -1;
  }
  for (size_t i = 0; i < s->n_listen; i++)
    lg_kv(LG_INFO, "listening", "portal=%s", s->lname[i]);

  struct pollfd pfd[MAX_LISTEN + 1];
  for (size_t i = 0; i < s->n_listen; i++)
    pfd[i] = (struct pollfd){ .fd = s->lfd[i], .events = POLLIN };
  pfd[s->n_listen] = (struct pollfd){ .fd = sfd, .events = POLLIN };
  for (;;) {
    int r = poll(pfd, s->n_listen + 1, -1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      lg_kv(LG_ERROR, "stopping: poll failed", "err=%s", LG_Q(strerror(errno)));
      break;
    }
    if (pfd[s->n_listen].revents) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP) {
          char *err = NULL;
          if (lg_server_reload(s, NULL, &err) < 0)
            lg_err("SIGHUP: reload failed, still serving the previous configuration: %s",
                   err ? err : "out of memory");
          free(err); /* the summary, already logged, or why it failed */
          continue;
        }
        lg_kv(LG_INFO, "stopping: finishing in-flight commands", "signal=%s",
              si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
      }
    }
    for (size_t i = 0; i < s->n_listen; i++)
      if (pfd[i].revents & POLLIN)
        accept_one(s, s->lfd[i]);
  }
  /* in a cluster, peers may still send clients here until they read that we
   * are leaving: go on listening meanwhile, redirecting each login to its new
   * home, so that no login finds a closed port (a second signal ends it) */
  unsigned grace = lg_cluster_leave();
  if (grace) {
    lg_kv(LG_INFO, "stopping: redirecting logins while the peers learn it", "ms=%u", grace);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      long left = (long)grace - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
      if (left <= 0)
        break;
      int r = poll(pfd, s->n_listen + 1, (int)left);
      if (r < 0 && errno != EINTR)
        break;
      if (r > 0 && pfd[s->n_listen].revents)
        break;
      for (size_t i = 0; r > 0 && i < s->n_listen; i++)
        if (pfd[i].revents & POLLIN)
          accept_one(s, s->lfd[i]);
    }
  }
  close(sfd);
  for (size_t i = 0; i < s->n_listen; i++) {
    close(s->lfd[i]);
    s->lfd[i] = -1;
  }

  /* stop reading new commands; responses to queued ones still go out */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += SHUTDOWN_WAIT_SEC;
  pthread_mutex_lock(&s->lock);
  for (struct iscsi_conn *c = s->conns; c; c = c->next_conn)
    shutdown(c->fd, SHUT_RD);
  while (s->n_conns > 0)
    if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT) {
      for (struct iscsi_conn *c = s->conns; c; c = c->next_conn)
        shutdown(c->fd, SHUT_RDWR);
      until.tv_sec += 5;
    }
  pthread_mutex_unlock(&s->lock);
  return 0;
}

void lg_server_free(struct lg_server *s)
{
  if (!s)
    return;
  iscsi_workq_stop();
  for (size_t i = 0; i < s->n_listen; i++)
    if (s->lfd[i] >= 0)
      close(s->lfd[i]);
  pthread_mutex_destroy(&s->lock);
  pthread_mutex_destroy(&s->reload_lock);
  pthread_cond_destroy(&s->cond);
  lg_model_unref(s->model);
  free(s);
}

struct lg_model *lg_server_model(struct lg_server *s)
{
  pthread_mutex_lock(&s->lock);
  struct lg_model *m = s->model;
  lg_model_ref(m);
  pthread_mutex_unlock(&s->lock);
  return m;
}

/* Names in a but not in b, for the reload summary: "+name" or "-name". */
static void diff_names(char *out, size_t len, char sign, char *const *a, size_t na,
                       char *const *b, size_t nb)
{
  for (size_t i = 0; i < na; i++) {
    bool found = false;
    for (size_t k = 0; k < nb && !found; k++)
      found = !strcasecmp(a[i], b[k]);
    size_t used = strlen(out);
    if (!found && used + 4 < len)
      snprintf(out + used, len - used, " %c%s", sign, a[i]);
  }
}

/* What changed between two models, for the log and the control socket. */
static char *reload_summary(const struct lg_model *old, const struct lg_model *m)
{
  char *ot[256], *nt[256], *os[256], *ns[256], targets[2048] = "", storage[2048] = "";
  size_t not = 0, nnt = 0, nos = 0, nns = 0, kept = 0;
  for (size_t i = 0; i < old->n_targets && not < 256; i++)
    ot[not++] = old->targets[i].iqn;
  for (size_t i = 0; i < m->n_targets && nnt < 256; i++)
    nt[nnt++] = m->targets[i].iqn;
  for (size_t i = 0; i < old->n_storage && nos < 256; i++)
    os[nos++] = old->storage[i]->name;
  for (size_t i = 0; i < m->n_storage && nns < 256; i++) {
    ns[nns++] = m->storage[i]->name;
    for (size_t k = 0; k < old->n_storage; k++)
      kept += m->storage[i] == old->storage[k];
  }
  diff_names(targets, sizeof targets, '+', nt, nnt, ot, not);
  diff_names(targets, sizeof targets, '-', ot, not, nt, nnt);
  diff_names(storage, sizeof storage, '+', ns, nns, os, nos);
  diff_names(storage, sizeof storage, '-', os, nos, ns, nns);
  char *out;
  if (asprintf(&out, "generation %u: %zu targets (changes:%s), %zu storage objects "
               "(%zu kept open, changes:%s); new logins use it, existing sessions keep "
               "the previous one until they log out", m->generation, m->n_targets,
               *targets ? targets : " none", m->n_storage, kept,
               *storage ? storage : " none") < 0)
    out = NULL;
  return out;
}

size_t lg_server_listen_given(struct lg_server *s, const char **names, size_t max)
{
  size_t n = 0;
  for (size_t i = 0; s->listen_given && i < s->n_listen && n < max; i++)
    names[n++] = s->lname[i];
  return n;
}

int lg_server_reload(struct lg_server *s, const char *file, char **msg)
{
  return lg_server_apply(s, file, NULL, 0, msg);
}

int lg_server_apply(struct lg_server *s, const char *file, const json_t *config,
                    unsigned generation, char **msg)
{
  *msg = NULL;
  pthread_mutex_lock(&s->reload_lock);
  struct lg_model *old = lg_server_model(s);
  int rc = -1;
  if (config && old->generation != generation) {
    if (asprintf(msg, "the configuration changed meanwhile (generation %u, now %u); "
                 "run the command again", generation, old->generation) < 0)
      *msg = NULL;
    goto out;
  }
  if (!config && !file && !old->path) {
    if (asprintf(msg, "the gateway was started without a config file (--image); "
                 "nothing to reload") < 0)
      *msg = NULL;
    goto out;
  }
  struct lg_model *m = config ? lg_model_reload_json(config, old->path, old, msg)
                     : lg_model_reload_file(file ? file : old->path, old, msg);
  if (!m)
    goto out;
  if (!s->listen_given) { /* listeners are opened at start only */
    char *a[MAX_LISTEN], *b[MAX_LISTEN], added[512] = "";
    size_t na = model_portals(old, a, 0), nb = model_portals(m, b, 0);
    diff_names(added, sizeof added, '+', b, nb, a, na);
    if (*added)
      lg_warn("reload: new portals (%s ) are listened on after a restart", added);
    for (size_t i = 0; i < na; i++)
      free(a[i]);
    for (size_t i = 0; i < nb; i++)
      free(b[i]);
  }
  *msg = reload_summary(old, m);
  pthread_mutex_lock(&s->lock);
  struct lg_model *prev = s->model;
  s->model = m; /* the server's reference moves to the new model */
  pthread_mutex_unlock(&s->lock);
  lg_model_unref(prev);
  lg_info("%s: %s: %s", config ? "object command" : "reload",
          m->path ? m->path : "(no config file)", *msg ? *msg : "done");
  rc = 0;
out:
  pthread_mutex_unlock(&s->reload_lock);
  lg_model_unref(old);
  return rc;
}
