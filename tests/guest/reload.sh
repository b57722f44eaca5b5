#!/usr/bin/env bash
# A reload that gives a running Debian's LUN another disk never hands it
# that disk (issue 14):
#  - while the guest writes and flushes a file a second, the config's cow
#    object moves to another overlay folder and the gateway reloads; the
#    running session keeps its disk;
#  - the gateway stops for 20 s (SIGSTOP/SIGCONT): open-iscsi logs in again
#    and finds its disk failing (fenced), not the new folder's fresh layer;
#  - its next boot gets the new folder's clean disk and works.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

CFG=$LG_TMP/guest.json
guest_config "$CFG" "$LG_TMP/overlays-a"
start_lungate -c "$CFG" --control "$SOCK"
PC=$(ini pc1)

guest_start pc1 loop
guest_wait_line 'loop-start'
guest_config "$CFG" "$LG_TMP/overlays-b"
ctl_ok reload
sleep 3
outage 20
guest_wait_line 'done' 240
guest_wait_end
guest_has 'io-error at'
guest_has 'direct read failed'
grep -q "msg=\"disk fenced\" target=$IQN lun=0 storage=room initiator=$PC isid=00023d.* reason=\"a reload gave" "$LG_LOG" ||
	fail "open-iscsi's reconnect after the reload did not get the fenced disk: $(grep "initiator=$PC" "$LG_LOG" | tail -n 5)"

guest_start pc1 plain
guest_wait_line 'done'
guest_wait_end
guest_has 'early: clean disk'
guest_has 'no persist'
guest_has 'root /dev/sda rw'
[[ -e $LG_TMP/overlays-b ]] && [[ -n $(ls "$LG_TMP/overlays-b") ]] || fail "the new boot did not get a layer in the new folder"
log "ok"
