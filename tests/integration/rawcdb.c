/* lg-raw-cdb: send one CDB through libiscsi and print what comes back.
 *
 *   lg-raw-cdb PORTAL IQN LUN CDB-HEX [IN-LENGTH | out:DATA-HEX]
 *
 * With IN-LENGTH the command reads up to that many bytes; with out:DATA-HEX
 * it sends that data.  Prints "status: GOOD" or "status: CHECK CONDITION
 * key=0xK asc=0xAA ascq=0xQQ" (or "status: 0xSS"), then "data: HEX" of the
 * data-in.  Exit 0 when the command completed (whatever its status), 1 on
 * other failures. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "client.h"

static size_t unhex(const char *s, unsigned char *out, size_t max)
{
  size_t n = 0;
  while (s[0] && s[1] && n < max) {
    unsigned v;
    if (sscanf(s, "%2x", &v) != 1)
      break;
    out[n++] = (unsigned char)v;
    s += 2;
  }
  return n;
}

int main(int argc, char **argv)
{
  if (argc < 5 || argc > 6) {
    fprintf(stderr, "usage: lg-raw-cdb PORTAL IQN LUN CDB-HEX [IN-LENGTH | out:DATA-HEX]\n");
    return 1;
  }
  int lun = atoi(argv[3]);
  struct scsi_task *t = calloc(1, sizeof *t);
  static unsigned char out[65536];
  struct iscsi_data data = { 0 };
  if (!t)
    return 1;
  t->cdb_size = (int)unhex(argv[4], t->cdb, sizeof t->cdb);
  t->xfer_dir = SCSI_XFER_NONE;
  if (argc == 6 && !strncmp(argv[5], "out:", 4)) {
    data.size = unhex(argv[5] + 4, out, sizeof out);
    data.data = out;
    t->xfer_dir = SCSI_XFER_WRITE;
    t->expxferlen = (int)data.size;
  } else if (argc == 6 && atoi(argv[5]) > 0) {
    t->xfer_dir = SCSI_XFER_READ;
    t->expxferlen = atoi(argv[5]);
  }
  struct iscsi_context *iscsi = lg_client_login("lg-raw-cdb", "iqn.2025-10.org.lungate.test:raw-cdb",
                                                argv[1], argv[2], lun, 30);
  if (!iscsi)
    return 1;
  if (!iscsi_scsi_command_sync(iscsi, lun, t, data.size ? &data : NULL)) {
    fprintf(stderr, "lg-raw-cdb: command: %s\n", iscsi_get_error(iscsi));
    return 1;
  }
  if (t->status == SCSI_STATUS_GOOD)
    printf("status: GOOD\n");
  else if (t->status == SCSI_STATUS_CHECK_CONDITION)
    printf("status: CHECK CONDITION key=0x%x asc=0x%02x ascq=0x%02x\n", t->sense.key,
           t->sense.ascq >> 8, t->sense.ascq & 0xff);
  else
    printf("status: 0x%x\n", t->status);
  printf("data: ");
  for (int i = 0; i < t->datain.size; i++)
    printf("%02x", t->datain.data[i]);
  printf("\n");
  scsi_free_scsi_task(t);
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return 0;
}
