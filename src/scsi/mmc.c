/* MMC: a storage object with "device_type": "cd" served as a read-only CD-ROM
 * (peripheral device type 5, 2048-byte blocks, one data track) with the
 * commands an OS CD driver sends: READ TOC/PMA/ATIP (formats 0, 1, 2), GET
 * CONFIGURATION, GET
 * EVENT STATUS NOTIFICATION, READ DISC INFORMATION, MODE SENSE page 2Ah, and
 * the SPC/SBC commands it shares with disks.  Such a LUN gets this table of
 * opcodes instead of the disk's; writes are refused as write protected. */
#include <string.h>

#include "scsi/scsi_int.h"

#define CTL 0x07  /* as in cdb.c */
#define CD_PROFILE_CDROM 0x0008
#define MAX_REPLY 4096u

/* Allocation length of the MMC data-in commands. */
static int mmc_parse_alloc(struct scsi_task *t)
{
  uint32_t alloc = get16(t->cdb + 7);  /* READ TOC, GET CONFIGURATION, GESN, READ DISC INFO */
  t->spdtl = alloc < MAX_REPLY ? alloc : MAX_REPLY;
  t->dir = t->spdtl ? SCSI_DIR_IN : SCSI_DIR_NONE;
  return 0;
}

static uint64_t cd_blocks(const struct scsi_task *t)
{
  return t->lun->so->size / t->lun->so->block_size;
}

/* A CD address: an LBA, or minutes/seconds/frames (75 frames a second, the
 * data starting 2 s in). */
static void put_addr(uint8_t *p, uint64_t lba, bool msf)
{
  if (!msf) {
    put32(p, (uint32_t)lba);
    return;
  }
  uint64_t f = lba + 150;
  p[0] = 0;
  p[1] = (uint8_t)(f / (75 * 60) > 255 ? 255 : f / (75 * 60));
  p[2] = (uint8_t)(f / 75 % 60);
  p[3] = (uint8_t)(f % 75);
}

/* One descriptor of the raw TOC (format 2): session 1, ADR 1 data. */
static size_t raw_toc_entry(uint8_t *p, uint8_t point, uint8_t pm, uint8_t ps, uint8_t pf)
{
  memset(p, 0, 11);
  p[0] = 1;                          /* session */
  p[1] = 0x14;                       /* ADR 1, CONTROL 4: data */
  p[3] = point;
  p[8] = pm;
  p[9] = ps;
  p[10] = pf;
  return 11;
}

/* READ TOC/PMA/ATIP: format 0 (the TOC: track 1 and the lead-out) and 1
 * (the last session), as LBAs or MSF; format 2 (the raw TOC, MSF). */
static void mmc_read_toc(struct scsi_task *t)
{
  const uint8_t *c = t->cdb;
  bool msf = c[1] & 0x02;
  unsigned format = c[2] & 0x0f, track = c[6];
  if (!format)
    format = c[9] >> 6;              /* the older place of the format (SFF-8020) */
  uint8_t d[4 + 4 * 11] = { 0 };
  size_t n = 4;
  d[2] = 1;                          /* first track, or first session */
  d[3] = 1;                          /* last track, or last session */
  if (format == 0) {
    if (track > 1 && track != 0xaa) {
      scsi_sense_field(t, 6, -1);
      return;
    }
    if (track <= 1) {
      d[n + 1] = 0x14;               /* ADR 1 (position), CONTROL 4 (data track) */
      d[n + 2] = 1;
      put_addr(d + n + 4, 0, msf);
      n += 8;
    }
    d[n + 1] = 0x14;
    d[n + 2] = 0xaa;                 /* the lead-out, just past the last block */
    put_addr(d + n + 4, cd_blocks(t), msf);
    n += 8;
  } else if (format == 1) {
    d[n + 1] = 0x14;
    d[n + 2] = 1;                    /* the first track of the last session */
    put_addr(d + n + 4, 0, msf);
    n += 8;
  } else if (format == 2) {
    uint8_t lo[4];
    put_addr(lo, cd_blocks(t), true);
    n += raw_toc_entry(d + n, 0xa0, 1, 0x00, 0);   /* first track 1; disc type CD-ROM */
    n += raw_toc_entry(d + n, 0xa1, 1, 0, 0);      /* last track 1 */
    n += raw_toc_entry(d + n, 0xa2, lo[1], lo[2], lo[3]); /* the lead-out */
    n += raw_toc_entry(d + n, 1, 0, 2, 0);         /* track 1 at 00:02:00 */
  } else {
    scsi_sense_field(t, 2, 3);
    return;
  }
  put16(d, (uint16_t)(n - 2));
  scsi_reply(t, d, n, get16(c + 7));
}

