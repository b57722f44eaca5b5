/* lg-web-client: a libiscsi initiator that stays logged in and keeps a
 * little traffic going, for the web console's test.
 *
 *   lg-web-client PORTAL TARGET INITIATOR WRITE-KIB
 *
 * Logs in to LUN 0 of TARGET at PORTAL ("127.0.0.1:PORT") as INITIATOR,
 * writes WRITE-KIB KiB at the start of the disk (its overlay's layer), then,
 * every 200 ms, reads 64 KiB and writes 4 KiB, so its byte counts grow.
 * Prints "ready" once the first writes are done.  SIGTERM or SIGINT: logs
 * out and exits 0.  Exits 2 when the gateway ends the session (a forced
 * reset logs it out), 1 on any other failure. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: lg-web-client PORTAL TARGET INITIATOR WRITE-KIB\n");
    return 1;
  }
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  struct iscsi_context *iscsi = iscsi_create_context(argv[3]);
  if (!iscsi)
    return 1;
  iscsi_set_targetname(iscsi, argv[2]);
  iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE);
  iscsi_set_noautoreconnect(iscsi, 1);
  iscsi_set_timeout(iscsi, 30);
  if (iscsi_full_connect_sync(iscsi, argv[1], 0) != 0) {
    fprintf(stderr, "lg-web-client: login as %s failed: %s\n", argv[3], iscsi_get_error(iscsi));
    return 1;
  }
  static uint8_t buf[65536];
  memset(buf, 0x5a, sizeof buf);
  long kib = atol(argv[4]);
  for (long off = 0; off < kib * 1024; off += 65536) {
    uint32_t n = kib * 1024 - off < 65536 ? (uint32_t)(kib * 1024 - off) : 65536;
    struct scsi_task *t = iscsi_write16_sync(iscsi, 0, (uint64_t)off / 512, buf, n, 512, 0, 0,
                                             0, 0, 0);
    if (!t || t->status != SCSI_STATUS_GOOD) {
      fprintf(stderr, "lg-web-client: write failed: %s\n", iscsi_get_error(iscsi));
      return 1;
    }
    scsi_free_scsi_task(t);
  }
  printf("ready\n");
  fflush(stdout);
  for (unsigned i = 0; !stop; i++) {
    struct scsi_task *t = iscsi_read16_sync(iscsi, 0, (uint64_t)(i % 64) * 128, 65536, 512, 0,
                                            0, 0, 0, 0);
    if (t && t->status == SCSI_STATUS_GOOD) {
      scsi_free_scsi_task(t);
      t = iscsi_write16_sync(iscsi, 0, 8192 + (uint64_t)(i % 64) * 8, buf, 4096, 512, 0, 0, 0,
                             0, 0);
    }
    if (!t || t->status != SCSI_STATUS_GOOD) {
      if (stop)
        break;
      fprintf(stderr, "lg-web-client: %s: the session ended: %s\n", argv[3],
              iscsi_get_error(iscsi));
      if (t)
        scsi_free_scsi_task(t);
      iscsi_destroy_context(iscsi);
      return 2;
    }
    scsi_free_scsi_task(t);
    struct timespec ts = { 0, 200 * 1000000 };
    nanosleep(&ts, NULL);
  }
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return 0;
}
