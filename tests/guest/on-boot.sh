#!/usr/bin/env bash
# "reset": "on_boot" with a real Debian booting diskless (issue 17):
#  - its first boot starts clean, and the file its probe writes in the
#    initramfs, before open-iscsi takes the disk over from iPXE, is still
#    there once the system is up (the hand-over is no boot);
#  - while it writes a file a second, a hard reset (QEMU's system_reset on
#    its monitor: the old OS's TCP connection stays open in QEMU's user
#    network) starts it again: iPXE's login is a boot, so the new boot starts
#    from the base (no file of the first boot) and again keeps its own early
#    write through its hand-over;
#  - the gateway logs the on_boot reset, naming the client.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

OV=$LG_TMP/overlays
CFG=$LG_TMP/guest.json
guest_config "$CFG" "$OV" '"reset": "on_boot"'
start_lungate -c "$CFG" --control "$SOCK"
PC=$(ini pc1)

# after OFFSET REGEX [SECONDS]: wait for a COM1 line "LGTEST ..." matching
# REGEX past byte OFFSET of the log (the boot after the reset).
after() {
	local off=$1 re=$2 limit=${3:-$GUEST_BOOT_TIMEOUT} start=$SECONDS
	while ((SECONDS - start < limit)); do
		tail -c +"$((off + 1))" "$GUEST_LOG" | grep -aEq "^LGTEST $re" && return 0
		pid_alive "$GUEST_PID" || break
		sleep 1
	done
	tail -c +"$((off + 1))" "$GUEST_LOG" | grep -aEq "^LGTEST $re" && return 0
	tail -c +"$((off + 1))" "$GUEST_LOG" | tail -n 60 | tr -d '\r' >&2
	fail "after the reset, the guest did not report 'LGTEST $re' within $limit s$(pid_alive "$GUEST_PID" || echo " (QEMU ended: killed after $GUEST_LIFE s, or the guest powered off)")"
}

GUEST_REBOOT=1 guest_start pc1 loop
guest_wait_line 'loop-start'
guest_has 'early: clean disk'
guest_has 'early file kept'
guest_has 'no persist'
first=$(grep -a '^LGTEST late: boot' "$GUEST_LOG" | head -n 1 | tr -d '\r')
log "first boot: $first"
# the boot after the reset runs the probe once and powers off
sed -i 's/lgtest=loop/lgtest=plain/' "$GUEST_TFTP/boot.ipxe"
sleep 3
resets=$(grep -c 'msg="overlay reset"' "$LG_LOG" || true)
off=$(stat -c %s "$GUEST_LOG")
log "hard reset of the guest (system_reset on its QEMU monitor)"
guest_monitor system_reset
after "$off" 'late: boot .* mode plain'
after "$off" 'done'
guest_wait_end
second=$(tail -c +"$((off + 1))" "$GUEST_LOG" | grep -a '^LGTEST ' | tr -d '\r')
log "second boot: $(tr '\n' '|' <<<"$second")"
grep -q '^LGTEST early: clean disk' <<<"$second" ||
	fail "the boot after the hard reset did not start from a clean disk"
grep -q '^LGTEST early file kept' <<<"$second" ||
	fail "the boot after the hard reset lost its early write across the hand-over"
grep -q '^LGTEST no persist' <<<"$second" ||
	fail "the boot after the hard reset found the first boot's file"
(($(grep -c 'msg="overlay reset"' "$LG_LOG" || true) > resets)) ||
	fail "the gateway logged no reset at the boot after the hard reset"
reset_line=$(grep -F "msg=\"overlay reset\" storage=room initiator=$PC " "$LG_LOG" | tail -n 1)
grep -q 'policy=on_boot reason=boot' <<<"$reset_line" || fail "the reset is not logged as on_boot: $reset_line"
log "gateway: $reset_line"
log "ok"