/* One feature descriptor of GET CONFIGURATION. */
static size_t feature(uint8_t *p, uint16_t code, uint8_t version, bool current,
                      const uint8_t *data, uint8_t len)
{
  put16(p, code);
  p[2] = (uint8_t)(version << 2 | 0x02 /* persistent */ | (current ? 0x01 : 0));
  p[3] = len;
  memcpy(p + 4, data, len);
  return 4u + len;
}

/* GET CONFIGURATION: profile CD-ROM, current; the features a CD-ROM drive
 * with its disc always loaded has.  RT 0: all from the starting feature on,
 * 1: the current ones, 2: the one named. */
static void mmc_get_configuration(struct scsi_task *t)
{
  const uint8_t *c = t->cdb;
  unsigned rt = c[1] & 0x03;
  uint16_t start = get16(c + 2);
  if (rt == 3) {
    scsi_sense_field(t, 1, 1);
    return;
  }
  static const uint8_t profiles[] = { 0x00, 0x08, 0x01, 0x00 };  /* CD-ROM, current */
  static const uint8_t core[] = { 0, 0, 0, 0x01, 0x00, 0, 0, 0 };  /* SCSI family */
  static const uint8_t morphing[] = { 0x02, 0, 0, 0 };             /* OCEvent: polled GESN */
  static const uint8_t removable[] = { 0x29, 0, 0, 0 };            /* tray, eject, lock */
  static const uint8_t random_read[] = { 0, 0, 0x08, 0x00, 0x00, 0x01, 0, 0 }; /* 2048, blocking 1 */
  static const uint8_t cd_read[] = { 0, 0, 0, 0 };
  static const struct {
    uint16_t code;
    uint8_t version;
    const uint8_t *data;
    uint8_t len;
  } features[] = {
    { 0x0000, 0, profiles, sizeof profiles },
    { 0x0001, 2, core, sizeof core },
    { 0x0002, 1, morphing, sizeof morphing },
    { 0x0003, 0, removable, sizeof removable },
    { 0x0010, 0, random_read, sizeof random_read },
    { 0x001e, 2, cd_read, sizeof cd_read },
  };
  uint8_t d[8 + 6 * 12] = { 0 };
  size_t n = 8;
  for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
    if (rt == 2 ? features[i].code != start : features[i].code < start)
      continue;
    n += feature(d + n, features[i].code, features[i].version, true, features[i].data,
                 features[i].len);
  }
  put32(d, (uint32_t)(n - 4));
  put16(d + 6, CD_PROFILE_CDROM);    /* current profile */
  scsi_reply(t, d, n, get16(c + 7));
}

/* GET EVENT STATUS NOTIFICATION, polled: the media class (a disc is always
 * present, nothing ever changes); asynchronous notification is not offered. */
static void mmc_get_event_status(struct scsi_task *t)
{
  const uint8_t *c = t->cdb;
  if (!(c[1] & 0x01)) {
    scsi_sense_field(t, 1, 0);
    return;
  }
  uint8_t d[8] = { 0 };
  size_t n = 4;
  d[3] = 0x10;                       /* supported event classes: media */
  if (c[4] & 0x10) {
    d[2] = 0x04;                     /* media class */
    d[4] = 0x00;                     /* no change */
    d[5] = 0x02;                     /* media present, tray closed */
    n = 8;
  } else {
    d[2] = 0x80;                     /* NEA: no event of a requested class */
  }
  put16(d, (uint16_t)(n - 2));
  scsi_reply(t, d, n, get16(c + 7));
}

