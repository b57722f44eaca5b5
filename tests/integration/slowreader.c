/* lg-slow-reader: an initiator that sends many large READs at once, then
 * does not read the answers for a while, as a stalled or busy host would.
 *
 *   lg-slow-reader PORTAL IQN LUN IMAGE COUNT BYTES PAUSE-MS
 *
 * Queues COUNT READ(16) of BYTES each (block 512, consecutive ranges,
 * wrapping inside IMAGE), writes them all out at once (corked) without reading, sleeps
 * PAUSE-MS (the target's socket fills meanwhile), then takes the answers and
 * compares each with IMAGE read directly.  Then a WRITE ATOMIC(16) of the
 * first 4 KiB must complete (a read that left the LUN locked would hold it
 * off for ever) and read back as written.  Prints "ok" and exits 0, or says
 * what went wrong and exits 1. */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "client.h"

#define MAX_READS 64

struct slot {
  uint64_t offset;
  bool done;
  int status;
  unsigned char *data;
  size_t len;
};

static void read_done(struct iscsi_context *iscsi, int status, void *command_data, void *arg)
{
  struct slot *s = arg;
  struct scsi_task *t = command_data;
  (void)iscsi;
  s->done = true;
  s->status = status;
  if (t && status == SCSI_STATUS_GOOD && t->datain.size > 0) {
    s->len = (size_t)t->datain.size;
    s->data = malloc(s->len);
    if (s->data)
      memcpy(s->data, t->datain.data, s->len);
  }
  if (t)
    scsi_free_scsi_task(t);
}

/* Service the connection in the given direction(s) until cond() or 30 s. */
static int service_until(struct iscsi_context *iscsi, short events, bool (*cond)(void *), void *arg)
{
  time_t until = time(NULL) + 30;
  while (!cond(arg)) {
    if (time(NULL) > until) {
      fprintf(stderr, "lg-slow-reader: timed out\n");
      return -1;
    }
    struct pollfd p = { .fd = iscsi_get_fd(iscsi), .events = (short)(iscsi_which_events(iscsi) & events) };
    if (poll(&p, 1, 1000) < 0)
      return -1;
    if (p.revents && iscsi_service(iscsi, p.revents) < 0) {
      fprintf(stderr, "lg-slow-reader: %s\n", iscsi_get_error(iscsi));
      return -1;
    }
  }
  return 0;
}

static bool all_sent(void *arg) { return iscsi_out_queue_length(arg) == 0; }

static struct slot slots[MAX_READS];
static int n_slots;

static bool all_done(void *arg)
{
  (void)arg;
  for (int i = 0; i < n_slots; i++)
    if (!slots[i].done)
      return false;
  return true;
}

int main(int argc, char **argv)
{
  if (argc != 8) {
    fprintf(stderr, "usage: lg-slow-reader PORTAL IQN LUN IMAGE COUNT BYTES PAUSE-MS\n");
    return 1;
  }
  int lun = atoi(argv[3]);
  n_slots = atoi(argv[5]);
  size_t bytes = (size_t)atol(argv[6]);
  int pause_ms = atoi(argv[7]);
  int fd = open(argv[4], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || n_slots < 1 || n_slots > MAX_READS || bytes == 0 ||
      bytes % 512 || (uint64_t)st.st_size < bytes) {
    fprintf(stderr, "lg-slow-reader: bad arguments or image\n");
    return 1;
  }
  struct iscsi_context *iscsi = lg_client_login("lg-slow-reader",
                                                "iqn.2025-10.org.lungate.test:slow-reader",
                                                argv[1], argv[2], lun, 30);
  if (!iscsi)
    return 1;

  /* all the commands in one segment, so that the target finds them queued
   * together rather than the first alone */
  int one = 1, zero = 0;
  setsockopt(iscsi_get_fd(iscsi), IPPROTO_TCP, TCP_CORK, &one, sizeof one);
  uint64_t span = (uint64_t)st.st_size / bytes * bytes;
  for (int i = 0; i < n_slots; i++) {
    slots[i].offset = (uint64_t)i * bytes % span;
    if (!iscsi_read16_task(iscsi, lun, slots[i].offset / 512, (uint32_t)bytes, 512, 0, 0, 0, 0,
                           0, read_done, &slots[i])) {
      fprintf(stderr, "lg-slow-reader: queueing read %d: %s\n", i, iscsi_get_error(iscsi));
      return 1;
    }
  }
  /* every command out, nothing read back */
  if (service_until(iscsi, POLLOUT, all_sent, iscsi) < 0)
    return 1;
  setsockopt(iscsi_get_fd(iscsi), IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
  usleep((useconds_t)pause_ms * 1000);
  if (service_until(iscsi, POLLIN | POLLOUT, all_done, NULL) < 0)
    return 1;

  int bad = 0;
  unsigned char *want = malloc(bytes);
  for (int i = 0; want && i < n_slots; i++) {
    struct slot *s = &slots[i];
    if (s->status != SCSI_STATUS_GOOD || s->len != bytes || !s->data) {
      fprintf(stderr, "lg-slow-reader: read %d: status %d, %zu bytes\n", i, s->status, s->len);
      bad++;
    } else if (pread(fd, want, bytes, (off_t)s->offset) != (ssize_t)bytes ||
               memcmp(want, s->data, bytes)) {
      size_t k = 0;
      while (k < bytes && want[k] == s->data[k])
        k++;
      fprintf(stderr, "lg-slow-reader: read %d (offset %llu) differs from the image at byte %zu\n",
              i, (unsigned long long)s->offset, k);
      bad++;
    }
    free(s->data);
  }
  free(want);
  if (bad)
    return 1;

  unsigned char page[4096];
  memset(page, 0x5a, sizeof page);
  struct scsi_task *t = iscsi_writeatomic16_sync(iscsi, lun, 0, page, sizeof page, 512, 0, 0, 0, 0);
  if (!t || t->status != SCSI_STATUS_GOOD) {
    fprintf(stderr, "lg-slow-reader: WRITE ATOMIC after the reads: %s\n",
            t ? "not GOOD" : iscsi_get_error(iscsi));
    return 1;
  }
  scsi_free_scsi_task(t);
  t = iscsi_read16_sync(iscsi, lun, 0, sizeof page, 512, 0, 0, 0, 0, 0);
  if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size != (int)sizeof page ||
      memcmp(t->datain.data, page, sizeof page)) {
    fprintf(stderr, "lg-slow-reader: the atomic write does not read back\n");
    return 1;
  }
  scsi_free_scsi_task(t);
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  close(fd);
  printf("ok\n");
  return 0;
}
