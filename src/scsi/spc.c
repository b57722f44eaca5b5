/* SPC-4 primary commands: INQUIRY and its VPD pages, MODE SENSE, REQUEST SENSE,
 * REPORT LUNS, REPORT SUPPORTED OPERATION CODES, and the no-ops. */
#include <string.h>

#include "scsi/scsi_int.h"

#define LG_VENDOR  "LUNGATE "             /* 8 bytes, T10 vendor id */
#define LG_PRODUCT "lungate disk    "     /* 16 bytes */
#define LG_PRODUCT_CD "lungate cdrom   "
#define LG_REV     "0001"                 /* 4 bytes */
#define REPLY_MAX  65536u                 /* no reply of ours is longer */

/* Allocation length of the data-in commands, by opcode. */
int spc_parse_alloc(struct scsi_task *t)
{
  const uint8_t *c = t->cdb;
  uint32_t alloc;
  switch (c[0]) {
  case 0x03: case 0x1a: alloc = c[4]; break;            /* REQUEST SENSE, MODE SENSE(6) */
  case 0x12: alloc = get16(c + 3); break;                /* INQUIRY */
  case 0x25: alloc = 8; break;                           /* READ CAPACITY(10) */
  case 0x5a: alloc = get16(c + 7); break;                /* MODE SENSE(10) */
  case 0x9e: alloc = get32(c + 10); break;               /* READ CAPACITY(16), GET LBA STATUS */
  case 0xa0: alloc = get32(c + 6); break;                /* REPORT LUNS */
  case 0xa3: alloc = get32(c + 6); break;                /* REPORT SUPPORTED OPCODES */
  case 0x37: alloc = get16(c + 7); break;                /* READ DEFECT DATA(10) */
  case 0xb7: alloc = get32(c + 6); break;                /* READ DEFECT DATA(12) */
  default: alloc = 0;
  }
  t->spdtl = alloc < REPLY_MAX ? alloc : REPLY_MAX;
  t->dir = t->spdtl ? SCSI_DIR_IN : SCSI_DIR_NONE;
  return 0;
}

void spc_test_unit_ready(struct scsi_task *t) { (void)t; }
void spc_start_stop(struct scsi_task *t) { (void)t; }
void spc_prevent_allow(struct scsi_task *t) { (void)t; }

/* RESERVE(6/10), SPC-2: the whole LU for this I_T nexus. */
void spc_reserve(struct scsi_task *t)
{
  uintptr_t none = 0, me = (uintptr_t)t->nexus;
  if (!atomic_compare_exchange_strong(&t->lun->so->reserved_by, &none, me) && none != me)
    t->status = SCSI_STATUS_RESERVATION_CONFLICT;
}

/* RELEASE(6/10): only the holder releases; from anyone else it does nothing. */
void spc_release(struct scsi_task *t)
{
  uintptr_t me = (uintptr_t)t->nexus;
  atomic_compare_exchange_strong(&t->lun->so->reserved_by, &me, 0);
}

static bool is_cd(const struct scsi_task *t)
{
  return t->lun && t->lun->so->device_type == LG_DEV_CD;
}

static size_t inquiry_standard(const struct scsi_task *t, uint8_t *d)
{
  bool cd = is_cd(t);
  memset(d, 0, 96);
  d[0] = t->lun ? t->lun->so->device_type : 0x7f; /* disk or CD; or no LU at this LUN */
  d[1] = cd ? 0x80 : 0;            /* RMB: a CD's medium is removable */
  d[2] = 0x06;                     /* SPC-4 */
  d[3] = 0x12;                     /* HISUP, response data format 2 */
  d[4] = 96 - 5;
  d[5] = cd ? 0 : 0x08;            /* 3PC: EXTENDED COPY */
  d[7] = 0x02;                     /* CMDQUE */
  memcpy(d + 8, LG_VENDOR, 8);
  memcpy(d + 16, cd ? LG_PRODUCT_CD : LG_PRODUCT, 16);
  memcpy(d + 32, LG_REV, 4);
  uint16_t versions[] = { 0x00a0 /* SAM-5 */, 0x0960 /* iSCSI */, 0x0460 /* SPC-4 */,
                          cd ? 0x02a0 /* MMC-5 */ : 0x04c0 /* SBC-3 */ };
  for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
    put16(d + 58 + 2 * i, versions[i]);
  return 96;
}

