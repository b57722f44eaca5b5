/* Unit attentions: the queue itself (src/scsi/ua.c: order, duplicates, reset
 * precedence, overflow), and through the SCSI layer with two I_T nexuses on
 * one LU: a power-on condition per new nexus reported once, INQUIRY and
 * REPORT LUNS not touching it, REQUEST SENSE returning it, MODE SELECT telling
 * the other nexus, LU reset, persistent reservation preemption, and a reset
 * aborting another nexus's queued command. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi.h"
#include "scsi/ua.h"
#include "run_suite.h"

/* ---- the queue ---- */

struct qrow {
  const char *what;
  uint16_t push[12];                 /* 0 ends */
  uint16_t want[UA_QUEUE_MAX + 1];   /* what pops, in order; 0 ends */
  unsigned overflows;
};

static const struct qrow qrows[] = {
  { "oldest first", { 0x2a01, 0x2a03, 0x2a05 }, { 0x2a01, 0x2a03, 0x2a05 }, 0 },
  { "a pending condition is not queued twice", { 0x2a01, 0x2a03, 0x2a01 }, { 0x2a01, 0x2a03 }, 0 },
  { "a reset supersedes what came before", { 0x2a01, 0x2a03, 0x2903, 0x2a05 }, { 0x2903, 0x2a05 }, 0 },
  { "power on after a reset", { 0x2903, 0x2900 }, { 0x2900 }, 0 },
  { "overflow: the newest replaces the last",
    { 0x2a01, 0x2a02, 0x2a03, 0x2a04, 0x2a05, 0x2a06, 0x2a07, 0x2a08, 0x2a09, 0x2a0a },
    { 0x2a01, 0x2a02, 0x2a03, 0x2a04, 0x2a05, 0x2a06, 0x2a07, 0x2a0a }, 2 },
};

START_TEST(test_queue)
{
  const struct qrow *r = &qrows[_i];
  struct ua_queue q = { 0 };
  for (int i = 0; r->push[i]; i++)
    ua_push(&q, r->push[i]);
  uint16_t asc;
  int k = 0;
  while (ua_pop(&q, &asc)) {
    ck_assert_msg(r->want[k] == asc, "%s: pop %d gave %04x, want %04x", r->what, k, asc, r->want[k]);
    k++;
  }
  ck_assert_msg(r->want[k] == 0, "%s: only %d conditions popped", r->what, k);
  ck_assert_msg(q.overflows == r->overflows, "%s: %u overflows, want %u", r->what, q.overflows,
                r->overflows);
}
END_TEST

/* ---- through the SCSI layer ---- */

static uint64_t writes;
static bool yes(void *h) { (void)h; return true; }
static int pwrite_(void *h, const void *b, size_t n, uint64_t off, unsigned fl)
{
  (void)h; (void)b; (void)n; (void)off; (void)fl;
  writes++;
  return 0;
}
static int pread_(void *h, void *b, size_t n, uint64_t off)
{
  (void)h; (void)off;
  memset(b, 0, n);
  return 0;
}
static const struct lg_backstore_ops ops = { .name = "t", .can_write = yes, .pread = pread_,
                                             .pwrite = pwrite_ };

static struct lg_storage so;
static struct lg_lun_view luns[2][1];
static struct scsi_nexus nx[2];

static void setup(void)
{
  memset(&so, 0, sizeof so);
  so = (struct lg_storage){ .name = "t", .plugin = "fileio", .ops = &ops, .size = 1000 * 512,
                            .block_size = 512, .serial = "0123" };
  for (int i = 0; i < 2; i++) {
    luns[i][0] = (struct lg_lun_view){ .index = 0, .so = &so };
    memset(&nx[i], 0, sizeof nx[i]);
    nx[i].luns = luns[i];
    nx[i].n_luns = 1;
    snprintf(nx[i].id.initiator, sizeof nx[i].id.initiator, "iqn.2025-10.org.test:i%d", i);
    snprintf(nx[i].id.target, sizeof nx[i].id.target, "iqn.2025-10.org.test:t");
    nx[i].id.isid[5] = (uint8_t)i;
    ck_assert_int_eq(scsi_nexus_attach(&nx[i]), 0);
  }
}

static void teardown(void)
{
  scsi_nexus_detach(&nx[0]);
  scsi_nexus_detach(&nx[1]);
  scsi_lu_free(&so);
}

