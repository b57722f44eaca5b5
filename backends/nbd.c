/* nbd and qcow2 backstores: any NBD server through libnbd, and qemu image
 * formats through a qemu-nbd that lungate runs itself.
 *
 * Concurrency: each connection has a libnbd handle driven with the
 * asynchronous API, so many commands are in flight on one connection at
 * once.  The thread that has a command issues it on the handle itself
 * (libnbd handles are thread-safe; the request usually goes out in that
 * call), and the connection's I/O thread only polls the socket and reads
 * the replies, which libnbd puts straight into the caller's buffer.  A
 * synchronous caller (->pread, ->pwrite, ...) then sleeps on its request; a
 * read started with ->pread_async returns at once and its completion
 * function runs when the reply is in (on the I/O thread), so the SCSI layer
 * needs no worker blocked per read in flight.  The eventfd wakes the I/O
 * thread only when a request could not be sent whole, to stop, or to
 * reconnect.  When the server offers multi-conn (or the export is
 * read-only), up to "connections" connections share the load round-robin.
 *
 * Faults: a dead connection, or a command older than "timeout" seconds,
 * fails every command in flight with -EIO (the SCSI layer turns it into
 * sense data) and the I/O thread reconnects with exponential backoff
 * (restarting its qemu-nbd if that died).  While a connection is down, new
 * commands fail at once with -ENOTCONN instead of hanging.
 *
 * qemu-nbd is started by hand rather than with libnbd's
 * nbd_connect_systemd_socket_activation, which binds the server to a single
 * handle: we need several connections to one server and a server that
 * cannot outlive the gateway (PR_SET_PDEATHSIG, set in the child before
 * exec).  The socket is still passed by systemd socket activation
 * (LISTEN_FDS), so there is no race with the server's start-up.
 *
 * Request lifetime: a request is heap-allocated with two references, one for
 * the waiting worker and one for libnbd (dropped by the completion
 * callback's .free), so neither side can free it under the other.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <linux/io_uring.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/common.h"
#include "util/log.h"

#define NBD_MAX_CONNS 8
#define NBD_DEFAULT_CONNS 4
#define NBD_DEFAULT_TIMEOUT 30
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum nbd_op { OP_READ, OP_WRITE, OP_FLUSH, OP_TRIM, OP_ZERO };

struct nbd_req {
  enum nbd_op op;
  void *buf;
  uint64_t count, offset;
  uint32_t flags;                    /* LIBNBD_CMD_FLAG_* */
  int result;                        /* 0 or -errno */
  bool done;
  void (*async_done)(void *arg, int result); /* ->pread_async: no waiter */
  void *async_arg;
  atomic_int refs;
  struct timespec started;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct nbd_conn *conn;
  struct nbd_req *next;              /* in-flight list */
};

struct nbd_bs;

struct nbd_conn {
  struct nbd_bs *bs;
  unsigned index;
  pthread_t thread;
  int efd;                           /* wakes the I/O thread */
  pthread_mutex_t lock;              /* up, stop, h (others issue on it under lock) */
  pthread_mutex_t ilock;             /* inflight; never held across a libnbd call */
  struct nbd_req *inflight;
  struct nbd_handle *h;              /* set and cleared by the I/O thread only */
  bool up;
  bool stop;
  unsigned seen_shutdowns;           /* of bs->shutdowns, acted upon (under lock) */
  unsigned backoff_ms;
};

struct nbd_bs {
  char *name;
  /* what to connect to */
  char *uri;                         /* nbd: an NBD URI */
  char *image, *format;              /* qcow2: run qemu-nbd on this image */
  bool readonly;
  unsigned timeout;
  /* our qemu-nbd */
  pthread_mutex_t server_lock;
  pid_t server_pid;
  bool server_uring;                 /* it runs with --aio=io_uring */
  bool no_uring;                     /* that failed once: --aio=threads from now on */
  char sockdir[64];
  char sockpath[96];
  int lockfd;                        /* sockdir/lock, flock'ed while we live; -1 */
  /* from the server */
  uint64_t size;
  bool can_flush, can_fua, can_trim, can_zero, multi_conn;
  /* connections */
  struct nbd_conn conns[NBD_MAX_CONNS];
  unsigned nconns;
  atomic_uint rr;
  atomic_uint shutdowns;             /* times the server said ESHUTDOWN */
  _Atomic int64_t last_error_log;    /* time of the last command error logged */
  atomic_uint errors_unlogged;       /* since then */
};

/* ---- qemu-nbd ---- */

