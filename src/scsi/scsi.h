/* The SCSI layer: CDB decode and validation, SBC/SPC emulation, sense data.
 *
 * A command goes through two steps:
 *   scsi_parse()  on the receiving thread: finds the opcode in the table,
 *                 checks CDB fields, LBA range (with overflow), write protection
 *                 and transfer length, and says how many bytes the command
 *                 transfers (spdtl) and in which direction;
 *   scsi_exec()   on a worker: runs it against the backstore.
 * Both leave status and sense in the task.  Backstores are only ever called
 * with byte offsets.
 */
#ifndef LUNGATE_SCSI_H
#define LUNGATE_SCSI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi/pr.h"
#include "target/model.h"

#define SCSI_STATUS_GOOD            0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02
#define SCSI_STATUS_BUSY            0x08
#define SCSI_STATUS_RESERVATION_CONFLICT 0x18
#define SCSI_STATUS_TASK_SET_FULL   0x28
#define SCSI_STATUS_TASK_ABORTED    0x40

#define SCSI_SENSE_NOT_READY        0x02
#define SCSI_SENSE_MEDIUM_ERROR     0x03
#define SCSI_SENSE_HARDWARE_ERROR   0x04
#define SCSI_SENSE_ILLEGAL_REQUEST  0x05
#define SCSI_SENSE_UNIT_ATTENTION   0x06
#define SCSI_SENSE_DATA_PROTECT     0x07
#define SCSI_SENSE_COPY_ABORTED     0x0a
#define SCSI_SENSE_ABORTED_COMMAND  0x0b
#define SCSI_SENSE_MISCOMPARE       0x0e

/* additional sense code and qualifier, as one 16-bit value */
#define ASC_INVALID_OPCODE          0x2000
#define ASC_LBA_OUT_OF_RANGE        0x2100
#define ASC_INVALID_FIELD_IN_CDB    0x2400
#define ASC_LUN_NOT_SUPPORTED       0x2500
#define ASC_INVALID_FIELD_IN_PARAM  0x2600
#define ASC_PARAM_LIST_LENGTH_ERROR 0x1a00
#define ASC_WRITE_PROTECTED         0x2700
#define ASC_SPACE_ALLOC_FAILED_WP   0x2707
#define ASC_INVALID_FIELD_IN_IU     0x0e03
#define ASC_UNRECOVERED_READ_ERROR  0x1100
#define ASC_WRITE_ERROR             0x0c00
#define ASC_INTERNAL_TARGET_FAILURE 0x4400
#define ASC_NO_ADDITIONAL_SENSE     0x0000
#define ASC_MISCOMPARE_DURING_VERIFY 0x1d00
#define ASC_SAVING_PARAMS_UNSUPPORTED 0x3900
#define ASC_LUN_COMM_FAILURE        0x0800
#define ASC_NOT_READY_MANUAL        0x0403  /* LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED */
#define ASC_DATA_PHASE_ERROR        0x4b00
#define ASC_COPY_TARGET_NOT_REACHABLE 0x0d02
#define ASC_TOO_MANY_TARGET_DESCRIPTORS 0x2606
#define ASC_UNSUPPORTED_TARGET_DESCRIPTOR 0x2607
#define ASC_TOO_MANY_SEGMENT_DESCRIPTORS 0x2608
#define ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR 0x2609
#define ASC_WRITE_PROTECTED_SW      0x2702  /* by the control mode page's SWP */
#define ASC_INVALID_RELEASE_PR      0x2604
#define ASC_INSUFFICIENT_REG_RES    0x5504

#define SCSI_SENSE_MAX 18           /* fixed-format sense we produce */

/* Transfer direction of a decoded command. */
enum scsi_dir { SCSI_DIR_NONE, SCSI_DIR_IN, SCSI_DIR_OUT };

/* The outcome of an EXTENDED COPY, for RECEIVE COPY RESULTS (xcopy.c). */
struct scsi_copy_result {
  bool used;
  uint8_t list_id;
  uint8_t status;                    /* COPY MANAGER STATUS */
  uint16_t segments;                 /* segments processed */
  uint32_t bytes;                    /* bytes transferred */
};
#define SCSI_COPY_RESULTS 8          /* kept per I_T nexus, oldest replaced */

struct scsi_lu_nexus;

/* What a session offers the SCSI layer: its LUN map (for REPORT LUNS and
 * EXTENDED COPY), the identity of its I_T nexus (persistent reservations),
 * and state of its own.  All-zero bytes are a valid initial state. */
struct scsi_nexus {
  const struct lg_lun_view *luns;
  size_t n_luns;
  struct pr_id id;
  struct scsi_lu_nexus **ent;        /* per LUN: this nexus on that LU (scsi_nexus_attach) */
  pthread_mutex_t copies_lock;       /* zero bytes: glibc's initializer */
  struct scsi_copy_result copies[SCSI_COPY_RESULTS];
  unsigned copies_next;
};

struct scsi_op;

/* One SCSI command, owned by the transport. */
struct scsi_task {
  uint8_t cdb[16];
  uint64_t lun_id;                   /* LUN number as the initiator addressed it */
  const struct lg_lun_view *lun;     /* NULL: no such LUN for this initiator */
  struct scsi_nexus *nexus;
  uint32_t edtl;                     /* the transport's expected transfer length */

