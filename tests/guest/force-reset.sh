#!/usr/bin/env bash
# A forced reset never hands a running Debian the fresh disk (issue 14):
#  - while the guest writes and flushes a file a second, `overlay reset
#    --force` logs it out; open-iscsi logs in again with its ISID and every
#    command then fails (NOT READY, manual intervention required): the guest
#    sees I/O errors, and a direct read of its root disk fails instead of
#    returning the base;
#  - the log names the client and says its disk is fenced;
#  - its next boot (iPXE, then the OS) gets the clean disk and works.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

OV=$LG_TMP/overlays
CFG=$LG_TMP/guest.json
guest_config "$CFG" "$OV"
start_lungate -c "$CFG" --control "$SOCK"
PC=$(ini pc1)

guest_start pc1 loop
guest_wait_line 'loop-start'
sleep 3
ctl_ok overlay reset room "$PC" --force
grep -q "logged out $PC" <<<"$OUT" || fail "overlay reset --force does not say it logged the guest out: $OUT"
grep -q "boots again" <<<"$OUT" || fail "overlay reset --force does not say the guest's disk fails until it boots again: $OUT"
guest_wait_line 'done' 240
guest_wait_end
guest_has 'io-error at'
guest_has 'direct read failed'
guest_lacks 'verify [0-9]+ files, 0 bad'
grep -q "msg=\"overlay fenced\" storage=room initiator=$PC " "$LG_LOG" || fail "the fence is not logged"
grep -q "msg=\"disk fenced\" target=$IQN lun=0 storage=room initiator=$PC isid=00023d" "$LG_LOG" ||
	fail "open-iscsi's reconnect did not get the fenced disk: $(grep "initiator=$PC" "$LG_LOG" | tail -n 5)"

guest_start pc1 plain
guest_wait_line 'done'
guest_wait_end
guest_has 'early: clean disk'
guest_has 'early file kept'
guest_has 'no persist'
guest_has 'root /dev/sda rw'
log "ok"