static void server_stop(struct nbd_bs *b)
{
  if (b->server_pid > 0) {
    kill(b->server_pid, SIGTERM);
    int st;
    for (int i = 0; i < 100; i++) { /* up to 5 s for qcow2 metadata to settle */
      if (waitpid(b->server_pid, &st, WNOHANG) == b->server_pid)
        goto reaped;
      usleep(50000);
    }
    kill(b->server_pid, SIGKILL);
    waitpid(b->server_pid, &st, 0);
  reaped:
    b->server_pid = 0;
  }
  if (b->sockpath[0])
    unlink(b->sockpath);
  if (b->lockfd >= 0) {
    char lock[sizeof b->sockdir + 8];
    snprintf(lock, sizeof lock, "%s/lock", b->sockdir);
    unlink(lock);
    close(b->lockfd);
    b->lockfd = -1;
  }
  if (b->sockdir[0])
    rmdir(b->sockdir);
  b->sockpath[0] = b->sockdir[0] = '\0';
}

/* The socket directories of gateways that were killed (SIGKILL, a crash:
 * no clean-up ran) would pile up in /tmp.  A live one holds an flock on its
 * lock file, so a directory of ours whose lock can be taken, and whose lock
 * file is not brand new (its creator may not have locked it yet), is
 * removed.  Once per process, before the first qemu-nbd starts. */
#define SOCKDIR_PREFIX "lungate-nbd-"
#define SOCKDIR_STALE_SEC 30

static void sweep_stale_sockdirs(void)
{
  DIR *d = opendir("/tmp");
  if (!d)
    return;
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, SOCKDIR_PREFIX, strlen(SOCKDIR_PREFIX)))
      continue;
    int dfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (dfd < 0)
      continue;
    int lfd = fstat(dfd, &st) == 0 && st.st_uid == geteuid()
                  ? openat(dfd, "lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (lfd >= 0 && fstat(lfd, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_mtime + SOCKDIR_STALE_SEC < time(NULL) && flock(lfd, LOCK_EX | LOCK_NB) == 0) {
      unlinkat(dfd, "sock", 0);
      unlinkat(dfd, "lock", 0);
      if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) == 0)
        lg_kv(LG_INFO, "removed the qemu-nbd socket directory of a gateway that was killed",
              "dir=/tmp/%s", e->d_name);
    }
    if (lfd >= 0)
      close(lfd);
    close(dfd);
  }
  closedir(d);
}

static pthread_once_t sweep_once = PTHREAD_ONCE_INIT;

/* Can this kernel (and its policy: kernel.io_uring_disabled) give us an
 * io_uring? */
static bool kernel_has_io_uring(void)
{
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  long fd = syscall(__NR_io_uring_setup, 4, &p);
  if (fd < 0)
    return false;
  close((int)fd);
  return true;
}

/* Start qemu-nbd on b->image with a listening socket passed as LISTEN_FDS.
 *
 * Its options, measured for 128 KiB reads at QD8 from the page cache
 * (bench/README.md): --aio=io_uring (reads from the page cache complete at
 * submission, no thread-pool hand-off: a third of the context switches and
 * syscalls of --aio=threads), and glibc's malloc told to neither mmap nor
 * trim the 128 KiB request buffers (otherwise every request maps or grows
 * the heap afresh and page-faults its 32 pages in). */
static int server_start(struct nbd_bs *b, unsigned clients)
{
  pthread_once(&sweep_once, sweep_stale_sockdirs);
  snprintf(b->sockdir, sizeof b->sockdir, "/tmp/" SOCKDIR_PREFIX "XXXXXX");
  if (!mkdtemp(b->sockdir)) {
    b->sockdir[0] = '\0';
    return -errno;
  }
  char lock[sizeof b->sockdir + 8];
  snprintf(lock, sizeof lock, "%s/lock", b->sockdir);
  b->lockfd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (b->lockfd < 0 || flock(b->lockfd, LOCK_EX | LOCK_NB) < 0) {
    int e = errno;
    server_stop(b);
    return -e;
  }
  snprintf(b->sockpath, sizeof b->sockpath, "%s/sock", b->sockdir);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", b->sockpath);
  if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 16) < 0) {
    int e = errno;
    if (s >= 0)
      close(s);
    server_stop(b);
    return -e;
  }
  char shared[32];
  snprintf(shared, sizeof shared, "--shared=%u", clients);
  const char *argv[16];
  int n = 0;
  argv[n++] = "qemu-nbd";
  argv[n++] = "-f";
  argv[n++] = b->format;
  if (b->readonly)
    argv[n++] = "--read-only";
  argv[n++] = shared;
  argv[n++] = "--persistent";        /* reconnects find it still there */
  argv[n++] = "--cache=writeback";
  b->server_uring = !b->no_uring && kernel_has_io_uring();
  argv[n++] = b->server_uring ? "--aio=io_uring" : "--aio=threads";
  argv[n++] = "--discard=unmap";
  argv[n++] = b->image;
  argv[n] = NULL;
  /* the child's environment, built before fork (setenv is not safe after it):
   * ours, plus socket activation, plus large buffers kept off mmap (glibc
   * would otherwise mmap and munmap every 128 KiB request: measured 4x) */
  extern char **environ;
  size_t nenv = 0;
  while (environ[nenv])
    nenv++;
  char **envp = calloc(nenv + 5, sizeof *envp);
  char listen_pid[32];
  if (!envp) {
    close(s);
    server_stop(b);
    return -ENOMEM;
  }
  size_t e = 0;
  for (size_t i = 0; i < nenv; i++)
    if (strncmp(environ[i], "LISTEN_", 7) && strncmp(environ[i], "MALLOC_MMAP_THRESHOLD_=", 23) &&
        strncmp(environ[i], "MALLOC_TRIM_THRESHOLD_=", 23))
      envp[e++] = environ[i];
  envp[e++] = "LISTEN_FDS=1";
  envp[e++] = "MALLOC_MMAP_THRESHOLD_=4194304";
  envp[e++] = "MALLOC_TRIM_THRESHOLD_=268435456";
  envp[e++] = listen_pid; /* filled in by the child: it needs its own pid */
  envp[e] = NULL;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(s);
    free(envp);
    server_stop(b);
    return -err;
  }
  if (pid == 0) {
    /* child: die with the gateway, take the socket as fd 3, exec */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      _exit(1);
    if (s != 3) {
      dup2(s, 3);
      close(s);
    } else {
      fcntl(3, F_SETFD, 0);
    }
    snprintf(listen_pid, sizeof listen_pid, "LISTEN_PID=%d", (int)getpid());
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0)
      dup2(devnull, 0);
    execvpe("qemu-nbd", (char **)argv, envp);
    fprintf(stderr, "lungate: cannot run qemu-nbd: %s (install Debian's qemu-utils)\n",
            strerror(errno));
    _exit(127);
  }
  close(s);
  free(envp);
  b->server_pid = pid;
  return 0;
}

