/* lg-xcopy-client: one EXTENDED COPY (LID1) through libiscsi, block to block
 * between two LUNs of a target, then RECEIVE COPY RESULTS (COPY STATUS).
 *
 *   lg-xcopy-client PORTAL IQN CMD-LUN SRC-LUN SRC-LBA DST-LUN DST-LBA NBLOCKS LIST-ID
 *
 * The command goes to CMD-LUN; the source and destination are named by the
 * NAA designator each LUN reports in VPD page 83h (DST-LUN -1: a designator
 * no LUN has).  Prints "xcopy: GOOD" or "xcopy: CHECK CONDITION key=0xK
 * asc=0xAA ascq=0xQQ" (or another status), then, after GOOD,
 * "status=S segments=N bytes=B" from COPY STATUS.  Exit 0 when both
 * commands ran (whatever their status), 1 on other failures. */
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "client.h"

static void die(const char *what, struct iscsi_context *iscsi)
{
  fprintf(stderr, "lg-xcopy-client: %s: %s\n", what, iscsi ? iscsi_get_error(iscsi) : "");
  exit(1);
}

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static void put32(unsigned char *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

/* An identification target descriptor (E4h) naming the LUN by its NAA. */
static void target_descriptor(struct iscsi_context *iscsi, int lun, unsigned char *d)
{
  memset(d, 0, 32);
  d[0] = 0xe4;
  d[4] = 0x01;                                   /* binary */
  d[5] = 0x03;                                   /* NAA, associated with the LU */
  d[7] = 16;
  if (lun < 0) {
    memset(d + 8, 0x6f, 16);                     /* no LUN has this one */
  } else {
    struct scsi_task *t = iscsi_inquiry_sync(iscsi, lun, 1, 0x83, 255);
    if (!t || t->status != SCSI_STATUS_GOOD)
      die("INQUIRY VPD 83h", iscsi);
    struct scsi_inquiry_device_identification *id = scsi_datain_unmarshall(t);
    struct scsi_inquiry_device_designator *g = id ? id->designators : NULL;
    while (g && !(g->designator_type == SCSI_DESIGNATOR_TYPE_NAA && g->designator_length == 16))
      g = g->next;
    if (!g)
      die("no 16-byte NAA designator in VPD 83h", NULL);
    memcpy(d + 8, g->designator, 16);
    scsi_free_scsi_task(t);
  }
  put32(d + 28, 512);                            /* disk block length */
}

int main(int argc, char **argv)
{
  if (argc != 10 && argc != 12) {
    fprintf(stderr, "usage: lg-xcopy-client PORTAL IQN CMD-LUN SRC-LUN SRC-LBA DST-LUN DST-LBA NBLOCKS LIST-ID\n"
                    "       lg-xcopy-client PORTAL IQN CMD-LUN SRC-LUN SRC-LBA DST-LUN DST-LBA NBYTES LIST-ID SRC-OFF DST-OFF\n"
                    "(the second: a block with offset to block with offset segment, 0Ah)\n");
    return 1;
  }
  bool offsets = argc == 12;
  int cmd_lun = atoi(argv[3]), src = atoi(argv[4]), dst = atoi(argv[6]);
  uint64_t src_lba = strtoull(argv[5], NULL, 0), dst_lba = strtoull(argv[7], NULL, 0);
  unsigned nblocks = (unsigned)strtoul(argv[8], NULL, 0), list_id = (unsigned)atoi(argv[9]);

  struct iscsi_context *iscsi = lg_client_login("lg-xcopy-client",
                                                "iqn.2025-10.org.lungate.test:xcopy-client",
                                                argv[1], argv[2], cmd_lun, 60);
  if (!iscsi)
    return 1;

  unsigned char p[16 + 64 + 32] = { 0 };
  size_t seg_len = offsets ? 32 : 28;
  p[0] = (unsigned char)list_id;                 /* LIST ID USAGE 00b: status kept */
  put16(p + 2, 64);                              /* target descriptor list length */
  put32(p + 8, (uint32_t)seg_len);               /* segment descriptor list length */
  target_descriptor(iscsi, src, p + 16);
  target_descriptor(iscsi, dst, p + 48);
  unsigned char *s = p + 80;
  s[0] = offsets ? 0x0a : 0x02;                  /* block (with offset) to block (with offset) */
  put16(s + 2, (uint16_t)(seg_len - 4));
  put16(s + 4, 0);                               /* source: target descriptor 0 */
  put16(s + 6, 1);                               /* destination: target descriptor 1 */
  if (offsets) {
    put32(s + 8, nblocks);                       /* a count of bytes */
    put16(s + 28, (uint16_t)strtoul(argv[10], NULL, 0));
    put16(s + 30, (uint16_t)strtoul(argv[11], NULL, 0));
  } else {
    put16(s + 10, (uint16_t)nblocks);
  }
  put64(s + 12, src_lba);
  put64(s + 20, dst_lba);
  struct iscsi_data data = { .size = (int)(80 + seg_len), .data = p };
  struct scsi_task *t = iscsi_extended_copy_sync(iscsi, cmd_lun, &data);
  if (!t)
    die("EXTENDED COPY", iscsi);
  if (t->status == SCSI_STATUS_GOOD) {
    printf("xcopy: GOOD\n");
  } else if (t->status == SCSI_STATUS_CHECK_CONDITION) {
    printf("xcopy: CHECK CONDITION key=0x%x asc=0x%02x ascq=0x%02x\n", t->sense.key,
           t->sense.ascq >> 8, t->sense.ascq & 0xff);
  } else {
    printf("xcopy: status 0x%x\n", t->status);
  }
  int good = t->status == SCSI_STATUS_GOOD;
  scsi_free_scsi_task(t);
  if (good) {
    t = iscsi_receive_copy_results_sync(iscsi, cmd_lun, SCSI_COPY_RESULTS_COPY_STATUS,
                                        (int)list_id, 64);
    if (!t || t->status != SCSI_STATUS_GOOD)
      die("RECEIVE COPY RESULTS", iscsi);
    struct scsi_copy_results_copy_status *cs = scsi_datain_unmarshall(t);
    if (!cs)
      die("RECEIVE COPY RESULTS: data", iscsi);
    printf("status=%d segments=%d bytes=%u\n", cs->copy_manager_status, cs->segments_processed,
           (unsigned)cs->transfer_count * (cs->transfer_count_units ? 1024u : 1u));
    scsi_free_scsi_task(t);
  }
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return 0;
}
