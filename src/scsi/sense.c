/* Sense data: the one place where errors become SCSI status. */
#include <errno.h>
#include <string.h>

#include "scsi/scsi.h"

void scsi_sense(struct scsi_task *t, uint8_t key, uint16_t asc_ascq)
{
  t->status = SCSI_STATUS_CHECK_CONDITION;
  memset(t->sense, 0, SCSI_SENSE_MAX);
  t->sense[0] = 0x70;                /* current error, fixed format */
  t->sense[2] = key & 0x0f;
  t->sense[7] = SCSI_SENSE_MAX - 8;  /* additional sense length */
  t->sense[12] = (uint8_t)(asc_ascq >> 8);
  t->sense[13] = (uint8_t)asc_ascq;
  t->sense_len = SCSI_SENSE_MAX;
}

void scsi_sense_field(struct scsi_task *t, unsigned byte, int bit)
{
  scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
  t->sense[15] = (uint8_t)(0x80 | 0x40 | (bit >= 0 ? 0x08 | (bit & 7) : 0)); /* SKSV, C/D */
  t->sense[16] = (uint8_t)(byte >> 8);
  t->sense[17] = (uint8_t)byte;
}

void scsi_sense_errno(struct scsi_task *t, int err, bool writing)
{
  switch (-err) {
  case EROFS:
  case EPERM:
  case EACCES:
    scsi_sense(t, SCSI_SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
    break;
  case ENOSPC:
  case EDQUOT:
    scsi_sense(t, SCSI_SENSE_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED_WP);
    break;
  case EIO:
    scsi_sense(t, SCSI_SENSE_MEDIUM_ERROR,
               writing ? ASC_WRITE_ERROR : ASC_UNRECOVERED_READ_ERROR);
    break;
  case ENOTCONN:
  case ECONNRESET:
  case ESHUTDOWN:
  case ETIMEDOUT:
  case EPIPE:
    scsi_sense(t, SCSI_SENSE_HARDWARE_ERROR, ASC_LUN_COMM_FAILURE);
    break;
  case EINVAL:
  case ERANGE:
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    break;
  case ENOMEM:
  case EAGAIN:
    t->status = SCSI_STATUS_BUSY;
    t->sense_len = 0;
    break;
  default:
    scsi_sense(t, SCSI_SENSE_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
    break;
  }
}