/* ---- connecting ---- */

/* Drive a connection started with nbd_aio_connect_* until it is ready, for
 * at most timeout_s seconds; stopfd (or -1), when readable, abandons it. */
static int wait_connected(struct nbd_handle *h, unsigned timeout_s, int stopfd,
                          char *why, size_t whylen)
{
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (nbd_aio_is_connecting(h) == 1) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (long)timeout_s * 1000 - ((now.tv_sec - t0.tv_sec) * 1000 +
                                        (now.tv_nsec - t0.tv_nsec) / 1000000);
    if (ms <= 0) {
      snprintf(why, whylen, "no answer to the NBD handshake within %u s", timeout_s);
      return -ETIMEDOUT;
    }
    unsigned dir = nbd_aio_get_direction(h);
    struct pollfd pf[2] = {
      { .fd = nbd_aio_get_fd(h),
        .events = (short)(((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                          ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0)) },
      { .fd = stopfd, .events = POLLIN },
    };
    if (pf[0].fd < 0)
      break;
    if (poll(pf, stopfd >= 0 ? 2 : 1, (int)ms) < 0 && errno != EINTR)
      return -errno;
    if (stopfd >= 0 && pf[1].revents) {
      snprintf(why, whylen, "stopping");
      return -ECANCELED;
    }
    int r = 0;
    if (pf[0].revents & (POLLIN | POLLHUP | POLLERR))
      r = nbd_aio_notify_read(h);
    else if (pf[0].revents & POLLOUT)
      r = nbd_aio_notify_write(h);
    if (r < 0)
      break;
  }
  if (nbd_aio_is_ready(h) != 1) {
    snprintf(why, whylen, "%s", nbd_get_error() ? nbd_get_error() : "connection failed");
    return -EIO;
  }
  return 0;
}

static struct nbd_handle *connect_try(struct nbd_bs *b, int stopfd, char *why, size_t whylen,
                                      bool *started)
{
  struct nbd_handle *h = nbd_create();
  if (!h) {
    snprintf(why, whylen, "%s", nbd_get_error());
    return NULL;
  }
  nbd_set_handle_name(h, b->name);
  nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  int r;
  if (b->uri) {
    r = nbd_aio_connect_uri(h, b->uri);
  } else {
    pthread_mutex_lock(&b->server_lock);
    if (b->server_pid > 0 && waitpid(b->server_pid, NULL, WNOHANG) == b->server_pid) {
      lg_warn("storage %s: qemu-nbd (pid %d) for %s has exited; restarting it", b->name,
              (int)b->server_pid, b->image);
      b->server_pid = 0;
      server_stop(b);
    }
    *started = b->server_pid <= 0;
    r = *started ? server_start(b, b->nconns ? b->nconns : NBD_MAX_CONNS) : 0;
    pthread_mutex_unlock(&b->server_lock);
    if (r < 0) {
      snprintf(why, whylen, "cannot start qemu-nbd: %s", strerror(-r));
      nbd_close(h);
      return NULL;
    }
    r = nbd_aio_connect_unix(h, b->sockpath);
  }
  if (r < 0) {
    snprintf(why, whylen, "%s", nbd_get_error());
    nbd_close(h);
    return NULL;
  }
  if (wait_connected(h, b->timeout, stopfd, why, whylen) < 0) {
    nbd_close(h);
    return NULL;
  }
  return h;
}