static size_t vpd_device_id(const struct scsi_task *t, uint8_t *d)
{
  const struct lg_storage *so = t->lun->so;
  size_t n = 4;
  /* NAA IEEE registered extended, binary, associated with the LU */
  d[n++] = 0x01; d[n++] = 0x03; d[n++] = 0; d[n++] = 16;
  memcpy(d + n, so->naa, 16);
  n += 16;
  /* T10 vendor id: vendor + unit serial, ASCII */
  size_t sl = strlen(so->serial);
  d[n++] = 0x02; d[n++] = 0x01; d[n++] = 0; d[n++] = (uint8_t)(8 + sl);
  memcpy(d + n, LG_VENDOR, 8);
  memcpy(d + n + 8, so->serial, sl);
  n += 8 + sl;
  put16(d + 2, (uint16_t)(n - 4));
  return n;
}

void spc_inquiry(struct scsi_task *t)
{
  uint8_t d[512];
  size_t n = 0;
  uint32_t alloc = get16(t->cdb + 3);
  bool evpd = t->cdb[1] & 1;
  uint8_t page = t->cdb[2];
  if (!evpd) {
    if (page) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
      return;
    }
    scsi_reply(t, d, inquiry_standard(t, d), alloc);
    return;
  }
  if (!t->lun) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
    return;
  }
  const struct lg_storage *so = t->lun->so;
  uint32_t bs = so->block_size;
  memset(d, 0, sizeof d);
  d[0] = so->device_type;
  d[1] = page;
  if (is_cd(t) && (page >= 0xb0 || page == 0x8f)) { /* a disk's pages */
    scsi_sense_field(t, 2, -1);
    return;
  }
  switch (page) {
  case 0x00: { /* supported pages */
    static const uint8_t pages[] = { 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2 }; /* ascending */
    size_t np = is_cd(t) ? 3 : sizeof pages;
    memcpy(d + 4, pages, np);
    n = 4 + np;
    break;
  }
  case 0x80: { /* unit serial number */
    size_t sl = strlen(so->serial);
    memcpy(d + 4, so->serial, sl);
    n = 4 + sl;
    break;
  }
  case 0x83:
    n = vpd_device_id(t, d);
    break;
  case 0x8f: /* third-party copy: what EXTENDED COPY supports (xcopy.c) */
    n = xcopy_vpd_page(t, d);
    break;
  case 0xb0: /* block limits */
    n = 0x40;
    d[4] = 0x01;                                      /* WSNZ */
    d[5] = SBC_MAX_CAW_BLOCKS;                        /* maximum compare and write length */
    put32(d + 8, SCSI_MAX_XFER_BYTES / bs);           /* maximum transfer length */
    put32(d + 12, (1u << 20) / bs);                   /* optimal transfer length */
    put16(d + 6, (uint16_t)(bs < 4096 ? 4096 / bs : 1)); /* optimal granularity */
    if (lbp_can_unmap(so)) {
      put32(d + 20, LBP_MAX_UNMAP_BLOCKS);            /* maximum unmap LBA count */
      put32(d + 24, LBP_MAX_UNMAP_DESCRIPTORS);       /* maximum unmap descriptors */
      put32(d + 28, bs < 4096 ? 4096 / bs : 1);       /* optimal unmap granularity */
    }
    put64(d + 36, SCSI_MAX_XFER_BYTES / bs);          /* maximum write same length */
    put32(d + 44, sbc_max_atomic_blocks(bs));         /* maximum atomic transfer length */
    put32(d + 48, 1);                                 /* atomic alignment: any LBA */
    put32(d + 52, 1);                                 /* atomic transfer length granularity */
    /* 56-63: no atomic boundaries (ATOMIC BOUNDARY must be 0) */
    break;
  case 0xb1: /* block device characteristics */
    n = 0x40;
    put16(d + 4, 1);                                  /* non-rotating medium */
    break;
  case 0xb2: /* logical block provisioning */
    n = 8;
    if (lbp_can_unmap(so)) {
      d[5] = 0x80 | 0x40 | 0x20;                      /* LBPU, LBPWS, LBPWS10 */
      d[6] = 0x02;                                    /* thin provisioned */
    }
    break;
  default:
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    return;
  }
  if (page != 0x83)
    put16(d + 2, (uint16_t)(n - 4));
  scsi_reply(t, d, n, alloc);
}

