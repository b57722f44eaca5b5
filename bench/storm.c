/* storm: the boot-storm client of bench/run (a benchmark tool, not a test).
 *
 * Logs N sessions in to one iSCSI LUN, each with its own initiator name (as
 * N PCs booting at once would), then either
 *
 *   read mode (default): every session reads BYTES from LBA 0 onwards in
 *   IO-byte READ(16)s with DEPTH commands in flight (1: the iPXE pattern),
 *   all sessions at once from one poll loop; prints the aggregate rate;
 *
 *   idle mode (--idle): prints "ready N" once every session is logged in,
 *   then keeps the sessions open and serviced (NOP-In answered) until its
 *   standard input reaches end of file, and logs them out.  bench/run reads
 *   the target's RSS meanwhile.
 *
 *   storm [-n SESSIONS] [-s BYTES] [-b IO-BYTES] [-d DEPTH] [-i INITIATOR-PREFIX]
 *         [--idle] iscsi://HOST:PORT/TARGET-IQN/LUN
 *
 * Output (read mode), one line, all rates in decimal MB/s:
 *   storm sessions=64 bytes=2147483648 seconds=2.345 mbps=915.7 login_s=0.210
 *         first_done_s=2.001 last_done_s=2.345
 *
 * Data is read into one buffer per session (libiscsi's iov interface), so the
 * client copies nothing it does not have to; it checks status and length of
 * every read and exits 1 on the first error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

struct sess {
  struct iscsi_context *iscsi;
  int lun;
  uint64_t next;        /* next byte offset to ask for */
  uint64_t done;        /* bytes completed */
  int in_flight;
  double done_at;       /* seconds from the start, when done == total */
  unsigned char *buf;   /* DEPTH slots of io bytes */
  struct scsi_iovec *iov; /* one per slot: libiscsi keeps a pointer to it */
  int slot;
};

static uint64_t total_per_sess = 32ull << 20;
static uint32_t io_bytes = 64 << 10;
static int depth = 1;
static uint32_t blocksize = 512;
static double t0;
static int failed;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void submit(struct sess *s);

static void read_cb(struct iscsi_context *iscsi, int status, void *command_data, void *priv)
{
  struct sess *s = priv;
  struct scsi_task *task = command_data;
  if (status != SCSI_STATUS_GOOD) {
    fprintf(stderr, "storm: READ(16) failed: status %d: %s\n", status, iscsi_get_error(iscsi));
    failed = 1;
  } else if (task->residual_status != SCSI_RESIDUAL_NO_RESIDUAL) {
    fprintf(stderr, "storm: READ(16) returned a residual of %zu bytes\n", (size_t)task->residual);
    failed = 1;
  } else {
    s->done += io_bytes;
  }
  scsi_free_scsi_task(task);
  s->in_flight--;
  if (s->done >= total_per_sess && s->in_flight == 0)
    s->done_at = now() - t0;
  if (!failed)
    submit(s);
}

static void submit(struct sess *s)
{
  while (s->in_flight < depth && s->next < total_per_sess) {
    struct scsi_iovec *iov = &s->iov[s->slot];
    iov->iov_base = s->buf + (size_t)s->slot * io_bytes;
    iov->iov_len = io_bytes;
    s->slot = (s->slot + 1) % depth;
    struct scsi_task *t = iscsi_read16_iov_task(s->iscsi, s->lun, s->next / blocksize, io_bytes,
                                                (int)blocksize, 0, 0, 0, 0, 0, read_cb, s, iov, 1);
    if (!t) {
      fprintf(stderr, "storm: cannot queue READ(16): %s\n", iscsi_get_error(s->iscsi));
      failed = 1;
      return;
    }
    s->next += io_bytes;
    s->in_flight++;
  }
}

static void usage(void)
{
  fprintf(stderr, "usage: storm [-n SESSIONS] [-s BYTES] [-b IO-BYTES] [-d DEPTH] "
                  "[-i INITIATOR-PREFIX] [--idle] iscsi://HOST:PORT/IQN/LUN\n");
  exit(2);
}

static uint64_t parse_size(const char *a)
{
  char *end;
  errno = 0;
  uint64_t v = strtoull(a, &end, 0);
  if (errno || end == a)
    usage();
  switch (*end) {
  case 'k': case 'K': v <<= 10; break;
  case 'm': case 'M': v <<= 20; break;
  case 'g': case 'G': v <<= 30; break;
  case '\0': break;
  default: usage();
  }
  return v;
}