/* Connect; a qemu-nbd of ours that dies at once with --aio=io_uring (a
 * qemu built without it, a sandbox that forbids it) is run again with
 * --aio=threads. */
static struct nbd_handle *connect_one(struct nbd_bs *b, int stopfd, char *why, size_t whylen)
{
  bool started = false;
  struct nbd_handle *h = connect_try(b, stopfd, why, whylen, &started);
  if (h || !started)
    return h;
  bool retry = false;
  pthread_mutex_lock(&b->server_lock);
  for (int i = 0; i < 20 && b->server_pid > 0 && b->server_uring; i++) {
    if (waitpid(b->server_pid, NULL, WNOHANG) == b->server_pid) {
      lg_warn("storage %s: qemu-nbd exited at start with --aio=io_uring (%s); running it "
              "with --aio=threads", b->name, why);
      b->no_uring = true;
      b->server_pid = 0;
      server_stop(b);
      retry = true;
      break;
    }
    usleep(50000);
  }
  pthread_mutex_unlock(&b->server_lock);
  return retry ? connect_try(b, stopfd, why, whylen, &started) : NULL;
}

/* ---- requests ---- */

static void req_put(struct nbd_req *r)
{
  if (atomic_fetch_sub(&r->refs, 1) == 1) {
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
  }
}

/* The first completion of a request counts (a connection failing its
 * commands and libnbd's own callback may both come). */
static void req_complete(struct nbd_req *r, int result)
{
  pthread_mutex_lock(&r->lock);
  bool first = !r->done;
  if (first) {
    r->result = result;
    r->done = true;
    if (!r->async_done)
      pthread_cond_signal(&r->cond);
  }
  pthread_mutex_unlock(&r->lock);
  if (first && r->async_done)
    r->async_done(r->async_arg, result);
}

static void inflight_remove(struct nbd_conn *c, struct nbd_req *r)
{
  pthread_mutex_lock(&c->ilock);
  for (struct nbd_req **pp = &c->inflight; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  pthread_mutex_unlock(&c->ilock);
}

/* Take the whole in-flight list (to fail it). */
static struct nbd_req *inflight_take(struct nbd_conn *c)
{
  pthread_mutex_lock(&c->ilock);
  struct nbd_req *l = c->inflight;
  c->inflight = NULL;
  for (struct nbd_req *r = l; r; r = r->next)
    atomic_fetch_add(&r->refs, 1); /* ours while we fail it: libnbd may free it meanwhile */
  pthread_mutex_unlock(&c->ilock);
  return l;
}

static void fail_list(struct nbd_req *l, int result)
{
  while (l) {
    struct nbd_req *n = l->next;
    req_complete(l, result);
    req_put(l);
    l = n;
  }
}

/* libnbd completion callback: runs on the I/O thread (or, rarely, on an
 * issuing thread inside its libnbd call); a request leaves the in-flight
 * list here, while libnbd still holds it. */
static int req_callback(void *ud, int *error)
{
  struct nbd_req *r = ud;
  inflight_remove(r->conn, r);
  if (*error) { /* at most one line a second per storage object */
    static const char *const ops[] = { "read", "write", "flush", "trim", "zero" };
    struct nbd_bs *b = r->conn->bs;
    int64_t now = (int64_t)time(NULL), last = atomic_load(&b->last_error_log);
    if (now != last && atomic_compare_exchange_strong(&b->last_error_log, &last, now)) {
      unsigned more = atomic_exchange(&b->errors_unlogged, 0);
      lg_warn("storage %s: %s of %llu bytes at offset %llu on %s failed: %s%s%.0u%s",
              b->name, ops[r->op], (unsigned long long)r->count,
              (unsigned long long)r->offset, b->uri ? b->uri : b->image,
              strerror(*error), more ? " (and " : "", more, more ? " more errors)" : "");
    } else {
      atomic_fetch_add(&b->errors_unlogged, 1);
    }
  }
  if (*error == ESHUTDOWN) { /* the server is going away: every connection leaves it */
    struct nbd_bs *b = r->conn->bs;
    atomic_fetch_add(&b->shutdowns, 1);
    for (unsigned i = 0; i < b->nconns; i++) {
      uint64_t one = 1;
      if (write(b->conns[i].efd, &one, sizeof one) < 0) { /* cannot fail */ }
    }
  }
  req_complete(r, *error ? -*error : 0);
  return 1;
}

static void req_free_cb(void *ud) { req_put(ud); }

/* Issue a request on the connection's handle, from any thread, with c->lock
 * held (the handle stays open meanwhile).  Returns 0, or -errno when it was
 * not issued (and will not complete); *wake: the I/O thread must poll for
 * writing (the request is not all sent). */
static int issue(struct nbd_conn *c, struct nbd_req *r, bool *wake)
{
  nbd_completion_callback cb = { .callback = req_callback, .user_data = r, .free = req_free_cb };
  int64_t cookie;
  atomic_fetch_add(&r->refs, 1); /* libnbd's reference, dropped by .free */
  clock_gettime(CLOCK_MONOTONIC, &r->started);
  r->conn = c;
  pthread_mutex_lock(&c->ilock); /* before the call: a reply may complete it inside */
  r->next = c->inflight;
  c->inflight = r;
  pthread_mutex_unlock(&c->ilock);
  switch (r->op) {
  case OP_READ: cookie = nbd_aio_pread(c->h, r->buf, r->count, r->offset, cb, 0); break;
  case OP_WRITE: cookie = nbd_aio_pwrite(c->h, r->buf, r->count, r->offset, cb, r->flags); break;
  case OP_FLUSH: cookie = nbd_aio_flush(c->h, cb, 0); break;
  case OP_TRIM: cookie = nbd_aio_trim(c->h, r->count, r->offset, cb, r->flags); break;
  default: cookie = nbd_aio_zero(c->h, r->count, r->offset, cb, r->flags); break;
  }
  if (cookie < 0) { /* libnbd has called .free already */
    int e = nbd_get_errno();
    inflight_remove(c, r);
    return -(e ? e : EIO);
  }
  *wake = (nbd_aio_get_direction(c->h) & LIBNBD_AIO_DIRECTION_WRITE) != 0;
  return 0;
}

/* The connection died or stalled: fail everything in flight with result,
 * drop the handle. */
static void conn_down(struct nbd_conn *c, const char *why, int result)
{
  struct nbd_bs *b = c->bs;
  lg_warn("storage %s: connection %u to %s lost (%s); failing its commands and "
          "reconnecting", b->name, c->index, b->uri ? b->uri : b->image, why);
  pthread_mutex_lock(&c->lock); /* no one issues on the handle after this */
  c->up = false;
  struct nbd_handle *h = c->h;
  c->h = NULL;
  c->seen_shutdowns = atomic_load(&c->bs->shutdowns);
  pthread_mutex_unlock(&c->lock);
  fail_list(inflight_take(c), result);
  nbd_close(h); /* runs the remaining .free callbacks */
}

static bool stalled(struct nbd_conn *c)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  bool late = false;
  pthread_mutex_lock(&c->ilock);
  for (struct nbd_req *r = c->inflight; r && !late; r = r->next)
    late = now.tv_sec - r->started.tv_sec > (time_t)c->bs->timeout;
  pthread_mutex_unlock(&c->ilock);
  return late;
}