static uint8_t buf[4096];

/* Parse a command from nexus n (data-out: the first len bytes of out). */
static struct scsi_task cmd_parse(int n, const uint8_t *cdb, const void *out, uint32_t len)
{
  struct scsi_task t;
  memset(&t, 0, sizeof t);
  memcpy(t.cdb, cdb, 16);
  t.nexus = &nx[n];
  t.lun = &nx[n].luns[0];
  t.buf = buf;
  t.bufcap = sizeof buf;
  if (scsi_parse(&t) == 0 && out)
    memcpy(buf, out, len);
  return t;
}

/* Run a command from nexus n; its status, with the sense key and ASC/ASCQ in *asc. */
static int cmd(int n, const uint8_t *cdb, const void *out, uint32_t len, unsigned *asc)
{
  struct scsi_task t = cmd_parse(n, cdb, out, len);
  if (t.status == SCSI_STATUS_GOOD)
    scsi_exec(&t);
  if (asc)
    *asc = t.sense_len ? (unsigned)(t.sense[2] << 16 | t.sense[12] << 8 | t.sense[13]) : 0;
  return t.status;
}

static const uint8_t tur[16] = { 0x00 }, inquiry[16] = { 0x12, 0, 0, 0, 36 };
static const uint8_t report_luns[16] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
static const uint8_t request_sense[16] = { 0x03, 0, 0, 0, 18 };
static const uint8_t write10[16] = { 0x2a, 0, 0, 0, 0, 1, 0, 0, 1 };

/* Take both nexuses' power-on unit attentions. */
static void clear_power_on(void)
{
  for (int n = 0; n < 2; n++)
    ck_assert_int_eq(cmd(n, tur, NULL, 0, NULL), SCSI_STATUS_CHECK_CONDITION);
}

