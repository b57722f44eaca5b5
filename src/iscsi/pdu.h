/* iSCSI PDU layout (RFC 7143 §11): opcodes, the 48-byte Basic Header Segment,
 * field accessors and limits.  Wire fields are big-endian. */
#ifndef LUNGATE_ISCSI_PDU_H
#define LUNGATE_ISCSI_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ISCSI_BHS_LEN 48
#define ISCSI_RSVD_TAG 0xffffffffu      /* reserved ITT/TTT value */

/* initiator opcodes */
enum {
  ISCSI_OP_NOP_OUT = 0x00,
  ISCSI_OP_SCSI_CMD = 0x01,
  ISCSI_OP_TMF_REQ = 0x02,
  ISCSI_OP_LOGIN_REQ = 0x03,
  ISCSI_OP_TEXT_REQ = 0x04,
  ISCSI_OP_DATA_OUT = 0x05,
  ISCSI_OP_LOGOUT_REQ = 0x06,
  ISCSI_OP_SNACK_REQ = 0x10,
};
/* target opcodes */
enum {
  ISCSI_OP_NOP_IN = 0x20,
  ISCSI_OP_SCSI_RSP = 0x21,
  ISCSI_OP_TMF_RSP = 0x22,
  ISCSI_OP_LOGIN_RSP = 0x23,
  ISCSI_OP_TEXT_RSP = 0x24,
  ISCSI_OP_DATA_IN = 0x25,
  ISCSI_OP_LOGOUT_RSP = 0x26,
  ISCSI_OP_R2T = 0x31,
  ISCSI_OP_ASYNC = 0x32,
  ISCSI_OP_REJECT = 0x3f,
};

/* byte 0 */
#define ISCSI_IMMEDIATE 0x40
#define ISCSI_OPCODE_MASK 0x3f
/* byte 1 flags */
#define ISCSI_FLAG_FINAL 0x80
#define ISCSI_FLAG_CMD_READ 0x40
#define ISCSI_FLAG_CMD_WRITE 0x20
#define ISCSI_FLAG_CONTINUE 0x40        /* login/text C bit */
#define ISCSI_FLAG_LOGIN_TRANSIT 0x80   /* login T bit */
#define ISCSI_FLAG_DATA_ACK 0x40
#define ISCSI_FLAG_DATA_OVERFLOW 0x04
#define ISCSI_FLAG_DATA_UNDERFLOW 0x02
#define ISCSI_FLAG_DATA_STATUS 0x01
#define ISCSI_FLAG_RSP_OVERFLOW 0x04
#define ISCSI_FLAG_RSP_UNDERFLOW 0x02

/* Reject reasons (§11.17.1) */
enum {
  ISCSI_REJECT_DATA_DIGEST = 0x02,
  ISCSI_REJECT_SNACK = 0x03,
  ISCSI_REJECT_PROTOCOL_ERROR = 0x04,
  ISCSI_REJECT_CMD_NOT_SUPPORTED = 0x05,
  ISCSI_REJECT_IMMEDIATE_CMD = 0x06,
  ISCSI_REJECT_TASK_IN_PROGRESS = 0x07,
  ISCSI_REJECT_INVALID_DATA_ACK = 0x08,
  ISCSI_REJECT_INVALID_PDU_FIELD = 0x09,
  ISCSI_REJECT_OUT_OF_RESOURCES = 0x0a,
  ISCSI_REJECT_WAITING_FOR_LOGOUT = 0x0c,
};

/* Login status class/detail (§11.13.5), as class << 8 | detail */
enum {
  ISCSI_LOGIN_SUCCESS = 0x0000,
  ISCSI_LOGIN_TARGET_MOVED_TEMP = 0x0101,
  ISCSI_LOGIN_INITIATOR_ERROR = 0x0200,
  ISCSI_LOGIN_AUTH_FAILED = 0x0201,
  ISCSI_LOGIN_FORBIDDEN = 0x0202,
  ISCSI_LOGIN_NOT_FOUND = 0x0203,
  ISCSI_LOGIN_TARGET_REMOVED = 0x0204,
  ISCSI_LOGIN_UNSUPPORTED_VERSION = 0x0205,
  ISCSI_LOGIN_TOO_MANY_CONNECTIONS = 0x0206,
  ISCSI_LOGIN_MISSING_PARAMETER = 0x0207,
  ISCSI_LOGIN_CANT_INCLUDE_IN_SESSION = 0x0208,
  ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED = 0x0209,
  ISCSI_LOGIN_SESSION_DOES_NOT_EXIST = 0x020a,
  ISCSI_LOGIN_INVALID_DURING_LOGIN = 0x020b,
  ISCSI_LOGIN_TARGET_ERROR = 0x0300,
  ISCSI_LOGIN_SERVICE_UNAVAILABLE = 0x0301,
  ISCSI_LOGIN_OUT_OF_RESOURCES = 0x0302,
};