static void *io_main(void *arg)
{
  struct nbd_conn *c = arg;
  struct nbd_bs *b = c->bs;
  for (;;) {
    pthread_mutex_lock(&c->lock);
    bool stop = c->stop;
    pthread_mutex_unlock(&c->lock);
    if (stop)
      break;

    if (!c->h) { /* reconnect with backoff */
      struct pollfd pf = { .fd = c->efd, .events = POLLIN };
      poll(&pf, 1, (int)c->backoff_ms);
      uint64_t v;
      if (pf.revents && read(c->efd, &v, sizeof v) < 0)
        continue;
      char why[256];
      struct nbd_handle *h = connect_one(b, c->efd, why, sizeof why);
      if (!h) {
        c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
        continue;
      }
      lg_info("storage %s: connection %u to %s is back", b->name, c->index,
              b->uri ? b->uri : b->image);
      c->backoff_ms = BACKOFF_MIN_MS;
      pthread_mutex_lock(&c->lock);
      c->h = h;
      c->up = true;
      pthread_mutex_unlock(&c->lock);
      continue;
    }

    unsigned dir = nbd_aio_get_direction(c->h);
    struct pollfd pf[2] = {
      { .fd = c->efd, .events = POLLIN },
      { .fd = nbd_aio_get_fd(c->h),
        .events = (short)(((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                          ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0)) },
    };
    if (pf[1].fd < 0) {
      conn_down(c, "no socket", -EIO);
      continue;
    }
    int r = poll(pf, 2, 1000);
    if (r < 0 && errno != EINTR)
      break;
    if (pf[0].revents) {
      uint64_t v;
      if (read(c->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        break;
    }
    int nr = 0;
    if (pf[1].revents & (POLLIN | POLLHUP | POLLERR))
      nr = nbd_aio_notify_read(c->h);
    if (nr == 0 && (pf[1].revents & POLLOUT))
      nr = nbd_aio_notify_write(c->h);
    if (nr < 0 || nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h))
      conn_down(c, nr < 0 ? nbd_get_error() : "server closed the connection", -EIO);
    else if (c->seen_shutdowns != atomic_load(&b->shutdowns))
      conn_down(c, "the server is shutting down", -ESHUTDOWN);
    else if (stalled(c))
      conn_down(c, "a command took longer than the timeout", -EIO);
  }
  /* stopping: fail what is left */
  pthread_mutex_lock(&c->lock);
  struct nbd_handle *h = c->h;
  c->h = NULL;
  c->up = false;
  pthread_mutex_unlock(&c->lock);
  if (h) {
    fail_list(inflight_take(c), -ESHUTDOWN);
    nbd_aio_disconnect(h, 0); /* never blocks, unlike nbd_shutdown */
    nbd_close(h);
  }
  return NULL;
}

/* Issue a request on a connection that is up (round-robin, passing over
 * those that are down).  0 when issued; -errno when not (then it will not
 * complete). */
static int start(struct nbd_bs *b, struct nbd_req *r)
{
  unsigned first = atomic_fetch_add(&b->rr, 1);
  for (unsigned i = 0; i < b->nconns; i++) {
    struct nbd_conn *c = &b->conns[(first + i) % b->nconns];
    pthread_mutex_lock(&c->lock);
    if (!c->up || !c->h || c->seen_shutdowns != atomic_load(&b->shutdowns)) {
      pthread_mutex_unlock(&c->lock); /* down, or about to go: its server is leaving */
      continue;
    }
    bool wake = false;
    int e = issue(c, r, &wake);
    pthread_mutex_unlock(&c->lock);
    if (wake) {
      uint64_t one = 1;
      if (write(c->efd, &one, sizeof one) < 0) { /* an eventfd write cannot fail here */ }
    }
    return e;
  }
  return -ENOTCONN;
}

static struct nbd_req *req_new(enum nbd_op op, void *buf, uint64_t count, uint64_t offset,
                               uint32_t flags)
{
  struct nbd_req *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  *r = (struct nbd_req){ .op = op, .buf = buf, .count = count, .offset = offset,
                         .flags = flags };
  atomic_init(&r->refs, 1); /* the caller's; issue() adds libnbd's */
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->cond, NULL);
  return r;
}

/* Issue a request and wait for it. */
static int submit(struct nbd_bs *b, enum nbd_op op, void *buf, uint64_t count,
                  uint64_t offset, uint32_t flags)
{
  struct nbd_req *r = req_new(op, buf, count, offset, flags);
  if (!r)
    return -ENOMEM;
  int result = start(b, r);
  if (result == 0) {
    pthread_mutex_lock(&r->lock);
    while (!r->done)
      pthread_cond_wait(&r->cond, &r->lock);
    result = r->result;
    pthread_mutex_unlock(&r->lock);
  }
  req_put(r);
  return result;
}

/* ---- backstore ops ---- */

static void nbd_bs_close(void *hv);

/* Connect the first connection, learn the export, start the I/O threads. */
static void *nbd_bs_start(struct nbd_bs *b, unsigned want_conns)
{
  char why[256];
  b->nconns = want_conns;
  struct nbd_handle *h = connect_one(b, -1, why, sizeof why);
  if (!h) {
    lg_set_error("storage object \"%s\": cannot connect to %s: %s", b->name,
                 b->uri ? b->uri : "its qemu-nbd", why);
    nbd_bs_close(b);
    return NULL;
  }
  int64_t size = nbd_get_size(h);
  b->readonly = b->readonly || nbd_is_read_only(h) == 1;
  b->can_flush = nbd_can_flush(h) == 1;
  b->can_fua = nbd_can_fua(h) == 1;
  b->can_trim = nbd_can_trim(h) == 1;
  b->can_zero = nbd_can_zero(h) == 1;
  b->multi_conn = nbd_can_multi_conn(h) == 1;
  if (size <= 0) {
    lg_set_error("storage object \"%s\": the NBD export has no size", b->name);
    nbd_close(h);
    nbd_bs_close(b);
    return NULL;
  }
  b->size = (uint64_t)size & ~511ull;
  if (!b->multi_conn && !b->readonly)
    b->nconns = 1; /* several connections would not be coherent */
  for (unsigned i = 0; i < b->nconns; i++) {
    struct nbd_conn *c = &b->conns[i];
    c->bs = b;
    c->index = i;
    c->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->ilock, NULL);
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (i == 0) {
      c->h = h;
    } else if (!(c->h = connect_one(b, -1, why, sizeof why))) {
      lg_warn("storage %s: only %u connection(s): %s", b->name, i, why);
      pthread_mutex_destroy(&c->lock);
      pthread_mutex_destroy(&c->ilock);
      close(c->efd);
      b->nconns = i;
      break;
    }
    c->up = true;
    if (pthread_create(&c->thread, NULL, io_main, c)) {
      lg_set_error("storage object \"%s\": cannot start its I/O thread", b->name);
      nbd_close(c->h);
      c->h = NULL;
      pthread_mutex_destroy(&c->lock);
      pthread_mutex_destroy(&c->ilock);
      close(c->efd);
      b->nconns = i;
      nbd_bs_close(b);
      return NULL;
    }
  }
  lg_info("storage %s: %s, %llu bytes, %s, %u connection(s)%s%s%s", b->name,
          b->uri ? b->uri : b->image, (unsigned long long)b->size,
          b->readonly ? "read-only" : "read-write", b->nconns,
          b->multi_conn ? ", multi-conn" : "", b->can_trim ? ", trim" : "",
          b->can_fua ? ", fua" : "");
  return b;
}

