/* A boot or a reconnect? The rule every login to a per-initiator LUN is
 * judged by (boot_rule.c has it in full), as pure logic over the client's
 * boot record, so that it can be tested row by row. */
#ifndef LUNGATE_TARGET_BOOT_RULE_H
#define LUNGATE_TARGET_BOOT_RULE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/cow.h"

#define LG_HANDOVER_S 600       /* iPXE's session ended, the OS logs in: within this */
#define LG_RECONNECT_S 60       /* a lost connection, a new ISID: a reconnect within this */

enum lg_login_kind { LG_LOGIN_BOOT, LG_LOGIN_CONTINUES, LG_LOGIN_FENCED };

/* Judge a login with isid at time now, to a disk whose client has boot record
 * b and live sessions (live) or not; *why says which part of the rule. */
enum lg_login_kind lg_login_kind(const struct cow_boot *b, bool live, const uint8_t isid[6],
                                 uint64_t now, const char **why);
/* Record isid in the current boot (the oldest make room; the first stays). */
void lg_boot_add(struct cow_boot *b, const uint8_t isid[6]);
/* Is isid one of the boot's? */
bool lg_boot_has(const struct cow_boot *b, const uint8_t isid[6]);
/* Is a login with isid iPXE's after an OS had taken over in boot b: the PC
 * certainly started again, whatever else the record says (a boot by the
 * rule even while the old OS's session looks alive, or after a crash of the
 * gateway left the record live). */
bool lg_boot_firmware_again(const struct cow_boot *b, const uint8_t isid[6]);
/* A reconnect by rule 3 at time now: the last session was lost lately. */
bool lg_boot_lost_lately(const struct cow_boot *b, uint64_t now);

#endif