START_TEST(test_power_on_once_per_nexus)
{
  unsigned asc;
  /* INQUIRY and REPORT LUNS neither report nor clear it */
  ck_assert_int_eq(cmd(0, inquiry, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_int_eq(cmd(0, report_luns, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_int_eq(cmd(0, tur, NULL, 0, &asc), SCSI_STATUS_CHECK_CONDITION);
  ck_assert_uint_eq(asc, 0x062900);
  ck_assert_int_eq(cmd(0, tur, NULL, 0, NULL), SCSI_STATUS_GOOD); /* once */
  /* the other nexus still has its own; REQUEST SENSE returns it as data */
  ck_assert_int_eq(cmd(1, request_sense, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_uint_eq(buf[2], SCSI_SENSE_UNIT_ATTENTION);
  ck_assert_uint_eq(buf[12] << 8 | buf[13], 0x2900);
  ck_assert_int_eq(cmd(1, tur, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_int_eq(cmd(1, request_sense, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_uint_eq(buf[2], 0);
}
END_TEST

START_TEST(test_mode_select)
{
  unsigned asc;
  clear_power_on();
  /* read the caching page, clear WCE, write it back */
  const uint8_t sense_caching[16] = { 0x1a, 0x08, 0x08, 0, 255 };
  ck_assert_int_eq(cmd(0, sense_caching, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_uint_eq(buf[4 + 2] & 0x04, 0x04);
  uint8_t pl[24];
  memcpy(pl, buf, 24);
  pl[0] = 0;
  pl[4 + 2] &= (uint8_t)~0x04;
  const uint8_t select6[16] = { 0x15, 0x10, 0, 0, 24 };
  ck_assert_int_eq(cmd(0, select6, pl, 24, NULL), SCSI_STATUS_GOOD);
  ck_assert_int_eq(cmd(0, sense_caching, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_uint_eq(buf[4 + 2] & 0x04, 0);
  /* WCE=0: writes go through with FUA */
  struct scsi_task w = cmd_parse(0, write10, NULL, 0);
  ck_assert_uint_eq(w.bs_flags & LG_BS_FUA, LG_BS_FUA);
  /* the other nexus is told, once; not the one that changed it */
  ck_assert_int_eq(cmd(1, tur, NULL, 0, &asc), SCSI_STATUS_CHECK_CONDITION);
  ck_assert_uint_eq(asc, 0x062a01);
  ck_assert_int_eq(cmd(1, tur, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_int_eq(cmd(0, tur, NULL, 0, NULL), SCSI_STATUS_GOOD);
  /* the same values again change nothing: no unit attention */
  ck_assert_int_eq(cmd(0, select6, pl, 24, NULL), SCSI_STATUS_GOOD);
  ck_assert_int_eq(cmd(1, tur, NULL, 0, NULL), SCSI_STATUS_GOOD);
  /* a field that cannot change: INVALID FIELD IN PARAMETER LIST pointing at it */
  pl[4 + 3] = 0x01;
  ck_assert_int_eq(cmd(0, select6, pl, 24, &asc), SCSI_STATUS_CHECK_CONDITION);
  ck_assert_uint_eq(asc, 0x052600);
  struct scsi_task t = cmd_parse(0, select6, pl, 24);
  scsi_exec(&t);
  ck_assert_uint_eq(t.sense[15], 0x80 | 0x08 | 0);   /* SKSV, bit valid, bit 0; C/D 0 */
  ck_assert_uint_eq(t.sense[17], 4 + 3);
  /* a page of the wrong length */
  pl[4 + 3] = 0;
  pl[4 + 1] = 10;
  ck_assert_int_eq(cmd(0, select6, pl, 24, &asc), SCSI_STATUS_CHECK_CONDITION);
  ck_assert_uint_eq(asc, 0x052600);
  /* saving pages: refused before any data moves */
  const uint8_t select6_sp[16] = { 0x15, 0x11, 0, 0, 24 };
  ck_assert_int_eq(cmd(0, select6_sp, NULL, 0, &asc), SCSI_STATUS_CHECK_CONDITION);
  ck_assert_uint_eq(asc, 0x053900);
  /* changeable values: WCE and SWP */
  const uint8_t sense_changeable[16] = { 0x1a, 0x08, 0x40 | 0x3f, 0, 255 };
  ck_assert_int_eq(cmd(0, sense_changeable, NULL, 0, NULL), SCSI_STATUS_GOOD);
  ck_assert_uint_eq(buf[4 + 2], 0x04);
  ck_assert_uint_eq(buf[4 + 20 + 4], 0x08);
  ck_assert_uint_eq(buf[4 + 20 + 3], 0);
}
END_TEST

START_TEST(test_swp)
{
  unsigned asc;
  cmd(0, tur, NULL, 0, NULL);
  const uint8_t sense_control[16] = { 0x1a, 0x08, 0x0a, 0, 255 };
  ck_assert_int_eq(cmd(0, sense_control, NULL, 0, NULL), SCSI_STATUS_GOOD);
  uint8_t pl[16];
  memcpy(pl, buf, 16);
  pl[0] = 0;
  pl[4 + 4] |= 0x08;
  const uint8_t select6[16] = { 0x15, 0x10, 0, 0, 16 };
  ck_assert_int_eq(cmd(0, select6, pl, 16, NULL), SCSI_STATUS_GOOD);
  ck_assert_int_eq(cmd(0, write10, NULL, 0, &asc), SCSI_STATUS_CHECK_CONDITION);
  ck_assert_uint_eq(asc, 0x072702);
  const uint8_t ms_all[16] = { 0x1a, 0, 0x3f, 0, 255 };
  cmd(0, ms_all, NULL, 0, NULL);
  ck_assert_uint_eq(buf[2] & 0x80, 0x80);              /* WP in the header */
}
END_TEST

START_TEST(test_lu_reset_and_abort)
{
  unsigned asc;
  clear_power_on();
  /* a write of nexus 1 is parsed (queued) when nexus 0 resets the LU */
  uint8_t data[512] = { 0 };
  struct scsi_task w = cmd_parse(1, write10, data, 512);
  ck_assert_int_eq(w.status, SCSI_STATUS_GOOD);
  uint64_t before = writes;
  scsi_lu_reset(&so, SCSI_LU_RESET);
  scsi_exec(&w);
  ck_assert_int_eq(w.status, SCSI_STATUS_TASK_ABORTED);
  ck_assert(writes == before);                         /* it never ran */
  for (int n = 0; n < 2; n++) {                        /* every nexus, once */
    ck_assert_int_eq(cmd(n, tur, NULL, 0, &asc), SCSI_STATUS_CHECK_CONDITION);
    ck_assert_uint_eq(asc, 0x062903);
    ck_assert_int_eq(cmd(n, tur, NULL, 0, NULL), SCSI_STATUS_GOOD);
  }
  /* commands after the reset run */
  ck_assert_int_eq(cmd(1, write10, data, 512, NULL), SCSI_STATUS_GOOD);
  ck_assert(writes == before + 1);
}
END_TEST

START_TEST(test_preempt)
{
  unsigned asc;
  clear_power_on();
  uint8_t p[24] = { 0 };
  const uint8_t reg_ignore[16] = { 0x5f, 6, 0, 0, 0, 0, 0, 0, 24 };
  p[15] = 0x11;
  ck_assert_int_eq(cmd(0, reg_ignore, p, 24, NULL), SCSI_STATUS_GOOD);
  p[15] = 0x22;
  ck_assert_int_eq(cmd(1, reg_ignore, p, 24, NULL), SCSI_STATUS_GOOD);
  memset(p, 0, sizeof p);
  p[7] = 0x11;
  const uint8_t reserve_ea[16] = { 0x5f, 1, PR_EA, 0, 0, 0, 0, 0, 24 };
  ck_assert_int_eq(cmd(0, reserve_ea, p, 24, NULL), SCSI_STATUS_GOOD);
  /* exclusive access: the other nexus may not even read */
  const uint8_t read10[16] = { 0x28, 0, 0, 0, 0, 1, 0, 0, 1 };
  ck_assert_int_eq(cmd(1, read10, NULL, 0, NULL), SCSI_STATUS_RESERVATION_CONFLICT);
  ck_assert_int_eq(cmd(1, tur, NULL, 0, NULL), SCSI_STATUS_GOOD);
  /* nexus 0 has a write queued; nexus 1 preempts and aborts */
  uint8_t data[512] = { 0 };
  struct scsi_task w = cmd_parse(0, write10, data, 512);
  ck_assert_int_eq(w.status, SCSI_STATUS_GOOD);
  memset(p, 0, sizeof p);
  p[7] = 0x22;
  p[15] = 0x11;
  const uint8_t preempt_abort[16] = { 0x5f, 5, PR_WE, 0, 0, 0, 0, 0, 24 };
  ck_assert_int_eq(cmd(1, preempt_abort, p, 24, NULL), SCSI_STATUS_GOOD);
  scsi_exec(&w);
  ck_assert_int_eq(w.status, SCSI_STATUS_TASK_ABORTED);
  ck_assert_int_eq(cmd(0, tur, NULL, 0, &asc), SCSI_STATUS_CHECK_CONDITION);
  ck_assert_uint_eq(asc, 0x062a05);                    /* REGISTRATIONS PREEMPTED */
  ck_assert_int_eq(cmd(0, read10, NULL, 0, NULL), SCSI_STATUS_GOOD);  /* WE: reads allowed */
  ck_assert_int_eq(cmd(0, write10, data, 512, NULL), SCSI_STATUS_RESERVATION_CONFLICT);
  /* RESERVE(6) conflicts with registrations */
  const uint8_t reserve6[16] = { 0x16 };
  ck_assert_int_eq(cmd(1, reserve6, NULL, 0, NULL), SCSI_STATUS_RESERVATION_CONFLICT);
  /* PERSISTENT RESERVE IN of an unknown service action */
  const uint8_t prin_bad[16] = { 0x5e, 4, 0, 0, 0, 0, 0, 0, 64 };
  ck_assert_int_eq(cmd(1, prin_bad, NULL, 0, &asc), SCSI_STATUS_CHECK_CONDITION);
  ck_assert_uint_eq(asc, 0x052400);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("ua");
  TCase *tq = tcase_create("queue");
  tcase_add_loop_test(tq, test_queue, 0, sizeof qrows / sizeof qrows[0]);
  suite_add_tcase(s, tq);
  TCase *tl = tcase_create("lu");
  tcase_add_checked_fixture(tl, setup, teardown);
  tcase_add_test(tl, test_power_on_once_per_nexus);
  tcase_add_test(tl, test_mode_select);
  tcase_add_test(tl, test_swp);
  tcase_add_test(tl, test_lu_reset_and_abort);
  tcase_add_test(tl, test_preempt);
  suite_add_tcase(s, tl);
  return lg_run_suite(s);
}
