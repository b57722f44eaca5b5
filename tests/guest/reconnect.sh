#!/usr/bin/env bash
# A running Debian is never reset under it (issue 14), with "after_idle": 1:
#  - it boots diskless through iPXE's sanhook and the iBFT (the initramfs
#    logs in with open-iscsi, iscsid again at switch-root with the same
#    ISID): no reset during the boot, and the file its early unit wrote
#    before the switch-root relogin is still there at the end of the boot;
#  - while it writes and flushes a file a second, the gateway stops for 20 s
#    (SIGSTOP, then SIGCONT, by pid): open-iscsi drops the connection and
#    logs in again; the guest carries on on the same disk: no I/O error, every
#    file reads back after the page cache is dropped, no reset in the log;
#  - powered off, and booted again more than after_idle later: a clean disk
#    (the reset happens at the new boot's first login, iPXE's).
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

OV=$LG_TMP/overlays
CFG=$LG_TMP/guest.json
guest_config "$CFG" "$OV" '"reset": {"after_idle": 1}'
start_lungate -c "$CFG" --control "$SOCK" --log-level debug
PC=$(ini pc1)

# ---- boot 1: a long boot with a reconnect in the middle ----
guest_start pc1 loop
guest_wait_line 'loop-start'
logins_before=$(grep -c "msg=\"login\" initiator=$PC " "$LG_LOG" || true)
outage 20
guest_wait_line 'done' 240
guest_wait_end
guest_has 'early: clean disk'
guest_has 'early file kept'
guest_has 'no persist'
guest_lacks 'io-error'
guest_has 'verify 45 files, 0 bad'
guest_has 'direct read ok'
guest_has 'kernel: 0 I/O errors, 0 read-only remounts'
guest_has 'mount rw'
logins_after=$(grep -c "msg=\"login\" initiator=$PC " "$LG_LOG" || true)
((logins_after > logins_before)) ||
	fail "the guest did not log in again after the outage (the test would prove nothing)"
grep -q "isid=00023d" "$LG_LOG" || fail "no open-iscsi login (ISID 00023d...) in the log: the iBFT hand-over did not happen"
grep -q 'msg="overlay reset"' "$LG_LOG" && fail "the overlay was reset during the guest's first boot: $(grep 'msg="overlay reset"' "$LG_LOG")"

# ---- boot 2: after more than after_idle, a clean disk ----
sleep 2
guest_start pc1 plain
guest_wait_line 'done'
guest_wait_end
guest_has 'early: clean disk'
guest_has 'early file kept'
guest_has 'no persist'
(($(grep -c 'msg="overlay reset"' "$LG_LOG") == 1)) ||
	fail "expected exactly one reset (at the second boot): $(grep 'msg="overlay reset"' "$LG_LOG")"
grep -q "msg=\"overlay reset\" storage=room initiator=$PC isid=40002723" "$LG_LOG" ||
	fail "the reset was not at iPXE's login of the new boot: $(grep 'msg="overlay reset"' "$LG_LOG")"
log "ok"