static struct nbd_bs *bs_new(const json_t *so, const struct lg_bs_open_args *args)
{
  struct nbd_bs *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->name = strdup(args->name);
  b->lockfd = -1;
  pthread_mutex_init(&b->server_lock, NULL);
  uint64_t t = NBD_DEFAULT_TIMEOUT;
  lg_json_get_u64(so, "timeout", &t);
  b->timeout = t ? (unsigned)t : NBD_DEFAULT_TIMEOUT;
  b->readonly = args->readonly || json_is_true(json_object_get(so, "readonly"));
  return b;
}

static unsigned want_connections(const json_t *so)
{
  uint64_t n = NBD_DEFAULT_CONNS;
  lg_json_get_u64(so, "connections", &n);
  return n < 1 ? 1 : n > NBD_MAX_CONNS ? NBD_MAX_CONNS : (unsigned)n;
}

/* "nbd": an NBD server given by URI. */
static void *nbd_open(const json_t *so, const struct lg_bs_open_args *args)
{
  const char *uri = json_string_value(json_object_get(so, "uri"));
  if (!uri || !*uri) {
    lg_set_error("storage object \"%s\": key \"uri\" is missing; give an NBD URI such "
                 "as \"nbd://127.0.0.1:10809/export\" or \"nbd+unix:///?socket=/run/x.sock\"",
                 args->name);
    return NULL;
  }
  struct nbd_bs *b = bs_new(so, args);
  if (!b || !(b->uri = strdup(uri))) {
    lg_set_error("out of memory");
    return b ? (nbd_bs_close(b), NULL) : NULL;
  }
  return nbd_bs_start(b, want_connections(so));
}

