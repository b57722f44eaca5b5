/* A boot or a reconnect (src/target/boot_rule.c), row by row: what each kind
 * of initiator does (iPXE, open-iscsi through the iBFT, libiscsi/QEMU,
 * Windows) and what a forced reset's fence does to it. */
#include <check.h>
#include <string.h>

#include "target/boot_rule.h"
#include "run_suite.h"

#define NOW 1000000u
/* ISIDs as the initiators make them */
#define IPXE1 { 0x40, 0x00, 0x27, 0x23, 0x12, 0x34 }   /* EN 10019, random qualifier */
#define IPXE2 { 0x40, 0x00, 0x27, 0x23, 0xab, 0xcd }
#define OPENISCSI { 0x00, 0x02, 0x3d, 0x00, 0x00, 0x01 }
#define WINDOWS { 0x40, 0x00, 0x01, 0x37, 0x00, 0x00 }
#define LIBISCSI1 { 0x80, 0x35, 0x5c, 0xf7, 0x00, 0x00 }
#define LIBISCSI2 { 0x80, 0xe8, 0x01, 0xa4, 0x00, 0x00 }

struct row {
  const char *what;
  uint8_t n;                         /* the record: ISIDs of the boot */
  uint8_t isids[3][6];
  bool fenced, clean;
  uint64_t ago;                      /* the last session ended this long ago */
  bool live;
  uint8_t isid[6];                   /* the login */
  enum lg_login_kind want;
};

static const struct row rows[] = {
  { "first login ever", 0, { { 0 } }, false, false, 0, false, IPXE1, LG_LOGIN_BOOT },
  { "iBFT hand-over, iPXE still connected", 1, { IPXE1 }, false, false, 0, true, OPENISCSI,
    LG_LOGIN_CONTINUES },
  { "iBFT hand-over, iPXE's connection already gone", 1, { IPXE1 }, false, false, 30, false,
    OPENISCSI, LG_LOGIN_CONTINUES },
  { "iBFT hand-over after a clean end, within the window", 1, { IPXE1 }, false, true, 300, false,
    OPENISCSI, LG_LOGIN_CONTINUES },
  { "OS login long after iPXE's session: a boot", 1, { IPXE1 }, false, true, 3600, false,
    OPENISCSI, LG_LOGIN_BOOT },
  { "iscsid's relogin at switch-root (a logout first)", 2, { IPXE1, OPENISCSI }, false, true, 2,
    false, OPENISCSI, LG_LOGIN_CONTINUES },
  { "open-iscsi after a day-long outage", 2, { IPXE1, OPENISCSI }, false, false, 86400, false,
    OPENISCSI, LG_LOGIN_CONTINUES },
  { "Windows reconnecting with its ISID", 2, { IPXE1, WINDOWS }, false, false, 7200, false,
    WINDOWS, LG_LOGIN_CONTINUES },
  { "reinstatement: the old session still live", 1, { OPENISCSI }, false, false, 0, true,
    OPENISCSI, LG_LOGIN_CONTINUES },
  { "libiscsi reconnects with a new ISID", 1, { LIBISCSI1 }, false, false, 1, false, LIBISCSI2,
    LG_LOGIN_CONTINUES },
  { "a new QEMU after a logout: a boot", 1, { LIBISCSI1 }, false, true, 1, false, LIBISCSI2,
    LG_LOGIN_BOOT },
  { "a new QEMU long after a lost connection: a boot", 1, { LIBISCSI1 }, false, false, 600, false,
    LIBISCSI2, LG_LOGIN_BOOT },
  { "iPXE (DOS on int13) reconnects after a lost connection", 1, { IPXE1 }, false, false, 5,
    false, IPXE2, LG_LOGIN_CONTINUES },
  { "iPXE again long after: a boot", 1, { IPXE1 }, false, false, 600, false, IPXE2,
    LG_LOGIN_BOOT },
  { "iPXE after the OS ran: the PC started again", 2, { IPXE1, OPENISCSI }, false, false, 5,
    false, IPXE2, LG_LOGIN_BOOT },
  { "iPXE after the OS, the OS's session still open (hard reset)", 2, { IPXE1, OPENISCSI },
    false, false, 0, true, IPXE2, LG_LOGIN_BOOT },
  { "fenced: the cut-off OS reconnects", 2, { IPXE1, OPENISCSI }, true, false, 1, false,
    OPENISCSI, LG_LOGIN_FENCED },
  { "fenced: libiscsi reconnects with a new ISID", 1, { LIBISCSI1 }, true, false, 1, false,
    LIBISCSI2, LG_LOGIN_FENCED },
  { "fenced: a new QEMU after the cut-off one logged out", 1, { LIBISCSI1 }, true, true, 1, false,
    LIBISCSI2, LG_LOGIN_BOOT },
  { "fenced: iPXE (DOS) reconnects at once", 1, { IPXE1 }, true, false, 2, false, IPXE2,
    LG_LOGIN_FENCED },
  { "fenced: the Linux PC boots again at once (iPXE)", 2, { IPXE1, OPENISCSI }, true, false, 2,
    false, IPXE2, LG_LOGIN_BOOT },
  { "fenced: the cut-off OS, a day later, same ISID", 2, { IPXE1, OPENISCSI }, true, false,
    86400, false, OPENISCSI, LG_LOGIN_FENCED },
};

