/* Fuzz the PDU receive state machine, login and the full feature phase.
 * Input byte 0: bit 0 set means "log in first with a canned, valid login";
 * the rest is fed to iscsi_rx_feed in pieces whose sizes come from byte 1. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi/iscsi.h"
#include "util/log.h"

static struct lg_model *model;

static void setup(void)
{
  lg_log_set_level(LG_ERROR); /* a log line per login would drown the run */
  char dir[] = "/tmp/lungate-fuzz-XXXXXX", path[64], json[512];
  if (!mkdtemp(dir))
    abort();
  snprintf(path, sizeof path, "%s/a.img", dir);
  FILE *f = fopen(path, "w");
  if (!f || ftruncate(fileno(f), 1 << 20) < 0)
    abort();
  fclose(f);
  snprintf(json, sizeof json,
           "{\"storage_objects\":[{\"plugin\":\"fileio\",\"name\":\"a\",\"dev\":\"%s\"}],"
           "\"targets\":[{\"wwn\":\"iqn.2025-10.org.test:t\",\"tpgs\":[{\"tag\":1,"
           "\"attributes\":{\"generate_node_acls\":1},\"luns\":[{\"index\":0,"
           "\"storage_object\":\"/backstores/fileio/a\"}]}]}]}", path);
  json_t *j = json_loads(json, 0, NULL);
  char *err = NULL;
  model = lg_model_load(j, NULL, &err);
  json_decref(j);
  if (!model || iscsi_workq_start(2) < 0)
    abort();
  unlink(path); /* the open file stays */
  rmdir(dir);
}

/* Read and drop whatever the target sends. */
static void *drain(void *arg)
{
  int fd = *(int *)arg;
  char buf[65536];
  while (recv(fd, buf, sizeof buf, 0) > 0)
    ;
  return NULL;
}

static const char login_keys[] =
  "InitiatorName=iqn.2025-10.org.test:fuzz\0SessionType=Normal\0"
  "TargetName=iqn.2025-10.org.test:t\0InitialR2T=No\0ImmediateData=Yes\0"
  "MaxRecvDataSegmentLength=8192\0MaxBurstLength=65536\0FirstBurstLength=16384\0"
  "MaxOutstandingR2T=2\0";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, setup);
  if (size < 2)
    return 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return 0;
  pthread_t th;
  pthread_create(&th, NULL, drain, &sv[1]);
  struct iscsi_conn *c = iscsi_conn_new(sv[0], model);
  int r = 0;
  if (data[0] & 1) {
    uint8_t pdu[ISCSI_BHS_LEN + sizeof login_keys + 4] = { 0x43, 0x87 };
    pdu[13] = 1;
    bhs_set_data_len(pdu, sizeof login_keys - 1);
    memcpy(pdu + ISCSI_BHS_LEN, login_keys, sizeof login_keys - 1);
    r = iscsi_rx_feed(c, pdu, ISCSI_BHS_LEN + ((sizeof login_keys - 1 + 3) & ~3u));
  }
  size_t step = (size_t)data[1] * 7 + 1;
  for (size_t off = 2; r == 0 && off < size && c->phase != PHASE_CLOSING; off += step)
    r = iscsi_rx_feed(c, data + off, size - off < step ? size - off : step);
  c->phase = PHASE_CLOSING;
  iscsi_conn_drain_tasks(c);
  shutdown(sv[0], SHUT_RDWR);
  pthread_join(th, NULL);
  close(sv[1]);
  iscsi_conn_free(c); /* closes sv[0] */
  return 0;
}