/* Open an image with qemu-nbd (qcow2 plugin, and rtslib's user:qcow). */
static void *image_open(const json_t *so, const struct lg_bs_open_args *args,
                        const char *dev, const char *format)
{
  char path[PATH_MAX];
  struct stat st;
  if (lg_resolve_path(path, sizeof path, args->config_dir, dev) < 0 || stat(path, &st) < 0) {
    lg_set_error("storage object \"%s\": cannot open \"%s\": %s", args->name, dev,
                 strerror(errno));
    return NULL;
  }
  struct nbd_bs *b = bs_new(so, args);
  if (!b || !(b->image = strdup(path)) || !(b->format = strdup(format))) {
    lg_set_error("out of memory");
    return b ? (nbd_bs_close(b), NULL) : NULL;
  }
  return nbd_bs_start(b, want_connections(so));
}

static void *qcow2_open(const json_t *so, const struct lg_bs_open_args *args)
{
  const char *dev = json_string_value(json_object_get(so, "dev"));
  const char *format = json_string_value(json_object_get(so, "format"));
  if (!dev || !*dev) {
    lg_set_error("storage object \"%s\": key \"dev\" is missing; give the path of the "
                 "qcow2 (or other qemu-readable) image", args->name);
    return NULL;
  }
  static const char *const formats[] = { "qcow2", "raw", "vmdk", "vdi", "vhdx", "qed", "vpc" };
  if (!format)
    format = "qcow2";
  bool known = false;
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    known |= !strcmp(format, formats[i]);
  if (!known) {
    lg_set_error("storage object \"%s\": format \"%s\" is not one qemu-nbd serves here; "
                 "use qcow2, raw, vmdk, vdi, vhdx, qed or vpc", args->name, format);
    return NULL;
  }
  return image_open(so, args, dev, format);
}

/* rtslib-fb's tcmu "user" plugin with config "qcow/PATH" (tcmu-runner's qcow
 * handler), chosen by backends/user.c. */
static void *user_open(const json_t *so, const struct lg_bs_open_args *args)
{
  const char *config = json_string_value(json_object_get(so, "config"));
  if (!config || strncmp(config, "qcow/", 5) || !config[5]) {
    lg_set_error("storage object \"%s\": user (tcmu) config \"%s\": expected \"qcow/PATH\"",
                 args->name, config ? config : "");
    return NULL;
  }
  return image_open(so, args, config + 5, "qcow2");
}

static void nbd_bs_close(void *hv)
{
  struct nbd_bs *b = hv;
  for (unsigned i = 0; i < b->nconns; i++) { /* tell every I/O thread, then join them */
    struct nbd_conn *c = &b->conns[i];
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_mutex_unlock(&c->lock);
    uint64_t one = 1;
    if (write(c->efd, &one, sizeof one) < 0) { /* cannot fail */ }
  }
  for (unsigned i = 0; i < b->nconns; i++) {
    struct nbd_conn *c = &b->conns[i];
    pthread_join(c->thread, NULL);
    close(c->efd);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->ilock);
  }
  server_stop(b);
  pthread_mutex_destroy(&b->server_lock);
  free(b->name);
  free(b->uri);
  free(b->image);
  free(b->format);
  free(b);
}

