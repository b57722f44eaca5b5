/* lungate_it_prclient: persistent reservations from one initiator, on libiscsi.
 *
 *   lungate_it_prclient URL INITIATOR COMMAND [ARG...]
 *
 *   register KEY [aptpl]   REGISTER AND IGNORE EXISTING KEY (with APTPL=1)
 *   unregister KEY         REGISTER with SARK 0
 *   reserve KEY TYPE       RESERVE (TYPE: 1 WE, 3 EA, 5 WE-RO, 6 EA-RO, 7 WE-AR, 8 EA-AR)
 *   keys                   READ KEYS: one key a line, "0x%016llx"
 *   reservation            READ RESERVATION: "TYPE KEY", or "none"
 *   caps                   REPORT CAPABILITIES: "ptpl_c=N ptpl_a=N"
 *   write LBA              one WRITE(10) of a block of 0x5a
 *   read LBA               one READ(10)
 *
 * Prints the SCSI status of PERSISTENT RESERVE OUT, WRITE and READ ("GOOD",
 * "RESERVATION_CONFLICT", "CHECK_CONDITION KEY/ASC/ASCQ") and exits 0 when a
 * command got an answer at all; 1 when the login or transport failed.
 * The ISID is a function of INITIATOR, so every run of one initiator is the
 * same I_T nexus.  The login clears the new nexus's power-on unit attention
 * (libiscsi's full connect sends TEST UNIT READY until it is GOOD).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

static void print_status(struct scsi_task *t)
{
  if (t->status == SCSI_STATUS_GOOD)
    printf("GOOD\n");
  else if (t->status == SCSI_STATUS_RESERVATION_CONFLICT)
    printf("RESERVATION_CONFLICT\n");
  else if (t->status == SCSI_STATUS_CHECK_CONDITION)
    printf("CHECK_CONDITION %x/%02x/%02x\n", t->sense.key, t->sense.ascq >> 8,
           t->sense.ascq & 0xff);
  else
    printf("STATUS 0x%02x\n", t->status);
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: %s URL INITIATOR COMMAND [ARG...]\n", argv[0]);
    return 1;
  }
  const char *cmd = argv[3];
  struct iscsi_context *iscsi = iscsi_create_context(argv[2]);
  struct iscsi_url *url = iscsi ? iscsi_parse_full_url(iscsi, argv[1]) : NULL;
  if (!url) {
    fprintf(stderr, "prclient: bad URL %s: %s\n", argv[1], iscsi ? iscsi_get_error(iscsi) : "");
    return 1;
  }
  /* one ISID per initiator name, the same in every run: one I_T nexus, as an
   * OS initiator that keeps its ISID across reconnects */
  uint32_t h = 2166136261u;
  for (const char *c = argv[2]; *c; c++)
    h = (h ^ (unsigned char)*c) * 16777619u;
  iscsi_set_isid_random(iscsi, h, 0);
  iscsi_set_targetname(iscsi, url->target);
  iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
  if (iscsi_full_connect_sync(iscsi, url->portal, url->lun) != 0) {
    fprintf(stderr, "prclient: login failed: %s\n", iscsi_get_error(iscsi));
    return 1;
  }
  int lun = url->lun, rc = 0;
  struct scsi_task *t = NULL;
  struct scsi_persistent_reserve_out_basic p = { 0 };
  if (!strcmp(cmd, "register") && argc >= 5) {
    p.service_action_reservation_key = strtoull(argv[4], NULL, 0);
    p.aptpl = argc >= 6 && !strcmp(argv[5], "aptpl");
    t = iscsi_persistent_reserve_out_sync(iscsi, lun,
                                          SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
                                          SCSI_PERSISTENT_RESERVE_SCOPE_LU, 0, &p);
  } else if (!strcmp(cmd, "unregister") && argc >= 5) {
    p.reservation_key = strtoull(argv[4], NULL, 0);
    t = iscsi_persistent_reserve_out_sync(iscsi, lun, SCSI_PERSISTENT_RESERVE_REGISTER,
                                          SCSI_PERSISTENT_RESERVE_SCOPE_LU, 0, &p);
  } else if (!strcmp(cmd, "reserve") && argc >= 6) {
    p.reservation_key = strtoull(argv[4], NULL, 0);
    t = iscsi_persistent_reserve_out_sync(iscsi, lun, SCSI_PERSISTENT_RESERVE_RESERVE,
                                          SCSI_PERSISTENT_RESERVE_SCOPE_LU, atoi(argv[5]), &p);
  } else if (!strcmp(cmd, "write") && argc >= 5) {
    unsigned char block[512];
    memset(block, 0x5a, sizeof block);
    t = iscsi_write10_sync(iscsi, lun, (uint32_t)strtoul(argv[4], NULL, 0), block, sizeof block,
                           512, 0, 0, 0, 0, 0);
  } else if (!strcmp(cmd, "read") && argc >= 5) {
    t = iscsi_read10_sync(iscsi, lun, (uint32_t)strtoul(argv[4], NULL, 0), 512, 512, 0, 0, 0,
                          0, 0);
  } else if (!strcmp(cmd, "keys") || !strcmp(cmd, "reservation") || !strcmp(cmd, "caps")) {
    int sa = !strcmp(cmd, "keys") ? SCSI_PERSISTENT_RESERVE_READ_KEYS
           : !strcmp(cmd, "reservation") ? SCSI_PERSISTENT_RESERVE_READ_RESERVATION
                                         : SCSI_PERSISTENT_RESERVE_REPORT_CAPABILITIES;
    t = iscsi_persistent_reserve_in_sync(iscsi, lun, sa, 8192);
    if (t && t->status == SCSI_STATUS_GOOD) {
      void *d = scsi_datain_unmarshall(t);
      if (!d) {
        fprintf(stderr, "prclient: cannot decode the PERSISTENT RESERVE IN data\n");
        rc = 1;
      } else if (sa == SCSI_PERSISTENT_RESERVE_READ_KEYS) {
        struct scsi_persistent_reserve_in_read_keys *rk = d;
        for (int i = 0; i < rk->num_keys; i++)
          printf("0x%016" PRIx64 "\n", rk->keys[i]);
      } else if (sa == SCSI_PERSISTENT_RESERVE_READ_RESERVATION) {
        struct scsi_persistent_reserve_in_read_reservation *rr = d;
        if (rr->reserved)
          printf("%u 0x%016" PRIx64 "\n", rr->pr_type, rr->reservation_key);
        else
          printf("none\n");
      } else {
        struct scsi_persistent_reserve_in_report_capabilities *rc2 = d;
        /* libiscsi 1.19 does not decode PTPL_A: byte 3 bit 0 */
        printf("ptpl_c=%u ptpl_a=%u\n", rc2->ptpl_c,
               t->datain.size > 3 ? t->datain.data[3] & 1 : 0);
      }
      scsi_free_scsi_task(t);
      iscsi_logout_sync(iscsi);
      iscsi_destroy_url(url);
      iscsi_destroy_context(iscsi);
      return rc;
    }
  } else {
    fprintf(stderr, "prclient: unknown command %s\n", cmd);
    return 1;
  }
  if (!t) {
    fprintf(stderr, "prclient: %s: %s\n", cmd, iscsi_get_error(iscsi));
    rc = 1;
  } else {
    print_status(t);
    scsi_free_scsi_task(t);
  }
  iscsi_logout_sync(iscsi);
  iscsi_destroy_url(url);
  iscsi_destroy_context(iscsi);
  return rc;
}