/* Task management functions and responses (§11.5, §11.6) */
enum {
  ISCSI_TMF_ABORT_TASK = 1,
  ISCSI_TMF_ABORT_TASK_SET = 2,
  ISCSI_TMF_CLEAR_ACA = 3,
  ISCSI_TMF_CLEAR_TASK_SET = 4,
  ISCSI_TMF_LUN_RESET = 5,
  ISCSI_TMF_TARGET_WARM_RESET = 6,
  ISCSI_TMF_TARGET_COLD_RESET = 7,
  ISCSI_TMF_TASK_REASSIGN = 8,
};
enum {
  ISCSI_TMF_RSP_COMPLETE = 0,
  ISCSI_TMF_RSP_NO_TASK = 1,
  ISCSI_TMF_RSP_NO_LUN = 2,
  ISCSI_TMF_RSP_REASSIGN_UNSUPPORTED = 4,
  ISCSI_TMF_RSP_NOT_SUPPORTED = 5,
  ISCSI_TMF_RSP_REJECTED = 255,
};

/* Big-endian field access within a BHS. */
static inline uint32_t bhs_get32(const uint8_t *b, unsigned off)
{
  return (uint32_t)b[off] << 24 | (uint32_t)b[off + 1] << 16 | (uint32_t)b[off + 2] << 8 | b[off + 3];
}
static inline void bhs_put32(uint8_t *b, unsigned off, uint32_t v)
{
  b[off] = (uint8_t)(v >> 24); b[off + 1] = (uint8_t)(v >> 16);
  b[off + 2] = (uint8_t)(v >> 8); b[off + 3] = (uint8_t)v;
}
static inline uint16_t bhs_get16(const uint8_t *b, unsigned off)
{
  return (uint16_t)(b[off] << 8 | b[off + 1]);
}
static inline void bhs_put16(uint8_t *b, unsigned off, uint16_t v)
{
  b[off] = (uint8_t)(v >> 8); b[off + 1] = (uint8_t)v;
}

static inline uint8_t bhs_opcode(const uint8_t *b) { return b[0] & ISCSI_OPCODE_MASK; }
static inline bool bhs_immediate(const uint8_t *b) { return b[0] & ISCSI_IMMEDIATE; }
static inline uint32_t bhs_ahs_len(const uint8_t *b) { return (uint32_t)b[4] * 4; }
static inline uint32_t bhs_data_len(const uint8_t *b)
{
  return (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
}
static inline void bhs_set_data_len(uint8_t *b, uint32_t n)
{
  b[4] = 0; b[5] = (uint8_t)(n >> 16); b[6] = (uint8_t)(n >> 8); b[7] = (uint8_t)n;
}
static inline uint32_t bhs_itt(const uint8_t *b) { return bhs_get32(b, 16); }

/* common offsets */
#define BHS_LUN 8
#define BHS_ITT 16
#define BHS_TTT 20
#define BHS_CMDSN 24            /* initiator PDUs */
#define BHS_EXPSTATSN 28
#define BHS_STATSN 24           /* target PDUs */
#define BHS_EXPCMDSN 28
#define BHS_MAXCMDSN 32
#define BHS_EDTL 20             /* SCSI command */
#define BHS_CDB 32
#define BHS_DATASN 36           /* Data-In/Out, R2T (R2TSN) */
#define BHS_BUFFER_OFFSET 40
#define BHS_DESIRED_LEN 44      /* R2T */
#define BHS_RESIDUAL 44         /* SCSI response, Data-In */

/* Decode the 8-byte LUN field (SAM peripheral or flat addressing);
 * returns false for addressing methods lungate does not use. */
static inline bool iscsi_lun_decode(const uint8_t *b, uint64_t *lun)
{
  const uint8_t *p = b + BHS_LUN;
  switch (p[0] >> 6) {
  case 0: /* peripheral device: bus 0 only */
    if (p[0] & 0x3f)
      return false;
    *lun = p[1];
    break;
  case 1: /* flat space */
    *lun = (uint64_t)(p[0] & 0x3f) << 8 | p[1];
    break;
  default:
    return false;
  }
  for (int i = 2; i < 8; i++)
    if (p[i])
      return false;
  return true;
}

static inline void iscsi_lun_encode(uint8_t *b, uint64_t lun)
{
  uint8_t *p = b + BHS_LUN;
  memset(p, 0, 8);
  if (lun < 256) {
    p[1] = (uint8_t)lun;
  } else {
    p[0] = (uint8_t)(0x40 | ((lun >> 8) & 0x3f));
    p[1] = (uint8_t)lun;
  }
}

/* Serial number arithmetic (RFC 1982) for CmdSN and friends. */
static inline bool sn_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool sn_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

/* CRC32C as iSCSI digests use it (ISA-L). */
uint32_t iscsi_crc32c(const void *buf, size_t len, uint32_t crc);
#define ISCSI_CRC32C_INIT 0xffffffffu
static inline uint32_t iscsi_crc32c_final(uint32_t crc) { return ~crc; }

#endif
