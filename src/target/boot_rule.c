/* A boot or a reconnect?
 *
 * A running operating system must never find a different disk under it, so
 * every login to a per-initiator LUN is either the start of a client's boot,
 * which may get a fresh disk (the reset policy), or the continuation of a
 * running one, which gets exactly the disk it had.  A login continues the
 * client's current boot when:
 *
 *  1. a session of the same initiator on the same disk is still live (but
 *     see the iPXE exception in 3): session
 *     reinstatement (same ISID), or the OS logging in through the iBFT while
 *     the boot firmware's connection is still open (iPXE never closes it);
 *  2. its ISID is one that a session of the current boot used: recovery after
 *     a network outage or a gateway restart, iscsid's relogin at switch-root
 *     with the initramfs's ISID, libiscsi's (QEMU's) reconnects.  RFC 7143
 *     (§4.4.3, the ISID rule) has an initiator reuse its ISID to reach the
 *     same target again, so every conforming OS initiator does this: open-iscsi
 *     (00023d000001...), Windows (ISIDs with Microsoft's enterprise number,
 *     400001370000 and up), VMware;
 *  3. the last session ended without a Logout (the connection was lost, or
 *     the gateway closed it) less than LG_RECONNECT_S ago: initiators that pick
 *     a new ISID for every connection reconnect so -- libiscsi (QEMU's iSCSI
 *     driver) makes a new random one in iscsi_reconnect(), iPXE a new
 *     qualifier for every session (ISCSI_ISID_IANA | IANA_EN_FEN_SYSTEMS,
 *     enterprise number 10019, in its iscsi.c) -- unless the login is iPXE's
 *     and an OS had taken over from iPXE in this boot: an OS never hands its
 *     disk back to the boot firmware, so that is the PC starting again, even
 *     while the old OS's session still looks alive (a hard reset leaves its
 *     TCP connection open);
 *  4. it is the first OS login (an ISID that is not iPXE's) after only iPXE
 *     sessions, within LG_HANDOVER_S of the last one's end: the iBFT hand-over
 *     when the firmware's connection is already gone.
 *
 * How long ago anything happened plays no part in 1 and 2.  Anything else
 * starts a boot: a new ISID after a Logout, or after the client was gone
 * for LG_RECONNECT_S.  The record restarts with this ISID, and the "after_idle"
 * policy may reset the disk; it also leaves alone a disk whose gateway died
 * while it was in use (the record's live mark: an iPXE client reconnecting
 * after a gateway restart has a new ISID and no Logout, but its gateway may
 * have been down for longer than LG_RECONNECT_S).  The record (cow_boot) lives
 * in the overlay file, so a gateway restart or a power cut does not forget
 * it.
 *
 * Fencing: a forced reset marks the client's record fenced, keeping the ISIDs
 * of the boot it cut off; a reload that gives a LUN a different disk leaves
 * the same mark in memory (replaced_disk).  A login with one of those ISIDs
 * gets a fenced copy of the LUN (every command fails with NOT READY, MANUAL
 * INTERVENTION REQUIRED, which operating systems report as a failed disk at
 * once instead of retrying), and so does a login that would be a reconnect
 * by rule 3.  The next boot clears the mark.
 */
#include <string.h>

#include "target/boot_rule.h"

static bool isid_is_ipxe(const uint8_t isid[6])
{
  return isid[0] == 0x40 && isid[1] == 0x00 && isid[2] == 0x27 && isid[3] == 0x23;
}

bool lg_boot_has(const struct cow_boot *b, const uint8_t isid[6])
{
  for (unsigned i = 0; i < b->n && i < COW_BOOT_ISIDS; i++)
    if (!memcmp(b->isid[i], isid, 6))
      return true;
  return false;
}

void lg_boot_add(struct cow_boot *b, const uint8_t isid[6])
{
  if (lg_boot_has(b, isid))
    return;
  if (b->n >= COW_BOOT_ISIDS) {
    memmove(b->isid[1], b->isid[2], (COW_BOOT_ISIDS - 2) * 6);
    b->n = COW_BOOT_ISIDS - 1;
  }
  memcpy(b->isid[b->n++], isid, 6);
}

static bool boot_only_ipxe(const struct cow_boot *b)
{
  for (unsigned i = 0; i < b->n; i++)
    if (!isid_is_ipxe(b->isid[i]))
      return false;
  return b->n > 0;
}

bool lg_boot_lost_lately(const struct cow_boot *b, uint64_t now)
{
  return b->n && !b->clean && now - b->last_end < LG_RECONNECT_S;
}

bool lg_boot_firmware_again(const struct cow_boot *b, const uint8_t isid[6])
{
  /* iPXE after an OS had taken over from it: the PC started again (an OS
   * never hands the disk back to its boot firmware) */
  return isid_is_ipxe(isid) && b->n && !boot_only_ipxe(b);
}

enum lg_login_kind lg_login_kind(const struct cow_boot *b, bool live, const uint8_t isid[6],
                                 uint64_t now, const char **why)
{
  bool firmware_again = lg_boot_firmware_again(b, isid);
  bool reconnect = lg_boot_has(b, isid) || (lg_boot_lost_lately(b, now) && !firmware_again);
  if (b->fenced) {
    *why = reconnect ? "a reconnect of the OS a forced action cut off" : "a new boot after a fence";
    return reconnect ? LG_LOGIN_FENCED : LG_LOGIN_BOOT;
  }
  if (firmware_again) {
    *why = "iPXE again after the OS: the PC started again";
    return LG_LOGIN_BOOT;
  }
  if (live) {
    *why = "a session of this boot is live";
    return LG_LOGIN_CONTINUES;
  }
  if (reconnect) {
    *why = lg_boot_has(b, isid) ? "an ISID of this boot" : "a new ISID soon after a lost connection";
    return LG_LOGIN_CONTINUES;
  }
  if (!isid_is_ipxe(isid) && boot_only_ipxe(b) &&
      now - b->last_end < LG_HANDOVER_S) {
    *why = "the OS taking over from iPXE";
    return LG_LOGIN_CONTINUES;
  }
  *why = !b->n ? "the first login" : b->clean ? "a new ISID after a logout"
                                               : "a new ISID after the client was gone";
  return LG_LOGIN_BOOT;
}