START_TEST(test_rule)
{
  const struct row *r = &rows[_i];
  struct cow_boot b = { .n = r->n, .fenced = r->fenced, .clean = r->clean,
                        .last_end = r->n ? NOW - r->ago : 0 };
  memcpy(b.isid, r->isids, sizeof r->isids);
  const char *why = NULL;
  enum lg_login_kind k = lg_login_kind(&b, r->live, r->isid, NOW, &why);
  ck_assert_msg(k == r->want, "%s: got %d (%s), want %d", r->what, k, why ? why : "?", r->want);
  ck_assert_msg(why && *why, "%s: no reason given", r->what);
}
END_TEST

/* lg_boot_firmware_again: the PC certainly started again (what "on_boot"
 * trusts over a record a crashed gateway left live) */
struct fw_row {
  const char *what;
  uint8_t n;
  uint8_t isids[3][6];
  uint8_t isid[6];
  bool want;
};

static const struct fw_row fw_rows[] = {
  { "iPXE after the OS", 2, { IPXE1, OPENISCSI }, IPXE2, true },
  { "iPXE after Windows", 2, { IPXE1, WINDOWS }, IPXE2, true },
  { "iPXE after iPXE only (DOS)", 1, { IPXE1 }, IPXE2, false },
  { "the OS after iPXE (the hand-over)", 1, { IPXE1 }, OPENISCSI, false },
  { "the OS again", 2, { IPXE1, OPENISCSI }, OPENISCSI, false },
  { "libiscsi after libiscsi", 1, { LIBISCSI1 }, LIBISCSI2, false },
  { "iPXE, no record", 0, { { 0 } }, IPXE1, false },
};

START_TEST(test_firmware_again)
{
  const struct fw_row *r = &fw_rows[_i];
  struct cow_boot b = { .n = r->n };
  memcpy(b.isid, r->isids, sizeof r->isids);
  ck_assert_msg(lg_boot_firmware_again(&b, r->isid) == r->want, "%s: got %d, want %d", r->what,
                !r->want, r->want);
}
END_TEST

START_TEST(test_record)
{
  struct cow_boot b = { 0 };
  uint8_t isid[6] = { 0x80, 0, 0, 0, 0, 0 };
  for (int i = 0; i < 20; i++) {
    isid[5] = (uint8_t)i;
    lg_boot_add(&b, isid);
    lg_boot_add(&b, isid); /* twice: recorded once */
  }
  ck_assert_uint_eq(b.n, COW_BOOT_ISIDS);
  isid[5] = 0;
  ck_assert_msg(lg_boot_has(&b, isid), "the boot's first ISID was pushed out");
  isid[5] = 19;
  ck_assert_msg(lg_boot_has(&b, isid), "the newest ISID is not recorded");
  isid[5] = 5;
  ck_assert_msg(!lg_boot_has(&b, isid), "an old ISID did not make room");
}
END_TEST

int main(void)
{
  Suite *s = suite_create("boot_rule");
  TCase *tc = tcase_create("rule");
  tcase_add_loop_test(tc, test_rule, 0, sizeof rows / sizeof rows[0]);
  tcase_add_loop_test(tc, test_firmware_again, 0, sizeof fw_rows / sizeof fw_rows[0]);
  tcase_add_test(tc, test_record);
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