int main(int argc, char **argv)
{
  int n = 64, idle = 0;
  const char *prefix = "iqn.2025-10.org.lungate.bench:storm";
  static const struct option opts[] = {
    { "idle", no_argument, NULL, 'I' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long(argc, argv, "n:s:b:d:i:", opts, NULL)) != -1) {
    switch (c) {
    case 'n': n = atoi(optarg); break;
    case 's': total_per_sess = parse_size(optarg); break;
    case 'b': io_bytes = (uint32_t)parse_size(optarg); break;
    case 'd': depth = atoi(optarg); break;
    case 'i': prefix = optarg; break;
    case 'I': idle = 1; break;
    default: usage();
    }
  }
  if (optind != argc - 1 || n < 1 || depth < 1 || io_bytes == 0)
    usage();
  const char *url = argv[optind];

  struct sess *ss = calloc((size_t)n, sizeof *ss);
  struct pollfd *pfd = calloc((size_t)n + 1, sizeof *pfd);
  if (!ss || !pfd) {
    fprintf(stderr, "storm: out of memory\n");
    return 1;
  }

  double tl = now();
  for (int i = 0; i < n; i++) {
    char name[256];
    snprintf(name, sizeof name, "%s-%03d", prefix, i);
    struct sess *s = &ss[i];
    s->iscsi = iscsi_create_context(name);
    if (!s->iscsi) {
      fprintf(stderr, "storm: cannot create an iSCSI context\n");
      return 1;
    }
    struct iscsi_url *u = iscsi_parse_full_url(s->iscsi, url);
    if (!u) {
      fprintf(stderr, "storm: bad URL %s: %s\n", url, iscsi_get_error(s->iscsi));
      return 2;
    }
    iscsi_set_targetname(s->iscsi, u->target);
    iscsi_set_session_type(s->iscsi, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(s->iscsi, ISCSI_HEADER_DIGEST_NONE);
    if (iscsi_full_connect_sync(s->iscsi, u->portal, u->lun) != 0) {
      fprintf(stderr, "storm: session %d (%s): login failed: %s\n", i, name,
              iscsi_get_error(s->iscsi));
      return 1;
    }
    s->lun = u->lun;
    iscsi_destroy_url(u);
    if (i == 0) {
      struct scsi_task *t = iscsi_readcapacity16_sync(s->iscsi, s->lun);
      struct scsi_readcapacity16 *rc = t && t->status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(t) : NULL;
      if (!rc) {
        fprintf(stderr, "storm: READ CAPACITY(16) failed: %s\n", iscsi_get_error(s->iscsi));
        return 1;
      }
      blocksize = rc->block_length;
      uint64_t cap = (rc->returned_lba + 1) * (uint64_t)blocksize;
      scsi_free_scsi_task(t);
      if (!idle && (total_per_sess > cap || io_bytes % blocksize || total_per_sess % io_bytes)) {
        fprintf(stderr, "storm: %" PRIu64 " bytes in %u-byte reads do not fit a %" PRIu64
                " byte LUN of %u-byte blocks\n", total_per_sess, io_bytes, cap, blocksize);
        return 2;
      }
    }
    if (!idle) {
      s->buf = malloc((size_t)io_bytes * (size_t)depth);
      s->iov = calloc((size_t)depth, sizeof *s->iov);
      if (!s->buf || !s->iov) {
        fprintf(stderr, "storm: out of memory\n");
        return 1;
      }
      memset(s->buf, 0, (size_t)io_bytes * (size_t)depth);
    }
  }
  double login_s = now() - tl;

  if (idle) {
    printf("ready %d login_s=%.3f\n", n, login_s);
    fflush(stdout);
    for (;;) {
      for (int i = 0; i < n; i++) {
        pfd[i].fd = iscsi_get_fd(ss[i].iscsi);
        pfd[i].events = (short)iscsi_which_events(ss[i].iscsi);
      }
      pfd[n].fd = STDIN_FILENO;
      pfd[n].events = POLLIN;
      if (poll(pfd, (nfds_t)n + 1, 1000) < 0) {
        if (errno == EINTR)
          continue;
        break;
      }
      if (pfd[n].revents) {
        char tmp[64];
        if (read(STDIN_FILENO, tmp, sizeof tmp) <= 0)
          break;
      }
      for (int i = 0; i < n; i++)
        if (iscsi_service(ss[i].iscsi, pfd[i].revents) < 0) {
          fprintf(stderr, "storm: session %d: %s\n", i, iscsi_get_error(ss[i].iscsi));
          return 1;
        }
    }
  } else {
    t0 = now();
    for (int i = 0; i < n; i++)
      submit(&ss[i]);
    int busy = n;
    while (busy && !failed) {
      busy = 0;
      for (int i = 0; i < n; i++) {
        pfd[i].fd = iscsi_get_fd(ss[i].iscsi);
        pfd[i].events = (short)iscsi_which_events(ss[i].iscsi);
      }
      if (poll(pfd, (nfds_t)n, 10000) < 0) {
        if (errno == EINTR)
          continue;
        perror("storm: poll");
        return 1;
      }
      for (int i = 0; i < n; i++) {
        if (pfd[i].revents && iscsi_service(ss[i].iscsi, pfd[i].revents) < 0) {
          fprintf(stderr, "storm: session %d: %s\n", i, iscsi_get_error(ss[i].iscsi));
          return 1;
        }
        if (ss[i].done < total_per_sess || ss[i].in_flight)
          busy++;
      }
    }
    if (failed)
      return 1;
    double secs = now() - t0, first = secs, last = 0;
    for (int i = 0; i < n; i++) {
      if (ss[i].done_at < first)
        first = ss[i].done_at;
      if (ss[i].done_at > last)
        last = ss[i].done_at;
    }
    uint64_t bytes = total_per_sess * (uint64_t)n;
    printf("storm sessions=%d bytes=%" PRIu64 " seconds=%.3f mbps=%.1f login_s=%.3f "
           "first_done_s=%.3f last_done_s=%.3f\n",
           n, bytes, secs, bytes / secs / 1e6, login_s, first, last);
  }

  for (int i = 0; i < n; i++) {
    iscsi_logout_sync(ss[i].iscsi);
    iscsi_destroy_context(ss[i].iscsi);
    free(ss[i].buf);
    free(ss[i].iov);
  }
  free(ss);
  free(pfd);
  return 0;
}