static uint64_t nbd_bs_size(void *hv) { return ((struct nbd_bs *)hv)->size; }
static uint32_t nbd_bs_block_size(void *hv) { (void)hv; return 512; }
static bool nbd_bs_can_write(void *hv) { return !((struct nbd_bs *)hv)->readonly; }
static bool nbd_bs_can_flush(void *hv) { return ((struct nbd_bs *)hv)->can_flush; }
static bool nbd_bs_can_trim(void *hv)
{
  struct nbd_bs *b = hv;
  return b->can_trim && !b->readonly;
}
static bool nbd_bs_can_zero(void *hv) { return !((struct nbd_bs *)hv)->readonly; }
static bool nbd_bs_can_extents(void *hv) { (void)hv; return false; }

static int nbd_bs_pread(void *hv, void *buf, size_t count, uint64_t offset)
{
  return submit(hv, OP_READ, buf, count, offset, 0);
}

static int nbd_bs_pread_async(void *hv, void *buf, size_t count, uint64_t offset,
                              void (*done)(void *arg, int result), void *arg)
{
  struct nbd_req *r = req_new(OP_READ, buf, count, offset, 0);
  if (!r)
    return -ENOMEM;
  r->async_done = done;
  r->async_arg = arg;
  int e = start(hv, r);
  req_put(r); /* libnbd's reference keeps it to its completion */
  return e;
}

static int nbd_bs_flush(void *hv)
{
  struct nbd_bs *b = hv;
  if (!b->can_flush)
    return 0;
  /* every connection: a flush covers only its own connection's writes
   * unless the server promised multi-conn */
  unsigned n = b->multi_conn ? 1 : b->nconns;
  for (unsigned i = 0; i < n; i++) {
    int r = submit(b, OP_FLUSH, NULL, 0, 0, 0);
    if (r < 0)
      return r;
  }
  return 0;
}

static int nbd_bs_pwrite(void *hv, const void *buf, size_t count, uint64_t offset,
                         unsigned flags)
{
  struct nbd_bs *b = hv;
  bool fua = flags & LG_BS_FUA;
  int r = submit(b, OP_WRITE, (void *)buf, count, offset,
                 fua && b->can_fua ? LIBNBD_CMD_FLAG_FUA : 0);
  if (r == 0 && fua && !b->can_fua)
    r = nbd_bs_flush(b);
  return r;
}

static int nbd_bs_trim(void *hv, uint64_t count, uint64_t offset)
{
  struct nbd_bs *b = hv;
  return b->can_trim ? submit(b, OP_TRIM, NULL, count, offset, 0) : 0;
}

static int nbd_bs_zero(void *hv, uint64_t count, uint64_t offset, unsigned flags)
{
  struct nbd_bs *b = hv;
  if (!b->can_zero) { /* write zeroes ourselves */
    static const uint8_t zeroes[65536];
    while (count > 0) {
      size_t n = count < sizeof zeroes ? (size_t)count : sizeof zeroes;
      int r = nbd_bs_pwrite(b, zeroes, n, offset, 0);
      if (r < 0)
        return r;
      count -= n;
      offset += n;
    }
    return (flags & LG_BS_FUA) ? nbd_bs_flush(b) : 0;
  }
  uint32_t f = (flags & LG_BS_MAY_TRIM) ? 0 : LIBNBD_CMD_FLAG_NO_HOLE;
  if ((flags & LG_BS_FUA) && b->can_fua)
    f |= LIBNBD_CMD_FLAG_FUA;
  int r = submit(b, OP_ZERO, NULL, count, offset, f);
  if (r == 0 && (flags & LG_BS_FUA) && !b->can_fua)
    r = nbd_bs_flush(b);
  return r;
}

#define NBD_OPS(NAME, OPEN)                                                     \
  {                                                                             \
    .name = NAME, .open = OPEN, .close = nbd_bs_close, .size = nbd_bs_size,    \
    .block_size = nbd_bs_block_size, .can_write = nbd_bs_can_write,            \
    .can_flush = nbd_bs_can_flush, .can_trim = nbd_bs_can_trim,                \
    .can_zero = nbd_bs_can_zero, .can_extents = nbd_bs_can_extents,            \
    .pread = nbd_bs_pread, .pwrite = nbd_bs_pwrite, .flush = nbd_bs_flush,     \
    .trim = nbd_bs_trim, .zero = nbd_bs_zero, .pread_async = nbd_bs_pread_async, \
  }

const struct lg_backstore_ops lg_nbd_backstore = NBD_OPS("nbd", nbd_open);
const struct lg_backstore_ops lg_qcow2_backstore = NBD_OPS("qcow2", qcow2_open);
const struct lg_backstore_ops lg_user_qcow_backstore = NBD_OPS("user", user_open);