  /* set by scsi_parse */
  const struct scsi_op *op;
  enum scsi_dir dir;
  uint32_t spdtl;                    /* bytes the CDB says it transfers */
  uint64_t lba;                      /* medium commands: first block */
  uint32_t nblocks;                  /* medium commands: block count */
  unsigned bs_flags;                 /* LG_BS_FUA ... */
  struct scsi_lu_nexus *lun_nexus;   /* the nexus on the LU, if attached */
  unsigned epoch;                    /* its abort epoch when the command arrived */

  /* data: Data-Out arrives here; Data-In is produced here */
  uint8_t *buf;
  uint32_t bufcap;                   /* bytes buf holds: min(spdtl, EDTL) */
  uint32_t data_in_len;              /* set by scsi_exec: bytes the command
                                        would return (may exceed bufcap) */
  bool may_map;                      /* set by the transport: it only hands
                                        Data-In to the kernel (no digest) */
  const uint8_t *data_in;            /* when set, Data-In is here and not in
                                        buf: see scsi_data_in_release() */

  /* result */
  uint8_t status;
  uint8_t sense_len;
  uint8_t sense[SCSI_SENSE_MAX];

  /* scsi_exec_async: called when the command has run */
  void (*async_done)(struct scsi_task *t);
};

/* Decode and validate; 0 when the command may proceed (then spdtl/dir are set),
 * -1 when status and sense already hold the answer. */
int scsi_parse(struct scsi_task *t);
/* May a parsed command with data-out be cut short to what the initiator
 * sends (plain writes), rather than refused? */
bool scsi_write_truncatable(const struct scsi_task *t);
/* Run a parsed command; buf must hold spdtl bytes (data-out: received). */
void scsi_exec(struct scsi_task *t);

/* Run a parsed command only if it can finish without waiting for a device
 * (a READ the backstore has in the page cache): true when it ran, as
 * scsi_exec would have; false when the task is as it was, for scsi_exec. */
bool scsi_exec_nowait(struct scsi_task *t);

/* A cached READ run by scsi_exec_nowait() on a task with may_map may leave
 * its data in the backstore's mapping of the page cache (data_in) instead
 * of copying it into buf; the LU then stays locked against atomic writes
 * until the transport calls this, once the kernel holds the data (sendmsg
 * returned) or, with into_buf, to have the data copied into buf after all
 * (a send that would wait).  Does nothing when data_in is unset.  0, or
 * -errno when into_buf's copy failed (the task's data is then lost). */
int scsi_data_in_release(struct scsi_task *t, bool into_buf);

/* Start a parsed command that the backstore can run without a thread
 * waiting on it (a READ of a remote backstore, ->pread_async): true when
 * started, and done(t) is then called once it has run, as scsi_exec would
 * have left it, on another thread and with nothing else to wait for; false
 * when the task is as it was, for scsi_exec. */
bool scsi_exec_async(struct scsi_task *t, void (*done)(struct scsi_task *t));

/* Fill CHECK CONDITION with fixed-format sense. */
void scsi_sense(struct scsi_task *t, uint8_t key, uint16_t asc_ascq);
/* INVALID FIELD IN CDB pointing at the CDB byte (and bit, or -1) at fault. */
void scsi_sense_field(struct scsi_task *t, unsigned byte, int bit);
/* Turn a backstore -errno into status and sense, in one place. */
void scsi_sense_errno(struct scsi_task *t, int err, bool writing);

/* Drop the RESERVE(6/10) reservations a nexus holds on these LUNs (its
 * session ended, or a LUN or target reset). */
void scsi_release_nexus(const struct scsi_nexus *nx, const struct lg_lun_view *luns,
                        size_t n);

/* A nexus enters the full feature phase: it joins each of its LUs, with a
 * power-on unit attention pending.  -ENOMEM. */
int scsi_nexus_attach(struct scsi_nexus *nx);
/* The nexus is gone (its commands have all finished): it leaves its LUs;
 * its persistent registrations stay. */
void scsi_nexus_detach(struct scsi_nexus *nx);

enum scsi_reset {
  SCSI_CLEAR_TASK_SET,               /* abort every nexus's commands on the LU */
  SCSI_LU_RESET,                     /* ... and unit attention, SPC-2 reservation released */
  SCSI_TARGET_RESET,                 /* the same as part of a target warm or cold reset */
};
/* Task management on a LU, for all its nexuses: commands not yet running
 * end with TASK ABORTED (the control page's TAS is 1). */
void scsi_lu_reset(struct lg_storage *so, enum scsi_reset kind);
/* The SCSI state of a storage object, made (and its APTPL file loaded) on
 * first use; NULL: out of memory. */
struct scsi_lu *scsi_lu_get(struct lg_storage *so);
/* Free the SCSI state of a storage object being closed. */
void scsi_lu_free(struct lg_storage *so);

/* Name of an opcode for logs, or NULL. */
const char *scsi_op_name(uint8_t opcode);

/* The largest transfer a single command may ask for, in bytes. */
#define SCSI_MAX_XFER_BYTES (8u << 20)

#endif