void spc_request_sense(struct scsi_task *t)
{
  uint8_t d[18] = { 0 };
  size_t n;
  uint16_t ua = 0;
  bool have_ua = lu_take_ua(t, &ua); /* a pending unit attention is the answer */
  if (t->cdb[1] & 1) { /* descriptor format */
    d[0] = 0x72;
    if (have_ua) {
      d[1] = SCSI_SENSE_UNIT_ATTENTION;
      d[2] = (uint8_t)(ua >> 8);
      d[3] = (uint8_t)ua;
    }
    n = 8;
  } else {
    d[0] = 0x70;
    d[7] = 10;
    if (have_ua) {
      d[2] = SCSI_SENSE_UNIT_ATTENTION;
      d[12] = (uint8_t)(ua >> 8);
      d[13] = (uint8_t)ua;
    }
    n = 18;
  }
  scsi_reply(t, d, n, t->cdb[4]);
}

/* One mode page: current values (pc 0), the changeable mask (pc 1) or the
 * defaults (pc 2).  The changeable fields are MODE SELECT's (lu.c). */
size_t spc_mode_page(struct lg_storage *so, uint8_t *p, uint8_t code, int pc)
{
  switch (code) {
  case 0x08: /* caching */
    if (so->device_type == LG_DEV_CD)
      return 0;
    memset(p, 0, 20);
    p[0] = 0x08;
    p[1] = 18;
    if (pc == 1)
      p[2] = 0x04;                 /* WCE may change */
    else if (pc == 2 || lu_wce(so))
      p[2] = 0x04;                 /* WCE: writes are cached until SYNCHRONIZE CACHE */
    return 20;
  case 0x2a: /* MM capabilities and mechanical status: a CD's */
    return so->device_type == LG_DEV_CD ? mmc_mode_page_capabilities(p, pc) : 0;
  case 0x0a: /* control */
    memset(p, 0, 12);
    p[0] = 0x0a;
    p[1] = 10;
    if (pc == 1) {
      p[4] = 0x08;                 /* SWP may change */
    } else {
      p[3] = 0x10;                 /* QUEUE ALGORITHM MODIFIER 1: unrestricted */
      if (pc == 0 && lu_swp(so))
        p[4] = 0x08;               /* SWP: software write protect */
      p[5] = 0x40;                 /* TAS: other nexuses' aborted commands say so */
      put16(p + 8, 30);            /* busy timeout period, 100 ms units */
    }
    return 12;
  default:
    return 0;
  }
}

void spc_mode_sense(struct scsi_task *t)
{
  const uint8_t *c = t->cdb;
  bool ten = c[0] == 0x5a;
  bool dbd = c[1] & 0x08, llbaa = ten && (c[1] & 0x10);
  int pc = c[2] >> 6;
  uint8_t page = c[2] & 0x3f, subpage = c[3];
  uint32_t alloc = ten ? get16(c + 7) : c[4];
  if (pc == 3) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_SAVING_PARAMS_UNSUPPORTED);
    return;
  }
  if (subpage != 0 && subpage != 0xff) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    return;
  }
  uint8_t d[256];
  memset(d, 0, sizeof d);
  size_t hdr = ten ? 8 : 4, n = hdr;
  struct lg_storage *so = t->lun->so;
  bool wp = t->lun->write_protect || so->readonly || lu_swp(so);
  bool cd = is_cd(t);              /* MMC: no block descriptors, nor these bits */
  d[ten ? 3 : 2] = cd ? 0 : (uint8_t)((wp ? 0x80 : 0) | 0x10); /* WP, DPOFUA */
  if (!dbd && !cd) {
    uint64_t blocks = so->size / so->block_size;
    if (llbaa) {
      d[4] = 1;                    /* LONGLBA */
      put64(d + n, blocks);
      put32(d + n + 12, so->block_size);
      n += 16;
    } else {
      put32(d + n, blocks > 0xffffffffull ? 0xffffffffu : (uint32_t)blocks);
      put32(d + n + 4, so->block_size);   /* byte 4 reserved, 5-7 length */
      n += 8;
    }
    if (ten)
      put16(d + 6, (uint16_t)(n - hdr));
    else
      d[3] = (uint8_t)(n - hdr);
  }
  if (page == 0x3f) {
    n += spc_mode_page(so, d + n, 0x08, pc);
    n += spc_mode_page(so, d + n, 0x0a, pc);
    n += spc_mode_page(so, d + n, 0x2a, pc);
  } else {
    size_t len = spc_mode_page(so, d + n, page, pc);
    if (!len) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
      return;
    }
    n += len;
  }
  if (ten)
    put16(d, (uint16_t)(n - 2));
  else
    d[0] = (uint8_t)(n - 1);
  scsi_reply(t, d, n, alloc);
}

