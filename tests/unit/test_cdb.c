/* CDB decoding, range and protection checks, and the emulated replies,
 * table-driven against a LUN of 1000 blocks of 512 bytes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi.h"
#include "run_suite.h"

#define BLOCKS 1000ull

static bool yes(void *h) { (void)h; return true; }
static int trim(void *h, uint64_t n, uint64_t off) { (void)h; (void)n; (void)off; return 0; }
static const struct lg_backstore_ops ops = { .name = "t", .can_trim = yes, .trim = trim };
static struct lg_storage so = { .name = "t", .plugin = "fileio", .ops = &ops,
                                .size = BLOCKS * 512, .block_size = 512,
                                .serial = "0123456789abcdef" };

struct row {
  const char *what;
  uint8_t cdb[16];
  bool no_lun, write_protect;
  int rc;                          /* scsi_parse result */
  uint8_t key;                     /* sense key when rc < 0 */
  uint16_t asc;
  enum scsi_dir dir;
  uint32_t spdtl;
  uint64_t lba;
  uint32_t nblocks;
  unsigned flags;
};

static const struct row rows[] = {
  { "TEST UNIT READY", { 0x00 }, .dir = SCSI_DIR_NONE },
  { "TUR on an unmapped LUN", { 0x00 }, .no_lun = true, .rc = -1, .key = 0x05, .asc = 0x2500 },
  { "INQUIRY on an unmapped LUN", { 0x12, 0, 0, 0, 36 }, .no_lun = true, .dir = SCSI_DIR_IN, .spdtl = 36 },
  { "unknown opcode", { 0xc0 }, .rc = -1, .key = 0x05, .asc = 0x2000 },
  { "READ(6) 0 means 256", { 0x08, 0, 0, 10, 0 }, .dir = SCSI_DIR_IN, .spdtl = 256 * 512, .lba = 10, .nblocks = 256 },
  { "READ(10) last block", { 0x28, 0, 0, 0, 0x03, 0xe7, 0, 0, 1 }, .dir = SCSI_DIR_IN, .spdtl = 512, .lba = 999, .nblocks = 1 },
  { "READ(10) past the end", { 0x28, 0, 0, 0, 0x03, 0xe7, 0, 0, 2 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "READ(10) LBA = capacity, 0 blocks", { 0x28, 0, 0, 0, 0x03, 0xe8, 0, 0, 0 }, .dir = SCSI_DIR_NONE, .lba = 1000 },
  { "READ(10) LBA > capacity, 0 blocks", { 0x28, 0, 0, 0, 0x03, 0xe9, 0, 0, 0 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "READ(16) 64-bit overflow", { 0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "READ(16) huge LBA", { 0x88, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "READ(12) too long a transfer", { 0xa8, 0, 0, 0, 0, 0, 0, 1, 0, 0 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "READ(10) RDPROTECT without PI", { 0x28, 0x20, 0, 0, 0, 0, 0, 0, 1 }, .rc = -1, .key = 0x05, .asc = 0x2400 },
  { "WRITE(10) FUA", { 0x2a, 0x08, 0, 0, 0, 5, 0, 0, 4 }, .dir = SCSI_DIR_OUT, .spdtl = 2048, .lba = 5, .nblocks = 4, .flags = LG_BS_FUA },
  { "WRITE(16) write protected", { 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, .write_protect = true, .rc = -1, .key = 0x07, .asc = 0x2700 },
  { "WRITE(6)", { 0x0a, 0, 0, 1, 1 }, .dir = SCSI_DIR_OUT, .spdtl = 512, .lba = 1, .nblocks = 1 },
  { "WRITE(12) past the end", { 0xaa, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 1 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "VERIFY(10) BYTCHK=0", { 0x2f, 0, 0, 0, 0, 0, 0, 0, 8 }, .dir = SCSI_DIR_NONE, .nblocks = 8 },
  { "VERIFY(10) BYTCHK=1", { 0x2f, 0x02, 0, 0, 0, 0, 0, 0, 8 }, .dir = SCSI_DIR_OUT, .spdtl = 4096, .nblocks = 8 },
  { "VERIFY(16) BYTCHK=3", { 0x8f, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8 }, .dir = SCSI_DIR_OUT, .spdtl = 512, .nblocks = 8 },
  { "VERIFY(10) past the end", { 0x2f, 0, 0, 0, 0x03, 0xe8, 0, 0, 1 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "SYNCHRONIZE CACHE(10)", { 0x35 }, .dir = SCSI_DIR_NONE },
  { "SYNCHRONIZE CACHE(16) past the end", { 0x91, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe9 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "READ CAPACITY(16)", { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 }, .dir = SCSI_DIR_IN, .spdtl = 32 },
  { "SERVICE ACTION IN unknown", { 0x9e, 0x1f }, .rc = -1, .key = 0x05, .asc = 0x2400 },
  { "REPORT LUNS", { 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0 }, .dir = SCSI_DIR_IN, .spdtl = 256 },
  { "reserved bit in TUR", { 0x00, 0x01 }, .rc = -1, .key = 0x05, .asc = 0x2400 },
  { "UNMAP, 24 bytes of parameters", { 0x42, 0, 0, 0, 0, 0, 0, 0, 24 }, .dir = SCSI_DIR_OUT, .spdtl = 24 },
  { "UNMAP with ANCHOR", { 0x42, 1, 0, 0, 0, 0, 0, 0, 24 }, .rc = -1, .key = 0x05, .asc = 0x2400 },
  { "WRITE SAME(10) UNMAP", { 0x41, 0x08, 0, 0, 0, 10, 0, 0, 5 }, .dir = SCSI_DIR_OUT, .spdtl = 512, .lba = 10, .nblocks = 5 },
  { "WRITE SAME(16) NDOB", { 0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5 }, .dir = SCSI_DIR_NONE, .nblocks = 5 },
  { "WRITE SAME(10) of 0 blocks (WSNZ)", { 0x41, 0, 0, 0, 0, 10 }, .rc = -1, .key = 0x05, .asc = 0x2400 },
  { "WRITE SAME(16) past the end", { 0x93, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe7, 0, 0, 0, 2 }, .rc = -1, .key = 0x05, .asc = 0x2100 },
  { "WRITE SAME(10) write protected", { 0x41, 0, 0, 0, 0, 0, 0, 0, 1 }, .write_protect = true, .rc = -1, .key = 0x07, .asc = 0x2700 },
  { "GET LBA STATUS", { 0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 }, .dir = SCSI_DIR_IN, .spdtl = 32 },
};

START_TEST(test_parse)
{
  const struct row *r = &rows[_i];
  struct lg_lun_view view = { .index = 0, .so = &so, .write_protect = r->write_protect };
  struct scsi_task t = { 0 };
  memcpy(t.cdb, r->cdb, 16);
  t.lun = r->no_lun ? NULL : &view;
  int rc = scsi_parse(&t);
  ck_assert_msg(rc == r->rc, "row %d (%s): parse %d, want %d", _i, r->what, rc, r->rc);
  if (rc < 0) {
    ck_assert_msg(t.status == SCSI_STATUS_CHECK_CONDITION, "row %d (%s): status", _i, r->what);
    ck_assert_msg(t.sense[2] == r->key && (t.sense[12] << 8 | t.sense[13]) == r->asc,
                  "row %d (%s): sense %x/%02x%02x, want %x/%04x", _i, r->what, t.sense[2],
                  t.sense[12], t.sense[13], r->key, r->asc);
    return;
  }
  ck_assert_msg(t.dir == r->dir && t.spdtl == r->spdtl,
                "row %d (%s): dir %d spdtl %u, want %d %u", _i, r->what, t.dir, t.spdtl,
                r->dir, r->spdtl);
  ck_assert_msg(t.lba == r->lba && t.nblocks == r->nblocks && t.bs_flags == r->flags,
                "row %d (%s): lba %llu n %u flags %u", _i, r->what,
                (unsigned long long)t.lba, t.nblocks, t.bs_flags);
}
END_TEST

/* Run a data-in command and return its reply. */
static uint32_t run(const uint8_t *cdb, struct lg_lun_view *view, uint8_t *out, uint32_t cap,
                    struct scsi_task *t)
{
  static struct lg_lun_view luns[3];
  static struct scsi_nexus nx = { .luns = luns, .n_luns = 3 };
  luns[0] = (struct lg_lun_view){ .index = 0, .so = &so, .write_protect = false };
  luns[1] = (struct lg_lun_view){ .index = 1, .so = &so, .write_protect = false };
  luns[2] = (struct lg_lun_view){ .index = 300, .so = &so, .write_protect = false };
  memset(t, 0, sizeof *t);
  memcpy(t->cdb, cdb, 16);
  t->lun = view;
  t->nexus = &nx;
  t->buf = out;
  t->bufcap = cap;
  if (scsi_parse(t) == 0)
    scsi_exec(t);
  return t->data_in_len;
}

START_TEST(test_replies)
{
  struct lg_lun_view view = { .so = &so, .write_protect = false };
  uint8_t d[512];
  struct scsi_task t;

  uint8_t rc16[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 };
  ck_assert_uint_eq(run(rc16, &view, d, sizeof d, &t), 32);
  ck_assert_uint_eq(d[7], 999 & 0xff);
  ck_assert_uint_eq(d[6], 999 >> 8);
  ck_assert_uint_eq(d[10] << 8 | d[11], 512);

  uint8_t rc10[16] = { 0x25 };
  ck_assert_uint_eq(run(rc10, &view, d, sizeof d, &t), 8);
  ck_assert_uint_eq(d[2] << 8 | d[3], 999);

  uint8_t rl[16] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
  ck_assert_uint_eq(run(rl, &view, d, sizeof d, &t), 8 + 3 * 8);
  ck_assert_uint_eq(d[3], 24);
  ck_assert_uint_eq(d[8 + 8 + 1], 1);
  ck_assert_uint_eq(d[8 + 16], 0x41);                 /* LUN 300: flat addressing */
  ck_assert_uint_eq(d[8 + 16 + 1], 300 & 0xff);

  uint8_t rl_short[16] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8 };
  run(rl_short, &view, d, sizeof d, &t);
  ck_assert_uint_eq(t.status, SCSI_STATUS_CHECK_CONDITION);

  uint8_t inq[16] = { 0x12, 0, 0, 0, 96 };
  ck_assert_uint_eq(run(inq, &view, d, sizeof d, &t), 96);
  ck_assert_uint_eq(d[0], 0x00);
  ck_assert(!memcmp(d + 8, "LUNGATE ", 8));
  ck_assert_uint_eq(run(inq, NULL, d, sizeof d, &t), 96);
  ck_assert_uint_eq(d[0], 0x7f);                      /* no LU at this LUN */

  uint8_t inq_short[16] = { 0x12, 0, 0, 0, 5 };       /* truncated to the allocation */
  ck_assert_uint_eq(run(inq_short, &view, d, sizeof d, &t), 5);

  uint8_t vpd0[16] = { 0x12, 1, 0x00, 0, 255 };
  uint32_t n = run(vpd0, &view, d, sizeof d, &t);
  static const uint8_t pages[] = { 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2 }; /* ascending */
  ck_assert_uint_eq(n, 4 + sizeof pages);
  ck_assert_uint_eq(d[3], sizeof pages);
  ck_assert(!memcmp(d + 4, pages, sizeof pages));

  /* Third-party Copy (8Fh): descriptors 0001h, 0004h, 0008h, 000Ch, 8001h,
   * each a multiple of 4 long, matching what EXTENDED COPY (LID1) takes */
  uint8_t vpd8f[16] = { 0x12, 1, 0x8f, 0, 255 };
  n = run(vpd8f, &view, d, sizeof d, &t);
  ck_assert_uint_eq(t.status, 0);
  ck_assert_uint_eq(d[1], 0x8f);
  ck_assert_uint_eq(n, 4u + (d[2] << 8 | d[3]));
  static const struct { uint16_t type, len; uint8_t body[12]; size_t body_len; } descs[] = {
    { 0x0001, 8, { 7, 0x83, 1, 0x00, 0x84, 2, 0x00, 0x03 }, 8 }, /* supported commands */
    { 0x0004, 0x1c, { 0, 0, 0, 0, 0, 8, 0, 32, 0, 0, 0x05, 0x00 }, 12 }, /* 8 CSCD, 32 segments, 1280 bytes */
    { 0x0008, 4, { 3, 0x02, 0x0a, 0xe4 }, 4 },                  /* block->block (+offsets), identification CSCD */
    { 0x000c, 4, { 0, 0, 0, 0 }, 4 },                           /* no CSCD IDs */
    { 0x8001, 0x20, { 0, 0, 0, 1, 0, 0, 0, 1, 0x01, 0, 0, 0 }, 12 }, /* 1 copy, 16 MiB segments */
  };
  size_t off = 4;
  for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++) {
    ck_assert_msg(off + 4 <= n, "descriptor %zu missing", i);
    ck_assert_uint_eq(d[off] << 8 | d[off + 1], descs[i].type);
    ck_assert_uint_eq(d[off + 2] << 8 | d[off + 3], descs[i].len);
    ck_assert_uint_eq(descs[i].len % 4, 0);
    ck_assert_msg(!memcmp(d + off + 4, descs[i].body, descs[i].body_len), "descriptor %04x", descs[i].type);
    off += 4u + descs[i].len;
  }
  ck_assert_uint_eq(off, n);
  ck_assert_uint_eq(d[off - 36 + 16], 9);              /* data segment granularity: 512 */

  uint8_t vpd80[16] = { 0x12, 1, 0x80, 0, 255 };
  n = run(vpd80, &view, d, sizeof d, &t);
  ck_assert(!memcmp(d + 4, "0123456789abcdef", 16));

  uint8_t vpd_bad[16] = { 0x12, 1, 0x42, 0, 255 };
  run(vpd_bad, &view, d, sizeof d, &t);
  ck_assert_uint_eq(t.sense[12], 0x24);

  uint8_t ms[16] = { 0x1a, 0, 0x3f, 0, 255 };
  n = run(ms, &view, d, sizeof d, &t);
  ck_assert_uint_eq(d[0], n - 1);
  ck_assert_uint_eq(d[2] & 0x80, 0);                   /* not write protected */
  struct lg_lun_view wp = { .so = &so, .write_protect = true };
  run(ms, &wp, d, sizeof d, &t);
  ck_assert_uint_eq(d[2] & 0x80, 0x80);

  uint8_t rsoc[16] = { 0xa3, 0x0c, 0x01, 0x28, 0, 0, 0, 0, 1, 0 };
  n = run(rsoc, &view, d, sizeof d, &t);
  ck_assert_uint_eq(d[1] & 7, 3);
  ck_assert_uint_eq(d[3], 10);
  ck_assert_uint_eq(d[4], 0x28);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("cdb");
  TCase *tc = tcase_create("cdb");
  tcase_add_loop_test(tc, test_parse, 0, sizeof rows / sizeof rows[0]);
  tcase_add_test(tc, test_replies);
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