/* READ DISC INFORMATION (standard disc information): a finished disc with
 * one session of one track. */
static void mmc_read_disc_info(struct scsi_task *t)
{
  if (t->cdb[1] & 0x07) {
    scsi_sense_field(t, 1, 2);
    return;
  }
  uint8_t d[34] = { 0 };
  put16(d, 32);
  d[2] = 0x0e;                       /* last session complete, disc complete */
  d[3] = 1;                          /* first track on the disc */
  d[4] = 1;                          /* sessions */
  d[5] = 1;                          /* first track in the last session */
  d[6] = 1;                          /* last track in the last session */
  d[8] = 0x00;                       /* disc type: CD-DA or CD-ROM */
  memset(d + 16, 0xff, 8);           /* no next session: lead-in and lead-out unknown */
  scsi_reply(t, d, sizeof d, get16(t->cdb + 7));
}

/* Mode page 2Ah, MM capabilities and mechanical status (MMC-3). */
size_t mmc_mode_page_capabilities(uint8_t *p, int pc)
{
  memset(p, 0, 22);
  p[0] = 0x2a;
  p[1] = 20;
  if (pc == 1)                       /* nothing is changeable */
    return 22;
  p[4] = 0x40 | 0x10;                /* multi-session, mode 2 form 1 */
  p[6] = 0x20 | 0x08 | 0x01;         /* tray, eject, lock */
  put16(p + 8, 176 * 48);            /* maximum read speed (kB/s), obsolete */
  put16(p + 14, 176 * 48);           /* current read speed, obsolete */
  return 22;
}

/* The MMC commands; a CD LUN also answers the disk table's rows of
 * mmc_shared_opcodes (cdb.c merges the two). */
const struct scsi_op mmc_ops[] = {
  { 0x43, 0, "READ TOC/PMA/ATIP", 10, OP_NEEDS_LUN, mmc_parse_alloc, mmc_read_toc,
    { 0x43, 0x02, 0x0f, 0, 0, 0, 0xff, 0xff, 0xff, 0xc0 | CTL } },
  { 0x46, 0, "GET CONFIGURATION", 10, OP_NEEDS_LUN, mmc_parse_alloc, mmc_get_configuration,
    { 0x46, 0x03, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, CTL } },
  { 0x4a, 0, "GET EVENT STATUS NOTIFICATION", 10, OP_NEEDS_LUN, mmc_parse_alloc,
    mmc_get_event_status, { 0x4a, 0x01, 0, 0, 0xff, 0, 0, 0xff, 0xff, CTL } },
  { 0x51, 0, "READ DISC INFORMATION", 10, OP_NEEDS_LUN, mmc_parse_alloc, mmc_read_disc_info,
    { 0x51, 0x07, 0, 0, 0, 0, 0, 0xff, 0xff, CTL } },
};
const size_t mmc_n_ops = sizeof mmc_ops / sizeof mmc_ops[0];

/* TEST UNIT READY, REQUEST SENSE, INQUIRY, MODE SENSE(6), START STOP UNIT,
 * PREVENT ALLOW MEDIUM REMOVAL, READ CAPACITY, READ(10), WRITE(10) (refused:
 * write protected), MODE SENSE(10), REPORT LUNS, REPORT SUPPORTED OPERATION
 * CODES, READ(12), WRITE(12). */
const uint8_t mmc_shared_opcodes[] = { 0x00, 0x03, 0x12, 0x1a, 0x1b, 0x1e, 0x25, 0x28, 0x2a,
                                       0x5a, 0xa0, 0xa3, 0xa8, 0xaa };
const size_t mmc_n_shared = sizeof mmc_shared_opcodes;