void spc_report_luns(struct scsi_task *t)
{
  uint32_t alloc = get32(t->cdb + 6);
  uint8_t sel = t->cdb[2];
  if (alloc < 16 || (sel != 0 && sel != 1 && sel != 2)) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    return;
  }
  const struct scsi_nexus *nx = t->nexus;
  size_t n_luns = sel == 1 ? 0 : nx->n_luns;
  uint8_t d[8 + 8 * 512];
  if (n_luns > 512)
    n_luns = 512;
  memset(d, 0, 8 + 8 * n_luns);
  put32(d, (uint32_t)(8 * n_luns));
  for (size_t i = 0; i < n_luns; i++) {
    uint64_t idx = nx->luns[i].index;
    if (idx < 256) {
      d[8 + 8 * i + 1] = (uint8_t)idx;                    /* peripheral addressing */
    } else {
      d[8 + 8 * i] = (uint8_t)(0x40 | (idx >> 8));         /* flat space addressing */
      d[8 + 8 * i + 1] = (uint8_t)idx;
    }
  }
  scsi_reply(t, d, 8 + 8 * n_luns, alloc);
}

/* REPORT SUPPORTED OPERATION CODES: all commands, or one with its usage map. */
void spc_report_opcodes(struct scsi_task *t)
{
  const uint8_t *c = t->cdb;
  bool rctd = c[2] & 0x80;
  unsigned opts = c[2] & 0x07;
  uint8_t req_op = c[3];
  uint16_t req_sa = get16(c + 4);
  uint32_t alloc = get32(c + 6);
  uint8_t d[4096];
  size_t n = 0;
  const struct scsi_optable *tb = scsi_optable(t);
  static const uint8_t timeouts[12] = { 0x00, 0x0a };       /* descriptor length 10 */

  if (opts == 0) {
    n = 4;
    for (size_t i = 0; i < tb->n && n + 20 <= sizeof d; i++) {
      const struct scsi_op *op = tb->rows[i];
      uint8_t *e = d + n;
      memset(e, 0, 8);
      e[0] = op->opcode;
      put16(e + 2, op->sa);
      e[5] = (uint8_t)((rctd ? 0x02 : 0) | ((op->flags & OP_HAS_SA) ? 0x01 : 0));
      put16(e + 6, op->cdb_len);
      n += 8;
      if (rctd) {
        memcpy(d + n, timeouts, sizeof timeouts);
        n += sizeof timeouts;
      }
    }
    put32(d, (uint32_t)(n - 4));
    scsi_reply(t, d, n, alloc);
    return;
  }
  if (opts > 3) {
    scsi_sense_field(t, 2, 2);
    return;
  }
  const struct scsi_op *found = NULL;
  bool op_has_sa = false;
  for (size_t i = 0; i < tb->n; i++) {
    const struct scsi_op *op = tb->rows[i];
    if (op->opcode != req_op)
      continue;
    op_has_sa = op->flags & OP_HAS_SA;
    if (!op_has_sa || op->sa == req_sa)
      found = op;
  }
  /* option 1 names a command without service actions; option 2 one with */
  if ((opts == 1 && op_has_sa) || (opts == 2 && found && !op_has_sa)) {
    scsi_sense_field(t, 2, 2);
    return;
  }
  memset(d, 0, 4);
  if (!found) {
    d[1] = 0x01;                   /* not supported */
    n = 4;
  } else {
    d[1] = (uint8_t)((rctd ? 0x80 : 0) | 0x03); /* CTDP, supported per standard */
    put16(d + 2, found->cdb_len);
    memcpy(d + 4, found->usage, found->cdb_len);
    n = 4 + found->cdb_len;
    if (rctd) {
      memcpy(d + n, timeouts, sizeof timeouts);
      n += sizeof timeouts;
    }
  }
  scsi_reply(t, d, n, alloc);
}
